//! Helpers shared by the benchmarks in `benches/`: finding tools, child
//! processes with time limits, temporary directories and free ports, a tiny
//! RESP client, starting and stopping a server, machine facts, medians,
//! text tables and JSON output.
//!
//! Each bench target compiles its own copy of this module (`mod common;`)
//! and uses only part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Result<T> = std::result::Result<T, String>;

pub const START_DEADLINE: Duration = Duration::from_secs(20);
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Tools, machine

/// The Cascade binary cargo built for this bench (`cargo bench` builds the
/// package's binaries with the bench profile first).
pub fn cascade_binary() -> Result<PathBuf> {
    let cascade = PathBuf::from(env!("CARGO_BIN_EXE_cascade"));
    if !cascade.is_file() {
        return Err(format!(
            "the cascade binary {} does not exist (run through `cargo bench`, \
             or build it with `cargo build --release --bin cascade`)",
            cascade.display()
        ));
    }
    Ok(cascade)
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `name` on the PATH, or an error saying which Debian package has it.
pub fn need_tool(name: &str, package: &str) -> Result<PathBuf> {
    find_in_path(name).ok_or_else(|| {
        format!(
            "`{name}` was not found on the PATH; install it with `sudo apt-get install {package}`"
        )
    })
}

pub struct Machine {
    pub nproc: usize,
    pub online: usize,
    pub model: String,
    pub kernel: String,
    pub cascade_version: String,
    pub redis_version: String,
    pub benchmark_version: String,
}

impl Machine {
    pub fn probe(cascade: &Path, redis_server: &Path, redis_benchmark: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let version = |bin: &Path| {
            let mut cmd = Command::new(bin);
            cmd.arg("--version");
            match run_captured(cmd, Duration::from_secs(10)) {
                Ok(out) if out.status.success() => out.stdout.trim().to_string(),
                _ => "unknown".into(),
            }
        };
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            online,
            model,
            kernel,
            cascade_version: version(cascade),
            redis_version: version(redis_server),
            benchmark_version: version(redis_benchmark),
        }
    }

    /// The `"machine": {...}` JSON object.
    pub fn json(&self) -> String {
        format!(
            "{{\"nproc\": {}, \"online_cpus\": {}, \"model\": {}, \"kernel\": {}, \
             \"cascade\": {}, \"redis_server\": {}, \"redis_benchmark\": {}, \"clock_ticks_per_sec\": {}}}",
            self.nproc,
            self.online,
            json_str(&self.model),
            json_str(&self.kernel),
            json_str(&self.cascade_version),
            json_str(&self.redis_version),
            json_str(&self.benchmark_version),
            clock_ticks_per_sec()
        )
    }
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// Makes the kernel kill the child if this process dies (Ctrl-C, kill), so
/// no server outlives the benchmark even when Drop does not run.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => return Ok(None),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for a child process: {e}")),
        }
    }
}

pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn reader_thread<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a command to completion with a time limit, capturing its output.
pub fn run_captured(mut cmd: Command, timeout: Duration) -> Result<Captured> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {desc}: {e}"))?;
    let out = reader_thread(child.stdout.take());
    let err = reader_thread(child.stderr.take());
    let status = match wait_timeout(&mut child, timeout)? {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{desc} did not finish within {}s; killed it",
                timeout.as_secs()
            ));
        }
    };
    Ok(Captured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

pub fn temp_dir(tag: &str) -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "cascade-bench-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    Ok(dir)
}

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("could not find a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("could not find a free port: {e}"))
}

// ---------------------------------------------------------------------------
// A tiny RESP client

/// Only read whole by the benches, or printed with `{:?}` in error messages.
#[derive(Debug)]
#[allow(dead_code)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    /// A bulk or simple string reply as text; an error reply as `Err`.
    pub fn text(self) -> Result<String> {
        match self {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Reply::Simple(s) => Ok(s),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad("bad length in reply"));
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(num(rest)?),
        "$" => {
            let n = num(rest)?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = num(rest)?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad("unexpected reply type")),
    })
}

/// Appends one command in RESP to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&str]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// One command on a fresh connection.
pub fn command(port: u16, args: &[&str], timeout: Duration) -> std::io::Result<Reply> {
    Conn::open(port, timeout)?.call(args)
}

/// A kept-open connection; every read and write has a time limit.
pub struct Conn {
    pub port: u16,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16, timeout: Duration) -> std::io::Result<Conn> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            port,
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    pub fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.writer.set_read_timeout(Some(timeout))?;
        self.writer.set_write_timeout(Some(timeout))
    }

    pub fn call(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let mut req = Vec::new();
        encode_command(&mut req, args);
        self.writer.write_all(&req)?;
        read_reply(&mut self.reader)
    }

    /// Sends many commands at once, then reads as many replies.
    pub fn pipeline(&mut self, commands: &[Vec<String>]) -> std::io::Result<Vec<Reply>> {
        let mut req = Vec::new();
        for c in commands {
            let args: Vec<&str> = c.iter().map(|s| s.as_str()).collect();
            encode_command(&mut req, &args);
        }
        self.writer.write_all(&req)?;
        commands
            .iter()
            .map(|_| read_reply(&mut self.reader))
            .collect()
    }

    /// The text of `INFO <section>`.
    pub fn info(&mut self, section: &str) -> Result<String> {
        self.call(&["INFO", section])
            .map_err(|e| format!("INFO {section} on port {}: {e}", self.port))?
            .text()
            .map_err(|e| format!("INFO {section} on port {}: {e}", self.port))
    }
}

