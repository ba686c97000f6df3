//! The `cjson` library Redis scripts use (lua-cjson 2.1 with Redis's
//! settings): `cjson.encode`, `cjson.decode` and `cjson.null`. Numbers are
//! written as `%.14g`, `/` is escaped, an empty table is `{}`, a table
//! with only positive integer keys is an array (null-filled, refused when
//! excessively sparse), nesting stops at 1000; decoding reports lua-cjson's
//! token names and 1-based positions. Errors go back to `prelude.lua`,
//! which raises them on the script's line.

use mlua::{LightUserData, Lua, Table, Value};

const MAX_DEPTH: usize = 1000;

/// `%.14g`, as lua-cjson (and Lua's tostring) format numbers.
pub fn fmt_g14(v: f64) -> String {
    crate::resp::format_g(v, 14)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(fmt_g14(n).as_bytes());
    Ok(())
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => encode_number(*n as f64, out)?,
        Value::Number(n) => encode_number(*n, out)?,
        Value::String(s) => encode_string(s.as_bytes(), out),
        Value::Table(t) => encode_table(t, depth + 1, out)?,
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            ))
        }
    }
    Ok(())
}

/// The array length of `t` if all its keys are positive integers (0 for
/// an empty table), `None` otherwise; refused when excessively sparse.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if max > items * 2 && max > 10 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(t: &Table, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    match array_length(t)? {
        Some(len) if len > 0 => {
            out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    out.push(b',');
                }
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                encode(&v, depth, out)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => encode_string(s.as_bytes(), out),
                    Value::Integer(n) => encode_string(fmt_g14(*n as f64).as_bytes(), out),
                    Value::Number(n) => encode_string(fmt_g14(*n).as_bytes(), out),
                    other => {
                        return Err(format!(
                            "Cannot serialise {}: table key must be a number or string",
                            type_name(other)
                        ))
                    }
                }
                out.push(b':');
                encode(&v, depth, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

// ------------------------------------------------------------- decoding --

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(what) => what,
        }
    }
}

struct Decoder<'a, 'lua> {
    lua: &'lua Lua,
    s: &'a [u8],
    at: usize,
    /// The last token: kind, 1-based start, and its value.
    tok: Tok,
    start: usize,
    value: Value<'lua>,
}

