//! What one Cascade process shares across its shards: configuration,
//! identity (run id, replication id), start time and the few counters that
//! must be global (client ids, connected clients).
//!
//! Everything here is behind atomics or a lock that is taken rarely (config
//! reads at connect time and by admin commands). Per-command counters live
//! in each shard instead ([`crate::shard::ShardStats`]).

use crate::config::Config;
use crate::keyspace::Limits;
use crate::shard::inbox::Inbox;
use crate::shard::Mesh;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Progress and copy-on-write cost of the running snapshot, kept by
/// `persist::snapshot`, read by INFO. Zero when no snapshot runs.
#[derive(Default)]
pub struct SnapshotProgress {
    /// Keys at the cut, over all shards and databases.
    pub keys_total: AtomicU64,
    /// Keys the encoder has written (or skipped as expired) so far.
    pub keys_processed: AtomicU64,
    /// Unix ms of the cut.
    pub started_unix_ms: AtomicU64,
    /// Each shard's bytes held for the snapshot, as last reported.
    cow_per_shard: Mutex<Vec<usize>>,
    /// The largest sum of those during this snapshot.
    pub cow_peak: AtomicUsize,
    /// The peak of the last finished snapshot (`rdb_last_cow_size`).
    pub last_cow: AtomicUsize,
    /// The sum of the shards' last reports, while a snapshot runs.
    pub cow_now: AtomicUsize,
    /// Bytes of slices the shards handed out that the writer has not taken
    /// yet (encoded entries, or keys and values for an AOF rewrite).
    pub in_flight: AtomicUsize,
}

