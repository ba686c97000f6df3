//! The all-types interop gate against Debian's redis-server 7.0.15: one
//! dataset holding every type in its compact and its large encoding
//! (strings int/embstr/raw/binary/empty/compressible, hashes listpack and
//! hashtable, lists of one and many quicklist nodes, sets intset and
//! hashtable, sorted sets listpack and skiplist), keys with TTLs, in
//! several databases. It crosses (a) RDB files in both directions,
//! (b) replication in both directions with writers of every type running
//! through the full sync and after it, and (c) `redis-check-rdb`. Every
//! crossing must end with equal `DEBUG DIGEST`s; every wait has a
//! deadline.

mod common;
use common::family::{assert_rdb_ok, cascade, digest, redis, wait_same_digest};
use common::tempdir::TempDir;
use common::{Conn, Server, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An absolute expiry an hour away, the same for every key of a run (so
/// both sides hold the same times whatever path the key took).
fn expire_at_ms() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    (now + 3_600_000).to_string()
}

/// Sends every command before reading any reply; every reply must be a
/// success.
fn pipeline(c: &mut Conn, cmds: &[Vec<Vec<u8>>]) {
    for chunk in cmds.chunks(500) {
        for cmd in chunk {
            let refs: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            c.send(&refs);
        }
        for cmd in chunk {
            let r = c.read();
            assert!(
                !r.is_error(),
                "{:?}: {r:?}",
                String::from_utf8_lossy(&cmd[0])
            );
        }
    }
}

fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn cmdb(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

/// The dataset of database `db`: every type in both encodings, some with
/// a TTL; `bulk` extra small hashes make the full sync last a while.
fn dataset(db: usize, at: &str, bulk: usize) -> Vec<Vec<Vec<u8>>> {
    let p = |name: &str| format!("d{db}:{name}");
    let mut out = vec![cmd(&["SELECT", &db.to_string()])];
    // Strings.
    out.push(cmd(&["SET", &p("s:int"), "12345"]));
    out.push(cmd(&["SET", &p("s:neg"), "-9223372036854775808"]));
    out.push(cmd(&["SET", &p("s:notint"), "0123"]));
    out.push(cmd(&["SET", &p("s:embstr"), "hello"]));
    out.push(cmd(&["SET", &p("s:raw"), &"r".repeat(100)]));
    out.push(cmd(&["SET", &p("s:empty"), ""]));
    out.push(cmdb(&[
        b"SET",
        p("s:bin").as_bytes(),
        b"\x00\xff\r\n\x01binary\x00",
    ]));
    out.push(cmd(&["SET", &p("s:lzf"), &"abcdefgh".repeat(4000)]));
    out.push(cmd(&["SET", &p("s:ttl"), "soon", "PXAT", at]));
    for (name, v) in [
        ("s:max", "9223372036854775807"),
        ("s:over", "9223372036854775808"),
        ("s:plus", "+1"),
        ("s:float", "3.14"),
        ("s:zero", "0"),
        ("s:minus0", "-0"),
        ("s:space", " 1"),
        ("s:10k", "10000"),
    ] {
        out.push(cmd(&["SET", &p(name), v]));
    }
    // Hashes: listpack (small), hashtable (many fields; one long value).
    out.push(cmd(&[
        "HSET",
        &p("h:small"),
        "a",
        "1",
        "b",
        "two",
        "",
        "empty",
    ]));
    let mut big = vec!["HSET".to_string(), p("h:big")];
    for i in 0..700 {
        big.push(format!("f{i}"));
        big.push(if i % 2 == 0 {
            i.to_string()
        } else {
            format!("v{i}")
        });
    }
    out.push(big.iter().map(|s| s.as_bytes().to_vec()).collect());
    out.push(cmd(&["HSET", &p("h:longval"), "f", &"x".repeat(200)]));
    out.push(cmd(&["HSET", &p("h:ttl"), "f", "v"]));
    out.push(cmd(&["PEXPIREAT", &p("h:ttl"), at]));
    // Lists: one node, many nodes, big elements.
    out.push(cmd(&["RPUSH", &p("l:small"), "a", "1", "", "-5", "b"]));
    out.push(cmd(&[
        "RPUSH",
        &p("l:ints"),
        "0",
        "127",
        "128",
        "-4096",
        "4095",
        "8191",
        "8192",
        "-32768",
        "32767",
        "8388607",
        "-8388608",
        "2147483647",
        "-2147483648",
        "4294967296",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "007",
        "1.5",
    ]));
    let mut large = vec!["RPUSH".to_string(), p("l:large")];
    for i in 0..6000 {
        large.push(if i % 3 == 0 {
            i.to_string()
        } else {
            format!("element-{i}")
        });
    }
    out.push(large.iter().map(|s| s.as_bytes().to_vec()).collect());
    for i in 0..5 {
        out.push(cmd(&["LPUSH", &p("l:fat"), &format!("{i}").repeat(9000)]));
    }
    out.push(cmd(&["RPUSH", &p("l:ttl"), "x", "y"]));
    out.push(cmd(&["PEXPIREAT", &p("l:ttl"), at]));
    // Sets: intset, hashtable of strings, hashtable of many integers.
    out.push(cmd(&[
        "SADD",
        &p("set:int"),
        "1",
        "-2",
        "300",
        "70000",
        "5000000000",
    ]));
    out.push(cmd(&["SADD", &p("set:str"), "a", "b", "c", ""]));
    out.push(cmd(&["SADD", &p("set:i16"), "1", "-32768", "32767"]));
    out.push(cmd(&[
        "SADD",
        &p("set:i32"),
        "1",
        "-2147483648",
        "2147483647",
    ]));
    out.push(cmd(&[
        "SADD",
        &p("set:i64"),
        "-9223372036854775808",
        "9223372036854775807",
    ]));
    out.push(cmd(&["SADD", &p("set:mixed"), "1", "x", "-0", "01"]));
    let mut bigint = vec!["SADD".to_string(), p("set:bigint")];
    bigint.extend((0..600).map(|i| (i * 7).to_string()));
    out.push(bigint.iter().map(|s| s.as_bytes().to_vec()).collect());
    let mut bigstr = vec!["SADD".to_string(), p("set:bigstr")];
    bigstr.extend((0..600).map(|i| format!("m{i}")));
    out.push(bigstr.iter().map(|s| s.as_bytes().to_vec()).collect());
    out.push(cmd(&["SADD", &p("set:ttl"), "1", "2"]));
    out.push(cmd(&["PEXPIREAT", &p("set:ttl"), at]));
    // Sorted sets: listpack, skiplist (many members; one long member).
    out.push(cmd(&[
        "ZADD",
        &p("z:small"),
        "1",
        "a",
        "1.5",
        "b",
        "-inf",
        "lo",
        "+inf",
        "hi",
        "0",
        "",
        "1e30",
        "big",
    ]));
    let mut zbig = vec!["ZADD".to_string(), p("z:big")];
    for i in 0..400 {
        zbig.push(format!("{}", i as f64 / 3.0));
        zbig.push(format!("m{i}"));
    }
    out.push(zbig.iter().map(|s| s.as_bytes().to_vec()).collect());
    out.push(cmd(&["ZADD", &p("z:long"), "2", &"z".repeat(100)]));
    out.push(cmd(&[
        "ZADD",
        &p("z:edge"),
        "-0",
        "negzero",
        "5e-324",
        "denormal",
        "1.7976931348623157e308",
        "max",
        "0.1",
        "tenth",
        "123456789012345678",
        "bigint",
        "-1.5e-10",
        "tiny",
        "3",
        "12345",
    ]));
    out.push(cmd(&[
        "ZADD",
        &p("z:big"),
        "-0",
        "negzero",
        "5e-324",
        "denormal",
        "0.1",
        "tenth",
    ]));
    out.push(cmd(&[
        "HSET",
        &p("h:ints"),
        "1",
        "-1",
        "9223372036854775807",
        "x",
        "y",
        "12",
    ]));
    out.push(cmd(&["ZADD", &p("z:ttl"), "1", "a"]));
    out.push(cmd(&["PEXPIREAT", &p("z:ttl"), at]));
    for i in 0..bulk {
        out.push(cmd(&[
            "HSET",
            &p(&format!("bulk:{i}")),
            "name",
            &format!("user{i}"),
            "n",
            &i.to_string(),
        ]));
    }
    out
}

/// Fills databases 0, 1 and 7 (and leaves db 0 selected).
fn fill(c: &mut Conn, bulk: usize) {
    let at = expire_at_ms();
    for db in [0, 1, 7] {
        pipeline(c, &dataset(db, &at, bulk));
    }
    pipeline(c, &[cmd(&["SELECT", "0"])]);
}

/// Checks the encodings a server reports for the dataset of db 0.
fn assert_encodings(c: &mut Conn) {
    let want = [
        ("d0:s:int", "int"),
        ("d0:s:embstr", "embstr"),
        ("d0:s:raw", "raw"),
        ("d0:h:small", "listpack"),
        ("d0:h:big", "hashtable"),
        ("d0:h:longval", "hashtable"),
        ("d0:l:small", "quicklist"),
        ("d0:l:large", "quicklist"),
        ("d0:set:int", "intset"),
        ("d0:set:i64", "intset"),
        ("d0:set:mixed", "hashtable"),
        ("d0:s:max", "int"),
        ("d0:s:over", "embstr"),
        ("d0:set:str", "hashtable"),
        ("d0:set:bigint", "hashtable"),
        ("d0:z:small", "listpack"),
        ("d0:z:big", "skiplist"),
        ("d0:z:long", "skiplist"),
    ];
    c.cmd(&["SELECT", "0"]);
    for (k, enc) in want {
        assert_eq!(
            c.cmd(&["OBJECT", "ENCODING", k]),
            Value::bulk(enc),
            "encoding of {k}"
        );
    }
}

#[test]
fn dumps_of_every_type_cross_both_ways() {
    // Cascade → redis-server.
    let dir = TempDir::new("types-rdb");
    let d = dir.path().to_str().unwrap();
    let ours = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        fill(&mut c, 200);
        assert_encodings(&mut c);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    assert_rdb_ok(&dir.path().join("dump.rdb"));
    {
        let r = redis(&["--dir", d]);
        let mut c = r.conn();
        assert_eq!(digest(&mut c), ours, "redis-server loading Cascade's dump");
        assert_encodings(&mut c);
        assert_eq!(c.cmd(&["SELECT", "7"]), Value::ok());
        assert_eq!(c.cmd(&["HGET", "d7:bulk:5", "name"]), Value::bulk("user5"));
    }
    // redis-server → Cascade.
    let dir = TempDir::new("types-rdb-back");
    let d = dir.path().to_str().unwrap();
    let theirs = {
        let r = redis(&["--dir", d]);
        let mut c = r.conn();
        fill(&mut c, 200);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let s = cascade(&["--dir", d]);
    let mut c = s.conn();
    assert_eq!(
        digest(&mut c),
        theirs,
        "Cascade loading redis-server's dump"
    );
    assert_encodings(&mut c);
    let ttl = c.cmd(&["PTTL", "d0:z:ttl"]).int();
    assert!(ttl > 3_000_000 && ttl <= 3_600_000, "{ttl}");
    // And Cascade's dump of what it loaded is accepted again.
    std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    assert_rdb_ok(&dir.path().join("dump.rdb"));
}

/// One writer's command for step `i`: every type, several databases,
/// encodings growing past their thresholds, TTLs, deletions, a
/// transaction now and then.
fn write_step(i: u64, tag: &str) -> Vec<Vec<Vec<u8>>> {
    let db = ["0", "1", "7"][(i % 3) as usize];
    let k = |name: &str| format!("w{tag}:{name}:{}", i % 40);
    let n = i.to_string();
    let mut out = vec![cmd(&["SELECT", db])];
    out.push(match i % 16 {
        0 => cmd(&["SET", &k("s"), &n]),
        1 => cmd(&["APPEND", &k("s"), "-tail"]),
        2 => cmd(&["INCRBY", &k("cnt"), "3"]),
        3 => cmd(&["HSET", &k("h"), &format!("f{}", i % 300), &n]),
        4 => cmd(&["HDEL", &k("h"), &format!("f{}", (i / 2) % 300)]),
        5 => cmd(&["RPUSH", &k("l"), &n, "x", &"p".repeat((i % 50) as usize)]),
        6 => cmd(&["LPOP", &k("l")]),
        7 => cmd(&["SADD", &k("si"), &n, &(i * 3).to_string()]),
        8 => cmd(&["SADD", &k("ss"), &format!("m{i}")]),
        9 => cmd(&["SREM", &k("si"), &((i / 2) * 3).to_string()]),
        10 => cmd(&[
            "ZADD",
            &k("z"),
            &format!("{}.5", i % 97),
            &format!("m{}", i % 200),
        ]),
        11 => cmd(&["ZINCRBY", &k("z"), "2", &format!("m{}", i % 150)]),
        12 => cmd(&["BZMPOP", "0.01", "1", &k("z"), "MIN", "COUNT", "2"]),
        13 => cmd(&["PEXPIRE", &k("s"), "3600000"]),
        14 => cmd(&["DEL", &k("ss")]),
        _ => cmd(&["SET", &k("ex"), &n, "EX", "5000"]),
    });
    if i % 50 == 49 {
        out.push(cmd(&["MULTI"]));
        out.push(cmd(&["HSET", &k("h"), "tx", &n]));
        out.push(cmd(&["ZADD", &k("z"), "1", "tx"]));
        out.push(cmd(&["LPUSH", &k("l"), "tx"]));
        out.push(cmd(&["EXEC"]));
    }
    out
}

/// Writers of every type against `port` until `stop`; `steps` counts the
/// steps done.
struct Writers {
    stop: Arc<AtomicBool>,
    steps: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(port: u16, n: usize) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let steps = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|t| {
                let (stop, steps) = (stop.clone(), steps.clone());
                std::thread::spawn(move || {
                    let mut c = Conn::connect(port);
                    let tag = t.to_string();
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        pipeline(&mut c, &write_step(i, &tag));
                        steps.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                })
            })
            .collect();
        Writers {
            stop,
            steps,
            threads,
        }
    }

    /// Waits until `more` further steps are done.
    fn wait_steps(&self, more: u64) {
        let target = self.steps.load(Ordering::SeqCst) + more;
        common::wait_until(Duration::from_secs(60), "writer steps", || {
            self.steps.load(Ordering::SeqCst) >= target
        });
    }

    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("writer");
        }
    }
}

