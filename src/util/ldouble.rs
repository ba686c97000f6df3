//! Software x87 80-bit `long double`, just enough to reproduce Redis's
//! `INCRBYFLOAT` / `HINCRBYFLOAT` byte for byte.
//!
//! # What it emulates
//!
//! Redis (7.0) computes both commands in C `long double`, which on x86-64
//! Linux is the x87 extended format: 1 sign bit, 15-bit exponent (bias
//! 16383), 64-bit significand with an explicit integer bit, arithmetic
//! rounded to nearest, ties to even. The exact steps are:
//!
//! 1. `string2ld` (util.c) parses the stored value and the increment: the
//!    length must be 1..=5119 bytes (`MAX_LONG_DOUBLE_CHARS` is 5*1024 and
//!    the string is copied into a buffer of that size with a NUL), the first
//!    byte must not be C `isspace`, glibc `strtold` must consume every byte
//!    (so trailing garbage, trailing spaces and embedded NULs reject), a
//!    result that `strtold` flags `ERANGE` *and* that is `±HUGE_VAL` or zero
//!    rejects (decimal overflow and underflow-to-zero; nonzero subnormal
//!    results are accepted), and NaN rejects. What `strtold` accepts:
//!    optional sign; decimal `digits[.digits][e[sign]digits]` (at least one
//!    digit, either side of the point); hexadecimal
//!    `0x hexdigits[.hexdigits][p[sign]digits]`; `inf` / `infinity`
//!    (case-insensitive). So `"inf"` parses (and then fails the result
//!    check) while `"nan"` is rejected outright; `"0x"` with no hex digit
//!    is rejected (strtold stops after the `0`). Decimal and hexadecimal
//!    input is rounded correctly for any number of digits (glibc uses exact
//!    multi-precision), which this module reproduces with a small
//!    big-integer type, plus one glibc 2.36 subnormal quirk (below).
//! 2. `value += incr` in `long double`.
//! 3. `isnan(value) || isinf(value)` gives `ERR increment would produce NaN
//!    or Infinity`.
//! 4. `ld2string(.., LD_STR_HUMAN)` formats the result: `snprintf("%.17Lf")`
//!    (the exact binary value rounded to 17 fractional digits, exact ties to
//!    even, never an exponent, so huge values print all ~4933 integer
//!    digits), then trailing `'0'`s and a trailing `'.'` are removed, and a
//!    result of exactly `"-0"` becomes `"0"`. Infinity would print as
//!    `inf`/`-inf` (unreachable after step 3).
//!
//! `HINCRBYFLOAT` is the same except the increment is parsed first, an
//! infinite increment is refused early with `ERR value is NaN or Infinity`,
//! and an unparsable stored field gives `ERR hash value is not a float`.
//!
//! # Why
//!
//! Rust has no 80-bit float. Computing in `f64` gives different digits: for
//! `INCRBYFLOAT k 0.1` then `INCRBYFLOAT k 0.2`, `f64` yields
//! `0.30000000000000004` where Redis replies `0.3`.
//!
//! # Dependencies
//!
//! None: only `core`/`std`, no `unsafe`, no FFI, no platform `long double`.
//! It gives the same answers on every target.
//!
//! # Fidelity
//!
//! Checked against glibc 2.36 `strtold` + x87 addition + `snprintf("%.17Lf")`
//! on x86-64 (see `tools/` and `examples/compare_glibc.rs`) and against a
//! real redis-server 7.0.15. Subnormals are handled exactly (gradual
//! underflow down to 2^-16445). Non-canonical x87 encodings (unnormals,
//! pseudo-infinities, pseudo-NaNs), which only [`LongDouble::from_bits`] can
//! create, behave as the hardware treats them: invalid operands (NaN);
//! pseudo-denormals are read as the equal denormal/normal value. NaN
//! payload propagation is not modelled (Redis never lets a NaN through).
//!
//! glibc quirk: glibc 2.36's `strtold` returns zero (with `ERANGE`, so
//! Redis rejects the input) for exactly `2^-16446 + 2^-16510`, which
//! correctly rounded is the least subnormal. It is reproduced (the real
//! redis-server 7.0.15 rejects `0x1.0000000000000001p-16446` too); only hex
//! input can spell that value within Redis's length limit. Newer glibc
//! versions may have fixed this.
//!
//! Cost (release build): ordinary inputs take about a microsecond to parse,
//! add and format; the extremes (a 5119-digit input, or formatting a value
//! near `LDBL_MAX`, ~4933 digits) take up to about 1.5 ms.

