//! Loading the AOF at start-up: the manifest, then the base (an RDB, or
//! AOF commands, possibly an RDB preamble followed by commands) and the
//! incr files in order, each command run through the normal command path
//! as our master's commands are (a client that gets no replies).
//!
//! A truncated last command of the last file is cut off with
//! `aof-load-truncated yes` (the file is truncated at the last complete
//! command, as Redis does) and refused otherwise; a MULTI without its EXEC
//! at the end counts as truncated at the MULTI. Anything else malformed
//! refuses to start and leaves every file as it was. An old single-file
//! `appendonly.aof` in `dir` is moved into the AOF directory as the base
//! of a new manifest first, as Redis 7 upgrades it.
//!
//! [`reload`] is DEBUG LOADAOF: the same load into an emptied dataset
//! while the server runs.
//!
//! The command parser ([`parse_command`]) is pure and never panics on any
//! input. Depends on `cmd` (running commands), `persist::dump` (the RDB
//! part) and `shard`; never writes to a file except the truncation.

use super::manifest::{self, Entry, Kind, Manifest};
use crate::node::Node;
use crate::shard;
use bytes::{Bytes, BytesMut};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Longest bulk argument accepted (Redis's `proto-max-bulk-len` default).
const MAX_BULK: usize = 512 * 1024 * 1024;
/// Most arguments in one command accepted.
const MAX_ARGS: usize = 1024 * 1024;

/// What [`parse_command`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command and the bytes it took.
    Command(Vec<Bytes>, usize),
    /// An annotation line (`#TS:<unix time>` with `aof-timestamp-enabled`,
    /// or any `#...` line Redis skips) and the bytes it took.
    Annotation(usize),
    /// The buffer ends inside a command: more bytes are needed.
    Incomplete,
    /// Not an AOF command.
    Bad,
}

/// Parses one `*N\r\n($len\r\n<bytes>\r\n){N}` command. Pure, no panics.
pub fn parse_command(buf: &[u8]) -> Parsed {
    let mut pos = 0;
    let Some(&first) = buf.first() else {
        return Parsed::Incomplete;
    };
    if first == b'#' {
        return match memchr::memchr(b'\n', buf) {
            Some(nl) => Parsed::Annotation(nl + 1),
            None => Parsed::Incomplete,
        };
    }
    if first != b'*' {
        return Parsed::Bad;
    }
    let n = match number_line(buf, &mut pos, b'*') {
        Ok(n) => n,
        Err(p) => return p,
    };
    if !(1..=MAX_ARGS).contains(&n) {
        return Parsed::Bad;
    }
    let mut args = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        match buf.get(pos) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => return Parsed::Bad,
        }
        let len = match number_line(buf, &mut pos, b'$') {
            Ok(n) => n,
            Err(p) => return p,
        };
        if len > MAX_BULK {
            return Parsed::Bad;
        }
        let Some(end) = pos.checked_add(len) else {
            return Parsed::Bad;
        };
        if buf.len() < end + 2 {
            return Parsed::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Bad;
        }
        args.push(Bytes::copy_from_slice(&buf[pos..end]));
        pos = end + 2;
    }
    Parsed::Command(args, pos)
}

/// Reads `<marker><digits>\r\n` at `pos`, advancing past it.
fn number_line(buf: &[u8], pos: &mut usize, marker: u8) -> Result<usize, Parsed> {
    debug_assert_eq!(buf.get(*pos), Some(&marker));
    let start = *pos + 1;
    let Some(cr) = buf[start.min(buf.len())..].iter().position(|&b| b == b'\r') else {
        // No CR yet: incomplete unless what is there cannot be a number.
        let rest = &buf[start.min(buf.len())..];
        return Err(if rest.len() > 20 || !rest.iter().all(u8::is_ascii_digit) {
            Parsed::Bad
        } else {
            Parsed::Incomplete
        });
    };
    let digits = &buf[start..start + cr];
    let Some(&lf) = buf.get(start + cr + 1) else {
        return Err(Parsed::Incomplete);
    };
    if lf != b'\n' || digits.is_empty() || digits.len() > 19 {
        return Err(Parsed::Bad);
    }
    let mut v: usize = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(Parsed::Bad);
        }
        v = v * 10 + (d - b'0') as usize;
    }
    *pos = start + cr + 2;
    Ok(v)
}

/// How loading one file ended.
enum FileEnd {
    Complete,
    /// Ends inside a command (or a MULTI without EXEC); the last complete
    /// command ends at this offset.
    Truncated(u64),
}

