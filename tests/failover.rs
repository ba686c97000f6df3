//! FAILOVER, the coordinated switchover: argument and state errors with
//! Redis's texts, a switch under writes that needs no full sync anywhere,
//! the timeout abort, and a real redis-server handing over to a Cascade
//! replica with the same protocol.

mod common;
use common::repl::*;
use common::{Server, Value};

fn role(s: &Server) -> String {
    field(s, None, "replication", "role")
}

fn err(s: &str) -> Value {
    Value::Error(s.into())
}

#[test]
fn failover_hands_over_without_a_full_sync() {
    let master = start(&[]);
    let mut c = master.conn();
    assert_eq!(
        c.cmd(&["FAILOVER"]),
        err("ERR FAILOVER requires connected replicas.")
    );
    assert_eq!(
        c.cmd(&["FAILOVER", "ABORT"]),
        err("ERR No failover in progress.")
    );
    write_keys(&master, None, "before", 300);
    let port = master.port.to_string();
    let r1 = start(&["--replicaof", "127.0.0.1", &port]);
    let r2 = start(&["--replicaof", "127.0.0.1", &port]);
    wait_in_sync(&master, &r1, None);
    wait_in_sync(&master, &r2, None);
    assert_eq!(
        r1.conn().cmd(&["FAILOVER"]),
        err("ERR FAILOVER is not valid when server is a replica.")
    );
    assert_eq!(
        c.cmd(&["FAILOVER", "TO", "127.0.0.1", "1"]),
        err("ERR FAILOVER target HOST and PORT is not a replica.")
    );
    assert_eq!(
        c.cmd(&["FAILOVER", "TO", "127.0.0.1", &r1.port.to_string(), "FORCE"]),
        err("ERR FAILOVER with force option requires both a timeout and target HOST and IP.")
    );
    assert_eq!(
        c.cmd(&["FAILOVER", "TIMEOUT", "0"]),
        err("ERR FAILOVER timeout must be greater than 0")
    );
    assert_eq!(c.cmd(&["FAILOVER", "BOGUS"]), err("ERR syntax error"));
    let full_before: u64 = [&master, &r1, &r2]
        .iter()
        .map(|s| field(s, None, "stats", "sync_full").parse::<u64>().unwrap())
        .sum();

    // Hand over to r1 while a writer keeps writing to the master.
    with_writer(master.port, || {
        assert_eq!(
            c.cmd(&["FAILOVER", "TO", "127.0.0.1", &r1.port.to_string()]),
            Value::ok()
        );
        common::wait_until(DEADLINE, "the switch", || {
            role(&r1) == "master"
                && role(&master) == "slave"
                && field(&master, None, "replication", "master_failover_state") == "no-failover"
        });
    });
    assert_eq!(
        field(&master, None, "replication", "master_port"),
        r1.port.to_string()
    );
    assert!(master.log_text().contains(&format!(
        "Failover target 127.0.0.1:{} is synced, failing over.",
        r1.port
    )));
    assert!(r1
        .log_text()
        .contains("Failover request received for replid"));
    // The old master is a read-only replica now; r2 follows through it.
    assert!(master
        .conn()
        .cmd(&["SET", "x", "1"])
        .text()
        .starts_with("READONLY"));
    write_keys(&r1, None, "after", 300);
    wait_in_sync(&r1, &master, None);
    wait_in_sync(&r1, &r2, None);
    let full_after: u64 = [&master, &r1, &r2]
        .iter()
        .map(|s| field(s, None, "stats", "sync_full").parse::<u64>().unwrap())
        .sum();
    assert_eq!(full_after, full_before, "the failover needed a full sync");
}

/// A master with one replica that was in sync, then stopped (SIGSTOP)
/// and left 10 writes behind: a failover to it waits for it.
fn master_and_stopped_replica(start: fn(&[&str]) -> Server) -> (Server, Server) {
    let master = start(&[]);
    let port = master.port.to_string();
    let replica = start(&["--replicaof", "127.0.0.1", &port]);
    wait_in_sync(&master, &replica, None);
    // FAILOVER refuses a target the master does not list as online yet.
    let online = format!("port={},state=online", replica.port);
    common::wait_until(DEADLINE, "the replica to be online", || {
        field(&master, None, "replication", "slave0").contains(&online)
    });
    signal(&replica, "STOP");
    write_keys(&master, None, "lag", 10);
    (master, replica)
}

