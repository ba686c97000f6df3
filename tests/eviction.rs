//! `maxmemory` and `maxmemory-policy`: eviction, `-OOM`, OBJECT IDLETIME /
//! FREQ / REFCOUNT, and evictions reaching replicas. Most tests run the
//! same steps against Cascade and Debian's redis-server and compare what an
//! operator sees; limits are set relative to each server's own
//! `used_memory`, since the two spend memory differently.

mod common;
use common::repl::{self, wait_in_sync};
use common::{assert_same_replies, info_field, wait_until, Conn, Server, Value};
use std::time::Duration;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
const DEADLINE: Duration = Duration::from_secs(30);
/// What `used_memory` may exceed `maxmemory` by when INFO reads it: the
/// INFO command's own buffers, and writes let through while another shard
/// evicts.
const SLACK: u64 = 256 * 1024;

fn used(c: &mut Conn) -> u64 {
    info_field(c, "memory", "used_memory").parse().unwrap()
}

fn evicted(c: &mut Conn) -> u64 {
    info_field(c, "stats", "evicted_keys").parse().unwrap()
}

fn int(v: Value) -> i64 {
    v.int()
}

/// Pipelines `SET <prefix><i> <size bytes>` for i in `range` (with `EX ttl`
/// when given) and returns the replies that were errors.
fn fill(
    c: &mut Conn,
    prefix: &str,
    range: std::ops::Range<usize>,
    size: usize,
    ttl: Option<u64>,
) -> Vec<String> {
    let value = vec![b'x'; size];
    let ttl = ttl.map(|t| t.to_string());
    let mut errors = Vec::new();
    let mut pending = 0;
    for i in range {
        let key = format!("{prefix}{i}");
        match &ttl {
            Some(t) => c.send(&[b"SET", key.as_bytes(), &value, b"EX", t.as_bytes()]),
            None => c.send(&[b"SET", key.as_bytes(), &value]),
        }
        pending += 1;
        if pending == 64 {
            for _ in 0..pending {
                if let Value::Error(e) = c.read() {
                    errors.push(e);
                }
            }
            pending = 0;
        }
    }
    for _ in 0..pending {
        if let Value::Error(e) = c.read() {
            errors.push(e);
        }
    }
    errors
}

fn existing(c: &mut Conn, prefix: &str, range: std::ops::Range<usize>) -> usize {
    range
        .filter(|i| int(c.cmd(&["EXISTS", &format!("{prefix}{i}")])) == 1)
        .count()
}

fn both(extra: &[&str]) -> [Server; 2] {
    [repl::start(extra), repl::start_redis(extra)]
}

#[test]
fn noeviction_refuses_growing_commands_with_redis_error_and_serves_the_rest() {
    for s in both(&["--maxmemory-policy", "noeviction"]) {
        let mut c = s.conn();
        let limit = used(&mut c) + 2 * 1024 * 1024;
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
            Value::ok()
        );
        let errors = fill(&mut c, "k", 0..10_000, 1024, None);
        assert!(!errors.is_empty(), "10 MB written under a 2 MB headroom");
        assert!(errors.iter().all(|e| e == OOM), "{:?}", errors.first());
        // Reads and deletions go on; nothing was evicted.
        assert_eq!(c.cmd(&["GET", "k0"]).text().len(), 1024);
        assert_eq!(evicted(&mut c), 0);
        assert_eq!(c.cmd(&["SET", "other", "v"]), Value::Error(OOM.into()));
        assert_eq!(c.cmd(&["DEL", "k0"]), Value::Int(1));
        // Inside MULTI, queueing anything is refused; EXEC then aborts.
        assert_eq!(c.cmd(&["MULTI"]), Value::ok());
        assert_eq!(c.cmd(&["GET", "k1"]), Value::Error(OOM.into()));
        assert_eq!(
            c.cmd(&["EXEC"]),
            Value::Error("EXECABORT Transaction discarded because of previous errors.".into())
        );
        // Memory given back: writes work again.
        assert_eq!(c.cmd(&["FLUSHALL"]), Value::ok());
        wait_until(DEADLINE, "memory under the limit after FLUSHALL", || {
            used(&mut c) < limit
        });
        assert_eq!(c.cmd(&["SET", "other", "v"]), Value::ok());
    }
}

