//! Commands: the table, argument parsing, and execution.
//!
//! [`dispatch`] takes one decoded command from a connection and returns its
//! reply. It checks the table (unknown command, arity, authentication),
//! then either runs a keyed handler on the shard that owns the keys (through
//! [`crate::shard::run_on`], or [`crate::shard::hold`] when the keys span
//! shards) or runs a client-level command with the connection's state.
//!
//! Handlers never touch sockets; they return a [`Reply`]. This layer
//! depends on `resp` (reply values), `shard`, `keyspace`, `config` and
//! `node`, never on `net` or `server`.
//!
//! Families: [`string`], [`hash`], [`set`] (multi-key ones in `setops`),
//! [`zset`] (ranges in `zrange`, multi-key ones in `zsetops`),
//! [`list`] (multi-key ones in `listops`, blocking ones in [`blocking`]),
//! [`keys`] (generic key commands), [`server`] (INFO, CONFIG, DEBUG...),
//! [`shutdown`] (SHUTDOWN and the signals' shutdown),
//! [`connection`] (PING, AUTH, HELLO, CLIENT...), [`tx`]
//! (MULTI/EXEC/WATCH), [`pubsub`].

pub(crate) mod acl;
mod across;
pub mod apply;
pub mod args;
mod bitfield;
mod bitmap;
pub mod blocking;
pub mod connection;
mod dump;
pub mod error;
mod eval;
mod function;
mod geo;
mod geosearch;
pub mod hash;
mod hll;
pub mod info;
pub mod keys;
mod latency;
mod lcs;
pub mod list;
mod listops;
mod lookup;
mod memory;
pub mod pipeline;
pub mod pubsub;
pub mod repl;
pub mod server;
pub mod set;
mod setops;
pub mod shutdown;
mod sort;
mod stream;
pub mod string;
pub mod table;
mod tracking;
pub mod tx;
mod xgroup;
mod xreadgroup;
mod zrange;
pub mod zset;
mod zsetops;

use crate::keyspace::Db;
use crate::node::{unix_ms, Node};
use crate::resp::{Protocol, Reply};
use crate::shard::{self, ClientInfo, Shard, ShardCore};
use bytes::Bytes;
use error::CmdError;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use table::{flag, ClientCmd, CommandSpec, Run, Split};

/// What a keyed handler sees: the owning shard's data and the calling
/// client's database.
pub struct Ctx<'a> {
    pub core: &'a mut ShardCore,
    pub db: usize,
    pub now_ms: u64,
    /// Changes this command made (`dirty`); a write with none is not
    /// propagated.
    pub changes: u64,
    /// What to propagate instead of the command as sent (see
    /// [`Ctx::propagate_as`]).
    pub rewrite: Option<Vec<Vec<Bytes>>>,
    /// The command comes from our master or the AOF being loaded: it is
    /// applied as given, without the limits a client gets (Redis's
    /// `mustObeyClient`; XADD's trim LIMIT).
    pub obey: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(core: &'a mut ShardCore, db: usize) -> Self {
        Self::at(core, db, unix_ms())
    }

    /// A context whose clock reads `now_ms`: the commands of one job share
    /// one reading.
    pub fn at(core: &'a mut ShardCore, db: usize, now_ms: u64) -> Self {
        Ctx {
            core,
            db,
            now_ms,
            changes: 0,
            rewrite: None,
            obey: false,
        }
    }

    /// Publishes keyspace notification `event` of `class` for `key` in
    /// this command's database (after the `expired` ones of keys its
    /// lookups expired, as Redis orders them).
    #[inline]
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        notify_on(self.core, self.db, class, event, key);
    }

    /// A removal from the collection at `key`: its `event`, then `del`
    /// when it emptied the collection (which the caller deleted).
    pub fn notify_removal(&mut self, class: u32, event: &str, key: &[u8], emptied: bool) {
        self.notify(class, event, key);
        if emptied {
            self.notify(crate::notify::class::GENERIC, "del", key);
        }
    }

    /// Counts a read lookup of `key` as Redis's lookupKeyRead does: a
    /// keyspace hit, or a miss, announced as `keymiss` (the `m` class).
    pub fn count_read(&mut self, key: &[u8], found: bool) {
        if found {
            self.core.stats.keyspace_hits += 1;
        } else {
            self.core.stats.keyspace_misses += 1;
            self.notify(crate::notify::class::KEY_MISS, "keymiss", key);
        }
    }

    /// Replicas (and the AOF) get these commands instead of the one that
    /// ran: relative expirations made absolute, effects made deterministic.
    pub fn propagate_as(&mut self, cmds: Vec<Vec<Bytes>>) {
        self.rewrite = Some(cmds);
    }

    pub fn db(&mut self) -> &mut Db {
        self.core.db_mut(self.db)
    }

    /// Records a change of `key` even when it counts no `dirty` change
    /// (Redis signals LTRIM's key whatever it trimmed).
    pub fn signal_modified(&mut self, key: &[u8]) {
        self.db().touch(key);
    }

    /// Counts `n` changes for `rdb_changes_since_last_save`.
    pub fn dirty(&mut self, n: u64) {
        self.core.stats.dirty += n;
        self.changes += n;
    }
}

