//! Client-side caching (CLIENT TRACKING): the same scenarios on Cascade
//! and redis-server give the same replies and the same invalidation
//! messages.

mod common;

use common::{assert_same_replies, Conn, Server, Value};
use std::time::Duration;

fn resp3(s: &Server) -> Conn {
    let mut c = s.conn();
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(!hello.is_error(), "{hello:?}");
    c
}

/// The next push or message, failing after a deadline.
fn next_message(c: &mut Conn) -> Value {
    c.set_read_timeout(Duration::from_secs(10));
    c.read()
}

/// Sends PING and reads up to its reply: every message that came before.
fn messages_before_ping(c: &mut Conn) -> Vec<Value> {
    c.set_read_timeout(Duration::from_secs(10));
    c.send(&[b"PING"]);
    let mut out = Vec::new();
    loop {
        let v = c.read();
        if v == Value::Simple("PONG".into()) {
            return out;
        }
        out.push(v);
    }
}

fn invalidate(keys: &[&str]) -> Value {
    Value::Push(vec![
        Value::bulk("invalidate"),
        Value::Array(keys.iter().map(|k| Value::bulk(k)).collect()),
    ])
}

#[test]
fn tracking_commands_answer_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let (mut c, mut r) = (ours.conn(), redis.conn());
    assert_same_replies(
        &mut c,
        &mut r,
        &[
            "CLIENT TRACKING",
            "CLIENT TRACKING foo",
            "CLIENT TRACKING on nosuch",
            "CLIENT TRACKING on prefix a",
            "CLIENT TRACKING on bcast optin",
            "CLIENT TRACKING on optin optout",
            "CLIENT TRACKING on redirect 99999",
            "CLIENT TRACKING on redirect x",
            "CLIENT CACHING yes",
            "CLIENT GETREDIR",
            "CLIENT TRACKINGINFO",
            "CLIENT TRACKING on bcast prefix a prefix ab",
            "CLIENT TRACKING on bcast prefix a prefix b",
            "CLIENT TRACKING on bcast prefix ax",
            "CLIENT TRACKING on",
            "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off",
            "CLIENT TRACKING on optin noloop",
            "CLIENT CACHING no",
            "CLIENT CACHING maybe",
            "CLIENT CACHING yes",
            "CLIENT TRACKINGINFO",
            "CLIENT GETREDIR",
            "CLIENT TRACKING on optout",
            "CLIENT TRACKING off",
            "CLIENT TRACKINGINFO",
            "CLIENT GETREDIR",
        ],
    );
}

