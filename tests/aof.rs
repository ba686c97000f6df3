//! The append-only file: Redis 7's multi-part layout, restarts (also after
//! kill -9), fsync policies, truncated and corrupt files, files crossing
//! between Cascade and a real redis-server, rewrites under writes.

mod common;
use common::family::digest;
use common::tempdir::TempDir;
use common::{cascade_bin, require_tool, wait_until, Conn, Server, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AOF: &[&str] = &[
    "--shards",
    "2",
    "--enable-debug-command",
    "yes",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

/// Debian's redis-check-aof accepts the server's AOF directory.
fn assert_check_aof_accepts(s: &Server) {
    assert_check_aof_accepts_dir(&aof_dir(s));
}

fn assert_check_aof_accepts_dir(aof_dir: &Path) {
    let out = Command::new(require_tool("redis-check-aof"))
        .arg(aof_dir.join("appendonly.aof.manifest"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("All AOF files and manifest are valid"),
        "{text}"
    );
}

/// SHUTDOWN NOSAVE (no reply: the server closes the connection).
fn shutdown(c: &mut Conn) {
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    let _ = c.read_to_close();
}

fn aof_dir(s: &Server) -> PathBuf {
    s.dir.path().join("appendonlydir")
}

fn manifest(s: &Server) -> String {
    std::fs::read_to_string(aof_dir(s).join("appendonly.aof.manifest")).unwrap()
}

/// Every data type, several databases, TTLs, a transaction.
fn fill(c: &mut Conn) {
    c.cmd(&["SET", "s", "v"]);
    c.cmd(&["INCRBY", "n", "42"]);
    c.cmd(&["SET", "ttl", "x", "EX", "5000"]);
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    c.cmd(&["LPOP", "l"]);
    c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2"]);
    c.cmd(&["SADD", "set", "m1", "m2", "3"]);
    c.cmd(&["ZADD", "z", "1.5", "a", "-2", "b"]);
    c.cmd(&["INCRBYFLOAT", "f", "1.25"]);
    c.cmd(&["MSET", "k1", "1", "k2", "2", "k3", "3"]);
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["SET", "in5", "five"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "tx1", "a"]);
    c.cmd(&["SELECT", "6"]);
    c.cmd(&["SET", "tx2", "b"]);
    assert_eq!(c.cmd(&["EXEC"]).array().len(), 3);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["DEL", "k2"]);
    for i in 0..300 {
        c.cmd(&[
            "SET",
            &format!("key:{i}"),
            &format!("{i}").repeat(i % 7 + 1),
        ]);
    }
}

#[test]
fn layout_is_redis_7_multi_part() {
    let s = Server::start(AOF);
    let mut c = s.conn();
    c.cmd(&["SET", "a", "1"]);
    assert_eq!(
        manifest(&s),
        "file appendonly.aof.1.base.rdb seq 1 type b\n\
         file appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let incr = std::fs::read(aof_dir(&s).join("appendonly.aof.1.incr.aof")).unwrap();
    assert_eq!(
        incr,
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    let base = std::fs::read(aof_dir(&s).join("appendonly.aof.1.base.rdb")).unwrap();
    assert!(base.starts_with(b"REDIS0010"));
    assert!(s
        .log_text()
        .contains("Creating AOF incr file appendonly.aof.1.incr.aof on server start"));
}

#[test]
fn restart_after_kill_keeps_every_type() {
    let mut s = Server::start(AOF);
    let mut c = s.conn();
    fill(&mut c);
    let before = digest(&mut c);
    s.kill();
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]).array().len(), 2);
    assert!(c.cmd(&["TTL", "ttl"]).int() > 4000);
    let log = s.log_text();
    assert!(log.contains("DB loaded from append only file"), "{log}");
    assert!(log.contains("Opening AOF incr file appendonly.aof.1.incr.aof on server start"));
    // And once more: writes after the restart go to the same incr file.
    c.cmd(&["SET", "after", "restart"]);
    let before = digest(&mut c);
    s.restart();
    assert_eq!(digest(&mut s.conn()), before);
}

#[test]
fn redis_check_aof_accepts_ours_and_redis_loads_it() {
    let mut s = Server::start(AOF);
    let mut c = s.conn();
    fill(&mut c);
    let ours = digest(&mut c);
    shutdown(&mut c);
    let _ = s.child.wait();
    assert_check_aof_accepts(&s);
    // A real redis-server started in that directory loads the same data.
    let r = start_redis_in(s.dir.path());
    assert_eq!(digest(&mut r.conn()), ours);
}

/// Starts redis-server on `dir` with the AOF on (the tempdir belongs to
/// the caller).
fn start_redis_in(dir: &Path) -> Proc {
    let bin = require_tool("redis-server");
    let port = common::free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--save",
            "",
            "--enable-debug-command",
            "yes",
        ])
        .args(["--bind", "127.0.0.1", "--logfile"])
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let r = Proc {
        port,
        child,
        log: dir.join("redis.log"),
    };
    wait_until(Duration::from_secs(20), "redis-server answers", || {
        pong(port)
    });
    r
}

