//! The set commands that name several keys: SMOVE SINTER SUNION SDIFF
//! SINTERSTORE SUNIONSTORE SDIFFSTORE SINTERCARD. Each runs keyed when its
//! keys share a shard; otherwise (`Split::Coordinate`, or SINTERCARD, whose
//! keys the table cannot locate) it holds every involved shard (ascending
//! order, see `shard::hold`), copies the source sets to the coordinator and
//! writes the result on the destination's shard before releasing, so it
//! stays atomic.
//!
//! Propagation follows Redis 7.0: the *STORE commands go as they are (also
//! with an empty result, as Redis counts them dirty), except SINTERSTORE
//! over a missing key that had no destination to delete, which changed
//! nothing. Depends on `set` for the shared helpers.

use super::error::{CmdError, CmdResult};
use super::lookup::{source, write, write_set};
use super::set::{limits, members_reply};
use super::table::ClientCmd;
use super::{Client, Ctx};
use crate::keyspace::{Limits, SetValue, Value};
use crate::node::unix_ms;
use crate::notify::class;
use crate::resp::Reply;
use crate::shard::{self, route::shard_of};
use bytes::Bytes;

// ------------------------------------------------------------- SMOVE --

/// What a key holds, for SMOVE's checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Nothing,
    Set,
    Other,
}

/// A peek, not a write lookup: a key SMOVE leaves alone (a destination
/// that already has the member) must not count as touched for WATCH.
fn holds(ctx: &mut Ctx, key: &[u8]) -> Holds {
    let now = ctx.now_ms;
    match ctx.db().get_ref(key, now) {
        None => Holds::Nothing,
        Some(Value::Set(_)) => Holds::Set,
        Some(_) => Holds::Other,
    }
}

/// Removes `member` from the set at `key` (deleting an emptied key);
/// true if it was there.
fn take_member(ctx: &mut Ctx, key: &Bytes, member: &[u8]) -> bool {
    let Ok(Some(s)) = write_set(ctx, key) else {
        return false;
    };
    if !s.remove(member) {
        return false;
    }
    let emptied = s.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(1);
    ctx.notify_removal(class::SET, "srem", key, emptied);
    true
}

/// Adds `member` to the set at `key` (created if missing); true if new.
fn put_member(ctx: &mut Ctx, key: &Bytes, member: &[u8]) -> bool {
    let lim = limits();
    // A member already there changes nothing: no write lookup, so a WATCH
    // of the destination survives (Redis signals it only when added).
    let now = ctx.now_ms;
    if let Some(Value::Set(s)) = ctx.db().get_ref(key, now) {
        if s.contains(member) {
            return false;
        }
    }
    let added = match write_set(ctx, key) {
        Ok(Some(s)) => s.add(member, &lim),
        Ok(None) => {
            let mut s = SetValue::new_for(member);
            s.add(member, &lim);
            ctx.db().set(key.clone(), Value::Set(s), None);
            true
        }
        // Checked by the caller before anything changed.
        Err(_) => false,
    };
    if added {
        ctx.dirty(1);
        ctx.notify(class::SET, "sadd", key);
    }
    added
}

/// SMOVE source destination member, both keys on this shard.
pub(super) fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let from = holds(ctx, src);
    let to = holds(ctx, dst);
    match from {
        Holds::Nothing => return Ok(Reply::Int(0)),
        Holds::Other => return Err(CmdError::WrongType),
        Holds::Set => {}
    }
    if to == Holds::Other {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        // Redis answers from its write lookup: no keyspace hit counted.
        let now = ctx.now_ms;
        let found = matches!(ctx.db().get_ref(src, now), Some(Value::Set(s)) if s.contains(member));
        return Ok(Reply::Int(found as i64));
    }
    if !take_member(ctx, src, member) {
        return Ok(Reply::Int(0));
    }
    put_member(ctx, dst, member);
    Ok(Reply::Int(1))
}

// ---------------------------------------------------- SINTER and co. --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The operation and whether it stores, from the command name.
fn op_of(name: &[u8]) -> (Op, bool) {
    let name = name.to_ascii_lowercase();
    let op = match &name[..2.min(name.len())] {
        b"su" => Op::Union,
        b"sd" => Op::Diff,
        _ => Op::Inter,
    };
    (op, name.ends_with(b"store"))
}

/// Whether any of `sets` holds `m`.
fn in_any(sets: &[Option<&SetValue>], m: &[u8]) -> bool {
    sets.iter().flatten().any(|s| s.contains(m))
}

