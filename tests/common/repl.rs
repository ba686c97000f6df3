//! Replication test helpers: nodes with the directives every replication
//! test wants, digests and INFO fields, waiting until a replica has caught
//! up, a background writer, signals.

use super::{info_field, Server, Value};
use std::time::Duration;

pub const DEADLINE: Duration = Duration::from_secs(30);

/// Directives every node of these tests gets.
pub const BASE: &[&str] = &[
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];

pub fn with(extra: &[&str]) -> Vec<String> {
    BASE.iter().chain(extra).map(|s| s.to_string()).collect()
}

pub fn start(extra: &[&str]) -> Server {
    let args = with(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

pub fn start_redis(extra: &[&str]) -> Server {
    let args = with(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_redis(&refs)
}

pub fn digest(s: &Server, auth: Option<&str>) -> String {
    let mut c = s.conn();
    if let Some(p) = auth {
        assert_eq!(c.cmd(&["AUTH", p]), Value::ok());
    }
    c.cmd(&["DEBUG", "DIGEST"]).text()
}

pub fn field(s: &Server, auth: Option<&str>, section: &str, name: &str) -> String {
    let mut c = s.conn();
    if let Some(p) = auth {
        assert_eq!(c.cmd(&["AUTH", p]), Value::ok());
    }
    info_field(&mut c, section, name)
}

/// [`wait_in_sync`] for a Cascade replica of a Redis master, which must
/// also have applied every command of the stream (no `== CRITICAL ==`
/// line: a command it could not run).
pub fn wait_in_sync_applying_all(master: &Server, replica: &Server) {
    wait_in_sync(master, replica, None);
    let log = replica.log_text();
    assert!(!log.contains("CRITICAL"), "{log}");
}

/// Waits until `replica` has the same digest and offset as `master`.
pub fn wait_in_sync(master: &Server, replica: &Server, auth: Option<&str>) {
    let in_sync = || {
        field(replica, auth, "replication", "master_link_status") == "up"
            && digest(master, auth) == digest(replica, auth)
            && field(master, auth, "replication", "master_repl_offset")
                == field(replica, auth, "replication", "slave_repl_offset")
    };
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end {
        if in_sync() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tail = |s: &Server| {
        let log = s.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    };
    panic!(
        "replica not in sync after {DEADLINE:?}: master offset {} digest {}, replica link {} offset {} digest {}\n--- master log:\n{}\n--- replica log:\n{}",
        field(master, auth, "replication", "master_repl_offset"),
        digest(master, auth),
        field(replica, auth, "replication", "master_link_status"),
        field(replica, auth, "replication", "slave_repl_offset"),
        digest(replica, auth),
        tail(master),
        tail(replica)
    );
}

pub fn write_keys(s: &Server, auth: Option<&str>, prefix: &str, n: usize) {
    let mut c = s.conn();
    if let Some(p) = auth {
        assert_eq!(c.cmd(&["AUTH", p]), Value::ok());
    }
    for i in 0..n {
        let k = format!("{prefix}:{i}");
        assert_eq!(c.cmd(&["SET", &k, &format!("value-{i}")]), Value::ok());
    }
}

pub fn with_writer<T>(port: u16, f: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut c = super::Conn::connect(port);
        let mut i = 0u64;
        while !s2.load(Ordering::SeqCst) {
            c.cmd(&["SET", &format!("load:{}", i % 500), &i.to_string()]);
            c.cmd(&["INCR", "load:counter"]);
            i += 1;
        }
    });
    let out = f();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    out
}

pub fn signal(s: &Server, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(s.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
    if sig == "STOP" {
        // kill returns once the signal is sent, not once every thread has
        // stopped: a replica still running could acknowledge what the test
        // writes next.
        let tasks = format!("/proc/{}/task", s.child.id());
        let stopped = |entry: std::fs::DirEntry| {
            std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|t| t.rsplit(") ").next().map(|r| r.starts_with('T')))
                .unwrap_or(true) // a thread that ended meanwhile
        };
        super::wait_until(Duration::from_secs(10), "every thread to stop", || {
            std::fs::read_dir(&tasks)
                .map(|dir| dir.flatten().all(stopped))
                .unwrap_or(false)
        });
    }
}