#[test]
fn we_load_what_redis_wrote() {
    let dir = TempDir::new("aof-from-redis");
    let want = {
        let r = start_redis_in(dir.path());
        let mut c = r.conn();
        fill(&mut c);
        // A rewrite, then more writes: base + incr as Redis lays them out.
        c.cmd(&["BGREWRITEAOF"]);
        wait_until(Duration::from_secs(20), "redis rewrite done", || {
            common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
                && common::info_field(&mut c, "persistence", "aof_rewrite_scheduled") == "0"
        });
        c.cmd(&["SADD", "late", "x"]);
        c.cmd(&["SELECT", "9"]);
        c.cmd(&["HSET", "late9", "f", "v"]);
        let d = digest(&mut c);
        shutdown(&mut c);
        d
    };
    let s = start_cascade_in(dir.path(), &[]);
    assert_eq!(digest(&mut s.conn()), want);
}

/// A server process on a directory the caller owns (cascade or
/// redis-server, AOF on); killed when dropped.
struct Proc {
    port: u16,
    child: std::process::Child,
    log: PathBuf,
}

impl Proc {
    fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_cascade_in(dir: &Path, extra: &[&str]) -> Proc {
    let port = common::free_port();
    let log = dir.join("cascade.log");
    let child = Command::new(cascade_bin())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(AOF)
        .args(["--save", "", "--bind", "127.0.0.1", "--logfile"])
        .arg(&log)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("cascade.stderr")).unwrap())
        .spawn()
        .unwrap();
    Proc { port, child, log }
}

fn start_cascade_in(dir: &Path, extra: &[&str]) -> Proc {
    let mut s = spawn_cascade_in(dir, extra);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!(
                "cascade exited ({st}):\n{}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
        }
        if pong(s.port) {
            return s;
        }
        assert!(Instant::now() < end, "cascade did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server on `port` answers PING with PONG (not LOADING, not closed).
fn pong(port: u16) -> bool {
    let Some(mut c) = Conn::try_connect(port) else {
        return false;
    };
    c.set_read_timeout(Duration::from_secs(2));
    c.send(&[b"PING"]);
    matches!(common::read_value(&mut c.reader), Ok(Value::Simple(p)) if p == "PONG")
}

/// Starts cascade on `dir` and requires it to exit with a failure;
/// returns its log.
fn refuses_to_start(dir: &Path, extra: &[&str]) -> String {
    let mut s = spawn_cascade_in(dir, extra);
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            break st;
        }
        assert!(Instant::now() < end, "cascade did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(dir.join("cascade.stderr")).unwrap_or_default();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!status.success());
    std::fs::read_to_string(&s.log).unwrap_or_default()
}

/// An AOF directory written by cascade with `fill`, and its digest.
fn written_dir() -> (TempDir, String) {
    let dir = TempDir::new("aof-files");
    let s = start_cascade_in(dir.path(), &[]);
    let mut c = s.conn();
    fill(&mut c);
    let d = digest(&mut c);
    shutdown(&mut c);
    drop(s);
    (dir, d)
}

fn incr_path(dir: &Path) -> PathBuf {
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}

/// [`written_dir`] with `tail` appended to its incr file: the directory,
/// the digest before, the incr file, its length before and its new bytes.
fn written_dir_with_tail(tail: &[u8]) -> (TempDir, String, PathBuf, usize, Vec<u8>) {
    let (dir, want) = written_dir();
    let incr = incr_path(dir.path());
    let mut bytes = std::fs::read(&incr).unwrap();
    let full = bytes.len();
    bytes.extend_from_slice(tail);
    std::fs::write(&incr, &bytes).unwrap();
    (dir, want, incr, full, bytes)
}

#[test]
fn truncated_tail_is_tolerated_with_aof_load_truncated_yes() {
    let (dir, _, incr, full, bytes) =
        written_dir_with_tail(b"*3\r\n$3\r\nSET\r\n$4\r\ntail\r\n$5\r\nval");
    // `no`: refused, the file untouched.
    let log = refuses_to_start(dir.path(), &["--aof-load-truncated", "no"]);
    assert!(
        log.contains(
            "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
        ),
        "{log}"
    );
    assert_eq!(std::fs::read(&incr).unwrap(), bytes);
    // `yes`: loads, warns with the offset, truncates the file there.
    let s = start_cascade_in(dir.path(), &["--aof-load-truncated", "yes"]);
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains(&format!(
            "!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {full} !!!"
        )),
        "{log}"
    );
    assert!(log.contains(
        "AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"
    ));
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "tail"]), Value::Nil);
    assert_eq!(c.cmd(&["GET", "s"]), Value::bulk("v"));
    // New writes follow the last complete command.
    c.cmd(&["SET", "tail", "fixed"]);
    drop(c);
    drop(s);
    let s = start_cascade_in(dir.path(), &["--aof-load-truncated", "no"]);
    assert_eq!(s.conn().cmd(&["GET", "tail"]), Value::bulk("fixed"));
}

#[test]
fn multi_without_exec_at_the_end_is_reverted() {
    let (dir, want, incr, full, _) =
        written_dir_with_tail(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$2\r\ntx\r\n$1\r\n1\r\n");
    let s = start_cascade_in(dir.path(), &[]);
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains(
            "Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"
        ),
        "{log}"
    );
    assert_eq!(digest(&mut s.conn()), want);
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), full as u64);
}

