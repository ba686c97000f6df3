//! RDB persistence: SAVE/BGSAVE, loading at start, SHUTDOWN/SIGTERM saving,
//! corrupt files, and files crossing between Cascade and a real redis-server.

mod common;
use common::{tempdir::TempDir, wait_until, Conn, Server, Value};
use std::time::Duration;

fn fill(c: &mut Conn) {
    c.cmd(&["SET", "int", "-12345"]);
    c.cmd(&["SET", "big", "9223372036854775807"]);
    c.cmd(&["SET", "long", &"abc".repeat(5000)]);
    c.cmdb(&[b"SET", b"bin\0key", b"v\r\n\0x"]);
    c.cmdb(&[b"SET", b"", b"empty key"]);
    c.cmd(&["SET", "emptyval", ""]);
    c.cmd(&["SET", "ttl", "v", "EX", "5000"]);
    for i in 0..200 {
        c.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "in3", "three"]);
    c.cmd(&["SELECT", "15"]);
    c.cmd(&["SET", "in15", "fifteen", "PX", "9000000"]);
    c.cmd(&["SELECT", "0"]);
}

/// Appends a command to a pipeline being built.
fn push(batch: &mut Vec<u8>, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    batch.extend(common::encode(&args));
}

fn check(c: &mut Conn) {
    assert_eq!(c.cmd(&["GET", "int"]), Value::bulk("-12345"));
    assert_eq!(c.cmd(&["GET", "big"]), Value::bulk("9223372036854775807"));
    assert_eq!(c.cmd(&["GET", "long"]), Value::bulk(&"abc".repeat(5000)));
    assert_eq!(
        c.cmdb(&[b"GET", b"bin\0key"]),
        Value::Bulk(b"v\r\n\0x".to_vec())
    );
    assert_eq!(c.cmdb(&[b"GET", b""]), Value::bulk("empty key"));
    assert_eq!(c.cmd(&["GET", "emptyval"]), Value::bulk(""));
    let ttl = c.cmd(&["TTL", "ttl"]).int();
    assert!((4990..=5000).contains(&ttl), "{ttl}");
    assert_eq!(c.cmd(&["TTL", "k1"]), Value::Int(-1));
    assert_eq!(c.cmd(&["GET", "k199"]), Value::bulk("v199"));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(207));
    c.cmd(&["SELECT", "3"]);
    assert_eq!(c.cmd(&["GET", "in3"]), Value::bulk("three"));
    c.cmd(&["SELECT", "15"]);
    assert!(c.cmd(&["PTTL", "in15"]).int() > 8_000_000);
    c.cmd(&["SELECT", "0"]);
}

#[test]
fn save_and_load_round_trip_across_restarts() {
    let dir = TempDir::new("rdb");
    let d = dir.path().to_str().unwrap();
    {
        let s = Server::start(&["--shards", "2", "--dir", d]);
        let mut c = s.conn();
        fill(&mut c);
        let before = c.cmd(&["LASTSAVE"]).int();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
        assert!(c.cmd(&["LASTSAVE"]).int() >= before);
        let info = c.cmd(&["INFO", "persistence"]).text();
        assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
        assert!(info.contains("rdb_saves:1\r\n"), "{info}");
        assert!(info.contains("rdb_last_bgsave_status:ok\r\n"), "{info}");
    }
    common::family::assert_rdb_ok(&dir.path().join("dump.rdb"));
    // A different shard count must not matter.
    let s = Server::start(&["--shards", "1", "--dir", d]);
    let mut c = s.conn();
    check(&mut c);
    let log = s.log_text();
    assert!(
        log.contains("Done loading RDB, keys loaded: 209, keys expired: 0."),
        "{log}"
    );
    assert!(
        log.contains("Loading RDB produced by version 7.0.15"),
        "{log}"
    );
}

#[test]
fn bgsave_writes_in_the_background() {
    let dir = TempDir::new("bgsave");
    let s = Server::start(&["--dir", dir.path().to_str().unwrap()]);
    let mut c = s.conn();
    fill(&mut c);
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    wait_until(Duration::from_secs(10), "bgsave done", || {
        let info = c.cmd(&["INFO", "persistence"]).text();
        info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_saves:1")
    });
    assert!(dir.path().join("dump.rdb").exists());
    assert_eq!(
        c.cmd(&["BGSAVE", "NOW"]),
        Value::Error("ERR syntax error".into())
    );
}

