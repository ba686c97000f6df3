//! The `cmsgpack` library Redis scripts use (lua-cmsgpack):
//! `cmsgpack.pack(...)` encodes its arguments one after the other,
//! `cmsgpack.unpack(s)` returns every object of `s` (`unpack_one` and
//! `unpack_limit` some of them, from an offset). Integral numbers take
//! the smallest integer form, other numbers float32 when exact, else
//! float64; strings are str8/16/32 (fixstr under 32 bytes); a table whose
//! keys are exactly 1..n is an array (an empty one too), any other a map in
//! Lua's key order; tables nested deeper than 16 and values msgpack cannot
//! hold (functions...) are nil. Errors go back to `prelude.lua`'s wrappers.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && n == (n as i64) as f64 {
        pack_int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(len: usize, small: (u8, usize), mid: u8, big: u8, out: &mut Vec<u8>) {
    if len < small.1 {
        out.push(small.0 | len as u8);
    } else if len <= 0xffff {
        out.push(mid);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(big);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack_str(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// The array length of `t` if its keys are exactly 1..n.
fn array_len(t: &Table) -> Option<usize> {
    let (mut max, mut count) = (0usize, 0usize);
    for (k, _) in t.clone().pairs::<Value, Value>().flatten() {
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return None,
        };
        if n <= 0.0 || n.fract() != 0.0 {
            return None;
        }
        max = max.max(n as usize);
        count += 1;
    }
    (max == count).then_some(max)
}

fn pack(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => pack_str(s.as_bytes(), out),
        Value::Table(t) if level < MAX_NESTING => match array_len(t) {
            Some(len) => {
                pack_len(len, (0x90, 16), 0xdc, 0xdd, out);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    pack(&item, level + 1, out);
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> =
                    t.clone().pairs::<Value, Value>().flatten().collect();
                pack_len(pairs.len(), (0x80, 16), 0xde, 0xdf, out);
                for (k, v) in &pairs {
                    pack(k, level + 1, out);
                    pack(v, level + 1, out);
                }
            }
        },
        _ => out.push(0xc0),
    }
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.s.len());
        let Some(end) = end else {
            return Err("Missing bytes in input.".into());
        };
        let bytes = &self.s[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value<'lua>(&mut self, lua: &'lua Lua) -> Result<Value<'lua>, String> {
        let err = |e: mlua::Error| e.to_string();
        let c = self.take(1)?[0];
        let int = |v: i64| Value::Number(v as f64);
        Ok(match c {
            0x00..=0x7f => int(i64::from(c)),
            0xe0..=0xff => int(i64::from(c as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => int(self.uint(1)? as i64),
            0xcd => int(self.uint(2)? as i64),
            0xce => int(self.uint(4)? as i64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => int(self.uint(8)? as i64),
            0xca => Value::Number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb | 0xc4 | 0xc5 | 0xc6 => {
                let len = match c {
                    0xa0..=0xbf => usize::from(c & 0x1f),
                    0xd9 | 0xc4 => self.uint(1)? as usize,
                    0xda | 0xc5 => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                Value::String(lua.create_string(self.take(len)?).map_err(err)?)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let len = match c {
                    0x90..=0x9f => usize::from(c & 0x0f),
                    0xdc => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                let t = lua.create_table().map_err(err)?;
                for i in 1..=len {
                    let v = self.value(lua)?;
                    t.raw_set(i, v).map_err(err)?;
                }
                Value::Table(t)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let len = match c {
                    0x80..=0x8f => usize::from(c & 0x0f),
                    0xde => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                let t = lua.create_table().map_err(err)?;
                for _ in 0..len {
                    let k = self.value(lua)?;
                    let v = self.value(lua)?;
                    if !matches!(k, Value::Nil) {
                        t.raw_set(k, v).map_err(err)?;
                    }
                }
                Value::Table(t)
            }
            _ => return Err("Bad data format in input.".into()),
        })
    }
}

/// Which of the unpack functions: `unpack(s)` every object; `unpack_one(s
/// [, offset])` and `unpack_limit(s, limit [, offset])` at most one or
/// `limit` objects from byte `offset`, preceded by the offset to go on
/// from (-1 once the input is used up).
#[derive(Clone, Copy, PartialEq)]
enum Unpack {
    All,
    One,
    Limit,
}

/// (false, text) for a failed library call.
fn failed<'lua>(lua: &'lua Lua, text: &str) -> mlua::Result<MultiValue<'lua>> {
    let msg = lua.create_string(text)?;
    Ok(MultiValue::from_vec(vec![
        Value::Boolean(false),
        Value::String(msg),
    ]))
}

/// An integer argument as luaL_checkinteger/luaL_optinteger take it (a
/// number or numeric string, truncated), or the error it raises.
fn int_arg(
    lua: &Lua,
    v: Option<&Value>,
    n: usize,
    name: &str,
    default: Option<i64>,
) -> Result<i64, String> {
    if let (None | Some(Value::Nil), Some(default)) = (v, default) {
        return Ok(default);
    }
    let number = v.and_then(|v| lua.coerce_number(v.clone()).ok().flatten());
    match number {
        Some(x) => Ok(x as i64),
        None => {
            let got = v.map_or("no value", |v| v.type_name());
            Err(format!(
                "bad argument #{n} to '{name}' (number expected, got {got})"
            ))
        }
    }
}

fn unpack<'lua>(
    lua: &'lua Lua,
    args: &MultiValue<'lua>,
    mode: Unpack,
) -> mlua::Result<MultiValue<'lua>> {
    let name = match mode {
        Unpack::All => "unpack",
        Unpack::One => "unpack_one",
        Unpack::Limit => "unpack_limit",
    };
    // luaL_checklstring: a string, or a number as its text.
    let s = match args.iter().next() {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())?
            .unwrap_or(lua.create_string("")?),
        other => {
            let got = other.map_or("no value", |v| v.type_name());
            return failed(
                lua,
                &format!("bad argument #1 to '{name}' (string expected, got {got})"),
            );
        }
    };
    let (limit, offset) = match mode {
        Unpack::All => (0, 0),
        Unpack::One => match int_arg(lua, args.get(1), 2, name, Some(0)) {
            Ok(offset) => (1, offset),
            Err(e) => return failed(lua, &e),
        },
        Unpack::Limit => {
            let limit = int_arg(lua, args.get(1), 2, name, None);
            let offset = int_arg(lua, args.get(2), 3, name, Some(0));
            match (limit, offset) {
                (Ok(l), Ok(o)) => (l, o),
                (Err(e), _) | (_, Err(e)) => return failed(lua, &e),
            }
        }
    };
    let bytes = s.as_bytes();
    // lua-cmsgpack's own wording, which prints the input length where it
    // says limit.
    if offset < 0 || limit < 0 {
        return failed(
            lua,
            &format!(
                "Invalid request to unpack with offset of {offset} and limit of {}.",
                bytes.len()
            ),
        );
    }
    if offset as usize > bytes.len() {
        return failed(
            lua,
            &format!(
                "Start offset {offset} greater than input length {}.",
                bytes.len()
            ),
        );
    }
    // A limit and offset both 0 (unpack, or unpack_limit(s, 0)) means all
    // objects and no offset in front.
    let all = limit == 0 && offset == 0;
    let limit = if all { usize::MAX } else { limit as usize };
    let mut r = Reader {
        s: bytes,
        at: offset as usize,
    };
    let mut out = vec![Value::Boolean(true)];
    if !all {
        out.push(Value::Nil);
    }
    let mut count = 0;
    while r.at < r.s.len() && count < limit {
        match r.value(lua) {
            Ok(v) => out.push(v),
            Err(e) => return failed(lua, &e),
        }
        count += 1;
    }
    if !all {
        let next = if r.at == r.s.len() { -1 } else { r.at as i64 };
        out[1] = Value::Number(next as f64);
    }
    Ok(MultiValue::from_vec(out))
}

