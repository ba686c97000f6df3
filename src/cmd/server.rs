//! Server commands: CONFIG, INFO (built in `info`), COMMAND, TIME,
//! SHUTDOWN (run by `shutdown`), DEBUG, SLOWLOG, LASTSAVE.

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::table::{self, flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::keyspace::{Install, Lookup, StrValue, Value};
use crate::node::{unix_ms, unix_us};
use crate::resp::{Protocol, Reply};
use crate::scripting::functions::RestorePolicy;
use crate::shard;
use bytes::Bytes;
use std::sync::atomic::Ordering;

pub fn commands() -> Vec<CommandSpec> {
    use Group::Server as S;
    let none = (0, 0, 0);
    let c = |cmd| Run::Client(cmd);
    vec![
        spec(
            "memory",
            -2,
            READONLY,
            none,
            S,
            "4.0.0",
            "A container for memory diagnostics commands",
            c(ClientCmd::Memory),
        ),
        spec(
            "config",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            none,
            S,
            "2.0.0",
            "A container for server configuration commands",
            c(ClientCmd::Config),
        ),
        spec(
            "info",
            -1,
            LOADING | STALE,
            none,
            S,
            "1.0.0",
            "Get information and statistics about the server",
            c(ClientCmd::Info),
        ),
        spec(
            "command",
            -1,
            LOADING | STALE,
            none,
            S,
            "2.8.13",
            "Get array of Redis command details",
            c(ClientCmd::Command),
        ),
        spec(
            "time",
            1,
            LOADING | STALE | FAST,
            none,
            S,
            "2.6.0",
            "Return the current server time",
            c(ClientCmd::Time),
        ),
        spec(
            "shutdown",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
            none,
            S,
            "1.0.0",
            "Synchronously save the dataset to disk and then shut down the server",
            c(ClientCmd::Shutdown),
        ),
        spec(
            "debug",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            none,
            S,
            "1.0.0",
            "A container for debugging commands",
            c(ClientCmd::Debug),
        ),
        spec(
            "slowlog",
            -2,
            ADMIN | LOADING | STALE,
            none,
            S,
            "2.2.12",
            "A container for slow log commands",
            c(ClientCmd::Slowlog),
        ),
        spec(
            "save",
            1,
            ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING,
            none,
            S,
            "1.0.0",
            "Synchronously save the dataset to disk",
            c(ClientCmd::Save),
        ),
        spec(
            "bgsave",
            -1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
            none,
            S,
            "1.0.0",
            "Asynchronously save the dataset to disk",
            c(ClientCmd::Bgsave),
        ),
        spec(
            "bgrewriteaof",
            1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
            none,
            S,
            "1.0.0",
            "Asynchronously rewrite the append-only file",
            c(ClientCmd::Bgrewriteaof),
        ),
        spec(
            "monitor",
            1,
            ADMIN | NOSCRIPT | LOADING | STALE,
            none,
            S,
            "1.0.0",
            "Listen for all requests received by the server in real time",
            c(ClientCmd::Monitor),
        ),
        spec(
            "lastsave",
            1,
            LOADING | STALE | FAST,
            none,
            S,
            "1.0.0",
            "Get the UNIX time stamp of the last successful save to disk",
            c(ClientCmd::Lastsave),
        ),
    ]
}

pub async fn run(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Config => config(client, args).await,
        ClientCmd::Info => super::info::info(client, args).await,
        ClientCmd::Command => command(args),
        ClientCmd::Time => {
            let us = unix_us();
            Ok(Reply::Array(vec![
                Reply::Bulk(Bytes::from((us / 1_000_000).to_string())),
                Reply::Bulk(Bytes::from((us % 1_000_000).to_string())),
            ]))
        }
        ClientCmd::Shutdown => super::shutdown::command(client, args).await,
        ClientCmd::Debug => debug(client, args).await,
        ClientCmd::Memory => super::memory::run(client, args).await,
        ClientCmd::Slowlog => slowlog(args).await,
        ClientCmd::Save => {
            if save_running(&client.node) {
                return Err(CmdError::other("ERR Background save already in progress"));
            }
            save_dataset(&client.node).await.map_err(CmdError::Other)?;
            Ok(Reply::Ok)
        }
        ClientCmd::Bgsave => {
            let schedule = match args.len() {
                1 => false,
                2 if is(&args[1], "schedule") => true,
                _ => return Err(CmdError::Syntax),
            };
            let node = client.node.clone();
            if save_running(&node) {
                if !schedule {
                    return Err(CmdError::other("ERR Background save already in progress"));
                }
                glommio::spawn_local(async move {
                    while save_running(&node) {
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    let _ = bgsave_dataset(&node).await;
                })
                .detach();
                return Ok(Reply::Simple(Bytes::from_static(
                    b"Background saving scheduled",
                )));
            }
            // The cut is taken before the reply, as Redis forks before it:
            // the file holds exactly what was written before BGSAVE.
            let pending = start_save(&node).await.map_err(CmdError::Other)?;
            glommio::spawn_local(async move {
                let _ = finish_save(&node, pending, true).await;
            })
            .detach();
            Ok(Reply::Simple(Bytes::from_static(
                b"Background saving started",
            )))
        }
        ClientCmd::Bgrewriteaof => {
            let node = &client.node;
            let aof = &node.aof;
            if aof.rewrite_in_progress() {
                return Err(CmdError::other(
                    "ERR Background append only file rewriting already in progress",
                ));
            }
            if save_running(node) {
                // Like Redis: after the running save (the snapshot slot is
                // the node's one "child").
                if !aof.rewrite_scheduled.swap(true, Ordering::SeqCst) {
                    let node = node.clone();
                    glommio::spawn_local(async move {
                        while save_running(&node) {
                            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                        }
                        node.aof.rewrite_scheduled.store(false, Ordering::SeqCst);
                        if !node.aof.rewrite_in_progress() {
                            crate::persist::aof::rewrite::start_background(&node);
                        }
                    })
                    .detach();
                }
                return Ok(Reply::Simple(Bytes::from_static(
                    b"Background append only file rewriting scheduled",
                )));
            }
            crate::persist::aof::rewrite::start_background(node);
            Ok(Reply::Simple(Bytes::from_static(
                b"Background append only file rewriting started",
            )))
        }
        ClientCmd::Monitor => {
            if client.monitor.is_none() {
                client.monitor = Some(client.node.add_monitor(client.id));
                client.info.borrow_mut().flags = "O".into();
            }
            Ok(Reply::Ok)
        }
        ClientCmd::Lastsave => Ok(Reply::Int(
            client.node.last_save_unix.load(Ordering::Relaxed),
        )),
        _ => Err(CmdError::Syntax),
    }
}

/// A save (BGSAVE, or a full sync's snapshot) is running.
fn save_running(node: &crate::node::Node) -> bool {
    node.bgsave_in_progress.load(Ordering::SeqCst) || node.snapshot_running.load(Ordering::SeqCst)
}

/// Saves the whole dataset to `dir/dbfilename` (SAVE, SHUTDOWN, DEBUG
/// RELOAD, FLUSHALL with save points), waiting for a running snapshot to
/// end first. Like Redis's foreground `rdbSave`, a failure here does not
/// make `rdb_last_bgsave_status` say `err` (which refuses writes with
/// `-MISCONF`): only a background save's does ([`bgsave_dataset`]).
///
/// Shards are held only for the cut; they then hand out their keys in short
/// slices between clients, and encoding and file I/O run on a separate
/// thread (see `persist::snapshot`).
pub async fn save_dataset(node: &std::sync::Arc<crate::node::Node>) -> Result<(), String> {
    let pending = start_save(node).await?;
    finish_save(node, pending, false).await
}

/// [`save_dataset`] as a background save (save points, BGSAVE SCHEDULE).
pub async fn bgsave_dataset(node: &std::sync::Arc<crate::node::Node>) -> Result<(), String> {
    let pending = start_save(node).await?;
    finish_save(node, pending, true).await
}

/// Stops the running save (a shutdown about to save): it fails at its
/// next slice, which frees the snapshot slot for the caller's save.
pub fn cancel_running_save(node: &crate::node::Node) {
    node.save_cancel.store(true, Ordering::SeqCst);
}

/// A save whose cut is taken.
pub struct PendingSave {
    cut: crate::persist::snapshot::Cut,
    opts: crate::persist::dump::SaveOptions,
    started: std::time::Instant,
}

/// Takes the cut of a save.
pub async fn start_save(node: &std::sync::Arc<crate::node::Node>) -> Result<PendingSave, String> {
    if node.bgsave_in_progress.swap(true, Ordering::SeqCst) {
        return Err("ERR Background save already in progress".into());
    }
    let started = std::time::Instant::now();
    let mut opts = crate::persist::dump::SaveOptions::from_config(&node.config());
    // The cut also records where the replication stream stood, so a
    // restart from this file can continue by partial resync.
    let repl_node = node.clone();
    let (cut, repl_aux) =
        crate::persist::snapshot::take_cut(node, move || crate::repl::save_info(&repl_node)).await;
    opts.aux = repl_aux;
    // Cleared here, not when a save ends: a shutdown that cancels the
    // save ending now must not cancel the save it runs next.
    node.save_cancel.store(false, Ordering::SeqCst);
    opts.cancel = Some(node.save_cancel.clone());
    Ok(PendingSave { cut, opts, started })
}

/// Writes the file of a started save and records the outcome (a failure
/// only for a `background` save).
pub async fn finish_save(
    node: &std::sync::Arc<crate::node::Node>,
    save: PendingSave,
    background: bool,
) -> Result<(), String> {
    let PendingSave { cut, opts, started } = save;
    let cancel = opts.cancel.clone();
    let dirty = cut.dirty_per_shard.clone();
    let outcome = match crate::persist::dump::save_file(cut, &opts).await {
        Ok(_) => {
            shard::gather(move |core| {
                let saved = dirty.get(core.id).copied().unwrap_or(0);
                core.stats.dirty = core.stats.dirty.saturating_sub(saved);
            })
            .await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    node.bgsave_in_progress.store(false, Ordering::SeqCst);
    node.last_save_duration_sec
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    match outcome {
        Ok(()) => {
            node.last_save_ok.store(true, Ordering::Relaxed);
            node.rdb_saves.fetch_add(1, Ordering::Relaxed);
            node.last_save_unix
                .store((unix_ms() / 1000) as i64, Ordering::Relaxed);
            tracing::info!("DB saved on disk");
            Ok(())
        }
        Err(e) if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) => {
            // Stopped for a shutdown's own save, as Redis kills its child
            // (with SIGUSR1): not a failure that refuses writes.
            tracing::info!("Background saving terminated: {e}");
            Err(format!("ERR {e}"))
        }
        Err(e) => {
            if background {
                node.last_save_ok.store(false, Ordering::Relaxed);
            }
            tracing::warn!("Failed saving the DB: {e}");
            Err(format!("ERR {e}"))
        }
    }
}

pub(crate) fn sub_arity(cmd: &str, sub: &str) -> CmdError {
    CmdError::other(format!(
        "ERR wrong number of arguments for '{cmd}|{sub}' command"
    ))
}

pub(crate) fn unknown_sub(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::other(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_uppercase()
    ))
}

pub(crate) fn help(lines: &[&'static str]) -> CmdResult {
    Ok(Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
            .collect(),
    ))
}

fn pairs_reply(client: &Client, pairs: Vec<(String, String)>) -> Reply {
    if client.proto == Protocol::Resp3 {
        Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(Bytes::from(k)), Reply::Bulk(Bytes::from(v))))
                .collect(),
        )
    } else {
        Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [Reply::Bulk(Bytes::from(k)), Reply::Bulk(Bytes::from(v))])
                .collect(),
        )
    }
}

