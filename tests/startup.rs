//! The start-up environment: the open-files limit is raised for
//! `maxclients`, with the same outcome and log lines as redis-server's, and
//! shards are pinned only to CPUs the process may use.

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
