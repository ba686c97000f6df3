//! Master side: a connection that sent `PSYNC`/`SYNC` becomes a replica
//! feed.
//!
//! # Lifecycle of one replica (all on the shard that accepted it)
//! 1. [`serve`] decides: partial resync (`+CONTINUE`, the cursor starts at
//!    the requested offset inside the ring) or full resync.
//! 2. Full resync: the replica joins the pending [`SyncJob`] or starts one.
//!    The job's leader waits `repl-diskless-sync-delay` so replicas that
//!    arrive together share one snapshot, takes the cut (every shard held,
//!    the ring's head read), encodes the RDB once into `Bytes` chunks; every
//!    member sends `+FULLRESYNC <replid> <offset>` and the same chunks
//!    (diskless: `$EOF:<mark>` framing; disk: `$<len>` bulk, the file also
//!    written as `dbfilename`).
//! 3. [`feed`]: the cursor streams `[cursor, head)` from the ring's memory
//!    straight to the socket, reads `REPLCONF ACK`s, disconnects a replica
//!    that stops acknowledging (`repl-timeout`) or that the ring overran.
//!
//! Producers never wait for a replica: an overrun replica is dropped and
//! will come back for a full sync.

use super::backlog::{Backlog, SendError};
use super::spill::Spill;
use super::{ReplicaHandle, Role};
use crate::cmd::Client;
use crate::net::input::{Room, SocketInput};
use crate::node::{unix_ms, Node};
use crate::persist::fanout::{ChunkReader, ChunkStream, FanoutSink, Next};
use crate::persist::{dump, snapshot};
use crate::resp::{DecodeLimits, Decoder};
use crate::shard;
use bytes::BytesMut;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// What PSYNC (or the old SYNC) asked for.
#[derive(Clone, Debug)]
pub struct PsyncRequest {
    /// The replication id the replica follows, `?` for none.
    pub replid: String,
    /// The next offset it needs (its offset + 1), -1 for none.
    pub offset: i64,
    /// `SYNC`: no `+FULLRESYNC` line, always a disk-style bulk.
    pub old_sync: bool,
}

/// One snapshot shared by every replica that asked for a full sync while
/// it was gathering.
pub struct SyncJob {
    diskless: bool,
    members: AtomicUsize,
    /// Diskless: the RDB stream every member reads (they subscribe when
    /// they join, before the first byte is produced).
    stream: Option<Arc<ChunkStream>>,
    result: Mutex<Option<Result<Arc<SyncPayload>, String>>>,
    waiters: Mutex<Vec<Waker>>,
}

/// The cut, and where its RDB comes from.
pub struct SyncPayload {
    pub replid: String,
    /// Replication offset of the cut: the stream continues from here.
    pub offset: u64,
    /// Disk-based sync: the written file (open, so a later save replacing
    /// the name does not matter) and its length. `None` for diskless.
    pub file: Option<(std::fs::File, u64)>,
    /// The stream since the cut, kept for the members however long their
    /// transfer takes.
    pub spill: Option<Arc<Spill>>,
}

impl SyncJob {
    fn finish(&self, r: Result<Arc<SyncPayload>, String>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        for w in self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            w.wake();
        }
    }

    async fn wait(&self) -> Result<Arc<SyncPayload>, String> {
        std::future::poll_fn(|cx| {
            if let Some(r) = self
                .result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return std::task::Poll::Ready(r);
            }
            self.waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            // Re-check: the leader may have finished in between.
            match self
                .result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                Some(r) => std::task::Poll::Ready(r),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }
}

/// Creates the ring on first use and installs it in every shard, while all
/// shards are held so no write slips between the offset and the ring.
pub async fn ensure_backlog(node: &Arc<Node>) -> Arc<Backlog> {
    if let Some(b) = node.repl.backlog() {
        return b;
    }
    let guard = shard::hold_all().await;
    if let Some(b) = node.repl.backlog() {
        return b;
    }
    let size = node.config().repl_ring_size();
    let start = node.repl.master_offset();
    let b = Arc::new(Backlog::new(size, start, node.shards() + 1));
    node.repl.set_backlog(Some(b.clone()));
    let installed = b.clone();
    guard
        .run_each(move |core| core.backlog = Some(installed.clone()))
        .await;
    drop(guard);
    let ids = node.repl.ids();
    tracing::info!(
        "Replication backlog created, my new replication IDs are '{}' and '{}'",
        ids.replid,
        ids.replid2
    );
    b
}

