//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD EXISTS FLUSH KILL
//! HELP): Lua scripts (`crate::scripting`) run atomically, as in Redis.
//!
//! A script holds every shard for its whole run, like an EXEC whose
//! commands are not known in advance, so its calls may touch any key and
//! no other client sees a state between two of them. Each `redis.call`
//! goes through the normal command path (`super::call`) under that hold,
//! after the checks Redis makes for scripts (known command, arity, not
//! `noscript`, no writes from EVAL_RO or on a read-only replica). What the
//! calls write enters the replication stream and the AOF as one `MULTI`
//! ... `EXEC` unit, the commands themselves (Redis 7.0 always replicates
//! a script's effects, never the script). SELECT inside a script changes
//! only the script's database.

use super::args::int_arg;
use super::error::{CmdError, CmdResult};
use super::server::{help, sub_arity, unknown_sub};
use super::table::{flag::*, spec, table, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::propagate::Capture;
use crate::resp::{Protocol, Reply};
use crate::scripting::{self, functions, KillRefused, Resume, ScriptRun, Step};
use crate::shard;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

#[rustfmt::skip]
pub fn commands() -> Vec<CommandSpec> {
    use Group::Scripting as S;
    let eval_flags = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLE_KEYS;
    let ro_flags = eval_flags | READONLY;
    let run = Run::Client(ClientCmd::Eval);
    vec![
        spec("eval", -3, eval_flags, (0, 0, 0), S, "2.6.0", "Execute a Lua script server side", run),
        spec("evalsha", -3, eval_flags, (0, 0, 0), S, "2.6.0", "Execute a Lua script server side", run),
        spec("eval_ro", -3, ro_flags, (0, 0, 0), S, "7.0.0", "Execute a read-only Lua script server side", run),
        spec("evalsha_ro", -3, ro_flags, (0, 0, 0), S, "7.0.0", "Execute a read-only Lua script server side", run),
        spec("script", -2, 0, (0, 0, 0), S, "2.6.0", "A container for Lua scripts management commands", Run::Client(ClientCmd::Script)),
    ]
}

/// The error a script's call raises, as Redis words the checks.
fn refuse(msg: &str) -> Reply {
    Reply::Error(Bytes::from(format!("ERR {msg}")))
}

/// EVAL script numkeys [key ...] [arg ...] (and EVALSHA, the _RO forms).
pub async fn eval(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let name = args[0].to_ascii_lowercase();
    let by_sha = name.starts_with(b"evalsha");
    let read_only = name.ends_with(b"_ro");
    let numkeys = int_arg(&args[2])?;
    if numkeys > (args.len() - 3) as i64 {
        return Err(CmdError::other(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::other("ERR Number of keys can't be negative"));
    }
    // EVAL caches its script; EVALSHA finds it there (compiled when run).
    let (sha, body) = if by_sha {
        let body = scripting::cached(&args[1])
            .ok_or_else(|| CmdError::other("NOSCRIPT No matching script. Please use EVAL."))?;
        (String::from_utf8_lossy(&args[1]).to_ascii_lowercase(), body)
    } else {
        let sha = scripting::load(&args[1]).map_err(CmdError::other)?;
        (sha, args[1].clone())
    };
    // A `#!lua` line makes the script say what it does (Redis 7.0): one
    // that may write is refused by the _RO forms, one that may not runs
    // read-only.
    let mut read_only = read_only;
    if let Some((flags, _)) = scripting::shebang(&body).map_err(CmdError::other)? {
        if flags & functions::NO_WRITES == 0 {
            if read_only {
                return Err(CmdError::other(
                    "ERR Can not execute a script with write flag using *_ro command.",
                ));
            }
        } else {
            read_only = true;
        }
    }
    let split = 3 + numkeys as usize;
    let (keys, argv) = (&args[3..split], &args[split..]);
    let start = || ScriptRun::start(&sha, &body, keys, argv);
    Ok(run_script(client, start, read_only, None).await)
}

/// Runs a script to its end under a hold of every shard: an EVAL script,
/// or (with its name and the calling command) a function. `start` makes
/// the run once the hold is taken.
pub(super) async fn run_script(
    client: &mut Client,
    start: impl FnOnce() -> Result<ScriptRun, String>,
    read_only: bool,
    function: Option<(String, Vec<Bytes>)>,
) -> Reply {
    let guard = shard::hold_all().await;
    // Started under the hold: KEYS and ARGV are globals of this thread's
    // VM, and no other script of this thread runs until the hold ends.
    let run = match start() {
        Ok(run) => run,
        Err(e) => return Reply::Error(Bytes::from(e)),
    };
    // Inside EXEC the transaction's capture takes the script's writes.
    let capture = (!client.in_exec).then(|| Arc::new(Mutex::new(Capture::default())));
    if let Some(c) = &capture {
        let c = c.clone();
        guard
            .run_each(move |core| core.capture = Some(c.clone()))
            .await;
    }
    let limit = client
        .node
        .config()
        .int_value("busy-reply-threshold")
        .unwrap_or(5000)
        .max(0) as u64;
    scripting::script_started(limit, function);
    // Ends the busy state however this future ends.
    struct Ended;
    impl Drop for Ended {
        fn drop(&mut self) {
            scripting::script_ended();
        }
    }
    let ended = Ended;
    scripting::set_script_caller(super::acl::current_user(client));
    let saved = (client.db, client.proto, client.in_exec, client.in_script);
    client.proto = Protocol::Resp2;
    client.in_exec = true;
    client.in_script = true;
    let reply = shard::scoped(&guard, async {
        let mut input = Resume::Start;
        loop {
            match run.resume(input) {
                Step::Done(reply) => return reply,
                // The text goes verbatim after the error marker, as Redis
                // writes it: an `err` field's leading '-' stays.
                Step::Failed(text) => return Reply::Error(Bytes::from(format!("-{text}"))),
                Step::BadCall(msg) => {
                    input = Resume::Reply(Reply::Error(Bytes::from_static(msg.as_bytes())))
                }
                Step::Call(call) => {
                    // Calls are answered in the protocol the script chose.
                    client.proto = if scripting::script_resp3() {
                        Protocol::Resp3
                    } else {
                        Protocol::Resp2
                    };
                    input = Resume::Reply(Box::pin(script_call(client, &call, read_only)).await)
                }
            }
        }
    })
    .await;
    drop(ended);
    (client.db, client.proto, client.in_exec, client.in_script) = saved;
    if let Some(capture) = capture {
        super::tx::append_captured(client, &capture);
        guard.run_each(|core| core.capture = None).await;
    }
    drop(guard);
    reply
}

/// One `redis.call` of a script: Redis's checks, then the command.
async fn script_call(client: &mut Client, call: &[Bytes], read_only: bool) -> Reply {
    let Some(spec) = table().lookup(&call[0]) else {
        return refuse("Unknown Redis command called from script");
    };
    match spec.check_shape(call) {
        Ok(()) => {}
        Err(super::table::BadShape::UnknownSubcommand) => {
            return refuse("Unknown Redis command called from script")
        }
        Err(super::table::BadShape::Arity) => {
            super::count_rejected(client, spec, call);
            return refuse("Wrong number of args calling Redis command from script");
        }
    }
    if super::function::call_flags(spec, call) & NOSCRIPT != 0 {
        return refuse("This Redis command is not allowed from script");
    }
    if let Err(denied) = super::acl::check_script_call(client, spec, call) {
        return refuse(denied);
    }
    if spec.has(WRITE) {
        if read_only {
            return refuse("Write commands are not allowed from read-only scripts.");
        }
        let replica = matches!(client.node.repl.role(), crate::repl::Role::Replica { .. });
        if replica && !client.is_master && client.node.config().replica_read_only() {
            return Reply::Error(Bytes::from_static(
                b"READONLY You can't write against a read only replica.",
            ));
        }
    }
    // On a stale replica (link down, replica-serve-stale-data no) a script
    // that may run there (EVAL, a function with allow-stale) runs only the
    // commands allowed on it.
    if !spec.has(STALE) && !client.is_master && super::stale_replica(client) {
        return refuse("Can not execute the command on a stale replica");
    }
    if spec.has(WRITE) {
        scripting::script_wrote();
    }
    super::call(client, spec, call).await
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|DEBUG|HELP
pub async fn script(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match (&sub[..], args.len()) {
        (b"help", 2) => help(SCRIPT_HELP),
        (b"load", 3) => {
            let sha = scripting::load(&args[2]).map_err(CmdError::other)?;
            Ok(Reply::Bulk(Bytes::from(sha)))
        }
        (b"exists", n) if n >= 3 => Ok(Reply::Array(
            args[2..]
                .iter()
                .map(|sha| Reply::Int(i64::from(scripting::cached(sha).is_some())))
                .collect(),
        )),
        // Redis takes any number of arguments and names the one option.
        (b"flush", n) if n >= 2 => {
            if n > 3
                || (n == 3
                    && !args[2].eq_ignore_ascii_case(b"sync")
                    && !args[2].eq_ignore_ascii_case(b"async"))
            {
                return Err(CmdError::other(
                    "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
                ));
            }
            scripting::flush();
            Ok(Reply::Ok)
        }
        (b"kill", 2) => kill(false),
        (b"debug", 3) => debug(client, &args[2]),
        (b"help" | b"load" | b"exists" | b"flush" | b"kill" | b"debug", _) => Err(sub_arity(
            "script",
            std::str::from_utf8(&sub).unwrap_or("?"),
        )),
        _ => Err(unknown_sub("script", &args[1])),
    }
}

/// SCRIPT DEBUG YES|SYNC|NO. Cascade has no Lua debugger (Redis's LDB
/// session over the connection), so only NO, which leaves scripts running
/// normally, is accepted; YES and SYNC say so instead of being ignored.
fn debug(client: &Client, mode: &Bytes) -> CmdResult {
    if client.in_exec {
        return Err(CmdError::other(
            "ERR SCRIPT DEBUG must be called outside MULTI",
        ));
    }
    if mode.eq_ignore_ascii_case(b"no") {
        Ok(Reply::Ok)
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        Err(CmdError::other(
            "ERR SCRIPT DEBUG YES/SYNC is not supported: Cascade has no Lua debugger",
        ))
    } else {
        Err(CmdError::other("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

/// SCRIPT KILL (`function` false) and FUNCTION KILL.
pub(super) fn kill(function: bool) -> CmdResult {
    match scripting::request_kill(function) {
        Ok(()) => Ok(Reply::Ok),
        Err(KillRefused::NotBusy) => Err(CmdError::other(
            "NOTBUSY No scripts in execution right now.",
        )),
        Err(KillRefused::Unkillable) => Err(CmdError::other(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        )),
        Err(KillRefused::OtherKind(busy)) => Err(CmdError::other(busy)),
    }
}
