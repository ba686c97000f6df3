//! Streams in RDB files: a node of the keyspace's stream as the listpack
//! Redis keeps it (master entry, then each entry with its ID as deltas
//! from the master ID, fields omitted when they are the master's), and a
//! node back from such a listpack, checked as Redis's deep integrity check
//! does. The value's framing (node count, IDs, counters, consumer groups)
//! is read and written by the decoder and encoder around these.

use super::blobs::{listpack_entries, write_listpack_items, LpItem};
use crate::keyspace::stream::{Element, Entry, Node, FLAG_DELETED, FLAG_SAMEFIELDS};
use crate::keyspace::StreamId;
use bytes::Bytes;

/// A node's master ID as its 16-byte radix tree key (big-endian ms, seq).
pub fn node_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

pub fn parse_node_key(k: &[u8]) -> Option<StreamId> {
    let k: &[u8; 16] = k.try_into().ok()?;
    let ms = u64::from_be_bytes(k[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(k[8..].try_into().ok()?);
    Some(StreamId::new(ms, seq))
}

/// The listpack of a node whose master ID is `master`.
pub fn node_listpack(master: StreamId, node: &Node) -> Vec<u8> {
    fn as_item(e: Element<'_>) -> LpItem<'_> {
        match e {
            Element::Int(v) => LpItem::Int(v),
            Element::Str(s) => LpItem::Str(s),
        }
    }
    let entries = node.entries.iter().flat_map(|e| e.elements(master));
    write_listpack_items(node.master_elements().chain(entries).map(as_item))
}

/// Reads the elements of a node's listpack in order.
struct Cursor {
    items: Vec<Bytes>,
    at: usize,
}

impl Cursor {
    fn raw(&mut self) -> Result<Bytes, String> {
        let item = self
            .items
            .get(self.at)
            .cloned()
            .ok_or_else(|| "stream listpack ends inside an entry".to_string())?;
        self.at += 1;
        Ok(item)
    }

    fn int(&mut self) -> Result<i64, String> {
        let item = self.raw()?;
        crate::util::num::parse_i64_strict(&item)
            .ok_or_else(|| "stream listpack has a string where an integer belongs".to_string())
    }

    fn count(&mut self) -> Result<usize, String> {
        usize::try_from(self.int()?).map_err(|_| "negative count in a stream listpack".to_string())
    }

    fn done(&self) -> bool {
        self.at == self.items.len()
    }
}

/// A node from its listpack, master ID `master`: every count and ID
/// checked (IDs ascending, counters matching the entries).
pub fn parse_node(master: StreamId, lp: &[u8]) -> Result<Node, String> {
    let items = listpack_entries(lp)?;
    if items.is_empty() {
        return Err("empty listpack inside stream".into());
    }
    let mut c = Cursor { items, at: 0 };
    let live = c.count()?;
    let deleted = c.count()?;
    let nfields = c.count()?;
    let mut master_fields = Vec::with_capacity(nfields.min(1024));
    for _ in 0..nfields {
        master_fields.push(c.raw()?);
    }
    if c.int()? != 0 {
        return Err("stream master entry is not terminated by 0".into());
    }
    let mut entries: Vec<Entry> = Vec::new();
    while !c.done() {
        let flags = c.int()?;
        if flags & !(FLAG_DELETED | FLAG_SAMEFIELDS) != 0 {
            return Err(format!("unknown stream entry flags {flags}"));
        }
        let ms = master.ms.wrapping_add(c.int()? as u64);
        let seq = master.seq.wrapping_add(c.int()? as u64);
        let id = StreamId::new(ms, seq);
        if entries.last().is_some_and(|e| e.id >= id) || id < master {
            return Err(format!("stream entry ID {id} out of order"));
        }
        let same_fields = flags & FLAG_SAMEFIELDS != 0;
        let count = if same_fields {
            nfields
        } else {
            c.count()?.checked_mul(2).ok_or("stream entry too large")?
        };
        let mut item_vec = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            item_vec.push(c.raw()?);
        }
        let entry = Entry {
            id,
            deleted: flags & FLAG_DELETED != 0,
            same_fields,
            items: item_vec.into_boxed_slice(),
        };
        if c.int()? != entry.lp_count() {
            return Err("stream entry lp-count does not match the entry".into());
        }
        entries.push(entry);
    }
    let node = Node::new(master, master_fields.into_boxed_slice(), entries);
    if node.live != live as u64 || node.deleted != deleted as u64 {
        return Err("stream master entry counters do not match its entries".into());
    }
    if node.live == 0 {
        return Err("stream node without live entries".into());
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::stream::{NodeLimits, StreamValue};

    #[test]
    fn nodes_round_trip_through_listpacks_of_the_size_counted() {
        let mut s = StreamValue::new();
        let b = |x: &str| Bytes::from(x.to_string());
        let lim = NodeLimits {
            max_bytes: 4096,
            max_entries: 4,
        };
        for i in 1..=10u64 {
            let pairs = if i % 3 == 0 {
                vec![b("other"), b(&"v".repeat(i as usize * 30)), b("n"), b("-5")]
            } else {
                vec![b("f"), b(&i.to_string())]
            };
            s.append(StreamId::new(i * 1_000_000_000_000, i), &pairs, lim);
        }
        s.delete(StreamId::new(2_000_000_000_000, 2));
        for (master, node) in s.nodes() {
            let lp = node_listpack(*master, node);
            assert_eq!(lp.len(), node.lp_bytes(), "the size Redis's listpack has");
            assert_eq!(&parse_node(*master, &lp).unwrap(), node);
            assert_eq!(parse_node_key(&node_key(*master)), Some(*master));
        }
    }

    #[test]
    fn broken_node_listpacks_are_refused() {
        let master = StreamId::new(5, 0);
        let items = |xs: &[LpItem<'_>]| write_listpack_items(xs.iter().copied());
        use LpItem::{Int, Str};
        // Counters that lie, an ID going back, a bad lp-count, a cut entry.
        for lp in [
            items(&[
                Int(2),
                Int(0),
                Int(1),
                Str(b"f"),
                Int(0),
                Int(2),
                Int(0),
                Int(0),
                Str(b"v"),
                Int(4),
            ]),
            items(&[
                Int(2),
                Int(0),
                Int(1),
                Str(b"f"),
                Int(0),
                Int(2),
                Int(1),
                Int(0),
                Str(b"v"),
                Int(4),
                Int(2),
                Int(0),
                Int(0),
                Str(b"v"),
                Int(4),
            ]),
            items(&[
                Int(1),
                Int(0),
                Int(1),
                Str(b"f"),
                Int(0),
                Int(2),
                Int(0),
                Int(0),
                Str(b"v"),
                Int(9),
            ]),
            items(&[
                Int(1),
                Int(0),
                Int(1),
                Str(b"f"),
                Int(0),
                Int(2),
                Int(0),
                Int(0),
            ]),
            items(&[]),
        ] {
            assert!(parse_node(master, &lp).is_err());
        }
        let good = items(&[
            Int(1),
            Int(0),
            Int(1),
            Str(b"f"),
            Int(0),
            Int(2),
            Int(0),
            Int(0),
            Str(b"v"),
            Int(4),
        ]);
        assert!(parse_node(master, &good).is_ok());
    }
}
