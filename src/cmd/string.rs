//! String commands: GET SET (EX PX EXAT PXAT NX XX KEEPTTL GET) SETNX SETEX
//! PSETEX GETSET GETDEL GETEX MGET MSET INCR DECR INCRBY DECRBY INCRBYFLOAT
//! APPEND STRLEN GETRANGE SUBSTR SETRANGE. (MSETNX needs a check across
//! shards before writing, so it lives with the coordinated commands in
//! `keys`.)
//!
//! Every handler runs on the shard owning its key and returns a reply.

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::{Lookup, StrValue, Value};
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

/// Redis's hard limit on a string built by APPEND, SETRANGE or SETBIT.
pub(super) const MAX_STRING: u64 = 512 * 1024 * 1024;

pub fn commands() -> Vec<CommandSpec> {
    use Group::String as S;
    let k1 = (1, 1, 1);
    vec![
        spec(
            "get",
            2,
            READONLY | FAST,
            k1,
            S,
            "1.0.0",
            "Get the value of a key",
            Run::Keyed(get, Split::None),
        ),
        spec(
            "set",
            -3,
            WRITE | DENYOOM,
            k1,
            S,
            "1.0.0",
            "Set the string value of a key",
            Run::Keyed(set, Split::None),
        ),
        spec(
            "setnx",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Set the value of a key, only if the key does not exist",
            Run::Keyed(setnx, Split::None),
        ),
        spec(
            "setex",
            4,
            WRITE | DENYOOM,
            k1,
            S,
            "2.0.0",
            "Set the value and expiration of a key",
            Run::Keyed(setex, Split::None),
        ),
        spec(
            "psetex",
            4,
            WRITE | DENYOOM,
            k1,
            S,
            "2.6.0",
            "Set the value and expiration in milliseconds of a key",
            Run::Keyed(psetex, Split::None),
        ),
        spec(
            "getset",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Set the string value of a key and return its old value",
            Run::Keyed(getset, Split::None),
        ),
        spec(
            "getdel",
            2,
            WRITE | FAST,
            k1,
            S,
            "6.2.0",
            "Get the value of a key and delete the key",
            Run::Keyed(getdel, Split::None),
        ),
        spec(
            "getex",
            -2,
            WRITE | FAST,
            k1,
            S,
            "6.2.0",
            "Get the value of a key and optionally set its expiration",
            Run::Keyed(getex, Split::None),
        ),
        spec(
            "mget",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            S,
            "1.0.0",
            "Get the values of all the given keys",
            Run::Keyed(mget, Split::Gather),
        ),
        spec(
            "mset",
            -3,
            WRITE | DENYOOM,
            (1, -1, 2),
            S,
            "1.0.1",
            "Set multiple keys to multiple values",
            Run::Keyed(mset, Split::AllOk),
        ),
        spec(
            "incr",
            2,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Increment the integer value of a key by one",
            Run::Keyed(incr, Split::None),
        ),
        spec(
            "decr",
            2,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Decrement the integer value of a key by one",
            Run::Keyed(decr, Split::None),
        ),
        spec(
            "incrby",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Increment the integer value of a key by the given amount",
            Run::Keyed(incrby, Split::None),
        ),
        spec(
            "decrby",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "1.0.0",
            "Decrement the integer value of a key by the given number",
            Run::Keyed(decrby, Split::None),
        ),
        spec(
            "incrbyfloat",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "2.6.0",
            "Increment the float value of a key by the given amount",
            Run::Keyed(incrbyfloat, Split::None),
        ),
        spec(
            "append",
            3,
            WRITE | DENYOOM | FAST,
            k1,
            S,
            "2.0.0",
            "Append a value to a key",
            Run::Keyed(append, Split::None),
        ),
        spec(
            "strlen",
            2,
            READONLY | FAST,
            k1,
            S,
            "2.2.0",
            "Get the length of the value stored in a key",
            Run::Keyed(strlen, Split::None),
        ),
        spec(
            "getrange",
            4,
            READONLY,
            k1,
            S,
            "2.4.0",
            "Get a substring of the string stored at a key",
            Run::Keyed(getrange, Split::None),
        ),
        spec(
            "substr",
            4,
            READONLY,
            k1,
            S,
            "1.0.0",
            "Get a substring of the string stored at a key",
            Run::Keyed(getrange, Split::None),
        ),
        spec(
            "setrange",
            4,
            WRITE | DENYOOM,
            k1,
            S,
            "2.2.0",
            "Overwrite part of a string at key starting at the specified offset",
            Run::Keyed(setrange, Split::None),
        ),
    ]
}

