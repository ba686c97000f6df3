//! SHUTDOWN and the shutdown on SIGTERM/SIGINT, as Redis 7.0 runs them.
//!
//! 1. [`Flags`] come from `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]` or from
//!    `shutdown-on-sigterm` / `shutdown-on-sigint`.
//! 2. Client writes are paused from here on, so nothing is acknowledged
//!    that the files written at the end miss.
//! 3. Unless NOW is given or `shutdown-timeout` is 0, a node with replicas
//!    that have not acknowledged the whole stream waits for them: they are
//!    asked for an ACK, and the wait ends once every replica acknowledged
//!    the master offset, or after `shutdown-timeout` seconds.
//!    `SHUTDOWN ABORT` ends the wait; another SHUTDOWN meanwhile waits for
//!    the same outcome.
//! 4. The finish ([`finish`], Redis's `finishShutdown`): logs the replicas
//!    that lag; refuses while the AOF is being turned on and its first
//!    base is not written yet; cancels a running AOF rewrite; saves the RDB
//!    when SAVE is given, or when save points are set and NOSAVE is not,
//!    and refuses when that fails; writes and fsyncs the AOF a last time;
//!    exits. FORCE turns the refusals into log lines.
//!
//! A refused or aborted shutdown leaves the node serving as before (its
//! AOF running, writes resumed); every SHUTDOWN waiting on it gets
//! `-ERR Errors trying to SHUTDOWN. Check logs.`. A SHUTDOWN that arrives
//! during a finish waits for it and, if the node is still there, tries on
//! its own, as it would have run after the finish in Redis.
//!
//! The node's shutdown state ([`Shutdown`]) lives in `Node`; the command
//! path reads only [`Shutdown::writes_paused`].

use super::args::is;
use super::error::{CmdError, CmdResult};
use super::Client;
use crate::node::Node;
use crate::resp::Reply;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a waiting shutdown looks at its replicas and its deadline.
const POLL: Duration = Duration::from_millis(10);

/// What a shutdown was asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// SAVE (`Some(true)`) or NOSAVE (`Some(false)`); neither: save when
    /// save points are set.
    pub save: Option<bool>,
    /// Do not wait for lagging replicas.
    pub now: bool,
    /// Exit even when the AOF's first base is not written or the save
    /// fails.
    pub force: bool,
}

impl Flags {
    /// A `shutdown-on-sigterm` / `shutdown-on-sigint` value: `default` or
    /// some of `save nosave now force` (the config table has checked it).
    pub fn from_config(value: &str) -> Flags {
        let mut f = Flags::default();
        for word in value.split_whitespace() {
            match word {
                "save" => f.save = Some(true),
                "nosave" => f.save = Some(false),
                "now" => f.now = true,
                "force" => f.force = true,
                _ => {}
            }
        }
        f
    }
}

/// Where the node's one shutdown is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// None runs.
    Idle,
    /// Waiting for replicas to catch up; `id` tells the SHUTDOWNs waiting
    /// on it whether this wait is still the one they joined.
    Waiting { id: u64 },
    /// Pausing writes, or saving and stopping the files: the process exits
    /// at the end unless the shutdown is refused.
    Finishing,
}

/// The node-wide shutdown state (in `Node`).
pub struct Shutdown {
    phase: Mutex<Phase>,
    /// The last id given to a wait.
    last_id: Mutex<u64>,
    /// Client writes wait while a shutdown runs (see `cmd::wait_if_paused`).
    /// Unlike CLIENT PAUSE, CLIENT UNPAUSE does not lift it.
    pub writes_paused: AtomicBool,
    /// A SIGTERM/SIGINT asked for the running shutdown (Redis's
    /// `shutdown_asap`): a second SIGINT then exits at once.
    signalled: AtomicBool,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            phase: Mutex::new(Phase::Idle),
            last_id: Mutex::new(0),
            writes_paused: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
        }
    }
}

impl Shutdown {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A shutdown runs (waiting for replicas or finishing).
    pub fn running(&self) -> bool {
        *self.phase() != Phase::Idle
    }

    fn next_id(&self) -> u64 {
        let mut id = self.last_id.lock().unwrap_or_else(|e| e.into_inner());
        *id += 1;
        *id
    }

