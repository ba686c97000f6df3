//! The values a key can hold, and their Redis-visible encodings.
//!
//! Owns `Value` (one variant per Redis type: strings, hashes, sets, lists, sorted sets),
//! the string encoding rules of Redis's tryObjectEncoding ("int", "embstr",
//! "raw"), the strict integer parse (string2ll) that INCR and friends rely
//! on, and [`Limits`], the collection encoding thresholds. The collections
//! themselves live in `hash.rs`, `set.rs`, `list.rs`, `zset.rs`. A value knows nothing about
//! the database it is stored in, so it must not import `db` or `expire`.
//!
//! Memory note for callers: a `Bytes` that is a slice of a large network
//! read buffer keeps that whole buffer alive. Store owned copies
//! (`Bytes::copy_from_slice`) of keys and values, not slices.

use crate::util::num::Decimal;
use bytes::{Bytes, BytesMut};
use std::sync::OnceLock;

use crate::keyspace::hash::HashValue;
use crate::keyspace::list::ListValue;
use crate::keyspace::set::SetValue;
use crate::keyspace::stream::StreamValue;
use crate::keyspace::zset::ZsetValue;
pub use crate::util::num::parse_i64_strict;

/// When collections leave their compact encodings: the
/// `hash-max-listpack-*` and `set-max-intset-entries` directives. Passed in
/// by callers (the command layer reads the config), never read from a
/// global here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Default for Limits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        Limits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// Strings up to this length report "embstr" (Redis's
/// OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
pub const EMBSTR_SIZE_LIMIT: usize = 44;
/// Longest text string2ll accepts: "-9223372036854775808" is 20 bytes.
const MAX_INT_STR_LEN: usize = 20;

/// A stored value. New Redis types (list, zset) become new variants; code
/// matching on `Value` should expect that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(StrValue),
    Hash(HashValue),
    Set(SetValue),
    Zset(ZsetValue),
    /// Boxed: a list's node deque would make every value bigger.
    List(Box<ListValue>),
    /// Boxed, for the same reason.
    Stream(Box<StreamValue>),
}

impl Value {
    /// The TYPE command's name for the value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::Zset(_) => "zset",
            Value::List(_) => "list",
            Value::Stream(_) => "stream",
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding().as_str(),
            Value::Hash(h) => h.encoding_name(),
            Value::Set(s) => s.encoding_name(),
            Value::Zset(z) => z.encoding_name(),
            Value::List(l) => l.encoding_name(),
            Value::Stream(_) => "stream",
        }
    }

    /// The bytes a string's encoding reads first (empty for other types):
    /// what a walk prefetches ahead of encoding.
    pub fn body(&self) -> &[u8] {
        match self {
            Value::Str(s) => s.bytes(),
            _ => &[],
        }
    }

    /// The string, or `None` for other types (WRONGTYPE in the caller).
    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Payload bytes, roughly: a string's length, a collection's elements
    /// and structure (MEMORY USAGE, snapshot accounting).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Hash(h) => h.payload_bytes(),
            Value::Set(s) => s.payload_bytes(),
            Value::Zset(z) => z.payload_bytes(),
            Value::List(l) => l.payload_bytes(),
            Value::Stream(s) => s.payload_bytes(),
        }
    }
}

impl From<StrValue> for Value {
    fn from(s: StrValue) -> Self {
        Value::Str(s)
    }
}

/// Redis shares the integer objects `0..OBJ_SHARED_INTEGERS`; their text
/// is built once here, so storing one (SET, INCR) allocates nothing.
pub const SHARED_INTEGERS: i64 = 10_000;

/// The text of `i` when it is a shared integer: a slice of one static
/// buffer, which clones and drops without touching a reference count.
fn shared_integer(i: i64) -> Option<Bytes> {
    static TEXT: OnceLock<(&'static [u8], Vec<u32>)> = OnceLock::new();
    if !(0..SHARED_INTEGERS).contains(&i) {
        return None;
    }
    let (text, ends) = TEXT.get_or_init(|| {
        let mut text = Vec::new();
        let mut ends = Vec::with_capacity(SHARED_INTEGERS as usize);
        for n in 0..SHARED_INTEGERS {
            text.extend_from_slice(n.to_string().as_bytes());
            ends.push(text.len() as u32);
        }
        (Box::leak(text.into_boxed_slice()), ends)
    });
    let i = i as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    Some(Bytes::from_static(&text[start..ends[i] as usize]))
}

/// Decimal text of `i`: shared below [`SHARED_INTEGERS`], else formatted on
/// the stack and copied once.
pub fn int_text(i: i64) -> Bytes {
    shared_integer(i).unwrap_or_else(|| Bytes::copy_from_slice(Decimal::i64(i).as_bytes()))
}

/// How Redis would encode a string object (OBJECT ENCODING).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrEncoding {
    Int,
    Embstr,
    Raw,
}

impl StrEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            StrEncoding::Int => "int",
            StrEncoding::Embstr => "embstr",
            StrEncoding::Raw => "raw",
        }
    }
}

