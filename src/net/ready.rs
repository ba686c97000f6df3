//! Readiness of this shard's client sockets, from one edge-triggered epoll
//! set per shard.
//!
//! Why not the runtime's own wait: glommio waits for a readable socket with
//! a one-shot io_uring poll, re-armed after every read. Under load that is
//! one completion per request, and the kernel delivers each batch of
//! completions to the running shard as task work with an interrupt
//! (glommio's rings are created without `IORING_SETUP_COOP_TASKRUN`).
//! Measured at `-P 1` with 50 clients, those interrupts, the task work and
//! the ring's bookkeeping took about a quarter of the shard's CPU. Here each
//! socket is registered once, edge-triggered; one `epoll_wait` collects
//! every socket that became readable since the last one, as Redis's event
//! loop does, and the runtime is asked to wait (one poll of the epoll fd)
//! only when nothing at all has been ready for [`SPIN_BEFORE_PARK`]. While
//! sockets keep coming ready the watcher still hands the shard to the
//! runtime's reactor every [`REACTOR_TURN`], so io_uring completions,
//! timers and wake-ups from other shards are never held back for long.
//!
//! Owns the epoll fd and the readiness flag and waker of each registered
//! socket. Reading the sockets stays with the connections
//! ([`super::conn`]); nothing here touches their data.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Events taken from the kernel per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

/// The longest the watcher keeps the shard's queue busy without letting
/// the runtime's reactor run (see [`watch`]).
/// Short against what a replica's feed may fall behind in that time (a
/// 1 MB ring fills in about 4 ms at 270 MB/s); each turn costs the runtime
/// a handful of io_uring calls.
const REACTOR_TURN: Duration = Duration::from_micros(250);

/// How long the watcher keeps looking at an empty epoll set before it
/// parks the shard. Under request/response load the next request is
/// usually a few microseconds away, and a park costs more than that: the
/// runtime's poll of the epoll fd, its turn of the reactor (two timer
/// re-arms, four `io_uring_enter` calls), and when it really sleeps a
/// membarrier and the wake-up. Measured per core at `-P 1` GET in ten
/// paired rounds: CPU per request 1.21x Redis's without, 1.16x with (lower
/// in every round; 8 us gained less); one client's rate doubled. The
/// price: a shard with sparse requests spins this long after each.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(20);

/// The state of one registered socket.
#[derive(Default)]
struct Slot {
    /// Bumped when the slot is freed, so a stale event (the kernel may
    /// still report a socket that was just removed) never marks its
    /// successor.
    generation: u32,
    /// An event arrived that the connection has not consumed yet.
    ready: bool,
    /// The peer hung up (or the socket failed). Sticky: with edge
    /// triggering, a hang-up that arrived together with the last data
    /// raises no further edge once that data is read, so every later wait
    /// must return at once and let the reader see the end of stream.
    hung_up: bool,
    /// The connection waiting for an event, if it waits.
    waker: Option<Waker>,
}

/// One shard's epoll set and the slots of its sockets.
struct Hub {
    epfd: OwnedFd,
    slots: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    all: Vec<Slot>,
    free: Vec<u32>,
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// A socket registered with this shard's epoll set; removed on drop.
pub struct Interest {
    hub: Rc<Hub>,
    fd: RawFd,
    slot: u32,
}

/// Registers `fd` (a non-blocking socket of this shard) for readability.
/// The first call on a shard creates its epoll set and starts the task
/// that watches it.
pub fn register(fd: RawFd) -> std::io::Result<Interest> {
    let hub = shard_hub()?;
    let (slot, generation) = {
        let mut slots = hub.slots.borrow_mut();
        let slot = match slots.free.pop() {
            Some(i) => i,
            None => {
                slots.all.push(Slot::default());
                (slots.all.len() - 1) as u32
            }
        };
        // A new slot is fresh and a freed one was cleared by free_slot.
        (slot, slots.all[slot as usize].generation)
    };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: key(slot, generation),
    };
    // SAFETY: `epfd` is our epoll fd and `fd` an open socket the caller
    // owns; `event` is a live epoll_event for the duration of the call.
    let rc = unsafe { libc::epoll_ctl(hub.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        free_slot(&hub, slot);
        return Err(err);
    }
    Ok(Interest { hub, fd, slot })
}

impl Interest {
    /// Resolves once the socket became readable (or hung up, or failed)
    /// since the last time this resolved. Spurious wake-ups are possible:
    /// the reader must still expect `EAGAIN`.
    pub fn readable(&self) -> Readable<'_> {
        Readable { interest: self }
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        // SAFETY: `fd` is still open (the connection drops its Interest
        // before its socket); a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.hub.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            )
        };
        free_slot(&self.hub, self.slot);
    }
}

