//! Sorted set commands against the real binary (two shards), judged
//! against a real redis-server 7.0 fed the same commands: replies and
//! errors, RESP2 and RESP3 shapes (doubles), listpack/skiplist encodings,
//! DEBUG DIGEST; multi-key commands whose keys live on different shards;
//! replication to Cascade and Redis replicas; RDB round trips with Redis in
//! both directions.

mod common;
use common::family::*;
use common::tempdir::TempDir;
use common::{assert_same_replies, require_tool, Conn, Value};

/// Deterministic command lines; `~` marks replies compared sorted.
const SCRIPT: &[&str] = &[
    "ZADD z 1 a 2 b 3 c",
    "ZADD z 1.5 d -inf min +inf max",
    "ZADD z 0.1 tenth 1e30 big -0 negzero",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z tenth",
    "ZSCORE z big",
    "ZSCORE z negzero",
    "ZSCORE z min",
    "ZSCORE z nope",
    "ZSCORE nokey a",
    "ZMSCORE z a nope max",
    "ZMSCORE nokey a b",
    "ZCARD z",
    "ZCARD nokey",
    "OBJECT ENCODING z",
    "ZADD z NX 10 a 4 e",
    "ZADD z XX 10 a 4 f",
    "ZADD z XX CH 10 a 11 b",
    "ZADD z CH 10 a",
    "ZADD z GT 5 a",
    "ZADD z GT CH 50 a",
    "ZADD z LT CH 60 a",
    "ZADD z LT CH 1 a",
    "ZADD z XX GT 2 a",
    "ZADD z INCR 5 a",
    "ZADD z INCR GT -1 a",
    "ZADD z INCR NX 1 a",
    "ZADD z INCR XX 1 nope",
    "ZADD z NX XX 1 a",
    "ZADD z GT LT 1 a",
    "ZADD z GT NX 1 a",
    "ZADD z LT NX 1 a",
    "ZADD z INCR 1 a 2 b",
    "ZADD z 1",
    "ZADD z 1 a 2",
    "ZADD z x a",
    "ZADD z nan a",
    "ZADD z 1e400 a",
    "ZADD z 0x10 hex",
    "ZADD z FOO 1 a",
    "ZADD z",
    "ZADD z CH",
    "ZINCRBY z 2.5 a",
    "ZINCRBY z 1 newmember",
    "ZINCRBY z x a",
    "ZINCRBY z -inf max",
    "ZINCRBY z +inf min",
    "ZADD z INCR -inf min",
    "ZSCORE z max",
    "ZINCRBY z inf max",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZRANK z a",
    "ZREVRANK z a",
    "ZRANK z nope",
    "ZRANK nokey a",
    "ZRANK z",
    "ZCOUNT z -inf +inf",
    "ZCOUNT z (1 3",
    "ZCOUNT z 1 (3",
    "ZCOUNT z (1 (1",
    "ZCOUNT z 3 1",
    "ZCOUNT z x 1",
    "ZCOUNT z (x 1",
    "ZCOUNT z \"\" 1",
    "ZCOUNT nokey 0 1",
    "ZRANGE z 0 2",
    "ZRANGE z -3 -1 WITHSCORES",
    "ZRANGE z 2 1",
    "ZRANGE z -100 100",
    "ZRANGE z 0 -1 REV",
    "ZRANGE z 1 0 REV",
    "ZRANGE z (1 3 BYSCORE",
    "ZRANGE z 3 (1 BYSCORE REV WITHSCORES",
    "ZRANGE z -inf +inf BYSCORE LIMIT 1 2",
    "ZRANGE z -inf +inf BYSCORE LIMIT 1 -1",
    "ZRANGE z -inf +inf BYSCORE LIMIT -1 2",
    "ZRANGE z -inf +inf BYSCORE LIMIT 100 2",
    "ZRANGE z +inf -inf BYSCORE REV LIMIT 0 3 WITHSCORES",
    "ZRANGE z 0 1 LIMIT 0 1",
    "ZRANGE z 0 1 LIMIT 0 -1",
    "ZRANGE z - + BYLEX WITHSCORES",
    "ZRANGE z 0 1 BYSCORE BYLEX",
    "ZRANGE z 0 1 REV REV",
    "ZRANGE z 0 1 FOO",
    "ZRANGE z 0 1 LIMIT 0",
    "ZRANGE z 0 1 LIMIT x 1",
    "ZRANGE z a b",
    "ZRANGE z x 1 BYSCORE",
    "ZRANGE z a b BYLEX",
    "ZRANGE nokey 0 -1",
    "ZRANGE nokey 0 -1 WITHSCORES",
    "ZREVRANGE z 0 2 WITHSCORES",
    "ZREVRANGE z 0 2 REV",
    "ZREVRANGE z 0 2 LIMIT 0 1",
    "ZRANGEBYSCORE z 1 3",
    "ZRANGEBYSCORE z 1 3 WITHSCORES LIMIT 0 2",
    "ZRANGEBYSCORE z -inf +inf LIMIT 2 2 WITHSCORES",
    "ZRANGEBYSCORE z 1 3 BYSCORE",
    "ZRANGEBYSCORE z 1 3 LIMIT",
    "ZREVRANGEBYSCORE z 3 1",
    "ZREVRANGEBYSCORE z 1 3",
    "ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 1 3",
    "ZADD lex 0 a 0 b 0 c 0 d 0 e 0 \"\" 0 aa",
    "ZRANGEBYLEX lex - +",
    "ZRANGEBYLEX lex [b (d",
    "ZRANGEBYLEX lex (a [c",
    "ZRANGEBYLEX lex [aa +",
    "ZRANGEBYLEX lex - [",
    "ZRANGEBYLEX lex [ +",
    "ZRANGEBYLEX lex + -",
    "ZRANGEBYLEX lex - + LIMIT 1 2",
    "ZRANGEBYLEX lex a +",
    "ZRANGEBYLEX lex - +x",
    "ZRANGEBYLEX lex - + WITHSCORES",
    "ZREVRANGEBYLEX lex + -",
    "ZREVRANGEBYLEX lex (d [b",
    "ZREVRANGEBYLEX lex + - LIMIT 2 3",
    "ZLEXCOUNT lex - +",
    "ZLEXCOUNT lex [b [d",
    "ZLEXCOUNT lex (b (b",
    "ZLEXCOUNT lex b d",
    "ZLEXCOUNT nokey - +",
    "ZRANGE lex [c - BYLEX REV",
    "ZRANGE lex [b [d BYLEX LIMIT 1 1",
    "ZREMRANGEBYLEX lex [b (d",
    "ZRANGE lex 0 -1",
    "ZREMRANGEBYLEX lex x y",
    "ZREMRANGEBYLEX nokey - +",
    "ZREMRANGEBYLEX lex - +",
    "EXISTS lex",
    "ZADD r 1 a 2 b 3 c 4 d 5 e 6 f",
    "ZREMRANGEBYRANK r 0 0",
    "ZREMRANGEBYRANK r -2 -1",
    "ZREMRANGEBYRANK r 5 10",
    "ZREMRANGEBYRANK r 2 1",
    "ZREMRANGEBYRANK r x 1",
    "ZRANGE r 0 -1",
    "ZREMRANGEBYSCORE r (2 3",
    "ZREMRANGEBYSCORE r x 3",
    "ZREMRANGEBYSCORE r 10 20",
    "ZRANGE r 0 -1 WITHSCORES",
    "ZREMRANGEBYRANK r 0 -1",
    "EXISTS r",
    "ZADD p 1 a 2 b 3 c 4 d 5 e",
    "ZPOPMIN p",
    "ZPOPMAX p",
    "ZPOPMIN p 2",
    "ZPOPMAX p 0",
    "ZPOPMIN p -1",
    "ZPOPMIN p x",
    "ZPOPMIN p 1 2",
    "ZPOPMAX p 10",
    "EXISTS p",
    "ZPOPMIN nokey",
    "ZPOPMIN nokey 3",
    "ZREM z a nope b",
    "ZREM z nope",
    "ZREM nokey a",
    "ZADD one 1 x",
    "ZREM one x y",
    "EXISTS one",
    "SET str x",
    "ZADD str 1 a",
    "ZINCRBY str 1 a",
    "ZREM str a",
    "ZCARD str",
    "ZSCORE str a",
    "ZMSCORE str a",
    "ZRANK str a",
    "ZCOUNT str 0 1",
    "ZLEXCOUNT str - +",
    "ZRANGE str 0 1",
    "ZRANGEBYSCORE str 0 1",
    "ZREMRANGEBYRANK str 0 1",
    "ZPOPMIN str",
    "ZPOPMIN str 0",
    "ZRANDMEMBER str",
    "ZRANDMEMBER str 1",
    "ZSCAN str 0",
    "ZSCAN str 0 COUNT x",
    "ZSCAN str 0 COUNT 0",
    "ZSCAN nope 0 COUNT 0",
    "ZSCAN nope 0 MATCH",
    "ZSCAN nope x COUNT 0",
    "ZUNION 1 str",
    "ZRANGESTORE d str 0 1",
    "ZMPOP 1 str MIN",
    "ZINTERCARD 1 str",
    "ZRANDMEMBER nokey",
    "ZRANDMEMBER nokey 5",
    "ZRANDMEMBER z 0",
    "ZRANDMEMBER z 100",
    "ZRANDMEMBER z 100 WITHSCORES",
    "ZRANDMEMBER z x",
    "ZRANDMEMBER z 1 FOO",
    "ZRANDMEMBER z 1 WITHSCORES x",
    "ZRANDMEMBER z -9223372036854775808",
    "ZRANDMEMBER z -9223372036854775807 WITHSCORES",
    "ZRANDMEMBER z 4611686018427387904 WITHSCORES",
    "ZADD one 7 only",
    "ZRANDMEMBER one -3 WITHSCORES",
    "ZRANDMEMBER one",
    "ZSCAN one 0",
    "ZSCAN z 0",
    "ZSCAN z 0 MATCH m*",
    "ZSCAN z x",
    "ZSCAN z 0 COUNT 0",
    "ZSCAN nokey 0",
    "ZADD s1 1 a 2 b 3 c",
    "ZADD s2 10 b 20 c 30 d",
    "SADD plain c d e",
    "ZUNION 2 s1 s2",
    "ZUNION 2 s1 s2 WITHSCORES",
    "ZUNION 3 s1 s2 plain WITHSCORES",
    "ZUNION 2 s1 s2 WEIGHTS 2 0.5 WITHSCORES",
    "ZUNION 2 s1 s2 AGGREGATE MIN WITHSCORES",
    "ZUNION 2 s1 s2 AGGREGATE MAX WITHSCORES",
    "ZUNION 2 s1 s2 AGGREGATE FOO",
    "ZUNION 2 s1 s2 WEIGHTS 1",
    "ZUNION 2 s1 s2 WEIGHTS 1 x",
    "ZUNION 2 s1 nokey WITHSCORES",
    "ZUNION 0 s1",
    "ZUNION -1 s1",
    "ZUNION x s1",
    "ZUNION 3 s1 s2",
    "ZUNION 1 s1 FOO",
    "ZUNION 2 str s1 FOO",
    "ZINTER 2 s1 s2 WITHSCORES",
    "ZINTER 3 s1 s2 plain WITHSCORES",
    "ZINTER 2 s1 nokey",
    "ZINTER 2 s1 s2 WEIGHTS 1 -1 AGGREGATE SUM WITHSCORES",
    "ZDIFF 2 s1 s2 WITHSCORES",
    "ZDIFF 2 s2 plain",
    "ZDIFF 1 nokey",
    "ZDIFF 2 s1 s2 WEIGHTS 1 1",
    "ZDIFF 2 s1 s2 AGGREGATE SUM",
    "ZADD infs 1 a +inf b -inf c",
    "ZADD infs2 1 a -inf b +inf c",
    "ZUNION 2 infs infs2 WITHSCORES",
    "ZINTER 2 infs infs2 WEIGHTS 0 1 WITHSCORES",
    "ZUNION 2 infs infs2 WEIGHTS 0 0 AGGREGATE MAX WITHSCORES",
    "ZUNIONSTORE dst 2 s1 s2",
    "ZRANGE dst 0 -1 WITHSCORES",
    "OBJECT ENCODING dst",
    "ZUNIONSTORE dst 2 s1 s2 WITHSCORES",
    "ZINTERSTORE dst 2 s1 s2 AGGREGATE MAX",
    "ZRANGE dst 0 -1 WITHSCORES",
    "ZINTERSTORE dst 2 s1 nokey",
    "EXISTS dst",
    "ZINTERSTORE dst 2 s1 nokey",
    "ZDIFFSTORE dst 2 s1 s2",
    "ZRANGE dst 0 -1 WITHSCORES",
    "ZDIFFSTORE dst 1 plain",
    "TYPE dst",
    "ZUNIONSTORE dst 0 s1",
    "ZUNIONSTORE str 1 s1",
    "TYPE str",
    "SET str x",
    "ZINTERCARD 2 s1 s2",
    "ZINTERCARD 2 s1 s2 LIMIT 1",
    "ZINTERCARD 2 s1 s2 LIMIT -1",
    "ZINTERCARD 2 s1 s2 LIMIT x",
    "ZINTERCARD 0 s1",
    "ZINTERCARD 3 s1 s2",
    "ZINTERCARD 2 s1 s2 WITHSCORES",
    "ZINTERCARD 2 s1 plain",
    "ZRANGESTORE rs s2 0 1",
    "ZRANGE rs 0 -1 WITHSCORES",
    "ZRANGESTORE rs s2 (10 +inf BYSCORE LIMIT 0 1",
    "ZRANGE rs 0 -1 WITHSCORES",
    "ZRANGESTORE rs s2 0 1 WITHSCORES",
    "ZRANGESTORE rs s2 5 10",
    "EXISTS rs",
    "ZRANGESTORE rs nokey 0 -1",
    "ZRANGESTORE rs s2 [a [z BYLEX REV",
    "ZMPOP 2 nokey s1 MIN",
    "ZMPOP 1 s2 MAX COUNT 2",
    "ZMPOP 1 s2 MAX COUNT 5",
    "EXISTS s2",
    "ZMPOP 1 nokey MIN",
    "ZMPOP 0 s1 MIN",
    "ZMPOP x s1 MIN",
    "ZMPOP 1 s1 FOO",
    "ZMPOP 1 s1 MIN COUNT 0",
    "ZMPOP 1 s1 MIN COUNT x",
    "ZMPOP 1 s1 MIN COUNT 1 COUNT 1",
    "ZMPOP 1 s1 MIN FOO",
    "ZMPOP 5 s1 MIN",
    "ZMPOP 2 s1 str MIN",
    "ZMPOP 2 str s1 MIN",
    "ZADD bz 1 a 2 b 3 c 4 d -inf lo 5 e 6 f",
    "BZPOPMIN nokey bz 0",
    "BZPOPMAX nokey bz 0.5",
    "BZMPOP 0 2 nokey bz MIN COUNT 2",
    "BZMPOP 1.5 1 bz MAX",
    "BZMPOP 0 1 bz MAX COUNT 9",
    "EXISTS bz",
    "BZPOPMIN nokey str 0",
    "BZPOPMIN str nokey 0",
    "BZMPOP 0 2 nokey str MIN",
    "BZPOPMIN bz x",
    "BZPOPMIN bz -1",
    "BZPOPMIN bz \"\"",
    "BZPOPMIN bz",
    "BZMPOP -1 1 bz MIN",
    "BZMPOP x 1 bz MIN",
    "BZMPOP 0 0 bz MIN",
    "BZMPOP 0 x bz MIN",
    "BZMPOP 0 1 bz",
    "BZMPOP 0 1 bz FOO",
    "BZMPOP 0 1 bz MIN COUNT 0",
    "BZMPOP 0 1 bz MIN COUNT -1",
    "BZMPOP 0 1 bz MIN COUNT 1 COUNT 2",
    "BZMPOP 0 3 bz MIN",
    "MULTI",
    "BZPOPMIN nokey 0",
    "BZPOPMAX nokey 0",
    "BZMPOP 0 1 nokey MIN",
    "ZADD bzm 1 a 2 b",
    "BZPOPMAX nokey bzm 0",
    "BZMPOP 0 1 bzm MIN COUNT 4",
    "EXEC",
    "COMMAND GETKEYS BZPOPMIN a b 0",
    "COMMAND GETKEYS BZMPOP 0 2 a b MIN",
    "COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2",
    "COMMAND GETKEYS ZUNION 2 a b",
    "COMMAND GETKEYS ZMPOP 2 a b MIN",
    "COMMAND GETKEYS ZRANGESTORE d s 0 1",
    "ZADD bin 1 \\x00\\xff 2 \"\"",
    "ZRANGE bin 0 -1 WITHSCORES",
    "ZSCORE bin \"\"",
    "CONFIG SET zset-max-listpack-entries 3",
    "ZADD small 1 a 2 b 3 c",
    "OBJECT ENCODING small",
    "ZADD small 4 d",
    "OBJECT ENCODING small",
    "ZREM small a b c",
    "OBJECT ENCODING small",
    "ZADD sl 1 a 2 b 3 c 4 d 5 e",
    "ZRANGESTORE rs2 sl 0 1",
    "OBJECT ENCODING rs2",
    "ZRANGESTORE rs2 sl 0 -1",
    "OBJECT ENCODING rs2",
    "ZRANGESTORE rs2 sl -inf +inf BYSCORE LIMIT 0 2",
    "OBJECT ENCODING rs2",
    "ZUNIONSTORE u2 1 sl",
    "OBJECT ENCODING u2",
    "ZPOPMIN sl 3",
    "ZUNIONSTORE u2 1 sl",
    "OBJECT ENCODING u2",
    "ZADD neg 5 a -0 b",
    "ZSCORE neg b",
    "ZADD sk 1 a 2 b 3 c 4 d -0 e",
    "ZSCORE sk e",
    "ZUNIONSTORE neg2 1 sk",
    "CONFIG SET zset-max-listpack-entries 128",
    "CONFIG SET zset-max-listpack-value 4",
    "ZADD long 1 abcd",
    "OBJECT ENCODING long",
    "ZADD long 2 abcde",
    "OBJECT ENCODING long",
    "ZADD long2 1 abcde",
    "OBJECT ENCODING long2",
    "CONFIG SET zset-max-listpack-value 64",
    "TYPE z",
    "DEBUG DIGEST-VALUE z s1 neg sk nokey",
    "DEBUG DIGEST",
    "RENAME s1 s1b",
    "ZRANGE s1b 0 -1",
    "DEL s1b z",
    "DEBUG DIGEST",
];

