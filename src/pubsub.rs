//! The node's pub/sub registry: which connections subscribe to which
//! channels and patterns, and delivery of published messages to them.
//!
//! # What it owns
//! [`Registry`] maps channels and patterns to [`Subscriber`]s. A subscriber
//! is one connection's mailbox: a queue any shard thread may push encoded
//! messages into, and the count of bytes pushed but not yet written to the
//! socket, which is what `client-output-buffer-limit pubsub` limits.
//! PUBLISH on any shard walks the registry under a read lock and pushes
//! into the mailboxes of subscribers on every shard; each connection writes
//! its own mailbox (see `net::conn`), so no message takes a shard hop.
//!
//! Only pub/sub commands take the locks: a client that never subscribes or
//! publishes never touches this module.
//!
//! Depends on `bytes`, `shard::inbox` (the mailbox queue) and `util::glob`;
//! knows nothing of commands, connections or config.

use crate::shard::inbox::Inbox;
use crate::util::glob::glob_match;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `client-output-buffer-limit pubsub`: 0 disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

/// One subscribed connection's mailbox.
pub struct Subscriber {
    pub client_id: u64,
    /// The shard the connection lives on.
    pub shard: usize,
    /// Encode pushes as RESP3 (`>`) rather than RESP2 arrays.
    resp3: AtomicBool,
    queue: Inbox<Bytes>,
    /// Bytes pushed and not yet written to the socket.
    pending: AtomicUsize,
    /// Since when (unix ms) `pending` is above the soft limit; 0 if not.
    over_soft_since_ms: AtomicU64,
    /// Set once the limit was passed: the connection is being closed.
    closing: AtomicBool,
}

impl Subscriber {
    pub fn new(client_id: u64, shard: usize, resp3: bool) -> Arc<Subscriber> {
        Arc::new(Subscriber {
            client_id,
            shard,
            resp3: AtomicBool::new(resp3),
            queue: Inbox::default(),
            pending: AtomicUsize::new(0),
            over_soft_since_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        })
    }

    pub fn set_resp3(&self, on: bool) {
        self.resp3.store(on, Ordering::Relaxed);
    }

    pub fn is_resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Queues a push that is not a published message (a tracking
    /// invalidation): counted like one, never refused.
    pub fn push(&self, msg: Bytes) {
        if self.closing.load(Ordering::Relaxed) {
            return;
        }
        self.pending.fetch_add(msg.len(), Ordering::AcqRel);
        self.queue.push(msg);
    }

    /// Waits for the next message (one waiter: the connection).
    pub async fn recv(&self) -> Bytes {
        self.queue.recv().await
    }

    pub fn try_recv(&self) -> Option<Bytes> {
        self.queue.try_pop()
    }

    /// The connection wrote `n` bytes of messages to its socket.
    pub fn written(&self, n: usize) {
        let left = self.pending.fetch_sub(n, Ordering::AcqRel) - n;
        if left == 0 {
            self.over_soft_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Bytes pushed and not yet written (CLIENT LIST `omem`).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues a message. Returns true when this push took the subscriber
    /// over its limit (only once: the caller then closes the connection).
    fn deliver(&self, msg: Bytes, limit: Limit, now_ms: u64) -> bool {
        if self.closing.load(Ordering::Relaxed) {
            return false;
        }
        let pending = (self.pending.fetch_add(msg.len(), Ordering::AcqRel) + msg.len()) as u64;
        self.queue.push(msg);
        let over = if limit.hard_bytes > 0 && pending >= limit.hard_bytes {
            true
        } else if limit.soft_bytes > 0 && pending >= limit.soft_bytes {
            let since = self.over_soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.over_soft_since_ms.store(now_ms, Ordering::Relaxed);
                false
            } else {
                now_ms.saturating_sub(since) / 1000 >= limit.soft_seconds
            }
        } else {
            self.over_soft_since_ms.store(0, Ordering::Relaxed);
            false
        };
        over && !self.closing.swap(true, Ordering::AcqRel)
    }
}

/// What a PUBLISH did.
#[derive(Debug, Default)]
pub struct Published {
    /// Deliveries made (a client matching twice counts twice, as in Redis).
    pub receivers: usize,
    /// Subscribers that passed their output limit: (shard, client id).
    pub over_limit: Vec<(usize, u64)>,
}

impl Published {
    /// Pushes the message `parts` into each of `subs`, encoded at most once
    /// per protocol.
    fn deliver_to(&mut self, subs: &[Arc<Subscriber>], parts: &[&[u8]], limit: Limit, now_ms: u64) {
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        for sub in subs {
            let resp3 = sub.resp3.load(Ordering::Relaxed);
            let msg = encoded[usize::from(resp3)]
                .get_or_insert_with(|| encode_push(resp3, parts))
                .clone();
            self.receivers += 1;
            if sub.deliver(msg, limit, now_ms) {
                self.over_limit.push((sub.shard, sub.client_id));
            }
        }
    }
}

/// Channel, pattern and shard channel subscriptions of the whole node.
#[derive(Default)]
pub struct Registry {
    channels: RwLock<HashMap<Bytes, Vec<Arc<Subscriber>>>>,
    /// Patterns in subscription order, each with its subscribers.
    patterns: RwLock<Vec<(Bytes, Vec<Arc<Subscriber>>)>>,
    /// Shard channels (SSUBSCRIBE): a namespace of their own, no patterns.
    shard_channels: RwLock<HashMap<Bytes, Vec<Arc<Subscriber>>>>,
}

/// Which channel namespace an operation is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// SUBSCRIBE and PUBLISH.
    Global,
    /// SSUBSCRIBE and SPUBLISH.
    Shard,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    fn space(&self, space: Space) -> &RwLock<HashMap<Bytes, Vec<Arc<Subscriber>>>> {
        match space {
            Space::Global => &self.channels,
            Space::Shard => &self.shard_channels,
        }
    }

    /// Adds `sub` to `channel` (the caller knows it is not there yet).
    pub fn subscribe(&self, space: Space, channel: &Bytes, sub: &Arc<Subscriber>) {
        write(self.space(space))
            .entry(channel.clone())
            .or_default()
            .push(sub.clone());
    }

    pub fn unsubscribe(&self, space: Space, channel: &[u8], client_id: u64) {
        let mut channels = write(self.space(space));
        if let Some(subs) = channels.get_mut(channel) {
            subs.retain(|s| s.client_id != client_id);
            if subs.is_empty() {
                channels.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, pattern: &Bytes, sub: &Arc<Subscriber>) {
        let mut patterns = write(&self.patterns);
        match patterns.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, subs)) => subs.push(sub.clone()),
            None => patterns.push((pattern.clone(), vec![sub.clone()])),
        }
    }