/// See [`Interest::readable`].
pub struct Readable<'a> {
    interest: &'a Interest,
}

impl Future for Readable<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.interest.hub.slots.borrow_mut();
        let slot = &mut slots.all[self.interest.slot as usize];
        if slot.ready || slot.hung_up {
            slot.ready = false;
            return Poll::Ready(());
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Events after which the socket only ever has an end of stream or an
/// error left to report.
const HANG_UP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

fn key(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

fn free_slot(hub: &Hub, slot: u32) {
    let mut slots = hub.slots.borrow_mut();
    let s = &mut slots.all[slot as usize];
    *s = Slot {
        generation: s.generation.wrapping_add(1),
        ..Slot::default()
    };
    slots.free.push(slot);
}

fn shard_hub() -> std::io::Result<Rc<Hub>> {
    if let Some(hub) = HUB.with(|h| h.borrow().clone()) {
        return Ok(hub);
    }
    // SAFETY: epoll_create1 with a constant flag; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let hub = Rc::new(Hub {
        // SAFETY: `fd` is a fresh epoll fd that nothing else owns.
        epfd: unsafe { OwnedFd::from_raw_fd(fd) },
        slots: RefCell::default(),
    });
    HUB.with(|h| *h.borrow_mut() = Some(hub.clone()));
    glommio::spawn_local(watch(hub.clone())).detach();
    Ok(hub)
}

/// The shard's watcher: hands each event to its slot, once per round of the
/// shard's tasks while events keep coming; when none has come for
/// [`SPIN_BEFORE_PARK`], waits through the runtime until the epoll set has
/// something.
async fn watch(hub: Rc<Hub>) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
    let mut last_turn = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        // SAFETY: `events` has room for EVENTS_PER_WAIT entries, which is
        // what the kernel is told; a zero timeout never blocks the shard.
        let n = unsafe {
            libc::epoll_wait(
                hub.epfd.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS_PER_WAIT as libc::c_int,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                tracing::warn!("epoll_wait failed: {err}; waiting before retrying");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            continue;
        }
        if n > 0 {
            quiet_since = None;
            deliver(&hub, &events[..n as usize]);
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= SPIN_BEFORE_PARK {
            quiet_since = None;
            park(&hub).await;
            last_turn = Instant::now();
            continue;
        }
        // Let the woken connections (and every other task) run before
        // looking again. While this task and the others keep the shard's
        // queue busy, the runtime never gets to its reactor, which is where
        // io_uring completions (replication sockets, files), timers and
        // wake-ups from other shards are taken in; so once per
        // REACTOR_TURN the wait goes through the reactor instead.
        if last_turn.elapsed() >= REACTOR_TURN {
            glommio::timer::sleep(Duration::ZERO).await;
            last_turn = Instant::now();
        } else {
            futures_lite::future::yield_now().await;
        }
    }
}

