use super::*;
use futures_lite::future::{block_on, poll_once};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

const SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";

fn select(db: u32) -> Vec<u8> {
    format!(
        "*2\r\n$6\r\nSELECT\r\n${}\r\n{}\r\n",
        db.to_string().len(),
        db
    )
    .into_bytes()
}

fn read_all(b: &Backlog, mut pos: u64, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = b.copy_out(pos, &mut buf).expect("overrun");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
        pos += n as u64;
    }
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn select_insertion_rules() {
    let b = Backlog::new(0, 100, 1);
    let mut expect = Vec::new();
    // (db or None for raw, bytes appended, whether a SELECT must precede)
    let steps: &[(Option<u32>, &[u8], bool)] = &[
        (Some(0), SET, true), // a new ring knows no db
        (Some(0), SET, false),
        (Some(12), SET, true),
        (None, b"RAW\r\n", false),
        (Some(12), SET, false), // append_raw kept the db
        (Some(510), SET, true),
        (Some(510), SET, false),
        (Some(511), SET, true), // dbs >= 511 always get a SELECT
        (Some(511), SET, true),
        (Some(5000), SET, true),
        (Some(5000), SET, true),
        (Some(u32::MAX), b"", true),
    ];
    for &(db, bytes, with_select) in steps {
        let end = match db {
            Some(db) => b.append_command(0, db, bytes),
            None => b.append_raw(0, bytes),
        };
        if with_select {
            expect.extend(select(db.unwrap()));
        }
        expect.extend_from_slice(bytes);
        assert_eq!((end, b.head()), (100 + expect.len() as u64, end));
    }
    b.append_command(0, 7, SET);
    b.forget_db();
    b.append_command_parts(0, 7, &[&SET[..5], &SET[5..]]);
    b.append_command_parts(0, 7, &[&SET[..5], &SET[5..]]);
    for part in [
        select(7),
        SET.to_vec(),
        select(7),
        SET.to_vec(),
        SET.to_vec(),
    ] {
        expect.extend(part);
    }
    assert_eq!(read_all(&b, 100, 7), expect);
    for db in [0, 9, 10, 99, 1000, 999_999_999, 1_000_000_000, u32::MAX] {
        assert_eq!(Select::new(db).bytes(), select(db));
        assert_eq!(Select::encoded_len(db), select(db).len() as u64);
    }
}

#[test]
fn a_span_starts_in_one_db_and_leaves_the_stream_in_another() {
    let b = Backlog::new(0, 0, 1);
    let mut expect = Vec::new();
    b.append_command(0, 2, SET);
    expect.extend(select(2));
    expect.extend_from_slice(SET);
    // Starts in db 2 (no SELECT needed), ends in db 4 (its own SELECT inside).
    b.append_span(0, 2, 4, b"UNIT\r\n");
    expect.extend_from_slice(b"UNIT\r\n");
    b.append_command(0, 4, SET);
    expect.extend_from_slice(SET);
    // Starts elsewhere: a SELECT first.
    b.append_span(0, 1, 1, b"UNIT\r\n");
    expect.extend(select(1));
    expect.extend_from_slice(b"UNIT\r\n");
    b.append_command(0, 1, SET);
    expect.extend_from_slice(SET);
    assert_eq!(read_all(&b, 0, 5), expect);
}

#[test]
fn positions_head_tail_histlen() {
    let b = Backlog::new(1000, 5000, 2);
    assert_eq!(b.capacity(), 16 * 1024);
    assert_eq!(Backlog::new(20_000, 0, 1).capacity(), 32 * 1024);
    assert_eq!((b.head(), b.tail(), b.histlen()), (5000, 5000, 0));
    assert_eq!(b.copy_out(5000, &mut [0; 10]), Ok(0));
    assert_eq!(b.copy_out(4999, &mut [0; 10]), Err(Overrun));
    let data = noise(1, 30_000);
    assert_eq!(b.append_raw(1, &data[..10_000]), 15_000);
    assert_eq!((b.head(), b.tail(), b.histlen()), (15_000, 5000, 10_000));
    assert_eq!(b.append_raw(0, &data[10_000..20_000]), 25_000);
    assert_eq!(
        (b.head(), b.tail(), b.histlen()),
        (25_000, 25_000 - 16_384, 16_384)
    );
    assert_eq!(b.copy_out(b.tail() - 1, &mut [0; 10]), Err(Overrun));
    assert_eq!(read_all(&b, b.tail(), 4096), &data[20_000 - 16_384..20_000]);
    assert_eq!(b.copy_out(b.head() + 10, &mut [0; 10]), Ok(0));
    assert_eq!(b.reserved_end(), b.head());
}

