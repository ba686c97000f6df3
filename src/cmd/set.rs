//! Set commands: the table rows of the whole family, and SADD SREM SCARD
//! SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SPOP SSCAN, which run on the
//! key's shard. The commands naming several keys (SMOVE, SINTER and co.)
//! live in `setops`.
//!
//! Propagation follows Redis 7.0: SPOP becomes `SREM key member...` (in
//! batches of 1024 members) or `DEL key` when it took everything.

use super::args::{int_arg, scan_args, scan_cursor};
use super::error::{CmdError, CmdResult};
use super::hash::{distinct_sample, rng, scan_reply};
use super::lookup::{read_set, write_set};
use super::setops::{setop, smove};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::{Limits, Member, SetValue, Value};
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Set as S;
    let k1 = (1, 1, 1);
    let keyed = |f| Run::Keyed(f, Split::None);
    let coordinated = |f, cmd| Run::Keyed(f, Split::Coordinate(cmd));
    vec![
        spec(
            "sadd",
            -3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Add one or more members to a set",
            keyed(sadd),
        ),
        spec(
            "srem",
            -3,
            WRITE | FAST,
            k1,
            S,
            "1.0.0",
            "Remove one or more members from a set",
            keyed(srem),
        ),
        spec(
            "scard",
            2,
            READONLY | FAST,
            k1,
            S,
            "1.0.0",
            "Get the number of members in a set",
            keyed(scard),
        ),
        spec(
            "sismember",
            3,
            READONLY | FAST,
            k1,
            S,
            "1.0.0",
            "Determine if a given value is a member of a set",
            keyed(sismember),
        ),
        spec(
            "smismember",
            -3,
            READONLY | FAST,
            k1,
            S,
            "6.2.0",
            "Returns the membership associated with the given elements for a set",
            keyed(smismember),
        ),
        spec(
            "smembers",
            2,
            READONLY,
            k1,
            S,
            "1.0.0",
            "Get all the members in a set",
            keyed(smembers),
        ),
        spec(
            "srandmember",
            -2,
            READONLY,
            k1,
            S,
            "1.0.0",
            "Get one or multiple random members from a set",
            keyed(srandmember),
        ),
        spec(
            "spop",
            -2,
            WRITE | FAST,
            k1,
            S,
            "1.0.0",
            "Remove and return one or multiple random members from a set",
            keyed(spop),
        ),
        spec(
            "sscan",
            -3,
            READONLY,
            k1,
            S,
            "2.8.0",
            "Incrementally iterate Set elements",
            keyed(sscan),
        ),
        spec(
            "smove",
            4,
            WRITE | FAST,
            (1, 2, 1),
            S,
            "1.0.0",
            "Move a member from one set to another",
            coordinated(smove, ClientCmd::Smove),
        ),
        spec(
            "sinter",
            -2,
            READONLY,
            (1, -1, 1),
            S,
            "1.0.0",
            "Intersect multiple sets",
            coordinated(setop, ClientCmd::Sinter),
        ),
        spec(
            "sunion",
            -2,
            READONLY,
            (1, -1, 1),
            S,
            "1.0.0",
            "Add multiple sets",
            coordinated(setop, ClientCmd::Sunion),
        ),
        spec(
            "sdiff",
            -2,
            READONLY,
            (1, -1, 1),
            S,
            "1.0.0",
            "Subtract multiple sets",
            coordinated(setop, ClientCmd::Sdiff),
        ),
        spec(
            "sinterstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            S,
            "1.0.0",
            "Intersect multiple sets and store the resulting set in a key",
            coordinated(setop, ClientCmd::Sinterstore),
        ),
        spec(
            "sunionstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            S,
            "1.0.0",
            "Add multiple sets and store the resulting set in a key",
            coordinated(setop, ClientCmd::Sunionstore),
        ),
        spec(
            "sdiffstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            S,
            "1.0.0",
            "Subtract multiple sets and store the resulting set in a key",
            coordinated(setop, ClientCmd::Sdiffstore),
        ),
        // Keys come after numkeys: no fixed positions (Redis: movablekeys).
        spec(
            "sintercard",
            -3,
            READONLY | MOVABLE_KEYS,
            (0, 0, 0),
            S,
            "7.0.0",
            "Intersect multiple sets and return the cardinality of the result",
            Run::Client(ClientCmd::Sintercard),
        ),
    ]
}

