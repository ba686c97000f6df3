//! `SkipList`: the ordered index of a large sorted set, (score, member)
//! ascending, with O(log n) insert, delete, rank and access by rank.
//!
//! Why a skiplist rather than a B-tree: sorted sets need *rank* queries
//! (ZRANK, ZRANGE by index, ZREMRANGEBYRANK) as well as ordered walks in
//! both directions from any position. A skiplist whose links record how
//! many elements they skip ("span", Pugh's indexable skiplist, as Redis
//! uses) gives both with one simple structure; std's `BTreeMap` has no
//! ranks, and an order-statistic B-tree is much more code for the same
//! complexity. Nodes live in one arena (`Vec`) and link by `u32` index, so
//! there is no `unsafe` and no reference counting; freed slots are reused.
//!
//! Depends on `bytes` only. Knows nothing of member → score lookups (the
//! sorted set keeps a hash table beside it) nor of databases or commands.
//! Scores are never NaN: callers refuse NaN before inserting.

use bytes::Bytes;
use std::cmp::Ordering;

/// "No node".
const NIL: u32 = u32::MAX;
/// The head sentinel's slot.
const HEAD: u32 = 0;
/// Enough levels for 4^32 elements at p = 1/4.
const MAX_LEVEL: usize = 32;

/// 8 bytes: a set holds at most `u32::MAX` elements (as a key table does),
/// so a span fits in 32 bits.
#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    /// Elements between this node and `next` (1 for a neighbour); for a
    /// link to NIL, the elements up to the end.
    span: u32,
}

/// The level-0 link lives in the node: three nodes in four have no other
/// level, and then need no allocation of their own (memory per member is
/// what a large sorted set costs).
#[derive(Clone, Debug)]
struct Node {
    member: Bytes,
    score: f64,
    /// The previous node (level 0), NIL for the first.
    back: u32,
    first: Link,
    /// Links of levels 1 and up (empty, unallocated, for a level-1 node).
    upper: Box<[Link]>,
}

impl Node {
    fn link(&self, level: usize) -> Link {
        if level == 0 {
            self.first
        } else {
            self.upper[level - 1]
        }
    }

    fn link_mut(&mut self, level: usize) -> &mut Link {
        if level == 0 {
            &mut self.first
        } else {
            &mut self.upper[level - 1]
        }
    }

    fn levels(&self) -> usize {
        1 + self.upper.len()
    }
}

/// The node arena: one growing block up to `ARENA_CHUNK` nodes (a set just
/// past the listpack limit stays small), then fixed blocks of that size.
/// A plain `Vec` doubles: at 300k members it held 524k slots, 57% full,
/// the largest cost per member; here at most one block is partly empty.
#[derive(Clone, Debug, Default)]
struct Arena {
    blocks: Vec<Vec<Node>>,
    len: usize,
}

const ARENA_SHIFT: u32 = 12;
const ARENA_CHUNK: usize = 1 << ARENA_SHIFT;

impl Arena {
    fn push(&mut self, node: Node) {
        match self.blocks.last_mut() {
            Some(b) if b.len() < ARENA_CHUNK => {
                if b.len() == b.capacity() {
                    let grow = b.len().max(4).min(ARENA_CHUNK - b.len());
                    b.reserve_exact(grow);
                }
                b.push(node);
            }
            _ => {
                let mut b = Vec::with_capacity(if self.blocks.is_empty() {
                    4
                } else {
                    ARENA_CHUNK
                });
                b.push(node);
                self.blocks.push(b);
            }
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> Option<&Node> {
        self.blocks
            .get(i >> ARENA_SHIFT)
            .and_then(|b| b.get(i & (ARENA_CHUNK - 1)))
    }

    fn capacity(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }

    fn iter(&self) -> impl Iterator<Item = &Node> {
        self.blocks.iter().flatten()
    }
}

impl std::ops::Index<usize> for Arena {
    type Output = Node;
    fn index(&self, i: usize) -> &Node {
        &self.blocks[i >> ARENA_SHIFT][i & (ARENA_CHUNK - 1)]
    }
}

impl std::ops::IndexMut<usize> for Arena {
    fn index_mut(&mut self, i: usize) -> &mut Node {
        &mut self.blocks[i >> ARENA_SHIFT][i & (ARENA_CHUNK - 1)]
    }
}

/// (score, member) order: scores numerically, ties by member bytes.
pub fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2)
        .unwrap_or(Ordering::Equal)
        .then_with(|| m1.cmp(m2))
}

