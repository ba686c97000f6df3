//! Request decoding: splits the bytes a client sends into commands (a list of
//! binary-safe arguments), with the exact rules and error texts of Redis 7.0
//! (`processMultibulkBuffer` / `processInlineBuffer` in `networking.c`, and
//! `sdssplitargs` in `sds.c` for inline commands). It owns the per-connection
//! parse state and depends only on `bytes` and `memchr` (no sockets, no
//! server code): the caller reads into a `BytesMut`, calls
//! [`Decoder::decode`] until it returns `Ok(None)`, and closes the connection
//! after replying to a [`ProtocolError`], as Redis does.
//!
//! Decisions worth knowing:
//! * Arguments of multibulk commands and unquoted/unescaped inline arguments
//!   are zero-copy slices of the read buffer (`split_to(..).freeze()`); only
//!   inline arguments that needed unescaping are fresh allocations.
//! * The decoder is resumable and never re-scans bytes it already looked at,
//!   so a huge command trickling in through many small reads costs time
//!   linear in its size.
//! * Results never depend on how the input was split into reads: the 64 KB
//!   line limits are applied to the line length, which for byte-at-a-time
//!   input is exactly what Redis does (Redis itself can let a slightly longer
//!   line through when the newline happens to arrive in the same read).

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Longest inline request, or multibulk/bulk count line, before its
/// terminator (Redis `PROTO_INLINE_MAX_SIZE`).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;

/// Redis reads a client's socket 16 KB at a time (`PROTO_IOBUF_LEN`) and
/// looks for a line's end after each read; only a buffer past
/// [`PROTO_INLINE_MAX_SIZE`] with no end in it is refused. So a line sent
/// at once is accepted when its end arrives within the read that crossed
/// the limit: up to this many bytes.
const LINE_WINDOW: usize = PROTO_INLINE_MAX_SIZE + 16 * 1024;

/// Bulk size from which the decoder grows the buffer itself while the bulk
/// arrives (Redis `PROTO_MBULK_BIG_ARG`).
pub const PROTO_MBULK_BIG_ARG: usize = 32 * 1024;

/// Default of the `proto-max-bulk-len` config (512 MB).
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

/// Redis refuses more than this many arguments before AUTH succeeded.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Redis refuses bulks longer than this before AUTH succeeded.
const UNAUTH_MAX_BULK: i64 = 16384;
/// Redis 7.0 caps the multibulk count at INT_MAX (argc is an `int`).
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// The argument vector is preallocated for at most this many entries (as
/// Redis does), so a declared count of 2^31-1 costs nothing up front.
pub(crate) const MAX_PREALLOC_ARGS: usize = 1024;
/// While a big bulk arrives the buffer grows geometrically, starting at this
/// step; a declared length alone never makes us allocate more than this.
const BIG_ARG_GROWTH_STEP: usize = 1024 * 1024;

/// Limits that depend on server config and on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// `proto-max-bulk-len`: longest accepted bulk argument.
    pub proto_max_bulk_len: u64,
    /// False while the server requires AUTH and the client has not passed
    /// it; then commands are limited to 10 arguments of at most 16 KB.
    pub authenticated: bool,
}

impl Default for DecodeLimits {
    /// Redis defaults with no password configured (nothing to authenticate).
    fn default() -> Self {
        DecodeLimits {
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            authenticated: true,
        }
    }
}

/// A malformed request. The text is what Redis sends after `-ERR `, e.g.
/// `Protocol error: invalid multibulk length`. The connection must be closed
/// after replying, because the decoder cannot find the next command boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub(crate) fn new(what: &str) -> Self {
        ProtocolError(format!("Protocol error: {what}"))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Where the decoder is inside the current command. Like Redis's `reqtype`,
/// the kind (inline or multibulk) is fixed by the first byte of the command
/// and kept until the command is complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between commands.
    #[default]
    Idle,
    /// Waiting for the `\n` that ends an inline command.
    Inline,
    /// Waiting for the `*<count>\r\n` line.
    Count,
    /// Waiting for the `$<len>\r\n` line of the next argument.
    BulkHeader,
    /// Waiting for `len` bytes of argument plus the 2 terminator bytes.
    BulkData(usize),
}

/// Outcome of looking for a line terminator at the front of the buffer.
pub(crate) enum Line {
    /// Terminator at this offset (and, where needed, the byte after it too).
    Found(usize),
    /// Not there yet; wait for more bytes.
    Incomplete,
    /// More than `PROTO_INLINE_MAX_SIZE` bytes without a terminator.
    TooBig,
}

