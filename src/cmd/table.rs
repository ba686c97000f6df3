//! The command table: every command's name, arity, flags, key positions and
//! handler, as data. Nothing else keeps lists of "write commands" or key
//! positions: dispatch, COMMAND, propagation and statistics read them here.

use super::error::CmdResult;
use super::Ctx;
use bytes::Bytes;
use std::sync::OnceLock;

/// Command flags (Redis's names in `COMMAND INFO`).
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Key positions depend on the arguments (SINTERCARD's numkeys).
    pub const MOVABLE_KEYS: u32 = 1 << 16;
    /// Ours, not shown by COMMAND: a read-only command whose changes are
    /// propagated all the same (PFCOUNT caches the count it computed in
    /// the value), as Redis propagates any command that counted one.
    pub const PROPAGATES: u32 = 1 << 17;
    /// Refused while a replica loads its master's snapshot asynchronously
    /// (`repl-diskless-load swapdb`); shown as Redis shows it.
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// May be called without keys (EVAL with 0 keys), as COMMAND shows.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 19;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Redis's command groups (COMMAND DOCS `group`, ACL categories).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Generic,
    String,
    Bitmap,
    Hash,
    Set,
    SortedSet,
    List,
    Server,
    Connection,
    Transactions,
    Pubsub,
    Hyperloglog,
    Stream,
    Geo,
    Scripting,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Generic => "generic",
            Group::String => "string",
            Group::Bitmap => "bitmap",
            Group::Hash => "hash",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::List => "list",
            Group::Server => "server",
            Group::Connection => "connection",
            Group::Transactions => "transactions",
            Group::Pubsub => "pubsub",
            Group::Hyperloglog => "hyperloglog",
            Group::Stream => "stream",
            Group::Geo => "geo",
            Group::Scripting => "scripting",
        }
    }

    fn acl_category(self) -> &'static str {
        match self {
            Group::Generic => "@keyspace",
            Group::String => "@string",
            Group::Bitmap => "@bitmap",
            Group::Hash => "@hash",
            Group::Set => "@set",
            Group::SortedSet => "@sortedset",
            Group::List => "@list",
            Group::Server => "@admin",
            Group::Connection => "@connection",
            Group::Transactions => "@transaction",
            Group::Pubsub => "@pubsub",
            Group::Hyperloglog => "@hyperloglog",
            Group::Stream => "@stream",
            Group::Geo => "@geo",
            Group::Scripting => "@scripting",
        }
    }
}

/// A handler that runs on the shard owning its keys and returns a reply.
pub type KeyedFn = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// How a keyed command whose keys live on several shards is split into one
/// part per shard, and how the parts' replies are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// All keys must be on one shard (single-key commands).
    None,
    /// Each shard gets its keys; integer replies are summed (DEL, EXISTS).
    SumInts,
    /// Each shard gets its key/value groups; the reply is +OK (MSET).
    AllOk,
    /// Each shard gets its keys; array replies are put back in key order (MGET).
    Gather,
    /// Keys on one shard: the keyed handler runs there. Keys spanning
    /// shards: the client-level command coordinates (holds the shards, moves
    /// data between them, propagates) — SMOVE, SINTERSTORE and friends.
    Coordinate(ClientCmd),
}

