//! The AOF writer: one dedicated thread that moves the feed's bytes into
//! the current incr file and fsyncs it as `appendfsync` says.
//!
//! # Why a thread and not glommio file I/O on a shard
//! `fsync` is the slow part (milliseconds on this disk) and under
//! `always` every write waits for one; the shards must keep serving
//! meanwhile and keep appending to the feed, so that the next fsync covers
//! the whole group (group commit). A dedicated thread does exactly that
//! with plain `write(2)`/`fdatasync(2)`: it blocks nobody but itself, it is
//! woken through a condvar only when it sleeps, and it avoids glommio's DMA
//! file quirks on this disk (see GLOMMIO.md: `EOPNOTSUPP` when the first
//! DMA file is empty, which an empty new incr file always is). Shards only
//! copy bytes into the feed; clients under `always` await
//! [`super::feed::Durable`], woken from this thread.
//!
//! Policies: `always` fsyncs after every batch before advancing the
//! durable offset; `everysec` fsyncs at most once a second when something
//! was written (Redis does that in a background thread; here the writer is
//! already one); `no` leaves flushing to the kernel. Under `always` a
//! write error is fatal, as in Redis (the acknowledged-write promise could
//! not be kept); otherwise the bytes stay pending and are retried every
//! second while `aof_last_write_status` says `err`.
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

/// Starts the writer thread. `file`: the incr file to append to, when the
/// AOF continues an existing one (otherwise the first switch brings it).
pub fn spawn(active: Arc<Active>, file: Option<File>) -> std::io::Result<()> {
    let handle = std::thread::Builder::new()
        .name("cascade-aof".into())
        .spawn(move || run(&active, file))?;
    drop(handle);
    Ok(())
}

fn run(active: &Active, mut file: Option<File>) {
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
    // Feed offset of pending[0].
    let mut pending_start = 0u64;
    let mut last_fsync = Instant::now();
    let mut unsynced = false;
    let mut failing = false;
    loop {
        let wait = if failing {
            Duration::from_secs(1)
        } else if unsynced {
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
        let taken = active.feed.take(&mut pending, wait, gather);
        if was_empty {
            pending_start = taken.start;
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
                let (done, result) = write_some(active, f, &pending);
                pending.drain(..done);
                pending_start += done as u64;
                match result {
                    Ok(()) => {
                        unsynced = true;
                        if failing {
                            tracing::warn!("AOF write error looks solved, Redis can write again.");
                            failing = false;
                        }
                        active.last_write_ok.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        active.last_write_ok.store(false, Ordering::Relaxed);
                        if active.durable.policy() == Fsync::Always {
                            tracing::warn!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                            std::process::exit(1);
                        }
                        if !failing {
                            tracing::warn!("Error writing to the AOF file: {e}");
                        }
                        failing = true;
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
                if let Err(e) = f.sync_data() {
                    if policy == Fsync::Always {
                        tracing::warn!("Can't persist AOF for fsync error when the AOF fsync policy is 'always': {e}. Exiting...");
                        std::process::exit(1);
                    }
                    tracing::warn!("Error syncing the AOF file: {e}");
                } else {
                    unsynced = false;
                    last_fsync = Instant::now();
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
    }
}

/// Writes `bytes`, counting what reached the file; on an error the bytes
/// written so far are dropped from `pending` by the caller, so a retry
/// never writes them twice.
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
