//! Tests of the RDB module: round trips, exact encodings, robustness against
//! truncated and mutated input, and interop with a real Redis 7.0
//! (`redis-server`, `redis-cli`, `redis-check-rdb` must be installed; the
//! interop tests fail, never skip, when they are missing). The module code
//! itself does no I/O; only these tests touch files, processes and sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::crc64::crc64;
use super::format;
use super::{
    EncodeOptions, KeyStamp, RdbDecoder, RdbEncoder, RdbEntry, RdbError, RdbItem, RdbValue,
};

// ---------------------------------------------------------------- helpers

struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `base` plus up to `extra - 1` random bytes.
    fn bytes_len(&mut self, base: usize, extra: u64) -> Vec<u8> {
        let n = base + self.below(extra) as usize;
        self.bytes(n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    db: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    expire_at_ms: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn rec(db: u32, key: &[u8], value: &[u8], expire_at_ms: Option<u64>) -> Rec {
    Rec {
        db,
        key: key.to_vec(),
        value: value.to_vec(),
        expire_at_ms,
    }
}

/// The fixed interop dataset; expires are one hour or more in the future.
fn dataset() -> Vec<Rec> {
    let base = now_ms() + 3_600_000;
    let mut p = Prng(0xDEADBEEF);
    let noise = p.bytes(100);
    let mut v = vec![
        rec(0, b"int_small", b"42", None),
        rec(0, b"int_zero", b"0", None),
        rec(0, b"int_neg", b"-17", None),
        rec(0, b"int16", b"1000", None),
        rec(0, b"int16neg", b"-30000", None),
        rec(0, b"int32", b"2147483647", None),
        rec(0, b"int32neg", b"-2147483648", None),
        rec(0, b"int_11_digits", b"12345678901", None),
        rec(0, b"int64", b"9223372036854775807", None),
        rec(0, b"int64neg", b"-9223372036854775808", None),
        rec(0, b"not_int_plus", b"+5", None),
        rec(0, b"not_int_lead0", b"007", None),
        rec(0, b"not_int_minus0", b"-0", None),
        rec(0, b"short", b"hello", None),
        rec(0, b"len63", &[b'x'; 63], None),
        rec(0, b"len64", &[b'y'; 64], None),
        rec(0, b"long_comp", &[b'a'; 10000], None),
        rec(0, b"long_20k", &vec![b'q'; 20000], None),
        rec(0, b"binary", b"a\0b\r\nc\xff\x00", None),
        rec(0, b"bin\0key\r\n", b"value-of-binary-key", None),
        rec(0, b"", b"empty-key-value", None),
        rec(0, b"empty_val", b"", None),
        rec(0, b"noise", &noise, None),
        rec(0, b"ttl_short", b"x", Some(base)),
        rec(0, b"ttl_long_value", &[b'b'; 5000], Some(base + 1234)),
        rec(0, b"ttl_int", b"77", Some(base + 99_999)),
    ];
    v.push(rec(3, b"db3_a", b"three", None));
    v.push(rec(3, b"db3_ttl", b"-5", Some(base + 500)));
    v.push(rec(3, b"short", b"same key other db", None));
    v.push(rec(15, b"db15", b"fifteen", None));
    v.push(rec(15, b"db15_ttl", &[b'z'; 300], Some(base + 7)));
    v
}

fn dbs_of(recs: &[Rec]) -> Vec<u32> {
    let mut dbs: Vec<u32> = recs.iter().map(|r| r.db).collect();
    dbs.sort_unstable();
    dbs.dedup();
    dbs
}

fn encode(recs: &[Rec], opts: EncodeOptions) -> Vec<u8> {
    let mut enc = RdbEncoder::new(Vec::new(), opts).unwrap();
    enc.aux(b"redis-ver", b"7.0.15").unwrap();
    enc.aux(b"redis-bits", b"64").unwrap();
    enc.aux(b"ctime", now_ms().to_string().as_bytes()).unwrap();
    enc.aux(b"used-mem", b"1000000").unwrap();
    enc.aux(b"aof-base", b"0").unwrap();
    for db in dbs_of(recs) {
        let in_db: Vec<&Rec> = recs.iter().filter(|r| r.db == db).collect();
        let expires = in_db.iter().filter(|r| r.expire_at_ms.is_some()).count();
        enc.select_db(db, in_db.len() as u64, expires as u64)
            .unwrap();
        for r in in_db {
            let value = RdbValue::String(Bytes::from(r.value.clone()));
            enc.entry(&r.key, &value, r.expire_at_ms).unwrap();
        }
    }
    enc.finish().unwrap()
}

struct Decoded {
    version: u32,
    aux: Vec<(Bytes, Bytes)>,
    entries: Vec<RdbEntry>,
    functions: Vec<Bytes>,
}

fn decode(data: &[u8]) -> Result<Decoded, RdbError> {
    let mut dec = RdbDecoder::new(data)?;
    let mut out = Decoded {
        version: dec.version(),
        aux: Vec::new(),
        entries: Vec::new(),
        functions: Vec::new(),
    };
    // Every item consumes at least one byte, so this bound is never hit by
    // a well-behaved decoder.
    for _ in 0..=data.len() {
        match dec.next()? {
            RdbItem::Aux(k, v) => out.aux.push((k, v)),
            RdbItem::Entry(e) => out.entries.push(e),
            RdbItem::Function(code) => out.functions.push(code),
            RdbItem::SelectDb(_) | RdbItem::ResizeDb(..) => {}
            RdbItem::Eof => {
                assert_eq!(dec.offset(), data.len() as u64, "trailing bytes");
                assert_eq!(dec.next().unwrap(), RdbItem::Eof);
                return Ok(out);
            }
        }
    }
    panic!("decoder did not make progress");
}

fn to_recs(entries: &[RdbEntry]) -> Vec<Rec> {
    entries
        .iter()
        .map(|e| {
            let RdbValue::String(v) = &e.value else {
                panic!("not a string entry: {e:?}")
            };
            rec(e.db, &e.key, v, e.expire_at_ms)
        })
        .collect()
}

fn sorted(mut v: Vec<Rec>) -> Vec<Rec> {
    v.sort_by(|a, b| (a.db, &a.key).cmp(&(b.db, &b.key)));
    v
}

const ALL_OPTS: [(bool, bool); 4] = [(true, true), (true, false), (false, true), (false, false)];

fn opts(compress: bool, checksum: bool) -> EncodeOptions {
    EncodeOptions {
        version: 10,
        compress,
        checksum,
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("cascade-rdb-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------- redis harness

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path, dbfilename: &str) -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--dbfilename", dbfilename])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); the interop tests need Redis 7.0 \
                     installed (Debian: apt-get install redis-server redis-tools)"
                )
            });
        let mut r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = r.conn() {
                if let Ok(Reply::Simple(s)) = c.cmd(&[b"PING"]) {
                    if s == "PONG" {
                        return r;
                    }
                }
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited early ({status}); log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn conn(&self) -> std::io::Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); install redis-tools"));
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// A minimal binary-safe RESP2 client (redis-cli cannot take keys with NUL
/// bytes as arguments).
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Client {
    fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.w.write_all(&resp_command(args))?;
        self.reply()
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        self.r.read_line(&mut l)?;
        Ok(l.trim_end_matches("\r\n").to_string())
    }

    fn reply(&mut self) -> std::io::Result<Reply> {
        let l = self.line()?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad reply");
        let (t, rest) = l.split_at(1.min(l.len()));
        Ok(match t {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut b = vec![0u8; n as usize + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Reply::Bulk(Some(b))
                }
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                let mut v = Vec::new();
                for _ in 0..n.max(0) {
                    v.push(self.reply()?);
                }
                Reply::Array(v)
            }
            _ => return Err(bad()),
        })
    }
}

