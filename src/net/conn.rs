//! One client connection: read → decode → dispatch → encode → write.
//!
//! The only code that touches a client's socket. Commands of one read are
//! decoded together and their replies written with one `send`, which is
//! what makes pipelining cheap; replies always leave in request order.
//!
//! Pushes: a MONITOR client or a pub/sub subscriber also waits on its
//! mailbox while waiting for input, so a message that arrives while the
//! client is idle is written at once; messages queued before a reply are
//! written before it. A subscriber's written message bytes are reported
//! back to its mailbox, which is what the pubsub output limit counts.

use super::input::{Room, SocketInput};
use crate::cmd::pipeline::Batch;
use crate::cmd::{self, Client, ReplyMode};
use crate::node::{coarse_ms, unix_ms, Node};
use crate::pubsub::Subscriber;
use crate::resp::{encode, DecodeLimits, Decoder, Reply};
use crate::shard::inbox::Inbox;
use crate::shard::{ClientInfo, Shard};
use bytes::{Bytes, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;
const READ_ROOM: Room = Room::exactly(READ_CHUNK);
/// Flush replies early when a pipeline's output grows past this.
const FLUSH_AT: usize = 64 * 1024;

/// Limits and settings a connection reads from the config, refreshed when
/// the config changes.
struct Limits {
    epoch: u64,
    decode: DecodeLimits,
    query_buffer: usize,
}

impl Limits {
    fn load(node: &Node, authenticated: bool) -> Limits {
        let epoch = node.config_epoch.load(Ordering::Relaxed);
        let cfg = node.config();
        Limits {
            epoch,
            decode: DecodeLimits {
                proto_max_bulk_len: cfg.proto_max_bulk_len(),
                authenticated,
            },
            query_buffer: cfg.client_query_buffer_limit() as usize,
        }
    }
}

fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Serves one accepted connection until it closes.
pub async fn serve(mut stream: TcpStream, node: Arc<Node>, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    let is_local = peer.as_ref().is_none_or(is_loopback);
    shard.with_core(|core| core.stats.connections_received += 1);

    let (maxclients, protected, keepalive, has_password) = {
        let cfg = node.config();
        (
            cfg.maxclients(),
            cfg.protected_mode(),
            cfg.tcp_keepalive(),
            !crate::acl::registry().default_is_nopass(),
        )
    };
    if protected && !has_password && !is_local {
        let _ = stream.write_all(DENIED.as_bytes()).await;
        shard.with_core(|core| core.stats.rejected_connections += 1);
        return;
    }
    let connected = node.connected_clients.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = ConnectedGuard(node.clone());
    if connected as u64 > maxclients {
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        shard.with_core(|core| core.stats.rejected_connections += 1);
        return;
    }
    if keepalive > 0 {
        set_keepalive(stream.as_raw_fd(), keepalive);
    }

    let id = node.next_client_id.fetch_add(1, Ordering::Relaxed);
    let now = unix_ms();
    let info = Rc::new(RefCell::new(ClientInfo {
        id,
        addr: peer.map(|a| a.to_string()).unwrap_or_default(),
        laddr: local.map(|a| a.to_string()).unwrap_or_default(),
        fd: stream.as_raw_fd(),
        name: Default::default(),
        db: 0,
        resp: 2,
        created_ms: now,
        last_interaction_ms: now,
        last_cmd: "NULL",
        flags: "N".into(),
        user: Bytes::from_static(b"default"),
        query_buf: 0,
        output_buf: 0,
        killed: false,
        no_evict: false,
        lib_name: Default::default(),
        lib_ver: Default::default(),
        sub: 0,
        psub: 0,
        ssub: 0,
        multi: -1,
        redir: -1,
        blocked: None,
    }));
    shard.with_core(|core| core.clients.insert(id, info.clone()));
    let mut client = Client::new(node.clone(), shard.clone(), info.clone(), is_local);
    // Every job the connection sends acts for this client (tracking's
    // NOLOOP, from any shard).
    crate::shard::on_behalf_of(id, run(&mut stream, &mut client)).await;
    cmd::tx::on_close(&mut client).await;
    cmd::pubsub::on_close(&mut client);
    crate::tracking::connection_closed(client.id);
    if client.monitor.is_some() {
        node.remove_monitor(id);
    }
    shard.with_core(|core| core.clients.remove(&id));
}

/// Keeps `connected_clients` right however the connection ends.
struct ConnectedGuard(Arc<Node>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.connected_clients.fetch_sub(1, Ordering::SeqCst);
    }
}

