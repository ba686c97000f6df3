//! GEO area searches: GEORADIUS, GEORADIUSBYMEMBER (and their _RO forms),
//! GEOSEARCH and GEOSEARCHSTORE, parsed in Redis 7.0's order with its
//! errors. The cells to scan and the distance tests are
//! `keyspace::geohash`'s; here the members of each cell's score range are
//! gathered in Redis's order, sorted (ASC, DESC, or ASC forced by COUNT
//! without ANY), and replied or stored (scores kept, or distances with
//! STOREDIST). A store whose destination lives on another shard is
//! coordinated by [`run_across`]; the command goes to replicas as sent.

use super::args::{float_arg, int_arg, is};
use super::error::{CmdError, CmdResult};
use super::geo::{coordinate, distance_text, long_lat, unit};
use super::lookup::{read_zset, write};
use super::{Client, Ctx};
use crate::keyspace::geohash::{self, Search, Shape};
use crate::keyspace::{Value, ZsetValue};
use crate::notify::class;
use crate::resp::Reply;
use crate::shard::route::shard_of;
use crate::util::pqsort::pqsort;
use bytes::Bytes;
use std::cmp::Ordering;

/// Which command, as Redis's georadiusGeneric flags tell them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS, GEORADIUS_RO: center from coordinates.
    Coords { store: bool },
    /// GEORADIUSBYMEMBER, GEORADIUSBYMEMBER_RO.
    Member { store: bool },
    /// GEOSEARCH, GEOSEARCHSTORE.
    Search { store: bool },
}

impl Form {
    fn of(name: &[u8]) -> Form {
        match name.to_ascii_lowercase().as_slice() {
            b"georadius" => Form::Coords { store: true },
            b"georadius_ro" => Form::Coords { store: false },
            b"georadiusbymember" => Form::Member { store: true },
            b"georadiusbymember_ro" => Form::Member { store: false },
            b"geosearchstore" => Form::Search { store: true },
            _ => Form::Search { store: false },
        }
    }

