//! HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST, with
//! Redis 7.0's replies, errors and propagation. The format itself (and
//! every byte of it) is `keyspace::hll`'s; this file looks keys up,
//! checks them and decides what changed.
//!
//! PFADD and PFDEBUG name one key and run on its shard. PFCOUNT and
//! PFMERGE run there too when their keys share a shard; otherwise
//! (`Split::Coordinate`) the coordinator holds every involved shard, reads
//! the sources, merges their registers, and (PFMERGE) writes the result on
//! the destination's shard before releasing them, so both stay atomic.
//!
//! PFCOUNT of one key stores the count it computed in the value's header
//! and is then propagated, as Redis does (flag `PROPAGATES`), so a
//! replica's bytes stay the master's.

use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::{Client, Ctx};
use crate::keyspace::hll::{self, Encoding, REGISTERS};
use crate::keyspace::{Lookup, StrValue, Value};
use crate::node::{hll_sparse_max_bytes, unix_ms};
use crate::notify::class;
use crate::resp::Reply;
use crate::shard::route::shard_of;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Hyperloglog as H;
    vec![
        spec(
            "pfadd",
            -2,
            WRITE | DENYOOM | FAST,
            (1, 1, 1),
            H,
            "2.8.9",
            "Adds the specified elements to the specified HyperLogLog.",
            Run::Keyed(pfadd, Split::None),
        ),
        spec(
            "pfcount",
            -2,
            READONLY | PROPAGATES,
            (1, -1, 1),
            H,
            "2.8.9",
            "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
            Run::Keyed(pfcount, Split::Coordinate(ClientCmd::Pfcount)),
        ),
        spec(
            "pfmerge",
            -2,
            WRITE | DENYOOM,
            (1, -1, 1),
            H,
            "2.8.9",
            "Merge N different HyperLogLogs into a single one.",
            Run::Keyed(pfmerge, Split::Coordinate(ClientCmd::Pfmerge)),
        ),
        spec(
            "pfdebug",
            3,
            WRITE | DENYOOM | ADMIN,
            (2, 2, 1),
            H,
            "2.8.9",
            "Internal commands for debugging HyperLogLog values",
            Run::Keyed(pfdebug, Split::None),
        ),
        spec(
            "pfselftest",
            1,
            ADMIN,
            (0, 0, 0),
            H,
            "2.8.9",
            "An internal command for testing HyperLogLog values",
            Run::Keyed(pfselftest, Split::None),
        ),
    ]
}

fn not_an_hll() -> CmdError {
    CmdError::other("WRONGTYPE Key is not a valid HyperLogLog string value.")
}

fn corrupt() -> CmdError {
    CmdError::other("INVALIDOBJ Corrupted HLL object detected")
}

/// Checks what a key holds: WRONGTYPE for another type, Redis's "not a
/// valid HyperLogLog" for a string that is not one.
fn check(v: &Value) -> Result<(), CmdError> {
    match v {
        Value::Str(s) if hll::encoding_of(s.bytes()).is_some() => Ok(()),
        Value::Str(_) => Err(not_an_hll()),
        #[allow(unreachable_patterns)]
        _ => Err(CmdError::WrongType),
    }
}

/// The HLL at `key` for changing, checked; `None` when missing.
fn write_hll<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut StrValue>, CmdError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now, Lookup::Write) {
        None => Ok(None),
        Some(v) => {
            check(v)?;
            Ok(v.as_str_mut())
        }
    }
}

/// PFADD key [element ...]
fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let max_bytes = hll_sparse_max_bytes();
    let (created, raised) = match write_hll(ctx, key)? {
        Some(s) => {
            let raised = s.edit(|v| -> Result<u64, CmdError> {
                let mut raised = 0;
                for e in &args[2..] {
                    raised += u64::from(hll::add(v, e, max_bytes).map_err(|_| corrupt())?);
                }
                Ok(raised)
            })?;
            (false, raised)
        }
        None => {
            let mut v = hll::new_sparse();
            let mut raised = 0;
            for e in &args[2..] {
                raised += u64::from(hll::add(&mut v, e, max_bytes).map_err(|_| corrupt())?);
            }
            // Created counts as a change: the new value's count is stale
            // too, as Redis marks it.
            hll::invalidate_cache(&mut v);
            let value = StrValue::raw(v.freeze());
            ctx.db().set(key.clone(), Value::Str(value), None);
            (true, raised)
        }
    };
    let changes = raised + u64::from(created);
    if changes > 0 {
        ctx.dirty(changes);
        ctx.notify(class::STRING, "pfadd", key);
    }
    Ok(Reply::Int((changes > 0) as i64))
}