#[test]
fn corruption_in_the_middle_refuses_to_start_and_leaves_files_alone() {
    let (dir, _) = written_dir();
    let incr = incr_path(dir.path());
    let mut bytes = std::fs::read(&incr).unwrap();
    let mid = bytes.len() / 2;
    // Find a command start near the middle and break its array marker.
    let at = mid + bytes[mid..].iter().position(|&b| b == b'*').unwrap();
    bytes[at] = b'!';
    std::fs::write(&incr, &bytes).unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("appendonlydir"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let log = refuses_to_start(dir.path(), &["--aof-load-truncated", "yes"]);
    assert!(
        log.contains("Bad file format reading the append only file appendonly.aof.1.incr.aof"),
        "{log}"
    );
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn garbage_aof_never_panics() {
    // Deterministic pseudo-random garbage, and mutations of a real file.
    let (dir, _) = written_dir();
    let incr = incr_path(dir.path());
    let good = std::fs::read(&incr).unwrap();
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..12 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => {
                for _ in 0..4 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = (next() & 0xff) as u8;
                }
            }
            1 => {
                let cut = (next() % bytes.len() as u64) as usize;
                bytes.truncate(cut);
                bytes.extend((0..64).map(|_| b"*$\r\n0123456789"[(next() % 14) as usize]));
            }
            _ => {
                bytes = (0..512).map(|_| (next() & 0xff) as u8).collect();
            }
        }
        std::fs::write(&incr, &bytes).unwrap();
        let mut s = spawn_cascade_in(dir.path(), &[]);
        // It either starts (the garbage happened to parse) or exits 1.
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = s.child.try_wait() {
                break;
            }
            if pong(s.port) {
                break;
            }
            assert!(
                Instant::now() < end,
                "round {round}: neither started nor exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(s);
        let stderr = std::fs::read_to_string(dir.path().join("cascade.stderr")).unwrap();
        assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_under_always() {
    let mut s = Server::start(AOF);
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer owns its keys and records the last value acknowledged.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let stop = stop.clone();
            let acked = Arc::new(AtomicU64::new(0));
            let a = acked.clone();
            let t = std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    c.send(&[b"SET", format!("w{w}").as_bytes(), i.to_string().as_bytes()]);
                    match common::read_value(&mut c.reader) {
                        Ok(Value::Simple(ok)) if ok == "OK" => a.store(i, Ordering::SeqCst),
                        _ => break,
                    }
                }
            });
            (t, acked)
        })
        .collect();
    // A pipelining writer too: its 16 keys span the shards, so each round
    // is one batch per shard, acknowledged together.
    let pipelined = {
        let stop = stop.clone();
        let acked = Arc::new(AtomicU64::new(0));
        let a = acked.clone();
        let t = std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut buf = Vec::new();
                for j in 0..16 {
                    buf.extend(common::encode(&[
                        b"SET",
                        format!("p{j}").as_bytes(),
                        i.to_string().as_bytes(),
                    ]));
                }
                c.send_raw(&buf);
                for _ in 0..16 {
                    match common::read_value(&mut c.reader) {
                        Ok(Value::Simple(ok)) if ok == "OK" => {}
                        _ => return,
                    }
                }
                a.store(i, Ordering::SeqCst);
            }
        });
        (t, acked)
    };
    wait_until(Duration::from_secs(20), "writers running", || {
        writers.iter().all(|(_, a)| a.load(Ordering::SeqCst) > 50)
            && pipelined.1.load(Ordering::SeqCst) > 50
    });
    s.kill();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<u64> = writers
        .into_iter()
        .map(|(t, a)| {
            let _ = t.join();
            a.load(Ordering::SeqCst)
        })
        .collect();
    let _ = pipelined.0.join();
    let pipelined_acked = pipelined.1.load(Ordering::SeqCst);
    s.restart();
    let mut c = s.conn();
    for (w, &n) in acked.iter().enumerate() {
        let got: u64 = c.cmd(&["GET", &format!("w{w}")]).text().parse().unwrap();
        // The write in flight at the kill may or may not be there.
        assert!(got >= n, "writer {w}: acknowledged {n}, found {got}");
    }
    for j in 0..16 {
        let got: u64 = c.cmd(&["GET", &format!("p{j}")]).text().parse().unwrap();
        assert!(
            got >= pipelined_acked,
            "p{j}: acknowledged {pipelined_acked}, found {got}"
        );
    }
}

