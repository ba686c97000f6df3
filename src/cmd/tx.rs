//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! # What it owns
//! A client's transaction state ([`MultiState`]: the queued commands and
//! whether queueing failed) and its watched keys ([`Watched`]). Queueing
//! happens in `cmd::dispatch`, which asks [`runs_in_multi`] what executes
//! at once inside MULTI.
//!
//! # EXEC across shards
//! EXEC holds every shard its commands touch (their key positions from the
//! command table, the shards of the watched keys and the client's own shard;
//! all shards as soon as one queued command is a client-level command that
//! may reach any shard: FLUSHALL, KEYS, DBSIZE, INFO...). Holding them, it
//! checks the watched keys, then runs the queued commands one by one through
//! the ordinary `cmd::call` under [`crate::shard::scoped`], so nested
//! `run_on`/`hold` calls go through the EXEC's hold: no other client's
//! command can run on a held shard in between, and the shards not held
//! have none of the transaction's keys.
//!
//! # Propagation
//! Every held shard carries the same [`Capture`] while EXEC runs: what its
//! commands propagate (rewrites, expired-key DELs, the writes of client
//! commands) is collected in execution order and appended to the stream as
//! one unit while the shards are still held: `MULTI` ... `EXEC` when there
//! are several commands, the command alone when there is one (Redis 7.0
//! does not wrap a single command), nothing for a read-only transaction.
//!
//! # WATCH
//! A watched key is registered in its database's watch table on its shard
//! (`keyspace::watch`); the client keeps the stamp WATCH returned and EXEC
//! compares it on the shard, under the hold. Writes to unwatched keys pay
//! one `is_empty` test. The client's watches are removed by EXEC, DISCARD,
//! UNWATCH, RESET and when the connection closes ([`on_close`]).
//!
//! Depends on `shard` (holds, routing), `keyspace::watch` (stamps) and
//! `propagate` (the capture); never on `net`.

use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::keyspace::watch::WatchStamp;
use crate::node::unix_ms;
use crate::propagate::Capture;
use crate::resp::Reply;
use crate::shard;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

pub fn commands() -> Vec<CommandSpec> {
    use Group::Transactions as T;
    let none = (0, 0, 0);
    let c = Run::Client;
    vec![
        spec(
            "multi",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            none,
            T,
            "1.2.0",
            "Start a transaction",
            c(ClientCmd::Multi),
        ),
        spec(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
            none,
            T,
            "1.2.0",
            "Execute all commands issued after MULTI",
            c(ClientCmd::Exec),
        ),
        spec(
            "discard",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            none,
            T,
            "2.0.0",
            "Discard all commands issued after MULTI",
            c(ClientCmd::Discard),
        ),
        spec(
            "watch",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            (1, -1, 1),
            T,
            "2.2.0",
            "Watch the given keys to determine execution of the MULTI/EXEC block",
            c(ClientCmd::Watch),
        ),
        spec(
            "unwatch",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            none,
            T,
            "2.2.0",
            "Forget about all watched keys",
            c(ClientCmd::Unwatch),
        ),
    ]
}

/// A transaction being queued (between MULTI and EXEC/DISCARD).
#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// The union of the queued commands' flags, and of the flags they
    /// lack (Redis's `cmd_flags` and `cmd_inv_flags`): the checks before
    /// EXEC treat it as a write when one queued command writes, as denied
    /// on stale data when one lacks `stale` (see `cmd::check`).
    pub flags: u32,
    pub missing_flags: u32,
}

/// One key a client watches.
pub struct Watched {
    pub db: usize,
    pub key: Bytes,
    /// The shard owning the key, where its watch entry lives.
    pub shard: usize,
    pub stamp: WatchStamp,
}

/// Commands that run at once inside MULTI instead of being queued.
pub fn runs_in_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.run,
        Run::Client(
            ClientCmd::Exec
                | ClientCmd::Discard
                | ClientCmd::Multi
                | ClientCmd::Watch
                | ClientCmd::Quit
                | ClientCmd::Reset
        )
    )
}

