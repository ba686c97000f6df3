//! Bitmap commands (SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO), and LCS, checked against Debian's redis-server: the same commands go to both servers and every reply,
//! errors included, must be the same; then the datasets' digests must be.
//! A fixed list covers the documented edge cases, and a seeded random walk
//! covers ranges in both units with negative indexes.

mod common;
use common::{Server, Value};

/// Sends `args` to both servers and asserts the replies are equal.
fn same(ours: &mut common::Conn, redis: &mut common::Conn, args: &[&[u8]]) -> Value {
    common::assert_same_reply(ours, redis, args)
}

use common::Rng;

#[test]
fn bitmap_commands_answer_like_redis() {
    let ours_server = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let redis_server = Server::start_redis(&["--enable-debug-command", "yes"]);
    let (mut o, mut r) = (ours_server.conn(), redis_server.conn());
    let fixed: &[&[&str]] = &[
        &["SET", "foo", "foobar"],
        &["SET", "empty", ""],
        &["SET", "num", "12345"],
        &["RPUSH", "list", "a"],
        &["GETBIT", "foo", "1"],
        &["GETBIT", "foo", "0"],
        &["GETBIT", "foo", "47"],
        &["GETBIT", "foo", "48"],
        &["GETBIT", "foo", "100000"],
        &["GETBIT", "missing", "7"],
        &["GETBIT", "num", "2"],
        &["GETBIT", "foo", "-1"],
        &["GETBIT", "foo", "x"],
        &["GETBIT", "foo", "4294967295"],
        &["GETBIT", "foo", "4294967296"],
        &["GETBIT", "list", "0"],
        &["GETBIT", "foo"],
        &["SETBIT", "foo", "7", "1"],
        &["SETBIT", "foo", "7", "1"],
        &["SETBIT", "foo", "7", "0"],
        &["SETBIT", "new", "100", "1"],
        &["STRLEN", "new"],
        &["SETBIT", "new2", "9", "0"],
        &["STRLEN", "new2"],
        &["SETBIT", "num", "0", "1"],
        &["OBJECT", "ENCODING", "num"],
        &["SETBIT", "foo", "1", "2"],
        &["SETBIT", "foo", "1", "-1"],
        &["SETBIT", "foo", "1", "x"],
        &["SETBIT", "foo", "-1", "1"],
        &["SETBIT", "foo", "x", "2"],
        &["SETBIT", "foo", "4294967296", "1"],
        &["SETBIT", "list", "0", "1"],
        &["SETBIT", "list", "-1", "1"],
        &["SETBIT", "empty", "3", "1"],
        &["BITCOUNT", "foo"],
        &["BITCOUNT", "foo", "0", "0"],
        &["BITCOUNT", "foo", "1", "1"],
        &["BITCOUNT", "foo", "-2", "-1"],
        &["BITCOUNT", "foo", "5", "30", "BIT"],
        &["BITCOUNT", "foo", "-3", "-1", "bit"],
        &["BITCOUNT", "foo", "-1", "-5"],
        &["BITCOUNT", "foo", "-10", "-20"],
        &["BITCOUNT", "foo", "-20", "-10"],
        &["BITCOUNT", "foo", "0", "-100"],
        &["BITCOUNT", "foo", "1"],
        &["BITCOUNT", "foo", "1", "2", "NIBBLE"],
        &["BITCOUNT", "foo", "1", "2", "BIT", "x"],
        &["BITCOUNT", "foo", "a", "2"],
        &["BITCOUNT", "missing"],
        &["BITCOUNT", "missing", "1"],
        &["BITCOUNT", "missing", "a", "b"],
        &["BITCOUNT", "list"],
        &["BITCOUNT"],
        &["BITPOS", "foo", "1"],
        &["BITPOS", "foo", "0"],
        &["BITPOS", "foo", "2"],
        &["BITPOS", "foo", "x"],
        &["BITPOS", "foo", "1", "2"],
        &["BITPOS", "foo", "0", "-1"],
        &["BITPOS", "foo", "1", "1", "2"],
        &["BITPOS", "foo", "0", "1", "2"],
        &["BITPOS", "foo", "1", "7", "15", "BIT"],
        &["BITPOS", "foo", "0", "7", "15", "BIT"],
        &["BITPOS", "foo", "1", "5", "2"],
        &["BITPOS", "foo", "1", "1", "2", "WORD"],
        &["BITPOS", "foo", "1", "a"],
        &["BITPOS", "missing", "1"],
        &["BITPOS", "missing", "0"],
        &["BITPOS", "missing", "0", "a"],
        &["BITPOS", "missing", "3"],
        &["BITPOS", "list", "1"],
        &["BITPOS", "empty", "0"],
        &["BITPOS", "foo"],
        &["SET", "ones", "\u{7f}"],
        &["SETBIT", "ones", "0", "1"],
        &["BITPOS", "ones", "0"],
        &["BITPOS", "ones", "0", "0", "-1"],
        &["BITPOS", "ones", "0", "0", "-1", "BIT"],
        &["BITPOS", "ones", "0", "2", "5", "BIT"],
        &["SET", "zeros", "\u{0}\u{0}\u{0}"],
        &["BITPOS", "zeros", "1"],
        &["BITPOS", "zeros", "0", "1"],
        &["BITPOS", "zeros", "1", "3", "20", "BIT"],
    ];
    for cmd in fixed {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        same(&mut o, &mut r, &args);
    }
    // A seeded walk: random bits set and cleared on a few keys, then random
    // ranges counted and searched in both units.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let keys = [&b"b0"[..], b"b1", b"b2", b"foo"];
    for step in 0..3000 {
        let key = keys[(rng.next() % keys.len() as u64) as usize];
        let (a, b) = (
            rng.range(-40, 300).to_string(),
            rng.range(-40, 300).to_string(),
        );
        let unit: &[u8] = match rng.next() % 3 {
            0 => b"BYTE",
            1 => b"BIT",
            _ => b"bit",
        };
        match step % 5 {
            0 | 1 => {
                let offset = rng.range(0, 2400).to_string();
                let bit: &[u8] = if rng.next().is_multiple_of(3) {
                    b"0"
                } else {
                    b"1"
                };
                same(&mut o, &mut r, &[b"SETBIT", key, offset.as_bytes(), bit])
            }
            2 => same(
                &mut o,
                &mut r,
                &[b"BITCOUNT", key, a.as_bytes(), b.as_bytes(), unit],
            ),
            3 => {
                let bit: &[u8] = if rng.next().is_multiple_of(2) {
                    b"0"
                } else {
                    b"1"
                };
                match rng.next() % 3 {
                    0 => same(&mut o, &mut r, &[b"BITPOS", key, bit, a.as_bytes()]),
                    1 => same(
                        &mut o,
                        &mut r,
                        &[b"BITPOS", key, bit, a.as_bytes(), b.as_bytes()],
                    ),
                    _ => same(
                        &mut o,
                        &mut r,
                        &[b"BITPOS", key, bit, a.as_bytes(), b.as_bytes(), unit],
                    ),
                }
            }
            _ => {
                let offset = rng.range(0, 2600).to_string();
                same(&mut o, &mut r, &[b"GETBIT", key, offset.as_bytes()])
            }
        };
    }
    for key in keys {
        same(&mut o, &mut r, &[b"GET", key]);
    }
    assert_eq!(o.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DEBUG", "DIGEST"]));
}

#[test]
fn bitop_and_bitfield_answer_like_redis() {
    // Two shards: BITOP's keys spread over both.
    let ours_server = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let redis_server = Server::start_redis(&["--enable-debug-command", "yes"]);
    let (mut o, mut r) = (ours_server.conn(), redis_server.conn());
    let fixed: &[&[&str]] = &[
        &["SET", "a", "foobar"],
        &["SET", "b", "abcdef\u{1}\u{2}"],
        &["SET", "e", ""],
        &["RPUSH", "list", "x"],
        &["BITOP", "AND", "d", "a", "b"],
        &["GET", "d"],
        &["BITOP", "or", "d", "a", "b", "missing"],
        &["GET", "d"],
        &["BITOP", "XOR", "d", "a", "b"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a", "b"],
        &["BITOP", "NAND", "d", "a"],
        &["BITOP", "AND", "d"],
        &["BITOP", "AND", "d", "a", "list"],
        &["BITOP", "AND", "list", "a"],
        &["TYPE", "list"],
        &["SET", "withttl", "x", "EX", "100"],
        &["BITOP", "OR", "withttl", "a"],
        &["TTL", "withttl"],
        &["OBJECT", "ENCODING", "withttl"],
        &["BITOP", "AND", "d", "missing", "e"],
        &["EXISTS", "d"],
        &["BITOP", "AND", "a", "a", "b"],
        &["GET", "a"],
        &[
            "BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "u4", "0", "INCRBY", "i5", "100", "1",
        ],
        &["GET", "bf"],
        &[
            "BITFIELD", "bf", "GET", "i8", "#1", "GET", "u8", "#0", "GET", "i64", "0",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "200", "INCRBY", "i8", "8",
            "-300",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5", "GET", "u2", "100",
        ],
        &["GET", "bf"],
        &[
            "BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u2", "100", "5", "INCRBY", "i3", "0",
            "-9",
        ],
        &[
            "BITFIELD",
            "bf",
            "SET",
            "u63",
            "#1",
            "-1",
            "SET",
            "i64",
            "200",
            "-9223372036854775808",
        ],
        &[
            "BITFIELD", "bf", "INCRBY", "i64", "200", "-1", "OVERFLOW", "SAT", "INCRBY", "i64",
            "200", "-1",
        ],
        &[
            "BITFIELD", "bf", "SET", "u8", "0", "256", "OVERFLOW", "SAT", "SET", "u8", "8", "-1",
            "SET", "i4", "16", "9",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "SET", "i8", "8", "127",
        ],
        &["GET", "bf"],
        &["BITFIELD", "bf", "GET", "u64", "0"],
        &["BITFIELD", "bf", "GET", "i65", "0"],
        &["BITFIELD", "bf", "GET", "i0", "0"],
        &["BITFIELD", "bf", "GET", "I8", "0"],
        &["BITFIELD", "bf", "GET", "u8", "-1"],
        &["BITFIELD", "bf", "GET", "u8", "#-1"],
        &["BITFIELD", "bf", "GET", "u8", "4294967296"],
        &["BITFIELD", "bf", "GET", "u8", "x"],
        &["BITFIELD", "bf", "SET", "u8", "0", "x"],
        &["BITFIELD", "bf", "SET", "u8", "0"],
        &["BITFIELD", "bf", "GET", "u8"],
        &["BITFIELD", "bf", "OVERFLOW", "NOPE", "GET", "u8", "0"],
        &["BITFIELD", "bf", "OVERFLOW"],
        &["BITFIELD", "bf", "DANCE"],
        &["BITFIELD", "bf"],
        &["BITFIELD", "missing", "GET", "u8", "0"],
        &["EXISTS", "missing"],
        &["BITFIELD", "grow", "SET", "u8", "#10", "1"],
        &["STRLEN", "grow"],
        &[
            "BITFIELD", "failgrow", "OVERFLOW", "FAIL", "INCRBY", "u1", "100", "2",
        ],
        &["GET", "failgrow"],
        &["BITFIELD", "list", "GET", "u8", "0"],
        &["BITFIELD", "list", "SET", "u8", "0", "1"],
        &["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i4", "#3"],
        &["BITFIELD_RO", "bf", "SET", "u8", "0", "1"],
        &[
            "BITFIELD_RO",
            "bf",
            "GET",
            "u8",
            "0",
            "INCRBY",
            "u8",
            "0",
            "1",
        ],
        &[
            "BITFIELD_RO",
            "bf",
            "INCRBY",
            "u8",
            "0",
            "1",
            "GET",
            "u99",
            "0",
        ],
        &["BITFIELD_RO", "missing", "GET", "u8", "0"],
        &["BITFIELD_RO", "list", "GET", "u8", "0"],
        &["BITFIELD_RO", "bf"],
        &["GET", "bf"],
    ];
    for cmd in fixed {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        same(&mut o, &mut r, &args);
    }
    // A seeded walk over fields of every width, signedness and mode, and
    // BITOPs over keys of either shard.
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let keys = [&b"f0"[..], b"f1", b"f2", b"f3"];
    let modes: [&[u8]; 3] = [b"WRAP", b"SAT", b"FAIL"];
    for _ in 0..3000 {
        let key = keys[(rng.next() % keys.len() as u64) as usize];
        let signed = rng.next().is_multiple_of(2);
        let bits = 1 + rng.next() % if signed { 64 } else { 63 };
        let ty = format!("{}{bits}", if signed { "i" } else { "u" });
        let offset = if rng.next().is_multiple_of(4) {
            format!("#{}", rng.range(0, 20))
        } else {
            rng.range(0, 300).to_string()
        };
        let value = match rng.next() % 4 {
            0 => rng.range(-5, 5),
            1 => rng.range(-300, 300),
            2 => rng.next() as i64,
            _ => [i64::MIN, i64::MAX, -1, 1 << 62][(rng.next() % 4) as usize],
        }
        .to_string();
        let mode = modes[(rng.next() % 3) as usize];
        match rng.next() % 8 {
            0..=2 => same(
                &mut o,
                &mut r,
                &[
                    b"BITFIELD",
                    key,
                    b"OVERFLOW",
                    mode,
                    b"INCRBY",
                    ty.as_bytes(),
                    offset.as_bytes(),
                    value.as_bytes(),
                ],
            ),
            3 | 4 => same(
                &mut o,
                &mut r,
                &[
                    b"BITFIELD",
                    key,
                    b"OVERFLOW",
                    mode,
                    b"SET",
                    ty.as_bytes(),
                    offset.as_bytes(),
                    value.as_bytes(),
                ],
            ),
            5 => same(
                &mut o,
                &mut r,
                &[
                    b"BITFIELD_RO",
                    key,
                    b"GET",
                    ty.as_bytes(),
                    offset.as_bytes(),
                ],
            ),
            _ => {
                let op: &[u8] = [&b"AND"[..], b"OR", b"XOR", b"NOT"][(rng.next() % 4) as usize];
                let dest = keys[(rng.next() % keys.len() as u64) as usize];
                let src = keys[(rng.next() % keys.len() as u64) as usize];
                if op == b"NOT" {
                    same(&mut o, &mut r, &[b"BITOP", op, dest, src])
                } else {
                    same(&mut o, &mut r, &[b"BITOP", op, dest, src, key, b"nokey"])
                }
            }
        };
    }
    for key in keys {
        same(&mut o, &mut r, &[b"GET", key]);
    }
    assert_eq!(o.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DEBUG", "DIGEST"]));
}

#[test]
fn bitmap_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "setbit",
        "getbit",
        "bitcount",
        "bitpos",
        "bitop",
        "bitfield",
        "bitfield_ro",
        "lcs",
    ]);
}

