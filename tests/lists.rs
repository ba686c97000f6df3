//! List commands against the real binary (two shards), judged against a
//! real redis-server 7.0 fed the same commands: replies and errors, RESP2
//! and RESP3 shapes, COMMAND INFO, DEBUG DIGEST, multi-key commands whose
//! keys live on different shards; then replication (Cascade and Redis
//! replicas of a Cascade master, a Cascade replica of Redis) and RDB round
//! trips both ways.

mod common;
use cascade::shard::route::shard_of;
use common::family::*;
use common::tempdir::TempDir;
use common::{assert_same_replies, require_tool, wait_until, Conn, Value};
use std::time::Duration;

/// Two keys named `<prefix>N` on different shards of two.
fn keys_on_both_shards(prefix: &str) -> (String, String) {
    let a = format!("{prefix}0");
    let sa = shard_of(a.as_bytes(), 2);
    let b = (1..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| shard_of(k.as_bytes(), 2) != sa)
        .expect("a key on the other shard");
    (a, b)
}

const SCRIPT: &[&str] = &[
    "RPUSH l a b c 1 2 3",
    "LRANGE l 0 -1",
    "LPUSH l x y",
    "LLEN l",
    "LLEN nope",
    "LINDEX l 0",
    "LINDEX l -1",
    "LINDEX l 100",
    "LINDEX l -100",
    "LINDEX l x",
    "LINDEX nope x",
    "LSET l 0 first",
    "LSET l -1 last",
    "LSET l 100 z",
    "LSET l x z",
    "LSET nope 0 z",
    "LSET nope x z",
    "LINSERT l BEFORE b B",
    "LINSERT l after b A",
    "LINSERT l before nope z",
    "LINSERT l middle b z",
    "LINSERT nope before a b",
    "LRANGE l 0 -1",
    "LRANGE l -3 -1",
    "LRANGE l -100 100",
    "LRANGE l 5 2",
    "LRANGE l 100 200",
    "LRANGE l a 1",
    "LRANGE nope 0 -1",
    "RPUSH r a b a c a d a",
    "LREM r 2 a",
    "LREM r -1 a",
    "LREM r 0 nope",
    "LREM r x a",
    "LRANGE r 0 -1",
    "LREM r 0 a",
    "LREM nope 1 a",
    "RPUSH p a b c a b c a",
    "LPOS p a",
    "LPOS p a RANK 2",
    "LPOS p a RANK -1",
    "LPOS p a RANK -2 COUNT 0",
    "LPOS p a COUNT 0",
    "LPOS p a COUNT 2",
    "LPOS p a COUNT 0 MAXLEN 4",
    "LPOS p a RANK -1 MAXLEN 1",
    "LPOS p nope",
    "LPOS p nope COUNT 0",
    "LPOS nope a",
    "LPOS nope a COUNT 1",
    "LPOS p a RANK 0",
    "LPOS p a RANK x",
    "LPOS p a RANK -9223372036854775808",
    "LPOS p a COUNT -1",
    "LPOS p a COUNT x",
    "LPOS p a MAXLEN -1",
    "LPOS p a RANK",
    "LPOS p a FOO 1",
    "LTRIM p 1 -2",
    "LRANGE p 0 -1",
    "LTRIM p 10 20",
    "EXISTS p",
    "LTRIM nope 0 1",
    "LTRIM l 0 x",
    "LPOP l",
    "RPOP l",
    "LPOP l 2",
    "RPOP l 0",
    "LPOP l -1",
    "LPOP l x",
    "LPOP l 1 2",
    "LPOP nope",
    "LPOP nope 2",
    "LPOP nope 0",
    "RPOP l 100",
    "EXISTS l",
    "LPUSHX l a",
    "RPUSHX l a",
    "RPUSH l \"\"",
    "LPUSHX l b c",
    "RPUSHX l d",
    "LRANGE l 0 -1",
    "RPUSH m1 1 2 3",
    "LMOVE m1 m2 LEFT RIGHT",
    "LMOVE m1 m2 right left",
    "LMOVE m1 m1 LEFT RIGHT",
    "LMOVE m1 m2 UP LEFT",
    "LMOVE nope m2 LEFT LEFT",
    "RPOPLPUSH m1 m2",
    "RPOPLPUSH m1 m2",
    "EXISTS m1",
    "LRANGE m2 0 -1",
    "RPOPLPUSH m2 m2",
    "LRANGE m2 0 -1",
    "LMPOP 2 nope m2 LEFT",
    "LMPOP 2 nope m2 RIGHT COUNT 10",
    "LMPOP 1 m2 LEFT",
    "LMPOP 0 m2 LEFT",
    "LMPOP -1 m2 LEFT",
    "LMPOP x m2 LEFT",
    "LMPOP 2 m2 LEFT",
    "LMPOP 1 m2 MIDDLE",
    "LMPOP 1 m2 LEFT COUNT 0",
    "LMPOP 1 m2 LEFT COUNT -1",
    "LMPOP 1 m2 LEFT COUNT 1 COUNT 2",
    "LMPOP 1 m2 LEFT FOO",
    "SET str v",
    "LPUSH str a",
    "RPUSHX str a",
    "LPOP str",
    "LLEN str",
    "LRANGE str 0 1",
    "LINDEX str 0",
    "LSET str 0 a",
    "LINSERT str before a b",
    "LREM str 0 a",
    "LTRIM str 0 1",
    "LPOS str a",
    "LMOVE str m9 LEFT LEFT",
    "RPUSH m9 x",
    "LMOVE m9 str LEFT LEFT",
    "LRANGE m9 0 -1",
    "LMPOP 2 nope str LEFT",
    "LMPOP 2 m9 str LEFT",
    "BLPOP str 0",
    "RPUSH m9 y",
    "BLMOVE m9 str LEFT LEFT 0",
    "BLPOP m9 0",
    "LPUSH",
    "LPUSH l",
    "LLEN",
    "LRANGE l 0",
    "LINDEX l",
    "LSET l 0",
    "LINSERT l before a",
    "LREM l 0",
    "LTRIM l 0",
    "LPOS l",
    "LMOVE a b LEFT",
    "RPOPLPUSH a",
    "LMPOP 1",
    "BLPOP l",
    "BLMOVE a b LEFT LEFT",
    "BRPOPLPUSH a b",
    "BLMPOP 0 1 l",
    "BLPOP nope -1",
    "BLPOP nope abc",
    "BLPOP nope inf",
    "BLPOP nope 1e400",
    "BLMPOP -1 1 nope LEFT",
    "BLMPOP 0 0 nope LEFT",
    "BLMPOP x 1 nope LEFT",
    "BLMOVE nope x UP LEFT -1",
    "RPUSH b 1 2 3",
    "BLPOP nope b 0",
    "BRPOP b 0",
    "BLMOVE b b2 LEFT LEFT 0",
    "BRPOPLPUSH b2 b 0",
    "BLMPOP 0 2 nope b RIGHT COUNT 5",
    "EXISTS b",
    "OBJECT ENCODING b2",
    "TYPE b2",
    "DEBUG DIGEST-VALUE b2 r nope",
    "DEBUG DIGEST",
];

