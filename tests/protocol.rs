//! The wire protocol: pipelining, inline commands, RESP3, malformed input,
//! limits. No input may hurt the server or other clients.

mod common;
use common::{Conn, Server, Value};

/// A client that sends its last commands and closes its side at once
/// (`printf ... | nc -N`) gets every reply, then the end of the
/// connection: the hang-up arriving with the data must not be missed.
#[test]
fn commands_followed_by_a_half_close_are_answered_and_the_connection_ends() {
    let s = Server::start(&[]);
    for round in 0..10 {
        let mut c = s.conn();
        // An established, idle connection: the shard is waiting for input.
        assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.send_raw(b"SET k v\r\nGET k\r\n");
        c.stream_ref().shutdown(std::net::Shutdown::Write).unwrap();
        c.set_read_timeout(std::time::Duration::from_secs(10));
        let started = std::time::Instant::now();
        let rest = c.read_to_close();
        assert_eq!(rest, b"+OK\r\n$1\r\nv\r\n", "round {round}");
        // Closed by the server, not ended by our read timeout.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "round {round}: the server kept the connection open"
        );
    }
    // Only the connection asking is left.
    assert_eq!(s.info_field("clients", "connected_clients"), "1");
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let mut buf = Vec::new();
    for i in 0..10_000 {
        let k = format!("k{i}");
        if i % 2 == 0 {
            buf.extend(common::encode(&[b"SET", k.as_bytes(), k.as_bytes()]));
        } else {
            let prev = format!("k{}", i - 1);
            buf.extend(common::encode(&[b"GET", prev.as_bytes()]));
        }
    }
    c.send_raw(&buf);
    for i in 0..10_000 {
        let v = c.read();
        if i % 2 == 0 {
            assert_eq!(v, Value::ok(), "reply {i}");
        } else {
            assert_eq!(
                v,
                Value::bulk(&format!("k{}", i - 1)),
                "reply {i} out of order"
            );
        }
    }
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(5000));
}

#[test]
fn replies_larger_than_the_socket_buffer_reach_a_slow_reader_whole() {
    // The first part of such a reply goes out at once, the rest as the
    // reader drains its socket: nothing may be lost or repeated.
    let s = Server::start(&[]);
    let mut c = s.conn();
    let value: Vec<u8> = (0..24 << 20).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(c.cmdb(&[b"SET", b"big", &value]), Value::ok());
    let mut pipeline = Vec::new();
    for _ in 0..3 {
        pipeline.extend(common::encode(&[b"GET", b"big"]));
        pipeline.extend(common::encode(&[b"PING"]));
    }
    c.send_raw(&pipeline);
    // Let the server fill the socket and wait on it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..3 {
        assert!(
            c.read() == Value::Bulk(value.clone()),
            "the big reply differs"
        );
        assert_eq!(c.read().text(), "PONG");
    }
}

#[test]
fn inline_commands_with_quoting() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send_raw(b"PING\r\n");
    assert_eq!(c.read(), Value::Simple("PONG".into()));
    c.send_raw(b"SET \"a key\" 'it''s'\r\n");
    // 'it''s' is two adjacent quoted words without a space: an error.
    let v = c.read();
    assert!(v.is_error(), "{v:?}");
    let mut c = s.conn();
    c.send_raw(b"SET \"a key\" \"x\\ny\\x41\"\n");
    assert_eq!(c.read(), Value::ok());
    c.send_raw(b"GET \"a key\"\r\n");
    assert_eq!(c.read(), Value::Bulk(b"x\nyA".to_vec()));
    c.send_raw(b"\r\n   \r\nPING\r\n");
    assert_eq!(c.read(), Value::Simple("PONG".into()));
}