/// PFCOUNT key [key ...], every key on this shard.
fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        let sources: Vec<Source> = args[1..].iter().map(|k| read_source(ctx, k)).collect();
        let (max, _) = merge_sources(&sources)?;
        return Ok(Reply::Int(hll::count_registers(&max) as i64));
    }
    let key = &args[1];
    let now = ctx.now_ms;
    let cached = match ctx.db().get(key, now, Lookup::Read) {
        None => {
            ctx.count_read(key, false);
            return Ok(Reply::Int(0));
        }
        Some(v) => {
            check(v)?;
            v.as_str().and_then(|s| hll::cached_count(s.bytes()))
        }
    };
    ctx.core.stats.keyspace_hits += 1;
    if let Some(n) = cached {
        return Ok(Reply::Int(n as i64));
    }
    // Store the count in the header: a change, propagated like one.
    let Some(s) = write_hll(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let n = s.edit(|v| -> Result<u64, CmdError> {
        let n = hll::count(v).map_err(|_| corrupt())?;
        hll::set_cached_count(v, n);
        Ok(n)
    })?;
    ctx.dirty(1);
    Ok(Reply::Int(n as i64))
}

/// What PFCOUNT and PFMERGE read of each source key, in key order.
enum Source {
    Missing,
    /// Not an HLL: the error to answer with.
    Refused(CmdError),
    Hll(Bytes),
}

/// Reads the source at `key` as Redis's `lookupKeyRead` does.
fn read_source(ctx: &mut Ctx, key: &Bytes) -> Source {
    let now = ctx.now_ms;
    let found = match ctx.db().get(key, now, Lookup::Read) {
        None => Source::Missing,
        Some(v) => match check(v) {
            Err(e) => Source::Refused(e),
            Ok(()) => Source::Hll(v.as_str().map(|s| s.bytes().clone()).unwrap_or_default()),
        },
    };
    ctx.count_read(key, !matches!(found, Source::Missing));
    found
}

/// The highest of each register over `sources` (in key order, so the
/// first bad key gives the error, as in Redis), and whether any source
/// is dense.
fn merge_sources(sources: &[Source]) -> Result<(Box<[u8; REGISTERS]>, bool), CmdError> {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut any_dense = false;
    for s in sources {
        match s {
            Source::Missing => {}
            Source::Refused(e) => return Err(e.clone()),
            Source::Hll(v) => {
                any_dense |= hll::encoding_of(v) == Some(Encoding::Dense);
                hll::merge_into(&mut max, v).map_err(|_| corrupt())?;
            }
        }
    }
    Ok((max, any_dense))
}

/// PFMERGE destkey [sourcekey ...], every key on this shard. The
/// destination is a source too.
fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sources: Vec<Source> = args[1..].iter().map(|k| read_source(ctx, k)).collect();
    let (max, any_dense) = merge_sources(&sources)?;
    store_merged(ctx, &args[1], &max, any_dense)
}

