//! Hash commands against the real binary (two shards), judged against a
//! real redis-server 7.0 fed the same commands: replies and errors, RESP2
//! and RESP3 shapes, encodings and their conversions, DEBUG DIGEST; then
//! replication (Cascade and Redis replicas of a Cascade master) and RDB
//! round trips (our SAVE and restart; Redis's dump loaded by us and ours
//! by Redis).

mod common;
use common::family::*;
use common::tempdir::TempDir;
use common::{require_tool, Conn, Value};

/// Deterministic commands (small hashes keep insertion order in both
/// servers; `~` marks replies compared sorted).
const SCRIPT: &[&str] = &[
    "HSET h a 1 b 2 c 3",
    "HGET h a",
    "HGET h nope",
    "HGET nope a",
    "HMGET h a nope c",
    "HMGET nope a b",
    "HSET h a 10",
    "HSETNX h a 5",
    "HSETNX h d 4",
    "HSETNX fresh f v",
    "HLEN h",
    "HLEN nope",
    "HSTRLEN h a",
    "HSTRLEN h nope",
    "HEXISTS h a",
    "HEXISTS h nope",
    "HKEYS h",
    "HVALS h",
    "HGETALL h",
    "HGETALL nope",
    "HKEYS nope",
    "HVALS nope",
    "HDEL h a nope",
    "HDEL h nope",
    "HDEL nope a",
    "HINCRBY h b 5",
    "HINCRBY h b -7",
    "HINCRBY h newint 9223372036854775807",
    "HINCRBY h newint 1",
    "HINCRBY h neg -9223372036854775808",
    "HINCRBY h neg -1",
    "HINCRBY h b x",
    "HINCRBY h b 1.5",
    "HSET h s hello",
    "HINCRBY h s 1",
    "HINCRBY h e \"\"",
    "HSET h z 007",
    "HINCRBY h z 1",
    "HINCRBYFLOAT h f 1.5",
    "HINCRBYFLOAT h f 0.1",
    "HINCRBYFLOAT h f -1.6",
    "HINCRBYFLOAT h f abc",
    "HINCRBYFLOAT h f inf",
    "HINCRBYFLOAT h f \"\"",
    "HINCRBYFLOAT h s 1",
    "HINCRBYFLOAT h b 1e3",
    "HINCRBYFLOAT h big 1.7976931348623157e308",
    "HINCRBYFLOAT h big 1.7976931348623157e308",
    "HINCRBYFLOAT h small 5.0e-300",
    "OBJECT ENCODING h",
    "~HGETALL h",
    "HSET h",
    "HSET h a",
    "HSET h a 1 b",
    "HMSET h a 1 b",
    "HMSET h x 1 y 2",
    "HGET h",
    "HGET h a b",
    "HDEL h",
    "HINCRBY h a",
    "HRANDFIELD nope",
    "HRANDFIELD nope 5",
    "HRANDFIELD nope 5 WITHVALUES",
    "HRANDFIELD h 0",
    "HRANDFIELD h 0 WITHVALUES",
    "HRANDFIELD h 1 WITHVALUE",
    "HRANDFIELD h 1 WITHVALUES x",
    "HRANDFIELD h x",
    "HRANDFIELD h -9223372036854775808",
    "HRANDFIELD h -5000000000000000000 WITHVALUES",
    "~HRANDFIELD h 100",
    "~HRANDFIELD h 100 WITHVALUES",
    "HSET sc a 1 b 2 xa 3",
    "HSCAN sc 0",
    "HSCAN sc 0 MATCH [bx]*",
    "HSCAN sc 0 COUNT 1",
    "HSCAN sc 0 COUNT 0",
    "HSCAN sc 0 COUNT x",
    "HSCAN nope 0 COUNT 0",
    "HSCAN nope 0 MATCH",
    "HSCAN nope x COUNT x",
    "HSCAN sc x",
    "HSCAN sc -1",
    "HSCAN sc \"\"",
    "HSCAN sc +",
    "HSCAN sc 99999999999999999999",
    "HSCAN sc 0 TYPE string",
    "HSCAN sc 0 MATCH",
    "HSCAN nope 0",
    "OBJECT ENCODING h",
    "TYPE h",
    "DEBUG DIGEST-VALUE h fresh nope",
    "SET str v",
    "HGET str a",
    "HSET str a 1",
    "HSETNX str a 1",
    "HMGET str a",
    "HDEL str a",
    "HLEN str",
    "HKEYS str",
    "HGETALL str",
    "HRANDFIELD str",
    "HRANDFIELD str 0",
    "HSCAN str 0",
    "HSCAN str 0 COUNT x",
    "HSCAN str 0 COUNT 0",
    "HSCAN str x COUNT x",
    "HINCRBYFLOAT str a x",
    "HINCRBYFLOAT str a inf",
    "HINCRBYFLOAT str a 1",
    "HINCRBY str a x",
    "HINCRBY str a 1",
    "GET h",
    "INCR h",
    "APPEND h x",
    "HSET empty \"\" \"\"",
    "HGET empty \"\"",
    "HSTRLEN empty \"\"",
    "HDEL empty \"\"",
    "EXISTS empty",
    "HSET long f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "OBJECT ENCODING long",
    "HSET edge f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "OBJECT ENCODING edge",
    "HINCRBY counted ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff 1",
    "OBJECT ENCODING counted",
    "HSETNX nx ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff 1",
    "OBJECT ENCODING nx",
    "CONFIG SET hash-max-listpack-entries 3",
    "HSET four a 1 b 2 c 3",
    "OBJECT ENCODING four",
    "HSET four d 4",
    "OBJECT ENCODING four",
    "~HGETALL four",
    "HDEL four a b c",
    "OBJECT ENCODING four",
    "HGETALL four",
    "CONFIG SET hash-max-listpack-entries 128",
    "CONFIG SET hash-max-listpack-value 2",
    "HSET v ab cd",
    "OBJECT ENCODING v",
    "HSET v2 abc d",
    "OBJECT ENCODING v2",
    "CONFIG SET hash-max-listpack-value 64",
    "DEBUG DIGEST",
    "RENAME h h2",
    "~HGETALL h2",
    "COPY h2 h3",
    "~HGETALL h3",
    "RENAME sc sc2",
    "HGETALL sc2",
    "DEL h2 h3 four",
    "EXISTS h2 h3 four",
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
        "hset",
        "hsetnx",
        "hget",
        "hmget",
        "hmset",
        "hdel",
        "hlen",
        "hstrlen",
        "hexists",
        "hkeys",
        "hvals",
        "hgetall",
        "hincrby",
        "hincrbyfloat",
        "hrandfield",
        "hscan",
    ]);
}

