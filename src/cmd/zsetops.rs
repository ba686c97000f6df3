//! The sorted set commands that name several keys: ZRANGESTORE, ZUNION
//! ZINTER ZDIFF and their *STORE forms (WEIGHTS, AGGREGATE SUM|MIN|MAX,
//! WITHSCORES; plain sets count as sorted sets with scores of 1),
//! ZINTERCARD and ZMPOP.
//!
//! ZRANGESTORE runs keyed when its two keys share a shard
//! (`Split::Coordinate` otherwise). The others locate their keys from
//! `numkeys`, so the table cannot: they always hold every involved shard
//! (ascending order, see `shard::hold`), copy the sources to the
//! coordinator, and write the result on the destination's shard before
//! releasing, so each stays atomic. Errors come in Redis's order: numkeys,
//! then the keys' types, then the options.
//!
//! Propagation follows Redis 7.0: the *STORE commands go as they are when
//! they changed something (a non-empty result, or a deleted destination);
//! ZMPOP goes as `ZPOPMIN|ZPOPMAX key <popped>` for the key it popped
//! from. The pop, reply and argument steps here are shared with the
//! blocking BZPOPMIN BZPOPMAX BZMPOP (`blocking`).
//! Depends on `zset` and `zrange` for the shared helpers.

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::lookup::{read, source, write};
use super::table::ClientCmd;
use super::zrange::{self, elements_reply, Form};
use super::zset::{limits, pop_from};
use super::{Client, Ctx};
use crate::keyspace::{Value, ZsetValue};
use crate::notify::class;
use crate::resp::Reply;
use crate::shard::{self, route::shard_of};
use crate::util::strtod::string2d;
use bytes::Bytes;
use std::collections::HashMap;

/// One source's elements (ascending for a sorted set, score 1 for a set's
/// members); `None` for a missing key.
type Input = Option<Vec<(Bytes, f64)>>;

/// Reads one source key: WRONGTYPE unless it holds a set or sorted set. A
/// store reads its sources as writes do, without marking them changed
/// (see setops' `check_sources`).
fn read_input(ctx: &mut Ctx, key: &[u8], store: bool, sets_too: bool) -> Result<Input, CmdError> {
    let v = if store {
        source(ctx, key)
    } else {
        read(ctx, key)
    };
    let found = v.is_some();
    let input = match v {
        None => Ok(None),
        Some(Value::Zset(z)) => Ok(Some(z.iter().map(|(m, s)| (m.clone(), s)).collect())),
        Some(Value::Set(s)) if sets_too => {
            Ok(Some(s.iter().map(|m| (m.to_bytes(), 1.0)).collect()))
        }
        Some(_) => Err(CmdError::WrongType),
    };
    if store {
        ctx.count_read(key, found);
    }
    input
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

/// Copies of the sources at `keys` from the held shards, in key order;
/// WRONGTYPE for the first key (in order) holding another type.
async fn fetch(
    guard: &shard::HoldGuard,
    db: usize,
    keys: &[Bytes],
    store: bool,
) -> Result<Vec<Input>, CmdError> {
    let n = shard::current().shards();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let key = k.clone();
        out.push(
            on(guard, shard_of(k, n), db, move |ctx| {
                read_input(ctx, &key, store, true)
            })
            .await?,
        );
    }
    Ok(out)
}

/// Stores a computed result at `dest` (replacing it, TTL included) or
/// deletes `dest` for an empty one. Returns whether anything changed.
/// `event` names the stored result's notification.
fn store_result(
    ctx: &mut Ctx,
    dest: &Bytes,
    result: Option<ZsetValue>,
    event: &'static str,
) -> bool {
    match result {
        Some(z) if !z.is_empty() => {
            write(ctx, dest);
            ctx.db().set(dest.clone(), Value::Zset(z), None);
            ctx.dirty(1);
            ctx.notify(class::ZSET, event, dest);
            true
        }
        _ => {
            let existed = write(ctx, dest).is_some();
            if existed {
                ctx.db().remove(dest);
                ctx.dirty(1);
                ctx.notify(class::GENERIC, "del", dest);
            }
            existed
        }
    }
}