/// CLIENT REPLY mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// Skipping the current command's reply.
    Skipping,
}

/// A connection's state as commands see it. The connection layer owns the
/// socket; this owns everything else about the client.
pub struct Client {
    pub id: u64,
    pub node: Arc<Node>,
    pub shard: Rc<Shard>,
    /// Shared with the shard's client registry (CLIENT LIST/KILL).
    pub info: Rc<RefCell<ClientInfo>>,
    pub db: usize,
    pub proto: Protocol,
    pub authenticated: bool,
    /// The ACL user this connection runs as; `None` for our master's link
    /// and the AOF loader, which may run anything (Redis's NULL user).
    pub user: std::cell::RefCell<Option<Arc<crate::acl::User>>>,
    /// The registry generation `user` was read at: a change of users makes
    /// the next check read it again.
    pub user_generation: std::cell::Cell<u64>,
    pub reply_mode: ReplyMode,
    /// CLIENT TRACKING: how this client tracks (also in the node's
    /// `tracking` registry).
    pub tracking: Option<Arc<crate::tracking::Tracker>>,
    /// CLIENT CACHING yes|no, for the next command (or transaction).
    pub caching: bool,
    /// Close the connection once this reply is written (QUIT, errors).
    pub close_after_reply: bool,
    /// Connected over loopback (or a Unix socket): protected mode and
    /// `enable-debug-command local` allow it.
    pub is_local: bool,
    /// Set once the client ran MONITOR: where its lines arrive.
    pub monitor: Option<Arc<crate::shard::inbox::Inbox<Bytes>>>,
    /// What a replica told us in REPLCONF before PSYNC.
    pub repl: ReplHandshake,
    /// Set by PSYNC/SYNC: the connection becomes a replica feed once the
    /// command returns.
    pub psync: Option<crate::repl::master::PsyncRequest>,
    /// This is our master's link applying its stream: no replies, no
    /// read-only refusal, no propagation of its own.
    pub is_master: bool,
    /// Replication offset after this client's last write (what WAIT waits
    /// for replicas to acknowledge).
    pub last_write_offset: u64,
    /// Under `appendfsync always`: the AOF feed offset that must be
    /// durable before this client's pending replies are sent (0: none).
    /// The connection waits for it before writing ([`aof_durable`]).
    pub aof_wait: std::cell::Cell<u64>,
    /// Between MULTI and EXEC/DISCARD: the queued commands.
    pub multi: Option<tx::MultiState>,
    /// Keys this client WATCHes.
    pub watched: Vec<tx::Watched>,
    /// EXEC is running this client's queued commands (blocking commands
    /// such as WAIT answer at once then, as in Redis).
    pub in_exec: bool,
    /// A script (EVAL or a function) is running its calls as this client:
    /// commands that refuse options there (XREAD BLOCK) look at it.
    pub in_script: bool,
    /// Channels and patterns, once the client subscribed to something.
    pub subs: Option<pubsub::Subscriptions>,
    /// Set while the client waits in a blocking command (BLPOP...): the
    /// connection then waits with [`blocking::wait`].
    pub blocked: Option<blocking::Blocked>,
}

/// REPLCONF settings a replica sends before PSYNC.
#[derive(Clone, Debug, Default)]
pub struct ReplHandshake {
    /// `listening-port` (0: not sent; the peer's port is shown instead).
    pub listening_port: u16,
    /// `ip-address` (replica-announce-ip).
    pub ip_address: Option<String>,
    /// `capa eof`: can load a diskless `$EOF:` payload.
    pub capa_eof: bool,
    /// `capa psync2`: understands `+CONTINUE <new replid>`.
    pub capa_psync2: bool,
    /// `rdb-only 1`: wants the snapshot only, no stream after it
    /// (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// `rdb-filter-only`: wants a snapshot without keys (`redis-cli
    /// --replica` and `--functions-rdb`)...
    pub rdb_keyless: bool,
    /// ...but with the function libraries (the `functions` filter).
    pub rdb_functions: bool,
}

