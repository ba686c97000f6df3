//! The streaming RDB reader: checks the header, then yields AUX, SELECTDB,
//! RESIZEDB and entries (strings; hashes as plain, zipmap, ziplist or
//! listpack; sets as plain, intset or listpack; lists as plain, ziplist,
//! quicklist of ziplists or quicklist 2 of listpacks and plain nodes; sorted
//! sets as ZSET, ZSET_2, ziplist or listpack) one at a time, skips
//! IDLE/FREQ/SLOT_INFO, refuses other value types and MODULE_AUX/FUNCTION
//! opcodes with a clear error, and verifies the CRC64 trailer at EOF. This file does no I/O of its
//! own: bytes come from the caller's `RdbSource`. Lengths read from the data
//! never size an allocation beyond what has actually arrived.

use bytes::Bytes;

use super::blobs;
use super::crc64::Crc64;
use super::format;
use super::lzf;
use super::{KeyStamp, RdbEntry, RdbError, RdbItem, RdbSource, RdbValue};

/// Strings are read in pieces of at most this size, so a forged length
/// costs memory only as fast as real data arrives.
const READ_CHUNK: usize = 64 * 1024;
/// Most elements reserved up front for a collection whose length comes
/// from the file (the rest grows as elements actually arrive).
const PREALLOC_ELEMENTS: usize = 4096;

/// A length field or a special-encoding marker.
enum Len {
    Plain(u64),
    Special(u8),
}

/// Reads one snapshot from a source, item by item.
pub struct RdbDecoder<S: RdbSource> {
    src: S,
    version: u32,
    offset: u64,
    crc: Crc64,
    db: u32,
    done: bool,
}

impl<S: RdbSource> RdbDecoder<S> {
    /// Reads and checks the 9-byte header; versions 1..=12 are accepted.
    pub fn new(src: S) -> Result<Self, RdbError> {
        let mut dec = RdbDecoder {
            src,
            version: 0,
            offset: 0,
            crc: Crc64::new(),
            db: 0,
            done: false,
        };
        let mut header = [0u8; 9];
        dec.read(&mut header).map_err(|e| match e {
            RdbError::Corrupt { .. } => RdbError::BadMagic,
            other => other,
        })?;
        if &header[..5] != format::MAGIC {
            return Err(RdbError::BadMagic);
        }
        let digits: [u8; 4] = [header[5], header[6], header[7], header[8]];
        let version = format::parse_version(&digits).ok_or(RdbError::BadMagic)?;
        if !(format::MIN_VERSION..=format::MAX_VERSION).contains(&version) {
            return Err(RdbError::UnsupportedVersion(version));
        }
        dec.version = version;
        Ok(dec)
    }

    /// Decodes a value serialized on its own, as DUMP writes it: the type
    /// byte and the value, nothing before or after (the caller has checked
    /// and removed DUMP's version and checksum footer). `version` is the
    /// footer's RDB version.
    pub fn bare_value(src: S, version: u32) -> Result<RdbValue, RdbError> {
        let mut dec = RdbDecoder {
            src,
            version,
            offset: 0,
            crc: Crc64::new(),
            db: 0,
            done: false,
        };
        let ty = dec.u8()?;
        dec.value(ty, b"")
    }

    /// The libraries of a FUNCTION DUMP payload's body (footer removed):
    /// function records until the end of `len` bytes.
    pub fn bare_functions(src: S, len: u64) -> Result<Vec<Bytes>, RdbError> {
        let mut dec = RdbDecoder {
            src,
            version: format::MAX_VERSION,
            offset: 0,
            crc: Crc64::new(),
            db: 0,
            done: false,
        };
        let mut codes = Vec::new();
        while dec.offset < len {
            let at = dec.offset;
            match dec.u8()? {
                format::OP_FUNCTION2 => codes.push(dec.string("function library")?),
                format::OP_FUNCTION_PRE_GA => codes.push(dec.pre_ga_function()?),
                other => {
                    return Err(dec.corrupt(at, format!("given type {other} is not a function")))
                }
            }
        }
        Ok(codes)
    }