#[test]
fn failover_times_out_and_resumes_writes_when_the_target_lags() {
    let (master, replica) = master_and_stopped_replica(start);
    let mut c = master.conn();
    assert_eq!(
        c.cmd(&[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &replica.port.to_string(),
            "TIMEOUT",
            "300"
        ]),
        Value::ok()
    );
    assert_eq!(
        field(&master, None, "replication", "master_failover_state"),
        "waiting-for-sync"
    );
    assert_eq!(
        c.cmd(&["FAILOVER"]),
        err("ERR FAILOVER already in progress.")
    );
    // A write waits while the failover waits, then goes through once it
    // gave up.
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["SET", "after", "1"]), Value::ok());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(
        field(&master, None, "replication", "master_failover_state"),
        "no-failover"
    );
    assert_eq!(role(&master), "master");
    assert!(master
        .log_text()
        .contains("aborted: Replica never caught up before timeout"));
    signal(&replica, "CONT");
    wait_in_sync(&master, &replica, None);
}

#[test]
fn interop_redis_master_fails_over_to_a_cascade_replica() {
    let redis = start_redis(&[]);
    write_keys(&redis, None, "r", 200);
    let port = redis.port.to_string();
    let cascade = start(&["--replicaof", "127.0.0.1", &port]);
    wait_in_sync(&redis, &cascade, None);
    // FAILOVER TO wants the target online on the master's side: Redis puts
    // a replica online when its first ACK arrives, which may still be on
    // its way when the replica already reports the link up.
    let online = format!("port={},state=online", cascade.port);
    common::wait_until(DEADLINE, "Redis to list the replica online", || {
        redis
            .conn()
            .cmd(&["INFO", "replication"])
            .text()
            .contains(&online)
    });
    assert_eq!(
        redis
            .conn()
            .cmd(&["FAILOVER", "TO", "127.0.0.1", &cascade.port.to_string()]),
        Value::ok()
    );
    common::wait_until(DEADLINE, "Cascade to take over", || {
        role(&cascade) == "master"
            && role(&redis) == "slave"
            && field(&redis, None, "replication", "master_link_status") == "up"
    });
    write_keys(&cascade, None, "c", 200);
    wait_in_sync(&cascade, &redis, None);
    assert_eq!(field(&redis, None, "stats", "sync_full"), "1");
}

/// CLIENT UNPAUSE ends a CLIENT PAUSE, not the write pause of a failover
/// in progress; FAILOVER ABORT does. Same on a real redis-server.
#[test]
fn client_unpause_does_not_end_a_failovers_pause() {
    for redis_server in [false, true] {
        let (master, replica) =
            master_and_stopped_replica(if redis_server { start_redis } else { start });
        let mut admin = master.conn();
        assert_eq!(
            admin.cmd(&[
                "FAILOVER",
                "TO",
                "127.0.0.1",
                &replica.port.to_string(),
                "TIMEOUT",
                "60000"
            ]),
            Value::ok()
        );
        assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), Value::ok());
        let mut writer = master.conn();
        writer.send(&[b"SET", b"during", b"1"]);
        writer.set_read_timeout(std::time::Duration::from_millis(500));
        let early = common::read_value(&mut writer.reader);
        assert!(
            early.is_err(),
            "redis-server={redis_server}: the write went through: {early:?}"
        );
        // Reads are not paused.
        assert!(!admin.cmd(&["GET", "lag:1"]).is_error());
        assert_eq!(admin.cmd(&["FAILOVER", "ABORT"]), Value::ok());
        writer.set_read_timeout(std::time::Duration::from_secs(20));
        assert_eq!(writer.read(), Value::ok(), "redis-server={redis_server}");
        signal(&replica, "CONT");
        wait_in_sync(&master, &replica, None);
    }
}
