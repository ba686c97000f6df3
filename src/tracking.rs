//! Client-side caching (CLIENT TRACKING): which connections track, how,
//! and telling them that keys they read changed.
//!
//! The shards keep which client read which key (`keyspace::track`); when
//! such a key changes, the shard hands the readers' ids here, and the
//! invalidation goes into the reader's mailbox (RESP3: an `invalidate`
//! push on its own connection) or its redirect client's (a `message` on
//! `__redis__:invalidate` for RESP2). In BCAST mode nothing is
//! remembered: every change of a key under one of the client's prefixes
//! is announced.
//!
//! Mailboxes are the pub/sub ones (`pubsub::Subscriber`); every connection
//! that has one is listed here by id, weakly, so a redirect finds its
//! target and notices when it is gone. Depends on `pubsub` (mailboxes) and
//! `bytes`; knows nothing of commands or shards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};

use bytes::{Bytes, BytesMut};

use crate::pubsub::Subscriber;

/// How one client tracks.
pub struct Tracker {
    pub id: u64,
    /// Its own mailbox (RESP3 pushes, `tracking-redir-broken`).
    pub mailbox: Arc<Subscriber>,
    /// REDIRECT: the client told instead (0: none).
    pub redirect: u64,
    pub bcast: bool,
    pub prefixes: Vec<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The redirect target went away (CLIENT LIST `R`).
    pub broken: AtomicBool,
}

#[derive(Default)]
struct Registry {
    trackers: RwLock<HashMap<u64, Arc<Tracker>>>,
    mailboxes: RwLock<HashMap<u64, Weak<Subscriber>>>,
}

fn registry() -> &'static Registry {
    static R: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    R.get_or_init(Registry::default)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// A connection got a mailbox: it may be a redirect target.
pub fn mailbox_opened(id: u64, mailbox: &Arc<Subscriber>) {
    write(&registry().mailboxes).insert(id, Arc::downgrade(mailbox));
}

/// The connection closed: it tracks no more and receives no more.
pub fn connection_closed(id: u64) {
    let r = registry();
    write(&r.mailboxes).remove(&id);
    disable(id);
}

/// Shards report every changed key while some tracker is in BCAST mode.
/// Called under the trackers' write lock, so changes do not interleave.
fn update_broadcasting(trackers: &HashMap<u64, Arc<Tracker>>) {
    crate::keyspace::track::set_broadcasting(trackers.values().any(|t| t.bcast));
}

pub fn enable(t: Tracker) {
    let mut trackers = write(&registry().trackers);
    trackers.insert(t.id, Arc::new(t));
    update_broadcasting(&trackers);
}

pub fn disable(id: u64) {
    let mut trackers = write(&registry().trackers);
    if trackers.remove(&id).is_some() {
        update_broadcasting(&trackers);
    }
}

pub fn get(id: u64) -> Option<Arc<Tracker>> {
    read(&registry().trackers).get(&id).cloned()
}

/// Clients with tracking on (INFO `tracking_clients`).
pub fn tracking_clients() -> usize {
    read(&registry().trackers).len()
}

/// BCAST prefixes of every tracker (INFO `tracking_total_prefixes`).
pub fn total_prefixes() -> usize {
    let trackers = read(&registry().trackers);
    let mut all: Vec<&Bytes> = trackers
        .values()
        .filter(|t| t.bcast)
        .flat_map(|t| t.prefixes.iter())
        .collect();
    all.sort();
    all.dedup();
    // An empty prefix counts once, like any other.
    all.len()
}

/// `>2 invalidate <keys>` (RESP3) or `message __redis__:invalidate <keys>`
/// (RESP2); `keys` None is a flush (null).
fn encode(resp3: bool, keys: Option<&[Bytes]>) -> Bytes {
    let mut out = BytesMut::new();
    if resp3 {
        out.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else {
        out.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    }
    match keys {
        None => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Some(keys) => {
            out.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
            for k in keys {
                out.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
                out.extend_from_slice(k);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.freeze()
}

/// Sends an invalidation to tracker `t` (Redis's sendTrackingMessage).
fn send(t: &Tracker, keys: Option<&[Bytes]>) {
    if t.redirect != 0 {
        let target = read(&registry().mailboxes)
            .get(&t.redirect)
            .and_then(Weak::upgrade);
        match target {
            Some(m) => m.push(encode(m.is_resp3(), keys)),
            None => {
                // Told once: the redirect target is gone.
                if !t.broken.swap(true, Ordering::Relaxed) && t.mailbox.is_resp3() {
                    let msg = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{}\r\n", t.redirect);
                    t.mailbox.push(Bytes::from(msg));
                }
            }
        }
        return;
    }
    // Without a redirect only RESP3 can carry it.
    if t.mailbox.is_resp3() {
        t.mailbox.push(encode(true, keys));
    }
}

/// Keys that changed on a shard, with the clients that read them (none
/// for a key reported only for BCAST). `origin` is the client whose
/// command changed them (NOLOOP), 0 if none.
pub fn invalidate(changed: Vec<(Bytes, Vec<u64>)>, origin: u64) {
    if crate::keyspace::track::broadcasting() {
        let keys: Vec<Bytes> = changed.iter().map(|(k, _)| k.clone()).collect();
        broadcast(&keys, origin);
    }
    let trackers = read(&registry().trackers);
    for (key, readers) in changed {
        for id in readers {
            let Some(t) = trackers.get(&id) else { continue };
            if t.bcast || (t.noloop && id == origin) {
                continue;
            }
            send(t, Some(std::slice::from_ref(&key)));
        }
    }
}

/// BCAST: keys that changed on a shard; each tracker whose prefixes match
/// is told of its keys in one message.
fn broadcast(keys: &[Bytes], origin: u64) {
    let trackers = read(&registry().trackers);
    for t in trackers
        .values()
        .filter(|t| t.bcast && !(t.noloop && t.id == origin))
    {
        let mine: Vec<Bytes> = keys
            .iter()
            .filter(|k| t.prefixes.is_empty() || t.prefixes.iter().any(|p| k.starts_with(p)))
            .cloned()
            .collect();
        if !mine.is_empty() {
            send(t, Some(&mine));
        }
    }
}

/// FLUSHALL / FLUSHDB: every tracker drops its whole cache.
pub fn flushed() {
    let trackers = read(&registry().trackers);
    for t in trackers.values() {
        send(t, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_redis_s() {
        assert_eq!(
            &encode(true, Some(&[Bytes::from_static(b"k")]))[..],
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(&encode(true, None)[..], b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        assert_eq!(
            &encode(false, Some(&[Bytes::from_static(b"ab")]))[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$2\r\nab\r\n"
        );
    }
}
