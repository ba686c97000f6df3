//! `Dict<V>`: the shard's own hash table, keyed by `bytes::Bytes`.
//!
//! Owns bucket layout, hashing with a per-dict random seed, incremental
//! rehashing (grow and shrink), the reverse-binary SCAN cursor and random
//! sampling. It depends only on `bytes` and `std`: it knows nothing about
//! values, TTLs or commands, so `db.rs` and `expire.rs` build on it and it
//! must never import them.
//!
//! Layout, and why:
//! * Chaining, not open addressing: Redis's SCAN guarantee needs an element's
//!   bucket to be a pure function of its hash and the table mask.
//! * Entries live in a chunked slab addressed by `u32` (`0` = none). A bucket
//!   head costs 4 bytes and a chain link 4 bytes, the entry's 32-bit hash
//!   fills what would otherwise be padding (so rehashing never re-reads key
//!   bytes), there is no per-entry allocator header, and growing the slab
//!   only appends a chunk: existing entries are never copied.
//! * Bucket arrays are zero-initialised (`0` = empty) so big ones come from
//!   `calloc`/fresh pages instead of an O(n) fill when a resize starts.
//!
//! Bytes per entry (measured by the `memory_per_entry` test, 64-bit):
//! `size_of::<Slot<V, S>>()` = 32 (key handle) + `size_of::<V>()` rounded up to
//! 8 + 8 (hash + link), i.e. 80 for `Value` and 48 for `u64`, plus 4..8 bytes
//! of bucket array at load factor 1..0.5 (4 more while a resize runs):
//! 84.5 B for `Dict<Value>` and 52.4 B for `Dict<u64>` at 1M keys. Key and
//! value bytes live in their own `Bytes` allocations, outside this count.
//!
//! Capacity: at most `u32::MAX` entries per dict (about 340 GB of slots for
//! `Value`); past that, insertion reports an allocation failure like any
//! exhausted allocator would.

use bytes::Bytes;
use std::alloc::Layout;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// "No entry" in bucket heads and chain links; real slot ids start at 1.
const NIL: u32 = 0;

/// Smallest table, as Redis's DICT_HT_INITIAL_SIZE.
const INITIAL_BUCKETS: usize = 4;
/// Bucket indices come from a 32-bit stored hash; 2^31 keeps masks in range.
const MAX_BUCKETS: usize = 1 << 31;
/// Shrink when fewer than 1/8 of the buckets' worth of entries remain (the
/// Redis 7.4 rule); growth happens at load factor 1, so a table that just
/// resized is 0.5..1 full and needs to double or lose 7/8 to resize again.
const SHRINK_FILL_DIV: usize = 8;
/// As Redis's dictRehash: each step may skip this many empty buckets per
/// bucket it is asked to move, so one step is bounded even in sparse tables.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// Random bucket draws before `random_slot` falls back to a linear probe.
const RANDOM_BUCKET_TRIES: usize = 64;
/// Random slot draws before `random_entry` gives up on a uniform pick.
/// Between compactions a slab is rarely less than 1/16 occupied, so this
/// many misses in a row are practically impossible.
const FAIR_SLOT_TRIES: usize = 256;

// ---------------------------------------------------------------- hashing --

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// 64x64->128 multiply folded to 64 bits: the wyhash mixing primitive.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Little-endian load of up to 8 bytes, zero padded.
#[inline]
fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// wyhash-style keyed hash over 16-byte blocks. Both multiplicands of every
/// round carry secret material (`k1` and the running state), so an attacker
/// who does not know the seed cannot force a round to zero and collide keys
/// independently of the seed (HashDoS through crafted keys).
pub fn hash_bytes(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let len = data.len() as u64;
    let mut h = k0 ^ len.wrapping_mul(P0);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let (a, b) = block.split_at(8);
        h = mum(le64(a) ^ k1, le64(b) ^ h);
    }
    let rest = blocks.remainder();
    let (a, b) = rest.split_at(rest.len().min(8));
    h = mum(le64(a) ^ k1 ^ P1, le64(b) ^ h ^ P2);
    mum(h ^ P0, len ^ k1 ^ P2)
}

pub use crate::util::rand::{bounded, rand_next};

/// A fresh seed per dict. std's `RandomState` carries OS randomness; time,
/// a stack address (ASLR) and a process-wide counter make seeds differ even
/// if one source is weak, and the counter keeps two dicts created in the same
/// nanosecond apart.
pub fn random_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let local = 0u8;
    let addr = std::ptr::addr_of!(local).addr() as u64;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let os = RandomState::new().hash_one(n);
    let mut s = os ^ nanos.rotate_left(17) ^ addr.rotate_left(41) ^ n;
    rand_next(&mut s)
}

// ------------------------------------------------------------------- slab --

/// One entry. `kv` is `None` for a free slot (the `Bytes` vtable pointer is
/// the niche, so the `Option` costs nothing); `next` is the chain link, or
/// the free-list link while the slot is free. `access` is the entry's
/// access stamp (see `access.rs`): set when the entry is created, renewed
/// by [`Dict::get_mut_touched`], kept when a value is replaced or moved.
struct Slot<V, S> {
    kv: Option<(Bytes, V)>,
    hash: u32,
    next: u32,
    access: S,
}

/// Chunk sizes grow 8, 16, ... 4096 slots, then stay at 4096: small dicts
/// (16 dbs x 2 dicts per shard, mostly empty) stay small, and a 4096-slot
/// chunk is small enough to free in one step without a noticeable pause.
const FIRST_CHUNK_SHIFT: u32 = 3;
const GROWING_CHUNKS: u32 = 10;
const BIG_CHUNK_SHIFT: u32 = FIRST_CHUNK_SHIFT + GROWING_CHUNKS - 1;
const GROWING_CAPACITY: u64 = (1 << FIRST_CHUNK_SHIFT) * ((1 << GROWING_CHUNKS) - 1);
/// Slot ids are 1-based `u32`s, so at most `u32::MAX` slots.
const SLOT_LIMIT: u64 = u32::MAX as u64;

/// Chunk number and offset of the zero-based slot position `p`.
fn locate(p: u64) -> (usize, usize) {
    if p < GROWING_CAPACITY {
        let j = p + (1 << FIRST_CHUNK_SHIFT);
        let top = 63 - j.leading_zeros();
        (
            (top - FIRST_CHUNK_SHIFT) as usize,
            (j - (1u64 << top)) as usize,
        )
    } else {
        let r = p - GROWING_CAPACITY;
        (
            GROWING_CHUNKS as usize + (r >> BIG_CHUNK_SHIFT) as usize,
            (r & ((1 << BIG_CHUNK_SHIFT) - 1)) as usize,
        )
    }
}

fn chunk_capacity(c: usize) -> usize {
    if c < GROWING_CHUNKS as usize {
        (1 << FIRST_CHUNK_SHIFT) << c
    } else {
        1 << BIG_CHUNK_SHIFT
    }
}

struct Slab<V, S> {
    chunks: Vec<Vec<Slot<V, S>>>,
    /// Slots ever handed out; the next fresh id is `fresh + 1`.
    fresh: u64,
    /// Head of the free list (ids of removed entries, reused LIFO).
    free: u32,
}

