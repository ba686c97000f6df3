//! BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits
//! (unsigned up to 63) at any bit offset of a string, with Redis 7.0's
//! arguments (`#N` offsets counted in fields), overflow modes (WRAP, SAT,
//! FAIL) and errors. Bits are numbered from the most significant bit of
//! the first byte, as for SETBIT.
//!
//! Runs on the shard owning its key. A write grows the string in place
//! (`StrValue::write_at`) to the last bit any SET or INCRBY names, before
//! the operations run, as Redis does: even one that fails on overflow.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::string::{read_str, MAX_STRING};
use super::table::{flag::*, spec, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::{Lookup, StrValue, Value};
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Bitmap as B;
    vec![
        spec(
            "bitfield",
            -2,
            WRITE | DENYOOM,
            (1, 1, 1),
            B,
            "3.2.0",
            "Perform arbitrary bitfield integer operations on strings",
            Run::Keyed(bitfield, Split::None),
        ),
        spec(
            "bitfield_ro",
            -2,
            READONLY | FAST,
            (1, 1, 1),
            B,
            "6.0.0",
            "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
            Run::Keyed(bitfield_ro, Split::None),
        ),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Get,
    Set,
    Incrby,
}

/// One parsed operation.
#[derive(Clone, Copy, Debug)]
struct Op {
    kind: OpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::other(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let max = if signed { 64 } else { 63 };
    match parse_i64_strict(&arg[1..]) {
        Some(bits) if (1..=max).contains(&bits) => Ok((signed, bits as u32)),
        _ => Err(err()),
    }
}

/// A bit offset, or `#N`: the N-th field of this width.
fn field_offset(arg: &[u8], bits: u32) -> Result<u64, CmdError> {
    let err = || CmdError::other("ERR bit offset is not an integer or out of range");
    let (hash, digits) = match arg.split_first() {
        Some((b'#', rest)) => (true, rest),
        _ => (false, arg),
    };
    let mut n = parse_i64_strict(digits).ok_or_else(err)?;
    if hash {
        n = n.wrapping_mul(i64::from(bits));
    }
    u64::try_from(n)
        .ok()
        .filter(|o| o >> 3 < MAX_STRING)
        .ok_or_else(err)
}

/// Parses every operation (all argument errors come before any work).
fn parse(args: &[Bytes]) -> Result<Vec<Op>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let sub = &args[j];
        let kind = if is(sub, "get") && left >= 2 {
            OpKind::Get
        } else if is(sub, "set") && left >= 3 {
            OpKind::Set
        } else if is(sub, "incrby") && left >= 3 {
            OpKind::Incrby
        } else if is(sub, "overflow") && left >= 1 {
            let mode = &args[j + 1];
            overflow = if is(mode, "wrap") {
                Overflow::Wrap
            } else if is(mode, "sat") {
                Overflow::Sat
            } else if is(mode, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::other("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = field_offset(&args[j + 2], bits)?;
        let value = if kind == OpKind::Get {
            0
        } else {
            parse_i64_strict(&args[j + 3]).ok_or(CmdError::NotInteger)?
        };
        ops.push(Op {
            kind,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if kind == OpKind::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// The unsigned integer of `bits` bits at `offset` (bits past the end of
/// the string read as 0).
fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..u64::from(bits) {
        let at = offset + i;
        let bit = s
            .get((at >> 3) as usize)
            .map_or(0, |b| (b >> (7 - (at & 7))) & 1);
        v = (v << 1) | u64::from(bit);
    }
    v
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(s, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

/// Writes the low `bits` bits of `v` at `offset`; the string already
/// reaches that far.
fn set_bits(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..u64::from(bits) {
        let at = offset + i;
        let on = v & (1 << (u64::from(bits) - 1 - i)) != 0;
        let mask = 1u8 << (7 - (at & 7));
        let b = &mut s[(at >> 3) as usize];
        *b = if on { *b | mask } else { *b & !mask };
    }
}

/// `value + incr` for an unsigned field of `bits` bits: `Ok(sum)` when it
/// fits, else `Err(what to store instead)` (the wrapped or saturated
/// value; ignored under FAIL).
fn add_unsigned(value: u64, incr: i64, bits: u32, mode: Overflow) -> Result<u64, u64> {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrapped = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        return Err(if mode == Overflow::Sat {
            max
        } else {
            wrapped()
        });
    }
    if incr < 0 && incr < min_incr {
        return Err(if mode == Overflow::Sat { 0 } else { wrapped() });
    }
    Ok(value.wrapping_add(incr as u64))
}

/// Likewise for a signed field.
fn add_signed(value: i64, incr: i64, bits: u32, mode: Overflow) -> Result<i64, i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrapped = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        return Err(if mode == Overflow::Sat {
            max
        } else {
            wrapped()
        });
    }
    if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr)
    {
        return Err(if mode == Overflow::Sat {
            min
        } else {
            wrapped()
        });
    }
    Ok(value.wrapping_add(incr))
}

/// Runs one SET or INCRBY on `s`: the reply, and what to write (none when
/// FAIL refused it).
fn write_op(s: &[u8], op: &Op) -> (Reply, Option<u64>) {
    let (old_signed, old_unsigned) = (
        get_signed(s, op.offset, op.bits),
        get_unsigned(s, op.offset, op.bits),
    );
    let (new, reply, overflowed) = if op.signed {
        let (incr, base) = match op.kind {
            OpKind::Incrby => (op.value, old_signed),
            _ => (0, op.value),
        };
        let (new, overflowed) = match add_signed(base, incr, op.bits, op.overflow) {
            Ok(v) => (v, false),
            Err(v) => (v, true),
        };
        let reply = if op.kind == OpKind::Incrby {
            new
        } else {
            old_signed
        };
        (new as u64, Reply::Int(reply), overflowed)
    } else {
        let (incr, base) = match op.kind {
            OpKind::Incrby => (op.value, old_unsigned),
            _ => (0, op.value as u64),
        };
        let (new, overflowed) = match add_unsigned(base, incr, op.bits, op.overflow) {
            Ok(v) => (v, false),
            Err(v) => (v, true),
        };
        let reply = if op.kind == OpKind::Incrby {
            new
        } else {
            old_unsigned
        };
        (new, Reply::Int(reply as i64), overflowed)
    };
    if overflowed && op.overflow == Overflow::Fail {
        (Reply::Nil, None)
    } else {
        (reply, Some(new))
    }
}

fn read_op(s: &[u8], op: &Op) -> Reply {
    if op.signed {
        Reply::Int(get_signed(s, op.offset, op.bits))
    } else {
        Reply::Int(get_unsigned(s, op.offset, op.bits) as i64)
    }
}

/// BITFIELD key [GET type offset] [SET type offset value]
/// [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL] ...
fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false)
}

/// BITFIELD_RO key [GET type offset] ...
fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true)
}

