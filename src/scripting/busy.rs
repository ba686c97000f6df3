//! The running script's state every thread can see: since when it runs,
//! its time limit, whether it wrote, is busy or was asked to stop, and
//! which function it is (FUNCTION STATS). SCRIPT KILL, FUNCTION KILL,
//! SHUTDOWN and the BUSY replies of other connections read it; the
//! script's own thread checks it from a count hook.
//!
//! A script holds every shard, so other clients wait for it. Past
//! `busy-reply-threshold` (`lua-time-limit`) it is "busy": commands from
//! other connections answer BUSY, and SCRIPT KILL or FUNCTION KILL (from
//! a connection of another thread) stops it unless it already wrote. The
//! script's thread checks every 100,000 Lua instructions.
//!
//! Knows nothing of Lua or of commands.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Unix ms the running script started at (0: none), its time limit, and
/// whether it wrote, was reported busy, was asked to stop.
static RUNNING_SINCE: AtomicU64 = AtomicU64::new(0);
static LIMIT_MS: AtomicU64 = AtomicU64::new(5000);
static WROTE: AtomicBool = AtomicBool::new(false);
static BUSY: AtomicBool = AtomicBool::new(false);
static KILL: AtomicBool = AtomicBool::new(false);

/// The function running (FCALL): its name and the command that called it,
/// for FUNCTION STATS; `None` while an EVAL script runs.
fn running_function() -> MutexGuard<'static, Option<(String, Vec<Bytes>)>> {
    static RUNNING: Mutex<Option<(String, Vec<Bytes>)>> = Mutex::new(None);
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A script starts running (under its hold: one at a time): an EVAL
/// script, or the function `function` called by that command.
pub fn script_started(limit_ms: u64, function: Option<(String, Vec<Bytes>)>) {
    *running_function() = function;
    LIMIT_MS.store(limit_ms, Ordering::SeqCst);
    WROTE.store(false, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
    KILL.store(false, Ordering::SeqCst);
    RUNNING_SINCE.store(crate::node::unix_ms().max(1), Ordering::SeqCst);
}

/// The running script ended.
pub fn script_ended() {
    RUNNING_SINCE.store(0, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
    KILL.store(false, Ordering::SeqCst);
    *running_function() = None;
}

/// The running script ran a write command: SCRIPT KILL may not stop it.
pub fn script_wrote() {
    WROTE.store(true, Ordering::SeqCst);
}

/// Whether a script runs past its time limit (other commands get BUSY).
pub fn busy() -> bool {
    BUSY.load(Ordering::Relaxed)
}

/// What other clients' commands get while a script is busy.
pub fn busy_error() -> &'static str {
    if running_function().is_some() {
        BUSY_FUNCTION
    } else {
        BUSY_EVAL
    }
}

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// What runs, for FUNCTION STATS.
pub enum Running {
    Nothing,
    /// An EVAL script.
    Script,
    /// A function: its name, the calling command, how long it has run (ms).
    Function(String, Vec<Bytes>, u64),
}

/// What runs now (FUNCTION STATS).
pub fn running() -> Running {
    let since = RUNNING_SINCE.load(Ordering::SeqCst);
    if since == 0 {
        return Running::Nothing;
    }
    match running_function().as_ref() {
        Some((name, cmd)) => Running::Function(
            name.clone(),
            cmd.clone(),
            crate::node::unix_ms().saturating_sub(since),
        ),
        None => Running::Script,
    }
}

/// Why SCRIPT KILL or FUNCTION KILL cannot stop the running script.
pub enum KillRefused {
    NotBusy,
    Unkillable,
    /// SCRIPT KILL of a function, FUNCTION KILL of an EVAL script: the
    /// BUSY error naming the right command.
    OtherKind(&'static str),
}

/// SCRIPT KILL (`function` false) or FUNCTION KILL: asks the busy script
/// to stop.
pub fn request_kill(function: bool) -> Result<(), KillRefused> {
    if !busy() {
        return Err(KillRefused::NotBusy);
    }
    let is_function = running_function().is_some();
    if is_function != function {
        return Err(KillRefused::OtherKind(busy_error()));
    }
    if WROTE.load(Ordering::SeqCst) {
        return Err(KillRefused::Unkillable);
    }
    KILL.store(true, Ordering::SeqCst);
    Ok(())
}

/// SHUTDOWN: a busy script stops even if it wrote.
pub fn abort_for_shutdown() {
    if busy() {
        KILL.store(true, Ordering::SeqCst);
    }
}

/// The count hook's check, on the script's thread: true when the script
/// must stop.
pub(super) fn check_running() -> bool {
    let since = RUNNING_SINCE.load(Ordering::Relaxed);
    if since == 0 {
        return false;
    }
    let elapsed = crate::node::unix_ms().saturating_sub(since);
    if !BUSY.load(Ordering::Relaxed) && elapsed >= LIMIT_MS.load(Ordering::Relaxed) {
        BUSY.store(true, Ordering::SeqCst);
        tracing::warn!(
            "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the SCRIPT KILL command."
        );
    }
    KILL.load(Ordering::SeqCst)
}
