//! DUMP and RESTORE against Debian's redis-server: values of every type
//! and encoding move both ways (our DUMP into Redis's RESTORE and back),
//! errors are Redis's, TTLs and access stamps are kept, and a RESTORE
//! reaches replicas (ours and a real Redis) with an absolute TTL. SORT and
//! SORT_RO (whose STORE replicas apply) are checked here too.

mod common;
use common::family::{cascade, digest, redis};
use common::repl::{start, start_redis, wait_in_sync};
use common::{assert_same_replies, Conn, Value};

/// Keys of every type and encoding, written the same way on `c`.
fn fill(c: &mut Conn) {
    let big: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut cmds: Vec<Vec<String>> = vec![
        vec!["SET".into(), "s:int".into(), "12345".into()],
        vec!["SET".into(), "s:short".into(), "hello".into()],
        vec!["SET".into(), "s:long".into(), "x".repeat(5000)],
        vec!["SET".into(), "s:bin".into(), "\u{0}\u{1}\u{ff}".into()],
        vec!["HSET".into(), "h:small".into(), "f".into(), "v".into()],
        vec![
            "SADD".into(),
            "set:int".into(),
            "1".into(),
            "2".into(),
            "-3".into(),
        ],
        vec!["SADD".into(), "set:str".into(), "a".into(), "b".into()],
        vec![
            "ZADD".into(),
            "z:small".into(),
            "1.5".into(),
            "a".into(),
            "-2".into(),
            "b".into(),
        ],
        vec![
            "RPUSH".into(),
            "l:small".into(),
            "a".into(),
            "1".into(),
            "".into(),
        ],
        vec![
            "PFADD".into(),
            "hll".into(),
            "a".into(),
            "b".into(),
            "c".into(),
        ],
    ];
    let mut hset = vec!["HSET".to_string(), "h:big".into()];
    let mut sadd = vec!["SADD".to_string(), "set:big".into()];
    let mut zadd = vec!["ZADD".to_string(), "z:big".into()];
    let mut rpush = vec!["RPUSH".to_string(), "l:big".into()];
    for (i, m) in big.iter().enumerate() {
        hset.extend([m.clone(), format!("{i}")]);
        sadd.push(m.clone());
        zadd.extend([format!("{i}.25"), m.clone()]);
        rpush.push(m.repeat(20));
    }
    cmds.extend([hset, sadd, zadd, rpush]);
    for cmd in cmds {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert!(!c.cmd(&args).is_error(), "{}", args[0]);
    }
}

const KEYS: &[&str] = &[
    "s:int", "s:short", "s:long", "s:bin", "h:small", "h:big", "set:int", "set:str", "set:big",
    "z:small", "z:big", "l:small", "l:big", "hll",
];

/// DUMPs every key on `from` and RESTOREs it under a new name on `to`.
fn copy_all(from: &mut Conn, to: &mut Conn, prefix: &str) {
    for k in KEYS {
        common::family::copy_by_dump(from, to, k, &format!("{prefix}{k}"));
    }
}

#[test]
fn values_move_both_ways_between_cascade_and_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    fill(&mut o);
    fill(&mut r);
    // Each server's DUMPs restored on the other, under new names.
    copy_all(&mut o, &mut r, "from-cascade:");
    copy_all(&mut r, &mut o, "from-cascade:");
    // And each on itself.
    copy_all(&mut o, &mut ours.conn(), "self:");
    copy_all(&mut r, &mut theirs.conn(), "self:");
    assert_eq!(digest(&mut o), digest(&mut r));
    for k in KEYS {
        let name = format!("from-cascade:{k}");
        assert_eq!(o.cmd(&["TYPE", &name]), r.cmd(&["TYPE", &name]), "{k}");
        assert_eq!(
            o.cmd(&["OBJECT", "ENCODING", &name]),
            r.cmd(&["OBJECT", "ENCODING", &name]),
            "{k}"
        );
    }
    assert_eq!(o.cmd(&["DUMP", "missing"]), Value::Nil);
    // Short strings serialize to the same bytes (long ones are
    // LZF-compressed, where the two compressors may choose other matches).
    assert_eq!(o.cmd(&["DUMP", "s:short"]), r.cmd(&["DUMP", "s:short"]));
    assert_eq!(o.cmd(&["DUMP", "s:int"]), r.cmd(&["DUMP", "s:int"]));
}