/// Writes merged registers into the destination (created sparse if
/// missing; made dense first when a source was dense), as Redis does:
/// register by register, so the same bytes come out.
fn store_merged(ctx: &mut Ctx, dest: &Bytes, max: &[u8; REGISTERS], any_dense: bool) -> CmdResult {
    let max_bytes = hll_sparse_max_bytes();
    let fill = |v: &mut bytes::BytesMut| -> Result<(), CmdError> {
        if any_dense {
            hll::to_dense(v).map_err(|_| corrupt())?;
        }
        for (i, &m) in max.iter().enumerate() {
            if m > 0 {
                hll::raise(v, i, m, max_bytes).map_err(|_| corrupt())?;
            }
        }
        hll::invalidate_cache(v);
        Ok(())
    };
    match write_hll(ctx, dest)? {
        Some(s) => s.edit(fill)?,
        None => {
            let mut v = hll::new_sparse();
            fill(&mut v)?;
            let value = StrValue::raw(v.freeze());
            ctx.db().set(dest.clone(), Value::Str(value), None);
        }
    }
    ctx.dirty(1);
    ctx.notify(class::STRING, "pfadd", dest);
    Ok(Reply::Ok)
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).into_owned();
    let key = &args[2];
    let Some(s) = write_hll(ctx, key)? else {
        return Err(CmdError::other("ERR The specified key does not exist"));
    };
    let which = sub.to_ascii_lowercase();
    let (reply, converted) = match which.as_str() {
        "getreg" => s.edit(|v| -> Result<_, CmdError> {
            let converted = hll::to_dense(v).map_err(|_| corrupt())?;
            let regs = hll::registers(v).map_err(|_| corrupt())?;
            let reply = regs.iter().map(|&r| Reply::Int(i64::from(r))).collect();
            Ok((Reply::Array(reply), converted))
        })?,
        "decode" => match hll::decode_sparse(s.bytes()) {
            Some(text) => (Reply::Bulk(text.into()), false),
            None => return Err(CmdError::other("ERR HLL encoding is not sparse")),
        },
        "encoding" => {
            let enc = hll::encoding_of(s.bytes()).map_or("dense", Encoding::name);
            (Reply::Simple(Bytes::from_static(enc.as_bytes())), false)
        }
        "todense" => {
            let converted = if hll::encoding_of(s.bytes()) == Some(Encoding::Sparse) {
                s.edit(hll::to_dense).map_err(|_| corrupt())?
            } else {
                false
            };
            (Reply::Int(i64::from(converted)), converted)
        }
        _ => {
            return Err(CmdError::other(format!(
                "ERR Unknown PFDEBUG subcommand '{sub}'"
            )))
        }
    };
    if converted {
        ctx.dirty(1);
    }
    Ok(reply)
}

/// PFSELFTEST: checks the register packing and the estimator on this
/// build, as Redis's self-test does.
fn pfselftest(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let failed = |what: String| Err(CmdError::other(format!("ERR TESTFAILED {what}")));
    // Every register holds every value it is given, whatever its
    // neighbours hold.
    let mut seed: u64 = unix_ms();
    let mut next = move || crate::util::rand::rand_next(&mut seed);
    let mut dense = hll::new_sparse();
    if hll::to_dense(&mut dense).is_err() {
        return failed("Could not create a dense HLL".into());
    }
    for round in 0..8 {
        let mut expect = vec![0u8; REGISTERS];
        for (i, e) in expect.iter_mut().enumerate() {
            *e = (next() % 64) as u8;
            hll::set_dense_register(&mut dense, i, *e);
        }
        match hll::registers(&dense) {
            Ok(regs) if regs[..] == expect[..] => {}
            _ => return failed(format!("Register error in round {round}")),
        }
    }
    // Sparse and dense agree element by element, and the estimate stays
    // within five standard errors.
    let mut sparse = hll::new_sparse();
    let mut dense = hll::new_sparse();
    let _ = hll::to_dense(&mut dense);
    let bound = 5.0 * 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for n in 1..=100_000u64 {
        let e = next().to_le_bytes();
        let a = hll::add(&mut sparse, &e, usize::MAX);
        let b = hll::add(&mut dense, &e, usize::MAX);
        if a != b {
            return failed(format!("Sparse and dense disagree at element {n}"));
        }
        if n == checkpoint {
            checkpoint *= 10;
            let (cs, cd) = (hll::count(&sparse), hll::count(&dense));
            let Ok(c) = cd else {
                return failed("Corrupted dense HLL".into());
            };
            if cs != cd {
                return failed(format!("Sparse and dense counts differ at {n}"));
            }
            let err = (c as f64 - n as f64).abs() / n as f64;
            if n >= 1000 && err > bound {
                return failed(format!("Estimate {c} for {n} elements is off by {err:.4}"));
            }
        }
    }
    Ok(Reply::Ok)
}

// ------------------------------------------------- across shards --

/// PFCOUNT and PFMERGE whose keys span shards.
pub async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    let db = client.db;
    let n = client.shard.shards();
    let guard = super::across::hold_keys(&args[1..]).await;
    let sources = super::across::read_keys(&guard, db, &args[1..], read_source).await;
    let (max, any_dense) = merge_sources(&sources)?;
    if cmd == ClientCmd::Pfcount {
        return Ok(Reply::Int(hll::count_registers(&max) as i64));
    }
    let dest = args[1].clone();
    let reply = guard
        .run(shard_of(&dest, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            store_merged(&mut ctx, &dest, &max, any_dense)
        })
        .await?;
    super::propagate(client, db, args);
    drop(guard);
    Ok(reply)
}