/// Commands that need the client's state or coordinate across shards. The
/// connection layer dispatches these (see `cmd::dispatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCmd {
    Ping,
    Echo,
    Quit,
    Reset,
    Auth,
    Hello,
    Select,
    Client,
    Config,
    Info,
    Command,
    Time,
    Shutdown,
    Debug,
    Memory,
    Monitor,
    Slowlog,
    Acl,
    Latency,
    Dbsize,
    Flushdb,
    Flushall,
    Swapdb,
    Keys,
    Scan,
    Randomkey,
    Rename,
    Renamenx,
    Copy,
    Move,
    Msetnx,
    Lastsave,
    Save,
    Bgsave,
    Bgrewriteaof,
    Replicaof,
    Replconf,
    Psync,
    Role,
    Wait,
    Failover,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Subscribe,
    Unsubscribe,
    Psubscribe,
    Punsubscribe,
    Publish,
    Pubsub,
    Ssubscribe,
    Sunsubscribe,
    Spublish,
    Smove,
    Sinter,
    Sinterstore,
    Sunion,
    Sunionstore,
    Sdiff,
    Sdiffstore,
    Sintercard,
    /// ZRANGESTORE across shards.
    Zrangestore,
    /// ZUNIONSTORE ZINTERSTORE ZDIFFSTORE.
    Zstore,
    /// ZUNION ZINTER ZDIFF.
    Zsetop,
    Zintercard,
    Zmpop,
    /// LMOVE / RPOPLPUSH across shards.
    Lmove,
    Lmpop,
    /// BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP.
    Blocking,
    /// PFCOUNT of several keys across shards.
    Pfcount,
    /// PFMERGE across shards.
    Pfmerge,
    /// BITOP across shards.
    Bitop,
    Xread,
    Xreadgroup,
    /// GEORADIUS ... STORE and GEOSEARCHSTORE across shards.
    GeoStore,
    /// EVAL EVALSHA EVAL_RO EVALSHA_RO.
    Eval,
    Script,
    /// FCALL FCALL_RO.
    Fcall,
    Function,
    /// LCS with its keys on two shards.
    Lcs,
    /// SORT and SORT_RO.
    Sort,
}

#[derive(Clone, Copy)]
pub enum Run {
    Keyed(KeyedFn, Split),
    Client(ClientCmd),
}

pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments (with the name), -N at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step.
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    pub group: Group,
    pub since: &'static str,
    pub summary: &'static str,
    pub run: Run,
    /// Index into per-shard statistics; set when the table is built.
    pub id: usize,
    /// A container's subcommands with their arities (Redis counts them
    /// apart: `cmdstat_config|get`), and the statistics index of the
    /// first; set when the table is built.
    pub subcommands: &'static [(&'static str, i32)],
    pub first_sub_id: usize,
}

/// Why [`CommandSpec::check_shape`] refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadShape {
    Arity,
    UnknownSubcommand,
}

/// Whether a Redis arity (N: exactly N arguments with the name; -N: at
/// least N) allows `argc` arguments.
fn arity_allows(arity: i32, argc: usize) -> bool {
    let (argc, a) = (argc as i64, arity as i64);
    if a >= 0 {
        argc == a
    } else {
        argc >= -a
    }
}

impl CommandSpec {
    /// The statistics index of this call: its subcommand's for a
    /// container whose subcommand Redis counts apart, else the command's.
    pub fn stat_id(&self, args: &[Bytes]) -> usize {
        if self.subcommands.is_empty() {
            return self.id;
        }
        args.get(1)
            .and_then(|sub| self.subcommand_index(sub))
            .map_or(self.id, |i| self.first_sub_id + i)
    }

    /// The position of subcommand `sub` (any case) in `subcommands`.
    pub fn subcommand_index(&self, sub: &[u8]) -> Option<usize> {
        self.subcommands
            .iter()
            .position(|(s, _)| s.as_bytes().eq_ignore_ascii_case(sub))
    }

    /// Redis's first checks of a call (its command lookup and arity
    /// check, before authentication or anything else): a container with
    /// a second argument runs that subcommand, which must exist and take
    /// this many arguments; anything else checks its own arity.
    pub fn check_shape(&self, args: &[Bytes]) -> Result<(), BadShape> {
        if self.subcommands.is_empty() || args.len() < 2 {
            return if self.arity_ok(args.len()) {
                Ok(())
            } else {
                Err(BadShape::Arity)
            };
        }
        let i = self
            .subcommand_index(&args[1])
            .ok_or(BadShape::UnknownSubcommand)?;
        if arity_allows(self.subcommands[i].1, args.len()) {
            Ok(())
        } else {
            Err(BadShape::Arity)
        }
    }

