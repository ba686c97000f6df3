//! Replica side: the link to our master.
//!
//! One task (on shard 0) per master we follow; [`follow`] starts it,
//! [`promote`] and a new [`follow`] stop it (the generation moves on and
//! the link's cancel signal fires). The task runs [`Phase`]s in order, one
//! function per protocol phase, and starts over after a second when the
//! link fails. Whatever happens, the data we hold stays until a complete
//! snapshot from the master has been read and checked.
//!
//! The stream is applied through the normal command path by a client
//! flagged `is_master` (no replies, no read-only refusal), and the same
//! bytes, unchanged, are appended to our own ring: our offset is our
//! master's, and replicas of ours can follow us.

use super::backlog::Backlog;
use super::{Ids, ReplId, Role};
use crate::cmd::{self, Client};
use crate::keyspace::Install;
use crate::net::input::{Room, SocketInput};
use crate::node::{unix_ms, Node};
use crate::persist::rdb::ReadSource;
use crate::persist::{chunks, dump};
use crate::resp::{DecodeLimits, Scanned, Scanner};
use crate::shard::gate::{Gate, GateGuard};
use crate::shard::inbox::Inbox;
use crate::shard::latch::Latch;
use crate::shard::{self, ClientInfo};
use bytes::{Bytes, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Chunks (reads from the master, up to the link's read buffer each) the
/// loader thread may lag behind the transfer.
const LOADER_CHUNKS: usize = 64;

/// `repl-diskless-load`: disabled, on-empty-db or swapdb.
fn node_diskless_load(node: &Node) -> String {
    node.config()
        .get("repl-diskless-load")
        .unwrap_or_else(|| "disabled".into())
}

/// Keys this node holds, in every database.
async fn dataset_len() -> usize {
    shard::gather(|core| core.ks.dbs().iter().map(|db| db.len()).sum::<usize>())
        .await
        .into_iter()
        .sum()
}

/// The link's protocol phases, in order (Redis's `repl_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to (re)connect.
    Connect,
    /// TCP connect in progress.
    Connecting,
    /// PING sent, waiting for `+PONG` (or an auth error, which is fine).
    ReceivePong,
    /// AUTH sent (masterauth), waiting for `+OK`.
    ReceiveAuth,
    /// REPLCONF listening-port / capa sent, waiting for their replies.
    ReceiveCapa,
    /// PSYNC sent, waiting for `+FULLRESYNC` or `+CONTINUE`.
    ReceivePsync,
    /// Reading the master's snapshot.
    Transfer,
    /// Applying the master's stream.
    Connected,
}

impl Phase {
    /// The state name `ROLE` prints.
    fn role_name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Connecting => "connecting",
            Phase::ReceivePong | Phase::ReceiveAuth | Phase::ReceiveCapa | Phase::ReceivePsync => {
                "handshake"
            }
            Phase::Transfer => "sync",
            Phase::Connected => "connected",
        }
    }
}

/// Why a link attempt ended.
#[derive(Debug)]
enum LinkError {
    /// REPLICAOF moved on; stop without retrying.
    Cancelled,
    /// Log this and retry.
    Failed(String),
    /// The master sent nothing within the wait asked for. Callers that
    /// wait briefly on purpose (the stream's settle and ACK deadlines)
    /// take it as a pause; anywhere else it ends the session like
    /// `Failed` with [`TIMED_OUT`].
    TimedOut,
    /// The master's snapshot arrived but could not be loaded (a type or
    /// encoding we do not read, a corrupt file): log this and retry, but
    /// backing off to [`RETRY_UNLOADABLE_MAX`], since each attempt costs the
    /// master a whole snapshot and the next one will likely fail alike.
    Unloadable(String),
}

type LinkResult<T> = Result<T, LinkError>;

/// What a [`LinkError::TimedOut`] that ends a session logs (Redis's text).
const TIMED_OUT: &str = "Timeout connecting to the MASTER...";

/// A timeout while the snapshot arrives gets Redis's own line for it.
fn transfer_timeout(e: LinkError) -> LinkError {
    match e {
        LinkError::TimedOut => LinkError::Failed(
            "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.".into(),
        ),
        e => e,
    }
}

fn failed<T>(msg: impl Into<String>) -> LinkResult<T> {
    Err(LinkError::Failed(msg.into()))
}

/// The running (or last) link task: how to cancel it and how to know it
/// has ended.
struct LinkHandle {
    cancel: Arc<Inbox<()>>,
    ended: Latch,
}

static LINK: Mutex<Option<LinkHandle>> = Mutex::new(None);

/// Role changes (REPLICAOF, SLAVEOF, FAILOVER, PSYNC FAILOVER) run one at
/// a time, as Redis runs commands: two interleaved could leave a master
/// with a link, or shards set up for the other role.
static ROLE_CHANGE: Gate = Gate::new();

/// Takes [`ROLE_CHANGE`]. The link running its master's REPLICAOF does not
/// wait: if another role change is under way, that one is ending this
/// link, and Redis would drop what the master sent along with its client.
async fn enter_role_change() -> Option<GateGuard<'static>> {
    if POLLING_LINK.with(|p| p.get()) {
        return ROLE_CHANGE.try_enter();
    }
    Some(ROLE_CHANGE.enter().await)
}

/// What [`follow`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Followed {
    /// The link to the new master is starting.
    Started,
    /// This master was already ours: nothing done.
    AlreadyConnected,
    /// The link itself asked, while another role change was ending it.
    Superseded,
}

thread_local! {
    /// True while this thread polls the link task (see [`InLink`]).
    static POLLING_LINK: Cell<bool> = const { Cell::new(false) };
}

/// Marks the polls of the link task, so that a command the link itself
/// runs (a REPLICAOF sent by the master) does not wait for the link's end.
struct InLink(Pin<Box<dyn Future<Output = ()>>>);

impl Future for InLink {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let was = POLLING_LINK.with(|p| p.replace(true));
        let out = self.0.as_mut().poll(cx);
        POLLING_LINK.with(|p| p.set(was));
        out
    }
}