#[test]
fn same_replies_as_redis_resp2() {
    run_script("2", SCRIPT);
}

#[test]
fn same_replies_as_redis_resp3() {
    run_script("3", SCRIPT);
}

#[test]
fn command_info_matches_redis() {
    assert_command_info_matches_redis(&[
        "zadd",
        "zincrby",
        "zrem",
        "zcard",
        "zscore",
        "zmscore",
        "zrank",
        "zrevrank",
        "zcount",
        "zlexcount",
        "zrange",
        "zrangestore",
        "zrevrange",
        "zrangebyscore",
        "zrevrangebyscore",
        "zrangebylex",
        "zrevrangebylex",
        "zremrangebyrank",
        "zremrangebyscore",
        "zremrangebylex",
        "zpopmin",
        "zpopmax",
        "zmpop",
        "bzpopmin",
        "bzpopmax",
        "bzmpop",
        "zunion",
        "zinter",
        "zdiff",
        "zunionstore",
        "zinterstore",
        "zdiffstore",
        "zintercard",
        "zrandmember",
        "zscan",
    ]);
}

#[test]
fn binary_members_and_scores() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let member: Vec<u8> = (0..=255u8).collect();
    let (mut c, mut rc) = (s.conn(), r.conn());
    for conn in [&mut c, &mut rc] {
        conn.cmdb(&[
            b"ZADD", b"bin", b"1.25", &member, b"-1e-300", b"\x00", b"2", b"",
        ]);
    }
    for args in [
        &[&b"ZRANGE"[..], b"bin", b"0", b"-1", b"WITHSCORES"][..],
        &[b"ZSCORE", b"bin", &member],
        &[b"ZRANK", b"bin", b"\x00"],
        &[b"ZRANGEBYLEX", b"bin", b"[\x00", b"+"],
        &[b"ZRANGEBYSCORE", b"bin", b" 1", b"(2"],
        &[b"ZCOUNT", b"bin", b"", b"+inf"],
        &[b"DEBUG", b"DIGEST-VALUE", b"bin"],
    ] {
        assert_eq!(c.cmdb(args), rc.cmdb(args), "{args:?}");
    }
}

