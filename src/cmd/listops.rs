//! The list commands that name several keys: LMOVE RPOPLPUSH LMPOP, and
//! the pop/move steps the blocking commands share with them.
//!
//! LMOVE/RPOPLPUSH run keyed when both keys share a shard; otherwise
//! (`Split::Coordinate`) they hold both shards (ascending order, see
//! `shard::hold`), pop on one, push on the other and propagate the command
//! once before releasing, so the move is atomic for every observer and for
//! replicas. LMPOP walks its keys in argument order under a hold of their
//! shards and pops from the first non-empty list; like Redis 7.0 it is
//! propagated as `LPOP|RPOP key <popped>`. Depends on `list` for the
//! element-level helpers.

use super::error::{CmdError, CmdResult};
use super::list::{notify_pop, pop_elems, push_elems, push_event, take_elems};
use super::lookup::write;
use super::table::ClientCmd;
use super::{Client, Ctx};
use crate::keyspace::{End, Value};
use crate::notify::class;
use crate::resp::Reply;
use crate::shard::{self, route::shard_of};
use bytes::Bytes;

/// What a key holds, for checks before a move.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Nothing,
    List,
    Other,
}

fn holds(ctx: &mut Ctx, key: &[u8]) -> Holds {
    match write(ctx, key) {
        None => Holds::Nothing,
        Some(Value::List(_)) => Holds::List,
        Some(_) => Holds::Other,
    }
}

/// The ends of LMOVE/BLMOVE (`wherefrom wherento` at `at`) or RPOPLPUSH's
/// fixed RIGHT LEFT.
pub(super) fn move_ends(args: &[Bytes], at: usize) -> Result<(End, End), CmdError> {
    if args.len() < at + 2 {
        return Ok((End::Right, End::Left));
    }
    let from = End::parse(&args[at]).ok_or(CmdError::Syntax)?;
    let to = End::parse(&args[at + 1]).ok_or(CmdError::Syntax)?;
    Ok((from, to))
}

/// Moves one element from `src` to `dst`, both on this shard: `None` when
/// `src` is missing; WRONGTYPE (changing nothing) when either key holds
/// something else.
pub(super) fn move_local(
    ctx: &mut Ctx,
    src: &Bytes,
    dst: &Bytes,
    from: End,
    to: End,
) -> Result<Option<Bytes>, CmdError> {
    match holds(ctx, src) {
        Holds::Nothing => return Ok(None),
        Holds::Other => return Err(CmdError::WrongType),
        Holds::List => {}
    }
    if holds(ctx, dst) == Holds::Other {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        let Some(Value::List(l)) = write(ctx, src) else {
            return Ok(None);
        };
        let Some(v) = l.pop(from) else {
            return Ok(None);
        };
        l.push(to, &v, super::list::fill());
        ctx.dirty(1);
        // Redis's order: the push's event, then the pop's.
        ctx.notify(class::LIST, push_event(to), src);
        notify_pop(ctx, src, from, false);
        return Ok(Some(v));
    }
    let Some((mut popped, emptied)) = take_elems(ctx, src, from, 1)? else {
        return Ok(None);
    };
    let Some(v) = popped.pop() else {
        return Ok(None);
    };
    push_elems(ctx, dst, to, std::slice::from_ref(&v), false)?;
    notify_pop(ctx, src, from, emptied);
    Ok(Some(v))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT, RPOPLPUSH source
/// destination: both keys on this shard.
pub(super) fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = move_ends(args, 3)?;
    Ok(move_local(ctx, &args[1], &args[2], from, to)?.map_or(Reply::Nil, Reply::Bulk))
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

/// Runs on the source shard in the job that pops a served cross-shard
/// BLMOVE's element (its waiter leaves the queue there).
pub(super) type Leave = Box<dyn FnOnce(&mut crate::shard::ShardCore) + Send>;

/// A move whose keys are on different shards: holds both, moves, and
/// propagates `prop` before releasing. Same results as [`move_local`].
/// `leave` runs on the source shard right after a successful pop.
pub(super) async fn move_across(
    client: &Client,
    db: usize,
    src: Bytes,
    dst: Bytes,
    (from, to): (End, End),
    prop: Vec<Bytes>,
    leave: Option<Leave>,
) -> Result<Option<Bytes>, CmdError> {
    let n = client.shard.shards();
    let (s1, s2) = (shard_of(&src, n), shard_of(&dst, n));
    let guard = shard::hold(&[s1, s2]).await;
    let k = src.clone();
    match on(&guard, s1, db, move |ctx| holds(ctx, &k)).await {
        Holds::Nothing => return Ok(None),
        Holds::Other => return Err(CmdError::WrongType),
        Holds::List => {}
    }
    let k = dst.clone();
    if on(&guard, s2, db, move |ctx| holds(ctx, &k)).await == Holds::Other {
        return Err(CmdError::WrongType);
    }
    let k = src.clone();
    let popped = on(&guard, s1, db, move |ctx| {
        let got = take_elems(ctx, &k, from, 1)
            .map(|p| p.and_then(|(mut p, emptied)| Some((p.pop()?, emptied))));
        if let (Ok(Some(_)), Some(leave)) = (&got, leave) {
            leave(ctx.core);
        }
        got
    })
    .await?;
    let Some((v, emptied)) = popped else {
        return Ok(None);
    };
    let e = v.clone();
    on(&guard, s2, db, move |ctx| {
        push_elems(ctx, &dst, to, std::slice::from_ref(&e), false)
    })
    .await?;
    // Redis's order: the push's event, then the pop's.
    if crate::notify::wants(class::LIST | class::GENERIC) {
        on(&guard, s1, db, move |ctx| {
            notify_pop(ctx, &src, from, emptied)
        })
        .await;
    }
    super::propagate(client, db, &prop);
    drop(guard);
    Ok(Some(v))
}

/// The list commands a connection coordinates.
pub async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Lmove => {
            let ends = move_ends(args, 3)?;
            let db = client.db;
            let got = move_across(
                client,
                db,
                args[1].clone(),
                args[2].clone(),
                ends,
                args.to_vec(),
                None,
            )
            .await?;
            Ok(got.map_or(Reply::Nil, Reply::Bulk))
        }
        _ => {
            let a = mpop_args(args, 1)?;
            let db = client.db;
            let keys = args[a.keys.clone()].to_vec();
            Ok(match mpop(client, db, &keys, a.end, a.count).await? {
                Some((key, elems)) => mpop_reply(key, elems),
                None => Reply::NilArray,
            })
        }
    }
}