/// Adds the raw functions the prelude answers cmsgpack.pack and the unpack
/// functions with: each returns (true, results...) or (false, error
/// text).
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let cmsgpack = lua.create_table()?;
    let pack_fn = lua.create_function(|lua, args: MultiValue| {
        if args.is_empty() {
            let msg =
                lua.create_string("bad argument #0 to 'pack' (MessagePack pack needs input.)")?;
            return Ok(MultiValue::from_vec(vec![
                Value::Boolean(false),
                Value::String(msg),
            ]));
        }
        let mut out = Vec::new();
        for v in args.iter() {
            pack(v, 0, &mut out);
        }
        let s = lua.create_string(&out)?;
        Ok(MultiValue::from_vec(vec![
            Value::Boolean(true),
            Value::String(s),
        ]))
    })?;
    let unpack_fn = lua.create_function(|lua, args: MultiValue| unpack(lua, &args, Unpack::All))?;
    let unpack_one_fn =
        lua.create_function(|lua, args: MultiValue| unpack(lua, &args, Unpack::One))?;
    let unpack_limit_fn =
        lua.create_function(|lua, args: MultiValue| unpack(lua, &args, Unpack::Limit))?;
    cmsgpack.raw_set("raw_pack", pack_fn)?;
    cmsgpack.raw_set("raw_unpack", unpack_fn)?;
    cmsgpack.raw_set("raw_unpack_one", unpack_one_fn)?;
    cmsgpack.raw_set("raw_unpack_limit", unpack_limit_fn)?;
    lua.globals().raw_set("cmsgpack", cmsgpack)
}
