//! LATENCY: the latency monitor's events ([`crate::latency`]) and the
//! per-command latency histograms (`INFO latencystats`' data).
//!
//! ```text
//! LATENCY LATEST | HISTORY <event> | GRAPH <event> | DOCTOR
//! LATENCY RESET [event ...] | HISTOGRAM [command ...] | HELP
//! ```

use bytes::Bytes;

use super::error::{CmdError, CmdResult};
use super::table::flag::*;
use super::table::{spec, table, ClientCmd, CommandSpec, Group, Run};
use super::Client;
use crate::latency;
use crate::resp::Reply;

pub fn commands() -> Vec<CommandSpec> {
    vec![spec(
        "latency",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        Group::Server,
        "2.8.13",
        "A container for latency diagnostics commands",
        Run::Client(ClientCmd::Latency),
    )]
}

const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub(crate) async fn run(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let n = args.len();
    match sub.as_str() {
        "latest" if n == 2 => Ok(Reply::Array(
            latency::events()
                .into_iter()
                .map(|(event, s)| {
                    let last = s.latest();
                    Reply::Array(vec![
                        bulk(&event),
                        Reply::Int(last.time as i64),
                        Reply::Int(last.latency as i64),
                        Reply::Int(s.max as i64),
                    ])
                })
                .collect(),
        )),
        "history" if n == 3 => Ok(Reply::Array(latency::event(&args[2]).map_or_else(
            Vec::new,
            |(_, s)| {
                s.samples()
                    .into_iter()
                    .map(|x| {
                        Reply::Array(vec![
                            Reply::Int(x.time as i64),
                            Reply::Int(x.latency as i64),
                        ])
                    })
                    .collect()
            },
        ))),
        "graph" if n == 3 => match latency::event(&args[2]) {
            Some((event, s)) => Ok(Reply::Verbatim(Bytes::from(latency::graph(&event, &s)))),
            None => Err(CmdError::other(format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(&args[2])
            ))),
        },
        "doctor" if n == 2 => {
            let setup = {
                let cfg = client.node.config();
                latency::Setup {
                    slowlog_slower_than_us: cfg
                        .int_value("slowlog-log-slower-than")
                        .unwrap_or(10_000),
                    appendfsync_always: cfg.appendfsync() == "always",
                    hz: i64::from(cfg.hz()),
                }
            };
            Ok(Reply::Verbatim(Bytes::from(latency::report(&setup))))
        }
        "reset" => {
            let dropped = if n == 2 {
                latency::reset(None)
            } else {
                args[2..].iter().map(|e| latency::reset(Some(e))).sum()
            };
            Ok(Reply::Int(dropped as i64))
        }
        "histogram" => histogram(&args[2..]).await,
        "help" if n == 2 => super::server::help(HELP),
        "latest" | "history" | "graph" | "doctor" | "help" => Err(CmdError::other(format!(
            "ERR wrong number of arguments for 'latency|{sub}' command"
        ))),
        _ => Err(super::server::unknown_sub("latency", &args[1])),
    }
}

/// LATENCY HISTOGRAM [command ...]: per command (every one with data, or
/// those named, a container standing for its subcommands), its calls and
/// the cumulative count of calls up to each power-of-two bucket of
/// microseconds (from 1 µs to about 1 s).
async fn histogram(names: &[Bytes]) -> CmdResult {
    let merged = super::info::merged_latency().await;
    let t = table();
    let ids: Vec<usize> = if names.is_empty() {
        (0..crate::acl::catalog::catalog().len()).collect()
    } else {
        let mut ids = Vec::new();
        for name in names {
            let Some(c) = t.lookup(name) else { continue };
            ids.push(c.id);
            ids.extend(c.first_sub_id..c.first_sub_id + c.subcommands.len());
        }
        ids
    };
    let entries = ids
        .into_iter()
        .filter_map(|id| {
            let (calls, buckets) = merged.cumulative(id)?;
            let histogram = Reply::Map(
                buckets
                    .into_iter()
                    .map(|(us, count)| (Reply::Int(us as i64), Reply::Int(count as i64)))
                    .collect(),
            );
            Some((
                bulk(t.stat_name(id)),
                Reply::Map(vec![
                    (bulk("calls"), Reply::Int(calls as i64)),
                    (bulk("histogram_usec"), histogram),
                ]),
            ))
        })
        .collect();
    Ok(Reply::Map(entries))
}
