//! The stream type: entries with IDs `ms-seq`, in ascending order, kept in
//! nodes the way Redis 7.0 keeps them (a node per listpack of its radix
//! tree), so what depends on the node layout behaves the same: where a new
//! node starts (`stream-node-max-entries`, `stream-node-max-bytes`, the
//! node's listpack size counted exactly), what approximate trimming (`~`)
//! removes (whole nodes only), entries deleted inside a node staying as
//! tombstones until the whole node goes, and the RDB form (one listpack per
//! node, see `persist::rdb`).
//!
//! A node keeps its entries decoded (ID, tombstone flag, fields and values)
//! rather than as listpack bytes, with the listpack's size tracked beside
//! them. Consumer groups live in [`groups`].
//!
//! Pure data structure: no commands, no I/O. Depends on `bytes` and std.
#![forbid(unsafe_code)]

use bytes::Bytes;
use std::collections::BTreeMap;

pub mod groups;
pub use groups::{Consumer, Group, Pending, ENTRIES_READ_UNKNOWN};

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID (`None` after the last possible one).
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID (`None` before 0-0).
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    pub fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

// ------------------------------------------------- listpack accounting --

/// Bytes a listpack element's back-length takes for an entry of `len`.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Bytes an integer takes as a listpack element.
pub fn lp_int_size(v: i64) -> usize {
    let enc = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    enc + backlen_size(enc)
}

/// Bytes a string takes as a listpack element (canonical integers are
/// stored as integers, as `lpAppend` does).
pub fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = crate::util::num::parse_i64_strict(s) {
        return lp_int_size(v);
    }
    let enc = match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        _ => 5 + s.len(),
    };
    enc + backlen_size(enc)
}

/// A listpack's header (total bytes, element count) and end marker.
const LP_OVERHEAD: usize = 6 + 1;

/// Entry flags, as stored in the listpack.
pub const FLAG_DELETED: i64 = 1;
pub const FLAG_SAMEFIELDS: i64 = 2;

// --------------------------------------------------------------- nodes --

/// One entry inside a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: StreamId,
    pub deleted: bool,
    /// The entry has the node's master fields, and `items` holds only its
    /// values; otherwise `items` is field, value, field, value...
    pub same_fields: bool,
    pub items: Box<[Bytes]>,
}

impl Entry {
    /// The fields and values, field first.
    pub fn pairs<'a>(&'a self, master_fields: &'a [Bytes]) -> Vec<(&'a Bytes, &'a Bytes)> {
        if self.same_fields {
            master_fields.iter().zip(self.items.iter()).collect()
        } else {
            self.items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect()
        }
    }

    pub fn fields_count(&self) -> usize {
        if self.same_fields {
            self.items.len()
        } else {
            self.items.len() / 2
        }
    }

    /// The flags element: deleted, same fields as the master entry.
    pub fn flags(&self) -> i64 {
        (if self.deleted { FLAG_DELETED } else { 0 })
            | if self.same_fields { FLAG_SAMEFIELDS } else { 0 }
    }

    /// Listpack elements this entry takes besides its `lp-count`.
    pub fn lp_count(&self) -> i64 {
        let n = self.fields_count() as i64;
        if self.same_fields {
            3 + n
        } else {
            3 + 1 + 2 * n
        }
    }

    /// The entry's listpack elements under master ID `master`, as Redis
    /// lays them out: flags, the ID as deltas, the field count (unless the
    /// fields are the master's), fields and values (or values), lp-count.
    pub fn elements(&self, master: StreamId) -> impl Iterator<Item = Element<'_>> {
        let head = [
            Element::Int(self.flags()),
            Element::Int(self.id.ms.wrapping_sub(master.ms) as i64),
            Element::Int(self.id.seq.wrapping_sub(master.seq) as i64),
        ];
        let count = (!self.same_fields).then(|| Element::Int(self.fields_count() as i64));
        head.into_iter()
            .chain(count)
            .chain(self.items.iter().map(|i| Element::Str(i)))
            .chain(std::iter::once(Element::Int(self.lp_count())))
    }

    /// Bytes of its listpack elements, under master ID `master`.
    fn lp_size(&self, master: StreamId) -> usize {
        self.elements(master).map(|e| e.size()).sum()
    }
}

