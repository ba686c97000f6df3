//! Pub/sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH
//! PUBSUB, and sharded pub/sub: SSUBSCRIBE SUNSUBSCRIBE SPUBLISH (shard
//! channels are a namespace of their own, without patterns; on a single
//! node, as on a Redis without cluster, every shard channel is here).
//!
//! A client's subscriptions ([`Subscriptions`]) live with its connection;
//! the node-wide [`crate::pubsub::Registry`] maps channels and patterns to
//! the connections' mailboxes, so PUBLISH on any shard reaches subscribers
//! on every shard without a shard hop. A subscriber whose unwritten
//! messages pass `client-output-buffer-limit pubsub` is closed on its own
//! shard, as CLIENT KILL does.
//!
//! PUBLISH and SPUBLISH are propagated to replicas like Redis does (forced
//! propagation), so a replica's subscribers receive what was published on
//! its master.
//!
//! Depends on `pubsub` (registry), `shard` (to close a connection on its
//! shard) and the connection commands' CLIENT LIST line; never on `net`.

use super::args::is;
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::node::{coarse_ms, unix_ms, Node};
use crate::pubsub::{Limit, Space, Subscriber};
use crate::resp::{encode, Protocol, Reply};
use crate::shard::{self, ShardCore};
use bytes::{Bytes, BytesMut};
use std::collections::HashSet;
use std::sync::Arc;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Pubsub as P;
    let none = (0, 0, 0);
    let c = Run::Client;
    vec![
        spec(
            "subscribe",
            -2,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            none,
            P,
            "2.0.0",
            "Listen for messages published to the given channels",
            c(ClientCmd::Subscribe),
        ),
        spec(
            "unsubscribe",
            -1,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            none,
            P,
            "2.0.0",
            "Stop listening for messages posted to the given channels",
            c(ClientCmd::Unsubscribe),
        ),
        spec(
            "psubscribe",
            -2,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            none,
            P,
            "2.0.0",
            "Listen for messages published to channels matching the given patterns",
            c(ClientCmd::Psubscribe),
        ),
        spec(
            "punsubscribe",
            -1,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            none,
            P,
            "2.0.0",
            "Stop listening for messages posted to channels matching the given patterns",
            c(ClientCmd::Punsubscribe),
        ),
        spec(
            "publish",
            3,
            PUBSUB | LOADING | STALE | FAST,
            none,
            P,
            "2.0.0",
            "Post a message to a channel",
            c(ClientCmd::Publish),
        ),
        spec(
            "ssubscribe",
            -2,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            (1, -1, 1),
            P,
            "7.0.0",
            "Listen for messages published to the given shard channels",
            c(ClientCmd::Ssubscribe),
        ),
        spec(
            "sunsubscribe",
            -1,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            (1, -1, 1),
            P,
            "7.0.0",
            "Stop listening for messages posted to the given shard channels",
            c(ClientCmd::Sunsubscribe),
        ),
        spec(
            "spublish",
            3,
            PUBSUB | LOADING | STALE | FAST,
            (1, 1, 1),
            P,
            "7.0.0",
            "Post a message to a shard channel",
            c(ClientCmd::Spublish),
        ),
        spec(
            "pubsub",
            -2,
            PUBSUB | LOADING | STALE,
            none,
            P,
            "2.8.0",
            "A container for Pub/Sub commands",
            c(ClientCmd::Pubsub),
        ),
    ]
}

/// Pub/sub commands reach no shard's data (see `tx`: an EXEC queueing them
/// need not hold every shard).
pub fn touches_no_shard(cmd: ClientCmd) -> bool {
    matches!(
        cmd,
        ClientCmd::Subscribe
            | ClientCmd::Unsubscribe
            | ClientCmd::Psubscribe
            | ClientCmd::Punsubscribe
            | ClientCmd::Publish
            | ClientCmd::Pubsub
            | ClientCmd::Ssubscribe
            | ClientCmd::Sunsubscribe
            | ClientCmd::Spublish
    )
}