impl Client {
    pub fn new(
        node: Arc<Node>,
        shard: Rc<Shard>,
        info: Rc<RefCell<ClientInfo>>,
        is_local: bool,
    ) -> Client {
        let users = crate::acl::registry();
        let authenticated = !users.default_needs_auth();
        let user_generation = std::cell::Cell::new(users.generation());
        let user = std::cell::RefCell::new(Some(users.default_user()));
        let id = info.borrow().id;
        Client {
            id,
            node,
            shard,
            info,
            db: 0,
            proto: Protocol::Resp2,
            authenticated,
            user,
            user_generation,
            reply_mode: ReplyMode::On,
            tracking: None,
            caching: false,
            close_after_reply: false,
            is_local,
            monitor: None,
            repl: ReplHandshake::default(),
            psync: None,
            is_master: false,
            last_write_offset: 0,
            aof_wait: std::cell::Cell::new(0),
            multi: None,
            watched: Vec::new(),
            in_exec: false,
            in_script: false,
            subs: None,
            blocked: None,
        }
    }
}

/// Redis's reply to an unknown command: the name and the first arguments,
/// up to about 128 bytes.
fn unknown_command(args: &[Bytes]) -> Reply {
    let mut listed = String::new();
    for a in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let text = String::from_utf8_lossy(&a[..a.len().min(room)]);
        listed.push('\'');
        listed.push_str(&text);
        listed.push_str("' ");
    }
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]);
    Reply::Error(format!("ERR unknown command '{name}', with args beginning with: {listed}").into())
}

pub fn wrong_arity(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command").into())
}

/// Runs one command for `client` and returns its reply (or queues it
/// inside MULTI).
pub async fn dispatch(client: &mut Client, args: Vec<Bytes>) -> Reply {
    let Some(spec) = table::table().lookup(&args[0]) else {
        let reply = unknown_command(&args);
        count_error(client, &reply);
        tx::flag_dirty(client);
        return reply;
    };
    // A script past its time limit holds every shard: other clients get
    // BUSY, except for what may stop or outlast it (SCRIPT KILL...).
    if crate::scripting::busy()
        && !client.is_master
        && !spec.has(flag::ALLOW_BUSY)
        && spec.name != "script"
        && spec.name != "function"
    {
        let reply = Reply::Error(Bytes::from_static(
            crate::scripting::busy_error().as_bytes(),
        ));
        count_error(client, &reply);
        return reply;
    }
    let queueing = client.multi.is_some() && !tx::runs_in_multi(spec);
    // A paused command is checked only once the pause is over, as Redis
    // re-processes it: a write paused by FAILOVER gets READONLY on the
    // node that meanwhile became a replica.
    if !queueing {
        wait_if_paused(client, spec, &args).await;
    }
    // From its checks to its end, a write counts as in flight, so a role
    // change can wait for the writes that were checked before it.
    let _in_flight = spec
        .has(flag::WRITE)
        .then(|| InFlight::enter(&client.shard));
    let checked = check(client, spec, &args).and_then(|()| {
        if client.multi.is_some() && spec.has(flag::NO_MULTI) {
            Err(Reply::Error(
                "ERR Command not allowed inside a transaction".into(),
            ))
        } else {
            Ok(())
        }
    });
    if let Err(mut reply) = checked {
        count_rejected(client, spec, &args);
        if matches!(spec.run, Run::Client(ClientCmd::Exec)) {
            reply = tx::abort_refused_exec(client, &reply).await;
        } else {
            tx::flag_dirty(client);
        }
        count_error(client, &reply);
        return reply;
    }
    if queueing {
        return tx::queue(client, spec, args);
    }
    let reply = call(client, spec, &args).await;
    // CLIENT CACHING holds for the next command (or transaction) only.
    if client.caching && spec.name != "client" && client.multi.is_none() {
        client.caching = false;
    }
    reply
}

/// A refused call counts in its command's `rejected_calls`, unless its
/// subcommand is unknown (Redis then has no command to count it in).
pub(crate) fn count_rejected(client: &Client, spec: &CommandSpec, args: &[Bytes]) {
    if spec.check_shape(args) == Err(table::BadShape::UnknownSubcommand) {
        return;
    }
    client
        .shard
        .with_core(|core| core.stats.command(spec.stat_id(args)).rejected_calls += 1);
}

/// Marks a client write in flight on its connection's shard (see
/// [`crate::shard::writes_drained`]).
struct InFlight(Rc<Shard>);

