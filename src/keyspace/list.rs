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
//! With `list-compress-depth` d > 0 (carried in [`Fill`]), nodes more than
//! d nodes from both ends are kept LZF-compressed when that saves more than
//! 8 bytes (nodes under 48 bytes never are), as Redis does. Reads through
//! `&self` decompress a node into its cache, which the list's next lookup
//! drops ([`ListValue::recompress`]); a change makes the node raw and lays
//! it out again. Elements, digests and RDB output do not depend on it.
//!
//! OBJECT ENCODING is always "quicklist", as in Redis 7.0. Depends on std,
//! `bytes` and `util::lzf` only; knows nothing of databases or commands. A list is
//! never empty in a database: callers delete the key when it empties.

use bytes::Bytes;
use std::collections::VecDeque;

/// `list-max-listpack-size`: a node's limit. Negative: -1..-5 for 4, 8,
/// 16, 32, 64 KiB per node; positive: elements per node (with Redis's 8 KiB
/// safety limit on the node's bytes). Second: `list-compress-depth`, the
/// nodes kept raw at each end (0: no compression), which a list takes from
/// the writes that add elements to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill(pub i64, pub u32);

impl Default for Fill {
    /// Redis's defaults, -2 (8 KiB) and no compression.
    fn default() -> Self {
        Fill(-2, 0)
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

/// Redis's MIN_COMPRESS_BYTES: smaller nodes are never compressed.
const MIN_COMPRESS_BYTES: usize = 48;
/// Redis's MIN_COMPRESS_IMPROVE: compression must save more than this.
const MIN_COMPRESS_IMPROVE: usize = 8;

/// An interior node stored LZF-compressed (see [`ListValue`]).
#[derive(Clone, Default)]
struct Packed {
    lzf: Vec<u8>,
    raw_len: usize,
    /// The entries, decompressed by a read through `&self`; dropped again
    /// at the list's next access ([`ListValue::recompress`]).
    cache: std::sync::OnceLock<Vec<u8>>,
}

/// The entry of `buf` starting at `pos`: (data range, end of entry).
fn entry_at(buf: &[u8], pos: usize) -> (std::ops::Range<usize>, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = pos;
    while let Some(&b) = buf.get(p) {
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

/// Start of the entry of `buf` that ends at `end`.
fn entry_before(buf: &[u8], end: usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = end;
    while p > 0 {
        p -= 1;
        let b = buf[p];
        n |= usize::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let vl = end - p;
    p - n - vl
}

/// One node: packed entries and their number.
#[derive(Clone, Default)]
struct Node {
    /// The entries while the node is raw; empty while `packed`.
    buf: Vec<u8>,
    count: usize,
    packed: Option<Box<Packed>>,
    /// Compression was tried on these exact bytes and saved too little.
    incompressible: bool,
}

impl Node {
    /// The entries, decompressing (into the node's cache) if needed.
    fn raw(&self) -> &[u8] {
        match &self.packed {
            None => &self.buf,
            Some(p) => p.cache.get_or_init(|| {
                // Our own LZF output of `raw_len` bytes: it always
                // decompresses; an empty node is the safe fallback.
                crate::util::lzf::decompress(&p.lzf, p.raw_len).unwrap_or_default()
            }),
        }
    }

    /// The entries for a change: the node becomes raw.
    fn raw_mut(&mut self) -> &mut Vec<u8> {
        if let Some(p) = self.packed.take() {
            let raw_len = p.raw_len;
            let Packed { lzf, cache, .. } = *p;
            self.buf = match cache.into_inner() {
                Some(b) => b,
                None => crate::util::lzf::decompress(&lzf, raw_len).unwrap_or_default(),
            };
        }
        self.incompressible = false;
        &mut self.buf
    }

    fn raw_len(&self) -> usize {
        self.packed.as_ref().map_or(self.buf.len(), |p| p.raw_len)
    }

    fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Stores the node compressed when that saves enough, as Redis does;
    /// a packed node only drops its decompressed copy.
    fn pack(&mut self) {
        if let Some(p) = self.packed.as_mut() {
            p.cache.take();
            return;
        }
        let n = self.buf.len();
        if self.incompressible || n < MIN_COMPRESS_BYTES {
            return;
        }
        match crate::util::lzf::compress(&self.buf, n - MIN_COMPRESS_IMPROVE - 1) {
            Some(mut lzf) => {
                lzf.shrink_to_fit();
                self.packed = Some(Box::new(Packed {
                    lzf,
                    raw_len: n,
                    cache: Default::default(),
                }));
                self.buf = Vec::new();
            }
            None => self.incompressible = true,
        }
    }

    /// Makes a packed node raw (it moved to within the depth of an end).
    fn unpack(&mut self) {
        if self.is_packed() {
            self.raw_mut();
        }
    }

    /// Heap bytes held by the node.
    fn heap_bytes(&self) -> usize {
        self.buf.capacity()
            + self.packed.as_ref().map_or(0, |p| {
                std::mem::size_of::<Packed>()
                    + p.lzf.capacity()
                    + p.cache.get().map_or(0, Vec::capacity)
            })
    }

    /// The entry starting at `pos`: (data range, end of entry). The buffer
    /// is only written by this module, so it is well formed.
    fn entry_at(&self, pos: usize) -> (std::ops::Range<usize>, usize) {
        entry_at(self.raw(), pos)
    }

    /// Start of the entry that ends at `end`.
    fn entry_before(&self, end: usize) -> usize {
        entry_before(self.raw(), end)
    }

    /// Byte offset of entry `i` (< count), walking from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        let buf = self.raw();
        if i <= self.count / 2 {
            let mut pos = 0;
            for _ in 0..i {
                pos = entry_at(buf, pos).1;
            }
            pos
        } else {
            let mut pos = buf.len();
            for _ in i..self.count {
                pos = entry_before(buf, pos);
            }
            pos
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        let (r, _) = self.entry_at(self.offset_of(i));
        &self.raw()[r]
    }

    fn insert_at(&mut self, pos: usize, elem: &[u8]) {
        let mut e = Vec::with_capacity(entry_size(elem.len()));
        put_entry(&mut e, elem);
        self.raw_mut().splice(pos..pos, e);
        self.count += 1;
    }

    /// Removes the entry at byte offset `pos`, returning its element.
    fn remove_at(&mut self, pos: usize) -> Bytes {
        let (r, end) = self.entry_at(pos);
        let buf = self.raw_mut();
        let out = Bytes::copy_from_slice(&buf[r]);
        buf.drain(pos..end);
        self.count -= 1;
        out
    }

    fn shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() / 2 > self.buf.len() {
            self.buf.shrink_to_fit();
        }
    }

    fn iter(&self) -> NodeIter<'_> {
        let buf = self.raw();
        NodeIter {
            buf,
            front: 0,
            back: buf.len(),
        }
    }
}

/// Entries of one node, from either end.
struct NodeIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (r, end) = entry_at(self.buf, self.front);
        self.front = end;
        Some(&self.buf[r])
    }
}

impl<'a> DoubleEndedIterator for NodeIter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let start = entry_before(self.buf, self.back);
        let (r, _) = entry_at(self.buf, start);
        self.back = start;
        Some(&self.buf[r])
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
#[derive(Default)]
pub struct ListValue {
    nodes: VecDeque<Node>,
    len: usize,
    /// `list-compress-depth` as of the last write that added elements:
    /// the nodes kept raw at each end; the others are stored compressed
    /// when that saves space (0: none is).
    depth: u32,
    /// A read through `&self` decompressed a node into its cache since the
    /// last [`ListValue::recompress`].
    cached: std::sync::atomic::AtomicBool,
}

impl Clone for ListValue {
    fn clone(&self) -> Self {
        ListValue {
            nodes: self.nodes.clone(),
            len: self.len,
            depth: self.depth,
            cached: std::sync::atomic::AtomicBool::new(self.read_packed()),
        }
    }
}

/// Equal elements in the same order, however the nodes are stored.
impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for ListValue {}

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
            + self.nodes.iter().map(Node::heap_bytes).sum::<usize>()
    }

    /// Number of nodes (tests and DEBUG).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of nodes stored compressed (tests and DEBUG).
    pub fn packed_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_packed()).count()
    }

    // ---------------------------------------------------- compression --

    /// Notes that a read may decompress a node into its cache.
    fn note_read(&self) {
        if self.depth > 0 {
            self.cached
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn read_packed(&self) -> bool {
        self.cached.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops the decompressed copies reads left behind (Redis recompresses
    /// a node after each access; we do it at the list's next access, the
    /// command layer's lookup). O(1) unless a read decompressed something.
    pub fn recompress(&mut self) {
        if !std::mem::take(self.cached.get_mut()) {
            return;
        }
        for n in self.nodes.iter_mut().filter(|n| n.is_packed()) {
            n.pack();
        }
    }

    /// Takes the depth of a write that adds elements; a changed depth
    /// re-lays out every node.
    fn adopt(&mut self, fill: Fill) {
        if fill.1 != self.depth {
            self.depth = fill.1;
            self.compress_all();
        }
    }

    /// Whether node `i` lies deeper than `depth` from both ends.
    fn interior(&self, i: usize) -> bool {
        let d = self.depth as usize;
        d > 0 && i >= d && i + d < self.nodes.len()
    }

    /// Lays node `i` out as its place says: compressed inside, raw within
    /// `depth` of an end.
    fn place(&mut self, i: usize) {
        let inner = self.interior(i);
        if let Some(n) = self.nodes.get_mut(i) {
            if inner {
                n.pack();
            } else {
                n.unpack();
            }
        }
    }

    /// After a change at node `touched` (or at an end): the nodes that may
    /// have crossed the depth boundary, and the touched one, get their
    /// layout. O(1) nodes.
    fn compress_ends(&mut self, touched: Option<usize>) {
        let d = self.depth as usize;
        if d == 0 {
            return;
        }
        let n = self.nodes.len();
        for i in [
            Some(d - 1),
            Some(d),
            (n + d).checked_sub(d + d + 1),
            n.checked_sub(d),
            touched,
        ]
        .into_iter()
        .flatten()
        {
            self.place(i);
        }
    }

    /// Every node gets its layout (after bulk changes).
    fn compress_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.place(i);
        }
        *self.cached.get_mut() = false;
    }

    pub fn push(&mut self, end: End, elem: &[u8], fill: Fill) {
        self.adopt(fill);
        let add = entry_size(elem.len());
        if self.nodes.capacity() == 0 {
            // Most lists are one node: don't reserve four.
            self.nodes.reserve_exact(1);
        }
        match end {
            End::Left => match self.nodes.front_mut() {
                Some(n) if fill.fits(n.count, n.raw_len(), add) => n.insert_at(0, elem),
                _ => {
                    let mut n = Node::default();
                    n.insert_at(0, elem);
                    self.nodes.push_front(n);
                }
            },
            End::Right => match self.nodes.back_mut() {
                Some(n) if fill.fits(n.count, n.raw_len(), add) => {
                    put_entry(n.raw_mut(), elem);
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
        self.compress_ends(None);
    }

    pub fn pop(&mut self, end: End) -> Option<Bytes> {
        let idx = match end {
            End::Left => 0,
            End::Right => self.nodes.len().checked_sub(1)?,
        };
        let node = self.nodes.get_mut(idx)?;
        let pos = match end {
            End::Left => 0,
            End::Right => node.entry_before(node.raw_len()),
        };
        let out = node.remove_at(pos);
        self.len -= 1;
        self.after_change(idx);
        self.compress_ends(None);
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
        if self.nodes[k].is_packed() {
            self.note_read();
        }
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
        node.raw_mut().splice(pos..end, e);
        self.compress_ends(Some(k));
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
        self.adopt(fill);
        let (k, j) = self.locate(i);
        let node = &mut self.nodes[k];
        let pos = node.offset_of(j);
        node.insert_at(pos, elem);
        self.len += 1;
        let add = entry_size(elem.len());
        if !fill.fits(node.count - 1, node.raw_len() - add, add) {
            self.split(k);
            self.compress_ends(Some(k + 1));
        }
        self.compress_ends(Some(k));
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
            buf: node.raw_mut().split_off(pos),
            count: node.count - half,
            ..Node::default()
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
        self.compress_ends(Some(k));
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
        self.compress_all();
        before - self.len
    }

    /// Removes every element, returning none of them (empty list).
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.len = 0;
    }

    /// Elements front to back (and back to front with `.rev()`).
    pub fn iter(&self) -> ListIter<'_> {
        self.note_read();
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
        self.note_read();
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
                let mut end = node.raw_len();
                while end > 0 && (limit == 0 || removed < limit) {
                    let start = node.entry_before(end);
                    let (r, _) = node.entry_at(start);
                    if &node.raw()[r] == elem {
                        node.remove_at(start);
                        removed += 1;
                        self.len -= 1;
                    }
                    end = start;
                }
            } else {
                let mut pos = 0;
                while pos < node.raw_len() && (limit == 0 || removed < limit) {
                    let (r, end) = node.entry_at(pos);
                    if &node.raw()[r] == elem {
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
        self.compress_all();
        removed
    }

    /// Position of the first element equal to `elem`.
    pub fn position(&self, elem: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == elem)
    }

    /// Elements of each node, for writers that keep node boundaries (RDB).
    pub fn nodes(&self) -> impl Iterator<Item = (usize, impl Iterator<Item = &[u8]>)> {
        self.note_read();
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
    use crate::util::rand::rand_next;

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
        // Nodes within the depth of an end are raw.
        for (i, n) in l.nodes.iter().enumerate() {
            assert!(
                l.interior(i) || !n.is_packed(),
                "node {i} of {}",
                l.nodes.len()
            );
        }
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
        for fill in [
            Fill(-2, 0),
            Fill(3, 0),
            Fill(-1, 0),
            Fill(1, 0),
            Fill(-1, 1),
            Fill(8, 2),
            Fill(4, 1),
        ] {
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
            l.push(End::Right, format!("element-{i}").as_bytes(), Fill(-2, 0));
        }
        assert!(l.node_count() > 10);
        assert!(l.nodes.iter().all(|n| n.raw_len() <= 8192));
        let mut c = ListValue::new();
        for i in 0..10 {
            c.push(End::Left, i.to_string().as_bytes(), Fill(4, 0));
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
        let mut l = ListValue::from_items(items.iter().map(|v| v.as_slice()), Fill(5, 0));
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

    fn compressible(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("element-{i:08}-padding-padding").into_bytes())
            .collect()
    }

    #[test]
    fn interior_nodes_are_compressed_and_read_transparently() {
        let items = compressible(20_000);
        let refs = || items.iter().map(|v| v.as_slice());
        let plain = ListValue::from_items(refs(), Fill(-2, 0));
        let mut l = ListValue::from_items(refs(), Fill(-2, 1));
        let nodes = l.node_count();
        assert!(nodes > 10);
        assert_eq!(plain.packed_count(), 0);
        assert_eq!(l.packed_count(), nodes - 2);
        assert!(
            l.payload_bytes() * 2 < plain.payload_bytes(),
            "{} vs {}",
            l.payload_bytes(),
            plain.payload_bytes()
        );
        assert_eq!(l, plain);
        let mut m: VecDeque<Vec<u8>> = items.iter().cloned().collect();
        model_check(&l, &m);
        // Reads leave decompressed copies; the next access drops them.
        l.recompress();
        let before = l.payload_bytes();
        assert_eq!(l.get(10_000), Some(m[10_000].as_slice()));
        assert!(l.payload_bytes() > before);
        l.recompress();
        assert_eq!(l.payload_bytes(), before);
        // Changes inside compressed nodes.
        assert!(l.set(9_000, b"changed"));
        m[9_000] = b"changed".to_vec();
        l.insert(5_000, b"inserted", Fill(-2, 1));
        m.insert(5_000, b"inserted".to_vec());
        assert_eq!(l.remove(12_000).map(|b| b.to_vec()), m.remove(12_000));
        assert_eq!(l.remove_matching(b"changed", 0, false), 1);
        m.retain(|v| v != b"changed");
        model_check(&l, &m);
        // Pops reach compressed nodes as the ends move in.
        for _ in 0..3_000 {
            assert_eq!(l.pop(End::Left).map(|b| b.to_vec()), m.pop_front());
            assert_eq!(l.pop(End::Right).map(|b| b.to_vec()), m.pop_back());
        }
        model_check(&l, &m);
        assert_eq!(l.trim(2_000, 9_000), m.len() - 7_001);
        m.drain(..2_000);
        m.truncate(7_001);
        model_check(&l, &m);
        assert!(l.packed_count() > 0);
        // A deeper depth taken from a later write re-lays out the nodes.
        l.push(End::Right, b"x", Fill(-2, 3));
        m.push_back(b"x".to_vec());
        model_check(&l, &m);
        l.push(End::Right, b"y", Fill(-2, 0));
        m.push_back(b"y".to_vec());
        assert_eq!(l.packed_count(), 0);
        model_check(&l, &m);
    }

    #[test]
    fn small_or_incompressible_nodes_stay_raw() {
        // Nodes under 48 bytes are never compressed.
        let small = ListValue::from_items([&b"a"[..], b"b", b"c", b"d", b"e", b"f"], Fill(1, 1));
        assert_eq!(small.node_count(), 6);
        assert_eq!(small.packed_count(), 0);
        // Random bytes do not compress: kept raw.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<Vec<u8>> = (0..64)
            .map(|_| (0..200).map(|_| rand_next(&mut x) as u8).collect())
            .collect();
        let l = ListValue::from_items(noise.iter().map(|v| v.as_slice()), Fill(2, 1));
        assert!(l.node_count() > 2);
        assert_eq!(l.packed_count(), 0);
        // A node that saves exactly enough bytes is compressed.
        let l = ListValue::from_items(compressible(40).iter().map(|v| v.as_slice()), Fill(4, 1));
        assert_eq!(l.packed_count(), l.node_count() - 2);
    }
}
