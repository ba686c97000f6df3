//! RDB wire-format facts: the magic and version range, opcodes, value-type
//! bytes with their Redis names, the length and special string encodings, and
//! small pure helpers that turn numbers into those byte forms. This file does
//! no I/O of its own; the encoder and decoder call these helpers.

/// The five bytes every RDB file starts with, followed by a 4-digit version.
pub const MAGIC: &[u8; 5] = b"REDIS";
/// Oldest RDB version the decoder accepts.
pub const MIN_VERSION: u32 = 1;
/// Newest RDB version the decoder accepts (Redis 7.4 writes 12).
pub const MAX_VERSION: u32 = 12;
/// The version Redis 7.0 writes, and the newest it loads.
pub const DEFAULT_VERSION: u32 = 10;
/// From this version on, an 8-byte CRC64 trailer follows the EOF opcode.
pub const CHECKSUM_MIN_VERSION: u32 = 5;

// Opcodes (rdb.h, RDB_OPCODE_*).
/// Redis 7.4 cluster slot info: three lengths (slot, size, expires size).
pub const OP_SLOT_INFO: u8 = 0xF4;
/// A function library (Redis 7.0 GA onwards).
pub const OP_FUNCTION2: u8 = 0xF5;
/// A function (Redis 7.0 release candidates only).
pub const OP_FUNCTION_PRE_GA: u8 = 0xF6;
/// Module auxiliary data.
pub const OP_MODULE_AUX: u8 = 0xF7;
/// LRU idle time of the next key (a length).
pub const OP_IDLE: u8 = 0xF8;
/// LFU frequency of the next key (one byte).
pub const OP_FREQ: u8 = 0xF9;
/// Auxiliary field: two strings.
pub const OP_AUX: u8 = 0xFA;
/// Hash table size hints: two lengths.
pub const OP_RESIZEDB: u8 = 0xFB;
/// Expire time of the next key, milliseconds, 8 bytes little-endian.
pub const OP_EXPIRETIME_MS: u8 = 0xFC;
/// Expire time of the next key, seconds, 4 bytes little-endian.
pub const OP_EXPIRETIME: u8 = 0xFD;
/// Switch database: one length.
pub const OP_SELECTDB: u8 = 0xFE;
/// End of file (then the CRC64 trailer from version 5 on).
pub const OP_EOF: u8 = 0xFF;

/// Value type byte of a plain string.
pub const TYPE_STRING: u8 = 0;
/// A list as a linked list: a length, then that many strings (RDB < 7).
pub const TYPE_LIST: u8 = 1;
/// A set: a length, then that many strings.
pub const TYPE_SET: u8 = 2;
/// A sorted set: a length, then member strings each followed by its score
/// as text (one length byte: 253 NaN, 254 +inf, 255 -inf).
pub const TYPE_ZSET: u8 = 3;
/// A hash: a length, then that many field/value string pairs.
pub const TYPE_HASH: u8 = 4;
/// A sorted set: a length, then member strings each followed by its score
/// as an 8-byte little-endian IEEE double (what Redis 7.0 writes for a
/// "skiplist").
pub const TYPE_ZSET_2: u8 = 5;
/// A hash as a zipmap blob (RDB < 4, still loaded by Redis 7).
pub const TYPE_HASH_ZIPMAP: u8 = 9;
/// A list as one ziplist blob (RDB < 7).
pub const TYPE_LIST_ZIPLIST: u8 = 10;
/// A set of integers as an intset blob.
pub const TYPE_SET_INTSET: u8 = 11;
/// A sorted set as a ziplist blob of member, score, ... (RDB < 10).
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
/// A hash as a ziplist blob (RDB < 10).
pub const TYPE_HASH_ZIPLIST: u8 = 13;
/// A list as quicklist nodes: a node count, then a ziplist blob per node
/// (Redis 3.2 to 6.2).
pub const TYPE_LIST_QUICKLIST: u8 = 14;
/// A hash as a listpack blob (Redis 7.0).
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// A sorted set as a listpack blob of member, score, ... (Redis 7.0).
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// A list as quicklist nodes, each a container length (1 plain, 2 packed)
/// then a blob: one element, or a listpack (Redis 7.0).
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// A quicklist 2 node holding one element as it is.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// A quicklist 2 node holding a listpack.
pub const QUICKLIST_NODE_PACKED: u64 = 2;
/// A set as a listpack blob (Redis 7.2).
pub const TYPE_SET_LISTPACK: u8 = 20;
/// A stream: nodes as listpacks, last ID, consumer groups (Redis 5).
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// A stream with its first ID, greatest deleted ID, entries added, and
/// the groups' entries read (Redis 7.0).
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// As 19, with each consumer's active time (Redis 7.2).
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

