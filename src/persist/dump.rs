//! Dump files: writing a snapshot (see [`super::snapshot`]) as an RDB file
//! atomically, and loading one at start-up.
//!
//! The only module of `persist` that touches the filesystem.

use super::rdb::{KeyStamp, RdbDecoder, RdbError, RdbItem, ReadSource, StampKind, WriteSink};
use super::snapshot::{write_rdb, Cut};
use crate::keyspace::access;
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
    /// IDLE or FREQ before every key, from `maxmemory-policy`.
    pub key_stamps: Option<StampKind>,
    /// Set by a shutdown that wants the snapshot slot for its own save:
    /// the save then stops at its next slice (or mid `key_delay_us`
    /// sleep) and fails, as Redis kills a saving child.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
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
            key_stamps: match crate::keyspace::evict::Policy::from_name(&cfg.maxmemory_policy()) {
                p if p.is_lfu() => Some(StampKind::Freq),
                p if p.by_access() => Some(StampKind::Idle),
                _ => None,
            },
            cancel: None,
        }
    }
}

/// The dump file's write buffer.
const FILE_BUFFER: usize = 1 << 20;

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
    let _tracked = super::temp::track(&tmp);
    let sink = WriteSink(std::io::BufWriter::with_capacity(FILE_BUFFER, file));
    // The buffer is the snapshot's memory, as the queued slices are
    // (`maxmemory` does not count it; the snapshot's end clears it).
    let node = cut.node().clone();
    node.snapshot_progress.enter_queue(FILE_BUFFER);
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
    node.snapshot_progress.leave_queue(FILE_BUFFER);
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

pub use crate::keyspace::{Install, LoadedKey, StageError};

/// Keys per batch a load hands a shard: big enough that posting costs
/// nothing next to inserting, small enough that a shard serving clients
/// meanwhile pauses well under a millisecond per batch.
const BATCH_KEYS: usize = 512;
/// The most keys a RESIZEDB hint may pre-size one shard's table for: the
/// hint comes from the file, and a corrupt one must not make us allocate
/// gigabytes of empty buckets. Bigger loads simply grow past it.
const MAX_RESERVE: u64 = 1 << 24;

/// Hands a load's keys to their owning shards while the load goes on: each
/// shard inserts them into its staging databases (see
/// [`crate::keyspace::staging`]) in batches, in parallel with the decoder
/// and with each other, and keeps serving its current data until the load
/// is installed. Created on a shard executor, then moved to the thread that
/// decodes. Dropped before [`Stager::finish`] (a failed load), it frees
/// what it staged.
pub struct Stager {
    mesh: std::sync::Arc<shard::Mesh>,
    id: u64,
    pending: Vec<Vec<LoadedKey>>,
    sent: Vec<u64>,
    finished: bool,
}

impl Stager {
    /// Starts a load; must be called on a shard executor.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Stager {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mesh = shard::current().mesh();
        let shards = mesh.shards();
        for s in 0..shards {
            mesh.post_aside(s, Box::new(move |core| core.ks.stage_begin(id)));
        }
        Stager {
            mesh,
            id,
            pending: vec![Vec::new(); shards],
            sent: vec![0; shards],
            finished: false,
        }
    }

    fn shards(&self) -> usize {
        self.pending.len()
    }

    /// Sizes database `db` for `keys` keys and `ttls` TTLs in all, split
    /// evenly over the shards (keys hash evenly), with a little slack.
    fn reserve(&self, db: usize, keys: u64, ttls: u64) {
        let share = |n: u64| {
            let per = n / self.shards() as u64;
            (per + per / 16 + 16).min(MAX_RESERVE) as usize
        };
        let (keys, ttls, id) = (share(keys), share(ttls), self.id);
        for s in 0..self.shards() {
            self.mesh.post_aside(
                s,
                Box::new(move |core| core.ks.stage_reserve(id, db, keys, ttls)),
            );
        }
    }

    fn push(&mut self, key: LoadedKey) {
        let s = shard::route::shard_of(&key.1, self.shards());
        self.pending[s].push(key);
        if self.pending[s].len() >= BATCH_KEYS {
            self.send(s);
        }
    }

    fn send(&mut self, s: usize) {
        let batch = std::mem::take(&mut self.pending[s]);
        if batch.is_empty() {
            return;
        }
        self.sent[s] += 1;
        let id = self.id;
        self.mesh
            .post_aside(s, Box::new(move |core| core.ks.stage_keys(id, batch)));
    }

    /// Sends what is left; the load is then ready to install once every
    /// shard has taken its batches ([`StagedLoad::ready`]).
    fn finish(mut self) -> StagedLoad {
        for s in 0..self.shards() {
            self.send(s);
        }
        self.finished = true;
        StagedLoad {
            mesh: self.mesh.clone(),
            id: self.id,
            sent: std::mem::take(&mut self.sent),
        }
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        if !self.finished {
            discard(&self.mesh, self.id);
        }
    }
}

