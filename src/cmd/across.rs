//! Holding and reading keys that live on several shards, for the commands that
//! coordinate across shards (`Split::Coordinate`): each shard reads its own
//! keys in one job, and the results come back in key order, so the first
//! bad key still decides the error, as it would on one shard.

use super::Ctx;
use crate::shard::{self, route::shard_of};
use bytes::Bytes;

/// Holds the shards owning `keys` (see `shard::hold`).
pub async fn hold_keys(keys: &[Bytes]) -> shard::HoldGuard {
    let n = shard::current().shards();
    let involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    shard::hold(&involved).await
}

/// Runs `read` for every key of `keys` (database `db`) on the held shard
/// owning it; the results in key order.
pub async fn read_keys<T, F>(guard: &shard::HoldGuard, db: usize, keys: &[Bytes], read: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(&mut Ctx, &Bytes) -> T + Send + Clone + 'static,
{
    let n = shard::current().shards();
    let mut out: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
    for &s in guard.shards() {
        let mine: Vec<(usize, Bytes)> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| shard_of(k, n) == s)
            .map(|(i, k)| (i, k.clone()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let read = read.clone();
        let got = guard
            .run(s, move |core| {
                let mut ctx = Ctx::new(core, db);
                mine.into_iter()
                    .map(|(i, k)| (i, read(&mut ctx, &k)))
                    .collect::<Vec<_>>()
            })
            .await;
        for (i, v) in got {
            out[i] = Some(v);
        }
    }
    // The guard holds every key's shard, so every slot is filled.
    out.into_iter().flatten().collect()
}