async fn config(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "get" if n >= 3 => {
            let patterns: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
            let pairs = client.node.config().get_matching(&patterns);
            Ok(pairs_reply(client, pairs))
        }
        // An odd count of words after SET is a syntax error in Redis (the
        // arity check already wants at least one pair).
        "set" if n >= 4 && !n.is_multiple_of(2) => Err(CmdError::Syntax),
        "set" if n >= 4 => {
            let pairs: Vec<(&[u8], &[u8])> = args[2..]
                .chunks_exact(2)
                .map(|p| (p[0].as_ref(), p[1].as_ref()))
                .collect();
            let changed = {
                let mut cfg = client.node.config_mut();
                cfg.set_many_from(&pairs, client.is_local)
                    .map_err(CmdError::Other)?
            };
            apply_config_changes(client, &changed);
            if changed.contains(&"appendonly") {
                switch_aof(&client.node).await;
            }
            if changed.contains(&"repl-backlog-size") || changed.contains(&"repl-ring-min-size") {
                crate::repl::master::resize_backlog(&client.node, true).await;
            }
            Ok(Reply::Ok)
        }
        "rewrite" if n == 2 => {
            let cfg = client.node.config();
            let users: Vec<String> = crate::acl::registry()
                .users()
                .into_iter()
                .map(|(name, u)| format!("{} {}", String::from_utf8_lossy(&name), u.describe()))
                .collect();
            let lines = if cfg.get("aclfile").unwrap_or_default().is_empty() {
                crate::config::UserLines::Write(&users)
            } else {
                crate::config::UserLines::Drop
            };
            crate::config::rewrite_with_users(&cfg, &lines).map_err(CmdError::Other)?;
            tracing::info!("CONFIG REWRITE executed with success.");
            Ok(Reply::Ok)
        }
        "resetstat" if n == 2 => {
            shard::gather(|core| {
                core.stats.reset();
                core.latency.clear();
            })
            .await;
            crate::keyspace::lazyfree::reset_stats();
            client.node.memory.reset_stats();
            // Redis's resetServerStats clears aof_delayed_fsync too.
            client
                .node
                .aof
                .health
                .delayed_fsync
                .store(0, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        "help" if n == 2 => help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ]),
        "get" | "set" | "rewrite" | "resetstat" | "help" => Err(sub_arity("config", &sub)),
        _ => Err(unknown_sub("config", &args[1])),
    }
}

