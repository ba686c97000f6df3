//! The start-up environment: the open-files limit is raised for
//! `maxclients`, with the same outcome and log lines as redis-server's,
//! shards are pinned only to CPUs the process may use, and a server run by
//! systemd (`supervised`, `NOTIFY_SOCKET`) reports readiness and status as
//! redis-server does.

mod common;
use common::{cascade_bin, require_tool, Server, Value};
use std::os::unix::fs::PermissionsExt;

/// An executable shell script `dir/name` with `body` after the shebang.
fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A script that starts `bin` with a soft open-files limit of 512.
fn with_low_nofile(dir: &std::path::Path, bin: &std::path::Path, name: &str) -> std::path::PathBuf {
    let exec = format!("ulimit -Sn 512\nexec '{}' \"$@\"", bin.display());
    script(dir, name, &exec)
}

/// The log's lines about open files and maxclients, without the
/// `pid:role date time level` prefix.
fn limit_lines(s: &Server) -> Vec<String> {
    s.log_text()
        .lines()
        .filter(|l| l.contains("open files") || l.contains("maxclients"))
        .map(|l| l.splitn(7, ' ').nth(6).unwrap_or(l).to_string())
        .collect()
}

fn nofile_soft(s: &Server) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    line.split_whitespace().nth(3).unwrap().to_string()
}

#[test]
fn open_files_limit_is_raised_for_maxclients_as_redis_does() {
    let scripts = common::tempdir::TempDir::new("nofile");
    let cascade = with_low_nofile(scripts.path(), &cascade_bin(), "cascade.sh");
    let redis = with_low_nofile(scripts.path(), &require_tool("redis-server"), "redis.sh");
    let ours = Server::start_program(&cascade, &[], "cascade");
    let theirs = Server::start_program(&redis, &[], "redis");
    let lines = limit_lines(&ours);
    assert!(
        !lines.is_empty(),
        "no open-files line in the log:\n{}",
        ours.log_text()
    );
    assert_eq!(lines, limit_lines(&theirs));
    assert_eq!(nofile_soft(&ours), nofile_soft(&theirs));
    let maxclients = |s: &Server| s.conn().cmd(&["CONFIG", "GET", "maxclients"]);
    assert_eq!(maxclients(&ours), maxclients(&theirs));
    assert!(matches!(maxclients(&ours), Value::Array(_)));
}

/// The CPUs the calling process may run on, as `taskset -c` lists them.
fn allowed_cpus_of(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn shards_are_pinned_inside_the_allowed_cpus() {
    let taskset = require_tool("taskset");
    // The last CPU we may use: under `taskset -c` of it, the one shard
    // must run there (glommio alone would pick CPU 0).
    let ours = allowed_cpus_of("self");
    let last = ours
        .split(',')
        .filter_map(|r| r.rsplit('-').next())
        .filter_map(|c| c.trim().parse::<usize>().ok())
        .max()
        .unwrap();
    let scripts = common::tempdir::TempDir::new("taskset");
    let exec = format!(
        "exec '{}' -c {last} '{}' \"$@\"",
        taskset.display(),
        cascade_bin().display()
    );
    let path = script(scripts.path(), "pinned.sh", &exec);
    let server = Server::start_program(&path, &["--shards", "1"], "cascade");
    let pid = server.child.id();
    let shard_threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let t = t.ok()?.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm")).ok()?;
            comm.starts_with("cascade-shard").then_some(t)
        })
        .collect();
    // The executor and glommio's helper thread for it.
    assert!(!shard_threads.is_empty(), "no shard thread");
    for t in &shard_threads {
        assert_eq!(
            allowed_cpus_of(&format!("{pid}/task/{t}")),
            last.to_string()
        );
    }
    assert_eq!(server.conn().cmd(&["PING"]), Value::Simple("PONG".into()));
}

/// A script that starts `bin` with `NOTIFY_SOCKET` set to `socket`.
fn with_notify_socket(
    dir: &std::path::Path,
    bin: &std::path::Path,
    name: &str,
    socket: &std::path::Path,
) -> std::path::PathBuf {
    let exec = format!(
        "NOTIFY_SOCKET='{}' exec '{}' \"$@\"",
        socket.display(),
        bin.display()
    );
    script(dir, name, &exec)
}