impl InFlight {
    fn enter(shard: &Rc<Shard>) -> InFlight {
        shard.writes_in_flight.set(shard.writes_in_flight.get() + 1);
        InFlight(shard.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = &self.0.writes_in_flight;
        n.set(n.get().saturating_sub(1));
    }
}

/// Runs a checked command and keeps its statistics, slow log and MONITOR
/// feed (Redis's `call`): for commands from the connection and for those
/// an EXEC runs.
pub(crate) async fn call(client: &mut Client, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    if client.tracking.is_some() {
        tracking::remember_keys(client, spec, args).await;
    }
    let started = std::time::Instant::now();
    let reply = execute(client, spec, args).await;
    if spec.propagates_changes() || spec.name == "exec" {
        note_aof_write(client);
    }
    if spec.propagates_changes() {
        if let Some(head) = client
            .shard
            .with_core(|core| core.backlog.as_ref().map(|b| b.head()))
        {
            client.last_write_offset = head;
        }
    }
    // One clock read for the slow log, the latency monitor and the stats.
    let elapsed = started.elapsed();
    if !spec.has(flag::SKIP_SLOWLOG) {
        record_slow(client, elapsed.as_micros() as u64, args);
    }
    // A blocked command's wait is not its latency (as in Redis).
    if client.blocked.is_none() {
        let event = if spec.has(flag::FAST) {
            "fast-command"
        } else {
            "command"
        };
        crate::latency::sample_if_needed(event, elapsed);
    }
    if client
        .node
        .monitor_count
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        && !spec.has(flag::SKIP_MONITOR | flag::ADMIN)
    {
        feed_monitors(client, args);
    }
    count_call(client, spec, args, &reply, elapsed);
    {
        let mut info = client.info.borrow_mut();
        info.last_cmd = spec.name;
        info.db = client.db;
    }
    reply
}

/// Counts a call that ran (not one the checks refused) in
/// `INFO commandstats`, `errorstats` and `latencystats`.
fn count_call(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    reply: &Reply,
    took: std::time::Duration,
) {
    let usec = took.as_micros() as u64;
    let id = spec.stat_id(args);
    let failed = matches!(reply, Reply::Error(_));
    let track_latency = client
        .node
        .latency_tracking
        .load(std::sync::atomic::Ordering::Relaxed);
    client.shard.with_core(|core| {
        core.stats.commands_processed += 1;
        let s = core.stats.command(id);
        s.calls += 1;
        s.usec += usec;
        if failed {
            s.failed_calls += 1;
        }
        if track_latency {
            core.latency.record(id, took.as_nanos() as u64);
        }
    });
    if failed {
        count_error(client, reply);
    }
}

/// Under `appendfsync always`, the client's replies from now on wait until
/// the AOF is durable up to the feed's current end, which covers the write
/// it just ran (it was copied into the feed as it executed).
pub fn note_aof_write(client: &Client) {
    let end = client.shard.with_core(|core| {
        core.aof
            .as_ref()
            .filter(|a| a.always())
            .map(|a| a.feed.end())
    });
    if let Some(end) = end {
        client.aof_wait.set(end);
    }
}

/// Waits until the AOF write this client's replies depend on is durable
/// (see [`note_aof_write`]); at once when there is none.
pub async fn aof_durable(client: &Client) {
    let want = client.aof_wait.replace(0);
    if want == 0 {
        return;
    }
    let aof = client.shard.with_core(|core| core.aof.clone());
    if let Some(aof) = aof {
        aof.durable.wait_for(want).await;
    }
}

/// Formats a command as MONITOR shows it:
/// `+<secs>.<usecs> [<db> <addr>] "arg" "arg"...`, arguments quoted like
/// Redis's `sdscatrepr`.
fn feed_monitors(client: &Client, args: &[Bytes]) {
    use std::fmt::Write;
    let us = crate::node::unix_us();
    let mut line = String::with_capacity(64);
    let _ = write!(
        line,
        "+{}.{:06} [{} {}]",
        us / 1_000_000,
        us % 1_000_000,
        client.db,
        client.info.borrow().addr
    );
    for a in args {
        line.push(' ');
        line.push_str(&repr(a));
    }
    line.push_str("\r\n");
    client.node.feed_monitors(Bytes::from(line));
}

pub use crate::util::repr;

/// CLIENT PAUSE: holds the command while a pause covers it (every command
/// for `ALL`, writes for `WRITE`), and writes while a shutdown runs. An
/// EXEC counts as a write when a command it queued writes, and is held
/// before its checks, so a node that became a replica meanwhile refuses
/// it.
async fn wait_if_paused(client: &Client, spec: &CommandSpec, args: &[Bytes]) {
    let writes = checked_flags(client, spec, args).replicates;
    wait_if_paused_for(client, writes, spec.name).await
}

/// [`wait_if_paused`] for a command that writes (`writes`) and is called
/// `name`.
async fn wait_if_paused_for(client: &Client, writes: bool, name: &str) {
    use std::sync::atomic::Ordering;
    // A shutdown's pause ends when the process exits or the shutdown is
    // refused or aborted, a failover's when it ends; CLIENT UNPAUSE lifts
    // neither.
    while writes
        && (client.node.shutdown.writes_paused.load(Ordering::Relaxed)
            || client.node.failover_writes_paused.load(Ordering::Relaxed))
    {
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
    }
    loop {
        let until = client.node.pause_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            // No pause was ever set or it was lifted: skip the clock read.
            return;
        }
        let now = unix_ms();
        if until <= now {
            return;
        }
        let writes_only = client.node.pause_writes_only.load(Ordering::Relaxed);
        if writes_only && !writes {
            return;
        }
        if name == "client" {
            // CLIENT UNPAUSE must get through.
            return;
        }
        glommio::timer::sleep(std::time::Duration::from_millis((until - now).min(10))).await;
    }
}