// Length encodings: the two top bits of the first byte.
/// `00xxxxxx`: 6-bit length in the first byte.
pub const LEN_6BIT: u8 = 0;
/// `01xxxxxx xxxxxxxx`: 14-bit big-endian length.
pub const LEN_14BIT: u8 = 1;
/// `11xxxxxx`: a special string encoding follows (low 6 bits say which).
pub const LEN_ENCVAL: u8 = 3;
/// `0x80` then a 32-bit big-endian length.
pub const LEN_32BIT: u8 = 0x80;
/// `0x81` then a 64-bit big-endian length.
pub const LEN_64BIT: u8 = 0x81;

// Special string encodings (low 6 bits of a `11xxxxxx` byte).
/// One signed byte.
pub const ENC_INT8: u8 = 0;
/// Two bytes, signed little-endian.
pub const ENC_INT16: u8 = 1;
/// Four bytes, signed little-endian.
pub const ENC_INT32: u8 = 2;
/// LZF: compressed length, original length, compressed bytes.
pub const ENC_LZF: u8 = 3;

/// Longest string the decoder will accept (Redis itself caps strings at
/// 512 MiB by default); longer lengths are reported as corruption before any
/// buffer is sized from them.
pub const MAX_STRING_LEN: u64 = 1 << 32;
/// Longest string Redis tries to store as an integer encoding.
pub const MAX_INT_ENCODED_LEN: usize = 11;
/// Strings up to this length are never LZF-compressed.
pub const LZF_MIN_LEN_EXCLUSIVE: usize = 20;
/// Compression must save at least this many bytes to be used.
pub const LZF_MIN_SAVING: usize = 4;

/// The Redis name of a value type byte, or `None` for a byte that is no
/// known type.
pub fn type_name(type_byte: u8) -> Option<&'static str> {
    Some(match type_byte {
        0 => "string",
        1 => "list",
        2 => "set",
        3 => "zset",
        4 => "hash",
        5 => "zset_2",
        6 => "module_pre_ga",
        7 => "module_2",
        9 => "hash_zipmap",
        10 => "list_ziplist",
        11 => "set_intset",
        12 => "zset_ziplist",
        13 => "hash_ziplist",
        14 => "list_quicklist",
        15 => "stream_listpacks",
        16 => "hash_listpack",
        17 => "zset_listpack",
        18 => "list_quicklist_2",
        19 => "stream_listpacks_2",
        20 => "set_listpack",
        21 => "stream_listpacks_3",
        22 => "hash_metadata_pre_ga",
        23 => "hash_listpack_ex_pre_ga",
        24 => "hash_metadata",
        25 => "hash_listpack_ex",
        _ => return None,
    })
}

/// The Redis name of an opcode byte, or `None` if it is not an opcode.
pub fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        OP_SLOT_INFO => "SLOT_INFO",
        OP_FUNCTION2 => "FUNCTION2",
        OP_FUNCTION_PRE_GA => "FUNCTION_PRE_GA",
        OP_MODULE_AUX => "MODULE_AUX",
        OP_IDLE => "IDLE",
        OP_FREQ => "FREQ",
        OP_AUX => "AUX",
        OP_RESIZEDB => "RESIZEDB",
        OP_EXPIRETIME_MS => "EXPIRETIME_MS",
        OP_EXPIRETIME => "EXPIRETIME",
        OP_SELECTDB => "SELECTDB",
        OP_EOF => "EOF",
        _ => return None,
    })
}