/// Loads `recs` through `redis-cli --pipe` (binary-safe RESP on stdin).
fn load_with_redis_cli(redis: &Redis, recs: &[Rec]) {
    let mut input = Vec::new();
    for r in recs {
        input.extend(resp_command(&[b"SELECT", r.db.to_string().as_bytes()]));
        input.extend(resp_command(&[b"SET", &r.key, &r.value]));
        if let Some(ms) = r.expire_at_ms {
            input.extend(resp_command(&[
                b"PEXPIREAT",
                &r.key,
                ms.to_string().as_bytes(),
            ]));
        }
    }
    let mut child = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); install redis-tools"));
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("errors: 0"), "{text}");
}

/// Checks DBSIZE of all 16 dbs (via redis-cli) and every value, absolute
/// expire and TTL (via the RESP client).
fn verify_in_redis(redis: &Redis, recs: &[Rec]) {
    for db in 0..16u32 {
        let expected = recs.iter().filter(|r| r.db == db).count();
        let got = redis.cli(&["-n", &db.to_string(), "DBSIZE"]);
        assert_eq!(got, expected.to_string(), "DBSIZE of db {db}");
    }
    let mut c = redis.conn().unwrap();
    let now = now_ms();
    for r in recs {
        let db = r.db.to_string();
        assert_eq!(
            c.cmd(&[b"SELECT", db.as_bytes()]).unwrap(),
            Reply::Simple("OK".into())
        );
        let got = c.cmd(&[b"GET", &r.key]).unwrap();
        assert_eq!(
            got,
            Reply::Bulk(Some(r.value.clone())),
            "value of {:?} in db {}",
            r.key,
            r.db
        );
        let pexpiretime = c.cmd(&[b"PEXPIRETIME", &r.key]).unwrap();
        let pttl = c.cmd(&[b"PTTL", &r.key]).unwrap();
        match r.expire_at_ms {
            None => {
                assert_eq!(pexpiretime, Reply::Int(-1), "{:?}", r.key);
                assert_eq!(pttl, Reply::Int(-1), "{:?}", r.key);
            }
            Some(ms) => {
                assert_eq!(pexpiretime, Reply::Int(ms as i64), "{:?}", r.key);
                let Reply::Int(t) = pttl else {
                    panic!("PTTL reply {pttl:?}")
                };
                assert!(
                    t > 0 && t as u64 <= ms - now + 1000,
                    "PTTL {t} of {:?}",
                    r.key
                );
            }
        }
    }
}

