//! Number parsing with Redis's exact rules, shared by the config parser,
//! the keyspace (string encodings) and command arguments, and the one
//! integer-to-text writer ([`Decimal`]) of replies, the replication stream
//! and stored counters. Pure functions.

/// Redis's string2ll: optional '-', then digits with no leading zero (the
/// single "0" excepted, "-0" rejected), no '+', no spaces, at most 20 bytes,
/// and the value must fit an i64.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        // -(2^63) is the one magnitude with no positive i64 counterpart.
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// Two-digit lookup table "00".."99" for [`Decimal`].
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The decimal text of an integer, on the stack (no allocation).
pub struct Decimal {
    buf: [u8; 21],
    start: usize,
}

impl Decimal {
    pub fn u64(v: u64) -> Decimal {
        let mut d = Decimal {
            buf: [0; 21],
            start: 21,
        };
        d.put_digits(v);
        d
    }

    pub fn i64(n: i64) -> Decimal {
        let mut d = Decimal::u64(n.unsigned_abs());
        if n < 0 {
            d.start -= 1;
            d.buf[d.start] = b'-';
        }
        d
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Two digits per division halves the divisions.
    fn put_digits(&mut self, mut v: u64) {
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            self.start -= 2;
            self.buf[self.start..self.start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            let pair = v as usize * 2;
            self.start -= 2;
            self.buf[self.start..self.start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            self.start -= 1;
            self.buf[self.start] = b'0' + v as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_i64_strict, Decimal};

    #[test]
    fn decimal_text_of_every_magnitude() {
        let mut cases = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, -1, -10, -100];
        cases.extend([i64::MIN, i64::MIN + 1, i64::MAX]);
        cases.extend((0..19).map(|p| 10i64.pow(p) - 1));
        cases.extend((0..19).map(|p| -(10i64.pow(p))));
        for n in cases {
            assert_eq!(Decimal::i64(n).as_bytes(), n.to_string().as_bytes(), "{n}");
        }
        for v in [0, 7, 42, u64::MAX, u64::MAX / 10, 10u64.pow(19)] {
            assert_eq!(Decimal::u64(v).as_bytes(), v.to_string().as_bytes(), "{v}");
        }
    }

    #[test]
    fn follows_string2ll() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1.5",
        ] {
            assert_eq!(parse_i64_strict(bad), None, "{bad:?}");
        }
    }
}
