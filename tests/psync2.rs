//! PSYNC2 the way Redis's own suite tests it: five nodes, many rounds; each
//! round promotes a random node with `REPLICAOF NO ONE`, re-points every
//! other node at a random place of a new tree (chains included) and writes
//! to the new master while they reconnect. Every round must end with equal
//! digests and offsets everywhere, and without a single full sync: after a
//! promotion every former sibling (and the old master) can continue by
//! partial resync from the promoted node's second replication id.

mod common;
use common::repl::*;
use common::{Server, Value};

const NODES: usize = 5;
const ROUNDS: usize = 10;

/// A small deterministic generator (xorshift64*), seeded per run and
/// printed, so a failing topology sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn stat(s: &Server, name: &str) -> u64 {
    field(s, None, "stats", name).parse().unwrap()
}

fn writes(master: &Server, round: usize, n: usize) {
    let mut c = master.conn();
    let mut pipe = Vec::new();
    for i in 0..n {
        pipe.extend(common::encode(&[
            b"SET",
            format!("r{round}:{}", i % 97).as_bytes(),
            format!("{round}-{i}").as_bytes(),
        ]));
        pipe.extend(common::encode(&[b"INCR", b"counter"]));
    }
    c.send_raw(&pipe);
    for _ in 0..2 * n {
        let v = c.read();
        assert!(!v.is_error(), "write refused by the master: {v:?}");
    }
}

#[test]
fn random_promotions_resync_partially_every_round() {
    let seed = std::env::var("PSYNC2_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("PSYNC2_SEED={seed}");
    let mut rng = Rng(seed);
    let nodes: Vec<Server> = (0..NODES).map(|_| start(&["--shards", "2"])).collect();
    let mut master = 0;
    writes(&nodes[master], 0, 200);
    let port = |i: usize| nodes[i].port.to_string();
    for n in &nodes[1..] {
        let mut c = n.conn();
        assert_eq!(
            c.cmd(&["REPLICAOF", "127.0.0.1", &port(master)]),
            Value::ok()
        );
    }
    for n in &nodes[1..] {
        wait_in_sync(&nodes[master], n, None);
    }
    let full_before: Vec<u64> = nodes.iter().map(|n| stat(n, "sync_full")).collect();
    let mut partial = 0u64;
    for round in 1..=ROUNDS {
        // Promote a random node (possibly the current master again).
        let promoted = rng.below(NODES);
        let old = master;
        master = promoted;
        assert_eq!(
            nodes[master].conn().cmd(&["REPLICAOF", "NO", "ONE"]),
            Value::ok()
        );
        // A random tree under it: each node follows the master or a node
        // placed before it.
        let mut order: Vec<usize> = (0..NODES).filter(|&i| i != master).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut placed = vec![master];
        let mut parent_of = vec![usize::MAX; NODES];
        for &n in &order {
            let parent = placed[rng.below(placed.len())];
            parent_of[n] = parent;
            let reply = nodes[n]
                .conn()
                .cmd(&["REPLICAOF", "127.0.0.1", &port(parent)]);
            assert!(!reply.is_error(), "{reply:?}");
            placed.push(n);
        }
        eprintln!("round {round}: master {old} -> {master}, parents {parent_of:?}");
        // Writes while the nodes reconnect.
        writes(&nodes[master], round, 300);
        for &n in &order {
            wait_in_sync(&nodes[master], &nodes[n], None);
        }
        // Every node learns the promoted node's history (replicas of a
        // node whose id changed are reconnected to learn it).
        let id = field(&nodes[master], None, "replication", "master_replid");
        for &n in &order {
            common::wait_until(DEADLINE, &format!("node {n} to take replid {id}"), || {
                field(&nodes[n], None, "replication", "master_replid") == id
            });
            wait_in_sync(&nodes[master], &nodes[n], None);
        }
        let full_now: Vec<u64> = nodes.iter().map(|n| stat(n, "sync_full")).collect();
        assert_eq!(
            full_now, full_before,
            "round {round} (seed {seed}) needed a full sync"
        );
        partial = nodes.iter().map(|n| stat(n, "sync_partial_ok")).sum();
    }
    assert!(partial > 0, "no partial resync happened at all");
    // The counter saw every write exactly once on every node.
    let expected = 200 + 300 * ROUNDS as i64;
    for n in &nodes {
        assert_eq!(
            n.conn().cmd(&["GET", "counter"]),
            Value::bulk(&expected.to_string())
        );
    }
}
