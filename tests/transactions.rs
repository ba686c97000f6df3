//! MULTI/EXEC/DISCARD/WATCH against the real binary with two shards: Redis
//! 7.0's replies, WATCH aborts (other clients, expiry, flushes), atomicity
//! across shards, and the transaction's place in the replication stream
//! (one contiguous MULTI ... EXEC unit, applied by Cascade and redis-server
//! replicas alike).

mod common;
use cascade::shard::route::shard_of;
use common::{info_field, require_tool, Conn, Server, Value};
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn start() -> Server {
    Server::start(&["--shards", "2", "--enable-debug-command", "yes"])
}

/// A key named `<prefix><n>` owned by `shard` (of 2).
fn key_on(shard: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| shard_of(k.as_bytes(), 2) == shard)
        .expect("some key maps to each shard")
}

fn queued() -> Value {
    Value::Simple("QUEUED".into())
}

fn err(v: &Value) -> String {
    match v {
        Value::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn queueing_and_exec_replies() {
    let s = start();
    let mut c = s.conn();
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    assert_eq!(err(&c.cmd(&["EXEC"])), "ERR EXEC without MULTI");
    assert_eq!(err(&c.cmd(&["DISCARD"])), "ERR DISCARD without MULTI");
    let id = c.cmd(&["CLIENT", "ID"]).int().to_string();
    let mut other = s.conn();
    let multi_field = |other: &mut Conn| {
        let line = other.cmd(&["CLIENT", "LIST", "ID", &id]).text();
        line.split(' ')
            .find_map(|f| f.strip_prefix("multi="))
            .unwrap()
            .to_string()
    };
    assert_eq!(multi_field(&mut other), "-1");
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(multi_field(&mut other), "0");
    assert_eq!(err(&c.cmd(&["MULTI"])), "ERR MULTI calls can not be nested");
    assert_eq!(
        err(&c.cmd(&["WATCH", "x"])),
        "ERR WATCH inside MULTI is not allowed"
    );
    assert_eq!(c.cmd(&["SET", &a, "1"]), queued());
    assert_eq!(c.cmd(&["INCR", &a]), queued());
    assert_eq!(c.cmd(&["MSET", &a, "10", &b, "20"]), queued());
    assert_eq!(c.cmd(&["MGET", &a, &b]), queued());
    assert_eq!(c.cmd(&["PING"]), queued());
    assert_eq!(c.cmd(&["DBSIZE"]), queued());
    assert_eq!(c.cmd(&["WAIT", "1", "0"]), queued()); // never blocks in EXEC
    assert_eq!(multi_field(&mut other), "7");
    // Nothing ran yet.
    assert_eq!(other.cmd(&["EXISTS", &a]).int(), 0);
    // Neither nested MULTI nor WATCH flagged the transaction.
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Array(vec![
            Value::ok(),
            Value::Int(2),
            Value::ok(),
            Value::Array(vec![Value::bulk("10"), Value::bulk("20")]),
            Value::Simple("PONG".into()),
            Value::Int(2),
            Value::Int(0),
        ])
    );
    assert_eq!(multi_field(&mut other), "-1");
    // An empty transaction.
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["EXEC"]), Value::Array(vec![]));
    // DISCARD drops the queue.
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["SET", &a, "discarded"]), queued());
    assert_eq!(c.cmd(&["DISCARD"]), Value::ok());
    assert_eq!(c.cmd(&["GET", &a]), Value::bulk("10"));
    // SELECT inside a transaction changes the database for what follows.
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["SELECT", "3"]), queued());
    assert_eq!(c.cmd(&["SET", &a, "in3"]), queued());
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Array(vec![Value::ok(), Value::ok()])
    );
    assert_eq!(c.cmd(&["GET", &a]), Value::bulk("in3"));
    // Commands counted as having run.
    let stats = c.cmd(&["INFO", "commandstats"]).text();
    assert!(stats.contains("cmdstat_incr:calls=1,"), "{stats}");
    assert!(stats.contains("cmdstat_exec:calls=4,"), "{stats}");
}

