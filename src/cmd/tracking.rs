//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO, and remembering
//! the keys a tracking client reads (see [`crate::tracking`] and
//! `keyspace::track`).
//!
//! ```text
//! CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
//! CLIENT CACHING YES|NO      CLIENT GETREDIR      CLIENT TRACKINGINFO
//! ```
//!
//! A key is remembered on its shard before the read runs, so a change
//! that follows the read is always told (one that comes between the two
//! is told too, which costs the client a refetch, never a stale value).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::error::{CmdError, CmdResult};
use super::table::{flag, CommandSpec, Group};
use super::Client;
use crate::resp::Reply;
use crate::shard;
use crate::tracking::{self, Tracker};

fn is(a: &[u8], s: &str) -> bool {
    a.eq_ignore_ascii_case(s.as_bytes())
}

/// Whether one prefix starts the other (Redis's stringCheckPrefix).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// CLIENT TRACKING ON|OFF [options...]
pub(crate) async fn tracking_cmd(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let (mut redirect, mut bcast, mut optin, mut optout, mut noloop) =
        (0u64, false, false, false, false);
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if is(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::other(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = super::args::parse_i64_strict(&args[j]).ok_or(CmdError::NotInteger)?;
            if id <= 0 || !client_exists(id as u64).await {
                return Err(CmdError::other(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            redirect = id as u64;
        } else if is(a, "bcast") {
            bcast = true;
        } else if is(a, "optin") {
            optin = true;
        } else if is(a, "optout") {
            optout = true;
        } else if is(a, "noloop") {
            noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            prefixes.push(Bytes::copy_from_slice(&args[j]));
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if is(&args[2], "off") {
        disable(client);
        return Ok(Reply::Ok);
    }
    if !is(&args[2], "on") {
        return Err(CmdError::Syntax);
    }
    if !bcast && !prefixes.is_empty() {
        return Err(CmdError::other(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let old = client.tracking.clone();
    if let Some(old) = &old {
        if old.bcast != bcast {
            return Err(CmdError::other("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    if bcast && (optin || optout) {
        return Err(CmdError::other(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if optin && optout {
        return Err(CmdError::other(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(old) = &old {
        if (optin && old.optout) || (optout && old.optin) {
            return Err(CmdError::other("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    let mut all_prefixes = old.as_ref().map_or_else(Vec::new, |o| o.prefixes.clone());
    if bcast {
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(existing) = all_prefixes.iter().find(|e| overlap(e, p)) {
                return Err(CmdError::other(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(existing)
                )));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                return Err(CmdError::other(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                )));
            }
        }
        if prefixes.is_empty() && all_prefixes.is_empty() {
            all_prefixes.push(Bytes::new());
        }
        all_prefixes.extend(prefixes);
    }
    let mailbox = super::pubsub::mailbox(client);
    let tracker = Tracker {
        id: client.id,
        mailbox,
        redirect,
        bcast,
        prefixes: all_prefixes,
        optin,
        optout,
        noloop,
        broken: Default::default(),
    };
    tracking::enable(tracker);
    client.tracking = tracking::get(client.id);
    {
        let mut info = client.info.borrow_mut();
        info.redir = redirect as i64;
        let mut flags: String = info.flags.replace(['N', 't', 'B'], "");
        flags.push('t');
        if bcast {
            flags.push('B');
        }
        info.flags = flags;
    }
    Ok(Reply::Ok)
}

async fn client_exists(id: u64) -> bool {
    shard::gather(move |core| core.clients.contains_key(&id))
        .await
        .into_iter()
        .any(|found| found)
}

/// Tracking off (CLIENT TRACKING OFF, RESET).
pub(crate) fn disable(client: &mut Client) {
    if client.tracking.take().is_none() {
        return;
    }
    tracking::disable(client.id);
    client.caching = false;
    let mut info = client.info.borrow_mut();
    info.redir = -1;
    info.flags = info.flags.replace(['t', 'B', 'R'], "");
    if info.flags.is_empty() {
        info.flags = "N".into();
    }
}

/// CLIENT CACHING YES|NO
pub(crate) fn caching(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let Some(t) = client.tracking.as_ref() else {
        return Err(CmdError::other("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if is(&args[2], "yes") {
        if !t.optin {
            return Err(CmdError::other(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&args[2], "no") {
        if !t.optout {
            return Err(CmdError::other(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    client.caching = true;
    Ok(Reply::Ok)
}

/// CLIENT GETREDIR: -1 when not tracking, 0 without a redirect.
pub(crate) fn getredir(client: &Client) -> Reply {
    Reply::Int(client.tracking.as_ref().map_or(-1, |t| t.redirect as i64))
}

/// CLIENT TRACKINGINFO
pub(crate) fn trackinginfo(client: &Client) -> Reply {
    let s = |t: &'static str| Reply::Bulk(Bytes::from_static(t.as_bytes()));
    let (flags, redirect, prefixes) = match client.tracking.as_ref() {
        None => (vec![s("off")], -1, Vec::new()),
        Some(t) => {
            let mut flags = vec![s("on")];
            if t.bcast {
                flags.push(s("bcast"));
            }
            if t.optin {
                flags.push(s("optin"));
                if client.caching {
                    flags.push(s("caching-yes"));
                }
            }
            if t.optout {
                flags.push(s("optout"));
                if client.caching {
                    flags.push(s("caching-no"));
                }
            }
            if t.noloop {
                flags.push(s("noloop"));
            }
            if t.broken.load(Ordering::Relaxed) {
                flags.push(s("broken_redirect"));
            }
            let prefixes = t.prefixes.iter().cloned().map(Reply::Bulk).collect();
            (flags, t.redirect as i64, prefixes)
        }
    };
    Reply::Map(vec![
        (s("flags"), Reply::Set(flags)),
        (s("redirect"), Reply::Int(redirect)),
        (s("prefixes"), Reply::Array(prefixes)),
    ])
}

/// Remembers, on their shards, the keys a tracking client is about to
/// read (Redis's trackingRememberKeys): read-only commands, not scripts
/// (their own calls are remembered), per OPTIN/OPTOUT and CLIENT CACHING.
pub(crate) async fn remember_keys(client: &Client, spec: &CommandSpec, args: &[Bytes]) {
    let Some(t) = client.tracking.as_ref() else {
        return;
    };
    if t.bcast
        || !spec.has(flag::READONLY)
        || spec.group == Group::Scripting
        || (t.optin && !client.caching)
        || (t.optout && client.caching)
    {
        return;
    }
    let positions: Vec<usize> = if spec.has(flag::MOVABLE_KEYS) {
        spec.movable_key_positions(args)
    } else {
        spec.key_positions(args.len()).collect()
    };
    if positions.is_empty() {
        return;
    }
    let shards = client.shard.shards();
    let (db, id) = (client.db, client.id);
    let mut by_shard: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for p in positions.into_iter().filter(|&p| p < args.len()) {
        let key = Bytes::copy_from_slice(&args[p]);
        let s = shard::route::shard_of(&key, shards);
        match by_shard.iter_mut().find(|(t, _)| *t == s) {
            Some((_, keys)) => keys.push(key),
            None => by_shard.push((s, vec![key])),
        }
    }
    for (target, keys) in by_shard {
        let remember = move |core: &mut crate::shard::ShardCore| {
            core.tracking_active = true;
            let track = &mut core.db_mut(db).track;
            for k in &keys {
                track.remember(k, id);
            }
        };
        if target == client.shard.id {
            client.shard.with_core(remember);
        } else {
            shard::run_on(target, remember).await;
        }
    }
}
