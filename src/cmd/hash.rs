//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HLEN HSTRLEN HEXISTS
//! HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, with Redis
//! 7.0's replies, errors and encodings.
//!
//! Every handler runs on the shard owning its key. Writes change the hash
//! in place through a write lookup (so a running snapshot saves the cut
//! version first), delete the key when its last field goes, and count
//! `dirty` only for real changes, so no-ops are not propagated.
//! HINCRBYFLOAT is propagated as `HSET key field <result>`, as Redis does.

use super::args::{int_arg, is, parse_i64_strict, scan_args, scan_cursor};
use super::error::{CmdError, CmdResult};
use super::lookup::{read_hash, write_hash};
use super::table::{flag::*, spec, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::dict::{bounded, rand_next, random_seed};
use crate::keyspace::{HashValue, Value};
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Hash as H;
    let k1 = (1, 1, 1);
    let keyed = |f| Run::Keyed(f, Split::None);
    vec![
        spec(
            "hset",
            -4,
            WRITE | DENYOOM | FAST,
            k1,
            H,
            "2.0.0",
            "Set the string value of a hash field",
            keyed(hset),
        ),
        spec(
            "hsetnx",
            4,
            WRITE | DENYOOM | FAST,
            k1,
            H,
            "2.0.0",
            "Set the value of a hash field, only if the field does not exist",
            keyed(hsetnx),
        ),
        spec(
            "hget",
            3,
            READONLY | FAST,
            k1,
            H,
            "2.0.0",
            "Get the value of a hash field",
            keyed(hget),
        ),
        spec(
            "hmget",
            -3,
            READONLY | FAST,
            k1,
            H,
            "2.0.0",
            "Get the values of all the given hash fields",
            keyed(hmget),
        ),
        spec(
            "hmset",
            -4,
            WRITE | DENYOOM | FAST,
            k1,
            H,
            "2.0.0",
            "Set multiple hash fields to multiple values",
            keyed(hset),
        ),
        spec(
            "hdel",
            -3,
            WRITE | FAST,
            k1,
            H,
            "2.0.0",
            "Delete one or more hash fields",
            keyed(hdel),
        ),
        spec(
            "hlen",
            2,
            READONLY | FAST,
            k1,
            H,
            "2.0.0",
            "Get the number of fields in a hash",
            keyed(hlen),
        ),
        spec(
            "hstrlen",
            3,
            READONLY | FAST,
            k1,
            H,
            "3.2.0",
            "Get the length of the value of a hash field",
            keyed(hstrlen),
        ),
        spec(
            "hexists",
            3,
            READONLY | FAST,
            k1,
            H,
            "2.0.0",
            "Determine if a hash field exists",
            keyed(hexists),
        ),
        spec(
            "hkeys",
            2,
            READONLY,
            k1,
            H,
            "2.0.0",
            "Get all the fields in a hash",
            keyed(hkeys),
        ),
        spec(
            "hvals",
            2,
            READONLY,
            k1,
            H,
            "2.0.0",
            "Get all the values in a hash",
            keyed(hvals),
        ),
        spec(
            "hgetall",
            2,
            READONLY,
            k1,
            H,
            "2.0.0",
            "Get all the fields and values in a hash",
            keyed(hgetall),
        ),
        spec(
            "hincrby",
            4,
            WRITE | DENYOOM | FAST,
            k1,
            H,
            "2.0.0",
            "Increment the integer value of a hash field by the given number",
            keyed(hincrby),
        ),
        spec(
            "hincrbyfloat",
            4,
            WRITE | DENYOOM | FAST,
            k1,
            H,
            "2.6.0",
            "Increment the float value of a hash field by the given amount",
            keyed(hincrbyfloat),
        ),
        spec(
            "hrandfield",
            -2,
            READONLY,
            k1,
            H,
            "6.2.0",
            "Get one or multiple random fields from a hash",
            keyed(hrandfield),
        ),
        spec(
            "hscan",
            -3,
            READONLY,
            k1,
            H,
            "2.8.0",
            "Incrementally iterate hash fields and associated values",
            keyed(hscan),
        ),
    ]
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

fn limits() -> crate::keyspace::Limits {
    crate::node::encoding_limits()
}

/// Stores a hash just created by a write (the key did not exist).
fn store_new(ctx: &mut Ctx, key: &Bytes, h: HashValue) {
    ctx.db().set(key.clone(), Value::Hash(h), None);
}

/// HSET / HMSET key field value [field value ...]
fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        return Err(CmdError::other(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let lim = limits();
    let key = &args[1];
    let pairs = args[2..].chunks_exact(2);
    let added = match write_hash(ctx, key)? {
        Some(h) => pairs.filter(|p| h.set(&p[0], &p[1], &lim)).count(),
        None => {
            let mut h = HashValue::new();
            let n = pairs.filter(|p| h.set(&p[0], &p[1], &lim)).count();
            store_new(ctx, key, h);
            n
        }
    };
    ctx.dirty(((args.len() - 2) / 2) as u64);
    ctx.notify(class::HASH, "hset", key);
    Ok(if is(&args[0], "hmset") {
        Reply::Ok
    } else {
        Reply::Int(added as i64)
    })
}

/// HSETNX key field value
fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lim = limits();
    let key = &args[1];
    match write_hash(ctx, key)? {
        Some(h) if h.contains(&args[2]) => return Ok(Reply::Int(0)),
        Some(h) => {
            h.set(&args[2], &args[3], &lim);
        }
        None => {
            let mut h = HashValue::new();
            h.set(&args[2], &args[3], &lim);
            store_new(ctx, key, h);
        }
    }
    ctx.dirty(1);
    ctx.notify(class::HASH, "hset", key);
    Ok(Reply::Int(1))
}

/// HGET key field
fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(read_hash(ctx, &args[1])?
        .and_then(|h| h.get(&args[2]))
        .map_or(Reply::Nil, bulk))
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, bulk))
            .collect(),
    ))
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(h) = write_hash(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut deleted = 0;
    for f in &args[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    let emptied = h.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(deleted);
    if deleted > 0 {
        ctx.notify_removal(class::HASH, "hdel", key, emptied);
    }
    Ok(Reply::Int(deleted as i64))
}

/// HLEN key
fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_hash(ctx, &args[1])?.map_or(0, |h| h.len()) as i64
    ))
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let len = read_hash(ctx, &args[1])?
        .and_then(|h| h.get(&args[2]))
        .map_or(0, |v| v.len());
    Ok(Reply::Int(len as i64))
}

