//! Pub/sub against the real binary with two shards: delivery between
//! connections on any shards, patterns, RESP2 subscribed mode and RESP3
//! pushes, PUBSUB introspection, the pubsub output buffer limit, redis-cli
//! as a subscriber, and PUBLISH reaching replicas' subscribers.

mod common;
use common::{info_field, require_tool, Conn, Server, Value};
use std::io::BufRead;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn start(extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn b(s: &str) -> Value {
    Value::bulk(s)
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn confirm(kind: &str, name: &str, n: i64) -> Value {
    arr(vec![b(kind), b(name), Value::Int(n)])
}

fn message(ch: &str, payload: &str) -> Value {
    arr(vec![b("message"), b(ch), b(payload)])
}

/// Waits until `channel` has `n` subscribers.
fn wait_numsub(c: &mut Conn, channel: &str, n: i64) {
    common::wait_until(DEADLINE, "subscribers registered", || {
        c.cmd(&["PUBSUB", "NUMSUB", channel]).array()[1].int() == n
    });
}

#[test]
fn publish_reaches_subscribers_on_every_shard() {
    let s = start(&[]);
    // Many connections: SO_REUSEPORT spreads them over both shards.
    let mut subs: Vec<Conn> = (0..8).map(|_| s.conn()).collect();
    for c in subs.iter_mut() {
        c.send(&[b"SUBSCRIBE", b"news", b"other"]);
        assert_eq!(c.read(), confirm("subscribe", "news", 1));
        assert_eq!(c.read(), confirm("subscribe", "other", 2));
    }
    let mut publishers: Vec<Conn> = (0..4).map(|_| s.conn()).collect();
    for (i, p) in publishers.iter_mut().enumerate() {
        let payload = format!("hello {i}");
        assert_eq!(p.cmd(&["PUBLISH", "news", &payload]).int(), 8);
        for c in subs.iter_mut() {
            assert_eq!(c.read(), message("news", &payload));
        }
    }
    assert_eq!(publishers[0].cmd(&["PUBLISH", "nobody", "x"]).int(), 0);
    // Messages keep their order per publisher.
    for i in 0..50 {
        publishers[1].cmd(&["PUBLISH", "other", &i.to_string()]);
    }
    for c in subs.iter_mut() {
        for i in 0..50 {
            assert_eq!(c.read(), message("other", &i.to_string()));
        }
    }
    // Closing a subscriber removes it.
    drop(subs.pop());
    wait_numsub(&mut publishers[0], "news", 7);
}

#[test]
fn patterns_and_resp2_subscribed_mode() {
    let s = start(&[]);
    let mut c = s.conn();
    let mut p = s.conn();
    c.send(&[b"PSUBSCRIBE", b"n*", b"x?"]);
    assert_eq!(c.read(), confirm("psubscribe", "n*", 1));
    assert_eq!(c.read(), confirm("psubscribe", "x?", 2));
    c.send(&[b"SUBSCRIBE", b"news"]);
    assert_eq!(c.read(), confirm("subscribe", "news", 3));
    // A channel and a matching pattern: two deliveries.
    assert_eq!(p.cmd(&["PUBLISH", "news", "hi"]).int(), 2);
    assert_eq!(c.read(), message("news", "hi"));
    assert_eq!(
        c.read(),
        arr(vec![b("pmessage"), b("n*"), b("news"), b("hi")])
    );
    assert_eq!(p.cmd(&["PUBLISH", "xy", "1"]).int(), 1);
    assert_eq!(c.read(), arr(vec![b("pmessage"), b("x?"), b("xy"), b("1")]));
    assert_eq!(p.cmd(&["PUBLISH", "xyz", "1"]).int(), 0);
    // Only a few commands in RESP2 subscribed mode.
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Value::Error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".into())
    );
    assert_eq!(c.cmd(&["PING"]), arr(vec![b("pong"), b("")]));
    assert_eq!(c.cmd(&["PING", "x"]), arr(vec![b("pong"), b("x")]));
    // Introspection.
    let flags = p.cmd(&["CLIENT", "LIST"]).text();
    assert!(flags.contains("flags=P db=0 sub=1 psub=2"), "{flags}");
    assert_eq!(p.cmd(&["PUBSUB", "NUMPAT"]).int(), 2);
    assert_eq!(
        p.cmd(&["PUBSUB", "NUMSUB", "news", "none"]),
        arr(vec![b("news"), Value::Int(1), b("none"), Value::Int(0)])
    );
    assert_eq!(p.cmd(&["PUBSUB", "CHANNELS"]), arr(vec![b("news")]));
    assert_eq!(p.cmd(&["PUBSUB", "CHANNELS", "z*"]), arr(vec![]));
    assert_eq!(info_field(&mut p, "stats", "pubsub_channels"), "1");
    assert_eq!(info_field(&mut p, "stats", "pubsub_patterns"), "2");
    assert!(p.cmd(&["PUBSUB", "NOPE"]).is_error());
    // Unsubscribing from everything: one reply per name, then normal mode.
    c.send(&[b"PUNSUBSCRIBE"]);
    let mut got = [c.read(), c.read()];
    got.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(got[0].array()[0], b("punsubscribe"));
    assert_eq!(got.iter().map(|v| v.array()[2].int()).min(), Some(1));
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), confirm("unsubscribe", "news", 0));
    assert_eq!(
        c.cmd(&["UNSUBSCRIBE"]),
        arr(vec![b("unsubscribe"), Value::Nil, Value::Int(0)])
    );
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Value::Nil);
    assert_eq!(p.cmd(&["PUBSUB", "NUMPAT"]).int(), 0);
    let flags = p.cmd(&["CLIENT", "LIST"]).text();
    assert!(!flags.contains("flags=P"), "{flags}");
    // RESET ends subscriptions too.
    c.send(&[b"SUBSCRIBE", b"a"]);
    c.read();
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    assert_eq!(p.cmd(&["PUBLISH", "a", "x"]).int(), 0);
    // PUBLISH inside a transaction.
    c.send(&[b"SUBSCRIBE", b"t"]);
    c.read();
    assert_eq!(p.cmd(&["MULTI"]), Value::ok());
    p.cmd(&["PUBLISH", "t", "in-exec"]);
    assert_eq!(p.cmd(&["EXEC"]), arr(vec![Value::Int(1)]));
    assert_eq!(c.read(), message("t", "in-exec"));
}

