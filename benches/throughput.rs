//! Throughput and CPU cost of Cascade against `redis-server`, measured with
//! `redis-benchmark`.
//!
//! ```sh
//! cargo bench --bench throughput [-- --quick] [--repeat N] [--json FILE]
//! ```
//!
//! For each configuration ("per core": one Cascade shard and redis-server
//! pinned to core 0, redis-benchmark pinned to core 1; "defaults": no
//! pinning, Cascade with one shard per core) and each repeat, both servers
//! are started on a free port in a temporary directory, and
//! `redis-benchmark -t T -n N -c 50 -d 64 -r 100000 -P {1,16}` is run against
//! them for T in SET, GET, INCR, MSET. The order of the two servers
//! alternates between repeats. Each cell reports the median requests per
//! second, and the server's CPU time (user + system, all threads, from
//! `/proc/<pid>/stat`) per request.
//!
//! Needs `redis-server` and `redis-benchmark` (Debian packages redis-server
//! and redis-tools) and `taskset` (util-linux) on the PATH.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Result<T> = std::result::Result<T, String>;

/// `redis-benchmark -t` names, in the order they run (GET and INCR find the
/// keys SET created).
const TESTS: [&str; 4] = ["set", "get", "incr", "mset"];
const PIPELINES: [u32; 2] = [1, 16];
const CLIENTS: u32 = 50;
const DATA_SIZE: u32 = 64;
const KEYSPACE: u32 = 100_000;
/// MSET runs get this many times fewer requests (see `Options::requests`).
const MSET_DIVISOR: u64 = 5;
/// Core the servers run on and core redis-benchmark runs on, "per core".
const SERVER_CORE: &str = "0";
const CLIENT_CORE: &str = "1";
const START_DEADLINE: Duration = Duration::from_secs(20);
const STOP_DEADLINE: Duration = Duration::from_secs(10);

const USAGE: &str = "\
Usage: cargo bench --bench throughput [-- OPTIONS]

Options:
  --quick          one repeat, fewer requests (a smoke test)
  --repeat N       repeats per configuration (default 3, 1 with --quick)
  --json FILE      also write every raw measurement to FILE
  --timeout SECS   limit for one redis-benchmark run (default 600)
  --help           this text
";

