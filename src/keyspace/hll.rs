//! The HyperLogLog format: a string value that PFADD, PFCOUNT and PFMERGE
//! read and change, byte for byte as Redis 7.0 writes it, so a replica of
//! a real Redis (or a real Redis replicating from us) ends with the same
//! bytes, and an RDB moves HLLs between the two.
//!
//! Layout (16-byte header, then the registers):
//!
//! ```text
//! "HYLL" | encoding (0 dense, 1 sparse) | 3 unused | cached count, u64 LE
//! ```
//!
//! The cached count is valid while the top bit of its last byte is clear;
//! invalidating sets that bit and keeps the other bytes, as Redis does.
//! Dense: 16384 registers of 6 bits, packed little-endian. Sparse: runs
//! of opcodes, `00xxxxxx` (1..64 zero registers), `01xxxxxx yyyyyyyy`
//! (1..16384 zero registers) and `1vvvvvxx` (1..4 registers of value
//! 1..32); a sparse HLL turns dense when a value above 32 is needed or it
//! would grow past `hll-sparse-max-bytes`.
//!
//! Pure functions over byte buffers: no keyspace, no commands. A corrupt
//! value (it can come from anyone's SET or RESTORE) gives [`Corrupt`],
//! never a panic.
#![forbid(unsafe_code)]

use bytes::BytesMut;

/// Registers: 2^14, addressed by the low 14 bits of the hash.
pub const REGISTERS: usize = 1 << P;
const P: u32 = 14;
/// Hash bits left for the run of zeros.
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const HEADER: usize = 16;
/// A dense HLL's exact length.
pub const DENSE_SIZE: usize = HEADER + (REGISTERS * BITS).div_ceil(8);
const MAGIC: &[u8; 4] = b"HYLL";
const ENC_DENSE: u8 = 0;
const ENC_SPARSE: u8 = 1;
/// Offset of the cached count in the header.
const CARD: usize = 8;

const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;

/// The value is not a well-formed HLL (Redis's "Corrupted HLL object").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }
    }
}

/// Whether `v` can be used as an HLL (Redis's `isHLLObjectOrReply`): the
/// magic, a known encoding, and for dense the exact length. A sparse body
/// is checked only when read.
pub fn encoding_of(v: &[u8]) -> Option<Encoding> {
    if v.len() < HEADER || &v[..4] != MAGIC {
        return None;
    }
    match v[4] {
        ENC_DENSE if v.len() == DENSE_SIZE => Some(Encoding::Dense),
        ENC_SPARSE => Some(Encoding::Sparse),
        _ => None,
    }
}

/// A new, empty HLL: sparse, one run of 16384 zero registers, a valid
/// cached count of 0.
pub fn new_sparse() -> BytesMut {
    let mut v = BytesMut::with_capacity(HEADER + 2);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&[ENC_SPARSE, 0, 0, 0]);
    v.extend_from_slice(&[0; 8]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        v.extend_from_slice(&xzero(run));
        left -= run;
    }
    v
}

// ------------------------------------------------------------ hashing --

/// MurmurHash64A, the 64-bit hash Redis's HLL uses (seed 0xadc83b19).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the length of its hash's run of
/// zeros plus one (1..=51): the value that register must reach.
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The guard bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// -------------------------------------------------------------- dense --

/// Register `i` of packed 6-bit registers (bytes past the end read as 0,
/// as Redis reads the string's terminator for the last register).
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u32::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u32::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u32::from(REGISTER_MAX)) as u8
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let (max, v) = (u32::from(REGISTER_MAX), u32::from(v));
    if let Some(b) = regs.get_mut(byte) {
        *b = ((u32::from(*b) & !(max << fb)) | (v << fb)) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        let fb8 = 8 - fb;
        *b = ((u32::from(*b) & !(max >> fb8)) | (v >> fb8)) as u8;
    }
}

