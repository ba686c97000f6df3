//! Client-side caching (CLIENT TRACKING) for one database: which clients
//! read which keys, so that a change of a key can tell them. One-shot, as
//! in Redis: a key's readers are told once, then forgotten until they
//! read it again.
//!
//! Every path that changes a key touches it here, next to its WATCH
//! touch; a table nobody fills costs that `is_empty` test. Knows clients
//! by id only; telling them is the shard's job ([`TrackTable::take_changed`]).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Keys tracked in every table of the process (`tracking-table-max-keys`
/// bounds it).
static TRACKED_KEYS: AtomicUsize = AtomicUsize::new(0);

pub fn tracked_keys() -> usize {
    TRACKED_KEYS.load(Ordering::Relaxed)
}

/// Some client tracks in BCAST mode: every changed key is reported, read
/// or not.
static BROADCASTING: AtomicBool = AtomicBool::new(false);

pub fn set_broadcasting(on: bool) {
    BROADCASTING.store(on, Ordering::Relaxed);
}

#[inline]
pub fn broadcasting() -> bool {
    BROADCASTING.load(Ordering::Relaxed)
}

#[derive(Debug, Default)]
pub struct TrackTable {
    /// Key → ids of the clients that read it since its last change.
    readers: HashMap<Bytes, Vec<u64>>,
    /// Keys changed since the shard last looked, with their readers.
    changed: Vec<(Bytes, Vec<u64>)>,
}

impl TrackTable {
    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// Client `id` read `key`.
    pub fn remember(&mut self, key: &[u8], id: u64) {
        match self.readers.get_mut(key) {
            Some(ids) => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            None => {
                self.readers.insert(Bytes::copy_from_slice(key), vec![id]);
                TRACKED_KEYS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether a change of `key` is to be reported.
    pub fn tracks(&self, key: &[u8]) -> bool {
        broadcasting() || (!self.readers.is_empty() && self.readers.contains_key(key))
    }

    /// `key` changed: its readers are to be told (and BCAST trackers).
    #[inline]
    pub fn touch(&mut self, key: &[u8]) {
        if self.readers.is_empty() && !broadcasting() {
            return;
        }
        match self.readers.remove_entry(key) {
            Some(entry) => {
                TRACKED_KEYS.fetch_sub(1, Ordering::Relaxed);
                self.changed.push(entry)
            }
            // Once per job for BCAST (a command may touch a key twice).
            None if broadcasting() && !self.changed.iter().any(|(k, _)| k[..] == *key) => {
                self.changed.push((Bytes::copy_from_slice(key), Vec::new()))
            }
            None => {}
        }
    }

    /// Changed keys and their readers, since the last call.
    pub fn take_changed(&mut self) -> Vec<(Bytes, Vec<u64>)> {
        std::mem::take(&mut self.changed)
    }

    /// A flush: every reader is told at once (by the command), so the
    /// table forgets everything.
    pub fn forget_all(&mut self) {
        TRACKED_KEYS.fetch_sub(self.readers.len(), Ordering::Relaxed);
        self.readers.clear();
    }

    /// Over `tracking-table-max-keys`: up to `n` keys are dropped, their
    /// readers told as if the keys changed (Redis's
    /// trackingLimitUsedSlots). Returns how many went.
    pub fn evict(&mut self, n: usize) -> usize {
        let keys: Vec<Bytes> = self.readers.keys().take(n).cloned().collect();
        for k in &keys {
            if let Some(entry) = self.readers.remove_entry(k) {
                TRACKED_KEYS.fetch_sub(1, Ordering::Relaxed);
                self.changed.push(entry);
            }
        }
        keys.len()
    }

    /// Keys tracked, and (key, reader) pairs (INFO's tracking_total_keys
    /// and tracking_total_items).
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.readers.len(),
            self.readers.values().map(Vec::len).sum(),
        )
    }
}

/// A database replaced wholesale (a full sync, DEBUG RELOAD) takes its
/// keys out of the count.
impl Drop for TrackTable {
    fn drop(&mut self) {
        TRACKED_KEYS.fetch_sub(self.readers.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_told_once() {
        let mut t = TrackTable::default();
        t.touch(b"k");
        assert!(t.take_changed().is_empty());
        t.remember(b"k", 1);
        t.remember(b"k", 2);
        t.remember(b"k", 1);
        assert_eq!(t.sizes(), (1, 2));
        t.touch(b"other");
        t.touch(b"k");
        t.touch(b"k");
        assert_eq!(
            t.take_changed(),
            vec![(Bytes::from_static(b"k"), vec![1, 2])]
        );
        assert!(t.is_empty());
    }
}
