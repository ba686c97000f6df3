//! FUNCTION (LOAD DELETE FLUSH LIST STATS KILL DUMP RESTORE HELP), FCALL
//! and FCALL_RO: Redis 7.0 functions (`crate::scripting::functions`).
//!
//! A function runs like an EVAL script (`eval::run_script`: every shard
//! held, its writes replicated as their effects), with the checks its
//! flags call for. FUNCTION's changes run under a hold of every shard, so
//! a snapshot's cut sees a library either in its RDB or later in the
//! stream, and reach replicas and the AOF as the command itself.

use super::error::{CmdError, CmdResult};
use super::server::{help, sub_arity, unknown_sub};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::resp::Reply;
use crate::scripting::functions::{self, FunctionCall, RestorePolicy};
use crate::scripting::{self, Running};
use crate::shard;
use bytes::Bytes;

#[rustfmt::skip]
pub fn commands() -> Vec<CommandSpec> {
    use Group::Scripting as S;
    let fcall = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLE_KEYS;
    vec![
        spec("fcall", -3, fcall, (0, 0, 0), S, "7.0.0", "Invoke a function", Run::Client(ClientCmd::Fcall)),
        spec("fcall_ro", -3, fcall | READONLY, (0, 0, 0), S, "7.0.0", "Invoke a read-only function", Run::Client(ClientCmd::Fcall)),
        spec("function", -2, PROPAGATES, (0, 0, 0), S, "7.0.0", "A container for function commands", Run::Client(ClientCmd::Function)),
    ]
}

/// The flags the checks before a command see for this call (Redis's
/// `getCommandFlags`): FCALL takes its function's flags (a function that
/// may write is checked like a write, one without `allow-stale` is refused
/// on a stale replica...), EVAL those of its script's `#!lua` line,
/// FUNCTION those of its subcommand (the container itself has none, as
/// COMMAND shows).
pub(crate) fn call_flags(spec: &CommandSpec, args: &[Bytes]) -> u32 {
    match spec.run {
        Run::Client(ClientCmd::Fcall) => match args.get(1).and_then(|name| functions::find(name)) {
            Some((_, f)) => with_script_flags(spec.flags, f.flags),
            None => spec.flags,
        },
        // A script with a `#!lua` line is checked by its flags too; one
        // without keeps EVAL's (each of its calls is checked instead).
        Run::Client(ClientCmd::Eval) => {
            let body = match args.get(1) {
                Some(sha) if spec.name.starts_with("evalsha") => scripting::cached(sha),
                Some(body) => Some(body.clone()),
                None => None,
            };
            match body.and_then(|b| scripting::shebang(&b).ok().flatten()) {
                Some((flags, _)) => with_script_flags(spec.flags, flags),
                None => spec.flags,
            }
        }
        Run::Client(ClientCmd::Function) => {
            let sub = args.get(1).map(|s| s.to_ascii_lowercase());
            match sub.as_deref() {
                Some(b"load" | b"restore") => spec.flags | WRITE | DENYOOM | NOSCRIPT,
                Some(b"delete" | b"flush") => spec.flags | WRITE | NOSCRIPT,
                Some(b"help") => spec.flags | STALE | LOADING,
                _ => spec.flags | NOSCRIPT,
            }
        }
        // Like FUNCTION's, SCRIPT's subcommands manage scripts and so may
        // not be called by one; only HELP may.
        Run::Client(ClientCmd::Script) => match args.get(1).map(|s| s.to_ascii_lowercase()) {
            Some(sub) if sub == b"help" => spec.flags,
            _ => spec.flags | NOSCRIPT,
        },
        _ => spec.flags,
    }
}

/// Command flags for a script with these script flags (Redis's
/// `scriptFlagsToCmdFlags`): one that may write is a write that may grow
/// memory (unless `allow-oom`); only `allow-stale` runs on a stale replica.
fn with_script_flags(command: u32, script: u8) -> u32 {
    let mut flags = command & !(WRITE | DENYOOM | STALE);
    if script & functions::NO_WRITES == 0 {
        flags |= WRITE;
        if script & functions::ALLOW_OOM == 0 {
            flags |= DENYOOM;
        }
    }
    if script & functions::ALLOW_STALE != 0 {
        flags |= STALE;
    }
    flags
}

