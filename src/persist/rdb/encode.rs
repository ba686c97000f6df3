//! The streaming RDB writer: header, AUX fields, SELECTDB/RESIZEDB, entries
//! (strings with Redis 7.0's integer / LZF / raw string choice; hashes as
//! plain RDB_TYPE_HASH; sets as SET_INTSET or plain RDB_TYPE_SET; lists as
//! LIST_QUICKLIST_2 of listpack nodes, as Redis 7.0 writes them; sorted sets
//! as ZSET_2; all types
//! Redis 7.0 loads) and the EOF opcode with its CRC64 trailer. This file does no I/O of its own: every
//! byte goes to the caller's `RdbSink`, and a running CRC64 is kept of them.

use super::blobs;
use super::crc64::Crc64;
use super::format;
use super::lzf;
use super::{EncodeOptions, KeyStamp, RdbAux, RdbSink, RdbValue};

/// Writes one snapshot to a sink, item by item.
pub struct RdbEncoder<S: RdbSink> {
    sink: S,
    opts: EncodeOptions,
    crc: Crc64,
    scratch: Vec<u8>,
    /// LZF output, reused from string to string.
    packed: Vec<u8>,
    /// IDLE/FREQ for the next entry (see [`RdbEncoder::stamp_next`]).
    next_stamp: Option<KeyStamp>,
    /// Entries are written as values alone (type byte and value), as DUMP
    /// serializes them: see [`RdbEncoder::bare`].
    bare: bool,
}

