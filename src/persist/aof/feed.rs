//! The AOF feed: executed writes, encoded, waiting for the AOF writer
//! thread; and the durable watermark clients wait on under
//! `appendfsync always`.
//!
//! # Why a buffer of its own and not a cursor into the backlog ring
//! The ring is built to lose: it has a fixed size, a slow replica is
//! overrun and resyncs, it is dropped when replicas are gone
//! (`repl-backlog-ttl`) and replaced on a replica's full sync, and on a
//! replica it carries the master's `PING`s and `REPLCONF GETACK`s. The
//! AOF may lose nothing: a cursor into the ring would need a floor that
//! blocks every producer on the disk (and an append larger than the ring
//! could never pass it), plus filtering and a hand-over whenever the ring
//! is replaced. So [`crate::propagate`], the one place writes become
//! stream bytes, encodes a write once and copies it both into the ring
//! and here, as Redis's `propagateNow` feeds `aof_buf` and the backlog
//! side by side. Producers take one mutex for a memcpy; the writer swaps
//! the whole buffer out in one step (Redis's `aof_buf` grows without bound
//! too while the disk is slow).
//!
//! # Offsets
//! The feed counts every byte ever appended (`end`), independently of the
//! replication offset: a client under `appendfsync always` remembers the
//! feed's end after its write and gets its reply once [`Durable`] has
//! reached it. One fsync covers everything appended before it (group
//! commit).
//!
//! Depends on nothing but `std` and `repl::encode_command`; never touches
//! files (that is [`super::writer`]).

use super::Fsync;
use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The stream is in no known database: the next command gets a SELECT.
const NO_DB: u32 = u32::MAX;

/// A switch to a new incr file, requested at a snapshot cut.
pub struct Switch {
    /// Feed offset from which bytes go to `file`.
    pub at: u64,
    pub file: File,
    pub name: String,
}

#[derive(Default)]
struct Inner {
    buf: Vec<u8>,
    /// Feed offset just past the last byte appended.
    end: u64,
    /// Database the last appended command ran in (`NO_DB`: unknown).
    db: u32,
    /// Appends are dropped until the first switch gives the writer a file
    /// (turning the AOF on: nothing before the base's cut may enter).
    armed: bool,
    switch: Option<Switch>,
    /// The writer sleeps on the condvar.
    writer_asleep: bool,
    /// Stop once everything is written.
    stop: bool,
    /// Unix second of the last `#TS:` annotation written.
    last_ts: u64,
    /// When `buf` last went from empty to not empty (how long the writer
    /// kept bytes waiting: `aof_delayed_fsync`).
    since: Option<Instant>,
}

/// What the writer got from one [`Feed::take`].
pub struct Taken {
    /// Feed offset of the first byte handed over.
    pub start: u64,
    pub switch: Option<Switch>,
    pub stop: bool,
    /// When the oldest byte handed over was appended (`None`: nothing).
    pub since: Option<Instant>,
}

/// See the module documentation.
pub struct Feed {
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Mirror of `Inner::end` for lock-free reads by clients.
    end: AtomicU64,
    /// `aof-timestamp-enabled`: a `#TS:<unix secs>` line precedes the
    /// first command of every second, as Redis writes it.
    timestamps: AtomicBool,
}

impl Feed {
    pub fn new(armed: bool) -> Feed {
        Feed {
            inner: Mutex::new(Inner {
                db: NO_DB,
                armed,
                ..Inner::default()
            }),
            wake: Condvar::new(),
            end: AtomicU64::new(0),
            timestamps: AtomicBool::new(false),
        }
    }

