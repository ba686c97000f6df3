//! Start-up resource limits: the open-files limit is raised for
//! `maxclients`, with the same outcome and log lines as redis-server's.

mod common;
use common::{cascade_bin, require_tool, Server, Value};
use std::os::unix::fs::PermissionsExt;

/// A script that starts `bin` with a soft open-files limit of 512.
fn with_low_nofile(dir: &std::path::Path, bin: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nulimit -Sn 512\nexec '{}' \"$@\"\n",
            bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
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
