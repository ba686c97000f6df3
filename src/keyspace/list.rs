//! `ListValue`: the list type, a "quicklist" as Redis 7.0 has it: a deque
//! of packed nodes, each one allocation holding many elements.
//!
//! A node is a byte buffer of entries `[len][bytes][backlen]`: `len` a
//! LEB128 varint and `backlen` the same varint with its bytes reversed, so
//! a node can be walked from either end (like Redis's listpack back-length)
//! and an element costs its bytes plus two or four bytes. Nodes are filled
//! up to `list-max-listpack-size` ([`Fill`]: a byte budget for negative
//! values, an element count for positive ones), so pushing and popping at
//! either end is O(1) (a node is at most a few KiB to shift), and index
//! operations walk node counts from the nearer end, then one node.
//!
//! OBJECT ENCODING is always "quicklist", as in Redis 7.0. Depends on std
//! and `bytes` only; knows nothing of databases or commands. A list is
//! never empty in a database: callers delete the key when it empties.

use bytes::Bytes;
use std::collections::VecDeque;

/// `list-max-listpack-size`: a node's limit. Negative: -1..-5 for 4, 8,
/// 16, 32, 64 KiB per node; positive: elements per node (with Redis's 8 KiB
/// safety limit on the node's bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill(pub i64);

impl Default for Fill {
    /// Redis's default, -2 (8 KiB).
    fn default() -> Self {
        Fill(-2)
    }
}

/// Redis's SIZE_SAFETY_LIMIT for count-limited nodes.
const SIZE_SAFETY_LIMIT: usize = 8192;

impl Fill {
    /// Whether a node of `count` entries and `bytes` bytes can take one
    /// more entry of `add` bytes. An empty node takes anything.
    fn fits(self, count: usize, bytes: usize, add: usize) -> bool {
        if count == 0 {
            return true;
        }
        let new = bytes + add;
        if self.0 >= 0 {
            (count as i64) < self.0.max(1) && new <= SIZE_SAFETY_LIMIT
        } else {
            let shift = (-self.0 - 1).clamp(0, 4) as u32;
            new <= 4096usize << shift
        }
    }
}

fn varint_len(n: usize) -> usize {
    let mut len = 1;
    let mut n = n >> 7;
    while n > 0 {
        len += 1;
        n >>= 7;
    }
    len
}

/// Bytes an entry of an element of `n` bytes takes in a node.
fn entry_size(n: usize) -> usize {
    2 * varint_len(n) + n
}

fn put_entry(out: &mut Vec<u8>, elem: &[u8]) {
    let mut v = [0u8; 10];
    let mut k = 0;
    let mut n = elem.len();
    loop {
        let b = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            v[k] = b;
            k += 1;
            break;
        }
        v[k] = b | 0x80;
        k += 1;
    }
    out.extend_from_slice(&v[..k]);
    out.extend_from_slice(elem);
    out.extend(v[..k].iter().rev());
}

/// One node: packed entries and their number.
#[derive(Clone, Default, PartialEq, Eq)]
struct Node {
    buf: Vec<u8>,
    count: usize,
}

impl Node {
    /// The entry starting at `pos`: (data range, end of entry). The buffer
    /// is only written by this module, so it is well formed.
    fn entry_at(&self, pos: usize) -> (std::ops::Range<usize>, usize) {
        let mut n = 0usize;
        let mut shift = 0;
        let mut p = pos;
        while let Some(&b) = self.buf.get(p) {
            p += 1;
            n |= usize::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let vl = p - pos;
        (p..p + n, p + n + vl)
    }

    /// Start of the entry that ends at `end`.
    fn entry_before(&self, end: usize) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        let mut p = end;
        while p > 0 {
            p -= 1;
            let b = self.buf[p];
            n |= usize::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let vl = end - p;
        p - n - vl
    }

    /// Byte offset of entry `i` (< count), walking from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            let mut pos = 0;
            for _ in 0..i {
                pos = self.entry_at(pos).1;
            }
            pos
        } else {
            let mut pos = self.buf.len();
            for _ in i..self.count {
                pos = self.entry_before(pos);
            }
            pos
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        let (r, _) = self.entry_at(self.offset_of(i));
        &self.buf[r]
    }