/// HEXISTS key field
fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = read_hash(ctx, &args[1])?.is_some_and(|h| h.contains(&args[2]));
    Ok(Reply::Int(found as i64))
}

/// HKEYS key
fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    Ok(Reply::Array(h.map_or_else(Vec::new, |h| {
        h.iter().map(|(f, _)| bulk(f)).collect()
    })))
}

/// HVALS key
fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    Ok(Reply::Array(h.map_or_else(Vec::new, |h| {
        h.iter().map(|(_, v)| bulk(v)).collect()
    })))
}

/// HGETALL key (a map in RESP3)
fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    Ok(Reply::Map(h.map_or_else(Vec::new, |h| {
        h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()
    })))
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis parses the increment before looking the key up.
    let incr = int_arg(&args[3])?;
    let lim = limits();
    let key = &args[1];
    let field = &args[2];
    let current = match write_hash(ctx, key)? {
        Some(h) => match h.get(field) {
            Some(v) => Some(
                parse_i64_strict(v)
                    .ok_or_else(|| CmdError::other("ERR hash value is not an integer"))?,
            ),
            None => None,
        },
        None => None,
    };
    let new = current
        .unwrap_or(0)
        .checked_add(incr)
        .ok_or(CmdError::Overflow)?;
    let text = new.to_string();
    set_field(ctx, key, field, text.as_bytes(), &lim)?;
    ctx.dirty(1);
    ctx.notify(class::HASH, "hincrby", key);
    Ok(Reply::Int(new))
}

/// Sets a field for HINCRBY/HINCRBYFLOAT, creating the hash if needed.
fn set_field(
    ctx: &mut Ctx,
    key: &Bytes,
    field: &[u8],
    value: &[u8],
    lim: &crate::keyspace::Limits,
) -> Result<(), CmdError> {
    match write_hash(ctx, key)? {
        Some(h) => {
            h.set(field, value, lim);
        }
        None => {
            let mut h = HashValue::new();
            h.set(field, value, lim);
            store_new(ctx, key, h);
        }
    }
    Ok(())
}