// ------------------------------------------------------------ interop

#[test]
fn golden_redis_dump_decodes() {
    let dir = TempDir::new("golden");
    let recs = dataset();
    let redis = Redis::start(&dir.0, "dump.rdb");
    load_with_redis_cli(&redis, &recs);
    assert_eq!(redis.cli(&["SAVE"]), "OK");
    drop(redis);
    let data = std::fs::read(dir.0.join("dump.rdb")).unwrap();
    let d = decode(&data).unwrap_or_else(|e| panic!("decoding Redis's dump: {e}"));
    assert_eq!(d.version, 10);
    assert!(d
        .aux
        .iter()
        .any(|(k, v)| &k[..] == b"redis-ver" && &v[..] == b"7.0.15"));
    assert!(d
        .aux
        .iter()
        .any(|(k, v)| &k[..] == b"redis-bits" && &v[..] == b"64"));
    assert_eq!(sorted(to_recs(&d.entries)), sorted(recs));
    // Redis LZF-compressed the long values (30 KB of them), so the LZF
    // decoding path was exercised.
    assert!(data.len() < 10_000, "{} bytes", data.len());
}

#[test]
fn our_files_pass_redis_check_rdb_and_load_into_redis() {
    let recs = dataset();
    for (compress, checksum) in ALL_OPTS {
        let dir = TempDir::new("ours");
        let name = format!("ours-c{}-k{}.rdb", compress as u8, checksum as u8);
        let data = encode(&recs, opts(compress, checksum));
        let path = dir.0.join(&name);
        std::fs::write(&path, &data).unwrap();

        let out = Command::new("redis-check-rdb")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-check-rdb ({e}); install redis-tools"));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "redis-check-rdb failed on {name}:\n{text}"
        );
        assert!(text.contains("RDB looks OK"), "{name}:\n{text}");
        if checksum {
            assert!(text.contains("Checksum OK"), "{name}:\n{text}");
        }

        let redis = Redis::start(&dir.0, &name);
        verify_in_redis(&redis, &recs);
    }
}

// ---------------------------------------------------------- round trips

