//! Connection commands: PING ECHO QUIT RESET AUTH HELLO SELECT CLIENT.
//! They read and change the calling client's state; CLIENT LIST and KILL
//! reach the clients of every shard through their registries.

use super::args::{int_arg, is};
use super::error::{CmdError, CmdResult};
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run};
use super::{db_index, Client, ReplyMode};
use crate::node::unix_ms;
use crate::resp::{Protocol, Reply};
use crate::shard::{self, ClientInfo};
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// The Redis version we answer to clients and tools with.
pub const REDIS_VERSION: &str = "7.0.15";

pub fn commands() -> Vec<CommandSpec> {
    use Group::Connection as C;
    let none = (0, 0, 0);
    let c = |cmd| Run::Client(cmd);
    vec![
        spec(
            "ping",
            -1,
            FAST,
            none,
            C,
            "1.0.0",
            "Ping the server",
            c(ClientCmd::Ping),
        ),
        spec(
            "echo",
            2,
            FAST | LOADING | STALE,
            none,
            C,
            "1.0.0",
            "Echo the given string",
            c(ClientCmd::Echo),
        ),
        spec(
            "quit",
            -1,
            ALLOW_BUSY | NO_AUTH | NOSCRIPT | STALE | LOADING | FAST,
            none,
            C,
            "1.0.0",
            "Close the connection",
            c(ClientCmd::Quit),
        ),
        spec(
            "reset",
            1,
            NOSCRIPT | LOADING | STALE | NO_AUTH | FAST | ALLOW_BUSY,
            none,
            C,
            "6.2.0",
            "Reset the connection",
            c(ClientCmd::Reset),
        ),
        spec(
            "auth",
            -2,
            NOSCRIPT | LOADING | STALE | SKIP_MONITOR | SKIP_SLOWLOG | FAST | NO_AUTH | ALLOW_BUSY,
            none,
            C,
            "1.0.0",
            "Authenticate to the server",
            c(ClientCmd::Auth),
        ),
        spec(
            "hello",
            -1,
            NOSCRIPT | LOADING | STALE | SKIP_MONITOR | SKIP_SLOWLOG | FAST | NO_AUTH | ALLOW_BUSY,
            none,
            C,
            "6.0.0",
            "Handshake with Redis",
            c(ClientCmd::Hello),
        ),
        spec(
            "select",
            2,
            LOADING | STALE | FAST,
            none,
            C,
            "1.0.0",
            "Change the selected database for the current connection",
            c(ClientCmd::Select),
        ),
        spec(
            "client",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            none,
            C,
            "2.4.0",
            "A container for client connection commands",
            c(ClientCmd::Client),
        ),
    ]
}

pub async fn run(client: &mut Client, cmd: ClientCmd, args: &[Bytes]) -> CmdResult {
    match cmd {
        ClientCmd::Ping if client.proto == Protocol::Resp2 && super::pubsub::subscribed(client) => {
            // Subscribed mode answers in the shape of a push.
            match args.len() {
                1 | 2 => Ok(Reply::Array(vec![
                    Reply::Bulk(Bytes::from_static(b"pong")),
                    Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
                ])),
                _ => Ok(super::wrong_arity("ping")),
            }
        }
        ClientCmd::Ping => match args.len() {
            1 => Ok(Reply::Simple(Bytes::from_static(b"PONG"))),
            2 => Ok(Reply::Bulk(args[1].clone())),
            _ => Ok(super::wrong_arity("ping")),
        },
        ClientCmd::Echo => Ok(Reply::Bulk(args[1].clone())),
        ClientCmd::Quit => {
            client.close_after_reply = true;
            Ok(Reply::Ok)
        }
        ClientCmd::Reset => {
            super::tx::on_close(client).await;
            super::pubsub::on_close(client);
            super::tracking::disable(client);
            if client.monitor.take().is_some() {
                client.node.remove_monitor(client.id);
            }
            client.db = 0;
            client.proto = Protocol::Resp2;
            client.reply_mode = ReplyMode::On;
            super::acl::reset_user(client);
            {
                let mut info = client.info.borrow_mut();
                info.name = Bytes::new();
                info.db = 0;
                info.resp = 2;
                info.no_evict = false;
                info.flags = "N".into();
            }
            Ok(Reply::Simple(Bytes::from_static(b"RESET")))
        }
        ClientCmd::Auth => auth(client, args),
        ClientCmd::Hello => hello(client, args),
        ClientCmd::Select => {
            client.db = db_index(client, &args[1])?;
            client.info.borrow_mut().db = client.db;
            Ok(Reply::Ok)
        }
        ClientCmd::Client => client_cmd(client, args).await,
        _ => Err(CmdError::Syntax),
    }
}