    /// The name Redis's messages give this call: `container|sub` for a
    /// known subcommand, else the command's.
    pub fn full_name(&self, args: &[Bytes]) -> std::borrow::Cow<'static, str> {
        match args.get(1).and_then(|sub| self.subcommand_index(sub)) {
            Some(i) => format!("{}|{}", self.name, self.subcommands[i].0).into(),
            None => self.name.into(),
        }
    }

    /// Redis's reply to a call [`Self::check_shape`] refuses.
    pub fn shape_error(&self, args: &[Bytes], bad: BadShape) -> String {
        match bad {
            BadShape::Arity => format!(
                "ERR wrong number of arguments for '{}' command",
                self.full_name(args)
            ),
            BadShape::UnknownSubcommand => {
                let sub = &args[1][..args[1].len().min(128)];
                format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    String::from_utf8_lossy(sub),
                    self.name.to_ascii_uppercase()
                )
            }
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags & flag::WRITE != 0
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Whether a change this command reports goes to replicas and the
    /// AOF: writes, and the read-only commands flagged `PROPAGATES`.
    pub fn propagates_changes(&self) -> bool {
        self.has(flag::WRITE | flag::PROPAGATES)
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_allows(self.arity, argc)
    }

    /// Positions of the key arguments for a call with `argc` arguments.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key, self.key_step.max(1));
        let last = if self.last_key < 0 {
            argc as i32 + self.last_key
        } else {
            self.last_key.min(argc as i32 - 1)
        };
        let range = if first > 0 && last >= first {
            first..=last
        } else {
            #[allow(clippy::reversed_empty_ranges)]
            {
                1..=0
            }
        };
        range.step_by(step as usize).map(|p| p as usize)
    }

    /// Positions of every key a call touches, where it must run: the
    /// fixed ones, or for a keyed command with movable keys (GEORADIUS
    /// with STORE) the ones its arguments name.
    pub fn routing_positions<'a>(&'a self, args: &'a [Bytes]) -> impl Iterator<Item = usize> + 'a {
        let movable = (self.flags & flag::MOVABLE_KEYS != 0 && matches!(self.run, Run::Keyed(..)))
            .then(|| self.movable_key_positions(args));
        let fixed = movable.is_none().then(|| self.key_positions(args.len()));
        fixed
            .into_iter()
            .flatten()
            .chain(movable.into_iter().flatten())
    }

    /// Key positions of a MOVABLE_KEYS command for the call `args` (name
    /// included), read from its arguments: SINTERCARD's `numkeys` at 1 with
    /// the keys after it. Empty when the arguments do not say (a bad
    /// numkeys); new movable commands add their rule here.
    pub fn movable_key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        match self.name {
            "sintercard" => {
                let n = args
                    .get(1)
                    .and_then(|a| crate::util::num::parse_i64_strict(a))
                    .filter(|&n| n >= 1 && n <= args.len() as i64 - 2)
                    .unwrap_or(0);
                (2..2 + n as usize).collect()
            }
            "zunion" | "zinter" | "zdiff" | "zintercard" | "zmpop" => numkeys_positions(args, 1),
            "zunionstore" | "zinterstore" | "zdiffstore" => {
                let mut keys = numkeys_positions(args, 2);
                if !keys.is_empty() {
                    keys.insert(0, 1);
                }
                keys
            }
            "lmpop" => numkeys_positions(args, 1),
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
                numkeys_positions(args, 2)
            }
            // GEORADIUS[BYMEMBER] key ... [STORE|STOREDIST key]: the last
            // store key given counts, as in Redis.
            "georadius" | "georadiusbymember" => {
                let mut keys = vec![1];
                let mut j = 5;
                while j + 1 < args.len() {
                    if args[j].eq_ignore_ascii_case(b"store")
                        || args[j].eq_ignore_ascii_case(b"storedist")
                    {
                        keys.truncate(1);
                        keys.push(j + 1);
                        j += 1;
                    }
                    j += 1;
                }
                keys
            }
            // BLMPOP / BZMPOP timeout numkeys key...
            "blmpop" | "bzmpop" => numkeys_positions(args, 2),
            // SORT key [BY p] [LIMIT o c] [GET p]... [STORE dest]
            "sort" | "sort_ro" => {
                let mut keys = vec![1];
                let mut j = 2;
                while j < args.len() {
                    let a = &args[j];
                    if a.eq_ignore_ascii_case(b"limit") {
                        j += 2;
                    } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
                        j += 1;
                    } else if self.name == "sort"
                        && a.eq_ignore_ascii_case(b"store")
                        && j + 1 < args.len()
                    {
                        keys.truncate(1);
                        keys.push(j + 1);
                        j += 1;
                    }
                    j += 1;
                }
                keys
            }
            // XREAD ... STREAMS key [key ...] id [id ...]
            "xread" | "xreadgroup" => {
                let at = args
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(b"streams"))
                    .map_or(args.len(), |p| p + 1);
                let rest = args.len() - at.min(args.len());
                if rest.is_multiple_of(2) {
                    (at..at + rest / 2).collect()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        flag::NAMES
            .iter()
            .filter(|(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    pub fn acl_categories(&self) -> Vec<&'static str> {
        // Redis files SORT under the types it reads rather than its group.
        // Where Redis's categories are not its group's (from its command
        // table): the types a command reads, or dangerous without admin.
        let mut cats = match self.name {
            "sort" | "sort_ro" => vec!["@set", "@sortedset", "@list", "@dangerous"],
            "restore" | "keys" | "flushdb" | "flushall" | "swapdb" => {
                vec!["@keyspace", "@dangerous"]
            }
            "dbsize" => vec!["@keyspace"],
            "info" => vec!["@dangerous"],
            "command" | "wait" => vec!["@connection"],
            "lastsave" | "role" => vec!["@admin", "@dangerous"],
            // Containers: their subcommands have the categories.
            "time" | "script" | "function" => vec![],
            _ => vec![self.group.acl_category()],
        };
        if self.is_write() {
            cats.push("@write");
        }
        // EVAL_RO's flag says what its scripts may do, not what it reads.
        if self.has(flag::READONLY) && self.group != Group::Scripting {
            cats.push("@read");
        }
        if self.has(flag::ADMIN) {
            if !cats.contains(&"@admin") {
                cats.push("@admin");
            }
            cats.push("@dangerous");
        }
        if self.has(flag::BLOCKING) {
            cats.push("@blocking");
        }
        cats.push(if self.has(flag::FAST) {
            "@fast"
        } else {
            "@slow"
        });
        cats
    }
}

/// The key positions after a `numkeys` argument at `at` (empty for a bad
/// or too large numkeys).
fn numkeys_positions(args: &[Bytes], at: usize) -> Vec<usize> {
    let n = args
        .get(at)
        .and_then(|a| crate::util::num::parse_i64_strict(a))
        .filter(|&n| n >= 1 && n < args.len() as i64 - at as i64)
        .unwrap_or(0);
    (at + 1..at + 1 + n as usize).collect()
}

/// Shorthand for table rows.
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: Group,
    since: &'static str,
    summary: &'static str,
    run: Run,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        group,
        since,
        summary,
        run,
        id: 0,
        subcommands: &[],
        first_sub_id: 0,
    }
}

