//! Small, dependency-free helpers shared by several Cascade modules.
//!
//! Nothing in here may depend on server state, sockets or the config module:
//! these are pure functions over bytes so they can be reused anywhere (KEYS,
//! SCAN MATCH, PSUBSCRIBE, CONFIG GET, ACL key patterns...).

pub mod digest;
pub mod glob;
pub mod ldouble;
pub mod lzf;
pub mod num;
pub mod pqsort;
pub mod prefetch;
pub mod rand;
pub mod strtod;

/// Redis's `sdscatrepr`: `bytes` double-quoted with C-style escapes, `\xHH`
/// for other non-printable bytes (MONITOR lines, CONFIG REWRITE, command-line
/// options turned into config lines, AOF manifest file names).
pub fn repr(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

pub use glob::glob_match;