    /// A function saved by a Redis 7.0 release candidate (opcode 0xF6):
    /// name, engine, an optional description and the body, turned into
    /// the library code Redis 7.0 makes of it.
    fn pre_ga_function(&mut self) -> Result<Bytes, RdbError> {
        let name = self.string("library name")?;
        let engine = self.string("engine name")?;
        if self.len("library description indicator")? != 0 {
            self.string("library description")?;
        }
        let body = self.string("library blob")?;
        let mut code = Vec::with_capacity(body.len() + name.len() + engine.len() + 10);
        code.extend_from_slice(b"#!");
        code.extend_from_slice(&engine);
        code.extend_from_slice(b" name=");
        code.extend_from_slice(&name);
        code.push(b'\n');
        code.extend_from_slice(&body);
        Ok(Bytes::from(code))
    }

    /// The RDB version from the header.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn corrupt(&self, at: u64, what: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset: at,
            what: what.into(),
        }
    }

    /// Reads exactly `buf.len()` bytes into the checksum.
    fn read(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.read_raw(buf)?;
        self.crc.update(buf);
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes without checksumming them; a short
    /// read becomes `Corrupt` naming the offset.
    fn read_raw(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        match self.src.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.corrupt(
                self.offset,
                format!("unexpected end of data (needed {} more bytes)", buf.len()),
            )),
            Err(e) => Err(RdbError::Io(e)),
        }
    }

    fn u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.read(&mut b)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.read(&mut b)?;
        Ok(b)
    }

    fn len_or_special(&mut self) -> Result<Len, RdbError> {
        let first = self.u8()?;
        match first >> 6 {
            format::LEN_6BIT => Ok(Len::Plain(u64::from(first & 0x3F))),
            format::LEN_14BIT => {
                let second = self.u8()?;
                Ok(Len::Plain(
                    (u64::from(first & 0x3F) << 8) | u64::from(second),
                ))
            }
            format::LEN_ENCVAL => Ok(Len::Special(first & 0x3F)),
            _ => match first {
                format::LEN_32BIT => Ok(Len::Plain(u64::from(u32::from_be_bytes(self.array()?)))),
                format::LEN_64BIT => Ok(Len::Plain(u64::from_be_bytes(self.array()?))),
                other => Err(self.corrupt(
                    self.offset - 1,
                    format!("unknown length encoding byte {other:#04x}"),
                )),
            },
        }
    }

    /// A plain length (a special string encoding here is corruption).
    fn len(&mut self, what: &str) -> Result<u64, RdbError> {
        let at = self.offset;
        match self.len_or_special()? {
            Len::Plain(n) => Ok(n),
            Len::Special(e) => Err(self.corrupt(
                at,
                format!("expected a length for {what}, found string encoding {e}"),
            )),
        }
    }

    /// `n` bytes, bounded by `format::MAX_STRING_LEN` and read in chunks.
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, RdbError> {
        if n > format::MAX_STRING_LEN {
            return Err(self.corrupt(
                self.offset,
                format!(
                    "{what} length {n} exceeds the {} byte limit",
                    format::MAX_STRING_LEN
                ),
            ));
        }
        let n = usize::try_from(n)
            .map_err(|_| self.corrupt(self.offset, format!("{what} length {n} too large")))?;
        let mut buf = Vec::with_capacity(n.min(READ_CHUNK));
        while buf.len() < n {
            let start = buf.len();
            let step = (n - start).min(READ_CHUNK);
            buf.resize(start + step, 0);
            self.read(&mut buf[start..])?;
        }
        Ok(buf)
    }

    /// A string in any encoding: raw, INT8/16/32 (returned as decimal text)
    /// or LZF.
    fn string(&mut self, what: &str) -> Result<Bytes, RdbError> {
        let at = self.offset;
        match self.len_or_special()? {
            Len::Plain(n) => Ok(Bytes::from(self.bytes(n, what)?)),
            Len::Special(format::ENC_INT8) => {
                let v = i8::from_le_bytes(self.array()?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Special(format::ENC_INT16) => {
                let v = i16::from_le_bytes(self.array()?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Special(format::ENC_INT32) => {
                let v = i32::from_le_bytes(self.array()?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Special(format::ENC_LZF) => {
                let clen = self.len("LZF compressed length")?;
                let ulen = self.len("LZF original length")?;
                if ulen > format::MAX_STRING_LEN {
                    return Err(self.corrupt(
                        at,
                        format!("{what}: LZF original length {ulen} exceeds the limit"),
                    ));
                }
                if ulen > format::lzf_max_expansion(clen) {
                    return Err(self.corrupt(
                        at,
                        format!("{what}: LZF cannot expand {clen} bytes to {ulen}"),
                    ));
                }
                let data = self.bytes(clen, what)?;
                let ulen = usize::try_from(ulen)
                    .map_err(|_| self.corrupt(at, format!("{what}: LZF length too large")))?;
                lzf::decompress(&data, ulen)
                    .map(Bytes::from)
                    .map_err(|e| self.corrupt(at, format!("{what}: {e}")))
            }
            Len::Special(e) => {
                Err(self.corrupt(at, format!("{what}: unknown string encoding {e}")))
            }
        }
    }

    /// The next item. After `Eof` (whose trailer has been checked), further
    /// calls return `Eof` again. (Not `Iterator::next`: the end is an item,
    /// and every step can fail.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<RdbItem, RdbError> {
        if self.done {
            return Ok(RdbItem::Eof);
        }
        let mut expire_at_ms: Option<u64> = None;
        let mut stamp = None;
        loop {
            let at = self.offset;
            let op = self.u8()?;
            match op {
                format::OP_EXPIRETIME_MS => {
                    let ms = i64::from_le_bytes(self.array()?);
                    expire_at_ms = Some(ms.max(0) as u64);
                }
                format::OP_EXPIRETIME => {
                    let secs = i32::from_le_bytes(self.array()?);
                    expire_at_ms = Some(i64::from(secs).max(0) as u64 * 1000);
                }
                format::OP_IDLE => {
                    stamp = Some(KeyStamp::IdleSecs(self.len("IDLE")?));
                }
                format::OP_FREQ => {
                    stamp = Some(KeyStamp::Freq(self.u8()?));
                }
                format::OP_SLOT_INFO => {
                    self.len("SLOT_INFO slot")?;
                    self.len("SLOT_INFO size")?;
                    self.len("SLOT_INFO expires size")?;
                }
                format::OP_AUX => {
                    let k = self.string("AUX key")?;
                    let v = self.string("AUX value")?;
                    return Ok(RdbItem::Aux(k, v));
                }
                format::OP_RESIZEDB => {
                    let a = self.len("RESIZEDB db size")?;
                    let b = self.len("RESIZEDB expires size")?;
                    return Ok(RdbItem::ResizeDb(a, b));
                }
                format::OP_SELECTDB => {
                    let n = self.len("SELECTDB")?;
                    let db = u32::try_from(n)
                        .map_err(|_| self.corrupt(at, format!("database number {n} too large")))?;
                    self.db = db;
                    return Ok(RdbItem::SelectDb(db));
                }
                format::OP_EOF => {
                    self.finish_eof()?;
                    return Ok(RdbItem::Eof);
                }
                format::OP_FUNCTION2 => {
                    return Ok(RdbItem::Function(self.string("function library")?));
                }
                format::OP_FUNCTION_PRE_GA => return self.pre_ga_function().map(RdbItem::Function),
                format::OP_MODULE_AUX => {
                    return Err(RdbError::UnsupportedOpcode {
                        opcode: op,
                        name: format::opcode_name(op).unwrap_or("?"),
                        offset: at,
                    });
                }
                format::TYPE_STRING
                | format::TYPE_SET
                | format::TYPE_HASH
                | format::TYPE_HASH_ZIPMAP
                | format::TYPE_SET_INTSET
                | format::TYPE_HASH_ZIPLIST
                | format::TYPE_HASH_LISTPACK
                | format::TYPE_SET_LISTPACK
                | format::TYPE_ZSET
                | format::TYPE_ZSET_2
                | format::TYPE_ZSET_ZIPLIST
                | format::TYPE_ZSET_LISTPACK
                | format::TYPE_LIST
                | format::TYPE_LIST_ZIPLIST
                | format::TYPE_LIST_QUICKLIST
                | format::TYPE_LIST_QUICKLIST_2
                | format::TYPE_STREAM_LISTPACKS
                | format::TYPE_STREAM_LISTPACKS_2
                | format::TYPE_STREAM_LISTPACKS_3 => {
                    let key = self.string("key")?;
                    let value = self.value(op, &key)?;
                    return Ok(RdbItem::Entry(RdbEntry {
                        db: self.db,
                        key,
                        value,
                        expire_at_ms,
                        stamp,
                    }));
                }
                other => {
                    return match format::type_name(other) {
                        Some(type_name) => {
                            let key = self.string("key")?;
                            Err(RdbError::UnsupportedType {
                                type_byte: other,
                                type_name,
                                key,
                                offset: at,
                            })
                        }
                        None => {
                            Err(self
                                .corrupt(at, format!("unknown opcode or value type {other:#04x}")))
                        }
                    };
                }
            }
        }
    }

    /// A stream value: its nodes (each checked), then the IDs and counters
    /// its type has, then its consumer groups.
    fn stream(&mut self, ty: u8, key: &[u8], at: u64) -> Result<RdbValue, RdbError> {
        use crate::keyspace::{stream::StreamValue, StreamId};
        let bad = |what: String| RdbError::Corrupt {
            offset: at,
            what: format!(
                "stream value of key {:?}: {what}",
                String::from_utf8_lossy(key)
            ),
        };
        let count = self.len("stream node count")?;
        let mut nodes: Vec<(StreamId, crate::keyspace::stream::Node)> = Vec::new();
        for _ in 0..count {
            let nkey = self.string("stream node key")?;
            let master = super::stream::parse_node_key(&nkey)
                .ok_or_else(|| bad(format!("node key of {} bytes, not 16", nkey.len())))?;
            if nodes.last().is_some_and(|(m, _)| *m >= master) {
                return Err(bad("nodes out of order".into()));
            }
            let lp = self.string("stream listpack")?;
            let node = super::stream::parse_node(master, &lp).map_err(bad)?;
            if let (Some((_, prev)), Some(first)) = (nodes.last(), node.entries.first()) {
                if prev.entries.last().is_some_and(|e| e.id >= first.id) {
                    return Err(bad("nodes overlap".into()));
                }
            }
            nodes.push((master, node));
        }
        let length = self.len("stream length")?;
        let id = |this: &mut Self, what: &str| -> Result<StreamId, RdbError> {
            Ok(StreamId::new(this.len(what)?, this.len(what)?))
        };
        let last_id = id(self, "stream last ID")?;
        let (first_id, max_deleted_id, entries_added) = if ty == format::TYPE_STREAM_LISTPACKS {
            (None, StreamId::MIN, length)
        } else {
            let first = id(self, "stream first ID")?;
            let deleted = id(self, "stream max deleted ID")?;
            (Some(first), deleted, self.len("stream entries added")?)
        };
        let groups = self.stream_groups(ty, &bad)?;
        // New entries must go after every entry held, tombstones included.
        let top = nodes
            .last()
            .and_then(|(_, n)| n.entries.last())
            .map(|e| e.id);
        if top.is_some_and(|top| top > last_id) {
            return Err(bad(format!("last ID {last_id} below an entry's ID")));
        }
        let mut st =
            StreamValue::from_parts(nodes, last_id, StreamId::MIN, max_deleted_id, entries_added);
        if st.len() != length {
            return Err(bad(format!(
                "length {length} but {} live entries",
                st.len()
            )));
        }
        st.first_id = match first_id {
            Some(first) => first,
            None => st.edge_id(true).unwrap_or(StreamId::MIN),
        };
        for (name, mut group, entries_read) in groups {
            // Files before Redis 7.0 do not say how far a group has read.
            group.entries_read = match entries_read {
                Some(n) => n,
                None => st.estimate_entries_read(group.last_id),
            };
            st.groups.insert(name, group);
        }
        Ok(RdbValue::Stream(Box::new(st)))
    }

    /// A stream's consumer groups: per group its name, last delivered ID,
    /// entries read (types 19 and 21), pending entries (raw 16-byte ID,
    /// delivery time, delivery count) and consumers (name, seen time, the
    /// active time of type 21, and the IDs of their pending entries, each
    /// one the group's). The entries read comes back unset for type 15.
    #[allow(clippy::type_complexity)]
    fn stream_groups(
        &mut self,
        ty: u8,
        bad: &dyn Fn(String) -> RdbError,
    ) -> Result<Vec<(Bytes, crate::keyspace::stream::Group, Option<i64>)>, RdbError> {
        use crate::keyspace::stream::{Group, Pending};
        use crate::keyspace::StreamId;
        let count = self.len("stream consumer group count")?;
        let mut groups: Vec<(Bytes, Group, Option<i64>)> = Vec::new();
        for _ in 0..count {
            let name = self.string("stream consumer group name")?;
            let last_id = StreamId::new(
                self.len("consumer group last ID")?,
                self.len("consumer group last ID")?,
            );
            // -1 (unknown) is written as the 64-bit length 2^64 - 1.
            let entries_read = (ty != format::TYPE_STREAM_LISTPACKS)
                .then(|| self.len("consumer group entries read").map(|n| n as i64))
                .transpose()?;
            let mut group = Group::new(last_id, crate::keyspace::stream::ENTRIES_READ_UNKNOWN);
            let pending = self.len("consumer group PEL size")?;
            for _ in 0..pending {
                let id = self.raw_stream_id()?;
                let delivery_ms = i64::from_le_bytes(self.array()?);
                let deliveries = self.len("PEL delivery count")?;
                let entry = Pending {
                    delivery_ms,
                    deliveries,
                    consumer: Bytes::new(),
                };
                if group.pending.insert(id, entry).is_some() {
                    return Err(bad(format!("duplicated group PEL entry {id}")));
                }
            }
            let consumers = self.len("consumer count")?;
            for _ in 0..consumers {
                let cname = self.string("consumer name")?;
                let seen_ms = i64::from_le_bytes(self.array()?);
                if ty == format::TYPE_STREAM_LISTPACKS_3 {
                    // The active time of Redis 7.2; we keep the seen time.
                    let _active: [u8; 8] = self.array()?;
                }
                if !group.add_consumer(&cname, seen_ms) {
                    return Err(bad(format!("duplicated consumer {cname:?}")));
                }
                let owned = self.len("consumer PEL size")?;
                for _ in 0..owned {
                    let id = self.raw_stream_id()?;
                    match group.pending.get_mut(&id) {
                        Some(p) if p.consumer.is_empty() => p.consumer = cname.clone(),
                        Some(_) => return Err(bad(format!("PEL entry {id} owned twice"))),
                        None => {
                            return Err(bad(format!(
                                "consumer PEL entry {id} not in the group PEL"
                            )))
                        }
                    }
                    if let Some(c) = group.consumers.get_mut(&cname) {
                        c.pending.insert(id);
                    }
                }
            }
            group.check().map_err(&bad)?;
            if groups.iter().any(|(n, _, _)| *n == name) {
                return Err(bad(format!("duplicated consumer group {name:?}")));
            }
            groups.push((name, group, entries_read));
        }
        Ok(groups)
    }

    /// A stream ID as 16 raw bytes (big-endian ms, then seq).
    fn raw_stream_id(&mut self) -> Result<crate::keyspace::StreamId, RdbError> {
        let raw: [u8; 16] = self.array()?;
        let ms = u64::from_be_bytes(raw[..8].try_into().unwrap_or_default());
        let seq = u64::from_be_bytes(raw[8..].try_into().unwrap_or_default());
        Ok(crate::keyspace::StreamId::new(ms, seq))
    }

    /// The value of an entry of type `ty` (one the caller matched).
    fn value(&mut self, ty: u8, key: &[u8]) -> Result<RdbValue, RdbError> {
        let at = self.offset;
        let name = format::type_name(ty).unwrap_or("?");
        let bad = |what: String| RdbError::Corrupt {
            offset: at,
            what: format!(
                "{name} value of key {:?}: {what}",
                String::from_utf8_lossy(key)
            ),
        };
        Ok(match ty {
            format::TYPE_STRING => RdbValue::String(self.string("string value")?),
            format::TYPE_STREAM_LISTPACKS
            | format::TYPE_STREAM_LISTPACKS_2
            | format::TYPE_STREAM_LISTPACKS_3 => {
                return self.stream(ty, key, at);
            }
            format::TYPE_SET => {
                let n = self.len("set length")?;
                let mut members = Vec::with_capacity((n as usize).min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    members.push(self.string("set member")?);
                }
                RdbValue::Set(unique_members(members).map_err(bad)?)
            }
            format::TYPE_HASH => {
                let n = self.len("hash length")?;
                let mut pairs = Vec::with_capacity((n as usize).min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    let f = self.string("hash field")?;
                    let v = self.string("hash value")?;
                    pairs.push((f, v));
                }
                RdbValue::Hash(unique_fields(pairs).map_err(bad)?)
            }
            format::TYPE_HASH_ZIPMAP => {
                let blob = self.string("zipmap")?;
                let pairs = blobs::zipmap_pairs(&blob).map_err(bad)?;
                RdbValue::Hash(unique_fields(pairs).map_err(bad)?)
            }
            format::TYPE_HASH_ZIPLIST | format::TYPE_HASH_LISTPACK => {
                let blob = self.string("hash blob")?;
                let items = if ty == format::TYPE_HASH_ZIPLIST {
                    blobs::ziplist_entries(&blob)
                } else {
                    blobs::listpack_entries(&blob)
                }
                .map_err(bad)?;
                if items.len() % 2 != 0 {
                    return Err(bad(format!("odd number of elements ({})", items.len())));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(f), Some(v)) = (it.next(), it.next()) {
                    pairs.push((f, v));
                }
                RdbValue::Hash(unique_fields(pairs).map_err(bad)?)
            }
            format::TYPE_SET_INTSET => {
                let blob = self.string("intset")?;
                let ints = blobs::intset_members(&blob).map_err(bad)?;
                RdbValue::Set(ints.iter().map(|i| Bytes::from(i.to_string())).collect())
            }
            format::TYPE_SET_LISTPACK => {
                let blob = self.string("set listpack")?;
                let members = blobs::listpack_entries(&blob).map_err(bad)?;
                RdbValue::Set(unique_members(members).map_err(bad)?)
            }
            format::TYPE_ZSET | format::TYPE_ZSET_2 => {
                let n = self.len("sorted set length")?;
                let mut pairs = Vec::with_capacity((n as usize).min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    let m = self.string("sorted set member")?;
                    let s = if ty == format::TYPE_ZSET_2 {
                        f64::from_le_bytes(self.array()?)
                    } else {
                        self.text_score()?
                    };
                    pairs.push((m, s));
                }
                RdbValue::Zset(checked_zset(pairs).map_err(bad)?)
            }
            format::TYPE_ZSET_ZIPLIST | format::TYPE_ZSET_LISTPACK => {
                let blob = self.string("sorted set blob")?;
                let items = if ty == format::TYPE_ZSET_ZIPLIST {
                    blobs::ziplist_entries(&blob)
                } else {
                    blobs::listpack_entries(&blob)
                }
                .map_err(bad)?;
                if items.len() % 2 != 0 {
                    return Err(bad(format!("odd number of elements ({})", items.len())));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    let score = crate::util::strtod::string2d(&s).ok_or_else(|| {
                        bad(format!(
                            "score {:?} is not a number",
                            String::from_utf8_lossy(&s)
                        ))
                    })?;
                    pairs.push((m, score));
                }
                RdbValue::Zset(checked_zset(pairs).map_err(bad)?)
            }
            format::TYPE_LIST => {
                let n = self.len("list length")?;
                let mut items = Vec::with_capacity((n as usize).min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    items.push(self.string("list element")?);
                }
                RdbValue::List(items)
            }
            format::TYPE_LIST_ZIPLIST => {
                let blob = self.string("list ziplist")?;
                RdbValue::List(blobs::ziplist_entries(&blob).map_err(bad)?)
            }
            format::TYPE_LIST_QUICKLIST | format::TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.len("quicklist node count")?;
                if nodes == 0 {
                    return Err(bad("a quicklist without nodes".into()));
                }
                let mut items = Vec::new();
                for _ in 0..nodes {
                    let container = if ty == format::TYPE_LIST_QUICKLIST_2 {
                        self.len("quicklist node container")?
                    } else {
                        format::QUICKLIST_NODE_PACKED
                    };
                    let blob = self.string("quicklist node")?;
                    match container {
                        format::QUICKLIST_NODE_PLAIN => items.push(blob),
                        format::QUICKLIST_NODE_PACKED => {
                            // Redis skips empty nodes silently.
                            let got = if ty == format::TYPE_LIST_QUICKLIST {
                                blobs::ziplist_entries(&blob)
                            } else {
                                blobs::listpack_entries(&blob)
                            }
                            .map_err(&bad)?;
                            items.extend(got);
                        }
                        other => {
                            return Err(bad(format!("unknown quicklist container {other}")));
                        }
                    }
                }
                RdbValue::List(items)
            }
            other => return Err(bad(format!("type {other} is not a value type here"))),
        })
    }

    /// A RDB_TYPE_ZSET score: a length byte (253 NaN, 254 +inf, 255 -inf)
    /// or that many bytes of text, read as C's `%lg`.
    fn text_score(&mut self) -> Result<f64, RdbError> {
        let at = self.offset;
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.bytes(u64::from(n), "score")?;
                let p = crate::util::strtod::strtod(&text);
                if p.end == 0 {
                    return Err(self.corrupt(
                        at,
                        format!("score {:?} is not a number", String::from_utf8_lossy(&text)),
                    ));
                }
                Ok(p.value)
            }
        }
    }

    fn finish_eof(&mut self) -> Result<(), RdbError> {
        if self.version >= format::CHECKSUM_MIN_VERSION {
            let actual = self.crc.value();
            let mut trailer = [0u8; 8];
            self.read_raw(&mut trailer)?;
            let expected = u64::from_le_bytes(trailer);
            if expected != 0 && expected != actual {
                return Err(RdbError::ChecksumMismatch { expected, actual });
            }
        }
        self.done = true;
        Ok(())
    }
}

/// Redis refuses a set with a repeated member as corrupt; so do we.
fn unique_members(members: Vec<Bytes>) -> Result<Vec<Bytes>, String> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    for m in &members {
        if !seen.insert(m.as_ref()) {
            return Err(format!("duplicate member {:?}", String::from_utf8_lossy(m)));
        }
    }
    Ok(members)
}

/// Redis refuses a sorted set with a repeated member or a NaN score as
/// corrupt; so do we. (A compact blob's order is not trusted: the loaded
/// set is rebuilt in order.)
fn checked_zset(pairs: Vec<(Bytes, f64)>) -> Result<Vec<(Bytes, f64)>, String> {
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (m, s) in &pairs {
        if s.is_nan() {
            return Err(format!(
                "NaN score for member {:?}",
                String::from_utf8_lossy(m)
            ));
        }
        if !seen.insert(m.as_ref()) {
            return Err(format!("duplicate member {:?}", String::from_utf8_lossy(m)));
        }
    }
    Ok(pairs)
}

/// Redis refuses a hash with a repeated field as corrupt; so do we.
fn unique_fields(pairs: Vec<(Bytes, Bytes)>) -> Result<Vec<(Bytes, Bytes)>, String> {
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (f, _) in &pairs {
        if !seen.insert(f.as_ref()) {
            return Err(format!("duplicate field {:?}", String::from_utf8_lossy(f)));
        }
    }
    Ok(pairs)
}