#[test]
fn restore_errors_and_options_are_redis_s() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    for c in [&mut o, &mut r] {
        c.cmd(&["SET", "k", "value"]);
        c.cmd(&["RPUSH", "list", "a"]);
    }
    let Value::Bulk(good) = r.cmd(&["DUMP", "k"]) else {
        panic!("DUMP");
    };
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut newer = good.clone();
    let at = newer.len() - 10;
    newer[at] = 99;
    // A payload with a valid footer around a body that is not a value.
    let Value::Bulk(list) = r.cmd(&["DUMP", "list"]) else {
        panic!("DUMP");
    };
    let mut garbage = list[..list.len() - 10].to_vec();
    garbage.truncate(3);
    garbage.push(0xff);
    garbage.extend_from_slice(&list[list.len() - 10..list.len() - 8]);
    let crc = cascade::persist::rdb::crc64::crc64(&garbage);
    garbage.extend_from_slice(&crc.to_le_bytes());
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k", b"0", &good],
        vec![b"RESTORE", b"k2", b"0", &good],
        vec![b"GET", b"k2"],
        vec![b"RESTORE", b"k", b"0", &good, b"REPLACE"],
        vec![b"RESTORE", b"k3", b"-1", &good],
        vec![b"RESTORE", b"k3", b"x", &good],
        vec![b"RESTORE", b"k3", b"0", &bad_crc],
        vec![b"RESTORE", b"k3", b"0", &newer],
        vec![b"RESTORE", b"k3", b"0", b"short"],
        vec![b"RESTORE", b"k3", b"0", &garbage],
        vec![b"RESTORE", b"k3", b"0", &good, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k3", b"0", &good, b"IDLETIME", b"x"],
        vec![b"RESTORE", b"k3", b"0", &good, b"FREQ", b"256"],
        vec![
            b"RESTORE",
            b"k3",
            b"0",
            &good,
            b"IDLETIME",
            b"1",
            b"FREQ",
            b"2",
        ],
        vec![b"RESTORE", b"k3", b"0", &good, b"IDLETIME"],
        vec![b"RESTORE", b"k3", b"0", &good, b"NOPE"],
        vec![b"RESTORE", b"k", b"0", &good, b"NOPE"],
        vec![b"RESTORE", b"k3", b"0"],
        vec![b"DUMP"],
        vec![b"DUMP", b"k", b"k"],
        vec![b"RESTORE", b"k4", b"100000", &good],
        vec![b"RESTORE", b"k5", b"1", &good, b"ABSTTL"],
        vec![b"EXISTS", b"k5"],
        vec![b"RESTORE", b"list", b"1", &good, b"ABSTTL", b"REPLACE"],
        vec![b"EXISTS", b"list"],
        vec![b"RESTORE", b"k6", b"0", &good, b"IDLETIME", b"1000"],
        vec![b"OBJECT", b"ENCODING", b"k6"],
    ];
    for args in &cases {
        common::assert_same_reply(&mut o, &mut r, args);
    }
    let ttl = o.cmd(&["PTTL", "k4"]);
    assert!(
        matches!(ttl, Value::Int(t) if t > 90_000 && t <= 100_000),
        "{ttl:?}"
    );
    let idle = o.cmd(&["OBJECT", "IDLETIME", "k6"]);
    assert!(matches!(idle, Value::Int(t) if t >= 1000), "{idle:?}");
    assert_eq!(digest(&mut o), digest(&mut r));
}

#[test]
fn restore_reaches_replicas_with_an_absolute_ttl() {
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let mut c = master.conn();
    fill(&mut c);
    for k in KEYS {
        let Value::Bulk(payload) = c.cmd(&["DUMP", k]) else {
            panic!("DUMP {k}");
        };
        let name = format!("copy:{k}");
        assert_eq!(
            c.cmdb(&[b"RESTORE", name.as_bytes(), b"500000", &payload]),
            Value::ok()
        );
    }
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    // The same expiry time everywhere, not one restarted per replica.
    let at = c.cmd(&["PEXPIRETIME", "copy:h:big"]);
    assert!(matches!(at, Value::Int(t) if t > 0));
    assert_eq!(ours.conn().cmd(&["PEXPIRETIME", "copy:h:big"]), at);
    assert_eq!(theirs.conn().cmd(&["PEXPIRETIME", "copy:h:big"]), at);
}

