//! Clients blocked on keys (BLPOP, BZPOPMIN, XREAD and friends): the shared
//! [`Waiter`] and each shard's [`Registry`] of who waits on which of its
//! keys.
//!
//! A blocked command registers one `Waiter` (shared through an `Arc`) on
//! the shard of each of its keys, in arrival order per key. A write that
//! gives a watched key a list or a sorted set marks it ready in its `Db`;
//! a waiter is served only by the type it waits for ([`BlockOp::awaits`]:
//! a sorted set never wakes a BLPOP, as in Redis 7.0), so one key's queue
//! may hold waiters of both kinds and each kind is served in its own
//! arrival order. After the job,
//! the shard (not held by a multi-shard operation) calls its `on_ready`
//! hook, which serves the first waiters there, in the same step: the
//! element goes straight to them. A waiter registered on several shards is
//! served once: whoever [`Waiter::claim`]s it first (a serving shard, the
//! client's timeout, CLIENT UNBLOCK) owns the outcome; the others drop it.
//!
//! A BLMOVE to a key of another shard cannot be finished by the serving
//! shard alone: the shard [`Waiter::reserve`]s the key's data for it and
//! nudges its client, which moves the element under a hold of both shards.
//! Until that waiter leaves the queue (served) or gives the reservation
//! back (the element went elsewhere), no later waiter of its kind is
//! served from that key, so cross-shard moves keep their arrival order.
//!
//! This module keeps only the data (who waits, what for, the outcome
//! slot); popping and replying is the command layer's (`cmd::blocking`).
//! It must not import `cmd` or `net`.

use crate::keyspace::{End, Keyspace, StreamId, Value};
use crate::resp::Reply;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// What a blocked command does once a key has data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// BLPOP / BRPOP (`count: None`) and BLMPOP (`Some(count)`).
    Pop { end: End, count: Option<usize> },
    /// BLMOVE / BRPOPLPUSH: pop from the ready key, push to `dest`.
    Move {
        dest: Bytes,
        dest_shard: usize,
        from: End,
        to: End,
        rpoplpush: bool,
    },
    /// BZPOPMIN / BZPOPMAX (`count: None`) and BZMPOP (`Some(count)`):
    /// pop the lowest (`max` false) or highest scores of a sorted set.
    ZPop { max: bool, count: Option<usize> },
    /// XREAD BLOCK: the entries after each key's ID (at most `count`, 0:
    /// all). Reads take nothing, so every waiter a new entry is for gets
    /// served, not only the first.
    XRead {
        after: Vec<(Bytes, StreamId)>,
        count: usize,
    },
    /// XREADGROUP BLOCK with `>`: the group's new entries for `consumer`
    /// (at most `count`, 0: all). Each entry goes to one reader of the
    /// group; a reader whose group or stream goes away gets an error.
    XReadGroup {
        group: Bytes,
        consumer: Bytes,
        count: usize,
        noack: bool,
    },
}

/// The type of value a blocked command waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaits {
    List,
    Zset,
    Stream,
}

impl BlockOp {
    pub fn awaits(&self) -> Awaits {
        match self {
            BlockOp::Pop { .. } | BlockOp::Move { .. } => Awaits::List,
            BlockOp::ZPop { .. } => Awaits::Zset,
            BlockOp::XRead { .. } | BlockOp::XReadGroup { .. } => Awaits::Stream,
        }
    }

    /// Whether this command can be served from `key` holding `holds`
    /// (always, for the pops: the value is checked by [`served_by`]). An
    /// XREAD is served once the stream's last ID passed the one it waits
    /// after, an XREADGROUP once it passed its group's last delivered ID
    /// or the group is gone (it then answers NOGROUP), as in Redis.
    pub fn ready_for(&self, key: &[u8], holds: Option<&Holds>) -> bool {
        let stream = match holds {
            Some(Holds::Stream { last_id, groups }) => Some((*last_id, groups)),
            _ => None,
        };
        match self {
            BlockOp::XRead { after, .. } => after
                .iter()
                .find(|(k, _)| &k[..] == key)
                .is_some_and(|(_, id)| stream.is_some_and(|(last, _)| last > *id)),
            BlockOp::XReadGroup { group, .. } => stream.is_some_and(|(last, groups)| match groups
                .iter()
                .find(|(name, _)| name == group)
            {
                Some((_, delivered)) => last > *delivered,
                None => true,
            }),
            _ => true,
        }
    }
}

/// What a blocked-on key holds, as far as choosing whom it serves needs:
/// a stream's last ID and its groups' last delivered IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holds {
    Stream {
        last_id: StreamId,
        groups: Vec<(Bytes, StreamId)>,
    },
    Other,
}

impl Holds {
    pub fn of(v: &Value) -> Holds {
        match v {
            Value::Stream(s) => Holds::Stream {
                last_id: s.last_id,
                groups: s
                    .groups
                    .iter()
                    .map(|(name, g)| (name.clone(), g.last_id))
                    .collect(),
            },
            _ => Holds::Other,
        }
    }
}