fn set_keepalive(fd: i32, secs: u64) {
    let on: libc::c_int = 1;
    let idle = secs.min(i32::MAX as u64) as libc::c_int;
    let intvl = (idle / 3).max(1);
    let cnt: libc::c_int = 3;
    let set = |level, opt, v: &libc::c_int| {
        // SAFETY: setsockopt reads an int from a live reference; `fd` is
        // this connection's open socket.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, &on);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, &idle);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, &intvl);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &cnt);
}

async fn run(stream: &mut TcpStream, client: &mut Client) {
    let mut input = match SocketInput::new(stream.as_raw_fd()) {
        Ok(input) => input,
        Err(e) => {
            // As Redis frees a client whose fd it cannot watch.
            tracing::warn!("Error registering fd event for the new client: {e}");
            return;
        }
    };
    let node = client.node.clone();
    let mut limits = Limits::load(&node, client.authenticated);
    let mut decoder = Decoder::new();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    // Bytes of pub/sub messages in `wbuf`: they leave the subscriber's
    // pending count (its output buffer) once written.
    let mut pushed = 0usize;
    // The plain keyed commands of one read, sent to their shards together.
    let mut batch = Batch::default();
    loop {
        let read = if client.monitor.is_none() && client.subs.is_none() {
            input.read(&mut rbuf, READ_ROOM).await
        } else {
            // MONITOR or pub/sub: forward what arrives for this client while
            // still reading its own commands.
            let monitor = client.monitor.clone();
            let mailbox = client.subs.as_ref().map(|s| s.mailbox.clone());
            let event = futures_lite::future::or(
                async { Err(input.read(&mut rbuf, READ_ROOM).await) },
                async { Ok(next_push(monitor.as_deref(), mailbox.as_deref()).await) },
            )
            .await;
            match event {
                Err(read) => read,
                Ok((first, is_message)) => {
                    if is_message {
                        pushed += first.len();
                    }
                    wbuf.extend_from_slice(&first);
                    take_pushes(client, &mut wbuf, &mut pushed);
                    if !flush(stream, client, &mut wbuf, &mut pushed).await {
                        return;
                    }
                    continue;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if client.info.borrow().killed {
            return;
        }
        client.shard.with_core(|core| {
            core.stats.net_input_bytes += n as u64;
            core.stats.reads_processed += 1;
        });
        if node.config_epoch.load(Ordering::Relaxed) != limits.epoch
            || limits.decode.authenticated != client.authenticated
        {
            limits = Limits::load(&node, client.authenticated);
        }
        if rbuf.len() > limits.query_buffer {
            tracing::warn!(
                "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})",
                client.id,
                client.info.borrow().addr,
                String::from_utf8_lossy(&rbuf[..rbuf.len().min(64)])
            );
            return;
        }
        client.info.borrow_mut().last_interaction_ms = coarse_ms();
        loop {
            let args = match decoder.decode(&mut rbuf, &limits.decode) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    // Commands before the malformed one are answered first.
                    finish_batch(client, &mut batch, &mut wbuf).await;
                    encode(
                        &Reply::Error(format!("ERR {}", e.0).into()),
                        client.proto,
                        &mut wbuf,
                    );
                    let _ = stream.write_all(&wbuf).await;
                    return;
                }
            };
            if args.is_empty() {
                continue;
            }
            let args = match batch.offer(client, args) {
                Ok(()) => {
                    if batch.is_full() {
                        finish_batch(client, &mut batch, &mut wbuf).await;
                    }
                    continue;
                }
                Err(args) => args,
            };
            // This command runs alone, after everything before it.
            finish_batch(client, &mut batch, &mut wbuf).await;
            if client.subs.is_some() {
                // Messages that arrived before this command go out before
                // its reply; those published while it runs come after it,
                // so a SUBSCRIBE's confirmation precedes the channel's
                // first message, as Redis orders them.
                take_pushes(client, &mut wbuf, &mut pushed);
            }
            let mut reply = cmd::dispatch(client, args).await;
            if client.blocked.is_some() {
                match wait_blocked(&mut input, client, &mut rbuf).await {
                    Some(r) => {
                        // Served by a push that it then propagated.
                        cmd::note_aof_write(client);
                        reply = r;
                    }
                    None => return,
                }
            }
            emit(client, &reply, &mut wbuf);
            if client.close_after_reply {
                cmd::aof_durable(client).await;
                let _ = stream.write_all(&wbuf).await;
                return;
            }
            if let Some(request) = client.psync.take() {
                // PSYNC/SYNC: this connection is a replica from now on.
                if !flush(stream, client, &mut wbuf, &mut pushed).await {
                    return;
                }
                // What the replica sends from now on (its ACKs) is read
                // by its feed, through the same registration.
                crate::repl::master::serve(stream, input, client, request).await;
                return;
            }
            if limits.decode.authenticated != client.authenticated {
                limits = Limits::load(&node, client.authenticated);
            }
            if wbuf.len() >= FLUSH_AT && !flush(stream, client, &mut wbuf, &mut pushed).await {
                return;
            }
        }
        finish_batch(client, &mut batch, &mut wbuf).await;
        if let Some(want) = decoder.wanted_capacity() {
            rbuf.reserve(want.saturating_sub(rbuf.len()));
        }
        if !wbuf.is_empty() && !flush(stream, client, &mut wbuf, &mut pushed).await {
            return;
        }
    }
}

/// Appends `reply` to the output as CLIENT REPLY allows.
fn emit(client: &mut Client, reply: &Reply, wbuf: &mut BytesMut) {
    match client.reply_mode {
        ReplyMode::On => encode(reply, client.proto, wbuf),
        ReplyMode::Off => {}
        ReplyMode::Skipping => client.reply_mode = ReplyMode::On,
        ReplyMode::SkipNext => client.reply_mode = ReplyMode::Skipping,
    }
}

/// Runs what the batch holds and appends its replies in request order.
async fn finish_batch(client: &mut Client, batch: &mut Batch, wbuf: &mut BytesMut) {
    if batch.is_empty() {
        return;
    }
    for reply in batch.finish(client).await {
        emit(client, &reply, wbuf);
    }
}

/// Waits for a blocked command's outcome while watching the socket: input
/// that arrives meanwhile is kept for later (as Redis keeps it in the query
/// buffer); a closed connection abandons the wait (`None`).
async fn wait_blocked(
    input: &mut SocketInput,
    client: &mut Client,
    rbuf: &mut BytesMut,
) -> Option<Reply> {
    {
        let mut wait = std::pin::pin!(cmd::blocking::wait(client));
        loop {
            let event = futures_lite::future::or(async { Ok(wait.as_mut().await) }, async {
                Err(input.read(rbuf, READ_ROOM).await)
            })
            .await;
            match event {
                Ok(reply) => return Some(reply),
                Err(Ok(n)) if n > 0 => {}
                Err(_) => break,
            }
        }
    }
    cmd::blocking::abandon(client).await;
    None
}

/// The next MONITOR line or pub/sub message queued for us (true for a
/// message).
async fn next_push(monitor: Option<&Inbox<Bytes>>, mailbox: Option<&Subscriber>) -> (Bytes, bool) {
    match (monitor, mailbox) {
        (Some(m), Some(s)) => {
            futures_lite::future::or(async { (m.recv().await, false) }, async {
                (s.recv().await, true)
            })
            .await
        }
        (Some(m), None) => (m.recv().await, false),
        (None, Some(s)) => (s.recv().await, true),
        (None, None) => std::future::pending().await,
    }
}

/// Moves queued MONITOR lines and pub/sub messages into `wbuf`.
fn take_pushes(client: &Client, wbuf: &mut BytesMut, pushed: &mut usize) {
    if let Some(m) = client.monitor.as_deref() {
        while let Some(line) = m.try_pop() {
            wbuf.extend_from_slice(&line);
        }
    }
    if let Some(s) = client.subs.as_ref() {
        while let Some(msg) = s.mailbox.try_recv() {
            *pushed += msg.len();
            wbuf.extend_from_slice(&msg);
        }
    }
}

async fn flush(
    stream: &mut TcpStream,
    client: &Client,
    wbuf: &mut BytesMut,
    pushed: &mut usize,
) -> bool {
    let len = wbuf.len() as u64;
    // `appendfsync always`: no reply to a write before it is on disk.
    cmd::aof_durable(client).await;
    // Most replies fit the socket's buffer: send them with one plain
    // syscall, and leave only a remainder to the runtime's wait.
    let sent = match send_now(stream.as_raw_fd(), wbuf) {
        Ok(sent) => sent,
        Err(_) => return false,
    };
    if sent < wbuf.len() && stream.write_all(&wbuf[sent..]).await.is_err() {
        return false;
    }
    wbuf.clear();
    if *pushed > 0 {
        if let Some(s) = client.subs.as_ref() {
            s.mailbox.written(std::mem::take(pushed));
        }
    }
    client.shard.with_core(|core| {
        core.stats.net_output_bytes += len;
        core.stats.writes_processed += 1;
    });
    true
}

/// Sends what the socket takes now, without waiting: the bytes sent, 0
/// when its buffer is full. A raw `sendto` rather than libc's `send`,
/// which is a thread-cancellation point and pays for that on every call.
fn send_now(fd: i32, buf: &[u8]) -> std::io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    // SAFETY: `buf` is a live slice for the whole call and the kernel only
    // reads `buf.len()` bytes from it; `fd` is this connection's socket,
    // open while `stream` lives; no address is passed.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0,
        )
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = std::io::Error::last_os_error();
    match err.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
        _ => Err(err),
    }
}
