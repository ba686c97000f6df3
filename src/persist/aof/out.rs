//! The output a rewrite writes its new base through (RDB or AOF format):
//! a buffered file that, with `aof-rewrite-incremental-fsync yes`, is
//! flushed and fsynced every [`AUTOSYNC_BYTES`] as Redis's rio autosync
//! does (so the final fsync never has a whole base's dirty pages to push
//! at once, stalling the disk the incr file's fsyncs share), and that
//! fails the next write once the rewrite is aborted (SHUTDOWN, CONFIG SET
//! appendonly no), which ends the snapshot's encoder thread as Redis's
//! SIGUSR1 ends its rewrite child.
//!
//! Runs on the snapshot's encoder thread; knows nothing of manifests.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Redis's REDIS_AUTOSYNC_BYTES.
pub const AUTOSYNC_BYTES: u64 = 4 * 1024 * 1024;

/// A file that can be fsynced (a trait so tests can count the fsyncs).
pub trait SyncData {
    fn sync_data(&self) -> std::io::Result<()>;
}

impl SyncData for std::fs::File {
    fn sync_data(&self) -> std::io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

/// See the module documentation.
pub struct BaseOut<F: Write + SyncData> {
    inner: BufWriter<F>,
    /// fsync after this many bytes (`None`: only at the end).
    autosync: Option<u64>,
    /// Bytes written since the last fsync.
    unsynced: u64,
    /// Set when the rewrite is aborted.
    abort: Arc<AtomicBool>,
}

impl<F: Write + SyncData> BaseOut<F> {
    pub fn new(file: F, autosync: Option<u64>, abort: Arc<AtomicBool>) -> BaseOut<F> {
        BaseOut {
            inner: BufWriter::with_capacity(1 << 20, file),
            autosync,
            unsynced: 0,
            abort,
        }
    }

    /// Flushes the buffer and hands the file back (the caller does the
    /// final fsync).
    pub fn finish(self) -> std::io::Result<F> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

impl<F: Write + SyncData> Write for BaseOut<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the AOF rewrite was aborted"));
        }
        let n = self.inner.write(buf)?;
        if let Some(every) = self.autosync {
            self.unsynced += n as u64;
            if self.unsynced >= every {
                self.inner.flush()?;
                self.inner.get_ref().sync_data()?;
                self.unsynced = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Counts bytes and, at each fsync, how many bytes it covered.
    #[derive(Default)]
    struct Probe {
        written: u64,
        synced_at: Cell<Vec<u64>>,
    }

    impl Write for Probe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SyncData for Probe {
        fn sync_data(&self) -> std::io::Result<()> {
            let mut v = self.synced_at.take();
            v.push(self.written);
            self.synced_at.set(v);
            Ok(())
        }
    }

    fn write_mb(out: &mut BaseOut<Probe>, mb: usize) {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..mb * 16 {
            out.write_all(&chunk).unwrap();
        }
    }

    #[test]
    fn fsyncs_every_4_mb_with_everything_written_so_far() {
        let mut out = BaseOut::new(Probe::default(), Some(AUTOSYNC_BYTES), Arc::default());
        write_mb(&mut out, 10);
        let probe = out.finish().unwrap();
        assert_eq!(probe.written, 10 << 20);
        assert_eq!(probe.synced_at.take(), vec![4 << 20, 8 << 20]);
    }

    #[test]
    fn without_incremental_fsync_nothing_is_synced_on_the_way() {
        let mut out = BaseOut::new(Probe::default(), None, Arc::default());
        write_mb(&mut out, 10);
        let probe = out.finish().unwrap();
        assert_eq!(probe.written, 10 << 20);
        assert!(probe.synced_at.take().is_empty());
    }

    #[test]
    fn an_abort_fails_the_next_write() {
        let abort = Arc::new(AtomicBool::new(false));
        let mut out = BaseOut::new(Probe::default(), None, abort.clone());
        out.write_all(b"before").unwrap();
        abort.store(true, Ordering::Relaxed);
        assert!(out.write_all(b"after").is_err());
    }
}