fn random_dataset(p: &mut Prng) -> Vec<Rec> {
    let n = p.below(40) as usize;
    let mut out: Vec<Rec> = Vec::new();
    for i in 0..n {
        let db = [0, 1, 3, 15, 200][p.below(5) as usize];
        let mut key = p.bytes_len(0, 20);
        key.extend_from_slice(format!("#{i}").as_bytes());
        let value = match p.below(7) {
            0 => (p.next() as i64 >> p.below(64)).to_string().into_bytes(),
            1 => (p.below(300) as i64 - 150).to_string().into_bytes(),
            2 => p.bytes_len(0, 100),
            3 => vec![b'r'; p.below(70_000) as usize],
            4 => {
                let unit = p.bytes_len(1, 12);
                unit.repeat(p.below(500) as usize)
            }
            5 => format!("0{}", p.below(1000)).into_bytes(),
            _ => p.bytes_len(16380, 10),
        };
        let expire_at_ms = match p.below(3) {
            0 => Some(p.next() >> 1),
            1 => Some(p.below(1 << 45)),
            _ => None,
        };
        out.push(Rec {
            db,
            key,
            value,
            expire_at_ms,
        });
    }
    out
}

#[test]
fn random_round_trips() {
    let mut p = Prng(42);
    for _ in 0..60 {
        let recs = random_dataset(&mut p);
        for (compress, checksum) in ALL_OPTS {
            let data = encode(&recs, opts(compress, checksum));
            let d = decode(&data).unwrap();
            // Entries come back grouped by db in encounter order.
            let mut expected = Vec::new();
            for db in dbs_of(&recs) {
                expected.extend(recs.iter().filter(|r| r.db == db).cloned());
            }
            assert_eq!(to_recs(&d.entries), expected);
            assert_eq!(d.aux.len(), 5);
        }
    }
}

#[test]
fn round_trip_every_version() {
    let recs = dataset();
    for version in 1..=12 {
        let o = EncodeOptions {
            version,
            compress: true,
            checksum: true,
        };
        let data = encode(&recs, o);
        let d = decode(&data).unwrap();
        assert_eq!(d.version, version);
        assert_eq!(sorted(to_recs(&d.entries)), sorted(recs.clone()));
    }
    assert!(RdbEncoder::new(
        Vec::new(),
        EncodeOptions {
            version: 0,
            ..opts(true, true)
        }
    )
    .is_err());
    assert!(RdbEncoder::new(
        Vec::new(),
        EncodeOptions {
            version: 13,
            ..opts(true, true)
        }
    )
    .is_err());
}

// ------------------------------------------------------ exact encodings

fn string_entry_bytes(value: &[u8], compress: bool) -> Vec<u8> {
    let mut enc = RdbEncoder::new(Vec::new(), opts(compress, false)).unwrap();
    enc.entry(b"k", &RdbValue::String(Bytes::copy_from_slice(value)), None)
        .unwrap();
    let out = enc.finish().unwrap();
    // header(9) type(1) key(2) ... EOF(1) crc(8)
    out[12..out.len() - 9].to_vec()
}

#[test]
fn string_encoding_choices_match_redis() {
    assert_eq!(string_entry_bytes(b"42", true), [0xC0, 42]);
    assert_eq!(string_entry_bytes(b"-129", true), [0xC1, 0x7F, 0xFF]);
    assert_eq!(
        string_entry_bytes(b"-2147483648", true),
        [0xC2, 0x00, 0x00, 0x00, 0x80]
    );
    assert_eq!(string_entry_bytes(b"+5", true), [0x02, b'+', b'5']);
    assert_eq!(string_entry_bytes(b"12345678901", true)[0], 11);
    let long = vec![b'a'; 10000];
    let c = string_entry_bytes(&long, true);
    assert_eq!(c[0], 0xC3);
    assert!(c.len() < 300);
    let raw = string_entry_bytes(&long, false);
    assert_eq!(&raw[..3], &[0x67, 0x10, b'a']); // 14-bit length 10000
                                                // 20 bytes are never compressed, even if repetitive.
    assert_eq!(string_entry_bytes(&[b'a'; 20], true)[0], 20);
    assert_eq!(string_entry_bytes(&[b'a'; 21], true)[0], 0xC3);
    // Incompressible data stays raw.
    let noise = Prng(7).bytes(200);
    assert_eq!(&string_entry_bytes(&noise, true)[..2], &[0x40, 200]);
}

