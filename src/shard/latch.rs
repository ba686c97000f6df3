//! A flag that is set once and that any number of tasks, on any shard, can
//! wait for: "this task has ended".
//!
//! Owns only the flag and the wakers of its waiters ([`Waiters`], which
//! [`super::gate`] uses too); glommio wakers may be woken from any thread.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The tasks waiting for one condition, on any thread (shared with
/// [`super::gate`]).
#[derive(Default)]
pub(super) struct Waiters(Vec<Waker>);

impl Waiters {
    pub(super) const fn new() -> Waiters {
        Waiters(Vec::new())
    }

    /// Registers the task polling with `cx`, once however often it polls.
    pub(super) fn register(&mut self, cx: &Context<'_>) {
        if !self.0.iter().any(|w| w.will_wake(cx.waker())) {
            self.0.push(cx.waker().clone());
        }
    }

    /// Takes every waiter, to be woken with [`wake_all`] once the lock
    /// guarding the condition is released.
    pub(super) fn take(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.0)
    }
}

pub(super) fn wake_all(waiters: Vec<Waker>) {
    for w in waiters {
        w.wake();
    }
}

#[derive(Default)]
struct State {
    set: bool,
    waiters: Waiters,
}

/// The waiting side; clone it for each waiter.
#[derive(Clone, Default)]
pub struct Latch(Arc<Mutex<State>>);

/// Sets its latch when dropped, so the latch is set however its owner ends
/// (returns, is cancelled, panics).
pub struct SetOnDrop(Latch);

impl Latch {
    /// A latch and the guard that will set it.
    pub fn new() -> (Latch, SetOnDrop) {
        let latch = Latch::default();
        (latch.clone(), SetOnDrop(latch))
    }

    pub fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).set
    }

    /// Waits until the latch is set.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if state.set {
                return Poll::Ready(());
            }
            state.waiters.register(cx);
            Poll::Pending
        })
        .await
    }
}

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        let waiters = {
            let mut state = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
            state.set = true;
            state.waiters.take()
        };
        wake_all(waiters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_waiter_on_every_thread_sees_the_set() {
        let (latch, guard) = Latch::new();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let l = latch.clone();
                std::thread::spawn(move || futures_lite::future::block_on(l.wait()))
            })
            .collect();
        assert!(!latch.is_set());
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(guard);
        for w in waiters {
            w.join().expect("waiter");
        }
        assert!(latch.is_set());
        // Waiting on a set latch returns at once.
        futures_lite::future::block_on(latch.wait());
    }
}
