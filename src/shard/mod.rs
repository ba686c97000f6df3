//! Thread-per-core shards: the glommio executors, which shard owns a key,
//! and how work reaches the shard that owns the data.
//!
//! # What lives here
//! - [`route`]: key → shard (Redis Cluster hash slots, hash tags honoured).
//! - [`Shard`]: one executor's state ([`ShardCore`]: its slice of every
//!   database, its counters, its clients) plus the hold that makes
//!   multi-shard commands atomic.
//! - [`Mesh`]: one [`inbox::Inbox`] per shard; any shard can send a job to
//!   any other.
//! - [`run_on`] and [`hold`]: the two ways a command reaches data.
//! - [`blocked`]: clients blocked on keys; a shard serves them after a job
//!   that gave their key data, unless a multi-shard operation holds it (then
//!   when the hold ends, so the stream shows that operation first).
//! - [`runtime`]: starting the executors (pinning, io_uring memory sizing).
//! - [`oneshot`] and [`latch`]: one value, or one "it has ended", waited
//!   for across threads; [`gate`]: a lock tasks on any shard wait for.
//!
//! # Atomicity across shards
//! A shard's data is touched only by its own thread, so a command on one
//! shard is atomic for free. A command spanning shards first *holds* each of
//! them, in ascending shard order (so two such commands can never deadlock),
//! runs its parts, then releases them. While a shard is held, every other
//! job for it waits in a queue, and local connections wait too, so nobody
//! can observe half of an MSET or a RENAME.
//!
//! # Nested work under a hold
//! A transaction (EXEC) holds its shards for the whole run and then runs
//! ordinary commands, which themselves call [`run_on`], [`hold`],
//! [`gather`]... Those would wait for the EXEC's own hold. [`scoped`] runs a
//! future with a *task scope*: while that task is polled, the functions of
//! this module treat the shards its guard holds as free for it (jobs go in
//! `Held` mode, nested holds re-use the outer one). The scope lives in a
//! thread-local set and restored around each poll of that one task, so
//! other tasks of the executor never see it. Outside a scope the cost is
//! one thread-local read per cross-shard call.
//!
//! This module knows nothing of commands or sockets: jobs are closures over
//! [`ShardCore`]. It must not import `cmd`, `net` or `server`.

pub mod blocked;
pub mod core;
pub mod gate;
pub mod inbox;
pub mod latch;
pub mod latency;
pub mod oneshot;
pub mod route;
pub mod runtime;

pub use self::core::{ClientInfo, ShardCore, ShardStats, SlowlogEntry};
use inbox::Inbox;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Work sent to a shard: runs on its thread with its data borrowed, so it
/// must neither block nor spawn tasks (a spawned task may be polled at once
/// and find the data borrowed); use [`Mesh::call_on`] to start tasks.
pub type Job = Box<dyn FnOnce(&mut ShardCore) + Send>;

/// How long a shard held by another shard's operation spins for that
/// operation's next message before parking its executor. (Spinning on the
/// operation's side instead, while it waits for a part's answer, was
/// measured worse: it keeps its own executor from running what the other
/// shards wait for.)
const HOLD_SPIN: Duration = Duration::from_micros(30);

/// Identifies one multi-shard operation while it holds shards.
pub type TxnId = u64;

/// How a job relates to the shard's hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HoldMode {
    /// Run when the shard is not held.
    Free,
    /// Wait until the shard is free, take the hold for `TxnId`, then run.
    Acquire(TxnId),
    /// The sender already holds the shard.
    Held(TxnId),
    /// Run at once, held or not: the job touches nothing a hold protects
    /// (a load's staging databases, which no client sees).
    Aside,
}

enum Msg {
    Run {
        job: Job,
        mode: HoldMode,
        /// The client the job acts for (see [`on_behalf_of`]); 0: none.
        origin: u64,
    },
    Release(TxnId),
    /// Runs on the shard's thread without touching its data (e.g. to spawn
    /// a task there): the core is not borrowed while it runs, because a
    /// task spawned from it may be polled at once.
    Call(Box<dyn FnOnce() + Send>),
}