/// Resumable RESP request parser; one per connection.
#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
    /// Arguments of the multibulk command in progress, already split off the
    /// buffer so they are never looked at again.
    args: Vec<Bytes>,
    /// Arguments still expected by the multibulk command in progress.
    remaining: usize,
    /// Bytes at the front of the buffer already known not to hold the line
    /// terminator we wait for, so the next call resumes the search there.
    scanned: usize,
}

impl Decoder {
    /// A decoder waiting for the first command.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the next complete command from the front of `buf`, removing
    /// its bytes. `Ok(None)` means more bytes are needed: `buf` keeps the
    /// unparsed tail and the decoder keeps any arguments already split off,
    /// so the next call continues where this one stopped. Empty commands
    /// (`*0`, `*-1`, blank inline lines) are consumed silently, as in Redis.
    ///
    /// After an error the decoder is reset, but the stream cannot be
    /// resynchronised: reply with the error and close the connection.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.decode_inner(buf, limits);
        if result.is_err() {
            *self = Decoder::default();
        }
        result
    }

    /// While a bulk argument is being received: how many bytes `buf` must
    /// hold (counted from its front) for that argument to be complete. A
    /// reader can use it to size its next read, or to reserve before reading.
    pub fn wanted_capacity(&self) -> Option<usize> {
        match self.state {
            // Cannot overflow: checked when the bulk header was parsed.
            State::BulkData(len) => Some(len + 2),
            _ => None,
        }
    }

    fn decode_inner(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            match self.state {
                State::Idle => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    self.scanned = 0;
                    self.state = if first == b'*' {
                        State::Count
                    } else {
                        State::Inline
                    };
                }
                State::Inline => {
                    let newline = match self.find_line(buf, b'\n', false) {
                        Line::Found(p) => p,
                        Line::Incomplete => return Ok(None),
                        Line::TooBig => return Err(ProtocolError::new("too big inline request")),
                    };
                    let len = inline_text_len(buf, newline);
                    let line = buf.split_to(len).freeze();
                    buf.advance(newline + 1 - len);
                    self.state = State::Idle;
                    let args = inline_args(&line)?;
                    if !args.is_empty() {
                        return Ok(Some(args));
                    }
                }
                State::Count => {
                    let cr = match self.find_line(buf, b'\r', true) {
                        Line::Found(p) => p,
                        Line::Incomplete => return Ok(None),
                        Line::TooBig => {
                            return Err(ProtocolError::new("too big mbulk count string"))
                        }
                    };
                    // buf[0] is the '*' that selected this state.
                    let count = multibulk_count(buf.get(1..cr).unwrap_or_default(), limits)?;
                    // Like Redis, the byte after '\r' is skipped unchecked.
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    if count <= 0 {
                        // Redis resets the client: no command, no reply.
                        self.state = State::Idle;
                        continue;
                    }
                    // count <= i32::MAX, so it fits in usize on our targets;
                    // fall back to the cap rather than panic elsewhere.
                    let count = usize::try_from(count).unwrap_or(MAX_PREALLOC_ARGS);
                    self.remaining = count;
                    self.args = Vec::with_capacity(count.min(MAX_PREALLOC_ARGS));
                    self.state = State::BulkHeader;
                }
                State::BulkHeader => {
                    let cr = match self.find_line(buf, b'\r', true) {
                        Line::Found(p) => p,
                        Line::Incomplete => return Ok(None),
                        Line::TooBig => {
                            return Err(ProtocolError::new("too big bulk count string"))
                        }
                    };
                    let len = bulk_len(&buf[..=cr], limits)?;
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    self.state = State::BulkData(len);
                }
                State::BulkData(len) => {
                    let total = len + 2;
                    if buf.len() < total {
                        if len >= PROTO_MBULK_BIG_ARG {
                            grow_for_big_arg(buf, total);
                        }
                        return Ok(None);
                    }
                    self.args.push(buf.split_to(len).freeze());
                    // Like Redis, the 2 bytes after the data (normally
                    // "\r\n") are skipped without being checked.
                    buf.advance(2);
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        self.state = State::Idle;
                        return Ok(Some(std::mem::take(&mut self.args)));
                    }
                    self.state = State::BulkHeader;
                }
            }
        }
    }

    /// Looks for `needle` at the front of `buf`, resuming after the bytes
    /// scanned by earlier calls. Only the first [`LINE_WINDOW`] bytes are
    /// searched, and a buffer past `PROTO_INLINE_MAX_SIZE` without a
    /// terminator in them is a line too big, as Redis judges one sent at
    /// once.
    /// `need_next` asks for the byte after the terminator to be present too
    /// (Redis waits for the `\n` after a `\r`, although it never checks it).
    fn find_line(&mut self, buf: &[u8], needle: u8, need_next: bool) -> Line {
        let window = buf.len().min(LINE_WINDOW);
        // min() keeps us safe even if the caller shrank the buffer.
        let from = self.scanned.min(window);
        match memchr::memchr(needle, &buf[from..window]) {
            Some(i) => {
                let pos = from + i;
                if need_next && pos + 1 >= buf.len() {
                    self.scanned = pos;
                    Line::Incomplete
                } else {
                    Line::Found(pos)
                }
            }
            None => {
                self.scanned = window;
                if buf.len() > PROTO_INLINE_MAX_SIZE {
                    Line::TooBig
                } else {
                    Line::Incomplete
                }
            }
        }
    }
}

