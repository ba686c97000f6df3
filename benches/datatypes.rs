//! Data-type benchmark: memory of collections and throughput of the
//! collection writes, Cascade vs `redis-server` from PATH, same machine,
//! same run, order alternating between repeats.
//!
//! Memory, each dataset on a fresh server (loaded with pipelined writes):
//! - N small hashes (`HSET hash:<i> name user<i> visits <i>`, listpack);
//! - one sorted set of N members (`ZADD zset <i/7> member:<i>`, skiplist);
//!
//! reported as `used_memory` and the process RSS after loading, less the
//! same figures of the empty server.
//!
//! Throughput: `redis-benchmark -t lpush,hset,zadd -n M -c 50 -P 16
//! -r 100000 --csv` against a fresh server; requests per second.
//!
//! `cargo bench --bench datatypes [-- --quick] [--keys N] [--repeat R]`

mod common;

use common::{
    bench_args, cascade_binary, format_table, info_value, median, memory_kb, need_tool,
    parse_csv_rps, ratio, repeat_arg, run_captured, Conn, Launch, Result, Server, ServerProc,
};
use std::process::Command;
use std::time::Duration;

const CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Commands per pipelined batch while loading.
const BATCH: usize = 1000;
/// Members per ZADD while loading the sorted set.
const ZADD_MEMBERS: u64 = 100;
const THROUGHPUT_TESTS: [&str; 3] = ["lpush", "hset", "zadd"];

/// Memory grown by a dataset, in MB.
#[derive(Default, Clone, Copy)]
struct Memory {
    used: f64,
    rss: f64,
}

#[derive(Default, Clone)]
struct Run {
    hashes: Memory,
    zset: Memory,
    /// Requests per second per `THROUGHPUT_TESTS` entry.
    rps: Vec<f64>,
}

/// One table row's figure out of a run.
type Metric = Box<dyn Fn(&Run) -> f64>;

fn main() {
    if let Err(e) = run() {
        eprintln!("datatypes: error: {e}");
        std::process::exit(1);
    }
}

struct Options {
    keys: u64,
    requests: u64,
    repeat: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        keys: 1_000_000,
        requests: 1_000_000,
        repeat: 3,
    };
    let mut args = bench_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => {
                o.keys = 100_000;
                o.requests = 100_000;
                o.repeat = 1;
            }
            "--keys" => {
                let v = args.next().ok_or("--keys needs a number")?;
                o.keys = v
                    .parse()
                    .map_err(|_| format!("--keys: not a number: {v:?}"))?;
            }
            "--repeat" => o.repeat = repeat_arg(&mut args)?,
            "-h" | "--help" => {
                println!("cargo bench --bench datatypes -- [--quick] [--keys N] [--repeat R]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(o)
}

fn run() -> Result<()> {
    let o = options()?;
    let cascade = cascade_binary()?;
    let redis = need_tool("redis-server", "redis-server")?;
    let bench = need_tool("redis-benchmark", "redis-tools")?;
    let mut results: Vec<(Server, Run)> = Vec::new();
    for r in 0..o.repeat {
        for server in Server::in_order(r) {
            let bin = server.pick(&cascade, &redis);
            let run = Run {
                hashes: memory_of(server, bin, o.keys, load_hashes)?,
                zset: memory_of(server, bin, o.keys, load_zset)?,
                rps: throughput(server, bin, &bench, o.requests)?,
            };
            eprintln!(
                "[repeat {}/{}] {}: hashes {:.1} MB used / {:.1} MB RSS, zset {:.1} MB used / {:.1} MB RSS, rps {:?}",
                r + 1,
                o.repeat,
                server.name(),
                run.hashes.used,
                run.hashes.rss,
                run.zset.used,
                run.zset.rss,
                run.rps
            );
            results.push((server, run));
        }
    }
    let med = |server: Server, f: &dyn Fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(s, _)| *s == server)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let n = o.keys;
    let mut rows: Vec<(String, Metric)> = vec![
        (
            format!("{n} small hashes: used_memory (MB)"),
            Box::new(|r: &Run| r.hashes.used),
        ),
        (
            format!("{n} small hashes: RSS (MB)"),
            Box::new(|r: &Run| r.hashes.rss),
        ),
        (
            format!("1 zset of {n}: used_memory (MB)"),
            Box::new(|r: &Run| r.zset.used),
        ),
        (
            format!("1 zset of {n}: RSS (MB)"),
            Box::new(|r: &Run| r.zset.rss),
        ),
    ];
    for (i, t) in THROUGHPUT_TESTS.iter().enumerate() {
        rows.push((
            format!("{} (requests/s, -P 16)", t.to_uppercase()),
            Box::new(move |r: &Run| r.rps[i]),
        ));
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, f)| {
            let (c, r) = (med(Server::Cascade, f), med(Server::Redis, f));
            vec![
                name.clone(),
                format!("{c:.1}"),
                format!("{r:.1}"),
                ratio(c, r),
            ]
        })
        .collect();
    println!(
        "\ndatatypes: median of {} (ratio Cascade/Redis; memory is growth over the empty server)\n{}",
        o.repeat,
        format_table(&["", "Cascade", "Redis", "ratio"], &table)
    );
    Ok(())
}

