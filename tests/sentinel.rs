//! Redis Sentinel watching Cascade nodes: Debian's redis-server in sentinel
//! mode, unchanged. It must find the replicas through the master's INFO,
//! see the master die, promote a replica (`MULTI`, `REPLICAOF NO ONE`,
//! `CONFIG REWRITE`, `CLIENT KILL`, `EXEC`) and point the other replica at
//! it, which then continues by partial resync (PSYNC2), as with Redis
//! nodes. The new topology is in the nodes' config files afterwards. The
//! Sentinels find each other through hello messages published on the
//! Cascade nodes.

mod common;
use common::repl::*;
use common::{require_tool, tempdir::TempDir, wait_until, Server, Value};

/// `SENTINEL MASTER mymaster` as name → value.
fn monitored(sentinel: &Server) -> std::collections::HashMap<String, String> {
    let reply = sentinel.conn().cmd(&["SENTINEL", "MASTER", "mymaster"]);
    reply
        .array()
        .chunks_exact(2)
        .map(|kv| (kv[0].text(), kv[1].text()))
        .collect()
}

/// The port Sentinel gives clients for `mymaster`.
fn master_port(sentinel: &Server) -> u16 {
    let reply = sentinel
        .conn()
        .cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
    reply.array()[1].text().parse().unwrap()
}

#[test]
fn sentinel_fails_over_a_cascade_master() {
    let redis = require_tool("redis-server");
    // No heartbeat PINGs: both replicas stay at exactly the same offset, so
    // the one not promoted can always continue from the other.
    let mut master = start(&["--repl-ping-replica-period", "3600"]);
    let files = TempDir::new("sentinel-files");
    let confs: Vec<_> = (0..2)
        .map(|i| {
            let conf = files.path().join(format!("replica{i}.conf"));
            std::fs::write(&conf, format!("replicaof 127.0.0.1 {}\n", master.port)).unwrap();
            conf
        })
        .collect();
    let replicas: Vec<Server> = confs
        .iter()
        .map(|conf| {
            let args = [&[conf.to_str().unwrap()][..], BASE].concat();
            Server::start(&args)
        })
        .collect();
    write_keys(&master, None, "before", 100);
    for r in &replicas {
        wait_in_sync(&master, r, None);
    }

    // Three Sentinels, a quorum of two: they find each other through
    // hello messages published on the Cascade nodes (`__sentinel__:hello`).
    let sentinels: Vec<Server> = (0..3)
        .map(|i| {
            let conf = files.path().join(format!("sentinel{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "sentinel monitor mymaster 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds mymaster 1000\n\
                     sentinel failover-timeout mymaster 30000\n",
                    master.port
                ),
            )
            .unwrap();
            Server::start_program(&redis, &[conf.to_str().unwrap(), "--sentinel"], "sentinel")
        })
        .collect();
    for sentinel in &sentinels {
        wait_until(
            DEADLINE,
            "each Sentinel to find the replicas and the others",
            || {
                let m = monitored(sentinel);
                m.get("num-slaves").map(String::as_str) == Some("2")
                    && m.get("num-other-sentinels").map(String::as_str) == Some("2")
            },
        );
        assert_eq!(master_port(sentinel), master.port);
    }
    let sentinel = &sentinels[0];

    let old_port = master.port;
    master.kill();
    wait_until(DEADLINE, "Sentinel to switch masters", || {
        master_port(sentinel) != old_port
    });
    let new_port = master_port(sentinel);
    // The failover ends once Sentinel saw the other replica reconfigured.
    // Until then the nodes are left alone: Sentinel's reconfiguration ends
    // with CLIENT KILL TYPE normal, which would cut the test's connections.
    let switched = format!("+switch-master mymaster 127.0.0.1 {old_port} 127.0.0.1 {new_port}");
    wait_until(DEADLINE, "every Sentinel to end the failover", || {
        sentinels.iter().all(|s| s.log_text().contains(&switched))
    });
    let promoted = replicas.iter().position(|r| r.port == new_port).unwrap();
    let (promoted, other) = (&replicas[promoted], &replicas[1 - promoted]);
    wait_until(
        DEADLINE,
        "the other replica to follow the new master",
        || {
            field(other, None, "replication", "master_port") == new_port.to_string()
                && field(other, None, "replication", "master_link_status") == "up"
        },
    );
    assert_eq!(field(promoted, None, "replication", "role"), "master");

    // Nothing was lost, the other replica continued by partial resync, and
    // new writes reach it.
    assert_eq!(
        other.conn().cmd(&["GET", "before:99"]),
        Value::bulk("value-99")
    );
    assert_eq!(field(promoted, None, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(promoted, None, "stats", "sync_full"), "0");
    write_keys(promoted, None, "after", 100);
    wait_in_sync(promoted, other, None);

    // Sentinel's CONFIG REWRITE kept the topology for restarts.
    let text = |i: usize| std::fs::read_to_string(&confs[i]).unwrap();
    let (p, o) = if promoted.port == replicas[0].port {
        (0, 1)
    } else {
        (1, 0)
    };
    assert!(!text(p).contains("replicaof"), "{}", text(p));
    assert!(
        text(o).contains(&format!("replicaof 127.0.0.1 {new_port}")),
        "{}",
        text(o)
    );
}