/// The inboxes of all shards of this process.
pub struct Mesh {
    inboxes: Vec<Inbox<Msg>>,
    next_txn: AtomicU64,
}

impl Mesh {
    pub fn new(shards: usize) -> Arc<Mesh> {
        Arc::new(Mesh {
            inboxes: (0..shards.max(1)).map(|_| Inbox::default()).collect(),
            next_txn: AtomicU64::new(1),
        })
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Runs `f` on a shard's thread, outside any borrow of its data (fire
    /// and forget, e.g. from the signal thread to start a task there).
    pub fn call_on(&self, shard: usize, f: Box<dyn FnOnce() + Send>) {
        self.inboxes[shard].push(Msg::Call(f));
    }

    /// Queues a job on `shard` from any thread, without waiting for it.
    /// It runs at once when its turn in the inbox comes, even while a
    /// multi-shard operation holds the shard, so it must touch only what
    /// no hold protects: a load's staging ([`crate::keyspace::staging`]).
    /// Jobs posted from one thread run in posting order, and before any
    /// job that the poster's later actions cause to be sent (a
    /// [`barrier`] after them sees them done).
    pub fn post_aside(&self, shard: usize, job: Job) {
        self.inboxes[shard].push(Msg::Run {
            job,
            mode: HoldMode::Aside,
            origin: 0,
        });
    }
}

/// Something waiting for the shard's hold to end, in arrival order.
enum Waiter {
    /// A job from another shard (plain, or one that takes the hold), and
    /// the client it acts for.
    Job(Job, HoldMode, u64),
    /// A local task that wants to take the hold for `TxnId`; on its turn
    /// the hold is handed to it directly, then it is woken.
    Acquire(TxnId, Rc<RefCell<WaitSlot>>),
    /// A local task that only needs the shard to be free.
    Free(Rc<RefCell<WaitSlot>>),
}

/// How a waiting local task is told its turn has come.
#[derive(Default)]
struct WaitSlot {
    waker: Option<Waker>,
    /// Set by the releaser when it takes the entry off the queue.
    served: bool,
}

impl WaitSlot {
    fn serve(slot: &RefCell<WaitSlot>) {
        let waker = {
            let mut s = slot.borrow_mut();
            s.served = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Who holds this shard and who waits for it.
///
/// One FIFO for local tasks and jobs from other shards alike: a hold goes
/// to whoever asked first, so neither side can starve the other.
#[derive(Default)]
struct HoldState {
    holder: Option<TxnId>,
    /// The holder is another shard's operation (it acquired by message).
    remote: bool,
    waiting: VecDeque<Waiter>,
}

/// One executor's shard. Lives in a thread-local: see [`current`].
pub struct Shard {
    pub id: usize,
    pub mesh: Arc<Mesh>,
    pub core: RefCell<ShardCore>,
    hold: RefCell<HoldState>,
    /// Client writes of this shard's connections past the pause gate and
    /// not finished yet (see [`writes_drained`]).
    pub writes_in_flight: std::cell::Cell<u64>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Shard>>> = const { RefCell::new(None) };
    /// The hold of the task being polled, if it runs under [`scoped`].
    static SCOPE: RefCell<Option<Rc<Scope>>> = const { RefCell::new(None) };
    /// The client the task being polled acts for (see [`on_behalf_of`]).
    static ACTING: RefCell<u64> = const { RefCell::new(0) };
}

/// Polls `fut` with the thread-local `slot` holding `value`, and restores
/// the slot's previous value after each poll (even one that unwinds): a
/// value that belongs to one task, which no other task of the executor
/// ever sees. [`scoped`] and [`on_behalf_of`] are built on it.
async fn with_task_local<T: Clone + 'static, F: std::future::Future>(
    slot: &'static std::thread::LocalKey<RefCell<T>>,
    value: T,
    fut: F,
) -> F::Output {
    struct Restore<T: 'static>(&'static std::thread::LocalKey<RefCell<T>>, Option<T>);
    impl<T> Drop for Restore<T> {
        fn drop(&mut self) {
            if let Some(prev) = self.1.take() {
                self.0.with(|s| *s.borrow_mut() = prev);
            }
        }
    }
    let mut fut = std::pin::pin!(fut);
    poll_fn(move |cx| {
        let prev = slot.with(|s| s.replace(value.clone()));
        let _restore = Restore(slot, Some(prev));
        fut.as_mut().poll(cx)
    })
    .await
}

/// Runs `fut` (a client connection's task) on behalf of client `client`:
/// every job it runs, on this shard or sent to another, carries the
/// client's id into [`ShardCore::job_origin`], whatever helper sends it (a
/// command's own job, a hold's parts, a gather...). Tracking's NOLOOP
/// depends on it: a client's own change of a key must not come back to it
/// as an invalidation, from any shard.
pub async fn on_behalf_of<F: std::future::Future>(client: u64, fut: F) -> F::Output {
    with_task_local(&ACTING, client, fut).await
}

/// The client the current task acts for; 0 outside [`on_behalf_of`].
fn acting_client() -> u64 {
    ACTING.with(|a| *a.borrow())
}

/// What a task running under [`scoped`] holds.
struct Scope {
    txn: TxnId,
    held: Vec<usize>,
}

/// The hold the current task has on `shard`, if it runs under a scope that
/// holds it.
fn scoped_txn(shard: usize) -> Option<TxnId> {
    SCOPE.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|sc| sc.held.contains(&shard))
            .map(|sc| sc.txn)
    })
}