#[derive(Clone, Debug)]
pub struct SkipList {
    nodes: Arena,
    free: Vec<u32>,
    /// Levels in use (at least 1).
    level: usize,
    len: usize,
    tail: u32,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

impl SkipList {
    pub fn new() -> Self {
        let head = Node {
            member: Bytes::new(),
            score: 0.0,
            back: NIL,
            first: Link { next: NIL, span: 0 },
            upper: vec![Link { next: NIL, span: 0 }; MAX_LEVEL - 1].into_boxed_slice(),
        };
        SkipList {
            nodes: {
                let mut a = Arena::default();
                a.push(head);
                a
            },
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes of the structure (members excluded), roughly.
    pub fn allocated_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self
                .nodes
                .iter()
                .map(|n| n.upper.len() * std::mem::size_of::<Link>())
                .sum::<usize>()
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
            if r & 0xFFFF >= 0x4000 || level >= MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    fn link(&self, at: u32, level: usize) -> Link {
        self.nodes[at as usize].link(level)
    }

    fn link_mut(&mut self, at: u32, level: usize) -> &mut Link {
        self.nodes[at as usize].link_mut(level)
    }

    fn before(&self, id: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[id as usize];
        cmp_entry(n.score, &n.member, score, member) == Ordering::Less
    }

    /// For each level, the last node before (score, member), and the rank
    /// (number of elements) crossed to reach it.
    fn path(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                if l.next != NIL && self.before(l.next, score, member) {
                    rank[i] += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Inserts an element that is not in the list (the caller's hash table
    /// says so).
    pub fn insert(&mut self, score: f64, member: Bytes) {
        let (mut update, mut rank) = self.path(score, &member);
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.link_mut(HEAD, i).span = self.len as u32;
            }
            self.level = level;
        }
        let mut links = [Link { next: NIL, span: 0 }; MAX_LEVEL];
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.nodes.push(Node {
                    member: Bytes::new(),
                    score: 0.0,
                    back: NIL,
                    first: Link { next: NIL, span: 0 },
                    upper: Box::new([]),
                });
                (self.nodes.len() - 1) as u32
            }
        };
        for (i, link) in links.iter_mut().enumerate().take(level) {
            let crossed = (rank[0] - rank[i]) as u32;
            let prev = self.link_mut(update[i], i);
            link.next = prev.next;
            prev.next = id;
            link.span = prev.span - crossed;
            prev.span = crossed + 1;
        }
        for (i, u) in update.iter().enumerate().take(self.level).skip(level) {
            self.link_mut(*u, i).span += 1;
        }
        let back = if update[0] == HEAD { NIL } else { update[0] };
        let next = links[0].next;
        self.nodes[id as usize] = Node {
            member,
            score,
            back,
            first: links[0],
            upper: links[1..level].into(),
        };
        if next != NIL {
            self.nodes[next as usize].back = id;
        } else {
            self.tail = id;
        }
        self.len += 1;
    }

    /// Unlinks node `x` given the path to it; frees its slot and returns
    /// its member.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) -> Bytes {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let xn = &self.nodes[x as usize];
            let xl = (i < xn.levels()).then(|| xn.link(i));
            let ul = self.link_mut(u, i);
            match xl {
                Some(xl) if ul.next == x => {
                    ul.span += xl.span;
                    ul.span -= 1;
                    ul.next = xl.next;
                }
                _ => ul.span -= 1,
            }
        }
        let (next, back) = {
            let n = &self.nodes[x as usize];
            (n.first.next, n.back)
        };
        if next != NIL {
            self.nodes[next as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let node = &mut self.nodes[x as usize];
        node.upper = Box::new([]);
        node.first = Link { next: NIL, span: 0 };
        node.back = NIL;
        self.free.push(x);
        std::mem::take(&mut node.member)
    }

    /// Removes (score, member); false if it is not there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (update, _) = self.path(score, member);
        let x = self.link(update[0], 0).next;
        if x == NIL {
            return false;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || n.member != member {
            return false;
        }
        self.unlink(x, &update);
        true
    }

    /// 0-based rank of (score, member), if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let (update, rank) = self.path(score, member);
        let x = self.link(update[0], 0).next;
        let n = self.nodes.get(x as usize)?;
        (x != NIL && n.score == score && n.member == member).then_some(rank[0])
    }

    /// How many elements from the start satisfy `pred` (which must hold
    /// for a prefix of the order and not after it).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !pred(n.score, &n.member) {
                    break;
                }
                rank += l.span as usize;
                x = l.next;
            }
        }
        rank
    }

    /// The node at 0-based `rank`.
    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// The element at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&Bytes, f64)> {
        let x = self.node_at(rank);
        self.nodes
            .get(x as usize)
            .filter(|_| x != NIL)
            .map(|n| (&n.member, n.score))
    }

    /// Elements from 0-based `rank` on, ascending (or descending with
    /// `rev`, towards rank 0).
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        Iter {
            list: self,
            at: self.node_at(rank),
            rev,
        }
    }

    /// Every element, ascending.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: self,
            at: self.link(HEAD, 0).next,
            rev: false,
        }
    }

    /// The last element.
    pub fn last(&self) -> Option<(&Bytes, f64)> {
        self.nodes
            .get(self.tail as usize)
            .filter(|_| self.tail != NIL)
            .map(|n| (&n.member, n.score))
    }
}