#[test]
fn allkeys_lru_stays_under_the_limit_and_keeps_recently_used_keys() {
    for s in both(&["--maxmemory-policy", "allkeys-lru"]) {
        let mut c = s.conn();
        let limit = used(&mut c) + 6 * 1024 * 1024;
        c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        // Cold keys, then wait until they are idle for 2 s (LRU counts
        // seconds), then hot keys, then enough new keys to evict.
        assert!(fill(&mut c, "cold:", 0..3_000, 1024, None).is_empty());
        wait_until(DEADLINE, "cold keys idle for 2 s", || {
            int(c.cmd(&["OBJECT", "IDLETIME", "cold:0"])) >= 2
        });
        assert!(fill(&mut c, "hot:", 0..500, 1024, None).is_empty());
        let errors = fill(&mut c, "new:", 0..3_000, 1024, None);
        assert!(errors.is_empty(), "no write refused: {:?}", errors.first());
        let server = info_field(&mut c, "server", "executable");
        assert!(evicted(&mut c) > 500, "{server}");
        assert!(
            used(&mut c) <= limit + SLACK,
            "{server}: used_memory over the limit"
        );
        // The idle keys went first.
        let hot = existing(&mut c, "hot:", 0..500);
        let new = existing(&mut c, "new:", 0..3_000);
        assert!(
            hot >= 475,
            "{server}: {hot} of 500 recently written keys left"
        );
        assert!(new >= 2_850, "{server}: {new} of 3000 new keys left");
    }
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys_and_reports_frequencies() {
    for s in both(&["--maxmemory-policy", "allkeys-lfu"]) {
        let mut c = s.conn();
        assert_eq!(c.cmd(&["SET", "fresh", "v"]), Value::ok());
        assert_eq!(c.cmd(&["OBJECT", "FREQ", "fresh"]), Value::Int(5));
        let limit = used(&mut c) + 6 * 1024 * 1024;
        c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        assert!(fill(&mut c, "hot:", 0..300, 1024, None).is_empty());
        for _ in 0..40 {
            for i in 0..300 {
                c.send(&[b"GET", format!("hot:{i}").as_bytes()]);
            }
            for _ in 0..300 {
                c.read();
            }
        }
        assert!(int(c.cmd(&["OBJECT", "FREQ", "hot:0"])) > 5);
        let errors = fill(&mut c, "new:", 0..10_000, 1024, None);
        assert!(errors.is_empty(), "no write refused: {:?}", errors.first());
        assert!(evicted(&mut c) > 3_000);
        let hot = existing(&mut c, "hot:", 0..300);
        let server = info_field(&mut c, "server", "executable");
        assert!(
            hot >= 285,
            "{server}: {hot} of 300 frequently read keys left"
        );
    }
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl_then_refuse() {
    for policy in [
        "volatile-lru",
        "volatile-ttl",
        "volatile-random",
        "volatile-lfu",
    ] {
        for s in both(&["--maxmemory-policy", policy]) {
            let mut c = s.conn();
            let limit = used(&mut c) + 3 * 1024 * 1024;
            c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
            assert!(fill(&mut c, "v:", 0..1_000, 1024, Some(1_000)).is_empty());
            let errors = fill(&mut c, "p:", 0..8_000, 1024, None);
            assert!(
                !errors.is_empty() && errors.iter().all(|e| e == OOM),
                "{policy}: writes refused once no volatile key is left"
            );
            let written = 8_000 - errors.len();
            let kept = existing(&mut c, "p:", 0..8_000);
            assert_eq!(kept, written, "{policy}: a key without TTL was evicted");
            assert_eq!(existing(&mut c, "v:", 0..1_000), 0, "{policy}");
            assert_eq!(evicted(&mut c), 1_000, "{policy}");
        }
    }
}

#[test]
fn object_subcommands_answer_like_redis() {
    let mut cascade = repl::start(&[]);
    let mut redis = repl::start_redis(&[]);
    let (mut a, mut b) = (cascade.conn(), redis.conn());
    assert_same_replies(
        &mut a,
        &mut b,
        &[
            "SET s hello",
            "SET n 100",
            "SET big 123456",
            "RPUSH l a b",
            "OBJECT HELP",
            "OBJECT",
            "OBJECT HELP extra",
            "OBJECT NOSUCH s",
            "OBJECT FREQ",
            "OBJECT ENCODING s extra",
            "OBJECT ENCODING s",
            "OBJECT ENCODING nokey",
            "OBJECT REFCOUNT s",
            "OBJECT REFCOUNT n",
            "OBJECT REFCOUNT big",
            "OBJECT REFCOUNT l",
            "OBJECT REFCOUNT nokey",
            "OBJECT IDLETIME s",
            "OBJECT IDLETIME nokey",
            "OBJECT FREQ s",
            "CONFIG SET maxmemory-policy allkeys-lfu",
            "OBJECT IDLETIME s",
            "SET f v",
            "OBJECT FREQ f",
            "OBJECT FREQ nokey",
            // Redis stops sharing small integers under an LRU/LFU limit.
            "CONFIG SET maxmemory 1gb",
            "SET n2 100",
            "OBJECT REFCOUNT n2",
            "CONFIG SET maxmemory-policy volatile-ttl",
            "SET n3 100",
            "OBJECT REFCOUNT n3",
        ],
    );
    // OBJECT, TYPE and EXISTS do not count as accesses; GET and TOUCH do.
    for s in [&mut cascade, &mut redis] {
        let mut c = s.conn();
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        c.cmd(&["SET", "idle", "v"]);
        wait_until(DEADLINE, "the key idle for 2 s", || {
            int(c.cmd(&["OBJECT", "IDLETIME", "idle"])) >= 2
        });
        c.cmd(&["TYPE", "idle"]);
        c.cmd(&["EXISTS", "idle"]);
        assert!(int(c.cmd(&["OBJECT", "IDLETIME", "idle"])) >= 2);
        c.cmd(&["TOUCH", "idle"]);
        assert!(int(c.cmd(&["OBJECT", "IDLETIME", "idle"])) <= 1);
    }
}

#[test]
fn keys_on_another_shard_are_evicted_for_any_connection() {
    // Every key on one shard (one hash tag): connections landing on the
    // other shard, whose own keyspace is empty, must not get -OOM.
    let s = repl::start(&["--maxmemory-policy", "allkeys-random", "--shards", "2"]);
    let mut conns: Vec<Conn> = (0..6).map(|_| s.conn()).collect();
    let limit = used(&mut conns[0]) + 4 * 1024 * 1024;
    conns[0].cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    for (n, c) in conns.iter_mut().enumerate() {
        let start = n * 3_000;
        let errors = fill(c, "{tag}:", start..start + 3_000, 1024, None);
        assert!(errors.is_empty(), "connection {n}: {:?}", errors.first());
    }
    assert!(evicted(&mut conns[0]) > 10_000);
    assert!(used(&mut conns[0]) <= limit + SLACK);
}

#[test]
fn a_lowered_maxmemory_evicts_at_once_and_logs_redis_warning() {
    let s = repl::start(&["--maxmemory-policy", "allkeys-random"]);
    let mut c = s.conn();
    let base = used(&mut c);
    assert!(fill(&mut c, "k", 0..4_000, 1024, None).is_empty());
    let limit = base + 2 * 1024 * 1024;
    c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    // Nobody writes: the shards' crons evict on their own.
    wait_until(DEADLINE, "used_memory under the new limit", || {
        used(&mut c) <= limit + SLACK
    });
    assert!(evicted(&mut c) > 1_000);
    assert!(s
        .log_text()
        .contains("WARNING: the new maxmemory value set via CONFIG SET"));
    for field in [
        "current_eviction_exceeded_time",
        "total_eviction_exceeded_time",
    ] {
        info_field(&mut c, "stats", field)
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{field} is a number of ms"));
    }
}

#[test]
fn evictions_reach_cascade_and_redis_replicas_as_dels() {
    let master = repl::start(&["--maxmemory-policy", "allkeys-lru"]);
    let port = master.port.to_string();
    let mut c = master.conn();
    // The limit is set before any replica makes the master allocate its
    // replication ring.
    let limit = used(&mut c) + 4 * 1024 * 1024;
    c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let ours = repl::start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = repl::start_redis(&["--replicaof", "127.0.0.1", &port]);
    wait_until(DEADLINE, "both replicas online", || {
        info_field(&mut c, "replication", "connected_slaves") == "2"
    });
    assert!(fill(&mut c, "k", 0..12_000, 1024, None).is_empty());
    assert!(evicted(&mut c) > 3_000);
    // The ring the replicas brought counts only up to repl-backlog-size
    // (1 MB here), as Redis counts its backlog: most of the 4 MB of
    // headroom still holds keys.
    let kept = int(c.cmd(&["DBSIZE"]));
    assert!(kept >= 1_500, "only {kept} keys kept under a 4 MB headroom");
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    for r in [&ours, &theirs] {
        let mut rc = r.conn();
        assert_eq!(evicted(&mut rc), 0, "replicas ignore maxmemory");
        assert_eq!(
            rc.cmd(&["DBSIZE"]),
            c.cmd(&["DBSIZE"]),
            "the replica holds what the master kept"
        );
    }
}

#[test]
fn a_running_snapshot_does_not_make_eviction_empty_the_dataset() {
    // Overwriting keys during a BGSAVE keeps their old values for the
    // snapshot. That memory is the snapshot's (Redis's fork would hold it
    // in the child), so eviction must not count it: evicting more keys
    // would only hand them to the snapshot too, freeing nothing.
    let s = repl::start(&["--maxmemory-policy", "allkeys-random"]);
    let mut c = s.conn();
    let limit = used(&mut c) + 5 * 1024 * 1024;
    c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    assert!(fill(&mut c, "k", 0..3_500, 1024, None).is_empty());
    assert_eq!(evicted(&mut c), 0);
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    assert!(fill(&mut c, "k", 0..3_500, 1024, None).is_empty());
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_bgsave_in_progress"),
        "1"
    );
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_until(DEADLINE, "the BGSAVE to finish", || {
        info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    let left = int(c.cmd(&["DBSIZE"]));
    assert!(
        left >= 3_400,
        "only {left} of 3500 keys left after the snapshot"
    );
}

#[test]
fn memory_command_answers_like_redis_and_serves_redis_cli_memkeys() {
    let cascade = repl::start(&[]);
    let redis = repl::start_redis(&[]);
    let (mut a, mut b) = (cascade.conn(), redis.conn());
    assert_same_replies(
        &mut a,
        &mut b,
        &[
            "SET k v",
            "MEMORY HELP",
            "MEMORY",
            "MEMORY NOSUCH",
            "MEMORY USAGE",
            "MEMORY USAGE nokey",
            "MEMORY USAGE k SAMPLES",
            "MEMORY USAGE k SAMPLES -1",
            "MEMORY USAGE k SAMPLES x",
            "MEMORY USAGE k FOO 1",
            "MEMORY STATS extra",
            "MEMORY DOCTOR extra",
            "MEMORY PURGE",
        ],
    );
    // The sizes are Cascade's own, but they follow the data.
    let big = "x".repeat(100_000);
    a.cmd(&["SET", "big", &big]);
    let small = int(a.cmd(&["MEMORY", "USAGE", "k"]));
    let large = int(a.cmd(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]));
    assert!((3..1_000).contains(&small), "{small}");
    assert!((100_000..101_000).contains(&large), "{large}");
    // MEMORY STATS has Redis's fields in Redis's order.
    fn names(v: Value) -> Vec<String> {
        let items = v.array().to_vec();
        let mut out = Vec::new();
        for pair in items.chunks(2) {
            out.push(pair[0].text());
            if let Value::Array(inner) = &pair[1] {
                out.extend(inner.chunks(2).map(|p| format!("  {}", p[0].text())));
            }
        }
        out
    }
    b.cmd(&["SET", "big", &big]);
    assert_eq!(
        names(a.cmd(&["MEMORY", "STATS"])),
        names(b.cmd(&["MEMORY", "STATS"]))
    );
    assert!(matches!(a.cmd(&["MEMORY", "DOCTOR"]), Value::Bulk(_)));
    // redis-cli --memkeys samples every key with MEMORY USAGE.
    let out = common::redis_cli(cascade.port, &["--memkeys"]);
    assert!(out.contains("Biggest string found '\"big\"'"), "{out}");
    // The allocator is named as Redis names jemalloc; PURGE runs on every
    // shard after a large free and the data stays.
    let allocator = info_field(&mut a, "memory", "mem_allocator");
    assert!(allocator.starts_with("mimalloc-"), "{allocator}");
    a.cmd(&["DEBUG", "POPULATE", "20000", "purge", "1000"]);
    a.cmd(&["FLUSHDB"]);
    a.cmd(&["SET", "k", "v"]);
    assert_eq!(a.cmd(&["MEMORY", "PURGE"]), Value::ok());
    assert_eq!(a.cmd(&["GET", "k"]), Value::Bulk(b"v".to_vec()));
}

/// Waits until `key` has been idle for 2 s (LRU idle time is in seconds).
fn wait_idle(c: &mut Conn, key: &str) {
    wait_until(DEADLINE, "the key idle for 2 s", || {
        int(c.cmd(&["OBJECT", "IDLETIME", key])) >= 2
    });
}

#[test]
fn idle_times_and_frequencies_survive_a_reload_and_reach_redis() {
    // Under an LRU policy a dump keeps each key's idle time (IDLE opcode),
    // under an LFU one its counter (FREQ), as Redis's do.
    for s in both(&["--maxmemory-policy", "allkeys-lru"]) {
        let mut c = s.conn();
        c.cmd(&["SET", "k", "v"]);
        wait_idle(&mut c, "k");
        assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::ok());
        assert!(int(c.cmd(&["OBJECT", "IDLETIME", "k"])) >= 2);
    }
    for s in both(&["--maxmemory-policy", "allkeys-lfu"]) {
        let mut c = s.conn();
        c.cmd(&["SET", "hot", "v"]);
        for _ in 0..300 {
            c.send(&[b"GET", b"hot"]);
        }
        for _ in 0..300 {
            c.read();
        }
        let before = int(c.cmd(&["OBJECT", "FREQ", "hot"]));
        assert!(before > 5);
        assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::ok());
        let after = int(c.cmd(&["OBJECT", "FREQ", "hot"]));
        // One less if a minute boundary passed in between (decay).
        assert!(
            after == before || after == before - 1,
            "{before} -> {after}"
        );
    }
    // Cascade's dump with IDLE opcodes: redis-check-rdb accepts it, and
    // redis-server loads the idle times.
    let ours = repl::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = ours.conn();
    c.cmd(&["SET", "k", "v"]);
    wait_idle(&mut c, "k");
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    let dump = ours.dir.path().join("dump.rdb");
    common::family::assert_rdb_ok(&dump);
    let dir = ours.dir.path().to_str().unwrap().to_string();
    let theirs = repl::start_redis(&["--maxmemory-policy", "allkeys-lru", "--dir", &dir]);
    let mut r = theirs.conn();
    assert!(int(r.cmd(&["OBJECT", "IDLETIME", "k"])) >= 2);
    assert_eq!(r.cmd(&["GET", "k"]), Value::bulk("v"));
}