#[test]
fn readers_are_told_when_keys_change_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut seen = Vec::new();
    for s in [&ours, &redis] {
        let mut reader = resp3(s);
        let mut writer = s.conn();
        assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), Value::ok());
        // Keys on every shard: reads remember them, writes tell once.
        for k in ["a", "b", "c", "d"] {
            writer.cmd(&["SET", k, "1"]);
        }
        reader.cmd(&["MGET", "a", "b", "c", "d"]);
        reader.cmd(&["GET", "nosuch"]);
        writer.cmd(&["SET", "a", "2"]);
        writer.cmd(&["SET", "a", "3"]); // told already: nothing more
        writer.cmd(&["INCR", "b"]);
        writer.cmd(&["DEL", "c"]);
        writer.cmd(&["SETNX", "d", "x"]); // no change: nothing
        writer.cmd(&["SET", "nosuch", "x"]);
        writer.cmd(&["EXPIRE", "nosuch", "100"]); // not read since: nothing
        let mut got = messages_before_ping(&mut reader);
        let mut want = vec![
            invalidate(&["a"]),
            invalidate(&["b"]),
            invalidate(&["c"]),
            invalidate(&["nosuch"]),
        ];
        // Keys on different shards may be told in either order.
        got.sort_by_key(|v| format!("{v:?}"));
        want.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(got, want, "{}", s.port);
        // The reader's own writes are told too, unless NOLOOP.
        reader.cmd(&["GET", "a"]);
        reader.cmd(&["SET", "a", "own"]);
        assert_eq!(messages_before_ping(&mut reader), vec![invalidate(&["a"])]);
        assert_eq!(
            reader.cmd(&["CLIENT", "TRACKING", "on", "noloop"]),
            Value::ok()
        );
        reader.cmd(&["GET", "a"]);
        reader.cmd(&["SET", "a", "own2"]);
        assert_eq!(messages_before_ping(&mut reader), vec![]);
        // Its multi-key writes too, whichever shards the keys are on.
        reader.cmd(&["MGET", "a", "b", "c", "d", "e", "f"]);
        reader.cmd(&[
            "MSET", "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1",
        ]);
        reader.cmd(&["DEL", "a", "b", "c", "d", "e", "f"]);
        assert_eq!(messages_before_ping(&mut reader), vec![]);
        // Reads inside a transaction and a script's reads count too.
        for k in ["t1", "t2", "t3", "t4"] {
            writer.cmd(&["SET", k, "1"]);
        }
        reader.cmd(&["MULTI"]);
        reader.cmd(&["GET", "t1"]);
        reader.cmd(&["GET", "t2"]);
        reader.cmd(&["EXEC"]);
        reader.cmd(&[
            "EVAL",
            "return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}",
            "2",
            "t3",
            "t4",
        ]);
        for k in ["t1", "t2", "t3", "t4"] {
            writer.cmd(&["SET", k, "2"]);
        }
        let mut got = messages_before_ping(&mut reader);
        let mut want: Vec<Value> = ["t1", "t2", "t3", "t4"]
            .iter()
            .map(|k| invalidate(&[k]))
            .collect();
        got.sort_by_key(|v| format!("{v:?}"));
        want.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(got, want, "{}", s.port);
        // A flush tells everyone to drop everything.
        reader.cmd(&["GET", "b"]);
        writer.cmd(&["FLUSHALL"]);
        let got = messages_before_ping(&mut reader);
        seen.push(got.clone());
        assert_eq!(
            got,
            vec![Value::Push(vec![Value::bulk("invalidate"), Value::Nil])]
        );
        let info = s.conn().cmd(&["INFO", "clients"]).text();
        assert!(info.contains("tracking_clients:1"), "{info}");
    }
}

