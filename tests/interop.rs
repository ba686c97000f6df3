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
