//! Server and connection commands: INFO, CONFIG, CLIENT, COMMAND, AUTH,
//! SLOWLOG, DEBUG, and the process itself (daemonize, pidfile, logfile,
//! signals, stock redis.conf).

mod common;
use common::{wait_until, Server, Value};
use std::time::Duration;

fn err(v: &Value) -> String {
    match v {
        Value::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .trim()
        .to_string()
}

#[test]
fn info_sections_and_fields() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "1", "EX", "100"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "missing"]);
    c.cmd(&["NOSUCH"]);
    let info = c.cmd(&["INFO"]).text();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(info.contains(section), "missing {section}");
    }
    assert!(!info.contains("# Commandstats"));
    assert_eq!(info_field(&info, "redis_version"), "7.0.15");
    assert_eq!(info_field(&info, "tcp_port"), s.port.to_string());
    assert_eq!(info_field(&info, "role"), "master");
    assert_eq!(info_field(&info, "connected_slaves"), "0");
    assert_eq!(info_field(&info, "master_failover_state"), "no-failover");
    let replid = info_field(&info, "master_replid");
    assert_eq!(replid.len(), 40);
    assert!(replid.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(info_field(&info, "master_replid2"), "0".repeat(40));
    assert_eq!(info_field(&info, "master_repl_offset"), "0");
    assert_eq!(info_field(&info, "second_repl_offset"), "-1");
    assert_eq!(info_field(&info, "repl_backlog_size"), "1048576");
    assert_eq!(info_field(&info, "keyspace_hits"), "1");
    assert_eq!(info_field(&info, "keyspace_misses"), "1");
    assert!(info_field(&info, "db0").starts_with("keys=2,expires=1,avg_ttl="));
    assert!(info_field(&info, "errorstat_ERR").starts_with("count="));
    assert_eq!(info_field(&info, "connected_clients"), "1");
    assert!(info_field(&info, "used_memory").parse::<u64>().unwrap() > 0);
    // Sections are separated by one blank line, fields end with CRLF.
    assert!(info.contains("\r\n\r\n# Clients\r\n"));
    let all = c.cmd(&["INFO", "all"]).text();
    assert!(all.contains("cmdstat_set:calls=2,"));
    assert!(all.contains("cmdstat_get:calls=2,"));
    let two = c.cmd(&["INFO", "keyspace", "CPU"]).text();
    assert!(two.starts_with("# CPU\r\n"));
    assert!(two.contains("# Keyspace"));
    assert!(!two.contains("# Server"));
    // The replid is stable within a run.
    let again = c.cmd(&["INFO", "replication"]).text();
    assert_eq!(info_field(&again, "master_replid"), replid);
}

#[test]
fn config_get_set_resetstat() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let port = c.cmd(&["CONFIG", "GET", "port"]);
    assert_eq!(
        port,
        Value::Array(vec![Value::bulk("port"), Value::bulk(&s.port.to_string())])
    );
    let many = c.cmd(&["CONFIG", "GET", "maxmemory", "databases"]);
    assert_eq!(many.array().len(), 4);
    assert!(c.cmd(&["CONFIG", "GET", "*"]).array().len() > 200);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "10mb", "hz", "20"]),
        Value::ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]).array()[1],
        Value::bulk("10485760")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hz"]).array()[1],
        Value::bulk("20")
    );
    // All or nothing.
    let e = err(&c.cmd(&["CONFIG", "SET", "hz", "30", "maxmemory", "lots"]));
    assert!(
        e.starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory')"),
        "{e}"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hz"]).array()[1],
        Value::bulk("20")
    );
    assert!(err(&c.cmd(&["CONFIG", "SET", "nosuch", "1"])).starts_with("ERR Unknown option"));
    assert!(
        err(&c.cmd(&["CONFIG", "SET", "daemonize", "yes"])).contains("can't set immutable config")
    );
    c.cmd(&["SET", "x", "1"]);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Value::ok());
    // As in Redis, the RESETSTAT itself is counted after the reset.
    let info = c.cmd(&["INFO", "stats"]).text();
    assert_eq!(info_field(&info, "total_commands_processed"), "1");
    assert_eq!(
        err(&c.cmd(&["CONFIG", "REWRITE"])),
        "ERR The server is running without a config file"
    );
    assert_eq!(
        err(&c.cmd(&["CONFIG", "FOO"])),
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
    );
}