    pub fn punsubscribe(&self, pattern: &[u8], client_id: u64) {
        let mut patterns = write(&self.patterns);
        if let Some(i) = patterns.iter().position(|(p, _)| p == pattern) {
            patterns[i].1.retain(|s| s.client_id != client_id);
            if patterns[i].1.is_empty() {
                patterns.remove(i);
            }
        }
    }

    /// Delivers `payload` to the subscribers of `channel` and of every
    /// matching pattern.
    pub fn publish(&self, channel: &[u8], payload: &[u8], limit: Limit, now_ms: u64) -> Published {
        let mut out = Published::default();
        if let Some(subs) = read(&self.channels).get(channel) {
            out.deliver_to(subs, &[b"message", channel, payload], limit, now_ms);
        }
        for (pattern, subs) in read(&self.patterns).iter() {
            if glob_match(pattern, channel, false) {
                out.deliver_to(
                    subs,
                    &[b"pmessage", pattern, channel, payload],
                    limit,
                    now_ms,
                );
            }
        }
        out
    }

    /// SPUBLISH: delivers `payload` as an `smessage` to the subscribers
    /// of shard channel `channel`.
    pub fn spublish(&self, channel: &[u8], payload: &[u8], limit: Limit, now_ms: u64) -> Published {
        let mut out = Published::default();
        if let Some(subs) = read(&self.shard_channels).get(channel) {
            out.deliver_to(subs, &[b"smessage", channel, payload], limit, now_ms);
        }
        out
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Bytes> {
        read(self.space(space))
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (patterns not counted).
    pub fn numsub(&self, space: Space, channel: &[u8]) -> usize {
        read(self.space(space)).get(channel).map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to.
    pub fn numpat(&self) -> usize {
        read(&self.patterns).len()
    }

    /// Distinct channels subscribed to.
    pub fn numchannels(&self) -> usize {
        read(&self.channels).len()
    }
}

/// `message`/`pmessage` as RESP2 arrays or RESP3 pushes.
pub fn encode_message(
    resp3: bool,
    pattern: Option<&[u8]>,
    channel: &[u8],
    payload: &[u8],
) -> Bytes {
    match pattern {
        Some(p) => encode_push(resp3, &[b"pmessage", p, channel, payload]),
        None => encode_push(resp3, &[b"message", channel, payload]),
    }
}

/// A push of bulk strings: a RESP2 array or a RESP3 push.
fn encode_push(resp3: bool, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len() + 16).sum();
    let mut out = Vec::with_capacity(8 + len);
    let head = if resp3 { b'>' } else { b'*' };
    out.push(head);
    out.extend_from_slice(parts.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.push(b'$');
        out.extend_from_slice(p.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &Subscriber) -> Vec<Bytes> {
        std::iter::from_fn(|| s.try_recv()).collect()
    }

    #[test]
    fn encodes_like_redis() {
        assert_eq!(
            &encode_message(false, None, b"ch", b"hi")[..],
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            &encode_message(true, Some(b"c*"), b"ch", b"")[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn channels_and_patterns_deliver_and_count() {
        let r = Registry::default();
        let a = Subscriber::new(1, 0, false);
        let b = Subscriber::new(2, 1, true);
        r.subscribe(Space::Global, &Bytes::from_static(b"news"), &a);
        r.subscribe(Space::Global, &Bytes::from_static(b"news"), &b);
        r.psubscribe(&Bytes::from_static(b"n*"), &a);
        r.psubscribe(&Bytes::from_static(b"x*"), &b);
        let p = r.publish(b"news", b"1", Limit::default(), 0);
        assert_eq!(p.receivers, 3);
        assert_eq!(drain(&a).len(), 2);
        assert_eq!(drain(&b), vec![encode_message(true, None, b"news", b"1")]);
        assert_eq!(r.numsub(Space::Global, b"news"), 2);
        assert_eq!(r.numpat(), 2);
        assert_eq!(
            r.channels(Space::Global, Some(b"n?ws")),
            vec![Bytes::from_static(b"news")]
        );
        assert!(r.channels(Space::Global, Some(b"z*")).is_empty());
        r.unsubscribe(Space::Global, b"news", 1);
        r.unsubscribe(Space::Global, b"news", 2);
        r.punsubscribe(b"x*", 2);
        assert_eq!(r.numchannels(), 0);
        assert_eq!(r.numpat(), 1);
        assert_eq!(r.publish(b"news", b"2", Limit::default(), 0).receivers, 1);
    }

    #[test]
    fn limits_flag_a_subscriber_once() {
        let r = Registry::default();
        let s = Subscriber::new(7, 1, false);
        r.subscribe(Space::Global, &Bytes::from_static(b"c"), &s);
        let hard = Limit {
            hard_bytes: 100,
            ..Limit::default()
        };
        let payload = [b'x'; 40];
        assert!(r.publish(b"c", &payload, hard, 0).over_limit.is_empty());
        assert_eq!(r.publish(b"c", &payload, hard, 0).over_limit, vec![(1, 7)]);
        // Flagged once; later messages are dropped.
        let p = r.publish(b"c", &payload, hard, 0);
        assert!(p.over_limit.is_empty());
        assert_eq!(drain(&s).len(), 2);

        let t = Subscriber::new(8, 0, false);
        r.subscribe(Space::Global, &Bytes::from_static(b"d"), &t);
        let soft = Limit {
            hard_bytes: 0,
            soft_bytes: 50,
            soft_seconds: 2,
        };
        assert!(r.publish(b"d", &payload, soft, 1_000).over_limit.is_empty());
        assert!(r.publish(b"d", &payload, soft, 1_000).over_limit.is_empty()); // over soft since 1s
        assert!(r.publish(b"d", &payload, soft, 2_500).over_limit.is_empty());
        // Written out: the soft clock restarts.
        t.written(t.pending());
        assert!(r.publish(b"d", &payload, soft, 2_600).over_limit.is_empty());
        assert!(r.publish(b"d", &payload, soft, 2_700).over_limit.is_empty());
        assert_eq!(
            r.publish(b"d", &payload, soft, 4_700).over_limit,
            vec![(0, 8)]
        );
    }

    #[test]
    fn shard_channels_are_their_own_namespace() {
        let r = Registry::default();
        let s = Subscriber::new(1, 0, false);
        r.subscribe(Space::Shard, &Bytes::from_static(b"orders"), &s);
        r.psubscribe(&Bytes::from_static(b"*"), &s);
        // A pattern never matches a shard channel, nor PUBLISH a shard one.
        assert_eq!(
            r.spublish(b"orders", b"o1", Limit::default(), 0).receivers,
            1
        );
        assert_eq!(
            drain(&s),
            vec![Bytes::from_static(
                b"*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n"
            )]
        );
        assert_eq!(r.numsub(Space::Shard, b"orders"), 1);
        assert_eq!(r.numsub(Space::Global, b"orders"), 0);
        assert!(r.channels(Space::Global, None).is_empty());
        r.unsubscribe(Space::Shard, b"orders", 1);
        assert_eq!(
            r.spublish(b"orders", b"o2", Limit::default(), 0).receivers,
            0
        );
    }
}