    /// Where the source key is.
    fn source_at(self) -> usize {
        match self {
            Form::Search { store: true } => 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search.
#[derive(Clone)]
struct Query {
    /// (longitude, latitude).
    center: Option<(f64, f64)>,
    shape: Option<(Shape, f64)>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    /// 0: no limit.
    count: usize,
    any: bool,
    store: Option<Bytes>,
    store_dist: bool,
}

/// A shape's size and unit arguments: (size, meters per unit).
fn radius_arg(args: &[Bytes]) -> Result<(Shape, f64), CmdError> {
    let r = float_arg(&args[0]).map_err(|_| CmdError::other("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::other("ERR radius cannot be negative"));
    }
    Ok((Shape::Radius(r), unit(&args[1])?))
}

fn box_arg(args: &[Bytes]) -> Result<(Shape, f64), CmdError> {
    let w = float_arg(&args[0]).map_err(|_| CmdError::other("ERR need numeric width"))?;
    let h = float_arg(&args[1]).map_err(|_| CmdError::other("ERR need numeric height"))?;
    if w < 0.0 || h < 0.0 {
        return Err(CmdError::other("ERR height or width cannot be negative"));
    }
    Ok((Shape::Box(w, h), unit(&args[2])?))
}

/// Parses the call as Redis does, reading the source only where Redis
/// looks a member up while parsing. `source` is the set (None: missing).
fn parse(args: &[Bytes], form: Form, source: Option<&ZsetValue>) -> Result<Query, CmdError> {
    let mut q = Query {
        center: None,
        shape: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        sort: Sort::None,
        count: 0,
        any: false,
        store: None,
        store_dist: false,
    };
    let member_point = |m: &Bytes| -> Result<(f64, f64), CmdError> {
        match source.and_then(|z| z.score(m)) {
            Some(score) => Ok(geohash::decode_score(score)),
            None => Err(CmdError::other(
                "ERR could not decode requested zset member",
            )),
        }
    };
    let base = match form {
        Form::Coords { .. } => {
            let (long, lat) = long_lat(&args[2..4])?;
            q.center = Some((long, lat));
            q.shape = Some(radius_arg(&args[4..6])?);
            6
        }
        Form::Member { .. } => {
            if source.is_some() {
                q.center = Some(member_point(&args[2])?);
                q.shape = Some(radius_arg(&args[3..5])?);
            }
            5
        }
        Form::Search { store } => {
            if store {
                q.store = Some(args[1].clone());
                3
            } else {
                2
            }
        }
    };
    let search = matches!(form, Form::Search { .. });
    let may_store = matches!(
        form,
        Form::Coords { store: true } | Form::Member { store: true }
    );
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            q.with_dist = true;
        } else if is(a, "withhash") {
            q.with_hash = true;
        } else if is(a, "withcoord") {
            q.with_coord = true;
        } else if is(a, "any") {
            q.any = true;
        } else if is(a, "asc") {
            q.sort = Sort::Asc;
        } else if is(a, "desc") {
            q.sort = Sort::Desc;
        } else if is(a, "count") && left >= 1 {
            let n = int_arg(&rest[i + 1])?;
            if n <= 0 {
                return Err(CmdError::other("ERR COUNT must be > 0"));
            }
            q.count = n as usize;
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && may_store {
            q.store = Some(rest[i + 1].clone());
            q.store_dist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && matches!(form, Form::Search { store: true }) {
            q.store_dist = true;
        } else if is(a, "frommember") && left >= 1 && search && !from_loc {
            if source.is_some() {
                q.center = Some(member_point(&rest[i + 1])?);
            }
            from_member = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && search && !from_member {
            let (long, lat) = long_lat(&rest[i + 1..i + 3])?;
            q.center = Some((long, lat));
            from_loc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && search && !by_box {
            q.shape = Some(radius_arg(&rest[i + 1..i + 3])?);
            by_radius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && search && !by_radius {
            q.shape = Some(box_arg(&rest[i + 1..i + 4])?);
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        let who = if matches!(form, Form::Search { store: true }) {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::other(format!(
            "ERR {who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if search && !(from_member || from_loc) {
        return Err(CmdError::other(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if search && !(by_radius || by_box) {
        return Err(CmdError::other(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::other(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    Ok(q)
}

/// A member found in the area.
struct Found {
    member: Bytes,
    score: f64,
    longitude: f64,
    latitude: f64,
    /// Meters until the reply divides by the unit.
    dist: f64,
}

/// The members of `z` in the area, in Redis's order, at most `limit`
/// (0: all) when ANY stops the scan early.
fn gather(z: &ZsetValue, search: &Search, limit: usize) -> Vec<Found> {
    let mut out = Vec::new();
    for (min, max) in search.score_ranges() {
        if limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = (min as f64, max as f64);
        let (lo, hi) = z.range_by(|s, _| s >= min, |s, _| s < max);
        for (member, score) in z.iter_from(lo, false).take(hi - lo) {
            let (longitude, latitude) = geohash::decode_score(score);
            if let Some(dist) = search.distance_if_inside(longitude, latitude) {
                out.push(Found {
                    member: member.clone(),
                    score,
                    longitude,
                    latitude,
                    dist,
                });
                if limit > 0 && out.len() >= limit {
                    break;
                }
            }
        }
    }
    out
}

/// What a search turned out to be.
enum Outcome {
    Reply(Reply),
    /// Members and the scores to store them with.
    Store(Bytes, Vec<(Bytes, f64)>),
}

/// Runs the search on the source's shard: the reply, or what to store.
fn compute(ctx: &mut Ctx, args: &[Bytes]) -> Result<Outcome, CmdError> {
    let form = Form::of(&args[0]);
    let source = read_zset(ctx, &args[form.source_at()])?;
    let q = parse(args, form, source)?;
    let Some(z) = source else {
        return Ok(match q.store {
            Some(dest) => Outcome::Store(dest, Vec::new()),
            None => Outcome::Reply(Reply::Array(Vec::new())),
        });
    };
    let (Some((longitude, latitude)), Some((shape, meters_per_unit))) = (q.center, q.shape) else {
        return Err(CmdError::Syntax);
    };
    let search = Search {
        longitude,
        latitude,
        shape,
        meters_per_unit,
    };
    let sort = if q.count > 0 && q.sort == Sort::None && !q.any {
        Sort::Asc
    } else {
        q.sort
    };
    let mut found = gather(z, &search, if q.any { q.count } else { 0 });
    let kept = match q.count {
        0 => found.len(),
        n => n.min(found.len()),
    };
    // Redis sorts everything with glibc's (stable) qsort, or only the
    // first COUNT with its own unstable pqsort.
    let by_dist = |a: &Found, b: &Found| a.dist.partial_cmp(&b.dist).unwrap_or(Ordering::Equal);
    let order = |a: &Found, b: &Found| match sort {
        Sort::Desc => by_dist(b, a),
        _ => by_dist(a, b),
    };
    if sort != Sort::None && kept > 0 {
        if kept == found.len() {
            found.sort_by(order);
        } else {
            pqsort(&mut found, &order, 0, kept - 1);
        }
    }
    found.truncate(kept);
    if let Some(dest) = q.store {
        let pairs = found
            .into_iter()
            .map(|f| {
                let score = if q.store_dist {
                    f.dist / meters_per_unit
                } else {
                    f.score
                };
                (f.member, score)
            })
            .collect();
        return Ok(Outcome::Store(dest, pairs));
    }
    let options = usize::from(q.with_dist) + usize::from(q.with_hash) + usize::from(q.with_coord);
    let rows = found
        .into_iter()
        .map(|f| {
            if options == 0 {
                return Reply::Bulk(f.member);
            }
            let mut row = vec![Reply::Bulk(f.member)];
            if q.with_dist {
                row.push(Reply::Bulk(distance_text(f.dist / meters_per_unit)));
            }
            if q.with_hash {
                row.push(Reply::Int(f.score as i64));
            }
            if q.with_coord {
                row.push(Reply::Array(vec![
                    coordinate(f.longitude),
                    coordinate(f.latitude),
                ]));
            }
            Reply::Array(row)
        })
        .collect();
    Ok(Outcome::Reply(Reply::Array(rows)))
}

/// Stores a search's result at `dest` (deleting it when empty); the count.
/// `command` is the search's name, which names its notification.
fn store(ctx: &mut Ctx, command: &[u8], dest: &Bytes, pairs: Vec<(Bytes, f64)>) -> Reply {
    let n = pairs.len();
    if n == 0 {
        if write(ctx, dest).is_some() {
            ctx.db().remove(dest);
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "del", dest);
        }
        return Reply::Int(0);
    }
    let z = ZsetValue::from_pairs(pairs, &super::zset::limits());
    write(ctx, dest);
    ctx.db().set(dest.clone(), Value::Zset(z), None);
    ctx.dirty(n as u64);
    let event = if command.eq_ignore_ascii_case(b"geosearchstore") {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    ctx.notify(class::ZSET, event, dest);
    Reply::Int(n as i64)
}

/// Every search form, its keys on this shard.
pub fn search(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match compute(ctx, args)? {
        Outcome::Reply(r) => Ok(r),
        Outcome::Store(dest, pairs) => Ok(store(ctx, &args[0], &dest, pairs)),
    }
}

/// A storing search whose destination is on another shard: both held, the
/// search on the source's shard, the store on the destination's, then the
/// command propagated as sent.
pub async fn run_across(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let spec = super::table::table()
        .lookup(&args[0])
        .ok_or(CmdError::Syntax)?;
    let keys: Vec<Bytes> = spec
        .routing_positions(args)
        .map(|p| args[p].clone())
        .collect();
    let db = client.db;
    let n = client.shard.shards();
    let guard = super::across::hold_keys(&keys).await;
    let source = args[Form::of(&args[0]).source_at()].clone();
    let call = args.to_vec();
    let outcome = guard
        .run(shard_of(&source, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            compute(&mut ctx, &call)
        })
        .await?;
    let (dest, pairs) = match outcome {
        Outcome::Reply(r) => return Ok(r),
        Outcome::Store(dest, pairs) => (dest, pairs),
    };
    let changed_dest = dest.clone();
    let command = args[0].clone();
    let (reply, changed) = guard
        .run(shard_of(&dest, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            let reply = store(&mut ctx, &command, &changed_dest, pairs);
            (reply, ctx.changes > 0)
        })
        .await;
    if changed {
        super::propagate(client, db, args);
    }
    drop(guard);
    Ok(reply)
}
