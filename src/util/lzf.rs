//! LZF compression and decompression in the format Redis stores compressed
//! strings in (liblzf): a control byte below 32 starts a run of ctrl+1
//! literal bytes; otherwise its top 3 bits are a match length - 2 (7 means
//! "add the next byte"), its low 5 bits and the following byte an offset - 1
//! back into the output. This file does no I/O of its own.

const HASH_LOG: u32 = 14;
const MAX_LITERAL: usize = 32;
const MAX_OFFSET: usize = 1 << 13;
const MAX_MATCH: usize = (1 << 8) + (1 << 3);
const MIN_MATCH: usize = 3;

/// Why a block could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// The input ended inside a literal run or back reference.
    Truncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The output would be longer than the declared length.
    TooLong,
    /// The output is shorter than the declared length.
    TooShort,
}

impl std::fmt::Display for LzfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LzfError::Truncated => "LZF data truncated",
            LzfError::BadReference => "LZF back reference before start of output",
            LzfError::TooLong => "LZF data expands past the declared length",
            LzfError::TooShort => "LZF data expands to less than the declared length",
        })
    }
}

fn hash3(b: &[u8], bits: u32) -> usize {
    hash_of(
        (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]),
        bits,
    )
}

/// Table slot of three bytes packed big-endian into the low 24 bits.
#[inline]
fn hash_of(v: u32, bits: u32) -> usize {
    (v.wrapping_mul(2654435761) >> (32 - bits)) as usize
}

fn push_literals(out: &mut Vec<u8>, lits: &[u8]) {
    for chunk in lits.chunks(MAX_LITERAL) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// Compresses `input`. Returns `None` if the result would be longer than
/// `max_out` bytes (the caller then stores the data uncompressed) or if
/// `input` is empty.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress_into(input, max_out, &mut out).then_some(out)
}

/// Positions of recent 3-byte sequences, kept per thread across calls so a
/// call neither allocates nor zeroes a table (both dominated saving many
/// short values). An entry holds `base + position + 1` of the call that
/// wrote it; each call takes a `base` above every value stored before, so
/// entries from earlier calls read as empty.
struct HashTable {
    slots: Vec<u32>,
    base: u32,
}

thread_local! {
    static TABLE: std::cell::RefCell<HashTable> = const {
        std::cell::RefCell::new(HashTable { slots: Vec::new(), base: 0 })
    };
}

/// [`compress`] into `out` (cleared first); false when the result would
/// be longer than `max_out` or `input` is empty (`out` then holds junk).
pub fn compress_into(input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let n = input.len();
    if n == 0 {
        return false;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.slots.is_empty() {
            t.slots = vec![0; 1 << HASH_LOG];
        }
        // Inputs past u32 positions (4 GiB) are not worth compressing.
        let Ok(span) = u32::try_from(n) else {
            return false;
        };
        if t.base
            .checked_add(span)
            .and_then(|b| b.checked_add(1))
            .is_none()
        {
            t.slots.fill(0);
            t.base = 0;
        }
        let base = t.base;
        t.base = base + span + 1;
        run(input, max_out, out, &mut t.slots, base)
    })
}

