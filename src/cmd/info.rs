//! INFO: Redis 7.0's sections, field names and order, built from the
//! node's state and every shard's counters.

use super::connection::REDIS_VERSION;
use super::error::CmdResult;
use super::table;
use super::Client;
use crate::node::{unix_ms, unix_us};
use crate::resp::Reply;
use crate::shard::{self, ShardStats};
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Sections printed by plain `INFO` (and `INFO default`), in Redis's order.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
/// Every section, in the order Redis prints them for `INFO all`.
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "replication_lag",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Which sections a call asks for, in printing order.
pub fn selected_sections(args: &[Bytes]) -> Vec<&'static str> {
    if args.is_empty() {
        return DEFAULT.to_vec();
    }
    let mut wanted: Vec<&'static str> = Vec::new();
    for a in args {
        let a = String::from_utf8_lossy(a).to_lowercase();
        match a.as_str() {
            "all" => wanted.extend(ALL.iter().filter(|s| **s != "modules")),
            "everything" => wanted.extend(ALL),
            "default" => wanted.extend(DEFAULT),
            other => {
                if let Some(s) = ALL.iter().find(|s| **s == other) {
                    wanted.push(s);
                }
            }
        }
    }
    ALL.iter().filter(|s| wanted.contains(s)).copied().collect()
}

/// What each shard reports for INFO.
struct ShardReport {
    stats: ShardStats,
    /// Per database: keys, keys with a TTL, sum of remaining TTLs (ms) of a sample.
    dbs: Vec<(usize, usize, u64)>,
    clients: usize,
    /// Clients of this shard waiting in a blocking command.
    blocked: usize,
    expired_keys: u64,
    /// Bytes this shard holds for a running snapshot (saved pre-cut
    /// versions, flushed tables not walked yet).
    snapshot_extra: usize,
    /// Heap bytes of the databases' tables (`used_memory_overhead`).
    tables: usize,
}

pub async fn info(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sections = selected_sections(&args[1..]);
    let text = render(client, &sections).await;
    Ok(Reply::Verbatim(Bytes::from(text)))
}

pub async fn render(client: &Client, sections: &[&str]) -> String {
    // Summing the tables walks their chunks: only for INFO memory.
    let with_tables = sections.contains(&"memory");
    let reports = shard::gather(move |core| ShardReport {
        stats: {
            let mut s = core.stats.clone();
            let (keys, items) = core.ks.tracking_sizes();
            (s.tracking_keys, s.tracking_items) = (keys as u64, items as u64);
            s
        },
        dbs: core
            .ks
            .dbs()
            .iter()
            .map(|db| (db.len(), db.expires_len(), db.avg_ttl()))
            .collect(),
        expired_keys: core.ks.expired_keys(),
        clients: core.clients.len(),
        snapshot_extra: core.ks.snapshot_extra_bytes(),
        tables: if with_tables {
            core.ks
                .dbs()
                .iter()
                .map(|d| {
                    let (main, expires) = d.table_bytes();
                    main + expires
                })
                .sum()
        } else {
            0
        },
        blocked: core
            .clients
            .values()
            .filter(|c| c.borrow().blocked.is_some())
            .count(),
    })
    .await;
    let mut stats = ShardStats::default();
    for r in &reports {
        stats.merge(&r.stats);
        stats.expired_keys += r.expired_keys;
    }
    let mut out = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        match *section {
            "server" => server(client, &mut out),
            "clients" => clients(client, &reports, &mut out),
            "memory" => memory(client, reports.iter().map(|r| r.tables).sum(), &mut out),
            "persistence" => {
                let snapshot_extra = reports.iter().map(|r| r.snapshot_extra).sum();
                persistence(client, &stats, snapshot_extra, &mut out)
            }
            "stats" => stats_section(client, &stats, &mut out),
            "replication" => replication(client, &mut out),
            "replication_lag" => replication_lag(client, &mut out),
            "cpu" => cpu(&mut out),
            "modules" => out.push_str("# Modules\r\n"),
            "commandstats" => commandstats(&stats, &mut out),
            "errorstats" => errorstats(&stats, &mut out),
            "latencystats" => latencystats(client, &mut out).await,
            "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            "keyspace" => keyspace(&reports, &mut out),
            _ => {}
        }
    }
    out
}

