//! One shard's data: its logical databases and their expiry.
//!
//! Owns `Keyspace` (the SELECT-indexed list of `Db`s) and re-exports the
//! module's public types. Purely synchronous: no I/O, no threads, no clock
//! reads except through the closure handed to active expiry. It may depend
//! on `bytes` and std only; networking, replication and command parsing
//! live elsewhere and call into this module, never the reverse.
//!
//! Files: `dict.rs` (hash table), `value.rs` (values and encodings),
//! `hash.rs` / `listpack.rs` (the hash type), `set.rs` (the set type), `list.rs` (the list type),
//! `zset.rs` / `skiplist.rs` (the sorted set type), `db.rs`
//! (one database: TTLs, lazy expiry, expired log), `expire.rs` (active
//! expiry cycle), `snapshot.rs` (incremental copy-on-write snapshot),
//! `watch.rs` (WATCH versions of watched keys), `staging.rs` (a load's
//! databases until they replace the live ones), `access.rs` (per-key LRU/LFU
//! access stamps), `evict.rs` (choosing `maxmemory` eviction victims).
#![forbid(unsafe_code)]

pub mod access;
pub mod db;
pub mod dict;
pub mod evict;
pub mod expire;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod lazyfree;
pub mod list;
pub mod listpack;
pub mod set;
pub mod skiplist;
pub mod snapshot;
pub mod staging;
pub mod stream;
pub mod track;
pub mod value;
pub mod watch;
pub mod zset;

pub use db::{Db, Lookup};
pub use dict::Dict;
pub use expire::{ActiveExpire, CycleStats};
pub use hash::HashValue;
pub use list::{End, Fill, ListValue};
pub use set::{Member, SetValue};
pub use snapshot::{SnapItem, SnapVisitor, SnapshotActive};
pub use staging::{Install, LoadedKey, StageError};
pub use stream::{StreamId, StreamValue};
pub use value::{Limits, StrEncoding, StrValue, Value, SHARED_INTEGERS};
pub use zset::ZsetValue;

/// Most keys [`Keyspace::prefetch_keys`] takes at once.
const PREFETCH_KEYS: usize = 32;

use bytes::Bytes;

/// The databases of one shard (SELECT 0..n).
#[derive(Debug)]
pub struct Keyspace {
    dbs: Vec<Db>,
    /// While a snapshot is active: for each database index at the cut, the
    /// index that holds its data now (SWAPDB moves it).
    snap_at: Option<Vec<usize>>,
    /// A load in progress: its databases, filled while these serve.
    staged: Option<staging::Staged>,
}

impl Keyspace {
    /// `n` empty databases (Redis's default is 16).
    pub fn new(n: usize) -> Self {
        Keyspace {
            dbs: (0..n).map(|_| Db::new()).collect(),
            snap_at: None,
            staged: None,
        }
    }

    /// Number of databases.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// `None` for an index out of range (the server answers "DB index is
    /// out of range").
    pub fn db(&self, i: usize) -> Option<&Db> {
        self.dbs.get(i)
    }

