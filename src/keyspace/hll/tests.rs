use super::*;

/// The project's seeded generator, for repeatable inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        crate::util::rand::rand_next(&mut self.0)
    }
}

fn empty_dense() -> BytesMut {
    let mut v = new_sparse();
    to_dense(&mut v).unwrap();
    v
}

#[test]
fn a_new_hll_is_one_xzero_run_with_a_valid_zero_count() {
    let v = new_sparse();
    assert_eq!(&v[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
    assert_eq!(encoding_of(&v), Some(Encoding::Sparse));
    assert_eq!(cached_count(&v), Some(0));
    assert_eq!(count(&v), Ok(0));
    assert_eq!(decode_sparse(&v).unwrap(), "Z:16384");
}

#[test]
fn dense_registers_round_trip_at_every_bit_offset() {
    let mut regs = vec![0u8; DENSE_SIZE - HEADER];
    let mut rng = Rng(7);
    let mut expect = vec![0u8; REGISTERS];
    for _ in 0..3 {
        for (i, e) in expect.iter_mut().enumerate() {
            let v = (rng.next() % 64) as u8;
            dense_put(&mut regs, i, v);
            *e = v;
        }
        for (i, e) in expect.iter().enumerate() {
            assert_eq!(dense_get(&regs, i), *e, "register {i}");
        }
    }
}

#[test]
fn the_hash_pattern_stays_within_its_bounds() {
    let mut rng = Rng(3);
    for n in 0..20_000u64 {
        let len = (rng.next() % 40) as usize;
        let e: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let (index, count) = pattern(&e);
        assert!(index < REGISTERS);
        assert!((1..=Q as u8 + 1).contains(&count), "{n}: {count}");
    }
    // Every tail length takes its own path through the hash.
    let hashes: std::collections::HashSet<u64> = (0..17)
        .map(|n| murmur64a(&vec![b'a'; n], 0xadc8_3b19))
        .collect();
    assert_eq!(hashes.len(), 17);
}

#[test]
fn sparse_and_dense_hold_the_same_registers_and_count() {
    let mut rng = Rng(11);
    let mut sparse = new_sparse();
    let mut dense = empty_dense();
    for n in 0..3000 {
        let e = rng.next().to_le_bytes();
        let a = add(&mut sparse, &e, usize::MAX).unwrap();
        let b = add(&mut dense, &e, usize::MAX).unwrap();
        assert_eq!(a, b, "element {n}");
        if n % 250 == 0 {
            assert_eq!(registers(&sparse).unwrap(), registers(&dense).unwrap());
            assert_eq!(count(&sparse), count(&dense));
        }
    }
    assert_eq!(encoding_of(&sparse), Some(Encoding::Sparse));
    assert_eq!(registers(&sparse).unwrap(), registers(&dense).unwrap());
    assert_eq!(count(&sparse), count(&dense));
    // Turning it dense gives the dense bytes, apart from the header.
    let mut converted = sparse.clone();
    assert_eq!(to_dense(&mut converted), Ok(true));
    assert_eq!(&converted[HEADER..], &dense[HEADER..]);
    assert_eq!(to_dense(&mut converted), Ok(false));
}

#[test]
fn the_sparse_form_keeps_runs_canonical() {
    let mut v = new_sparse();
    assert_eq!(raise(&mut v, 100, 3, 3000), Ok(true));
    assert_eq!(decode_sparse(&v).unwrap(), "Z:100 v:3,1 Z:16283");
    assert_eq!(raise(&mut v, 101, 3, 3000), Ok(true));
    assert_eq!(decode_sparse(&v).unwrap(), "Z:100 v:3,2 Z:16282");
    // Lower or equal values change nothing.
    assert_eq!(raise(&mut v, 101, 2, 3000), Ok(false));
    assert_eq!(raise(&mut v, 100, 3, 3000), Ok(false));
    assert_eq!(raise(&mut v, 99, 3, 3000), Ok(true));
    assert_eq!(decode_sparse(&v).unwrap(), "Z:99 v:3,3 Z:16282");
    // A short zero run between values is a ZERO opcode.
    assert_eq!(raise(&mut v, 110, 5, 3000), Ok(true));
    assert_eq!(decode_sparse(&v).unwrap(), "Z:99 v:3,3 z:8 v:5,1 Z:16273");
    // Splitting a run of values.
    assert_eq!(raise(&mut v, 100, 4, 3000), Ok(true));
    assert_eq!(
        decode_sparse(&v).unwrap(),
        "Z:99 v:3,1 v:4,1 v:3,1 z:8 v:5,1 Z:16273"
    );
    assert_eq!(raise(&mut v, 0, 1, 3000), Ok(true));
    assert!(decode_sparse(&v).unwrap().starts_with("v:1,1 Z:98 "));
    assert_eq!(raise(&mut v, REGISTERS - 1, 2, 3000), Ok(true));
    assert!(decode_sparse(&v).unwrap().ends_with(" Z:16272 v:2,1"));
    assert_eq!(count(&v).unwrap(), count_registers(&registers(&v).unwrap()));
}

#[test]
fn a_sparse_hll_turns_dense_past_its_size_or_value_limit() {
    let mut v = new_sparse();
    assert_eq!(raise(&mut v, 5, 33, 3000), Ok(true));
    assert_eq!(encoding_of(&v), Some(Encoding::Dense));
    assert_eq!(registers(&v).unwrap()[5], 33);
    let mut v = new_sparse();
    let mut i = 0;
    while encoding_of(&v) == Some(Encoding::Sparse) {
        assert!(v.len() <= 40, "{}", v.len());
        raise(&mut v, i * 7, 2, 40).unwrap();
        i += 1;
    }
    assert_eq!(v.len(), DENSE_SIZE);
    let regs = registers(&v).unwrap();
    for j in 0..i {
        assert_eq!(regs[j * 7], 2);
    }
}

#[test]
fn the_estimate_is_close() {
    let mut v = new_sparse();
    let mut rng = Rng(5);
    let mut checked = 0;
    for n in 1..=200_000u64 {
        add(&mut v, &rng.next().to_le_bytes(), 3000).unwrap();
        if n % 20_000 == 0 || n == 100 || n == 1000 {
            let c = count(&v).unwrap() as f64;
            let err = (c - n as f64).abs() / n as f64;
            // The standard error is 0.81%; five of them is a safe bound.
            assert!(err < 0.05, "{n}: {c}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn the_cached_count_is_invalidated_by_its_top_bit() {
    let mut v = new_sparse();
    set_cached_count(&mut v, 0x0102);
    assert_eq!(cached_count(&v), Some(0x0102));
    invalidate_cache(&mut v);
    assert_eq!(cached_count(&v), None);
    assert_eq!(&v[8..16], &[2, 1, 0, 0, 0, 0, 0, 0x80]);
    add(&mut v, b"x", 3000).unwrap();
    assert_eq!(cached_count(&v), None);
}

#[test]
fn merging_takes_the_highest_register() {
    let mut a = new_sparse();
    let mut b = empty_dense();
    raise(&mut a, 1, 5, 3000).unwrap();
    raise(&mut a, 2, 1, 3000).unwrap();
    raise(&mut b, 2, 9, 3000).unwrap();
    raise(&mut b, 1, 3, 3000).unwrap();
    let mut max = [0u8; REGISTERS];
    merge_into(&mut max, &a).unwrap();
    merge_into(&mut max, &b).unwrap();
    assert_eq!(&max[..4], &[0, 5, 9, 0]);
}

#[test]
fn corrupt_values_are_refused_and_never_panic() {
    assert_eq!(encoding_of(b"HYLL"), None);
    assert_eq!(encoding_of(b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"), None);
    assert_eq!(encoding_of(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"), None);
    // Dense must have the exact size.
    let mut short = empty_dense();
    short.truncate(DENSE_SIZE - 1);
    assert_eq!(encoding_of(&short), None);
    // Sparse runs that do not cover 16384 registers.
    let mut v = new_sparse();
    v.truncate(HEADER);
    v.extend_from_slice(&[0x7f, 0xfe]);
    assert_eq!(count(&v), Err(Corrupt));
    assert_eq!(registers(&v).map(|_| ()), Err(Corrupt));
    assert_eq!(to_dense(&mut v.clone()), Err(Corrupt));
    assert_eq!(raise(&mut v.clone(), 16383, 3, 3000), Err(Corrupt));
    // Random bodies behind a sparse header.
    let mut rng = Rng(99);
    for _ in 0..5000 {
        let mut v = new_sparse();
        v.truncate(HEADER);
        let len = (rng.next() % 12) as usize;
        v.extend((0..len).map(|_| rng.next() as u8));
        let _ = count(&v);
        let _ = decode_sparse(&v);
        let mut m = [0u8; REGISTERS];
        let _ = merge_into(&mut m, &v);
        let idx = (rng.next() % REGISTERS as u64) as usize;
        let _ = raise(&mut v.clone(), idx, (rng.next() % 51 + 1) as u8, 3000);
        let _ = add(&mut v, b"e", 20);
    }
}
