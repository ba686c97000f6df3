//! String commands against the real binary, with Redis's replies and
//! errors. Run with two shards so cross-shard paths are exercised.

mod common;
use common::{Server, Value};
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
fn get_set_and_options() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "nope"]), Value::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    assert_eq!(c.cmd(&["SET", "k", "v2", "NX"]), Value::Nil);
    assert_eq!(c.cmd(&["SET", "k2", "v", "XX"]), Value::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v3", "XX", "GET"]), b("v"));
    assert_eq!(c.cmd(&["SET", "new", "x", "GET"]), Value::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v4", "EX", "100"]), Value::ok());
    let ttl = c.cmd(&["TTL", "k"]).int();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(c.cmd(&["SET", "k", "v5", "KEEPTTL"]), Value::ok());
    assert!(c.cmd(&["TTL", "k"]).int() > 0);
    assert_eq!(c.cmd(&["SET", "k", "v6"]), Value::ok());
    assert_eq!(c.cmd(&["TTL", "k"]).int(), -1);
    assert_eq!(c.cmd(&["SET", "k", "v", "PX", "50000"]), Value::ok());
    assert!(c.cmd(&["PTTL", "k"]).int() > 49000);
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1000)
        .to_string();
    assert_eq!(c.cmd(&["SET", "k", "v", "EXAT", &at]), Value::ok());
    assert_eq!(c.cmd(&["EXPIRETIME", "k"]).int().to_string(), at);
    // Errors, exactly as Redis words them.
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "NX", "XX"])),
        "ERR syntax error"
    );
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "EX", "10", "PX", "10"])),
        "ERR syntax error"
    );
    assert_eq!(err(&c.cmd(&["SET", "k", "v", "EX"])), "ERR syntax error");
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "EX", "0"])),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "EX", "-5"])),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "EX", "abc"])),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&c.cmd(&["SET", "k", "v", "EX", "9223372036854775807"])),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&c.cmd(&["GET"])),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&c.cmd(&["GET", "a", "b"])),
        "ERR wrong number of arguments for 'get' command"
    );
}

#[test]
fn binary_safe_and_empty_values() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let value: Vec<u8> = (0..=255u8).chain(b"\r\n\0\r\n".iter().copied()).collect();
    assert_eq!(c.cmdb(&[b"SET", b"bin\0key", &value]), Value::ok());
    assert_eq!(c.cmdb(&[b"GET", b"bin\0key"]), Value::Bulk(value.clone()));
    assert_eq!(c.cmdb(&[b"SET", b"", b""]), Value::ok());
    assert_eq!(c.cmdb(&[b"GET", b""]), Value::Bulk(vec![]));
    assert_eq!(c.cmdb(&[b"STRLEN", b""]), Value::Int(0));
    assert_eq!(c.cmdb(&[b"EXISTS", b""]), Value::Int(1));
}