/// One `field:value` line of INFO text.
pub fn info_value<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim())
}

/// One field of `INFO <section>`, as a number.
pub fn info_field(port: u16, section: &str, field: &str) -> Result<u64> {
    let reply = command(port, &["INFO", section], Duration::from_secs(5))
        .map_err(|e| format!("INFO {section} on port {port}: {e}"))?;
    let text = match reply {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(format!("INFO {section} on port {port}: got {other:?}")),
    };
    info_value(&text, field)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("INFO {section} on port {port} has no numeric {field}"))
}

// ---------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Server {
    Cascade,
    Redis,
}

impl Server {
    /// The two servers in the order repeat `repeat` runs them: alternating,
    /// so neither always runs on a machine the other has just warmed.
    pub fn in_order(repeat: usize) -> [Server; 2] {
        if repeat.is_multiple_of(2) {
            [Server::Cascade, Server::Redis]
        } else {
            [Server::Redis, Server::Cascade]
        }
    }

    /// `cascade` or `redis`, whichever this server is.
    pub fn pick<T>(self, cascade: T, redis: T) -> T {
        match self {
            Server::Cascade => cascade,
            Server::Redis => redis,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Server::Cascade => "Cascade",
            Server::Redis => "Redis",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Server::Cascade => "cascade",
            Server::Redis => "redis",
        }
    }
}

/// How to start a server: which binary, pinned to which core, with which
/// directives besides the ones every bench passes.
pub struct Launch<'a> {
    pub server: Server,
    pub bin: &'a Path,
    /// `taskset` and the CPU list to run the server on.
    pub pin: Option<(&'a Path, &'a str)>,
    pub args: Vec<String>,
    /// Names the temporary directory and the server in messages.
    pub label: String,
}

/// A running server; killed and its directory removed on drop. Its
/// standard output and error go to `server.log` in its directory.
pub struct ServerProc {
    pub server: Server,
    pub label: String,
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// The command line, for messages.
    pub desc: String,
    /// Leave `dir` in place on drop (see `stop_keeping_files`).
    keep_dir: bool,
}

impl ServerProc {
    /// Starts the server and waits until it answers PING.
    pub fn start(launch: Launch) -> Result<ServerProc> {
        let mut proc = ServerProc::spawn(launch)?;
        proc.wait_ready()?;
        Ok(proc)
    }