impl SnapshotProgress {
    /// A new snapshot's cut holding `keys` keys.
    pub fn begin(&self, keys: u64, now_ms: u64) {
        self.keys_total.store(keys, Ordering::Relaxed);
        self.keys_processed.store(0, Ordering::Relaxed);
        self.started_unix_ms.store(now_ms, Ordering::Relaxed);
        self.cow_peak.store(0, Ordering::Relaxed);
        self.cow_per_shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The encoder is done with `keys` more keys.
    pub fn add_processed(&self, keys: u64) {
        self.keys_processed.fetch_add(keys, Ordering::Relaxed);
    }

    /// Shard `shard` holds `cow` bytes for the snapshot.
    pub fn note_cow(&self, shard: usize, cow: usize) {
        let mut per = self.cow_per_shard.lock().unwrap_or_else(|e| e.into_inner());
        if per.len() <= shard {
            per.resize(shard + 1, 0);
        }
        per[shard] = cow;
        let sum = per.iter().sum();
        self.cow_peak.fetch_max(sum, Ordering::Relaxed);
        self.cow_now.store(sum, Ordering::Relaxed);
    }

    /// A slice of `bytes` was queued for the writer.
    pub fn enter_queue(&self, bytes: usize) {
        self.in_flight.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The writer took a slice of `bytes` off the queue.
    pub fn leave_queue(&self, bytes: usize) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    /// All the snapshot holds now: the shards' reports and the queue.
    pub fn held_now(&self) -> usize {
        self.cow_now.load(Ordering::Relaxed) + self.in_flight.load(Ordering::Relaxed)
    }

    /// What the other shards last reported holding for the snapshot, and
    /// the queue.
    pub fn cow_of_others(&self, shard: usize) -> usize {
        let per = self.cow_per_shard.lock().unwrap_or_else(|e| e.into_inner());
        per.iter()
            .enumerate()
            .filter(|(i, _)| *i != shard)
            .map(|(_, b)| *b)
            .sum::<usize>()
            + self.in_flight.load(Ordering::Relaxed)
    }

    /// The snapshot ended: its peak becomes the last one.
    pub fn end(&self) {
        self.last_cow
            .store(self.cow_peak.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        self.cow_now.store(0, Ordering::Relaxed);
        self.in_flight.store(0, Ordering::Relaxed);
        self.keys_total.store(0, Ordering::Relaxed);
        self.keys_processed.store(0, Ordering::Relaxed);
        self.started_unix_ms.store(0, Ordering::Relaxed);
    }
}

pub struct Node {
    pub config: RwLock<Config>,
    pub mesh: Arc<Mesh>,
    /// Random 40-hex id of this run (`run_id` in INFO server).
    pub run_id: String,
    /// Replication: role, ids, offsets, the ring, attached replicas.
    pub repl: crate::repl::ReplState,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub next_client_id: AtomicU64,
    pub connected_clients: AtomicUsize,
    /// Set once a shutdown has begun; listeners stop accepting.
    pub shutting_down: AtomicBool,
    /// Set once every shard listens and "Server initialized" is logged:
    /// listeners accept only from then on (connections made earlier wait
    /// in the kernel's backlog), so no client is served before that line,
    /// as with Redis.
    pub initialized: AtomicBool,
    /// Clients in MONITOR mode: each gets the formatted lines of every
    /// command through its own inbox. `monitor_count` lets the command path
    /// skip all of it with one relaxed load when nobody monitors.
    pub monitors: Mutex<Vec<(u64, Arc<Inbox<Bytes>>)>>,
    pub monitor_count: AtomicUsize,
    /// Port actually listened on (CONFIG may say 0 for "no TCP").
    pub port: AtomicUsize,
    /// Unix ms until which clients are paused (CLIENT PAUSE), 0 if none.
    pub pause_until_ms: AtomicU64,
    /// Whether CLIENT PAUSE pauses only writes.
    pub pause_writes_only: AtomicBool,
    /// A FAILOVER in progress pauses client writes; apart from CLIENT
    /// PAUSE, since CLIENT UNPAUSE does not lift it (as in Redis).
    pub failover_writes_paused: AtomicBool,
    /// Unix seconds of the last successful save (LASTSAVE).
    pub last_save_unix: AtomicI64,
    /// DEBUG SET-ACTIVE-EXPIRE: whether shards expire keys in the background.
    pub active_expire: AtomicBool,
    /// `slowlog-log-slower-than` (µs; negative disables) and
    /// `slowlog-max-len`, cached so commands need not read the config.
    pub slowlog_slower_than_us: AtomicI64,
    /// `latency-tracking`: commands feed `INFO latencystats`.
    pub latency_tracking: AtomicBool,
    pub slowlog_max_len: AtomicUsize,
    pub next_slowlog_id: AtomicU64,
    /// Where to remove the pidfile at exit.
    pub pidfile: RwLock<Option<String>>,
    /// The listening sockets of every shard (raw fds, owned by `net`),
    /// taken out of LISTEN state by [`Node::shutdown_now`].
    pub listening: Mutex<Vec<std::os::fd::RawFd>>,
    /// A BGSAVE is running (`rdb_bgsave_in_progress`).
    pub bgsave_in_progress: AtomicBool,
    /// Set by a shutdown to stop the running save (see
    /// `SaveOptions::cancel`); each save clears it when it starts.
    pub save_cancel: Arc<AtomicBool>,
    /// A keyspace snapshot (save or full sync) is being produced: shards
    /// hold one copy-on-write snapshot at a time (see `persist::snapshot`).
    pub snapshot_running: AtomicBool,
    /// How far the running snapshot is and what it costs (INFO
    /// persistence `current_*`, `rdb_last_cow_size`).
    pub snapshot_progress: SnapshotProgress,
    /// The start-up load of the dump is running: commands without the
    /// `loading` flag get `-LOADING` (INFO `loading:1`).
    pub loading: AtomicBool,
    /// Size of the file being loaded and bytes read so far, and when the
    /// load started (unix seconds), for INFO persistence.
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    pub loading_start_unix: AtomicU64,
    /// Outcome of the last save (`rdb_last_bgsave_status`).
    pub last_save_ok: AtomicBool,
    /// Saves completed (`rdb_saves`).
    pub rdb_saves: AtomicU64,
    /// Duration of the last save in seconds, -1 before the first.
    pub last_save_duration_sec: AtomicI64,
    /// Keys loaded and expired by the start-up load.
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    /// Monotonic counter of config changes, so connections can refresh their
    /// cached limits cheaply.
    pub config_epoch: AtomicU64,
    /// Pub/sub subscriptions of every connection of every shard.
    pub pubsub: crate::pubsub::Registry,
    /// The append-only file: the running one, if on, and INFO's counters.
    pub aof: crate::persist::aof::Aof,
    /// The running SHUTDOWN, if any (and its pause of client writes).
    pub shutdown: crate::cmd::shutdown::Shutdown,
    /// `maxmemory` and eviction (see `crate::evict`).
    pub memory: crate::evict::MemoryLimit,
}

impl Node {
    pub fn new(config: Config, mesh: Arc<Mesh>) -> Arc<Node> {
        let now_ms = unix_ms();
        let mesh_shards = mesh.shards();
        crate::keyspace::access::set_clock(now_ms);
        Arc::new(Node {
            config: RwLock::new(config),
            mesh,
            run_id: random_hex40(),
            repl: crate::repl::ReplState::default(),
            started: Instant::now(),
            started_unix_ms: now_ms,
            next_client_id: AtomicU64::new(1),
            connected_clients: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            initialized: AtomicBool::new(false),
            monitors: Mutex::new(Vec::new()),
            monitor_count: AtomicUsize::new(0),
            port: AtomicUsize::new(0),
            pause_until_ms: AtomicU64::new(0),
            pause_writes_only: AtomicBool::new(false),
            failover_writes_paused: AtomicBool::new(false),
            last_save_unix: AtomicI64::new((now_ms / 1000) as i64),
            config_epoch: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            slowlog_slower_than_us: AtomicI64::new(10_000),
            latency_tracking: AtomicBool::new(true),
            slowlog_max_len: AtomicUsize::new(128),
            next_slowlog_id: AtomicU64::new(0),
            pidfile: RwLock::new(None),
            listening: Mutex::new(Vec::new()),
            bgsave_in_progress: AtomicBool::new(false),
            save_cancel: Arc::new(AtomicBool::new(false)),
            snapshot_running: AtomicBool::new(false),
            snapshot_progress: SnapshotProgress::default(),
            loading: AtomicBool::new(false),
            loading_total_bytes: AtomicU64::new(0),
            loading_loaded_bytes: AtomicU64::new(0),
            loading_start_unix: AtomicU64::new(0),
            last_save_ok: AtomicBool::new(true),
            rdb_saves: AtomicU64::new(0),
            last_save_duration_sec: AtomicI64::new(-1),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            pubsub: crate::pubsub::Registry::default(),
            aof: crate::persist::aof::Aof::default(),
            shutdown: crate::cmd::shutdown::Shutdown::default(),
            memory: crate::evict::MemoryLimit::new(mesh_shards),
        })
    }

    pub fn config(&self) -> RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config_mut(&self) -> RwLockWriteGuard<'_, Config> {
        self.config_epoch.fetch_add(1, Ordering::Relaxed);
        self.config.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shards(&self) -> usize {
        self.mesh.shards()
    }

    /// Puts a client in MONITOR mode; returns the inbox its lines arrive in.
    pub fn add_monitor(&self, client_id: u64) -> Arc<Inbox<Bytes>> {
        let inbox = Arc::new(Inbox::default());
        let mut monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        monitors.push((client_id, inbox.clone()));
        self.monitor_count.store(monitors.len(), Ordering::Relaxed);
        inbox
    }

    pub fn remove_monitor(&self, client_id: u64) {
        let mut monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        monitors.retain(|(id, _)| *id != client_id);
        self.monitor_count.store(monitors.len(), Ordering::Relaxed);
    }

    /// Sends one MONITOR line to every monitoring client.
    pub fn feed_monitors(&self, line: Bytes) {
        let monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        for (_, inbox) in monitors.iter() {
            inbox.push(line.clone());
        }
    }

    /// Copies the config values that hot paths read into atomics.
    pub fn refresh_cached_config(&self) {
        let cfg = self.config();
        let num = |name: &str, default: i64| {
            cfg.get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        self.slowlog_slower_than_us
            .store(num("slowlog-log-slower-than", 10_000), Ordering::Relaxed);
        self.slowlog_max_len.store(
            num("slowlog-max-len", 128).max(0) as usize,
            Ordering::Relaxed,
        );
        self.latency_tracking
            .store(cfg.bool_value("latency-tracking"), Ordering::Relaxed);
        crate::latency::set_threshold_ms(num("latency-monitor-threshold", 0).max(0) as u64);
        set_encoding_limits(limits_from_config(&cfg));
        self.memory.refresh(&cfg);
        set_list_fill_from_config(&cfg);
        crate::notify::configure(cfg.notify_keyspace_events());
    }

    /// Ends the process the way Redis does after SHUTDOWN or SIGTERM:
    /// removes the pidfile, says goodbye in the log, exits with 0.
    pub fn shutdown_now(&self) -> ! {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.stop_listening();
        if let Some(pidfile) = self
            .pidfile
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            tracing::info!("Removing the pid file.");
            let _ = std::fs::remove_file(pidfile);
        }
        tracing::warn!("Redis is now ready to exit, bye bye...");
        std::process::exit(0)
    }

    /// Frees the port at once, as Redis closes its listening sockets
    /// before it exits. Closing the fds is not enough: each has an accept
    /// pending in its shard's io_uring, which keeps the socket alive (and
    /// listening) until the kernel tears the rings down after the exit, so
    /// a server restarted right away failed with "Address already in use".
    /// shutdown(2) takes a socket out of LISTEN state whoever holds it.
    fn stop_listening(&self) {
        for &fd in self
            .listening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            // SAFETY: `fd` is a listening socket this process opened and
            // never closes before exiting; shutdown(2) does not free it.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// The collection encoding thresholds in force, cached from the config so
/// that every write to a hash or set reads three relaxed atomics instead of
/// taking the config lock. Process-wide like the config itself; set at
/// start (before loading the dump) and on CONFIG SET.
static HASH_MAX_LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(64);
static SET_MAX_INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static ZSET_MAX_LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(128);
static ZSET_MAX_LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(64);

/// The thresholds hash and set writes (and loads) apply now.
pub fn encoding_limits() -> Limits {
    Limits {
        hash_max_listpack_entries: HASH_MAX_LISTPACK_ENTRIES.load(Ordering::Relaxed),
        hash_max_listpack_value: HASH_MAX_LISTPACK_VALUE.load(Ordering::Relaxed),
        set_max_intset_entries: SET_MAX_INTSET_ENTRIES.load(Ordering::Relaxed),
        zset_max_listpack_entries: ZSET_MAX_LISTPACK_ENTRIES.load(Ordering::Relaxed),
        zset_max_listpack_value: ZSET_MAX_LISTPACK_VALUE.load(Ordering::Relaxed),
    }
}

pub fn set_encoding_limits(l: Limits) {
    HASH_MAX_LISTPACK_ENTRIES.store(l.hash_max_listpack_entries, Ordering::Relaxed);
    HASH_MAX_LISTPACK_VALUE.store(l.hash_max_listpack_value, Ordering::Relaxed);
    SET_MAX_INTSET_ENTRIES.store(l.set_max_intset_entries, Ordering::Relaxed);
    ZSET_MAX_LISTPACK_ENTRIES.store(l.zset_max_listpack_entries, Ordering::Relaxed);
    ZSET_MAX_LISTPACK_VALUE.store(l.zset_max_listpack_value, Ordering::Relaxed);
}

/// `hll-sparse-max-bytes`, cached like the limits above.
static HLL_SPARSE_MAX_BYTES: AtomicUsize = AtomicUsize::new(3000);

/// The size past which a sparse HyperLogLog turns dense.
pub fn hll_sparse_max_bytes() -> usize {
    HLL_SPARSE_MAX_BYTES.load(Ordering::Relaxed)
}

/// `stream-node-max-bytes` and `stream-node-max-entries`, cached likewise.
static STREAM_NODE_MAX_BYTES: AtomicUsize = AtomicUsize::new(4096);
static STREAM_NODE_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(100);

/// When a stream starts a new node.
pub fn stream_node_limits() -> crate::keyspace::stream::NodeLimits {
    crate::keyspace::stream::NodeLimits {
        max_bytes: STREAM_NODE_MAX_BYTES.load(Ordering::Relaxed),
        max_entries: STREAM_NODE_MAX_ENTRIES.load(Ordering::Relaxed) as u64,
    }
}

/// `list-max-listpack-size`, cached like the limits above.
static LIST_FILL: AtomicI64 = AtomicI64::new(-2);
/// `list-compress-depth`, likewise.
static LIST_DEPTH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The node limit and compress depth new list elements are packed under.
pub fn list_fill() -> crate::keyspace::Fill {
    crate::keyspace::Fill(
        LIST_FILL.load(Ordering::Relaxed),
        LIST_DEPTH.load(Ordering::Relaxed),
    )
}

/// Caches `list-max-listpack-size`, `list-compress-depth`,
/// `hll-sparse-max-bytes` and `stream-node-max-*` (at start and on CONFIG
/// SET).
pub fn set_list_fill_from_config(cfg: &Config) {
    let fill = cfg.int_value("list-max-listpack-size").unwrap_or(-2);
    LIST_FILL.store(fill, Ordering::Relaxed);
    let hll = cfg.int_value("hll-sparse-max-bytes").unwrap_or(3000);
    HLL_SPARSE_MAX_BYTES.store(usize::try_from(hll).unwrap_or(0), Ordering::Relaxed);
    let bytes = cfg.int_value("stream-node-max-bytes").unwrap_or(4096);
    STREAM_NODE_MAX_BYTES.store(usize::try_from(bytes).unwrap_or(0), Ordering::Relaxed);
    let entries = cfg.int_value("stream-node-max-entries").unwrap_or(100);
    STREAM_NODE_MAX_ENTRIES.store(usize::try_from(entries).unwrap_or(0), Ordering::Relaxed);
    let depth = cfg.int_value("list-compress-depth").unwrap_or(0);
    LIST_DEPTH.store(
        depth.clamp(0, i64::from(u32::MAX)) as u32,
        Ordering::Relaxed,
    );
}

/// The `hash-max-listpack-*` and `set-max-intset-entries` directives.
pub fn limits_from_config(cfg: &Config) -> Limits {
    let d = Limits::default();
    let n = |name: &str, default: usize| {
        cfg.int_value(name)
            .map_or(default, |v| usize::try_from(v).unwrap_or(usize::MAX))
    };
    Limits {
        hash_max_listpack_entries: n("hash-max-listpack-entries", d.hash_max_listpack_entries),
        hash_max_listpack_value: n("hash-max-listpack-value", d.hash_max_listpack_value),
        set_max_intset_entries: n("set-max-intset-entries", d.set_max_intset_entries),
        zset_max_listpack_entries: n("zset-max-listpack-entries", d.zset_max_listpack_entries),
        zset_max_listpack_value: n("zset-max-listpack-value", d.zset_max_listpack_value),
    }
}

/// Wall-clock milliseconds as of the last cron tick of any shard (at most
/// 1/hz old): for bookkeeping where that is precise enough, as Redis reads
/// its cached `server.unixtime`, without a clock read per request.
pub fn coarse_ms() -> u64 {
    match COARSE_MS.load(Ordering::Relaxed) {
        0 => unix_ms(),
        ms => ms,
    }
}

static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// Called by each shard's cron with a fresh reading.
pub fn refresh_coarse_ms(now_ms: u64) {
    COARSE_MS.store(now_ms, Ordering::Relaxed);
}

/// How long a thread's wall-clock anchor (see [`unix_ms_at`]) is used
/// before the real clock is read again.
const WALL_ANCHOR_FOR: std::time::Duration = std::time::Duration::from_millis(100);

thread_local! {
    /// A monotonic instant and the wall-clock time read with it.
    static WALL_ANCHOR: std::cell::Cell<Option<(Instant, u64)>> = const { std::cell::Cell::new(None) };
}

/// The wall-clock milliseconds at `at`, a monotonic reading the caller
/// already has: derived from this thread's anchor, which is re-read from
/// the real clock when it is older than [`WALL_ANCHOR_FOR`] (so a clock
/// step shows within that). Saves a clock read per command batch.
pub fn unix_ms_at(at: Instant) -> u64 {
    WALL_ANCHOR.with(|anchor| {
        if let Some((then, ms)) = anchor.get() {
            if let Some(since) = at.checked_duration_since(then) {
                if since < WALL_ANCHOR_FOR {
                    return ms + since.as_millis() as u64;
                }
            }
        }
        let ms = unix_ms();
        anchor.set(Some((at, ms)));
        ms
    })
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// 40 random hex characters (run ids, replication ids, `$EOF:` marks), from
/// the kernel's random source.
pub fn random_hex40() -> String {
    random_hex(40)
}

/// `chars` random hex digits from the kernel's generator (run ids, ACL
/// GENPASS).
pub fn random_hex(chars: usize) -> String {
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // Fall back to time and address entropy; uniqueness, not secrecy,
        // is what ids need.
        let mut x = unix_us() ^ (&bytes as *const _ as u64).rotate_left(17);
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    hex
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_40_hex_and_differ() {
        let a = super::random_hex40();
        let b = super::random_hex40();
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
