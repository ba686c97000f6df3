//! Dump files: taking a point-in-time snapshot of every shard, writing it as
//! an RDB file atomically, and loading one at start-up.
//!
//! The snapshot is a consistent cut: every shard is held while it copies
//! the *handles* of its keys and values (values are immutable `Bytes`, so a
//! later write replaces a value instead of changing it, and the snapshot
//! keeps the old one alive: copy-on-write per key, no second copy of the
//! data). Encoding and file I/O then run on a plain thread, off the shards.
//!
//! The only module of `persist` that touches the filesystem.

use super::rdb::{
    EncodeOptions, RdbDecoder, RdbEncoder, RdbError, RdbItem, RdbSink, ReadSource, WriteSink,
};
use crate::keyspace::Value;
use crate::node::unix_ms;
use crate::shard;
use bytes::Bytes;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One key of a snapshot.
pub struct SnapEntry {
    pub key: Bytes,
    /// A string's handle is shared; a hash or set is deep-copied here.
    pub value: Value,
    pub expire_at_ms: Option<u64>,
}

/// A consistent copy of every database, and what each shard had changed
/// when it was taken (so `rdb_changes_since_last_save` can drop them once
/// the save succeeded).
pub struct Snapshot {
    /// Per database, the entries of all shards.
    pub dbs: Vec<Vec<SnapEntry>>,
    pub dirty_per_shard: Vec<u64>,
    pub taken_unix_ms: u64,
}

impl Snapshot {
    pub fn keys(&self) -> usize {
        self.dbs.iter().map(Vec::len).sum()
    }
}

/// Takes the cut: holds every shard, copies handles, releases.
pub async fn snapshot() -> Snapshot {
    snapshot_with_cut(|| ()).await.0
}

/// Takes the cut and runs `at_cut` while every shard is still held: a full
/// sync reads the replication offset there, so the snapshot holds exactly
/// the writes before it.
pub async fn snapshot_with_cut<R>(at_cut: impl FnOnce() -> R) -> (Snapshot, R) {
    let guard = shard::hold_all().await;
    let parts = guard
        .run_each(|core| {
            let now = unix_ms();
            let dbs: Vec<Vec<SnapEntry>> = core
                .ks
                .dbs()
                .iter()
                .map(|db| {
                    db.keys_iter(now)
                        .filter_map(|k| {
                            let value = db.get_ref(k, now)?.clone();
                            Some(SnapEntry {
                                key: k.clone(),
                                value,
                                expire_at_ms: db.expire_at(k),
                            })
                        })
                        .collect()
                })
                .collect();
            (dbs, core.stats.dirty)
        })
        .await;
    let cut = at_cut();
    drop(guard);
    let mut dbs: Vec<Vec<SnapEntry>> = Vec::new();
    let mut dirty_per_shard = Vec::with_capacity(parts.len());
    for (shard_dbs, dirty) in parts {
        dirty_per_shard.push(dirty);
        if dbs.len() < shard_dbs.len() {
            dbs.resize_with(shard_dbs.len(), Vec::new);
        }
        for (i, entries) in shard_dbs.into_iter().enumerate() {
            dbs[i].extend(entries);
        }
    }
    (
        Snapshot {
            dbs,
            dirty_per_shard,
            taken_unix_ms: unix_ms(),
        },
        cut,
    )
}

/// Settings of one save.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    pub path: PathBuf,
    pub compress: bool,
    pub checksum: bool,
    /// Extra AUX fields (replication ids later).
    pub aux: Vec<(Bytes, Bytes)>,
    /// `rdb-key-save-delay`: microseconds to sleep per key written, so
    /// tests can write while a snapshot is being produced (as in Redis).
    pub key_delay_us: u64,
}

