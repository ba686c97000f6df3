//! Test harness: start the real `cascade` binary (or a real `redis-server`)
//! on a free port, talk RESP to it, wait on conditions with deadlines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A RESP value as the tests see it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Double(String),
    Bool(bool),
    Verbatim(String),
    Push(Vec<Value>),
    BigNumber(String),
}

impl Value {
    pub fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }
    pub fn ok() -> Value {
        Value::Simple("OK".into())
    }
    /// The text of a simple string, bulk, verbatim or error.
    pub fn text(&self) -> String {
        match self {
            Value::Simple(s) | Value::Error(s) | Value::Verbatim(s) | Value::Double(s) => s.clone(),
            Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("no text in {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }
    pub fn array(&self) -> &[Value] {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => v,
            other => panic!("not an array: {other:?}"),
        }
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

/// A free TCP port on 127.0.0.1 for a server. Parallel tests of one binary
/// take turns through one counter over a window of ports below the kernel's
/// ephemeral range, chosen by process id, and a port is only handed out if
/// it can be bound right now. Asking the kernel for port 0 instead could
/// hand two tests the same port between its release and the servers' bind;
/// both servers would then listen on it (SO_REUSEPORT) and share its
/// connections. `Server::start` still retries on "Address already in use".
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive ports that are free right now, reserved
/// from the same counter as [`free_port`] (so a parallel test never gets
/// one of them).
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const WINDOW: u16 = 1000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    assert!(n > 0 && n < WINDOW);
    let base = 10_000 + (std::process::id() % 20) as u16 * WINDOW;
    loop {
        let first = NEXT.fetch_add(n, Ordering::Relaxed) % WINDOW;
        if first + n > WINDOW {
            continue;
        }
        let port = base + first;
        if (port..port + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return port;
        }
    }
}

pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

pub struct Conn {
    stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    pub fn try_connect(port: u16) -> Option<Conn> {
        TcpStream::connect(("127.0.0.1", port)).ok().map(|stream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let reader = BufReader::new(stream.try_clone().unwrap());
            Conn { stream, reader }
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode(args));
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Value {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send(&a);
        self.read()
    }

    pub fn cmdb(&mut self, args: &[&[u8]]) -> Value {
        self.send(args);
        self.read()
    }

    pub fn read(&mut self) -> Value {
        read_value(&mut self.reader).expect("read reply")
    }

    /// Reads until the server closes; returns the bytes seen.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }

    pub fn stream_ref(&self) -> &TcpStream {
        &self.stream
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    while line.last() == Some(&b'\n') || line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

pub fn read_value(r: &mut impl BufRead) -> std::io::Result<Value> {
    let line = read_line(r)?;
    let (t, rest) = line.split_at(1);
    let n = || rest.parse::<i64>().unwrap();
    Ok(match t {
        "+" => Value::Simple(rest.into()),
        "-" => Value::Error(rest.into()),
        ":" => Value::Int(n()),
        "_" => Value::Nil,
        "," => Value::Double(rest.into()),
        "#" => Value::Bool(rest == "t"),
        "(" => Value::BigNumber(rest.into()),
        "$" | "=" => {
            if n() < 0 {
                return Ok(Value::Nil);
            }
            let mut buf = vec![0u8; n() as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n() as usize);
            if t == "=" {
                Value::Verbatim(String::from_utf8_lossy(&buf[4..]).into_owned())
            } else {
                Value::Bulk(buf)
            }
        }
        "*" | "~" | ">" => {
            if n() < 0 {
                return Ok(Value::Nil);
            }
            let items = (0..n())
                .map(|_| read_value(r))
                .collect::<std::io::Result<Vec<_>>>()?;
            match t {
                "*" => Value::Array(items),
                "~" => Value::Set(items),
                _ => Value::Push(items),
            }
        }
        "%" => {
            let mut items = Vec::new();
            for _ in 0..n() {
                items.push((read_value(r)?, read_value(r)?));
            }
            Value::Map(items)
        }
        _ => panic!("unexpected reply line {line:?}"),
    })
}

pub fn cascade_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cascade"))
}

/// Fails the test loudly when a required external tool is missing.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is required by this test but is not installed (apt-get install redis-server redis-tools)");
}

/// A server process started for a test; killed when dropped.
pub struct Server {
    pub port: u16,
    pub child: Child,
    pub dir: tempdir::TempDir,
    pub log: PathBuf,
    /// How it was started, so `restart` can start it again.
    bin: PathBuf,
    file: Option<String>,
    args: Vec<String>,
}

pub mod family;
pub mod repl;

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "cascade-test-{}-{}-{}",
                tag,
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Spawns `cmd`, retrying while exec fails with ETXTBSY: a wrapper script
/// a test has just written can still be open for writing in a child that
/// another test thread forked before its exec (the descriptor is only
/// closed on exec), and exec refuses a file open for writing.
fn spawn_retrying_busy(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawn server: {e:?}"),
        }
    }
}

impl Server {
    /// Starts cascade with `--port <free> --dir <tmp> --logfile <tmp>/log`
    /// plus `extra` directives, and waits until it answers PING.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_bin(&cascade_bin(), extra, "cascade")
    }

    /// Starts Debian's redis-server the same way (interop tests).
    pub fn start_redis(extra: &[&str]) -> Server {
        let bin = require_tool("redis-server");
        Server::start_bin(&bin, extra, "redis")
    }

    /// Starts cascade but returns as soon as it accepts connections, before
    /// it answers PING (a server still loading its dump answers -LOADING).
    pub fn start_until_listening(extra: &[&str]) -> Server {
        Server::start_bin_when(&cascade_bin(), extra, "cascade", false)
    }

    /// Starts another program (a wrapper script around a server) the way
    /// [`Server::start`] starts cascade.
    pub fn start_program(bin: &std::path::Path, extra: &[&str], tag: &str) -> Server {
        Server::start_bin(bin, extra, tag)
    }

    fn start_bin(bin: &std::path::Path, extra: &[&str], tag: &str) -> Server {
        Server::start_bin_when(bin, extra, tag, true)
    }

    fn start_bin_when(bin: &std::path::Path, extra: &[&str], tag: &str, pong: bool) -> Server {
        let mut dir = tempdir::TempDir::new(tag);
        for attempt in 0..5 {
            let log = dir.path().join("server.log");
            let port = free_port();
            let mut cmd = Command::new(bin);
            // A config file, when given, must come first, as for redis-server.
            let (file, extra) = match extra.first() {
                Some(f) if !f.starts_with("--") => (Some(*f), &extra[1..]),
                _ => (None, extra),
            };
            cmd.args(file);
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .arg("--save")
                .arg("")
                .arg("--bind")
                .arg("127.0.0.1")
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
            let child = spawn_retrying_busy(&mut cmd);
            let mut server = Server {
                port,
                child,
                dir,
                log,
                bin: bin.to_path_buf(),
                file: file.map(str::to_string),
                args: extra.iter().map(|s| s.to_string()).collect(),
            };
            let ready = if pong {
                server.wait_ready(Duration::from_secs(20))
            } else {
                server.wait_listening(Duration::from_secs(20))
            };
            if ready {
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            let log_text = server.log_text();
            if attempt == 4 || !log_text.contains("Address already in use") {
                let stderr = server.stderr_text();
                panic!("server did not start on port {port}; log:\n{log_text}\nstderr:\n{stderr}");
            }
            drop(server);
            dir = tempdir::TempDir::new(tag);
        }
        unreachable!()
    }

    fn wait_listening(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if Conn::try_connect(self.port).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn wait_ready(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Some(mut c) = Conn::try_connect(self.port) {
                c.set_read_timeout(Duration::from_secs(2));
                c.send(&[b"PING"]);
                if let Ok(v) = read_value(&mut c.reader) {
                    // A stale replica with replica-serve-stale-data no
                    // answers PING with MASTERDOWN, as Redis does.
                    if v == Value::Simple("PONG".into())
                        || matches!(&v, Value::Error(e) if e.starts_with("NOAUTH") || e.starts_with("MASTERDOWN"))
                    {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again: same binary, port, directory and
    /// arguments (its log is appended to).
    pub fn restart(&mut self) {
        self.kill();
        // Sockets of the old process may hold the port for a moment.
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        let end = Instant::now() + Duration::from_secs(30);
        while !free(self.port) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !free(self.port) {
            let ss = Command::new("ss")
                .arg("-tanp")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let mine: Vec<&str> = ss
                .lines()
                .filter(|l| l.contains(&format!(":{}", self.port)))
                .collect();
            panic!(
                "port {} still busy after the old server exited:\n{}",
                self.port,
                mine.join("\n")
            );
        }
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.file);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&self.log)
            .arg("--save")
            .arg("")
            .arg("--bind")
            .arg("127.0.0.1")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(self.dir.path().join("stderr.log"))
                    .unwrap(),
            );
        self.child = cmd.spawn().expect("respawn server");
        assert!(
            self.wait_ready(Duration::from_secs(20)),
            "server did not restart on port {}; log:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// One `field:value` of `INFO <section>`.
    pub fn info_field(&self, section: &str, field: &str) -> String {
        info_field(&mut self.conn(), section, field)
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Names of the files in the server's directory that `keep` accepts.
    pub fn files(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| keep(n))
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY-free: kill(1) via Command keeps tests free of libc.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("server did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let stderr = self.stderr_text();
        if stderr.contains("panicked") {
            eprintln!("server on port {} panicked:\n{stderr}", self.port);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real redis-cli against `port` and returns its stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let cli = require_tool("redis-cli");
    let out = Command::new(cli)
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `field:value` of `INFO <section>` over `conn` ("" if absent).
pub fn info_field(conn: &mut Conn, section: &str, field: &str) -> String {
    let info = conn.cmd(&["INFO", section]).text();
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A TCP proxy on 127.0.0.1 in front of `target`, for cutting replication
/// links: `cut` closes every open connection, `set_down(true)` closes new
/// ones at once (the master looks unreachable) until `set_down(false)`.
pub struct Proxy {
    pub port: u16,
    state: std::sync::Arc<ProxyState>,
}

struct ProxyState {
    down: std::sync::atomic::AtomicBool,
    stop: std::sync::atomic::AtomicBool,
    conns: std::sync::Mutex<Vec<TcpStream>>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(ProxyState {
            down: false.into(),
            stop: false.into(),
            conns: std::sync::Mutex::new(Vec::new()),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                if st.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                {
                    let mut conns = st.conns.lock().unwrap();
                    conns.push(client.try_clone().unwrap());
                    conns.push(upstream.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, state }
    }

    /// Closes every connection going through the proxy.
    pub fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn set_down(&self, down: bool) {
        self.state
            .down
            .store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.cut();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut();
    }
}

/// Splits a command line into arguments as redis-cli does (its
/// `sdssplitargs`): words separated by spaces; `"..."` with the escapes
/// `\n \r \t \b \a \\ \" \xHH`, `'...'` with `\'`; `""` is an empty
/// argument. A closing quote must end the word; an unbalanced quote
/// panics, so a test line can never silently mean something else.
pub fn args_of(line: &str) -> Vec<Vec<u8>> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return out;
        }
        let mut word = Vec::new();
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            match bytes[i] {
                b'"' => i = double_quoted(line, bytes, i + 1, &mut word),
                b'\'' => i = single_quoted(line, bytes, i + 1, &mut word),
                b => {
                    word.push(b);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
}

/// Reads a `"..."` section from `i` (just past the quote) into `word`;
/// returns the index past the closing quote.
fn double_quoted(line: &str, bytes: &[u8], mut i: usize, word: &mut Vec<u8>) -> usize {
    loop {
        match bytes.get(i) {
            None => panic!("unbalanced quotes in test line {line:?}"),
            Some(b'"') => return closing(line, bytes, i + 1),
            Some(b'\\') if i + 3 < bytes.len() && bytes[i + 1] == b'x' => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        word.push(b);
                        i += 4;
                    }
                    None => {
                        word.push(b'x');
                        i += 2;
                    }
                }
            }
            Some(b'\\') if i + 1 < bytes.len() => {
                word.push(match bytes[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                });
                i += 2;
            }
            Some(&b) => {
                word.push(b);
                i += 1;
            }
        }
    }
}

/// Reads a `'...'` section from `i` (just past the quote) into `word`;
/// returns the index past the closing quote.
fn single_quoted(line: &str, bytes: &[u8], mut i: usize, word: &mut Vec<u8>) -> usize {
    loop {
        match bytes.get(i) {
            None => panic!("unbalanced quotes in test line {line:?}"),
            Some(b'\'') => return closing(line, bytes, i + 1),
            Some(b'\\') if bytes.get(i + 1) == Some(&b'\'') => {
                word.push(b'\'');
                i += 2;
            }
            Some(&b) => {
                word.push(b);
                i += 1;
            }
        }
    }
}

/// A closing quote must end its word (redis-cli refuses `"a"b`).
fn closing(line: &str, bytes: &[u8], i: usize) -> usize {
    if i < bytes.len() && !bytes[i].is_ascii_whitespace() {
        panic!("a closing quote must end its word in test line {line:?}");
    }
    i
}

/// The reply with the elements of every aggregate sorted (recursively),
/// for commands whose order Redis leaves unspecified.
pub fn sorted_reply(v: Value) -> Value {
    fn sort(mut items: Vec<Value>) -> Vec<Value> {
        items = items.into_iter().map(sorted_reply).collect();
        items.sort_by_key(|v| format!("{v:?}"));
        items
    }
    match v {
        Value::Array(items) => Value::Array(sort(items)),
        Value::Set(items) => Value::Set(sort(items)),
        Value::Map(pairs) => {
            let mut pairs: Vec<(Value, Value)> = pairs
                .into_iter()
                .map(|(k, v)| (sorted_reply(k), sorted_reply(v)))
                .collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            Value::Map(pairs)
        }
        other => other,
    }
}

/// Runs every line on both connections (Cascade first, then Redis) and
/// asserts the replies are equal. A line starting with `~` compares its
/// replies with aggregates sorted ([`sorted_reply`]).
/// Sends one command (binary arguments) to Cascade and to redis-server,
/// requires the same reply and returns it.
pub fn assert_same_reply(cascade: &mut Conn, redis: &mut Conn, args: &[&[u8]]) -> Value {
    let ours = cascade.cmdb(args);
    let theirs = redis.cmdb(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(
        ours, theirs,
        "reply to {shown:?} (Cascade left, Redis right)"
    );
    ours
}

pub fn assert_same_replies(cascade: &mut Conn, redis: &mut Conn, lines: &[&str]) {
    for line in lines {
        let (unordered, line) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, *line),
        };
        let args = args_of(line);
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        same_reply(cascade, redis, &refs, unordered, &format!("{line:?}"));
    }
}

/// Sends `args` to both servers and requires the same reply (compared
/// with aggregates sorted when `unordered`); `what` names the call in the
/// failure message.
pub fn same_reply(
    cascade: &mut Conn,
    redis: &mut Conn,
    args: &[&[u8]],
    unordered: bool,
    what: &str,
) {
    let mut ours = cascade.cmdb(args);
    let mut theirs = redis.cmdb(args);
    if unordered {
        ours = sorted_reply(ours);
        theirs = sorted_reply(theirs);
    }
    assert_eq!(ours, theirs, "reply to {what} (Cascade left, Redis right)");
}

/// A small deterministic generator (xorshift64) for seeded random walks.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In `lo..hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }

    /// In `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A connection served by a thread the busy script does not occupy: the
/// first of several new connections that answers a PING with BUSY.
pub fn busy_answering_conn(port: u16) -> Conn {
    let mut found = None;
    wait_until(
        std::time::Duration::from_secs(10),
        "a connection answering BUSY",
        || {
            let c = Conn::connect(port);
            c.set_read_timeout(std::time::Duration::from_millis(300));
            let mut c = c;
            c.send(&[b"PING"]);
            let mut buf = [0u8; 128];
            use std::io::Read;
            match c.reader.get_mut().read(&mut buf) {
                Ok(n) if buf[..n].starts_with(b"-BUSY Redis is busy running a script.") => {
                    c.set_read_timeout(std::time::Duration::from_secs(10));
                    found = Some(c);
                    true
                }
                _ => false,
            }
        },
    );
    found.expect("found")
}
