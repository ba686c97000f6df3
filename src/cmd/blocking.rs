//! The blocking commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP on lists,
//! BZPOPMIN BZPOPMAX BZMPOP on sorted sets, and XREAD BLOCK on streams
//! (which `stream` parses and tries first; see [`block_stream_read`]). A
//! read takes nothing, so every XREAD waiter a new entry is for is served,
//! each with the entries after its own ID.
//!
//! # How a client blocks
//! [`run`] first tries the command like its non-blocking form (the keys'
//! shards held together when they span shards, so "the first non-empty key
//! in argument order" holds). With nothing to pop it registers a
//! [`Waiter`] on the shard of every key (`shard::blocked`), in the same job
//! or under the same hold as the attempt, so no push can slip in between,
//! and leaves a [`Blocked`] in the client. The connection then calls
//! [`wait`], racing it against its socket (a client that disconnects is
//! [`abandon`]ed: its waiter is removed everywhere).
//!
//! # How it is served
//! A write that gives a blocked-on key a list or a sorted set marks it
//! ready; right after that job (or when a multi-shard operation holding
//! the shard ends) the shard runs [`serve_ready`]: first waiters of the
//! value's kind first (a list serves only the list commands, a sorted set
//! only the sorted set ones, as in Redis 7.0), each claimed once (claiming
//! is what makes a waiter registered on several shards served by exactly
//! one), popped in the same step, so the pushed element is never visible
//! to anyone else, and propagated as Redis 7.0 does: `LPOP key`, `LPOP key
//! <n>` for BLMPOP, `LMOVE src dst <from> <to>` or `RPOPLPUSH src dst`,
//! `ZPOPMIN key` (`ZPOPMAX`) for BZPOPMIN (BZPOPMAX), `ZPOPMIN key <n>`
//! for BZMPOP. The one command a shard cannot finish alone, BLMOVE to a key
//! of another shard, is nudged instead, with the key's data reserved for it
//! (later waiters of the key wait behind it, so arrival order holds): its
//! client claims it and runs the move across both shards itself, leaving
//! the queue in the same job as the pop; if the element went elsewhere
//! meanwhile it gives the reservation back and keeps its place.
//!
//! Inside MULTI/EXEC and on the master link the commands never block: they
//! answer like their non-blocking forms. Depends on `list`/`listops` and
//! `zsetops` for the pops and moves and on `shard::blocked` for the
//! registry.

use super::error::{CmdError, CmdResult};
use super::list::bulk;
use super::listops::{
    move_across, move_ends, move_local, mpop_args, mpop_reply, pop_and_propagate, Leave,
};
use super::zsetops::{zmpop_args, zpop_and_propagate, zpop_reply};
use super::{Client, Ctx};
use crate::keyspace::End;
use crate::resp::Reply;
use crate::shard::blocked::{served_by, Awaits, BlockOp, Holds, Waiter, Wake};
use crate::shard::{self, route::shard_of, ShardCore};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A parsed blocking command.
#[derive(Clone)]
struct Request {
    keys: Vec<Bytes>,
    op: BlockOp,
    /// What an immediate move propagates (the ends as the client sent them).
    move_prop: Option<Vec<Bytes>>,
    /// 0: forever.
    timeout_ms: u64,
}

/// A client waiting in a blocking command (see [`wait`]).
pub struct Blocked {
    waiter: Arc<Waiter>,
    req: Request,
    deadline: Option<Instant>,
    /// CLIENT LIST flags before blocking.
    flags: String,
}