/// Starts `replica_of(master port)` while writers run on `master`, lets
/// them run through the full sync and a while after it, then requires
/// equal digests.
fn replicate_under_writes(master: &Server, replica_of: impl FnOnce(&str) -> Server) {
    let mut c = master.conn();
    fill(&mut c, 3000);
    let writers = Writers::start(master.port, 2);
    writers.wait_steps(50);
    let before_sync = writers.steps.load(Ordering::SeqCst);
    let replica = replica_of(&master.port.to_string());
    common::wait_until(Duration::from_secs(60), "replica link up", || {
        common::info_field(&mut replica.conn(), "replication", "master_link_status") == "up"
    });
    let during_sync = writers.steps.load(Ordering::SeqCst) - before_sync;
    assert!(during_sync > 0, "no write ran during the full sync");
    eprintln!("writer steps during the full sync: {during_sync}");
    writers.wait_steps(300);
    writers.finish();
    wait_same_digest(master, &replica);
    let mut r = replica.conn();
    assert_encodings(&mut r);
    assert_eq!(r.cmd(&["SELECT", "1"]), Value::ok());
    assert_eq!(r.cmd(&["HGET", "d1:bulk:2999", "n"]), Value::bulk("2999"));
}

#[test]
fn cascade_master_to_redis_replica_under_writes() {
    for diskless in ["yes", "no"] {
        let master = cascade(&[
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
        ]);
        replicate_under_writes(&master, |port| redis(&["--replicaof", "127.0.0.1", port]));
    }
}

