//! The append-only file, in Redis 7's multi-part layout.
//!
//! `dir/appenddirname/` holds a manifest (`<appendfilename>.manifest`,
//! see [`manifest`]), one base file (the fork-less snapshot as an RDB,
//! `<appendfilename>.<n>.base.rdb`, or as commands with
//! `aof-use-rdb-preamble no`, `.base.aof`) and incr files
//! (`<appendfilename>.<n>.incr.aof`) with the RESP commands executed after
//! the base's cut, exactly as the replication stream carries them (SELECT
//! where the database changes, MULTI/EXEC units, absolute expirations).
//!
//! # Files
//! - [`manifest`]: the manifest format and file names (pure).
//! - [`feed`]: the buffer [`crate::propagate`] copies every executed write
//!   into, and the durable offset `appendfsync always` replies wait for.
//! - [`writer`]: the thread that appends the feed to the incr file and
//!   fsyncs it.
//! - [`load`]: loading the AOF at start-up (and the old single-file AOF).
//! - [`base`]: the AOF-format base (`aof-use-rdb-preamble no`).
//! - [`out`]: the file a rewrite writes its base through (incremental
//!   fsync, abort).
//! - [`rewrite`]: BGREWRITEAOF, automatic rewrites, turning the AOF on:
//!   a new incr file, a snapshot cut, a new base, a manifest switch.
//! - this file: the node-wide state ([`Aof`]: counters INFO prints, the
//!   running [`Active`] AOF, the write/fsync [`Health`] that refuses
//!   writes with `-MISCONF`), and writing manifests to disk atomically.
//!
//! Depends on `persist::{snapshot, dump}` (the base), `shard` (installing
//! the feed in every shard) and `cmd` (loading runs commands through the
//! normal command path). `propagate` depends on [`feed`], never the
//! reverse.

pub mod base;
pub mod feed;
pub mod load;
pub mod manifest;
mod out;
pub mod rewrite;
mod writer;

use crate::node::Node;
use feed::{Durable, Feed};
use manifest::Manifest;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fsync {
    No = 0,
    Everysec = 1,
    Always = 2,
}

