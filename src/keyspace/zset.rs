//! `ZsetValue`: the sorted set type and its two encodings, as Redis 7.0
//! has them.
//!
//! "listpack": a `Vec` of (member, score) kept in (score, member) order,
//! searched linearly or by binary search, while the set has at most
//! `zset-max-listpack-entries` members, none longer than
//! `zset-max-listpack-value` bytes; "skiplist" past either limit, for good:
//! a [`SkipList`] ordered index (ranks and ordered walks in O(log n), see
//! its module doc for why a skiplist) beside a [`Dict`] from member to
//! score (O(1) ZSCORE and membership). Like Redis, a listpack stores a
//! score of -0 as 0 (it keeps scores as text and writes -0 as "0").
//!
//! Everything positional is expressed in 0-based ascending ranks, so the
//! command layer has one range logic for both encodings. Depends on
//! `dict`, `skiplist` and the [`Limits`] of `value`; knows nothing of
//! databases or commands. A sorted set is never empty in a database:
//! callers delete the key when the last member goes.

use crate::keyspace::dict::{bounded, rand_next, Dict};
use crate::keyspace::skiplist::{cmp_entry, SkipList};
use crate::keyspace::value::Limits;
use bytes::Bytes;
use std::cmp::Ordering;

#[derive(Debug)]
pub enum ZsetValue {
    /// Sorted by (score, member); no duplicate members.
    Listpack(Vec<(Bytes, f64)>),
    /// Boxed: a `Value` stays as small as a string's.
    Skiplist(Box<Sorted>),
}

/// The "skiplist" encoding: the ordered index and the member → score map
/// always hold the same elements.
#[derive(Debug, Default)]
pub struct Sorted {
    list: SkipList,
    dict: Dict<f64>,
}

impl Clone for ZsetValue {
    /// A deep copy (the snapshot's copy-on-write of one changed key).
    fn clone(&self) -> Self {
        match self {
            ZsetValue::Listpack(v) => ZsetValue::Listpack(v.clone()),
            ZsetValue::Skiplist(z) => {
                let mut dict = Dict::new();
                for (m, s) in z.dict.iter() {
                    dict.insert(m.clone(), *s);
                }
                ZsetValue::Skiplist(Box::new(Sorted {
                    list: z.list.clone(),
                    dict,
                }))
            }
        }
    }
}

impl PartialEq for ZsetValue {
    /// Same members with the same scores, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for ZsetValue {}

/// A listpack keeps scores as text; -0 is written "0".
fn packed(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// The text a "listpack" sorted set holds for `score`, which ZSCAN returns
/// as it is: Redis stores a whole score within ±LLONG_MAX/2 as an integer
/// (its double2ll), anything else as `%.17g` text; so 1e18 reads
/// "1000000000000000000" there, where a "skiplist" one prints "1e+18".
pub fn listpack_score_text(score: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&score) && score.fract() == 0.0 {
        return (score as i64).to_string();
    }
    crate::util::digest::format_score(score)
}

impl ZsetValue {
    /// An empty "listpack" sorted set.
    pub fn new() -> Self {
        ZsetValue::Listpack(Vec::new())
    }

    /// An empty set in the encoding Redis picks for `size_hint` members
    /// (ZRANGESTORE's result, a loaded value): "skiplist" above the entry
    /// limit.
    pub fn with_hint(size_hint: usize, lim: &Limits) -> Self {
        if size_hint > lim.zset_max_listpack_entries {
            ZsetValue::Skiplist(Box::default())
        } else {
            ZsetValue::new()
        }
    }

    /// A sorted set of distinct members, encoded as Redis encodes a whole
    /// result or a loaded value: "listpack" if it fits both limits.
    pub fn from_pairs(pairs: Vec<(Bytes, f64)>, lim: &Limits) -> Self {
        let mut z = ZsetValue::with_hint(pairs.len(), lim);
        if pairs
            .iter()
            .any(|(m, _)| m.len() > lim.zset_max_listpack_value)
        {
            z = ZsetValue::Skiplist(Box::default());
        }
        for (m, s) in pairs {
            z.insert(&m, s, lim);
        }
        z
    }

