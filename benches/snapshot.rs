//! Snapshot benchmark: SAVE and BGSAVE of N × 100-byte keys (default 1M),
//! Cascade vs `redis-server` from PATH, same machine, same run, order
//! alternating between repeats.
//!
//! For each server: `DEBUG POPULATE N key 100`, then
//! - SAVE: wall time, MB/s of the written file, and keys saved per second
//!   (the fairer rate: both servers save the same keys, but files differ in
//!   size, ours compressing runs of equal bytes a little further);
//! - BGSAVE while a writer overwrites random keys at full speed: time until
//!   `rdb_bgsave_in_progress:0`, and the peak extra memory of the whole
//!   process tree (PSS of the server and its fork children, sampled every
//!   10 ms) over the memory before the save, also as a share of that
//!   memory (the dataset);
//! - restart: a new server started on that dump, timed from its spawn until
//!   it has loaded every key (`loading:0` and `DBSIZE` equal to N), and its
//!   own "DB loaded from disk" figure.
//!
//! `cargo bench --bench snapshot [-- --quick] [--keys N] [--repeat R]`

mod common;

use common::{
    bench_args, cascade_binary, format_table, info_value, median, memory_kb, need_tool, ratio,
    repeat_arg, Conn, Launch, Reply, Result, Server, ServerProc,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Default, Clone)]
struct Run {
    save_s: f64,
    save_mb_s: f64,
    save_keys_s: f64,
    bgsave_s: f64,
    extra_mb: f64,
    extra_pct: f64,
    writes: f64,
    restart_s: f64,
    load_log_s: f64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("snapshot: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut keys: u64 = 1_000_000;
    let mut repeat = 3;
    let mut args = bench_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => {
                keys = 100_000;
                repeat = 1;
            }
            "--keys" => {
                let v = args.next().ok_or("--keys needs a number")?;
                keys = v
                    .parse()
                    .map_err(|_| format!("--keys: not a number: {v:?}"))?;
            }
            "--repeat" => repeat = repeat_arg(&mut args)?,
            "-h" | "--help" => {
                println!("cargo bench --bench snapshot -- [--quick] [--keys N] [--repeat R]");
                return Ok(());
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let cascade = cascade_binary()?;
    let redis = need_tool("redis-server", "redis-server")?;
    let mut results: Vec<(Server, Run)> = Vec::new();
    for r in 0..repeat {
        for server in Server::in_order(r) {
            let bin = server.pick(&cascade, &redis);
            let run = measure(server, bin, keys)?;
            eprintln!(
                "[repeat {}/{repeat}] {}: SAVE {:.2}s ({:.1} MB/s), BGSAVE under writes {:.2}s, extra {:.1} MB ({:.1}%), restart {:.2}s",
                r + 1,
                server.name(),
                run.save_s,
                run.save_mb_s,
                run.bgsave_s,
                run.extra_mb,
                run.extra_pct,
                run.restart_s
            );
            results.push((server, run));
        }
    }
    let med = |server: Server, f: fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(s, _)| *s == server)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    type Metric = fn(&Run) -> f64;
    let rows: Vec<(&str, Metric)> = vec![
        ("SAVE time (s)", |r| r.save_s),
        ("SAVE throughput (MB/s)", |r| r.save_mb_s),
        ("SAVE throughput (keys/s)", |r| r.save_keys_s),
        ("BGSAVE time under writes (s)", |r| r.bgsave_s),
        ("BGSAVE peak extra memory (MB)", |r| r.extra_mb),
        ("  as % of the dataset", |r| r.extra_pct),
        ("writes during BGSAVE", |r| r.writes),
        ("restart: spawn to all keys loaded (s)", |r| r.restart_s),
        ("  \"DB loaded from disk\" (s)", |r| r.load_log_s),
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, f)| {
            let (c, r) = (med(Server::Cascade, *f), med(Server::Redis, *f));
            vec![
                name.to_string(),
                format!("{c:.2}"),
                format!("{r:.2}"),
                ratio(c, r),
            ]
        })
        .collect();
    println!(
        "\nsnapshot: {keys} keys × 100 B, median of {repeat} (ratio Cascade/Redis)\n{}",
        format_table(&["", "Cascade", "Redis", "ratio"], &table)
    );
    Ok(())
}