#[test]
fn same_replies_as_redis_resp2() {
    run_script("2", SCRIPT);
}

#[test]
fn same_replies_as_redis_resp3() {
    run_script("3", SCRIPT);
}

#[test]
fn command_info_matches_redis() {
    assert_command_info_matches_redis(&[
        "lpush",
        "rpush",
        "lpushx",
        "rpushx",
        "lpop",
        "rpop",
        "llen",
        "lrange",
        "lindex",
        "lset",
        "linsert",
        "lrem",
        "ltrim",
        "lpos",
        "lmove",
        "rpoplpush",
        "lmpop",
        "blpop",
        "brpop",
        "blmove",
        "brpoplpush",
        "blmpop",
    ]);
}

#[test]
fn multi_key_commands_across_shards() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let (a, b) = keys_on_both_shards("x:");
    let lines: Vec<String> = vec![
        format!("RPUSH {a} 1 2 3"),
        format!("LMOVE {a} {b} LEFT RIGHT"),
        format!("RPOPLPUSH {a} {b}"),
        format!("LRANGE {b} 0 -1"),
        format!("LMPOP 2 {a} {b} RIGHT COUNT 5"),
        format!("LMPOP 2 {b} {a} LEFT COUNT 5"),
        format!("LMPOP 2 {b} {a} LEFT"),
        format!("SET {b} str"),
        format!("RPUSH {a} z"),
        format!("LMOVE {a} {b} LEFT LEFT"),
        format!("LMPOP 2 {b} {a} LEFT"),
        format!("BLMPOP 0 2 {b} {a} LEFT"),
        format!("BLMOVE {a} {b} LEFT LEFT 0"),
        format!("RPOPLPUSH {b} {a}"),
        format!("LLEN {a}"),
        format!("DEL {b}"),
        format!("BLMOVE {a} {b} LEFT RIGHT 0"),
        format!("BLPOP nope:{a} {b} 0"),
        "DEBUG DIGEST".to_string(),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_same_replies(&mut s.conn(), &mut r.conn(), &lines);
}