/// Loads the AOF, if there is one. Returns its manifest (for the writer
/// to continue), `None` when there is no AOF. Errors are fatal start-up
/// errors, already logged.
pub async fn load(node: &Arc<Node>) -> Result<Option<Manifest>, ()> {
    let (dir, prefix, truncated_ok) = {
        let cfg = node.config();
        (
            super::aof_dir(&cfg),
            cfg.get("appendfilename").unwrap_or_default(),
            cfg.bool_value("aof-load-truncated"),
        )
    };
    let manifest_path = dir.join(manifest::manifest_name(&prefix));
    if !manifest_path.exists() {
        let old = Path::new(&prefix);
        if !old.is_file() {
            return Ok(None);
        }
        if let Err(e) = upgrade_old_style(&dir, &prefix) {
            tracing::warn!(
                "Error trying to move the old AOF file {prefix} into dir {}: {e}",
                dir.display()
            );
            return Err(());
        }
        tracing::info!(
            "Successfully migrated an old-style AOF file ({prefix}) into the AOF directory ({}).",
            dir.display()
        );
    }
    let text = std::fs::read(&manifest_path).map_err(|e| {
        tracing::warn!(
            "Unable to open the AOF manifest file {}: {e}",
            manifest::manifest_name(&prefix)
        );
    })?;
    let m = Manifest::parse(&text).map_err(|e| {
        tracing::warn!("{e}");
    })?;
    let files: Vec<Entry> = m.load_order().cloned().collect();
    if files.is_empty() {
        return Ok(Some(m));
    }
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(dir.join(&f.name)).map_or(0, |md| md.len()))
        .sum();
    node.loading_total_bytes.store(total, Ordering::Relaxed);
    let started = Instant::now();
    let last = files.len() - 1;
    for (i, entry) in files.iter().enumerate() {
        let path = dir.join(&entry.name);
        if !path.is_file() {
            tracing::warn!("The AOF file {} doesn't exist", entry.name);
            return Err(());
        }
        let t = Instant::now();
        let end = load_file(node, &path, entry).await?;
        if let FileEnd::Truncated(valid) = end {
            if i != last {
                tracing::warn!("Fatal error: the truncated file is not the last file");
                return Err(());
            }
            handle_truncated(&path, &entry.name, valid, truncated_ok)?;
        }
        let what = if entry.kind == Kind::Base {
            "base"
        } else {
            "incr"
        };
        tracing::info!(
            "DB loaded from {what} file {}: {:.3} seconds",
            entry.name,
            t.elapsed().as_secs_f64()
        );
    }
    tracing::info!(
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(Some(m))
}

/// DEBUG LOADAOF, as Redis 7.0 does it: what the running AOF holds in its
/// buffer is written (and fsynced under `always`) first, the dataset is
/// emptied and the AOF directory loaded again, while other clients get
/// `-LOADING`. Nothing loaded is propagated (Redis turns its AOF off while
/// loading and never propagates then): the shards' AOF and ring handles
/// are put aside meanwhile. `Err` when loading failed or there is no AOF
/// at all (Redis then exits; so does the caller).
pub async fn reload(node: &Arc<Node>) -> Result<(), ()> {
    if let Some(active) = node.aof.active() {
        // flushAppendOnlyFile(1). A disk refusing the buffer does not
        // hold the reload (Redis reloads without it too).
        let end = active.feed.end();
        while active.durable.get() < end
            && !active.health.write_failing()
            && !active.stopped.load(Ordering::SeqCst)
        {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    node.loading.store(true, Ordering::SeqCst);
    node.loading_loaded_bytes.store(0, Ordering::Relaxed);
    node.loading_start_unix
        .store(crate::node::unix_ms() / 1000, Ordering::Relaxed);
    let aside = Arc::new(
        shard::gather(|core| {
            core.ks.flush_all();
            (core.aof.take(), core.backlog.take())
        })
        .await,
    );
    // Boxed: loading runs commands, and DEBUG LOADAOF is one of them.
    let loading: std::pin::Pin<Box<dyn std::future::Future<Output = _> + '_>> =
        Box::pin(load(node));
    let loaded = loading.await;
    shard::gather(move |core| {
        let (aof, backlog) = aside[core.id].clone();
        // Keep whatever was installed meanwhile (a replica attaching).
        if core.aof.is_none() {
            core.aof = aof;
        }
        if core.backlog.is_none() {
            core.backlog = backlog;
        }
        // Redis: "server.dirty = 0; /* Prevent AOF / replication */".
        core.stats.dirty = 0;
    })
    .await;
    node.loading.store(false, Ordering::SeqCst);
    match loaded {
        // loadAppendOnlyFiles' AOF_NOT_EXIST: no manifest, or one listing
        // nothing.
        Ok(Some(m)) if m.base.is_some() || !m.incrs.is_empty() => {
            tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
            Ok(())
        }
        _ => Err(()),
    }
}

/// Moves `dir/../<prefix>` (the working directory) into the AOF directory
/// as the base of a new manifest.
fn upgrade_old_style(dir: &Path, prefix: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let m = Manifest {
        base: Some(Entry {
            name: prefix.to_string(),
            seq: 1,
            kind: Kind::Base,
        }),
        ..Manifest::default()
    };
    std::fs::rename(prefix, dir.join(prefix))?;
    super::write_manifest(dir, prefix, &m)
}

fn handle_truncated(path: &Path, name: &str, valid: u64, ok: bool) -> Result<(), ()> {
    if ok {
        tracing::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
        tracing::warn!("!!! Truncating the AOF {name} at offset {valid} !!!");
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(valid).and_then(|()| f.sync_all()));
        match truncated {
            Ok(()) => {
                tracing::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
                return Ok(());
            }
            Err(e) => tracing::warn!("Error truncating the AOF file {name}: {e}"),
        }
    }
    tracing::warn!(
        "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
    );
    Err(())
}

fn bad_format(name: &str) {
    tracing::warn!(
        "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
    );
}

/// Counts the bytes an RDB decoder consumed.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> crate::persist::rdb::RdbSource for Counted<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.n += buf.len() as u64;
        Ok(())
    }
}

