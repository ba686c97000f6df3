//! MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP, with Redis's
//! replies and errors. The figures are Cascade's own: allocations counted
//! by `crate::alloc`, table overheads measured by each shard, and per-key
//! estimates (`Db::memory_usage`), so they differ from Redis's numbers for
//! the same data, as two allocators would.

use super::args::int_arg;
use super::error::{CmdError, CmdResult};
use super::server::{help, sub_arity, unknown_sub};
use super::Client;
use crate::node::unix_ms;
use crate::resp::Reply;
use crate::shard;
use bytes::Bytes;

pub async fn run(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let n = args.len();
    match sub.as_str() {
        "usage" if n >= 3 => usage(client, args).await,
        "stats" if n == 2 => Ok(stats(client).await),
        "doctor" if n == 2 => Ok(Reply::Verbatim(Bytes::from(doctor(client).await))),
        "malloc-stats" if n == 2 => Ok(Reply::Verbatim(Bytes::from_static(
            b"Stats not supported for the current allocator",
        ))),
        "purge" if n == 2 => {
            crate::shard::gather(|_| crate::alloc::purge()).await;
            Ok(Reply::Ok)
        }
        "help" if n == 2 => help(&[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ]),
        "usage" | "stats" | "doctor" | "malloc-stats" | "purge" | "help" => {
            Err(sub_arity("memory", &sub))
        }
        _ => Err(unknown_sub("memory", &args[1])),
    }
}

/// MEMORY USAGE key [SAMPLES count]. Every element is counted (a value's
/// size is known without sampling), so SAMPLES is only validated.
async fn usage(client: &Client, args: &[Bytes]) -> CmdResult {
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"samples") && i + 1 < args.len() {
            if int_arg(&args[i + 1])? < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = args[2].clone();
    let db = client.db;
    let target = client.shard.shard_of(&key);
    let bytes = shard::run_on(target, move |core| {
        core.db(db).memory_usage(&key, unix_ms())
    })
    .await;
    Ok(bytes.map_or(Reply::Nil, |b| Reply::Int(b as i64)))
}

/// What every shard holds, summed per database.
struct Tables {
    /// Per database: keys, main table bytes, expires table bytes.
    dbs: Vec<(usize, usize, usize)>,
}

