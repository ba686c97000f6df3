//! Consumer group commands on one stream: XGROUP, XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM and XINFO, with Redis 7.0's arguments, replies, errors and
//! propagation. XREADGROUP, which reads several streams, is with XREAD in
//! `stream`; the groups themselves are `keyspace::stream::groups`.
//!
//! Propagation is Redis's: every pending entry a command creates, moves or
//! drops goes to replicas as an idempotent `XCLAIM key group consumer 0 id
//! TIME ms RETRYCOUNT n FORCE JUSTID LASTID last-id` ([`xclaim_command`]),
//! a moved last delivered ID as `XGROUP SETID key group id ENTRIESREAD n`
//! ([`setid_command`]), and the XGROUP subcommands and XACK as sent.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::lookup::{read_stream, write_stream_silent};
use super::server::{help, sub_arity, unknown_sub};
use super::stream::{add_empty_stream, entry_reply, interval_id, parse_id, strict_id};
use super::table::{flag::*, spec, CommandSpec, Group as G, Run, Split};
use super::Ctx;
use crate::keyspace::stream::{Group, Pending, StreamValue, ENTRIES_READ_UNKNOWN};
use crate::keyspace::StreamId;
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use G::Stream as S;
    let k1 = (1, 1, 1);
    vec![
        spec("xgroup", -2, WRITE, (2, 2, 1), S, "5.0.0", "A container for consumer groups commands", Run::Keyed(xgroup, Split::None)),
        spec("xack", -4, WRITE | FAST, k1, S, "5.0.0", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", Run::Keyed(xack, Split::None)),
        spec("xpending", -3, READONLY, k1, S, "5.0.0", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", Run::Keyed(xpending, Split::None)),
        spec("xclaim", -6, WRITE | FAST, k1, S, "5.0.0", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", Run::Keyed(xclaim, Split::None)),
        spec("xautoclaim", -6, WRITE | FAST, k1, S, "6.2.0", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", Run::Keyed(xautoclaim, Split::None)),
        spec("xinfo", -2, READONLY, (2, 2, 1), S, "5.0.0", "A container for stream introspection commands", Run::Keyed(xinfo, Split::None)),
    ]
}

fn bulk(s: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(s.as_bytes()))
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `NOGROUP` for XCLAIM, XAUTOCLAIM and XPENDING.
fn no_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::other(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    ))
}

/// `NOGROUP` for XGROUP's subcommands and XINFO CONSUMERS.
fn no_group_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::other(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

/// Redis's addReplySubcommandSyntaxError.
fn sub_syntax(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::other(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        text(sub)
    ))
}

/// What replicas get for pending entry `id` of `group` as it is now (or
/// as it was, for an entry being dropped): an XCLAIM that sets it exactly.
pub(super) fn xclaim_command(
    key: &Bytes,
    group_name: &Bytes,
    group: &Group,
    id: StreamId,
    p: &Pending,
) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XCLAIM"),
        key.clone(),
        group_name.clone(),
        p.consumer.clone(),
        Bytes::from_static(b"0"),
        id.to_bytes(),
        Bytes::from_static(b"TIME"),
        Bytes::from(p.delivery_ms.to_string()),
        Bytes::from_static(b"RETRYCOUNT"),
        Bytes::from(p.deliveries.to_string()),
        Bytes::from_static(b"FORCE"),
        Bytes::from_static(b"JUSTID"),
        Bytes::from_static(b"LASTID"),
        group.last_id.to_bytes(),
    ]
}

/// What replicas get for a group's last delivered ID and read counter.
pub(super) fn setid_command(key: &Bytes, group_name: &Bytes, group: &Group) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"SETID"),
        key.clone(),
        group_name.clone(),
        group.last_id.to_bytes(),
        Bytes::from_static(b"ENTRIESREAD"),
        Bytes::from(group.entries_read.to_string()),
    ]
}

