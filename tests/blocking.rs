//! Blocking list and sorted set commands against the real binary (two
//! shards): wake-ups by writes from other clients on either shard,
//! timeouts, arrival-order fairness, several keys across shards, BLMOVE
//! across shards, clients that disconnect while blocked, blocking commands
//! inside MULTI, CLIENT UNBLOCK, what CLIENT LIST / INFO show meanwhile,
//! and what a served BZPOPMIN/BZMPOP sends to replicas. Every wait polls
//! with a deadline.

mod common;
use cascade::shard::route::shard_of;
use common::{info_field, wait_until, Conn, Server, Value};
use std::time::{Duration, Instant};

fn cascade() -> Server {
    Server::start(&["--shards", "2"])
}

/// `n` keys `<prefix>N`, alternating between the two shards.
fn keys_alternating(prefix: &str, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while out.len() < n {
        let k = format!("{prefix}{i}");
        let want = out.len() % 2;
        if shard_of(k.as_bytes(), 2) == want {
            out.push(k);
        }
        i += 1;
    }
    out
}

fn blocked(c: &mut Conn) -> i64 {
    info_field(c, "clients", "blocked_clients")
        .parse()
        .unwrap_or(-1)
}

fn wait_blocked(c: &mut Conn, n: i64) {
    wait_until(Duration::from_secs(10), "clients blocked", || {
        blocked(c) == n
    });
}

fn send(c: &mut Conn, args: &[&str]) {
    let refs: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&refs);
}

fn pair(k: &str, v: &str) -> Value {
    Value::Array(vec![Value::bulk(k), Value::bulk(v)])
}

#[test]
fn a_push_on_either_shard_wakes_the_blocked_client() {
    let s = cascade();
    let mut c = s.conn();
    for k in keys_alternating("wake:", 2) {
        let mut w = s.conn();
        send(&mut w, &["BLPOP", &k, "0"]);
        wait_blocked(&mut c, 1);
        let list = c.cmd(&["CLIENT", "LIST"]).text();
        assert!(list.contains("flags=b"), "{list}");
        assert_eq!(c.cmd(&["RPUSH", &k, "a", "b"]), Value::Int(2));
        assert_eq!(w.read(), pair(&k, "a"));
        // The served element never stayed in the list.
        assert_eq!(
            c.cmd(&["LRANGE", &k, "0", "-1"]),
            Value::Array(vec![Value::bulk("b")])
        );
        assert_eq!(blocked(&mut c), 0);
        assert!(!c.cmd(&["CLIENT", "LIST"]).text().contains("flags=b"));
    }
}

#[test]
fn timeouts_answer_null_and_leave_no_waiter() {
    let s = cascade();
    let mut c = s.conn();
    let started = Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "t:a", "t:b", "0.2"]), Value::Nil);
    assert_eq!(
        c.cmd(&["BLMOVE", "t:a", "t:b", "LEFT", "LEFT", "0.1"]),
        Value::Nil
    );
    assert_eq!(c.cmd(&["BLMPOP", "0.1", "1", "t:a", "LEFT"]), Value::Nil);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(390), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(blocked(&mut c), 0);
    // The timed-out waiters are gone: a push stays in the list.
    assert_eq!(c.cmd(&["RPUSH", "t:a", "x"]), Value::Int(1));
    assert_eq!(c.cmd(&["LLEN", "t:a"]), Value::Int(1));
    // RESP3: a null.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BRPOP", "t:none", "0.05"]), Value::Nil);
}

#[test]
fn clients_are_served_in_arrival_order() {
    let s = cascade();
    let mut c = s.conn();
    let mut waiters = Vec::new();
    for i in 0..5 {
        let mut w = s.conn();
        send(&mut w, &["BLPOP", "fair", "0"]);
        wait_blocked(&mut c, i + 1);
        waiters.push(w);
    }
    c.cmd(&["RPUSH", "fair", "0", "1", "2"]);
    for (i, w) in waiters.iter_mut().take(3).enumerate() {
        assert_eq!(w.read(), pair("fair", &i.to_string()));
    }
    assert_eq!(blocked(&mut c), 2);
    c.cmd(&["LPUSH", "fair", "3"]);
    assert_eq!(waiters[3].read(), pair("fair", "3"));
    c.cmd(&["RPUSH", "fair", "4"]);
    assert_eq!(waiters[4].read(), pair("fair", "4"));
    assert_eq!(c.cmd(&["EXISTS", "fair"]), Value::Int(0));
}