/// One element of a node's listpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element<'a> {
    Int(i64),
    /// Stored as an integer when it is canonical integer text.
    Str(&'a [u8]),
}

impl Element<'_> {
    fn size(&self) -> usize {
        match self {
            Element::Int(v) => lp_int_size(*v),
            Element::Str(s) => lp_str_size(s),
        }
    }
}

/// One node: the entries of one Redis listpack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub master_fields: Box<[Bytes]>,
    /// In ID order, tombstones included.
    pub entries: Vec<Entry>,
    /// Entries not deleted.
    pub live: u64,
    /// Entries deleted but still here.
    pub deleted: u64,
    /// The size of this node's listpack.
    lp_bytes: usize,
}

impl Node {
    /// A node from its parts (a loaded listpack), its size computed.
    pub fn new(master: StreamId, master_fields: Box<[Bytes]>, entries: Vec<Entry>) -> Node {
        let live = entries.iter().filter(|e| !e.deleted).count() as u64;
        let deleted = entries.len() as u64 - live;
        let mut node = Node {
            master_fields,
            entries,
            live,
            deleted,
            lp_bytes: 0,
        };
        node.lp_bytes = node.computed_lp_bytes(master);
        node
    }

    /// The master entry's listpack elements: live and deleted counts,
    /// the master fields, and the 0 that ends it.
    pub fn master_elements(&self) -> impl Iterator<Item = Element<'_>> {
        [
            Element::Int(self.live as i64),
            Element::Int(self.deleted as i64),
            Element::Int(self.master_fields.len() as i64),
        ]
        .into_iter()
        .chain(self.master_fields.iter().map(|f| Element::Str(f)))
        .chain(std::iter::once(Element::Int(0)))
    }

    fn master_size(&self) -> usize {
        self.master_elements().map(|e| e.size()).sum()
    }

    fn computed_lp_bytes(&self, master: StreamId) -> usize {
        LP_OVERHEAD
            + self.master_size()
            + self
                .entries
                .iter()
                .map(|e| e.lp_size(master))
                .sum::<usize>()
    }

    pub fn lp_bytes(&self) -> usize {
        self.lp_bytes
    }

    /// Changes the live/deleted counters, keeping the size exact.
    fn set_counts(&mut self, live: u64, deleted: u64) {
        let before = lp_int_size(self.live as i64) + lp_int_size(self.deleted as i64);
        let after = lp_int_size(live as i64) + lp_int_size(deleted as i64);
        self.lp_bytes = self.lp_bytes + after - before;
        self.live = live;
        self.deleted = deleted;
    }

    /// The last entry's ID, tombstones included.
    fn last_id(&self) -> Option<StreamId> {
        self.entries.last().map(|e| e.id)
    }
}

// -------------------------------------------------------------- stream --

/// What to trim a stream to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// At most this many entries.
    MaxLen(u64),
    /// No entry below this ID.
    MinId(StreamId),
}

