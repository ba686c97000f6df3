//! Tests of lists in the RDB codec: a dump written by Redis 7.0.15 with
//! `list-compress-depth 1` (LZF nodes), a plain node and small nodes
//! (committed as a fixture), hand-built entries of every list encoding a
//! Redis 7.x may write (linked list, ziplist, quicklist of ziplists,
//! quicklist 2 with packed and plain nodes), our encoder's output, and
//! corruption, which must give errors, never panics.

use bytes::Bytes;

use super::blobs::write_listpack;
use super::collection_tests::{blob, entries, entry, file, strings, ziplist};
use super::format;
use super::{EncodeOptions, RdbEncoder, RdbValue};

const REDIS_FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/redis-7.0.15-lists.rdb");

fn list(items: &[&[u8]]) -> RdbValue {
    RdbValue::List(items.iter().map(|i| Bytes::copy_from_slice(i)).collect())
}

#[test]
fn redis_written_lists_decode() {
    let mut got = entries(REDIS_FIXTURE).expect("Redis's dump decodes");
    got.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&[u8]> = got.iter().map(|e| e.key.as_ref()).collect();
    assert_eq!(
        keys,
        [
            &b"l:big"[..],
            b"l:compressed",
            b"l:empty-str",
            b"l:ints",
            b"l:plain",
            b"l:small",
            b"l:ttl"
        ]
    );
    let nums: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
    let nums: Vec<&[u8]> = nums.iter().map(|s| s.as_bytes()).collect();
    assert_eq!(got[0].value, list(&nums));
    let z: Vec<Vec<u8>> = (0..40)
        .map(|i| [vec![b'z'; 100], i.to_string().into_bytes()].concat())
        .collect();
    let z: Vec<&[u8]> = z.iter().map(|v| v.as_slice()).collect();
    assert_eq!(got[1].value, list(&z));
    assert_eq!(got[2].value, list(&[b"", b""]));
    assert_eq!(
        got[3].value,
        list(&[
            b"0",
            b"127",
            b"-1",
            b"4095",
            b"-4096",
            b"32767",
            b"70000",
            b"2147483647",
            b"-9223372036854775808",
            b"9223372036854775807",
            b"007"
        ])
    );
    let big = b"abcdefgh".repeat(2000);
    assert_eq!(got[4].value, list(&[b"first", &big, b"small"]));
    assert_eq!(got[5].value, list(&[b"a", b"b", b"c"]));
    assert_eq!(got[6].value, list(&[b"x"]));
    assert_eq!(got[6].expire_at_ms, Some(4_102_444_800_000));
}

/// A quicklist 2 node: container then blob.
fn ql2_node(container: u64, b: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    format::encode_len(container, &mut v);
    v.extend_from_slice(&blob(b));
    v
}

#[test]
fn every_list_encoding_decodes() {
    let mut body = Vec::new();
    body.extend(entry(
        format::TYPE_LIST,
        "linked",
        &strings(3, &[b"a", b"", b"c"]),
    ));
    body.extend(entry(
        format::TYPE_LIST_ZIPLIST,
        "zl",
        &blob(&ziplist(&[b"x", b"y"])),
    ));
    let mut ql = Vec::new();
    format::encode_len(3, &mut ql);
    ql.extend(blob(&ziplist(&[b"1", b"2"])));
    ql.extend(blob(&ziplist(&[])));
    ql.extend(blob(&ziplist(&[b"3"])));
    body.extend(entry(format::TYPE_LIST_QUICKLIST, "ql", &ql));
    let mut ql2 = Vec::new();
    format::encode_len(3, &mut ql2);
    ql2.extend(ql2_node(2, &write_listpack([&b"p"[..], b"-5"].into_iter())));
    ql2.extend(ql2_node(1, b"plain element"));
    ql2.extend(ql2_node(2, &write_listpack([&b"q"[..]].into_iter())));
    body.extend(entry(format::TYPE_LIST_QUICKLIST_2, "ql2", &ql2));
    let got = entries(&file(&body)).expect("decodes");
    let values: Vec<RdbValue> = got.into_iter().map(|e| e.value).collect();
    assert_eq!(
        values,
        vec![
            list(&[b"a", b"", b"c"]),
            list(&[b"x", b"y"]),
            list(&[b"1", b"2", b"3"]),
            list(&[b"p", b"-5", b"plain element", b"q"]),
        ]
    );
}

#[test]
fn bad_list_containers_are_corruption() {
    let mut zero = Vec::new();
    format::encode_len(0, &mut zero);
    let mut bad_container = Vec::new();
    format::encode_len(1, &mut bad_container);
    bad_container.extend(ql2_node(3, b"x"));
    let mut bad_lp = Vec::new();
    format::encode_len(1, &mut bad_lp);
    bad_lp.extend(ql2_node(2, b"not a listpack"));
    let mut bad_zl = Vec::new();
    format::encode_len(1, &mut bad_zl);
    bad_zl.extend(blob(b"not a ziplist at all"));
    for (ty, body) in [
        (format::TYPE_LIST_QUICKLIST_2, zero.clone()),
        (format::TYPE_LIST_QUICKLIST, zero),
        (format::TYPE_LIST_QUICKLIST_2, bad_container),
        (format::TYPE_LIST_QUICKLIST_2, bad_lp),
        (format::TYPE_LIST_QUICKLIST, bad_zl),
        (format::TYPE_LIST_ZIPLIST, blob(b"\x01\x02")),
    ] {
        let err = entries(&file(&entry(ty, "k", &body))).expect_err("corrupt");
        assert!(err.to_string().contains("corrupt RDB"), "{err}");
    }
}

#[test]
fn our_lists_round_trip_and_never_panic_when_damaged() {
    let long = vec![b'y'; 20_000];
    let items: Vec<&[u8]> = vec![b"a", b"", b"12", b"-9223372036854775808", &long, b"tail"];
    let mut enc = RdbEncoder::new(Vec::new(), EncodeOptions::default()).expect("encoder");
    enc.select_db(0, 2, 1).expect("select");
    enc.entry(b"one", &list(&items), Some(7)).expect("entry");
    // Several nodes, as a live list has them.
    let nodes = vec![vec![&b"n1"[..], b"n2"], vec![], vec![&b"n3"[..]]];
    enc.list_entry(b"nodes", nodes.into_iter().map(|n| n.into_iter()), None)
        .expect("nodes");
    assert!(enc
        .list_entry(b"empty", std::iter::once(std::iter::empty()), None)
        .is_err());
    let data = enc.finish().expect("finish");
    let got = entries(&data).expect("decodes");
    assert_eq!(got[0].value, list(&items));
    assert_eq!(got[0].expire_at_ms, Some(7));
    assert_eq!(got[1].value, list(&[b"n1", b"n2", b"n3"]));
    for cut in 9..data.len() {
        assert!(entries(&data[..cut]).is_err(), "cut at {cut}");
    }
    let mut nock = data.clone();
    let n = nock.len();
    nock[n - 8..].fill(0);
    let mut fixture = REDIS_FIXTURE.to_vec();
    let m = fixture.len();
    fixture[m - 8..].fill(0);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for base in [nock, fixture] {
        for _ in 0..4000 {
            let mut d = base.clone();
            let pos = 9 + (next() as usize) % (d.len() - 17);
            d[pos] = next() as u8;
            let _ = entries(&d);
        }
    }
}
