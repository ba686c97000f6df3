//! Replication of Cascade against `redis-server`: write throughput and
//! replica lag under load, full sync, partial resync after a cut link, and a
//! chain of replicas.
//!
//! ```sh
//! cargo bench --bench replication [-- --quick] [--repeat N] [--json FILE]
//!                                    [--plot DIR] [--pin] [--only LIST]
//! ```
//!
//! Every server runs on 127.0.0.1 on a free port in a temporary directory
//! with `--save "" --appendonly no --repl-diskless-sync-delay 0
//! --enable-debug-command yes`; replicas get `--replicaof 127.0.0.1 PORT`.
//! For each repeat both servers run every scenario, in an order that
//! alternates between repeats; tables show medians over the repeats.
//!
//! 1. **load**: a master alone, then with two replicas, under
//!    `redis-benchmark -t set -c 50 -r 100000 -d {64,4096} -P {1,16}`.
//!    A sampler reads `master_repl_offset` and each replica's
//!    `slave_repl_offset` every 10 ms (byte lag); a prober writes
//!    `__probe:<n>` on the master every 10 ms and polls the replicas until
//!    it shows up (time lag); after the load, the time until every replica's
//!    offset equals the master's (catch-up).
//! 2. **fullsync**: `DEBUG POPULATE 1000000 key 100` (100000 with --quick),
//!    then one replica, then four at once, while a writer does 1000 SETs/s:
//!    time until the replicas hold the master's data (`DEBUG DIGEST`), MB/s
//!    and the master's peak extra memory.
//! 3. **psync**: a replica linked through a proxy inside the bench; the
//!    proxy cuts the link, 10000 keys are written, the link is restored:
//!    time until the partial resync, link up and zero lag.
//! 4. **chain**: master → R1 → R2; time lag from the master to R2.
//!
//! Needs `redis-server` and `redis-benchmark` (Debian packages redis-server
//! and redis-tools), and `taskset` (util-linux) for --pin.

mod common;

use common::{
    cascade_binary, format_table, info_field, info_value, json_num, json_str, median, memory_kb,
    need_tool, parse_csv_rps, ratio, run_captured, Conn, Launch, Machine, Reply, Result, Server,
    ServerProc,
};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Hist = Histogram<u64>;

/// Value sizes and pipeline depths of the load cases.
const SIZES: [u32; 2] = [64, 4096];
const PIPELINES: [u32; 2] = [1, 16];
const CLIENTS: u32 = 50;
const KEYSPACE: u32 = 100_000;
const REPLICAS: usize = 2;
/// With --pin: the servers run on this core, redis-benchmark and the bench's
/// own threads on the other.
const SERVER_CORE: &str = "0";
const CLIENT_CORE: usize = 1;
/// Period of the offset sampler, the prober and the memory sampler.
const TICK: Duration = Duration::from_millis(10);
/// A probe not seen on a replica by then is counted as missed.
const PROBE_DEADLINE: Duration = Duration::from_secs(60);
/// Limit for ordinary commands.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for DEBUG POPULATE, SAVE and DEBUG DIGEST on a big dataset.
const SLOW_TIMEOUT: Duration = Duration::from_secs(120);
/// Replicas of a small master must be linked by then.
const LINK_DEADLINE: Duration = Duration::from_secs(60);
/// Replicas must have caught up with the master by then after a load.
const CATCHUP_DEADLINE: Duration = Duration::from_secs(120);
/// A full sync of the populated master must be done by then.
const SYNC_DEADLINE: Duration = Duration::from_secs(300);
/// The partial resync must be done by then after the link is restored.
const PSYNC_DEADLINE: Duration = Duration::from_secs(30);
/// A replica of a replica that is not linked by then is "unsupported".
const CHAIN_DEADLINE: Duration = Duration::from_secs(20);
/// Keys written while the link is cut in the psync scenario.
const PSYNC_KEYS: usize = 10_000;
/// SETs per second of the light writer during full syncs.
const WRITER_RATE: u32 = 1000;
/// Value size of DEBUG POPULATE.
const POPULATE_VALUE: u64 = 100;
/// The load case drawn by --plot.
const PLOT_CASE: (u32, u32) = (4096, 16);

const USAGE: &str = "\
Usage: cargo bench --bench replication [-- OPTIONS]

Options:
  --quick          one repeat, fewer requests, 100000 keys for the full sync
  --repeat N       repeats (default 3, 1 with --quick); tables show medians
  --json FILE      also write every raw measurement to FILE
  --plot DIR       write DIR/replication-byte-lag.svg: byte lag over time of
                   both servers during the 4096 B -P 16 load (first repeat)
  --pin            servers on core 0 (Cascade with --shards 1), redis-benchmark
                   and the bench's own threads on core 1 (taskset)
  --only LIST      run only these scenarios (comma-separated: load, fullsync,
                   psync, chain)
  --timeout SECS   limit for one redis-benchmark run (default 600, 120 with
                   --quick)
  --check          exit with an error unless every scenario ran without a
                   problem and every row has values for both servers (and
                   the --json and --plot files were written): the smoke
                   test of the bench itself, timing nothing
  --help           this text
";

fn main() {
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("replication: error: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------
// Options, tools

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Load,
    FullSync,
    Psync,
    Chain,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::Load,
    Scenario::FullSync,
    Scenario::Psync,
    Scenario::Chain,
];

impl Scenario {
    fn key(self) -> &'static str {
        match self {
            Scenario::Load => "load",
            Scenario::FullSync => "fullsync",
            Scenario::Psync => "psync",
            Scenario::Chain => "chain",
        }
    }
}

struct Options {
    quick: bool,
    repeat: usize,
    json: Option<PathBuf>,
    plot: Option<PathBuf>,
    pin: bool,
    only: Vec<Scenario>,
    timeout: Duration,
    check: bool,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut quick = false;
        let mut repeat = None;
        let mut json = None;
        let mut plot = None;
        let mut pin = false;
        let mut only = SCENARIOS.to_vec();
        let mut timeout = None;
        let mut check = false;
        let mut args = common::bench_args();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--pin" => pin = true,
                "--check" => check = true,
                "--repeat" => repeat = Some(common::repeat_arg(&mut args)?),
                "--json" => json = Some(common::path_arg("--json", "a file", &mut args)?),
                "--plot" => plot = Some(common::path_arg("--plot", "a directory", &mut args)?),
                "--only" => {
                    let v = args.next().ok_or("--only needs a list of scenarios")?;
                    only = Vec::new();
                    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let s = SCENARIOS
                            .iter()
                            .copied()
                            .find(|s| s.key() == name)
                            .ok_or_else(|| format!("--only: unknown scenario {name:?}"))?;
                        if !only.contains(&s) {
                            only.push(s);
                        }
                    }
                    if only.is_empty() {
                        return Err("--only needs at least one scenario".into());
                    }
                }
                "--timeout" => timeout = Some(common::timeout_arg(&mut args)?),
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        only.sort_by_key(|s| SCENARIOS.iter().position(|x| x == s));
        Ok(Options {
            quick,
            repeat: repeat.unwrap_or(if quick { 1 } else { 3 }),
            json,
            plot,
            pin,
            only,
            timeout: timeout.unwrap_or(Duration::from_secs(if quick { 120 } else { 600 })),
            check,
        })
    }

    /// Requests per redis-benchmark run: about a second each with --quick,
    /// ten or more without.
    fn requests(&self, size: u32, pipeline: u32) -> u64 {
        match (self.quick, size > 1024, pipeline > 1) {
            (true, false, false) => 20_000,
            (true, false, true) => 100_000,
            (true, true, false) => 8_000,
            (true, true, true) => 20_000,
            (false, false, false) => 200_000,
            (false, false, true) => 1_000_000,
            (false, true, false) => 100_000,
            (false, true, true) => 300_000,
        }
    }

    fn populate_keys(&self) -> u64 {
        if self.quick {
            100_000
        } else {
            1_000_000
        }
    }

    /// Probes sent on an idle chain.
    fn chain_probes(&self) -> u64 {
        if self.quick {
            200
        } else {
            1000
        }
    }
}

struct Tools {
    cascade: PathBuf,
    redis_server: PathBuf,
    redis_benchmark: PathBuf,
    taskset: Option<PathBuf>,
}

impl Tools {
    fn find(opts: &Options) -> Result<Tools> {
        Ok(Tools {
            cascade: cascade_binary()?,
            redis_server: need_tool("redis-server", "redis-server")?,
            redis_benchmark: need_tool("redis-benchmark", "redis-tools")?,
            taskset: if opts.pin {
                Some(need_tool("taskset", "util-linux")?)
            } else {
                None
            },
        })
    }
}

/// Puts the calling thread, and so every thread it starts later, on `core`.
fn pin_self(core: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only read and write that set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "could not pin the bench to core {core}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn new_hist() -> Hist {
    // Auto-resizing, 3 significant digits.
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------
// Results

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Failed,
    Unsupported,
}

struct Record {
    scenario: Scenario,
    case: String,
    metric: &'static str,
    unit: &'static str,
    server: Server,
    repeat: usize,
    value: f64,
}

struct Problem {
    scenario: Scenario,
    case: String,
    server: Server,
    repeat: usize,
    kind: Kind,
    message: String,
}

struct Series {
    server: Server,
    repeat: usize,
    case: String,
    load_end_ms: f64,
    /// (ms since the load started, replica index, byte lag)
    points: Vec<(f64, usize, u64)>,
}

struct ProbeRaw {
    server: Server,
    repeat: usize,
    scenario: Scenario,
    case: String,
    /// Per target (replica index): every time lag seen, µs.
    lags_us: Vec<Vec<u64>>,
}