/// `n` key names (with `prefix`) owned by shard `shard` of 2.

#[test]
fn multi_key_commands_across_shards() {
    let s = cascade(&[]);
    let r = redis(&[]);
    let a = keys_on(0, "a", 2);
    let b = keys_on(1, "b", 2);
    let (a0, a1, b0, b1) = (&a[0], &a[1], &b[0], &b[1]);
    let lines: Vec<String> = vec![
        format!("ZADD {a0} 1 x 2 y 3 z"),
        format!("ZADD {b0} 10 y 20 z 30 w"),
        format!("SADD {a1} z w v"),
        format!("ZUNION 3 {a0} {b0} {a1} WITHSCORES"),
        format!("ZINTER 2 {a0} {b0} WEIGHTS 2 3 WITHSCORES"),
        format!("ZDIFF 3 {a0} {b0} {a1} WITHSCORES"),
        format!("ZUNIONSTORE {b1} 2 {a0} {b0} AGGREGATE MAX"),
        format!("ZRANGE {b1} 0 -1 WITHSCORES"),
        format!("ZINTERSTORE {a1} 2 {a0} {b0}"),
        format!("ZRANGE {a1} 0 -1 WITHSCORES"),
        format!("ZDIFFSTORE {b1} 2 {a0} {b0}"),
        format!("ZRANGE {b1} 0 -1 WITHSCORES"),
        format!("ZINTERSTORE {b1} 2 {a0} nope"),
        format!("EXISTS {b1}"),
        format!("ZINTERCARD 2 {a0} {b0}"),
        format!("ZINTERCARD 2 {a0} {b0} LIMIT 1"),
        format!("ZRANGESTORE {b1} {a0} 0 1"),
        format!("ZRANGE {b1} 0 -1 WITHSCORES"),
        format!("ZRANGESTORE {b1} {a0} (1 +inf BYSCORE"),
        format!("ZRANGE {b1} 0 -1 WITHSCORES"),
        format!("ZMPOP 3 nope {b0} {a0} MAX COUNT 2"),
        format!("ZMPOP 2 {a0} {b0} MIN COUNT 10"),
        format!("EXISTS {a0}"),
        format!("SET {b1} str"),
        format!("ZUNION 2 {a0} {b1}"),
        format!("ZRANGESTORE {a1} {b1} 0 1"),
        format!("ZMPOP 2 nope {b1} MIN"),
        "DEBUG DIGEST".to_string(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_same_replies(&mut s.conn(), &mut r.conn(), &refs);
}

#[test]
fn cross_shard_stores_are_atomic_under_concurrent_writers() {
    let s = cascade(&[]);
    let a = keys_on(0, "src", 1).remove(0);
    let b = keys_on(1, "dst", 1).remove(0);
    let port = s.port;
    let (a2, b2) = (a.clone(), b.clone());
    let mut c = s.conn();
    for i in 1..=100 {
        c.cmd(&["ZADD", &a, &i.to_string(), &format!("m{i}")]);
    }
    // A writer moves members between the shards with a MULTI spanning
    // both; the union of both sets always has every member once.
    let writer = std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        for round in 0..200 {
            let i = round % 100 + 1;
            let m = format!("m{i}");
            let (from, to) = if (round / 100) % 2 == 0 {
                (&a2, &b2)
            } else {
                (&b2, &a2)
            };
            c.cmd(&["MULTI"]);
            c.cmd(&["ZREM", from, &m]);
            c.cmd(&["ZADD", to, &i.to_string(), &m]);
            c.cmd(&["EXEC"]);
        }
    });
    for _ in 0..200 {
        let n = c.cmd(&["ZUNIONSTORE", "{x}all", "2", &a, &b]).int();
        assert_eq!(n, 100);
        assert_eq!(c.cmd(&["ZINTERCARD", "2", &a, &b]).int(), 0);
    }
    writer.join().unwrap();
}

