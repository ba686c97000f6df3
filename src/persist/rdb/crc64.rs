//! The running CRC64 that guards an RDB file: Redis's CRC-64/Jones variant
//! (reflected, polynomial 0xad93d23594c935a9, init 0, no final xor), taken
//! from the `crc` crate's catalogue entry `CRC_64_REDIS`. This file does no
//! I/O of its own; the encoder and decoder feed it the bytes they move.

use crc::{Crc, Digest, Table, CRC_64_REDIS};

/// Slice-by-16 tables (32 KiB): the byte-at-a-time default made the
/// checksum the largest cost of a SAVE (measured: about half of the
/// encoder thread's time for 1M 100-byte keys).
static REDIS_CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// One-shot CRC64 of `data`, as Redis's `crc64(0, data, len)`.
pub fn crc64(data: &[u8]) -> u64 {
    REDIS_CRC64.checksum(data)
}

/// A CRC64 fed incrementally.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest<'static, u64, Table<16>>,
}

impl Crc64 {
    /// A fresh checksum (CRC of nothing is 0).
    pub fn new() -> Self {
        Crc64 {
            digest: REDIS_CRC64.digest(),
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC of everything fed so far.
    pub fn value(&self) -> u64 {
        self.digest.clone().finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_test_vector() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn incremental_matches_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut c = Crc64::new();
        for chunk in data.chunks(7) {
            c.update(chunk);
        }
        assert_eq!(c.value(), crc64(&data));
    }
}
