//! Rewriting the AOF (BGREWRITEAOF, automatic rewrites) and turning it on,
//! which is the same thing: a new base from the fork-less snapshot.
//!
//! 1. A new incr file is created and added to the manifest, which is
//!    persisted (old base + old incrs + the new, empty incr: loadable).
//! 2. The snapshot cut is taken; while every shard is held, the feed
//!    switches to the new incr file ([`super::feed::Feed::switch_to`]):
//!    every write before the cut goes to the old incr files, every write
//!    after it to the new one, which starts with a SELECT.
//! 3. The snapshot is written as an RDB into a temp file in the AOF
//!    directory, fsynced and renamed to `<prefix>.<n>.base.rdb`.
//! 4. The manifest switches atomically (temp + rename) to the new base and
//!    the new incr; the old files become history, are deleted, and the
//!    manifest is written once more without them.
//!
//! A crash before 4 loads the old base and every incr (the new base is an
//! unlisted file); after it, the new base and the new incr. Either is the
//! whole dataset.
//!
//! A rewrite stopped before 4 (SHUTDOWN, CONFIG SET appendonly no, a
//! replica's full sync: [`cancel`]; or a failure) removes its temp base
//! and, when it was turning the AOF on, its temp incr file, as Redis's
//! `killAppendOnlyChild`/`aofRemoveTempFile`/`aofDelTempIncrAofFile` do:
//! the directory then holds only files the manifest lists. The new incr
//! file of step 1 is listed, so it stays (as in Redis).
//!
//! Background rewrites run one at a time, the newest one owning INFO's
//! fields (see `Rewrites` in the parent module).
//!
//! Owns the manifest changes; may not write incr files (the writer does).

use super::manifest::{self, Entry, Kind, Manifest};
use super::out::{BaseOut, AUTOSYNC_BYTES};
use super::{writer, Active};
use crate::node::{unix_ms, Node};
use crate::persist::dump::SaveOptions;
use crate::persist::rdb::WriteSink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a rewrite did not install a new base.
#[derive(Debug)]
pub enum RewriteError {
    /// It was cancelled (the AOF stopped, SHUTDOWN): like a rewrite child
    /// killed by Redis, neither a success nor a failure.
    Aborted,
    /// It failed; the text is the log line's reason.
    Failed(String),
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::Aborted => f.write_str("the AOF rewrite was aborted"),
            RewriteError::Failed(e) => f.write_str(e),
        }
    }
}

impl From<String> for RewriteError {
    fn from(e: String) -> RewriteError {
        RewriteError::Failed(e)
    }
}

/// Turns the AOF on with a first base (server start without an AOF,
/// CONFIG SET appendonly yes); returns the AOF it started. `when` ends the
/// log lines ("on server start", "on background rewrite").
pub async fn turn_on(node: &Arc<Node>, when: &str) -> Result<Arc<Active>, RewriteError> {
    let dir = super::aof_dir(&node.config());
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    // A manifest left by an earlier AOF (turned off since) keeps its
    // sequence numbers going; its files become history.
    let prefix = node.config().get("appendfilename").unwrap_or_default();
    let old = std::fs::read(dir.join(manifest::manifest_name(&prefix)))
        .ok()
        .and_then(|t| Manifest::parse(&t).ok())
        .unwrap_or_default();
    if node.config().appendonly() {
        // startAppendOnly: an error of the AOF turned off earlier no
        // longer refuses writes.
        node.aof.health.reopen();
    }
    let active = Arc::new(Active::new(node, old, false));
    writer::spawn(active.clone(), None)
        .map_err(|e| format!("Can't start the AOF writer thread: {e}"))?;
    super::install(node, Some(active.clone())).await;
    match rewrite_with(node, &active, when, true).await {
        Ok(()) => Ok(active),
        Err(e) => {
            super::stop_if_current(node, &active).await;
            Err(e)
        }
    }
}

/// `auto-aof-rewrite-percentage` / `-min-size`: starts a rewrite when the
/// AOF grew by that percentage over its base and is at least that large
/// (checked once a second by shard 0's cron, as Redis's serverCron does).
pub fn check_auto(node: &Arc<Node>) {
    let Some(active) = node.aof.active() else {
        return;
    };
    let aof = &node.aof;
    if aof.rewrite_in_progress()
        || aof.rewrite_scheduled.load(Ordering::SeqCst)
        || node.bgsave_in_progress.load(Ordering::SeqCst)
        || node.snapshot_running.load(Ordering::SeqCst)
    {
        return;
    }
    let (perc, min) = {
        let cfg = node.config();
        let num = |n: &str| cfg.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (
            num("auto-aof-rewrite-percentage"),
            num("auto-aof-rewrite-min-size"),
        )
    };
    let current = active.current_size.load(Ordering::Relaxed);
    if perc == 0 || current < min {
        return;
    }
    let base = active.base_size.load(Ordering::Relaxed).max(1);
    let growth = current.saturating_sub(base) * 100 / base;
    if growth >= perc {
        tracing::info!("Starting automatic rewriting of AOF on {growth}% growth");
        start_background(node);
    }
}