#[test]
fn setbit_reaches_replicas_and_survives_a_restart() {
    let master = common::repl::start(&["--shards", "2"]);
    let port = master.port.to_string();
    let mut replica = common::repl::start(&["--replicaof", "127.0.0.1", &port]);
    let mut c = master.conn();
    for i in (0..5000).step_by(7) {
        assert_eq!(c.cmd(&["SETBIT", "bm", &i.to_string(), "1"]), Value::Int(0));
    }
    assert_eq!(c.cmd(&["SETBIT", "bm", "14", "0"]), Value::Int(1));
    // BITOP over keys on both shards, and BITFIELD writes (one refused
    // by FAIL still grows the string), reach the replica too.
    for i in 0..20 {
        let k = format!("src{i}");
        c.cmd(&[
            "BITFIELD",
            &k,
            "OVERFLOW",
            "FAIL",
            "INCRBY",
            "u4",
            "#3",
            "20",
            "SET",
            "i8",
            "8",
            &i.to_string(),
        ]);
    }
    let mut bitop = vec!["BITOP", "OR", "ored"];
    let srcs: Vec<String> = (0..20).map(|i| format!("src{i}")).collect();
    bitop.extend(srcs.iter().map(String::as_str));
    assert_eq!(c.cmd(&bitop), Value::Int(2));
    common::repl::wait_in_sync(&master, &replica, None);
    assert_eq!(
        replica.conn().cmd(&["GET", "ored"]),
        c.cmd(&["GET", "ored"])
    );
    assert_eq!(
        replica
            .conn()
            .cmd(&["BITFIELD_RO", "src7", "GET", "i8", "8"]),
        Value::Array(vec![Value::Int(7)])
    );
    let count = c.cmd(&["BITCOUNT", "bm"]);
    assert_eq!(count, Value::Int(714));
    assert_eq!(replica.conn().cmd(&["BITCOUNT", "bm"]), count);
    assert_eq!(replica.conn().cmd(&["SAVE"]), Value::ok());
    replica.restart();
    assert_eq!(replica.conn().cmd(&["BITCOUNT", "bm"]), count);
    assert_eq!(replica.conn().cmd(&["GETBIT", "bm", "4999"]), Value::Int(0));
    assert_eq!(replica.conn().cmd(&["GETBIT", "bm", "4991"]), Value::Int(1));
}