#[test]
fn config_rewrite_keeps_the_file() {
    let dir = common::tempdir::TempDir::new("rewrite");
    let conf = dir.path().join("cascade.conf");
    std::fs::write(&conf, "# my settings\nhz 15\n\n# memory\nmaxmemory 1mb\n").unwrap();
    let s = Server::start(&[conf.to_str().unwrap()]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hz"]).array()[1],
        Value::bulk("15")
    );
    c.cmd(&[
        "CONFIG",
        "SET",
        "hz",
        "25",
        "maxmemory-policy",
        "allkeys-lru",
    ]);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), Value::ok());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# my settings\nhz 25\n"), "{text}");
    assert!(text.contains("# memory\nmaxmemory 1mb"), "{text}");
    assert!(text.contains("maxmemory-policy allkeys-lru"), "{text}");
}

#[test]
fn auth_and_requirepass() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut c = s.conn();
    assert_eq!(
        err(&c.cmd(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        err(&c.cmd(&["AUTH", "wrong"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        err(&c.cmd(&["AUTH", "bob", "secret"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.cmd(&["AUTH", "secret"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Value::Nil);
    let mut d = s.conn();
    assert_eq!(d.cmd(&["AUTH", "default", "secret"]), Value::ok());
    let mut e = s.conn();
    assert!(err(&e.cmd(&["HELLO", "3"])).starts_with("NOAUTH HELLO must be called"));
    assert!(matches!(
        e.cmd(&["HELLO", "3", "AUTH", "default", "secret"]),
        Value::Map(_)
    ));
    assert_eq!(e.cmd(&["PING"]), Value::Simple("PONG".into()));
    // Unauthenticated clients may not send huge requests.
    let mut f = s.conn();
    f.send_raw(b"*20\r\n");
    let out = String::from_utf8_lossy(&f.read_to_close()).into_owned();
    assert_eq!(
        out,
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    let no_pass = Server::start(&[]);
    let mut g = no_pass.conn();
    assert!(
        err(&g.cmd(&["AUTH", "x"])).starts_with("ERR AUTH <password> called without any password")
    );
}

#[test]
fn client_commands() {
    let s = Server::start(&["--shards", "2"]);
    let mut a = s.conn();
    let mut b = s.conn();
    let id_a = a.cmd(&["CLIENT", "ID"]).int();
    let id_b = b.cmd(&["CLIENT", "ID"]).int();
    assert_ne!(id_a, id_b);
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Value::Nil);
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), Value::ok());
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Value::bulk("alpha"));
    assert_eq!(
        err(&a.cmd(&["CLIENT", "SETNAME", "a b"])),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let list = a.cmd(&["CLIENT", "LIST"]).text();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={id_a} ")));
    assert!(list.contains("name=alpha"));
    let info = a.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.starts_with(&format!("id={id_a} ")));
    let only_b = a.cmd(&["CLIENT", "LIST", "ID", &id_b.to_string()]).text();
    assert_eq!(only_b.lines().count(), 1);
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &id_b.to_string()]),
        Value::Int(1)
    );
    assert!(b.read_to_close().is_empty());
    wait_until(Duration::from_secs(5), "killed client gone", || {
        a.cmd(&["CLIENT", "LIST"]).text().lines().count() == 1
    });
    assert_eq!(
        err(&a.cmd(&["CLIENT", "KILL", "1.2.3.4:5"])),
        "ERR No such client"
    );
    assert_eq!(a.cmd(&["CLIENT", "KILL", "TYPE", "normal"]), Value::Int(0));
    assert_eq!(
        err(&a.cmd(&["CLIENT", "NOPE"])),
        "ERR unknown subcommand 'NOPE'. Try CLIENT HELP."
    );
    assert_eq!(a.cmd(&["CLIENT", "NO-EVICT", "on"]), Value::ok());
    // CLIENT PAUSE WRITE holds writes but not reads.
    assert_eq!(a.cmd(&["CLIENT", "PAUSE", "300", "WRITE"]), Value::ok());
    let started = std::time::Instant::now();
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "x"]), Value::Nil);
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(c.cmd(&["SET", "x", "1"]), Value::ok());
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(a.cmd(&["CLIENT", "UNPAUSE"]), Value::ok());
}

