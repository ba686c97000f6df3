//! The compact blobs Redis stores some values as (inside an RDB string):
//! listpack, ziplist, zipmap and intset. Readers validate strictly (every
//! header field, every entry's bounds, listpack back-lengths, ziplist
//! prev-lengths, intset order) and turn any inconsistency into an error
//! message, never a panic or an out-of-bounds read; `write_intset` builds an
//! intset, `write_listpack` a listpack. Pure functions over byte slices: no I/O, no server types.

use bytes::Bytes;

type Res<T> = Result<T, String>;

fn le_u16(b: &[u8], at: usize) -> Res<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn le_u32(b: &[u8], at: usize) -> Res<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

/// `n` bytes at `at` as a little-endian signed integer (n in 1..=8).
fn le_int(b: &[u8], at: usize, n: usize) -> Res<i64> {
    let s = b
        .get(at..at + n)
        .ok_or_else(|| format!("truncated integer at byte {at}"))?;
    let mut w = [0u8; 8];
    w[..n].copy_from_slice(s);
    let shift = 64 - 8 * n as u32;
    Ok((i64::from_le_bytes(w) << shift) >> shift)
}

fn bytes_at(b: &[u8], at: usize, len: usize) -> Res<Bytes> {
    at.checked_add(len)
        .and_then(|end| b.get(at..end))
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| format!("string of {len} bytes at byte {at} runs past the end"))
}

fn int_bytes(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

// --------------------------------------------------------------- listpack --

const LP_HEADER: usize = 6;
const LP_EOF: u8 = 0xFF;
/// `num_elements` value meaning "too many to count, walk the entries".
const LP_UNKNOWN_COUNT: u16 = u16::MAX;

/// The back-length bytes a listpack stores after an entry of `len` bytes.
fn lp_backlen(len: usize) -> Vec<u8> {
    let n = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    let mut out = vec![0u8; n];
    for (i, b) in out.iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let mut v = ((len >> shift) & 0x7F) as u8;
        if i > 0 {
            v |= 0x80;
        }
        *b = v;
    }
    out
}

/// Every element of a listpack, integers as decimal text.
pub fn listpack_entries(lp: &[u8]) -> Res<Vec<Bytes>> {
    let total = le_u32(lp, 0).map_err(|_| "listpack shorter than its header".to_string())?;
    if total as usize != lp.len() {
        return Err(format!(
            "listpack header says {total} bytes, blob has {}",
            lp.len()
        ));
    }
    let count = le_u16(lp, 4)?;
    let mut out = Vec::new();
    let mut p = LP_HEADER;
    loop {
        let b = *lp
            .get(p)
            .ok_or_else(|| "listpack ends without its end marker".to_string())?;
        if b == LP_EOF {
            if p + 1 != lp.len() {
                return Err(format!("listpack end marker at byte {p} is not the last"));
            }
            break;
        }
        let (value, len) = if b & 0x80 == 0 {
            (int_bytes(i64::from(b & 0x7F)), 1)
        } else if b & 0xC0 == 0x80 {
            let n = usize::from(b & 0x3F);
            (bytes_at(lp, p + 1, n)?, 1 + n)
        } else if b & 0xE0 == 0xC0 {
            let lo = *lp.get(p + 1).ok_or("listpack: truncated 13-bit integer")?;
            let v = (i64::from(b & 0x1F) << 8) | i64::from(lo);
            let v = if v >= 1 << 12 { v - (1 << 13) } else { v };
            (int_bytes(v), 2)
        } else if b & 0xF0 == 0xE0 {
            let lo = *lp.get(p + 1).ok_or("listpack: truncated 12-bit length")?;
            let n = (usize::from(b & 0x0F) << 8) | usize::from(lo);
            (bytes_at(lp, p + 2, n)?, 2 + n)
        } else {
            match b {
                0xF0 => {
                    let n = le_u32(lp, p + 1)? as usize;
                    (bytes_at(lp, p + 5, n)?, 5 + n)
                }
                0xF1 => (int_bytes(le_int(lp, p + 1, 2)?), 3),
                0xF2 => (int_bytes(le_int(lp, p + 1, 3)?), 4),
                0xF3 => (int_bytes(le_int(lp, p + 1, 4)?), 5),
                0xF4 => (int_bytes(le_int(lp, p + 1, 8)?), 9),
                other => return Err(format!("listpack: bad encoding byte {other:#04x} at {p}")),
            }
        };
        let back = lp_backlen(len);
        let at = p + len;
        if lp.get(at..at + back.len()) != Some(&back[..]) {
            return Err(format!(
                "listpack: wrong back-length after the entry at {p}"
            ));
        }
        p = at + back.len();
        out.push(value);
    }
    if count != LP_UNKNOWN_COUNT && usize::from(count) != out.len() {
        return Err(format!(
            "listpack header counts {count} elements, found {}",
            out.len()
        ));
    }
    Ok(out)
}