/// A string value. The bytes are always kept (GET needs them as they are);
/// the encoding is remembered separately because it depends on how the
/// value was produced (APPEND gives "raw" even for short text), not only on
/// its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrValue {
    bytes: Bytes,
    enc: StrEncoding,
}

impl StrValue {
    /// A value stored by SET and similar commands, encoded as Redis's
    /// tryObjectEncoding would: strict integer text of at most 20 bytes is
    /// "int", anything else up to 44 bytes "embstr", longer "raw".
    ///
    /// The bytes are copied: a command's arguments are slices of the
    /// connection's read buffer, and keeping a slice would keep that whole
    /// buffer alive for as long as the value lives.
    pub fn from_set(b: Bytes) -> Self {
        if b.len() <= 4 {
            // Strict parsing accepts only the canonical text ("05" and "-0"
            // are refused), so the shared text is these very bytes.
            if let Some(shared) = parse_i64_strict(&b).and_then(shared_integer) {
                return StrValue {
                    bytes: shared,
                    enc: StrEncoding::Int,
                };
            }
        }
        let b = Bytes::copy_from_slice(&b);
        let enc = if b.len() <= MAX_INT_STR_LEN && parse_i64_strict(&b).is_some() {
            StrEncoding::Int
        } else if b.len() <= EMBSTR_SIZE_LIMIT {
            StrEncoding::Embstr
        } else {
            StrEncoding::Raw
        };
        StrValue { bytes: b, enc }
    }

    /// Text a command formatted itself and Redis stores without trying an
    /// integer encoding (INCRBYFLOAT's result): "embstr" up to 44 bytes,
    /// "raw" beyond, even when it reads as an integer.
    pub fn text(b: Bytes) -> Self {
        let enc = if b.len() <= EMBSTR_SIZE_LIMIT {
            StrEncoding::Embstr
        } else {
            StrEncoding::Raw
        };
        StrValue { bytes: b, enc }
    }

    /// The result of an in-place edit (APPEND, SETRANGE): always "raw", as
    /// Redis converts the object to a modifiable raw string first.
    pub fn raw(b: Bytes) -> Self {
        StrValue {
            bytes: b,
            enc: StrEncoding::Raw,
        }
    }

