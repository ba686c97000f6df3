//! ACLs at the command layer: the check every command passes before it
//! runs (Redis's ACLCheckAllPerm in processCommand), authenticating
//! (AUTH, HELLO AUTH), and the ACL command. Users, rules and the log live
//! in [`crate::acl`]; this module maps calls onto them and replies.
//!
//! ```text
//! ACL SETUSER <user> [rule ...]     ACL GETUSER <user>     ACL DELUSER <user> ...
//! ACL LIST | USERS | WHOAMI | CAT [category] | GENPASS [bits]
//! ACL DRYRUN <user> <command> [arg ...]   ACL LOG [count | RESET]
//! ACL LOAD | SAVE                   ACL HELP
//! ```

use std::sync::Arc;

use bytes::Bytes;

use super::connection::{client_line, kill_clients_where};
use super::error::{CmdError, CmdResult};
use super::table::flag::*;
use super::table::{spec, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::acl::catalog::{catalog, category_bit, CATEGORIES};
use crate::acl::{self, facts, registry, Call, Context, Denied, Reason, User};
use crate::resp::Reply;

pub fn commands() -> Vec<CommandSpec> {
    vec![spec(
        "acl",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        Group::Server,
        "6.0.0",
        "A container for Access List Control commands",
        Run::Client(ClientCmd::Acl),
    )]
}

/// Re-reads the client's user if users changed since it was read.
fn refresh_user(client: &Client) {
    let users = registry();
    let generation = users.generation();
    if client.user_generation.get() == generation {
        return;
    }
    let mut slot = client.user.borrow_mut();
    if let Some(old) = slot.as_ref() {
        *slot = Some(match users.get(&old.name) {
            Some(fresh) => fresh,
            // Deleted under us (its clients are being killed): nothing
            // more may run as it.
            None => Arc::new(User::new(&old.name, false)),
        });
    }
    client.user_generation.set(generation);
}

/// The user a client runs as now. `None`: an internal client that may
/// run anything.
pub(crate) fn current_user(client: &Client) -> Option<Arc<User>> {
    refresh_user(client);
    client.user.borrow().clone()
}

/// What ACLs see of a call: its id, keys (with what it does to them) and
/// channels.
pub(crate) fn call_of<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> Call<'a> {
    let cat = catalog();
    let id = spec.stat_id(args);
    let mut access = cat.key_access[id];
    // The two commands whose key flags depend on their arguments.
    match spec.name {
        "set"
            if !args[3.min(args.len())..]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"get")) =>
        {
            access = facts::WRITE;
        }
        "bitfield"
            if !args
                .iter()
                .skip(2)
                .any(|a| a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby")) =>
        {
            access = facts::READ;
        }
        _ => {}
    }
    let positions: Vec<usize> = if spec.has(MOVABLE_KEYS) {
        spec.movable_key_positions(args)
    } else {
        spec.key_positions(args.len()).collect()
    };
    let keys = positions
        .into_iter()
        .filter(|&p| p < args.len())
        .map(|p| (p, access))
        .collect();
    let channels = match spec.name {
        "publish" | "spublish" if args.len() > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..args.len()).map(|p| (p, false)).collect(),
        "psubscribe" => (1..args.len()).map(|p| (p, true)).collect(),
        _ => Vec::new(),
    };
    Call {
        id,
        args,
        no_auth: spec.has(NO_AUTH),
        keys,
        channels,
    }
}

/// A refused call: why, and what the ACL log names (the command, key or
/// channel).
struct Refusal {
    denied: Denied,
    object: Bytes,
}