/// CONFIG SET appendonly: turning it on writes a first base in the
/// background (the AOF counts as on from now: writes after the base's cut
/// are appended), turning it off stops the writer after a last fsync. A
/// rewrite of the AOF just turned off may still be cleaning up: the new
/// one starts after it.
async fn switch_aof(node: &std::sync::Arc<crate::node::Node>) {
    let on = node.config().appendonly();
    let running = node.aof.active().is_some();
    if on && !running {
        crate::persist::aof::rewrite::start_background(node);
    } else if !on && running {
        crate::persist::aof::stop(node).await;
    }
}

/// Side effects of CONFIG SET that take effect at once.
fn apply_config_changes(client: &Client, changed: &[&'static str]) {
    if changed.iter().any(|n| n.starts_with("min-replicas")) {
        crate::repl::master::refresh_good_replicas(&client.node);
    }
    // Values hot paths read from atomics (slowlog thresholds, collection
    // encoding limits).
    client.node.refresh_cached_config();
    if changed.contains(&"maxmemory") {
        let max = client.node.memory.maxmemory();
        let used = crate::alloc::used_bytes();
        if max != 0 && max < used {
            tracing::warn!("WARNING: the new maxmemory value set via CONFIG SET ({max}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy.");
        }
        crate::evict::request_everywhere(&client.node);
    }
    let cfg = client.node.config();
    for name in changed {
        if *name == "no-appendfsync-on-rewrite" {
            client
                .node
                .aof
                .set_no_fsync_on_rewrite(cfg.bool_value("no-appendfsync-on-rewrite"));
        }
        if *name == "aof-timestamp-enabled" {
            client
                .node
                .aof
                .set_timestamps(cfg.bool_value("aof-timestamp-enabled"));
        }
        if *name == "appendfsync" {
            client
                .node
                .aof
                .set_policy(crate::persist::aof::Fsync::parse(&cfg.appendfsync()));
        }
        if *name == "requirepass" {
            crate::acl::registry().set_requirepass(cfg.requirepass().as_deref());
        }
        if *name == "acllog-max-len" {
            crate::acl::registry()
                .trim_log(cfg.int_value("acllog-max-len").unwrap_or(128).max(0) as usize);
        }
        if *name == "loglevel" {
            crate::log::set_level(cfg.loglevel());
        }
        // Like Redis, `dir` is the process's working directory: dumps and
        // sync files are written relative to it.
        if *name == "dir" {
            if let Err(e) = std::env::set_current_dir(cfg.dir()) {
                tracing::warn!("Can't chdir to '{}': {e}", cfg.dir());
            }
        }
    }
}

fn command(args: &[Bytes]) -> CmdResult {
    let t = table::table();
    if args.len() == 1 {
        return Ok(Reply::Array(t.commands.iter().map(command_info).collect()));
    }
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "count" if n == 2 => Ok(Reply::Int(t.commands.len() as i64)),
        "info" => {
            if n == 2 {
                return Ok(Reply::Array(t.commands.iter().map(command_info).collect()));
            }
            Ok(Reply::Array(
                args[2..]
                    .iter()
                    .map(|name| t.lookup(name).map_or(Reply::NilArray, command_info))
                    .collect(),
            ))
        }
        "docs" => {
            let selected: Vec<&CommandSpec> = if n == 2 {
                t.commands.iter().collect()
            } else {
                args[2..].iter().filter_map(|name| t.lookup(name)).collect()
            };
            Ok(Reply::Map(
                selected
                    .into_iter()
                    .map(|c| {
                        (
                            Reply::Bulk(Bytes::from_static(c.name.as_bytes())),
                            command_docs(c),
                        )
                    })
                    .collect(),
            ))
        }
        "list" => {
            let mut names: Vec<&CommandSpec> = t.commands.iter().collect();
            if n > 2 {
                if n != 5 || !is(&args[2], "filterby") {
                    return Err(CmdError::Syntax);
                }
                let value = args[4].clone();
                if is(&args[3], "pattern") {
                    names
                        .retain(|c| crate::util::glob::glob_match(&value, c.name.as_bytes(), true));
                } else if is(&args[3], "aclcat") {
                    let cat = format!("@{}", String::from_utf8_lossy(&value).to_lowercase());
                    names.retain(|c| c.acl_categories().contains(&cat.as_str()));
                } else if is(&args[3], "module") {
                    names.clear();
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            Ok(Reply::Array(
                names
                    .into_iter()
                    .map(|c| Reply::Bulk(Bytes::from_static(c.name.as_bytes())))
                    .collect(),
            ))
        }
        "getkeys" if n >= 3 => {
            let Some(c) = t.lookup(&args[2]) else {
                return Err(CmdError::other("ERR Invalid command specified"));
            };
            let call = &args[2..];
            if c.first_key == 0 && !c.has(MOVABLE_KEYS) {
                return Err(CmdError::other("ERR The command has no key arguments"));
            }
            if c.check_shape(call).is_err() {
                return Err(CmdError::other(
                    "ERR Invalid number of arguments specified for command",
                ));
            }
            let positions: Vec<usize> = if c.has(MOVABLE_KEYS) {
                c.movable_key_positions(call)
            } else {
                c.key_positions(call.len()).collect()
            };
            let keys: Vec<Reply> = positions
                .into_iter()
                .map(|p| Reply::Bulk(call[p].clone()))
                .collect();
            if keys.is_empty() && !c.has(super::table::flag::NO_MANDATORY_KEYS) {
                return Err(CmdError::other(
                    "ERR Invalid arguments specified for command",
                ));
            }
            Ok(Reply::Array(keys))
        }
        "help" if n == 2 => help(&[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "HELP",
            "    Prints this help.",
        ]),
        "count" | "getkeys" | "help" => Err(sub_arity("command", &sub)),
        _ => Err(unknown_sub("command", &args[1])),
    }
}

fn status(s: &'static str) -> Reply {
    Reply::Simple(Bytes::from_static(s.as_bytes()))
}

fn bulk(s: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(s.as_bytes()))
}

/// Redis 7.0's command tips (COMMAND INFO's eighth field), for the
/// commands Cascade has: hints for clients about a reply's order and,
/// in a cluster, how to spread a call over shards.
const COMMAND_TIPS: &[(&str, &[&str])] = &[
    ("command", &["nondeterministic_output_order"]),
    (
        "dbsize",
        &["request_policy:all_shards", "response_policy:agg_sum"],
    ),
    (
        "del",
        &["request_policy:multi_shard", "response_policy:agg_sum"],
    ),
    ("dump", &["nondeterministic_output"]),
    (
        "exists",
        &["request_policy:multi_shard", "response_policy:agg_sum"],
    ),
    (
        "flushall",
        &["request_policy:all_shards", "response_policy:all_succeeded"],
    ),
    (
        "flushdb",
        &["request_policy:all_shards", "response_policy:all_succeeded"],
    ),
    ("hgetall", &["nondeterministic_output_order"]),
    ("hkeys", &["nondeterministic_output_order"]),
    ("hrandfield", &["nondeterministic_output"]),
    ("hscan", &["nondeterministic_output"]),
    ("hvals", &["nondeterministic_output_order"]),
    (
        "info",
        &[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ],
    ),
    (
        "keys",
        &["request_policy:all_shards", "nondeterministic_output_order"],
    ),
    ("lastsave", &["nondeterministic_output"]),
    ("mget", &["request_policy:multi_shard"]),
    (
        "mset",
        &[
            "request_policy:multi_shard",
            "response_policy:all_succeeded",
        ],
    ),
    (
        "msetnx",
        &["request_policy:multi_shard", "response_policy:agg_min"],
    ),
    (
        "ping",
        &["request_policy:all_shards", "response_policy:all_succeeded"],
    ),
    ("pttl", &["nondeterministic_output"]),
    (
        "randomkey",
        &["request_policy:all_shards", "nondeterministic_output"],
    ),
    (
        "scan",
        &["nondeterministic_output", "request_policy:special"],
    ),
    ("sdiff", &["nondeterministic_output_order"]),
    ("sinter", &["nondeterministic_output_order"]),
    ("smembers", &["nondeterministic_output_order"]),
    ("spop", &["nondeterministic_output"]),
    ("srandmember", &["nondeterministic_output"]),
    ("sscan", &["nondeterministic_output"]),
    ("sunion", &["nondeterministic_output_order"]),
    ("time", &["nondeterministic_output"]),
    (
        "touch",
        &["request_policy:multi_shard", "response_policy:agg_sum"],
    ),
    ("ttl", &["nondeterministic_output"]),
    (
        "unlink",
        &["request_policy:multi_shard", "response_policy:agg_sum"],
    ),
    (
        "wait",
        &["request_policy:all_shards", "response_policy:agg_min"],
    ),
    ("xadd", &["nondeterministic_output"]),
    ("xautoclaim", &["nondeterministic_output"]),
    ("xclaim", &["nondeterministic_output"]),
    ("xpending", &["nondeterministic_output"]),
    ("xtrim", &["nondeterministic_output"]),
    ("zrandmember", &["nondeterministic_output"]),
    ("zscan", &["nondeterministic_output"]),
];

/// One COMMAND INFO entry, Redis 7 layout: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specs, subcommands.
fn command_info(c: &CommandSpec) -> Reply {
    // A container is described as Redis describes it: its subcommands
    // carry the flags, keys and categories; the container itself has
    // none but @slow (the subcommands' own entries are not listed yet).
    // (COMMAND itself runs without a subcommand too, and keeps its own.)
    if !c.subcommands.is_empty() && c.name != "command" {
        return info_entry(c, vec![], (0, 0, 0), vec!["@slow"], vec![]);
    }
    let key_specs = if c.first_key > 0 {
        vec![Reply::Map(vec![
            (
                bulk("flags"),
                Reply::Set(vec![status(if c.is_write() { "RW" } else { "RO" })]),
            ),
            (
                bulk("begin_search"),
                Reply::Map(vec![
                    (bulk("type"), bulk("index")),
                    (
                        bulk("spec"),
                        Reply::Map(vec![(bulk("index"), Reply::Int(c.first_key as i64))]),
                    ),
                ]),
            ),
            (
                bulk("find_keys"),
                Reply::Map(vec![
                    (bulk("type"), bulk("range")),
                    (
                        bulk("spec"),
                        Reply::Map(vec![
                            (
                                bulk("lastkey"),
                                Reply::Int(if c.last_key < 0 {
                                    c.last_key as i64
                                } else {
                                    (c.last_key - c.first_key) as i64
                                }),
                            ),
                            (bulk("keystep"), Reply::Int(c.key_step as i64)),
                            (bulk("limit"), Reply::Int(0)),
                        ]),
                    ),
                ]),
            ),
        ])]
    } else {
        vec![]
    };
    info_entry(
        c,
        shown_flags(c),
        (c.first_key, c.last_key, c.key_step),
        categories_in_redis_order(c),
        key_specs,
    )
}

/// The entry's layout, with the name, arity and tips from the table.
fn info_entry(
    c: &CommandSpec,
    flags: Vec<&'static str>,
    (first, last, step): (i32, i32, i32),
    categories: Vec<&'static str>,
    key_specs: Vec<Reply>,
) -> Reply {
    let tips = COMMAND_TIPS
        .iter()
        .find(|(name, _)| *name == c.name)
        .map_or(&[][..], |(_, tips)| *tips);
    Reply::Array(vec![
        bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(flags.into_iter().map(status).collect()),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        Reply::Set(categories.into_iter().map(status).collect()),
        Reply::Set(tips.iter().map(|t| bulk(t)).collect()),
        Reply::Array(key_specs),
        Reply::Array(vec![]),
    ])
}

/// The flags COMMAND INFO shows: AUTH and HELLO skip MONITOR and the
/// slow log here by flag, where Redis 7.0 redacts their arguments instead
/// and lists neither flag.
fn shown_flags(c: &CommandSpec) -> Vec<&'static str> {
    let mut flags = c.flag_names();
    if matches!(c.name, "auth" | "hello") {
        flags.retain(|f| !matches!(*f, "skip_monitor" | "skip_slowlog"));
    }
    flags
}