use std::cmp::Ordering;
use std::fmt;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` rejects inputs of this
/// length or longer.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Biased exponent of infinities and NaNs.
const EXP_SPECIAL: u16 = 0x7fff;
/// Explicit integer bit of the significand.
const INT_BIT: u64 = 1 << 63;
/// A finite value with biased exponent `b >= 1` is `mant * 2^(b - EXP_OFFSET)`.
const EXP_OFFSET: i64 = 16383 + 63;
/// Scale of the least significant significand bit of subnormals (and of
/// biased exponent 1): `2^-16445`.
const MIN_LSB: i64 = 1 - EXP_OFFSET;
/// `10^17`, the scale of the 17 fractional digits of `%.17Lf`.
const TEN_POW_17: u128 = 100_000_000_000_000_000;

/// An x87 80-bit extended value: sign, 15-bit biased exponent and 64-bit
/// significand with explicit integer bit, stored as its bit fields.
///
/// Values produced by this module are always canonically encoded.
/// Equality (`PartialEq`/`Eq`) is *bitwise*: `+0 != -0`, and a NaN equals
/// itself if it has the same encoding. It is not IEEE comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LongDouble {
    sign: bool,
    exp: u16,
    mant: u64,
}

/// The decoded meaning of an encoding.
enum Class {
    Zero,
    /// `mant * 2^e`, `mant != 0`.
    Finite {
        mant: u64,
        e: i64,
    },
    Inf,
    Nan,
}

impl LongDouble {
    /// `+0`.
    pub const ZERO: LongDouble = LongDouble {
        sign: false,
        exp: 0,
        mant: 0,
    };
    /// `+inf`.
    pub const INFINITY: LongDouble = LongDouble {
        sign: false,
        exp: EXP_SPECIAL,
        mant: INT_BIT,
    };
    /// `-inf`.
    pub const NEG_INFINITY: LongDouble = LongDouble {
        sign: true,
        exp: EXP_SPECIAL,
        mant: INT_BIT,
    };
    /// The x87 "real indefinite" quiet NaN, what `inf + -inf` produces.
    pub const NAN: LongDouble = LongDouble {
        sign: true,
        exp: EXP_SPECIAL,
        mant: 0xC000_0000_0000_0000,
    };

    /// Parses like Redis 7.0 `string2ld` (glibc `strtold` plus Redis's
    /// checks); `None` where Redis would reply "not a valid float".
    ///
    /// Rejects: empty input, input of [`MAX_LONG_DOUBLE_CHARS`] bytes or
    /// more, a leading C-locale space (`' '`, `\t`, `\n`, `\v`, `\f`,
    /// `\r`), anything `strtold` would not consume entirely (including
    /// trailing spaces and NUL bytes), NaN, finite input that overflows to
    /// infinity, and nonzero input that underflows to zero. Accepts `inf` /
    /// `infinity` in any case with an optional sign (the caller's NaN/inf
    /// result check then refuses them), decimal and `0x` hexadecimal floats.
    /// Rounding is correct (nearest, ties to even) for any number of digits.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS || is_c_space(s[0]) {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::infinity(neg));
        }
        if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
            // With no hex digit after "0x", strtold converts just the "0"
            // and stops at the 'x': trailing garbage, so rejected too.
            return parse_hex(neg, &rest[2..]);
        }
        parse_dec(neg, rest)
    }

    /// `self + other` as the x87 FPU computes it: exact sum rounded to 64
    /// significant bits, nearest-even, with gradual underflow; overflow
    /// gives ±infinity; `inf + -inf` gives NaN; an exact zero sum is `+0`
    /// unless both operands are `-0`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> LongDouble {
        match (self.classify(), other.classify()) {
            (Class::Nan, _) => self.quiet(),
            (_, Class::Nan) => other.quiet(),
            (Class::Inf, Class::Inf) => {
                if self.sign == other.sign {
                    self
                } else {
                    LongDouble::NAN
                }
            }
            (Class::Inf, _) => self,
            (_, Class::Inf) => other,
            (Class::Zero, Class::Zero) => LongDouble::zero(self.sign && other.sign),
            (Class::Zero, Class::Finite { mant, e }) => {
                round_pack(other.sign, mant.into(), e, false)
            }
            (Class::Finite { mant, e }, Class::Zero) => {
                round_pack(self.sign, mant.into(), e, false)
            }
            (Class::Finite { mant: ma, e: ea }, Class::Finite { mant: mb, e: eb }) => {
                // Order so that `a` has the larger (or equal) scale.
                let ((sa, ma, ea), (sb, mb, eb)) = if ea >= eb {
                    ((self.sign, ma, ea), (other.sign, mb, eb))
                } else {
                    ((other.sign, mb, eb), (self.sign, ma, ea))
                };
                // 62 guard bits; bits shifted out of `b` are jammed into its
                // lowest bit. When any are lost (d > 62) `a` is normal and
                // the sum keeps >= 125 significant bits, so the jam bit sits
                // far below the rounding position and rounding stays exact.
                let a = u128::from(ma) << 62;
                let b = u128::from(mb) << 62;
                let d = ea - eb;
                let b = if d == 0 {
                    b
                } else if d >= 127 {
                    1
                } else {
                    let lost = b & ((1u128 << d) - 1);
                    (b >> d) | u128::from(lost != 0)
                };
                let (sign, r) = if sa == sb {
                    (sa, a + b)
                } else {
                    match a.cmp(&b) {
                        Ordering::Greater => (sa, a - b),
                        Ordering::Less => (sb, b - a),
                        Ordering::Equal => return LongDouble::ZERO,
                    }
                };
                round_pack(sign, r, ea - 62, false)
            }
        }
    }

    /// Neither infinite nor NaN (zeros and subnormals are finite).
    pub fn is_finite(self) -> bool {
        matches!(self.classify(), Class::Zero | Class::Finite { .. })
    }

    /// Is this a NaN (including invalid x87 encodings)?
    pub fn is_nan(self) -> bool {
        matches!(self.classify(), Class::Nan)
    }

    /// Is this `+inf` or `-inf`?
    pub fn is_infinite(self) -> bool {
        matches!(self.classify(), Class::Inf)
    }

    /// The sign bit.
    pub fn is_sign_negative(self) -> bool {
        self.sign
    }

    /// Redis's `ld2string(buf, MAX_LONG_DOUBLE_CHARS, value, LD_STR_HUMAN)`,
    /// byte-exact: `"%.17Lf"` (glibc: exact value rounded half-to-even to 17
    /// decimals), trailing zeros and a trailing dot removed, `"-0"` turned
    /// into `"0"`; infinities are `inf`/`-inf`. NaN gives glibc's `nan` /
    /// `-nan` (never reached by the Redis commands; some later Redis
    /// versions print `nan` explicitly). Output is at most 4952
    /// bytes, so Redis's buffer never overflows.
    pub fn to_human_string(self) -> String {
        let (mant, e) = match self.classify() {
            Class::Nan => return if self.sign { "-nan" } else { "nan" }.to_string(),
            Class::Inf => return if self.sign { "-inf" } else { "inf" }.to_string(),
            // "%.17Lf" gives "0.00000000000000000" or "-0.000…" → "0".
            Class::Zero => return "0".to_string(),
            Class::Finite { mant, e } => (mant, e),
        };
        let mut out = String::new();
        if self.sign {
            out.push('-');
        }
        let frac = if e >= 0 {
            let mut big = Big::from_u64(mant);
            big.shl_assign(e as u64);
            out.push_str(&big.to_decimal());
            0
        } else {
            let k = -e; // > 0
            let (int_part, frac_bits) = if k < 64 {
                (mant >> k, mant & ((1u64 << k) - 1))
            } else {
                (0, mant)
            };
            // frac = frac_bits / 2^k; scaled = frac * 10^17 < 2^121.
            let n = u128::from(frac_bits) * TEN_POW_17;
            let q = if k >= 122 {
                0 // n < 2^121 <= half a unit: rounds down
            } else {
                let q = n >> k;
                let rem = n & ((1u128 << k) - 1);
                let half = 1u128 << (k - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            let (int_part, q) = if q == TEN_POW_17 {
                (u128::from(int_part) + 1, 0)
            } else {
                (u128::from(int_part), q)
            };
            out.push_str(&int_part.to_string());
            q
        };
        if frac != 0 {
            let digits = format!("{frac:017}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        if out == "-0" {
            out = "0".to_string();
        }
        out
    }

    /// Exact conversion (every `f64` is representable), NaN payloads kept
    /// and quieted as the FPU's `fld` does.
    pub fn from_f64(x: f64) -> LongDouble {
        let bits = x.to_bits();
        let sign = bits >> 63 != 0;
        let bexp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        match bexp {
            0 if frac == 0 => LongDouble::zero(sign),
            0 => round_pack(sign, frac.into(), -1074, false),
            0x7ff if frac == 0 => LongDouble::infinity(sign),
            0x7ff => LongDouble {
                sign,
                exp: EXP_SPECIAL,
                mant: INT_BIT | (1 << 62) | (frac << 11),
            },
            _ => round_pack(sign, (frac | (1u64 << 52)).into(), bexp - 1075, false),
        }
    }

    /// Nearest `f64` (ties to even), overflow to ±infinity, gradual
    /// underflow; NaN gives a quiet NaN with the same sign.
    pub fn to_f64(self) -> f64 {
        let (mant, e) = match self.classify() {
            Class::Zero => return if self.sign { -0.0 } else { 0.0 },
            Class::Inf => {
                return if self.sign {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            Class::Nan => return if self.sign { -f64::NAN } else { f64::NAN },
            Class::Finite { mant, e } => (mant, e),
        };
        let sign_bit = u64::from(self.sign) << 63;
        let bl = i64::from(64 - mant.leading_zeros());
        let top = e + bl - 1;
        let mut lsb = (top - 52).max(-1074);
        let drop = lsb - e;
        let mut m = if drop <= 0 {
            u128::from(mant) << (-drop)
        } else {
            shift_round(mant.into(), drop, false)
        };
        if m == 1u128 << 53 {
            m >>= 1;
            lsb += 1;
        }
        let m = m as u64; // < 2^53
        let bits = if m == 0 {
            0
        } else if m >= 1u64 << 52 {
            let biased = lsb + 1075;
            if biased >= 0x7ff {
                0x7ffu64 << 52
            } else {
                ((biased as u64) << 52) | (m & ((1u64 << 52) - 1))
            }
        } else {
            m
        };
        f64::from_bits(sign_bit | bits)
    }

    /// `(long long) ceill(self * k)` as x87 code computes it: the exact
    /// product rounded to the 64-bit significand (nearest, ties to even),
    /// rounded up to an integer, then converted. NaN, infinities and
    /// results outside `i64` give `i64::MIN`, the FPU's "integer
    /// indefinite". Redis 7.0 turns a blocking timeout in seconds into
    /// milliseconds this way (k = 1000), which `f64` cannot mimic near
    /// 2^63.
    pub fn ceil_mul_i64(self, k: u32) -> i64 {
        let (mant, e) = match self.classify() {
            Class::Zero => return 0,
            Class::Inf | Class::Nan => return i64::MIN,
            Class::Finite { mant, e } => (mant, e),
        };
        let p = u128::from(mant) * u128::from(k);
        if p == 0 {
            return 0;
        }
        let width = i64::from(128 - p.leading_zeros());
        // At most 2^64 after rounding, so the shifts below cannot overflow.
        let (m, e) = if width > 64 {
            (shift_round(p, width - 64, false), e + width - 64)
        } else {
            (p, e)
        };
        // The integer part, and whether a fraction was cut off.
        let (whole, cut) = match e {
            64.. => return i64::MIN,
            0.. => (m << e, false),
            _ if e <= -128 => (0, true),
            _ => (m >> -e, m & ((1u128 << -e) - 1) != 0),
        };
        // Up is away from zero for a positive value, towards it otherwise.
        let magnitude = whole + u128::from(cut && !self.sign);
        match (self.sign, i64::try_from(magnitude)) {
            (false, Ok(v)) => v,
            (true, Ok(v)) => -v,
            // Only -2^63 fits, and it is `i64::MIN` too.
            _ => i64::MIN,
        }
    }

    /// The 80-bit encoding: bit 79 sign, bits 78..64 biased exponent, bits
    /// 63..0 significand (the layout of the first 10 bytes of a C
    /// `long double` on x86, read little-endian).
    pub fn to_bits(self) -> u128 {
        (u128::from(self.sign) << 79) | (u128::from(self.exp) << 64) | u128::from(self.mant)
    }

    /// Inverse of [`LongDouble::to_bits`]; bits above 79 are ignored. Any
    /// pattern is accepted; non-canonical ones are kept as given (see the
    /// module docs for how arithmetic treats them).
    pub fn from_bits(bits: u128) -> LongDouble {
        LongDouble {
            sign: (bits >> 79) & 1 != 0,
            exp: ((bits >> 64) & 0x7fff) as u16,
            mant: bits as u64,
        }
    }

    fn zero(sign: bool) -> LongDouble {
        LongDouble {
            sign,
            exp: 0,
            mant: 0,
        }
    }

    fn infinity(sign: bool) -> LongDouble {
        LongDouble {
            sign,
            exp: EXP_SPECIAL,
            mant: INT_BIT,
        }
    }

    /// A NaN with its quiet bit set (an invalid encoding becomes the
    /// default NaN, as on the FPU).
    fn quiet(self) -> LongDouble {
        if self.exp == EXP_SPECIAL && self.mant & INT_BIT != 0 {
            LongDouble {
                mant: self.mant | (1 << 62),
                ..self
            }
        } else {
            LongDouble::NAN
        }
    }

    fn classify(self) -> Class {
        match self.exp {
            0 if self.mant == 0 => Class::Zero,
            // Denormal, or pseudo-denormal (integer bit set): same scale.
            0 => Class::Finite {
                mant: self.mant,
                e: MIN_LSB,
            },
            EXP_SPECIAL => {
                if self.mant == INT_BIT {
                    Class::Inf
                } else {
                    // True NaNs, and pseudo-inf/NaN (integer bit clear).
                    Class::Nan
                }
            }
            // Unnormals (integer bit clear) are invalid operands.
            _ if self.mant & INT_BIT == 0 => Class::Nan,
            b => Class::Finite {
                mant: self.mant,
                e: i64::from(b) - EXP_OFFSET,
            },
        }
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// Same as [`LongDouble::add`].
    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble::add(self, other)
    }
}

impl fmt::Display for LongDouble {
    /// Same text as [`LongDouble::to_human_string`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_human_string())
    }
}

/// Errors of [`incr_by_float`] and [`hincr_by_float`], with Redis's exact
/// reply text (see [`IncrError::message`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncrError {
    /// `ERR value is not a valid float`: the stored string value or the
    /// increment does not parse (also HINCRBYFLOAT's increment).
    NotFloat,
    /// `ERR increment would produce NaN or Infinity`: the sum is not finite
    /// (includes an `inf` increment or stored `inf` for INCRBYFLOAT).
    NanOrInfinity,
    /// `ERR hash value is not a float`: HINCRBYFLOAT's stored field does not
    /// parse.
    HashValueNotFloat,
    /// `ERR value is NaN or Infinity`: HINCRBYFLOAT's increment parsed as
    /// an infinity.
    IncrementNanOrInfinity,
}

impl IncrError {
    /// The error reply line as Redis 7.0 sends it (without the `-`).
    pub fn message(self) -> &'static str {
        match self {
            IncrError::NotFloat => "ERR value is not a valid float",
            IncrError::NanOrInfinity => "ERR increment would produce NaN or Infinity",
            IncrError::HashValueNotFloat => "ERR hash value is not a float",
            IncrError::IncrementNanOrInfinity => "ERR value is NaN or Infinity",
        }
    }
}

impl fmt::Display for IncrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IncrError {}

/// Redis 7.0 `INCRBYFLOAT` on a string value: `current` is the stored value
/// (`None` for a missing key, counted as 0), `incr` the argument. Returns
/// the new value's text (what Redis stores and replies) or the error.
///
/// The caller handles `WRONGTYPE`, which Redis checks before either parse.
/// (Redis stores integer-looking strings as integers; that is invisible
/// here because `strtold` reads them to the same value.)
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<String, IncrError> {
    let value = match current {
        Some(s) => LongDouble::parse(s).ok_or(IncrError::NotFloat)?,
        None => LongDouble::ZERO,
    };
    let incr = LongDouble::parse(incr).ok_or(IncrError::NotFloat)?;
    let sum = value.add(incr);
    if !sum.is_finite() {
        return Err(IncrError::NanOrInfinity);
    }
    Ok(sum.to_human_string())
}

/// Redis 7.0 `HINCRBYFLOAT` on one field: `current` is the field's value
/// (`None` if the field or key is missing, counted as 0).
///
/// Redis's order: the increment is parsed first (`NotFloat`), an infinite
/// increment is refused (`IncrementNanOrInfinity`); only then does Redis
/// look the key up (so these two errors win over `WRONGTYPE`, which the
/// caller must check between them and the rest); then the field is parsed
/// (`HashValueNotFloat`) and the sum checked (`NanOrInfinity`).
pub fn hincr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<String, IncrError> {
    let incr = hincr_check_increment(incr)?;
    let value = match current {
        Some(s) => LongDouble::parse(s).ok_or(IncrError::HashValueNotFloat)?,
        None => LongDouble::ZERO,
    };
    let sum = value.add(incr);
    if !sum.is_finite() {
        return Err(IncrError::NanOrInfinity);
    }
    Ok(sum.to_human_string())
}

/// The part of `HINCRBYFLOAT` that Redis runs before the key lookup (and so
/// before `WRONGTYPE`): parse the increment and refuse infinities.
pub fn hincr_check_increment(incr: &[u8]) -> Result<LongDouble, IncrError> {
    let incr = LongDouble::parse(incr).ok_or(IncrError::NotFloat)?;
    if !incr.is_finite() {
        return Err(IncrError::IncrementNanOrInfinity);
    }
    Ok(incr)
}

// ---------------------------------------------------------------------------
// Rounding

/// Shifts `r` right by `drop >= 1` bits, rounding to nearest, ties to even;
/// `sticky` says nonzero bits exist below `r`'s lowest bit.
fn shift_round(r: u128, drop: i64, sticky: bool) -> u128 {
    if drop > 128 {
        return 0; // r < 2^128 <= half of the new unit
    }
    let (kept, rem, half) = if drop == 128 {
        (0, r, 1u128 << 127)
    } else {
        (r >> drop, r & ((1u128 << drop) - 1), 1u128 << (drop - 1))
    };
    if rem > half || (rem == half && (sticky || kept & 1 == 1)) {
        kept + 1
    } else {
        kept
    }
}

/// Rounds `(r + ε) * 2^e` (with `0 < ε < 1` iff `sticky`) to the x87
/// format: 64 significant bits, least significant bit never below
/// `2^-16445`, overflow to infinity. `r` must be nonzero.
fn round_pack(sign: bool, r: u128, e: i64, sticky: bool) -> LongDouble {
    debug_assert!(r != 0);
    let bl = i64::from(128 - r.leading_zeros());
    let top = e + bl - 1;
    let mut lsb = (top - 63).max(MIN_LSB);
    let drop = lsb - e;
    let mut m = if drop <= 0 {
        // Exact: at most 64 bits after the shift.
        r << (-drop)
    } else {
        shift_round(r, drop, sticky)
    };
    if m == 1u128 << 64 {
        m >>= 1;
        lsb += 1;
    }
    let m = m as u64;
    if m == 0 {
        return LongDouble::zero(sign);
    }
    if m & INT_BIT == 0 {
        // Subnormal: only possible at the minimum scale.
        return LongDouble {
            sign,
            exp: 0,
            mant: m,
        };
    }
    let biased = lsb + EXP_OFFSET;
    if biased >= i64::from(EXP_SPECIAL) {
        return LongDouble::infinity(sign);
    }
    LongDouble {
        sign,
        exp: biased as u16,
        mant: m,
    }
}

/// Rounds `num / den * 2^b2` (`num`, `den` nonzero) exactly.
fn round_rational(sign: bool, mut num: Big, mut den: Big, b2: i64) -> LongDouble {
    // Scale so that the quotient q lies in [2^65, 2^67).
    let shift = den.bit_len() as i64 - num.bit_len() as i64 + 66;
    if shift >= 0 {
        num.shl_assign(shift as u64);
    } else {
        den.shl_assign((-shift) as u64);
    }
    let mut q: u128 = 0;
    den.shl_assign(68);
    for i in (0..=67).rev() {
        den.shr1_assign();
        if num.cmp(&den) != Ordering::Less {
            num.sub_assign(&den);
            q |= 1u128 << i;
        }
    }
    let sticky = !num.is_zero();
    let e = b2 - shift;
    if !sticky && is_glibc_half_bit_quirk(q, e) {
        return LongDouble::zero(sign);
    }
    round_pack(sign, q, e, sticky)
}

/// glibc 2.36 `strtold` (`round_and_return`, the `shift == MANT_DIG` case)
/// drops the 65th significant bit of a result whose leading bit is
/// `2^-16446`. The only value for which that changes the outcome is exactly
/// `2^-16446 + 2^-16510`: correctly rounded it is the least subnormal,
/// glibc returns zero (with `ERANGE`, so Redis rejects it). Reachable only
/// through hexadecimal input such as `0x1.0000000000000001p-16446`; the
/// decimal spelling needs more digits than Redis's length limit. Later glibc
/// releases fixed this; we follow the glibc that Redis 7.0 on Debian 12 uses.
fn is_glibc_half_bit_quirk(q: u128, e: i64) -> bool {
    let top = i64::from(127 - q.leading_zeros());
    q.count_ones() == 2 && top - i64::from(q.trailing_zeros()) == 64 && e + top == -16446
}

// ---------------------------------------------------------------------------
// Parsing

/// C `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Exponent magnitudes beyond this are all equivalent (saturate).
const EXP_SATURATE: i64 = 1_000_000_000;

