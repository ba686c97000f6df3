//! Fork-less, incremental, copy-on-write snapshot of one shard's keyspace.
//!
//! [`Keyspace::snapshot_begin`](crate::keyspace::Keyspace::snapshot_begin)
//! marks a cut in every database in O(databases). Afterwards the server pulls
//! the keys as they were at the cut, a bounded slice at a time, with
//! [`Keyspace::snapshot_next`](crate::keyspace::Keyspace::snapshot_next),
//! while the shard keeps executing writes between slices. This module owns
//! the per-database state (`DbSnap`); `db.rs` calls its hooks from every
//! path that changes a key, and `mod.rs` maps database indexes at the cut to
//! where SWAPDB has moved their data since.
//!
//! # Iteration: exactly once, without remembering what was reported
//!
//! The source is walked with the dict's reverse-binary SCAN cursor. That
//! cursor orders all 32-bit hashes by their reversed bits ([`scan_order`]);
//! every bucket, at any table size, is one contiguous range of that order,
//! and one scan call visits, in both tables of a running resize, every entry
//! ranked from the cursor's rank ([`cursor_order`]) up to the returned
//! cursor's. Plain SCAN may repeat entries after a shrink (the smaller
//! bucket also holds entries already passed); we drop those by rank: an entry
//! ranked below the rank reached so far (`reached`) was reported already.
//! So every entry present for the whole walk is reported exactly once, with
//! growth, shrink and incremental rehash left running. Each bucket visited
//! advances the rank by at least 2^32 / (largest table size), so the walk
//! ends after at most that many bucket visits however fast writers grow
//! the table (provided slices keep coming).
//!
//! Alternatives considered:
//! * Suspending rehash and shrink during the snapshot: growth cannot be
//!   suspended (chains would grow without bound under inserts), so growth
//!   would still need the cursor argument, and a suspended shrink keeps
//!   memory that deletions freed, the opposite of what a snapshot should
//!   cost.
//! * Remembering reported keys (a set): O(keys) memory, exactly what the
//!   snapshot must avoid.
//! * A "reported" flag per slab slot: free of side memory, but it has to be
//!   reset for every entry before the next snapshot (an O(keys) pass), or be
//!   an epoch counter that grows every slot.
//!
//! The rank costs nothing per entry (the dict stores each entry's hash) and
//! the state per database is a few words.
//!
//! # Copy-on-write: preserve before change
//!
//! Every path of [`Db`](crate::keyspace::Db) that changes a key's value or
//! TTL, or deletes it (SET, KEEPTTL SET, a `Lookup::Write` lookup whose
//! `&mut Value` may be changed in place, EXPIRE, PERSIST, DEL, lazy and
//! active expiry, RANDOMKEY's expiry) first calls `DbSnap::before_change`. If
//! the key ranks at or above `reached` (not reported yet) and is not already
//! in `handled`, its value and TTL are cloned into `pending` and the key goes
//! into `handled`. `pending` is handed out first by the next
//! `snapshot_next` of that database, and the walk skips keys in `handled`
//! (removing them from the set as it passes them). A key created after the
//! cut and ranked at or above `reached` also goes into `handled`
//! (`DbSnap::note_new`), so the walk never reports it; one ranked below is
//! never visited again and needs nothing. Hence:
//! * a write to a key already reported, or to a key born after the cut in
//!   the walked part, costs one hash and a compare; a write to a handled key
//!   costs one more lookup, skipped when it is the key of the previous hook
//!   call (a command's write lookup then its store). Neither allocates.
//! * saved versions go to a stack of chunks that never move, so no write
//!   ever pays for copying what earlier writes saved.
//! * extra memory is `pending` plus `handled`: at most one entry per key
//!   changed or created during the snapshot, never a copy of the dataset.
//!   Cloning a string `Value` copies a `Bytes` handle; for a hash or a set
//!   a preserve deep-clones that one key's value, still proportional to
//!   what changed. Collections are changed in place only through a
//!   `Lookup::Write` lookup, so the hook always runs before the change.
//! * `Lookup::Write` preserves even when the command ends up not changing
//!   the key (SET NX on an existing key, a WRONGTYPE error): harmless, the
//!   key is reported with its cut value either way.
//! * `Lookup::Read` lookups must not change the value they return.
//!
//! # FLUSHDB / FLUSHALL and SWAPDB
//!
//! `Db::clear` during a snapshot does not copy anything: it moves the dicts
//! into the snapshot state as they are (`DbSnap::take_flushed`) and gives
//! the database fresh empty ones, whose keys are all post-cut and need no
//! hooks. The walk continues over the moved entries by draining them: each
//! is visited once, reported unless ranked below `reached` or handled, and
//! freed as it goes, slab chunk by slab chunk, so the flushed data is
//! released progressively instead of in one O(keys) drop. (An aborted
//! snapshot drops what is left at once, the cost the flush itself would
//! have had.)
//!
//! SWAPDB swaps the `Db` structs, and the state lives in the `Db`, so it
//! moves with the data; `Keyspace` keeps which current index holds each
//! cut index.
//!
//! # Slices
//!
//! `snapshot_next` does work proportional to `max`: it hands out at most
//! `max` items and stops after visiting [`WORK_PER_ITEM`]` * max` (at least
//! 64) entries and buckets, so it may return fewer than `max` items (even none) before
//! the database is exhausted; keep calling until it returns true. A
//! database whose walk is complete drops its state at once, so its writes
//! go back to the no-snapshot path.

use crate::keyspace::dict::{cursor_order, scan_order, Dict, ScanPrefetch};
use crate::keyspace::value::Value;
use bytes::Bytes;
use std::fmt;
use std::mem;

