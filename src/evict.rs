//! `maxmemory`: keeping the dataset under the memory limit the way Redis
//! does, by deleting keys `maxmemory-policy` chooses, or refusing commands
//! that may grow memory (`-OOM`) when nothing can be evicted.
//!
//! Owns the cached eviction settings ([`MemoryLimit`], read on every
//! command without touching the config lock), the eviction counters of
//! `INFO stats`, and [`perform`], Redis's performEvictions for one shard.
//!
//! Memory is the process's (`used_memory`, all shards together), keys are
//! per shard: each shard evicts only its own keys. Before a command, the
//! connection's shard evicts ([`before_command`]); every shard's cron also
//! evicts while the process is over the limit, so all shards give up keys
//! in turn. A shard that has no victim left says so (`starved`), and a
//! command is refused only when every shard is starved, as Redis refuses
//! only when its one keyspace has no victim. An evicted key becomes a `DEL`
//! (`UNLINK` with `lazyfree-lazy-eviction yes`) in the replication stream
//! and the AOF, through `crate::propagate`.
//!
//! Replicas do not evict with `replica-ignore-maxmemory yes` (the default):
//! their master's `DEL`s keep them in step. Nothing is evicted while the
//! dataset loads or while client writes are paused.
//!
//! May use the keyspace (through `keyspace::evict`), the shard core,
//! propagation and the config; it is called by the command path and the
//! cron, never the reverse.

use crate::config::Config;
use crate::keyspace::access;
use crate::keyspace::evict::Policy;
use crate::node::Node;
use crate::shard::ShardCore;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The `maxmemory*` settings hot paths read, and the eviction counters.
pub struct MemoryLimit {
    maxmemory: AtomicU64,
    /// `repl-backlog-size`: the part of the ring that counts.
    backlog_size: AtomicU64,
    policy: AtomicU32,
    samples: AtomicU32,
    tenacity: AtomicU32,
    replica_ignore: AtomicBool,
    lazy: AtomicBool,
    /// Keys evicted since start (or CONFIG RESETSTAT): `evicted_keys`.
    evicted: AtomicU64,
    /// Per shard: its last eviction attempt found no victim.
    starved: Vec<AtomicBool>,
    /// Per shard: an eviction job is queued there (see [`request`]).
    requested: Vec<AtomicBool>,
    /// Per shard: the rank of its chosen victim plus one (0: none), see
    /// `Evictor::choose`. The shard with the best victim evicts.
    rank: Vec<AtomicU64>,
    /// Unix ms since when the process has been over the limit, 0 if not;
    /// and the total over-limit time of earlier episodes, for INFO's
    /// `current_eviction_exceeded_time` / `total_eviction_exceeded_time`.
    over_since_ms: AtomicU64,
    over_total_ms: AtomicU64,
}

/// What [`perform`] achieved, as Redis's EVICT_OK / EVICT_RUNNING /
/// EVICT_FAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or eviction does not apply).
    Ok,
    /// Still over, but keys remain to evict: the crons go on.
    Running,
    /// Over the limit and nothing this shard may evict.
    Fail,
}

/// Redis's reply to a command refused for memory.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

impl MemoryLimit {
    pub fn new(shards: usize) -> Self {
        MemoryLimit {
            maxmemory: AtomicU64::new(0),
            backlog_size: AtomicU64::new(1 << 20),
            policy: AtomicU32::new(7),
            samples: AtomicU32::new(5),
            tenacity: AtomicU32::new(10),
            replica_ignore: AtomicBool::new(true),
            lazy: AtomicBool::new(false),
            evicted: AtomicU64::new(0),
            starved: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            requested: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            rank: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            over_since_ms: AtomicU64::new(0),
            over_total_ms: AtomicU64::new(0),
        }
    }