#[test]
fn several_keys_across_shards_are_served_once() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("multi:", 4);
    // Data already there: the first non-empty key in argument order.
    c.cmd(&["RPUSH", &keys[3], "late"]);
    c.cmd(&["RPUSH", &keys[1], "early"]);
    let mut args = vec!["BLPOP"];
    args.extend(keys.iter().map(String::as_str));
    args.push("0");
    assert_eq!(c.cmd(&args), pair(&keys[1], "early"));
    c.cmd(&["DEL", &keys[3]]);
    // Nothing there: blocked on every shard, served by the first push.
    let mut w = s.conn();
    send(&mut w, &args);
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", &keys[2], "x"]);
    c.cmd(&["RPUSH", &keys[1], "y"]);
    assert_eq!(w.read(), pair(&keys[2], "x"));
    assert_eq!(c.cmd(&["LLEN", &keys[1]]), Value::Int(1));
    assert_eq!(blocked(&mut c), 0);
    // BLMPOP with a count, across shards.
    let mut w = s.conn();
    send(
        &mut w,
        &[
            "BLMPOP", "0", "2", &keys[0], &keys[3], "RIGHT", "COUNT", "2",
        ],
    );
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", &keys[3], "a", "b", "c"]);
    assert_eq!(
        w.read(),
        Value::Array(vec![
            Value::bulk(&keys[3]),
            Value::Array(vec![Value::bulk("c"), Value::bulk("b")])
        ])
    );
}

#[test]
fn blmove_across_shards_moves_atomically() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("mv:", 2);
    let (src, dst) = (&keys[0], &keys[1]);
    let mut w = s.conn();
    send(&mut w, &["BLMOVE", src, dst, "RIGHT", "LEFT", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", src, "a", "b"]);
    assert_eq!(w.read(), Value::bulk("b"));
    assert_eq!(
        c.cmd(&["LRANGE", dst, "0", "-1"]),
        Value::Array(vec![Value::bulk("b")])
    );
    assert_eq!(
        c.cmd(&["LRANGE", src, "0", "-1"]),
        Value::Array(vec![Value::bulk("a")])
    );
    // Chained: a BRPOPLPUSH into a key another client blocks on.
    c.cmd(&["DEL", src, dst]);
    let mut second = s.conn();
    send(&mut second, &["BLPOP", dst, "0"]);
    wait_blocked(&mut c, 1);
    let mut first = s.conn();
    send(&mut first, &["BRPOPLPUSH", src, dst, "0"]);
    wait_blocked(&mut c, 2);
    c.cmd(&["RPUSH", src, "z"]);
    assert_eq!(first.read(), Value::bulk("z"));
    assert_eq!(second.read(), pair(dst, "z"));
    assert_eq!(c.cmd(&["EXISTS", src, dst]), Value::Int(0));
    wait_blocked(&mut c, 0);
}

#[test]
fn a_client_that_disconnects_while_blocked_is_forgotten() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("dc:", 2);
    {
        let mut w = s.conn();
        send(&mut w, &["BLPOP", &keys[0], &keys[1], "0"]);
        wait_blocked(&mut c, 1);
    }
    wait_blocked(&mut c, 0);
    for k in &keys {
        c.cmd(&["RPUSH", k, "kept"]);
        assert_eq!(c.cmd(&["LLEN", k]), Value::Int(1));
    }
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let s = cascade();
    let mut c = s.conn();
    c.cmd(&["MULTI"]);
    c.cmd(&["BLPOP", "mx", "0"]);
    c.cmd(&["BLMOVE", "mx", "my", "LEFT", "LEFT", "0"]);
    c.cmd(&["RPUSH", "mz", "v"]);
    c.cmd(&["BRPOP", "mz", "0"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Array(vec![Value::Nil, Value::Nil, Value::Int(1), pair("mz", "v")])
    );
    // A push inside EXEC serves a blocked client after the transaction.
    let mut w = s.conn();
    send(&mut w, &["BLPOP", "mq", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["MULTI"]);
    c.cmd(&["RPUSH", "mq", "1", "2"]);
    c.cmd(&["LPOP", "mq"]);
    let replies = c.cmd(&["EXEC"]);
    assert_eq!(replies.array()[1], Value::bulk("1"));
    assert_eq!(w.read(), pair("mq", "2"));
}

#[test]
fn client_unblock_ends_the_wait() {
    let s = cascade();
    let mut c = s.conn();
    let mut w = s.conn();
    let id = w.cmd(&["CLIENT", "ID"]).int().to_string();
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), Value::Int(0));
    send(&mut w, &["BLPOP", "ub", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), Value::Int(1));
    assert_eq!(w.read(), Value::Nil);
    send(&mut w, &["BLMOVE", "ub", "ub2", "LEFT", "LEFT", "0"]);
    wait_blocked(&mut c, 1);
    assert!(c.cmd(&["CLIENT", "UNBLOCK", &id, "FOO"]).is_error());
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Value::Int(1));
    assert_eq!(
        w.read(),
        Value::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    assert_eq!(blocked(&mut c), 0);
    // The connection goes on as usual.
    assert_eq!(w.cmd(&["PING"]), Value::Simple("PONG".into()));
}

