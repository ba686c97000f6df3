//! `Db`: one logical database (a SELECT index) of one shard.
//!
//! Owns the key -> value dict, the key -> expire-time dict, lazy expiry
//! (master deletes, replica hides), the log of keys deleted by expiry (the
//! server turns it into DELs for replicas and the AOF) and the INFO keyspace
//! numbers. Depends on `dict` and `value` only. It must not depend on
//! `expire` (the active cycle drives `Db`, not the reverse), nor read a clock
//! or do I/O: time always comes in as `now_ms` (unix milliseconds).
//!
//! Invariant: every key in `expires` is also in `dict`, so "has a TTL"
//! never outlives the key.
//!
//! Snapshots: while one is active every path that changes or deletes a key
//! calls into `snapshot.rs` first, so the key's state at the cut is saved
//! before it is lost (see that module). Without a snapshot the only cost is
//! the `snap.is_some()` test on those paths.

use crate::keyspace::dict::{random_seed, Dict};
use crate::keyspace::snapshot::{DbSnap, SnapItem, SnapVisitor};
use crate::keyspace::value::Value;
use crate::keyspace::watch::{KeyState, WatchStamp, WatchTable};
use crate::notify::class;
use bytes::Bytes;

/// How a command will use the key it looks up. On replicas, logically
/// expired keys are hidden from reads but stay writable by the replication
/// stream (see [`Db::get`]). `Peek` is a read that does not count as an
/// access for eviction (Redis's LOOKUP_NOTOUCH: EXISTS, TYPE, OBJECT).
/// `Source` is how a command that stores elsewhere (SUNIONSTORE,
/// ZINTERSTORE...) reads its inputs: expiry as for `Write` (Redis looks
/// them up for writing), but the key is not changed, so it is neither a
/// change in waiting for WATCH and tracking nor a copy-on-write point.
/// `Silent` is a `Write` whose change Redis does not signal as a change
/// of the key (consumer-group bookkeeping, XSETID: no signalModifiedKey
/// in Redis 7.0), so WATCH and tracking never hear of it; the snapshot's
/// copy-on-write hook still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Read,
    Write,
    Peek,
    Source,
    Silent,
}

/// Bounded retries before RANDOMKEY on a replica gives up finding a live
/// key among expired ones (Redis does the same to avoid looping forever).
const RANDOM_KEY_MAX_TRIES: usize = 100;
/// See [`Db::expires_sparse`] (Redis's DICT_HT_INITIAL_SIZE and 1%).
const SMALL_TABLE: usize = 4;
const MIN_FILL_PERC: usize = 1;

#[derive(Debug)]
pub struct Db {
    dict: Dict<Value, u32>,
    expires: Dict<u64>,
    expire_allowed: bool,
    expired_log: Vec<Bytes>,
    /// Keyspace notifications this database raised (`expired` and `new`,
    /// as (class, key), in order) that the shard has not published yet;
    /// filled only while their class is enabled.
    notes: Vec<(u32, Bytes)>,
    expired_keys: u64,
    avg_ttl_ms: u64,
    /// Active-expiry scan position in `expires` (Redis's expires_cursor).
    expires_cursor: u64,
    rng: u64,
    /// The running snapshot's state for this database, until it has handed
    /// out every key of the cut.
    snap: Option<Box<DbSnap>>,
    /// Keys clients WATCH in this database (index), with their versions.
    /// Every path that changes a key touches it here; see `watch.rs`.
    /// It stays with the index, not the data, when SWAPDB swaps databases.
    watch: WatchTable,
    /// Keys tracking clients read (CLIENT TRACKING), touched with `watch`.
    pub track: super::track::TrackTable,
    /// Watched keys a `Lookup::Write` lookup handed out during the current
    /// command: touched by [`Db::settle_touches`] only if the command turns
    /// out to have changed something, as Redis signals a key only when a
    /// command really modified it. Empty unless someone watches.
    pending: Vec<Bytes>,
    /// Keys clients block on (BLPOP, BZPOPMIN...; the waiters themselves
    /// are the shard's). Like `watch`, it stays with the index on SWAPDB.
    blocked: std::collections::HashSet<Bytes>,
    /// Blocked-on keys that got a list or a sorted set since the shard
    /// last looked.
    ready: Vec<Bytes>,
}