#[test]
fn command_introspection() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let count = c.cmd(&["COMMAND", "COUNT"]).int();
    assert!(count > 60);
    let info = c.cmd(&["COMMAND", "INFO", "get", "mset", "nosuch"]);
    let arr = info.array();
    assert_eq!(arr[0].array()[0], Value::bulk("get"));
    assert_eq!(arr[0].array()[1], Value::Int(2));
    assert_eq!(arr[1].array()[1], Value::Int(-3));
    assert_eq!(arr[1].array()[5], Value::Int(2));
    assert_eq!(arr[2], Value::Nil);
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        Value::Array(vec![Value::bulk("a"), Value::bulk("b")])
    );
    assert_eq!(c.cmd(&["COMMAND", "LIST"]).array().len() as i64, count);
    let filtered = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"]);
    assert!(filtered.array().contains(&Value::bulk("getrange")));
    assert!(!filtered.array().contains(&Value::bulk("set")));
    assert_eq!(c.cmd(&["COMMAND"]).array().len() as i64, count);
    let docs = c.cmd(&["COMMAND", "DOCS", "get"]);
    assert_eq!(docs.array().len(), 2);
}

#[test]
fn slowlog_and_debug() {
    let s = Server::start(&[
        "--enable-debug-command",
        "yes",
        "--slowlog-log-slower-than",
        "0",
    ]);
    let mut c = s.conn();
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v"]);
    let entries = c.cmd(&["SLOWLOG", "GET", "1"]);
    assert_eq!(entries.array().len(), 1);
    assert!(c.cmd(&["SLOWLOG", "LEN"]).int() >= 1);
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0"]), Value::ok());
    assert_eq!(
        c.cmd(&["DEBUG", "POPULATE", "1000", "pk", "20"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["STRLEN", "pk:7"]), Value::Int(20));
    assert!(c
        .cmd(&["DEBUG", "OBJECT", "pk:7"])
        .text()
        .contains("encoding:embstr"));
    assert!(c.cmd(&["DBSIZE"]).int() >= 1000);
    let no_debug = Server::start(&[]);
    assert!(err(&no_debug.conn().cmd(&["DEBUG", "SLEEP", "0"]))
        .starts_with("ERR DEBUG command not allowed"));
}

#[test]
fn slowlog_thresholds_follow_config_set() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        Value::ok()
    );
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v"]);
    assert!(c.cmd(&["SLOWLOG", "LEN"]).int() >= 1);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        Value::ok()
    );
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Value::Int(0));
}

#[test]
fn maxclients_is_enforced() {
    let s = Server::start(&["--maxclients", "2"]);
    let mut a = s.conn();
    // The harness's readiness probe may not be gone yet.
    wait_until(Duration::from_secs(5), "only this client left", || {
        a.cmd(&["CLIENT", "LIST"]).text().lines().count() == 1
    });
    let mut b = s.conn();
    assert_eq!(b.cmd(&["PING"]), Value::Simple("PONG".into()));
    let mut c = s.conn();
    assert_eq!(
        String::from_utf8_lossy(&c.read_to_close()),
        "-ERR max number of clients reached\r\n"
    );
}

#[test]
fn sigterm_shuts_down_cleanly_and_logs_like_redis() {
    let mut s = Server::start(&["--shards", "2"]);
    let log = s.log_text();
    assert!(log.contains("Server initialized"), "{log}");
    assert!(log.contains("* Ready to accept connections tcp"), "{log}");
    let first = log.lines().next().unwrap();
    // <pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <level> <text>
    let (pid, rest) = first.split_once(':').unwrap();
    assert_eq!(pid, s.child.id().to_string());
    assert!(rest.as_bytes()[0].is_ascii_uppercase());
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    let log = s.log_text();
    assert!(
        log.contains("Received SIGTERM scheduling shutdown..."),
        "{log}"
    );
    assert!(log.contains("ready to exit, bye bye"), "{log}");
}