/// What RESP2 allows a subscribed client to run.
pub fn allowed_while_subscribed(spec: &CommandSpec) -> bool {
    matches!(
        spec.run,
        Run::Client(
            ClientCmd::Subscribe
                | ClientCmd::Unsubscribe
                | ClientCmd::Psubscribe
                | ClientCmd::Punsubscribe
                | ClientCmd::Ssubscribe
                | ClientCmd::Sunsubscribe
                | ClientCmd::Ping
                | ClientCmd::Quit
                | ClientCmd::Reset
        )
    )
}

/// A connection's subscriptions. Created on its first subscription and
/// kept (with its mailbox) for the connection's life.
pub struct Subscriptions {
    /// The mailbox publishers push into; the connection writes it.
    pub mailbox: Arc<Subscriber>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shard_channels: HashSet<Bytes>,
}

/// What a (un)subscription is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

impl Subscriptions {
    /// The count a (un)subscribe reply of `kind` carries: channels plus
    /// patterns, or shard channels alone, as Redis counts them.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard_channels.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Every subscription: the connection is in pub/sub mode while any.
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// Whether the client has any subscription (RESP2 subscribed mode).
pub fn subscribed(client: &Client) -> bool {
    client.subs.as_ref().is_some_and(|s| s.total() > 0)
}

pub async fn run(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Subscribe => Ok(subscribe(client, &args[1..], Kind::Channel)),
        ClientCmd::Psubscribe => Ok(subscribe(client, &args[1..], Kind::Pattern)),
        // A transaction may not block, and Redis counts a shard
        // subscription as blocking there (SUBSCRIBE stays allowed, for
        // old clients).
        ClientCmd::Ssubscribe if client.in_exec => Err(CmdError::other(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        )),
        ClientCmd::Ssubscribe => Ok(subscribe(client, &args[1..], Kind::Shard)),
        ClientCmd::Unsubscribe => Ok(unsubscribe(client, &args[1..], Kind::Channel)),
        ClientCmd::Punsubscribe => Ok(unsubscribe(client, &args[1..], Kind::Pattern)),
        ClientCmd::Sunsubscribe => Ok(unsubscribe(client, &args[1..], Kind::Shard)),
        ClientCmd::Publish => Ok(publish(client, args, Space::Global)),
        ClientCmd::Spublish => Ok(publish(client, args, Space::Shard)),
        ClientCmd::Pubsub => pubsub(client, args),
        _ => Err(CmdError::Syntax),
    }
}

