//! Cascade's configuration: a drop-in for redis-server 7.0's config handling
//! (config files, command line, CONFIG GET / SET / REWRITE) plus Cascade's
//! own directives (`shards`, `replica-protect-data`).
//!
//! Owns the current value of every directive and the CONFIG command
//! semantics, including Redis 7.0.15's exact reply and error texts. It must
//! not depend on sockets, the event loop, the keyspace or any server code:
//! the server reads values through the typed accessors and applies changes
//! itself (chdir to `dir`, re-arming timers, ...). Nothing here chdirs, logs
//! or exits.
//!
//! Files: `table.rs` (the declarative directive table), `value.rs` (value
//! types, Redis number/unit/quoting rules), `parse.rs` (config text, command
//! line, FATAL errors), `rewrite.rs` (CONFIG REWRITE). Cascade differences
//! from Redis 7.0: `port` and `bind` are immutable (no runtime re-bind yet),
//! `loadmodule` is refused, `user`/`rename-command` lines are stored for the
//! server to validate.

mod parse;
mod rewrite;
pub mod table;
mod value;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use parse::{
    load_from_args, load_from_str, split_args, FatalConfigError, Invocation, Origin, REDIS_VERSION,
};
pub use rewrite::{rewrite, rewrite_with_users, UserLines};
pub(crate) use value::strerror;
pub use value::{
    notify_flags_from_str, notify_flags_to_string, parse_memory, repr, ObufLimit, NOTIFY_ALL,
    NOTIFY_EVICTED, NOTIFY_EXPIRED, NOTIFY_GENERIC, NOTIFY_HASH, NOTIFY_KEYEVENT, NOTIFY_KEYSPACE,
    NOTIFY_KEY_MISS, NOTIFY_LIST, NOTIFY_MODULE, NOTIFY_NEW, NOTIFY_SET, NOTIFY_STREAM,
    NOTIFY_STRING, NOTIFY_ZSET,
};

use table::{index_of, lookup, TABLE};
use value::{default_value, format_get, parse_value, split_spaces, Env, Value};

/// `loglevel` (Redis 7.0 has no `nothing` level; it arrived in 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// `enable-debug-command` / `enable-module-command` /
/// `enable-protected-configs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCommandPolicy {
    No,
    Yes,
    /// Only for connections from the loopback interface / unix socket.
    Local,
}

impl DebugCommandPolicy {
    /// Whether a client may use the protected feature.
    pub fn allows(self, client_is_local: bool) -> bool {
        match self {
            DebugCommandPolicy::No => false,
            DebugCommandPolicy::Yes => true,
            DebugCommandPolicy::Local => client_is_local,
        }
    }
}

/// Current value of every directive.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Parallel to `table::TABLE`.
    values: Vec<Value>,
    /// `rename-command old new` lines, in file order (new may be empty).
    pub(crate) rename_commands: Vec<(Vec<u8>, Vec<u8>)>,
    /// Arguments of each `user` line (without the word `user`).
    pub(crate) users: Vec<Vec<Vec<u8>>>,
    /// Absolute path of the main config file.
    pub(crate) config_file: Option<PathBuf>,
}

impl Default for Config {
    /// Redis 7.0 defaults, i.e. what `redis-server` started without a config
    /// file reports; `dir` is the process working directory right now.
    fn default() -> Config {
        Config {
            values: TABLE.iter().map(default_value).collect(),
            rename_commands: Vec::new(),
            users: Vec::new(),
            config_file: None,
        }
    }
}

fn idx(name: &str) -> usize {
    // Only called with names from the static table; a typo is caught by the
    // accessor tests. Fall back to row 0 rather than panicking.
    index_of(name).unwrap_or(0)
}

/// Redis replaces CR/LF in error replies with spaces.
fn sanitize(s: &[u8]) -> String {
    String::from_utf8_lossy(s).replace(['\r', '\n'], " ")
}

impl Config {
    // ----- CONFIG GET ------------------------------------------------------