    /// Writes `data` at `offset`, growing the string with zero bytes as
    /// needed (APPEND writes at the end, SETRANGE anywhere): in place when
    /// nothing else holds the bytes (a reply being written or a snapshot
    /// may), so a long string built piece by piece costs each append only
    /// its own bytes, as with Redis's preallocated strings. Growth follows
    /// Redis's `sdsMakeRoomFor`: double while under 1 MB, then 1 MB more.
    /// The result is "raw", as Redis makes it. Returns the new length.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        const MAX_PREALLOC: usize = 1 << 20;
        let end = offset + data.len();
        let len = self.bytes.len().max(end);
        let mut buf = match std::mem::take(&mut self.bytes).try_into_mut() {
            Ok(buf) if buf.capacity() >= len => buf,
            unique_or_shared => {
                let old: &[u8] = match &unique_or_shared {
                    Ok(buf) => buf,
                    Err(shared) => shared,
                };
                let room = if len < MAX_PREALLOC {
                    len * 2
                } else {
                    len + MAX_PREALLOC
                };
                let mut grown = BytesMut::with_capacity(room);
                grown.extend_from_slice(old);
                grown
            }
        };
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset..end].copy_from_slice(data);
        self.bytes = buf.freeze();
        self.enc = StrEncoding::Raw;
        self.bytes.len()
    }

    /// Changes the bytes in place through `f` (a HyperLogLog's registers):
    /// the buffer is this value's own unless something else holds it (a
    /// reply being written, a snapshot), in which case `f` gets a copy and
    /// they keep what they saw. The result is "raw", as Redis makes it.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let mut buf = match std::mem::take(&mut self.bytes).try_into_mut() {
            Ok(buf) => buf,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        let out = f(&mut buf);
        self.bytes = buf.freeze();
        self.enc = StrEncoding::Raw;
        out
    }

    /// The result of INCR and friends: "int". A counter's new value costs
    /// no allocation below [`SHARED_INTEGERS`] and no formatting machinery
    /// above.
    pub fn from_int(i: i64) -> Self {
        StrValue {
            bytes: int_text(i),
            enc: StrEncoding::Int,
        }
    }

    /// The value as an integer under Redis's strict rules (see
    /// [`parse_i64_strict`]), whatever the encoding: "10" stored raw is
    /// still incrementable.
    pub fn as_int(&self) -> Option<i64> {
        parse_i64_strict(&self.bytes)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn encoding(&self) -> StrEncoding {
        self.enc
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_at_grows_in_place_and_never_changes_shared_bytes() {
        let mut v = StrValue::from_set(Bytes::from_static(b"12"));
        assert_eq!(v.write_at(2, b"3"), 3);
        assert_eq!(v.bytes(), &b"123"[..]);
        assert_eq!(v.encoding(), StrEncoding::Raw);
        // Room for twice the length: the next appends write in place.
        v.write_at(3, &[b'x'; 997]);
        let at = v.bytes().as_ptr();
        for i in 0..500 {
            let end = v.len();
            assert_eq!(v.write_at(end, b"y"), 1000 + i + 1);
            assert_eq!(v.bytes().as_ptr(), at, "append {i} moved the string");
        }
        // A holder of the old bytes (a reply, a snapshot) keeps them as they were.
        let held = v.bytes().clone();
        v.write_at(0, b"Z");
        assert_eq!(held[0], b'1');
        assert_eq!(v.bytes()[0], b'Z');
        assert_eq!(&v.bytes()[1..], &held[1..]);
        // Past the end: zero bytes in between; inside: overwritten, same length.
        let mut w = StrValue::raw(Bytes::new());
        assert_eq!(w.write_at(3, b"ab"), 5);
        assert_eq!(w.bytes(), &b"\0\0\0ab"[..]);
        assert_eq!(w.write_at(1, b"c"), 5);
        assert_eq!(w.bytes(), &b"\0c\0ab"[..]);
        // Over 1 MB the string grows by 1 MB at a time, not by doubling.
        let mut big = StrValue::raw(Bytes::from(vec![0u8; 3 << 20]));
        big.write_at(3 << 20, b"!");
        let buf = std::mem::take(&mut big.bytes).try_into_mut().unwrap();
        assert_eq!(buf.capacity(), (3 << 20) + 1 + (1 << 20));
    }

    #[test]
    fn integer_text_matches_the_decimal_text() {
        let edge = [0, 1, 9, 10, 9_999, 10_000, 10_001, -1, -9_999, -10_000];
        let extremes = [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1];
        let sweep = (-20_050..20_050).step_by(7);
        for i in edge.into_iter().chain(extremes).chain(sweep) {
            assert_eq!(int_text(i), i.to_string().as_bytes(), "{i}");
            let v = StrValue::from_int(i);
            assert_eq!(v.encoding(), StrEncoding::Int);
            assert_eq!(v.as_int(), Some(i));
        }
    }

    #[test]
    fn set_shares_small_integers_and_keeps_every_other_text_exactly() {
        for text in ["0", "7", "42", "9999"] {
            let v = StrValue::from_set(Bytes::from(text));
            assert_eq!(v.bytes(), text.as_bytes());
            assert_eq!(v.encoding(), StrEncoding::Int);
        }
        for (text, enc) in [
            ("-0", StrEncoding::Embstr),
            ("05", StrEncoding::Embstr),
            ("+5", StrEncoding::Embstr),
            (" 5", StrEncoding::Embstr),
            ("10000", StrEncoding::Int),
            ("-5", StrEncoding::Int),
            ("", StrEncoding::Embstr),
        ] {
            let v = StrValue::from_set(Bytes::from(text));
            assert_eq!(v.bytes(), text.as_bytes(), "{text:?}");
            assert_eq!(v.encoding(), enc, "{text:?}");
        }
    }

    #[test]
    fn strict_integer_parse() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("1", 1),
            ("-1", -1),
            ("1234567890", 1_234_567_890),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (s, v) in ok {
            assert_eq!(parse_i64_strict(s.as_bytes()), Some(*v), "{s}");
        }
        let bad = [
            "",
            "-",
            "+1",
            " 1",
            "1 ",
            "01",
            "-0",
            "00",
            "1a",
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "000000000000000000001",
            "1.0",
            "0x1",
            "--1",
            "\u{0661}",
        ];
        for s in bad {
            assert_eq!(parse_i64_strict(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn a_value_is_no_bigger_than_a_string() {
        // The main table stores values inline: collections must not make
        // every string key pay for their size.
        assert_eq!(
            std::mem::size_of::<Value>(),
            std::mem::size_of::<StrValue>()
        );
    }

    #[test]
    fn encodings_follow_redis_rules() {
        let enc = |s: &str| StrValue::from_set(Bytes::copy_from_slice(s.as_bytes())).encoding();
        assert_eq!(enc("12345"), StrEncoding::Int);
        assert_eq!(enc("-9223372036854775808"), StrEncoding::Int);
        assert_eq!(enc("9223372036854775808"), StrEncoding::Embstr);
        assert_eq!(enc("012"), StrEncoding::Embstr);
        assert_eq!(enc(""), StrEncoding::Embstr);
        assert_eq!(enc(&"a".repeat(44)), StrEncoding::Embstr);
        assert_eq!(enc(&"a".repeat(45)), StrEncoding::Raw);
        assert_eq!(
            StrValue::raw(Bytes::from_static(b"1")).encoding(),
            StrEncoding::Raw
        );
        let i = StrValue::from_int(-42);
        assert_eq!(
            (i.bytes().as_ref(), i.encoding()),
            (&b"-42"[..], StrEncoding::Int)
        );
        assert_eq!(i.as_int(), Some(-42));
        assert_eq!(StrValue::raw(Bytes::from_static(b"10")).as_int(), Some(10));
        let v = Value::from(i);
        assert_eq!(v.type_name(), "string");
        assert_eq!(v.encoding_name(), "int");
        assert_eq!(StrEncoding::Embstr.as_str(), "embstr");
        assert_eq!(StrEncoding::Raw.as_str(), "raw");
    }
}
