//! Write throughput with the append-only file on, Cascade against
//! `redis-server`, for `appendfsync always` and `everysec`.
//!
//! ```sh
//! cargo bench --bench aof [-- --repeat N] [--requests N]
//! ```
//!
//! For each policy and each repeat, both servers are started in fresh
//! temporary directories with `--appendonly yes --appendfsync <policy>`
//! and `redis-benchmark -t set -c 50 -d 64 -r 100000 -n N --csv` runs
//! against them, the order of the two alternating between repeats (the
//! disk is shared, and fsync latency drifts with what else writes to it).
//! Prints the median requests per second of each and their ratio.
//!
//! Under `always` every reply waits for an fsync covering its write: one
//! client with one request in flight gets at most one write per fsync, so
//! 50 clients get at most 50 writes per fsync on either server; the ratio
//! shows how full each server's fsync groups are.
//!
//! Needs `redis-server` and `redis-benchmark` on the PATH.

mod common;

use common::{
    cascade_binary, format_table, median, need_tool, parse_csv_rps, ratio, run_captured, Launch,
    Result, Server, ServerProc,
};
use std::process::Command;
use std::time::Duration;

const CLIENTS: u32 = 50;
const POLICIES: [&str; 2] = ["always", "everysec"];

fn main() {
    if let Err(e) = run() {
        eprintln!("aof bench: {e}");
        std::process::exit(1);
    }
}

fn arg_value(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeat = arg_value(&args, "--repeat", 3)?.max(1);
    let requests = arg_value(&args, "--requests", 50_000)?.max(1);
    let cascade = cascade_binary()?;
    let redis = need_tool("redis-server", "redis-server")?;
    let benchmark = need_tool("redis-benchmark", "redis-tools")?;
    let mut rows = Vec::new();
    for policy in POLICIES {
        let mut rps = [Vec::new(), Vec::new()];
        for r in 0..repeat {
            for server in Server::in_order(r as usize) {
                let bin = server.pick(&cascade, &redis);
                let proc = ServerProc::start(Launch {
                    server,
                    bin,
                    pin: None,
                    args: ["--appendonly", "yes", "--appendfsync", policy]
                        .map(String::from)
                        .to_vec(),
                    label: format!("aof {policy} {}", server.key()),
                })?;
                let mut cmd = Command::new(&benchmark);
                cmd.args(["-h", "127.0.0.1", "-p", &proc.port.to_string(), "-t", "set"])
                    .args(["-n", &requests.to_string(), "-c", &CLIENTS.to_string()])
                    .args(["-d", "64", "-r", "100000", "--csv"]);
                let out = run_captured(cmd, Duration::from_secs(600))?;
                if !out.status.success() {
                    return Err(format!("redis-benchmark failed: {}", out.stderr));
                }
                let v = parse_csv_rps(&out.stdout, "set")?;
                rps[(server == Server::Redis) as usize].push(v);
                eprintln!("{policy} {}: {v:.0} rps", server.name());
            }
        }
        let (c, r) = (median(rps[0].clone()), median(rps[1].clone()));
        rows.push(vec![
            policy.to_string(),
            format!("{c:.0}"),
            format!("{r:.0}"),
            ratio(c, r),
        ]);
    }
    println!(
        "SET, {CLIENTS} clients, 64-byte values, {requests} requests, median of {repeat}\n{}",
        format_table(
            &["appendfsync", "Cascade rps", "Redis rps", "Cascade/Redis"],
            &rows
        )
    );
    Ok(())
}