#[test]
fn large_hashes_and_binary_fields_digest_like_redis() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let field: Vec<u8> = (0..=255u8).chain(*b"\r\n\0").collect();
    for srv in [&s, &r] {
        let mut c = srv.conn();
        for i in 0..600 {
            let f = format!("field:{i}");
            let v = format!("{}", i * 7);
            assert_eq!(c.cmd(&["HSET", "big", &f, &v]), Value::Int(1));
        }
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", "big"]).text(), "hashtable");
        assert_eq!(
            c.cmdb(&[b"HSET", b"bin\0key", &field, &field]),
            Value::Int(1)
        );
        assert_eq!(
            c.cmdb(&[b"HGET", b"bin\0key", &field]),
            Value::Bulk(field.clone())
        );
        assert_eq!(
            c.cmd(&["HINCRBYFLOAT", "big", "field:1", "0.25"]).text(),
            "7.25"
        );
        assert_eq!(c.cmd(&["HDEL", "big", "field:2", "field:3"]), Value::Int(2));
        assert_eq!(c.cmd(&["HLEN", "big"]), Value::Int(598));
        assert_eq!(c.cmd(&["EXPIRE", "big", "1000"]), Value::Int(1));
    }
    let (mut c, mut rc) = (s.conn(), r.conn());
    assert_eq!(digest(&mut c), digest(&mut rc));
    let dv = |c: &mut Conn| c.cmdb(&[b"DEBUG", b"DIGEST-VALUE", b"big", b"bin\0key"]);
    assert_eq!(dv(&mut c), dv(&mut rc));
    // HSCAN over a table: every field exactly as many times as Redis
    // promises (at least once), cursor ends at 0.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = c.cmd(&["HSCAN", "big", &cursor, "COUNT", "50"]);
        let parts = reply.array();
        cursor = parts[0].text();
        for pair in parts[1].array().chunks(2) {
            seen.insert(pair[0].text());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 598);
    // Random fields of a table: distinct, members of the hash.
    let picks = c.cmd(&["HRANDFIELD", "big", "300"]);
    let uniq: std::collections::HashSet<String> = picks.array().iter().map(Value::text).collect();
    assert_eq!(uniq.len(), 300);
    let picks = c.cmd(&["HRANDFIELD", "big", "-1000", "WITHVALUES"]);
    assert_eq!(picks.array().len(), 2000);
    for pair in picks.array().chunks(2) {
        assert_eq!(c.cmd(&["HGET", "big", &pair[0].text()]), pair[1]);
    }
}

