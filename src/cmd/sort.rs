//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted
//! numerically or (ALPHA) as bytes, optionally by the values of other keys
//! (BY pattern) and fetching other keys' values (GET pattern, `#` for the
//! element, `key*->field` for a hash field), with LIMIT, ASC/DESC and (SORT
//! only) STORE into a list. Redis 7.0's rules throughout: BY without `*`
//! skips sorting, a set stored without sorting is sorted ALPHA so replicas
//! store the same list, equal numeric scores fall back to comparing the
//! elements, and the errors.
//!
//! Patterns can name keys of any shard, so a SORT holds the shards it reads
//! (every shard when a pattern is used) and the destination's for its
//! whole run: it is atomic like the other multi-key commands.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::lookup::read;
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::{Client, Ctx};
use crate::keyspace::{ListValue, Value};
use crate::resp::Reply;
use crate::shard::{self, route::shard_of};
use crate::util::strtod::strtod;
use bytes::Bytes;
use std::cmp::Ordering;

pub fn commands() -> Vec<CommandSpec> {
    vec![
        spec(
            "sort",
            -2,
            WRITE | DENYOOM | MOVABLE_KEYS,
            (1, 1, 1),
            Group::Generic,
            "1.0.0",
            "Sort the elements in a list, set or sorted set",
            Run::Client(ClientCmd::Sort),
        ),
        spec(
            "sort_ro",
            -2,
            READONLY | MOVABLE_KEYS,
            (1, 1, 1),
            Group::Generic,
            "7.0.0",
            "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
            Run::Client(ClientCmd::Sort),
        ),
    ]
}

/// The parsed options.
#[derive(Default)]
struct Options {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY without `*`: no sorting at all.
    dontsort: bool,
    gets: Vec<Bytes>,
}