impl Fsync {
    pub fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            2 => Fsync::Always,
            0 => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

/// A running AOF: its feed, writer state and manifest.
pub struct Active {
    pub feed: Feed,
    pub durable: Durable,
    /// `dir/appenddirname`.
    pub dir: PathBuf,
    /// `appendfilename`: the prefix of every file name.
    pub prefix: String,
    /// The manifest as on disk. Only the rewrite changes it (one at a
    /// time: see [`Rewrites`]).
    manifest: Mutex<Manifest>,
    /// `aof_base_size`: the base file's size at the last rewrite.
    pub base_size: AtomicU64,
    /// `aof_current_size`: base plus incr files.
    pub current_size: AtomicU64,
    /// Bytes written to the current incr file.
    pub incr_written: AtomicU64,
    /// The node's [`Health`], which the writer updates.
    pub health: Arc<Health>,
    /// The writer thread has finished (after [`Feed::stop`]).
    pub stopped: AtomicBool,
    /// A rewrite is writing a new base (from [`Active::rewrite_begins`]
    /// to [`Active::rewrite_ends`]).
    pub rewriting: AtomicBool,
    /// Cancelling the running rewrite and stopping this AOF.
    rewrite_ctl: Mutex<RewriteCtl>,
    /// `no-appendfsync-on-rewrite`: no fsync while `rewriting`.
    pub no_fsync_on_rewrite: AtomicBool,
}

/// What [`rewrite::cancel`] acts on. One lock for both fields, so a
/// rewrite starting on one shard and a stop on another never miss each
/// other.
#[derive(Default)]
struct RewriteCtl {
    /// This AOF is being stopped: no rewrite starts on it any more.
    stopping: bool,
    /// The running rewrite's cancel flag: once set, its base output fails
    /// its next write and it gives up, leaving no file behind (SHUTDOWN
    /// cancels a rewrite of an AOF that keeps running when the shutdown is
    /// refused).
    cancel: Option<Arc<AtomicBool>>,
}

impl Active {
    fn new(node: &Node, manifest: Manifest, armed: bool) -> Active {
        let cfg = node.config();
        let feed = Feed::new(armed);
        feed.set_timestamps(cfg.bool_value("aof-timestamp-enabled"));
        Active {
            feed,
            durable: Durable::new(Fsync::parse(&cfg.appendfsync())),
            dir: aof_dir(&cfg),
            prefix: cfg.get("appendfilename").unwrap_or_default(),
            manifest: Mutex::new(manifest),
            base_size: AtomicU64::new(0),
            current_size: AtomicU64::new(0),
            incr_written: AtomicU64::new(0),
            health: node.aof.health.clone(),
            rewriting: AtomicBool::new(false),
            rewrite_ctl: Mutex::default(),
            no_fsync_on_rewrite: AtomicBool::new(cfg.bool_value("no-appendfsync-on-rewrite")),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn manifest(&self) -> MutexGuard<'_, Manifest> {
        self.manifest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `m` as the manifest atomically (temp file, fsync, rename,
    /// fsync of the directory) and keeps it as the current one.
    pub fn persist_manifest(&self, m: Manifest) -> std::io::Result<()> {
        write_manifest(&self.dir, &self.prefix, &m)?;
        *self.manifest() = m;
        Ok(())
    }

    pub fn always(&self) -> bool {
        self.durable.policy() == Fsync::Always
    }

    fn ctl(&self) -> MutexGuard<'_, RewriteCtl> {
        self.rewrite_ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A rewrite starts on this AOF: its cancel flag, or `None` when the
    /// AOF is being stopped.
    pub fn rewrite_begins(&self) -> Option<Arc<AtomicBool>> {
        let mut ctl = self.ctl();
        if ctl.stopping {
            return None;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        ctl.cancel = Some(cancel.clone());
        self.rewriting.store(true, Ordering::SeqCst);
        Some(cancel)
    }

    /// The rewrite started by [`Active::rewrite_begins`] is over (its temp
    /// files are gone).
    pub fn rewrite_ends(&self) {
        let mut ctl = self.ctl();
        ctl.cancel = None;
        self.rewriting.store(false, Ordering::SeqCst);
    }

    /// Cancels the running rewrite, if any; with `stop`, no rewrite starts
    /// on this AOF any more.
    fn cancel_rewrite(&self, stop: bool) {
        let mut ctl = self.ctl();
        ctl.stopping |= stop;
        if let Some(c) = &ctl.cancel {
            c.store(true, Ordering::SeqCst);
        }
    }
}

/// `dir/appenddirname` (relative to the working directory, which is `dir`).
pub fn aof_dir(cfg: &crate::config::Config) -> PathBuf {
    PathBuf::from(cfg.get("appenddirname").unwrap_or_default())
}

/// Writes a manifest atomically into `dir`.
pub fn write_manifest(dir: &Path, prefix: &str, m: &Manifest) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(manifest::temp_manifest_name(prefix));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(m.to_text().as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(manifest::manifest_name(prefix)))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Whether writing and fsyncing the AOF works, as Redis's
/// `aof_last_write_status`/`aof_last_write_errno` and
/// `aof_bio_fsync_status`/`aof_bio_fsync_errno`: written by the writer
/// thread, read by INFO and by every write command (a failing AOF refuses
/// writes with `-MISCONF` while it is on, see [`Aof::write_denied`]). Kept
/// across the AOF being turned off, like Redis's fields; cleared when it
/// is turned on again.
#[derive(Default)]
pub struct Health {
    /// errno of the last failed write; 0 once a write succeeded.
    write_errno: AtomicI32,
    /// errno of the last failed `everysec` fsync; 0 once one succeeded.
    fsync_errno: AtomicI32,
    /// `aof_delayed_fsync` (see [`writer`] for what it counts here).
    pub delayed_fsync: AtomicU64,
    /// `aof_pending_bio_fsync`: 1 while the writer runs an `everysec` fsync.
    pub fsync_running: AtomicU64,
}

impl Health {
    /// `aof_last_write_status:ok`.
    pub fn ok(&self) -> bool {
        self.failing_errno().is_none()
    }

    /// The errno writes are refused for: a failed write first, else a
    /// failed fsync.
    pub fn failing_errno(&self) -> Option<i32> {
        [&self.write_errno, &self.fsync_errno]
            .into_iter()
            .map(|e| e.load(Ordering::Relaxed))
            .find(|&e| e != 0)
    }

    pub fn write_failing(&self) -> bool {
        self.write_errno.load(Ordering::Relaxed) != 0
    }

    pub fn set_write_errno(&self, errno: i32) {
        self.write_errno.store(errno, Ordering::Relaxed);
    }

    /// Records an fsync result; true when this is a new failure (Redis
    /// logs only those).
    pub fn set_fsync_errno(&self, errno: i32) -> bool {
        self.fsync_errno.swap(errno, Ordering::Relaxed) == 0 && errno != 0
    }

    /// The AOF is turned on again: earlier errors are forgotten, with
    /// Redis's log lines.
    fn reopen(&self) {
        if self.fsync_errno.swap(0, Ordering::Relaxed) != 0 {
            tracing::warn!("AOF reopen, just ignore the AOF fsync error in bio job");
        }
        if self.write_errno.swap(0, Ordering::Relaxed) != 0 {
            tracing::warn!("AOF reopen, just ignore the last error.");
        }
    }
}

/// The background rewrites (BGREWRITEAOF, automatic, turning the AOF
/// on): which one INFO and the commands see as running, and which one
/// works on the AOF directory.
///
/// A rewrite of an AOF that was just stopped may still be removing its
/// temp files when the next one starts (a replica's full sync stops the
/// AOF and turns it on again at once; CONFIG SET appendonly no then yes).
/// So each rewrite gets an id and only the newest one is `current` (an
/// older one ending never clears it), and a rewrite's task does its work
/// only once the previous task has ended: the two never share the temp
/// file names, the manifest or `aof_rewrite_in_progress`.
#[derive(Default)]
struct Rewrites {
    /// The rewrite shown as running (`aof_rewrite_in_progress`).
    current: Option<RewriteRun>,
    /// The last id handed out.
    last_id: u64,
    /// A rewrite task is working (see [`Aof::enter_rewrite_task`]).
    task_busy: bool,
}

#[derive(Clone, Copy)]
struct RewriteRun {
    id: u64,
    /// Unix ms it started (`aof_current_rewrite_time_sec`).
    started_ms: u64,
    /// It writes the first base of an AOF being turned on (Redis's
    /// `AOF_WAIT_REWRITE` while CONFIG says `appendonly yes`).
    turning_on: bool,
}

/// Node-wide AOF state (INFO persistence's AOF fields).
pub struct Aof {
    active: Mutex<Option<Arc<Active>>>,
    /// Mirror of `active.is_some()` for the per-command MISCONF check.
    on: AtomicBool,
    pub health: Arc<Health>,
    /// See [`Rewrites`].
    rewrites_state: Mutex<Rewrites>,
    /// BGREWRITEAOF arrived while a BGSAVE ran: it starts after it.
    pub rewrite_scheduled: AtomicBool,
    /// Seconds the last rewrite took, -1 before the first.
    pub last_rewrite_time_sec: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub consecutive_failures: AtomicU64,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            active: Mutex::new(None),
            on: AtomicBool::new(false),
            health: Arc::default(),
            rewrites_state: Mutex::default(),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_time_sec: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
        }
    }
}

impl Aof {
    /// The running AOF, if it is on.
    pub fn active(&self) -> Option<Arc<Active>> {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_active(&self, a: Option<Arc<Active>>) {
        self.on.store(a.is_some(), Ordering::Relaxed);
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = a;
    }

    /// Redis's `writeCommandsDeniedByDiskError` for the AOF: the errno
    /// writes are refused for while the AOF is on and failing.
    #[inline]
    pub fn write_denied(&self) -> Option<i32> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        self.health.failing_errno()
    }

    /// `appendfsync` changed (CONFIG SET).
    pub fn set_policy(&self, p: Fsync) {
        if let Some(a) = self.active() {
            a.durable.set_policy(p);
        }
    }

    /// `no-appendfsync-on-rewrite` changed (CONFIG SET).
    pub fn set_no_fsync_on_rewrite(&self, on: bool) {
        if let Some(a) = self.active() {
            a.no_fsync_on_rewrite.store(on, Ordering::Relaxed);
        }
    }

    /// `aof-timestamp-enabled` changed (CONFIG SET).
    pub fn set_timestamps(&self, on: bool) {
        if let Some(a) = self.active() {
            a.feed.set_timestamps(on);
        }
    }

    fn rewrite_state(&self) -> MutexGuard<'_, Rewrites> {
        self.rewrites_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `aof_rewrite_in_progress`.
    pub fn rewrite_in_progress(&self) -> bool {
        self.rewrite_state().current.is_some()
    }

    /// Unix ms the running rewrite started.
    pub fn rewrite_started_ms(&self) -> Option<u64> {
        self.rewrite_state().current.map(|r| r.started_ms)
    }

    /// The running rewrite writes the first base of the AOF being turned
    /// on (SHUTDOWN refuses to exit then, unless FORCE).
    pub fn writing_first_base(&self) -> bool {
        self.rewrite_state().current.is_some_and(|r| r.turning_on)
    }

    /// A new rewrite becomes the running one; returns its id. Counted
    /// now (`aof_rewrites`), as Redis counts a rewrite when it forks.
    fn new_rewrite(&self, now_ms: u64) -> u64 {
        let mut r = self.rewrite_state();
        r.last_id += 1;
        let id = r.last_id;
        r.current = Some(RewriteRun {
            id,
            started_ms: now_ms,
            turning_on: false,
        });
        self.rewrites.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// Whether rewrite `id` is still the running one.
    fn is_current_rewrite(&self, id: u64) -> bool {
        self.rewrite_state().current.is_some_and(|r| r.id == id)
    }

    /// Rewrite `id` turns the AOF on.
    fn rewrite_turns_on(&self, id: u64) {
        if let Some(r) = self.rewrite_state().current.as_mut().filter(|r| r.id == id) {
            r.turning_on = true;
        }
    }

    /// Rewrite `id` ended: it stops being the running one, unless a newer
    /// one already is.
    fn rewrite_done(&self, id: u64) {
        let mut r = self.rewrite_state();
        if r.current.is_some_and(|c| c.id == id) {
            r.current = None;
        }
    }

    /// Waits until no other rewrite task works, then marks this one as
    /// working (until [`Aof::leave_rewrite_task`]).
    async fn enter_rewrite_task(&self) {
        loop {
            {
                let mut r = self.rewrite_state();
                if !r.task_busy {
                    r.task_busy = true;
                    return;
                }
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    fn leave_rewrite_task(&self) {
        self.rewrite_state().task_busy = false;
    }
}

/// Starts the AOF after a start-up load: continues the loaded manifest's
/// last incr file (or opens a new one), or, when there was no AOF, writes
/// a first base (as Redis does on server start).
pub async fn start_after_load(node: &Arc<Node>, loaded: Option<Manifest>) -> Result<(), String> {
    let cfg_dir = aof_dir(&node.config());
    let Some(mut m) = loaded.filter(|m| m.base.is_some() || !m.incrs.is_empty()) else {
        return rewrite::turn_on(node, "on server start")
            .await
            .map(drop)
            .map_err(|e| e.to_string());
    };
    let dir = cfg_dir;
    let prefix = node.config().get("appendfilename").unwrap_or_default();
    // History left by a rewrite that ended before deleting it.
    let had_history = !m.history.is_empty();
    for h in std::mem::take(&mut m.history) {
        tracing::info!("Removing the history file {} in the background", h.name);
        let _ = std::fs::remove_file(dir.join(&h.name));
    }
    let (file, created) = match m.incrs.last() {
        Some(last) => {
            tracing::info!("Opening AOF incr file {} on server start", last.name);
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join(&last.name))
                .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
            (f, false)
        }
        None => {
            let e = m.add_incr(&prefix);
            tracing::info!("Creating AOF incr file {} on server start", e.name);
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.join(&e.name))
                .map_err(|err| format!("Can't open the append-only file {}: {err}", e.name))?;
            (f, true)
        }
    };
    let active = Arc::new(Active::new(node, m.clone(), true));
    if created || had_history {
        active
            .persist_manifest(m.clone())
            .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    }
    let sizes = files_size(&dir, &m);
    active.base_size.store(sizes.0, Ordering::Relaxed);
    active
        .current_size
        .store(sizes.0 + sizes.1, Ordering::Relaxed);
    if let Some(last) = m.incrs.last() {
        let len = std::fs::metadata(dir.join(&last.name)).map_or(0, |md| md.len());
        active.incr_written.store(len, Ordering::Relaxed);
    }
    writer::spawn(active.clone(), Some(file))
        .map_err(|e| format!("Can't start the AOF writer thread: {e}"))?;
    install(node, Some(active)).await;
    Ok(())
}

/// (base size, incr sizes) of the files a manifest lists.
fn files_size(dir: &Path, m: &Manifest) -> (u64, u64) {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |md| md.len());
    (
        m.base.as_ref().map_or(0, |b| size(&b.name)),
        m.incrs.iter().map(|e| size(&e.name)).sum(),
    )
}

/// Makes `active` the node's AOF and hands it to every shard (`None`:
/// the AOF is off).
async fn install(node: &Arc<Node>, active: Option<Arc<Active>>) {
    node.aof.set_active(active.clone());
    crate::shard::gather(move |core| core.aof = active.clone()).await;
}

/// Turns the AOF off (CONFIG SET appendonly no, shutdown, a replica's
/// full sync): a running rewrite is aborted and its temp files removed,
/// shards stop feeding the AOF, the writer writes and fsyncs what is
/// pending and exits.
pub async fn stop(node: &Arc<Node>) {
    if let Some(active) = node.aof.active() {
        stop_active(node, &active).await;
    }
}

/// [`stop`], if `active` is still the node's AOF (a rewrite that turned
/// the AOF on stops only its own).
async fn stop_if_current(node: &Arc<Node>, active: &Arc<Active>) {
    if node.aof.active().is_some_and(|a| Arc::ptr_eq(&a, active)) {
        stop_active(node, active).await;
    }
}

async fn stop_active(node: &Arc<Node>, active: &Arc<Active>) {
    rewrite::cancel(active, true).await;
    install(node, None).await;
    active.feed.stop();
    // The writer finishes with one write and one fsync.
    while !active.stopped.load(Ordering::SeqCst) {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// SHUTDOWN, before its save: cancels a running rewrite (Redis kills its
/// rewrite child), leaving the AOF running should the shutdown be refused.
pub async fn cancel_rewrite_for_shutdown(node: &Arc<Node>) {
    if !node.aof.rewrite_in_progress() {
        return;
    }
    tracing::warn!("There is a child rewriting the AOF. Killing it!");
    if let Some(active) = node.aof.active() {
        rewrite::cancel(&active, false).await;
    }
}

/// SHUTDOWN, last: writes and fsyncs what is pending and stops the AOF
/// (Redis: "Calling fsync() on the AOF file.").
pub async fn flush_on_shutdown(node: &Arc<Node>) {
    if node.aof.active().is_some() {
        tracing::info!("Calling fsync() on the AOF file.");
        stop(node).await;
    }
}
