//! Replies into Lua values and Lua values into replies, as Redis converts
//! them for scripts.
//!
//! Into Lua, by the protocol the script chose (`redis.setresp`): in RESP2
//! integers become numbers, bulk strings strings, nulls `false`, arrays
//! tables, status replies `{ok=...}` and errors `{err=...}`; RESP3 adds
//! maps `{map={k=v}}`, sets `{set={m=true}}`, doubles `{double=n}`,
//! booleans, big numbers `{big_number='...'}`, verbatim strings
//! `{verbatim_string={format=..., string=...}}`, and nulls become nil.
//!
//! Back, numbers are truncated to integers, `true` is 1 and `false` null
//! (RESP2 scripts) or booleans (RESP3 scripts), nil is null, `{err=...}`
//! and `{ok=...}` are error and status replies, the RESP3 tables above
//! their types (downgraded for RESP2 clients by the encoder), other
//! tables arrays up to their first nil.
//!
//! A reply is encoded in the script's protocol and read back, so every
//! reply shape the commands produce converts the way such a client would
//! see it.

use crate::resp::{encode, Protocol, Reply};
use bytes::{Bytes, BytesMut};
use mlua::{Lua, Table, Value};

pub fn reply_to_lua<'lua>(lua: &'lua Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value<'lua>> {
    let mut buf = BytesMut::new();
    let proto = if resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    encode(reply, proto, &mut buf);
    let mut at = 0;
    parse(lua, &buf, &mut at)
}

fn line<'a>(buf: &'a [u8], at: &mut usize) -> mlua::Result<&'a [u8]> {
    let rest = &buf[*at..];
    let end = memchr::memmem::find(rest, b"\r\n")
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *at += end + 2;
    Ok(&rest[..end])
}

fn number(text: &[u8]) -> mlua::Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| mlua::Error::RuntimeError("bad number in reply".into()))
}

/// A table with one field.
fn wrapped<'lua>(lua: &'lua Lua, key: &str, value: Value<'lua>) -> mlua::Result<Value<'lua>> {
    let t = lua.create_table()?;
    t.raw_set(key, value)?;
    Ok(Value::Table(t))
}

/// The `n` bytes of a bulk or verbatim string at `at`.
fn body<'a>(buf: &'a [u8], at: &mut usize, n: i64) -> mlua::Result<&'a [u8]> {
    let n = n as usize;
    let s = buf
        .get(*at..*at + n)
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *at += n + 2;
    Ok(s)
}

fn parse<'lua>(lua: &'lua Lua, buf: &[u8], at: &mut usize) -> mlua::Result<Value<'lua>> {
    let kind = *buf
        .get(*at)
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *at += 1;
    let text = line(buf, at)?;
    Ok(match kind {
        b'+' => wrapped(lua, "ok", Value::String(lua.create_string(text)?))?,
        b'-' => wrapped(lua, "err", Value::String(lua.create_string(text)?))?,
        b':' => Value::Number(number(text)? as f64),
        b'$' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            Value::String(lua.create_string(body(buf, at, n)?)?)
        }
        b'*' | b'>' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table_with_capacity(n as usize, 0)?;
            for i in 0..n {
                t.raw_set(i + 1, parse(lua, buf, at)?)?;
            }
            Value::Table(t)
        }
        // RESP3, for scripts that asked for it.
        b'_' => Value::Nil,
        b'#' => Value::Boolean(text == b"t"),
        b',' => {
            let v: f64 = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| mlua::Error::RuntimeError("bad double in reply".into()))?;
            wrapped(lua, "double", Value::Number(v))?
        }
        b'(' => wrapped(lua, "big_number", Value::String(lua.create_string(text)?))?,
        b'=' => {
            let s = body(buf, at, number(text)?)?;
            let (format, string) = if s.len() >= 4 {
                (&s[..3], &s[4..])
            } else {
                (&b"txt"[..], s)
            };
            let t = lua.create_table()?;
            t.raw_set("format", lua.create_string(format)?)?;
            t.raw_set("string", lua.create_string(string)?)?;
            wrapped(lua, "verbatim_string", Value::Table(t))?
        }
        b'%' => {
            let n = number(text)?;
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, buf, at)?;
                let v = parse(lua, buf, at)?;
                t.raw_set(k, v)?;
            }
            wrapped(lua, "map", Value::Table(t))?
        }
        b'~' => {
            let n = number(text)?;
            let t = lua.create_table()?;
            for _ in 0..n {
                let m = parse(lua, buf, at)?;
                t.raw_set(m, true)?;
            }
            wrapped(lua, "set", Value::Table(t))?
        }
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

