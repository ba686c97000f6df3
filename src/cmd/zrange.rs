//! Sorted set ranges as Redis 7.0 reads and walks them: score bounds
//! (`(1.5`, `-inf`, `+inf`), lex bounds (`[a`, `(a`, `-`, `+`), and the
//! ZRANGE family's arguments (BYSCORE BYLEX REV LIMIT WITHSCORES), with
//! their errors in Redis's order. [`select`] turns a parsed range into the
//! elements it covers, for ZRANGE, ZRANGESTORE and the legacy
//! ZRANGEBYSCORE/ZREVRANGE... forms. Pure functions over `ZsetValue`; used
//! by `zset` and `zsetops`.

use super::args::{int_arg, is};
use super::error::CmdError;
use crate::keyspace::ZsetValue;
use crate::resp::Reply;
use crate::util::strtod::range_float;
use bytes::Bytes;

/// A score interval; `*_ex` marks an exclusive (`(`) end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_ex: bool,
    pub max_ex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, s: f64) -> bool {
        if self.min_ex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    pub fn lte_max(&self, s: f64) -> bool {
        if self.max_ex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.first() {
        Some(b'(') => range_float(&arg[1..]).map(|v| (v, true)),
        _ => range_float(arg).map(|v| (v, false)),
    }
}

/// Redis's zslParseRange: "ERR min or max is not a float".
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let err = || CmdError::other("ERR min or max is not a float");
    let (min, min_ex) = score_bound(min).ok_or_else(err)?;
    let (max, max_ex) = score_bound(max).ok_or_else(err)?;
    Ok(ScoreRange {
        min,
        max,
        min_ex,
        max_ex,
    })
}

/// One end of a lex range.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[m` (inclusive) or `(m` (exclusive).
    Member(Bytes, bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Member(b, ex) => {
                if *ex {
                    m > b.as_ref()
                } else {
                    m >= b.as_ref()
                }
            }
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Member(b, ex) => {
                if *ex {
                    m < b.as_ref()
                } else {
                    m <= b.as_ref()
                }
            }
        }
    }
}

fn lex_bound(arg: &[u8]) -> Option<LexBound> {
    // A C string: "+" followed by a NUL byte is still "+".
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some(LexBound::Max),
        Some(b'-') if alone => Some(LexBound::Min),
        Some(b'(') => Some(LexBound::Member(Bytes::copy_from_slice(&arg[1..]), true)),
        Some(b'[') => Some(LexBound::Member(Bytes::copy_from_slice(&arg[1..]), false)),
        _ => None,
    }
}

/// Redis's zslParseLexRange: "ERR min or max not valid string range item".
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    let err = || CmdError::other("ERR min or max not valid string range item");
    Ok(LexRange {
        min: lex_bound(min).ok_or_else(err)?,
        max: lex_bound(max).ok_or_else(err)?,
    })
}

/// What a ZRANGE-like command selects.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    /// Indexes, negative from the end, inclusive.
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed ZRANGE-family call.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeQuery {
    pub sel: Selector,
    pub rev: bool,
    /// LIMIT offset (0 without LIMIT).
    pub offset: i64,
    /// LIMIT count; -1 (no LIMIT, or a negative count) takes everything.
    pub limit: i64,
    pub withscores: bool,
}

/// Which form of the command was called: the legacy ones fix the range
/// type and direction, ZRANGE/ZRANGESTORE take them as options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// ZRANGE / ZRANGESTORE.
    Auto,
    /// ZREVRANGE.
    RevRank,
    /// ZRANGEBYSCORE / ZREVRANGEBYSCORE (`rev`).
    ByScore(bool),
    /// ZRANGEBYLEX / ZREVRANGEBYLEX (`rev`).
    ByLex(bool),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parses `key min max [options]` starting at `args[key_at]`, as Redis's