/// CONFIG SET repl-backlog-size (or repl-ring-min-size): moves the stream to
/// a ring of the new size at once, as Redis resizes its backlog, keeping
/// the history that fits, so replicas stay connected and a later partial
/// resync can reach as far back as the new size allows. All shards are
/// held meanwhile, so each one's handle moves with no write in between.
///
/// The ring is every replica's only buffer, so it does not shrink below
/// twice what a connected replica still has to read from it (Redis keeps
/// such bytes in the replica's output buffer): until that replica catches
/// up the ring stays larger than configured, and shard 0's cron calls this
/// again (`requested` false) until it has the configured size.
pub async fn resize_backlog(node: &Arc<Node>, requested: bool) {
    let size = node.config().repl_ring_size();
    let wanted = Backlog::rounded_capacity(size);
    if node.repl.backlog().is_none_or(|b| b.capacity() == wanted) {
        return;
    }
    let guard = shard::hold_all().await;
    let Some(old) = node.repl.backlog() else {
        return;
    };
    let cursors: Vec<u64> = node
        .repl
        .replicas()
        .iter()
        .map(|r| r.cursor.load(Ordering::Relaxed))
        .collect();
    let (capacity, unread) = resized_capacity(&old, wanted, &cursors);
    if capacity == old.capacity() {
        if requested {
            tracing::info!(
                "Replication backlog stays at {} bytes for now: a replica has {unread} bytes of it still to read; it shrinks to {wanted} bytes once replicas catch up",
                old.capacity()
            );
        }
        return;
    }
    let next = old.resize(capacity);
    node.repl.install_resized(next.clone());
    let installed = next.clone();
    guard
        .run_each(move |core| {
            if core.backlog.as_ref().is_some_and(|b| Arc::ptr_eq(b, &old)) {
                core.backlog = Some(installed.clone());
            }
        })
        .await;
    drop(guard);
    tracing::info!(
        "Replication backlog resized to {} bytes ({} bytes of history kept)",
        next.capacity(),
        next.histlen()
    );
}

/// The capacity [`resize_backlog`] gives the ring that replaces `old`:
/// `wanted`, but no less than twice what a replica reading from the ring
/// has still to read (and never more than `old` for that reason). Cursors
/// below the ring's tail read from a spill, and `u64::MAX` ones do not
/// stream yet: neither counts. Also returns the most any replica has
/// still to read.
fn resized_capacity(old: &Backlog, wanted: usize, cursors: &[u64]) -> (usize, u64) {
    let (tail, end) = (old.tail(), old.reserved_end());
    let unread = cursors
        .iter()
        .filter(|&&c| c >= tail && c <= end)
        .map(|&c| end - c)
        .max()
        .unwrap_or(0);
    let keep =
        Backlog::rounded_capacity(usize::try_from(unread.saturating_mul(2)).unwrap_or(usize::MAX));
    (wanted.max(keep.min(old.capacity())), unread)
}

/// Serves a replica on `stream` until it disconnects.
pub async fn serve(
    stream: &mut TcpStream,
    input: SocketInput,
    client: &mut Client,
    req: PsyncRequest,
) {
    let node = client.node.clone();
    let peer_ip = {
        let addr = client.info.borrow().addr.clone();
        match addr.rsplit_once(':') {
            Some((ip, _)) => ip.trim_matches(['[', ']']).to_string(),
            None => addr,
        }
    };
    let ip = client.repl.ip_address.clone().unwrap_or(peer_ip);
    let handle = Arc::new(ReplicaHandle::new(
        client.id,
        ip,
        client.repl.listening_port,
    ));
    let name = handle.name();
    client.info.borrow_mut().flags = "S".into();
    tracing::info!("Replica {name} asks for synchronization");

    // A master restarted from its dump has no ring yet, but can continue a
    // replica that stands exactly at its offset (Redis creates the backlog
    // at load time for this).
    if !req.old_sync && req.replid != "?" && node.repl.backlog().is_none() {
        ensure_backlog(&node).await;
    }
    // An rdb-only client (`redis-cli --rdb`) always gets a snapshot.
    let partial = if client.repl.rdb_only {
        None
    } else {
        try_partial(&node, &req, &name)
    };
    let cursor = match partial {
        Some((cursor, backlog)) => {
            let ids = node.repl.ids();
            let reply = if client.repl.capa_psync2 {
                format!("+CONTINUE {}\r\n", ids.replid)
            } else {
                "+CONTINUE\r\n".to_string()
            };
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            node.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "Partial resynchronization request from {name} accepted. Sending {} bytes of backlog starting from offset {}.",
                backlog.head().saturating_sub(cursor),
                cursor + 1
            );
            handle.set_state("online");
            handle.last_ack_ms.store(unix_ms(), Ordering::Relaxed);
            node.repl.add_replica(handle.clone());
            Some((cursor, false, None))
        }
        None => {
            node.repl.add_replica(handle.clone());
            node.repl.sync_full.fetch_add(1, Ordering::Relaxed);
            full_sync(stream, client, &node, &handle, &req).await
        }
    };
    if cursor.is_some() && client.repl.rdb_only {
        tracing::info!(
            "RDB transfer completed, rdb only replica ({name}) should be disconnected asap"
        );
    } else if let Some((cursor, wait_ack, spill)) = cursor {
        let reason = feed(stream, input, &node, &handle, cursor, wait_ack, spill).await;
        tracing::warn!("Connection with replica {name} lost. ({reason})");
    }
    node.repl.remove_replica(handle.client_id);
}