#[test]
fn large_lists_and_binary_elements_digest_like_redis() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let bin: Vec<u8> = (0..=255u8).chain(*b"\r\n\0").collect();
    let big = vec![b'q'; 100_000];
    for srv in [&s, &r] {
        let mut c = srv.conn();
        for i in 0..2000 {
            let e = format!("element:{i}");
            c.cmd(&["RPUSH", "big", &e]);
            c.cmd(&["LPUSH", "big", &i.to_string()]);
        }
        c.cmdb(&[b"RPUSH", b"bin\0key", &bin, b"", &big, &bin]);
        c.cmd(&["LSET", "big", "2000", "middle"]);
        c.cmd(&["LINSERT", "big", "BEFORE", "element:1000", "inserted"]);
        c.cmd(&["LREM", "big", "-3", "7"]);
        c.cmd(&["LTRIM", "big", "10", "-10"]);
        c.cmd(&["EXPIRE", "big", "1000"]);
    }
    let (mut c, mut rc) = (s.conn(), r.conn());
    assert_eq!(digest(&mut c), digest(&mut rc));
    for args in [
        vec!["LRANGE", "big", "1500", "1600"],
        vec!["LINDEX", "big", "-2500"],
        vec!["LPOS", "big", "element:1500", "RANK", "-1"],
        vec!["LLEN", "big"],
    ] {
        assert_eq!(c.cmd(&args), rc.cmd(&args), "{args:?}");
    }
    let dv = |c: &mut Conn| c.cmdb(&[b"DEBUG", b"DIGEST-VALUE", b"big", b"bin\0key"]);
    assert_eq!(dv(&mut c), dv(&mut rc));
    assert_eq!(
        c.cmdb(&[b"LINDEX", b"bin\0key", b"2"]),
        Value::Bulk(big.clone())
    );
}

/// List writes of every kind, served blocking pops included, for the
/// replication and RDB tests.
fn write_lists(c: &mut Conn, port: u16) {
    for i in 0..300 {
        c.cmd(&["RPUSH", "repl:big", &format!("e{i}"), &i.to_string()]);
    }
    c.cmd(&["LPUSH", "repl:small", "a", "b", "c", "1"]);
    c.cmd(&["LSET", "repl:small", "1", "set"]);
    c.cmd(&["LINSERT", "repl:small", "AFTER", "a", "after"]);
    c.cmd(&["LREM", "repl:big", "2", "e5"]);
    c.cmd(&["LTRIM", "repl:big", "3", "-4"]);
    c.cmd(&["RPOPLPUSH", "repl:big", "repl:small"]);
    c.cmd(&["LMOVE", "repl:big", "repl:other", "LEFT", "RIGHT"]);
    c.cmd(&["LMPOP", "2", "nope", "repl:big", "RIGHT", "COUNT", "3"]);
    c.cmd(&["RPUSH", "repl:ttl", "x"]);
    c.cmd(&["EXPIRE", "repl:ttl", "5000"]);
    // Served blocking pops are replicated as the pops they did.
    let mut waiters: Vec<Conn> = Vec::new();
    for cmd in [
        vec!["BLPOP", "repl:w1", "0"],
        vec!["BLMOVE", "repl:w2", "repl:dst", "RIGHT", "LEFT", "0"],
        vec!["BLMPOP", "0", "2", "nope", "repl:w3", "LEFT", "COUNT", "2"],
        vec!["BRPOPLPUSH", "repl:w4", "repl:w4dst", "0"],
    ] {
        let mut w = Conn::connect(port);
        let refs: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        w.send(&refs);
        waiters.push(w);
    }
    wait_until(Duration::from_secs(10), "four blocked clients", || {
        common::info_field(c, "clients", "blocked_clients") == "4"
    });
    c.cmd(&["RPUSH", "repl:w1", "1", "2"]);
    c.cmd(&["RPUSH", "repl:w2", "a", "b"]);
    c.cmd(&["RPUSH", "repl:w3", "x", "y", "z"]);
    c.cmd(&["RPUSH", "repl:w4", "q"]);
    for w in &mut waiters {
        assert!(!w.read().is_error());
    }
}