/// The 9-byte header `REDIS` + zero-padded 4-digit version, or `None` when
/// the version does not fit in four digits.
pub fn header(version: u32) -> Option<[u8; 9]> {
    if version > 9999 {
        return None;
    }
    let mut h = [0u8; 9];
    h[..5].copy_from_slice(MAGIC);
    let digits = format!("{version:04}");
    h[5..].copy_from_slice(digits.as_bytes());
    Some(h)
}

/// Parses the version digits of a header; `None` unless all four are ASCII
/// digits.
pub fn parse_version(digits: &[u8; 4]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// Appends the shortest Redis length encoding of `len` to `out`.
pub fn encode_len(len: u64, out: &mut Vec<u8>) {
    if len < (1 << 6) {
        out.push((LEN_6BIT << 6) | len as u8);
    } else if len < (1 << 14) {
        out.push((LEN_14BIT << 6) | (len >> 8) as u8);
        out.push((len & 0xFF) as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(LEN_32BIT);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Redis's strict integer test for the integer string encodings: the bytes
/// must be the canonical decimal form of an `i64` (no `+`, no leading
/// zeros, no `-0`, no spaces) of at most 11 bytes, and the value must fit
/// in 32 bits. Returns the value when the string should be stored as an
/// INT8/INT16/INT32 encoding.
pub fn int_encodable(s: &[u8]) -> Option<i32> {
    if s.len() > MAX_INT_ENCODED_LEN {
        return None;
    }
    // The strict (canonical) form is what makes the integer encoding
    // lossless; no allocation per saved value.
    crate::util::num::parse_i64_strict(s).and_then(|v| i32::try_from(v).ok())
}

/// Appends the smallest INT8/INT16/INT32 special encoding of `v` to `out`.
pub fn encode_int(v: i32, out: &mut Vec<u8>) {
    let enc = LEN_ENCVAL << 6;
    if let Ok(b) = i8::try_from(v) {
        out.push(enc | ENC_INT8);
        out.extend_from_slice(&b.to_le_bytes());
    } else if let Ok(h) = i16::try_from(v) {
        out.push(enc | ENC_INT16);
        out.extend_from_slice(&h.to_le_bytes());
    } else {
        out.push(enc | ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Upper bound on how much LZF data of `compressed_len` bytes can expand
/// to (a 3-byte back reference yields at most 264 bytes).
pub fn lzf_max_expansion(compressed_len: u64) -> u64 {
    compressed_len.saturating_mul(88)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_bytes(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_len(n, &mut v);
        v
    }

    #[test]
    fn length_forms() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3F]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(16383), [0x7F, 0xFF]);
        assert_eq!(len_bytes(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(
            len_bytes(u64::from(u32::MAX)),
            [0x80, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(len_bytes(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn strict_integers() {
        assert_eq!(int_encodable(b"0"), Some(0));
        assert_eq!(int_encodable(b"-1"), Some(-1));
        assert_eq!(int_encodable(b"2147483647"), Some(i32::MAX));
        assert_eq!(int_encodable(b"-2147483648"), Some(i32::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"2147483648",
            b"12345678901",
            b"1e3",
            b"-",
            b"\xff",
        ] {
            assert_eq!(int_encodable(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn int_forms() {
        let enc = |v| {
            let mut o = Vec::new();
            encode_int(v, &mut o);
            o
        };
        assert_eq!(enc(-128), [0xC0, 0x80]);
        assert_eq!(enc(128), [0xC1, 0x80, 0x00]);
        assert_eq!(enc(-32769), [0xC2, 0xFF, 0x7F, 0xFF, 0xFF]);
    }

    #[test]
    fn header_and_version() {
        assert_eq!(&header(10).unwrap(), b"REDIS0010");
        assert_eq!(header(10000), None);
        assert_eq!(parse_version(b"0012"), Some(12));
        assert_eq!(parse_version(b"00a1"), None);
        assert!(type_name(8).is_none());
        assert_eq!(type_name(20), Some("set_listpack"));
        assert_eq!(opcode_name(0xF7), Some("MODULE_AUX"));
    }
}