/// Sorted set writes of every kind, for the replication and RDB tests.
fn write_zsets(c: &mut Conn) {
    for i in 0..300 {
        c.cmd(&[
            "ZADD",
            "repl:big",
            &(i % 17).to_string(),
            &format!("member:{i}"),
        ]);
    }
    c.cmd(&[
        "ZADD",
        "repl:small",
        "1",
        "a",
        "2.5",
        "b",
        "-inf",
        "c",
        "1e300",
        "d",
    ]);
    c.cmd(&["ZADD", "repl:small", "-0", "zero"]);
    c.cmd(&["ZADD", "repl:big", "-0", "negzero", "0.1", "tenth"]);
    c.cmd(&["ZINCRBY", "repl:small", "0.1", "a"]);
    c.cmd(&["ZADD", "repl:small", "INCR", "3", "b"]);
    c.cmd(&["ZADD", "repl:small", "NX", "100", "a"]);
    c.cmd(&["ZREM", "repl:small", "nope"]);
    c.cmd(&["ZPOPMIN", "repl:big", "3"]);
    c.cmd(&["ZPOPMAX", "repl:big"]);
    c.cmd(&["ZREMRANGEBYSCORE", "repl:big", "(5", "7"]);
    c.cmd(&["ZREMRANGEBYRANK", "repl:big", "-3", "-1"]);
    c.cmd(&["ZADD", "repl:lex", "0", "a", "0", "b", "0", "c", "0", "d"]);
    c.cmd(&["ZREMRANGEBYLEX", "repl:lex", "[b", "(d"]);
    c.cmd(&[
        "ZUNIONSTORE",
        "repl:union",
        "2",
        "repl:small",
        "repl:lex",
        "WEIGHTS",
        "2",
        "3",
    ]);
    c.cmd(&["ZINTERSTORE", "repl:inter", "2", "repl:big", "repl:big"]);
    c.cmd(&["ZDIFFSTORE", "repl:diff", "2", "repl:big", "repl:small"]);
    c.cmd(&["ZRANGESTORE", "repl:range", "repl:big", "0", "9"]);
    c.cmd(&["ZINTERSTORE", "repl:none", "2", "repl:big", "nope"]);
    c.cmd(&["ZMPOP", "2", "nope", "repl:lex", "MAX", "COUNT", "5"]);
    c.cmd(&["ZADD", "repl:ttl", "1", "x"]);
    c.cmd(&["PEXPIRE", "repl:ttl", "5000000"]);
    let long = "l".repeat(100);
    c.cmd(&["ZADD", "repl:long", "1", &long]);
}