#[test]
fn resp3_pushes_and_commands_while_subscribed() {
    let s = start(&[]);
    let mut c = s.conn();
    let mut p = s.conn();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Value::Map(_)));
    c.send(&[b"SUBSCRIBE", b"ch"]);
    assert_eq!(
        c.read(),
        Value::Push(vec![b("subscribe"), b("ch"), Value::Int(1)])
    );
    // Normal commands work while subscribed.
    assert_eq!(c.cmd(&["SET", "k", "v"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(p.cmd(&["PUBLISH", "ch", "m"]).int(), 1);
    assert_eq!(c.read(), Value::Push(vec![b("message"), b("ch"), b("m")]));
    c.send(&[b"UNSUBSCRIBE"]);
    assert_eq!(
        c.read(),
        Value::Push(vec![b("unsubscribe"), b("ch"), Value::Int(0)])
    );
    c.send(&[b"UNSUBSCRIBE"]);
    let mut line = String::new();
    c.reader.read_line(&mut line).unwrap();
    assert_eq!(line, ">3\r\n");
}

#[test]
fn a_subscriber_over_its_output_limit_is_closed() {
    let s = start(&[]);
    let mut p = s.conn();
    assert_eq!(
        p.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 128kb 60"
        ]),
        Value::ok()
    );
    // A subscriber that never reads its socket.
    let mut slow = s.conn();
    slow.send(&[b"SUBSCRIBE", b"flood"]);
    assert_eq!(slow.read(), confirm("subscribe", "flood", 1));
    // And one that keeps up with a small flow on another channel.
    let mut fine = s.conn();
    fine.send(&[b"SUBSCRIBE", b"calm"]);
    fine.read();
    let payload = "x".repeat(64 * 1024);
    let end = Instant::now() + DEADLINE;
    let mut sent = 0;
    while p.cmd(&["PUBLISH", "flood", &payload]).int() == 1 {
        sent += 1;
        assert!(
            Instant::now() < end,
            "never disconnected after {sent} messages"
        );
        if sent % 50 == 0 {
            p.cmd(&["PUBLISH", "calm", "tick"]);
            assert_eq!(fine.read(), message("calm", "tick"));
        }
    }
    common::wait_until(DEADLINE, "log line", || {
        s.log_text()
            .contains("scheduled to be closed ASAP for overcoming of output buffer limits.")
    });
    assert!(s.log_text().contains("cmd=subscribe"), "{}", s.log_text());
    // The slow subscriber's socket is closed (after what was buffered).
    slow.set_read_timeout(Duration::from_secs(10));
    let _ = slow.read_to_close();
    assert_eq!(p.cmd(&["PUBLISH", "calm", "still"]).int(), 1);
}

