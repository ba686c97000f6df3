//! Set commands against the real binary (two shards), judged against a real
//! redis-server 7.0 fed the same commands: replies and errors, RESP2 and
//! RESP3 shapes, intset/hashtable encodings, DEBUG DIGEST; multi-key
//! commands whose keys live on different shards; replication of SPOP and
//! the *STORE commands; RDB round trips with Redis in both directions.

mod common;
use common::family::*;
use common::tempdir::TempDir;
use common::{assert_same_replies, info_field, require_tool, Conn, Value};

/// Deterministic commands: intsets reply in ascending order in both
/// servers; `~` marks replies compared sorted (hashtable sets).
const SCRIPT: &[&str] = &[
    "SADD s 3 1 2",
    "SADD s 2 4",
    "SCARD s",
    "SCARD nope",
    "SISMEMBER s 1",
    "SISMEMBER s 9",
    "SISMEMBER s 01",
    "SISMEMBER nope 1",
    "SMISMEMBER s 1 9 2",
    "SMISMEMBER nope 1",
    "SMEMBERS s",
    "SMEMBERS nope",
    "OBJECT ENCODING s",
    "SREM s 9",
    "SREM s 1 9",
    "SREM nope 1",
    "SADD s -5 0 9223372036854775807 -9223372036854775808",
    "SMEMBERS s",
    "SSCAN s 0",
    "SSCAN s 0 MATCH -*",
    "SSCAN s 0 COUNT 0",
    "SSCAN s x",
    "SSCAN nope 0",
    "SSCAN nope 0 COUNT 0",
    "SSCAN nope 0 COUNT x",
    "SSCAN nope 0 BOGUS",
    "SSCAN nope x COUNT 0",
    "SRANDMEMBER s 100",
    "SRANDMEMBER s 0",
    "SRANDMEMBER s x",
    "SRANDMEMBER s 1 2",
    "SRANDMEMBER s -9223372036854775808",
    "SRANDMEMBER nope",
    "SRANDMEMBER nope 3",
    "SRANDMEMBER nope -3",
    "SADD t a b c 2",
    "OBJECT ENCODING t",
    "~SINTER s t",
    "~SUNION s t nope",
    "SDIFF s t",
    "~SDIFF t s nope",
    "SINTER s nope",
    "SINTER nope s",
    "SUNION nope",
    "SDIFF nope s",
    "SINTERSTORE d1 s t",
    "SMEMBERS d1",
    "OBJECT ENCODING d1",
    "SUNIONSTORE d2 s t",
    "~SMEMBERS d2",
    "OBJECT ENCODING d2",
    "SDIFFSTORE d3 s s",
    "EXISTS d3",
    "SINTERSTORE d2 s nope",
    "EXISTS d2",
    "SINTERSTORE d2 s nope",
    "SET d4 string",
    "EXPIRE d4 1000",
    "SUNIONSTORE d4 s",
    "TTL d4",
    "TYPE d4",
    "SINTERCARD 2 s t",
    "SINTERCARD 2 s t LIMIT 0",
    "SINTERCARD 1 s LIMIT 3",
    "SINTERCARD 0 s",
    "SINTERCARD x s",
    "SINTERCARD -1 s",
    "SINTERCARD 3 s t",
    "SINTERCARD 1 s LIMIT -1",
    "SINTERCARD 1 s LIMIT x",
    "SINTERCARD 1 s LIMIT",
    "SINTERCARD 1 s FOO 1",
    "SINTERCARD 1 nope",
    "SINTERCARD 2 nope s",
    "SINTERCARD",
    "SINTERCARD 1",
    "COMMAND GETKEYS SINTERCARD 2 a b LIMIT 1",
    "COMMAND GETKEYS SMOVE a b m",
    "COMMAND GETKEYS SINTERSTORE d a b",
    "SMOVE s t 2",
    "SMOVE s t 3",
    "SMOVE s t nope",
    "SMOVE nope t 1",
    "SMOVE s s 0",
    "SMOVE s s zz",
    "SMOVE s newset 0",
    "SMEMBERS newset",
    "SET str x",
    "SMOVE str t 1",
    "SMOVE t str a",
    "SMOVE nope str a",
    "SINTER s str",
    "SINTER nope str",
    "SUNION s str",
    "SDIFF s str",
    "SUNIONSTORE d s str",
    "SINTERSTORE d nope str",
    "SINTERCARD 2 s str",
    "SADD str 1",
    "SREM str 1",
    "SCARD str",
    "SISMEMBER str 1",
    "SMISMEMBER str 1",
    "SMEMBERS str",
    "SRANDMEMBER str",
    "SPOP str",
    "SSCAN str 0",
    "SSCAN str 0 COUNT x",
    "SSCAN str 0 COUNT 0",
    "SSCAN str x COUNT 0",
    "GET s",
    "SPOP nope",
    "SPOP nope 3",
    "SPOP s -1",
    "SPOP s x",
    "SPOP s 1 2",
    "SPOP s 0",
    "SADD one 7",
    "SPOP one",
    "EXISTS one",
    "SADD many 1 2 3",
    "SPOP many 3",
    "EXISTS many",
    "SADD e \"\"",
    "SISMEMBER e \"\"",
    "SMEMBERS e",
    "OBJECT ENCODING e",
    "SADD z 0 -0 00 +1",
    "~SMEMBERS z",
    "OBJECT ENCODING z",
    "SADD a",
    "SREM a",
    "SMOVE a b",
    "SINTER",
    "SINTERSTORE d",
    "CONFIG SET set-max-intset-entries 3",
    "SADD small 1 2 3",
    "OBJECT ENCODING small",
    "SADD small 4",
    "OBJECT ENCODING small",
    "SUNIONSTORE small2 small",
    "OBJECT ENCODING small2",
    "CONFIG SET set-max-intset-entries 512",
    "TYPE s",
    "DEBUG DIGEST-VALUE s t nope",
    "DEBUG DIGEST",
    "RENAME t t2",
    "~SMEMBERS t2",
    "DEL t2 s",
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
        "sadd",
        "srem",
        "scard",
        "sismember",
        "smismember",
        "smembers",
        "srandmember",
        "spop",
        "sscan",
        "smove",
        "sinter",
        "sunion",
        "sdiff",
        "sinterstore",
        "sunionstore",
        "sdiffstore",
        "sintercard",
    ]);
}

