//! One RDB byte stream read by several consumers at once, without a copy
//! per consumer and without holding the whole file.
//!
//! The snapshot encoder (a plain thread) pushes `Bytes` chunks through a
//! [`FanoutSink`]; every [`ChunkReader`] (a replica's task, on any shard)
//! receives the same chunks — cloning a `Bytes` is a reference count, not a
//! copy. A chunk is dropped as soon as the slowest reader has taken it, and
//! the encoder blocks while `window` bytes are buffered and not yet taken
//! by every reader, so memory is bounded by the window whatever the
//! dataset's size. When the last reader goes away the encoder's next write
//! fails, which aborts the snapshot (nobody is left to receive it).
//!
//! Owns only the chunk queue and the readers' positions; knows nothing of
//! sockets, replicas or the RDB format.

use super::rdb::RdbSink;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Size of the chunks a [`FanoutSink`] cuts the stream into.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The shared queue (see the module doc).
pub struct ChunkStream {
    state: Mutex<State>,
    /// Signalled when readers took chunks (room in the window) or left.
    room: Condvar,
    window: usize,
}

struct State {
    /// Chunks not yet taken by every reader; `chunks[0]` has index `base`.
    chunks: VecDeque<Bytes>,
    base: u64,
    buffered: usize,
    /// Reader id and the index of the next chunk it will take.
    readers: Vec<(u64, u64)>,
    next_reader_id: u64,
    /// Set once by the producer: the stream's total length, or why it failed.
    end: Option<Result<u64, String>>,
    waiters: Vec<Waker>,
}

impl ChunkStream {
    /// A stream that buffers at most about `window` bytes ahead of its
    /// slowest reader.
    pub fn new(window: usize) -> Arc<ChunkStream> {
        Arc::new(ChunkStream {
            state: Mutex::new(State {
                chunks: VecDeque::new(),
                base: 0,
                buffered: 0,
                readers: Vec::new(),
                next_reader_id: 0,
                end: None,
                waiters: Vec::new(),
            }),
            room: Condvar::new(),
            window: window.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A reader from the first chunk on, or `None` once the first chunk has
    /// already been released (a late reader cannot be served).
    pub fn subscribe(self: &Arc<Self>) -> Option<ChunkReader> {
        let mut st = self.lock();
        if st.base > 0 {
            return None;
        }
        let id = st.next_reader_id;
        st.next_reader_id += 1;
        st.readers.push((id, 0));
        Some(ChunkReader {
            stream: self.clone(),
            id,
            next: 0,
        })
    }

    /// Readers still attached.
    pub fn readers(&self) -> usize {
        self.lock().readers.len()
    }

    /// Appends a chunk; blocks the calling (non-executor) thread while the
    /// window is full. Fails when no reader is left.
    fn push(&self, chunk: Bytes) -> std::io::Result<()> {
        let mut st = self.lock();
        loop {
            if st.readers.is_empty() {
                return Err(std::io::Error::other("no consumer left for the snapshot"));
            }
            if st.buffered < self.window {
                break;
            }
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.buffered += chunk.len();
        st.chunks.push_back(chunk);
        let woken = std::mem::take(&mut st.waiters);
        drop(st);
        woken.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Ends the stream: `Ok(total bytes)` or the producer's error.
    pub fn finish(&self, end: Result<u64, String>) {
        let mut st = self.lock();
        if st.end.is_none() {
            st.end = Some(end);
        }
        let woken = std::mem::take(&mut st.waiters);
        drop(st);
        woken.into_iter().for_each(Waker::wake);
    }

    /// Drops the chunks every reader has taken.
    fn release_taken(&self, st: &mut State) {
        let min = st.readers.iter().map(|r| r.1).min().unwrap_or(u64::MAX);
        let mut freed = false;
        while st.base < min {
            let Some(c) = st.chunks.pop_front() else {
                break;
            };
            st.buffered -= c.len();
            st.base += 1;
            freed = true;
        }
        if freed || st.readers.is_empty() {
            self.room.notify_all();
        }
    }
}

/// What a reader gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Chunk(Bytes),
    /// The stream ended normally after this many bytes.
    End(u64),
    /// The producer failed.
    Failed(String),
}

/// One consumer's position in a [`ChunkStream`]. Dropping it detaches the
/// consumer (and frees what only it still needed).
pub struct ChunkReader {
    stream: Arc<ChunkStream>,
    id: u64,
    next: u64,
}

impl ChunkReader {
    /// The next chunk, waiting (asynchronously, from any thread) for the
    /// producer when needed.
    pub fn next_chunk(&mut self) -> impl Future<Output = Next> + '_ {
        NextChunk { reader: self }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        let stream = self.stream.clone();
        let mut st = stream.lock();
        let idx = self.next.saturating_sub(st.base) as usize;
        if let Some(c) = st.chunks.get(idx).cloned() {
            self.next += 1;
            let me = self.id;
            if let Some(r) = st.readers.iter_mut().find(|r| r.0 == me) {
                r.1 = self.next;
            }
            stream.release_taken(&mut st);
            return Poll::Ready(Next::Chunk(c));
        }
        match &st.end {
            Some(Ok(total)) => Poll::Ready(Next::End(*total)),
            Some(Err(e)) => Poll::Ready(Next::Failed(e.clone())),
            None => {
                st.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        let stream = self.stream.clone();
        let mut st = stream.lock();
        let me = self.id;
        st.readers.retain(|r| r.0 != me);
        stream.release_taken(&mut st);
    }
}

struct NextChunk<'a> {
    reader: &'a mut ChunkReader,
}

impl Future for NextChunk<'_> {
    type Output = Next;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        self.reader.poll_next(cx)
    }
}

/// The encoder's side: cuts the byte stream into [`CHUNK_BYTES`] chunks.
pub struct FanoutSink {
    stream: Arc<ChunkStream>,
    current: BytesMut,
    total: u64,
}

impl FanoutSink {
    pub fn new(stream: Arc<ChunkStream>) -> FanoutSink {
        FanoutSink {
            stream,
            current: BytesMut::with_capacity(CHUNK_BYTES),
            total: 0,
        }
    }

    /// Pushes what is buffered and ends the stream; returns its length.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if !self.current.is_empty() {
            let c = self.current.split().freeze();
            self.stream.push(c)?;
        }
        self.stream.finish(Ok(self.total));
        Ok(self.total)
    }
}