/// BGREWRITEAOF: runs a rewrite in the background, keeping INFO's
/// counters. Returns at once. The new rewrite is the running one from
/// now on, even while the previous one (of an AOF just stopped) still
/// cleans up; its work starts once that is done.
pub fn start_background(node: &Arc<Node>) {
    let node = node.clone();
    let id = node.aof.new_rewrite(unix_ms());
    glommio::spawn_local(async move {
        node.aof.enter_rewrite_task().await;
        // Superseded while it waited: the newer one runs instead.
        if node.aof.is_current_rewrite(id) {
            run_background(&node, id).await;
        }
        node.aof.leave_rewrite_task();
        node.aof.rewrite_done(id);
    })
    .detach();
}

/// The work of one background rewrite and its log lines and counters.
async fn run_background(node: &Arc<Node>, id: u64) {
    let started = std::time::Instant::now();
    tracing::info!("Background append only file rewriting started");
    let result = match node.aof.active() {
        Some(active) => rewrite_with(node, &active, "on background rewrite", false).await,
        None => {
            // BGREWRITEAOF with the AOF off writes the files and leaves
            // it off; CONFIG SET appendonly yes comes here too.
            node.aof.rewrite_turns_on(id);
            match turn_on(node, "on background rewrite").await {
                Ok(active) => {
                    if !node.config().appendonly() {
                        super::stop_if_current(node, &active).await;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    };
    let aof = &node.aof;
    match result {
        // Like a child killed with SIGUSR1: neither a success nor a
        // failure.
        Err(RewriteError::Aborted) => tracing::warn!("Background AOF rewrite aborted"),
        Ok(()) => {
            aof.last_rewrite_time_sec
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            aof.last_rewrite_ok.store(true, Ordering::Relaxed);
            aof.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::info!("Background AOF rewrite finished successfully");
        }
        Err(RewriteError::Failed(e)) => {
            aof.last_rewrite_time_sec
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            aof.last_rewrite_ok.store(false, Ordering::Relaxed);
            aof.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("Background AOF rewrite failed: {e}");
        }
    }
}

/// Steps 1–4 of the module doc for the running AOF `active`. `fresh`: the
/// AOF is being turned on, so the files on disk (if any) do not describe
/// the data the new incr file continues; then the new incr file is written
/// under a temp name and nothing changes on disk until step 4, as Redis
/// does while it waits for the first rewrite.
pub async fn rewrite_with(
    node: &Arc<Node>,
    active: &Arc<Active>,
    when: &str,
    fresh: bool,
) -> Result<(), RewriteError> {
    let Some(cancel) = active.rewrite_begins() else {
        return Err(RewriteError::Aborted);
    };
    let result = rewrite_steps(node, active, when, fresh, &cancel).await;
    if result.is_err() {
        remove_temp_files(active, fresh);
    }
    active.rewrite_ends();
    result
}

/// Steps 1–4 under `cancel` (see [`rewrite_with`]).
async fn rewrite_steps(
    node: &Arc<Node>,
    active: &Arc<Active>,
    when: &str,
    fresh: bool,
    cancel: &Arc<AtomicBool>,
) -> Result<(), RewriteError> {
    let (dir, prefix) = (active.dir.clone(), active.prefix.clone());
    // 1. The new incr file, listed before any byte goes into it.
    let mut m = active.manifest().clone();
    let incr = m.add_incr(&prefix);
    let temp_incr = format!("temp-{prefix}.incr");
    let opened = if fresh { &temp_incr } else { &incr.name };
    if fresh {
        // Left by a crash while an earlier AOF was being turned on.
        let _ = std::fs::remove_file(dir.join(&temp_incr));
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(opened))
        .map_err(|e| format!("Can't open the append-only file {opened}: {e}"))?;
    if fresh {
        *active.manifest() = m;
    } else {
        active
            .persist_manifest(m)
            .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
        tracing::info!("Creating AOF incr file {} {when}", incr.name);
    }
    write_base_and_switch(node, active, when, fresh, incr, file, cancel).await
}

/// The temp base of a rewrite (in the AOF directory, named after the
/// process as Redis names it after its rewrite child).
fn temp_base_name() -> String {
    format!("temp-rewriteaof-bg-{}.aof", std::process::id())
}

/// Removes what an unfinished rewrite wrote outside the manifest: the
/// temp base and, when it was turning the AOF on, the temp incr file.
fn remove_temp_files(active: &Active, fresh: bool) {
    let _ = std::fs::remove_file(active.dir.join(temp_base_name()));
    if fresh {
        let temp_incr = format!("temp-{}.incr", active.prefix);
        let _ = std::fs::remove_file(active.dir.join(temp_incr));
    }
}

/// Cancels `active`'s running rewrite, if any (with `stop`, the AOF is
/// being stopped and no rewrite starts on it any more): the rewrite gives
/// up at its next step or write, and this waits (up to a few seconds)
/// until it has removed its temp files.
pub async fn cancel(active: &Active, stop: bool) {
    active.cancel_rewrite(stop);
    if !active.rewriting.load(Ordering::SeqCst) {
        return;
    }
    tracing::info!("Stopping the running AOF rewrite");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while active.rewriting.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Steps 2–4 (see [`rewrite_with`]).
async fn write_base_and_switch(
    node: &Arc<Node>,
    active: &Arc<Active>,
    when: &str,
    fresh: bool,
    incr: Entry,
    file: std::fs::File,
    cancel: &Arc<AtomicBool>,
) -> Result<(), RewriteError> {
    let (dir, prefix) = (active.dir.clone(), active.prefix.clone());
    let temp_incr = format!("temp-{prefix}.incr");
    // 2. The cut: the feed switches files while no write runs.
    let feed_active = active.clone();
    let name = incr.name.clone();
    let Some((cut, ())) = crate::persist::snapshot::take_cut_unless(node, cancel, move || {
        feed_active.feed.switch_to(file, name);
    })
    .await
    else {
        return Err(RewriteError::Aborted);
    };
    if cancel.load(Ordering::SeqCst) {
        return Err(RewriteError::Aborted);
    }
    // 3. The base.
    let base_seq = active.manifest().base_seq() + 1;
    let rdb = node.config().bool_value("aof-use-rdb-preamble");
    let base = Entry {
        name: manifest::base_name(&prefix, base_seq, rdb),
        seq: base_seq,
        kind: Kind::Base,
    };
    let tmp_name = temp_base_name();
    let tmp = dir.join(&tmp_name);
    let mut opts = SaveOptions::from_config(&node.config());
    opts.aof_base = true;
    opts.path = tmp.clone();
    let f = std::fs::File::create(&tmp).map_err(|e| {
        format!("Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {e}")
    })?;
    let autosync = node
        .config()
        .bool_value("aof-rewrite-incremental-fsync")
        .then_some(AUTOSYNC_BYTES);
    let out = BaseOut::new(f, autosync, cancel.clone());
    let done = |out: BaseOut<std::fs::File>| {
        let f = out.finish()?;
        f.sync_all()?;
        f.metadata().map(|m| m.len())
    };
    let written = if rdb {
        crate::persist::snapshot::write_rdb(cut, &opts, WriteSink(out), move |sink| done(sink.0))
            .await
    } else {
        let (taken, delay) = (cut.taken_unix_ms, opts.key_delay_us);
        let functions = cut.functions.clone();
        crate::persist::snapshot::write_with(cut, move |slices| {
            super::base::encode_commands(slices, &functions, taken, delay, out).and_then(done)
        })
        .await
    };
    let len = match written {
        Ok(len) if !cancel.load(Ordering::SeqCst) => len,
        Err(_) if cancel.load(Ordering::SeqCst) => return Err(RewriteError::Aborted),
        Ok(_) => return Err(RewriteError::Aborted),
        Err(e) => return Err(e.into()),
    };
    if when == "on server start" {
        tracing::info!("Creating AOF base file {} {when}", base.name);
    } else {
        tracing::info!("Successfully created the temporary AOF base file {tmp_name}");
        tracing::info!("Background AOF rewrite terminated with success");
    }
    std::fs::rename(&tmp, dir.join(&base.name)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "Error trying to rename the temporary AOF base file {tmp_name} into {}: {e}",
            base.name
        )
    })?;
    let _ = std::fs::File::open(&dir).and_then(|d| d.sync_all());
    if when != "on server start" {
        tracing::info!(
            "Successfully renamed the temporary AOF base file {tmp_name} into {}",
            base.name
        );
    }
    // 4. The manifest switch, then the history goes.
    // On a failure from here the new base (and a renamed new incr) are
    // unlisted files: they go, as Redis unlinks them.
    let base_name = base.name.clone();
    let unlisted = |incr_too: bool| {
        let _ = std::fs::remove_file(dir.join(&base_name));
        if incr_too {
            let _ = std::fs::remove_file(dir.join(&incr.name));
        }
    };
    if fresh {
        std::fs::rename(dir.join(&temp_incr), dir.join(&incr.name)).map_err(|e| {
            unlisted(false);
            format!(
                "Error trying to rename the temporary AOF incr file {temp_incr} into {}: {e}",
                incr.name
            )
        })?;
        tracing::info!("Creating AOF incr file {} {when}", incr.name);
    }
    let mut m = active.manifest().clone();
    m.install_base(base, incr.seq);
    let history = std::mem::take(&mut m.history);
    let mut with_history = m.clone();
    with_history.history = history.clone();
    active.persist_manifest(with_history).map_err(|e| {
        unlisted(fresh);
        format!("Can't persist the AOF manifest: {e}")
    })?;
    active.base_size.store(len, Ordering::Relaxed);
    active.current_size.store(
        len + active.incr_written.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    for h in &history {
        tracing::info!("Removing the history file {} in the background", h.name);
        let _ = std::fs::remove_file(dir.join(&h.name));
    }
    active
        .persist_manifest(m)
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    Ok(())
}