fn main() {
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("throughput: error: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------
// Options, tools, machine

struct Options {
    quick: bool,
    repeat: usize,
    json: Option<PathBuf>,
    timeout: Duration,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut quick = false;
        let mut repeat = None;
        let mut json = None;
        let mut timeout = Duration::from_secs(600);
        // cargo bench appends --bench to the arguments of harness = false
        // targets; drop it first so it is never taken as an option's value.
        let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--repeat" => {
                    let v = args.next().ok_or("--repeat needs a number")?;
                    let n: usize = v
                        .parse()
                        .map_err(|_| format!("--repeat: not a number: {v:?}"))?;
                    if n == 0 {
                        return Err("--repeat must be at least 1".into());
                    }
                    repeat = Some(n);
                }
                "--json" => {
                    json = Some(PathBuf::from(args.next().ok_or("--json needs a file")?));
                }
                "--timeout" => {
                    let v = args.next().ok_or("--timeout needs seconds")?;
                    let s: u64 = v
                        .parse()
                        .map_err(|_| format!("--timeout: not a number: {v:?}"))?;
                    timeout = Duration::from_secs(s.max(1));
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(Options {
            quick,
            repeat: repeat.unwrap_or(if quick { 1 } else { 3 }),
            json,
            timeout,
        })
    }

    /// Requests per redis-benchmark run. An MSET request writes 10 keys, so
    /// it gets a fifth of the requests to keep its runs as short as the
    /// others'.
    fn requests(&self, test: &str, pipeline: u32) -> u64 {
        let n = match (self.quick, pipeline) {
            (true, 1) => 20_000,
            (true, _) => 200_000,
            (false, 1) => 200_000,
            (false, _) => 2_000_000,
        };
        if test == "mset" {
            n / MSET_DIVISOR
        } else {
            n
        }
    }
}

struct Tools {
    cascade: PathBuf,
    redis_server: PathBuf,
    redis_benchmark: PathBuf,
    taskset: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools> {
        let cascade = PathBuf::from(env!("CARGO_BIN_EXE_cascade"));
        if !cascade.is_file() {
            return Err(format!(
                "the cascade binary {} does not exist (run through `cargo bench`)",
                cascade.display()
            ));
        }
        let need = |name: &str, package: &str| {
            find_in_path(name).ok_or_else(|| {
                format!(
                    "`{name}` was not found on the PATH; install it with `sudo apt-get install {package}`"
                )
            })
        };
        Ok(Tools {
            cascade,
            redis_server: need("redis-server", "redis-server")?,
            redis_benchmark: need("redis-benchmark", "redis-tools")?,
            taskset: need("taskset", "util-linux")?,
        })
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

struct Machine {
    nproc: usize,
    online: usize,
    model: String,
    kernel: String,
    cascade_version: String,
    redis_version: String,
    benchmark_version: String,
}

impl Machine {
    fn probe(tools: &Tools) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let version = |bin: &Path| {
            let mut cmd = Command::new(bin);
            cmd.arg("--version");
            match run_captured(cmd, Duration::from_secs(10)) {
                Ok(out) if out.status.success() => out.stdout.trim().to_string(),
                _ => "unknown".into(),
            }
        };
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            online,
            model,
            kernel,
            cascade_version: version(&tools.cascade),
            redis_version: version(&tools.redis_server),
            benchmark_version: version(&tools.redis_benchmark),
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// Makes the kernel kill the child if this process dies (Ctrl-C, kill), so
/// no server outlives the benchmark even when Drop does not run.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => return Ok(None),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for a child process: {e}")),
        }
    }
}

struct Captured {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn reader_thread<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a command to completion with a time limit, capturing its output.
fn run_captured(mut cmd: Command, timeout: Duration) -> Result<Captured> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {desc}: {e}"))?;
    let out = reader_thread(child.stdout.take());
    let err = reader_thread(child.stderr.take());
    let status = match wait_timeout(&mut child, timeout)? {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{desc} did not finish within {}s; killed it",
                timeout.as_secs()
            ));
        }
    };
    Ok(Captured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn temp_dir(tag: &str) -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "cascade-bench-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("could not find a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("could not find a free port: {e}"))
}

// ---------------------------------------------------------------------------
// A tiny RESP client

/// Only read whole in this file, or printed with `{:?}` in error messages.
#[derive(Debug)]
#[allow(dead_code)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad("bad length in reply"));
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(num(rest)?),
        "$" => {
            let n = num(rest)?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = num(rest)?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad("unexpected reply type")),
    })
}

fn command(port: u16, args: &[&str], timeout: Duration) -> std::io::Result<Reply> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        let _ = write!(req, "${}\r\n{a}\r\n", a.len());
    }
    (&stream).write_all(req.as_bytes())?;
    read_reply(&mut BufReader::new(&stream))
}

/// One field of `INFO <section>`, as a number.
fn info_field(port: u16, section: &str, field: &str) -> Result<u64> {
    let reply = command(port, &["INFO", section], Duration::from_secs(5))
        .map_err(|e| format!("INFO {section} on port {port}: {e}"))?;
    let text = match reply {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(format!("INFO {section} on port {port}: got {other:?}")),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("INFO {section} on port {port} has no numeric {field}"))
}

// ---------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Server {
    Cascade,
    Redis,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Cascade => "Cascade",
            Server::Redis => "Redis",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Setup {
    PerCore,
    Defaults,
}

