//! Reply encoding: the [`Reply`] values commands produce and their exact
//! RESP2 / RESP3 bytes as Redis 7.0 writes them (`addReply*` in
//! `networking.c`), plus the number formatting Redis uses for doubles.
//! Depends only on `bytes` (no sockets, no server code). Encoding writes
//! straight into the caller's output buffer and allocates nothing else:
//! integers and doubles are formatted on the stack.

use crate::util::num::Decimal;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt::Write as _;

/// Protocol version chosen by the client with HELLO.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A reply to a command, independent of the protocol version; [`encode`]
/// picks the RESP2 or RESP3 shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// Status reply `+text`.
    Simple(Bytes),
    /// Error reply `-text`; the text starts with its code, e.g.
    /// `ERR syntax error` or `WRONGTYPE Operation against ...`.
    Error(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// Null array: RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 `%N`; RESP2 a flat array of 2N items.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `%N`; RESP2 an array of N `[key, value]` arrays (XREAD's
    /// streams and their entries).
    KeyedMap(Vec<(Reply, Reply)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Reply>),
    /// Pairs as Redis 7 replies them from HRANDFIELD WITHVALUES: RESP3 an
    /// array of two-element arrays, RESP2 one flat array.
    Pairs(Vec<(Reply, Reply)>),
    /// RESP3 `,<text>`; RESP2 a bulk string of the same text.
    Double(f64),
    /// A double already formatted (GEO coordinates, `%.17Lf` trimmed):
    /// RESP3 `,<text>`, RESP2 a bulk string.
    DoubleText(Bytes),
    /// RESP3 `#t`/`#f`; RESP2 `:1`/`:0`.
    Bool(bool),
    /// RESP3 verbatim string with format `txt`; RESP2 a plain bulk string.
    Verbatim(Bytes),
    /// RESP3 verbatim string with another three-byte format (a script's
    /// `{verbatim_string=...}`); RESP2 a plain bulk string.
    VerbatimAs([u8; 3], Bytes),
    /// RESP3 `(<digits>` big number; RESP2 a bulk string of the digits.
    BigNumber(Bytes),
    /// RESP3 out-of-band push `>N` (pub/sub messages); RESP2 an array.
    Push(Vec<Reply>),
    /// Bytes already encoded, written as they are.
    Raw(Bytes),
}

impl Reply {
    /// Error reply; `s` starts with the error code (`"ERR ..."`). A leading
    /// `-` is dropped, since the encoder adds it.
    pub fn error(s: impl Into<Bytes>) -> Reply {
        let s = s.into();
        if s.first() == Some(&b'-') {
            Reply::Error(s.slice(1..))
        } else {
            Reply::Error(s)
        }
    }

    /// Status reply (`+text`).
    pub fn simple(s: impl Into<Bytes>) -> Reply {
        Reply::Simple(s.into())
    }

    /// Bulk reply taking ownership of (or sharing) `b` without copying.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// Bulk reply copying borrowed bytes (`&str`, `&[u8]`, ...).
    pub fn bulk_from(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b.as_ref()))
    }

    /// Bulk reply holding the decimal text of `n` (e.g. INCRBY results
    /// stored as strings, or `CONFIG GET` values).
    pub fn bulk_int(n: i64) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(Decimal::i64(n).as_bytes()))
    }

    /// For an error reply, its code (the first word, e.g. `ERR`,
    /// `WRONGTYPE`), as counted by INFO errorstats; `None` otherwise.
    pub fn error_code(&self) -> Option<&[u8]> {
        let Reply::Error(text) = self else {
            return None;
        };
        let text = text.strip_prefix(b"-").unwrap_or(text);
        let end = memchr::memchr(b' ', text).unwrap_or(text.len());
        if end == 0 {
            // Encoded as "-ERR " (see encode), so that is its code.
            Some(b"ERR")
        } else {
            Some(&text[..end])
        }
    }
}