    /// Copies the settings from the config (at start and after CONFIG
    /// SET), and tells the keyspace how to stamp accesses.
    pub fn refresh(&self, cfg: &Config) {
        let num = |name: &str, default: i64| cfg.int_value(name).unwrap_or(default);
        let policy = Policy::from_name(&cfg.maxmemory_policy());
        let maxmemory = cfg.maxmemory();
        self.maxmemory.store(maxmemory, Relaxed);
        self.backlog_size.store(cfg.repl_backlog_size(), Relaxed);
        self.policy.store(policy.id(), Relaxed);
        self.samples.store(
            num("maxmemory-samples", 5).clamp(1, 1 << 16) as u32,
            Relaxed,
        );
        self.tenacity.store(
            num("maxmemory-eviction-tenacity", 10).clamp(0, 100) as u32,
            Relaxed,
        );
        self.replica_ignore
            .store(cfg.bool_value("replica-ignore-maxmemory"), Relaxed);
        self.lazy
            .store(cfg.bool_value("lazyfree-lazy-eviction"), Relaxed);
        access::set_mode(
            policy.is_lfu(),
            num("lfu-log-factor", 10).clamp(0, u32::MAX as i64) as u32,
            num("lfu-decay-time", 1).clamp(0, u32::MAX as i64) as u32,
        );
        access::set_evicts_by_access(maxmemory != 0 && policy.by_access());
    }

    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Relaxed)
    }

    pub fn policy(&self) -> Policy {
        Policy::from_id(self.policy.load(Relaxed))
    }

    /// Keys evicted (`evicted_keys`).
    pub fn evicted_keys(&self) -> u64 {
        self.evicted.load(Relaxed)
    }

    /// (`current_eviction_exceeded_time`, `total_eviction_exceeded_time`)
    /// in ms.
    pub fn exceeded_times(&self, now_ms: u64) -> (u64, u64) {
        let since = self.over_since_ms.load(Relaxed);
        let current = if since == 0 {
            0
        } else {
            now_ms.saturating_sub(since)
        };
        (current, self.over_total_ms.load(Relaxed) + current)
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        self.evicted.store(0, Relaxed);
        self.over_total_ms.store(0, Relaxed);
    }

    /// Redis's evictionTimeLimitUs: how long one call may evict, from
    /// `maxmemory-eviction-tenacity`; `None` is no limit.
    fn time_limit_us(&self) -> Option<u64> {
        let t = self.tenacity.load(Relaxed);
        match t {
            0..=10 => Some(50 * u64::from(t)),
            11..=99 => Some((500.0 * 1.15f64.powi(t as i32 - 10)) as u64),
            _ => None,
        }
    }

    /// The shard whose chosen victim ranks above `mine` (both plus one),
    /// if any: the best one.
    fn better_shard(&self, me: usize, mine: u64) -> Option<usize> {
        self.rank
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me && !self.starved[*i].load(Relaxed))
            .map(|(i, r)| (r.load(Relaxed), i))
            .filter(|(r, _)| *r > mine)
            .max()
            .map(|(_, i)| i)
    }

    /// Whether some shard other than `me` may still have a victim.
    fn others_have_victims(&self, me: usize) -> bool {
        self.starved
            .iter()
            .enumerate()
            .any(|(i, s)| i != me && !s.load(Relaxed))
    }

    /// Starts or ends an over-the-limit episode (the clock is read only
    /// when one starts or ends).
    fn note_over(&self, over: bool) {
        if over == (self.over_since_ms.load(Relaxed) != 0) {
            return;
        }
        let now = crate::node::unix_ms().max(1);
        if over {
            let _ = self
                .over_since_ms
                .compare_exchange(0, now, Relaxed, Relaxed);
        } else {
            let since = self.over_since_ms.swap(0, Relaxed);
            if since != 0 {
                self.over_total_ms
                    .fetch_add(now.saturating_sub(since), Relaxed);
            }
        }
    }

    /// Publishes this shard's chosen victim's rank (or that it has none).
    fn publish_rank(&self, me: usize, rank: Option<u64>) {
        self.starved[me].store(rank.is_none(), Relaxed);
        self.rank[me].store(rank.map_or(0, |r| r.saturating_add(1)), Relaxed);
    }
}