macro_rules! field {
    ($out:expr, $name:expr, $($val:tt)*) => {{
        let _ = write!($out, "{}:", $name);
        let _ = write!($out, $($val)*);
        $out.push_str("\r\n");
    }};
}

fn uname() -> (String, String) {
    // SAFETY: an all-zero utsname is a valid buffer for uname to fill.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a live, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return ("Linux".into(), String::new());
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        ),
        field(&u.machine),
    )
}

fn server(client: &Client, out: &mut String) {
    let node = &client.node;
    let cfg = node.config();
    let uptime = node.started.elapsed().as_secs();
    let (os, _) = uname();
    out.push_str("# Server\r\n");
    field!(out, "redis_version", "{REDIS_VERSION}");
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", "0");
    field!(out, "redis_build_id", "0");
    field!(out, "redis_mode", "standalone");
    field!(out, "os", "{os}");
    field!(out, "arch_bits", "{}", usize::BITS);
    field!(out, "monotonic_clock", "POSIX clock_gettime");
    field!(out, "multiplexing_api", "io_uring");
    field!(out, "atomicvar_api", "c11-builtin");
    field!(out, "gcc_version", "0.0.0");
    field!(out, "process_id", "{}", std::process::id());
    field!(out, "process_supervised", "no");
    field!(out, "run_id", "{}", node.run_id);
    field!(out, "tcp_port", "{}", node.port.load(Ordering::Relaxed));
    field!(out, "server_time_usec", "{}", unix_us());
    field!(out, "uptime_in_seconds", "{uptime}");
    field!(out, "uptime_in_days", "{}", uptime / 86400);
    field!(out, "hz", "{}", cfg.hz());
    field!(out, "configured_hz", "{}", cfg.hz());
    field!(out, "lru_clock", "{}", (unix_ms() / 1000) & ((1 << 24) - 1));
    field!(
        out,
        "executable",
        "{}",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    field!(
        out,
        "config_file",
        "{}",
        cfg.config_file()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    field!(out, "io_threads_active", "0");
    field!(out, "cascade_version", "{}", env!("CARGO_PKG_VERSION"));
    field!(out, "cascade_shards", "{}", node.shards());
}

fn clients(client: &Client, reports: &[ShardReport], out: &mut String) {
    let connected: usize = reports.iter().map(|r| r.clients).sum();
    out.push_str("# Clients\r\n");
    field!(out, "connected_clients", "{connected}");
    field!(out, "cluster_connections", "0");
    field!(out, "maxclients", "{}", client.node.config().maxclients());
    field!(out, "client_recent_max_input_buffer", "0");
    field!(out, "client_recent_max_output_buffer", "0");
    let blocked: usize = reports.iter().map(|r| r.blocked).sum();
    field!(out, "blocked_clients", "{blocked}");
    field!(
        out,
        "tracking_clients",
        "{}",
        crate::tracking::tracking_clients()
    );
    field!(out, "clients_in_timeout_table", "0");
}

/// Bytes as Redis's human form: `1.50M`, `12.00K`, `800B`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    const UNITS: [(&str, f64); 5] = [
        ("P", 1024f64 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("T", 1024f64 * 1024.0 * 1024.0 * 1024.0),
        ("G", 1024f64 * 1024.0 * 1024.0),
        ("M", 1024f64 * 1024.0),
        ("K", 1024f64),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n / size);
        }
    }
    format!("{}B", n as u64)
}

