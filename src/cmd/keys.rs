//! Generic key commands: DEL UNLINK EXISTS TOUCH TYPE EXPIRE PEXPIRE
//! EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST OBJECT run on
//! the owning shard; DBSIZE FLUSHDB FLUSHALL SWAPDB KEYS SCAN RANDOMKEY
//! RENAME RENAMENX COPY MOVE MSETNX coordinate across shards (they hold
//! every shard they touch, so each is atomic).

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::{Client, Ctx};
use crate::keyspace::{access, Lookup, StrEncoding, StrValue, Value, SHARED_INTEGERS};
use crate::node::unix_ms;
use crate::notify::class;
use crate::resp::Reply;
use crate::shard;
use crate::util::glob::glob_match;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Generic as G;
    let k1 = (1, 1, 1);
    let c = |cmd| Run::Client(cmd);
    vec![
        spec(
            "del",
            -2,
            WRITE,
            (1, -1, 1),
            G,
            "1.0.0",
            "Delete a key",
            Run::Keyed(del, Split::SumInts),
        ),
        spec(
            "unlink",
            -2,
            WRITE | FAST,
            (1, -1, 1),
            G,
            "4.0.0",
            "Delete a key asynchronously in another thread",
            Run::Keyed(del, Split::SumInts),
        ),
        spec(
            "exists",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            G,
            "1.0.0",
            "Determine if a key exists",
            Run::Keyed(exists, Split::SumInts),
        ),
        spec(
            "touch",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            G,
            "3.2.1",
            "Alters the last access time of a key(s)",
            Run::Keyed(touch, Split::SumInts),
        ),
        spec(
            "type",
            2,
            READONLY | FAST,
            k1,
            G,
            "1.0.0",
            "Determine the type stored at key",
            Run::Keyed(type_cmd, Split::None),
        ),
        spec(
            "expire",
            -3,
            WRITE | FAST,
            k1,
            G,
            "1.0.0",
            "Set a key's time to live in seconds",
            Run::Keyed(expire, Split::None),
        ),
        spec(
            "pexpire",
            -3,
            WRITE | FAST,
            k1,
            G,
            "2.6.0",
            "Set a key's time to live in milliseconds",
            Run::Keyed(expire, Split::None),
        ),
        spec(
            "expireat",
            -3,
            WRITE | FAST,
            k1,
            G,
            "1.2.0",
            "Set the expiration for a key as a UNIX timestamp",
            Run::Keyed(expire, Split::None),
        ),
        spec(
            "pexpireat",
            -3,
            WRITE | FAST,
            k1,
            G,
            "2.6.0",
            "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
            Run::Keyed(expire, Split::None),
        ),
        spec(
            "ttl",
            2,
            READONLY | FAST,
            k1,
            G,
            "1.0.0",
            "Get the time to live for a key in seconds",
            Run::Keyed(ttl, Split::None),
        ),
        spec(
            "pttl",
            2,
            READONLY | FAST,
            k1,
            G,
            "2.6.0",
            "Get the time to live for a key in milliseconds",
            Run::Keyed(ttl, Split::None),
        ),
        spec(
            "expiretime",
            2,
            READONLY | FAST,
            k1,
            G,
            "7.0.0",
            "Get the expiration Unix timestamp for a key",
            Run::Keyed(ttl, Split::None),
        ),
        spec(
            "pexpiretime",
            2,
            READONLY | FAST,
            k1,
            G,
            "7.0.0",
            "Get the expiration Unix timestamp for a key in milliseconds",
            Run::Keyed(ttl, Split::None),
        ),
        spec(
            "persist",
            2,
            WRITE | FAST,
            k1,
            G,
            "2.2.0",
            "Remove the expiration from a key",
            Run::Keyed(persist, Split::None),
        ),
        spec(
            "object",
            -2,
            READONLY,
            (2, 2, 1),
            G,
            "2.2.3",
            "A container for object introspection commands",
            Run::Keyed(object, Split::None),
        ),
        spec(
            "dbsize",
            1,
            READONLY | FAST,
            (0, 0, 0),
            Group::Server,
            "1.0.0",
            "Return the number of keys in the selected database",
            c(ClientCmd::Dbsize),
        ),
        spec(
            "flushdb",
            -1,
            WRITE,
            (0, 0, 0),
            Group::Server,
            "1.0.0",
            "Remove all keys from the current database",
            c(ClientCmd::Flushdb),
        ),
        spec(
            "flushall",
            -1,
            WRITE,
            (0, 0, 0),
            Group::Server,
            "1.0.0",
            "Remove all keys from all databases",
            c(ClientCmd::Flushall),
        ),
        spec(
            "swapdb",
            3,
            WRITE | FAST,
            (0, 0, 0),
            Group::Server,
            "4.0.0",
            "Swaps two Redis databases",
            c(ClientCmd::Swapdb),
        ),
        spec(
            "keys",
            2,
            READONLY,
            (0, 0, 0),
            G,
            "1.0.0",
            "Find all keys matching the given pattern",
            c(ClientCmd::Keys),
        ),
        spec(
            "scan",
            -2,
            READONLY,
            (0, 0, 0),
            G,
            "2.8.0",
            "Incrementally iterate the keys space",
            c(ClientCmd::Scan),
        ),
        spec(
            "randomkey",
            1,
            READONLY,
            (0, 0, 0),
            G,
            "1.0.0",
            "Return a random key from the keyspace",
            c(ClientCmd::Randomkey),
        ),
        spec(
            "rename",
            3,
            WRITE,
            (1, 2, 1),
            G,
            "1.0.0",
            "Rename a key",
            c(ClientCmd::Rename),
        ),
        spec(
            "renamenx",
            3,
            WRITE | FAST,
            (1, 2, 1),
            G,
            "1.0.0",
            "Rename a key, only if the new key does not exist",
            c(ClientCmd::Renamenx),
        ),
        spec(
            "copy",
            -3,
            WRITE | DENYOOM,
            (1, 2, 1),
            G,
            "6.2.0",
            "Copy a key",
            c(ClientCmd::Copy),
        ),
        spec(
            "move",
            3,
            WRITE | FAST,
            k1,
            G,
            "1.0.0",
            "Move a key to another database",
            c(ClientCmd::Move),
        ),
        spec(
            "msetnx",
            -3,
            WRITE | DENYOOM,
            (1, -1, 2),
            Group::String,
            "1.0.1",
            "Set multiple keys to multiple values, only if none of the keys exist",
            c(ClientCmd::Msetnx),
        ),
    ]
}

fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let mut n = 0;
    for key in &args[1..] {
        // An expired key counts as absent: look it up first so lazy expiry
        // removes it and it is not reported as deleted.
        if ctx.db().get(key, now, Lookup::Write).is_some() && ctx.db().remove(key).is_some() {
            n += 1;
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    ctx.dirty(n as u64);
    Ok(Reply::Int(n))
}

/// EXISTS: not an access for eviction (Redis's LOOKUP_NOTOUCH).
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    count_present(ctx, &args[1..], Lookup::Peek)
}

/// TOUCH: EXISTS that counts as an access (renews the keys' LRU/LFU
/// stamps), as Redis's touchCommand.
fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    count_present(ctx, &args[1..], Lookup::Read)
}

fn count_present(ctx: &mut Ctx, keys: &[Bytes], mode: Lookup) -> CmdResult {
    let n = keys
        .iter()
        .filter(|k| type_of(ctx, k, mode).is_some())
        .count();
    Ok(Reply::Int(n as i64))
}

/// The type of `key`, looked up as Redis's lookupKeyRead does for EXISTS,
/// TYPE and TTL: a keyspace hit or miss, and `keymiss` for a miss.
fn type_of(ctx: &mut Ctx, key: &[u8], mode: Lookup) -> Option<&'static str> {
    let now = ctx.now_ms;
    let found = ctx.db().get(key, now, mode).map(|v| v.type_name());
    ctx.count_read(key, found.is_some());
    found
}

fn type_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = type_of(ctx, &args[1], Lookup::Peek).unwrap_or("none");
    Ok(Reply::Simple(Bytes::from_static(name.as_bytes())))
}

fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = args[0].to_ascii_lowercase();
    let (unit, absolute, cmd): (i64, bool, &'static str) = match name.as_slice() {
        b"expire" => (1000, false, "expire"),
        b"pexpire" => (1, false, "pexpire"),
        b"expireat" => (1000, true, "expireat"),
        _ => (1, true, "pexpireat"),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(CmdError::other(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::other(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::other(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    // The time is read after the options, as Redis does.
    let n = int_arg(&args[2])?;
    let invalid = || CmdError::InvalidExpireTime(cmd);
    let mut at = n.checked_mul(unit).ok_or_else(invalid)?;
    if !absolute {
        at = at.checked_add(ctx.now_ms as i64).ok_or_else(invalid)?;
    }
    let now = ctx.now_ms;
    let key = &args[1];
    if ctx.db().get(key, now, Lookup::Write).is_none() {
        return Ok(Reply::Int(0));
    }
    let current = ctx.db().expire_at(key);
    let allowed = match current {
        None => !(xx || gt),
        Some(cur) => !(nx || (gt && at <= cur as i64) || (lt && at >= cur as i64)),
    };
    if !allowed {
        return Ok(Reply::Int(0));
    }
    // A time in the past deletes the key on a master; a replica keeps it
    // until its master's DEL arrives (Redis's checkAlreadyExpired).
    if at <= now as i64 && ctx.db().expire_allowed() {
        ctx.db().remove(key);
        ctx.notify(class::GENERIC, "del", key);
        ctx.propagate_as(vec![vec![Bytes::from_static(b"DEL"), key.clone()]]);
    } else {
        ctx.db().set_expire(key, at.max(0) as u64);
        ctx.notify(class::GENERIC, "expire", key);
        ctx.propagate_as(vec![vec![
            Bytes::from_static(b"PEXPIREAT"),
            key.clone(),
            Bytes::from(at.to_string()),
        ]]);
    }
    ctx.dirty(1);
    Ok(Reply::Int(1))
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = args[0].to_ascii_lowercase();
    let now = ctx.now_ms;
    if type_of(ctx, &args[1], Lookup::Read).is_none() {
        return Ok(Reply::Int(-2));
    }
    let Some(at) = ctx.db().expire_at(&args[1]) else {
        return Ok(Reply::Int(-1));
    };
    let left = at.saturating_sub(now) as i64;
    Ok(Reply::Int(match name.as_slice() {
        b"ttl" => (left + 500) / 1000,
        b"pttl" => left,
        b"expiretime" => (at / 1000) as i64,
        _ => at as i64,
    }))
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    if ctx.db().get(&args[1], now, Lookup::Write).is_none() {
        return Ok(Reply::Int(0));
    }
    let changed = ctx.db().persist(&args[1]);
    if changed {
        ctx.dirty(1);
        ctx.notify(class::GENERIC, "persist", &args[1]);
    }
    Ok(Reply::Int(changed as i64))
}

/// Redis's OBJ_SHARED_REFCOUNT: the refcount its shared objects report.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
const POLICY_SWITCH_NOTE: &str = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    if sub == b"help" {
        if args.len() != 2 {
            return Err(CmdError::other(
                "ERR wrong number of arguments for 'object|help' command",
            ));
        }
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ];
        return Ok(Reply::Array(
            lines
                .iter()
                .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
                .collect(),
        ));
    }
    let name = match sub.as_slice() {
        b"encoding" => "encoding",
        b"freq" => "freq",
        b"idletime" => "idletime",
        b"refcount" => "refcount",
        _ => {
            return Err(CmdError::other(format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    };
    if args.len() != 3 {
        return Err(CmdError::other(format!(
            "ERR wrong number of arguments for 'object|{name}' command"
        )));
    }
    // OBJECT does not count as an access (Redis's LOOKUP_NOTOUCH), but it
    // counts as a hit or a miss, announcing no `keymiss` (LOOKUP_NONOTIFY).
    let (now, key) = (ctx.now_ms, &args[2]);
    if ctx.db().get(key, now, Lookup::Peek).is_none() {
        ctx.core.stats.keyspace_misses += 1;
        return Ok(Reply::Nil);
    }
    ctx.core.stats.keyspace_hits += 1;
    let db = ctx.db();
    let Some(v) = db.get(key, now, Lookup::Peek) else {
        return Ok(Reply::Nil);
    };
    Ok(match name {
        "encoding" => Reply::Bulk(Bytes::from_static(v.encoding_name().as_bytes())),
        "refcount" => {
            let shared = access::integers_shared()
                && v.as_str().is_some_and(|s| {
                    s.encoding() == StrEncoding::Int
                        && super::args::parse_i64_strict(s.bytes())
                            .is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
                });
            Reply::Int(if shared { SHARED_REFCOUNT } else { 1 })
        }
        _ => {
            let stamp = db.access_of(key).unwrap_or_else(access::fresh);
            if name == "freq" {
                if !access::is_lfu() {
                    return Err(CmdError::other(format!("ERR An LFU maxmemory policy is not selected, access frequency not tracked. {POLICY_SWITCH_NOTE}")));
                }
                Reply::Int(i64::from(access::frequency(stamp)))
            } else {
                if access::is_lfu() {
                    return Err(CmdError::other(format!("ERR An LFU maxmemory policy is selected, idle time not tracked. {POLICY_SWITCH_NOTE}")));
                }
                Reply::Int((access::idle_ms(stamp) / 1000) as i64)
            }
        }
    })
}

/// Client-level commands of this family.
pub async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    let db = client.db;
    match cmd {
        ClientCmd::Dbsize => {
            let sizes = shard::gather(move |core| core.db(db).len()).await;
            Ok(Reply::Int(sizes.iter().sum::<usize>() as i64))
        }
        ClientCmd::Flushdb | ClientCmd::Flushall => flush(client, cmd, args).await,
        ClientCmd::Swapdb => swapdb(client, args).await,
        ClientCmd::Keys => keys(db, args[1].clone()).await,
        ClientCmd::Scan => scan(client, args).await,
        ClientCmd::Randomkey => randomkey(db).await,
        ClientCmd::Rename => rename(client, db, args, false).await,
        ClientCmd::Renamenx => rename(client, db, args, true).await,
        ClientCmd::Copy => copy(client, args).await,
        ClientCmd::Move => move_key(client, args).await,
        ClientCmd::Msetnx => msetnx(client, db, args).await,
        _ => Err(CmdError::Syntax),
    }
}

async fn flush(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "async") && !is(&args[1], "sync")) {
        return Err(CmdError::Syntax);
    }
    let db = client.db;
    let all = cmd == ClientCmd::Flushall;
    // ASYNC, or no flag with lazyfree-lazy-user-flush: the tables are freed
    // in the background.
    let lazy = match args.get(1) {
        Some(flag) => is(flag, "async"),
        None => client.node.config().bool_value("lazyfree-lazy-user-flush"),
    };
    let guard = shard::hold_all().await;
    guard
        .run_each(move |core| {
            let removed = match (all, lazy) {
                (true, false) => core.ks.flush_all(),
                (true, true) => core.ks.flush_all_lazy(),
                (false, false) => core.db_mut(db).clear(),
                (false, true) => core.db_mut(db).clear_lazy(),
            };
            // FLUSHALL counts as a change even on an empty dataset, as in Redis.
            core.stats.dirty += removed as u64 + u64::from(all);
        })
        .await;
    super::propagate(client, db, args);
    drop(guard);
    // Tracking clients drop their whole cache (Redis tells every one).
    crate::tracking::flushed();
    // FLUSHALL with save points writes the (now empty) dump at once, as
    // Redis does, so a restart does not bring the data back.
    if all && !client.node.config().save_points().is_empty() {
        let _ = super::server::save_dataset(&client.node).await;
    }
    Ok(Reply::Ok)
}

async fn swapdb(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let a = super::args::parse_i64_strict(&args[1])
        .ok_or_else(|| CmdError::other("ERR invalid first DB index"))?;
    let b = super::args::parse_i64_strict(&args[2])
        .ok_or_else(|| CmdError::other("ERR invalid second DB index"))?;
    let dbs = client.node.config().databases() as i64;
    if a < 0 || a >= dbs || b < 0 || b >= dbs {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    let guard = shard::hold_all().await;
    guard
        .run_each(move |core| {
            core.ks.swap_dbs(a, b);
            core.stats.dirty += 1;
        })
        .await;
    super::propagate(client, client.db, args);
    drop(guard);
    Ok(Reply::Ok)
}

async fn keys(db: usize, pattern: Bytes) -> CmdResult {
    let guard = shard::hold_all().await;
    let parts = guard
        .run_each(move |core| {
            let now = unix_ms();
            let all = pattern.as_ref() == b"*";
            core.db(db)
                .keys_iter(now)
                .filter(|k| all || glob_match(&pattern, k, false))
                .map(|k| Reply::Bulk(k.clone()))
                .collect::<Vec<_>>()
        })
        .await;
    Ok(Reply::Array(parts.into_iter().flatten().collect()))
}

/// Bits of a SCAN cursor that name the shard; the rest is that shard's own
/// cursor.
const SHARD_BITS: u32 = 10;

async fn scan(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let cursor = super::args::scan_cursor(&args[1])?;
    let super::args::ScanArgs {
        pattern,
        count,
        type_filter,
        ..
    } = super::args::keyspace_scan_args(cursor, &args[2..])?;
    let shards = client.shard.shards() as u64;
    let mut shard_idx = cursor & ((1 << SHARD_BITS) - 1);
    let mut inner = cursor >> SHARD_BITS;
    if shard_idx >= shards {
        return Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"0")),
            Reply::Array(vec![]),
        ]));
    }
    let db = client.db;
    let mut keys = Vec::new();
    loop {
        let (pattern, type_filter) = (pattern.clone(), type_filter.clone());
        let (next, found) = shard::run_on(shard_idx as usize, move |core| {
            let now = unix_ms();
            let mut found = Vec::new();
            let mut cursor = inner;
            // Like Redis: visit buckets until `count` keys were seen or the
            // table is done, bounded so a sparse table cannot stall the shard.
            let mut visits = 0;
            loop {
                cursor = core.db_mut(db).scan(cursor, now, |k, v| {
                    if let Some(p) = &pattern {
                        if !glob_match(p, k, false) {
                            return;
                        }
                    }
                    if let Some(t) = &type_filter {
                        if !t.eq_ignore_ascii_case(v.type_name().as_bytes()) {
                            return;
                        }
                    }
                    found.push(k.clone());
                });
                visits += 1;
                if cursor == 0 || found.len() >= count || visits >= count * 10 {
                    break;
                }
            }
            (cursor, found)
        })
        .await;
        keys.extend(found);
        inner = next;
        if inner == 0 {
            shard_idx += 1;
            if shard_idx >= shards {
                break;
            }
        }
        if keys.len() >= count {
            break;
        }
    }
    let next = if shard_idx >= shards {
        0
    } else {
        (inner << SHARD_BITS) | shard_idx
    };
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ]))
}

