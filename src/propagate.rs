//! The one post-execution hook: turns an executed write into the bytes of
//! the replication stream and of the AOF.
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
//! before anything that follows them. A write is encoded once and copied
//! into the ring and into the AOF's feed (`persist::aof::feed`, which says
//! why the AOF does not read the ring); the feed inserts its own SELECTs,
//! as the ring does. Nothing is encoded when neither exists (no replica
//! ever attached, AOF off): the hot path pays one branch.
//!
//! A transaction (EXEC) runs commands on several shards; its writes must
//! enter the stream as one contiguous unit, `MULTI` ... `EXEC`, with no
//! other shard's write in between. While it holds its shards, each of them
//! carries a shared [`Capture`] (`ShardCore::capture`): [`command`] encodes
//! into it instead of the ring, and the EXEC appends the whole capture with
//! one ring append at the end ([`append_capture`]). Like Redis 7.0, a single
//! propagated command is not wrapped (it is atomic by itself).
//!
//! Depends on `shard::ShardCore` (the ring and feed handles and a scratch
//! buffer), `repl::backlog` and `persist::aof::feed`; knows nothing of
//! commands or sockets.

use crate::repl::encode_command;
use crate::shard::ShardCore;
use bytes::Bytes;

/// Commands propagated by a running transaction, encoded, in execution
/// order, with the database each ran in.
#[derive(Default, Debug)]
pub struct Capture {
    bytes: Vec<u8>,
    /// (database, end offset in `bytes`) per command.
    pieces: Vec<(u32, usize)>,
}

impl Capture {
    pub fn push(&mut self, db: usize, args: &[impl AsRef<[u8]>]) {
        encode_command(args, &mut self.bytes);
        self.pieces.push((db as u32, self.bytes.len()));
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The stream bytes of the whole capture: the database it starts in,
    /// the one it ends in, and the commands (wrapped in `MULTI`/`EXEC` when
    /// there are several) with a `SELECT` wherever the database changes.
    /// `None` when nothing was captured.
    pub fn into_unit(self) -> Option<(u32, u32, Vec<u8>)> {
        let &(first, _) = self.pieces.first()?;
        if self.pieces.len() == 1 {
            return Some((first, first, self.bytes));
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 32);
        encode_command(&[b"MULTI"], &mut out);
        let (mut db, mut start) = (first, 0);
        for &(piece_db, end) in &self.pieces {
            if piece_db != db {
                encode_command(&[&b"SELECT"[..], piece_db.to_string().as_bytes()], &mut out);
                db = piece_db;
            }
            out.extend_from_slice(&self.bytes[start..end]);
            start = end;
        }
        encode_command(&[b"EXEC"], &mut out);
        Some((first, db, out))
    }
}

/// Appends a transaction's capture to the stream in one piece.
pub fn append_capture(core: &ShardCore, capture: Capture) {
    if !core.propagating() {
        return;
    }
    if let Some((first, last, bytes)) = capture.into_unit() {
        if let Some(backlog) = core.backlog.as_ref() {
            backlog.append_span(core.id, first, last, &bytes);
        }
        if let Some(aof) = core.feeds_aof() {
            aof.feed.append_unit(first, last, &bytes);
        }
    }
}

/// Appends one command for database `db` to the stream (or to the running
/// transaction's capture).
pub fn command(core: &mut ShardCore, db: usize, args: &[impl AsRef<[u8]>]) {
    if !core.propagating() {
        return;
    }
    if let Some(capture) = core.capture.as_ref() {
        capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(db, args);
        return;
    }
    let buf = &mut core.prop_buf;
    buf.clear();
    encode_command(args, buf);
    if let Some(backlog) = core.backlog.as_ref() {
        backlog.append_command(core.id, db as u32, buf);
    }
    if let Some(aof) = core.aof.as_ref().filter(|_| !core.link_feeds_aof) {
        aof.feed.append_command(db as u32, buf);
    }
}

/// Appends the commands of an executed write: `DEL`s for keys that expired
/// while it ran, then the write itself or its rewrite.
pub fn write(core: &mut ShardCore, db: usize, args: &[Bytes], rewrite: Option<&[Vec<Bytes>]>) {
    if !core.propagating() {
        return;
    }
    expired(core);
    match rewrite {
        // Several commands for one write enter the stream as one unit,
        // `MULTI` ... `EXEC`, as Redis 7.0 wraps what a command propagates
        // (SPOP with a count, XREADGROUP's XCLAIMs). Inside a transaction
        // they join its capture.
        Some(cmds) if cmds.len() > 1 && core.capture.is_none() => {
            let mut capture = Capture::default();
            for c in cmds {
                capture.push(db, c);
            }
            append_capture(core, capture);
        }
        Some(cmds) => {
            for c in cmds {
                command(core, db, c);
            }
        }
        None => command(core, db, args),
    }
}

/// Turns keys this shard expired (lazily or actively) into `DEL`s. Without
/// a ring or an AOF the logs are only emptied.
pub fn expired(core: &mut ShardCore) {
    if !core.ks.has_expired() {
        return;
    }
    let keys = core.ks.drain_expired();
    if !core.propagating() {
        return;
    }
    for (db, key) in keys {
        command(core, db, &[&b"DEL"[..], &key[..]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(args, &mut out);
        out
    }

    #[test]
    fn empty_capture_is_nothing() {
        assert!(Capture::default().into_unit().is_none());
    }

    #[test]
    fn single_command_is_not_wrapped() {
        let mut c = Capture::default();
        c.push(3, &["SET", "k", "v"]);
        let (first, last, bytes) = c.into_unit().unwrap();
        assert_eq!((first, last), (3, 3));
        assert_eq!(bytes, enc(&["SET", "k", "v"]));
    }

    #[test]
    fn several_commands_are_wrapped_with_selects_where_the_db_changes() {
        let mut c = Capture::default();
        c.push(0, &["SET", "a", "1"]);
        c.push(0, &["INCR", "b"]);
        c.push(5, &["DEL", "c"]);
        let (first, last, bytes) = c.into_unit().unwrap();
        assert_eq!((first, last), (0, 5));
        let mut want = enc(&["MULTI"]);
        want.extend(enc(&["SET", "a", "1"]));
        want.extend(enc(&["INCR", "b"]));
        want.extend(enc(&["SELECT", "5"]));
        want.extend(enc(&["DEL", "c"]));
        want.extend(enc(&["EXEC"]));
        assert_eq!(bytes, want);
    }
}