/// Whether storing `v` may serve a client blocked on its key: lists
/// (BLPOP...) and sorted sets (BZPOPMIN...), the types Redis 7.0 signals.
fn may_wake(v: &Value) -> bool {
    matches!(v, Value::List(_) | Value::Zset(_) | Value::Stream(_))
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    /// An empty database on a master (expiry allowed).
    pub fn new() -> Self {
        Db {
            dict: Dict::new(),
            expires: Dict::new(),
            expire_allowed: true,
            expired_log: Vec::new(),
            notes: Vec::new(),
            expired_keys: 0,
            avg_ttl_ms: 0,
            expires_cursor: 0,
            rng: random_seed(),
            snap: None,
            watch: WatchTable::default(),
            track: Default::default(),
            pending: Vec::new(),
            blocked: Default::default(),
            ready: Vec::new(),
        }
    }

    /// Redis's keyIsExpired: a key is expired once `now > at`, strictly.
    fn is_expired(expires: &Dict<u64>, key: &[u8], now_ms: u64) -> bool {
        !expires.is_empty() && matches!(expires.get(key), Some(&at) if now_ms > at)
    }

    /// Whether `key` has a TTL that has passed (regardless of role).
    pub fn is_logically_expired(&self, key: &[u8], now_ms: u64) -> bool {
        Self::is_expired(&self.expires, key, now_ms)
    }

    fn delete_expired(&mut self, key: &[u8]) {
        self.before_change(key);
        self.expires.remove(key);
        if let Some((k, _)) = self.dict.remove(key) {
            if crate::notify::wants(class::EXPIRED) {
                self.notes.push((class::EXPIRED, k.clone()));
            }
            self.track.touch(&k);
            self.expired_log.push(k);
            self.expired_keys += 1;
        }
    }

    /// Looks a key up for a command, applying lazy expiry first.
    ///
    /// If the key's TTL has passed: on a master it is deleted, logged for
    /// [`Db::drain_expired`] and `None` is returned for both modes (a write
    /// to an expired key sees a fresh key). On a replica nothing is deleted:
    /// `Read` gets `None`, while `Write` still gets the value, because the
    /// only writer of a replica is its master's stream, which decides about
    /// expiry and will send the DEL itself (Redis treats master-client
    /// lookups the same way).
    ///
    /// Only a `Write` or `Silent` lookup may change the returned value:
    /// during a snapshot it saves the key's cut version first, a `Read`
    /// one does not.
    pub fn get(&mut self, key: &[u8], now_ms: u64, mode: Lookup) -> Option<&mut Value> {
        if Self::is_expired(&self.expires, key, now_ms) {
            if self.expire_allowed {
                self.delete_expired(key);
                return None;
            }
            if !matches!(mode, Lookup::Write | Lookup::Source | Lookup::Silent) {
                return None;
            }
        }
        if matches!(mode, Lookup::Write | Lookup::Silent) && self.snap.is_some() {
            // The caller may change the value in place (APPEND, INCR...).
            self.before_change(key);
        }
        if mode == Lookup::Write {
            // Likewise for WATCH: the caller may change it in place, so a
            // write lookup of an existing watched key is a change in
            // waiting, committed once the command reports one.
            if ((!self.watch.is_empty() && self.watch.version(key).is_some())
                || self.track.tracks(key))
                && self.dict.get(key).is_some()
                && !self.pending.iter().any(|k| k[..] == *key)
            {
                self.pending.push(Bytes::copy_from_slice(key));
            }
        }
        if mode == Lookup::Peek {
            return self.dict.get_mut(key);
        }
        self.dict.get_mut_touched(key)
    }

    /// Heap bytes of the two tables' structure (buckets and entries, not
    /// what keys and values own): `MEMORY STATS` overheads.
    pub fn table_bytes(&self) -> (usize, usize) {
        (self.dict.allocated_bytes(), self.expires.allocated_bytes())
    }

    /// Estimated bytes `key` costs in this database: its table entries
    /// (slot and bucket, in the TTL table too if it has one), the key, and
    /// what its value owns; `None` if it is not stored or has expired
    /// (`MEMORY USAGE`).
    pub fn memory_usage(&self, key: &[u8], now_ms: u64) -> Option<usize> {
        let value = self.get_ref(key, now_ms)?;
        let mut total = self.dict.bytes_per_entry() + key.len() + value.payload_bytes();
        if self.expires.contains_key(key) {
            total += self.expires.bytes_per_entry();
        }
        Some(total)
    }

    /// The key's access stamp (see `access.rs`), if it is stored.
    pub fn access_of(&self, key: &[u8]) -> Option<u32> {
        self.dict.access_of(key)
    }

    /// Gives a stored key an access stamp (RESTORE's IDLETIME and FREQ).
    pub fn set_access_stamp(&mut self, key: &[u8], stamp: u32) {
        self.dict.set_access(key, stamp);
    }

    /// Read-only peek that hides expired keys but never deletes them; for
    /// callers holding only `&Db`.
    pub fn get_ref(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        if Self::is_expired(&self.expires, key, now_ms) {
            return None;
        }
        self.dict.get(key)
    }

    /// Stores `v`, replacing any value; `expire_at_ms: None` removes any TTL.
    ///
    /// Like Redis's setKey, callers first do `get(key, now, Lookup::Write)`
    /// so an expired old key is deleted (and logged) rather than silently
    /// overwritten; this function does not look at the clock.
    pub fn set(&mut self, key: Bytes, v: Value, expire_at_ms: Option<u64>) {
        self.before_change(&key);
        match expire_at_ms {
            None => {
                if !self.expires.is_empty() {
                    self.expires.remove(&key);
                }
                self.store(key, v);
            }
            Some(at) => {
                let probe = key.clone();
                self.store(key, v);
                self.set_expire_unhooked(&probe, at);
            }
        }
    }

    /// Inserts or replaces a value. A new key is stored as its own copy: the
    /// caller's key is usually a slice of a network read buffer, which it
    /// would otherwise keep alive.
    /// Callers have run `before_change(key)`.
    fn store(&mut self, key: Bytes, v: Value) {
        self.watch.touch(&key);
        self.track.touch(&key);
        if !self.blocked.is_empty() {
            // A list or sorted set may serve its waiters; any value
            // replacing a stream ends its group readers' wait.
            self.mark_ready(&key);
        }
        match self.dict.get_mut(&key) {
            Some(slot) => *slot = v,
            None => {
                let owned = Bytes::copy_from_slice(&key);
                if let Some(s) = self.snap.as_deref_mut() {
                    s.note_new(&self.dict, &owned);
                }
                if crate::notify::wants(class::NEW) {
                    self.notes.push((class::NEW, owned.clone()));
                }
                self.dict.insert(owned, v);
            }
        }
    }

    /// Stores `v` keeping the key's current TTL (SET ... KEEPTTL). The same
    /// precondition as [`Db::set`] applies: without the prior write lookup
    /// an already expired TTL would be kept.
    pub fn set_keep_ttl(&mut self, key: Bytes, v: Value) {
        self.before_change(&key);
        self.store(key, v);
    }

    /// Deletes the key and its TTL, whatever the TTL says (DEL does its own
    /// write lookup first).
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.before_change(key);
        if !self.expires.is_empty() {
            self.expires.remove(key);
        }
        let removed = self.dict.remove(key).map(|(_, v)| v);
        if removed.is_some() {
            self.watch.touch(key);
            self.track.touch(key);
            // A stream's group readers learn that it is gone.
            self.mark_ready(key);
        }
        removed
    }

    /// The key's expire time (unix ms), if it has one.
    pub fn expire_at(&self, key: &[u8]) -> Option<u64> {
        self.expires.get(key).copied()
    }

    /// Sets the expire time of an existing key; false if there is no such
    /// key. A time in the past is stored as is: EXPIRE with a past time is
    /// turned into a DEL by the command layer, as in Redis.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        self.before_change(key);
        let set = self.set_expire_unhooked(key, at_ms);
        if set {
            self.watch.touch(key);
            self.track.touch(key);
        }
        set
    }

    fn set_expire_unhooked(&mut self, key: &[u8], at_ms: u64) -> bool {
        if let Some(at) = self.expires.get_mut(key) {
            *at = at_ms;
            return true;
        }
        // Share the dict's key allocation instead of storing a second copy.
        let Some((stored, _)) = self.dict.get_key_value(key) else {
            return false;
        };
        let stored = stored.clone();
        self.expires.insert(stored, at_ms);
        true
    }

    /// Removes the TTL; true if there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        if self.expires.is_empty() {
            return false;
        }
        if self.snap.is_some() && self.expires.contains_key(key) {
            self.before_change(key);
        }
        let had = self.expires.remove(key).is_some();
        if had {
            self.watch.touch(key);
            self.track.touch(key);
        }
        had
    }

    // ------------------------------------------------------- blocking --

    /// A client blocks on `key` (the shard's registry calls this for the
    /// first waiter of the key).
    pub fn block_key(&mut self, key: &[u8]) {
        self.blocked.insert(Bytes::copy_from_slice(key));
    }

    /// The key's last waiter left.
    pub fn unblock_key(&mut self, key: &[u8]) {
        self.blocked.remove(key);
    }

    /// Marks `key` ready for its waiters, if it has any.
    pub fn mark_ready(&mut self, key: &[u8]) {
        if let Some(k) = self.blocked.get(key) {
            if !self.ready.contains(k) {
                self.ready.push(k.clone());
            }
        }
    }

    /// Marks every blocked-on key ready (a flush: group readers of the
    /// streams it drops learn they are gone).
    fn ready_all_blocked(&mut self) {
        let keys: Vec<Bytes> = self.blocked.iter().cloned().collect();
        for k in keys {
            self.mark_ready(&k);
        }
    }

    /// Keys marked ready since the last call, in the order they got data.
    pub fn take_ready(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.ready)
    }

    // ---------------------------------------------------------- watch --

    /// WATCH: registers a watcher of `key` and returns what EXEC compares.
    pub fn watch(&mut self, key: &[u8], now_ms: u64) -> WatchStamp {
        let stored = self.dict.get(key).is_some();
        let expired = stored && Self::is_expired(&self.expires, key, now_ms);
        WatchStamp {
            version: self.watch.watch(key),
            live: stored && !expired,
            expired,
        }
    }

    /// Ends a command's (or a job's) write lookups: when it changed
    /// something (`changed`: its `dirty` grew) the watched keys it looked
    /// up for writing count as changed, otherwise they are forgotten (SADD
    /// of a present member, SETNX on an existing key... abort no EXEC).
    #[inline(always)]
    pub fn settle_touches(&mut self, changed: bool) {
        // Every command ends here; only a lookup of a watched key leaves
        // anything pending.
        if !self.pending.is_empty() {
            self.settle_pending(changed);
        }
    }

    #[cold]
    fn settle_pending(&mut self, changed: bool) {
        let Db {
            pending,
            watch,
            track,
            ..
        } = self;
        for k in pending.drain(..) {
            if changed {
                watch.touch(&k);
                track.touch(&k);
            }
        }
    }

    /// Records a change of `key` now, whatever `dirty` says (LTRIM that
    /// trimmed nothing still signals its key in Redis).
    pub fn touch(&mut self, key: &[u8]) {
        self.watch.touch(key);
        self.track.touch(key);
    }

    /// UNWATCH (or EXEC, DISCARD, a closed connection): one watcher less.
    pub fn unwatch(&mut self, key: &[u8]) {
        self.watch.unwatch(key);
    }

    /// The state EXEC checks a [`WatchStamp`] against.
    pub fn watch_state(&self, key: &[u8], now_ms: u64) -> KeyState {
        let stored = self.dict.get(key).is_some();
        KeyState {
            version: self.watch.version(key),
            stored,
            expired: stored && Self::is_expired(&self.expires, key, now_ms),
        }
    }

    /// After SWAPDB moved the data of `a` and `b`: the watch tables go back
    /// to their indexes, and a watched key that exists in either database
    /// counts as changed (Redis's touchAllWatchedKeysInDb).
    pub fn swapped(a: &mut Db, b: &mut Db) {
        std::mem::swap(&mut a.watch, &mut b.watch);
        std::mem::swap(&mut a.blocked, &mut b.blocked);
        std::mem::swap(&mut a.ready, &mut b.ready);
        a.ready_where_data_came();
        b.ready_where_data_came();
        let (da, db) = (&a.dict, &b.dict);
        let stored = |k: &[u8]| da.get(k).is_some() || db.get(k).is_some();
        if !a.watch.is_empty() {
            a.watch.touch_where(stored);
        }
        if !b.watch.is_empty() {
            b.watch.touch_where(stored);
        }
    }

    /// After this database's data was replaced wholesale (SWAPDB, a load):
    /// keys clients block on that now hold a list or sorted set are ready.
    fn ready_where_data_came(&mut self) {
        let dict = &self.dict;
        let lists: Vec<Bytes> = self
            .blocked
            .iter()
            .filter(|k| dict.get(k).is_some_and(may_wake))
            .cloned()
            .collect();
        self.ready.extend(lists);
    }

    /// Keys stored, including logically expired ones not yet reclaimed
    /// (what DBSIZE reports in Redis too).
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// Keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Redis's running estimate of the average remaining TTL (ms) of
    /// volatile keys, maintained by active expiry; 0 when unknown.
    pub fn avg_ttl(&self) -> u64 {
        self.avg_ttl_ms
    }

    /// Keys this db deleted because they expired, since creation.
    pub fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// The INFO keyspace value, e.g. "keys=3,expires=1,avg_ttl=5000"; the
    /// server prefixes "dbN:" and skips empty dbs as Redis does.
    pub fn info_line(&self) -> String {
        format!(
            "keys={},expires={},avg_ttl={}",
            self.len(),
            self.expires_len(),
            self.avg_ttl_ms
        )
    }

    /// SCAN step over keys (see [`Dict::scan`] for the guarantee), hiding
    /// logically expired keys; on a master it deletes the ones it passed,
    /// as Redis's SCAN does (a replica waits for its master's DEL).
    pub fn scan(&mut self, cursor: u64, now_ms: u64, mut f: impl FnMut(&Bytes, &Value)) -> u64 {
        let expires = &self.expires;
        let mut expired = Vec::new();
        let next = self.dict.scan(cursor, |k, v| {
            if !Self::is_expired(expires, k, now_ms) {
                f(k, v);
            } else {
                expired.push(k.clone());
            }
        });
        if self.expire_allowed {
            for k in expired {
                self.delete_expired(&k);
            }
        }
        next
    }

    /// Every stored key, logically expired ones included, with its value and
    /// expiry (DEBUG DIGEST counts keys not yet removed, as Redis does).
    pub fn iter_all(&self) -> impl Iterator<Item = (&Bytes, &Value, Option<u64>)> + '_ {
        self.dict
            .iter()
            .map(move |(k, v)| (k, v, self.expires.get(k).copied()))
    }

    /// All live keys (for KEYS), hiding logically expired ones.
    pub fn keys_iter(&self, now_ms: u64) -> impl Iterator<Item = &Bytes> + '_ {
        self.dict
            .keys()
            .filter(move |k| !Self::is_expired(&self.expires, k, now_ms))
    }

    /// RANDOMKEY, as Redis's dbRandomKey: expired picks are deleted on a
    /// master and retried. On a replica they cannot be deleted, so after a
    /// bounded number of tries it returns an expired key if every key is
    /// volatile (Redis does the same), else falls back to the first live key.
    pub fn random_key(&mut self, now_ms: u64) -> Option<Bytes> {
        let mut tries = 0;
        loop {
            let (k, _) = self.dict.random_entry(&mut self.rng)?;
            let k = k.clone();
            if !Self::is_expired(&self.expires, &k, now_ms) {
                return Some(k);
            }
            if self.expire_allowed {
                self.delete_expired(&k);
                continue;
            }
            tries += 1;
            if tries >= RANDOM_KEY_MAX_TRIES {
                if self.dict.len() == self.expires.len() {
                    return Some(k);
                }
                return self.keys_iter(now_ms).next().cloned().or(Some(k));
            }
        }
    }

    /// FLUSHDB: drops every key; returns how many there were. Keys already
    /// in the expired log stay there (they were deleted before the flush).
    ///
    /// During a snapshot that has not walked this database to the end, the
    /// dicts move into the snapshot instead (no copy, no O(n) free now).
    pub fn clear(&mut self) -> usize {
        let n = self.dict.len();
        self.track.forget_all();
        self.ready_all_blocked();
        if !self.watch.is_empty() {
            let dict = &self.dict;
            self.watch.touch_where(|k| dict.get(k).is_some());
        }
        let moved = match self.snap.as_deref_mut() {
            Some(s) => s.take_flushed(&mut self.dict, &mut self.expires),
            None => false,
        };
        if !moved {
            self.dict.clear();
            self.expires.clear();
        }
        self.avg_ttl_ms = 0;
        self.expires_cursor = 0;
        n
    }

    /// [`Db::clear`], handing the tables to the background freeing thread
    /// instead of freeing them here. While a snapshot runs the tables go to
    /// the snapshot instead (it frees them once walked).
    pub fn clear_lazy(&mut self) -> usize {
        let n = self.dict.len();
        if n == 0 || self.snap.is_some() {
            return self.clear();
        }
        self.track.forget_all();
        self.ready_all_blocked();
        if !self.watch.is_empty() {
            let dict = &self.dict;
            self.watch.touch_where(|k| dict.get(k).is_some());
        }
        let tables = (
            std::mem::take(&mut self.dict),
            std::mem::take(&mut self.expires),
        );
        super::lazyfree::free_later(tables, n as u64);
        self.avg_ttl_ms = 0;
        self.expires_cursor = 0;
        n
    }

    /// Room for `keys` keys and `ttls` TTLs: a load's size hint, so the
    /// tables do not grow and rehash their way to a size known up front.
    pub fn reserve(&mut self, keys: usize, ttls: usize) {
        self.dict.reserve(keys);
        self.expires.reserve(ttls);
    }

    /// The main dict's stored hash of `key`, for [`Db::prefetch_insert`].
    pub(crate) fn key_hash(&self, key: &[u8]) -> u32 {
        self.dict.hash_of(key)
    }

    /// Stage `stage` (0 to 3, each a little later so the one before has
    /// landed) of prefetching what looking up or storing a key with hash
    /// `hash` will read: bucket head, first chain entry, then key and
    /// value (or the second chain entry, and its key and value).
    pub(crate) fn prefetch_key(&self, hash: u32, stage: u8) {
        match stage {
            0 => self.dict.prefetch_bucket(hash),
            1 => self.dict.prefetch_chain(hash),
            2 => self.dict.prefetch_entry(hash, 0, Value::body),
            _ => self.dict.prefetch_entry(hash, 1, Value::body),
        }
    }

    /// Stores a key loaded from a dump into a database no client sees yet
    /// (a load's staging database, see `staging.rs`): no watch, blocking or
    /// snapshot hooks apply, and the key is kept as given rather than
    /// copied, since the RDB decoder hands out each key in its own exact
    /// allocation. A key loaded twice keeps the last value, as SET would.
    /// `stamp`: the access stamp the file gave the key (else it is fresh).
    pub fn insert_loaded(
        &mut self,
        key: Bytes,
        v: Value,
        expire_at_ms: Option<u64>,
        stamp: Option<u32>,
    ) {
        debug_assert!(self.snap.is_none() && self.watch.is_empty() && self.blocked.is_empty());
        if let Some(stamp) = stamp {
            let probe = key.clone();
            self.insert_loaded(key, v, expire_at_ms, None);
            self.dict.set_access(&probe, stamp);
            return;
        }
        match expire_at_ms {
            None => {
                if !self.expires.is_empty() {
                    self.expires.remove(&key);
                }
                self.dict.insert(key, v);
            }
            Some(at) => {
                let probe = key.clone();
                self.dict.insert(key, v);
                self.set_expire_unhooked(&probe, at);
            }
        }
    }

    /// Replaces this database's data with `loaded`'s (a finished load's
    /// staging database) as FLUSHDB followed by storing every loaded key
    /// would: watchers of keys present before or after are touched, keys
    /// clients block on that now hold a list or sorted set become ready.
    /// The old data is freed here, or by the background thread if `lazy`.
    /// Returns the number of keys removed.
    pub fn adopt(&mut self, mut loaded: Db, lazy: bool) -> usize {
        let removed = if lazy {
            self.clear_lazy()
        } else {
            self.clear()
        };
        // A snapshot walking this database took the old tables over in the
        // clear above (or none was running): the new ones are past its cut.
        self.dict = std::mem::take(&mut loaded.dict);
        self.expires = std::mem::take(&mut loaded.expires);
        if !self.watch.is_empty() {
            let dict = &self.dict;
            self.watch.touch_where(|k| dict.get(k).is_some());
        }
        self.ready_where_data_came();
        removed
    }

    /// Stores every key of `loaded` as SET would, hooks included (DEBUG
    /// RELOAD NOFLUSH). A key this database already holds (and that has
    /// not expired) is left alone and counted, unless `overwrite`.
    pub fn merge_loaded(&mut self, mut loaded: Db, now_ms: u64, overwrite: bool) -> usize {
        let ttls = std::mem::take(&mut loaded.expires);
        let mut duplicates = 0;
        for (key, value) in loaded.dict.drain() {
            if !overwrite && self.get_ref(&key, now_ms).is_some() {
                duplicates += 1;
                continue;
            }
            let expire = ttls.get(&key).copied();
            self.set(key, value, expire);
        }
        duplicates
    }

    /// One random key for eviction sampling, with its access stamp and
    /// expire time: any key, or (`volatile`) only keys with a TTL.
    pub fn sample_for_eviction(
        &self,
        volatile: bool,
        rng: &mut u64,
    ) -> Option<(&Bytes, u32, Option<u64>)> {
        if volatile {
            let (k, &at) = self.expires.random_entry(rng)?;
            Some((k, self.dict.access_of(k).unwrap_or(0), Some(at)))
        } else {
            let (k, _, access) = self.dict.random_entry_with_access(rng)?;
            let at = if self.expires.is_empty() {
                None
            } else {
                self.expires.get(k).copied()
            };
            Some((k, access, at))
        }
    }

    /// Every key eviction may take (all, or only those with a TTL), with
    /// its access stamp and expire time: for a database no bigger than the
    /// sample, where sampling would see some keys twice and miss others.
    pub fn eviction_candidates(&self, volatile: bool, mut f: impl FnMut(&Bytes, u32, Option<u64>)) {
        if volatile {
            for (k, &at) in self.expires.iter() {
                f(k, self.dict.access_of(k).unwrap_or(0), Some(at));
            }
        } else {
            for (k, _) in self.dict.iter() {
                let at = self.expires.get(k).copied();
                f(k, self.dict.access_of(k).unwrap_or(0), at);
            }
        }
    }

    /// Keys deleted by expiry (lazy or active) since the last call, oldest
    /// first. The server propagates each as a DEL in this db's index.
    /// Whether keys expired since the last drain.
    pub fn has_expired(&self) -> bool {
        !self.expired_log.is_empty()
    }

    pub fn drain_expired(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.expired_log)
    }

    /// Notifications still to be published, as (class, key): `expired`
    /// or `new`.
    pub fn take_notes(&mut self) -> Vec<(u32, Bytes)> {
        std::mem::take(&mut self.notes)
    }

    /// False on a replica: expired keys are then hidden but never deleted
    /// by this shard; the master's DELs remove them.
    pub fn set_expire_allowed(&mut self, allowed: bool) {
        self.expire_allowed = allowed;
    }

    pub fn expire_allowed(&self) -> bool {
        self.expire_allowed
    }

    /// Advances pending incremental rehashes of both dicts by `steps`
    /// buckets each (for the shard's cron); true while one is still running.
    pub fn rehash_steps(&mut self, steps: usize) -> bool {
        let a = self.dict.rehash_steps(steps);
        let b = self.expires.rehash_steps(steps);
        a || b
    }

    // ------------------------------------------------------- snapshot --

    /// Copy-on-write hook: `key` is about to change or be deleted.
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        if let Some(s) = self.snap.as_deref_mut() {
            s.before_change(&self.dict, &self.expires, key);
        }
    }

    /// Marks the cut (see `snapshot.rs`); returns the key and TTL counts at
    /// the cut. Replaces any previous snapshot state of this database.
    pub(crate) fn snap_begin(&mut self) -> (usize, usize) {
        self.snap = if self.dict.is_empty() {
            None
        } else {
            Some(Box::new(DbSnap::new(&self.dict)))
        };
        (self.dict.len(), self.expires.len())
    }

    /// Next items of the cut; true once all were handed out, after which
    /// the state is gone and writes skip the hooks again.
    pub(crate) fn snap_next(&mut self, max: usize, out: &mut Vec<SnapItem>) -> bool {
        self.snap_step(|s, dict, expires| s.next(dict, expires, max, out))
    }

    /// [`Db::snap_next`] through a visitor (see [`SnapVisitor`]).
    pub(crate) fn snap_visit<V: SnapVisitor>(&mut self, max: usize, visitor: &mut V) -> bool {
        self.snap_step(|s, dict, expires| s.visit(dict, expires, max, visitor))
    }

    /// One step of the walk; drops the state once `step` says it is done.
    fn snap_step(
        &mut self,
        step: impl FnOnce(&mut DbSnap, &Dict<Value, u32>, &Dict<u64>) -> bool,
    ) -> bool {
        let Some(s) = self.snap.as_deref_mut() else {
            return true;
        };
        let done = step(s, &self.dict, &self.expires);
        if done {
            self.snap = None;
        }
        done
    }

    /// Drops this database's snapshot state (end or abort).
    pub(crate) fn snap_end(&mut self) {
        self.snap = None;
    }

    pub(crate) fn snap_extra_bytes(&self) -> usize {
        self.snap.as_deref().map_or(0, DbSnap::extra_bytes)
    }

    // --------------------------------------- hooks for active expiry --

    /// Redis skips sampling an expires table under 1% full and waits for
    /// the resize. Our dict shrinks eagerly, so that only happens while a
    /// shrink is running, and then both tables count; a rehashing table is
    /// therefore never called sparse, or the remaining keys could wait for
    /// a rehash that nothing drives.
    pub(crate) fn expires_sparse(&self) -> bool {
        let slots = self.expires.buckets();
        !self.expires.is_rehashing()
            && slots > SMALL_TABLE
            && self.expires.len().saturating_mul(100) / slots < MIN_FILL_PERC
    }

    /// Visits one bucket (or its expansions while rehashing) of the expires
    /// dict at the active-expiry cursor and advances the cursor. Returns
    /// true when the cursor wrapped, i.e. a full pass completed.
    pub(crate) fn scan_expires_step(&mut self, f: impl FnMut(&Bytes, &u64)) -> bool {
        self.expires_cursor = self.expires.scan(self.expires_cursor, f);
        self.expires_cursor == 0
    }

    /// Deletes `key` (and logs it) if it is expired and this db may expire.
    pub(crate) fn expire_if_due(&mut self, key: &[u8], now_ms: u64) -> bool {
        if self.expire_allowed && Self::is_expired(&self.expires, key, now_ms) {
            self.delete_expired(key);
            return true;
        }
        false
    }

    /// Folds a new average-TTL sample in as Redis does: 2% weight for the
    /// sample, 98% for the previous estimate; 0 resets it.
    pub(crate) fn record_avg_ttl(&mut self, sample_ms: Option<u64>) {
        match sample_ms {
            None => self.avg_ttl_ms = 0,
            Some(s) if self.avg_ttl_ms == 0 => self.avg_ttl_ms = s,
            Some(s) => self.avg_ttl_ms = (self.avg_ttl_ms / 50) * 49 + s / 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::value::StrValue;

    fn s(v: &str) -> Value {
        Value::Str(StrValue::from_set(Bytes::copy_from_slice(v.as_bytes())))
    }

    fn b(v: &str) -> Bytes {
        Bytes::copy_from_slice(v.as_bytes())
    }

    #[test]
    fn watched_keys_see_every_change_but_not_no_ops() {
        let mut db = Db::new();
        let dirty =
            |db: &Db, st: &WatchStamp, k: &str| st.is_dirty(db.watch_state(k.as_bytes(), 0));
        let st = db.watch(b"k", 0);
        assert!(!st.live);
        assert!(db.remove(b"k").is_none()); // deleting nothing is no change
        assert!(!db.set_expire(b"k", 5));
        assert!(db.get(b"k", 0, Lookup::Write).is_none());
        assert!(!dirty(&db, &st, "k"));
        db.set(b("k"), s("v"), None);
        assert!(dirty(&db, &st, "k"));
        db.unwatch(b"k");

        for change in 0..4 {
            let st = db.watch(b"k", 0);
            assert!(st.live && !dirty(&db, &st, "k"));
            match change {
                0 => assert!(db.remove(b"k").is_some()),
                1 => assert!(db.set_expire(b"k", 1_000)),
                2 => {
                    db.clear();
                }
                _ => {
                    // A write lookup counts once the command reports a
                    // change; one that changed nothing is forgotten.
                    db.get(b"k", 0, Lookup::Write);
                    db.settle_touches(false);
                    assert!(!dirty(&db, &st, "k"));
                    db.get(b"k", 0, Lookup::Write);
                    db.settle_touches(true);
                }
            }
            assert!(dirty(&db, &st, "k"), "change {change}");
            db.unwatch(b"k");
            db.set(b("k"), s("v"), None);
        }
        // Expiry of a live watched key is dirty; flushing other keys is not.
        let st = db.watch(b"k", 0);
        db.set(b("other"), s("v"), None);
        assert!(!dirty(&db, &st, "k"));
        db.unwatch(b"k");
        db.set(b("k"), s("v"), Some(10));
        let st = db.watch(b"k", 0);
        assert!(st.is_dirty(db.watch_state(b"k", 11)));
    }

    #[test]
    fn swapdb_keeps_watches_with_the_index() {
        let mut a = Db::new();
        let mut c = Db::new();
        c.set(b("k"), s("v"), None);
        let st = a.watch(b"k", 0);
        let untouched = a.watch(b"absent", 0);
        std::mem::swap(&mut a, &mut c);
        Db::swapped(&mut a, &mut c);
        // Index 0 ("a") now holds the data that had k.
        assert!(st.is_dirty(a.watch_state(b"k", 0)));
        assert!(!untouched.is_dirty(a.watch_state(b"absent", 0)));
    }

    #[test]
    fn set_get_remove_and_ttl() {
        let mut db = Db::new();
        db.set(b("a"), s("1"), None);
        db.set(b("b"), s("2"), Some(1_000));
        assert_eq!(db.len(), 2);
        assert_eq!(db.expires_len(), 1);
        assert_eq!(db.expire_at(b"b"), Some(1_000));
        assert_eq!(db.get(b"a", 500, Lookup::Read), Some(&mut s("1")));
        // Exactly at the expire time the key is still alive (strict >).
        assert!(db.get(b"b", 1_000, Lookup::Read).is_some());
        // Replacing without a TTL clears it; KEEPTTL keeps it.
        db.set(b("b"), s("3"), None);
        assert_eq!(db.expire_at(b"b"), None);
        assert!(db.set_expire(b"b", 2_000));
        db.set_keep_ttl(b("b"), s("4"));
        assert_eq!(db.expire_at(b"b"), Some(2_000));
        assert!(db.persist(b"b"));
        assert!(!db.persist(b"b"));
        assert!(!db.set_expire(b"zz", 5));
        assert_eq!(db.remove(b"b"), Some(s("4")));
        assert_eq!(db.remove(b"b"), None);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.clear(), 1);
        assert!(db.is_empty());
    }

    #[test]
    fn expires_share_the_key_allocation() {
        let mut db = Db::new();
        let k = b("shared");
        db.set(k.clone(), s("v"), Some(10));
        let dk = db.dict.get_key_value(b"shared").map(|(k, _)| k.as_ptr());
        let ek = db.expires.get_key_value(b"shared").map(|(k, _)| k.as_ptr());
        assert_eq!(dk, ek);
    }

    #[test]
    fn master_lazily_deletes_and_logs() {
        let mut db = Db::new();
        db.set(b("k"), s("v"), Some(100));
        db.set(b("w"), s("v"), Some(100));
        assert!(db.get(b"k", 101, Lookup::Read).is_none());
        assert!(db.get(b"w", 101, Lookup::Write).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.expired_keys(), 2);
        assert_eq!(db.drain_expired(), vec![b("k"), b("w")]);
        assert!(db.drain_expired().is_empty());
    }

    #[test]
    fn replica_hides_on_read_but_keeps() {
        let mut db = Db::new();
        db.set_expire_allowed(false);
        db.set(b("k"), s("v"), Some(100));
        assert!(db.get(b"k", 101, Lookup::Read).is_none());
        assert!(db.get_ref(b"k", 101).is_none());
        assert!(db.get(b"k", 101, Lookup::Write).is_some());
        assert_eq!(db.len(), 1);
        assert_eq!(db.keys_iter(101).count(), 0);
        assert_eq!(db.keys_iter(99).count(), 1);
        assert!(db.drain_expired().is_empty());
        // All keys volatile and expired: RANDOMKEY still terminates.
        assert_eq!(db.random_key(101), Some(b("k")));
        db.set(b("live"), s("v"), None);
        for _ in 0..50 {
            assert_eq!(db.random_key(101), Some(b("live")));
        }
        // The master's DEL removes it.
        assert!(db.remove(b"k").is_some());
    }

    #[test]
    fn scan_and_random_key_skip_expired() {
        let mut db = Db::new();
        for i in 0..100 {
            let at = if i % 2 == 0 { Some(50) } else { None };
            db.set(b(&format!("k{i}")), s("v"), at);
        }
        let mut seen = Vec::new();
        let mut c = 0;
        loop {
            c = db.scan(c, 60, |k, _| seen.push(k.clone()));
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 50);
        assert!(seen.iter().all(|k| db.expire_at(k).is_none()));
        // The scan deleted the expired keys it passed (master), as Redis's.
        assert_eq!(db.len(), 50);
        assert_eq!(db.expired_keys(), 50);
        for i in (0..100).step_by(2) {
            db.set(b(&format!("k{i}")), s("v"), Some(50));
        }
        for _ in 0..200 {
            let k = db.random_key(60).expect("live keys exist");
            assert!(db.expire_at(&k).is_none());
        }
        // Expired picks were deleted on the way (master): 50 by the scan,
        // some of the 50 set again by the random picks.
        assert_eq!(db.len() as u64 + db.expired_keys(), 150);
        assert!(db.expired_keys() > 50);
        assert!(db.info_line().starts_with("keys="));
    }

    #[test]
    fn avg_ttl_running_estimate() {
        let mut db = Db::new();
        db.record_avg_ttl(Some(1_000));
        assert_eq!(db.avg_ttl(), 1_000);
        db.record_avg_ttl(Some(6_000));
        assert_eq!(db.avg_ttl(), 980 + 120);
        db.record_avg_ttl(None);
        assert_eq!(db.avg_ttl(), 0);
    }
}
