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

mod common;

use common::{
    cascade_binary, format_table, info_field, json_num, json_str, median, need_tool, parse_csv_rps,
    ratio, run_captured, Launch, Machine, Result, Server, ServerProc,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
        let mut args = common::bench_args();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--repeat" => repeat = Some(common::repeat_arg(&mut args)?),
                "--json" => json = Some(common::path_arg("--json", "a file", &mut args)?),
                "--timeout" => timeout = common::timeout_arg(&mut args)?,
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
        Ok(Tools {
            cascade: cascade_binary()?,
            redis_server: need_tool("redis-server", "redis-server")?,
            redis_benchmark: need_tool("redis-benchmark", "redis-tools")?,
            taskset: need_tool("taskset", "util-linux")?,
        })
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

fn start_server(server: Server, setup: Setup, tools: &Tools) -> Result<ServerProc> {
    let bin = match server {
        Server::Cascade => &tools.cascade,
        Server::Redis => &tools.redis_server,
    };
    let mut args = Vec::new();
    if server == Server::Cascade && setup == Setup::PerCore {
        args.extend(["--shards".to_string(), "1".to_string()]);
    }
    ServerProc::start(Launch {
        server,
        bin,
        pin: match setup {
            Setup::PerCore => Some((&tools.taskset, SERVER_CORE)),
            Setup::Defaults => None,
        },
        args,
        label: server.name().to_string(),
    })
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
    let cpu_us_per_req =
        cpu_ticks as f64 * 1e6 / common::clock_ticks_per_sec() as f64 / requests as f64;
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
        for server in Server::in_order(repeat) {
            eprint!(
                "[{}] repeat {}/{}: {}:",
                setup.key(),
                repeat + 1,
                opts.repeat,
                server.name()
            );
            let proc = start_server(server, setup, tools)?;
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
    let mut rows: Vec<Vec<String>> = Vec::new();
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
            rows.push(vec![
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
    out.push_str(&format_table(&header, &rows));
    if !errors.is_empty() {
        let _ = writeln!(out, "error replies (INFO stats total_error_replies):");
        for e in errors {
            let _ = writeln!(out, "{e}");
        }
    }
    out
}

fn write_json(
    path: &Path,
    machine: &Machine,
    opts: &Options,
    setups: &[Setup],
    samples: &[Sample],
) -> Result<()> {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"machine\": {},", machine.json());
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
    let machine = Machine::probe(&tools.cascade, &tools.redis_server, &tools.redis_benchmark);
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