    /// Prefetches what looking up `keys` in database `db` will read (a
    /// pipeline's keys, before its commands run): all their bucket heads,
    /// then all chain entries, then keys and values, so the cache misses
    /// of the whole batch overlap instead of following one another. Only
    /// a hint: at most [`PREFETCH_KEYS`] keys, and nothing for fewer than
    /// two (one lookup has nothing to overlap with).
    pub fn prefetch_keys<'a>(&self, db: usize, keys: impl IntoIterator<Item = &'a [u8]>) {
        let Some(d) = self.dbs.get(db) else {
            return;
        };
        let mut hashes = [0u32; PREFETCH_KEYS];
        let mut n = 0;
        for k in keys.into_iter().take(PREFETCH_KEYS) {
            hashes[n] = d.key_hash(k);
            n += 1;
        }
        if n < 2 {
            return;
        }
        for stage in 0..=3 {
            for &h in &hashes[..n] {
                d.prefetch_key(h, stage);
            }
        }
    }

    pub fn db_mut(&mut self, i: usize) -> Option<&mut Db> {
        self.dbs.get_mut(i)
    }

    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    pub fn dbs_mut(&mut self) -> &mut [Db] {
        &mut self.dbs
    }

    /// SWAPDB; false if an index is out of range. Everything moves with the
    /// data, including undrained expired-key logs: entries drained after
    /// the swap belong to the new index and must be propagated after the
    /// SWAPDB itself (or drain before swapping).
    pub fn swap_dbs(&mut self, a: usize, b: usize) -> bool {
        if a >= self.dbs.len() || b >= self.dbs.len() {
            return false;
        }
        self.dbs.swap(a, b);
        if a != b {
            let (lo, hi) = (a.min(b), a.max(b));
            let (left, right) = self.dbs.split_at_mut(hi);
            Db::swapped(&mut left[lo], &mut right[0]);
        }
        if let Some(at) = self.snap_at.as_mut() {
            for p in at.iter_mut() {
                if *p == a {
                    *p = b;
                } else if *p == b {
                    *p = a;
                }
            }
        }
        true
    }

    /// FLUSHALL; returns the number of keys removed.
    pub fn flush_all(&mut self) -> usize {
        self.dbs.iter_mut().map(Db::clear).sum()
    }

    /// FLUSHALL ASYNC: like [`Keyspace::flush_all`], with the tables freed
    /// by the background thread ([`lazyfree`]).
    pub fn flush_all_lazy(&mut self) -> usize {
        self.dbs.iter_mut().map(Db::clear_lazy).sum()
    }

    /// Keys over all databases.
    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// False when this shard becomes a replica, true when it is promoted.
    pub fn set_expire_allowed(&mut self, allowed: bool) {
        for db in &mut self.dbs {
            db.set_expire_allowed(allowed);
        }
    }

    /// Expired-key logs of all databases, as (db index, key).
    pub fn drain_expired(&mut self) -> Vec<(usize, Bytes)> {
        let mut out = Vec::new();
        for (i, db) in self.dbs.iter_mut().enumerate() {
            out.extend(db.drain_expired().into_iter().map(|k| (i, k)));
        }
        out
    }

    /// Publishes the notifications the databases raised themselves
    /// (`expired`, `new`) since the last call, before anything else this
    /// shard is about to publish.
    pub fn publish_notes(&mut self) {
        use crate::notify::class;
        for (i, db) in self.dbs.iter_mut().enumerate() {
            for (kind, key) in db.take_notes() {
                let event = if kind == class::NEW { "new" } else { "expired" };
                crate::notify::emit(kind, event, &key, i);
            }
        }
    }

    /// Keys that got a list while clients block on them, as (db index,
    /// key), in order.
    pub fn take_ready(&mut self) -> Vec<(usize, Bytes)> {
        let mut out = Vec::new();
        for (i, db) in self.dbs.iter_mut().enumerate() {
            out.extend(db.take_ready().into_iter().map(|k| (i, k)));
        }
        out
    }

    /// Keys tracking clients read that changed since the last call, with
    /// their readers (see `track.rs`).
    pub fn take_invalidations(&mut self) -> Vec<(Bytes, Vec<u64>)> {
        let mut out = Vec::new();
        for db in &mut self.dbs {
            out.extend(db.track.take_changed());
        }
        out
    }

    /// INFO's tracking_total_keys and tracking_total_items of this shard.
    pub fn tracking_sizes(&self) -> (usize, usize) {
        self.dbs.iter().fold((0, 0), |(k, i), db| {
            let (dk, di) = db.track.sizes();
            (k + dk, i + di)
        })
    }

    /// Settles every database's pending WATCH touches (see
    /// [`Db::settle_touches`]) at the end of a job.
    pub fn settle_touches(&mut self, changed: bool) {
        for db in &mut self.dbs {
            db.settle_touches(changed);
        }
    }

    /// Whether any database logged an expired key since the last drain.
    pub fn has_expired(&self) -> bool {
        self.dbs.iter().any(Db::has_expired)
    }

    /// Total keys deleted by expiry (INFO stats expired_keys).
    pub fn expired_keys(&self) -> u64 {
        self.dbs.iter().map(Db::expired_keys).sum()
    }

    // ------------------------------------------------------- snapshot --

    /// Marks the cut in every database of this shard (O(databases), no key
    /// is touched). From now on [`Keyspace::snapshot_next`] reports every
    /// database as it is at this instant, whatever writes follow; see
    /// `snapshot.rs` for how. Returns per database the number of keys and
    /// of keys with a TTL at the cut (RDB RESIZEDB hints; logically expired
    /// keys not yet deleted are counted, and reported, as Redis does).
    ///
    /// One snapshot per shard at a time: calling this while one is active
    /// abandons it (as [`Keyspace::snapshot_end`]) and takes a new cut, so
    /// whoever was consuming the old one must stop.
    /// [`Keyspace::try_snapshot_begin`] refuses instead.
    pub fn snapshot_begin(&mut self) -> Vec<(usize, usize)> {
        self.snapshot_end();
        self.snap_at = Some((0..self.dbs.len()).collect());
        self.dbs.iter_mut().map(Db::snap_begin).collect()
    }

    /// [`Keyspace::snapshot_begin`], or an error if a snapshot is active.
    pub fn try_snapshot_begin(&mut self) -> Result<Vec<(usize, usize)>, SnapshotActive> {
        if self.snapshot_active() {
            return Err(SnapshotActive);
        }
        Ok(self.snapshot_begin())
    }

    /// Appends up to `max` keys of database `db_at_cut` (its index at the
    /// cut, wherever SWAPDB has moved it since) as they were at the cut, and
    /// returns true once that database is exhausted. Each key of the cut is
    /// reported exactly once, in no particular order. The work done is
    /// O(`max`); it may append fewer than `max` items, even none, without
    /// being exhausted. True also without an active snapshot or for an
    /// index out of range.
    pub fn snapshot_next(&mut self, db_at_cut: usize, max: usize, out: &mut Vec<SnapItem>) -> bool {
        self.db_at_cut(db_at_cut)
            .is_none_or(|db| db.snap_next(max, out))
    }

    /// [`Keyspace::snapshot_next`] that shows the keys to `visitor` instead
    /// of cloning them (it may see a bucket's worth more than `max`).
    pub fn snapshot_visit<V: SnapVisitor>(
        &mut self,
        db_at_cut: usize,
        max: usize,
        visitor: &mut V,
    ) -> bool {
        self.db_at_cut(db_at_cut)
            .is_none_or(|db| db.snap_visit(max, visitor))
    }

    /// Where the database that had index `db_at_cut` at the cut is now
    /// (SWAPDB moves it); `None` without a snapshot or out of range.
    fn db_at_cut(&mut self, db_at_cut: usize) -> Option<&mut Db> {
        let now_at = *self.snap_at.as_ref()?.get(db_at_cut)?;
        self.dbs.get_mut(now_at)
    }

    /// Ends or aborts the snapshot and drops everything held for it. Flushed
    /// databases not fully walked are freed here, in one go.
    pub fn snapshot_end(&mut self) {
        if self.snap_at.take().is_some() {
            for db in &mut self.dbs {
                db.snap_end();
            }
        }
    }

    pub fn snapshot_active(&self) -> bool {
        self.snap_at.is_some()
    }

    /// Heap bytes held for the snapshot (saved versions, handled-key sets,
    /// flushed tables not walked yet), for INFO and benchmarks.
    pub fn snapshot_extra_bytes(&self) -> usize {
        if self.snap_at.is_none() {
            return 0;
        }
        self.dbs.iter().map(Db::snap_extra_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Value {
        Value::Str(StrValue::from_set(Bytes::from_static(b"v")))
    }

    #[test]
    fn keyspace_basics() {
        let mut ks = Keyspace::new(16);
        assert_eq!(ks.len(), 16);
        assert!(ks.db(16).is_none() && ks.db_mut(99).is_none());
        let db0 = ks.db_mut(0).expect("db0");
        db0.set(Bytes::from_static(b"a"), v(), None);
        db0.set(Bytes::from_static(b"x"), v(), Some(10));
        assert!(db0.get(b"x", 11, Lookup::Read).is_none());
        ks.db_mut(3)
            .expect("db3")
            .set(Bytes::from_static(b"b"), v(), None);
        assert_eq!(ks.key_count(), 2);
        assert!(ks.swap_dbs(0, 3));
        assert!(!ks.swap_dbs(0, 16));
        assert!(ks.db(0).expect("db0").get_ref(b"b", 0).is_some());
        assert!(ks.db(3).expect("db3").get_ref(b"a", 0).is_some());
        assert_eq!(ks.drain_expired(), vec![(3, Bytes::from_static(b"x"))]);
        assert_eq!(ks.expired_keys(), 1);
        ks.set_expire_allowed(false);
        assert!(ks.dbs().iter().all(|d| !d.expire_allowed()));
        assert_eq!(ks.flush_all(), 2);
        assert_eq!(ks.key_count(), 0);
        assert!(Keyspace::new(0).is_empty());
    }
}