#[test]
fn wraparound_content() {
    let cap = 16 * 1024u64;
    let start = 3 * cap - 7; // the very first append straddles the end of the buffer
    let b = Backlog::new(0, start, 1);
    let mut model = Vec::new();
    for i in 0..400u64 {
        let rec = noise(i, (i * 37 % 300) as usize);
        b.append_raw(0, &rec);
        model.extend(rec);
    }
    assert_eq!(b.head(), start + model.len() as u64);
    let tail = b.tail();
    let held = &model[(tail - start) as usize..];
    for chunk in [1, 333, 4096, 100_000] {
        assert_eq!(read_all(&b, tail, chunk), held);
    }
    for off in (0..held.len()).step_by(997) {
        let mut buf = [0u8; 700];
        let n = b.copy_out(tail + off as u64, &mut buf).unwrap();
        assert_eq!(&buf[..n], &held[off..(off + 700).min(held.len())]);
    }
}

#[test]
fn overrun_and_resume_rules() {
    let b = Backlog::new(0, 0, 1);
    let cap = b.capacity() as u64;
    let margin = b.safety_margin() as u64;
    assert!(b.can_resume(0));
    b.append_raw(0, &noise(2, 2 * cap as usize + 100));
    assert_eq!(b.copy_out(0, &mut [0; 16]), Err(Overrun));
    assert!(!b.can_resume(0));
    assert!(!b.can_resume(b.tail()));
    assert!(b.can_resume(b.tail() + margin));
    assert!(b.can_resume(b.head()));
    assert!(!b.can_resume(b.head() + 1));
    assert!(b.copy_out(b.tail(), &mut [0; 16]).is_ok());
}

#[test]
fn append_larger_than_capacity() {
    let b = Backlog::new(0, 10, 1);
    let cap = b.capacity();
    let data = noise(3, 3 * cap + 5);
    assert_eq!(b.append_raw(0, &data), 10 + data.len() as u64);
    assert_eq!(b.tail(), b.head() - cap as u64);
    assert_eq!(b.histlen(), cap as u64);
    assert_eq!(read_all(&b, b.tail(), 1000), &data[data.len() - cap..]);
    assert_eq!(b.copy_out(10, &mut [0; 16]), Err(Overrun));
    // A huge command: its SELECT prefix lies before the kept window and is dropped with it.
    let big = noise(4, cap + 1);
    let end = b.append_command(0, 3, &big);
    assert_eq!(end, 10 + (data.len() + select(3).len() + big.len()) as u64);
    assert_eq!(read_all(&b, b.tail(), 5000), &big[1..]);
    let before = b.head();
    b.append_command(0, 3, SET); // the db is known now
    assert_eq!(read_all(&b, before, 64), SET);
}

/// Keeps everything from `from` on in memory, copying only when asked.
struct Keeper {
    saved: Mutex<(u64, Vec<u8>)>,
    done: AtomicBool,
}

impl Retainer for Keeper {
    fn needs_from(&self) -> Option<u64> {
        let saved = self.saved.lock().unwrap();
        (!self.done.load(SeqCst)).then_some(saved.0)
    }

    fn save_now(&self, ring: &Backlog) {
        let mut saved = self.saved.lock().unwrap();
        let mut buf = [0u8; 777];
        loop {
            let n = ring
                .copy_out(saved.0, &mut buf)
                .expect("the retained range was overrun");
            if n == 0 {
                return;
            }
            saved.1.extend_from_slice(&buf[..n]);
            saved.0 += n as u64;
        }
    }
}