async fn randomkey(db: usize) -> CmdResult {
    let sizes = shard::gather(move |core| core.db(db).len()).await;
    let total: usize = sizes.iter().sum();
    if total == 0 {
        return Ok(Reply::Nil);
    }
    // Pick a shard with probability proportional to its size, then a key
    // there; retry a few times if that shard emptied meanwhile.
    for attempt in 0..8u64 {
        let mut pick = (crate::node::unix_us().wrapping_mul(6364136223846793005) >> 17)
            .wrapping_add(attempt) as usize
            % total;
        let mut target = 0;
        for (i, &n) in sizes.iter().enumerate() {
            if pick < n {
                target = i;
                break;
            }
            pick -= n;
        }
        let key = shard::run_on(target, move |core| {
            let now = unix_ms();
            core.db_mut(db).random_key(now)
        })
        .await;
        if let Some(k) = key {
            return Ok(Reply::Bulk(k));
        }
    }
    Ok(Reply::Nil)
}

/// A value with its expiry, as moved between shards.
type Entry = (Value, Option<u64>);

fn take_entry(
    core: &mut crate::shard::ShardCore,
    db: usize,
    key: &[u8],
    remove: bool,
) -> Option<Entry> {
    let now = unix_ms();
    let d = core.db_mut(db);
    let v = d.get(key, now, Lookup::Write)?.clone();
    let exp = d.expire_at(key);
    if remove {
        d.remove(key);
    }
    Some((v, exp))
}