    pub fn len(&self) -> usize {
        match self {
            ZsetValue::Listpack(v) => v.len(),
            ZsetValue::Skiplist(z) => z.list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The OBJECT ENCODING name.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            ZsetValue::Listpack(_) => "listpack",
            ZsetValue::Skiplist(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZsetValue::Listpack(v) => v.iter().find(|(m, _)| m == member).map(|(_, s)| *s),
            ZsetValue::Skiplist(z) => z.dict.get(member).copied(),
        }
    }

    /// Sets `member`'s score (adding it if new); returns the old score.
    /// Converts to "skiplist" when a new member is too long or one too
    /// many. The caller refuses NaN.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: &Limits) -> Option<f64> {
        if let ZsetValue::Listpack(v) = self {
            let at = v.iter().position(|(m, _)| m == member);
            match at {
                Some(i) => {
                    let (m, old) = v.remove(i);
                    let score = packed(score);
                    let to = v.partition_point(|(pm, ps)| {
                        cmp_entry(*ps, pm, score, &m) == Ordering::Less
                    });
                    v.insert(to, (m, score));
                    return Some(old);
                }
                None => {
                    if v.len() < lim.zset_max_listpack_entries
                        && member.len() <= lim.zset_max_listpack_value
                    {
                        let score = packed(score);
                        let to = v.partition_point(|(pm, ps)| {
                            cmp_entry(*ps, pm, score, member) == Ordering::Less
                        });
                        v.insert(to, (Bytes::copy_from_slice(member), score));
                        return None;
                    }
                    self.convert();
                }
            }
        }
        match self {
            ZsetValue::Skiplist(z) => match z.dict.get_mut(member) {
                Some(s) => {
                    let old = *s;
                    *s = score;
                    let (key, _) = z.dict.get_key_value(member).expect("just found");
                    let key = key.clone();
                    z.list.remove(old, member);
                    z.list.insert(score, key);
                    Some(old)
                }
                None => {
                    let key = Bytes::copy_from_slice(member);
                    z.dict.insert(key.clone(), score);
                    z.list.insert(score, key);
                    None
                }
            },
            // Converted above.
            ZsetValue::Listpack(_) => None,
        }
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZsetValue::Listpack(v) => {
                let i = v.iter().position(|(m, _)| m == member)?;
                let (_, s) = v.remove(i);
                if v.capacity() > 16 && v.capacity() / 4 > v.len() {
                    v.shrink_to_fit();
                }
                Some(s)
            }
            ZsetValue::Skiplist(z) => {
                let (_, s) = z.dict.remove(member)?;
                z.list.remove(s, member);
                Some(s)
            }
        }
    }

