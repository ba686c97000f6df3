//! A lock for tasks on any shard: one holder at a time, and a waiter
//! yields to its executor instead of blocking the thread.
//!
//! Owns only the held flag and the wakers of its waiters; glommio wakers
//! may be woken from any thread. For rare, long operations (a role
//! change), not for hot paths: a release wakes every waiter and they race
//! for the gate again, so a waiter that was dropped can never strand the
//! others.

use super::latch::{wake_all, Waiters};
use std::future::poll_fn;
use std::sync::Mutex;
use std::task::Poll;

struct State {
    held: bool,
    waiters: Waiters,
}

pub struct Gate(Mutex<State>);

/// Holds the gate until dropped.
pub struct GateGuard<'a>(&'a Gate);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub const fn new() -> Gate {
        Gate(Mutex::new(State {
            held: false,
            waiters: Waiters::new(),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the gate if it is free.
    pub fn try_enter(&self) -> Option<GateGuard<'_>> {
        let mut state = self.state();
        if state.held {
            return None;
        }
        state.held = true;
        Some(GateGuard(self))
    }

    /// Waits until the gate is free, then takes it.
    pub async fn enter(&self) -> GateGuard<'_> {
        poll_fn(|cx| {
            let mut state = self.state();
            if !state.held {
                state.held = true;
                return Poll::Ready(GateGuard(self));
            }
            state.waiters.register(cx);
            Poll::Pending
        })
        .await
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let waiters = {
            let mut state = self.0.state();
            state.held = false;
            state.waiters.take()
        };
        wake_all(waiters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn one_holder_at_a_time_across_threads() {
        let gate = Arc::new(Gate::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let entries = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (gate, inside, entries) = (gate.clone(), inside.clone(), entries.clone());
                std::thread::spawn(move || {
                    futures_lite::future::block_on(async {
                        for _ in 0..2_000 {
                            let _guard = gate.enter().await;
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                            entries.fetch_add(1, Ordering::Relaxed);
                            std::hint::spin_loop();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(entries.load(Ordering::Relaxed), 8_000);
    }

    #[test]
    fn try_enter_fails_while_held_and_succeeds_after() {
        let gate = Gate::new();
        let guard = gate.try_enter().expect("free");
        assert!(gate.try_enter().is_none());
        drop(guard);
        assert!(gate.try_enter().is_some());
    }

    #[test]
    fn a_dropped_waiter_does_not_strand_the_next_one() {
        let gate = Arc::new(Gate::new());
        let held = gate.try_enter().expect("free");
        // A waiter that registers and is then dropped.
        let mut first = Box::pin(gate.enter());
        let waker = futures_lite::future::block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(first.as_mut().poll(&mut cx).is_pending());
        drop(first);
        let other = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                futures_lite::future::block_on(async {
                    drop(gate.enter().await);
                })
            })
        };
        drop(held);
        other.join().unwrap();
    }
}