/// The arguments a slow log entry keeps, cut like Redis (32 arguments,
/// 128 bytes each).
/// Whether argument `i` of a call is a secret the slow log shows as
/// `(redacted)`, as Redis does: ACL SETUSER's rules, the values of
/// sensitive directives in CONFIG SET.
fn redacted(args: &[Bytes], i: usize) -> bool {
    let is = |at: usize, s: &str| {
        args.get(at)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    if is(0, "acl") && is(1, "setuser") {
        return i >= 2;
    }
    is(0, "config")
        && is(1, "set")
        && i >= 3
        && i % 2 == 1
        && crate::config::Config::is_sensitive(&args[i - 1])
}

fn slowlog_args(args: &[Bytes]) -> Vec<Bytes> {
    const MAX_ARGS: usize = 32;
    const MAX_LEN: usize = 128;
    let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(MAX_ARGS));
    for (i, a) in args.iter().enumerate() {
        if redacted(args, i) && !(i == MAX_ARGS - 1 && args.len() > MAX_ARGS) {
            kept.push(Bytes::from_static(b"(redacted)"));
            continue;
        }
        if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
            kept.push(Bytes::from(format!(
                "... ({} more arguments)",
                args.len() - MAX_ARGS + 1
            )));
            break;
        }
        if a.len() > MAX_LEN {
            let mut cut = a[..MAX_LEN].to_vec();
            cut.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_LEN).as_bytes());
            kept.push(Bytes::from(cut));
        } else {
            kept.push(a.clone());
        }
    }
    kept
}

fn record_slow(client: &Client, usec: u64, args: &[Bytes]) {
    use std::sync::atomic::Ordering;
    let threshold = client.node.slowlog_slower_than_us.load(Ordering::Relaxed);
    if threshold < 0 || usec < threshold as u64 {
        return;
    }
    let max_len = client.node.slowlog_max_len.load(Ordering::Relaxed);
    let args = slowlog_args(args);
    let id = client.node.next_slowlog_id.fetch_add(1, Ordering::Relaxed);
    let (peer, client_name) = {
        let info = client.info.borrow();
        (info.addr.clone(), info.name.clone())
    };
    client.shard.with_core(|core| {
        core.slowlog.push_back(shard::SlowlogEntry {
            id,
            unix_secs: unix_ms() / 1000,
            usec,
            args,
            peer,
            client_name,
        });
        while core.slowlog.len() > max_len {
            core.slowlog.pop_front();
        }
    });
}

fn count_error(client: &Client, reply: &Reply) {
    if let Some(code) = reply.error_code() {
        let code = String::from_utf8_lossy(code).into_owned();
        client.shard.with_core(|core| {
            core.stats.total_error_replies += 1;
            *core.stats.error_stats.entry(code).or_default() += 1;
        });
    }
}

/// What the checks before a command treat it as. For EXEC this includes
/// what the commands it queued are, as Redis keeps the union of their
/// flags: a transaction that writes is refused like a write.
struct CheckedFlags {
    /// Writes: refused by `-MISCONF`, `-NOREPLICAS` and `-READONLY`.
    write: bool,
    /// Writes or may replicate: held by a pause of writes.
    replicates: bool,
    /// Lacks `stale`: refused by `-MASTERDOWN`.
    deny_stale: bool,
    /// Lacks `loading`: refused by `-LOADING`.
    deny_loading: bool,
    /// May grow memory: refused by `-OOM` over `maxmemory`.
    deny_oom: bool,
}