#[test]
fn setnx_setex_getset_getdel_getex() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SETNX", "a", "1"]), Value::Int(1));
    assert_eq!(c.cmd(&["SETNX", "a", "2"]), Value::Int(0));
    assert_eq!(c.cmd(&["SETEX", "b", "100", "x"]), Value::ok());
    assert!(c.cmd(&["TTL", "b"]).int() > 90);
    assert_eq!(
        err(&c.cmd(&["SETEX", "b", "0", "x"])),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(c.cmd(&["PSETEX", "p", "100000", "x"]), Value::ok());
    assert!(c.cmd(&["PTTL", "p"]).int() > 90000);
    assert_eq!(
        err(&c.cmd(&["PSETEX", "p", "-1", "x"])),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(c.cmd(&["GETSET", "a", "3"]), b("1"));
    assert_eq!(c.cmd(&["GETSET", "zz", "3"]), Value::Nil);
    assert_eq!(c.cmd(&["GETDEL", "a"]), b("3"));
    assert_eq!(c.cmd(&["GETDEL", "a"]), Value::Nil);
    assert_eq!(c.cmd(&["EXISTS", "a"]), Value::Int(0));
    assert_eq!(c.cmd(&["GETEX", "zz", "EX", "100"]), b("3"));
    assert!(c.cmd(&["TTL", "zz"]).int() > 90);
    assert_eq!(c.cmd(&["GETEX", "zz", "PERSIST"]), b("3"));
    assert_eq!(c.cmd(&["TTL", "zz"]), Value::Int(-1));
    assert_eq!(c.cmd(&["GETEX", "missing", "EX", "10"]), Value::Nil);
    assert_eq!(
        err(&c.cmd(&["GETEX", "zz", "EX", "10", "PERSIST"])),
        "ERR syntax error"
    );
    assert_eq!(
        err(&c.cmd(&["GETEX", "zz", "PX", "0"])),
        "ERR invalid expire time in 'getex' command"
    );
}

#[test]
fn counters() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "10"]), Value::Int(11));
    assert_eq!(c.cmd(&["DECR", "n"]), Value::Int(10));
    assert_eq!(c.cmd(&["DECRBY", "n", "-5"]), Value::Int(15));
    assert_eq!(c.cmd(&["GET", "n"]), b("15"));
    c.cmd(&["SET", "n", "9223372036854775806"]);
    assert_eq!(c.cmd(&["INCR", "n"]), Value::Int(i64::MAX));
    assert_eq!(
        err(&c.cmd(&["INCR", "n"])),
        "ERR increment or decrement would overflow"
    );
    c.cmd(&["SET", "m", "-9223372036854775808"]);
    assert_eq!(
        err(&c.cmd(&["DECR", "m"])),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err(&c.cmd(&["DECRBY", "x", "-9223372036854775808"])),
        "ERR decrement would overflow"
    );
    c.cmd(&["SET", "s", "abc"]);
    assert_eq!(
        err(&c.cmd(&["INCR", "s"])),
        "ERR value is not an integer or out of range"
    );
    c.cmd(&["SET", "s", " 1"]);
    assert_eq!(
        err(&c.cmd(&["INCR", "s"])),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&c.cmd(&["INCRBY", "n", "1.5"])),
        "ERR value is not an integer or out of range"
    );
    // INCR keeps the TTL.
    c.cmd(&["SET", "t", "1", "EX", "100"]);
    c.cmd(&["INCR", "t"]);
    assert!(c.cmd(&["TTL", "t"]).int() > 0);
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "10.5"]), b("10.5"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]), b("10.6"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "-5"]), b("5.6"));
    c.cmd(&["SET", "f", "5.0e3"]);
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "2.0e2"]), b("5200"));
    // Long double arithmetic, as Redis: no f64 artefacts.
    assert_eq!(c.cmd(&["INCRBYFLOAT", "g", "0.1"]), b("0.1"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "g", "0.2"]), b("0.3"));
    for _ in 0..7 {
        c.cmd(&["INCRBYFLOAT", "g", "0.1"]);
    }
    assert_eq!(c.cmd(&["GET", "g"]), b("1"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "g", "-1e-30"]), b("1"));
    assert_eq!(
        err(&c.cmd(&["INCRBYFLOAT", "f", "abc"])),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&c.cmd(&["INCRBYFLOAT", "f", "inf"])),
        "ERR increment would produce NaN or Infinity"
    );
    assert_eq!(
        err(&c.cmd(&["INCRBYFLOAT", "s", "1"])),
        "ERR value is not a valid float"
    );
}