#[test]
fn lcs_answers_like_redis() {
    let ours_server = Server::start(&["--shards", "2"]);
    let redis_server = Server::start_redis(&[]);
    let (mut o, mut r) = (ours_server.conn(), redis_server.conn());
    // Keys on both shards, so some pairs coordinate across them.
    let keys: Vec<String> = (0..6).map(|i| format!("lcs{i}")).collect();
    let fixed: &[&[&str]] = &[
        &["SET", "key1", "ohmytext"],
        &["SET", "key2", "mynewtext"],
        &["LCS", "key1", "key2"],
        &["LCS", "key1", "key2", "LEN"],
        &["LCS", "key1", "key2", "IDX"],
        &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN",
        ],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "WITHMATCHLEN",
            "MINMATCHLEN",
            "-3",
        ],
        &["LCS", "key1", "key2", "IDX", "LEN"],
        &["LCS", "key1", "key2", "MINMATCHLEN"],
        &["LCS", "key1", "key2", "MINMATCHLEN", "x"],
        &["LCS", "key1", "key2", "BOGUS"],
        &["LCS", "key1", "missing"],
        &["LCS", "missing", "missing2", "IDX"],
        &["RPUSH", "list", "a"],
        &["LCS", "key1", "list"],
        &["LCS", "list", "missing"],
        &["LCS", "key1"],
    ];
    for cmd in fixed {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        same(&mut o, &mut r, &args);
    }
    let mut rng = Rng(0xdead_beef_1234_5678);
    for _ in 0..300 {
        for k in &keys[..2] {
            let len = rng.below(40) as usize;
            let text: String = (0..len)
                .map(|_| (b'a' + rng.below(4) as u8) as char)
                .collect();
            same(&mut o, &mut r, &[b"SET", k.as_bytes(), text.as_bytes()]);
        }
        let (a, b) = (
            keys[0].as_bytes(),
            keys[(1 + rng.below(5)) as usize].as_bytes(),
        );
        let min = rng.below(4).to_string();
        same(&mut o, &mut r, &[b"LCS", a, b]);
        same(
            &mut o,
            &mut r,
            &[
                b"LCS",
                a,
                b,
                b"IDX",
                b"WITHMATCHLEN",
                b"MINMATCHLEN",
                min.as_bytes(),
            ],
        );
    }
}

/// Range and check order of BITCOUNT/BITPOS, and SETBIT's raw copy, reply
/// for reply with a real redis-server (found by differential fuzzing).
#[test]
fn bit_ranges_and_check_order_match_redis() {
    common::family::run_script(
        "2",
        &[
            "SET s ab",
            "BITPOS s 1 -9 -13",
            "BITPOS s 0 -5 -100",
            "BITPOS s 1 -1 -2 BIT",
            "BITCOUNT s -1 -2 bad",
            "BITCOUNT s -2 -1 bad",
            "BITCOUNT s -1 -2",
            "BITPOS s 1 0 x bad",
            "BITPOS s 1 0 x BIT",
            "OBJECT ENCODING s",
            "SETBIT s 1 1",
            "OBJECT ENCODING s",
            "SET t ab",
            "SETBIT t 1 0",
            "OBJECT ENCODING t",
            "GET t",
        ],
    );
}
