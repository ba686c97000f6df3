//! Streams (XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID) checked against
//! Debian's redis-server: the same commands, replies and digests, with
//! small nodes so that approximate trimming and tombstones depend on the
//! node layout; then RDB files both ways, DUMP/RESTORE, and replication
//! both ways with a real Redis.

mod common;
use common::family::{assert_rdb_ok, cascade, digest, redis, send_blocking, wait_blocked};
use common::repl::{start, start_redis, wait_in_sync, wait_in_sync_applying_all};
use common::{assert_same_replies, Conn, Value};

fn same(o: &mut Conn, r: &mut Conn, args: &[&str]) -> Value {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    common::assert_same_reply(o, r, &args)
}

use common::Rng;

const SMALL_NODES: &[&str] = &["--stream-node-max-entries", "5"];

#[test]
fn stream_commands_answer_like_redis() {
    let (ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "XADD s 1-1 f v",
            "XADD s 1-1 f v",
            "XADD s 1-0 f v",
            "XADD s 1-* a b c d",
            "XADD s 2 f v2",
            "XADD s 0-0 f v",
            "XADD s2 0-0 f v",
            "EXISTS s2",
            "XADD s 3-1 f",
            "XADD s 3-1",
            "XADD s",
            "XADD s x-1 f v",
            "XADD s 3-x f v",
            "XADD s -1 f v",
            "XADD s 18446744073709551616-0 f v",
            "XADD s NOMKSTREAM 4-0 f v",
            "XADD missing NOMKSTREAM 4-0 f v",
            "EXISTS missing",
            "XADD s MAXLEN 10 MINID 0 5-0 f v",
            "XADD s MAXLEN -1 5-0 f v",
            "XADD s MAXLEN x 5-0 f v",
            "XADD s LIMIT 10 5-0 f v",
            "XADD s MAXLEN 10 LIMIT 10 5-0 f v",
            "XADD s MAXLEN ~ 10 LIMIT -1 5-0 f v",
            "XADD s MINID x 5-0 f v",
            "XADD s BOGUS 5-0 f v",
            "XLEN s",
            "XLEN missing",
            "XRANGE s - +",
            "XRANGE s - + COUNT 2",
            "XRANGE s - + COUNT 0",
            "XRANGE s - + COUNT -3",
            "XRANGE s - + COUNT x",
            "XRANGE s - + BOGUS 1",
            "XRANGE s 1 1",
            "XRANGE s (1-0 +",
            "XRANGE s - (2-0",
            "XRANGE s (- +",
            "XRANGE s (18446744073709551615-18446744073709551615 +",
            "XRANGE s - (0-0",
            "XRANGE s 2 1",
            "XRANGE s x +",
            "XREVRANGE s + -",
            "XREVRANGE s + - COUNT 1",
            "XREVRANGE s (2-0 -",
            "XRANGE missing - +",
            "XRANGE missing - + COUNT 0",
            "SET str x",
            "XADD str * f v",
            "XLEN str",
            "XRANGE str - +",
            "XDEL str 1-0",
            "XTRIM str MAXLEN 0",
            "XSETID str 1-0",
            "XDEL s 1-1 1-1 9-9",
            "XDEL s x",
            "XDEL missing x",
            "XLEN s",
            "XRANGE s - +",
            "XTRIM s",
            "XTRIM s MAXLEN",
            "XTRIM s BOGUS 1",
            "XTRIM s MAXLEN 10 LIMIT 2",
            "XTRIM missing MAXLEN 0",
            "XSETID s 1-0",
            "XSETID s 100-0",
            "XSETID s 100-0 ENTRIESADDED -1",
            "XSETID s 100-0 ENTRIESADDED 1",
            "XSETID s 100-0 MAXDELETEDID 200-0",
            "XSETID s 100-0 ENTRIESADDED 50 MAXDELETEDID 50-0",
            "XSETID s 40-0",
            "XSETID s 100-0 BOGUS",
            "XSETID missing 1-0",
            "XADD s 99-0 f v",
            "XADD s 100-* f v",
            "XADD s 18446744073709551615-18446744073709551615 f v",
            "XADD s 18446744073709551615-* f v",
            "XADD s * f v",
            "TYPE s",
            "OBJECT ENCODING s",
            "XADD e 1-0 f v",
            "XDEL e 1-0",
            "XLEN e",
            "EXISTS e",
            "XRANGE e - +",
            "XADD e MAXLEN 0 2-0 f v",
            "XLEN e",
            "XADD e 1-5 f v",
        ],
    );
    assert_eq!(digest(&mut o), digest(&mut r));
}

