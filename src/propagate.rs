//! The one post-execution hook: turns an executed write into the bytes of
//! the replication stream (and, later, of the AOF).
//!
//! Called on the shard that ran the write, synchronously with it, so the
//! stream's order per key is the order the writes happened in. A command
//! spanning shards is propagated once, whole, by its coordinator while it
//! still holds every involved shard.
//!
//! What goes in (Redis's rules): the command as the client sent it, unless
//! the handler asked for a rewrite (relative expirations become absolute,
//! INCRBYFLOAT becomes SET ... KEEPTTL, GETDEL becomes DEL...; see
//! `cmd::Ctx::propagate_as`); keys that expired on this master become `DEL`
//! before anything that follows them. Nothing is encoded when no ring
//! exists (no replica ever attached): the hot path pays one branch.
//!
//! Depends on `shard::ShardCore` (the ring handle and a scratch buffer) and
//! `repl::backlog`; knows nothing of commands or sockets.

use crate::repl::encode_command;
use crate::shard::ShardCore;
use bytes::Bytes;

/// Appends one command for database `db` to the stream.
pub fn command(core: &mut ShardCore, db: usize, args: &[impl AsRef<[u8]>]) {
    let Some(backlog) = core.backlog.as_ref() else {
        return;
    };
    let buf = &mut core.prop_buf;
    buf.clear();
    encode_command(args, buf);
    backlog.append_command(core.id, db as u32, buf);
}

/// Appends the commands of an executed write: `DEL`s for keys that expired
/// while it ran, then the write itself or its rewrite.
pub fn write(core: &mut ShardCore, db: usize, args: &[Bytes], rewrite: Option<&[Vec<Bytes>]>) {
    if core.backlog.is_none() {
        return;
    }
    expired(core);
    match rewrite {
        Some(cmds) => {
            for c in cmds {
                command(core, db, c);
            }
        }
        None => command(core, db, args),
    }
}

/// Turns keys this shard expired (lazily or actively) into `DEL`s. Without
/// a ring the logs are only emptied.
pub fn expired(core: &mut ShardCore) {
    if !core.ks.has_expired() {
        return;
    }
    let keys = core.ks.drain_expired();
    if core.backlog.is_none() {
        return;
    }
    for (db, key) in keys {
        command(core, db, &[&b"DEL"[..], &key[..]]);
    }
}