fn run(input: &[u8], max_out: usize, out: &mut Vec<u8>, table: &mut [u32], base: u32) -> bool {
    let n = input.len();
    // Short inputs use the front of the table only: fewer cache lines
    // touched, and more slots than input bytes would buy nothing.
    let bits = (usize::BITS - n.leading_zeros()).clamp(8, HASH_LOG);
    let table = &mut table[..1 << bits];
    out.reserve(max_out.min(n + n / 32 + 1));
    // Position `i` is stored as `base + i + 1`; anything at or below
    // `base` was stored by an earlier call.
    let stamp = |i: usize| base + i as u32 + 1;
    let mut i = 0;
    let mut lit_start = 0;
    // The three bytes at `i`, rolled forward one byte per step.
    let mut window = 0u32;
    if n >= MIN_MATCH {
        window = (u32::from(input[0]) << 8) | u32::from(input[1]);
    }
    while i + MIN_MATCH <= n {
        window = ((window << 8) | u32::from(input[i + 2])) & 0xFF_FFFF;
        let h = hash_of(window, bits);
        let cand = table[h];
        table[h] = stamp(i);
        if cand > base {
            let r = (cand - base - 1) as usize;
            let off = i - r - 1;
            if off < MAX_OFFSET && input[r..r + MIN_MATCH] == input[i..i + MIN_MATCH] {
                let len = match_len(input, r, i);
                push_literals(out, &input[lit_start..i]);
                let l = len - 2;
                let hi = (off >> 8) as u8;
                if l < 7 {
                    out.push(((l as u8) << 5) | hi);
                } else {
                    out.push((7 << 5) | hi);
                    out.push((l - 7) as u8);
                }
                out.push((off & 0xFF) as u8);
                if out.len() > max_out {
                    return false;
                }
                let end = i + len;
                // Only the match's last two positions go into the table
                // (as liblzf's default "very fast" mode does): a long run
                // (values padded with zeros) would otherwise cost a hash
                // per byte, for a few percent of size at best.
                let mut j = (i + 1).max(end.saturating_sub(2));
                while j < end && j + MIN_MATCH <= n {
                    table[hash3(&input[j..], bits)] = stamp(j);
                    j += 1;
                }
                i = end;
                lit_start = i;
                if i + MIN_MATCH <= n {
                    window = (u32::from(input[i]) << 8) | u32::from(input[i + 1]);
                }
                continue;
            }
        }
        i += 1;
        // Bail out early on incompressible data (checked once per literal
        // run's worth of bytes: the check costs more than the step).
        let run = i - lit_start;
        if run % MAX_LITERAL == 0 && out.len() + run + run / MAX_LITERAL + 1 > max_out {
            return false;
        }
    }
    push_literals(out, &input[lit_start..]);
    out.len() <= max_out
}

