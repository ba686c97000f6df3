//! Redis 7.0 compatible `DEBUG DIGEST` / `DEBUG DIGEST-VALUE`.
//!
//! This module reproduces, bit for bit, the SHA-1 based dataset signature that
//! redis-server 7.0 returns for `DEBUG DIGEST` and the per-key signatures of
//! `DEBUG DIGEST-VALUE key [key ...]`, so that a digest taken on Cascade and
//! one taken on a real Redis (or a master and its replicas) can be compared.
//!
//! It depends on nothing of the server: callers feed the *logical* contents of
//! each key (bytes, members, scores, fields) through [`DigestValue`] or the
//! streaming [`ValueDigester`], and fold per-key results with
//! [`DbAccumulator`] and [`dataset_digest`]. The only dependency is the
//! RustCrypto `sha1` crate.
//!
//! # The algorithm (Redis `src/debug.c`)
//!
//! Two primitives over a 20-byte state `d`:
//! * `xor(d, data)`: `d ^= SHA1(data)` — order independent, used for unordered
//!   collections;
//! * `mix(d, data)`: `d = SHA1(d ^ SHA1(data))` — order dependent.
//!
//! Per key (what `DEBUG DIGEST` folds in):
//! 1. `d = 0`; `mix(d, key name)`;
//! 2. `mix(d, type as u32 big-endian)` with string=0, list=1, set=2, zset=3,
//!    hash=4, stream=6;
//! 3. the value: string → `mix(bytes)`; list → `mix(element)` head to tail;
//!    set → `xor(member)`; zset → for each member `e = 0; mix(e, member);
//!    mix(e, printf("%.17g", score)); xor(d, e)`; hash → for each field
//!    `e = 0; mix(e, field); mix(e, value); xor(d, e)`; stream → for each
//!    entry in ID order `mix("<ms>.<seq>")` then `mix(field)`, `mix(value)`
//!    for each field/value pair in entry order;
//! 4. if the key has an expire (any expire: the time itself is not hashed),
//!    `xor(d, "!!expire!!")`.
//!
//! `DEBUG DIGEST-VALUE` returns exactly the same thing **without step 1's
//! key-name mix** (it starts from zero and begins at step 2) but **with**
//! step 4; a missing key gives 40 zeros.
//!
//! Dataset: `final = 0`; for each db id `j` in ascending order whose key
//! table is non-empty: `mix(final, j as u32 big-endian)` then
//! `xor(final, d)` — i.e. `final ^= SHA1(d)`, the 20-byte key digest hashed
//! once more — for every key of that db. Keys are only XORed in, so a db's
//! contribution is the XOR of `SHA1(d)` over its keys: order independent,
//! so shards may each compute one and combine them. Only the per-db `mix`
//! is sequential, and it hashes everything accumulated so far (lower dbs
//! included). Output is 40 lowercase hex digits; an empty dataset gives 40
//! zeros.
//!
//! Integers: Redis hashes integer-encoded strings, intset members and
//! listpack integers through their decimal form, which is always identical
//! to the bytes that were stored (only canonical decimal strings are
//! integer-encoded), so callers simply pass the logical string bytes.
//!
//! Caveats, all matching Redis 7.0 itself:
//! * Only whether a key has an expire is hashed, not its time.
//! * Redis digests every key still in its key table, including keys that are
//!   logically expired but not yet reclaimed; callers choose what to feed.
//! * A score of `-0.0` hashes as "-0", as in a skiplist-encoded zset; a
//!   listpack-encoded zset (small ones) stores it as "0", so to match Redis
//!   there, feed `0.0`.
//! * Not covered: module types (type 5). Stream metadata (consumer groups,
//!   last ID, entries-added counters) is not hashed by Redis 7.0 either.

use sha1::{Digest as _, Sha1};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A 20-byte SHA-1 based digest state / result.
pub type Sha1Digest = [u8; 20];

/// The all-zero digest: the start state, and what Redis reports for an empty
/// dataset or for `DEBUG DIGEST-VALUE` of a missing key.
pub const ZERO_DIGEST: Sha1Digest = [0; 20];

/// String appended (XORed) to the digest of a key that has an expire.
const EXPIRE_MARK: &[u8] = b"!!expire!!";

fn sha1(data: &[u8]) -> Sha1Digest {
    Sha1::digest(data).into()
}

/// `digest ^= SHA1(data)` (Redis `xorDigest`): order independent.
pub fn xor_digest(digest: &mut Sha1Digest, data: &[u8]) {
    let hash = sha1(data);
    for (d, h) in digest.iter_mut().zip(hash.iter()) {
        *d ^= h;
    }
}

/// `digest = SHA1(digest ^ SHA1(data))` (Redis `mixDigest`): order dependent.
pub fn mix_digest(digest: &mut Sha1Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(digest);
}

/// XOR `other` into `digest` byte by byte.
fn xor_in(digest: &mut Sha1Digest, other: &Sha1Digest) {
    for (d, o) in digest.iter_mut().zip(other.iter()) {
        *d ^= o;
    }
}

/// Redis object type codes (`OBJ_*` in server.h), hashed as big-endian u32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    String = 0,
    List = 1,
    Set = 2,
    ZSet = 3,
    Hash = 4,
    Stream = 6,
}