fn measure(server: Server, bin: &std::path::Path, keys: u64) -> Result<Run> {
    let proc = ServerProc::start(Launch {
        server,
        bin,
        pin: None,
        args: vec!["--enable-debug-command".into(), "yes".into()],
        label: format!("{} snapshot", server.name()),
    })?;
    let port = proc.port;
    let mut c = Conn::open(port, CALL_TIMEOUT).map_err(|e| e.to_string())?;
    let n = keys.to_string();
    c.call(&["DEBUG", "POPULATE", &n, "key", "100"])
        .map_err(|e| e.to_string())?;
    let mut run = Run::default();

    let t = Instant::now();
    c.call(&["SAVE"]).map_err(|e| e.to_string())?;
    run.save_s = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(proc.dir.join("dump.rdb"))
        .map(|m| m.len())
        .unwrap_or(0);
    run.save_mb_s = size as f64 / (1 << 20) as f64 / run.save_s.max(1e-9);
    run.save_keys_s = keys as f64 / run.save_s.max(1e-9);

    // BGSAVE while a writer overwrites random keys as fast as it can.
    let pid = proc.pid();
    let before = memory_kb(pid, true).1;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut w = Conn::open(port, CALL_TIMEOUT).map_err(|e| e.to_string())?;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Vec<String>> = (0..64)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        vec![
                            "SET".to_string(),
                            format!("key:{}", x % keys),
                            "w".repeat(100),
                        ]
                    })
                    .collect();
                w.pipeline(&batch).map_err(|e| e.to_string())?;
                writes.fetch_add(64, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    let t = Instant::now();
    c.call(&["BGSAVE"]).map_err(|e| e.to_string())?;
    let mut peak = before;
    loop {
        peak = peak.max(memory_kb(pid, true).1);
        let info = c.info("persistence")?;
        if info_value(&info, "rdb_bgsave_in_progress") == Some("0") {
            break;
        }
        if t.elapsed() > CALL_TIMEOUT {
            return Err(format!("{} BGSAVE did not finish", server.name()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    run.bgsave_s = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "writer panicked")??;
    run.writes = writes.load(Ordering::Relaxed) as f64;
    run.extra_mb = peak.saturating_sub(before) as f64 / 1024.0;
    run.extra_pct = 100.0 * peak.saturating_sub(before) as f64 / before.max(1) as f64;
    drop(c);
    let dump_dir = proc.dir.clone();
    proc.stop_keeping_files()?;
    let (restart_s, load_log_s) = measure_restart(server, bin, &dump_dir, keys)?;
    run.restart_s = restart_s;
    run.load_log_s = load_log_s;
    let _ = std::fs::remove_dir_all(&dump_dir);
    Ok(run)
}

/// Starts `bin` on the dump in `dump_dir` and times it until every key is
/// loaded; also returns the load time the server logged.
fn measure_restart(
    server: Server,
    bin: &std::path::Path,
    dump_dir: &std::path::Path,
    keys: u64,
) -> Result<(f64, f64)> {
    let t = Instant::now();
    // The later --dir wins: the new server loads the first one's dump.
    let proc = ServerProc::spawn(Launch {
        server,
        bin,
        pin: None,
        args: vec!["--dir".into(), dump_dir.display().to_string()],
        label: format!("{} restart", server.name()),
    })?;
    let want = i64::try_from(keys).map_err(|_| "--keys too large")?;
    loop {
        let loaded = Conn::open(proc.port, Duration::from_secs(2))
            .ok()
            .and_then(|mut c| {
                let info = c.info("persistence").ok()?;
                let n = c.call(&["DBSIZE"]).ok()?;
                Some(
                    info_value(&info, "loading") == Some("0")
                        && matches!(n, Reply::Int(k) if k == want),
                )
            })
            .unwrap_or(false);
        if loaded {
            break;
        }
        if t.elapsed() > CALL_TIMEOUT {
            return Err(format!("{} did not load its dump", server.name()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let restart_s = t.elapsed().as_secs_f64();
    let logged = proc
        .log_text()
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("DB loaded from disk: ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| format!("{} logged no load time", server.name()))?;
    proc.stop()?;
    Ok((restart_s, logged))
}
