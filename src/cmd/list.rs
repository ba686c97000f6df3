//! List commands on one key: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN
//! LRANGE LINDEX LSET LINSERT LREM LTRIM LPOS, with Redis 7.0's replies,
//! errors and argument checking order. The multi-key ones (LMOVE,
//! RPOPLPUSH, LMPOP) are in `listops.rs`, the blocking ones in
//! `blocking.rs`; the table rows of all of them are here.
//!
//! Every handler runs on the shard owning its key and changes the list in
//! place through a write lookup (so a running snapshot saves the cut
//! version first). An emptied list is deleted. A list created by a push
//! wakes the clients blocked on its key (the database marks it ready).

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::lookup::{read_list, write_list};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::{End, Fill, ListValue, Value};
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::List as L;
    let k1 = (1, 1, 1);
    let keyed = |f| Run::Keyed(f, Split::None);
    let c = Run::Client;
    let mut v = vec![
        spec("lpush", -3, WRITE | DENYOOM | FAST, k1, L, "1.0.0", "Prepend one or multiple elements to a list", keyed(lpush)),
        spec("rpush", -3, WRITE | DENYOOM | FAST, k1, L, "1.0.0", "Append one or multiple elements to a list", keyed(rpush)),
        spec("lpushx", -3, WRITE | DENYOOM | FAST, k1, L, "2.2.0", "Prepend an element to a list, only if the list exists", keyed(lpushx)),
        spec("rpushx", -3, WRITE | DENYOOM | FAST, k1, L, "2.2.0", "Append an element to a list, only if the list exists", keyed(rpushx)),
        spec("lpop", -2, WRITE | FAST, k1, L, "1.0.0", "Remove and get the first elements in a list", keyed(lpop)),
        spec("rpop", -2, WRITE | FAST, k1, L, "1.0.0", "Remove and get the last elements in a list", keyed(rpop)),
        spec("llen", 2, READONLY | FAST, k1, L, "1.0.0", "Get the length of a list", keyed(llen)),
        spec("lrange", 4, READONLY, k1, L, "1.0.0", "Get a range of elements from a list", keyed(lrange)),
        spec("lindex", 3, READONLY, k1, L, "1.0.0", "Get an element from a list by its index", keyed(lindex)),
        spec("lset", 4, WRITE | DENYOOM, k1, L, "1.0.0", "Set the value of an element in a list by its index", keyed(lset)),
        spec("linsert", 5, WRITE | DENYOOM, k1, L, "2.2.0", "Insert an element before or after another element in a list", keyed(linsert)),
        spec("lrem", 4, WRITE, k1, L, "1.0.0", "Remove elements from a list", keyed(lrem)),
        spec("ltrim", 4, WRITE, k1, L, "1.0.0", "Trim a list to the specified range", keyed(ltrim)),
        spec("lpos", -3, READONLY, k1, L, "6.0.6", "Return the index of matching elements on a list", keyed(lpos)),
        spec("lmove", 5, WRITE | DENYOOM, (1, 2, 1), L, "6.2.0", "Pop an element from a list, push it to another list and return it", Run::Keyed(super::listops::lmove, Split::Coordinate(ClientCmd::Lmove))),
        spec("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), L, "1.2.0", "Remove the last element in a list, prepend it to another list and return it", Run::Keyed(super::listops::lmove, Split::Coordinate(ClientCmd::Lmove))),
        spec("lmpop", -4, WRITE | MOVABLE_KEYS, (0, 0, 0), L, "7.0.0", "Pop elements from a list", c(ClientCmd::Lmpop)),
        spec("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), L, "2.0.0", "Remove and get the first element in a list, or block until one is available", c(ClientCmd::Blocking)),
        spec("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), L, "2.0.0", "Remove and get the last element in a list, or block until one is available", c(ClientCmd::Blocking)),
        spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), L, "6.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", c(ClientCmd::Blocking)),
        spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), L, "2.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", c(ClientCmd::Blocking)),
        spec("blmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), L, "7.0.0", "Pop elements from a list, or block until one is available", c(ClientCmd::Blocking)),
    ];
    v.shrink_to_fit();
    v
}

/// The node limit for new elements (`list-max-listpack-size`).
pub(super) fn fill() -> Fill {
    crate::node::list_fill()
}

pub(super) fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

