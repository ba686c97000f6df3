//! Typed key lookups for the collection families: a key's hash, set, list,
//! sorted set or stream for
//! reading (counting keyspace hits and misses as Redis's lookupKeyRead
//! does) or for changing in place (a `Lookup::Write` lookup, which runs the
//! snapshot's copy-on-write hook before the caller touches the value, and
//! marks a watched key touched once the command reports a change).
//! WRONGTYPE for a key of another type. Depends on `keyspace` and `Ctx`.

use super::error::CmdError;
use super::Ctx;
use crate::keyspace::{HashValue, ListValue, Lookup, SetValue, StreamValue, Value, ZsetValue};

/// The key's value for a read, with hit/miss statistics.
pub fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut Value> {
    let (now, db) = (ctx.now_ms, ctx.db);
    // A miss announced after the lookup's own `expired`, as Redis orders
    // them; only then is the key looked up twice.
    if crate::notify::wants(crate::notify::class::KEY_MISS)
        && ctx.core.ks.dbs_mut()[db]
            .get(key, now, Lookup::Read)
            .is_none()
    {
        ctx.count_read(key, false);
        return None;
    }
    let core = &mut *ctx.core;
    let found = core.ks.dbs_mut()[db].get(key, now, Lookup::Read);
    if found.is_some() {
        core.stats.keyspace_hits += 1;
    } else {
        core.stats.keyspace_misses += 1;
    }
    found
}

/// The key's value as the input of a command that stores its result at
/// another key (see `Lookup::Source`; no statistics, the caller counts).
pub fn source<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut Value> {
    let now = ctx.now_ms;
    ctx.db().get(key, now, Lookup::Source)
}

/// The key's value for a change (no statistics, as Redis's lookupKeyWrite).
pub fn write<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut Value> {
    let now = ctx.now_ms;
    ctx.db().get(key, now, Lookup::Write)
}

pub fn read_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a HashValue>, CmdError> {
    match read(ctx, key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn write_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut HashValue>, CmdError> {
    match write(ctx, key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn read_set<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a SetValue>, CmdError> {
    match read(ctx, key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn write_set<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut SetValue>, CmdError> {
    match write(ctx, key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn read_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a ZsetValue>, CmdError> {
    match read(ctx, key) {
        None => Ok(None),
        Some(Value::Zset(z)) => Ok(Some(z)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn read_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a ListValue>, CmdError> {
    match read(ctx, key) {
        None => Ok(None),
        Some(Value::List(l)) => {
            l.recompress();
            Ok(Some(l))
        }
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn write_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ZsetValue>, CmdError> {
    match write(ctx, key) {
        None => Ok(None),
        Some(Value::Zset(z)) => Ok(Some(z)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn write_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ListValue>, CmdError> {
    match write(ctx, key) {
        None => Ok(None),
        Some(Value::List(l)) => {
            // Nodes a previous read decompressed are compressed again.
            l.recompress();
            Ok(Some(l))
        }
        Some(_) => Err(CmdError::WrongType),
    }
}

/// The stream for a change Redis does not signal as a change of the key
/// (consumer groups, XSETID): a WATCH of it survives, a tracking reader
/// is not invalidated (see `Lookup::Silent`).
pub fn write_stream_silent<'a>(
    ctx: &'a mut Ctx,
    key: &[u8],
) -> Result<Option<&'a mut StreamValue>, CmdError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now, Lookup::Silent) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn read_stream<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a StreamValue>, CmdError> {
    match read(ctx, key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub fn write_stream<'a>(
    ctx: &'a mut Ctx,
    key: &[u8],
) -> Result<Option<&'a mut StreamValue>, CmdError> {
    match write(ctx, key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WrongType),
    }
}