/// Resident set size of the process, from /proc.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `tables`: the databases' table overhead over all shards. Fields of
/// Redis's that Cascade has no counterpart for (Lua, functions, client
/// buffers, jemalloc's own figures) are there with what is true here:
/// zero, or the allocation counters' value.
fn memory(client: &Client, tables: usize, out: &mut String) {
    let used = crate::alloc::allocated_bytes();
    let rss = rss_bytes();
    let peak = crate::alloc::peak_bytes();
    let cfg = client.node.config();
    let maxmemory: u64 = cfg
        .get("maxmemory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let total = total_system_memory();
    out.push_str("# Memory\r\n");
    field!(out, "used_memory", "{used}");
    field!(out, "used_memory_human", "{}", human_bytes(used));
    field!(out, "used_memory_rss", "{rss}");
    field!(out, "used_memory_rss_human", "{}", human_bytes(rss));
    field!(out, "used_memory_peak", "{peak}");
    field!(out, "used_memory_peak_human", "{}", human_bytes(peak));
    field!(
        out,
        "used_memory_peak_perc",
        "{:.2}%",
        if peak > 0 {
            used as f64 * 100.0 / peak as f64
        } else {
            100.0
        }
    );
    let startup = crate::alloc::startup_bytes();
    let ring = client.node.repl.ring_capacity.load(Ordering::Relaxed);
    let overhead = startup + ring + tables as u64;
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup);
    field!(out, "used_memory_overhead", "{overhead}");
    field!(out, "used_memory_startup", "{startup}");
    field!(out, "used_memory_dataset", "{dataset}");
    field!(
        out,
        "used_memory_dataset_perc",
        "{:.2}%",
        if net > 0 {
            dataset as f64 * 100.0 / net as f64
        } else {
            0.0
        }
    );
    field!(out, "allocator_allocated", "{used}");
    field!(out, "allocator_active", "{used}");
    field!(out, "allocator_resident", "{rss}");
    field!(out, "total_system_memory", "{total}");
    field!(out, "total_system_memory_human", "{}", human_bytes(total));
    // Lua VMs live one per shard thread and are not measured: their
    // fields stay 0. The script cache and the libraries are counted.
    let (scripts, scripts_bytes) = crate::scripting::cache_stats();
    let (libraries, functions) = crate::scripting::functions::counts();
    let functions_bytes = crate::scripting::functions::memory();
    for name in ["used_memory_lua", "used_memory_vm_eval"] {
        field!(out, name, "0");
    }
    field!(out, "used_memory_lua_human", "0B");
    field!(out, "used_memory_scripts_eval", "{scripts_bytes}");
    field!(out, "number_of_cached_scripts", "{scripts}");
    field!(out, "number_of_functions", "{functions}");
    field!(out, "number_of_libraries", "{libraries}");
    field!(out, "used_memory_vm_functions", "0");
    field!(out, "used_memory_vm_total", "0");
    field!(out, "used_memory_vm_total_human", "0B");
    field!(out, "used_memory_functions", "{functions_bytes}");
    let scripts_total = scripts_bytes + functions_bytes;
    field!(out, "used_memory_scripts", "{scripts_total}");
    field!(
        out,
        "used_memory_scripts_human",
        "{}",
        human_bytes(scripts_total as u64)
    );
    field!(out, "maxmemory", "{maxmemory}");
    field!(out, "maxmemory_human", "{}", human_bytes(maxmemory));
    field!(
        out,
        "maxmemory_policy",
        "{}",
        cfg.get("maxmemory-policy").unwrap_or_default()
    );
    let rss_ratio = if used > 0 {
        rss as f64 / used as f64
    } else {
        0.0
    };
    let rss_extra = rss.saturating_sub(used);
    field!(out, "allocator_frag_ratio", "1.00");
    field!(out, "allocator_frag_bytes", "0");
    field!(out, "allocator_rss_ratio", "{rss_ratio:.2}");
    field!(out, "allocator_rss_bytes", "{rss_extra}");
    field!(out, "rss_overhead_ratio", "1.00");
    field!(out, "rss_overhead_bytes", "0");
    field!(out, "mem_fragmentation_ratio", "{rss_ratio:.2}");
    field!(out, "mem_fragmentation_bytes", "{rss_extra}");
    field!(
        out,
        "mem_not_counted_for_evict",
        "{}",
        crate::evict::not_counted(&client.node)
    );
    // The ring is the backlog and every replica's buffer at once.
    field!(out, "mem_replication_backlog", "{ring}");
    field!(out, "mem_total_replication_buffers", "{ring}");
    for name in [
        "mem_clients_slaves",
        "mem_clients_normal",
        "mem_cluster_links",
        "mem_aof_buffer",
    ] {
        field!(out, name, "0");
    }
    field!(out, "mem_allocator", "{}", crate::alloc::allocator_name());
    field!(out, "active_defrag_running", "0");
    field!(
        out,
        "lazyfree_pending_objects",
        "{}",
        crate::keyspace::lazyfree::pending_objects()
    );
    field!(
        out,
        "lazyfreed_objects",
        "{}",
        crate::keyspace::lazyfree::freed_objects()
    );
}