fn start(server: Server, bin: &std::path::Path, what: &str) -> Result<ServerProc> {
    ServerProc::start(Launch {
        server,
        bin,
        pin: None,
        args: Vec::new(),
        label: format!("{} {what}", server.name()),
    })
}

/// `used_memory` (bytes) and RSS (kB) of a server.
fn memory_now(proc: &ServerProc, c: &mut Conn) -> Result<(u64, u64)> {
    let info = c.info("memory")?;
    let used = info_value(&info, "used_memory")
        .and_then(|v| v.parse().ok())
        .ok_or("INFO memory has no used_memory")?;
    Ok((used, memory_kb(proc.pid(), false).0))
}

/// Starts a fresh server, loads a dataset with `load`, and returns what it
/// added to `used_memory` and RSS.
fn memory_of(
    server: Server,
    bin: &std::path::Path,
    n: u64,
    load: fn(&mut Conn, u64) -> Result<()>,
) -> Result<Memory> {
    let proc = start(server, bin, "memory")?;
    let mut c = Conn::open(proc.port, CALL_TIMEOUT).map_err(|e| e.to_string())?;
    let (used0, rss0) = memory_now(&proc, &mut c)?;
    load(&mut c, n)?;
    let (used1, rss1) = memory_now(&proc, &mut c)?;
    proc.stop()?;
    Ok(Memory {
        used: used1.saturating_sub(used0) as f64 / (1 << 20) as f64,
        rss: rss1.saturating_sub(rss0) as f64 / 1024.0,
    })
}

fn send_all(c: &mut Conn, cmds: &[Vec<String>]) -> Result<()> {
    for chunk in cmds.chunks(BATCH) {
        for r in c.pipeline(chunk).map_err(|e| e.to_string())? {
            if let common::Reply::Error(e) = r {
                return Err(format!("loading: {e}"));
            }
        }
    }
    Ok(())
}

fn load_hashes(c: &mut Conn, n: u64) -> Result<()> {
    let mut i = 0;
    while i < n {
        let end = (i + BATCH as u64).min(n);
        let cmds: Vec<Vec<String>> = (i..end)
            .map(|k| {
                vec![
                    "HSET".into(),
                    format!("hash:{k}"),
                    "name".into(),
                    format!("user{k}"),
                    "visits".into(),
                    k.to_string(),
                ]
            })
            .collect();
        send_all(c, &cmds)?;
        i = end;
    }
    Ok(())
}

fn load_zset(c: &mut Conn, n: u64) -> Result<()> {
    let mut i = 0;
    while i < n {
        let mut cmds = Vec::with_capacity(BATCH);
        while cmds.len() < BATCH && i < n {
            let end = (i + ZADD_MEMBERS).min(n);
            let mut cmd = vec!["ZADD".to_string(), "zset".to_string()];
            for k in i..end {
                cmd.push(format!("{}", k as f64 / 7.0));
                cmd.push(format!("member:{k}"));
            }
            cmds.push(cmd);
            i = end;
        }
        send_all(c, &cmds)?;
    }
    Ok(())
}

/// Requests per second of each `THROUGHPUT_TESTS` entry on a fresh server.
fn throughput(
    server: Server,
    bin: &std::path::Path,
    bench: &std::path::Path,
    requests: u64,
) -> Result<Vec<f64>> {
    let proc = start(server, bin, "throughput")?;
    let mut out = Vec::new();
    for t in THROUGHPUT_TESTS {
        let mut cmd = Command::new(bench);
        cmd.args(["-p", &proc.port.to_string()])
            .args(["-t", t, "-n", &requests.to_string()])
            .args(["-c", "50", "-P", "16", "-r", "100000", "--csv"]);
        let got = run_captured(cmd, CALL_TIMEOUT)?;
        if !got.status.success() {
            return Err(format!(
                "redis-benchmark -t {t} failed: {}\n{}",
                got.stderr,
                proc.log_tail()
            ));
        }
        out.push(parse_csv_rps(&got.stdout, t)?);
    }
    proc.stop()?;
    Ok(out)
}
