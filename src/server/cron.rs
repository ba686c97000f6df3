//! Each shard's periodic work, Redis's `serverCron` split per shard: the
//! active expiry cycle at `hz`, `maxmemory` eviction, the ops/sec sample,
//! the memory peak.
//! Runs as a low-priority task on the shard's executor.

use crate::keyspace::ActiveExpire;
use crate::node::Node;
use crate::shard::Shard;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Share of each cron period the expiry cycle may use (Redis: 25%).
const EXPIRE_CPU_SHARE: f64 = 0.25;

pub async fn run(node: Arc<Node>, shard: Rc<Shard>) {
    let mut expire = ActiveExpire::new();
    let mut last_sample = Instant::now();
    // Counters at the last sample, for the per-second rates.
    let (mut last_ops, mut last_input, mut last_output) = (0u64, 0u64, 0u64);
    let (mut last_repl_in, mut last_repl_out) = (0u64, 0u64);
    let mut last_save_check = Instant::now();
    let mut last_ping = Instant::now();
    let mut last_idle_check = Instant::now();
    let mut no_replicas_since = None;
    loop {
        let hz = node.config().hz().clamp(1, 500) as u64;
        let period = Duration::from_millis(1000 / hz);
        glommio::timer::sleep(period).await;
        let now_ms = crate::node::unix_ms();
        crate::keyspace::access::set_clock(now_ms);
        crate::node::refresh_coarse_ms(now_ms);
        if !shard.is_held_against(None) && node.memory.maxmemory() != 0 {
            shard.with_core(|core| crate::evict::cron(core, &node));
        }
        // tracking-table-max-keys: readers of dropped keys are told.
        // (The config is read only while some key is tracked.)
        let tracking_max = match crate::keyspace::track::tracked_keys() {
            0 => 0,
            _ => node
                .config()
                .int_value("tracking-table-max-keys")
                .unwrap_or(0),
        };
        if tracking_max > 0
            && crate::keyspace::track::tracked_keys() > tracking_max as usize
            && !shard.is_held_against(None)
        {
            shard.with_core(|core| {
                let mut over =
                    crate::keyspace::track::tracked_keys().saturating_sub(tracking_max as usize);
                for db in core.ks.dbs_mut() {
                    if over == 0 {
                        break;
                    }
                    over -= db.track.evict(over);
                }
            });
        }
        if !shard.is_held_against(None) && node.active_expire.load(Ordering::Relaxed) {
            let started = Instant::now();
            let budget = period.mul_f64(EXPIRE_CPU_SHARE);
            shard.with_core(|core| {
                let now = crate::node::unix_ms();
                expire.run_cycle(&mut core.ks, now, budget, Instant::now);
                if crate::notify::wants(crate::notify::class::EXPIRED | crate::notify::class::NEW) {
                    core.ks.publish_notes();
                }
                // Expired keys become DELs for replicas.
                crate::propagate::expired(core);
                core.stats.expire_cycle_us += started.elapsed().as_micros() as u64;
                crate::latency::sample_if_needed("expire-cycle", started.elapsed());
            });
        }
        if last_idle_check.elapsed() >= Duration::from_secs(1) {
            last_idle_check = Instant::now();
            close_idle_clients(&node, &shard, now_ms);
        }
        // The replication heartbeat, from shard 0.
        if shard.id == 0 {
            let period = node.config().repl_ping_period();
            if last_ping.elapsed() >= period {
                last_ping = Instant::now();
                crate::repl::master::heartbeat(&node, 0);
            }
            crate::repl::master::refresh_good_replicas(&node);
            crate::repl::master::expire_backlog(&node, &mut no_replicas_since).await;
            // A shrink put off while replicas lagged (see resize_backlog).
            crate::repl::master::resize_backlog(&node, false).await;
        }
        // Save points are checked once a second by shard 0, like Redis's
        // serverCron: `save <seconds> <changes>`.
        if shard.id == 0 && last_save_check.elapsed() >= Duration::from_secs(1) {
            last_save_check = Instant::now();
            check_save_points(&node).await;
            crate::persist::aof::rewrite::check_auto(&node);
        }
        let elapsed = last_sample.elapsed();
        if elapsed >= Duration::from_millis(100) {
            let per_sec = |now: u64, last: &mut u64| {
                let rate = (now.saturating_sub(*last) as f64 / elapsed.as_secs_f64()) as u64;
                *last = now;
                rate
            };
            shard.with_core(|core| {
                let s = &mut core.stats;
                s.instantaneous_ops = per_sec(s.commands_processed, &mut last_ops);
                s.instantaneous_input = per_sec(s.net_input_bytes, &mut last_input);
                s.instantaneous_output = per_sec(s.net_output_bytes, &mut last_output);
            });
            if shard.id == 0 {
                let r = &node.repl;
                let input = per_sec(r.net_input_bytes.load(Ordering::Relaxed), &mut last_repl_in);
                let output = per_sec(
                    r.net_output_bytes.load(Ordering::Relaxed),
                    &mut last_repl_out,
                );
                r.input_rate.store(input, Ordering::Relaxed);
                r.output_rate.store(output, Ordering::Relaxed);
            }
            last_sample = Instant::now();
            crate::alloc::allocated_bytes();
        }
    }
}

/// After a failed save, wait this long before a save point may retry
/// (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const SAVE_RETRY_DELAY_SECS: i64 = 5;

/// Starts a background save when a `save` point is reached.
async fn check_save_points(node: &Arc<Node>) {
    // A shutdown saves on its own; a background save now would only
    // delay it.
    if node.bgsave_in_progress.load(Ordering::Relaxed) || node.shutdown.running() {
        return;
    }
    let points = node.config().save_points();
    if points.is_empty() {
        return;
    }
    let dirty: u64 = crate::shard::gather(|core| core.stats.dirty)
        .await
        .into_iter()
        .sum();
    let now = (crate::node::unix_ms() / 1000) as i64;
    let since = now - node.last_save_unix.load(Ordering::Relaxed);
    let failed_recently =
        !node.last_save_ok.load(Ordering::Relaxed) && since < SAVE_RETRY_DELAY_SECS;
    if failed_recently {
        return;
    }
    if let Some((secs, changes)) = points
        .iter()
        .find(|(secs, changes)| dirty >= *changes && since >= *secs as i64)
    {
        tracing::info!("{changes} changes in {secs} seconds. Saving...");
        let node = node.clone();
        glommio::spawn_local(async move {
            let _ = crate::cmd::server::bgsave_dataset(&node).await;
        })
        .detach();
    }
}

/// `timeout`: closes this shard's clients idle for longer, as Redis's
/// client cron does. Replicas, masters, MONITOR and pub/sub clients and
/// clients blocked in a command are left alone, like Redis leaves them.
fn close_idle_clients(node: &Node, shard: &Shard, now_ms: u64) {
    let timeout_ms = node.config().timeout().saturating_mul(1000);
    if timeout_ms == 0 {
        return;
    }
    shard.with_core(|core| {
        for info in core.clients.values() {
            let mut c = info.borrow_mut();
            let exempt = c.blocked.is_some() || c.flags.contains(['S', 'M', 'O', 'P']);
            if !exempt && !c.killed && now_ms.saturating_sub(c.last_interaction_ms) > timeout_ms {
                tracing::debug!("Closing idle client");
                c.kill();
            }
        }
    });
}
