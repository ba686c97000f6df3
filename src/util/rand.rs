//! The small, seedable pseudo-random generator used for random sampling
//! (RANDOMKEY, SRANDMEMBER, HRANDFIELD...) and by tests that need
//! deterministic noise. Not for anything that must be unpredictable.

/// splitmix64 step. Any state (including 0) is fine, which is why callers
/// may keep a bare `u64`.
pub fn rand_next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform-enough value in `0..n` without division (Lemire's reduction).
#[inline]
pub fn bounded(r: u64, n: usize) -> usize {
    ((u128::from(r) * n as u128) >> 64) as usize
}