/// The AOF part of `INFO persistence`, in Redis 7.0's order; the sizes
/// only while the AOF is on.
fn aof_fields(node: &crate::node::Node, out: &mut String) {
    let aof = &node.aof;
    let active = aof.active();
    let ok = |b: bool| if b { "ok" } else { "err" };
    let started = aof.rewrite_started_ms();
    let rewriting = started.is_some();
    // As Redis's aof_state: on from CONFIG SET appendonly yes (or start-up
    // with it), while the first base is still being written.
    field!(out, "aof_enabled", "{}", node.config().appendonly() as u8);
    field!(out, "aof_rewrite_in_progress", "{}", rewriting as u8);
    field!(
        out,
        "aof_rewrite_scheduled",
        "{}",
        aof.rewrite_scheduled.load(Ordering::Relaxed) as u8
    );
    field!(
        out,
        "aof_last_rewrite_time_sec",
        "{}",
        aof.last_rewrite_time_sec.load(Ordering::Relaxed)
    );
    let current = started.map_or(-1, |started| {
        (unix_ms().saturating_sub(started) / 1000) as i64
    });
    field!(out, "aof_current_rewrite_time_sec", "{current}");
    field!(
        out,
        "aof_last_bgrewrite_status",
        "{}",
        ok(aof.last_rewrite_ok.load(Ordering::Relaxed))
    );
    field!(
        out,
        "aof_rewrites",
        "{}",
        aof.rewrites.load(Ordering::Relaxed)
    );
    field!(
        out,
        "aof_rewrites_consecutive_failures",
        "{}",
        aof.consecutive_failures.load(Ordering::Relaxed)
    );
    field!(out, "aof_last_write_status", "{}", ok(aof.health.ok()));
    // No fork: a rewrite's extra memory shows in current_cow_size.
    field!(out, "aof_last_cow_size", "0");
    field!(out, "module_fork_in_progress", "0");
    field!(out, "module_fork_last_cow_size", "0");
    if let Some(a) = active {
        field!(
            out,
            "aof_current_size",
            "{}",
            a.current_size.load(Ordering::Relaxed)
        );
        field!(
            out,
            "aof_base_size",
            "{}",
            a.base_size.load(Ordering::Relaxed)
        );
        field!(
            out,
            "aof_pending_rewrite",
            "{}",
            aof.rewrite_scheduled.load(Ordering::Relaxed) as u8
        );
        field!(out, "aof_buffer_length", "{}", a.feed.pending());
        // See persist::aof::writer for what these count on our writer.
        field!(
            out,
            "aof_pending_bio_fsync",
            "{}",
            aof.health.fsync_running.load(Ordering::Relaxed)
        );
        field!(
            out,
            "aof_delayed_fsync",
            "{}",
            aof.health.delayed_fsync.load(Ordering::Relaxed)
        );
    }
}

