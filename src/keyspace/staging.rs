//! A load's staging area: the databases a dump being read (a replica's
//! full sync, the start-up file, an AOF base, DEBUG RELOAD) fills batch by
//! batch while this shard goes on serving its current data, and how they
//! then take that data's place in one step.
//!
//! Loading into staging tables lets the shards insert keys while the
//! decoder is still reading the rest of the dump, instead of after it,
//! and keeps the old data readable until the new data is complete (a
//! replica serves stale data during a sync, as Redis does).
//!
//! Each load has an id. Its batches may only fill staging of the same id,
//! so a load that was abandoned midway (a sync cut short, then retried) can
//! never leak keys into the next one; whatever a superseded or discarded
//! load staged is freed on the background thread.

use super::{lazyfree, Db, Keyspace, Value};
use bytes::Bytes;

/// Keys ahead of the one being stored whose bucket heads are fetched...
const LOAD_AHEAD: usize = 16;
/// ...and whose first chain entries are (their heads have landed by then).
const CHAIN_AHEAD: usize = 8;

/// One loaded key: database index, key, value, expiry (unix ms), and the
/// access stamp the file gave it (see `access.rs`; else it is fresh).
pub type LoadedKey = (usize, Bytes, Value, Option<u64>, Option<u32>);

/// The staging databases of one load on this shard.
#[derive(Debug)]
pub struct Staged {
    id: u64,
    dbs: Vec<Db>,
    /// Batches received, checked against what the loader sent.
    batches: u64,
}

/// How the staged data joins the live databases.
#[derive(Clone, Copy, Debug)]
pub enum Install {
    /// Every database's data is replaced (a full sync, start-up, DEBUG
    /// RELOAD); with `lazy` the old data is freed in the background.
    Replace { lazy: bool },
    /// Keys are stored one by one next to the current ones (DEBUG RELOAD
    /// NOFLUSH); keys already present are kept and counted, unless
    /// `overwrite` (MERGE).
    Merge { overwrite: bool, now_ms: u64 },
}

/// Why a staged load could not be installed.
#[derive(Debug, PartialEq, Eq)]
pub enum StageError {
    /// No staging for this load: it was superseded by a newer one.
    Superseded,
    /// Fewer (or more) batches arrived than the loader sent.
    Incomplete { sent: u64, received: u64 },
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageError::Superseded => write!(f, "the load was superseded by a newer one"),
            StageError::Incomplete { sent, received } => write!(
                f,
                "the load sent {sent} batches to this shard but {received} arrived"
            ),
        }
    }
}

fn free_staged(staged: Staged) {
    let keys: usize = staged.dbs.iter().map(Db::len).sum();
    if keys > 0 {
        lazyfree::free_later(staged.dbs, keys as u64);
    }
}

impl Keyspace {
    /// The staging of load `id`, created empty (dropping any other load's)
    /// on first use.
    fn staged_for(&mut self, id: u64) -> &mut Staged {
        let databases = self.len();
        if self.staged.as_ref().is_some_and(|s| s.id != id) {
            if let Some(old) = self.staged.take() {
                free_staged(old);
            }
        }
        self.staged.get_or_insert_with(|| Staged {
            id,
            dbs: (0..databases).map(|_| Db::new()).collect(),
            batches: 0,
        })
    }

    /// Starts load `id` on this shard with empty staging, dropping what
    /// any other load staged.
    pub fn stage_begin(&mut self, id: u64) {
        self.staged_for(id);
    }

    /// Sizes staging database `db` of load `id` for `keys` keys and `ttls`
    /// TTLs (an RDB's RESIZEDB hint, this shard's share of it).
    pub fn stage_reserve(&mut self, id: u64, db: usize, keys: usize, ttls: usize) {
        if let Some(d) = self.staged_for(id).dbs.get_mut(db) {
            d.reserve(keys, ttls);
        }
    }