/// The current task's scope transaction, whatever shards it holds.
fn scope_txn() -> Option<TxnId> {
    SCOPE.with(|s| s.borrow().as_ref().map(|sc| sc.txn))
}

/// How a job for `shard` sent by the current task must run.
fn mode_for(shard: usize) -> HoldMode {
    scoped_txn(shard).map_or(HoldMode::Free, HoldMode::Held)
}

/// Runs `fut` as part of the operation that holds `guard`: commands it runs
/// reach the held shards through the hold instead of waiting for it to end
/// (see "Nested work under a hold" above).
pub async fn scoped<F: std::future::Future>(guard: &HoldGuard, fut: F) -> F::Output {
    let scope = Rc::new(Scope {
        txn: guard.txn,
        held: guard.all.clone(),
    });
    with_task_local(&SCOPE, Some(scope), fut).await
}

/// The shard of the calling executor thread.
///
/// # Panics
/// When called outside a shard executor (a programming error).
pub fn current() -> Rc<Shard> {
    CURRENT.with(|c| c.borrow().clone().expect("not on a shard executor"))
}

/// Installs this thread's shard and starts the task draining its inbox.
/// Called once per executor by [`runtime`].
pub fn install(id: usize, mesh: Arc<Mesh>, core: ShardCore) -> Rc<Shard> {
    let shard = Rc::new(Shard {
        id,
        mesh,
        core: RefCell::new(core),
        hold: RefCell::new(HoldState::default()),
        writes_in_flight: std::cell::Cell::new(0),
    });
    CURRENT.with(|c| *c.borrow_mut() = Some(shard.clone()));
    let inbox_shard = shard.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = inbox_shard.mesh.inboxes[inbox_shard.id].recv().await;
            inbox_shard.handle(msg);
            // Drain what else is queued without re-parking each time.
            while let Some(msg) = inbox_shard.mesh.inboxes[inbox_shard.id].try_pop() {
                inbox_shard.handle(msg);
            }
            inbox_shard.spin_while_held_remotely();
        }
    })
    .detach();
    shard
}

impl Shard {
    pub fn shards(&self) -> usize {
        self.mesh.shards()
    }

    /// Every shard's inbox, for threads that post work (see
    /// [`Mesh::post_aside`]).
    pub fn mesh(&self) -> Arc<Mesh> {
        self.mesh.clone()
    }