/// FCALL / FCALL_RO function numkeys [key ...] [arg ...]
pub async fn fcall(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let read_only = args[0].eq_ignore_ascii_case(b"fcall_ro");
    let (lib, function) =
        functions::find(&args[1]).ok_or_else(|| CmdError::other("ERR Function not found"))?;
    let numkeys = super::args::parse_i64_strict(&args[2])
        .ok_or_else(|| CmdError::other("ERR Bad number of keys provided"))?;
    if numkeys > (args.len() - 3) as i64 {
        return Err(CmdError::other(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::other("ERR Number of keys can't be negative"));
    }
    let no_writes = function.flags & functions::NO_WRITES != 0;
    if read_only && !no_writes {
        return Err(CmdError::other(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    let split = 3 + numkeys as usize;
    let (keys, argv) = (&args[3..split], &args[split..]);
    let running = Some((function.name.clone(), args.to_vec()));
    let start = || FunctionCall::start(&lib, &function, keys, argv);
    Ok(super::eval::run_script(client, start, read_only || no_writes, running).await)
}

/// FUNCTION <subcommand> ...
pub async fn function(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let sub_name = String::from_utf8_lossy(&sub).into_owned();
    // Only KILL and STATS answer while a script is busy.
    if crate::scripting::busy() && !matches!(&sub[..], b"kill" | b"stats") {
        return Err(CmdError::other(crate::scripting::busy_error()));
    }
    let exact = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(sub_arity("function", &sub_name))
        }
    };
    match &sub[..] {
        b"load" => {
            if args.len() < 3 {
                return Err(sub_arity("function", &sub_name));
            }
            let (options, code) = args[2..].split_at(args.len() - 3);
            let mut replace = false;
            for opt in options {
                if !opt.eq_ignore_ascii_case(b"replace") {
                    return Err(CmdError::other(format!(
                        "ERR Unknown option given: {}",
                        String::from_utf8_lossy(opt)
                    )));
                }
                replace = true;
            }
            let code = code[0].clone();
            let name = changing(client, args, || functions::load(&code, replace)).await?;
            Ok(Reply::Bulk(Bytes::from(name)))
        }
        b"delete" => {
            exact(3)?;
            let name = args[2].clone();
            changing(client, args, || {
                if functions::delete(&name) {
                    Ok(())
                } else {
                    Err("ERR Library not found".into())
                }
            })
            .await?;
            Ok(Reply::Ok)
        }
        b"flush" => {
            if args.len() > 3 {
                return Err(syntax_error(&args[1]));
            }
            if let Some(mode) = args.get(2) {
                if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                    return Err(CmdError::other(
                        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
                    ));
                }
            }
            changing(client, args, || {
                functions::flush();
                Ok(())
            })
            .await?;
            Ok(Reply::Ok)
        }
        b"list" => list(args),
        b"stats" => {
            exact(2)?;
            stats()
        }
        b"kill" => {
            exact(2)?;
            super::eval::kill(true)
        }
        b"dump" => {
            exact(2)?;
            let payload = crate::persist::values::functions_payload(&functions::codes());
            Ok(Reply::Bulk(Bytes::from(payload)))
        }
        b"restore" => {
            if args.len() < 3 {
                return Err(sub_arity("function", &sub_name));
            }
            if args.len() > 4 {
                return Err(syntax_error(&args[1]));
            }
            let policy = match args.get(3) {
                None => RestorePolicy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
                Some(p) if p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
                Some(_) => {
                    return Err(CmdError::other(
                        "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                    ))
                }
            };
            let codes = crate::persist::values::functions_from_payload(&args[2])
                .map_err(CmdError::other)?;
            changing(client, args, || functions::restore(&codes, policy)).await?;
            Ok(Reply::Ok)
        }
        b"help" => {
            exact(2)?;
            help(FUNCTION_HELP)
        }
        _ => Err(unknown_sub("function", &args[1])),
    }
}

/// Redis's `addReplySubcommandSyntaxError`.
fn syntax_error(sub: &[u8]) -> CmdError {
    CmdError::other(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// Runs a change of the libraries under a hold of every shard; when it
/// succeeds, counts it as a change (save points) and propagates the
/// command to replicas and the AOF.
async fn changing<T>(
    client: &mut Client,
    args: &[Bytes],
    change: impl FnOnce() -> Result<T, String>,
) -> Result<T, CmdError> {
    let guard = shard::hold_all().await;
    let out = change().map_err(CmdError::other)?;
    client.shard.with_core(|core| core.stats.dirty += 1);
    super::propagate(client, client.db, args);
    drop(guard);
    Ok(out)
}

/// FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]
fn list(args: &[Bytes]) -> CmdResult {
    let (mut with_code, mut pattern): (bool, Option<&Bytes>) = (false, None);
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if arg.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            i += 1;
            pattern = Some(
                args.get(i)
                    .ok_or_else(|| CmdError::other("ERR library name argument was not given"))?,
            );
        } else {
            return Err(CmdError::other(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
        i += 1;
    }
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let libraries = functions::libraries()
        .into_iter()
        .filter(|lib| {
            pattern.is_none_or(|p| crate::util::glob::glob_match(p, lib.name.as_bytes(), true))
        })
        .map(|lib| {
            let functions = lib
                .functions
                .iter()
                .map(|f| {
                    let flags = functions::FLAG_NAMES
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| f.flags & (1 << bit) != 0)
                        .map(|(_, name)| Reply::Simple(Bytes::from_static(name.as_bytes())))
                        .collect();
                    Reply::Map(vec![
                        (bulk("name"), bulk(&f.name)),
                        (
                            bulk("description"),
                            f.description.clone().map_or(Reply::Nil, Reply::Bulk),
                        ),
                        (bulk("flags"), Reply::Set(flags)),
                    ])
                })
                .collect();
            let mut fields = vec![
                (bulk("library_name"), bulk(&lib.name)),
                (bulk("engine"), bulk("LUA")),
                (bulk("functions"), Reply::Array(functions)),
            ];
            if with_code {
                fields.push((bulk("library_code"), Reply::Bulk(lib.code.clone())));
            }
            Reply::Map(fields)
        })
        .collect();
    Ok(Reply::Array(libraries))
}

/// FUNCTION STATS: the running function, and the engine's counts.
fn stats() -> CmdResult {
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let running = match crate::scripting::running() {
        Running::Nothing => Reply::Nil,
        Running::Function(name, command, ms) => Reply::Map(vec![
            (bulk("name"), bulk(&name)),
            (
                bulk("command"),
                Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
            ),
            (bulk("duration_ms"), Reply::Int(ms as i64)),
        ]),
        Running::Script => return Err(CmdError::other(crate::scripting::BUSY_EVAL)),
    };
    let (libraries, functions) = functions::counts();
    Ok(Reply::Map(vec![
        (bulk("running_script"), running),
        (
            bulk("engines"),
            Reply::Map(vec![(
                bulk("LUA"),
                Reply::Map(vec![
                    (bulk("libraries_count"), Reply::Int(libraries as i64)),
                    (bulk("functions_count"), Reply::Int(functions as i64)),
                ]),
            )]),
        ),
    ]))
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];