#[derive(Default)]
struct Results {
    records: Vec<Record>,
    problems: Vec<Problem>,
    series: Vec<Series>,
    probes: Vec<ProbeRaw>,
    notes: Vec<String>,
}

/// Where measurements of one server in one repeat go.
struct Sink<'a> {
    res: &'a mut Results,
    server: Server,
    repeat: usize,
    scenario: Scenario,
}

impl Sink<'_> {
    fn rec(&mut self, case: &str, metric: &'static str, unit: &'static str, value: f64) {
        self.res.records.push(Record {
            scenario: self.scenario,
            case: case.to_string(),
            metric,
            unit,
            server: self.server,
            repeat: self.repeat,
            value,
        });
    }

    fn problem(&mut self, case: &str, kind: Kind, message: String) {
        eprintln!(
            "\n  {} {} [{case}]: {}: {}",
            self.server.name(),
            self.scenario.key(),
            match kind {
                Kind::Failed => "FAILED",
                Kind::Unsupported => "unsupported",
            },
            message.lines().next().unwrap_or("")
        );
        self.res.problems.push(Problem {
            scenario: self.scenario,
            case: case.to_string(),
            server: self.server,
            repeat: self.repeat,
            kind,
            message,
        });
    }

    fn note(&mut self, text: String) {
        let note = format!("{}: {text}", self.server.name());
        if !self.res.notes.contains(&note) {
            self.res.notes.push(note);
        }
    }
}

/// Why a case stopped: the case, and the message.
struct Fail {
    case: String,
    kind: Kind,
    msg: String,
}

trait InCase<T> {
    fn in_case(self, case: &str) -> std::result::Result<T, Fail>;
}

impl<T> InCase<T> for Result<T> {
    fn in_case(self, case: &str) -> std::result::Result<T, Fail> {
        self.map_err(|msg| Fail {
            case: case.to_string(),
            kind: Kind::Failed,
            msg,
        })
    }
}

type Step<T> = std::result::Result<T, Fail>;

// ---------------------------------------------------------------------------
// Servers of one scenario

struct Ctx<'a> {
    tools: &'a Tools,
    opts: &'a Options,
}

impl Ctx<'_> {
    fn launch(&self, server: Server, label: &str, extra: &[String]) -> Launch<'_> {
        let bin = match server {
            Server::Cascade => &self.tools.cascade,
            Server::Redis => &self.tools.redis_server,
        };
        let mut args: Vec<String> = [
            "--repl-diskless-sync-delay",
            "0",
            "--enable-debug-command",
            "yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if server == Server::Cascade && self.opts.pin {
            args.extend(["--shards".to_string(), "1".to_string()]);
        }
        args.extend(extra.iter().cloned());
        Launch {
            server,
            bin,
            pin: self
                .tools
                .taskset
                .as_deref()
                .filter(|_| self.opts.pin)
                .map(|t| (t, SERVER_CORE)),
            args,
            label: format!("{} {label}", server.name()),
        }
    }
}

fn replica_of(port: u16) -> Vec<String> {
    vec!["--replicaof".into(), "127.0.0.1".into(), port.to_string()]
}

/// The servers a scenario started, by index; all are stopped (or killed)
/// at the end. A server stopped early leaves an empty slot, so indexes
/// stay valid.
#[derive(Default)]
struct Group {
    procs: Vec<Option<ServerProc>>,
}

impl Group {
    /// Starts a server and waits for PING.
    fn start(&mut self, ctx: &Ctx, server: Server, label: &str, extra: &[String]) -> Result<usize> {
        let i = self.spawn(ctx, server, label, extra)?;
        self.get_mut(i).wait_ready()?;
        Ok(i)
    }

    /// Starts a server without waiting.
    fn spawn(&mut self, ctx: &Ctx, server: Server, label: &str, extra: &[String]) -> Result<usize> {
        let p = ServerProc::spawn(ctx.launch(server, label, extra))?;
        self.procs.push(Some(p));
        Ok(self.procs.len() - 1)
    }

    fn get(&self, i: usize) -> &ServerProc {
        self.procs[i]
            .as_ref()
            .expect("a server that was not stopped")
    }

    fn get_mut(&mut self, i: usize) -> &mut ServerProc {
        self.procs[i]
            .as_mut()
            .expect("a server that was not stopped")
    }

    fn port(&self, i: usize) -> u16 {
        self.get(i).port
    }

    fn pid(&self, i: usize) -> u32 {
        self.get(i).pid()
    }

    /// Stops one server now.
    fn stop(&mut self, i: usize) -> Result<()> {
        match self.procs[i].take() {
            Some(p) => p.stop(),
            None => Ok(()),
        }
    }

    /// Errors if one of `which` has exited.
    fn check_alive(&mut self, which: &[usize]) -> Result<()> {
        for &i in which {
            let p = self.get_mut(i);
            if let Some(status) = p.exited() {
                return Err(format!("{} exited ({status})", p.label));
            }
        }
        Ok(())
    }

    /// The message, then for every server: whether it exited, its command
    /// line and the end of its log.
    fn explain(&mut self, msg: &str) -> String {
        let mut out = msg.to_string();
        for p in self.procs.iter_mut().flatten() {
            let state = match p.exited() {
                Some(status) => format!("EXITED ({status})"),
                None => "running".to_string(),
            };
            let _ = write!(
                out,
                "\n[{} on port {}, pid {}, {state}]\ncommand: {}\n{}",
                p.label,
                p.port,
                p.pid(),
                p.desc,
                p.log_tail_lines(25)
            );
        }
        out
    }

    fn stop_all(self, sink: &mut Sink) {
        // Replicas first, so a master's exit does not make them log noise.
        for p in self.procs.into_iter().rev().flatten() {
            if let Err(e) = p.stop() {
                sink.note(e);
            }
        }
    }
}

/// Runs one scenario for one server; a failure becomes a problem with the
/// servers' logs.
fn run_scenario(
    ctx: &Ctx,
    sink: &mut Sink,
    body: impl FnOnce(&Ctx, &mut Sink, &mut Group) -> Step<()>,
) {
    let mut group = Group::default();
    if let Err(f) = body(ctx, sink, &mut group) {
        let msg = match f.kind {
            Kind::Failed => group.explain(&f.msg),
            Kind::Unsupported => f.msg,
        };
        sink.problem(&f.case, f.kind, msg);
    }
    group.stop_all(sink);
}

// ---------------------------------------------------------------------------
// Reading servers

fn info_num(text: &str, field: &str) -> Option<u64> {
    info_value(text, field).and_then(|v| v.parse().ok())
}

fn open(port: u16, timeout: Duration) -> Result<Conn> {
    Conn::open(port, timeout).map_err(|e| format!("could not connect to port {port}: {e}"))
}

/// A command that must answer +OK.
fn ok(conn: &mut Conn, args: &[&str]) -> Result<()> {
    match conn.call(args) {
        Ok(Reply::Simple(s)) if s == "OK" => Ok(()),
        Ok(other) => Err(format!(
            "{} on port {} answered {other:?}",
            args.join(" "),
            conn.port
        )),
        Err(e) => Err(format!("{} on port {}: {e}", args.join(" "), conn.port)),
    }
}

fn digest(port: u16) -> Result<String> {
    let mut c = open(port, SLOW_TIMEOUT)?;
    c.call(&["DEBUG", "DIGEST"])
        .map_err(|e| format!("DEBUG DIGEST on port {port}: {e}"))?
        .text()
        .map_err(|e| format!("DEBUG DIGEST on port {port}: {e}"))
}

/// `master_repl_offset` of a master or `slave_repl_offset` of a replica.
fn repl_offset(conn: &mut Conn, replica: bool) -> Result<u64> {
    let field = if replica {
        "slave_repl_offset"
    } else {
        "master_repl_offset"
    };
    let text = conn.info("replication")?;
    info_num(&text, field).ok_or_else(|| {
        format!(
            "INFO replication on port {} has no {field}:\n{text}",
            conn.port
        )
    })
}