/// One element to write into a listpack.
#[derive(Clone, Copy, Debug)]
pub enum LpItem<'a> {
    /// An integer, as `lpAppendInteger` writes it.
    Int(i64),
    /// A string, as `lpAppend` writes it: canonical integers become
    /// integers.
    Str(&'a [u8]),
}

/// A listpack of `items` as Redis's `lpAppend` builds it: canonical
/// integers (Redis's string2ll) in the smallest integer encoding, other
/// strings as 6-bit, 12-bit or 32-bit length strings.
pub fn write_listpack<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    write_listpack_items(items.map(LpItem::Str))
}

/// A listpack of integers and strings (stream nodes mix both).
pub fn write_listpack_items<'a>(items: impl Iterator<Item = LpItem<'a>>) -> Vec<u8> {
    let mut out = vec![0u8; LP_HEADER];
    let mut count = 0usize;
    for item in items {
        let start = out.len();
        // Canonical integer text is stored as the integer.
        let item = match item {
            LpItem::Str(s) => crate::util::num::parse_i64_strict(s).map_or(item, LpItem::Int),
            int => int,
        };
        match item {
            LpItem::Int(v) if (0..=127).contains(&v) => out.push(v as u8),
            LpItem::Int(v) if (-4096..=4095).contains(&v) => {
                let u = (v as u16) & 0x1FFF;
                out.push(0xC0 | (u >> 8) as u8);
                out.push(u as u8);
            }
            LpItem::Int(v) if i16::try_from(v).is_ok() => {
                out.push(0xF1);
                out.extend_from_slice(&(v as i16).to_le_bytes());
            }
            LpItem::Int(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                out.push(0xF2);
                out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            LpItem::Int(v) if i32::try_from(v).is_ok() => {
                out.push(0xF3);
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
            LpItem::Int(v) => {
                out.push(0xF4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            LpItem::Str(item) if item.len() < 64 => {
                out.push(0x80 | item.len() as u8);
                out.extend_from_slice(item);
            }
            LpItem::Str(item) if item.len() < 4096 => {
                out.push(0xE0 | (item.len() >> 8) as u8);
                out.push(item.len() as u8);
                out.extend_from_slice(item);
            }
            LpItem::Str(item) => {
                out.push(0xF0);
                out.extend_from_slice(&(item.len() as u32).to_le_bytes());
                out.extend_from_slice(item);
            }
        }
        let len = out.len() - start;
        out.extend_from_slice(&lp_backlen(len));
        count += 1;
    }
    out.push(LP_EOF);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let n = u16::try_from(count).unwrap_or(LP_UNKNOWN_COUNT);
    out[4..6].copy_from_slice(&n.to_le_bytes());
    out
}

// ---------------------------------------------------------------- ziplist --

const ZL_HEADER: usize = 10;
const ZL_END: u8 = 0xFF;
const ZL_BIG_PREVLEN: u8 = 0xFE;

/// Every element of a ziplist, integers as decimal text.
pub fn ziplist_entries(zl: &[u8]) -> Res<Vec<Bytes>> {
    let total = le_u32(zl, 0).map_err(|_| "ziplist shorter than its header".to_string())?;
    if total as usize != zl.len() || zl.len() < ZL_HEADER + 1 {
        return Err(format!(
            "ziplist header says {total} bytes, blob has {}",
            zl.len()
        ));
    }
    let tail = le_u32(zl, 4)? as usize;
    let count = le_u16(zl, 8)?;
    let mut out = Vec::new();
    let mut p = ZL_HEADER;
    let mut prev_len = 0usize;
    let mut last = ZL_HEADER;
    loop {
        let b = *zl
            .get(p)
            .ok_or_else(|| "ziplist ends without its end marker".to_string())?;
        if b == ZL_END {
            if p + 1 != zl.len() {
                return Err(format!("ziplist end marker at byte {p} is not the last"));
            }
            break;
        }
        let (prevlen, mut q) = if b == ZL_BIG_PREVLEN {
            (le_u32(zl, p + 1)? as usize, p + 5)
        } else {
            (usize::from(b), p + 1)
        };
        if prevlen != prev_len {
            return Err(format!(
                "ziplist entry at {p} says the previous entry has {prevlen} bytes, it has {prev_len}"
            ));
        }
        let e = *zl.get(q).ok_or("ziplist: truncated entry")?;
        let value = match e >> 6 {
            0 => {
                let n = usize::from(e & 0x3F);
                q += 1;
                let v = bytes_at(zl, q, n)?;
                q += n;
                v
            }
            1 => {
                let lo = *zl.get(q + 1).ok_or("ziplist: truncated 14-bit length")?;
                let n = (usize::from(e & 0x3F) << 8) | usize::from(lo);
                q += 2;
                let v = bytes_at(zl, q, n)?;
                q += n;
                v
            }
            2 => {
                if e != 0x80 {
                    return Err(format!("ziplist: bad string encoding {e:#04x} at {q}"));
                }
                let s = zl
                    .get(q + 1..q + 5)
                    .ok_or("ziplist: truncated 32-bit length")?;
                let n = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
                q += 5;
                let v = bytes_at(zl, q, n)?;
                q += n;
                v
            }
            _ => {
                let (v, n) = match e {
                    0xC0 => (le_int(zl, q + 1, 2)?, 2),
                    0xD0 => (le_int(zl, q + 1, 4)?, 4),
                    0xE0 => (le_int(zl, q + 1, 8)?, 8),
                    0xF0 => (le_int(zl, q + 1, 3)?, 3),
                    0xFE => (le_int(zl, q + 1, 1)?, 1),
                    0xF1..=0xFD => (i64::from(e & 0x0F) - 1, 0),
                    other => return Err(format!("ziplist: bad encoding byte {other:#04x} at {q}")),
                };
                q += 1 + n;
                int_bytes(v)
            }
        };
        if q > zl.len() - 1 {
            return Err(format!("ziplist entry at {p} runs past the end"));
        }
        last = p;
        prev_len = q - p;
        p = q;
        out.push(value);
    }
    if tail != last {
        return Err(format!(
            "ziplist tail offset {tail} does not point at the last entry ({last})"
        ));
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(format!(
            "ziplist header counts {count} entries, found {}",
            out.len()
        ));
    }
    Ok(out)
}

// ----------------------------------------------------------------- zipmap --

/// A zipmap length: one byte below 254, else 254 and 4 bytes.
fn zipmap_len(zm: &[u8], p: &mut usize) -> Res<usize> {
    let b = *zm.get(*p).ok_or("zipmap: truncated length")?;
    if b < 254 {
        *p += 1;
        Ok(usize::from(b))
    } else if b == 254 {
        let n = le_u32(zm, *p + 1)? as usize;
        *p += 5;
        Ok(n)
    } else {
        Err(format!("zipmap: bad length byte at {}", *p))
    }
}

/// The field/value pairs of a zipmap (the pre-2.6 small hash).
pub fn zipmap_pairs(zm: &[u8]) -> Res<Vec<(Bytes, Bytes)>> {
    if zm.len() < 2 {
        return Err("zipmap shorter than its header".into());
    }
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        match zm.get(p) {
            None => return Err("zipmap ends without its end marker".into()),
            Some(&0xFF) => {
                if p + 1 != zm.len() {
                    return Err(format!("zipmap end marker at byte {p} is not the last"));
                }
                break;
            }
            Some(_) => {}
        }
        let flen = zipmap_len(zm, &mut p)?;
        let field = bytes_at(zm, p, flen)?;
        p += flen;
        let vlen = zipmap_len(zm, &mut p)?;
        let free = usize::from(*zm.get(p).ok_or("zipmap: truncated free byte")?);
        p += 1;
        let value = bytes_at(zm, p, vlen)?;
        p += vlen + free;
        out.push((field, value));
    }
    let count = usize::from(zm[0]);
    if count < 254 && count != out.len() {
        return Err(format!(
            "zipmap header counts {count} pairs, found {}",
            out.len()
        ));
    }
    Ok(out)
}

// ----------------------------------------------------------------- intset --

/// The members of an intset blob: width 2, 4 or 8, strictly ascending.
pub fn intset_members(is: &[u8]) -> Res<Vec<i64>> {
    let width = le_u32(is, 0).map_err(|_| "intset shorter than its header".to_string())? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("intset: bad integer width {width}"));
    }
    let len = le_u32(is, 4)? as usize;
    let expected = len.checked_mul(width).and_then(|n| n.checked_add(8));
    if expected != Some(is.len()) {
        return Err(format!(
            "intset of {len} members of {width} bytes cannot be {} bytes",
            is.len()
        ));
    }
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let v = le_int(is, 8 + i * width, width)?;
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err(format!("intset: members not strictly ascending at {i}"));
        }
        out.push(v);
    }
    Ok(out)
}

