//! Bitmap commands (SETBIT GETBIT BITCOUNT BITPOS) checked against Debian's
//! redis-server: the same commands go to both servers and every reply,
//! errors included, must be the same; then the datasets' digests must be.
//! A fixed list covers the documented edge cases, and a seeded random walk
//! covers ranges in both units with negative indexes.

mod common;
use common::{Server, Value};

/// Sends `args` to both servers and asserts the replies are equal.
fn same(ours: &mut common::Conn, redis: &mut common::Conn, args: &[&[u8]]) -> Value {
    let a = ours.cmdb(args);
    let b = redis.cmdb(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(a, b, "{shown:?}");
    a
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

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
fn setbit_reaches_replicas_and_survives_a_restart() {
    let master = common::repl::start(&["--shards", "2"]);
    let port = master.port.to_string();
    let mut replica = common::repl::start(&["--replicaof", "127.0.0.1", &port]);
    let mut c = master.conn();
    for i in (0..5000).step_by(7) {
        assert_eq!(c.cmd(&["SETBIT", "bm", &i.to_string(), "1"]), Value::Int(0));
    }
    assert_eq!(c.cmd(&["SETBIT", "bm", "14", "0"]), Value::Int(1));
    common::repl::wait_in_sync(&master, &replica, None);
    let count = c.cmd(&["BITCOUNT", "bm"]);
    assert_eq!(count, Value::Int(714));
    assert_eq!(replica.conn().cmd(&["BITCOUNT", "bm"]), count);
    assert_eq!(replica.conn().cmd(&["SAVE"]), Value::ok());
    replica.restart();
    assert_eq!(replica.conn().cmd(&["BITCOUNT", "bm"]), count);
    assert_eq!(replica.conn().cmd(&["GETBIT", "bm", "4999"]), Value::Int(0));
    assert_eq!(replica.conn().cmd(&["GETBIT", "bm", "4991"]), Value::Int(1));
}
