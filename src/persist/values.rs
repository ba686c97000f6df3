//! Between the keyspace's values and the RDB codec: which encoding a
//! loaded value gets ([`from_rdb`], by the same thresholds as live writes)
//! and how a stored value is written ([`write_entry`]: strings as strings,
//! hashes as RDB_TYPE_HASH, intsets as SET_INTSET, other sets as
//! RDB_TYPE_SET, lists as LIST_QUICKLIST_2 one listpack per node, sorted
//! sets as ZSET_2; every one a type Redis 7.0 loads). No I/O here: bytes go
//! through the encoder's sink.

use super::rdb::{RdbEncoder, RdbSink, RdbValue};
use crate::keyspace::{HashValue, Limits, ListValue, SetValue, StrValue, Value, ZsetValue};

/// The value to store for a loaded one, or `None` for an empty collection
/// (Redis skips those keys when loading).
pub fn from_rdb(v: RdbValue, lim: &Limits) -> Option<Value> {
    match v {
        RdbValue::String(s) => Some(Value::Str(StrValue::from_set(s))),
        RdbValue::Hash(pairs) if pairs.is_empty() => None,
        RdbValue::Hash(pairs) => Some(Value::Hash(HashValue::from_pairs(
            pairs.iter().map(|(f, v)| (f.as_ref(), v.as_ref())),
            pairs.len(),
            lim,
        ))),
        RdbValue::Set(members) if members.is_empty() => None,
        RdbValue::Set(members) => Some(Value::Set(SetValue::from_members(
            members.iter().map(|m| m.as_ref()),
            members.len(),
            lim,
        ))),
        RdbValue::Zset(pairs) if pairs.is_empty() => None,
        RdbValue::Zset(pairs) => Some(Value::Zset(ZsetValue::from_pairs(pairs, lim))),
        RdbValue::List(items) if items.is_empty() => None,
        RdbValue::List(items) => Some(Value::List(Box::new(ListValue::from_items(
            items.iter().map(|i| i.as_ref()),
            crate::node::list_fill(),
        )))),
    }
}

/// Writes one key with its value and expiry.
pub fn write_entry<S: RdbSink>(
    enc: &mut RdbEncoder<S>,
    key: &[u8],
    value: &Value,
    expire_at_ms: Option<u64>,
) -> std::io::Result<()> {
    match value {
        Value::Str(s) => enc.string_entry(key, s.bytes(), expire_at_ms),
        Value::Hash(h) => enc.hash_entry(key, h.len(), h.iter(), expire_at_ms),
        Value::Set(SetValue::Intset(ints)) => enc.intset_entry(key, ints, expire_at_ms),
        Value::Set(s) => {
            let members: Vec<bytes::Bytes> = s.iter().map(|m| m.to_bytes()).collect();
            enc.set_entry(
                key,
                members.len(),
                members.iter().map(|m| m.as_ref()),
                expire_at_ms,
            )
        }
        Value::Zset(z) => enc.zset_entry(
            key,
            z.len(),
            z.iter().map(|(m, s)| (m.as_ref(), s)),
            expire_at_ms,
        ),
        Value::List(l) => enc.list_entry(key, l.nodes().map(|(_, n)| n), expire_at_ms),
    }
}
