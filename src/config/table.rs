//! The declarative directive table: one row per configuration directive that
//! Redis 7.0.15 understands (every `CONFIG GET *` entry, the hidden debugging
//! knobs, the directives that exist only in config files) plus Cascade's own.
//!
//! Owns the *description* of directives only (names, aliases, value kind and
//! bounds, default as `CONFIG GET` prints it, flags). It holds no state and
//! must not depend on the parser, the rewrite logic, sockets or server code;
//! every other file of the config module reads it.
//!
//! Numeric bounds, defaults, mutability and enum spellings were checked one by
//! one against a running `redis-server` 7.0.15 (see the module report). Row
//! order follows the stock `redis.conf`; `CONFIG GET` replies and the lines
//! CONFIG REWRITE appends use this order (Redis uses its hash table order,
//! which clients cannot rely on anyway).

/// How a directive's value is parsed, stored and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `yes` / `no` (case-insensitive).
    Bool,
    /// Plain integer (Redis `string2ll`: no sign `+`, no spaces, no leading
    /// zeros). `unsigned` selects Redis's unsigned bound check, which only
    /// matters for bounds above `i64::MAX`.
    Int { min: i64, max: i64, unsigned: bool },
    /// Byte count accepting Redis `memtoull` units (`b k kb m mb g gb`).
    Memory { min: i64, max: i64, unsigned: bool },
    /// Byte count or `N%` (stored as `-N`, like Redis): `maxmemory-clients`.
    MemoryOrPercent { min: i64, max: i64 },
    /// Octal number (`unixsocketperm`).
    Octal { min: i64, max: i64 },
    /// One of a fixed set of names (case-insensitive). With `multi`, several
    /// names may be given and their bit values are OR-ed together.
    Enum {
        values: &'static [(&'static str, u32)],
        multi: bool,
    },
    /// Free text. With `empty_is_null`, an empty value means "unset" (Redis
    /// stores NULL: CONFIG GET prints "", CONFIG REWRITE drops the line).
    Str {
        empty_is_null: bool,
        check: StrCheck,
    },
    /// Multi-argument or otherwise odd directives, each with its own code.
    Special(Special),
}

/// Extra validation applied to string directives (Redis `is_valid_fn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrCheck {
    None,
    DbFilename,
    AofFilename,
    AofDirname,
    Hostname,
    ProcTitleTemplate,
}

/// Directives whose parsing does not fit a generic kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyTrackingInfoPercentiles,
    /// File-only directives (no CONFIG GET/SET form).
    Include,
    RenameCommand,
    User,
    LoadModule,
    Sentinel,
    /// Removed directives Redis 7.0 still silently accepts with exactly one
    /// argument (`list-max-ziplist-entries`...).
    Deprecated,
}

/// Changeable with CONFIG SET.
pub const MUTABLE: u16 = 1 << 0;
/// Value must be redacted from logs/slowlog/MONITOR (Redis SENSITIVE_CONFIG).
pub const SENSITIVE: u16 = 1 << 1;
/// Not matched by CONFIG GET patterns, only by its exact name.
pub const HIDDEN: u16 = 1 << 2;
/// CONFIG SET only allowed as `enable-protected-configs` permits.
pub const PROTECTED: u16 = 1 << 3;
/// CONFIG SET refused with -LOADING while a dataset is loading (the server
/// enforces it; recorded here so it has a single source of truth).
pub const DENY_LOADING: u16 = 1 << 4;
/// Accepted in config files only: never listed nor settable by CONFIG.
pub const FILE_ONLY: u16 = 1 << 5;
/// Several arguments (file) / space separated words (CONFIG SET).
pub const MULTI_ARG: u16 = 1 << 6;
/// Cascade addition, not a Redis directive.
pub const CASCADE: u16 = 1 << 7;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Directive {
    /// Canonical (lower-case) name.
    pub name: &'static str,
    /// Alternative names accepted everywhere (lower-case).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Default exactly as CONFIG GET prints it. `dir`'s default is the
    /// process working directory, represented by "".
    pub default: &'static str,
    pub flags: u16,
}