/// One `[kind, name, count]` confirmation per channel, each a reply of its
/// own, encoded together.
fn confirmations(proto: Protocol, items: Vec<(&'static str, Option<Bytes>, usize)>) -> Reply {
    let mut out = BytesMut::new();
    for (kind, name, count) in items {
        let reply = Reply::Push(vec![
            Reply::Bulk(Bytes::from_static(kind.as_bytes())),
            name.map_or(Reply::Nil, Reply::Bulk),
            Reply::Int(count as i64),
        ]);
        encode(&reply, proto, &mut out);
    }
    Reply::Raw(out.freeze())
}

fn update_info(client: &Client) {
    let (sub, psub, ssub) = client.subs.as_ref().map_or((0, 0, 0), |s| {
        (s.channels.len(), s.patterns.len(), s.shard_channels.len())
    });
    let mut info = client.info.borrow_mut();
    info.sub = sub;
    info.psub = psub;
    info.ssub = ssub;
    let flagged = info.flags.contains('P');
    if sub + psub + ssub > 0 && !flagged {
        info.flags = info.flags.replace('N', "") + "P";
    } else if sub + psub + ssub == 0 && flagged {
        info.flags = info.flags.replace('P', "");
        if info.flags.is_empty() {
            info.flags = "N".into();
        }
    }
}

/// The client's mailbox, made on first use (a subscription, or tracking's
/// invalidations); listed for tracking redirects.
pub(crate) fn mailbox(client: &mut Client) -> Arc<Subscriber> {
    let (id, shard, proto) = (client.id, client.shard.id, client.proto);
    subscriptions(&mut client.subs, id, shard, proto)
        .mailbox
        .clone()
}

fn subscriptions(
    subs: &mut Option<Subscriptions>,
    id: u64,
    shard: usize,
    proto: Protocol,
) -> &mut Subscriptions {
    subs.get_or_insert_with(|| {
        let mailbox = Subscriber::new(id, shard, proto == Protocol::Resp3);
        crate::tracking::mailbox_opened(id, &mailbox);
        Subscriptions {
            mailbox,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
        }
    })
}

fn subscribe(client: &mut Client, names: &[Bytes], kind: Kind) -> Reply {
    let proto = client.proto;
    let registry = &client.node.pubsub;
    let subs = subscriptions(&mut client.subs, client.id, client.shard.id, proto);
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        // Our own copy: the argument may share a large network buffer.
        let name = Bytes::copy_from_slice(name);
        if subs.set(kind).insert(name.clone()) {
            match kind {
                Kind::Pattern => registry.psubscribe(&name, &subs.mailbox),
                Kind::Channel => registry.subscribe(Space::Global, &name, &subs.mailbox),
                Kind::Shard => registry.subscribe(Space::Shard, &name, &subs.mailbox),
            }
        }
        items.push((kind.names().0, Some(name), subs.count(kind)));
    }
    update_info(client);
    confirmations(proto, items)
}

fn unsubscribe(client: &mut Client, names: &[Bytes], kind: Kind) -> Reply {
    let proto = client.proto;
    let name_of = kind.names().1;
    let (id, registry) = (client.id, &client.node.pubsub);
    let mut items = Vec::new();
    match client.subs.as_mut() {
        None => {
            for name in names {
                items.push((name_of, Some(name.clone()), 0));
            }
        }
        Some(subs) => {
            let targets: Vec<Bytes> = if names.is_empty() {
                subs.set(kind).iter().cloned().collect()
            } else {
                names.to_vec()
            };
            for name in targets {
                if subs.set(kind).remove(&name) {
                    match kind {
                        Kind::Pattern => registry.punsubscribe(&name, id),
                        Kind::Channel => registry.unsubscribe(Space::Global, &name, id),
                        Kind::Shard => registry.unsubscribe(Space::Shard, &name, id),
                    }
                }
                items.push((name_of, Some(name), subs.count(kind)));
            }
        }
    }
    if items.is_empty() {
        // Nothing to unsubscribe from: one reply with a null name.
        let count = client.subs.as_ref().map_or(0, |s| s.count(kind));
        items.push((name_of, None, count));
    }
    update_info(client);
    confirmations(proto, items)
}

/// RESET and closed connections: every subscription ends, no replies.
pub fn on_close(client: &mut Client) {
    if let Some(subs) = client.subs.as_mut() {
        let registry = &client.node.pubsub;
        for ch in subs.channels.drain() {
            registry.unsubscribe(Space::Global, &ch, client.id);
        }
        for p in subs.patterns.drain() {
            registry.punsubscribe(&p, client.id);
        }
        for ch in subs.shard_channels.drain() {
            registry.unsubscribe(Space::Shard, &ch, client.id);
        }
        update_info(client);
    }
}

/// The protocol a subscriber's pushes use follows HELLO.
pub fn protocol_changed(client: &Client) {
    if let Some(subs) = client.subs.as_ref() {
        subs.mailbox.set_resp3(client.proto == Protocol::Resp3);
    }
}

/// `client-output-buffer-limit pubsub`.
fn pubsub_limit(node: &Node) -> Limit {
    let l = node.config().client_output_buffer_limits()[2];
    Limit {
        hard_bytes: l.hard_bytes,
        soft_bytes: l.soft_bytes,
        soft_seconds: l.soft_seconds.max(0) as u64,
    }
}