/// Checks a call against the client's user; on refusal, logs it in
/// `context` and says why.
fn refusal(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    context: Context,
) -> Option<Refusal> {
    // Every command passes here: no reference count is touched (all
    // clients of a user share it, across shards) unless a call is refused.
    refresh_user(client);
    let slot = client.user.borrow();
    let user = slot.as_ref()?;
    if user.unrestricted {
        return None;
    }
    let call = call_of(spec, args);
    let (denied, at) = user.check(&call).err()?;
    let name = user.name.clone();
    drop(slot);
    let (reason, object) = match denied {
        Denied::Command => (
            Reason::Command,
            Bytes::from(catalog().names[call.id].clone()),
        ),
        Denied::Key => (Reason::Key, args[at].clone()),
        Denied::Channel => (Reason::Channel, args[at].clone()),
    };
    log(client, reason, context, object.clone(), name);
    Some(Refusal { denied, object })
}

/// The ACL check before a command runs: Redis's `-NOPERM` error and an
/// ACL LOG entry when the client's user may not run it.
pub(crate) fn check(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    context: Context,
) -> Result<(), Reply> {
    let Some(r) = refusal(client, spec, args, context) else {
        return Ok(());
    };
    let text = match r.denied {
        Denied::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            String::from_utf8_lossy(&r.object)
        ),
        Denied::Key => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    };
    Err(Reply::Error(text.into()))
}

/// The ACL check of a queued command when EXEC runs it, with Redis's
/// wording for rules that changed since it was queued.
pub(crate) fn check_at_exec(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Result<(), Reply> {
    let Some(r) = refusal(client, spec, args, Context::Multi) else {
        return Ok(());
    };
    let reason = match r.denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        Denied::Channel => "no permission to access one of the channels used as arguments",
    };
    Err(Reply::Error(
        format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}").into(),
    ))
}

/// The ACL check of a script's `redis.call`: Redis's script wording, and
/// an ACL LOG entry in the `lua` context.
pub(crate) fn check_script_call(
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Result<(), &'static str> {
    match refusal(client, spec, args, Context::Lua).map(|r| r.denied) {
        None => Ok(()),
        Some(Denied::Command) => {
            Err("The user executing the script can't run this command or subcommand")
        }
        Some(Denied::Key) => Err("The user executing the script can't access at least one of the keys mentioned in the command arguments"),
        Some(Denied::Channel) => {
            Err("The user executing the script can't publish to the channel mentioned in the command")
        }
    }
}

/// Adds an ACL LOG entry for `client`.
pub(crate) fn log(client: &Client, reason: Reason, context: Context, object: Bytes, user: Bytes) {
    let info = client_line(&client.info.borrow(), crate::node::unix_ms());
    let max = client
        .node
        .config()
        .int_value("acllog-max-len")
        .unwrap_or(128)
        .max(0) as usize;
    registry().log(reason, context, object, user, info, max);
}

/// AUTH and HELLO AUTH: makes `client` run as `user` if `password` opens
/// it; otherwise Redis's WRONGPASS and an ACL LOG entry.
pub(crate) fn authenticate(
    client: &mut Client,
    user: &[u8],
    password: &[u8],
    command: &Bytes,
) -> Result<(), CmdError> {
    match registry().authenticate(user, password) {
        Some(u) => {
            client.info.borrow_mut().user = u.name.clone();
            *client.user.borrow_mut() = Some(u);
            client.user_generation.set(registry().generation());
            client.authenticated = true;
            Ok(())
        }
        None => {
            let context = if client.multi.is_some() {
                Context::Multi
            } else {
                Context::Toplevel
            };
            log(
                client,
                Reason::Auth,
                context,
                command.clone(),
                Bytes::copy_from_slice(user),
            );
            Err(CmdError::other(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ))
        }
    }
}

