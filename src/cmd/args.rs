//! Parsing command arguments the way Redis does (strict integers, floats
//! with `inf`, case-insensitive options). Pure functions.

use super::error::CmdError;
pub use crate::util::num::parse_i64_strict;
use crate::util::strtod::string2d;

pub fn int_arg(b: &[u8]) -> Result<i64, CmdError> {
    parse_i64_strict(b).ok_or(CmdError::NotInteger)
}

/// A float argument as Redis's `getDoubleFromObject` takes it (see
/// [`string2d`]): `inf` accepted, NaN, spaces, overflow and underflow to
/// zero refused.
pub fn float_arg(b: &[u8]) -> Result<f64, CmdError> {
    string2d(b).ok_or(CmdError::NotFloat)
}

/// The cursor of HSCAN/SSCAN/ZSCAN (unsigned decimal, "ERR invalid
/// cursor" otherwise). Checked before the key is looked up, as Redis does.
pub fn scan_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    parse_cursor(arg).ok_or_else(|| CmdError::other("ERR invalid cursor"))
}

/// The options after `KEY cursor` of HSCAN/SSCAN/ZSCAN: `MATCH pattern`
/// (`None` for none or `*`) and `COUNT n` (default 10, at least 1), as
/// Redis's scanGenericCommand parses them for a key's collection (no TYPE
/// there). Redis parses them only once the key turned out to exist and
/// to have the right type, so callers look the key up first.
pub fn scan_args(cursor: u64, opts: &[bytes::Bytes]) -> Result<ScanArgs, CmdError> {
    scan_options(cursor, opts, false)
}

/// SCAN's options: those of [`scan_args`] and `TYPE name`.
pub fn keyspace_scan_args(cursor: u64, opts: &[bytes::Bytes]) -> Result<ScanArgs, CmdError> {
    scan_options(cursor, opts, true)
}

fn scan_options(cursor: u64, opts: &[bytes::Bytes], with_type: bool) -> Result<ScanArgs, CmdError> {
    let mut out = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        type_filter: None,
    };
    let mut i = 0;
    while i < opts.len() {
        if i + 1 >= opts.len() {
            return Err(CmdError::Syntax);
        }
        let v = &opts[i + 1];
        if is(&opts[i], "count") {
            let n = int_arg(v)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            out.count = n as usize;
        } else if is(&opts[i], "match") {
            // A lone `*` is no pattern at all, so it lists the empty key
            // too (the matcher, like Redis's, never matches an empty one).
            out.pattern = (v.as_ref() != b"*").then(|| v.clone());
        } else if with_type && is(&opts[i], "type") {
            out.type_filter = Some(v.clone());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(out)
}

/// A SCAN-family cursor as Redis reads it with `strtoul`: optional sign,
/// decimal digits, no overflow; a negative value wraps (`-1` is
/// 2^64 - 1) and an empty argument is 0. Redis reads the argument as a C
/// string, so it ends at the first NUL byte.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    if arg.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parsed HSCAN/SSCAN options.
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<bytes::Bytes>,
    pub count: usize,
    /// SCAN's `TYPE` (never set for a key's collection).
    pub type_filter: Option<bytes::Bytes>,
}

impl ScanArgs {
    /// Whether an element passes MATCH.
    pub fn matches(&self, element: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| crate::util::glob::glob_match(p, element, false))
    }
}

/// Case-insensitive comparison of an argument with an ASCII option name.
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-1"), Some(-1));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"01",
            b"-0",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1.0",
            b"-",
        ] {
            assert_eq!(parse_i64_strict(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn cursors_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        // Read as a C string: it ends at the first NUL.
        assert_eq!(parse_cursor(b"\0abc"), Some(0));
        assert_eq!(parse_cursor(b"5\0x"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b"-",
            b"+",
            b"1x",
            b" 1",
            b"0x1",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(float_arg(b"1.5").ok(), Some(1.5));
        assert_eq!(float_arg(b"-inf").ok(), Some(f64::NEG_INFINITY));
        assert_eq!(float_arg(b"1e3").ok(), Some(1000.0));
        assert_eq!(float_arg(b"0x10").ok(), Some(16.0));
        for bad in [
            &b"nan"[..],
            b" 1",
            b"1 ",
            b"",
            b"abc",
            b"1e400",
            b"-1e400",
            b"1e-400",
        ] {
            assert!(float_arg(bad).is_err(), "{bad:?}");
        }
    }
}
