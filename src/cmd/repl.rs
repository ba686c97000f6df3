//! Replication commands: REPLICAOF/SLAVEOF, REPLCONF, PSYNC/SYNC, ROLE.
//!
//! Parsing and replies only: the state they change lives in
//! [`crate::repl`]. PSYNC and SYNC do not reply here: they mark the client
//! (`Client::psync`) and the connection hands its socket to
//! [`crate::repl::master::serve`] once the command returns.

use super::args::is;
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::repl::master::PsyncRequest;
use crate::repl::replica::Followed;
use crate::repl::Role;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Server as S;
    let none = (0, 0, 0);
    let c = Run::Client;
    vec![
        spec(
            "replicaof",
            3,
            ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
            none,
            S,
            "5.0.0",
            "Make the server a replica of another instance, or promote it as master",
            c(ClientCmd::Replicaof),
        ),
        spec(
            "slaveof",
            3,
            ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
            none,
            S,
            "1.0.0",
            "Make the server a replica of another instance, or promote it as master",
            c(ClientCmd::Replicaof),
        ),
        spec(
            "replconf",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
            none,
            S,
            "3.0.0",
            "An internal command for configuring the replication stream",
            c(ClientCmd::Replconf),
        ),
        spec(
            "psync",
            -3,
            ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING,
            none,
            S,
            "2.8.0",
            "Internal command used for replication",
            c(ClientCmd::Psync),
        ),
        spec(
            "sync",
            1,
            ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING,
            none,
            S,
            "1.0.0",
            "Internal command used for replication",
            c(ClientCmd::Psync),
        ),
        spec(
            "wait",
            3,
            NOSCRIPT,
            none,
            Group::Generic,
            "3.0.0",
            "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
            c(ClientCmd::Wait),
        ),
        spec(
            "failover",
            -1,
            ADMIN | NOSCRIPT | STALE,
            none,
            S,
            "6.2.0",
            "Start a coordinated failover between this server and one of its replicas.",
            c(ClientCmd::Failover),
        ),
        spec(
            "role",
            1,
            NOSCRIPT | LOADING | STALE | FAST,
            none,
            S,
            "2.8.12",
            "Return the role of the instance in the context of replication",
            c(ClientCmd::Role),
        ),
    ]
}

pub async fn run(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Replicaof => replicaof(client, args).await,
        ClientCmd::Replconf => replconf(client, args),
        ClientCmd::Psync => psync(client, args).await,
        ClientCmd::Failover => failover(client, args).await,
        ClientCmd::Role => Ok(role(client)),
        ClientCmd::Wait => wait(client, args).await,
        _ => Err(CmdError::Syntax),
    }
}

/// REPLICAOF / SLAVEOF. Obeyed from any client, our master's link
/// included, as Redis does. (Redis refuses the host-port form from a client
/// that is one of our replicas; a replica's connection here runs no
/// commands once it has asked for the stream.)
async fn replicaof(client: &mut Client, args: &[Bytes]) -> CmdResult {
    if client.node.repl.failover().state != crate::repl::failover::FailoverState::None {
        return Err(CmdError::other(
            "ERR REPLICAOF not allowed while failing over.",
        ));
    }
    let who = client_description(client);
    if is(&args[1], "no") && is(&args[2], "one") {
        crate::repl::replica::promote(&client.node, &who).await;
        return Ok(Reply::Ok);
    }
    let port = super::args::parse_i64_strict(&args[2])
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| CmdError::other("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    match crate::repl::replica::follow(&client.node, host.clone(), port as u16).await {
        Followed::AlreadyConnected => {
            tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            Ok(Reply::Simple(Bytes::from_static(
                b"OK Already connected to specified master",
            )))
        }
        Followed::Started => {
            tracing::info!("REPLICAOF {host}:{port} enabled (user request from '{who}')");
            Ok(Reply::Ok)
        }
        Followed::Superseded => Ok(Reply::Ok),
    }
}