/// Walks a [`SkipList`] from a position, either way.
pub struct Iter<'a> {
    list: &'a SkipList,
    at: u32,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == NIL {
            return None;
        }
        let n = &self.list.nodes[self.at as usize];
        self.at = if self.rev { n.back } else { n.first.next };
        Some((&n.member, n.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn many_arena_blocks_keep_order_ranks_and_reuse_slots() {
        // Three arena blocks and a bit, then half removed and re-added.
        let n = 3 * ARENA_CHUNK + 100;
        let mut l = SkipList::new();
        // A scrambled insertion order over distinct scores.
        for i in 0..n {
            let j = (i * 7919) % n;
            l.insert(j as f64, b(&format!("m{j}")));
        }
        assert_eq!(l.len(), n);
        for (rank, (m, score)) in l.iter().enumerate() {
            assert_eq!(score, rank as f64);
            assert_eq!(m.as_ref(), format!("m{rank}").as_bytes());
        }
        for j in (0..n).step_by(2) {
            assert!(l.remove(j as f64, format!("m{j}").as_bytes()));
        }
        assert_eq!(l.rank(1.0, b"m1"), Some(0));
        assert_eq!(
            l.rank(n as f64 - 1.0, format!("m{}", n - 1).as_bytes()),
            Some(n / 2 - 1)
        );
        let slots = l.nodes.len();
        for j in (0..n).step_by(2) {
            l.insert(j as f64, b(&format!("m{j}")));
        }
        // Freed slots were reused: the arena did not grow.
        assert_eq!(l.nodes.len(), slots);
        assert_eq!(l.get(n - 1).map(|(_, s)| s), Some((n - 1) as f64));
        assert_eq!(l.last().map(|(_, s)| s), Some((n - 1) as f64));
        assert_eq!(l.count_while(|s, _| s < 5000.0), 5000);
        // At most one block is partly empty.
        assert!(l.nodes.capacity() - l.nodes.len() < ARENA_CHUNK);
    }

    #[test]
    fn randomized_against_a_sorted_vec() {
        let mut list = SkipList::new();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut rng: u64 = 42;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..20_000 {
            let r = next();
            let score = ((r % 50) as f64) - 25.0;
            let member = format!("m{}", (r >> 8) % 300).into_bytes();
            let pos = model.iter().position(|(_, m)| *m == member);
            if r % 3 == 0 {
                if let Some(i) = pos {
                    let (s, m) = model.remove(i);
                    assert!(list.remove(s, &m));
                } else {
                    assert!(!list.remove(score, &member));
                }
            } else if pos.is_none() {
                list.insert(score, Bytes::from(member.clone()));
                let at = model
                    .partition_point(|(s, m)| cmp_entry(*s, m, score, &member) == Ordering::Less);
                model.insert(at, (score, member));
            }
            assert_eq!(list.len(), model.len());
            if step % 500 == 0 || step > 19_900 {
                let all: Vec<(f64, Vec<u8>)> = list.iter().map(|(m, s)| (s, m.to_vec())).collect();
                assert_eq!(all, model);
                for (i, (s, m)) in model.iter().enumerate() {
                    assert_eq!(list.rank(*s, m), Some(i));
                    let (gm, gs) = list.get(i).expect("in range");
                    assert_eq!((gs, gm.as_ref()), (*s, &m[..]));
                }
                let below = list.count_while(|s, _| s < 0.0);
                assert_eq!(below, model.iter().filter(|(s, _)| *s < 0.0).count());
                if !model.is_empty() {
                    let mid = model.len() / 2;
                    let back: Vec<f64> = list.iter_from(mid, true).map(|(_, s)| s).collect();
                    let expect: Vec<f64> = model[..=mid].iter().rev().map(|(s, _)| *s).collect();
                    assert_eq!(back, expect);
                    assert_eq!(list.last().map(|(_, s)| s), model.last().map(|(s, _)| *s));
                }
            }
        }
        assert!(list.get(model.len()).is_none());
        assert_eq!(list.rank(1000.0, b"x"), None);
    }

    #[test]
    fn equal_scores_order_by_member_and_slots_are_reused() {
        let mut list = SkipList::new();
        for m in ["c", "a", "b", ""] {
            list.insert(1.0, b(m));
        }
        list.insert(f64::NEG_INFINITY, b("z"));
        list.insert(f64::INFINITY, b("a"));
        let order: Vec<&[u8]> = list.iter().map(|(m, _)| m.as_ref()).collect();
        assert_eq!(order, vec![&b"z"[..], b"", b"a", b"b", b"c", b"a"]);
        let slots = list.nodes.len();
        assert!(list.remove(1.0, b"a"));
        list.insert(2.0, b("new"));
        assert_eq!(list.nodes.len(), slots);
        assert_eq!(list.rank(2.0, b"new"), Some(4));
        let copy = list.clone();
        assert_eq!(copy.iter().count(), 6);
    }
}