impl<V, S: Stamp> Slab<V, S> {
    const fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            fresh: 0,
            free: NIL,
        }
    }

    /// `None` for `NIL`, so chain walks are `while let Some(s) = slab.slot(i)`.
    #[inline]
    fn slot(&self, id: u32) -> Option<&Slot<V, S>> {
        let p = u64::from(id.checked_sub(1)?);
        let (c, o) = locate(p);
        self.chunks.get(c)?.get(o)
    }

    #[inline]
    fn slot_mut(&mut self, id: u32) -> Option<&mut Slot<V, S>> {
        let p = u64::from(id.checked_sub(1)?);
        let (c, o) = locate(p);
        self.chunks.get_mut(c)?.get_mut(o)
    }

    fn alloc(&mut self, hash: u32, key: Bytes, val: V, next: u32, access: S) -> u32 {
        let new = Slot {
            kv: Some((key, val)),
            hash,
            next,
            access,
        };
        let id = self.free;
        if let Some(s) = self.slot_mut(id) {
            let next_free = s.next;
            *s = new;
            self.free = next_free;
            return id;
        }
        if self.fresh >= SLOT_LIMIT {
            // Out of slot ids: the same situation as an exhausted allocator.
            std::alloc::handle_alloc_error(Layout::new::<Slot<V, S>>());
        }
        let (c, _) = locate(self.fresh);
        if c >= self.chunks.len() {
            // Reserve the whole chunk now so pushes below never reallocate
            // (which would copy entries and break the no-O(n)-pause promise).
            self.chunks.push(Vec::with_capacity(chunk_capacity(c)));
        }
        if let Some(chunk) = self.chunks.get_mut(c) {
            chunk.push(new);
        }
        self.fresh += 1;
        self.fresh as u32
    }

    /// Removes the entry and puts its slot on the free list.
    fn free(&mut self, id: u32) -> Option<(Bytes, V)> {
        let head = self.free;
        let s = self.slot_mut(id)?;
        let kv = s.kv.take()?;
        s.next = head;
        self.free = id;
        Some(kv)
    }

    fn slots_capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    fn entries(&self) -> impl Iterator<Item = (&Bytes, &V)> + '_ {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|s| s.kv.as_ref().map(|(k, v)| (k, v)))
    }
}

// ------------------------------------------------------------------ table --

/// One bucket array. `used` counts the entries chained from it.
#[derive(Default)]
struct Table {
    buckets: Vec<u32>,
    used: usize,
}

impl Table {
    fn with_size(n: usize) -> Self {
        Table {
            // `vec![0; n]` allocates zeroed memory (calloc): no O(n) fill.
            buckets: vec![NIL; n],
            used: 0,
        }
    }

    #[inline]
    fn size(&self) -> usize {
        self.buckets.len()
    }

    #[inline]
    fn index(&self, hash: u32) -> usize {
        hash as usize & self.buckets.len().wrapping_sub(1)
    }

    #[inline]
    fn head(&self, idx: usize) -> u32 {
        self.buckets.get(idx).copied().unwrap_or(NIL)
    }

    #[inline]
    fn set_head(&mut self, idx: usize, id: u32) {
        if let Some(b) = self.buckets.get_mut(idx) {
            *b = id;
        }
    }
}

/// Where `find` met a key: table, bucket, slot id and chain predecessor.
#[derive(Clone, Copy)]
struct Found {
    t: usize,
    bucket: usize,
    id: u32,
    prev: u32,
}

// ------------------------------------------------------------------- dict --

/// Hash table keyed by `Bytes` with Redis-style incremental rehashing.
///
/// While resizing, `tables[0]` is drained into `tables[1]` a bucket at a time
/// by every mutating call (and by [`Dict::rehash_steps`], which the server's
/// cron should call so read-mostly shards finish too). Lookups check both.
///
/// A shrink also compacts: the entries of `tables[0]` live in `old` and are
/// moved into a fresh `slab` as their buckets migrate, so the memory of
/// removed entries is returned. The emptied chunks then wait in `graveyard`
/// and are freed one per mutating call, keeping every pause short.
pub struct Dict<V, S = ()> {
    k0: u64,
    k1: u64,
    tables: [Table; 2],
    rehashing: bool,
    /// Next bucket of `tables[0]` to migrate; all below it are empty.
    rehash_idx: usize,
    /// Holds the entries of `tables[1]`, and of `tables[0]` unless `old` is set.
    slab: Slab<V, S>,
    /// During a compacting (shrink) resize: the entries of `tables[0]`.
    old: Option<Slab<V, S>>,
    graveyard: Vec<Vec<Slot<V, S>>>,
}

impl<V, S: Stamp> Default for Dict<V, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, S: Stamp> fmt::Debug for Dict<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dict")
            .field("len", &self.len())
            .field("buckets", &self.buckets())
            .field("rehashing", &self.rehashing)
            .finish()
    }
}

impl<V, S: Stamp> Dict<V, S> {
    /// Empty dict with a random hash seed. Allocates nothing until used.
    pub fn new() -> Self {
        Self::with_seed(random_seed())
    }

