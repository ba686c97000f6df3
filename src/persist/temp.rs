//! The temporary files that are being written right now (a save's
//! `temp-<pid>-<n>.rdb`, a replica's transfer file, a feed's spill file),
//! so that an exit in the middle of one does not leave it behind: Redis
//! removes its save's temp file when a shutdown interrupts a BGSAVE, and
//! [`std::process::exit`] runs no destructors.
//!
//! Owners [`track`] a path while it is theirs; the [`Tracked`] guard stops
//! tracking it (it does not remove it: the owner renames or removes it).
//! The shutdown calls [`remove_all`] right before the process exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static LIVE: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// While alive, `path` is removed if the process exits through the
/// shutdown.
pub struct Tracked(u64);

/// Tracks `path` (relative paths are resolved now, in case the working
/// directory changes later).
pub fn track(path: &Path) -> Tracked {
    let path = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock().push((id, path));
    Tracked(id)
}

impl Drop for Tracked {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

/// Removes every tracked file; returns how many were there.
pub fn remove_all() -> usize {
    let live = std::mem::take(&mut *lock());
    live.iter()
        .filter(|(_, p)| std::fs::remove_file(p).is_ok())
        .count()
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, PathBuf)>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_files_are_removed_and_released_ones_kept() {
        let dir = std::env::temp_dir().join(format!("cascade-temp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.tmp");
        let b = dir.join("b.tmp");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"y").unwrap();
        let keep = track(&a);
        drop(track(&b));
        assert!(remove_all() >= 1);
        assert!(!a.exists());
        assert!(b.exists());
        drop(keep);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