#[test]
fn append_strlen_ranges() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["APPEND", "a", "Hello"]), Value::Int(5));
    assert_eq!(c.cmd(&["APPEND", "a", " World"]), Value::Int(11));
    assert_eq!(c.cmd(&["STRLEN", "a"]), Value::Int(11));
    assert_eq!(c.cmd(&["STRLEN", "none"]), Value::Int(0));
    assert_eq!(c.cmd(&["GETRANGE", "a", "0", "4"]), b("Hello"));
    assert_eq!(c.cmd(&["GETRANGE", "a", "-5", "-1"]), b("World"));
    assert_eq!(c.cmd(&["GETRANGE", "a", "5", "1"]), b(""));
    assert_eq!(c.cmd(&["SUBSTR", "a", "0", "-1"]), b("Hello World"));
    assert_eq!(c.cmd(&["GETRANGE", "none", "0", "-1"]), b(""));
    assert_eq!(c.cmd(&["SETRANGE", "a", "6", "Redis"]), Value::Int(11));
    assert_eq!(c.cmd(&["GET", "a"]), b("Hello Redis"));
    assert_eq!(c.cmd(&["SETRANGE", "pad", "3", "x"]), Value::Int(4));
    assert_eq!(c.cmd(&["GET", "pad"]), Value::Bulk(b"\0\0\0x".to_vec()));
    assert_eq!(c.cmd(&["SETRANGE", "empty", "5", ""]), Value::Int(0));
    assert_eq!(c.cmd(&["EXISTS", "empty"]), Value::Int(0));
    assert_eq!(
        err(&c.cmd(&["SETRANGE", "a", "-1", "x"])),
        "ERR offset is out of range"
    );
    assert_eq!(
        err(&c.cmd(&["SETRANGE", "a", "536870912", "x"])),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(
        err(&c.cmd(&["GETRANGE", "a", "x", "1"])),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn a_string_built_by_many_appends_and_setranges_keeps_every_byte() {
    // The string grows in place; replies and a running snapshot that hold
    // earlier versions must keep seeing those versions.
    let s = Server::start(&[
        "--shards",
        "2",
        "--rdb-key-save-delay",
        "100",
        "--enable-debug-command",
        "yes",
    ]);
    let mut c = s.conn();
    // A snapshot of about half a second, so appends continue under it.
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "5000"]), Value::ok());
    let mut expected = Vec::new();
    let mut at_cut = 0;
    let mut pipe = Vec::new();
    for i in 0..3000u32 {
        let piece = format!("<{i}>").repeat(1 + (i % 7) as usize);
        pipe.extend(common::encode(&[b"APPEND", b"log", piece.as_bytes()]));
        expected.extend_from_slice(piece.as_bytes());
        if i % 500 == 0 {
            pipe.extend(common::encode(&[b"GET", b"log"]));
        }
        if i == 1500 {
            pipe.extend(common::encode(&[b"BGSAVE"]));
            at_cut = expected.len();
        }
    }
    c.send_raw(&pipe);
    let mut seen = 0;
    for i in 0..3000u32 {
        let len = match c.read() {
            Value::Int(n) => n as usize,
            other => panic!("append {i}: {other:?}"),
        };
        seen += format!("<{i}>").len() * (1 + (i % 7) as usize);
        assert_eq!(len, seen);
        if i % 500 == 0 {
            assert_eq!(
                c.read(),
                Value::Bulk(expected[..seen].to_vec()),
                "after {i}"
            );
        }
        if i == 1500 {
            assert!(c.read().text().starts_with("Background saving started"));
        }
    }
    assert_eq!(c.cmd(&["GET", "log"]), Value::Bulk(expected.clone()));
    // SETRANGE in place, inside and past the end.
    let at = expected.len() + 10;
    assert_eq!(
        c.cmd(&["SETRANGE", "log", "0", "HEAD"]),
        Value::Int(expected.len() as i64)
    );
    expected[..4].copy_from_slice(b"HEAD");
    assert_eq!(
        c.cmd(&["SETRANGE", "log", &at.to_string(), "TAIL"]),
        Value::Int(at as i64 + 4)
    );
    expected.resize(at, 0);
    expected.extend_from_slice(b"TAIL");
    assert_eq!(c.cmd(&["GET", "log"]), Value::Bulk(expected.clone()));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "log"]), b("raw"));
    // The snapshot holds the string as it was at its cut, after append
    // 1500, however the string changed in place while it was written.
    common::wait_until(Duration::from_secs(30), "BGSAVE to finish", || {
        s.info_field("persistence", "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(s.info_field("persistence", "rdb_last_bgsave_status"), "ok");
    assert_eq!(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"]), Value::ok());
    let got = c.cmd(&["GET", "log"]);
    assert_eq!(got.text().len(), at_cut);
    assert_eq!(got, Value::Bulk(expected_at_cut(&expected, at_cut)));
}

/// What the key held right after the append that preceded BGSAVE.
fn expected_at_cut(final_bytes: &[u8], at_cut: usize) -> Vec<u8> {
    let mut v = final_bytes[..at_cut].to_vec();
    // The final text starts with "HEAD" (a SETRANGE after the cut); the
    // string at the cut started with the first appended piece.
    v[..4].copy_from_slice(b"<0><");
    v
}

#[test]
fn mset_mget_msetnx_across_shards() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let mut args = vec!["MSET"];
    let keys: Vec<String> = (0..50).map(|i| format!("key{i}")).collect();
    let vals: Vec<String> = (0..50).map(|i| format!("val{i}")).collect();
    for (k, v) in keys.iter().zip(&vals) {
        args.push(k);
        args.push(v);
    }
    assert_eq!(c.cmd(&args), Value::ok());
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(|k| k.as_str()));
    mget.push("missing");
    let got = c.cmd(&mget);
    let arr = got.array();
    assert_eq!(arr.len(), 51);
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(arr[i], b(v));
    }
    assert_eq!(arr[50], Value::Nil);
    assert_eq!(
        err(&c.cmd(&["MSET", "a", "1", "b"])),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        c.cmd(&["MSETNX", "n1", "1", "n2", "2", "n3", "3"]),
        Value::Int(1)
    );
    assert_eq!(c.cmd(&["MSETNX", "n4", "1", "n2", "x"]), Value::Int(0));
    assert_eq!(c.cmd(&["EXISTS", "n4"]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "n2"]), b("2"));
    assert_eq!(
        err(&c.cmd(&["MSETNX", "a", "1", "b"])),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn object_encoding_follows_redis() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.cmd(&["SET", "i", "12345"]);
    c.cmd(&["SET", "e", "hello"]);
    c.cmd(&["SET", "r", &"x".repeat(45)]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "i"]), b("int"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "e"]), b("embstr"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "r"]), b("raw"));
    c.cmd(&["APPEND", "e", "!"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "e"]), b("raw"));
    c.cmd(&["INCR", "i"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "i"]), b("int"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "nope"]), Value::Nil);
}