    /// Empty dict with a fixed seed: deterministic layout for tests. Never
    /// use a fixed seed for client-controlled keys (HashDoS).
    pub fn with_seed(seed: u64) -> Self {
        let mut s = seed;
        let k0 = rand_next(&mut s);
        let k1 = rand_next(&mut s) | 1;
        Dict {
            k0,
            k1,
            tables: [Table::default(), Table::default()],
            rehashing: false,
            rehash_idx: 0,
            slab: Slab::new(),
            old: None,
            graveyard: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tables[0].used + self.tables[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total buckets over both tables (Redis's dictSlots).
    pub fn buckets(&self) -> usize {
        self.tables[0].size() + self.tables[1].size()
    }

    pub fn is_rehashing(&self) -> bool {
        self.rehashing
    }

    /// What one entry costs the table: its slot and a bucket.
    pub fn bytes_per_entry(&self) -> usize {
        mem::size_of::<Slot<V, S>>() + mem::size_of::<u32>()
    }

    /// Heap bytes held by the table structure itself (bucket arrays, slots,
    /// chunk headers), excluding the `Bytes` payloads and anything `V` owns.
    pub fn allocated_bytes(&self) -> usize {
        let slot = mem::size_of::<Slot<V, S>>();
        let buckets = self
            .tables
            .iter()
            .map(|t| t.buckets.capacity())
            .sum::<usize>();
        let slabs = self.slab.slots_capacity()
            + self.old.as_ref().map_or(0, Slab::slots_capacity)
            + self.graveyard.iter().map(Vec::capacity).sum::<usize>();
        let headers = (self.slab.chunks.capacity()
            + self.old.as_ref().map_or(0, |o| o.chunks.capacity())
            + self.graveyard.capacity())
            * mem::size_of::<Vec<Slot<V, S>>>();
        buckets * mem::size_of::<u32>() + slabs * slot + headers
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u32 {
        let h = hash_bytes(self.k0, self.k1, key);
        (h ^ (h >> 32)) as u32
    }

    /// The 32-bit hash this dict stores for `key` (what [`Dict::scan_hashed`]
    /// reports and [`scan_order`] ranks).
    #[inline]
    pub fn hash_of(&self, key: &[u8]) -> u32 {
        self.hash(key)
    }

    #[inline]
    fn slab_of(&self, t: usize) -> &Slab<V, S> {
        match (&self.old, t) {
            (Some(old), 0) => old,
            _ => &self.slab,
        }
    }

    #[inline]
    fn slab_of_mut(&mut self, t: usize) -> &mut Slab<V, S> {
        match (&mut self.old, t) {
            (Some(old), 0) => old,
            _ => &mut self.slab,
        }
    }

    #[inline]
    fn tables_in_use(&self) -> usize {
        if self.rehashing {
            2
        } else {
            1
        }
    }

    fn find(&self, hash: u32, key: &[u8]) -> Option<Found> {
        for t in 0..self.tables_in_use() {
            let table = &self.tables[t];
            if table.used == 0 {
                continue;
            }
            let slab = self.slab_of(t);
            let bucket = table.index(hash);
            let mut prev = NIL;
            let mut id = table.head(bucket);
            while let Some(s) = slab.slot(id) {
                if s.hash == hash && matches!(&s.kv, Some((k, _)) if k.as_ref() == key) {
                    return Some(Found {
                        t,
                        bucket,
                        id,
                        prev,
                    });
                }
                prev = id;
                id = s.next;
            }
        }
        None
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The stored key too, so callers can keep a cheap clone of it.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Bytes, &V)> {
        if self.is_empty() {
            return None;
        }
        let f = self.find(self.hash(key), key)?;
        self.slab_of(f.t)
            .slot(f.id)?
            .kv
            .as_ref()
            .map(|(k, v)| (k, v))
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get_key_value(key).is_some()
    }

    /// Like Redis's dictFind, this also advances a pending resize.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.housekeeping();
        let f = self.find(self.hash(key), key)?;
        self.slab_of_mut(f.t)
            .slot_mut(f.id)?
            .kv
            .as_mut()
            .map(|(_, v)| v)
    }

    /// Inserts or replaces. On replace the stored key is kept (so other
    /// holders of its `Bytes` keep sharing one allocation) and the old value
    /// is returned.
    pub fn insert(&mut self, key: Bytes, val: V) -> Option<V> {
        self.housekeeping();
        let hash = self.hash(&key);
        if let Some(f) = self.find(hash, &key) {
            let old = self
                .slab_of_mut(f.t)
                .slot_mut(f.id)
                .and_then(|s| s.kv.as_mut())
                .map(|(_, v)| mem::replace(v, val));
            return old;
        }
        self.grow_if_needed();
        // New entries go to the table being filled, so `tables[0]` only ever
        // drains during a resize.
        let t = if self.rehashing { 1 } else { 0 };
        let bucket = self.tables[t].index(hash);
        let head = self.tables[t].head(bucket);
        let id = self.slab_of_mut(t).alloc(hash, key, val, head, S::fresh());
        self.tables[t].set_head(bucket, id);
        self.tables[t].used += 1;
        None
    }

    /// Makes the table big enough for `n` entries in all, so a load that
    /// knows its size up front (an RDB's RESIZEDB hint) does not grow and
    /// rehash its way there. An empty table is sized at once; a filled one
    /// starts an ordinary incremental resize. Never shrinks.
    pub fn reserve(&mut self, n: usize) {
        if self.rehashing || n == 0 {
            return;
        }
        let target = n
            .checked_next_power_of_two()
            .unwrap_or(MAX_BUCKETS)
            .clamp(INITIAL_BUCKETS, MAX_BUCKETS);
        if target <= self.tables[0].size() {
            return;
        }
        if self.tables[0].used == 0 {
            self.tables[0] = Table::with_size(target);
        } else {
            self.start_resize(target, false);
        }
    }

    /// Removes the key, returning the stored key and value.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Bytes, V)> {
        if self.is_empty() {
            return None;
        }
        self.housekeeping();
        let f = self.find(self.hash(key), key)?;
        let slab = self.slab_of_mut(f.t);
        let next = slab.slot(f.id).map_or(NIL, |s| s.next);
        if let Some(p) = slab.slot_mut(f.prev) {
            p.next = next;
        } else {
            self.tables[f.t].set_head(f.bucket, next);
        }
        let kv = match (&mut self.old, f.t) {
            // The compaction source never allocates again: no free list.
            (Some(old), 0) => old.slot_mut(f.id).and_then(|s| s.kv.take()),
            _ => self.slab.free(f.id),
        };
        let table = &mut self.tables[f.t];
        table.used = table.used.saturating_sub(1);
        self.shrink_if_needed();
        kv
    }

    /// Drops everything (O(n): keys and values are freed here). Keeps the
    /// seed. For a huge dict the caller may instead `mem::take` it and drop
    /// it elsewhere (lazy free).
    pub fn clear(&mut self) {
        let (k0, k1) = (self.k0, self.k1);
        *self = Self::with_seed(0);
        self.k0 = k0;
        self.k1 = k1;
    }

    /// Removes and yields every entry; the dict is empty afterwards.
    pub fn drain(&mut self) -> impl Iterator<Item = (Bytes, V)> {
        self.drain_hashed().map(|(_, k, v)| (k, v))
    }

    /// [`Dict::drain`] with each entry's stored hash. The iterator owns the
    /// entries (it borrows nothing from the dict, which keeps its seed) and
    /// frees each slab chunk as soon as it has walked past it, so consuming
    /// it a little at a time returns memory a little at a time.
    pub fn drain_hashed(&mut self) -> impl Iterator<Item = (u32, Bytes, V)> {
        let slab = mem::replace(&mut self.slab, Slab::new());
        let old = self.old.take();
        self.tables = [Table::default(), Table::default()];
        self.rehashing = false;
        self.rehash_idx = 0;
        old.into_iter()
            .chain(std::iter::once(slab))
            .flat_map(|s| s.chunks)
            .flatten()
            .filter_map(|s| s.kv.map(|(k, v)| (s.hash, k, v)))
    }

    /// All entries in unspecified order. Cost is proportional to the slab
    /// size (free slots are skipped), not to the bucket count.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> + '_ {
        self.old
            .iter()
            .chain(std::iter::once(&self.slab))
            .flat_map(Slab::entries)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.iter().map(|(k, _)| k)
    }

    // ---------------------------------------------------------- resizing --

    /// Per-operation background work: one rehash step and one freed chunk.
    #[inline]
    fn housekeeping(&mut self) {
        if self.rehashing {
            self.rehash_inner(1);
        }
        // One chunk (<= 4096 slots) per call bounds the pause of freeing.
        drop(self.graveyard.pop());
    }

    /// Moves up to `n` non-empty buckets of a pending resize (visiting at
    /// most `10 * n` empty ones), frees up to `n` compacted-away chunks and
    /// starts a shrink if the table became sparse. Returns whether a resize
    /// is still in progress. Meant for the shard's cron, like Redis's
    /// incrementallyRehash, so idle or read-only shards converge too.
    pub fn rehash_steps(&mut self, n: usize) -> bool {
        if self.rehashing {
            self.rehash_inner(n);
        }
        let keep = self.graveyard.len().saturating_sub(n);
        self.graveyard.truncate(keep);
        self.shrink_if_needed();
        self.rehashing
    }

    fn rehash_inner(&mut self, n: usize) {
        let mut empty_budget = n.saturating_mul(EMPTY_VISITS_PER_STEP);
        let mut moved = 0;
        while moved < n && self.tables[0].used > 0 {
            let idx = self.rehash_idx;
            if idx >= self.tables[0].size() {
                break; // unreachable while `used` is right; never spin
            }
            let head = self.tables[0].head(idx);
            self.rehash_idx += 1;
            if head == NIL {
                empty_budget = empty_budget.saturating_sub(1);
                if empty_budget == 0 {
                    break;
                }
                continue;
            }
            self.tables[0].set_head(idx, NIL);
            self.move_chain(head);
            moved += 1;
        }
        if self.tables[0].used == 0 {
            self.finish_rehash();
        }
    }

    /// Relinks (grow) or moves into the new slab (shrink) one whole chain.
    fn move_chain(&mut self, mut id: u32) {
        let [t0, t1] = &mut self.tables;
        match self.old.as_mut() {
            Some(old) => {
                while let Some(s) = old.slot_mut(id) {
                    let (hash, next, access) = (s.hash, s.next, s.access);
                    if let Some((k, v)) = s.kv.take() {
                        let b = t1.index(hash);
                        let new_id = self.slab.alloc(hash, k, v, t1.head(b), access);
                        t1.set_head(b, new_id);
                        t0.used = t0.used.saturating_sub(1);
                        t1.used += 1;
                    }
                    id = next;
                }
            }
            None => {
                while let Some(s) = self.slab.slot_mut(id) {
                    let next = s.next;
                    let b = t1.index(s.hash);
                    s.next = t1.head(b);
                    t1.set_head(b, id);
                    t0.used = t0.used.saturating_sub(1);
                    t1.used += 1;
                    id = next;
                }
            }
        }
    }

    fn finish_rehash(&mut self) {
        self.tables[0] = mem::take(&mut self.tables[1]);
        self.rehashing = false;
        self.rehash_idx = 0;
        if let Some(old) = self.old.take() {
            // Free slots still need their drop glue run; do it later, a
            // chunk per operation, instead of one long pause now.
            self.graveyard.extend(old.chunks);
        }
    }

    fn start_resize(&mut self, size: usize, compact: bool) {
        let size = size.clamp(INITIAL_BUCKETS, MAX_BUCKETS);
        if self.rehashing || size == self.tables[0].size() {
            return;
        }
        self.tables[1] = Table::with_size(size);
        self.rehashing = true;
        self.rehash_idx = 0;
        if compact {
            self.old = Some(mem::replace(&mut self.slab, Slab::new()));
        }
        if self.tables[0].used == 0 {
            self.finish_rehash();
        }
    }

    fn grow_if_needed(&mut self) {
        if self.rehashing {
            return;
        }
        let size = self.tables[0].size();
        if size == 0 {
            self.tables[0] = Table::with_size(INITIAL_BUCKETS);
        } else if self.tables[0].used >= size && size < MAX_BUCKETS {
            let target = (self.tables[0].used + 1)
                .checked_next_power_of_two()
                .unwrap_or(MAX_BUCKETS);
            self.start_resize(target, false);
        }
    }

    fn shrink_if_needed(&mut self) {
        if self.rehashing {
            return;
        }
        let size = self.tables[0].size();
        let used = self.tables[0].used;
        if size > INITIAL_BUCKETS && used.saturating_mul(SHRINK_FILL_DIV) < size {
            let target = (used + 1)
                .checked_next_power_of_two()
                .unwrap_or(MAX_BUCKETS);
            self.start_resize(target, true);
        }
    }

    // -------------------------------------------------------------- scan --

    fn emit_bucket(&self, t: usize, idx: usize, f: &mut impl FnMut(u32, &Bytes, &V, S)) {
        let slab = self.slab_of(t);
        let mut id = self.tables[t].head(idx);
        while let Some(s) = slab.slot(id) {
            if let Some((k, v)) = &s.kv {
                f(s.hash, k, v, s.access);
            }
            id = s.next;
        }
    }

    /// Redis SCAN over buckets. Start with cursor 0, feed back the returned
    /// cursor, stop when it is 0 again. Every entry present for the whole
    /// scan is reported at least once (some may repeat) however the table
    /// grows, shrinks or rehashes between calls, because the cursor counts
    /// with its bits reversed: the buckets already visited at one size are
    /// exactly the ones whose expansions/contractions are visited at any
    /// other size. Each call visits one bucket of the smaller table plus,
    /// while rehashing, all its expansions in the larger one.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Bytes, &V)) -> u64 {
        self.scan_hashed(cursor, |_, k, v| f(k, v))
    }

    /// [`Dict::scan`] that also passes each entry's stored hash.
    ///
    /// Exactly-once use: the cursor order is a total order on hashes,
    /// [`scan_order`]. A call with `cursor` visits every entry whose order
    /// lies in `[cursor_order(cursor), cursor_order(returned))` (the end is
    /// 2^32 once the returned cursor is 0), in whichever table it sits, plus
    /// possibly entries ranked below `cursor_order(cursor)`: the bucket of a
    /// table that shrank since the previous call also holds some already
    /// passed. A caller that skips entries ranked below the cursor it passed
    /// in therefore sees every entry present for the whole scan exactly
    /// once, across any growth, shrink or rehash between calls.
    pub fn scan_hashed(&self, cursor: u64, mut f: impl FnMut(u32, &Bytes, &V)) -> u64 {
        self.scan_stamped(cursor, |h, k, v, _| f(h, k, v))
    }

    /// [`Dict::scan_hashed`] that also reports each entry's stamp.
    pub fn scan_stamped(&self, cursor: u64, mut f: impl FnMut(u32, &Bytes, &V, S)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        if !self.rehashing {
            let m0 = self.tables[0].size() as u64 - 1;
            self.emit_bucket(0, (v & m0) as usize, &mut f);
            v |= !m0;
            v = rev_increment(v);
        } else {
            let (small, large) = if self.tables[0].size() <= self.tables[1].size() {
                (0, 1)
            } else {
                (1, 0)
            };
            let m0 = self.tables[small].size() as u64 - 1;
            let m1 = self.tables[large].size() as u64 - 1;
            self.emit_bucket(small, (v & m0) as usize, &mut f);
            // The larger table's buckets whose low bits equal this small
            // bucket: step through the bits of m1 not in m0 (reversed).
            loop {
                self.emit_bucket(large, (v & m1) as usize, &mut f);
                v |= !m1;
                v = rev_increment(v);
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// Issues cache prefetches for the scan calls that will follow the
    /// one at `cursor`, so a walk over the whole dict in cursor order
    /// (the snapshot's) waits for memory once per bucket instead of three
    /// times in a row (bucket head, slot, then key and value bytes; each a
    /// cache miss in a big table, because consecutive cursors are far apart
    /// in memory). Call it before each `scan*` call with the same cursor;
    /// `body` names the value memory worth fetching. Only a hint: a cursor
    /// that jumped or a table that resized just restarts the pipeline, and
    /// nothing is done while a rehash runs.
    pub fn prefetch_scan(&self, pf: &mut ScanPrefetch, cursor: u64, body: impl Fn(&V) -> &[u8]) {
        if self.rehashing || self.is_empty() {
            pf.mask = 0;
            return;
        }
        let mask = self.tables[0].size() as u64 - 1;
        let next = |v: u64| rev_increment(v | !mask);
        if pf.mask != mask || pf.at != cursor {
            *pf = ScanPrefetch {
                at: cursor,
                mask,
                heads: cursor,
                slots: cursor,
                data: cursor,
            };
            for _ in 0..ScanPrefetch::HEADS_AHEAD {
                self.prefetch_head(0, (pf.heads & mask) as usize);
                pf.heads = next(pf.heads);
            }
            for _ in 0..ScanPrefetch::SLOTS_AHEAD {
                self.prefetch_first_slot(0, (pf.slots & mask) as usize);
                pf.slots = next(pf.slots);
            }
            for _ in 0..ScanPrefetch::DATA_AHEAD {
                self.prefetch_first_entry(0, (pf.data & mask) as usize, &body);
                pf.data = next(pf.data);
            }
        }
        self.prefetch_head(0, (pf.heads & mask) as usize);
        self.prefetch_first_slot(0, (pf.slots & mask) as usize);
        self.prefetch_first_entry(0, (pf.data & mask) as usize, &body);
        pf.heads = next(pf.heads);
        pf.slots = next(pf.slots);
        pf.data = next(pf.data);
        pf.at = next(cursor);
    }

    /// First stage of a prefetched lookup of a key with stored hash `hash`
    /// (see [`Dict::hash_of`]): its bucket heads. Used by batch inserts
    /// (a load's keys), which otherwise wait for one cache miss after the
    /// other; the second stage is [`Dict::prefetch_chain`], a few keys
    /// later.
    #[inline]
    pub fn prefetch_bucket(&self, hash: u32) {
        for t in 0..self.tables_in_use() {
            self.prefetch_head(t, self.tables[t].index(hash));
        }
    }

    /// Second stage: the first entry of each chain the key may be in.
    #[inline]
    pub fn prefetch_chain(&self, hash: u32) {
        for t in 0..self.tables_in_use() {
            self.prefetch_first_slot(t, self.tables[t].index(hash));
        }
    }

    /// Third stage (once the chain's first entry has landed), for the
    /// chain entry `depth` (0 or 1) of the key's chain: if that entry has
    /// the key's stored hash, its key bytes and, through `body`, its
    /// value's; otherwise the next entry of the chain (for the same call
    /// with `depth` + 1, a little later). A chain's second entry is common
    /// at load factors near 1.
    #[inline]
    pub fn prefetch_entry(&self, hash: u32, depth: usize, body: impl Fn(&V) -> &[u8]) {
        for t in 0..self.tables_in_use() {
            let table = &self.tables[t];
            let slab = self.slab_of(t);
            let mut slot = slab.slot(table.head(table.index(hash)));
            for _ in 0..depth {
                match slot {
                    Some(s) if s.hash != hash => slot = slab.slot(s.next),
                    _ => break,
                }
            }
            let Some(s) = slot else {
                continue;
            };
            match &s.kv {
                Some((k, v)) if s.hash == hash => prefetch_key_value(k, v, &body),
                _ => {
                    if let Some(next) = slab.slot(s.next) {
                        crate::util::prefetch::read_value(next);
                    }
                }
            }
        }
    }

    /// Bucket `idx`'s head in table `t`.
    #[inline]
    fn prefetch_head(&self, t: usize, idx: usize) {
        if let Some(h) = self.tables[t].buckets.get(idx) {
            crate::util::prefetch::read(h);
        }
    }

    /// The first entry chained from bucket `idx` of table `t` (its head
    /// must have landed).
    #[inline]
    fn prefetch_first_slot(&self, t: usize, idx: usize) {
        if let Some(s) = self.slab_of(t).slot(self.tables[t].head(idx)) {
            crate::util::prefetch::read_value(s);
        }
    }

    /// The key and value bytes of that first entry (it must have landed).
    #[inline]
    fn prefetch_first_entry(&self, t: usize, idx: usize, body: &impl Fn(&V) -> &[u8]) {
        let slot = self.slab_of(t).slot(self.tables[t].head(idx));
        if let Some(Some((k, v))) = slot.map(|s| &s.kv) {
            prefetch_key_value(k, v, body);
        }
    }

    // ------------------------------------------------------------ random --

    /// A random entry, every entry equally likely (what Redis's
    /// dictGetFairRandomKey is for: SPOP, SRANDMEMBER, HRANDFIELD,
    /// ZRANDMEMBER and RANDOMKEY must not favour some members). `rng` is
    /// any caller-owned state for [`rand_next`].
    pub fn random_entry(&self, rng: &mut u64) -> Option<(&Bytes, &V)> {
        self.fair_slot(rng)
            .and_then(|s| s.kv.as_ref().map(|(k, v)| (k, v)))
    }

    /// A uniformly drawn live slot: entries live in slabs, not in buckets,
    /// so drawing slot positions until one holds an entry picks each
    /// entry with the same probability, whatever the chain lengths (a
    /// bucket-then-chain pick favours entries alone in their bucket). Free
    /// slots are at most a small multiple of the live ones between
    /// compactions, so few draws are needed; should they all miss (a
    /// compaction running late), the bucket pick answers instead.
    fn fair_slot(&self, rng: &mut u64) -> Option<&Slot<V, S>> {
        if self.is_empty() {
            return None;
        }
        let n_new = self.slab.fresh;
        let old = self.old.as_ref();
        let total = n_new + old.map_or(0, |o| o.fresh);
        for _ in 0..FAIR_SLOT_TRIES {
            let r = bounded(rand_next(rng), total as usize) as u64;
            let (slab, p) = match old {
                Some(o) if r >= n_new => (o, r - n_new),
                _ => (&self.slab, r),
            };
            // Slot ids are 1-based and below 2^32 (see SLOT_LIMIT).
            if let Some(s) = slab.slot(p as u32 + 1) {
                if s.kv.is_some() {
                    return Some(s);
                }
            }
        }
        self.random_slot(rng)
    }

    /// A random non-empty bucket, then a random entry of its chain
    /// (Redis's dictGetRandomKey): entries sharing a bucket are less likely
    /// than lone ones, but the cost is bounded whatever the slabs hold.
    fn random_slot(&self, rng: &mut u64) -> Option<&Slot<V, S>> {
        if self.is_empty() {
            return None;
        }
        // Buckets below rehash_idx in tables[0] are known to be empty.
        let skip = if self.rehashing {
            self.rehash_idx.min(self.tables[0].size())
        } else {
            0
        };
        let n0 = self.tables[0].size() - skip;
        let n1 = if self.rehashing {
            self.tables[1].size()
        } else {
            0
        };
        let total = n0 + n1;
        if total == 0 {
            return None;
        }
        let position = |r: usize| if r < n0 { (0, skip + r) } else { (1, r - n0) };
        // Tables are kept at least 1/8 full, so a few draws normally do; the
        // linear probe afterwards guarantees termination regardless.
        for _ in 0..RANDOM_BUCKET_TRIES {
            let (t, b) = position(bounded(rand_next(rng), total));
            let head = self.tables[t].head(b);
            if head != NIL {
                return self.random_in_chain(t, head, rng);
            }
        }
        let start = bounded(rand_next(rng), total);
        for k in 0..total {
            let (t, b) = position((start + k) % total);
            let head = self.tables[t].head(b);
            if head != NIL {
                return self.random_in_chain(t, head, rng);
            }
        }
        None
    }

    fn random_in_chain(&self, t: usize, head: u32, rng: &mut u64) -> Option<&Slot<V, S>> {
        let slab = self.slab_of(t);
        let mut len = 0usize;
        let mut id = head;
        while let Some(s) = slab.slot(id) {
            len += 1;
            id = s.next;
        }
        let mut pick = bounded(rand_next(rng), len);
        let mut id = head;
        while let Some(s) = slab.slot(id) {
            if pick == 0 {
                return Some(s);
            }
            pick -= 1;
            id = s.next;
        }
        None
    }
}

/// Per-entry extra data: `()` for most dicts (it takes no space), `u32` for
/// a database's main table (the access stamp, see `access.rs`).
pub trait Stamp: Copy {
    /// The stamp of an entry inserted now.
    fn fresh() -> Self;
}

impl Stamp for () {
    fn fresh() {}
}

impl Stamp for u32 {
    #[inline]
    fn fresh() -> u32 {
        super::access::fresh()
    }
}

/// The access stamps of a database's main table.
impl<V> Dict<V, u32> {
    /// [`Dict::get_mut`] that also records an access to the entry (its
    /// stamp, see `access.rs`): what a command's lookup does.
    pub fn get_mut_touched(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.housekeeping();
        let f = self.find(self.hash(key), key)?;
        let slot = self.slab_of_mut(f.t).slot_mut(f.id)?;
        super::access::touch(&mut slot.access);
        slot.kv.as_mut().map(|(_, v)| v)
    }

    /// The entry's access stamp (see `access.rs`), without touching it.
    pub fn access_of(&self, key: &[u8]) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let f = self.find(self.hash(key), key)?;
        self.slab_of(f.t).slot(f.id).map(|s| s.access)
    }

    /// Sets the entry's access stamp (a load restoring it); false if absent.
    pub fn set_access(&mut self, key: &[u8], access: u32) -> bool {
        if self.is_empty() {
            return false;
        }
        let Some(f) = self.find(self.hash(key), key) else {
            return false;
        };
        match self.slab_of_mut(f.t).slot_mut(f.id) {
            Some(s) => {
                s.access = access;
                true
            }
            None => false,
        }
    }

    /// [`Dict::random_entry`] with the entry's access stamp (eviction
    /// sampling, where a bucket-then-chain pick is fair enough, as Redis's
    /// dictGetSomeKeys is).
    pub fn random_entry_with_access(&self, rng: &mut u64) -> Option<(&Bytes, &V, u32)> {
        self.random_slot(rng)
            .and_then(|s| s.kv.as_ref().map(|(k, v)| (k, v, s.access)))
    }
}

/// Prefetches an entry's key bytes and, through `body`, its value's.
#[inline]
fn prefetch_key_value<V>(key: &Bytes, value: &V, body: &impl Fn(&V) -> &[u8]) {
    crate::util::prefetch::read(key.as_ptr());
    crate::util::prefetch::read_bytes(body(value));
}

/// Where [`Dict::prefetch_scan`]'s pipeline stands: three cursors ahead of
/// the walk, each a stage of the memory a scan step reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanPrefetch {
    /// The cursor the next call expects (anything else restarts).
    at: u64,
    /// Table mask the cursors were computed for; 0 = not started.
    mask: u64,
    heads: u64,
    slots: u64,
    data: u64,
}

impl ScanPrefetch {
    /// Steps ahead of the walk per stage: far enough that each stage's
    /// fetch has landed when the next stage (or the walk) reads it.
    const HEADS_AHEAD: usize = 24;
    const SLOTS_AHEAD: usize = 12;
    const DATA_AHEAD: usize = 6;
}

/// Increment `v` as if its bits were reversed.
#[inline]
fn rev_increment(v: u64) -> u64 {
    v.reverse_bits().wrapping_add(1).reverse_bits()
}

/// Rank of a stored hash in scan order. A bucket of a table of 2^n buckets
/// holds the hashes whose low n bits are its index, i.e. one contiguous
/// range of ranks; the cursor walks those ranges in increasing rank.
#[inline]
pub fn scan_order(hash: u32) -> u64 {
    u64::from(hash.reverse_bits())
}

/// Rank at which a scan resumes from `cursor`: every entry ranked below it
/// has been visited. Cursors never exceed 31 bits (at most 2^31 buckets), so
/// the truncation keeps all of them; cursor 0 is the start, rank 0. After
/// a scan returns 0 the end rank is 2^32, which the caller tracks itself.
#[inline]
pub fn cursor_order(cursor: u64) -> u64 {
    u64::from((cursor as u32).reverse_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn key(i: u64) -> Bytes {
        Bytes::from(format!("key:{i}"))
    }

    #[test]
    fn locate_is_dense_and_matches_chunk_capacity() {
        let mut expect = (0usize, 0usize);
        for p in 0..(GROWING_CAPACITY + 3 * (1 << BIG_CHUNK_SHIFT)) {
            let got = locate(p);
            assert_eq!(got, expect, "position {p}");
            expect.1 += 1;
            if expect.1 == chunk_capacity(expect.0) {
                expect = (expect.0 + 1, 0);
            }
        }
        // The largest id still maps to a finite chunk number.
        let (c, o) = locate(SLOT_LIMIT - 1);
        assert!(o < chunk_capacity(c));
    }

    #[test]
    fn hash_differs_by_seed_and_content() {
        let a = Dict::<()>::with_seed(1);
        let b = Dict::<()>::with_seed(2);
        assert_ne!(a.hash(b"hello"), b.hash(b"hello"));
        assert_ne!(a.hash(b"hello"), a.hash(b"hellp"));
        assert_ne!(a.hash(b""), a.hash(b"\0"));
        assert_ne!(a.hash(b"ab"), a.hash(b"ab\0"));
        assert_ne!(random_seed(), random_seed());
    }

    #[test]
    fn chains_stay_short_for_sequential_keys() {
        let mut d: Dict<_> = Dict::with_seed(7);
        for i in 0..100_000 {
            d.insert(key(i), i);
        }
        while d.rehash_steps(1000) {}
        let t = &d.tables[0];
        let mut longest = 0;
        for b in 0..t.size() {
            let mut n = 0;
            let mut id = t.head(b);
            while let Some(s) = d.slab.slot(id) {
                n += 1;
                id = s.next;
            }
            longest = longest.max(n);
        }
        assert!(longest <= 12, "longest chain {longest}");
    }

    #[test]
    fn model_check_100k_ops_with_growth_and_shrink() {
        let mut d: Dict<u64> = Dict::with_seed(42);
        let mut m: HashMap<Bytes, u64> = HashMap::new();
        let mut rng = 12345u64;
        let (mut grew, mut shrank) = (0, 0);
        let mut last_buckets = 0;
        for op in 0..100_000u64 {
            // Phases alternate between filling a large key space and
            // emptying it, so the table grows and shrinks many times.
            let phase = (op / 12_500) % 2;
            let r = rand_next(&mut rng);
            let k = key(r % 20_000);
            let action = (r >> 32) % 100;
            let insert_pct = if phase == 0 { 70 } else { 10 };
            if action < insert_pct {
                assert_eq!(d.insert(k.clone(), op), m.insert(k, op));
            } else if action < insert_pct + 25 {
                let got = d.remove(&k);
                let want = m.remove(&k);
                assert_eq!(got.as_ref().map(|(_, v)| *v), want);
                if let Some((gk, _)) = got {
                    assert_eq!(gk, k);
                }
            } else if action.is_multiple_of(2) {
                assert_eq!(d.get(&k), m.get(&k));
                assert_eq!(
                    d.get_key_value(&k).map(|(k, _)| k.clone()),
                    m.get_key_value(&k).map(|(k, _)| k.clone())
                );
            } else if let Some(v) = d.get_mut(&k) {
                *v += 1;
                *m.get_mut(&k).expect("model has key") += 1;
            } else {
                assert!(!m.contains_key(&k));
            }
            assert_eq!(d.len(), m.len());
            let b = d.buckets();
            if b > last_buckets {
                grew += 1;
            } else if b < last_buckets {
                shrank += 1;
            }
            last_buckets = b;
            if op % 5_000 == 0 {
                let all: HashMap<Bytes, u64> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
                assert_eq!(all, m);
            }
        }
        assert!(grew > 10 && shrank > 10, "grew {grew} shrank {shrank}");
        let all: HashMap<Bytes, u64> = d.drain().collect();
        assert_eq!(all, m);
        assert!(d.is_empty());
        assert_eq!(d.get(b"key:1"), None);
        d.insert(key(1), 1);
        assert_eq!(d.get(b"key:1"), Some(&1));
        d.clear();
        assert!(d.is_empty() && d.iter().next().is_none());
    }

    #[test]
    fn compaction_returns_slab_memory() {
        let mut d: Dict<_> = Dict::with_seed(3);
        for i in 0..200_000 {
            d.insert(key(i), i);
        }
        let big = d.allocated_bytes();
        for i in 0..199_000 {
            d.remove(&key(i));
        }
        while d.rehash_steps(1000) || !d.graveyard.is_empty() {}
        let small = d.allocated_bytes();
        assert!(small * 20 < big, "big {big} small {small}");
        for i in 199_000..200_000 {
            assert_eq!(d.get(&key(i)), Some(&i));
        }
    }

    /// Runs a full scan, calling `between` after every scan call. Each
    /// call is preceded by a prefetch, as the snapshot walk does: hints
    /// for a table that resized in between must not change what is seen.
    fn full_scan<V>(
        d: &mut Dict<V>,
        mut between: impl FnMut(&mut Dict<V>, usize),
    ) -> HashSet<Bytes> {
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        let mut pf = ScanPrefetch::default();
        loop {
            d.prefetch_scan(&mut pf, cursor, |_| &[]);
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.clone());
            });
            calls += 1;
            assert!(calls < 10_000_000, "scan does not terminate");
            if cursor == 0 {
                return seen;
            }
            between(d, calls);
        }
    }

