//! RDB snapshot encoding and decoding (strings, hashes, sets, lists, sorted sets, streams): the data model
//! the rest of the server sees (`RdbEntry`, `RdbValue`, `RdbAux`,
//! `RdbItem`), the byte sink and source traits, options and errors. This
//! module does no I/O of its own: bytes go out through an `RdbSink` and come
//! in through an `RdbSource` supplied by the caller.

mod blobs;
pub mod crc64;
mod decode;
mod encode;
pub mod format;
mod stream;
pub use crate::util::lzf;

#[cfg(test)]
mod collection_tests;
#[cfg(test)]
mod list_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod zset_tests;

use bytes::Bytes;

pub use decode::RdbDecoder;
pub use encode::RdbEncoder;

/// One key as stored in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbEntry {
    pub db: u32,
    pub key: Bytes,
    pub value: RdbValue,
    /// Absolute expire time, Unix milliseconds.
    pub expire_at_ms: Option<u64>,
    /// The key's LRU idle time or LFU counter, when the file has one
    /// (IDLE/FREQ opcodes: Redis writes them under an LRU or LFU
    /// `maxmemory-policy`).
    pub stamp: Option<KeyStamp>,
}

/// Which access information a dump writes for every key (Redis writes IDLE
/// under an LRU `maxmemory-policy`, FREQ under an LFU one, nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampKind {
    Idle,
    Freq,
}

/// What an RDB says of a key's accesses, for eviction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStamp {
    /// IDLE (0xF8): seconds since the last access.
    IdleSecs(u64),
    /// FREQ (0xF9): the LFU counter.
    Freq(u8),
}

/// A value as read from a snapshot, whatever its encoding in the file.
/// Collections come with their elements in file order; the decoder has
/// already refused duplicates (as Redis does), and may return empty ones
/// (Redis skips such keys on load).
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    String(Bytes),
    Hash(Vec<(Bytes, Bytes)>),
    Set(Vec<Bytes>),
    /// Members with their scores (never NaN).
    Zset(Vec<(Bytes, f64)>),
    /// Elements head to tail.
    List(Vec<Bytes>),
    /// A stream, nodes, counters and consumer groups.
    Stream(Box<crate::keyspace::StreamValue>),
}

/// Auxiliary fields (`redis-ver`, `redis-bits`, `ctime`, `used-mem`,
/// `repl-stream-db`, `repl-id`, `repl-offset`, `aof-base`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdbAux {
    pub pairs: Vec<(Bytes, Bytes)>,
}

/// One top-level item of a snapshot, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbItem {
    Aux(Bytes, Bytes),
    SelectDb(u32),
    /// Size hints: keys in the db, keys with an expire.
    ResizeDb(u64, u64),
    Entry(RdbEntry),
    /// A function library (Redis 7.0 functions): its whole code.
    Function(Bytes),
    /// End of file; the checksum (if any) has been verified.
    Eof,
}

/// Where the encoder puts its bytes.
pub trait RdbSink {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()>;
}

impl RdbSink for Vec<u8> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(chunk);
        Ok(())
    }
}

impl<S: RdbSink + ?Sized> RdbSink for &mut S {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        (**self).write(chunk)
    }
}

/// Adapts any `std::io::Write` (a file, a socket) into a sink.
pub struct WriteSink<W: std::io::Write>(pub W);

impl<W: std::io::Write> RdbSink for WriteSink<W> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.0.write_all(chunk)
    }
}

/// Where the decoder gets its bytes.
pub trait RdbSource {
    /// Fills `buf` completely or fails (`UnexpectedEof` when the data ends).
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()>;
}

impl RdbSource for &[u8] {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        std::io::Read::read_exact(self, buf)
    }
}

/// Adapts any `std::io::Read` (a file, a socket) into a source.
pub struct ReadSource<R: std::io::Read>(pub R);

impl<R: std::io::Read> RdbSource for ReadSource<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_exact(buf)
    }
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// RDB version written in the header (10: what Redis 7.0 writes and
    /// loads). Must be within `format::MIN_VERSION..=format::MAX_VERSION`.
    pub version: u32,
    /// LZF-compress strings longer than 20 bytes (Redis `rdbcompression`).
    pub compress: bool,
    /// Write a real CRC64 trailer rather than zeros (Redis `rdbchecksum`).
    pub checksum: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            version: format::DEFAULT_VERSION,
            compress: true,
            checksum: true,
        }
    }
}

/// Why a snapshot could not be read.
#[derive(Debug)]
pub enum RdbError {
    /// The source failed; `UnexpectedEof` when the data ended early.
    Io(std::io::Error),
    /// The data does not start with `REDIS` and four digits.
    BadMagic,
    UnsupportedVersion(u32),
    Corrupt {
        offset: u64,
        what: String,
    },
    ChecksumMismatch {
        expected: u64,
        actual: u64,
    },
    /// A value of a type this module cannot load yet.
    UnsupportedType {
        type_byte: u8,
        type_name: &'static str,
        key: Bytes,
        offset: u64,
    },
    /// An opcode this module refuses rather than silently dropping data
    /// (module aux data, functions).
    UnsupportedOpcode {
        opcode: u8,
        name: &'static str,
        offset: u64,
    },
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                write!(f, "RDB truncated: {e}")
            }
            RdbError::Io(e) => write!(f, "RDB read error: {e}"),
            RdbError::BadMagic => f.write_str("not an RDB file (bad magic)"),
            RdbError::UnsupportedVersion(v) => write!(
                f,
                "unsupported RDB version {v} (supported: {}..={})",
                format::MIN_VERSION,
                format::MAX_VERSION
            ),
            RdbError::Corrupt { offset, what } => {
                write!(f, "corrupt RDB at offset {offset}: {what}")
            }
            RdbError::ChecksumMismatch { expected, actual } => write!(
                f,
                "RDB checksum mismatch: trailer says {expected:#018x}, data hashes to {actual:#018x}"
            ),
            RdbError::UnsupportedType {
                type_byte,
                type_name,
                key,
                offset,
            } => write!(
                f,
                "unsupported RDB value type {type_name} ({type_byte}) for key {:?} at offset {offset}: only strings, hashes, sets, lists, sorted sets and streams are supported",
                String::from_utf8_lossy(key)
            ),
            RdbError::UnsupportedOpcode {
                opcode,
                name,
                offset,
            } => write!(
                f,
                "unsupported RDB opcode {name} ({opcode:#04x}) at offset {offset}"
            ),
        }
    }
}

impl std::error::Error for RdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RdbError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        RdbError::Io(e)
    }
}