fn checked_flags(client: &Client, spec: &CommandSpec, args: &[Bytes]) -> CheckedFlags {
    let flags = function::call_flags(spec, args);
    let (mut flags, mut missing) = (flags, !flags);
    if let (Run::Client(ClientCmd::Exec), Some(multi)) = (spec.run, client.multi.as_ref()) {
        flags |= multi.flags;
        missing |= multi.missing_flags;
    }
    CheckedFlags {
        write: flags & flag::WRITE != 0,
        replicates: flags & (flag::WRITE | flag::MAY_REPLICATE) != 0,
        deny_stale: missing & flag::STALE != 0,
        deny_loading: missing & flag::LOADING != 0,
        deny_oom: flags & flag::DENYOOM != 0,
    }
}

/// Whether this node is a replica that may not serve its data now: the
/// link with its master is down and `replica-serve-stale-data` is no
/// (commands without `stale` get MASTERDOWN, scripts' calls of them fail).
pub(crate) fn stale_replica(client: &Client) -> bool {
    let repl = &client.node.repl;
    repl.is_replica.load(std::sync::atomic::Ordering::Relaxed)
        && !repl.link().up
        && !client.node.config().bool_value("replica-serve-stale-data")
}

/// The checks Redis makes before running a command.
fn check(client: &Client, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Reply> {
    // Redis looks the subcommand up and checks the arity before anything
    // else, authentication included.
    if let Err(bad) = spec.check_shape(args) {
        return Err(Reply::Error(spec.shape_error(args, bad).into()));
    }
    if !client.authenticated
        && !spec.has(flag::NO_AUTH)
        && crate::acl::registry().default_needs_auth()
    {
        return Err(Reply::Error("NOAUTH Authentication required.".into()));
    }
    let context = if client.multi.is_some() {
        crate::acl::Context::Multi
    } else {
        crate::acl::Context::Toplevel
    };
    acl::check(client, spec, args, context)?;
    let flags = checked_flags(client, spec, args);
    // Our master's link never runs while we load; the AOF loader's client
    // (also `is_master`) runs exactly then.
    if flags.deny_loading
        && !client.is_master
        && client
            .node
            .loading
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(Reply::Error(
            "LOADING Redis is loading the dataset in memory".into(),
        ));
    }
    // Over `maxmemory`: evict first (Redis does it before every command);
    // if nothing can go, refuse what may grow memory, and anything but
    // EXEC/DISCARD/QUIT/RESET inside MULTI (queueing takes memory too).
    if !client.is_master
        && crate::evict::before_command(&client.node, &client.shard) == crate::evict::Outcome::Fail
    {
        let queueing = client.multi.is_some() && !tx::runs_in_multi(spec);
        if flags.deny_oom || queueing {
            return Err(Reply::Error(crate::evict::OOM_ERROR.into()));
        }
    }
    // A failed background save (when configured) or a failing AOF stops
    // writes (and PING), so an operator notices before data is lost
    // (Redis's writeCommandsDeniedByDiskError; the RDB error comes first).
    if !client.is_master && (flags.write || spec.name == "ping") {
        if !client
            .node
            .last_save_ok
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let cfg = client.node.config();
            if cfg.bool_value("stop-writes-on-bgsave-error") && !cfg.save_points().is_empty() {
                return Err(Reply::Error(
                    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error."
                        .into(),
                ));
            }
        }
        if let Some(errno) = client.node.aof.write_denied() {
            return Err(Reply::Error(
                format!(
                    "MISCONF Errors writing to the AOF file: {}",
                    crate::config::strerror(&std::io::Error::from_raw_os_error(errno))
                )
                .into(),
            ));
        }
    }
    let repl = &client.node.repl;
    // min-replicas-to-write: a master without enough good replicas refuses
    // writes.
    if flags.write && !client.is_master {
        let min = repl
            .min_replicas_to_write
            .load(std::sync::atomic::Ordering::Relaxed);
        if min > 0
            && !repl.is_replica.load(std::sync::atomic::Ordering::Relaxed)
            && repl
                .good_replicas
                .load(std::sync::atomic::Ordering::Relaxed)
                < min
        {
            return Err(Reply::Error(
                "NOREPLICAS Not enough good replicas to write.".into(),
            ));
        }
    }
    if !client.is_master && repl.is_replica.load(std::sync::atomic::Ordering::Relaxed) {
        if flags.write && client.node.config().bool_value("replica-read-only") {
            return Err(Reply::Error(
                "READONLY You can't write against a read only replica.".into(),
            ));
        }
        if flags.deny_stale && stale_replica(client) {
            return Err(Reply::Error(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                    .into(),
            ));
        }
    }
    // RESP2 subscribed mode: the connection carries pushes, few commands
    // may interleave with them.
    if client.proto == Protocol::Resp2
        && client.subs.is_some()
        && pubsub::subscribed(client)
        && !pubsub::allowed_while_subscribed(spec)
    {
        return Err(Reply::Error(
            format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.full_name(args)).into(),
        ));
    }
    // Key/value groups (MSET, MSETNX): an incomplete group is an arity
    // error, caught before any shard runs a part of the command.
    if spec.last_key < 0
        && spec.key_step > 1
        && (args.len() as i32 - spec.first_key) % spec.key_step != 0
    {
        return Err(wrong_arity(spec.name));
    }
    Ok(())
}