/// An ENTRIESREAD value: a count or -1.
fn entries_read_arg(arg: &[u8]) -> Result<i64, CmdError> {
    let n = parse_i64_strict(arg).ok_or(CmdError::NotInteger)?;
    if n < 0 && n != ENTRIES_READ_UNKNOWN {
        return Err(CmdError::other(
            "ERR value for ENTRIESREAD must be positive or -1",
        ));
    }
    Ok(n)
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP ...
fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let (name, arity_ok) = match &sub[..] {
        b"help" => ("help", args.len() == 2),
        b"create" => ("create", args.len() >= 5),
        b"setid" => ("setid", args.len() >= 5),
        b"destroy" => ("destroy", args.len() == 4),
        b"createconsumer" => ("createconsumer", args.len() == 5),
        b"delconsumer" => ("delconsumer", args.len() == 5),
        _ => return Err(unknown_sub("xgroup", &args[1])),
    };
    if !arity_ok {
        return Err(sub_arity("xgroup", name));
    }
    if name == "help" {
        return help(XGROUP_HELP);
    }
    let (key, group_name) = (&args[2], &args[3]);
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    if name == "create" {
        let mut i = 5;
        while i < args.len() {
            if is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(&args[i], "entriesread") && i + 1 < args.len() {
                entries_read = entries_read_arg(&args[i + 1])?;
                i += 2;
            } else {
                return Err(sub_syntax("XGROUP", &args[1]));
            }
        }
    }
    if name == "setid" && args.len() == 7 {
        if !is(&args[5], "entriesread") {
            return Err(sub_syntax("XGROUP", &args[1]));
        }
        entries_read = entries_read_arg(&args[6])?;
    }
    // What the key holds: its last ID, and whether it has the group.
    let found =
        write_stream_silent(ctx, key)?.map(|s| (s.last_id, s.groups.contains_key(&group_name[..])));
    let exists = found.is_some();
    let (last, has_group) = found.unwrap_or((StreamId::MIN, false));
    if !exists && !mkstream {
        return Err(CmdError::other("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    if !has_group && matches!(name, "setid" | "createconsumer" | "delconsumer") {
        return Err(no_group_for_key(group_name, key));
    }
    let now = ctx.now_ms as i64;
    match name {
        "create" => {
            if args.len() > 8 {
                return Err(sub_syntax("XGROUP", &args[1]));
            }
            let id = match &args[4][..] {
                b"$" => last,
                arg => strict_id(arg)?,
            };
            if !exists {
                add_empty_stream(ctx, key);
            }
            let Some(s) = write_stream_silent(ctx, key)? else {
                return Ok(Reply::Nil);
            };
            if s.groups.contains_key(&group_name[..]) {
                return Err(CmdError::other(
                    "BUSYGROUP Consumer Group name already exists",
                ));
            }
            s.groups
                .insert(group_name.clone(), Group::new(id, entries_read));
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-create", key);
            Ok(Reply::Ok)
        }
        "setid" => {
            if args.len() != 5 && args.len() != 7 {
                return Err(sub_syntax("XGROUP", &args[1]));
            }
            let id = match &args[4][..] {
                b"$" => last,
                arg => parse_id(arg, false, 0, false)?.0,
            };
            if let Some(g) =
                write_stream_silent(ctx, key)?.and_then(|s| s.groups.get_mut(&group_name[..]))
            {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-setid", key);
            Ok(Reply::Ok)
        }
        "destroy" => {
            let removed = write_stream_silent(ctx, key)?
                .and_then(|s| s.groups.remove(&group_name[..]))
                .is_some();
            if !removed {
                return Ok(Reply::Int(0));
            }
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-destroy", key);
            // Blocked XREADGROUPs on it get NOGROUP.
            ctx.db().mark_ready(key);
            Ok(Reply::Int(1))
        }
        "createconsumer" => {
            let created = write_stream_silent(ctx, key)?
                .and_then(|s| s.groups.get_mut(&group_name[..]))
                .is_some_and(|g| g.add_consumer(&args[4], now));
            if created {
                ctx.dirty(1);
                ctx.notify(class::STREAM, "xgroup-createconsumer", key);
            }
            Ok(Reply::Int(i64::from(created)))
        }
        _ => {
            let pending = write_stream_silent(ctx, key)?
                .and_then(|s| s.groups.get_mut(&group_name[..]))
                .and_then(|g| g.remove_consumer(&args[4]));
            match pending {
                Some(n) => {
                    ctx.dirty(1);
                    ctx.notify(class::STREAM, "xgroup-delconsumer", key);
                    Ok(Reply::Int(n as i64))
                }
                None => Ok(Reply::Int(0)),
            }
        }
    }
}

/// XACK key group id [id ...]
fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = write_stream_silent(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let Some(g) = s.groups.get_mut(&args[2][..]) else {
        return Ok(Reply::Int(0));
    };
    // All IDs are checked before any is acknowledged.
    let ids = args[3..]
        .iter()
        .map(|a| strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let acked = ids.into_iter().filter(|&id| g.ack(id)).count();
    ctx.dirty(acked as u64);
    Ok(Reply::Int(acked as i64))
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, group_name) = (&args[1], &args[2]);
    if args.len() != 3 && !(6..=9).contains(&args.len()) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    let mut min_idle = 0i64;
    if args.len() >= 6 {
        let mut at = 3;
        if is(&args[3], "idle") {
            min_idle = parse_i64_strict(&args[4]).ok_or(CmdError::NotInteger)?;
            if args.len() < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = parse_i64_strict(&args[at + 2])
            .ok_or(CmdError::NotInteger)?
            .max(0) as usize;
        let (mut start, start_ex) = interval_id(&args[at], 0)?;
        if start_ex {
            start = start
                .next()
                .ok_or_else(|| CmdError::other("ERR invalid start ID for the interval"))?;
        }
        let (mut end, end_ex) = interval_id(&args[at + 1], u64::MAX)?;
        if end_ex {
            end = end
                .prev()
                .ok_or_else(|| CmdError::other("ERR invalid end ID for the interval"))?;
        }
        let consumer = args.get(at + 3).cloned();
        range = Some((start, end, count, consumer));
    }
    let now = ctx.now_ms as i64;
    let Some(g) = read_stream(ctx, key)?.and_then(|s| s.groups.get(&group_name[..])) else {
        return Err(no_key_or_group(key, group_name));
    };
    let Some((start, end, count, consumer)) = range else {
        let (Some((first, _)), Some((last, _))) =
            (g.pending.first_key_value(), g.pending.last_key_value())
        else {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::NilArray,
            ]));
        };
        let owners = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![
                    Reply::Bulk(name.clone()),
                    Reply::Bulk(Bytes::from(c.pending.len().to_string())),
                ])
            })
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Int(g.pending.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(owners),
        ]));
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) if start <= end => Box::new(c.pending.range(start..=end).copied()),
            Some(_) => Box::new(std::iter::empty()),
            None => return Ok(Reply::Array(Vec::new())),
        },
        None if start <= end => Box::new(g.pending.range(start..=end).map(|(id, _)| *id)),
        None => Box::new(std::iter::empty()),
    };
    let mut out = Vec::new();
    for id in ids {
        if out.len() >= count {
            break;
        }
        let Some(p) = g.pending.get(&id) else {
            continue;
        };
        if min_idle != 0 && now - p.delivery_ms < min_idle {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(p.consumer.clone()),
            Reply::Int((now - p.delivery_ms).max(0)),
            Reply::Int(p.deliveries as i64),
        ]));
    }
    Ok(Reply::Array(out))
}

