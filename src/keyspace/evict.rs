//! Choosing and deleting `maxmemory` eviction victims among one shard's
//! keys, the way Redis's approximated LRU/LFU does.
//!
//! Owns the [`Policy`] names and the per-shard candidate pool. Each round
//! samples `maxmemory-samples` keys from every non-empty database (all keys,
//! or only keys with a TTL for the `volatile-*` policies), keeps the best 16
//! candidates seen so far across rounds (most idle, least frequently used,
//! or nearest expiry), and deletes the best one that still exists. The
//! random policies pick one random key per call, visiting the databases in
//! turn.
//!
//! Knows nothing of memory, time budgets or replication: the server decides
//! when to evict and turns what this returns into `DEL`s (see `crate::evict`).

use super::access;
use super::{Keyspace, Value};
use bytes::Bytes;

/// `maxmemory-policy`, in the order of the config table's ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

impl Policy {
    /// From the config table's id (`config::table::MAXMEMORY_POLICY`).
    pub fn from_id(id: u32) -> Policy {
        match id {
            0 => Policy::VolatileLru,
            1 => Policy::VolatileLfu,
            2 => Policy::VolatileRandom,
            3 => Policy::VolatileTtl,
            4 => Policy::AllkeysLru,
            5 => Policy::AllkeysLfu,
            6 => Policy::AllkeysRandom,
            _ => Policy::NoEviction,
        }
    }

    /// From its `maxmemory-policy` name (`noeviction` for anything else).
    pub fn from_name(name: &str) -> Policy {
        match name {
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            _ => Policy::NoEviction,
        }
    }

    /// The config table's id (the inverse of [`Policy::from_id`]).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    /// Ranks keys by their access stamps (LRU or LFU).
    pub fn by_access(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru | Policy::VolatileLfu | Policy::AllkeysLru | Policy::AllkeysLfu
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::VolatileRandom | Policy::AllkeysRandom)
    }
}

/// Redis's EVPOOL_SIZE.
const POOL_SIZE: usize = 16;

struct Candidate {
    score: u64,
    db: usize,
    key: Bytes,
}

/// One shard's eviction state: the candidate pool, kept between calls as
/// Redis keeps its pool, the victim chosen last, and the random policies'
/// database cursor.
pub struct Evictor {
    /// Sorted by score, best (highest) last.
    pool: Vec<Candidate>,
    chosen: Option<Candidate>,
    next_db: usize,
    rng: u64,
}

