//! Transparent huge pages for this process, per `disable-thp`, set once at
//! start-up before the shards allocate.
//!
//! Redis turns THP off for itself (`prctl(PR_SET_THP_DISABLE)`) only when
//! the kernel's mode is `always`, because its allocator never asks for huge
//! pages otherwise. Ours does (mimalloc advises huge pages on its arenas),
//! so with `disable-thp yes` the flag is set whatever the mode, which gives
//! the process the memory Redis would have. Why it matters beyond fork
//! (which we never do): every first touch of a huge page zeroes 2 MB. A
//! buffer that is freed and reallocated (a replica's read buffers under a
//! 4 KB-value stream) then costs a fresh 2 MB page each time its memory
//! was handed back to the kernel; measured on a replica applying 4 KB SETs
//! at `-P 16`, page zeroing took 40-50% of its CPU.
//!
//! Owns nothing but that one call; touches no shard.

use crate::log::{self, LogLevel};

const THP_MODE: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// Whether the kernel's THP mode is `always` (Redis's test).
fn kernel_thp_always() -> bool {
    std::fs::read_to_string(THP_MODE).is_ok_and(|s| s.contains("[always]"))
}

/// Applies `disable-thp`: with `yes`, huge pages are turned off for this
/// process. Logs Redis's warning when THP stays on in `always` mode.
pub fn apply(disable: bool) {
    let disabled = disable && {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and
        // touches no memory of ours; the result is checked.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        rc == 0
    };
    if !disabled && kernel_thp_always() {
        log::write_line(
            LogLevel::Warning,
            "WARNING you have Transparent Huge Pages (THP) support enabled in your kernel. This will create latency and memory usage issues with Redis. To fix this issue run the command 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled' as root, and add it to your /etc/rc.local in order to retain the setting after a reboot. Redis must be restarted after THP is disabled (set to 'madvise' or 'never').",
        );
    }
}