/// Reads a string key: `Ok(None)` when missing, WRONGTYPE for other types.
/// Counts keyspace hits and misses like Redis's lookupKeyRead.
/// Values up to this long are copied into the reply rather than shared:
/// sharing bumps a reference count that lives in its own allocation (a
/// cache miss of its own per GET, and 24 more bytes per value once a value
/// was first shared), while the value's bytes are needed anyway to write
/// the reply.
const COPY_UP_TO: usize = 128;

pub fn read_str(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    let now = ctx.now_ms;
    let found = match ctx.db().get(key, now, Lookup::Read) {
        None => None,
        Some(Value::Str(s)) if s.len() <= COPY_UP_TO => Some(Bytes::copy_from_slice(s.bytes())),
        Some(Value::Str(s)) => Some(s.bytes().clone()),
        #[allow(unreachable_patterns)]
        Some(_) => return Err(CmdError::WrongType),
    };
    ctx.count_read(key, found.is_some());
    Ok(found)
}

/// Looks a key up for writing: `Ok(None)` when missing, WRONGTYPE for other types.
fn write_str(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now, Lookup::Write) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.bytes().clone())),
        #[allow(unreachable_patterns)]
        Some(_) => Err(CmdError::WrongType),
    }
}

fn exists_live(ctx: &mut Ctx, key: &[u8]) -> bool {
    let now = ctx.now_ms;
    ctx.db().get(key, now, Lookup::Write).is_some()
}

fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(read_str(ctx, &args[1])?.map_or(Reply::Nil, Reply::Bulk))
}

/// When a SET-like command's key should expire.
#[derive(Clone, Copy)]
enum Expiry {
    None,
    KeepTtl,
    At(u64),
}

/// Converts a relative or absolute expire argument to unix ms, with
/// Redis's checks (positive, no overflow).
fn expire_at(
    ctx: &Ctx,
    value: &[u8],
    unit_ms: i64,
    absolute: bool,
    cmd: &'static str,
) -> Result<u64, CmdError> {
    let n = int_arg(value)?;
    if n <= 0 {
        return Err(CmdError::InvalidExpireTime(cmd));
    }
    let ms = n
        .checked_mul(unit_ms)
        .ok_or(CmdError::InvalidExpireTime(cmd))?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(ctx.now_ms as i64)
            .ok_or(CmdError::InvalidExpireTime(cmd))?
    };
    Ok(at as u64)
}

/// The expiry options SET and GETEX share.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TtlOption {
    None,
    KeepTtl,
    Persist,
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// SET's and GETEX's options (Redis's parseExtendedStringArgumentsOrReply):
/// one kind of expiry at most, though the same option may repeat and its
/// last value wins; the value itself is checked later, by the caller, as
/// Redis does (so `EX -1 EX 100` sets 100, and a syntax error after a bad
/// value still reads as a syntax error).
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    ttl: TtlOption,
    ttl_value: Option<&'a [u8]>,
}

