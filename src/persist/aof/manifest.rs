//! The AOF manifest: which files make up the append-only file, in Redis 7's
//! text format, and the names of those files.
//!
//! One line per file, `file <name> seq <n> type <b|h|i>`: at most one base
//! (`b`), history files (`h`, waiting to be deleted after a rewrite) and
//! incremental files (`i`, loaded in order after the base). Lines starting
//! with `#` are comments. Names are quoted (C escapes) when they contain
//! spaces or unprintable bytes, as Redis's `sdscatrepr` writes them.
//!
//! Pure code: parsing, formatting and naming. It never touches the
//! filesystem; [`super::files`] writes and reads manifests.

use std::fmt;

/// What a file listed in the manifest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The dataset at the start of the AOF (RDB preamble or AOF format).
    Base,
    /// Left over from before a rewrite; deleted, never loaded.
    History,
    /// Commands appended after the base, loaded in sequence order.
    Incr,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::History => 'h',
            Kind::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
}

/// The parsed manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Entry>,
    /// Incremental files in the order they are loaded (ascending seq).
    pub incrs: Vec<Entry>,
    pub history: Vec<Entry>,
}

/// Why a manifest cannot be used. The texts are Redis's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// A line is not `key value` pairs with `file`, `seq` and `type`.
    Format(usize),
    TooLong(usize),
    DuplicateBase,
    NonMonotonic,
    UnknownType(usize),
    BadName(String),
    Empty,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Format(l) => write!(f, "Invalid AOF manifest file format (line {l})"),
            ManifestError::TooLong(l) => {
                write!(f, "The AOF manifest file contains too long line (line {l})")
            }
            ManifestError::DuplicateBase => f.write_str("Found duplicate base file information"),
            ManifestError::NonMonotonic => f.write_str("Found a non-monotonic sequence number"),
            ManifestError::UnknownType(l) => write!(f, "Unknown AOF file type (line {l})"),
            ManifestError::BadName(n) => write!(f, "File can't be in a path: {n}"),
            ManifestError::Empty => f.write_str("Found an empty AOF manifest"),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Longest manifest line Redis accepts.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// Parses manifest text. An empty manifest is an error, as in Redis.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut last_incr = 0u64;
        let mut lines = 0;
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = i + 1;
            if raw.len() > MAX_LINE {
                return Err(ManifestError::TooLong(line_no));
            }
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() || trimmed[0] == b'#' {
                continue;
            }
            lines += 1;
            let words = split_args(trimmed).ok_or(ManifestError::Format(line_no))?;
            if words.len() % 2 != 0 {
                return Err(ManifestError::Format(line_no));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks_exact(2) {
                match pair[0].as_slice() {
                    b"file" => name = Some(pair[1].clone()),
                    b"seq" => {
                        seq = std::str::from_utf8(&pair[1])
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                    }
                    b"type" => kind = Some(pair[1].clone()),
                    _ => {} // unknown keys are skipped, for forward compatibility
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(ManifestError::Format(line_no));
            };
            let name = String::from_utf8(name).map_err(|_| ManifestError::Format(line_no))?;
            if name.is_empty() || name.contains('/') {
                return Err(ManifestError::BadName(name));
            }
            let kind = match kind.as_slice() {
                b"b" => Kind::Base,
                b"h" => Kind::History,
                b"i" => Kind::Incr,
                _ => return Err(ManifestError::UnknownType(line_no)),
            };
            let entry = Entry { name, seq, kind };
            match kind {
                Kind::Base => {
                    if m.base.is_some() {
                        return Err(ManifestError::DuplicateBase);
                    }
                    m.base = Some(entry);
                }
                Kind::History => m.history.push(entry),
                Kind::Incr => {
                    if seq <= last_incr {
                        return Err(ManifestError::NonMonotonic);
                    }
                    last_incr = seq;
                    m.incrs.push(entry);
                }
            }
        }
        if lines == 0 {
            return Err(ManifestError::Empty);
        }
        Ok(m)
    }

    /// The manifest as Redis writes it: base, history, then incr files.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incrs.iter())
        {
            out.push_str("file ");
            out.push_str(&quote_if_needed(&e.name));
            out.push_str(&format!(" seq {} type {}\n", e.seq, e.kind.letter()));
        }
        out
    }

    /// Highest sequence number used by a base file (0 when none).
    pub fn base_seq(&self) -> u64 {
        self.base.as_ref().map_or(0, |b| b.seq)
    }

    /// Highest sequence number used by an incr file (0 when none).
    pub fn incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |e| e.seq)
    }

    /// The files to load, in order: base then incrs.
    pub fn load_order(&self) -> impl Iterator<Item = &Entry> {
        self.base.iter().chain(self.incrs.iter())
    }

    /// Adds a new incr file with the next sequence number; returns it.
    pub fn add_incr(&mut self, prefix: &str) -> Entry {
        let seq = self.incr_seq() + 1;
        let e = Entry {
            name: incr_name(prefix, seq),
            seq,
            kind: Kind::Incr,
        };
        self.incrs.push(e.clone());
        e
    }

    /// After a rewrite: `base` becomes the base, every incr file before
    /// `keep_from_seq` and the old base become history.
    pub fn install_base(&mut self, base: Entry, keep_from_seq: u64) {
        if let Some(mut old) = self.base.take() {
            old.kind = Kind::History;
            self.history.push(old);
        }
        let (old, keep): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.incrs)
            .into_iter()
            .partition(|e| e.seq < keep_from_seq);
        for mut e in old {
            e.kind = Kind::History;
            self.history.push(e);
        }
        self.incrs = keep;
        self.base = Some(base);
    }
}