/// The reply for a script's result; `resp3` when the script called
/// `redis.setresp(3)` (booleans stay booleans).
pub fn lua_to_reply(v: Value<'_>, resp3: bool) -> Reply {
    match v {
        Value::Boolean(b) if resp3 => Reply::Bool(b),
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(n) => Reply::Int(n),
        Value::Number(n) => Reply::Int(c_long_long(n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(s.as_bytes())),
        Value::Table(t) => table_to_reply(t, resp3),
        _ => Reply::Nil,
    }
}

/// C's `(long long)` conversion as Redis's x86-64 build does it: toward
/// zero, and the "integer indefinite" value (i64::MIN) for NaN and what is
/// out of range (Rust's `as` would saturate instead).
fn c_long_long(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn one_line(s: &mlua::String<'_>) -> Bytes {
    Bytes::from(String::from_utf8_lossy(s.as_bytes()).replace(['\r', '\n'], " "))
}

fn table_to_reply(t: Table<'_>, resp3: bool) -> Reply {
    let field = |name: &str| t.raw_get::<_, Value>(name).unwrap_or(Value::Nil);
    // Redis writes the text verbatim after the error marker, so an `err`
    // that starts with '-' keeps it (one '-' more for the marker).
    if let Value::String(e) = field("err") {
        let mut text = BytesMut::from(&b"-"[..]);
        text.extend_from_slice(&one_line(&e));
        return Reply::Error(text.freeze());
    }
    if let Value::String(s) = field("ok") {
        return Reply::Simple(one_line(&s));
    }
    match field("double") {
        Value::Number(n) => return Reply::Double(n),
        Value::Integer(n) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        return Reply::BigNumber(one_line(&s));
    }
    if let Value::Table(map) = field("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| (lua_to_reply(k, resp3), lua_to_reply(v, resp3)))
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(set) = field("set") {
        let members = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| lua_to_reply(k, resp3))
            .collect();
        return Reply::Set(members);
    }
    if let Value::Table(v) = field("verbatim_string") {
        let (format, string) = (
            v.raw_get::<_, Value>("format"),
            v.raw_get::<_, Value>("string"),
        );
        if let (Ok(Value::String(f)), Ok(Value::String(s))) = (format, string) {
            if let Ok(format) = <[u8; 3]>::try_from(f.as_bytes()) {
                return Reply::VerbatimAs(format, Bytes::copy_from_slice(s.as_bytes()));
            }
        }
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<_, Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_reply(v, resp3)),
        }
    }
    Reply::Array(items)
}

#[cfg(test)]
mod tests {
    use super::c_long_long;

    #[test]
    fn numbers_convert_as_redis_x86_build_does() {
        assert_eq!(c_long_long(3.99), 3);
        assert_eq!(c_long_long(-3.99), -3);
        assert_eq!(
            c_long_long(9_223_372_036_854_774_784.0),
            9_223_372_036_854_774_784
        );
        for out_of_range in [
            2f64.powi(63),
            -(2f64.powi(63)) - 5000.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(c_long_long(out_of_range), i64::MIN);
        }
        assert_eq!(c_long_long(-(2f64.powi(63))), i64::MIN);
    }
}