#[test]
fn shutdown_command_exits() {
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    c.send_raw(&common::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    let _ = c.read_to_close();
    wait_until(Duration::from_secs(10), "process exit", || {
        matches!(s.child.try_wait(), Ok(Some(_)))
    });
}

#[test]
fn daemonize_pidfile_logfile() {
    let dir = common::tempdir::TempDir::new("daemon");
    let pidfile = dir.path().join("cascade.pid");
    let logfile = dir.path().join("cascade.log");
    let port = common::free_port();
    let status = std::process::Command::new(common::cascade_bin())
        .args([
            "--port",
            &port.to_string(),
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
        ])
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--logfile")
        .arg(&logfile)
        .arg("--dir")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the launching process returns at once");
    wait_until(Duration::from_secs(20), "pidfile", || pidfile.exists());
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until(Duration::from_secs(20), "server answers", || {
        common::Conn::try_connect(port).is_some()
    });
    let mut c = common::Conn::connect(port);
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    let info = c.cmd(&["INFO", "server"]).text();
    assert_eq!(info_field(&info, "process_id"), pid.to_string());
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    wait_until(Duration::from_secs(10), "pidfile removed", || {
        !pidfile.exists()
    });
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("Ready to accept connections"), "{log}");
}

#[test]
fn stock_debian_redis_conf_starts() {
    let conf = std::path::Path::new("/etc/redis/redis.conf");
    assert!(
        conf.exists(),
        "Debian's redis.conf is needed (apt-get install redis-server)"
    );
    let dir = common::tempdir::TempDir::new("stock");
    // The stock file daemonizes and logs under /var; override those for a test.
    let s = Server::start(&[
        conf.to_str().unwrap(),
        "--daemonize",
        "no",
        "--pidfile",
        dir.path().join("p.pid").to_str().unwrap(),
        "--supervised",
        "no",
    ]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfsync"]).array()[1],
        Value::bulk("everysec")
    );
}