/// Sets register `i` of a dense HLL to `value`, whatever it held
/// (PFSELFTEST checks the packing with it); a sparse HLL is left alone.
pub fn set_dense_register(v: &mut [u8], i: usize, value: u8) {
    if encoding_of(v) == Some(Encoding::Dense) {
        dense_put(&mut v[HEADER..], i, value & REGISTER_MAX);
    }
}

/// Raises register `i` to `count`; true if it was lower.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if dense_get(regs, i) < count {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

// ------------------------------------------------------------- sparse --

fn is_xzero(op: u8) -> bool {
    op & 0xc0 == 0x40
}

fn is_zero(op: u8) -> bool {
    op & 0xc0 == 0
}

fn zero_len(op: u8) -> usize {
    usize::from(op & 0x3f) + 1
}

fn xzero_len(op: u8, next: u8) -> usize {
    ((usize::from(op & 0x3f) << 8) | usize::from(next)) + 1
}

fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}

fn val_len(op: u8) -> usize {
    usize::from(op & 0x3) + 1
}

fn val(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len as u8 - 1)
}

fn zero(len: usize) -> u8 {
    (len - 1) as u8
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [0x40 | (l >> 8) as u8, (l & 0xff) as u8]
}

/// One decoded sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A run of zero registers, and whether it was written as XZERO.
    Zeros(usize, bool),
    /// A run of registers holding a value.
    Value(u8, usize),
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zeros(n, _) | Op::Value(_, n) => n,
        }
    }

    fn width(self) -> usize {
        match self {
            Op::Zeros(_, true) => 2,
            _ => 1,
        }
    }
}

/// The opcode at `body[at]` (a cut XZERO reads its second byte as 0).
fn op_at(body: &[u8], at: usize) -> Op {
    let b = body[at];
    if is_zero(b) {
        Op::Zeros(zero_len(b), false)
    } else if is_xzero(b) {
        Op::Zeros(xzero_len(b, body.get(at + 1).copied().unwrap_or(0)), true)
    } else {
        Op::Value(val_value(b), val_len(b))
    }
}