#[test]
fn redis_cli_as_a_subscriber() {
    let cli = require_tool("redis-cli");
    let s = start(&[]);
    let mut child = std::process::Command::new(cli)
        .args(["-p", &s.port.to_string(), "subscribe", "__sentinel__:hello"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut p = s.conn();
    wait_numsub(&mut p, "__sentinel__:hello", 1);
    assert_eq!(
        p.cmd(&["PUBLISH", "__sentinel__:hello", "127.0.0.1,26379,runid,0"])
            .int(),
        1
    );
    let end = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l == "127.0.0.1,26379,runid,0")
    {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("redis-cli printed {lines:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(
        text.contains("subscribe\n__sentinel__:hello\n1\nmessage\n__sentinel__:hello\n127.0.0.1,26379,runid,0"),
        "{text}"
    );
}

#[test]
fn publish_reaches_subscribers_of_replicas() {
    require_tool("redis-server");
    let master = start(&[]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let redis = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    for r in [&ours, &redis] {
        common::wait_until(DEADLINE, "link up", || {
            info_field(&mut r.conn(), "replication", "master_link_status") == "up"
        });
    }
    let mut subs = Vec::new();
    for r in [&ours, &redis] {
        let mut c = r.conn();
        c.send(&[b"PSUBSCRIBE", b"__sentinel__:*"]);
        c.read();
        subs.push(c);
    }
    let mut p = master.conn();
    // Not subscribed on the master itself: 0 receivers there.
    assert_eq!(p.cmd(&["PUBLISH", "__sentinel__:hello", "hi"]).int(), 0);
    for c in subs.iter_mut() {
        assert_eq!(
            c.read(),
            arr(vec![
                b("pmessage"),
                b("__sentinel__:*"),
                b("__sentinel__:hello"),
                b("hi")
            ])
        );
    }
    // A replica publishes to its own subscribers (PUBLISH is no write).
    let mut on_replica = ours.conn();
    assert_eq!(
        on_replica
            .cmd(&["PUBLISH", "__sentinel__:x", "local"])
            .int(),
        1
    );
    assert_eq!(subs[0].read().array()[3], b("local"));
}

#[test]
fn a_subscribe_confirmation_precedes_the_channel_s_messages() {
    // A publisher floods the channel while clients subscribe: each one's
    // first reply is still its confirmation, then only messages.
    let s = start(&[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (stop, port) = (stop.clone(), s.port);
        std::thread::spawn(move || {
            let mut p = common::Conn::connect(port);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                p.cmd(&["PUBLISH", "flood", "m"]);
            }
        })
    };
    for _ in 0..40 {
        let mut c = s.conn();
        let first = c.cmd(&["SUBSCRIBE", "flood"]);
        assert_eq!(
            first,
            Value::Array(vec![
                Value::Bulk(b"subscribe".to_vec()),
                Value::Bulk(b"flood".to_vec()),
                Value::Int(1)
            ])
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    publisher.join().unwrap();
}

/// Runs the same subscriber session on Cascade and on redis-server: each
/// step sends a command on the subscriber or on a publisher connection,
/// then reads what the subscriber got, and both servers must agree.
fn same_session(proto: &str) {
    let ours = start(&[]);
    let redis = Server::start_redis(&[]);
    let mut sides: Vec<(Conn, Conn)> = [&ours, &redis]
        .iter()
        .map(|s| (s.conn(), s.conn()))
        .collect();
    for (sub, _) in sides.iter_mut() {
        assert!(!sub.cmd(&["HELLO", proto]).is_error());
    }
    // (on the subscriber?, command, replies the subscriber then reads)
    let steps: &[(bool, &[&str], usize)] = &[
        (true, &["SSUBSCRIBE", "a", "b"], 1),
        (true, &["SUBSCRIBE", "c"], 0),
        (true, &["SSUBSCRIBE", "a"], 0),
        (false, &["SPUBLISH", "a", "hello"], 1),
        (false, &["PUBLISH", "a", "not shard"], 0),
        (false, &["SPUBLISH", "c", "not global"], 0),
        (false, &["PUBLISH", "c", "global"], 1),
        (false, &["PUBSUB", "SHARDCHANNELS"], 0),
        (false, &["PUBSUB", "SHARDCHANNELS", "a*"], 0),
        (false, &["PUBSUB", "SHARDNUMSUB", "a", "b", "z"], 0),
        (false, &["PUBSUB", "NUMSUB", "a", "c"], 0),
        (false, &["PUBSUB", "CHANNELS"], 0),
        (false, &["SPUBLISH", "a"], 0),
        (false, &["SSUBSCRIBE"], 0),
        (true, &["SUNSUBSCRIBE", "a", "zz"], 1),
        (true, &["SUNSUBSCRIBE"], 0),
        (true, &["SUNSUBSCRIBE"], 0),
        (true, &["UNSUBSCRIBE"], 0),
        (true, &["SUNSUBSCRIBE", "q"], 0),
    ];
    for (on_sub, cmd, extra) in steps {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let mut got = Vec::new();
        for (sub, publisher) in sides.iter_mut() {
            let mut replies = Vec::new();
            if *on_sub {
                sub.send(&args);
                replies.push(sub.read());
            } else {
                let mut r = publisher.cmdb(&args);
                if let Value::Array(items) = &mut r {
                    // Channel lists come in any order.
                    items.sort_by_key(|v| format!("{v:?}"));
                }
                replies.push(r);
            }
            for _ in 0..*extra {
                replies.push(sub.read());
            }
            got.push(replies);
        }
        assert_eq!(got[0], got[1], "{cmd:?} (Cascade left, Redis right)");
    }
    // RESP2: only the pub/sub commands, PING, QUIT and RESET while subscribed.
    let (sub, _) = &mut sides[0];
    sub.send(&[b"SSUBSCRIBE", b"x"]);
    sub.read();
    if proto == "2" {
        assert!(sub.cmd(&["GET", "k"]).is_error());
    }
    let line = sides[0].1.cmd(&["CLIENT", "LIST"]).text();
    assert!(line.contains("ssub=1"), "{line}");
}

#[test]
fn sharded_pubsub_behaves_like_redis_in_resp2_and_resp3() {
    same_session("2");
    same_session("3");
}

#[test]
fn spublish_reaches_shard_subscribers_of_replicas() {
    require_tool("redis-server");
    let master = start(&[]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let redis = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    let mut subs = Vec::new();
    for r in [&ours, &redis] {
        common::wait_until(DEADLINE, "link up", || {
            info_field(&mut r.conn(), "replication", "master_link_status") == "up"
        });
        let mut c = r.conn();
        c.send(&[b"SSUBSCRIBE", b"orders"]);
        assert_eq!(c.read(), confirm("ssubscribe", "orders", 1));
        subs.push(c);
    }
    assert_eq!(master.conn().cmd(&["SPUBLISH", "orders", "o1"]).int(), 0);
    for c in subs.iter_mut() {
        assert_eq!(c.read(), arr(vec![b("smessage"), b("orders"), b("o1")]));
    }
}

#[test]
fn sharded_pubsub_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&["ssubscribe", "sunsubscribe", "spublish"]);
}
