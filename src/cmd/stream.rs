//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID XREAD, with
//! Redis 7.0's arguments, ID rules, errors and propagation. The type
//! itself is `keyspace::stream`.
//!
//! Propagation follows Redis: XADD goes with the ID it generated, and an
//! approximate trim (`~`, LIMIT) goes as the exact trim it turned out to
//! be (`=` and the length or first ID it left), so replicas and the AOF
//! end with the same entries whatever their node layout.
//!
//! XREAD holds the shards of its keys while it resolves `$`, reads, and
//! (BLOCK, nothing to read) registers its waiter, so no entry can land in
//! between; `blocking` serves it when one does.
//!
//! Consumer groups: XREADGROUP is in `xreadgroup`, the other group
//! commands and XINFO in `xgroup`.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::lookup::{read, read_stream, write_stream, write_stream_silent};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::{Client, Ctx};
use crate::keyspace::stream::{StreamValue, Trim};
use crate::keyspace::{StreamId, Value};
use crate::notify::class;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Stream as S;
    let k1 = (1, 1, 1);
    vec![
        spec("xadd", -5, WRITE | DENYOOM | FAST, k1, S, "5.0.0", "Appends a new entry to a stream", Run::Keyed(xadd, Split::None)),
        spec("xlen", 2, READONLY | FAST, k1, S, "5.0.0", "Return the number of entries in a stream", Run::Keyed(xlen, Split::None)),
        spec("xrange", -4, READONLY, k1, S, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval", Run::Keyed(xrange, Split::None)),
        spec("xrevrange", -4, READONLY, k1, S, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", Run::Keyed(xrange, Split::None)),
        spec("xdel", -3, WRITE | FAST, k1, S, "5.0.0", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", Run::Keyed(xdel, Split::None)),
        spec("xtrim", -4, WRITE, k1, S, "5.0.0", "Trims the stream to (approximately if '~' is passed) a certain size", Run::Keyed(xtrim, Split::None)),
        spec("xsetid", -3, WRITE | DENYOOM | FAST, k1, S, "5.0.0", "An internal command for replicating stream values", Run::Keyed(xsetid, Split::None)),
        spec("xreadgroup", -7, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), S, "5.0.0", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", Run::Client(ClientCmd::Xreadgroup)),
        spec("xread", -4, READONLY | BLOCKING | MOVABLE_KEYS, (0, 0, 0), S, "5.0.0", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", Run::Client(ClientCmd::Xread)),
    ]
}

fn invalid_id() -> CmdError {
    CmdError::other("ERR Invalid stream ID specified as stream command argument")
}

/// Redis's `string2ull`: strict decimal, or else what `strtoull` takes
/// whole (leading blanks, a sign; a minus wraps around).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64_strict(s) {
        return u64::try_from(v).ok();
    }
    let text = std::str::from_utf8(s).ok()?;
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// An ID argument: `ms-seq`, `ms` (sequence `missing_seq`), and unless
/// `strict`, `-` and `+`. With `seq_auto`, `ms-*` is accepted and
/// reported as `(id, false)`.
pub(super) fn parse_id(
    arg: &[u8],
    strict: bool,
    missing_seq: u64,
    seq_auto: bool,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok((StreamId::MIN, true)),
        b"+" if !strict => return Ok((StreamId::MAX, true)),
        b"-" | b"+" => return Err(invalid_id()),
        _ => {}
    }
    let (ms, seq) = match memchr::memchr(b'-', arg) {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    // A NUL ends the text for Redis's C string parsing.
    let cut = |s: &[u8]| -> Vec<u8> { s.split(|&b| b == 0).next().unwrap_or(&[]).to_vec() };
    let ms = string2ull(&cut(ms)).ok_or_else(invalid_id)?;
    match seq {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if seq_auto => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => {
            let seq = string2ull(&cut(seq)).ok_or_else(invalid_id)?;
            Ok((StreamId::new(ms, seq), true))
        }
    }
}

pub(super) fn strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id(arg, true, 0, false).map(|(id, _)| id)
}

/// A range bound: `(` makes it exclusive.
pub(super) fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], true, missing_seq, false)?.0, true))
    } else {
        Ok((parse_id(arg, false, missing_seq, false)?.0, false))
    }
}

