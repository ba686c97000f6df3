//! A stream's consumer groups, as Redis 7.0 keeps them: per group the last
//! delivered ID, the count of entries it has read (`entries_read`, or
//! unknown), the pending entries list (PEL: delivered, not acknowledged,
//! each with its consumer, delivery time and delivery count) and the
//! consumers, each with the time it was last seen and its own part of the
//! PEL. Groups and consumers are kept in name order (Redis's radix trees),
//! pending entries in ID order.
//!
//! Also here: the counters Redis derives from a stream's history to give a
//! group's lag (`entries_read` estimated from the stream's first, last and
//! greatest deleted IDs), with the same rules, so XINFO agrees with Redis
//! after any mix of adds, deletes and trims.
//!
//! Pure data structure: no commands, no I/O.

use super::{StreamId, StreamValue};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// `entries_read` when it is not known (Redis's SCG_INVALID_ENTRIES_READ).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// One delivered, not yet acknowledged entry (Redis's NACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Unix time of the last delivery, ms.
    pub delivery_ms: i64,
    pub deliveries: u64,
    pub consumer: Bytes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix time this consumer last read or claimed, ms.
    pub seen_ms: i64,
    /// The IDs of the group's pending entries that are this consumer's.
    pub pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, or [`ENTRIES_READ_UNKNOWN`].
    pub entries_read: i64,
    pub pending: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pending: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Makes sure consumer `name` exists; true when it was created (seen
    /// now).
    pub fn add_consumer(&mut self, name: &Bytes, now_ms: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.clone(),
            Consumer {
                seen_ms: now_ms,
                pending: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes consumer `name` and its pending entries; how many it had.
    pub fn remove_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pending.remove(id);
        }
        Some(consumer.pending.len())
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    /// Makes `id` pending for `consumer` (which must exist), moving it
    /// from the consumer it had, with the delivery time and count given.
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, delivery_ms: i64, deliveries: u64) {
        if let Some(old) = self.pending.get(&id) {
            if old.consumer != consumer {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pending.remove(&id);
                }
            }
        }
        self.pending.insert(
            id,
            Pending {
                delivery_ms,
                deliveries,
                consumer: consumer.clone(),
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Checks that every pending entry belongs to exactly one existing
    /// consumer's list and the other way round (a loaded group).
    pub fn check(&self) -> Result<(), String> {
        let mut owned = 0usize;
        for (name, c) in &self.consumers {
            for id in &c.pending {
                match self.pending.get(id) {
                    Some(p) if p.consumer == name => owned += 1,
                    _ => return Err(format!("consumer PEL entry {id} not in the group PEL")),
                }
            }
        }
        if owned != self.pending.len() {
            return Err("group PEL entry without a consumer".into());
        }
        Ok(())
    }
}

impl StreamValue {
    /// Whether a deleted entry may lie between `start` and `end`
    /// (Redis's streamRangeHasTombstones: only the greatest deleted ID is
    /// known).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.is_empty() || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// How many entries were added up to `id`, when the stream's counters
    /// tell (Redis's streamEstimateDistanceFromFirstEverEntry).
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        let no_fragments =
            self.max_deleted_id == StreamId::MIN || self.max_deleted_id < self.first_id;
        if no_fragments {
            if id < self.first_id {
                return added - self.len() as i64;
            }
            if id == self.first_id {
                return added - self.len() as i64 + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// A group's lag: entries added it has not read, when known.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let added = self.entries_added as i64;
        if g.entries_read != ENTRIES_READ_UNKNOWN
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some(added - g.entries_read);
        }
        match self.estimate_entries_read(g.last_id) {
            ENTRIES_READ_UNKNOWN => None,
            read => Some(added - read),
        }
    }

    /// Moves group `g`'s last delivered ID to `id` (an entry it is being
    /// served), counting the read as Redis does.
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.range_has_tombstones(id, StreamId::MAX) {
            g.entries_read += 1;
        } else if self.entries_added > 0 {
            g.entries_read = self.estimate_entries_read(id);
        }
        g.last_id = id;
    }

    /// Whether a live entry `id` exists.
    pub fn contains(&self, id: StreamId) -> bool {
        !self.range(id, id, false, 1).is_empty()
    }

    /// The fields and values of live entry `id`.
    pub fn entry(&self, id: StreamId) -> Option<Vec<(Bytes, Bytes)>> {
        self.range(id, id, false, 1).pop().map(|(_, pairs)| pairs)
    }

    /// Pending entries over all groups (MEMORY USAGE, DEBUG).
    pub fn pending_count(&self) -> usize {
        self.groups.values().map(|g| g.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::stream::NodeLimits;

    fn stream(n: u64) -> StreamValue {
        let mut s = StreamValue::new();
        for i in 1..=n {
            s.append(
                StreamId::new(i, 0),
                &[Bytes::from_static(b"f"), Bytes::from_static(b"v")],
                NodeLimits::default(),
            );
        }
        s
    }

    #[test]
    fn lag_counts_entries_not_read_and_turns_unknown_past_a_tombstone() {
        let mut s = stream(5);
        let mut g = Group::new(StreamId::MIN, ENTRIES_READ_UNKNOWN);
        // Before the first entry: everything is lag.
        assert_eq!(s.estimate_entries_read(StreamId::MIN), 0);
        assert_eq!(s.group_lag(&g), Some(5));
        s.advance_group(&mut g, StreamId::new(1, 0));
        assert_eq!(g.entries_read, 1);
        s.advance_group(&mut g, StreamId::new(2, 0));
        assert_eq!((g.entries_read, s.group_lag(&g)), (2, Some(3)));
        // A deletion ahead of the group makes the count unknowable.
        s.delete(StreamId::new(4, 0));
        s.max_deleted_id = StreamId::new(4, 0);
        assert_eq!(s.group_lag(&g), None);
        s.advance_group(&mut g, StreamId::new(3, 0));
        assert_eq!(g.entries_read, ENTRIES_READ_UNKNOWN);
        // At the last ID the count is exact again.
        s.advance_group(&mut g, StreamId::new(5, 0));
        assert_eq!((g.entries_read, s.group_lag(&g)), (5, Some(0)));
    }

    #[test]
    fn pending_entries_move_between_consumers() {
        let mut g = Group::new(StreamId::MIN, 0);
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        assert!(g.add_consumer(&a, 1));
        assert!(!g.add_consumer(&a, 2));
        g.add_consumer(&b, 1);
        let id = StreamId::new(1, 0);
        g.assign(id, &a, 10, 1);
        g.assign(id, &b, 20, 2);
        assert!(g.consumers[&a].pending.is_empty());
        assert!(g.consumers[&b].pending.contains(&id));
        assert_eq!(g.pending[&id].deliveries, 2);
        g.check().unwrap();
        assert_eq!(g.remove_consumer(b"b"), Some(1));
        assert!(g.pending.is_empty());
        g.assign(id, &a, 30, 1);
        assert!(g.ack(id));
        assert!(!g.ack(id));
        g.check().unwrap();
    }
}