/// Ends the link: moves the generation on (a link task of an older one
/// stops at its next step), cancels its waits, and waits until the task
/// has ended, so nothing it read is applied after the caller's role
/// change (Redis frees its master client at once, buffered input
/// included). Returns the new generation.
async fn stop_link(node: &Node) -> u64 {
    let gen = node.repl.link_generation.fetch_add(1, Ordering::SeqCst) + 1;
    let ended = {
        let link = LINK.lock().unwrap_or_else(|e| e.into_inner());
        link.as_ref().map(|l| {
            l.cancel.push(());
            l.ended.clone()
        })
    };
    if let Some(ended) = ended {
        if !POLLING_LINK.with(|p| p.get()) {
            ended.wait().await;
        }
    }
    gen
}

/// REPLICAOF host port: become (or stay) a replica, of this master now.
pub async fn follow(node: &Arc<Node>, host: String, port: u16) -> Followed {
    let Some(_gate) = enter_role_change().await else {
        return Followed::Superseded;
    };
    let role = node.repl.role();
    if role
        == (Role::Replica {
            host: host.clone(),
            port,
        })
    {
        return Followed::AlreadyConnected;
    }
    let was_master = matches!(role, Role::Master);
    let gen = stop_link(node).await;
    node.config_mut().set_replicaof(Some((&host, port)));
    // Our own history is what we try to continue from: PSYNC with our id
    // and offset (a former master, or a replica re-pointed elsewhere).
    node.repl.set_role(Role::Replica {
        host: host.clone(),
        port,
    });
    node.repl.update_link(|l| {
        *l = super::LinkInfo {
            phase: Phase::Connect.role_name(),
            processed_offset: node.repl.master_offset(),
            ..Default::default()
        }
    });
    // Client writes checked while we were a master finish first (later
    // ones see the replica role and get READONLY), so our offset is final.
    shard::writes_drained().await;
    // Replicas of ours must resync with us: close the ring they read (a
    // fresh one continues at the same offset) so they reconnect.
    let guard = shard::hold_all().await;
    let offset = node.repl.master_offset();
    let ring = node.repl.backlog().map(|old| {
        let size = old.capacity();
        Arc::new(Backlog::new(size, offset, node.shards() + 1))
    });
    node.repl.set_backlog(ring);
    guard
        .run_each(|core| {
            core.backlog = None;
            core.link_feeds_aof = true;
            core.ks.set_expire_allowed(false);
        })
        .await;
    drop(guard);
    if was_master {
        node.repl.cached_master.store(true, Ordering::SeqCst);
    }
    start_link(node, gen);
    Followed::Started
}

/// Starts the link task on shard 0.
pub fn start_link(node: &Arc<Node>, gen: u64) {
    let cancel = Arc::new(Inbox::default());
    let (ended, set_when_ended) = Latch::new();
    *LINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(LinkHandle {
        cancel: cancel.clone(),
        ended,
    });
    let node2 = node.clone();
    node.mesh.call_on(
        0,
        Box::new(move || {
            glommio::spawn_local(InLink(Box::pin(async move {
                let _ended = set_when_ended;
                run(node2, gen, cancel).await
            })))
            .detach();
        }),
    );
}

/// REPLICAOF NO ONE: stop following, keep the data, start a new history
/// (the old one stays valid as `replid2` up to our offset, so former
/// siblings can continue from us).
pub async fn promote(node: &Arc<Node>, who: &str) {
    let Some(_gate) = enter_role_change().await else {
        return;
    };
    if matches!(node.repl.role(), Role::Master) {
        return;
    }
    stop_link(node).await;
    node.config_mut().set_replicaof(None);
    node.repl.set_role(Role::Master);
    node.repl.cached_master.store(false, Ordering::SeqCst);
    tracing::info!("Discarding previously cached master state.");
    let ids = node.repl.shift_replid();
    tracing::warn!(
        "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
        ids.replid2,
        ids.second_offset,
        ids.replid
    );
    // Our writes now go into the ring the link was filling, starting with a
    // SELECT (the stream's database is not ours to know).
    let guard = shard::hold_all().await;
    let ring = node.repl.backlog();
    if let Some(r) = &ring {
        r.forget_db();
    }
    guard
        .run_each(move |core| {
            core.backlog = ring.clone();
            core.link_feeds_aof = false;
            core.ks.set_expire_allowed(true);
        })
        .await;
    drop(guard);
    node.repl.update_link(|l| *l = super::LinkInfo::default());
    // Our replicas must learn the new replid: they reconnect and continue
    // by partial resync from our second id.
    super::master::disconnect_replicas(node).await;
    tracing::info!("MASTER MODE enabled (user request from '{who}')");
}

/// First wait before trying again after a failed attempt; it doubles with
/// each further failure up to [`RETRY_MAX`]. A master that restarts or a
/// network that heals is found within a tenth of a second at first, where
/// a fixed one-second period (Redis's cron) costs up to a second of lag.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between attempts: Redis's period, so a master that stays
/// away is tried (and logged about) no more often than by Redis.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// The longest wait between full syncs whose snapshot could not be
/// loaded (see [`LinkError::Unloadable`]).
const RETRY_UNLOADABLE_MAX: Duration = Duration::from_secs(60);