#[test]
fn bad_config_is_fatal_like_redis() {
    let out = std::process::Command::new(common::cascade_bin())
        .args(["--port", "0", "--nosuchdirective", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("*** FATAL CONFIG FILE ERROR"), "{text}");
    assert!(
        text.contains("Bad directive or wrong number of arguments"),
        "{text}"
    );
}

#[test]
fn second_server_on_same_port_fails() {
    let s = Server::start(&[]);
    let out = std::process::Command::new(common::cascade_bin())
        .args(["--port", &s.port.to_string(), "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Address already in use"), "{text}");
}

#[test]
fn two_servers_started_at_once_on_one_port_leave_exactly_one_running() {
    // Both servers probe a free port; without a claim on the address both
    // would join the same SO_REUSEPORT group and share the port.
    for round in 0..4 {
        let port = common::free_port();
        let dirs = [
            common::tempdir::TempDir::new("race-a"),
            common::tempdir::TempDir::new("race-b"),
        ];
        let mut children: Vec<_> = dirs
            .iter()
            .map(|d| {
                std::process::Command::new(common::cascade_bin())
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--shards", "2"])
                    .arg("--dir")
                    .arg(d.path())
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut exited = None;
        common::wait_until(
            Duration::from_secs(20),
            "one of two servers to exit",
            || {
                for (i, c) in children.iter_mut().enumerate() {
                    if let Ok(Some(status)) = c.try_wait() {
                        exited = Some((i, status));
                        return true;
                    }
                }
                false
            },
        );
        let (loser, status) = exited.unwrap();
        let winner = 1 - loser;
        assert_eq!(status.code(), Some(1), "round {round}");
        let mut out = String::new();
        use std::io::Read;
        children[loser]
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(
            out.contains("Address already in use"),
            "round {round}: {out}"
        );
        // The other one serves, alone, every connection made to the port
        // (once it listens: on a loaded machine the loser can exit first).
        common::wait_until(Duration::from_secs(20), "the winner to listen", || {
            common::Conn::try_connect(port).is_some()
        });
        for _ in 0..20 {
            let mut c = common::Conn::connect(port);
            assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
        }
        assert!(
            children[winner].try_wait().unwrap().is_none(),
            "round {round}"
        );
        let _ = children[winner].kill();
        let _ = children[winner].wait();
    }
}

#[test]
fn monitor_streams_commands_from_every_shard() {
    let s = Server::start(&["--shards", "2"]);
    let mut m = s.conn();
    assert_eq!(m.cmd(&["MONITOR"]), Value::ok());
    let mut c = s.conn();
    c.cmd(&["CONFIG", "GET", "port"]);
    for i in 0..10 {
        c.cmd(&["SET", &format!("k{i}"), "a b\n\u{1}"]);
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["GET", "x"]);
    for i in 0..10 {
        let line = m.read().text();
        // +<secs>.<usecs> [<db> <addr>] "SET" "k" "v"
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(ts.contains('.') && ts.len() > 10, "{line}");
        assert!(rest.starts_with("[0 127.0.0.1:"), "{line}");
        assert!(
            rest.ends_with(&format!("] \"SET\" \"k{i}\" \"a b\\n\\x01\"")),
            "admin commands are not shown, arguments are quoted: {line}"
        );
    }
    assert!(m.read().text().ends_with("\"SELECT\" \"3\""));
    assert!(m.read().text().contains("[3 127.0.0.1:"));
    // RESET leaves monitor mode.
    m.send(&[b"RESET"]);
    assert_eq!(m.read(), Value::Simple("RESET".into()));
    c.cmd(&["PING"]);
    assert_eq!(m.cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn too_low_memlock_limit_gets_a_clear_hint() {
    let bin = common::cascade_bin();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -l 256 && exec {} --port 0 --save ''",
            bin.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("RLIMIT_MEMLOCK"), "{text}");
    assert!(text.contains("ulimit -l"), "{text}");
}

#[test]
fn a_low_soft_memlock_limit_is_raised_and_the_server_starts() {
    // Non-root users typically have soft = hard = 8 MB; a lower soft limit
    // is raised up to the hard one. A free port can be taken by another
    // test between probing and binding: retry on a new one then.
    let bin = common::cascade_bin();
    // Its own directory: a dump.rdb in the working directory would make
    // it answer -LOADING first.
    let dir = common::tempdir::TempDir::new("memlock");
    for attempt in 0..5 {
        let port = common::free_port();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -S -l 400 && exec {} --port {port} --bind 127.0.0.1 --save '' --dir {}",
                bin.display(),
                dir.path().display()
            ))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut answered = false;
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if let Some(mut c) = common::Conn::try_connect(port) {
                c.send(&[b"PING"]);
                if let Ok(v) = common::read_value(&mut c.reader) {
                    answered = v == Value::Simple("PONG".into());
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        let _ = child.kill();
        let _ = child.wait();
        if answered && !exited {
            return;
        }
        assert!(attempt < 4, "the server never answered PING");
    }
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::start(&["--timeout", "1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    let started = std::time::Instant::now();
    assert!(c.read_to_close().is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn timeout_set_at_runtime_closes_idle_clients_but_not_subscribers_or_blocked_ones() {
    let s = Server::start(&[]);
    let mut idle = s.conn();
    let mut subscriber = s.conn();
    let mut blocked = s.conn();
    assert_eq!(idle.cmd(&["PING"]), Value::Simple("PONG".into()));
    subscriber.cmd(&["SUBSCRIBE", "news"]);
    blocked.send(&[b"BLPOP", b"list", b"0"]);
    let mut admin = s.conn();
    wait_until(Duration::from_secs(5), "the BLPOP to block", || {
        common::info_field(&mut admin, "clients", "blocked_clients") == "1"
    });
    // The setting applies to connections opened before it, as in Redis.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "1"]), Value::ok());
    let started = std::time::Instant::now();
    // The admin connection stays busy, so only the others are idle.
    let pinger = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_millis(3500) {
            assert_eq!(admin.cmd(&["PING"]), Value::Simple("PONG".into()));
            std::thread::sleep(Duration::from_millis(100));
        }
        admin
    });
    assert!(idle.read_to_close().is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // Idle for longer than that, the subscriber and the blocked client stay.
    let mut admin = pinger.join().unwrap();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "0"]), Value::ok());
    assert_eq!(admin.cmd(&["PUBLISH", "news", "hi"]), Value::Int(1));
    assert_eq!(
        subscriber.read(),
        Value::Array(vec![
            Value::bulk("message"),
            Value::bulk("news"),
            Value::bulk("hi")
        ])
    );
    assert_eq!(admin.cmd(&["RPUSH", "list", "x"]), Value::Int(1));
    assert_eq!(
        blocked.read(),
        Value::Array(vec![Value::bulk("list"), Value::bulk("x")])
    );
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.conn();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    // The server closes the connection once the buffer passes 1 MB; later
    // writes may fail, which is the point.
    for _ in 0..32 {
        if std::io::Write::write_all(&mut c.stream_ref(), &chunk).is_err() {
            break;
        }
    }
    let _ = c.read_to_close();
    let log = s.log_text();
    assert!(log.contains("max query buffer length"), "{log}");
    assert_eq!(s.conn().cmd(&["EXISTS", "k"]), Value::Int(0));
}

#[test]
fn tcp_backlog_is_the_listen_backlog() {
    let s = Server::start(&["--tcp-backlog", "77"]);
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", s.port)])
        .output()
        .expect("ss (iproute2) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.trim().is_empty(), "no listener found");
    for line in text.lines() {
        let send_q = line.split_whitespace().nth(2).unwrap();
        assert_eq!(send_q, "77", "{text}");
    }
}

#[test]
fn a_bug_on_any_shard_is_fatal_with_a_report_instead_of_a_hang() {
    // The panic is raised on the last shard, whatever shard serves us: a
    // shard thread that died quietly used to leave clients hanging and
    // SIGTERM unanswered.
    let mut s = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    c.set_read_timeout(Duration::from_secs(20));
    c.send_raw(&common::encode(&[b"DEBUG", b"PANIC"]));
    let _ = c.read_to_close();
    wait_until(Duration::from_secs(20), "process exit", || {
        matches!(s.child.try_wait(), Ok(Some(_)))
    });
    let status = s.child.try_wait().unwrap().unwrap();
    assert!(!status.success(), "{status:?}");
    let log = s.log_text();
    assert!(
        log.contains("# Guru Meditation: DEBUG PANIC called at Unix time"),
        "{log}"
    );
    assert!(log.contains("=== CASCADE BUG REPORT START"), "{log}");
    assert!(log.contains("=== CASCADE BUG REPORT END"), "{log}");
    // The report names the shard thread that failed.
    assert!(log.contains("Panic in thread 'cascade-shard"), "{log}");
}

/// A local address that is not loopback (the host's own interface), if
/// the machine has one: connecting to it from here is a non-local client.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connect only picks the route and source address.
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn first_reply_from(ip: std::net::IpAddr, port: u16) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect((ip, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn protected_mode_refuses_non_local_clients_without_a_password() {
    let s = Server::start(&["--bind", "* -::*"]);
    // Loopback clients are always served.
    let loopback = std::net::IpAddr::from([127, 0, 0, 2]);
    assert_eq!(first_reply_from(loopback, s.port), "+PONG\r\n");
    let Some(outside) = non_loopback_address() else {
        eprintln!("no non-loopback address on this host: only the loopback half was checked");
        return;
    };
    let denied = first_reply_from(outside, s.port);
    assert!(
        denied.starts_with("-DENIED Redis is running in protected mode"),
        "{denied}"
    );
    let info = s.conn().cmd(&["INFO", "stats"]).text();
    assert_eq!(info_field(&info, "rejected_connections"), "1");

    // A password lifts protected mode (the client must then authenticate).
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), Value::ok());
    assert!(first_reply_from(outside, s.port).starts_with("-NOAUTH"));
    assert_eq!(c.cmd(&["AUTH", "pw"]), Value::ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), Value::ok());
    assert!(first_reply_from(outside, s.port).starts_with("-DENIED"));
    // And so does turning it off.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "protected-mode", "no"]),
        Value::ok()
    );
    assert_eq!(first_reply_from(outside, s.port), "+PONG\r\n");
}

#[test]
fn latencystats_follow_latency_tracking_and_its_percentiles() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.conn();
    let latency = |c: &mut common::Conn, cmd: &str| -> Option<String> {
        let info = c.cmd(&["INFO", "latencystats"]).text();
        assert!(info.starts_with("# Latencystats\r\n"), "{info}");
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("latency_percentiles_usec_{cmd}:")))
            .map(|v| v.trim().to_string())
    };
    // Keys on both shards, one of the batches pipelined.
    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), Value::ok());
    }
    let mut buf = Vec::new();
    for i in 0..20 {
        buf.extend(common::encode(&[b"GET", format!("k{i}").as_bytes()]));
    }
    c.send_raw(&buf);
    for _ in 0..20 {
        assert_eq!(c.read(), Value::bulk("v"));
    }
    for cmd in ["set", "get"] {
        let v = latency(&mut c, cmd).unwrap_or_else(|| panic!("no {cmd} latency"));
        let parts: Vec<&str> = v.split(',').collect();
        assert_eq!(parts.len(), 3, "{v}");
        for (part, name) in parts.iter().zip(["p50", "p99", "p99.9"]) {
            let (n, value) = part.split_once('=').unwrap();
            assert_eq!(n, name, "{v}");
            let (_, decimals) = value.split_once('.').unwrap();
            assert_eq!(decimals.len(), 3, "{v}");
            assert!(value.parse::<f64>().unwrap() > 0.0, "{v}");
        }
    }
    // Not part of plain INFO; part of INFO all.
    assert!(!c.cmd(&["INFO"]).text().contains("# Latencystats"));
    assert!(c
        .cmd(&["INFO", "all"])
        .text()
        .contains("latency_percentiles_usec_get:"));

    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "0 50 100"
        ]),
        Value::ok()
    );
    let v = latency(&mut c, "get").unwrap();
    assert!(
        v.starts_with("p0=") && v.contains(",p50=") && v.contains(",p100="),
        "{v}"
    );

    assert_eq!(
        c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Value::ok());
    assert_eq!(c.cmd(&["SET", "a", "b"]), Value::ok());
    assert_eq!(latency(&mut c, "set"), None);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["SET", "a", "b"]), Value::ok());
    assert!(latency(&mut c, "set").is_some());
}