/// NOLOOP holds for writes that move data between keys on different
/// shards too (RENAME, COPY, SMOVE, LMOVE, a STORE): the writer is never
/// told of its own changes, while another reader of the same keys is.
#[test]
fn noloop_covers_writes_that_span_shards_like_redis() {
    let ours = Server::start(&["--shards", "2"]);
    let redis = Server::start_redis(&[]);
    for s in [&ours, &redis] {
        let mut me = resp3(s);
        let mut other = resp3(s);
        assert_eq!(me.cmd(&["CLIENT", "TRACKING", "on", "noloop"]), Value::ok());
        assert_eq!(other.cmd(&["CLIENT", "TRACKING", "on"]), Value::ok());
        // Pairs of keys: with two shards some pairs span them, whatever
        // the hash.
        let pairs: Vec<(String, String)> = (0..8)
            .map(|i| (format!("src{i}"), format!("dst{i}")))
            .collect();
        let mut told = Vec::new();
        let mut writes = Vec::new();
        // Every key is set up and read by both clients before any write,
        // so that the other client's replies never interleave with its
        // invalidations.
        for (i, (src, dst)) in pairs.iter().enumerate() {
            let (src, dst) = (src.as_str(), dst.as_str());
            let (setup, read, write): (Vec<Vec<&str>>, &str, Vec<&str>) = match i % 4 {
                0 => (
                    vec![vec!["SET", src, "v"], vec!["SET", dst, "old"]],
                    "GET",
                    vec!["RENAME", src, dst],
                ),
                1 => (
                    vec![vec!["SET", src, "v"], vec!["SET", dst, "old"]],
                    "GET",
                    vec!["COPY", src, dst, "REPLACE"],
                ),
                2 => (
                    vec![vec!["SADD", src, "m", "n"], vec!["SADD", dst, "x"]],
                    "SMEMBERS",
                    vec!["SMOVE", src, dst, "m"],
                ),
                _ => (
                    vec![vec!["RPUSH", src, "a", "b"], vec!["RPUSH", dst, "c"]],
                    "LRANGE",
                    vec!["LMOVE", src, dst, "LEFT", "RIGHT"],
                ),
            };
            for c in &setup {
                me.cmd(c);
            }
            for k in [src, dst] {
                let read = if read == "LRANGE" {
                    vec![read, k, "0", "-1"]
                } else {
                    vec![read, k]
                };
                me.cmd(&read);
                other.cmd(&read);
            }
            writes.push(write);
            // COPY leaves its source alone.
            if i % 4 != 1 {
                told.push(src.to_string());
            }
            told.push(dst.to_string());
        }
        me.cmd(&["SADD", "u1", "a"]);
        me.cmd(&["SADD", "u2", "b"]);
        me.cmd(&["SMEMBERS", "u3"]);
        other.cmd(&["SMEMBERS", "u3"]);
        for w in &writes {
            let reply = me.cmd(w);
            assert!(!reply.is_error(), "{w:?}: {reply:?}");
        }
        // A STORE into a key read by both, from sources on any shard.
        me.cmd(&["SUNIONSTORE", "u3", "u1", "u2"]);
        told.push("u3".into());
        assert_eq!(messages_before_ping(&mut me), vec![], "{}", s.port);
        // The other reader hears of every key the writer changed.
        let mut got: Vec<String> = messages_before_ping(&mut other)
            .into_iter()
            .flat_map(|v| match v {
                Value::Push(parts) => match parts.into_iter().nth(1) {
                    Some(Value::Array(keys)) => keys.iter().map(Value::text).collect::<Vec<_>>(),
                    other => panic!("not an invalidation: {other:?}"),
                },
                other => panic!("not a push: {other:?}"),
            })
            .collect();
        got.sort();
        told.sort();
        assert_eq!(got, told, "{}", s.port);
    }
}

#[test]
fn optin_optout_and_bcast_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for s in [&ours, &redis] {
        let mut writer = s.conn();
        // OPTIN: only reads after CLIENT CACHING yes are remembered.
        let mut optin = resp3(s);
        optin.cmd(&["CLIENT", "TRACKING", "on", "optin"]);
        optin.cmd(&["GET", "x1"]);
        optin.cmd(&["CLIENT", "CACHING", "yes"]);
        optin.cmd(&["GET", "x2"]);
        optin.cmd(&["GET", "x3"]); // CACHING held for one command only
        for k in ["x1", "x2", "x3"] {
            writer.cmd(&["SET", k, "v"]);
        }
        assert_eq!(messages_before_ping(&mut optin), vec![invalidate(&["x2"])]);
        // OPTOUT: every read but those after CLIENT CACHING no.
        let mut optout = resp3(s);
        optout.cmd(&["CLIENT", "TRACKING", "on", "optout"]);
        optout.cmd(&["CLIENT", "CACHING", "no"]);
        optout.cmd(&["GET", "y1"]);
        optout.cmd(&["GET", "y2"]);
        for k in ["y1", "y2"] {
            writer.cmd(&["SET", k, "v"]);
        }
        assert_eq!(messages_before_ping(&mut optout), vec![invalidate(&["y2"])]);
        // BCAST: every change under a prefix, read or not.
        let mut bcast = resp3(s);
        bcast.cmd(&["CLIENT", "TRACKING", "on", "bcast", "prefix", "user:"]);
        writer.cmd(&["SET", "user:1", "v"]);
        writer.cmd(&["SET", "other", "v"]);
        writer.cmd(&["DEL", "user:1"]);
        assert_eq!(
            messages_before_ping(&mut bcast),
            vec![invalidate(&["user:1"]), invalidate(&["user:1"])]
        );
        let info = s.conn().cmd(&["INFO", "stats"]).text();
        assert!(info.contains("tracking_total_prefixes:1"), "{info}");
    }
}

