//! The process allocator: mimalloc (per-thread heaps, so a shard's
//! allocations never take a lock another shard holds), wrapped with byte
//! counters for `INFO memory`'s `used_memory`.
//!
//! Counters are striped per thread (each thread adds to its own cache line)
//! so shards never contend on one atomic; a reader sums the stripes. The peak
//! is sampled by readers and by the shards' cron, not on every allocation.

use crossbeam::utils::CachePadded;
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 16;

pub struct CountingAlloc;

static COUNTS: [CachePadded<AtomicIsize>; STRIPES] =
    [const { CachePadded::new(AtomicIsize::new(0)) }; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static STARTUP: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor, so it is usable from
    // inside the allocator at any point of a thread's life.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn add(delta: isize) {
    let stripe = STRIPE
        .try_with(|s| {
            let mut v = s.get();
            if v == usize::MAX {
                v = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(v);
            }
            v
        })
        .unwrap_or(0);
    COUNTS[stripe].fetch_add(delta, Ordering::Relaxed);
}

// SAFETY: every method forwards to mimalloc unchanged and only
// adds bookkeeping that neither allocates nor panics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Bytes currently allocated by the process (through Rust's allocator).
pub fn allocated_bytes() -> u64 {
    let total = used_bytes();
    PEAK.fetch_max(total, Ordering::Relaxed);
    total
}

/// [`allocated_bytes`] without sampling the peak: only loads, for the
/// `maxmemory` check before commands.
#[inline]
pub fn used_bytes() -> u64 {
    let total: isize = COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    total.max(0) as u64
}

/// Highest value of [`allocated_bytes`] seen so far.
pub fn peak_bytes() -> u64 {
    allocated_bytes().max(PEAK.load(Ordering::Relaxed))
}

/// Records the allocation level once the server is initialised
/// (`used_memory_startup`).
pub fn mark_startup() {
    STARTUP.store(allocated_bytes(), Ordering::Relaxed);
}

pub fn startup_bytes() -> u64 {
    STARTUP.load(Ordering::Relaxed)
}

/// `mem_allocator` in INFO: `mimalloc-<major>.<minor>.<patch>`.
pub fn allocator_name() -> String {
    // SAFETY: mi_version only returns a constant.
    let v = unsafe { libmimalloc_sys::mi_version() };
    format!("mimalloc-{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// Returns the calling thread's free memory to the system where it can
/// (MEMORY PURGE runs it on every shard).
pub fn purge() {
    // SAFETY: mi_collect only walks the calling thread's heap.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
