//! RESP (REdis Serialization Protocol) wire format for Cascade: turning the
//! bytes a client sends into commands ([`decode`]) and turning replies into
//! the bytes a client reads ([`encode`]), following Redis 7.0 byte for byte.
//!
//! This module depends only on `bytes` and `memchr`: it knows nothing about
//! sockets, clients or commands, so it can be tested (and fuzzed) on plain
//! buffers and reused by anything that speaks RESP.

pub mod decode;
pub mod encode;
pub mod scan;

pub use decode::*;
pub use encode::*;
pub use scan::{Scanned, Scanner};
