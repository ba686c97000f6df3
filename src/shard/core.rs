//! The data one shard owns: its slice of every database, its counters and
//! the clients connected to it.
//!
//! Only the shard's own thread touches a [`ShardCore`]; other shards reach
//! it by sending jobs (see the parent module). Nothing here does I/O.

use crate::keyspace::{Db, Keyspace};
use crate::repl::backlog::Backlog;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

pub struct ShardCore {
    pub id: usize,
    /// Some client tracked keys of this shard (CLIENT TRACKING): jobs end
    /// by telling readers of changed keys.
    pub tracking_active: bool,
    /// The client whose command the current job runs, when known (0
    /// otherwise): NOLOOP tracking clients are not told of their own
    /// changes.
    pub job_origin: u64,
    /// This shard's keys, in every database.
    pub ks: Keyspace,
    pub stats: ShardStats,
    /// Latency of the commands this shard's clients ran (`INFO latencystats`).
    pub latency: super::latency::CommandLatency,
    /// Clients whose connection lives on this shard, by client id.
    pub clients: HashMap<u64, Rc<RefCell<ClientInfo>>>,
    /// Slow commands run by this shard's clients (SLOWLOG), newest last.
    pub slowlog: VecDeque<SlowlogEntry>,
    /// The replication ring while this node is a master with a ring: every
    /// write this shard runs is appended to it (see `crate::propagate`).
    /// `None` on a replica (its link feeds the ring) and before the first
    /// replica attached.
    pub backlog: Option<Arc<Backlog>>,
    /// The running AOF: every write this shard runs is also copied into
    /// its feed (see `crate::propagate`). `None` while the AOF is off and
    /// while it is being loaded.
    pub aof: Option<Arc<crate::persist::aof::Active>>,
    /// This node is a replica: its link copies the master's stream into
    /// the AOF, so what the shards run must not be copied again.
    pub link_feeds_aof: bool,
    /// Scratch buffer for encoding propagated commands (no allocation per
    /// write).
    pub prop_buf: Vec<u8>,
    /// Set while a transaction (EXEC) holds this shard: what it propagates
    /// is collected here, shared by every shard the EXEC holds, and enters
    /// the stream as one unit at the end (see `crate::propagate::Capture`).
    pub capture: Option<Arc<std::sync::Mutex<crate::propagate::Capture>>>,
    /// Clients blocked on this shard's keys (BLPOP, BZPOPMIN...).
    pub blocked: super::blocked::Registry,
    /// Serves the waiters of keys that got data (`cmd::blocking`; set at
    /// start, a no-op until then). Run by the shard after a job, never
    /// while a multi-shard operation holds it.
    pub on_ready: fn(&mut ShardCore),
    /// `stats.dirty` when the current job started: a job that changed it
    /// commits the WATCH touches of its write lookups (see
    /// `Db::settle_touches`); commands run through a `Ctx` settle earlier,
    /// per command. `None` outside a job and once the job's after-work
    /// ran, so [`ShardCore::after_job`] does that work once per job (a
    /// job that replies to another shard runs it itself, before its reply).
    pub job_dirty: Option<u64>,
    /// `maxmemory` eviction's candidate pool for this shard's keys.
    pub evictor: crate::keyspace::evict::Evictor,
}

/// One SLOWLOG entry.
#[derive(Clone, Debug)]
pub struct SlowlogEntry {
    pub id: u64,
    pub unix_secs: u64,
    pub usec: u64,
    /// At most 32 arguments, each cut to 128 bytes, as Redis keeps them.
    pub args: Vec<Bytes>,
    pub peer: String,
    pub client_name: Bytes,
}

impl ShardCore {
    /// Database `i` of this shard. Callers pass indexes validated against
    /// `databases` (SELECT, MOVE, SWAPDB, COPY check them first).
    pub fn db(&self, i: usize) -> &Db {
        &self.ks.dbs()[i]
    }

