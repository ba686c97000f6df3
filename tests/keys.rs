//! Generic key commands, expiry and the cross-shard coordinated commands.

mod common;
use common::{wait_until, Conn, Server, Value};
use std::collections::HashSet;
use std::time::Duration;

fn b(s: &str) -> Value {
    Value::bulk(s)
}

fn err(v: &Value) -> String {
    match v {
        Value::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn del_exists_type_touch() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    for i in 0..20 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(c.cmd(&["EXISTS", "k1", "k2", "k1", "nope"]), Value::Int(3));
    assert_eq!(c.cmd(&["TOUCH", "k1", "k2", "nope"]), Value::Int(2));
    assert_eq!(c.cmd(&["TYPE", "k1"]), Value::Simple("string".into()));
    assert_eq!(c.cmd(&["TYPE", "nope"]), Value::Simple("none".into()));
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(|k| k.as_str()));
    del.push("nope");
    assert_eq!(c.cmd(&del), Value::Int(20));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    c.cmd(&["SET", "u", "1"]);
    assert_eq!(c.cmd(&["UNLINK", "u", "u"]), Value::Int(1));
}

#[test]
fn expire_family_and_ttl() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["TTL", "nope"]), Value::Int(-2));
    assert_eq!(c.cmd(&["PTTL", "nope"]), Value::Int(-2));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]), Value::Int(-1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), Value::Int(1));
    assert_eq!(c.cmd(&["TTL", "k"]), Value::Int(100));
    assert_eq!(c.cmd(&["EXPIRE", "k", "50", "GT"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "GT"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "300", "LT"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "NX"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX"]), Value::Int(1));
    assert_eq!(c.cmd(&["PERSIST", "k"]), Value::Int(1));
    assert_eq!(c.cmd(&["PERSIST", "k"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "LT"]), Value::Int(1));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "100000"]), Value::Int(1));
    assert!(c.cmd(&["PTTL", "k"]).int() > 99000);
    assert_eq!(c.cmd(&["EXPIREAT", "k", "99999999999"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]), Value::Int(99999999999));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), Value::Int(99999999999000));
    assert_eq!(c.cmd(&["PEXPIREAT", "k", "99999999999001"]), Value::Int(1));
    assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), Value::Int(99999999999001));
    assert_eq!(c.cmd(&["EXPIRE", "nope", "10"]), Value::Int(0));
    assert_eq!(
        err(&c.cmd(&["EXPIRE", "k", "10", "NX", "XX"])),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&c.cmd(&["EXPIRE", "k", "10", "GT", "LT"])),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&c.cmd(&["EXPIRE", "k", "10", "FOO"])),
        "ERR Unsupported option FOO"
    );
    assert_eq!(
        err(&c.cmd(&["EXPIRE", "k", "abc"])),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&c.cmd(&["EXPIRE", "k", "9223372036854775807"])),
        "ERR invalid expire time in 'expire' command"
    );
    // A time in the past deletes the key.
    assert_eq!(c.cmd(&["EXPIRE", "k", "-1"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "k"]), Value::Int(0));
}

#[test]
fn keys_expire_lazily_and_actively() {
    let s = Server::start(&["--shards", "2", "--hz", "50"]);
    let mut c = s.conn();
    c.cmd(&["SET", "lazy", "v", "PX", "50"]);
    for i in 0..200 {
        c.cmd(&["SET", &format!("active{i}"), "v", "PX", "50"]);
    }
    c.cmd(&["SET", "keep", "v"]);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.cmd(&["GET", "lazy"]), Value::Nil);
    // The active cycle removes the others without anyone touching them.
    wait_until(Duration::from_secs(10), "active expiry", || {
        c.cmd(&["DBSIZE"]).int() == 1
    });
    let info = c.cmd(&["INFO", "stats"]).text();
    let expired: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("expired_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(expired, 201);
}