    /// One directive (canonical name or alias, any case; hidden ones too)
    /// formatted as CONFIG GET prints it. `None` for unknown names and for
    /// file-only directives (include, rename-command, user, loadmodule).
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_bytes(name.as_bytes())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Like [`Config::get`] but binary-exact (passwords may be any bytes).
    pub fn get_bytes(&self, name: &[u8]) -> Option<Vec<u8>> {
        let (i, _) = lookup(name)?;
        if TABLE[i].is_file_only() {
            return None;
        }
        Some(format_get(&TABLE[i], &self.values[i]))
    }

    /// CONFIG GET with one or more patterns, like Redis 7.0: a pattern
    /// without `*?[` is an exact (case-insensitive) name and is echoed back
    /// as typed; glob patterns match canonical names *and* aliases (so
    /// `slave*` lists the `slave-*` aliases under their alias names) but
    /// never hidden directives. Each name appears once (case-insensitive);
    /// results are in table order (canonical before its aliases).
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        // (row, 0 for canonical / 1+alias index, name as reported)
        let mut found: Vec<(usize, usize, Vec<u8>)> = Vec::new();
        let seen = |found: &Vec<(usize, usize, Vec<u8>)>, name: &[u8]| {
            found.iter().any(|f| f.2.eq_ignore_ascii_case(name))
        };
        for &pat in patterns {
            if !pat.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                if seen(&found, pat) {
                    continue;
                }
                if let Some((i, alias)) = lookup(pat) {
                    if !TABLE[i].is_file_only() {
                        found.push((i, alias.map_or(0, |a| a + 1), pat.to_vec()));
                    }
                }
                continue;
            }
            for (i, d) in TABLE.iter().enumerate() {
                if d.is_file_only() || d.is_hidden() {
                    continue;
                }
                let names = std::iter::once(d.name).chain(d.aliases.iter().copied());
                for (k, name) in names.enumerate() {
                    if seen(&found, name.as_bytes()) {
                        continue;
                    }
                    if crate::util::glob_match(pat, name.as_bytes(), true) {
                        found.push((i, k, name.as_bytes().to_vec()));
                    }
                }
            }
        }
        found.sort_by_key(|f| (f.0, f.1));
        found
            .into_iter()
            .map(|(i, _, name)| {
                (
                    String::from_utf8_lossy(&name).into_owned(),
                    String::from_utf8_lossy(&format_get(&TABLE[i], &self.values[i])).into_owned(),
                )
            })
            .collect()
    }

    // ----- CONFIG SET ------------------------------------------------------

    /// CONFIG SET name value [name value ...], all-or-nothing, with Redis
    /// 7.0.15's error texts (without the leading '-'). The client is treated
    /// as non-local for `enable-protected-configs local`; use
    /// [`Config::set_many_from`] when the connection is known. Returns the
    /// canonical names whose value actually changed, in argument order.
    pub fn set_many(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<Vec<&'static str>, String> {
        self.set_many_from(pairs, false)
    }

    /// [`Config::set_many`] for a client whose locality is known (protected
    /// configs `dir` and `dbfilename` honour `enable-protected-configs`).
    pub fn set_many_from(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        client_is_local: bool,
    ) -> Result<Vec<&'static str>, String> {
        // Phase 1, like configSetCommand: resolve names, refuse immutable /
        // protected / duplicated ones. The first unknown name wins unless an
        // earlier argument already failed.
        let mut targets: Vec<(usize, Option<usize>)> = Vec::with_capacity(pairs.len());
        let mut unknown: Option<&[u8]> = None;
        let mut failure: Option<String> = None;
        for &(name, _) in pairs {
            let found = lookup(name).filter(|(i, _)| !TABLE[*i].is_file_only());
            let Some((i, alias)) = found else {
                if unknown.is_none() && failure.is_none() {
                    unknown = Some(name);
                }
                continue;
            };
            if unknown.is_some() || failure.is_some() {
                continue;
            }
            let d = &TABLE[i];
            if !d.is_mutable() {
                failure = Some(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - can't set immutable config",
                    sanitize(name)
                ));
                continue;
            }
            if d.is_protected() && !self.enable_protected_configs().allows(client_is_local) {
                failure = Some(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - can't set protected config",
                    sanitize(name)
                ));
                continue;
            }
            // Redis compares config entries: an alias and its canonical name
            // are distinct entries, so only the very same name is a duplicate.
            if targets.contains(&(i, alias)) {
                failure = Some(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                    sanitize(name)
                ));
                continue;
            }
            targets.push((i, alias));
        }
        if let Some(name) = unknown {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                sanitize(name)
            ));
        }
        if let Some(f) = failure {
            return Err(f);
        }

        // Phase 2: set everything on a copy; commit only if all succeed.
        let mut next = self.clone();
        for (&(i, alias), &(_, value)) in targets.iter().zip(pairs) {
            let d = &TABLE[i];
            let args: Vec<&[u8]> = if d.is_multi_arg() {
                split_spaces(value)
            } else {
                vec![value]
            };
            if let Err(reason) = next.set_row(i, &args, false) {
                let shown = alias.map_or(d.name, |a| d.aliases[a]);
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{shown}') - {reason}"
                ));
            }
            if d.name == "hz" {
                // Redis's apply function for hz clamps out-of-range values.
                next.clamp_hz();
            }
        }
        let mut changed: Vec<&'static str> = Vec::new();
        for &(i, _) in &targets {
            let name = TABLE[i].name;
            if next.values[i] != self.values[i] && !changed.contains(&name) {
                changed.push(name);
            }
        }
        *self = next;
        Ok(changed)
    }

    /// Sets one row from already-split arguments (file line or CONFIG SET).
    pub(crate) fn set_row(
        &mut self,
        i: usize,
        args: &[&[u8]],
        save_append: bool,
    ) -> Result<(), String> {
        let env = Env {
            cur: &self.values[i],
            save_append,
            cluster_enabled: self.bool_value("cluster-enabled"),
            unixsocket_set: self.unixsocket().is_some(),
        };
        let v = parse_value(&TABLE[i], args, &env, true)?;
        self.values[i] = v;
        Ok(())
    }

    /// Redis keeps `hz` within [1, 500] after loading and after CONFIG SET.
    pub(crate) fn clamp_hz(&mut self) {
        let i = idx("hz");
        if let Value::Num(n) = &mut self.values[i] {
            *n = (*n).clamp(1, 500);
        }
    }

    pub(crate) fn value(&self, i: usize) -> &Value {
        &self.values[i]
    }

    // ----- generic typed access -------------------------------------------

    fn num(&self, name: &str) -> i64 {
        match self.values[idx(name)] {
            Value::Num(n) => n,
            _ => 0,
        }
    }

    fn enum_value(&self, name: &str) -> u32 {
        match self.values[idx(name)] {
            Value::Enum(e) => e,
            _ => 0,
        }
    }

    fn string_value(&self, name: &str) -> Option<Vec<u8>> {
        match &self.values[idx(name)] {
            Value::Str(s) => s.clone(),
            _ => None,
        }
    }

    /// A boolean directive by canonical name (false if not boolean).
    pub fn bool_value(&self, name: &str) -> bool {
        index_of(name).is_some_and(|i| matches!(self.values[i], Value::Bool(true)))
    }

    /// A numeric directive by canonical name, as Redis stores it (memory
    /// values above i64::MAX wrap; percentages are negative).
    pub fn int_value(&self, name: &str) -> Option<i64> {
        match self.values.get(index_of(name)?)? {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }

    // ----- typed accessors used by the server ------------------------------

    pub fn port(&self) -> u16 {
        u16::try_from(self.num("port")).unwrap_or(0)
    }

    /// Raw bind entries, including an optional leading '-' ("bind to it if
    /// available"). Empty means: listen on no TCP address.
    pub fn bind(&self) -> Vec<String> {
        match &self.values[idx("bind")] {
            Value::Bind(b) => b
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn protected_mode(&self) -> bool {
        self.bool_value("protected-mode")
    }

    pub fn daemonize(&self) -> bool {
        self.bool_value("daemonize")
    }

    /// As configured. Note Redis writes `/var/run/redis.pid` when
    /// daemonized without a pidfile; that decision belongs to the server.
    pub fn pidfile(&self) -> Option<String> {
        self.string_value("pidfile")
            .map(|s| String::from_utf8_lossy(&s).into_owned())
    }

    /// Empty means standard output. Relative paths are relative to `dir`.
    pub fn logfile(&self) -> String {
        self.string_value("logfile")
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    pub fn loglevel(&self) -> LogLevel {
        match self.enum_value("loglevel") {
            0 => LogLevel::Debug,
            1 => LogLevel::Verbose,
            3 => LogLevel::Warning,
            _ => LogLevel::Notice,
        }
    }

    /// Absolute working directory the server must chdir to.
    pub fn dir(&self) -> String {
        match &self.values[idx("dir")] {
            Value::Dir(d) => d.clone(),
            _ => String::new(),
        }
    }

    pub fn databases(&self) -> usize {
        usize::try_from(self.num("databases")).unwrap_or(16)
    }

    pub fn requirepass(&self) -> Option<Vec<u8>> {
        self.string_value("requirepass")
    }

    /// Client idle timeout in seconds (0 = never).
    pub fn timeout(&self) -> u64 {
        u64::try_from(self.num("timeout")).unwrap_or(0)
    }

    pub fn tcp_keepalive(&self) -> u64 {
        u64::try_from(self.num("tcp-keepalive")).unwrap_or(0)
    }

    pub fn tcp_backlog(&self) -> u32 {
        u32::try_from(self.num("tcp-backlog")).unwrap_or(511)
    }

    pub fn maxclients(&self) -> u64 {
        u64::try_from(self.num("maxclients")).unwrap_or(10000)
    }

    pub fn proto_max_bulk_len(&self) -> u64 {
        u64::try_from(self.num("proto-max-bulk-len")).unwrap_or(512 << 20)
    }

    pub fn client_query_buffer_limit(&self) -> u64 {
        u64::try_from(self.num("client-query-buffer-limit")).unwrap_or(1 << 30)
    }

    /// Always within [1, 500] (Redis clamps).
    pub fn hz(&self) -> u32 {
        u32::try_from(self.num("hz").clamp(1, 500)).unwrap_or(10)
    }

    pub fn enable_debug_command(&self) -> DebugCommandPolicy {
        policy(self.enum_value("enable-debug-command"))
    }

    pub fn enable_module_command(&self) -> DebugCommandPolicy {
        policy(self.enum_value("enable-module-command"))
    }

    pub fn enable_protected_configs(&self) -> DebugCommandPolicy {
        policy(self.enum_value("enable-protected-configs"))
    }

    /// Number of shards; 0 means "one per usable core" (the default).
    pub fn shards(&self) -> usize {
        usize::try_from(self.num("shards")).unwrap_or(0)
    }

    pub fn replica_protect_data(&self) -> bool {
        self.bool_value("replica-protect-data")
    }

    pub fn replicaof(&self) -> Option<(String, u16)> {
        match &self.values[idx("replicaof")] {
            Value::ReplicaOf(Some((host, port))) => Some((
                String::from_utf8_lossy(host).into_owned(),
                u16::try_from(*port).unwrap_or(0),
            )),
            _ => None,
        }
    }

    /// Records whom we follow (REPLICAOF), so CONFIG GET and CONFIG
    /// REWRITE show the relationship made by command.
    pub fn set_replicaof(&mut self, master: Option<(&str, u16)>) {
        self.values[idx("replicaof")] =
            Value::ReplicaOf(master.map(|(h, p)| (h.as_bytes().to_vec(), i32::from(p))));
    }

    pub fn masterauth(&self) -> Option<Vec<u8>> {
        self.string_value("masterauth")
    }

    pub fn masteruser(&self) -> Option<String> {
        self.string_value("masteruser")
            .map(|s| String::from_utf8_lossy(&s).into_owned())
    }

    pub fn repl_backlog_size(&self) -> u64 {
        u64::try_from(self.num("repl-backlog-size")).unwrap_or(1 << 20)
    }

    /// `repl-timeout` (at least a second).
    pub fn repl_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.num("repl-timeout").max(1) as u64)
    }

    /// `repl-ping-replica-period` (at least a second).
    pub fn repl_ping_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.num("repl-ping-replica-period").max(1) as u64)
    }

    /// Bytes the replication ring is allocated with: `repl-backlog-size`,
    /// at least `repl-ring-min-size`.
    pub fn repl_ring_size(&self) -> usize {
        let min = u64::try_from(self.num("repl-ring-min-size")).unwrap_or(32 << 20);
        self.repl_backlog_size().max(min) as usize
    }

    /// `repl-sync-spill-max-size` in bytes (0: no spill).
    pub fn repl_sync_spill_max(&self) -> u64 {
        u64::try_from(self.num("repl-sync-spill-max-size")).unwrap_or(0)
    }

    pub fn dbfilename(&self) -> String {
        self.string_value("dbfilename")
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    /// (seconds, changes) snapshot points; empty = no automatic saves. A
    /// negative `changes` (reachable through C int truncation, as in Redis)
    /// is reported as 0: "any number of changes".
    pub fn save_points(&self) -> Vec<(u64, u64)> {
        match &self.values[idx("save")] {
            Value::Save(p) => p
                .iter()
                .map(|&(s, c)| (s.max(0) as u64, c.max(0) as u64))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn unixsocket(&self) -> Option<String> {
        self.string_value("unixsocket")
            .map(|s| String::from_utf8_lossy(&s).into_owned())
    }

    /// Bytes; 0 = no limit.
    pub fn maxmemory(&self) -> u64 {
        self.num("maxmemory") as u64
    }

    /// e.g. "noeviction", "allkeys-lru".
    pub fn maxmemory_policy(&self) -> String {
        self.get("maxmemory-policy").unwrap_or_default()
    }

    pub fn appendonly(&self) -> bool {
        self.bool_value("appendonly")
    }

    /// "everysec", "always" or "no".
    pub fn appendfsync(&self) -> String {
        self.get("appendfsync").unwrap_or_default()
    }

    pub fn replica_read_only(&self) -> bool {
        self.bool_value("replica-read-only")
    }

    pub fn replica_serve_stale_data(&self) -> bool {
        self.bool_value("replica-serve-stale-data")
    }

    /// `NOTIFY_*` bit set.
    pub fn notify_keyspace_events(&self) -> u32 {
        match self.values[idx("notify-keyspace-events")] {
            Value::Notify(f) => f,
            _ => 0,
        }
    }

    /// [normal, replica, pubsub] limits.
    pub fn client_output_buffer_limits(&self) -> [ObufLimit; 3] {
        match &self.values[idx("client-output-buffer-limit")] {
            Value::Obuf(l) => *l,
            _ => value::default_obuf(),
        }
    }

    /// `rename-command` pairs in file order (an empty new name disables).
    pub fn rename_commands(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.rename_commands
    }

    /// Arguments of each `user` line, in file order.
    pub fn users(&self) -> &[Vec<Vec<u8>>] {
        &self.users
    }

    /// Absolute path of the main config file, if the server was started
    /// with one (not for stdin-only or no config).
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// Whether the directive (by any name) is one whose value must be
    /// redacted from logs, slowlog and MONITOR.
    pub fn is_sensitive(name: &[u8]) -> bool {
        lookup(name).is_some_and(|(i, _)| TABLE[i].is_sensitive())
    }

    /// Canonical name for a directive name or alias.
    pub fn canonical_name(name: &[u8]) -> Option<&'static str> {
        lookup(name).map(|(i, _)| TABLE[i].name)
    }
}

fn policy(v: u32) -> DebugCommandPolicy {
    match v {
        1 => DebugCommandPolicy::Yes,
        2 => DebugCommandPolicy::Local,
        _ => DebugCommandPolicy::No,
    }
}