    #[test]
    fn scan_plain_visits_everything() {
        let mut d: Dict<_> = Dict::with_seed(9);
        for i in 0..5_000 {
            d.insert(key(i), ());
        }
        while d.rehash_steps(100) {}
        let seen = full_scan(&mut d, |_, _| {});
        assert_eq!(seen.len(), 5_000);
        let empty: Dict<()> = Dict::new();
        assert_eq!(empty.scan(0, |_, _| {}), 0);
    }

    #[test]
    fn prefetch_pipeline_follows_a_plain_walk() {
        let mut d: Dict<Bytes> = Dict::with_seed(21);
        for i in 0..3_000 {
            d.insert(key(i), key(i));
        }
        while d.rehash_steps(100) {}
        let mut pf = ScanPrefetch::default();
        let mut cursor = 0;
        let mut restarts = 0;
        loop {
            if pf.at != cursor || pf.mask == 0 {
                restarts += 1;
            }
            d.prefetch_scan(&mut pf, cursor, |v| v.as_ref());
            cursor = d.scan(cursor, |_, _| {});
            if cursor == 0 {
                break;
            }
        }
        // Primed once, then kept in step with the cursor to the end.
        assert_eq!(restarts, 1);
        // A cursor from elsewhere (another walk) restarts it harmlessly.
        d.prefetch_scan(&mut pf, 12345, |v| v.as_ref());
        assert_eq!(pf.at, rev_increment(12345 | !pf.mask));
    }

