//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] and the shutdown on
//! SIGTERM/SIGINT, against the real binary and a real redis-server: the
//! argument errors, waiting for lagging replicas (`shutdown-timeout`,
//! ABORT, writes paused meanwhile), the refusals (the AOF's first base not
//! written yet, a failed final save) and FORCE, `shutdown-on-sig*`.

mod common;
use common::repl::signal;
use common::{read_value, wait_until, Conn, Server, Value};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
const REFUSED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

fn cascade(extra: &[&str]) -> Server {
    let args: Vec<&str> = ["--shards", "2", "--enable-debug-command", "yes"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    Server::start(&args)
}

fn redis(extra: &[&str]) -> Server {
    let args: Vec<&str> = ["--enable-debug-command", "yes"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    Server::start_redis(&args)
}

/// Cascade and redis-server started with the same directives.
fn both(extra: &[&str]) -> [Server; 2] {
    [cascade(extra), redis(extra)]
}

/// The temp files of saves in progress in the server's directory.
fn temp_files(s: &Server) -> Vec<String> {
    s.files(|n| n.starts_with("temp-"))
}

/// A server (redis-server if asked) with 1000 keys, whose BGSAVE has
/// started and created its temp file; `extra` slows it down.
fn saving_1000_keys(redis_server: bool, extra: &[&str]) -> (Server, Conn) {
    let s = if redis_server {
        redis(extra)
    } else {
        cascade(extra)
    };
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "1000"]), Value::ok());
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    wait_until(DEADLINE, "the BGSAVE's temp file", || {
        !temp_files(&s).is_empty()
    });
    (s, c)
}