/// Makes `client` run as the default user again (RESET).
pub(crate) fn reset_user(client: &mut Client) {
    let users = registry();
    let default = users.default_user();
    client.info.borrow_mut().user = default.name.clone();
    *client.user.borrow_mut() = Some(default);
    client.user_generation.set(users.generation());
    client.authenticated = !users.default_needs_auth();
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

fn bulk(s: impl Into<Bytes>) -> Reply {
    Reply::Bulk(s.into())
}

fn text(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// ACL <subcommand> ...
pub(crate) async fn run(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    let users = registry();
    let aclfile = client.node.config().get("aclfile").unwrap_or_default();
    match sub.as_str() {
        "setuser" if n >= 3 => {
            let name = &args[2];
            if acl::rules::has_spaces(name) {
                return Err(CmdError::other(
                    "ERR Usernames can't contain spaces or null characters",
                ));
            }
            let allchannels = acl::pubsub_default_all(&client.node.config());
            let (old, new) = users
                .set_user(name, &args[3..], allchannels)
                .map_err(|e| CmdError::other(format!("ERR {e}")))?;
            // Subscribers of a user that lost channels are disconnected.
            if old.is_some_and(|old| !old.channels_kept_by(&new)) {
                let name = new.name.clone();
                kill_clients_where(client, move |c| c.user == name && c.flags.contains('P')).await;
            }
            Ok(Reply::Ok)
        }
        "deluser" if n >= 3 => {
            if args[2..].iter().any(|a| &a[..] == b"default") {
                return Err(CmdError::other("ERR The 'default' user cannot be removed"));
            }
            let gone = users.delete(&args[2..]);
            let count = gone.len();
            if count > 0 {
                kill_clients_where(client, move |c| gone.contains(&c.user)).await;
            }
            Ok(Reply::Int(count as i64))
        }
        "getuser" if n == 3 => Ok(users.get(&args[2]).map_or(Reply::Nil, |u| getuser(&u))),
        "list" | "users" if n == 2 => Ok(Reply::Array(
            users
                .users()
                .into_iter()
                .map(|(name, u)| {
                    if sub == "users" {
                        bulk(name)
                    } else {
                        text(&format!(
                            "user {} {}",
                            String::from_utf8_lossy(&name),
                            u.describe()
                        ))
                    }
                })
                .collect(),
        )),
        "whoami" if n == 2 => Ok(match current_user(client) {
            Some(u) => bulk(u.name.clone()),
            None => Reply::Nil,
        }),
        "load" | "save" if aclfile.is_empty() => Err(CmdError::other("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")),
        "load" if n == 2 => {
            let allchannels = acl::pubsub_default_all(&client.node.config());
            let loaded =
                acl::load_file(&aclfile, allchannels).map_err(|e| CmdError::other(format!("ERR {e}")))?;
            users.replace_all(loaded);
            // As Redis 7.0 does, the clients of every user but `default`
            // are disconnected: their users were replaced.
            kill_clients_where(client, |c| {
                &c.user[..] != b"default" && !c.flags.contains('S') && !c.flags.contains('M')
            })
            .await;
            Ok(Reply::Ok)
        }
        "save" if n == 2 => match acl::save_file(&aclfile) {
            Ok(()) => Ok(Reply::Ok),
            Err(e) => {
                tracing::warn!("Writing ACL file for ACL SAVE: {}", crate::config::strerror(&e));
                Err(CmdError::other("ERR There was an error trying to save the ACLs. Please check the server logs for more information"))
            }
        },
        "cat" if n == 2 => Ok(Reply::Array(CATEGORIES.iter().map(|c| text(c)).collect())),
        "cat" if n == 3 => {
            let bit = category_bit(&args[2]).ok_or_else(|| {
                CmdError::other(format!(
                    "ERR Unknown category '{}'",
                    String::from_utf8_lossy(&args[2][..args[2].len().min(128)])
                ))
            })?;
            let cat = catalog();
            Ok(Reply::Array(
                cat.walk()
                    .filter(|&id| cat.categories[id] & bit != 0)
                    .map(|id| text(&cat.names[id]))
                    .collect(),
            ))
        }
        "genpass" if n == 2 || n == 3 => {
            let bits = if n == 3 {
                super::args::parse_i64_strict(&args[2]).ok_or(CmdError::NotInteger)?
            } else {
                256
            };
            if bits <= 0 || bits > 4096 {
                return Err(CmdError::other("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
            }
            Ok(bulk(crate::node::random_hex((bits as usize).div_ceil(4))))
        }
        "log" if n == 2 || n == 3 => {
            let mut count = 10i64;
            if n == 3 {
                if args[2].eq_ignore_ascii_case(b"reset") {
                    users.reset_log();
                    return Ok(Reply::Ok);
                }
                count = super::args::parse_i64_strict(&args[2])
                    .ok_or(CmdError::NotInteger)?
                    .max(0);
            }
            let now = crate::node::unix_ms();
            Ok(Reply::Array(
                users
                    .log_entries(count as usize)
                    .into_iter()
                    .map(|e| {
                        Reply::Map(vec![
                            (text("count"), Reply::Int(e.count as i64)),
                            (text("reason"), text(e.reason.name())),
                            (text("context"), text(e.context.name())),
                            (text("object"), bulk(e.object)),
                            (text("username"), bulk(e.username)),
                            (
                                text("age-seconds"),
                                Reply::Double(now.saturating_sub(e.updated_ms) as f64 / 1000.0),
                            ),
                            (text("client-info"), text(&e.client_info)),
                        ])
                    })
                    .collect(),
            ))
        }
        "dryrun" if n >= 4 => dryrun(args),
        "help" if n == 2 => super::server::help(HELP),
        "setuser" | "deluser" | "getuser" | "list" | "users" | "whoami" | "load" | "save"
        | "cat" | "genpass" | "log" | "dryrun" | "help" => Err(CmdError::other(format!(
            "ERR wrong number of arguments for 'acl|{sub}' command"
        ))),
        _ => Err(super::server::unknown_sub("acl", &args[1])),
    }
}

fn getuser(u: &User) -> Reply {
    let selector = |s: &acl::rules::Selector| {
        vec![
            (text("commands"), text(&s.describe_commands())),
            (text("keys"), text(&s.describe_keys())),
            (text("channels"), text(&s.describe_channels())),
        ]
    };
    let mut fields = vec![
        (
            text("flags"),
            Reply::Set(u.flags().into_iter().map(text).collect()),
        ),
        (
            text("passwords"),
            Reply::Array(u.passwords.iter().map(|p| text(p)).collect()),
        ),
    ];
    fields.extend(selector(&u.selectors[0]));
    fields.push((
        text("selectors"),
        Reply::Array(
            u.selectors[1..]
                .iter()
                .map(|s| Reply::Map(selector(s)))
                .collect(),
        ),
    ));
    Reply::Map(fields)
}

/// ACL DRYRUN user command [arg ...]: whether `user` could run it, as a
/// message rather than an error.
fn dryrun(args: &[Bytes]) -> CmdResult {
    let Some(user) = registry().get(&args[2]) else {
        return Err(CmdError::other(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&args[2])
        )));
    };
    let call_args = &args[3..];
    let not_found = || {
        CmdError::other(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&args[3])
        ))
    };
    let spec = super::table::table()
        .lookup(&call_args[0])
        .ok_or_else(not_found)?;
    match spec.check_shape(call_args) {
        Ok(()) => {}
        Err(super::table::BadShape::UnknownSubcommand) => return Err(not_found()),
        Err(super::table::BadShape::Arity) => {
            return Err(CmdError::other(format!(
                "ERR wrong number of arguments for '{}' command",
                spec.full_name(call_args)
            )))
        }
    }
    let call = call_of(spec, call_args);
    Ok(match user.check(&call) {
        Ok(()) => Reply::Ok,
        Err((Denied::Command, _)) => text(&format!(
            "This user has no permissions to run the '{}' command",
            catalog().names[call.id]
        )),
        Err((Denied::Key, at)) => text(&format!(
            "This user has no permissions to access the '{}' key",
            String::from_utf8_lossy(&call_args[at])
        )),
        Err((Denied::Channel, at)) => text(&format!(
            "This user has no permissions to access the '{}' channel",
            String::from_utf8_lossy(&call_args[at])
        )),
    })
}