#[test]
fn replicas_of_a_cascade_master_converge() {
    require_tool("redis-server");
    let master = cascade(&["--repl-diskless-sync-delay", "0"]);
    let mut c = master.conn();
    c.cmd(&["ZADD", "before", "1", "x", "2", "y"]);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    let theirs = redis(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    write_zsets(&mut c);
    c.cmd(&["ZPOPMIN", "before", "10"]);
    wait_same_digest(&master, &ours);
    wait_same_digest(&master, &theirs);
    assert_eq!(theirs.conn().cmd(&["EXISTS", "before"]).int(), 0);
    assert_eq!(
        theirs
            .conn()
            .cmd(&["OBJECT", "ENCODING", "repl:long"])
            .text(),
        "skiplist"
    );
    // And a full sync of the result.
    let late = cascade(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &late);
    assert_eq!(
        late.conn()
            .cmd(&["OBJECT", "ENCODING", "repl:small"])
            .text(),
        "listpack"
    );
}

#[test]
fn a_cascade_replica_of_redis_gets_its_zsets() {
    let master = redis(&[]);
    let mut c = master.conn();
    write_zsets(&mut c);
    let port = master.port.to_string();
    let ours = cascade(&["--replicaof", "127.0.0.1", &port]);
    wait_same_digest(&master, &ours);
    c.cmd(&["ZADD", "after", "1", "a", "2", "b"]);
    c.cmd(&["ZMPOP", "1", "repl:big", "MIN", "COUNT", "4"]);
    c.cmd(&["ZINCRBY", "repl:small", "1.5", "c"]);
    wait_same_digest(&master, &ours);
}

#[test]
fn save_and_restart_keeps_zsets_and_encodings() {
    let mut s = cascade(&[]);
    let mut c = s.conn();
    write_zsets(&mut c);
    let before = digest(&mut c);
    let enc = |c: &mut Conn, k: &str| c.cmd(&["OBJECT", "ENCODING", k]).text();
    assert_eq!(enc(&mut c, "repl:small"), "listpack");
    assert_eq!(enc(&mut c, "repl:big"), "skiplist");
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(enc(&mut c, "repl:small"), "listpack");
    assert_eq!(enc(&mut c, "repl:big"), "skiplist");
    assert_eq!(enc(&mut c, "repl:long"), "skiplist");
    assert_rdb_ok(&s.dir.path().join("dump.rdb"));
}

#[test]
fn dumps_travel_between_redis_and_cascade() {
    let dir = TempDir::new("zset-interop");
    let d = dir.path().to_str().unwrap();
    let redis_digest = {
        let r = redis(&["--dir", d]);
        let mut c = r.conn();
        write_zsets(&mut c);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let ours_digest = {
        let s = cascade(&["--dir", d]);
        let mut c = s.conn();
        assert_eq!(digest(&mut c), redis_digest);
        assert_eq!(
            c.cmd(&["OBJECT", "ENCODING", "repl:small"]).text(),
            "listpack"
        );
        assert_eq!(
            c.cmd(&["OBJECT", "ENCODING", "repl:big"]).text(),
            "skiplist"
        );
        c.cmd(&["ZADD", "ours:small", "1", "a", "-inf", "b"]);
        for i in 0..200 {
            c.cmd(&["ZADD", "ours:big", &i.to_string(), &format!("m{i}")]);
        }
        std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        digest(&mut c)
    };
    let r = redis(&["--dir", d]);
    let mut c = r.conn();
    assert_eq!(digest(&mut c), ours_digest);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ours:small"]).text(),
        "listpack"
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ours:big"]).text(),
        "skiplist"
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "ours:small", "0", "-1", "WITHSCORES"]),
        Value::Array(vec![
            Value::bulk("b"),
            Value::bulk("-inf"),
            Value::bulk("a"),
            Value::bulk("1")
        ])
    );
}