/// The count of a `*<count>` line (`digits` after the `*`), checked as
/// Redis checks it. May be zero or negative: an empty command.
pub(crate) fn multibulk_count(digits: &[u8], limits: &DecodeLimits) -> Result<i64, ProtocolError> {
    let count = match parse_ll(digits) {
        Some(n) if n <= MAX_MULTIBULK => n,
        _ => return Err(ProtocolError::new("invalid multibulk length")),
    };
    if count > UNAUTH_MAX_MULTIBULK && !limits.authenticated {
        return Err(ProtocolError::new("unauthenticated multibulk length"));
    }
    Ok(count)
}

/// The length of a `$<len>` line (`line` up to and including its `\r`),
/// checked as Redis checks it.
pub(crate) fn bulk_len(line: &[u8], limits: &DecodeLimits) -> Result<usize, ProtocolError> {
    let (&first, rest) = line.split_first().unwrap_or((&b'\r', &[]));
    let digits = rest.split_last().map_or(&[][..], |(_, d)| d);
    if first != b'$' {
        // Redis prints the byte with %c; bytes >= 0x80 are shown as the
        // Latin-1 character since our text is UTF-8.
        return Err(ProtocolError(format!(
            "Protocol error: expected '$', got '{}'",
            first as char
        )));
    }
    let len = match parse_ll(digits) {
        Some(n) if n >= 0 && n as u64 <= limits.proto_max_bulk_len => n,
        _ => return Err(ProtocolError::new("invalid bulk length")),
    };
    if len > UNAUTH_MAX_BULK && !limits.authenticated {
        return Err(ProtocolError::new("unauthenticated bulk length"));
    }
    // Only reachable with a limit beyond the address space.
    match usize::try_from(len) {
        Ok(n) if n.checked_add(2).is_some() => Ok(n),
        _ => Err(ProtocolError::new("invalid bulk length")),
    }
}

/// Makes room for a big bulk still arriving. Redis reserves the whole
/// declared length at once; we grow geometrically instead, so a client that
/// declares 512 MB and sends 3 bytes costs at most `BIG_ARG_GROWTH_STEP`,
/// while total copying stays linear: without this, `reserve` on a buffer
/// whose front was split off into arguments (shared storage) only allocates
/// what is asked, and small reserves per read would copy the partial bulk
/// again and again.
pub(crate) fn grow_for_big_arg(buf: &mut BytesMut, total: usize) {
    let target = total.min(buf.len().saturating_mul(2).max(BIG_ARG_GROWTH_STEP));
    if buf.capacity() < target {
        buf.reserve(target - buf.len());
    }
}

/// Redis `string2ll`: optional '-', no '+', no leading zeros, no spaces,
/// fewer than 21 bytes, must fit in an i64.
fn parse_ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &d in rest {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        i64::try_from(-i128::from(v)).ok()
    } else {
        i64::try_from(v).ok()
    }
}

/// C `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    match b? {
        d @ b'0'..=b'9' => Some(d - b'0'),
        d @ b'a'..=b'f' => Some(d - b'a' + 10),
        d @ b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// One argument being assembled by [`split_args`]. While its bytes are a
/// contiguous run of the line it is just a range, so it becomes a zero-copy
/// slice; it switches to an owned copy only when unescaping makes that
/// impossible.
struct Token<'a> {
    line: &'a Bytes,
    start: usize,
    end: usize,
    owned: Option<Vec<u8>>,
}

impl<'a> Token<'a> {
    fn new(line: &'a Bytes) -> Self {
        Token {
            line,
            start: 0,
            end: 0,
            owned: None,
        }
    }

    /// Appends `line[i]` unchanged.
    fn push_at(&mut self, i: usize) {
        match &mut self.owned {
            Some(v) => v.push(self.line[i]),
            None if self.start == self.end => {
                self.start = i;
                self.end = i + 1;
            }
            None if self.end == i => self.end += 1,
            None => {
                let mut v = self.line[self.start..self.end].to_vec();
                v.push(self.line[i]);
                self.owned = Some(v);
            }
        }
    }