/// Parses `[sign]digits` (at least one digit) filling all of `s`; `None`
/// if malformed. Saturates at ±[`EXP_SATURATE`].
fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = (v * 10 + i64::from(d - b'0')).min(EXP_SATURATE);
    }
    Some(if neg { -v } else { v })
}

/// Splits `digits[.digits]` off the front of `s` with the given digit
/// predicate; returns (digits without the point, count after the point,
/// rest). Digits may be empty.
fn split_mantissa(s: &[u8], is_digit: fn(&u8) -> bool) -> (Vec<u8>, i64, &[u8]) {
    let mut digits = Vec::new();
    let mut i = 0;
    while i < s.len() && is_digit(&s[i]) {
        digits.push(s[i]);
        i += 1;
    }
    let mut frac = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && is_digit(&s[i]) {
            digits.push(s[i]);
            frac += 1;
            i += 1;
        }
    }
    (digits, frac, &s[i..])
}

/// The optional exponent part: empty, or marker (case-insensitive) plus a
/// well-formed exponent. Anything else is trailing garbage.
fn exponent_part(rest: &[u8], marker: u8) -> Option<i64> {
    match rest.split_first() {
        None => Some(0),
        Some((&c, tail)) if c | 0x20 == marker => parse_exponent(tail),
        Some(_) => None,
    }
}

fn parse_dec(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, rest) = split_mantissa(s, u8::is_ascii_digit);
    if digits.is_empty() {
        return None;
    }
    let exp = exponent_part(rest, b'e')?;
    let start = digits.iter().position(|&d| d != b'0');
    let start = match start {
        Some(p) => p,
        None => return Some(LongDouble::zero(neg)),
    };
    let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
    let sig = &digits[start..end];
    let n = sig.len() as i64;
    // value = sig * 10^e10, with 10^(n-1+e10) <= value < 10^(n+e10).
    let e10 = exp - frac + (digits.len() - end) as i64;
    if n - 1 + e10 >= 4933 {
        return None; // >= 1e4933 > LDBL_MAX: overflow, ERANGE
    }
    if n + e10 <= -4951 {
        return None; // < 1e-4951, below half the least subnormal: ERANGE zero
    }
    let mut num = Big::from_decimal(sig);
    let mut den = Big::from_u64(1);
    if e10 >= 0 {
        num.mul_pow10(e10 as u64);
    } else {
        den.mul_pow10((-e10) as u64);
    }
    finish(round_rational(neg, num, den, 0))
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, rest) = split_mantissa(s, u8::is_ascii_hexdigit);
    if digits.is_empty() {
        return None;
    }
    let exp = exponent_part(rest, b'p')?;
    let start = match digits.iter().position(|&d| d != b'0') {
        Some(p) => p,
        None => return Some(LongDouble::zero(neg)),
    };
    let mut num = Big::default();
    for &d in &digits[start..] {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            _ => (d | 0x20) - b'a' + 10,
        };
        num.mul_small(16);
        num.add_small(u32::from(v));
    }
    let b2 = exp - 4 * frac;
    let top = num.bit_len() as i64 - 1 + b2;
    if top >= 16384 {
        return None; // >= 2^16384: overflow
    }
    if top < -16446 {
        return None; // < 2^-16446, half the least subnormal: zero
    }
    finish(round_rational(neg, num, Big::from_u64(1), b2))
}