impl<'a, 'lua> Decoder<'a, 'lua> {
    fn next(&mut self) -> Result<(), String> {
        while self.at < self.s.len() && matches!(self.s[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        self.start = self.at + 1;
        let Some(&c) = self.s.get(self.at) else {
            self.tok = Tok::End;
            return Ok(());
        };
        let lit = |d: &mut Self, word: &[u8], tok: Tok, v: Value<'lua>| {
            if d.s[d.at..].starts_with(word) {
                d.at += word.len();
                d.tok = tok;
                d.value = v;
            } else {
                d.tok = Tok::Error("invalid token");
            }
        };
        match c {
            b'{' | b'}' | b'[' | b']' | b':' | b',' => {
                self.at += 1;
                self.tok = match c {
                    b'{' => Tok::ObjBegin,
                    b'}' => Tok::ObjEnd,
                    b'[' => Tok::ArrBegin,
                    b']' => Tok::ArrEnd,
                    b':' => Tok::Colon,
                    _ => Tok::Comma,
                };
            }
            b'"' => self.string()?,
            b't' => lit(self, b"true", Tok::Bool, Value::Boolean(true)),
            b'f' => lit(self, b"false", Tok::Bool, Value::Boolean(false)),
            b'n' => lit(
                self,
                b"null",
                Tok::Null,
                Value::LightUserData(LightUserData(std::ptr::null_mut())),
            ),
            b'-' | b'0'..=b'9' => {
                let len = self.s[self.at..]
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                let text = std::str::from_utf8(&self.s[self.at..self.at + len]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) if !text.starts_with("-0x") => {
                        self.at += len;
                        self.tok = Tok::Num;
                        self.value = Value::Number(n);
                    }
                    _ => self.tok = Tok::Error("invalid number"),
                }
            }
            _ => self.tok = Tok::Error("invalid token"),
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        let mut i = self.at + 1;
        loop {
            let Some(&c) = self.s.get(i) else {
                self.tok = Tok::Error("unexpected end of string");
                return Ok(());
            };
            i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(i) else {
                        self.tok = Tok::Error("unexpected end of string");
                        return Ok(());
                    };
                    i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = |at: usize| -> Option<u32> {
                                let h = self.s.get(at..at + 4)?;
                                u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                            };
                            let Some(mut cp) = hex(i) else {
                                self.tok = Tok::Error("invalid unicode escape code");
                                return Ok(());
                            };
                            i += 4;
                            if (0xD800..0xDC00).contains(&cp) {
                                match (self.s.get(i..i + 2), hex(i + 2)) {
                                    (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                        i += 6;
                                    }
                                    _ => {
                                        self.tok = Tok::Error("invalid unicode escape code");
                                        return Ok(());
                                    }
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            // lua-cjson points at the backslash.
                            self.start = i - 1;
                            self.tok = Tok::Error("invalid escape code");
                            return Ok(());
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        self.at = i;
        self.tok = Tok::Str;
        self.value = Value::String(self.lua.create_string(&out).map_err(|e| e.to_string())?);
        Ok(())
    }

    fn fail(&self, expected: &str) -> String {
        format!(
            "Expected {expected} but found {} at character {}",
            self.tok.name(),
            self.start
        )
    }

    /// The value starting at the current token.
    fn value(&mut self, depth: usize) -> Result<Value<'lua>, String> {
        match self.tok {
            Tok::Str | Tok::Num | Tok::Bool | Tok::Null => {
                Ok(std::mem::replace(&mut self.value, Value::Nil))
            }
            Tok::ObjBegin | Tok::ArrBegin if depth >= MAX_DEPTH => Err(format!(
                "Found too many nested data structures ({}) at character {}",
                depth + 1,
                self.start
            )),
            Tok::ObjBegin => {
                let t = self.lua.create_table().map_err(|e| e.to_string())?;
                self.next()?;
                if self.tok == Tok::ObjEnd {
                    return Ok(Value::Table(t));
                }
                loop {
                    if self.tok != Tok::Str {
                        return Err(self.fail("object key string"));
                    }
                    let key = std::mem::replace(&mut self.value, Value::Nil);
                    self.next()?;
                    if self.tok != Tok::Colon {
                        return Err(self.fail("colon"));
                    }
                    self.next()?;
                    let v = self.value(depth + 1)?;
                    t.raw_set(key, v).map_err(|e| e.to_string())?;
                    self.next()?;
                    match self.tok {
                        Tok::ObjEnd => return Ok(Value::Table(t)),
                        Tok::Comma => self.next()?,
                        _ => return Err(self.fail("comma or object end")),
                    }
                }
            }
            Tok::ArrBegin => {
                let t = self.lua.create_table().map_err(|e| e.to_string())?;
                self.next()?;
                if self.tok == Tok::ArrEnd {
                    return Ok(Value::Table(t));
                }
                for i in 1.. {
                    let v = self.value(depth + 1)?;
                    t.raw_set(i, v).map_err(|e| e.to_string())?;
                    self.next()?;
                    match self.tok {
                        Tok::ArrEnd => return Ok(Value::Table(t)),
                        Tok::Comma => self.next()?,
                        _ => return Err(self.fail("comma or array end")),
                    }
                }
                Ok(Value::Table(t))
            }
            _ => Err(self.fail("value")),
        }
    }
}

fn decode<'lua>(lua: &'lua Lua, s: &[u8]) -> Result<Value<'lua>, String> {
    let mut d = Decoder {
        lua,
        s,
        at: 0,
        tok: Tok::End,
        start: 1,
        value: Value::Nil,
    };
    d.next()?;
    let v = d.value(0)?;
    d.next()?;
    if d.tok != Tok::End {
        return Err(d.fail("the end"));
    }
    Ok(v)
}

/// Adds `cjson.null` and the raw functions the prelude wraps: each returns
/// (true, result) or (false, error text).
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let cjson = lua.create_table()?;
    cjson.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    let enc = lua.create_function(|lua, v: Value| {
        let mut out = Vec::new();
        Ok(match encode(&v, 0, &mut out) {
            Ok(()) => (true, Value::String(lua.create_string(&out)?)),
            Err(e) => (false, Value::String(lua.create_string(&e)?)),
        })
    })?;
    let dec = lua.create_function(|lua, v: Value| {
        let text = match &v {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(_) | Value::Number(_) => lua
                .coerce_string(v.clone())?
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default(),
            other => {
                let e = format!(
                    "bad argument #1 to 'decode' (string expected, got {})",
                    type_name(other)
                );
                return Ok((false, Value::String(lua.create_string(&e)?)));
            }
        };
        Ok(match decode(lua, &text) {
            Ok(v) => (true, v),
            Err(e) => (false, Value::String(lua.create_string(&e)?)),
        })
    })?;
    cjson.raw_set("raw_encode", enc)?;
    cjson.raw_set("raw_decode", dec)?;
    lua.globals().raw_set("cjson", cjson)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_as_percent_14g() {
        for (v, s) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (1000.0, "1000"),
            (123456789012345678.0, "1.2345678901235e+17"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (10.0 / 3.0, "3.3333333333333"),
        ] {
            assert_eq!(fmt_g14(v), s);
        }
    }
}
