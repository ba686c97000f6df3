//! DUMP and RESTORE: one value serialized as Redis 7.0 serializes it (RDB
//! value encoding, RDB version, CRC64; see `persist::values`), so values
//! move between Cascade and Redis with either server's DUMP and RESTORE.
//!
//! RESTORE follows Redis's order of checks (options, then BUSYKEY, then
//! the TTL, then the payload), and propagates a relative TTL as an
//! absolute one (`ABSTTL`), so replicas and the AOF expire the key at the
//! same moment; a TTL already past stores nothing on a master (a replaced
//! key is deleted, propagated as DEL), as in Redis.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, CommandSpec, Group, Run, Split};
use super::Ctx;
use crate::keyspace::{access, Lookup};
use crate::persist::values::{dump_payload, restore_payload};
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Generic as G;
    vec![
        spec(
            "dump",
            2,
            READONLY,
            (1, 1, 1),
            G,
            "2.6.0",
            "Return a serialized version of the value stored at the specified key.",
            Run::Keyed(dump, Split::None),
        ),
        spec(
            "restore",
            -4,
            WRITE | DENYOOM,
            (1, 1, 1),
            G,
            "2.6.0",
            "Create a key using the provided serialized value, previously obtained using DUMP.",
            Run::Keyed(restore, Split::None),
        ),
    ]
}

/// DUMP key
fn dump(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let Some(value) = ctx.db().get(&args[1], now, Lookup::Read) else {
        ctx.count_read(&args[1], false);
        return Ok(Reply::Nil);
    };
    let payload = dump_payload(value);
    ctx.count_read(&args[1], true);
    Ok(Reply::Bulk(payload.into()))
}

/// RESTORE's options after the payload.
#[derive(Default)]
struct Options {
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

fn options(args: &[Bytes]) -> Result<Options, CmdError> {
    let mut o = Options::default();
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if is(a, "replace") {
            o.replace = true;
        } else if is(a, "absttl") {
            o.absttl = true;
        } else if is(a, "idletime") && more && o.freq.is_none() {
            let idle = parse_i64_strict(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            if idle < 0 {
                return Err(CmdError::other("ERR Invalid IDLETIME value, must be >= 0"));
            }
            o.idle_secs = Some(idle as u64);
            j += 1;
        } else if is(a, "freq") && more && o.idle_secs.is_none() {
            let freq = parse_i64_strict(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            if !(0..=255).contains(&freq) {
                return Err(CmdError::other(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            o.freq = Some(freq as u8);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]
fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let o = options(args)?;
    let key = &args[1];
    let now = ctx.now_ms;
    let exists = ctx.db().get(key, now, Lookup::Write).is_some();
    if exists && !o.replace {
        return Err(CmdError::other("BUSYKEY Target key name already exists."));
    }
    let ttl = parse_i64_strict(&args[2]).ok_or(CmdError::NotInteger)?;
    if ttl < 0 {
        return Err(CmdError::other("ERR Invalid TTL value, must be >= 0"));
    }
    let value = restore_payload(&args[3], &crate::node::encoding_limits())
        .map_err(|e| CmdError::other(e.message()))?;
    let deleted = o.replace && ctx.db().remove(key).is_some();
    let at = match (ttl, o.absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(t.saturating_add(now as i64)),
    };
    if let Some(at) = at {
        // Already past: a master stores nothing (a replica waits for its
        // master's DEL, as with EXPIRE).
        if at <= now as i64 && ctx.db().expire_allowed() {
            if deleted {
                ctx.propagate_as(vec![vec![Bytes::from_static(b"DEL"), key.clone()]]);
                ctx.dirty(1);
                ctx.notify(crate::notify::class::GENERIC, "del", key);
            }
            return Ok(Reply::Ok);
        }
    }
    ctx.db().set(key.clone(), value, at.map(|t| t as u64));
    let stamp = match (o.idle_secs, o.freq) {
        (Some(secs), _) => access::stamp_for_idle(secs),
        (_, Some(freq)) => access::stamp_for_freq(freq),
        _ => None,
    };
    if let Some(stamp) = stamp {
        ctx.db().set_access_stamp(key, stamp);
    }
    if let (Some(at), false) = (at, o.absttl) {
        // Replicas and the AOF get the absolute time.
        let mut cmd = args.to_vec();
        cmd[2] = Bytes::from(at.to_string());
        cmd.push(Bytes::from_static(b"ABSTTL"));
        ctx.propagate_as(vec![cmd]);
    }
    ctx.dirty(1);
    ctx.notify(crate::notify::class::GENERIC, "restore", key);
    Ok(Reply::Ok)
}