/// A command's ACL categories in the order Redis lists them: its
/// category table's, not the order they were derived in.
fn categories_in_redis_order(c: &CommandSpec) -> Vec<&'static str> {
    let mut cats = c.acl_categories();
    let rank = |cat: &str| {
        crate::acl::catalog::CATEGORIES
            .iter()
            .position(|known| cat.strip_prefix('@') == Some(*known))
            .unwrap_or(usize::MAX)
    };
    cats.sort_by_key(|cat| rank(cat));
    cats
}

fn command_docs(c: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (bulk("summary"), bulk(c.summary)),
        (bulk("since"), bulk(c.since)),
        (bulk("group"), bulk(c.group.name())),
    ])
}

/// Feeds a value into a digest started for its type (see [`digest_type`]).
fn digest_feed(d: &mut crate::util::digest::ValueDigester, v: &Value) {
    match v {
        Value::Str(s) => d.string(s.bytes()),
        Value::Hash(h) => h.iter().for_each(|(f, v)| d.hash_field(f, v)),
        Value::Set(s) => s.iter().for_each(|m| match m {
            crate::keyspace::Member::Int(i) => d.set_member(i.to_string().as_bytes()),
            crate::keyspace::Member::Bytes(b) => d.set_member(b),
        }),
        Value::Zset(z) => z.iter().for_each(|(m, s)| d.zset_member(m, s)),
        Value::List(l) => l.iter().for_each(|e| d.list_element(e)),
        Value::Stream(st) => {
            use crate::keyspace::StreamId;
            for (id, pairs) in st.range(StreamId::MIN, StreamId::MAX, false, 0) {
                d.stream_entry(id.ms, id.seq, pairs.iter().map(|(f, v)| (&f[..], &v[..])));
            }
        }
    }
}

