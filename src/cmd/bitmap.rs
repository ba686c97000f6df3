//! Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP,
//! with Redis 7.0's arguments, errors and range rules (BYTE and BIT units,
//! negative indexes). Bit 0 is the most significant bit of the first byte.
//! BITFIELD has its own file (`bitfield.rs`).
//!
//! Every handler runs on the shard owning its key. SETBIT changes the
//! string in place (`StrValue::write_at`), so setting bits of a big bitmap
//! costs no copy of it. BITOP over keys on several shards
//! (`Split::Coordinate`) holds them all, reads the sources, and writes the
//! destination on its shard before releasing them, so it stays atomic.

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::string::{read_str, MAX_STRING};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::{Client, Ctx};
use crate::keyspace::{Lookup, StrValue, Value};
use crate::resp::Reply;
use crate::shard::route::shard_of;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Bitmap as B;
    let k1 = (1, 1, 1);
    vec![
        spec(
            "setbit",
            4,
            WRITE | DENYOOM,
            k1,
            B,
            "2.2.0",
            "Sets or clears the bit at offset in the string value stored at key",
            Run::Keyed(setbit, Split::None),
        ),
        spec(
            "getbit",
            3,
            READONLY | FAST,
            k1,
            B,
            "2.2.0",
            "Returns the bit value at offset in the string value stored at key",
            Run::Keyed(getbit, Split::None),
        ),
        spec(
            "bitcount",
            -2,
            READONLY,
            k1,
            B,
            "2.6.0",
            "Count set bits in a string",
            Run::Keyed(bitcount, Split::None),
        ),
        spec(
            "bitpos",
            -3,
            READONLY,
            k1,
            B,
            "2.8.7",
            "Find first bit set or clear in a string",
            Run::Keyed(bitpos, Split::None),
        ),
        spec(
            "bitop",
            -4,
            WRITE | DENYOOM,
            (2, -1, 1),
            B,
            "2.6.0",
            "Perform bitwise operations between strings",
            Run::Keyed(bitop, Split::Coordinate(ClientCmd::Bitop)),
        ),
    ]
}

/// A bit offset: a non-negative integer addressing a byte within the
/// largest string.
fn bit_offset(arg: &[u8]) -> Result<u64, CmdError> {
    super::args::parse_i64_strict(arg)
        .and_then(|o| u64::try_from(o).ok())
        .filter(|o| o >> 3 < MAX_STRING)
        .ok_or_else(|| CmdError::other("ERR bit offset is not an integer or out of range"))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(&args[2])?;
    let Some(v) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    Ok(Reply::Int(bit_at(&v, offset) as i64))
}

fn bit_at(bytes: &[u8], offset: u64) -> u8 {
    let byte = (offset >> 3) as usize;
    bytes.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(&args[2])?;
    let on = match super::args::parse_i64_strict(&args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return Err(CmdError::other("ERR bit is not an integer or out of range")),
    };
    let (key, byte) = (&args[1], (offset >> 3) as usize);
    let mask = 1u8 << (7 - (offset & 7));
    let now = ctx.now_ms;
    let (old, changed) = match ctx.db().get(key, now, Lookup::Write) {
        Some(Value::Str(s)) => {
            let current = s.bytes().get(byte).copied();
            let old = current.map_or(0, |b| (b & mask != 0) as u8);
            let grows = current.is_none();
            // Written even when the bit does not change: Redis makes the
            // string its own raw copy either way (OBJECT ENCODING shows it).
            let b = current.unwrap_or(0);
            let new = if on == 1 { b | mask } else { b & !mask };
            s.write_at(byte, &[new]);
            (old, grows || old != on)
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            let mut v = StrValue::raw(Bytes::new());
            v.write_at(byte, &[if on == 1 { mask } else { 0 }]);
            ctx.db().set_keep_ttl(key.clone(), Value::Str(v));
            (0, true)
        }
    };
    if changed {
        ctx.dirty(1);
        ctx.notify(crate::notify::class::STRING, "setbit", key);
    }
    Ok(Reply::Int(old as i64))
}

/// BYTE (the default) or BIT, the unit of a range's indexes.
fn unit(arg: Option<&Bytes>) -> Result<bool, CmdError> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "byte") => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(_) => Err(CmdError::Syntax),
    }
}

/// A byte range of the string, and masks of the bits outside a BIT range
/// in its first and last bytes.
struct Span {
    first: usize,
    last: usize,
    first_outside: u8,
    last_outside: u8,
}