/// The `id=... addr=...` text Redis puts in its REPLICAOF log lines.
fn client_description(client: &Client) -> String {
    let info = client.info.borrow();
    format!(
        "id={} addr={} laddr={} fd={} name={} db={} cmd=replicaof",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        String::from_utf8_lossy(&info.name),
        client.db
    )
}

fn replconf(client: &mut Client, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    for pair in args[1..].chunks_exact(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "listening-port") {
            let port = super::args::parse_i64_strict(val)
                .filter(|p| (0..=65535).contains(p))
                .ok_or_else(|| CmdError::other("ERR value is out of range"))?;
            client.repl.listening_port = port as u16;
        } else if is(opt, "ip-address") {
            client.repl.ip_address = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "capa") {
            if is(val, "eof") {
                client.repl.capa_eof = true;
            } else if is(val, "psync2") {
                client.repl.capa_psync2 = true;
            }
        } else if is(opt, "ack") || is(opt, "getack") {
            // ACKs from a replica are read by its feeder, not here; a
            // GETACK sent to a normal client is ignored, as in Redis.
            return Ok(Reply::Raw(Bytes::new()));
        } else if is(opt, "rdb-only") {
            client.repl.rdb_only = match super::args::parse_i64_strict(val) {
                Some(0) => false,
                Some(1) => true,
                Some(_) => {
                    return Err(CmdError::other(
                        "ERR value is out of range, value must between 0 and 1",
                    ))
                }
                None => return Err(CmdError::NotInteger),
            };
        } else if is(opt, "rdb-filter-only") {
            // Include filters, space separated: only `functions` exists.
            // Any filter means no keys; `functions` keeps the libraries.
            let filters = crate::config::split_args(val)
                .ok_or_else(|| CmdError::other("ERR Missing rdb-filter-only values"))?;
            if let Some(bad) = filters.iter().find(|f| !is(f, "functions")) {
                return Err(CmdError::other(format!(
                    "ERR Unsupported rdb-filter-only option: {}",
                    String::from_utf8_lossy(bad)
                )));
            }
            client.repl.rdb_keyless = true;
            client.repl.rdb_functions = !filters.is_empty();
        } else {
            return Err(CmdError::other(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    Ok(Reply::Ok)
}

async fn psync(client: &mut Client, args: &[Bytes]) -> CmdResult {
    if client.is_master {
        return Err(CmdError::other(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    let node = client.node.clone();
    let failover_state = node.repl.failover().state;
    if args.len() > 3 && is(&args[3], "failover") {
        // Our master hands over: take over its history, then answer its
        // PSYNC as the new master (it continues from our second id).
        if args[1].as_ref() != node.repl.ids().replid.0.as_bytes() {
            return Err(CmdError::other(
                "ERR PSYNC FAILOVER replid must match my replid.",
            ));
        }
        crate::repl::replica::promote(&node, "failover").await;
        tracing::info!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(&args[1])
        );
    } else if failover_state != crate::repl::failover::FailoverState::None {
        return Err(CmdError::other(
            "NOMASTERLINK Can't SYNC while failing over",
        ));
    }
    let node = &node;
    if node
        .repl
        .is_replica
        .load(std::sync::atomic::Ordering::SeqCst)
        && !node.repl.link().up
    {
        return Err(CmdError::other(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    let request = if args.len() >= 3 {
        PsyncRequest {
            replid: String::from_utf8_lossy(&args[1]).into_owned(),
            offset: super::args::parse_i64_strict(&args[2]).unwrap_or(-1),
            old_sync: false,
        }
    } else {
        PsyncRequest {
            replid: "?".into(),
            offset: -1,
            old_sync: true,
        }
    };
    client.psync = Some(request);
    Ok(Reply::Raw(Bytes::new()))
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | FAILOVER ABORT.
async fn failover(client: &mut Client, args: &[Bytes]) -> CmdResult {
    use crate::repl::failover::{self, FailoverState, Request};
    let node = client.node.clone();
    if args.len() == 2 && is(&args[1], "abort") {
        if node.repl.failover().state == FailoverState::None {
            return Err(CmdError::other("ERR No failover in progress."));
        }
        failover::abort(&node, "Failover manually aborted").await;
        return Ok(Reply::Ok);
    }
    let mut req = Request {
        target: None,
        timeout_ms: 0,
        force: false,
    };
    let mut j = 1;
    while j < args.len() {
        let a = &args[j];
        if is(a, "timeout") && j + 1 < args.len() && req.timeout_ms == 0 {
            let ms = super::args::int_arg(&args[j + 1])?;
            if ms <= 0 {
                return Err(CmdError::other(
                    "ERR FAILOVER timeout must be greater than 0",
                ));
            }
            req.timeout_ms = ms as u64;
            j += 2;
        } else if is(a, "to") && j + 2 < args.len() && req.target.is_none() {
            let port = super::args::int_arg(&args[j + 2])?;
            let host = String::from_utf8_lossy(&args[j + 1]).into_owned();
            // A port out of range can only fail to match a replica.
            req.target = Some((host, u16::try_from(port).unwrap_or(0)));
            j += 3;
        } else if is(a, "force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    failover::start(&node, req).map_err(CmdError::Other)?;
    Ok(Reply::Ok)
}

/// ROLE: `master offset [[ip port offset]...]` or
/// `slave host port state offset`.
fn role(client: &Client) -> Reply {
    let repl = &client.node.repl;
    match repl.role() {
        Role::Master => {
            let replicas = repl
                .replicas()
                .iter()
                .filter(|r| r.state() == "online")
                .map(|r| {
                    Reply::Array(vec![
                        Reply::Bulk(Bytes::from(r.ip.clone())),
                        Reply::Bulk(Bytes::from(r.port.to_string())),
                        Reply::Bulk(Bytes::from(
                            r.ack_offset
                                .load(std::sync::atomic::Ordering::Relaxed)
                                .to_string(),
                        )),
                    ])
                })
                .collect();
            Reply::Array(vec![
                Reply::Bulk(Bytes::from_static(b"master")),
                Reply::Int(repl.master_offset() as i64),
                Reply::Array(replicas),
            ])
        }
        Role::Replica { host, port } => {
            let link = repl.link();
            let offset = if link.up {
                link.processed_offset as i64
            } else {
                -1
            };
            Reply::Array(vec![
                Reply::Bulk(Bytes::from_static(b"slave")),
                Reply::Bulk(Bytes::from(host)),
                Reply::Int(port as i64),
                Reply::Bulk(Bytes::from(if link.phase.is_empty() {
                    "connect"
                } else {
                    link.phase
                })),
                Reply::Int(offset),
            ])
        }
    }
}

/// WAIT numreplicas timeout: how many replicas acknowledged this
/// connection's writes, waiting up to `timeout` ms (0: forever) for
/// `numreplicas` of them. Replicas are asked for an ACK at once
/// (`REPLCONF GETACK *` in the stream) instead of waiting for their
/// once-a-second ACK.
async fn wait(client: &mut Client, args: &[Bytes]) -> CmdResult {
    use std::sync::atomic::Ordering::Relaxed;
    let repl = &client.node.repl;
    if repl.is_replica.load(Relaxed) {
        return Err(CmdError::other("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let wanted = super::args::int_arg(&args[1])?;
    let timeout = super::args::int_arg(&args[2])?;
    if timeout < 0 {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    let target = client.last_write_offset;
    let acked = || {
        repl.replicas()
            .iter()
            .filter(|r| r.state() == "online" && r.ack_offset.load(Relaxed) >= target)
            .count() as i64
    };
    let now = acked();
    // Inside EXEC the shards are held: never block there (Redis answers
    // the current count too).
    if now >= wanted || client.in_exec {
        return Ok(Reply::Int(now));
    }
    repl.request_acks(client.shard.id);
    let deadline = (timeout > 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout as u64));
    loop {
        let n = acked();
        if n >= wanted || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(Reply::Int(n));
        }
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
}