/// zrangeGenericCommand: options first (syntax, LIMIT integers), then the
/// conflicts, then the range itself. `store`: ZRANGESTORE (no WITHSCORES).
pub fn parse(
    args: &[Bytes],
    key_at: usize,
    store: bool,
    form: Form,
) -> Result<RangeQuery, CmdError> {
    let (mut kind, mut rev) = match form {
        Form::Auto => (Kind::Auto, None),
        Form::RevRank => (Kind::Rank, Some(true)),
        Form::ByScore(r) => (Kind::Score, Some(r)),
        Form::ByLex(r) => (Kind::Lex, Some(r)),
    };
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = key_at + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(CmdError::other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::other(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[key_at + 1], &args[key_at + 2]);
    if rev && kind != Kind::Rank {
        // Given as max, min.
        std::mem::swap(&mut lo, &mut hi);
    }
    let sel = match kind {
        Kind::Score => Selector::Score(parse_score_range(lo, hi)?),
        Kind::Lex => Selector::Lex(parse_lex_range(lo, hi)?),
        _ => Selector::Rank(int_arg(lo)?, int_arg(hi)?),
    };
    Ok(RangeQuery {
        sel,
        rev,
        offset,
        limit,
        withscores,
    })
}

/// Normalizes Redis rank arguments against a length: the inclusive
/// `[start, end]` they cover, or `None` when empty.
pub fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

/// The ascending ranks `[lo, hi)` a score range covers.
pub fn score_span(z: &ZsetValue, r: &ScoreRange) -> (usize, usize) {
    z.range_by(|s, _| r.gte_min(s), |s, _| r.lte_max(s))
}

/// The ascending ranks `[lo, hi)` a lex range covers.
pub fn lex_span(z: &ZsetValue, r: &LexRange) -> (usize, usize) {
    z.range_by(|_, m| r.gte_min(m), |_, m| r.lte_max(m))
}

/// The elements `q` selects, in reply order, and the size hint Redis gives
/// a stored result (the count for ranks, 0 for score and lex ranges).
pub fn select(z: &ZsetValue, q: &RangeQuery) -> (Vec<(Bytes, f64)>, usize) {
    let len = z.len();
    let (lo, hi) = match &q.sel {
        Selector::Rank(start, end) => {
            let Some((s, e)) = rank_span(*start, *end, len) else {
                return (Vec::new(), 0);
            };
            let n = e - s + 1;
            let out = if q.rev {
                take(z, len - 1 - s, n, true)
            } else {
                take(z, s, n, false)
            };
            return (out, n);
        }
        Selector::Score(r) => score_span(z, r),
        Selector::Lex(r) => lex_span(z, r),
    };
    // Redis answers at once when the offset is past the whole set; a
    // negative offset walks off the end (C's `while (ln && offset--)`).
    if q.offset < 0 || (q.offset > 0 && q.offset as u64 >= len as u64) || lo >= hi {
        return (Vec::new(), 0);
    }
    let skip = q.offset as usize;
    let count = hi - lo;
    if skip >= count {
        return (Vec::new(), 0);
    }
    let avail = count - skip;
    let n = if q.limit < 0 {
        avail
    } else {
        avail.min(q.limit as usize)
    };
    let out = if q.rev {
        take(z, hi - 1 - skip, n, true)
    } else {
        take(z, lo + skip, n, false)
    };
    (out, 0)
}

fn take(z: &ZsetValue, from: usize, n: usize, rev: bool) -> Vec<(Bytes, f64)> {
    z.iter_from(from, rev)
        .take(n)
        .map(|(m, s)| (m.clone(), s))
        .collect()
}

/// Members, or member/score pairs (nested in RESP3), as ZRANGE replies.
pub fn elements_reply(items: Vec<(Bytes, f64)>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn score_and_lex_bounds() {
        let r = parse_score_range(b"(1.5", b"+inf").expect("valid");
        assert!(r.min_ex && !r.max_ex && r.max == f64::INFINITY);
        assert!(parse_score_range(b"x", b"1").is_err());
        assert!(parse_score_range(b"(nan", b"1").is_err());
        assert_eq!(parse_score_range(b"", b"(").expect("valid").max, 0.0);
        let l = parse_lex_range(b"[a", b"(c").expect("valid");
        assert!(l.gte_min(b"a") && l.lte_max(b"b") && !l.lte_max(b"c"));
        assert!(parse_lex_range(b"a", b"+").is_err());
        assert!(parse_lex_range(b"", b"+").is_err());
        assert!(parse_lex_range(b"-x", b"+").is_err());
        assert_eq!(
            parse_lex_range(b"-", b"+").expect("valid").min,
            LexBound::Min
        );
    }

    #[test]
    fn zrange_options_and_conflicts() {
        let q = parse(
            &args("zrange k (1 5 BYSCORE REV LIMIT 1 2 WITHSCORES"),
            1,
            false,
            Form::Auto,
        )
        .expect("valid");
        assert!(q.rev && q.withscores && q.offset == 1 && q.limit == 2);
        // REV swaps the bounds of score ranges.
        assert_eq!(
            q.sel,
            Selector::Score(ScoreRange {
                min: 5.0,
                max: 1.0,
                min_ex: false,
                max_ex: true
            })
        );
        let e = |s: &str, form| parse(&args(s), 1, false, form).expect_err("invalid").text();
        assert!(e("zrange k 0 1 LIMIT 0 1", Form::Auto).contains("LIMIT is only supported"));
        assert!(e("zrange k - + BYLEX WITHSCORES", Form::Auto).contains("WITHSCORES not supported"));
        assert_eq!(
            e("zrange k 0 1 BYSCORE BYLEX", Form::Auto),
            "ERR syntax error"
        );
        assert_eq!(e("zrevrange k 0 1 REV", Form::RevRank), "ERR syntax error");
        assert_eq!(
            e("zrange k a 1", Form::Auto),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            parse(&args("zrangestore d k 0 1 WITHSCORES"), 2, true, Form::Auto).expect_err("x"),
            CmdError::Syntax
        );
    }

    #[test]
    fn select_ranks_scores_and_limits() {
        let lim = crate::keyspace::Limits::default();
        let z = ZsetValue::from_pairs(
            (0..10)
                .map(|i| (Bytes::from(format!("m{i}")), i as f64))
                .collect(),
            &lim,
        );
        let names = |q: &RangeQuery| -> Vec<String> {
            select(&z, q)
                .0
                .iter()
                .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
                .collect()
        };
        let q = |s: &str, form| parse(&args(s), 1, false, form).expect("valid");
        assert_eq!(names(&q("zrange k -2 -1", Form::Auto)), ["m8", "m9"]);
        assert_eq!(names(&q("zrange k 0 1 REV", Form::Auto)), ["m9", "m8"]);
        assert_eq!(
            names(&q("zrange k 5 100 REV", Form::Auto)),
            ["m4", "m3", "m2", "m1", "m0"]
        );
        assert!(names(&q("zrange k 3 2", Form::Auto)).is_empty());
        assert_eq!(names(&q("zrange k (2 4 BYSCORE", Form::Auto)), ["m3", "m4"]);
        assert_eq!(
            names(&q("zrange k 4 (2 BYSCORE REV", Form::Auto)),
            ["m4", "m3"]
        );
        assert_eq!(
            names(&q("zrange k -inf +inf BYSCORE LIMIT 8 5", Form::Auto)),
            ["m8", "m9"]
        );
        assert!(names(&q("zrange k -inf +inf BYSCORE LIMIT -1 5", Form::Auto)).is_empty());
        assert!(names(&q("zrange k -inf +inf BYSCORE LIMIT 10 5", Form::Auto)).is_empty());
        assert_eq!(
            names(&q("zrange k -inf +inf BYSCORE LIMIT 1 -5", Form::Auto)).len(),
            9
        );
        assert_eq!(
            names(&q("zrange k [m3 (m5 BYLEX", Form::Auto)),
            ["m3", "m4"]
        );
        assert_eq!(
            names(&q("zrange k + [m8 BYLEX REV", Form::Auto)),
            ["m9", "m8"]
        );
    }
}