#[test]
fn a_retainer_is_made_to_save_before_its_range_is_overwritten() {
    let b = Backlog::new(0, 100, 2);
    let cap = b.capacity();
    b.append_raw(0, &noise(1, 1000));
    let keeper = Arc::new(Keeper {
        saved: Mutex::new((b.head(), Vec::new())),
        done: AtomicBool::new(false),
    });
    b.add_retainer(Arc::downgrade(&keeper) as Weak<dyn Retainer>);
    // Rings of appends from two producers and nobody else copying: the
    // appends themselves make the keeper save in time.
    let rings = if cfg!(miri) { 3 } else { 10 };
    let mut expected = Vec::new();
    for i in 0..(rings * cap / 300) as u64 {
        let piece = noise(i + 7, 100 + (i as usize * 37) % 400);
        b.append_raw((i % 2) as usize, &piece);
        expected.extend_from_slice(&piece);
        let saved = keeper.saved.lock().unwrap().0;
        assert!(
            b.head() - saved < cap as u64,
            "the ring got ahead of the keeper"
        );
    }
    keeper.save_now(&b);
    assert_eq!(keeper.saved.lock().unwrap().1, expected);
    // Done or gone, a retainer no longer costs appends anything.
    keeper.done.store(true, SeqCst);
    b.append_raw(0, &noise(9, cap));
    assert_eq!(b.retain_floor.load(SeqCst), u64::MAX);
    drop(keeper);
    assert!(b.retainers.lock().unwrap().is_empty());
}

#[test]
fn a_resized_ring_continues_the_stream_at_the_same_positions() {
    let old = Arc::new(Backlog::new(0, 500, 2));
    let cap = old.capacity();
    let mut stream = Vec::new();
    for i in 0..40u64 {
        let piece = noise(i, 300 + (i as usize * 53) % 700);
        old.append_raw((i % 2) as usize, &piece);
        stream.extend_from_slice(&piece);
    }
    old.append_command(0, 3, SET);
    stream.extend_from_slice(&select(3));
    stream.extend_from_slice(SET);
    let keeper = Arc::new(Keeper {
        saved: Mutex::new((old.head() - 100, Vec::new())),
        done: AtomicBool::new(false),
    });
    old.add_retainer(Arc::downgrade(&keeper) as Weak<dyn Retainer>);
    let head = old.head();
    let total = stream.len() as u64;
    assert!(total > cap as u64, "the test wants a lapped ring");

    // Growing keeps the whole history the old ring held.
    let big = old.resize(4 * cap);
    assert_eq!(big.capacity(), 4 * cap);
    assert!(old.is_closed());
    assert!(Arc::ptr_eq(&old.successor().unwrap(), &big));
    assert!(Arc::ptr_eq(&old.latest(), &big));
    assert!(
        Arc::ptr_eq(&old.resize(cap), &big),
        "a second resize returns the successor"
    );
    assert_eq!(big.head(), head);
    assert_eq!(big.tail(), old.tail());
    assert_eq!(big.histlen(), cap as u64);
    let held = read_all(&big, big.tail(), 999);
    assert_eq!(held[..], stream[(total - cap as u64) as usize..]);
    // The retainer was made to save up to the seal, and moved along.
    assert_eq!(keeper.saved.lock().unwrap().0, head);
    assert_eq!(big.retainers.lock().unwrap().len(), 1);
    assert!(old.retainers.lock().unwrap().is_empty());
    // Registering it again (a spill task moving on to the successor) keeps it once.
    big.add_retainer(Arc::downgrade(&keeper) as Weak<dyn Retainer>);
    assert_eq!(big.retainers.lock().unwrap().len(), 1);

    // The stream's db carries over: no SELECT for db 3, one for db 4. Appends through the old
    // ring land in the successor.
    let at = old.append_command(1, 3, SET);
    assert_eq!(at, head + SET.len() as u64);
    assert_eq!(big.head(), at);
    big.append_command(0, 4, SET);
    let mut expected = SET.to_vec();
    expected.extend_from_slice(&select(4));
    expected.extend_from_slice(SET);
    assert_eq!(read_all(&big, head, 64), expected);
    old.forget_db();
    let before = big.head();
    big.append_command(0, 4, SET);
    assert_eq!(read_all(&big, before, 64)[..select(4).len()], select(4)[..]);

    // Shrinking keeps the newest bytes that fit.
    let small = big.latest().resize(0);
    assert!(Arc::ptr_eq(&old.latest(), &small));
    assert_eq!(small.head(), big.head());
    assert_eq!(small.histlen(), small.capacity() as u64);
    let end = big.head();
    assert_eq!(
        read_all(&small, small.tail(), 500),
        read_all(&big, end - small.capacity() as u64, 500)
    );
    assert!(!small.can_resume(big.tail()));
    assert!(small.can_resume(end));
    keeper.done.store(true, SeqCst);
}

type Hook = Box<dyn FnOnce(&Backlog)>;