/// `n` key names (with `prefix`) owned by shard `shard` of 2.

#[test]
fn multi_key_commands_across_shards() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let a = keys_on(0, "a", 2);
    let b = keys_on(1, "b", 2);
    let (a0, a1, b0, b1) = (&a[0], &a[1], &b[0], &b[1]);
    let lines: Vec<String> = vec![
        format!("SADD {a0} 1 2 3 x"),
        format!("SADD {b0} 2 3 4 x y"),
        format!("SADD {a1} 3 x"),
        format!("~SINTER {a0} {b0}"),
        format!("~SINTER {a0} {b0} {a1}"),
        format!("~SUNION {a0} {b0} {a1}"),
        format!("~SDIFF {a0} {b0}"),
        format!("~SDIFF {b0} {a0} nope"),
        format!("SINTERSTORE {b1} {a0} {b0}"),
        format!("~SMEMBERS {b1}"),
        format!("SUNIONSTORE {a1} {a0} {b0}"),
        format!("~SMEMBERS {a1}"),
        format!("SDIFFSTORE {b1} {a0} {b0}"),
        format!("SMEMBERS {b1}"),
        format!("OBJECT ENCODING {b1}"),
        format!("SINTERSTORE {b1} {a0} nope"),
        format!("EXISTS {b1}"),
        format!("SINTERCARD 2 {a0} {b0}"),
        format!("SINTERCARD 3 {a0} {b0} {a1} LIMIT 1"),
        format!("SMOVE {a0} {b1} x"),
        format!("SMOVE {a0} {b1} x"),
        format!("~SMEMBERS {b1}"),
        format!("SMOVE {a0} {b0} 1"),
        format!("~SMEMBERS {b0}"),
        format!("SET {b1} str"),
        format!("SMOVE {a0} {b1} 2"),
        format!("SINTER {a0} {b1}"),
        format!("SUNIONSTORE {a1} {a0} {b1}"),
        format!("SISMEMBER {a0} 2"),
        "DEBUG DIGEST".to_string(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_same_replies(&mut s.conn(), &mut r.conn(), &refs);
}

#[test]
fn cross_shard_stores_are_atomic_under_concurrent_writers() {
    let s = cascade(&[]);
    let a = keys_on(0, "src", 1).remove(0);
    let b = keys_on(1, "dst", 1).remove(0);
    let port = s.port;
    let (a2, b2) = (a.clone(), b.clone());
    // One writer moves members back and forth between the two shards; the
    // union of both sets is always 1..=100, never a half-moved state.
    let mut c = s.conn();
    for i in 1..=100 {
        c.cmd(&["SADD", &a, &i.to_string()]);
    }
    let writer = std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        for round in 0..300 {
            let m = (round % 100 + 1).to_string();
            let (from, to) = if round % 2 == 0 {
                (&a2, &b2)
            } else {
                (&b2, &a2)
            };
            c.cmd(&["SMOVE", from, to, &m]);
        }
    });
    for _ in 0..200 {
        let n = c.cmd(&["SUNIONSTORE", "{x}all", &a, &b]).int();
        assert_eq!(n, 100);
        // A member is never seen in both sets (nor in neither, above).
        assert_eq!(c.cmd(&["SINTERCARD", "2", &a, &b]).int(), 0);
    }
    writer.join().unwrap();
}