/// Pushes `elems` at `end` of the list at `key` (created if missing unless
/// `only_existing`); returns the new length (0: nothing done).
pub(super) fn push_elems(
    ctx: &mut Ctx,
    key: &Bytes,
    end: End,
    elems: &[Bytes],
    only_existing: bool,
) -> Result<usize, CmdError> {
    let fill = fill();
    let len = match write_list(ctx, key)? {
        Some(l) => {
            for e in elems {
                l.push(end, e, fill);
            }
            l.len()
        }
        None if only_existing => return Ok(0),
        None => {
            let mut l = ListValue::new();
            for e in elems {
                l.push(end, e, fill);
            }
            let n = l.len();
            ctx.db().set(key.clone(), Value::List(Box::new(l)), None);
            n
        }
    };
    ctx.dirty(elems.len() as u64);
    ctx.notify(class::LIST, push_event(end), key);
    Ok(len)
}

/// The notification of a push at `end`.
pub(super) fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// The notifications of a pop at `end`: the pop, then `del` when it
/// emptied the list.
pub(super) fn notify_pop(ctx: &mut Ctx, key: &[u8], end: End, emptied: bool) {
    let event = match end {
        End::Left => "lpop",
        End::Right => "rpop",
    };
    ctx.notify_removal(class::LIST, event, key, emptied);
}

/// Pops up to `count` elements from `end` of the list at `key`, deleting
/// it when emptied. `None` for a missing key.
pub(super) fn pop_elems(
    ctx: &mut Ctx,
    key: &Bytes,
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, CmdError> {
    let Some((out, emptied)) = take_elems(ctx, key, end, count)? else {
        return Ok(None);
    };
    if !out.is_empty() {
        notify_pop(ctx, key, end, emptied);
    }
    Ok(Some(out))
}

/// [`pop_elems`] without notifications (a move publishes them in its own
/// order); also says whether the list was emptied and deleted.
pub(super) fn take_elems(
    ctx: &mut Ctx,
    key: &Bytes,
    end: End,
    count: usize,
) -> Result<Option<(Vec<Bytes>, bool)>, CmdError> {
    let Some(l) = write_list(ctx, key)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(count.min(l.len()));
    while out.len() < count {
        match l.pop(end) {
            Some(e) => out.push(e),
            None => break,
        }
    }
    let emptied = l.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(out.len() as u64);
    Ok(Some((out, emptied)))
}

fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_elems(ctx, &args[1], End::Left, &args[2..], false)?;
    Ok(Reply::Int(n as i64))
}

fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_elems(ctx, &args[1], End::Right, &args[2..], false)?;
    Ok(Reply::Int(n as i64))
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_elems(ctx, &args[1], End::Left, &args[2..], true)?;
    Ok(Reply::Int(n as i64))
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_elems(ctx, &args[1], End::Right, &args[2..], true)?;
    Ok(Reply::Int(n as i64))
}

/// Redis's getPositiveLongFromObjectOrReply: any failure is `msg`.
pub(super) fn positive(arg: &[u8], msg: &str) -> Result<i64, CmdError> {
    super::args::parse_i64_strict(arg)
        .filter(|&n| n >= 0)
        .ok_or_else(|| CmdError::other(format!("ERR {msg}")))
}

/// LPOP / RPOP key [count]
fn pop(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::other(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&args[0]).to_lowercase()
        )));
    }
    let count = match args.get(2) {
        Some(a) => Some(positive(a, "value is out of range, must be positive")?),
        None => None,
    };
    let key = &args[1];
    match (read_or_write_list_exists(ctx, key)?, count) {
        (false, None) => return Ok(Reply::Nil),
        (false, Some(_)) => return Ok(Reply::NilArray),
        (true, Some(0)) => return Ok(Reply::Array(Vec::new())),
        _ => {}
    }
    let popped = pop_elems(ctx, key, end, count.unwrap_or(1) as usize)?.unwrap_or_default();
    Ok(match count {
        None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
    })
}

/// Whether `key` holds a list (WRONGTYPE for another type), through a
/// write lookup as Redis's pops do.
fn read_or_write_list_exists(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    Ok(write_list(ctx, key)?.is_some())
}

fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Left)
}

fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Right)
}

fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_list(ctx, &args[1])?.map_or(0, |l| l.len()) as i64
    ))
}