    /// Starts the server without waiting for it (see `wait_ready`).
    /// Passes `--save "" --appendonly no --bind 127.0.0.1`, a free port and
    /// a fresh directory.
    pub fn spawn(launch: Launch) -> Result<ServerProc> {
        let Launch {
            server,
            bin,
            pin,
            args,
            label,
        } = launch;
        let dir = temp_dir(&label.to_lowercase().replace(' ', "-"))?;
        let port = free_port()?;
        let mut cmd = match pin {
            Some((taskset, cpus)) => {
                let mut c = Command::new(taskset);
                c.arg("-c").arg(cpus).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(&args);
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("could not create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("could not open {}: {e}", log_path.display()))?;
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        die_with_parent(&mut cmd);
        let desc = format!("{cmd:?}");
        match cmd.spawn() {
            Ok(child) => Ok(ServerProc {
                server,
                label,
                child,
                port,
                dir,
                desc,
                keep_dir: false,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!("could not start {desc}: {e}"))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        self.log_tail_lines(20)
    }

    pub fn log_tail_lines(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n");
        format!("--- last lines of the {} log ---\n{tail}", self.label)
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let fail = |proc: &ServerProc, msg: String| {
            format!("{msg}\ncommand: {}\n{}", proc.desc, proc.log_tail())
        };
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(fail(
                        self,
                        format!("{} exited during start-up ({status})", self.label),
                    ))
                }
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for {}: {e}", self.label)),
            }
            let last = match command(self.port, &["PING"], Duration::from_millis(500)) {
                Ok(Reply::Simple(s)) if s == "PONG" => return Ok(()),
                Ok(other) => format!("PING answered {other:?}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(fail(
                    self,
                    format!(
                        "{} did not answer PING on port {} within {}s ({last})",
                        self.label,
                        self.port,
                        START_DEADLINE.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// user + system CPU time of the whole process (all threads), in ticks.
    pub fn cpu_ticks(&self) -> Result<u64> {
        let path = format!("/proc/{}/stat", self.pid());
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("could not read {path}: {e}"))?;
        // The command name may contain spaces and parentheses: fields are
        // counted from after the last ')'. There, field 3 (state) is index 0,
        // so utime (14) and stime (15) are indexes 11 and 12.
        let rest = text
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| format!("unexpected format of {path}"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(|| format!("unexpected format of {path}"))
        };
        Ok(field(11)? + field(12)?)
    }

    /// Distinct CPU affinity lists of the process's threads.
    pub fn thread_affinities(&self) -> Vec<String> {
        let mut lists = Vec::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return lists;
        };
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            if let Some(v) = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            {
                let v = v.trim().to_string();
                if !lists.contains(&v) {
                    lists.push(v);
                }
            }
        }
        lists.sort();
        lists
    }

    /// SHUTDOWN NOSAVE, then kill if the server does not exit in time.
    pub fn stop(mut self) -> Result<()> {
        self.shut_down()
        // Drop kills (if needed) and removes the directory.
    }

    /// [`ServerProc::stop`], leaving the directory (and the dump in it) for
    /// the caller to use and then remove.
    pub fn stop_keeping_files(mut self) -> Result<()> {
        let stopped = self.shut_down();
        self.keep_dir = true;
        stopped
    }

    fn shut_down(&mut self) -> Result<()> {
        let _ = command(self.port, &["SHUTDOWN", "NOSAVE"], Duration::from_secs(2));
        match wait_timeout(&mut self.child, STOP_DEADLINE)? {
            Some(_) => Ok(()),
            None => Err(format!(
                "{} did not exit within {}s of SHUTDOWN NOSAVE; killed it",
                self.label,
                STOP_DEADLINE.as_secs()
            )),
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = wait_timeout(&mut self.child, STOP_DEADLINE);
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// redis-benchmark output

/// Finds the requests per second of `test` in redis-benchmark's --csv output:
/// a header `"test","rps",...` then lines like `"SET","123456.78",...`
/// (MSET is reported as `"MSET (10 keys)"`).
pub fn parse_csv_rps(stdout: &str, test: &str) -> Result<f64> {
    let mut header_ok = false;
    for line in stdout.lines() {
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if fields.len() < 2 {
            continue;
        }
        if fields[0] == "test" {
            if fields[1] != "rps" {
                return Err(format!(
                    "unexpected redis-benchmark CSV header (wanted \"test\",\"rps\",...): {line}"
                ));
            }
            header_ok = true;
            continue;
        }
        let name = fields[0].split(" (").next().unwrap_or("");
        if name.eq_ignore_ascii_case(test) {
            if !header_ok {
                return Err(format!(
                    "redis-benchmark CSV output has no \"test\",\"rps\" header:\n{stdout}"
                ));
            }
            return fields[1]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad rps value in redis-benchmark output: {line}"));
        }
    }
    Err(format!(
        "no {} row in redis-benchmark output:\n{stdout}",
        test.to_uppercase()
    ))
}

// ---------------------------------------------------------------------------
// Report

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// A text table: the first column left-aligned, the others right-aligned,
/// a rule under the header.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i == 0 {
                let _ = write!(out, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{c}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, header);
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let _ = writeln!(out, "{}", "-".repeat(total));
    for r in rows {
        let cells: Vec<&str> = r.iter().map(|s| s.as_str()).collect();
        line(&mut out, &cells);
    }
    out
}

pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

/// The arguments a bench was given, without the `--bench` cargo appends to
/// `harness = false` targets (dropped first so it is never taken as an
/// option's value).
pub fn bench_args() -> impl Iterator<Item = String> {
    std::env::args().skip(1).filter(|a| a != "--bench")
}

/// The value after `--repeat`: a count of at least 1.
pub fn repeat_arg(args: &mut impl Iterator<Item = String>) -> Result<usize> {
    let v = args.next().ok_or("--repeat needs a number")?;
    let n: usize = v
        .parse()
        .map_err(|_| format!("--repeat: not a number: {v:?}"))?;
    if n == 0 {
        return Err("--repeat must be at least 1".into());
    }
    Ok(n)
}

/// The value after `--timeout`: whole seconds, at least 1.
pub fn timeout_arg(args: &mut impl Iterator<Item = String>) -> Result<Duration> {
    let v = args.next().ok_or("--timeout needs seconds")?;
    let s: u64 = v
        .parse()
        .map_err(|_| format!("--timeout: not a number: {v:?}"))?;
    Ok(Duration::from_secs(s.max(1)))
}

/// The path after `flag` (`what` names it in the error).
pub fn path_arg(
    flag: &str,
    what: &str,
    args: &mut impl Iterator<Item = String>,
) -> Result<PathBuf> {
    Ok(PathBuf::from(
        args.next().ok_or_else(|| format!("{flag} needs {what}"))?,
    ))
}

// ---------------------------------------------------------------------------
// Memory of a process tree

pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Children of `pid` (a fork of redis-server, for one).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the last ')': state, then ppid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

pub fn pss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Memory of the master: its VmRSS, and the PSS of it and its children
/// (shared pages counted once), in kB.
pub fn memory_kb(pid: u32, with_pss: bool) -> (u64, u64) {
    let rss = proc_status_kb(pid, "VmRSS").unwrap_or(0);
    if !with_pss {
        return (rss, 0);
    }
    let mut pss = pss_kb(pid).unwrap_or(0);
    for c in children(pid) {
        pss += pss_kb(c).unwrap_or(0);
    }
    (rss, pss)
}
