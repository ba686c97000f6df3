use super::*;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn add(s: &mut StreamValue, ms: u64, pairs: &[&str], limits: NodeLimits) {
    let pairs: Vec<Bytes> = pairs.iter().map(|p| b(p)).collect();
    s.append(StreamId::new(ms, 0), &pairs, limits);
    s.check_sizes();
}

#[test]
fn nodes_fill_up_to_their_entry_limit() {
    let mut s = StreamValue::new();
    let lim = NodeLimits {
        max_bytes: 4096,
        max_entries: 3,
    };
    for ms in 1..=7 {
        add(&mut s, ms, &["f", &ms.to_string()], lim);
    }
    assert_eq!(s.node_count(), 3);
    assert_eq!(s.len(), 7);
    assert_eq!(s.first_id, StreamId::new(1, 0));
    assert_eq!(s.last_id, StreamId::new(7, 0));
    // The same fields as the master entry are stored once.
    let (_, first) = s.nodes().next().unwrap();
    assert!(first.entries.iter().all(|e| e.same_fields));
}

#[test]
fn a_node_closes_at_its_byte_limit() {
    let mut s = StreamValue::new();
    let lim = NodeLimits {
        max_bytes: 100,
        max_entries: 0,
    };
    for ms in 1..=10 {
        add(&mut s, ms, &["field", &"v".repeat(20)], lim);
    }
    assert!(s.node_count() > 2);
    for (_, n) in s.nodes() {
        assert!(n.lp_bytes() < 100 + 30, "{}", n.lp_bytes());
    }
}

#[test]
fn ranges_skip_tombstones_in_both_directions() {
    let mut s = StreamValue::new();
    let lim = NodeLimits {
        max_bytes: 4096,
        max_entries: 2,
    };
    for ms in 1..=6 {
        add(&mut s, ms, &["a", "1", "x", &ms.to_string()], lim);
    }
    add(&mut s, 7, &["other", "field"], lim);
    assert!(s.delete(StreamId::new(3, 0)));
    assert!(!s.delete(StreamId::new(3, 0)));
    assert!(!s.delete(StreamId::new(99, 0)));
    s.check_sizes();
    let ids = |v: Vec<(StreamId, Vec<(Bytes, Bytes)>)>| -> Vec<u64> {
        v.iter().map(|(id, _)| id.ms).collect()
    };
    assert_eq!(
        ids(s.range(StreamId::MIN, StreamId::MAX, false, 0)),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(
        ids(s.range(StreamId::new(2, 0), StreamId::new(5, 0), true, 0)),
        vec![5, 4, 2]
    );
    assert_eq!(
        ids(s.range(StreamId::MIN, StreamId::MAX, true, 2)),
        vec![7, 6]
    );
    let last = s.range(StreamId::new(7, 0), StreamId::MAX, false, 0);
    assert_eq!(last[0].1, vec![(b("other"), b("field"))]);
    // Deleting both entries of a node removes it.
    let before = s.node_count();
    assert!(s.delete(StreamId::new(4, 0)));
    assert_eq!(s.node_count(), before - 1);
    s.check_sizes();
}

#[test]
fn trimming_removes_whole_nodes_then_marks_tombstones() {
    let lim = NodeLimits {
        max_bytes: 4096,
        max_entries: 10,
    };
    let mut s = StreamValue::new();
    for ms in 1..=25 {
        add(&mut s, ms, &["f", "v"], lim);
    }
    // Approximate: only whole nodes go.
    assert_eq!(s.trim(Trim::MaxLen(12), true, 0), 10);
    assert_eq!(s.len(), 15);
    assert_eq!(s.first_id, StreamId::new(11, 0));
    // Exact: the rest inside the next node, as tombstones.
    assert_eq!(s.trim(Trim::MaxLen(12), false, 0), 3);
    assert_eq!(s.len(), 12);
    assert_eq!(s.first_id, StreamId::new(14, 0));
    s.check_sizes();
    assert_eq!(s.trim(Trim::MinId(StreamId::new(21, 0)), false, 0), 7);
    assert_eq!(s.first_id, StreamId::new(21, 0));
    // A limit below a node's size stops before it.
    assert_eq!(s.trim(Trim::MaxLen(0), true, 2), 0);
    assert_eq!(s.trim(Trim::MaxLen(0), false, 0), 5);
    assert!(s.is_empty());
    assert_eq!(s.first_id, StreamId::MIN);
    s.check_sizes();
}

#[test]
fn listpack_sizes_match_the_encoding() {
    for v in [
        0i64,
        127,
        128,
        -1,
        4095,
        -4096,
        4096,
        32767,
        -32768,
        40000,
        8_388_607,
        8_388_608,
        i64::MAX,
        i64::MIN,
    ] {
        let expected = match v {
            0..=127 => 2,
            -4096..=4095 => 3,
            -32768..=32767 => 4,
            -8_388_608..=8_388_607 => 5,
            -2_147_483_648..=2_147_483_647 => 6,
            _ => 10,
        };
        assert_eq!(lp_int_size(v), expected, "{v}");
    }
    assert_eq!(lp_str_size(b"12"), 2);
    assert_eq!(lp_str_size(b"012"), 5);
    assert_eq!(lp_str_size(&[b'x'; 63]), 65);
    assert_eq!(lp_str_size(&[b'x'; 64]), 67);
    assert_eq!(lp_str_size(&[b'x'; 126]), 130);
}

#[test]
fn ids_step_over_sequence_limits() {
    assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
    assert_eq!(StreamId::MAX.next(), None);
    assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
    assert_eq!(StreamId::MIN.prev(), None);
    assert_eq!(StreamId::new(5, 7).to_string(), "5-7");
}
