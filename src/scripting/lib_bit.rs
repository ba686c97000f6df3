//! The `bit` library Redis scripts can use (LuaBitOp's functions on
//! 32-bit integers): tobit, tohex, bnot, band, bor, bxor, lshift, rshift,
//! arshift, rol, ror, bswap. Numbers are taken modulo 2^32 after rounding
//! to the nearest integer, and results are signed 32-bit values, as
//! LuaBitOp returns them.

use mlua::{Lua, MultiValue, Value};

/// LuaBitOp's normalisation: round to nearest (ties to even), low 32 bits.
fn tobit(x: f64) -> i32 {
    let r = x.round_ties_even();
    (r as i128).rem_euclid(1 << 32) as u32 as i32
}

fn arg(args: &MultiValue<'_>, i: usize) -> mlua::Result<i32> {
    match args.get(i) {
        Some(Value::Number(n)) => Ok(tobit(*n)),
        Some(Value::Integer(n)) => Ok(tobit(*n as f64)),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(tobit)
            .ok_or_else(|| bad(i)),
        _ => Err(bad(i)),
    }
}

fn bad(i: usize) -> mlua::Error {
    mlua::Error::RuntimeError(format!("bad argument #{} (number expected)", i + 1))
}

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let bit = lua.create_table()?;
    let fold = |name: &'static str, f: fn(i32, i32) -> i32| -> mlua::Result<()> {
        let func = lua.create_function(move |_, args: MultiValue| {
            let mut acc = arg(&args, 0)?;
            for i in 1..args.len() {
                acc = f(acc, arg(&args, i)?);
            }
            Ok(f64::from(acc))
        })?;
        bit.raw_set(name, func)
    };
    fold("band", |a, b| a & b)?;
    fold("bor", |a, b| a | b)?;
    fold("bxor", |a, b| a ^ b)?;
    let shift = |name: &'static str, f: fn(i32, u32) -> i32| -> mlua::Result<()> {
        let func = lua.create_function(move |_, args: MultiValue| {
            let (x, n) = (arg(&args, 0)?, arg(&args, 1)? as u32 & 31);
            Ok(f64::from(f(x, n)))
        })?;
        bit.raw_set(name, func)
    };
    shift("lshift", |x, n| ((x as u32) << n) as i32)?;
    shift("rshift", |x, n| ((x as u32) >> n) as i32)?;
    shift("arshift", |x, n| x >> n)?;
    shift("rol", |x, n| (x as u32).rotate_left(n) as i32)?;
    shift("ror", |x, n| (x as u32).rotate_right(n) as i32)?;
    let one = |name: &'static str, f: fn(i32) -> i32| -> mlua::Result<()> {
        let func =
            lua.create_function(move |_, args: MultiValue| Ok(f64::from(f(arg(&args, 0)?))))?;
        bit.raw_set(name, func)
    };
    one("tobit", |x| x)?;
    one("bnot", |x| !x)?;
    one("bswap", |x| x.swap_bytes())?;
    let tohex = lua.create_function(|_, args: MultiValue| {
        let x = arg(&args, 0)? as u32;
        let n = if args.len() > 1 { arg(&args, 1)? } else { 8 };
        let upper = n < 0;
        let digits = n.unsigned_abs().min(8) as usize;
        let text = if upper {
            format!("{x:08X}")
        } else {
            format!("{x:08x}")
        };
        Ok(text[8 - digits..].to_string())
    })?;
    bit.raw_set("tohex", tohex)?;
    lua.globals().raw_set("bit", bit)
}
