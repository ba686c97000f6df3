//! Replication: the shared backlog ring, the master side (one feeder per
//! replica, the PSYNC decision, full syncs) and the replica side (the link
//! to our master and its state machine).
//!
//! # Files
//! - [`backlog`]: the ring every write goes through once, with the global
//!   replication offset.
//! - [`master`]: serving `SYNC`/`PSYNC` on a connection that became a
//!   replica: full or partial resync, then streaming the ring.
//! - [`replica`]: the link to our master: handshake, loading its snapshot,
//!   applying and forwarding its stream, acknowledgements, reconnects.
//! - this file: the node-wide replication state ([`ReplState`]): role,
//!   replication ids and offsets, the registry of attached replicas, and
//!   the counters `INFO replication`/`INFO stats` print.
//!
//! Depends on `shard` (to install the ring in every shard and to hold
//! them for a cut), `persist` (snapshots), `resp` and `cmd` (the replica
//! applies its master's commands through the normal command path). Commands
//! reach it through `cmd::repl`; nothing here parses client commands.

pub mod backlog;
pub mod failover;
pub mod master;
pub mod replica;
pub mod spill;

use crate::util::num::Decimal;
use backlog::Backlog;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A replication id: 40 hex characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplId(pub String);

impl ReplId {
    /// The all-zero id Redis prints for "no secondary id".
    pub fn zero() -> ReplId {
        ReplId("0".repeat(40))
    }

    pub fn random() -> ReplId {
        ReplId(crate::node::random_hex40())
    }

    pub fn is_valid(s: &str) -> bool {
        s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

impl std::fmt::Display for ReplId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Our replication ids, as PSYNC and `INFO replication` see them.
#[derive(Clone, Debug)]
pub struct Ids {
    /// `master_replid`: the history we are part of now.
    pub replid: ReplId,
    /// `master_replid2`: the history we came from before a promotion.
    pub replid2: ReplId,
    /// `second_repl_offset`: offsets up to (excluding) this one are valid
    /// under `replid2`; -1 when there is none.
    pub second_offset: i64,
}

/// Who we follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica { host: String, port: u16 },
}

/// One replica attached to us, as INFO shows it. Shared between the
/// feeder task (which updates it) and INFO (which reads it).
pub struct ReplicaHandle {
    pub client_id: u64,
    pub ip: String,
    /// The port the replica listens on (`REPLCONF listening-port`).
    pub port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub state: Mutex<&'static str>,
    /// Offset the replica last acknowledged (`REPLCONF ACK`).
    pub ack_offset: AtomicU64,
    /// Unix ms of the last ACK (INFO `lag`).
    pub last_ack_ms: AtomicU64,
    /// Time lag: (end offset, unix ms) of each send to the replica not yet
    /// acknowledged, oldest first (see [`ReplicaHandle::lag_ms`]).
    pub sent: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// Where its feed reads the stream next; `u64::MAX` before it streams.
    pub cursor: AtomicU64,
}

/// Unacknowledged sends remembered per replica; beyond it the newest mark
/// is extended instead (over-estimating the lag of the newest bytes, never
/// under-estimating it).
const SENT_MARKS: usize = 4096;

impl ReplicaHandle {
    pub fn new(client_id: u64, ip: String, port: u16) -> ReplicaHandle {
        ReplicaHandle {
            client_id,
            ip,
            port,
            state: Mutex::new("wait_bgsave"),
            ack_offset: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(0),
            sent: Mutex::new(std::collections::VecDeque::new()),
            cursor: AtomicU64::new(u64::MAX),
        }
    }

    /// The stream up to `end` was handed to the replica's socket at `now_ms`.
    pub fn note_sent(&self, end: u64, now_ms: u64) {
        self.cursor.store(end, Ordering::Relaxed);
        let mut sent = lock(&self.sent);
        if sent.len() >= SENT_MARKS {
            if let Some(last) = sent.back_mut() {
                last.0 = end;
                return;
            }
        }
        sent.push_back((end, now_ms));
    }

    /// The replica acknowledged `offset` at `now_ms`.
    pub fn note_ack(&self, offset: u64, now_ms: u64) {
        self.ack_offset.store(offset, Ordering::Relaxed);
        self.last_ack_ms.store(now_ms, Ordering::Relaxed);
        let mut sent = lock(&self.sent);
        while sent.front().is_some_and(|m| m.0 <= offset) {
            sent.pop_front();
        }
    }

    /// Milliseconds since the oldest byte the replica has not acknowledged
    /// was sent to it (0 when it acknowledged everything sent): how far
    /// behind it is in time, which the byte lag alone does not tell.
    pub fn lag_ms(&self, now_ms: u64) -> u64 {
        lock(&self.sent)
            .front()
            .map_or(0, |m| now_ms.saturating_sub(m.1))
    }

