//! XREADGROUP: reading streams as a consumer of a group, with Redis 7.0's
//! parsing, error order, replies, blocking and propagation.
//!
//! With `>` a consumer gets the entries after its group's last delivered
//! ID; each becomes pending for it (unless NOACK) and goes to replicas as
//! the XCLAIM that recreates that pending entry, or (NOACK) the group's
//! new last ID goes as XGROUP SETID. With any other ID it rereads its own
//! pending entries after that ID, which Redis does not propagate. The keys'
//! shards are held for the whole command, like XREAD's, so the check of
//! every key, the reads and a waiter's registration see one state.
//!
//! Depends on `keyspace::stream::groups` for the data, on `xgroup` for the
//! propagated commands and on `blocking` for BLOCK.

use super::error::{CmdError, CmdResult};
use super::lookup::{read, write_stream_silent};
use super::stream::{entry_reply, parse_read_args, strict_id};
use super::xgroup::{setid_command, xclaim_command};
use super::{Client, Ctx};
use crate::keyspace::{StreamId, Value};
use crate::resp::Reply;
use crate::shard::blocked::BlockOp;
use bytes::Bytes;

/// Who reads, and how, for one key.
#[derive(Clone, Debug)]
pub struct GroupRead {
    pub group: Bytes,
    pub consumer: Bytes,
    /// At most this many entries (0: all).
    pub count: usize,
    pub noack: bool,
}

fn consumer_created_command(key: &Bytes, read: &GroupRead) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"CREATECONSUMER"),
        key.clone(),
        read.group.clone(),
        read.consumer.clone(),
    ]
}