/// The result of `op` over `sets` (a missing key is an empty set), built
/// as Redis builds it: from an empty intset, member by member.
fn compute(op: Op, sets: &[Option<&SetValue>], lim: &Limits) -> SetValue {
    let mut out = SetValue::new_intset();
    match op {
        Op::Inter => {
            let mut present: Vec<&SetValue> = Vec::with_capacity(sets.len());
            for s in sets {
                match s {
                    Some(s) => present.push(s),
                    None => return out,
                }
            }
            present.sort_by_key(|s| s.len());
            let Some((smallest, rest)) = present.split_first() else {
                return out;
            };
            for m in smallest.iter() {
                let b = m.to_bytes();
                if rest.iter().all(|s| s.contains(&b)) {
                    out.add(&b, lim);
                }
            }
        }
        Op::Union => {
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    out.add(&m.to_bytes(), lim);
                }
            }
        }
        Op::Diff => {
            if let Some(Some(first)) = sets.first() {
                for m in first.iter() {
                    let b = m.to_bytes();
                    if !in_any(&sets[1..], &b) {
                        out.add(&b, lim);
                    }
                }
            }
        }
    }
    out
}

/// Size of the intersection of `sets`, counting up to `limit` (0: no
/// limit), for SINTERCARD.
fn inter_card(sets: &[Option<&SetValue>], limit: usize) -> usize {
    let mut present: Vec<&SetValue> = Vec::with_capacity(sets.len());
    for s in sets {
        match s {
            Some(s) => present.push(s),
            None => return 0,
        }
    }
    present.sort_by_key(|s| s.len());
    let Some((smallest, rest)) = present.split_first() else {
        return 0;
    };
    let mut n = 0;
    for m in smallest.iter() {
        let b = m.to_bytes();
        if rest.iter().all(|s| s.contains(&b)) {
            n += 1;
            if limit > 0 && n >= limit {
                break;
            }
        }
    }
    n
}

/// Looks up every key (lazy expiry, WRONGTYPE) with the given mode. A
/// store reads its sources as writes do: on a replica applying its
/// master's stream, a logically expired source still counts (the master
/// decides about expiry), as in Redis; but a source is not changed, so a
/// WATCH on it survives (`Lookup::Source`). Either way each lookup counts
/// as a read (a hit, or a miss announced as `keymiss`), as Redis's
/// lookupKeyRead.
fn check_sources(ctx: &mut Ctx, keys: &[Bytes], store: bool) -> Result<(), CmdError> {
    let mut wrong = false;
    for k in keys {
        let v = if store {
            source(ctx, k)
        } else {
            super::lookup::read(ctx, k)
        };
        let found = v.is_some();
        wrong |= matches!(v, Some(v) if !matches!(v, Value::Set(_)));
        if store {
            ctx.count_read(k, found);
        }
    }
    if wrong {
        return Err(CmdError::WrongType);
    }
    Ok(())
}

/// The sets at `keys` after [`check_sources`], borrowed from the shard.
fn sources<'a>(ctx: &'a Ctx, keys: &[Bytes], store: bool) -> Vec<Option<&'a SetValue>> {
    // After the lookups above a master has deleted expired keys; a replica
    // hides them from reads only (now), not from stores (0: never expired).
    let now = if store { 0 } else { ctx.now_ms };
    let db = ctx.core.db(ctx.db);
    keys.iter()
        .map(|k| match db.get_ref(k, now) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Writes a *STORE result: replaces the destination (its TTL goes too) or
/// deletes it for an empty result. Returns whether a destination existed.
fn store_result(ctx: &mut Ctx, dest: &Bytes, result: SetValue, op: Op) -> bool {
    let existed = write(ctx, dest).is_some();
    if result.is_empty() {
        if existed {
            ctx.db().remove(dest);
            ctx.notify(class::GENERIC, "del", dest);
        }
    } else {
        ctx.db().set(dest.clone(), Value::Set(result), None);
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.notify(class::SET, event, dest);
    }
    existed
}

/// Whether a *STORE changed the dataset, Redis's way: always, except an
/// intersection with a missing key that had nothing to delete.
fn store_changed(op: Op, any_missing: bool, existed: bool) -> bool {
    !(op == Op::Inter && any_missing && !existed)
}

/// SINTER/SUNION/SDIFF[STORE] with every key on this shard.
pub(super) fn setop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (op, store) = op_of(&args[0]);
    let keys = if store { &args[2..] } else { &args[1..] };
    check_sources(ctx, keys, store)?;
    let lim = limits();
    let sets = sources(ctx, keys, store);
    let result = compute(op, &sets, &lim);
    if !store {
        return Ok(Reply::Set(members_reply(result.iter())));
    }
    let any_missing = sets.iter().any(Option::is_none);
    let n = result.len();
    let existed = store_result(ctx, &args[1], result, op);
    if store_changed(op, any_missing, existed) {
        ctx.dirty(1);
    }
    Ok(Reply::Int(n as i64))
}

/// SINTERCARD's parsed arguments: where the keys are and the limit.
struct CardArgs {
    keys: std::ops::Range<usize>,
    limit: usize,
}