// ------------------------------------------------------- sorted sets --

fn zpopped(k: &str, m: &str, score: &str) -> Value {
    Value::Array(vec![Value::bulk(k), Value::bulk(m), Value::bulk(score)])
}

fn zmpopped(k: &str, pairs: &[(&str, &str)]) -> Value {
    Value::Array(vec![
        Value::bulk(k),
        Value::Array(
            pairs
                .iter()
                .map(|(m, s)| Value::Array(vec![Value::bulk(m), Value::bulk(s)]))
                .collect(),
        ),
    ])
}

#[test]
fn bzpop_is_woken_by_sorted_set_writes_on_either_shard() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("zw:", 2);
    for k in &keys {
        let mut w = s.conn();
        send(&mut w, &["BZPOPMIN", k, "0"]);
        wait_blocked(&mut c, 1);
        assert!(c.cmd(&["CLIENT", "LIST"]).text().contains("flags=b"));
        assert_eq!(c.cmd(&["ZADD", k, "2", "b", "1", "a"]), Value::Int(2));
        assert_eq!(w.read(), zpopped(k, "a", "1"));
        send(&mut w, &["BZPOPMAX", k, "0"]);
        // "b" is there: served at once.
        assert_eq!(w.read(), zpopped(k, "b", "2"));
        assert_eq!(c.cmd(&["EXISTS", k]), Value::Int(0));
        // ZINCRBY creating the key wakes too.
        send(&mut w, &["BZPOPMAX", k, "0"]);
        wait_blocked(&mut c, 1);
        c.cmd(&["ZINCRBY", k, "1.5", "m"]);
        assert_eq!(w.read(), zpopped(k, "m", "1.5"));
        assert_eq!(blocked(&mut c), 0);
    }
    // RESP3: the score is a double.
    let mut w = s.conn();
    w.cmd(&["HELLO", "3"]);
    send(&mut w, &["BZPOPMIN", &keys[0], "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", &keys[0], "-inf", "low"]);
    assert_eq!(
        w.read(),
        Value::Array(vec![
            Value::bulk(&keys[0]),
            Value::bulk("low"),
            Value::Double("-inf".into())
        ])
    );
    send(&mut w, &["BZMPOP", "0", "1", &keys[1], "MAX", "COUNT", "2"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", &keys[1], "1", "x", "2.5", "y", "3", "z"]);
    assert_eq!(
        w.read(),
        Value::Array(vec![
            Value::bulk(&keys[1]),
            Value::Array(vec![
                Value::Array(vec![Value::bulk("z"), Value::Double("3".into())]),
                Value::Array(vec![Value::bulk("y"), Value::Double("2.5".into())]),
            ])
        ])
    );
}

#[test]
fn bzmpop_waits_on_keys_of_both_shards_and_stores_wake_it() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("zm:", 4);
    // Data already there: the first non-empty key in argument order.
    c.cmd(&["ZADD", &keys[3], "1", "late"]);
    c.cmd(&["ZADD", &keys[1], "1", "early", "2", "second"]);
    let mut args = vec!["BZMPOP", "0", "4"];
    args.extend(keys.iter().map(String::as_str));
    args.extend(["MIN", "COUNT", "5"]);
    assert_eq!(
        c.cmd(&args),
        zmpopped(&keys[1], &[("early", "1"), ("second", "2")])
    );
    c.cmd(&["DEL", &keys[3]]);
    // Nothing there: one client on every shard, served once by the first
    // write, whichever shard it is on.
    let mut w = s.conn();
    send(&mut w, &args);
    wait_blocked(&mut c, 1);
    // A cross-shard ZUNIONSTORE creating a blocked-on key (the source is
    // on shard 1, the destination on shard 0).
    let src = &keys_alternating("zsrc:", 2)[1];
    c.cmd(&["ZADD", src, "5", "u", "6", "v"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", &keys[2], "1", src]), Value::Int(2));
    assert_eq!(w.read(), zmpopped(&keys[2], &[("u", "5"), ("v", "6")]));
    assert_eq!(c.cmd(&["EXISTS", &keys[2]]), Value::Int(0));
    wait_blocked(&mut c, 0);
    // A cross-shard ZRANGESTORE into a blocked-on key.
    let mut w = s.conn();
    send(&mut w, &["BZPOPMAX", &keys[1], &keys[0], "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZRANGESTORE", &keys[0], src, "0", "0"]);
    assert_eq!(w.read(), zpopped(&keys[0], "u", "5"));
    // Nothing left behind on either shard: later writes stay.
    wait_blocked(&mut c, 0);
    c.cmd(&["ZADD", &keys[1], "1", "kept"]);
    assert_eq!(c.cmd(&["ZCARD", &keys[1]]), Value::Int(1));
}

#[test]
fn bzpop_clients_are_served_in_arrival_order_by_their_own_type() {
    let s = cascade();
    let mut c = s.conn();
    let mut zs = Vec::new();
    let mut lists = Vec::new();
    // Interleaved list and sorted set waiters on the same key.
    for i in 0..3 {
        let mut w = s.conn();
        send(&mut w, &["BZPOPMIN", "zfair", "0"]);
        wait_blocked(&mut c, 2 * i + 1);
        zs.push(w);
        let mut l = s.conn();
        send(&mut l, &["BLPOP", "zfair", "0"]);
        wait_blocked(&mut c, 2 * i + 2);
        lists.push(l);
    }
    c.cmd(&["ZADD", "zfair", "1", "a", "2", "b"]);
    assert_eq!(zs[0].read(), zpopped("zfair", "a", "1"));
    assert_eq!(zs[1].read(), zpopped("zfair", "b", "2"));
    // The sorted set never served a list waiter.
    assert_eq!(blocked(&mut c), 4);
    c.cmd(&["ZADD", "zfair", "3", "c"]);
    assert_eq!(zs[2].read(), zpopped("zfair", "c", "3"));
    c.cmd(&["RPUSH", "zfair", "x", "y", "z"]);
    for (l, e) in lists.iter_mut().zip(["x", "y", "z"]) {
        assert_eq!(l.read(), pair("zfair", e));
    }
    assert_eq!(blocked(&mut c), 0);
    // A list at the key leaves a sorted set waiter blocked (Redis 7.0).
    let mut w = s.conn();
    send(&mut w, &["BZPOPMAX", "zfair", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "zfair", "l"]);
    c.cmd(&["DEL", "zfair"]);
    assert_eq!(blocked(&mut c), 1);
    c.cmd(&["ZADD", "zfair", "9", "z"]);
    assert_eq!(w.read(), zpopped("zfair", "z", "9"));
}

#[test]
fn bzpop_errors_timeouts_multi_and_unblock() {
    let s = cascade();
    let mut c = s.conn();
    c.cmd(&["SET", "str", "x"]);
    assert!(c
        .cmd(&["BZPOPMIN", "nokey", "str", "0"])
        .text()
        .starts_with("WRONGTYPE"));
    assert!(c
        .cmd(&["BZMPOP", "0", "1", "str", "MIN"])
        .text()
        .starts_with("WRONGTYPE"));
    assert_eq!(
        c.cmd(&["BZPOPMIN", "k", "x"]),
        Value::Error("ERR timeout is not a float or out of range".into())
    );
    assert_eq!(
        c.cmd(&["BZPOPMAX", "k", "-0.5"]),
        Value::Error("ERR timeout is negative".into())
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "-1", "1", "k", "MIN"]),
        Value::Error("ERR timeout is negative".into())
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "x", "0", "k", "MIN"]),
        Value::Error("ERR numkeys should be greater than 0".into())
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "0", "1", "k", "MIN", "COUNT", "0"]),
        Value::Error("ERR count should be greater than 0".into())
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "0", "1", "k", "MIDDLE"]),
        Value::Error("ERR syntax error".into())
    );
    assert_eq!(
        c.cmd(&["BZPOPMIN", "k"]),
        Value::Error("ERR wrong number of arguments for 'bzpopmin' command".into())
    );
    // Timeouts: a null array, no waiter left behind.
    let started = Instant::now();
    assert_eq!(c.cmd(&["BZPOPMIN", "zt:a", "zt:b", "0.2"]), Value::Nil);
    assert_eq!(c.cmd(&["BZMPOP", "0.1", "1", "zt:a", "MAX"]), Value::Nil);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(blocked(&mut c), 0);
    c.cmd(&["ZADD", "zt:a", "1", "stays"]);
    assert_eq!(c.cmd(&["ZCARD", "zt:a"]), Value::Int(1));
    // Inside MULTI: never blocks, answers at once.
    c.cmd(&["MULTI"]);
    c.cmd(&["BZPOPMIN", "zm:none", "0"]);
    c.cmd(&["BZMPOP", "0", "1", "zm:none", "MIN"]);
    c.cmd(&["ZADD", "zm:x", "1", "a", "2", "b"]);
    c.cmd(&["BZPOPMAX", "zm:x", "0"]);
    c.cmd(&["BZMPOP", "0", "2", "zm:none", "zm:x", "MIN", "COUNT", "3"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Array(vec![
            Value::Nil,
            Value::Nil,
            Value::Int(2),
            zpopped("zm:x", "b", "2"),
            zmpopped("zm:x", &[("a", "1")]),
        ])
    );
    // A ZADD inside EXEC serves a blocked client after the transaction,
    // with what the transaction left.
    let mut w = s.conn();
    send(&mut w, &["BZPOPMIN", "zm:q", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["MULTI"]);
    c.cmd(&["ZADD", "zm:q", "1", "one", "2", "two"]);
    c.cmd(&["ZPOPMIN", "zm:q"]);
    c.cmd(&["EXEC"]);
    assert_eq!(w.read(), zpopped("zm:q", "two", "2"));
    // CLIENT UNBLOCK, both ways.
    let id = w.cmd(&["CLIENT", "ID"]).int().to_string();
    send(&mut w, &["BZPOPMAX", "zm:u", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), Value::Int(1));
    assert_eq!(w.read(), Value::Nil);
    send(&mut w, &["BZMPOP", "0", "1", "zm:u", "MIN"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Value::Int(1));
    assert_eq!(
        w.read(),
        Value::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    assert_eq!(blocked(&mut c), 0);
    c.cmd(&["ZADD", "zm:u", "1", "kept"]);
    assert_eq!(c.cmd(&["ZCARD", "zm:u"]), Value::Int(1));
}

/// Connects as an old-style replica (SYNC) and skips the RDB; the reader
/// then yields the replication stream's commands.
fn raw_replica(port: u16) -> Conn {
    use std::io::{BufRead, Read};
    let mut r = Conn::connect(port);
    r.send(&[b"SYNC"]);
    let mut head = String::new();
    loop {
        head.clear();
        r.reader.read_line(&mut head).unwrap();
        // Newlines may precede the payload while the RDB is produced.
        if head.trim().starts_with('$') {
            break;
        }
    }
    let len: usize = head.trim()[1..].parse().unwrap();
    let mut rdb = vec![0u8; len];
    r.reader.read_exact(&mut rdb).unwrap();
    r
}

/// A 2-shard master with DEBUG on, a raw SYNC stream of it, and a
/// redis-server replica of it: what a served blocking command looks like
/// downstream, and whether a real Redis applies it the same way.
fn watched_master() -> (Server, Conn, Server) {
    let s = Server::start(&[
        "--shards",
        "2",
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let raw = raw_replica(s.port);
    let replica = Server::start_redis(&[
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &s.port.to_string(),
    ]);
    (s, raw, replica)
}

/// The next stream command other than PING/SELECT, as text.
fn next_write(r: &mut Conn) -> Vec<String> {
    loop {
        let cmd: Vec<String> = r.read().array().iter().map(Value::text).collect();
        let name = cmd[0].to_ascii_uppercase();
        if name != "PING" && name != "SELECT" {
            return cmd;
        }
    }
}

#[test]
fn served_bzpops_reach_replicas_as_zpops() {
    let (s, mut raw, replica) = watched_master();
    let mut c = s.conn();
    let keys = keys_alternating("zr:", 2);
    let (a, b) = (&keys[0], &keys[1]);
    // Served at once.
    c.cmd(&["ZADD", a, "1", "x", "2", "y", "3", "z"]);
    assert_eq!(c.cmd(&["BZPOPMIN", a, "0"]), zpopped(a, "x", "1"));
    c.cmd(&["BZMPOP", "0", "2", b, a, "MAX", "COUNT", "10"]);
    // Served after blocking.
    let mut w = s.conn();
    send(&mut w, &["BZMPOP", "0", "2", a, b, "MIN", "COUNT", "5"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", b, "1", "p", "2", "q"]);
    assert_eq!(w.read(), zmpopped(b, &[("p", "1"), ("q", "2")]));
    send(&mut w, &["BZPOPMAX", a, b, "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", a, "7", "s", "8", "t"]);
    assert_eq!(w.read(), zpopped(a, "t", "8"));
    let expect: &[&[&str]] = &[
        &["ZADD", a, "1", "x", "2", "y", "3", "z"],
        &["ZPOPMIN", a],
        &["ZPOPMAX", a, "2"],
        &["ZADD", b, "1", "p", "2", "q"],
        &["ZPOPMIN", b, "2"],
        &["ZADD", a, "7", "s", "8", "t"],
        &["ZPOPMAX", a],
    ];
    for want in expect {
        let got = next_write(&mut raw);
        let got_upper: Vec<String> = got
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    a.to_ascii_uppercase()
                } else {
                    a.clone()
                }
            })
            .collect();
        assert_eq!(got_upper, *want);
    }
    common::family::wait_same_digest(&s, &replica);
    assert_eq!(
        replica.conn().cmd(&["ZRANGE", a, "0", "-1", "WITHSCORES"]),
        Value::Array(vec![Value::bulk("s"), Value::bulk("7")])
    );
}

#[test]
fn rename_and_swapdb_wake_sorted_set_and_list_waiters() {
    let s = cascade();
    let mut c = s.conn();
    let keys = keys_alternating("rn:", 2);
    // RENAME of a sorted set onto a blocked-on key of the other shard.
    let mut w = s.conn();
    send(&mut w, &["BZPOPMIN", &keys[1], "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", &keys[0], "4", "r"]);
    assert_eq!(c.cmd(&["RENAME", &keys[0], &keys[1]]), Value::ok());
    assert_eq!(w.read(), zpopped(&keys[1], "r", "4"));
    // SWAPDB bringing a sorted set and a list under blocked clients.
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["ZADD", "sw:z", "1", "one"]);
    c.cmd(&["RPUSH", "sw:l", "item"]);
    c.cmd(&["SELECT", "0"]);
    let mut wz = s.conn();
    send(&mut wz, &["BZPOPMAX", "sw:z", "0"]);
    wait_blocked(&mut c, 1);
    let mut wl = s.conn();
    send(&mut wl, &["BRPOP", "sw:l", "0"]);
    wait_blocked(&mut c, 2);
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), Value::ok());
    assert_eq!(wz.read(), zpopped("sw:z", "one", "1"));
    assert_eq!(wl.read(), pair("sw:l", "item"));
    assert_eq!(blocked(&mut c), 0);
}

/// The next reply of each of `conns`, in order (each read bounded by a
/// timeout, so a client that is never served fails the test).
fn read_all(conns: &mut [Conn]) -> Vec<Value> {
    conns
        .iter_mut()
        .map(|c| {
            c.set_read_timeout(Duration::from_secs(10));
            c.read()
        })
        .collect()
}

/// Clients blocked on one key with BLMOVE/BRPOPLPUSH to keys of another
/// shard, mixed with same-shard BLPOP/BLMOVE/BLMPOP, are served in the
/// order they blocked, whether one push serves them all or pushes come one
/// by one, and the stream shows the equivalent LMOVE/RPOPLPUSH/LPOP in
/// that order (a redis-server replica ends with the same digest).
#[test]
fn blmoves_to_other_shards_are_served_in_arrival_order() {
    let (s, mut raw, replica) = watched_master();
    let mut c = s.conn();
    // The source on shard 0; destinations on shard 1, one on shard 0.
    let src = common::family::keys_on(0, "fair:src", 1).remove(0);
    let far = common::family::keys_on(1, "fair:d", 3);
    let near = common::family::keys_on(0, "fair:n", 1).remove(0);
    // Clients block in a known order (each blocked before the next sends):
    // cross-shard moves mixed with a same-shard pop and a same-shard move.
    let orders: Vec<Vec<String>> = vec![
        vec![
            "BLMOVE".into(),
            src.clone(),
            far[0].clone(),
            "LEFT".into(),
            "RIGHT".into(),
            "0".into(),
        ],
        vec!["BLPOP".into(), src.clone(), "0".into()],
        vec!["BRPOPLPUSH".into(), src.clone(), far[1].clone(), "0".into()],
        vec![
            "BLMOVE".into(),
            src.clone(),
            near.clone(),
            "LEFT".into(),
            "LEFT".into(),
            "0".into(),
        ],
        vec![
            "BLMPOP".into(),
            "0".into(),
            "1".into(),
            src.clone(),
            "LEFT".into(),
        ],
        vec![
            "BLMOVE".into(),
            src.clone(),
            far[2].clone(),
            "LEFT".into(),
            "LEFT".into(),
            "0".into(),
        ],
    ];
    for round in 0..2 {
        let mut conns: Vec<Conn> = Vec::new();
        for (i, cmd) in orders.iter().enumerate() {
            let mut w = s.conn();
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            send(&mut w, &args);
            wait_blocked(&mut c, i as i64 + 1);
            conns.push(w);
        }
        // Round 0: one push serves everybody; round 1: pushes one by one.
        let elems = ["e1", "e2", "e3", "e4", "e5", "e6"];
        if round == 0 {
            let mut push = vec!["RPUSH", src.as_str()];
            push.extend(elems);
            c.cmd(&push);
        } else {
            // A move to another shard finishes after the push has replied
            // (its client runs it), so wait for each client to be served.
            for (i, e) in elems.iter().enumerate() {
                c.cmd(&["RPUSH", &src, e]);
                wait_blocked(&mut c, (elems.len() - i - 1) as i64);
            }
        }
        let got = read_all(&mut conns);
        // Each client got the element matching its arrival (LEFT pops for
        // all but BRPOPLPUSH, which pops from the right: with one push of
        // every element the third client takes the last one).
        let want_third = if round == 0 { "e6" } else { "e3" };
        let rest: Vec<&str> = if round == 0 {
            vec!["e3", "e4", "e5"]
        } else {
            vec!["e4", "e5", "e6"]
        };
        assert_eq!(got[0], Value::bulk("e1"), "round {round}: {got:?}");
        assert_eq!(got[1], pair(&src, "e2"), "round {round}: {got:?}");
        assert_eq!(got[2], Value::bulk(want_third), "round {round}: {got:?}");
        assert_eq!(got[3], Value::bulk(rest[0]), "round {round}: {got:?}");
        assert_eq!(
            got[4],
            Value::Array(vec![
                Value::bulk(&src),
                Value::Array(vec![Value::bulk(rest[1])])
            ]),
            "round {round}: {got:?}"
        );
        assert_eq!(got[5], Value::bulk(rest[2]), "round {round}: {got:?}");
        wait_blocked(&mut c, 0);
        assert_eq!(c.cmd(&["EXISTS", &src]), Value::Int(0));
    }
    // The stream carries the pushes and, in serving order, the
    // non-blocking equivalents of what each client got.
    let mut expect: Vec<Vec<String>> = Vec::new();
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for round in 0..2 {
        if round == 0 {
            let mut push = strs(&["RPUSH", &src]);
            push.extend(strs(&["e1", "e2", "e3", "e4", "e5", "e6"]));
            expect.push(push);
        }
        let served = [
            strs(&["LMOVE", &src, &far[0], "LEFT", "RIGHT"]),
            strs(&["LPOP", &src]),
            strs(&["RPOPLPUSH", &src, &far[1]]),
            strs(&["LMOVE", &src, &near, "LEFT", "LEFT"]),
            strs(&["LPOP", &src, "1"]),
            strs(&["LMOVE", &src, &far[2], "LEFT", "LEFT"]),
        ];
        for (i, cmd) in served.into_iter().enumerate() {
            if round == 1 {
                expect.push(strs(&["RPUSH", &src, &format!("e{}", i + 1)]));
            }
            expect.push(cmd);
        }
    }
    // Served moves carry their ends in lower case, as Redis's do.
    let upper =
        |v: &[String]| -> Vec<String> { v.iter().map(|a| a.to_ascii_uppercase()).collect() };
    for want in &expect {
        assert_eq!(upper(&next_write(&mut raw)), upper(want));
    }
    common::family::wait_same_digest(&s, &replica);
    assert_eq!(
        c.cmd(&["LRANGE", &far[0], "0", "-1"]),
        Value::Array(vec![Value::bulk("e1"), Value::bulk("e1")])
    );
}

/// Timeouts at the edge of Redis 7.0.15's arithmetic: seconds times 1000
/// in long double, rounded up (a sub-millisecond timeout still expires;
/// 2^63 ms and beyond: "negative"), no upper bound (a timeout past the
/// end of time waits until served). Both servers answer alike, and a
/// client blocked that long still wakes up.
#[test]
fn huge_timeouts_are_taken_like_redis() {
    let s = cascade();
    let r = Server::start_redis(&[]);
    common::assert_same_replies(
        &mut s.conn(),
        &mut r.conn(),
        &[
            "RPUSH l a b c d e f",
            "BLPOP l 9223371000000000",
            "BLPOP l 9223372036854775.8",
            "BRPOP l 9223372036854775.807",
            "BLPOP l 9223372036854775.8073",
            "BLPOP l 9223372036854775.808",
            "BLPOP l 9223372036854776",
            "BLPOP l 1e16",
            "BLPOP l inf",
            "BLPOP l -0.0009",
            "BLPOP empty 0.0001",
            "BLPOP empty 0.0009",
            "BZPOPMIN empty 0.0001",
            "BLMOVE l l2 LEFT RIGHT 9223372036854775.8",
            "BZPOPMIN z 9223372036854775.808",
            "XADD s 1-0 a b",
            "XREAD BLOCK 9223372036854775807 STREAMS s 0",
            "XGROUP CREATE s g 0",
            "XREADGROUP GROUP g c BLOCK 9223372036854775807 STREAMS s >",
        ],
    );
    let mut w = s.conn();
    send(&mut w, &["BLPOP", "later", "9223372036854775.8"]);
    let mut c = s.conn();
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "later", "x"]);
    assert_eq!(
        w.read(),
        Value::Array(vec![Value::bulk("later"), Value::bulk("x")])
    );
}
