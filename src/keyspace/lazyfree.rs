//! Freeing big things off the shard threads: the tables of a flushed
//! database (`FLUSHALL ASYNC`, `lazyfree-lazy-user-flush`, a replica's old
//! dataset with `replica-lazy-flush`) are handed to one background thread
//! that drops them, so the shard answers again at once instead of after
//! freeing millions of allocations.
//!
//! Counts what is pending and what was freed, in keys, for INFO
//! (`lazyfree_pending_objects`, `lazyfreed_objects`), as Redis counts them.
//! Owns only the thread and the counters.

use crossbeam::channel::{self, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

type Garbage = Box<dyn Send>;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);
static QUEUE: OnceLock<Option<Sender<(Garbage, u64)>>> = OnceLock::new();

fn queue() -> Option<&'static Sender<(Garbage, u64)>> {
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::unbounded::<(Garbage, u64)>();
            std::thread::Builder::new()
                .name("cascade-lazyfree".into())
                .spawn(move || {
                    for (garbage, objects) in rx {
                        drop(garbage);
                        PENDING.fetch_sub(objects, Ordering::Relaxed);
                        FREED.fetch_add(objects, Ordering::Relaxed);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Drops `garbage` (holding `objects` keys) on the background thread; on
/// this thread if that thread could not be started.
pub fn free_later(garbage: impl Send + 'static, objects: u64) {
    let Some(tx) = queue() else {
        drop(garbage);
        FREED.fetch_add(objects, Ordering::Relaxed);
        return;
    };
    PENDING.fetch_add(objects, Ordering::Relaxed);
    if let Err(e) = tx.send((Box::new(garbage), objects)) {
        // The thread is gone: free here.
        drop(e.into_inner());
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        FREED.fetch_add(objects, Ordering::Relaxed);
    }
}

/// Keys handed over and not freed yet.
pub fn pending_objects() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// Keys freed in the background since the start (or CONFIG RESETSTAT).
pub fn freed_objects() -> u64 {
    FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_dropped_off_thread_and_counted() {
        struct Probe(std::sync::mpsc::Sender<String>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let name = std::thread::current().name().unwrap_or("").to_string();
                let _ = self.0.send(name);
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let before = freed_objects();
        free_later(Probe(tx), 7);
        let dropped_on = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(dropped_on, "cascade-lazyfree");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while freed_objects() < before + 7 && std::time::Instant::now() < end {
            std::thread::yield_now();
        }
        assert!(freed_objects() >= before + 7);
    }
}