#[test]
fn redis_dump_loads_in_cascade_and_back() {
    let dir = TempDir::new("interop");
    let d = dir.path().to_str().unwrap();
    {
        let r = Server::start_redis(&["--dir", d]);
        let mut c = r.conn();
        fill(&mut c);
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    }
    {
        let s = Server::start(&["--shards", "2", "--dir", d]);
        let mut c = s.conn();
        check(&mut c);
        // Write our own file from what we loaded.
        std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
        assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    }
    let r = Server::start_redis(&["--dir", d]);
    let mut c = r.conn();
    check(&mut c);
}

#[test]
fn sigterm_saves_when_save_points_are_set_and_nosave_does_not() {
    let dir = TempDir::new("sigterm");
    let d = dir.path().to_str().unwrap();
    {
        let mut s = Server::start(&["--dir", d, "--save", "3600 1"]);
        s.conn().cmd(&["SET", "kept", "1"]);
        assert!(s.terminate().success());
        let log = s.log_text();
        assert!(
            log.contains("Saving the final RDB snapshot before exiting."),
            "{log}"
        );
        assert!(log.contains("DB saved on disk"), "{log}");
    }
    {
        let mut s = Server::start(&["--dir", d, "--save", "3600 1"]);
        let mut c = s.conn();
        assert_eq!(c.cmd(&["GET", "kept"]), Value::bulk("1"));
        c.cmd(&["SET", "lost", "1"]);
        c.send(&[b"SHUTDOWN", b"NOSAVE"]);
        let _ = c.read_to_close();
        wait_until(Duration::from_secs(10), "exit", || {
            matches!(s.child.try_wait(), Ok(Some(_)))
        });
    }
    {
        let mut s = Server::start(&["--dir", d]);
        let mut c = s.conn();
        assert_eq!(c.cmd(&["GET", "lost"]), Value::Nil);
        c.cmd(&["SET", "saved-by-shutdown-save", "1"]);
        c.send(&[b"SHUTDOWN", b"SAVE"]);
        let _ = c.read_to_close();
        wait_until(Duration::from_secs(10), "exit", || {
            matches!(s.child.try_wait(), Ok(Some(_)))
        });
    }
    let s = Server::start(&["--dir", d]);
    assert_eq!(
        s.conn().cmd(&["GET", "saved-by-shutdown-save"]),
        Value::bulk("1")
    );
}

#[test]
fn corrupt_dump_refuses_to_start_and_is_left_alone() {
    let dir = TempDir::new("corrupt");
    let d = dir.path().to_str().unwrap();
    {
        let s = Server::start(&["--dir", d]);
        let mut c = s.conn();
        fill(&mut c);
        c.cmd(&["SAVE"]);
    }
    let path = dir.path().join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    for (name, damaged) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("bad checksum", {
            let n = bytes.len();
            bytes[n - 1] ^= 0xff;
            bytes.clone()
        }),
        ("bad magic", {
            let mut b = bytes.clone();
            b[0] = b'X';
            b
        }),
    ] {
        std::fs::write(&path, &damaged).unwrap();
        let port = common::free_port();
        let log = dir.path().join("corrupt.log");
        let status = std::process::Command::new(common::cascade_bin())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                d,
            ])
            .arg("--logfile")
            .arg(&log)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{name}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("Fatal error loading the DB"),
            "{name}: {text}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damaged,
            "{name}: file untouched"
        );
    }
}

