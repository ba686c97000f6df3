//! Redis's partial quicksort (`pqsort`, a Bentley-McIlroy quicksort that
//! only sorts the parts overlapping a wanted range of positions), as
//! Redis 7.0 uses it to order the first COUNT results of a GEO search.
//! Not stable: equal elements come out in the order this algorithm leaves
//! them, and replies must match Redis's even then, so the steps (pivot
//! choice, three-way partition, the pruned recursion) are Redis's own.
//!
//! Depends on nothing.
#![forbid(unsafe_code)]

use std::cmp::Ordering;

/// Sorts `a` enough that positions `lrange..=rrange` hold what a full
/// sort would put there, using `cmp`.
pub fn pqsort<T>(a: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    let n = a.len();
    part(a, 0, n, cmp, lrange, rrange);
}

/// The median of three positions, as Redis picks it.
fn med3<T>(a: &[T], i: usize, j: usize, k: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    let lt = |x: usize, y: usize| cmp(&a[x], &a[y]) == Ordering::Less;
    let gt = |x: usize, y: usize| cmp(&a[x], &a[y]) == Ordering::Greater;
    if lt(i, j) {
        if lt(j, k) {
            j
        } else if lt(i, k) {
            k
        } else {
            i
        }
    } else if gt(j, k) {
        j
    } else if lt(i, k) {
        i
    } else {
        k
    }
}

fn vecswap<T>(a: &mut [T], i: usize, j: usize, n: usize) {
    for x in 0..n {
        a.swap(i + x, j + x);
    }
}

fn part<T>(
    a: &mut [T],
    mut lo: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    lrange: usize,
    rrange: usize,
) {
    loop {
        if n < 7 {
            for m in lo + 1..lo + n {
                let mut j = m;
                while j > lo && cmp(&a[j - 1], &a[j]) == Ordering::Greater {
                    a.swap(j - 1, j);
                    j -= 1;
                }
            }
            return;
        }
        let mut pm = lo + n / 2;
        if n > 7 {
            let mut pl = lo;
            let mut pn = lo + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(a, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(a, pm - d, pm, pm + d, cmp);
                pn = med3(a, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(a, pl, pm, pn, cmp);
        }
        a.swap(lo, pm);
        let (mut pa, mut pb) = (lo + 1, lo + 1);
        let (mut pc, mut pd) = (lo + n - 1, lo + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&a[pb], &a[lo]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    a.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&a[pc], &a[lo]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    a.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            a.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = lo + n;
        let r = (pa - lo).min(pb - pa);
        vecswap(a, lo, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(a, pb, pn - r, r);
        // Recurse into (or loop on) a part only if it overlaps the range.
        let r = pb - pa;
        if r > 1 && !(rrange < lo || lrange >= lo + r) {
            part(a, lo, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r > 1 {
            lo = pn - r;
            n = r;
            if !(rrange < lo || lrange >= lo + n) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wanted_positions_hold_the_sorted_values() {
        let mut x: u64 = 0x1234_5678;
        for len in [1usize, 5, 7, 8, 40, 41, 100, 333] {
            let mut v: Vec<u32> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 50) as u32
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            let k = (len / 3).max(1);
            pqsort(&mut v, &|a: &u32, b: &u32| a.cmp(b), 0, k - 1);
            assert_eq!(v[..k], sorted[..k], "len {len}");
        }
    }

    #[test]
    fn ties_come_out_as_redis_leaves_them() {
        // 200 members at one point, found in zset (member) order; Redis's
        // GEOSEARCH ... COUNT 5 answers m99 m1 m10 m100 m101.
        let mut names: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        names.sort();
        pqsort(&mut names, &|_: &String, _: &String| Ordering::Equal, 0, 4);
        assert_eq!(names[..5], ["m99", "m1", "m10", "m100", "m101"]);
    }
}