async fn rename(client: &Client, db: usize, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let shards = shard::current().shards();
    let (s1, s2) = (
        shard::route::shard_of(&src, shards),
        shard::route::shard_of(&dst, shards),
    );
    let guard = shard::hold(&[s1, s2]).await;
    let src2 = src.clone();
    let exists = guard
        .run(s1, move |core| take_entry(core, db, &src2, false).is_some())
        .await;
    if !exists {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    if nx {
        let dst2 = dst.clone();
        let taken = guard
            .run(s2, move |core| {
                core.db_mut(db)
                    .get(&dst2, unix_ms(), Lookup::Write)
                    .is_some()
            })
            .await;
        if taken {
            return Ok(Reply::Int(0));
        }
    }
    let taken = src.clone();
    let entry = guard
        .run(s1, move |core| {
            core.stats.dirty += 1;
            take_entry(core, db, &taken, true)
        })
        .await;
    if let Some((v, exp)) = entry {
        guard
            .run(s2, move |core| {
                // As Redis: an old destination is deleted, then the key
                // added (a `new` key), then both renames announced.
                let d = core.db_mut(db);
                d.remove(&dst);
                d.set(dst.clone(), v, exp);
                super::notify_on(core, db, class::GENERIC, "rename_from", &src);
                super::notify_on(core, db, class::GENERIC, "rename_to", &dst);
            })
            .await;
    }
    super::propagate(client, db, args);
    drop(guard);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

async fn copy(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let mut dst_db = client.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            dst_db = super::db_index(client, &args[i + 1])?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let src_db = client.db;
    if src == dst && src_db == dst_db {
        return Err(CmdError::other(
            "ERR source and destination objects are the same",
        ));
    }
    let shards = client.shard.shards();
    let (s1, s2) = (
        shard::route::shard_of(&src, shards),
        shard::route::shard_of(&dst, shards),
    );
    let guard = shard::hold(&[s1, s2]).await;
    let Some((v, exp)) = guard
        .run(s1, move |core| {
            let entry = take_entry(core, src_db, &src, false);
            if entry.is_none() {
                super::notify_on(core, src_db, class::KEY_MISS, "keymiss", &src);
            }
            entry
        })
        .await
    else {
        return Ok(Reply::Int(0));
    };
    let done = guard
        .run(s2, move |core| {
            let d = core.db_mut(dst_db);
            if d.get(&dst, unix_ms(), Lookup::Write).is_some() {
                if !replace {
                    return false;
                }
                // Deleted, then added anew (a `new` key), as Redis does.
                d.remove(&dst);
            }
            d.set(dst.clone(), v, exp);
            core.stats.dirty += 1;
            super::notify_on(core, dst_db, class::GENERIC, "copy_to", &dst);
            true
        })
        .await;
    if done {
        super::propagate(client, src_db, args);
    }
    drop(guard);
    Ok(Reply::Int(done as i64))
}

async fn move_key(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let src_db = client.db;
    let dst_db = super::db_index(client, &args[2])?;
    if src_db == dst_db {
        return Err(CmdError::other(
            "ERR source and destination objects are the same",
        ));
    }
    let key = args[1].clone();
    let target = client.shard.shard_of(&key);
    // Both databases of one key live on the same shard.
    let args = args.to_vec();
    // Propagated on the key's shard, in the same step as the move.
    let moved = shard::run_on(target, move |core| {
        let now = unix_ms();
        if core.db_mut(dst_db).get(&key, now, Lookup::Write).is_some() {
            return false;
        }
        let Some((v, exp)) = take_entry(core, src_db, &key, true) else {
            return false;
        };
        core.db_mut(dst_db).set(key.clone(), v, exp);
        core.stats.dirty += 1;
        super::notify_on(core, src_db, class::GENERIC, "move_from", &key);
        super::notify_on(core, dst_db, class::GENERIC, "move_to", &key);
        crate::propagate::expired(core);
        crate::propagate::command(core, src_db, &args);
        true
    })
    .await;
    Ok(Reply::Int(moved as i64))
}

async fn msetnx(client: &Client, db: usize, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::other(
            "ERR wrong number of arguments for 'msetnx' command",
        ));
    }
    let shards = shard::current().shards();
    let pairs: Vec<(Bytes, Bytes)> = args[1..]
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let involved: Vec<usize> = pairs
        .iter()
        .map(|(k, _)| shard::route::shard_of(k, shards))
        .collect();
    let guard = shard::hold(&involved).await;
    for &s in guard.shards() {
        let keys: Vec<Bytes> = pairs
            .iter()
            .zip(&involved)
            .filter(|(_, &o)| o == s)
            .map(|((k, _), _)| k.clone())
            .collect();
        let any = guard
            .run(s, move |core| {
                let now = unix_ms();
                keys.iter()
                    .any(|k| core.db_mut(db).get(k, now, Lookup::Write).is_some())
            })
            .await;
        if any {
            return Ok(Reply::Int(0));
        }
    }
    for &s in guard.shards() {
        let mine: Vec<(Bytes, Bytes)> = pairs
            .iter()
            .zip(&involved)
            .filter(|(_, &o)| o == s)
            .map(|(p, _)| p.clone())
            .collect();
        guard
            .run(s, move |core| {
                core.stats.dirty += mine.len() as u64;
                for (k, v) in mine {
                    core.db_mut(db)
                        .set(k.clone(), Value::Str(StrValue::from_set(v)), None);
                    super::notify_on(core, db, class::STRING, "set", &k);
                }
            })
            .await;
    }
    super::propagate(client, db, args);
    drop(guard);
    Ok(Reply::Int(1))
}