    pub fn db_mut(&mut self, i: usize) -> &mut Db {
        &mut self.ks.dbs_mut()[i]
    }

    /// Runs before every job and inline call on this shard; `origin` is the
    /// client it acts for (0: none), see [`ShardCore::job_origin`].
    #[inline]
    pub fn before_job(&mut self, origin: u64) {
        self.job_dirty = Some(self.stats.dirty);
        self.job_origin = origin;
    }

    /// Runs after every job and inline call on this shard: write lookups
    /// of watched keys count as changes only if the job changed something
    /// (`dirty` moved), and keys that expired during it become `DEL`s in
    /// the replication stream. Does nothing outside a job or a second
    /// time for the same job.
    #[inline]
    pub fn after_job(&mut self) {
        let Some(job_dirty) = self.job_dirty.take() else {
            return;
        };
        let changed = self.stats.dirty != job_dirty;
        self.ks.settle_touches(changed);
        if self.tracking_active || crate::keyspace::track::broadcasting() {
            let changed = self.ks.take_invalidations();
            if !changed.is_empty() {
                crate::tracking::invalidate(changed, self.job_origin);
            }
        }
        self.job_origin = 0;
        if crate::notify::wants(crate::notify::class::EXPIRED | crate::notify::class::NEW) {
            self.ks.publish_notes();
        }
        if self.propagating() {
            crate::propagate::expired(self);
        }
    }

    /// Writes must be propagated: to the ring, the AOF, or both.
    #[inline]
    pub fn propagating(&self) -> bool {
        self.backlog.is_some() || self.feeds_aof().is_some()
    }

    /// The AOF this shard's writes are copied into (none on a replica:
    /// see `link_feeds_aof`).
    #[inline]
    pub fn feeds_aof(&self) -> Option<&Arc<crate::persist::aof::Active>> {
        self.aof.as_ref().filter(|_| !self.link_feeds_aof)
    }

    pub fn new(id: usize, databases: usize) -> Self {
        ShardCore {
            id,
            tracking_active: false,
            job_origin: 0,
            ks: Keyspace::new(databases),
            stats: ShardStats::default(),
            latency: Default::default(),
            clients: HashMap::new(),
            slowlog: VecDeque::new(),
            backlog: None,
            aof: None,
            link_feeds_aof: false,
            prop_buf: Vec::with_capacity(256),
            capture: None,
            blocked: Default::default(),
            on_ready: |_| {},
            job_dirty: None,
            evictor: Default::default(),
        }
    }
}

/// Per-command counters, as `INFO commandstats` shows them.
#[derive(Clone, Copy, Default, Debug)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// Counters kept per shard and summed for INFO (no shared atomics on the
/// hot path).
#[derive(Clone, Default, Debug)]
pub struct ShardStats {
    pub commands_processed: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    /// Writes since the last save (`rdb_changes_since_last_save`).
    pub dirty: u64,
    pub total_error_replies: u64,
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// Time spent in active expiry cycles.
    pub expire_cycle_us: u64,
    /// Commands per second over the last sampling period (per shard,
    /// summed for INFO).
    pub instantaneous_ops: u64,
    /// Client bytes read and written per second over the same period.
    pub instantaneous_input: u64,
    pub instantaneous_output: u64,
    /// Keys tracked for CLIENT TRACKING readers, and (key, reader) pairs;
    /// filled when INFO asks.
    pub tracking_keys: u64,
    pub tracking_items: u64,
    /// Indexed by the command table's ids (`cmd::table`).
    pub command_stats: Vec<CommandStat>,
    pub error_stats: HashMap<String, u64>,
}

