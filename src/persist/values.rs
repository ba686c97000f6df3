//! Between the keyspace's values and the RDB codec: which encoding a
//! loaded value gets ([`from_rdb`], by the same thresholds as live writes)
//! and how a stored value is written ([`write_entry`]: strings as strings,
//! hashes as RDB_TYPE_HASH, intsets as SET_INTSET, other sets as
//! RDB_TYPE_SET, lists as LIST_QUICKLIST_2 one listpack per node, sorted
//! sets as ZSET_2; every one a type Redis 7.0 loads), and the DUMP payload
//! of one value ([`dump_payload`], [`restore_payload`]) and of the function
//! libraries ([`functions_payload`]). No I/O here: bytes
//! go through the encoder's sink.

use super::rdb::{crc64, format, EncodeOptions, RdbDecoder, RdbEncoder, RdbSink, RdbValue};
use crate::keyspace::{HashValue, Limits, ListValue, SetValue, StrValue, Value, ZsetValue};
use bytes::Bytes;

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
        // An empty stream is a value (XDEL and XTRIM leave the key).
        RdbValue::Stream(st) => Some(Value::Stream(st)),
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
        Value::Stream(st) => enc.stream_entry(key, st, expire_at_ms),
    }
}

/// DUMP's serialization of `value`: the value as an RDB writes it (type
/// byte and body, LZF-compressed like a dump), then the RDB version (2
/// bytes) and a CRC64 of all that (8 bytes), little-endian, as Redis 7.0
/// writes it, so its RESTORE takes ours.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let opts = EncodeOptions::default();
    let mut enc = RdbEncoder::bare(Vec::new(), opts);
    // Writing into a Vec cannot fail.
    let _ = write_entry(&mut enc, b"", value, None);
    let mut out = enc.into_sink();
    out.extend_from_slice(&(opts.version as u16).to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION DUMP's payload: a function record (0xF5 and the code) per
/// library, then the RDB version and the CRC64, as Redis 7.0 writes it.
pub fn functions_payload(codes: &[Bytes]) -> Vec<u8> {
    let opts = EncodeOptions::default();
    let mut enc = RdbEncoder::bare(Vec::new(), opts);
    for code in codes {
        // Writing into a Vec cannot fail.
        let _ = enc.function(code);
    }
    let mut out = enc.into_sink();
    out.extend_from_slice(&(opts.version as u16).to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a FUNCTION RESTORE payload, or Redis's error.
pub fn functions_from_payload(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    let bad = || PayloadError::VersionOrChecksum.message().to_string();
    if payload.len() < 10 {
        return Err(bad());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u32::from(u16::from_le_bytes([footer[0], footer[1]]));
    if version > format::MAX_VERSION {
        return Err(bad());
    }
    let crc = crc64::crc64(&payload[..payload.len() - 8]);
    if footer[2..] != crc.to_le_bytes() {
        return Err(bad());
    }
    RdbDecoder::bare_functions(body, body.len() as u64).map_err(|e| match e {
        super::rdb::RdbError::Corrupt { what, .. } if what.contains("is not a function") => {
            "ERR given type is not a function".to_string()
        }
        _ => "ERR failed loading the given functions payload".to_string(),
    })
}

/// Why a DUMP payload was refused, with Redis's error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    VersionOrChecksum,
    BadFormat,
}

impl PayloadError {
    pub fn message(self) -> &'static str {
        match self {
            PayloadError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong",
            PayloadError::BadFormat => "ERR Bad data format",
        }
    }
}

/// The value a DUMP payload holds (RESTORE): its footer checked first
/// (an RDB version we read, the CRC64), then the value decoded and given
/// the encoding a load would give it. An empty collection is bad data,
/// as in Redis.
pub fn restore_payload(payload: &[u8], lim: &Limits) -> Result<Value, PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u32::from(u16::from_le_bytes([footer[0], footer[1]]));
    if version > format::MAX_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let crc = crc64::crc64(&payload[..payload.len() - 8]);
    if footer[2..] != crc.to_le_bytes() {
        return Err(PayloadError::VersionOrChecksum);
    }
    let value = RdbDecoder::bare_value(body, version).map_err(|_| PayloadError::BadFormat)?;
    from_rdb(value, lim).ok_or(PayloadError::BadFormat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::stream::{NodeLimits, StreamValue, Trim};
    use crate::keyspace::StreamId;
    use bytes::Bytes;

    /// A stream of a few nodes, with tombstones.
    fn sample() -> StreamValue {
        let mut s = StreamValue::new();
        let lim = NodeLimits {
            max_bytes: 4096,
            max_entries: 3,
        };
        for i in 1..=10u64 {
            let pairs = [
                Bytes::from(format!("f{}", i % 2)),
                Bytes::from(i.to_string()),
            ];
            s.append(StreamId::new(i, i % 3), &pairs, lim);
        }
        s.delete(StreamId::new(4, 1));
        s
    }

    #[test]
    fn a_stream_round_trips_through_dump_payloads() {
        let v = Value::Stream(Box::new(sample()));
        let payload = dump_payload(&v);
        assert_eq!(restore_payload(&payload, &Limits::default()), Ok(v));
    }

    /// Re-seals a mutated payload body with a valid footer, so the decoder
    /// (not the checksum) meets the damage.
    fn sealed(body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64::crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn damaged_stream_payloads_are_refused_or_usable_never_a_panic() {
        let payload = dump_payload(&Value::Stream(Box::new(sample())));
        let body = &payload[..payload.len() - 10];
        let mut seed = 7u64;
        let mut next = move || crate::util::rand::rand_next(&mut seed);
        let lim = Limits::default();
        let mut loaded = 0;
        for round in 0..4000 {
            let mut b = body.to_vec();
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % b.len();
                match next() % 3 {
                    0 => b[i] = next() as u8,
                    1 => b[i] ^= 1 << (next() % 8),
                    _ => b.truncate(i.max(1)),
                }
            }
            let Ok(Value::Stream(mut s)) = restore_payload(&sealed(&b), &lim) else {
                continue;
            };
            loaded += 1;
            // Whatever loaded must stay usable.
            let _ = s.range(StreamId::MIN, StreamId::MAX, round % 2 == 0, 0);
            let _ = s.delete(StreamId::new(next() % 12, next() % 3));
            if let Some(id) = s.last_id.next() {
                s.append(
                    id,
                    &[Bytes::from_static(b"f"), Bytes::from_static(b"v")],
                    NodeLimits::default(),
                );
            }
            let _ = s.trim(Trim::MaxLen(next() % 8), round % 3 == 0, 0);
            let _ = s.edge_id(true);
        }
        // Some mutations keep a valid stream (a value byte changed).
        assert!(loaded > 0);
    }
}