/// Queues a checked command inside MULTI.
pub fn queue(client: &mut Client, spec: &'static CommandSpec, args: Vec<Bytes>) -> Reply {
    let Some(multi) = client.multi.as_mut() else {
        return Reply::Error("ERR internal error: queueing outside MULTI".into());
    };
    let flags = super::function::call_flags(spec, &args);
    multi.flags |= flags;
    multi.missing_flags |= !flags;
    multi.queued.push((spec, args));
    client.info.borrow_mut().multi = multi.queued.len() as i64;
    Reply::Simple(Bytes::from_static(b"QUEUED"))
}

/// A command was refused while queueing: EXEC will abort.
pub fn flag_dirty(client: &mut Client) {
    if let Some(multi) = client.multi.as_mut() {
        multi.dirty = true;
    }
}

/// EXEC itself was refused by the checks before it ran (a write denied by
/// `-MISCONF`, `-READONLY`, `-NOREPLICAS`, a wrong arity...): as Redis's
/// `execCommandAbort`, the transaction is discarded (the client leaves
/// MULTI and forgets its watched keys) and the refusal is wrapped in an
/// `EXECABORT`, whose message drops the `ERR` of errors that have no code
/// of their own.
pub async fn abort_refused_exec(client: &mut Client, refusal: &Reply) -> Reply {
    end_multi(client);
    unwatch_all(client).await;
    let text: &[u8] = match refusal {
        Reply::Error(e) => e,
        _ => b"",
    };
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let text = text.strip_prefix(b"ERR ").unwrap_or(text);
    let mut out = b"EXECABORT Transaction discarded because of: ".to_vec();
    out.extend_from_slice(text);
    Reply::Error(out.into())
}

pub async fn run(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Multi => {
            if client.multi.is_some() {
                return Err(CmdError::other("ERR MULTI calls can not be nested"));
            }
            client.multi = Some(MultiState::default());
            client.info.borrow_mut().multi = 0;
            Ok(Reply::Ok)
        }
        ClientCmd::Discard => {
            if client.multi.is_none() {
                return Err(CmdError::other("ERR DISCARD without MULTI"));
            }
            end_multi(client);
            unwatch_all(client).await;
            Ok(Reply::Ok)
        }
        ClientCmd::Exec => exec(client).await,
        ClientCmd::Watch => {
            if client.multi.is_some() {
                return Err(CmdError::other("ERR WATCH inside MULTI is not allowed"));
            }
            watch(client, &args[1..]).await;
            Ok(Reply::Ok)
        }
        ClientCmd::Unwatch => {
            unwatch_all(client).await;
            Ok(Reply::Ok)
        }
        _ => Err(CmdError::Syntax),
    }
}

fn end_multi(client: &mut Client) -> Option<MultiState> {
    client.info.borrow_mut().multi = -1;
    client.multi.take()
}

/// RESET and closed connections: no transaction, no watched keys.
pub async fn on_close(client: &mut Client) {
    end_multi(client);
    unwatch_all(client).await;
}

async fn watch(client: &mut Client, keys: &[Bytes]) {
    let db = client.db;
    for key in keys {
        if client.watched.iter().any(|w| w.db == db && w.key == *key) {
            continue;
        }
        // Our own copy: the argument may share a large network buffer.
        let key = Bytes::copy_from_slice(key);
        let target = client.shard.shard_of(&key);
        let k = key.clone();
        let stamp = shard::run_on(target, move |core| core.db_mut(db).watch(&k, unix_ms())).await;
        client.watched.push(Watched {
            db,
            key,
            shard: target,
            stamp,
        });
    }
}

/// Removes every watch of this client from the shards' tables.
async fn unwatch_all(client: &mut Client) {
    if client.watched.is_empty() {
        return;
    }
    let mut watched = std::mem::take(&mut client.watched);
    watched.sort_by_key(|w| w.shard);
    let mut rest = &watched[..];
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|w| w.shard == first.shard).count();
        let keys: Vec<(usize, Bytes)> = rest[..n].iter().map(|w| (w.db, w.key.clone())).collect();
        shard::run_on(first.shard, move |core| {
            for (db, key) in &keys {
                core.db_mut(*db).unwatch(key);
            }
        })
        .await;
        rest = &rest[n..];
    }
}

