//! `SetValue`: the set type and its two encodings, as Redis 7.0 has them.
//!
//! "intset" (a sorted `Vec<i64>`: 8 bytes a member, binary search) while
//! every member is an integer in Redis's strict sense (`string2ll`: what
//! [`parse_i64_strict`] accepts) and there are at most
//! `set-max-intset-entries` of them; "hashtable" (a [`Dict`] of members)
//! otherwise, for good. Redis 7.0 has no listpack sets (7.2 added them; we
//! load those from files into these two).
//!
//! Depends on `dict` and the [`Limits`] of `value`; knows nothing of
//! databases or commands. A set is never empty in a database: callers
//! delete the key when the last member goes.

use crate::keyspace::dict::{bounded, rand_next, Dict};
use crate::keyspace::value::Limits;
use crate::util::num::parse_i64_strict;
use bytes::Bytes;

#[derive(Debug)]
pub enum SetValue {
    /// Sorted ascending, no duplicates.
    Intset(Vec<i64>),
    /// Boxed: a `Value` stays as small as a string's (the main table
    /// stores values inline).
    Table(Box<Dict<()>>),
}

/// One member as stored: an intset integer or a table's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a Bytes),
}

impl Member<'_> {
    /// The member as a client sees it (integers in decimal).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Member::Int(i) => Bytes::from(i.to_string()),
            Member::Bytes(b) => (*b).clone(),
        }
    }
}

impl Clone for SetValue {
    /// A deep copy (the snapshot's copy-on-write of one changed key).
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(v) => SetValue::Intset(v.clone()),
            SetValue::Table(d) => {
                let mut copy = Dict::new();
                for (m, _) in d.iter() {
                    copy.insert(m.clone(), ());
                }
                SetValue::Table(Box::new(copy))
            }
        }
    }
}

impl PartialEq for SetValue {
    /// Same members, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().all(|m| match m {
                Member::Int(i) => other.contains(i.to_string().as_bytes()),
                Member::Bytes(b) => other.contains(b),
            })
    }
}

impl Eq for SetValue {}

impl SetValue {
    /// An empty set in the encoding Redis's setTypeCreate picks for a
    /// first member: "intset" if it is an integer, else "hashtable".
    pub fn new_for(first: &[u8]) -> Self {
        if parse_i64_strict(first).is_some() {
            SetValue::Intset(Vec::new())
        } else {
            SetValue::Table(Box::default())
        }
    }

    /// An empty "intset", where SINTERSTORE and friends start their result.
    pub fn new_intset() -> Self {
        SetValue::Intset(Vec::new())
    }

    /// A set of `members` (duplicates collapse), encoded as after SADDs of
    /// them into an empty intset; a set loaded from a file gets the same
    /// choice.
    pub fn from_members<'a>(
        members: impl IntoIterator<Item = &'a [u8]>,
        count_hint: usize,
        lim: &Limits,
    ) -> Self {
        let mut s = if count_hint > lim.set_max_intset_entries {
            SetValue::Table(Box::default())
        } else {
            SetValue::new_intset()
        };
        for m in members {
            s.add(m, lim);
        }
        s
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The OBJECT ENCODING name.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => {
                parse_i64_strict(member).is_some_and(|i| v.binary_search(&i).is_ok())
            }
            SetValue::Table(d) => d.contains_key(member),
        }
    }

    /// SADD of one member; true if it is new. An intset becomes a table
    /// for a non-integer member or when it grows past the limit.
    pub fn add(&mut self, member: &[u8], lim: &Limits) -> bool {
        if let SetValue::Intset(v) = self {
            if let Some(i) = parse_i64_strict(member) {
                let Err(at) = v.binary_search(&i) else {
                    return false;
                };
                v.insert(at, i);
                if v.len() > lim.set_max_intset_entries {
                    self.convert();
                }
                return true;
            }
            self.convert();
        }
        match self {
            SetValue::Table(d) => {
                if d.contains_key(member) {
                    return false;
                }
                d.insert(Bytes::copy_from_slice(member), ());
                true
            }
            // Converted above.
            SetValue::Intset(_) => false,
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => match parse_i64_strict(member) {
                Some(i) => match v.binary_search(&i) {
                    Ok(at) => {
                        v.remove(at);
                        if v.capacity() > 16 && v.capacity() / 4 > v.len() {
                            v.shrink_to_fit();
                        }
                        true
                    }
                    Err(_) => false,
                },
                None => false,
            },
            SetValue::Table(d) => d.remove(member).is_some(),
        }
    }

    fn convert(&mut self) {
        if let SetValue::Intset(v) = self {
            let mut d = Dict::new();
            for i in v.iter() {
                d.insert(Bytes::from(i.to_string()), ());
            }
            *self = SetValue::Table(Box::new(d));
        }
    }

    /// Every member: ascending for an intset, unspecified for a table.
    pub fn iter(&self) -> SetIter<'_> {
        match self {
            SetValue::Intset(v) => SetIter::Ints(v.iter()),
            SetValue::Table(d) => SetIter::Table(Box::new(d.keys())),
        }
    }

    /// One random member (`None` only when empty).
    pub fn random(&self, rng: &mut u64) -> Option<Member<'_>> {
        match self {
            SetValue::Intset(v) => {
                if v.is_empty() {
                    return None;
                }
                Some(Member::Int(v[bounded(rand_next(rng), v.len())]))
            }
            SetValue::Table(d) => d.random_entry(rng).map(|(m, _)| Member::Bytes(m)),
        }
    }

    /// Removes and returns one random member (SPOP).
    pub fn pop_random(&mut self, rng: &mut u64) -> Option<Bytes> {
        let m = self.random(rng)?.to_bytes();
        self.remove(&m);
        Some(m)
    }

    /// One SSCAN step, as [`crate::keyspace::HashValue::scan`]: an intset
    /// whole with cursor 0, a table by the dict's cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'_>)) -> u64 {
        match self {
            SetValue::Intset(v) => {
                v.iter().for_each(|i| f(Member::Int(*i)));
                0
            }
            SetValue::Table(d) => {
                let mut cursor = cursor;
                let mut seen = 0;
                let mut visits = 0;
                loop {
                    cursor = d.scan(cursor, |m, _| {
                        seen += 1;
                        f(Member::Bytes(m))
                    });
                    visits += 1;
                    if cursor == 0 || seen >= count || visits >= count.saturating_mul(10) {
                        return cursor;
                    }
                }
            }
        }
    }

    /// Bytes of members plus the structure's heap, roughly.
    pub fn payload_bytes(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.capacity() * 8,
            SetValue::Table(d) => d.allocated_bytes() + d.keys().map(|m| m.len()).sum::<usize>(),
        }
    }
}