fn protocol_error(input: &[u8]) -> String {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send_raw(input);
    let out = c.read_to_close();
    // The server is still fine for everyone else.
    assert_eq!(s.conn().cmd(&["PING"]), Value::Simple("PONG".into()));
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn malformed_input_gets_redis_errors_and_closes() {
    assert_eq!(
        protocol_error(b"*abc\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        protocol_error(b"*1\r\n$-5\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        protocol_error(b"*1\r\nfoo\r\n"),
        "-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    assert_eq!(
        protocol_error(b"SET \"unbalanced\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert_eq!(
        protocol_error(b"*1\r\n$9999999999\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
}

#[test]
fn proto_max_bulk_len_is_enforced() {
    let s = Server::start(&["--proto-max-bulk-len", "1mb"]);
    let mut c = s.conn();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    let out = String::from_utf8_lossy(&c.read_to_close()).into_owned();
    assert_eq!(out, "-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn garbage_never_hurts_other_clients() {
    let s = Server::start(&["--shards", "2"]);
    let mut good = s.conn();
    good.cmd(&["SET", "k", "v"]);
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..200 {
        let mut bad = Conn::connect(s.port);
        let mut junk = Vec::new();
        for _ in 0..(round % 50 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(match seed % 8 {
                0 => b'*',
                1 => b'$',
                2 => b'\r',
                3 => b'\n',
                4 => b'-',
                _ => (seed >> 8) as u8,
            });
        }
        bad.send_raw(&junk);
        drop(bad);
    }
    assert_eq!(good.cmd(&["GET", "k"]), Value::bulk("v"));
}

#[test]
fn unknown_command_and_arity_errors() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["FOOBAR", "a", "b"]),
        Value::Error("ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' ".into())
    );
    assert_eq!(
        c.cmd(&["FOOBAR"]),
        Value::Error("ERR unknown command 'FOOBAR', with args beginning with: ".into())
    );
    assert_eq!(
        c.cmd(&["SET", "x"]),
        Value::Error("ERR wrong number of arguments for 'set' command".into())
    );
}

#[test]
fn resp3_via_hello() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let hello = c.cmd(&["HELLO", "3"]);
    let Value::Map(fields) = hello else {
        panic!("HELLO 3 must answer a map: {hello:?}")
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.text() == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("proto"), Value::Int(3));
    assert_eq!(get("server"), Value::bulk("redis"));
    assert_eq!(get("role"), Value::bulk("master"));
    assert_eq!(c.cmd(&["GET", "missing"]), Value::Nil);
    c.cmd(&["SET", "k", "v"]);
    assert!(matches!(c.cmd(&["CONFIG", "GET", "port"]), Value::Map(_)));
    assert!(matches!(c.cmd(&["INFO", "server"]), Value::Verbatim(_)));
    assert_eq!(
        c.cmd(&["HELLO", "4"]),
        Value::Error("NOPROTO unsupported protocol version".into())
    );
    let back = c.cmd(&["HELLO", "2"]);
    assert!(matches!(back, Value::Array(_)));
    assert!(matches!(c.cmd(&["INFO", "server"]), Value::Bulk(_)));
}

#[test]
fn client_reply_modes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send_raw(&common::encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    c.send_raw(&common::encode(&[b"SET", b"a", b"1"]));
    c.send_raw(&common::encode(&[b"CLIENT", b"REPLY", b"ON"]));
    assert_eq!(c.read(), Value::ok());
    c.send_raw(&common::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    c.send_raw(&common::encode(&[b"GET", b"a"]));
    c.send_raw(&common::encode(&[b"PING"]));
    assert_eq!(c.read(), Value::Simple("PONG".into()));
    assert_eq!(c.cmd(&["GET", "a"]), Value::bulk("1"));
}

#[test]
fn quit_closes_after_ok() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send_raw(&common::encode(&[b"QUIT"]));
    assert_eq!(c.read_to_close(), b"+OK\r\n".to_vec());
}

#[test]
fn a_pipeline_spanning_shards_keeps_reply_and_per_key_order() {
    // Plain keyed commands of one read go to each shard in one message;
    // everything else runs alone. Mixed here: local and remote keys, a
    // counter hammered from the whole pipeline, errors of every stage,
    // SELECT and CLIENT REPLY in the middle.
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let mut buf = Vec::new();
    // `None`: no reply expected; `Some(None)`: any integer.
    let mut expected: Vec<Option<Value>> = Vec::new();
    let mut push = |buf: &mut Vec<u8>, args: &[&[u8]], reply: Option<Option<Value>>| {
        buf.extend(common::encode(args));
        if let Some(r) = reply {
            expected.push(r);
        }
    };
    for i in 0..3000 {
        let k = format!("k{i}");
        match i % 10 {
            0 => push(
                &mut buf,
                &[b"SET", k.as_bytes(), k.as_bytes()],
                Some(Some(Value::ok())),
            ),
            1 => push(
                &mut buf,
                &[b"INCR", b"counter"],
                Some(Some(Value::Int(i / 10 + 1))),
            ),
            2 => {
                let prev = format!("k{}", i - 2);
                push(
                    &mut buf,
                    &[b"GET", prev.as_bytes()],
                    Some(Some(Value::bulk(&prev))),
                )
            }
            3 => push(
                &mut buf,
                &[b"LPUSH", format!("k{}", i - 3).as_bytes(), b"x"],
                Some(Some(Value::Error(
                    "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
                ))),
            ),
            4 => push(
                &mut buf,
                &[b"GET"],
                Some(Some(Value::Error(
                    "ERR wrong number of arguments for 'get' command".into(),
                ))),
            ),
            5 => push(&mut buf, &[b"SELECT", b"1"], Some(Some(Value::ok()))),
            6 => push(
                &mut buf,
                &[b"SET", k.as_bytes(), b"in-db1"],
                Some(Some(Value::ok())),
            ),
            7 => push(&mut buf, &[b"SELECT", b"0"], Some(Some(Value::ok()))),
            8 => {
                // The skipped reply is the next command's (EXISTS).
                push(&mut buf, &[b"CLIENT", b"REPLY", b"SKIP"], None);
                push(&mut buf, &[b"EXISTS", k.as_bytes()], None);
            }
            // List lengths are checked through the lists' contents below.
            _ => push(
                &mut buf,
                &[b"RPUSH", format!("list{}", i % 7).as_bytes(), k.as_bytes()],
                Some(None),
            ),
        }
    }
    c.send_raw(&buf);
    for (n, want) in expected.iter().enumerate() {
        let got = c.read();
        match want {
            Some(want) => assert_eq!(&got, want, "reply {n}"),
            None => assert!(matches!(got, Value::Int(_)), "reply {n}: {got:?}"),
        }
    }
    assert_eq!(c.cmd(&["GET", "counter"]), Value::bulk("300"));
    // Each list got its elements in request order.
    for l in 0..7 {
        let name = format!("list{l}");
        let got = c.cmd(&["LRANGE", &name, "0", "-1"]);
        let want: Vec<Value> = (0..3000)
            .filter(|i| i % 10 == 9 && i % 7 == l)
            .map(|i| Value::bulk(&format!("k{i}")))
            .collect();
        assert_eq!(got.array(), &want[..], "{name}");
    }
    assert_eq!(c.cmd(&["SELECT", "1"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "k6"]), Value::bulk("in-db1"));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(300));
    // Every batched command was counted once, the rejected ones apart.
    let stats = c.cmd(&["INFO", "commandstats"]).text();
    let line = |name: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
            .to_string()
    };
    assert!(line("set").contains("calls=600,"), "{}", line("set"));
    assert!(line("incr").contains("calls=300,"), "{}", line("incr"));
    assert!(line("get").contains("calls=300,"), "{}", line("get"));
    assert!(
        line("get").contains("rejected_calls=300,"),
        "{}",
        line("get")
    );
    assert!(
        line("lpush").contains("failed_calls=300"),
        "{}",
        line("lpush")
    );
}

/// An inline line sent at once is judged as Redis judges it: taken when
/// its end came within the read that crossed the 64 KB limit, refused
/// (and the connection closed) when no end is in sight past the limit.
#[test]
fn long_inline_lines_are_judged_like_redis() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let value = "x".repeat(66_000);
    c.send_raw(format!("SET big {value}\r\n").as_bytes());
    assert_eq!(c.read(), Value::Simple("OK".into()));
    assert_eq!(c.cmd(&["STRLEN", "big"]), Value::Int(66_000));
    let too_long = vec![b'a'; 100_000];
    assert_eq!(
        protocol_error(&too_long),
        "-ERR Protocol error: too big inline request\r\n"
    );
}
