//! The example configurations of `tuning/` stay valid and drop-in.
//!
//! Cascade starts with `tuning/master.conf` and `tuning/replica.conf`, CONFIG
//! GET shows what they set, and the replica links to the master and follows
//! its writes. A real redis-server 7.0 accepts both files once Cascade's own
//! directives are taken out, links the same way, and reads every value in
//! them as Cascade does. Each run uses a copy of the file whose host paths
//! (`dir`, `logfile`, `pidfile`) point into a temporary directory, since
//! both servers check them while reading the file; the command line then
//! overrides port, bind, dir, logfile, save, daemonize and, for the replica,
//! replicaof, as an operator starting a trial instance would.

mod common;

use cascade::config::table::{lookup, CASCADE, TABLE};
use cascade::config::{load_from_str, Origin};
use common::repl::field;
use common::tempdir::TempDir;
use common::{wait_until, Conn, Server, Value};
use std::path::PathBuf;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// Directives the command lines below override.
const OVERRIDDEN: &[&str] = &[
    "port",
    "bind",
    "dir",
    "logfile",
    "pidfile",
    "save",
    "daemonize",
    "replicaof",
];

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tuning")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The directive (lower-case) of a setting line; `None` for comments and
/// blank lines.
fn directive(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name = line.split_whitespace().next().unwrap_or_default();
    Some(name.to_ascii_lowercase())
}

/// Directive and arguments of every setting line, in file order.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let name = directive(line)?;
            let args = line.trim()[name.len()..].trim().to_string();
            Some((name, args))
        })
        .collect()
}