/// Over the limit right now (cheap: a few relaxed loads). False without a
/// limit. Not counted, as Redis does not count them: what a running
/// snapshot holds (Redis's fork's copy-on-write; evicting a key the
/// snapshot still needs frees nothing), and the replication ring beyond
/// `repl-backlog-size` (the ring has a minimum size of its own, and
/// Redis leaves replication buffers beyond the backlog out).
#[inline]
pub fn over_limit(node: &Node) -> bool {
    let max = node.memory.maxmemory();
    max != 0 && crate::alloc::used_bytes().saturating_sub(not_counted(node)) > max
}

/// What [`over_limit`] leaves out of `used_memory` now (INFO's
/// `mem_not_counted_for_evict`).
pub fn not_counted(node: &Node) -> u64 {
    node.snapshot_progress.held_now() as u64 + ring_excess(node)
}

/// The ring's bytes beyond `repl-backlog-size`.
fn ring_excess(node: &Node) -> u64 {
    node.repl
        .ring_capacity
        .load(Relaxed)
        .saturating_sub(node.memory.backlog_size.load(Relaxed))
}

/// Used memory as eviction counts it, from `core`'s shard: without the
/// ring beyond `repl-backlog-size` and what the snapshot holds (this
/// shard's measured now, the others' as they last reported).
fn counted_bytes(core: &ShardCore, node: &Node) -> u64 {
    let used = crate::alloc::used_bytes().saturating_sub(ring_excess(node));
    if !node.snapshot_running.load(Relaxed) {
        return used;
    }
    let held = node.snapshot_progress.cow_of_others(core.id) + core.ks.snapshot_extra_bytes();
    used.saturating_sub(held as u64)
}

/// Redis's isSafeToPerformEvictions.
fn may_evict(node: &Node) -> bool {
    if node.loading.load(Relaxed) {
        return false;
    }
    if node.repl.is_replica.load(Relaxed) && node.memory.replica_ignore.load(Relaxed) {
        return false;
    }
    let paused = node.pause_until_ms.load(Relaxed) > crate::node::unix_ms()
        || node.failover_writes_paused.load(Relaxed)
        || node.shutdown.writes_paused.load(Relaxed);
    !paused
}

/// Evicts this shard's keys until the process is under `maxmemory`, this
/// shard has no victim left, or the time limit passes (Redis's
/// performEvictions, for one shard's keys). When another shard holds a
/// better victim (older, rarer, nearer its expiry, or, for the random
/// policies, a shard with more keys) that shard is asked to evict instead,
/// so the node evicts as one keyspace would, and no shard is emptied
/// because its clients happen to write the most.
pub fn perform(core: &mut ShardCore, node: &Arc<Node>) -> Outcome {
    let limit = &node.memory;
    let max = limit.maxmemory();
    if max == 0 || !may_evict(node) {
        return Outcome::Ok;
    }
    if counted_bytes(core, node) <= max {
        limit.note_over(false);
        return Outcome::Ok;
    }
    limit.note_over(true);
    let policy = limit.policy();
    let samples = limit.samples.load(Relaxed) as usize;
    let time_limit = limit.time_limit_us();
    let lazy = limit.lazy.load(Relaxed);
    let started = Instant::now();
    let mut freed = 0u64;
    let me = core.id;
    // A shard that never ranked its victims is asked to (it may have
    // better ones); this shard goes on meanwhile.
    for other in 0..limit.rank.len() {
        if other != me
            && limit.rank[other].load(Relaxed) == 0
            && !limit.starved[other].load(Relaxed)
        {
            request(node, other);
        }
    }
    loop {
        let rank = core.evictor.choose(&core.ks, policy, samples);
        limit.publish_rank(me, rank);
        let Some(rank) = rank else {
            return Outcome::Fail;
        };
        if let Some(better) = limit.better_shard(me, rank.saturating_add(1)) {
            request(node, better);
            return Outcome::Running;
        }
        let Some(victim) = core.evictor.evict_chosen(&mut core.ks) else {
            continue;
        };
        freed += 1;
        limit.evicted.fetch_add(1, Relaxed);
        let verb: &[u8] = if lazy { b"UNLINK" } else { b"DEL" };
        crate::propagate::command(core, victim.db, &[verb, &victim.key[..]]);
        crate::notify::emit(
            crate::notify::class::EVICTED,
            "evicted",
            &victim.key,
            victim.db,
        );
        if lazy && !matches!(victim.value, crate::keyspace::Value::Str(_)) {
            // A collection may hold many allocations: freed off the shard.
            crate::keyspace::lazyfree::free_later(victim.value, 1);
        }
        if counted_bytes(core, node) <= max {
            limit.note_over(false);
            return Outcome::Ok;
        }
        // As Redis, the clock is read every 16 keys.
        if freed.is_multiple_of(16)
            && time_limit.is_some_and(|l| started.elapsed().as_micros() as u64 > l)
        {
            return Outcome::Running;
        }
    }
}