#[test]
fn debug_set_active_expire_stops_background_expiry() {
    let s = Server::start(&["--enable-debug-command", "yes", "--hz", "100"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), Value::ok());
    c.cmd(&["SET", "k", "v", "PX", "10"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        c.cmd(&["DBSIZE"]),
        Value::Int(1),
        "not expired in background"
    );
    assert_eq!(c.cmd(&["GET", "k"]), Value::Nil, "but hidden on access");
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
}

#[test]
fn keys_scan_randomkey_across_shards() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let mut expected = HashSet::new();
    for i in 0..300 {
        let k = format!("user:{i}");
        c.cmd(&["SET", &k, "v"]);
        expected.insert(k);
    }
    c.cmd(&["SET", "other", "v"]);
    let keys = c.cmd(&["KEYS", "user:*"]);
    let got: HashSet<String> = keys.array().iter().map(|v| v.text()).collect();
    assert_eq!(got, expected);
    assert_eq!(c.cmd(&["KEYS", "user:1?"]).array().len(), 10);
    assert_eq!(c.cmd(&["KEYS", "*"]).array().len(), 301);
    // A full SCAN returns every key, whatever the shard.
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut rounds = 0;
    loop {
        let r = c.cmd(&["SCAN", &cursor, "MATCH", "user:*", "COUNT", "20"]);
        let parts = r.array();
        cursor = parts[0].text();
        for k in parts[1].array() {
            seen.insert(k.text());
        }
        rounds += 1;
        if cursor == "0" {
            break;
        }
        assert!(rounds < 1000, "scan does not terminate");
    }
    assert_eq!(seen, expected);
    let typed = c.cmd(&["SCAN", "0", "TYPE", "hash", "COUNT", "1000"]);
    assert!(typed.array()[1].array().is_empty());
    assert_eq!(err(&c.cmd(&["SCAN", "abc"])), "ERR invalid cursor");
    assert_eq!(
        err(&c.cmd(&["SCAN", "0", "COUNT", "0"])),
        "ERR syntax error"
    );
    assert_eq!(err(&c.cmd(&["SCAN", "0", "FOO", "1"])), "ERR syntax error");
    let rk = c.cmd(&["RANDOMKEY"]).text();
    assert!(rk == "other" || expected.contains(&rk));
    c.cmd(&["FLUSHDB"]);
    assert_eq!(c.cmd(&["RANDOMKEY"]), Value::Nil);
}

#[test]
fn rename_copy_move_across_shards() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    // Find two keys that live on different shards by trying many names:
    // with 2 shards, a rename across many pairs surely crosses shards.
    for i in 0..20 {
        let (src, dst) = (format!("src{i}"), format!("dst{i}"));
        c.cmd(&["SET", &src, &i.to_string(), "EX", "1000"]);
        assert_eq!(c.cmd(&["RENAME", &src, &dst]), Value::ok());
        assert_eq!(c.cmd(&["EXISTS", &src]), Value::Int(0));
        assert_eq!(c.cmd(&["GET", &dst]), b(&i.to_string()));
        assert!(c.cmd(&["TTL", &dst]).int() > 900, "TTL moves with the key");
    }
    assert_eq!(err(&c.cmd(&["RENAME", "nope", "x"])), "ERR no such key");
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "2"]);
    assert_eq!(c.cmd(&["RENAMENX", "a", "b"]), Value::Int(0));
    assert_eq!(c.cmd(&["RENAMENX", "a", "c"]), Value::Int(1));
    assert_eq!(c.cmd(&["RENAME", "c", "c"]), Value::ok());
    assert_eq!(c.cmd(&["COPY", "c", "d"]), Value::Int(1));
    assert_eq!(c.cmd(&["COPY", "c", "d"]), Value::Int(0));
    c.cmd(&["SET", "c", "new"]);
    assert_eq!(c.cmd(&["COPY", "c", "d", "REPLACE"]), Value::Int(1));
    assert_eq!(c.cmd(&["GET", "d"]), b("new"));
    assert_eq!(c.cmd(&["COPY", "c", "c", "DB", "1"]), Value::Int(1));
    assert_eq!(
        err(&c.cmd(&["COPY", "c", "c"])),
        "ERR source and destination objects are the same"
    );
    assert_eq!(c.cmd(&["MOVE", "d", "2"]), Value::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "d"]), Value::Int(0));
    assert_eq!(c.cmd(&["SELECT", "2"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "d"]), b("new"));
    assert_eq!(
        c.cmd(&["MOVE", "d", "2"]),
        Value::Error("ERR source and destination objects are the same".into())
    );
    assert_eq!(
        err(&c.cmd(&["MOVE", "d", "99"])),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&c.cmd(&["SELECT", "16"])),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&c.cmd(&["SELECT", "x"])),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn databases_swap_and_flush() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    for i in 0..10 {
        c.cmd(&["SET", &format!("a{i}"), "0"]);
    }
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "b", "1"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(1));
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), Value::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(10));
    c.cmd(&["SELECT", "0"]);
    assert_eq!(c.cmd(&["GET", "b"]), b("1"));
    assert_eq!(
        err(&c.cmd(&["SWAPDB", "0", "x"])),
        "ERR invalid second DB index"
    );
    assert_eq!(
        err(&c.cmd(&["SWAPDB", "0", "100"])),
        "ERR DB index is out of range"
    );
    assert_eq!(c.cmd(&["FLUSHDB"]), Value::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(10));
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]), Value::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    assert_eq!(err(&c.cmd(&["FLUSHALL", "FOO"])), "ERR syntax error");
}