fn digest_type(v: &Value) -> crate::util::digest::ValueType {
    use crate::util::digest::ValueType;
    match v {
        Value::Str(_) => ValueType::String,
        Value::Hash(_) => ValueType::Hash,
        Value::Set(_) => ValueType::Set,
        Value::Zset(_) => ValueType::ZSet,
        Value::List(_) => ValueType::List,
        Value::Stream(_) => ValueType::Stream,
    }
}

/// DEBUG DIGEST's per-key digest (key name, type, value, expire mark).
fn key_digest_of(key: &[u8], v: &Value, has_expire: bool) -> crate::util::digest::Sha1Digest {
    let mut d = crate::util::digest::ValueDigester::for_key(key, digest_type(v));
    digest_feed(&mut d, v);
    d.finish(has_expire)
}

/// DEBUG DIGEST-VALUE of an existing key (no key name).
fn value_digest_of(v: &Value, has_expire: bool) -> crate::util::digest::Sha1Digest {
    let mut d = crate::util::digest::ValueDigester::for_value(digest_type(v));
    digest_feed(&mut d, v);
    d.finish(has_expire)
}

/// Whether DEBUG is allowed for this client (`enable-debug-command`).
fn debug_allowed(client: &Client) -> bool {
    client
        .node
        .config()
        .enable_debug_command()
        .allows(client.is_local)
}

