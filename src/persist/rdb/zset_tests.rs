//! Tests of sorted sets in the RDB codec: a dump written by Redis 7.0.15
//! (the fixture), hand-built entries of every zset encoding a Redis 7.x
//! may write (ZSET with text scores, ZSET_2, ziplist, listpack), round
//! trips through our encoder, and corruption (duplicates, NaN, odd counts,
//! bad scores, truncations), which must give errors, never panics.

use bytes::Bytes;

use super::crc64::crc64;
use super::format;
use super::{EncodeOptions, RdbDecoder, RdbEncoder, RdbEntry, RdbError, RdbItem, RdbValue};

const REDIS_FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/redis-7.0.15-zset.rdb");

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn entries(data: &[u8]) -> Result<Vec<RdbEntry>, RdbError> {
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

/// The pairs sorted by member (file order is not what we check).
fn pairs(v: &RdbValue) -> Vec<(Bytes, f64)> {
    let RdbValue::Zset(p) = v else {
        panic!("not a zset: {v:?}");
    };
    let mut p = p.clone();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p
}

fn file(body: &[u8]) -> Vec<u8> {
    let mut v = format::header(10).expect("version").to_vec();
    v.extend_from_slice(body);
    v.push(format::OP_EOF);
    let crc = crc64(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

fn raw_string(s: &[u8], out: &mut Vec<u8>) {
    format::encode_len(s.len() as u64, out);
    out.extend_from_slice(s);
}

fn entry(ty: u8, key: &str, value: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    raw_string(key.as_bytes(), &mut v);
    v.extend_from_slice(value);
    v
}

/// A listpack of str6 entries.
fn listpack(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in items {
        body.push(0x80 | i.len() as u8);
        body.extend_from_slice(i);
        body.push(1 + i.len() as u8);
    }
    let mut out = ((6 + body.len() + 1) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(items.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xFF);
    out
}

/// A ziplist of short strings.
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
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

fn blob(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    raw_string(bytes, &mut v);
    v
}

/// RDB_TYPE_ZSET: member, then a text score (253 NaN, 254 +inf, 255 -inf).
fn text_zset(items: &[(&str, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    format::encode_len(items.len() as u64, &mut v);
    for (m, s) in items {
        raw_string(m.as_bytes(), &mut v);
        match *s {
            b"nan" => v.push(253),
            b"+inf" => v.push(254),
            b"-inf" => v.push(255),
            text => {
                v.push(text.len() as u8);
                v.extend_from_slice(text);
            }
        }
    }
    v
}

fn binary_zset(items: &[(&str, f64)]) -> Vec<u8> {
    let mut v = Vec::new();
    format::encode_len(items.len() as u64, &mut v);
    for (m, s) in items {
        raw_string(m.as_bytes(), &mut v);
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[test]
fn the_redis_fixture_decodes() {
    let got = entries(REDIS_FIXTURE).expect("Redis's dump decodes");
    let small = got.iter().find(|e| e.key == "zsmall").expect("zsmall");
    assert_eq!(
        pairs(&small.value),
        vec![
            (b("a"), 1.0),
            (b("b"), 2.5),
            (b("c"), f64::NEG_INFINITY),
            (b("d"), f64::INFINITY)
        ]
    );
    let big = got.iter().find(|e| e.key == "zbig").expect("zbig");
    let p = pairs(&big.value);
    assert_eq!(p.len(), 200);
    assert!(p.contains(&(b("m7"), 3.5)));
}

#[test]
fn every_zset_encoding_decodes() {
    let want = vec![(b("a"), 1.5), (b("b"), f64::INFINITY), (b("c"), -2.0)];
    let mut body = Vec::new();
    body.extend(entry(
        format::TYPE_ZSET,
        "text",
        &text_zset(&[("a", b"1.5"), ("b", b"+inf"), ("c", b"-2")]),
    ));
    body.extend(entry(
        format::TYPE_ZSET_2,
        "binary",
        &binary_zset(&[("a", 1.5), ("b", f64::INFINITY), ("c", -2.0)]),
    ));
    // Unsorted blobs are taken (Redis does not check); the set is rebuilt.
    body.extend(entry(
        format::TYPE_ZSET_ZIPLIST,
        "zl",
        &blob(&ziplist(&[b"b", b"inf", b"a", b"1.5", b"c", b"-2"])),
    ));
    body.extend(entry(
        format::TYPE_ZSET_LISTPACK,
        "lp",
        &blob(&listpack(&[b"c", b"-2", b"a", b"1.5", b"b", b"inf"])),
    ));
    body.extend(entry(format::TYPE_ZSET_2, "empty", &binary_zset(&[])));
    let got = entries(&file(&body)).expect("decodes");
    assert_eq!(got.len(), 5);
    for e in &got[..4] {
        assert_eq!(pairs(&e.value), want, "{:?}", e.key);
    }
    assert_eq!(got[4].value, RdbValue::Zset(vec![]));
}

#[test]
fn duplicates_nan_odd_counts_and_bad_scores_are_corruption() {
    let bad: Vec<(u8, Vec<u8>)> = vec![
        (format::TYPE_ZSET, text_zset(&[("a", b"1"), ("a", b"2")])),
        (format::TYPE_ZSET, text_zset(&[("a", b"nan")])),
        (format::TYPE_ZSET, text_zset(&[("a", b"x")])),
        (format::TYPE_ZSET_2, binary_zset(&[("a", 1.0), ("a", 1.0)])),
        (format::TYPE_ZSET_2, binary_zset(&[("a", f64::NAN)])),
        (
            format::TYPE_ZSET_LISTPACK,
            blob(&listpack(&[b"a", b"1", b"b"])),
        ),
        (
            format::TYPE_ZSET_LISTPACK,
            blob(&listpack(&[b"a", b"1", b"a", b"2"])),
        ),
        (format::TYPE_ZSET_LISTPACK, blob(&listpack(&[b"a", b"one"]))),
        (format::TYPE_ZSET_LISTPACK, blob(&listpack(&[b"a", b"nan"]))),
        (format::TYPE_ZSET_ZIPLIST, blob(&ziplist(&[b"a"]))),
        (format::TYPE_ZSET_ZIPLIST, blob(&[1, 2, 3])),
    ];
    for (ty, value) in bad {
        let data = file(&entry(ty, "k", &value));
        match entries(&data) {
            Err(RdbError::Corrupt { .. }) => {}
            other => panic!("type {ty} {value:?}: {other:?}"),
        }
    }
}

#[test]
fn our_zsets_round_trip_and_survive_truncation() {
    let value = RdbValue::Zset(vec![
        (b("a"), 1.0),
        (b(""), -0.0),
        (b("big"), 1e300),
        (b("ninf"), f64::NEG_INFINITY),
        (Bytes::from(vec![0u8, 255]), 0.1),
    ]);
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    enc.entry(b"k", &value, Some(123)).expect("write");
    let data = enc.finish().expect("finish");
    let got = entries(&data).expect("decodes");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].expire_at_ms, Some(123));
    assert_eq!(pairs(&got[0].value), pairs(&value));
    // -0 keeps its sign through ZSET_2.
    let RdbValue::Zset(p) = &got[0].value else {
        unreachable!()
    };
    assert!(p.iter().any(|(m, s)| m.is_empty() && s.is_sign_negative()));
    for cut in 0..data.len() {
        let _ = entries(&data[..cut]);
    }
    let mut rng = 1u64;
    for _ in 0..2000 {
        let mut d = data.clone();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (rng >> 33) as usize % d.len();
        d[at] ^= (rng >> 20) as u8 | 1;
        let _ = entries(&d);
    }
}