#[test]
fn trailer_is_crc_of_everything_before_it() {
    let data = encode(&dataset(), opts(true, true));
    let (body, trailer) = data.split_at(data.len() - 8);
    assert_eq!(u64::from_le_bytes(trailer.try_into().unwrap()), crc64(body));
    let data = encode(&dataset(), opts(true, false));
    assert_eq!(&data[data.len() - 8..], &[0u8; 8]);
}

// ----------------------------------------------- opcodes and refusals

fn file(version: u32, body: &[u8]) -> Vec<u8> {
    let mut v = format::header(version).unwrap().to_vec();
    v.extend_from_slice(body);
    v.push(format::OP_EOF);
    if version >= 5 {
        let crc = crc64(&v);
        v.extend_from_slice(&crc.to_le_bytes());
    }
    v
}

#[test]
fn skips_idle_freq_slot_info_and_reads_second_expires() {
    let mut body = vec![format::OP_SELECTDB, 2];
    body.extend([format::OP_IDLE, 0x40, 0x10]);
    body.extend([format::OP_FREQ, 5]);
    body.push(format::OP_EXPIRETIME);
    body.extend(1_700_000_000i32.to_le_bytes());
    body.extend([0, 1, b'a', 1, b'b']);
    body.extend([format::OP_SLOT_INFO, 1, 2, 3]);
    body.push(format::OP_EXPIRETIME_MS);
    body.extend((-5i64).to_le_bytes());
    body.extend([0, 1, b'c', 0xC0, 0xFF]);
    let d = decode(&file(12, &body)).unwrap();
    assert_eq!(
        to_recs(&d.entries),
        vec![
            rec(2, b"a", b"b", Some(1_700_000_000_000)),
            rec(2, b"c", b"-1", Some(0)),
        ]
    );
    // The last of IDLE and FREQ before a key is its stamp; the next key
    // starts without one.
    assert_eq!(d.entries[0].stamp, Some(KeyStamp::Freq(5)));
    assert_eq!(d.entries[1].stamp, None);
    // Old version without a trailer.
    let d = decode(&file(3, &[0, 1, b'x', 1, b'y'])).unwrap();
    assert_eq!(to_recs(&d.entries), vec![rec(0, b"x", b"y", None)]);
}

#[test]
fn stamps_are_written_between_the_expire_time_and_the_type() {
    let mut enc = RdbEncoder::fragment(Vec::new(), opts(false, false));
    enc.stamp_next(KeyStamp::IdleSecs(300));
    enc.string_entry(b"a", b"b", Some(7)).unwrap();
    enc.stamp_next(KeyStamp::Freq(9));
    enc.string_entry(b"c", b"d", None).unwrap();
    enc.string_entry(b"e", b"f", None).unwrap();
    let body = enc.into_sink();
    let mut want = vec![format::OP_EXPIRETIME_MS];
    want.extend(7u64.to_le_bytes());
    // 300 as an RDB length: 14-bit form 0x41 0x2C.
    want.extend([format::OP_IDLE, 0x41, 0x2C, 0, 1, b'a', 1, b'b']);
    want.extend([format::OP_FREQ, 9, 0, 1, b'c', 1, b'd']);
    want.extend([0, 1, b'e', 1, b'f']);
    assert_eq!(body, want);
    let d = decode(&file(10, &body)).unwrap();
    let stamps: Vec<_> = d.entries.iter().map(|e| e.stamp).collect();
    assert_eq!(
        stamps,
        vec![Some(KeyStamp::IdleSecs(300)), Some(KeyStamp::Freq(9)), None]
    );
}

