//! Tests of hashes and sets in the RDB codec: a dump written by Redis
//! 7.0.15 (committed as a fixture), hand-built entries of every hash and
//! set encoding a Redis 7.x may write (plain, zipmap, ziplist, listpack,
//! intset, set listpack), round trips through our encoder, and corruption
//! (duplicates, odd pair counts, truncations, random mutations), which
//! must give errors, never panics.

use bytes::Bytes;

use super::blobs::write_intset;
use super::crc64::crc64;
use super::format;
use super::{EncodeOptions, RdbDecoder, RdbEncoder, RdbEntry, RdbError, RdbItem, RdbValue};

const REDIS_FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/redis-7.0.15-hash-set.rdb");

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn entries(data: &[u8]) -> Result<Vec<RdbEntry>, RdbError> {
    let mut dec = RdbDecoder::new(data)?;
    let mut out = Vec::new();
    loop {
        match dec.next()? {
            RdbItem::Entry(e) => out.push(e),
            RdbItem::Eof => return Ok(out),
            _ => {}
        }
    }
}

/// The value with its elements sorted (file order is not what we check).
fn canon(v: &RdbValue) -> RdbValue {
    match v {
        RdbValue::Hash(p) => {
            let mut p = p.clone();
            p.sort();
            RdbValue::Hash(p)
        }
        RdbValue::Set(m) => {
            let mut m = m.clone();
            m.sort();
            RdbValue::Set(m)
        }
        other => other.clone(),
    }
}

fn hash(pairs: &[(&str, &str)]) -> RdbValue {
    canon(&RdbValue::Hash(
        pairs.iter().map(|(f, v)| (b(f), b(v))).collect(),
    ))
}

fn set(members: &[&str]) -> RdbValue {
    canon(&RdbValue::Set(members.iter().map(|m| b(m)).collect()))
}

#[test]
fn redis_written_hashes_and_sets_decode() {
    let mut got: Vec<(Bytes, RdbValue, Option<u64>)> = entries(REDIS_FIXTURE)
        .expect("Redis's dump decodes")
        .into_iter()
        .map(|e| (e.key, canon(&e.value), e.expire_at_ms))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want = vec![
        (
            b("h:ht"),
            hash(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]),
            None,
        ),
        (
            b("h:lp"),
            hash(&[("a", "1"), ("b", "hello"), ("c", "-7"), ("d", "100000")]),
            None,
        ),
        (b("h:ttl"), hash(&[("f", "v")]), Some(4_102_444_800_000)),
        (b("s:bigint"), set(&["1", "2", "3", "4", "5"]), None),
        (b("s:ht"), set(&["x", "y", "z"]), None),
        (b("s:int"), set(&["-2", "1", "300", "70000"]), None),
    ];
    assert_eq!(got, want);
}

