//! The node's fork-less point-in-time snapshot, produced as an RDB stream.
//!
//! 1. [`take_cut`]: waits for the node's one snapshot slot, holds every
//!    shard for an O(databases) step — each shard marks a copy-on-write cut
//!    of its keyspace (`Keyspace::snapshot_begin`) — runs the caller's
//!    `at_cut` (a full sync reads the replication offset there) and
//!    releases the shards.
//! 2. [`write_rdb`]: one database after the other, every shard encodes
//!    its keys as they were at the cut into RDB entries, in slices of at
//!    most ~0.2 ms (`Keyspace::snapshot_visit`, which lends the values
//!    instead of cloning them), between which it keeps serving clients.
//!    So the shards encode in parallel, each its own keys; a writer thread
//!    only splices the slices into a sink (a file, or a [`super::fanout`]
//!    stream read by several replica sockets at once), keeping the CRC.
//!    [`write_with`] hands the keys themselves to an encoder thread instead
//!    (the AOF rewrite writes commands).
//!    Keys changed meanwhile were preserved by the shard before the change,
//!    so extra memory is bounded by what changes during the snapshot plus
//!    a few slices in flight — never a copy of the dataset.
//! 3. Dropping the [`Cut`] ends the snapshot on every shard (also when a
//!    save fails or the last replica leaves) and frees the slot.
//!
//! Depends on `shard` (running slices on every shard) and `keyspace`; knows
//! nothing of replicas or sockets.

use super::dump::SaveOptions;
use super::rdb::{EncodeOptions, KeyStamp, RdbEncoder, RdbSink, StampKind};
use crate::keyspace::access;
use crate::keyspace::SnapItem;
use crate::keyspace::SnapVisitor;
use crate::node::{unix_ms, Node};
use crate::shard::{self, ShardCore};
use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many keys per slice...
const SLICE_KEYS: usize = 1024;
/// ...and at most about this long: a client command queued behind a slice
/// waits for it, so this bounds the latency a snapshot adds to a command
/// (a pipeline's remote commands of one read travel together and pay it
/// once). Now that the shards encode, the slice length also sets the
/// snapshot's share of a busy shard: measured with 1M 100-byte keys and 50
/// clients writing, a BGSAVE took 9.0-9.5 s with 200 us slices and 4.2-6.1
/// s with 500 us (SAVE on an idle server: 1.6 s and 1.2 s).
const SLICE_TIME: Duration = Duration::from_micros(500);
/// ...and at most about this many encoded bytes (a slice of big values).
const SLICE_BYTES: usize = 256 << 10;
/// Slices queued for the encoder before the shards wait for it.
const QUEUED_SLICES: usize = 16;
/// RDB version of every snapshot we write (what Redis 7.0 writes).
const RDB_VERSION: u32 = 10;

/// A cut taken on every shard. Dropping it ends the snapshot everywhere.
pub struct Cut {
    /// Unix ms of the cut (the RDB's `ctime`; keys whose TTL had passed by
    /// then are not written).
    pub taken_unix_ms: u64,
    /// Each shard's `dirty` counter at the cut: a successful save subtracts
    /// it from `rdb_changes_since_last_save`.
    pub dirty_per_shard: Vec<u64>,
    /// Keys and keys with a TTL per database at the cut, over all shards
    /// (the RESIZEDB hints).
    sizes: Vec<(u64, u64)>,
    /// The function libraries' codes at the cut (written before the keys).
    pub functions: Vec<bytes::Bytes>,
    slot: Slot,
}

/// The node's one snapshot slot; released (and the shards' snapshot
/// state dropped) on drop.
struct Slot {
    node: Arc<Node>,
    shards: usize,
}