impl Directive {
    pub fn is_mutable(&self) -> bool {
        self.flags & MUTABLE != 0
    }
    pub fn is_sensitive(&self) -> bool {
        self.flags & SENSITIVE != 0
    }
    pub fn is_hidden(&self) -> bool {
        self.flags & HIDDEN != 0
    }
    pub fn is_protected(&self) -> bool {
        self.flags & PROTECTED != 0
    }
    pub fn is_file_only(&self) -> bool {
        self.flags & FILE_ONLY != 0
    }
    /// Whether the file parser must skip its "exactly one argument" check.
    pub fn is_multi_arg(&self) -> bool {
        self.flags & MULTI_ARG != 0
    }
}

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;
const UINT_MAX: i64 = u32::MAX as i64;
const LLONG_MAX: i64 = i64::MAX;
/// ULLONG_MAX stored in a signed field, as Redis does; only meaningful with
/// `unsigned: true`.
const ULLONG_MAX: i64 = -1;
const MB: i64 = 1024 * 1024;

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int {
        min,
        max,
        unsigned: false,
    }
}
const fn uint(min: i64, max: i64) -> Kind {
    Kind::Int {
        min,
        max,
        unsigned: true,
    }
}
const fn mem(min: i64, max: i64) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: false,
    }
}
const fn umem(min: i64, max: i64) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: true,
    }
}
const fn string(empty_is_null: bool) -> Kind {
    Kind::Str {
        empty_is_null,
        check: StrCheck::None,
    }
}
const fn checked(empty_is_null: bool, check: StrCheck) -> Kind {
    Kind::Str {
        empty_is_null,
        check,
    }
}
const fn en(values: &'static [(&'static str, u32)]) -> Kind {
    Kind::Enum {
        values,
        multi: false,
    }
}
const fn sp(s: Special) -> Kind {
    Kind::Special(s)
}

const fn row(name: &'static str, kind: Kind, default: &'static str, flags: u16) -> Directive {
    Directive {
        name,
        aliases: &[],
        kind,
        default,
        flags,
    }
}
const fn aka(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    flags: u16,
) -> Directive {
    Directive {
        name,
        aliases,
        kind,
        default,
        flags,
    }
}

const M: u16 = MUTABLE;
const I: u16 = 0; // immutable

pub const YES_NO_LOCAL: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("local", 2)];
pub const LOGLEVELS: &[(&str, u32)] =
    &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