    /// Appends a byte that does not appear as such in the line.
    fn push_byte(&mut self, b: u8) {
        let (line, start, end) = (self.line, self.start, self.end);
        self.owned
            .get_or_insert_with(|| line[start..end].to_vec())
            .push(b);
    }

    fn finish(self) -> Bytes {
        match self.owned {
            Some(v) => Bytes::from(v),
            None => self.line.slice(self.start..self.end),
        }
    }
}

/// The length of the text of an inline command whose line ends with the
/// `\n` at `newline`: only a `\r` right before the `\n` belongs to the
/// terminator; any other `\r` is whitespace for the split.
pub(crate) fn inline_text_len(buf: &[u8], newline: usize) -> usize {
    if newline > 0 && buf[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    }
}

/// An inline command's arguments ([`split_args`]), or Redis's error.
pub(crate) fn inline_args(text: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    split_args(text).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
}

/// Splits an inline request like Redis `sdssplitargs`: arguments separated
/// by whitespace; "double quotes" with `\n \r \t \b \a \xHH` and `\<any>`
/// escapes; 'single quotes' where only `\'` is an escape; quotes may start
/// in the middle of an argument (`a"b c"` is `ab c`), but a closing quote
/// must be followed by whitespace or the end. Returns `None` for unbalanced
/// quotes (or a closing quote followed by something else).
///
/// One deliberate difference: Redis works on C strings, so a NUL byte ends
/// its scan; here NUL is an ordinary byte. (In Redis an inline line with a
/// NUL never even reaches sdssplitargs: its `strchr` for `\n` stops at the
/// NUL, so the request waits until "too big inline request".)
pub(crate) fn split_args(line: &Bytes) -> Option<Vec<Bytes>> {
    let n = line.len();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut token = Token::new(line);
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = line.get(i).copied();
            if in_double {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'x') => {
                        match (hex_value(line.get(i + 2)), hex_value(line.get(i + 3))) {
                            (Some(hi), Some(lo)) => {
                                token.push_byte(hi * 16 + lo);
                                i += 4;
                            }
                            // Not a valid \xHH: `\x` is just an 'x'.
                            _ => {
                                token.push_byte(b'x');
                                i += 2;
                            }
                        }
                    }
                    Some(b'\\') if i + 1 < n => {
                        token.push_byte(match line[i + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 2;
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        token.push_at(i);
                        i += 1;
                    }
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        token.push_byte(b'\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        token.push_at(i);
                        i += 1;
                    }
                }
            } else {
                match c {
                    // Unlike the skip above, only these end a bare word:
                    // '\v' and '\f' inside a word are part of it (as in C).
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t') => {
                        i += 1;
                        break;
                    }
                    Some(b'"') => {
                        in_double = true;
                        i += 1;
                    }
                    Some(b'\'') => {
                        in_single = true;
                        i += 1;
                    }
                    Some(_) => {
                        token.push_at(i);
                        i += 1;
                    }
                }
            }
        }
        args.push(token.finish());
    }
}

#[cfg(test)]
mod tests {
    use crate::resp::decode::{
        parse_ll, split_args, DecodeLimits, Decoder, ProtocolError, State, BIG_ARG_GROWTH_STEP,
        LINE_WINDOW, PROTO_INLINE_MAX_SIZE,
    };
    use bytes::{Bytes, BytesMut};

    type Cmd = Vec<Vec<u8>>;

    fn unauth() -> DecodeLimits {
        DecodeLimits {
            authenticated: false,
            ..DecodeLimits::default()
        }
    }

    fn to_vecs(args: Vec<Bytes>) -> Cmd {
        args.into_iter().map(|a| a.to_vec()).collect()
    }

