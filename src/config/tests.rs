//! Behaviour tests of the config module's public API (file parsing, command
//! line, CONFIG GET/SET/REWRITE, FATAL texts). Expected texts come from
//! running redis-server 7.0.15 with the same input.
//!
//! Test-only; uses temporary directories under the system temp dir and the
//! stock /etc/redis/redis.conf, nothing else.

use super::*;
use std::path::PathBuf;

fn load(text: &str) -> Config {
    match load_from_str(text, Origin::None) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn load_err(text: &str) -> FatalConfigError {
    match load_from_str(text, Origin::None) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e,
    }
}

fn g(c: &Config, name: &str) -> String {
    c.get(name).unwrap_or_else(|| panic!("no directive {name}"))
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run(argv: &[&str], stdin: &str) -> Result<Invocation, FatalConfigError> {
    let mut input = stdin.as_bytes();
    load_from_args(&args(argv), &mut input)
}

fn run_ok(argv: &[&str], stdin: &str) -> Config {
    match run(argv, stdin) {
        Ok(Invocation::Run(c)) => c,
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// A fresh scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "cascade-config-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p.canonicalize().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- defaults and the stock config ----------------------------------------

#[test]
fn defaults_match_redis_without_config() {
    let c = Config::default();
    assert_eq!(g(&c, "save"), "3600 1 300 100 60 10000");
    assert_eq!(g(&c, "appendfsync"), "everysec");
    assert_eq!(g(&c, "repl-backlog-size"), "1048576");
    assert_eq!(g(&c, "databases"), "16");
    assert_eq!(g(&c, "port"), "6379");
    assert_eq!(g(&c, "bind"), "* -::*");
    assert_eq!(g(&c, "protected-mode"), "yes");
    assert_eq!(g(&c, "replicaof"), "");
    assert_eq!(g(&c, "maxmemory-policy"), "noeviction");
    assert_eq!(
        g(&c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(g(&c, "latency-tracking-info-percentiles"), "50 99 99.9");
    assert_eq!(g(&c, "shards"), "0");
    assert_eq!(g(&c, "replica-protect-data"), "no");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(g(&c, "dir"), cwd.to_string_lossy());
    assert_eq!(c.port(), 6379);
    assert_eq!(c.bind(), vec!["*", "-::*"]);
    assert_eq!(c.save_points(), vec![(3600, 1), (300, 100), (60, 10000)]);
    assert_eq!(c.loglevel(), LogLevel::Notice);
    assert_eq!(c.enable_debug_command(), DebugCommandPolicy::No);
    assert_eq!(c.shards(), 0);
    assert_eq!(c.hz(), 10);
    assert_eq!(c.databases(), 16);
    assert_eq!(c.maxclients(), 10000);
    assert_eq!(c.tcp_backlog(), 511);
    assert_eq!(c.tcp_keepalive(), 300);
    assert_eq!(c.timeout(), 0);
    assert_eq!(c.proto_max_bulk_len(), 512 * 1024 * 1024);
    assert_eq!(c.client_query_buffer_limit(), 1024 * 1024 * 1024);
    assert_eq!(c.repl_backlog_size(), 1024 * 1024);
    assert_eq!(c.dbfilename(), "dump.rdb");
    assert_eq!(c.requirepass(), None);
    assert_eq!(c.masterauth(), None);
    assert_eq!(c.masteruser(), None);
    assert_eq!(c.replicaof(), None);
    assert_eq!(c.pidfile(), None);
    assert_eq!(c.logfile(), "");
    assert!(c.protected_mode());
    assert!(!c.daemonize());
    assert!(c.config_file().is_none());
    assert!(c.get("include").is_none());
    assert!(c.get("rename-command").is_none());
    assert!(c.get("user").is_none());
    assert!(c.get("loadmodule").is_none());
}

#[test]
fn stock_debian_redis_conf() {
    let path = "/etc/redis/redis.conf";
    let mut text = std::fs::read_to_string(path).expect("/etc/redis/redis.conf must exist");
    let has_dir = std::path::Path::new("/var/lib/redis").is_dir();
    if !has_dir {
        // Redis itself refuses a missing `dir`; keep the rest of the check.
        text = text.replace("\ndir /var/lib/redis\n", "\ndir /\n");
    }
    let c = match load_from_str(&text, Origin::File(path.into())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    // Values as `CONFIG GET` reports them on redis-server started with it.
    assert_eq!(g(&c, "port"), "6379");
    assert_eq!(g(&c, "bind"), "127.0.0.1 -::1");
    assert_eq!(g(&c, "save"), "3600 1 300 100 60 10000");
    assert_eq!(g(&c, "logfile"), "/var/log/redis/redis-server.log");
    assert_eq!(g(&c, "daemonize"), "yes");
    assert_eq!(g(&c, "pidfile"), "/run/redis/redis-server.pid");
    assert_eq!(g(&c, "notify-keyspace-events"), "");
    assert_eq!(
        g(&c, "client-output-buffer-limit"),
        Config::default().get("client-output-buffer-limit").unwrap()
    );
    assert_eq!(
        g(&c, "proc-title-template"),
        "{title} {listen-addr} {server-mode}"
    );
    assert_eq!(g(&c, "oom-score-adj-values"), "0 200 800");
    assert_eq!(g(&c, "auto-aof-rewrite-min-size"), "67108864");
    if has_dir {
        assert_eq!(g(&c, "dir"), "/var/lib/redis");
    }
    assert_eq!(c.config_file(), Some(std::path::Path::new(path)));
    assert_eq!(c.bind(), vec!["127.0.0.1", "-::1"]);
}

// ----- config text parsing ---------------------------------------------------

#[test]
fn comments_blank_lines_case_and_overrides() {
    let c = load(
        "# comment\n\n   \nPORT 7000\n  port   7001  \r\nLogLevel WARNING\n\tdaemonize \"yes\"\n",
    );
    assert_eq!(c.port(), 7001);
    assert_eq!(g(&c, "loglevel"), "warning");
    assert!(c.daemonize());
}

#[test]
fn aliases_in_file() {
    let c = load(
        "slaveof 10.0.0.1 6380\nslave-read-only no\nslave-serve-stale-data no\n\
         hash-max-ziplist-entries 100\nzset-max-ziplist-value 1kb\nlua-time-limit 77\n\
         min-slaves-to-write 2\nrepl-ping-slave-period 3\n",
    );
    assert_eq!(g(&c, "replicaof"), "10.0.0.1 6380");
    assert_eq!(g(&c, "slaveof"), "10.0.0.1 6380");
    assert_eq!(c.replicaof(), Some(("10.0.0.1".to_string(), 6380)));
    assert_eq!(g(&c, "replica-read-only"), "no");
    assert_eq!(g(&c, "replica-serve-stale-data"), "no");
    assert_eq!(g(&c, "hash-max-listpack-entries"), "100");
    assert_eq!(g(&c, "zset-max-listpack-value"), "1024");
    assert_eq!(g(&c, "busy-reply-threshold"), "77");
    assert_eq!(g(&c, "min-replicas-to-write"), "2");
    assert_eq!(g(&c, "repl-ping-replica-period"), "3");
    let c = load("replicaof no one\n");
    assert_eq!(c.replicaof(), None);
}

#[test]
fn save_lines_replace_defaults_then_accumulate() {
    assert_eq!(
        g(&load("save 900 1\nsave 300 10\n"), "save"),
        "900 1 300 10"
    );
    assert_eq!(g(&load("save 900 1\nsave \"\"\n"), "save"), "");
    assert_eq!(g(&load("save \"\"\nsave 60 5\n"), "save"), "60 5");
    assert_eq!(g(&load("save 1 2 3 4\n"), "save"), "1 2 3 4");
    assert_eq!(g(&load("save\n"), "save"), "");
    // A bare `save` after another one adds nothing (redis-server 7.0.15).
    assert_eq!(g(&load("save 900 1\nsave\n"), "save"), "900 1");
    assert!(load("save \"\"\n").save_points().is_empty());
}

#[test]
fn include_resets_save_accumulation_like_redis() {
    let t = TempDir::new("inc-save");
    t.write("inc.conf", "hz 11\n");
    let text = format!(
        "include {}\nsave 900 1\nsave 300 10\n",
        t.path("inc.conf").display()
    );
    let c = load(&text);
    // redis-server 7.0.15 reports "300 10" here: finishing the include
    // clears its "reading a config file" flag.
    assert_eq!(g(&c, "save"), "300 10");
    assert_eq!(c.hz(), 11);
}

#[test]
fn include_relative_glob_missing_and_loops() {
    let t = TempDir::new("inc");
    std::fs::create_dir(t.path("conf.d")).unwrap();
    t.write("conf.d/10-a.conf", "hz 5\nmaxmemory 1mb\n");
    t.write("conf.d/20-b.conf", "hz 6\n");
    t.write("conf.d/.hidden.conf", "hz 99\n");
    // Relative includes follow the `dir` set so far (Redis has chdir'ed).
    let c = load(&format!("dir {}\ninclude conf.d/*.conf\n", t.0.display()));
    assert_eq!(c.hz(), 6);
    assert_eq!(c.maxmemory(), 1024 * 1024);
    let c = load(&format!(
        "dir {}\ninclude conf.d/10-a.conf\n",
        t.0.display()
    ));
    assert_eq!(c.hz(), 5);
    // A wildcard matching nothing is fine; a missing plain file is fatal,
    // reported like Redis logs it.
    let c = load(&format!(
        "dir {}\ninclude nothing/*.conf\nhz 7\n",
        t.0.display()
    ));
    assert_eq!(c.hz(), 7);
    let e = load_err("include /nonexistent/x.conf\n");
    assert!(e.is_log_message());
    assert_eq!(
        e.to_string(),
        "Fatal error, can't open config file '/nonexistent/x.conf': No such file or directory"
    );
    // Errors inside an include point at the included file's line.
    t.write("bad.conf", "hz 1\nfoo bar\n");
    let e = load_err(&format!("include {}\n", t.path("bad.conf").display()));
    assert_eq!(e.line_number(), Some(2));
    // Include loops are bounded instead of recursing forever.
    t.write(
        "loop.conf",
        &format!("include {}\n", t.path("loop.conf").display()),
    );
    let e = load_err(&format!("include {}\n", t.path("loop.conf").display()));
    assert_eq!(e.reason(), "Too many nested include directives");
}

#[test]
fn quoting_bind_rename_user_and_misc_directives() {
    let c = load(
        "requirepass \"p\\x41ss \\\"w\\\"\"\nbind 127.0.0.1 -::1\nrename-command FLUSHALL \"\"\n\
         rename-command KEYS k2\nuser bob on >pw ~* +@all\nlist-max-ziplist-entries 5\nsentinel\n\
         logfile 'my log'\n",
    );
    assert_eq!(c.requirepass(), Some(b"pAss \"w\"".to_vec()));
    assert_eq!(c.bind(), vec!["127.0.0.1", "-::1"]);
    assert_eq!(g(&c, "bind"), "127.0.0.1 -::1");
    assert_eq!(
        c.rename_commands(),
        &[
            (b"FLUSHALL".to_vec(), b"".to_vec()),
            (b"KEYS".to_vec(), b"k2".to_vec())
        ]
    );
    assert_eq!(c.users().len(), 1);
    assert_eq!(c.users()[0][0], b"bob".to_vec());
    assert_eq!(c.logfile(), "my log");
    assert_eq!(g(&load("bind \"\"\n"), "bind"), "");
    assert_eq!(g(&load("bind\n"), "bind"), "");
}

#[test]
fn every_kind_reports_redis_reason_in_file() {
    let cases: &[(&str, &str)] = &[
        ("daemonize maybe", "argument must be 'yes' or 'no'"),
        ("databases abc", "argument couldn't be parsed into an integer"),
        ("port 0x10", "argument couldn't be parsed into an integer"),
        ("port 99999", "argument must be between 0 and 65535 inclusive"),
        ("maxmemory 10zb", "argument must be a memory value"),
        ("maxmemory-clients 200%", "percentage argument must be less or equal to 100"),
        ("unixsocketperm 9", "argument couldn't be parsed as an octal number"),
        (
            "loglevel nothing",
            "argument(s) must be one of the following: debug, verbose, notice, warning",
        ),
        ("dbfilename a/b", "dbfilename can't be a path, just a filename"),
        ("save 1", "Invalid save parameters"),
        ("replicaof h x", "Invalid master port"),
        ("replicaof", "wrong number of arguments"),
        ("oom-score-adj-values 1 2", "wrong number of arguments"),
        ("notify-keyspace-events a b", "wrong number of arguments"),
        ("dir /nonexistent-dir-for-test", "No such file or directory"),
        ("dir /etc/passwd", "Not a directory"),
        ("activedefrag yes", "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution"),
        ("shards 0", "argument must be between 1 and 2147483647 inclusive"),
        ("replica-protect-data maybe", "argument must be 'yes' or 'no'"),
        ("rename-command a", "Bad directive or wrong number of arguments"),
        ("user", "Bad directive or wrong number of arguments"),
        ("list-max-ziplist-entries 1 2", "Bad directive or wrong number of arguments"),
        ("sentinel monitor x", "sentinel directive while not in sentinel mode"),
        ("loadmodule /x.so", "Module loading is not supported"),
        ("a.b", "Module config specified without value"),
        ("foo \"bar", "Unbalanced quotes in configuration line"),
    ];
    for (line, reason) in cases {
        let e = load_err(&format!("port 1\n{line}\n"));
        assert_eq!(e.reason(), *reason, "{line}");
        assert_eq!(e.line_number(), Some(2), "{line}");
    }
    let c = load("shards 4\nreplica-protect-data yes\n");
    assert_eq!(c.shards(), 4);
    assert!(c.replica_protect_data());
}

#[test]
fn fatal_banner_texts() {
    let e = load_err("port 1\nfoo bar\n");
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 2\n>>> 'foo bar'\nBad directive or wrong number of arguments\n"
    );
    let e = load_err("  port 1 2  \n");
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 1\n>>> 'port 1 2'\nwrong number of arguments\n"
    );
    let e = load_err("databases 0\n");
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 1\n>>> 'databases 0'\nargument must be between 1 and 2147483647 inclusive\n"
    );
    let e = load_err("cluster-enabled yes\nreplicaof a 1\n");
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nreplicaof directive not allowed in cluster mode\n"
    );
    assert!(!e.is_log_message());
    let e = load_err("a.b 1\n");
    assert!(e.is_log_message());
    assert_eq!(
        e.to_string(),
        "Module Configuration detected without loadmodule directive or no ApplyConfig call: aborting"
    );
}

#[test]
fn hz_is_clamped_after_loading() {
    assert_eq!(g(&load("hz 0\n"), "hz"), "1");
    assert_eq!(g(&load("hz 100000\n"), "hz"), "500");
}

// ----- command line ------------------------------------------------------------

#[test]
fn command_line_version_help_and_defaults() {
    assert!(matches!(
        run(&["cascade", "-v"], ""),
        Ok(Invocation::Version)
    ));
    assert!(matches!(
        run(&["cascade", "--version"], ""),
        Ok(Invocation::Version)
    ));
    assert!(matches!(run(&["cascade", "-h"], ""), Ok(Invocation::Help)));
    assert!(matches!(
        run(&["cascade", "--help"], ""),
        Ok(Invocation::Help)
    ));
    let c = run_ok(&["cascade"], "");
    assert_eq!(c.port(), 6379);
    // Only the first argument is special, like redis-server.
    let e = run(&["cascade", "--port", "1", "-v"], "").unwrap_err();
    assert_eq!(e.line_number(), Some(2));
}

#[test]
fn command_line_options_override_file() {
    let t = TempDir::new("args");
    let conf = t.write("r.conf", "port 6000\nsave 900 1\nmaxmemory 1mb\n");
    let conf_s = conf.to_string_lossy().into_owned();
    let c = run_ok(
        &[
            "cascade",
            &conf_s,
            "--port",
            "7000",
            "--replicaof",
            "127.0.0.1",
            "6379",
            "--save",
            "60",
            "5",
            "--requirepass",
            "a b",
        ],
        "",
    );
    assert_eq!(c.port(), 7000);
    assert_eq!(c.replicaof(), Some(("127.0.0.1".to_string(), 6379)));
    assert_eq!(g(&c, "save"), "900 1 60 5");
    assert_eq!(c.requirepass(), Some(b"a b".to_vec()));
    assert_eq!(c.maxmemory(), 1024 * 1024);
    assert_eq!(c.config_file(), Some(conf.as_path()));
    // "--name value" in one argv word is accepted too.
    let c = run_ok(&["cascade", "--port 7001", "--save", "--hz", "20"], "");
    assert_eq!(c.port(), 7001);
    assert_eq!(g(&c, "save"), "");
    assert_eq!(c.hz(), 20);
    let c = run_ok(&["cascade", "--save"], "");
    assert_eq!(g(&c, "save"), "");
    // A multi-argument directive quoted as one word is split again.
    let c = run_ok(
        &[
            "cascade",
            "--bind",
            "* -::*",
            "--save",
            "3600 1 300 100",
            "--client-output-buffer-limit",
            "replica 1mb 512kb 10",
        ],
        "",
    );
    assert_eq!(c.bind(), vec!["*".to_string(), "-::*".to_string()]);
    assert_eq!(g(&c, "save"), "3600 1 300 100");
    assert!(g(&c, "client-output-buffer-limit").contains("slave 1048576 524288 10"));
    // Single-argument directives keep their spaces.
    let c = run_ok(&["cascade", "--requirepass", "a b"], "");
    assert_eq!(c.requirepass(), Some(b"a b".to_vec()));
}

#[test]
fn command_line_errors_show_requoted_lines() {
    // redis-server numbers the options after the file and an extra newline.
    let e = run(&["cascade", "--port", "0", "--foo", "bar"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 3\n>>> 'foo \"bar\"'\nBad directive or wrong number of arguments\n"
    );
    let e = run(
        &[
            "cascade",
            "--replicaof",
            "127.0.0.1",
            "6379",
            "--databases",
            "1",
            "2",
        ],
        "",
    )
    .unwrap_err();
    assert_eq!(e.line_number(), Some(3));
    assert!(e
        .to_string()
        .contains(">>> 'databases \"1\" \"2\"'\nwrong number of arguments\n"));
    let t = TempDir::new("args-err");
    let conf = t.write("r.conf", "port 6000\nhz 5\n");
    let e = run(&["cascade", &conf.to_string_lossy(), "--hz", "x"], "").unwrap_err();
    assert_eq!(e.line_number(), Some(4));
}

#[test]
fn command_line_missing_file_and_logfile() {
    let e = run(&["cascade", "/nonexistent/x.conf"], "").unwrap_err();
    assert!(e.is_log_message());
    assert_eq!(
        e.to_string(),
        "Fatal error, can't open config file '/nonexistent/x.conf': No such file or directory"
    );
    // Relative config paths are reported absolute, like Redis.
    let e = run(&["cascade", "missing-cascade-test.conf"], "").unwrap_err();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "Fatal error, can't open config file '{}/missing-cascade-test.conf': No such file or directory",
            cwd.display()
        )
    );
    let e = run(&["cascade", "--logfile", "/nonexistent/dir/x.log"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nCan't open the log file: No such file or directory\n"
    );
}

#[test]
fn command_line_stdin() {
    let c = run_ok(&["cascade", "-"], "port 1234\nsave 1 1\nsave 2 2\n");
    assert_eq!(c.port(), 1234);
    assert_eq!(g(&c, "save"), "1 1 2 2");
    assert!(c.config_file().is_none());
    let c = run_ok(&["cascade", "-", "--port", "5"], "port 1234\n");
    assert_eq!(c.port(), 5);
    let t = TempDir::new("stdin");
    let conf = t.write("r.conf", "port 6000\nhz 5\n");
    // `file -`: stdin is appended after the file.
    let c = run_ok(&["cascade", &conf.to_string_lossy(), "-"], "hz 7\n");
    assert_eq!((c.port(), c.hz()), (6000, 7));
    let e = run(&["cascade", "-"], "port 0\nfoo \"bar\n").unwrap_err();
    assert_eq!(e.reason(), "Unbalanced quotes in configuration line");
    assert_eq!(e.line_number(), Some(2));
}

// ----- CONFIG GET ----------------------------------------------------------------

fn names(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn config_get_patterns() {
    let c = Config::default();
    let all = c.get_matching(&[b"*"]);
    // 192 names from redis-server 7.0.15 (aliases included) + Cascade's 4;
    // hidden and file-only directives are not listed.
    assert_eq!(all.len(), 196);
    assert!(names(&all).contains(&"slaveof"));
    assert!(!names(&all).contains(&"use-exit-on-panic"));
    assert!(!names(&all).contains(&"include"));
    assert_eq!(c.get_matching(&[b"*max*"]).len(), 32);
    assert_eq!(
        names(&c.get_matching(&[b"slave*"])),
        vec![
            "slaveof",
            "slave-serve-stale-data",
            "slave-read-only",
            "slave-priority",
            "slave-announce-ip",
            "slave-announce-port",
            "slave-ignore-maxmemory",
            "slave-lazy-flush"
        ]
    );
    // Exact names are echoed as typed and deduplicated case-insensitively.
    assert_eq!(
        c.get_matching(&[b"Port", b"port", b"p?rt"]),
        vec![("Port".to_string(), "6379".to_string())]
    );
    assert_eq!(
        names(&c.get_matching(&[b"replicaof", b"slaveof", b"replicaof"])),
        vec!["replicaof", "slaveof"]
    );
    assert_eq!(
        names(&c.get_matching(&[b"maxmemory", b"port", b"nosuch", b"databases"])),
        vec!["port", "databases", "maxmemory"]
    );
    // Hidden ones need their exact name.
    assert_eq!(
        c.get_matching(&[b"use-exit-on-panic"]),
        vec![("use-exit-on-panic".to_string(), "no".to_string())]
    );
    assert!(c.get_matching(&[b"use-exit-*"]).is_empty());
    assert!(c.get_matching(&[b"include", b"rename-command"]).is_empty());
    assert_eq!(names(&c.get_matching(&[b"BIN?"])), vec!["bind"]);
    assert_eq!(c.get("SLAVEOF").as_deref(), Some(""));
}

// ----- CONFIG SET ----------------------------------------------------------------

fn set(c: &mut Config, pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
    let p: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
        .collect();
    c.set_many(&p)
}

#[test]
fn config_set_values_and_aliases() {
    let mut c = Config::default();
    assert_eq!(
        set(
            &mut c,
            &[("maxmemory", "1gb"), ("MAXMEMORY-POLICY", "ALLKEYS-LRU")]
        ),
        Ok(vec!["maxmemory", "maxmemory-policy"])
    );
    assert_eq!(g(&c, "maxmemory"), "1073741824");
    assert_eq!(g(&c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(
        set(&mut c, &[("slave-read-only", "no")]),
        Ok(vec!["replica-read-only"])
    );
    assert_eq!(g(&c, "replica-read-only"), "no");
    // Setting the same value reports no change.
    assert_eq!(set(&mut c, &[("replica-read-only", "no")]), Ok(vec![]));
    // An alias and its canonical name are distinct entries for Redis: no
    // "duplicate parameter", the later one wins.
    assert!(set(
        &mut c,
        &[("replica-read-only", "yes"), ("slave-read-only", "no")]
    )
    .is_ok());
    assert_eq!(g(&c, "replica-read-only"), "no");
    assert!(set(&mut c, &[("save", "")]).is_ok());
    assert_eq!(g(&c, "save"), "");
    assert!(set(&mut c, &[("save", "100 1 200 2")]).is_ok());
    assert_eq!(c.save_points(), vec![(100, 1), (200, 2)]);
    assert!(set(
        &mut c,
        &[(
            "client-output-buffer-limit",
            "pubsub 1k 2kb 3 replica 5 6 7"
        )]
    )
    .is_ok());
    assert_eq!(
        g(&c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 5 6 7 pubsub 1000 2048 3"
    );
    assert!(set(&mut c, &[("hz", "1000")]).is_ok());
    assert_eq!(g(&c, "hz"), "500");
    assert!(set(&mut c, &[("replica-protect-data", "yes")]).is_ok());
    assert!(c.replica_protect_data());
    assert!(set(&mut c, &[("use-exit-on-panic", "yes")]).is_ok());
}

#[test]
fn config_set_error_texts() {
    let mut c = Config::default();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("foo", "bar")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (&[("include", "x")], "ERR Unknown option or number of arguments for CONFIG SET - 'include'"),
        (&[("maxmemory", "1x")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
        (&[("daemonize", "yes")], "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
        (&[("databases", "1")], "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
        (&[("shards", "2")], "ERR CONFIG SET failed (possibly related to argument 'shards') - can't set immutable config"),
        (&[("port", "1")], "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
        (&[("slaveof", "a 1")], "ERR CONFIG SET failed (possibly related to argument 'slaveof') - can't set immutable config"),
        (&[("dir", "/tmp")], "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
        (&[("hz", "1"), ("hz", "2")], "ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"),
        (&[("MAXMEMORY", "1"), ("maxmemory", "2")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"),
        // The registered (lower-case) name is reported for value errors...
        (&[("SLAVE-READ-ONLY", "foo")], "ERR CONFIG SET failed (possibly related to argument 'slave-read-only') - argument must be 'yes' or 'no'"),
        // ...but what the client typed for the other ones.
        (&[("Daemonize", "no")], "ERR CONFIG SET failed (possibly related to argument 'Daemonize') - can't set immutable config"),
        (&[("FOO", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'FOO'"),
        // Precedence: the first problem in argument order wins.
        (&[("daemonize", "yes"), ("foo", "bar")], "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
        (&[("foo", "bar"), ("daemonize", "yes")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (&[("hz", "1"), ("hz", "2"), ("foo", "1")], "ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"),
        (&[("save", "  ")], "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        (&[("oom-score-adj-values", "0 200")], "ERR CONFIG SET failed (possibly related to argument 'oom-score-adj-values') - wrong number of arguments"),
        (&[("shutdown-on-sigint", "")], "ERR CONFIG SET failed (possibly related to argument 'shutdown-on-sigint') - argument(s) must be one of the following: default, save, nosave, now, force"),
        (&[("proc-title-template", "{title}")], "ERR CONFIG SET failed (possibly related to argument 'proc-title-template') - template format is invalid or contains unknown variables"),
        (&[("foo\r\nbar", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo  bar'"),
    ];
    let before = c.clone();
    for (pairs, err) in cases {
        assert_eq!(set(&mut c, pairs).unwrap_err(), *err, "{pairs:?}");
        assert_eq!(c, before, "{pairs:?} changed the config");
    }
}

#[test]
fn config_set_is_all_or_nothing() {
    let mut c = Config::default();
    let before = c.clone();
    let err = set(
        &mut c,
        &[
            ("maxmemory", "1mb"),
            ("hz", "20"),
            ("maxmemory-policy", "bogus"),
        ],
    )
    .unwrap_err();
    assert!(err.starts_with(
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: "
    ));
    assert_eq!(c, before);
    assert_eq!(g(&c, "maxmemory"), "0");
    assert_eq!(c.hz(), 10);
}

#[test]
fn config_set_protected_configs() {
    let t = TempDir::new("protected");
    let mut c = load("enable-protected-configs local\n");
    let p: &[(&[u8], &[u8])] = &[(b"dir", t.0.as_os_str().as_encoded_bytes())];
    assert!(c.set_many(p).is_err());
    assert_eq!(c.set_many_from(p, true), Ok(vec!["dir"]));
    assert_eq!(c.dir(), t.0.to_string_lossy());
    let mut c = load("enable-protected-configs yes\n");
    assert_eq!(
        set(&mut c, &[("dbfilename", "x.rdb")]),
        Ok(vec!["dbfilename"])
    );
    assert_eq!(
        set(&mut c, &[("dbfilename", "a/b")]).unwrap_err(),
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename"
    );
    // Relative dirs are relative to the current one, like chdir.
    std::fs::create_dir(t.path("sub")).unwrap();
    assert!(set(&mut c, &[("dir", t.0.to_str().unwrap())]).is_ok());
    assert!(set(&mut c, &[("dir", "sub")]).is_ok());
    assert_eq!(c.dir(), t.path("sub").to_string_lossy());
}

// ----- CONFIG REWRITE --------------------------------------------------------------

#[test]
fn rewrite_without_config_file() {
    assert_eq!(
        rewrite(&Config::default()),
        Err("ERR The server is running without a config file".to_string())
    );
}

#[test]
fn rewrite_keeps_layout_and_is_idempotent() {
    let t = TempDir::new("rewrite");
    let original = format!(
        "# top comment\n\
         port 7392\n\
         include {inc}\n\
         \n\
         # save section\n\
         save 900 1\n\
         save 300 10\n\
         rename-command FLUSHALL \"\"\n\
         slave-read-only yes\n\
         user bob on >pw ~* +@all\n\
         maxmemory 100mb\n\
         maxmemory 200mb\n\
         timeout 0\n\
         \x20  loglevel    verbose   \n\
         Hz 12\n\
         slaveof 127.0.0.1 1\n\
         client-output-buffer-limit replica 256mb 64mb 60\n\
         client-output-buffer-limit pubsub 32mb 8mb 60\n\
         notify-keyspace-events \"\"\n\
         bind 127.0.0.1\n\
         \n\
         \n\
         # end\n\
         list-max-ziplist-entries 5\n",
        inc = t.path("inc.conf").display()
    );
    t.write("inc.conf", "hz 11\n");
    let path = t.write("redis.conf", &original);
    let mut c = match load_from_str(&original, Origin::File(path.clone())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    set(
        &mut c,
        &[("save", ""), ("maxmemory", "0"), ("loglevel", "notice")],
    )
    .unwrap();
    set(
        &mut c,
        &[
            ("repl-backlog-size", "2mb"),
            ("notify-keyspace-events", "KEA"),
        ],
    )
    .unwrap();
    set(
        &mut c,
        &[
            ("masterauth", "a b\"c\\n"),
            ("client-output-buffer-limit", "normal 1 2 3"),
        ],
    )
    .unwrap();
    rewrite(&c).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    // Same as redis-server 7.0.15 for the same file and CONFIG SETs, except
    // that Redis also appends `user default ...` from its ACL state and
    // orders the generated block by hash order.
    let expected = format!(
        "# top comment\n\
         port 7392\n\
         include {inc}\n\
         \n\
         # save section\n\
         save \"\"\n\
         \n\
         rename-command FLUSHALL \"\"\n\
         replica-read-only yes\n\
         user bob on >pw ~* +@all\n\
         maxmemory 0\n\
         \n\
         timeout 0\n\
         loglevel notice\n\
         hz 12\n\
         replicaof 127.0.0.1 1\n\
         client-output-buffer-limit normal 1 2 3\n\
         client-output-buffer-limit replica 256mb 64mb 60\n\
         notify-keyspace-events \"AKE\"\n\
         bind 127.0.0.1\n\
         \n\
         # end\n\
         # ??? list-max-ziplist-entries 5\n\
         \n\
         # Generated by CONFIG REWRITE\n\
         dir \"{dir}\"\n\
         masterauth \"a b\\\"c\\\\n\"\n\
         repl-backlog-size 2mb\n\
         latency-tracking-info-percentiles 50 99 99.9\n",
        inc = t.path("inc.conf").display(),
        dir = c.dir()
    );
    assert_eq!(first, expected);
    // The rewritten file loads back to the same values.
    let reloaded = match load_from_str(&first, Origin::File(path.clone())) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(reloaded.get_matching(&[b"*"]), c.get_matching(&[b"*"]));
    // Like Redis, the second rewrite keeps the file's final newline as a
    // blank line; from then on the output is stable.
    rewrite(&c).unwrap();
    let second = std::fs::read_to_string(&path).unwrap();
    assert_eq!(second, format!("{first}\n"));
    rewrite(&c).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), second);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&t.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("redis.conf."))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn rewrite_defaults_unset_strings_and_new_file() {
    let t = TempDir::new("rewrite2");
    let text = "masteruser bob\nbind 127.0.0.1\nhash-max-ziplist-entries 100\nlua-time-limit 6000\nsentinel\npidfile /tmp/x.pid";
    let path = t.write("r.conf", text);
    let mut c = match load_from_str(text, Origin::File(path.clone())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    set(
        &mut c,
        &[
            ("masteruser", ""),
            ("hash-max-listpack-entries", "512"),
            ("shutdown-on-sigterm", "save now"),
        ],
    )
    .unwrap();
    // bind back to its default through the Redis-mutable path is not
    // possible here (immutable in Cascade), so reload with it instead.
    let text2 = text.replace("bind 127.0.0.1", "bind * -::*");
    std::fs::write(&path, &text2).unwrap();
    let mut c2 = match load_from_str(&text2, Origin::File(path.clone())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    set(
        &mut c2,
        &[
            ("masteruser", ""),
            ("hash-max-listpack-entries", "512"),
            ("shutdown-on-sigterm", "save now"),
        ],
    )
    .unwrap();
    rewrite(&c2).unwrap();
    let out = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        out,
        format!(
            "\n\
             hash-max-listpack-entries 512\n\
             busy-reply-threshold 6000\n\
             sentinel\n\
             pidfile \"/tmp/x.pid\"\n\
             # Generated by CONFIG REWRITE\n\
             save 3600 1\n\
             save 300 100\n\
             save 60 10000\n\
             dir \"{}\"\n\
             shutdown-on-sigterm save now\n\
             latency-tracking-info-percentiles 50 99 99.9\n",
            c2.dir()
        )
    );
    // A config file that vanished is simply created.
    std::fs::remove_file(&path).unwrap();
    rewrite(&c).unwrap();
    let created = std::fs::read_to_string(&path).unwrap();
    assert!(created.starts_with("# Generated by CONFIG REWRITE\n"));
    assert!(created.contains("\nbind 127.0.0.1\n"));
}
