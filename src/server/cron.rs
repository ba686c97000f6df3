//! Each shard's periodic work, Redis's `serverCron` split per shard: the
//! active expiry cycle at `hz`, the ops/sec sample, the memory peak.
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
    let mut last_ops = 0u64;
    loop {
        let hz = node.config().hz().clamp(1, 500) as u64;
        let period = Duration::from_millis(1000 / hz);
        glommio::timer::sleep(period).await;
        if !shard.is_held_against(None) && node.active_expire.load(Ordering::Relaxed) {
            let started = Instant::now();
            let budget = period.mul_f64(EXPIRE_CPU_SHARE);
            shard.with_core(|core| {
                let now = crate::node::unix_ms();
                expire.run_cycle(&mut core.ks, now, budget, Instant::now);
                // Expired keys become DELs for replicas once replication
                // lands; until then the log only needs emptying.
                core.ks.drain_expired();
                core.stats.expire_cycle_us += started.elapsed().as_micros() as u64;
            });
        }
        let elapsed = last_sample.elapsed();
        if elapsed >= Duration::from_millis(100) {
            shard.with_core(|core| {
                let ops = core.stats.commands_processed;
                core.stats.instantaneous_ops =
                    ((ops.saturating_sub(last_ops)) as f64 / elapsed.as_secs_f64()) as u64;
                last_ops = ops;
            });
            last_sample = Instant::now();
            crate::alloc::allocated_bytes();
        }
    }
}
