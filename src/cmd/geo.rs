//! The GEO commands: sorted sets whose scores are 52-bit geohashes
//! (`keyspace::geohash`). GEOADD, GEOPOS, GEODIST and GEOHASH here; the
//! area searches (GEOSEARCH, GEOSEARCHSTORE, GEORADIUS and friends) in
//! `geosearch`. Replies, formats and errors are Redis 7.0's; GEOADD goes to
//! replicas as the ZADD it amounts to, as in Redis.

use super::args::{float_arg, is};
use super::error::{CmdError, CmdResult};
use super::lookup::read_zset;
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::geohash;
use crate::resp::Reply;
use crate::util::ldouble::LongDouble;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Geo as G;
    let k1 = (1, 1, 1);
    let keyed = |f| Run::Keyed(f, Split::None);
    let search = super::geosearch::search;
    let store = Split::Coordinate(ClientCmd::GeoStore);
    vec![
        spec("geoadd", -5, WRITE | DENYOOM, k1, G, "3.2.0", "Add one or more geospatial items in the geospatial index represented using a sorted set", keyed(geoadd)),
        spec("geopos", -2, READONLY, k1, G, "3.2.0", "Returns longitude and latitude of members of a geospatial index", keyed(geopos)),
        spec("geodist", -4, READONLY, k1, G, "3.2.0", "Returns the distance between two members of a geospatial index", keyed(geodist)),
        spec("geohash", -2, READONLY, k1, G, "3.2.0", "Returns members of a geospatial index as standard geohash strings", keyed(geohash_cmd)),
        spec("georadius", -6, WRITE | DENYOOM | MOVABLE_KEYS, k1, G, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", Run::Keyed(search, store)),
        spec("georadius_ro", -6, READONLY, k1, G, "3.2.10", "A read-only variant for GEORADIUS", keyed(search)),
        spec("georadiusbymember", -5, WRITE | DENYOOM | MOVABLE_KEYS, k1, G, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", Run::Keyed(search, store)),
        spec("georadiusbymember_ro", -5, READONLY, k1, G, "3.2.10", "A read-only variant for GEORADIUSBYMEMBER", keyed(search)),
        spec("geosearch", -7, READONLY, k1, G, "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", keyed(search)),
        spec("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), G, "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", Run::Keyed(search, store)),
    ]
}

/// A longitude and latitude argument pair (Redis's extractLongLatOrReply).
pub(super) fn long_lat(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let long = float_arg(&args[0])?;
    let lat = float_arg(&args[1])?;
    if !geohash::valid(long, lat) {
        return Err(CmdError::other(format!(
            "ERR invalid longitude,latitude pair {long:.6},{lat:.6}"
        )));
    }
    Ok((long, lat))
}

/// A coordinate as Redis replies it (`%.17Lf`, trailing zeros cut).
pub(super) fn coordinate(v: f64) -> Reply {
    Reply::DoubleText(Bytes::from(LongDouble::from_f64(v).to_human_string()))
}

/// A distance as Redis replies it: 4 decimals, rounded half to even
/// (its fixedpoint_d2string).
pub(super) fn distance_text(d: f64) -> Bytes {
    if d == 0.0 {
        return Bytes::from_static(b"0.0000");
    }
    let scaled = (d * 10_000.0).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let v = scaled.unsigned_abs();
    Bytes::from(format!("{sign}{}.{:04}", v / 10_000, v % 10_000))
}

/// A unit argument: meters per unit.
pub(super) fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    match arg.to_ascii_lowercase().as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(CmdError::other(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]
fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut at = 2;
    let (mut nx, mut xx) = (false, false);
    while at < args.len() {
        let a = &args[at];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        at += 1;
    }
    if !(args.len() - at).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    // The ZADD it amounts to: options kept, each point as its score.
    let mut zadd: Vec<Bytes> = Vec::with_capacity(at + (args.len() - at) / 3 * 2);
    zadd.push(Bytes::from_static(b"zadd"));
    zadd.extend_from_slice(&args[1..at]);
    for point in args[at..].chunks_exact(3) {
        let (long, lat) = long_lat(point)?;
        let bits = geohash::encode_wgs84(long, lat).map_or(0, |h| h.bits);
        zadd.push(Bytes::from(bits.to_string()));
        zadd.push(point[2].clone());
    }
    let reply = super::zset::zadd(ctx, &zadd)?;
    ctx.propagate_as(vec![zadd]);
    Ok(reply)
}

/// GEOPOS key [member ...]
fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let z = read_zset(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                Some(score) => {
                    let (long, lat) = geohash::decode_score(score);
                    Reply::Array(vec![coordinate(long), coordinate(lat)])
                }
                None => Reply::NilArray,
            })
            .collect(),
    ))
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let per_unit = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::Syntax),
    };
    // One lookup (one hit or miss, as Redis counts it) for both members.
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Nil);
    };
    let point = |m: &[u8]| z.score(m).map(geohash::decode_score);
    let (Some((la, pa)), Some((lb, pb))) = (point(&args[2]), point(&args[3])) else {
        return Ok(Reply::Nil);
    };
    Ok(Reply::Bulk(distance_text(
        geohash::distance(la, pa, lb, pb) / per_unit,
    )))
}

/// GEOHASH key [member ...]
fn geohash_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let z = read_zset(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .and_then(geohash::standard_string)
                    .map_or(Reply::Nil, |s| Reply::Bulk(Bytes::from(s)))
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_have_four_decimals_rounded_to_even() {
        assert_eq!(&distance_text(0.0)[..], b"0.0000");
        assert_eq!(&distance_text(166.27415156960033)[..], b"166.2742");
        assert_eq!(&distance_text(0.00005)[..], b"0.0000");
        assert_eq!(&distance_text(12345678.9)[..], b"12345678.9000");
    }
}