    /// "listpack" → "skiplist" (never back).
    fn convert(&mut self) {
        if let ZsetValue::Listpack(v) = self {
            let mut z = Sorted::default();
            for (m, s) in v.drain(..) {
                z.dict.insert(m.clone(), s);
                z.list.insert(s, m);
            }
            *self = ZsetValue::Skiplist(Box::new(z));
        }
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZsetValue::Listpack(v) => v.iter().position(|(m, _)| m == member),
            ZsetValue::Skiplist(z) => {
                let s = *z.dict.get(member)?;
                z.list.rank(s, member)
            }
        }
    }

    /// The element at 0-based ascending `rank`.
    pub fn get(&self, rank: usize) -> Option<(&Bytes, f64)> {
        match self {
            ZsetValue::Listpack(v) => v.get(rank).map(|(m, s)| (m, *s)),
            ZsetValue::Skiplist(z) => z.list.get(rank),
        }
    }

    /// Elements from ascending rank `rank` on, towards the end (or towards
    /// rank 0 with `rev`).
    pub fn iter_from(
        &self,
        rank: usize,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&Bytes, f64)> + '_> {
        match self {
            ZsetValue::Listpack(v) => {
                if rank >= v.len() {
                    return Box::new(std::iter::empty());
                }
                let it = v.iter().map(|(m, s)| (m, *s));
                if rev {
                    Box::new(v[..=rank].iter().rev().map(|(m, s)| (m, *s)))
                } else {
                    Box::new(it.skip(rank))
                }
            }
            ZsetValue::Skiplist(z) => Box::new(z.list.iter_from(rank, rev)),
        }
    }

    /// Every element in (score, member) order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&Bytes, f64)> + '_> {
        match self {
            ZsetValue::Listpack(v) => Box::new(v.iter().map(|(m, s)| (m, *s))),
            ZsetValue::Skiplist(z) => Box::new(z.list.iter()),
        }
    }

    /// The ranks `[lo, hi)` of the run of elements that start satisfying
    /// `in_min` and keep satisfying `in_max`, as Redis finds a score or lex
    /// range: the first element from the start passing `in_min`, then
    /// while `in_max` holds. (For lex ranges over unequal scores Redis's
    /// answer depends on its structure; a listpack is walked the same way
    /// here, a skiplist assumes the predicates are monotone.) Like Redis,
    /// nothing matches unless the last element passes `in_min` and the
    /// first `in_max`.
    pub fn range_by(
        &self,
        in_min: impl Fn(f64, &[u8]) -> bool,
        in_max: impl Fn(f64, &[u8]) -> bool,
    ) -> (usize, usize) {
        // Redis's zslIsInRange/zslIsInLexRange early-out: the last element
        // must pass the minimum and the first the maximum.
        let in_range = match (self.get(0), self.get(self.len().wrapping_sub(1))) {
            (Some((fm, fs)), Some((lm, ls))) => in_min(ls, lm) && in_max(fs, fm),
            _ => false,
        };
        if !in_range {
            return (0, 0);
        }
        match self {
            ZsetValue::Listpack(v) => {
                let Some(lo) = v.iter().position(|(m, s)| in_min(*s, m)) else {
                    return (0, 0);
                };
                let n = v[lo..].iter().take_while(|(m, s)| in_max(*s, m)).count();
                (lo, lo + n)
            }
            ZsetValue::Skiplist(z) => {
                let lo = z.list.count_while(|s, m| !in_min(s, m));
                let hi = z.list.count_while(in_max);
                (lo, hi.max(lo))
            }
        }
    }

    /// Removes the elements of ascending ranks `[lo, hi)`; returns them.
    pub fn remove_range(&mut self, lo: usize, hi: usize) -> Vec<(Bytes, f64)> {
        let hi = hi.min(self.len());
        if lo >= hi {
            return Vec::new();
        }
        match self {
            ZsetValue::Listpack(v) => {
                let out: Vec<(Bytes, f64)> = v.drain(lo..hi).collect();
                if v.capacity() > 16 && v.capacity() / 4 > v.len() {
                    v.shrink_to_fit();
                }
                out
            }
            ZsetValue::Skiplist(z) => {
                let doomed: Vec<(Bytes, f64)> = z
                    .list
                    .iter_from(lo, false)
                    .take(hi - lo)
                    .map(|(m, s)| (m.clone(), s))
                    .collect();
                for (m, s) in &doomed {
                    z.list.remove(*s, m);
                    z.dict.remove(m);
                }
                doomed
            }
        }
    }

    /// One random element (`None` only when empty).
    pub fn random(&self, rng: &mut u64) -> Option<(&Bytes, f64)> {
        match self {
            ZsetValue::Listpack(v) => {
                if v.is_empty() {
                    return None;
                }
                v.get(bounded(rand_next(rng), v.len()))
                    .map(|(m, s)| (m, *s))
            }
            ZsetValue::Skiplist(z) => z.dict.random_entry(rng).map(|(m, s)| (m, *s)),
        }
    }

    /// One ZSCAN step, as [`crate::keyspace::HashValue::scan`]: a
    /// "listpack" set whole with cursor 0, a "skiplist" one by the dict's
    /// cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&Bytes, f64)) -> u64 {
        match self {
            ZsetValue::Listpack(v) => {
                v.iter().for_each(|(m, s)| f(m, *s));
                0
            }
            ZsetValue::Skiplist(z) => {
                let mut cursor = cursor;
                let mut seen = 0;
                let mut visits = 0;
                loop {
                    cursor = z.dict.scan(cursor, |m, s| {
                        seen += 1;
                        f(m, *s)
                    });
                    visits += 1;
                    if cursor == 0 || seen >= count || visits >= count.saturating_mul(10) {
                        return cursor;
                    }
                }
            }
        }
    }

    /// Bytes of members plus the structures' heap, roughly.
    pub fn payload_bytes(&self) -> usize {
        match self {
            ZsetValue::Listpack(v) => {
                v.capacity() * std::mem::size_of::<(Bytes, f64)>()
                    + v.iter().map(|(m, _)| m.len()).sum::<usize>()
            }
            ZsetValue::Skiplist(z) => {
                z.dict.allocated_bytes()
                    + z.list.allocated_bytes()
                    + z.dict.keys().map(|m| m.len()).sum::<usize>()
            }
        }
    }
}