#[test]
fn an_incomplete_mset_writes_nothing_on_any_shard() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let mut args = vec!["MSET"];
    let keys: Vec<String> = (0..20).map(|i| format!("odd{i}")).collect();
    for k in &keys {
        args.push(k);
        args.push("v");
    }
    args.push("dangling");
    assert_eq!(
        err(&c.cmd(&args)),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(0));
}

/// Option parsing and the order of checks, reply for reply with a real
/// redis-server (found by differential fuzzing): an expiry option may
/// repeat (the last value wins) and its value is checked after every
/// option was read; GETEX looks the key up first; INCRBYFLOAT stores text.
#[test]
fn string_options_and_error_order_match_redis() {
    common::family::run_script(
        "2",
        &[
            "SET k v KEEPTTL KEEPTTL",
            "SET k v EX 10 EX 20",
            "TTL k",
            "SET k v EX -1 EX 100",
            "TTL k",
            "SET k v EX XX EX 100",
            "SET k v EX abc NX EX",
            "SET k v EX 0 KEEPTTL",
            "SET k v EX 10 PX 100",
            "SET k v KEEPTTL EX 10",
            "SET k v NX XX",
            "SET k v EX",
            "GETEX k PERSIST PERSIST",
            "GETEX k EX 10 EX 20",
            "TTL k",
            "GETEX k EX 0 PERSIST",
            "GETEX k PERSIST EX 10",
            "GETEX k EX 0",
            "GETEX k KEEPTTL",
            "GETEX nokey EX 0",
            "GETEX nokey EX abc",
            "RPUSH l a",
            "GETEX l EX 0",
            "SET l v GET EX 0",
            "DECRBY n -9223372036854775808",
            "DECRBY n 9223372036854775807",
            "INCRBYFLOAT f 5",
            "OBJECT ENCODING f",
            "INCRBYFLOAT f 1.5",
            "OBJECT ENCODING f",
            "INCRBYFLOAT g -0.0",
            "OBJECT ENCODING g",
            "OBJECT REFCOUNT g",
        ],
    );
}