pub(super) fn limits() -> Limits {
    crate::node::encoding_limits()
}

pub(super) fn members_reply<'a>(members: impl Iterator<Item = Member<'a>>) -> Vec<Reply> {
    members.map(|m| Reply::Bulk(m.to_bytes())).collect()
}

/// SADD key member [member ...]
fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lim = limits();
    let key = &args[1];
    let members = &args[2..];
    let added = match write_set(ctx, key)? {
        Some(s) => members.iter().filter(|m| s.add(m, &lim)).count(),
        None => {
            let mut s = SetValue::new_for(&members[0]);
            let n = members.iter().filter(|m| s.add(m, &lim)).count();
            ctx.db().set(key.clone(), Value::Set(s), None);
            n
        }
    };
    ctx.dirty(added as u64);
    if added > 0 {
        ctx.notify(class::SET, "sadd", key);
    }
    Ok(Reply::Int(added as i64))
}

/// SREM key member [member ...]
fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(s) = write_set(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0u64;
    for m in &args[2..] {
        if s.remove(m) {
            removed += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    let emptied = s.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(removed);
    if removed > 0 {
        ctx.notify_removal(class::SET, "srem", key, emptied);
    }
    Ok(Reply::Int(removed as i64))
}

/// SCARD key
fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_set(ctx, &args[1])?.map_or(0, |s| s.len()) as i64
    ))
}

/// SISMEMBER key member
fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = read_set(ctx, &args[1])?.is_some_and(|s| s.contains(&args[2]));
    Ok(Reply::Int(found as i64))
}

/// SMISMEMBER key member [member ...]
fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = read_set(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64))
            .collect(),
    ))
}

/// SMEMBERS key (a set in RESP3)
fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = read_set(ctx, &args[1])?;
    Ok(Reply::Set(
        s.map_or_else(Vec::new, |s| members_reply(s.iter())),
    ))
}

/// Most elements reserved up front for a random-pick reply.
const PREALLOC: usize = 1 << 16;