#[test]
fn every_command_is_described_like_redis() {
    // COMMAND INFO of every command Cascade has, against redis-server's.
    // Left out: the container commands (Redis describes them by their
    // subcommands, which Cascade's table does not list yet), and AUTH and
    // HELLO, which Cascade keeps out of MONITOR and the slow log by flags.
    let s = Server::start(&[]);
    let listed = s.conn().cmd(&["COMMAND", "LIST"]);
    let skip = [
        "acl", "latency", "object", "memory", "config", "client", "slowlog", "pubsub", "xgroup",
        "xinfo", "script", "auth", "hello",
    ];
    let names: Vec<String> = listed
        .array()
        .iter()
        .map(|v| v.text())
        .filter(|n| !skip.contains(&n.as_str()))
        .collect();
    assert!(names.len() > 190, "{}", names.len());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    common::family::assert_command_info_matches_redis(&refs);
}

#[test]
fn subcommands_are_counted_apart_like_redis() {
    // INFO commandstats and latencystats name a container's subcommands
    // `container|sub`, as Redis 7.0 does; the same calls give the same
    // names (and counts) on both servers.
    let s = Server::start(&["--shards", "2"]);
    let r = Server::start_redis(&[]);
    let lines = |srv: &Server, section: &str, prefix: &str| -> Vec<String> {
        let mut c = srv.conn();
        for call in [
            vec!["CONFIG", "RESETSTAT"],
            vec!["CONFIG", "GET", "port"],
            vec!["config", "get", "hz"],
            vec!["CLIENT", "ID"],
            vec!["COMMAND", "COUNT"],
            vec!["SET", "k", "v"],
            vec!["OBJECT", "ENCODING", "k"],
            vec!["FUNCTION", "STATS"],
            vec!["SCRIPT", "EXISTS", "x"],
            vec!["SLOWLOG", "LEN"],
            vec!["MEMORY", "USAGE", "k"],
            vec!["XGROUP", "HELP"],
            vec!["PUBSUB", "NUMPAT"],
        ] {
            c.cmd(&call);
        }
        let text = c.cmd(&["INFO", section]).text();
        let mut names: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| match prefix {
                // Counts, not timings.
                "cmdstat_" => {
                    let (name, rest) = l.split_once(':').unwrap();
                    format!("{name}:{}", rest.split(',').next().unwrap())
                }
                _ => l.split(':').next().unwrap().to_string(),
            })
            .collect();
        names.sort();
        names
    };
    let ours = lines(&s, "commandstats", "cmdstat_");
    assert!(
        ours.contains(&"cmdstat_config|get:calls=2".to_string())
            && ours.contains(&"cmdstat_function|stats:calls=1".to_string()),
        "{ours:?}"
    );
    assert_eq!(ours, lines(&r, "commandstats", "cmdstat_"));
    assert_eq!(
        lines(&s, "latencystats", "latency_percentiles_usec_"),
        lines(&r, "latencystats", "latency_percentiles_usec_")
    );
}