/// One key as it was at the cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapItem {
    pub key: Bytes,
    pub value: Value,
    pub expire_at_ms: Option<u64>,
    /// Its access stamp (see `access.rs`) when it was saved.
    pub access: u32,
}

/// Receives the keys of a snapshot as they were at the cut, without the
/// walk cloning them: [`SnapVisitor::borrowed`] for a key still live in the
/// dict (the reference is valid only during the call), [`SnapVisitor::owned`]
/// for a saved or flushed version the walk hands over.
pub trait SnapVisitor {
    fn borrowed(&mut self, key: &Bytes, value: &Value, expire_at_ms: Option<u64>, access: u32);
    fn owned(&mut self, item: SnapItem);
}

/// Collects clones, for callers that move the keys elsewhere.
impl SnapVisitor for Vec<SnapItem> {
    fn borrowed(&mut self, key: &Bytes, value: &Value, expire_at_ms: Option<u64>, access: u32) {
        self.push(SnapItem {
            key: key.clone(),
            value: value.clone(),
            expire_at_ms,
            access,
        });
    }

    fn owned(&mut self, item: SnapItem) {
        self.push(item);
    }
}

/// `begin` while a snapshot is active (see
/// [`Keyspace::try_snapshot_begin`](crate::keyspace::Keyspace::try_snapshot_begin)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotActive;

impl fmt::Display for SnapshotActive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot of this keyspace is already in progress")
    }
}

impl std::error::Error for SnapshotActive {}

/// Past every rank: the walk is over.
const END: u64 = 1 << 32;
/// Entries and buckets a `snapshot_next` call may visit per item it may
/// return. Tables are at least 1/8 full outside a shrink, so a few buckets
/// per entry is the norm; skipped entries (already reported, handled) count
/// too, which bounds a call even when it finds nothing to report.
pub const WORK_PER_ITEM: usize = 8;
/// Floor of the work budget, so tiny `max` values still make progress.
const MIN_WORK: usize = 64;

/// Bytes a value's payload occupies, for memory accounting.
fn value_bytes(v: &Value) -> usize {
    v.payload_bytes()
}

/// A stack of items in chunks that never move once allocated: a push is
/// O(1) worst case (a doubling `Vec` would copy everything it holds inside
/// some write). Chunks start small, so a database with a handful of saved
/// keys holds a few hundred bytes, and grow to [`Pending::MAX_CHUNK`].
#[derive(Default)]
struct Pending {
    chunks: Vec<Vec<SnapItem>>,
    len: usize,
    /// Payload bytes of the items held.
    payload: usize,
}

impl Pending {
    const FIRST_CHUNK: usize = 8;
    const MAX_CHUNK: usize = 1024;

