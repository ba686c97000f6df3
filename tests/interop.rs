//! Real Redis tools against Cascade: redis-cli and redis-benchmark must work
//! unchanged. These tools are required: a missing one fails the test.

mod common;
use common::{redis_cli, require_tool, Server, Value};
use std::process::Command;

#[test]
fn redis_cli_round_trip() {
    let s = Server::start(&["--shards", "2"]);
    assert_eq!(redis_cli(s.port, &["PING"]).trim(), "PONG");
    assert_eq!(
        redis_cli(s.port, &["SET", "greeting", "hello world"]).trim(),
        "OK"
    );
    assert_eq!(
        redis_cli(s.port, &["GET", "greeting"]).trim(),
        "hello world"
    );
    assert_eq!(redis_cli(s.port, &["INCR", "n"]).trim(), "1");
    assert_eq!(redis_cli(s.port, &["DBSIZE"]).trim(), "2");
    let info = redis_cli(s.port, &["INFO", "replication"]);
    assert!(info.contains("role:master"), "{info}");
    // Pipe mode: the mass-insertion protocol path.
    let mut input = Vec::new();
    for i in 0..1000 {
        input.extend(common::encode(&[
            b"SET",
            format!("pipe:{i}").as_bytes(),
            b"x",
        ]));
    }
    let cli = require_tool("redis-cli");
    let mut child = Command::new(cli)
        .args(["-p", &s.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0, replies: 1000"), "{text}");
    assert_eq!(s.conn().cmd(&["DBSIZE"]), Value::Int(1002));
    // --scan uses SCAN with a cursor.
    let scanned = redis_cli(s.port, &["--scan", "--pattern", "pipe:*"]);
    assert_eq!(scanned.lines().count(), 1000);
}

#[test]
fn redis_benchmark_runs_clean() {
    let s = Server::start(&["--shards", "2"]);
    let bench = require_tool("redis-benchmark");
    let out = Command::new(bench)
        .args([
            "-p",
            &s.port.to_string(),
            "-n",
            "20000",
            "-c",
            "20",
            "-P",
            "8",
            "-t",
            "set,get,incr,mset,ping",
            "-q",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for test in ["SET", "GET", "INCR", "MSET", "PING_INLINE"] {
        assert!(
            text.split(['\r', '\n'])
                .any(|l| l.trim_start().starts_with(test) && l.contains("requests per second")),
            "no {test} result in:\n{text}"
        );
    }
    assert!(!text.to_lowercase().contains("error"), "{text}");
    let mut c = s.conn();
    let incr: i64 = c
        .cmd(&["GET", "counter:__rand_int__"])
        .text()
        .parse()
        .unwrap();
    assert_eq!(incr, 20000);
}

/// The text `redis-check-rdb` prints for `file`, which must look OK.
fn checked_rdb(file: &std::path::Path) -> String {
    let out = Command::new(require_tool("redis-check-rdb"))
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("RDB looks OK"), "{text}");
    text
}

#[test]
fn redis_cli_rdb_functions_rdb_and_replica_modes() {
    use std::io::BufRead;
    let cli = require_tool("redis-cli");
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let dir = common::tempdir::TempDir::new("cli-rdb");
    let port = s.port.to_string();
    let run = |args: &[&str]| {
        let out = Command::new(&cli)
            .args(["-p", &port])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };

    // --rdb: the whole dataset (REPLCONF rdb-only 1, then no stream).
    let all = dir.path().join("all.rdb");
    let text = run(&["--rdb", all.to_str().unwrap()]);
    assert!(text.contains("Transfer finished with success."), "{text}");
    assert!(checked_rdb(&all).contains("[info] 100 keys read"));
    // --functions-rdb (REPLCONF rdb-filter-only functions): no keys.
    let functions = dir.path().join("functions.rdb");
    let text = run(&["--functions-rdb", functions.to_str().unwrap()]);
    assert!(text.contains("Transfer finished with success."), "{text}");
    assert!(checked_rdb(&functions).contains("[info] 0 keys read"));
    common::wait_until(common::repl::DEADLINE, "rdb-only clients gone", || {
        s.info_field("replication", "connected_slaves") == "0"
    });
    let log = s.log_text();
    assert!(
        log.contains("RDB transfer completed, rdb only replica (127.0.0.1:"),
        "{log}"
    );

    // --replica (REPLCONF rdb-filter-only ""): a keyless sync, then the
    // stream as the master writes it.
    let mut child = Command::new(&cli)
        .args(["-p", &port, "--replica"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("SYNC done. Logging commands from master.") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "redis-cli ended");
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "x", "y"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["SET", "z", "w"]);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while lines.last().map(String::as_str) != Some("\"SET\",\"z\",\"w\"") {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "{lines:?}");
        lines.push(l.trim_end().to_string());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines,
        [
            "\"SELECT\",\"3\"",
            "\"SET\",\"x\",\"y\"",
            "\"SELECT\",\"0\"",
            "\"SET\",\"z\",\"w\""
        ]
    );

    // REPLCONF's checks of these options, with Redis's errors.
    for (args, reply) in [
        (
            &["rdb-filter-only", "functions nope"][..],
            "ERR Unsupported rdb-filter-only option: nope",
        ),
        (
            &["rdb-filter-only", "\"open"][..],
            "ERR Missing rdb-filter-only values",
        ),
        (
            &["rdb-only", "2"][..],
            "ERR value is out of range, value must between 0 and 1",
        ),
        (
            &["rdb-only", "x"][..],
            "ERR value is not an integer or out of range",
        ),
    ] {
        let cmd = [&["REPLCONF"][..], args].concat();
        assert_eq!(c.cmd(&cmd), Value::Error(reply.into()), "{args:?}");
    }
    for ok in [["rdb-only", "0"], ["rdb-filter-only", ""]] {
        assert_eq!(c.cmd(&[&["REPLCONF"][..], &ok[..]].concat()), Value::ok());
    }
}
