//! Applying a replication stream (our master's, or an AOF being loaded):
//! commands whose reply nobody reads, in stream order, as fast as the
//! shards can run them.
//!
//! [`StreamApply`] owns the commands decoded but not yet handed to their
//! shard and the set of shards that still have work in flight. A keyed
//! command whose keys all live on one shard is queued for that shard and
//! posted with its neighbours as one job ([`BATCH`] commands at most):
//! each shard's inbox keeps the stream's order, and a shard that would
//! otherwise be woken once per command (a wake and a park per 4 KB SET
//! from the master, measured at half the apply rate of a single shard) is
//! woken once per batch. Everything else (client-level and multi-shard
//! commands, transactions) waits for the queued and posted work first,
//! then goes through [`super::dispatch`].
//!
//! Callers call [`StreamApply::barrier`] before they report an offset as
//! applied (an ACK, a cut, the end of a load). A command of the stream
//! that fails (one we do not know, a wrong type: the stream and our data
//! disagree) is logged as Redis logs it, `== CRITICAL == This replica is
//! sending an error to its master: ...`, since nobody reads its reply.
//! Depends on `shard` and the command table; knows nothing of sockets or
//! files.

use super::table::{self, KeyedFn, Run};
use super::{dispatch, run_and_propagate, Client, PREFETCH_CHUNK};
use crate::node::unix_ms;
use crate::resp::Reply;
use crate::shard::{self, route};
use bytes::Bytes;

/// Most commands posted to one shard as one job.
const BATCH: usize = 64;

/// A keyed command waiting to be posted to its shard.
struct Queued {
    run: KeyedFn,
    id: usize,
    db: usize,
    args: Vec<Bytes>,
}

/// Where the stream comes from, for the log line of a failed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Our master's replication stream.
    Master,
    /// An append-only file being loaded.
    Aof,
}

impl Source {
    /// Redis's words for who answers whom: (this, its peer).
    fn parties(self) -> (&'static str, &'static str) {
        match self {
            Source::Master => ("replica", "master"),
            Source::Aof => ("server", "AOF-loading-client"),
        }
    }
}

/// Logs a failed command of the stream, as Redis does for errors sent
/// to a master or an AOF-loading client (the text cut at 4096 bytes).
fn report_error(source: Source, reply: &Reply, command: &[u8]) {
    let Reply::Error(text) = reply else {
        return;
    };
    let (this, peer) = source.parties();
    let text = &text[..text.len().min(4096)];
    tracing::warn!(
        "== CRITICAL == This {this} is sending an error to its {peer}: '{}' after processing the command '{}'",
        String::from_utf8_lossy(text),
        String::from_utf8_lossy(command).to_ascii_lowercase(),
    );
}

/// See the module doc.
pub struct StreamApply {
    source: Source,
    /// Per shard: commands not posted yet, in stream order.
    queued: Vec<Vec<Queued>>,
    /// Per shard: jobs posted since the last barrier.
    posted: Vec<bool>,
}

impl StreamApply {
    pub fn new(shards: usize, source: Source) -> StreamApply {
        StreamApply {
            source,
            queued: (0..shards).map(|_| Vec::new()).collect(),
            posted: vec![false; shards],
        }
    }

    /// Applies one command (its reply is discarded). Inside a MULTI from
    /// the stream, commands are queued like a client's and the EXEC
    /// applies them atomically (see [`super::tx`]).
    pub async fn apply(&mut self, client: &mut Client, args: Vec<Bytes>) {
        let spec = match client.multi {
            None => table::table().lookup(&args[0]),
            Some(_) => None,
        };
        if let Some(spec) = spec {
            if let (Run::Keyed(run, _), true) = (spec.run, spec.arity_ok(args.len())) {
                let shards = client.shard.shards();
                let (target, single) = {
                    let mut positions = spec.routing_positions(&args);
                    let target = match positions.next() {
                        Some(p) => route::shard_of(&args[p], shards),
                        None => client.shard.id,
                    };
                    let single = positions.all(|p| route::shard_of(&args[p], shards) == target);
                    (target, single)
                };
                if single {
                    self.queue(
                        target,
                        Queued {
                            run,
                            id: spec.stat_id(&args),
                            db: client.db,
                            args,
                        },
                    );
                    return;
                }
            }
        }
        // Client-level and multi-shard commands run behind what came before.
        self.barrier().await;
        let name = args[0].clone();
        let reply = dispatch(client, args).await;
        report_error(self.source, &reply, &name);
    }

    fn queue(&mut self, target: usize, cmd: Queued) {
        let batch = &mut self.queued[target];
        batch.push(cmd);
        if batch.len() >= BATCH {
            self.post(target);
        }
    }

    /// Posts `target`'s queued commands as one job.
    fn post(&mut self, target: usize) {
        let batch = std::mem::take(&mut self.queued[target]);
        if batch.is_empty() {
            return;
        }
        self.posted[target] = true;
        let source = self.source;
        shard::post(target, move |core| {
            // One clock reading for the job, as a client's pipeline job.
            let now_ms = unix_ms();
            for chunk in batch.chunks(PREFETCH_CHUNK) {
                // Commands of another database than the first's (after a
                // SELECT in the stream) go without.
                let db = chunk[0].db;
                let keys = chunk.iter().filter(|c| c.db == db);
                core.ks
                    .prefetch_keys(db, keys.filter_map(|c| c.args.get(1)).map(|k| &k[..]));
                for cmd in chunk {
                    let reply =
                        run_and_propagate(core, cmd.run, cmd.db, &cmd.args, false, true, now_ms);
                    report_error(source, &reply, &cmd.args[0]);
                    core.stats.commands_processed += 1;
                    core.stats.command(cmd.id).calls += 1;
                }
            }
        });
    }

    /// Posts everything queued, without waiting for it to run: what was
    /// decoded becomes visible on its shard as soon as that shard runs.
    pub fn flush(&mut self) {
        for target in 0..self.queued.len() {
            self.post(target);
        }
    }

    /// Posts everything queued and waits until it has run on every shard.
    pub async fn barrier(&mut self) {
        self.flush();
        shard::barrier_posted(&mut self.posted).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_wait_in_their_shards_queue_below_a_batch() {
        // Posting needs a running shard; here only the queue bookkeeping
        // below the batch size is checked.
        let mut apply = StreamApply::new(2, Source::Master);
        let set = match table::table().lookup(b"set").map(|s| s.run) {
            Some(Run::Keyed(f, _)) => f,
            _ => panic!("SET is a keyed command"),
        };
        for i in 0..BATCH - 1 {
            apply.queue(
                1,
                Queued {
                    run: set,
                    id: 0,
                    db: 0,
                    args: vec![Bytes::from_static(b"set"), Bytes::from(format!("k{i}"))],
                },
            );
        }
        assert_eq!(apply.queued[1].len(), BATCH - 1);
        assert!(apply.queued[0].is_empty());
        assert!(!apply.posted[1]);
    }
}