#[test]
fn rewrite_under_concurrent_writes_loses_nothing() {
    // A slow snapshot (per-key delay) so writes land during the rewrite.
    let mut s = Server::start(&[AOF, &["--rdb-key-save-delay", "200"]].concat());
    let mut c = s.conn();
    for i in 0..2000 {
        c.cmd(&["SET", &format!("pre:{i}"), "x"]);
    }
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.cmd(&["INCR", "counter"]);
                c.cmd(&["RPUSH", "log", &i.to_string()]);
                c.cmd(&["SET", &format!("pre:{}", i % 2000), &i.to_string()]);
                i += 1;
            }
            i
        })
    };
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        Value::Simple("Background append only file rewriting started".into())
    );
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        Value::Error("ERR Background append only file rewriting already in progress".into())
    );
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress"),
        "1"
    );
    wait_until(Duration::from_secs(60), "rewrite done", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    stop.store(true, Ordering::Relaxed);
    let n = writer.join().unwrap();
    assert!(n > 0);
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_rewrites"),
        "1"
    );
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_last_bgrewrite_status"),
        "ok"
    );
    assert_eq!(
        manifest(&s),
        "file appendonly.aof.2.base.rdb seq 2 type b\n\
         file appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let names: Vec<String> = std::fs::read_dir(aof_dir(&s))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "history files removed: {names:?}");
    let before = digest(&mut c);
    assert_eq!(c.cmd(&["GET", "counter"]).text(), n.to_string());
    s.kill();
    s.restart();
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(c.cmd(&["LLEN", "log"]).int(), n as i64);
    let log = s.log_text();
    for line in [
        "Creating AOF incr file appendonly.aof.2.incr.aof on background rewrite",
        "Background append only file rewriting started",
        "Successfully renamed the temporary AOF base file",
        "Removing the history file appendonly.aof.1.incr.aof in the background",
        "Background AOF rewrite finished successfully",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
}

#[test]
fn config_set_appendonly_turns_it_on_and_off() {
    let mut s = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_enabled"),
        "0"
    );
    fill(&mut c);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), Value::ok());
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_enabled"),
        "1"
    );
    wait_until(Duration::from_secs(30), "first base written", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    c.cmd(&["SET", "after", "on"]);
    let want = digest(&mut c);
    // The base plus what followed it is everything. (Under everysec the
    // writer thread appends within a millisecond of the reply, so the
    // incr file's growth is waited for.)
    let base: u64 = common::info_field(&mut c, "persistence", "aof_base_size")
        .parse()
        .unwrap();
    assert!(base > 0, "base {base}");
    wait_until(
        Duration::from_secs(10),
        "the write after the base written",
        || {
            let size: u64 = common::info_field(&mut c, "persistence", "aof_current_size")
                .parse()
                .unwrap();
            size > base && common::info_field(&mut c, "persistence", "aof_buffer_length") == "0"
        },
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_enabled"),
        "0"
    );
    c.cmd(&["SET", "not", "in the aof"]);
    s.kill();
    // Restarted with the AOF on, it loads the AOF (not the dump).
    let dir = s.dir.path().to_path_buf();
    let r = start_cascade_in(&dir, &[]);
    let mut c = r.conn();
    assert_eq!(digest(&mut c), want);
    assert_eq!(c.cmd(&["GET", "not"]), Value::Nil);
}