#[test]
fn refuses_other_types_naming_type_and_key() {
    for (byte, name) in [
        (7u8, "module_2"),
        (24, "hash_metadata"),
        (25, "hash_listpack_ex"),
    ] {
        let mut body = vec![0, 1, b'k', 1, b'v'];
        body.extend([byte, 6]);
        body.extend(b"mylist");
        body.extend([0, 0, 0]);
        let err = decode(&file(10, &body)).err().unwrap();
        match &err {
            RdbError::UnsupportedType {
                type_byte,
                type_name,
                key,
                offset,
            } => {
                assert_eq!(
                    (*type_byte, *type_name, &key[..], *offset),
                    (byte, name, &b"mylist"[..], 14)
                );
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("mylist") && msg.contains("offset 14"),
            "{msg}"
        );
    }
    let err = decode(&file(10, &[8, 1, b'k'])).err().unwrap();
    assert!(matches!(err, RdbError::Corrupt { offset: 9, .. }), "{err}");
    // A stream (no nodes, all IDs 0-0) with one consumer group whose
    // consumer claims a pending entry the group does not have: refused.
    let mut body = vec![
        19, 1, b's', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'g', 0, 0, 0, 0,
    ];
    body.extend_from_slice(&[1, 1, b'c']);
    body.extend_from_slice(&5i64.to_le_bytes());
    body.push(1);
    body.extend_from_slice(&[0; 15]);
    body.push(7);
    let err = decode(&file(10, &body)).err().unwrap();
    assert!(
        matches!(&err, RdbError::Corrupt { what, .. } if what.contains("not in the group PEL")),
        "{err}"
    );
    // Without the consumer's entry it loads, with the group and consumer.
    body.truncate(body.len() - 17);
    body.push(0);
    let entry = decode(&file(10, &body)).unwrap().entries.remove(0);
    let RdbValue::Stream(st) = entry.value else {
        panic!("a stream")
    };
    assert_eq!(st.groups[&b"g"[..]].consumers[&b"c"[..]].seen_ms, 5);
    let op = format::OP_MODULE_AUX;
    let err = decode(&file(10, &[op, 0])).err().unwrap();
    assert!(matches!(err, RdbError::UnsupportedOpcode { opcode, offset: 9, .. } if opcode == op));
    assert!(err.to_string().contains(format::opcode_name(op).unwrap()));
}

#[test]
fn function_records_are_read_in_both_formats() {
    let code = b"#!lua name=l\nredis.register_function('f', function() end)";
    let mut body = vec![format::OP_FUNCTION2, code.len() as u8];
    body.extend_from_slice(code);
    // A release candidate's record: name, engine, a description, the body.
    body.extend_from_slice(&[format::OP_FUNCTION_PRE_GA, 1, b'g', 3]);
    body.extend_from_slice(b"LUA");
    body.extend_from_slice(&[1, 1, b'd', 8]);
    body.extend_from_slice(b"return 2");
    let decoded = decode(&file(10, &body)).unwrap();
    assert_eq!(
        decoded.functions,
        vec![
            Bytes::copy_from_slice(code),
            Bytes::from_static(b"#!LUA name=g\nreturn 2")
        ]
    );
    // Written as Redis writes them: opcode and string, long codes packed.
    let long = Bytes::from(format!("#!lua name=l\n{}", "-- x\n".repeat(100)));
    let mut enc = RdbEncoder::bare(Vec::new(), EncodeOptions::default());
    enc.function(&long).unwrap();
    let bytes = enc.into_sink();
    assert!(bytes.len() < long.len());
    let decoded = decode(&file(10, &bytes)).unwrap();
    assert_eq!(decoded.functions, vec![long]);
}

#[test]
fn header_checks() {
    assert!(matches!(
        RdbDecoder::new(&b"RADIS0010"[..]).err(),
        Some(RdbError::BadMagic)
    ));
    assert!(matches!(
        RdbDecoder::new(&b"REDIS00x0"[..]).err(),
        Some(RdbError::BadMagic)
    ));
    assert!(matches!(
        RdbDecoder::new(&b"RED"[..]).err(),
        Some(RdbError::BadMagic)
    ));
    assert!(matches!(
        RdbDecoder::new(&b"REDIS0013"[..]).err(),
        Some(RdbError::UnsupportedVersion(13))
    ));
    assert!(matches!(
        RdbDecoder::new(&b"REDIS0000"[..]).err(),
        Some(RdbError::UnsupportedVersion(0))
    ));
}

// ------------------------------------------------------------ robustness

#[test]
fn checksum_mismatch_detected() {
    let mut data = encode(&dataset(), opts(true, true));
    let n = data.len();
    data[n - 1] ^= 1;
    assert!(matches!(
        decode(&data).err(),
        Some(RdbError::ChecksumMismatch { .. })
    ));
    let mut data = encode(&dataset(), opts(false, true));
    // Flip a byte inside the "hello" value: structure stays valid.
    let pos = data.windows(5).position(|w| w == b"hello").unwrap();
    data[pos] = b'j';
    let err = decode(&data).err().unwrap();
    assert!(matches!(err, RdbError::ChecksumMismatch { .. }), "{err}");
    // With checksums off the same change is accepted.
    let mut data = encode(&dataset(), opts(false, false));
    let pos = data.windows(5).position(|w| w == b"hello").unwrap();
    data[pos] = b'j';
    assert!(decode(&data).is_ok());
}

#[test]
fn every_truncation_is_an_error() {
    for (compress, checksum) in ALL_OPTS {
        let mut p = Prng(9);
        let mut recs = random_dataset(&mut p);
        recs.retain(|r| r.value.len() < 200);
        recs.truncate(8);
        // Keep the compressible values, shortened, so LZF is cut too.
        recs.extend(dataset().into_iter().map(|mut r| {
            r.value.truncate(300);
            r
        }));
        let data = encode(&recs, opts(compress, checksum));
        for cut in 0..data.len() {
            match decode(&data[..cut]) {
                Err(RdbError::Corrupt { offset, .. }) => assert!(offset <= cut as u64),
                Err(RdbError::BadMagic) => assert!(cut < 9),
                other => panic!("prefix {cut}: {:?}", other.map(|d| d.entries.len())),
            }
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let base = encode(&dataset(), opts(true, true));
    let base_nock = encode(&dataset(), opts(true, false));
    let mut p = Prng(1234);
    let mut errors = 0;
    for i in 0..4000 {
        let mut data = if i % 2 == 0 {
            base.clone()
        } else {
            base_nock.clone()
        };
        for _ in 0..1 + p.below(4) {
            let pos = p.below(data.len() as u64) as usize;
            match p.below(4) {
                0 => data[pos] = p.next() as u8,
                1 => data[pos] ^= 1 << p.below(8),
                2 => data.insert(pos, p.next() as u8),
                _ => {
                    data.remove(pos);
                }
            }
        }
        if decode(&data).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 2000, "only {errors} mutations detected");
    // Pure noise after a valid header.
    for _ in 0..1000 {
        let mut data = b"REDIS0010".to_vec();
        let n = p.below(64) as usize;
        data.extend(p.bytes(n));
        let _ = decode(&data);
    }
}

#[test]
fn absurd_lengths_rejected_without_allocating() {
    // Key length 2^60 in the 64-bit form.
    let mut body = vec![0, format::LEN_64BIT];
    body.extend((1u64 << 60).to_be_bytes());
    let err = decode(&file(10, &body)).err().unwrap();
    assert!(matches!(err, RdbError::Corrupt { .. }), "{err}");
    // A 4 GiB length with only a few bytes behind it: fails on truncation
    // after reading at most one chunk.
    let mut body = vec![0, format::LEN_32BIT];
    body.extend(u32::MAX.to_be_bytes());
    body.extend(b"short");
    let err = decode(&file(10, &body)).err().unwrap();
    assert!(err.to_string().contains("unexpected end"), "{err}");
    // LZF claiming 2^40 bytes from 3.
    let mut body = vec![0, 1, b'k', 0xC3, 3, format::LEN_64BIT];
    body.extend((1u64 << 40).to_be_bytes());
    body.extend([0, b'a', 0]);
    let err = decode(&file(10, &body)).err().unwrap();
    assert!(err.to_string().contains("LZF"), "{err}");
    // LZF data that does not expand to its declared length.
    let body = [0, 1, b'k', 0xC3, 2, 5, 0, b'a'];
    let err = decode(&file(10, &body)).err().unwrap();
    assert!(err.to_string().contains("LZF"), "{err}");
    // SELECTDB beyond u32.
    let mut body = vec![format::OP_SELECTDB, format::LEN_64BIT];
    body.extend((1u64 << 40).to_be_bytes());
    assert!(decode(&file(10, &body)).is_err());
}

#[test]
fn streams_from_io_read() {
    let data = encode(&dataset(), opts(true, true));
    let mut dec = RdbDecoder::new(super::ReadSource(std::io::Cursor::new(data))).unwrap();
    let mut n = 0;
    loop {
        match dec.next().unwrap() {
            RdbItem::Eof => break,
            RdbItem::Entry(_) => n += 1,
            _ => {}
        }
    }
    assert_eq!(n, dataset().len());
}
