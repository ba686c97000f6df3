//! The replication backlog ring.
//!
//! # What it owns
//! One fixed-capacity byte ring (a single allocation of `capacity` bytes, a power of two) holding the
//! tail of the replication stream: already-encoded RESP write commands, appended by every shard thread
//! (the *producers*, one slot id each) and addressed by a global `u64` stream position that counts bytes
//! (Redis's replication offset). It also owns the stream's "current database", so that `SELECT` is
//! inserted exactly where the database changes, and the list of tasks waiting for new bytes.
//! Readers (one feeder task per replica, on any thread) hold nothing but a cursor position; they send
//! committed bytes straight from ring memory to a socket ([`Backlog::send_to_fd`]) or copy them out
//! ([`Backlog::copy_out`]).
//!
//! It depends on nothing of the server: no executor, no connection types, no config. The only I/O is
//! one `sendmsg(2)` on a raw fd the caller owns. Waiting for socket writability is the caller's job
//! (`send_to_fd` reports `WouldBlock`), as is dropping a replica that reports `Overrun`.
//!
//! # The write path
//! `word` packs the reserved end (relative to `start`, high 54 bits) with the stream's current db (low
//! 9 bits; 511 = unknown, so always `SELECT`; dbs >= 511 store 511 and therefore always get a
//! `SELECT`) and the sealed flag (bit 9, see "Resizing"). A producer reserves with one CAS on that
//! word and decides from the very word it replaces whether to prepend `SELECT`, so the decision and
//! the db update are atomic with the reservation.
//! Positions are limited to `start + 2^54` (16 PiB: five years at 100 MB/s); passing it panics.
//!
//! Each producer slot `p` has `pending[p]`: a lower bound of the start of its in-flight reservation, or
//! `IDLE` (u64::MAX). It is stored (Release) with the observed reserved end *before* each CAS attempt;
//! since the CAS only succeeds if the word still holds that value, the bound is exact for the
//! reservation actually taken. After copying, the producer stores `IDLE` (Release), issues a SeqCst
//! fence, reads the reserved end `E` (Acquire), then every slot (Acquire), and raises `published` to
//! `safe = min(E, slots)` with `fetch_max`. Nobody ever waits to publish: a preempted producer merely
//! holds `published` below its own reservation until it finishes and publishes itself.
//!
//! Why every byte below `safe` is written and visible. Take a reservation `[s, e)` by producer `q`.
//! (a) If our load of the word read a value older than `q`'s CAS in modification order, `E <= s`: none
//! of `[s, e)` is below `safe`. (b) Otherwise our Acquire load reads `q`'s CAS or a later RMW (every
//! modification of the word is an RMW, so they all extend `q`'s release sequence): `q`'s `pending = s`
//! store happens-before our slot load, which therefore returns `s` (bounding `safe <= s`) or a later
//! value of that slot, which `q` only writes after finishing `[s, e)` (`IDLE`, or the next bound) with
//! Release, so `q`'s copy happens-before our `fetch_max`. Readers load `published` with Acquire and so
//! see the bytes. Liveness: the SeqCst fences between "slot := IDLE" and the loads order all finishing
//! producers; the last one in fence order sees every other slot idle and the final word, so once
//! producers are quiet `head() == reserved end`. Hence every change of a slot to `IDLE` is followed
//! by that publish step, including a producer withdrawing the bound of a failed CAS to wait.
//!
//! Lapping and the in-flight window. A producer whose reservation ends at `e` overwrites the slots
//! of positions below `e - capacity`; were their producer still copying (descheduled while the
//! others wrote a whole ring), both would write the same bytes: a data race and corrupt history. So
//! a producer only reserves if `e + margin <= published + capacity`, else it spins, yields and
//! re-reads the word. That is one load of `published` per append, and since every position below
//! `published` was written by a producer that happens-before the publisher, every earlier writer of
//! our slots happens-before us. It also bounds `reserved_end - head` by `capacity - margin`, so a
//! caught-up replica is never overrun because a shard thread was preempted mid-append. This is the
//! only place a producer waits for another, only when one stalled while the others wrote most of a
//! ring, i.e. the ring is too small for the write rate times the scheduling delay; the alternatives
//! (corruption, or declaring all history lost so every replica does a full sync) are worse.
//! A big append (more than `capacity / 2`, which could starve on that check while others keep
//! appending) reserves without it and then waits for `published` to reach its start: nothing older
//! in flight. Younger appends cannot touch its slots: their own check fails while it is in flight,
//! or their slots lie below its start. Nobody waits for a younger reservation: no deadlock.
//!
//! An append longer than the capacity advances positions by its full length but only its last
//! `capacity` bytes are stored; every cursor below `end - capacity` is overrun.
//!
//! # The read path
//! A byte at position `x` is intact while `reserved_end <= x + capacity` (its slot is reused by
//! position `x + capacity`). `copy_out` checks that before and after copying, seqlock style: producers
//! CAS the word before writing (Release fence between), readers copy then re-read the word after an
//! Acquire fence, so a reader that copied any overwritten byte sees the reservation that overwrote it.
//!
//! `send_to_fd` hands ring memory to the kernel, which copies it synchronously into socket buffers
//! (no `MSG_ZEROCOPY`). It refuses to start (`Overrun`) unless `reserved_end + margin <= from +
//! capacity`, with `margin = capacity / 8`, and it sends at most `margin` bytes per call: to tear a
//! send, producers would have to reserve more than `margin` bytes while the kernel copies at most
//! `margin` bytes, i.e. write faster than a memcpy, or the sender would have to be preempted inside the
//! syscall. That is not impossible, so the word is re-checked after the syscall. A failed post-check
//! means the replica may have received bytes of a *later* part of the stream in place of the real
//! ones; the caller must close that connection at once, and the replica must then do a full sync:
//! the ring raises a resume floor past the torn range, so [`Backlog::can_resume`] refuses a partial
//! resync from inside it. The margin makes 1/8 of the ring unusable for live feeders and resyncs.
//!
//! # Retainers
//! A [`Retainer`] (a full sync's spill file) needs the stream from some position on for longer than
//! the ring may hold it. Its own task copies the stream out lazily; should a burst of appends bring
//! the head half a ring past what a retainer still needs (one deep pipeline can append more than a
//! ring before that task runs again), the producer whose append crossed that line makes every
//! retainer save what it needs at once, on its own thread, before appending more. The cost on the
//! write path is one load of `retain_floor` per append.
//!
//! # Resizing
//! A ring's capacity is fixed, so [`Backlog::resize`] makes a successor instead: it sets the sealed
//! bit of `word` with one RMW, after which no reservation can succeed (every reservation is a CAS
//! from an observed word, and a producer that observes the bit reserves nothing). Producers that
//! see it withdraw their bound and wait for the successor, then append there. The resizer waits
//! until `published` reaches the sealed end (every reservation taken before the seal is written),
//! has the retainers save up to there, copies the history the successor can hold to the same
//! positions in it, hands it the retainers and the stream's db, publishes it and closes this ring.
//! Positions continue unchanged: a reader switches to the successor at its cursor and sees the
//! same bytes. Producers wait only while the history is copied (a memcpy of at most one ring).
//!
//! # Waiting
//! Waiters register a waker under a mutex and store the list length into `sleepers` (SeqCst), then
//! re-check `published` (SeqCst). A producer that raised `published` (SeqCst `fetch_max`) loads
//! `sleepers` (SeqCst) and only if it is non-zero takes the lock and wakes the satisfied waiters
//! (after unlocking). In the single total order of SeqCst operations either the waiter's re-check
//! comes after the `fetch_max` (it sees the new head) or the producer's load comes after the
//! registration (it wakes the waiter): no lost wake-up, and no lock or syscall when nobody waits.
//!
//! # Formal caveat and Miri
//! Readers publish nothing back to producers, so in the Rust/C++ abstract machine a reader's plain
//! read of a byte and a later producer's overwrite of that slot are unordered (a "data race" even
//! when the read ended long before), and an overrun reader really does race. Hardware has no such
//! notion and a validated result is only used when nothing was overwritten, but stable Rust has no
//! per-byte-atomic memcpy (proposed in RFC 3301) to express it. The Miri variants of the stress test
//! therefore use test-level flow control (readers publish their cursor, producers stay within the
//! ring behind the slowest one), which adds the missing edge, and leave out the deliberately overrun
//! readers and the sockets. `scripts/miri-backlog.sh` runs this module's tests under Miri (needs
//! `rustup +nightly component add miri rust-src`; `./scripts/test.sh` runs it when it can):
//! publication, lapping, the in-flight window, SELECT decisions and waiters are then checked for
//! undefined behaviour and data races under Miri's weak-memory emulation; `scripts/miri-backlog.sh 8`
//! explores eight schedules per test (`-Zmiri-many-seeds`).
//!
//! Where no nightly toolchain can be installed, `scripts/tsan-backlog.sh` runs the same two
//! flow-controlled tests under ThreadSanitizer on the stable toolchain and fails on any race report
//! about the ring's bytes. (TSan does not instrument `fetch_max`, which is why `published` is raised
//! with a compare-exchange loop, see [`raise_to`]: with `fetch_max` it reported false races on every
//! published byte.) Reports inside the standard library's futex-based `Mutex` and channels are
//! expected there, since std is not instrumented without `-Zbuild-std`.