fn setting(text: &str, name: &str) -> String {
    settings(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no `{name}` line"))
}

fn is_cascade_only(name: &str) -> bool {
    lookup(name.as_bytes()).is_some_and(|(i, _)| TABLE[i].flags & CASCADE != 0)
}

/// The example `name` as a test runs it, written into `dir`: host paths
/// inside `dir`, and without Cascade's own directives when `for_redis`.
/// Returns the file and its text.
fn prepare(name: &str, dir: &TempDir, for_redis: bool) -> (PathBuf, String) {
    let mut text = String::new();
    for line in example(name).lines() {
        let d = directive(line);
        if for_redis && d.as_deref().is_some_and(is_cascade_only) {
            continue;
        }
        let line = match d.as_deref() {
            Some("dir") => format!("dir {}", dir.path().display()),
            Some("logfile") => format!("logfile {}", dir.path().join("file.log").display()),
            Some("pidfile") => format!("pidfile {}", dir.path().join("server.pid").display()),
            _ => line.to_string(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let prefix = if for_redis { "redis" } else { "cascade" };
    let path = dir.path().join(format!("{prefix}-{name}"));
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

fn start(
    redis: bool,
    conf: &std::path::Path,
    replica_of: Option<u16>,
    password: &str,
) -> (Server, Conn) {
    let conf = conf.to_str().unwrap().to_string();
    let port = replica_of.map(|p| p.to_string()).unwrap_or_default();
    let mut args = vec![conf.as_str(), "--daemonize", "no"];
    if replica_of.is_some() {
        args.extend(["--replicaof", "127.0.0.1", port.as_str()]);
    }
    let server = if redis {
        Server::start_redis(&args)
    } else {
        Server::start(&args)
    };
    let mut conn = server.conn();
    assert_eq!(conn.cmd(&["AUTH", password]), Value::ok());
    (server, conn)
}

fn config_get(conn: &mut Conn, name: &str) -> String {
    let reply = conn.cmd(&["CONFIG", "GET", name]);
    match reply.array() {
        [key, value] if key.text() == name => value.text(),
        other => panic!("CONFIG GET {name}: {other:?}"),
    }
}

fn wait_linked(replica: &Server, password: &str) {
    wait_until(DEADLINE, "the replica's link to its master", || {
        field(replica, Some(password), "replication", "master_link_status") == "up"
    });
}

/// `name` appears in `text` as a whole word (not inside a longer directive).
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[test]
fn examples_set_known_directives_and_explain_every_replication_one() {
    let master = example("master.conf");
    let replica = example("replica.conf");
    for (file, text) in [("master.conf", &master), ("replica.conf", &replica)] {
        for (name, _) in settings(text) {
            assert!(lookup(name.as_bytes()).is_some(), "{file}: unknown {name}");
        }
    }
    // Every replication directive, and every directive of Cascade's own, is
    // explained in one of the files; Cascade's own are all set in
    // master.conf, so the checks below start servers with them.
    let both = format!("{master}\n{replica}");
    let also = [
        "replicaof",
        "masterauth",
        "masteruser",
        "requirepass",
        "rdb-del-sync-files",
        "propagation-error-behavior",
    ];
    for d in TABLE {
        let replication = ["repl-", "replica-", "min-replicas-"]
            .iter()
            .any(|p| d.name.starts_with(p))
            || also.contains(&d.name);
        if replication || d.flags & CASCADE != 0 {
            assert!(mentions(&both, d.name), "{} is not explained", d.name);
        }
        if d.flags & CASCADE != 0 {
            assert!(
                settings(&master).iter().any(|(n, _)| n == d.name),
                "master.conf does not set {}",
                d.name
            );
        }
    }
}

#[test]
fn cascade_runs_the_examples() {
    let dir = TempDir::new("tuning-conf");
    let password = setting(&example("master.conf"), "requirepass");
    assert_eq!(setting(&example("replica.conf"), "masterauth"), password);

    let (conf, _) = prepare("master.conf", &dir, false);
    let (master, mut m) = start(false, &conf, None, &password);
    for (name, value) in [
        ("shards", "7"),
        ("repl-backlog-size", "268435456"),
        ("repl-backlog-ttl", "0"),
        ("repl-diskless-sync-max-replicas", "1"),
        ("repl-sync-spill-max-size", "2147483648"),
        ("repl-ring-min-size", "33554432"),
        ("replica-protect-data", "yes"),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 536870912 134217728 60 pubsub 33554432 8388608 60",
        ),
    ] {
        assert_eq!(config_get(&mut m, name), value, "master: {name}");
    }

    let (conf, _) = prepare("replica.conf", &dir, false);
    let (replica, mut r) = start(false, &conf, Some(master.port), &password);
    for (name, value) in [
        ("replica-lazy-flush", "yes"),
        ("repl-backlog-ttl", "0"),
        ("replica-protect-data", "yes"),
        ("repl-backlog-size", "268435456"),
        ("masterauth", password.as_str()),
    ] {
        assert_eq!(config_get(&mut r, name), value, "replica: {name}");
    }
    assert_eq!(
        config_get(&mut r, "replicaof"),
        format!("127.0.0.1 {}", master.port)
    );

    wait_linked(&replica, &password);
    assert_eq!(
        field(
            &replica,
            Some(&password),
            "replication",
            "replica_protect_data_refused_syncs"
        ),
        "0"
    );
    assert_eq!(m.cmd(&["SET", "tuning:key", "from-master"]), Value::ok());
    wait_until(DEADLINE, "the master's write on the replica", || {
        r.cmd(&["GET", "tuning:key"]) == Value::bulk("from-master")
    });
    assert!(field(&master, Some(&password), "replication", "slave0").contains("state=online"));
    match r.cmd(&["SET", "tuning:key", "from-replica"]) {
        Value::Error(e) => assert!(e.starts_with("READONLY"), "{e}"),
        other => panic!("a write on the replica answered {other:?}"),
    }
}

#[test]
fn redis_server_accepts_the_examples_without_cascade_directives() {
    let dir = TempDir::new("tuning-redis");
    let password = setting(&example("master.conf"), "requirepass");

    let (conf, _) = prepare("master.conf", &dir, true);
    let (master, mut m) = start(true, &conf, None, &password);
    let (conf, _) = prepare("replica.conf", &dir, true);
    let (replica, mut r) = start(true, &conf, Some(master.port), &password);
    wait_linked(&replica, &password);

    // Redis reads every value of the files as Cascade does.
    for (name, conn) in [("master.conf", &mut m), ("replica.conf", &mut r)] {
        let (_, text) = prepare(name, &dir, false);
        let cascade = load_from_str(&text, Origin::None)
            .unwrap_or_else(|e| panic!("Cascade refuses {name}: {e}"));
        let mut compared = 0;
        for (directive, _) in settings(&text) {
            if is_cascade_only(&directive) || OVERRIDDEN.contains(&directive.as_str()) {
                continue;
            }
            compared += 1;
            let ours = cascade
                .get(&directive)
                .unwrap_or_else(|| panic!("{name}: no CONFIG GET value for {directive}"));
            assert_eq!(config_get(conn, &directive), ours, "{name}: {directive}");
        }
        assert!(
            compared >= 20,
            "{name}: only {compared} directives compared"
        );
    }
}
