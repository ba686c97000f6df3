//! HyperLogLog commands (PFADD PFCOUNT PFMERGE PFDEBUG) checked against
//! Debian's redis-server: the same commands go to both servers and every
//! reply, errors included, must be the same, and so must every HLL's
//! bytes (GET), since replicas and RDB files move them between the two.
//! Then replication both ways with a real Redis, and a restart.

mod common;
use common::repl::{start, start_redis, wait_in_sync, wait_in_sync_applying_all};
use common::{Server, Value};

/// Sends `args` to both servers and asserts the replies are equal.
fn same(ours: &mut common::Conn, redis: &mut common::Conn, args: &[&[u8]]) -> Value {
    common::assert_same_reply(ours, redis, args)
}

fn same_str(ours: &mut common::Conn, redis: &mut common::Conn, args: &[&str]) -> Value {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    same(ours, redis, &args)
}

use common::Rng;

/// Servers for a comparison: ours with two shards, so commands over
/// several keys coordinate across shards.
fn pair() -> (Server, Server) {
    (
        Server::start(&["--shards", "2", "--enable-debug-command", "yes"]),
        Server::start_redis(&["--enable-debug-command", "yes"]),
    )
}

#[test]
fn hll_commands_answer_like_redis() {
    let (ours, redis) = pair();
    let (mut o, mut r) = (ours.conn(), redis.conn());
    let fixed: &[&[&str]] = &[
        &["PFADD", "h"],
        &["PFADD", "h"],
        &["GET", "h"],
        &["PFCOUNT", "h"],
        &["PFADD", "h", "a", "b", "c"],
        &["PFADD", "h", "a", "b", "c"],
        &["PFADD", "h", ""],
        &["GET", "h"],
        &["PFCOUNT", "h"],
        // The count is cached in the header now.
        &["GET", "h"],
        &["PFCOUNT", "missing"],
        &["PFCOUNT", "missing", "h"],
        &["EXISTS", "missing"],
        &["SET", "text", "not an hll"],
        &["SET", "short", "HYLL"],
        &["RPUSH", "list", "x"],
        &["PFADD", "text", "a"],
        &["PFADD", "short", "a"],
        &["PFADD", "list", "a"],
        &["PFCOUNT", "text"],
        &["PFCOUNT", "list"],
        &["PFCOUNT", "h", "list"],
        &["PFCOUNT", "list", "text"],
        &["PFCOUNT", "h", "text"],
        &["PFCOUNT"],
        &["PFADD"],
        &["PFMERGE"],
        &["PFADD", "h2", "c", "d", "e", "f"],
        &["PFMERGE", "m", "h", "h2"],
        &["GET", "m"],
        &["PFCOUNT", "m"],
        &["PFCOUNT", "h", "h2"],
        &["PFMERGE", "m"],
        &["GET", "m"],
        &["PFMERGE", "m", "missing"],
        &["GET", "m"],
        &["PFMERGE", "new"],
        &["GET", "new"],
        &["PFMERGE", "m", "text"],
        &["PFMERGE", "list", "h"],
        &["PFMERGE", "m", "h", "list"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["PFDEBUG", "encoding", "missing"],
        &["PFDEBUG", "NOPE", "h"],
        &["PFDEBUG", "ENCODING", "h", "extra"],
        &["PFDEBUG", "NOPE", "h", "extra"],
        &["PFDEBUG", "ENCODING", "text"],
        &["PFDEBUG", "ENCODING", "list"],
        &["PFDEBUG", "GETREG", "h"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["GET", "h"],
        &["PFDEBUG", "TODENSE", "h"],
        &["PFDEBUG", "TODENSE", "h2"],
        &["PFDEBUG", "TODENSE", "h2"],
        &["GET", "h2"],
        &["PFCOUNT", "h2"],
        &["PFADD", "h2", "g", "h", "i"],
        &["GET", "h2"],
        // A dense source makes the destination dense.
        &["PFMERGE", "m2", "new", "h2"],
        &["PFDEBUG", "ENCODING", "m2"],
        &["GET", "m2"],
        &["OBJECT", "ENCODING", "h"],
        &["TYPE", "h"],
        &["PFSELFTEST", "x"],
    ];
    for cmd in fixed {
        same_str(&mut o, &mut r, cmd);
    }
    assert_eq!(o.cmd(&["PFSELFTEST"]), Value::ok());
    // A sparse body that does not cover every register.
    for (key, bytes) in [
        ("cut", &b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xfe"[..]),
        (
            "cutval",
            &b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xfe\x80"[..],
        ),
        ("dense?", &b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff"[..]),
    ] {
        same(&mut o, &mut r, &[b"SET", key.as_bytes(), bytes]);
        same_str(&mut o, &mut r, &["PFCOUNT", key]);
        same_str(&mut o, &mut r, &["PFCOUNT", key, "h"]);
        same_str(&mut o, &mut r, &["PFMERGE", "into", key]);
        same_str(&mut o, &mut r, &["PFDEBUG", "DECODE", key]);
        same_str(&mut o, &mut r, &["PFADD", key, "x", "y"]);
        same_str(&mut o, &mut r, &["GET", key]);
    }
    assert_eq!(o.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DEBUG", "DIGEST"]));
}

#[test]
fn hll_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "pfadd",
        "pfcount",
        "pfmerge",
        "pfdebug",
        "pfselftest",
    ]);
}

#[test]
fn random_hll_work_gives_redis_bytes() {
    let (ours, redis) = pair();
    let (mut o, mut r) = (ours.conn(), redis.conn());
    // Promotion to dense happens at the limit both servers are given.
    same_str(
        &mut o,
        &mut r,
        &["CONFIG", "SET", "hll-sparse-max-bytes", "400"],
    );
    let keys: Vec<String> = (0..6).map(|i| format!("hll:{i}")).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..2500 {
        let key = keys[(rng.next() % keys.len() as u64) as usize].as_bytes();
        match rng.next() % 10 {
            0..=5 => {
                // Binary elements of every tail length.
                let n = 1 + rng.next() % 8;
                let elems: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = rng.next() % 20;
                        (0..len).map(|_| (rng.next() % 64) as u8).collect()
                    })
                    .collect();
                let mut args: Vec<&[u8]> = vec![b"PFADD", key];
                args.extend(elems.iter().map(Vec::as_slice));
                same(&mut o, &mut r, &args);
            }
            6 | 7 => {
                same(&mut o, &mut r, &[b"PFCOUNT", key]);
            }
            8 => {
                let other = keys[(rng.next() % keys.len() as u64) as usize].as_bytes();
                same(&mut o, &mut r, &[b"PFCOUNT", key, other, b"nope"]);
            }
            _ => {
                let a = keys[(rng.next() % keys.len() as u64) as usize].as_bytes();
                let b = keys[(rng.next() % keys.len() as u64) as usize].as_bytes();
                same(&mut o, &mut r, &[b"PFMERGE", key, a, b]);
            }
        }
        if step % 500 == 499 {
            for k in &keys {
                same_str(&mut o, &mut r, &["GET", k]);
            }
        }
    }
    let mut dense = 0;
    for k in &keys {
        same_str(&mut o, &mut r, &["GET", k]);
        same_str(&mut o, &mut r, &["PFCOUNT", k]);
        if o.cmd(&["PFDEBUG", "ENCODING", k]).text() == "dense" {
            dense += 1;
        }
    }
    assert!(dense > 0, "the walk should promote some HLLs to dense");
    // Big counts: many elements in one key each.
    for (key, n) in [("big1", 5_000), ("big2", 60_000)] {
        for chunk in (0..n).collect::<Vec<u32>>().chunks(1000) {
            let elems: Vec<String> = chunk.iter().map(|i| format!("e{i}")).collect();
            let mut args = vec!["PFADD", key];
            args.extend(elems.iter().map(String::as_str));
            same_str(&mut o, &mut r, &args);
        }
        same_str(&mut o, &mut r, &["PFCOUNT", key]);
        same_str(&mut o, &mut r, &["GET", key]);
    }
    same_str(&mut o, &mut r, &["PFCOUNT", "big1", "big2", "hll:0"]);
    same_str(&mut o, &mut r, &["PFMERGE", "big3", "big1", "big2"]);
    same_str(&mut o, &mut r, &["GET", "big3"]);
    same_str(&mut o, &mut r, &["PFCOUNT", "big3"]);
    assert_eq!(o.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DEBUG", "DIGEST"]));
}

/// HLL work on `master`: creations, sparse and dense adds, a cached
/// count, a merge across shards.
fn hll_work(master: &Server) {
    let mut c = master.conn();
    for i in 0..40 {
        let elems: Vec<String> = (0..(i * 37)).map(|j| format!("{i}:{j}")).collect();
        let key = format!("hll{}", i % 7);
        let mut args = vec!["PFADD", key.as_str()];
        args.extend(elems.iter().map(String::as_str));
        assert!(matches!(c.cmd(&args), Value::Int(_)));
        assert!(matches!(c.cmd(&["PFCOUNT", &key]), Value::Int(_)));
    }
    assert_eq!(
        c.cmd(&["PFMERGE", "all", "hll0", "hll1", "hll2", "hll3"]),
        Value::ok()
    );
    assert!(matches!(c.cmd(&["PFCOUNT", "all"]), Value::Int(n) if n > 1000));
}

#[test]
fn hlls_replicate_byte_for_byte_between_cascade_and_redis() {
    // Cascade master, a Cascade replica and a Redis replica.
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    hll_work(&master);
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    // PFCOUNT is a read: a read-only replica answers it.
    assert!(matches!(ours.conn().cmd(&["PFCOUNT", "hll1", "hll2"]), Value::Int(n) if n > 100));
    for k in ["hll0", "hll3", "hll6", "all"] {
        let bytes = master.conn().cmd(&["GET", k]);
        assert_eq!(ours.conn().cmd(&["GET", k]), bytes, "{k}");
        assert_eq!(theirs.conn().cmd(&["GET", k]), bytes, "{k}");
    }
    // A Redis master, and our replica of it.
    let rmaster = start_redis(&[]);
    let rport = rmaster.port.to_string();
    let mut replica = start(&["--replicaof", "127.0.0.1", &rport]);
    hll_work(&rmaster);
    wait_in_sync_applying_all(&rmaster, &replica);
    // Our copy survives a save and restart.
    let before = replica.conn().cmd(&["GET", "all"]);
    assert_eq!(replica.conn().cmd(&["SAVE"]), Value::ok());
    replica.restart();
    assert_eq!(replica.conn().cmd(&["GET", "all"]), before);
    assert_eq!(
        replica.conn().cmd(&["PFCOUNT", "all"]),
        rmaster.conn().cmd(&["PFCOUNT", "all"])
    );
}