/// Redis looks a container's subcommand up and checks the arity before
/// anything else: inside MULTI the refusal aborts EXEC, scripts, ACL
/// DRYRUN and COMMAND GETKEYS refuse the same calls, and the subscribed
/// context names `container|sub` (found by differential fuzzing).
#[test]
fn subcommands_are_looked_up_before_anything_runs_like_redis() {
    common::family::run_script(
        "2",
        &[
            "CLIENT FOO",
            "CLIENT SETNAME",
            "CLIENT",
            "CONFIG SET hz 10 timeout",
            "XINFO STREAM",
            "OBJECT HELP x",
            "COMMAND GETKEYS GET",
            "COMMAND GETKEYS EVAL x 0",
            "COMMAND GETKEYS PING",
            "COMMAND GETKEYS SET a",
            "ACL DRYRUN default CLIENT SETNAME",
            "ACL DRYRUN default CLIENT BOGUS",
            "MULTI",
            "CLIENT FOO",
            "EXEC",
            "MULTI",
            "CLIENT SETNAME",
            "GET a",
            "EXEC",
            "MULTI",
            "SSUBSCRIBE x",
            "EXEC",
            "EVAL \"return redis.call('CONFIG','BAD')\" 0",
            "EVAL \"return redis.call('XINFO','STREAM')\" 0",
            "SUBSCRIBE x",
            "CLIENT SETNAME n",
            "CLIENT BAD",
        ],
    );
}