    #[test]
    fn scan_survives_growth_between_calls() {
        let mut d: Dict<_> = Dict::with_seed(11);
        for i in 0..1_000 {
            d.insert(key(i), ());
        }
        let start_buckets = d.buckets();
        let mut next = 1_000_000u64;
        // Grow only during the first calls: growth proportional to the
        // number of calls would outrun the cursor forever.
        let seen = full_scan(&mut d, |d, call| {
            if call <= 300 {
                for _ in 0..50 {
                    d.insert(key(next), ());
                    next += 1;
                }
            }
        });
        assert!(d.buckets() >= start_buckets * 8, "table should have grown");
        for i in 0..1_000 {
            assert!(seen.contains(&key(i)), "missed {i}");
        }
    }

    #[test]
    fn scan_survives_shrink_between_calls() {
        let mut d: Dict<_> = Dict::with_seed(13);
        for i in 0..50_000 {
            d.insert(key(i), ());
        }
        // Survivors: multiples of 100. Everything else is deleted during
        // the scan, forcing compacting shrinks.
        let mut doomed: Vec<u64> = (0..50_000).filter(|i| i % 100 != 0).collect();
        let mut rng = 5u64;
        let mut shrinks = 0;
        let seen = full_scan(&mut d, |d, _| {
            let before = d.buckets();
            for _ in 0..300 {
                if doomed.is_empty() {
                    break;
                }
                let j = bounded(rand_next(&mut rng), doomed.len());
                let k = doomed.swap_remove(j);
                d.remove(&key(k));
            }
            if d.buckets() > before && d.is_rehashing() {
                shrinks += 1; // a smaller table appeared next to the old one
            }
        });
        assert!(shrinks >= 1, "no shrink happened during the scan");
        for i in (0..50_000).step_by(100) {
            assert!(seen.contains(&key(i)), "missed {i}");
        }
    }