/// The datagrams a server sent to a systemd notification socket.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind(dir: &std::path::Path, name: &str) -> NotifySocket {
        let path = dir.join(name);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        NotifySocket { socket, path }
    }

    /// The next message (fails the test after 20 s without one).
    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification from the server");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Messages until (and with) the first one that contains `last`.
    fn until(&self, last: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let m = self.next();
            let done = m.contains(last);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

/// Debian's unit runs redis-server with `Type=notify` and `--supervised
/// systemd --daemonize no`: systemd waits for READY=1. Both servers, a
/// master and a replica of it each, send the same messages in the same
/// order, and `daemonize yes` does not make a supervised server leave the
/// foreground.
#[test]
fn systemd_gets_the_same_readiness_and_status_as_from_redis() {
    let dir = common::tempdir::TempDir::new("notify");
    let mut sequences = Vec::new();
    for (tag, bin) in [
        ("cascade", cascade_bin()),
        ("redis", require_tool("redis-server")),
    ] {
        let master_socket = NotifySocket::bind(dir.path(), &format!("{tag}-master.sock"));
        let replica_socket = NotifySocket::bind(dir.path(), &format!("{tag}-replica.sock"));
        let master_bin = with_notify_socket(
            dir.path(),
            &bin,
            &format!("{tag}-master.sh"),
            &master_socket.path,
        );
        let replica_bin = with_notify_socket(
            dir.path(),
            &bin,
            &format!("{tag}-replica.sh"),
            &replica_socket.path,
        );
        let mut master = Server::start_program(
            &master_bin,
            &["--supervised", "systemd", "--daemonize", "yes"],
            tag,
        );
        let master_port = master.port.to_string();
        let mut replica = Server::start_program(
            &replica_bin,
            &[
                "--supervised",
                "auto",
                "--replicaof",
                "127.0.0.1",
                &master_port,
            ],
            tag,
        );
        let from_master = master_socket.until("READY=1");
        let from_replica = replica_socket.until("Finished with success");
        assert!(
            master
                .log_text()
                .contains("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."),
            "{tag}: {}",
            master.log_text()
        );
        // Still the process we started: it did not daemonize.
        assert!(master.child.try_wait().unwrap().is_none(), "{tag} left");
        let mut c = replica.conn();
        c.send(&[b"SHUTDOWN", b"NOSAVE"]);
        let stopping = replica_socket.next();
        let _ = replica.child.wait();
        sequences.push((tag, from_master, from_replica, stopping));
        master.terminate();
    }
    let (_, ours_m, ours_r, ours_stop) = &sequences[0];
    let (_, theirs_m, theirs_r, theirs_stop) = &sequences[1];
    assert_eq!(ours_m, theirs_m);
    assert_eq!(ours_r, theirs_r);
    assert_eq!(ours_stop, theirs_stop);
    assert_eq!(ours_stop, "STOPPING=1\n");
    assert_eq!(ours_m.last().map(String::as_str), Some("READY=1\n"));
}

/// An executor that cannot start (here: many shards under a locked-memory
/// limit too low for their io_uring rings, as a non-root user) ends the
/// process with a clear reason instead of leaving the other shards waiting
/// for it forever.
#[test]
fn a_shard_that_cannot_start_ends_the_process() {
    let dir = common::tempdir::TempDir::new("memlock");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.path().join("server.log");
    let port = common::free_port().to_string();
    let prlimit = require_tool("prlimit");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        // Root's locked memory is not accounted: run as nobody.
        let mut c = std::process::Command::new(require_tool("setpriv"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&prlimit);
        c
    } else {
        std::process::Command::new(&prlimit)
    };
    cmd.arg("--memlock=600000:600000")
        .arg(cascade_bin())
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
        .args(["--shards", "16", "--dir"])
        .arg(dir.path())
        .arg("--logfile")
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after 30 s; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "log:\n{text}");
    assert!(
        text.contains("A shard stopped: its executor could not start or failed."),
        "log:\n{text}"
    );
    assert!(!text.contains("Server initialized"), "log:\n{text}");
}

/// The process's THP flag as the kernel reports it (`THP_enabled:` in
/// /proc/PID/status, since Linux 5.0).
fn thp_enabled(s: &Server) -> String {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .unwrap_or_else(|| panic!("no THP_enabled line in /proc/PID/status:\n{status}"))
        .trim()
        .to_string()
}

#[test]
fn disable_thp_turns_transparent_huge_pages_off_for_the_process() {
    let default = Server::start(&[]);
    assert_eq!(thp_enabled(&default), "0", "disable-thp yes is the default");
    let kept = Server::start(&["--disable-thp", "no"]);
    assert_eq!(thp_enabled(&kept), "1");
    let get = |s: &Server| s.conn().cmd(&["CONFIG", "GET", "disable-thp"]);
    assert_eq!(
        get(&default),
        Value::Array(vec![
            Value::Bulk(b"disable-thp".to_vec()),
            Value::Bulk(b"yes".to_vec())
        ])
    );
}