/// Appends the encoding of `reply` for `proto` to `out`.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(s) => {
            out.put_u8(b'+');
            put_line(out, s);
        }
        Reply::Error(s) => {
            if s.is_empty() {
                // What Redis's addReplyError writes for an empty message.
                out.extend_from_slice(b"-ERR \r\n");
            } else {
                if s[0] != b'-' {
                    out.put_u8(b'-');
                }
                put_line(out, s);
            }
        }
        Reply::Int(n) => write_int(out, b':', *n),
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => put_aggregate(out, b'*', items, proto),
        Reply::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Reply::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Reply::Map(pairs) => {
            if resp3 {
                write_len(out, b'%', pairs.len());
            } else {
                write_len(out, b'*', pairs.len().saturating_mul(2));
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::KeyedMap(pairs) => {
            write_len(out, if resp3 { b'%' } else { b'*' }, pairs.len());
            for (k, v) in pairs {
                if !resp3 {
                    out.extend_from_slice(b"*2\r\n");
                }
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Pairs(pairs) => {
            if resp3 {
                write_len(out, b'*', pairs.len());
            } else {
                write_len(out, b'*', pairs.len().saturating_mul(2));
            }
            for (k, v) in pairs {
                if resp3 {
                    out.extend_from_slice(b"*2\r\n");
                }
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Double(v) => {
            let mut text = StackStr::new();
            fmt_g17(*v, &mut text);
            put_typed_line(out, b',', text.as_bytes(), resp3);
        }
        Reply::DoubleText(text) => put_typed_line(out, b',', text, resp3),
        Reply::Bool(b) => out.extend_from_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Reply::Verbatim(text) => put_verbatim(out, b"txt", text, resp3),
        Reply::VerbatimAs(format, text) => put_verbatim(out, format, text, resp3),
        Reply::BigNumber(digits) => put_typed_line(out, b'(', digits, resp3),
        Reply::Raw(b) => out.extend_from_slice(b),
    }
}

fn put_aggregate(out: &mut BytesMut, prefix: u8, items: &[Reply], proto: Protocol) {
    write_len(out, prefix, items.len());
    for item in items {
        encode(item, proto, out);
    }
}

/// A RESP3 one-line type (`,<double>`, `(<big number>`); in RESP2 the
/// same text as a bulk string.
fn put_typed_line(out: &mut BytesMut, prefix: u8, text: &[u8], resp3: bool) {
    if !resp3 {
        return put_bulk(out, text);
    }
    out.put_u8(prefix);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// A RESP3 verbatim string with its three-byte format; in RESP2 the text
/// as a bulk string.
fn put_verbatim(out: &mut BytesMut, format: &[u8; 3], text: &[u8], resp3: bool) {
    if !resp3 {
        return put_bulk(out, text);
    }
    write_len(out, b'=', text.len().saturating_add(4));
    out.extend_from_slice(format);
    out.put_u8(b':');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    write_len(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Writes a status/error text and its CRLF. A `\r` or `\n` inside would
/// end the line early and desynchronise the client, so, like Redis, they
/// become spaces.
fn put_line(out: &mut BytesMut, text: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.reserve(text.len());
        for &b in text {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `<prefix><n>\r\n` (e.g. `:42\r\n`, `*3\r\n`) without allocating.
pub fn write_int(out: &mut BytesMut, prefix: u8, n: i64) {
    out.reserve(24);
    out.put_u8(prefix);
    out.extend_from_slice(Decimal::i64(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `write_int` for lengths, which are never negative.
fn write_len(out: &mut BytesMut, prefix: u8, n: usize) {
    out.reserve(23);
    out.put_u8(prefix);
    // usize is at most 64 bits on every target Rust supports here.
    out.extend_from_slice(Decimal::u64(n as u64).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Small fixed-size string on the stack, so doubles can be formatted with
/// `core::fmt` without a heap allocation.
struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl StackStr {
    fn new() -> Self {
        StackStr {
            buf: [0; 48],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        // Callers stay far below the capacity; dropping a byte beats
        // panicking if that assumption were ever wrong.
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_slice(&mut self, s: &[u8]) {
        for &b in s {
            self.push(b);
        }
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats `v` like C `printf("%.17g")` (what Redis 7.0 sends for doubles),
/// with `inf`, `-inf` and `nan` (`-nan`) spelled out as Redis does.
fn fmt_g17(v: f64, out: &mut StackStr) {
    fmt_g(v, 17, out)
}

/// Formats `v` like C `printf("%.<precision>g")`, 1 <= precision <= 17.
///
/// Digits come from Rust's `{:.Ne}`, which rounds the exact binary value
/// to `precision` significant digits with ties to even, like glibc. The
/// `%g` rules are then applied: with X the decimal exponent, fixed
/// notation when -4 <= X < precision, otherwise `d.ddde+XX` with at least
/// two exponent digits; trailing zeros and a trailing point are removed.
fn fmt_g(v: f64, precision: usize, out: &mut StackStr) {
    let precision = precision.clamp(1, 17);
    if v.is_nan() {
        // glibc prints the sign bit of a NaN too: Lua's 0/0 is "-nan".
        out.push_slice(if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if v.is_infinite() {
        out.push_slice(if v > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    let mut sci = StackStr::new();
    // Longest output is like "-1.2345678901234567e-308" (24 bytes).
    if write!(sci, "{v:.*e}", precision - 1).is_err() {
        out.push_slice(b"nan");
        return;
    }
    let s = sci.as_bytes();
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let e_pos = memchr::memchr(b'e', s).unwrap_or(s.len());
    let mut digits = [b'0'; 17];
    let mut ndigits = 0;
    for &b in s[..e_pos].iter().filter(|b| b.is_ascii_digit()) {
        if let Some(slot) = digits.get_mut(ndigits) {
            *slot = b;
            ndigits += 1;
        }
    }
    let mut exp: i32 = 0;
    let mut exp_negative = false;
    for &b in s.get(e_pos + 1..).unwrap_or_default() {
        if b == b'-' {
            exp_negative = true;
        } else if b.is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add(i32::from(b - b'0'));
        }
    }
    if exp_negative {
        exp = -exp;
    }
    // %g drops trailing zeros; keep at least one digit (for zero).
    while ndigits > 1 && digits[ndigits - 1] == b'0' {
        ndigits -= 1;
    }
    let digits = &digits[..ndigits];

    if negative {
        out.push(b'-');
    }
    if (-4..precision as i32).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            for i in 0..int_len {
                out.push(digits.get(i).copied().unwrap_or(b'0'));
            }
            if digits.len() > int_len {
                out.push(b'.');
                out.push_slice(&digits[int_len..]);
            }
        } else {
            out.push_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.push_slice(digits);
        }
    } else {
        out.push(digits.first().copied().unwrap_or(b'0'));
        if digits.len() > 1 {
            out.push(b'.');
            out.push_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push(b'0');
        }
        out.push_slice(Decimal::u64(u64::from(exp)).as_bytes());
    }
}

/// C `printf("%.<precision>g")` of a finite `v` (Lua's and lua-cjson's
/// number text is `%.14g`).
pub fn format_g(v: f64, precision: usize) -> String {
    let mut text = StackStr::new();
    fmt_g(v, precision, &mut text);
    String::from_utf8_lossy(text.as_bytes()).into_owned()
}

/// Text Redis 7.0 uses for a double reply: `inf`, `-inf`, `nan` (`-nan`
/// with the sign bit), otherwise
/// C `%.17g` (e.g. `1.5`, `0.10000000000000001`, `1e+30`, `1.0000000000000001e-05`).
pub fn format_double(v: f64) -> String {
    let mut text = StackStr::new();
    fmt_g17(v, &mut text);
    String::from_utf8_lossy(text.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use crate::resp::encode::{encode, format_double, write_int, Protocol, Reply};
    use bytes::{Bytes, BytesMut};

    fn enc(r: &Reply, p: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(r, p, &mut out);
        out.to_vec()
    }

    /// Checks the RESP2 and RESP3 bytes of `r`.
    fn check(r: Reply, resp2: &[u8], resp3: &[u8]) {
        assert_eq!(
            enc(&r, Protocol::Resp2),
            resp2,
            "RESP2 {r:?}: {:?}",
            String::from_utf8_lossy(&enc(&r, Protocol::Resp2))
        );
        assert_eq!(
            enc(&r, Protocol::Resp3),
            resp3,
            "RESP3 {r:?}: {:?}",
            String::from_utf8_lossy(&enc(&r, Protocol::Resp3))
        );
    }

    fn same(r: Reply, bytes: &[u8]) {
        check(r, bytes, bytes);
    }

    #[test]
    fn scalar_variants() {
        same(Reply::Ok, b"+OK\r\n");
        same(Reply::simple("PONG"), b"+PONG\r\n");
        same(Reply::simple(""), b"+\r\n");
        same(Reply::error("ERR syntax error"), b"-ERR syntax error\r\n");
        same(
            Reply::error("-WRONGTYPE Operation against a key"),
            b"-WRONGTYPE Operation against a key\r\n",
        );
        same(Reply::Error(Bytes::from_static(b"-ERR x")), b"-ERR x\r\n");
        same(Reply::error(""), b"-ERR \r\n");
        same(Reply::Int(0), b":0\r\n");
        same(Reply::Int(-42), b":-42\r\n");
        same(Reply::Int(i64::MAX), b":9223372036854775807\r\n");
        same(Reply::Int(i64::MIN), b":-9223372036854775808\r\n");
        same(Reply::bulk("hello"), b"$5\r\nhello\r\n");
        same(Reply::bulk_from(b"a\r\nb"), b"$4\r\na\r\nb\r\n");
        same(Reply::bulk(""), b"$0\r\n\r\n");
        same(Reply::bulk_int(-1234567), b"$8\r\n-1234567\r\n");
        check(Reply::Nil, b"$-1\r\n", b"_\r\n");
        check(Reply::NilArray, b"*-1\r\n", b"_\r\n");
        check(Reply::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n");
        check(
            Reply::DoubleText(Bytes::from_static(b"13.36138933897018433")),
            b"$20\r\n13.36138933897018433\r\n",
            b",13.36138933897018433\r\n",
        );
        check(Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        check(
            Reply::Double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        );
        check(
            Reply::Double(0.1),
            b"$19\r\n0.10000000000000001\r\n",
            b",0.10000000000000001\r\n",
        );
        check(
            Reply::BigNumber(Bytes::from_static(b"-1234567890123456789012")),
            b"$23\r\n-1234567890123456789012\r\n",
            b"(-1234567890123456789012\r\n",
        );
        check(
            Reply::VerbatimAs(*b"mkd", Bytes::from_static(b"# x")),
            b"$3\r\n# x\r\n",
            b"=7\r\nmkd:# x\r\n",
        );
        check(Reply::Bool(true), b":1\r\n", b"#t\r\n");
        check(Reply::Bool(false), b":0\r\n", b"#f\r\n");
        check(
            Reply::Verbatim(Bytes::from_static(b"# Server\r\n")),
            b"$10\r\n# Server\r\n\r\n",
            b"=14\r\ntxt:# Server\r\n\r\n",
        );
        same(
            Reply::Raw(Bytes::from_static(b"+ALREADY\r\n:1\r\n")),
            b"+ALREADY\r\n:1\r\n",
        );
    }

    #[test]
    fn aggregate_variants() {
        let items = || vec![Reply::bulk("a"), Reply::Int(1), Reply::Nil];
        check(
            Reply::Array(items()),
            b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n",
            b"*3\r\n$1\r\na\r\n:1\r\n_\r\n",
        );
        same(Reply::Array(vec![]), b"*0\r\n");
        check(
            Reply::Set(items()),
            b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n",
            b"~3\r\n$1\r\na\r\n:1\r\n_\r\n",
        );
        check(
            Reply::Push(vec![Reply::bulk("message"), Reply::bulk("ch")]),
            b"*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
            b">2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
        );
        check(
            Reply::Map(vec![
                (Reply::bulk("k"), Reply::Double(2.0)),
                (Reply::simple("b"), Reply::Bool(true)),
            ]),
            b"*4\r\n$1\r\nk\r\n$1\r\n2\r\n+b\r\n:1\r\n",
            b"%2\r\n$1\r\nk\r\n,2\r\n+b\r\n#t\r\n",
        );
        check(Reply::Map(vec![]), b"*0\r\n", b"%0\r\n");
        check(
            Reply::KeyedMap(vec![(Reply::Bulk("k".into()), Reply::Int(1))]),
            b"*1\r\n*2\r\n$1\r\nk\r\n:1\r\n",
            b"%1\r\n$1\r\nk\r\n:1\r\n",
        );
        check(
            Reply::Pairs(vec![(Reply::Bulk("f".into()), Reply::Int(1))]),
            b"*2\r\n$1\r\nf\r\n:1\r\n",
            b"*1\r\n*2\r\n$1\r\nf\r\n:1\r\n",
        );
        check(
            Reply::Array(vec![Reply::Array(vec![Reply::NilArray]), Reply::Ok]),
            b"*2\r\n*1\r\n*-1\r\n+OK\r\n",
            b"*2\r\n*1\r\n_\r\n+OK\r\n",
        );
    }

    #[test]
    fn newlines_never_leak_into_status_or_error() {
        same(Reply::error("ERR bad\r\nthing\n"), b"-ERR bad  thing \r\n");
        same(Reply::simple("a\rb"), b"+a b\r\n");
    }

    #[test]
    fn error_code() {
        assert_eq!(
            Reply::error("WRONGTYPE Operation").error_code(),
            Some(&b"WRONGTYPE"[..])
        );
        assert_eq!(Reply::error("-ERR x").error_code(), Some(&b"ERR"[..]));
        assert_eq!(
            Reply::Error(Bytes::from_static(b"-NOAUTH x")).error_code(),
            Some(&b"NOAUTH"[..])
        );
        assert_eq!(Reply::error("OOM").error_code(), Some(&b"OOM"[..]));
        assert_eq!(Reply::error("").error_code(), Some(&b"ERR"[..]));
        assert_eq!(Reply::Ok.error_code(), None);
        assert_eq!(Reply::bulk("ERR x").error_code(), None);
    }

    #[test]
    fn write_int_cases() {
        for (n, text) in [
            (0i64, "0"),
            (7, "7"),
            (10, "10"),
            (99, "99"),
            (100, "100"),
            (-1, "-1"),
            (-100, "-100"),
            (1234567890123, "1234567890123"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut out = BytesMut::new();
            write_int(&mut out, b'*', n);
            assert_eq!(out, format!("*{text}\r\n").as_bytes());
        }
        // Exhaustive-ish cross-check against the standard formatter.
        let mut out = BytesMut::new();
        let mut expected = String::new();
        for n in (-20_000i64..20_000).chain((0..63).map(|s| 1i64 << s)) {
            write_int(&mut out, b':', n);
            expected.push_str(&format!(":{n}\r\n"));
        }
        assert_eq!(out, expected.as_bytes());
    }

    #[test]
    fn format_double_cases() {
        for (v, text) in [
            (1.5, "1.5"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
            (1e30, "1e+30"),
            (0.1, "0.10000000000000001"),
            (3.0, "3"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345680000.0, "1.2345678901234568e+20"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (12345678901234567.0, "12345678901234568"),
            (0.0001, "0.0001"),
            (0.001, "0.001"),
            (0.00012, "0.00012"),
            (0.000123, "0.00012300000000000001"),
            (1.25e-5, "1.2500000000000001e-05"),
            // Exact ties at the 17th digit round to even, as in glibc.
            (1e15 + 0.25, "1000000000000000.2"),
            (1e15 + 0.75, "1000000000000000.8"),
            (1e100, "1e+100"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1.0 / 3.0, "0.33333333333333331"),
            (-1e-300, "-1e-300"),
        ] {
            assert_eq!(format_double(v), text, "{v:e}");
        }
    }

    #[test]
    fn format_double_matches_printf_rules_on_many_values() {
        // Self-consistency over many magnitudes: parsing back gives the same
        // f64 (17 digits always round-trip) and the layout follows %g.
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let s = format_double(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
            let exp = format!("{v:.16e}")
                .split('e')
                .nth(1)
                .unwrap()
                .parse::<i32>()
                .unwrap();
            assert_eq!(s.contains('e'), !(-4..17).contains(&exp), "{s}");
            assert!(!s.contains('.') || !s.split('e').next().unwrap().ends_with('0'));
        }
    }
}