impl Setup {
    fn key(self) -> &'static str {
        match self {
            Setup::PerCore => "per_core",
            Setup::Defaults => "defaults",
        }
    }

    fn title(self) -> String {
        match self {
            Setup::PerCore => format!(
                "per core: Cascade --shards 1 and redis-server on core {SERVER_CORE}, \
                 redis-benchmark on core {CLIENT_CORE} (taskset)"
            ),
            Setup::Defaults => {
                "defaults: no pinning, Cascade with its default shards (one per core), \
                 redis-server defaults"
                    .to_string()
            }
        }
    }
}

/// A running server; killed and its directory removed on drop.
struct ServerProc {
    server: Server,
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ServerProc {
    fn start(server: Server, setup: Setup, tools: &Tools) -> Result<ServerProc> {
        let dir = temp_dir(&server.name().to_lowercase())?;
        let port = free_port()?;
        let bin = match server {
            Server::Cascade => &tools.cascade,
            Server::Redis => &tools.redis_server,
        };
        let mut cmd = match setup {
            Setup::PerCore => {
                let mut c = Command::new(&tools.taskset);
                c.arg("-c").arg(SERVER_CORE).arg(bin);
                c
            }
            Setup::Defaults => Command::new(bin),
        };
        cmd.args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&dir);
        if server == Server::Cascade && setup == Setup::PerCore {
            cmd.args(["--shards", "1"]);
        }
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("could not create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("could not open {}: {e}", log_path.display()))?;
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        die_with_parent(&mut cmd);
        let desc = format!("{cmd:?}");
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!("could not start {desc}: {e}"));
            }
        };
        // From here on, Drop cleans up.
        let mut proc = ServerProc {
            server,
            child,
            port,
            dir,
        };
        proc.wait_ready()
            .map_err(|e| format!("{e}\ncommand: {desc}\n{}", proc.log_tail()))?;
        Ok(proc)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!(
            "--- last lines of the {} log ---\n{tail}",
            self.server.name()
        )
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(format!(
                        "{} exited during start-up ({status})",
                        self.server.name()
                    ))
                }
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for {}: {e}", self.server.name())),
            }
            let last = match command(self.port, &["PING"], Duration::from_millis(500)) {
                Ok(Reply::Simple(s)) if s == "PONG" => return Ok(()),
                Ok(other) => format!("PING answered {other:?}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer PING on port {} within {}s ({last})",
                    self.server.name(),
                    self.port,
                    START_DEADLINE.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// user + system CPU time of the whole process (all threads), in ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let path = format!("/proc/{}/stat", self.pid());
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("could not read {path}: {e}"))?;
        // The command name may contain spaces and parentheses: fields are
        // counted from after the last ')'. There, field 3 (state) is index 0,
        // so utime (14) and stime (15) are indexes 11 and 12.
        let rest = text
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| format!("unexpected format of {path}"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(|| format!("unexpected format of {path}"))
        };
        Ok(field(11)? + field(12)?)
    }

    /// Distinct CPU affinity lists of the process's threads.
    fn thread_affinities(&self) -> Vec<String> {
        let mut lists = Vec::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return lists;
        };
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            if let Some(v) = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            {
                let v = v.trim().to_string();
                if !lists.contains(&v) {
                    lists.push(v);
                }
            }
        }
        lists.sort();
        lists
    }

    /// SHUTDOWN NOSAVE, then kill if the server does not exit in time.
    fn stop(mut self) -> Result<()> {
        let _ = command(self.port, &["SHUTDOWN", "NOSAVE"], Duration::from_secs(2));
        match wait_timeout(&mut self.child, STOP_DEADLINE)? {
            Some(_) => Ok(()),
            None => Err(format!(
                "{} did not exit within {}s of SHUTDOWN NOSAVE; killed it",
                self.server.name(),
                STOP_DEADLINE.as_secs()
            )),
        }
        // Drop kills (if needed) and removes the directory.
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = wait_timeout(&mut self.child, STOP_DEADLINE);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// Measurements

struct Sample {
    setup: Setup,
    server: Server,
    repeat: usize,
    test: &'static str,
    pipeline: u32,
    requests: u64,
    rps: f64,
    cpu_ticks: u64,
    cpu_us_per_req: f64,
    error_replies: u64,
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Finds the requests per second of `test` in redis-benchmark's --csv output:
/// a header `"test","rps",...` then lines like `"SET","123456.78",...`
/// (MSET is reported as `"MSET (10 keys)"`).
fn parse_csv_rps(stdout: &str, test: &str) -> Result<f64> {
    let mut header_ok = false;
    for line in stdout.lines() {
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if fields.len() < 2 {
            continue;
        }
        if fields[0] == "test" {
            if fields[1] != "rps" {
                return Err(format!(
                    "unexpected redis-benchmark CSV header (wanted \"test\",\"rps\",...): {line}"
                ));
            }
            header_ok = true;
            continue;
        }
        let name = fields[0].split(" (").next().unwrap_or("");
        if name.eq_ignore_ascii_case(test) {
            if !header_ok {
                return Err(format!(
                    "redis-benchmark CSV output has no \"test\",\"rps\" header:\n{stdout}"
                ));
            }
            return fields[1]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad rps value in redis-benchmark output: {line}"));
        }
    }
    Err(format!(
        "no {} row in redis-benchmark output:\n{stdout}",
        test.to_uppercase()
    ))
}

#[allow(clippy::too_many_arguments)]
fn measure(
    proc: &ServerProc,
    setup: Setup,
    repeat: usize,
    test: &'static str,
    pipeline: u32,
    requests: u64,
    tools: &Tools,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<Sample> {
    let mut cmd = match setup {
        Setup::PerCore => {
            let mut c = Command::new(&tools.taskset);
            c.arg("-c").arg(CLIENT_CORE).arg(&tools.redis_benchmark);
            c
        }
        Setup::Defaults => Command::new(&tools.redis_benchmark),
    };
    cmd.args(["-h", "127.0.0.1", "-p", &proc.port.to_string(), "-t", test])
        .args(["-n", &requests.to_string(), "-c", &CLIENTS.to_string()])
        .args(["-d", &DATA_SIZE.to_string(), "-P", &pipeline.to_string()])
        .args(["-r", &KEYSPACE.to_string(), "--csv"]);

    let errors_before = info_field(proc.port, "stats", "total_error_replies")?;
    let cpu_before = proc.cpu_ticks()?;
    let out = run_captured(cmd, opts.timeout)?;
    let cpu_after = proc.cpu_ticks()?;
    let errors_after = info_field(proc.port, "stats", "total_error_replies")?;

    let what = format!(
        "redis-benchmark {} -P {pipeline} against {}",
        test.to_uppercase(),
        proc.server.name()
    );
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status, out.stdout, out.stderr
        ));
    }
    let rps = parse_csv_rps(&out.stdout, test).map_err(|e| format!("{what}: {e}"))?;
    // Anything but the CSV (warnings, errors) is worth showing once.
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('"') {
            continue;
        }
        let note = format!("{}: {line}", proc.server.name());
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let cpu_ticks = cpu_after.saturating_sub(cpu_before);
    let cpu_us_per_req = cpu_ticks as f64 * 1e6 / clock_ticks_per_sec() as f64 / requests as f64;
    Ok(Sample {
        setup,
        server: proc.server,
        repeat,
        test,
        pipeline,
        requests,
        rps,
        cpu_ticks,
        cpu_us_per_req,
        error_replies: errors_after.saturating_sub(errors_before),
    })
}