pub(super) fn entry_reply(id: StreamId, pairs: Vec<(Bytes, Bytes)>) -> Reply {
    let mut flat = Vec::with_capacity(pairs.len() * 2);
    for (f, v) in pairs {
        flat.push(Reply::Bulk(f));
        flat.push(Reply::Bulk(v));
    }
    Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::Array(flat)])
}

/// XLEN key
fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_stream(ctx, &args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

/// XRANGE key start end [COUNT count] / XREVRANGE key end start [COUNT count]
fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let rev = is(&args[0], "xrevrange");
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = interval_id(start_arg, 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CmdError::other("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = interval_id(end_arg, u64::MAX)?;
    if end_ex {
        end = end
            .prev()
            .ok_or_else(|| CmdError::other("ERR invalid end ID for the interval"))?;
    }
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = Some(
                parse_i64_strict(&args[j + 1])
                    .ok_or(CmdError::NotInteger)?
                    .max(0),
            );
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(s) = read_stream(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Reply::NilArray);
    }
    let count = count.unwrap_or(0) as usize;
    let entries = s.range(start, end, rev, count);
    Ok(Reply::Array(
        entries
            .into_iter()
            .map(|(id, pairs)| entry_reply(id, pairs))
            .collect(),
    ))
}

/// XADD's and XTRIM's trimming options.
#[derive(Default)]
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: i64,
    /// Index of the threshold argument (rewritten for propagation).
    threshold_at: usize,
    no_mkstream: bool,
    id: Option<(StreamId, bool)>,
}

/// After MAXLEN or MINID at `args[*i]`: an optional `~` (approximate) or
/// `=` before the threshold, when a threshold follows it.
fn skip_marker(args: &[Bytes], i: &mut usize, t: &mut TrimArgs) {
    t.approx = false;
    let more = args.len() - 1 - *i;
    match &args[*i + 1][..] {
        b"~" if more >= 2 => {
            t.approx = true;
            *i += 1;
        }
        b"=" if more >= 2 => *i += 1,
        _ => {}
    }
}