impl RdbSink for FanoutSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.total += bytes.len() as u64;
        self.current.extend_from_slice(bytes);
        if self.current.len() >= CHUNK_BYTES {
            let c = self.current.split().freeze();
            self.current.reserve(CHUNK_BYTES);
            self.stream.push(c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Polls a reader to completion from a plain thread (spinning on a
    /// flag waker), collecting every chunk.
    fn drain(mut r: ChunkReader) -> (Vec<u8>, Next) {
        let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        loop {
            match r.poll_next(&mut cx) {
                Poll::Ready(Next::Chunk(c)) => out.extend_from_slice(&c),
                Poll::Ready(end) => return (out, end),
                Poll::Pending => {
                    while !flag.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    #[test]
    fn every_reader_gets_every_byte_within_the_window() {
        let stream = ChunkStream::new(2 * CHUNK_BYTES);
        let readers: Vec<ChunkReader> = (0..3).map(|_| stream.subscribe().unwrap()).collect();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let producer = {
            let stream = stream.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let mut sink = FanoutSink::new(stream.clone());
                let mut max_buffered = 0;
                for piece in data.chunks(10_007) {
                    sink.write(piece).unwrap();
                    max_buffered = max_buffered.max(stream.lock().buffered);
                }
                (sink.finish().unwrap(), max_buffered)
            })
        };
        let consumers: Vec<_> = readers
            .into_iter()
            .map(|r| std::thread::spawn(move || drain(r)))
            .collect();
        let (total, max_buffered) = producer.join().unwrap();
        assert_eq!(total, data.len() as u64);
        // The window may be exceeded by at most the chunk that filled it.
        assert!(max_buffered <= 3 * CHUNK_BYTES, "{max_buffered}");
        for c in consumers {
            let (bytes, end) = c.join().unwrap();
            assert_eq!(end, Next::End(data.len() as u64));
            assert!(bytes == data, "a reader got different bytes");
        }
        assert_eq!(stream.lock().buffered, 0);
        assert!(stream.subscribe().is_none(), "late reader after release");
    }

    #[test]
    fn a_reader_leaving_unblocks_the_producer_and_the_last_aborts_it() {
        let stream = ChunkStream::new(CHUNK_BYTES);
        let slow = stream.subscribe().unwrap();
        let fast = stream.subscribe().unwrap();
        let producer = {
            let stream = stream.clone();
            std::thread::spawn(move || {
                let mut sink = FanoutSink::new(stream);
                let piece = vec![1u8; 4096];
                for _ in 0..10_000 {
                    sink.write(&piece)?;
                }
                sink.finish()
            })
        };
        // The fast reader drains everything while the slow one never reads:
        // the producer is held by the window until the slow one leaves.
        let consumer = std::thread::spawn(move || drain(fast));
        while stream.lock().buffered < CHUNK_BYTES {
            std::thread::yield_now();
        }
        drop(slow);
        let (bytes, end) = consumer.join().unwrap();
        assert_eq!(bytes.len(), 4096 * 10_000);
        assert_eq!(end, Next::End(4096 * 10_000));
        assert!(producer.join().unwrap().is_ok());

        let stream = ChunkStream::new(CHUNK_BYTES);
        let only = stream.subscribe().unwrap();
        drop(only);
        let mut sink = FanoutSink::new(stream.clone());
        let err = sink.write(&vec![0u8; CHUNK_BYTES]).unwrap_err();
        assert!(err.to_string().contains("no consumer"));
    }

    #[test]
    fn a_failed_producer_is_reported_to_readers() {
        let stream = ChunkStream::new(CHUNK_BYTES);
        let r = stream.subscribe().unwrap();
        let mut sink = FanoutSink::new(stream.clone());
        sink.write(&vec![7u8; CHUNK_BYTES + 1]).unwrap();
        stream.finish(Err("disk full".into()));
        let (bytes, end) = drain(r);
        assert_eq!(bytes.len(), CHUNK_BYTES + 1);
        assert_eq!(end, Next::Failed("disk full".into()));
    }
}