    /// Feeds `chunks` one after another, draining commands after each, and
    /// returns the commands plus the error that stopped decoding, if any.
    fn feed_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        limits: &DecodeLimits,
    ) -> (Vec<Cmd>, Option<ProtocolError>) {
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();
        let mut cmds = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf, limits) {
                    Ok(Some(args)) => cmds.push(to_vecs(args)),
                    Ok(None) => break,
                    Err(e) => return (cmds, Some(e)),
                }
            }
        }
        (cmds, None)
    }

    fn decode_all(input: &[u8], limits: &DecodeLimits) -> (Vec<Cmd>, Option<ProtocolError>) {
        feed_chunks([input], limits)
    }

    fn cmd(args: &[&[u8]]) -> Cmd {
        args.iter().map(|a| a.to_vec()).collect()
    }

    /// Several pipelined commands of every kind, and what they decode to.
    fn pipeline() -> (Vec<u8>, Vec<Cmd>) {
        let mut b = Vec::new();
        b.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
        b.extend_from_slice(b"PING\r\n");
        b.extend_from_slice(b"*0\r\n*-1\r\n\r\n  \t \n");
        b.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
        b.extend_from_slice(b"set \"a b\" 'c\\'d' \"\\x41\\n\" \"\"\n");
        b.extend_from_slice(b"*1\r\n$4\r\n\0\xff\r\n\r\n");
        b.extend_from_slice(b"*-10\r\nGET k\n");
        b.extend_from_slice(b"*2\r\n$1\r\n*\r\n$1\r\n$\r\n");
        let expected = vec![
            cmd(&[b"SET", b"key", b"va\r\nl"]),
            cmd(&[b"PING"]),
            cmd(&[b"ECHO", b""]),
            cmd(&[b"set", b"a b", b"c'd", b"A\n", b""]),
            cmd(&[b"\0\xff\r\n"]),
            cmd(&[b"GET", b"k"]),
            cmd(&[b"*", b"$"]),
        ];
        (b, expected)
    }

    #[test]
    fn pipeline_all_at_once() {
        let (input, expected) = pipeline();
        let limits = DecodeLimits::default();
        assert_eq!(decode_all(&input, &limits), (expected, None));
    }

    #[test]
    fn pipeline_byte_by_byte() {
        let (input, expected) = pipeline();
        let limits = DecodeLimits::default();
        let (cmds, err) = feed_chunks(input.chunks(1), &limits);
        assert_eq!((cmds, err), (expected, None));
    }

    #[test]
    fn pipeline_every_two_and_three_way_split() {
        let (input, expected) = pipeline();
        let limits = DecodeLimits::default();
        for i in 0..=input.len() {
            let got = feed_chunks([&input[..i], &input[i..]], &limits);
            assert_eq!(got, (expected.clone(), None), "split at {i}");
            for j in i..=input.len() {
                let got = feed_chunks([&input[..i], &input[i..j], &input[j..]], &limits);
                assert_eq!(got, (expected.clone(), None), "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn prefixes_never_produce_extra_or_partial_commands() {
        // Decoding any prefix yields a prefix of the full command list and
        // leaves the decoder resumable.
        let (input, expected) = pipeline();
        let limits = DecodeLimits::default();
        for i in 0..=input.len() {
            let (cmds, err) = decode_all(&input[..i], &limits);
            assert!(err.is_none());
            assert_eq!(cmds[..], expected[..cmds.len()], "prefix {i}");
        }
    }

    #[test]
    fn buffer_fully_consumed_and_decoder_idle() {
        let (input, _) = pipeline();
        let mut buf = BytesMut::from(&input[..]);
        let mut dec = Decoder::new();
        while dec
            .decode(&mut buf, &DecodeLimits::default())
            .unwrap()
            .is_some()
        {}
        assert!(buf.is_empty());
        assert_eq!(dec.state, State::Idle);
        assert_eq!(dec.wanted_capacity(), None);
    }

    #[test]
    fn multibulk_args_are_zero_copy() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let args = Decoder::new()
            .decode(&mut buf, &DecodeLimits::default())
            .unwrap()
            .unwrap();
        for a in &args {
            assert!(range.contains(&(a.as_ptr() as usize)));
        }
        let mut buf = BytesMut::from(&b"GET \"key\" 'k\\'y'\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let args = Decoder::new()
            .decode(&mut buf, &DecodeLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(to_vecs(args.clone()), cmd(&[b"GET", b"key", b"k'y"]));
        assert!(range.contains(&(args[0].as_ptr() as usize)));
        assert!(range.contains(&(args[1].as_ptr() as usize)));
        // The escaped one had to be copied.
        assert!(!range.contains(&(args[2].as_ptr() as usize)));
    }

    #[test]
    fn binary_and_empty_values() {
        let limits = DecodeLimits::default();
        let input = b"*4\r\n$0\r\n\r\n$2\r\n\r\n\r\n$3\r\n\0\0\0\r\n$0\r\n\r\n";
        assert_eq!(
            decode_all(input, &limits),
            (vec![cmd(&[b"", b"\r\n", b"\0\0\0", b""])], None)
        );
    }

    #[test]
    fn trailing_bytes_after_data_and_count_are_not_checked() {
        // Redis skips the two bytes after bulk data and the byte after a
        // count line's '\r' without looking at them.
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_all(b"*1\x0dX$3\rYfooAB", &limits),
            (vec![cmd(&[b"foo"])], None)
        );
    }

    #[test]
    fn inline_line_endings() {
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_all(b"a b\r\nc\nd\re\r\r\n", &limits),
            (
                vec![cmd(&[b"a", b"b"]), cmd(&[b"c"]), cmd(&[b"d", b"e"])],
                None
            )
        );
        // No command until the '\n' arrives.
        assert_eq!(decode_all(b"PING\r", &limits), (vec![], None));
    }

    fn assert_error(input: &[u8], limits: &DecodeLimits, msg: &str) {
        let (_, err) = decode_all(input, limits);
        assert_eq!(err, Some(ProtocolError(msg.to_string())), "{input:?}");
        // Same error however the input is split.
        let (_, err) = feed_chunks(input.chunks(1), limits);
        assert_eq!(
            err,
            Some(ProtocolError(msg.to_string())),
            "{input:?} bytewise"
        );
    }

    fn assert_pending(input: &[u8], limits: &DecodeLimits) {
        assert_eq!(decode_all(input, limits), (vec![], None), "{input:?}");
    }

    #[test]
    fn error_texts() {
        let l = DecodeLimits::default();
        let invalid_mb = "Protocol error: invalid multibulk length";
        let invalid_b = "Protocol error: invalid bulk length";
        for bad in [
            &b"*abc\r\n"[..],
            b"*\r\n",
            b"*-0\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"* 1\r\n",
            b"*2147483648\r\n",
            b"*99999999999999999999\r\n",
            b"*1\0\r\n",
        ] {
            assert_error(bad, &l, invalid_mb);
        }
        for bad in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$abc\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$-0\r\n",
            b"*1\r\n$9223372036854775808\r\n",
            b"*1\r\n$536870913\r\n",
        ] {
            assert_error(bad, &l, invalid_b);
        }
        assert_error(
            b"*1\r\nfoo\r\n",
            &l,
            "Protocol error: expected '$', got 'f'",
        );
        assert_error(
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            &l,
            "Protocol error: expected '$', got 'f'",
        );
        assert_error(b"*1\r\n\r\n", &l, "Protocol error: expected '$', got '\r'");
        assert_error(
            b"*1\r\n\xff\r\n",
            &l,
            "Protocol error: expected '$', got '\u{ff}'",
        );
        assert_error(
            b"\"unbalanced\r\n",
            &l,
            "Protocol error: unbalanced quotes in request",
        );
        assert_error(
            b"set \"foo\"bar x\n",
            &l,
            "Protocol error: unbalanced quotes in request",
        );
        let e = ProtocolError("Protocol error: x".into());
        assert_eq!(e.to_string(), "Protocol error: x");
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn multibulk_count_limits() {
        let l = DecodeLimits::default();
        // INT_MAX is accepted, but only a small argv is preallocated.
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
        assert_eq!(dec.decode(&mut buf, &l), Ok(None));
        assert_eq!(dec.remaining, 2147483647);
        assert!(dec.args.capacity() <= 1024);
        assert_pending(b"*1048577\r\n", &l);
        // Negative counts of any size are an empty command.
        assert_eq!(
            decode_all(b"*-9223372036854775808\r\nPING\n", &l),
            (vec![cmd(&[b"PING"])], None)
        );
    }

    #[test]
    fn bulk_length_limits() {
        let small = DecodeLimits {
            proto_max_bulk_len: 5,
            authenticated: true,
        };
        assert_eq!(
            decode_all(b"*1\r\n$5\r\nhello\r\n", &small),
            (vec![cmd(&[b"hello"])], None)
        );
        assert_error(
            b"*1\r\n$6\r\n",
            &small,
            "Protocol error: invalid bulk length",
        );
        // Default limit: 512 MB is accepted (and waits for data).
        assert_pending(b"*1\r\n$536870912\r\n", &DecodeLimits::default());
    }

    #[test]
    fn unauthenticated_limits() {
        let u = unauth();
        assert_pending(b"*10\r\n", &u);
        assert_error(
            b"*11\r\n",
            &u,
            "Protocol error: unauthenticated multibulk length",
        );
        assert_pending(b"*1\r\n$16384\r\n", &u);
        assert_error(
            b"*1\r\n$16385\r\n",
            &u,
            "Protocol error: unauthenticated bulk length",
        );
        // Validity is checked before the authentication limits.
        assert_error(
            b"*2147483648\r\n",
            &u,
            "Protocol error: invalid multibulk length",
        );
        assert_error(b"*1\r\n$-1\r\n", &u, "Protocol error: invalid bulk length");
        assert_error(
            b"*1\r\n$536870913\r\n",
            &u,
            "Protocol error: invalid bulk length",
        );
        // Negative and zero counts are still fine.
        assert_eq!(
            decode_all(b"*-100\r\n*0\r\nPING\r\n", &u),
            (vec![cmd(&[b"PING"])], None)
        );
        // Inline commands have no argument limit beyond the line size.
        let line = "a ".repeat(50) + "\n";
        assert_eq!(decode_all(line.as_bytes(), &u).0[0].len(), 50);
    }

    #[test]
    fn line_size_limits() {
        let l = DecodeLimits::default();
        let max = PROTO_INLINE_MAX_SIZE;
        // Inline: 64 KB without an end waits, one byte more is refused.
        let mut line = vec![b'a'; max];
        assert_pending(&line, &l);
        line.push(b'\n');
        let (cmds, err) = decode_all(&line, &l);
        assert!(err.is_none());
        assert_eq!(cmds[0][0].len(), max);
        let long = vec![b'a'; max + 1];
        assert_error(&long, &l, "Protocol error: too big inline request");
        // A longer line whose end came in the same 16 KB read that crossed
        // the limit is taken, as Redis takes one sent at once.
        for len in [max + 1, LINE_WINDOW - 1] {
            let mut sent_at_once = vec![b'a'; len];
            sent_at_once.push(b'\n');
            let (cmds, err) = decode_all(&sent_at_once, &l);
            assert!(err.is_none(), "{len}");
            assert_eq!(cmds[0][0].len(), len);
        }
        let mut crlf = vec![b'a'; max];
        crlf.extend_from_slice(b"\r\n");
        assert!(decode_all(&crlf, &l).1.is_none());
        // Past the window, the end comes too late.
        let mut late = vec![b'a'; LINE_WINDOW];
        late.push(b'\n');
        assert_error(&late, &l, "Protocol error: too big inline request");

        // Multibulk count line.
        let mut count = vec![b'*'];
        count.extend(std::iter::repeat_n(b'1', max - 1));
        assert_pending(&count, &l);
        count.push(b'1');
        assert_error(&count, &l, "Protocol error: too big mbulk count string");
        // A '\r' within the window: just an invalid number.
        let mut count = vec![b'*'];
        count.extend(std::iter::repeat_n(b'1', max - 1));
        count.extend_from_slice(b"\r\n");
        assert_error(&count, &l, "Protocol error: invalid multibulk length");

        // Bulk count line.
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(std::iter::repeat_n(b'1', max - 1));
        assert_pending(&bulk, &l);
        bulk.push(b'1');
        assert_error(&bulk, &l, "Protocol error: too big bulk count string");
    }

    #[test]
    fn huge_declared_lengths_are_not_allocated() {
        let l = DecodeLimits::default();
        // Rejected lengths: error before any allocation.
        let mut buf = BytesMut::from(&b"*1\r\n$99999999999\r\n"[..]);
        let cap = buf.capacity();
        assert!(Decoder::new().decode(&mut buf, &l).is_err());
        assert!(buf.capacity() <= cap);
        // Accepted but absent: at most one growth step is reserved.
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nabc"[..]);
        assert_eq!(dec.decode(&mut buf, &l), Ok(None));
        assert!(buf.capacity() <= 2 * BIG_ARG_GROWTH_STEP);
        assert_eq!(dec.wanted_capacity(), Some(536870914));
    }

    #[test]
    fn big_bulk_in_small_reads() {
        // 3 MB argument arriving in 4 KB reads, the reader reserving just
        // one read each time: the result is right, and the reader's reserves
        // (almost) never reallocate because the decoder grows the buffer
        // ahead of the data, geometrically.
        let len = 3 * 1024 * 1024;
        let mut input = format!("*2\r\n$3\r\nSET\r\n${len}\r\n").into_bytes();
        input.extend((0..len).map(|i| (i % 251) as u8));
        input.extend_from_slice(b"\r\n");
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        let mut reallocations = 0;
        for chunk in input.chunks(4096) {
            let before = buf.as_ptr();
            buf.reserve(chunk.len());
            buf.extend_from_slice(chunk);
            if buf.as_ptr() != before {
                reallocations += 1;
            }
            if let Some(args) = dec.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                got = Some(args);
            }
            if got.is_none() && dec.wanted_capacity().is_some() {
                assert_eq!(dec.wanted_capacity(), Some(len + 2));
            }
        }
        let args = got.unwrap();
        assert_eq!(args[1].len(), len);
        assert_eq!(&args[1][..], &input[input.len() - len - 2..input.len() - 2]);
        assert!(reallocations <= 3, "{reallocations} reallocations");
    }

    #[test]
    fn partial_lines_are_not_rescanned() {
        // White-box: the search resumes where the previous call stopped.
        let l = DecodeLimits::default();
        for prefix in [&b""[..], b"*", b"*1\r\n$"] {
            let mut dec = Decoder::new();
            let mut buf = BytesMut::from(prefix);
            for _ in 0..1000 {
                buf.extend_from_slice(b"1");
                assert_eq!(dec.decode(&mut buf, &l), Ok(None));
                assert_eq!(dec.scanned, buf.len());
            }
        }
    }

    fn split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(&Bytes::copy_from_slice(s)).map(to_vecs)
    }

    fn words(ws: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        Some(cmd(ws))
    }

    #[test]
    fn sdssplitargs_cases() {
        assert_eq!(split(b""), words(&[]));
        assert_eq!(split(b" \t\x0b\x0c\r "), words(&[]));
        assert_eq!(split(b"set a b"), words(&[b"set", b"a", b"b"]));
        assert_eq!(split(b"  set \t a   "), words(&[b"set", b"a"]));
        assert_eq!(split(b"\"a b\" c"), words(&[b"a b", b"c"]));
        assert_eq!(split(b"\"\" ''"), words(&[b"", b""]));
        assert_eq!(
            split(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\""),
            words(&[b"\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(split(b"\"\\x41\\x4a\\xff\""), words(&[b"AJ\xff"]));
        // Not a full \xHH: the backslash escapes the 'x'.
        assert_eq!(split(b"\"\\x4Z\""), words(&[b"x4Z"]));
        assert_eq!(split(b"\"\\x\""), words(&[b"x"]));
        assert_eq!(split(b"'a\\'b'"), words(&[b"a'b"]));
        assert_eq!(split(b"'a\\nb\\\\x'"), words(&[b"a\\nb\\\\x"]));
        assert_eq!(split(b"'a\"b'"), words(&[b"a\"b"]));
        assert_eq!(split(b"\"a'b\""), words(&[b"a'b"]));
        // Quotes can open in the middle of a word.
        assert_eq!(split(b"a\"b c\" d"), words(&[b"ab c", b"d"]));
        assert_eq!(split(b"a'b c'"), words(&[b"ab c"]));
        // Closing quote followed by whitespace (any isspace) or the end.
        assert_eq!(split(b"\"a\"\x0bb"), words(&[b"a", b"b"]));
        assert_eq!(split(b"\"foo\" bar"), words(&[b"foo", b"bar"]));
        // Vertical tab and form feed only separate words at their start.
        assert_eq!(split(b"a\x0bb\x0cc"), words(&[b"a\x0bb\x0cc"]));
        assert_eq!(split(b"a\rb"), words(&[b"a", b"b"]));
        // NUL is an ordinary byte here (see split_args).
        assert_eq!(split(b"a\0b \0"), words(&[b"a\0b", b"\0"]));
        // Errors.
        for bad in [
            &b"\"foo\"bar"[..],
            b"'foo'bar",
            b"a\"b\"c",
            b"\"foo",
            b"'foo",
            b"\"foo\\\"",
            b"\"foo\\",
            b"'foo\\'",
            b"\"",
            b"'",
            b"ok \"a\"\"b\"",
        ] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_ll(b"0"), Some(0));
        assert_eq!(parse_ll(b"-1"), Some(-1));
        assert_eq!(parse_ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_ll(bad), None, "{bad:?}");
        }
    }

    /// xorshift64*: deterministic pseudo-random numbers for the fuzz loop.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn fuzz_garbage_never_panics_and_split_does_not_matter() {
        const ALPHABET: &[u8] = b"**$$\r\n\r\n0123456789--\"'\\x  \tab\0\xff\x0b";
        let (valid, _) = pipeline();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..20_000 {
            let input: Vec<u8> = if round % 2 == 0 {
                let len = rng.below(120);
                (0..len)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                    .collect()
            } else {
                // Mutate the valid pipeline a little.
                let mut v = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(v.len());
                    match rng.below(3) {
                        0 => v[i] = ALPHABET[rng.below(ALPHABET.len())],
                        1 => {
                            v.remove(i);
                        }
                        _ => v.insert(i, ALPHABET[rng.below(ALPHABET.len())]),
                    }
                }
                v
            };
            let limits = DecodeLimits {
                proto_max_bulk_len: [3, 100, 1 << 29][rng.below(3)],
                authenticated: rng.below(2) == 0,
            };
            let whole = decode_all(&input, &limits);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(16));
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            let chunked = feed_chunks(chunks, &limits);
            assert_eq!(whole, chunked, "input {input:?}");
        }
    }

    #[test]
    fn caller_shrinking_buffer_does_not_panic() {
        // Misuse (clearing the buffer mid-command) must not panic.
        let l = DecodeLimits::default();
        for input in [&b"*2\r\n$3\r\nab"[..], b"*12", b"*1\r\n$12", b"abc"] {
            let mut dec = Decoder::new();
            let mut buf = BytesMut::from(input);
            let _ = dec.decode(&mut buf, &l);
            buf.clear();
            let _ = dec.decode(&mut buf, &l);
            buf.extend_from_slice(b"\r\n\r\nxyz\r\n");
            let _ = dec.decode(&mut buf, &l);
        }
    }
}
