//! FAILOVER: a coordinated switchover from this master to one of its
//! replicas, with Redis 6.2+'s protocol so Cascade and Redis nodes can
//! fail over to each other.
//!
//! 1. `FAILOVER [TO host port [FORCE]] [TIMEOUT ms]` pauses client writes
//!    and enters `waiting-for-sync`; a task polls until the target (or,
//!    without TO, any replica) has acknowledged the whole stream.
//! 2. It then enters `failover-in-progress` and makes this node a replica
//!    of the target; the link's PSYNC carries a fourth argument `FAILOVER`,
//!    on which the target promotes itself before answering (see
//!    [`crate::cmd::repl`]), so the old master continues by partial resync
//!    from the new one's second id.
//! 3. Once the link's PSYNC was accepted the state is cleared and writes
//!    resume (they now get `-READONLY`). A rejected PSYNC, the timeout
//!    without FORCE, or `FAILOVER ABORT` reverts: writes resume on this
//!    node as a master.
//!
//! Owns the failover state only; the role changes go through
//! [`super::replica`].

use crate::node::Node;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `master_failover_state` in INFO replication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailoverState {
    /// No failover.
    #[default]
    None,
    /// Writes paused; waiting for the target to acknowledge everything.
    WaitingForSync,
    /// We became a replica of the target and wait for its PSYNC answer.
    InProgress,
}

impl FailoverState {
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "no-failover",
            FailoverState::WaitingForSync => "waiting-for-sync",
            FailoverState::InProgress => "failover-in-progress",
        }
    }
}

/// The failover being run, in [`super::ReplState::failover`].
#[derive(Clone, Debug, Default)]
pub struct Failover {
    pub state: FailoverState,
    /// TO host port, or the replica chosen once it caught up.
    pub target: Option<(String, u16)>,
    pub deadline: Option<Instant>,
    pub force: bool,
    /// Bumped by every start and end, so a stale task stops.
    pub generation: u64,
}

/// What FAILOVER asked for.
pub struct Request {
    pub target: Option<(String, u16)>,
    pub timeout_ms: u64,
    pub force: bool,
}

/// Validates and starts a failover (the checks and texts of Redis's
/// FAILOVER, in its order).
pub fn start(node: &Arc<Node>, req: Request) -> Result<(), String> {
    let repl = &node.repl;
    if repl.failover().state != FailoverState::None {
        return Err("ERR FAILOVER already in progress.".into());
    }
    if repl.is_replica.load(Ordering::SeqCst) {
        return Err("ERR FAILOVER is not valid when server is a replica.".into());
    }
    let replicas = repl.replicas();
    if replicas.is_empty() {
        return Err("ERR FAILOVER requires connected replicas.".into());
    }
    if req.force && (req.timeout_ms == 0 || req.target.is_none()) {
        return Err(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.".into(),
        );
    }
    match &req.target {
        Some((host, port)) => {
            let Some(r) = replicas
                .iter()
                .find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == *port)
            else {
                return Err("ERR FAILOVER target HOST and PORT is not a replica.".into());
            };
            if r.state() != "online" {
                return Err("ERR FAILOVER target replica is not online.".into());
            }
            tracing::info!("FAILOVER requested to {host}:{port}.");
        }
        None => tracing::info!("FAILOVER requested to any replica."),
    }
    let generation = {
        let mut f = repl.failover_mut();
        f.generation += 1;
        f.state = FailoverState::WaitingForSync;
        f.target = req.target;
        f.deadline =
            (req.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(req.timeout_ms));
        f.force = req.force;
        f.generation
    };
    // Client writes wait until the failover ends (like CLIENT PAUSE WRITE,
    // but CLIENT UNPAUSE does not end it).
    node.failover_writes_paused.store(true, Ordering::SeqCst);
    // Replicas acknowledge at once instead of at their next second.
    repl.request_acks(crate::shard::current().id);
    let node = node.clone();
    glommio::spawn_local(async move {
        // Writes that passed the pause before it was set end first; after
        // that the offset only moves by our own GETACK and heartbeats.
        crate::shard::writes_drained().await;
        wait_for_sync(&node, generation).await
    })
    .detach();
    Ok(())
}

/// Step 1 → 2: polls until a replica caught up (or the timeout).
async fn wait_for_sync(node: &Arc<Node>, generation: u64) {
    loop {
        glommio::timer::sleep(Duration::from_millis(5)).await;
        let f = node.repl.failover();
        if f.generation != generation || f.state != FailoverState::WaitingForSync {
            return;
        }
        if f.deadline.is_some_and(|d| Instant::now() >= d) {
            if f.force {
                let (host, port) = f.target.clone().unwrap_or_default();
                tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                switch(node, host, port).await;
            } else {
                abort(node, "Replica never caught up before timeout").await;
            }
            return;
        }
        let head = node.repl.master_offset();
        let synced = node.repl.replicas().into_iter().find(|r| {
            r.state() == "online"
                && r.ack_offset.load(Ordering::Relaxed) == head
                && f.target
                    .as_ref()
                    .is_none_or(|(h, p)| r.ip.eq_ignore_ascii_case(h) && r.port == *p)
        });
        if let Some(r) = synced {
            tracing::info!(
                "Failover target {}:{} is synced, failing over.",
                r.ip,
                r.port
            );
            switch(node, r.ip.clone(), r.port).await;
            return;
        }
    }
}

/// Step 2: become a replica of the target; the link sends PSYNC FAILOVER.
async fn switch(node: &Arc<Node>, host: String, port: u16) {
    {
        let mut f = node.repl.failover_mut();
        f.state = FailoverState::InProgress;
        f.target = Some((host.clone(), port));
    }
    super::replica::follow(node, host, port).await;
}

/// Step 3, from the link: the target answered our PSYNC FAILOVER.
pub async fn psync_answered(node: &Arc<Node>, accepted: bool) {
    if node.repl.failover().state != FailoverState::InProgress {
        return;
    }
    if accepted {
        clear(node);
    } else {
        abort(node, "Failover target rejected psync request").await;
    }
}

/// Ends the failover and resumes writes; in `failover-in-progress` this
/// node becomes a master again (Redis's abortFailover).
pub async fn abort(node: &Arc<Node>, why: &str) {
    let f = node.repl.failover();
    if f.state == FailoverState::None {
        return;
    }
    match &f.target {
        Some((h, p)) => tracing::info!("FAILOVER to {h}:{p} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    if f.state == FailoverState::InProgress {
        super::replica::promote(node, "failover abort").await;
    }
    clear(node);
}

fn clear(node: &Node) {
    {
        let mut f = node.repl.failover_mut();
        f.generation += 1;
        f.state = FailoverState::None;
        f.target = None;
        f.deadline = None;
        f.force = false;
    }
    node.failover_writes_paused.store(false, Ordering::SeqCst);
}