/// Node limits (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// A listpack may not grow past this (Redis's STREAM_LISTPACK_MAX_SIZE).
pub const LISTPACK_MAX_SIZE: usize = 1 << 30;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamValue {
    /// Nodes by their master ID (the first entry they were created with).
    nodes: BTreeMap<StreamId, Node>,
    /// Live entries.
    length: u64,
    /// The greatest ID ever added (or set by XSETID).
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub first_id: StreamId,
    /// The greatest ID deleted by XDEL.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Bytes, Group>,
}

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }

    /// A stream from loaded parts, its length counted from the nodes.
    pub fn from_parts(
        nodes: Vec<(StreamId, Node)>,
        last_id: StreamId,
        first_id: StreamId,
        max_deleted_id: StreamId,
        entries_added: u64,
    ) -> StreamValue {
        let length = nodes.iter().map(|(_, n)| n.live).sum();
        StreamValue {
            nodes: nodes.into_iter().collect(),
            length,
            last_id,
            first_id,
            max_deleted_id,
            entries_added,
            groups: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Nodes in ID order, with their master IDs.
    pub fn nodes(&self) -> impl Iterator<Item = (&StreamId, &Node)> {
        self.nodes.iter()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes, roughly (MEMORY USAGE).
    pub fn payload_bytes(&self) -> usize {
        let nodes: usize = self.nodes.values().map(|n| n.lp_bytes + 64).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                name.len()
                    + 64
                    + g.pending.len() * 96
                    + g.consumers.keys().map(|c| c.len() + 64).sum::<usize>()
            })
            .sum();
        nodes + groups
    }

    /// Appends an entry with ID `id` (greater than `last_id`, checked by
    /// the caller) and `pairs` (field, value, ...), starting a new node as
    /// Redis does when the tail one is full.
    pub fn append(&mut self, id: StreamId, pairs: &[Bytes], limits: NodeLimits) {
        let total: usize = pairs.iter().map(|p| p.len()).sum();
        let max_bytes = match limits.max_bytes {
            0 => LISTPACK_MAX_SIZE,
            n => n.min(LISTPACK_MAX_SIZE),
        };
        let tail_full = match self.nodes.last_key_value() {
            None => true,
            Some((_, node)) => {
                node.lp_bytes + total >= max_bytes
                    || (limits.max_entries > 0 && node.live + node.deleted >= limits.max_entries)
            }
        };
        if tail_full {
            let master_fields: Box<[Bytes]> = pairs.iter().step_by(2).cloned().collect();
            let mut node = Node {
                master_fields,
                entries: Vec::new(),
                live: 0,
                deleted: 0,
                lp_bytes: 0,
            };
            node.lp_bytes = node.computed_lp_bytes(id);
            self.nodes.insert(id, node);
        }
        let Some((&master, node)) = self.nodes.iter_mut().next_back() else {
            return;
        };
        let same_fields = node.master_fields.len() * 2 == pairs.len()
            && node
                .master_fields
                .iter()
                .zip(pairs.iter().step_by(2))
                .all(|(m, f)| m == f);
        let items: Box<[Bytes]> = if same_fields {
            pairs.iter().skip(1).step_by(2).cloned().collect()
        } else {
            pairs.to_vec().into_boxed_slice()
        };
        let entry = Entry {
            id,
            deleted: false,
            same_fields,
            items,
        };
        node.lp_bytes += entry.lp_size(master);
        node.entries.push(entry);
        let (live, deleted) = (node.live + 1, node.deleted);
        node.set_counts(live, deleted);
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// Live entries from `start` to `end` (inclusive), ascending or (`rev`)
    /// descending, at most `count` of them (0: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<(StreamId, Vec<(Bytes, Bytes)>)> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        // The node holding `start` may begin before it.
        let from = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let nodes = self.nodes.range(from..=end);
        let mut take = |node: &Node, e: &Entry| -> bool {
            if e.deleted || e.id < start || e.id > end {
                return true;
            }
            let pairs = e
                .pairs(&node.master_fields)
                .into_iter()
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect();
            out.push((e.id, pairs));
            count == 0 || out.len() < count
        };
        if rev {
            for (_, node) in nodes.rev() {
                for e in node.entries.iter().rev() {
                    if !take(node, e) {
                        return out;
                    }
                }
            }
        } else {
            for (_, node) in nodes {
                for e in &node.entries {
                    if !take(node, e) {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// The first or last live entry's ID.
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        let live = |n: &Node| -> Option<StreamId> {
            if first {
                n.entries.iter().find(|e| !e.deleted).map(|e| e.id)
            } else {
                n.entries.iter().rev().find(|e| !e.deleted).map(|e| e.id)
            }
        };
        if first {
            self.nodes.values().find_map(live)
        } else {
            self.nodes.values().rev().find_map(live)
        }
    }

    /// The first entry's ID, tombstones included (Redis's
    /// `streamGetEdgeID(s, 1, 0)`), or the greatest ID when there is none.
    pub fn first_id_with_tombstones(&self) -> StreamId {
        self.nodes
            .values()
            .find_map(|n| n.entries.first().map(|e| e.id))
            .unwrap_or(StreamId::MAX)
    }

    /// Deletes the entry `id` (XDEL); true if it was there and live. A
    /// node left with no live entry goes.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Ok(i) = node.entries.binary_search_by(|e| e.id.cmp(&id)) else {
            return false;
        };
        if node.entries[i].deleted {
            return false;
        }
        node.entries[i].deleted = true;
        let (live, deleted) = (node.live - 1, node.deleted + 1);
        node.set_counts(live, deleted);
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.length -= 1;
        true
    }

    /// Trims as Redis's `streamTrim` does: whole nodes from the head while
    /// they can go entirely; then, unless `approx`, tombstones inside the
    /// next node. `limit` (0: none) bounds the entries removed by whole
    /// nodes. Returns the entries removed and updates `first_id`.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if let Trim::MaxLen(max) = trim {
                if self.length <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter_mut().next() else {
                break;
            };
            let entries = node.live;
            if limit > 0 && removed + entries > limit {
                break;
            }
            let whole = match trim {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last_id().is_some_and(|last| last < min),
            };
            if whole {
                self.nodes.remove(&master);
                self.length -= entries;
                removed += entries;
                continue;
            }
            if approx {
                break;
            }
            let mut here = 0u64;
            for e in node.entries.iter_mut() {
                let stop = match trim {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if !e.deleted {
                    e.deleted = true;
                    here += 1;
                    self.length -= 1;
                }
            }
            let (live, deleted) = (node.live - here, node.deleted + here);
            node.set_counts(live, deleted);
            removed += here;
            break;
        }
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true).unwrap_or(StreamId::MIN)
        };
        removed
    }

    /// How many nodes Redis's radix tree of this stream's nodes has (XINFO
    /// STREAM's `radix-tree-nodes`), counted for the compressed trie of
    /// the 16-byte big-endian master IDs: a node per branching point, per
    /// run of single-child bytes, and per key end; an empty tree is its
    /// root alone.
    pub fn radix_nodes(&self) -> usize {
        fn key(id: &StreamId) -> [u8; 16] {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&id.ms.to_be_bytes());
            k[8..].copy_from_slice(&id.seq.to_be_bytes());
            k
        }
        fn count(keys: &[[u8; 16]], depth: usize) -> usize {
            if depth == 16 || keys.is_empty() {
                return 1;
            }
            let shared = |d: usize| keys.iter().all(|k| k[d] == keys[0][d]);
            if shared(depth) {
                let mut end = depth + 1;
                while end < 16 && shared(end) {
                    end += 1;
                }
                return 1 + count(keys, end);
            }
            let mut total = 1;
            let mut i = 0;
            while i < keys.len() {
                let b = keys[i][depth];
                let run = keys[i..].iter().take_while(|k| k[depth] == b).count();
                total += count(&keys[i..i + run], depth + 1);
                i += run;
            }
            total
        }
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(key).collect();
        count(&keys, 0)
    }

    /// Checks the size bookkeeping against a full count (tests).
    #[cfg(test)]
    fn check_sizes(&self) {
        for (master, node) in &self.nodes {
            assert_eq!(node.lp_bytes, node.computed_lp_bytes(*master));
        }
        let live: u64 = self.nodes.values().map(|n| n.live).sum();
        assert_eq!(live, self.length);
    }
}

#[cfg(test)]
mod tests;
