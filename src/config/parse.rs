//! Reading configuration: Redis's line splitter (`sdssplitargs`), config
//! file / stdin / `include` loading, the `redis-server`-style command line,
//! and the fatal error Redis prints when any of it is wrong.
//!
//! Owns everything between raw text and a populated `Config`. It reads files
//! (config files, includes) and stdin, but never opens sockets, never changes
//! the process state (no chdir, no logging) and never exits: fatal problems
//! come back as `FatalConfigError` for the caller to print and exit(1).
//!
//! Behaviours reproduced from redis-server 7.0.15 (verified by running it):
//! * lines are split on '\n', trimmed of " \t\r\n", `#` starts a comment;
//! * directive names are case-insensitive, later lines override earlier ones;
//! * command-line `--name args...` become config lines appended after the
//!   file (and stdin) content, separated by an extra "\n", with every
//!   argument re-quoted (`port "7000"`), which is what FATAL errors show;
//! * the first `save` line of a file replaces the defaults, later ones
//!   accumulate, `save ""` always clears; finishing an `include` resets that
//!   state so each later `save` line replaces the points (Redis quirk, kept);
//! * relative `include` paths are relative to the current working directory,
//!   which an earlier `dir` line has changed in Redis, so we resolve them
//!   against the `dir` value seen so far; wildcard includes use glob order
//!   and silently match nothing;
//! * a missing config/include file is reported the way Redis logs it
//!   ("Fatal error, can't open config file ..."), not as a FATAL block.
//!
//! Deliberate differences (Cascade has no modules, Sentinel or command table
//! here): `loadmodule` is a FATAL error "Module loading is not supported";
//! `rename-command` and `user` lines are stored unvalidated for the server to
//! check; include nesting is capped at 32 levels (Redis recurses forever).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::table::{lookup, Kind, Special, TABLE};
use crate::config::value::{repr, strerror};
use crate::config::Config;
use crate::util::glob_match;

/// The version string Redis prints in its FATAL banner. We keep Redis's text
/// because Cascade claims compatibility with this exact version and tooling
/// (init scripts, tests) greps for it.
pub const REDIS_VERSION: &str = "7.0.15";

const MAX_INCLUDE_DEPTH: usize = 32;

/// Where a configuration text passed to [`load_from_str`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not a file (stdin, tests): CONFIG REWRITE will refuse to run.
    None,
    /// The text is the content of this config file, which becomes the
    /// target of CONFIG REWRITE (made absolute like Redis does).
    File(PathBuf),
}

/// What the `cascade` command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// `-v` / `--version` as first argument.
    Version,
    /// `-h` / `--help` as first argument.
    Help,
    /// Start the server with this configuration.
    Run(Config),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FatalKind {
    /// Error tied to a config line.
    Line {
        line: usize,
        text: String,
        reason: String,
    },
    /// Error found after all lines were read (Redis's sanity checks).
    End { reason: String },
    /// Error Redis reports through its logger (warning level) instead of
    /// the FATAL banner, e.g. a config file that cannot be opened.
    Log { message: String },
}

/// A configuration problem that must stop the server (exit code 1).
///
/// `Display` renders exactly what redis-server 7.0.15 writes: for line and
/// end-of-file errors the full banner, *including* its leading blank line and
/// trailing newline, meant for `eprint!` (not `eprintln!`) on stderr; for
/// [`FatalConfigError::is_log_message`] errors just the message, which the
/// server must emit through its logger at warning level (Redis prints e.g.
/// `1234:C 25 Nov 2026 15:23:27.566 # Fatal error, can't open config file
/// '/x': No such file or directory` on stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatalConfigError {
    kind: FatalKind,
}

impl FatalConfigError {
    fn line(line: usize, text: &[u8], reason: impl Into<String>) -> Self {
        FatalConfigError {
            kind: FatalKind::Line {
                line,
                text: String::from_utf8_lossy(text).into_owned(),
                reason: reason.into(),
            },
        }
    }

    fn end(reason: impl Into<String>) -> Self {
        FatalConfigError {
            kind: FatalKind::End {
                reason: reason.into(),
            },
        }
    }