#[test]
fn info_memory_has_redis_fields_in_redis_order() {
    let names = |s: &Server| -> Vec<String> {
        s.conn()
            .cmd(&["INFO", "memory"])
            .text()
            .lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
            .collect()
    };
    let cascade = repl::start(&["--maxmemory-policy", "allkeys-lru"]);
    let redis = repl::start_redis(&[]);
    assert_eq!(names(&cascade), names(&redis));
    // A master's ring beyond repl-backlog-size is reported as not counted.
    let port = cascade.port.to_string();
    let _replica = repl::start(&["--replicaof", "127.0.0.1", &port]);
    let mut c = cascade.conn();
    wait_until(DEADLINE, "the replica online", || {
        info_field(&mut c, "replication", "connected_slaves") == "1"
    });
    let ring: u64 = info_field(&mut c, "memory", "mem_replication_backlog")
        .parse()
        .unwrap();
    let backlog: u64 = c.cmd(&["CONFIG", "GET", "repl-backlog-size"]).array()[1]
        .text()
        .parse()
        .unwrap();
    let not_counted: u64 = info_field(&mut c, "memory", "mem_not_counted_for_evict")
        .parse()
        .unwrap();
    assert!(ring >= backlog);
    assert_eq!(not_counted, ring - backlog);
}
