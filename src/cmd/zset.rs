//! Sorted set commands: the table rows of the whole family, and the ones
//! that run on one key's shard: ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE
//! ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZRANGE (and the legacy ZREVRANGE,
//! Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX) ZREMRANGEBY{RANK,SCORE,LEX}
//! ZPOPMIN ZPOPMAX ZRANDMEMBER ZSCAN. Range parsing lives in `zrange`; the
//! commands naming several keys (ZRANGESTORE, ZUNION... ZMPOP) in
//! `zsetops`.
//!
//! Writes change the set in place through a write lookup (so a running
//! snapshot saves the cut version first), delete the key when its last
//! member goes, and count `dirty` only for real changes, so no-ops are not
//! propagated. Propagation follows Redis 7.0: every single-key write here
//! is deterministic and goes as sent (ZADD INCR and ZINCRBY too, ZPOPMIN
//! and ZPOPMAX with their count). The blocking pops (BZPOPMIN BZPOPMAX
//! BZMPOP) have their rows here and run in `blocking`.

use super::args::{int_arg, is, scan_args, scan_cursor};
use super::error::{CmdError, CmdResult};
use super::hash::{distinct_sample, rng, scan_reply};
use super::lookup::{read_zset, write_zset};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::zrange::{self, elements_reply, Form};
use super::Ctx;
use crate::keyspace::{Limits, Value, ZsetValue};
use crate::notify::class;
use crate::resp::Reply;
use crate::util::strtod::string2d;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::SortedSet as Z;
    let k1 = (1, 1, 1);
    let keyed = |f| Run::Keyed(f, Split::None);
    let client = Run::Client;
    let row = |name, arity, flags, keys, since, summary, run| {
        spec(name, arity, flags, keys, Z, since, summary, run)
    };
    let none = (0, 0, 0);
    vec![
        row("zadd", -4, WRITE | DENYOOM | FAST, k1, "1.2.0", "Add one or more members to a sorted set, or update its score if it already exists", keyed(zadd)),
        row("zincrby", 4, WRITE | DENYOOM | FAST, k1, "1.2.0", "Increment the score of a member in a sorted set", keyed(zincrby)),
        row("zrem", -3, WRITE | FAST, k1, "1.2.0", "Remove one or more members from a sorted set", keyed(zrem)),
        row("zcard", 2, READONLY | FAST, k1, "1.2.0", "Get the number of members in a sorted set", keyed(zcard)),
        row("zscore", 3, READONLY | FAST, k1, "1.2.0", "Get the score associated with the given member in a sorted set", keyed(zscore)),
        row("zmscore", -3, READONLY | FAST, k1, "6.2.0", "Get the score associated with the given members in a sorted set", keyed(zmscore)),
        row("zrank", 3, READONLY | FAST, k1, "2.0.0", "Determine the index of a member in a sorted set", keyed(zrank)),
        row("zrevrank", 3, READONLY | FAST, k1, "2.0.0", "Determine the index of a member in a sorted set, with scores ordered from high to low", keyed(zrevrank)),
        row("zcount", 4, READONLY | FAST, k1, "2.0.0", "Count the members in a sorted set with scores within the given values", keyed(zcount)),
        row("zlexcount", 4, READONLY | FAST, k1, "2.8.9", "Count the number of members in a sorted set between a given lexicographical range", keyed(zlexcount)),
        row("zrange", -4, READONLY, k1, "1.2.0", "Return a range of members in a sorted set", keyed(zrange)),
        row("zrevrange", -4, READONLY, k1, "1.2.0", "Return a range of members in a sorted set, by index, with scores ordered from high to low", keyed(zrevrange)),
        row("zrangebyscore", -4, READONLY, k1, "1.0.5", "Return a range of members in a sorted set, by score", keyed(zrangebyscore)),
        row("zrevrangebyscore", -4, READONLY, k1, "2.2.0", "Return a range of members in a sorted set, by score, with scores ordered from high to low", keyed(zrevrangebyscore)),
        row("zrangebylex", -4, READONLY, k1, "2.8.9", "Return a range of members in a sorted set, by lexicographical range", keyed(zrangebylex)),
        row("zrevrangebylex", -4, READONLY, k1, "2.8.9", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", keyed(zrevrangebylex)),
        row("zremrangebyrank", 4, WRITE, k1, "2.0.0", "Remove all members in a sorted set within the given indexes", keyed(zremrangebyrank)),
        row("zremrangebyscore", 4, WRITE, k1, "1.2.0", "Remove all members in a sorted set within the given scores", keyed(zremrangebyscore)),
        row("zremrangebylex", 4, WRITE, k1, "2.8.9", "Remove all members in a sorted set between the given lexicographical range", keyed(zremrangebylex)),
        row("zpopmin", -2, WRITE | FAST, k1, "5.0.0", "Remove and return members with the lowest scores in a sorted set", keyed(zpopmin)),
        row("zpopmax", -2, WRITE | FAST, k1, "5.0.0", "Remove and return members with the highest scores in a sorted set", keyed(zpopmax)),
        row("zrandmember", -2, READONLY, k1, "6.2.0", "Get one or multiple random elements from a sorted set", keyed(zrandmember)),
        row("zscan", -3, READONLY, k1, "2.8.0", "Incrementally iterate sorted sets elements and associated scores", keyed(zscan)),
        row("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), "6.2.0", "Store a range of members from sorted set into another key", Run::Keyed(super::zsetops::zrangestore, Split::Coordinate(ClientCmd::Zrangestore))),
        // The source keys follow numkeys (Redis: movablekeys); the
        // *STORE commands have a fixed destination at 1.
        row("zunionstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, k1, "2.0.0", "Add multiple sorted sets and store the resulting sorted set in a new key", client(ClientCmd::Zstore)),
        row("zinterstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, k1, "2.0.0", "Intersect multiple sorted sets and store the resulting sorted set in a new key", client(ClientCmd::Zstore)),
        row("zdiffstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, k1, "6.2.0", "Subtract multiple sorted sets and store the resulting sorted set in a new key", client(ClientCmd::Zstore)),
        row("zunion", -3, READONLY | MOVABLE_KEYS, none, "6.2.0", "Add multiple sorted sets", client(ClientCmd::Zsetop)),
        row("zinter", -3, READONLY | MOVABLE_KEYS, none, "6.2.0", "Intersect multiple sorted sets", client(ClientCmd::Zsetop)),
        row("zdiff", -3, READONLY | MOVABLE_KEYS, none, "6.2.0", "Subtract multiple sorted sets", client(ClientCmd::Zsetop)),
        row("zintercard", -3, READONLY | MOVABLE_KEYS, none, "7.0.0", "Intersect multiple sorted sets and return the cardinality of the result", client(ClientCmd::Zintercard)),
        row("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), "5.0.0", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", client(ClientCmd::Blocking)),
        row("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), "5.0.0", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", client(ClientCmd::Blocking)),
        row("bzmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, none, "7.0.0", "Remove and return members with scores in a sorted set or block until one is available", client(ClientCmd::Blocking)),
        row("zmpop", -4, WRITE | MOVABLE_KEYS, none, "7.0.0", "Remove and return members with scores in a sorted set", client(ClientCmd::Zmpop)),
    ]
}

pub(super) fn limits() -> Limits {
    crate::node::encoding_limits()
}

/// A score or increment argument: "ERR value is not a valid float".
fn score_arg(b: &[u8]) -> Result<f64, CmdError> {
    string2d(b).ok_or(CmdError::NotFloat)
}

fn nan_error() -> CmdError {
    CmdError::other("ERR resulting score is not a number (NaN)")
}

/// ZADD's options.
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub(super) fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    add_generic(ctx, args, false)
}

/// ZINCRBY key increment member
fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    add_generic(ctx, args, true)
}

fn add_generic(ctx: &mut Ctx, args: &[Bytes], zincrby: bool) -> CmdResult {
    let mut f = AddFlags {
        incr: zincrby,
        ..AddFlags::default()
    };
    let mut at = 2;
    if !zincrby {
        while at < args.len() {
            let a = &args[at];
            if is(a, "nx") {
                f.nx = true;
            } else if is(a, "xx") {
                f.xx = true;
            } else if is(a, "ch") {
                f.ch = true;
            } else if is(a, "incr") {
                f.incr = true;
            } else if is(a, "gt") {
                f.gt = true;
            } else if is(a, "lt") {
                f.lt = true;
            } else {
                break;
            }
            at += 1;
        }
    }
    let elements = args.len() - at;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::other(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::other(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && elements > 2 {
        return Err(CmdError::other(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in args[at..].chunks_exact(2) {
        pairs.push((score_arg(&p[0])?, &p[1]));
    }
    let lim = limits();
    let key = &args[1];
    let existed = write_zset(ctx, key)?.is_some();
    if !existed {
        if f.xx {
            return Ok(if f.incr { Reply::Nil } else { Reply::Int(0) });
        }
        ctx.db()
            .set(key.clone(), Value::Zset(ZsetValue::new()), None);
    }
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last = 0.0;
    let mut nan = false;
    for (score, member) in pairs {
        match z.score(member) {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { cur + score } else { score };
                if new.is_nan() {
                    nan = true;
                    break;
                }
                if (f.gt && new <= cur) || (f.lt && new >= cur) {
                    continue;
                }
                if new != cur {
                    z.insert(member, new, &lim);
                    updated += 1;
                }
                processed += 1;
                last = new;
            }
            None => {
                if f.xx {
                    continue;
                }
                z.insert(member, score, &lim);
                added += 1;
                processed += 1;
                last = score;
            }
        }
    }
    if z.is_empty() {
        ctx.db().remove(key);
    }
    if nan {
        return Err(nan_error());
    }
    ctx.dirty(added + updated);
    if added + updated > 0 {
        ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(if f.incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if f.ch { added + updated } else { added } as i64)
    })
}

/// ZREM key member [member ...]
fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0u64;
    for m in &args[2..] {
        if z.remove(m).is_some() {
            removed += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    let emptied = z.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(removed);
    if removed > 0 {
        ctx.notify_removal(class::ZSET, "zrem", key, emptied);
    }
    Ok(Reply::Int(removed as i64))
}

/// ZCARD key
fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_zset(ctx, &args[1])?.map_or(0, |z| z.len()) as i64
    ))
}

fn score_reply(s: Option<f64>) -> Reply {
    s.map_or(Reply::Nil, Reply::Double)
}

/// ZSCORE key member
fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(score_reply(
        read_zset(ctx, &args[1])?.and_then(|z| z.score(&args[2])),
    ))
}

/// ZMSCORE key member [member ...]
fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let z = read_zset(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| score_reply(z.and_then(|z| z.score(m))))
            .collect(),
    ))
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Nil);
    };
    let len = z.len();
    Ok(z.rank(&args[2]).map_or(Reply::Nil, |r| {
        Reply::Int(if rev { len - 1 - r } else { r } as i64)
    }))
}

