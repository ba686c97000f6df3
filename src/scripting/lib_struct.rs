//! The `struct` library Redis scripts can use: `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, data [, pos])` and `struct.size(fmt)`, binary
//! packing with Redis's format options and error texts.
//!
//! Formats: `>` big and `<` little endian (little by default), `![n]`
//! alignment (a power of 2, 8 by default), `x` a zero byte, `b`/`B`,
//! `h`/`H`, `l`/`L`, `T` and `i[n]`/`I[n]` integers of 1, 2, 8, 8 and `n`
//! (default 4, at most 32) bytes, `c[n]` `n` chars (whole string when
//! packing `c0`; when unpacking, the number read last), `s` a
//! zero-terminated string, `f`/`d` float and double, and spaces.
//!
//! The raw functions return `(true, results...)` or `(false, message)`;
//! prelude.lua raises the message at the script's line.

use mlua::{Lua, MultiValue, Value};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Format<'a> {
    fmt: &'a [u8],
    at: usize,
    little: bool,
    align: usize,
}

impl<'a> Format<'a> {
    fn new(fmt: &'a [u8]) -> Format<'a> {
        Format {
            fmt,
            at: 0,
            little: true,
            align: 1,
        }
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.fmt.get(self.at).copied()?;
        self.at += 1;
        Some(c)
    }

    /// The number after an option, or `default` when none follows.
    fn number(&mut self, default: usize) -> Result<usize, String> {
        if !self.fmt.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: usize = 0;
        while let Some(d) = self.fmt.get(self.at).filter(|c| c.is_ascii_digit()) {
            let digit = usize::from(d - b'0');
            if n > (i32::MAX as usize) / 10 || n * 10 > i32::MAX as usize - digit {
                return Err("integral size overflow".into());
            }
            n = n * 10 + digit;
            self.at += 1;
        }
        Ok(n)
    }

    /// The size of option `opt` (0 for options that take no room).
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let n = self.number(4)?;
                if n > MAX_INT_SIZE {
                    return Err(format!(
                        "integral size {n} is larger than limit of {MAX_INT_SIZE}"
                    ));
                }
                n
            }
            _ => 0,
        })
    }

    /// Padding before an item of `size` bytes at offset `len`.
    fn padding(&self, len: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size.wrapping_sub(len & size.wrapping_sub(1))) & size.wrapping_sub(1)
    }

    /// Endianness, alignment and spaces; any other option is invalid.
    fn control(&mut self, opt: u8, func: &str) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if a == 0 || a & (a - 1) != 0 {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                self.align = a;
            }
            other => {
                return Err(arg_error(
                    1,
                    func,
                    &format!("invalid format option '{}'", other as char),
                ))
            }
        }
        Ok(())
    }
}

fn arg_error(n: usize, func: &str, msg: &str) -> String {
    format!("bad argument #{n} to '{func}' ({msg})")
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(v) => v.type_name(),
    }
}

fn string_arg<'lua>(
    lua: &'lua Lua,
    args: &[Value<'lua>],
    n: usize,
    func: &str,
    missing: &str,
) -> Result<Vec<u8>, String> {
    let v = args.get(n - 1);
    match v {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| arg_error(n, func, "string expected, got number")),
        None => Err(arg_error(
            n,
            func,
            &format!("string expected, got {missing}"),
        )),
        other => Err(arg_error(
            n,
            func,
            &format!("string expected, got {}", type_name(other)),
        )),
    }
}

fn number_arg<'lua>(
    lua: &'lua Lua,
    args: &[Value<'lua>],
    n: usize,
    func: &str,
) -> Result<f64, String> {
    let v = args.get(n - 1).cloned().unwrap_or(Value::Nil);
    let name = v.type_name();
    lua.coerce_number(v)
        .ok()
        .flatten()
        .ok_or_else(|| arg_error(n, func, &format!("number expected, got {name}")))
}

/// The integer `n` as C converts it: negative through a signed integer,
/// the rest unsigned.
fn to_bits(n: f64) -> u64 {
    if n < 0.0 {
        n as i64 as u64
    } else {
        n as u64
    }
}