// ------------------------------------------------------- ZRANGESTORE --

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count],
/// both keys on this shard.
pub(super) fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let q = zrange::parse(args, 2, true, Form::Auto)?;
    let src = read_input(ctx, &args[2], true, false)?;
    let (result, n) = range_result(src, &q);
    store_result(ctx, &args[1], result, "zrangestore");
    Ok(Reply::Int(n as i64))
}

/// The stored set for a ZRANGESTORE and its size.
fn range_result(src: Input, q: &zrange::RangeQuery) -> (Option<ZsetValue>, usize) {
    let lim = limits();
    let Some(pairs) = src else {
        return (None, 0);
    };
    let z = ZsetValue::from_pairs(pairs, &lim);
    let (items, hint) = zrange::select(&z, q);
    let n = items.len();
    // Redis starts the result as "skiplist" when the rank range is known
    // to be too long, then adds member by member.
    let mut out = ZsetValue::with_hint(hint, &lim);
    for (m, s) in items {
        out.insert(&m, s, &lim);
    }
    (Some(out), n)
}

async fn zrangestore_across(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let q = zrange::parse(args, 2, true, Form::Auto)?;
    let db = client.db;
    let n = client.shard.shards();
    let (dest, src) = (args[1].clone(), args[2].clone());
    let guard = shard::hold(&[shard_of(&dest, n), shard_of(&src, n)]).await;
    let s = src.clone();
    let input = on(&guard, shard_of(&src, n), db, move |ctx| {
        read_input(ctx, &s, true, false)
    })
    .await?;
    let (result, len) = range_result(input, &q);
    let d = dest.clone();
    if on(&guard, shard_of(&dest, n), db, move |ctx| {
        store_result(ctx, &d, result, "zrangestore")
    })
    .await
    {
        super::propagate(client, db, args);
    }
    drop(guard);
    Ok(Reply::Int(len as i64))
}