/// `snapshot_extra`: bytes the shards hold for a running snapshot (pre-cut
/// versions of changed keys, flushed tables not walked yet); with the
/// slices queued for the writer it is shown as `current_cow_size`, the
/// place Redis reports what its fork costs.
fn persistence(client: &Client, stats: &ShardStats, snapshot_extra: usize, out: &mut String) {
    out.push_str("# Persistence\r\n");
    let loading = client.node.loading.load(Ordering::Relaxed);
    field!(out, "loading", "{}", loading as u8);
    field!(out, "async_loading", "0");
    // A snapshot plays the part of Redis's fork child: its copy-on-write
    // cost and its progress in keys.
    let progress = &client.node.snapshot_progress;
    let snapshot_extra = snapshot_extra + progress.in_flight.load(Ordering::Relaxed);
    let (processed, total) = (
        progress.keys_processed.load(Ordering::Relaxed),
        progress.keys_total.load(Ordering::Relaxed),
    );
    let peak = progress
        .cow_peak
        .load(Ordering::Relaxed)
        .max(snapshot_extra);
    field!(out, "current_cow_peak", "{peak}");
    field!(out, "current_cow_size", "{snapshot_extra}");
    field!(out, "current_cow_size_age", "0");
    let perc = if total > 0 {
        processed.min(total) as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    field!(out, "current_fork_perc", "{perc:.2}");
    field!(out, "current_save_keys_processed", "{processed}");
    field!(out, "current_save_keys_total", "{total}");
    field!(out, "rdb_changes_since_last_save", "{}", stats.dirty);
    let node = &client.node;
    field!(
        out,
        "rdb_bgsave_in_progress",
        "{}",
        node.bgsave_in_progress.load(Ordering::Relaxed) as u8
    );
    field!(
        out,
        "rdb_last_save_time",
        "{}",
        client.node.last_save_unix.load(Ordering::Relaxed)
    );
    field!(
        out,
        "rdb_last_bgsave_status",
        "{}",
        if node.last_save_ok.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    );
    field!(
        out,
        "rdb_last_bgsave_time_sec",
        "{}",
        node.last_save_duration_sec.load(Ordering::Relaxed)
    );
    let started = progress.started_unix_ms.load(Ordering::Relaxed);
    let current_secs = if node.bgsave_in_progress.load(Ordering::Relaxed) && started > 0 {
        (crate::node::unix_ms().saturating_sub(started) / 1000) as i64
    } else {
        -1
    };
    field!(out, "rdb_current_bgsave_time_sec", "{current_secs}");
    field!(
        out,
        "rdb_saves",
        "{}",
        node.rdb_saves.load(Ordering::Relaxed)
    );
    field!(
        out,
        "rdb_last_cow_size",
        "{}",
        progress.last_cow.load(Ordering::Relaxed)
    );
    field!(
        out,
        "rdb_last_load_keys_expired",
        "{}",
        node.loaded_expired.load(Ordering::Relaxed)
    );
    field!(
        out,
        "rdb_last_load_keys_loaded",
        "{}",
        node.loaded_keys.load(Ordering::Relaxed)
    );
    aof_fields(node, out);
    if loading {
        let start = node.loading_start_unix.load(Ordering::Relaxed);
        let total = node.loading_total_bytes.load(Ordering::Relaxed);
        let done = node.loading_loaded_bytes.load(Ordering::Relaxed).min(total);
        let elapsed = (unix_ms() / 1000).saturating_sub(start);
        let perc = if total > 0 {
            done as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        // Redis's estimate: the time so far, scaled to the bytes left.
        let eta = if done > 0 {
            ((total - done) as f64 * elapsed as f64 / done as f64) as u64
        } else {
            1
        };
        field!(out, "loading_start_time", "{start}");
        field!(out, "loading_total_bytes", "{total}");
        field!(out, "loading_rdb_used_mem", "0");
        field!(out, "loading_loaded_bytes", "{done}");
        field!(out, "loading_loaded_perc", "{perc:.2}");
        field!(out, "loading_eta_seconds", "{eta}");
    }
}

fn stats_section(client: &Client, s: &ShardStats, out: &mut String) {
    out.push_str("# Stats\r\n");
    field!(
        out,
        "total_connections_received",
        "{}",
        s.connections_received
    );
    field!(out, "total_commands_processed", "{}", s.commands_processed);
    field!(out, "instantaneous_ops_per_sec", "{}", s.instantaneous_ops);
    field!(out, "total_net_input_bytes", "{}", s.net_input_bytes);
    field!(out, "total_net_output_bytes", "{}", s.net_output_bytes);
    let repl = &client.node.repl;
    let kbps = |bytes_per_sec: u64| format!("{:.2}", bytes_per_sec as f64 / 1024.0);
    field!(
        out,
        "total_net_repl_input_bytes",
        "{}",
        repl.net_input_bytes.load(Ordering::Relaxed)
    );
    field!(
        out,
        "total_net_repl_output_bytes",
        "{}",
        repl.net_output_bytes.load(Ordering::Relaxed)
    );
    field!(
        out,
        "instantaneous_input_kbps",
        "{}",
        kbps(s.instantaneous_input)
    );
    field!(
        out,
        "instantaneous_output_kbps",
        "{}",
        kbps(s.instantaneous_output)
    );
    field!(
        out,
        "instantaneous_input_repl_kbps",
        "{}",
        kbps(repl.input_rate.load(Ordering::Relaxed))
    );
    field!(
        out,
        "instantaneous_output_repl_kbps",
        "{}",
        kbps(repl.output_rate.load(Ordering::Relaxed))
    );
    field!(out, "rejected_connections", "{}", s.rejected_connections);
    {
        use std::sync::atomic::Ordering::Relaxed;
        let repl = &client.node.repl;
        field!(out, "sync_full", "{}", repl.sync_full.load(Relaxed));
        field!(
            out,
            "sync_partial_ok",
            "{}",
            repl.sync_partial_ok.load(Relaxed)
        );
        field!(
            out,
            "sync_partial_err",
            "{}",
            repl.sync_partial_err.load(Relaxed)
        );
    }
    field!(out, "expired_keys", "{}", s.expired_keys);
    field!(out, "expired_stale_perc", "0.00");
    field!(out, "expired_time_cap_reached_count", "0");
    field!(
        out,
        "expire_cycle_cpu_milliseconds",
        "{}",
        s.expire_cycle_us / 1000
    );
    let memory = &client.node.memory;
    let (exceeded_now, exceeded_total) = memory.exceeded_times(crate::node::unix_ms());
    field!(out, "evicted_keys", "{}", memory.evicted_keys());
    field!(out, "evicted_clients", "0");
    field!(out, "total_eviction_exceeded_time", "{exceeded_total}");
    field!(out, "current_eviction_exceeded_time", "{exceeded_now}");
    field!(out, "keyspace_hits", "{}", s.keyspace_hits);
    field!(out, "keyspace_misses", "{}", s.keyspace_misses);
    field!(
        out,
        "pubsub_channels",
        "{}",
        client.node.pubsub.numchannels()
    );
    field!(out, "pubsub_patterns", "{}", client.node.pubsub.numpat());
    field!(out, "pubsubshard_channels", "0");
    field!(out, "latest_fork_usec", "0");
    field!(out, "total_forks", "0");
    field!(out, "migrate_cached_sockets", "0");
    field!(out, "slave_expires_tracked_keys", "0");
    field!(out, "active_defrag_hits", "0");
    field!(out, "active_defrag_misses", "0");
    field!(out, "active_defrag_key_hits", "0");
    field!(out, "active_defrag_key_misses", "0");
    field!(out, "total_active_defrag_time", "0");
    field!(out, "current_active_defrag_time", "0");
    field!(out, "tracking_total_keys", "{}", s.tracking_keys);
    field!(out, "tracking_total_items", "{}", s.tracking_items);
    field!(
        out,
        "tracking_total_prefixes",
        "{}",
        crate::tracking::total_prefixes()
    );
    field!(out, "unexpected_error_replies", "0");
    field!(out, "total_error_replies", "{}", s.total_error_replies);
    field!(out, "dump_payload_sanitizations", "0");
    field!(out, "total_reads_processed", "{}", s.reads_processed);
    field!(out, "total_writes_processed", "{}", s.writes_processed);
    field!(out, "io_threaded_reads_processed", "0");
    field!(out, "io_threaded_writes_processed", "0");
    field!(out, "reply_buffer_shrinks", "0");
    field!(out, "reply_buffer_expands", "0");
}

fn replication(client: &Client, out: &mut String) {
    use crate::repl::Role;
    use std::sync::atomic::Ordering::Relaxed;
    let node = &client.node;
    let repl = &node.repl;
    let (backlog_size, read_only, priority, announced) = {
        let cfg = node.config();
        (
            cfg.repl_backlog_size(),
            cfg.bool_value("replica-read-only"),
            cfg.get("replica-priority").unwrap_or_else(|| "100".into()),
            cfg.bool_value("replica-announced"),
        )
    };
    let now = unix_ms();
    out.push_str("# Replication\r\n");
    match repl.role() {
        Role::Master => field!(out, "role", "master"),
        Role::Replica { host, port } => {
            let link = repl.link();
            field!(out, "role", "slave");
            field!(out, "master_host", "{host}");
            field!(out, "master_port", "{port}");
            field!(
                out,
                "master_link_status",
                "{}",
                if link.up { "up" } else { "down" }
            );
            let last_io = if link.last_io_ms > 0 {
                (now.saturating_sub(link.last_io_ms) / 1000) as i64
            } else {
                -1
            };
            field!(out, "master_last_io_seconds_ago", "{last_io}");
            field!(
                out,
                "master_sync_in_progress",
                "{}",
                link.sync_in_progress as u8
            );
            field!(out, "slave_read_repl_offset", "{}", link.processed_offset);
            field!(out, "slave_repl_offset", "{}", link.processed_offset);
            if link.sync_in_progress {
                let left = (link.sync_total_bytes - link.sync_read_bytes as i64).max(0);
                let perc = if link.sync_total_bytes > 0 {
                    link.sync_read_bytes as f64 * 100.0 / link.sync_total_bytes as f64
                } else {
                    0.0
                };
                field!(out, "master_sync_total_bytes", "{}", link.sync_total_bytes);
                field!(out, "master_sync_read_bytes", "{}", link.sync_read_bytes);
                field!(out, "master_sync_left_bytes", "{left}");
                field!(out, "master_sync_perc", "{perc:.2}");
                field!(out, "master_sync_last_io_seconds_ago", "{}", last_io.max(0));
            }
            if !link.up {
                let since = if link.down_since_ms > 0 {
                    (now.saturating_sub(link.down_since_ms) / 1000) as i64
                } else {
                    -1
                };
                field!(out, "master_link_down_since_seconds", "{since}");
            }
            field!(out, "slave_priority", "{priority}");
            field!(out, "slave_read_only", "{}", read_only as u8);
            // Our own line, only where our own directive is on.
            if client.node.config().replica_protect_data() {
                field!(
                    out,
                    "replica_protect_data_refused_syncs",
                    "{}",
                    repl.protect_refusals.load(Relaxed)
                );
            }
            field!(out, "replica_announced", "{}", announced as u8);
        }
    }
    let replicas = repl.replicas();
    field!(out, "connected_slaves", "{}", replicas.len());
    if repl.min_replicas_to_write.load(Relaxed) > 0 {
        field!(
            out,
            "min_slaves_good_slaves",
            "{}",
            repl.good_replicas.load(Relaxed)
        );
    }
    for (i, r) in replicas.iter().enumerate() {
        let last = r.last_ack_ms.load(Relaxed);
        let lag = if last > 0 {
            now.saturating_sub(last) / 1000
        } else {
            0
        };
        field!(
            out,
            &format!("slave{i}"),
            "ip={},port={},state={},offset={},lag={}",
            r.ip,
            r.port,
            r.state(),
            r.ack_offset.load(Relaxed),
            lag
        );
    }
    let ids = repl.ids();
    field!(
        out,
        "master_failover_state",
        "{}",
        repl.failover().state.name()
    );
    field!(out, "master_replid", "{}", ids.replid);
    field!(out, "master_replid2", "{}", ids.replid2);
    field!(out, "master_repl_offset", "{}", repl.master_offset());
    field!(out, "second_repl_offset", "{}", ids.second_offset);
    match repl.backlog() {
        Some(b) => {
            field!(out, "repl_backlog_active", "1");
            field!(out, "repl_backlog_size", "{backlog_size}");
            field!(out, "repl_backlog_first_byte_offset", "{}", b.tail() + 1);
            field!(out, "repl_backlog_histlen", "{}", b.histlen());
        }
        None => {
            field!(out, "repl_backlog_active", "0");
            field!(out, "repl_backlog_size", "{backlog_size}");
            field!(out, "repl_backlog_first_byte_offset", "0");
            field!(out, "repl_backlog_histlen", "0");
        }
    }
}

/// Our own section (not in plain `INFO`, so `INFO replication` and the
/// default output stay as Redis prints them): how far behind each replica
/// is, in bytes and in time. `lag_ms` is the time since the oldest byte the
/// replica has not acknowledged was sent to it; Cascade replicas
/// acknowledge every 10 ms while data flows, Redis replicas once a second.
fn replication_lag(client: &Client, out: &mut String) {
    let repl = &client.node.repl;
    let now = crate::node::unix_ms();
    let head = repl.master_offset();
    out.push_str("# Replication_lag\r\n");
    let replicas = repl.replicas();
    let mut worst_ms = 0;
    let mut worst_bytes = 0;
    for (i, r) in replicas.iter().enumerate() {
        let acked = r.ack_offset.load(std::sync::atomic::Ordering::Relaxed);
        let bytes = head.saturating_sub(acked);
        let ms = if bytes == 0 { 0 } else { r.lag_ms(now) };
        worst_ms = worst_ms.max(ms);
        worst_bytes = worst_bytes.max(bytes);
        field!(
            out,
            &format!("replica{i}"),
            "ip={},port={},state={},acked_offset={},lag_bytes={},lag_ms={}",
            r.ip,
            r.port,
            r.state(),
            acked,
            bytes,
            ms
        );
    }
    field!(out, "replicas_max_lag_bytes", "{worst_bytes}");
    field!(out, "replicas_max_lag_ms", "{worst_ms}");
}

fn cpu(out: &mut String) {
    let usage = |who| {
        // SAFETY: an all-zero rusage is a valid buffer for getrusage.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a live, writable rusage.
        unsafe { libc::getrusage(who, &mut ru) };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (secs(ru.ru_stime), secs(ru.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (csys, cuser) = usage(libc::RUSAGE_CHILDREN);
    let (tsys, tuser) = usage(libc::RUSAGE_THREAD);
    out.push_str("# CPU\r\n");
    field!(out, "used_cpu_sys", "{sys:.6}");
    field!(out, "used_cpu_user", "{user:.6}");
    field!(out, "used_cpu_sys_children", "{csys:.6}");
    field!(out, "used_cpu_user_children", "{cuser:.6}");
    field!(out, "used_cpu_sys_main_thread", "{tsys:.6}");
    field!(out, "used_cpu_user_main_thread", "{tuser:.6}");
}

fn commandstats(s: &ShardStats, out: &mut String) {
    out.push_str("# Commandstats\r\n");
    let t = table::table();
    for (id, c) in s.command_stats.iter().enumerate() {
        if c.calls == 0 && c.rejected_calls == 0 && c.failed_calls == 0 {
            continue;
        }
        let name = t.stat_name(id);
        let per_call = if c.calls > 0 {
            c.usec as f64 / c.calls as f64
        } else {
            0.0
        };
        let _ = write!(
            out,
            "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            c.calls, c.usec, c.rejected_calls, c.failed_calls
        );
    }
}

/// `latency_percentiles_usec_<command>:p50=...,p99=...,p99.9=...` for the
/// percentiles `latency-tracking-info-percentiles` lists.
async fn latencystats(client: &Client, out: &mut String) {
    out.push_str("# Latencystats\r\n");
    let percentiles: Vec<f64> = client
        .node
        .config()
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let merged = merged_latency().await;
    let t = table::table();
    for (id, values) in merged.percentiles(&percentiles) {
        let name = t.stat_name(id);
        let _ = write!(out, "latency_percentiles_usec_{name}:");
        for (i, (p, v)) in percentiles.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "p{}={v:.3}",
                crate::shard::latency::percentile_name(*p)
            );
        }
        out.push_str("\r\n");
    }
}

/// Every shard's per-command latency histograms, merged (INFO
/// latencystats, LATENCY HISTOGRAM).
pub(crate) async fn merged_latency() -> crate::shard::latency::CommandLatency {
    let mut merged = crate::shard::latency::CommandLatency::default();
    for part in shard::gather(|core| core.latency.clone()).await {
        merged.merge(&part);
    }
    merged
}

fn errorstats(s: &ShardStats, out: &mut String) {
    out.push_str("# Errorstats\r\n");
    let mut errors: Vec<_> = s.error_stats.iter().collect();
    errors.sort();
    for (code, n) in errors {
        let _ = write!(out, "errorstat_{code}:count={n}\r\n");
    }
}

fn keyspace(reports: &[ShardReport], out: &mut String) {
    out.push_str("# Keyspace\r\n");
    let dbs = reports.first().map_or(0, |r| r.dbs.len());
    for i in 0..dbs {
        let (mut keys, mut expires, mut ttl_sum, mut ttl_shards) = (0, 0, 0u64, 0u64);
        for r in reports {
            let (k, e, avg) = r.dbs[i];
            keys += k;
            expires += e;
            if avg > 0 {
                ttl_sum += avg;
                ttl_shards += 1;
            }
        }
        if keys == 0 {
            continue;
        }
        let avg_ttl = ttl_sum.checked_div(ttl_shards).unwrap_or(0);
        let _ = write!(
            out,
            "db{i}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_redis_order_and_aliases() {
        assert_eq!(selected_sections(&[]), DEFAULT.to_vec());
        let all = selected_sections(&[Bytes::from_static(b"all")]);
        assert!(all.contains(&"commandstats") && !all.contains(&"modules"));
        let every = selected_sections(&[Bytes::from_static(b"everything")]);
        assert!(every.contains(&"modules"));
        assert_eq!(
            selected_sections(&[
                Bytes::from_static(b"KEYSPACE"),
                Bytes::from_static(b"server")
            ]),
            vec!["server", "keyspace"]
        );
        assert!(selected_sections(&[Bytes::from_static(b"nope")]).is_empty());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(800), "800B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(1024 * 1024), "1.00M");
    }
}