#[test]
fn errors_while_queueing_abort_exec_and_runtime_errors_do_not() {
    let s = start();
    let mut c = s.conn();
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(
        err(&c.cmd(&["SET", &a])),
        "ERR wrong number of arguments for 'set' command"
    );
    assert!(err(&c.cmd(&["NOSUCH", "x"])).starts_with("ERR unknown command 'NOSUCH'"));
    assert_eq!(c.cmd(&["SET", &b, "1"]), queued());
    assert_eq!(
        err(&c.cmd(&["EXEC"])),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(c.cmd(&["EXISTS", &b]).int(), 0);
    // A no_multi command is refused and flags the transaction too.
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(
        err(&c.cmd(&["SAVE"])),
        "ERR Command not allowed inside a transaction"
    );
    assert!(err(&c.cmd(&["EXEC"])).starts_with("EXECABORT"));
    // Runtime errors are returned in place; the rest runs.
    c.cmd(&["SET", &a, "text"]);
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["INCR", &a]), queued());
    assert_eq!(c.cmd(&["SET", &b, "2"]), queued());
    assert_eq!(c.cmd(&["INCRBYFLOAT", &b, "abc"]), queued());
    let r = c.cmd(&["EXEC"]);
    let items = r.array();
    assert_eq!(items.len(), 3);
    assert_eq!(
        err(&items[0]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(items[1], Value::ok());
    assert!(items[2].is_error(), "{:?}", items[2]);
    assert_eq!(c.cmd(&["GET", &b]), Value::bulk("2"));
}

#[test]
fn watch_aborts_on_changes_by_anyone_anywhere() {
    let s = start();
    let mut c = s.conn();
    let mut other = s.conn();
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    let exec_with = |c: &mut Conn, key: &str| {
        assert_eq!(c.cmd(&["MULTI"]), Value::ok());
        assert_eq!(c.cmd(&["INCR", key]), queued());
        c.cmd(&["EXEC"])
    };
    // Unchanged: EXEC runs.
    c.cmd(&["SET", &a, "1"]);
    assert_eq!(c.cmd(&["WATCH", &a, &b]), Value::ok());
    assert_eq!(exec_with(&mut c, &a), Value::Array(vec![Value::Int(2)]));
    // Changed by another client, on either shard.
    for key in [&a, &b] {
        assert_eq!(c.cmd(&["WATCH", &a, &b]), Value::ok());
        other.cmd(&["SET", key, "5"]);
        assert_eq!(exec_with(&mut c, &a), Value::Nil, "after a write to {key}");
    }
    // EXEC unwatched everything: a later change does not matter.
    assert_eq!(c.cmd(&["WATCH", &a]), Value::ok());
    assert_eq!(exec_with(&mut c, &a), Value::Array(vec![Value::Int(6)]));
    other.cmd(&["SET", &a, "1"]);
    assert_eq!(exec_with(&mut c, &a), Value::Array(vec![Value::Int(2)]));
    // Changed by the watcher itself.
    assert_eq!(c.cmd(&["WATCH", &b]), Value::ok());
    c.cmd(&["DEL", &b]);
    assert_eq!(exec_with(&mut c, &a), Value::Nil);
    // UNWATCH and DISCARD forget the watches.
    assert_eq!(c.cmd(&["WATCH", &b]), Value::ok());
    assert_eq!(c.cmd(&["UNWATCH"]), Value::ok());
    other.cmd(&["SET", &b, "x"]);
    assert_eq!(exec_with(&mut c, &a).array().len(), 1);
    assert_eq!(c.cmd(&["WATCH", &b]), Value::ok());
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["DISCARD"]), Value::ok());
    other.cmd(&["SET", &b, "y"]);
    assert_eq!(exec_with(&mut c, &a).array().len(), 1);
    // Deleting a missing key, or writing another db, is no change.
    assert_eq!(c.cmd(&["WATCH", "missing", &a]), Value::ok());
    other.cmd(&["DEL", "missing"]);
    other.cmd(&["SELECT", "1"]);
    other.cmd(&["SET", &a, "db1"]);
    assert_eq!(exec_with(&mut c, &a).array().len(), 1);
    // Creating a watched key is a change.
    assert_eq!(c.cmd(&["WATCH", "missing"]), Value::ok());
    other.cmd(&["SELECT", "0"]);
    other.cmd(&["SET", "missing", "now"]);
    assert_eq!(exec_with(&mut c, &a), Value::Nil);
    // WATCH with no transaction queued still checks (empty EXEC).
    assert_eq!(c.cmd(&["WATCH", &a]), Value::ok());
    other.cmd(&["SET", &a, "1"]);
    assert_eq!(c.cmd(&["MULTI"]), Value::ok());
    assert_eq!(c.cmd(&["EXEC"]), Value::Nil);
    // RESP3 answers a null.
    let mut r3 = s.conn();
    assert!(matches!(r3.cmd(&["HELLO", "3"]), Value::Map(_)));
    assert_eq!(r3.cmd(&["WATCH", &b]), Value::ok());
    other.cmd(&["SET", &b, "z"]);
    assert_eq!(r3.cmd(&["MULTI"]), Value::ok());
    r3.send_raw(b"*1\r\n$4\r\nEXEC\r\n");
    let mut line = String::new();
    r3.reader.read_line(&mut line).unwrap();
    assert_eq!(line, "_\r\n");
}