impl Default for ZsetValue {
    fn default() -> Self {
        ZsetValue::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_scores_read_as_redis_stores_them() {
        assert_eq!(listpack_score_text(1e18), "1000000000000000000");
        assert_eq!(
            listpack_score_text(123456789012345678.0),
            "123456789012345680"
        );
        assert_eq!(listpack_score_text(-0.0), "0");
        assert_eq!(listpack_score_text(1.5), "1.5");
        assert_eq!(listpack_score_text(5e18), "5e+18");
        assert_eq!(listpack_score_text(f64::INFINITY), "inf");
    }

    fn lim(entries: usize, value: usize) -> Limits {
        Limits {
            zset_max_listpack_entries: entries,
            zset_max_listpack_value: value,
            ..Limits::default()
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn converts_on_count_and_length_never_back() {
        let l = lim(3, 4);
        let mut z = ZsetValue::new();
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(z.insert(m.as_bytes(), i as f64, &l), None);
        }
        assert_eq!(z.encoding_name(), "listpack");
        assert_eq!(z.insert(b"a", 5.0, &l), Some(0.0));
        assert_eq!(z.encoding_name(), "listpack");
        assert_eq!(z.insert(b"d", 1.5, &l), None);
        assert_eq!(z.encoding_name(), "skiplist");
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m.as_ref()).collect();
        assert_eq!(order, vec![&b"b"[..], b"d", b"c", b"a"]);
        for m in ["a", "b", "c", "d"] {
            assert!(z.remove(m.as_bytes()).is_some());
        }
        assert!(z.is_empty());
        assert_eq!(z.encoding_name(), "skiplist");
        let mut z = ZsetValue::new();
        z.insert(b"abcde", 1.0, &l);
        assert_eq!(z.encoding_name(), "skiplist");
        let z = ZsetValue::from_pairs(vec![(b("x"), 1.0)], &lim(0, 64));
        assert_eq!(z.encoding_name(), "skiplist");
    }

    #[test]
    fn negative_zero_is_zero_in_a_listpack_only() {
        let mut small = ZsetValue::new();
        small.insert(b"a", -0.0, &Limits::default());
        assert!(small.score(b"a").expect("there").is_sign_positive());
        let mut big = ZsetValue::with_hint(1000, &Limits::default());
        big.insert(b"a", -0.0, &Limits::default());
        assert!(big.score(b"a").expect("there").is_sign_negative());
    }

    /// Both encodings against a simple model: every operation, ranks and
    /// ranges.
    #[test]
    fn randomized_both_encodings_agree_with_a_model() {
        for limit in [1000, 8] {
            let l = lim(limit, 64);
            let mut z = ZsetValue::new();
            let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
            let mut rng = 7u64;
            for step in 0..6000 {
                let r = rand_next(&mut rng);
                let m = format!("k{}", r % 40).into_bytes();
                let s = ((r >> 16) % 9) as f64 - 4.0;
                match r % 5 {
                    0..=2 => {
                        let old = model
                            .iter()
                            .position(|(mm, _)| *mm == m)
                            .map(|i| model.remove(i).1);
                        assert_eq!(z.insert(&m, s, &l), old);
                        model.push((m, s));
                    }
                    3 => {
                        let old = model
                            .iter()
                            .position(|(mm, _)| *mm == m)
                            .map(|i| model.remove(i).1);
                        assert_eq!(z.remove(&m), old);
                    }
                    _ => {
                        let (lo, hi) = z.range_by(|sc, _| sc >= -1.0, |sc, _| sc < 2.0);
                        let removed = z.remove_range(lo, hi);
                        assert!(removed.iter().all(|(_, sc)| (-1.0..2.0).contains(sc)));
                        model.retain(|(_, sc)| !(-1.0..2.0).contains(sc));
                    }
                }
                model.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
                assert_eq!(z.len(), model.len(), "step {step}");
                if step % 97 == 0 {
                    let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
                    assert_eq!(got, model);
                    for (i, (m, s)) in model.iter().enumerate() {
                        assert_eq!(z.rank(m), Some(i));
                        assert_eq!(z.score(m), Some(*s));
                        assert_eq!(z.get(i).map(|(gm, _)| gm.to_vec()), Some(m.clone()));
                    }
                    if !model.is_empty() {
                        let last = model.len() - 1;
                        let rev: Vec<f64> = z.iter_from(last, true).map(|(_, s)| s).collect();
                        assert_eq!(rev.len(), model.len());
                    }
                }
            }
            if limit == 8 {
                assert_eq!(z.encoding_name(), "skiplist");
            }
            let copy = z.clone();
            assert_eq!(copy, z);
            let mut rng = 3;
            if let Some((m, s)) = z.random(&mut rng) {
                assert_eq!(z.score(m), Some(s));
            }
            let mut seen = 0;
            let mut c = 0;
            loop {
                c = z.scan(c, 5, |_, _| seen += 1);
                if c == 0 {
                    break;
                }
            }
            assert_eq!(seen, z.len());
        }
    }
}
