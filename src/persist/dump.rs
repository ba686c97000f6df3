//! Dump files: writing a snapshot (see [`super::snapshot`]) as an RDB file
//! atomically, and loading one at start-up.
//!
//! The only module of `persist` that touches the filesystem.

use super::rdb::{RdbDecoder, RdbError, RdbItem, ReadSource, WriteSink};
use super::snapshot::{write_rdb, Cut};
use crate::keyspace::Value;
use crate::node::unix_ms;
use crate::shard;
use bytes::Bytes;
use std::path::{Path, PathBuf};

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
    /// The RDB is an AOF base (its `aof-base` aux field is 1, as Redis
    /// writes for an AOF's RDB preamble).
    pub aof_base: bool,
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
            aof_base: false,
        }
    }
}

/// Writes the snapshot of `cut` to `opts.path` atomically: a temp file in
/// the same directory (unique per call), fsync, rename, fsync of the
/// directory. A failure at any point leaves the previous file intact.
/// Returns the new file, open for reading (a disk-based full sync sends it
/// even if a later save replaces the name), and its length.
pub async fn save_file(cut: Cut, opts: &SaveOptions) -> Result<(std::fs::File, u64), String> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = opts.path.clone();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("temp-{}-{seq}.rdb", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {e}",
            tmp.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        )
    })?;
    let sink = WriteSink(std::io::BufWriter::with_capacity(1 << 20, file));
    let tmp_done = tmp.clone();
    let result = write_rdb(cut, opts, sink, move |sink| {
        let file = sink.0.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        std::fs::rename(&tmp_done, &path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok((std::fs::File::open(&path)?, len))
    })
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A reader that reports how far it got.
struct Counting<'a, R> {
    inner: R,
    progress: Option<&'a std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// One loaded key: database, key, value, expiry (unix ms).
pub type LoadedKey = (usize, Bytes, Value, Option<u64>);

/// Stores one shard's loaded keys in its databases.
pub fn insert_keys(core: &mut shard::ShardCore, keys: Vec<LoadedKey>) {
    for (db, key, value, expire) in keys {
        core.db_mut(db).set(key, value, expire);
    }
}

/// Hands each shard its loaded keys, one job per shard, for loads nothing
/// else writes during (start-up: the dump, the AOF base).
pub async fn install_per_shard(per_shard: Vec<Vec<LoadedKey>>) {
    for (id, keys) in per_shard.into_iter().enumerate() {
        shard::run_on(id, move |core| insert_keys(core, keys)).await;
    }
}

/// A load's per-shard keys for a job that runs on every shard at once
/// while they are all held (a replica's full sync, DEBUG RELOAD): each
/// shard takes its own part once.
pub struct ShardParts(std::sync::Mutex<Vec<Option<Vec<LoadedKey>>>>);

impl ShardParts {
    pub fn new(per_shard: Vec<Vec<LoadedKey>>) -> std::sync::Arc<ShardParts> {
        std::sync::Arc::new(ShardParts(std::sync::Mutex::new(
            per_shard.into_iter().map(Some).collect(),
        )))
    }

    /// Shard `id`'s keys; empty the second time.
    pub fn take(&self, id: usize) -> Vec<LoadedKey> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .and_then(Option::take)
            .unwrap_or_default()
    }
}

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
    load_counting(path, shards, databases, keep_expired, None, 0)
}

/// [`load_with`], adding the bytes read so far to `progress` as it goes
/// (INFO's `loading_loaded_bytes`) and sleeping `key_delay_us` per key
/// (`key-load-delay`, so tests can watch a load in progress).
pub fn load_counting(
    path: &Path,
    shards: usize,
    databases: usize,
    keep_expired: bool,
    progress: Option<&std::sync::atomic::AtomicU64>,
    key_delay_us: u64,
) -> Result<Option<Loaded>, LoadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Open(e)),
    };
    let reader = std::io::BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            progress,
        },
    );
    load_from(
        ReadSource(reader),
        shards,
        databases,
        keep_expired,
        key_delay_us,
    )
    .map(Some)
}

/// Decodes one RDB from `source` (which is left just past its end: an
/// AOF base may go on with commands) and splits its keys by owning shard.
pub fn load_from<S: super::rdb::RdbSource>(
    source: S,
    shards: usize,
    databases: usize,
    keep_expired: bool,
    key_delay_us: u64,
) -> Result<Loaded, LoadError> {
    let mut dec = RdbDecoder::new(source).map_err(LoadError::Rdb)?;
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
                if key_delay_us > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(key_delay_us));
                }
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
    Ok(out)
}