/// The link task: connect, sync, stream; on failure wait (see
/// [`RETRY_FIRST`]) and try again, until the generation moves on.
async fn run(node: Arc<Node>, gen: u64, cancel: Arc<Inbox<()>>) {
    let mut link = Link {
        node: node.clone(),
        gen,
        cancel,
    };
    let mut reconnect = false;
    let mut retry = RETRY_FIRST;
    let mut unloadable_retry = RETRY_MAX;
    loop {
        if link.stale() {
            return;
        }
        let Role::Replica { host, port } = node.repl.role() else {
            return;
        };
        tracing::info!(
            "{} to MASTER {host}:{port}",
            if reconnect {
                "Reconnecting"
            } else {
                "Connecting"
            }
        );
        tracing::info!("MASTER <-> REPLICA sync started");
        let result = link.session(&host, port).await;
        let was_up = node.repl.link().up;
        node.repl.update_link(|l| {
            if l.up || l.down_since_ms == 0 {
                l.down_since_ms = unix_ms();
            }
            l.up = false;
            l.sync_in_progress = false;
            l.phase = Phase::Connect.role_name();
        });
        match result {
            Err(LinkError::Cancelled) => return,
            Err(e @ (LinkError::Failed(_) | LinkError::TimedOut)) => {
                let msg = match e {
                    LinkError::Failed(msg) => msg,
                    _ => TIMED_OUT.to_string(),
                };
                if was_up {
                    tracing::warn!("Connection with master lost.");
                    tracing::info!("Caching the disconnected master state.");
                    reconnect = true;
                    retry = RETRY_FIRST;
                    unloadable_retry = RETRY_MAX;
                    // Reconnect at once after losing an established link,
                    // as Redis does; back off after failed attempts.
                    if !msg.is_empty() {
                        tracing::debug!("{msg}");
                    }
                    continue;
                }
                tracing::warn!("{msg}");
                reconnect = false;
            }
            Err(LinkError::Unloadable(msg)) => {
                tracing::warn!("{msg}");
                tracing::warn!(
                    "Retrying the full sync in {} seconds: the last snapshot from the master could not be loaded.",
                    unloadable_retry.as_secs()
                );
                reconnect = false;
                if link.sleep(unloadable_retry).await.is_err() {
                    return;
                }
                unloadable_retry = (unloadable_retry * 2).min(RETRY_UNLOADABLE_MAX);
                continue;
            }
            Ok(()) => {}
        }
        if link.sleep(retry).await.is_err() {
            return;
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// One link's context.
struct Link {
    node: Arc<Node>,
    gen: u64,
    cancel: Arc<Inbox<()>>,
}

/// Bytes read from the master but not yet consumed.
struct Input {
    /// Declared before the stream: it leaves the epoll set before the
    /// socket closes.
    reader: SocketInput,
    stream: TcpStream,
    buf: BytesMut,
}

/// Spare room per read: large, so one read (and one job posted per shard)
/// carries many commands even with 4 KB values. The buffer is split into
/// pieces that other shards and the ring hold on to, so it is renewed only
/// once little room is left.
const READ_ROOM: Room = Room {
    min: 16 * 1024,
    reserve: 256 * 1024,
};

impl Link {
    fn stale(&self) -> bool {
        self.node.repl.link_generation.load(Ordering::SeqCst) != self.gen
    }

    fn set_phase(&self, p: Phase) {
        self.node.repl.update_link(|l| l.phase = p.role_name());
    }

    async fn sleep(&self, d: Duration) -> LinkResult<()> {
        self.unless_cancelled(async {
            glommio::timer::sleep(d).await;
            Ok(())
        })
        .await?;
        if self.stale() {
            return Err(LinkError::Cancelled);
        }
        Ok(())
    }

    /// Reads more bytes (waiting at most `timeout`), or fails.
    async fn fill(&self, input: &mut Input, timeout: Duration) -> LinkResult<usize> {
        let Input { reader, buf, .. } = input;
        // `None`: the timeout.
        let read = self
            .unless_cancelled(futures_lite::future::or(
                async { Ok(Some(reader.read(buf, READ_ROOM).await)) },
                async {
                    glommio::timer::sleep(timeout).await;
                    Ok(None)
                },
            ))
            .await;
        if self.stale() {
            return Err(LinkError::Cancelled);
        }
        match read? {
            None => Err(LinkError::TimedOut),
            Some(Ok(0)) => failed("Master closed the connection"),
            Some(Err(e)) => failed(format!("Error reading from MASTER: {e}")),
            Some(Ok(n)) => {
                self.node
                    .repl
                    .net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.node.repl.update_link(|l| l.last_io_ms = unix_ms());
                Ok(n)
            }
        }
    }

    /// Reads one `\n`-terminated line (without `\r\n`).
    async fn read_line(&self, input: &mut Input, timeout: Duration) -> LinkResult<String> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &input.buf) {
                let line = input.buf.split_to(nl + 1);
                let text = String::from_utf8_lossy(&line[..nl]);
                return Ok(text.trim_end_matches('\r').to_string());
            }
            if input.buf.len() > 64 * 1024 {
                return failed("Master sent an over-long line during the handshake");
            }
            self.fill(input, timeout).await?;
        }
    }

    async fn send(&self, input: &mut Input, args: &[&[u8]]) -> LinkResult<()> {
        let mut out = Vec::new();
        super::encode_command(args, &mut out);
        self.unless_cancelled(async {
            match input.stream.write_all(&out).await {
                Ok(()) => Ok(()),
                Err(e) => failed(format!("Error writing to MASTER: {e}")),
            }
        })
        .await
    }

    /// Runs `work` unless the link is cancelled first: a role change must
    /// not wait for a connect to an unreachable master (up to
    /// `repl-timeout`) or a write to one that stopped reading.
    async fn unless_cancelled<T>(
        &self,
        work: impl Future<Output = LinkResult<T>>,
    ) -> LinkResult<T> {
        futures_lite::future::or(work, async {
            self.cancel.recv().await;
            Err(LinkError::Cancelled)
        })
        .await
    }

    /// Sends a command and reads its one-line reply.
    async fn ask(
        &self,
        input: &mut Input,
        args: &[&[u8]],
        timeout: Duration,
    ) -> LinkResult<String> {
        self.send(input, args).await?;
        self.read_line(input, timeout).await
    }

    fn timeout(&self) -> Duration {
        self.node.config().repl_timeout()
    }

    /// One attempt: connect, handshake, sync, then stream until the link
    /// breaks.
    async fn session(&mut self, host: &str, port: u16) -> LinkResult<()> {
        let mut input = self.connect(host, port).await?;
        self.greet(&mut input).await?;
        self.authenticate(&mut input).await?;
        self.announce(&mut input).await?;
        match self.initiate_psync(&mut input).await? {
            PsyncOutcome::Continue => {}
            PsyncOutcome::FullResync { replid, offset } => {
                self.receive_snapshot(&mut input, replid, offset).await?;
            }
        }
        self.consume_stream(&mut input).await
    }

    async fn connect(&self, host: &str, port: u16) -> LinkResult<Input> {
        self.set_phase(Phase::Connecting);
        let addr = format!("{host}:{port}");
        let connect = async {
            match TcpStream::connect(addr.as_str()).await {
                Ok(s) => Ok(s),
                Err(e) => {
                    let io: std::io::Error = e.into();
                    failed(format!(
                        "Error condition on socket for SYNC: {}",
                        describe_io(&io)
                    ))
                }
            }
        };
        let timeout = self.timeout();
        let stream = self
            .unless_cancelled(futures_lite::future::or(connect, async {
                glommio::timer::sleep(timeout).await;
                Err(LinkError::TimedOut)
            }))
            .await?;
        if self.stale() {
            return Err(LinkError::Cancelled);
        }
        let _ = stream.set_nodelay(!self.node.config().bool_value("repl-disable-tcp-nodelay"));
        tracing::info!("Non blocking connect for SYNC fired the event.");
        let reader = match SocketInput::new(std::os::fd::AsRawFd::as_raw_fd(&stream)) {
            Ok(reader) => reader,
            Err(e) => return failed(format!("Error registering the MASTER link's socket: {e}")),
        };
        Ok(Input {
            reader,
            stream,
            buf: BytesMut::with_capacity(READ_ROOM.reserve),
        })
    }

    /// PING; `-NOAUTH`/`-NOPERM` are fine (AUTH comes next).
    async fn greet(&self, input: &mut Input) -> LinkResult<()> {
        self.set_phase(Phase::ReceivePong);
        let reply = self.ask(input, &[b"PING"], self.timeout()).await?;
        if reply.starts_with('-')
            && !reply.starts_with("-NOAUTH")
            && !reply.starts_with("-NOPERM")
            && !reply.starts_with("-ERR operation not permitted")
        {
            return failed(format!(
                "Error reply to PING from master: '{}'",
                &reply[1..]
            ));
        }
        tracing::info!("Master replied to PING, replication can continue...");
        Ok(())
    }

    async fn authenticate(&self, input: &mut Input) -> LinkResult<()> {
        let (user, pass) = {
            let cfg = self.node.config();
            (
                cfg.get("masteruser").filter(|u| !u.is_empty()),
                cfg.get("masterauth").filter(|p| !p.is_empty()),
            )
        };
        let Some(pass) = pass else {
            return Ok(());
        };
        self.set_phase(Phase::ReceiveAuth);
        let reply = match &user {
            Some(u) => {
                self.ask(
                    input,
                    &[b"AUTH", u.as_bytes(), pass.as_bytes()],
                    self.timeout(),
                )
                .await?
            }
            None => {
                self.ask(input, &[b"AUTH", pass.as_bytes()], self.timeout())
                    .await?
            }
        };
        if let Some(err) = reply.strip_prefix('-') {
            return failed(format!("Unable to AUTH to MASTER: -{err}"));
        }
        Ok(())
    }

    /// REPLCONF listening-port / ip-address / capa: errors are not fatal
    /// (old masters do not know them).
    async fn announce(&self, input: &mut Input) -> LinkResult<()> {
        self.set_phase(Phase::ReceiveCapa);
        let (port, ip) = {
            let cfg = self.node.config();
            let announced = cfg
                .get("replica-announce-port")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0);
            (
                announced.unwrap_or(self.node.port.load(Ordering::Relaxed) as u16),
                cfg.get("replica-announce-ip").filter(|s| !s.is_empty()),
            )
        };
        let port = port.to_string();
        let reply = self
            .ask(
                input,
                &[b"REPLCONF", b"listening-port", port.as_bytes()],
                self.timeout(),
            )
            .await?;
        if let Some(err) = reply.strip_prefix('-') {
            tracing::info!(
                "(Non critical) Master does not understand REPLCONF listening-port: {err}"
            );
        }
        if let Some(ip) = ip {
            let reply = self
                .ask(
                    input,
                    &[b"REPLCONF", b"ip-address", ip.as_bytes()],
                    self.timeout(),
                )
                .await?;
            if let Some(err) = reply.strip_prefix('-') {
                tracing::info!(
                    "(Non critical) Master does not understand REPLCONF ip-address: {err}"
                );
            }
        }
        let reply = self
            .ask(
                input,
                &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
                self.timeout(),
            )
            .await?;
        if let Some(err) = reply.strip_prefix('-') {
            tracing::info!("(Non critical) Master does not understand REPLCONF capa: {err}");
        }
        Ok(())
    }

    async fn initiate_psync(&self, input: &mut Input) -> LinkResult<PsyncOutcome> {
        self.set_phase(Phase::ReceivePsync);
        let repl = &self.node.repl;
        let cached = repl.cached_master.load(Ordering::SeqCst);
        let ids = repl.ids();
        let our_offset = repl.master_offset();
        let (replid, offset) = if cached {
            let next = (our_offset + 1).to_string();
            tracing::info!(
                "Trying a partial resynchronization (request {}:{next}).",
                ids.replid
            );
            (ids.replid.0.clone(), next)
        } else {
            tracing::info!("Partial resynchronization not possible (no cached master)");
            ("?".to_string(), "-1".to_string())
        };
        // A coordinated failover asks the target to take over first.
        let failover = repl.failover().state == super::failover::FailoverState::InProgress;
        if failover {
            self.send(
                input,
                &[b"PSYNC", replid.as_bytes(), offset.as_bytes(), b"FAILOVER"],
            )
            .await?;
        } else {
            self.send(input, &[b"PSYNC", replid.as_bytes(), offset.as_bytes()])
                .await?;
        }
        // A master preparing a disk snapshot may send newlines first.
        let reply = loop {
            let line = self.read_line(input, self.timeout()).await?;
            if !line.is_empty() {
                break line;
            }
        };
        if failover {
            let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
            super::failover::psync_answered(&self.node, accepted).await;
            if !accepted {
                return failed(format!("Failover target rejected psync request: {reply}"));
            }
        }
        if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
            let mut parts = rest.split_whitespace();
            let (Some(id), Some(off)) = (parts.next(), parts.next()) else {
                return failed(format!(
                    "Master replied with wrong +FULLRESYNC syntax: {reply}"
                ));
            };
            let Ok(off) = off.parse::<u64>() else {
                return failed(format!(
                    "Master replied with wrong +FULLRESYNC syntax: {reply}"
                ));
            };
            if !ReplId::is_valid(id) {
                return failed(format!(
                    "Master replied with wrong +FULLRESYNC syntax: {reply}"
                ));
            }
            tracing::info!("Full resync from master: {id}:{off}");
            return Ok(PsyncOutcome::FullResync {
                replid: id.to_string(),
                offset: off,
            });
        }
        if let Some(rest) = reply.strip_prefix("+CONTINUE") {
            tracing::info!("Successful partial resynchronization with master.");
            let new_id = rest.trim();
            if ReplId::is_valid(new_id) && new_id != ids.replid.0 {
                // The master's history moved on (it was promoted): ours
                // follows, the old id stays valid up to here.
                let new_ids = Ids {
                    replid: ReplId(new_id.to_string()),
                    replid2: ids.replid.clone(),
                    second_offset: our_offset as i64 + 1,
                };
                repl.set_ids(new_ids);
                tracing::info!("Master replication ID changed to {new_id}");
                // Our own replicas must learn it too.
                super::master::disconnect_replicas(&self.node).await;
            }
            tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            crate::supervise::notify("STATUS=MASTER <-> REPLICA sync: Partial Resynchronization accepted. Ready to accept connections in read-write mode.\n");
            // Keep appending to our ring from our offset.
            if repl.backlog().is_none() {
                let size = self.node.config().repl_ring_size();
                repl.set_backlog(Some(Arc::new(Backlog::new(
                    size,
                    our_offset,
                    self.node.shards() + 1,
                ))));
            }
            return Ok(PsyncOutcome::Continue);
        }
        if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
            return failed(format!(
                "Master is currently unable to PSYNC but should be in the future: {reply}"
            ));
        }
        failed(format!("Unexpected reply to PSYNC from master: {reply}"))
    }

    /// Reads the snapshot into a temp file, checks it by loading it, and
    /// only then replaces our data with it.
    async fn receive_snapshot(
        &self,
        input: &mut Input,
        replid: String,
        offset: u64,
    ) -> LinkResult<()> {
        self.set_phase(Phase::Transfer);
        let header = loop {
            let line = self
                .read_line(input, self.timeout())
                .await
                .map_err(transfer_timeout)?;
            if !line.is_empty() {
                break line;
            }
        };
        let Some(spec) = header.strip_prefix('$') else {
            return failed(format!(
                "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"
            ));
        };
        let eof_mark = spec.strip_prefix("EOF:").map(|m| m.as_bytes().to_vec());
        let total: Option<u64> = match &eof_mark {
            Some(m) if m.len() == 40 => None,
            Some(_) => return failed(format!("Bad EOF mark from MASTER: '{header}'")),
            None => match spec.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => return failed(format!("Bad bulk length from MASTER: '{header}'")),
            },
        };
        // The snapshot is parsed while it arrives (a loader thread reads
        // the bytes as they come); with repl-diskless-load disabled (or
        // on-empty-db while we hold data) it also goes to a file, which
        // becomes our dump as with Redis.
        let to_disk = match node_diskless_load(&self.node).as_str() {
            "swapdb" => false,
            "on-empty-db" => dataset_len().await > 0,
            _ => true,
        };
        let target = if to_disk { "to disk" } else { "to parser" };
        match total {
            None => tracing::info!(
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF {target}"
            ),
            Some(n) => {
                tracing::info!("MASTER <-> REPLICA sync: receiving {n} bytes from master {target}")
            }
        }
        self.node.repl.update_link(|l| {
            l.sync_in_progress = true;
            l.sync_total_bytes = total.map_or(-1, |n| n as i64);
            l.sync_read_bytes = 0;
        });
        let tmp = to_disk.then(|| {
            std::path::PathBuf::from(format!(
                "temp-{}.{}.rdb",
                unix_ms() / 1000,
                std::process::id()
            ))
        });
        let _tracked = tmp.as_deref().map(crate::persist::temp::track);
        let (feed, reader) = chunks::channel(LOADER_CHUNKS);
        let databases = self.node.config().databases();
        let (loaded_tx, loaded_rx) = shard::oneshot::channel();
        // The shards store the keys in staging tables as they arrive, and
        // keep serving the old data until the load is installed.
        let stager = dump::Stager::new();
        let spawned = std::thread::Builder::new()
            .name("cascade-load".into())
            .spawn(move || {
                let source = ReadSource(std::io::BufReader::with_capacity(1 << 20, reader));
                loaded_tx.send(dump::load_from(source, stager, databases, true, 0));
            });
        if let Err(e) = spawned {
            return failed(format!("could not start the load thread: {e}"));
        }
        let result = self
            .receive_payload(input, tmp.as_deref(), total, eof_mark.as_deref(), &feed)
            .await;
        if let Err(e) = result {
            feed.fail("the transfer from the master failed".into());
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
        // A clean end of the stream for the loader.
        drop(feed);
        tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
        // A role change does not wait for the rest of a long load: the
        // loader finishes into staging tables nobody installs, then drops
        // them.
        let finished = self.unless_cancelled(async { Ok(loaded_rx.await) }).await;
        let finished = match finished {
            Ok(finished) => finished,
            Err(e) => {
                if let Some(tmp) = &tmp {
                    let _ = std::fs::remove_file(tmp);
                }
                self.node.repl.update_link(|l| l.sync_in_progress = false);
                return Err(e);
            }
        };
        let loaded = match finished {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => {
                tracing::warn!("{e}");
                Err(LinkError::Unloadable(
                    if to_disk {
                        "Failed trying to load the MASTER synchronization DB from disk, check server logs."
                    } else {
                        "Failed trying to load the MASTER synchronization DB from socket, check server logs."
                    }
                    .into(),
                ))
            }
            Err(_) => failed("the load thread died"),
        };
        let installed = match loaded {
            Ok(loaded) => {
                self.install_snapshot(tmp.as_deref(), loaded, replid, offset)
                    .await
            }
            Err(e) => Err(e),
        };
        if installed.is_err() {
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_file(tmp);
            }
        }
        self.node.repl.update_link(|l| l.sync_in_progress = false);
        installed
    }

    /// Reads the snapshot's bytes (`total` of them, or up to the EOF
    /// `mark`), feeding the loader and, when `path` is given, a file.
    async fn receive_payload(
        &self,
        input: &mut Input,
        path: Option<&std::path::Path>,
        total: Option<u64>,
        mark: Option<&[u8]>,
        feed: &chunks::ChunkSender,
    ) -> LinkResult<()> {
        use std::io::Write;
        let mut out = match path {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| {
                    LinkError::Failed(format!(
                        "Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}"
                    ))
                })?;
                Some(std::io::BufWriter::with_capacity(1 << 20, file))
            }
            None => None,
        };
        let write_err = |e: std::io::Error| {
            LinkError::Failed(format!("Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA synchronization: {e}"))
        };
        let mut received: u64 = 0;
        // EOF framing: hold back the last 40 bytes until we know they are
        // not the mark.
        let mut tail = BytesMut::new();
        loop {
            let data = if let Some(total) = total {
                let want = (total - received) as usize;
                let take = want.min(input.buf.len());
                input.buf.split_to(take).freeze()
            } else if let Some(mark) = mark {
                tail.unsplit(input.buf.split());
                if tail.len() >= mark.len() && &tail[tail.len() - mark.len()..] == mark {
                    let data = tail.split_to(tail.len() - mark.len()).freeze();
                    received += data.len() as u64;
                    if let Some(out) = out.as_mut() {
                        out.write_all(&data).map_err(write_err)?;
                    }
                    self.feed_loader(feed, data).await;
                    break;
                }
                let keep = mark.len().min(tail.len());
                tail.split_to(tail.len() - keep).freeze()
            } else {
                Bytes::new()
            };
            received += data.len() as u64;
            if let Some(out) = out.as_mut() {
                out.write_all(&data).map_err(write_err)?;
            }
            self.feed_loader(feed, data).await;
            if total == Some(received) {
                break;
            }
            self.node.repl.update_link(|l| l.sync_read_bytes = received);
            self.fill(input, self.timeout())
                .await
                .map_err(transfer_timeout)?;
        }
        if let Some(out) = out {
            let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
            file.sync_all().map_err(write_err)?;
        }
        self.node.repl.update_link(|l| l.sync_read_bytes = received);
        self.node
            .repl
            .last_sync_unix
            .store((unix_ms() / 1000) as i64, Ordering::Relaxed);
        Ok(())
    }

    /// Hands `data` to the loader thread, waiting while it is behind. A
    /// loader that stopped (done, or failed: its result says which) takes
    /// nothing more.
    async fn feed_loader(&self, feed: &chunks::ChunkSender, mut data: Bytes) {
        loop {
            match feed.offer(data) {
                chunks::Offer::Taken | chunks::Offer::Closed => return,
                chunks::Offer::Full(back) => {
                    data = back;
                    glommio::timer::sleep(Duration::from_micros(200)).await;
                }
            }
        }
    }

    /// `replica-protect-data yes`: a master with a replication history we
    /// never shared (a new replid) and no data — typically one restarted
    /// without persistence — must not wipe the data we hold. Logs a
    /// warning and counts the refusal (INFO replication).
    async fn refuse_empty_master(&self, replid: &str) -> bool {
        let node = &self.node;
        if !node.config().replica_protect_data() {
            return false;
        }
        let ids = node.repl.ids();
        if replid == ids.replid.0 || replid == ids.replid2.0 {
            return false;
        }
        let ours = dataset_len().await;
        if ours == 0 {
            return false;
        }
        node.repl.protect_refusals.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "Refusing the full sync from MASTER: it has a new replication ID ({replid}) and an empty dataset, while this replica holds {ours} keys (replica-protect-data yes). Keeping our data; to accept the empty dataset, set replica-protect-data no (CONFIG SET)."
        );
        true
    }

    async fn install_snapshot(
        &self,
        tmp: Option<&std::path::Path>,
        loaded: dump::Loaded,
        replid: String,
        offset: u64,
    ) -> LinkResult<()> {
        let node = &self.node;
        let (databases, dbfilename) = {
            let cfg = node.config();
            (cfg.databases(), cfg.dbfilename())
        };
        let shards = node.shards();
        if self.stale() {
            return Err(LinkError::Cancelled);
        }
        let dump::Loaded {
            staged,
            facts: loaded,
        } = loaded;
        if let Some(v) = &loaded.redis_ver {
            tracing::info!("Loading RDB produced by version {v}");
        }
        if loaded.keys_loaded == 0 && self.refuse_empty_master(&replid).await {
            return failed("Full sync refused: empty master with a new replication ID (replica-protect-data yes)");
        }
        tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
        // The master's libraries replace ours, as its keys do.
        if let Err(e) = crate::scripting::functions::install_loaded(
            &loaded.functions,
            crate::scripting::functions::RestorePolicy::Flush,
        ) {
            return failed(format!("could not load the master's functions: {e}"));
        }
        let keys_loaded = loaded.keys_loaded;
        let stream_db = loaded
            .repl_stream_db
            .unwrap_or(0)
            .min(databases.saturating_sub(1));
        let staged = Arc::new(staged);
        staged.ready().await;
        let ring = Arc::new(Backlog::new(
            node.config().repl_ring_size(),
            offset,
            shards + 1,
        ));
        // replica-lazy-flush: our old dataset is freed in the background,
        // so the shards serve the new one at once.
        let lazy_flush = node.config().bool_value("replica-lazy-flush");
        node.repl.gate.enter().await;
        let _span = GateSpan(node);
        let guard = shard::hold_all().await;
        let installed: Result<Vec<usize>, _> = guard
            .run_each(move |core| {
                let installed = staged.install(core, Install::Replace { lazy: lazy_flush });
                core.ks.set_expire_allowed(false);
                core.link_feeds_aof = true;
                core.backlog = None;
                installed
            })
            .await
            .into_iter()
            .collect();
        if let Err(e) = installed {
            // Only a bug gets here (`ready` saw every batch stored). Some
            // shards may hold the new data and others the old: serve
            // neither, and sync again.
            guard.run_each(|core| core.ks.flush_all()).await;
            drop(guard);
            return failed(format!("could not install the loaded data: {e}"));
        }
        node.repl.set_backlog(Some(ring));
        node.repl.set_ids(Ids {
            replid: ReplId(replid),
            replid2: ReplId::zero(),
            second_offset: -1,
        });
        node.repl.cached_master.store(true, Ordering::SeqCst);
        node.repl.stream_db.store(stream_db, Ordering::SeqCst);
        drop(guard);
        // The old dataset is gone: tracking clients drop their caches, as
        // Redis's emptyData tells them.
        crate::tracking::flushed();
        // The received file becomes our dump, unless asked not to keep it
        // when nothing else would persist (rdb-del-sync-files).
        let delete = {
            let cfg = node.config();
            cfg.bool_value("rdb-del-sync-files")
                && cfg.save_points().is_empty()
                && !cfg.bool_value("appendonly")
        };
        if let Some(tmp) = tmp {
            if delete || std::fs::rename(tmp, &dbfilename).is_err() {
                let _ = std::fs::remove_file(tmp);
            }
        }
        tracing::info!("Done loading RDB, keys loaded: {keys_loaded}, keys expired: 0.");
        tracing::info!("MASTER <-> REPLICA sync: Finished with success");
        crate::supervise::notify("STATUS=MASTER <-> REPLICA sync: Finished with success. Ready to accept connections in read-write mode.\n");
        // Our AOF described the data just replaced: start it over from a
        // new base (Redis's restartAOFAfterSYNC). Until that base is in
        // place the manifest on disk still lists the old files.
        if node.aof.active().is_some() {
            crate::persist::aof::stop(node).await;
            crate::persist::aof::rewrite::start_background(node);
        }
        Ok(())
    }

    /// Applies the master's stream, forwards it to our ring, acknowledges.
    async fn consume_stream(&self, input: &mut Input) -> LinkResult<()> {
        self.set_phase(Phase::Connected);
        let node = &self.node;
        let Some(mut ring) = node.repl.backlog() else {
            return failed("no replication backlog");
        };
        let mut offset = ring.head();
        node.repl.update_link(|l| {
            l.up = true;
            l.processed_offset = offset;
            l.last_io_ms = unix_ms();
        });
        let mut master = master_client(
            node,
            input.stream.local_addr().ok(),
            std::os::fd::AsRawFd::as_raw_fd(&input.stream),
        );
        master.db = node.repl.stream_db.load(Ordering::SeqCst);
        // Listed in CLIENT LIST (flags=M) while the link applies the stream.
        let id = master.id;
        master
            .shard
            .with_core(|core| core.clients.insert(id, master.info.clone()));
        struct Unlist(Rc<shard::Shard>, u64);
        impl Drop for Unlist {
            fn drop(&mut self) {
                let id = self.1;
                self.0.with_core(|core| core.clients.remove(&id));
            }
        }
        let _listed = Unlist(master.shard.clone(), id);
        // Commands come off the buffer whole, so their exact bytes can be
        // forwarded, with the arguments as slices of them.
        let mut scanner = Scanner::new();
        let limits = DecodeLimits {
            proto_max_bulk_len: node.config().proto_max_bulk_len().max(512 << 20),
            authenticated: true,
        };
        let mut last_ack = std::time::Instant::now();
        let mut applier = cmd::apply::StreamApply::new(node.shards(), cmd::apply::Source::Master);
        // The bytes of a transaction from MULTI on: forwarded (and counted
        // in our offset) only once its EXEC has applied it, as Redis does,
        // so a link lost inside a transaction resumes before its MULTI and
        // a cut never falls inside one.
        let mut in_tx = BytesMut::new();
        // The database the transaction in `in_tx` started in.
        let mut tx_db = 0u32;
        self.send_ack(input, offset).await?;
        let mut acked = offset;
        // Commands are applied inside a span of the gate (a cut on this
        // node waits for its end; see `ApplyGate`). A span lasts until the
        // work posted to the other shards is settled ([`StreamApply::barrier`]),
        // which is only done when something needs it: an ACK is due, a cut
        // waits, [`SETTLE_BYTES`] are in flight, or the stream paused for
        // [`SETTLE_IDLE`]. In between, the link
        // reads the next bytes while the other shards apply the last ones,
        // instead of waiting for a round trip to every shard per read.
        let mut span: Option<GateSpan> = None;
        let mut unsettled = 0usize;
        // The last wait for input ended with nothing read.
        let mut paused = false;
        let result = 'session: loop {
            if span.is_none() {
                node.repl.gate.enter().await;
                span = Some(GateSpan(node));
            }
            // Our AOF gets the commands the stream applies (not its PINGs
            // and GETACKs), with the stream's own SELECTs; fetched once a
            // batch (a rewrite's cut falls between batches).
            let aof = node.aof.active();
            // After a resize the ring's appends go to its successor anyway;
            // moving to it saves them the detour.
            if ring.is_closed() {
                ring = ring.latest();
            }
            while !input.buf.is_empty() {
                // A role change (REPLICAOF) stops the stream between two
                // commands; what is still buffered is dropped, as Redis
                // drops its master client's query buffer.
                if self.stale() {
                    break 'session Err(LinkError::Cancelled);
                }
                let (bytes, args) = match scanner.next(&mut input.buf, &limits) {
                    Ok(Some(Scanned { bytes, args })) => (bytes, args),
                    Ok(None) => break,
                    Err(e) => {
                        break 'session failed(format!("Protocol error from MASTER: {}", e.0));
                    }
                };
                unsettled += bytes.len();
                if args.is_empty() {
                    offset = ring.append_raw(node.shards(), &bytes);
                    continue;
                }
                let getack = args.len() >= 2
                    && args[0].eq_ignore_ascii_case(b"replconf")
                    && args[1].eq_ignore_ascii_case(b"getack");
                let ping = args[0].eq_ignore_ascii_case(b"ping");
                let db_before = master.db as u32;
                if in_tx.is_empty() {
                    tx_db = db_before;
                }
                if getack {
                    // Acknowledge what came before this command, once it ran.
                    applier.barrier().await;
                    if let Err(e) = self.send_ack(input, offset).await {
                        break 'session Err(e);
                    }
                    acked = offset;
                } else if !ping {
                    applier.apply(&mut master, args).await;
                    node.repl.stream_db.store(master.db, Ordering::Relaxed);
                }
                let db_after = master.db as u32;
                if master.multi.is_some() {
                    in_tx.extend_from_slice(&bytes);
                } else if !in_tx.is_empty() {
                    in_tx.extend_from_slice(&bytes);
                    offset = ring.append_raw(node.shards(), &in_tx);
                    if let Some(aof) = aof.as_ref() {
                        aof.feed.append_unit(tx_db, db_after, &in_tx);
                    }
                    in_tx.clear();
                } else {
                    offset = ring.append_raw(node.shards(), &bytes);
                    if let Some(aof) = aof.as_ref().filter(|_| !getack && !ping) {
                        aof.feed.append_unit(db_before, db_after, &bytes);
                    }
                }
            }
            // Acknowledge applied data within ACK_EVERY (so the master
            // knows our lag in time and WAIT returns early), and once a
            // second anyway, as Redis replicas do.
            let since = last_ack.elapsed();
            let ack_due =
                (offset != acked && since >= ACK_EVERY) || since >= Duration::from_secs(1);
            applier.flush();
            // The span stays open only while the stream flows: work in
            // flight, more bytes having come within SETTLE_IDLE, an ACK to
            // come for it within ACK_EVERY (the wait below), nobody
            // waiting to cut. Anything else settles, so an
            // idle link (or one inside a transaction, acknowledged only at
            // its EXEC) waits without a span.
            let flowing = unsettled > 0
                && offset != acked
                && unsettled < SETTLE_BYTES
                && !ack_due
                && !paused
                && !node.repl.gate.cut_wanted();
            if !flowing {
                // Everything posted has run on every shard before the span
                // ends (a cut or an ACK after this point covers it).
                applier.barrier().await;
                node.repl.update_link(|l| l.processed_offset = offset);
                span = None;
                unsettled = 0;
            }
            if ack_due {
                if let Err(e) = self.send_ack(input, offset).await {
                    break Err(e);
                }
                acked = offset;
                last_ack = std::time::Instant::now();
            }
            // With data not yet acknowledged (always so within a span) the
            // wait ends by the ACK's deadline, which also bounds how long a
            // cut waits for the span's end.
            let mut wait = if offset != acked {
                ACK_EVERY.saturating_sub(last_ack.elapsed())
            } else {
                Duration::from_secs(1)
            };
            // Work in flight: if the stream pauses, settle it soon rather
            // than at the ACK.
            if span.is_some() {
                wait = wait.min(SETTLE_IDLE);
            }
            paused = false;
            match self.fill(input, wait).await {
                Ok(_) => {}
                Err(LinkError::TimedOut) => {
                    paused = true;
                    let silent = unix_ms().saturating_sub(node.repl.link().last_io_ms);
                    if silent > self.timeout().as_millis() as u64 {
                        // Redis warns of this before it drops the link
                        // (the drop itself logs "Connection with master
                        // lost.").
                        tracing::warn!("MASTER timeout: no data nor PING received...");
                        break failed("");
                    }
                }
                Err(e) => break Err(e),
            }
        };
        // Whatever ends the session, what was posted runs before the span
        // ends: the ring already holds it.
        applier.barrier().await;
        drop(span);
        result
    }

    async fn send_ack(&self, input: &mut Input, offset: u64) -> LinkResult<()> {
        let off = offset.to_string();
        self.send(input, &[b"REPLCONF", b"ACK", off.as_bytes()])
            .await
    }
}