    /// The shutdown ended without exiting: writes resume. Takes the
    /// locked phase, so the change cannot race the shutdown's own.
    fn end(&self, phase: &mut Phase) {
        *phase = Phase::Idle;
        self.writes_paused.store(false, Ordering::SeqCst);
        self.signalled.store(false, Ordering::SeqCst);
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. Returns only when the
/// node keeps running.
pub async fn command(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let mut flags = Flags::default();
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for a in &args[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            flags.now = true;
        } else if is(a, "force") {
            flags.force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let any_flag = save || nosave || flags.now || flags.force;
    if (abort && any_flag) || (save && nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return if abort_running(&client.node).await {
            Ok(Reply::Ok)
        } else {
            Err(CmdError::other("ERR No shutdown in progress."))
        };
    }
    flags.save = if save {
        Some(true)
    } else if nosave {
        Some(false)
    } else {
        None
    };
    run(&client.node, flags).await;
    Err(CmdError::other(
        "ERR Errors trying to SHUTDOWN. Check logs.",
    ))
}

/// SIGTERM or SIGINT (`signal`): shuts down with the flags of
/// `shutdown-on-sigterm` / `shutdown-on-sigint`. A second SIGINT while a
/// signalled shutdown runs exits at once, as in Redis.
pub fn on_signal(node: &Arc<Node>, signal: &str) {
    let sh = &node.shutdown;
    if signal == "SIGINT" && sh.signalled.load(Ordering::SeqCst) {
        tracing::warn!("You insist... exiting now.");
        std::process::exit(1);
    }
    tracing::warn!("Received {signal} scheduling shutdown...");
    sh.signalled.store(true, Ordering::SeqCst);
    if sh.running() {
        // As Redis: the running shutdown goes on with its own flags.
        return;
    }
    let directive = if signal == "SIGINT" {
        "shutdown-on-sigint"
    } else {
        "shutdown-on-sigterm"
    };
    let flags = Flags::from_config(&node.config().get(directive).unwrap_or_default());
    // Saving needs the shards: run it on shard 0.
    let node2 = node.clone();
    node.mesh.call_on(
        0,
        Box::new(move || {
            glommio::spawn_local(async move { run(&node2, flags).await }).detach();
        }),
    );
}

/// Runs a shutdown with `flags` (see the module documentation). Returns
/// only when the node keeps running: the shutdown was refused or aborted
/// (both are logged).
pub async fn run(node: &Arc<Node>, mut flags: Flags) {
    // A busy script holds every shard: it is stopped, wrote or not (what
    // Redis's SHUTDOWN NOSAVE does to it by exiting), so the shutdown can
    // have the shards.
    crate::scripting::abort_for_shutdown();
    let sh = &node.shutdown;
    // One shutdown at a time.
    loop {
        let joined = {
            let mut phase = sh.phase();
            match *phase {
                Phase::Idle => {
                    *phase = Phase::Finishing;
                    break;
                }
                Phase::Waiting { id } => Some(id),
                Phase::Finishing => None,
            }
        };
        match joined {
            // Shares the outcome of the wait it joined: the process exits,
            // or the shutdown was aborted or refused.
            Some(id) => loop {
                let phase = *sh.phase();
                if phase != (Phase::Waiting { id }) && phase != Phase::Finishing {
                    return;
                }
                glommio::timer::sleep(POLL).await;
            },
            None => glommio::timer::sleep(POLL).await,
        }
    }
    tracing::warn!("User requested shutdown...");
    crate::supervise::notify("STOPPING=1\n");
    // Half-loaded data must never overwrite the dump.
    if node.loading.load(Ordering::SeqCst) {
        flags.save = Some(false);
    }
    // Writes that passed their checks before the pause end first; after
    // that the offset only moves by our own GETACK and heartbeats.
    sh.writes_paused.store(true, Ordering::SeqCst);
    crate::shard::writes_drained().await;
    let timeout_secs = node
        .config()
        .int_value("shutdown-timeout")
        .unwrap_or(10)
        .max(0) as u64;
    if !flags.now && timeout_secs > 0 && !replicas_in_sync(node) {
        let id = sh.next_id();
        *sh.phase() = Phase::Waiting { id };
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        node.repl.request_acks(crate::shard::current().id);
        tracing::info!("Waiting for replicas before shutting down.");
        loop {
            glommio::timer::sleep(POLL).await;
            let done = Instant::now() >= deadline || replicas_in_sync(node);
            let mut phase = sh.phase();
            if *phase != (Phase::Waiting { id }) {
                // Aborted (and logged) by SHUTDOWN ABORT.
                return;
            }
            if done {
                *phase = Phase::Finishing;
                break;
            }
        }
    }
    if finish(node, flags).await.is_err() {
        tracing::warn!(
            "Errors trying to shut down the server. Check the logs for more information."
        );
        sh.end(&mut sh.phase());
    }
}

/// SHUTDOWN ABORT: ends a shutdown waiting for replicas. One that is
/// finishing cannot be stopped: this waits for its outcome (the process
/// exits, or it was refused and there is nothing left to abort).
async fn abort_running(node: &Arc<Node>) -> bool {
    let sh = &node.shutdown;
    loop {
        {
            let mut phase = sh.phase();
            match *phase {
                Phase::Idle => return false,
                Phase::Waiting { .. } => {
                    sh.end(&mut phase);
                    tracing::info!("Shutdown manually aborted.");
                    return true;
                }
                Phase::Finishing => {}
            }
        }
        glommio::timer::sleep(POLL).await;
    }
}

/// Every attached replica has acknowledged the whole stream (Redis's
/// `isReadyToShutdown`).
fn replicas_in_sync(node: &Node) -> bool {
    let head = node.repl.master_offset();
    node.repl
        .replicas()
        .iter()
        .all(|r| r.ack_offset.load(Ordering::Relaxed) == head)
}

/// Logs the replicas that have not acknowledged the whole stream, as
/// Redis's `finishShutdown` does.
fn report_replicas(node: &Node) {
    let replicas = node.repl.replicas();
    if replicas.is_empty() {
        return;
    }
    let head = node.repl.master_offset();
    let now_secs = crate::node::unix_ms() / 1000;
    let mut lagging = 0;
    for r in &replicas {
        let acked = r.ack_offset.load(Ordering::Relaxed);
        if acked == head {
            continue;
        }
        lagging += 1;
        let state = r.state();
        let lag = if state == "online" {
            now_secs.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed) / 1000)
        } else {
            0
        };
        tracing::warn!(
            "Lagging replica {} reported offset {} behind master, lag={lag}, state={state}.",
            r.name(),
            head as i64 - acked as i64
        );
    }
    tracing::info!(
        "{} of {} replicas are in sync when shutting down.",
        replicas.len() - lagging,
        replicas.len()
    );
}

/// A reason to refuse the shutdown: logged, and fatal to it unless FORCE.
fn unless_forced(flags: Flags, exit_anyway: &str, refused: &str) -> Result<(), ()> {
    if flags.force {
        tracing::warn!("{exit_anyway}");
        Ok(())
    } else {
        tracing::warn!("{refused}");
        Err(())
    }
}

/// Step 4 of the module documentation. Exits the process on success;
/// `Err` when the shutdown is refused (logged).
async fn finish(node: &Arc<Node>, flags: Flags) -> Result<(), ()> {
    report_replicas(node);
    if node.aof.writing_first_base() && node.config().appendonly() {
        unless_forced(
            flags,
            "Writing initial AOF. Exit anyway.",
            "Writing initial AOF, can't exit.",
        )?;
    }
    crate::persist::aof::cancel_rewrite_for_shutdown(node).await;
    let save = flags
        .save
        .unwrap_or_else(|| !node.config().save_points().is_empty());
    if node.bgsave_in_progress.load(Ordering::SeqCst) {
        // Ours is a task, not a child: cancelled, it fails at its next
        // slice and frees the snapshot for the final save; its temp file
        // is removed below.
        tracing::warn!("There is a child saving an .rdb. Killing it!");
        super::server::cancel_running_save(node);
    }
    if save {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        while node.bgsave_in_progress.load(Ordering::SeqCst) {
            glommio::timer::sleep(POLL).await;
        }
        if super::server::save_dataset(node).await.is_err() {
            unless_forced(
                flags,
                "Error trying to save the DB. Exit anyway.",
                "Error trying to save the DB, can't exit.",
            )?;
        }
    }
    // Last, so that a refused shutdown leaves the AOF running; writes are
    // paused, so nothing reaches it after the save either way.
    crate::persist::aof::flush_on_shutdown(node).await;
    // A BGSAVE, a sync transfer or a spill still writing leaves no file.
    crate::persist::temp::remove_all();
    // The process exits here; like Redis, no reply is sent.
    node.shutdown_now()
}

#[cfg(test)]
mod tests {
    use super::Flags;

    #[test]
    fn flags_from_the_config_directive() {
        assert_eq!(Flags::from_config("default"), Flags::default());
        assert_eq!(
            Flags::from_config("save now force"),
            Flags {
                save: Some(true),
                now: true,
                force: true
            }
        );
        assert_eq!(
            Flags::from_config("nosave"),
            Flags {
                save: Some(false),
                ..Flags::default()
            }
        );
    }
}
