//! Running the commands of one pipeline read with one cross-shard message
//! per shard instead of one per command.
//!
//! A connection decodes every complete command of a read and offers each
//! one to a [`Batch`]. A plain keyed command (all its keys on one shard,
//! not blocking, the client not in MULTI, subscribed or monitoring) is
//! checked at once and queued for its shard. Anything else is refused: the
//! connection then [`Batch::finish`]es the batch and runs the command alone
//! through [`super::dispatch`], so client-level commands (SELECT, AUTH,
//! CLIENT REPLY, WAIT, MULTI...) see every earlier command done.
//!
//! `finish` sends each other shard its queued commands in one job (all
//! shards at once), runs this shard's own while they work, then does what
//! [`super::call`] does after a command (statistics, slow log, MONITOR,
//! error counts, the offset WAIT waits for), in request order, and hands
//! back the replies in request order.
//!
//! Ordering, as DESIGN §1 asks: replies keep request order; the commands
//! one shard runs keep request order, so every key sees this client's
//! commands in the order they were sent; commands of one read that run on
//! different shards may run in any order relative to each other (they
//! touch different keys). Each command's time is measured where it runs,
//! for the slow log and `INFO commandstats`.
//!
//! Owns only the batch; depends on the command table, `shard` and the
//! helpers of its parent module.

use super::table::{self, flag, CommandSpec, Run, Split};
use super::{
    check, count_call, count_error, feed_monitors, record_slow, run_and_propagate, Client,
    InFlight, PREFETCH_CHUNK,
};
use crate::node::unix_ms_at;
use crate::resp::Reply;
use crate::shard::{self, ShardCore};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Commands held per batch before it is finished anyway: bounds the time a
/// remote shard spends on one job and the replies held here.
pub const MAX_HELD: usize = 512;

/// One command queued for its shard's job.
struct Queued {
    f: table::KeyedFn,
    args: Vec<Bytes>,
    write: bool,
    /// Its place in `Batch::entries`.
    slot: usize,
}

/// One offered command, in request order.
struct Entry {
    spec: &'static CommandSpec,
    /// Empty while its shard's job holds them.
    args: Vec<Bytes>,
    /// `None` while its shard has not answered.
    reply: Option<Reply>,
    took: Duration,
    /// Rejected by the checks: counted as such, not as a call.
    rejected: bool,
}

#[derive(Default)]
pub struct Batch {
    entries: Vec<Entry>,
    /// Per shard: the commands queued for it, in request order.
    queued: Vec<Vec<Queued>>,
    /// Held while a queued write may still run (see [`InFlight`]).
    in_flight: Option<InFlight>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the batch should be finished before more is offered.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= MAX_HELD
    }

    /// Takes `args` into the batch, or gives them back when the command
    /// must run alone (after [`Batch::finish`]).
    pub fn offer(&mut self, client: &mut Client, args: Vec<Bytes>) -> Result<(), Vec<Bytes>> {
        let Some(spec) = table::table().lookup(&args[0]) else {
            return Err(args);
        };
        let Run::Keyed(f, split) = spec.run else {
            return Err(args);
        };
        if spec.has(flag::BLOCKING)
            || client.multi.is_some()
            || client.subs.is_some()
            || client.monitor.is_some()
            || client.is_master
            || client.node.pause_until_ms.load(Ordering::Relaxed) != 0
            || client.node.shutdown.writes_paused.load(Ordering::Relaxed)
            || client.node.failover_writes_paused.load(Ordering::Relaxed)
        {
            return Err(args);
        }
        let write = spec.propagates_changes();
        if let Err(reply) = check(client, spec, &args) {
            super::count_rejected(client, spec, &args);
            count_error(client, &reply);
            self.entries.push(Entry {
                spec,
                args,
                reply: Some(reply),
                took: Duration::ZERO,
                rejected: true,
            });
            return Ok(());
        }
        let Some(target) = single_target(client, spec, split, &args) else {
            return Err(args);
        };
        if target == client.shard.id && client.shard.is_busy() {
            return Err(args);
        }
        if write && self.in_flight.is_none() {
            self.in_flight = Some(InFlight::enter(&client.shard));
        }
        let slot = self.entries.len();
        if self.queued.len() <= target {
            self.queued.resize_with(target + 1, Vec::new);
        }
        // The arguments travel with the job and come back with its reply
        // (for the slow log and MONITOR), without a copy.
        self.queued[target].push(Queued {
            f,
            args,
            write,
            slot,
        });
        self.entries.push(Entry {
            spec,
            args: Vec::new(),
            reply: None,
            took: Duration::ZERO,
            rejected: false,
        });
        Ok(())
    }

    /// Files a job's answers into the entries they belong to.
    fn settle(&mut self, answers: Answers) {
        for (slot, reply, took, args) in answers {
            let e = &mut self.entries[slot];
            e.reply = Some(reply);
            e.took = took;
            e.args = args;
        }
    }

    /// Runs what is queued (one job per shard, all shards at once), does
    /// each command's bookkeeping in request order and returns the replies
    /// in request order. The batch is empty afterwards.
    pub async fn finish(&mut self, client: &mut Client) -> Vec<Reply> {
        let db = client.db;
        let me = client.shard.id;
        let mut pending = Vec::new();
        for (target, cmds) in self.queued.iter_mut().enumerate() {
            if cmds.is_empty() || target == me {
                continue;
            }
            let cmds = std::mem::take(cmds);
            let answer =
                shard::start_on(target, move |core: &mut ShardCore| run_job(core, db, cmds));
            pending.push(answer);
        }
        // This shard's commands run while the other shards run theirs.
        if let Some(cmds) = self.queued.get_mut(me).filter(|c| !c.is_empty()) {
            let cmds = std::mem::take(cmds);
            let answers = client.shard.with_core(|core| run_job(core, db, cmds));
            self.settle(answers);
        }
        for answer in pending {
            self.settle(answer.await);
        }
        let wrote = self.in_flight.take().is_some();
        if wrote {
            // appendfsync always: the replies wait for these writes to be
            // durable (the AOF feed's end now covers all of them).
            super::note_aof_write(client);
            if let Some(head) = client
                .shard
                .with_core(|core| core.backlog.as_ref().map(|b| b.head()))
            {
                client.last_write_offset = head;
            }
        }
        let monitors = client.node.monitor_count.load(Ordering::Relaxed) > 0;
        let mut replies = Vec::with_capacity(self.entries.len());
        let mut last_cmd = None;
        for e in self.entries.drain(..) {
            let reply = e.reply.unwrap_or(Reply::Nil);
            if !e.rejected {
                after_call(client, e.spec, &e.args, &reply, e.took, monitors);
                last_cmd = Some(e.spec.name);
            }
            replies.push(reply);
        }
        if let Some(name) = last_cmd {
            let mut info = client.info.borrow_mut();
            info.last_cmd = name;
            info.db = client.db;
        }
        replies
    }
}