/// Resolves `start..=end` (negative counts from the end, then clamped
/// to the string) in bytes or bits over a string of `len` bytes as Redis
/// does; `None` when empty.
fn span(start: i64, end: i64, bits: bool, len: usize) -> Option<Span> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    let fix = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (fix(start), fix(end).min(total - 1));
    if start > end || total == 0 {
        return None;
    }
    Some(if bits {
        Span {
            first: (start >> 3) as usize,
            last: (end >> 3) as usize,
            first_outside: !((1u16 << (8 - (start & 7))) - 1) as u8,
            last_outside: ((1u16 << (7 - (end & 7))) - 1) as u8,
        }
    } else {
        Span {
            first: start as usize,
            last: end as usize,
            first_outside: 0,
            last_outside: 0,
        }
    })
}

fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // As Redis 7.0: a missing key counts 0 before the arguments are looked at.
    let Some(v) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let span = match args.len() {
        2 => span(0, -1, false, v.len()),
        4 | 5 => {
            let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
            // Redis answers 0 for two negative indexes out of order before
            // it reads the unit (BITPOS has no such shortcut: it clamps).
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            span(start, end, unit(args.get(4))?, v.len())
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(s) = span else {
        return Ok(Reply::Int(0));
    };
    let bytes = &v[s.first..=s.last];
    let mut count: u64 = bytes.iter().map(|b| u64::from(b.count_ones())).sum();
    count -= u64::from((bytes[0] & s.first_outside).count_ones());
    count -= u64::from((bytes[bytes.len() - 1] & s.last_outside).count_ones());
    Ok(Reply::Int(count as i64))
}

fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = int_arg(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::other("ERR The bit argument must be 1 or 0."));
    }
    let want = bit == 1;
    let Some(v) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Int(if want { -1 } else { 0 }));
    };
    let (start, end, end_given, bits) = match args.len() {
        3 => (0, -1, false, false),
        4 => (int_arg(&args[3])?, -1, false, false),
        5 | 6 => {
            // Redis's order: start, the unit, then end.
            let start = int_arg(&args[3])?;
            let bits = unit(args.get(5))?;
            (start, int_arg(&args[4])?, true, bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(s) = span(start, end, bits, v.len()) else {
        return Ok(Reply::Int(-1));
    };
    // Bits outside a BIT range read as the opposite of what is looked for.
    let byte_at = |i: usize| {
        let mut b = v[i];
        for (edge, outside) in [(s.first, s.first_outside), (s.last, s.last_outside)] {
            if i == edge {
                b = if want { b & !outside } else { b | outside };
            }
        }
        b
    };
    for i in s.first..=s.last {
        let b = byte_at(i);
        let hit = if want { b } else { !b };
        if hit != 0 {
            return Ok(Reply::Int(
                (i as i64) * 8 + i64::from(hit.leading_zeros() as u8),
            ));
        }
    }
    // No clear bit: past the end of the string counts as zeros, unless the
    // range's end was given.
    Ok(Reply::Int(if !want && !end_given {
        (s.last as i64 + 1) * 8
    } else {
        -1
    }))
}

// ------------------------------------------------------------- BITOP --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// The operation, and NOT's single source, checked before any key is.
fn bit_op(args: &[Bytes]) -> Result<BitOp, CmdError> {
    let op = match &args[1] {
        a if is(a, "and") => BitOp::And,
        a if is(a, "or") => BitOp::Or,
        a if is(a, "xor") => BitOp::Xor,
        a if is(a, "not") => BitOp::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::other(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    Ok(op)
}

/// The result over `sources` (a missing key is an empty string; shorter
/// strings are padded with zero bytes), as long as the longest.
fn combine(op: BitOp, sources: &[Option<Bytes>]) -> Vec<u8> {
    let len = sources.iter().flatten().map(|s| s.len()).max().unwrap_or(0);
    let byte =
        |s: &Option<Bytes>, i: usize| s.as_ref().and_then(|s| s.get(i)).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let mut b = byte(&sources[0], i);
        if op == BitOp::Not {
            b = !b;
        }
        for s in &sources[1..] {
            let x = byte(s, i);
            match op {
                BitOp::And => b &= x,
                BitOp::Or => b |= x,
                BitOp::Xor => b ^= x,
                BitOp::Not => {}
            }
        }
        out.push(b);
    }
    out
}

/// Stores BITOP's result: an empty one deletes the destination; any
/// other replaces it (its TTL goes). Always a change, as in Redis.
fn store_bitop(ctx: &mut Ctx, dest: &Bytes, result: Vec<u8>) -> CmdResult {
    let now = ctx.now_ms;
    let len = result.len();
    ctx.db().get(dest, now, Lookup::Write);
    if result.is_empty() {
        if ctx.db().remove(dest).is_some() {
            ctx.notify(crate::notify::class::GENERIC, "del", dest);
        }
    } else {
        let value = StrValue::raw(Bytes::from(result));
        ctx.db().set(dest.clone(), Value::Str(value), None);
        ctx.notify(crate::notify::class::STRING, "set", dest);
    }
    ctx.dirty(1);
    Ok(Reply::Int(len as i64))
}

/// BITOP AND|OR|XOR|NOT destkey srckey [srckey ...], every key on this
/// shard.
fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let op = bit_op(args)?;
    let mut sources = Vec::with_capacity(args.len() - 3);
    for k in &args[3..] {
        sources.push(read_str(ctx, k)?);
    }
    store_bitop(ctx, &args[2], combine(op, &sources))
}

/// BITOP whose keys span shards.
pub async fn run_client(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let op = bit_op(args)?;
    let db = client.db;
    let n = client.shard.shards();
    let guard = super::across::hold_keys(&args[2..]).await;
    let found = super::across::read_keys(&guard, db, &args[3..], |ctx, k| read_str(ctx, k)).await;
    // The first key that is not a string answers, as in Redis.
    let sources = found.into_iter().collect::<Result<Vec<_>, _>>()?;
    let result = combine(op, &sources);
    let dest = args[2].clone();
    let reply = guard
        .run(shard_of(&dest, n), move |core| {
            let mut ctx = Ctx::new(core, db);
            store_bitop(&mut ctx, &dest, result)
        })
        .await?;
    super::propagate(client, db, args);
    drop(guard);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitop_pads_shorter_sources_with_zeros() {
        let s = |b: &'static [u8]| Some(Bytes::from_static(b));
        let srcs = [s(b"\xff\x0f"), s(b"\x0f"), None];
        assert_eq!(combine(BitOp::And, &srcs), vec![0, 0]);
        assert_eq!(combine(BitOp::Or, &srcs[..2]), vec![0xff, 0x0f]);
        assert_eq!(combine(BitOp::Xor, &srcs[..2]), vec![0xf0, 0x0f]);
        assert_eq!(combine(BitOp::Not, &srcs[1..2]), vec![0xf0]);
        assert_eq!(combine(BitOp::Or, &[None, None]), Vec::<u8>::new());
    }

    #[test]
    fn spans_follow_redis_range_rules() {
        let s = span(0, -1, false, 3).unwrap();
        assert_eq!(
            (s.first, s.last, s.first_outside, s.last_outside),
            (0, 2, 0, 0)
        );
        assert!(span(2, 1, false, 3).is_none());
        assert!(span(0, -1, false, 0).is_none());
        // Negative indexes out of order clamp to the start (BITPOS).
        let s = span(-9, -13, false, 2).unwrap();
        assert_eq!((s.first, s.last), (0, 0));
        let s = span(-100, 100, false, 3).unwrap();
        assert_eq!((s.first, s.last), (0, 2));
        // Bits 5..=10: bits 0-4 of byte 0 and 5-7 of byte 1 are outside.
        let s = span(5, 10, true, 3).unwrap();
        assert_eq!((s.first, s.last), (0, 1));
        assert_eq!(
            (s.first_outside, s.last_outside),
            (0b1111_1000, 0b0001_1111)
        );
        let s = span(-1, -1, true, 2).unwrap();
        assert_eq!(
            (s.first, s.last, s.first_outside, s.last_outside),
            (1, 1, 0b1111_1110, 0)
        );
    }

    #[test]
    fn bits_are_read_most_significant_first() {
        assert_eq!(bit_at(&[0b1000_0001], 0), 1);
        assert_eq!(bit_at(&[0b1000_0001], 7), 1);
        assert_eq!(bit_at(&[0b1000_0001], 3), 0);
        assert_eq!(bit_at(&[0b1000_0001], 8), 0);
        assert!(bit_offset(b"-1").is_err());
        assert!(bit_offset(b"4294967296").is_err());
        assert_eq!(bit_offset(b"4294967295").unwrap(), 4_294_967_295);
    }
}