#[test]
fn automatic_rewrite_on_growth() {
    let s = Server::start(
        &[
            AOF,
            &[
                "--appendfsync",
                "no",
                "--auto-aof-rewrite-percentage",
                "100",
                "--auto-aof-rewrite-min-size",
                "4096",
            ],
        ]
        .concat(),
    );
    let mut c = s.conn();
    for i in 0..200 {
        c.cmd(&["SET", "k", &format!("{i:040}")]);
    }
    wait_until(Duration::from_secs(30), "automatic rewrite", || {
        common::info_field(&mut c, "persistence", "aof_rewrites") != "0"
            && common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    assert!(s
        .log_text()
        .contains("Starting automatic rewriting of AOF on"));
    assert!(manifest(&s).contains("appendonly.aof.2.base.rdb"));
}

#[test]
fn replica_aof_holds_the_applied_writes_without_pings() {
    let master = common::repl::start(&["--shards", "2", "--repl-ping-replica-period", "1"]);
    let mut m = master.conn();
    fill(&mut m);
    let replica = common::repl::start(&[
        "--shards",
        "2",
        "--appendonly",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &master.port.to_string(),
    ]);
    common::repl::wait_in_sync(&master, &replica, None);
    let mut r = replica.conn();
    // The full sync replaced the data: the AOF starts over from a base.
    wait_until(
        Duration::from_secs(30),
        "AOF restarted after the sync",
        || {
            common::info_field(&mut r, "persistence", "aof_rewrite_in_progress") == "0"
                && common::info_field(&mut r, "persistence", "aof_rewrites") != "0"
        },
    );
    // Writes streamed afterwards, a transaction among them, and a few
    // heartbeats and WAITs (GETACKs) in the stream.
    m.cmd(&["SET", "streamed", "1"]);
    m.cmd(&["SELECT", "4"]);
    m.cmd(&["MULTI"]);
    m.cmd(&["INCR", "c"]);
    m.cmd(&["SELECT", "7"]);
    m.cmd(&["LPUSH", "q", "x"]);
    m.cmd(&["EXEC"]);
    m.cmd(&["WAIT", "1", "5000"]);
    std::thread::sleep(Duration::from_millis(1100)); // one heartbeat period
    m.cmd(&["SET", "last", "1"]);
    m.cmd(&["WAIT", "1", "5000"]);
    common::repl::wait_in_sync(&master, &replica, None);
    let want = digest(&mut m);
    wait_until(Duration::from_secs(10), "AOF buffer written", || {
        common::info_field(&mut r, "persistence", "aof_buffer_length") == "0"
    });
    let incr = std::fs::read(aof_dir(&replica).join("appendonly.aof.2.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr).to_lowercase();
    assert!(text.contains("streamed"), "{text}");
    assert!(
        !text.contains("ping") && !text.contains("replconf"),
        "{text}"
    );
    // The replica's AOF alone rebuilds the master's data.
    drop(r);
    let dir = replica.dir.path().to_path_buf();
    let mut replica = replica;
    replica.kill();
    let s = start_cascade_in(&dir, &[]);
    assert_eq!(digest(&mut s.conn()), want);
}

#[test]
fn timestamp_annotations_are_written_and_loaded() {
    let mut s = Server::start(&[AOF, &["--aof-timestamp-enabled", "yes"]].concat());
    let mut c = s.conn();
    fill(&mut c);
    let want = digest(&mut c);
    let incr = std::fs::read(aof_dir(&s).join("appendonly.aof.1.incr.aof")).unwrap();
    assert!(
        incr.starts_with(b"#TS:"),
        "{}",
        String::from_utf8_lossy(&incr[..40])
    );
    // A connection left open keeps the killed server's end of it in
    // FIN-WAIT-2, which can hold the port past restart's wait.
    drop(c);
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
    assert_check_aof_accepts(&s);
}

#[test]
fn everysec_keeps_writes_older_than_a_second_after_kill_9() {
    let mut s = Server::start(&[
        "--shards",
        "2",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ]);
    let mut c = s.conn();
    for i in 0..500 {
        c.cmd(&["SET", &format!("old:{i}"), "v"]);
    }
    // Past the next fsync of the once-a-second policy.
    std::thread::sleep(Duration::from_millis(1200));
    for i in 0..100 {
        c.cmd(&["SET", &format!("new:{i}"), "v"]);
    }
    s.kill();
    s.restart();
    let mut c = s.conn();
    for i in 0..500 {
        assert_eq!(
            c.cmd(&["GET", &format!("old:{i}")]),
            Value::bulk("v"),
            "old:{i}"
        );
    }
}

#[test]
fn everysec_writes_reach_the_file_while_busy_and_after_idle() {
    // The writer takes bytes at its own pace while writes flow and sleeps
    // when they stop: a write right after a burst, and one after a pause,
    // must both reach the incr file without any further write.
    let s = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let mut c = s.conn();
    let incr = incr_path(s.dir.path());
    let in_file = |marker: &str| {
        std::fs::read(&incr)
            .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .unwrap_or(false)
    };
    let mut burst = Vec::new();
    for i in 0..20_000 {
        burst.extend(common::encode(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    c.send_raw(&burst);
    for _ in 0..20_000 {
        assert_eq!(c.read(), Value::ok());
    }
    assert_eq!(c.cmd(&["SET", "after-burst", "1"]), Value::ok());
    wait_until(
        Duration::from_secs(10),
        "the burst's last write in the file",
        || in_file("after-burst"),
    );
    // Long enough for the writer to stop pacing and sleep.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.cmd(&["SET", "after-idle", "1"]), Value::ok());
    wait_until(
        Duration::from_secs(10),
        "the write after idle in the file",
        || in_file("after-idle"),
    );
    assert!(in_file("k19999"));
}

#[test]
fn history_files_left_by_a_crash_are_removed_at_start() {
    let (dir, want) = written_dir();
    let aofdir = dir.path().join("appendonlydir");
    std::fs::write(aofdir.join("appendonly.aof.0.incr.aof"), b"garbage").unwrap();
    let m = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap();
    let with_history = m.replacen("\n", "\nfile appendonly.aof.0.incr.aof seq 0 type h\n", 1);
    std::fs::write(aofdir.join("appendonly.aof.manifest"), &with_history).unwrap();
    let s = start_cascade_in(dir.path(), &[]);
    assert_eq!(digest(&mut s.conn()), want);
    assert!(!aofdir.join("appendonly.aof.0.incr.aof").exists());
    assert_eq!(
        std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap(),
        m
    );
}

#[test]
fn aof_format_base_without_rdb_preamble() {
    let mut s = Server::start(&[AOF, &["--aof-use-rdb-preamble", "no"]].concat());
    let mut c = s.conn();
    fill(&mut c);
    c.cmd(&["RPUSH", "long", &"x".repeat(3)]);
    for i in 0..150 {
        c.cmd(&["RPUSH", "long", &i.to_string()]);
        c.cmd(&["ZADD", "bigz", &format!("{i}.25"), &format!("m{i}")]);
    }
    c.cmd(&["BGREWRITEAOF"]);
    wait_until(Duration::from_secs(30), "rewrite done", || {
        common::info_field(&mut c, "persistence", "aof_rewrites") == "1"
            && common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    c.cmd(&["SET", "after", "rewrite"]);
    let want = digest(&mut c);
    assert!(manifest(&s).starts_with("file appendonly.aof.2.base.aof seq 2 type b\n"));
    let base = std::fs::read(aof_dir(&s).join("appendonly.aof.2.base.aof")).unwrap();
    assert!(
        base.starts_with(b"*2\r\n$6\r\nSELECT\r\n"),
        "{}",
        String::from_utf8_lossy(&base[..60])
    );
    assert!(String::from_utf8_lossy(&base).contains("PEXPIREAT"));
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
    let mut c = s.conn();
    shutdown(&mut c);
    let _ = s.child.wait();
    assert_check_aof_accepts(&s);
    let r = start_redis_in(s.dir.path());
    assert_eq!(digest(&mut r.conn()), want);
}

#[test]
fn bad_manifests_and_missing_files_refuse_to_start() {
    for (what, manifest, want) in [
        (
            "garbage",
            "this is not a manifest\n",
            "Invalid AOF manifest file format",
        ),
        (
            "two bases",
            "file a seq 1 type b\nfile b seq 2 type b\n",
            "Found duplicate base file information",
        ),
        (
            "missing file",
            "file appendonly.aof.9.incr.aof seq 9 type i\n",
            "The AOF file appendonly.aof.9.incr.aof doesn't exist",
        ),
    ] {
        let dir = TempDir::new("aof-bad-manifest");
        let aofdir = dir.path().join("appendonlydir");
        std::fs::create_dir_all(&aofdir).unwrap();
        std::fs::write(aofdir.join("appendonly.aof.manifest"), manifest).unwrap();
        let log = refuses_to_start(dir.path(), &[]);
        assert!(log.contains(want), "{what}: {log}");
        assert_eq!(
            std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap(),
            manifest,
            "{what}"
        );
    }
}

#[test]
fn old_single_file_aof_is_upgraded() {
    let dir = TempDir::new("aof-upgrade");
    let mut old = Vec::new();
    for args in [
        &["SELECT", "2"][..],
        &["SET", "k", "v"],
        &["RPUSH", "l", "a", "b"],
    ] {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        old.extend(common::encode(&a));
    }
    std::fs::write(dir.path().join("appendonly.aof"), &old).unwrap();
    let s = start_cascade_in(dir.path(), &[]);
    let mut c = s.conn();
    c.cmd(&["SELECT", "2"]);
    assert_eq!(c.cmd(&["GET", "k"]), Value::bulk("v"));
    assert_eq!(c.cmd(&["LLEN", "l"]).int(), 2);
    let m =
        std::fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert!(m.starts_with("file appendonly.aof seq 1 type b\n"), "{m}");
    assert!(!dir.path().join("appendonly.aof").exists());
}

/// A small tmpfs mounted for the length of a test: a disk that really
/// fills up (ENOSPC from the kernel, short writes included) and can be
/// emptied again. Mounting needs root; without it the test fails loudly
/// rather than passing without having run.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs to fill the AOF's disk and needs root \
             (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem refuses more.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [b'x'; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[test]
fn a_failing_aof_write_refuses_writes_until_it_works_again() {
    let dir = TempDir::new("aof-enospc");
    let disk = dir.path().join("appendonlydir");
    let mounted = Tmpfs::mount(&disk, "512k");
    let s = start_cascade_in(dir.path(), &["--appendfsync", "everysec"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "before", "full"]), Value::ok());
    assert_eq!(c.cmd(&["SELECT", "3"]), Value::ok());
    let filler = disk.join("filler");
    fill_disk(&filler);
    // Writes are acknowledged (everysec) until the writer thread fails to
    // append one; from then on they are refused.
    let value = "v".repeat(1000);
    let mut acked = 0;
    let mut refused = None;
    wait_until(Duration::from_secs(20), "a write refused", || {
        match c.cmd(&["SET", &format!("k{acked}"), &value]) {
            Value::Error(e) => {
                refused = Some(e);
                true
            }
            _ => {
                acked += 1;
                false
            }
        }
    });
    assert_eq!(
        refused.unwrap(),
        "MISCONF Errors writing to the AOF file: No space left on device"
    );
    assert_eq!(
        c.cmd(&["PING"]),
        Value::Error("MISCONF Errors writing to the AOF file: No space left on device".into())
    );
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_last_write_status"),
        "err"
    );
    // Reads still work.
    assert_eq!(c.cmd(&["GET", "k0"]).text(), value);
    let log = s.log_text();
    assert!(
        log.contains("Error writing to the AOF file: No space left on device")
            || log.contains("Short write while writing to the AOF file"),
        "{log}"
    );
    // Room again: the writer retries, writes are accepted again.
    std::fs::remove_file(&filler).unwrap();
    wait_until(Duration::from_secs(10), "write status ok", || {
        common::info_field(&mut c, "persistence", "aof_last_write_status") == "ok"
    });
    assert_eq!(c.cmd(&["SET", "after", "room"]), Value::ok());
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert!(s
        .log_text()
        .contains("AOF write error looks solved, Redis can write again."));
    let want = digest(&mut c);
    shutdown(&mut c);
    drop(s);
    // No half command was left in the file, and every acknowledged write
    // reached it.
    assert_check_aof_accepts_dir(&disk);
    let s = start_cascade_in(dir.path(), &["--appendfsync", "everysec"]);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), want);
    c.cmd(&["SELECT", "3"]);
    assert_eq!(c.cmd(&["DBSIZE"]).int(), acked as i64 + 1);
    drop(c);
    drop(s);
    drop(mounted);
}

#[test]
fn fsync_counters_are_reported_and_resetstat_clears_delayed_fsync() {
    let s = Server::start(&[AOF, &["--appendfsync", "everysec"]].concat());
    let mut c = s.conn();
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let field = |c: &mut Conn, name: &str| -> u64 {
        let v = common::info_field(c, "persistence", name);
        v.parse()
            .unwrap_or_else(|_| panic!("{name} is not an integer: {v:?}"))
    };
    assert!(field(&mut c, "aof_pending_bio_fsync") <= 1);
    field(&mut c, "aof_delayed_fsync");
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Value::ok());
    assert_eq!(field(&mut c, "aof_delayed_fsync"), 0);
    // With the AOF off, Redis prints neither.
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    let info = c.cmd(&["INFO", "persistence"]).text();
    assert!(!info.contains("aof_delayed_fsync"), "{info}");
    assert!(info.contains("aof_last_write_status:ok"), "{info}");
}

/// Files in the AOF directory that its manifest does not list (the
/// manifest itself aside).
fn unlisted_files(aof_dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).unwrap();
    let listed: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .collect();
    std::fs::read_dir(aof_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "appendonly.aof.manifest" && !listed.contains(&n.as_str()))
        .collect()
}

/// Waits until a rewrite is writing its temp base.
fn wait_temp_base(aof_dir: &Path) {
    wait_until(Duration::from_secs(20), "temp base being written", || {
        std::fs::read_dir(aof_dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("temp-rewriteaof-bg-")
        })
    });
}

/// `n` keys through MSET (in the AOF, unlike DEBUG POPULATE's).
fn set_keys(c: &mut Conn, n: usize) {
    for batch in 0..n.div_ceil(100) {
        let mut args = vec!["MSET".to_string()];
        for i in batch * 100..((batch + 1) * 100).min(n) {
            args.push(format!("key:{i}"));
            args.push(format!("value:{i}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&args), Value::ok());
    }
}

/// A slow rewrite: 2000 keys at 1 ms each.
const SLOW_REWRITE: &[&str] = &["--rdb-key-save-delay", "1000"];

#[test]
fn shutdown_during_a_rewrite_leaves_only_listed_files() {
    let mut s = Server::start(&[AOF, SLOW_REWRITE].concat());
    let mut c = s.conn();
    set_keys(&mut c, 2000);
    c.cmd(&["SET", "last", "write"]);
    let want = digest(&mut c);
    c.cmd(&["BGREWRITEAOF"]);
    wait_temp_base(&aof_dir(&s));
    shutdown(&mut c);
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    let log = s.log_text();
    assert!(
        log.contains("There is a child rewriting the AOF. Killing it!"),
        "{log}"
    );
    // The rewrite's new incr file was listed at its start and stays.
    assert!(manifest(&s).contains("appendonly.aof.2.incr.aof seq 2 type i"));
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
}

#[test]
fn appendonly_no_during_a_rewrite_leaves_only_listed_files() {
    let mut s = Server::start(&[AOF, SLOW_REWRITE].concat());
    let mut c = s.conn();
    set_keys(&mut c, 2000);
    let want = digest(&mut c);
    // A rewrite of the running AOF.
    c.cmd(&["BGREWRITEAOF"]);
    wait_temp_base(&aof_dir(&s));
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    wait_until(Duration::from_secs(10), "rewrite ended", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    // Aborted, like a killed child: not a failure.
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_last_bgrewrite_status"),
        "ok"
    );
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    // The first rewrite of an AOF being turned on (temp incr file too).
    let before = manifest(&s);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), Value::ok());
    wait_temp_base(&aof_dir(&s));
    assert!(aof_dir(&s).join("temp-appendonly.aof.incr").exists());
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    assert_eq!(manifest(&s), before);
    wait_until(Duration::from_secs(10), "rewrite ended", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    // Started again with the AOF on (its arguments), it loads the data.
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
}

#[test]
fn rewrites_with_and_without_incremental_fsync_load_back() {
    let mut s = Server::start(AOF);
    let mut c = s.conn();
    // About 6 MB of base: more than one 4 MB incremental fsync.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "rdbcompression", "no"]),
        Value::ok()
    );
    assert_eq!(
        c.cmd(&["DEBUG", "POPULATE", "30000", "key", "200"]),
        Value::ok()
    );
    let want = digest(&mut c);
    for on in ["yes", "no"] {
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "aof-rewrite-incremental-fsync", on]),
            Value::ok()
        );
        c.cmd(&["BGREWRITEAOF"]);
        wait_until(Duration::from_secs(60), "rewrite done", || {
            common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
        });
        assert_eq!(
            common::info_field(&mut c, "persistence", "aof_last_bgrewrite_status"),
            "ok"
        );
        let base: u64 = common::info_field(&mut c, "persistence", "aof_base_size")
            .parse()
            .unwrap();
        assert!(base > 4 << 20, "base of {base} bytes");
    }
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
}

#[test]
fn debug_loadaof_reloads_the_same_dataset_without_writing_it_again() {
    let mut s = Server::start(&[AOF, &["--appendfsync", "everysec"]].concat());
    let mut c = s.conn();
    fill(&mut c);
    // A base and an incr file, then writes in the incr file.
    c.cmd(&["BGREWRITEAOF"]);
    wait_until(Duration::from_secs(30), "rewrite done", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    c.cmd(&["SELECT", "7"]);
    c.cmd(&["ZADD", "late", "1", "a", "2", "b"]);
    c.cmd(&["HSET", "h7", "f", "v"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["DEL", "s"]);
    let want = digest(&mut c);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::ok());
    assert_eq!(digest(&mut c), want);
    assert!(s
        .log_text()
        .contains("Append Only File loaded by DEBUG LOADAOF"));
    // Nothing loaded was appended again: a second reload is the same.
    let size = common::info_field(&mut c, "persistence", "aof_current_size");
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::ok());
    assert_eq!(digest(&mut c), want);
    assert_eq!(
        common::info_field(&mut c, "persistence", "aof_current_size"),
        size
    );
    // Writes after it are appended as before.
    c.cmd(&["SET", "after", "reload"]);
    let want = digest(&mut c);
    shutdown(&mut c);
    s.restart();
    assert_eq!(digest(&mut s.conn()), want);
}

#[test]
fn debug_loadaof_with_appendonly_no() {
    // Like Redis 7.0.15: an AOF directory left by an earlier AOF is loaded
    // (the dataset goes back to what it holds)...
    let mut s = Server::start(&["--shards", "2", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    c.cmd(&["SET", "a", "1"]);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), Value::ok());
    wait_until(Duration::from_secs(30), "first base written", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    c.cmd(&["SET", "b", "2"]);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::ok());
    assert_eq!(c.cmd(&["GET", "a"]), Value::bulk("1"));
    assert_eq!(c.cmd(&["GET", "b"]), Value::Nil);
    drop(c);
    s.kill();
    // ...and with no AOF at all both servers exit with status 1, no reply.
    for mut server in [
        Server::start(&["--enable-debug-command", "yes"]),
        Server::start_redis(&["--enable-debug-command", "yes"]),
    ] {
        let mut c = server.conn();
        c.cmd(&["SET", "a", "1"]);
        c.send(&[b"DEBUG", b"LOADAOF"]);
        assert_eq!(c.read_to_close(), b"");
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = server.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < end, "server still running");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(1));
    }
}