    fn log(message: impl Into<String>) -> Self {
        FatalConfigError {
            kind: FatalKind::Log {
                message: message.into(),
            },
        }
    }

    /// The explanation alone (last line of the banner, or the log message).
    pub fn reason(&self) -> &str {
        match &self.kind {
            FatalKind::Line { reason, .. } | FatalKind::End { reason } => reason,
            FatalKind::Log { message } => message,
        }
    }

    /// 1-based line number within the text being parsed, when known.
    pub fn line_number(&self) -> Option<usize> {
        match &self.kind {
            FatalKind::Line { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// True when Redis would report this through its logger rather than
    /// print the FATAL banner on stderr.
    pub fn is_log_message(&self) -> bool {
        matches!(self.kind, FatalKind::Log { .. })
    }
}

impl fmt::Display for FatalConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FatalKind::Line { line, text, reason } => write!(
                f,
                "\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n\
                 Reading the configuration file, at line {line}\n\
                 >>> '{text}'\n\
                 {reason}\n"
            ),
            FatalKind::End { reason } => write!(
                f,
                "\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n{reason}\n"
            ),
            FatalKind::Log { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for FatalConfigError {}

/// Redis `sdssplitargs`: splits a config line (or inline command) into
/// arguments. Handles "double quotes" with `\n \r \t \b \a \\ \" \xHH`
/// escapes and 'single quotes' with `\'`. A closing quote must be followed
/// by a space or the end. Returns `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| -> u8 { line.get(i).copied().unwrap_or(0) };
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let mut out = Vec::new();
    let mut p = 0usize;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() || line[p] == 0 {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            let c = at(p);
            if inq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(hex(at(p + 2)) * 16 + hex(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => cur.push(other),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        out.push(cur);
    }
}

/// Redis `sdstrim(line, " \t\r\n")`.
fn trim(line: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = line.iter().position(|c| !ws(c)).unwrap_or(line.len());
    let end = line.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &line[start..end]
}

/// Redis `getAbsolutePath`: joins a relative path to `cwd`, folding leading
/// `../` components the simple way Redis does.
fn absolute_path(path: &str, cwd: &str) -> String {
    let mut rel = path.trim_matches(|c| matches!(c, ' ' | '\r' | '\n' | '\t'));
    if rel.starts_with('/') {
        return rel.to_string();
    }
    let mut abs = cwd.to_string();
    if !abs.ends_with('/') {
        abs.push('/');
    }
    while let Some(rest) = rel.strip_prefix("../") {
        rel = rest;
        if abs.len() > 1 {
            // Drop the last component (abs always ends with '/').
            let without_slash = &abs[..abs.len() - 1];
            let cut = without_slash.rfind('/').map_or(0, |i| i + 1);
            abs.truncate(cut.max(1));
        }
    }
    abs.push_str(rel);
    abs
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Filesystem glob with glibc `glob(pattern, 0)` behaviour for the cases a
/// config include needs: `*`, `?` and `[...]` inside path components, hidden
/// entries only matched by a pattern starting with '.', sorted results,
/// nothing on no match. Relative patterns are relative to `cwd`.
fn fs_glob(pattern: &str, cwd: &Path) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut candidates: Vec<(PathBuf, String)> = vec![if absolute {
        (PathBuf::from("/"), "/".to_string())
    } else {
        (cwd.to_path_buf(), String::new())
    }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for (dir, shown) in &candidates {
            let join_shown = |name: &str| {
                if shown.is_empty() || shown.ends_with('/') {
                    format!("{shown}{name}")
                } else {
                    format!("{shown}/{name}")
                }
            };
            if has_wildcard(comp) {
                let pat = comp.replace("[!", "[^");
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || comp.starts_with('.'))
                    .filter(|n| glob_match(pat.as_bytes(), n.as_bytes(), false))
                    .collect();
                names.sort();
                for n in names {
                    next.push((dir.join(&n), join_shown(&n)));
                }
            } else {
                next.push((dir.join(comp), join_shown(comp)));
            }
        }
        candidates = next;
    }
    let mut found: Vec<(PathBuf, String)> =
        candidates.into_iter().filter(|(p, _)| p.exists()).collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.into_iter().map(|(p, _)| p).collect()
}

fn cant_open(shown: &str, e: &std::io::Error) -> FatalConfigError {
    FatalConfigError::log(format!(
        "Fatal error, can't open config file '{shown}': {}",
        strerror(e)
    ))
}

/// Reads a config file (or every file a wildcard matches), the way Redis's
/// `loadServerConfig` does. `shown` is how Redis names it in errors.
fn read_source(path: &str, cwd: &str) -> Result<Vec<u8>, FatalConfigError> {
    let cwd_path = Path::new(cwd);
    if has_wildcard(path) {
        let mut out = Vec::new();
        for file in fs_glob(path, cwd_path) {
            let mut data =
                std::fs::read(&file).map_err(|e| cant_open(&file.to_string_lossy(), &e))?;
            out.append(&mut data);
        }
        return Ok(out);
    }
    let full = if Path::new(path).is_absolute() || cwd.is_empty() {
        PathBuf::from(path)
    } else {
        cwd_path.join(path)
    };
    match std::fs::read(&full) {
        Ok(d) => Ok(d),
        Err(e) => Err(cant_open(path, &e)),
    }
}

/// State of one configuration load (Redis keeps the equivalent in globals).
struct Loader {
    cfg: Config,
    /// Redis's `reading_config_file`: true while a text is being parsed,
    /// cleared when any text (including an include) finishes.
    reading_file: bool,
    /// Redis's static `save_loaded`: defaults already replaced by a `save`.
    save_loaded: bool,
    depth: usize,
    /// Whether to try opening `logfile` like Redis does at the end of
    /// parsing (only when really starting a server).
    check_logfile: bool,
    module_config_seen: bool,
}

impl Loader {
    fn new(cfg: Config, check_logfile: bool) -> Self {
        Loader {
            cfg,
            reading_file: false,
            save_loaded: false,
            depth: 0,
            check_logfile,
            module_config_seen: false,
        }
    }

    fn cwd(&self) -> String {
        self.cfg.dir()
    }

    /// Redis `loadServerConfigFromString`.
    fn load_text(&mut self, text: &[u8]) -> Result<(), FatalConfigError> {
        self.reading_file = true;
        for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = trim(raw);
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            self.load_line(i + 1, line)?;
        }
        self.reading_file = false;
        self.sanity_checks()
    }

    fn load_line(&mut self, linenum: usize, line: &[u8]) -> Result<(), FatalConfigError> {
        let err = |reason: &str| FatalConfigError::line(linenum, line, reason);
        let Some(argv) = split_args(line) else {
            return Err(err("Unbalanced quotes in configuration line"));
        };
        if argv.is_empty() {
            return Ok(());
        }
        let name = argv[0].to_ascii_lowercase();
        let args: Vec<&[u8]> = argv[1..].iter().map(Vec::as_slice).collect();
        let bad = "Bad directive or wrong number of arguments";

        let Some((idx, _alias)) = lookup(&name) else {
            if name.contains(&b'.') {
                // A module config. Redis queues it and aborts later because
                // no module claims it; Cascade has no modules.
                if args.is_empty() {
                    return Err(err("Module config specified without value"));
                }
                self.module_config_seen = true;
                return Ok(());
            }
            return Err(err(bad));
        };
        let d = &TABLE[idx];
        match d.kind {
            Kind::Special(Special::Include) => {
                if args.len() != 1 {
                    return Err(err(bad));
                }
                if self.depth >= MAX_INCLUDE_DEPTH {
                    return Err(err("Too many nested include directives"));
                }
                let path = String::from_utf8_lossy(args[0]).into_owned();
                let text = read_source(&path, &self.cwd())?;
                self.depth += 1;
                let res = self.load_text(&text);
                self.depth -= 1;
                res
            }
            Kind::Special(Special::RenameCommand) => {
                if args.len() != 2 {
                    return Err(err(bad));
                }
                self.cfg
                    .rename_commands
                    .push((args[0].to_vec(), args[1].to_vec()));
                Ok(())
            }
            Kind::Special(Special::User) => {
                if args.is_empty() {
                    return Err(err(bad));
                }
                self.cfg
                    .users
                    .push(args.iter().map(|a| a.to_vec()).collect());
                Ok(())
            }
            Kind::Special(Special::LoadModule) => {
                if args.is_empty() {
                    return Err(err(bad));
                }
                Err(err("Module loading is not supported"))
            }
            Kind::Special(Special::Sentinel) => {
                if args.is_empty() {
                    Ok(())
                } else {
                    Err(err("sentinel directive while not in sentinel mode"))
                }
            }
            Kind::Special(Special::Deprecated) => {
                if args.len() == 1 {
                    Ok(())
                } else {
                    Err(err(bad))
                }
            }
            _ => {
                if !d.is_multi_arg() && args.len() != 1 {
                    return Err(err("wrong number of arguments"));
                }
                let save_append = self.reading_file && self.save_loaded;
                // A multi-argument directive given as one word is split
                // again, as Redis does, so `--bind "* -::*"` and
                // `--save "3600 1 300 100"` work from the command line.
                let resplit = (d.is_multi_arg() && args.len() == 1 && !args[0].is_empty())
                    .then(|| split_args(args[0]))
                    .flatten();
                let resplit_refs: Vec<&[u8]>;
                let args = match &resplit {
                    Some(words) => {
                        resplit_refs = words.iter().map(|w| w.as_slice()).collect();
                        &resplit_refs
                    }
                    None => &args,
                };
                self.cfg
                    .set_row(idx, args, save_append)
                    .map_err(|reason| err(&reason))?;
                if matches!(d.kind, Kind::Special(Special::Save)) && self.reading_file {
                    self.save_loaded = true;
                }
                Ok(())
            }
        }
    }

    /// The checks Redis runs after each parsed text.
    fn sanity_checks(&mut self) -> Result<(), FatalConfigError> {
        if self.check_logfile {
            let logfile = self.cfg.logfile();
            if !logfile.is_empty() {
                let path = Path::new(&logfile);
                let full = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    Path::new(&self.cwd()).join(path)
                };
                if let Err(e) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&full)
                {
                    return Err(FatalConfigError::end(format!(
                        "Can't open the log file: {}",
                        strerror(&e)
                    )));
                }
            }
        }
        if self.cfg.bool_value("cluster-enabled") && self.cfg.replicaof().is_some() {
            return Err(FatalConfigError::end(
                "replicaof directive not allowed in cluster mode",
            ));
        }
        self.cfg.clamp_hz();
        Ok(())
    }

    fn finish(self) -> Result<Config, FatalConfigError> {
        if self.module_config_seen {
            return Err(FatalConfigError::log(
                "Module Configuration detected without loadmodule directive or no ApplyConfig call: aborting",
            ));
        }
        Ok(self.cfg)
    }
}

/// Parses a configuration text (as found in a config file). With
/// `Origin::File`, the path becomes `config_file()` (target of CONFIG
/// REWRITE); the file itself is not read. `logfile` is not opened (only
/// [`load_from_args`] does that, as it really starts a server).
pub fn load_from_str(text: &str, origin: Origin) -> Result<Config, FatalConfigError> {
    let mut cfg = Config::default();
    if let Origin::File(p) = origin {
        let abs = absolute_path(&p.to_string_lossy(), &cfg.dir());
        cfg.config_file = Some(PathBuf::from(abs));
    }
    let mut loader = Loader::new(cfg, false);
    loader.load_text(text.as_bytes())?;
    loader.finish()
}

/// Parses a `redis-server`-style command line: `args` is the whole argv
/// (program name first). Forms: `cascade [configfile|-] [--directive
/// [args...]]...`; `-` (first or last) reads config text from `stdin`,
/// appended after the file; `-v`/`--version` and `-h`/`--help` are only
/// recognised as the first argument, like Redis. With no argument at all
/// the defaults are used. A configured `logfile` is opened (append/create)
/// as Redis does, so that an unusable one is a FATAL error.
pub fn load_from_args(
    args: &[String],
    stdin: &mut dyn Read,
) -> Result<Invocation, FatalConfigError> {
    let base = Config::default();
    if args.len() < 2 {
        return Ok(Invocation::Run(base));
    }
    match args[1].as_str() {
        "-v" | "--version" => return Ok(Invocation::Version),
        "-h" | "--help" => return Ok(Invocation::Help),
        _ => {}
    }
    let mut j = 1;
    let mut config_file: Option<String> = None;
    if !args[1].starts_with('-') {
        config_file = Some(absolute_path(&args[1], &base.dir()));
        j = 2;
    }
    let mut options: Vec<u8> = Vec::new();
    let mut from_stdin = false;
    let mut handled_last = true;
    let n = args.len();
    while j < n {
        let a = args[j].as_bytes();
        let next_is_option = j + 1 < n && args[j + 1].starts_with("--");
        if a == b"-" && (j == 1 || j == n - 1) {
            from_stdin = true;
        } else if handled_last && a.starts_with(b"--") {
            if !options.is_empty() {
                options.push(b'\n');
            }
            options.extend_from_slice(&a[2..]);
            options.push(b' ');
            // "--port" alone expects its value next; "--port 6380" (one
            // argv word) is complete.
            let words = split_args(a).map_or(0, |w| w.len());
            if words == 1 {
                handled_last = false;
                let is_save = args[j].eq_ignore_ascii_case("--save");
                let is_sentinel = args[j].eq_ignore_ascii_case("--sentinel");
                if is_save && next_is_option {
                    // `--save --port 1` means `save ""` (pre-7.0 compat).
                    options.extend_from_slice(b"\"\"");
                    handled_last = true;
                } else if is_save && j == n - 1 {
                    options.extend_from_slice(b"\"\"");
                } else if is_sentinel && next_is_option {
                    handled_last = true;
                }
            } else {
                handled_last = true;
            }
        } else {
            options.extend_from_slice(&repr(a));
            options.push(b' ');
            handled_last = true;
        }
        j += 1;
    }

    let mut cfg = base;
    let mut text: Vec<u8> = Vec::new();
    if let Some(path) = &config_file {
        cfg.config_file = Some(PathBuf::from(path));
        text = read_source(path, &cfg.dir())?;
    }
    if from_stdin {
        let mut buf = Vec::new();
        stdin.read_to_end(&mut buf).map_err(|e| {
            FatalConfigError::log(format!("Error reading config from stdin: {}", strerror(&e)))
        })?;
        text.extend_from_slice(&buf);
    }
    text.push(b'\n');
    text.extend_from_slice(&options);

    let mut loader = Loader::new(cfg, true);
    loader.load_text(&text)?;
    loader.finish().map(Invocation::Run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_args(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splitargs_like_redis() {
        assert_eq!(words("  port   6379  "), vec!["port", "6379"]);
        assert_eq!(words(r#"a "b c" 'd e'"#), vec!["a", "b c", "d e"]);
        assert_eq!(words(r#""\x41\n\t\\\"q""#), vec!["A\n\t\\\"q"]);
        assert_eq!(words(r#"'it\'s'"#), vec!["it's"]);
        assert_eq!(words(r#"foo"bar baz""#), vec!["foobar baz"]);
        assert_eq!(words(r#""""#), vec![""]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("\"\\xZZ\""), vec!["xZZ"]);
        assert!(split_args(b"\"abc").is_none());
        assert!(split_args(b"'abc").is_none());
        assert!(split_args(b"\"a\"b").is_none());
    }

    #[test]
    fn absolute_paths_like_redis() {
        assert_eq!(absolute_path("/etc/x.conf", "/tmp"), "/etc/x.conf");
        assert_eq!(absolute_path("x.conf", "/tmp"), "/tmp/x.conf");
        assert_eq!(absolute_path("../x.conf", "/tmp/a"), "/tmp/x.conf");
        assert_eq!(absolute_path("../../x.conf", "/tmp"), "/x.conf");
        assert_eq!(absolute_path("x.conf", "/"), "/x.conf");
    }

    #[test]
    fn fatal_banner_text() {
        let e = FatalConfigError::line(2, b"foo bar", "Bad directive or wrong number of arguments");
        assert_eq!(
            e.to_string(),
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
             Reading the configuration file, at line 2\n\
             >>> 'foo bar'\n\
             Bad directive or wrong number of arguments\n"
        );
        let e = FatalConfigError::end("Can't open the log file: No such file or directory");
        assert_eq!(
            e.to_string(),
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
             Can't open the log file: No such file or directory\n"
        );
    }
}