/// One stream entry as fed to the digest: ID `ms-seq` and its field/value
/// pairs in entry order.
#[derive(Clone, Copy, Debug)]
pub struct StreamEntry<'a> {
    pub ms: u64,
    pub seq: u64,
    pub fields: &'a [(&'a [u8], &'a [u8])],
}

/// Logical contents of one key's value, borrowed from the caller.
///
/// Order matters only for `List` (head to tail) and `Stream` (ascending ID);
/// `Set`, `ZSet` and `Hash` may be given in any order. For values held in
/// other shapes, use [`ValueDigester`] directly.
#[derive(Clone, Copy, Debug)]
pub enum DigestValue<'a> {
    Str(&'a [u8]),
    List(&'a [&'a [u8]]),
    Set(&'a [&'a [u8]]),
    ZSet(&'a [(&'a [u8], f64)]),
    Hash(&'a [(&'a [u8], &'a [u8])]),
    Stream(&'a [StreamEntry<'a>]),
}

impl DigestValue<'_> {
    pub fn value_type(&self) -> ValueType {
        match self {
            DigestValue::Str(_) => ValueType::String,
            DigestValue::List(_) => ValueType::List,
            DigestValue::Set(_) => ValueType::Set,
            DigestValue::ZSet(_) => ValueType::ZSet,
            DigestValue::Hash(_) => ValueType::Hash,
            DigestValue::Stream(_) => ValueType::Stream,
        }
    }

    fn feed(&self, d: &mut ValueDigester) {
        match *self {
            DigestValue::Str(s) => d.string(s),
            DigestValue::List(items) => items.iter().for_each(|e| d.list_element(e)),
            DigestValue::Set(members) => members.iter().for_each(|m| d.set_member(m)),
            DigestValue::ZSet(members) => members.iter().for_each(|(m, s)| d.zset_member(m, *s)),
            DigestValue::Hash(pairs) => pairs.iter().for_each(|(f, v)| d.hash_field(f, v)),
            DigestValue::Stream(entries) => entries
                .iter()
                .for_each(|e| d.stream_entry(e.ms, e.seq, e.fields.iter().copied())),
        }
    }
}

/// Streaming builder for one key's digest, for callers that iterate their own
/// structures instead of building a [`DigestValue`].
///
/// Call the element method matching the type given at construction (checked
/// with `debug_assert!`), then [`finish`](Self::finish).
#[derive(Clone, Debug)]
pub struct ValueDigester {
    digest: Sha1Digest,
    ty: ValueType,
}

impl ValueDigester {
    /// Start the digest `DEBUG DIGEST` folds in for a key: key name mixed
    /// first, then the type.
    pub fn for_key(key: &[u8], ty: ValueType) -> Self {
        let mut digest = ZERO_DIGEST;
        mix_digest(&mut digest, key);
        Self::start(digest, ty)
    }

    /// Start the digest `DEBUG DIGEST-VALUE` returns: the type only, no key
    /// name.
    pub fn for_value(ty: ValueType) -> Self {
        Self::start(ZERO_DIGEST, ty)
    }

    fn start(mut digest: Sha1Digest, ty: ValueType) -> Self {
        mix_digest(&mut digest, &(ty as u32).to_be_bytes());
        ValueDigester { digest, ty }
    }

    /// The whole value of a string key (integers: pass their decimal form).
    pub fn string(&mut self, value: &[u8]) {
        debug_assert_eq!(self.ty, ValueType::String);
        mix_digest(&mut self.digest, value);
    }

    /// Next list element; call head to tail.
    pub fn list_element(&mut self, element: &[u8]) {
        debug_assert_eq!(self.ty, ValueType::List);
        mix_digest(&mut self.digest, element);
    }

    /// One set member, any order.
    pub fn set_member(&mut self, member: &[u8]) {
        debug_assert_eq!(self.ty, ValueType::Set);
        xor_digest(&mut self.digest, member);
    }

    /// One sorted-set member with its score, any order. The score is hashed
    /// as C `printf("%.17g")` text, see [`format_score`].
    pub fn zset_member(&mut self, member: &[u8], score: f64) {
        debug_assert_eq!(self.ty, ValueType::ZSet);
        let mut ele = ZERO_DIGEST;
        mix_digest(&mut ele, member);
        mix_digest(&mut ele, format_score(score).as_bytes());
        xor_digest(&mut self.digest, &ele);
    }

    /// One hash field with its value, any order.
    pub fn hash_field(&mut self, field: &[u8], value: &[u8]) {
        debug_assert_eq!(self.ty, ValueType::Hash);
        let mut ele = ZERO_DIGEST;
        mix_digest(&mut ele, field);
        mix_digest(&mut ele, value);
        xor_digest(&mut self.digest, &ele);
    }