#[test]
fn save_points_trigger_a_background_save() {
    let dir = TempDir::new("savepoints");
    let s = Server::start(&["--dir", dir.path().to_str().unwrap(), "--save", "1 2"]);
    let mut c = s.conn();
    c.cmd(&["SET", "a", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let info = c.cmd(&["INFO", "persistence"]).text();
    assert!(
        info.contains("rdb_saves:0\r\n"),
        "one change is not enough: {info}"
    );
    c.cmd(&["SET", "b", "1"]);
    wait_until(Duration::from_secs(10), "automatic save", || {
        c.cmd(&["INFO", "persistence"])
            .text()
            .contains("rdb_saves:1\r\n")
    });
    assert!(dir.path().join("dump.rdb").exists());
    assert!(s.log_text().contains("2 changes in 1 seconds. Saving..."));
}

#[test]
fn failed_bgsave_stops_writes_until_fixed() {
    let s = Server::start(&["--save", "3600 1", "--enable-protected-configs", "yes"]);
    let mut c = s.conn();
    let gone = s.dir.path().join("vanishing");
    std::fs::create_dir_all(&gone).unwrap();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", gone.to_str().unwrap()]),
        Value::ok()
    );
    std::fs::remove_dir_all(&gone).unwrap();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Value::ok());
    assert!(!c.cmd(&["BGSAVE"]).is_error());
    common::wait_until(Duration::from_secs(20), "failed save", || {
        common::info_field(&mut s.conn(), "persistence", "rdb_last_bgsave_status") == "err"
    });
    let misconf = c.cmd(&["SET", "k", "v2"]);
    assert!(
        matches!(&misconf, Value::Error(e) if e.starts_with("MISCONF Redis is configured to save RDB snapshots")),
        "{misconf:?}"
    );
    assert!(c.cmd(&["PING"]).is_error());
    assert_eq!(c.cmd(&["GET", "k"]).text(), "v");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["SET", "k", "v2"]), Value::ok());
}

#[test]
fn flushall_with_save_points_saves_the_empty_dataset() {
    let mut s = Server::start(&["--save", "3600 1000"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Value::ok());
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::ok());
    drop(c);
    s.restart();
    assert_eq!(s.conn().cmd(&["DBSIZE"]), Value::Int(0));
}

/// BGSAVE is fork-less: the shards keep serving while the snapshot is
/// written, and the file holds every key exactly as it was at the cut,
/// whatever happens to the keys meanwhile (overwrites, deletes, new keys,
/// a FLUSHDB of another database).
#[test]
fn bgsave_writes_the_dataset_as_it_was_at_the_cut() {
    const KEYS: usize = 3000;
    // ~3 s of snapshot: far longer than the writes below take, even on a
    // loaded machine.
    let mut s = Server::start(&["--shards", "2", "--rdb-key-save-delay", "1000"]);
    let mut c = s.conn();
    let mut batch = Vec::new();
    for i in 0..KEYS {
        push(&mut batch, &["SET", &format!("k{i}"), &format!("old-{i}")]);
    }
    push(&mut batch, &["SELECT", "1"]);
    for i in 0..100 {
        push(&mut batch, &["SET", &format!("one{i}"), "x"]);
    }
    // Counters that INCRBY changes in place during the snapshot.
    push(&mut batch, &["SELECT", "2"]);
    for i in 0..100 {
        push(&mut batch, &["SET", &format!("n{i}"), &i.to_string()]);
    }
    push(&mut batch, &["SELECT", "0"]);
    c.send_raw(&batch);
    for _ in 0..KEYS + 203 {
        assert!(!c.read().is_error());
    }
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    // Change everything while the snapshot runs.
    let mut batch = Vec::new();
    for i in 0..KEYS {
        let k = format!("k{i}");
        match i % 4 {
            0 => push(&mut batch, &["DEL", &k]),
            1 => push(&mut batch, &["SET", &k, "new"]),
            2 => push(&mut batch, &["APPEND", &k, "+"]),
            _ => push(&mut batch, &["EXPIRE", &k, "1000"]),
        }
        push(&mut batch, &["SET", &format!("born{i}"), "y"]);
    }
    push(&mut batch, &["SELECT", "1"]);
    push(&mut batch, &["FLUSHDB"]);
    push(&mut batch, &["SELECT", "2"]);
    for i in 0..100 {
        push(&mut batch, &["INCRBY", &format!("n{i}"), "1000"]);
    }
    push(&mut batch, &["SELECT", "0"]);
    c.send_raw(&batch);
    for _ in 0..2 * KEYS + 104 {
        assert!(!c.read().is_error());
    }
    assert!(
        c.cmd(&["INFO", "persistence"])
            .text()
            .contains("rdb_bgsave_in_progress:1"),
        "the writes must land while the snapshot is still running"
    );
    assert_eq!(c.cmd(&["GET", "k1"]), Value::bulk("new"));
    c.cmd(&["SELECT", "2"]);
    assert_eq!(c.cmd(&["GET", "n7"]), Value::bulk("1007"));
    c.cmd(&["SELECT", "0"]);
    // The snapshot's cost and progress, where Redis reports its fork's.
    let num = |name: &str| -> i64 { s.info_field("persistence", name).parse().unwrap() };
    assert!(num("current_cow_peak") >= num("current_cow_size"));
    assert_eq!(num("current_save_keys_total"), KEYS as i64 + 200);
    let processed = num("current_save_keys_processed");
    assert!((0..=KEYS as i64 + 200).contains(&processed), "{processed}");
    assert!(num("rdb_current_bgsave_time_sec") >= 0);
    let perc: f64 = s
        .info_field("persistence", "current_fork_perc")
        .parse()
        .unwrap();
    assert!((0.0..=100.0).contains(&perc), "{perc}");
    wait_until(Duration::from_secs(30), "BGSAVE to finish", || {
        s.info_field("persistence", "rdb_bgsave_in_progress") == "0"
    });
    wait_until(
        Duration::from_secs(30),
        "the snapshot state to be dropped",
        || num("current_save_keys_total") == 0,
    );
    assert_eq!(s.info_field("persistence", "rdb_last_bgsave_status"), "ok");
    assert_eq!(num("current_cow_peak"), 0);
    assert_eq!(num("current_save_keys_processed"), 0);
    assert_eq!(num("rdb_current_bgsave_time_sec"), -1);
    s.restart();
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(KEYS as i64));
    for i in 0..KEYS {
        assert_eq!(
            c.cmd(&["GET", &format!("k{i}")]),
            Value::bulk(&format!("old-{i}")),
            "k{i}"
        );
        assert_eq!(c.cmd(&["TTL", &format!("k{i}")]), Value::Int(-1));
    }
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(100));
    c.cmd(&["SELECT", "2"]);
    for i in 0..100 {
        assert_eq!(
            c.cmd(&["GET", &format!("n{i}")]),
            Value::bulk(&i.to_string()),
            "n{i} as it was at the cut"
        );
    }
}