    fn push(&mut self, item: SnapItem) {
        self.payload += item.key.len() + value_bytes(&item.value);
        let full = self.chunks.last().is_none_or(|c| c.len() == c.capacity());
        if full {
            let cap = self.chunks.last().map_or(Self::FIRST_CHUNK, |c| {
                (c.capacity() * 2).min(Self::MAX_CHUNK)
            });
            self.chunks.push(Vec::with_capacity(cap));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(item);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<SnapItem> {
        let c = self.chunks.last_mut()?;
        let item = c.pop();
        if c.is_empty() {
            self.chunks.pop();
        }
        if let Some(it) = &item {
            self.len -= 1;
            self.payload -= it.key.len() + value_bytes(&it.value);
        }
        item
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bytes(&self) -> usize {
        self.chunks.capacity() * mem::size_of::<Vec<SnapItem>>()
            + self.chunks.iter().map(Vec::capacity).sum::<usize>() * mem::size_of::<SnapItem>()
            + self.payload
    }
}

/// Where the walk reads the cut from.
enum Source {
    /// The database's own dicts, protected by the hooks.
    Live,
    /// The dicts a FLUSHDB/FLUSHALL moved out of the database.
    Flushed(Box<Flushed>),
    /// Fully walked: only `pending` may remain.
    Done,
}

struct Flushed {
    /// Owns the flushed entries; each slab chunk is freed once walked past.
    entries: Box<dyn Iterator<Item = (u32, Bytes, Value)> + Send>,
    /// The flushed TTLs, removed as their keys are visited.
    expires: Dict<u64>,
    /// Entries not visited yet, and table bytes per entry at the flush, for
    /// [`DbSnap::extra_bytes`] (payloads are not counted: O(keys) to sum).
    left: usize,
    bytes_per_entry: usize,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Live => f.write_str("Live"),
            Source::Flushed(fl) => f
                .debug_struct("Flushed")
                .field("left", &fl.left)
                .field("expires", &fl.expires.len())
                .finish(),
            Source::Done => f.write_str("Done"),
        }
    }
}

/// Snapshot state of one database (boxed in `Db`, so a database without a
/// snapshot pays one pointer and one branch per write).
pub(crate) struct DbSnap {
    source: Source,
    /// Scan cursor into the source dict (live, or flushed before the flush).
    cursor: u64,
    /// Every source entry ranked below this has been reported or skipped.
    reached: u64,
    /// Keys ranked at or above `reached` that the walk must skip: their cut
    /// version is in `pending` or already handed out, or they were born
    /// after the cut.
    handled: Dict<()>,
    handled_key_bytes: usize,
    /// Cut versions saved before a change, handed out first.
    pending: Pending,
    /// The last key found handled or made handled: a command's write lookup
    /// and its store hit the hook with the same key back to back, and a key
    /// once handled stays so for the rest of the snapshot.
    last_handled: Option<Bytes>,
    /// Prefetches ahead of the live walk (see [`Dict::prefetch_scan`]).
    prefetch: ScanPrefetch,
}

impl fmt::Debug for DbSnap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSnap")
            .field("source", &self.source)
            .field("reached", &self.reached)
            .field("handled", &self.handled.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl DbSnap {
    /// State for a database whose dict is `dict` at the cut.
    pub(crate) fn new(dict: &Dict<Value, u32>) -> Self {
        DbSnap {
            source: if dict.is_empty() {
                Source::Done
            } else {
                Source::Live
            },
            cursor: 0,
            reached: 0,
            handled: Dict::new(),
            handled_key_bytes: 0,
            pending: Pending::default(),
            last_handled: None,
            prefetch: ScanPrefetch::default(),
        }
    }

    /// Whether the live dicts may still hold unreported cut versions (the
    /// hooks have nothing to do otherwise).
    #[inline]
    pub(crate) fn watches_live(&self) -> bool {
        matches!(self.source, Source::Live)
    }

    /// Hook: `key` of the live dicts is about to change or go away. Saves its
    /// cut version if the walk has not reported it yet. Allocates only when
    /// it saves (at most once per key and snapshot).
    pub(crate) fn before_change(
        &mut self,
        dict: &Dict<Value, u32>,
        expires: &Dict<u64>,
        key: &[u8],
    ) {
        if !self.watches_live() || self.last_handled.as_deref() == Some(key) {
            return;
        }
        if scan_order(dict.hash_of(key)) < self.reached {
            return; // reported already, or born after the cut and walked past
        }
        if let Some((k, _)) = self.handled.get_key_value(key) {
            self.last_handled = Some(k.clone());
            return;
        }
        let Some((k, v)) = dict.get_key_value(key) else {
            // Absent now, so absent at the cut: every deletion since the cut
            // went through this hook.
            return;
        };
        self.pending.push(SnapItem {
            key: k.clone(),
            value: v.clone(),
            expire_at_ms: expires.get(key).copied(),
            access: dict.access_of(key).unwrap_or_else(super::access::fresh),
        });
        self.handled_key_bytes += k.len();
        self.handled.insert(k.clone(), ());
        self.last_handled = Some(k.clone());
    }

    /// Hook: `key` (the handle about to be stored) is being inserted as a new
    /// key of the live dict; it must never be reported.
    pub(crate) fn note_new(&mut self, dict: &Dict<Value, u32>, key: &Bytes) {
        if !self.watches_live() || scan_order(dict.hash_of(key)) < self.reached {
            return;
        }
        // Present already if its cut version was saved and then deleted.
        if self.handled.insert(key.clone(), ()).is_none() {
            self.handled_key_bytes += key.len();
        }
        self.last_handled = Some(key.clone());
    }

    /// Hook for `Db::clear`: the database is flushing `dict` and `expires`.
    /// Takes them over (a move, not a copy) and returns true if the walk
    /// still needs them; false if the caller should free them itself.
    pub(crate) fn take_flushed(
        &mut self,
        dict: &mut Dict<Value, u32>,
        expires: &mut Dict<u64>,
    ) -> bool {
        if !self.watches_live() {
            return false;
        }
        let left = dict.len();
        let bytes_per_entry = dict.allocated_bytes() / left.max(1);
        let entries: Box<dyn Iterator<Item = (u32, Bytes, Value)> + Send> =
            Box::new(dict.drain_hashed());
        self.source = Source::Flushed(Box::new(Flushed {
            entries,
            expires: mem::take(expires),
            left,
            bytes_per_entry,
        }));
        true
    }

    /// Appends up to `max` cut items to `out`; true once everything has been
    /// handed out (the state can then be dropped).
    pub(crate) fn next(
        &mut self,
        dict: &Dict<Value, u32>,
        expires: &Dict<u64>,
        max: usize,
        out: &mut Vec<SnapItem>,
    ) -> bool {
        let start = out.len();
        let from_pending = self.visit_pending(max, out);
        let room = max - from_pending;
        if room > 0 {
            let walk_start = out.len();
            self.visit_source(dict, expires, room, out);
            // A bucket may hold more than the room left: keep the rest for
            // the next call (it is past `reached`, so reported nowhere else).
            while out.len() - walk_start > room {
                if let Some(item) = out.pop() {
                    self.pending.push(item);
                }
            }
        }
        debug_assert!(out.len() - start <= max);
        self.finished()
    }

    /// [`DbSnap::next`] that shows each cut item to `visitor` instead of
    /// cloning it out: about `max` items (a bucket's worth more at most);
    /// true once everything has been handed out.
    pub(crate) fn visit<V: SnapVisitor>(
        &mut self,
        dict: &Dict<Value, u32>,
        expires: &Dict<u64>,
        max: usize,
        visitor: &mut V,
    ) -> bool {
        let from_pending = self.visit_pending(max, visitor);
        let room = max - from_pending;
        if room > 0 {
            self.visit_source(dict, expires, room, visitor);
        }
        self.finished()
    }

    /// Hands out up to `max` saved versions; returns how many.
    fn visit_pending<V: SnapVisitor>(&mut self, max: usize, visitor: &mut V) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.pending.pop() else {
                break;
            };
            visitor.owned(item);
            n += 1;
        }
        n
    }

    fn visit_source<V: SnapVisitor>(
        &mut self,
        dict: &Dict<Value, u32>,
        expires: &Dict<u64>,
        room: usize,
        visitor: &mut V,
    ) {
        let budget = room.saturating_mul(WORK_PER_ITEM).max(MIN_WORK);
        match &self.source {
            Source::Live => self.walk_live(dict, expires, room, budget, visitor),
            Source::Flushed(_) => self.walk_flushed(room, budget, visitor),
            Source::Done => {}
        }
    }