/// ZRANK key member
fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, false)
}

/// ZREVRANK key member
fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, true)
}

/// ZCOUNT key min max
fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = zrange::parse_score_range(&args[2], &args[3])?;
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let (lo, hi) = zrange::score_span(z, &r);
    Ok(Reply::Int((hi - lo) as i64))
}

/// ZLEXCOUNT key min max
fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = zrange::parse_lex_range(&args[2], &args[3])?;
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let (lo, hi) = zrange::lex_span(z, &r);
    Ok(Reply::Int((hi - lo) as i64))
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], form: Form) -> CmdResult {
    let q = zrange::parse(args, 1, false, form)?;
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let (items, _) = zrange::select(z, &q);
    Ok(elements_reply(items, q.withscores))
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::Auto)
}

/// ZREVRANGE key start stop [WITHSCORES]
fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::RevRank)
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::ByScore(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::ByScore(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::ByLex(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, Form::ByLex(true))
}

/// Which ZREMRANGEBY* was called.
enum RemBy {
    Rank(i64, i64),
    Score(zrange::ScoreRange),
    Lex(zrange::LexRange),
}

fn remrange_generic(ctx: &mut Ctx, args: &[Bytes], by: RemBy) -> CmdResult {
    let key = &args[1];
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let (lo, hi) = match &by {
        RemBy::Rank(s, e) => match zrange::rank_span(*s, *e, z.len()) {
            Some((s, e)) => (s, e + 1),
            None => return Ok(Reply::Int(0)),
        },
        RemBy::Score(r) => zrange::score_span(z, r),
        RemBy::Lex(r) => zrange::lex_span(z, r),
    };
    let removed = z.remove_range(lo, hi).len();
    let emptied = z.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(removed as u64);
    if removed > 0 {
        let event = match by {
            RemBy::Rank(..) => "zremrangebyrank",
            RemBy::Score(_) => "zremrangebyscore",
            RemBy::Lex(_) => "zremrangebylex",
        };
        ctx.notify_removal(class::ZSET, event, key, emptied);
    }
    Ok(Reply::Int(removed as i64))
}

/// ZREMRANGEBYRANK key start stop
fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (s, e) = (int_arg(&args[2])?, int_arg(&args[3])?);
    remrange_generic(ctx, args, RemBy::Rank(s, e))
}

