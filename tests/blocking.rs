//! Blocking list commands against the real binary (two shards): wake-ups
//! by pushes from other clients on either shard, timeouts, arrival-order
//! fairness, several keys across shards, BLMOVE across shards, clients
//! that disconnect while blocked, blocking commands inside MULTI, CLIENT
//! UNBLOCK, and what CLIENT LIST / INFO show meanwhile. Every wait polls
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