/// Hash writes of every kind, for the replication and RDB tests.
fn write_hashes(c: &mut Conn) {
    for i in 0..200 {
        c.cmd(&["HSET", "repl:big", &format!("f{i}"), &format!("{i}")]);
    }
    c.cmd(&["HSET", "repl:small", "a", "1", "b", "2"]);
    c.cmd(&["HINCRBYFLOAT", "repl:small", "a", "0.1"]);
    c.cmd(&["HINCRBYFLOAT", "repl:small", "pi", "3.14159265358979323846"]);
    c.cmd(&["HINCRBY", "repl:small", "n", "-42"]);
    c.cmd(&["HSETNX", "repl:small", "b", "ignored"]);
    c.cmd(&["HDEL", "repl:small", "nope"]);
    c.cmd(&["HDEL", "repl:big", "f0", "f1"]);
    c.cmd(&["HMSET", "repl:gone", "x", "1"]);
    c.cmd(&["HDEL", "repl:gone", "x"]);
    c.cmd(&["HSET", "repl:ttl", "k", "v"]);
    c.cmd(&["EXPIRE", "repl:ttl", "5000"]);
    c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "512"]);
}

#[test]
fn replicas_of_a_cascade_master_converge() {
    require_tool("redis-server");
    let master = cascade(&["--repl-diskless-sync-delay", "0"]);
    let mut c = master.conn();
    write_hashes(&mut c);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    let theirs = redis(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    // Writes after the full sync travel through the stream.
    c.cmd(&["HINCRBYFLOAT", "repl:small", "a", "1e-3"]);
    c.cmd(&["HINCRBYFLOAT", "repl:new", "x", "2.5"]);
    c.cmd(&["HINCRBY", "repl:new", "y", "7"]);
    c.cmd(&["HDEL", "repl:big", "f2"]);
    c.cmd(&["HSET", "repl:small", "c", "3"]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    assert_eq!(
        theirs.conn().cmd(&["HGET", "repl:small", "a"]).text(),
        c.cmd(&["HGET", "repl:small", "a"]).text()
    );
    assert_eq!(ours.conn().cmd(&["HGET", "repl:new", "x"]).text(), "2.5");
}

#[test]
fn save_and_restart_keeps_hashes_and_encodings() {
    let mut s = cascade(&[]);
    let mut c = s.conn();
    write_hashes(&mut c);
    let before = digest(&mut c);
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "repl:big"]).text(),
        "listpack"
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "repl:small"]).text(),
        "listpack"
    );
    assert!(c.cmd(&["TTL", "repl:ttl"]).int() > 4000);
    assert_rdb_ok(&s.dir.path().join("dump.rdb"));
}

#[test]
fn lower_limits_at_load_convert_as_redis_does() {
    let dir = TempDir::new("hash-limits");
    let d = dir.path().to_str().unwrap();
    let before = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        write_hashes(&mut c);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let s = cascade(&["--dir", d, "--hash-max-listpack-entries", "100"]);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "repl:big"]).text(),
        "hashtable"
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "repl:small"]).text(),
        "listpack"
    );
}

#[test]
fn dumps_travel_between_redis_and_cascade() {
    let dir = TempDir::new("hash-interop");
    let d = dir.path().to_str().unwrap();
    let redis_digest = {
        let r = redis(&["--dir", d]);
        let mut c = r.conn();
        write_hashes(&mut c);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let ours_digest = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        assert_eq!(digest(&mut c), redis_digest);
        assert_eq!(c.cmd(&["HGET", "repl:small", "n"]).text(), "-42");
        assert_eq!(
            c.cmd(&["OBJECT", "ENCODING", "repl:big"]).text(),
            "listpack"
        );
        c.cmd(&["HSET", "ours", "k", "v"]);
        for i in 0..600 {
            c.cmd(&["HSET", "ours:big", &format!("f{i}"), "v"]);
        }
        std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let r = redis(&["--dir", d]);
    let mut c = r.conn();
    assert_eq!(digest(&mut c), ours_digest);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ours:big"]).text(),
        "hashtable"
    );
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "ours"]).text(), "listpack");
}