    fn insert_at(&mut self, pos: usize, elem: &[u8]) {
        let mut e = Vec::with_capacity(entry_size(elem.len()));
        put_entry(&mut e, elem);
        self.buf.splice(pos..pos, e);
        self.count += 1;
    }

    /// Removes the entry at byte offset `pos`, returning its element.
    fn remove_at(&mut self, pos: usize) -> Bytes {
        let (r, end) = self.entry_at(pos);
        let out = Bytes::copy_from_slice(&self.buf[r]);
        self.buf.drain(pos..end);
        self.count -= 1;
        out
    }

    fn shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() / 2 > self.buf.len() {
            self.buf.shrink_to_fit();
        }
    }

    fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            node: self,
            front: 0,
            back: self.buf.len(),
        }
    }
}

/// Entries of one node, from either end.
struct NodeIter<'a> {
    node: &'a Node,
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (r, end) = self.node.entry_at(self.front);
        self.front = end;
        Some(&self.node.buf[r])
    }
}

impl<'a> DoubleEndedIterator for NodeIter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let start = self.node.entry_before(self.back);
        let (r, _) = self.node.entry_at(start);
        self.back = start;
        Some(&self.node.buf[r])
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    /// LEFT / RIGHT, case-insensitively.
    pub fn parse(arg: &[u8]) -> Option<End> {
        if arg.eq_ignore_ascii_case(b"left") {
            Some(End::Left)
        } else if arg.eq_ignore_ascii_case(b"right") {
            Some(End::Right)
        } else {
            None
        }
    }

    /// "left" / "right", as Redis writes them in rewritten commands.
    pub fn name(self) -> &'static str {
        match self {
            End::Left => "left",
            End::Right => "right",
        }
    }
}

