//! Per-key access stamps: what `maxmemory` eviction ranks keys by, and what
//! `OBJECT IDLETIME` / `OBJECT FREQ` report.
//!
//! Owns the 32-bit stamp every dict entry carries (see `dict.rs`), its two
//! meanings, and the process-wide settings that choose between them:
//! - LRU (every policy except the `*-lfu` ones): the coarse clock of the
//!   last access, in seconds modulo 2^24 (Redis's `LRU_CLOCK`, resolution
//!   1000 ms). The idle time is the distance to the clock now.
//! - LFU (`allkeys-lfu`, `volatile-lfu`): the minute of the last decrement
//!   (16 bits) and a logarithmic access counter (8 bits), as Redis's LFU:
//!   an access first decays the counter by one per `lfu-decay-time`
//!   minutes elapsed, then increments it with probability
//!   `1 / ((counter - 5) * lfu-log-factor + 1)`. New keys start at 5 so they
//!   are not evicted before they had a chance to be used.
//!
//! Like Redis, the stamp is interpreted with the policy in force when it is
//! read: switching between LRU and LFU at run time makes old stamps
//! meaningless until keys are accessed again.
//!
//! The clock is a cached unix-milliseconds value the shards' crons refresh
//! (as Redis's cron refreshes `server.lruclock`), so stamping never reads
//! the system clock. Depends on std only; no I/O.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Redis's LRU_CLOCK_MAX: the LRU clock wraps at 2^24 seconds (194 days).
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Redis's LFU_INIT_VAL: the counter of a new key.
pub const LFU_INIT_VAL: u8 = 5;

static LFU: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_MINUTES: AtomicU32 = AtomicU32::new(1);
static CLOCK_MS: AtomicU64 = AtomicU64::new(0);
static EVICTS_BY_ACCESS: AtomicBool = AtomicBool::new(false);

/// How stamps are kept, from `maxmemory-policy`, `lfu-log-factor` and
/// `lfu-decay-time` (the server sets it at start and on CONFIG SET).
pub fn set_mode(lfu: bool, log_factor: u32, decay_minutes: u32) {
    LFU_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    LFU_DECAY_MINUTES.store(decay_minutes, Ordering::Relaxed);
    LFU.store(lfu, Ordering::Relaxed);
}

/// Whether eviction ranks keys by their stamps now (`maxmemory` set and an
/// LRU or LFU policy). Redis then stops sharing its small integer objects,
/// which `OBJECT REFCOUNT` shows.
pub fn set_evicts_by_access(on: bool) {
    EVICTS_BY_ACCESS.store(on, Ordering::Relaxed);
}

/// Whether a small integer value would be one of Redis's shared objects
/// (see [`set_evicts_by_access`]).
pub fn integers_shared() -> bool {
    !EVICTS_BY_ACCESS.load(Ordering::Relaxed)
}

/// Whether stamps are LFU counters (else LRU clocks).
pub fn is_lfu() -> bool {
    LFU.load(Ordering::Relaxed)
}

/// Refreshes the cached clock (unix ms); called by every shard's cron and
/// at start. The clock never goes back, whoever calls.
pub fn set_clock(now_ms: u64) {
    CLOCK_MS.fetch_max(now_ms, Ordering::Relaxed);
}

/// Sets the cached clock exactly, backwards too (tests).
#[cfg(test)]
pub fn set_clock_exact(now_ms: u64) {
    CLOCK_MS.store(now_ms, Ordering::Relaxed);
}

fn clock_ms() -> u64 {
    CLOCK_MS.load(Ordering::Relaxed)
}

fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_CLOCK_MAX
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

/// The stamp of a key created now.
#[inline]
pub fn fresh() -> u32 {
    let now = clock_ms();
    if is_lfu() {
        (lfu_minutes(now) << 8) | u32::from(LFU_INIT_VAL)
    } else {
        lru_clock(now)
    }
}

/// Records an access to a key (a command looked it up).
#[inline]
pub fn touch(stamp: &mut u32) {
    let now = clock_ms();
    if is_lfu() {
        let counter = log_incr(decayed_counter(*stamp, now));
        *stamp = (lfu_minutes(now) << 8) | u32::from(counter);
    } else {
        *stamp = lru_clock(now);
    }
}

/// The stamp of a key last accessed `secs` ago, from a dump's IDLE opcode;
/// `None` under an LFU policy (the stamp stays fresh), as Redis's
/// objectSetLRUOrLFU.
pub fn stamp_for_idle(secs: u64) -> Option<u32> {
    if is_lfu() {
        return None;
    }
    let clock = lru_clock(clock_ms());
    let idle = (secs.min(u64::from(LRU_CLOCK_MAX))) as u32;
    Some(if clock >= idle {
        clock - idle
    } else {
        clock + LRU_CLOCK_MAX - idle
    })
}

/// The stamp of a key with LFU counter `counter`, from a dump's FREQ
/// opcode; `None` under an LRU policy.
pub fn stamp_for_freq(counter: u8) -> Option<u32> {
    is_lfu().then(|| (lfu_minutes(clock_ms()) << 8) | u32::from(counter))
}