/// The PSYNC decision: `Some(cursor)` when the replica can continue from
/// our ring.
fn try_partial(node: &Node, req: &PsyncRequest, name: &str) -> Option<(u64, Arc<Backlog>)> {
    if req.old_sync {
        return None;
    }
    if req.replid == "?" {
        tracing::info!("Full resync requested by replica {name}");
        return None;
    }
    let err = |msg: String| {
        node.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        tracing::info!("{msg}");
        None
    };
    let ids = node.repl.ids();
    let wanted = req.offset;
    if req.replid != ids.replid.0 {
        if req.replid != ids.replid2.0 {
            return err(format!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are '{}' and '{}')",
                req.replid, ids.replid, ids.replid2
            ));
        }
        if wanted > ids.second_offset {
            return err(format!(
                "Partial resynchronization not accepted: Requested offset for second ID was {wanted}, but I can reply up to {}",
                ids.second_offset
            ));
        }
    }
    let Some(backlog) = node.repl.backlog() else {
        return err(format!(
            "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {wanted})."
        ));
    };
    let cursor = wanted - 1;
    if cursor < 0 || !backlog.can_resume(cursor as u64) {
        return err(format!(
            "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {wanted})."
        ));
    }
    Some((cursor as u64, backlog))
}

/// Full resync: joins or leads a [`SyncJob`], sends the payload. Returns
/// where streaming starts, whether to wait for the first ACK, and the
/// spill holding the stream since the cut.
async fn full_sync(
    stream: &mut TcpStream,
    client: &Client,
    node: &Arc<Node>,
    handle: &Arc<ReplicaHandle>,
    req: &PsyncRequest,
) -> Option<(u64, bool, Option<Arc<Spill>>)> {
    let name = handle.name();
    ensure_backlog(node).await;
    if client.repl.rdb_keyless {
        return keyless_sync(stream, node, handle, req, client.repl.rdb_functions).await;
    }
    let (diskless_cfg, delay, max_replicas) = {
        let cfg = node.config();
        let num = |n: &str| cfg.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (
            cfg.bool_value("repl-diskless-sync"),
            num("repl-diskless-sync-delay"),
            num("repl-diskless-sync-max-replicas"),
        )
    };
    let diskless = diskless_cfg && client.repl.capa_eof && !req.old_sync;
    let (job, leader, mut reader) = {
        let mut pending = node
            .repl
            .pending_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (job, leader) = match pending.as_ref() {
            Some(j) if j.diskless == diskless => (j.clone(), false),
            _ => {
                let j = Arc::new(SyncJob {
                    diskless,
                    members: AtomicUsize::new(0),
                    stream: diskless.then(|| ChunkStream::new(FANOUT_WINDOW)),
                    result: Mutex::new(None),
                    waiters: Mutex::new(Vec::new()),
                });
                *pending = Some(j.clone());
                (j, true)
            }
        };
        // Subscribed while the job is still pending: production has not
        // started, so this member will get the stream from its first byte.
        let reader = job.stream.as_ref().and_then(|s| s.subscribe());
        (job, leader, reader)
    };
    job.members.fetch_add(1, Ordering::SeqCst);
    if leader {
        if diskless && delay > 0 {
            tracing::info!("Delay next BGSAVE for diskless SYNC");
            let until = Instant::now() + Duration::from_secs(delay);
            while Instant::now() < until
                && !(max_replicas > 0 && job.members.load(Ordering::SeqCst) as u64 >= max_replicas)
            {
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
        tracing::info!(
            "Starting BGSAVE for SYNC with target: {}",
            if diskless { "replicas sockets" } else { "disk" }
        );
        start_snapshot(node, &job).await;
    }
    let payload = match job.wait().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("Can't start the full sync for replica {name}: {e}");
            return None;
        }
    };
    handle.set_state("send_bulk");
    let mut head = Vec::with_capacity(128);
    if !req.old_sync {
        head.extend_from_slice(
            format!("+FULLRESYNC {} {}\r\n", payload.replid, payload.offset).as_bytes(),
        );
    }
    let mark = crate::node::random_hex40();
    match &payload.file {
        None => head.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes()),
        Some((_, len)) => head.extend_from_slice(format!("${len}\r\n").as_bytes()),
    }
    // A replica that stops reading must not hold the snapshot (and every
    // other member) for ever.
    let _ = stream.set_write_timeout(Some(node.config().repl_timeout()));
    let sent = match (&payload.file, reader.as_mut()) {
        (Some((file, len)), _) => {
            send_file(stream, &head, file, *len, &node.repl.net_output_bytes).await
        }
        (None, Some(reader)) => {
            send_stream(stream, &head, reader, &mark, &node.repl.net_output_bytes).await
        }
        (None, None) => Err("the snapshot stream had already started".into()),
    };
    drop(reader);
    let _ = stream.set_write_timeout(None);
    if let Err(e) = sent {
        tracing::warn!("Connection with replica {name} lost during the full sync: {e}");
        return None;
    }
    if diskless {
        tracing::info!(
            "Streamed RDB transfer with replica {name} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming"
        );
    } else {
        tracing::info!("Synchronization with replica {name} succeeded");
        handle.set_state("online");
    }
    handle.last_ack_ms.store(unix_ms(), Ordering::Relaxed);
    Some((payload.offset, diskless, payload.spill.clone()))
}

