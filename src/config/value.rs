//! Directive values: their in-memory representation, how arguments are
//! turned into values (with Redis 7.0's exact error reasons) and how values
//! are printed for CONFIG GET and CONFIG REWRITE.
//!
//! Owns the low-level number/unit/quoting rules that Redis implements in C
//! (`memtoull`, `string2ll`, `strtoll`, `string2d`, `sdscatrepr`, the memory
//! formatter of CONFIG REWRITE, keyspace-event flags, ...). Pure functions
//! only: no server state, no sockets. The only I/O is the existence check of
//! a new `dir` (Redis validates it with chdir, which we must not do here).

use crate::config::table::{Directive, Kind, Special, StrCheck};
pub(crate) use crate::util::num::parse_i64_strict as string2ll;

/// A directive's current value. Which variant a row uses follows its `Kind`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// File-only directives keep their data elsewhere.
    Nothing,
    Bool(bool),
    /// Every numeric kind, stored like Redis stores it in a `long long`
    /// (percentages negative, values above i64::MAX wrapped).
    Num(i64),
    /// Enum value (bit set for multi-valued enums).
    Enum(u32),
    /// `None` is Redis's NULL string (unset).
    Str(Option<Vec<u8>>),
    /// Absolute working directory.
    Dir(String),
    /// (seconds, changes) pairs; changes is a C int in Redis.
    Save(Vec<(i64, i32)>),
    Bind(Vec<Vec<u8>>),
    Obuf([ObufLimit; 3]),
    Oom([i32; 3]),
    Notify(u32),
    /// (host, port)
    ReplicaOf(Option<(Vec<u8>, i32)>),
    Percentiles(Vec<f64>),
}

/// One class of `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: i64,
}

/// Class names in Redis's order (normal, replica, pubsub) as CONFIG GET
/// prints them.
pub(crate) const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

// Keyspace notification flags, same bit layout as Redis's NOTIFY_* so that
// the server's notification code can use them directly.
pub const NOTIFY_KEYSPACE: u32 = 1 << 0;
pub const NOTIFY_KEYEVENT: u32 = 1 << 1;
pub const NOTIFY_GENERIC: u32 = 1 << 2;
pub const NOTIFY_STRING: u32 = 1 << 3;
pub const NOTIFY_LIST: u32 = 1 << 4;
pub const NOTIFY_SET: u32 = 1 << 5;
pub const NOTIFY_HASH: u32 = 1 << 6;
pub const NOTIFY_ZSET: u32 = 1 << 7;
pub const NOTIFY_EXPIRED: u32 = 1 << 8;
pub const NOTIFY_EVICTED: u32 = 1 << 9;
pub const NOTIFY_STREAM: u32 = 1 << 10;
pub const NOTIFY_KEY_MISS: u32 = 1 << 11;
pub const NOTIFY_MODULE: u32 = 1 << 13;
pub const NOTIFY_NEW: u32 = 1 << 14;
/// What `A` stands for. Note it does not include `m` nor `n`.
pub const NOTIFY_ALL: u32 = NOTIFY_GENERIC
    | NOTIFY_STRING
    | NOTIFY_LIST
    | NOTIFY_SET
    | NOTIFY_HASH
    | NOTIFY_ZSET
    | NOTIFY_EXPIRED
    | NOTIFY_EVICTED
    | NOTIFY_STREAM
    | NOTIFY_MODULE;

pub(crate) const WRONG_ARGS: &str = "wrong number of arguments";

const NO_DEFRAG: &str = "Active defragmentation cannot be enabled: it requires a Redis server \
compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution";

/// What a value parser may need to know besides its arguments.
pub(crate) struct Env<'a> {
    /// The directive's current value (multi-part directives merge into it).
    pub cur: &'a Value,
    /// `save` appends to the current points instead of replacing them
    /// (second and later `save` lines of a config file).
    pub save_append: bool,
    /// For proc-title-template validation: `{server-mode}` expands to
    /// "[cluster]" in cluster mode, `{unixsocket}` to the socket path.
    pub cluster_enabled: bool,
    pub unixsocket_set: bool,
}

// ---------------------------------------------------------------------------
// Number parsing, Redis/libc compatible.