fn auth(client: &mut Client, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if args.len() == 2 && crate::acl::registry().default_is_nopass() {
        return Err(CmdError::other("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 3 {
        (&args[1], &args[2])
    } else {
        (b"default", &args[1])
    };
    super::acl::authenticate(client, user, pass, &args[0])?;
    Ok(Reply::Ok)
}

fn hello(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let mut proto = client.proto;
    let mut i = 1;
    if args.len() > 1 {
        let v = super::args::parse_i64_strict(&args[1]).ok_or_else(|| {
            CmdError::other("ERR Protocol version is not an integer or out of range")
        })?;
        proto = match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::other("NOPROTO unsupported protocol version")),
        };
        i = 2;
    }
    let mut name = None;
    let mut auth = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            auth = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            validate_name(&args[i + 1])?;
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(CmdError::other(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, pass)) = auth {
        super::acl::authenticate(client, &user, &pass, &args[0])?;
    }
    if !client.authenticated && crate::acl::registry().default_needs_auth() {
        return Err(CmdError::other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    client.proto = proto;
    super::pubsub::protocol_changed(client);
    {
        let mut info = client.info.borrow_mut();
        info.resp = if proto == Protocol::Resp3 { 3 } else { 2 };
        if let Some(n) = name {
            info.name = n;
        }
    }
    let s = |t: &'static str| Reply::Bulk(Bytes::from_static(t.as_bytes()));
    Ok(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (
            s("proto"),
            Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (s("id"), Reply::Int(client.id as i64)),
        (s("mode"), s("standalone")),
        (
            s("role"),
            s(
                if client
                    .node
                    .repl
                    .is_replica
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    "replica"
                } else {
                    "master"
                },
            ),
        ),
        (s("modules"), Reply::Array(vec![])),
    ]))
}

fn validate_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::other(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// One CLIENT LIST line, in Redis 7.0's field order.
pub fn client_line(c: &ClientInfo, now_ms: u64) -> String {
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name),
        now_ms.saturating_sub(c.created_ms) / 1000,
        now_ms.saturating_sub(c.last_interaction_ms) / 1000,
        c.flags,
        c.db,
        c.sub,
        c.psub,
        c.ssub,
        c.multi,
        c.query_buf,
        c.output_buf,
        c.query_buf + c.output_buf,
        c.last_cmd,
        String::from_utf8_lossy(&c.user),
        c.redir,
        c.resp,
        String::from_utf8_lossy(&c.lib_name),
        String::from_utf8_lossy(&c.lib_ver),
    )
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

/// Which clients CLIENT LIST / CLIENT KILL select.
#[derive(Clone, Default)]
struct Filter {
    ids: Option<Vec<u64>>,
    addr: Option<String>,
    laddr: Option<String>,
    kind: Option<String>,
    user: Option<String>,
}

impl Filter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
            && self.addr.as_ref().is_none_or(|a| *a == c.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr)
            && self
                .user
                .as_ref()
                .is_none_or(|u| u.as_bytes() == &c.user[..])
            && self.kind.as_ref().is_none_or(|k| match k.as_str() {
                "normal" => {
                    !c.flags.contains('S') && !c.flags.contains('M') && !c.flags.contains('P')
                }
                "replica" | "slave" => c.flags.contains('S'),
                "master" => c.flags.contains('M'),
                "pubsub" => c.flags.contains('P'),
                _ => false,
            })
    }
}

fn client_type(arg: &[u8]) -> Result<String, CmdError> {
    let t = String::from_utf8_lossy(arg).to_lowercase();
    match t.as_str() {
        "normal" | "master" | "replica" | "slave" | "pubsub" => Ok(t),
        _ => Err(CmdError::other(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(arg)
        ))),
    }
}