/// Full sync for a replica that filtered the keys out (`REPLCONF
/// rdb-filter-only`): an RDB of the AUX fields alone, taken at a quiet
/// point of the stream (every shard held and the link between batches, as
/// at a cut), sent as a `$<len>` bulk; the stream follows from there.
async fn keyless_sync(
    stream: &mut TcpStream,
    node: &Arc<Node>,
    handle: &Arc<ReplicaHandle>,
    req: &PsyncRequest,
    client_wants_functions: bool,
) -> Option<(u64, bool, Option<Arc<Spill>>)> {
    node.repl.gate.pause().await;
    let guard = shard::hold_all().await;
    let position = super::StreamPosition::at_cut(node);
    let functions = if client_wants_functions {
        crate::scripting::functions::codes()
    } else {
        Vec::new()
    };
    drop(guard);
    node.repl.gate.resume();
    let mut opts = dump::SaveOptions::from_config(&node.config());
    opts.aux = position.aux();
    let rdb = snapshot::keyless_rdb(&opts, &functions);
    handle.set_state("send_bulk");
    let mut out = Vec::with_capacity(rdb.len() + 80);
    if !req.old_sync {
        out.extend_from_slice(
            format!("+FULLRESYNC {} {}\r\n", position.replid, position.offset).as_bytes(),
        );
    }
    out.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
    out.extend_from_slice(&rdb);
    let _ = stream.set_write_timeout(Some(node.config().repl_timeout()));
    let sent = stream.write_all(&out).await;
    let _ = stream.set_write_timeout(None);
    let name = handle.name();
    if let Err(e) = sent {
        tracing::warn!("Connection with replica {name} lost during the full sync: {e}");
        return None;
    }
    node.repl
        .net_output_bytes
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    tracing::info!("Synchronization with replica {name} succeeded");
    handle.set_state("online");
    handle.last_ack_ms.store(unix_ms(), Ordering::Relaxed);
    Some((position.offset, false, None))
}

/// Bytes a diskless snapshot may run ahead of its slowest replica: the
/// master's extra memory for the transfer, whatever the dataset's size.
const FANOUT_WINDOW: usize = 8 << 20;