/// Random work on a few streams: explicit IDs (auto ones differ between
/// servers), trims of both kinds, deletes, reads.
fn random_work(o: &mut Conn, r: &mut Conn, steps: usize, seed: u64) {
    let mut rng = Rng(seed);
    let keys = ["x0", "x1", "x2"];
    let mut next_ms = [1u64; 3];
    for _ in 0..steps {
        let k = rng.below(3) as usize;
        let key = keys[k];
        match rng.below(10) {
            0..=4 => {
                next_ms[k] += rng.below(3);
                let id = if rng.below(3) == 0 {
                    format!("{}-*", next_ms[k])
                } else {
                    let id = format!("{}-{}", next_ms[k], rng.below(4));
                    next_ms[k] += 1;
                    id
                };
                let fields = if rng.below(2) == 0 {
                    vec!["name".to_string(), format!("v{}", rng.below(1000))]
                } else {
                    vec![
                        "name".to_string(),
                        "x".repeat(rng.below(80) as usize),
                        format!("n{}", rng.below(3)),
                        rng.below(100000).to_string(),
                    ]
                };
                let mut cmd = vec!["XADD".to_string(), key.to_string()];
                match rng.below(5) {
                    0 => cmd.extend(["MAXLEN".into(), "~".into(), rng.below(30).to_string()]),
                    1 => cmd.extend(["MAXLEN".into(), rng.below(30).to_string()]),
                    2 => cmd.extend([
                        "MINID".into(),
                        "~".into(),
                        format!("{}", next_ms[k].saturating_sub(20)),
                    ]),
                    _ => {}
                }
                cmd.push(id);
                cmd.extend(fields);
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                same(o, r, &args);
            }
            5 => {
                let a = format!("{}-{}", rng.below(next_ms[k] + 1), rng.below(3));
                let b = format!("{}-{}", rng.below(next_ms[k] + 1), rng.below(3));
                same(o, r, &["XDEL", key, &a, &b]);
            }
            6 => {
                let n = rng.below(40).to_string();
                let limit = (1 + rng.below(12)).to_string();
                match rng.below(4) {
                    0 => same(o, r, &["XTRIM", key, "MAXLEN", "~", &n]),
                    1 => same(o, r, &["XTRIM", key, "MAXLEN", "~", &n, "LIMIT", &limit]),
                    2 => same(
                        o,
                        r,
                        &[
                            "XTRIM",
                            key,
                            "MINID",
                            "=",
                            &format!("{}", rng.below(next_ms[k] + 1)),
                        ],
                    ),
                    _ => same(o, r, &["XTRIM", key, "MAXLEN", &n]),
                };
            }
            7 => {
                let a = format!("{}", rng.below(next_ms[k] + 1));
                let b = format!("({}", rng.below(next_ms[k] + 1));
                let n = rng.below(6).to_string();
                same(o, r, &["XRANGE", key, &a, "+", "COUNT", &n]);
                same(o, r, &["XREVRANGE", key, &b, "-"]);
            }
            _ => {
                same(o, r, &["XLEN", key]);
            }
        }
    }
    for k in keys {
        same(o, r, &["XRANGE", k, "-", "+"]);
    }
}