/// Waits for the process to exit and returns how long that took.
fn wait_exit(s: &mut Server, within: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            return (st, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "server on port {} still running; log:\n{}",
            s.port,
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a command whose reply is not expected yet.
fn send(c: &mut Conn, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&a);
}

/// The connection has no reply to read within a short while.
fn no_reply_yet(c: &mut Conn) -> bool {
    c.set_read_timeout(Duration::from_millis(300));
    let r = read_value(&mut c.reader);
    c.set_read_timeout(Duration::from_secs(20));
    r.is_err()
}

fn wait_log(s: &Server, line: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !s.log_text().contains(line) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {line:?}; the log:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn argument_errors_match_redis() {
    let mut replies = Vec::new();
    for mut s in both(&[]) {
        let mut c = s.conn();
        let mut seen = Vec::new();
        for line in [
            "SHUTDOWN ABORT",
            "SHUTDOWN ABORT NOW",
            "SHUTDOWN NOSAVE ABORT",
            "SHUTDOWN FORCE ABORT",
            "SHUTDOWN SAVE NOSAVE",
            "SHUTDOWN NOSAVE SAVE NOW",
            "SHUTDOWN LATER",
            "MULTI",
            "SHUTDOWN NOW",
            "EXEC",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            seen.push(c.cmd(&args));
        }
        // Repeated flags are fine.
        send(&mut c, &["SHUTDOWN", "NOSAVE", "NOSAVE", "NOW", "NOW"]);
        assert_eq!(c.read_to_close(), b"");
        let (status, _) = wait_exit(&mut s, DEADLINE);
        assert!(status.success(), "{status}");
        replies.push(seen);
    }
    assert_eq!(replies[0], replies[1]);
    let syntax = Value::Error("ERR syntax error".into());
    assert_eq!(
        replies[0],
        vec![
            Value::Error("ERR No shutdown in progress.".into()),
            syntax.clone(),
            syntax.clone(),
            syntax.clone(),
            syntax.clone(),
            syntax.clone(),
            syntax,
            Value::ok(),
            Value::Error("ERR Command not allowed inside a transaction".into()),
            Value::Error("EXECABORT Transaction discarded because of previous errors.".into()),
        ]
    );
}

/// A master (`cascade` or redis-server) and a replica of the same kind,
/// in sync.
fn master_and_replica(redis_pair: bool, extra: &[&str]) -> (Server, Server) {
    let start = |args: &[&str]| {
        let all: Vec<&str> = ["--repl-diskless-sync-delay", "0"]
            .iter()
            .chain(extra)
            .chain(args)
            .copied()
            .collect();
        if redis_pair {
            redis(&all)
        } else {
            cascade(&all)
        }
    };
    let master = start(&[]);
    let port = master.port.to_string();
    let replica = start(&["--replicaof", "127.0.0.1", &port]);
    master.conn().cmd(&["SET", "k", "1"]);
    common::repl::wait_in_sync(&master, &replica, None);
    (master, replica)
}

/// With a replica that does not acknowledge (stopped), SHUTDOWN waits:
/// reads are served, writes wait (CLIENT UNPAUSE does not release them),
/// a second SHUTDOWN joins the wait, SHUTDOWN ABORT ends it (both
/// SHUTDOWNs get the error, the write runs). Then `shutdown-timeout`
/// passes and the server exits anyway, logging the lagging replica. The
/// same replies from Cascade and redis-server.
#[test]
fn shutdown_waits_for_lagging_replicas_until_abort_or_timeout() {
    let mut transcripts = Vec::new();
    for redis_pair in [false, true] {
        let (mut master, replica) = master_and_replica(redis_pair, &["--shutdown-timeout", "3"]);
        signal(&replica, "STOP");
        let mut r = master.conn();
        let mut t = vec![r.cmd(&["SET", "k", "2"])];
        let mut first = master.conn();
        send(&mut first, &["SHUTDOWN"]);
        wait_log(&master, "Waiting for replicas before shutting down.");
        t.push(r.cmd(&["GET", "k"]));
        let mut writer = master.conn();
        send(&mut writer, &["SET", "k", "3"]);
        let mut second = master.conn();
        send(&mut second, &["SHUTDOWN", "NOSAVE"]);
        t.push(r.cmd(&["CLIENT", "UNPAUSE"]));
        assert!(no_reply_yet(&mut writer), "a write ran during the wait");
        assert!(no_reply_yet(&mut first));
        assert!(no_reply_yet(&mut second));
        t.push(r.cmd(&["SHUTDOWN", "ABORT"]));
        t.push(first.read());
        t.push(second.read());
        t.push(writer.read());
        t.push(r.cmd(&["SHUTDOWN", "ABORT"]));
        t.push(r.cmd(&["GET", "k"]));
        assert!(master.log_text().contains("Shutdown manually aborted."));
        // Now nobody aborts: the timeout ends the wait.
        let mut third = master.conn();
        send(&mut third, &["SHUTDOWN"]);
        let (status, took) = wait_exit(&mut master, DEADLINE);
        assert!(status.success(), "{status}");
        assert!(took >= Duration::from_millis(2500), "exited after {took:?}");
        let log = master.log_text();
        assert!(log.contains("Lagging replica 127.0.0.1:"), "{log}");
        assert!(
            log.contains("0 of 1 replicas are in sync when shutting down."),
            "{log}"
        );
        signal(&replica, "CONT");
        transcripts.push(t);
    }
    assert_eq!(transcripts[0], transcripts[1]);
    let refused = Value::Error(REFUSED.into());
    assert_eq!(
        transcripts[0],
        vec![
            Value::ok(),
            Value::bulk("2"),
            Value::ok(),
            Value::ok(),
            refused.clone(),
            refused,
            Value::ok(),
            Value::Error("ERR No shutdown in progress.".into()),
            Value::bulk("3"),
        ]
    );
}

/// A replica that acknowledges is waited for and has every write when
/// the master exits; NOW does not wait; a second SIGINT during a
/// signalled shutdown exits at once with status 1.
#[test]
fn in_sync_replicas_now_and_a_second_sigint() {
    let (mut master, replica) = master_and_replica(false, &[]);
    let mut m = master.conn();
    for i in 0..100 {
        m.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    send(&mut m, &["SHUTDOWN"]);
    wait_exit(&mut master, DEADLINE);
    assert!(master
        .log_text()
        .contains("1 of 1 replicas are in sync when shutting down."));
    assert_eq!(replica.conn().cmd(&["GET", "k99"]), Value::bulk("v"));
    drop(replica);

    let (mut master, replica) = master_and_replica(false, &[]);
    signal(&replica, "STOP");
    master.conn().cmd(&["SET", "k", "2"]);
    send(&mut master.conn(), &["SHUTDOWN", "NOW"]);
    let (status, took) = wait_exit(&mut master, DEADLINE);
    assert!(status.success());
    assert!(took < Duration::from_secs(5), "NOW waited {took:?}");
    assert!(master
        .log_text()
        .contains("0 of 1 replicas are in sync when shutting down."));
    signal(&replica, "CONT");
    drop(replica);

    let (mut master, replica) = master_and_replica(false, &[]);
    signal(&replica, "STOP");
    master.conn().cmd(&["SET", "k", "2"]);
    signal(&master, "INT");
    wait_log(&master, "Waiting for replicas before shutting down.");
    signal(&master, "INT");
    let (status, _) = wait_exit(&mut master, DEADLINE);
    assert_eq!(status.code(), Some(1));
    assert!(master.log_text().contains("You insist... exiting now."));
    signal(&replica, "CONT");
}

/// SHUTDOWN SAVE during a long BGSAVE stops that save and writes its own
/// at once, as Redis kills its saving child: without that, the final save
/// waited for the BGSAVE (here 100 s) and a service manager's stop timeout
/// could kill the server before anything was saved. The stopped BGSAVE
/// leaves no temp file and no error status.
#[test]
fn shutdown_save_stops_a_running_bgsave_and_saves_at_once() {
    for redis_server in [false, true] {
        // 1000 keys at 100 ms each: the BGSAVE alone would take 100 s.
        let (mut s, mut c) = saving_1000_keys(
            redis_server,
            &["--save", "", "--rdb-key-save-delay", "100000"],
        );
        // The final save itself runs at full speed.
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]),
            Value::ok()
        );
        send(&mut c, &["SHUTDOWN", "SAVE"]);
        let (status, took) = wait_exit(&mut s, DEADLINE);
        assert!(status.success(), "redis-server={redis_server}");
        assert!(took < Duration::from_secs(20), "took {took:?}");
        let log = s.log_text();
        assert!(log.contains("There is a child saving an .rdb. Killing it!"));
        assert!(log.contains("DB saved on disk"), "{log}");
        assert_eq!(temp_files(&s), Vec::<String>::new());
        s.restart();
        assert_eq!(s.conn().cmd(&["DBSIZE"]), Value::Int(1000));
        assert_eq!(s.info_field("persistence", "rdb_last_bgsave_status"), "ok");
    }
}