/// Which waiters `v` can serve: a non-empty list serves the list
/// commands, a non-empty sorted set the sorted set ones, nothing else
/// anyone.
pub fn served_by(v: &Value) -> Option<Awaits> {
    match v {
        Value::List(l) if !l.is_empty() => Some(Awaits::List),
        Value::Zset(z) if !z.is_empty() => Some(Awaits::Zset),
        // Whether it has entries for a reader depends on its ID.
        Value::Stream(_) => Some(Awaits::Stream),
        _ => None,
    }
}

/// How a wait ended (or why the client must look again).
#[derive(Debug)]
pub enum Wake {
    /// A shard served the command: its reply.
    Served(Reply),
    /// A key has data but the command cannot be served on that shard alone
    /// (BLMOVE to a key of another shard): the client runs it itself.
    Retry,
    /// CLIENT UNBLOCK: as a timeout, or with the UNBLOCKED error.
    Unblocked { error: bool },
}

#[derive(Default)]
struct Slot {
    wake: Option<Wake>,
    waker: Option<Waker>,
}

/// One blocked command, shared by the shards of its keys.
pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    pub op: BlockOp,
    /// Set by whoever decided the outcome (see [`Waiter::claim`]).
    claimed: AtomicBool,
    /// The key's data waits for this waiter's client to move it to another
    /// shard: it keeps its place (even claimed) and later waiters of its
    /// kind wait behind it (see [`Waiter::reserve`]).
    reserved: AtomicBool,
    slot: Mutex<Slot>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("client_id", &self.client_id)
            .field("db", &self.db)
            .field("op", &self.op)
            .field("claimed", &self.is_claimed())
            .finish()
    }
}

impl Waiter {
    pub fn new(client_id: u64, db: usize, op: BlockOp) -> Arc<Waiter> {
        Arc::new(Waiter {
            client_id,
            db,
            op,
            claimed: AtomicBool::new(false),
            reserved: AtomicBool::new(false),
            slot: Mutex::new(Slot::default()),
        })
    }

    /// Takes the right to decide the outcome; true for exactly one caller.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// The serving shard leaves the key's data to this waiter's client
    /// (a move to another shard; followed by [`Waiter::nudge`]).
    pub fn reserve(&self) {
        self.reserved.store(true, Ordering::Release);
    }

    pub fn is_reserved(&self) -> bool {
        self.reserved.load(Ordering::Acquire)
    }

    /// The client found nothing to move after all (another client's
    /// non-blocking pop took it): back to waiting, in the same place.
    pub fn unreserve(&self) {
        self.reserved.store(false, Ordering::Release);
        self.claimed.store(false, Ordering::Release);
    }

    /// Still in line: not decided, or decided by a client that is moving
    /// the data reserved for it.
    fn in_line(&self) -> bool {
        !self.is_claimed() || self.is_reserved()
    }