/// A replica's full sync stops its AOF and turns it on again while the
/// rewrite that was turning it on still waits for the snapshot slot (a
/// slow BGSAVE holds it). The stopped rewrite gives up without touching
/// the new one: `aof_rewrite_in_progress` stays 1 until the new rewrite
/// is done, which leaves the AOF on, with only listed files, holding the
/// master's data.
#[test]
fn full_sync_while_the_aof_is_being_turned_on_leaves_one_live_rewrite() {
    let master = Server::start(&[
        "--shards",
        "2",
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut m = master.conn();
    set_keys(&mut m, 20);
    // 3000 keys at 3 ms each on one shard: a BGSAVE of about 9 s.
    let s = Server::start(&[
        "--shards",
        "1",
        "--enable-debug-command",
        "yes",
        "--rdb-key-save-delay",
        "3000",
    ]);
    let mut c = s.conn();
    let field = |c: &mut Conn, name: &str| common::info_field(c, "persistence", name);
    assert_eq!(
        c.cmd(&["DEBUG", "POPULATE", "3000", "old", "10"]),
        Value::ok()
    );
    c.cmd(&["BGSAVE"]);
    assert_eq!(field(&mut c, "rdb_bgsave_in_progress"), "1");
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), Value::ok());
    assert_eq!(field(&mut c, "aof_rewrite_in_progress"), "1");
    assert_eq!(
        c.cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]),
        Value::ok()
    );
    wait_until(Duration::from_secs(30), "full sync done", || {
        common::info_field(&mut c, "replication", "master_link_status") == "up"
            && c.cmd(&["DBSIZE"]).int() == 20
    });
    // The scenario held: the sync came while the save still ran.
    assert_eq!(field(&mut c, "rdb_bgsave_in_progress"), "1");
    assert_eq!(field(&mut c, "aof_rewrite_in_progress"), "1");
    wait_until(Duration::from_secs(60), "save and rewrite done", || {
        field(&mut c, "rdb_bgsave_in_progress") == "0"
            && field(&mut c, "aof_rewrite_in_progress") == "0"
    });
    assert_eq!(field(&mut c, "aof_last_bgrewrite_status"), "ok");
    // The AOF is on (INFO shows its sizes only then) from a new base.
    let info = c.cmd(&["INFO", "persistence"]).text();
    assert!(info.contains("aof_current_size:"), "{info}");
    assert!(manifest(&s).contains(" type b"), "{}", manifest(&s));
    assert_eq!(unlisted_files(&aof_dir(&s)), Vec::<String>::new());
    assert!(s.log_text().contains("Background AOF rewrite aborted"));
    // Writes streamed from now on reach it; its files alone hold the
    // master's data.
    m.cmd(&["SET", "after", "sync"]);
    wait_until(Duration::from_secs(10), "write applied and written", || {
        c.cmd(&["GET", "after"]) == Value::bulk("sync") && field(&mut c, "aof_buffer_length") == "0"
    });
    let want = digest(&mut m);
    drop(c);
    let dir = s.dir.path().to_path_buf();
    let mut s = s;
    s.kill();
    let again = start_cascade_in(&dir, &[]);
    assert_eq!(digest(&mut again.conn()), want);
}