/// A job's answers: each command's place in the batch, reply, time and
/// arguments.
type Answers = Vec<(usize, Reply, Duration, Vec<Bytes>)>;

/// Runs one shard's queued commands back to back, in request order, their
/// keys prefetched a chunk at a time. The clock is read once per command:
/// one command's end is the next one's start, and each command's wall-clock
/// `now` (fixed while it runs, as in Redis) is the job's first wall-clock
/// reading advanced by the monotonic time since, so a deep pipeline does
/// not pay three clock reads per command.
fn run_job(core: &mut ShardCore, db: usize, mut cmds: Vec<Queued>) -> Answers {
    let mut answers = Vec::with_capacity(cmds.len());
    let job_start = Instant::now();
    let job_ms = unix_ms_at(job_start);
    let mut started = job_start;
    for chunk in cmds.chunks_mut(PREFETCH_CHUNK) {
        let keys = chunk.iter().filter_map(|c| c.args.get(1));
        core.ks.prefetch_keys(db, keys.map(|k| &k[..]));
        for c in chunk {
            let args = std::mem::take(&mut c.args);
            let now_ms = job_ms + (started - job_start).as_millis() as u64;
            let reply = run_and_propagate(core, c.f, db, &args, c.write, false, now_ms);
            let ended = Instant::now();
            answers.push((c.slot, reply, ended - started, args));
            started = ended;
        }
    }
    answers
}

/// The shard that runs `args` whole, when every key is on one shard (or the
/// command needs no splitting); `None` for a command that spans shards.
pub(crate) fn single_target(
    client: &Client,
    spec: &CommandSpec,
    split: Split,
    args: &[Bytes],
) -> Option<usize> {
    let shards = client.shard.shards();
    let mut positions = spec.routing_positions(args);
    let target = match positions.next() {
        Some(p) => shard::route::shard_of(&args[p], shards),
        None => client.shard.id,
    };
    let single = shards == 1
        || split == Split::None
        || positions.all(|p| shard::route::shard_of(&args[p], shards) == target);
    single.then_some(target)
}

/// What [`super::call`] does after running a command, for one that ran in
/// a batch.
fn after_call(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    reply: &Reply,
    took: Duration,
    monitors: bool,
) {
    if !spec.has(flag::SKIP_SLOWLOG) {
        record_slow(client, took.as_micros() as u64, args);
    }
    if monitors && !spec.has(flag::SKIP_MONITOR | flag::ADMIN) {
        feed_monitors(client, args);
    }
    count_call(client, spec, args, reply, took);
}
