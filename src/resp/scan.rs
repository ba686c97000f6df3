//! Scanning a stream that is forwarded as well as applied (a replica's
//! stream from its master, passed on byte for byte to its own replicas).
//!
//! [`Scanner`] follows [`super::Decoder`]'s rules, limits and error texts,
//! but leaves a command's bytes in the buffer until all of them have
//! arrived, then splits them off at once: the caller gets the exact bytes
//! to forward, and the arguments as zero-copy slices of those bytes, with
//! no second copy of the stream kept on the side. Empty commands (`*0`,
//! `*-1`, blank inline lines), which the decoder skips, come out with no
//! arguments, so their bytes are forwarded too.
//!
//! The scan resumes where it stopped, so a huge command arriving in many
//! reads is scanned once (only a partial header line is looked at again).
//! Depends only on `bytes`, `memchr` and the decoder's helpers.

use super::decode::{
    bulk_len, grow_for_big_arg, inline_args, inline_text_len, multibulk_count, DecodeLimits, Line,
    ProtocolError, MAX_PREALLOC_ARGS, PROTO_INLINE_MAX_SIZE, PROTO_MBULK_BIG_ARG,
};
use bytes::{Bytes, BytesMut};

/// One command taken off the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Every byte of the command, as received.
    pub bytes: Bytes,
    /// Its arguments, slices of `bytes`; empty for an empty command.
    pub args: Vec<Bytes>,
}

/// The decoder's states without its inline one (an inline command is
/// taken in one step, from `Idle`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between commands.
    #[default]
    Idle,
    /// Waiting for the `*<count>\r\n` line.
    Count,
    /// Waiting for the `$<len>\r\n` line of the next argument.
    BulkHeader,
    /// Waiting for `len` bytes of argument plus the 2 terminator bytes.
    BulkData(usize),
}

/// Looks for `needle` in the first `PROTO_INLINE_MAX_SIZE + 1` bytes of
/// `line` (the position is relative to `line`); with `need_next`, the byte
/// after it must have arrived too. Unlike the decoder's search it does not
/// resume: only a header line still arriving is looked at again.
fn find_line(line: &[u8], needle: u8, need_next: bool) -> Line {
    let window = line.len().min(PROTO_INLINE_MAX_SIZE + 1);
    match memchr::memchr(needle, &line[..window]) {
        Some(p) if need_next && p + 1 >= line.len() => Line::Incomplete,
        Some(p) => Line::Found(p),
        None if line.len() > PROTO_INLINE_MAX_SIZE => Line::TooBig,
        None => Line::Incomplete,
    }
}

/// The `\r` ending the `*`/`$` header line at the front of `line`: `None`
/// while it is still arriving, Redis's `too_big` error when it cannot fit.
fn header_end(line: &[u8], too_big: &'static str) -> Result<Option<usize>, ProtocolError> {
    match find_line(line, b'\r', true) {
        Line::Found(p) => Ok(Some(p)),
        Line::Incomplete => Ok(None),
        Line::TooBig => Err(ProtocolError::new(too_big)),
    }
}

/// See the module doc. One per stream.
#[derive(Debug, Default)]
pub struct Scanner {
    state: State,
    /// Bytes of the current command already scanned (from the buffer's
    /// front, where the command starts).
    pos: usize,
    /// Arguments still expected by the multibulk command in progress.
    remaining: usize,
    /// Where each argument seen so far lies in the command's bytes.
    ranges: Vec<(usize, usize)>,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Takes the next complete command off the front of `buf`. `Ok(None)`
    /// means more bytes are needed (nothing is removed). After an error the
    /// scanner is reset, but the stream cannot be resynchronised.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Scanned>, ProtocolError> {
        let result = self.next_inner(buf, limits);
        if result.is_err() {
            *self = Scanner::default();
        }
        result
    }

    fn next_inner(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Scanned>, ProtocolError> {
        loop {
            match self.state {
                State::Idle => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        return inline(buf);
                    }
                    self.pos = 0;
                    self.ranges.clear();
                    self.state = State::Count;
                }
                State::Count => {
                    let line = &buf[self.pos..];
                    let Some(cr) = header_end(line, "too big mbulk count string")? else {
                        return Ok(None);
                    };
                    let count = multibulk_count(line.get(1..cr).unwrap_or_default(), limits)?;
                    self.pos += cr + 2;
                    if count <= 0 {
                        return Ok(Some(self.finish(buf)));
                    }
                    let count = usize::try_from(count).unwrap_or(MAX_PREALLOC_ARGS);
                    self.remaining = count;
                    self.ranges.reserve(count.min(MAX_PREALLOC_ARGS));
                    self.state = State::BulkHeader;
                }
                State::BulkHeader => {
                    let line = &buf[self.pos..];
                    let Some(cr) = header_end(line, "too big bulk count string")? else {
                        return Ok(None);
                    };
                    let len = bulk_len(&line[..=cr], limits)?;
                    self.pos += cr + 2;
                    self.state = State::BulkData(len);
                }
                State::BulkData(len) => {
                    let end = self.pos + len;
                    if buf.len() < end + 2 {
                        if len >= PROTO_MBULK_BIG_ARG {
                            grow_for_big_arg(buf, end + 2);
                        }
                        return Ok(None);
                    }
                    self.ranges.push((self.pos, end));
                    // The 2 bytes after the data are skipped unchecked, as
                    // the decoder (and Redis) does.
                    self.pos = end + 2;
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        return Ok(Some(self.finish(buf)));
                    }
                    self.state = State::BulkHeader;
                }
            }
        }
    }

    /// Splits the scanned command off the buffer.
    fn finish(&mut self, buf: &mut BytesMut) -> Scanned {
        let bytes = buf.split_to(self.pos).freeze();
        let args = self
            .ranges
            .drain(..)
            .map(|(start, end)| bytes.slice(start..end))
            .collect();
        self.state = State::Idle;
        self.pos = 0;
        Scanned { bytes, args }
    }
}

