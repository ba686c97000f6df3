//! `HashValue`: the hash type and its two encodings, as Redis 7.0 has them.
//!
//! "listpack" ([`PairList`], fields in insertion order, linear lookups)
//! while the hash has at most `hash-max-listpack-entries` fields and every
//! field and value written through HSET-like paths is at most
//! `hash-max-listpack-value` bytes; past either limit it becomes
//! "hashtable" (a [`Dict`]) for good: like Redis, it never converts back.
//!
//! Depends on `dict`, `listpack` and the [`Limits`] of `value`; knows
//! nothing of databases or commands. A hash is never empty in a database:
//! callers delete the key when the last field goes.

use crate::keyspace::dict::{bounded, rand_next, Dict};
use crate::keyspace::listpack::{PairIter, PairList};
use crate::keyspace::value::Limits;
use bytes::Bytes;

#[derive(Debug)]
pub enum HashValue {
    Listpack(PairList),
    /// Boxed: a `Value` stays as small as a string's (the main table
    /// stores values inline).
    Table(Box<Dict<Bytes>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::new()
    }
}

impl Clone for HashValue {
    /// A deep copy (the snapshot's copy-on-write of one changed key).
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(p) => HashValue::Listpack(p.clone()),
            HashValue::Table(d) => {
                let mut copy = Dict::new();
                for (f, v) in d.iter() {
                    copy.insert(f.clone(), v.clone());
                }
                HashValue::Table(Box::new(copy))
            }
        }
    }
}

impl PartialEq for HashValue {
    /// Same fields with the same values, whatever the encoding or order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Eq for HashValue {}

impl HashValue {
    /// An empty hash ("listpack", as Redis creates them).
    pub fn new() -> Self {
        HashValue::Listpack(PairList::new())
    }

    /// A hash holding `pairs` (later duplicates replace earlier ones),
    /// encoded as it would be after HSETs of the same pairs; a hash loaded
    /// from a file gets the same choice.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        count_hint: usize,
        lim: &Limits,
    ) -> Self {
        let mut h = if count_hint > lim.hash_max_listpack_entries {
            HashValue::Table(Box::default())
        } else {
            HashValue::new()
        };
        for (f, v) in pairs {
            h.set(f, v, lim);
        }
        h
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(p) => p.len(),
            HashValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The OBJECT ENCODING name.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(p) => p.get(field),
            HashValue::Table(d) => d.get(field).map(|v| v.as_ref()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(p) => p.contains(field),
            HashValue::Table(d) => d.contains_key(field),
        }
    }

    /// Sets one pair (HSET and every other write); true if the field is
    /// new. Converts to "hashtable" when the field or value is longer than
    /// the listpack value limit, or the hash grows past the entry limit.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if matches!(self, HashValue::Listpack(_))
            && (field.len() > lim.hash_max_listpack_value
                || value.len() > lim.hash_max_listpack_value)
        {
            self.convert();
        }
        let added = match self {
            HashValue::Listpack(p) => p.set(field, value),
            HashValue::Table(d) => match d.get_mut(field) {
                Some(v) => {
                    *v = Bytes::copy_from_slice(value);
                    false
                }
                None => {
                    d.insert(Bytes::copy_from_slice(field), Bytes::copy_from_slice(value));
                    true
                }
            },
        };
        if let HashValue::Listpack(p) = self {
            if p.len() > lim.hash_max_listpack_entries {
                self.convert();
            }
        }
        added
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(p) => p.remove(field),
            HashValue::Table(d) => d.remove(field).is_some(),
        }
    }

    /// "listpack" → "hashtable" (never back).
    fn convert(&mut self) {
        if let HashValue::Listpack(p) = self {
            let mut d = Dict::new();
            for (f, v) in p.iter() {
                d.insert(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
            }
            *self = HashValue::Table(Box::new(d));
        }
    }

    /// Every pair: insertion order for "listpack", unspecified otherwise.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            HashValue::Listpack(p) => HashIter::Packed(p.iter()),
            HashValue::Table(d) => HashIter::Table(Box::new(d.iter())),
        }
    }

    /// One random pair (`None` only when empty).
    pub fn random_pair(&self, rng: &mut u64) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Listpack(p) => {
                if p.is_empty() {
                    return None;
                }
                p.nth(bounded(rand_next(rng), p.len()))
            }
            HashValue::Table(d) => d.random_entry(rng).map(|(f, v)| (f.as_ref(), v.as_ref())),
        }
    }

    /// One HSCAN step: a "listpack" hash is returned whole with cursor 0
    /// (as Redis does for compact encodings); a table is scanned with the
    /// dict's cursor, visiting buckets until `count` pairs were seen (at
    /// most `10 * count` buckets). Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            HashValue::Listpack(p) => {
                p.iter().for_each(|(k, v)| f(k, v));
                0
            }
            HashValue::Table(d) => {
                let mut cursor = cursor;
                let mut seen = 0;
                let mut visits = 0;
                loop {
                    cursor = d.scan(cursor, |k, v| {
                        seen += 1;
                        f(k, v)
                    });
                    visits += 1;
                    if cursor == 0 || seen >= count || visits >= count.saturating_mul(10) {
                        return cursor;
                    }
                }
            }
        }
    }

    /// Bytes of fields and values plus the structure's own heap, roughly
    /// (MEMORY USAGE, snapshot accounting).
    pub fn payload_bytes(&self) -> usize {
        match self {
            HashValue::Listpack(p) => p.allocated_bytes(),
            HashValue::Table(d) => {
                d.allocated_bytes() + d.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>()
            }
        }
    }
}