/// ZREMRANGEBYSCORE key min max
fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = zrange::parse_score_range(&args[2], &args[3])?;
    remrange_generic(ctx, args, RemBy::Score(r))
}

/// ZREMRANGEBYLEX key min max
fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = zrange::parse_lex_range(&args[2], &args[3])?;
    remrange_generic(ctx, args, RemBy::Lex(r))
}

/// Pops up to `count` elements from the low (`max` false) or high end of
/// the set at `key`, deleting an emptied key. `None`: no such key.
pub(super) fn pop_from(
    ctx: &mut Ctx,
    key: &Bytes,
    max: bool,
    count: usize,
) -> Result<Option<Vec<(Bytes, f64)>>, CmdError> {
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(None);
    };
    let n = count.min(z.len());
    let len = z.len();
    let mut popped = if max {
        z.remove_range(len - n, len)
    } else {
        z.remove_range(0, n)
    };
    if max {
        popped.reverse();
    }
    let emptied = z.is_empty();
    if emptied {
        ctx.db().remove(key);
    }
    ctx.dirty(popped.len() as u64);
    if !popped.is_empty() {
        let event = if max { "zpopmax" } else { "zpopmin" };
        ctx.notify_removal(class::ZSET, event, key, emptied);
    }
    Ok(Some(popped))
}