const SUPERVISED: &[(&str, u32)] = &[("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)];
const SYSLOG_FACILITY: &[(&str, u32)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const SANITIZE: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("clients", 2)];
const DISKLESS_LOAD: &[(&str, u32)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const PROPAGATION_ERR: &[(&str, u32)] = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
const TLS_AUTH: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("optional", 2)];
const PUBSUB_DEFAULT: &[(&str, u32)] = &[("allchannels", 0), ("resetchannels", 1)];
pub const MAXMEMORY_POLICY: &[(&str, u32)] = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
pub const APPENDFSYNC: &[(&str, u32)] = &[("everysec", 0), ("always", 1), ("no", 2)];
/// `yes` and `relative` are the same value: CONFIG GET prints `yes` for both.
const OOM_SCORE_ADJ: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
/// Bit flags; `default` (0) is printed when no bit is set.
pub const SHUTDOWN_FLAGS: &[(&str, u32)] = &[
    ("default", 0),
    ("save", 1),
    ("nosave", 2),
    ("now", 4),
    ("force", 8),
];
const ENDPOINT_TYPE: &[(&str, u32)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];

const SHUTDOWN_KIND: Kind = Kind::Enum {
    values: SHUTDOWN_FLAGS,
    multi: true,
};

/// Every directive, in stock `redis.conf` order.
pub static TABLE: &[Directive] = &[
    // INCLUDES / MODULES
    row(
        "include",
        sp(Special::Include),
        "",
        I | FILE_ONLY | MULTI_ARG,
    ),
    row(
        "loadmodule",
        sp(Special::LoadModule),
        "",
        I | FILE_ONLY | MULTI_ARG,
    ),
    // NETWORK. `bind` and `port` are mutable in Redis 7.0; Cascade cannot
    // re-bind listeners at runtime yet, so they are immutable here.
    row("bind", sp(Special::Bind), "* -::*", I | MULTI_ARG),
    row("bind-source-addr", string(true), "", M),
    row("protected-mode", Kind::Bool, "yes", M),
    row("enable-protected-configs", en(YES_NO_LOCAL), "no", I),
    row("enable-debug-command", en(YES_NO_LOCAL), "no", I),
    row("enable-module-command", en(YES_NO_LOCAL), "no", I),
    row("port", int(0, 65535), "6379", I),
    row("tcp-backlog", int(0, INT_MAX), "511", I),
    row("unixsocket", string(true), "", I),
    row("unixsocketperm", Kind::Octal { min: 0, max: 0o777 }, "0", I),
    row("timeout", int(0, INT_MAX), "0", M),
    row("tcp-keepalive", int(0, INT_MAX), "300", M),
    row("socket-mark-id", uint(0, UINT_MAX), "0", I),
    // TLS (accepted and stored; Cascade has no TLS listener yet)
    row("tls-port", int(0, 65535), "0", M),
    row("tls-cert-file", string(true), "", M),
    row("tls-key-file", string(true), "", M),
    row("tls-key-file-pass", string(true), "", M),
    row("tls-client-cert-file", string(true), "", M),
    row("tls-client-key-file", string(true), "", M),
    row("tls-client-key-file-pass", string(true), "", M),
    row("tls-dh-params-file", string(true), "", M),
    row("tls-ca-cert-file", string(true), "", M),
    row("tls-ca-cert-dir", string(true), "", M),
    row("tls-auth-clients", en(TLS_AUTH), "yes", M),
    row("tls-replication", Kind::Bool, "no", M),
    row("tls-cluster", Kind::Bool, "no", M),
    row("tls-protocols", string(true), "", M),
    row("tls-ciphers", string(true), "", M),
    row("tls-ciphersuites", string(true), "", M),
    row("tls-prefer-server-ciphers", Kind::Bool, "no", M),
    row("tls-session-caching", Kind::Bool, "yes", M),
    row("tls-session-cache-size", int(0, INT_MAX), "20480", M),
    row("tls-session-cache-timeout", int(0, INT_MAX), "300", M),
    // GENERAL
    row("daemonize", Kind::Bool, "no", I),
    row("supervised", en(SUPERVISED), "no", I),
    row("pidfile", string(true), "", I),
    row("loglevel", en(LOGLEVELS), "notice", M),
    row("logfile", string(false), "", I),
    row("syslog-enabled", Kind::Bool, "no", I),
    row("syslog-ident", string(false), "redis", I),
    row("syslog-facility", en(SYSLOG_FACILITY), "local0", I),
    row("crash-log-enabled", Kind::Bool, "yes", M),
    row("crash-memcheck-enabled", Kind::Bool, "yes", M),
    row("databases", int(1, INT_MAX), "16", I),
    row("always-show-logo", Kind::Bool, "no", I),
    row("set-proc-title", Kind::Bool, "yes", I),
    row(
        "proc-title-template",
        checked(false, StrCheck::ProcTitleTemplate),
        "{title} {listen-addr} {server-mode}",
        M,
    ),
    // SNAPSHOTTING
    row(
        "save",
        sp(Special::Save),
        "3600 1 300 100 60 10000",
        M | MULTI_ARG,
    ),
    row("stop-writes-on-bgsave-error", Kind::Bool, "yes", M),
    row("rdbcompression", Kind::Bool, "yes", M),
    row("rdbchecksum", Kind::Bool, "yes", I),
    row("sanitize-dump-payload", en(SANITIZE), "no", M),
    row(
        "dbfilename",
        checked(false, StrCheck::DbFilename),
        "dump.rdb",
        M | PROTECTED,
    ),
    row("rdb-del-sync-files", Kind::Bool, "no", M),
    row("dir", sp(Special::Dir), "", M | PROTECTED | DENY_LOADING),
    // REPLICATION
    aka(
        "replicaof",
        &["slaveof"],
        sp(Special::ReplicaOf),
        "",
        I | MULTI_ARG,
    ),
    row("masterauth", string(true), "", M | SENSITIVE),
    row("masteruser", string(true), "", M | SENSITIVE),
    aka(
        "replica-serve-stale-data",
        &["slave-serve-stale-data"],
        Kind::Bool,
        "yes",
        M,
    ),
    aka(
        "replica-read-only",
        &["slave-read-only"],
        Kind::Bool,
        "yes",
        M,
    ),
    row("repl-diskless-sync", Kind::Bool, "yes", M),
    row("repl-diskless-sync-delay", int(0, INT_MAX), "5", M),
    row("repl-diskless-sync-max-replicas", int(0, INT_MAX), "0", M),
    row(
        "repl-diskless-load",
        en(DISKLESS_LOAD),
        "disabled",
        M | DENY_LOADING,
    ),
    aka(
        "repl-ping-replica-period",
        &["repl-ping-slave-period"],
        int(1, INT_MAX),
        "10",
        M,
    ),
    row("repl-timeout", int(1, INT_MAX), "60", M),
    row("repl-disable-tcp-nodelay", Kind::Bool, "no", M),
    row("repl-backlog-size", mem(1, LLONG_MAX), "1048576", M),
    row("repl-backlog-ttl", int(0, LLONG_MAX), "3600", M),
    aka(
        "replica-priority",
        &["slave-priority"],
        int(0, INT_MAX),
        "100",
        M,
    ),
    row(
        "propagation-error-behavior",
        en(PROPAGATION_ERR),
        "ignore",
        M,
    ),
    row("replica-ignore-disk-write-errors", Kind::Bool, "no", M),
    row("replica-announced", Kind::Bool, "yes", M),
    aka(
        "min-replicas-to-write",
        &["min-slaves-to-write"],
        int(0, INT_MAX),
        "0",
        M,
    ),
    aka(
        "min-replicas-max-lag",
        &["min-slaves-max-lag"],
        int(0, INT_MAX),
        "10",
        M,
    ),
    aka(
        "replica-announce-ip",
        &["slave-announce-ip"],
        string(true),
        "",
        M,
    ),
    aka(
        "replica-announce-port",
        &["slave-announce-port"],
        int(0, 65535),
        "0",
        M,
    ),
    // KEYS TRACKING
    row("tracking-table-max-keys", uint(0, LLONG_MAX), "1000000", M),
    // SECURITY
    row("acllog-max-len", int(0, LLONG_MAX), "128", M),
    row("aclfile", string(false), "", I),
    row("requirepass", string(true), "", M | SENSITIVE),
    row("acl-pubsub-default", en(PUBSUB_DEFAULT), "resetchannels", M),
    row("user", sp(Special::User), "", I | FILE_ONLY | MULTI_ARG),
    row(
        "rename-command",
        sp(Special::RenameCommand),
        "",
        I | FILE_ONLY | MULTI_ARG,
    ),
    // CLIENTS / MEMORY MANAGEMENT
    row("maxclients", uint(1, UINT_MAX), "10000", M),
    row("maxmemory", umem(0, ULLONG_MAX), "0", M),
    row("maxmemory-policy", en(MAXMEMORY_POLICY), "noeviction", M),
    row("maxmemory-samples", int(1, INT_MAX), "5", M),
    row("maxmemory-eviction-tenacity", int(0, 100), "10", M),
    aka(
        "replica-ignore-maxmemory",
        &["slave-ignore-maxmemory"],
        Kind::Bool,
        "yes",
        M,
    ),
    row("active-expire-effort", int(1, 10), "1", M),
    // LAZY FREEING
    row("lazyfree-lazy-eviction", Kind::Bool, "no", M),
    row("lazyfree-lazy-expire", Kind::Bool, "no", M),
    row("lazyfree-lazy-server-del", Kind::Bool, "no", M),
    aka(
        "replica-lazy-flush",
        &["slave-lazy-flush"],
        Kind::Bool,
        "no",
        M,
    ),
    row("lazyfree-lazy-user-del", Kind::Bool, "no", M),
    row("lazyfree-lazy-user-flush", Kind::Bool, "no", M),
    // THREADED I/O
    row("io-threads", int(1, 128), "1", I),
    row("io-threads-do-reads", Kind::Bool, "no", I),
    // KERNEL OOM CONTROL / TRANSPARENT HUGE PAGES
    row("oom-score-adj", en(OOM_SCORE_ADJ), "no", M),
    row(
        "oom-score-adj-values",
        sp(Special::OomScoreAdjValues),
        "0 200 800",
        M | MULTI_ARG,
    ),
    row("disable-thp", Kind::Bool, "yes", I),
    // APPEND ONLY MODE
    row("appendonly", Kind::Bool, "no", M | DENY_LOADING),
    row(
        "appendfilename",
        checked(false, StrCheck::AofFilename),
        "appendonly.aof",
        I,
    ),
    row(
        "appenddirname",
        checked(false, StrCheck::AofDirname),
        "appendonlydir",
        I,
    ),
    row("appendfsync", en(APPENDFSYNC), "everysec", M),
    row("no-appendfsync-on-rewrite", Kind::Bool, "no", M),
    row("auto-aof-rewrite-percentage", int(0, INT_MAX), "100", M),
    row(
        "auto-aof-rewrite-min-size",
        mem(0, LLONG_MAX),
        "67108864",
        M,
    ),
    row("aof-load-truncated", Kind::Bool, "yes", M),
    row("aof-use-rdb-preamble", Kind::Bool, "yes", M),
    row("aof-timestamp-enabled", Kind::Bool, "no", M),
    row("aof-disable-auto-gc", Kind::Bool, "no", M),
    // SHUTDOWN
    row("shutdown-timeout", int(0, INT_MAX), "10", M),
    row(
        "shutdown-on-sigint",
        SHUTDOWN_KIND,
        "default",
        M | MULTI_ARG,
    ),
    row(
        "shutdown-on-sigterm",
        SHUTDOWN_KIND,
        "default",
        M | MULTI_ARG,
    ),
    // LONG BLOCKING COMMANDS
    aka(
        "busy-reply-threshold",
        &["lua-time-limit"],
        int(0, LLONG_MAX),
        "5000",
        M,
    ),
    // REDIS CLUSTER
    row("cluster-enabled", Kind::Bool, "no", I),
    row("cluster-config-file", string(false), "nodes.conf", I),
    row("cluster-node-timeout", int(0, LLONG_MAX), "15000", M),
    row("cluster-port", int(0, 65535), "0", I),
    aka(
        "cluster-replica-validity-factor",
        &["cluster-slave-validity-factor"],
        int(0, INT_MAX),
        "10",
        M,
    ),
    row("cluster-migration-barrier", int(0, INT_MAX), "1", M),
    row("cluster-allow-replica-migration", Kind::Bool, "yes", M),
    row("cluster-require-full-coverage", Kind::Bool, "yes", M),
    aka(
        "cluster-replica-no-failover",
        &["cluster-slave-no-failover"],
        Kind::Bool,
        "no",
        M,
    ),
    row("cluster-allow-reads-when-down", Kind::Bool, "no", M),
    row("cluster-allow-pubsubshard-when-down", Kind::Bool, "yes", M),
    row("cluster-link-sendbuf-limit", umem(0, ULLONG_MAX), "0", M),
    row(
        "cluster-announce-hostname",
        checked(true, StrCheck::Hostname),
        "",
        M,
    ),
    row(
        "cluster-preferred-endpoint-type",
        en(ENDPOINT_TYPE),
        "ip",
        M,
    ),
    row("cluster-announce-tls-port", int(0, 65535), "0", M),
    row("cluster-announce-ip", string(true), "", M),
    row("cluster-announce-port", int(0, 65535), "0", M),
    row("cluster-announce-bus-port", int(0, 65535), "0", M),
    // SLOW LOG / LATENCY MONITOR / LATENCY TRACKING
    row("slowlog-log-slower-than", int(-1, LLONG_MAX), "10000", M),
    row("slowlog-max-len", int(0, LLONG_MAX), "128", M),
    row("latency-monitor-threshold", int(0, LLONG_MAX), "0", M),
    row("latency-tracking", Kind::Bool, "yes", M),
    row(
        "latency-tracking-info-percentiles",
        sp(Special::LatencyTrackingInfoPercentiles),
        "50 99 99.9",
        M | MULTI_ARG,
    ),
    // EVENT NOTIFICATION
    row(
        "notify-keyspace-events",
        sp(Special::NotifyKeyspaceEvents),
        "",
        M,
    ),
    // ADVANCED CONFIG
    aka(
        "hash-max-listpack-entries",
        &["hash-max-ziplist-entries"],
        uint(0, LLONG_MAX),
        "512",
        M,
    ),
    aka(
        "hash-max-listpack-value",
        &["hash-max-ziplist-value"],
        umem(0, LLONG_MAX),
        "64",
        M,
    ),
    aka(
        "list-max-listpack-size",
        &["list-max-ziplist-size"],
        int(INT_MIN, INT_MAX),
        "-2",
        M,
    ),
    row("list-compress-depth", int(0, INT_MAX), "0", M),
    row("set-max-intset-entries", uint(0, LLONG_MAX), "512", M),
    aka(
        "zset-max-listpack-entries",
        &["zset-max-ziplist-entries"],
        uint(0, LLONG_MAX),
        "128",
        M,
    ),
    aka(
        "zset-max-listpack-value",
        &["zset-max-ziplist-value"],
        umem(0, LLONG_MAX),
        "64",
        M,
    ),
    row("hll-sparse-max-bytes", umem(0, LLONG_MAX), "3000", M),
    row("stream-node-max-bytes", umem(0, LLONG_MAX), "4096", M),
    row("stream-node-max-entries", int(0, LLONG_MAX), "100", M),
    row("activerehashing", Kind::Bool, "yes", M),
    row(
        "client-output-buffer-limit",
        sp(Special::ClientOutputBufferLimit),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        M | MULTI_ARG,
    ),
    row(
        "client-query-buffer-limit",
        umem(MB, LLONG_MAX),
        "1073741824",
        M,
    ),
    row(
        "maxmemory-clients",
        Kind::MemoryOrPercent {
            min: -100,
            max: LLONG_MAX,
        },
        "0",
        M,
    ),
    row("proto-max-bulk-len", mem(MB, LLONG_MAX), "536870912", M),
    row("hz", int(0, INT_MAX), "10", M),
    row("dynamic-hz", Kind::Bool, "yes", M),
    row("aof-rewrite-incremental-fsync", Kind::Bool, "yes", M),
    row("rdb-save-incremental-fsync", Kind::Bool, "yes", M),
    row("lfu-log-factor", int(0, INT_MAX), "10", M),
    row("lfu-decay-time", int(0, INT_MAX), "1", M),
    // ACTIVE DEFRAGMENTATION
    row("activedefrag", Kind::Bool, "no", M),
    row(
        "active-defrag-ignore-bytes",
        umem(1, LLONG_MAX),
        "104857600",
        M,
    ),
    row("active-defrag-threshold-lower", int(0, 1000), "10", M),
    row("active-defrag-threshold-upper", int(0, 1000), "100", M),
    row("active-defrag-cycle-min", int(1, 99), "1", M),
    row("active-defrag-cycle-max", int(1, 99), "25", M),
    row(
        "active-defrag-max-scan-fields",
        int(1, LLONG_MAX),
        "1000",
        M,
    ),
    row("jemalloc-bg-thread", Kind::Bool, "yes", M),
    row("server_cpulist", string(true), "", I),
    row("bio_cpulist", string(true), "", I),
    row("aof_rewrite_cpulist", string(true), "", I),
    row("bgsave_cpulist", string(true), "", I),
    row("ignore-warnings", string(false), "", M),
    // Hidden debugging knobs (exact-name CONFIG GET/SET only).
    row("use-exit-on-panic", Kind::Bool, "no", M | HIDDEN),
    row("rdb-key-save-delay", int(INT_MIN, INT_MAX), "0", M | HIDDEN),
    row("key-load-delay", int(INT_MIN, INT_MAX), "0", M | HIDDEN),
    row("watchdog-period", int(0, INT_MAX), "0", M | HIDDEN),
    row(
        "loading-process-events-interval-bytes",
        int(1024, INT_MAX),
        "2097152",
        M | HIDDEN,
    ),
    row("lua-enable-deprecated-api", Kind::Bool, "no", I | HIDDEN),
    // Accepted by the Redis parser without being configs.
    row(
        "sentinel",
        sp(Special::Sentinel),
        "",
        I | FILE_ONLY | MULTI_ARG,
    ),
    row(
        "list-max-ziplist-entries",
        sp(Special::Deprecated),
        "",
        I | FILE_ONLY,
    ),
    row(
        "list-max-ziplist-value",
        sp(Special::Deprecated),
        "",
        I | FILE_ONLY,
    ),
    row(
        "lua-replicate-commands",
        sp(Special::Deprecated),
        "",
        I | FILE_ONLY,
    ),
    // Cascade's own directives.
    // Number of shard threads; 0 (default, only reachable by omission)
    // means "number of usable cores".
    row("shards", int(1, INT_MAX), "0", I | CASCADE),
    // A replica holding data refuses a full sync from a master with a new
    // replication ID and an empty dataset (one restarted without
    // persistence) instead of being wiped by it.
    row("replica-protect-data", Kind::Bool, "no", M | CASCADE),
    // Smallest replication ring allocated, whatever repl-backlog-size says:
    // the ring is the only buffer between the writers and the replicas
    // (there are no per-replica output buffers), so it must also hold the
    // writes made while a replica loads a full sync.
    row(
        "repl-ring-min-size",
        mem(0, LLONG_MAX),
        "33554432",
        M | CASCADE,
    ),
    // Most bytes of stream a full sync keeps on disk for its replicas
    // while they transfer and load (see repl/spill.rs); 0 disables it.
    row(
        "repl-sync-spill-max-size",
        mem(0, LLONG_MAX),
        "1073741824",
        M | CASCADE,
    ),
];

/// Finds a row by canonical name or alias (ASCII case-insensitive).
/// Returns the row index and `Some(alias index)` when an alias matched.
pub fn lookup(name: &[u8]) -> Option<(usize, Option<usize>)> {
    for (i, d) in TABLE.iter().enumerate() {
        if d.name.as_bytes().eq_ignore_ascii_case(name) {
            return Some((i, None));
        }
        for (a, alias) in d.aliases.iter().enumerate() {
            if alias.as_bytes().eq_ignore_ascii_case(name) {
                return Some((i, Some(a)));
            }
        }
    }
    None
}

/// Index of a row by its exact canonical name (cached: typed accessors use
/// it on hot paths).
pub fn index_of(name: &str) -> Option<usize> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX
        .get_or_init(|| TABLE.iter().enumerate().map(|(i, d)| (d.name, i)).collect())
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for d in TABLE {
            for n in std::iter::once(&d.name).chain(d.aliases.iter()) {
                assert_eq!(n.to_ascii_lowercase(), **n, "{n} not lower-case");
                assert!(seen.insert(*n), "duplicate name {n}");
            }
        }
    }

    #[test]
    fn lookup_by_alias_and_case() {
        let (i, a) = lookup(b"SLAVEOF").unwrap();
        assert_eq!(TABLE[i].name, "replicaof");
        assert_eq!(a, Some(0));
        let (i, a) = lookup(b"Hash-Max-Ziplist-Entries").unwrap();
        assert_eq!(TABLE[i].name, "hash-max-listpack-entries");
        assert_eq!(a, Some(0));
        assert_eq!(lookup(b"port").map(|x| x.1), Some(None));
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn all_slave_aliases_present() {
        for alias in [
            "slaveof",
            "slave-serve-stale-data",
            "slave-read-only",
            "repl-ping-slave-period",
            "slave-priority",
            "min-slaves-to-write",
            "min-slaves-max-lag",
            "slave-announce-ip",
            "slave-announce-port",
            "slave-ignore-maxmemory",
            "slave-lazy-flush",
            "cluster-slave-validity-factor",
            "cluster-slave-no-failover",
        ] {
            let (i, a) = lookup(alias.as_bytes()).unwrap();
            assert!(a.is_some(), "{alias}");
            assert_eq!(
                TABLE[i].name,
                alias
                    .replace("slaveof", "replicaof")
                    .replace("slave", "replica")
            );
        }
    }

    #[test]
    fn redis_visible_directive_count() {
        // `CONFIG GET *` on redis-server 7.0.15 returns 192 names: 173
        // canonical directives + 19 aliases.
        let visible: usize = TABLE
            .iter()
            .filter(|d| !d.is_file_only() && !d.is_hidden() && d.flags & CASCADE == 0)
            .map(|d| 1 + d.aliases.len())
            .sum();
        assert_eq!(visible, 192);
        // 173 of those are canonical; plus 6 hidden knobs, 8 file-only
        // directives (include, loadmodule, user, rename-command, sentinel and
        // three removed-but-accepted ones) and Cascade's 4.
        assert_eq!(TABLE.len(), 173 + 6 + 8 + 4);
    }
}