/// An unknown subcommand or a wrong argument count is refused before
/// authentication, as Redis does.
#[test]
fn shape_errors_come_before_noauth_like_redis() {
    let s = common::family::cascade(&["--requirepass", "pw"]);
    let r = common::family::redis(&["--requirepass", "pw"]);
    let (mut c, mut rc) = (s.conn(), r.conn());
    for call in [
        &["GET"][..],
        &["CLIENT", "FOO"],
        &["CLIENT", "SETNAME"],
        &["GET", "k"],
    ] {
        let args: Vec<&[u8]> = call.iter().map(|a| a.as_bytes()).collect();
        common::assert_same_reply(&mut c, &mut rc, &args);
    }
}

/// COMMAND describes every command Cascade has as Redis 7.0 does: name,
/// arity, flags and ACL categories (in Redis's order), key positions and
/// tips; containers as containers. (Key specs and subcommand entries are
/// not compared: ours are simpler.)
#[test]
fn the_command_table_is_described_like_redis() {
    let (s, r) = (common::family::cascade(&[]), common::family::redis(&[]));
    let entries = |srv: &Server| {
        let all = srv.conn().cmd(&["COMMAND"]);
        all.array()
            .iter()
            .map(|e| (e.array()[0].text(), e.array()[..8].to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (ours, theirs) = (entries(&s), entries(&r));
    let mut compared = 0;
    for (name, entry) in &ours {
        let redis_entry = theirs
            .get(name)
            .unwrap_or_else(|| panic!("Redis 7.0 has no command {name:?}"));
        assert_eq!(entry, redis_entry, "COMMAND INFO {name} (Cascade left)");
        compared += 1;
    }
    assert!(compared > 200, "only {compared} commands compared");
}