    pub fn shard_of(&self, key: &[u8]) -> usize {
        route::shard_of(key, self.shards())
    }

    /// Whether a local task not part of `txn` must wait before touching data.
    pub fn is_held_against(&self, txn: Option<TxnId>) -> bool {
        match self.hold.borrow().holder {
            None => false,
            Some(h) => Some(h) != txn,
        }
    }

    /// Whether the current task must wait before touching this shard's
    /// data: another operation holds it (a hold of the task's own
    /// [`scoped`] operation does not count).
    pub fn is_busy(&self) -> bool {
        match self.hold.borrow().holder {
            None => false,
            Some(h) => Some(h) != scoped_txn(self.id),
        }
    }

    /// Waits until no other operation holds this shard.
    pub async fn wait_free(&self) {
        if !self.is_busy() {
            return;
        }
        let slot = Rc::new(RefCell::new(WaitSlot::default()));
        self.hold
            .borrow_mut()
            .waiting
            .push_back(Waiter::Free(slot.clone()));
        poll_fn(|cx| {
            let mut s = slot.borrow_mut();
            if s.served {
                if !self.is_busy() {
                    return Poll::Ready(());
                }
                // Someone took the hold between our turn and our run:
                // queue again.
                s.served = false;
                self.hold
                    .borrow_mut()
                    .waiting
                    .push_back(Waiter::Free(slot.clone()));
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Runs `f` on this shard's data right now. The caller must have
    /// checked the hold ([`Shard::is_held_against`]).
    pub fn with_core<R>(&self, f: impl FnOnce(&mut ShardCore) -> R) -> R {
        let mut core = self.core.borrow_mut();
        core.before_job(acting_client());
        let r = f(&mut core);
        core.after_job();
        self.serve_blocked(&mut core);
        r
    }

    /// Serves clients blocked on keys that got data, unless the shard is
    /// held (the holder's release does it). One test when nobody blocks.
    #[inline]
    fn serve_blocked(&self, core: &mut ShardCore) {
        if !core.blocked.is_empty() && self.hold.borrow().holder.is_none() {
            core.before_job(0);
            (core.on_ready)(core);
            core.after_job();
        }
    }

    /// While another shard's operation holds this one, nothing that
    /// touches its data can run before that operation's next message (a
    /// part to run, or the release), which usually comes within a few
    /// microseconds: wait for it spinning for up to [`HOLD_SPIN`] instead of
    /// parking the executor, whose sleep and wake-up (ring flushes, a
    /// membarrier, an eventfd write by the sender) would otherwise add to
    /// every multi-shard command's hold.
    fn spin_while_held_remotely(&self) {
        let inbox = &self.mesh.inboxes[self.id];
        let mut since = Instant::now();
        while self.hold.borrow().remote && since.elapsed() < HOLD_SPIN {
            match inbox.try_pop() {
                Some(msg) => {
                    self.handle(msg);
                    since = Instant::now();
                }
                None => std::hint::spin_loop(),
            }
        }
    }

    fn handle(&self, msg: Msg) {
        match msg {
            Msg::Run { job, mode, origin } => self.run_or_queue(job, mode, origin),
            Msg::Release(txn) => self.release_local(txn),
            Msg::Call(f) => f(),
        }
    }

    fn run_or_queue(&self, job: Job, mode: HoldMode, origin: u64) {
        if mode == HoldMode::Aside {
            // No client state changes: no touches to settle, nobody to
            // serve.
            job(&mut self.core.borrow_mut());
            return;
        }
        let runnable = {
            let mut hold = self.hold.borrow_mut();
            match (mode, hold.holder) {
                (HoldMode::Free, None) => true,
                (HoldMode::Held(t), Some(h)) if t == h => true,
                (HoldMode::Acquire(t), None) => {
                    hold.holder = Some(t);
                    hold.remote = true;
                    true
                }
                _ => false,
            }
        };
        if runnable {
            let mut core = self.core.borrow_mut();
            core.before_job(origin);
            job(&mut core);
            core.after_job();
            self.serve_blocked(&mut core);
        } else {
            self.hold
                .borrow_mut()
                .waiting
                .push_back(Waiter::Job(job, mode, origin));
        }
    }

    /// Ends `txn`'s hold and serves the waiters in arrival order until one
    /// of them takes the hold again.
    fn release_local(&self, txn: TxnId) {
        {
            let mut hold = self.hold.borrow_mut();
            if hold.holder != Some(txn) {
                return;
            }
            hold.holder = None;
            hold.remote = false;
        }
        if let Ok(mut core) = self.core.try_borrow_mut() {
            self.serve_blocked(&mut core);
        }
        loop {
            let next = {
                let mut hold = self.hold.borrow_mut();
                if hold.holder.is_some() {
                    return;
                }
                match hold.waiting.pop_front() {
                    None => return,
                    Some(w) => w,
                }
            };
            match next {
                Waiter::Job(job, mode, origin) => self.run_or_queue(job, mode, origin),
                Waiter::Acquire(t, slot) => {
                    self.hold.borrow_mut().holder = Some(t);
                    WaitSlot::serve(&slot);
                }
                Waiter::Free(slot) => WaitSlot::serve(&slot),
            }
        }
    }

    async fn acquire_local(&self, txn: TxnId) {
        {
            let mut hold = self.hold.borrow_mut();
            match hold.holder {
                None => {
                    hold.holder = Some(txn);
                    return;
                }
                Some(h) if h == txn => return,
                Some(_) => {}
            }
        }
        let slot = Rc::new(RefCell::new(WaitSlot::default()));
        self.hold
            .borrow_mut()
            .waiting
            .push_back(Waiter::Acquire(txn, slot.clone()));
        poll_fn(|cx| {
            // The releaser hands the hold over before serving us.
            if slot.borrow().served {
                return Poll::Ready(());
            }
            slot.borrow_mut().waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn send(&self, target: usize, job: Job, mode: HoldMode) {
        let origin = acting_client();
        self.mesh.inboxes[target].push(Msg::Run { job, mode, origin });
    }
}

/// Runs `f` on the shard `target` once no multi-shard operation holds it,
/// and returns its result. Local work runs inline without allocating.
/// Resolves once no client write that may have passed its checks before
/// this call is still running, on any shard. A role change (becoming a
/// replica) sets its flag first and then waits here: writes checked before
/// the flag have finished, every later one sees it.
pub async fn writes_drained() {
    loop {
        let busy: u64 = gather(|_| current().writes_in_flight.get())
            .await
            .into_iter()
            .sum();
        if busy == 0 {
            return;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

pub async fn run_on<R, F>(target: usize, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&mut ShardCore) -> R + Send + 'static,
{
    let shard = current();
    if target == shard.id {
        shard.wait_free().await;
        return shard.with_core(f);
    }
    remote(&shard, target, f, mode_for(target)).await
}

/// Sends `f` to shard `target` (another shard) now and returns a future of
/// its result: jobs started on several shards before any is awaited run in
/// parallel (a connection's pipeline batches, see `cmd::pipeline`).
pub fn start_on<R, F>(target: usize, f: F) -> impl std::future::Future<Output = R>
where
    R: Send + 'static,
    F: FnOnce(&mut ShardCore) -> R + Send + 'static,
{
    let shard = current();
    let (tx, rx) = oneshot::channel();
    shard.send(target, reply_after_job(f, tx), mode_for(target));
    async move {
        match rx.await {
            Ok(r) => r,
            // As in `remote`: a job is only dropped unrun at exit.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Queues `f` on shard `target` (this one included) without waiting for
/// it: jobs posted to one shard run in posting order, after the jobs and
/// holds queued before them. For streams whose replies nobody reads (a
/// replica applying its master's commands).
pub fn post<F>(target: usize, f: F)
where
    F: FnOnce(&mut ShardCore) + Send + 'static,
{
    current().send(target, Box::new(f), mode_for(target));
}

/// Resolves once every job posted to `target` before it has run.
pub async fn barrier(target: usize) {
    let shard = current();
    remote(&shard, target, |_| (), mode_for(target)).await
}

/// Waits, with [`barrier`], for every shard flagged in `posted` (clearing
/// the flags): the jobs posted to them before have all run.
pub async fn barrier_posted(posted: &mut [bool]) {
    for (s, p) in posted.iter_mut().enumerate() {
        if std::mem::take(p) {
            barrier(s).await;
        }
    }
}

/// The job that runs `f` on another shard and sends its result back. The
/// job's after-work ([`ShardCore::after_job`]: tracking invalidations,
/// keyspace notifications, expired keys' `DEL`s) runs before the result
/// leaves, as a local command's does before its reply: otherwise the
/// caller could answer its client, and answer that client's next command,
/// before an invalidation of a key the client itself changed was pushed
/// (Redis sends it right after the write's reply). The runner's own
/// `after_job` then returns at once.
fn reply_after_job<R, F>(f: F, tx: oneshot::Sender<R>) -> Job
where
    R: Send + 'static,
    F: FnOnce(&mut ShardCore) -> R + Send + 'static,
{
    Box::new(move |core| {
        let r = f(core);
        core.after_job();
        tx.send(r);
    })
}

async fn remote<R, F>(shard: &Shard, target: usize, f: F, mode: HoldMode) -> R
where
    R: Send + 'static,
    F: FnOnce(&mut ShardCore) -> R + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    shard.send(target, reply_after_job(f, tx), mode);
    match rx.await {
        Ok(r) => r,
        // Jobs are never dropped unrun while the process lives; if the
        // target is gone the process is exiting.
        Err(_) => std::future::pending().await,
    }
}

/// Holds every shard in `shards` (any order, duplicates allowed) for one
/// multi-shard operation. Acquired in ascending order; released on drop.
/// Under [`scoped`], shards the scope holds are re-used, not acquired.
pub async fn hold(shards: &[usize]) -> HoldGuard {
    let shard = current();
    let (mut guard, set) = new_guard(&shard, shards);
    for s in set {
        if scoped_txn(s).is_none() {
            if s == shard.id {
                shard.acquire_local(guard.txn).await;
            } else {
                remote(&shard, s, |_| (), HoldMode::Acquire(guard.txn)).await;
            }
            guard.held.push(s);
        }
        guard.all.push(s);
    }
    guard
}

/// A guard for `shards` (sorted, deduplicated: the second value) that holds
/// nothing yet; inside a scope it shares the scope's transaction.
fn new_guard(shard: &Rc<Shard>, shards: &[usize]) -> (HoldGuard, Vec<usize>) {
    let mut set: Vec<usize> = shards.to_vec();
    set.sort_unstable();
    set.dedup();
    let txn = scope_txn().unwrap_or_else(|| shard.mesh.next_txn.fetch_add(1, Ordering::Relaxed));
    let guard = HoldGuard {
        shard: shard.clone(),
        txn,
        held: Vec::with_capacity(set.len()),
        all: Vec::with_capacity(set.len()),
    };
    (guard, set)
}

/// Holds every shard in `shards` (ascending order) and runs `f` on each as
/// soon as it is acquired, in the same message: one round trip per remote
/// shard instead of two. Parts run while every earlier shard is still held,
/// and nothing is released before the guard drops, so the whole operation
/// stays atomic. Results come back in ascending shard order.
pub async fn hold_and_run<R, F>(shards: &[usize], f: F) -> (HoldGuard, Vec<R>)
where
    R: Send + 'static,
    F: Fn(&mut ShardCore) -> R + Send + Clone + 'static,
{
    let shard = current();
    let (mut guard, set) = new_guard(&shard, shards);
    let mut results = Vec::with_capacity(set.len());
    for s in set {
        let already = scoped_txn(s).is_some();
        if s == shard.id {
            if !already {
                shard.acquire_local(guard.txn).await;
            }
            results.push(shard.with_core(&f));
        } else {
            let mode = if already {
                HoldMode::Held(guard.txn)
            } else {
                HoldMode::Acquire(guard.txn)
            };
            results.push(remote(&shard, s, f.clone(), mode).await);
        }
        if !already {
            guard.held.push(s);
        }
        guard.all.push(s);
    }
    (guard, results)
}

/// Holds every shard of the process (FLUSHALL, DBSIZE, KEYS, SWAPDB...).
pub async fn hold_all() -> HoldGuard {
    let all: Vec<usize> = (0..current().shards()).collect();
    hold(&all).await
}

/// Proof that a set of shards is held by one operation.
pub struct HoldGuard {
    shard: Rc<Shard>,
    txn: TxnId,
    /// Shards this guard acquired and releases on drop.
    held: Vec<usize>,
    /// Every shard it covers: `held` plus those an enclosing [`scoped`]
    /// operation already held.
    all: Vec<usize>,
}

impl HoldGuard {
    pub fn shards(&self) -> &[usize] {
        &self.all
    }

    /// Runs `f` on a held shard.
    pub async fn run<R, F>(&self, target: usize, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&mut ShardCore) -> R + Send + 'static,
    {
        debug_assert!(self.all.contains(&target), "shard {target} not held");
        if target == self.shard.id {
            return self.shard.with_core(f);
        }
        remote(&self.shard, target, f, HoldMode::Held(self.txn)).await
    }

    /// Runs `f` on every held shard (concurrently) and returns the results in
    /// shard order.
    pub async fn run_each<R, F>(&self, f: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(&mut ShardCore) -> R + Send + Clone + 'static,
    {
        // Send to all remote shards first, then run locally, then collect:
        // the shards work in parallel.
        let mut receivers = Vec::with_capacity(self.all.len());
        for &s in &self.all {
            if s == self.shard.id {
                receivers.push(None);
            } else {
                let (tx, rx) = oneshot::channel();
                let f = f.clone();
                self.shard.send(
                    s,
                    Box::new(move |core| tx.send(f(core))),
                    HoldMode::Held(self.txn),
                );
                receivers.push(Some(rx));
            }
        }
        let mut local = None;
        if self.all.contains(&self.shard.id) {
            local = Some(self.shard.with_core(&f));
        }
        let mut out = Vec::with_capacity(self.all.len());
        for rx in receivers {
            match rx {
                None => out.push(local.take().expect("local result")),
                Some(rx) => match rx.await {
                    Ok(r) => out.push(r),
                    Err(_) => std::future::pending::<()>().await,
                },
            }
        }
        out
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        for &s in &self.held {
            if s == self.shard.id {
                self.shard.release_local(self.txn);
            } else {
                self.shard.mesh.inboxes[s].push(Msg::Release(self.txn));
            }
        }
    }
}

/// Runs `f` on every shard (without holding them: for statistics and other
/// reads that need no cross-shard atomicity) and returns results in shard
/// order.
pub async fn gather<R, F>(f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(&mut ShardCore) -> R + Send + Clone + 'static,
{
    let shard = current();
    let mut receivers = Vec::new();
    for s in 0..shard.shards() {
        if s != shard.id {
            let (tx, rx) = oneshot::channel();
            let f = f.clone();
            shard.send(s, Box::new(move |core| tx.send(f(core))), mode_for(s));
            receivers.push((s, rx));
        }
    }
    shard.wait_free().await;
    let mut local = Some(shard.with_core(&f));
    let mut out = Vec::with_capacity(shard.shards());
    let mut rxs = receivers.into_iter();
    for s in 0..shard.shards() {
        if s == shard.id {
            out.push(local.take().expect("local result"));
        } else {
            let (_, rx) = rxs.next().expect("receiver per shard");
            match rx.await {
                Ok(r) => out.push(r),
                Err(_) => std::future::pending::<()>().await,
            }
        }
    }
    out
}