// ------------------------------------------- ZUNION ZINTER ZDIFF --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// The options after the keys.
struct Opts {
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// The keys' positions after `numkeys` at `at`, checked as Redis does.
fn key_span(args: &[Bytes], at: usize, name: &str) -> Result<std::ops::Range<usize>, CmdError> {
    let n = int_arg(&args[at])?;
    if n < 1 {
        return Err(CmdError::other(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if n > (args.len() - at - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    Ok(at + 1..at + 1 + n as usize)
}

fn parse_opts(
    args: &[Bytes],
    from: usize,
    n: usize,
    op: Op,
    store: bool,
    card: bool,
) -> Result<Opts, CmdError> {
    let mut o = Opts {
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = from;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != Op::Diff && !card && remaining > n && is(a, "weights") {
            for (i, w) in o.weights.iter_mut().enumerate() {
                *w = string2d(&args[j + 1 + i])
                    .ok_or_else(|| CmdError::other("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != Op::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            o.agg = if is(v, "sum") {
                Agg::Sum
            } else if is(v, "min") {
                Agg::Min
            } else if is(v, "max") {
                Agg::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            o.limit = super::args::parse_i64_strict(&args[j + 1])
                .filter(|&l| l >= 0)
                .ok_or_else(|| CmdError::other("ERR LIMIT can't be negative"))?
                as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(o)
}

/// Redis's zunionInterAggregate: an infinite sum of opposite signs is 0.
fn aggregate(target: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if v < *target {
                *target = v;
            }
        }
        Agg::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

fn weighted(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The sources paired with their weights, smallest first (as Redis sorts
/// them for union and intersection; the order decides how sums round).
fn by_size<'a>(inputs: &'a [Input], o: &Opts) -> Vec<(&'a [(Bytes, f64)], f64)> {
    let mut v: Vec<(&[(Bytes, f64)], f64)> = inputs
        .iter()
        .zip(&o.weights)
        .map(|(i, w)| (i.as_deref().unwrap_or(&[]), *w))
        .collect();
    v.sort_by_key(|(i, _)| i.len());
    v
}

fn index(elems: &[(Bytes, f64)]) -> HashMap<&[u8], f64> {
    elems.iter().map(|(m, s)| (m.as_ref(), *s)).collect()
}

/// The result of `op`, in (score, member) order; with `count_only`, just
/// its size up to `o.limit`.
fn compute(op: Op, inputs: &[Input], o: &Opts, count_only: bool) -> (Vec<(Bytes, f64)>, usize) {
    let mut out: Vec<(Bytes, f64)> = Vec::new();
    let mut count = 0;
    match op {
        Op::Inter => {
            let srcs = by_size(inputs, o);
            let Some(((first, w0), rest)) = srcs.split_first() else {
                return (out, 0);
            };
            let maps: Vec<(HashMap<&[u8], f64>, f64)> =
                rest.iter().map(|(e, w)| (index(e), *w)).collect();
            'elems: for (m, s) in first.iter() {
                let mut score = weighted(*w0, *s);
                for (map, w) in &maps {
                    match map.get(m.as_ref()) {
                        Some(v) => aggregate(&mut score, v * w, o.agg),
                        None => continue 'elems,
                    }
                }
                count += 1;
                if count_only {
                    if o.limit > 0 && count >= o.limit {
                        break;
                    }
                } else {
                    out.push((m.clone(), score));
                }
            }
        }
        Op::Union => {
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            for (elems, w) in by_size(inputs, o) {
                for (m, s) in elems {
                    let v = weighted(w, *s);
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, v, o.agg),
                        None => {
                            acc.insert(m.clone(), v);
                        }
                    }
                }
            }
            out = acc.into_iter().collect();
        }
        Op::Diff => {
            if let Some(Some(first)) = inputs.first() {
                let others: Vec<HashMap<&[u8], f64>> =
                    inputs[1..].iter().flatten().map(|e| index(e)).collect();
                out = first
                    .iter()
                    .filter(|(m, _)| !others.iter().any(|o| o.contains_key(m.as_ref())))
                    .cloned()
                    .collect();
            }
        }
    }
    out.sort_by(|a, b| crate::keyspace::skiplist::cmp_entry(a.1, &a.0, b.1, &b.0));
    let n = if count_only { count } else { out.len() };
    (out, n)
}

/// Which of ZUNION ZINTER ZDIFF (or their *STORE), from the name.
fn op_of(name: &[u8]) -> (Op, bool) {
    let name = name.to_ascii_lowercase();
    let op = match name.get(1) {
        Some(b'u') => Op::Union,
        Some(b'd') => Op::Diff,
        _ => Op::Inter,
    };
    (op, name.ends_with(b"store"))
}

/// Z{UNION,INTER,DIFF}[STORE] and ZINTERCARD.
async fn setop(client: &mut Client, args: &[Bytes], card: bool) -> CmdResult {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let (op, store) = if card {
        (Op::Inter, false)
    } else {
        op_of(&args[0])
    };
    let span = key_span(args, if store { 2 } else { 1 }, &name)?;
    let keys: Vec<Bytes> = args[span.clone()].to_vec();
    let db = client.db;
    let n = client.shard.shards();
    let mut involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    if store {
        involved.push(shard_of(&args[1], n));
    }
    let guard = shard::hold(&involved).await;
    let inputs = fetch(&guard, db, &keys, store).await?;
    let o = parse_opts(args, span.end, keys.len(), op, store, card)?;
    let (result, len) = compute(op, &inputs, &o, card);
    if card {
        return Ok(Reply::Int(len as i64));
    }
    if !store {
        return Ok(elements_reply(result, o.withscores));
    }
    let dest = args[1].clone();
    let z = (!result.is_empty()).then(|| ZsetValue::from_pairs(result, &limits()));
    let d = dest.clone();
    let event = match op {
        Op::Union => "zunionstore",
        Op::Inter => "zinterstore",
        Op::Diff => "zdiffstore",
    };
    if on(&guard, shard_of(&dest, n), db, move |ctx| {
        store_result(ctx, &d, z, event)
    })
    .await
    {
        super::propagate(client, db, args);
    }
    drop(guard);
    Ok(Reply::Int(len as i64))
}

// -------------------------------------------------------------- ZMPOP --

/// ZMPOP / BZMPOP arguments after the command name (and timeout).
pub(super) struct ZmpopArgs {
    pub keys: std::ops::Range<usize>,
    pub max: bool,
    pub count: usize,
}

/// Parses `numkeys key... MIN|MAX [COUNT count]` with `numkeys` at `at`,
/// in Redis's order and with its errors (a non-integer and an
/// out-of-range numkeys or count are answered alike).
pub(super) fn zmpop_args(args: &[Bytes], at: usize) -> Result<ZmpopArgs, CmdError> {
    let numkeys = super::args::parse_i64_strict(&args[at])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::other("ERR numkeys should be greater than 0"))?;
    let where_at = (at + 1).saturating_add(numkeys as usize);
    let Some(w) = args.get(where_at) else {
        return Err(CmdError::Syntax);
    };
    let max = if is(w, "min") {
        false
    } else if is(w, "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count: Option<i64> = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            let c = super::args::parse_i64_strict(&args[j + 1])
                .filter(|&c| c >= 1)
                .ok_or_else(|| CmdError::other("ERR count should be greater than 0"))?;
            count = Some(c);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(ZmpopArgs {
        keys: at + 1..where_at,
        max,
        count: count.unwrap_or(1) as usize,
    })
}

/// Pops up to `count` members (1 when `None`) from the low or high end of
/// the sorted set at `key` on this shard and propagates the pop as Redis
/// 7.0 does: `ZPOPMIN|ZPOPMAX key` for BZPOPMIN/BZPOPMAX (`count: None`),
/// with the number of popped members for ZMPOP/BZMPOP. `Ok(None)` for a
/// missing key; WRONGTYPE for another type.
pub(super) fn zpop_and_propagate(
    ctx: &mut Ctx,
    key: &Bytes,
    max: bool,
    count: Option<usize>,
) -> Result<Option<Vec<(Bytes, f64)>>, CmdError> {
    let Some(popped) = pop_from(ctx, key, max, count.unwrap_or(1))? else {
        return Ok(None);
    };
    if popped.is_empty() {
        return Ok(None);
    }
    let name: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    let mut cmd = vec![Bytes::from_static(name), key.clone()];
    if count.is_some() {
        cmd.push(Bytes::from(popped.len().to_string()));
    }
    let db = ctx.db;
    crate::propagate::write(ctx.core, db, &[], Some(&[cmd]));
    Ok(Some(popped))
}

/// What a pop from `key` answers: `[key, [[member, score], ...]]` for
/// ZMPOP/BZMPOP (`nested`), `[key, member, score]` for BZPOPMIN/BZPOPMAX.
pub(super) fn zpop_reply(key: &Bytes, popped: Vec<(Bytes, f64)>, nested: bool) -> Reply {
    if nested {
        let pairs = popped
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect();
        return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]);
    }
    let mut out = Vec::with_capacity(1 + 2 * popped.len());
    out.push(Reply::Bulk(key.clone()));
    for (m, s) in popped {
        out.push(Reply::Bulk(m));
        out.push(Reply::Double(s));
    }
    Reply::Array(out)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: holds the keys'
/// shards and pops from the first one (in argument order) holding a
/// sorted set; WRONGTYPE when a key before it holds something else.
async fn zmpop(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let a = zmpop_args(args, 1)?;
    let keys: Vec<Bytes> = args[a.keys].to_vec();
    let db = client.db;
    let n = client.shard.shards();
    let involved: Vec<usize> = keys.iter().map(|k| shard_of(k, n)).collect();
    let guard = shard::hold(&involved).await;
    for (key, &s) in keys.iter().zip(&involved) {
        let k = key.clone();
        let (max, count) = (a.max, a.count);
        let popped = on(&guard, s, db, move |ctx| {
            zpop_and_propagate(ctx, &k, max, Some(count))
        })
        .await?;
        if let Some(popped) = popped {
            drop(guard);
            return Ok(zpop_reply(key, popped, true));
        }
    }
    Ok(Reply::NilArray)
}

/// The multi-key sorted set commands run at the client level.
pub async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Zrangestore => zrangestore_across(client, args).await,
        ClientCmd::Zmpop => zmpop(client, args).await,
        ClientCmd::Zintercard => setop(client, args, true).await,
        _ => setop(client, args, false).await,
    }
}
