//! `PairList`: the compact ("listpack") form of a small hash, a flat byte
//! buffer of field/value pairs in insertion order.
//!
//! Owns the in-memory layout only. It is not Redis's listpack byte format
//! (that one lives in `persist::rdb`, for files); it is one allocation per
//! hash, each string prefixed by its length as a LEB128 varint, so a hash of
//! a few dozen short fields costs a few hundred bytes instead of two `Bytes`
//! handles (and two allocations) per field. Lookups scan linearly, as
//! Redis's listpack does, which is why it is used only below the
//! `hash-max-listpack-*` limits. Depends on std only.

/// Field/value pairs packed as `[len][field][len][value]...`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PairList {
    buf: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for PairList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairList")
            .field("len", &self.len)
            .field("bytes", &self.buf.len())
            .finish()
    }
}

fn put_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint written by `put_varint` at `pos`; the buffer is only
/// ever written by this module, so it is well formed.
fn get_varint(buf: &[u8], pos: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        n |= usize::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

/// Where one pair sits in the buffer.
struct Slot {
    /// First byte of the field's length prefix.
    start: usize,
    /// First byte of the value's length prefix.
    value_prefix: usize,
    value: std::ops::Range<usize>,
}

impl PairList {
    pub fn new() -> Self {
        PairList::default()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes used.
    pub fn allocated_bytes(&self) -> usize {
        self.buf.capacity()
    }

    fn find(&self, field: &[u8]) -> Option<Slot> {
        let mut pos = 0;
        while pos < self.buf.len() {
            let start = pos;
            let flen = get_varint(&self.buf, &mut pos);
            let f = pos..pos + flen;
            pos += flen;
            let value_prefix = pos;
            let vlen = get_varint(&self.buf, &mut pos);
            let value = pos..pos + vlen;
            pos += vlen;
            if self.buf.get(f) == Some(field) {
                return Some(Slot {
                    start,
                    value_prefix,
                    value,
                });
            }
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).and_then(|s| self.buf.get(s.value))
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.find(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new. An update keeps
    /// the field's position, as a listpack does.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(slot) => {
                if slot.value.len() == value.len() {
                    self.buf[slot.value].copy_from_slice(value);
                    return false;
                }
                let mut enc = Vec::with_capacity(value.len() + 5);
                put_varint(value.len(), &mut enc);
                enc.extend_from_slice(value);
                self.buf.splice(slot.value_prefix..slot.value.end, enc);
                false
            }
            None => {
                put_varint(field.len(), &mut self.buf);
                self.buf.extend_from_slice(field);
                put_varint(value.len(), &mut self.buf);
                self.buf.extend_from_slice(value);
                self.len += 1;
                true
            }
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some(slot) => {
                self.buf.drain(slot.start..slot.value.end);
                self.len -= 1;
                if self.buf.capacity() > 64 && self.buf.capacity() / 4 > self.buf.len() {
                    self.buf.shrink_to_fit();
                }
                true
            }
            None => false,
        }
    }

    /// Pairs in insertion order.
    pub fn iter(&self) -> PairIter<'_> {
        PairIter {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// The pair at position `i` (insertion order).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.iter().nth(i)
    }
}

/// Iterator over a [`PairList`]'s pairs.
pub struct PairIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PairIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let flen = get_varint(self.buf, &mut self.pos);
        let f = self.buf.get(self.pos..self.pos + flen)?;
        self.pos += flen;
        let vlen = get_varint(self.buf, &mut self.pos);
        let v = self.buf.get(self.pos..self.pos + vlen)?;
        self.pos += vlen;
        Some((f, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_update_remove() {
        let mut p = PairList::new();
        assert!(p.set(b"a", b"1"));
        assert!(p.set(b"", b""));
        let long = vec![b'x'; 300];
        assert!(p.set(b"b", &long));
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(b"a"), Some(&b"1"[..]));
        assert_eq!(p.get(b""), Some(&b""[..]));
        assert_eq!(p.get(b"b"), Some(&long[..]));
        assert_eq!(p.get(b"c"), None);
        // Updates keep the position, whatever the new length.
        assert!(!p.set(b"a", &long));
        assert!(!p.set(b"b", b"short"));
        let pairs: Vec<_> = p.iter().collect();
        assert_eq!(
            pairs,
            vec![
                (&b"a"[..], &long[..]),
                (&b""[..], &b""[..]),
                (&b"b"[..], &b"short"[..])
            ]
        );
        assert!(p.remove(b""));
        assert!(!p.remove(b""));
        assert_eq!(p.len(), 2);
        assert_eq!(p.nth(1), Some((&b"b"[..], &b"short"[..])));
        assert!(p.remove(b"a") && p.remove(b"b"));
        assert!(p.is_empty());
        assert_eq!(p.iter().count(), 0);
    }

    #[test]
    fn binary_fields() {
        let mut p = PairList::new();
        let f: Vec<u8> = (0..=255u8).collect();
        assert!(p.set(&f, b"\x80\xff"));
        assert_eq!(p.get(&f), Some(&b"\x80\xff"[..]));
        // A field that is a prefix of another is a different field.
        assert!(p.set(&f[..10], b"x"));
        assert_eq!(p.get(&f[..10]), Some(&b"x"[..]));
        assert_eq!(p.len(), 2);
    }
}