#[test]
fn watch_aborts_on_expiry_and_flushes() {
    let s = start();
    let mut c = s.conn();
    let mut other = s.conn();
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    let exec = |c: &mut Conn| {
        assert_eq!(c.cmd(&["MULTI"]), Value::ok());
        assert_eq!(c.cmd(&["PING"]), queued());
        c.cmd(&["EXEC"])
    };
    // A key that expires while watched aborts the EXEC.
    c.cmd(&["SET", &a, "v", "PX", "50"]);
    assert_eq!(c.cmd(&["WATCH", &a]), Value::ok());
    common::wait_until(DEADLINE, "key expired", || {
        other.cmd(&["EXISTS", &a]).int() == 0
    });
    assert_eq!(exec(&mut c), Value::Nil);
    // FLUSHALL and FLUSHDB touch watched keys that exist.
    for flush in [
        &["FLUSHALL"][..],
        &["FLUSHDB"][..],
        &["SWAPDB", "0", "1"][..],
    ] {
        c.cmd(&["SET", &a, "1"]);
        c.cmd(&["SET", &b, "1"]);
        assert_eq!(c.cmd(&["WATCH", &b]), Value::ok());
        other.cmd(flush);
        assert_eq!(exec(&mut c), Value::Nil, "after {flush:?}");
    }
    // Flushing a database without the watched key does not.
    c.cmd(&["SET", &a, "1"]);
    assert_eq!(c.cmd(&["WATCH", &a]), Value::ok());
    other.cmd(&["SELECT", "5"]);
    other.cmd(&["FLUSHDB"]);
    assert_eq!(exec(&mut c).array().len(), 1);
}