#[test]
fn sort_answers_like_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    let mut setup: Vec<String> = vec![
        "RPUSH nums 3 10 -2.5 7 1e2 0".into(),
        "RPUSH words banana apple cherry date".into(),
        "RPUSH bad 1 two 3".into(),
        "SADD ints 5 3 9 1".into(),
        "SADD strs pear fig kiwi".into(),
        "ZADD z 3 c 1 a 2 b 4 d".into(),
        "SET str x".into(),
    ];
    // Weights and objects for BY and GET patterns, on keys of every shard.
    for (i, w) in ["banana", "apple", "cherry", "date"].iter().enumerate() {
        setup.push(format!("SET w_{w} {}", (i * 7) % 5));
        setup.push(format!("SET name_{w} N{i}"));
        setup.push(format!("HSET obj_{w} price {} tag t{i}", 10 - i));
    }
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    assert_same_replies(&mut o, &mut r, &setup);
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "SORT nums",
            "SORT nums DESC",
            "SORT nums LIMIT 1 3",
            "SORT nums LIMIT -5 2",
            "SORT nums LIMIT 2 -1",
            "SORT nums LIMIT 10 2",
            "SORT nums LIMIT x 2",
            "SORT nums LIMIT 1",
            "SORT words",
            "SORT words ALPHA",
            "SORT words ALPHA DESC LIMIT 0 2",
            "SORT bad",
            "SORT bad ALPHA",
            "SORT ints",
            "SORT ints DESC",
            "SORT strs ALPHA",
            "SORT z",
            "SORT z BY nosort",
            "SORT z BY nosort DESC",
            "SORT z BY nosort LIMIT 1 2",
            "SORT z BY nosort DESC LIMIT 1 2",
            "SORT words BY nosort",
            "SORT words BY nosort DESC LIMIT 1 2",
            "SORT words BY w_*",
            "SORT words BY w_* DESC",
            "SORT words BY w_* ALPHA",
            "SORT words BY missing_* ALPHA",
            "SORT words BY obj_*->price",
            "SORT words BY obj_*->price GET # GET name_* GET obj_*->tag GET nokey GET obj_*->",
            "SORT words ALPHA GET name_* GET #",
            "SORT words BY w_* LIMIT 1 2 GET name_*",
            "SORT missing",
            "SORT missing GET #",
            "SORT str",
            "SORT words BOGUS",
            "SORT words ALPHA STORE dest",
            "LRANGE dest 0 -1",
            "SORT words BY obj_*->price GET name_* GET nokey STORE dest",
            "LRANGE dest 0 -1",
            "SORT strs STORE sdest",
            "LRANGE sdest 0 -1",
            "SORT strs BY nosort STORE sdest",
            "LRANGE sdest 0 -1",
            "SET keep 1",
            "EXPIRE dest 100",
            "SORT nums STORE dest",
            "TTL dest",
            "SORT missing STORE dest",
            "EXISTS dest",
            "SORT_RO words ALPHA",
            "SORT_RO words ALPHA STORE dest",
            "SORT_RO words BY w_* GET name_*",
        ],
    );
    assert_eq!(digest(&mut o), digest(&mut r));
}

#[test]
fn sort_store_reaches_replicas() {
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let mut c = master.conn();
    for i in 0..50 {
        c.cmd(&["SADD", "s", &format!("m{i}")]);
        c.cmd(&["SET", &format!("w_m{i}"), &((i * 37) % 11).to_string()]);
    }
    assert_eq!(c.cmd(&["SORT", "s", "ALPHA", "STORE", "a"]), Value::Int(50));
    assert_eq!(
        c.cmd(&["SORT", "s", "BY", "nosort", "STORE", "n"]),
        Value::Int(50)
    );
    assert_eq!(
        c.cmd(&["SORT", "s", "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", "b"]),
        Value::Int(100)
    );
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
}

#[test]
fn sort_is_described_like_redis() {
    common::family::assert_command_info_matches_redis(&["sort", "sort_ro", "dump", "restore"]);
}