fn pop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        // Redis answers both a non-integer and a negative count this way.
        Some(a) => Some(
            super::args::parse_i64_strict(a)
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::other("ERR value is out of range, must be positive"))?
                as usize,
        ),
    };
    if count == Some(0) {
        // Redis still checks the key's type first.
        read_zset(ctx, &args[1])?;
        return Ok(Reply::Array(Vec::new()));
    }
    let Some(popped) = pop_from(ctx, &args[1], max, count.unwrap_or(1))? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(match count {
        // RESP3 nests the pairs only when a count was given.
        Some(_) => elements_reply(popped, true),
        None => Reply::Array(
            popped
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ),
    })
}

/// ZPOPMIN key [count]
fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, false)
}

/// ZPOPMAX key [count]
fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, true)
}

/// Most elements reserved up front for a random-pick reply.
const PREALLOC: usize = 1 << 16;

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rng = rng();
    if args.len() == 2 {
        return Ok(read_zset(ctx, &args[1])?
            .and_then(|z| z.random(&mut rng))
            .map_or(Reply::Nil, |(m, _)| Reply::Bulk(m.clone())));
    }
    let l = int_arg(&args[2])?;
    if l == i64::MIN {
        return Err(CmdError::other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let withscores = match args.len() {
        3 => false,
        4 if is(&args[3], "withscores") => true,
        _ => return Err(CmdError::Syntax),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::other("ERR value is out of range"));
    }
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if l == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let picks: Vec<(Bytes, f64)> = if l < 0 || l == 1 {
        let n = l.unsigned_abs() as usize;
        let mut out = Vec::with_capacity(n.min(PREALLOC));
        for _ in 0..n {
            if let Some((m, s)) = z.random(&mut rng) {
                out.push((m.clone(), s));
            }
        }
        out
    } else if l as usize >= z.len() {
        // The whole set, from the highest score down, as Redis walks it.
        z.iter_from(z.len() - 1, true)
            .map(|(m, s)| (m.clone(), s))
            .collect()
    } else {
        distinct_sample(
            z.len(),
            l as usize,
            &mut rng,
            || z.iter().map(|(m, s)| (m.clone(), s)).collect(),
            |r| z.random(r).map(|(m, s)| (m.clone(), s)).unwrap_or_default(),
            |(m, _)| m.as_ref(),
        )
    };
    Ok(elements_reply(picks, withscores))
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis's order: the cursor, then the key (missing or of another
    // type), then the options.
    let cursor = scan_cursor(&args[2])?;
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = scan_args(cursor, &args[3..])?;
    let mut items = Vec::new();
    // A listpack's scores are returned as the text it holds.
    let listpack = matches!(z, ZsetValue::Listpack(_));
    let next = z.scan(opts.cursor, opts.count, |m, s| {
        if opts.matches(m) {
            items.push(Reply::Bulk(m.clone()));
            let text = if listpack {
                crate::keyspace::zset::listpack_score_text(s)
            } else {
                crate::util::digest::format_score(s)
            };
            items.push(Reply::Bulk(Bytes::from(text)));
        }
    });
    Ok(scan_reply(next, items))
}