fn deliver(hub: &Hub, events: &[libc::epoll_event]) {
    let mut slots = hub.slots.borrow_mut();
    for ev in events {
        let k = ev.u64;
        let (slot, generation) = (k as u32, (k >> 32) as u32);
        if let Some(s) = slots.all.get_mut(slot as usize) {
            if s.generation == generation {
                s.ready = true;
                s.hung_up |= ev.events & HANG_UP != 0;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }
}

/// Waits until the epoll set has a ready socket, through the runtime's
/// reactor: glommio arms a poll for readability on any socket it is given,
/// so it is given a duplicate of the epoll fd (an epoll fd is readable
/// when its set has events). The read that follows the poll fails (an
/// epoll fd is no socket), which is the signal that the wait is over.
async fn park(hub: &Hub) {
    use futures_lite::AsyncReadExt;
    // SAFETY: F_DUPFD_CLOEXEC on our open epoll fd; the result is checked.
    let dup = unsafe { libc::fcntl(hub.epfd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
        return;
    }
    // SAFETY: `dup` is a fresh fd that only this stream owns and closes;
    // the stream never calls anything on it but poll and recv.
    let mut waiter = unsafe { glommio::net::TcpStream::from_raw_fd(dup) };
    let mut byte = [0u8; 1];
    let _ = waiter.read(&mut byte).await;
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Runs `f` on a one-off glommio executor, as a shard would.
    pub(in crate::net) fn on_executor<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default()
            .spawn(f)
            .expect("executor starts")
            .join()
            .expect("executor ends");
    }

    /// A connected pair whose first end (ours) is non-blocking.
    pub(in crate::net) fn nonblocking_pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn a_write_wakes_a_waiting_reader_through_a_parked_watcher() {
        on_executor(|| async {
            let (ours, mut theirs) = nonblocking_pair();
            let interest = register(ours.as_raw_fd()).unwrap();
            // Nothing is ready: the watcher parks in the runtime, and the
            // write from another thread must wake it.
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                theirs.write_all(b"ping").unwrap();
                theirs
            });
            interest.readable().await;
            let mut buf = [0u8; 8];
            assert_eq!((&ours).read(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"ping");
            let mut theirs = writer.join().unwrap();
            // Edge-triggered: every later write raises a new event.
            for round in 0..3u8 {
                theirs.write_all(&[round]).unwrap();
                interest.readable().await;
                assert_eq!((&ours).read(&mut buf).unwrap(), 1);
                assert_eq!(buf[0], round);
            }
        });
    }

    #[test]
    fn data_queued_before_registration_is_reported() {
        on_executor(|| async {
            let (ours, mut theirs) = nonblocking_pair();
            theirs.write_all(b"early").unwrap();
            let interest = register(ours.as_raw_fd()).unwrap();
            interest.readable().await;
            let mut buf = [0u8; 8];
            assert_eq!((&ours).read(&mut buf).unwrap(), 5);
        });
    }

    #[test]
    fn a_hang_up_is_reported_as_readable() {
        on_executor(|| async {
            let (ours, theirs) = nonblocking_pair();
            let interest = register(ours.as_raw_fd()).unwrap();
            drop(theirs);
            interest.readable().await;
            let mut buf = [0u8; 8];
            assert_eq!((&ours).read(&mut buf).unwrap(), 0);
        });
    }

    #[test]
    fn a_hang_up_that_came_with_the_last_data_is_still_reported() {
        on_executor(|| async {
            let (ours, mut theirs) = nonblocking_pair();
            let interest = register(ours.as_raw_fd()).unwrap();
            let mut buf = [0u8; 16];
            // Data and the hang-up land before the watcher looks: one edge.
            theirs.write_all(b"last").unwrap();
            theirs.shutdown(std::net::Shutdown::Write).unwrap();
            interest.readable().await;
            assert_eq!((&ours).read(&mut buf).unwrap(), 4);
            // No new edge comes, but the end of stream must still be seen.
            interest.readable().await;
            assert_eq!((&ours).read(&mut buf).unwrap(), 0);
        });
    }

    #[test]
    fn an_event_for_a_freed_slot_never_marks_its_next_owner() {
        on_executor(|| async {
            let (first, _keep_first) = nonblocking_pair();
            let (second, _keep_second) = nonblocking_pair();
            let old = register(first.as_raw_fd()).unwrap();
            let (slot, generation) = {
                let slots = old.hub.slots.borrow();
                (old.slot, slots.all[old.slot as usize].generation)
            };
            drop(old);
            let new = register(second.as_raw_fd()).unwrap();
            assert_eq!(new.slot, slot, "the freed slot is reused");
            let stale = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: key(slot, generation),
            };
            deliver(&new.hub, &[stale]);
            assert!(!new.hub.slots.borrow().all[slot as usize].ready);
            let current = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: key(slot, generation.wrapping_add(1)),
            };
            deliver(&new.hub, &[current]);
            assert!(new.hub.slots.borrow().all[slot as usize].ready);
        });
    }

    #[test]
    fn many_sockets_are_served_by_one_watcher() {
        on_executor(|| async {
            let pairs: Vec<_> = (0..300).map(|_| nonblocking_pair()).collect();
            let interests: Vec<_> = pairs
                .iter()
                .map(|(ours, _)| register(ours.as_raw_fd()).unwrap())
                .collect();
            // More sockets than one epoll_wait returns become ready at once.
            for (_, theirs) in &pairs {
                (&*theirs).write_all(b"x").unwrap();
            }
            for (interest, (ours, _)) in interests.iter().zip(&pairs) {
                interest.readable().await;
                let mut buf = [0u8; 2];
                assert_eq!((&*ours).read(&mut buf).unwrap(), 1);
            }
        });
    }
}