/// Iterator over a hash's pairs.
pub enum HashIter<'a> {
    Packed(PairIter<'a>),
    Table(Box<dyn Iterator<Item = (&'a Bytes, &'a Bytes)> + 'a>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Packed(it) => it.next(),
            HashIter::Table(it) => it.next().map(|(f, v)| (f.as_ref(), v.as_ref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(entries: usize, value: usize) -> Limits {
        Limits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..Limits::default()
        }
    }

    #[test]
    fn converts_on_entry_count() {
        let l = lim(3, 64);
        let mut h = HashValue::new();
        for i in 0..3 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", &l));
        }
        assert_eq!(h.encoding_name(), "listpack");
        assert!(!h.set(b"f0", b"w", &l));
        assert_eq!(h.encoding_name(), "listpack");
        assert!(h.set(b"f3", b"v", &l));
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(b"f0"), Some(&b"w"[..]));
        // Never converts back.
        for i in 0..4 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert!(h.is_empty());
        assert_eq!(h.encoding_name(), "hashtable");
    }

    #[test]
    fn converts_on_length() {
        let l = lim(128, 4);
        let mut h = HashValue::new();
        assert!(h.set(b"abcd", b"1234", &l));
        assert_eq!(h.encoding_name(), "listpack");
        assert!(!h.set(b"abcd", b"12345", &l));
        assert_eq!(h.encoding_name(), "hashtable");
        let mut h = HashValue::new();
        h.set(b"abcde", b"", &l);
        assert_eq!(h.encoding_name(), "hashtable");
        // Zero entries allowed: the first field converts.
        let mut h = HashValue::new();
        h.set(b"a", b"b", &lim(0, 64));
        assert_eq!(h.encoding_name(), "hashtable");
    }

    #[test]
    fn equality_clone_random_and_scan() {
        let l = lim(2, 64);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
            .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect();
        let big =
            HashValue::from_pairs(pairs.iter().map(|(f, v)| (&f[..], &v[..])), pairs.len(), &l);
        let small = HashValue::from_pairs(
            pairs.iter().map(|(f, v)| (&f[..], &v[..])),
            0,
            &lim(100, 64),
        );
        assert_eq!(big.encoding_name(), "hashtable");
        assert_eq!(small.encoding_name(), "listpack");
        assert_eq!(big, small);
        assert_eq!(big.clone(), big);
        let mut rng = 7;
        for _ in 0..50 {
            let (f, v) = big.random_pair(&mut rng).expect("non-empty");
            assert_eq!(big.get(f), Some(v));
            let (f, v) = small.random_pair(&mut rng).expect("non-empty");
            assert_eq!(small.get(f), Some(v));
        }
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = big.scan(c, 3, |f, _| {
                seen.insert(f.to_vec());
            });
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 10);
        let mut n = 0;
        assert_eq!(small.scan(0, 1, |_, _| n += 1), 0);
        assert_eq!(n, 10);
        assert!(HashValue::new().random_pair(&mut rng).is_none());
    }
}