/// libc `strtoll(s, &end, base)` for base 8 or 10: returns the (saturated)
/// value, the end index (0 when no digits were found) and whether it
/// overflowed (errno == ERANGE).
pub(crate) fn c_strtoll(s: &[u8], base: u32) -> (i64, usize, bool) {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut acc: u128 = 0;
    let mut overflow = false;
    while i < s.len() {
        let d = match (s[i] as char).to_digit(base) {
            Some(d) => d,
            None => break,
        };
        acc = acc * u128::from(base) + u128::from(d);
        if acc > u128::from(u64::MAX) {
            acc = u128::from(u64::MAX);
            overflow = true;
        }
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    let limit = if neg {
        (i64::MAX as u128) + 1
    } else {
        i64::MAX as u128
    };
    if overflow || acc > limit {
        return (if neg { i64::MIN } else { i64::MAX }, i, true);
    }
    let v = acc as i64; // acc <= 2^63 here; 2^63 only when negative
    (if neg { v.wrapping_neg() } else { v }, i, false)
}

/// `strtoll(s, &eptr, 10)` followed by Redis's usual `*eptr == '\0'` check.
/// Overflow is not an error there (the value saturates).
fn strtoll_whole(s: &[u8]) -> Option<i64> {
    let (v, end, _) = c_strtoll(s, 10);
    if end == s.len() {
        Some(v)
    } else {
        None
    }
}

/// Redis `memtoull`: digits followed by an optional unit (`b`, `k`=1000,
/// `kb`=1024, `m`, `mb`, `g`, `gb`, any case). Like Redis, an empty number
/// is 0, digit overflow saturates and the unit multiplication wraps.
pub fn parse_memory(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        return None;
    }
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let unit = &s[digits..];
    let lower = unit.to_ascii_lowercase();
    let mul: u64 = match lower.as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits >= 128 {
        return None;
    }
    let mut val: u64 = 0;
    for &c in &s[..digits] {
        val = val.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    Some(val.wrapping_mul(mul))
}

/// CONFIG REWRITE's memory formatter: the largest of gb/mb/kb that divides
/// the value exactly.
pub(crate) fn format_memory(bytes: u64) -> String {
    const GB: u64 = 1024 * 1024 * 1024;
    const MB: u64 = 1024 * 1024;
    const KB: u64 = 1024;
    if bytes != 0 && bytes.is_multiple_of(GB) {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes.is_multiple_of(MB) {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes.is_multiple_of(KB) {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

/// Redis `string2d` (strtod that must consume everything, no leading space,
/// no NaN, no overflow/underflow to zero).
fn string2d(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.as_bytes()[0].is_ascii_whitespace() {
        return None;
    }
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.starts_with(['+', '-']) {
        return None; // strtod takes a single sign
    }
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if lower.starts_with("nan") {
        return None;
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        if !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        if v.is_infinite() {
            return None; // ERANGE overflow
        }
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if v == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None; // ERANGE underflow to zero
        }
        v
    };
    Some(if neg { -v } else { v })
}

/// Hexadecimal floating point as accepted by strtod ("10", "1.8p3", ...).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find('p') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = match e.as_bytes().first() {
            Some(b'+') => e[1..].parse().ok()?,
            _ => e.parse().ok()?,
        };
        v *= 2f64.powi(e);
    }
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// `printf("%f")` followed by Redis's `trimDoubleString`.
pub(crate) fn format_percentile(v: f64) -> String {
    let mut s = format!("{v:.6}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Quoting.

/// Redis `sdscatrepr`: double-quoted, C-style escapes, `\xHH` for
/// non-printable bytes. Used by CONFIG REWRITE and to turn command-line
/// arguments into config lines.
pub fn repr(s: &[u8]) -> Vec<u8> {
    crate::util::repr(s).into_bytes()
}

// ---------------------------------------------------------------------------
// Keyspace events.

/// Redis `keyspaceEventsStringToFlags`; `None` on an unknown class letter.
pub fn notify_flags_from_str(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in s {
        flags |= match c {
            b'A' => NOTIFY_ALL,
            b'g' => NOTIFY_GENERIC,
            b'$' => NOTIFY_STRING,
            b'l' => NOTIFY_LIST,
            b's' => NOTIFY_SET,
            b'h' => NOTIFY_HASH,
            b'z' => NOTIFY_ZSET,
            b'x' => NOTIFY_EXPIRED,
            b'e' => NOTIFY_EVICTED,
            b'K' => NOTIFY_KEYSPACE,
            b'E' => NOTIFY_KEYEVENT,
            b't' => NOTIFY_STREAM,
            b'm' => NOTIFY_KEY_MISS,
            b'd' => NOTIFY_MODULE,
            b'n' => NOTIFY_NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Redis `keyspaceEventsFlagsToString`. Quirk kept: when every `A` class is
/// set, `n` is not printed.
pub fn notify_flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & NOTIFY_ALL == NOTIFY_ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (NOTIFY_GENERIC, 'g'),
            (NOTIFY_STRING, '$'),
            (NOTIFY_LIST, 'l'),
            (NOTIFY_SET, 's'),
            (NOTIFY_HASH, 'h'),
            (NOTIFY_ZSET, 'z'),
            (NOTIFY_EXPIRED, 'x'),
            (NOTIFY_EVICTED, 'e'),
            (NOTIFY_STREAM, 't'),
            (NOTIFY_MODULE, 'd'),
            (NOTIFY_NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [
        (NOTIFY_KEYSPACE, 'K'),
        (NOTIFY_KEYEVENT, 'E'),
        (NOTIFY_KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Enums.

/// Redis `configEnumGetName`: exact value first, else (multi) the set bits
/// in table order.
pub(crate) fn enum_name(values: &[(&'static str, u32)], v: u32, multi: bool) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut unmatched = v;
    for &(name, val) in values {
        if val == v {
            return name.to_string();
        }
        if multi && val != 0 && val == unmatched & val {
            names.push(name);
            unmatched &= !val;
        }
    }
    if names.is_empty() || unmatched != 0 {
        // Redis prints "unknown"; unreachable for values we parsed.
        return "unknown".to_string();
    }
    names.join(" ")
}

fn enum_error(values: &[(&'static str, u32)]) -> String {
    let names: Vec<&str> = values.iter().map(|v| v.0).collect();
    let mut s = format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    );
    // Redis formats into a 256-byte buffer.
    s.truncate(255);
    s
}

fn parse_enum(values: &[(&'static str, u32)], multi: bool, args: &[&[u8]]) -> Result<u32, String> {
    if args.is_empty() || (!multi && args.len() != 1) {
        return Err(enum_error(values));
    }
    let mut acc = 0;
    for a in args {
        let mut matched = false;
        for &(name, val) in values {
            if name.as_bytes().eq_ignore_ascii_case(a) {
                acc |= val;
                matched = true;
            }
        }
        if !matched {
            return Err(enum_error(values));
        }
    }
    Ok(acc)
}

// ---------------------------------------------------------------------------
// Numbers.

fn bounds_error(min: i64, max: i64, unsigned: bool, octal: bool) -> String {
    if octal {
        format!(
            "argument must be between {:o} and {:o} inclusive",
            min as u64, max as u64
        )
    } else if unsigned {
        format!(
            "argument must be between {} and {} inclusive",
            min as u64, max as u64
        )
    } else {
        format!("argument must be between {min} and {max} inclusive")
    }
}

/// Redis `numericParseString` + `numericBoundaryCheck` for one row.
fn parse_numeric(kind: &Kind, arg: &[u8], check_bounds: bool) -> Result<i64, String> {
    let (v, min, max, unsigned, percent, octal) = match *kind {
        Kind::Int { min, max, unsigned } => {
            let v = string2ll(arg)
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            (v, min, max, unsigned, false, false)
        }
        Kind::Memory { min, max, unsigned } => {
            let v =
                parse_memory(arg).ok_or_else(|| "argument must be a memory value".to_string())?;
            (v as i64, min, max, unsigned, false, false)
        }
        Kind::MemoryOrPercent { min, max } => {
            let v = match parse_memory(arg) {
                Some(v) => v as i64,
                None => match arg.split_last() {
                    Some((b'%', num)) if !num.is_empty() => match string2ll(num) {
                        Some(p) if p >= 0 => -p,
                        _ => return Err("argument must be a memory or percent value".into()),
                    },
                    _ => return Err("argument must be a memory or percent value".into()),
                },
            };
            (v, min, max, false, true, false)
        }
        Kind::Octal { min, max } => {
            let (v, end, overflow) = c_strtoll(arg, 8);
            if overflow || end != arg.len() {
                return Err("argument couldn't be parsed as an octal number".into());
            }
            // unixsocketperm is an unsigned int in Redis.
            (v, min, max, true, false, true)
        }
        _ => return Err("argument couldn't be parsed into an integer".into()),
    };
    if !check_bounds {
        return Ok(v);
    }
    if unsigned {
        let u = v as u64;
        if u > max as u64 || u < min as u64 {
            return Err(bounds_error(min, max, true, octal));
        }
    } else if percent && v < 0 {
        if v < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                min.unsigned_abs()
            ));
        }
    } else if v > max || v < min {
        return Err(bounds_error(min, max, false, false));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Strings.

fn check_string(check: StrCheck, s: &[u8], env: &Env) -> Result<(), String> {
    match check {
        StrCheck::None => Ok(()),
        StrCheck::DbFilename => {
            if s.contains(&b'/') {
                Err("dbfilename can't be a path, just a filename".into())
            } else {
                Ok(())
            }
        }
        StrCheck::AofFilename => {
            if s.is_empty() {
                Err("appendfilename can't be empty".into())
            } else if s.contains(&b'/') {
                Err("appendfilename can't be a path, just a filename".into())
            } else {
                Ok(())
            }
        }
        StrCheck::AofDirname => {
            if s.is_empty() {
                Err("appenddirname can't be empty".into())
            } else if s.contains(&b'/') {
                Err("appenddirname can't be a path, just a dirname".into())
            } else {
                Ok(())
            }
        }
        StrCheck::Hostname => {
            if s.len() >= 256 {
                Err("Hostnames must be less than 256 characters".into())
            } else if !s
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
            {
                Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into())
            } else {
                Ok(())
            }
        }
        StrCheck::ProcTitleTemplate => {
            if proc_title_template_ok(s, env) {
                Ok(())
            } else {
                Err("template format is invalid or contains unknown variables".into())
            }
        }
    }
}

/// Redis `validateProcTitleTemplate`: `{var}` expansion (with `{{` for a
/// literal brace) must succeed and not be blank. Validation expands `title`
/// to "" and the other variables as the running server would.
fn proc_title_template_ok(t: &[u8], env: &Env) -> bool {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let Some(rel) = t[i..].iter().position(|&c| c == b'{') else {
            out.extend_from_slice(&t[i..]);
            break;
        };
        let open = i + rel;
        out.extend_from_slice(&t[i..open]);
        let sv = open + 1;
        if sv >= t.len() {
            return false;
        }
        if t[sv] == b'{' {
            out.push(b'{');
            i = sv + 1;
            continue;
        }
        let Some(len) = t[sv..].iter().position(|&c| c == b'}') else {
            return false;
        };
        let expansion: &[u8] = match &t[sv..sv + len] {
            b"title" => b"",
            b"listen-addr" => b"*:6379",
            b"server-mode" if env.cluster_enabled => b"[cluster]",
            b"server-mode" => b"",
            b"config-file" => b"-",
            b"port" | b"tls-port" => b"0",
            b"unixsocket" if env.unixsocket_set => b"socket",
            b"unixsocket" => b"",
            _ => return false,
        };
        out.extend_from_slice(expansion);
        i = sv + len + 1;
    }
    out.iter().any(|&c| c != b' ')
}

// ---------------------------------------------------------------------------
// Special directives.

fn parse_save(args: &[&[u8]], env: &Env) -> Result<Value, String> {
    // A single "" always clears the points, even in the middle of a file
    // (redis-server 7.0.15); a bare `save` only appends nothing.
    if args.len() == 1 && args[0].is_empty() {
        return Ok(Value::Save(Vec::new()));
    }
    // One argument holding several words (`--save "3600 1"` on the command
    // line, `save "3600 1"` in a file) is split, as redis-server 7.0 does for
    // multi-argument directives.
    if args.len() == 1 {
        let words: Vec<&[u8]> = args[0]
            .split(|&c| c == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() > 1 {
            return parse_save(&words, env);
        }
    }
    if args.len() % 2 == 1 {
        return Err("Invalid save parameters".into());
    }
    let mut points = Vec::new();
    for pair in args.chunks(2) {
        let secs = strtoll_whole(pair[0]).ok_or("Invalid save parameters")?;
        let changes = strtoll_whole(pair[1]).ok_or("Invalid save parameters")?;
        if secs < 1 || changes < 0 {
            return Err("Invalid save parameters".into());
        }
        // `changes` lands in a C int.
        points.push((secs, changes as i32));
    }
    let mut all = match (env.save_append, env.cur) {
        (true, Value::Save(cur)) => cur.clone(),
        _ => Vec::new(),
    };
    all.extend(points);
    Ok(Value::Save(all))
}

fn obuf_class(name: &[u8]) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"normal" => Some(0),
        b"slave" | b"replica" => Some(1),
        b"pubsub" => Some(2),
        _ => None, // includes "master", which Redis refuses here
    }
}

fn parse_obuf(args: &[&[u8]], env: &Env) -> Result<Value, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits = match env.cur {
        Value::Obuf(l) => *l,
        _ => default_obuf(),
    };
    let mut staged: Vec<(usize, ObufLimit)> = Vec::new();
    for group in args.chunks(4) {
        let class = obuf_class(group[0])
            .ok_or("Invalid client class specified in buffer limit configuration.")?;
        let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(group[1]).ok_or(bad)?;
        let soft = parse_memory(group[2]).ok_or(bad)?;
        // soft_seconds lands in a C int before the sign check.
        let secs = strtoll_whole(group[3]).ok_or(bad)? as i32;
        if secs < 0 {
            return Err(bad.into());
        }
        staged.push((
            class,
            ObufLimit {
                hard_bytes: hard,
                soft_bytes: soft,
                soft_seconds: i64::from(secs),
            },
        ));
    }
    for (class, l) in staged {
        limits[class] = l;
    }
    Ok(Value::Obuf(limits))
}

pub(crate) fn default_obuf() -> [ObufLimit; 3] {
    [
        ObufLimit {
            hard_bytes: 0,
            soft_bytes: 0,
            soft_seconds: 0,
        },
        ObufLimit {
            hard_bytes: 256 * 1024 * 1024,
            soft_bytes: 64 * 1024 * 1024,
            soft_seconds: 60,
        },
        ObufLimit {
            hard_bytes: 32 * 1024 * 1024,
            soft_bytes: 8 * 1024 * 1024,
            soft_seconds: 60,
        },
    ]
}

fn parse_oom(args: &[&[u8]]) -> Result<Value, String> {
    if args.len() != 3 {
        return Err(WRONG_ARGS.into());
    }
    let mut v = [0i32; 3];
    for (slot, a) in v.iter_mut().zip(args) {
        match strtoll_whole(a) {
            Some(n) if (-2000..=2000).contains(&n) => *slot = n as i32,
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                )
            }
        }
    }
    Ok(Value::Oom(v))
}

fn parse_replicaof(args: &[&[u8]]) -> Result<Value, String> {
    // `--replicaof "host port"` on the command line: one argument holding
    // both words, which redis-server 7.0 accepts too.
    if args.len() == 1 {
        let words: Vec<&[u8]> = args[0]
            .split(|&c| c == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() == 2 {
            return parse_replicaof(&words);
        }
    }
    if args.len() != 2 {
        return Err(WRONG_ARGS.into());
    }
    if args[0].eq_ignore_ascii_case(b"no") && args[1].eq_ignore_ascii_case(b"one") {
        return Ok(Value::ReplicaOf(None));
    }
    // strtol into an int: accepts leading spaces and a sign, truncates.
    let (v, end, _) = c_strtoll(args[1], 10);
    let port = v as i32;
    if !(0..=65535).contains(&port) || end != args[1].len() {
        return Err("Invalid master port".into());
    }
    Ok(Value::ReplicaOf(Some((args[0].to_vec(), port))))
}

fn parse_percentiles(args: &[&[u8]]) -> Result<Value, String> {
    if args.len() == 1 && args[0].is_empty() {
        return Ok(Value::Percentiles(Vec::new()));
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let p = string2d(a).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        out.push(p);
    }
    Ok(Value::Percentiles(out))
}

/// Resolves a new working directory like `chdir` would (relative to the
/// current one) and returns its canonical absolute form, as `getcwd` would
/// report it afterwards. Errors are the `strerror` texts Redis replies with.
fn parse_dir(args: &[&[u8]], env: &Env) -> Result<Value, String> {
    if args.len() != 1 {
        return Err(WRONG_ARGS.into());
    }
    let raw = String::from_utf8_lossy(args[0]).into_owned();
    let base = match env.cur {
        Value::Dir(d) => d.clone(),
        _ => String::new(),
    };
    let path = std::path::Path::new(&raw);
    let full = if path.is_absolute() || base.is_empty() {
        path.to_path_buf()
    } else {
        std::path::Path::new(&base).join(path)
    };
    match std::fs::canonicalize(&full) {
        Ok(p) if p.is_dir() => Ok(Value::Dir(p.to_string_lossy().into_owned())),
        Ok(_) => Err("Not a directory".into()),
        Err(e) => Err(strerror(&e)),
    }
}

/// The C `strerror()` text of an I/O error (Rust appends " (os error N)").
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

// ---------------------------------------------------------------------------
// Entry points.

/// Parses the arguments of one directive (everything after its name) into a
/// new value, or returns Redis's reason text. `check_bounds` is false only
/// when installing table defaults.
pub(crate) fn parse_value(
    d: &Directive,
    args: &[&[u8]],
    env: &Env,
    check_bounds: bool,
) -> Result<Value, String> {
    let single: &[u8] = args.first().copied().unwrap_or(b"");
    match d.kind {
        Kind::Bool => {
            let a = single;
            if a.eq_ignore_ascii_case(b"yes") {
                if d.name == "activedefrag" {
                    // Cascade has no active defragmentation: refuse it the
                    // way a Redis built without HAVE_DEFRAG does (the Debian
                    // redis-server 7.0.15 package replies exactly this).
                    return Err(NO_DEFRAG.into());
                }
                Ok(Value::Bool(true))
            } else if a.eq_ignore_ascii_case(b"no") {
                Ok(Value::Bool(false))
            } else {
                Err("argument must be 'yes' or 'no'".into())
            }
        }
        Kind::Int { .. }
        | Kind::Memory { .. }
        | Kind::MemoryOrPercent { .. }
        | Kind::Octal { .. } => parse_numeric(&d.kind, single, check_bounds).map(Value::Num),
        Kind::Enum { values, multi } => {
            let v = parse_enum(values, multi, args)?;
            if multi && v & 1 != 0 && v & 2 != 0 {
                // Only the shutdown-on-sig* flags are multi-valued.
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            Ok(Value::Enum(v))
        }
        Kind::Str {
            empty_is_null,
            check,
        } => {
            let a = single;
            check_string(check, a, env)?;
            if empty_is_null && a.is_empty() {
                Ok(Value::Str(None))
            } else {
                Ok(Value::Str(Some(a.to_vec())))
            }
        }
        Kind::Special(s) => match s {
            Special::Dir => parse_dir(args, env),
            Special::Save => parse_save(args, env),
            Special::ClientOutputBufferLimit => parse_obuf(args, env),
            Special::OomScoreAdjValues => parse_oom(args),
            Special::NotifyKeyspaceEvents => {
                if args.len() != 1 {
                    return Err(WRONG_ARGS.into());
                }
                notify_flags_from_str(args[0])
                    .map(Value::Notify)
                    .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
            }
            Special::Bind => {
                if args.len() > 16 {
                    return Err("Too many bind addresses specified.".into());
                }
                if args.len() == 1 && args[0].is_empty() {
                    return Ok(Value::Bind(Vec::new()));
                }
                Ok(Value::Bind(args.iter().map(|a| a.to_vec()).collect()))
            }
            Special::ReplicaOf => parse_replicaof(args),
            Special::LatencyTrackingInfoPercentiles => parse_percentiles(args),
            Special::Include
            | Special::RenameCommand
            | Special::User
            | Special::LoadModule
            | Special::Sentinel
            | Special::Deprecated => Ok(Value::Nothing),
        },
    }
}

/// The value a row starts with (its table default).
pub(crate) fn default_value(d: &Directive) -> Value {
    if let Kind::Special(Special::Dir) = d.kind {
        let cwd = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Value::Dir(cwd);
    }
    if let Kind::Special(Special::ReplicaOf) = d.kind {
        return Value::ReplicaOf(None);
    }
    if let Kind::Special(Special::ClientOutputBufferLimit) = d.kind {
        return Value::Obuf(default_obuf());
    }
    let words: Vec<&[u8]> = if d.is_multi_arg() {
        d.default
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::as_bytes)
            .collect()
    } else {
        vec![d.default.as_bytes()]
    };
    let env = Env {
        cur: &Value::Nothing,
        save_append: false,
        cluster_enabled: false,
        unixsocket_set: false,
    };
    // The table is static and covered by tests; a bad default would show up
    // there, so falling back to "nothing" here cannot hide a runtime input.
    parse_value(d, &words, &env, false).unwrap_or(Value::Nothing)
}

/// The value exactly as CONFIG GET prints it.
pub(crate) fn format_get(d: &Directive, v: &Value) -> Vec<u8> {
    match (v, &d.kind) {
        (Value::Bool(b), _) => {
            if *b {
                b"yes".to_vec()
            } else {
                b"no".to_vec()
            }
        }
        (Value::Num(n), Kind::Memory { .. }) => (*n as u64).to_string().into_bytes(),
        (Value::Num(n), Kind::MemoryOrPercent { .. }) => {
            if *n < 0 {
                format!("{}%", n.unsigned_abs()).into_bytes()
            } else {
                (*n as u64).to_string().into_bytes()
            }
        }
        (Value::Num(n), Kind::Octal { .. }) => format!("{:o}", *n as u64).into_bytes(),
        (Value::Num(n), _) => n.to_string().into_bytes(),
        (Value::Enum(e), Kind::Enum { values, multi }) => {
            enum_name(values, *e, *multi).into_bytes()
        }
        (Value::Enum(e), _) => e.to_string().into_bytes(),
        (Value::Str(s), _) => s.clone().unwrap_or_default(),
        (Value::Dir(s), _) => s.clone().into_bytes(),
        (Value::Save(points), _) => points
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes(),
        (Value::Bind(addrs), _) => addrs.join(&b' '),
        (Value::Obuf(limits), _) => limits
            .iter()
            .zip(OBUF_CLASSES)
            .map(|(l, name)| {
                format!(
                    "{name} {} {} {}",
                    l.hard_bytes, l.soft_bytes, l.soft_seconds
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes(),
        (Value::Oom(v), _) => format!("{} {} {}", v[0], v[1], v[2]).into_bytes(),
        (Value::Notify(f), _) => notify_flags_to_string(*f).into_bytes(),
        (Value::ReplicaOf(None), _) => Vec::new(),
        (Value::ReplicaOf(Some((host, port))), _) => {
            let mut out = host.clone();
            out.extend_from_slice(format!(" {port}").as_bytes());
            out
        }
        (Value::Percentiles(p), _) => p
            .iter()
            .map(|v| format_percentile(*v))
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes(),
        (Value::Nothing, _) => Vec::new(),
    }
}

/// Splits a CONFIG SET value of a multi-argument directive the way Redis's
/// `sdssplitlen(value, " ")` does: on every single space, keeping empty
/// words, and no words at all for an empty value.
pub(crate) fn split_spaces(v: &[u8]) -> Vec<&[u8]> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(|&c| c == b' ').collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::table::{index_of, TABLE};

    fn row(name: &str) -> &'static Directive {
        &TABLE[index_of(name).unwrap()]
    }

    fn env(cur: &Value) -> Env<'_> {
        Env {
            cur,
            save_append: false,
            cluster_enabled: false,
            unixsocket_set: false,
        }
    }

    fn set(name: &str, args: &[&str]) -> Result<String, String> {
        let d = row(name);
        let cur = default_value(d);
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        parse_value(d, &a, &env(&cur), true).map(|v| String::from_utf8(format_get(d, &v)).unwrap())
    }

    #[test]
    fn memory_units_like_memtoull() {
        assert_eq!(parse_memory(b"1gb"), Some(1 << 30));
        assert_eq!(parse_memory(b"1GB"), Some(1 << 30));
        assert_eq!(parse_memory(b"1Gb"), Some(1 << 30));
        assert_eq!(parse_memory(b"64mb"), Some(64 << 20));
        assert_eq!(parse_memory(b"100k"), Some(100_000));
        assert_eq!(parse_memory(b"100kb"), Some(102_400));
        assert_eq!(parse_memory(b"1m"), Some(1_000_000));
        assert_eq!(parse_memory(b"2g"), Some(2_000_000_000));
        assert_eq!(parse_memory(b"7b"), Some(7));
        assert_eq!(parse_memory(b"7B"), Some(7));
        assert_eq!(parse_memory(b"00012"), Some(12));
        // Redis oddities, checked against redis-server 7.0.15.
        assert_eq!(parse_memory(b""), Some(0));
        assert_eq!(parse_memory(b"kb"), Some(0));
        assert_eq!(parse_memory(b"99999999999999999999"), Some(u64::MAX));
        assert_eq!(
            parse_memory(b"20000000000gb"),
            Some(3_028_092_406_290_448_384)
        );
        for bad in ["-1", "1tb", "1.5mb", "+5", " 5", "1 kb", "0x10", "5%"] {
            assert_eq!(parse_memory(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "012",
            "-0",
            "+1",
            "1 ",
            " 1",
            "00",
            "9223372036854775808",
            "1a",
            "-",
        ] {
            assert_eq!(string2ll(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn strtoll_like_libc() {
        assert_eq!(c_strtoll(b"  +12x", 10), (12, 5, false));
        assert_eq!(c_strtoll(b"", 10), (0, 0, false));
        assert_eq!(c_strtoll(b"-", 10), (0, 0, false));
        assert_eq!(c_strtoll(b"99999999999999999999", 10), (i64::MAX, 20, true));
        assert_eq!(
            c_strtoll(b"-9223372036854775808", 10),
            (i64::MIN, 20, false)
        );
        assert_eq!(c_strtoll(b"777", 8), (511, 3, false));
        assert_eq!(c_strtoll(b"8", 8), (0, 0, false));
    }

    #[test]
    fn bool_kind() {
        assert_eq!(set("daemonize", &["YES"]).unwrap(), "yes");
        assert_eq!(set("daemonize", &["No"]).unwrap(), "no");
        for bad in ["y", "1", "true", ""] {
            assert_eq!(
                set("daemonize", &[bad]).unwrap_err(),
                "argument must be 'yes' or 'no'"
            );
        }
    }

    #[test]
    fn int_kind() {
        assert_eq!(set("databases", &["32"]).unwrap(), "32");
        assert_eq!(
            set("databases", &["0"]).unwrap_err(),
            "argument must be between 1 and 2147483647 inclusive"
        );
        assert_eq!(
            set("port", &["65536"]).unwrap_err(),
            "argument must be between 0 and 65535 inclusive"
        );
        assert_eq!(
            set("port", &["abc"]).unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            set("maxclients", &["-1"]).unwrap_err(),
            "argument must be between 1 and 4294967295 inclusive"
        );
        assert_eq!(set("slowlog-log-slower-than", &["-1"]).unwrap(), "-1");
        assert_eq!(
            set("slowlog-log-slower-than", &["-5"]).unwrap_err(),
            "argument must be between -1 and 9223372036854775807 inclusive"
        );
        assert_eq!(set("list-max-listpack-size", &["-5"]).unwrap(), "-5");
        assert_eq!(
            set("shards", &["0"]).unwrap_err(),
            "argument must be between 1 and 2147483647 inclusive"
        );
    }

    #[test]
    fn memory_kind() {
        assert_eq!(set("maxmemory", &["1gb"]).unwrap(), "1073741824");
        assert_eq!(set("maxmemory", &["100k"]).unwrap(), "100000");
        assert_eq!(
            set("maxmemory", &["18446744073709551615"]).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(
            set("maxmemory", &["1x"]).unwrap_err(),
            "argument must be a memory value"
        );
        assert_eq!(
            set("maxmemory", &["-1"]).unwrap_err(),
            "argument must be a memory value"
        );
        assert_eq!(
            set("proto-max-bulk-len", &["1k"]).unwrap_err(),
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        // Above i64::MAX wraps negative for signed rows, like Redis.
        assert_eq!(
            set("proto-max-bulk-len", &["18446744073709551615"]).unwrap_err(),
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        assert_eq!(
            set("client-query-buffer-limit", &["18446744073709551615"]).unwrap_err(),
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        assert_eq!(set("repl-backlog-size", &["64mb"]).unwrap(), "67108864");
    }

    #[test]
    fn percent_and_octal_kinds() {
        assert_eq!(set("maxmemory-clients", &["5%"]).unwrap(), "5%");
        assert_eq!(set("maxmemory-clients", &["1mb"]).unwrap(), "1048576");
        assert_eq!(
            set("maxmemory-clients", &["101%"]).unwrap_err(),
            "percentage argument must be less or equal to 100"
        );
        assert_eq!(
            set("maxmemory-clients", &["x%"]).unwrap_err(),
            "argument must be a memory or percent value"
        );
        // Redis quirk: u64::MAX wraps to -1 and reads back as 1%.
        assert_eq!(
            set("maxmemory-clients", &["18446744073709551615"]).unwrap(),
            "1%"
        );
        assert_eq!(set("unixsocketperm", &["700"]).unwrap(), "700");
        assert_eq!(set("unixsocketperm", &[""]).unwrap(), "0");
        assert_eq!(
            set("unixsocketperm", &["1000"]).unwrap_err(),
            "argument must be between 0 and 777 inclusive"
        );
        assert_eq!(
            set("unixsocketperm", &["8"]).unwrap_err(),
            "argument couldn't be parsed as an octal number"
        );
    }

    #[test]
    fn enum_kind() {
        assert_eq!(set("loglevel", &["WARNING"]).unwrap(), "warning");
        assert_eq!(
            set("loglevel", &["nothing"]).unwrap_err(),
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        );
        assert_eq!(set("oom-score-adj", &["relative"]).unwrap(), "yes");
        assert_eq!(
            set("shutdown-on-sigint", &["force", "now", "save"]).unwrap(),
            "save now force"
        );
        assert_eq!(
            set("shutdown-on-sigint", &["default", "now"]).unwrap(),
            "now"
        );
        assert_eq!(
            set("shutdown-on-sigint", &["save", "nosave"]).unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
        assert_eq!(
            set("shutdown-on-sigint", &[]).unwrap_err(),
            "argument(s) must be one of the following: default, save, nosave, now, force"
        );
        assert_eq!(
            set("maxmemory-policy", &["lru"]).unwrap_err(),
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        );
    }

    #[test]
    fn string_kind() {
        assert_eq!(set("dbfilename", &["a\\b"]).unwrap(), "a\\b");
        assert_eq!(
            set("dbfilename", &["a/b"]).unwrap_err(),
            "dbfilename can't be a path, just a filename"
        );
        assert_eq!(
            set("appendfilename", &[""]).unwrap_err(),
            "appendfilename can't be empty"
        );
        assert_eq!(
            set("appenddirname", &["x/y"]).unwrap_err(),
            "appenddirname can't be a path, just a dirname"
        );
        assert_eq!(
            set("cluster-announce-hostname", &["a_b"]).unwrap_err(),
            "Hostnames may only contain alphanumeric characters, hyphens or dots"
        );
        let long = "a".repeat(256);
        assert_eq!(
            set("cluster-announce-hostname", &[&long]).unwrap_err(),
            "Hostnames must be less than 256 characters"
        );
        let tmpl_err = "template format is invalid or contains unknown variables";
        for ok in [
            "{port}",
            "{{",
            "}",
            "a{title}",
            "{config-file}",
            "{listen-addr}",
        ] {
            assert!(set("proc-title-template", &[ok]).is_ok(), "{ok}");
        }
        for bad in [
            "{title}",
            "x{",
            "{unknown}",
            "{server-mode}",
            " {title} ",
            "",
            "{unixsocket}",
        ] {
            assert_eq!(
                set("proc-title-template", &[bad]).unwrap_err(),
                tmpl_err,
                "{bad}"
            );
        }
    }

    #[test]
    fn special_kinds() {
        assert_eq!(set("save", &["1", "2", "3", "4"]).unwrap(), "1 2 3 4");
        assert_eq!(set("save", &[""]).unwrap(), "");
        assert_eq!(set("save", &[]).unwrap(), "");
        assert_eq!(set("save", &[" 5", "+3"]).unwrap(), "5 3");
        assert_eq!(set("save", &["3600", ""]).unwrap(), "3600 0");
        assert_eq!(set("save", &["1", "4294967297"]).unwrap(), "1 1");
        for bad in [
            &["1"][..],
            &["0", "1"],
            &["1", "-1"],
            &["a", "1"],
            &["", ""],
        ] {
            assert_eq!(set("save", bad).unwrap_err(), "Invalid save parameters");
        }
        assert_eq!(
            set(
                "client-output-buffer-limit",
                &["pubsub", "1k", "2kb", "3", "replica", "5", "6", "7"]
            )
            .unwrap(),
            "normal 0 0 0 slave 5 6 7 pubsub 1000 2048 3"
        );
        assert_eq!(
            set(
                "client-output-buffer-limit",
                &["Normal", "1", "1", "4294967296"]
            )
            .unwrap(),
            "normal 1 1 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(
            set("client-output-buffer-limit", &["master", "1", "1", "1"]).unwrap_err(),
            "Invalid client class specified in buffer limit configuration."
        );
        assert_eq!(
            set("client-output-buffer-limit", &["normal", "1", "1"]).unwrap_err(),
            "Wrong number of arguments in buffer limit configuration."
        );
        assert_eq!(
            set("client-output-buffer-limit", &["replica", "1", "1", "-1"]).unwrap_err(),
            "Error in hard, soft or soft_seconds setting in buffer limit configuration."
        );
        assert_eq!(
            set("oom-score-adj-values", &["1", "2", "3000"]).unwrap_err(),
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
        );
        assert_eq!(
            set("oom-score-adj-values", &["1", "2"]).unwrap_err(),
            "wrong number of arguments"
        );
        assert_eq!(set("notify-keyspace-events", &["KEA"]).unwrap(), "AKE");
        assert_eq!(set("notify-keyspace-events", &["Elg"]).unwrap(), "glE");
        assert_eq!(
            set("notify-keyspace-events", &["g$lshzxetdn"]).unwrap(),
            "A"
        );
        assert_eq!(set("notify-keyspace-events", &["AKEm"]).unwrap(), "AKEm");
        assert_eq!(
            set("notify-keyspace-events", &["Q"]).unwrap_err(),
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
        assert_eq!(
            set("bind", &["127.0.0.1", "-::1"]).unwrap(),
            "127.0.0.1 -::1"
        );
        assert_eq!(set("bind", &[""]).unwrap(), "");
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            set("bind", &many).unwrap_err(),
            "Too many bind addresses specified."
        );
        assert_eq!(set("replicaof", &["h", "6380"]).unwrap(), "h 6380");
        assert_eq!(set("replicaof", &["NO", "one"]).unwrap(), "");
        assert_eq!(set("replicaof", &["h", " 5"]).unwrap(), "h 5");
        assert_eq!(set("replicaof", &["h", "4294967297"]).unwrap(), "h 1");
        assert_eq!(
            set("replicaof", &["h", "65536"]).unwrap_err(),
            "Invalid master port"
        );
        assert_eq!(
            set("replicaof", &["h"]).unwrap_err(),
            "wrong number of arguments"
        );
        assert_eq!(
            set(
                "latency-tracking-info-percentiles",
                &["0.5", "100", "1e1", ".5", "5.", "99.99999", "0x10"]
            )
            .unwrap(),
            "0.5 100 10 0.5 5 99.99999 16"
        );
        assert_eq!(set("latency-tracking-info-percentiles", &[""]).unwrap(), "");
        assert_eq!(
            set("latency-tracking-info-percentiles", &["nan"]).unwrap_err(),
            "Invalid latency-tracking-info-percentiles parameters"
        );
        assert_eq!(
            set("latency-tracking-info-percentiles", &["+-1"]).unwrap_err(),
            "Invalid latency-tracking-info-percentiles parameters"
        );
        assert_eq!(
            set("latency-tracking-info-percentiles", &["1e-400"]).unwrap_err(),
            "Invalid latency-tracking-info-percentiles parameters"
        );
        assert_eq!(
            set("latency-tracking-info-percentiles", &["101"]).unwrap_err(),
            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
        );
        assert_eq!(
            set("dir", &["/definitely/not/here"]).unwrap_err(),
            "No such file or directory"
        );
        assert_eq!(set("dir", &["/"]).unwrap(), "/");
    }

    #[test]
    fn every_default_round_trips() {
        for d in TABLE.iter() {
            if d.is_file_only() {
                continue;
            }
            let v = default_value(d);
            assert_ne!(v, Value::Nothing, "{}", d.name);
            if d.name != "dir" {
                assert_eq!(
                    String::from_utf8(format_get(d, &v)).unwrap(),
                    d.default,
                    "{}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn repr_and_memory_format() {
        assert_eq!(repr(b"a b\"c\\n"), b"\"a b\\\"c\\\\n\"".to_vec());
        assert_eq!(
            repr(b"\n\r\t\x07\x08\x01\xff"),
            b"\"\\n\\r\\t\\a\\b\\x01\\xff\"".to_vec()
        );
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(3 << 20), "3mb");
        assert_eq!(format_memory(1025 * 1024), "1025kb");
        assert_eq!(format_memory(1_000_000_000), "1000000000");
        assert_eq!(split_spaces(b""), Vec::<&[u8]>::new());
        assert_eq!(split_spaces(b"a  b"), vec![&b"a"[..], b"", b"b"]);
    }
}