impl ShardStats {
    /// Adds another shard's counters into this one.
    pub fn merge(&mut self, other: &ShardStats) {
        self.tracking_keys += other.tracking_keys;
        self.tracking_items += other.tracking_items;
        self.commands_processed += other.commands_processed;
        self.connections_received += other.connections_received;
        self.rejected_connections += other.rejected_connections;
        self.net_input_bytes += other.net_input_bytes;
        self.net_output_bytes += other.net_output_bytes;
        self.keyspace_hits += other.keyspace_hits;
        self.keyspace_misses += other.keyspace_misses;
        self.expired_keys += other.expired_keys;
        self.dirty += other.dirty;
        self.total_error_replies += other.total_error_replies;
        self.reads_processed += other.reads_processed;
        self.writes_processed += other.writes_processed;
        self.expire_cycle_us += other.expire_cycle_us;
        self.instantaneous_ops += other.instantaneous_ops;
        self.instantaneous_input += other.instantaneous_input;
        self.instantaneous_output += other.instantaneous_output;
        if self.command_stats.len() < other.command_stats.len() {
            self.command_stats
                .resize(other.command_stats.len(), CommandStat::default());
        }
        for (e, s) in self.command_stats.iter_mut().zip(&other.command_stats) {
            e.calls += s.calls;
            e.usec += s.usec;
            e.rejected_calls += s.rejected_calls;
            e.failed_calls += s.failed_calls;
        }
        for (name, n) in &other.error_stats {
            *self.error_stats.entry(name.clone()).or_default() += n;
        }
    }

    /// The counters of command `id`, growing the table on first use.
    pub fn command(&mut self, id: usize) -> &mut CommandStat {
        if self.command_stats.len() <= id {
            self.command_stats.resize(id + 1, CommandStat::default());
        }
        &mut self.command_stats[id]
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&mut self) {
        let dirty = self.dirty;
        *self = ShardStats {
            dirty,
            ..ShardStats::default()
        };
    }
}

/// What other shards may see of a connection (CLIENT LIST, CLIENT KILL).
/// The connection task updates it; the registry in [`ShardCore`] shares it.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    /// Raw socket fd, so CLIENT KILL can shut the socket down from the
    /// shard without owning the stream.
    pub fd: i32,
    pub name: Bytes,
    pub db: usize,
    pub resp: u8,
    /// Unix time (ms) the connection was accepted.
    pub created_ms: u64,
    /// Unix time (ms) of the last command.
    pub last_interaction_ms: u64,
    pub last_cmd: &'static str,
    /// Redis's `flags=` letters (N normal, S replica, M master, P pubsub...).
    pub flags: String,
    /// The ACL user it authenticated as (`user=`, CLIENT KILL USER).
    pub user: Bytes,
    /// CLIENT TRACKING's redirect: -1 not tracking, 0 none (`redir=`).
    pub redir: i64,
    pub query_buf: usize,
    pub output_buf: usize,
    /// Set by CLIENT KILL; the connection closes at its next step.
    pub killed: bool,
    /// CLIENT NO-EVICT
    pub no_evict: bool,
    pub lib_name: Bytes,
    pub lib_ver: Bytes,
    /// Channels subscribed to (CLIENT LIST `sub=`).
    pub sub: usize,
    /// Patterns subscribed to (`psub=`).
    pub psub: usize,
    /// Shard channels subscribed to (`ssub=`).
    pub ssub: usize,
    /// Commands queued in MULTI, -1 outside a transaction (`multi=`).
    pub multi: i64,
    /// The command this client is blocked in (CLIENT LIST `flags=b`,
    /// CLIENT UNBLOCK, INFO `blocked_clients`).
    pub blocked: Option<Arc<super::blocked::Waiter>>,
}

impl ClientInfo {
    /// Closes the connection from its shard (CLIENT KILL, replicas that
    /// must reconnect): marks it and shuts the socket down, which wakes its
    /// pending read with EOF.
    pub fn kill(&mut self) {
        self.killed = true;
        // SAFETY: `fd` is the open socket of a live connection on this
        // shard (it leaves the registry before it is closed); shutdown only
        // wakes its pending read with EOF.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}