#[test]
fn replicas_of_a_cascade_master_converge() {
    require_tool("redis-server");
    let master = cascade(&["--repl-diskless-sync-delay", "0"]);
    let mut c = master.conn();
    c.cmd(&["RPUSH", "before", "sync"]);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    let theirs = redis(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    // Everything now travels through the stream.
    write_lists(&mut c, master.port);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    assert_eq!(
        theirs.conn().cmd(&["LRANGE", "repl:dst", "0", "-1"]),
        c.cmd(&["LRANGE", "repl:dst", "0", "-1"])
    );
    // A fresh full sync carries the lists in the RDB.
    let late = redis(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &late);
}

#[test]
fn a_cascade_replica_of_redis_follows_lists() {
    let master = redis(&[]);
    let mut c = master.conn();
    c.cmd(&["RPUSH", "before", "1", "2"]);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    write_lists(&mut c, master.port);
    wait_same_digest(&master, &ours);
    // Replica clients blocked on a key are woken by the master's stream.
    let mut w = ours.conn();
    assert_eq!(
        w.cmd(&["CONFIG", "SET", "replica-read-only", "no"]),
        Value::ok()
    );
    w.send(&[b"BLPOP", b"from-master", b"0"]);
    let mut rc = ours.conn();
    wait_until(Duration::from_secs(10), "blocked on the replica", || {
        common::info_field(&mut rc, "clients", "blocked_clients") == "1"
    });
    c.cmd(&["RPUSH", "from-master", "hello"]);
    assert_eq!(
        w.read(),
        Value::Array(vec![Value::bulk("from-master"), Value::bulk("hello")])
    );
}

#[test]
fn save_and_restart_keeps_lists() {
    let mut s = cascade(&[]);
    let mut c = s.conn();
    write_lists(&mut c, s.port);
    let before = digest(&mut c);
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "repl:big"]).text(),
        "quicklist"
    );
    assert!(c.cmd(&["TTL", "repl:ttl"]).int() > 4000);
    assert_rdb_ok(&s.dir.path().join("dump.rdb"));
}

#[test]
fn dumps_travel_between_redis_and_cascade() {
    let dir = TempDir::new("list-interop");
    let d = dir.path().to_str().unwrap();
    let redis_digest = {
        // Compressed and small nodes in Redis's file.
        let r = redis(&[
            "--dir",
            d,
            "--list-compress-depth",
            "1",
            "--list-max-listpack-size",
            "5",
        ]);
        let mut c = r.conn();
        write_lists(&mut c, r.port);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let ours_digest = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        assert_eq!(digest(&mut c), redis_digest);
        for i in 0..3000 {
            c.cmd(&["RPUSH", "ours:big", &format!("v{i}")]);
        }
        std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let r = redis(&["--dir", d]);
    let mut c = r.conn();
    assert_eq!(digest(&mut c), ours_digest);
    assert_eq!(c.cmd(&["LLEN", "ours:big"]), Value::Int(3000));
}

fn used_memory(c: &mut Conn) -> i64 {
    common::info_field(c, "memory", "used_memory")
        .parse()
        .unwrap_or(0)
}

/// RPUSHes `n` compressible elements `<prefix>-NNNNNNNN-padding` to `key`
/// in batches (one command per 1000 elements).
fn fill_compressible(c: &mut Conn, key: &str, prefix: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let elems: Vec<String> = (start..(start + 1000).min(n))
            .map(|i| format!("{prefix}-{i:08}-padding-padding"))
            .collect();
        let mut args = vec!["RPUSH", key];
        args.extend(elems.iter().map(String::as_str));
        c.cmd(&args);
    }
}