#[test]
fn random_stream_work_matches_redis() {
    let (ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    random_work(&mut o, &mut r, 3000, 0x5eed_0f57_4ea4);
    assert_eq!(digest(&mut o), digest(&mut r));
}

#[test]
fn streams_travel_in_rdb_files_and_dumps_both_ways() {
    let (mut ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    random_work(&mut o, &mut r, 800, 42);
    for c in [&mut o, &mut r] {
        c.cmd(&["XADD", "empty", "1-0", "f", "v"]);
        c.cmd(&["XDEL", "empty", "1-0"]);
    }
    let want = digest(&mut o);
    // Our dump: Redis's checker accepts it, we load it back.
    assert_eq!(o.cmd(&["SAVE"]), Value::ok());
    assert_rdb_ok(&ours.dir.path().join("dump.rdb"));
    drop(o);
    ours.restart();
    let mut o = ours.conn();
    assert_eq!(digest(&mut o), want);
    for k in ["x0", "x1", "x2", "empty"] {
        for (a, b) in [("XLEN", ""), ("XRANGE", "-")] {
            let args: Vec<&str> = if b.is_empty() {
                vec![a, k]
            } else {
                vec![a, k, b, "+"]
            };
            same(&mut o, &mut r, &args);
        }
    }
    // Values moved by DUMP and RESTORE, each way.
    for k in ["x0", "x1", "empty"] {
        let name = format!("copy:{k}");
        common::family::copy_by_dump(&mut r, &mut o, k, &name);
        common::family::copy_by_dump(&mut o, &mut r, k, &name);
    }
    assert_eq!(digest(&mut o), digest(&mut r));
    // Redis's dump, loaded by us.
    assert_eq!(r.cmd(&["SAVE"]), Value::ok());
    let mut loaded = cascade(SMALL_NODES);
    drop(o);
    std::fs::copy(
        theirs.dir.path().join("dump.rdb"),
        loaded.dir.path().join("dump.rdb"),
    )
    .unwrap();
    loaded.restart();
    assert_eq!(digest(&mut loaded.conn()), digest(&mut r));
}

#[test]
fn streams_replicate_between_cascade_and_redis() {
    // Cascade master with a Cascade and a Redis replica: XADD with `*`
    // and approximate trims reach both as the same entries.
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let mut c = master.conn();
    for i in 0..600 {
        let key = format!("s{}", i % 4);
        let r = c.cmd(&["XADD", &key, "MAXLEN", "~", "150", "*", "i", &i.to_string()]);
        assert!(matches!(r, Value::Bulk(_)), "{r:?}");
    }
    c.cmd(&["XTRIM", "s1", "MAXLEN", "~", "20", "LIMIT", "200"]);
    c.cmd(&["XDEL", "s2", "0-1"]);
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    // And a Redis master with a Cascade replica.
    let rmaster = start_redis(&[]);
    let rport = rmaster.port.to_string();
    let mut rc = rmaster.conn();
    for i in 0..300 {
        rc.cmd(&["XADD", "pre", "*", "i", &i.to_string()]);
    }
    let replica = start(&["--replicaof", "127.0.0.1", &rport]);
    wait_in_sync(&rmaster, &replica, None);
    for i in 0..600 {
        rc.cmd(&[
            "XADD",
            "live",
            "MAXLEN",
            "~",
            "100",
            "LIMIT",
            "50",
            "*",
            "i",
            &i.to_string(),
        ]);
    }
    rc.cmd(&["XTRIM", "pre", "MINID", "~", "0"]);
    rc.cmd(&["XSETID", "pre", "999999999999999-0"]);
    wait_in_sync_applying_all(&rmaster, &replica);
}

#[test]
fn stream_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "xadd",
        "xlen",
        "xrange",
        "xrevrange",
        "xdel",
        "xtrim",
        "xsetid",
        "xread",
    ]);
}