/// LRANGE key start stop
fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let stop = int_arg(&args[3])?;
    let Some(l) = read_list(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let len = l.len() as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return Ok(Reply::Array(Vec::new()));
    }
    if stop >= len {
        stop = len - 1;
    }
    let n = (stop - start + 1) as usize;
    Ok(Reply::Array(
        l.iter_from(start as usize).take(n).map(bulk).collect(),
    ))
}

/// LINDEX key index (the key is looked up before the index is parsed).
fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(l) = read_list(ctx, &args[1])? else {
        return Ok(Reply::Nil);
    };
    let i = int_arg(&args[2])?;
    Ok(l.resolve(i).and_then(|i| l.get(i)).map_or(Reply::Nil, bulk))
}

/// LSET key index element
fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(l) = write_list(ctx, &args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    let i = int_arg(&args[2])?;
    let Some(pos) = l.resolve(i) else {
        return Err(CmdError::other("ERR index out of range"));
    };
    l.set(pos, &args[3]);
    ctx.dirty(1);
    ctx.notify(class::LIST, "lset", &args[1]);
    Ok(Reply::Ok)
}

/// LINSERT key BEFORE|AFTER pivot element
fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(l) = write_list(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let Some(p) = l.position(&args[3]) else {
        return Ok(Reply::Int(-1));
    };
    l.insert(p + after as usize, &args[4], fill());
    let n = l.len();
    ctx.dirty(1);
    ctx.notify(class::LIST, "linsert", &args[1]);
    Ok(Reply::Int(n as i64))
}

/// LREM key count element
fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = int_arg(&args[2])?;
    let key = &args[1];
    let Some(l) = write_list(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let removed = l.remove_matching(&args[3], count.unsigned_abs() as usize, count < 0);
    let emptied = l.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(removed as u64);
    if removed > 0 {
        ctx.notify_removal(class::LIST, "lrem", key, emptied);
    }
    Ok(Reply::Int(removed as i64))
}

/// LTRIM key start stop
fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let stop = int_arg(&args[3])?;
    let key = &args[1];
    let Some(l) = write_list(ctx, key)? else {
        return Ok(Reply::Ok);
    };
    let len = l.len() as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    let removed = if start > stop || start >= len {
        let n = l.len();
        l.clear();
        n
    } else {
        if stop >= len {
            stop = len - 1;
        }
        l.trim(start as usize, stop as usize)
    };
    let emptied = l.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.signal_modified(key);
    ctx.dirty(removed as u64);
    ctx.notify_removal(class::LIST, "ltrim", key, emptied);
    Ok(Reply::Ok)
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "rank") && more {
            j += 1;
            rank = int_arg(&args[j])?;
            if rank == 0 {
                return Err(CmdError::other(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&args[j], "count") && more {
            j += 1;
            count = Some(positive(&args[j], "COUNT can't be negative")?);
        } else if is(&args[j], "maxlen") && more {
            j += 1;
            maxlen = positive(&args[j], "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let Some(l) = read_list(ctx, &args[1])? else {
        return Ok(match count {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::Nil,
        });
    };
    let len = l.len();
    let from_tail = rank < 0;
    // Redis negates LONG_MIN into itself, a rank every match reaches.
    let rank = if rank == i64::MIN {
        1
    } else {
        rank.unsigned_abs()
    };
    let elem = &args[2][..];
    let limit = if maxlen == 0 {
        len
    } else {
        (maxlen as usize).min(len)
    };
    let mut found: Vec<Reply> = Vec::new();
    let mut matches = 0u64;
    let mut scan = |index: usize, e: &[u8]| -> bool {
        if e != elem {
            return true;
        }
        matches += 1;
        if matches < rank {
            return true;
        }
        let at = if from_tail { len - index - 1 } else { index };
        found.push(Reply::Int(at as i64));
        match count {
            None => false,
            Some(0) => true,
            Some(c) => matches - rank + 1 < c as u64,
        }
    };
    if from_tail {
        for (i, e) in l.iter().rev().take(limit).enumerate() {
            if !scan(i, e) {
                break;
            }
        }
    } else {
        for (i, e) in l.iter().take(limit).enumerate() {
            if !scan(i, e) {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.into_iter().next().unwrap_or(Reply::Nil),
    })
}
