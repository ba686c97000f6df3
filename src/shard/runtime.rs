//! Starting the shard executors: one glommio executor per shard, pinned one
//! per core when there are enough cores, with io_uring buffer memory sized
//! to fit the host's locked-memory limit.
//!
//! This is the only place that builds executors; everything else sees
//! shards through the parent module.

use glommio::{LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// glommio refuses to start an executor below this RLIMIT_MEMLOCK.
const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// More registered I/O memory than this buys us nothing: sockets do not use
/// it and file I/O streams in small chunks.
const MAX_IO_MEMORY: u64 = 2 * 1024 * 1024;
const MIN_IO_MEMORY: u64 = 64 * 1024;

/// Number of cores this process may run on.
pub fn usable_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Reads RLIMIT_MEMLOCK (soft, hard); `u64::MAX` for unlimited.
fn memlock_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other effects.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 {
        return (0, 0);
    }
    let conv = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v
        }
    };
    (conv(lim.rlim_cur), conv(lim.rlim_max))
}

/// Raises the soft RLIMIT_MEMLOCK towards the hard one when it is below what
/// glommio needs. Returns the resulting soft limit.
fn raise_memlock(wanted: u64) -> u64 {
    let (soft, hard) = memlock_limit();
    if soft >= wanted {
        return soft;
    }
    let target = wanted.min(hard);
    if target > soft {
        let lim = libc::rlimit {
            rlim_cur: target as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass; failure is reported by rc.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } == 0 {
            return target;
        }
    }
    soft
}

/// How much io_uring buffer memory each executor gets so that all of them
/// fit in the locked-memory limit. Each executor registers its buffer with
/// three rings, and a non-root user is charged for each registration.
pub fn io_memory_per_shard(memlock: u64, shards: usize) -> usize {
    if memlock == u64::MAX {
        return MAX_IO_MEMORY as usize;
    }
    let per = memlock / (3 * shards.max(1) as u64 + 1);
    per.clamp(MIN_IO_MEMORY, MAX_IO_MEMORY) as usize & !4095
}

#[derive(Debug)]
pub enum StartError {
    MemLock { limit: u64 },
    Spawn(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::MemLock { limit } => write!(
                f,
                "The locked-memory limit (RLIMIT_MEMLOCK) is {limit} bytes; io_uring needs at least {GLOMMIO_MIN_MEMLOCK}. Raise it with 'ulimit -l 8192' or, under systemd, LimitMEMLOCK=8M."
            ),
            StartError::Spawn(e) => write!(f, "Could not start the shard executors: {e}"),
        }
    }
}

/// What was decided when starting, for the startup log.
pub struct Started {
    pub handles: PoolThreadHandles<()>,
    pub io_memory: usize,
    pub memlock: u64,
    pub pinned: bool,
}

/// The CPUs this process may run on (`taskset`, a container's cpuset), as
/// (a subset of) the online CPUs glommio places executors on. Without it
/// glommio picks among all online CPUs: under `taskset -c 1` a shard ran
/// on CPU 0, and in a cpuset lacking the CPU it picked, start-up failed.
/// `None` (glommio's own choice) if the mask cannot be read.
fn allowed_cpu_set() -> Option<glommio::CpuSet> {
    let allowed = allowed_cpus()?;
    let set = glommio::CpuSet::online()
        .ok()?
        .filter(|l| allowed.contains(&l.cpu));
    (!set.is_empty()).then_some(set)
}

/// The calling thread's CPU affinity mask (inherited from the process).
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; an all-zero value is a valid empty set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most `size_of::<cpu_set_t>()`
    // bytes into the set we own; failure is reported by the return value.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut mask) };
    if rc != 0 {
        return None;
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set in bounds (i < CPU_SETSIZE).
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &mask) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// Starts `shards` executors; each runs `make(shard_id)`.
pub fn start<G, F>(shards: usize, make: G) -> Result<Started, StartError>
where
    G: FnOnce(usize) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let memlock = raise_memlock(GLOMMIO_MIN_MEMLOCK.max(8 * 1024 * 1024));
    if memlock < GLOMMIO_MIN_MEMLOCK {
        return Err(StartError::MemLock { limit: memlock });
    }
    let io_memory = io_memory_per_shard(memlock, shards);
    let pinned = shards <= usable_cores();
    let placement = if pinned {
        PoolPlacement::MaxSpread(shards, allowed_cpu_set())
    } else {
        PoolPlacement::Unbound(shards)
    };
    let next_id = Arc::new(AtomicUsize::new(0));
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("cascade-shard")
        .io_memory(io_memory)
        .on_all_shards(move || {
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            make(id)
        })
        .map_err(|e| StartError::Spawn(e.to_string()))?;
    Ok(Started {
        handles,
        io_memory,
        memlock,
        pinned,
    })
}

/// Ends the process if a shard's thread ends. Shards run until the
/// process exits, so a thread that ends is an executor that could not be
/// built (io_uring setup, typically over the locked-memory limit with many
/// shards) or one that failed: the other shards would wait for it forever
/// (no "Server initialized", SIGTERM unanswered). `fatal` logs and exits.
pub fn watch(started: Started, fatal: impl FnOnce(String) + Send + 'static) {
    let handles = started.handles;
    let memlock = started.memlock;
    let spawned = std::thread::Builder::new()
        .name("cascade-watch".into())
        .spawn(move || loop {
            if handles.handles().iter().any(|h| h.is_finished()) {
                fatal(format!(
                    "A shard stopped: its executor could not start or failed. \
                     With many shards under a low locked-memory limit (RLIMIT_MEMLOCK is {memlock} bytes), \
                     raise it with 'ulimit -l' or LimitMEMLOCK=, or lower 'shards'."
                ));
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        });
    if let Err(e) = spawned {
        tracing::warn!("Can't start the shard watcher thread: {e}");
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn allowed_cpus_are_the_ones_we_run_on() {
        let cpus = allowed_cpus().expect("readable affinity mask");
        assert!(!cpus.is_empty());
        assert!(cpus.len() >= usable_cores().min(cpus.len()));
        assert!(allowed_cpu_set().is_some_and(|s| s.len() == cpus.len()));
    }

    use super::*;

    #[test]
    fn io_memory_fits_a_stock_8mb_limit() {
        let limit = 8 * 1024 * 1024;
        for shards in 1..=64 {
            let per = io_memory_per_shard(limit, shards) as u64;
            assert!(per >= MIN_IO_MEMORY);
            assert_eq!(per % 4096, 0);
            if shards <= 40 {
                assert!(3 * per * shards as u64 <= limit, "shards={shards}");
            }
        }
        assert_eq!(io_memory_per_shard(u64::MAX, 2), MAX_IO_MEMORY as usize);
    }
}