/// LMPOP / BLMPOP arguments after the command name (and timeout).
pub(super) struct MpopArgs {
    pub keys: std::ops::Range<usize>,
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT count]` with `numkeys` at
/// `at`, in Redis's order and with its errors.
pub(super) fn mpop_args(args: &[Bytes], at: usize) -> Result<MpopArgs, CmdError> {
    let numkeys = super::args::parse_i64_strict(&args[at])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::other("ERR numkeys should be greater than 0"))?;
    let where_at = (at as i64)
        .checked_add(numkeys)
        .and_then(|w| w.checked_add(1))
        .filter(|&w| w < args.len() as i64)
        .ok_or(CmdError::Syntax)? as usize;
    let end = End::parse(&args[where_at]).ok_or(CmdError::Syntax)?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && super::args::is(&args[j], "count") && j + 1 < args.len() {
            j += 1;
            count = Some(
                super::args::parse_i64_strict(&args[j])
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| CmdError::other("ERR count should be greater than 0"))?
                    as usize,
            );
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: at + 1..where_at,
        end,
        count: count.unwrap_or(1),
    })
}

/// LMPOP's reply: the key and the popped elements.
pub(super) fn mpop_reply(key: Bytes, elems: Vec<Bytes>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(key),
        Reply::Array(elems.into_iter().map(Reply::Bulk).collect()),
    ])
}

/// What Redis 7.0 propagates for a pop of `n` elements from `end` of
/// `key` by LMPOP/BLMPOP (`Some(n)`) or BLPOP/BRPOP (`None`).
pub(super) fn pop_command(end: End, key: &Bytes, n: Option<usize>) -> Vec<Bytes> {
    let name = match end {
        End::Left => "LPOP",
        End::Right => "RPOP",
    };
    let mut v = vec![Bytes::from_static(name.as_bytes()), key.clone()];
    if let Some(n) = n {
        v.push(Bytes::from(n.to_string()));
    }
    v
}

/// Pops from the first non-empty list of `key` on this shard, with the
/// propagation of `pop_command(end, key, n)` (`as_mpop`: with the count).
/// `Ok(None)` for a missing key.
pub(super) fn pop_and_propagate(
    ctx: &mut Ctx,
    key: &Bytes,
    end: End,
    count: usize,
    as_mpop: bool,
) -> Result<Option<Vec<Bytes>>, CmdError> {
    let Some(popped) = pop_elems(ctx, key, end, count)? else {
        return Ok(None);
    };
    if popped.is_empty() {
        return Ok(None);
    }
    let cmd = pop_command(end, key, as_mpop.then_some(popped.len()));
    let db = ctx.db;
    crate::propagate::write(ctx.core, db, &[], Some(&[cmd]));
    Ok(Some(popped))
}

/// Holds the shards of `keys` and pops from the first one (in argument
/// order) holding a list; WRONGTYPE when a key before it holds something
/// else. Propagates the pop before releasing.
pub(super) async fn mpop(
    client: &Client,
    db: usize,
    keys: &[Bytes],
    end: End,
    count: usize,
) -> Result<Option<(Bytes, Vec<Bytes>)>, CmdError> {
    let n = client.shard.shards();
    let involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    let guard = shard::hold(&involved).await;
    for (key, &s) in keys.iter().zip(&involved) {
        let k = key.clone();
        let got = on(&guard, s, db, move |ctx| {
            pop_and_propagate(ctx, &k, end, count, true)
        })
        .await?;
        if let Some(elems) = got {
            drop(guard);
            return Ok(Some((key.clone(), elems)));
        }
    }
    Ok(None)
}