async fn execute(client: &mut Client, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    match spec.run {
        Run::Keyed(f, split) => run_keyed(client, spec, f, split, args).await,
        Run::Client(cmd) => run_client(client, cmd, args).await,
    }
}

async fn run_keyed(
    client: &mut Client,
    spec: &CommandSpec,
    f: table::KeyedFn,
    split: Split,
    args: &[Bytes],
) -> Reply {
    let db = client.db;
    let shards = client.shard.shards();
    let write = spec.propagates_changes();
    let obey = client.is_master;
    if let Some(target) = pipeline::single_target(client, spec, split, args) {
        // Fast path: the owning shard is this one and nobody holds it.
        if target == client.shard.id && !client.shard.is_busy() {
            return client
                .shard
                .with_core(|core| run_and_propagate(core, f, db, args, write, obey, unix_ms()));
        }
        let args = args.to_vec();
        return shard::run_on(target, move |core| {
            run_and_propagate(core, f, db, &args, write, obey, unix_ms())
        })
        .await;
    }
    if let Split::Coordinate(cmd) = split {
        return run_client(client, cmd, args).await;
    }
    run_split(client, spec, f, split, db, args, shards).await
}

/// Commands of a batch whose keys are prefetched together
/// (`Keyspace::prefetch_keys`) before they run.
pub(crate) const PREFETCH_CHUNK: usize = 16;

/// Runs a keyed handler on the shard that owns its keys and, when it
/// changed something, hands the write to [`crate::propagate`] in the same
/// step, so the stream's order is the execution order.
/// [`Ctx::notify`] for code that has a shard's core but no `Ctx`.
#[inline]
pub(crate) fn notify_on(core: &mut ShardCore, db: usize, class: u32, event: &str, key: &[u8]) {
    if crate::notify::wants(class) {
        core.ks.publish_notes();
        crate::notify::emit(class, event, key, db);
    }
}

pub(crate) fn run_and_propagate(
    core: &mut ShardCore,
    f: table::KeyedFn,
    db: usize,
    args: &[Bytes],
    write: bool,
    obey: bool,
    now_ms: u64,
) -> Reply {
    let mut ctx = Ctx::at(core, db, now_ms);
    ctx.obey = obey;
    let reply = f(&mut ctx, args).unwrap_or_else(Reply::from);
    // Per command, not per job: a pipeline batch runs several commands in
    // one job, and one's change must not commit another's lookups.
    let changed = ctx.changes > 0;
    ctx.db().settle_touches(changed);
    if write && ctx.changes > 0 && ctx.core.propagating() {
        let rewrite = ctx.rewrite.take();
        crate::propagate::write(ctx.core, db, args, rewrite.as_deref());
    }
    reply
}

