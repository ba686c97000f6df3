//! Replies into Lua values and Lua values into replies, as Redis converts
//! them for scripts (RESP2): integers become numbers, bulk strings
//! strings, nulls `false`, arrays tables, status replies `{ok=...}` and
//! errors `{err=...}`; back, numbers are truncated to integers, `true` is
//! 1, `false` and nil are null, `{err=...}` and `{ok=...}` are error and
//! status replies, other tables arrays up to their first nil.
//!
//! A reply is encoded as RESP2 and read back, so every reply shape the
//! commands produce converts the way a RESP2 client would see it.

use crate::resp::{encode, Protocol, Reply};
use bytes::{Bytes, BytesMut};
use mlua::{Lua, Table, Value};

pub fn reply_to_lua<'lua>(lua: &'lua Lua, reply: &Reply) -> mlua::Result<Value<'lua>> {
    let mut buf = BytesMut::new();
    encode(reply, Protocol::Resp2, &mut buf);
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

fn parse<'lua>(lua: &'lua Lua, buf: &[u8], at: &mut usize) -> mlua::Result<Value<'lua>> {
    let kind = *buf
        .get(*at)
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *at += 1;
    let text = line(buf, at)?;
    Ok(match kind {
        b'+' => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(text)?)?;
            Value::Table(t)
        }
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(text)?)?;
            Value::Table(t)
        }
        b':' => Value::Number(number(text)? as f64),
        b'$' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let n = n as usize;
            let s = buf
                .get(*at..*at + n)
                .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
            *at += n + 2;
            Value::String(lua.create_string(s)?)
        }
        b'*' => {
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
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

pub fn lua_to_reply(v: Value<'_>) -> Reply {
    match v {
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(n) => Reply::Int(n),
        // C's (long long) conversion truncates toward zero.
        Value::Number(n) => Reply::Int(n as i64),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(s.as_bytes())),
        Value::Table(t) => table_to_reply(t),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: Table<'_>) -> Reply {
    if let Ok(Value::String(e)) = t.raw_get::<_, Value>("err") {
        let text = String::from_utf8_lossy(e.as_bytes()).replace(['\r', '\n'], " ");
        return Reply::Error(Bytes::from(text));
    }
    if let Ok(Value::String(s)) = t.raw_get::<_, Value>("ok") {
        let text = String::from_utf8_lossy(s.as_bytes()).replace(['\r', '\n'], " ");
        return Reply::Simple(Bytes::from(text));
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<_, Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_reply(v)),
        }
    }
    Reply::Array(items)
}
