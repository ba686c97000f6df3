//! kill -9 at random points: of the master or the replica while the stream
//! flows, and of a replica in the middle of its full sync. Every round ends
//! with the surviving pair in sync (equal digests and offsets) and with
//! every write that `WAIT 1` acknowledged present on the node that carries
//! on (a killed master is replaced by promoting its replica).
//!
//! `CRASH_ROUNDS` sets the number of rounds (default 12; the full
//! run is 50), `CRASH_SEED` replays a sequence.

mod common;
use common::repl::*;
use common::{Conn, Server, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Writes `crash:<round>:<n>` keys to `port` until stopped or refused;
/// after every 10 writes `WAIT 1 500`, and keys covered by a positive WAIT
/// go into `acked`.
fn writer(port: u16, round: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let Some(mut c) = Conn::try_connect(port) else {
        return;
    };
    c.set_read_timeout(Duration::from_secs(5));
    let mut pending = Vec::new();
    let mut n = 0u64;
    // The connection panics when the master is killed under it: that ends
    // the writer, with only acknowledged keys recorded.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while !stop.load(Ordering::SeqCst) {
            let key = format!("crash:{round}:{n}");
            n += 1;
            let mut pipe = common::encode(&[b"SET", key.as_bytes(), b"v"]);
            let wait = n.is_multiple_of(10);
            if wait {
                pipe.extend(common::encode(&[b"WAIT", b"1", b"500"]));
            }
            c.send_raw(&pipe);
            if c.read() != Value::ok() {
                return;
            }
            pending.push(key);
            if wait && matches!(c.read(), Value::Int(k) if k >= 1) {
                acked.lock().unwrap().append(&mut pending);
            }
        }
    }));
}

/// Every acknowledged key exists on `s`.
fn assert_has(s: &Server, keys: &[String], what: &str) {
    let mut c = s.conn();
    for chunk in keys.chunks(500) {
        let mut args: Vec<&str> = vec!["EXISTS"];
        args.extend(chunk.iter().map(String::as_str));
        assert_eq!(
            c.cmd(&args),
            Value::Int(chunk.len() as i64),
            "{what}: an acknowledged write is missing"
        );
    }
}

fn replica_of(master: &Server) -> Server {
    start(&["--replicaof", "127.0.0.1", &master.port.to_string()])
}

#[test]
fn kill_9_at_random_points_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut master = start(&[]);
    assert_eq!(
        master.conn().cmd(&["DEBUG", "POPULATE", "20000"]),
        Value::ok()
    );
    let mut replica = replica_of(&master);
    wait_in_sync(&master, &replica, None);
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..rounds {
        let victim = rng.below(3);
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let (port, stop, acked) = (master.port, stop.clone(), acked.clone());
            std::thread::spawn(move || writer(port, round, stop, acked))
        };
        if victim == 2 {
            // A replica killed during its full sync, then a fresh one.
            replica.kill();
            replica = replica_of(&master);
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(250)));
        match victim {
            0 | 2 => {
                eprintln!(
                    "round {round}: kill -9 the replica{}",
                    if victim == 2 {
                        " during its full sync"
                    } else {
                        ""
                    }
                );
                replica.kill();
                stop.store(true, Ordering::SeqCst);
                let _ = w.join();
                replica = replica_of(&master);
            }
            _ => {
                eprintln!("round {round}: kill -9 the master");
                master.kill();
                stop.store(true, Ordering::SeqCst);
                let _ = w.join();
                // The replica takes over and must hold every acknowledged write.
                assert_eq!(replica.conn().cmd(&["REPLICAOF", "NO", "ONE"]), Value::ok());
                std::mem::swap(&mut master, &mut replica);
                replica = replica_of(&master);
            }
        }
        wait_in_sync(&master, &replica, None);
        let keys = acked.lock().unwrap().clone();
        assert_has(
            &master,
            &keys,
            &format!("round {round} master (seed {seed})"),
        );
        assert_has(
            &replica,
            &keys,
            &format!("round {round} replica (seed {seed})"),
        );
    }
    assert!(
        !acked.lock().unwrap().is_empty(),
        "no write was ever acknowledged"
    );
}