/// Runs a multi-key command whose keys span shards: holds every involved
/// shard, runs the handler on each with its own keys, merges the replies.
async fn run_split(
    client: &Client,
    spec: &CommandSpec,
    f: table::KeyedFn,
    split: Split,
    db: usize,
    args: &[Bytes],
    shards: usize,
) -> Reply {
    let step = spec.key_step.max(1) as usize;
    let positions: Vec<usize> = spec.key_positions(args.len()).collect();
    // Per shard: the sub-command's arguments and the original key indexes.
    let mut parts: Vec<(usize, Vec<Bytes>, Vec<usize>)> = Vec::new();
    for (key_index, &p) in positions.iter().enumerate() {
        let s = shard::route::shard_of(&args[p], shards);
        let part = match parts.iter_mut().position(|(ps, _, _)| *ps == s) {
            Some(i) => &mut parts[i],
            None => {
                let mut head = args[..positions[0]].to_vec();
                head.truncate(positions[0]);
                parts.push((s, head, Vec::new()));
                parts.last_mut().expect("just pushed")
            }
        };
        part.1
            .extend_from_slice(&args[p..(p + step).min(args.len())]);
        part.2.push(key_index);
    }
    // Each shard runs its part in the message that acquires it.
    parts.sort_unstable_by_key(|p| p.0);
    let shard_ids: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let part_args: std::sync::Arc<Vec<(usize, Vec<Bytes>)>> =
        std::sync::Arc::new(parts.iter().map(|(s, a, _)| (*s, a.clone())).collect());
    let (guard, results) = shard::hold_and_run(&shard_ids, move |core| {
        match part_args.iter().find(|(s, _)| *s == core.id) {
            Some((_, args)) => {
                let mut ctx = Ctx::new(core, db);
                let reply = f(&mut ctx, args).unwrap_or_else(Reply::from);
                (reply, ctx.changes)
            }
            // Every held shard has a part; this would be a routing bug.
            None => (
                Reply::Error("ERR internal error: no part for this shard".into()),
                0,
            ),
        }
    })
    .await;
    // The whole command enters the stream once, while every involved shard
    // is still held, so no later write to its keys can precede it.
    if spec.propagates_changes() && results.iter().any(|(_, changes)| *changes > 0) {
        propagate(client, db, args);
    }
    drop(guard);
    let replies: Vec<Reply> = results.into_iter().map(|(r, _)| r).collect();
    if let Some(err) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
        return err.clone();
    }
    match split {
        Split::SumInts => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
        // Coordinated commands never get here (see `run_keyed`).
        Split::AllOk | Split::None | Split::Coordinate(_) => Reply::Ok,
        Split::Gather => {
            let mut out = vec![Reply::Nil; positions.len()];
            for ((_, _, idx), reply) in parts.iter().zip(replies) {
                if let Reply::Array(items) = reply {
                    for (i, item) in idx.iter().zip(items) {
                        out[*i] = item;
                    }
                }
            }
            Reply::Array(out)
        }
    }
}

async fn run_client(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> Reply {
    use ClientCmd::*;
    let result = match cmd {
        Ping | Echo | Quit | Reset | Auth | Hello | Select | Client => {
            connection::run(client, cmd, args).await
        }
        Dbsize | Flushdb | Flushall | Swapdb | Keys | Scan | Randomkey | Rename | Renamenx
        | Copy | Move | Msetnx => keys::run_client(client, cmd, args).await,
        Config | Info | Command | Time | Shutdown | Debug | Memory | Monitor | Slowlog
        | Lastsave | Save | Bgsave | Bgrewriteaof => server::run(client, cmd, args).await,
        Replicaof | Replconf | Psync | Role | Wait | Failover => repl::run(client, cmd, args).await,
        Multi | Exec | Discard | Watch | Unwatch => tx::run(client, cmd, args).await,
        Subscribe | Unsubscribe | Psubscribe | Punsubscribe | Publish | Pubsub | Ssubscribe
        | Sunsubscribe | Spublish => pubsub::run(client, cmd, args).await,
        Smove | Sinter | Sinterstore | Sunion | Sunionstore | Sdiff | Sdiffstore | Sintercard => {
            setops::run_client(client, cmd, args).await
        }
        Zrangestore | Zstore | Zsetop | Zintercard | Zmpop => {
            zsetops::run_client(client, cmd, args).await
        }
        Lmove | Lmpop => listops::run_client(client, cmd, args).await,
        Pfcount | Pfmerge => hll::run_client(client, cmd, args).await,
        Bitop => bitmap::run_client(client, args).await,
        Xread => stream::xread(client, args).await,
        Xreadgroup => xreadgroup::xreadgroup(client, args).await,
        GeoStore => geosearch::run_across(client, args).await,
        Eval => eval::eval(client, args).await,
        Script => eval::script(client, args).await,
        Fcall => function::fcall(client, args).await,
        Function => function::function(client, args).await,
        Lcs => lcs::run_client(client, args).await,
        Acl => acl::run(client, args).await,
        Latency => latency::run(client, args).await,
        Sort => sort::run(client, args).await,
        Blocking => blocking::run(client, args).await,
    };
    result.unwrap_or_else(Reply::from)
}

/// Propagates a command that a client-level handler ran (it must still
/// hold the shards it changed), through this connection's shard.
pub fn propagate(client: &Client, db: usize, args: &[Bytes]) {
    client
        .shard
        .with_core(|core| crate::propagate::command(core, db, args));
}

/// Parses a database index argument as SELECT/MOVE/SWAPDB do.
pub fn db_index(client: &Client, arg: &[u8]) -> Result<usize, CmdError> {
    let n = args::int_arg(arg)?;
    let dbs = client.node.config().databases() as i64;
    if n < 0 || n >= dbs {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(n as usize)
}
