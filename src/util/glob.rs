//! Glob-style pattern matching with the exact semantics of Redis's
//! `stringmatchlen()` (util.c), used by KEYS, SCAN MATCH, PSUBSCRIBE and
//! CONFIG GET.
//!
//! Owns only the matcher: pure function over byte slices, no allocation, no
//! server state, no I/O. Must not depend on anything else in the crate.
//!
//! Supported syntax: `*` (any run, possibly empty), `?` (one byte), `[abc]`,
//! `[^abc]`, `[a-z]` (reversed ranges are accepted), `\x` (literal x, also
//! inside brackets). Redis quirks we reproduce on purpose because clients can
//! observe them:
//! * an empty subject never matches a non-empty pattern, not even `*`
//!   (Redis's KEYS special-cases the lone `*` pattern before matching, so an
//!   empty key is listed by `KEYS *`; a KEYS implementation must do the same);
//! * an unterminated `[` class runs to the end of the pattern;
//! * range bounds and subject bytes are compared as C `char` (signed), so
//!   ranges that involve bytes >= 0x80 behave like on x86 Redis;
//! * with `nocase`, only ASCII letters are folded, and an escaped byte inside
//!   a class is still compared case-sensitively.
//!
//! Redis's recursive matcher was made polynomial by the "skip longer matches"
//! fix; the equivalent iterative form used here only remembers the most recent
//! `*` (backtracking to older stars can never help), so the cost is bounded by
//! `pattern.len() * string.len()` with no recursion at all.

/// Returns true when `string` matches the glob `pattern` (Redis semantics).
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // Redis's loop never runs for an empty subject: only an empty pattern
    // matches it.
    if string.is_empty() {
        return pattern.is_empty();
    }
    let plen = pattern.len();
    let slen = string.len();
    let mut pi = 0usize;
    let mut si = 0usize;
    // (pattern index just after the last `*`, subject index it was tried at)
    let mut star: Option<(usize, usize)> = None;

    loop {
        if si == slen {
            // Subject consumed: only trailing stars may remain.
            while pi < plen && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == plen {
                return true;
            }
        } else if pi < plen && pattern[pi] == b'*' {
            while pi < plen && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == plen {
                // A trailing star swallows the (non-empty) rest.
                return true;
            }
            star = Some((pi, si));
            continue;
        } else if pi < plen {
            if let Some(next) = match_token(pattern, pi, string[si], nocase) {
                pi = next;
                si += 1;
                continue;
            }
        }
        // Mismatch: let the most recent star swallow one more byte. Redis only
        // retries the rest of the pattern at positions that leave at least one
        // subject byte, hence the `< slen` bound.
        match star {
            Some((sp, ss)) if ss + 1 < slen => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// C `char` value of a byte (signed on the platforms Redis ships for).
fn cchar(b: u8) -> i32 {
    i32::from(b as i8)
}

/// C `tolower()` in the "C" locale: only ASCII upper-case letters change.
fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

fn eq_byte(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Matches the single non-star token at `pattern[pi..]` against byte `c`.
/// Returns the index of the next token on success.
fn match_token(pattern: &[u8], pi: usize, c: u8, nocase: bool) -> Option<usize> {
    let plen = pattern.len();
    match pattern[pi] {
        b'?' => Some(pi + 1),
        b'[' => {
            let mut q = pi + 1;
            let negate = q < plen && pattern[q] == b'^';
            if negate {
                q += 1;
            }
            let mut matched = false;
            loop {
                if q >= plen {
                    // Unterminated class: Redis steps back one byte so that
                    // its common "advance" lands exactly on the end.
                    q -= 1;
                    break;
                }
                let pc = pattern[q];
                if pc == b'\\' && plen - q >= 2 {
                    q += 1;
                    if pattern[q] == c {
                        matched = true;
                    }
                } else if pc == b']' {
                    break;
                } else if plen - q >= 3 && pattern[q + 1] == b'-' {
                    let mut start = cchar(pattern[q]);
                    let mut end = cchar(pattern[q + 2]);
                    let mut ch = cchar(c);
                    if start > end {
                        std::mem::swap(&mut start, &mut end);
                    }
                    if nocase {
                        start = lower(start);
                        end = lower(end);
                        ch = lower(ch);
                    }
                    q += 2;
                    if ch >= start && ch <= end {
                        matched = true;
                    }
                } else if eq_byte(pc, c, nocase) {
                    matched = true;
                }
                q += 1;
            }
            if negate {
                matched = !matched;
            }
            if matched {
                Some(q + 1)
            } else {
                None
            }
        }
        b'\\' => {
            // A trailing backslash is an ordinary byte.
            let lit = if plen - pi >= 2 { pi + 1 } else { pi };
            if eq_byte(pattern[lit], c, nocase) {
                Some(lit + 1)
            } else {
                None
            }
        }
        other => {
            if eq_byte(other, c, nocase) {
                Some(pi + 1)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("hello", "hello"));
        assert!(!m("hello", "hell"));
        assert!(!m("hell", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*", "anything"));
        assert!(m("**", "x"));
        assert!(m("a*", "a"));
        assert!(m("*a*", "a"));
        assert!(m("*max*", "maxmemory"));
        assert!(m("*max*", "proto-max-bulk-len"));
        assert!(!m("*max*", "port"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*.conf", "redis.conf"));
    }

    #[test]
    fn empty_subject_quirk() {
        // Redis: stringmatchlen("*", "") == 0.
        assert!(!m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        // Reversed range is accepted.
        assert!(m("h[b-a]llo", "hallo"));
        // Escapes inside classes.
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        // Unterminated class runs to the end of the pattern.
        assert!(m("a[bc", "ab"));
        assert!(m("a[bc", "ac"));
        assert!(!m("a[bc", "abc"));
        assert!(!m("[", "x"));
        assert!(m("[^", "x"));
        // `]` right after `[` closes an empty class (never matches).
        assert!(!m("[]a", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        // Trailing backslash is literal.
        assert!(m("a\\", "a\\"));
    }

    #[test]
    fn nocase() {
        assert!(mi("HeLLo", "hello"));
        assert!(mi("h[A-Z]llo", "hello"));
        assert!(mi("SLAVE*", "slave-read-only"));
        assert!(!m("SLAVE*", "slave-read-only"));
        // Escaped byte inside a class stays case-sensitive (Redis quirk).
        assert!(!mi("[\\A]", "a"));
        assert!(mi("\\A", "a"));
    }

    #[test]
    fn high_bytes_compare_as_signed_char() {
        // [a-\xff] becomes [-1..97] after the signed swap, so 'b' is outside.
        assert!(!glob_match(b"[a-\xff]", b"b", false));
        assert!(glob_match(b"[a-\xff]", b"\xff", false));
        assert!(glob_match(b"[\x80-\xff]", b"\x90", false));
    }

    #[test]
    fn no_exponential_blowup() {
        let subject = "a".repeat(10_000);
        let pattern = "a*".repeat(50) + "b";
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &subject));
        let pattern2 = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!m(pattern2, &subject));
        assert!(m("*a*a*a*a*a*a*a*a*a*a*a*a*", &subject));
        assert!(start.elapsed().as_secs() < 5);
    }
}