/// How soon applied data is acknowledged to the master.
const ACK_EVERY: Duration = Duration::from_millis(10);

/// Most stream bytes applied between two settlements of the work posted
/// to other shards (bounds their inboxes when they apply slower than the
/// link reads).
const SETTLE_BYTES: usize = 8 << 20;

/// How long the stream may pause before the work in flight is settled
/// anyway: the replica's offset (`slave_repl_offset`, what a client of the
/// replica can rely on) then reaches the master's within about this much
/// of the stream's last byte, instead of at the next ACK.
const SETTLE_IDLE: Duration = Duration::from_millis(1);

/// Ends an [`super::ApplyGate`] span however the scope is left.
struct GateSpan<'a>(&'a Node);

impl Drop for GateSpan<'_> {
    fn drop(&mut self) {
        self.0.repl.gate.leave();
    }
}

enum PsyncOutcome {
    Continue,
    FullResync { replid: String, offset: u64 },
}

/// The client our master's commands run as.
pub(crate) fn master_client(
    node: &Arc<Node>,
    local: Option<std::net::SocketAddr>,
    fd: i32,
) -> Client {
    let shard = shard::current();
    let id = node.next_client_id.fetch_add(1, Ordering::Relaxed);
    let now = unix_ms();
    let addr = match node.repl.role() {
        Role::Replica { host, port } => format!("{host}:{port}"),
        Role::Master => String::new(),
    };
    let info = Rc::new(RefCell::new(ClientInfo {
        id,
        addr,
        laddr: local.map(|a| a.to_string()).unwrap_or_default(),
        // CLIENT KILL shuts this socket down: the link then reconnects.
        fd,
        name: Bytes::new(),
        db: 0,
        resp: 2,
        created_ms: now,
        last_interaction_ms: now,
        last_cmd: "NULL",
        flags: "M".into(),
        user: Bytes::from_static(b"default"),
        query_buf: 0,
        output_buf: 0,
        killed: false,
        no_evict: false,
        lib_name: Bytes::new(),
        lib_ver: Bytes::new(),
        sub: 0,
        psub: 0,
        ssub: 0,
        multi: -1,
        redir: -1,
        blocked: None,
    }));
    let mut c = Client::new(node.clone(), shard, info, true);
    c.authenticated = true;
    c.is_master = true;
    *c.user.borrow_mut() = None;
    c
}

/// Redis's wording for connect errors ("Connection refused").
fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static string for any
            // errno value.
            let msg = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
            msg.to_string_lossy().into_owned()
        }
        None => e.to_string(),
    }
}