/// A list. Boxed in [`crate::keyspace::Value`] so a value stays as small
/// as a string's.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ListValue {
    nodes: VecDeque<Node>,
    len: usize,
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListValue")
            .field("len", &self.len)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl ListValue {
    pub fn new() -> Self {
        ListValue::default()
    }

    /// A list of `items` in order (loading, tests).
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]>, fill: Fill) -> Self {
        let mut l = ListValue::new();
        for i in items {
            l.push(End::Right, i, fill);
        }
        l
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The OBJECT ENCODING name (Redis 7.0 reports every list so).
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes, roughly (MEMORY USAGE, snapshot accounting).
    pub fn payload_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }

    /// Number of nodes (tests and DEBUG).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn push(&mut self, end: End, elem: &[u8], fill: Fill) {
        let add = entry_size(elem.len());
        if self.nodes.capacity() == 0 {
            // Most lists are one node: don't reserve four.
            self.nodes.reserve_exact(1);
        }
        match end {
            End::Left => match self.nodes.front_mut() {
                Some(n) if fill.fits(n.count, n.buf.len(), add) => n.insert_at(0, elem),
                _ => {
                    let mut n = Node::default();
                    n.insert_at(0, elem);
                    self.nodes.push_front(n);
                }
            },
            End::Right => match self.nodes.back_mut() {
                Some(n) if fill.fits(n.count, n.buf.len(), add) => {
                    put_entry(&mut n.buf, elem);
                    n.count += 1;
                }
                _ => {
                    let mut n = Node::default();
                    put_entry(&mut n.buf, elem);
                    n.count = 1;
                    self.nodes.push_back(n);
                }
            },
        }
        self.len += 1;
    }

    pub fn pop(&mut self, end: End) -> Option<Bytes> {
        let idx = match end {
            End::Left => 0,
            End::Right => self.nodes.len().checked_sub(1)?,
        };
        let node = self.nodes.get_mut(idx)?;
        let pos = match end {
            End::Left => 0,
            End::Right => node.entry_before(node.buf.len()),
        };
        let out = node.remove_at(pos);
        self.len -= 1;
        self.after_change(idx);
        Some(out)
    }

    /// Drops node `idx` if it emptied, else gives back unused memory.
    fn after_change(&mut self, idx: usize) {
        if let Some(n) = self.nodes.get_mut(idx) {
            if n.count == 0 {
                self.nodes.remove(idx);
            } else {
                n.shrink();
            }
        }
    }

    /// Node index and position in it of element `i` (< len).
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if i < n.count {
                    return (k, i);
                }
                i -= n.count;
            }
        } else {
            let mut from_end = self.len - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if from_end <= n.count {
                    return (k, n.count - from_end);
                }
                from_end -= n.count;
            }
        }
        (0, 0)
    }

    /// A Redis index (negative counts from the end) as a position.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let i = if index < 0 {
            (self.len as i64).checked_add(index)?
        } else {
            index
        };
        (i >= 0 && (i as usize) < self.len).then_some(i as usize)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (k, j) = self.locate(i);
        Some(self.nodes[k].get(j))
    }

    /// Replaces element `i`; false when out of range.
    pub fn set(&mut self, i: usize, elem: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (k, j) = self.locate(i);
        let node = &mut self.nodes[k];
        let pos = node.offset_of(j);
        let (_, end) = node.entry_at(pos);
        let mut e = Vec::with_capacity(entry_size(elem.len()));
        put_entry(&mut e, elem);
        node.buf.splice(pos..end, e);
        true
    }

    /// Inserts `elem` so that it becomes element `i` (0..=len).
    pub fn insert(&mut self, i: usize, elem: &[u8], fill: Fill) {
        if i == 0 {
            return self.push(End::Left, elem, fill);
        }
        if i >= self.len {
            return self.push(End::Right, elem, fill);
        }
        let (k, j) = self.locate(i);
        let node = &mut self.nodes[k];
        let pos = node.offset_of(j);
        node.insert_at(pos, elem);
        self.len += 1;
        let add = entry_size(elem.len());
        if !fill.fits(node.count - 1, node.buf.len() - add, add) {
            self.split(k);
        }
    }

    /// Splits node `k` in two halves (after an insert made it too big).
    fn split(&mut self, k: usize) {
        let node = &mut self.nodes[k];
        if node.count < 2 {
            return;
        }
        let half = node.count / 2;
        let pos = node.offset_of(half);
        let tail = Node {
            buf: node.buf.split_off(pos),
            count: node.count - half,
        };
        node.count = half;
        node.shrink();
        self.nodes.insert(k + 1, tail);
    }

    /// Removes element `i`, returning it.
    pub fn remove(&mut self, i: usize) -> Option<Bytes> {
        if i >= self.len {
            return None;
        }
        let (k, j) = self.locate(i);
        let node = &mut self.nodes[k];
        let pos = node.offset_of(j);
        let out = node.remove_at(pos);
        self.len -= 1;
        self.after_change(k);
        Some(out)
    }

    /// Keeps elements `start..=stop` (already clamped, start <= stop < len)
    /// and returns how many were removed.
    pub fn trim(&mut self, start: usize, stop: usize) -> usize {
        let before = self.len;
        let keep = stop + 1 - start;
        // Whole nodes first, then entries.
        let mut left = start;
        while let Some(n) = self.nodes.front() {
            if n.count > left {
                break;
            }
            left -= n.count;
            self.len -= n.count;
            self.nodes.pop_front();
        }
        for _ in 0..left {
            self.pop(End::Left);
        }
        while self.len > keep {
            let extra = self.len - keep;
            match self.nodes.back() {
                Some(n) if n.count <= extra => {
                    self.len -= n.count;
                    self.nodes.pop_back();
                }
                _ => {
                    self.pop(End::Right);
                }
            }
        }
        before - self.len
    }

    /// Removes every element, returning none of them (empty list).
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.len = 0;
    }

    /// Elements front to back (and back to front with `.rev()`).
    pub fn iter(&self) -> ListIter<'_> {
        ListIter {
            nodes: self.nodes.iter(),
            front: None,
            back: None,
            left: self.len,
        }
    }

    /// Elements from position `i` on, front to back.
    pub fn iter_from(&self, i: usize) -> ListIter<'_> {
        if i >= self.len {
            return ListIter {
                nodes: self.nodes.range(0..0),
                front: None,
                back: None,
                left: 0,
            };
        }
        let (k, j) = self.locate(i);
        let node = &self.nodes[k];
        let mut first = node.iter();
        first.front = node.offset_of(j);
        ListIter {
            nodes: self.nodes.range(k + 1..),
            front: Some(first),
            back: None,
            left: self.len - i,
        }
    }

    /// Removes up to `limit` (0: all) elements equal to `elem`, scanning
    /// from the front, or from the back when `from_back`; returns how many.
    pub fn remove_matching(&mut self, elem: &[u8], limit: usize, from_back: bool) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = if from_back {
            (0..self.nodes.len()).rev().collect()
        } else {
            (0..self.nodes.len()).collect()
        };
        for k in order {
            if limit > 0 && removed >= limit {
                break;
            }
            let node = &mut self.nodes[k];
            if from_back {
                let mut end = node.buf.len();
                while end > 0 && (limit == 0 || removed < limit) {
                    let start = node.entry_before(end);
                    let (r, _) = node.entry_at(start);
                    if &node.buf[r] == elem {
                        node.remove_at(start);
                        removed += 1;
                        self.len -= 1;
                    }
                    end = start;
                }
            } else {
                let mut pos = 0;
                while pos < node.buf.len() && (limit == 0 || removed < limit) {
                    let (r, end) = node.entry_at(pos);
                    if &node.buf[r] == elem {
                        node.remove_at(pos);
                        removed += 1;
                        self.len -= 1;
                    } else {
                        pos = end;
                    }
                }
            }
        }
        self.nodes.retain(|n| n.count > 0);
        for n in self.nodes.iter_mut() {
            n.shrink();
        }
        removed
    }

    /// Position of the first element equal to `elem`.
    pub fn position(&self, elem: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == elem)
    }

    /// Elements of each node, for writers that keep node boundaries (RDB).
    pub fn nodes(&self) -> impl Iterator<Item = (usize, impl Iterator<Item = &[u8]>)> {
        self.nodes.iter().map(|n| (n.count, n.iter()))
    }
}