/// Serves `key` for `read`: new entries (`after` None, the `>` ID) or the
/// consumer's pending entries after `after`. `None` when `>` has no live
/// entry past the group's last ID (the key is left out of the reply, and
/// nothing changes); a blocked reader (`woken`) is served once the
/// stream's last ID passed the group's, as in Redis, even if what came
/// was deleted since.
fn serve(
    ctx: &mut Ctx,
    key: &Bytes,
    read: &GroupRead,
    after: Option<StreamId>,
    woken: bool,
) -> Result<Option<Reply>, CmdError> {
    let now = ctx.now_ms as i64;
    let db = ctx.db;
    let Some(s) = write_stream_silent(ctx, key)? else {
        return Ok(None);
    };
    let Some(mut g) = s.groups.remove(&read.group[..]) else {
        return Ok(None);
    };
    if after.is_none() && !woken && s.edge_id(false).is_none_or(|live| live <= g.last_id) {
        s.groups.insert(read.group.clone(), g);
        return Ok(None);
    }
    let created = g.add_consumer(&read.consumer, now);
    if let Some(c) = g.consumers.get_mut(&read.consumer) {
        c.seen_ms = now;
    }
    let mut propagate = Vec::new();
    let mut out = Vec::new();
    match after {
        Some(after) => {
            let owned: Vec<StreamId> = match (after.next(), g.consumers.get(&read.consumer)) {
                (Some(start), Some(c)) => c.pending.range(start..).copied().collect(),
                _ => Vec::new(),
            };
            for id in owned {
                if read.count > 0 && out.len() >= read.count {
                    break;
                }
                match s.entry(id) {
                    Some(pairs) => {
                        if let Some(p) = g.pending.get_mut(&id) {
                            p.delivery_ms = now;
                            p.deliveries = p.deliveries.wrapping_add(1);
                        }
                        out.push(entry_reply(id, pairs));
                    }
                    // Deleted from the stream since: the ID, no fields.
                    None => out.push(Reply::Array(vec![
                        Reply::Bulk(id.to_bytes()),
                        Reply::NilArray,
                    ])),
                }
            }
            if created && read.noack {
                propagate.push(consumer_created_command(key, read));
            }
        }
        None => {
            let start = g.last_id.next().unwrap_or(StreamId::MAX);
            let entries = s.range(start, StreamId::MAX, false, read.count);
            for (id, pairs) in entries {
                s.advance_group(&mut g, id);
                if !read.noack {
                    g.assign(id, &read.consumer, now, 1);
                    if let Some(p) = g.pending.get(&id) {
                        propagate.push(xclaim_command(key, &read.group, &g, id, p));
                    }
                }
                out.push(entry_reply(id, pairs));
            }
            if read.noack && !out.is_empty() {
                if created {
                    propagate.push(consumer_created_command(key, read));
                }
                propagate.push(setid_command(key, &read.group, &g));
            }
        }
    }
    s.groups.insert(read.group.clone(), g);
    ctx.dirty(1);
    if created {
        ctx.notify(crate::notify::class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.db().settle_touches(true);
    if !propagate.is_empty() {
        crate::propagate::write(ctx.core, db, &[], Some(&propagate));
    }
    Ok(Some(Reply::Array(out)))
}

/// A blocked XREADGROUP on `key`, now that the stream has an entry after
/// the group's last delivered ID (or lost the group).
pub(super) fn serve_blocked(
    ctx: &mut Ctx,
    key: &Bytes,
    read: &GroupRead,
) -> Result<Option<Reply>, CmdError> {
    let has_group = matches!(read_value(ctx, key), Some(Value::Stream(s)) if s.groups.contains_key(&read.group[..]));
    if !has_group {
        return Err(CmdError::other(
            "NOGROUP the consumer group this client was blocked on no longer exists",
        ));
    }
    serve(ctx, key, read, None, true)
}

fn read_value<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a Value> {
    let now = ctx.now_ms;
    ctx.db().get_ref(key, now)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds]
/// [NOACK] STREAMS key [key ...] id [id ...]
pub async fn xreadgroup(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let opts = parse_read_args(args, true, client.in_script)?;
    let Some((group, consumer)) = opts.group.clone() else {
        return Err(CmdError::other("ERR Missing GROUP option for XREADGROUP"));
    };
    let (keys, id_args) = opts.keys_and_ids(args);
    let (count, block, noack) = (opts.count, opts.block, opts.noack);
    let nkeys = keys.len();
    let db = client.db;
    let n = client.shard.shards();
    let guard = super::across::hold_keys(keys).await;
    let g = group.clone();
    // Per key: WRONGTYPE, or whether it has the group.
    let looks = super::across::read_keys(&guard, db, keys, move |ctx, k| match read(ctx, k) {
        Some(Value::Stream(s)) => Ok(s.groups.contains_key(&g[..])),
        None => Ok(false),
        Some(_) => Err(CmdError::WrongType),
    })
    .await;
    // Each key is checked whole (type, group, ID) before the next.
    let mut after = Vec::with_capacity(nkeys);
    for ((key, look), id_arg) in keys.iter().zip(looks).zip(id_args) {
        if !look? {
            return Err(CmdError::other(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&group)
            )));
        }
        after.push(match &id_arg[..] {
            b">" => None,
            b"$" => return Err(CmdError::other("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")),
            arg => Some(strict_id(arg)?),
        });
    }
    let read = GroupRead {
        group,
        consumer,
        count,
        noack,
    };
    let mut served = Vec::new();
    for (key, after) in keys.iter().zip(after.iter().copied()) {
        let (k, r) = (key.clone(), read.clone());
        let got = guard
            .run(crate::shard::route::shard_of(key, n), move |core| {
                let mut ctx = Ctx::new(core, db);
                serve(&mut ctx, &k, &r, after, false)
            })
            .await?;
        if let Some(entries) = got {
            served.push((Reply::Bulk(key.clone()), entries));
        }
    }
    if !served.is_empty() {
        return Ok(Reply::KeyedMap(served));
    }
    let may_block = !client.in_exec && !client.is_master;
    match block {
        Some(ms) if may_block => {
            let op = BlockOp::XReadGroup {
                group: read.group,
                consumer: read.consumer,
                count,
                noack,
            };
            Ok(super::blocking::block_stream_read(client, &guard, keys.to_vec(), op, ms).await)
        }
        _ => Ok(Reply::NilArray),
    }
}