    /// True once everything has been handed out; drops the handled set as
    /// soon as nothing will consult it again.
    fn finished(&mut self) -> bool {
        if matches!(self.source, Source::Done) && !self.handled.is_empty() {
            self.handled = Dict::new();
            self.handled_key_bytes = 0;
            self.last_handled = None;
        }
        self.pending.is_empty() && matches!(self.source, Source::Done)
    }

    fn walk_live<V: SnapVisitor>(
        &mut self,
        dict: &Dict<Value, u32>,
        expires: &Dict<u64>,
        room: usize,
        budget: usize,
        visitor: &mut V,
    ) {
        let mut reported = 0usize;
        let mut work = 0usize;
        while reported < room && work < budget {
            let reached = self.reached;
            let handled = &mut self.handled;
            let handled_key_bytes = &mut self.handled_key_bytes;
            work += 1;
            dict.prefetch_scan(&mut self.prefetch, self.cursor, Value::body);
            let next = dict.scan_stamped(self.cursor, |hash, k, v, access| {
                work += 1;
                if scan_order(hash) < reached {
                    return; // a shrunk bucket's already walked part
                }
                if !handled.is_empty() && handled.remove(k).is_some() {
                    *handled_key_bytes -= k.len();
                    return;
                }
                reported += 1;
                visitor.borrowed(k, v, expires.get(k).copied(), access);
            });
            self.cursor = next;
            if next == 0 {
                // Wrapped, or the dict is empty: nothing ranked at or above
                // `reached` is left, and any later key is post-cut.
                self.reached = END;
                self.source = Source::Done;
                return;
            }
            self.reached = cursor_order(next);
        }
    }

    fn walk_flushed<V: SnapVisitor>(&mut self, room: usize, budget: usize, visitor: &mut V) {
        let Source::Flushed(fl) = &mut self.source else {
            return;
        };
        let mut reported = 0usize;
        let mut work = 0usize;
        while reported < room && work < budget {
            work += 1;
            let Some((hash, k, v)) = fl.entries.next() else {
                self.source = Source::Done;
                return;
            };
            fl.left = fl.left.saturating_sub(1);
            let expire_at_ms = if fl.expires.is_empty() {
                None
            } else {
                fl.expires.remove(&k).map(|(_, at)| at)
            };
            if scan_order(hash) < self.reached {
                continue;
            }
            if !self.handled.is_empty() && self.handled.remove(&k).is_some() {
                self.handled_key_bytes -= k.len();
                continue;
            }
            reported += 1;
            visitor.owned(SnapItem {
                key: k,
                value: v,
                expire_at_ms,
                // Flushed tables lose their stamps: the keys count as
                // accessed at the flush.
                access: super::access::fresh(),
            });
        }
    }

