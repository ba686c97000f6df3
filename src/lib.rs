//! Cascade: a Redis-compatible in-memory server built for replication.
//!
//! # Layout
//! Data flows one way: `net → resp → cmd → shard → keyspace`.
//!
//! - [`config`]: the declarative directive table, redis.conf parsing,
//!   CONFIG GET/SET/REWRITE support.
//! - [`resp`]: RESP2/RESP3 decoding (resumable, inline commands, limits) and
//!   reply encoding. Depends on `bytes`/`memchr` only.
//! - [`keyspace`]: one shard's databases: our hash table, values, expiry.
//!   Synchronous, no I/O.
//! - [`shard`]: glommio executors (thread per core), key → shard routing,
//!   cross-shard jobs and holds for atomic multi-shard commands.
//! - [`node`]: what the shards share: config, ids, global counters.
//! - [`cmd`]: the command table and one module per command family; handlers
//!   return replies and never touch sockets.
//! - [`net`]: listeners, the connection loop and the per-shard epoll set
//!   that tells connections their socket is readable; the only socket code.
//! - [`propagate`]: the one post-execution hook feeding the replication
//!   ring (and a transaction's capture).
//! - [`pubsub`]: the node's channel/pattern registry and subscriber
//!   mailboxes.
//! - [`notify`]: keyspace notifications (`notify-keyspace-events`),
//!   published through the pub/sub registry.
//! - [`server`]: start-up, daemonizing, signals, shard crons.
//! - [`persist`]: the RDB format and dump files (SAVE, load at start), the
//!   append-only file (`persist::aof`).
//! - [`log`]: Redis's log line format on top of `tracing`.
//! - [`supervise`]: readiness and status for systemd (`sd_notify`) or
//!   upstart (`supervised`).
//! - [`alloc`]: allocation counters for `used_memory`.
//! - [`evict`]: `maxmemory`: evicting keys by `maxmemory-policy`, `-OOM`.
//! - [`acl`]: ACL users, their rules and checks, the ACL log and file
//!   (`cmd::acl` applies them to calls).
//! - [`latency`]: the latency monitor (`latency-monitor-threshold`, the
//!   events LATENCY reports).
//! - [`tracking`]: client-side caching (CLIENT TRACKING): trackers and
//!   their invalidation messages.
//! - [`util`]: small shared helpers (glob matching).

pub mod acl;
pub mod alloc;
pub mod cmd;
pub mod config;
pub mod evict;
pub mod keyspace;
pub mod latency;
pub mod log;
pub mod net;
pub mod node;
pub mod notify;
pub mod persist;
pub mod propagate;
pub mod pubsub;
pub mod repl;
pub mod resp;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod supervise;
pub mod tracking;
pub mod util;