/// While the AOF is being turned on (CONFIG SET appendonly yes, its first
/// base still being written), SHUTDOWN refuses unless FORCE, as Redis
/// does; the server keeps serving meanwhile.
#[test]
fn shutdown_refuses_while_the_first_aof_base_is_written() {
    let mut replies = Vec::new();
    for mut s in both(&[]) {
        let mut c = s.conn();
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "20000"]), Value::ok());
        // 20000 keys at 1 ms each: well over the test's steps.
        c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
        let mut seen = vec![c.cmd(&["CONFIG", "SET", "appendonly", "yes"])];
        wait_until(DEADLINE, "first rewrite running", || {
            common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "1"
        });
        seen.push(c.cmd(&["SHUTDOWN", "NOSAVE"]));
        seen.push(c.cmd(&["SET", "after", "refusal"]));
        seen.push(c.cmd(&["SHUTDOWN", "ABORT"]));
        assert!(s.log_text().contains("Writing initial AOF, can't exit."));
        assert!(s.log_text().contains(
            "Errors trying to shut down the server. Check the logs for more information."
        ));
        send(&mut c, &["SHUTDOWN", "NOSAVE", "FORCE"]);
        assert_eq!(c.read_to_close(), b"");
        let (status, _) = wait_exit(&mut s, DEADLINE);
        assert!(status.success());
        let log = s.log_text();
        assert!(log.contains("Writing initial AOF. Exit anyway."), "{log}");
        assert!(
            log.contains("There is a child rewriting the AOF. Killing it!"),
            "{log}"
        );
        replies.push(seen);
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(
        replies[0],
        vec![
            Value::ok(),
            Value::Error(REFUSED.into()),
            Value::ok(),
            Value::Error("ERR No shutdown in progress.".into()),
        ]
    );
}