fn sub_arity(sub: &str) -> CmdError {
    CmdError::other(format!(
        "ERR wrong number of arguments for 'client|{sub}' command"
    ))
}

async fn client_cmd(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "help" if n == 2 => Ok(Reply::Array(
            CLIENT_HELP
                .iter()
                .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
                .collect(),
        )),
        "id" if n == 2 => Ok(Reply::Int(client.id as i64)),
        "tracking" if n >= 3 => super::tracking::tracking_cmd(client, args).await,
        "caching" if n >= 3 => super::tracking::caching(client, args),
        "getredir" if n == 2 => Ok(super::tracking::getredir(client)),
        "trackinginfo" if n == 2 => Ok(super::tracking::trackinginfo(client)),
        "getname" if n == 2 => {
            let name = client.info.borrow().name.clone();
            Ok(if name.is_empty() {
                Reply::Nil
            } else {
                Reply::Bulk(name)
            })
        }
        "setname" if n == 3 => {
            validate_name(&args[2])?;
            client.info.borrow_mut().name = args[2].clone();
            Ok(Reply::Ok)
        }
        "setinfo" if n == 4 => {
            validate_name(&args[3])?;
            let mut info = client.info.borrow_mut();
            if is(&args[2], "lib-name") {
                info.lib_name = args[3].clone();
            } else if is(&args[2], "lib-ver") {
                info.lib_ver = args[3].clone();
            } else {
                return Err(CmdError::other(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                )));
            }
            Ok(Reply::Ok)
        }
        "info" if n == 2 => {
            let line = client_line(&client.info.borrow(), unix_ms());
            Ok(Reply::Verbatim(Bytes::from(line + "\n")))
        }
        "list" => {
            let mut filter = Filter::default();
            let mut i = 2;
            while i < n {
                if is(&args[i], "type") && i + 1 < n {
                    filter.kind = Some(client_type(&args[i + 1])?);
                    i += 2;
                } else if is(&args[i], "id") && i + 1 < n {
                    let mut ids = Vec::new();
                    for a in &args[i + 1..] {
                        let id = int_arg(a)
                            .ok()
                            .filter(|&v| v > 0)
                            .ok_or_else(|| CmdError::other("ERR Invalid client ID"))?;
                        ids.push(id as u64);
                    }
                    filter.ids = Some(ids);
                    i = n;
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let lines = shard::gather(move |core| {
                let now = unix_ms();
                let mut clients: Vec<_> =
                    core.clients.values().map(|c| c.borrow().clone()).collect();
                clients.sort_by_key(|c| c.id);
                clients
                    .iter()
                    .filter(|c| filter.matches(c))
                    .map(|c| (c.id, client_line(c, now)))
                    .collect::<Vec<_>>()
            })
            .await;
            let mut all: Vec<(u64, String)> = lines.into_iter().flatten().collect();
            all.sort_by_key(|(id, _)| *id);
            let mut text = String::new();
            for (_, l) in all {
                text.push_str(&l);
                text.push('\n');
            }
            Ok(Reply::Verbatim(Bytes::from(text)))
        }
        "kill" if n >= 3 => client_kill(client, args).await,
        "unblock" if n == 3 || n == 4 => client_unblock(args).await,
        "pause" if n == 3 || n == 4 => {
            let ms = int_arg(&args[2])
                .map_err(|_| CmdError::other("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::other("ERR timeout is negative"));
            }
            let writes_only = if n == 4 {
                if is(&args[3], "write") {
                    true
                } else if is(&args[3], "all") {
                    false
                } else {
                    return Err(CmdError::other(
                        "ERR CLIENT PAUSE mode must be WRITE or ALL",
                    ));
                }
            } else {
                false
            };
            let now = unix_ms();
            let until = now.saturating_add(ms as u64);
            let node = &client.node;
            // As in Redis, a running ALL pause is not weakened by a WRITE
            // one, and the later end time wins.
            let all_running = node.pause_until_ms.load(Ordering::Relaxed) > now
                && !node.pause_writes_only.load(Ordering::Relaxed);
            node.pause_writes_only
                .store(writes_only && !all_running, Ordering::Relaxed);
            node.pause_until_ms.fetch_max(until, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        "unpause" if n == 2 => {
            client.node.pause_until_ms.store(0, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        "no-evict" if n == 3 => {
            let on = if is(&args[2], "on") {
                true
            } else if is(&args[2], "off") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
            client.info.borrow_mut().no_evict = on;
            Ok(Reply::Ok)
        }
        "reply" if n == 3 => {
            if is(&args[2], "on") {
                client.reply_mode = ReplyMode::On;
                Ok(Reply::Ok)
            } else if is(&args[2], "off") {
                client.reply_mode = ReplyMode::Off;
                Ok(Reply::Ok)
            } else if is(&args[2], "skip") {
                client.reply_mode = ReplyMode::SkipNext;
                Ok(Reply::Ok)
            } else {
                Err(CmdError::Syntax)
            }
        }
        "help" | "id" | "getname" | "setname" | "setinfo" | "info" | "kill" | "pause"
        | "unpause" | "no-evict" | "reply" | "unblock" | "tracking" | "caching" | "getredir"
        | "trackinginfo" => Err(sub_arity(&sub)),
        _ => Err(CmdError::other(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: 1 if the client was blocked.
async fn client_unblock(args: &[Bytes]) -> CmdResult {
    let id = int_arg(&args[2])?;
    let error = match args.get(3) {
        None => false,
        Some(a) if is(a, "timeout") => false,
        Some(a) if is(a, "error") => true,
        Some(_) => {
            return Err(CmdError::other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let found = shard::gather(move |core| {
        let c = core.clients.values().find(|c| c.borrow().id as i64 == id)?;
        let w = c.borrow().blocked.clone()?;
        Some(w)
    })
    .await;
    let unblocked = found
        .into_iter()
        .flatten()
        .any(|w| super::blocking::unblock(&w, error));
    Ok(Reply::Int(unblocked as i64))
}

async fn client_kill(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let old_form = args.len() == 3;
    let mut filter = Filter::default();
    let mut skipme = true;
    if old_form {
        filter.addr = Some(String::from_utf8_lossy(&args[2]).into_owned());
        skipme = false;
    } else {
        if !args.len().is_multiple_of(2) {
            return Err(CmdError::Syntax);
        }
        for pair in args[2..].chunks_exact(2) {
            let (k, v) = (&pair[0], &pair[1]);
            if is(k, "id") {
                let id = int_arg(v)
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| CmdError::other("ERR client-id should be greater than 0"))?;
                filter.ids = Some(vec![id as u64]);
            } else if is(k, "addr") {
                filter.addr = Some(String::from_utf8_lossy(v).into_owned());
            } else if is(k, "laddr") {
                filter.laddr = Some(String::from_utf8_lossy(v).into_owned());
            } else if is(k, "type") {
                filter.kind = Some(client_type(v)?);
            } else if is(k, "user") {
                if crate::acl::registry().get(v).is_none() {
                    return Err(CmdError::other(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(v)
                    )));
                }
                filter.user = Some(String::from_utf8_lossy(v).into_owned());
            } else if is(k, "skipme") {
                skipme = if is(v, "yes") {
                    true
                } else if is(v, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else {
                return Err(CmdError::Syntax);
            }
        }
    }
    let me = client.id;
    let killed = kill_clients_where(client, move |c| {
        filter.matches(c) && !(skipme && c.id == me)
    })
    .await;
    if old_form {
        if killed.is_empty() {
            return Err(CmdError::other("ERR No such client"));
        }
        return Ok(Reply::Ok);
    }
    Ok(Reply::Int(killed.len() as i64))
}

/// Closes every connection `doomed` selects, on every shard; the calling
/// one after its reply. Returns their ids.
pub(crate) async fn kill_clients_where<F>(client: &mut Client, doomed: F) -> Vec<u64>
where
    F: Fn(&ClientInfo) -> bool + Send + Clone + 'static,
{
    let me = client.id;
    let killed = shard::gather(move |core| {
        let mut killed = Vec::new();
        for c in core.clients.values() {
            let mut c = c.borrow_mut();
            if doomed(&c) {
                killed.push(c.id);
                if c.id != me {
                    c.kill();
                }
            }
        }
        killed
    })
    .await;
    let killed: Vec<u64> = killed.into_iter().flatten().collect();
    if killed.contains(&me) {
        client.close_after_reply = true;
    }
    killed
}