#[test]
fn xread_answers_like_redis() {
    let (ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    let script = [
        "XADD a 1-0 f 1",
        "XADD a 2-0 f 2",
        "XADD a 3-0 f 3",
        "XADD b 5-0 g 5",
        "SET str x",
        "XREAD STREAMS a 0",
        "XREAD COUNT 2 STREAMS a 0",
        "XREAD COUNT 0 STREAMS a 1-0",
        "XREAD COUNT -5 STREAMS a 1-0",
        "XREAD STREAMS a b 1 0",
        "XREAD STREAMS a b $ $",
        "XREAD STREAMS a b missing 2 4 0",
        "XREAD STREAMS missing 0",
        "XREAD STREAMS a 3",
        "XREAD STREAMS a",
        "XREAD STREAMS a b 0",
        "XREAD a 0",
        "XREAD COUNT x STREAMS a 0",
        "XREAD BLOCK x STREAMS a 0",
        "XREAD BLOCK -1 STREAMS a 0",
        "XREAD GROUP g c STREAMS a 0",
        "XREAD NOACK STREAMS a 0",
        "XREAD STREAMS a >",
        "XREAD STREAMS a x",
        "XREAD STREAMS str 0",
        "XREAD STREAMS a str x 0",
        "XREAD STREAMS str a 0 x",
        "XREAD BLOCK 0 STREAMS a 0",
        "XREAD BLOCK 1 STREAMS a 3",
        "XREAD BLOCK 1 STREAMS missing $",
        "XDEL a 3-0",
        "XREAD STREAMS a 2",
        "MULTI",
        "XREAD BLOCK 0 STREAMS a $",
        "EXEC",
    ];
    assert_same_replies(&mut o, &mut r, &script);
    // RESP3: a map of streams.
    for c in [&mut o, &mut r] {
        assert!(!c.cmd(&["HELLO", "3"]).is_error());
    }
    assert_same_replies(
        &mut o,
        &mut r,
        &["XREAD STREAMS a b 0 0", "XREAD STREAMS a 2"],
    );
}

/// Sends an XREAD BLOCK from a client of its own, to be read later.
#[test]
fn xread_block_is_served_by_new_entries_on_any_shard() {
    let s = cascade(&[]);
    let mut c = s.conn();
    // Keys on both shards.
    let k0 = &common::family::keys_on(0, "q", 1)[0];
    let k1 = &common::family::keys_on(1, "q", 1)[0];
    c.cmd(&["XADD", k0, "1-0", "f", "old"]);
    // Two readers of k0 after $, one of both keys after explicit IDs.
    let mut r1 = send_blocking(s.port, &["XREAD", "BLOCK", "0", "STREAMS", k0, "$"]);
    let mut r2 = send_blocking(
        s.port,
        &["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", k0, "$"],
    );
    let mut r3 = send_blocking(
        s.port,
        &["XREAD", "BLOCK", "0", "STREAMS", k0, k1, "5-0", "0"],
    );
    wait_blocked(&s, 3);
    // A write to the other key serves only the reader waiting on it.
    c.cmd(&["XADD", k1, "7-0", "g", "new"]);
    let entry = |id: &str, f: &str, v: &str| {
        Value::Array(vec![
            Value::bulk(id),
            Value::Array(vec![Value::bulk(f), Value::bulk(v)]),
        ])
    };
    let one = |k: &str, entries: Vec<Value>| {
        Value::Array(vec![Value::Array(vec![
            Value::bulk(k),
            Value::Array(entries),
        ])])
    };
    assert_eq!(r3.read(), one(k1, vec![entry("7-0", "g", "new")]));
    wait_blocked(&s, 2);
    // Entries not after a reader's ID do not serve it.
    c.cmd(&["XADD", k0, "2-0", "f", "a"]);
    c.cmd(&["XADD", k0, "3-0", "f", "b"]);
    let got1 = r1.read();
    let got2 = r2.read();
    assert!(
        got1 == one(k0, vec![entry("2-0", "f", "a")])
            || got1 == one(k0, vec![entry("2-0", "f", "a"), entry("3-0", "f", "b")]),
        "{got1:?}"
    );
    assert_eq!(got2, one(k0, vec![entry("2-0", "f", "a")]));
    wait_blocked(&s, 0);
    // A timeout answers a null array; CLIENT UNBLOCK likewise.
    let mut t = Conn::connect(s.port);
    assert_eq!(
        t.cmd(&["XREAD", "BLOCK", "50", "STREAMS", k0, "$"]),
        Value::Nil
    );
    let mut u = send_blocking(s.port, &["XREAD", "BLOCK", "0", "STREAMS", k1, "$"]);
    wait_blocked(&s, 1);
    let id = common::info_field(&mut s.conn(), "clients", "blocked_clients");
    assert_eq!(id, "1");
    let list = c.cmd(&["CLIENT", "LIST"]).text();
    let blocked_id = list
        .lines()
        .find(|l| l.contains("flags=b"))
        .and_then(|l| l.split(' ').next())
        .and_then(|f| f.strip_prefix("id="))
        .unwrap()
        .to_string();
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &blocked_id]), Value::Int(1));
    assert_eq!(u.read(), Value::Nil);
}