#[test]
fn a_resp2_client_is_told_through_its_redirect_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for s in [&ours, &redis] {
        let mut target = s.conn();
        let id = target.cmd(&["CLIENT", "ID"]).int().to_string();
        target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        let mut reader = s.conn();
        assert_eq!(
            reader.cmd(&["CLIENT", "TRACKING", "on", "redirect", &id]),
            Value::ok()
        );
        assert_eq!(
            reader.cmd(&["CLIENT", "GETREDIR"]),
            Value::Int(id.parse().unwrap())
        );
        assert!(reader.cmd(&["CLIENT", "INFO"]).text().contains("flags=t "));
        reader.cmd(&["GET", "k"]);
        s.conn().cmd(&["SET", "k", "v"]);
        assert_eq!(
            next_message(&mut target),
            Value::Array(vec![
                Value::bulk("message"),
                Value::bulk("__redis__:invalidate"),
                Value::Array(vec![Value::bulk("k")])
            ])
        );
        // The target goes: a RESP3 reader is told its redirect broke.
        let mut reader3 = resp3(s);
        reader3.cmd(&["CLIENT", "TRACKING", "on", "redirect", &id]);
        reader3.cmd(&["GET", "k2"]);
        drop(target);
        common::wait_until(Duration::from_secs(10), "target gone", || {
            !s.conn()
                .cmd(&["CLIENT", "LIST"])
                .text()
                .contains(&format!("id={id} "))
        });
        s.conn().cmd(&["SET", "k2", "v"]);
        assert_eq!(
            messages_before_ping(&mut reader3),
            vec![Value::Push(vec![
                Value::bulk("tracking-redir-broken"),
                Value::Int(id.parse().unwrap())
            ])]
        );
    }
}

#[test]
fn the_tracking_table_keeps_to_its_limit_like_redis() {
    let ours = Server::start(&["--tracking-table-max-keys", "2"]);
    let redis = Server::start_redis(&["--tracking-table-max-keys", "2"]);
    for s in [&ours, &redis] {
        let mut reader = resp3(s);
        reader.cmd(&["CLIENT", "TRACKING", "on"]);
        // Pushes may come between the replies: keep only them.
        for k in ["m1", "m2", "m3", "m4", "m5"] {
            reader.send(&[b"GET", k.as_bytes()]);
        }
        let mut told = Vec::new();
        // The cron drops keys over the limit, telling their readers.
        common::wait_until(Duration::from_secs(10), "keys over the limit told", || {
            told.extend(messages_before_ping(&mut reader));
            told.retain(|m| matches!(m, Value::Push(_)));
            told.len() >= 3
        });
        assert!(
            told.iter()
                .all(|m| matches!(m, Value::Push(p) if p[0] == Value::bulk("invalidate"))),
            "{told:?}"
        );
        let keys = common::info_field(&mut s.conn(), "stats", "tracking_total_keys");
        assert!(keys.parse::<u64>().unwrap() <= 2, "{keys}");
    }
}