/// Length of the match between the bytes at `r` and at `i` (`r < i`,
/// at least [`MIN_MATCH`] known equal), capped at [`MAX_MATCH`] and the
/// end of `input`; compares eight bytes at a time.
fn match_len(input: &[u8], r: usize, i: usize) -> usize {
    let max_len = MAX_MATCH.min(input.len() - i);
    let mut len = MIN_MATCH;
    while len + 8 <= max_len {
        let a = u64::from_le_bytes(input[r + len..r + len + 8].try_into().unwrap_or([0; 8]));
        let b = u64::from_le_bytes(input[i + len..i + len + 8].try_into().unwrap_or([0; 8]));
        let diff = a ^ b;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < max_len && input[r + len] == input[i + len] {
        len += 1;
    }
    len
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
/// The caller bounds `out_len` before calling; memory grows only as output
/// is actually produced.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(1 << 20));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip];
        ip += 1;
        if ctrl < 32 {
            let run = usize::from(ctrl) + 1;
            let lits = input.get(ip..ip + run).ok_or(LzfError::Truncated)?;
            if out.len() + run > out_len {
                return Err(LzfError::TooLong);
            }
            out.extend_from_slice(lits);
            ip += run;
        } else {
            let mut len = usize::from(ctrl >> 5);
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
                ip += 1;
            }
            len += 2;
            let low = usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
            ip += 1;
            let back = ((usize::from(ctrl & 0x1F) << 8) | low) + 1;
            if back > out.len() {
                return Err(LzfError::BadReference);
            }
            if out.len() + len > out_len {
                return Err(LzfError::TooLong);
            }
            let start = out.len() - back;
            if back >= len {
                out.extend_from_within(start..start + len);
            } else {
                // The reference overlaps what it produces: a run with a
                // period of `back` bytes. Copy whole periods, doubling.
                let mut left = len;
                let mut period = back;
                while left > 0 {
                    let n = period.min(left);
                    out.extend_from_within(start..start + n);
                    left -= n;
                    period += n;
                }
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError::TooShort);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rand::rand_next;

    fn round_trip(data: &[u8]) {
        if let Some(c) = compress(data, data.len() + data.len() / 16 + 64) {
            assert_eq!(decompress(&c, data.len()).unwrap(), data);
        } else {
            assert!(data.is_empty());
        }
    }

    #[test]
    fn round_trips() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"abcabcabcabcabcabcabcabcabcabc");
        round_trip(&vec![b'a'; 10000]);
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let rnd: Vec<u8> = (0..20000)
            .map(|_| (rand_next(&mut x) % 7) as u8 + b'a')
            .collect();
        round_trip(&rnd);
        let noise: Vec<u8> = rnd.iter().enumerate().map(|(i, b)| b ^ (i as u8)).collect();
        round_trip(&noise);
        let long_dist: Vec<u8> = (0..30000u32).map(|i| (i % 9000 % 251) as u8).collect();
        round_trip(&long_dist);
    }

    #[test]
    fn compresses_repetition() {
        let c = compress(&vec![b'a'; 10000], 9996).unwrap();
        assert!(c.len() < 200, "{}", c.len());
        assert!(compress(b"0123456789abcdefghijklmnopqrstuvwxyz", 32).is_none());
    }

    /// The table is shared by consecutive calls: entries of earlier inputs
    /// must never be taken for matches (the output would decode to other
    /// bytes), also when the stamps wrap around.
    #[test]
    fn consecutive_calls_ignore_earlier_entries() {
        let mut seed = 7u64;
        let mut next = move || rand_next(&mut seed);
        for round in 0..3 {
            if round == 1 {
                TABLE.with(|t| t.borrow_mut().base = u32::MAX - 5000);
            }
            for _ in 0..500 {
                let len = (next() % 600) as usize + 1;
                let alphabet = (next() % 4) as u8 + 2;
                let data: Vec<u8> = (0..len).map(|_| b'a' + (next() as u8 % alphabet)).collect();
                let mut out = Vec::new();
                if compress_into(&data, len + 64, &mut out) {
                    assert_eq!(decompress(&out, len).unwrap(), data);
                }
            }
        }
    }

    /// Back references that overlap their own output (runs) expand like
    /// the byte-at-a-time definition, for every period and length.
    #[test]
    fn overlapping_references_expand_as_runs() {
        let lits = b"abcdefgh";
        for back in 1..=lits.len() {
            for len in MIN_MATCH..=MAX_MATCH {
                let mut stream = vec![(lits.len() - 1) as u8];
                stream.extend_from_slice(lits);
                let l = len - 2;
                let off = back - 1;
                if l < 7 {
                    stream.push(((l as u8) << 5) | (off >> 8) as u8);
                } else {
                    stream.push((7 << 5) | (off >> 8) as u8);
                    stream.push((l - 7) as u8);
                }
                stream.push((off & 0xFF) as u8);
                let mut want = lits.to_vec();
                for _ in 0..len {
                    want.push(want[want.len() - back]);
                }
                assert_eq!(
                    decompress(&stream, want.len()).unwrap(),
                    want,
                    "back {back} len {len}"
                );
            }
        }
    }

    #[test]
    fn known_liblzf_stream() {
        // Literal "abc" then a back reference of length 6, offset 3.
        let data = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&data, 9).unwrap(), b"abcabcabc");
    }

    #[test]
    fn bad_input_errors() {
        assert_eq!(decompress(&[5, b'a'], 6), Err(LzfError::Truncated));
        assert_eq!(decompress(&[0x20, 0], 2), Err(LzfError::BadReference));
        assert_eq!(decompress(&[0, b'a', 0xE0], 300), Err(LzfError::Truncated));
        assert_eq!(decompress(&[0, b'a', 0x20, 0], 2), Err(LzfError::TooLong));
        assert_eq!(decompress(&[0, b'a'], 2), Err(LzfError::TooShort));
        assert_eq!(decompress(&[], 1), Err(LzfError::TooShort));
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let data: Vec<u8> = (0..(x % 40))
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = decompress(&data, (x % 100) as usize);
        }
    }
}