/// `<prefix>.<seq>.base.rdb` or `.base.aof`.
pub fn base_name(prefix: &str, seq: u64, rdb: bool) -> String {
    format!("{prefix}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

/// `<prefix>.<seq>.incr.aof`.
pub fn incr_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.incr.aof")
}

/// `<prefix>.manifest`.
pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

/// The manifest is written here first, then renamed over the real one.
pub fn temp_manifest_name(prefix: &str) -> String {
    format!("temp-{prefix}.manifest")
}

fn quote_if_needed(name: &str) -> String {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        return name.to_string();
    }
    crate::util::repr(name.as_bytes())
}

/// Splits a line into words like Redis's `sdssplitargs`: spaces separate,
/// double quotes allow C escapes (`\n`, `\xHH`...), single quotes allow
/// `\'`. `None` on unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut word = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let &e = line.get(i)?;
                            i += 1;
                            match e {
                                b'n' => word.push(b'\n'),
                                b'r' => word.push(b'\r'),
                                b't' => word.push(b'\t'),
                                b'b' => word.push(0x08),
                                b'a' => word.push(0x07),
                                b'x' => {
                                    let hex = line.get(i..i + 2)?;
                                    let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16)
                                        .ok()?;
                                    word.push(v);
                                    i += 2;
                                }
                                other => word.push(other),
                            }
                        }
                        other => word.push(other),
                    }
                }
                // A closing quote must be followed by a space or the end.
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return None;
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    i += 1;
                    match c {
                        b'\'' => break,
                        b'\\' if line.get(i) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 1;
                        }
                        other => word.push(other),
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return None;
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS: &str = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                         file appendonly.aof.2.incr.aof seq 2 type i\n";

    #[test]
    fn parses_what_redis_writes() {
        let m = Manifest::parse(REDIS.as_bytes()).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.base_seq(), 2);
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.incr_seq(), 2);
        assert_eq!(m.to_text(), REDIS);
    }

    #[test]
    fn writes_base_history_then_incrs() {
        let mut m = Manifest::parse(REDIS.as_bytes()).unwrap();
        let new_incr = m.add_incr("appendonly.aof");
        assert_eq!(new_incr.name, "appendonly.aof.3.incr.aof");
        m.install_base(
            Entry {
                name: base_name("appendonly.aof", 3, true),
                seq: 3,
                kind: Kind::Base,
            },
            3,
        );
        assert_eq!(
            m.to_text(),
            "file appendonly.aof.3.base.rdb seq 3 type b\n\
             file appendonly.aof.2.base.rdb seq 2 type h\n\
             file appendonly.aof.2.incr.aof seq 2 type h\n\
             file appendonly.aof.3.incr.aof seq 3 type i\n"
        );
        let back = Manifest::parse(m.to_text().as_bytes()).unwrap();
        assert_eq!(back, m);
        let order: Vec<_> = back.load_order().map(|e| e.name.as_str()).collect();
        assert_eq!(
            order,
            ["appendonly.aof.3.base.rdb", "appendonly.aof.3.incr.aof"]
        );
    }

    #[test]
    fn comments_blank_lines_and_unknown_keys_are_skipped() {
        let text = "# comment\n\nfile a.1.incr.aof seq 1 type i extra x\r\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert!(m.base.is_none());
        assert_eq!(m.incrs[0].name, "a.1.incr.aof");
    }

    #[test]
    fn quoted_names_round_trip() {
        let mut m = Manifest::default();
        m.incrs.push(Entry {
            name: "my file\t\"x\".1.incr.aof".into(),
            seq: 1,
            kind: Kind::Incr,
        });
        let text = m.to_text();
        assert!(text.starts_with("file \"my file\\t\\\"x\\\".1.incr.aof\""));
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn rejects_bad_manifests() {
        let bad: &[(&str, ManifestError)] = &[
            ("", ManifestError::Empty),
            ("# only a comment\n", ManifestError::Empty),
            ("file a seq 1\n", ManifestError::Format(1)),
            ("file a seq x type i\n", ManifestError::Format(1)),
            ("file a seq 1 type\n", ManifestError::Format(1)),
            ("file \"a seq 1 type i\n", ManifestError::Format(1)),
            ("file a seq 1 type z\n", ManifestError::UnknownType(1)),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                ManifestError::DuplicateBase,
            ),
            (
                "file a seq 2 type i\nfile b seq 2 type i\n",
                ManifestError::NonMonotonic,
            ),
            (
                "file ../x seq 1 type i\n",
                ManifestError::BadName("../x".into()),
            ),
        ];
        for (text, want) in bad {
            assert_eq!(
                Manifest::parse(text.as_bytes()).unwrap_err(),
                *want,
                "{text:?}"
            );
        }
        let long = format!("file {} seq 1 type i\n", "a".repeat(2000));
        assert_eq!(
            Manifest::parse(long.as_bytes()).unwrap_err(),
            ManifestError::TooLong(1)
        );
    }

    #[test]
    fn names() {
        assert_eq!(base_name("x.aof", 1, true), "x.aof.1.base.rdb");
        assert_eq!(base_name("x.aof", 1, false), "x.aof.1.base.aof");
        assert_eq!(incr_name("x.aof", 7), "x.aof.7.incr.aof");
        assert_eq!(manifest_name("x.aof"), "x.aof.manifest");
        assert_eq!(temp_manifest_name("x.aof"), "temp-x.aof.manifest");
    }
}