/// An intset blob of `sorted` (ascending, no duplicates) in the narrowest
/// width holding all of them, as Redis builds it.
pub fn write_intset(sorted: &[i64]) -> Vec<u8> {
    let fits = |lo: i64, hi: i64| sorted.iter().all(|v| (lo..=hi).contains(v));
    let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
        2
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + sorted.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listpack built by hand: header, entries with back-lengths, end.
    fn lp(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            body.extend_from_slice(&lp_backlen(e.len()));
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((LP_HEADER + body.len() + 1) as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(LP_EOF);
        out
    }

    #[test]
    fn written_listpacks_read_back() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"4096",
            b"-32768",
            b"32767",
            b"8388607",
            b"-8388608",
            b"8388608",
            b"2147483647",
            b"-2147483649",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"01",
            b"-0",
            b"",
            b"abc",
            &mid,
            &long,
        ];
        let lp = write_listpack(items.iter().copied());
        let back = listpack_entries(&lp).expect("valid");
        let back: Vec<&[u8]> = back.iter().map(|b| b.as_ref()).collect();
        assert_eq!(back, items);
        assert_eq!(write_listpack(std::iter::empty()), [7, 0, 0, 0, 0, 0, 0xFF]);
        // Redis's own bytes for "a" and 1.
        assert_eq!(
            write_listpack([&b"a"[..], b"1"].into_iter()),
            [12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 1, 1, 0xFF]
        );
    }

    #[test]
    fn backlen_forms() {
        assert_eq!(lp_backlen(1), [1]);
        assert_eq!(lp_backlen(127), [127]);
        assert_eq!(lp_backlen(128), [1, 0x80]);
        assert_eq!(lp_backlen(16382), [127, 0xFE]);
        assert_eq!(lp_backlen(16383), [0, 0xFF, 0xFF]);
    }

    #[test]
    fn listpack_every_encoding() {
        let str6 = [&[0x83u8][..], b"abc"].concat();
        let str12 = [&[0xE0u8, 200][..], &[b'x'; 200][..]].concat();
        let str32 = [&[0xF0u8, 5, 0, 0, 0][..], b"hello"].concat();
        let blob = lp(&[
            &[0x05],                                                 // uint7 5
            &str6,                                                   // "abc"
            &[0xDF, 0xFF],                                           // int13 -1
            &str12,                                                  // 200 x
            &str32,                                                  // "hello"
            &[0xF1, 0x00, 0x80],                                     // int16 -32768
            &[0xF2, 0xFF, 0xFF, 0x7F],                               // int24 8388607
            &[0xF3, 0x00, 0x00, 0x00, 0x80],                         // int32 min
            &[0xF4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], // int64 max
        ]);
        let got = listpack_entries(&blob).expect("valid");
        let want: Vec<Bytes> = [
            "5".to_string(),
            "abc".into(),
            "-1".into(),
            "x".repeat(200),
            "hello".into(),
            "-32768".into(),
            "8388607".into(),
            i32::MIN.to_string(),
            i64::MAX.to_string(),
        ]
        .into_iter()
        .map(Bytes::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn listpack_corruption_is_an_error() {
        let good = lp(&[&[0x01], &[0x82, b'o', b'k']]);
        assert!(listpack_entries(&good).is_ok());
        // Every truncation, every single-byte corruption: an error or a
        // valid reading, never a panic.
        for cut in 0..good.len() {
            assert!(listpack_entries(&good[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..good.len() {
            for v in [0u8, 0x7F, 0x80, 0xC0, 0xE0, 0xF0, 0xF5, 0xFF] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = listpack_entries(&bad);
            }
        }
        let mut bad = good.clone();
        bad[4] = 3; // count
        assert!(listpack_entries(&bad).is_err());
        let mut bad = good.clone();
        bad[7] = 9; // back-length of the first entry
        assert!(listpack_entries(&bad).is_err());
        // A string length pointing past the end.
        let bad = lp(&[&[0xBF, b'a']]);
        assert!(listpack_entries(&bad).is_err());
    }

    fn zl(entries: &[&[u8]]) -> Vec<u8> {
        // entries are encoding+data; prevlen is added here.
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = ZL_HEADER;
        for e in entries {
            last = ZL_HEADER + body.len();
            let start = body.len();
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(0xFE);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            body.extend_from_slice(e);
            prev = body.len() - start;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((ZL_HEADER + body.len() + 1) as u32).to_le_bytes());
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(ZL_END);
        out
    }

    #[test]
    fn ziplist_every_encoding() {
        let long = [&[0x41u8, 0x2C][..], &[b'y'; 300][..]].concat();
        let blob = zl(&[
            &[0x02, b'h', b'i'],
            &long,
            &[0x80, 0, 0, 0, 1, b'z'],
            &[0xC0, 0x34, 0x12],
            &[0xD0, 1, 0, 0, 0],
            &[0xE0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0xF0, 0, 0, 0x80],
            &[0xFE, 0x80],
            &[0xF1],
            &[0xFD],
        ]);
        let got = ziplist_entries(&blob).expect("valid");
        let want: Vec<String> = vec![
            "hi".into(),
            "y".repeat(300),
            "z".into(),
            "4660".into(),
            "1".into(),
            "-2".into(),
            "-8388608".into(),
            "-128".into(),
            "0".into(),
            "12".into(),
        ];
        assert_eq!(got, want.into_iter().map(Bytes::from).collect::<Vec<_>>());
        for cut in 0..blob.len() {
            assert!(ziplist_entries(&blob[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x55;
            let _ = ziplist_entries(&bad);
        }
        let mut bad = blob.clone();
        bad[4] += 1; // tail
        assert!(ziplist_entries(&bad).is_err());
    }

    #[test]
    fn zipmap_pairs_and_corruption() {
        // 2 pairs: "a" -> "1" (1 free byte), "bb" -> "".
        let blob = [2, 1, b'a', 1, 1, b'1', 0, 2, b'b', b'b', 0, 0, 0xFF];
        let got = zipmap_pairs(&blob).expect("valid");
        assert_eq!(
            got,
            vec![
                (Bytes::from("a"), Bytes::from("1")),
                (Bytes::from("bb"), Bytes::new())
            ]
        );
        for cut in 0..blob.len() {
            assert!(zipmap_pairs(&blob[..cut]).is_err(), "cut {cut}");
        }
        let mut bad = blob;
        bad[0] = 3;
        assert!(zipmap_pairs(&bad).is_err());
    }

    #[test]
    fn intset_round_trip_and_checks() {
        for set in [
            vec![],
            vec![-3, 0, 7],
            vec![-40000, 1],
            vec![1, i64::from(i32::MAX) + 1],
        ] {
            let blob = write_intset(&set);
            assert_eq!(intset_members(&blob).expect("valid"), set);
        }
        assert_eq!(write_intset(&[1, 2])[0], 2);
        assert_eq!(write_intset(&[1, 70000])[0], 4);
        assert_eq!(write_intset(&[i64::MIN])[0], 8);
        let blob = write_intset(&[1, 2, 3]);
        for cut in 0..blob.len() {
            assert!(intset_members(&blob[..cut]).is_err(), "cut {cut}");
        }
        let mut unsorted = blob.clone();
        unsorted[8] = 5;
        assert!(intset_members(&unsorted).is_err());
        let mut width = blob.clone();
        width[0] = 3;
        assert!(intset_members(&width).is_err());
        let mut huge = blob;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(intset_members(&huge).is_err());
    }
}