fn run_setup(
    setup: Setup,
    tools: &Tools,
    opts: &Options,
    samples: &mut Vec<Sample>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for repeat in 0..opts.repeat {
        let order = if repeat % 2 == 0 {
            [Server::Cascade, Server::Redis]
        } else {
            [Server::Redis, Server::Cascade]
        };
        for server in order {
            eprint!(
                "[{}] repeat {}/{}: {}:",
                setup.key(),
                repeat + 1,
                opts.repeat,
                server.name()
            );
            let proc = ServerProc::start(server, setup, tools)?;
            if setup == Setup::PerCore {
                let aff = proc.thread_affinities();
                if aff.iter().any(|a| a != SERVER_CORE) {
                    let note = format!(
                        "{}: in the per-core setup its threads may run on CPUs {:?}, not only on core {SERVER_CORE}",
                        server.name(),
                        aff
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
            for pipeline in PIPELINES {
                for test in TESTS {
                    let requests = opts.requests(test, pipeline);
                    let s = measure(
                        &proc, setup, repeat, test, pipeline, requests, tools, opts, notes,
                    )?;
                    eprint!(" {}/P{pipeline}={:.0}", test.to_uppercase(), s.rps);
                    samples.push(s);
                }
            }
            eprintln!();
            proc.stop()?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Report

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Median rps and µs CPU per request of one cell.
struct Cell {
    rps: f64,
    cpu_us: f64,
    errors: u64,
}

fn cell(samples: &[Sample], setup: Setup, server: Server, test: &str, pipeline: u32) -> Cell {
    let of = |s: &&Sample| {
        s.setup == setup && s.server == server && s.test == test && s.pipeline == pipeline
    };
    let mine: Vec<&Sample> = samples.iter().filter(of).collect();
    Cell {
        rps: median(mine.iter().map(|s| s.rps).collect()),
        cpu_us: median(mine.iter().map(|s| s.cpu_us_per_req).collect()),
        errors: mine.iter().map(|s| s.error_replies).sum(),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn table(samples: &[Sample], setup: Setup, opts: &Options) -> String {
    let header = [
        "test",
        "Cascade rps",
        "Redis rps",
        "ratio",
        "Cascade µs/req",
        "Redis µs/req",
        "CPU ratio",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut errors = Vec::new();
    for pipeline in PIPELINES {
        for test in TESTS {
            let c = cell(samples, setup, Server::Cascade, test, pipeline);
            let r = cell(samples, setup, Server::Redis, test, pipeline);
            let label = format!("{} P{pipeline}", test.to_uppercase());
            for (server, x) in [(Server::Cascade, &c), (Server::Redis, &r)] {
                if x.errors > 0 {
                    errors.push(format!(
                        "  {label}: {} sent {} error replies",
                        server.name(),
                        x.errors
                    ));
                }
            }
            rows.push([
                label,
                format!("{:.0}", c.rps),
                format!("{:.0}", r.rps),
                ratio(c.rps, r.rps),
                format!("{:.2}", c.cpu_us),
                format!("{:.2}", r.cpu_us),
                ratio(c.cpu_us, r.cpu_us),
            ]);
        }
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut out = String::new();
    let _ = writeln!(out, "== {}", setup.title());
    let _ = writeln!(
        out,
        "   requests per run: {} at -P 1, {} at -P 16 (MSET: {} and {}); median of {} repeat(s)",
        opts.requests("set", 1),
        opts.requests("set", 16),
        opts.requests("mset", 1),
        opts.requests("mset", 16),
        opts.repeat
    );
    let line = |out: &mut String, cells: &[&str]| {
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i == 0 {
                let _ = write!(out, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{c}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, &header);
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let _ = writeln!(out, "{}", "-".repeat(total));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(|s| s.as_str()).collect();
        line(&mut out, &cells);
    }
    if !errors.is_empty() {
        let _ = writeln!(out, "error replies (INFO stats total_error_replies):");
        for e in errors {
            let _ = writeln!(out, "{e}");
        }
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn write_json(
    path: &Path,
    machine: &Machine,
    opts: &Options,
    setups: &[Setup],
    samples: &[Sample],
) -> Result<()> {
    let mut o = String::from("{\n");
    let _ = writeln!(
        o,
        "  \"machine\": {{\"nproc\": {}, \"online_cpus\": {}, \"model\": {}, \"kernel\": {}, \
         \"cascade\": {}, \"redis_server\": {}, \"redis_benchmark\": {}, \"clock_ticks_per_sec\": {}}},",
        machine.nproc,
        machine.online,
        json_str(&machine.model),
        json_str(&machine.kernel),
        json_str(&machine.cascade_version),
        json_str(&machine.redis_version),
        json_str(&machine.benchmark_version),
        clock_ticks_per_sec()
    );
    let _ = writeln!(
        o,
        "  \"quick\": {}, \"repeats\": {}, \"clients\": {CLIENTS}, \"data_size\": {DATA_SIZE}, \"keyspace\": {KEYSPACE},",
        opts.quick, opts.repeat
    );
    o.push_str("  \"samples\": [\n");
    for (i, s) in samples.iter().enumerate() {
        let _ = write!(
            o,
            "    {{\"config\": {}, \"server\": {}, \"repeat\": {}, \"test\": {}, \"pipeline\": {}, \
             \"requests\": {}, \"rps\": {}, \"cpu_ticks\": {}, \"cpu_us_per_req\": {}, \"error_replies\": {}}}",
            json_str(s.setup.key()),
            json_str(&s.server.name().to_lowercase()),
            s.repeat,
            json_str(&s.test.to_uppercase()),
            s.pipeline,
            s.requests,
            json_num(s.rps),
            s.cpu_ticks,
            json_num(s.cpu_us_per_req),
            s.error_replies
        );
        o.push_str(if i + 1 < samples.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ],\n  \"medians\": [\n");
    let mut medians = Vec::new();
    for &setup in setups {
        for pipeline in PIPELINES {
            for test in TESTS {
                let c = cell(samples, setup, Server::Cascade, test, pipeline);
                let r = cell(samples, setup, Server::Redis, test, pipeline);
                medians.push(format!(
                    "    {{\"config\": {}, \"test\": {}, \"pipeline\": {pipeline}, \
                     \"cascade_rps\": {}, \"redis_rps\": {}, \"cascade_cpu_us_per_req\": {}, \
                     \"redis_cpu_us_per_req\": {}}}",
                    json_str(setup.key()),
                    json_str(&test.to_uppercase()),
                    json_num(c.rps),
                    json_num(r.rps),
                    json_num(c.cpu_us),
                    json_num(r.cpu_us)
                ));
            }
        }
    }
    o.push_str(&medians.join(",\n"));
    o.push_str("\n  ]\n}\n");
    std::fs::write(path, o).map_err(|e| format!("could not write {}: {e}", path.display()))
}

fn run() -> Result<()> {
    let opts = Options::parse()?;
    let tools = Tools::find()?;
    let machine = Machine::probe(&tools);
    let setups = [Setup::PerCore, Setup::Defaults];
    if machine.nproc < 2 {
        return Err(format!(
            "the per-core setup needs cores {SERVER_CORE} and {CLIENT_CORE}; this process may use only {} CPU(s)",
            machine.nproc
        ));
    }

    let mut samples = Vec::new();
    let mut notes = Vec::new();
    for setup in setups {
        run_setup(setup, &tools, &opts, &mut samples, &mut notes)?;
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
        "redis-benchmark -c {CLIENTS} -d {DATA_SIZE} -r {KEYSPACE}; repeats: {}{}; \
         server order alternates between repeats",
        opts.repeat,
        if opts.quick { " (quick mode)" } else { "" }
    );
    let _ = writeln!(
        out,
        "rps: requests per second (median); µs/req: server CPU time (user+system, all threads) per request (median)\n"
    );
    for setup in setups {
        out.push_str(&table(&samples, setup, &opts));
        out.push('\n');
    }
    let mut by_server: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &notes {
        let (who, what) = n.split_once(": ").unwrap_or(("", n));
        by_server.entry(who).or_default().push(what);
    }
    if !by_server.is_empty() {
        out.push_str("notes:\n");
        for (who, lines) in by_server {
            for l in lines {
                let _ = writeln!(out, "  {who}: {l}");
            }
        }
    }
    print!("{out}");
    if let Some(path) = &opts.json {
        write_json(path, &machine, &opts, &setups, &samples)?;
        println!("raw values written to {}", path.display());
    }
    Ok(())
}
