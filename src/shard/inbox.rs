//! A multi-producer, single-consumer queue that any thread may push to and
//! one shard's executor drains asynchronously.
//!
//! Owns only the queue and the parked consumer's waker. Knows nothing of
//! what the messages mean. Producers pay no syscall while the consumer is
//! busy: they wake it only when it has parked itself (`parked` is set).

use crossbeam::queue::SegQueue;
use std::future::poll_fn;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

pub struct Inbox<T> {
    queue: SegQueue<T>,
    /// Set by the consumer just before it sleeps; a producer that sees it
    /// clears it and wakes the stored waker.
    parked: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            queue: SegQueue::new(),
            parked: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }
}

impl<T> Inbox<T> {
    pub fn push(&self, msg: T) {
        self.queue.push(msg);
        // Pairs with the fence in `recv`: either we see `parked`, or the
        // consumer sees our message when it re-checks the queue.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Takes a message without waiting.
    pub fn try_pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Waits for the next message. Only one task may wait at a time.
    pub async fn recv(&self) -> T {
        poll_fn(|cx| {
            if let Some(m) = self.queue.pop() {
                return Poll::Ready(m);
            }
            *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            self.parked.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            match self.queue.pop() {
                Some(m) => {
                    self.parked.store(false, Ordering::Relaxed);
                    Poll::Ready(m)
                }
                None => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn delivers_everything_from_many_threads() {
        let inbox = Arc::new(Inbox::<u64>::default());
        let producers: Vec<_> = (0..4)
            .map(|t| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        inbox.push(t * 1_000_000 + i);
                    }
                })
            })
            .collect();
        let consumer = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                futures_lite::future::block_on(async {
                    let mut sum = 0u64;
                    for _ in 0..40_000 {
                        sum += inbox.recv().await;
                    }
                    sum
                })
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        let expected: u64 = (0..4u64)
            .map(|t| (0..10_000u64).map(|i| t * 1_000_000 + i).sum::<u64>())
            .sum();
        assert_eq!(consumer.join().unwrap(), expected);
    }
}
