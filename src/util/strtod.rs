//! C `strtod` as glibc reads a double, and the two ways Redis 7.0 uses it
//! for sorted sets: [`string2d`] (scores and increments: the whole argument,
//! no leading space, no overflow, no NaN) and [`range_float`] (ZRANGEBYSCORE
//! bounds: leading spaces allowed, an empty text is 0). Pure functions over
//! bytes; no dependencies.
//!
//! Accepted forms, like glibc: optional leading whitespace (C `isspace`),
//! optional sign, then decimal digits with an optional fraction and
//! exponent, a hexadecimal float (`0x1.8p3`), `inf`/`infinity` or `nan`
//! (any case). Decimal text is converted with Rust's correctly rounded
//! parser, which gives glibc's result.

/// What `strtod` read from the start of a text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parsed {
    pub value: f64,
    /// Bytes consumed (0: no number, as C's `endptr == str`).
    pub end: usize,
    /// C's `errno == ERANGE`: the text overflowed to ±inf or underflowed
    /// to zero.
    pub range_error: bool,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod(s, &end)`.
pub fn strtod(s: &[u8]) -> Parsed {
    let none = Parsed {
        value: 0.0,
        end: 0,
        range_error: false,
    };
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let start = i;
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    let starts_ci =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts_ci(b"infinity") {
        return Parsed {
            value: sign(f64::INFINITY),
            end: i + 8,
            range_error: false,
        };
    }
    if starts_ci(b"inf") {
        return Parsed {
            value: sign(f64::INFINITY),
            end: i + 3,
            range_error: false,
        };
    }
    if starts_ci(b"nan") {
        let mut end = i + 3;
        // "nan(chars)" is one token too.
        if s.get(end) == Some(&b'(') {
            if let Some(close) = s[end..].iter().position(|&b| b == b')') {
                if s[end + 1..end + close]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    end += close + 1;
                }
            }
        }
        return Parsed {
            value: f64::NAN,
            end,
            range_error: false,
        };
    }
    if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, n)) = hex_float(&rest[2..]) {
            let value = sign(v);
            return Parsed {
                value,
                end: i + 2 + n,
                range_error: v.is_infinite(),
            };
        }
        // "0x" with no hex digits: the "0" alone.
        return Parsed {
            value: sign(0.0),
            end: i + 1,
            range_error: false,
        };
    }
    // Decimal: digits [. digits] [e [sign] digits].
    let mut j = i;
    let mut mantissa_digits = 0;
    let mut nonzero = false;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        j += 1;
        mantissa_digits += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            j += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return none;
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        let digits_at = k;
        while k < s.len() && s[k].is_ascii_digit() {
            k += 1;
        }
        if k > digits_at {
            j = k;
        }
    }
    let text = match std::str::from_utf8(&s[start..j]) {
        Ok(t) => t,
        Err(_) => return none,
    };
    // A trailing '.' ("1.") is fine for strtod and for Rust.
    let value: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => return none,
    };
    Parsed {
        value,
        end: j,
        range_error: value.is_infinite() || (value == 0.0 && nonzero),
    }
}

/// The hexadecimal float after "0x": (value, bytes consumed), `None` when
/// no hex digit follows.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let mut mant: u64 = 0;
    let mut exp: i64 = 0;
    let mut digits = 0;
    let mut sticky = false;
    let mut push = |d: u64, frac: bool, exp: &mut i64, mant: &mut u64| {
        if *mant >> 56 == 0 {
            *mant = (*mant << 4) | d;
            if frac {
                *exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !frac {
                *exp += 4;
            }
        }
    };
    while i < s.len() && s[i].is_ascii_hexdigit() {
        push(hex_val(s[i]), false, &mut exp, &mut mant);
        i += 1;
        digits += 1;
    }
    if i < s.len() && s[i] == b'.' {
        let dot = i;
        i += 1;
        let before = digits;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            push(hex_val(s[i]), true, &mut exp, &mut mant);
            i += 1;
            digits += 1;
        }
        if digits == before && before == 0 {
            let _ = dot;
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let mut k = i + 1;
        let mut neg = false;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            neg = s[k] == b'-';
            k += 1;
        }
        let at = k;
        let mut e: i64 = 0;
        while k < s.len() && s[k].is_ascii_digit() {
            e = (e * 10 + i64::from(s[k] - b'0')).min(100_000);
            k += 1;
        }
        if k > at {
            exp += if neg { -e } else { e };
            i = k;
        }
    }
    if sticky {
        mant |= 1;
    }
    // Exact for mantissas up to 53 bits; longer ones round once here.
    let v = (mant as f64) * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    Some((v, i))
}

fn hex_val(b: u8) -> u64 {
    match b {
        b'0'..=b'9' => u64::from(b - b'0'),
        _ => u64::from((b | 0x20) - b'a' + 10),
    }
}

/// C strings end at the first NUL: what `strtod` sees of an argument.
fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

/// Redis's `string2d`: the whole argument must be a double, with no
/// leading space, no overflow or underflow to zero, and not NaN. Used for
/// ZADD scores and ZINCRBY increments ("value is not a valid float").
pub fn string2d(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let p = strtod(s);
    if p.end != s.len() || p.value.is_nan() {
        return None;
    }
    if p.range_error && (p.value.is_infinite() || p.value == 0.0) {
        return None;
    }
    Some(p.value)
}

/// A ZRANGEBYSCORE bound's number as Redis's zslParseRange reads it:
/// `strtod` up to the C string's end (leading spaces allowed, an empty text
/// is 0, overflow is ±inf), NaN refused.
pub fn range_float(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    let p = strtod(s);
    // strtod leaves `end` at the start when nothing converts: then the
    // text must be empty for the C check `*end == '\0'` to pass.
    if p.end != s.len() || p.value.is_nan() {
        return None;
    }
    Some(p.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_like_string2d() {
        let ok: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+INF", f64::INFINITY),
            ("0x10", 16.0),
            ("0x1.8p1", 3.0),
            ("-0", -0.0),
            ("1e-310", 1e-310),
        ];
        for (s, v) in ok {
            assert_eq!(string2d(s.as_bytes()), Some(*v), "{s}");
        }
        for bad in [
            "", " 1", "1 ", "nan", "-nan", "1e400", "1e-400", "abc", "1e", "e1", ".", "1x", "0x",
            "--1", "inf1",
        ] {
            assert_eq!(string2d(bad.as_bytes()), None, "{bad:?}");
        }
        // "1e" reads "1" and stops at "e": not the whole text.
        assert_eq!(strtod(b"1e").end, 1);
        assert_eq!(strtod(b"0x").end, 1);
        assert_eq!(strtod(b"nan(abc)x").end, 8);
    }

    #[test]
    fn range_bounds_like_zslparserange() {
        assert_eq!(range_float(b""), Some(0.0));
        assert_eq!(range_float(b" 1"), Some(1.0));
        assert_eq!(range_float(b"1e400"), Some(f64::INFINITY));
        assert_eq!(range_float(b"2\0junk"), Some(2.0));
        assert_eq!(range_float(b" "), None);
        assert_eq!(range_float(b"1 "), None);
        assert_eq!(range_float(b"nan"), None);
        assert_eq!(range_float(b"x"), None);
    }
}