/// Writers keep MSETting pairs of keys on different shards to the same
/// value; readers MGET them and must never see a mixed pair.
#[test]
fn concurrent_mset_mget_is_atomic_across_shards() {
    let s = Server::start(&["--shards", "2"]);
    let port = s.port;
    // Keys chosen so that, whatever the slot mapping, most pairs span shards.
    let pairs: Vec<(String, String)> = (0..8)
        .map(|i| (format!("left{i}"), format!("right{i}")))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..4 {
        let pairs = pairs.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut c = common::Conn::connect(port);
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = format!("{w}-{n}");
                let mut args: Vec<&str> = vec!["MSET"];
                for (a, b) in &pairs {
                    args.extend([a.as_str(), v.as_str(), b.as_str(), v.as_str()]);
                }
                assert_eq!(c.cmd(&args), Value::ok());
                n += 1;
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let pairs = pairs.clone();
        readers.push(std::thread::spawn(move || {
            let mut c = common::Conn::connect(port);
            for _ in 0..1000 {
                let mut args: Vec<&str> = vec!["MGET"];
                for (a, b) in &pairs {
                    args.extend([a.as_str(), b.as_str()]);
                }
                let r = c.cmd(&args);
                let vals = r.array();
                let first = &vals[0];
                for v in vals {
                    assert_eq!(v, first, "an MGET saw half of an MSET: {vals:?}");
                }
            }
        }));
    }
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn flush_async_frees_in_the_background_and_counts_it() {
    let s = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let freed = |c: &mut Conn| -> u64 {
        common::info_field(c, "memory", "lazyfreed_objects")
            .parse()
            .unwrap()
    };
    let wait_freed = |c: &mut Conn, n: u64| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while freed(c) < n && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(freed(c), n);
        assert_eq!(
            common::info_field(c, "memory", "lazyfree_pending_objects"),
            "0"
        );
    };
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "1000"]), Value::ok());
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]), Value::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
    wait_freed(&mut c, 1000);
    // FLUSHDB ASYNC frees one database only.
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "300"]), Value::ok());
    assert_eq!(c.cmd(&["SELECT", "2"]), Value::ok());
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "200"]), Value::ok());
    assert_eq!(c.cmd(&["FLUSHDB", "ASYNC"]), Value::ok());
    wait_freed(&mut c, 1200);
    assert_eq!(c.cmd(&["SELECT", "0"]), Value::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(300));
    // SYNC, and no flag by default, free at once: not counted.
    assert_eq!(c.cmd(&["FLUSHALL", "SYNC"]), Value::ok());
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "10"]), Value::ok());
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::ok());
    assert_eq!(freed(&mut c), 1200);
    // lazyfree-lazy-user-flush makes the plain form lazy.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "10"]), Value::ok());
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::ok());
    wait_freed(&mut c, 1210);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Value::ok());
    assert_eq!(freed(&mut c), 0);
    assert!(c.cmd(&["FLUSHALL", "LATER"]).is_error());
}

/// EXPIRE's options are read before its time, and SCAN MATCH `*` lists
/// the empty key, as Redis does (found by differential fuzzing).
#[test]
fn expire_options_and_scan_match_star_match_redis() {
    common::family::run_script(
        "2",
        &[
            "SET k v",
            "EXPIRE k abc BOGUS",
            "EXPIRE k abc NX XX",
            "PEXPIREAT k \"\" GT LT",
            "EXPIRE k abc GT",
            "EXPIRE k 100 NX XX",
            "SET \"\" x",
            "SET other y",
            "~SCAN 0 MATCH * COUNT 100",
            "~SCAN \"\" COUNT 100",
            "~SCAN 0 MATCH o* COUNT 100",
            "SCAN abc",
            "SCAN 1.5",
        ],
    );
}

/// SCAN deletes the expired keys it passes over on a master, as Redis's
/// does (DBSIZE counts keys not yet deleted in both).
#[test]
fn scan_deletes_the_expired_keys_it_passes() {
    let (s, r) = (common::family::cascade(&[]), common::family::redis(&[]));
    for server in [&s, &r] {
        let mut c = server.conn();
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for i in 0..20 {
            c.cmd(&["SET", &format!("gone{i}"), "v", "PX", "1"]);
        }
        c.cmd(&["SET", "stays", "v"]);
    }
    // Every TTL has passed, and nothing removed the keys yet.
    std::thread::sleep(Duration::from_millis(20));
    for server in [&s, &r] {
        let mut c = server.conn();
        assert_eq!(c.cmd(&["DBSIZE"]).int(), 21);
        let mut cursor = "0".to_string();
        loop {
            let reply = c.cmd(&["SCAN", &cursor, "COUNT", "100"]);
            cursor = reply.array()[0].text();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(c.cmd(&["DBSIZE"]).int(), 1);
    }
}