    #[test]
    fn scan_during_rehash_and_mixed_resizes() {
        let mut d: Dict<_> = Dict::with_seed(17);
        let mut rng = 99u64;
        for round in 0..20u64 {
            let base = round * 1_000_000;
            let stable: Vec<Bytes> = (0..2_000).map(|i| key(base + i)).collect();
            for k in &stable {
                d.insert(k.clone(), ());
            }
            // Make sure a resize is pending when the scan starts.
            let mut filler = base + 500_000;
            while !d.is_rehashing() {
                d.insert(key(filler), ());
                filler += 1;
            }
            let mut rehash_seen = false;
            let mut extra: Vec<Bytes> = Vec::new();
            let seen = full_scan(&mut d, |d, _| {
                rehash_seen |= d.is_rehashing();
                // Randomly grow or shrink the table between calls.
                if rand_next(&mut rng).is_multiple_of(2) {
                    for _ in 0..40 {
                        let k = key(base + 700_000 + rand_next(&mut rng) % 1_000_000);
                        d.insert(k.clone(), ());
                        extra.push(k);
                    }
                } else {
                    for _ in 0..60 {
                        if let Some(k) = extra.pop() {
                            d.remove(&k);
                        }
                    }
                }
            });
            assert!(rehash_seen);
            for k in &stable {
                assert!(seen.contains(k), "round {round}: missed {k:?}");
            }
            d.clear();
        }
    }