thread_local! {
    static HOOKS: std::cell::RefCell<Vec<(&'static str, Hook)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Installs `f` to run once, on this thread, when `append` reaches `point`.
fn set_hook(point: &'static str, f: impl FnOnce(&Backlog) + 'static) {
    HOOKS.with(|h| h.borrow_mut().push((point, Box::new(f))));
}

/// Called by `append` at "before_cas" (bound announced, space not taken) and "mid_append"
/// (space taken, nothing written).
pub(super) fn hook(b: &Backlog, point: &str) {
    let f = HOOKS.with(|h| {
        let mut hooks = h.borrow_mut();
        let i = hooks.iter().position(|(p, _)| *p == point)?;
        Some(hooks.remove(i).1)
    });
    if let Some(f) = f {
        f(b);
    }
}

#[test]
fn in_flight_append_holds_back_head_and_bounds_the_window() {
    let b = Arc::new(Backlog::new(0, 0, 2));
    let cap = b.capacity() as u64;
    let mut model = select(0);
    model.extend_from_slice(SET);
    let records: Vec<Vec<u8>> = (0..20).map(|i| noise(i, 1000)).collect();
    let bulk = {
        let (b, records) = (b.clone(), records.clone());
        move || records.iter().for_each(|r| _ = b.append_raw(1, r))
    };
    let lapper = Arc::new(std::sync::Mutex::new(None));
    let lapper2 = lapper.clone();
    set_hook("mid_append", move |b: &Backlog| {
        // Producer 0 has reserved its bytes but not written them.
        assert_eq!(
            (b.head(), b.reserved_end()),
            (0, (select(0).len() + SET.len()) as u64)
        );
        b.append_raw(1, b"later");
        assert_eq!(b.head(), 0, "head passed an unwritten reservation");
        assert_eq!(b.copy_out(0, &mut [0; 64]), Ok(0));
        // Another producer writing more than the ring must stall before lapping producer 0.
        let t = thread::spawn(bulk);
        thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished());
        assert!(b.reserved_end() + b.safety_margin() as u64 <= cap);
        *lapper2.lock().unwrap() = Some(t);
    });
    b.append_command(0, 0, SET);
    lapper.lock().unwrap().take().unwrap().join().unwrap();
    model.extend_from_slice(b"later");
    records.iter().for_each(|r| model.extend_from_slice(r));
    assert_eq!(b.head(), model.len() as u64);
    assert_eq!(read_all(&b, b.tail(), 4096), &model[b.tail() as usize..]);
}

#[test]
fn big_append_waits_for_older_in_flight_writer() {
    let b = Arc::new(Backlog::new(0, 0, 2));
    let big = noise(5, b.capacity());
    let small_end = (select(1).len() + SET.len()) as u64;
    let writer = Arc::new(std::sync::Mutex::new(None));
    let (b2, big2, writer2) = (b.clone(), big.clone(), writer.clone());
    set_hook("mid_append", move |b: &Backlog| {
        let t = thread::spawn(move || b2.append_raw(1, &big2));
        // It reserves at once (no window check for big appends) but must not write yet.
        while b.reserved_end() == small_end {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(30));
        assert!(!t.is_finished());
        assert_eq!(b.head(), 0);
        *writer2.lock().unwrap() = Some(t);
    });
    b.append_command(0, 1, SET);
    let end = writer.lock().unwrap().take().unwrap().join().unwrap();
    assert_eq!((end, b.head()), (small_end + big.len() as u64, end));
    assert_eq!(read_all(&b, b.tail(), 4096), big);
}

#[test]
fn bound_of_a_failed_cas_does_not_stall_publication() {
    let scenario = thread::spawn(|| {
        let b = Arc::new(Backlog::new(0, 0, 2));
        let (b2, other) = (b.clone(), Arc::new(std::sync::Mutex::new(None)));
        let other2 = other.clone();
        set_hook("before_cas", move |b: &Backlog| {
            // Producer 0 announced a bound at 0 but has not taken its space. Producer 1 appends
            // until the window stops it: `published` cannot pass producer 0's bound meanwhile.
            let t =
                thread::spawn(move || (0..40).for_each(|i| _ = b2.append_raw(1, &noise(i, 1000))));
            let mut last = u64::MAX;
            while b.reserved_end() != last {
                last = b.reserved_end();
                thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(b.head(), 0);
            assert!(!t.is_finished());
            *other2.lock().unwrap() = Some(t);
        });
        // Our CAS now fails and our append does not fit the window either: we must withdraw the
        // stale bound (and publish) before waiting, or both producers wait forever.
        let big = noise(99, 3000);
        b.append_raw(0, &big);
        other.lock().unwrap().take().unwrap().join().unwrap();
        assert_eq!(b.head(), 40 * 1000 + 3000);
    });
    for _ in 0..1000 {
        if scenario.is_finished() {
            return scenario.join().unwrap();
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("publication stalled");
}

#[test]
fn wait_beyond_wakes_and_cancels() {
    let b = Arc::new(Backlog::new(0, 0, 1));
    {
        let mut fut = pin!(b.wait_beyond(0));
        assert!(block_on(poll_once(fut.as_mut())).is_none());
        assert_eq!(b.sleepers.0.load(SeqCst), 1);
        assert!(block_on(poll_once(fut.as_mut())).is_none()); // re-poll keeps one entry
        assert_eq!(b.sleepers.0.load(SeqCst), 1);
    }
    assert_eq!(
        b.sleepers.0.load(SeqCst),
        0,
        "a dropped future leaves no entry"
    );
    let waiters: Vec<_> = (0..6)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || block_on(b.wait_beyond(0)))
        })
        .collect();
    while b.sleepers.0.load(SeqCst) < 6 {
        thread::yield_now();
    }
    b.append_raw(0, b"x");
    waiters.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(b.sleepers.0.load(SeqCst), 0);
    block_on(b.wait_beyond(0)); // already satisfied
    let waiter = {
        let b = b.clone();
        thread::spawn(move || block_on(b.wait_beyond(1)))
    };
    thread::sleep(Duration::from_millis(20));
    b.close();
    waiter.join().unwrap();
    block_on(b.wait_beyond(1_000)); // closed: resolves at once
    assert!(b.is_closed());
}

#[test]
fn wait_futures_dropped_while_producing() {
    let rounds: u32 = if cfg!(miri) { 30 } else { 3000 };
    let b = Arc::new(Backlog::new(0, 0, 1));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || {
                for i in 0..rounds {
                    let mut fut = pin!(b.wait_beyond(b.head()));
                    if i.is_multiple_of(2) {
                        _ = block_on(poll_once(fut.as_mut())); // registered, then cancelled
                    } else {
                        block_on(fut); // woken by the producer (or the final close)
                    }
                }
            })
        })
        .collect();
    for _ in 0..rounds * 2 {
        b.append_raw(0, b"x");
        thread::yield_now();
    }
    while !waiters.iter().all(|t| t.is_finished()) {
        b.append_raw(0, b"y");
        thread::yield_now();
    }
    waiters.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(b.sleepers.0.load(SeqCst), 0);
    assert!(b.lock_waiters().entries.is_empty());
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: fds is a valid out-array of two ints.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) },
        0
    );
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn recv_all(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..r as usize]);
    }
}