/// SRANDMEMBER key [count]
fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let mut rng = rng();
    if args.len() == 2 {
        return Ok(read_set(ctx, &args[1])?
            .and_then(|s| s.random(&mut rng))
            .map_or(Reply::Nil, |m| Reply::Bulk(m.to_bytes())));
    }
    let l = int_arg(&args[2])?;
    if l == i64::MIN {
        return Err(CmdError::other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let Some(s) = read_set(ctx, &args[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    if l == 0 {
        return Ok(Reply::Array(vec![]));
    }
    if l < 0 {
        let n = l.unsigned_abs() as usize;
        let mut out = Vec::with_capacity(n.min(PREALLOC));
        for _ in 0..n {
            if let Some(m) = s.random(&mut rng) {
                out.push(Reply::Bulk(m.to_bytes()));
            }
        }
        return Ok(Reply::Array(out));
    }
    let count = l as usize;
    if count >= s.len() {
        return Ok(Reply::Array(members_reply(s.iter())));
    }
    let picks = distinct_sample(
        s.len(),
        count,
        &mut rng,
        || s.iter().map(|m| m.to_bytes()).collect(),
        |r| s.random(r).map(|m| m.to_bytes()).unwrap_or_default(),
        |b| b.as_ref(),
    );
    Ok(Reply::Array(picks.into_iter().map(Reply::Bulk).collect()))
}

/// Members per propagated SREM when SPOP takes several.
const SREM_BATCH: usize = 1024;
/// SPOP with a count rebuilds the set from the members that stay once
/// they are at most 1/5 of those that go (Redis's SPOP_MOVE_STRATEGY_MUL).
const SPOP_KEEP_MUL: usize = 5;

/// SPOP key [count]
fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let key = &args[1];
    let mut rng = rng();
    if args.len() == 2 {
        let Some(s) = write_set(ctx, key)? else {
            return Ok(Reply::Nil);
        };
        let Some(m) = s.pop_random(&mut rng) else {
            return Ok(Reply::Nil);
        };
        let emptied = s.is_empty();
        if emptied {
            ctx.db().remove(key);
        }
        ctx.dirty(1);
        ctx.notify_removal(class::SET, "spop", key, emptied);
        ctx.propagate_as(vec![vec![
            Bytes::from_static(b"SREM"),
            key.clone(),
            m.clone(),
        ]]);
        return Ok(Reply::Bulk(m));
    }
    // Redis answers both a non-integer and a negative count this way.
    let l = super::args::parse_i64_strict(&args[2])
        .filter(|&l| l >= 0)
        .ok_or_else(|| CmdError::other("ERR value is out of range, must be positive"))?;
    let count = l as usize;
    let Some(s) = write_set(ctx, key)? else {
        return Ok(Reply::Set(vec![]));
    };
    if count == 0 {
        return Ok(Reply::Set(vec![]));
    }
    if count >= s.len() {
        let all: Vec<Reply> = members_reply(s.iter());
        // Redis answers this case with SUNION's code, whose read lookup
        // counts a keyspace hit (SPOP's own write lookup counts none).
        ctx.count_read(key, true);
        ctx.db().remove(key);
        ctx.dirty(count as u64 + 1);
        ctx.notify_removal(class::SET, "spop", key, true);
        ctx.propagate_as(vec![vec![Bytes::from_static(b"DEL"), key.clone()]]);
        return Ok(Reply::Set(all));
    }
    let keep = s.len() - count;
    let popped = if keep * SPOP_KEEP_MUL <= count {
        // Most of the set goes: draw the few members that stay into a new
        // set and hand out the old one, as Redis does. The new set is
        // encoded as SADDs of the kept members would encode it, so a
        // hashtable of integers can come back as an intset.
        let mut kept = Vec::with_capacity(keep);
        for _ in 0..keep {
            kept.extend(s.pop_random(&mut rng));
        }
        let rebuilt = SetValue::from_members(kept.iter().map(|m| &m[..]), keep, &limits());
        let old = std::mem::replace(s, rebuilt);
        old.iter().map(|m| m.to_bytes()).collect()
    } else {
        let mut popped = Vec::with_capacity(count);
        for _ in 0..count {
            popped.extend(s.pop_random(&mut rng));
        }
        popped
    };
    ctx.dirty(count as u64 + 1);
    ctx.notify(class::SET, "spop", key);
    let srems = popped
        .chunks(SREM_BATCH)
        .map(|batch| {
            let mut cmd = Vec::with_capacity(batch.len() + 2);
            cmd.push(Bytes::from_static(b"SREM"));
            cmd.push(key.clone());
            cmd.extend(batch.iter().cloned());
            cmd
        })
        .collect();
    ctx.propagate_as(srems);
    Ok(Reply::Set(popped.into_iter().map(Reply::Bulk).collect()))
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis's order: the cursor, then the key (missing or of another
    // type), then the options.
    let cursor = scan_cursor(&args[2])?;
    let Some(s) = read_set(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = scan_args(cursor, &args[3..])?;
    let mut items = Vec::new();
    let next = s.scan(opts.cursor, opts.count, |m| {
        let b = m.to_bytes();
        if opts.matches(&b) {
            items.push(Reply::Bulk(b));
        }
    });
    Ok(scan_reply(next, items))
}