/// Redis 7.0.15's getTimeoutFromObjectOrReply for seconds: a long double,
/// times 1000 in long double, rounded up (0.0001 waits 1 ms, not
/// forever) to a long long (NaN, infinities and anything beyond 2^63 - 1
/// become `i64::MIN`, so "negative"). 7.0 has no upper bound: a timeout
/// too far away just never expires (see [`deadline`]).
fn timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let v = crate::util::ldouble::LongDouble::parse(arg)
        .ok_or_else(|| CmdError::other("ERR timeout is not a float or out of range"))?;
    let ms = v.ceil_mul_i64(1000);
    if ms < 0 {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// When a client blocked for `timeout_ms` (0: forever) gives up. Redis
/// stores the unix time in milliseconds plus the timeout; when that sum
/// overflows a long long the wrapped value is never reached, so the
/// client waits until served, as it does here.
fn deadline(timeout_ms: u64) -> Option<Instant> {
    if timeout_ms == 0 || timeout_ms > (i64::MAX as u64).saturating_sub(crate::node::unix_ms()) {
        return None;
    }
    Instant::now().checked_add(Duration::from_millis(timeout_ms))
}

fn parse(args: &[Bytes], shards: usize) -> Result<Request, CmdError> {
    let name = args[0].to_ascii_lowercase();
    let n = args.len();
    match &name[..] {
        b"blpop" | b"brpop" => {
            let end = if name[1] == b'l' {
                End::Left
            } else {
                End::Right
            };
            let timeout_ms = timeout_ms(&args[n - 1])?;
            Ok(Request {
                keys: args[1..n - 1].to_vec(),
                op: BlockOp::Pop { end, count: None },
                move_prop: None,
                timeout_ms,
            })
        }
        b"blmove" | b"brpoplpush" => {
            let rpoplpush = name == b"brpoplpush";
            let (from, to) = move_ends(args, 3)?;
            let timeout_ms = timeout_ms(&args[n - 1])?;
            let move_prop = if rpoplpush {
                vec![
                    Bytes::from_static(b"RPOPLPUSH"),
                    args[1].clone(),
                    args[2].clone(),
                ]
            } else {
                vec![
                    Bytes::from_static(b"LMOVE"),
                    args[1].clone(),
                    args[2].clone(),
                    args[3].clone(),
                    args[4].clone(),
                ]
            };
            Ok(Request {
                keys: vec![args[1].clone()],
                op: BlockOp::Move {
                    dest: args[2].clone(),
                    dest_shard: shard_of(&args[2], shards),
                    from,
                    to,
                    rpoplpush,
                },
                move_prop: Some(move_prop),
                timeout_ms,
            })
        }
        b"bzpopmin" | b"bzpopmax" => {
            let timeout_ms = timeout_ms(&args[n - 1])?;
            Ok(Request {
                keys: args[1..n - 1].to_vec(),
                op: BlockOp::ZPop {
                    max: name == b"bzpopmax",
                    count: None,
                },
                move_prop: None,
                timeout_ms,
            })
        }
        b"bzmpop" => {
            let a = zmpop_args(args, 2)?;
            let timeout_ms = timeout_ms(&args[1])?;
            Ok(Request {
                keys: args[a.keys].to_vec(),
                op: BlockOp::ZPop {
                    max: a.max,
                    count: Some(a.count),
                },
                move_prop: None,
                timeout_ms,
            })
        }
        _ => {
            let a = mpop_args(args, 2)?;
            let timeout_ms = timeout_ms(&args[1])?;
            Ok(Request {
                keys: args[a.keys].to_vec(),
                op: BlockOp::Pop {
                    end: a.end,
                    count: Some(a.count),
                },
                move_prop: None,
                timeout_ms,
            })
        }
    }
}

/// What a served pop answers: `[key, element]`, or `[key, [elements]]`
/// for BLMPOP.
fn pop_reply(key: &Bytes, elems: Vec<Bytes>, mpop: bool) -> Reply {
    if mpop {
        return mpop_reply(key.clone(), elems);
    }
    let mut it = elems.into_iter();
    Reply::Array(vec![
        Reply::Bulk(key.clone()),
        it.next().map_or(Reply::Nil, Reply::Bulk),
    ])
}

/// The propagation of a move served or retried by the server.
fn served_move_prop(src: &Bytes, dest: &Bytes, from: End, to: End, rpoplpush: bool) -> Vec<Bytes> {
    if rpoplpush {
        vec![Bytes::from_static(b"RPOPLPUSH"), src.clone(), dest.clone()]
    } else {
        vec![
            Bytes::from_static(b"LMOVE"),
            src.clone(),
            dest.clone(),
            Bytes::from_static(from.name().as_bytes()),
            Bytes::from_static(to.name().as_bytes()),
        ]
    }
}

/// Tries `key` for `op` on this shard: the reply when it could be served.
fn try_key(
    ctx: &mut Ctx,
    key: &Bytes,
    op: &BlockOp,
    prop: Option<&Vec<Bytes>>,
) -> Result<Option<Reply>, CmdError> {
    match op {
        BlockOp::Pop { end, count } => {
            let got = pop_and_propagate(ctx, key, *end, count.unwrap_or(1), count.is_some())?;
            Ok(got.map(|e| pop_reply(key, e, count.is_some())))
        }
        BlockOp::ZPop { max, count } => {
            let got = zpop_and_propagate(ctx, key, *max, *count)?;
            Ok(got.map(|p| zpop_reply(key, p, count.is_some())))
        }
        BlockOp::XRead { after, count } => {
            let Some((_, id)) = after.iter().find(|(k, _)| k == key) else {
                return Ok(None);
            };
            let entries = super::stream::entries_after(ctx, key, *id, *count);
            Ok(entries.map(|e| Reply::KeyedMap(vec![(Reply::Bulk(key.clone()), e)])))
        }
        BlockOp::XReadGroup {
            group,
            consumer,
            count,
            noack,
        } => {
            let read = super::xreadgroup::GroupRead {
                group: group.clone(),
                consumer: consumer.clone(),
                count: *count,
                noack: *noack,
            };
            let entries = super::xreadgroup::serve_blocked(ctx, key, &read)?;
            Ok(entries.map(|e| Reply::KeyedMap(vec![(Reply::Bulk(key.clone()), e)])))
        }
        BlockOp::Move {
            dest,
            from,
            to,
            rpoplpush,
            ..
        } => {
            let Some(v) = move_local(ctx, key, dest, *from, *to)? else {
                return Ok(None);
            };
            let cmd = match prop {
                Some(p) => p.clone(),
                None => served_move_prop(key, dest, *from, *to, *rpoplpush),
            };
            let db = ctx.db;
            crate::propagate::write(ctx.core, db, &[], Some(&[cmd]));
            Ok(Some(Reply::Bulk(v)))
        }
    }
}

/// Which waiters the value at `key` can serve now (see
/// `shard::blocked::served_by`).
fn has_data(core: &ShardCore, db: usize, key: &[u8]) -> Option<Awaits> {
    core.db(db)
        .get_ref(key, crate::node::unix_ms())
        .and_then(served_by)
}

/// Whether waiter `w` can be served from `key` now (see
/// `BlockOp::ready_for`).
fn ready_for(core: &ShardCore, db: usize, key: &[u8], w: &Waiter) -> bool {
    let holds = core
        .db(db)
        .get_ref(key, crate::node::unix_ms())
        .map(Holds::of);
    w.op.ready_for(key, holds.as_ref())
}

/// Registers `w` on `keys` of this shard; a key that has data for it
/// already (it got some between the attempt and now) is marked ready, so
/// the shard serves it after this job.
fn register(core: &mut ShardCore, db: usize, keys: &[Bytes], w: &Arc<Waiter>) {
    for key in keys {
        core.blocked.register(&mut core.ks, db, key, w.clone());
        if has_data(core, db, key) == Some(w.op.awaits()) && ready_for(core, db, key, w) {
            core.db_mut(db).mark_ready(key);
        }
    }
}

/// Removes `w` from `keys` of this shard, handing a key that still has
/// data and waiters to the next of them.
fn deregister(core: &mut ShardCore, db: usize, keys: &[Bytes], w: &Arc<Waiter>) {
    core.blocked.remove(&mut core.ks, db, keys, w);
    for key in keys {
        if core.blocked.has_waiters(db, key) && has_data(core, db, key).is_some() {
            core.db_mut(db).mark_ready(key);
        }
    }
}

/// The keys of `keys` on each shard, shards ascending.
fn by_shard(keys: &[Bytes], shards: usize) -> Vec<(usize, Vec<Bytes>)> {
    let mut out: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for k in keys {
        let s = shard_of(k, shards);
        match out.iter_mut().find(|(x, _)| *x == s) {
            Some((_, v)) => v.push(k.clone()),
            None => out.push((s, vec![k.clone()])),
        }
    }
    out.sort_by_key(|(s, _)| *s);
    out
}

/// The attempt of a blocking command, registering `waiter` (if any) when
/// nothing could be served.
async fn attempt(client: &Client, req: &Request, waiter: Option<&Arc<Waiter>>) -> CmdResult {
    let db = client.db;
    let n = client.shard.shards();
    if let BlockOp::Move {
        dest_shard,
        from,
        to,
        ..
    } = &req.op
    {
        let src = req.keys[0].clone();
        let s = shard_of(&src, n);
        if *dest_shard != s {
            let prop = req.move_prop.clone().unwrap_or_default();
            let got = move_across(
                client,
                db,
                src.clone(),
                match &req.op {
                    BlockOp::Move { dest, .. } => dest.clone(),
                    _ => src.clone(),
                },
                (*from, *to),
                prop,
                None,
            )
            .await?;
            if let Some(v) = got {
                return Ok(Reply::Bulk(v));
            }
            if let Some(w) = waiter {
                let w = w.clone();
                shard::run_on(s, move |core| register(core, db, &[src], &w)).await;
            }
            return Ok(Reply::Nil);
        }
    }
    let groups = by_shard(&req.keys, n);
    if let [(s, _)] = groups[..] {
        let (keys, op, prop, w) = (
            req.keys.clone(),
            req.op.clone(),
            req.move_prop.clone(),
            waiter.cloned(),
        );
        let got = shard::run_on(s, move |core| {
            let mut ctx = Ctx::new(core, db);
            for k in &keys {
                if let Some(r) = try_key(&mut ctx, k, &op, prop.as_ref())? {
                    return Ok(Some(r));
                }
            }
            if let Some(w) = w {
                register(core, db, &keys, &w);
            }
            Ok::<_, CmdError>(None)
        })
        .await?;
        return Ok(got.unwrap_or(Reply::Nil));
    }
    let involved: Vec<usize> = groups.iter().map(|(s, _)| *s).collect();
    let guard = shard::hold(&involved).await;
    for k in &req.keys {
        let (key, op, prop) = (k.clone(), req.op.clone(), req.move_prop.clone());
        let got = guard
            .run(shard_of(k, n), move |core| {
                let mut ctx = Ctx::new(core, db);
                try_key(&mut ctx, &key, &op, prop.as_ref())
            })
            .await?;
        if let Some(r) = got {
            return Ok(r);
        }
    }
    if let Some(w) = waiter {
        for (s, keys) in groups {
            let w = w.clone();
            guard
                .run(s, move |core| register(core, db, &keys, &w))
                .await;
        }
    }
    drop(guard);
    Ok(Reply::Nil)
}

/// The reply of a blocking command that found nothing and may not block.
fn empty_reply(req: &Request) -> Reply {
    match req.op {
        BlockOp::Move { .. } => Reply::Nil,
        _ => Reply::NilArray,
    }
}

/// BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP: the
/// reply, or a placeholder with
/// `client.blocked` set (the connection then calls [`wait`]).
pub async fn run(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let req = parse(args, client.shard.shards())?;
    let may_block = !client.in_exec && !client.is_master;
    let waiter = may_block.then(|| Waiter::new(client.id, client.db, req.op.clone()));
    let reply = attempt(client, &req, waiter.as_ref()).await?;
    let Some(waiter) = waiter else {
        return Ok(match reply {
            Reply::Nil => empty_reply(&req),
            r => r,
        });
    };
    if !matches!(reply, Reply::Nil) {
        return Ok(reply);
    }
    enter_blocked(client, waiter, req);
    Ok(Reply::Nil)
}

/// Leaves the client blocked on `waiter` (registered on its keys' shards
/// already); the connection then calls [`wait`].
fn enter_blocked(client: &mut Client, waiter: Arc<Waiter>, req: Request) {
    let deadline = deadline(req.timeout_ms);
    let flags = {
        let mut info = client.info.borrow_mut();
        info.blocked = Some(waiter.clone());
        std::mem::replace(&mut info.flags, "b".into())
    };
    client.blocked = Some(Blocked {
        waiter,
        req,
        deadline,
        flags,
    });
}

/// XREAD or XREADGROUP BLOCK that found nothing to read: registers a
/// waiter (`op`) for new entries of `keys` on the shards the caller holds
/// (so no entry lands in between) and leaves the client blocked,
/// `timeout_ms` (0: forever). The reply is a placeholder, as from [`run`].
pub async fn block_stream_read(
    client: &mut Client,
    guard: &shard::HoldGuard,
    keys: Vec<Bytes>,
    op: BlockOp,
    timeout_ms: u64,
) -> Reply {
    let db = client.db;
    let waiter = Waiter::new(client.id, db, op.clone());
    for (s, ks) in by_shard(&keys, client.shard.shards()) {
        let w = waiter.clone();
        guard.run(s, move |core| register(core, db, &ks, &w)).await;
    }
    let req = Request {
        keys,
        op,
        move_prop: None,
        timeout_ms,
    };
    enter_blocked(client, waiter, req);
    Reply::Nil
}

/// How one wait step ended.
enum Step {
    Wake(Wake),
    TimedOut,
}

async fn wait_step(w: &Waiter, deadline: Option<Instant>) -> Step {
    let Some(d) = deadline else {
        return Step::Wake(w.wait().await);
    };
    futures_lite::future::or(async { Step::Wake(w.wait().await) }, async {
        glommio::timer::sleep(d.saturating_duration_since(Instant::now())).await;
        Step::TimedOut
    })
    .await
}

/// Waits for the blocked command of `client` to be served, time out or be
/// unblocked, and returns its reply. Cancel-safe: if the future is
/// dropped, call [`abandon`].
pub async fn wait(client: &mut Client) -> Reply {
    loop {
        let Some(b) = client.blocked.as_ref() else {
            return Reply::NilArray;
        };
        let (w, deadline) = (b.waiter.clone(), b.deadline);
        let wake = match wait_step(&w, deadline).await {
            Step::Wake(wake) => wake,
            Step::TimedOut if w.claim() => {
                finish(client).await;
                return Reply::NilArray;
            }
            // Claimed by someone else just now: its outcome is coming.
            Step::TimedOut => w.wait().await,
        };
        match wake {
            Wake::Served(reply) => {
                finish(client).await;
                return reply;
            }
            Wake::Unblocked { error } => {
                finish(client).await;
                return if error {
                    Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
                } else {
                    Reply::NilArray
                };
            }
            Wake::Retry => {
                if !w.claim() {
                    continue;
                }
                if let Some(reply) = retry_move(client).await {
                    return reply;
                }
            }
        }
    }
}

/// A nudged cross-shard BLMOVE: runs the move itself; `None` when the
/// element was gone (the client is registered again with a new waiter).
async fn retry_move(client: &mut Client) -> Option<Reply> {
    let (req, old) = {
        let b = client.blocked.as_ref()?;
        (b.req.clone(), b.waiter.clone())
    };
    let db = client.db;
    let src = req.keys[0].clone();
    let BlockOp::Move {
        dest,
        from,
        to,
        rpoplpush,
        ..
    } = &req.op
    else {
        return Some(Reply::NilArray);
    };
    let prop = served_move_prop(&req.keys[0], dest, *from, *to, *rpoplpush);
    // The waiter leaves the source's queue in the job that pops, so the
    // next waiter is served (after the hold ends) only once this move is in
    // the stream.
    let leave: Leave = Box::new(move |core| deregister(core, db, std::slice::from_ref(&src), &old));
    let got = move_across(
        client,
        db,
        req.keys[0].clone(),
        dest.clone(),
        (*from, *to),
        prop,
        Some(leave),
    )
    .await;
    match got {
        Ok(Some(v)) => {
            finish(client).await;
            Some(bulk(&v))
        }
        Err(e) => {
            finish(client).await;
            Some(Reply::from(e))
        }
        Ok(None) => {
            // Taken by a non-blocking pop meanwhile: wait again, in place.
            if let Some(b) = client.blocked.as_ref() {
                b.waiter.unreserve();
            }
            None
        }
    }
}

/// Ends a wait: the waiter leaves every shard, the client its blocked
/// state.
async fn finish(client: &mut Client) {
    let Some(b) = client.blocked.take() else {
        return;
    };
    {
        let mut info = client.info.borrow_mut();
        info.blocked = None;
        info.flags = b.flags.clone();
    }
    let db = client.db;
    for (s, keys) in by_shard(&b.req.keys, client.shard.shards()) {
        let w = b.waiter.clone();
        shard::run_on(s, move |core| deregister(core, db, &keys, &w)).await;
    }
}

/// The connection closed while blocked: nobody will read the outcome.
pub async fn abandon(client: &mut Client) {
    if let Some(b) = client.blocked.as_ref() {
        b.waiter.claim();
    }
    finish(client).await;
}

/// CLIENT UNBLOCK: ends the wait of `waiter` (as a timeout, or with the
/// UNBLOCKED error); false if it was already decided.
pub fn unblock(waiter: &Waiter, error: bool) -> bool {
    if !waiter.claim() {
        return false;
    }
    waiter.finish(Wake::Unblocked { error });
    true
}

/// The shard's `on_ready` hook: serves the waiters of the keys that got
/// data, first come first served among those the data is for, until no
/// ready key is left (a served BLMOVE may make its destination ready in
/// turn).
pub fn serve_ready(core: &mut ShardCore) {
    loop {
        let ready = core.ks.take_ready();
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            serve_key(core, db, &key);
        }
    }
}