/// Loads one file: an optional RDB preamble, then commands.
async fn load_file(node: &Arc<Node>, path: &Path, entry: &Entry) -> Result<FileEnd, ()> {
    let name = entry.name.clone();
    let mut file = std::fs::File::open(path).map_err(|e| {
        tracing::warn!("Fatal error: can't open the append log file {name} for reading: {e}");
    })?;
    let mut head = [0u8; 5];
    let n = read_full(&mut file, &mut head).map_err(|e| {
        tracing::warn!("Unrecoverable error reading the append only file {name}: {e}");
    })?;
    let mut offset = 0u64;
    if n == 5 && &head == b"REDIS" {
        tracing::info!("Reading RDB base file on AOF loading...");
        offset = load_rdb_part(node, path, &name).await?;
        tracing::info!("Reading the remaining AOF tail...");
    }
    load_commands(node, path, &name, offset).await
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Decodes the RDB at the start of `path` on a helper thread, hands each
/// shard its keys; returns where the RDB ended.
async fn load_rdb_part(node: &Arc<Node>, path: &Path, name: &str) -> Result<u64, ()> {
    let databases = node.config().databases();
    let (tx, rx) = shard::oneshot::channel();
    let path = path.to_path_buf();
    let stager = crate::persist::dump::Stager::new();
    let spawned = std::thread::Builder::new()
        .name("cascade-load".into())
        .spawn(move || {
            let r = std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    let mut src = Counted {
                        inner: std::io::BufReader::with_capacity(1 << 20, f),
                        n: 0,
                    };
                    let loaded =
                        crate::persist::dump::load_from(&mut src, stager, databases, false, 0)
                            .map_err(|e| e.to_string())?;
                    Ok((loaded, src.n))
                });
            tx.send(r)
        });
    if spawned.is_err() {
        tracing::warn!("Can't start the AOF load thread");
        return Err(());
    }
    let (loaded, end) = match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!("Error reading the RDB base file {name}, AOF loading aborted: {e}");
            return Err(());
        }
        Err(_) => {
            tracing::warn!("The AOF load thread died");
            return Err(());
        }
    };
    node.loading_loaded_bytes.fetch_add(end, Ordering::Relaxed);
    if crate::scripting::functions::install_loaded(
        &loaded.facts.functions,
        crate::scripting::functions::RestorePolicy::Flush,
    )
    .is_err()
    {
        tracing::warn!("Error loading the RDB base file {name}, AOF loading aborted");
        return Err(());
    }
    if let Err(e) = loaded.staged.install_everywhere().await {
        tracing::warn!("Error loading the RDB base file {name}, AOF loading aborted: {e}");
        return Err(());
    }
    Ok(end)
}

impl<R: Read> crate::persist::rdb::RdbSource for &mut Counted<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        (**self).read_exact(buf)
    }
}

