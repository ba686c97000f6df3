//! Cache prefetch hints for walks whose next addresses are known ahead
//! (the snapshot's bucket-order walk of a dict).
//!
//! A hint never faults and never changes what a program computes, so a
//! stale or dangling address only wastes the hint.

/// Asks the CPU to bring the cache line holding `p` into all cache levels.
#[inline(always)]
pub fn read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, so the instruction
        // exists on every CPU this binary runs on; a prefetch does not
        // dereference `p` (no fault, no read the program can observe), so
        // any address is allowed.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`read`] for every cache line `value` spans: a hash-table slot of 88
/// bytes always spans two, and the fields a lookup reads first (stored
/// hash, chain link) may sit in either.
#[inline(always)]
pub fn read_value<T>(value: &T) {
    let p = (value as *const T).cast::<u8>();
    read(p);
    let last = p.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
    if (last as usize) / 64 != (p as usize) / 64 {
        read(last);
    }
}

/// [`read`] for the first two cache lines of `bytes` (a small value's
/// whole body).
#[inline(always)]
pub fn read_bytes(bytes: &[u8]) {
    let p = bytes.as_ptr();
    read(p);
    if bytes.len() > 64 {
        read(p.wrapping_add(64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_on_any_address_are_harmless() {
        let v = vec![7u8; 200];
        read_bytes(&v);
        read_bytes(&[]);
        read(std::ptr::null::<u8>());
        read(usize::MAX as *const u8);
        read_value(&[0u64; 11]);
        read_value(&());
        assert_eq!(v.iter().map(|&b| u32::from(b)).sum::<u32>(), 1400);
    }
}