/// HINCRBYFLOAT key field increment (propagated as HSET of the result)
fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use crate::util::ldouble::{hincr_by_float, hincr_check_increment};
    let fail = |e: crate::util::ldouble::IncrError| CmdError::other(e.message());
    // The increment is checked before the key lookup, as in Redis.
    hincr_check_increment(&args[3]).map_err(fail)?;
    let lim = limits();
    let key = &args[1];
    let field = &args[2];
    let current: Option<Bytes> =
        write_hash(ctx, key)?.and_then(|h| h.get(field).map(Bytes::copy_from_slice));
    let text = hincr_by_float(current.as_deref(), &args[3]).map_err(fail)?;
    set_field(ctx, key, field, text.as_bytes(), &lim)?;
    ctx.dirty(1);
    ctx.notify(class::HASH, "hincrbyfloat", key);
    let result = Bytes::from(text);
    ctx.propagate_as(vec![vec![
        Bytes::from_static(b"HSET"),
        key.clone(),
        field.clone(),
        result.clone(),
    ]]);
    Ok(Reply::Bulk(result))
}

/// A per-call random state for the random-pick commands.
pub(super) fn rng() -> u64 {
    random_seed()
}

/// `count` distinct picks out of `size` elements, as Redis's
/// HRANDFIELD/SRANDMEMBER do (the caller handles `count >= size`): for a
/// count close to the size, copy everything and drop random elements;
/// otherwise draw random elements until enough distinct ones were seen.
pub(super) fn distinct_sample<T>(
    size: usize,
    count: usize,
    rng: &mut u64,
    all: impl FnOnce() -> Vec<T>,
    mut random: impl FnMut(&mut u64) -> T,
    id: impl Fn(&T) -> &[u8],
) -> Vec<T> {
    if count.saturating_mul(3) > size {
        let mut v = all();
        while v.len() > count {
            let i = bounded(rand_next(rng), v.len());
            v.swap_remove(i);
        }
        return v;
    }
    let mut out: Vec<T> = Vec::with_capacity(count);
    let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    while out.len() < count {
        let pick = random(rng);
        if seen.insert(id(&pick).to_vec()) {
            out.push(pick);
        }
    }
    out
}

/// Most elements reserved up front for a random-pick reply; a huge
/// negative count grows the reply as it is built instead.
const PREALLOC: usize = 1 << 16;

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rng = rng();
    if args.len() == 2 {
        return Ok(read_hash(ctx, &args[1])?
            .and_then(|h| h.random_pair(&mut rng))
            .map_or(Reply::Nil, |(f, _)| bulk(f)));
    }
    let l = int_arg(&args[2])?;
    if l == i64::MIN {
        return Err(CmdError::other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withvalues")) {
        return Err(CmdError::Syntax);
    }
    let with_values = args.len() == 4;
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::other("ERR value is out of range"));
    }
    let Some(h) = read_hash(ctx, &args[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    let reply = |pairs: Vec<(&[u8], &[u8])>| {
        if with_values {
            Reply::Pairs(pairs.into_iter().map(|(f, v)| (bulk(f), bulk(v))).collect())
        } else {
            Reply::Array(pairs.into_iter().map(|(f, _)| bulk(f)).collect())
        }
    };
    if l == 0 {
        return Ok(Reply::Array(vec![]));
    }
    if l < 0 {
        let n = l.unsigned_abs() as usize;
        let mut picks = Vec::with_capacity(n.min(PREALLOC));
        for _ in 0..n {
            if let Some(p) = h.random_pair(&mut rng) {
                picks.push(p);
            }
        }
        return Ok(reply(picks));
    }
    let count = l as usize;
    if count >= h.len() {
        return Ok(reply(h.iter().collect()));
    }
    let picks = distinct_sample(
        h.len(),
        count,
        &mut rng,
        || h.iter().collect(),
        |r| h.random_pair(r).unwrap_or((&[], &[])),
        |p| p.0,
    );
    Ok(reply(picks))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis's order: the cursor, then the key (missing or of another
    // type), then the options.
    let cursor = scan_cursor(&args[2])?;
    let Some(h) = read_hash(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = scan_args(cursor, &args[3..])?;
    let mut items = Vec::new();
    let next = h.scan(opts.cursor, opts.count, |f, v| {
        if opts.matches(f) {
            items.push(bulk(f));
            items.push(bulk(v));
        }
    });
    Ok(scan_reply(next, items))
}

/// `[cursor, [elements...]]`, a plain array in both protocols.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}
