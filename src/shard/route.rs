//! Which shard owns a key.
//!
//! A key maps to one of Redis Cluster's 16384 hash slots (CRC16/XMODEM of the
//! key, or of its `{hash tag}` when it has one), and slot `s` belongs to shard
//! `s % shards`. Using the cluster's slot function means operators already
//! know how to keep related keys together: keys sharing a hash tag always
//! live on one shard, so multi-key commands on them never cross shards.
//! Pure functions; depends on nothing.

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16/XMODEM, the checksum Redis Cluster uses for key slots.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[((crc >> 8) as u8 ^ b) as usize]
    })
}

/// The part of a key that is hashed: the text between the first `{` and the
/// next `}` when that is non-empty, else the whole key (Redis Cluster rules).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[open + 1..]) {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

/// The shard that owns `key` among `shards` shards.
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    key_slot(key) as usize % shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_reference_vector() {
        // The check value of CRC16/XMODEM, quoted in the Redis Cluster spec.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn slots_match_redis_cluster() {
        // Values CLUSTER KEYSLOT returns on a real Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_colocate_keys() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(
            shard_of(b"{a}x", 7),
            shard_of(b"{a}y", 7),
            "one tag, one shard"
        );
        assert_eq!(shard_of(b"anything", 1), 0);
    }
}
