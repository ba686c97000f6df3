//! The operator scripts under `scripts/`, run for real: the replication
//! demo goes end to end on three free consecutive ports against the binary
//! under test, cleans up after an interrupt, and refuses busy ports. Each
//! run gets its own TMPDIR so the test can see that the script removed its
//! temporary directory and left no server running.

mod common;
use common::tempdir::TempDir;
use common::{free_ports, require_tool, wait_until};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The whole demo takes about a second on an idle machine; this is for a
/// loaded one, after which the run is stopped and reported as hung.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// One run of `scripts/demo-replication.sh` in its own process group (so
/// a signal reaches it as a Ctrl-C from a terminal would), with its output
/// in files and TMPDIR under a directory of its own.
struct Demo {
    child: Child,
    base: u16,
    dir: TempDir,
}

impl Demo {
    fn start(base: u16) -> Demo {
        Demo::start_with(base, &[])
    }

    fn start_with(base: u16, env: &[(&str, &str)]) -> Demo {
        require_tool("redis-cli");
        let dir = TempDir::new("demo-script");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-replication.sh");
        // SIGINT back to its default first: a test run started in the
        // background inherits it ignored, and a shell cannot trap a signal
        // ignored on entry (the Ctrl-C test then saw the demo carry on).
        let child = Command::new("env")
            .arg("--default-signal=INT")
            .arg("bash")
            .arg(script)
            .env("CASCADE_BIN", env!("CARGO_BIN_EXE_cascade"))
            .env("DEMO_BASE_PORT", base.to_string())
            .env("TMPDIR", &tmp)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .process_group(0)
            .spawn()
            .expect("run bash");
        Demo { child, base, dir }
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
    }

    /// Waits for the script to exit. A run that hangs gets SIGTERM (its
    /// trap stops the servers), then SIGKILL, and fails the test.
    fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + RUN_DEADLINE;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("TERM");
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end && self.child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("KILL");
        let _ = self.child.wait();
        let leftovers = self.kill_leftovers();
        panic!(
            "the demo did not finish within {RUN_DEADLINE:?}; leftover servers killed: {leftovers:?}\n{}",
            self.output()
        );
    }

    /// Pids of running processes started from this run's configuration
    /// files (every server's command line names its file under TMPDIR).
    fn servers_left(&self) -> Vec<u32> {
        let tmp = self.tmp().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&tmp) {
                pids.push(pid);
            }
        }
        pids
    }

    fn kill_leftovers(&self) -> Vec<u32> {
        let pids = self.servers_left();
        for pid in &pids {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        pids
    }

    /// Nothing of the run is left: no server process, no open port, the
    /// temporary directory (with the pidfiles) gone.
    fn assert_cleaned_up(&self) {
        let leftovers = self.servers_left();
        if !leftovers.is_empty() {
            self.kill_leftovers();
            panic!(
                "servers still running after the demo: {leftovers:?}\n{}",
                self.output()
            );
        }
        for port in self.base..self.base + 3 {
            assert!(
                TcpStream::connect(("127.0.0.1", port)).is_err(),
                "port {port} still accepts connections after the demo\n{}",
                self.output()
            );
        }
        let left: Vec<_> = std::fs::read_dir(self.tmp())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "the demo left {left:?} behind\n{}",
            self.output()
        );
    }
}

/// Asserts that `needles` appear in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str], output: &str) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} missing (or out of order) in the demo's output\n{output}"),
        }
    }
}

#[test]
fn demo_replication_runs_end_to_end() {
    let base = free_ports(3);
    let (m, r1, r2) = (base, base + 1, base + 2);
    let started = Instant::now();
    let mut demo = Demo::start(base);
    let status = demo.wait();
    let took = started.elapsed();
    let out = demo.output();
    assert!(status.success(), "the demo failed ({status})\n{out}");
    let stdout = demo.stdout();
    let readonly = format!(
        "{r1}> SET demo:greeting \"written on a replica\"\n\
         READONLY You can't write against a read only replica."
    );
    let chain = format!("{r2}> GET demo:chain\nfrom {m} through {r1} to {r2}");
    let promoted = format!("{r1}> SET demo:promoted \"written on the promoted node\"\nOK");
    let followed = format!("{r2}> GET demo:promoted\nwritten on the promoted node");
    assert_in_order(
        &stdout,
        &[
            &format!("node on port {m} is up"),
            &format!("node on port {r2} is up"),
            "both replicas report master_link_status:up",
            &format!("port={r2},state=online"),
            "master_link_status:up",
            &format!("{r2}> GET demo:greeting\nhello from the master"),
            &readonly,
            &format!("{r2}> REPLICAOF 127.0.0.1 {r1}\nOK"),
            &chain,
            &format!("{r1}> REPLICAOF NO ONE\nOK"),
            &format!("{r1}> INFO replication: role:master"),
            &promoted,
            &followed,
            "sync_full:0",
            &format!("node on port {m} stopped (pidfile removed, port closed)"),
            &format!("node on port {r2} stopped (pidfile removed, port closed)"),
            "Demo complete",
        ],
        &out,
    );
    demo.assert_cleaned_up();
    eprintln!("the demo took {took:?}");
}

#[test]
fn demo_replication_cleans_up_when_interrupted() {
    let base = free_ports(3);
    // The demo pauses once the replicas are linked, so the signal lands
    // there however slow or fast the machine is.
    let mut demo = Demo::start_with(base, &[("DEMO_PAUSE", "120")]);
    wait_until(
        RUN_DEADLINE,
        "the demo to pause with its replicas linked",
        || demo.stdout().contains("Pausing 120 s") || demo.child.try_wait().unwrap().is_some(),
    );
    // As Ctrl-C in a terminal: SIGINT to the whole foreground group.
    demo.signal_group("INT");
    let status = demo.wait();
    let out = demo.output();
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(demo.stderr().contains("Interrupted."), "{out}");
    assert!(!demo.stdout().contains("Demo complete"), "{out}");
    demo.assert_cleaned_up();
}

#[test]
fn demo_replication_refuses_a_busy_port() {
    let base = free_ports(3);
    let busy = TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    let mut demo = Demo::start(base);
    let status = demo.wait();
    let out = demo.output();
    assert_eq!(status.code(), Some(1), "{out}");
    let msg = format!("FAILED: port {} is already in use", base + 1);
    assert!(demo.stderr().contains(&msg), "{out}");
    drop(busy);
    let leftovers = demo.servers_left();
    assert!(
        leftovers.is_empty(),
        "servers started: {leftovers:?}\n{out}"
    );
}