/// Client-level commands that touch no shard's data, so a transaction
/// queueing them does not need to hold every shard.
fn touches_no_shard(cmd: ClientCmd) -> bool {
    matches!(
        cmd,
        ClientCmd::Ping | ClientCmd::Echo | ClientCmd::Select | ClientCmd::Time
    ) || super::pubsub::touches_no_shard(cmd)
}

/// The shards an EXEC must hold.
fn shards_to_hold(client: &Client, multi: &MultiState) -> Vec<usize> {
    let n = client.shard.shards();
    let mut set = vec![client.shard.id];
    for (spec, args) in &multi.queued {
        match spec.run {
            Run::Keyed(..) => set.extend(
                spec.routing_positions(args)
                    .map(|p| client.shard.shard_of(&args[p])),
            ),
            Run::Client(cmd) if touches_no_shard(cmd) => {}
            Run::Client(_) => return (0..n).collect(),
        }
    }
    set.extend(client.watched.iter().map(|w| w.shard));
    set
}

/// Appends what a transaction (or a script) captured to the stream as
/// one unit, and makes it the client's last write (for WAIT). Called
/// while every shard it wrote is still held.
pub(super) fn append_captured(client: &mut Client, capture: &Mutex<Capture>) {
    let captured = std::mem::take(&mut *capture.lock().unwrap_or_else(|e| e.into_inner()));
    if captured.is_empty() {
        return;
    }
    let head = client.shard.with_core(|core| {
        crate::propagate::append_capture(core, captured);
        core.backlog.as_ref().map(|b| b.head())
    });
    if let Some(head) = head {
        client.last_write_offset = head;
    }
}

async fn exec(client: &mut Client) -> CmdResult {
    let Some(multi) = end_multi(client) else {
        return Err(CmdError::other("ERR EXEC without MULTI"));
    };
    if multi.dirty {
        unwatch_all(client).await;
        return Err(CmdError::other(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if multi.queued.is_empty() && client.watched.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let shards = shards_to_hold(client, &multi);
    let watched: Arc<Vec<(usize, usize, Bytes, WatchStamp)>> = Arc::new(
        std::mem::take(&mut client.watched)
            .into_iter()
            .map(|w| (w.shard, w.db, w.key, w.stamp))
            .collect(),
    );
    let capture = Arc::new(Mutex::new(Capture::default()));
    // Holding each shard: check and drop its watches, install the capture.
    let (guard, dirty) = shard::hold_and_run(&shards, {
        let capture = capture.clone();
        move |core| {
            let now = unix_ms();
            let (mut dirty, id) = (false, core.id);
            for (_, db, key, stamp) in watched.iter().filter(|w| w.0 == id) {
                let db = core.db_mut(*db);
                dirty |= stamp.is_dirty(db.watch_state(key, now));
                db.unwatch(key);
            }
            core.capture = Some(capture.clone());
            dirty
        }
    })
    .await;
    let reply = if dirty.iter().any(|&d| d) {
        Reply::NilArray
    } else {
        let queued = multi.queued;
        client.in_exec = true;
        let replies = shard::scoped(&guard, async {
            let mut replies = Vec::with_capacity(queued.len());
            for (spec, args) in &queued {
                // Users may have changed since the command was queued.
                if let Err(refused) = super::acl::check_at_exec(client, spec, args) {
                    replies.push(refused);
                    continue;
                }
                // Boxed: `call` may reach EXEC's own code (the future
                // type would be recursive); EXEC is never queued.
                replies.push(Box::pin(super::call(client, spec, args)).await);
            }
            replies
        })
        .await;
        client.in_exec = false;
        // Into the stream as one unit, before any held shard is released.
        append_captured(client, &capture);
        Reply::Array(replies)
    };
    guard.run_each(|core| core.capture = None).await;
    drop(guard);
    Ok(reply)
}