async fn debug(client: &mut Client, args: &[Bytes]) -> CmdResult {
    if !debug_allowed(client) {
        return Err(CmdError::NotInDebugMode);
    }
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "sleep" if n == 3 => {
            let secs = super::args::float_arg(&args[2])?;
            // Like Redis, this blocks the server thread (here: this shard),
            // which is what tests use it for.
            if secs > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            }
            Ok(Reply::Ok)
        }
        "digest" if n == 2 => {
            use crate::util::digest::{dataset_digest, to_hex, DbAccumulator};
            let guard = shard::hold_all().await;
            let parts = guard
                .run_each(|core| {
                    let mut out = Vec::new();
                    for (i, db) in core.ks.dbs().iter().enumerate() {
                        if db.is_empty() {
                            continue;
                        }
                        let mut acc = DbAccumulator::new();
                        for (k, v, exp) in db.iter_all() {
                            acc.add_key_digest(&key_digest_of(k, v, exp.is_some()));
                        }
                        out.push((i as u32, acc));
                    }
                    out
                })
                .await;
            drop(guard);
            let all: Vec<_> = parts.into_iter().flatten().collect();
            Ok(Reply::Simple(Bytes::from(to_hex(&dataset_digest(&all)))))
        }
        "digest-value" if n >= 2 => {
            use crate::util::digest::{to_hex, ZERO_DIGEST};
            let mut out = Vec::with_capacity(n - 2);
            for key in &args[2..] {
                let key = key.clone();
                let db = client.db;
                let target = client.shard.shard_of(&key);
                let d = shard::run_on(target, move |core| {
                    let d = core.db(db);
                    match d.get_ref(&key, 0) {
                        Some(v) => value_digest_of(v, d.expire_at(&key).is_some()),
                        None => ZERO_DIGEST,
                    }
                })
                .await;
                out.push(Reply::Simple(Bytes::from(to_hex(&d))));
            }
            Ok(Reply::Array(out))
        }
        "panic" if n == 2 => {
            // Raised inside a job on the last shard, not on this
            // connection's task: the crash path must take the whole process
            // down from any executor thread.
            let target = client.node.shards() - 1;
            let now = unix_ms() / 1000;
            shard::run_on(target, move |_core| -> () {
                panic!("DEBUG PANIC called at Unix time {now}");
            })
            .await;
            Ok(Reply::Ok)
        }
        "set-active-expire" if n == 3 => {
            let on = int_arg(&args[2])? != 0;
            client.node.active_expire.store(on, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        "object" if n == 3 => {
            let key = args[2].clone();
            let db = client.db;
            let target = client.shard.shard_of(&key);
            let line = shard::run_on(target, move |core| {
                let d = core.db_mut(db);
                d.get(&key, unix_ms(), Lookup::Read).map(|v| {
                    let len = v.payload_bytes();
                    format!(
                        "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:0 lru_seconds_idle:0",
                        v.encoding_name(),
                        len
                    )
                })
            })
            .await;
            line.map(|l| Reply::Simple(Bytes::from(l)))
                .ok_or(CmdError::NoSuchKey)
        }
        "populate" if (3..=5).contains(&n) => {
            let count = int_arg(&args[2])?;
            if count < 0 {
                return Err(CmdError::other("ERR count must be positive"));
            }
            let prefix = if n >= 4 {
                args[3].clone()
            } else {
                Bytes::from_static(b"key")
            };
            let size = if n == 5 {
                let s = int_arg(&args[4])?;
                if s < 0 {
                    return Err(CmdError::other("ERR value size must be positive"));
                }
                Some(s as usize)
            } else {
                None
            };
            populate(client, count as u64, prefix, size).await;
            Ok(Reply::Ok)
        }
        "reload" => {
            let (mut save, mut flush, mut merge) = (true, true, false);
            for opt in &args[2..] {
                if is(opt, "nosave") {
                    save = false;
                } else if is(opt, "noflush") {
                    flush = false;
                } else if is(opt, "merge") {
                    merge = true;
                } else {
                    return Err(CmdError::other(
                        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                    ));
                }
            }
            debug_reload(client, save, flush, merge).await?;
            Ok(Reply::Ok)
        }
        "loadaof" if n == 2 => {
            if crate::persist::aof::load::reload(&client.node)
                .await
                .is_err()
            {
                // What Redis 7.0 does when loadAppendOnlyFiles fails or
                // finds no AOF (also with appendonly no and no AOF
                // directory): exit(1), no reply.
                tracing::warn!("DEBUG LOADAOF could not load the AOF. Exiting...");
                std::process::exit(1);
            }
            Ok(Reply::Ok)
        }
        "help" if n == 2 => help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOADAOF",
            "    Flush the AOF buffers on disk and reload the AOF in memory.",
            "OBJECT <key>",
            "    Show low level info about the <key> and associated value.",
            "RELOAD [option ...]",
            "    Save the RDB on disk and reload it back to memory. Options: MERGE (keep",
            "    keys the file does not replace), NOFLUSH (do not empty the dataset first),",
            "    NOSAVE (load the existing file without saving first).",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "PANIC",
            "    Crash the server (a bug report is logged), as a failed assertion would.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ]),
        _ => Err(CmdError::other(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// DEBUG RELOAD: saves the dataset (unless NOSAVE), then replaces it with
/// what the file holds, as a restart would. NOFLUSH keeps the current keys
/// (a key also in the file is an error, as in Redis, unless MERGE, where
/// the file's version wins).
async fn debug_reload(
    client: &Client,
    save: bool,
    flush: bool,
    merge: bool,
) -> Result<(), CmdError> {
    let node = client.node.clone();
    if save {
        save_dataset(&node).await.map_err(CmdError::Other)?;
    }
    let path = std::path::PathBuf::from(node.config().dbfilename());
    let databases = node.config().databases();
    let (tx, rx) = shard::oneshot::channel();
    let stager = crate::persist::dump::Stager::new();
    std::thread::Builder::new()
        .name("cascade-load".into())
        .spawn(move || tx.send(crate::persist::dump::load(&path, stager, databases)))
        .map_err(|e| CmdError::other(format!("ERR could not start the load thread: {e}")))?;
    let loaded = match rx.await {
        Ok(Ok(Some(l))) => l,
        Ok(Ok(None)) => {
            return Err(CmdError::other(
                "ERR Error trying to load the RDB dump, check server logs.",
            ))
        }
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            return Err(CmdError::other(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        }
        Err(_) => return Err(CmdError::other("ERR the load thread died")),
    };
    // Libraries first: a file whose libraries cannot join ours (NOFLUSH
    // without MERGE) changes nothing.
    let policy = match (flush, merge) {
        (true, _) => RestorePolicy::Flush,
        (false, false) => RestorePolicy::Append,
        (false, true) => RestorePolicy::Replace,
    };
    if crate::scripting::functions::install_loaded(&loaded.facts.functions, policy).is_err() {
        return Err(CmdError::other(
            "ERR Error trying to load the RDB dump, check server logs.",
        ));
    }
    let staged = std::sync::Arc::new(loaded.staged);
    staged.ready().await;
    let how = if flush {
        Install::Replace { lazy: false }
    } else {
        Install::Merge {
            overwrite: merge,
            now_ms: unix_ms(),
        }
    };
    let guard = shard::hold_all().await;
    let installed: Result<Vec<usize>, _> = guard
        .run_each(move |core| staged.install(core, how))
        .await
        .into_iter()
        .collect();
    drop(guard);
    if flush {
        crate::tracking::flushed();
    }
    let duplicates: usize = match installed {
        // Replace counts the keys it removed: no duplicates.
        Ok(_) if flush => 0,
        Ok(counts) => counts.into_iter().sum(),
        Err(e) => {
            tracing::warn!("DEBUG RELOAD: {e}");
            return Err(CmdError::other(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        }
    };
    tracing::info!("DB reloaded by DEBUG RELOAD");
    if duplicates > 0 {
        return Err(CmdError::other(format!(
            "ERR Error trying to load the RDB dump: {duplicates} keys already existed (use MERGE)"
        )));
    }
    Ok(())
}

/// DEBUG POPULATE: `count` keys `<prefix>:<i>` with values `value:<i>`
/// (padded with zero bytes or cut to `size`), skipping existing keys. Keys
/// are grouped per shard and written in batches so no shard stalls.
async fn populate(client: &Client, count: u64, prefix: Bytes, size: Option<usize>) {
    const BATCH: u64 = 10_000;
    let shards = client.shard.shards();
    let db = client.db;
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        let mut per_shard: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); shards];
        for i in start..end {
            let mut key = Vec::with_capacity(prefix.len() + 12);
            key.extend_from_slice(&prefix);
            key.push(b':');
            key.extend_from_slice(i.to_string().as_bytes());
            let mut val = format!("value:{i}").into_bytes();
            if let Some(s) = size {
                val.resize(s, 0);
            }
            let key = Bytes::from(key);
            per_shard[shard::route::shard_of(&key, shards)].push((key, Bytes::from(val)));
        }
        for (s, batch) in per_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            shard::run_on(s, move |core| {
                let now = unix_ms();
                let d = core.db_mut(db);
                for (k, v) in batch {
                    if d.get(&k, now, Lookup::Write).is_none() {
                        d.set(k, Value::Str(StrValue::from_set(v)), None);
                    }
                }
            })
            .await;
        }
        start = end;
    }
}

async fn slowlog(args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "len" if n == 2 => {
            let lens = shard::gather(|core| core.slowlog.len()).await;
            Ok(Reply::Int(lens.iter().sum::<usize>() as i64))
        }
        "reset" if n == 2 => {
            shard::gather(|core| core.slowlog.clear()).await;
            Ok(Reply::Ok)
        }
        "get" if n == 2 || n == 3 => {
            let count = if n == 3 {
                let c = int_arg(&args[2])?;
                if c < -1 {
                    return Err(CmdError::other(
                        "ERR count should be greater than or equal to -1",
                    ));
                }
                if c == -1 {
                    usize::MAX
                } else {
                    c as usize
                }
            } else {
                10
            };
            let parts =
                shard::gather(|core| core.slowlog.iter().cloned().collect::<Vec<_>>()).await;
            let mut all: Vec<_> = parts.into_iter().flatten().collect();
            all.sort_by_key(|e| std::cmp::Reverse(e.id));
            all.truncate(count);
            Ok(Reply::Array(
                all.into_iter()
                    .map(|e| {
                        Reply::Array(vec![
                            Reply::Int(e.id as i64),
                            Reply::Int(e.unix_secs as i64),
                            Reply::Int(e.usec as i64),
                            Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
                            Reply::Bulk(Bytes::from(e.peer)),
                            Reply::Bulk(e.client_name),
                        ])
                    })
                    .collect(),
            ))
        }
        "help" if n == 2 => help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ]),
        "len" | "reset" | "help" | "get" => Err(sub_arity("slowlog", &sub)),
        _ => Err(unknown_sub("slowlog", &args[1])),
    }
}