    pub fn state(&self) -> &'static str {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_state(&self, s: &'static str) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// `ip:port` as Redis names a replica in logs.
    pub fn name(&self) -> String {
        if self.port == 0 {
            format!("{}:<unknown-replica-port>", self.ip)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

/// What the replica side shows of its link (`INFO replication` on a
/// replica). Written by the link task only.
#[derive(Clone, Debug, Default)]
pub struct LinkInfo {
    /// `master_link_status:up`.
    pub up: bool,
    /// Handshake state for `ROLE` (`connect`, `connecting`, `handshake`,
    /// `sync`, `connected`).
    pub phase: &'static str,
    /// Unix ms of the last byte from the master.
    pub last_io_ms: u64,
    /// Unix ms the link went down (0: never up yet).
    pub down_since_ms: u64,
    /// A full sync transfer is in progress; sizes for INFO.
    pub sync_in_progress: bool,
    pub sync_total_bytes: i64,
    pub sync_read_bytes: u64,
    /// Offset processed from the master's stream (`slave_repl_offset`).
    pub processed_offset: u64,
}

/// Lets a snapshot on a replica take its cut between two commands of the
/// master's stream: the link marks the span in which it applies commands
/// and forwards their bytes; a cut waits until the link is outside such a
/// span and keeps it out until the cut is taken. So the ring's head at the
/// cut is exactly the stream the snapshot holds (chained replicas rely on
/// it).
#[derive(Default)]
pub struct ApplyGate {
    /// Cuts waiting or in progress.
    wanted: AtomicUsize,
    /// The link is applying commands.
    applying: AtomicBool,
    resume: crate::shard::inbox::Inbox<()>,
}

impl ApplyGate {
    /// Link side: waits while a cut is wanted, then marks the span.
    pub async fn enter(&self) {
        loop {
            // Dekker-style: store ours, then read theirs (both SeqCst), so
            // either we see the cut or the cut sees us applying.
            self.applying.store(true, Ordering::SeqCst);
            if self.wanted.load(Ordering::SeqCst) == 0 {
                return;
            }
            self.applying.store(false, Ordering::SeqCst);
            self.resume.recv().await;
        }
    }

    pub fn leave(&self) {
        self.applying.store(false, Ordering::SeqCst);
    }

    /// Link side: a cut waits for the current span to end.
    pub fn cut_wanted(&self) -> bool {
        self.wanted.load(Ordering::SeqCst) != 0
    }

    /// Cut side: keeps the link out of its span until [`ApplyGate::resume`].
    pub async fn pause(&self) {
        self.wanted.fetch_add(1, Ordering::SeqCst);
        while self.applying.load(Ordering::SeqCst) {
            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
        }
    }

    pub fn resume(&self) {
        self.wanted.fetch_sub(1, Ordering::SeqCst);
        self.resume.push(());
    }
}

/// The node-wide replication state.
pub struct ReplState {
    role: Mutex<Role>,
    /// Fast check for the command path (read-only replica, stale data).
    pub is_replica: AtomicBool,
    ids: Mutex<Ids>,
    /// The ring, once created (a master creates it when the first replica
    /// asks; a replica when it synchronised). Shards keep their own handle
    /// to it (see `install_backlog`).
    backlog: Mutex<Option<Arc<Backlog>>>,
    /// The ring's capacity in bytes (0 without one), for the `maxmemory`
    /// check, which may not take the lock above on every command.
    pub ring_capacity: AtomicU64,
    /// `master_repl_offset` while there is no ring.
    offset_without_backlog: AtomicU64,
    /// Attached replicas, in attach order.
    replicas: Mutex<Vec<Arc<ReplicaHandle>>>,
    /// Replica side: the link's state for INFO.
    link: Mutex<LinkInfo>,
    /// Replica side: we hold a history (our replid and offset) that a
    /// master may let us continue with PSYNC.
    pub cached_master: AtomicBool,
    /// Replica side: the database the master's stream is in, kept across
    /// reconnects (set from the snapshot's `repl-stream-db`, then SELECTs).
    pub stream_db: AtomicUsize,
    /// See [`ApplyGate`].
    pub gate: ApplyGate,
    /// FAILOVER's state (see `failover`).
    pub failover: Mutex<failover::Failover>,
    /// The full sync still gathering replicas (see `master::SyncJob`).
    pub pending_sync: Mutex<Option<Arc<master::SyncJob>>>,
    /// Bumped each time the master we follow changes; a link task whose
    /// generation is stale stops.
    pub link_generation: AtomicU64,
    /// Replica side: the cached master (replid, offset) we will try to
    /// PSYNC with: our own ids and offset.
    pub sync_full: AtomicU64,
    /// Full syncs refused by `replica-protect-data` (an empty master with
    /// a new replid).
    pub protect_refusals: AtomicU64,
    /// `min-replicas-to-write` when it is in force (it and
    /// `min-replicas-max-lag` both non-zero), else 0: one atomic load is
    /// all a write pays when the feature is off.
    pub min_replicas_to_write: AtomicUsize,
    /// Online replicas whose last ACK is at most `min-replicas-max-lag`
    /// seconds old (`min_slaves_good_slaves`), refreshed by the cron.
    pub good_replicas: AtomicUsize,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// Unix seconds of the last full sync transfer from our master, -1.
    pub last_sync_unix: AtomicI64,
    /// Bytes of replication traffic: read from our master (snapshot and
    /// stream) and written to our replicas (`total_net_repl_*_bytes`, kept
    /// apart from client traffic as Redis 7.0 does).
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// The same per second over the cron's last sampling period
    /// (`instantaneous_*_repl_kbps`).
    pub input_rate: AtomicU64,
    pub output_rate: AtomicU64,
}

impl Default for ReplState {
    fn default() -> Self {
        ReplState {
            role: Mutex::new(Role::Master),
            is_replica: AtomicBool::new(false),
            ids: Mutex::new(Ids {
                replid: ReplId::random(),
                replid2: ReplId::zero(),
                second_offset: -1,
            }),
            backlog: Mutex::new(None),
            ring_capacity: AtomicU64::new(0),
            offset_without_backlog: AtomicU64::new(0),
            replicas: Mutex::new(Vec::new()),
            link: Mutex::new(LinkInfo::default()),
            link_generation: AtomicU64::new(0),
            pending_sync: Mutex::new(None),
            failover: Mutex::new(failover::Failover::default()),
            gate: ApplyGate::default(),
            cached_master: AtomicBool::new(false),
            stream_db: AtomicUsize::new(0),
            sync_full: AtomicU64::new(0),
            protect_refusals: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            input_rate: AtomicU64::new(0),
            output_rate: AtomicU64::new(0),
            min_replicas_to_write: AtomicUsize::new(0),
            good_replicas: AtomicUsize::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            last_sync_unix: AtomicI64::new(-1),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplState {
    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn set_role(&self, role: Role) {
        let replica = matches!(role, Role::Replica { .. });
        self.is_replica.store(replica, Ordering::SeqCst);
        crate::log::set_role(if replica { b'S' } else { b'M' });
        *lock(&self.role) = role;
    }

    pub fn ids(&self) -> Ids {
        lock(&self.ids).clone()
    }

    pub fn set_ids(&self, ids: Ids) {
        *lock(&self.ids) = ids;
    }

    pub fn backlog(&self) -> Option<Arc<Backlog>> {
        lock(&self.backlog).clone()
    }

    /// Replaces the ring (the old one is closed so its readers stop).
    pub fn set_backlog(&self, b: Option<Arc<Backlog>>) {
        self.ring_capacity.store(
            b.as_ref().map_or(0, |r| r.capacity() as u64),
            Ordering::Relaxed,
        );
        let old = std::mem::replace(&mut *lock(&self.backlog), b);
        if let Some(old) = old {
            self.offset_without_backlog
                .store(old.head(), Ordering::SeqCst);
            old.close();
        }
    }

    /// Installs the successor of a resized ring (see `Backlog::resize`):
    /// the old ring closed itself, and its readers move on to the new one.
    pub fn install_resized(&self, next: Arc<Backlog>) {
        self.ring_capacity
            .store(next.capacity() as u64, Ordering::Relaxed);
        *lock(&self.backlog) = Some(next);
    }

    /// `master_repl_offset`.
    pub fn master_offset(&self) -> u64 {
        match self.backlog() {
            Some(b) => b.head(),
            None => self.offset_without_backlog.load(Ordering::SeqCst),
        }
    }

    pub fn set_offset_without_backlog(&self, off: u64) {
        self.offset_without_backlog.store(off, Ordering::SeqCst);
    }

    pub fn replicas(&self) -> Vec<Arc<ReplicaHandle>> {
        lock(&self.replicas).clone()
    }

    pub fn add_replica(&self, r: Arc<ReplicaHandle>) {
        lock(&self.replicas).push(r);
    }

    pub fn remove_replica(&self, client_id: u64) {
        lock(&self.replicas).retain(|r| r.client_id != client_id);
    }

    /// Puts `REPLCONF GETACK *` into the stream so replicas acknowledge at
    /// once instead of at their next periodic ACK (WAIT, FAILOVER).
    /// `producer` is the calling shard's id.
    pub fn request_acks(&self, producer: usize) {
        if let Some(ring) = self.backlog() {
            ring.append_raw(
                producer,
                b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n",
            );
        }
    }

    pub fn failover(&self) -> failover::Failover {
        lock(&self.failover).clone()
    }

    pub fn failover_mut(&self) -> MutexGuard<'_, failover::Failover> {
        lock(&self.failover)
    }

    pub fn link(&self) -> LinkInfo {
        lock(&self.link).clone()
    }

    pub fn update_link(&self, f: impl FnOnce(&mut LinkInfo)) {
        f(&mut lock(&self.link));
    }

    /// PSYNC2 after a promotion: the old history becomes the secondary id,
    /// valid up to our offset + 1, and a new id starts.
    pub fn shift_replid(&self) -> Ids {
        let offset = self.master_offset();
        let mut ids = lock(&self.ids);
        ids.replid2 = ids.replid.clone();
        ids.second_offset = offset as i64 + 1;
        ids.replid = ReplId::random();
        ids.clone()
    }
}

/// Where the replication stream stands: what a snapshot taken now
/// belongs to (read at a cut).
pub struct StreamPosition {
    /// The database the stream is in: a replica's ring carries its
    /// master's bytes verbatim, so its own replicas must start there. A
    /// master's next write after a cut starts with SELECT, so 0 will do.
    pub stream_db: usize,
    pub replid: String,
    pub offset: u64,
}

impl StreamPosition {
    pub fn now(node: &crate::node::Node) -> StreamPosition {
        let repl = &node.repl;
        StreamPosition {
            stream_db: if repl.is_replica.load(Ordering::SeqCst) {
                repl.stream_db.load(Ordering::SeqCst)
            } else {
                0
            },
            replid: repl.ids().replid.0,
            offset: repl.master_offset(),
        }
    }

    /// The position at a cut (every shard held): on a master the next write
    /// after it starts with SELECT (see `stream_db` for a replica's stream).
    pub fn at_cut(node: &crate::node::Node) -> StreamPosition {
        if let Some(ring) = node.repl.backlog() {
            ring.forget_db();
        }
        StreamPosition::now(node)
    }

    /// The RDB aux fields `repl-stream-db`, `repl-id`, `repl-offset`.
    pub fn aux(&self) -> Vec<(bytes::Bytes, bytes::Bytes)> {
        use bytes::Bytes;
        vec![
            (
                Bytes::from_static(b"repl-stream-db"),
                Bytes::from(self.stream_db.to_string()),
            ),
            (
                Bytes::from_static(b"repl-id"),
                Bytes::from(self.replid.clone()),
            ),
            (
                Bytes::from_static(b"repl-offset"),
                Bytes::from(self.offset.to_string()),
            ),
        ]
    }
}

/// The replication aux fields a dump carries, as Redis writes them: on a
/// replica that holds its master's history, and on a master that has a
/// ring. Called at the cut.
pub fn save_info(node: &crate::node::Node) -> Vec<(bytes::Bytes, bytes::Bytes)> {
    let repl = &node.repl;
    let include = if repl.is_replica.load(Ordering::SeqCst) {
        repl.cached_master.load(Ordering::SeqCst)
    } else {
        repl.backlog().is_some()
    };
    if include {
        StreamPosition::now(node).aux()
    } else {
        Vec::new()
    }
}

/// After loading a dump that carries replication info: a replica takes it
/// as the history to continue with PSYNC; a master keeps it as its
/// secondary id (valid up to that offset), so its former replicas can
/// continue with it (Redis 7 does the same).
pub fn restore_info(node: &crate::node::Node, id: &str, offset: u64, stream_db: usize) {
    if !ReplId::is_valid(id) {
        return;
    }
    let repl = &node.repl;
    repl.set_offset_without_backlog(offset);
    if repl.is_replica.load(Ordering::SeqCst) {
        repl.set_ids(Ids {
            replid: ReplId(id.to_string()),
            replid2: ReplId::zero(),
            second_offset: -1,
        });
        repl.cached_master.store(true, Ordering::SeqCst);
        repl.stream_db.store(stream_db, Ordering::SeqCst);
    } else {
        repl.set_ids(Ids {
            replid: ReplId::random(),
            replid2: ReplId(id.to_string()),
            second_offset: offset as i64 + 1,
        });
    }
}

/// Formats one command as a RESP array, the form the stream carries.
pub fn encode_command(args: &[impl AsRef<[u8]>], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(Decimal::u64(args.len() as u64).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(Decimal::u64(a.len() as u64).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_resp_arrays() {
        let mut out = Vec::new();
        encode_command(&[&b"SET"[..], b"k", b""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn promotion_shifts_ids() {
        let st = ReplState::default();
        let before = st.ids();
        st.set_offset_without_backlog(100);
        let after = st.shift_replid();
        assert_eq!(after.replid2, before.replid);
        assert_eq!(after.second_offset, 101);
        assert_ne!(after.replid, before.replid);
        assert!(ReplId::is_valid(&after.replid.0));
    }
}