/// A claimed entry's reply: its ID (JUSTID), or the entry (nil when it
/// was deleted).
fn claimed_reply(s: &StreamValue, id: StreamId, justid: bool) -> Reply {
    if justid {
        return id_reply(id);
    }
    match s.entry(id) {
        Some(pairs) => entry_reply(id, pairs),
        None => Reply::Nil,
    }
}

/// Makes sure consumer `name` exists, refreshing its seen time (Redis's
/// streamLookupConsumer or streamCreateConsumer); true if it was created.
fn seen_consumer(g: &mut Group, name: &Bytes, now: i64) -> bool {
    if g.add_consumer(name, now) {
        return true;
    }
    if let Some(c) = g.consumers.get_mut(name) {
        c.seen_ms = now;
    }
    false
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
/// [TIME unix-time-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let now = ctx.now_ms as i64;
    if read_stream(ctx, key)?.is_none_or(|s| !s.groups.contains_key(&group_name[..])) {
        return Err(no_key_or_group(key, group_name));
    }
    let min_idle = parse_i64_strict(&args[4])
        .ok_or_else(|| CmdError::other("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    // IDs run until the first argument that is not one.
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match strict_id(&args[j]) {
            Ok(id) => ids.push((id, &args[j])),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut delivery, mut retry, mut force, mut justid, mut last_arg) =
        (None::<i64>, None::<i64>, false, false, None);
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            let idle = parse_i64_strict(&args[j])
                .ok_or_else(|| CmdError::other("ERR Invalid IDLE option argument for XCLAIM"))?;
            delivery = Some(now.saturating_sub(idle));
        } else if is(opt, "time") && more {
            j += 1;
            delivery =
                Some(parse_i64_strict(&args[j]).ok_or_else(|| {
                    CmdError::other("ERR Invalid TIME option argument for XCLAIM")
                })?);
        } else if is(opt, "retrycount") && more {
            j += 1;
            retry = Some(parse_i64_strict(&args[j]).ok_or_else(|| {
                CmdError::other("ERR Invalid RETRYCOUNT option argument for XCLAIM")
            })?);
        } else if is(opt, "lastid") && more {
            j += 1;
            last_arg = Some(strict_id(&args[j])?);
        } else {
            return Err(CmdError::other(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                text(opt)
            )));
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    };
    let Some(s) = write_stream_silent(ctx, key)? else {
        return Err(no_key_or_group(key, group_name));
    };
    let Some(mut g) = s.groups.remove(&group_name[..]) else {
        return Err(no_key_or_group(key, group_name));
    };
    let mut propagate = Vec::new();
    let mut setid = false;
    if let Some(last) = last_arg.filter(|&l| l > g.last_id) {
        g.last_id = last;
        setid = true;
    }
    let mut replies = Vec::new();
    let mut consumer_ready = false;
    let mut consumer_created = false;
    for (id, arg) in ids {
        let held = g.pending.get(&id).cloned();
        // Replicas get the ID as the client wrote it.
        let as_sent = |mut cmd: Vec<Bytes>| {
            cmd[5] = arg.clone();
            cmd
        };
        if !s.contains(id) {
            // The entry is gone: so is its pending entry.
            if let Some(p) = held {
                propagate.push(as_sent(xclaim_command(key, group_name, &g, id, &p)));
                setid = false;
                g.ack(id);
            }
            continue;
        }
        let (created, old) = match held {
            Some(p) => (false, p),
            None if force => (
                true,
                Pending {
                    delivery_ms: now,
                    deliveries: 1,
                    consumer: Bytes::new(),
                },
            ),
            None => continue,
        };
        if !created && min_idle > 0 && now - old.delivery_ms < min_idle {
            continue;
        }
        if !consumer_ready {
            consumer_created = seen_consumer(&mut g, consumer, now);
            consumer_ready = true;
        }
        let deliveries = match retry {
            Some(n) if n >= 0 => n as u64,
            _ if justid => old.deliveries,
            _ => old.deliveries.wrapping_add(1),
        };
        g.assign(id, consumer, delivery, deliveries);
        replies.push(claimed_reply(s, id, justid));
        if let Some(p) = g.pending.get(&id) {
            propagate.push(as_sent(xclaim_command(key, group_name, &g, id, p)));
        }
        setid = false;
    }
    if setid {
        propagate.push(setid_command(key, group_name, &g));
    }
    s.groups.insert(group_name.clone(), g);
    if !propagate.is_empty() {
        ctx.dirty(propagate.len() as u64);
    }
    if consumer_created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.propagate_as(propagate);
    Ok(Reply::Array(replies))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    const ATTEMPTS_FACTOR: i64 = 10;
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let now = ctx.now_ms as i64;
    // Arguments are checked before the key, unlike XCLAIM's.
    let min_idle = parse_i64_strict(&args[4])
        .ok_or_else(|| CmdError::other("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (mut start, start_ex) = interval_id(&args[5], 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CmdError::other("ERR invalid start ID for the interval"))?;
    }
    let (mut count, mut justid) = (100i64, false);
    let mut j = 6;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            j += 1;
            count = match parse_i64_strict(&args[j]) {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => n,
                _ => return Err(CmdError::other("ERR COUNT must be > 0")),
            };
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if read_stream(ctx, key)?.is_none_or(|s| !s.groups.contains_key(&group_name[..])) {
        return Err(no_key_or_group(key, group_name));
    }
    let Some(s) = write_stream_silent(ctx, key)? else {
        return Err(no_key_or_group(key, group_name));
    };
    let Some(mut g) = s.groups.remove(&group_name[..]) else {
        return Err(no_key_or_group(key, group_name));
    };
    let mut attempts = count * ATTEMPTS_FACTOR;
    let (mut claimed, mut deleted, mut propagate) = (Vec::new(), Vec::new(), Vec::new());
    let mut consumer_ready = false;
    let mut consumer_created = false;
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    while let Some((&id, p)) = g.pending.range(cursor..).next() {
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        let p = p.clone();
        cursor = match id.next() {
            Some(n) => n,
            None => StreamId::MAX,
        };
        let last = id == StreamId::MAX;
        if !s.contains(id) {
            propagate.push(xclaim_command(key, group_name, &g, id, &p));
            g.ack(id);
            deleted.push(id_reply(id));
            count -= 1;
        } else if min_idle == 0 || now - p.delivery_ms >= min_idle {
            if !consumer_ready {
                consumer_created = seen_consumer(&mut g, consumer, now);
                consumer_ready = true;
            }
            let deliveries = if justid {
                p.deliveries
            } else {
                p.deliveries.wrapping_add(1)
            };
            g.assign(id, consumer, now, deliveries);
            claimed.push(claimed_reply(s, id, justid));
            if let Some(p) = g.pending.get(&id) {
                propagate.push(xclaim_command(key, group_name, &g, id, p));
            }
            count -= 1;
        }
        if last {
            break;
        }
    }
    s.groups.insert(group_name.clone(), g);
    if !propagate.is_empty() {
        ctx.dirty(propagate.len() as u64);
    }
    if consumer_created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.propagate_as(propagate);
    Ok(Reply::Array(vec![
        id_reply(next.unwrap_or(StreamId::MIN)),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// XINFO STREAM|GROUPS|CONSUMERS|HELP ...
fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let (name, arity_ok) = match &sub[..] {
        b"help" => ("help", args.len() == 2),
        b"stream" => ("stream", args.len() >= 3),
        b"groups" => ("groups", args.len() == 3),
        b"consumers" => ("consumers", args.len() == 4),
        _ => return Err(unknown_sub("xinfo", &args[1])),
    };
    if !arity_ok {
        return Err(sub_arity("xinfo", name));
    }
    if name == "help" {
        return help(XINFO_HELP);
    }
    let key = &args[2];
    let now = ctx.now_ms as i64;
    let Some(s) = read_stream(ctx, key)? else {
        return Err(CmdError::other("ERR no such key"));
    };
    match name {
        "consumers" => {
            let Some(g) = s.groups.get(&args[3][..]) else {
                return Err(no_group_for_key(&args[3], key));
            };
            Ok(Reply::Array(
                g.consumers
                    .iter()
                    .map(|(cname, c)| {
                        Reply::Map(vec![
                            (bulk("name"), Reply::Bulk(cname.clone())),
                            (bulk("pending"), Reply::Int(c.pending.len() as i64)),
                            (bulk("idle"), Reply::Int((now - c.seen_ms).max(0))),
                        ])
                    })
                    .collect(),
            ))
        }
        "groups" => Ok(Reply::Array(
            s.groups
                .iter()
                .map(|(gname, g)| {
                    Reply::Map(vec![
                        (bulk("name"), Reply::Bulk(gname.clone())),
                        (bulk("consumers"), Reply::Int(g.consumers.len() as i64)),
                        (bulk("pending"), Reply::Int(g.pending.len() as i64)),
                        (bulk("last-delivered-id"), id_reply(g.last_id)),
                        (bulk("entries-read"), entries_read_reply(g)),
                        (bulk("lag"), lag_reply(s, g)),
                    ])
                })
                .collect(),
        )),
        _ => {
            let full = match args.len() {
                3 => None,
                4 if is(&args[3], "full") => Some(10),
                6 if is(&args[3], "full") && is(&args[4], "count") => {
                    let n = parse_i64_strict(&args[5]).ok_or(CmdError::NotInteger)?;
                    Some(if n < 0 { 10 } else { n as usize })
                }
                _ => return Err(sub_syntax("XINFO", &args[1])),
            };
            Ok(stream_info(s, full))
        }
    }
}

fn entries_read_reply(g: &Group) -> Reply {
    if g.entries_read == ENTRIES_READ_UNKNOWN {
        Reply::Nil
    } else {
        Reply::Int(g.entries_read)
    }
}

fn lag_reply(s: &StreamValue, g: &Group) -> Reply {
    s.group_lag(g).map_or(Reply::Nil, Reply::Int)
}

/// XINFO STREAM, or with FULL (`Some(count)`, 0: everything) the entries,
/// groups, pending entries and consumers too.
fn stream_info(s: &StreamValue, full: Option<usize>) -> Reply {
    let mut fields = vec![
        (bulk("length"), Reply::Int(s.len() as i64)),
        (bulk("radix-tree-keys"), Reply::Int(s.node_count() as i64)),
        (bulk("radix-tree-nodes"), Reply::Int(s.radix_nodes() as i64)),
        (bulk("last-generated-id"), id_reply(s.last_id)),
        (bulk("max-deleted-entry-id"), id_reply(s.max_deleted_id)),
        (bulk("entries-added"), Reply::Int(s.entries_added as i64)),
        (bulk("recorded-first-entry-id"), id_reply(s.first_id)),
    ];
    let Some(count) = full else {
        let edge = |first: bool| match s.edge_id(first).and_then(|id| Some((id, s.entry(id)?))) {
            Some((id, pairs)) => entry_reply(id, pairs),
            None => Reply::Nil,
        };
        fields.push((bulk("groups"), Reply::Int(s.groups.len() as i64)));
        fields.push((bulk("first-entry"), edge(true)));
        fields.push((bulk("last-entry"), edge(false)));
        return Reply::Map(fields);
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let entries = s
        .range(StreamId::MIN, StreamId::MAX, false, count)
        .into_iter()
        .map(|(id, pairs)| entry_reply(id, pairs))
        .collect();
    fields.push((bulk("entries"), Reply::Array(entries)));
    let groups = s
        .groups
        .iter()
        .map(|(gname, g)| {
            let pending = g
                .pending
                .iter()
                .take(limit)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(p.consumer.clone()),
                        Reply::Int(p.delivery_ms),
                        Reply::Int(p.deliveries as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let own = c
                        .pending
                        .iter()
                        .take(limit)
                        .filter_map(|id| {
                            let p = g.pending.get(id)?;
                            Some(Reply::Array(vec![
                                id_reply(*id),
                                Reply::Int(p.delivery_ms),
                                Reply::Int(p.deliveries as i64),
                            ]))
                        })
                        .collect();
                    Reply::Map(vec![
                        (bulk("name"), Reply::Bulk(cname.clone())),
                        (bulk("seen-time"), Reply::Int(c.seen_ms)),
                        (bulk("pel-count"), Reply::Int(c.pending.len() as i64)),
                        (bulk("pending"), Reply::Array(own)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                (bulk("name"), Reply::Bulk(gname.clone())),
                (bulk("last-delivered-id"), id_reply(g.last_id)),
                (bulk("entries-read"), entries_read_reply(g)),
                (bulk("lag"), lag_reply(s, g)),
                (bulk("pel-count"), Reply::Int(g.pending.len() as i64)),
                (bulk("pending"), Reply::Array(pending)),
                (bulk("consumers"), Reply::Array(consumers)),
            ])
        })
        .collect();
    fields.push((bulk("groups"), Reply::Array(groups)));
    Reply::Map(fields)
}