impl Default for Evictor {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Evictor::evict_one`] deleted.
pub struct Evicted {
    pub db: usize,
    pub key: Bytes,
    pub value: Value,
}

impl Evictor {
    pub fn new() -> Self {
        Evictor {
            pool: Vec::with_capacity(POOL_SIZE + 1),
            chosen: None,
            next_db: 0,
            rng: super::dict::random_seed(),
        }
    }

    /// Deletes the best victim under `policy` and returns it; `None` when
    /// no key qualifies (no keys, or no keys with a TTL for a volatile
    /// policy, or `noeviction`).
    pub fn evict_one(
        &mut self,
        ks: &mut Keyspace,
        policy: Policy,
        samples: usize,
    ) -> Option<Evicted> {
        self.choose(ks, policy, samples)?;
        self.evict_chosen(ks)
    }

    /// Chooses this shard's next victim under `policy` without deleting
    /// it, and returns its rank: shards compare ranks so that the best
    /// victim of the whole node goes first (the one with the higher rank).
    /// For LRU, LFU and TTL the rank is the victim's score; for the random
    /// policies it is the number of keys the policy may evict here, so the
    /// fullest shard gives up a key. `None` when no key qualifies.
    pub fn choose(&mut self, ks: &Keyspace, policy: Policy, samples: usize) -> Option<u64> {
        if let Some(c) = self.chosen.take() {
            // Chosen before but not evicted: it competes again.
            self.offer(c.score, c.db, &c.key);
        }
        if policy == Policy::NoEviction {
            return None;
        }
        let chosen = if policy.random() {
            let volatile = policy.volatile();
            let (db, key) = self.random_victim(ks, volatile)?;
            let candidates = ks
                .dbs()
                .iter()
                .map(|d| if volatile { d.expires_len() } else { d.len() })
                .sum::<usize>();
            self.pool.clear();
            Candidate {
                score: candidates as u64,
                db,
                key,
            }
        } else {
            self.pooled_victim(ks, policy, samples.max(1))?
        };
        let rank = chosen.score;
        self.chosen = Some(chosen);
        Some(rank)
    }

    /// Deletes the victim [`Evictor::choose`] chose; `None` if it is gone.
    pub fn evict_chosen(&mut self, ks: &mut Keyspace) -> Option<Evicted> {
        let Candidate { db, key, .. } = self.chosen.take()?;
        let value = ks.dbs_mut().get_mut(db)?.remove(&key)?;
        Some(Evicted { db, key, value })
    }

    fn random_victim(&mut self, ks: &Keyspace, volatile: bool) -> Option<(usize, Bytes)> {
        let n = ks.len();
        for _ in 0..n {
            let db = self.next_db % n;
            self.next_db = self.next_db.wrapping_add(1);
            if let Some((k, _, _)) = ks.dbs()[db].sample_for_eviction(volatile, &mut self.rng) {
                return Some((db, k.clone()));
            }
        }
        None
    }

    fn pooled_victim(
        &mut self,
        ks: &Keyspace,
        policy: Policy,
        samples: usize,
    ) -> Option<Candidate> {
        let volatile = policy.volatile();
        loop {
            let mut any = false;
            for (i, db) in ks.dbs().iter().enumerate() {
                let size = if volatile { db.expires_len() } else { db.len() };
                if size == 0 {
                    continue;
                }
                any = true;
                if size <= samples {
                    db.eviction_candidates(volatile, |k, stamp, at| {
                        self.offer(score(policy, stamp, at), i, k);
                    });
                    continue;
                }
                for _ in 0..samples {
                    let Some((k, stamp, at)) = db.sample_for_eviction(volatile, &mut self.rng)
                    else {
                        break;
                    };
                    self.offer(score(policy, stamp, at), i, k);
                }
            }
            if !any {
                self.pool.clear();
                return None;
            }
            // Best first; a candidate deleted (or, for a volatile policy,
            // made persistent) since it was sampled is dropped.
            while let Some(c) = self.pool.pop() {
                let db = &ks.dbs()[c.db];
                let still = if volatile {
                    db.expire_at(&c.key).is_some()
                } else {
                    db.access_of(&c.key).is_some()
                };
                if still {
                    return Some(c);
                }
            }
        }
    }

    /// Adds a sampled key to the pool if it beats the worst one there.
    fn offer(&mut self, score: u64, db: usize, key: &Bytes) {
        if self.pool.len() >= POOL_SIZE && self.pool.first().is_some_and(|w| score <= w.score) {
            return;
        }
        if self.pool.iter().any(|c| c.db == db && c.key == *key) {
            return;
        }
        let at = self.pool.partition_point(|c| c.score < score);
        self.pool.insert(
            at,
            Candidate {
                score,
                db,
                key: key.clone(),
            },
        );
        if self.pool.len() > POOL_SIZE {
            self.pool.remove(0);
        }
    }

    /// Forgets the pooled candidates (their keys may be gone wholesale:
    /// FLUSHALL, a load, SWAPDB).
    pub fn forget(&mut self) {
        self.pool.clear();
        self.chosen = None;
    }
}

/// Higher is evicted first.
fn score(policy: Policy, stamp: u32, expire_at: Option<u64>) -> u64 {
    match policy {
        Policy::VolatileTtl => u64::MAX - expire_at.unwrap_or(u64::MAX),
        p if p.is_lfu() => 255 - u64::from(access::frequency(stamp)),
        _ => access::idle_ms(stamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::StrValue;

    fn ks_with(keys: usize, ttl_every: usize) -> Keyspace {
        let mut ks = Keyspace::new(2);
        for i in 0..keys {
            let k = Bytes::from(format!("k{i}"));
            let v = Value::Str(StrValue::from_set(Bytes::from_static(b"v")));
            let ttl = (ttl_every > 0 && i % ttl_every == 0).then_some(10_000_000 + i as u64);
            ks.dbs_mut()[i % 2].set(k, v, ttl);
        }
        ks
    }

    #[test]
    fn noeviction_and_empty_keyspaces_give_nothing() {
        let mut e = Evictor::new();
        let mut ks = ks_with(10, 0);
        assert!(e.evict_one(&mut ks, Policy::NoEviction, 5).is_none());
        assert!(e.evict_one(&mut ks, Policy::VolatileLru, 5).is_none());
        assert!(e.evict_one(&mut ks, Policy::VolatileRandom, 5).is_none());
        let mut empty = Keyspace::new(4);
        assert!(e.evict_one(&mut empty, Policy::AllkeysLru, 5).is_none());
        assert!(e.evict_one(&mut empty, Policy::AllkeysRandom, 5).is_none());
    }

    #[test]
    fn every_policy_empties_what_it_may_and_keeps_the_rest() {
        for id in 0..7 {
            let policy = Policy::from_id(id);
            let mut e = Evictor::new();
            let mut ks = ks_with(200, 4);
            let mut evicted = 0;
            while let Some(v) = e.evict_one(&mut ks, policy, 5) {
                evicted += 1;
                assert!(ks.dbs()[v.db].get_ref(&v.key, 0).is_none());
                assert!(evicted <= 200, "{policy:?} loops");
            }
            let left = ks.key_count();
            if policy.volatile() {
                assert_eq!((evicted, left), (50, 150), "{policy:?}");
                assert!(ks.dbs().iter().all(|d| d.expires_len() == 0));
            } else {
                assert_eq!((evicted, left), (200, 0), "{policy:?}");
            }
        }
    }

    #[test]
    fn volatile_ttl_evicts_the_nearest_expiry_first() {
        let mut e = Evictor::new();
        let mut ks = ks_with(64, 1);
        // 64 keys, 32 per db: with 32 samples every key is seen, so the
        // victims go in expiry order.
        for want in 0..8u64 {
            let v = e
                .evict_one(&mut ks, Policy::VolatileTtl, 32)
                .expect("a victim");
            let n: u64 = std::str::from_utf8(&v.key[1..]).unwrap().parse().unwrap();
            assert_eq!(n, want);
        }
    }

    #[test]
    fn lru_keeps_recently_used_keys() {
        let _g = access::tests::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        access::set_mode(false, 10, 1);
        let t0 = 4_000_000_000_000u64;
        access::set_clock_exact(t0);
        let mut ks = ks_with(1000, 0);
        // Ten seconds later, the first 100 keys are used again.
        access::set_clock_exact(t0 + 10_000);
        for i in 0..100 {
            let k = format!("k{i}");
            assert!(ks.dbs_mut()[i % 2]
                .get(k.as_bytes(), 0, crate::keyspace::Lookup::Read)
                .is_some());
        }
        let mut e = Evictor::new();
        for _ in 0..800 {
            e.evict_one(&mut ks, Policy::AllkeysLru, 10)
                .expect("a victim");
        }
        let hot_left = (0..100)
            .filter(|i| {
                ks.dbs()[i % 2]
                    .get_ref(format!("k{i}").as_bytes(), 0)
                    .is_some()
            })
            .count();
        // Evicting 800 of 1000 with 10 samples per db: the recently used
        // tenth survives almost entirely.
        assert!(
            hot_left >= 95,
            "only {hot_left} of 100 recently used keys left"
        );
    }
}