impl<S: RdbSink> RdbEncoder<S> {
    /// Starts a snapshot: writes `REDIS` and the 4-digit version.
    /// Fails with `InvalidInput` for a version outside 1..=12.
    pub fn new(sink: S, opts: EncodeOptions) -> std::io::Result<Self> {
        if !(format::MIN_VERSION..=format::MAX_VERSION).contains(&opts.version) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot write RDB version {}", opts.version),
            ));
        }
        let header = format::header(opts.version).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "RDB version too large")
        })?;
        let mut enc = RdbEncoder {
            sink,
            opts,
            crc: Crc64::new(),
            scratch: Vec::with_capacity(64),
            packed: Vec::new(),
            next_stamp: None,
            bare: false,
        };
        enc.put(&header)?;
        Ok(enc)
    }

    /// Entries encoded apart from the file, for example on the shard that
    /// owns the keys, then copied into a snapshot with
    /// [`RdbEncoder::splice`]: no header, no checksum of its own.
    pub fn fragment(sink: S, opts: EncodeOptions) -> Self {
        RdbEncoder {
            sink,
            opts: EncodeOptions {
                checksum: false,
                ..opts
            },
            crc: Crc64::new(),
            scratch: Vec::with_capacity(64),
            packed: Vec::new(),
            next_stamp: None,
            bare: false,
        }
    }

    /// An encoder whose entries are values alone, without expire time,
    /// access stamp or key: the body of a DUMP payload.
    pub fn bare(sink: S, opts: EncodeOptions) -> Self {
        RdbEncoder {
            bare: true,
            ..Self::fragment(sink, opts)
        }
    }

    /// The sink, with everything written so far.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Gives the sink back (a fragment's bytes), without an EOF.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Appends whole entries a [`RdbEncoder::fragment`] with the same
    /// options produced.
    pub fn splice(&mut self, entries: &[u8]) -> std::io::Result<()> {
        self.put(entries)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // Without `rdbchecksum` the trailer is zero: skip the work.
        if self.opts.checksum {
            self.crc.update(bytes);
        }
        self.sink.write(bytes)
    }

    fn flush_scratch(&mut self) -> std::io::Result<()> {
        let buf = std::mem::take(&mut self.scratch);
        let res = self.put(&buf);
        self.scratch = buf;
        self.scratch.clear();
        res
    }

    /// Writes a string the way Redis 7.0's `rdbSaveRawString` does.
    fn string(&mut self, s: &[u8]) -> std::io::Result<()> {
        self.scratch.clear();
        if let Some(v) = format::int_encodable(s) {
            format::encode_int(v, &mut self.scratch);
            return self.flush_scratch();
        }
        if self.opts.compress
            && s.len() > format::LZF_MIN_LEN_EXCLUSIVE
            && lzf::compress_into(s, s.len() - format::LZF_MIN_SAVING, &mut self.packed)
        {
            self.scratch
                .push((format::LEN_ENCVAL << 6) | format::ENC_LZF);
            format::encode_len(self.packed.len() as u64, &mut self.scratch);
            format::encode_len(s.len() as u64, &mut self.scratch);
            self.flush_scratch()?;
            let packed = std::mem::take(&mut self.packed);
            let res = self.put(&packed);
            self.packed = packed;
            return res;
        }
        format::encode_len(s.len() as u64, &mut self.scratch);
        self.flush_scratch()?;
        self.put(s)
    }

    fn len(&mut self, n: u64) -> std::io::Result<()> {
        self.scratch.clear();
        format::encode_len(n, &mut self.scratch);
        self.flush_scratch()
    }

    /// An AUX field (opcode 0xFA): two strings.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.put(&[format::OP_AUX])?;
        self.string(key)?;
        self.string(value)
    }

    /// A function library (opcode 0xF5): its whole code.
    pub fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.put(&[format::OP_FUNCTION2])?;
        self.string(code)
    }

    /// All AUX fields of `aux`, in order.
    pub fn aux_all(&mut self, aux: &RdbAux) -> std::io::Result<()> {
        for (k, v) in &aux.pairs {
            self.aux(k, v)?;
        }
        Ok(())
    }

    /// SELECTDB (0xFE) then RESIZEDB (0xFB) with the size hints.
    pub fn select_db(&mut self, db: u32, db_size: u64, expires_size: u64) -> std::io::Result<()> {
        self.put(&[format::OP_SELECTDB])?;
        self.len(u64::from(db))?;
        self.put(&[format::OP_RESIZEDB])?;
        self.len(db_size)?;
        self.len(expires_size)
    }

    /// Gives the next entry an IDLE or FREQ opcode (Redis writes one per
    /// key under an LRU or LFU `maxmemory-policy`).
    pub fn stamp_next(&mut self, stamp: KeyStamp) {
        self.next_stamp = Some(stamp);
    }

    /// EXPIRETIME_MS (0xFC, 8 bytes little-endian) when set, IDLE (0xF8)
    /// or FREQ (0xF9) when [`RdbEncoder::stamp_next`] gave one, the type
    /// byte and the key: how every entry starts.
    fn entry_head(&mut self, ty: u8, key: &[u8], expire_at_ms: Option<u64>) -> std::io::Result<()> {
        if self.bare {
            return self.put(&[ty]);
        }
        if let Some(ms) = expire_at_ms {
            let mut b = [0u8; 9];
            b[0] = format::OP_EXPIRETIME_MS;
            b[1..].copy_from_slice(&ms.to_le_bytes());
            self.put(&b)?;
        }
        match self.next_stamp.take() {
            Some(KeyStamp::IdleSecs(secs)) => {
                self.put(&[format::OP_IDLE])?;
                self.len(secs)?;
            }
            Some(KeyStamp::Freq(counter)) => self.put(&[format::OP_FREQ, counter])?,
            None => {}
        }
        self.put(&[ty])?;
        self.string(key)
    }

    /// One key: EXPIRETIME_MS when set, then the type byte, key and value.
    /// A string key, from borrowed bytes.
    pub fn string_entry(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        self.entry_head(format::TYPE_STRING, key, expire_at_ms)?;
        self.string(value)
    }

    pub fn entry(
        &mut self,
        key: &[u8],
        value: &RdbValue,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        match value {
            RdbValue::String(v) => self.string_entry(key, v, expire_at_ms),
            RdbValue::Hash(pairs) => self.hash_entry(
                key,
                pairs.len(),
                pairs.iter().map(|(f, v)| (f.as_ref(), v.as_ref())),
                expire_at_ms,
            ),
            RdbValue::Set(members) => self.set_entry(
                key,
                members.len(),
                members.iter().map(|m| m.as_ref()),
                expire_at_ms,
            ),
            RdbValue::Zset(pairs) => self.zset_entry(
                key,
                pairs.len(),
                pairs.iter().map(|(m, s)| (m.as_ref(), *s)),
                expire_at_ms,
            ),
            RdbValue::List(items) => {
                let node: Vec<&[u8]> = items.iter().map(|i| i.as_ref()).collect();
                self.list_entry(key, std::iter::once(node.into_iter()), expire_at_ms)
            }
            RdbValue::Stream(st) => self.stream_entry(key, st, expire_at_ms),
        }
    }

    /// A stream as STREAM_LISTPACKS_2, what Redis 7.0 writes: each node as
    /// its 16-byte master ID and its listpack, then the length, last ID,
    /// first ID, greatest deleted ID, entries added, and the consumer
    /// groups (see the decoder's `stream_groups`).
    pub fn stream_entry(
        &mut self,
        key: &[u8],
        st: &crate::keyspace::StreamValue,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        self.entry_head(format::TYPE_STREAM_LISTPACKS_2, key, expire_at_ms)?;
        self.len(st.node_count() as u64)?;
        for (master, node) in st.nodes() {
            self.string(&super::stream::node_key(*master))?;
            self.string(&super::stream::node_listpack(*master, node))?;
        }
        self.len(st.len())?;
        for id in [st.last_id, st.first_id, st.max_deleted_id] {
            self.len(id.ms)?;
            self.len(id.seq)?;
        }
        self.len(st.entries_added)?;
        self.len(st.groups.len() as u64)?;
        for (name, g) in &st.groups {
            self.string(name)?;
            self.len(g.last_id.ms)?;
            self.len(g.last_id.seq)?;
            // Unknown (-1) goes as the 64-bit length 2^64 - 1, as in Redis.
            self.len(g.entries_read as u64)?;
            self.len(g.pending.len() as u64)?;
            for (id, p) in &g.pending {
                self.put(&super::stream::node_key(*id))?;
                self.put(&p.delivery_ms.to_le_bytes())?;
                self.len(p.deliveries)?;
            }
            self.len(g.consumers.len() as u64)?;
            for (cname, c) in &g.consumers {
                self.string(cname)?;
                self.put(&c.seen_ms.to_le_bytes())?;
                self.len(c.pending.len() as u64)?;
                for id in &c.pending {
                    self.put(&super::stream::node_key(*id))?;
                }
            }
        }
        Ok(())
    }

    /// A list as LIST_QUICKLIST_2: one packed (listpack) node per item of
    /// `nodes`, each yielding that node's elements. Empty nodes are not
    /// written (Redis would skip them); a list with no element at all is
    /// an error, as no Redis loads an empty list.
    pub fn list_entry<'a, N>(
        &mut self,
        key: &[u8],
        nodes: impl Iterator<Item = N>,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()>
    where
        N: Iterator<Item = &'a [u8]>,
    {
        let blobs: Vec<Vec<u8>> = nodes
            .map(|n| n.peekable())
            .filter_map(|mut n| n.peek().is_some().then(|| blobs::write_listpack(n)))
            .collect();
        if blobs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an empty list cannot be saved",
            ));
        }
        self.entry_head(format::TYPE_LIST_QUICKLIST_2, key, expire_at_ms)?;
        self.len(blobs.len() as u64)?;
        for b in &blobs {
            self.len(format::QUICKLIST_NODE_PACKED)?;
            self.string(b)?;
        }
        Ok(())
    }

    /// A hash as RDB_TYPE_HASH: its `len` pairs, which `pairs` must yield
    /// exactly (a mismatch would corrupt the file, so it is an error).
    pub fn hash_entry<'a>(
        &mut self,
        key: &[u8],
        len: usize,
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        self.entry_head(format::TYPE_HASH, key, expire_at_ms)?;
        self.len(len as u64)?;
        let mut n = 0;
        for (f, v) in pairs {
            self.string(f)?;
            self.string(v)?;
            n += 1;
        }
        check_count(n, len)
    }

    /// A set as RDB_TYPE_SET: its `len` members, which `members` must
    /// yield exactly.
    pub fn set_entry<'a>(
        &mut self,
        key: &[u8],
        len: usize,
        members: impl Iterator<Item = &'a [u8]>,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        self.entry_head(format::TYPE_SET, key, expire_at_ms)?;
        self.len(len as u64)?;
        let mut n = 0;
        for m in members {
            self.string(m)?;
            n += 1;
        }
        check_count(n, len)
    }

    /// A sorted set as RDB_TYPE_ZSET_2 (binary double scores, what Redis
    /// 7.0 writes for "skiplist" sets and loads for any size): its `len`
    /// pairs, which `pairs` must yield exactly. Redis writes the elements
    /// from the highest to the lowest so that loading inserts at the head;
    /// `pairs` may come in any order, the loader does not care.
    pub fn zset_entry<'a>(
        &mut self,
        key: &[u8],
        len: usize,
        pairs: impl Iterator<Item = (&'a [u8], f64)>,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        self.entry_head(format::TYPE_ZSET_2, key, expire_at_ms)?;
        self.len(len as u64)?;
        let mut n = 0;
        for (m, s) in pairs {
            self.string(m)?;
            self.put(&s.to_le_bytes())?;
            n += 1;
        }
        check_count(n, len)
    }

    /// A set of integers as SET_INTSET; `sorted` must be ascending without
    /// duplicates (an intset's invariant).
    pub fn intset_entry(
        &mut self,
        key: &[u8],
        sorted: &[i64],
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        if sorted.windows(2).any(|w| w[0] >= w[1]) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "intset members must be strictly ascending",
            ));
        }
        self.entry_head(format::TYPE_SET_INTSET, key, expire_at_ms)?;
        let blob = blobs::write_intset(sorted);
        // Through `string` like Redis: large intsets get LZF-compressed.
        self.string(&blob)
    }

    /// Ends the snapshot: EOF (0xFF), then from version 5 on the CRC64 of
    /// everything before it, little-endian (zeros when checksums are off).
    /// Returns the sink.
    pub fn finish(mut self) -> std::io::Result<S> {
        self.put(&[format::OP_EOF])?;
        if self.opts.version >= format::CHECKSUM_MIN_VERSION {
            let crc = if self.opts.checksum {
                self.crc.value()
            } else {
                0
            };
            self.sink.write(&crc.to_le_bytes())?;
        }
        Ok(self.sink)
    }
}

/// A collection that yielded another number of elements than its header
/// announced: the file would be unreadable, so the save fails instead.
fn check_count(written: usize, announced: usize) -> std::io::Result<()> {
    if written == announced {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("collection announced {announced} elements but yielded {written}"),
        ))
    }
}