/// Set writes of every kind, for the replication and RDB tests.
fn write_sets(c: &mut Conn) {
    for i in 0..700 {
        c.cmd(&["SADD", "repl:ints", &i.to_string()]);
    }
    c.cmd(&["SADD", "repl:small", "1", "2", "3", "-4"]);
    c.cmd(&["SADD", "repl:words", "alpha", "beta", "gamma", "delta", ""]);
    for i in 0..300 {
        c.cmd(&["SADD", "repl:many", &format!("member:{i}")]);
    }
    c.cmd(&["SPOP", "repl:many"]);
    c.cmd(&["SPOP", "repl:many", "10"]);
    c.cmd(&["SPOP", "repl:ints", "650"]);
    c.cmd(&["SREM", "repl:words", "nope"]);
    c.cmd(&["SMOVE", "repl:words", "repl:moved", "alpha"]);
    c.cmd(&["SINTERSTORE", "repl:inter", "repl:small", "repl:ints"]);
    c.cmd(&["SUNIONSTORE", "repl:union", "repl:small", "repl:words"]);
    c.cmd(&["SDIFFSTORE", "repl:diff", "repl:many", "repl:words"]);
    c.cmd(&["SADD", "repl:ttl", "1"]);
    c.cmd(&["PEXPIRE", "repl:ttl", "5000000"]);
}

#[test]
fn replicas_of_a_cascade_master_converge() {
    require_tool("redis-server");
    let master = cascade(&["--repl-diskless-sync-delay", "0"]);
    let mut c = master.conn();
    c.cmd(&["SADD", "before", "1", "x"]);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    let theirs = redis(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    // Random pops and stores after the sync must replay identically.
    write_sets(&mut c);
    c.cmd(&["SPOP", "repl:many", "2000"]);
    c.cmd(&["SPOP", "before"]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    assert_eq!(theirs.conn().cmd(&["EXISTS", "repl:many"]).int(), 0);
    // And a full sync of the result.
    let late = cascade(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &late);
}

#[test]
fn save_and_restart_keeps_sets_and_encodings() {
    let mut s = cascade(&[]);
    let mut c = s.conn();
    write_sets(&mut c);
    let before = digest(&mut c);
    let enc = |c: &mut Conn, k: &str| c.cmd(&["OBJECT", "ENCODING", k]).text();
    assert_eq!(enc(&mut c, "repl:small"), "intset");
    assert_eq!(enc(&mut c, "repl:words"), "hashtable");
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(enc(&mut c, "repl:small"), "intset");
    assert_eq!(enc(&mut c, "repl:words"), "hashtable");
    assert_rdb_ok(&s.dir.path().join("dump.rdb"));
}

#[test]
fn dumps_travel_between_redis_and_cascade() {
    let dir = TempDir::new("set-interop");
    let d = dir.path().to_str().unwrap();
    let redis_digest = {
        let r = redis(&["--dir", d]);
        let mut c = r.conn();
        write_sets(&mut c);
        c.cmd(&["SADD", "wide", "1", "70000", "5000000000"]);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let ours_digest = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        assert_eq!(digest(&mut c), redis_digest);
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", "wide"]).text(), "intset");
        assert_eq!(c.cmd(&["SISMEMBER", "wide", "5000000000"]), Value::Int(1));
        c.cmd(&["SADD", "ours:ints", "-32769", "1", "40000"]);
        c.cmd(&["SADD", "ours:words", "a", "b"]);
        std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let r = redis(&["--dir", d]);
    let mut c = r.conn();
    assert_eq!(digest(&mut c), ours_digest);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "ours:ints"]).text(), "intset");
    assert_eq!(
        c.cmd(&["SMEMBERS", "ours:ints"]),
        Value::Array(vec![
            Value::bulk("-32769"),
            Value::bulk("1"),
            Value::bulk("40000")
        ])
    );
}