    /// Next stream entry; call in ascending ID order. Fields in entry order.
    pub fn stream_entry<'f>(
        &mut self,
        ms: u64,
        seq: u64,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
    ) {
        debug_assert_eq!(self.ty, ValueType::Stream);
        // Redis: sdscatfmt("%U.%U") — note the dot, not the dash of IDs.
        mix_digest(&mut self.digest, format!("{ms}.{seq}").as_bytes());
        for (field, value) in fields {
            mix_digest(&mut self.digest, field);
            mix_digest(&mut self.digest, value);
        }
    }

    /// Finish: `has_expire` is whether the key has a TTL (its time is not
    /// part of the digest, only its presence).
    pub fn finish(mut self, has_expire: bool) -> Sha1Digest {
        if has_expire {
            xor_digest(&mut self.digest, EXPIRE_MARK);
        }
        self.digest
    }
}

/// Redis's per-key digest in `DEBUG DIGEST` (its local `digest`): key
/// name, type, value and expire presence. The dataset takes `SHA1` of it
/// once more when XORing it in; [`DbAccumulator::add_key_digest`] does that.
pub fn key_digest(key: &[u8], value: DigestValue<'_>, has_expire: bool) -> Sha1Digest {
    let mut d = ValueDigester::for_key(key, value.value_type());
    value.feed(&mut d);
    d.finish(has_expire)
}

/// What `DEBUG DIGEST-VALUE` returns for an existing key: like
/// [`key_digest`] without the key name, but still including the expire mark.
/// (A missing key gives [`ZERO_DIGEST`].)
pub fn value_digest(value: DigestValue<'_>, has_expire: bool) -> Sha1Digest {
    let mut d = ValueDigester::for_value(value.value_type());
    value.feed(&mut d);
    d.finish(has_expire)
}

/// One db's contribution to the dataset digest: the XOR of its key digests
/// plus the key count (Redis mixes the db id in only for non-empty dbs, and
/// an XOR of zero does not tell empty apart). Shards can each build one per
/// db and [`combine`](Self::combine) them in any order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbAccumulator {
    xor: Sha1Digest,
    keys: u64,
}

impl DbAccumulator {
    pub const fn new() -> Self {
        DbAccumulator {
            xor: ZERO_DIGEST,
            keys: 0,
        }
    }

    /// Add one key given its [`key_digest`] (or [`ValueDigester::for_key`]
    /// result). Like Redis's `xorDigest(final, digest, 20)`, this XORs in
    /// `SHA1(key_digest)`, not the key digest itself.
    pub fn add_key_digest(&mut self, key_digest: &Sha1Digest) {
        xor_digest(&mut self.xor, key_digest);
        self.keys += 1;
    }

    /// Add one key from its logical contents.
    pub fn add(&mut self, key: &[u8], value: DigestValue<'_>, has_expire: bool) {
        self.add_key_digest(&key_digest(key, value, has_expire));
    }