    fn put(&self, wake: Wake, replace: bool) {
        let waker = {
            let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if s.wake.is_some() && !replace {
                return;
            }
            s.wake = Some(wake);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Hands the outcome to the client (the caller has claimed the waiter).
    pub fn finish(&self, wake: Wake) {
        self.put(wake, true);
    }

    /// Asks the client to retry by itself (it stays unclaimed).
    pub fn nudge(&self) {
        if !self.is_claimed() {
            self.put(Wake::Retry, false);
        }
    }

    /// Waits for an outcome or a nudge (one waiting task: the client).
    pub async fn wait(&self) -> Wake {
        poll_fn(|cx| {
            let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            match s.wake.take() {
                Some(w) => Poll::Ready(w),
                None => {
                    s.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// One shard's waiters per (database, key), each queue in arrival order.
/// The databases know which keys have waiters (so a write creating such a
/// key marks it ready); this keeps them in step.
#[derive(Default, Debug)]
pub struct Registry {
    queues: HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>,
}

impl Registry {
    /// Whether anyone waits on this shard: the only test the hot path pays.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Queues `w` on `key` of database `db`.
    pub fn register(&mut self, ks: &mut Keyspace, db: usize, key: &Bytes, w: Arc<Waiter>) {
        let q = self
            .queues
            .entry((db, Bytes::copy_from_slice(key)))
            .or_default();
        if q.is_empty() {
            if let Some(d) = ks.db_mut(db) {
                d.block_key(key);
            }
        }
        q.push_back(w);
    }

    /// The first live waiter on `key` that `wants`, dropping claimed ones
    /// on the way (and the key's queue once nobody is left). A reserved
    /// waiter counts as live: the caller then waits for its client.
    pub fn first_where(
        &mut self,
        ks: &mut Keyspace,
        db: usize,
        key: &Bytes,
        wants: impl Fn(&Waiter) -> bool,
    ) -> Option<Arc<Waiter>> {
        let k = (db, key.clone());
        let q = self.queues.get_mut(&k)?;
        while q.front().is_some_and(|w| !w.in_line()) {
            q.pop_front();
        }
        if q.is_empty() {
            self.queues.remove(&k);
            if let Some(d) = ks.db_mut(db) {
                d.unblock_key(key);
            }
            return None;
        }
        q.iter().find(|w| w.in_line() && wants(w)).cloned()
    }

    /// Removes `w` from the queues of `keys` (a served, timed out or
    /// abandoned wait).
    pub fn remove(&mut self, ks: &mut Keyspace, db: usize, keys: &[Bytes], w: &Arc<Waiter>) {
        for key in keys {
            let k = (db, key.clone());
            let Some(q) = self.queues.get_mut(&k) else {
                continue;
            };
            q.retain(|x| !Arc::ptr_eq(x, w) && x.in_line());
            if q.is_empty() {
                self.queues.remove(&k);
                if let Some(d) = ks.db_mut(db) {
                    d.unblock_key(key);
                }
            }
        }
    }

    /// Whether `key` has live waiters.
    pub fn has_waiters(&self, db: usize, key: &Bytes) -> bool {
        self.queues
            .get(&(db, key.clone()))
            .is_some_and(|q| q.iter().any(|w| w.in_line()))
    }

    /// Waiters registered here (INFO, tests).
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zpop() -> BlockOp {
        BlockOp::ZPop {
            max: false,
            count: None,
        }
    }

    fn lpop() -> BlockOp {
        BlockOp::Pop {
            end: End::Left,
            count: None,
        }
    }

    #[test]
    fn each_kind_is_served_in_its_own_arrival_order() {
        let mut ks = Keyspace::new(1);
        let mut reg = Registry::default();
        let key = Bytes::from_static(b"k");
        let (l1, z1, l2, z2) = (
            Waiter::new(1, 0, lpop()),
            Waiter::new(2, 0, zpop()),
            Waiter::new(3, 0, lpop()),
            Waiter::new(4, 0, zpop()),
        );
        for w in [&l1, &z1, &l2, &z2] {
            reg.register(&mut ks, 0, &key, w.clone());
        }
        let first = |reg: &mut Registry, ks: &mut Keyspace, kind: Awaits| {
            reg.first_where(ks, 0, &key, |w| w.op.awaits() == kind)
                .map(|w| w.client_id)
        };
        assert_eq!(first(&mut reg, &mut ks, Awaits::Zset), Some(2));
        assert_eq!(first(&mut reg, &mut ks, Awaits::List), Some(1));
        // Claimed waiters (served, timed out) are skipped, wherever they are.
        assert!(z1.claim());
        assert_eq!(first(&mut reg, &mut ks, Awaits::Zset), Some(4));
        assert!(l1.claim());
        assert!(z2.claim());
        assert_eq!(first(&mut reg, &mut ks, Awaits::Zset), None);
        assert_eq!(first(&mut reg, &mut ks, Awaits::List), Some(3));
        assert!(l2.claim());
        assert_eq!(first(&mut reg, &mut ks, Awaits::List), None);
        assert!(reg.is_empty());
    }

    #[test]
    fn a_reserved_waiter_keeps_its_place_while_claimed() {
        let mut ks = Keyspace::new(1);
        let mut reg = Registry::default();
        let key = Bytes::from_static(b"k");
        let mv = BlockOp::Move {
            dest: Bytes::from_static(b"d"),
            dest_shard: 1,
            from: End::Left,
            to: End::Left,
            rpoplpush: false,
        };
        let (m, l) = (Waiter::new(1, 0, mv), Waiter::new(2, 0, lpop()));
        reg.register(&mut ks, 0, &key, m.clone());
        reg.register(&mut ks, 0, &key, l.clone());
        m.reserve();
        assert!(m.claim());
        // Its client is moving: it stays first, and another waiter leaving
        // does not drop it.
        let first = reg.first_where(&mut ks, 0, &key, |_| true);
        assert_eq!(first.map(|w| w.client_id), Some(1));
        let other = Waiter::new(3, 0, lpop());
        reg.register(&mut ks, 0, &key, other.clone());
        reg.remove(&mut ks, 0, std::slice::from_ref(&key), &other);
        assert!(reg.has_waiters(0, &key));
        assert_eq!(reg.len(), 2);
        // Nothing to move after all: it waits again, in the same place.
        m.unreserve();
        assert!(!m.is_claimed());
        let first = reg.first_where(&mut ks, 0, &key, |_| true);
        assert_eq!(first.map(|w| w.client_id), Some(1));
        // Served: it leaves, and the next one is first.
        reg.remove(&mut ks, 0, std::slice::from_ref(&key), &m);
        let first = reg.first_where(&mut ks, 0, &key, |_| true);
        assert_eq!(first.map(|w| w.client_id), Some(2));
    }

    #[test]
    fn values_serve_the_waiters_of_their_type_only() {
        let lim = crate::keyspace::Limits::default();
        let mut z = crate::keyspace::ZsetValue::new();
        assert_eq!(served_by(&Value::Zset(z.clone())), None);
        z.insert(b"m", 1.0, &lim);
        assert_eq!(served_by(&Value::Zset(z)), Some(Awaits::Zset));
        assert_eq!(lpop().awaits(), Awaits::List);
        assert_eq!(zpop().awaits(), Awaits::Zset);
    }
}
