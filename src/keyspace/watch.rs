//! WATCH bookkeeping for one database: which keys some client watches, and
//! a version per watched key that every change of the key replaces.
//!
//! Only watched keys have an entry, so a write to an unwatched key costs the
//! `is_empty` test in [`WatchTable::touch`] and nothing else. Versions come
//! from one process-wide counter: a version is never reused, so a stamp
//! taken before the table was dropped or replaced (full sync, DEBUG RELOAD)
//! can never match an entry created afterwards. (An UNWATCH by a client
//! whose entry was dropped that way may end a newer watcher's entry early;
//! that newer watcher then aborts needlessly, never the reverse.)
//!
//! A write lookup only makes a touch pending; `Db::settle_touches` commits
//! it when the command changed something (its `dirty` grew), so a no-op
//! write (SETNX on an existing key, SADD of a present member) aborts no
//! EXEC, as in Redis.
//!
//! Expiry does not change versions; [`WatchStamp::is_dirty`] looks at the
//! key itself instead (Redis 7.0: a key that expires while watched aborts
//! the EXEC, while a key that was already expired when watched may be
//! reclaimed without aborting it). Depends on std and `bytes` only.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Source of versions for every table of the process.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug)]
struct Entry {
    /// Clients watching the key (WATCH of a key twice by one client counts
    /// once; the command layer ensures it).
    watchers: u32,
    /// Replaced by a fresh version on every change of the key.
    version: u64,
}

/// Watched keys of one database.
#[derive(Debug, Default)]
pub struct WatchTable {
    keys: HashMap<Bytes, Entry>,
}

/// What a client remembers of a key when it watched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchStamp {
    pub version: u64,
    /// The key existed and was not expired.
    pub live: bool,
    /// The key was stored but already logically expired.
    pub expired: bool,
}

/// A key's state at EXEC, as the database sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyState {
    /// Current version, `None` if nobody's watch entry exists any more.
    pub version: Option<u64>,
    /// Stored in the database (expired or not).
    pub stored: bool,
    /// Stored and logically expired.
    pub expired: bool,
}

impl WatchStamp {
    /// Whether EXEC must abort for this key.
    pub fn is_dirty(&self, now: KeyState) -> bool {
        if now.version != Some(self.version) {
            return true;
        }
        // Unchanged by any command since WATCH; only expiry may have
        // happened. A live key that expired (deleted or not yet) aborts.
        self.live && (!now.stored || now.expired)
    }
}

impl WatchTable {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Registers one more watcher of `key`; returns the key's version.
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        if let Some(e) = self.keys.get_mut(key) {
            e.watchers += 1;
            return e.version;
        }
        let version = next_version();
        self.keys.insert(
            Bytes::copy_from_slice(key),
            Entry {
                watchers: 1,
                version,
            },
        );
        version
    }

    /// Removes one watcher of `key` (nothing if the entry is gone).
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(e) = self.keys.get_mut(key) {
            e.watchers -= 1;
            if e.watchers == 0 {
                self.keys.remove(key);
            }
        }
    }

    pub fn version(&self, key: &[u8]) -> Option<u64> {
        self.keys.get(key).map(|e| e.version)
    }

    /// Records a change of `key` (a no-op unless someone watches it).
    #[inline]
    pub fn touch(&mut self, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(e) = self.keys.get_mut(key) {
            e.version = next_version();
        }
    }

    /// Records a change of every watched key for which `changed` says so
    /// (FLUSHDB, SWAPDB).
    pub fn touch_where(&mut self, mut changed: impl FnMut(&[u8]) -> bool) {
        for (k, e) in self.keys.iter_mut() {
            if changed(k) {
                e.version = next_version();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: &WatchTable, key: &[u8], stored: bool, expired: bool) -> KeyState {
        KeyState {
            version: t.version(key),
            stored,
            expired,
        }
    }

    #[test]
    fn touch_changes_only_watched_keys() {
        let mut t = WatchTable::default();
        t.touch(b"k"); // nobody watches: nothing recorded
        assert!(t.is_empty());
        let v = t.watch(b"k");
        let stamp = WatchStamp {
            version: v,
            live: true,
            expired: false,
        };
        t.touch(b"other");
        assert!(!stamp.is_dirty(state(&t, b"k", true, false)));
        t.touch(b"k");
        assert!(stamp.is_dirty(state(&t, b"k", true, false)));
    }

    #[test]
    fn entries_live_while_someone_watches() {
        let mut t = WatchTable::default();
        let v1 = t.watch(b"k");
        let v2 = t.watch(b"k");
        assert_eq!(v1, v2);
        t.unwatch(b"k");
        assert_eq!(t.version(b"k"), Some(v1));
        t.unwatch(b"k");
        assert!(t.is_empty());
        t.unwatch(b"k"); // tolerated
                         // A new entry never reuses an old version.
        assert_ne!(t.watch(b"k"), v1);
    }

    #[test]
    fn expiry_rules() {
        let mut t = WatchTable::default();
        let version = t.watch(b"k");
        let live = WatchStamp {
            version,
            live: true,
            expired: false,
        };
        // A live key that expired, reclaimed or not, aborts.
        assert!(live.is_dirty(state(&t, b"k", true, true)));
        assert!(live.is_dirty(state(&t, b"k", false, false)));
        // A key already expired at WATCH may be reclaimed.
        let stale = WatchStamp {
            version,
            live: false,
            expired: true,
        };
        assert!(!stale.is_dirty(state(&t, b"k", false, false)));
        assert!(!stale.is_dirty(state(&t, b"k", true, true)));
        // A missing key that stays missing is clean.
        let missing = WatchStamp {
            version,
            live: false,
            expired: false,
        };
        assert!(!missing.is_dirty(state(&t, b"k", false, false)));
        // The table was dropped: dirty.
        let empty = WatchTable::default();
        assert!(live.is_dirty(state(&empty, b"k", true, false)));
    }

    #[test]
    fn touch_where_selects_keys() {
        let mut t = WatchTable::default();
        let a = t.watch(b"a");
        let b = t.watch(b"b");
        t.touch_where(|k| k == b"a");
        assert_ne!(t.version(b"a"), Some(a));
        assert_eq!(t.version(b"b"), Some(b));
    }
}