/// Closes, each on its own shard, the subscribers a publish put over
/// their output limit.
fn close_all_over_limit(over_limit: Vec<(usize, u64)>) {
    for (target, id) in over_limit {
        shard::post(target, move |core| close_over_limit(core, id));
    }
}

fn publish(client: &mut Client, args: &[Bytes], space: Space) -> Reply {
    let limit = pubsub_limit(&client.node);
    let registry = &client.node.pubsub;
    let published = match space {
        Space::Global => registry.publish(&args[1], &args[2], limit, unix_ms()),
        Space::Shard => registry.spublish(&args[1], &args[2], limit, unix_ms()),
    };
    close_all_over_limit(published.over_limit);
    super::propagate(client, client.db, args);
    Reply::Int(published.receivers as i64)
}

/// Keyspace notifications are published like PUBLISH (without being
/// propagated: a replica makes its own as it applies the stream), under
/// the same output limits.
pub fn install_notification_sink(node: &Arc<Node>) {
    let node = Arc::downgrade(node);
    crate::notify::install(Box::new(move |channel, payload| {
        let Some(node) = node.upgrade() else {
            return;
        };
        let published = node
            .pubsub
            .publish(channel, payload, pubsub_limit(&node), coarse_ms());
        close_all_over_limit(published.over_limit);
    }));
}

/// Closes a subscriber that passed its output buffer limit, on its shard
/// (where its socket is known to be open), like Redis does.
fn close_over_limit(core: &mut ShardCore, id: u64) {
    let Some(info) = core.clients.get(&id) else {
        return;
    };
    let mut c = info.borrow_mut();
    if c.killed {
        return;
    }
    tracing::warn!(
        "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
        super::connection::client_line(&c, unix_ms())
    );
    c.killed = true;
    // SAFETY: `fd` is the open socket of a live connection on this shard
    // (it leaves the registry before it is closed); shutdown only makes its
    // pending read or write fail.
    unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn pubsub(client: &Client, args: &[Bytes]) -> CmdResult {
    let registry = &client.node.pubsub;
    let sub = &args[1];
    let n = args.len();
    let bulks = |v: Vec<Bytes>| Reply::Array(v.into_iter().map(Reply::Bulk).collect());
    if is(sub, "help") && n == 2 {
        return Ok(Reply::Array(
            PUBSUB_HELP
                .iter()
                .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
                .collect(),
        ));
    }
    if is(sub, "channels") && n <= 3 {
        return Ok(bulks(
            registry.channels(Space::Global, args.get(2).map(|p| &p[..])),
        ));
    }
    if is(sub, "numsub") {
        let mut out = Vec::with_capacity((n - 2) * 2);
        for ch in &args[2..] {
            out.push(Reply::Bulk(ch.clone()));
            out.push(Reply::Int(registry.numsub(Space::Global, ch) as i64));
        }
        return Ok(Reply::Array(out));
    }
    if is(sub, "numpat") && n == 2 {
        return Ok(Reply::Int(registry.numpat() as i64));
    }
    if is(sub, "shardchannels") && n <= 3 {
        return Ok(bulks(
            registry.channels(Space::Shard, args.get(2).map(|p| &p[..])),
        ));
    }
    if is(sub, "shardnumsub") {
        let mut out = Vec::with_capacity((n - 2) * 2);
        for ch in &args[2..] {
            out.push(Reply::Bulk(ch.clone()));
            out.push(Reply::Int(registry.numsub(Space::Shard, ch) as i64));
        }
        return Ok(Reply::Array(out));
    }
    let name = String::from_utf8_lossy(sub).to_lowercase();
    match name.as_str() {
        "help" | "channels" | "numpat" | "shardchannels" => Err(CmdError::other(format!(
            "ERR wrong number of arguments for 'pubsub|{name}' command"
        ))),
        _ => Err(CmdError::other(format!(
            "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        ))),
    }
}