/// The check before a command on the connection's shard:
/// evicts if the process is over the limit, and says whether a command
/// that may grow memory must be refused. Not refused while another shard
/// may still have victims: it is asked to evict now, and the crons go on.
pub fn before_command(node: &Arc<Node>, shard: &crate::shard::Shard) -> Outcome {
    if !over_limit(node) {
        return Outcome::Ok;
    }
    let outcome = if shard.is_busy() {
        // Held by a multi-shard command: its keys are not ours to touch
        // now. Queue the eviction behind the hold.
        request(node, shard.id);
        Outcome::Running
    } else {
        let started = std::time::Instant::now();
        let outcome = shard.with_core(|core| perform(core, node));
        crate::latency::sample_if_needed("eviction-cycle", started.elapsed());
        outcome
    };
    if outcome != Outcome::Fail {
        return outcome;
    }
    if node.memory.others_have_victims(shard.id) {
        for other in 0..node.shards() {
            if other != shard.id {
                request(node, other);
            }
        }
        return Outcome::Running;
    }
    Outcome::Fail
}

/// The cron's share, every tick on every shard: evicts while over the
/// limit, and near it (within 10%) keeps this shard's rank fresh, so the
/// shard that evicts next compares with current victims of the others.
pub fn cron(core: &mut ShardCore, node: &Arc<Node>) {
    let limit = &node.memory;
    let max = limit.maxmemory();
    if max == 0 || !may_evict(node) {
        return;
    }
    if perform(core, node) != Outcome::Ok || counted_bytes(core, node) < max - max / 10 {
        return;
    }
    let rank = core.evictor.choose(
        &core.ks,
        limit.policy(),
        limit.samples.load(Relaxed) as usize,
    );
    limit.publish_rank(core.id, rank);
}

/// Asks every shard to evict now if the process is over the limit (a
/// lowered `maxmemory`).
pub fn request_everywhere(node: &Arc<Node>) {
    if over_limit(node) {
        for shard in 0..node.shards() {
            request(node, shard);
        }
    }
}

/// Asks shard `target` to evict as soon as it can (at most one request
/// queued per shard).
fn request(node: &Arc<Node>, target: usize) {
    let Some(queued) = node.memory.requested.get(target) else {
        return;
    };
    if queued.swap(true, Relaxed) {
        return;
    }
    let node = node.clone();
    crate::shard::post(target, move |core| {
        node.memory.requested[target].store(false, Relaxed);
        perform(core, &node);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_and_ids_follow_the_config_table() {
        for &(name, id) in crate::config::table::MAXMEMORY_POLICY {
            assert_eq!(Policy::from_name(name).id(), id, "{name}");
            assert_eq!(Policy::from_id(id).id(), id, "{name}");
        }
    }
}