/// Iterator over a list's elements.
pub struct ListIter<'a> {
    nodes: std::collections::vec_deque::Iter<'a, Node>,
    front: Option<NodeIter<'a>>,
    back: Option<NodeIter<'a>>,
    left: usize,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        loop {
            if let Some(it) = self.front.as_mut() {
                if let Some(e) = it.next() {
                    self.left -= 1;
                    return Some(e);
                }
            }
            match self.nodes.next() {
                Some(n) => self.front = Some(n.iter()),
                None => {
                    let e = self.back.as_mut()?.next();
                    if e.is_some() {
                        self.left -= 1;
                    }
                    return e;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for ListIter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        loop {
            if let Some(it) = self.back.as_mut() {
                if let Some(e) = it.next_back() {
                    self.left -= 1;
                    return Some(e);
                }
            }
            match self.nodes.next_back() {
                Some(n) => self.back = Some(n.iter()),
                None => {
                    let e = self.front.as_mut()?.next_back();
                    if e.is_some() {
                        self.left -= 1;
                    }
                    return e;
                }
            }
        }
    }
}

impl ExactSizeIterator for ListIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(l: &ListValue, m: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), m.len());
        let fwd: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = m.iter().map(|v| v.as_slice()).collect();
        assert_eq!(fwd, want);
        let back: Vec<&[u8]> = l.iter().rev().collect();
        let want_back: Vec<&[u8]> = m.iter().rev().map(|v| v.as_slice()).collect();
        assert_eq!(back, want_back);
        for (i, v) in m.iter().enumerate() {
            assert_eq!(l.get(i), Some(v.as_slice()), "index {i}");
        }
        assert!(l.nodes.iter().all(|n| n.count > 0));
        assert_eq!(l.nodes.iter().map(|n| n.count).sum::<usize>(), l.len);
    }

    #[test]
    fn pushes_pops_and_indexes_match_a_model() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for fill in [Fill(-2), Fill(3), Fill(-1), Fill(1)] {
            let mut l = ListValue::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..3000 {
                let r = next();
                let len = match r % 7 {
                    0 => 0,
                    1 => 200,
                    2 => 20_000,
                    _ => (r >> 8) as usize % 20,
                };
                let elem: Vec<u8> = (0..len).map(|i| (i as u64 ^ r) as u8).collect();
                match (r >> 20) % 10 {
                    0..=2 => {
                        l.push(End::Left, &elem, fill);
                        m.push_front(elem);
                    }
                    3..=5 => {
                        l.push(End::Right, &elem, fill);
                        m.push_back(elem);
                    }
                    6 => assert_eq!(l.pop(End::Left).map(|b| b.to_vec()), m.pop_front()),
                    7 => assert_eq!(l.pop(End::Right).map(|b| b.to_vec()), m.pop_back()),
                    8 if !m.is_empty() => {
                        let i = (r >> 30) as usize % (m.len() + 1);
                        l.insert(i, &elem, fill);
                        m.insert(i, elem);
                    }
                    _ if !m.is_empty() => {
                        let i = (r >> 30) as usize % m.len();
                        if r & 1 == 0 {
                            assert!(l.set(i, &elem));
                            m[i] = elem;
                        } else {
                            assert_eq!(l.remove(i).map(|b| b.to_vec()), m.remove(i));
                        }
                    }
                    _ => {}
                }
                if step % 97 == 0 {
                    model_check(&l, &m);
                }
            }
            model_check(&l, &m);
        }
    }

    #[test]
    fn nodes_respect_the_fill() {
        let mut l = ListValue::new();
        for i in 0..10_000 {
            l.push(End::Right, format!("element-{i}").as_bytes(), Fill(-2));
        }
        assert!(l.node_count() > 10);
        assert!(l.nodes.iter().all(|n| n.buf.len() <= 8192));
        let mut c = ListValue::new();
        for i in 0..10 {
            c.push(End::Left, i.to_string().as_bytes(), Fill(4));
        }
        assert_eq!(c.node_count(), 3);
        // A small list is one node, one allocation.
        let s = ListValue::from_items([&b"a"[..], b"b", b"c"], Fill::default());
        assert_eq!(s.node_count(), 1);
        assert!(s.payload_bytes() < 96, "{}", s.payload_bytes());
    }

    #[test]
    fn trim_remove_matching_and_iter_from() {
        let items: Vec<Vec<u8>> = (0..5000)
            .map(|i| (i % 7).to_string().into_bytes())
            .collect();
        let mut l = ListValue::from_items(items.iter().map(|v| v.as_slice()), Fill(5));
        let mut m: VecDeque<Vec<u8>> = items.into_iter().collect();
        assert_eq!(l.trim(13, 4000), 13 + 999);
        m.drain(..13);
        m.truncate(4000 - 13 + 1);
        model_check(&l, &m);
        let from: Vec<&[u8]> = l.iter_from(2000).take(3).collect();
        assert_eq!(
            from,
            m.iter()
                .skip(2000)
                .take(3)
                .map(|v| v.as_slice())
                .collect::<Vec<_>>()
        );
        assert_eq!(l.iter_from(99_999).count(), 0);
        assert_eq!(l.remove_matching(b"3", 10, true), 10);
        let mut seen = 0;
        let mut k = m.len();
        while seen < 10 {
            k -= 1;
            if m[k] == b"3" {
                m.remove(k);
                seen += 1;
            }
        }
        model_check(&l, &m);
        let n = l.remove_matching(b"5", 0, false);
        m.retain(|v| v != b"5");
        assert!(n > 500);
        model_check(&l, &m);
        assert_eq!(l.position(b"6"), m.iter().position(|v| v == b"6"));
        assert_eq!(l.resolve(-1), Some(m.len() - 1));
        assert_eq!(l.resolve(i64::MIN), None);
        assert_eq!(l.resolve(m.len() as i64), None);
        l.clear();
        assert!(l.is_empty() && l.iter().next().is_none());
    }
}