/// `key` no longer holds a stream: its group readers stop waiting, with
/// Redis's error (plain XREAD keeps waiting for a new stream).
fn end_group_reads(core: &mut ShardCore, db: usize, key: &Bytes) {
    while let Some(w) = core.blocked.first_where(&mut core.ks, db, key, |w| {
        matches!(w.op, BlockOp::XReadGroup { .. })
    }) {
        core.blocked
            .remove(&mut core.ks, db, std::slice::from_ref(key), &w);
        if w.claim() {
            w.finish(Wake::Served(Reply::error(
                "UNBLOCKED the stream key no longer exists",
            )));
        }
    }
}

fn serve_key(core: &mut ShardCore, db: usize, key: &Bytes) {
    if has_data(core, db, key) != Some(Awaits::Stream) {
        end_group_reads(core, db, key);
    }
    loop {
        let Some(kind) = has_data(core, db, key) else {
            return;
        };
        let holds = core
            .db(db)
            .get_ref(key, crate::node::unix_ms())
            .map(Holds::of);
        let Some(w) = core.blocked.first_where(&mut core.ks, db, key, |w| {
            w.op.awaits() == kind && w.op.ready_for(key, holds.as_ref())
        }) else {
            return;
        };
        if let BlockOp::Move { dest_shard, .. } = &w.op {
            if *dest_shard != core.id {
                // The element stays for this waiter: its client moves it,
                // and nobody behind it is served from this key meanwhile.
                w.reserve();
                w.nudge();
                return;
            }
        }
        if !w.claim() {
            continue;
        }
        core.blocked
            .remove(&mut core.ks, db, std::slice::from_ref(key), &w);
        let mut ctx = Ctx::new(core, db);
        let reply = match try_key(&mut ctx, key, &w.op, None) {
            Ok(Some(r)) => r,
            // Checked above; nothing to give after all.
            Ok(None) => Reply::NilArray,
            Err(e) => Reply::from(e),
        };
        w.finish(Wake::Served(reply));
    }
}