    /// Stores one batch of load `id` in its staging. Database indices were
    /// checked by the loader; an out-of-range one is dropped, not a panic.
    pub fn stage_keys(&mut self, id: u64, keys: Vec<LoadedKey>) {
        let staged = self.staged_for(id);
        staged.batches += 1;
        // Each insert reads a random bucket head and chain entry of a big
        // table: fetch them a few keys ahead so those misses overlap
        // instead of following one another.
        let hashes: Vec<(usize, u32)> = keys
            .iter()
            .map(|(db, key, ..)| (*db, staged.dbs.get(*db).map_or(0, |d| d.key_hash(key))))
            .collect();
        let prefetch = |dbs: &[Db], i: usize, stage: u8| {
            if let Some(&(db, hash)) = hashes.get(i) {
                if let Some(d) = dbs.get(db) {
                    d.prefetch_key(hash, stage);
                }
            }
        };
        for i in 0..LOAD_AHEAD.min(hashes.len()) {
            prefetch(&staged.dbs, i, 0);
        }
        for i in 0..CHAIN_AHEAD.min(hashes.len()) {
            prefetch(&staged.dbs, i, 1);
        }
        for (i, (db, key, value, expire, stamp)) in keys.into_iter().enumerate() {
            prefetch(&staged.dbs, i + LOAD_AHEAD, 0);
            prefetch(&staged.dbs, i + CHAIN_AHEAD, 1);
            if let Some(d) = staged.dbs.get_mut(db) {
                d.insert_loaded(key, value, expire, stamp);
            }
        }
    }

    /// Drops load `id`'s staging, if it is the current one.
    pub fn stage_discard(&mut self, id: u64) {
        if self.staged.as_ref().is_some_and(|s| s.id == id) {
            if let Some(old) = self.staged.take() {
                free_staged(old);
            }
        }
    }

