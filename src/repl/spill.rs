//! Keeps the stream written since a full sync's cut for the replicas of
//! that sync, however long the transfer and their load take, so a full
//! sync always converges instead of looping (the ring alone would be
//! overrun by a long sync under writes, the replica dropped, and the next
//! full sync would start the same race again).
//!
//! One [`Spill`] per sync job, started at the cut. A task on the leader's
//! shard follows the ring lazily: while the oldest byte it must keep is
//! still far from being overwritten it does nothing; once the ring has
//! moved a quarter of its size past it, it copies the stream into a file
//! beside the dump (`temp-spill-<pid>-<n>.repl` in `dir`) and keeps
//! following the head. The spill is also the ring's [`Retainer`]: a burst
//! of writes that brings the head half a ring past what is saved makes the
//! writing shard copy the rest at once, so the ring never overwrites what
//! the spill still needs however fast the writes come. Feeds of the job
//! read from the file what the ring no longer holds, then switch to the
//! ring and drop their handle; when the last handle is gone the task stops
//! and the file is removed. Memory stays at the ring's size; the file is
//! bounded by `repl-sync-spill-max-size` (beyond it the spill gives up and
//! a replica still relying on it needs a new full sync, as without a
//! spill).
//!
//! Depends on the ring only; knows nothing of sockets. The spill is read
//! and written from any shard's thread.

use super::backlog::{Backlog, Retainer};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// How often the spill task looks at the ring.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// Bytes copied per step (the task yields between steps).
const COPY_SLICE: usize = 256 * 1024;

/// The stream from a cut on, on disk where the ring no longer holds it.
pub struct Spill {
    file: std::fs::File,
    path: PathBuf,
    /// Removed at exit if still there (see `persist::temp`).
    _tracked: crate::persist::temp::Tracked,
    /// Stream offset of the file's first byte (the cut).
    start: u64,
    /// The file holds the stream over `[start, saved)`.
    saved: AtomicU64,
    /// Set when the spill gave up (size limit, I/O error, overrun).
    failed: AtomicBool,
    /// Set once copying started (it is logged once).
    copying: AtomicBool,
    for_sync: bool,
    max_bytes: u64,
    /// The copy buffer; whoever copies (the task, or a shard whose append
    /// found the ring about to overwrite what is not saved yet) holds it.
    copy_buf: Mutex<Vec<u8>>,
}

impl Spill {
    /// Starts following `ring` from `start` on this executor. `None` when
    /// disabled (`max_bytes == 0`) or the file cannot be created. `for_sync`:
    /// kept for a full sync (logged when copying starts), else for a replica
    /// that fell behind (its feed logs that itself).
    pub fn start(
        ring: Arc<Backlog>,
        start: u64,
        max_bytes: u64,
        for_sync: bool,
    ) -> Option<Arc<Spill>> {
        if max_bytes == 0 {
            return None;
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("temp-spill-{}-{seq}.repl", std::process::id()));
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    "Can't create the full sync spill file {}: {e}; a long full sync under writes may have to be repeated",
                    path.display()
                );
                return None;
            }
        };
        let spill = Arc::new(Spill {
            file,
            _tracked: crate::persist::temp::track(&path),
            path,
            start,
            saved: AtomicU64::new(start),
            failed: AtomicBool::new(false),
            copying: AtomicBool::new(false),
            for_sync,
            max_bytes,
            copy_buf: Mutex::new(vec![0u8; COPY_SLICE]),
        });
        ring.add_retainer(Arc::downgrade(&spill) as Weak<dyn Retainer>);
        let task = spill.clone();
        glommio::spawn_local(async move { task.follow(ring).await }).detach();
        Some(spill)
    }

    /// True when the file holds the stream byte at `offset`.
    pub fn covers(&self, offset: u64) -> bool {
        !self.failed.load(Ordering::Acquire)
            && offset >= self.start
            && offset < self.saved.load(Ordering::Acquire)
    }

    /// Copies the stream from `offset` into `buf`; 0 when not covered.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.covers(offset) {
            return Ok(0);
        }
        let saved = self.saved.load(Ordering::Acquire);
        let n = buf.len().min((saved - offset) as usize);
        self.file.read_at(&mut buf[..n], offset - self.start)
    }

    /// Bytes written to the file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.saved.load(Ordering::Acquire) - self.start
    }

    /// The task: copy what the ring is about to lose, until nobody needs
    /// the spill any more. Lazy: while the oldest byte to keep is still far
    /// from being overwritten it does nothing.
    async fn follow(self: Arc<Self>, mut ring: Arc<Backlog>) {
        loop {
            // A resized ring hands its retainers to its successor, which
            // holds the same positions from there on. (A spill started on
            // a ring just being resized was not handed over: register.)
            if ring.is_closed() {
                match ring.successor() {
                    Some(next) => {
                        next.add_retainer(Arc::downgrade(&self) as Weak<dyn Retainer>);
                        ring = next;
                    }
                    None => return,
                }
            }
            // Only this task holds it: every feed has switched to the ring.
            if Arc::strong_count(&self) == 1 || self.failed.load(Ordering::Acquire) {
                return;
            }
            let lazy_distance = (ring.capacity() / 4) as u64;
            let behind = ring
                .head()
                .saturating_sub(self.saved.load(Ordering::Acquire));
            if self.copying.load(Ordering::Relaxed) || behind >= lazy_distance {
                loop {
                    match self.copy_slice(&ring) {
                        Ok(true) => glommio::yield_if_needed().await,
                        Ok(false) => break,
                        Err(why) => return self.give_up(&why),
                    }
                }
            }
            glommio::timer::sleep(CHECK_EVERY).await;
        }
    }

    /// Copies the next slice of what the ring holds past `saved` into the
    /// file. `Ok(true)` when more is there to copy.
    fn copy_slice(&self, ring: &Backlog) -> Result<bool, String> {
        let mut buf = self.copy_buf.lock().unwrap_or_else(PoisonError::into_inner);
        let pos = self.saved.load(Ordering::Acquire);
        let head = ring.head();
        if pos >= head || self.failed.load(Ordering::Acquire) {
            return Ok(false);
        }
        if !self.copying.swap(true, Ordering::Relaxed) && self.for_sync {
            tracing::info!(
                "Full sync is taking long under writes: keeping the stream since offset {} in {}",
                self.start,
                self.path.display()
            );
        }
        let n = ring
            .copy_out(pos, &mut buf)
            .map_err(|_| "the replication ring overran it".to_string())?;
        self.file
            .write_all_at(&buf[..n], pos - self.start)
            .map_err(|e| format!("write error: {e}"))?;
        let pos = pos + n as u64;
        self.saved.store(pos, Ordering::Release);
        if pos - self.start > self.max_bytes {
            return Err("it reached repl-sync-spill-max-size".into());
        }
        Ok(pos < head)
    }

    fn give_up(&self, why: &str) {
        if self.failed.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            "Stopped keeping the stream for a full sync in {} ({why}); replicas still behind it will need a new full sync",
            self.path.display()
        );
    }
}

impl Retainer for Spill {
    fn needs_from(&self) -> Option<u64> {
        (!self.failed.load(Ordering::Acquire)).then(|| self.saved.load(Ordering::Acquire))
    }

    fn save_now(&self, ring: &Backlog) {
        loop {
            match self.copy_slice(ring) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(why) => return self.give_up(&why),
            }
        }
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