fn run(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let ops = parse(args)?;
    let last_written = ops
        .iter()
        .filter(|op| op.kind != OpKind::Get)
        .map(|op| op.offset + u64::from(op.bits) - 1)
        .max();
    let Some(last_bit) = last_written else {
        // Only reads: a missing key reads as zeros.
        let s = read_str(ctx, &args[1])?.unwrap_or_default();
        return Ok(Reply::Array(ops.iter().map(|op| read_op(&s, op)).collect()));
    };
    if read_only {
        return Err(CmdError::other(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    // Make room up to the last bit written, creating the key if needed.
    let (key, len) = (&args[1], (last_bit >> 3) as usize + 1);
    let now = ctx.now_ms;
    let s = match ctx.db().get(key, now, Lookup::Write) {
        Some(Value::Str(s)) => s,
        #[allow(unreachable_patterns)]
        Some(_) => return Err(CmdError::WrongType),
        None => {
            ctx.db()
                .set(key.clone(), Value::Str(StrValue::raw(Bytes::new())), None);
            match ctx.db().get(key, now, Lookup::Write) {
                Some(Value::Str(s)) => s,
                _ => return Err(CmdError::WrongType),
            }
        }
    };
    let (replies, changes) = s.edit(|buf| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let mut replies = Vec::with_capacity(ops.len());
        // Writes that happened (an overflow with FAIL writes nothing).
        let mut changes = 0u64;
        for op in &ops {
            if op.kind == OpKind::Get {
                replies.push(read_op(buf, op));
                continue;
            }
            let (reply, write) = write_op(buf, op);
            if let Some(v) = write {
                set_bits(buf, op.offset, op.bits, v);
                changes += 1;
            }
            replies.push(reply);
        }
        (replies, changes)
    });
    ctx.dirty(changes);
    if changes > 0 {
        ctx.notify(crate::notify::class::STRING, "setbit", key);
    }
    Ok(Reply::Array(replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_and_write_at_any_bit_offset() {
        let mut s = vec![0u8; 10];
        set_bits(&mut s, 3, 13, 0x1abc);
        assert_eq!(get_unsigned(&s, 3, 13), 0x1abc);
        assert_eq!(get_signed(&s, 3, 13), 0x1abc - 0x2000);
        set_bits(&mut s, 7, 64, u64::MAX - 5);
        assert_eq!(get_signed(&s, 7, 64), -6);
        assert_eq!(get_unsigned(&[0xff], 4, 8), 0xf0, "past the end reads 0");
    }

    #[test]
    fn overflow_wraps_saturates_or_fails() {
        assert_eq!(add_unsigned(250, 10, 8, Overflow::Wrap), Err(4));
        assert_eq!(add_unsigned(250, 10, 8, Overflow::Sat), Err(255));
        assert_eq!(add_unsigned(5, -10, 8, Overflow::Sat), Err(0));
        assert_eq!(add_unsigned(5, -10, 8, Overflow::Wrap), Err(251));
        assert_eq!(add_unsigned(5, -5, 8, Overflow::Wrap), Ok(0));
        assert_eq!(add_signed(120, 10, 8, Overflow::Wrap), Err(-126));
        assert_eq!(add_signed(120, 10, 8, Overflow::Sat), Err(127));
        assert_eq!(add_signed(-120, -10, 8, Overflow::Sat), Err(-128));
        assert_eq!(add_signed(i64::MAX, 1, 64, Overflow::Wrap), Err(i64::MIN));
        assert_eq!(add_signed(i64::MIN, -1, 64, Overflow::Sat), Err(i64::MIN));
        assert_eq!(add_signed(-1, 1, 64, Overflow::Fail), Ok(0));
    }

    #[test]
    fn types_and_offsets_parse_like_redis() {
        assert_eq!(field_type(b"i64").unwrap(), (true, 64));
        assert_eq!(field_type(b"u63").unwrap(), (false, 63));
        for bad in [&b"u64"[..], b"i65", b"i0", b"I8", b"x8", b"", b"u"] {
            assert!(field_type(bad).is_err());
        }
        assert_eq!(field_offset(b"#3", 8).unwrap(), 24);
        assert_eq!(field_offset(b"17", 8).unwrap(), 17);
        assert!(field_offset(b"-1", 8).is_err());
        assert!(field_offset(b"#-1", 8).is_err());
        assert!(field_offset(b"4294967296", 8).is_err());
    }
}
