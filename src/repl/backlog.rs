//! Temporary stand-in for the lock-free backlog ring (same API), so the
//! replication code can be built and tested while the ring lands.

use std::future::poll_fn;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun;

#[derive(Debug)]
pub enum SendError {
    WouldBlock,
    Overrun,
    Io(std::io::Error),
}

struct Inner {
    buf: Vec<u8>,
    start: u64,
    head: u64,
    db: Option<u32>,
    waiters: Vec<Waker>,
}

pub struct Backlog {
    cap: usize,
    inner: Mutex<Inner>,
    closed: AtomicBool,
}

fn select_cmd(db: u32) -> Vec<u8> {
    let d = db.to_string();
    format!("*2\r\n$6\r\nSELECT\r\n${}\r\n{}\r\n", d.len(), d).into_bytes()
}

impl Backlog {
    pub fn new(capacity: usize, start: u64, _producers: usize) -> Backlog {
        let cap = capacity.max(16 * 1024).next_power_of_two();
        Backlog {
            cap,
            inner: Mutex::new(Inner {
                buf: vec![0; cap],
                start,
                head: start,
                db: None,
                waiters: Vec::new(),
            }),
            closed: AtomicBool::new(false),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    pub fn head(&self) -> u64 {
        self.lock().head
    }
    pub fn tail(&self) -> u64 {
        let g = self.lock();
        g.start.max(g.head.saturating_sub(self.cap as u64))
    }
    pub fn histlen(&self) -> u64 {
        self.head() - self.tail()
    }
    fn push(&self, g: &mut Inner, bytes: &[u8]) {
        for &b in bytes {
            let i = (g.head % self.cap as u64) as usize;
            g.buf[i] = b;
            g.head += 1;
        }
    }
    fn wake(g: &mut Inner) {
        for w in g.waiters.drain(..) {
            w.wake();
        }
    }
    pub fn append_command(&self, producer: usize, db: u32, cmd: &[u8]) -> u64 {
        self.append_command_parts(producer, db, &[cmd])
    }
    pub fn append_command_parts(&self, _producer: usize, db: u32, parts: &[&[u8]]) -> u64 {
        let mut g = self.lock();
        if g.db != Some(db) {
            let s = select_cmd(db);
            self.push(&mut g, &s);
            g.db = Some(db);
        }
        for p in parts {
            self.push(&mut g, p);
        }
        Self::wake(&mut g);
        g.head
    }
    pub fn append_raw(&self, _producer: usize, bytes: &[u8]) -> u64 {
        let mut g = self.lock();
        self.push(&mut g, bytes);
        Self::wake(&mut g);
        g.head
    }
    pub fn forget_db(&self) {
        self.lock().db = None;
    }
    pub fn copy_out(&self, from: u64, buf: &mut [u8]) -> Result<usize, Overrun> {
        let g = self.lock();
        let tail = g.start.max(g.head.saturating_sub(self.cap as u64));
        if from < tail {
            return Err(Overrun);
        }
        let n = ((g.head - from) as usize).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = g.buf[((from + i as u64) % self.cap as u64) as usize];
        }
        Ok(n)
    }
    pub fn send_to_fd(&self, from: u64, fd: RawFd, max: usize) -> Result<usize, SendError> {
        let mut tmp = vec![0u8; max.min(256 * 1024)];
        let n = self
            .copy_out(from, &mut tmp)
            .map_err(|_| SendError::Overrun)?;
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `tmp[..n]` is a live buffer; fd is the caller's socket.
        let r = unsafe {
            libc::send(
                fd,
                tmp.as_ptr() as *const libc::c_void,
                n,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(SendError::WouldBlock);
            }
            return Err(SendError::Io(e));
        }
        Ok(r as usize)
    }
    pub fn wait_beyond(&self, pos: u64) -> impl std::future::Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            let mut g = self.lock();
            if g.head > pos {
                return Poll::Ready(());
            }
            g.waiters.push(cx.waker().clone());
            Poll::Pending
        })
    }
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        Self::wake(&mut self.lock());
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