/// Milliseconds since the key's last access, read as an LRU stamp (Redis's
/// estimateObjectIdleTime, wrap-around included).
pub fn idle_ms(stamp: u32) -> u64 {
    let clock = lru_clock(clock_ms());
    let stamp = stamp & LRU_CLOCK_MAX;
    let secs = if clock >= stamp {
        clock - stamp
    } else {
        clock + (LRU_CLOCK_MAX - stamp)
    };
    u64::from(secs) * 1000
}

/// The key's access counter read as an LFU stamp, decayed to now (what
/// `OBJECT FREQ` reports; Redis's LFUDecrAndReturn).
pub fn frequency(stamp: u32) -> u8 {
    decayed_counter(stamp, clock_ms())
}

fn decayed_counter(stamp: u32, now_ms: u64) -> u8 {
    let last = stamp >> 8;
    let counter = (stamp & 0xFF) as u8;
    let decay = LFU_DECAY_MINUTES.load(Ordering::Relaxed);
    if decay == 0 {
        return counter;
    }
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last {
        now - last
    } else {
        0xFFFF - last + now
    };
    let periods = elapsed / decay;
    counter.saturating_sub(periods.min(255) as u8)
}

fn log_incr(counter: u8) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let factor = f64::from(LFU_LOG_FACTOR.load(Ordering::Relaxed));
    let p = 1.0 / (base * factor + 1.0);
    if unit_random() < p {
        counter + 1
    } else {
        counter
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(crate::keyspace::dict::random_seed());
}

/// Makes this thread's counter increments repeatable (tests).
#[cfg(test)]
pub fn seed_rng(seed: u64) {
    RNG.with(|s| s.set(seed));
}

/// A uniform draw in [0, 1) from a per-thread generator.
fn unit_random() -> f64 {
    RNG.with(|s| {
        let mut v = s.get();
        let r = crate::keyspace::dict::rand_next(&mut v);
        s.set(v);
        (r >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// How good an eviction candidate a key with this stamp is: higher is
/// evicted first. LRU: idle time; LFU: 255 minus the decayed counter.
pub fn eviction_score(stamp: u32) -> u64 {
    if is_lfu() {
        255 - u64::from(frequency(stamp))
    } else {
        idle_ms(stamp)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The mode and clock are process-wide: tests that change them run
    /// one at a time and put LRU back.
    pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

    const MIN: u64 = 60_000;

    #[test]
    fn lru_idle_time_counts_seconds_and_survives_the_wrap() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_mode(false, 10, 1);
        set_clock_exact(1_000_000_000_000);
        let mut s = fresh();
        assert_eq!(idle_ms(s), 0);
        set_clock_exact(1_000_000_042_500);
        assert_eq!(idle_ms(s), 42_000);
        touch(&mut s);
        assert_eq!(idle_ms(s), 0);
        // A stamp from just before the clock wrapped.
        let old = LRU_CLOCK_MAX - 10;
        let now = lru_clock(clock_ms());
        assert_eq!(idle_ms(old), u64::from(now + 10) * 1000);
    }

    #[test]
    fn lfu_counter_starts_at_five_grows_logarithmically_and_decays() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_mode(true, 10, 1);
        let t0 = 2_000_000_000_000u64;
        set_clock_exact(t0);
        seed_rng(42);
        let mut s = fresh();
        assert_eq!(frequency(s), LFU_INIT_VAL);
        for _ in 0..100 {
            touch(&mut s);
        }
        let after_100 = frequency(s);
        assert!(
            (8..=20).contains(&after_100),
            "100 hits with log factor 10 give a counter near 10-ish, got {after_100}"
        );
        // A million hits saturate only near Redis's table (log factor 10: ~1M -> 255).
        for _ in 0..200_000 {
            touch(&mut s);
        }
        let hot = frequency(s);
        assert!(hot > after_100 && hot < 255, "got {hot}");
        // Ten minutes idle with decay 1: ten less.
        set_clock_exact(t0 + 10 * MIN);
        assert_eq!(frequency(s), hot - 10);
        // Decay time 0 disables decay.
        set_mode(true, 10, 0);
        assert_eq!(frequency(s), hot);
        set_mode(false, 10, 1);
    }

    #[test]
    fn scores_rank_idle_and_rare_keys_first() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_mode(false, 10, 1);
        let t0 = 3_000_000_000_000u64;
        set_clock_exact(t0);
        let old = fresh();
        set_clock_exact(t0 + 5_000);
        let new = fresh();
        assert!(eviction_score(old) > eviction_score(new));
        set_mode(true, 0, 1);
        seed_rng(7);
        let mut rare = fresh();
        let mut hot = fresh();
        touch(&mut rare);
        for _ in 0..50 {
            touch(&mut hot);
        }
        assert!(eviction_score(rare) > eviction_score(hot));
        set_mode(false, 10, 1);
    }
}