/// A failed final save refuses the shutdown (SHUTDOWN SAVE, SHUTDOWN with
/// save points, SIGTERM) unless FORCE; the refused server keeps serving
/// with its AOF running.
#[test]
fn a_failed_final_save_refuses_unless_force() {
    let mut replies = Vec::new();
    for mut s in both(&["--enable-protected-configs", "yes", "--appendonly", "yes"]) {
        let mut c = s.conn();
        let gone = s.dir.path().join("vanishing");
        std::fs::create_dir_all(&gone).unwrap();
        let mut seen = vec![c.cmd(&["CONFIG", "SET", "dir", gone.to_str().unwrap()])];
        std::fs::remove_dir_all(&gone).unwrap();
        seen.push(c.cmd(&["SHUTDOWN", "SAVE"]));
        seen.push(c.cmd(&["SET", "after", "refusal"]));
        seen.push(c.cmd(&["CONFIG", "SET", "save", "3600 1"]));
        seen.push(c.cmd(&["SHUTDOWN"]));
        let log = s.log_text();
        assert!(
            log.contains("Error trying to save the DB, can't exit."),
            "{log}"
        );
        signal(&s, "TERM");
        wait_until(DEADLINE, "SIGTERM refused", || {
            s.log_text()
                .matches("Errors trying to shut down the server")
                .count()
                == 3
        });
        seen.push(c.cmd(&["SET", "after", "sigterm"]));
        send(&mut c, &["SHUTDOWN", "FORCE"]);
        assert_eq!(c.read_to_close(), b"");
        let (status, _) = wait_exit(&mut s, DEADLINE);
        assert!(status.success());
        assert!(s
            .log_text()
            .contains("Error trying to save the DB. Exit anyway."));
        replies.push(seen);
        if replies.len() == 1 {
            // Cascade's AOF kept running through the refusals: the writes
            // made after them are in it.
            let dir = s.dir.path().to_path_buf();
            let mut again = Server::start(&["--appendonly", "yes", "--dir", dir.to_str().unwrap()]);
            assert_eq!(again.conn().cmd(&["GET", "after"]), Value::bulk("sigterm"));
            again.kill();
        }
    }
    assert_eq!(replies[0], replies[1]);
    let refused = Value::Error(REFUSED.into());
    assert_eq!(
        replies[0],
        vec![
            Value::ok(),
            refused.clone(),
            Value::ok(),
            Value::ok(),
            refused,
            Value::ok(),
        ]
    );
}

/// `shutdown-on-sigterm` / `shutdown-on-sigint` choose what a signal's
/// shutdown does, as SHUTDOWN's flags would.
#[test]
fn signals_follow_shutdown_on_sig_directives() {
    for redis_server in [false, true] {
        let start = |extra: &[&str]| {
            if redis_server {
                redis(extra)
            } else {
                cascade(extra)
            }
        };
        // Save points set, but SIGTERM says nosave.
        let mut s = start(&["--save", "3600 1", "--shutdown-on-sigterm", "nosave"]);
        s.conn().cmd(&["SET", "k", "v"]);
        signal(&s, "TERM");
        assert!(wait_exit(&mut s, DEADLINE).0.success());
        assert!(!s.dir.path().join("dump.rdb").exists());
        assert!(!s
            .log_text()
            .contains("Saving the final RDB snapshot before exiting."));
        // No save points, but SIGINT says save.
        let mut s = start(&["--shutdown-on-sigint", "save"]);
        s.conn().cmd(&["SET", "k", "v"]);
        signal(&s, "INT");
        assert!(wait_exit(&mut s, DEADLINE).0.success());
        assert!(s.dir.path().join("dump.rdb").exists());
        assert!(s
            .log_text()
            .contains("Received SIGINT scheduling shutdown..."));
    }
}

/// A server restarted right after a shutdown (systemd's restart, an
/// operator's) gets its port back at once, as with Redis: the exit frees
/// the listening sockets even though the shards' io_uring still held them.
#[test]
fn the_port_is_free_as_soon_as_the_process_exits() {
    for round in 0..5 {
        let mut s = cascade(&[]);
        // Clients on both shards, one in the middle of a blocking call.
        let mut busy: Vec<Conn> = (0..4).map(|_| s.conn()).collect();
        for (i, c) in busy.iter_mut().enumerate() {
            assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), Value::ok());
        }
        send(&mut busy[0], &["BLPOP", "nothing", "0"]);
        let mut c = s.conn();
        send(&mut c, &["SHUTDOWN", "NOSAVE"]);
        assert!(wait_exit(&mut s, DEADLINE).0.success());
        // What a restarted server does first: bind the port with
        // SO_REUSEADDR (std sets it), on the address it listened on.
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", s.port)) {
            panic!(
                "round {round}: port {} still taken after the exit: {e}",
                s.port
            );
        }
    }
}

/// A shutdown during a BGSAVE leaves no temp file behind, on either server.
#[test]
fn a_shutdown_during_bgsave_removes_its_temp_file() {
    for redis_server in [false, true] {
        let (mut s, mut c) = saving_1000_keys(redis_server, &["--rdb-key-save-delay", "10000"]);
        send(&mut c, &["SHUTDOWN", "NOSAVE"]);
        assert!(wait_exit(&mut s, DEADLINE).0.success());
        assert_eq!(
            temp_files(&s),
            Vec::<String>::new(),
            "redis-server={redis_server}"
        );
        assert!(!s.dir.path().join("dump.rdb").exists());
        assert!(s
            .log_text()
            .contains("There is a child saving an .rdb. Killing it!"));
    }
}