pub struct Table {
    pub commands: Vec<CommandSpec>,
    by_name: NameIndex,
    /// `container|subcommand` per statistics index past the commands'.
    sub_names: Vec<String>,
}

/// Containers and their subcommands with their arities, as Redis 7.0's
/// command table has them (those Cascade has; `client|setinfo` is 7.2's).
/// Redis counts each subcommand apart in `INFO commandstats` and
/// `latencystats`, and looks the subcommand up before anything else runs:
/// an unknown one or a wrong count is refused like an unknown command.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    (
        "acl",
        &[
            ("cat", -2),
            ("deluser", -3),
            ("dryrun", -4),
            ("genpass", -2),
            ("getuser", 3),
            ("help", 2),
            ("list", 2),
            ("load", 2),
            ("log", -2),
            ("save", 2),
            ("setuser", -3),
            ("users", 2),
            ("whoami", 2),
        ],
    ),
    (
        "client",
        &[
            ("caching", 3),
            ("getname", 2),
            ("getredir", 2),
            ("help", 2),
            ("id", 2),
            ("info", 2),
            ("kill", -3),
            ("list", -2),
            ("no-evict", 3),
            ("pause", -3),
            ("reply", 3),
            ("setinfo", 4),
            ("setname", 3),
            ("tracking", -3),
            ("trackinginfo", 2),
            ("unblock", -3),
            ("unpause", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("docs", -2),
            ("getkeys", -4),
            ("getkeysandflags", -4),
            ("help", 2),
            ("info", -2),
            ("list", -2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("help", 2),
            ("resetstat", 2),
            ("rewrite", 2),
            ("set", -4),
        ],
    ),
    (
        "function",
        &[
            ("delete", 3),
            ("dump", 2),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("list", -2),
            ("load", -3),
            ("restore", -3),
            ("stats", 2),
        ],
    ),
    (
        "latency",
        &[
            ("doctor", 2),
            ("graph", 3),
            ("help", 2),
            ("histogram", -2),
            ("history", 3),
            ("latest", 2),
            ("reset", -2),
        ],
    ),
    (
        "memory",
        &[
            ("doctor", 2),
            ("help", 2),
            ("malloc-stats", 2),
            ("purge", 2),
            ("stats", 2),
            ("usage", -3),
        ],
    ),
    (
        "object",
        &[
            ("encoding", 3),
            ("freq", 3),
            ("help", 2),
            ("idletime", 3),
            ("refcount", 3),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", -2),
            ("help", 2),
            ("numpat", 2),
            ("numsub", -2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
        ],
    ),
    (
        "script",
        &[
            ("debug", 3),
            ("exists", -3),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("load", 3),
        ],
    ),
    (
        "slowlog",
        &[("get", -2), ("help", 2), ("len", 2), ("reset", 2)],
    ),
    (
        "xgroup",
        &[
            ("create", -5),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("destroy", 4),
            ("help", 2),
            ("setid", -5),
        ],
    ),
    (
        "xinfo",
        &[("consumers", 4), ("groups", 3), ("help", 2), ("stream", -3)],
    ),
];

/// Command names to table indexes: an open-addressed array probed
/// linearly, hashed with FNV-1a. Every command looks itself up here, so it
/// is kept cheaper than a general map with a DoS-resistant hasher; the set
/// of names is fixed, so no client input can make its chains longer.
struct NameIndex {
    /// `commands` index + 1 per slot; 0 is empty.
    slots: Vec<u16>,
}

impl NameIndex {
    fn hash(name: &[u8]) -> usize {
        let mut h: u32 = 0x811c_9dc5;
        for &b in name {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h as usize
    }

    fn build(commands: &[CommandSpec]) -> NameIndex {
        let size = (commands.len() * 4).next_power_of_two();
        assert!(commands.len() < usize::from(u16::MAX), "too many commands");
        let mut index = NameIndex {
            slots: vec![0; size],
        };
        for (i, c) in commands.iter().enumerate() {
            assert!(
                index.find(commands, c.name.as_bytes()).is_none(),
                "duplicate command {}",
                c.name
            );
            let mut at = Self::hash(c.name.as_bytes()) & (size - 1);
            while index.slots[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            index.slots[at] = (i + 1) as u16;
        }
        index
    }

    /// The index of the command named `lower` (already lowercase).
    fn find(&self, commands: &[CommandSpec], lower: &[u8]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = Self::hash(lower) & mask;
        loop {
            let i = usize::from(self.slots[at]).checked_sub(1)?;
            if commands[i].name.as_bytes() == lower {
                return Some(i);
            }
            at = (at + 1) & mask;
        }
    }
}

impl Table {
    fn build() -> Table {
        let mut commands = Vec::new();
        for family in [
            super::string::commands(),
            super::bitmap::commands(),
            super::bitfield::commands(),
            super::lcs::commands(),
            super::hll::commands(),
            super::stream::commands(),
            super::xgroup::commands(),
            super::geo::commands(),
            super::eval::commands(),
            super::function::commands(),
            super::hash::commands(),
            super::set::commands(),
            super::zset::commands(),
            super::list::commands(),
            super::keys::commands(),
            super::dump::commands(),
            super::sort::commands(),
            super::server::commands(),
            super::acl::commands(),
            super::latency::commands(),
            super::connection::commands(),
            super::repl::commands(),
            super::tx::commands(),
            super::pubsub::commands(),
        ] {
            commands.extend(family);
        }
        for (i, c) in commands.iter_mut().enumerate() {
            c.id = i;
        }
        let mut next = commands.len();
        let mut sub_names = Vec::new();
        for c in commands.iter_mut() {
            let subs = SUBCOMMANDS
                .iter()
                .find(|(name, _)| *name == c.name)
                .map_or(&[][..], |(_, subs)| *subs);
            c.subcommands = subs;
            c.first_sub_id = next;
            next += subs.len();
            sub_names.extend(subs.iter().map(|(sub, _)| format!("{}|{sub}", c.name)));
        }
        let by_name = NameIndex::build(&commands);
        Table {
            commands,
            by_name,
            sub_names,
        }
    }

    /// The name statistics show for index `id`: a command's, or
    /// `container|subcommand`.
    pub fn stat_name(&self, id: usize) -> &str {
        match self.commands.get(id) {
            Some(c) => c.name,
            None => self
                .sub_names
                .get(id - self.commands.len())
                .map_or("unknown", String::as_str),
        }
    }

    /// Looks a command up by name, case-insensitively, without allocating
    /// for names up to 32 bytes.
    pub fn lookup(&self, name: &[u8]) -> Option<&CommandSpec> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let i = self.by_name.find(&self.commands, &buf[..name.len()])?;
        Some(&self.commands[i])
    }
}

/// The process-wide command table.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::build)
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn every_command_is_found_by_its_name_in_any_case() {
        let t = table();
        assert!(t.commands.len() > 150, "{}", t.commands.len());
        for (i, c) in t.commands.iter().enumerate() {
            assert_eq!(c.id, i);
            let upper = c.name.to_ascii_uppercase();
            let mixed: String = c
                .name
                .chars()
                .enumerate()
                .map(|(n, ch)| {
                    if n % 2 == 0 {
                        ch.to_ascii_uppercase()
                    } else {
                        ch
                    }
                })
                .collect();
            for name in [c.name.to_string(), upper, mixed] {
                let found = t.lookup(name.as_bytes()).map(|s| s.id);
                assert_eq!(found, Some(i), "{name}");
            }
        }
    }

    #[test]
    fn unknown_names_are_not_found() {
        let t = table();
        for name in [
            &b""[..],
            b"gett",
            b"ge",
            b"get\0",
            b"\xff\xfe",
            b"sett",
            &[b'a'; 32],
            &[b'a'; 33],
            &[b'g'; 1000],
        ] {
            assert!(t.lookup(name).is_none(), "{name:?}");
        }
        assert_eq!(t.lookup(b"GET").map(|c| c.name), Some("get"));
    }
}