    #[test]
    fn scan_with_rank_filter_is_exactly_once() {
        // Skipping entries ranked below the cursor passed in removes SCAN's
        // repeats: each stable key is seen once across grow, shrink and
        // rehash between calls.
        let mut repeats_removed = 0;
        for seed in 0..6u64 {
            let mut d: Dict<_> = Dict::with_seed(100 + seed);
            let mut rng = seed;
            let base = seed * 10_000_000;
            let stable: Vec<Bytes> = (0..300).map(|i| key(base + i)).collect();
            let stable_set: HashSet<Bytes> = stable.iter().cloned().collect();
            for k in &stable {
                d.insert(k.clone(), ());
            }
            let mut extra: Vec<Bytes> = Vec::new();
            let mut counts: HashMap<Bytes, u32> = HashMap::new();
            let mut raw = 0usize;
            let (mut cursor, mut calls) = (0u64, 0);
            loop {
                let reached = cursor_order(cursor);
                cursor = d.scan_hashed(cursor, |h, k, _| {
                    if stable_set.contains(k) {
                        raw += 1;
                    }
                    if scan_order(h) >= reached {
                        *counts.entry(k.clone()).or_default() += 1;
                    }
                });
                calls += 1;
                assert!(calls < 1_000_000);
                if cursor == 0 {
                    break;
                }
                // Cycles of growing to ~15x and deleting back down, so
                // tables shrink while the cursor is deep in a bigger one.
                let grow = if (calls / 10) % 2 == 0 { 9 } else { 1 };
                if rand_next(&mut rng) % 10 < grow {
                    for _ in 0..(rand_next(&mut rng) % 1_000) {
                        let k = key(base + 5_000_000 + rand_next(&mut rng) % 1_000_000);
                        d.insert(k.clone(), ());
                        extra.push(k);
                    }
                } else {
                    for _ in 0..(rand_next(&mut rng) % 2_000) {
                        match extra.pop() {
                            Some(k) => drop(d.remove(&k)),
                            None => break,
                        }
                    }
                }
            }
            for k in &stable {
                assert_eq!(counts.get(k), Some(&1), "seed {seed}: {k:?}");
            }
            repeats_removed += raw.saturating_sub(stable.len());
        }
        println!("repeats removed by the rank filter: {repeats_removed}");
        assert!(repeats_removed > 0, "no shrink repeated anything");
    }