/// `list-compress-depth 1` on large lists: every command that reaches into
/// compressed nodes answers as Redis (same depth) does, digests stay
/// Redis's, OBJECT ENCODING is quicklist, the list survives SAVE and a
/// restart (and loads in redis-server), a redis-server replica converges,
/// and a compressible list takes less memory than with depth 0.
#[test]
fn compressed_lists_behave_like_redis() {
    let dir = TempDir::new("list-compress");
    let d = dir.path().to_str().unwrap();
    let mut s = cascade(&[
        "--list-compress-depth",
        "1",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let r = redis(&["--list-compress-depth", "1"]);
    let port = s.port.to_string();
    let replica = redis(&["--replicaof", "127.0.0.1", &port]);
    let (mut c, mut rc) = (s.conn(), r.conn());
    for conn in [&mut c, &mut rc] {
        fill_compressible(conn, "big", "e", 30_000);
        fill_compressible(conn, "{t}other", "o", 5_000);
    }
    assert_eq!(digest(&mut c), digest(&mut rc));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "big"]).text(), "quicklist");
    assert_same_replies(
        &mut c,
        &mut rc,
        &[
            "LRANGE big 14990 15010",
            "LRANGE big -20000 -19990",
            "LINDEX big 12345",
            "LINDEX big -23456",
            "LSET big 15000 changed-in-the-middle",
            "LINDEX big 15000",
            "LINSERT big BEFORE e-00020000-padding-padding inserted",
            "LINSERT big AFTER e-00007000-padding-padding after",
            "LPOS big inserted",
            "LREM big 1 e-00017000-padding-padding",
            "LPOP big 500",
            "RPOP big 700",
            "LTRIM big 2000 -3000",
            "LLEN big",
            "LRANGE big 0 5",
            "LRANGE big -5 -1",
            "LINDEX big 10000",
            "LMOVE big {t}other LEFT RIGHT",
            "RPOPLPUSH {t}other big",
            "LRANGE big 10000 10010",
        ],
    );
    assert_eq!(digest(&mut c), digest(&mut rc));
    wait_same_digest(&s, &replica);
    // SAVE, restart: the same lists (and redis-check-rdb likes the file).
    let before = digest(&mut c);
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    assert_rdb_ok(&s.dir.path().join("dump.rdb"));
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        c.cmd(&["LRANGE", "big", "7000", "7003"]),
        rc.cmd(&["LRANGE", "big", "7000", "7003"])
    );
    // redis-server loads our file.
    std::fs::copy(s.dir.path().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let loaded = redis(&["--dir", d]);
    assert_eq!(digest(&mut loaded.conn()), before);
}

#[test]
fn compression_lowers_used_memory() {
    let s = cascade(&[]);
    let mut c = s.conn();
    // Both lists on one shard, built the same way, depth 0 then 1.
    let m0 = used_memory(&mut c);
    fill_compressible(&mut c, "{m}raw", "e", 50_000);
    let m1 = used_memory(&mut c);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "list-compress-depth", "1"]),
        Value::ok()
    );
    fill_compressible(&mut c, "{m}packed", "e", 50_000);
    let m2 = used_memory(&mut c);
    let (raw, packed) = (m1 - m0, m2 - m1);
    assert!(
        packed * 2 < raw,
        "raw list took {raw} bytes, compressed {packed}"
    );
    // Same elements, same digest per value; reading it back works.
    let dv = |c: &mut Conn, k: &str| c.cmd(&["DEBUG", "DIGEST-VALUE", k]).array()[0].clone();
    assert_eq!(dv(&mut c, "{m}raw"), dv(&mut c, "{m}packed"));
    assert_eq!(
        c.cmd(&["LINDEX", "{m}packed", "25000"]),
        Value::bulk("e-00025000-padding-padding")
    );
    // CONFIG SET back to 0: lists written afterwards are raw again.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "list-compress-depth", "0"]),
        Value::ok()
    );
    let m3 = used_memory(&mut c);
    c.cmd(&["RPUSH", "{m}packed", "more"]);
    // (Raw nodes built by pushes keep some spare capacity, decompressed
    // ones do not: the growth is well above the compressed size but below
    // the first list's.)
    wait_until(Duration::from_secs(10), "list laid out raw", || {
        used_memory(&mut c) > m3 + 2 * packed
    });
}
