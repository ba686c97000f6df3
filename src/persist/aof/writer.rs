//! The AOF writer: one dedicated thread that moves the feed's bytes into
//! the current incr file and fsyncs it as `appendfsync` says.
//!
//! # Why a thread and not glommio file I/O on a shard
//! `fsync` is the slow part (milliseconds on this disk) and under
//! `always` every write waits for one; the shards must keep serving
//! meanwhile and keep appending to the feed, so that the next fsync covers
//! the whole group (group commit). A dedicated thread does exactly that
//! with plain `write(2)`/`fdatasync(2)`: it blocks nobody but itself, it is
//! woken through a condvar only when it sleeps (and under `everysec`/`no`
//! not at all while writes flow: see [`PACE`]), and it avoids glommio's DMA
//! file quirks on this disk (see GLOMMIO.md: `EOPNOTSUPP` when the first
//! DMA file is empty, which an empty new incr file always is). Shards only
//! copy bytes into the feed; clients under `always` await
//! [`super::feed::Durable`], woken from this thread.
//!
//! Policies: `always` fsyncs after every batch before advancing the
//! durable offset; `everysec` fsyncs at most once a second when something
//! was written (Redis does that in a background thread; here the writer is
//! already one); `no` leaves flushing to the kernel.
//!
//! # Errors
//! As Redis's `flushAppendOnlyFile`: a short write is cut off the file
//! again (`ftruncate`, so no half command stays in it) and counts as
//! `ENOSPC`. Under `always` a write error is fatal (the acknowledged-write
//! promise could not be kept); otherwise the bytes stay pending and are
//! retried (at least every second) while [`super::Health`] makes
//! `aof_last_write_status` say `err` and write commands get `-MISCONF
//! Errors writing to the AOF file: <strerror>`, until a write succeeds
//! ("AOF write error looks solved, Redis can write again."). A failed
//! `everysec` fsync refuses writes the same way until one succeeds, as
//! Redis's background fsync job does. Errors are logged at most every
//! 30 seconds.
//!
//! # `aof_pending_bio_fsync` and `aof_delayed_fsync` on one thread
//! Redis queues the `everysec` fsync to a background (bio) thread and,
//! while it runs, postpones writing its buffer for up to two seconds;
//! after that it writes anyway and counts `aof_delayed_fsync`. Here the
//! write and the fsync run one after the other on this thread, so bytes
//! appended during an fsync wait for it (the shards never do: they only
//! append to the feed). The honest mapping: `aof_pending_bio_fsync` is 1
//! while an `everysec` fsync runs (0 otherwise: nothing is ever queued
//! behind it), and `aof_delayed_fsync` counts the `everysec` fsyncs that
//! kept appended bytes waiting at least two seconds — the moments Redis
//! would have given up waiting. `always` fsyncs inline in Redis too and
//! counts neither.
//!
//! Owns the open incr file. May not touch the manifest (the rewrite does,
//! see [`super::rewrite`]) or the keyspace.

use super::{Active, Fsync};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the writer lets a group grow before its fsync under `always`
/// when several clients wait. Measured on this VM's disk (fdatasync about
/// 0.3 ms), redis-benchmark SET, 50 clients: 0 µs 11–12k/s, 50 µs 12.5k,
/// 100–150 µs 14–17k, 300 µs 13k.
const GATHER: Duration = Duration::from_micros(100);

/// Under `everysec` and `no`, while writes keep coming, the writer takes
/// what accumulated every `PACE` instead of being woken for each append:
/// a wake-up per command batch (a futex call and two context switches,
/// on the shard's core when pinned) cost more than the write itself.
/// Redis writes its buffer before it replies; here an acknowledged write
/// reaches the file within `PACE`, so a killed process (not a crashed
/// host, where `everysec` allows a second) may lose that much.
const PACE: Duration = Duration::from_millis(1);
/// How long after the last bytes taken the writer keeps pacing, before it
/// sleeps until an append wakes it (an idle server's writer sleeps).
const PACE_FOR: Duration = Duration::from_millis(100);

/// Starts the writer thread. `file`: the incr file to append to, when the
/// AOF continues an existing one (otherwise the first switch brings it).
pub fn spawn(active: Arc<Active>, file: Option<File>) -> std::io::Result<()> {
    let handle = std::thread::Builder::new()
        .name("cascade-aof".into())
        .spawn(move || run(&active, file))?;
    drop(handle);
    Ok(())
}

/// How long Redis lets a write wait for a running `everysec` fsync
/// before it counts a delayed fsync.
const MAX_POSTPONE: Duration = Duration::from_secs(2);
/// Seconds between two logs of a failing write (AOF_WRITE_LOG_ERROR_RATE).
const ERROR_LOG_EVERY: Duration = Duration::from_secs(30);