/// A dump written by redis-server 7.0.15 (tests/fixtures): listpack and
/// skiplist sorted sets (ZSET_LISTPACK and ZSET_2 in the file).
#[test]
fn loads_the_redis_fixture() {
    let dir = TempDir::new("zset-fixture");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/redis-7.0.15-zset.rdb");
    std::fs::copy(&fixture, dir.path().join("dump.rdb")).unwrap();
    let s = cascade(&["--dir", dir.path().to_str().unwrap()]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "zsmall"]).text(), "listpack");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "zbig"]).text(), "skiplist");
    assert_eq!(c.cmd(&["ZCARD", "zbig"]).int(), 200);
    assert_eq!(
        c.cmd(&["ZRANGE", "zsmall", "0", "-1", "WITHSCORES"]),
        Value::Array(
            ["c", "-inf", "a", "1", "b", "2.5", "d", "inf"]
                .iter()
                .map(|s| Value::bulk(s))
                .collect()
        )
    );
    assert_eq!(c.cmd(&["ZSCORE", "zbig", "m7"]).text(), "3.5");
    assert_eq!(
        digest(&mut c),
        std::fs::read_to_string(fixture.with_extension("digest"))
            .unwrap()
            .trim()
    );
}

/// ZSCAN returns a listpack's scores as the text Redis stores (whole
/// scores up to LLONG_MAX/2 as integers), a skiplist's as %.17g.
#[test]
fn zscan_scores_read_as_redis_stores_them() {
    run_script(
        "2",
        &[
            "ZADD zl 123456789012345678 a 1e18 b 1.5 c -0 d 5e18 e -4e18 f",
            "ZSCAN zl 0",
            "CONFIG SET zset-max-listpack-entries 0",
            "ZADD zs 123456789012345678 a 1e18 b 1.5 c",
            "OBJECT ENCODING zs",
            "~ZSCAN zs 0",
        ],
    );
}
