//! Stream consumer groups (XGROUP XREADGROUP XACK XPENDING XCLAIM
//! XAUTOCLAIM XINFO) checked against Debian's redis-server: the same
//! replies for fixed cases and a seeded walk (times and idle counters
//! blanked, since the two servers run each command at another
//! millisecond), groups in RDB files, DUMP payloads and AOF rewrites both
//! ways, replication both ways with a real Redis, and XREADGROUP BLOCK.

mod common;
use common::family::{assert_rdb_ok, cascade, digest, keys_on, redis, send_blocking, wait_blocked};
use common::repl::{start, start_redis, wait_in_sync, wait_in_sync_applying_all};
use common::{assert_same_replies, Conn, Rng, Value};

const SMALL_NODES: &[&str] = &["--stream-node-max-entries", "5"];

/// Blanks what depends on when a command ran: absolute times (seen-time,
/// delivery times) and the idle counters of XPENDING and XINFO CONSUMERS.
fn blank_times(v: Value) -> Value {
    match v {
        Value::Int(n) if n > 1_000_000_000_000 => Value::Int(0),
        Value::Array(items) => {
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            let mut blank_next = false;
            for item in items {
                if blank_next {
                    out.push(Value::Int(0));
                    blank_next = false;
                    continue;
                }
                blank_next = item == Value::bulk("idle");
                out.push(blank_times(item));
            }
            Value::Array(out)
        }
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == Value::bulk("idle") {
                        Value::Int(0)
                    } else {
                        blank_times(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// XPENDING's extended form with the idle column blanked.
fn blank_idle_column(v: Value) -> Value {
    match v {
        Value::Array(rows) => Value::Array(
            rows.into_iter()
                .map(|row| match row {
                    Value::Array(mut cols) if cols.len() == 4 => {
                        cols[2] = Value::Int(0);
                        Value::Array(cols)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn same(o: &mut Conn, r: &mut Conn, args: &[&str]) -> Value {
    let (ours, theirs) = (blank_times(o.cmd(args)), blank_times(r.cmd(args)));
    assert_eq!(
        ours, theirs,
        "reply to {args:?} (Cascade left, Redis right)"
    );
    ours
}

fn same_pending(o: &mut Conn, r: &mut Conn, args: &[&str]) {
    let ours = blank_idle_column(o.cmd(args));
    let theirs = blank_idle_column(r.cmd(args));
    assert_eq!(
        ours, theirs,
        "reply to {args:?} (Cascade left, Redis right)"
    );
}

/// Everything XINFO knows of `key`, seen times blanked when `blank`.
fn full_info(c: &mut Conn, key: &str, blank: bool) -> Value {
    let v = c.cmd(&["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
    assert!(!v.is_error(), "{v:?}");
    if blank {
        blank_times(v)
    } else {
        v
    }
}

/// `info` (from [`replicated_info`]) without the groups' read counters
/// and lags.
fn without_read_counts(info: &str) -> String {
    let mut out = Vec::new();
    let mut words = info.split(' ');
    while let Some(w) = words.next() {
        out.push(w);
        if w == "entries-read" || w == "lag" {
            words.next();
        }
    }
    out.join(" ")
}

/// `v` as short text, for readable assertion messages.
fn show(v: &Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::Nil => "nil".into(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", inner.join(" "))
        }
        other => format!("{other:?}"),
    }
}

/// Only the seen times and the node counts blanked: what a replica, or a
/// server that loaded an AOF, must hold exactly (its consumers were seen
/// when it applied the commands, and its nodes follow its own limits).
fn replicated_info(c: &mut Conn, key: &str) -> String {
    show(&replicated_value(c, key))
}

fn replicated_value(c: &mut Conn, key: &str) -> Value {
    fn blank_seen(v: Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut blank_next = false;
                for item in items {
                    if blank_next {
                        out.push(Value::Int(0));
                        blank_next = false;
                        continue;
                    }
                    blank_next = ["seen-time", "radix-tree-keys", "radix-tree-nodes"]
                        .iter()
                        .any(|f| item == Value::bulk(f));
                    out.push(blank_seen(item));
                }
                Value::Array(out)
            }
            other => other,
        }
    }
    blank_seen(full_info(c, key, false))
}

#[test]
fn group_commands_answer_like_redis() {
    let (ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "XGROUP",
            "XGROUP HELP",
            "XGROUP HELP x",
            "XGROUP BOGUS s g",
            "XGROUP CREATE s",
            "XGROUP CREATE s g 0",
            "XGROUP SETID s g 0",
            "XGROUP DESTROY s g",
            "XGROUP CREATECONSUMER s g c",
            "XGROUP CREATE s g bad MKSTREAM",
            "EXISTS s",
            "XGROUP CREATE s g 0 MKSTREAM",
            "XGROUP CREATE s g 0 MKSTREAM",
            "XGROUP CREATE s g2 $ ENTRIESREAD 3",
            "XGROUP CREATE s g3 0 ENTRIESREAD -2",
            "XGROUP CREATE s g3 0 ENTRIESREAD x",
            "XGROUP CREATE s g3 0 BOGUS",
            "XGROUP CREATE s g3 0 MKSTREAM MKSTREAM MKSTREAM MKSTREAM",
            "XGROUP CREATE s g3 0 ENTRIESREAD",
            "XGROUP SETID s nog 0",
            "XGROUP SETID s g 0 ENTRIESREAD x",
            "XGROUP SETID s g 0 BOGUS 1",
            "XGROUP SETID s g 0 ENTRIESREAD",
            "XGROUP SETID s g 0 ENTRIESREAD 1 x",
            "XGROUP SETID s g x",
            "XGROUP CREATECONSUMER s g c1",
            "XGROUP CREATECONSUMER s g c1",
            "XGROUP CREATECONSUMER s nog c1",
            "XGROUP DELCONSUMER s g c9",
            "SET str x",
            "XGROUP CREATE str g 0",
            "XGROUP CREATE str g 0 MKSTREAM",
            "XADD s 1-1 f v1",
            "XADD s 2-1 f v2",
            "XADD s 3-1 f v3 g w",
            "XADD s 4-1 f v4",
            "XADD s 5-1 f v5",
            "XADD s 6-1 f v6",
            "XINFO GROUPS s",
            "XREADGROUP",
            "XREADGROUP GROUP g c1 STREAMS s",
            "XREADGROUP GROUP g c1 STREAMS s > x",
            "XREADGROUP STREAMS s >",
            "XREADGROUP GROUP g STREAMS s >",
            "XREADGROUP GROUP g c1 BOGUS STREAMS s >",
            "XREADGROUP GROUP g c1 COUNT x STREAMS s >",
            "XREADGROUP GROUP g c1 BLOCK -1 STREAMS s >",
            "XREADGROUP GROUP g c1 STREAMS s $",
            "XREADGROUP GROUP g c1 STREAMS s -",
            "XREADGROUP GROUP g c1 STREAMS s bad",
            "XREADGROUP GROUP nog c1 STREAMS s >",
            "XREADGROUP GROUP g c1 STREAMS s missing > >",
            "XREADGROUP GROUP g c1 STREAMS s missing bad >",
            "XREADGROUP GROUP g c1 STREAMS str >",
            "XREADGROUP GROUP g c1 COUNT 2 STREAMS s >",
            "XREADGROUP GROUP g c2 STREAMS s >",
            "XREADGROUP GROUP g c2 STREAMS s >",
            "XREADGROUP GROUP g c2 BLOCK 10 STREAMS s >",
            "XREADGROUP GROUP g c1 STREAMS s 0",
            "XREADGROUP GROUP g c1 COUNT 1 STREAMS s 1-1",
            "XREADGROUP GROUP g c9 STREAMS s 0",
            "XINFO GROUPS s",
            "XPENDING s g",
            "XPENDING s g - + 0",
            "XPENDING s g + - 10",
            "XPENDING s g - + 10 nobody",
            "XPENDING s g - +",
            "XPENDING s g - + x",
            "XPENDING s g IDLE x - + 10",
            "XPENDING s g IDLE 0 - +",
            "XPENDING s g IDLE 100000000 (5-1 + 10",
            "XPENDING s g - (0-0 10",
            "XPENDING missing g",
            "XPENDING s nog",
            "XPENDING str g",
            "XDEL s 2-1",
            "XREADGROUP GROUP g c1 STREAMS s 0",
            "XINFO GROUPS s",
            "XCLAIM s g c3 0 1-1 2-1 3-1 JUSTID",
            "XPENDING s g",
            "XINFO GROUPS s",
            "XCLAIM s g c3 x 1-1",
            "XCLAIM s g c3 0 1-1 BOGUS",
            "XCLAIM s g c3 0 1-1 IDLE x",
            "XCLAIM s g c3 0 1-1 TIME x",
            "XCLAIM s g c3 0 1-1 RETRYCOUNT x",
            "XCLAIM s g c3 0 1-1 LASTID x",
            "XCLAIM s g c3 0 1-1 IDLE",
            "XCLAIM s g c3 0 bad",
            "XCLAIM missing g c3 0 1-1",
            "XCLAIM s nog c3 0 1-1",
            "XCLAIM str g c3 0 1-1",
            "XCLAIM s g c3 100000000 1-1",
            "XCLAIM s g c4 0 1-1 RETRYCOUNT 7",
            "XCLAIM s g c4 0 6-1 FORCE",
            "XCLAIM s g c4 0 9-9 FORCE",
            "XAUTOCLAIM s g c4 0 0 COUNT 0",
            "XAUTOCLAIM s g c4 0 0 COUNT x",
            "XAUTOCLAIM s g c4 x 0",
            "XAUTOCLAIM s g c4 0 bad",
            "XAUTOCLAIM s g c4 0 0 BOGUS",
            "XAUTOCLAIM missing g c4 0 0",
            "XAUTOCLAIM str g c4 x 0",
            "XAUTOCLAIM s g c5 0 0 COUNT 2 JUSTID",
            "XAUTOCLAIM s g c5 100000000 0",
            "XAUTOCLAIM s g c5 0 (3-1",
            "XINFO GROUPS s",
            "XACK s g 3-1 4-1 9-9",
            "XACK s g 3-1 bad",
            "XACK missing g bad",
            "XACK s nog 1-1",
            "XACK str g 1-1",
            "XGROUP SETID s g 0",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g c6 NOACK COUNT 2 STREAMS s >",
            "XINFO GROUPS s",
            "XGROUP DELCONSUMER s g c4",
            "XPENDING s g",
            "XGROUP DESTROY s g2",
            "XGROUP DESTROY s g2",
            "XINFO GROUPS s",
            "XINFO",
            "XINFO HELP",
            "XINFO BOGUS s",
            "XINFO STREAM",
            "XINFO GROUPS",
            "XINFO CONSUMERS s",
            "XINFO CONSUMERS s nog",
            "XINFO STREAM missing",
            "XINFO GROUPS missing",
            "XINFO STREAM str",
            "XINFO STREAM s",
            "XINFO STREAM s BOGUS",
            "XINFO STREAM s FULL COUNT",
            "XINFO STREAM s FULL COUNT x",
            "XCLAIM s g c1 0 5-1 FORCE RETRYCOUNT 7 LASTID 9-0",
            "XINFO GROUPS s",
            "XTRIM s MAXLEN 0",
            "XINFO GROUPS s",
            "XINFO STREAM s",
            "XADD e 1-0 a b",
            "XGROUP CREATE e g 0 ENTRIESREAD 5",
            "XINFO GROUPS e",
            "XGROUP SETID e g 1-0 ENTRIESREAD 0",
            "XINFO GROUPS e",
        ],
    );
    for args in [
        &["XPENDING", "s", "g", "(3-1", "+", "10"][..],
        &["XPENDING", "s", "g", "IDLE", "-5", "-", "+", "2", "c1"],
    ] {
        same_pending(&mut o, &mut r, args);
    }
    for key in ["s", "e"] {
        assert_eq!(full_info(&mut o, key, true), full_info(&mut r, key, true));
        same(&mut o, &mut r, &["XINFO", "CONSUMERS", key, "g"]);
    }
    // RESP3 shapes: maps for XINFO and XREADGROUP, nulls.
    for c in [&mut o, &mut r] {
        c.cmd(&["HELLO", "3"]);
        c.cmd(&["XADD", "s", "10-0", "f", "v"]);
    }
    for line in [
        "XREADGROUP GROUP g c1 STREAMS s >",
        "XREADGROUP GROUP g c1 STREAMS s >",
        "XREADGROUP GROUP g c1 STREAMS s 0",
        "XINFO GROUPS s",
        "XINFO STREAM s",
        "XPENDING s g2",
        "XGROUP CREATE s g2 $",
        "XPENDING s g2",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        same(&mut o, &mut r, &args);
    }
    assert_eq!(full_info(&mut o, "s", true), full_info(&mut r, "s", true));
    assert_eq!(digest(&mut o), digest(&mut r));
}

/// A seeded walk over two streams with two groups and four consumers:
/// adds, deletes and trims, reads of new entries and of histories,
/// acknowledgements, claims, group moves. `history` off leaves out the
/// history reads, which Redis does not propagate.
fn random_group_work(o: &mut Conn, r: &mut Conn, steps: usize, seed: u64, history: bool) {
    let mut rng = Rng(seed);
    let keys = ["g0", "g1"];
    let groups = ["ga", "gb"];
    let mut next_ms = [1u64; 2];
    for k in keys {
        same(o, r, &["XGROUP", "CREATE", k, "ga", "0", "MKSTREAM"]);
        same(o, r, &["XGROUP", "CREATE", k, "gb", "$"]);
    }
    for _ in 0..steps {
        let k = rng.below(2) as usize;
        let key = keys[k];
        let group = groups[rng.below(2) as usize];
        let consumer = format!("c{}", rng.below(4));
        let some_id = |rng: &mut Rng, top: u64| format!("{}-{}", 1 + rng.below(top), rng.below(2));
        // Where reads and claims start: the beginning, or some ID.
        let zero_or_id = |rng: &mut Rng, top: u64| match rng.below(2) {
            0 => "0".to_string(),
            _ => some_id(rng, top),
        };
        match rng.below(16) {
            0..=3 => {
                next_ms[k] += 1 + rng.below(2);
                let id = format!("{}-{}", next_ms[k], rng.below(2));
                let mut cmd = vec!["XADD", key];
                let n = rng.below(40).to_string();
                if rng.below(6) == 0 {
                    cmd.extend(["MAXLEN", "~", &n]);
                }
                let v = rng.below(1000).to_string();
                cmd.extend([id.as_str(), "f", &v]);
                same(o, r, &cmd);
            }
            4 => {
                let (a, b) = (some_id(&mut rng, next_ms[k]), some_id(&mut rng, next_ms[k]));
                same(o, r, &["XDEL", key, &a, &b]);
            }
            5 => {
                let n = (rng.below(3) as usize).to_string();
                let mut cmd = vec!["XREADGROUP", "GROUP", group, &consumer, "COUNT", &n];
                if rng.below(4) == 0 {
                    cmd.push("NOACK");
                }
                cmd.extend(["STREAMS", key, ">"]);
                same(o, r, &cmd);
            }
            6 if history => {
                let from = zero_or_id(&mut rng, next_ms[k]);
                let n = rng.below(4).to_string();
                same(
                    o,
                    r,
                    &[
                        "XREADGROUP",
                        "GROUP",
                        group,
                        &consumer,
                        "COUNT",
                        &n,
                        "STREAMS",
                        key,
                        &from,
                    ],
                );
            }
            7 => {
                let (a, b) = (some_id(&mut rng, next_ms[k]), some_id(&mut rng, next_ms[k]));
                same(o, r, &["XACK", key, group, &a, &b]);
            }
            8 => {
                let (a, b) = (some_id(&mut rng, next_ms[k]), some_id(&mut rng, next_ms[k]));
                let idle = if rng.below(4) == 0 { "100000000" } else { "0" };
                let mut cmd = vec!["XCLAIM", key, group, &consumer, idle, &a, &b];
                let retry = rng.below(5).to_string();
                let last = some_id(&mut rng, next_ms[k] + 5);
                match rng.below(5) {
                    0 => cmd.push("JUSTID"),
                    1 => cmd.extend(["FORCE", "JUSTID"]),
                    2 => cmd.extend(["RETRYCOUNT", &retry]),
                    3 => cmd.extend(["LASTID", &last, "JUSTID"]),
                    _ => {}
                }
                same(o, r, &cmd);
            }
            9 => {
                let start = zero_or_id(&mut rng, next_ms[k]);
                let n = (1 + rng.below(3)).to_string();
                let idle = if rng.below(4) == 0 { "100000000" } else { "0" };
                let mut cmd = vec![
                    "XAUTOCLAIM",
                    key,
                    group,
                    &consumer,
                    idle,
                    &start,
                    "COUNT",
                    &n,
                ];
                if rng.below(2) == 0 {
                    cmd.push("JUSTID");
                }
                same(o, r, &cmd);
            }
            10 => {
                let id = if rng.below(3) == 0 {
                    "$".to_string()
                } else {
                    some_id(&mut rng, next_ms[k])
                };
                let read = rng.below(20).to_string();
                match rng.below(3) {
                    0 => same(o, r, &["XGROUP", "SETID", key, group, &id]),
                    1 => same(
                        o,
                        r,
                        &["XGROUP", "SETID", key, group, &id, "ENTRIESREAD", &read],
                    ),
                    _ => same(o, r, &["XGROUP", "CREATECONSUMER", key, group, &consumer]),
                };
            }
            11 => {
                if rng.below(4) == 0 {
                    same(o, r, &["XGROUP", "DESTROY", key, group]);
                    same(o, r, &["XGROUP", "CREATE", key, group, "0"]);
                } else {
                    same(o, r, &["XGROUP", "DELCONSUMER", key, group, &consumer]);
                }
            }
            12 => {
                let n = rng.below(30).to_string();
                match rng.below(3) {
                    0 => same(o, r, &["XTRIM", key, "MAXLEN", "~", &n]),
                    1 => same(o, r, &["XTRIM", key, "MAXLEN", &n]),
                    _ => same(
                        o,
                        r,
                        &["XTRIM", key, "MINID", &some_id(&mut rng, next_ms[k])],
                    ),
                };
            }
            13 => {
                same(o, r, &["XPENDING", key, group]);
                let n = rng.below(6).to_string();
                let a = some_id(&mut rng, next_ms[k]);
                same_pending(o, r, &["XPENDING", key, group, &a, "+", &n]);
                same_pending(o, r, &["XPENDING", key, group, "-", "+", "10", &consumer]);
            }
            14 => {
                same(o, r, &["XINFO", "GROUPS", key]);
                same(o, r, &["XINFO", "CONSUMERS", key, group]);
            }
            _ => {
                same(o, r, &["XINFO", "STREAM", key]);
            }
        }
    }
    for k in keys {
        assert_eq!(full_info(o, k, true), full_info(r, k, true), "{k}");
    }
}

#[test]
fn random_group_work_matches_redis() {
    let (ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    random_group_work(&mut o, &mut r, 3000, 0x9e0c_51d3, true);
    assert_eq!(digest(&mut o), digest(&mut r));
}

#[test]
fn groups_travel_in_rdb_files_dumps_and_aof_rewrites_both_ways() {
    let (mut ours, theirs) = (cascade(SMALL_NODES), redis(SMALL_NODES));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    random_group_work(&mut o, &mut r, 600, 7, true);
    // A group whose read count is unknown (-1 in the file).
    for c in [&mut o, &mut r] {
        c.cmd(&["XGROUP", "CREATE", "g0", "unknown", "0"]);
    }
    let want = [
        full_info(&mut o, "g0", false),
        full_info(&mut o, "g1", false),
    ];
    // Our dump: Redis's checker accepts it, and we load it back whole.
    assert_eq!(o.cmd(&["SAVE"]), Value::ok());
    assert_rdb_ok(&ours.dir.path().join("dump.rdb"));
    drop(o);
    ours.restart();
    let mut o = ours.conn();
    assert_eq!(
        [
            full_info(&mut o, "g0", false),
            full_info(&mut o, "g1", false)
        ],
        want
    );
    // DUMP payloads each way keep the groups exactly.
    for k in ["g0", "g1"] {
        let name = format!("copy:{k}");
        common::family::copy_by_dump(&mut r, &mut o, k, &name);
        common::family::copy_by_dump(&mut o, &mut r, k, &name);
        assert_eq!(
            full_info(&mut o, &name, false),
            full_info(&mut r, k, false),
            "Redis's {k} restored here"
        );
        assert_eq!(
            full_info(&mut r, &name, false),
            full_info(&mut o, k, false),
            "our {k} restored in Redis"
        );
    }
    // Redis's dump, loaded by us.
    assert_eq!(r.cmd(&["SAVE"]), Value::ok());
    let mut loaded = cascade(SMALL_NODES);
    std::fs::copy(
        theirs.dir.path().join("dump.rdb"),
        loaded.dir.path().join("dump.rdb"),
    )
    .unwrap();
    loaded.restart();
    let mut l = loaded.conn();
    for k in ["g0", "g1", "copy:g0"] {
        assert_eq!(full_info(&mut l, k, false), full_info(&mut r, k, false));
    }
    // An AOF rewrite (no RDB preamble) rebuilds the groups; consumers'
    // seen times are not kept by it, as in Redis.
    let mut aof = cascade(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--stream-node-max-entries",
        "5",
    ]);
    let mut a = aof.conn();
    let mut theirs_aof = redis(SMALL_NODES);
    let mut ra = theirs_aof.conn();
    random_group_work(&mut a, &mut ra, 400, 11, true);
    let before = [replicated_info(&mut a, "g0"), replicated_info(&mut a, "g1")];
    assert!(!a.cmd(&["BGREWRITEAOF"]).is_error());
    common::wait_until(std::time::Duration::from_secs(20), "rewrite done", || {
        common::info_field(&mut aof.conn(), "persistence", "aof_rewrite_in_progress") == "0"
            && common::info_field(&mut aof.conn(), "persistence", "aof_rewrite_scheduled") == "0"
    });
    drop(a);
    aof.restart();
    let mut a = aof.conn();
    assert_eq!(
        [replicated_info(&mut a, "g0"), replicated_info(&mut a, "g1")],
        before
    );
    drop(ra);
    theirs_aof.kill();
}

#[test]
fn groups_replicate_between_cascade_and_redis() {
    // A Cascade master with a Cascade and a Redis replica; the walk runs
    // on the master and on a separate Redis (for the replies).
    let master = start(&["--shards", "2", "--stream-node-max-entries", "5"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let twin = redis(SMALL_NODES);
    let (mut m, mut t) = (master.conn(), twin.conn());
    random_group_work(&mut m, &mut t, 1500, 3, false);
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    for k in ["g0", "g1"] {
        // Both replicas apply the same stream to the same state. A group's
        // read counter is not propagated by XREADGROUP in Redis 7.0 (only
        // its XCLAIMs are), so replicas may count otherwise than the master.
        let on_ours = replicated_info(&mut ours.conn(), k);
        assert_eq!(
            on_ours,
            replicated_info(&mut theirs.conn(), k),
            "{k} on both replicas"
        );
        assert_eq!(
            without_read_counts(&on_ours),
            without_read_counts(&replicated_info(&mut m, k)),
            "{k} on our replica and its master"
        );
    }
    // A Redis master with a Cascade replica (full sync with groups, then
    // the stream).
    let rmaster = start_redis(&["--stream-node-max-entries", "5"]);
    let rport = rmaster.port.to_string();
    let mut rc = rmaster.conn();
    let twin = cascade(SMALL_NODES);
    let mut tc = twin.conn();
    random_group_work(&mut rc, &mut tc, 300, 5, false);
    let replica = start(&["--replicaof", "127.0.0.1", &rport]);
    wait_in_sync(&rmaster, &replica, None);
    random_group_work(&mut rc, &mut tc, 1200, 6, false);
    wait_in_sync_applying_all(&rmaster, &replica);
    for k in ["g0", "g1"] {
        assert_eq!(
            without_read_counts(&replicated_info(&mut replica.conn(), k)),
            without_read_counts(&replicated_info(&mut rc, k)),
            "{k} on our replica of Redis"
        );
    }
}

#[test]
fn group_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "xreadgroup",
        "xack",
        "xpending",
        "xclaim",
        "xautoclaim",
    ]);
}

#[test]
fn xreadgroup_block_hands_each_new_entry_to_one_reader() {
    let s = cascade(&[]);
    let mut c = s.conn();
    let k0 = &keys_on(0, "q", 1)[0];
    let k1 = &keys_on(1, "q", 1)[0];
    for k in [k0, k1] {
        c.cmd(&["XGROUP", "CREATE", k, "g", "$", "MKSTREAM"]);
    }
    let read = |consumer: &str| {
        send_blocking(
            s.port,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                consumer,
                "BLOCK",
                "0",
                "STREAMS",
                k0,
                k1,
                ">",
                ">",
            ],
        )
    };
    // `a` blocks first, so it is first in line.
    let mut a = read("a");
    wait_blocked(&s, 1);
    let mut b = read("b");
    wait_blocked(&s, 2);
    // One entry on the other shard: the first reader gets it, alone.
    c.cmd(&["XADD", k1, "1-0", "f", "x"]);
    let entry = |k: &str, id: &str| {
        Value::Array(vec![Value::Array(vec![
            Value::bulk(k),
            Value::Array(vec![Value::Array(vec![
                Value::bulk(id),
                Value::Array(vec![Value::bulk("f"), Value::bulk("x")]),
            ])]),
        ])])
    };
    assert_eq!(a.read(), entry(k1, "1-0"));
    wait_blocked(&s, 1);
    c.cmd(&["XADD", k0, "2-0", "f", "x"]);
    assert_eq!(b.read(), entry(k0, "2-0"));
    wait_blocked(&s, 0);
    let pending = c.cmd(&["XPENDING", k1, "g"]);
    assert_eq!(pending.array()[3].array()[0].array()[0], Value::bulk("a"));
    // The group goes away, then the key: each waiter gets Redis's error.
    let mut d = read("d");
    wait_blocked(&s, 1);
    c.cmd(&["XGROUP", "DESTROY", k1, "g"]);
    assert_eq!(
        d.read(),
        Value::Error(
            "NOGROUP the consumer group this client was blocked on no longer exists".into()
        )
    );
    let mut e = send_blocking(
        s.port,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "e",
            "BLOCK",
            "0",
            "STREAMS",
            k0,
            ">",
        ],
    );
    wait_blocked(&s, 1);
    c.cmd(&["DEL", k0]);
    assert_eq!(
        e.read(),
        Value::Error("UNBLOCKED the stream key no longer exists".into())
    );
    // A timeout answers nil and creates no consumer.
    c.cmd(&["XGROUP", "CREATE", k0, "g", "$", "MKSTREAM"]);
    let mut t = Conn::connect(s.port);
    assert_eq!(
        t.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "late",
            "BLOCK",
            "30",
            "STREAMS",
            k0,
            ">"
        ]),
        Value::Nil
    );
    assert_eq!(
        c.cmd(&["XINFO", "CONSUMERS", k0, "g"]),
        Value::Array(vec![])
    );
    // Inside MULTI it does not block.
    assert_eq!(t.cmd(&["MULTI"]), Value::ok());
    t.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "m",
        "BLOCK",
        "0",
        "STREAMS",
        k0,
        ">",
    ]);
    assert_eq!(t.cmd(&["EXEC"]), Value::Array(vec![Value::Nil]));
}