#[test]
fn a_reload_empties_tracking_caches_like_redis() {
    let args = ["--enable-debug-command", "yes"];
    let ours = Server::start(&args);
    let redis = Server::start_redis(&args);
    for s in [&ours, &redis] {
        let mut reader = resp3(s);
        reader.cmd(&["CLIENT", "TRACKING", "on"]);
        s.conn().cmd(&["SET", "k", "v"]);
        reader.cmd(&["GET", "k"]);
        assert_eq!(s.conn().cmd(&["DEBUG", "RELOAD"]), Value::ok());
        assert_eq!(
            messages_before_ping(&mut reader),
            vec![Value::Push(vec![Value::bulk("invalidate"), Value::Nil])]
        );
        // The reloaded key is not tracked any more.
        s.conn().cmd(&["SET", "k", "w"]);
        assert_eq!(messages_before_ping(&mut reader), vec![]);
        let keys = common::info_field(&mut s.conn(), "stats", "tracking_total_keys");
        assert_eq!(keys, "0");
    }
}

/// A client's write of a key it tracks is told to it before the reply to
/// its next command, also when the key lives on another shard than the
/// connection. The shard that runs the write used to push the
/// invalidations just after handing the reply back; with hundreds of
/// readers of the key ahead of ours, the reply to a following PING then
/// came first.
#[test]
fn an_own_write_is_told_before_the_next_reply_whatever_the_shard() {
    let server = Server::start(&["--shards", "2"]);
    let mut others: Vec<Conn> = (0..400).map(|_| resp3(&server)).collect();
    let mut reader = resp3(&server);
    assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), Value::ok());
    for c in &mut others {
        assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), Value::ok());
    }
    for round in 0..60 {
        let key = format!("k{round}");
        // The others read the key first, so ours is the last reader told.
        for c in &mut others {
            c.cmd(&["GET", &key]);
        }
        reader.cmd(&["GET", &key]);
        reader.cmd(&["SET", &key, "v"]);
        assert_eq!(
            messages_before_ping(&mut reader),
            vec![invalidate(&[&key])],
            "round {round}"
        );
        for c in &mut others {
            assert_eq!(messages_before_ping(c), vec![invalidate(&[&key])]);
        }
    }
}

/// Commands that only read a key (a store's sources) or change what
/// Redis does not signal (consumer groups, XSETID) tell no reader; a
/// real change still does. One shard, so a store's destination and its
/// sources share it.
#[test]
fn stores_and_group_bookkeeping_tell_no_reader_like_redis() {
    let ours = Server::start(&["--shards", "1"]);
    let redis = Server::start_redis(&[]);
    let steps: &[(&str, &str)] = &[
        ("SMEMBERS s", "SUNIONSTORE dst s"),
        ("SMEMBERS s", "SINTERSTORE dst s"),
        ("SMEMBERS s", "SDIFFSTORE dst s"),
        ("ZRANGE z 0 -1", "ZUNIONSTORE dst 1 z"),
        ("ZRANGE z 0 -1", "ZRANGESTORE dst z 0 -1"),
        ("XRANGE x - +", "XREADGROUP GROUP g c STREAMS x >"),
        ("XRANGE x - +", "XCLAIM x g c2 0 1-0"),
        ("XRANGE x - +", "XACK x g 1-0"),
        ("XRANGE x - +", "XGROUP CREATECONSUMER x g c3"),
        ("XRANGE x - +", "XSETID x 5-0"),
        ("SMEMBERS s", "SADD s 2"),
        ("XRANGE x - +", "XADD x 6-0 a b"),
    ];
    let mut seen = Vec::new();
    for s in [&ours, &redis] {
        let mut reader = resp3(s);
        let mut writer = s.conn();
        for line in [
            "SADD s 1",
            "ZADD z 1 m",
            "XADD x 1-0 a b",
            "XGROUP CREATE x g 0",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            assert!(!writer.cmd(&args).is_error(), "{line}");
        }
        assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), Value::ok());
        let mut told = Vec::new();
        for (read, write) in steps {
            reader.cmd(&read.split(' ').collect::<Vec<_>>());
            writer.cmd(&write.split(' ').collect::<Vec<_>>());
            told.push((write.to_string(), messages_before_ping(&mut reader)));
        }
        seen.push(told);
    }
    assert_eq!(seen[0], seen[1], "Cascade left, Redis right");
}