fn discard(mesh: &shard::Mesh, id: u64) {
    for s in 0..mesh.shards() {
        mesh.post_aside(s, Box::new(move |core| core.ks.stage_discard(id)));
    }
}

/// A load whose keys are all on their way to the shards' staging. Installed
/// with [`StagedLoad::install`] on every shard; dropped, it frees what it
/// staged (installed staging is already gone, so that is then a no-op).
pub struct StagedLoad {
    mesh: std::sync::Arc<shard::Mesh>,
    id: u64,
    sent: Vec<u64>,
}

impl StagedLoad {
    /// Resolves once every shard has stored the batches sent to it.
    pub async fn ready(&self) {
        for s in 0..self.sent.len() {
            shard::barrier(s).await;
        }
    }

    /// Moves this shard's staged keys into its live databases (after
    /// [`StagedLoad::ready`]); see [`crate::keyspace::Keyspace::stage_install`].
    pub fn install(&self, core: &mut shard::ShardCore, how: Install) -> Result<usize, StageError> {
        let sent = self.sent.get(core.id).copied().unwrap_or(0);
        core.ks.stage_install(self.id, sent, how)
    }

    /// Installs on every shard in turn, replacing all data: for loads
    /// nothing else writes during (start-up: the dump, the AOF base).
    pub async fn install_everywhere(self) -> Result<(), StageError> {
        self.ready().await;
        let load = std::sync::Arc::new(self);
        for s in 0..load.sent.len() {
            let l = load.clone();
            shard::run_on(s, move |core| {
                l.install(core, Install::Replace { lazy: false })
            })
            .await?;
        }
        Ok(())
    }
}

impl Drop for StagedLoad {
    fn drop(&mut self) {
        discard(&self.mesh, self.id);
    }
}

/// What a load found, for the start-up log.
pub struct Loaded {
    /// The keys, staged on their shards.
    pub staged: StagedLoad,
    pub facts: LoadFacts,
}

/// What a load read besides the keys.
#[derive(Debug, Default)]
pub struct LoadFacts {
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
    /// The function libraries' codes (`scripting::functions`), in file
    /// order.
    pub functions: Vec<Bytes>,
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

/// Reads an RDB file, handing its keys to `stager`. `Ok(None)` when the
/// file does not exist (a fresh server).
pub fn load(path: &Path, stager: Stager, databases: usize) -> Result<Option<Loaded>, LoadError> {
    load_counting(path, stager, databases, false, None, 0)
}

/// [`load`], keeping keys whose expiry has passed when `keep_expired`,
/// adding the bytes read so far to `progress` as it goes (INFO's
/// `loading_loaded_bytes`) and sleeping `key_delay_us` per key
/// (`key-load-delay`, so tests can watch a load in progress).
pub fn load_counting(
    path: &Path,
    stager: Stager,
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
        stager,
        databases,
        keep_expired,
        key_delay_us,
    )
    .map(Some)
}

/// Decodes one RDB from `source` (which is left just past its end: an
/// AOF base may go on with commands), handing its keys to `stager`.
pub fn load_from<S: super::rdb::RdbSource>(
    source: S,
    mut stager: Stager,
    databases: usize,
    keep_expired: bool,
    key_delay_us: u64,
) -> Result<Loaded, LoadError> {
    let mut dec = RdbDecoder::new(source).map_err(LoadError::Rdb)?;
    let now = unix_ms();
    let limits = crate::node::encoding_limits();
    let mut selected = 0;
    let mut out = LoadFacts::default();
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
                selected = db as usize;
            }
            RdbItem::ResizeDb(keys, ttls) => stager.reserve(selected, keys, ttls),
            RdbItem::Function(code) => out.functions.push(code),
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
                let stamp = e.stamp.and_then(|s| match s {
                    KeyStamp::IdleSecs(secs) => access::stamp_for_idle(secs),
                    KeyStamp::Freq(counter) => access::stamp_for_freq(counter),
                });
                stager.push((e.db as usize, e.key, value, e.expire_at_ms, stamp));
                out.keys_loaded += 1;
            }
        }
    }
    Ok(Loaded {
        staged: stager.finish(),
        facts: out,
    })
}