use std::alloc::{self, Layout};
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::{fmt, io};

#[cfg(test)]
mod tests;

/// `a.fetch_max(v, SeqCst)` written as the compare-exchange loop it
/// compiles to on x86-64 anyway: ThreadSanitizer does not instrument
/// `fetch_max` (LLVM's `atomicrmw max`), so with it the sanitizer misses
/// the release that publishes ring bytes and reports false races.
fn raise_to(a: &AtomicU64, v: u64) {
    let mut cur = a.load(Relaxed);
    while cur < v {
        match a.compare_exchange_weak(cur, v, SeqCst, Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

/// Low bits of `word` below the reserved end: the db and the sealed flag.
const DB_BITS: u32 = 10;
/// The db field's mask, and its "unknown" value.
const DB_UNKNOWN: u64 = (1 << (DB_BITS - 1)) - 1;
/// Set once the ring is sealed for a resize: nothing more is reserved in it.
const SEALED: u64 = 1 << (DB_BITS - 1);
/// Largest relative position the packed word can hold.
pub const MAX_STREAM_LEN: u64 = 1 << 54;
const MIN_CAPACITY: usize = 16 * 1024;
const IDLE: u64 = u64::MAX;

/// The reader lost its place: the bytes at its cursor were (or may have been) overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun;

/// Why [`Backlog::send_to_fd`] sent nothing usable.
#[derive(Debug)]
pub enum SendError {
    /// The socket is full (EAGAIN); retry once it is writable.
    WouldBlock,
    /// The cursor is too old, or the bytes just sent may be torn: drop the replica.
    Overrun,
    Io(io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::WouldBlock => f.write_str("socket would block"),
            SendError::Overrun => f.write_str("replica fell out of the replication backlog"),
            SendError::Io(e) => write!(f, "replication send failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<Overrun> for SendError {
    fn from(_: Overrun) -> Self {
        SendError::Overrun
    }
}

/// Keeps hot atomics on separate cache lines (128 bytes covers adjacent-line prefetch).
#[repr(align(128))]
struct Padded<T>(T);

struct Waiter {
    key: u64,
    pos: u64,
    waker: Waker,
}

#[derive(Default)]
struct WaitList {
    next_key: u64,
    entries: Vec<Waiter>,
}

/// Something that keeps a part of the stream outside the ring (a full sync's spill file) and so
/// must copy it out before producers overwrite it. The ring knows nothing else of it.
pub trait Retainer: Send + Sync {
    /// The first position it still needs from the ring; `None` once it needs nothing more.
    fn needs_from(&self) -> Option<u64>;
    /// Copies what it needs from the ring, up to the head, now, on the calling (appending)
    /// thread.
    fn save_now(&self, ring: &Backlog);
}

/// The shared replication backlog ring; see the module documentation.
pub struct Backlog {
    /// Reserved end relative to `start` << DB_BITS | current db.
    word: Padded<AtomicU64>,
    /// Absolute end of the published (fully written) prefix.
    published: Padded<AtomicU64>,
    pending: Box<[Padded<AtomicU64>]>,
    waiters: Padded<Mutex<WaitList>>,
    /// Mirror of `waiters.entries.len()`, only stored under the lock. Own line: waiters write it,
    /// producers read it on every append.
    sleepers: Padded<AtomicUsize>,
    closed: AtomicBool,
    /// Partial resync is refused below this position (raised by a torn send).
    resume_floor: AtomicU64,
    /// Lowest position a [`Retainer`] still needed when last asked; `u64::MAX` with none. Read on
    /// every append (one load), written only when retainers are added or made to save.
    retain_floor: AtomicU64,
    retainers: Mutex<Vec<Weak<dyn Retainer>>>,
    /// The ring that continues this one after a resize (set once, before `closed`).
    successor: OnceLock<Arc<Backlog>>,
    buf: NonNull<u8>,
    cap: usize,
    start: u64,
}

// SAFETY: `buf` is a private allocation owned by the Backlog. Producers write only positions they
// reserved through the CAS, after every earlier writer of those slots happens-before them (lapping
// check); readers read only published positions and discard what validation says may be overwritten
// (see the module doc for the formal caveat). All other state is atomics or behind a Mutex.
unsafe impl Send for Backlog {}
// SAFETY: as above; every `&self` method follows that protocol.
unsafe impl Sync for Backlog {}

fn rel_end(word: u64) -> u64 {
    word >> DB_BITS
}

/// Busy-waits briefly, then yields the CPU (the producer we wait for may need it).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 100 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The `SELECT <db>` command, encoded on the stack.
struct Select {
    buf: [u8; 40],
    len: usize,
}

impl Select {
    fn new(db: u32) -> Select {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut v = db;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let digits = &digits[i..];
        let width: &[u8] = if digits.len() == 10 {
            b"10"
        } else {
            &[b'0' + digits.len() as u8]
        };
        let mut s = Select {
            buf: [0; 40],
            len: 0,
        };
        for piece in [
            &b"*2\r\n$6\r\nSELECT\r\n$"[..],
            width,
            b"\r\n",
            digits,
            b"\r\n",
        ] {
            s.buf[s.len..s.len + piece.len()].copy_from_slice(piece);
            s.len += piece.len();
        }
        s
    }

    /// Length of `Select::new(db).bytes()`, without encoding it.
    fn encoded_len(db: u32) -> u64 {
        let digits = db.checked_ilog10().unwrap_or(0) as u64 + 1;
        17 + if digits == 10 { 2 } else { 1 } + 2 + digits + 2
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Backlog {
    /// `capacity` bytes (rounded up to a power of two, at least 16 KiB); positions start at `start`;
    /// `producers` slots with ids `0..producers`. One id must never be used by two threads at once.
    pub fn new(capacity: usize, start: u64, producers: usize) -> Backlog {
        assert!(producers > 0, "a backlog needs at least one producer slot");
        let cap = Backlog::rounded_capacity(capacity);
        assert!(
            start.checked_add(MAX_STREAM_LEN + cap as u64).is_some(),
            "start position too large"
        );
        let layout = Layout::from_size_align(cap, RING_ALIGN).expect("capacity too large");
        // SAFETY: the layout has a non-zero size (cap >= 16 KiB).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let buf = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        Backlog {
            word: Padded(AtomicU64::new(DB_UNKNOWN)),
            published: Padded(AtomicU64::new(start)),
            pending: (0..producers)
                .map(|_| Padded(AtomicU64::new(IDLE)))
                .collect(),
            waiters: Padded(Mutex::new(WaitList::default())),
            sleepers: Padded(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            resume_floor: AtomicU64::new(0),
            retain_floor: AtomicU64::new(u64::MAX),
            retainers: Mutex::new(Vec::new()),
            successor: OnceLock::new(),
            buf,
            cap,
            start,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The capacity a ring asked for `capacity` bytes gets.
    pub fn rounded_capacity(capacity: usize) -> usize {
        capacity
            .max(MIN_CAPACITY)
            .checked_next_power_of_two()
            .expect("capacity too large")
    }

    /// Published end position: every byte below it is written and readable (master_repl_offset).
    pub fn head(&self) -> u64 {
        self.published.0.load(Acquire)
    }

    /// End of the reserved space (>= head; bytes in between are still being written).
    pub fn reserved_end(&self) -> u64 {
        self.start + rel_end(self.word.0.load(Acquire))
    }

    /// Oldest position still guaranteed readable; bytes in `[tail, head)` are readable.
    pub fn tail(&self) -> u64 {
        self.reserved_end()
            .saturating_sub(self.cap as u64)
            .max(self.start)
    }

    /// Bytes of history held (repl_backlog_histlen).
    pub fn histlen(&self) -> u64 {
        let head = self.head();
        head.saturating_sub(self.tail())
    }

    /// Bytes at the old end of the ring that `send_to_fd` will not touch (and most it sends per call).
    pub fn safety_margin(&self) -> usize {
        self.cap / 8
    }

    /// Whether a replica may continue (PSYNC) from `offset`: inside `[tail + margin, head]` and not
    /// at or inside a range that a torn send may have delivered.
    pub fn can_resume(&self, offset: u64) -> bool {
        let head = self.head();
        offset >= self.start
            && offset <= head
            && offset >= self.resume_floor.load(SeqCst)
            && self.intact(offset, self.reserved_end(), self.safety_margin())
    }

    /// `from` is at least `margin` bytes away from being overwritten, given reserved end `resv`.
    fn intact(&self, from: u64, resv: u64, margin: usize) -> bool {
        from >= self.start
            && resv.saturating_add(margin as u64) <= from.saturating_add(self.cap as u64)
    }

    /// Appends one encoded command that runs in database `db`, preceded by `SELECT` if the stream's
    /// current db differs. Returns the end position of this append.
    pub fn append_command(&self, producer: usize, db: u32, cmd: &[u8]) -> u64 {
        self.append(producer, Some((db, db)), &[cmd])
    }

    /// Same as [`Backlog::append_command`], the command given as pieces to concatenate.
    pub fn append_command_parts(&self, producer: usize, db: u32, parts: &[&[u8]]) -> u64 {
        self.append(producer, Some((db, db)), parts)
    }

    /// Appends several commands as one contiguous unit (a transaction): they start in database
    /// `first_db` (a `SELECT` is prepended if the stream is elsewhere) and carry their own `SELECT`s
    /// inside, the last of which leaves the stream in `last_db`.
    pub fn append_span(&self, producer: usize, first_db: u32, last_db: u32, bytes: &[u8]) -> u64 {
        self.append(producer, Some((first_db, last_db)), &[bytes])
    }

    /// Appends bytes verbatim (they carry their own SELECTs); the stream's db is left unchanged.
    pub fn append_raw(&self, producer: usize, bytes: &[u8]) -> u64 {
        self.append(producer, None, &[bytes])
    }

    /// The next `append_command` emits `SELECT` whatever its db.
    pub fn forget_db(&self) {
        if self.word.0.fetch_or(DB_UNKNOWN, AcqRel) & SEALED != 0 {
            self.wait_successor().forget_db();
        }
    }

    /// `db`: the database the bytes start in and the one they leave the stream in.
    fn append(&self, producer: usize, db: Option<(u32, u32)>, parts: &[&[u8]]) -> u64 {
        assert!(producer < self.pending.len(), "producer id out of range");
        let slot = &self.pending[producer].0;
        debug_assert_eq!(slot.load(Relaxed), IDLE, "producer slot used concurrently");
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let select_len = db.map_or(0, |(first, _)| Select::encoded_len(first));
        let want_db = db.map(|(first, last)| {
            (
                u64::from(first).min(DB_UNKNOWN),
                u64::from(last).min(DB_UNKNOWN),
            )
        });
        let (cap, margin) = (self.cap as u64, self.safety_margin() as u64);
        let big = len + select_len > cap / 2;
        let (mut cur, mut spins) = (self.word.0.load(Relaxed), 0);
        let (start, emit_select, end) = loop {
            if cur & SEALED != 0 {
                // Resized (see "Resizing"): withdraw any bound so the resizer sees every
                // reservation finished, then append to the successor.
                if slot.load(Relaxed) != IDLE {
                    self.publish(slot);
                }
                return self.wait_successor().append(producer, db, parts);
            }
            let from = self.start + rel_end(cur);
            let (emit, new_db) = match want_db {
                Some((d, last)) => (d == DB_UNKNOWN || cur & DB_UNKNOWN != d, last),
                None => (false, cur & DB_UNKNOWN),
            };
            let total = len + if emit { select_len } else { 0 };
            let new_rel = rel_end(cur) + total;
            if new_rel >= MAX_STREAM_LEN {
                self.publish(slot); // withdraw any bound of an earlier attempt before panicking
                panic!("replication stream passed 2^54 bytes");
            }
            // The in-flight window (see "Lapping"): one load that passes unless a producer stalled.
            if !big && from + total + margin > self.published.0.load(Acquire) + cap {
                // A bound left by a failed CAS holds `published` back: withdraw it and publish
                // (as after an append), or every producer could end up waiting here for good.
                if slot.load(Relaxed) != IDLE {
                    self.publish(slot);
                }
                backoff(&mut spins);
                cur = self.word.0.load(Relaxed);
                continue;
            }
            // Announce a lower bound of our start before taking the space (see module doc).
            slot.store(from, Release);
            #[cfg(test)]
            tests::hook(self, "before_cas");
            let new = (new_rel << DB_BITS) | new_db;
            match self.word.0.compare_exchange_weak(cur, new, AcqRel, Relaxed) {
                Ok(_) => break (from, emit, from + total),
                Err(actual) => cur = actual,
            }
        };
        // Seqlock writer side: a reader that copies any byte we write next must see our CAS.
        fence(Release);
        // A big append reserved without the window check: wait until nothing older is in flight.
        while big && self.published.0.load(Acquire) < start {
            backoff(&mut spins);
        }
        #[cfg(test)]
        tests::hook(self, "mid_append");
        // Only the last `cap` bytes of an oversized append are stored.
        let keep_from = start.max(end.saturating_sub(cap));
        let select = db
            .filter(|_| emit_select)
            .map(|(first, _)| Select::new(first));
        let prefix = select.as_ref().map_or(&[][..], Select::bytes);
        let mut pos = start;
        for piece in std::iter::once(prefix).chain(parts.iter().copied()) {
            let piece_end = pos + piece.len() as u64;
            if piece_end > keep_from {
                let skip = keep_from.saturating_sub(pos) as usize;
                // SAFETY: [pos + skip, piece_end) lies in our reservation at or above keep_from, so
                // it is at most `cap` bytes; earlier writers of those slots happen-before us: the
                // positions they wrote were published when we checked (window check, or the wait
                // of a big append), see "Lapping".
                unsafe { self.write_at(pos + skip as u64, &piece[skip..]) };
            }
            pos = piece_end;
        }
        self.publish(slot);
        self.protect_retained();
        end
    }

    /// The ring that continues this one after [`Backlog::resize`], once it exists.
    pub fn successor(&self) -> Option<Arc<Backlog>> {
        self.successor.get().cloned()
    }

    /// The newest ring in this one's chain of successors (this one if never resized).
    pub fn latest(self: &Arc<Self>) -> Arc<Backlog> {
        let mut ring = self.clone();
        while let Some(next) = ring.successor() {
            ring = next;
        }
        ring
    }

    /// Waits (spinning, then yielding) for the successor of a sealed ring: the resizer is
    /// copying the history, which takes at most a memcpy of one ring.
    fn wait_successor(&self) -> &Arc<Backlog> {
        let mut spins = 0;
        loop {
            if let Some(next) = self.successor.get() {
                return next;
            }
            backoff(&mut spins);
        }
    }

    /// Continues the stream in a new ring of `capacity` bytes (see "Resizing"): same positions,
    /// as much of the history as the new ring holds, the same db, the retainers. This ring is
    /// closed and every later append to it goes to the successor. A second call returns the
    /// successor the first one made.
    pub fn resize(&self, capacity: usize) -> Arc<Backlog> {
        let sealed = self.word.0.fetch_or(SEALED, AcqRel);
        if sealed & SEALED != 0 {
            return self.wait_successor().clone();
        }
        let end = self.start + rel_end(sealed);
        let mut spins = 0;
        while self.published.0.load(Acquire) < end {
            backoff(&mut spins);
        }
        // Retainers keep what the successor may not hold.
        self.save_retained();
        let cap = Backlog::rounded_capacity(capacity);
        let from = end.saturating_sub(cap as u64).max(self.tail());
        let next = Backlog::new(cap, from, self.pending.len());
        let step = (64 * 1024).min(self.cap).min(cap) as u64;
        let mut chunk = vec![0u8; (end - from).min(step) as usize];
        let mut pos = from;
        while pos < end {
            let n = chunk.len().min((end - pos) as usize);
            // SAFETY: n <= both capacities. [pos, pos + n) lies in [tail, end): published
            // (waited for above) and never written again, since no reservation succeeds once
            // sealed. `next` is not shared yet, and [pos, pos + n) is within its first `cap`
            // positions from its start `from`.
            unsafe {
                self.read_at(pos, &mut chunk[..n]);
                next.write_at(pos, &chunk[..n]);
            }
            pos += n as u64;
        }
        next.word
            .0
            .store(((end - from) << DB_BITS) | (sealed & DB_UNKNOWN), Relaxed);
        next.published.0.store(end, Relaxed);
        next.resume_floor
            .store(self.resume_floor.load(SeqCst), Relaxed);
        let retainers = std::mem::take(
            &mut *self
                .retainers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let next = Arc::new(next);
        for r in retainers {
            next.add_retainer(r);
        }
        // Published (Release) before `closed`: whoever sees the ring closed finds its successor.
        let _ = self.successor.set(next.clone());
        self.retain_floor.store(u64::MAX, Release);
        self.close();
        next
    }

    /// Registers a retainer (see [`Retainer`]); it stays registered while `r` can be upgraded.
    /// Registering one twice is harmless: it is kept once.
    pub fn add_retainer(&self, r: Weak<dyn Retainer>) {
        let mut list = self
            .retainers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(from) = r.upgrade().and_then(|r| r.needs_from()) {
            self.retain_floor.fetch_min(from, AcqRel);
        }
        if !list.iter().any(|w| w.ptr_eq(&r)) {
            list.push(r);
        }
    }

    /// After an append: once the head is half a ring past what a retainer still needs, the
    /// appending thread makes every retainer save what it needs now, before later appends
    /// overwrite it. A retainer's own task normally keeps up; this is for a burst (one pipeline
    /// can append more than a ring between two runs of that task).
    #[inline]
    fn protect_retained(&self) {
        let floor = self.retain_floor.load(Acquire);
        if floor != u64::MAX && self.head().saturating_sub(floor) >= (self.cap / 2) as u64 {
            self.save_retained();
        }
    }

    #[cold]
    fn save_retained(&self) {
        let mut list = self
            .retainers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut floor = u64::MAX;
        list.retain(|w| {
            let Some(r) = w.upgrade() else {
                return false;
            };
            r.save_now(self);
            match r.needs_from() {
                Some(from) => {
                    floor = floor.min(from);
                    true
                }
                None => false,
            }
        });
        self.retain_floor.store(floor, Release);
    }

    fn publish(&self, slot: &AtomicU64) {
        slot.store(IDLE, Release);
        fence(SeqCst);
        let mut safe = self.start + rel_end(self.word.0.load(Acquire));
        for p in self.pending.iter() {
            safe = safe.min(p.0.load(Acquire));
        }
        if safe > self.published.0.load(Relaxed) {
            raise_to(&self.published.0, safe);
            // Pairs with the waiter's SeqCst store of `sleepers` then load of `published`: either we
            // see its registration or it sees our new head. No lock or syscall when nobody waits.
            if self.sleepers.0.load(SeqCst) != 0 {
                self.wake(false);
            }
        }
    }

    /// # Safety
    /// `bytes.len() <= cap`; the caller reserved `[pos, pos + len)` and all earlier writers of those
    /// slots happen-before this call.
    unsafe fn write_at(&self, pos: u64, bytes: &[u8]) {
        let idx = (pos & (self.cap as u64 - 1)) as usize;
        let first = bytes.len().min(self.cap - idx);
        // SAFETY: idx + first <= cap and bytes.len() - first <= idx, so both copies stay inside the
        // allocation and do not overlap each other; `bytes` is caller memory, never the ring.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf.as_ptr().add(idx), first);
            ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.buf.as_ptr(),
                bytes.len() - first,
            );
        }
    }

    /// # Safety
    /// `out.len() <= cap`; `[pos, pos + len)` is published. The result may be torn if a producer
    /// overwrites it meanwhile: the caller must validate it against the reserved end afterwards.
    unsafe fn read_at(&self, pos: u64, out: &mut [u8]) {
        let idx = (pos & (self.cap as u64 - 1)) as usize;
        let first = out.len().min(self.cap - idx);
        // SAFETY: same bounds as write_at; `out` is caller memory.
        unsafe {
            ptr::copy_nonoverlapping(self.buf.as_ptr().add(idx), out.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(
                self.buf.as_ptr(),
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
    }

    /// Copies committed bytes from `from` into `buf`, then validates that none was overwritten.
    /// `Ok(0)` if nothing is committed beyond `from`.
    pub fn copy_out(&self, from: u64, buf: &mut [u8]) -> Result<usize, Overrun> {
        let head = self.head();
        // Read after head, so it covers head: head - from <= cap below.
        if !self.intact(from, self.reserved_end(), 0) {
            return Err(Overrun);
        }
        if from >= head || buf.is_empty() {
            return Ok(0);
        }
        let n = ((head - from) as usize).min(buf.len());
        // SAFETY: n <= head - from <= cap, and [from, from + n) is published.
        unsafe { self.read_at(from, &mut buf[..n]) };
        fence(Acquire);
        let resv = self.start + rel_end(self.word.0.load(Relaxed));
        if self.intact(from, resv, 0) {
            Ok(n)
        } else {
            Err(Overrun)
        }
    }

    /// Sends committed bytes from `from` (at most `max`, and at most [`Backlog::safety_margin`]) to a
    /// non-blocking socket, straight from ring memory. See the module doc for `Overrun` semantics.
    pub fn send_to_fd(&self, from: u64, fd: RawFd, max: usize) -> Result<usize, SendError> {
        let head = self.head();
        if !self.intact(from, self.reserved_end(), self.safety_margin()) {
            return Err(SendError::Overrun);
        }
        if from >= head || max == 0 {
            return Ok(0);
        }
        let n = ((head - from) as usize).min(max).min(self.safety_margin());
        let idx = (from & (self.cap as u64 - 1)) as usize;
        let first = n.min(self.cap - idx);
        // SAFETY: idx < cap, so the offset stays inside the allocation.
        let base = unsafe { self.buf.as_ptr().add(idx) };
        let mut iov = [
            libc::iovec {
                iov_base: base.cast(),
                iov_len: first,
            },
            libc::iovec {
                iov_base: self.buf.as_ptr().cast(),
                iov_len: n - first,
            },
        ];
        // SAFETY: msghdr is plain data; all-zero is "no address, no control data, no iovecs".
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = if n > first { 2 } else { 1 };
        let sent = loop {
            // SAFETY: `msg` points at `iov`, which describes n published bytes inside the allocation
            // (idx + first <= cap, n - first <= idx); the kernel only reads them during the call.
            let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Err(SendError::WouldBlock),
                _ => return Err(SendError::Io(e)),
            }
        };
        fence(SeqCst);
        if sent > 0 && !self.intact(from, self.reserved_end(), 0) {
            raise_to(&self.resume_floor, from + sent as u64 + 1);
            return Err(SendError::Overrun);
        }
        Ok(sent)
    }

    /// Resolves once `head() > pos` or the ring is closed. Cancel-safe; any thread, any number.
    pub fn wait_beyond(&self, pos: u64) -> impl Future<Output = ()> + '_ {
        WaitBeyond {
            ring: self,
            pos,
            key: None,
        }
    }

    /// Wakes every waiter for good; later waits resolve at once.
    pub fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake(true);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    fn ready(&self, pos: u64) -> bool {
        self.closed.load(SeqCst) || self.published.0.load(SeqCst) > pos
    }

    fn lock_waiters(&self) -> MutexGuard<'_, WaitList> {
        self.waiters
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes and wakes the waiters that are satisfied (all of them if `all`). Wakes after unlocking.
    fn wake(&self, all: bool) {
        let woken: Vec<Waker> = {
            let mut list = self.lock_waiters();
            let head = self.published.0.load(SeqCst);
            let out = list
                .entries
                .extract_if(.., |w| all || w.pos < head)
                .map(|w| w.waker)
                .collect();
            self.sleepers.0.store(list.entries.len(), SeqCst);
            out
        };
        woken.into_iter().for_each(Waker::wake);
    }
}

/// Alignment of the ring's bytes. No more than the C allocator's own (16
/// on x86-64 Linux): a zeroed allocation is then a `calloc`, which maps
/// fresh zero pages for a big ring instead of writing zeros over it, so a
/// ring costs memory only as the stream fills it. With a stricter
/// alignment the allocator zeroes every byte up front: the master's
/// memory jumped by the whole ring (32 MB) when its first replica came.
const RING_ALIGN: usize = 16;

impl Drop for Backlog {
    fn drop(&mut self) {
        let layout =
            Layout::from_size_align(self.cap, RING_ALIGN).expect("layout was valid at creation");
        // SAFETY: `buf` came from alloc_zeroed with this layout and is freed exactly once.
        unsafe { alloc::dealloc(self.buf.as_ptr(), layout) };
    }
}

impl fmt::Debug for Backlog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("capacity", &self.cap)
            .field("tail", &self.tail())
            .field("head", &self.head())
            .field("reserved_end", &self.reserved_end())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Future of [`Backlog::wait_beyond`]. Holds a key into the wait list while registered.
struct WaitBeyond<'a> {
    ring: &'a Backlog,
    pos: u64,
    key: Option<u64>,
}

impl WaitBeyond<'_> {
    fn register(&mut self, waker: &Waker) {
        let ring = self.ring;
        let mut list = ring.lock_waiters();
        if let Some(entry) = self
            .key
            .and_then(|k| list.entries.iter_mut().find(|w| w.key == k))
        {
            if !entry.waker.will_wake(waker) {
                entry.waker = waker.clone();
            }
            return; // our earlier store of `sleepers` (>= 1) still stands
        }
        let key = list.next_key;
        list.next_key += 1;
        list.entries.push(Waiter {
            key,
            pos: self.pos,
            waker: waker.clone(),
        });
        self.key = Some(key);
        ring.sleepers.0.store(list.entries.len(), SeqCst);
    }

    fn deregister(&mut self) {
        let Some(key) = self.key.take() else { return };
        // Zero can only be stored once our entry was removed (by a wake), so no lock is needed then.
        if self.ring.sleepers.0.load(SeqCst) == 0 {
            return;
        }
        let mut list = self.ring.lock_waiters();
        if let Some(i) = list.entries.iter().position(|w| w.key == key) {
            list.entries.swap_remove(i);
            self.ring.sleepers.0.store(list.entries.len(), SeqCst);
        }
    }
}

impl Future for WaitBeyond<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.ring.ready(this.pos) {
            this.register(cx.waker());
            // Re-check after registering (SeqCst store of `sleepers` above, SeqCst load here).
            if !this.ring.ready(this.pos) {
                return Poll::Pending;
            }
        }
        this.deregister();
        Poll::Ready(())
    }
}

impl Drop for WaitBeyond<'_> {
    fn drop(&mut self) {
        self.deregister();
    }
}