/// Diskless: the header, every chunk of the shared stream as it is
/// produced, then the EOF mark.
async fn send_stream(
    stream: &mut TcpStream,
    head: &[u8],
    reader: &mut ChunkReader,
    mark: &str,
    sent: &AtomicU64,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(head).await.map_err(io)?;
    loop {
        match reader.next_chunk().await {
            Next::Chunk(c) => {
                stream.write_all(&c).await.map_err(io)?;
                sent.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            Next::End(_) => break,
            Next::Failed(e) => return Err(format!("the snapshot failed: {e}")),
        }
    }
    stream.write_all(mark.as_bytes()).await.map_err(io)?;
    sent.fetch_add((head.len() + mark.len()) as u64, Ordering::Relaxed);
    Ok(())
}

/// Disk-based: the file as a `$<len>` bulk, read in slices.
async fn send_file(
    stream: &mut TcpStream,
    head: &[u8],
    file: &std::fs::File,
    len: u64,
    sent: &AtomicU64,
) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(head).await.map_err(io)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        // A page-cache read of the file just written; short enough not to
        // matter to the executor.
        let n = file.read_at(&mut buf[..want], at).map_err(io)?;
        if n == 0 {
            return Err("the RDB file is shorter than announced".into());
        }
        stream.write_all(&buf[..n]).await.map_err(io)?;
        sent.fetch_add(n as u64, Ordering::Relaxed);
        at += n as u64;
    }
    sent.fetch_add(head.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Takes the cut and publishes the job's payload. Diskless: the payload is
/// ready at the cut and the RDB is produced into the job's stream by a
/// task of its own while members send it. Disk: the file is written
/// first.
async fn start_snapshot(node: &Arc<Node>, job: &Arc<SyncJob>) {
    let close = |job: &Arc<SyncJob>| {
        let mut pending = node
            .repl
            .pending_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pending.as_ref().is_some_and(|p| Arc::ptr_eq(p, job)) {
            *pending = None;
        }
    };
    if node.repl.backlog().is_none() {
        close(job);
        job.finish(Err("no replication backlog".into()));
        return;
    }
    let repl = node.clone();
    let (cut, position) =
        snapshot::take_cut(node, move || super::StreamPosition::at_cut(&repl)).await;
    // The job stayed open to newcomers while it waited for the snapshot
    // slot (another snapshot may have been running): replicas that arrived
    // meanwhile share this one. Nothing is produced before it closes, so
    // every member gets the stream from its first byte.
    close(job);
    let mut opts = dump::SaveOptions::from_config(&node.config());
    opts.aux = position.aux();
    let spill = node.repl.backlog().and_then(|ring| {
        let max = node.config().repl_sync_spill_max();
        Spill::start(ring, position.offset, max, true)
    });
    match &job.stream {
        Some(stream) => {
            job.finish(Ok(Arc::new(SyncPayload {
                replid: position.replid.clone(),
                offset: position.offset,
                file: None,
                spill,
            })));
            let stream = stream.clone();
            glommio::spawn_local(async move {
                let sink = FanoutSink::new(stream.clone());
                let r = snapshot::write_rdb(cut, &opts, sink, FanoutSink::finish).await;
                if let Err(e) = r {
                    if stream.readers() > 0 {
                        tracing::warn!("Diskless full sync snapshot failed: {e}");
                    }
                    stream.finish(Err(e));
                }
            })
            .detach();
        }
        None => {
            let r = dump::save_file(cut, &opts).await;
            job.finish(r.map(|file| {
                Arc::new(SyncPayload {
                    replid: position.replid.clone(),
                    offset: position.offset,
                    file: Some(file),
                    spill,
                })
            }));
        }
    }
}

/// What woke the feeder.
enum Event {
    Read(std::io::Result<usize>),
    Data,
    Tick,
}

/// Streams the ring from `cursor` until the replica goes away; returns why.
async fn feed(
    stream: &mut TcpStream,
    mut input: SocketInput,
    node: &Arc<Node>,
    handle: &Arc<ReplicaHandle>,
    mut cursor: u64,
    mut wait_first_ack: bool,
    mut spill: Option<Arc<Spill>>,
) -> String {
    let Some(mut backlog) = node.repl.backlog() else {
        return "no replication backlog".into();
    };
    handle.cursor.store(cursor, Ordering::Relaxed);
    let name = handle.name();
    let mut decoder = Decoder::new();
    let limits = DecodeLimits {
        proto_max_bulk_len: 1 << 20,
        authenticated: true,
    };
    let mut rbuf = BytesMut::with_capacity(ACK_READ);
    let mut slow = vec![0u8; 64 * 1024];
    let (timeout_ms, mut limit) = {
        let cfg = node.config();
        let _ = stream.set_nodelay(!cfg.bool_value("repl-disable-tcp-nodelay"));
        (
            cfg.repl_timeout().as_millis() as u64,
            cfg.client_output_buffer_limits()[1],
        )
    };
    let mut over_soft_since: Option<u64> = None;
    let mut limit_armed = false;
    // One timer for the once-a-second checks, kept across the loop's
    // turns (a turn per batch of writes) rather than made anew each time.
    let mut tick = std::pin::pin!(glommio::timer::sleep(TICK));
    loop {
        if backlog.is_closed() {
            // A resized ring continues in its successor at the same
            // positions; any other replacement starts a new history.
            match backlog.successor() {
                Some(next) => {
                    backlog = next;
                    continue;
                }
                None => return "replication backlog replaced".into(),
            }
        }
        // client-output-buffer-limit replica, measured as the distance
        // between the ring's head and this replica's cursor (what Redis's
        // output buffer would hold). Armed only once the replica has been
        // within the limit since it connected: a partial resync or a full
        // sync's spill that starts far behind is catching up, and dropping
        // it then would only make it come back further behind (Redis's
        // resync loop).
        let behind = backlog.head().saturating_sub(cursor);
        let within = |l: u64| l == 0 || behind < l;
        if !limit_armed && spill.is_none() && within(limit.hard_bytes) && within(limit.soft_bytes) {
            limit_armed = true;
        }
        if limit_armed && over_obuf_limit(behind, &limit, &mut over_soft_since) {
            tracing::warn!(
                "Client {name} (replica) scheduled to be closed ASAP for overcoming of output buffer limits."
            );
            return "output buffer limit".into();
        }
        // A replica that falls a quarter of a ring behind (a burst of big
        // writes, a busy core) would soon be overrun and need a full sync, where
        // Redis would buffer up to its output-buffer limit. Its stream goes
        // to a spill file instead: memory stays at the ring's size, and
        // the output-buffer limit still decides when it is dropped.
        let cap = backlog.capacity() as u64;
        if spill.is_none() && limit_armed && behind > cap / 4 {
            spill = Spill::start(
                backlog.clone(),
                cursor,
                node.config().repl_sync_spill_max(),
                false,
            );
            if spill.is_some() {
                tracing::info!(
                    "Replica {name} is {behind} bytes behind: keeping its stream from offset {cursor} on disk until it catches up"
                );
            }
        }
        // Send everything committed.
        if !wait_first_ack {
            let before = cursor;
            // What the ring no longer holds comes from the full sync's
            // spill; once the ring has caught up with us we let go of it.
            if let Some(sp) = &spill {
                // Let go only well inside the ring, so a replica hovering
                // at the edge does not start a new spill at every step.
                if backlog.can_resume(cursor) && backlog.head().saturating_sub(cursor) < cap / 8 {
                    spill = None;
                } else if sp.covers(cursor) {
                    let sent = send_spilled(stream, sp, &mut cursor, &mut slow).await;
                    node.repl
                        .net_output_bytes
                        .fetch_add(cursor - before, Ordering::Relaxed);
                    if let Err(reason) = sent {
                        return reason;
                    }
                    handle.note_sent(cursor, unix_ms());
                    continue;
                }
            }
            let sent = send_available(stream, &backlog, &mut cursor, &name, &mut slow).await;
            if cursor != before {
                node.repl
                    .net_output_bytes
                    .fetch_add(cursor - before, Ordering::Relaxed);
                handle.note_sent(cursor, unix_ms());
            }
            if let Err(reason) = sent {
                return reason;
            }
        }
        let data = async {
            if wait_first_ack {
                std::future::pending::<()>().await;
            }
            backlog.wait_beyond(cursor).await;
            Event::Data
        };
        let ev = futures_lite::future::or(
            async { Event::Read(input.read(&mut rbuf, Room::exactly(ACK_READ)).await) },
            futures_lite::future::or(data, async {
                tick.as_mut().await;
                Event::Tick
            }),
        )
        .await;
        match ev {
            Event::Read(Ok(0)) => return "connection closed".into(),
            Event::Read(Err(e)) => return format!("read error: {e}"),
            Event::Read(Ok(_)) => loop {
                match decoder.decode(&mut rbuf, &limits) {
                    Ok(Some(args)) => {
                        if args.len() >= 3
                            && args[0].eq_ignore_ascii_case(b"replconf")
                            && args[1].eq_ignore_ascii_case(b"ack")
                        {
                            match crate::util::num::parse_i64_strict(&args[2]) {
                                Some(off) => handle.note_ack(off.max(0) as u64, unix_ms()),
                                None => handle.last_ack_ms.store(unix_ms(), Ordering::Relaxed),
                            }
                            if wait_first_ack {
                                wait_first_ack = false;
                                handle.set_state("online");
                                tracing::info!("Synchronization with replica {name} succeeded");
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("protocol error from replica: {}", e.0),
                }
            },
            Event::Data => {}
            Event::Tick => {
                tick.set(glommio::timer::sleep(TICK));
                limit = node.config().client_output_buffer_limits()[1];
                let last = handle.last_ack_ms.load(Ordering::Relaxed);
                if unix_ms().saturating_sub(last) > timeout_ms {
                    tracing::warn!("Disconnecting timedout replica (streaming sync): {name}");
                    return "timeout".into();
                }
            }
        }
    }
}

/// Room for the replica's ACKs per read.
const ACK_READ: usize = 4096;
/// How often a feed checks the replica's ACK deadline and the output
/// buffer limit's setting.
const TICK: Duration = Duration::from_secs(1);

/// How long a feed waits on a replica's full socket before it looks at
/// the ring again: short enough that a lagging replica's spill starts long
/// before the ring laps it (10 ms of a 200 MB/s stream is 2 MB).
const STALLED_WRITE_CHECK: Duration = Duration::from_millis(10);

/// Writes `[cursor, head)` to the replica, zero-copy from the ring while
/// the socket takes it, through a bounded copy when it is full.
async fn send_available(
    stream: &mut TcpStream,
    backlog: &Backlog,
    cursor: &mut u64,
    name: &str,
    slow: &mut [u8],
) -> Result<(), String> {
    let fd = stream.as_raw_fd();
    loop {
        match backlog.send_to_fd(*cursor, fd, 256 * 1024) {
            Ok(0) => return Ok(()),
            Ok(n) => *cursor += n as u64,
            Err(SendError::WouldBlock) => {
                // The socket is full: copy a slice and let the runtime wait
                // for room, but not for long, so the caller keeps checking
                // the output buffer limit and the ring while the replica
                // does not read (a dropped write future has sent nothing).
                let n = match backlog.copy_out(*cursor, slow) {
                    Ok(n) => n,
                    Err(_) => return Err(overrun(name, *cursor)),
                };
                let written = futures_lite::future::or(
                    async { Some(stream.write(&slow[..n]).await) },
                    async {
                        glommio::timer::sleep(STALLED_WRITE_CHECK).await;
                        None
                    },
                )
                .await;
                // Either way, back to the caller: a replica that drains
                // its socket steadily but slower than the writes arrive
                // never lets this wait time out, and staying here would
                // keep the caller from starting its spill until the ring
                // overran it (a needless full sync).
                return match written {
                    Some(Ok(0)) | Some(Err(_)) => Err("write error".into()),
                    Some(Ok(w)) => {
                        *cursor += w as u64;
                        Ok(())
                    }
                    None => Ok(()),
                };
            }
            Err(SendError::Overrun) => return Err(overrun(name, *cursor)),
            Err(SendError::Io(e)) => return Err(format!("write error: {e}")),
        }
    }
}

/// Redis's output buffer limit rule for `behind` bytes: over the hard
/// limit, or over the soft one for longer than its seconds.
fn over_obuf_limit(
    behind: u64,
    limit: &crate::config::ObufLimit,
    over_soft_since: &mut Option<u64>,
) -> bool {
    if limit.hard_bytes > 0 && behind >= limit.hard_bytes {
        return true;
    }
    if limit.soft_bytes > 0 && behind >= limit.soft_bytes {
        let now = unix_ms();
        let since = *over_soft_since.get_or_insert(now);
        return now.saturating_sub(since) > limit.soft_seconds.max(0) as u64 * 1000;
    }
    *over_soft_since = None;
    false
}

/// Sends what the spill holds from `cursor` on, a slice at a time.
async fn send_spilled(
    stream: &mut TcpStream,
    spill: &Spill,
    cursor: &mut u64,
    buf: &mut [u8],
) -> Result<(), String> {
    let start = *cursor;
    // Back to the caller now and then even while the replica keeps up
    // with the file, for the same checks as in `send_available`.
    while *cursor - start < SPILL_SEND_SLICE {
        let n = spill
            .read_at(*cursor, buf)
            .map_err(|e| format!("spill read error: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        // As in `send_available`: never wait long for a replica that does
        // not read, so the caller keeps checking its output-buffer limit.
        let written =
            futures_lite::future::or(async { Some(stream.write(&buf[..n]).await) }, async {
                glommio::timer::sleep(STALLED_WRITE_CHECK).await;
                None
            })
            .await;
        match written {
            Some(Ok(0)) => return Err("write error".into()),
            Some(Err(e)) => return Err(format!("write error: {e}")),
            Some(Ok(w)) => *cursor += w as u64,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Most bytes [`send_spilled`] sends before it returns to its caller.
const SPILL_SEND_SLICE: u64 = 4 << 20;

fn overrun(name: &str, cursor: u64) -> String {
    tracing::warn!(
        "Disconnecting replica {name}: it fell behind the replication backlog (offset {} is no longer held); it will need a full resync",
        cursor + 1
    );
    "backlog overrun".into()
}

/// The heartbeat: `PING` into the stream (counted in the offset like any
/// command), every `repl-ping-replica-period` seconds while replicas are
/// attached. Called by shard 0's cron.
pub fn heartbeat(node: &Node, producer: usize) {
    if !matches!(node.repl.role(), Role::Master) || node.repl.replicas().is_empty() {
        return;
    }
    if let Some(b) = node.repl.backlog() {
        b.append_raw(producer, b"*1\r\n$4\r\nPING\r\n");
    }
}

/// Recounts the replicas good enough for `min-replicas-to-write` (online,
/// acknowledged within `min-replicas-max-lag` seconds) and caches whether
/// the rule is in force. Called by the cron and after CONFIG SET.
pub fn refresh_good_replicas(node: &Node) {
    let (min, max_lag) = {
        let cfg = node.config();
        let num = |n: &str| cfg.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (num("min-replicas-to-write"), num("min-replicas-max-lag"))
    };
    let now = unix_ms();
    let good = node
        .repl
        .replicas()
        .iter()
        .filter(|r| {
            r.state() == "online"
                && now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) <= max_lag * 1000
        })
        .count();
    node.repl.good_replicas.store(good, Ordering::Relaxed);
    let in_force = if min > 0 && max_lag > 0 {
        min as usize
    } else {
        0
    };
    node.repl
        .min_replicas_to_write
        .store(in_force, Ordering::Relaxed);
}

/// Drops every replica connection so they reconnect and learn our new
/// replication id (after a promotion or a change of our own master); they
/// come back by partial resync where the history allows it.
pub async fn disconnect_replicas(node: &Node) {
    let ids: Vec<u64> = node.repl.replicas().iter().map(|r| r.client_id).collect();
    if ids.is_empty() {
        return;
    }
    shard::gather(move |core| {
        for c in core.clients.values() {
            let mut c = c.borrow_mut();
            if ids.contains(&c.id) {
                c.kill();
            }
        }
    })
    .await;
}

/// `repl-backlog-ttl`: a master without replicas for that many seconds
/// frees its ring, and, as Redis does, takes a new replication id (no past
/// history can be continued from any more). Called by shard 0's cron;
/// `idle_since` is the cron's memory of when the last replica left.
pub async fn expire_backlog(node: &Arc<Node>, idle_since: &mut Option<Instant>) {
    let idle = matches!(node.repl.role(), Role::Master)
        && node.repl.backlog().is_some()
        && node.repl.replicas().is_empty();
    if !idle {
        *idle_since = None;
        return;
    }
    let ttl = node
        .config()
        .get("repl-backlog-ttl")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let since = *idle_since.get_or_insert_with(Instant::now);
    if ttl == 0 || since.elapsed() < Duration::from_secs(ttl) {
        return;
    }
    *idle_since = None;
    let guard = shard::hold_all().await;
    if !node.repl.replicas().is_empty() || !matches!(node.repl.role(), Role::Master) {
        return;
    }
    node.repl.set_backlog(None);
    guard.run_each(|core| core.backlog = None).await;
    node.repl.set_ids(super::Ids {
        replid: super::ReplId::random(),
        replid2: super::ReplId::zero(),
        second_offset: -1,
    });
    drop(guard);
    tracing::info!("Replication backlog freed after {ttl} seconds without connected replicas.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_shrinks_only_as_far_as_lagging_replicas_allow() {
        let ring = Backlog::new(1 << 20, 1000, 1);
        ring.append_raw(0, &vec![b'x'; 3 << 20]);
        let (tail, end) = (ring.tail(), ring.reserved_end());
        assert_eq!(end - tail, 1 << 20);
        let small = 64 << 10;
        // Nobody reading, or everyone caught up: the wanted size.
        assert_eq!(resized_capacity(&ring, small, &[]), (small, 0));
        assert_eq!(resized_capacity(&ring, small, &[end, u64::MAX]), (small, 0));
        // 100 KB unread: 200 KB rounded up.
        assert_eq!(
            resized_capacity(&ring, small, &[end, end - 100_000]),
            (256 << 10, 100_000)
        );
        // Never more than the old ring for a lagging replica; growing is
        // always allowed.
        assert_eq!(resized_capacity(&ring, small, &[tail]).0, 1 << 20);
        assert_eq!(resized_capacity(&ring, 4 << 20, &[tail]).0, 4 << 20);
        // A replica behind the tail reads from its spill.
        assert_eq!(resized_capacity(&ring, small, &[tail - 1]), (small, 0));
    }
}
