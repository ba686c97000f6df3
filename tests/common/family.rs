//! Helpers the data-type families' tests (hashes, sets, lists, sorted
//! sets) share: a two-shard Cascade and a redis-server with DEBUG enabled,
//! the reply-for-reply script comparison, digests, keys placed on a given
//! shard, and the `redis-check-rdb` verdict on a dump.

use super::{assert_same_replies, info_field, require_tool, wait_until, Conn, Server};
use std::path::Path;
use std::time::Duration;

const DEBUG: &[&str] = &["--enable-debug-command", "yes"];

/// Cascade with two shards, so keys spread over both.
pub fn cascade(extra: &[&str]) -> Server {
    let args: Vec<&str> = ["--shards", "2"]
        .iter()
        .chain(DEBUG)
        .chain(extra)
        .copied()
        .collect();
    Server::start(&args)
}

pub fn redis(extra: &[&str]) -> Server {
    let args: Vec<&str> = DEBUG.iter().chain(extra).copied().collect();
    Server::start_redis(&args)
}

pub fn digest(c: &mut Conn) -> String {
    c.cmd(&["DEBUG", "DIGEST"]).text()
}

/// Runs `script` on a fresh Cascade and a fresh redis-server after
/// `HELLO proto`, and requires the same replies line by line.
pub fn run_script(proto: &str, script: &[&str]) {
    let s = cascade(&[]);
    let r = redis(&[]);
    let (mut c, mut rc) = (s.conn(), r.conn());
    for conn in [&mut c, &mut rc] {
        let hello = conn.cmd(&["HELLO", proto]);
        assert!(!hello.is_error(), "{hello:?}");
    }
    assert_same_replies(&mut c, &mut rc, script);
}

/// `n` keys `<prefix><i>` owned by `shard` of a two-shard server.
pub fn keys_on(shard: usize, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| cascade::shard::route::shard_of(k.as_bytes(), 2) == shard)
        .take(n)
        .collect()
}

/// Waits until `replica` is linked and has `master`'s digest.
pub fn wait_same_digest(master: &Server, replica: &Server) {
    wait_until(
        Duration::from_secs(30),
        "replica digest equals master's",
        || {
            let up = info_field(&mut replica.conn(), "replication", "master_link_status");
            up == "up" && digest(&mut master.conn()) == digest(&mut replica.conn())
        },
    );
}

/// Debian's `redis-check-rdb` accepts the dump at `path`.
pub fn assert_rdb_ok(path: &Path) {
    let out = std::process::Command::new(require_tool("redis-check-rdb"))
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "{text}"
    );
}

/// COMMAND INFO of each of `names` is Redis's: name, arity, flags, first
/// key, last key, step and ACL categories (flags and categories sorted).
pub fn assert_command_info_matches_redis(names: &[&str]) {
    let s = cascade(&[]);
    let r = redis(&[]);
    for name in names {
        let info = |srv: &Server| {
            let v = srv.conn().cmd(&["COMMAND", "INFO", name]);
            let entry = v.array()[0].array().to_vec();
            super::sorted_reply(super::Value::Array(entry[..7].to_vec()))
        };
        assert_eq!(info(&s), info(&r), "COMMAND INFO {name}");
    }
}

/// A connection that has sent `args` (a blocking command) and not read
/// the reply yet.
pub fn send_blocking(port: u16, args: &[&str]) -> Conn {
    let mut c = Conn::connect(port);
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&args);
    c
}

/// Waits until `n` clients of `s` are blocked.
pub fn wait_blocked(s: &Server, n: usize) {
    wait_until(Duration::from_secs(10), "clients blocked", || {
        info_field(&mut s.conn(), "clients", "blocked_clients") == n.to_string()
    });
}

/// DUMPs `key` on `from` and RESTOREs the payload as `name` on `to`.
pub fn copy_by_dump(from: &mut Conn, to: &mut Conn, key: &str, name: &str) {
    let super::Value::Bulk(payload) = from.cmd(&["DUMP", key]) else {
        panic!("DUMP {key}");
    };
    let got = to.cmdb(&[b"RESTORE", name.as_bytes(), b"0", &payload]);
    assert_eq!(got, super::Value::ok(), "RESTORE {key} as {name}");
}