/// Parses from `args[from]` on; for XADD, stops at the ID (`*` or given)
/// and returns its index.
fn parse_trim(
    ctx: &Ctx,
    args: &[Bytes],
    from: usize,
    xadd: bool,
) -> Result<(TrimArgs, usize), CmdError> {
    let mut t = TrimArgs::default();
    let mut limit_given = false;
    let mut i = from;
    let both = || {
        CmdError::other(
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
        )
    };
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if is(opt, "maxlen") && more > 0 {
            if t.trim.is_some() {
                return Err(both());
            }
            skip_marker(args, &mut i, &mut t);
            let max = parse_i64_strict(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if max < 0 {
                return Err(CmdError::other("ERR The MAXLEN argument must be >= 0."));
            }
            i += 1;
            t.trim = Some(Trim::MaxLen(max as u64));
            t.threshold_at = i;
        } else if is(opt, "minid") && more > 0 {
            if t.trim.is_some() {
                return Err(both());
            }
            skip_marker(args, &mut i, &mut t);
            let id = strict_id(&args[i + 1])?;
            i += 1;
            t.trim = Some(Trim::MinId(id));
            t.threshold_at = i;
        } else if is(opt, "limit") && more > 0 {
            t.limit = parse_i64_strict(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if t.limit < 0 {
                return Err(CmdError::other("ERR The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            t.no_mkstream = true;
        } else if xadd {
            t.id = Some(parse_id(opt, true, 0, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit != 0 && t.trim.is_none() {
        return Err(CmdError::other(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.trim.is_none() {
        return Err(CmdError::other(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.obey {
        // The threshold was made exact before it was propagated.
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(CmdError::other(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        let per_node = crate::node::stream_node_limits().max_entries as i64;
        t.limit = per_node.saturating_mul(100);
        if t.limit <= 0 || t.limit > 10_000 {
            t.limit = 10_000;
        }
    } else {
        t.limit = 0;
    }
    Ok((t, i))
}

/// Applies a parsed trim; after an approximate one, the command goes to
/// replicas with `=` and the threshold reached. Returns entries removed.
fn apply_trim(s: &mut StreamValue, t: &TrimArgs, args: &mut [Bytes]) -> u64 {
    let Some(trim) = t.trim else {
        return 0;
    };
    let removed = s.trim(trim, t.approx, t.limit as u64);
    if t.approx {
        args[t.threshold_at - 1] = Bytes::from_static(b"=");
        args[t.threshold_at] = match trim {
            Trim::MaxLen(_) => Bytes::from(s.len().to_string()),
            Trim::MinId(_) => s.first_id_with_tombstones().to_bytes(),
        };
    }
    removed
}

/// Stores an empty stream at `key` (XADD, XGROUP CREATE ... MKSTREAM).
pub(super) fn add_empty_stream(ctx: &mut Ctx, key: &Bytes) {
    ctx.db().set(
        key.clone(),
        Value::Stream(Box::new(StreamValue::new())),
        None,
    );
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
/// *|id field value [field value ...]
fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (t, id_at) = parse_trim(ctx, args, 2, true)?;
    let fields_at = id_at + 1;
    let n = args.len().saturating_sub(fields_at);
    if fields_at > args.len() || n < 2 || n % 2 == 1 {
        return Err(CmdError::other(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    if let Some((id, true)) = t.id {
        if id == StreamId::MIN {
            return Err(CmdError::other(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let key = &args[1];
    let now = ctx.now_ms;
    if write_stream(ctx, key)?.is_none() {
        if t.no_mkstream {
            return Ok(Reply::Nil);
        }
        add_empty_stream(ctx, key);
    }
    let Some(s) = write_stream(ctx, key)? else {
        return Ok(Reply::Nil);
    };
    if s.last_id == StreamId::MAX {
        return Err(CmdError::other(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let too_small = || {
        CmdError::other(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let id = match t.id {
        Some((id, true)) => id,
        // `ms-*`: the next sequence of that millisecond.
        Some((id, false)) if id.ms == s.last_id.ms => {
            if s.last_id.seq == u64::MAX {
                return Err(too_small());
            }
            StreamId::new(id.ms, s.last_id.seq + 1)
        }
        Some((id, false)) => id,
        None if now > s.last_id.ms => StreamId::new(now, 0),
        None => s.last_id.next().ok_or_else(too_small)?,
    };
    if id <= s.last_id {
        return Err(too_small());
    }
    let total: usize = args[fields_at..].iter().map(|a| a.len()).sum();
    if total > crate::keyspace::stream::LISTPACK_MAX_SIZE {
        return Err(CmdError::other("ERR Elements are too large to be stored"));
    }
    s.append(id, &args[fields_at..], crate::node::stream_node_limits());
    let mut propagated = args.to_vec();
    let trimmed = apply_trim(s, &t, &mut propagated);
    // Readers blocked on the key (XREAD BLOCK) look at it after this job.
    ctx.db().mark_ready(key);
    if !matches!(t.id, Some((_, true))) {
        propagated[id_at] = id.to_bytes();
    }
    ctx.propagate_as(vec![propagated]);
    ctx.dirty(1);
    ctx.notify(class::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(class::STREAM, "xtrim", key);
    }
    Ok(Reply::Bulk(id.to_bytes()))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (t, _) = parse_trim(ctx, args, 2, false)?;
    let Some(s) = write_stream(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let mut propagated = args.to_vec();
    let removed = apply_trim(s, &t, &mut propagated);
    if removed > 0 {
        ctx.propagate_as(vec![propagated]);
        ctx.dirty(removed);
        ctx.notify(class::STREAM, "xtrim", &args[1]);
    }
    Ok(Reply::Int(removed as i64))
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = write_stream(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut deleted = 0u64;
    let mut first_gone = false;
    for id in ids {
        if s.delete(id) {
            first_gone |= id == s.first_id;
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.is_empty() {
            s.first_id = StreamId::MIN;
        } else if first_gone {
            s.first_id = s.edge_id(true).unwrap_or(StreamId::MIN);
        }
        ctx.dirty(deleted);
        ctx.notify(class::STREAM, "xdel", &args[1]);
    }
    Ok(Reply::Int(deleted as i64))
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = strict_id(&args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "entriesadded") && more {
            let n = parse_i64_strict(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::other("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is(&args[i], "maxdeletedid") && more {
            max_deleted = strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::other(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // Redis 7.0 does not signal XSETID's key as changed.
    let Some(s) = write_stream_silent(ctx, &args[1])? else {
        return Err(CmdError::other("ERR no such key"));
    };
    if !s.is_empty() {
        if s.edge_id(false).is_some_and(|top| id < top) {
            return Err(CmdError::other(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| s.len() > n) {
            return Err(CmdError::other(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if max_deleted != StreamId::MIN {
        s.max_deleted_id = max_deleted;
    }
    ctx.dirty(1);
    ctx.notify(class::STREAM, "xsetid", &args[1]);
    Ok(Reply::Ok)
}

/// The entries of `key` after `after` (at most `count`, 0: all) once the
/// stream's last ID passed it; what a blocked XREAD is served.
pub(super) fn entries_after(
    ctx: &mut Ctx,
    key: &[u8],
    after: StreamId,
    count: usize,
) -> Option<Reply> {
    let Ok(Some(s)) = read_stream(ctx, key) else {
        return None;
    };
    if s.last_id <= after {
        return None;
    }
    let start = after.next()?;
    let entries = s.range(start, StreamId::MAX, false, count);
    Some(Reply::Array(
        entries
            .into_iter()
            .map(|(id, pairs)| entry_reply(id, pairs))
            .collect(),
    ))
}

/// XREAD's BLOCK: milliseconds, as Redis 7.0's getTimeoutFromObjectOrReply
/// takes them (any non-negative integer; one too far in the future never
/// expires, see `blocking::deadline`).
pub(super) fn block_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let ms = parse_i64_strict(arg)
        .ok_or_else(|| CmdError::other("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// The options of XREAD and XREADGROUP, up to their keys and IDs.
pub(super) struct ReadArgs {
    /// At most this many entries per key (0: all).
    pub count: usize,
    pub block: Option<u64>,
    pub noack: bool,
    /// XREADGROUP's group and consumer.
    pub group: Option<(Bytes, Bytes)>,
    /// Where the keys start.
    pub streams_at: usize,
}

impl ReadArgs {
    /// The keys, then their IDs.
    pub fn keys_and_ids<'a>(&self, args: &'a [Bytes]) -> (&'a [Bytes], &'a [Bytes]) {
        let nkeys = (args.len() - self.streams_at) / 2;
        args[self.streams_at..].split_at(nkeys)
    }
}

/// Parses the options of XREAD (`grouped` false: GROUP and NOACK are
/// refused, as Redis refuses them) or XREADGROUP, in Redis's order.
/// From a script (`in_script`) BLOCK is refused where it is met, before
/// its timeout or any key is looked at, as Redis does.
pub(super) fn parse_read_args(
    args: &[Bytes],
    grouped: bool,
    in_script: bool,
) -> Result<ReadArgs, CmdError> {
    let mut out = ReadArgs {
        count: 0,
        block: None,
        noack: false,
        group: None,
        streams_at: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let a = &args[i];
        if is(a, "block") && more > 0 {
            if in_script {
                // Redis names the command as the script spelled it.
                return Err(CmdError::other(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                )));
            }
            out.block = Some(block_ms(&args[i + 1])?);
            i += 1;
        } else if is(a, "count") && more > 0 {
            let n = parse_i64_strict(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            out.count = n.max(0) as usize;
            i += 1;
        } else if is(a, "streams") && more > 0 {
            out.streams_at = i + 1;
            if !(args.len() - out.streams_at).is_multiple_of(2) {
                return Err(CmdError::other(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is(a, "group") && more >= 2 {
            if !grouped {
                return Err(CmdError::other(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(a, "noack") {
            if !grouped {
                return Err(CmdError::other(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if out.streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    Ok(out)
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub async fn xread(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let opts = parse_read_args(args, false, client.in_script)?;
    let (keys, id_args) = opts.keys_and_ids(args);
    let (count, block) = (opts.count, opts.block);
    let db = client.db;
    let n = client.shard.shards();
    let guard = super::across::hold_keys(keys).await;
    // Each key's last ID and last live ID, or WRONGTYPE.
    let looks = super::across::read_keys(&guard, db, keys, |ctx, k| match read(ctx, k) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some((s.last_id, s.edge_id(false)))),
        Some(_) => Err(CmdError::WrongType),
    })
    .await;
    // In key order: the type, then the ID (`$`: the last ID now).
    let mut after = Vec::with_capacity(keys.len());
    let mut serve = Vec::new();
    for ((key, look), id_arg) in keys.iter().zip(looks).zip(id_args) {
        let look = look?;
        let id = match &id_arg[..] {
            b"$" => look.map_or(StreamId::MIN, |(last, _)| last),
            b">" => {
                return Err(CmdError::other(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            _ => strict_id(id_arg)?,
        };
        if look.is_some_and(|(_, live)| live.is_some_and(|live| live > id)) {
            serve.push((key.clone(), id));
        }
        after.push((key.clone(), id));
    }
    let mut served = Vec::with_capacity(serve.len());
    for (key, id) in serve {
        let k = key.clone();
        let entries = guard
            .run(crate::shard::route::shard_of(&key, n), move |core| {
                let mut ctx = Ctx::new(core, db);
                entries_after(&mut ctx, &k, id, count)
            })
            .await;
        if let Some(e) = entries {
            served.push((Reply::Bulk(key), e));
        }
    }
    if !served.is_empty() {
        return Ok(Reply::KeyedMap(served));
    }
    let may_block = !client.in_exec && !client.is_master;
    match block {
        Some(ms) if may_block => {
            let keys = after.iter().map(|(k, _)| k.clone()).collect();
            let op = crate::shard::blocked::BlockOp::XRead { after, count };
            Ok(super::blocking::block_stream_read(client, &guard, keys, op, ms).await)
        }
        _ => Ok(Reply::NilArray),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let p = |s: &str| parse_id(s.as_bytes(), false, 7, true);
        assert_eq!(p("5-3"), Ok((StreamId::new(5, 3), true)));
        assert_eq!(p("5"), Ok((StreamId::new(5, 7), true)));
        assert_eq!(p("5-*"), Ok((StreamId::new(5, 0), false)));
        assert_eq!(p("-"), Ok((StreamId::MIN, true)));
        assert_eq!(p("+"), Ok((StreamId::MAX, true)));
        assert!(p("x").is_err());
        assert!(p("5-x").is_err());
        assert!(p("-5").is_err());
        assert!(p("").is_err());
        assert_eq!(p("+5"), Ok((StreamId::new(5, 7), true)));
        assert_eq!(
            p("18446744073709551615-0"),
            Ok((StreamId::new(u64::MAX, 0), true))
        );
        assert!(p("18446744073709551616").is_err());
        assert!(parse_id(b"-", true, 0, false).is_err());
    }
}