/// Calls `f(first_register, op)` for every opcode of a sparse body.
/// Fails unless the runs cover exactly [`REGISTERS`] registers; a run of
/// values past the end stops the walk (as Redis's checks do) and fails.
fn walk_sparse(body: &[u8], mut f: impl FnMut(usize, Op)) -> Result<(), Corrupt> {
    let (mut at, mut idx) = (0, 0usize);
    while at < body.len() {
        let op = op_at(body, at);
        if matches!(op, Op::Value(..)) && idx + op.span() > REGISTERS {
            return Err(Corrupt);
        }
        f(idx, op);
        idx += op.span();
        at += op.width();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Sets register `index` of a sparse HLL to `count` if that raises it
/// (Redis's `hllSparseSet`, same opcodes out): splits the run holding it,
/// then merges equal neighbouring values. Turns the HLL dense when the
/// value does not fit the sparse form or it would outgrow `max_bytes`.
fn sparse_raise(
    v: &mut BytesMut,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote_and_raise(v, index, count);
    }
    // Find the opcode covering `index`.
    let end = v.len();
    let (mut at, mut first) = (HEADER, 0usize);
    let mut prev: Option<usize> = None;
    let op = loop {
        if at >= end {
            return Err(Corrupt);
        }
        let op = op_at(v, at);
        if op.span() == 0 {
            return Err(Corrupt);
        }
        if index < first + op.span() {
            break op;
        }
        prev = Some(at);
        at += op.width();
        first += op.span();
    };
    let last = first + op.span() - 1;
    let mut seq: [u8; 5] = [0; 5];
    let mut n = 0;
    let mut push = |bytes: &[u8]| {
        seq[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    match op {
        Op::Value(old, _) if old >= count => return Ok(false),
        // One register: rewrite the opcode in place.
        Op::Value(_, 1) | Op::Zeros(1, false) => {
            v[at] = val(count, 1);
            merge_values(v, prev.unwrap_or(HEADER));
            invalidate_cache(v);
            return Ok(true);
        }
        Op::Zeros(..) => {
            let zeros = |len: usize, push: &mut dyn FnMut(&[u8])| {
                if len > ZERO_MAX_LEN {
                    push(&xzero(len));
                } else {
                    push(&[zero(len)]);
                }
            };
            if index != first {
                zeros(index - first, &mut push);
            }
            push(&[val(count, 1)]);
            if index != last {
                zeros(last - index, &mut push);
            }
        }
        Op::Value(old, _) => {
            if index != first {
                push(&[val(old, index - first)]);
            }
            push(&[val(count, 1)]);
            if index != last {
                push(&[val(old, last - index)]);
            }
        }
    }
    // Replace the old opcode with the new sequence.
    let old_width = op.width().min(end - at);
    let grows = n > old_width;
    if grows && end - old_width + n > max_bytes {
        return promote_and_raise(v, index, count);
    }
    let tail = v[at + old_width..].to_vec();
    v.truncate(at);
    v.extend_from_slice(&seq[..n]);
    v.extend_from_slice(&tail);
    merge_values(v, prev.unwrap_or(HEADER));
    invalidate_cache(v);
    Ok(true)
}

/// Merges neighbouring VAL opcodes of equal value whose runs fit one
/// opcode, looking at up to five opcodes from `from` (as Redis does after
/// each change, so both produce the same bytes).
fn merge_values(v: &mut BytesMut, from: usize) {
    let mut at = from;
    let mut scan = 5;
    while at < v.len() && scan > 0 {
        scan -= 1;
        let b = v[at];
        if is_xzero(b) {
            at += 2;
            continue;
        }
        if is_zero(b) {
            at += 1;
            continue;
        }
        if let Some(&next) = v.get(at + 1) {
            if !is_zero(next) && !is_xzero(next) && val_value(b) == val_value(next) {
                let len = val_len(b) + val_len(next);
                if len <= VAL_MAX_LEN {
                    v[at + 1] = val(val_value(b), len);
                    let tail = v[at + 1..].to_vec();
                    v.truncate(at);
                    v.extend_from_slice(&tail);
                    // Try the merged run with its right neighbour too.
                    continue;
                }
            }
        }
        at += 1;
    }
}

fn promote_and_raise(v: &mut BytesMut, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    dense_raise(&mut v[HEADER..], index, count);
    invalidate_cache(v);
    Ok(true)
}

/// Turns a sparse HLL dense (header and cached count kept); false if it
/// already was.
pub fn to_dense(v: &mut BytesMut) -> Result<bool, Corrupt> {
    if encoding_of(v) == Some(Encoding::Dense) {
        return Ok(false);
    }
    let mut dense = BytesMut::zeroed(DENSE_SIZE);
    dense[..HEADER].copy_from_slice(&v[..HEADER]);
    dense[4] = ENC_DENSE;
    let regs = &mut dense[HEADER..];
    walk_sparse(&v[HEADER..], |first, op| {
        if let Op::Value(value, len) = op {
            for i in first..first + len {
                dense_put(regs, i, value);
            }
        }
    })?;
    *v = dense;
    Ok(true)
}

// ----------------------------------------------------------- commands --

/// Adds one element (PFADD); true if a register rose.
pub fn add(v: &mut BytesMut, element: &[u8], sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    raise(v, index, count, sparse_max_bytes)
}

/// Raises register `index` to `count` in either encoding; true if it rose.
pub fn raise(
    v: &mut BytesMut,
    index: usize,
    count: u8,
    sparse_max_bytes: usize,
) -> Result<bool, Corrupt> {
    match encoding_of(v) {
        Some(Encoding::Dense) => {
            let raised = dense_raise(&mut v[HEADER..], index, count);
            if raised {
                invalidate_cache(v);
            }
            Ok(raised)
        }
        Some(Encoding::Sparse) => sparse_raise(v, index, count, sparse_max_bytes),
        None => Err(Corrupt),
    }
}

/// Raises each of `max` to the HLL's register where that is higher
/// (PFCOUNT of several keys, PFMERGE).
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Corrupt> {
    match encoding_of(v) {
        Some(Encoding::Dense) => {
            let regs = &v[HEADER..];
            for (i, m) in max.iter_mut().enumerate() {
                *m = (*m).max(dense_get(regs, i));
            }
            Ok(())
        }
        Some(Encoding::Sparse) => walk_sparse(&v[HEADER..], |first, op| {
            if let Op::Value(value, len) = op {
                for m in &mut max[first..first + len] {
                    *m = (*m).max(value);
                }
            }
        }),
        None => Err(Corrupt),
    }
}

/// Every register's value (PFDEBUG GETREG, tests).
pub fn registers(v: &[u8]) -> Result<Box<[u8; REGISTERS]>, Corrupt> {
    let mut regs = Box::new([0u8; REGISTERS]);
    merge_into(&mut regs, v)?;
    Ok(regs)
}

/// The cached count, if valid.
pub fn cached_count(v: &[u8]) -> Option<u64> {
    let card: [u8; 8] = v.get(CARD..CARD + 8)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached_count(v: &mut [u8], count: u64) {
    v[CARD..CARD + 8].copy_from_slice(&count.to_le_bytes());
}

/// Marks the cached count stale; its other bytes stay as they were.
pub fn invalidate_cache(v: &mut [u8]) {
    v[CARD + 7] |= 0x80;
}

/// The estimated number of distinct elements added (PFCOUNT of one key).
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    let mut histogram = [0u64; 64];
    match encoding_of(v) {
        Some(Encoding::Dense) => {
            let regs = &v[HEADER..];
            for i in 0..REGISTERS {
                histogram[usize::from(dense_get(regs, i))] += 1;
            }
        }
        Some(Encoding::Sparse) => {
            let (mut at, mut idx) = (0, 0usize);
            let body = &v[HEADER..];
            while at < body.len() {
                let op = op_at(body, at);
                match op {
                    Op::Zeros(n, _) => histogram[0] += n as u64,
                    Op::Value(value, n) => histogram[usize::from(value)] += n as u64,
                }
                idx += op.span();
                at += op.width();
            }
            if idx != REGISTERS {
                return Err(Corrupt);
            }
        }
        None => return Err(Corrupt),
    }
    Ok(estimate(&histogram))
}

/// The estimate from registers given one per byte (PFCOUNT of several
/// keys merges into such an array).
pub fn count_registers(regs: &[u8; REGISTERS]) -> u64 {
    let mut histogram = [0u64; 64];
    for &r in regs.iter() {
        histogram[usize::from(r & 63)] += 1;
    }
    estimate(&histogram)
}

/// Otmar Ertl's improved estimator ("New cardinality estimation
/// algorithms for HyperLogLog sketches", 2017), as Redis computes it: the
/// same operations in the same order, so the same count comes out.
fn estimate(histogram: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - histogram[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += histogram[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histogram[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// The sparse opcodes as PFDEBUG DECODE prints them (`z:len`, `Z:len`,
/// `v:value,len`); `None` for a dense HLL.
pub fn decode_sparse(v: &[u8]) -> Option<String> {
    if encoding_of(v) != Some(Encoding::Sparse) {
        return None;
    }
    let body = &v[HEADER..];
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let op = op_at(body, at);
        out.push(match op {
            Op::Zeros(n, false) => format!("z:{n}"),
            Op::Zeros(n, true) => format!("Z:{n}"),
            Op::Value(value, n) => format!("v:{value},{n}"),
        });
        at += op.width();
    }
    Some(out.join(" "))
}

#[cfg(test)]
mod tests;