fn run(active: &Active, mut file: Option<File>) {
    let health = &active.health;
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
    // Feed offset of pending[0].
    let mut pending_start = 0u64;
    let mut last_fsync = Instant::now();
    let mut unsynced = false;
    // When the last `everysec` fsync started and ended.
    let mut last_everysec: Option<(Instant, Instant)> = None;
    let mut last_error_log: Option<Instant> = None;
    // When bytes were last taken from the feed (see PACE).
    let mut last_taken: Option<Instant> = None;
    loop {
        let failing = health.write_failing();
        let wait = if unsynced && !failing {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let was_empty = pending.is_empty();
        // Group commit: with several clients waiting for the last fsync,
        // more writes are on their way; letting them join costs a little
        // latency and saves whole fsyncs.
        let gather = match active.durable.policy() {
            Fsync::Always if active.durable.waiting() > 1 => GATHER,
            _ => Duration::ZERO,
        };
        let pace = match active.durable.policy() {
            Fsync::Always => None,
            _ => last_taken.filter(|t| t.elapsed() < PACE_FOR).map(|_| PACE),
        };
        let before = pending.len();
        let taken = active.feed.take(&mut pending, wait, gather, pace);
        if pending.len() > before {
            last_taken = Some(Instant::now());
        }
        if was_empty {
            pending_start = taken.start;
        }
        if let (Some(since), Some(fsync)) = (taken.since, last_everysec.take()) {
            if let Some(waited) = delayed_by_fsync(since, fsync) {
                health.delayed_fsync.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "Asynchronous AOF fsync is taking too long (disk is busy?). The AOF buffer waited {:.1} s for it to complete.",
                    waited.as_secs_f64()
                );
            }
        }
        if let Some(switch) = taken.switch {
            // Bytes before the switch belong to the old file.
            let split = (switch.at.saturating_sub(pending_start) as usize).min(pending.len());
            if let Some(f) = file.as_mut() {
                if split > 0 && write_some(active, f, &pending[..split]).1.is_err() {
                    tracing::warn!(
                        "Error writing to the AOF file before switching to {}; the rest of the old file is lost",
                        switch.name
                    );
                }
                let _ = f.sync_data();
            }
            pending.drain(..split);
            pending_start += split as u64;
            active.incr_written.store(0, Ordering::Relaxed);
            file = Some(switch.file);
            unsynced = false;
        }
        if !pending.is_empty() {
            if let Some(f) = file.as_mut() {
                let (done, result) = write_once(active, f, &pending, &mut last_error_log);
                pending.drain(..done);
                pending_start += done as u64;
                match result {
                    Ok(()) => {
                        unsynced = true;
                        if health.write_failing() {
                            tracing::warn!("AOF write error looks solved, Redis can write again.");
                            health.set_write_errno(0);
                        }
                    }
                    Err(errno) => {
                        if active.durable.policy() == Fsync::Always {
                            tracing::warn!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                            std::process::exit(1);
                        }
                        health.set_write_errno(errno);
                        unsynced |= done > 0;
                    }
                }
            }
        }
        // `no-appendfsync-on-rewrite yes`: while a rewrite writes its base,
        // behave as `no` (acknowledged writes are then not durable: the
        // trade Redis documents for that option).
        let policy = if active.rewriting.load(Ordering::Relaxed)
            && active.no_fsync_on_rewrite.load(Ordering::Relaxed)
        {
            Fsync::No
        } else {
            active.durable.policy()
        };
        let written = pending_start;
        let due = match policy {
            Fsync::Always => unsynced,
            Fsync::Everysec => unsynced && last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        if due || (taken.stop && unsynced) {
            if let Some(f) = file.as_ref() {
                let everysec = policy == Fsync::Everysec && !taken.stop;
                let started = Instant::now();
                if everysec {
                    health.fsync_running.store(1, Ordering::Relaxed);
                }
                let synced = f.sync_data();
                if policy == Fsync::Always {
                    crate::latency::sample_if_needed("aof-fsync-always", started.elapsed());
                }
                if everysec {
                    health.fsync_running.store(0, Ordering::Relaxed);
                    last_everysec = Some((started, Instant::now()));
                }
                match synced {
                    Err(e) => {
                        if policy == Fsync::Always {
                            tracing::warn!("Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...", crate::config::strerror(&e));
                            std::process::exit(1);
                        }
                        let errno = e.raw_os_error().unwrap_or(libc::EIO);
                        // EBADF/EINVAL: a file that cannot be synced, which
                        // Redis's fsync job ignores.
                        if errno != libc::EBADF
                            && errno != libc::EINVAL
                            && health.set_fsync_errno(errno)
                        {
                            tracing::warn!(
                                "Fail to fsync the AOF file: {}",
                                crate::config::strerror(&e)
                            );
                        }
                    }
                    Ok(()) => {
                        health.set_fsync_errno(0);
                        unsynced = false;
                        last_fsync = Instant::now();
                    }
                }
            }
        }
        if policy != Fsync::Always || !unsynced {
            active.durable.advance(written);
        }
        if taken.stop && pending.is_empty() {
            active.durable.close();
            active.stopped.store(true, Ordering::SeqCst);
            return;
        }
        if taken.stop && health.write_failing() {
            // Stopping with bytes the disk refuses: Redis closes the file
            // and drops its buffer when the AOF is turned off.
            tracing::warn!(
                "Dropping {} bytes of the AOF buffer the disk refused",
                pending.len()
            );
            pending.clear();
        }
    }
}

/// How long bytes appended at `since` waited for the `everysec` fsync
/// that ran from `fsync.0` to `fsync.1`, when that is at least
/// [`MAX_POSTPONE`] (Redis would have stopped postponing the write then
/// and counted a delayed fsync).
fn delayed_by_fsync(since: Instant, fsync: (Instant, Instant)) -> Option<Duration> {
    let (started, ended) = fsync;
    let waited = ended.checked_duration_since(since.max(started))?;
    (waited >= MAX_POSTPONE).then_some(waited)
}

/// One attempt at writing `bytes` (Redis's `aofWrite` plus its error
/// handling): returns how many bytes stay in the file and, on failure,
/// the errno to report. A short write is removed from the file again
/// when possible (the whole buffer is then retried) and counts as
/// `ENOSPC`.
fn write_once(
    active: &Active,
    f: &mut File,
    bytes: &[u8],
    last_log: &mut Option<Instant>,
) -> (usize, Result<(), i32>) {
    let (done, result) = write_some(active, f, bytes);
    let Err(e) = result else {
        return (done, Ok(()));
    };
    let can_log = last_log.is_none_or(|t| t.elapsed() > ERROR_LOG_EVERY);
    if can_log {
        *last_log = Some(Instant::now());
    }
    if done == 0 {
        if can_log {
            tracing::warn!(
                "Error writing to the AOF file: {}",
                crate::config::strerror(&e)
            );
        }
        return (0, Err(e.raw_os_error().unwrap_or(libc::EIO)));
    }
    if can_log {
        tracing::warn!(
            "Short write while writing to the AOF file: (nwritten={done}, expected={})",
            bytes.len()
        );
    }
    let undone = f
        .metadata()
        .and_then(|m| f.set_len(m.len().saturating_sub(done as u64)));
    match undone {
        Ok(()) => {
            let back = done as u64;
            active.incr_written.fetch_sub(back, Ordering::Relaxed);
            active.current_size.fetch_sub(back, Ordering::Relaxed);
            (0, Err(libc::ENOSPC))
        }
        Err(te) => {
            if can_log {
                tracing::warn!(
                    "Could not remove short write from the append-only file.  Redis may refuse to load the AOF the next time it starts.  ftruncate: {}",
                    crate::config::strerror(&te)
                );
            }
            (done, Err(libc::ENOSPC))
        }
    }
}

/// Writes `bytes`, counting what reached the file; on an error, how much
/// did is returned with it.
fn write_some(active: &Active, f: &mut File, bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let mut done = 0;
    let result = loop {
        if done == bytes.len() {
            break Ok(());
        }
        match f.write(&bytes[done..]) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    active
        .incr_written
        .fetch_add(done as u64, Ordering::Relaxed);
    active
        .current_size
        .fetch_add(done as u64, Ordering::Relaxed);
    (done, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_waiting_two_seconds_for_an_everysec_fsync_is_delayed() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Appended during a 3 s fsync, 0.5 s after it started: waited 2.5 s.
        assert_eq!(
            delayed_by_fsync(at(500), (at(0), at(3000))),
            Some(Duration::from_millis(2500))
        );
        // Appended before the fsync started: only the fsync counts.
        assert_eq!(
            delayed_by_fsync(at(0), (at(100), at(2100))),
            Some(Duration::from_secs(2))
        );
        // Waited less than two seconds.
        assert_eq!(delayed_by_fsync(at(1500), (at(0), at(3000))), None);
        // Appended after the fsync ended.
        assert_eq!(delayed_by_fsync(at(4000), (at(0), at(3000))), None);
    }
}