/// The cut is one instant on every shard: writers keep updating pairs of
/// keys on different shards with one MSET while a slowed BGSAVE runs; in
/// the saved file every pair is still equal.
#[test]
fn snapshot_cut_keeps_cross_shard_msets_whole() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const PAIRS: usize = 200;
    let mut s = Server::start(&["--shards", "2", "--rdb-key-save-delay", "100"]);
    let mut c = s.conn();
    // Shards are chosen by the whole key, so the halves a:i and b:i of a
    // pair land on either shard: over 200 pairs both the same-shard and the
    // cross-shard cases occur.
    for i in 0..PAIRS {
        let (a, b) = (format!("a:{i}"), format!("b:{i}"));
        assert_eq!(c.cmd(&["MSET", &a, "0", &b, "0"]), Value::ok());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (port, stop) = (s.port, stop.clone());
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let i = (n as usize * 7 + w) % PAIRS;
                    let v = format!("{w}-{n}");
                    let (a, b) = (format!("a:{i}"), format!("b:{i}"));
                    assert_eq!(c.cmd(&["MSET", &a, &v, &b, &v]), Value::ok());
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    wait_until(Duration::from_secs(30), "BGSAVE to finish", || {
        s.info_field("persistence", "rdb_bgsave_in_progress") == "0"
    });
    stop.store(true, Ordering::SeqCst);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(writes > 0);
    assert_eq!(s.info_field("persistence", "rdb_last_bgsave_status"), "ok");
    s.restart();
    let mut c = s.conn();
    for i in 0..PAIRS {
        let a = c.cmd(&["GET", &format!("a:{i}")]);
        let b = c.cmd(&["GET", &format!("b:{i}")]);
        assert_eq!(a, b, "pair {i} was cut in half");
    }
}

