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
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
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
    let n = input.len();
    if n == 0 {
        return None;
    }
    // The table is sized to the input: zeroing a full 2^HASH_LOG table for
    // every small value dominated the cost of saving (most values are
    // short), and a table with more slots than input bytes buys nothing.
    let bits = (usize::BITS - n.leading_zeros()).clamp(8, HASH_LOG);
    let mut table = vec![0usize; 1 << bits];
    let mut out = Vec::with_capacity(max_out.min(n + n / 32 + 1));
    let mut i = 0;
    let mut lit_start = 0;
    while i + MIN_MATCH <= n {
        let h = hash3(&input[i..], bits);
        let cand = table[h];
        table[h] = i + 1;
        if cand != 0 {
            let r = cand - 1;
            let off = i - r - 1;
            if off < MAX_OFFSET && input[r..r + MIN_MATCH] == input[i..i + MIN_MATCH] {
                let max_len = MAX_MATCH.min(n - i);
                let mut len = MIN_MATCH;
                while len < max_len && input[r + len] == input[i + len] {
                    len += 1;
                }
                push_literals(&mut out, &input[lit_start..i]);
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
                    return None;
                }
                let end = i + len;
                let mut j = i + 1;
                while j < end && j + MIN_MATCH <= n {
                    table[hash3(&input[j..], bits)] = j + 1;
                    j += 1;
                }
                i = end;
                lit_start = i;
                continue;
            }
        }
        i += 1;
        // Bail out early on incompressible data.
        if out.len() + (i - lit_start) + (i - lit_start) / MAX_LITERAL + 1 > max_out {
            return None;
        }
    }
    push_literals(&mut out, &input[lit_start..]);
    (out.len() <= max_out).then_some(out)
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
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
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
        let mut rnd = Vec::new();
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rnd.push((x % 7) as u8 + b'a');
        }
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