/// Runs `lines` on `server` after FLUSHALL: the replies, where a line
/// starting with `#` (a random pick) keeps only its reply's length.
fn replies_of(server: &common::Server, lines: &[String]) -> Vec<Value> {
    let mut c = server.conn();
    c.cmd(&["FLUSHALL"]);
    lines
        .iter()
        .map(|line| {
            let (random, line) = match line.strip_prefix('#') {
                Some(rest) => (true, rest),
                None => (false, &line[..]),
            };
            let args = common::args_of(line);
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let v = c.cmdb(&refs);
            if random {
                Value::Int(v.array().len() as i64)
            } else {
                v
            }
        })
        .collect()
}

/// SPOP with a count that leaves at most a fifth of what it takes builds
/// the set anew from the members that stay, as Redis does: a hashtable
/// of integers comes back as an intset when it fits one, the TTL stays.
#[test]
fn spop_of_most_members_re_encodes_like_redis() {
    let numbers = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
    let words = (0..200)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut lines = Vec::new();
    for (size, count) in [
        (513, 427),
        (513, 428),
        (513, 510),
        (513, 512),
        (4000, 3400),
        (3000, 2500),
    ] {
        lines.push(format!("SADD big {}", numbers(size)));
        lines.push("EXPIRE big 1000".to_string());
        lines.push("OBJECT ENCODING big".to_string());
        lines.push(format!("#SPOP big {count}"));
        lines.push("OBJECT ENCODING big".to_string());
        lines.push("SCARD big".to_string());
        lines.push("TTL big".to_string());
        lines.push("DEL big".to_string());
    }
    lines.push(format!("SADD w {words}"));
    lines.push("#SPOP w 199".to_string());
    lines.push("OBJECT ENCODING w".to_string());
    lines.push("SCARD w".to_string());
    lines.push("SADD i 1 2 3 4 5 6".to_string());
    lines.push("#SPOP i 5".to_string());
    lines.push("OBJECT ENCODING i".to_string());
    let (s, r) = (cascade(&[]), redis(&[]));
    assert_eq!(replies_of(&s, &lines), replies_of(&r, &lines));
}

/// keyspace_hits and keyspace_misses after each case, as Redis counts
/// them: SPOP taking the whole set answers through a read lookup (a hit),
/// SMOVE within one set answers from its write lookups (nothing).
#[test]
fn set_writes_count_keyspace_hits_like_redis() {
    let cases: &[(&str, &str)] = &[
        ("SADD s 1 2 3", "SPOP s 5"),
        ("SADD s 1 2 3", "SPOP s 3"),
        ("SADD s 1 2 3", "SPOP s 2"),
        ("SADD s 1 2 3", "SPOP s"),
        ("SADD s 1 2 3", "SPOP nokey 5"),
        ("SADD s 1 2 3", "SMOVE s s 1"),
        ("SADD s 1 2 3", "SMOVE s s 9"),
        ("SADD s 1 2 3", "SMOVE s t 1"),
        ("SADD s 1 2 3", "SRANDMEMBER s 2"),
    ];
    let (s, r) = (cascade(&[]), redis(&[]));
    for (setup, cmd) in cases {
        let counts = |srv: &common::Server| {
            let mut c = srv.conn();
            c.cmd(&["FLUSHALL"]);
            c.cmd(&setup.split(' ').collect::<Vec<_>>());
            c.cmd(&["CONFIG", "RESETSTAT"]);
            c.cmd(&cmd.split(' ').collect::<Vec<_>>());
            (
                info_field(&mut c, "stats", "keyspace_hits"),
                info_field(&mut c, "stats", "keyspace_misses"),
            )
        };
        assert_eq!(counts(&s), counts(&r), "{cmd} (Cascade left, Redis right)");
    }
}