#[test]
#[cfg_attr(miri, ignore = "sendmsg is not emulated")]
fn send_to_fd_over_socketpair() {
    let (tx, rx) = socketpair();
    let start = 16 * 1024 - 10; // the first send needs two iovecs
    let b = Backlog::new(0, start, 1);
    for db in 0..10 {
        b.append_command(0, db % 3, SET);
    }
    let committed = read_all(&b, start, 4096);
    assert_eq!(b.send_to_fd(start, tx.as_raw_fd(), 5).unwrap(), 5);
    let n = b.send_to_fd(start + 5, tx.as_raw_fd(), usize::MAX).unwrap();
    assert_eq!(5 + n as u64, b.head() - start);
    assert_eq!(
        b.send_to_fd(b.head(), tx.as_raw_fd(), usize::MAX).unwrap(),
        0
    );
    assert_eq!(recv_all(&rx), committed);

    // A peer that does not read: the socket fills and we get WouldBlock, then resume losslessly.
    let b = Backlog::new(1 << 20, 0, 1);
    let small: libc::c_int = 4096;
    // SAFETY: valid socket, option value points at a c_int of the given size.
    unsafe {
        let p = (&small as *const libc::c_int).cast();
        libc::setsockopt(tx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, p, 4);
    }
    let (mut cursor, mut blocked, mut received) = (0u64, false, Vec::new());
    for i in 0..200 {
        b.append_raw(0, &noise(i, 1000));
        match b.send_to_fd(cursor, tx.as_raw_fd(), usize::MAX) {
            Ok(n) => cursor += n as u64,
            Err(SendError::WouldBlock) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(blocked, "the socket never filled");
    while cursor < b.head() {
        received.extend(recv_all(&rx));
        match b.send_to_fd(cursor, tx.as_raw_fd(), usize::MAX) {
            Ok(n) => cursor += n as u64,
            Err(SendError::WouldBlock) => {}
            Err(e) => panic!("{e}"),
        }
    }
    received.extend(recv_all(&rx));
    assert_eq!(received, read_all(&b, 0, 1 << 16));
    // A cursor inside the safety margin is refused before anything is sent.
    b.append_raw(0, &noise(9, b.capacity()));
    assert!(matches!(
        b.send_to_fd(b.tail(), tx.as_raw_fd(), 10),
        Err(SendError::Overrun)
    ));
    assert!(b
        .send_to_fd(b.tail() + b.safety_margin() as u64, tx.as_raw_fd(), 10)
        .is_ok());
}

// ---- multi-threaded stress ----
//
// Producer p appends records with append_command(_parts) into db `p` (even seq) or `1500 + p` (odd
// seq, which always needs a SELECT). A record: '#', payload len u16, producer u8, seq u32, payload,
// FNV-1a checksum u32 of everything before it. Readers parse the stream and check every record,
// the SELECT before it, and that each producer's sequence numbers arrive consecutively.

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn record(p: u8, seq: u32) -> (Vec<u8>, Vec<u8>, [u8; 4]) {
    let h = fnv(&[p, seq as u8, (seq >> 8) as u8]);
    // Mostly short commands, now and then a long one (a longer copy window for the publication race).
    let len = if h.is_multiple_of(64) {
        1000 + (h >> 8) % 2000
    } else {
        h % 300
    } as u16;
    let mut head = vec![b'#'];
    head.extend(len.to_le_bytes());
    head.push(p);
    head.extend(seq.to_le_bytes());
    let payload = noise(u64::from(seq) << 8 | u64::from(p), len as usize);
    let sum = fnv(&[&head[..], &payload[..]].concat()).to_le_bytes();
    (head, payload, sum)
}

fn db_for(p: u8, seq: u32) -> u32 {
    if seq.is_multiple_of(2) {
        u32::from(p)
    } else {
        1500 + u32::from(p)
    }
}

struct Checker {
    buf: Vec<u8>,
    at: usize,
    db: Option<u32>,
    next_seq: Vec<u32>,
}

impl Checker {
    fn new(producers: usize) -> Checker {
        Checker {
            buf: Vec::new(),
            at: 0,
            db: None,
            next_seq: vec![0; producers],
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while self.parse_one() {}
        if self.at > 1 << 16 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
    }

    fn parse_one(&mut self) -> bool {
        let s = &self.buf[self.at..];
        match s.first() {
            None => false,
            Some(b'*') => {
                let lines: Vec<&[u8]> = s.splitn(6, |&c| c == b'\n').collect();
                if lines.len() < 6 {
                    return false;
                }
                let db: u32 = std::str::from_utf8(lines[4])
                    .unwrap()
                    .trim_end()
                    .parse()
                    .unwrap();
                let used: usize = lines[..5].iter().map(|l| l.len() + 1).sum();
                assert_eq!(&s[..used], select(db), "corrupt SELECT");
                self.db = Some(db);
                self.at += used;
                true
            }
            Some(b'#') => {
                if s.len() < 8 {
                    return false;
                }
                let len = u16::from_le_bytes([s[1], s[2]]) as usize;
                if s.len() < 12 + len {
                    return false;
                }
                let (p, seq) = (s[3], u32::from_le_bytes(s[4..8].try_into().unwrap()));
                let sum = u32::from_le_bytes(s[8 + len..12 + len].try_into().unwrap());
                assert_eq!(fnv(&s[..8 + len]), sum, "corrupt record");
                assert_eq!(seq, self.next_seq[p as usize], "producer {p} out of order");
                assert_eq!(self.db, Some(db_for(p, seq)), "record without its SELECT");
                self.next_seq[p as usize] += 1;
                self.at += 12 + len;
                true
            }
            Some(c) => panic!("corrupt stream: byte {c}"),
        }
    }
}

struct Stress {
    producers: usize,
    records: u32,
    capacity: usize,
    start: u64,
    readers: usize,
    lossy_readers: bool,
    /// Capacities the ring is resized to while producers run, one each time the stream grows by
    /// `resize_every` bytes. Never below `capacity` (the flow control assumes the first ring's).
    resizes: &'static [usize],
    resize_every: u64,
}

fn stress(cfg: Stress) {
    let b = Arc::new(Backlog::new(cfg.capacity, cfg.start, cfg.producers));
    let cap = b.capacity() as u64;
    // Test-level flow control: producers reserve within `slack` of the slowest checked reader, so
    // that all producers together (records are under 3100 bytes with their SELECT) stay in the ring.
    let slack = cap - cfg.producers as u64 * 3100;
    assert!(slack >= cap / 8);
    let progress: Arc<Vec<AtomicU64>> = Arc::new(
        (0..cfg.readers)
            .map(|_| AtomicU64::new(cfg.start))
            .collect(),
    );
    let producing = Arc::new(AtomicBool::new(true));
    let resizer = {
        let (b, producing) = (b.clone(), producing.clone());
        thread::spawn(move || {
            let mut done = 0;
            for (i, &capacity) in cfg.resizes.iter().enumerate() {
                let at = cfg.start + (i as u64 + 1) * cfg.resize_every;
                while b.latest().head() < at {
                    if !producing.load(Acquire) {
                        return done;
                    }
                    thread::yield_now();
                }
                let next = b.latest().resize(capacity);
                assert_eq!(next.capacity(), Backlog::rounded_capacity(capacity));
                done += 1;
            }
            done
        })
    };
    let producers: Vec<_> = (0..cfg.producers)
        .map(|p| {
            let (mut b, progress) = (b.clone(), progress.clone());
            thread::spawn(move || {
                for seq in 0..cfg.records {
                    // Odd producers keep appending through the first ring (redirected along its
                    // successors), even ones move to the newest.
                    if p % 2 == 0 && b.is_closed() {
                        b = b.latest();
                    }
                    while b
                        .latest()
                        .reserved_end()
                        .saturating_sub(progress.iter().map(|c| c.load(Acquire)).min().unwrap())
                        > slack
                    {
                        thread::yield_now();
                    }
                    let (head, payload, sum) = record(p as u8, seq);
                    let db = db_for(p as u8, seq);
                    if seq % 3 == 0 {
                        b.append_command_parts(p, db, &[&head, &payload, &sum]);
                    } else {
                        b.append_command(p, db, &[&head[..], &payload[..], &sum[..]].concat());
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..cfg.readers)
        .map(|r| {
            let (mut b, progress) = (b.clone(), progress.clone());
            thread::spawn(move || {
                // Stops throttling the producers when this reader ends, even by a panic.
                struct Done<'a>(&'a AtomicU64);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(u64::MAX, Release);
                    }
                }
                let _done = Done(&progress[r]);
                let mut checker = Checker::new(cfg.producers);
                let mut all = Vec::new();
                let mut buf = vec![0u8; [4096, 777, 65536][r % 3]];
                let mut cursor = cfg.start;
                loop {
                    match b.copy_out(cursor, &mut buf) {
                        Ok(0) if b.is_closed() && b.head() == cursor => match b.successor() {
                            // Resized: the same positions continue in the successor.
                            Some(next) => b = next,
                            None => break,
                        },
                        Ok(0) => block_on(b.wait_beyond(cursor)),
                        Ok(n) => {
                            checker.feed(&buf[..n]);
                            if r == 0 {
                                all.extend_from_slice(&buf[..n]);
                            }
                            cursor += n as u64;
                            progress[r].store(cursor, Release);
                        }
                        Err(Overrun) => panic!("flow-controlled reader {r} overrun"),
                    }
                }
                assert!(
                    checker.next_seq.iter().all(|&s| s == cfg.records),
                    "reader {r} missed records"
                );
                all
            })
        })
        .collect();
    // Not flow-controlled: a slow reader that must be overrun, and one racing the writers at the tail.
    let lossy: Vec<_> = (0..if cfg.lossy_readers { 2 } else { 0 })
        .map(|kind| {
            let mut b = b.clone();
            thread::spawn(move || {
                let (mut checker, mut cursor, mut buf) =
                    (Checker::new(cfg.producers), cfg.start, [0u8; 4096]);
                let (mut samples, mut overruns) = (Vec::new(), 0u64);
                loop {
                    if b.is_closed() {
                        match b.successor() {
                            Some(next) => b = next,
                            None => break,
                        }
                    }
                    if kind == 0 {
                        match b.copy_out(cursor, &mut buf[..256]) {
                            Ok(n) => {
                                checker.feed(&buf[..n]);
                                cursor += n as u64;
                                thread::sleep(Duration::from_micros(300));
                            }
                            Err(Overrun) => return (samples, 1),
                        }
                    } else {
                        let pos = b.tail() + samples.len() as u64 % 97;
                        match b.copy_out(pos, &mut buf) {
                            Ok(n) if n > 0 && samples.len() < 50_000 => {
                                samples.push((pos, n, fnv(&buf[..n])))
                            }
                            Ok(_) => thread::yield_now(),
                            Err(Overrun) => overruns += 1,
                        }
                    }
                }
                (samples, overruns)
            })
        })
        .collect();
    producers.into_iter().for_each(|t| t.join().unwrap());
    producing.store(false, Release);
    let resized = resizer.join().unwrap();
    assert_eq!(
        resized,
        cfg.resizes.len(),
        "the stream ended before every resize"
    );
    let b = b.latest();
    b.close();
    let streams: Vec<Vec<u8>> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(b.head(), cfg.start + streams[0].len() as u64);
    eprintln!(
        "{} bytes, {} laps of the ring",
        b.head() - cfg.start,
        (b.head() - cfg.start) / cap
    );
    assert_eq!(b.head(), b.reserved_end());
    let lossy: Vec<_> = lossy.into_iter().map(|t| t.join().unwrap()).collect();
    if let [(_, slow_overrun), (samples, edge_overruns)] = &lossy[..] {
        assert_eq!(*slow_overrun, 1, "the slow reader was never overrun");
        for &(pos, n, sum) in samples {
            let at = (pos - cfg.start) as usize;
            assert_eq!(
                fnv(&streams[0][at..at + n]),
                sum,
                "torn copy accepted at {pos}"
            );
        }
        assert!(!samples.is_empty());
        eprintln!(
            "edge reader: {} validated copies, {edge_overruns} overruns",
            samples.len()
        );
    }
}

/// The native stress run: four producers, three checked readers and the two lossy ones.
fn stress_natively(resizes: &'static [usize], resize_every: u64) {
    stress(Stress {
        producers: 4,
        records: if cfg!(debug_assertions) {
            9_000
        } else {
            100_000
        },
        capacity: 32 * 1024,
        start: 1 << 40,
        readers: 3,
        lossy_readers: true,
        resizes,
        resize_every,
    });
}

#[test]
#[cfg_attr(miri, ignore = "see stress_miri_*")]
fn stress_producers_and_readers() {
    stress_natively(&[], 0);
}

#[test]
#[cfg_attr(miri, ignore = "see stress_miri_*")]
fn stress_producers_and_readers_across_resizes() {
    const K: usize = 1024;
    stress_natively(&[64 * K, 32 * K, 256 * K, 32 * K, 32 * K, 128 * K], 200_000);
}

/// Small enough for Miri: three producers lap a 16 KiB ring, two readers flow-controlled.
fn stress_small_ring(resizes: &'static [usize], resize_every: u64) {
    stress(Stress {
        producers: 3,
        records: 40,
        capacity: 0,
        start: 16 * 1024 - 100,
        readers: 2,
        lossy_readers: false,
        resizes,
        resize_every,
    });
}

#[test]
fn stress_miri_lapping() {
    stress_small_ring(&[], 0);
}

/// Producers, readers and a resizer race: the ring is grown, shrunk back and grown again while
/// records keep coming.
#[test]
fn stress_miri_resizing() {
    const K: usize = 1024;
    stress_small_ring(&[32 * K, 16 * K, 64 * K], 4000);
}

/// Small enough for Miri. The ring holds everything (one wrap, never lapped), so flow control never
/// engages and producers race each other freely: the publication protocol alone keeps readers safe.
#[test]
fn stress_miri_free_running() {
    stress(Stress {
        producers: 3,
        records: 60,
        capacity: 256 * 1024,
        start: (1 << 18) - 1000,
        readers: 2,
        lossy_readers: false,
        resizes: &[],
        resize_every: 0,
    });
}
