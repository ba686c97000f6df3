//! LATENCY: the latency monitor's events and the per-command histograms,
//! against redis-server where the replies do not depend on timing.

mod common;

use common::{assert_same_replies, Conn, Server, Value};

const BASE: &[&str] = &["--enable-debug-command", "yes"];

fn field<'a>(map: &'a Value, name: &str) -> &'a Value {
    let items = map.array();
    let at = items
        .iter()
        .step_by(2)
        .position(|k| k.text() == name)
        .unwrap_or_else(|| panic!("no {name} in {map:?}"));
    &items[at * 2 + 1]
}

#[test]
fn latency_answers_like_redis_when_nothing_was_sampled() {
    let ours = Server::start(BASE);
    let redis = Server::start_redis(BASE);
    let (mut c, mut r) = (ours.conn(), redis.conn());
    assert_same_replies(
        &mut c,
        &mut r,
        &[
            "LATENCY HELP",
            "LATENCY LATEST",
            "LATENCY HISTORY command",
            "LATENCY GRAPH command",
            "LATENCY DOCTOR",
            "LATENCY RESET",
            "LATENCY RESET command other",
            "LATENCY NOSUCH",
            "LATENCY LATEST extra",
            "LATENCY HISTOGRAM nosuch",
            "LATENCY",
        ],
    );
}

/// Two slow commands a second apart, as the monitor samples them.
fn two_spikes(c: &mut Conn) {
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "10"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.05"]), Value::ok());
    // Samples are per second: wait for the next one.
    let first = c.cmd(&["TIME"]).array()[0].text();
    common::wait_until(std::time::Duration::from_secs(5), "next second", || {
        c.cmd(&["TIME"]).array()[0].text() != first
    });
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.02"]), Value::ok());
    // Fast commands stay under the threshold.
    assert_eq!(c.cmd(&["SET", "k", "v"]), Value::ok());
}

#[test]
fn slow_commands_are_sampled_like_redis() {
    let ours = Server::start(BASE);
    let redis = Server::start_redis(BASE);
    for s in [&ours, &redis] {
        let mut c = s.conn();
        two_spikes(&mut c);
        let latest = c.cmd(&["LATENCY", "LATEST"]);
        assert_eq!(latest.array().len(), 1, "{latest:?}");
        let entry = latest.array()[0].array();
        assert_eq!(entry[0], Value::bulk("command"));
        let (last, max) = (entry[2].int(), entry[3].int());
        assert!((20..40).contains(&last), "{latest:?}");
        assert!((50..80).contains(&max), "{latest:?}");
        let history = c.cmd(&["LATENCY", "HISTORY", "command"]);
        let samples: Vec<i64> = history.array().iter().map(|s| s.array()[1].int()).collect();
        assert_eq!(samples.len(), 2, "{history:?}");
        assert_eq!((samples[0], samples[1]), (max, last));
        let graph = c.cmd(&["LATENCY", "GRAPH", "command"]).text();
        let lines: Vec<&str> = graph.lines().collect();
        assert_eq!(
            lines[0],
            format!("command - high {max} ms, low {last} ms (all time high {max} ms)")
        );
        assert_eq!(lines[1], "-".repeat(80));
        assert_eq!(&lines[2..6], &["# ", "| ", "| ", "|_"], "{graph}");
        let doctor = c.cmd(&["LATENCY", "DOCTOR"]).text();
        assert!(doctor.starts_with("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n1. command: 2 latency spikes (average "), "{doctor}");
        assert!(doctor.contains(&format!("Worst all time event {max}ms.\n\nI have a few advices for you:\n\n- Check your Slow Log to understand what are the commands you are running which are too slow to execute.")), "{doctor}");
        assert!(doctor.contains("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation."), "{doctor}");
        // RESET is case-insensitive and counts what it dropped.
        assert_eq!(
            c.cmd(&["LATENCY", "RESET", "COMMAND", "nosuch"]),
            Value::Int(1)
        );
        assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Value::Array(vec![]));
    }
}

#[test]
fn histograms_count_calls_in_power_of_two_buckets() {
    let ours = Server::start(BASE);
    let redis = Server::start_redis(BASE);
    for s in [&ours, &redis] {
        let mut c = s.conn();
        for i in 0..20 {
            c.cmd(&["SET", &format!("k{i}"), "v"]);
        }
        c.cmd(&["CONFIG", "GET", "maxmemory"]);
        let all = c.cmd(&["LATENCY", "HISTOGRAM"]);
        let set = field(&all, "set");
        assert_eq!(field(set, "calls"), &Value::Int(20));
        let buckets: Vec<i64> = field(set, "histogram_usec")
            .array()
            .iter()
            .map(Value::int)
            .collect();
        // (bucket in µs, calls up to it) pairs: buckets grow, counts grow
        // to all the calls.
        let pairs: Vec<(i64, i64)> = buckets.chunks(2).map(|p| (p[0], p[1])).collect();
        assert!(
            pairs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "{pairs:?}"
        );
        assert_eq!(pairs.last().map(|p| p.1), Some(20));
        // Named commands: only those, a container by its subcommands.
        let named = c.cmd(&["LATENCY", "HISTOGRAM", "config", "get", "nosuch"]);
        let names: Vec<String> = named.array().iter().step_by(2).map(Value::text).collect();
        assert_eq!(names, ["config|get"], "{named:?}");
    }
}