    /// Fold another partial accumulation of the same db into this one.
    pub fn combine(&mut self, other: &DbAccumulator) {
        xor_in(&mut self.xor, &other.xor);
        self.keys += other.keys;
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// XOR of `SHA1(key digest)` over the keys added so far.
    pub fn xor(&self) -> &Sha1Digest {
        &self.xor
    }
}

/// The `DEBUG DIGEST` result from per-db accumulations. Entries may come in
/// any order and the same db id may appear several times (one per shard):
/// they are combined, then dbs are folded in ascending id, skipping empty
/// ones, as Redis does.
pub fn dataset_digest(dbs: &[(u32, DbAccumulator)]) -> Sha1Digest {
    let mut per_db: BTreeMap<u32, DbAccumulator> = BTreeMap::new();
    for (id, acc) in dbs {
        per_db.entry(*id).or_default().combine(acc);
    }
    let mut digest = ZERO_DIGEST;
    for (id, acc) in per_db.iter().filter(|(_, acc)| !acc.is_empty()) {
        mix_digest(&mut digest, &id.to_be_bytes());
        xor_in(&mut digest, &acc.xor);
    }
    digest
}

/// Lowercase hex, 40 characters, as Redis prints digests.
pub fn to_hex(d: &Sha1Digest) -> String {
    let mut s = String::with_capacity(40);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A score as C `snprintf(buf, 128, "%.17g", score)` (glibc) prints it,
/// which is what Redis 7.0 hashes for sorted-set scores: e.g. `1.5` → "1.5",
/// `3.0` → "3", `1e30` → "1.0000000000000000e+30", `0.1` →
/// "0.10000000000000001", `-inf` → "-inf", `-0.0` → "-0". Rounding to 17
/// significant digits is exact, ties to even, like glibc.
pub fn format_score(score: f64) -> String {
    if score.is_nan() {
        // Redis never stores NaN scores; glibc prints the sign bit too.
        return if score.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        }
        .to_string();
    }
    if score.is_infinite() {
        return if score < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if score == 0.0 {
        return if score.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // One correctly rounded conversion to 17 significant digits; the %g
    // layout is then derived from those digits without rounding again.
    let sci = format!("{:.16e}", score.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent in {:e} output");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    debug_assert_eq!(digits.len(), 17);

    let mut out = String::with_capacity(32);
    if score < 0.0 {
        out.push('-');
    }
    if (-4..17).contains(&exp) {
        // Fixed notation with 16 - exp decimals, trailing zeros removed.
        if exp >= 0 {
            let int_len = exp as usize + 1;
            push_ascii(&mut out, &digits[..int_len]);
            push_fraction(&mut out, &digits[int_len..]);
        } else {
            out.push('0');
            let mut frac = vec![b'0'; (-exp - 1) as usize];
            frac.extend_from_slice(&digits);
            push_fraction(&mut out, &frac);
        }
    } else {
        // Scientific: d.dddde±XX, trailing zeros removed, exponent ≥ 2 digits.
        push_ascii(&mut out, &digits[..1]);
        push_fraction(&mut out, &digits[1..]);
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
    out
}

fn push_ascii(out: &mut String, digits: &[u8]) {
    out.extend(digits.iter().map(|&b| b as char));
}

/// Append `.fraction` without its trailing zeros (nothing if all zero).
fn push_fraction(out: &mut String, fraction: &[u8]) {
    let keep = fraction
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |p| p + 1);
    if keep > 0 {
        out.push('.');
        push_ascii(out, &fraction[..keep]);
    }
}

#[cfg(test)]
mod tests {
    //! Expected hex values below came from a real redis-server 7.0.15
    //! (`redis-server --save "" --appendonly no --enable-debug-command yes`)
    //! fed by `tools/redis_ref.py` (raw RESP over a socket). The commands that
    //! built each piece of data are quoted next to each expectation.

    use super::*;

    fn hex(d: Sha1Digest) -> String {
        to_hex(&d)
    }

    type OwnedPairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// Owned logical value, for building test data.
    #[derive(Clone, Debug)]
    enum Owned {
        Str(Vec<u8>),
        List(Vec<Vec<u8>>),
        Set(Vec<Vec<u8>>),
        ZSet(Vec<(Vec<u8>, f64)>),
        Hash(OwnedPairs),
        /// (ms, seq, fields)
        Stream(Vec<(u64, u64, OwnedPairs)>),
    }

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn list(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| b(s)).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        items.iter().map(|(f, v)| (b(f), b(v))).collect()
    }

    fn zset(items: &[(&str, &str)]) -> Vec<(Vec<u8>, f64)> {
        // Scores parsed from the same text given to ZADD (Redis uses strtod;
        // both are correctly rounded).
        items.iter().map(|(m, s)| (b(m), parse_score(s))).collect()
    }

    /// As `zset`, with -0 turned into 0 as a listpack-encoded zset does.
    fn zset_listpack(items: &[(&str, &str)]) -> Vec<(Vec<u8>, f64)> {
        zset(items)
            .into_iter()
            .map(|(m, s)| (m, if s == 0.0 { 0.0 } else { s }))
            .collect()
    }

    fn parse_score(s: &str) -> f64 {
        match s {
            "inf" | "+inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => s.parse().unwrap(),
        }
    }

    /// Calls `f` with the borrowed `DigestValue` view of `v`.
    fn with_value<R>(v: &Owned, f: impl FnOnce(DigestValue<'_>) -> R) -> R {
        match v {
            Owned::Str(s) => f(DigestValue::Str(s)),
            Owned::List(items) => {
                let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                f(DigestValue::List(&refs))
            }
            Owned::Set(items) => {
                let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                f(DigestValue::Set(&refs))
            }
            Owned::ZSet(items) => {
                let refs: Vec<(&[u8], f64)> = items.iter().map(|(m, s)| (&m[..], *s)).collect();
                f(DigestValue::ZSet(&refs))
            }
            Owned::Hash(items) => {
                let refs: Vec<(&[u8], &[u8])> =
                    items.iter().map(|(k, v)| (&k[..], &v[..])).collect();
                f(DigestValue::Hash(&refs))
            }
            Owned::Stream(entries) => {
                let fields: Vec<Vec<(&[u8], &[u8])>> = entries
                    .iter()
                    .map(|(_, _, fs)| fs.iter().map(|(k, v)| (&k[..], &v[..])).collect())
                    .collect();
                let es: Vec<StreamEntry<'_>> = entries
                    .iter()
                    .zip(fields.iter())
                    .map(|((ms, seq, _), fs)| StreamEntry {
                        ms: *ms,
                        seq: *seq,
                        fields: fs,
                    })
                    .collect();
                f(DigestValue::Stream(&es))
            }
        }
    }

    fn dv(v: &Owned, has_expire: bool) -> String {
        with_value(v, |v| hex(value_digest(v, has_expire)))
    }

    fn kd(key: &[u8], v: &Owned, has_expire: bool) -> Sha1Digest {
        with_value(v, |v| key_digest(key, v, has_expire))
    }

    /// A db's keys: (name, value, has_expire).
    type Db = Vec<(Vec<u8>, Owned, bool)>;

    fn accumulate(keys: &Db) -> DbAccumulator {
        let mut acc = DbAccumulator::new();
        for (k, v, e) in keys {
            acc.add_key_digest(&kd(k, v, *e));
        }
        acc
    }

    // Same generators as tools/redis_ref.py.
    fn big_list() -> Vec<Vec<u8>> {
        (0..200i64)
            .map(|i| {
                if i % 3 != 0 {
                    format!("item:{i}")
                } else {
                    (i * 7 - 300).to_string()
                }
                .into_bytes()
            })
            .collect()
    }

    fn big_set() -> Vec<Vec<u8>> {
        (0..600)
            .map(|i| format!("member:{i}").into_bytes())
            .collect()
    }

    fn big_zset_text() -> Vec<(String, String)> {
        (0..200i64)
            .map(|i| {
                (
                    format!("z{i}"),
                    format!("{}.{}", (i * 37) % 1000 - 500, i % 97),
                )
            })
            .collect()
    }

    fn big_hash() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..600)
            .map(|i| {
                let v = if i % 2 != 0 {
                    format!("value:{i}")
                } else {
                    i.to_string()
                };
                (format!("field:{i}").into_bytes(), v.into_bytes())
            })
            .collect()
    }

    const ZSMALL: &[(&str, &str)] = &[
        ("a", "1.5"),
        ("b", "-inf"),
        ("c", "1e+30"),
        ("d", "3"),
        ("e", "0.1"),
        ("f", "inf"),
        ("12", "1250000000000000.25"),
        ("007", "1e-5"),
        ("g", "-0"),
        ("h", "1e17"),
        ("i", "123456789"),
        ("j", "-2.5e-300"),
    ];

    /// Every key of db 0 in the reference dataset, with what redis-server
    /// 7.0.15 answered to `DEBUG DIGEST-VALUE <key>` for it.
    fn db0() -> Vec<(Vec<u8>, Owned, bool, &'static str)> {
        let mut big_z = zset(
            &big_zset_text()
                .iter()
                .map(|(m, s)| (m.as_str(), s.as_str()))
                .collect::<Vec<_>>(),
        );
        // ZADD z:big <big_zset> + ZSMALL (members disjoint).
        big_z.extend(zset(ZSMALL));
        let s = |v: &[u8]| Owned::Str(v.to_vec());
        vec![
            // SET s:int 123  (OBJECT ENCODING: int)
            (
                b("s:int"),
                s(b"123"),
                false,
                "89f7f51b707418f666d5b45e053bd5bbbf82ac2b",
            ),
            // SET s:neg -5
            (
                b("s:neg"),
                s(b"-5"),
                false,
                "b8fe4ac02b2f7e40537890f8b06b1107798d89e1",
            ),
            // SET s:zpad 007
            (
                b("s:zpad"),
                s(b"007"),
                false,
                "8e00a8fb3b4e9d75e4004709d98cda64c3823457",
            ),
            // SET s:empty ""
            (
                b("s:empty"),
                s(b""),
                false,
                "8b3447c33a834b810e3e181b6fd6a2ee1020921c",
            ),
            // SET s:bin "\x00\xff\r\nbin"
            (
                b("s:bin"),
                s(b"\x00\xff\r\nbin"),
                false,
                "a7457f7b55a8b5caf56133ace7b2c802d3427fa5",
            ),
            // SET s:plain hello
            (
                b("s:plain"),
                s(b"hello"),
                false,
                "36b23a1456b2dce2c3ed252c456761301dba8060",
            ),
            // SET s:huge 12345678901234567890 (beyond i64: raw)
            (
                b("s:huge"),
                s(b"12345678901234567890"),
                false,
                "71f0756f36a6579483243170ae41bfe56d554e36",
            ),
            // SET s:float 3.14
            (
                b("s:float"),
                s(b"3.14"),
                false,
                "a1074fe106dbfdd0a16a345b5f8b79dad67237d3",
            ),
            // SET s:exp v; PEXPIREAT s:exp 4102444800000
            (
                b("s:exp"),
                s(b"v"),
                true,
                "311b17018163335616e089f6b951c82c477335ac",
            ),
            // SET s:incr 10; INCRBY s:incr 5
            (
                b("s:incr"),
                s(b"15"),
                false,
                "07c67dfbc5083f73c448480f17d37ddca504ccaf",
            ),
            // RPUSH l:small a b 1 -2 "" 007
            (
                b("l:small"),
                Owned::List(list(&["a", "b", "1", "-2", "", "007"])),
                false,
                "5e4c6f856ac597e6a5f56a680c22c32713bac2cd",
            ),
            // RPUSH l:big <big_list: 200 elements>
            (
                b("l:big"),
                Owned::List(big_list()),
                false,
                "24dd9d6316caa2d4a180b1c4a44bdf39f9a757a1",
            ),
            // RPUSH l:exp x y; PEXPIREAT l:exp 4102444800000
            (
                b("l:exp"),
                Owned::List(list(&["x", "y"])),
                true,
                "4534b4cb138483adb1dbdb57b605180cfad50c3f",
            ),
            // SADD set:int 1 2 3 -7  (intset)
            (
                b("set:int"),
                Owned::Set(list(&["1", "2", "3", "-7"])),
                false,
                "7c18a1ee501cbbac4570c254b09c36f4da1267c7",
            ),
            // SADD set:str a b c ""
            (
                b("set:str"),
                Owned::Set(list(&["a", "b", "c", ""])),
                false,
                "830587fa26063e495cc24b05c82b6b8f9ccbdd7b",
            ),
            // SADD set:big member:0 .. member:599
            (
                b("set:big"),
                Owned::Set(big_set()),
                false,
                "056b372e361a44d77e4081677de873789346b6b4",
            ),
            // ZADD z:small <ZSMALL> (listpack). A listpack stores scores as
            // text that drops the sign of -0 ("ZSCORE z:small g" -> "0"), so
            // the digest sees 0: the logical data fed here is g = 0.
            (
                b("z:small"),
                Owned::ZSet(zset_listpack(ZSMALL)),
                false,
                "3cf94b37c91793758f638ac173220d79012f45a6",
            ),
            // ZADD z:big <big_zset> <ZSMALL> (skiplist: keeps -0, "ZSCORE z:big g" -> "-0")
            (
                b("z:big"),
                Owned::ZSet(big_z),
                false,
                "0cbfeb29c928efd9752dbabd2dab5cb093e567eb",
            ),
            // ZADD z:one 1.5 a
            (
                b("z:one"),
                Owned::ZSet(zset(&[("a", "1.5")])),
                false,
                "4abede9eeefb1bae2bf5394291a39b9e34b5b2b6",
            ),
            // ZADD z:tie 1250000000000000.25 t  (%.17g tie: "1250000000000000.2")
            (
                b("z:tie"),
                Owned::ZSet(zset(&[("t", "1250000000000000.25")])),
                false,
                "54b2428fc3ac944eb471cf7f0ba563ca4fcf7ee3",
            ),
            // HSET h:small f1 v1 f2 2 "" empty-field 3 ""
            (
                b("h:small"),
                Owned::Hash(pairs(&[
                    ("f1", "v1"),
                    ("f2", "2"),
                    ("", "empty-field"),
                    ("3", ""),
                ])),
                false,
                "3c41bc3258f0663ac27349bb42ccb9c7c27b569f",
            ),
            // HSET h:big field:i (i odd ? value:i : i), i in 0..600
            (
                b("h:big"),
                Owned::Hash(big_hash()),
                false,
                "16f7c1696276a5e30495ef0c6742b5587c42cde4",
            ),
            // XADD st 1-1 a 1 b 2; XADD st 5-0 c 3; XADD st 5-7 a x b y
            // (later XGROUP CREATE st g1 0: digest unchanged)
            (
                b("st"),
                Owned::Stream(vec![
                    (1, 1, pairs(&[("a", "1"), ("b", "2")])),
                    (5, 0, pairs(&[("c", "3")])),
                    (5, 7, pairs(&[("a", "x"), ("b", "y")])),
                ]),
                false,
                "6ad03200cd15b9881997ba9e7a8ba6098e0196bb",
            ),
            // XADD st:empty 1-1 a 1; XDEL st:empty 1-1  (stream with no entries)
            (
                b("st:empty"),
                Owned::Stream(vec![]),
                false,
                "06bd01623de1d087bbd377851096317b1af476a2",
            ),
        ]
    }

    fn db0_keys() -> Db {
        db0().into_iter().map(|(k, v, e, _)| (k, v, e)).collect()
    }

    fn db3_keys() -> Db {
        vec![
            // SELECT 3; SET k3 v3
            (b("k3"), Owned::Str(b("v3")), false),
            // SET n3 42; PEXPIREAT n3 4102444800000
            (b("n3"), Owned::Str(b("42")), true),
            // ZADD z3 1.5 one -inf minf; PEXPIREAT z3 4102444800000
            (
                b("z3"),
                Owned::ZSet(zset(&[("one", "1.5"), ("minf", "-inf")])),
                true,
            ),
        ]
    }

    fn db15_keys() -> Db {
        vec![
            // SELECT 15; HSET h15 a 1 b 2
            (
                b("h15"),
                Owned::Hash(pairs(&[("a", "1"), ("b", "2")])),
                false,
            ),
            // SET foo bar
            (b("foo"), Owned::Str(b("bar")), false),
        ]
    }

    #[test]
    fn empty_dataset_is_40_zeros() {
        // FLUSHALL; DEBUG DIGEST
        let zeros = "0000000000000000000000000000000000000000";
        assert_eq!(hex(dataset_digest(&[])), zeros);
        // Empty dbs are skipped, not mixed in.
        assert_eq!(
            hex(dataset_digest(&[
                (0, DbAccumulator::new()),
                (9, DbAccumulator::new())
            ])),
            zeros
        );
        assert_eq!(to_hex(&ZERO_DIGEST), zeros);
    }

    #[test]
    fn single_string_key() {
        let bar = Owned::Str(b("bar"));
        let db = |e| {
            let mut acc = DbAccumulator::new();
            with_value(&bar, |v| acc.add(b"foo", v, e));
            acc
        };
        // SET foo bar; DEBUG DIGEST
        assert_eq!(
            hex(dataset_digest(&[(0, db(false))])),
            "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a"
        );
        // DEBUG DIGEST-VALUE foo missing
        assert_eq!(dv(&bar, false), "68467c70ae30376e7ce005bcc8827f5ba7fd67dc");
        // PEXPIREAT foo 4102444800000; DEBUG DIGEST (and the same after
        // PEXPIREAT foo 4102444812345: the expire time itself is not hashed)
        assert_eq!(
            hex(dataset_digest(&[(0, db(true))])),
            "8b0c6d22108f15467022bc27c005787072eb4c4b"
        );
        // DEBUG DIGEST-VALUE foo (with the expire): includes "!!expire!!"
        assert_eq!(dv(&bar, true), "8ec3828f7209dd3abdf6ee448de8b0c0bd53265f");
        // FLUSHALL; SELECT 5; SET foo bar; DEBUG DIGEST
        assert_eq!(
            hex(dataset_digest(&[(5, db(false))])),
            "fec0c0f7df2bb999ad149c45170d64e2fa001333"
        );
    }

    #[test]
    fn digest_value_every_type() {
        for (key, value, has_expire, expected) in db0() {
            assert_eq!(
                dv(&value, has_expire),
                expected,
                "DEBUG DIGEST-VALUE {}",
                String::from_utf8_lossy(&key)
            );
        }
    }

    #[test]
    fn digest_value_db3_db15() {
        // SELECT 3; DEBUG DIGEST-VALUE k3 n3 z3
        let got: Vec<String> = db3_keys().iter().map(|(_, v, e)| dv(v, *e)).collect();
        assert_eq!(
            got,
            [
                "0e28a4a014ef5d1f6d401269dfcaa3b5b9c21c73",
                "b2fffeb5eb322d48ec77f4f949383d7cace23627",
                "83cffcc41aaa2146926018a0107fe5b50526196c"
            ]
        );
        // SELECT 15; DEBUG DIGEST-VALUE h15 foo
        let got: Vec<String> = db15_keys().iter().map(|(_, v, e)| dv(v, *e)).collect();
        assert_eq!(
            got,
            [
                "6c8f22b3bf510fdcfd6122dd0f908a80e88243bf",
                "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
            ]
        );
    }

    #[test]
    fn db0_dataset_all_types() {
        // All 24 db0 keys above; DEBUG DIGEST (DBSIZE 24)
        let keys = db0_keys();
        assert_eq!(keys.len(), 24);
        assert_eq!(
            hex(dataset_digest(&[(0, accumulate(&keys))])),
            "fcb75034973e738a84f3be88276cb9d3b482814c"
        );
    }

    const MULTI_DB: &str = "2b0bce5e6e9b4821c35752a76c24e83d3ec93308";

    #[test]
    fn multi_db_dataset() {
        // db0 as above + db 3 + db 15; DEBUG DIGEST
        let dbs = [
            (0, accumulate(&db0_keys())),
            (3, accumulate(&db3_keys())),
            (15, accumulate(&db15_keys())),
        ];
        assert_eq!(hex(dataset_digest(&dbs)), MULTI_DB);
        // Order of the slice does not matter: dbs are folded by ascending id.
        let rev = [dbs[2], dbs[0], dbs[1]];
        assert_eq!(hex(dataset_digest(&rev)), MULTI_DB);
        // Empty dbs in between do not change it.
        let with_empty = [dbs[0], (1, DbAccumulator::new()), dbs[1], dbs[2]];
        assert_eq!(hex(dataset_digest(&with_empty)), MULTI_DB);
    }

    #[test]
    fn sharded_accumulation_matches() {
        // Split each db's keys over 3 "shards" in scrambled order, then give
        // the partial accumulators to dataset_digest unmerged, and merged.
        let all = [(0u32, db0_keys()), (3, db3_keys()), (15, db15_keys())];
        let mut parts = Vec::new();
        for (id, keys) in &all {
            let mut shards = [DbAccumulator::new(); 3];
            for (i, (k, v, e)) in keys.iter().enumerate().rev() {
                shards[(i * 7) % 3].add_key_digest(&kd(k, v, *e));
            }
            parts.extend(shards.iter().map(|s| (*id, *s)));
        }
        parts.reverse();
        assert_eq!(hex(dataset_digest(&parts)), MULTI_DB);

        let mut merged: BTreeMap<u32, DbAccumulator> = BTreeMap::new();
        for (id, acc) in &parts {
            merged.entry(*id).or_default().combine(acc);
        }
        assert_eq!(merged[&0].keys(), 24);
        let merged: Vec<(u32, DbAccumulator)> = merged.into_iter().collect();
        assert_eq!(hex(dataset_digest(&merged)), MULTI_DB);
    }

    #[test]
    fn unordered_collections_are_order_independent_lists_are_not() {
        let fwd = Owned::Set(list(&["a", "b", "c"]));
        let rev = Owned::Set(list(&["c", "b", "a"]));
        assert_eq!(dv(&fwd, false), dv(&rev, false));
        let fwd = Owned::Hash(pairs(&[("f1", "v1"), ("f2", "v2")]));
        let rev = Owned::Hash(pairs(&[("f2", "v2"), ("f1", "v1")]));
        assert_eq!(dv(&fwd, false), dv(&rev, false));
        // Field/value pairing matters.
        let swapped = Owned::Hash(pairs(&[("f1", "v2"), ("f2", "v1")]));
        assert_ne!(dv(&fwd, false), dv(&swapped, false));
        let fwd = Owned::List(list(&["a", "b"]));
        let rev = Owned::List(list(&["b", "a"]));
        assert_ne!(dv(&fwd, false), dv(&rev, false));
        // A list is not a string of the same bytes, nor split differently.
        assert_ne!(
            dv(&Owned::List(list(&["ab"])), false),
            dv(&Owned::Str(b("ab")), false)
        );
        assert_ne!(
            dv(&Owned::List(list(&["fo", "obar"])), false),
            dv(&Owned::List(list(&["foo", "bar"])), false)
        );
    }

    #[test]
    fn streaming_digester_matches_enum() {
        let mut d = ValueDigester::for_key(b"z:small", ValueType::ZSet);
        for (m, s) in zset(ZSMALL).iter().rev() {
            d.zset_member(m, *s);
        }
        assert_eq!(
            d.finish(false),
            kd(b"z:small", &Owned::ZSet(zset(ZSMALL)), false)
        );

        let mut d = ValueDigester::for_value(ValueType::Stream);
        d.stream_entry(1, 1, [(&b"a"[..], &b"1"[..]), (b"b", b"2")]);
        d.stream_entry(5, 0, [(&b"c"[..], &b"3"[..])]);
        d.stream_entry(5, 7, [(&b"a"[..], &b"x"[..]), (b"b", b"y")]);
        assert_eq!(
            hex(d.finish(false)),
            "6ad03200cd15b9881997ba9e7a8ba6098e0196bb"
        );
    }

    #[test]
    fn negative_zero_score() {
        // ZADD zneg -0 x; ZADD zpos 0 x; DEBUG DIGEST-VALUE zneg zpos -> both
        // the same (listpack drops the sign of -0).
        let want = "ec8ec096ebd0c25179377a4eef1d145046fb3852";
        assert_eq!(dv(&Owned::ZSet(zset(&[("x", "0")])), false), want);
        assert_eq!(dv(&Owned::ZSet(zset_listpack(&[("x", "-0")])), false), want);
        // Fed as -0.0 it hashes "-0", as a skiplist-encoded zset does.
        assert_ne!(dv(&Owned::ZSet(zset(&[("x", "-0")])), false), want);
    }

    #[test]
    fn primitives() {
        let mut d = ZERO_DIGEST;
        xor_digest(&mut d, b"abc");
        // SHA1("abc")
        assert_eq!(to_hex(&d), "a9993e364706816aba3e25717850c26c9cd0d89d");
        xor_digest(&mut d, b"abc");
        assert_eq!(d, ZERO_DIGEST);
        let mut m = ZERO_DIGEST;
        mix_digest(&mut m, b"abc");
        // SHA1(SHA1("abc")) as raw bytes, since the state started at zero.
        assert_eq!(m, sha1(&sha1(b"abc")));
    }

    #[test]
    fn score_formatting_matches_redis_zscore() {
        // ZSCORE replies of redis-server 7.0.15 (also "%.17g") for ZSMALL.
        let cases = [
            ("1.5", "1.5"),
            ("-inf", "-inf"),
            ("1e+30", "1e+30"),
            ("3", "3"),
            ("0.1", "0.10000000000000001"),
            ("inf", "inf"),
            ("1250000000000000.25", "1250000000000000.2"),
            ("1e-5", "1.0000000000000001e-05"),
            ("1e17", "1e+17"),
            ("123456789", "123456789"),
            ("-2.5e-300", "-2.5e-300"),
        ];
        for (input, want) in cases {
            assert_eq!(format_score(parse_score(input)), want, "score {input}");
        }
        assert_eq!(format_score(-0.0), "-0");
        assert_eq!(format_score(0.0), "0");
        assert_eq!(format_score(1e16), "10000000000000000");
        assert_eq!(format_score(1e-4), "0.0001");
        assert_eq!(format_score(1.2345e-4), "0.00012344999999999999");
        assert_eq!(format_score(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_score(5e-324), "4.9406564584124654e-324");
        assert_eq!(format_score(-1.0), "-1");
    }

    /// Cross-check against the platform C library's `snprintf("%.17g")`
    /// (what Redis calls) on many values, including exact ties.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    // Literals below are exact on purpose (ties at 17 digits).
    #[allow(clippy::excessive_precision)]
    fn score_formatting_matches_libc() {
        use std::ffi::{c_char, c_int};
        unsafe extern "C" {
            fn snprintf(buf: *mut c_char, n: usize, fmt: *const c_char, ...) -> c_int;
        }
        fn c_g17(x: f64) -> String {
            let mut buf = [0u8; 128];
            // SAFETY: buf is 128 bytes, the format is NUL terminated and takes one double.
            let n = unsafe { snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), x) };
            String::from_utf8(buf[..n as usize].to_vec()).unwrap()
        }
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.5,
            0.25,
            1e-4,
            9.9999999999999995e-5,
            1e-5,
            1e16,
            1e17,
            9.999999999999999e16,
            1250000000000000.25,
            1250000000000000.75,
            2251799813685247.5,
            4503599627370495.5,
            0.1,
            0.3,
            2.0f64.powi(-1074),
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Deterministic xorshift over raw bit patterns and over "nice" values.
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u64 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = f64::from_bits(s);
            if x.is_finite() {
                values.push(x);
            }
            // Values with few bits after the point: many exact ties at 17 digits.
            let m = (s >> 11) as f64;
            values.push(m / 4.0);
            values.push(-(m / 2.0));
            values.push((i as f64) * 0.37 - 20.0);
            values.push((s % 100_000) as f64 / 1000.0);
        }
        for x in values {
            assert_eq!(format_score(x), c_g17(x), "bits {:#x}", x.to_bits());
        }
    }
}