    /// Pearson's chi-square of `draws` picks over `d`'s keys against the
    /// uniform distribution.
    fn chi_square(d: &Dict<u64>, draws: usize, rng: &mut u64) -> f64 {
        let mut counts: HashMap<Bytes, usize> = d.keys().map(|k| (k.clone(), 0)).collect();
        for _ in 0..draws {
            let (k, _) = d.random_entry(rng).expect("non-empty");
            *counts.get_mut(k).expect("a live key") += 1;
        }
        let expected = draws as f64 / d.len() as f64;
        counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn random_entry_is_uniform_whatever_the_chains() {
        // Seeded hashes and draws: deterministic, so the generous bounds
        // below (a chi-square this far above its degrees of freedom has
        // odds far below 1e-9 for a fair pick) cannot flake. A
        // bucket-then-chain pick fails them: lone entries come up about
        // twice as often as those sharing a bucket.
        let mut rng = 7u64;
        // Ten members churned as by SPOP + SADD (free slots reused).
        let mut d: Dict<u64> = Dict::with_seed(3);
        for i in 0..10 {
            d.insert(key(i), i);
        }
        for i in 10..2_000 {
            let (k, _) = d.random_entry(&mut rng).expect("non-empty");
            let k = k.clone();
            d.remove(&k);
            d.insert(key(i), i);
        }
        assert!(chi_square(&d, 20_000, &mut rng) < 50.0); // 9 degrees of freedom
                                                          // A thousand entries at load factor ~1: chains everywhere.
        let mut d: Dict<u64> = Dict::with_seed(4);
        for i in 0..1_000 {
            d.insert(key(i), i);
        }
        assert!(chi_square(&d, 200_000, &mut rng) < 1_300.0); // 999 dof
                                                              // Mid-shrink: entries in the old slab and the compacted one.
        for i in 0..900 {
            d.remove(&key(i));
        }
        assert!(d.is_rehashing());
        assert!(chi_square(&d, 20_000, &mut rng) < 200.0); // 99 dof
    }

    #[test]
    fn random_entry_is_present_and_covers_everything() {
        let mut d: Dict<_> = Dict::with_seed(21);
        let mut rng = 1u64;
        assert!(d.random_entry(&mut rng).is_none());
        for i in 0..2_000 {
            d.insert(key(i), i);
        }
        for i in 0..1_700 {
            d.remove(&key(i));
        }
        assert!(d.is_rehashing() || d.len() == 300);
        let live: HashSet<Bytes> = d.keys().cloned().collect();
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let (k, v) = d.random_entry(&mut rng).expect("non-empty");
            assert!(live.contains(k));
            assert_eq!(d.get(k), Some(v));
            seen.insert(k.clone());
        }
        assert_eq!(seen, live);
        // Also while a grow is in progress.
        let mut d: Dict<_> = Dict::with_seed(22);
        let mut i = 0;
        while !(d.len() > 1000 && d.is_rehashing()) {
            d.insert(key(i), i);
            i += 1;
        }
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let (k, _) = d.random_entry(&mut rng).expect("non-empty");
            seen.insert(k.clone());
        }
        assert_eq!(seen.len(), d.len());
    }

    #[test]
    fn insert_keeps_stored_key_and_replaces_value() {
        let mut d: Dict<_> = Dict::new();
        let k1 = Bytes::from_static(b"k");
        assert_eq!(d.insert(k1.clone(), 1), None);
        let k2 = Bytes::from(b"k".to_vec());
        assert_eq!(d.insert(k2, 2), Some(1));
        let (stored, v) = d.get_key_value(b"k").expect("present");
        assert_eq!(stored.as_ptr(), k1.as_ptr());
        assert_eq!(*v, 2);
        assert!(d.contains_key(b"k"));
        assert_eq!(d.remove(b"k").map(|(_, v)| v), Some(2));
        assert_eq!(d.remove(b"k"), None);
        assert!(!d.contains_key(b"k"));
    }

    #[test]
    fn reserve_sizes_once_and_loads_without_rehashing() {
        let mut d: Dict<_> = Dict::with_seed(7);
        d.reserve(1000);
        assert_eq!(d.buckets(), 1024);
        for i in 0..1000 {
            d.insert(key(i), i);
            assert!(!d.is_rehashing(), "grew at insert {i}");
        }
        assert_eq!(d.buckets(), 1024);
        // A smaller reservation never shrinks.
        d.reserve(10);
        assert_eq!(d.buckets(), 1024);
        // A bigger one on a filled table resizes incrementally, losing nothing.
        d.reserve(2000);
        assert!(d.is_rehashing());
        while d.rehash_steps(100) {}
        assert_eq!(d.buckets(), 2048);
        assert_eq!(d.len(), 1000);
        assert!((0..1000).all(|i| d.get(&key(i)) == Some(&i)));
        let mut e: Dict<u64> = Dict::with_seed(1);
        e.reserve(0);
        assert_eq!(e.buckets(), 0);
    }

    #[test]
    fn memory_per_entry() {
        use crate::keyspace::value::{StrValue, Value};
        let n = 1_000_000u64;
        let mut d: Dict<Value, u32> = Dict::with_seed(5);
        let mut e: Dict<u64> = Dict::with_seed(6);
        for i in 0..n {
            let k = key(i);
            d.insert(k.clone(), Value::Str(StrValue::from_int(i as i64)));
            e.insert(k, i);
        }
        while d.rehash_steps(1000) | e.rehash_steps(1000) {}
        let per_value = d.allocated_bytes() as f64 / n as f64;
        let per_u64 = e.allocated_bytes() as f64 / n as f64;
        println!(
            "slot<Value>={} slot<u64>={} per entry: Dict<Value> {per_value:.1} B, Dict<u64> {per_u64:.1} B",
            mem::size_of::<Slot<Value, u32>>(),
            mem::size_of::<Slot<u64, ()>>()
        );
        assert_eq!(mem::size_of::<Slot<u64, ()>>(), 48);
        assert_eq!(mem::size_of::<Slot<(), ()>>(), 40);
        assert!(per_value < 96.0 && per_u64 < 64.0);
    }
}
