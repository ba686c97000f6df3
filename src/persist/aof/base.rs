//! The AOF-format base (`aof-use-rdb-preamble no`): a snapshot written as
//! the commands that rebuild it, as Redis's rewrite writes them: a
//! `FUNCTION LOAD` per function library, then `SELECT` per database, then per key `SET`, `RPUSH`, `SADD`, `ZADD` or `HMSET`
//! (collections in commands of at most 64 items), and `PEXPIREAT` for a
//! key with a TTL. Keys whose TTL had passed at the cut are left out.
//!
//! Runs on the snapshot's encoder thread ([`crate::persist::snapshot::write_with`]);
//! knows nothing of files beyond the writer it is given.

use crate::keyspace::{Member, SnapItem, Value};
use crate::persist::snapshot::Slices;
use crate::repl::encode_command;
use bytes::Bytes;
use std::io::Write;

/// Items per command for collections (Redis's AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

/// Writes the function libraries `functions`, then every key `slices`
/// hands out, as commands into `out`.
pub fn encode_commands<W: Write>(
    mut slices: Slices,
    functions: &[Bytes],
    taken_unix_ms: u64,
    key_delay_us: u64,
    mut out: W,
) -> std::io::Result<W> {
    let mut current_db = None;
    let mut buf = Vec::with_capacity(1 << 16);
    for code in functions {
        encode_command(&[&b"FUNCTION"[..], b"LOAD", code], &mut buf);
    }
    while let Some((db, items)) = slices.next_slice()? {
        if current_db != Some(db) {
            encode_command(&[&b"SELECT"[..], db.to_string().as_bytes()], &mut buf);
            current_db = Some(db);
        }
        for item in items {
            if item.expire_at_ms.is_some_and(|at| at <= taken_unix_ms) {
                continue;
            }
            key_commands(&item, &mut buf);
            if buf.len() >= 1 << 16 {
                out.write_all(&buf)?;
                buf.clear();
            }
            if key_delay_us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(key_delay_us));
            }
        }
    }
    out.write_all(&buf)?;
    Ok(out)
}

/// The commands that rebuild one key.
pub fn key_commands(item: &SnapItem, out: &mut Vec<u8>) {
    let key = &item.key;
    match &item.value {
        Value::Str(s) => encode_command(&[&b"SET"[..], key, s.bytes()], out),
        Value::List(l) => batched(out, b"RPUSH", key, l.iter().map(Bytes::copy_from_slice), 1),
        Value::Set(s) => batched(
            out,
            b"SADD",
            key,
            s.iter().map(|m| match m {
                Member::Int(i) => Bytes::from(i.to_string()),
                Member::Bytes(b) => b.clone(),
            }),
            1,
        ),
        Value::Zset(z) => batched(
            out,
            b"ZADD",
            key,
            z.iter().flat_map(|(m, score)| {
                [
                    Bytes::from(crate::util::digest::format_score(score)),
                    m.clone(),
                ]
            }),
            2,
        ),
        Value::Hash(h) => batched(
            out,
            b"HMSET",
            key,
            h.iter()
                .flat_map(|(f, v)| [Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)]),
            2,
        ),
        Value::Stream(st) => stream_commands(key, st, out),
    }
    if let Some(at) = item.expire_at_ms {
        encode_command(&[&b"PEXPIREAT"[..], key, at.to_string().as_bytes()], out);
    }
}

/// A stream as Redis rewrites one: an XADD per entry (an empty stream by
/// the `XADD key MAXLEN 0 0-1 x y` trick), then XSETID with the last ID,
/// the entries added and the greatest deleted ID; then per group XGROUP
/// CREATE with its last ID and entries read, an XCLAIM per pending entry
/// and XGROUP CREATECONSUMER for consumers with none.
fn stream_commands(key: &Bytes, st: &crate::keyspace::StreamValue, out: &mut Vec<u8>) {
    use crate::keyspace::StreamId;
    if st.is_empty() {
        let id = StreamId::new(0, 1).to_bytes();
        encode_command(&[&b"XADD"[..], key, b"MAXLEN", b"0", &id, b"x", b"y"], out);
    } else {
        for (id, pairs) in st.range(StreamId::MIN, StreamId::MAX, false, 0) {
            let id = id.to_bytes();
            let mut cmd: Vec<&[u8]> = vec![b"XADD", key, &id];
            for (f, v) in &pairs {
                cmd.push(f);
                cmd.push(v);
            }
            encode_command(&cmd, out);
        }
    }
    let (last, added, deleted) = (
        st.last_id.to_bytes(),
        st.entries_added.to_string(),
        st.max_deleted_id.to_bytes(),
    );
    encode_command(
        &[
            &b"XSETID"[..],
            key,
            &last,
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &deleted,
        ],
        out,
    );
    for (name, g) in &st.groups {
        let (last, read) = (g.last_id.to_bytes(), g.entries_read.to_string());
        encode_command(
            &[
                &b"XGROUP"[..],
                b"CREATE",
                key,
                name,
                &last,
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
            out,
        );
        for (id, p) in &g.pending {
            let (id, time, count) = (
                id.to_bytes(),
                p.delivery_ms.to_string(),
                p.deliveries.to_string(),
            );
            encode_command(
                &[
                    &b"XCLAIM"[..],
                    key,
                    name,
                    &p.consumer,
                    b"0",
                    &id,
                    b"TIME",
                    time.as_bytes(),
                    b"RETRYCOUNT",
                    count.as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ],
                out,
            );
        }
        for (cname, c) in &g.consumers {
            if c.pending.is_empty() {
                encode_command(&[&b"XGROUP"[..], b"CREATECONSUMER", key, name, cname], out);
            }
        }
    }
}

/// `cmd key a b c ...` in commands of at most [`ITEMS_PER_CMD`] items of
/// `per_item` arguments each.
fn batched(
    out: &mut Vec<u8>,
    cmd: &[u8],
    key: &Bytes,
    args: impl Iterator<Item = Bytes>,
    per_item: usize,
) {
    let mut pending: Vec<Bytes> = Vec::with_capacity(2 + ITEMS_PER_CMD * per_item);
    let flush = |pending: &mut Vec<Bytes>, out: &mut Vec<u8>| {
        if pending.len() > 2 {
            encode_command(pending, out);
        }
        pending.truncate(2);
    };
    pending.push(Bytes::copy_from_slice(cmd));
    pending.push(key.clone());
    for a in args {
        pending.push(a);
        if pending.len() == 2 + ITEMS_PER_CMD * per_item {
            flush(&mut pending, out);
        }
    }
    flush(&mut pending, out);
}