#[test]
fn debug_reload_saves_and_loads_the_dataset_back() {
    let s = Server::start(&["--enable-debug-command", "yes", "--shards", "2"]);
    let mut c = s.conn();
    fill(&mut c);
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SADD", "st", "1", "2", "x"]);
    c.cmd(&["SELECT", "0"]);
    let digest = c.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::ok());
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), digest);
    check(&mut c);
    c.cmd(&["SELECT", "5"]);
    assert_eq!(c.cmd(&["HGET", "h", "f"]), Value::bulk("v"));
    c.cmd(&["DEL", "h"]);
    c.cmd(&["SELECT", "0"]);
    // NOSAVE loads the file as it is: the deleted hash comes back.
    assert_eq!(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"]), Value::ok());
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), digest);
    // NOFLUSH keeps keys the file does not have; MERGE lets the file win.
    c.cmd(&["SET", "extra", "1"]);
    c.cmd(&["SET", "int", "changed"]);
    assert_eq!(
        c.cmd(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]),
        Value::ok()
    );
    assert_eq!(c.cmd(&["GET", "extra"]), Value::bulk("1"));
    assert_eq!(c.cmd(&["GET", "int"]), Value::bulk("-12345"));
    assert!(c.cmd(&["DEBUG", "RELOAD", "BOGUS"]).is_error());
    assert!(s.log_text().contains("DB reloaded by DEBUG RELOAD"));
}

/// The dump is loaded while the server already answers: commands get
/// `-LOADING`, INFO shows the progress, and once loaded everything is
/// there, as with Redis.
#[test]
fn commands_get_loading_while_the_dump_loads() {
    let mut s = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000"]), Value::ok());
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    drop(c);
    // ~1.5 s of loading at 500 µs per key.
    s.kill();
    let dir = s.dir.path().to_str().unwrap().to_string();
    let loading = Server::start_until_listening(&["--dir", &dir, "--key-load-delay", "500"]);
    let mut c = loading.conn();
    assert_eq!(
        c.cmd(&["GET", "key:1"]),
        Value::Error("LOADING Redis is loading the dataset in memory".into())
    );
    let info = c.cmd(&["INFO", "persistence"]).text();
    assert!(info.contains("loading:1\r\n"), "{info}");
    assert!(info.contains("loading_total_bytes:"), "{info}");
    assert!(info.contains("loading_eta_seconds:"), "{info}");
    wait_until(Duration::from_secs(30), "the load to end", || {
        loading.info_field("persistence", "loading") == "0"
    });
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(3000));
    assert_eq!(c.cmd(&["GET", "key:1"]), Value::bulk("value:1"));
    let log = loading.log_text();
    let ready = log.find("Ready to accept connections").unwrap();
    let done = log.find("Done loading RDB, keys loaded: 3000").unwrap();
    assert!(done < ready, "{log}");
}

/// What a snapshot holds for keys changed before it wrote them shows as
/// `current_cow_size`/`current_cow_peak` while it runs and as
/// `rdb_last_cow_size` after, the fields where Redis reports its fork's
/// copy-on-write cost.
#[test]
fn snapshot_copy_on_write_cost_is_reported_like_a_fork() {
    const KEYS: usize = 50_000;
    let s = Server::start(&[
        "--shards",
        "2",
        "--rdb-key-save-delay",
        "20",
        "--enable-debug-command",
        "yes",
    ]);
    let mut c = s.conn();
    let num = |name: &str| -> i64 { s.info_field("persistence", name).parse().unwrap() };
    assert_eq!(
        c.cmd(&["DEBUG", "POPULATE", &KEYS.to_string()]),
        Value::ok()
    );
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Value::Simple("Background saving started".into())
    );
    // Overwrite everything: most keys are still in the shards, waiting to
    // be written, so their pre-cut versions are kept.
    let mut batch = Vec::new();
    for i in 0..KEYS {
        batch.extend(common::encode(&[
            b"SET",
            format!("key:{i}").as_bytes(),
            b"changed",
        ]));
    }
    c.send_raw(&batch);
    for _ in 0..KEYS {
        assert_eq!(c.read(), Value::ok());
    }
    assert_eq!(
        num("rdb_bgsave_in_progress"),
        1,
        "the snapshot ended too soon"
    );
    assert!(num("current_cow_peak") > 0);
    assert!(num("current_save_keys_processed") < KEYS as i64);
    wait_until(Duration::from_secs(60), "BGSAVE to finish", || {
        num("rdb_bgsave_in_progress") == 0 && num("current_save_keys_total") == 0
    });
    assert!(num("rdb_last_cow_size") > 0);
}