fn parse(args: &[Bytes], read_only: bool) -> Result<Options, CmdError> {
    let mut o = Options::default();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            let start = parse_i64_strict(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            let count = parse_i64_strict(&args[j + 2]).ok_or(CmdError::NotInteger)?;
            o.limit = Some((start, count));
            j += 2;
        } else if !read_only && is(a, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let p = args[j + 1].clone();
            o.dontsort = !c_str(&p).contains(&b'*');
            o.by = Some(p);
            j += 1;
        } else if is(a, "get") && left >= 1 {
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The text a C string function sees: up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(&[])
}

/// Where a pattern looks for an element: the key, and a hash field for
/// `->field`; `None` for a pattern without `*` (nothing to look up).
fn pattern_target(pattern: &[u8], elem: &[u8]) -> Option<(Bytes, Option<Bytes>)> {
    let pat = c_str(pattern);
    let star = pat.iter().position(|&c| c == b'*')?;
    let after = &pat[star + 1..];
    let (post, field) = match after.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < after.len() => {
            (&after[..i], Some(Bytes::copy_from_slice(&after[i + 2..])))
        }
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pat.len() + elem.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    Some((Bytes::from(key), field))
}

/// What a pattern lookup reads: a string's value or a hash field's.
fn lookup_target(ctx: &mut Ctx, key: &Bytes, field: Option<&Bytes>) -> Option<Bytes> {
    match (read(ctx, key)?, field) {
        (Value::Str(s), None) => Some(s.bytes().clone()),
        (Value::Hash(h), Some(f)) => h.get(f).map(Bytes::copy_from_slice),
        _ => None,
    }
}

/// The elements to sort, read from the source on its shard.
enum Source {
    Missing,
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    /// Members by ascending score.
    Zset(Vec<Bytes>),
}

fn read_source(ctx: &mut Ctx, key: &Bytes) -> Result<Source, CmdError> {
    Ok(match read(ctx, key) {
        None => Source::Missing,
        Some(Value::List(l)) => Source::List(l.iter().map(Bytes::copy_from_slice).collect()),
        Some(Value::Set(s)) => Source::Set(s.iter().map(|m| m.to_bytes()).collect()),
        Some(Value::Zset(z)) => Source::Zset(z.iter().map(|(m, _)| m.clone()).collect()),
        Some(_) => return Err(CmdError::WrongType),
    })
}

/// SORT / SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA] [STORE destination]
pub async fn run(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let read_only = is(&args[0], "sort_ro");
    let mut o = parse(args, read_only)?;
    let (db, n) = (client.db, client.shard.shards());
    let key = args[1].clone();
    let uses_patterns = (o.by.is_some() && !o.dontsort) || o.gets.iter().any(|g| &g[..] != b"#");
    let mut involved: Vec<usize> = if uses_patterns {
        (0..n).collect()
    } else {
        vec![shard_of(&key, n)]
    };
    if let Some(dest) = &o.store {
        involved.push(shard_of(dest, n));
    }
    let guard = shard::hold(&involved).await;
    let k = key.clone();
    let source = guard
        .run(shard_of(&key, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            read_source(&mut ctx, &k)
        })
        .await?;
    let (mut elems, is_set, ordered) = match source {
        Source::Missing => (Vec::new(), false, true),
        Source::List(v) => (v, false, true),
        Source::Set(v) => (v, true, false),
        Source::Zset(v) => (v, false, true),
    };
    // A set stored without sorting is sorted ALPHA, so every replica
    // stores the same list.
    if o.dontsort && is_set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = elems.len() as i64;
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    // Lists and sorted sets keep their order when nothing is sorted;
    // DESC walks them from the end.
    if o.dontsort && ordered && o.desc {
        elems.reverse();
    }
    if !o.dontsort {
        sort_elems(&guard, db, n, &mut elems, &o).await?;
    }
    let picked: Vec<Bytes> = if end >= start && start >= 0 {
        elems[start as usize..=end as usize].to_vec()
    } else {
        Vec::new()
    };
    // GET values, per element and pattern.
    let rows: Vec<Vec<Option<Bytes>>> = if o.gets.is_empty() {
        picked.iter().map(|e| vec![Some(e.clone())]).collect()
    } else {
        let mut wanted = Vec::new();
        for e in &picked {
            for g in &o.gets {
                wanted.push(if &g[..] == b"#" {
                    Want::Elem(e.clone())
                } else {
                    Want::of(g, e)
                });
            }
        }
        let looked = lookups(&guard, db, n, &wanted).await;
        looked.chunks(o.gets.len()).map(|c| c.to_vec()).collect()
    };
    let Some(dest) = o.store.clone() else {
        drop(guard);
        let out = rows
            .into_iter()
            .flatten()
            .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
            .collect();
        return Ok(Reply::Array(out));
    };
    let items: Vec<Bytes> = rows
        .into_iter()
        .flatten()
        .map(Option::unwrap_or_default)
        .collect();
    let stored = items.len();
    let changed = guard
        .run(shard_of(&dest, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            let now = ctx.now_ms;
            let existed = ctx
                .db()
                .get(&dest, now, crate::keyspace::Lookup::Write)
                .is_some();
            if items.is_empty() {
                if existed {
                    ctx.db().remove(&dest);
                    ctx.notify(crate::notify::class::GENERIC, "del", &dest);
                }
                existed
            } else {
                let list =
                    ListValue::from_items(items.iter().map(|i| &i[..]), crate::node::list_fill());
                ctx.db()
                    .set(dest.clone(), Value::List(Box::new(list)), None);
                ctx.notify(crate::notify::class::LIST, "sortstore", &dest);
                true
            }
        })
        .await;
    if changed {
        super::propagate(client, db, args);
    }
    drop(guard);
    Ok(Reply::Int(stored as i64))
}

/// Where one GET or BY value comes from.
enum Want {
    /// `#`: the element itself.
    Elem(Bytes),
    /// A pattern without `*`: nothing.
    Nothing,
    /// A key (and hash field) to read.
    Lookup(Bytes, Option<Bytes>),
}

impl Want {
    fn of(pattern: &[u8], elem: &[u8]) -> Want {
        match pattern_target(pattern, elem) {
            Some((key, field)) => Want::Lookup(key, field),
            None => Want::Nothing,
        }
    }
}

/// Resolves each wanted value, the lookups on their keys' shards (one job
/// per shard).
async fn lookups(
    guard: &shard::HoldGuard,
    db: usize,
    n: usize,
    wanted: &[Want],
) -> Vec<Option<Bytes>> {
    let mut out: Vec<Option<Bytes>> = vec![None; wanted.len()];
    let mut per_shard: Vec<Vec<(usize, Bytes, Option<Bytes>)>> = vec![Vec::new(); n];
    for (i, w) in wanted.iter().enumerate() {
        match w {
            Want::Elem(elem) => out[i] = Some(elem.clone()),
            Want::Nothing => {}
            Want::Lookup(key, field) => {
                per_shard[shard_of(key, n)].push((i, key.clone(), field.clone()))
            }
        }
    }
    for (s, jobs) in per_shard.into_iter().enumerate() {
        if jobs.is_empty() {
            continue;
        }
        let got = guard
            .run(s, move |core| {
                let mut ctx = Ctx::new(core, db);
                jobs.into_iter()
                    .map(|(i, k, f)| (i, lookup_target(&mut ctx, &k, f.as_ref())))
                    .collect::<Vec<_>>()
            })
            .await;
        for (i, v) in got {
            out[i] = v;
        }
    }
    out
}

/// What an element sorts by.
enum SortKey {
    Score(f64),
    /// ALPHA by a pattern: the looked-up value, if any.
    Text(Option<Bytes>),
    /// ALPHA on the element itself.
    Elem,
}

async fn sort_elems(
    guard: &shard::HoldGuard,
    db: usize,
    n: usize,
    elems: &mut Vec<Bytes>,
    o: &Options,
) -> Result<(), CmdError> {
    let by_values: Option<Vec<Option<Bytes>>> = match &o.by {
        Some(p) => {
            let wanted: Vec<Want> = elems.iter().map(|e| Want::of(p, e)).collect();
            Some(lookups(guard, db, n, &wanted).await)
        }
        None => None,
    };
    let mut keyed: Vec<(SortKey, Bytes)> = Vec::with_capacity(elems.len());
    let mut bad_score = false;
    for (i, e) in elems.drain(..).enumerate() {
        let by = by_values.as_ref().map(|v| v[i].clone());
        let key = match (o.alpha, by) {
            (true, Some(v)) => SortKey::Text(v),
            (true, None) => SortKey::Elem,
            // A missing BY value sorts as 0.
            (false, Some(None)) => SortKey::Score(0.0),
            (false, Some(Some(v))) => SortKey::Score(score(&v, &mut bad_score)),
            (false, None) => SortKey::Score(score(&e, &mut bad_score)),
        };
        keyed.push((key, e));
    }
    if bad_score {
        return Err(CmdError::other(
            "ERR One or more scores can't be converted into double",
        ));
    }
    let cmp = |a: &(SortKey, Bytes), b: &(SortKey, Bytes)| -> Ordering {
        let c = match (&a.0, &b.0) {
            (SortKey::Score(x), SortKey::Score(y)) => match x.partial_cmp(y) {
                Some(Ordering::Equal) | None => a.1.cmp(&b.1),
                Some(c) => c,
            },
            (SortKey::Text(x), SortKey::Text(y)) => match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
            },
            _ => a.1.cmp(&b.1),
        };
        if o.desc {
            c.reverse()
        } else {
            c
        }
    };
    keyed.sort_by(cmp);
    elems.extend(keyed.into_iter().map(|(_, e)| e));
    Ok(())
}

/// An element's or BY value's score as Redis's SORT reads it (`strtod`
/// over the whole text; an empty text is 0).
fn score(v: &[u8], bad: &mut bool) -> f64 {
    let p = strtod(v);
    if p.end != v.len() || p.range_error || p.value.is_nan() {
        *bad = true;
    }
    p.value
}