    /// Heap bytes held for the snapshot: saved versions, the handled set,
    /// and the table structure of flushed data not walked yet. Key and value
    /// payloads are counted in full even when shared with the live data.
    pub(crate) fn extra_bytes(&self) -> usize {
        let flushed = match &self.source {
            Source::Flushed(fl) => {
                mem::size_of::<Flushed>()
                    + fl.left * fl.bytes_per_entry
                    + fl.expires.allocated_bytes()
            }
            _ => 0,
        };
        mem::size_of::<Self>()
            + self.handled.allocated_bytes()
            + self.handled_key_bytes
            + self.pending.bytes()
            + flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::dict::rand_next;
    use crate::keyspace::value::StrValue;
    use crate::keyspace::{ActiveExpire, Keyspace, Lookup};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    type DbState = HashMap<Bytes, (Value, Option<u64>)>;

    const BIG: Duration = Duration::from_secs(3600);

    fn sv(s: &str) -> Value {
        Value::Str(StrValue::from_set(Bytes::copy_from_slice(s.as_bytes())))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn k(i: usize) -> Bytes {
        Bytes::from(format!("key:{i}"))
    }

    fn rnd(rng: &mut u64, n: u64) -> u64 {
        rand_next(rng) % n.max(1)
    }

    /// The reference: a full copy of every database, logically expired keys
    /// included (values are immutable `Bytes`, so clones are deep copies).
    fn copy_all(ks: &Keyspace) -> Vec<DbState> {
        ks.dbs()
            .iter()
            .map(|db| {
                db.iter_all()
                    .map(|(k, v, e)| (k.clone(), (v.clone(), e)))
                    .collect()
            })
            .collect()
    }

    /// Collects reported items per cut index, failing on any duplicate.
    struct Got {
        dbs: Vec<DbState>,
        exhausted: Vec<bool>,
    }

    impl Got {
        fn new(n: usize) -> Self {
            Got {
                dbs: vec![HashMap::new(); n],
                exhausted: vec![false; n],
            }
        }

        fn step(&mut self, ks: &mut Keyspace, db: usize, max: usize) -> Vec<Bytes> {
            let mut out = Vec::new();
            let done = ks.snapshot_next(db, max, &mut out);
            assert!(out.len() <= max, "{} items for max {max}", out.len());
            if self.exhausted[db] {
                assert!(done && out.is_empty(), "db {db} produced after exhaustion");
            }
            self.exhausted[db] = done;
            let mut keys = Vec::new();
            for it in out {
                keys.push(it.key.clone());
                let dup = self.dbs[db].insert(it.key.clone(), (it.value, it.expire_at_ms));
                assert!(dup.is_none(), "db {db}: {:?} reported twice", it.key);
            }
            keys
        }

        fn finish(&mut self, ks: &mut Keyspace, rng: &mut u64) {
            let mut calls = 0;
            while self.exhausted.iter().any(|e| !e) {
                for db in 0..self.exhausted.len() {
                    let max = 1 + rnd(rng, 64) as usize;
                    self.step(ks, db, max);
                }
                calls += 1;
                assert!(calls < 1_000_000, "snapshot does not terminate");
            }
        }
    }

    fn walk_all(ks: &mut Keyspace, max: usize) -> Vec<DbState> {
        let mut got = Got::new(ks.len());
        let mut rng = 1;
        while got.exhausted.iter().any(|e| !e) {
            for db in 0..ks.len() {
                got.step(ks, db, max);
            }
            rng += 1;
            assert!(rng < 10_000_000);
        }
        got.dbs
    }

    fn filled(ndb: usize, per_db: usize) -> Keyspace {
        let mut ks = Keyspace::new(ndb);
        for d in 0..ndb {
            let db = ks.db_mut(d).expect("db");
            for i in 0..per_db {
                let at = (i % 3 == 0).then_some(1_000_000 + i as u64);
                db.set(k(i), sv(&format!("{d}:{i}")), at);
            }
        }
        ks
    }

    #[test]
    fn untouched_keyspace_reported_once_with_hints() {
        let mut ks = filled(3, 2_000);
        ks.db_mut(1).expect("db").clear();
        let want = copy_all(&ks);
        let hints = ks.snapshot_begin();
        assert_eq!(hints, vec![(2_000, 667), (0, 0), (2_000, 667)]);
        assert!(ks.snapshot_active());
        for max in [1, 7, 1000] {
            let got = walk_all(&mut ks, max);
            assert_eq!(got, want);
            ks.snapshot_begin();
        }
        ks.snapshot_end();
        assert!(!ks.snapshot_active());
        assert_eq!(ks.snapshot_extra_bytes(), 0);
        let mut out = Vec::new();
        assert!(ks.snapshot_next(0, 10, &mut out) && out.is_empty());
    }

    #[test]
    fn every_kind_of_change_reports_the_cut_version() {
        let mut ks = filled(1, 1_000);
        // Logically expired at the cut but still stored.
        let db = ks.db_mut(0).expect("db");
        db.set(b("gone"), sv("old"), Some(10));
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        got.step(&mut ks, 0, 5);
        let now = 1_000;
        let db = ks.db_mut(0).expect("db");
        for i in 0..1_000 {
            let key = k(i);
            match i % 10 {
                0 => db.set(key, sv("new"), None),
                1 => {
                    let v = db.get(&key, now, Lookup::Write).expect("present");
                    *v = Value::Str(StrValue::raw(b("appended")));
                }
                2 => assert!(db.set_expire(&key, 5)),
                3 => {
                    db.persist(&key);
                }
                4 => assert!(db.remove(&key).is_some()),
                5 => db.set_keep_ttl(key, sv("kept")),
                6 => {
                    // Rename: remove + set under another name.
                    let v = db.remove(&key).expect("present");
                    db.set(b(&format!("renamed:{i}")), v, None);
                }
                7 => {
                    // Deleted, then re-created after the cut.
                    db.remove(&key);
                    db.set(key, sv("reborn"), Some(77));
                }
                _ => {}
            }
        }
        // Lazy expiry deletes both the expired-at-cut key and every key
        // given a past TTL above.
        for i in (2..1_000).step_by(10) {
            assert!(db.get(&k(i), 6, Lookup::Read).is_none());
        }
        assert!(db.get(b"gone", 11, Lookup::Write).is_none());
        assert_eq!(db.drain_expired().len(), 101);
        for i in 0..500 {
            db.set(b(&format!("born:{i}")), sv("b"), None);
        }
        got.finish(&mut ks, &mut 3);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn sorted_sets_changed_in_place_report_the_cut_version() {
        use crate::keyspace::{Limits, ZsetValue};
        let lim = Limits::default();
        let mut ks = Keyspace::new(1);
        let db = ks.db_mut(0).expect("db");
        for i in 0..200 {
            // Some listpacks, some skiplists.
            let mut z = ZsetValue::new();
            for m in 0..(1 + i % 2) * 150 {
                z.insert(format!("m{m}").as_bytes(), m as f64, &lim);
            }
            db.set(b(&format!("z:{i}")), Value::Zset(z), None);
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        got.step(&mut ks, 0, 7);
        let db = ks.db_mut(0).expect("db");
        // What ZADD, ZREM, ZPOPMIN... do: change through a write lookup.
        for i in 0..200 {
            if let Some(Value::Zset(z)) = db.get(&b(&format!("z:{i}")), 0, Lookup::Write) {
                z.insert(b"m0", -5.0, &lim);
                z.remove(b"m1");
                z.remove_range(0, 1);
                z.insert(&[b'x'; 100], 1.0, &lim);
            }
        }
        got.finish(&mut ks, &mut 5);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn hashes_and_sets_changed_in_place_report_the_cut_version() {
        use crate::keyspace::{HashValue, Limits, SetValue};
        let lim = Limits::default();
        let mut ks = Keyspace::new(1);
        let db = ks.db_mut(0).expect("db");
        for i in 0..200 {
            let mut h = HashValue::new();
            // Some listpacks, some tables.
            for f in 0..(1 + i % 3) * 300 {
                h.set(format!("f{f}").as_bytes(), b"v", &lim);
            }
            db.set(b(&format!("h:{i}")), Value::Hash(h), None);
            let mut s = SetValue::new_for(b"1");
            for m in 0..(1 + i % 2) * 400 {
                s.add(m.to_string().as_bytes(), &lim);
            }
            db.set(b(&format!("s:{i}")), Value::Set(s), None);
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        got.step(&mut ks, 0, 7);
        let db = ks.db_mut(0).expect("db");
        // What HSET, HDEL, SADD, SPOP... do: change through a write lookup.
        for i in 0..200 {
            if let Some(Value::Hash(h)) = db.get(&b(&format!("h:{i}")), 0, Lookup::Write) {
                h.set(b"f0", b"changed", &lim);
                h.remove(b"f1");
                h.set(b"new", &[b'x'; 100], &lim);
            }
            if let Some(Value::Set(s)) = db.get(&b(&format!("s:{i}")), 0, Lookup::Write) {
                s.remove(b"0");
                s.add(b"word", &lim);
            }
        }
        got.finish(&mut ks, &mut 5);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn lists_changed_in_place_report_the_cut_version() {
        use crate::keyspace::{End, Fill, ListValue};
        let fill = Fill(4, 0);
        let mut ks = Keyspace::new(1);
        let db = ks.db_mut(0).expect("db");
        for i in 0..200 {
            let mut l = ListValue::new();
            for e in 0..(1 + i % 5) * 30 {
                l.push(End::Right, format!("e{e}").as_bytes(), fill);
            }
            db.set(b(&format!("l:{i}")), Value::List(Box::new(l)), None);
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        got.step(&mut ks, 0, 7);
        let db = ks.db_mut(0).expect("db");
        // What LPUSH, RPOP, LSET, LTRIM... do: change through a write lookup.
        for i in 0..200 {
            if let Some(Value::List(l)) = db.get(&b(&format!("l:{i}")), 0, Lookup::Write) {
                l.push(End::Left, b"new", fill);
                l.pop(End::Right);
                l.set(3, b"changed");
                l.trim(1, 10);
            }
        }
        got.finish(&mut ks, &mut 5);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn active_expiry_and_random_key_deletions() {
        let mut ks = Keyspace::new(2);
        for d in 0..2 {
            let db = ks.db_mut(d).expect("db");
            for i in 0..3_000 {
                db.set(k(i), sv("v"), (i % 2 == 0).then_some(100 + i as u64));
            }
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(2);
        got.step(&mut ks, 0, 100);
        let mut ae = ActiveExpire::new();
        for _ in 0..20 {
            ae.run_cycle(&mut ks, 10_000, BIG, Instant::now);
        }
        assert_eq!(ks.db(0).expect("db").len(), 1_500);
        for _ in 0..100 {
            ks.db_mut(1).expect("db").random_key(10_000);
        }
        got.finish(&mut ks, &mut 4);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn flush_moves_the_dicts_and_keeps_walking() {
        let mut ks = filled(3, 20_000);
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(3);
        for _ in 0..50 {
            got.step(&mut ks, 0, 100);
            got.step(&mut ks, 2, 100);
        }
        // Saved versions in db 0, then FLUSHDB: nothing is copied.
        for i in 0..2_000 {
            ks.db_mut(0).expect("db").set(k(i), sv("x"), None);
        }
        let before = ks.snapshot_extra_bytes();
        assert_eq!(ks.db_mut(0).expect("db").clear(), 20_000);
        let after = ks.snapshot_extra_bytes();
        // The moved tables are accounted for, but nothing else was made.
        assert!(
            after >= before && after < before + 20_000 * 128,
            "{before} -> {after}"
        );
        // Post-flush keys are never reported; flushing again changes nothing.
        let db = ks.db_mut(0).expect("db");
        for i in 0..5_000 {
            db.set(k(i), sv("post"), None);
        }
        db.clear();
        db.set(k(1), sv("post"), None);
        // FLUSHALL with db 1 never walked and db 2 half walked.
        assert_eq!(ks.flush_all(), 40_001);
        for i in 0..100 {
            ks.db_mut(2).expect("db").set(k(i), sv("post"), None);
        }
        // The flushed data is released as it is walked.
        let mut last = ks.snapshot_extra_bytes();
        let mut drops = 0;
        while got.exhausted.iter().any(|e| !e) {
            for db in 0..3 {
                got.step(&mut ks, db, 500);
            }
            let now = ks.snapshot_extra_bytes();
            drops += usize::from(now < last);
            last = now;
        }
        assert!(drops > 10, "flushed memory not released progressively");
        assert_eq!(got.dbs, want);
        assert!(ks.snapshot_extra_bytes() < 4_096);
        ks.snapshot_end();
        // Abort with flushed data still held.
        let want = copy_all(&ks);
        ks.snapshot_begin();
        ks.flush_all();
        ks.snapshot_end();
        assert_eq!(ks.snapshot_extra_bytes(), 0);
        assert!(want.iter().any(|d| !d.is_empty()));
    }

    #[test]
    fn swapdb_keeps_reporting_the_cut_index() {
        let mut ks = Keyspace::new(3);
        for d in 0..3 {
            let db = ks.db_mut(d).expect("db");
            for i in 0..(1_000 * (d + 1)) {
                db.set(k(i), sv(&format!("{d}")), None);
            }
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(3);
        got.step(&mut ks, 0, 300);
        assert!(ks.swap_dbs(0, 2));
        got.step(&mut ks, 0, 300);
        got.step(&mut ks, 2, 300);
        // Writes land in the moved data and are still copy-on-write.
        for i in 0..3_000 {
            ks.db_mut(2).expect("db").set(k(i), sv("w"), None);
            ks.db_mut(0).expect("db").remove(&k(i));
        }
        assert!(ks.swap_dbs(1, 2));
        ks.db_mut(1).expect("db").clear();
        assert!(ks.swap_dbs(0, 1));
        got.finish(&mut ks, &mut 5);
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn growth_from_tiny_and_shrink_during_the_walk() {
        // Tiny at the cut, then grown to 100k keys with the walk advancing
        // one item at a time, and rehashes running throughout.
        let mut ks = Keyspace::new(1);
        let db = ks.db_mut(0).expect("db");
        for i in 0..3 {
            db.set(k(i), sv("cut"), None);
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        let mut n = 3;
        let mut rehashing_seen = 0;
        let mut steps = 0;
        while !got.exhausted[0] {
            got.step(&mut ks, 0, 1);
            steps += 1;
            // Growing in proportion to the steps for ever would outrun any
            // walk: grow hard during the first steps only.
            if steps <= 50 {
                let db = ks.db_mut(0).expect("db");
                for _ in 0..2_000 {
                    db.set(k(n), sv("new"), None);
                    n += 1;
                }
                // Whether 2,000 keys leave a grow half done depends on the
                // table size they reach: go on until one is, so the next
                // step of the walk always meets a rehash.
                while !db.rehash_steps(0) && n < 10_000_000 {
                    db.set(k(n), sv("new"), None);
                    n += 1;
                }
                rehashing_seen += usize::from(db.rehash_steps(0));
                db.rehash_steps(1);
            }
        }
        // Each step hands out at most one key, so the walk saw at least
        // the three cut keys' steps of growth (how many more depends on
        // the dict's random seed: where the new keys land).
        assert!(
            steps >= 3 && n >= 3 + 3 * 2_000,
            "walk ended before the growth"
        );
        assert!(rehashing_seen > 0);
        assert_eq!(got.dbs, want);
        ks.snapshot_end();

        // Large and in the middle of a grow at the cut, then mostly deleted
        // (shrinks while the cursor is deep into the bigger table), then
        // grown again.
        let mut ks = Keyspace::new(1);
        let db = ks.db_mut(0).expect("db");
        let mut i = 0;
        while !(i > 60_000 && db.rehash_steps(0)) {
            db.set(k(i), sv("cut"), None);
            i += 1;
        }
        let want = copy_all(&ks);
        ks.snapshot_begin();
        let mut got = Got::new(1);
        for _ in 0..200 {
            got.step(&mut ks, 0, 100);
        }
        let db = ks.db_mut(0).expect("db");
        for j in 0..i {
            if j % 50 != 0 {
                db.remove(&k(j));
            }
        }
        let mut steps = 0;
        while !got.exhausted[0] {
            got.step(&mut ks, 0, 3);
            steps += 1;
            if steps <= 100 {
                let db = ks.db_mut(0).expect("db");
                for _ in 0..300 {
                    db.set(k(i), sv("new"), None);
                    i += 1;
                }
            }
        }
        assert_eq!(got.dbs, want);
    }

    #[test]
    fn extra_memory_is_proportional_to_changed_keys() {
        let n = 100_000;
        let mut ks = filled(1, n);
        let dataset = ks.db(0).expect("db").len() * 80;
        ks.snapshot_begin();
        assert!(ks.snapshot_extra_bytes() < 1_024);
        let mut per_key = Vec::new();
        let mut changed = 0;
        for round in 1..=4 {
            let db = ks.db_mut(0).expect("db");
            for _ in 0..1_000 {
                db.set(k(changed), sv("changed"), None);
                changed += 1;
            }
            let extra = ks.snapshot_extra_bytes();
            per_key.push(extra / changed);
            assert!(
                extra < changed * 256,
                "round {round}: {extra} B for {changed} keys"
            );
        }
        println!("snapshot bytes per changed key: {per_key:?}");
        // 4% of the keys changed: far from a copy of the dataset.
        assert!(ks.snapshot_extra_bytes() * 10 < dataset);
        // Rewriting the same keys again costs nothing more.
        let extra = ks.snapshot_extra_bytes();
        let db = ks.db_mut(0).expect("db");
        for i in 0..changed {
            db.set(k(i), sv("again"), None);
            let v = db.get(&k(i), 0, Lookup::Write).expect("present");
            *v = sv("again2");
        }
        assert_eq!(ks.snapshot_extra_bytes(), extra);
        // Handing out the saved versions releases them; then writes to
        // reported keys and to keys born after the cut add nothing.
        let mut got = Got::new(1);
        let mut reported = Vec::new();
        while reported.len() < 20_000 {
            reported.extend(got.step(&mut ks, 0, 1_000));
        }
        let db = ks.db_mut(0).expect("db");
        for i in 0..2_000 {
            db.set(b(&format!("born:{i}")), sv("b"), None);
        }
        let extra = ks.snapshot_extra_bytes();
        let db = ks.db_mut(0).expect("db");
        for key in &reported {
            db.set(key.clone(), sv("late"), Some(5));
            db.remove(key);
        }
        for i in 0..2_000 {
            db.set(b(&format!("born:{i}")), sv("b2"), None);
        }
        assert_eq!(ks.snapshot_extra_bytes(), extra);
        got.finish(&mut ks, &mut 9);
        assert!(ks.snapshot_extra_bytes() < 1_024);
    }

    #[test]
    fn begin_twice_restarts_and_try_begin_refuses() {
        let mut ks = filled(2, 100);
        ks.snapshot_begin();
        let mut out = Vec::new();
        ks.snapshot_next(0, 50, &mut out);
        ks.db_mut(0).expect("db").set(k(0), sv("changed"), None);
        assert_eq!(ks.try_snapshot_begin(), Err(SnapshotActive));
        // A new cut: the current data, from the start.
        let want = copy_all(&ks);
        ks.snapshot_begin();
        assert_eq!(walk_all(&mut ks, 10), want);
        ks.snapshot_end();
        assert!(ks.try_snapshot_begin().is_ok());
        assert!(ks.snapshot_next(7, 1, &mut out));
    }

    /// One random run: a keyspace, a cut, then random writes of every kind
    /// interleaved with random-size slices; the reported items must equal
    /// the copy taken at the cut, per cut index.
    fn model_run(seed: u64) {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcd;
        let r = &mut rng;
        let ndb = 4;
        let mut ks = Keyspace::new(ndb);
        let mut now = 10_000u64;
        let space = 4_000u64;
        let key = |i: u64| Bytes::from(format!("k{i}"));
        let initial = 500 + rnd(r, 3_000);
        for j in 0..initial {
            let d = rnd(r, ndb as u64) as usize;
            let at = match rnd(r, 10) {
                0 => Some(now - 1 - rnd(r, 100)), // expired at the cut
                1..=3 => Some(now + rnd(r, 3_000)),
                _ => None,
            };
            let db = ks.db_mut(d).expect("db");
            db.set(key(rnd(r, space)), sv(&format!("init{j}")), at);
        }
        // Sometimes start in the middle of a resize.
        if rnd(r, 2) == 0 {
            let db = ks.db_mut(0).expect("db");
            let mut i = 0;
            while !db.rehash_steps(0) && i < 100_000 {
                db.set(key(1_000_000 + i), sv("pre"), None);
                i += 1;
            }
        }
        let want = copy_all(&ks);
        let hints = ks.snapshot_begin();
        for (d, w) in want.iter().enumerate() {
            let expires = w.values().filter(|(_, e)| e.is_some()).count();
            assert_eq!(hints[d], (w.len(), expires));
        }
        let mut got = Got::new(ndb);
        let mut ae = ActiveExpire::new();
        let mut fresh = 2_000_000u64;
        let ops = 1_500 + rnd(r, 1_500);
        for op in 0..ops {
            let d = rnd(r, ndb as u64) as usize;
            let kk = key(rnd(r, space));
            let val = sv(&format!("op{op}"));
            let db = ks.db_mut(d).expect("db");
            match rnd(r, 100) {
                0..=14 => {
                    db.get(&kk, now, Lookup::Write);
                    let at = (rnd(r, 3) == 0).then(|| now + rnd(r, 2_000));
                    db.set(kk, val, at);
                }
                15..=19 => {
                    db.get(&kk, now, Lookup::Write);
                    db.set_keep_ttl(kk, val);
                }
                20..=29 => {
                    if let Some(Value::Str(s)) = db.get(&kk, now, Lookup::Write) {
                        let mut v = s.bytes().to_vec();
                        v.extend_from_slice(b"+");
                        *s = StrValue::raw(Bytes::from(v));
                    }
                }
                30..=36 => {
                    db.set_expire(&kk, now + rnd(r, 1_000) - 200);
                }
                37..=40 => {
                    db.persist(&kk);
                }
                41..=48 => {
                    db.get(&kk, now, Lookup::Write);
                    db.remove(&kk);
                }
                49..=53 => {
                    db.get(&kk, now, Lookup::Read);
                }
                54..=56 => now += rnd(r, 300),
                57..=58 => {
                    ae.run_cycle(&mut ks, now, BIG, Instant::now);
                }
                59 => {
                    db.random_key(now);
                }
                60..=63 => {
                    // RENAME / MOVE.
                    if db.get(&kk, now, Lookup::Write).is_some() {
                        let at = db.expire_at(&kk);
                        let v = db.remove(&kk).expect("present");
                        let to = rnd(r, ndb as u64) as usize;
                        let dst = key(rnd(r, space));
                        let db = ks.db_mut(to).expect("db");
                        db.get(&dst, now, Lookup::Write);
                        db.set(dst, v, at);
                    }
                }
                64..=65 => {
                    // New keys, lots of them: growth and rehash.
                    for _ in 0..rnd(r, 3_000) {
                        db.set(key(fresh), sv("fresh"), None);
                        fresh += 1;
                    }
                }
                66..=67 => {
                    // Mass deletion: shrink.
                    let victims: Vec<Bytes> = db
                        .iter_all()
                        .map(|(k, _, _)| k.clone())
                        .filter(|_| !rand_next(r).is_multiple_of(10))
                        .collect();
                    for v in victims {
                        db.remove(&v);
                    }
                }
                68 => {
                    db.rehash_steps(rnd(r, 200) as usize);
                }
                69 => {
                    if rnd(r, 4) == 0 {
                        db.clear();
                    }
                }
                70 => {
                    if rnd(r, 10) == 0 {
                        ks.flush_all();
                    }
                }
                71..=72 => {
                    let other = rnd(r, ndb as u64) as usize;
                    ks.swap_dbs(d, other);
                }
                73 => {
                    // Briefly a replica: expired keys stay writable.
                    ks.set_expire_allowed(false);
                    if let Some(Value::Str(s)) =
                        ks.db_mut(d).expect("db").get(&kk, now, Lookup::Write)
                    {
                        *s = StrValue::raw(b("replica-write"));
                    }
                    ks.set_expire_allowed(true);
                }
                74..=76 => {
                    ks.drain_expired();
                }
                _ => {
                    let max = 1 + rnd(r, 40) as usize;
                    got.step(&mut ks, d, max);
                }
            }
        }
        got.finish(&mut ks, r);
        for (d, (got, want)) in got.dbs.iter().zip(&want).enumerate() {
            if got != want {
                let missing: Vec<_> = want
                    .keys()
                    .filter(|k| !got.contains_key(*k))
                    .take(5)
                    .collect();
                let extra: Vec<_> = got
                    .keys()
                    .filter(|k| !want.contains_key(*k))
                    .take(5)
                    .collect();
                let wrong: Vec<_> = want
                    .iter()
                    .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                    .map(|(k, _)| k)
                    .take(5)
                    .collect();
                panic!("seed {seed} db {d}: missing {missing:?} extra {extra:?} wrong {wrong:?}");
            }
        }
        ks.snapshot_end();
        assert_eq!(ks.snapshot_extra_bytes(), 0);
    }

    #[test]
    fn model_random_writes_during_snapshot() {
        for seed in 0..60 {
            model_run(seed);
        }
    }
}