    pub fn set_timestamps(&self, on: bool) {
        self.timestamps.store(on, SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feed offset just past the last appended byte.
    pub fn end(&self) -> u64 {
        self.end.load(SeqCst)
    }

    /// Appends one encoded command that ran in `db`, after a `SELECT` when
    /// the stream was in another database.
    pub fn append_command(&self, db: u32, cmd: &[u8]) {
        self.append_unit(db, db, cmd);
    }

    /// Appends encoded commands that start in `first_db` and leave the
    /// stream in `last_db` (a MULTI/EXEC unit carries its own SELECTs).
    pub fn append_unit(&self, first_db: u32, last_db: u32, bytes: &[u8]) {
        let mut g = self.lock();
        if !g.armed {
            return;
        }
        let before = g.buf.len();
        self.annotate(&mut g);
        if g.db != first_db {
            let db = first_db.to_string();
            crate::repl::encode_command(&[&b"SELECT"[..], db.as_bytes()], &mut g.buf);
        }
        g.buf.extend_from_slice(bytes);
        g.db = last_db;
        self.publish(g, before);
    }

    /// Bytes that already carry their database context.
    pub fn append_raw(&self, bytes: &[u8], db_after: u32) {
        let mut g = self.lock();
        if !g.armed {
            return;
        }
        let before = g.buf.len();
        self.annotate(&mut g);
        g.buf.extend_from_slice(bytes);
        g.db = db_after;
        self.publish(g, before);
    }

    fn annotate(&self, g: &mut Inner) {
        if !self.timestamps.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let now = crate::node::unix_ms() / 1000;
        if now != g.last_ts {
            g.last_ts = now;
            g.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
        }
    }

    fn publish(&self, mut g: MutexGuard<'_, Inner>, before: usize) {
        if before == 0 && !g.buf.is_empty() {
            g.since = Some(Instant::now());
        }
        g.end += (g.buf.len() - before) as u64;
        self.end.store(g.end, SeqCst);
        let wake = std::mem::take(&mut g.writer_asleep);
        drop(g);
        if wake {
            self.wake.notify_one();
        }
    }

    /// At a snapshot cut (every shard held, so no write runs): bytes from
    /// now on go to `file`, starting with a SELECT. Arms the feed.
    pub fn switch_to(&self, file: File, name: String) -> u64 {
        let mut g = self.lock();
        g.armed = true;
        g.db = NO_DB;
        let at = g.end;
        g.switch = Some(Switch { at, file, name });
        g.writer_asleep = false;
        drop(g);
        self.wake.notify_one();
        at
    }

    /// Asks the writer to finish: write what is pending, fsync, exit.
    pub fn stop(&self) {
        let mut g = self.lock();
        g.stop = true;
        g.armed = false;
        drop(g);
        self.wake.notify_one();
    }

    /// Writer side: moves pending bytes to the end of `out` (waiting up to
    /// `wait` when there are none and nothing else to do). With `gather`,
    /// once bytes are there it lets producers add to them that long first
    /// (a bigger group per fsync under `always`). With `pace`, it first
    /// waits that long whatever is pending, without asking producers to
    /// wake it (a switch or a stop still does).
    pub fn take(
        &self,
        out: &mut Vec<u8>,
        wait: Duration,
        gather: Duration,
        pace: Option<Duration>,
    ) -> Taken {
        let mut g = self.lock();
        if let Some(pace) = pace {
            if g.switch.is_none() && !g.stop {
                g = self
                    .wake
                    .wait_timeout(g, pace)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        } else if g.buf.is_empty() && g.switch.is_none() && !g.stop && !wait.is_zero() {
            g.writer_asleep = true;
            g = self
                .wake
                .wait_timeout(g, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            g.writer_asleep = false;
        }
        if !gather.is_zero() && !g.buf.is_empty() && g.switch.is_none() && !g.stop {
            drop(g);
            std::thread::sleep(gather);
            g = self.lock();
        }
        let start = g.end - g.buf.len() as u64;
        if out.is_empty() {
            std::mem::swap(out, &mut g.buf);
        } else {
            out.extend_from_slice(&g.buf);
            g.buf.clear();
        }
        Taken {
            start,
            switch: g.switch.take(),
            stop: g.stop,
            since: g.since.take(),
        }
    }

    /// Bytes waiting for the writer (`aof_buffer_length`).
    pub fn pending(&self) -> usize {
        self.lock().buf.len()
    }
}

/// The offset of the feed known to be on disk (fsynced under `always`,
/// written otherwise), and the clients waiting for it.
pub struct Durable {
    pos: AtomicU64,
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// Mirror of `waiters.len()`: the writer takes the lock only when
    /// somebody waits.
    sleepers: AtomicUsize,
    /// `appendfsync` in force (see [`Fsync`]).
    policy: AtomicU8,
    /// The AOF was turned off: every wait ends.
    closed: AtomicBool,
}

impl Durable {
    pub fn new(policy: Fsync) -> Durable {
        Durable {
            pos: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
            sleepers: AtomicUsize::new(0),
            policy: AtomicU8::new(policy as u8),
            closed: AtomicBool::new(false),
        }
    }

    pub fn policy(&self) -> Fsync {
        Fsync::from_u8(self.policy.load(SeqCst))
    }

    pub fn set_policy(&self, p: Fsync) {
        self.policy.store(p as u8, SeqCst);
    }

    pub fn get(&self) -> u64 {
        self.pos.load(SeqCst)
    }

    /// Clients waiting for the next fsync.
    pub fn waiting(&self) -> usize {
        self.sleepers.load(SeqCst)
    }

    /// Writer side: everything below `pos` is durable.
    pub fn advance(&self, pos: u64) {
        self.pos.fetch_max(pos, SeqCst);
        if self.sleepers.load(SeqCst) != 0 {
            self.wake();
        }
    }

    pub fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake();
    }

    fn ready(&self, pos: u64) -> bool {
        self.closed.load(SeqCst) || self.pos.load(SeqCst) >= pos
    }

    fn wake(&self) {
        let woken: Vec<Waker> = {
            let mut list = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            let mut i = 0;
            while i < list.len() {
                if self.ready(list[i].0) {
                    out.push(list.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
            self.sleepers.store(list.len(), SeqCst);
            out
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Resolves once the feed is durable up to `pos` (or the AOF is off).
    pub fn wait_for(&self, pos: u64) -> impl Future<Output = ()> + '_ {
        WaitDurable {
            durable: self,
            pos,
            registered: false,
        }
    }
}

struct WaitDurable<'a> {
    durable: &'a Durable,
    pos: u64,
    registered: bool,
}

impl Future for WaitDurable<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let d = this.durable;
        if d.ready(this.pos) {
            return Poll::Ready(());
        }
        {
            let mut list = d.waiters.lock().unwrap_or_else(|e| e.into_inner());
            // A spurious re-poll registers again; the stale entry is woken
            // and dropped by the writer (waking a finished task is a no-op).
            list.push((this.pos, cx.waker().clone()));
            d.sleepers.store(list.len(), SeqCst);
        }
        this.registered = true;
        // Re-check after registering (SeqCst store above, SeqCst loads in
        // `ready`), pairing with the writer's SeqCst advance then load of
        // `sleepers`: no lost wake-up.
        if d.ready(this.pos) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