impl Slot {
    async fn acquire(node: &Arc<Node>) -> Slot {
        loop {
            if let Some(slot) = Slot::try_acquire(node) {
                return slot;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the slot; gives up (`None`) once `cancel` is set.
    async fn acquire_unless(node: &Arc<Node>, cancel: &AtomicBool) -> Option<Slot> {
        loop {
            if let Some(slot) = Slot::try_acquire(node) {
                return Some(slot);
            }
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    fn try_acquire(node: &Arc<Node>) -> Option<Slot> {
        node.snapshot_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Slot {
                node: node.clone(),
                shards: node.shards(),
            })
    }
}

impl Cut {
    /// The node whose keys the cut holds.
    pub fn node(&self) -> &Arc<Node> {
        &self.slot.node
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The slot is free only once every shard has dropped its snapshot
        // state: a later cut's `snapshot_begin` on some shard must never be
        // followed by this snapshot's end.
        let node = self.node.clone();
        let shards = self.shards;
        glommio::spawn_local(async move {
            for s in 0..shards {
                shard::run_on(s, |core| core.ks.snapshot_end()).await;
            }
            node.snapshot_progress.end();
            node.snapshot_running.store(false, Ordering::Release);
        })
        .detach();
    }
}

/// Takes the cut (see the module doc) and runs `at_cut` while every shard
/// is still held. On a replica the cut falls between two commands of the
/// master's stream (the apply gate is closed around it).
pub async fn take_cut<R>(node: &Arc<Node>, at_cut: impl FnOnce() -> R) -> (Cut, R) {
    let slot = Slot::acquire(node).await;
    cut_holding(node, slot, at_cut).await
}

/// [`take_cut`] for work that may be cancelled while it waits for the
/// snapshot slot (an AOF rewrite being stopped): `None` once `cancel` is
/// set before the slot was free (`at_cut` then never runs).
pub async fn take_cut_unless<R>(
    node: &Arc<Node>,
    cancel: &AtomicBool,
    at_cut: impl FnOnce() -> R,
) -> Option<(Cut, R)> {
    let slot = Slot::acquire_unless(node, cancel).await?;
    Some(cut_holding(node, slot, at_cut).await)
}

/// The cut itself, once the slot is ours.
async fn cut_holding<R>(node: &Arc<Node>, slot: Slot, at_cut: impl FnOnce() -> R) -> (Cut, R) {
    node.repl.gate.pause().await;
    let guard = shard::hold_all().await;
    let parts = guard
        .run_each(|core| (core.ks.snapshot_begin(), core.stats.dirty))
        .await;
    let taken_unix_ms = unix_ms();
    // Libraries change under a hold of every shard too (FUNCTION LOAD...).
    let functions = crate::scripting::functions::codes();
    let extra = at_cut();
    drop(guard);
    node.repl.gate.resume();
    let mut sizes: Vec<(u64, u64)> = Vec::new();
    let mut dirty_per_shard = Vec::with_capacity(parts.len());
    for (per_db, dirty) in parts {
        dirty_per_shard.push(dirty);
        if sizes.len() < per_db.len() {
            sizes.resize(per_db.len(), (0, 0));
        }
        for (i, (keys, expires)) in per_db.into_iter().enumerate() {
            sizes[i].0 += keys as u64;
            sizes[i].1 += expires as u64;
        }
    }
    node.snapshot_progress
        .begin(sizes.iter().map(|(keys, _)| keys).sum(), taken_unix_ms);
    (
        Cut {
            taken_unix_ms,
            dirty_per_shard,
            sizes,
            functions,
            slot,
        },
        extra,
    )
}

/// What the shards send the encoder thread.
pub(crate) enum Msg {
    Slice {
        db: usize,
        items: Vec<SnapItem>,
    },
    /// RDB entries a shard encoded; `keys` counts the keys it walked (some
    /// may have been left out as already expired at the cut).
    Encoded {
        db: usize,
        entries: Vec<u8>,
        keys: u64,
    },
    /// A shard could not encode its keys.
    Failed(String),
    /// Every shard has handed out every key: finish the file.
    End,
}

impl Msg {
    /// Heap bytes the message holds while it waits in the queue (counted
    /// as the snapshot's memory: `SnapshotProgress::in_flight`).
    fn held_bytes(&self) -> usize {
        match self {
            Msg::Slice { items, .. } => items
                .iter()
                .map(|i| i.key.len() + i.value.payload_bytes())
                .sum(),
            Msg::Encoded { entries, .. } => entries.capacity(),
            Msg::Failed(_) | Msg::End => 0,
        }
    }
}

/// What a shard hands the encoder thread: its keys, or RDB entries.
#[derive(Clone, Copy)]
enum Deliver {
    Items,
    Rdb {
        compress: bool,
        taken_unix_ms: u64,
        stamps: Option<StampKind>,
    },
}

/// Writes the snapshot of `cut` as an RDB into `sink` on an encoder
/// thread, then runs `finish` there (flush, fsync, rename...). Consumes
/// the cut: the snapshot ends when this returns.
pub async fn write_rdb<S, T, F>(
    cut: Cut,
    opts: &SaveOptions,
    sink: S,
    finish: F,
) -> Result<T, String>
where
    S: RdbSink + Send + 'static,
    T: Send + 'static,
    F: FnOnce(S) -> std::io::Result<T> + Send + 'static,
{
    let header = Header {
        node: cut.slot.node.clone(),
        taken_unix_ms: cut.taken_unix_ms,
        sizes: cut.sizes.clone(),
        functions: cut.functions.clone(),
        opts: opts.clone(),
    };
    let deliver = Deliver::Rdb {
        compress: opts.compress,
        taken_unix_ms: cut.taken_unix_ms,
        stamps: opts.key_stamps,
    };
    walk(cut, deliver, move |rx| {
        encode(rx, &header, sink).and_then(finish)
    })
    .await
}

/// The keys of a snapshot as an encoder thread receives them, database by
/// database (see [`write_with`]).
pub struct Slices(Receiver<Msg>, Arc<Node>);

impl Slices {
    /// The next slice: its database and keys, as they were at the cut.
    /// `Ok(None)` once every key was handed out; an error when the
    /// snapshot was abandoned.
    pub fn next_slice(&mut self) -> std::io::Result<Option<(usize, Vec<SnapItem>)>> {
        let msg = self.0.recv();
        if let Ok(m) = &msg {
            self.1.snapshot_progress.leave_queue(m.held_bytes());
        }
        match msg {
            Ok(Msg::Slice { db, items }) => Ok(Some((db, items))),
            Ok(Msg::End) => Ok(None),
            Ok(Msg::Failed(e)) => Err(std::io::Error::other(e)),
            Ok(Msg::Encoded { .. }) => Err(std::io::Error::other("unexpected encoded slice")),
            Err(_) => Err(std::io::Error::other("snapshot aborted")),
        }
    }
}

/// Runs `encoder` on its own thread over the keys of `cut` (any output
/// format: the RDB of [`write_rdb`], or AOF commands). Consumes the cut.
pub async fn write_with<T, E>(cut: Cut, encoder: E) -> Result<T, String>
where
    T: Send + 'static,
    E: FnOnce(Slices) -> std::io::Result<T> + Send + 'static,
{
    walk(cut, Deliver::Items, encoder).await
}

/// Walks every database of `cut` on every shard, sending what `deliver`
/// says to `encoder`, which runs on its own thread. Consumes the cut.
async fn walk<T, E>(cut: Cut, deliver: Deliver, encoder: E) -> Result<T, String>
where
    T: Send + 'static,
    E: FnOnce(Slices) -> std::io::Result<T> + Send + 'static,
{
    let (tx, rx) = channel::bounded::<Msg>(QUEUED_SLICES);
    let (done_tx, done_rx) = shard::oneshot::channel();
    let node = cut.slot.node.clone();
    std::thread::Builder::new()
        .name("cascade-snapshot".into())
        .spawn(move || {
            let r = encoder(Slices(rx, node));
            done_tx.send(r.map_err(|e| e.to_string()));
        })
        .map_err(|e| format!("could not start the snapshot thread: {e}"))?;

    let mut sent_all = true;
    'dbs: for (db, &(keys, _)) in cut.sizes.iter().enumerate() {
        if keys == 0 {
            continue;
        }
        let tasks: Vec<_> = (0..cut.slot.shards)
            .map(|s| {
                let node = cut.slot.node.clone();
                glommio::spawn_local(hand_out(node, s, db, tx.clone(), deliver))
            })
            .collect();
        for t in tasks {
            if !t.await {
                sent_all = false;
            }
        }
        if !sent_all {
            break 'dbs;
        }
    }
    if sent_all {
        let _ = send(&cut.slot.node, &tx, Msg::End).await;
    }
    drop(tx);
    let result = match done_rx.await {
        Ok(r) => r,
        Err(_) => Err("the snapshot thread died".into()),
    };
    drop(cut);
    result
}

/// Sends every key of `db` on `shard` to the encoder, a slice at a time.
/// False when the encoder has gone.
async fn hand_out(
    node: Arc<Node>,
    shard: usize,
    db: usize,
    tx: Sender<Msg>,
    deliver: Deliver,
) -> bool {
    let local = shard == shard::current().id;
    loop {
        let (msg, done, cow) = shard::run_on(shard, move |core| {
            let (msg, done) = match deliver {
                Deliver::Items => {
                    let (items, done) = take_slice(core, db);
                    let msg = (!items.is_empty()).then_some(Msg::Slice { db, items });
                    (msg, done)
                }
                Deliver::Rdb {
                    compress,
                    taken_unix_ms,
                    stamps,
                } => encode_slice(core, db, compress, taken_unix_ms, stamps),
            };
            (msg, done, core.ks.snapshot_extra_bytes())
        })
        .await;
        node.snapshot_progress.note_cow(shard, cow);
        let failed = matches!(msg, Some(Msg::Failed(_)));
        if let Some(msg) = msg {
            if !send(&node, &tx, msg).await || failed {
                return false;
            }
        }
        if done {
            return true;
        }
        // A slice of this very shard ran inline: step aside so its
        // connections are served before the next one (a remote shard
        // serves its own between our round trips). Without this the
        // snapshot held the shard for a whole database (the snapshot
        // benchmark's writer was slowed 25-fold).
        if local {
            glommio::timer::sleep(Duration::from_micros(100)).await;
        }
    }
}

/// One slice on the owning shard: keys of `db` as they were at the cut.
fn take_slice(core: &mut ShardCore, db: usize) -> (Vec<SnapItem>, bool) {
    let started = Instant::now();
    let mut out = Vec::with_capacity(SLICE_KEYS.min(256));
    loop {
        if core.ks.snapshot_next(db, 64, &mut out) {
            return (out, true);
        }
        if out.len() >= SLICE_KEYS || started.elapsed() >= SLICE_TIME {
            return (out, false);
        }
    }
}

/// One slice on the owning shard, encoded there: RDB entries of the keys
/// of `db` as they were at the cut (keys already expired at the cut left
/// out, as Redis does).
fn encode_slice(
    core: &mut ShardCore,
    db: usize,
    compress: bool,
    taken_unix_ms: u64,
    stamps: Option<StampKind>,
) -> (Option<Msg>, bool) {
    let started = Instant::now();
    let mut slice = EncodedSlice {
        enc: RdbEncoder::fragment(
            Vec::with_capacity(16 << 10),
            EncodeOptions {
                version: RDB_VERSION,
                compress,
                checksum: false,
            },
        ),
        taken_unix_ms,
        stamps,
        keys: 0,
        error: None,
    };
    let done = loop {
        if core.ks.snapshot_visit(db, 64, &mut slice) {
            break true;
        }
        if slice.keys as usize >= SLICE_KEYS
            || slice.enc.sink().len() >= SLICE_BYTES
            || started.elapsed() >= SLICE_TIME
        {
            break false;
        }
    };
    if let Some(e) = slice.error {
        return (Some(Msg::Failed(e)), true);
    }
    let keys = slice.keys;
    let msg = (keys > 0).then(|| Msg::Encoded {
        db,
        entries: slice.enc.into_sink(),
        keys,
    });
    (msg, done)
}

/// Encodes the keys a shard's walk shows it (see [`encode_slice`]).
struct EncodedSlice {
    enc: RdbEncoder<Vec<u8>>,
    taken_unix_ms: u64,
    stamps: Option<StampKind>,
    keys: u64,
    error: Option<String>,
}

impl SnapVisitor for EncodedSlice {
    fn borrowed(
        &mut self,
        key: &bytes::Bytes,
        value: &crate::keyspace::Value,
        at: Option<u64>,
        access: u32,
    ) {
        self.keys += 1;
        if self.error.is_some() || at.is_some_and(|at| at <= self.taken_unix_ms) {
            return;
        }
        match self.stamps {
            Some(StampKind::Idle) => self
                .enc
                .stamp_next(KeyStamp::IdleSecs(access::idle_ms(access) / 1000)),
            Some(StampKind::Freq) => self
                .enc
                .stamp_next(KeyStamp::Freq(access::frequency(access))),
            None => {}
        }
        if let Err(e) = super::values::write_entry(&mut self.enc, key, value, at) {
            self.error = Some(format!(
                "cannot encode key {:?}: {e}",
                String::from_utf8_lossy(key)
            ));
        }
    }

    fn owned(&mut self, item: SnapItem) {
        self.borrowed(&item.key, &item.value, item.expire_at_ms, item.access);
    }
}

/// Queues `msg` for the encoder, waiting (without blocking the shard)
/// while its queue is full. False when the encoder has gone.
async fn send(node: &Node, tx: &Sender<Msg>, mut msg: Msg) -> bool {
    let bytes = msg.held_bytes();
    loop {
        match tx.try_send(msg) {
            Ok(()) => {
                node.snapshot_progress.enter_queue(bytes);
                return true;
            }
            Err(TrySendError::Full(m)) => {
                msg = m;
                glommio::timer::sleep(Duration::from_micros(500)).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// What the encoder thread needs besides the keys.
struct Header {
    /// Where the encoder reports its progress.
    node: Arc<Node>,
    taken_unix_ms: u64,
    sizes: Vec<(u64, u64)>,
    functions: Vec<bytes::Bytes>,
    opts: SaveOptions,
}

/// The RDB header, the AUX fields and the function libraries Redis 7.0
/// writes before any key.
fn start_rdb<S: RdbSink>(
    sink: S,
    opts: &SaveOptions,
    taken_unix_ms: u64,
    functions: &[bytes::Bytes],
) -> std::io::Result<RdbEncoder<S>> {
    let mut enc = RdbEncoder::new(
        sink,
        EncodeOptions {
            version: RDB_VERSION,
            compress: opts.compress,
            checksum: opts.checksum,
        },
    )?;
    enc.aux(
        b"redis-ver",
        crate::cmd::connection::REDIS_VERSION.as_bytes(),
    )?;
    enc.aux(b"redis-bits", usize::BITS.to_string().as_bytes())?;
    enc.aux(b"ctime", (taken_unix_ms / 1000).to_string().as_bytes())?;
    enc.aux(
        b"used-mem",
        crate::alloc::allocated_bytes().to_string().as_bytes(),
    )?;
    for (k, v) in &opts.aux {
        enc.aux(k, v)?;
    }
    enc.aux(b"aof-base", if opts.aof_base { b"1" } else { b"0" })?;
    for code in functions {
        enc.function(code)?;
    }
    Ok(enc)
}

/// An RDB with the header and AUX fields but no keys: what a replica that
/// filtered the data out (`REPLCONF rdb-filter-only`) gets, with the
/// function libraries `functions` (those of the `functions` filter).
pub fn keyless_rdb(opts: &SaveOptions, functions: &[bytes::Bytes]) -> Vec<u8> {
    start_rdb(Vec::new(), opts, unix_ms(), functions)
        .and_then(RdbEncoder::finish)
        .expect("writing to memory cannot fail")
}

/// The encoder thread: RDB header, then the slices database by database.
fn encode<S: RdbSink>(rx: Slices, h: &Header, sink: S) -> std::io::Result<S> {
    let opts = &h.opts;
    let mut enc = start_rdb(sink, opts, h.taken_unix_ms, &h.functions)?;
    let mut current_db = None;
    loop {
        let msg =
            rx.0.recv()
                .map_err(|_| std::io::Error::other("snapshot aborted"))?;
        h.node.snapshot_progress.leave_queue(msg.held_bytes());
        let (db, entries, keys) = match msg {
            Msg::Encoded { db, entries, keys } => (db, entries, keys),
            Msg::Failed(e) => return Err(std::io::Error::other(e)),
            // `write_rdb` has the shards encode: never sent here.
            Msg::Slice { .. } => return Err(std::io::Error::other("unexpected unencoded slice")),
            Msg::End => break,
        };
        if current_db != Some(db) {
            let (keys, expires) = h.sizes.get(db).copied().unwrap_or((0, 0));
            enc.select_db(db as u32, keys, expires)?;
            current_db = Some(db);
        }
        enc.splice(&entries)?;
        h.node.snapshot_progress.add_processed(keys);
        if opts.key_delay_us > 0 {
            delay(
                opts,
                Duration::from_micros(opts.key_delay_us.saturating_mul(keys)),
            )?;
        }
        if cancelled(opts) {
            return Err(std::io::Error::other(CANCELLED));
        }
    }
    enc.finish()
}

/// Why a save stopped when a shutdown cancelled it.
const CANCELLED: &str = "cancelled by a shutdown";

fn cancelled(opts: &SaveOptions) -> bool {
    opts.cancel
        .as_ref()
        .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
}

/// `rdb-key-save-delay`'s sleep, in pieces short enough that a cancel is
/// seen at once.
fn delay(opts: &SaveOptions, total: Duration) -> std::io::Result<()> {
    const STEP: Duration = Duration::from_millis(10);
    let deadline = Instant::now() + total;
    loop {
        if cancelled(opts) {
            return Err(std::io::Error::other(CANCELLED));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(STEP));
    }
}