/// Polls the replicas every 10 ms until all report `master_link_status:up`.
fn wait_link_up(group: &mut Group, replicas: &[usize], deadline: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut conns: Vec<Option<Conn>> = replicas.iter().map(|_| None).collect();
    let mut last = vec![String::new(); replicas.len()];
    loop {
        group.check_alive(replicas)?;
        let mut all_up = true;
        for (k, &i) in replicas.iter().enumerate() {
            if last[k] == "up" {
                continue;
            }
            if conns[k].is_none() {
                conns[k] = Conn::open(group.port(i), Duration::from_secs(2)).ok();
            }
            let status = match conns[k].as_mut().map(|c| c.info("replication")) {
                Some(Ok(text)) => info_value(&text, "master_link_status")
                    .unwrap_or("(no master_link_status)")
                    .to_string(),
                Some(Err(e)) => {
                    conns[k] = None;
                    e
                }
                None => "could not connect".to_string(),
            };
            if status != "up" {
                all_up = false;
            }
            last[k] = status;
        }
        if all_up {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= deadline {
            let states: Vec<String> = replicas
                .iter()
                .zip(&last)
                .map(|(&i, s)| format!("{}: {s}", group.get(i).label))
                .collect();
            return Err(format!(
                "replicas not linked within {}s ({})",
                deadline.as_secs(),
                states.join("; ")
            ));
        }
        std::thread::sleep(TICK);
    }
}

/// Polls a master every 10 ms until it lists `count` replicas in state
/// `online` (a replica that finished a diskless full sync is online only
/// after its first REPLCONF ACK: streaming starts then).
fn wait_online(port: u16, count: usize, deadline: Duration) -> Result<()> {
    let start = Instant::now();
    let mut conn = open(port, CMD_TIMEOUT)?;
    loop {
        let text = conn.info("replication")?;
        let online = text
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .count();
        if online >= count {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            return Err(format!(
                "the server on port {port} lists {online} of {count} replicas online after {}s:\n{text}",
                deadline.as_secs()
            ));
        }
        std::thread::sleep(TICK);
    }
}

/// Polls every millisecond until every replica's offset equals the
/// master's; returns how long that took.
fn wait_caught_up(
    group: &mut Group,
    master: usize,
    replicas: &[usize],
    deadline: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    let mut m = open(group.port(master), CMD_TIMEOUT)?;
    let mut rs = replicas
        .iter()
        .map(|&i| open(group.port(i), CMD_TIMEOUT))
        .collect::<Result<Vec<Conn>>>()?;
    loop {
        let mo = repl_offset(&mut m, false)?;
        let mut offsets = Vec::new();
        for r in &mut rs {
            offsets.push(repl_offset(r, true)?);
        }
        if offsets.iter().all(|&o| o == mo) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= deadline {
            let mut all = vec![master];
            all.extend_from_slice(replicas);
            group.check_alive(&all)?;
            return Err(format!(
                "replicas did not catch up within {}s: master offset {mo}, replica offsets {offsets:?}",
                deadline.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// Background measurements

/// Stops and joins a measuring thread; a dropped worker (a scenario that
/// failed half-way) is told to stop and left to end by itself.
struct Worker<T> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Worker<T> {
    fn spawn(f: impl FnOnce(Arc<AtomicBool>) -> T + Send + 'static) -> Worker<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        Worker {
            stop,
            handle: Some(std::thread::spawn(move || f(s))),
        }
    }

    fn signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    fn finish(mut self) -> Result<T> {
        self.signal();
        self.handle
            .take()
            .ok_or_else(|| "a measuring thread was already joined".to_string())?
            .join()
            .map_err(|_| "a measuring thread panicked".to_string())
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Sleeps until the next tick after `from`; false if stopped.
fn tick_after(from: Instant, stop: &AtomicBool) -> bool {
    let next = from + TICK;
    let now = Instant::now();
    if next > now {
        std::thread::sleep(next - now);
    }
    !stop.load(Ordering::SeqCst)
}

#[derive(Default)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Errors {
    fn add(&mut self, e: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e);
        }
    }

    fn describe(&self, what: &str) -> Option<String> {
        self.first
            .as_ref()
            .map(|e| format!("{what}: {} error(s), first: {e}", self.count))
    }
}

struct LagOut {
    points: Vec<(f64, usize, u64)>,
    errors: Errors,
}

/// Every tick: the master's offset, then each replica's; lag = master −
/// replica (0 if the replica read is already past the master read).
fn spawn_lag_sampler(master: u16, replicas: Vec<u16>, t0: Instant) -> Worker<LagOut> {
    Worker::spawn(move |stop| {
        let mut out = LagOut {
            points: Vec::new(),
            errors: Errors::default(),
        };
        let mut m: Option<Conn> = None;
        let mut rs: Vec<Option<Conn>> = replicas.iter().map(|_| None).collect();
        loop {
            let t = Instant::now();
            let mut sample = || -> Result<()> {
                if m.is_none() {
                    m = Some(open(master, CMD_TIMEOUT)?);
                }
                let mo = match repl_offset(m.as_mut().expect("opened"), false) {
                    Ok(v) => v,
                    Err(e) => {
                        m = None;
                        return Err(e);
                    }
                };
                let at = ms(t - t0);
                for (k, &port) in replicas.iter().enumerate() {
                    if rs[k].is_none() {
                        rs[k] = Some(open(port, CMD_TIMEOUT)?);
                    }
                    let ro = match repl_offset(rs[k].as_mut().expect("opened"), true) {
                        Ok(v) => v,
                        Err(e) => {
                            rs[k] = None;
                            return Err(e);
                        }
                    };
                    let lag = mo.saturating_sub(ro);
                    out.points.push((at, k, lag));
                }
                Ok(())
            };
            if let Err(e) = sample() {
                out.errors.add(e);
            }
            if !tick_after(t, &stop) {
                return out;
            }
        }
    })
}

struct ProbeOut {
    /// Time lag of each target, µs.
    per_target: Vec<Hist>,
    raw: Vec<Vec<u64>>,
    /// Latency of the probe's SET on the master, µs.
    set_latency: Hist,
    sent: u64,
    missed: u64,
    errors: Errors,
}

/// A probe key written on the master, not yet seen on every target.
struct Probe {
    key: String,
    sent: Instant,
    seen: Vec<bool>,
}

/// Every tick: SET `__probe:<tag>:<n>` to the current time on the master
/// (own connection). Meanwhile, GET on every target (own connections, in a
/// tight loop while probes are outstanding) its oldest probe not seen yet,
/// and the next ones once it appears. Time lag = when a target first
/// returns the key − when the SET was sent. A probe not seen within
/// `PROBE_DEADLINE` is missed. Probes go on every tick however far the
/// targets lag, so a lagging replica is sampled as often as a quick one.
/// Stops sending when told or after `limit` probes, then waits for the
/// outstanding ones (until their deadline).
fn spawn_prober(
    master: u16,
    targets: Vec<u16>,
    tag: String,
    limit: Option<u64>,
) -> Worker<ProbeOut> {
    Worker::spawn(move |stop| {
        let mut out = ProbeOut {
            per_target: targets.iter().map(|_| new_hist()).collect(),
            raw: targets.iter().map(|_| Vec::new()).collect(),
            set_latency: new_hist(),
            sent: 0,
            missed: 0,
            errors: Errors::default(),
        };
        let mut m: Option<Conn> = None;
        let mut ts: Vec<Option<Conn>> = targets.iter().map(|_| None).collect();
        let mut outstanding: Vec<Probe> = Vec::new();
        let mut next = Instant::now();
        loop {
            let sending = !stop.load(Ordering::SeqCst) && limit.is_none_or(|l| out.sent < l);
            if !sending && outstanding.is_empty() {
                return out;
            }
            let mut failed = false;
            if sending && Instant::now() >= next {
                next = Instant::now().max(next + TICK);
                let key = format!("__probe:{tag}:{}", out.sent);
                let written = (|| -> Result<Instant> {
                    if m.is_none() {
                        m = Some(open(master, CMD_TIMEOUT)?);
                    }
                    let sent = Instant::now();
                    let now = unix_us().to_string();
                    if let Err(e) = ok(m.as_mut().expect("opened"), &["SET", &key, &now]) {
                        m = None;
                        return Err(e);
                    }
                    Ok(sent)
                })();
                match written {
                    Ok(sent) => {
                        let _ = out.set_latency.record(sent.elapsed().as_micros() as u64);
                        out.sent += 1;
                        outstanding.push(Probe {
                            key,
                            sent,
                            seen: vec![false; targets.len()],
                        });
                    }
                    Err(e) => {
                        out.errors.add(e);
                        failed = true;
                    }
                }
            }
            for (t, &port) in targets.iter().enumerate() {
                // Oldest first: the stream is applied in order.
                for p in outstanding.iter_mut().filter(|p| !p.seen[t]) {
                    if p.sent.elapsed() >= PROBE_DEADLINE {
                        p.seen[t] = true;
                        out.missed += 1;
                        continue;
                    }
                    let reply = (|| -> Result<Reply> {
                        if ts[t].is_none() {
                            ts[t] = Some(open(port, CMD_TIMEOUT)?);
                        }
                        ts[t]
                            .as_mut()
                            .expect("opened")
                            .call(&["GET", &p.key])
                            .map_err(|e| {
                                ts[t] = None;
                                format!(
                                    "GET {} on port {port}: no reply within {}s ({e}), {:.1}s \
                                     after the probe's SET",
                                    p.key,
                                    CMD_TIMEOUT.as_secs(),
                                    p.sent.elapsed().as_secs_f64()
                                )
                            })
                    })();
                    match reply {
                        Ok(Reply::Bulk(Some(_))) => {
                            let lag = p.sent.elapsed().as_micros() as u64;
                            let _ = out.per_target[t].record(lag);
                            out.raw[t].push(lag);
                            p.seen[t] = true;
                        }
                        Ok(Reply::Bulk(None)) => break,
                        Ok(other) => {
                            out.errors
                                .add(format!("GET {} on port {port} answered {other:?}", p.key));
                            failed = true;
                            break;
                        }
                        Err(e) => {
                            out.errors.add(e);
                            failed = true;
                            break;
                        }
                    }
                }
            }
            outstanding.retain(|p| !p.seen.iter().all(|&s| s));
            if failed {
                std::thread::sleep(TICK);
            } else if outstanding.is_empty() {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
        }
    })
}

fn merged(hists: &[Hist]) -> Hist {
    let mut all = new_hist();
    for h in hists {
        let _ = all.add(h);
    }
    all
}

struct WriterOut {
    sets: u64,
    latency: Hist,
    errors: Errors,
}

/// `WRITER_RATE` SETs per second on the master (keys `writer:<0..999>`,
/// 64-byte values), on its own connection.
fn spawn_writer(master: u16) -> Worker<WriterOut> {
    Worker::spawn(move |stop| {
        let mut out = WriterOut {
            sets: 0,
            latency: new_hist(),
            errors: Errors::default(),
        };
        let value = "w".repeat(64);
        let period = Duration::from_secs(1) / WRITER_RATE;
        let mut conn: Option<Conn> = None;
        let mut next = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            // No bursts to catch up after a stall: the rate is a ceiling.
            next = Instant::now().max(next) + period;
            let key = format!("writer:{}", out.sets % 1000);
            let t = Instant::now();
            let r = match conn.as_mut() {
                Some(c) => ok(c, &["SET", &key, &value]),
                None => open(master, CMD_TIMEOUT).and_then(|mut c| {
                    let r = ok(&mut c, &["SET", &key, &value]);
                    conn = Some(c);
                    r
                }),
            };
            match r {
                Ok(()) => {
                    let _ = out.latency.record(t.elapsed().as_micros() as u64);
                    out.sets += 1;
                }
                Err(e) => {
                    conn = None;
                    out.errors.add(e);
                    std::thread::sleep(TICK);
                }
            }
        }
        out
    })
}

/// When the master first lists `count` replicas (`connected_slaves`, any
/// state: they sent PSYNC), polled every millisecond.
fn spawn_attach_watch(master: u16, count: usize) -> Worker<Option<Instant>> {
    Worker::spawn(move |stop| {
        let mut conn: Option<Conn> = None;
        while !stop.load(Ordering::SeqCst) {
            if conn.is_none() {
                conn = Conn::open(master, CMD_TIMEOUT).ok();
            }
            if let Some(c) = conn.as_mut() {
                match c.info("replication") {
                    Ok(text) => {
                        if info_num(&text, "connected_slaves").unwrap_or(0) >= count as u64 {
                            return Some(Instant::now());
                        }
                    }
                    Err(_) => conn = None,
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

struct MemOut {
    before: (u64, u64),
    peak: (u64, u64),
}

/// Peak memory of `pid` every tick; PSS (of it and its children) only when
/// asked, as it costs more to read.
fn spawn_mem_sampler(pid: u32, with_pss: bool) -> Worker<MemOut> {
    let before = memory_kb(pid, with_pss);
    Worker::spawn(move |stop| {
        let mut out = MemOut {
            before,
            peak: before,
        };
        loop {
            let t = Instant::now();
            let (rss, pss) = memory_kb(pid, with_pss);
            out.peak.0 = out.peak.0.max(rss);
            out.peak.1 = out.peak.1.max(pss);
            if !tick_after(t, &stop) {
                return out;
            }
        }
    })
}

// ---------------------------------------------------------------------------
// redis-benchmark

/// `redis-benchmark -t set` against `port`; returns requests per second
/// and notes its stray output.
fn benchmark(
    ctx: &Ctx,
    sink: &mut Sink,
    port: u16,
    size: u32,
    pipeline: u32,
    requests: u64,
) -> Result<f64> {
    let mut cmd = match (&ctx.tools.taskset, ctx.opts.pin) {
        (Some(t), true) => {
            let mut c = Command::new(t);
            c.arg("-c")
                .arg(CLIENT_CORE.to_string())
                .arg(&ctx.tools.redis_benchmark);
            c
        }
        _ => Command::new(&ctx.tools.redis_benchmark),
    };
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set"])
        .args(["-n", &requests.to_string(), "-c", &CLIENTS.to_string()])
        .args(["-d", &size.to_string(), "-P", &pipeline.to_string()])
        .args(["-r", &KEYSPACE.to_string(), "--csv"]);
    let what = format!("redis-benchmark SET -d {size} -P {pipeline} on port {port}");
    let out = run_captured(cmd, ctx.opts.timeout).map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status, out.stdout, out.stderr
        ));
    }
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('"') {
            sink.note(format!("redis-benchmark: {line}"));
        }
    }
    parse_csv_rps(&out.stdout, "set").map_err(|e| format!("{what}: {e}"))
}

fn case_name(size: u32, pipeline: u32) -> String {
    format!("{size} B -P {pipeline}")
}

struct LoadOut {
    rps: f64,
    lag: LagOut,
    /// Byte lag while the load ran (the samples go on during catch-up).
    lag_hist: Hist,
    /// When the load ended, ms after the sampler started.
    load_end_ms: f64,
    /// Largest VmRSS growth of a replica during the load and catch-up, kB.
    replica_rss_growth_kb: u64,
    probes: ProbeOut,
    /// An error when the replicas did not catch up in time (the other
    /// measurements are still worth recording).
    catch_up: Result<Duration>,
}

/// A redis-benchmark load on `master` while the byte-lag sampler and the
/// prober watch `replicas`; then the catch-up.
///
/// Replicas that fall far behind can take long to catch up: the deadline
/// is `CATCHUP_DEADLINE`.
#[allow(clippy::too_many_arguments)]
fn load_with_replicas(
    ctx: &Ctx,
    sink: &mut Sink,
    group: &mut Group,
    master: usize,
    replicas: &[usize],
    size: u32,
    pipeline: u32,
    tag: String,
) -> Result<LoadOut> {
    let ports: Vec<u16> = replicas.iter().map(|&i| group.port(i)).collect();
    let mems: Vec<Worker<MemOut>> = replicas
        .iter()
        .map(|&i| spawn_mem_sampler(group.pid(i), false))
        .collect();
    let t0 = Instant::now();
    let sampler = spawn_lag_sampler(group.port(master), ports.clone(), t0);
    let prober = spawn_prober(group.port(master), ports, tag, None);
    let requests = ctx.opts.requests(size, pipeline);
    let result = benchmark(ctx, sink, group.port(master), size, pipeline, requests);
    let load_end_ms = ms(t0.elapsed());
    // The prober stops at the end of the load (after its current probe);
    // the byte-lag sampler goes on during the catch-up, for the plot.
    prober.signal();
    let catch_up = match &result {
        Ok(_) => Some(wait_caught_up(group, master, replicas, CATCHUP_DEADLINE)),
        Err(_) => None,
    };
    let lag = sampler.finish()?;
    let probes = prober.finish()?;
    let mut replica_rss_growth_kb = 0;
    for w in mems {
        let m = w.finish()?;
        replica_rss_growth_kb = replica_rss_growth_kb.max(m.peak.0.saturating_sub(m.before.0));
    }
    let mut lag_hist = new_hist();
    for &(t, _, v) in &lag.points {
        if t <= load_end_ms {
            let _ = lag_hist.record(v);
        }
    }
    let rps = result?;
    let catch_up = catch_up.expect("set when the load ran");
    let mut all = vec![master];
    all.extend_from_slice(replicas);
    group.check_alive(&all)?;
    for d in [
        lag.errors.describe("byte-lag sampler"),
        probes.errors.describe("prober"),
    ]
    .into_iter()
    .flatten()
    {
        sink.note(d);
    }
    Ok(LoadOut {
        rps,
        lag,
        lag_hist,
        load_end_ms,
        replica_rss_growth_kb,
        probes,
        catch_up,
    })
}

/// Records time-lag rows of `hist` (µs) as ms.
fn rec_time_lag(sink: &mut Sink, case: &str, names: [&'static str; 3], hist: &Hist) {
    if hist.is_empty() {
        return;
    }
    let q = |v: u64| v as f64 / 1e3;
    sink.rec(case, names[0], "ms", q(hist.value_at_quantile(0.5)));
    sink.rec(case, names[1], "ms", q(hist.value_at_quantile(0.99)));
    sink.rec(case, names[2], "ms", q(hist.max()));
}

// ---------------------------------------------------------------------------
// Scenario 1: write throughput and lag under load

fn scenario_load(ctx: &Ctx, sink: &mut Sink, g: &mut Group) -> Step<()> {
    let server = sink.server;
    let m = g.start(ctx, server, "master", &[]).in_case("master")?;
    let cases: Vec<(u32, u32)> = SIZES
        .iter()
        .flat_map(|&s| PIPELINES.iter().map(move |&p| (s, p)))
        .collect();
    for &(size, pipeline) in &cases {
        let case = case_name(size, pipeline);
        let requests = ctx.opts.requests(size, pipeline);
        let rps = benchmark(ctx, sink, g.port(m), size, pipeline, requests).in_case(&case)?;
        eprint!(" {case}/0r={rps:.0}");
        sink.rec(&case, "rps, 0 replicas", "rps", rps);
    }
    let attach = "2 replicas attach";
    // Replicas start from an empty master.
    let mut c = open(g.port(m), CMD_TIMEOUT).in_case(attach)?;
    ok(&mut c, &["FLUSHALL"]).in_case(attach)?;
    drop(c);
    let mut replicas = Vec::new();
    for k in 0..REPLICAS {
        let i = g
            .spawn(
                ctx,
                server,
                &format!("replica {}", k + 1),
                &replica_of(g.port(m)),
            )
            .in_case(attach)?;
        replicas.push(i);
    }
    for &i in &replicas {
        g.get_mut(i).wait_ready().in_case(attach)?;
    }
    wait_link_up(g, &replicas, LINK_DEADLINE).in_case(attach)?;
    wait_online(g.port(m), REPLICAS, LINK_DEADLINE).in_case(attach)?;
    for &(size, pipeline) in &cases {
        let case = case_name(size, pipeline);
        let tag = format!("{}{}", size, pipeline);
        let out =
            load_with_replicas(ctx, sink, g, m, &replicas, size, pipeline, tag).in_case(&case)?;
        eprint!(" {case}/2r={:.0}", out.rps);
        sink.rec(&case, "rps, 2 replicas", "rps", out.rps);
        let h = &out.lag_hist;
        if !h.is_empty() {
            sink.rec(&case, "byte lag p50", "B", h.value_at_quantile(0.5) as f64);
            sink.rec(&case, "byte lag p99", "B", h.value_at_quantile(0.99) as f64);
            sink.rec(&case, "byte lag max", "B", h.max() as f64);
        }
        let all = merged(&out.probes.per_target);
        rec_time_lag(
            sink,
            &case,
            ["time lag p50", "time lag p99", "time lag max"],
            &all,
        );
        sink.rec(&case, "probes sent", "count", out.probes.sent as f64);
        sink.rec(
            &case,
            "probe sightings missed (>60 s)",
            "count",
            out.probes.missed as f64,
        );
        sink.rec(
            &case,
            "probe SET latency p50",
            "ms",
            out.probes.set_latency.value_at_quantile(0.5) as f64 / 1e3,
        );
        if let Ok(d) = out.catch_up {
            sink.rec(&case, "catch-up after load", "ms", ms(d));
        }
        sink.rec(
            &case,
            "replica peak RSS growth",
            "MB",
            out.replica_rss_growth_kb as f64 / 1024.0,
        );
        sink.res.series.push(Series {
            server,
            repeat: sink.repeat,
            case: case.clone(),
            load_end_ms: out.load_end_ms,
            points: out.lag.points,
        });
        sink.res.probes.push(ProbeRaw {
            server,
            repeat: sink.repeat,
            scenario: Scenario::Load,
            case: case.clone(),
            lags_us: out.probes.raw,
        });
        // Lagging replicas would spoil the next case.
        out.catch_up.in_case(&case)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 2: full sync

/// Bytes of `DEBUG POPULATE n key 100`: every key `key:<i>` and its value.
fn populated_bytes(n: u64) -> u64 {
    let mut keys = 0;
    let mut from = 0u64;
    let mut digits = 1u32;
    while from < n {
        let to = 10u64.pow(digits).min(n);
        keys += (to - from) * (4 + digits as u64);
        from = to;
        digits += 1;
    }
    keys + n * POPULATE_VALUE
}

/// Starts `count` replicas of `m` together while the light writer runs and
/// the master's memory is sampled; waits until they are linked and caught
/// up, stops the writer, and checks every digest equals the master's.
#[allow(clippy::too_many_arguments)]
fn full_sync_round(
    ctx: &Ctx,
    sink: &mut Sink,
    g: &mut Group,
    m: usize,
    count: usize,
    first_label: usize,
    case: &str,
    rdb_bytes: u64,
) -> Step<Vec<usize>> {
    let server = sink.server;
    let mem = spawn_mem_sampler(g.pid(m), true);
    let full_before = info_field(g.port(m), "stats", "sync_full").in_case(case)?;
    let writer = spawn_writer(g.port(m));
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let asked = spawn_attach_watch(g.port(m), count);
    let mut replicas = Vec::new();
    for k in 0..count {
        let label = format!("replica {}", first_label + k);
        replicas.push(
            g.spawn(ctx, server, &label, &replica_of(g.port(m)))
                .in_case(case)?,
        );
    }
    for &i in &replicas {
        g.get_mut(i).wait_ready().in_case(case)?;
    }
    let linked = wait_link_up(g, &replicas, SYNC_DEADLINE);
    let w = writer.finish().in_case(case)?;
    let asked = asked.finish().in_case(case)?;
    let linked = linked.in_case(case)?;
    wait_caught_up(g, m, &replicas, CATCHUP_DEADLINE).in_case(case)?;
    let synced = t0.elapsed();
    let mem = mem.finish().in_case(case)?;
    let want = digest(g.port(m)).in_case(case)?;
    for &i in &replicas {
        let got = digest(g.port(i)).in_case(case)?;
        if got != want {
            return Err(Fail {
                case: case.to_string(),
                kind: Kind::Failed,
                msg: format!(
                    "{} has DEBUG DIGEST {got} after catching up, the master {want}",
                    g.get(i).label
                ),
            });
        }
    }
    sink.rec(case, "time to link up", "s", linked.as_secs_f64());
    sink.rec(case, "time to identical data", "s", synced.as_secs_f64());
    // The transfer proper starts at PSYNC, after the replica's start-up.
    let transfer = match asked {
        Some(a) => {
            let d = synced.saturating_sub(a - t0);
            sink.rec(case, "PSYNC to identical data", "s", d.as_secs_f64());
            d
        }
        None => synced,
    };
    sink.rec(
        case,
        "RDB size / (PSYNC to identical data)",
        "MB/s",
        rdb_bytes as f64 / 1e6 / transfer.as_secs_f64(),
    );
    sink.rec(
        case,
        "master peak extra RSS",
        "MB",
        mem.peak.0.saturating_sub(mem.before.0) as f64 / 1024.0,
    );
    sink.rec(
        case,
        "master+children peak extra PSS",
        "MB",
        mem.peak.1.saturating_sub(mem.before.1) as f64 / 1024.0,
    );
    if !w.latency.is_empty() {
        sink.rec(
            case,
            "writer SET latency p99",
            "ms",
            w.latency.value_at_quantile(0.99) as f64 / 1e3,
        );
        sink.rec(
            case,
            "writer SET latency max",
            "ms",
            w.latency.max() as f64 / 1e3,
        );
    }
    sink.rec(case, "writer SETs during sync", "count", w.sets as f64);
    // One per replica unless a replica had to start over.
    let full_after = info_field(g.port(m), "stats", "sync_full").in_case(case)?;
    sink.rec(
        case,
        "full syncs served (sync_full delta)",
        "count",
        full_after.saturating_sub(full_before) as f64,
    );
    if let Some(d) = w.errors.describe("writer") {
        sink.note(d);
    }
    eprint!(" {case}={:.2}s", synced.as_secs_f64());
    Ok(replicas)
}

fn scenario_full_sync(ctx: &Ctx, sink: &mut Sink, g: &mut Group) -> Step<()> {
    let server = sink.server;
    let keys = ctx.opts.populate_keys();
    let prep = "populate";
    let m = g.start(ctx, server, "master", &[]).in_case(prep)?;
    let mut c = open(g.port(m), SLOW_TIMEOUT).in_case(prep)?;
    let t = Instant::now();
    ok(
        &mut c,
        &[
            "DEBUG",
            "POPULATE",
            &keys.to_string(),
            "key",
            &POPULATE_VALUE.to_string(),
        ],
    )
    .in_case(prep)?;
    let populate = t.elapsed();
    // The RDB a full sync sends is what SAVE writes.
    ok(&mut c, &["SAVE"]).in_case(prep)?;
    let rdb = g.get(m).dir.join("dump.rdb");
    let rdb_bytes = std::fs::metadata(&rdb)
        .map(|m| m.len())
        .map_err(|e| format!("no {} after SAVE: {e}", rdb.display()))
        .in_case(prep)?;
    let _ = std::fs::remove_file(&rdb);
    drop(c);
    sink.rec(prep, "keys", "count", keys as f64);
    sink.rec(
        prep,
        "dataset (keys × (key + 100 B))",
        "MB",
        populated_bytes(keys) as f64 / 1e6,
    );
    sink.rec(prep, "RDB size (SAVE)", "MB", rdb_bytes as f64 / 1e6);
    sink.rec(prep, "DEBUG POPULATE time", "s", populate.as_secs_f64());

    let one = full_sync_round(ctx, sink, g, m, 1, 1, "1 replica", rdb_bytes)?;
    for i in one {
        if let Err(e) = g.stop(i) {
            sink.note(e);
        }
    }
    full_sync_round(ctx, sink, g, m, 4, 2, "4 replicas at once", rdb_bytes)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 3: partial resync through a proxy

struct ProxyShared {
    upstream: u16,
    stop: AtomicBool,
    /// Refusing, and the sockets of every live connection (both ends).
    live: Mutex<(bool, Vec<TcpStream>)>,
    accepted: Mutex<Vec<Instant>>,
    refused: AtomicU64,
}

/// A TCP proxy to `127.0.0.1:upstream`: two threads per connection copy
/// bytes; `cut` closes every connection and refuses new ones (accepts and
/// closes them at once) until `restore`.
struct Proxy {
    port: u16,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: u16) -> Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("proxy: could not listen: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("proxy: {e}"))?
            .port();
        let shared = Arc::new(ProxyShared {
            upstream,
            stop: AtomicBool::new(false),
            live: Mutex::new((false, Vec::new())),
            accepted: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || Proxy::accept_loop(listener, s));
        Ok(Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    fn accept_loop(listener: TcpListener, s: Arc<ProxyShared>) {
        for conn in listener.incoming() {
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(client) = conn else { continue };
            let mut live = s.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.0 {
                s.refused.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            s.accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Instant::now());
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, s.upstream));
            let Ok(up) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
                client.try_clone(),
                up.try_clone(),
                client.try_clone(),
                up.try_clone(),
            ) else {
                continue;
            };
            live.1.push(c3);
            live.1.push(u3);
            drop(live);
            std::thread::spawn(move || pump(client, up));
            std::thread::spawn(move || pump(u2, c2));
        }
    }

    fn cut(&self) {
        let mut live = self.shared.live.lock().unwrap_or_else(|e| e.into_inner());
        live.0 = true;
        for s in live.1.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.shared.live.lock().unwrap_or_else(|e| e.into_inner()).0 = false;
    }

    /// The first connection accepted (not refused) at or after `t`.
    fn accepted_after(&self, t: Instant) -> Option<Instant> {
        self.shared
            .accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .find(|&a| a >= t)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the acceptor.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Copies `from` to `to` until either side closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

const PSYNC_LINE: &str = "Successful partial resynchronization";

fn scenario_psync(ctx: &Ctx, sink: &mut Sink, g: &mut Group) -> Step<()> {
    let server = sink.server;
    let setup = "link through proxy";
    let m = g.start(ctx, server, "master", &[]).in_case(setup)?;
    let proxy = Proxy::start(g.port(m)).in_case(setup)?;
    let r = g
        .start(ctx, server, "replica", &replica_of(proxy.port))
        .in_case(setup)?;
    wait_link_up(g, &[r], LINK_DEADLINE).in_case(setup)?;
    wait_online(g.port(m), 1, LINK_DEADLINE).in_case(setup)?;
    let mut mc = open(g.port(m), CMD_TIMEOUT).in_case(setup)?;
    ok(&mut mc, &["SET", "before-cut", "1"]).in_case(setup)?;
    wait_caught_up(g, m, &[r], CATCHUP_DEADLINE).in_case(setup)?;

    let case = "cut, 10000 keys, restore";
    let stats = |port: u16| -> Result<(u64, u64)> {
        let text = open(port, CMD_TIMEOUT)?.info("stats")?;
        let f = |n: &str| info_num(&text, n).ok_or(format!("INFO stats has no {n}"));
        Ok((f("sync_partial_ok")?, f("sync_full")?))
    };
    let (ok_before, full_before) = stats(g.port(m)).in_case(case)?;
    let lines_before = g.get(r).log_text().matches(PSYNC_LINE).count();
    let offset_before = repl_offset(&mut mc, false).in_case(case)?;

    proxy.cut();
    // The replica must see the link down before the writes.
    let mut rc = open(g.port(r), CMD_TIMEOUT).in_case(case)?;
    let down_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = rc.info("replication").in_case(case)?;
        if info_value(&text, "master_link_status") == Some("down") {
            break;
        }
        if Instant::now() >= down_deadline {
            return Err(Fail {
                case: case.into(),
                kind: Kind::Failed,
                msg: "the replica still reports master_link_status:up 10 s after the proxy cut the link".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let value = "p".repeat(16);
    let writing = Instant::now();
    for chunk in (0..PSYNC_KEYS).collect::<Vec<_>>().chunks(1000) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|i| vec!["SET".into(), format!("psync:{i}"), value.clone()])
            .collect();
        let replies = mc
            .pipeline(&cmds)
            .map_err(|e| {
                format!(
                    "the master did not answer a pipeline of 1000 SETs (keys psync:{}..{}) \
                     within {}s ({e}); {:.1}s after the cut began the writes, with the replica's \
                     link down",
                    chunk[0],
                    chunk[chunk.len() - 1],
                    CMD_TIMEOUT.as_secs(),
                    writing.elapsed().as_secs_f64()
                )
            })
            .in_case(case)?;
        if let Some(bad) = replies
            .iter()
            .find(|r| !matches!(r, Reply::Simple(s) if s == "OK"))
        {
            return Err(Fail {
                case: case.into(),
                kind: Kind::Failed,
                msg: format!("SET on the master answered {bad:?}"),
            });
        }
    }
    let offset_cut = repl_offset(&mut mc, false).in_case(case)?;

    let t0 = Instant::now();
    proxy.restore();
    let (mut t_log, mut t_up, mut t_zero) = (None, None, None);
    loop {
        let now = t0.elapsed();
        if t_log.is_none() && g.get(r).log_text().matches(PSYNC_LINE).count() > lines_before {
            t_log = Some(now);
        }
        let text = rc.info("replication").in_case(case)?;
        let up = info_value(&text, "master_link_status") == Some("up");
        if t_up.is_none() && up {
            t_up = Some(now);
        }
        if t_zero.is_none() && up {
            let mo = repl_offset(&mut mc, false).in_case(case)?;
            if info_num(&text, "slave_repl_offset") == Some(mo) {
                t_zero = Some(now);
            }
        }
        if t_log.is_some() && t_up.is_some() && t_zero.is_some() {
            break;
        }
        if now >= PSYNC_DEADLINE {
            g.check_alive(&[m, r]).in_case(case)?;
            return Err(Fail {
                case: case.into(),
                kind: Kind::Failed,
                msg: format!(
                    "{}s after the link was restored: log line {:?} {}, link up {}, zero lag {} \
                     (replica INFO replication:\n{text})",
                    PSYNC_DEADLINE.as_secs(),
                    PSYNC_LINE,
                    if t_log.is_some() { "seen" } else { "not seen" },
                    t_up.is_some(),
                    t_zero.is_some()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (ok_after, full_after) = stats(g.port(m)).in_case(case)?;
    let want = digest(g.port(m)).in_case(case)?;
    let got = digest(g.port(r)).in_case(case)?;
    if want != got {
        return Err(Fail {
            case: case.into(),
            kind: Kind::Failed,
            msg: format!(
                "after the partial resync the replica's DEBUG DIGEST is {got}, the master's {want}"
            ),
        });
    }
    if let Some(a) = proxy.accepted_after(t0) {
        sink.rec(case, "replica reconnects", "ms", ms(a - t0));
    }
    sink.rec(
        case,
        "log: successful partial resync",
        "ms",
        ms(t_log.expect("set")),
    );
    sink.rec(case, "INFO: link up", "ms", ms(t_up.expect("set")));
    sink.rec(case, "zero lag", "ms", ms(t_zero.expect("set")));
    sink.rec(
        case,
        "bytes written while cut",
        "B",
        offset_cut.saturating_sub(offset_before) as f64,
    );
    sink.rec(
        case,
        "sync_partial_ok increment",
        "count",
        ok_after.saturating_sub(ok_before) as f64,
    );
    sink.rec(
        case,
        "sync_full increment",
        "count",
        full_after.saturating_sub(full_before) as f64,
    );
    if ok_after <= ok_before {
        sink.note(format!(
            "psync: sync_partial_ok did not increase on the master ({ok_before} → {ok_after})"
        ));
    }
    if full_after > full_before {
        sink.note(format!(
            "psync: the master did {} full sync(s) during the reconnect",
            full_after - full_before
        ));
    }
    eprint!(" psync={:.0}ms", ms(t_zero.expect("set")));
    drop(proxy);
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 4: chain M → R1 → R2

fn scenario_chain(ctx: &Ctx, sink: &mut Sink, g: &mut Group) -> Step<()> {
    let server = sink.server;
    let setup = "M → R1 → R2";
    let m = g.start(ctx, server, "master", &[]).in_case(setup)?;
    let r1 = g
        .start(ctx, server, "replica R1", &replica_of(g.port(m)))
        .in_case(setup)?;
    wait_link_up(g, &[r1], LINK_DEADLINE).in_case(setup)?;
    wait_online(g.port(m), 1, LINK_DEADLINE).in_case(setup)?;
    let t0 = Instant::now();
    let r2 = g
        .start(ctx, server, "replica R2 (of R1)", &replica_of(g.port(r1)))
        .in_case(setup)?;
    match wait_link_up(g, &[r2], CHAIN_DEADLINE) {
        Ok(_) => sink.rec(
            setup,
            "R2 start to link up",
            "s",
            t0.elapsed().as_secs_f64(),
        ),
        Err(e) => {
            let msg = g.explain(&format!(
                "R2 (replicaof R1) not linked within {}s: {e}",
                CHAIN_DEADLINE.as_secs()
            ));
            return Err(Fail {
                case: setup.into(),
                kind: Kind::Unsupported,
                msg,
            });
        }
    }
    wait_online(g.port(r1), 1, LINK_DEADLINE).in_case(setup)?;

    let idle = "idle";
    let prober = spawn_prober(
        g.port(m),
        vec![g.port(r1), g.port(r2)],
        "chain-idle".into(),
        Some(ctx.opts.chain_probes()),
    );
    // The prober stops by itself after its probes (`finish` would stop it
    // early, so wait for it), or when they take far longer than planned.
    let limit = TICK * (3 * ctx.opts.chain_probes() as u32) + Duration::from_secs(30);
    let started = Instant::now();
    while !prober.is_finished() && started.elapsed() < limit {
        std::thread::sleep(TICK);
    }
    let probes = prober.finish().in_case(idle)?;
    rec_chain(sink, idle, &probes);
    g.check_alive(&[m, r1, r2]).in_case(idle)?;

    let (size, pipeline) = (64, 1);
    let loaded = "under load (64 B -P 1)";
    let out = load_with_replicas(
        ctx,
        sink,
        g,
        m,
        &[r1, r2],
        size,
        pipeline,
        "chain-load".into(),
    )
    .in_case(loaded)?;
    sink.rec(loaded, "rps", "rps", out.rps);
    rec_chain(sink, loaded, &out.probes);
    let catch_up = out.catch_up.in_case(loaded)?;
    sink.rec(loaded, "catch-up after load", "ms", ms(catch_up));
    eprint!(
        " chain R2 p50={:.2}ms",
        out.probes.per_target[1].value_at_quantile(0.5) as f64 / 1e3
    );
    Ok(())
}

fn rec_chain(sink: &mut Sink, case: &str, probes: &ProbeOut) {
    rec_time_lag(
        sink,
        case,
        [
            "M→R1 time lag p50",
            "M→R1 time lag p99",
            "M→R1 time lag max",
        ],
        &probes.per_target[0],
    );
    rec_time_lag(
        sink,
        case,
        [
            "M→R1→R2 time lag p50",
            "M→R1→R2 time lag p99",
            "M→R1→R2 time lag max",
        ],
        &probes.per_target[1],
    );
    sink.rec(case, "probes sent", "count", probes.sent as f64);
    sink.rec(
        case,
        "probe sightings missed (>60 s)",
        "count",
        probes.missed as f64,
    );
    if let Some(d) = probes.errors.describe("chain prober") {
        sink.note(d);
    }
    sink.res.probes.push(ProbeRaw {
        server: sink.server,
        repeat: sink.repeat,
        scenario: Scenario::Chain,
        case: case.to_string(),
        lags_us: probes.raw.clone(),
    });
}

// ---------------------------------------------------------------------------
// Report

fn scenario_title(s: Scenario, opts: &Options) -> String {
    match s {
        Scenario::Load => format!(
            "load: redis-benchmark -t set -c {CLIENTS} -r {KEYSPACE} -d SIZE -P PIPE \
             ({}/{} requests at 64 B -P 1/16, {}/{} at 4096 B), master alone then with {REPLICAS} replicas;\n   \
             byte lag = master_repl_offset − slave_repl_offset every 10 ms; time lag = probe SET sent on \
             the master → first GET that finds it on a replica (every 10 ms, both replicas; missed if not seen in 60 s);\n   \
             catch-up = end of the load → every replica offset equals the master's; replica RSS \
             growth: largest VmRSS increase of a replica over the load and catch-up",
            opts.requests(64, 1),
            opts.requests(64, 16),
            opts.requests(4096, 1),
            opts.requests(4096, 16)
        ),
        Scenario::FullSync => format!(
            "fullsync: DEBUG POPULATE {} key {POPULATE_VALUE}, then replicas start while a writer does \
             {WRITER_RATE} SETs/s;\n   time to identical data = replica start → linked, writer \
             stopped, offsets equal (DEBUG DIGEST then checked equal); PSYNC = when the master \
             lists all the replicas;\n   MB/s = RDB size (from SAVE) / (PSYNC to identical data); \
             memory sampled every 10 ms (VmRSS of the master; PSS of the master and \
             its fork children)",
            opts.populate_keys()
        ),
        Scenario::Psync => format!(
            "psync: master ← proxy ← replica; the proxy cuts the link, {PSYNC_KEYS} SETs on the \
             master, the proxy lets connections through again; times from that moment"
        ),
        Scenario::Chain => format!(
            "chain: M → R1 → R2 (R2 replicaof R1); probes on M every 10 ms, polled on R1 and \
             R2 ({} probes idle)",
            opts.chain_probes()
        ),
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match unit {
        "rps" | "B" | "count" => format!("{v:.0}"),
        _ => {
            let a = v.abs();
            if a >= 100.0 {
                format!("{v:.0}")
            } else if a >= 10.0 {
                format!("{v:.1}")
            } else if a >= 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.3}")
            }
        }
    }
}

/// Rows of one scenario: cases in the order they were first recorded,
/// and within a case its metrics in that order.
fn rows_of(res: &Results, s: Scenario) -> Vec<(String, &'static str, &'static str)> {
    let mut cases: Vec<(String, Vec<(&'static str, &'static str)>)> = Vec::new();
    for r in res.records.iter().filter(|r| r.scenario == s) {
        let k = match cases.iter().position(|(c, _)| *c == r.case) {
            Some(k) => k,
            None => {
                cases.push((r.case.clone(), Vec::new()));
                cases.len() - 1
            }
        };
        if !cases[k].1.iter().any(|(m, _)| *m == r.metric) {
            cases[k].1.push((r.metric, r.unit));
        }
    }
    cases
        .into_iter()
        .flat_map(|(c, ms)| ms.into_iter().map(move |(m, u)| (c.clone(), m, u)))
        .collect()
}

fn values(res: &Results, s: Scenario, case: &str, metric: &str, server: Server) -> Vec<f64> {
    res.records
        .iter()
        .filter(|r| r.scenario == s && r.case == case && r.metric == metric && r.server == server)
        .map(|r| r.value)
        .collect()
}

fn table(res: &Results, s: Scenario, opts: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {}", scenario_title(s, opts));
    let header = ["case / metric", "Cascade", "Redis", "ratio"];
    let mut rows: Vec<Vec<String>> = Vec::new();
    let cell = |server: Server, case: &str, metric: &str, unit: &str| -> (String, f64) {
        let v = values(res, s, case, metric, server);
        if v.is_empty() {
            let p = res
                .problems
                .iter()
                .find(|p| p.scenario == s && p.server == server);
            let text = match p.map(|p| p.kind) {
                Some(Kind::Unsupported) => "unsupported",
                Some(Kind::Failed) => "FAILED",
                None => "n/a",
            };
            return (text.into(), f64::NAN);
        }
        let n = v.len();
        let m = median(v);
        let mut text = fmt_value(m, unit);
        if n < opts.repeat {
            let _ = write!(text, " ({n}/{})", opts.repeat);
        }
        (text, m)
    };
    let mut last_case = None;
    let all_rows = rows_of(res, s);
    for (case, metric, unit) in &all_rows {
        if last_case != Some(case) {
            rows.push(vec![
                format!("{case}:"),
                String::new(),
                String::new(),
                String::new(),
            ]);
            last_case = Some(case);
        }
        let (ct, cv) = cell(Server::Cascade, case, metric, unit);
        let (rt, rv) = cell(Server::Redis, case, metric, unit);
        let label = if *unit == "count" || *unit == "rps" {
            format!("  {metric}")
        } else {
            format!("  {metric} ({unit})")
        };
        rows.push(vec![label, ct, rt, ratio(cv, rv)]);
    }
    // Cases a server could not run at all.
    for p in res.problems.iter().filter(|p| p.scenario == s) {
        if !all_rows.iter().any(|(c, _, _)| *c == p.case) {
            let (c, r) = match p.server {
                Server::Cascade => (kind_text(p.kind), "-"),
                Server::Redis => ("-", kind_text(p.kind)),
            };
            rows.push(vec![
                format!("{}: (no data)", p.case),
                c.into(),
                r.into(),
                "-".into(),
            ]);
        }
    }
    out.push_str(&format_table(&header, &rows));
    for p in res.problems.iter().filter(|p| p.scenario == s) {
        let _ = writeln!(
            out,
            "  {} {} (repeat {}) at [{}]: {}",
            p.server.name(),
            kind_text(p.kind),
            p.repeat + 1,
            p.case,
            p.message.lines().next().unwrap_or("")
        );
    }
    out
}

fn kind_text(k: Kind) -> &'static str {
    match k {
        Kind::Failed => "FAILED",
        Kind::Unsupported => "unsupported",
    }
}

fn write_json(path: &Path, machine: &Machine, opts: &Options, res: &Results) -> Result<()> {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"machine\": {},", machine.json());
    let reqs: Vec<String> = SIZES
        .iter()
        .flat_map(|&s| {
            PIPELINES.iter().map(move |&p| {
                format!(
                    "{{\"size\": {s}, \"pipeline\": {p}, \"requests\": {}}}",
                    opts.requests(s, p)
                )
            })
        })
        .collect();
    let _ = writeln!(
        o,
        "  \"options\": {{\"quick\": {}, \"repeats\": {}, \"pin\": {}, \"clients\": {CLIENTS}, \
         \"keyspace\": {KEYSPACE}, \"replicas\": {REPLICAS}, \"populate_keys\": {}, \
         \"psync_keys\": {PSYNC_KEYS}, \"writer_rate\": {WRITER_RATE}, \"tick_ms\": {}, \
         \"probe_deadline_ms\": {}, \"requests\": [{}]}},",
        opts.quick,
        opts.repeat,
        opts.pin,
        opts.populate_keys(),
        TICK.as_millis(),
        PROBE_DEADLINE.as_millis(),
        reqs.join(", ")
    );
    let list = |o: &mut String, name: &str, items: Vec<String>, last: bool| {
        let _ = write!(o, "  \"{name}\": [\n    ");
        o.push_str(&items.join(",\n    "));
        let _ = writeln!(o, "\n  ]{}", if last { "" } else { "," });
    };
    list(
        &mut o,
        "records",
        res.records
            .iter()
            .map(|r| {
                format!(
                    "{{\"scenario\": {}, \"case\": {}, \"metric\": {}, \"unit\": {}, \
                     \"server\": {}, \"repeat\": {}, \"value\": {}}}",
                    json_str(r.scenario.key()),
                    json_str(&r.case),
                    json_str(r.metric),
                    json_str(r.unit),
                    json_str(r.server.key()),
                    r.repeat,
                    json_num(r.value)
                )
            })
            .collect(),
        false,
    );
    let mut medians = Vec::new();
    for &s in &SCENARIOS {
        for (case, metric, unit) in rows_of(res, s) {
            let c = median(values(res, s, &case, metric, Server::Cascade));
            let r = median(values(res, s, &case, metric, Server::Redis));
            medians.push(format!(
                "{{\"scenario\": {}, \"case\": {}, \"metric\": {}, \"unit\": {}, \
                 \"cascade\": {}, \"redis\": {}}}",
                json_str(s.key()),
                json_str(&case),
                json_str(metric),
                json_str(unit),
                json_num(c),
                json_num(r)
            ));
        }
    }
    list(&mut o, "medians", medians, false);
    list(
        &mut o,
        "problems",
        res.problems
            .iter()
            .map(|p| {
                format!(
                    "{{\"scenario\": {}, \"case\": {}, \"server\": {}, \"repeat\": {}, \
                     \"kind\": {}, \"message\": {}}}",
                    json_str(p.scenario.key()),
                    json_str(&p.case),
                    json_str(p.server.key()),
                    p.repeat,
                    json_str(kind_text(p.kind)),
                    json_str(&p.message)
                )
            })
            .collect(),
        false,
    );
    list(
        &mut o,
        "notes",
        res.notes.iter().map(|n| json_str(n)).collect(),
        false,
    );
    list(
        &mut o,
        "byte_lag_series",
        res.series
            .iter()
            .map(|s| {
                let pts: Vec<String> = s
                    .points
                    .iter()
                    .map(|(t, k, lag)| format!("[{t:.2}, {k}, {lag}]"))
                    .collect();
                format!(
                    "{{\"server\": {}, \"repeat\": {}, \"case\": {}, \"load_end_ms\": {:.2}, \
                     \"points_ms_replica_bytes\": [{}]}}",
                    json_str(s.server.key()),
                    s.repeat,
                    json_str(&s.case),
                    s.load_end_ms,
                    pts.join(", ")
                )
            })
            .collect(),
        false,
    );
    list(
        &mut o,
        "time_lag_probes_us",
        res.probes
            .iter()
            .map(|p| {
                let targets: Vec<String> = p
                    .lags_us
                    .iter()
                    .map(|v| {
                        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                        format!("[{}]", s.join(", "))
                    })
                    .collect();
                format!(
                    "{{\"server\": {}, \"repeat\": {}, \"scenario\": {}, \"case\": {}, \
                     \"per_replica\": [{}]}}",
                    json_str(p.server.key()),
                    p.repeat,
                    json_str(p.scenario.key()),
                    json_str(&p.case),
                    targets.join(", ")
                )
            })
            .collect(),
        true,
    );
    o.push_str("}\n");
    std::fs::write(path, o).map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// A "nice" step (1, 2 or 5 × 10^k) giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn human_bytes(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1} MB", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} kB", v / 1e3)
    } else {
        format!("{v:.0} B")
    }
}

/// An SVG of the byte lag (the larger of the replicas' at each sample) over
/// time in the first repeat of the `PLOT_CASE` load, one line per server.
fn write_plot(dir: &Path, res: &Results) -> Result<PathBuf> {
    let case = case_name(PLOT_CASE.0, PLOT_CASE.1);
    // (server, end of the load in s, (s, bytes) points)
    type Line = (Server, f64, Vec<(f64, f64)>);
    let mut lines: Vec<Line> = Vec::new();
    for server in [Server::Cascade, Server::Redis] {
        let Some(s) = res
            .series
            .iter()
            .filter(|s| s.server == server && s.case == case)
            .min_by_key(|s| s.repeat)
        else {
            continue;
        };
        let mut by_t: BTreeMap<u64, f64> = BTreeMap::new();
        for &(t, _, lag) in &s.points {
            let e = by_t.entry((t * 1000.0) as u64).or_insert(0.0);
            *e = e.max(lag as f64);
        }
        // Samples of one tick share one time (the master read).
        let pts = by_t.into_iter().map(|(t, v)| (t as f64 / 1e6, v)).collect();
        lines.push((server, s.load_end_ms / 1e3, pts));
    }
    if lines.is_empty() {
        return Err(format!("no byte-lag samples of the {case} load to plot"));
    }
    let (w, h) = (900.0, 420.0);
    let (left, right, top, bottom) = (80.0, 20.0, 40.0, 50.0);
    let max_t = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|x| x.0))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let max_v = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|x| x.1))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let (tx, ty) = (nice_step(max_t, 8.0), nice_step(max_v, 5.0));
    let max_t = (max_t / tx).ceil() * tx;
    let max_v = (max_v / ty).ceil() * ty;
    let x = |t: f64| left + t / max_t * (w - left - right);
    let y = |v: f64| h - bottom - v / max_v * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Replica byte lag \
         (max of {REPLICAS} replicas), SET {case}, -c {CLIENTS}</text>",
        w / 2.0
    );
    let mut v = 0.0;
    while v <= max_v + ty / 2.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            human_bytes(v),
            yy = y(v)
        );
        v += ty;
    }
    let decimals = (-tx.log10().floor()).max(0.0) as usize;
    let mut t = 0.0;
    while t <= max_t + tx / 2.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#eee\"/>\
             <text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.decimals$}</text>",
            h - bottom,
            h - bottom + 16.0,
            xx = x(t)
        );
        t += tx;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds since the load started \
         (dashed: end of the load; then the replicas catch up)</text>",
        (left + w - right) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>",
        w - left - right,
        h - top - bottom
    );
    for (k, (server, end, pts)) in lines.iter().enumerate() {
        let color = match server {
            Server::Cascade => "#d62728",
            Server::Redis => "#1f77b4",
        };
        let p: Vec<String> = pts
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.2\" points=\"{}\"/>",
            p.join(" ")
        );
        // The end of the load; the line goes on while the replicas catch up.
        let _ = writeln!(
            s,
            "<line x1=\"{ex:.1}\" x2=\"{ex:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"{color}\" \
             stroke-dasharray=\"4 3\"/>",
            h - bottom,
            ex = x(*end)
        );
        let ly = top + 16.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            w - right - 150.0,
            w - right - 125.0,
            w - right - 118.0,
            ly + 4.0,
            server.name()
        );
    }
    s.push_str("</svg>\n");
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    let path = dir.join("replication-byte-lag.svg");
    std::fs::write(&path, s).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(path)
}

// ---------------------------------------------------------------------------

fn run() -> Result<()> {
    let opts = Options::parse()?;
    let tools = Tools::find(&opts)?;
    let machine = Machine::probe(&tools.cascade, &tools.redis_server, &tools.redis_benchmark);
    if opts.pin {
        if machine.nproc < 2 {
            return Err(format!(
                "--pin needs cores {SERVER_CORE} and {CLIENT_CORE}; this process may use only {} CPU(s)",
                machine.nproc
            ));
        }
        pin_self(CLIENT_CORE)?;
    }
    let ctx = Ctx {
        tools: &tools,
        opts: &opts,
    };
    let mut res = Results::default();
    let started = Instant::now();
    for repeat in 0..opts.repeat {
        for server in Server::in_order(repeat) {
            for &scenario in &opts.only {
                eprint!(
                    "[repeat {}/{}] {} {}:",
                    repeat + 1,
                    opts.repeat,
                    server.name(),
                    scenario.key()
                );
                let t = Instant::now();
                let mut sink = Sink {
                    res: &mut res,
                    server,
                    repeat,
                    scenario,
                };
                run_scenario(&ctx, &mut sink, |ctx, sink, g| match scenario {
                    Scenario::Load => scenario_load(ctx, sink, g),
                    Scenario::FullSync => scenario_full_sync(ctx, sink, g),
                    Scenario::Psync => scenario_psync(ctx, sink, g),
                    Scenario::Chain => scenario_chain(ctx, sink, g),
                });
                eprintln!(" ({:.1}s)", t.elapsed().as_secs_f64());
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmachine: {} CPUs usable ({} online), {}, kernel {}",
        machine.nproc, machine.online, machine.model, machine.kernel
    );
    let _ = writeln!(
        out,
        "servers: {} / {}; client: {}",
        machine.cascade_version, machine.redis_version, machine.benchmark_version
    );
    let _ = writeln!(
        out,
        "repeats: {}{}; {}; server order alternates between repeats; run took {:.0}s",
        opts.repeat,
        if opts.quick { " (quick mode)" } else { "" },
        if opts.pin {
            "servers pinned to core 0 (Cascade --shards 1), client and bench threads to core 1"
        } else {
            "no pinning, Cascade with its default shards"
        },
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "cells: medians over the repeats (k/n: only k of n repeats gave a value); \
         ratio = Cascade/Redis (rps and MB/s: higher is better; lags, times, memory: lower is better)\n"
    );
    for &s in &opts.only {
        out.push_str(&table(&res, s, &opts));
        out.push('\n');
    }
    if !res.notes.is_empty() {
        out.push_str("notes:\n");
        for n in &res.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    if !res.problems.is_empty() {
        out.push_str("\nproblems (servers' command lines and logs):\n");
        for p in &res.problems {
            let _ = writeln!(
                out,
                "--- {} {} (repeat {}) [{}] {}:\n{}\n",
                p.server.name(),
                p.scenario.key(),
                p.repeat + 1,
                p.case,
                kind_text(p.kind),
                p.message
            );
        }
    }
    print!("{out}");
    if let Some(path) = &opts.json {
        write_json(path, &machine, &opts, &res)?;
        println!("raw values written to {}", path.display());
    }
    let mut plot_written = None;
    if let Some(dir) = &opts.plot {
        match write_plot(dir, &res) {
            Ok(path) => {
                println!("byte-lag plot written to {}", path.display());
                plot_written = Some(path);
            }
            Err(e) => println!("no plot: {e}"),
        }
    }
    if opts.check {
        let missing = check_complete(&res, &opts, plot_written.as_deref());
        if !missing.is_empty() {
            return Err(format!(
                "--check: the run is incomplete:\n  {}",
                missing.join("\n  ")
            ));
        }
        println!("check: every scenario ran on both servers and every row has both values");
    }
    Ok(())
}

/// What `--check` finds missing: problems, scenarios a server recorded
/// nothing for, rows with a value for only one server, output files not
/// written.
fn check_complete(res: &Results, opts: &Options, plot: Option<&Path>) -> Vec<String> {
    let mut missing: Vec<String> = res
        .problems
        .iter()
        .map(|p| {
            format!(
                "{} {} [{}]: {}",
                p.server.name(),
                p.scenario.key(),
                p.case,
                kind_text(p.kind)
            )
        })
        .collect();
    for &scenario in &opts.only {
        for server in [Server::Cascade, Server::Redis] {
            if !res
                .records
                .iter()
                .any(|r| r.scenario == scenario && r.server == server)
            {
                missing.push(format!("{}: no {} values", server.name(), scenario.key()));
            }
        }
    }
    let mut rows: Vec<(Scenario, &str, &str)> = res
        .records
        .iter()
        .map(|r| (r.scenario, r.case.as_str(), r.metric))
        .collect();
    rows.sort_by_key(|&(s, c, m)| (SCENARIOS.iter().position(|x| *x == s), c, m));
    rows.dedup();
    for (scenario, case, metric) in rows {
        for server in [Server::Cascade, Server::Redis] {
            let has = res.records.iter().any(|r| {
                r.scenario == scenario && r.case == case && r.metric == metric && r.server == server
            });
            if !has {
                missing.push(format!(
                    "{}: no value for {} [{case}] {metric}",
                    server.name(),
                    scenario.key()
                ));
            }
        }
    }
    if let Some(path) = &opts.json {
        if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            missing.push(format!("--json: {} was not written", path.display()));
        }
    }
    if opts.plot.is_some() && opts.only.contains(&Scenario::Load) {
        match plot {
            Some(p) if std::fs::metadata(p).is_ok_and(|m| m.len() > 0) => {}
            _ => missing.push("--plot: no SVG was written".into()),
        }
    }
    missing
}