    /// Moves load `id`'s staged data into the live databases, once exactly
    /// the `sent` batches the loader sent here have arrived. Returns how
    /// many keys were removed (`Replace`) or found already present
    /// (`Merge`). On error the live data is untouched and the staging gone.
    pub fn stage_install(&mut self, id: u64, sent: u64, how: Install) -> Result<usize, StageError> {
        if sent == 0 && self.staged.is_none() {
            // Nothing was loaded for this shard: the same as empty staging.
            self.staged_for(id);
        }
        let staged = match self.staged.take() {
            Some(s) if s.id == id => s,
            other => {
                self.staged = other;
                return Err(StageError::Superseded);
            }
        };
        if staged.batches != sent {
            let received = staged.batches;
            free_staged(staged);
            return Err(StageError::Incomplete { sent, received });
        }
        let mut counted = 0;
        for (i, loaded) in staged.dbs.into_iter().enumerate() {
            let Some(live) = self.db_mut(i) else { break };
            counted += match how {
                Install::Replace { lazy } => live.adopt(loaded, lazy),
                Install::Merge { overwrite, now_ms } => {
                    live.merge_loaded(loaded, now_ms, overwrite)
                }
            };
        }
        Ok(counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(super::super::StrValue::from_set(Bytes::copy_from_slice(
            v.as_bytes(),
        )))
    }

    fn key(db: usize, k: &str, v: &str, ttl: Option<u64>) -> LoadedKey {
        (db, Bytes::copy_from_slice(k.as_bytes()), s(v), ttl, None)
    }

    fn set(ks: &mut Keyspace, k: Bytes, v: Value) {
        if let Some(d) = ks.db_mut(0) {
            d.set(k, v, None);
        }
    }

    fn get(ks: &mut Keyspace, db: usize, k: &str) -> Option<Value> {
        ks.db_mut(db)
            .and_then(|d| d.get_ref(k.as_bytes(), 0).cloned())
    }

    #[test]
    fn staged_keys_stay_invisible_until_installed() {
        let mut ks = Keyspace::new(2);
        set(&mut ks, Bytes::from("old"), s("1"));
        ks.stage_reserve(9, 0, 100, 0);
        ks.stage_keys(
            9,
            vec![key(0, "a", "x", None), key(1, "b", "y", Some(u64::MAX))],
        );
        ks.stage_keys(9, vec![key(0, "a", "z", None)]);
        assert!(get(&mut ks, 0, "a").is_none());
        assert!(get(&mut ks, 0, "old").is_some());
        assert_eq!(
            ks.stage_install(9, 2, Install::Replace { lazy: false }),
            Ok(1)
        );
        assert_eq!(get(&mut ks, 0, "a"), Some(s("z")));
        assert!(get(&mut ks, 0, "old").is_none());
        assert_eq!(ks.db_mut(1).and_then(|d| d.expire_at(b"b")), Some(u64::MAX));
        // The staging is gone: installing again is an error.
        assert_eq!(
            ks.stage_install(9, 2, Install::Replace { lazy: false }),
            Err(StageError::Superseded)
        );
    }

    #[test]
    fn a_newer_load_supersedes_an_abandoned_one() {
        let mut ks = Keyspace::new(1);
        ks.stage_keys(1, vec![key(0, "stale", "1", None)]);
        ks.stage_keys(2, vec![key(0, "fresh", "2", None)]);
        assert_eq!(
            ks.stage_install(2, 1, Install::Replace { lazy: true }),
            Ok(0)
        );
        assert!(get(&mut ks, 0, "stale").is_none());
        assert_eq!(get(&mut ks, 0, "fresh"), Some(s("2")));
        ks.stage_keys(3, vec![key(0, "x", "1", None)]);
        ks.stage_keys(4, vec![key(0, "y", "1", None)]);
        assert_eq!(
            ks.stage_install(3, 1, Install::Replace { lazy: false }),
            Err(StageError::Superseded)
        );
        ks.stage_discard(4);
        assert_eq!(
            ks.stage_install(4, 1, Install::Replace { lazy: false }),
            Err(StageError::Superseded)
        );
        assert_eq!(get(&mut ks, 0, "fresh"), Some(s("2")));
    }

    #[test]
    fn a_missing_batch_fails_the_install_and_keeps_the_live_data() {
        let mut ks = Keyspace::new(1);
        set(&mut ks, Bytes::from("live"), s("1"));
        ks.stage_keys(5, vec![key(0, "a", "1", None)]);
        assert_eq!(
            ks.stage_install(5, 2, Install::Replace { lazy: false }),
            Err(StageError::Incomplete {
                sent: 2,
                received: 1
            })
        );
        assert_eq!(get(&mut ks, 0, "live"), Some(s("1")));
        assert!(get(&mut ks, 0, "a").is_none());
        // A shard that got no keys installs an empty load: a flush.
        assert_eq!(
            ks.stage_install(6, 0, Install::Replace { lazy: false }),
            Ok(1)
        );
        assert!(get(&mut ks, 0, "live").is_none());
    }

    #[test]
    fn merge_keeps_present_keys_unless_overwriting() {
        let mut ks = Keyspace::new(1);
        set(&mut ks, Bytes::from("a"), s("live"));
        ks.stage_keys(
            7,
            vec![key(0, "a", "dump", None), key(0, "b", "dump", None)],
        );
        let merge = Install::Merge {
            overwrite: false,
            now_ms: 0,
        };
        assert_eq!(ks.stage_install(7, 1, merge), Ok(1));
        assert_eq!(get(&mut ks, 0, "a"), Some(s("live")));
        assert_eq!(get(&mut ks, 0, "b"), Some(s("dump")));
        ks.stage_keys(8, vec![key(0, "a", "dump", None)]);
        let overwrite = Install::Merge {
            overwrite: true,
            now_ms: 0,
        };
        assert_eq!(ks.stage_install(8, 1, overwrite), Ok(0));
        assert_eq!(get(&mut ks, 0, "a"), Some(s("dump")));
    }
}