async fn tables() -> Tables {
    let per_shard = shard::gather(|core| {
        core.ks
            .dbs()
            .iter()
            .map(|d| {
                let (main, expires) = d.table_bytes();
                (d.len(), main, expires)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut dbs = vec![(0, 0, 0); per_shard.first().map_or(0, Vec::len)];
    for shard in per_shard {
        for (sum, (keys, main, expires)) in dbs.iter_mut().zip(shard) {
            sum.0 += keys;
            sum.1 += main;
            sum.2 += expires;
        }
    }
    Tables { dbs }
}

async fn stats(client: &Client) -> Reply {
    let t = tables().await;
    let total = crate::alloc::allocated_bytes();
    let peak = crate::alloc::peak_bytes().max(total);
    let startup = crate::alloc::startup_bytes();
    // The script cache and the function libraries (as INFO memory's
    // used_memory_scripts_eval and used_memory_functions).
    let (_, scripts) = crate::scripting::cache_stats();
    let functions = crate::scripting::functions::memory();
    let backlog = client.node.repl.backlog().map_or(0, |b| b.capacity()) as u64;
    let rss = super::info::rss_bytes();
    let int = |v: u64| Reply::Int(v as i64);
    let text = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
    let ratio = |a: u64, b: u64| Reply::Double(if b > 0 { a as f64 / b as f64 } else { 0.0 });
    let mut out = vec![
        (text("peak.allocated"), int(peak)),
        (text("total.allocated"), int(total)),
        (text("startup.allocated"), int(startup)),
        (text("replication.backlog"), int(backlog)),
        (text("clients.slaves"), int(0)),
        (text("clients.normal"), int(0)),
        (text("cluster.links"), int(0)),
        (text("aof.buffer"), int(0)),
        (text("lua.caches"), int(scripts as u64)),
        (text("functions.caches"), int(functions as u64)),
    ];
    let mut overhead = startup + backlog + (scripts + functions) as u64;
    let mut keys = 0u64;
    for (i, &(n, main, expires)) in t.dbs.iter().enumerate() {
        if n == 0 {
            continue;
        }
        keys += n as u64;
        overhead += (main + expires) as u64;
        out.push((
            Reply::Bulk(Bytes::from(format!("db.{i}"))),
            Reply::Map(vec![
                (text("overhead.hashtable.main"), int(main as u64)),
                (text("overhead.hashtable.expires"), int(expires as u64)),
                (text("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let net = total.saturating_sub(startup);
    let dataset = total.saturating_sub(overhead);
    out.extend([
        (text("overhead.total"), int(overhead)),
        (text("keys.count"), int(keys)),
        (
            text("keys.bytes-per-key"),
            int(net.checked_div(keys).unwrap_or(0)),
        ),
        (text("dataset.bytes"), int(dataset)),
        (
            text("dataset.percentage"),
            Reply::Double(if net > 0 {
                dataset as f64 * 100.0 / net as f64
            } else {
                0.0
            }),
        ),
        (
            text("peak.percentage"),
            Reply::Double(total as f64 * 100.0 / peak.max(1) as f64),
        ),
        (text("allocator.allocated"), int(total)),
        (text("allocator.active"), int(total)),
        (text("allocator.resident"), int(rss)),
        (text("allocator-fragmentation.ratio"), ratio(1, 1)),
        (text("allocator-fragmentation.bytes"), int(0)),
        (text("allocator-rss.ratio"), ratio(rss, total)),
        (text("allocator-rss.bytes"), int(rss.saturating_sub(total))),
        (text("rss-overhead.ratio"), ratio(1, 1)),
        (text("rss-overhead.bytes"), int(0)),
        (text("fragmentation"), ratio(rss, total)),
        (text("fragmentation.bytes"), int(rss.saturating_sub(total))),
    ]);
    Reply::Map(out)
}

/// A short report in words, in the spirit of Redis's: what stands out in
/// the numbers `MEMORY STATS` gives.
async fn doctor(client: &Client) -> String {
    let t = tables().await;
    let total = crate::alloc::allocated_bytes();
    let peak = crate::alloc::peak_bytes().max(total);
    let rss = super::info::rss_bytes();
    let keys: usize = t.dbs.iter().map(|d| d.0).sum();
    let max = client.node.memory.maxmemory();
    if total < 5 << 20 || keys == 0 {
        return "This instance is empty or uses very little memory: there is nothing to report yet.".into();
    }
    let mut issues = Vec::new();
    if peak > total.saturating_mul(3) / 2 {
        issues.push(format!(
            " * Peak memory: the peak ({}) was more than 150% of the memory used now ({}): RSS may stay high after big deletions.",
            super::info::human_bytes(peak),
            super::info::human_bytes(total)
        ));
    }
    if rss > total.saturating_mul(14) / 10 {
        issues.push(format!(
            " * High fragmentation: the process's RSS ({}) is more than 1.4 times the memory allocated ({}).",
            super::info::human_bytes(rss),
            super::info::human_bytes(total)
        ));
    }
    if max != 0 && total > max.saturating_mul(9) / 10 {
        issues.push(format!(
            " * Near maxmemory: {} of {} used; keys are evicted by '{}' or writes refused with -OOM.",
            super::info::human_bytes(total),
            super::info::human_bytes(max),
            client.node.config().maxmemory_policy()
        ));
    }
    if issues.is_empty() {
        "No memory problems were found in this instance.".into()
    } else {
        format!(
            "Memory report for this instance:\n\n{}\n",
            issues.join("\n\n")
        )
    }
}