/// Iterator over a set's members.
pub enum SetIter<'a> {
    Ints(std::slice::Iter<'a, i64>),
    Table(Box<dyn Iterator<Item = &'a Bytes> + 'a>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Ints(it) => it.next().map(|i| Member::Int(*i)),
            SetIter::Table(it) => it.next().map(Member::Bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(n: usize) -> Limits {
        Limits {
            set_max_intset_entries: n,
            ..Limits::default()
        }
    }

    #[test]
    fn intset_until_a_string_or_too_many() {
        let l = lim(4);
        let mut s = SetValue::new_for(b"3");
        assert_eq!(s.encoding_name(), "intset");
        for m in ["3", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert!(s.add(m.as_bytes(), &l));
        }
        assert!(!s.add(b"3", &l));
        assert_eq!(s.encoding_name(), "intset");
        let order: Vec<Bytes> = s.iter().map(|m| m.to_bytes()).collect();
        assert_eq!(
            order,
            ["-9223372036854775808", "-1", "3", "9223372036854775807"]
                .map(|x| Bytes::from(x.to_string()))
        );
        // "-0", "01", "+1" are not integers for an intset.
        assert!(!s.contains(b"03"));
        assert!(s.add(b"5", &l));
        assert_eq!(s.encoding_name(), "hashtable");
        assert!(s.contains(b"5") && s.contains(b"-1"));
        let mut s = SetValue::new_for(b"1");
        s.add(b"1", &l);
        s.add(b"01", &l);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(s.len(), 2);
        assert_eq!(SetValue::new_for(b"a").encoding_name(), "hashtable");
        assert_eq!(SetValue::new_for(b"-0").encoding_name(), "hashtable");
    }

    #[test]
    fn remove_pop_random_scan_equality() {
        let l = lim(512);
        let ints = SetValue::from_members(["1", "2", "3", "2"].iter().map(|s| s.as_bytes()), 4, &l);
        assert_eq!(ints.len(), 3);
        let table =
            SetValue::from_members(["3", "1", "2"].iter().map(|s| s.as_bytes()), 3, &lim(1));
        assert_eq!(table.encoding_name(), "hashtable");
        assert_eq!(ints, table);
        assert_eq!(table.clone(), ints);
        let mut s = ints.clone();
        assert!(s.remove(b"2") && !s.remove(b"2") && !s.remove(b"x"));
        let mut rng = 1;
        let mut popped = vec![
            s.pop_random(&mut rng).expect("one"),
            s.pop_random(&mut rng).expect("two"),
        ];
        popped.sort();
        assert_eq!(popped, vec![Bytes::from("1"), Bytes::from("3")]);
        assert!(s.is_empty() && s.pop_random(&mut rng).is_none());
        let mut n = 0;
        assert_eq!(ints.scan(0, 1, |_| n += 1), 0);
        assert_eq!(n, 3);
        let mut seen = 0;
        let mut c = 0;
        loop {
            c = table.scan(c, 1, |_| seen += 1);
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen, 3);
    }
}