impl SaveOptions {
    /// `dbfilename` (relative to `dir`, the working directory),
    /// `rdbcompression`, `rdbchecksum`, `rdb-key-save-delay`; no aux fields.
    pub fn from_config(cfg: &crate::config::Config) -> SaveOptions {
        SaveOptions {
            path: PathBuf::from(cfg.dbfilename()),
            compress: cfg.bool_value("rdbcompression"),
            checksum: cfg.bool_value("rdbchecksum"),
            aux: Vec::new(),
            key_delay_us: cfg
                .get("rdb-key-save-delay")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
                .max(0) as u64,
        }
    }
}

/// Writes `snap` to `opts.path` atomically: a temp file in the same
/// directory, fsync, rename, fsync of the directory. A crash at any point
/// leaves the previous file intact.
pub fn write_rdb(snap: &Snapshot, opts: &SaveOptions) -> std::io::Result<u64> {
    replace_atomically(&opts.path, |tmp| write_file(snap, opts, tmp))
}

/// Writes `path` through `write` into a temp file of the same directory
/// (unique per call, so concurrent saves never share one), then renames it
/// over `path` and fsyncs the directory. On error the temp file is removed
/// and `path` is untouched.
fn replace_atomically<T>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("temp-{}-{seq}.rdb", std::process::id()));
    let result = write(&tmp);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()?;
    result
}

fn write_file(snap: &Snapshot, opts: &SaveOptions, tmp: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::create(tmp)?;
    let sink = WriteSink(std::io::BufWriter::with_capacity(1 << 20, file));
    let sink = encode(snap, opts, sink)?;
    let mut writer = sink.0;
    writer.flush()?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// Encodes `snap` as an RDB into `sink` (a file, or chunks a full sync
/// sends to replicas).
pub fn encode<S: RdbSink>(snap: &Snapshot, opts: &SaveOptions, sink: S) -> std::io::Result<S> {
    let mut enc = RdbEncoder::new(
        sink,
        EncodeOptions {
            version: 10,
            compress: opts.compress,
            checksum: opts.checksum,
        },
    )?;
    enc.aux(
        b"redis-ver",
        crate::cmd::connection::REDIS_VERSION.as_bytes(),
    )?;
    enc.aux(b"redis-bits", usize::BITS.to_string().as_bytes())?;
    enc.aux(b"ctime", (snap.taken_unix_ms / 1000).to_string().as_bytes())?;
    enc.aux(
        b"used-mem",
        crate::alloc::allocated_bytes().to_string().as_bytes(),
    )?;
    for (k, v) in &opts.aux {
        enc.aux(k, v)?;
    }
    enc.aux(b"aof-base", b"0")?;
    for (db, entries) in snap.dbs.iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let expires = entries.iter().filter(|e| e.expire_at_ms.is_some()).count();
        enc.select_db(db as u32, entries.len() as u64, expires as u64)?;
        for e in entries {
            super::values::write_entry(&mut enc, &e.key, &e.value, e.expire_at_ms)?;
            if opts.key_delay_us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(opts.key_delay_us));
            }
        }
    }
    enc.finish()
}

/// Writes an already encoded RDB to `path` atomically (temp file, fsync,
/// rename), as [`write_rdb`] does.
pub fn write_chunks(path: &Path, chunks: &[Bytes]) -> std::io::Result<()> {
    replace_atomically(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        for c in chunks {
            f.write_all(c)?;
        }
        f.sync_all()
    })
}

/// A sink that cuts the RDB into `Bytes` chunks of about `CHUNK` bytes:
/// what a full sync hands to every replica socket without copying.
#[derive(Default)]
pub struct ChunkSink {
    current: bytes::BytesMut,
    pub chunks: Vec<Bytes>,
    pub total: u64,
}

impl ChunkSink {
    const CHUNK: usize = 256 * 1024;

    pub fn finish(mut self) -> (Vec<Bytes>, u64) {
        if !self.current.is_empty() {
            self.chunks.push(self.current.split().freeze());
        }
        (self.chunks, self.total)
    }
}