#[test]
fn redis_master_to_cascade_replica_under_writes() {
    for diskless in ["yes", "no"] {
        let master = redis(&[
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
        ]);
        replicate_under_writes(&master, |port| cascade(&["--replicaof", "127.0.0.1", port]));
    }
}

/// A key whose TTL passes between SAVE and the load is dropped by the
/// loading master, whichever server wrote the dump.
#[test]
fn keys_expired_in_a_dump_are_not_loaded() {
    for writer_is_cascade in [true, false] {
        let dir = TempDir::new("types-expired");
        let d = dir.path().to_str().unwrap();
        let source = if writer_is_cascade {
            cascade(&["--dir", d])
        } else {
            redis(&["--dir", d])
        };
        let mut c = source.conn();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let soon = (now + 300).to_string();
        pipeline(
            &mut c,
            &[
                cmd(&["SET", "stays", "v"]),
                cmd(&["ZADD", "gone:z", "1", "a"]),
                cmd(&["PEXPIREAT", "gone:z", &soon]),
                cmd(&["SELECT", "3"]),
                cmd(&["HSET", "gone:h", "f", "v"]),
                cmd(&["PEXPIREAT", "gone:h", &soon]),
                cmd(&["SELECT", "0"]),
            ],
        );
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        // Reads delete the expired keys on the source too.
        common::wait_until(Duration::from_secs(10), "keys expired", || {
            c.cmd(&["EXISTS", "gone:z"]) == Value::Int(0)
        });
        c.cmd(&["SELECT", "3"]);
        assert_eq!(c.cmd(&["EXISTS", "gone:h"]), Value::Int(0));
        let want = digest(&mut c);
        drop(c);
        drop(source);
        let target = if writer_is_cascade {
            redis(&["--dir", d])
        } else {
            cascade(&["--dir", d])
        };
        let mut c = target.conn();
        assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(1));
        assert_eq!(digest(&mut c), want);
        c.cmd(&["SELECT", "3"]);
        assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    }
}