fn pack<'lua>(lua: &'lua Lua, args: &[Value<'lua>]) -> Result<Vec<u8>, String> {
    let fmt = string_arg(lua, args, 1, "pack", "no value")?;
    let mut f = Format::new(&fmt);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        let pad = f.padding(out.len(), opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let mut value = to_bits(number_arg(lua, args, arg, "pack")?);
                arg += 1;
                let mut bytes = vec![0u8; size];
                for i in 0..size {
                    let at = if f.little { i } else { size - 1 - i };
                    bytes[at] = (value & 0xff) as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = number_arg(lua, args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'd' => {
                let v = number_arg(lua, args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string_arg(lua, args, arg, "pack", "nil")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(other, "pack")?,
        }
    }
    Ok(out)
}

fn unpack<'lua>(lua: &'lua Lua, args: &[Value<'lua>]) -> Result<Vec<Value<'lua>>, String> {
    let fmt = string_arg(lua, args, 1, "unpack", "no value")?;
    let data = string_arg(lua, args, 2, "unpack", "no value")?;
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(_) => number_arg(lua, args, 3, "unpack")? as i64,
    };
    if start == 0 {
        return Err(arg_error(3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = (start - 1) as usize;
    let too_short = || arg_error(2, "unpack", "data string too short");
    let fits = |pos: usize, size: usize| size <= data.len() && pos <= data.len() - size;
    let mut f = Format::new(&fmt);
    let mut out: Vec<Value> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos = pos.wrapping_add(f.padding(pos, opt, size));
        if !fits(pos, size) {
            return Err(too_short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + size];
                let mut v: u64 = 0;
                for i in 0..size {
                    let b = if f.little {
                        bytes[size - 1 - i]
                    } else {
                        bytes[i]
                    };
                    v = (v << 8) | u64::from(b);
                }
                let signed = opt.is_ascii_lowercase();
                let n = if signed {
                    if size > 0 && size < 8 {
                        let mask = !0u64 << (size * 8 - 1);
                        if v & mask != 0 {
                            v |= mask;
                        }
                    }
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                let v = if f.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(v)));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                let v = if f.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let Some(Value::Number(n)) = out.last() else {
                        return Err("format 'c0' needs a previous size".into());
                    };
                    size = *n as usize;
                    out.pop();
                    if !fits(pos, size) {
                        return Err(too_short());
                    }
                }
                out.push(Value::String(
                    lua.create_string(&data[pos..pos + size])
                        .map_err(|e| e.to_string())?,
                ));
            }
            b's' => {
                let Some(end) = memchr::memchr(0, &data[pos..]) else {
                    return Err("unfinished string in data".into());
                };
                out.push(Value::String(
                    lua.create_string(&data[pos..pos + end])
                        .map_err(|e| e.to_string())?,
                ));
                size = end + 1;
            }
            other => f.control(other, "unpack")?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(out)
}

fn size<'lua>(lua: &'lua Lua, args: &[Value<'lua>]) -> Result<usize, String> {
    let fmt = string_arg(lua, args, 1, "size", "no value")?;
    let mut f = Format::new(&fmt);
    let mut pos: usize = 0;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos += f.padding(pos, opt, size);
        match opt {
            b's' => return Err(arg_error(1, "size", "option 's' has no fixed size")),
            b'c' if size == 0 => return Err(arg_error(1, "size", "option 'c0' has no fixed size")),
            // Alignment counts; other options (even unknown ones) take
            // their size, as Redis's struct.size checks no more.
            b'!' | b'>' | b'<' => f.control(opt, "size")?,
            _ => {}
        }
        pos += size;
    }
    Ok(pos)
}

/// `(true, results...)` or `(false, message)` for prelude.lua.
fn outcome<'lua>(
    lua: &'lua Lua,
    r: Result<Vec<Value<'lua>>, String>,
) -> mlua::Result<MultiValue<'lua>> {
    Ok(MultiValue::from_vec(match r {
        Ok(mut values) => {
            values.insert(0, Value::Boolean(true));
            values
        }
        Err(msg) => vec![
            Value::Boolean(false),
            Value::String(lua.create_string(&msg)?),
        ],
    }))
}

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let lib = lua.create_table()?;
    lib.raw_set(
        "raw_pack",
        lua.create_function(|lua, args: MultiValue| {
            let args = args.into_vec();
            let packed = pack(lua, &args).and_then(|b| {
                lua.create_string(&b)
                    .map(|s| vec![Value::String(s)])
                    .map_err(|e| e.to_string())
            });
            outcome(lua, packed)
        })?,
    )?;
    lib.raw_set(
        "raw_unpack",
        lua.create_function(|lua, args: MultiValue| {
            let args = args.into_vec();
            outcome(lua, unpack(lua, &args))
        })?,
    )?;
    lib.raw_set(
        "raw_size",
        lua.create_function(|lua, args: MultiValue| {
            let args = args.into_vec();
            let n = size(lua, &args).map(|n| vec![Value::Number(n as f64)]);
            outcome(lua, n)
        })?,
    )?;
    lua.globals().raw_set("struct", lib)
}