#[test]
fn transactions_are_atomic_across_shards() {
    let s = start();
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    let mut c = s.conn();
    c.cmd(&["MSET", &a, "0", &b, "0"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (a, b, port) = (a.clone(), b.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for _ in 0..300 {
                    // Pipelined: the whole transaction in one write.
                    let mut req = common::encode(&[b"MULTI"]);
                    req.extend(common::encode(&[b"INCR", a.as_bytes()]));
                    req.extend(common::encode(&[b"INCR", b.as_bytes()]));
                    req.extend(common::encode(&[b"EXEC"]));
                    c.send_raw(&req);
                    for _ in 0..3 {
                        c.read();
                    }
                    let r = c.read();
                    assert_eq!(r.array().len(), 2, "{r:?}");
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (a, b, port, stop) = (a.clone(), b.clone(), s.port, stop.clone());
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut seen = 0;
                while !stop.load(Ordering::SeqCst) {
                    let r = if i == 0 {
                        c.cmd(&["MGET", &a, &b])
                    } else {
                        c.cmd(&["MULTI"]);
                        c.cmd(&["GET", &a]);
                        c.cmd(&["GET", &b]);
                        c.cmd(&["EXEC"])
                    };
                    let v = r.array();
                    assert_eq!(v[0], v[1], "a transaction was seen half done");
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(c.cmd(&["GET", &a]), Value::bulk("900"));
    assert_eq!(c.cmd(&["GET", &b]), Value::bulk("900"));
}

/// Reads a RESP command (array of bulks) from a replication stream.
fn read_command(r: &mut impl BufRead) -> Vec<String> {
    match common::read_value(r).expect("stream") {
        Value::Array(items) => items.iter().map(|v| v.text()).collect(),
        other => panic!("not a command: {other:?}"),
    }
}

/// Attaches as a bare replica (PSYNC without capa eof: a disk-style RDB
/// payload) and returns the reader positioned at the command stream.
fn attach_raw_replica(port: u16) -> Conn {
    let mut r = Conn::connect(port);
    assert_eq!(r.cmd(&["REPLCONF", "listening-port", "1"]), Value::ok());
    r.send(&[b"PSYNC", b"?", b"-1"]);
    let mut line = String::new();
    r.reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("+FULLRESYNC"), "{line}");
    // The RDB: `$<len>\r\n<bytes>` (no trailing CRLF).
    let len = loop {
        line.clear();
        r.reader.read_line(&mut line).unwrap();
        if let Some(n) = line.trim().strip_prefix('$') {
            break n.parse::<usize>().unwrap();
        }
    };
    let mut rdb = vec![0u8; len];
    r.reader.read_exact(&mut rdb).unwrap();
    r
}

#[test]
fn exec_enters_the_stream_as_one_unit() {
    let s = start();
    let a = key_on(0, "ta");
    let b = key_on(1, "tb");
    let mut stream = attach_raw_replica(s.port);
    let stop = Arc::new(AtomicBool::new(false));
    // Plain writes on both shards meanwhile.
    let noise: Vec<_> = (0..2)
        .map(|shard| {
            let (port, stop) = (s.port, stop.clone());
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let k = key_on(shard, "noise");
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    c.cmd(&["SET", &k, "x"]);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut c = s.conn();
    const N: usize = 200;
    for i in 0..N {
        c.cmd(&["MULTI"]);
        c.cmd(&["INCR", &a]);
        c.cmd(&["GET", &a]); // reads propagate nothing
        c.cmd(&["SET", &b, &i.to_string(), "EX", "1000"]); // rewritten to PXAT
        assert_eq!(c.cmd(&["EXEC"]).array().len(), 3);
    }
    // A transaction with one write is not wrapped, a read-only one is absent.
    c.cmd(&["MULTI"]);
    c.cmd(&["GET", &a]);
    c.cmd(&["SET", "single", "1"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["GET", &a]);
    c.cmd(&["EXEC"]);
    c.cmd(&["SET", "end", "1"]);
    stop.store(true, Ordering::SeqCst);
    for t in noise {
        assert!(t.join().unwrap() > 0);
    }
    stream.set_read_timeout(Duration::from_secs(10));
    let mut units = 0;
    let end = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < end, "stream did not reach the end marker");
        let cmd = read_command(&mut stream.reader);
        match cmd[0].to_ascii_uppercase().as_str() {
            "MULTI" => {
                let body: Vec<Vec<String>> =
                    (0..3).map(|_| read_command(&mut stream.reader)).collect();
                assert_eq!(body[0], vec!["INCR".to_string(), a.clone()]);
                assert_eq!(body[1][0].to_ascii_uppercase(), "SET");
                assert_eq!(body[1][1], b);
                assert!(
                    body[1].iter().any(|x| x.eq_ignore_ascii_case("PXAT")),
                    "{body:?}"
                );
                assert_eq!(body[2], vec!["EXEC".to_string()]);
                units += 1;
            }
            "EXEC" => panic!("EXEC outside a unit"),
            "SET" if cmd[1] == "single" => assert_eq!(units, N),
            "SET" if cmd[1] == "end" => break,
            _ => {}
        }
    }
    assert_eq!(units, N);
}

#[test]
fn transactions_replicate_to_cascade_and_redis() {
    require_tool("redis-server");
    let master = start();
    let port = master.port.to_string();
    let ours = Server::start(&[
        "--shards",
        "2",
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let redis = Server::start_redis(&[
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let mut c = master.conn();
    let keys: Vec<String> = (0..8).map(|i| key_on(i % 2, &format!("k{i}_"))).collect();
    for round in 0..50 {
        c.cmd(&["MULTI"]);
        for k in &keys {
            c.cmd(&["INCRBY", k, &round.to_string()]);
        }
        c.cmd(&["SET", &keys[0], "text", "EX", "500"]);
        c.cmd(&["INCR", &keys[0]]); // runtime error, not propagated
        c.cmd(&["SELECT", &(round % 3).to_string()]);
        c.cmd(&["SET", &keys[1], &round.to_string()]);
        c.cmd(&["MSET", &keys[2], "x", &keys[3], "y"]);
        c.cmd(&["DEL", &keys[4]]);
        c.cmd(&["SELECT", "0"]);
        let r = c.cmd(&["EXEC"]);
        assert_eq!(r.array().len(), keys.len() + 7, "{r:?}");
        if round % 10 == 0 {
            c.cmd(&["MULTI"]);
            c.cmd(&["FLUSHDB"]);
            c.cmd(&["SET", "after-flush", &round.to_string()]);
            c.cmd(&["EXEC"]);
        }
    }
    // Same data (digest) and same offsets on both replicas.
    common::repl::wait_in_sync(&master, &ours, None);
    common::repl::wait_in_sync(&master, &redis, None);
    let mut r = ours.conn();
    r.cmd(&["SELECT", "1"]);
    assert_eq!(r.cmd(&["GET", &keys[1]]), Value::bulk("49"));
}

#[test]
fn a_replica_applies_a_redis_masters_transactions() {
    require_tool("redis-server");
    let master = Server::start_redis(&["--enable-debug-command", "yes"]);
    let port = master.port.to_string();
    let replica = Server::start(&[
        "--shards",
        "2",
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let a = key_on(0, "a");
    let b = key_on(1, "b");
    let mut c = master.conn();
    common::wait_until(DEADLINE, "link up", || {
        info_field(&mut replica.conn(), "replication", "master_link_status") == "up"
    });
    // A reader on the replica must never see a transaction half applied.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (a, b, port, stop) = (a.clone(), b.clone(), replica.port, stop.clone());
        std::thread::spawn(move || {
            let mut r = Conn::connect(port);
            while !stop.load(Ordering::SeqCst) {
                let v = r.cmd(&["MGET", &a, &b]);
                assert_eq!(v.array()[0], v.array()[1], "half a transaction applied");
            }
        })
    };
    for _ in 0..300 {
        c.cmd(&["MULTI"]);
        c.cmd(&["INCR", &a]);
        c.cmd(&["INCR", &b]);
        c.cmd(&["EXEC"]);
    }
    common::repl::wait_in_sync(&master, &replica, None);
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    assert_eq!(replica.conn().cmd(&["GET", &b]), Value::bulk("300"));
}

/// One WATCH case: `setup` runs first, then the watcher WATCHes `watch`,
/// another client runs `write`, and the watcher's `MULTI; PING; EXEC`
/// either runs or aborts. `$A` and `$B` are keys on shards 0 and 1 of
/// Cascade (plain names for Redis), so two-key writes cross shards; `$C`
/// is another key on shard 0, for commands whose keys share one shard.
struct WatchCase {
    setup: &'static [&'static str],
    watch: &'static str,
    write: &'static [&'static str],
}

const fn case(
    setup: &'static [&'static str],
    watch: &'static str,
    write: &'static [&'static str],
) -> WatchCase {
    WatchCase {
        setup,
        watch,
        write,
    }
}

/// Writes that change nothing and writes that do, by Redis 7.0's rule:
/// a key counts as touched only when the command signals it modified.
const WATCH_CASES: &[WatchCase] = &[
    // Strings.
    case(&["SET $A v"], "$A", &["SETNX $A x"]),
    case(&[], "$A", &["SETNX $A x"]),
    case(&["SET $A v"], "$A", &["SET $A v"]),
    case(&["SET $A v"], "$A", &["SET $A x NX"]),
    case(&["SET $A v"], "$A", &["SET $A x XX"]),
    case(&[], "$A", &["SET $A x XX"]),
    case(&["SET $A 5"], "$A", &["INCRBY $A 0"]),
    case(&["SET $A 5"], "$A", &["INCRBYFLOAT $A 0"]),
    case(&["SET $A v"], "$A", &["APPEND $A \"\""]),
    case(&["SET $A v"], "$A", &["SETRANGE $A 0 \"\""]),
    case(&["SET $A v"], "$A", &["SETRANGE $A 0 v"]),
    case(&["SET $A v"], "$A", &["GETEX $A"]),
    case(&["SET $A v"], "$A", &["GETEX $A PERSIST"]),
    case(&["SET $A v EX 100"], "$A", &["GETEX $A PERSIST"]),
    case(&["SET $A v"], "$A", &["GETSET $A v"]),
    case(&[], "$A", &["GETDEL $A"]),
    case(&["SET $A v"], "$A", &["GETDEL $A"]),
    case(&["SET $A v"], "$A", &["MSETNX $A x $B y"]),
    case(&["SET $A v"], "$B", &["MSETNX $A x $B y"]),
    case(&[], "$B", &["MSET $A x $B y"]),
    // Generic keyspace.
    case(&[], "$A", &["DEL $A"]),
    case(&["SET $A v"], "$A", &["DEL $A"]),
    case(&["SET $A v"], "$B", &["DEL $A $B"]),
    case(&["SET $A v"], "$A", &["UNLINK $A $B"]),
    case(&[], "$A", &["UNLINK $A"]),
    case(&[], "$A", &["EXPIRE $A 100"]),
    case(&["SET $A v"], "$A", &["EXPIRE $A 100"]),
    case(&["SET $A v EX 100"], "$A", &["EXPIRE $A 100"]),
    case(&["SET $A v EX 100"], "$A", &["EXPIRE $A 200 NX"]),
    case(&["SET $A v"], "$A", &["EXPIRE $A 200 XX"]),
    case(&["SET $A v"], "$A", &["EXPIRE $A 200 GT"]),
    case(&["SET $A v EX 100"], "$A", &["EXPIRE $A 50 GT"]),
    case(&["SET $A v"], "$A", &["PERSIST $A"]),
    case(&["SET $A v EX 100"], "$A", &["PERSIST $A"]),
    case(&["SET $A v"], "$A", &["RENAME $A $A"]),
    case(&["SET $A v"], "$A", &["RENAMENX $A $A"]),
    case(&["SET $A v", "SET $B w"], "$B", &["RENAMENX $A $B"]),
    case(&["SET $A v"], "$B", &["RENAME $A $B"]),
    case(&["SET $A v", "SET $B w"], "$B", &["COPY $A $B"]),
    case(&["SET $A v", "SET $B w"], "$B", &["COPY $A $B REPLACE"]),
    case(
        &["SET $A v", "SELECT 1", "SET $A w", "SELECT 0"],
        "$A",
        &["MOVE $A 1"],
    ),
    case(&["SET $A v"], "$A", &["MOVE $A 1"]),
    case(&[], "$A", &["FLUSHALL"]),
    case(&["SET $A v"], "$A", &["FLUSHDB"]),
    // Sets.
    case(&["SADD $A a"], "$A", &["SADD $A a"]),
    case(&["SADD $A a"], "$A", &["SADD $A b"]),
    case(&["SADD $A a"], "$A", &["SREM $A zz"]),
    case(&["SADD $A a b"], "$A", &["SREM $A a"]),
    case(&["SADD $A a"], "$A", &["SPOP $A 0"]),
    case(&["SADD $A a"], "$A", &["SMOVE $A $A a"]),
    case(&["SADD $A a", "SADD $B a"], "$A", &["SMOVE $A $B zz"]),
    case(&["SADD $A a", "SADD $B a"], "$B", &["SMOVE $A $B a"]),
    case(&["SADD $A a", "SADD $B a"], "$A", &["SMOVE $A $B a"]),
    case(&["SADD $A a", "SADD $B b"], "$B", &["SMOVE $A $B a"]),
    case(
        &["SADD {x}1 a", "SADD {x}2 a"],
        "{x}2",
        &["SMOVE {x}1 {x}2 a"],
    ),
    case(
        &["SADD {x}1 a", "SADD {x}2 a"],
        "{x}1",
        &["SMOVE {x}1 {x}2 a"],
    ),
    case(&[], "$B", &["SINTERSTORE $B $A"]),
    case(&["SADD $B a"], "$B", &["SINTERSTORE $B $A"]),
    // Hashes.
    case(&["HSET $A f v"], "$A", &["HSET $A f v"]),
    case(&["HSET $A f v"], "$A", &["HSETNX $A f w"]),
    case(&["HSET $A f v"], "$A", &["HDEL $A zz"]),
    case(&["HSET $A f v g w"], "$A", &["HDEL $A f"]),
    case(&["HSET $A n 1"], "$A", &["HINCRBY $A n 0"]),
    // Lists.
    case(&["RPUSH $A a b"], "$A", &["LREM $A 0 zz"]),
    case(&["RPUSH $A a b"], "$A", &["LREM $A 0 a"]),
    case(&["RPUSH $A a b"], "$A", &["LTRIM $A 0 -1"]),
    case(&["RPUSH $A a b"], "$A", &["LINSERT $A BEFORE zz x"]),
    case(&["RPUSH $A a b"], "$A", &["LSET $A 0 a"]),
    case(&["RPUSH $A a b"], "$A", &["LPOP $A 0"]),
    case(&[], "$A", &["LPUSHX $A a"]),
    case(&[], "$A", &["RPUSHX $A a"]),
    case(&["RPUSH $A a"], "$A", &["RPUSHX $A b"]),
    case(&["RPUSH $B a"], "$B", &["LMOVE $A $B LEFT LEFT"]),
    case(&["RPUSH $A a"], "$B", &["LMOVE $A $B LEFT LEFT"]),
    case(&["RPUSH $A a"], "$A", &["RPOPLPUSH $A $A"]),
    case(&["RPUSH $A a"], "$A", &["LMPOP 2 $B $A LEFT"]),
    // Sorted sets.
    case(&["ZADD $A 1 m"], "$A", &["ZREM $A zz"]),
    case(&["ZADD $A 1 m"], "$A", &["ZADD $A NX 2 m"]),
    case(&["ZADD $A 1 m"], "$A", &["ZADD $A 1 m"]),
    case(&["ZADD $A 1 m"], "$A", &["ZADD $A 2 m"]),
    case(&["ZADD $A 1 m"], "$A", &["ZADD $A XX 3 zz"]),
    case(&["ZADD $A 1 m"], "$A", &["ZINCRBY $A 0 m"]),
    case(&["ZADD $A 1 m"], "$A", &["ZREMRANGEBYSCORE $A 10 20"]),
    case(&["ZADD $A 1 m"], "$A", &["ZPOPMIN $A 0"]),
    case(&["ZADD $A 1 m"], "$A", &["ZPOPMIN $A"]),
    // Inside another client's transaction.
    case(
        &["SET $A v"],
        "$A",
        &["MULTI", "SETNX $A x", "SADD $B a", "EXEC"],
    ),
    case(&["SADD $A a"], "$A", &["MULTI", "SADD $A a", "EXEC"]),
    case(&["SADD $A a"], "$A", &["MULTI", "SADD $A b", "EXEC"]),
    // Stores read their sources without changing them, on one shard or
    // across shards; only the destination is signalled.
    case(&["SADD $A 1"], "$A", &["SUNIONSTORE $C $A"]),
    case(&["SADD $A 1"], "$A", &["SINTERSTORE $C $A"]),
    case(&["SADD $A 1"], "$A", &["SDIFFSTORE $C $A"]),
    case(&["SADD $A 1"], "$A", &["SUNIONSTORE $B $A"]),
    case(&["SADD $A 1"], "$C", &["SUNIONSTORE $C $A"]),
    case(&["SADD $A 1"], "$A", &["SUNIONSTORE $A $A"]),
    case(&["SADD $A 1"], "$A", &["SMOVE $A $C 1"]),
    case(&["SADD $A 1"], "$A", &["SMOVE $A $A 1"]),
    case(&["ZADD $A 1 m"], "$A", &["ZUNIONSTORE $C 1 $A"]),
    case(&["ZADD $A 1 m"], "$A", &["ZINTERSTORE $C 1 $A"]),
    case(&["ZADD $A 1 m"], "$A", &["ZDIFFSTORE $C 1 $A"]),
    case(&["ZADD $A 1 m"], "$A", &["ZRANGESTORE $C $A 0 -1"]),
    case(&["ZADD $A 1 m"], "$A", &["ZUNIONSTORE $B 1 $A"]),
    case(&["ZADD $A 1 m"], "$C", &["ZUNIONSTORE $C 1 $A"]),
    case(&["RPUSH $A 2 1"], "$A", &["SORT $A STORE $C"]),
    case(
        &["GEOADD $A 1 1 m"],
        "$A",
        &["GEOSEARCHSTORE $C $A FROMLONLAT 1 1 BYRADIUS 10 km"],
    ),
    case(&["SET $A v"], "$A", &["BITOP OR $C $A"]),
    case(&["PFADD $A v"], "$A", &["PFMERGE $C $A"]),
    case(&["SET $A v"], "$A", &["COPY $A $C"]),
    case(&["RPUSH $A a"], "$A", &["LMOVE $A $C LEFT LEFT"]),
    // Streams: Redis 7.0 signals neither consumer-group changes nor XSETID.
    case(&["XADD $A 1-0 a b"], "$A", &["XADD $A 2-0 a b"]),
    case(
        &["XADD $A 1-0 a b", "XADD $A 2-0 a b"],
        "$A",
        &["XDEL $A 1-0"],
    ),
    case(&["XADD $A 1-0 a b"], "$A", &["XDEL $A 9-0"]),
    case(
        &["XADD $A 1-0 a b", "XADD $A 2-0 a b"],
        "$A",
        &["XTRIM $A MAXLEN 1"],
    ),
    case(&["XADD $A 1-0 a b"], "$A", &["XSETID $A 5-0"]),
    case(
        &["XADD $A 1-0 a b"],
        "$A",
        &["XSETID $A 5-0 ENTRIESADDED 9 MAXDELETEDID 3-0"],
    ),
    case(&[], "$A", &["XGROUP CREATE $A g $ MKSTREAM"]),
    case(&["XADD $A 1-0 a b"], "$A", &["XGROUP CREATE $A g 0"]),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XGROUP CREATE $A g 0"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XGROUP SETID $A g 1-0"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XGROUP CREATECONSUMER $A g c"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XGROUP CREATECONSUMER $A g c",
        ],
        "$A",
        &["XGROUP DELCONSUMER $A g c"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XGROUP DESTROY $A g"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XREADGROUP GROUP g c STREAMS $A >"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XREADGROUP GROUP g c NOACK STREAMS $A >"],
    ),
    case(
        &["XADD $A 1-0 a b", "XGROUP CREATE $A g 0"],
        "$A",
        &["XREADGROUP GROUP g c STREAMS $A 0"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
        ],
        "$A",
        &["XREADGROUP GROUP g c STREAMS $A >"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
        ],
        "$A",
        &["XCLAIM $A g c2 0 1-0"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
        ],
        "$A",
        &["XCLAIM $A g c2 0 1-0 JUSTID"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
        ],
        "$A",
        &["XAUTOCLAIM $A g c2 0 0"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XADD $A 2-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
            "XDEL $A 1-0",
        ],
        "$A",
        &["XAUTOCLAIM $A g c2 0 0"],
    ),
    case(
        &[
            "XADD $A 1-0 a b",
            "XGROUP CREATE $A g 0",
            "XREADGROUP GROUP g c STREAMS $A >",
        ],
        "$A",
        &["XACK $A g 1-0"],
    ),
];

/// Runs every [`WATCH_CASES`] case on `server`; EXEC's outcome per case
/// (true: aborted).
fn watch_outcomes(server: &Server, a: &str, b: &str, c: &str) -> Vec<bool> {
    let mut watcher = server.conn();
    let mut other = server.conn();
    let fill = |line: &str| line.replace("$A", a).replace("$B", b).replace("$C", c);
    let run = |c: &mut Conn, line: &str| {
        let args = common::args_of(&fill(line));
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        c.cmdb(&refs)
    };
    let mut out = Vec::new();
    for case in WATCH_CASES {
        assert_eq!(other.cmd(&["FLUSHALL"]), Value::ok());
        for line in case.setup {
            assert!(!run(&mut other, line).is_error(), "{line}");
        }
        assert_eq!(
            run(&mut watcher, &format!("WATCH {}", case.watch)),
            Value::ok()
        );
        for line in case.write {
            run(&mut other, line);
        }
        assert_eq!(watcher.cmd(&["MULTI"]), Value::ok());
        assert_eq!(watcher.cmd(&["PING"]), queued());
        match watcher.cmd(&["EXEC"]) {
            Value::Nil => out.push(true),
            Value::Array(items) if items.len() == 1 => out.push(false),
            other => panic!("EXEC after {:?}: {other:?}", case.write),
        }
    }
    out
}

#[test]
fn watch_ignores_writes_that_change_nothing_as_redis_does() {
    let s = start();
    let r = Server::start_redis(&[]);
    let (a, b, c) = (key_on(0, "a"), key_on(1, "b"), key_on(0, "c"));
    let ours = watch_outcomes(&s, &a, &b, &c);
    let theirs = watch_outcomes(&r, &a, &b, &c);
    let mut wrong = Vec::new();
    for ((case, o), t) in WATCH_CASES.iter().zip(&ours).zip(&theirs) {
        if o != t {
            wrong.push(format!(
                "{:?} then {:?} watching {}: Cascade aborted={o}, Redis aborted={t}",
                case.setup, case.write, case.watch
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The table has both kinds, so neither "always" nor "never" passes.
    assert!(theirs.iter().any(|&x| x) && theirs.iter().any(|&x| !x));
}

/// EXEC of a transaction that writes is refused like a write, since Redis
/// keeps the union of the queued commands' flags: a deny-writes condition
/// that arose after the commands were queued (`-NOREPLICAS`, `-MISCONF`,
/// `-READONLY`; `-MASTERDOWN` for commands that need fresh data) answers
/// `-EXECABORT Transaction discarded because of: <the refusal>`, and the
/// client is out of MULTI with its watched keys forgotten. So does any
/// other refusal of EXEC (a wrong arity, in or out of MULTI). The same
/// replies, reply for reply, as redis-server.
#[test]
fn exec_of_queued_writes_is_refused_like_a_write() {
    let servers = [
        Server::start(&["--shards", "2", "--enable-protected-configs", "yes"]),
        Server::start_redis(&["--enable-protected-configs", "yes"]),
    ];
    let mut transcripts = Vec::new();
    for s in &servers {
        let (mut a, mut b) = (s.conn(), s.conn());
        let mut t = Vec::new();
        let mut run = |c: &mut Conn, line: &str| {
            let args: Vec<&str> = line.split(' ').collect();
            let reply = c.cmd(&args);
            t.push((line.to_string(), reply));
        };
        // min-replicas-to-write, with a watched key.
        run(&mut a, "WATCH k");
        run(&mut a, "MULTI");
        run(&mut a, "SET k 1");
        run(&mut a, "GET k");
        run(&mut b, "CONFIG SET min-replicas-to-write 1");
        run(&mut a, "EXEC");
        run(&mut a, "SET k 2");
        run(&mut a, "EXEC");
        // A transaction that only reads still runs.
        run(&mut a, "MULTI");
        run(&mut a, "GET k");
        run(&mut a, "EXEC");
        run(&mut b, "CONFIG SET min-replicas-to-write 0");
        // The watch went with the aborted transaction: this one runs.
        run(&mut b, "SET k changed");
        run(&mut a, "MULTI");
        run(&mut a, "SET k 3");
        run(&mut a, "EXEC");
        // A failed save with save points set: -MISCONF.
        let gone = s.dir.path().join("vanishing");
        std::fs::create_dir_all(&gone).unwrap();
        assert_eq!(b.cmd(&["CONFIG", "SET", "save", "3600 1"]), Value::ok());
        let dir_set = b.cmd(&["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
        assert_eq!(dir_set, Value::ok());
        std::fs::remove_dir_all(&gone).unwrap();
        run(&mut a, "MULTI");
        run(&mut a, "INCR n");
        b.cmd(&["BGSAVE"]);
        common::wait_until(DEADLINE, "failed BGSAVE", || {
            info_field(&mut b, "persistence", "rdb_last_bgsave_status") == "err"
        });
        run(&mut a, "EXEC");
        run(&mut a, "MULTI");
        run(&mut a, "GET k");
        run(&mut a, "EXEC");
        assert_eq!(b.cmd(&["CONFIG", "SET", "save", ""]), Value::ok());
        // A read-only replica; then one that refuses stale reads.
        run(&mut a, "MULTI");
        run(&mut a, "DEL k");
        let nobody = common::free_port().to_string();
        assert_eq!(b.cmd(&["REPLICAOF", "127.0.0.1", &nobody]), Value::ok());
        run(&mut a, "EXEC");
        run(&mut a, "MULTI");
        run(&mut a, "GET k");
        run(&mut b, "CONFIG SET replica-serve-stale-data no");
        run(&mut a, "EXEC");
        run(&mut a, "MULTI");
        run(&mut a, "LASTSAVE");
        run(&mut a, "EXEC");
        run(&mut b, "CONFIG SET replica-serve-stale-data yes");
        run(&mut b, "REPLICAOF NO ONE");
        // A wrong arity, in and out of MULTI.
        run(&mut a, "MULTI");
        run(&mut a, "EXEC now");
        run(&mut a, "EXEC");
        run(&mut a, "EXEC now");
        let stats = info_field(&mut a, "errorstats", "errorstat_EXECABORT");
        t.push(("errorstat_EXECABORT".into(), Value::Simple(stats)));
        // LASTSAVE's value differs between the servers.
        for (line, reply) in t.iter_mut() {
            if line == "EXEC" {
                if let Value::Array(items) = reply {
                    for item in items.iter_mut() {
                        if matches!(item, Value::Int(_)) {
                            *item = Value::Int(0);
                        }
                    }
                }
            }
        }
        transcripts.push(t);
    }
    assert_eq!(transcripts[0], transcripts[1]);
    let replies: Vec<&Value> = transcripts[0]
        .iter()
        .filter(|(line, _)| line.starts_with("EXEC"))
        .map(|(_, r)| r)
        .collect();
    let abort =
        |why: &str| Value::Error(format!("EXECABORT Transaction discarded because of: {why}"));
    let misconf = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    let arity = "wrong number of arguments for 'exec' command";
    assert_eq!(
        replies,
        vec![
            &abort("NOREPLICAS Not enough good replicas to write."),
            &Value::Error("ERR EXEC without MULTI".into()),
            &Value::Array(vec![Value::Nil]),
            &Value::Array(vec![Value::ok()]),
            &abort(misconf),
            &Value::Array(vec![Value::bulk("3")]),
            &abort("READONLY You can't write against a read only replica."),
            &abort(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
            ),
            &Value::Array(vec![Value::Int(0)]),
            &abort(arity),
            &Value::Error("ERR EXEC without MULTI".into()),
            &abort(arity),
        ]
    );
}