/// Runs the commands of `path` from `offset` on.
async fn load_commands(
    node: &Arc<Node>,
    path: &Path,
    name: &str,
    offset: u64,
) -> Result<FileEnd, ()> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| {
        tracing::warn!("Fatal error: can't open the append log file {name} for reading: {e}");
    })?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| {
        tracing::warn!("Unrecoverable error reading the append only file {name}: {e}");
    })?;
    let mut client = crate::repl::replica::master_client(node, None, -1);
    client.info.borrow_mut().flags = "A".into();
    let mut applier =
        crate::cmd::apply::StreamApply::new(node.shards(), crate::cmd::apply::Source::Aof);
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 20];
    // File offset of buf[0].
    let mut pos = offset;
    // File offset before the MULTI of an open transaction.
    let mut before_multi: Option<u64> = None;
    let mut eof = false;
    let mut since_barrier = 0usize;
    loop {
        match parse_command(&buf) {
            Parsed::Command(args, used) => {
                let _ = buf.split_to(used);
                let cmd_start = pos;
                pos += used as u64;
                node.loading_loaded_bytes
                    .fetch_add(used as u64, Ordering::Relaxed);
                let Some(spec) = crate::cmd::table::table().lookup(&args[0]) else {
                    tracing::warn!(
                        "Unknown command '{}' reading the append only file {name}",
                        String::from_utf8_lossy(&args[0])
                    );
                    return Err(());
                };
                match spec.name {
                    "multi" => before_multi = Some(cmd_start),
                    "exec" => before_multi = None,
                    _ => {}
                }
                applier.apply(&mut client, args).await;
                since_barrier += 1;
                if since_barrier >= 1024 {
                    applier.barrier().await;
                    since_barrier = 0;
                    glommio::yield_if_needed().await;
                }
            }
            Parsed::Annotation(used) => {
                let _ = buf.split_to(used);
                pos += used as u64;
            }
            Parsed::Bad => {
                applier.barrier().await;
                bad_format(name);
                return Err(());
            }
            Parsed::Incomplete if !eof => {
                let n = file.read(&mut chunk).map_err(|e| {
                    tracing::warn!("Unrecoverable error reading the append only file {name}: {e}");
                })?;
                if n == 0 {
                    eof = true;
                } else {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            Parsed::Incomplete => {
                applier.barrier().await;
                if let Some(at) = before_multi {
                    // The transaction never ran (its commands were only
                    // queued); drop the client's queue with the tail.
                    tracing::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
                    client.multi = None;
                    return Ok(FileEnd::Truncated(at));
                }
                if buf.is_empty() {
                    return Ok(FileEnd::Complete);
                }
                return Ok(FileEnd::Truncated(pos));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::repl::encode_command(args, &mut out);
        out
    }

    #[test]
    fn parses_commands_and_reports_their_length() {
        let mut two = cmd(&["SET", "k", "v"]);
        let first = two.len();
        two.extend(cmd(&["DEL", "k"]));
        match parse_command(&two) {
            Parsed::Command(args, used) => {
                assert_eq!(args, ["SET", "k", "v"].map(Bytes::from));
                assert_eq!(used, first);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_prefix_of_a_command_is_incomplete() {
        let c = cmd(&["SET", "key", "a value\r\nwith crlf", ""]);
        for i in 0..c.len() {
            assert_eq!(parse_command(&c[..i]), Parsed::Incomplete, "prefix {i}");
        }
        assert!(matches!(parse_command(&c), Parsed::Command(_, n) if n == c.len()));
    }

    #[test]
    fn annotations_are_skipped_whole_lines() {
        assert_eq!(
            parse_command(b"#TS:1700000000\r\n*1"),
            Parsed::Annotation(16)
        );
        assert_eq!(parse_command(b"#TS:17000"), Parsed::Incomplete);
    }

    #[test]
    fn malformed_input_is_bad() {
        for bad in [
            &b"SET k v\r\n"[..],
            b"*0\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n$x\r\n",
            b"*1\r\n$1\r\nab\r\n",
            b"*1x\r\n",
            b"*-1\r\n",
            b"*99999999999999999999999\r\n",
            b"*1\r\n$999999999999\r\n",
            b"*1\n",
        ] {
            assert_eq!(
                parse_command(bad),
                Parsed::Bad,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator: no crate needed for a fuzz loop.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"*$\r\n0123456789abc-";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_command(&buf);
        }
    }
}