/// An inline command (a master never sends one, but a stream may hold
/// anything): the line up to `\n`, split as the decoder splits it.
fn inline(buf: &mut BytesMut) -> Result<Option<Scanned>, ProtocolError> {
    let newline = match find_line(buf, b'\n', false) {
        Line::Found(p) => p,
        Line::Incomplete => return Ok(None),
        Line::TooBig => return Err(ProtocolError::new("too big inline request")),
    };
    let len = inline_text_len(buf, newline);
    let bytes = buf.split_to(newline + 1).freeze();
    let args = inline_args(&bytes.slice(..len))?;
    Ok(Some(Scanned { bytes, args }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Decoder;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    fn enc(args: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::repl::encode_command(args, &mut out);
        out
    }

    /// A stream with empty commands, inline lines, binary and big values.
    fn stream() -> Vec<u8> {
        let big = vec![b'x'; PROTO_MBULK_BIG_ARG + 17];
        let mut s = Vec::new();
        s.extend(enc(&[b"SET", b"k", b"v"]));
        s.extend_from_slice(b"*0\r\n*-1\r\n");
        s.extend(enc(&[b"SET", b"bin", b"a\r\n\0b"]));
        s.extend_from_slice(b"PING\r\n\r\nSET \"a b\" c\n");
        s.extend(enc(&[b"SET", b"big", &big]));
        s.extend(enc(&[b"DEL", b""]));
        s
    }

    /// Scans `input` fed in pieces of the given sizes, cycling.
    fn scan_in_pieces(input: &[u8], sizes: &[usize]) -> Vec<Scanned> {
        let mut scanner = Scanner::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < input.len() {
            let n = sizes[i % sizes.len()].min(input.len() - at);
            buf.extend_from_slice(&input[at..at + n]);
            at += n;
            i += 1;
            while let Some(c) = scanner.next(&mut buf, &limits()).unwrap() {
                out.push(c);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn forwards_every_byte_and_decodes_like_the_decoder() {
        let input = stream();
        let mut decoder = Decoder::new();
        let mut all = BytesMut::from(&input[..]);
        let mut expected = Vec::new();
        while let Some(args) = decoder.decode(&mut all, &limits()).unwrap() {
            expected.push(args);
        }
        for sizes in [&[usize::MAX][..], &[1], &[2, 3], &[7, 4096], &[1000, 1]] {
            let scanned = scan_in_pieces(&input, sizes);
            let joined: Vec<u8> = scanned.iter().flat_map(|c| c.bytes.to_vec()).collect();
            assert_eq!(joined, input, "{sizes:?}");
            let args: Vec<Vec<Bytes>> = scanned
                .into_iter()
                .map(|c| c.args)
                .filter(|a| !a.is_empty())
                .collect();
            assert_eq!(args, expected, "{sizes:?}");
        }
    }

    #[test]
    fn empty_commands_come_out_with_their_bytes() {
        let scanned = scan_in_pieces(b"*0\r\n*-1\r\n\r\n", &[usize::MAX]);
        let bytes: Vec<&[u8]> = scanned.iter().map(|c| &c.bytes[..]).collect();
        assert_eq!(bytes, [&b"*0\r\n"[..], b"*-1\r\n", b"\r\n"]);
        assert!(scanned.iter().all(|c| c.args.is_empty()));
    }

    #[test]
    fn arguments_are_slices_of_the_forwarded_bytes() {
        let scanned = scan_in_pieces(&enc(&[b"SET", b"key", b"value"]), &[usize::MAX]);
        let c = &scanned[0];
        let range = c.bytes.as_ptr_range();
        for a in &c.args {
            assert!(range.contains(&a.as_ptr()));
        }
    }

    #[test]
    fn errors_match_the_decoder() {
        let cases: [&[u8]; 8] = [
            b"*abc\r\n",
            b"*3\r\n$x\r\n",
            b"*1\r\n+3\r\n",
            b"*1\r\n$-2\r\n",
            b"*1\r\n$99999999999999999999\r\n",
            b"SET \"a b\r\n",
            b"*2147483648\r\n",
            b"*1\r\n$\xc3\r\n",
        ];
        for input in cases {
            let mut decoder = Decoder::new();
            let expected = decoder
                .decode(&mut BytesMut::from(input), &limits())
                .unwrap_err();
            let got = Scanner::new()
                .next(&mut BytesMut::from(input), &limits())
                .unwrap_err();
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(input));
        }
        let long = vec![b'a'; PROTO_INLINE_MAX_SIZE + 10];
        let got = Scanner::new().next(&mut BytesMut::from(&long[..]), &limits());
        assert_eq!(
            got.unwrap_err(),
            ProtocolError::new("too big inline request")
        );
        let mut header = b"*1\r\n$".to_vec();
        header.extend(vec![b'1'; PROTO_INLINE_MAX_SIZE + 10]);
        let got = Scanner::new().next(&mut BytesMut::from(&header[..]), &limits());
        assert_eq!(
            got.unwrap_err(),
            ProtocolError::new("too big bulk count string")
        );
    }

    /// Everything the scanner gives for `chunks` fed one after the other:
    /// the commands, then the error or the bytes still waiting.
    fn scan_chunks(
        chunks: &[&[u8]],
        limits: &DecodeLimits,
    ) -> (Vec<Scanned>, Result<Vec<u8>, ProtocolError>) {
        let mut scanner = Scanner::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match scanner.next(&mut buf, limits) {
                    Ok(Some(c)) => out.push(c),
                    Ok(None) => break,
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        (out, Ok(buf.to_vec()))
    }

    #[test]
    fn fuzz_garbage_never_panics_and_split_does_not_matter() {
        use crate::util::rand::{bounded, rand_next};
        const ALPHABET: &[u8] = b"**$$\r\n\r\n0123456789--\"'\\x  \tab\0\xff\x0b";
        let valid = stream();
        let mut seed = 0x5eed_u64;
        let mut below = |n: usize| bounded(rand_next(&mut seed), n);
        for round in 0..10_000 {
            let input: Vec<u8> = if round % 2 == 0 {
                (0..below(120))
                    .map(|_| ALPHABET[below(ALPHABET.len())])
                    .collect()
            } else {
                let mut v = valid[..400].to_vec();
                for _ in 0..1 + below(4) {
                    let i = below(v.len());
                    match below(3) {
                        0 => v[i] = ALPHABET[below(ALPHABET.len())],
                        1 => {
                            v.remove(i);
                        }
                        _ => v.insert(i, ALPHABET[below(ALPHABET.len())]),
                    }
                }
                v
            };
            let limits = DecodeLimits {
                proto_max_bulk_len: [3, 100, 1 << 29][below(3)],
                authenticated: below(2) == 0,
            };
            let whole = scan_chunks(&[&input], &limits);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at(1 + below(rest.len().min(16)));
                chunks.push(a);
                rest = b;
            }
            let split = scan_chunks(&chunks, &limits);
            assert_eq!(whole, split, "input {input:?}");
            // Without an error, every byte is either in a command or still
            // waiting, in order.
            if let (commands, Ok(waiting)) = whole {
                let mut joined: Vec<u8> = commands.iter().flat_map(|c| c.bytes.to_vec()).collect();
                joined.extend(waiting);
                assert_eq!(joined, input);
            }
        }
    }

    #[test]
    fn nothing_is_taken_before_the_command_is_complete() {
        let input = enc(&[b"SET", b"k", b"value"]);
        let mut scanner = Scanner::new();
        let mut buf = BytesMut::new();
        for (i, b) in input.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = scanner.next(&mut buf, &limits()).unwrap();
            if i + 1 < input.len() {
                assert!(got.is_none());
                assert_eq!(buf.len(), i + 1);
            } else {
                assert_eq!(got.unwrap().bytes, input);
            }
        }
    }
}