fn string_options<'a>(
    args: &'a [Bytes],
    from: usize,
    set: bool,
) -> Result<StringOptions<'a>, CmdError> {
    let mut o = StringOptions {
        nx: false,
        xx: false,
        get: false,
        ttl: TtlOption::None,
        ttl_value: None,
    };
    let mut i = from;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        // An expiry kind may follow itself, never another kind.
        let free_for = |kind: TtlOption| o.ttl == TtlOption::None || o.ttl == kind;
        let timed = [
            ("ex", TtlOption::Ex),
            ("px", TtlOption::Px),
            ("exat", TtlOption::ExAt),
            ("pxat", TtlOption::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| is(a, name));
        if set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(a, "get") {
            o.get = true;
        } else if set && is(a, "keepttl") && free_for(TtlOption::KeepTtl) {
            o.ttl = TtlOption::KeepTtl;
        } else if !set && is(a, "persist") && free_for(TtlOption::Persist) {
            o.ttl = TtlOption::Persist;
        } else if let (Some((_, kind)), Some(value)) = (timed, next) {
            if !free_for(kind) {
                return Err(CmdError::Syntax);
            }
            o.ttl = kind;
            o.ttl_value = Some(value);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

impl StringOptions<'_> {
    /// The expiry as unix ms, with Redis's checks of the value.
    fn expiry(&self, ctx: &Ctx, cmd: &'static str) -> Result<Expiry, CmdError> {
        let (unit, absolute) = match self.ttl {
            TtlOption::None | TtlOption::Persist => return Ok(Expiry::None),
            TtlOption::KeepTtl => return Ok(Expiry::KeepTtl),
            TtlOption::Ex => (1000, false),
            TtlOption::Px => (1, false),
            TtlOption::ExAt => (1000, true),
            TtlOption::PxAt => (1, true),
        };
        let value = self.ttl_value.unwrap_or_default();
        Ok(Expiry::At(expire_at(ctx, value, unit, absolute, cmd)?))
    }
}

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = string_options(args, 3, true)?;
    let expiry = options.expiry(ctx, "set")?;
    let (nx, xx, get_old) = (options.nx, options.xx, options.get);
    let key = &args[1];
    let old = if get_old { read_str(ctx, key)? } else { None };
    let exists = if get_old {
        old.is_some()
    } else {
        exists_live(ctx, key)
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(if get_old {
            old.map_or(Reply::Nil, Reply::Bulk)
        } else {
            Reply::Nil
        });
    }
    store(ctx, key, StrValue::from_set(args[2].clone()), expiry);
    // Replicas get the plain write with an absolute expiry.
    match expiry {
        Expiry::At(at) => ctx.propagate_as(vec![set_pxat(key, &args[2], at)]),
        Expiry::KeepTtl if args.len() > 4 => ctx.propagate_as(vec![vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            args[2].clone(),
            Bytes::from_static(b"KEEPTTL"),
        ]]),
        Expiry::None if args.len() > 3 => ctx.propagate_as(vec![vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            args[2].clone(),
        ]]),
        _ => {}
    }
    Ok(if get_old {
        old.map_or(Reply::Nil, Reply::Bulk)
    } else {
        Reply::Ok
    })
}

/// `SET key value PXAT at`: how every relative or absolute expiry set with
/// a value is propagated.
fn set_pxat(key: &Bytes, value: &Bytes, at: u64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        value.clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]
}

fn store(ctx: &mut Ctx, key: &Bytes, v: StrValue, expiry: Expiry) {
    let db = ctx.db();
    match expiry {
        Expiry::None => db.set(key.clone(), Value::Str(v), None),
        Expiry::At(at) => db.set(key.clone(), Value::Str(v), Some(at)),
        Expiry::KeepTtl => db.set_keep_ttl(key.clone(), Value::Str(v)),
    }
    ctx.dirty(1);
    ctx.notify(class::STRING, "set", key);
    if let Expiry::At(_) = expiry {
        ctx.notify(class::GENERIC, "expire", key);
    }
}

fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if exists_live(ctx, &args[1]) {
        return Ok(Reply::Int(0));
    }
    store(
        ctx,
        &args[1],
        StrValue::from_set(args[2].clone()),
        Expiry::None,
    );
    Ok(Reply::Int(1))
}

fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let at = expire_at(ctx, &args[2], 1000, false, "setex")?;
    store(
        ctx,
        &args[1],
        StrValue::from_set(args[3].clone()),
        Expiry::At(at),
    );
    ctx.propagate_as(vec![set_pxat(&args[1], &args[3], at)]);
    Ok(Reply::Ok)
}

fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let at = expire_at(ctx, &args[2], 1, false, "psetex")?;
    store(
        ctx,
        &args[1],
        StrValue::from_set(args[3].clone()),
        Expiry::At(at),
    );
    ctx.propagate_as(vec![set_pxat(&args[1], &args[3], at)]);
    Ok(Reply::Ok)
}

fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let old = write_str(ctx, &args[1])?;
    store(
        ctx,
        &args[1],
        StrValue::from_set(args[2].clone()),
        Expiry::None,
    );
    Ok(old.map_or(Reply::Nil, Reply::Bulk))
}

fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let old = read_str(ctx, &args[1])?;
    if old.is_some() {
        ctx.db().remove(&args[1]);
        ctx.dirty(1);
        ctx.notify(class::GENERIC, "del", &args[1]);
        ctx.propagate_as(vec![vec![Bytes::from_static(b"DEL"), args[1].clone()]]);
    }
    Ok(old.map_or(Reply::Nil, Reply::Bulk))
}

fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = string_options(args, 2, false)?;
    // Redis looks the key up (and checks its type) before the expiry.
    let Some(v) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Nil);
    };
    let change = options.expiry(ctx, "getex")?;
    if options.ttl == TtlOption::Persist {
        if ctx.db().persist(&args[1]) {
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "persist", &args[1]);
            ctx.propagate_as(vec![vec![Bytes::from_static(b"PERSIST"), args[1].clone()]]);
        }
    } else if let Expiry::At(at) = change {
        // A replica keeps the key until its master's DEL arrives.
        if at <= ctx.now_ms && ctx.db().expire_allowed() {
            ctx.db().remove(&args[1]);
            ctx.notify(class::GENERIC, "del", &args[1]);
            ctx.propagate_as(vec![vec![Bytes::from_static(b"DEL"), args[1].clone()]]);
        } else {
            ctx.db().set_expire(&args[1], at);
            ctx.notify(class::GENERIC, "expire", &args[1]);
            ctx.propagate_as(vec![vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                Bytes::from(at.to_string()),
            ]]);
        }
        ctx.dirty(1);
    }
    Ok(Reply::Bulk(v))
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        // MGET answers nil for keys of other types instead of failing.
        out.push(match read_str(ctx, key) {
            Ok(Some(v)) => Reply::Bulk(v),
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::other(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&args[0]).to_lowercase()
        )));
    }
    for pair in args[1..].chunks_exact(2) {
        store(
            ctx,
            &pair[0],
            StrValue::from_set(pair[1].clone()),
            Expiry::None,
        );
    }
    Ok(Reply::Ok)
}

fn incr_by(ctx: &mut Ctx, key: &Bytes, by: i64) -> CmdResult {
    let now = ctx.now_ms;
    // An existing counter is changed in place (a write lookup allows it):
    // one dict lookup, no copy of the key or the old value.
    let next = match ctx.db().get(key, now, Lookup::Write) {
        Some(Value::Str(s)) => {
            let current = s.as_int().ok_or(CmdError::NotInteger)?;
            let next = current.checked_add(by).ok_or(CmdError::Overflow)?;
            *s = StrValue::from_int(next);
            next
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            ctx.db()
                .set_keep_ttl(key.clone(), Value::Str(StrValue::from_int(by)));
            by
        }
    };
    ctx.dirty(1);
    ctx.notify(class::STRING, "incrby", key);
    Ok(Reply::Int(next))
}

fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], int_arg(&args[2])?)
}

fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = int_arg(&args[2])?;
    let neg = by
        .checked_neg()
        .ok_or_else(|| CmdError::other("ERR decrement would overflow"))?;
    incr_by(ctx, &args[1], neg)
}

fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use crate::util::ldouble::{incr_by_float, IncrError};
    let current = write_str(ctx, &args[1])?;
    // x87 long double arithmetic and printing, exactly as Redis computes it
    // (0.1 + 0.2 is "0.3" there, not f64's 0.30000000000000004).
    let text = match incr_by_float(current.as_deref(), &args[2]) {
        Ok(t) => t,
        Err(IncrError::NanOrInfinity) => {
            return Err(CmdError::other(
                "ERR increment would produce NaN or Infinity",
            ))
        }
        Err(_) => return Err(CmdError::NotFloat),
    };
    let text = Bytes::from(text);
    // Never an integer encoding, even for "5": Redis stores the
    // formatted float as a plain string.
    ctx.db()
        .set_keep_ttl(args[1].clone(), Value::Str(StrValue::text(text.clone())));
    ctx.dirty(1);
    ctx.notify(class::STRING, "incrbyfloat", &args[1]);
    // The float's text, not the increment: replicas must not redo the
    // arithmetic (precision could differ).
    ctx.propagate_as(vec![vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        text.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]]);
    Ok(Reply::Bulk(text))
}

fn check_size(len: u64) -> Result<(), CmdError> {
    if len > MAX_STRING {
        return Err(CmdError::other(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, tail) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    // An existing string grows in place (a write lookup allows it):
    // appending to a long string costs only the appended bytes.
    let len = match ctx.db().get(key, now, Lookup::Write) {
        Some(Value::Str(s)) => {
            check_size(s.len() as u64 + tail.len() as u64)?;
            let end = s.len();
            s.write_at(end, tail)
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            let v = StrValue::from_set(tail.clone());
            ctx.db().set_keep_ttl(key.clone(), Value::Str(v));
            tail.len()
        }
    };
    ctx.dirty(1);
    ctx.notify(class::STRING, "append", key);
    Ok(Reply::Int(len as i64))
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_str(ctx, &args[1])?.map_or(0, |v| v.len() as i64),
    ))
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let Some(v) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    Ok(Reply::Bulk(substring(&v, start, end)))
}

/// GETRANGE's index rules: negative counts from the end, clamped; an empty
/// result when the range is inverted (start and end both negative and
/// start > end included).
pub fn substring(v: &Bytes, mut start: i64, mut end: i64) -> Bytes {
    let len = v.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Bytes::new();
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if len == 0 || start > end || start >= len {
        return Bytes::new();
    }
    end = end.min(len - 1);
    v.slice(start as usize..=end as usize)
}

fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = int_arg(&args[2])?;
    if offset < 0 {
        return Err(CmdError::other("ERR offset is out of range"));
    }
    let (key, value) = (&args[1], &args[3]);
    let now = ctx.now_ms;
    let len = match ctx.db().get(key, now, Lookup::Write) {
        // Nothing to write: report the current length, create nothing.
        Some(Value::Str(s)) if value.is_empty() => return Ok(Reply::Int(s.len() as i64)),
        None if value.is_empty() => return Ok(Reply::Int(0)),
        Some(Value::Str(s)) => {
            check_size(offset as u64 + value.len() as u64)?;
            s.write_at(offset as usize, value)
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            check_size(offset as u64 + value.len() as u64)?;
            let mut v = StrValue::raw(Bytes::new());
            let len = v.write_at(offset as usize, value);
            ctx.db().set_keep_ttl(key.clone(), Value::Str(v));
            len
        }
    };
    ctx.dirty(1);
    ctx.notify(class::STRING, "setrange", key);
    Ok(Reply::Int(len as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_follows_getrange_rules() {
        let v = Bytes::from_static(b"This is a string");
        assert_eq!(substring(&v, 0, 3), Bytes::from_static(b"This"));
        assert_eq!(substring(&v, -3, -1), Bytes::from_static(b"ing"));
        assert_eq!(substring(&v, 0, -1), v);
        assert_eq!(substring(&v, 10, 100), Bytes::from_static(b"string"));
        assert_eq!(substring(&v, 5, 3), Bytes::new());
        assert_eq!(substring(&v, -1, -5), Bytes::new());
        assert_eq!(substring(&Bytes::new(), 0, -1), Bytes::new());
    }
}