fn card_args(args: &[Bytes]) -> Result<CardArgs, CmdError> {
    let numkeys = super::args::parse_i64_strict(&args[1])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::other("ERR numkeys should be greater than 0"))?;
    if numkeys > args.len() as i64 - 2 {
        return Err(CmdError::other(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0;
    let mut i = end;
    while i < args.len() {
        if super::args::is(&args[i], "limit") && i + 1 < args.len() {
            limit = super::args::parse_i64_strict(&args[i + 1])
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::other("ERR LIMIT can't be negative"))?
                as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(CardArgs {
        keys: 2..end,
        limit,
    })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit], every key on this shard.
fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = card_args(args)?;
    let keys = &args[a.keys];
    check_sources(ctx, keys, false)?;
    let sets = sources(ctx, keys, false);
    Ok(Reply::Int(inter_card(&sets, a.limit) as i64))
}

// ------------------------------------------------- across shards --

/// The multi-key set commands whose keys span shards (and SINTERCARD,
/// whose keys the table cannot locate).
pub async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Smove => smove_across(client, args).await,
        ClientCmd::Sintercard => sintercard_client(client, args).await,
        _ => setop_across(client, args).await,
    }
}

/// Runs `f` on a held shard with a command context for `db`.
async fn on<R, F>(guard: &shard::HoldGuard, s: usize, db: usize, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
{
    guard
        .run(s, move |core| {
            let mut ctx = Ctx::new(core, db);
            f(&mut ctx)
        })
        .await
}

async fn smove_across(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let db = client.db;
    let n = client.shard.shards();
    let (src, dst, member) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (s1, s2) = (shard_of(&src, n), shard_of(&dst, n));
    let guard = shard::hold(&[s1, s2]).await;
    let k = src.clone();
    let from = on(&guard, s1, db, move |ctx| holds(ctx, &k)).await;
    let k = dst.clone();
    let to = on(&guard, s2, db, move |ctx| holds(ctx, &k)).await;
    match from {
        Holds::Nothing => return Ok(Reply::Int(0)),
        Holds::Other => return Err(CmdError::WrongType),
        Holds::Set => {}
    }
    if to == Holds::Other {
        return Err(CmdError::WrongType);
    }
    let m = member.clone();
    if !on(&guard, s1, db, move |ctx| take_member(ctx, &src, &m)).await {
        return Ok(Reply::Int(0));
    }
    on(&guard, s2, db, move |ctx| put_member(ctx, &dst, &member)).await;
    super::propagate(client, db, args);
    drop(guard);
    Ok(Reply::Int(1))
}

/// Copies of the sets at `keys` (by index), from the shards holding them;
/// WRONGTYPE if any key holds something else.
async fn fetch(
    guard: &shard::HoldGuard,
    db: usize,
    keys: &[Bytes],
    store: bool,
) -> Result<Vec<Option<SetValue>>, CmdError> {
    super::across::read_keys(guard, db, keys, move |ctx, k| {
        let one = std::slice::from_ref(k);
        check_sources(ctx, one, store)?;
        Ok(sources(ctx, one, store)[0].cloned())
    })
    .await
    .into_iter()
    .collect()
}

async fn setop_across(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let db = client.db;
    let n = client.shard.shards();
    let (op, store) = op_of(&args[0]);
    let keys: Vec<Bytes> = if store { &args[2..] } else { &args[1..] }.to_vec();
    let mut involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    if store {
        involved.push(shard_of(&args[1], n));
    }
    let guard = shard::hold(&involved).await;
    let owned = fetch(&guard, db, &keys, store).await?;
    let sets: Vec<Option<&SetValue>> = owned.iter().map(Option::as_ref).collect();
    let result = compute(op, &sets, &limits());
    if !store {
        return Ok(Reply::Set(members_reply(result.iter())));
    }
    let len = result.len();
    let dest = args[1].clone();
    let any_missing = sets.iter().any(Option::is_none);
    let existed = on(&guard, shard_of(&dest, n), db, move |ctx| {
        store_result(ctx, &dest, result, op)
    })
    .await;
    if store_changed(op, any_missing, existed) {
        client.shard.with_core(|core| core.stats.dirty += 1);
        super::propagate(client, db, args);
    }
    drop(guard);
    Ok(Reply::Int(len as i64))
}

async fn sintercard_client(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let a = card_args(args)?;
    let db = client.db;
    let n = client.shard.shards();
    let keys: Vec<Bytes> = args[a.keys.clone()].to_vec();
    let mut involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    involved.sort_unstable();
    involved.dedup();
    if let [only] = involved[..] {
        let args = args.to_vec();
        return Ok(shard::run_on(only, move |core| {
            super::run_and_propagate(core, sintercard, db, &args, false, false, unix_ms())
        })
        .await);
    }
    let guard = shard::hold(&involved).await;
    let owned = fetch(&guard, db, &keys, false).await?;
    drop(guard);
    let sets: Vec<Option<&SetValue>> = owned.iter().map(Option::as_ref).collect();
    Ok(Reply::Int(inter_card(&sets, a.limit) as i64))
}