/// A v10 file around `body`, with its checksum.
pub(super) fn file(body: &[u8]) -> Vec<u8> {
    let mut v = format::header(10).expect("version").to_vec();
    v.extend_from_slice(body);
    v.push(format::OP_EOF);
    let crc = crc64(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// `type key value-bytes` (the value already encoded).
pub(super) fn entry(ty: u8, key: &str, value: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    raw_string(key.as_bytes(), &mut v);
    v.extend_from_slice(value);
    v
}

pub(super) fn raw_string(s: &[u8], out: &mut Vec<u8>) {
    format::encode_len(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// A length then strings: `count` is the set's members or the hash's
/// pairs.
pub(super) fn strings(count: usize, items: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    format::encode_len(count as u64, &mut v);
    for i in items {
        raw_string(i, &mut v);
    }
    v
}

/// A listpack of strings (str6 entries) and small uints.
fn listpack(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in items {
        let start = body.len();
        match std::str::from_utf8(i)
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
        {
            Some(n) if n < 128 && i.len() == n.to_string().len() => body.push(n),
            _ => {
                body.push(0x80 | i.len() as u8);
                body.extend_from_slice(i);
            }
        }
        let len = body.len() - start;
        body.push(len as u8);
    }
    let mut out = ((6 + body.len() + 1) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(items.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xFF);
    out
}

/// A ziplist of short strings.
pub(super) fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut last = 10;
    for i in items {
        last = 10 + body.len();
        let start = body.len();
        body.push(prev as u8);
        body.push(i.len() as u8);
        body.extend_from_slice(i);
        prev = body.len() - start;
    }
    let mut out = ((10 + body.len() + 1) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(last as u32).to_le_bytes());
    out.extend_from_slice(&(items.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xFF);
    out
}

pub(super) fn blob(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    raw_string(bytes, &mut v);
    v
}

#[test]
fn every_hash_and_set_encoding_decodes() {
    let zipmap = [2, 1, b'a', 1, 0, b'1', 1, b'b', 2, 0, b'2', b'2', 0xFF];
    let cases: Vec<(Vec<u8>, RdbValue)> = vec![
        (
            entry(
                format::TYPE_HASH,
                "k",
                &strings(2, &[b"f", b"v", b"g", b""]),
            ),
            hash(&[("f", "v"), ("g", "")]),
        ),
        (
            entry(format::TYPE_HASH_ZIPMAP, "k", &blob(&zipmap)),
            hash(&[("a", "1"), ("b", "22")]),
        ),
        (
            entry(
                format::TYPE_HASH_ZIPLIST,
                "k",
                &blob(&ziplist(&[b"f", b"v", b"g", b"w"])),
            ),
            hash(&[("f", "v"), ("g", "w")]),
        ),
        (
            entry(
                format::TYPE_HASH_LISTPACK,
                "k",
                &blob(&listpack(&[b"f", b"7", b"g", b"w"])),
            ),
            hash(&[("f", "7"), ("g", "w")]),
        ),
        (
            entry(format::TYPE_SET, "k", &strings(3, &[b"x", b"1", b""])),
            set(&["x", "1", ""]),
        ),
        (
            entry(format::TYPE_SET_INTSET, "k", &blob(&write_intset(&[-9, 4]))),
            set(&["-9", "4"]),
        ),
        (
            entry(
                format::TYPE_SET_LISTPACK,
                "k",
                &blob(&listpack(&[b"a", b"12", b"bc"])),
            ),
            set(&["a", "12", "bc"]),
        ),
    ];
    for (body, want) in cases {
        let got = entries(&file(&body)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), 1);
        assert_eq!(canon(&got[0].value), want, "type {}", body[0]);
    }
}

#[test]
fn duplicates_odd_counts_and_bad_blobs_are_corruption() {
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (
            entry(format::TYPE_SET, "k", &strings(2, &[b"x", b"x"])),
            "duplicate member",
        ),
        (
            entry(
                format::TYPE_HASH,
                "k",
                &strings(2, &[b"f", b"1", b"f", b"2"]),
            ),
            "duplicate field",
        ),
        (
            entry(
                format::TYPE_HASH_LISTPACK,
                "k",
                &blob(&listpack(&[b"f", b"v", b"g"])),
            ),
            "odd number",
        ),
        (
            entry(
                format::TYPE_SET_INTSET,
                "k",
                &blob(&[2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 1, 0]),
            ),
            "ascending",
        ),
        (
            entry(format::TYPE_HASH_ZIPLIST, "k", &blob(b"not a ziplist")),
            "ziplist",
        ),
        (
            entry(
                format::TYPE_SET_LISTPACK,
                "k",
                &blob(&listpack(&[b"a", b"a"])),
            ),
            "duplicate member",
        ),
    ];
    for (body, what) in bad {
        match entries(&file(&body)) {
            Err(RdbError::Corrupt { offset, what: msg }) => {
                assert!(msg.contains(what) && msg.contains("\"k\""), "{msg}");
                assert_eq!(offset, 12, "{msg}");
            }
            other => panic!("expected corruption ({what}), got {other:?}"),
        }
    }
}

fn encoded(values: &[(&str, RdbValue)]) -> Vec<u8> {
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    enc.select_db(0, values.len() as u64, 0).expect("select");
    for (k, v) in values {
        enc.entry(k.as_bytes(), v, Some(1_000)).expect("entry");
    }
    enc.intset_entry(b"ints", &[-70000, 3, 1 << 40], None)
        .expect("intset");
    enc.finish().expect("finish")
}

#[test]
fn our_hashes_and_sets_round_trip() {
    let long = "y".repeat(100);
    let values = vec![
        ("h", hash(&[("f", "1"), ("g", &long), ("", "")])),
        ("s", set(&["a", "12", &long])),
        ("empty", RdbValue::Set(vec![])),
    ];
    let data = encoded(&values);
    let got = entries(&data).expect("decodes");
    assert_eq!(got.len(), 4);
    for ((k, v), e) in values.iter().zip(&got) {
        assert_eq!((&e.key[..], canon(&e.value)), (k.as_bytes(), v.clone()));
        assert_eq!(e.expire_at_ms, Some(1_000));
    }
    assert_eq!(canon(&got[3].value), set(&["-70000", "3", "1099511627776"]));
    // A collection that yields fewer elements than announced fails the
    // save instead of writing a broken file.
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    assert!(enc
        .set_entry(b"k", 3, [&b"a"[..]].into_iter(), None)
        .is_err());
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    assert!(enc.intset_entry(b"k", &[2, 1], None).is_err());
}

#[test]
fn truncations_and_mutations_never_panic() {
    let long = "z".repeat(300);
    let mut data = encoded(&[
        ("h", hash(&[("f", "1"), ("g", &long)])),
        ("s", set(&["a", "12"])),
    ]);
    data.truncate(data.len() - 9);
    let mut body = data[9..].to_vec();
    body.extend_from_slice(&REDIS_FIXTURE[0x50..REDIS_FIXTURE.len() - 9]);
    let all = file(&body);
    assert!(entries(&all).is_ok());
    for cut in 9..all.len() {
        assert!(entries(&all[..cut]).is_err(), "cut at {cut}");
    }
    // Mutations with the checksum disabled, so the structure checks are
    // what catch them.
    let mut nock = all.clone();
    let n = nock.len();
    nock[n - 8..].fill(0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5000 {
        let mut d = nock.clone();
        let pos = 9 + (next() as usize) % (d.len() - 17);
        d[pos] = next() as u8;
        let _ = entries(&d);
    }
}

/// A stream with two groups: pending entries shared between consumers, a
/// consumer with none, an unknown read count.
fn stream_with_groups() -> crate::keyspace::StreamValue {
    use crate::keyspace::stream::{Group, NodeLimits, StreamValue, ENTRIES_READ_UNKNOWN};
    use crate::keyspace::StreamId;
    let mut s = StreamValue::new();
    for i in 1..=12u64 {
        s.append(
            StreamId::new(i, 0),
            &[b("f"), b(&i.to_string())],
            NodeLimits::default(),
        );
    }
    let mut g = Group::new(StreamId::new(9, 0), 9);
    for c in ["alice", "bob", "idle"] {
        g.add_consumer(&b(c), 1_700_000_000_000);
    }
    for i in 1..=9u64 {
        let who = if i % 3 == 0 { "bob" } else { "alice" };
        g.assign(
            StreamId::new(i, 0),
            &b(who),
            1_700_000_000_000 + i as i64,
            i,
        );
    }
    s.groups.insert(b("workers"), g);
    s.groups.insert(
        b("late"),
        Group::new(StreamId::new(3, 0), ENTRIES_READ_UNKNOWN),
    );
    s
}

#[test]
fn stream_groups_round_trip_and_damage_never_panics() {
    let value = RdbValue::Stream(Box::new(stream_with_groups()));
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    enc.select_db(0, 1, 0).expect("select");
    enc.entry(b"s", &value, None).expect("entry");
    let data = enc.finish().expect("finish");
    let got = entries(&data).expect("decodes");
    let RdbValue::Stream(st) = &got[0].value else {
        panic!("a stream")
    };
    assert_eq!(**st, stream_with_groups());
    for cut in 9..data.len() {
        assert!(entries(&data[..cut]).is_err(), "cut at {cut}");
    }
    // Mutations with the checksum zeroed: whatever loads has consistent
    // groups (every pending entry owned by exactly one consumer).
    let mut nock = data.clone();
    let n = nock.len();
    nock[n - 8..].fill(0);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut refused = 0;
    for _ in 0..5000 {
        let mut d = nock.clone();
        let pos = 9 + (next() as usize) % (d.len() - 17);
        d[pos] = next() as u8;
        match entries(&d) {
            Ok(got) => {
                for e in got {
                    if let RdbValue::Stream(st) = &e.value {
                        for g in st.groups.values() {
                            g.check().expect("loaded groups are consistent");
                        }
                    }
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 1000, "only {refused} mutations refused");
}
