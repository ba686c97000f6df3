//! Keyspace notifications (`notify-keyspace-events`): a command that
//! changes a key (or, for the `m` class, reads a missing one) publishes
//! `__keyspace@<db>__:<key>` with the event's name and
//! `__keyevent@<db>__:<event>` with the key, for the classes the directive
//! enables, as Redis does.
//!
//! # What it owns
//! The enabled classes (one atomic, read by every emitter with a relaxed
//! load: a server without notifications pays one branch per event) and the
//! sink events are published through. The sink is installed once at
//! start-up by the layer that owns the pub/sub registry and its output
//! limits (`cmd::pubsub`), so this module stays below `cmd` and the
//! keyspace may emit too (`expired`, `evicted`, `new`).
//!
//! Events are published synchronously on the shard that made the change,
//! in the order the changes happened on that shard; a subscriber sees a
//! multi-shard command's events shard by shard.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Event classes, as the directive's letters name them: the config's bit
/// set (Redis's `NOTIFY_*` layout), which parses and prints the directive.
pub mod class {
    pub use crate::config::{
        NOTIFY_ALL as ALL, NOTIFY_EVICTED as EVICTED, NOTIFY_EXPIRED as EXPIRED,
        NOTIFY_GENERIC as GENERIC, NOTIFY_HASH as HASH, NOTIFY_KEYEVENT as KEYEVENT,
        NOTIFY_KEYSPACE as KEYSPACE, NOTIFY_KEY_MISS as KEY_MISS, NOTIFY_LIST as LIST,
        NOTIFY_NEW as NEW, NOTIFY_SET as SET, NOTIFY_STREAM as STREAM, NOTIFY_STRING as STRING,
        NOTIFY_ZSET as ZSET,
    };
}

/// Where events go: publishes `payload` on `channel`.
pub type Sink = Box<dyn Fn(&[u8], &[u8]) + Send + Sync>;

static FLAGS: AtomicU32 = AtomicU32::new(0);
static SINK: OnceLock<Sink> = OnceLock::new();

/// Applies the classes `notify-keyspace-events` enables.
pub fn configure(flags: u32) {
    FLAGS.store(flags, Ordering::Relaxed);
}

/// Sets where events are published; the first call wins.
pub fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Whether events of `class` are published at all: cheap enough for hot
/// paths, and lets a caller skip building what an event needs.
#[inline]
pub fn wants(class: u32) -> bool {
    let flags = FLAGS.load(Ordering::Relaxed);
    flags & class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
}

/// Publishes `event` on `key` of database `db` if `class` is enabled.
#[inline]
pub fn emit(class: u32, event: &str, key: &[u8], db: usize) {
    if wants(class) {
        publish(event, key, db);
    }
}

#[cold]
fn publish(event: &str, key: &[u8], db: usize) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let flags = FLAGS.load(Ordering::Relaxed);
    if flags & class::KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        sink(&channel, event.as_bytes());
    }
    if flags & class::KEYEVENT != 0 {
        let channel = format!("__keyevent@{db}__:{event}");
        sink(channel.as_bytes(), key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::notify_flags_from_str;

    #[test]
    fn nothing_is_wanted_without_k_or_e() {
        configure(notify_flags_from_str(b"A").unwrap());
        assert!(!wants(class::GENERIC));
        configure(notify_flags_from_str(b"Kg").unwrap());
        assert!(wants(class::GENERIC));
        assert!(!wants(class::LIST));
        configure(notify_flags_from_str(b"En").unwrap());
        assert!(wants(class::NEW));
        assert!(!wants(class::EXPIRED));
        configure(0);
        assert!(!wants(class::NEW));
    }
}
