//! The streaming RDB writer: header, AUX fields, SELECTDB/RESIZEDB, string
//! entries (with Redis 7.0's integer / LZF / raw string choice) and the EOF
//! opcode with its CRC64 trailer. This file does no I/O of its own: every
//! byte goes to the caller's `RdbSink`, and a running CRC64 is kept of them.

use super::crc64::Crc64;
use super::format;
use super::lzf;
use super::{EncodeOptions, RdbAux, RdbSink, RdbValue};

/// Writes one snapshot to a sink, item by item.
pub struct RdbEncoder<S: RdbSink> {
    sink: S,
    opts: EncodeOptions,
    crc: Crc64,
    scratch: Vec<u8>,
}

impl<S: RdbSink> RdbEncoder<S> {
    /// Starts a snapshot: writes `REDIS` and the 4-digit version.
    /// Fails with `InvalidInput` for a version outside 1..=12.
    pub fn new(sink: S, opts: EncodeOptions) -> std::io::Result<Self> {
        if !(format::MIN_VERSION..=format::MAX_VERSION).contains(&opts.version) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot write RDB version {}", opts.version),
            ));
        }
        let header = format::header(opts.version).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "RDB version too large")
        })?;
        let mut enc = RdbEncoder {
            sink,
            opts,
            crc: Crc64::new(),
            scratch: Vec::with_capacity(64),
        };
        enc.put(&header)?;
        Ok(enc)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.sink.write(bytes)
    }

    fn flush_scratch(&mut self) -> std::io::Result<()> {
        let buf = std::mem::take(&mut self.scratch);
        let res = self.put(&buf);
        self.scratch = buf;
        self.scratch.clear();
        res
    }

    /// Writes a string the way Redis 7.0's `rdbSaveRawString` does.
    fn string(&mut self, s: &[u8]) -> std::io::Result<()> {
        self.scratch.clear();
        if let Some(v) = format::int_encodable(s) {
            format::encode_int(v, &mut self.scratch);
            return self.flush_scratch();
        }
        if self.opts.compress && s.len() > format::LZF_MIN_LEN_EXCLUSIVE {
            if let Some(c) = lzf::compress(s, s.len() - format::LZF_MIN_SAVING) {
                self.scratch
                    .push((format::LEN_ENCVAL << 6) | format::ENC_LZF);
                format::encode_len(c.len() as u64, &mut self.scratch);
                format::encode_len(s.len() as u64, &mut self.scratch);
                self.flush_scratch()?;
                return self.put(&c);
            }
        }
        format::encode_len(s.len() as u64, &mut self.scratch);
        self.flush_scratch()?;
        self.put(s)
    }

    fn len(&mut self, n: u64) -> std::io::Result<()> {
        self.scratch.clear();
        format::encode_len(n, &mut self.scratch);
        self.flush_scratch()
    }

    /// An AUX field (opcode 0xFA): two strings.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.put(&[format::OP_AUX])?;
        self.string(key)?;
        self.string(value)
    }

    /// All AUX fields of `aux`, in order.
    pub fn aux_all(&mut self, aux: &RdbAux) -> std::io::Result<()> {
        for (k, v) in &aux.pairs {
            self.aux(k, v)?;
        }
        Ok(())
    }

    /// SELECTDB (0xFE) then RESIZEDB (0xFB) with the size hints.
    pub fn select_db(&mut self, db: u32, db_size: u64, expires_size: u64) -> std::io::Result<()> {
        self.put(&[format::OP_SELECTDB])?;
        self.len(u64::from(db))?;
        self.put(&[format::OP_RESIZEDB])?;
        self.len(db_size)?;
        self.len(expires_size)
    }

    /// One key: EXPIRETIME_MS (0xFC, 8 bytes little-endian) when set, then
    /// the type byte, key and value.
    pub fn entry(
        &mut self,
        key: &[u8],
        value: &RdbValue,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        if let Some(ms) = expire_at_ms {
            let mut b = [0u8; 9];
            b[0] = format::OP_EXPIRETIME_MS;
            b[1..].copy_from_slice(&ms.to_le_bytes());
            self.put(&b)?;
        }
        match value {
            RdbValue::String(v) => {
                self.put(&[format::TYPE_STRING])?;
                self.string(key)?;
                self.string(v)
            }
        }
    }

    /// Ends the snapshot: EOF (0xFF), then from version 5 on the CRC64 of
    /// everything before it, little-endian (zeros when checksums are off).
    /// Returns the sink.
    pub fn finish(mut self) -> std::io::Result<S> {
        self.put(&[format::OP_EOF])?;
        if self.opts.version >= format::CHECKSUM_MIN_VERSION {
            let crc = if self.opts.checksum {
                self.crc.value()
            } else {
                0
            };
            self.sink.write(&crc.to_le_bytes())?;
        }
        Ok(self.sink)
    }
}