/// Redis's ERANGE check on a nonzero input: rounding to infinity or zero
/// rejects.
fn finish(v: LongDouble) -> Option<LongDouble> {
    if v.is_finite() && !(v.exp == 0 && v.mant == 0) {
        Some(v)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// A minimal unsigned big integer (little-endian u32 limbs, no high zero limbs).

#[derive(Clone, Debug, Default)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    /// From ASCII decimal digits.
    fn from_decimal(digits: &[u8]) -> Big {
        let mut b = Big::default();
        for chunk in digits.chunks(9) {
            let mut v: u32 = 0;
            for &d in chunk {
                v = v * 10 + u32::from(d - b'0');
            }
            b.mul_small(10u32.pow(chunk.len() as u32));
            b.add_small(v);
        }
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => 32 * (self.0.len() as u64 - 1) + u64::from(32 - top.leading_zeros()),
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry: u64 = 0;
        for limb in &mut self.0 {
            let t = u64::from(*limb) * u64::from(m) + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = u64::from(a);
        for limb in &mut self.0 {
            if carry == 0 {
                break;
            }
            let t = u64::from(*limb) + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut k: u64) {
        while k >= 9 {
            self.mul_small(1_000_000_000);
            k -= 9;
        }
        self.mul_small(10u32.pow(k as u32));
    }

    fn shl_assign(&mut self, n: u64) {
        if self.is_zero() {
            return;
        }
        let limbs = (n / 32) as usize;
        let bits = (n % 32) as u32;
        if bits != 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = *limb;
                *limb = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs != 0 {
            self.0.splice(0..0, vec![0u32; limbs]);
        }
    }

    fn shr1_assign(&mut self) {
        let mut carry = 0u32;
        for limb in self.0.iter_mut().rev() {
            let v = *limb;
            *limb = (v >> 1) | carry;
            carry = v << 31;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`; requires `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let o = other.0.get(i).copied().map_or(0, i64::from);
            let t = i64::from(*limb) - o - borrow;
            if t < 0 {
                *limb = (t + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                *limb = t as u32;
                borrow = 0;
            }
        }
        self.trim();
    }

    /// Divides in place by 10^9, returning the remainder. (A constant
    /// divisor lets the compiler use multiplication.)
    fn div_1e9(&mut self) -> u32 {
        const D: u64 = 1_000_000_000;
        let mut rem: u64 = 0;
        for limb in self.0.iter_mut().rev() {
            let t = (rem << 32) | u64::from(*limb);
            *limb = (t / D) as u32;
            rem = t % D;
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_1e9());
        }
        let mut s = match chunks.pop() {
            None => return "0".to_string(),
            Some(top) => top.to_string(),
        };
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis 7.0.15's `(long long) ceill(ftval * 1000.0)` for blocking
    /// timeouts, checked against its replies: up to 2^63 - 1 ms accepted,
    /// 2^63 and beyond (and NaN, inf) "integer indefinite", a positive
    /// fraction of a millisecond rounded up.
    #[test]
    fn ceil_mul_matches_x87_near_2_pow_63() {
        let ms = |s: &str| LongDouble::parse(s.as_bytes()).unwrap().ceil_mul_i64(1000);
        assert_eq!(ms("1.5"), 1500);
        assert_eq!(ms("-1.5"), -1500);
        assert_eq!(ms("0.0001"), 1);
        assert_eq!(ms("0.0009"), 1);
        assert_eq!(ms("-0.0009"), 0);
        assert_eq!(ms("-0.0"), 0);
        assert_eq!(ms("1e-4000"), 1);
        assert_eq!(ms("9223371000000000"), 9_223_371_000_000_000_000);
        // The products below are 2^63 - 8.2, - 1.36, - 0.38 and + 0.59
        // before rounding to 64 bits; f64 takes all four to 2^63.
        assert_eq!(ms("9223372036854775.8"), 9_223_372_036_854_775_800);
        assert_eq!(ms("9223372036854775.807"), i64::MAX);
        assert_eq!(ms("9223372036854775.8073"), i64::MIN);
        assert_eq!(ms("9223372036854775.809"), i64::MIN);
        assert_eq!(ms("-9223372036854775.8073"), -i64::MAX);
        assert_eq!(ms("9223372036854776"), i64::MIN);
        assert_eq!(ms("1e300"), i64::MIN);
        assert_eq!(ms("inf"), i64::MIN);
    }

    /// `(a, b, bits of a + b, INCRBYFLOAT output)` as computed by glibc 2.36
    /// `strtold` + x87 `long double` addition + `snprintf("%.17Lf")` on
    /// x86-64 (tools/oracle.c, which restates Redis 7.0's string2ld and
    /// ld2string). Bits are the 80-bit encoding in hex; `"X"` and
    /// `"INVALID"` mean an operand was rejected; `"NANINF"` means Redis
    /// replies "increment would produce NaN or Infinity".
    const GLIBC_TABLE: &[(&str, &str, &str, &str)] = &[
    ("0.1", "0.2", "3ffd999999999999999a", "0.3"),
    ("0.3", "0", "3ffd999999999999999a", "0.3"),
    ("10.5", "0.1", "4002a99999999999999a", "10.6"),
    ("5.0e3", "2.0e2", "400ba280000000000000", "5200"),
    ("3.0e3", "3.0e3", "400bbb80000000000000", "6000"),
    ("1e308", "10", "43fe8e679c2f5e44ff8f", "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048"),
    ("1e308", "1e308", "43ff8e679c2f5e44ff8f", "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"),
    ("1.7976931348623157e308", "1.7976931348623157e308", "43fffffffffffffff7ac", "359538626972463139991842093548208868096772893888658356970628841530353257046248792709403737216774171128857586838851041378617416726902272110715794556052955234146997955372576789671236326588091188869859074894581254961338834769297758245552436667197907705664206565009503223382416235440319971852753604933726679072768"),
    ("1e4932", "1e4932", "7fff8000000000000000", "NANINF"),
    ("1.18973149535723176502e4932", "0", "7ffeffffffffffffffff", "1189731495357231765021263853030970205169063322294624200440323733891737005522970722616410290336528882853545697807495577314427443153670288434198125573853743678673593200706973263201915918282961524365529510646791086614311790632169778838896134786560600399148753433211454911160088679845154866512852340149773037600009125479393966223151383622417838542743917838138717805889487540575168226347659235576974805113725649020884855222494791399377585026011773549180099796226026859508558883608159846900235645132346594476384939859276456284579661772930407806609229102715046085388087959327781622986827547830768080040150694942303411728957777100335714010559775242124057347007386251660110828379119623008469277200965153500208474470792443848545912886723000619085126472111951361467527633519562927597957250278002980795904193139603021470997035276467445530922022679656280991498232083329641241038509239184734786121921697210543484287048353408113042573002216421348917347174234800714880751002064390517234247656004721768096486107994943415703476320643558624207443504424380566136017608837478165389027809576975977286860071487028287955567141404632615832623602762896316173978484254486860609948270867968048078702511858930838546584223040908805996294594586201903766048446790926002225410530775901065760671347200125846406957030257138960983757998926954553052368560758683179223113639519468850880771872104705203957587480013143131444254943919940175753169339392366881856189129931729104252921236835159922322050998001677102784035360140829296398115122877768135706045789343535451696539561254048846447169786893211671087229088082778350518228857646062218739702851655083720992349483334435228984751232753726636066213902281264706234075352071724058665079518217303463782631353393706774901950197841690441824738063162828586857741432581165364040218402724913393320949219498422442730427019873044536620350262386957804682003601447291997123095530057206141866974852846856186514832715974481203121946751686379343096189615107330065552421485195201762858595091051839472502863871632494167613804996319791441870254302706758495192008837915169401581740046711477877201459644461175204059453504764721807975761111720846273639279600339670470037613374509553184150073796412605047923251661354841291884211340823015473304754067072818763503617332908005951896325207071673904547777129682265206225651439919376804400292380903112437912614776255964694221981375146967079446870358004392507659451618379811859392049544036114915310782251072691486979809240946772142727012404377187409216756613634938900451232351668146089322400697993176017805338191849981933008410985993938760292601390911414526003720284872132411955424282101831204216104467404621635336900583664606591156298764745525068145003932941404131495400677602951005962253022823003631473824681059648442441324864573137437595096416168048024129351876204668135636877532814675538798871771836512893947195335061885003267607354388673368002074387849657014576090349857571243045102038730494854256702479339322809110526041538528994849203991091946129912491633289917998094380337879522093131466946149705939664152375949285890960489916121944989986384837022486672249148924678410206183364627416969576307632480235587975245253737035433882960862753427740016333434055083537048507374544819754722228975281083020898682633020285259923084168054539687911418297629988964576482765287504562854924265165217750799516259669229114977788962356670956627138482018191348321687995863652637620978285070099337294396784639879024914514222742527006363942327998483976739987154418554201562244154926653014515504685489258620276085761837129763358761215382565129633538141663949516556000264159186554850057052611431952919918807954522394649627635630178580896692226406235382898535867595990647008385687123810329591926494846250768992258419305480763620215089022149220528069842018350840586938493815498909445461977893029113576516775406232278298314033473276603952231603422824717528181818844304880921321933550869873395861276073670866652375555675803171490108477320096424318780070008797346032906278943553743564448851907191616455141155761939399690767415156402826543664026760095087523945507341556135867933066031744720924446513532366647649735400851967040771103640538150073486891798364049570606189535005089840913826869535090066783324472578712196604415284924840041850932811908963634175739897166596000759487800619164094854338758520657116541072260996288150123144377944008749301944744330784388995701842710004808305012177123560622895076269042856800047718893158089358515593863176652948089031267747029662545110861548958395087796755464137944895960527975209874813839762578592105756284401759349324162148339565350189196811389091843795734703269406342890087805846940352453479398080674273236297887100867175802531561302356064878709259865288416350972529537091114317204887747405539054009425375424119317944175137064689643861517718849867010341532542385911089624710885385808688837777258648564145934262121086647588489260031762345960769508849149662444156604419552086811989770240"),
    ("1.18973149535723176502e4932", "1e4913", "7fff8000000000000000", "NANINF"),
    ("1.18973149535723176502e4932", "1e4912", "7ffeffffffffffffffff", "1189731495357231765021263853030970205169063322294624200440323733891737005522970722616410290336528882853545697807495577314427443153670288434198125573853743678673593200706973263201915918282961524365529510646791086614311790632169778838896134786560600399148753433211454911160088679845154866512852340149773037600009125479393966223151383622417838542743917838138717805889487540575168226347659235576974805113725649020884855222494791399377585026011773549180099796226026859508558883608159846900235645132346594476384939859276456284579661772930407806609229102715046085388087959327781622986827547830768080040150694942303411728957777100335714010559775242124057347007386251660110828379119623008469277200965153500208474470792443848545912886723000619085126472111951361467527633519562927597957250278002980795904193139603021470997035276467445530922022679656280991498232083329641241038509239184734786121921697210543484287048353408113042573002216421348917347174234800714880751002064390517234247656004721768096486107994943415703476320643558624207443504424380566136017608837478165389027809576975977286860071487028287955567141404632615832623602762896316173978484254486860609948270867968048078702511858930838546584223040908805996294594586201903766048446790926002225410530775901065760671347200125846406957030257138960983757998926954553052368560758683179223113639519468850880771872104705203957587480013143131444254943919940175753169339392366881856189129931729104252921236835159922322050998001677102784035360140829296398115122877768135706045789343535451696539561254048846447169786893211671087229088082778350518228857646062218739702851655083720992349483334435228984751232753726636066213902281264706234075352071724058665079518217303463782631353393706774901950197841690441824738063162828586857741432581165364040218402724913393320949219498422442730427019873044536620350262386957804682003601447291997123095530057206141866974852846856186514832715974481203121946751686379343096189615107330065552421485195201762858595091051839472502863871632494167613804996319791441870254302706758495192008837915169401581740046711477877201459644461175204059453504764721807975761111720846273639279600339670470037613374509553184150073796412605047923251661354841291884211340823015473304754067072818763503617332908005951896325207071673904547777129682265206225651439919376804400292380903112437912614776255964694221981375146967079446870358004392507659451618379811859392049544036114915310782251072691486979809240946772142727012404377187409216756613634938900451232351668146089322400697993176017805338191849981933008410985993938760292601390911414526003720284872132411955424282101831204216104467404621635336900583664606591156298764745525068145003932941404131495400677602951005962253022823003631473824681059648442441324864573137437595096416168048024129351876204668135636877532814675538798871771836512893947195335061885003267607354388673368002074387849657014576090349857571243045102038730494854256702479339322809110526041538528994849203991091946129912491633289917998094380337879522093131466946149705939664152375949285890960489916121944989986384837022486672249148924678410206183364627416969576307632480235587975245253737035433882960862753427740016333434055083537048507374544819754722228975281083020898682633020285259923084168054539687911418297629988964576482765287504562854924265165217750799516259669229114977788962356670956627138482018191348321687995863652637620978285070099337294396784639879024914514222742527006363942327998483976739987154418554201562244154926653014515504685489258620276085761837129763358761215382565129633538141663949516556000264159186554850057052611431952919918807954522394649627635630178580896692226406235382898535867595990647008385687123810329591926494846250768992258419305480763620215089022149220528069842018350840586938493815498909445461977893029113576516775406232278298314033473276603952231603422824717528181818844304880921321933550869873395861276073670866652375555675803171490108477320096424318780070008797346032906278943553743564448851907191616455141155761939399690767415156402826543664026760095087523945507341556135867933066031744720924446513532366647649735400851967040771103640538150073486891798364049570606189535005089840913826869535090066783324472578712196604415284924840041850932811908963634175739897166596000759487800619164094854338758520657116541072260996288150123144377944008749301944744330784388995701842710004808305012177123560622895076269042856800047718893158089358515593863176652948089031267747029662545110861548958395087796755464137944895960527975209874813839762578592105756284401759349324162148339565350189196811389091843795734703269406342890087805846940352453479398080674273236297887100867175802531561302356064878709259865288416350972529537091114317204887747405539054009425375424119317944175137064689643861517718849867010341532542385911089624710885385808688837777258648564145934262121086647588489260031762345960769508849149662444156604419552086811989770240"),
    ("-1.18973149535723176502e4932", "-1e4913", "ffff8000000000000000", "NANINF"),
    ("1e4933", "0", "X", "INVALID"),
    ("1e-4951", "0", "X", "INVALID"),
    ("2e-4951", "0", "00000000000000000001", "0"),
    ("3.6e-4951", "0", "00000000000000000001", "0"),
    ("0x1p-16445", "0x1p-16445", "00000000000000000002", "0"),
    ("0x1p-16445", "-0x1p-16445", "00000000000000000000", "0"),
    ("0x1.0000000000000001p-16446", "0", "X", "INVALID"),
    ("0x1.00000000000000010p-16446", "0", "X", "INVALID"),
    ("0x1.00000000000000011p-16446", "0", "00000000000000000001", "0"),
    ("0x1.8p-16446", "0", "00000000000000000001", "0"),
    ("0x1p-16446", "0", "X", "INVALID"),
    ("0x1p-16382", "-0x1p-16445", "00007fffffffffffffff", "0"),
    ("3.3621031431120935063e-4932", "-3.6451995318824746025e-4951", "00007fffffffffffffff", "0"),
    ("0.000003814697265625", "0", "3fed8000000000000000", "0.00000381469726562"),
    ("0.0000019073486328125", "0", "3fec8000000000000000", "0.00000190734863281"),
    ("0.00000095367431640625", "0", "3feb8000000000000000", "0.00000095367431641"),
    ("0.000000476837158203125", "0", "3fea8000000000000000", "0.0000004768371582"),
    ("1.000003814697265625", "0", "3fff8000200000000000", "1.00000381469726562"),
    ("0.5", "0.000000000000000005", "3ffe800000000000005c", "0.5"),
    ("0.5", "0.000000000000000015", "3ffe8000000000000115", "0.50000000000000002"),
    ("-1e-17", "0", "bfc6b877aa3236a4b449", "-0.00000000000000001"),
    ("-1e-30", "0", "bf9ba2425ff75e14fc32", "0"),
    ("-0", "-0", "80000000000000000000", "0"),
    ("-0", "0", "00000000000000000000", "0"),
    ("0", "-0", "00000000000000000000", "0"),
    ("-0.0", "0.0", "00000000000000000000", "0"),
    ("1", "-1", "00000000000000000000", "0"),
    ("inf", "1", "7fff8000000000000000", "NANINF"),
    ("-inf", "1", "ffff8000000000000000", "NANINF"),
    ("infinity", "-1", "7fff8000000000000000", "NANINF"),
    ("INF", "-INF", "ffffc000000000000000", "NANINF"),
    ("nan", "1", "X", "INVALID"),
    ("NaN", "0", "X", "INVALID"),
    ("1", "nan(123)", "X", "INVALID"),
    (" 1", "1", "X", "INVALID"),
    ("1 ", "1", "X", "INVALID"),
    ("1", "", "X", "INVALID"),
    ("", "1", "X", "INVALID"),
    ("1.5", "1e", "X", "INVALID"),
    ("1.5", "1e+", "X", "INVALID"),
    ("1.5", ".", "X", "INVALID"),
    ("1.5", "-.5", "3fff8000000000000000", "1"),
    ("1.5", "+.5e1", "4001d000000000000000", "6.5"),
    ("1.5", "0x", "X", "INVALID"),
    ("1.5", "0x.8", "40008000000000000000", "2"),
    ("1.5", "0x1p", "X", "INVALID"),
    ("1.5", "0X1P3", "40029800000000000000", "9.5"),
    ("1.5", "0x.p1", "X", "INVALID"),
    ("1.5", "--1", "X", "INVALID"),
    ("1.5", "+-1", "X", "INVALID"),
    ("1.5", "1,5", "X", "INVALID"),
    ("1.5", "1_000", "X", "INVALID"),
    ("1.5", "infinit", "X", "INVALID"),
    ("1.5", "in", "X", "INVALID"),
    ("18446744073709551615", "0", "403effffffffffffffff", "18446744073709551615"),
    ("18446744073709551616", "0", "403f8000000000000000", "18446744073709551616"),
    ("18446744073709551617", "1", "403f8000000000000000", "18446744073709551616"),
    ("36893488147419103231", "0", "40408000000000000000", "36893488147419103232"),
    ("9223372036854775807", "1", "403e8000000000000000", "9223372036854775808"),
    ("-9223372036854775808", "-1", "c03e8000000000000001", "-9223372036854775809"),
    ("123456789012345678901234567890", "0", "405fc77487fb61b9f077", "123456789012345678899921813504"),
    ("0.1", "-0.1", "00000000000000000000", "0"),
    ("0.1", "0.7", "3ffecccccccccccccccd", "0.8"),
    ("100", "0.01", "4005c8051eb851eb851f", "100.01"),
    ("99.99", "0.01", "4005c800000000000000", "100"),
    ("1.1", "2.2", "4000d333333333333334", "3.3"),
    ("3.14159265358979323846264338327950288", "0", "4000c90fdaa22168c235", "3.14159265358979324"),
    ("2.718281828459045235360287471352662497757", "1", "4000edf85458a2bb4a9b", "3.71828182845904524"),
    ("123.456", "-123.455", "3ff583126e978d500000", "0.001"),
    ("1e-17", "0", "3fc6b877aa3236a4b449", "0.00000000000000001"),
    ("5e-18", "0", "3fc5b877aa3236a4b449", "0"),
    ("5.000000000000000000001e-18", "0", "3fc5b877aa3236a4b449", "0"),
    ("1.5e-17", "0", "3fc78a59bfa5a8fb8737", "0.00000000000000002"),
    ("2.5e-17", "0", "3fc7e69594bec44de15b", "0.00000000000000002"),
    ("0.99999999999999999", "0", "3ffeffffffffffffff48", "0.99999999999999999"),
    ("0.999999999999999995", "0", "3ffeffffffffffffffa4", "1"),
    ("0.9999999999999999949", "0", "3ffeffffffffffffffa2", "0.99999999999999999"),
    ("99999999999999999.999999999999", "0", "4037b1a2bc2ec5000000", "100000000000000000"),
    ("1e20", "1", "4041ad78ebc5ac620000", "100000000000000000000"),
    ("1e19", "-1", "403e8ac7230489e7ffff", "9999999999999999999"),
    ("4.9406564584124654e-324", "0", "3bccffffffffffffff64", "0"),
    ("2.2250738585072014e-308", "0", "3c018000000000000046", "0"),
    // --- random sample (examples/compare_glibc.rs, seed 777) ---
    ("-9.e0", "-870.13616", "c008dbc8b6d86ec17ebb", "-879.13616"),
    ("9.5342511423e-332", "-0x.5975fdE0DD12d658Ea6P-1496", "3bb3a5c3bcc3b6d7e560", "0"),
    ("-6363", "4.8827e-6", "c00bc6d7fffd70a7b49a", "-6362.99999511730000012"),
    ("368.71", "-0.000353743322193622589111328125", "4007b85ad5b044147ae1", "368.70964625667780637"),
    ("-232628198084267999232", "0", "c042c9c5d61a40000000", "-232628198084267999232"),
    ("11597345731755.25773382186889648437500000000000000000000001", "+4.195868e14", "402fc41470eb6855a0fd", "431184145731755.257720947265625"),
    ("0", "-1267650600228229401496703206173", "c0638000000000000000", "-1267650600228229401496703205376"),
    ("+0xfaAA7.7p-2885", "-1.87e-1", "bffcbf7ced916872b021", "-0.187"),
    ("-0XaF6.4P-11445", "0XaF6.4P-11445", "00000000000000000000", "0"),
    ("y\0N", "-y\0N", "X", "INVALID"),
    ("-870.23671", "+870.2367", "bfeea7c5ac4718000000", "-0.00000999999999995"),
    ("-76797.8274", "-0e-99999", "c00f95fee9e83e425aee", "-76797.82739999999999725"),
    ("+0e-5000", "-0e-50001", "00000000000000000000", "0"),
    ("-0366.8065", "0", "c007b7673b645a1cac08", "-366.80649999999999999"),
    (" 35.649", "-7208514.95", "X", "INVALID"),
    ("-198014624.99611117077067945194918175702743732504814551042671876614331731547854e19", "+1605626.42828746692526920014643110334873199462890625", "c059ccbe08e9accb7031", "-1980146249961111707659010048"),
    ("+0x0p0", "+889567", "4012d92df00000000000", "889567"),
    ("0x9FC43a7aed8d0D0E444d.Cp3", "079512.07714575914298", "40519fc43a7aed8d0d0e", "6035808372450496678461440"),
    ("0XaE6E66e.8c11fp4", "-0XaE6E66e.8c11fp4", "00000000000000000000", "0"),
    ("0.52", "-0.521", "bff583126e978d4fe000", "-0.001"),
    ("0.974", "-0x4EC77dEf7BCaa.6C2Eep37", "c0569d8efbdef7954d86", "-190476575919301127007371264"),
    ("", "-39579734977268647521.0338641670487262051612e40", "X", "INVALID"),
    ("+184735744", "+2.49214781572454e3965", "7373d91c4b7fb25438d2", "249214781572454000004988845927203503994138145464846540545321010920910142723222993783277613732134392970119618653735791919068040381900058433077591766956366080420816535910938131873560734443967745585795041790445945168036729045783889158987025909321159468903827198911902927012821463104728184915625202242229647838522531957482736794203053421493240306948613002730351328162227883916314786418239096368966579504715251849014747678902800590838290833510491016564798660573973859346430384231739230598581545726478927523436627827520544084542539699443940106577524120745152136730298200670870522575987675842691337932571575180536741127600254612066197860652968914274625549538185791995552028374772554382986358172920743100508441790095072082871591589741164402605286044899526617073685735925112991248910638291850198277730107208927434319099458271567613072362586882194804581641633830790772493065198273196972586992520575284794534524302863304610628623149613213277930805972325414132665885369811919681995731739856240294476966593057109492868613250277945626000565776617027941664141897348801114602413504949004708986632187098442878908493414971407237753259570034876638998777210004995731388202422482501485973919390539563501063453585262712297021372393834947097230480385530054469141882630506823227765835374913310953690327643481309288272669909604550460215557338883427095868429585991231843232065822577082269914532718149429188867279414624528856155941588749913520442261990466115925054435638435542497653904830464333634628466375468894813311299802399582716075547271226670622598660676776005510287067723834906942112362043312832025681133891953766360359948087209819256444224458144184138374930422467912901332773314928147886348051042383408394027769334360330367987639712858526466883683373487650152088616418492183165291224197802759599452771865477234646098435383465812368261347858627474890898449569560591664142772109391598151779280560052478047663700196819729887291051969929491503360655776302845691207863062320561713541353558836683811098383411739527060513407309457650915190681384987566442522012163792249829947520018101687279791651170192613709198793003592435131709239990998223993700920966405815196797471399976165846152146430271883032224667423658172529669440533569733527042874860742674697771537996551432647545053699765605770846611447636956111841596293010200368232501019195275231141921931328362618750267329751544289291108325653193162105399743647206310499010992055537750539719049998150568280334000254290658871190892839558824549671474208876144136242466782157021249670788756961935456232625552371399185358093186524848038901780387370371964083008467031540199922047592210448156396380962046697508160701749427273810798800306250447574253210916730456716878293334683504589542933998949211508074253924801001122922824760442483375726027235089090432387391149238895141870585001428881428526865032104424974861280551522945244319311419024445333475245113242895391554181578327543243259825028650199683030127958727221136302569619335248751210961868792155841975856217942166654824164954047235056755674972012606873380723090269040240102896324477182790952958864792717472765105390061555241669769752351947768863820452331529195070664212591304513326609508193440763405424580972786933368428580173041196797315024751636608234771314627428907510922860196092421727631619554943783272770864565351403998067604577140482049185532936890818534777046019829137243654846908473423755999120190307792415767693579514541759591315178166667826222164057462974915203657063833491965124056128136554558741124173904303683534931057225012537832321425426255981647368892681935160040514089016976156888484888436148470448523400842021946696447530667519140125978834943092216272839468882307934696716149806271704692074434496497942291033800478746542206894880828587908090892491432016174925738852851413647881993788815079726704367570901363308281004228528267478199525916111146862906847343106824008503849842070839767108436644474320172072891239002793849554141959311756916760204802137028085269979549509574176276480"),
    ("-nan", "-0X2200.1FdDef289bb35Dd4fdP3969", "X", "INVALID"),
    ("ey\t_", "1", "X", "INVALID"),
    ("+122.0681", "-9.094301949583436e3", "c00c8c30ef7643e429d3", "-8972.23384958343600015"),
    ("nanx", "-01679495.6426437072312", "X", "INVALID"),
    ("-0x1.8p-16446", "8.91848271e-19", "3fc3839d133746d44ce9", "0"),
    ("+766933.689152", "0.47", "4012bb3d628be2f7b17d", "766934.15915200000000596"),
    ("-0XB633667.cEp-82", "0", "bfc8b633667ce0000000", "-0.00000000000000004"),
    ("0x1.8p-16446", "72893910015729721035", "4040fce6cc3cda36f7b3", "72893910015729721036"),
    ("+35603", "58654", "400fb818800000000000", "94257"),
    ("3.5645052303996e4", "18446744073709551616", "403f800000000000459f", "18446744073709587262"),
    ("7.1874", "N", "X", "INVALID"),
    ("0", "4.258274215270227e-51", "3f57cbee4a3bb3d14f3c", "0"),
    ("6.30615590750261038e-4932", "-in", "X", "INVALID"),
    ("0x3Cdb3cb5B7a.B", "0x.0p-5", "4028f36cf2d6deac0000", "4182019627898.6875"),
    ("1583512.1080862022936344146728515625", "-7.98393163e-17", "4013c14cc0dd5c4c8000", "1583512.10808620229363441"),
    ("-919184826563360494704125804544.99999999999999999999", "919184826563360494704125804544.99999999999999999999", "00000000000000000000", "0"),
    ("-3.912390573657873834717e+3747", "-31131.85426", "f0a096655d3c33628bb7", "-3912390573657873834894158346416628486696219878918254997037089205144374361513649361765974346042549839708812135746271824399055071548237847660739800318464670418071019569684903269308721032921806334503005904677050737433681589650580148343250048997028198175710053519433099374343578973619052888781620286347794624864502390446006198141377391298021178775859737990180007546569399286582132257556992018451205989473080373380453265858159801032496187920933842880013585201272447317472001679163342213160626304152542147812840626625770723131735268877723523858200448584923373068433610499081431198443070103742089436808323131865636676472945814752672944776924773771999847838530465147541984086624594002192255669288144829268589510243207429154497369492073636366996614294177302370981077100497012418117364861886397367130050084827836244348449595989814233475326001952746659028238240675526925793132739979155211227232750804712912291207128988771762435766795178347752973105545475558833038849946953085126954052633576622364163336589374652683664110636247118200368658978372107708529842574485932580273660298637811636493684963050238552873700907312856680362892591141410252375552811604408576426531192469673343686563934804981116864696951686180316387213390757353945084857527134544177831786548821164222715096015753568292292245407535516145045872859044415565282817397927751882943759984778875342910741577602162673543141221438612805689357370581427656130121775261759869291518517926847875059836659283449414488271553009124507486716238113442686824752873258306835498362699126856680479134198371032533034757751044527460362004342001530143754368503760543412540859072834069698177354200542991305199575073885389046979760666924517100145716249658180023232719932442036981935709195826763218678560755808625247089313471052090562512443123843129907444546039741091183470350424370811867173194528202714235848585606130268577316826075501158068144053041715248515312600327291435613728123201156627129957490138717986065795703734216481673277522299876967382603113723597614076363399554621109204007691408252875864800356788609951916956336506322322005625765579499117168610163488437829545901164555758047708924058036134086449608652624227247383627702592995942545352724024081413014829314353462062772586480274055429827642041739332529883147049357034747836129172398099185487144576641544108469430192493195129674196067015944792463169853004907943117285116179475038486422646453399059258801104303119497950981851818582828279857507481680792391956539403795641355442583113117183674970386690095998678982469856828345555087917166730187213150346799432610651599725198464733031035471433748666191692168511662121072048260565057250069504124085986366573685402415485399353061086971925936047675261198023116819198506347118333116761845394298041502797819573267818894563084194725701063744477046433392455577197380070859024908140510426216133248651495943756573800378620923208538539466981316769050143380790255165526284968566058334497598336726283528597217820089031559407602346280523323947709781849366204417778115463886187527449257334213544240094334361938662602762263829364128484679285898845284326730846614268811431138939233620828905842546886523427889850662138369918768536514522226631822735867549822136100680519527050598585579958246629082484502619617226475317187464131358772349323968067051040204554391971167341498392998687957190891132562299864215283220100339520760149395733377631667459975902644209077233695083437370230087823668239908802919840023397668714939082539360929774895040557688748569339159538524032243433389664250238886614598477025059205834307061052930313164399675860274984687176723546683646873916198756628858238686243105965532327174562563771092675901995383009102441151438889928512315574833919456435431885142493794985782848268428272752849431918415935985300044513280"),
    ("+6.9694572095475e-1362", "0", "2e55a17445bf5658bfbc", "0"),
    ("+6.260367727452767e-11", "-0.000000005192498506707001571699438233684832038705801032785203119601646903902292251586914062599999999999999999999", "bfe3b04308389cb1aebd", "-0.00000000512989483"),
    ("0", "5900352.910505214", "4015b41081d22dbd49ef", "5900352.91050521399984063"),
    ("0", "-inf", "ffff8000000000000000", "NANINF"),
    ("+18446744073709550045", "+6.688166421665287938E250", "43409576428c5802df7a", "66881664216652879378104029980989433705137810333345525925186502074536713628939724436724076461940579187637854169233433109881804065375016554391963162670844882333400186275377896399421741176335346397355595215244883977167413927527039678707288738248452472832"),
    ("0.14", "0", "3ffc8f5c28f5c28f5c29", "0.14"),
    ("0", "0XB46D22fP-89", "3fc1b46d22f000000000", "0"),
    ("-3.e-25", "0.000000000000379113204045967988609078247463912703096866607666015625", "3fd5d56bf87fff464f1a", "0.00000000000037911"),
    ("93.4", "-0x.E5cEp-42", "4005bacccccccccc59e6", "93.39999999999979589"),
    ("+1.5817395150e22", "-341224932595489932509557293056", "c06189d1d4577b317c67", "-341224916778094782501378588672"),
    ("+1.7586987086630e4935", "+0XC9ad25AB.07a210A9Ep26", "X", "INVALID"),
    ("91228.3253139635084323580779407822872e-32", "6.90043455202461467E-227", "3fa5908e9af051609c46", "0"),
    ("62.010e", "69174114574089536.34960937500000000000000000000001", "X", "INVALID"),
    ("4.08723750876992240e5", "73708291510384520409938118", "4054f3e159f507d4e920", "73708291510384520408858624"),
    ("0", "+9.599200e-4953", "X", "INVALID"),
    ("0", "-66418.1", "c00f81b90ccccccccccd", "-66418.10000000000000142"),
    ("1.18973149535723176508575932662800702e4932", "+86.8", "X", "INVALID"),
    ("0", "0.0", "00000000000000000000", "0"),
    ("-1197882736442993973301084160", "964449547676177950408704", "c058f784539634dd4e04", "-1196918286895317795343433728"),
    ("-17301875.79", "654958837221892544", "403a916e197a215204c3", "654958837204590668.1875"),
    ("-9223372036854774696", "9223372036854774696", "00000000000000000000", "0"),
    ("+8.6482447233948127e-3103", "+9223372036854777636", "403e8000000000000724", "9223372036854777636"),
    ("\t", "+0x2fEc9f.c6P-49", "X", "INVALID"),
    ("99489", "709566635365377778822666", "404e9641af337ba78551", "709566635365377778974720"),
    ("0.1137019653280093530497551340685546961140062194317579269409179687599999999999999999999", "4.7052722e-15", "3ffbe8dc9374991495a4", "0.11370196532801406"),
    ("-21778.41", "21778.4", "bff8a3d70a3d70a00000", "-0.00999999999999979"),
    ("-8.5764688825016204689e4931", "8.5764688825016204689e4931", "00000000000000000000", "0"),
    ("0", "495533299564399363466685954764", "4061c824f1398a9c7dac", "495533299564399363459802726400"),
    ("-368579334.961314963", "1.82259976594123730126e-4951", "X", "INVALID"),
    ("+0.00000000000000028487068921363574639967612452077159701814482925895420658917410461352659467593184672296047210693359375", "0", "3fcba4377e5b88c35fe0", "0.00000000000000028"),
    ("\u{b} I3", "4.669e41", "X", "INVALID"),
    ("-6.28048520e-321", "0xdP-87", "3fabd000000000000000", "0"),
    ("552.519", "0", "40088a21374bc6a7ef9e", "552.51900000000000002"),
    ("-0x5D92517Ec1bFf746A3bdEC.61P-13953", "0", "89d4bb24a2fd837fee8d", "0"),
    ("-317354311608692.6513214111328125", "+4257420698461563021766426624.00000000000000000000001", "405adc1a7e685d7a6779", "4257420698461245667572449280"),
    ("1201", "-120", "40098720000000000000", "1081"),
    ("002", "0", "40008000000000000000", "2"),
    ("-inf", "+36893488147419102663", "ffff8000000000000000", "NANINF"),
    ("-14386434210150799260672.99999999999999999999", "5.e-4943", "c048c2f8f866e25d728f", "-14386434210150799260672"),
    ("-0x9.33B53cfFD", "06027154452.2609886", "401fb39f8a05878d748f", "6027154443.05900437338277698"),
    ("-1267650600228229401496703205001", "4.96455606576371851e74", "40f78c7df0f2810d1dc1", "496455606576371850991923427414527104100308620066778590830553995556948017152"),
    ("+18446744073709550979", " P\naX\0e", "X", "INVALID"),
    ("0", "0.000000000000000886985797310391177461497136391699314117431640625", "3fccffa8000000000000", "0.00000000000000089"),
    ("3450.5083", "-3450.50831", "bfeea7c5ac4720000000", "-0.00001000000000007"),
    ("-7.47439576e4928", "-0x0.8p-16445", "X", "INVALID"),
    ("348007423.33264943858674", "1.2", "401ba5f1600442ddb578", "348007424.53264943859539926"),
    ("0", "219046216658659006", "4038c28d57e75549af80", "219046216658659006"),
    ("-0XBaE5FfC1BF0.AB6EeEp54", "0.0844035263348703703949031402348213148911781900096684694290161132812500000000000000000000001", "c060bae5ffc1bf0ab6ef", "-231369054467610748791658905600"),
    ("0.5", "-0.5", "00000000000000000000", "0"),
    ("77074.3", "0", "400f9689266666666666", "77074.29999999999999716"),
    ("-4.3876E132", "4.3876E132", "00000000000000000000", "0"),
    ("-4.77e-8", "0.000000000000000000000000", "bfe6ccdeb4639bf213a2", "-0.0000000477"),
    ("-6891.3550188", "6891.35501881", "3fe4abcc770000000000", "0.00000000999999994"),
    ("E-ENx", "0", "X", "INVALID"),
    ("-0e-5000", "-infinit", "X", "INVALID"),
    ("-3222868606.56488835811614990234375", "3222868606.56488835811614990234375", "00000000000000000000", "0"),
    ("298506385.81307988320250", "0", "401b8e56c48e8130069b", "298506385.8130798831989523"),
    ("in", "-5.45662501553838e-4202", "X", "INVALID"),
    ("0.00354087352752685546875", "-0.00354087352752685546875", "00000000000000000000", "0"),
    (".0", "7.6746291599260712e-4942", "0000000000007d7df6af", "0"),
    ("0978820.7479799553", "-nanx", "X", "INVALID"),
    ("-3856.238", "0", "c00af103ced916872b02", "-3856.23799999999999999"),
    ("-\tx", "\tx", "X", "INVALID"),
    ("-7.03830809211702992e-4954", "+1267650600228229401496703204094", "X", "INVALID"),
    ("8.5e-107", "6", "4001c000000000000000", "6"),
    ("+0.0000026350420773830912391465626197190432519062985861069137172307819128036499023437500000000000000000000001", "-9223372036854775808", "c03e8000000000000000", "-9223372036854775808"),
    ("0.00000095367431640625", "58105", "400ee2f9000010000000", "58105.00000095367431641"),
    ("58825.536", "-0x38e6CB1B1b9b5C.cFP-58", "400ee5c97afd98ffe109", "58825.48043209311530077"),
    ("-0.794", "0x8BD1.F", "400e8bd124bc6a7ef9db", "35793.14349999999999952"),
    ("+5.81278201991822402350E129", "-.831758", "41ae862c58d14fca4830", "5812782019918224023742189704175629300415153105758952001379809329675445707539330771359198396440873541170406238906787719035156955136"),
    ("+4.e4935", "0xc37dAB.Bcea7CbBD8FBFCp-60", "X", "INVALID"),
    ("-0x1.ffffffffffffffffp16383", "0x1.ffffffffffffffffp16383", "X", "INVALID"),
    ("-485.71552", "-6.2313803644222e-5", "c007f2db983385b0fb0b", "-485.7155823138036442"),
    ("73786976294838205551", "232.83374", "4040ffffffffffffff56", "73786976294838205784"),
    ("20.581e", "+", "X", "INVALID"),
    ("4.7027184267435383362e-319", "-2600584494076441899111207712", "c05a867272fe915dafca", "-2600584494076441899204345856"),
    ("0x.0p-5", "-0x910D8E.BcB92Eec90750P79", "c065910d8ebcb92eec90", "-5746139714191659691589796626432"),
    ("18446744073709551615", "-18446744073709551615", "00000000000000000000", "0"),
    ("2.1339E-252", "0", "3cbafa51291ff62bca53", "0"),
    ("-1267650600228229401496703205910", "2e-92", "c0638000000000000000", "-1267650600228229401496703205376"),
    ("-0.0", "-1.9082805257e-3059", "984e8e712858c49f07fe", "0"),
    ("NEy\0t", "+2.98931", "X", "INVALID"),
    ("5.95145891436269031E-221", "-8778344519.574803", "c02082ceba11e4c99286", "-8778344519.57480300031602383"),
    ("0", "1", "3fff8000000000000000", "1"),
    ("nan", "0.0", "X", "INVALID"),
    ("18.73519092966014198964330716989934444427490234375", "-18.735190929660141989643307169899344444274902343751", "00000000000000000000", "0"),
    ("682.666", "0", "4008aaaa9fbe76c8b439", "682.66599999999999998"),
    ("9223372036854775808", "42352.009689425", "403e800000000000a570", "9223372036854818160"),
    ("0", ".25143", "3ffd80bb6ed6777079e6", "0.25143"),
    ("0Xcfac72EBB.DeC21e27eaCBD", "1159875396632576", "403183de7078e5d77bd8", "1159931143597755.8701171875"),
    ("17100491081564191928", "-17100491081564191928", "00000000000000000000", "0"),
    ("-0.665", "36893488147419103231", "40408000000000000000", "36893488147419103232"),
    ("-INF", "+0X.FD84ap-77", "ffff8000000000000000", "NANINF"),
    ("05.656\0", "427.15", "X", "INVALID"),
    (" 48.618", "0", "X", "INVALID"),
    ("+8369129182.2249299574109534458498940121261445436115768e14", "-nan()", "X", "INVALID"),
    ("0", "0.346", "3ffdb126e978d4fdf3b6", "0.346"),
    ("+0xa2F61.38", "-26758", "40129c6db38000000000", "640731.21875"),
    ("0", " 68.471", "X", "INVALID"),
    ("+9.2216019995e32", "2197844592745324905107126484992", "406cb64c27b603436e75", "924358044542745324926290765021184"),
    ("3E,", "+2.33773170144e14", "X", "INVALID"),
    ("-INF", "0", "ffff8000000000000000", "NANINF"),
    ("-8.02024429828657727664653620536228117998689413070678710937599999999999999999999", "-0e-5000", "c0028052ebaf71241e98", "-8.02024429828657728"),
    ("+9", "0", "40029000000000000000", "9"),
    ("24.968 ", "-0.1", "X", "INVALID"),
    ("+INF", "366158646491097744801792000", "7fff8000000000000000", "NANINF"),
    ("32.598", "131568370229.107877392321825027465820312500000000000000000000001", "4023f510b012ada5a30c", "131568370261.7058773934841156"),
    ("2.3", "-284.73", "c0078d370a3d70a3d70b", "-282.43000000000000002"),
    ("0", "E,_A", "X", "INVALID"),
    ("-9.e4932", "y\u{b}P\n", "X", "INVALID"),
    ("-1.8225997659412373012642029e-4951", "0", "X", "INVALID"),
    (".711", "+73786976294838203643", "4040fffffffffffffd3f", "73786976294838203644"),
    ("9.18480912203e-13", "7.50947938362134366e-4945", "3fd78143c32978b3b765", "0.00000000000091848"),
    ("0", "+144327106310.9499063044786453247070312599999999999999999999", "4024866a437c1bccb43d", "144327106310.94990630447864532"),
    ("0", "05.04181", "4001a15681ecd4aa10e0", "5.04181"),
    ("nan(123)", "5.8534550534273391e-4948", "X", "INVALID"),
    ("-infinityx", "73786976294838207117", "X", "INVALID"),
    ("0", "-187222378944", "c024ae5d4b2700000000", "-187222378944"),
    ("+7508685.7791723845", "33.992 ", "X", "INVALID"),
    ("0", "4722951853505729986957781669", "405af42bbf50179fc8cd", "4722951853505729986832629760"),
    ("-69.41904", "-0.000003814697265625", "c0058ad68ce92f6e8295", "-69.41904381469726563"),
    ("+7.140352470486366420E-23", "0.8", "3ffecccccccccccccccd", "0.8"),
    ("0x1.0000000000000001p-16446", "-0x0", "X", "INVALID"),
    ("+23.369", "7.2547807678420e-4927", "4003baf3b645a1cac083", "23.369"),
    ("9.74730582e-4948", "1885627713172875859.87599999999999999999999", "403bd158c3513269529f", "1885627713172875859.875"),
    ("-0.507", "+468264832335.15209139883518218994140625", "4025da0d849a9d4a496b", "468264832334.64509138464927673"),
    ("-0XC9BBBF714a06e.cB27c1CP64", "F.n7-i", "X", "INVALID"),
    ("5.65309", "-0x0", "4001b4e61cffeb074a77", "5.65309"),
    ("+0xeFadbd.8A0fbP1356", "-infinit", "X", "INVALID"),
    ("7.8966737240869478e-30", "-0.000002247404048399373900915068466976746205249204635379101091530174016952514648437599999999999999999999", "bfec96d21b88bb0804ef", "-0.0000022474040484"),
    ("0", "-0.549", "bffe8c8b4395810624dd", "-0.549"),
    ("03507.58", "0,", "X", "INVALID"),
    ("927278235094392181455105692036632949476465896455926665907561451.590956053506711788904042823038770722849e-8", "0", "40b5c19fee4d1957cfc1", "9272782350943921814245292093060551401143863123390758912"),
    ("-0xEF3aB28E.0dA81p-74541", "0xEF3aB28E.0dA81p-7454", "X", "INVALID"),
    ("-83.35787195858021881439414713099722575861960649490356445312599999999999999999999", "-0XABF.eB2EEb90A74p47", "c039abfeb2eeb90a7e6b", "-387298123842081779.34375"),
    ("+7.56842416408318037331e-3707", "42.99214", "4004abf7f38c5436b8fa", "42.99214"),
    ("+0.699", "36893488147419101490", "403ffffffffffffffc99", "36893488147419101490"),
    ("2.415255745468180e124", "+2.3E132", "41b6cf61a0ab08a4a090", "2300000024152557454805063572817914061737994534252179292320531871276706948317769010496675109789119327725886588413315763858228018937856"),
    ("-49733822012806517144077868582.0836322311843655269903964586737299102512108538351289825133310221e-38", "1.82487563357437e-446", "bfe088b510e431b48355", "-0.00000000049733822"),
    ("+3425.0", "4894.065763", "400c81fc4357603925bc", "8319.06576300000000046"),
    ("8.7713265493e-131", "0x5e98.F538ap5", "4012bd31ea7140000000", "774942.65264892578125"),
    ("-3.52408", "1.13788787677553313e-4929", "c000e18a86d71f36262d", "-3.52408"),
    ("-7.54031256240847688e-13", "-0XbB.76a9e8F0D7A7F", "c006bb76a9e8f0d87c2e", "-187.4635301197053969"),
    ("6.24657651819e11", "6512768011131158528", "403db4c40122e0feb0d6", "6512768635788810347"),
    ("+4.80329926505288481764E100", "73953444.41994394241555710323154926300048828125", "414dafaefc353e187d60", "48032992650528848175611298116443806985117978935148632799607345953576201659995484996859820367599894528"),
    ("9.58396", "+80.70", "4005b491633482be8bc1", "90.28396"),
    ("+inf", "-4.117437302E-175", "7fff8000000000000000", "NANINF"),
    ("0", "+0.0004060968174635582953858383627068588672681670459496672265231609344482421875", "3ff3d4e964666e9cdc42", "0.00040609681746356"),
    ("-84181421991505212890639442974.88402482494439593874e32", "0x0p0", "c0c9a7a2cc2e4dad6f84", "-8418142199150521289059754653537119865849351606980682874617856"),
    ("+3.48330152285816751438E20", "-3883.3428541201420669537469620991032570600509643554687599999999999999999999", "404397106a5fc60e9fb1", "348330152285816747552"),
    ("-.204", "+18446744073709553750", "403f800000000000042b", "18446744073709553750"),
    ("+6744469432067.667120695114135742187500000000000000000000001", "0", "4029c44a368ce075590e", "6744469432067.66712093353271484"),
    ("8.255040498957940e-15", "-7.16764689311e-4927", "3fd094b5a7a449e65bdf", "0.00000000000000826"),
    ("6.76784536173819e-18", "9.587e-1231", "3fc5f9b07e007e682815", "0.00000000000000001"),
    ("520.72433", "-135771341306.9613333158195018768310546875", "c023fce4d1ff91e561ff", "-135771340786.23700331896543503"),
    ("0", "0.358", "3ffdb74bc6a7ef9db22d", "0.358"),
    ("1.85E40", "8.5299595053310978e21", "4084d9776996a5ad8ff8", "18500000000000000008542800797634364702720"),
    ("0x53.089AdCf96aF37f664daCP-81", "+3862973598130.3133169412612915039062500000000000000000000001", "4028e0dacad26c940d63", "3862973598130.31331706047058105"),
    ("3.2672428028e-7", "-5122.5999", "c00ba014cc98332ccd6b", "-5122.5998996732757198"),
    ("8.0", "+7061669", "4015d7815a0000000000", "7061677"),
    ("-0.33", "0.5", "3ffcae147ae147ae147a", "0.17"),
    ("0", "-5.6e+76", "c0fdf79dc0e8c518f31f", "-56000000000000000000867933428916380410852946963795537441802193353874912313344"),
    ("1038678.9985182683", "6.9507e-4", "4012fd956ffcc7201b9c", "1038678.99921333830002368"),
    ("-9139205.866021151208", "0", "c0168b7405ddb38fea15", "-9139205.86602115120786038"),
    ("156802560.7213", "+10336235850722283028702298112", "405c8597bc50ef64c000", "10336235850722283028702298112"),
    ("380430173888976089344270616465", "-9.250667545e4", "406199a78edb4f255071", "380430173888976089347805675520"),
    ("+1257.0394286601468678554738289676606655120849609375", "-0XDEaFbDda", "c01edeafb8f0f5e800da", "-3736058096.96057133981958032"),
    ("0", "-0XcD2efda4.aP35", "c041cd2efda4a0000000", "-118280268081637883904"),
    ("-14.78", "0.002191707013709833750510532618654274683578364601999055594205856323242187500000000000000000000001", "c002ec71e71bcef071f8", "-14.77780829298629017"),
    ("9034", "2.258380913140939e-19", "400c8d28000000000000", "9034"),
    ("0277.57487", "-0e-99999", "40078ac9955714b9cb68", "277.57486999999999999"),
    ("+1.8898093509808608E102", "-0Xc7B.B", "4152d800b93493de3f31", "1889809350980860799961912259884247649667155827032609771605451202164767377290967074010526132810404593664"),
    ("-1382.8982797554626813507638871669769287109375", "3.9", "c009ac5ff1e862bf1333", "-1378.99827975546268133"),
    ("+12394573273285334931200607674.0e24", "-83.263", "40ac8482d83f355e32fe", "12394573273285334931297235443176523714311263059181568"),
    ("+0x0", "-1267650600228229401496703208228", "c0638000000000000000", "-1267650600228229401496703205376"),
    ("0X2Abc44.96P-29", "48140737913838445418910842880.99999999999999999999", "405e9b8d15c78fdbbc68", "48140737913838445418910842880"),
    ("0", "+60.75372", "4004f303cf2cf95d4e90", "60.75372"),
    ("5.5", "60404226116690905816325819548122.391876124877407836237820776469793851289082505205573499428329773e-25", "4015b856d8392cb0e80b", "6040428.11166909058147212"),
    ("0", "-28797770820833775579", "c03fc7d31dfe017407ee", "-28797770820833775580"),
    ("6394679722.837721", "0X5B521FP-36", "401fbe9388d56b3d4ba6", "6394679722.837808090262115"),
    ("0", ".665", "3ffeaa3d70a3d70a3d71", "0.665"),
    ("+42133566433.6365254968404769897460937599999999999999999999", "-0x6AAbf1D.9a33C1B8Fcdbbp-37", "40229cf5b33e1a2bdffc", "42133566433.63571165502071381"),
    ("0.2", "-733125431344375886", "c03aa2c95b20f16284dd", "-733125431344375885.8125"),
    ("-5.4288", "-6.268768e-7", "c001adb8bc179e15bf25", "-5.4288006268768"),
    ("3.0786199e-5", "30258.074", "400dec6425e75cfb3e66", "30258.07403078619899972"),
    ("5363060596.8", "-9.61236e-12", "401f9fd4e7ba66666666", "5363060596.79999999981373549"),
    ("9.9351962186e100", "0", "414eb5b15f8b12e10c18", "99351962186000000001283003454121776223738674741359322874114106559585015785661278615393253189585207296"),
    ("0.20", "-01.16109", "bffef609fe86833c6003", "-0.96109"),
    ("0x7.CaFCd3BbP-7700", "-858.4", "c008d69999999999999a", "-858.40000000000000002"),
    ("231.021289269033", "163846314805727461376", "40428e1d30b38883600e", "163846314805727461600"),
    ("2.42659883032313011313e-4945", "+737.5188", "4008b8613404ea4a8c15", "737.51879999999999998"),
    ("10959689169.903340987395495176315307617187500000000000000000000001", "0", "4020a34fe57479d056b8", "10959689169.90334098786115646"),
    ("-0.231", "-558.76", "c0088bbf6c8b43958106", "-558.99099999999999999"),
    ("207.7", "-207.71", "bff8a3d70a3d70a40000", "-0.01000000000000001"),
    ("-68.56886", "0", "c0058923419e30014f8b", "-68.56886"),
    ("0x77EEE37525AAf.5P98", "-1.2651314398569597858e-4947", "4093efddc6ea4b55ea00", "668649700622363014177308919824620168037793792"),
    ("42430496253.9364235941320657730102539062500000000000000000000001", "2.972512216592273729E-145", "40229e10dfdfdefb974f", "42430496253.93642359599471092"),
    ("3.48768242006e9", "-0XDabB51e3.d804567353Da6", "c01aad9826fc8a82d7d0", "-182026863.78381618787534535"),
    ("1.e-1486", "+6.2719377920759e-14", "3fd38d3b4280f4960472", "0.00000000000006272"),
    ("+0X199fB2e6ef9.4dF", "+26.75882642958", "4027ccfd97378a081939", "1760855748372.06326973438262939"),
    ("0", "+Inf", "7fff8000000000000000", "NANINF"),
    ("0.3", "+7.77552634850e-2", "3ffdc169234d1eb03118", "0.377755263485"),
    ("-0x0", "0x01", "3fff8000000000000000", "1"),
    ("45506.01195656", "0", "400eb1c2030f95ca2c34", "45506.01195656000000156"),
    ("-2473172058243072", "-6.292304731e-119", "c0328c9563e000000000", "-2473172058243072"),
    ("-3.6451995318824746025e-4951", "554.85553", "40088ab6c100e6afcce2", "554.85553000000000001"),
    ("-0X743e72E97D.3cFP4", "0", "c029e87ce5d2fa79e000", "-7988222793683.80859375"),
    ("0", "-2.3198348", "c00094782c6187da5475", "-2.3198348"),
    ("2393", "-71006.72060", "c00f8602dc3c9eecbfb1", "-68613.72059999999999746"),
    ("0", "-Inf", "ffff8000000000000000", "NANINF"),
    ("34305603809.85262025308", "0", "4021ff98bf1c3b48aa45", "34305603809.85262025333940983"),
    ("23507373883897413632", "Inf", "7fff8000000000000000", "NANINF"),
    ("2456.33543", "9.075830488933277e-13", "400a99855debd9019e6c", "2456.33543000000090739"),
    ("-0XbD.D2bP-87", "+0x.DB5", "3ffedb50000000000000", "0.856689453125"),
    ("35183.847", "-35183.8471", "bff1d1b71758e0000000", "-0.00009999999999977"),
    ("9.73759e-16", "+9.7498765e-4336", "3fcd8c555dba5d3f0de1", "0.00000000000000097"),
    ("-0X78P17", "-4857055474651712864154288128", "c05afb1a980e00000000", "-4857055474651712864154288128"),
    ("0.202", "0", "3ffcced916872b020c4a", "0.202"),
    ("0.1", "8025.4", "400bfacc000000000000", "8025.5"),
    ("0", "46208494.535967899149", "4018b0457ba24d4c4da3", "46208494.53596789914809051"),
    ("+0.82", "+0.6", "3fffb5c28f5c28f5c290", "1.42"),
    ("+016237231.0", "0.", "4016f7c2af0000000000", "16237231"),
    ("1.42041055674737784e13", "1267650600228229401496703207582", "40638000000000000067", "1267650600228229415652915412992"),
    ("0.7955433270878", "-0.000000000000000000000000", "3ffecba8ba3c64a44b26", "0.7955433270878"),
    ("9370.11", "+65620.86458", "400f92777cbf0995aaf7", "74990.97457999999999601"),
    ("+4467570830351532032", "0", "403cf800000000000000", "4467570830351532032"),
    ("039.472", "-0.14", "40049d53f7ced916872b", "39.332"),
    ];

    #[test]
    fn matches_glibc_table() {
        for &(a, b, sum_bits, expected) in GLIBC_TABLE {
            let pa = LongDouble::parse(a.as_bytes());
            let pb = LongDouble::parse(b.as_bytes());
            let got = incr_by_float(Some(a.as_bytes()), b.as_bytes());
            match (pa, pb) {
                (Some(x), Some(y)) => {
                    let sum = x.add(y);
                    assert_eq!(format!("{:020x}", sum.to_bits()), sum_bits, "{a:?} + {b:?}");
                    assert_eq!(y.add(x), sum, "commutative {a:?} + {b:?}");
                    if expected == "NANINF" {
                        assert!(!sum.is_finite());
                        assert_eq!(got, Err(IncrError::NanOrInfinity));
                    } else {
                        assert_eq!(sum.to_human_string(), expected, "{a:?} + {b:?}");
                        assert_eq!(got.as_deref(), Ok(expected));
                    }
                }
                _ => {
                    assert_eq!((sum_bits, expected), ("X", "INVALID"), "{a:?} + {b:?}");
                    assert_eq!(got, Err(IncrError::NotFloat));
                }
            }
        }
    }

    /// Replies observed from a real redis-server 7.0.15.
    #[test]
    fn matches_redis_server() {
        let incr =
            |cur: Option<&str>, by: &str| incr_by_float(cur.map(str::as_bytes), by.as_bytes());
        assert_eq!(incr(None, "0.1").as_deref(), Ok("0.1"));
        assert_eq!(incr(Some("0.1"), "0.2").as_deref(), Ok("0.3"));
        assert_eq!(incr(Some("10.5"), "0.1").as_deref(), Ok("10.6"));
        assert_eq!(incr(Some("5.0e3"), "2.0e2").as_deref(), Ok("5200"));
        assert_eq!(incr(Some("3.0e3"), "3.0e3").as_deref(), Ok("6000"));
        let big = incr(Some("1e308"), "1e308").unwrap();
        assert!(big.starts_with("199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"));
        assert_eq!(big.len(), 309);
        assert_eq!(
            incr(Some("1e4932"), "1e4932"),
            Err(IncrError::NanOrInfinity)
        );
        assert_eq!(incr(Some("1e4933"), "0"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("inf"), "1"), Err(IncrError::NanOrInfinity));
        assert_eq!(incr(Some("1"), "inf"), Err(IncrError::NanOrInfinity));
        assert_eq!(incr(Some("1"), "-infinity"), Err(IncrError::NanOrInfinity));
        assert_eq!(incr(Some("1"), "INFINITY"), Err(IncrError::NanOrInfinity));
        assert_eq!(incr(Some("1"), "nan"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), " 1"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "1 "), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "1\t"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "\u{b}1"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), ""), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "1e"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "0x"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "0x1p"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1"), "0x.8").as_deref(), Ok("1.5"));
        assert_eq!(incr(Some("1"), "0x10").as_deref(), Ok("17"));
        assert_eq!(incr(Some("17"), "0x1p-3").as_deref(), Ok("17.125"));
        assert_eq!(incr(Some("17.125"), "1e-5000"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("17.125"), "1e-4940").as_deref(), Ok("17.125"));
        assert_eq!(incr(Some("1"), "1e-4951"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("1e-4940"), "1e-4940").as_deref(), Ok("0"));
        assert_eq!(incr(Some("1e-4940"), "-1e-4940").as_deref(), Ok("0"));
        assert_eq!(incr(Some("-1e-30"), "0").as_deref(), Ok("0"));
        assert_eq!(
            incr(Some("-1e-17"), "0").as_deref(),
            Ok("-0.00000000000000001")
        );
        assert_eq!(incr(Some("0"), "-0").as_deref(), Ok("0"));
        assert_eq!(incr(Some("-0"), "-0.0").as_deref(), Ok("0"));
        assert_eq!(incr(Some("5"), "+5").as_deref(), Ok("10"));
        assert_eq!(incr(Some("5"), ".5").as_deref(), Ok("5.5"));
        assert_eq!(incr(Some("5.5"), "5.").as_deref(), Ok("10.5"));
        assert_eq!(
            incr(Some("0.5"), "0.000000000000000005").as_deref(),
            Ok("0.5")
        );
        assert_eq!(
            incr(Some("0.5"), "0.000000000000000015").as_deref(),
            Ok("0.50000000000000002")
        );
        // Embedded NUL: strtold stops early, Redis rejects (eptr-buf != slen).
        assert_eq!(incr(None, "1.5\0abc"), Err(IncrError::NotFloat));
        assert_eq!(incr(None, "\0"), Err(IncrError::NotFloat));
        assert_eq!(incr(Some("2\0zz"), "1"), Err(IncrError::NotFloat));
        // Length limit: 5119 bytes parse, 5120 do not (either operand).
        let ok = format!("1.{}", "0".repeat(5117));
        let too_long = format!("1.{}", "0".repeat(5118));
        assert_eq!((ok.len(), too_long.len()), (5119, 5120));
        assert_eq!(incr(Some("1"), &ok).as_deref(), Ok("2"));
        assert_eq!(incr(Some("1"), &too_long), Err(IncrError::NotFloat));
        assert_eq!(incr(Some(&too_long), "1"), Err(IncrError::NotFloat));
        assert_eq!(
            incr(Some("1"), &format!("1{}", "0".repeat(5118))),
            Err(IncrError::NotFloat)
        );

        let hincr =
            |cur: Option<&str>, by: &str| hincr_by_float(cur.map(str::as_bytes), by.as_bytes());
        assert_eq!(hincr(None, "inf"), Err(IncrError::IncrementNanOrInfinity));
        assert_eq!(hincr(Some("abc"), "1"), Err(IncrError::HashValueNotFloat));
        assert_eq!(
            hincr(Some("1e4932"), "1e4932"),
            Err(IncrError::NanOrInfinity)
        );
        assert_eq!(hincr(Some("2"), "x"), Err(IncrError::NotFloat));
        assert_eq!(hincr(Some("abc"), "x"), Err(IncrError::NotFloat));
        assert_eq!(hincr(Some("2\0x"), "1"), Err(IncrError::HashValueNotFloat));
        assert_eq!(hincr(Some("inf"), "1"), Err(IncrError::NanOrInfinity));
        assert_eq!(hincr(Some("0.1"), "0.2").as_deref(), Ok("0.3"));
        assert_eq!(
            IncrError::NotFloat.message(),
            "ERR value is not a valid float"
        );
        assert_eq!(
            IncrError::NanOrInfinity.to_string(),
            "ERR increment would produce NaN or Infinity"
        );
        assert_eq!(
            IncrError::HashValueNotFloat.message(),
            "ERR hash value is not a float"
        );
        assert_eq!(
            IncrError::IncrementNanOrInfinity.message(),
            "ERR value is NaN or Infinity"
        );
    }

    #[test]
    fn accumulates_like_long_double() {
        // Ten INCRBYFLOAT 0.1 from nothing: f64 would drift to 0.9999999999999999.
        let mut cur: Option<String> = None;
        for _ in 0..10 {
            cur = Some(incr_by_float(cur.as_deref().map(str::as_bytes), b"0.1").unwrap());
        }
        assert_eq!(cur.as_deref(), Some("1"));
    }

    #[test]
    fn glibc_subnormal_quirk() {
        // glibc 2.36 strtold returns 0 (ERANGE) for exactly 2^-16446 + 2^-16510.
        assert_eq!(LongDouble::parse(b"0x1.0000000000000001p-16446"), None);
        assert_eq!(LongDouble::parse(b"-0x2.0000000000000002p-16447"), None);
        assert_eq!(
            LongDouble::parse(b"0x1.00000000000000011p-16446").map(LongDouble::to_bits),
            Some(1)
        );
        assert_eq!(
            LongDouble::parse(b"0x1.000000000000001p-16446").map(LongDouble::to_bits),
            Some(1)
        );
        assert_eq!(LongDouble::parse(b"0x1p-16446"), None); // exact tie to even: 0
    }

    #[test]
    fn formats_extremes() {
        let max = LongDouble::from_bits(0x7ffe_ffff_ffff_ffff_ffff);
        let s = max.to_human_string();
        assert_eq!(s.len(), 4933);
        assert!(s.starts_with("118973149535723176502126385303097020516906332229462420044032373389173700552297072261641029033652888285"));
        assert_eq!(LongDouble::parse(s.as_bytes()), Some(max));
        let neg = LongDouble::from_bits(0xfffe_ffff_ffff_ffff_ffff);
        assert_eq!(neg.to_human_string(), format!("-{s}"));
        assert_eq!(LongDouble::INFINITY.to_human_string(), "inf");
        assert_eq!(LongDouble::NEG_INFINITY.to_human_string(), "-inf");
        assert_eq!(LongDouble::NAN.to_human_string(), "-nan");
        assert_eq!(LongDouble::from_bits(1).to_human_string(), "0");
        assert_eq!(LongDouble::from_bits(1 << 79 | 1).to_human_string(), "0");
        assert_eq!(LongDouble::from_f64(-0.0).to_human_string(), "0");
        assert_eq!(LongDouble::from_f64(0.5).to_string(), "0.5");
        // Exact ties at the 18th decimal round half to even (glibc).
        assert_eq!(
            LongDouble::from_f64(2f64.powi(-18)).to_human_string(),
            "0.00000381469726562"
        );
        assert_eq!(
            LongDouble::from_f64(3.0 * 2f64.powi(-18)).to_human_string(),
            "0.00001144409179688"
        );
        // Rounding carries into the integer part.
        assert_eq!(
            LongDouble::parse(b"0.999999999999999999")
                .unwrap()
                .to_human_string(),
            "1"
        );
        assert_eq!(
            LongDouble::parse(b"-9.999999999999999999")
                .unwrap()
                .to_human_string(),
            "-10"
        );
    }

    #[test]
    fn arithmetic_special_cases() {
        let one = LongDouble::from_f64(1.0);
        let z = LongDouble::ZERO;
        let nz = LongDouble::from_f64(-0.0);
        assert_eq!(z.add(nz), z);
        assert_eq!(nz.add(nz), nz);
        assert_eq!(one.add(LongDouble::from_f64(-1.0)), z);
        // x87 answers (checked on hardware): the default NaN is ffff c000..0.
        assert_eq!(
            LongDouble::INFINITY.add(LongDouble::NEG_INFINITY),
            LongDouble::NAN
        );
        assert_eq!(LongDouble::NAN.to_bits(), 0xffff_c000_0000_0000_0000);
        assert_eq!(LongDouble::INFINITY.add(one), LongDouble::INFINITY);
        assert!(LongDouble::NAN.add(one).is_nan());
        // Largest finite + half an ulp overflows; minus a bit does not.
        let max = LongDouble::from_bits(0x7ffe_ffff_ffff_ffff_ffff);
        let half_ulp = LongDouble::from_bits(0x7fbe_8000_0000_0000_0000);
        assert_eq!(max.add(half_ulp), LongDouble::INFINITY);
        let less = LongDouble::from_bits(0x7fbd_ffff_ffff_ffff_ffff);
        assert_eq!(max.add(less), max);
        // Subnormal + subnormal carries into the smallest normal.
        let big_sub = LongDouble::from_bits(0x0000_7fff_ffff_ffff_ffff);
        let tiny = LongDouble::from_bits(1);
        assert_eq!(big_sub.add(tiny).to_bits(), 0x0001_8000_0000_0000_0000);
        // Non-canonical encodings: unnormal and pseudo-infinity are invalid.
        let unnormal = LongDouble::from_bits(0x3fff_4000_0000_0000_0000);
        assert!(unnormal.is_nan() && !unnormal.is_finite());
        assert_eq!(unnormal.add(one), LongDouble::NAN);
        let pseudo_inf = LongDouble::from_bits(0x7fff_0000_0000_0000_0000);
        assert!(pseudo_inf.is_nan());
        assert_eq!(pseudo_inf.add(one), LongDouble::NAN);
        // A pseudo-denormal reads as the equal normal value.
        let pseudo = LongDouble::from_bits(0x0000_8000_0000_0000_0000);
        assert_eq!(pseudo.add(z).to_bits(), 0x0001_8000_0000_0000_0000);
    }

    /// Deterministic xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn f64_round_trip() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let specials = [
            0.0,
            -0.0,
            1.0,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
        ];
        for i in 0..50_000 {
            let x = if i < specials.len() {
                specials[i]
            } else {
                f64::from_bits(rng.next())
            };
            let l = LongDouble::from_f64(x);
            let y = l.to_f64();
            if x.is_nan() {
                assert!(y.is_nan() && l.is_nan());
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "{x:e}");
                // Text round trip through the f64 view agrees for values in range.
                assert_eq!(l.is_finite(), x.is_finite());
            }
        }
        // Rounding to f64: ties to even, overflow, underflow.
        let p = |s: &str| LongDouble::parse(s.as_bytes()).unwrap().to_f64();
        assert_eq!(p("0.1"), 0.1);
        assert_eq!(p("1e4000"), f64::INFINITY);
        assert_eq!(p("-1e-4000"), -0.0);
        assert_eq!(p("0x1.00000000000008p0"), 1.0); // tie, even stays
        assert_eq!(p("0x1.00000000000018p0"), 1.0 + 2.0 * f64::EPSILON); // tie, rounds up to even
        assert_eq!(p("0x1.000000000000081p0"), 1.0 + f64::EPSILON);
        assert_eq!(p("0x1.fffffffffffff8p1023"), f64::INFINITY);
        assert_eq!(p("0x1.fffffffffffff7p1023"), f64::MAX);
        assert_eq!(p("0x1p-1075"), 0.0);
        assert_eq!(p("0x1.0000001p-1075"), 5e-324);
    }

    #[test]
    fn never_panics() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let alphabet = b"0123456789.eEpPxX+-infatyINFATY \t\x00\xff";
        for i in 0..20_000 {
            let len = (rng.next() % 24) as usize;
            let s: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            if let Some(v) = LongDouble::parse(&s) {
                let _ = v.to_human_string();
            }
            let a =
                LongDouble::from_bits(u128::from(rng.next()) | u128::from(rng.next() as u16) << 64);
            let b =
                LongDouble::from_bits(u128::from(rng.next()) | u128::from(rng.next() as u16) << 64);
            let c = a.add(b);
            assert_eq!(c, b.add(a).quiet_eq_helper(c));
            let _ = (c.to_f64(), c.is_finite(), a.to_f64());
            if i % 16 == 0 {
                // Most random encodings are huge; formatting them is slow in debug builds.
                let _ = c.to_human_string();
            }
        }
        for len in [0, 1, 5118, 5119, 5120, 20000] {
            let _ = LongDouble::parse(&vec![b'9'; len]);
            let _ = LongDouble::parse(&vec![b'0'; len]);
            let mut v = vec![b'0'; len];
            if len > 2 {
                v[1] = b'x';
                v[len - 1] = b'1';
            }
            let _ = LongDouble::parse(&v);
        }
        let _ = LongDouble::parse(format!("1e{}", "9".repeat(5000)).as_bytes());
        let _ = LongDouble::parse(format!("1e-{}", "9".repeat(5000)).as_bytes());
        let _ = LongDouble::parse(format!("0x1p-{}", "9".repeat(5000)).as_bytes());
    }

    impl LongDouble {
        /// For NaN results the operand order may pick a different payload.
        fn quiet_eq_helper(self, other: LongDouble) -> LongDouble {
            if self.is_nan() && other.is_nan() {
                other
            } else {
                self
            }
        }
    }
}