impl RdbSink for ChunkSink {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.total += chunk.len() as u64;
        self.current.extend_from_slice(chunk);
        if self.current.len() >= Self::CHUNK {
            self.chunks.push(self.current.split().freeze());
        }
        Ok(())
    }
}

/// One loaded key: database, key, value, expiry (unix ms).
pub type LoadedKey = (usize, Bytes, Value, Option<u64>);

/// What a load found, for the start-up log.
pub struct Loaded {
    /// Per shard: the keys it must insert before serving.
    pub per_shard: Vec<Vec<LoadedKey>>,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub redis_ver: Option<String>,
    pub ctime: Option<u64>,
    pub used_mem: Option<u64>,
    /// Replication aux fields: the stream's database at the cut, and the
    /// history (id, offset) the snapshot belongs to.
    pub repl_stream_db: Option<usize>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<u64>,
}

#[derive(Debug)]
pub enum LoadError {
    Open(std::io::Error),
    Rdb(RdbError),
    DbOutOfRange(u32, usize),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Open(e) => write!(f, "Error opening the RDB file: {e}"),
            LoadError::Rdb(e) => write!(f, "{e}"),
            LoadError::DbOutOfRange(db, n) => write!(
                f,
                "FATAL: Data file was created with a Redis server configured to handle more than {n} databases. Exiting (db {db})"
            ),
        }
    }
}

/// Reads an RDB file and splits its keys by owning shard. `Ok(None)` when
/// the file does not exist (a fresh server).
pub fn load(path: &Path, shards: usize, databases: usize) -> Result<Option<Loaded>, LoadError> {
    load_with(path, shards, databases, false)
}

/// [`load`], keeping keys whose expiry has passed when `keep_expired`: a
/// replica loads its master's snapshot whole and waits for its `DEL`s.
pub fn load_with(
    path: &Path,
    shards: usize,
    databases: usize,
    keep_expired: bool,
) -> Result<Option<Loaded>, LoadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Open(e)),
    };
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut dec = RdbDecoder::new(ReadSource(reader)).map_err(LoadError::Rdb)?;
    let now = unix_ms();
    let limits = crate::node::encoding_limits();
    let mut out = Loaded {
        per_shard: vec![Vec::new(); shards.max(1)],
        keys_loaded: 0,
        keys_expired: 0,
        redis_ver: None,
        ctime: None,
        used_mem: None,
        repl_stream_db: None,
        repl_id: None,
        repl_offset: None,
    };
    loop {
        match dec.next().map_err(LoadError::Rdb)? {
            RdbItem::Eof => break,
            RdbItem::Aux(k, v) => {
                let text = String::from_utf8_lossy(&v).into_owned();
                match k.as_ref() {
                    b"redis-ver" => out.redis_ver = Some(text),
                    b"ctime" => out.ctime = text.parse().ok(),
                    b"used-mem" => out.used_mem = text.parse().ok(),
                    b"repl-stream-db" => out.repl_stream_db = text.parse().ok(),
                    b"repl-id" => out.repl_id = Some(text),
                    b"repl-offset" => out.repl_offset = text.parse().ok(),
                    _ => {}
                }
            }
            RdbItem::SelectDb(db) => {
                if db as usize >= databases {
                    return Err(LoadError::DbOutOfRange(db, databases));
                }
            }
            RdbItem::ResizeDb(..) => {}
            RdbItem::Entry(e) => {
                if e.db as usize >= databases {
                    return Err(LoadError::DbOutOfRange(e.db, databases));
                }
                // A master drops keys that expired while it was down, as
                // Redis does when loading.
                if !keep_expired && e.expire_at_ms.is_some_and(|at| at < now) {
                    out.keys_expired += 1;
                    continue;
                }
                let Some(value) = super::values::from_rdb(e.value, &limits) else {
                    continue;
                };
                let s = shard::route::shard_of(&e.key, shards);
                out.per_shard[s].push((e.db as usize, e.key, value, e.expire_at_ms));
                out.keys_loaded += 1;
            }
        }
    }
    Ok(Some(out))
}
