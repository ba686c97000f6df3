//! One Lua 5.1 VM per shard thread (Redis embeds Lua 5.1): its creation
//! with the libraries and `prelude.lua`, the C functions scripts call that
//! yield to the server (`redis.call`, library calls), and compiling a
//! chunk in it. Also whether the running script chose RESP3.
//!
//! Knows nothing of commands; `scripting` runs scripts in it.

use super::{busy, functions, lib_bit, lib_cjson, lib_cmsgpack, lib_struct, sha1_hex, GENERATION};
use mlua::{Function, Lua, LuaOptions, RegistryKey, StdLib, Table};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// One shard thread's Lua VM.
pub(super) struct Vm {
    pub(super) lua: Lua,
    /// The scripts' global environment (see prelude.lua).
    pub(super) env: RegistryKey,
    /// prelude.lua's `run(co, ...)`.
    pub(super) run: RegistryKey,
    /// prelude.lua's function environment, library loader and FCALL binder.
    pub(super) fn_api: FunctionApi,
    /// Libraries run in this VM: name → (library id, callbacks by
    /// lower-case function name).
    pub(super) libraries: RefCell<HashMap<String, (u64, Callbacks)>>,
    /// Compiled scripts of this VM by SHA-1, for [`GENERATION`] `.1`.
    pub(super) compiled: RefCell<(HashMap<String, RegistryKey>, u64)>,
}

/// A library's callbacks in one VM, by lower-case function name.
pub(super) type Callbacks = HashMap<String, RegistryKey>;

/// Registry keys of what prelude.lua gives functions.
pub(super) struct FunctionApi {
    pub(super) env: RegistryKey,
    pub(super) load: RegistryKey,
    pub(super) bind: RegistryKey,
}

thread_local! {
    static VM: RefCell<Option<Rc<Vm>>> = const { RefCell::new(None) };
}

/// This thread's VM, made on first use.
pub(super) fn vm() -> Result<Rc<Vm>, String> {
    VM.with(|slot| {
        if let Some(vm) = slot.borrow().as_ref() {
            return Ok(vm.clone());
        }
        let vm = Rc::new(new_vm().map_err(|e| format!("ERR could not start Lua: {e}"))?);
        *slot.borrow_mut() = Some(vm.clone());
        Ok(vm)
    })
}

fn new_vm() -> mlua::Result<Vm> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
    // SAFETY: the debug library is what makes `unsafe_new_with` unsafe in
    // mlua (it can break Lua's invariants from Lua code). Redis loads it
    // too, and the prelude needs it for the line numbers of errors; no C
    // module loader (`package`, `io`, `os`) is loaded.
    let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
    lib_bit::register(&lua)?;
    lib_cjson::register(&lua)?;
    lib_cmsgpack::register(&lua)?;
    lib_struct::register(&lua)?;
    let (env, run, fn_api) = {
        let builtins = lua.create_table()?;
        builtins.raw_set(
            "sha1hex",
            lua.create_function(|_, s: mlua::String| Ok(sha1_hex(s.as_bytes())))?,
        )?;
        builtins.raw_set(
            "check_running",
            lua.create_function(|_, ()| Ok(busy::check_running()))?,
        )?;
        builtins.raw_set(
            "load_timed_out",
            lua.create_function(|_, ()| Ok(functions::load_timed_out()))?,
        )?;
        builtins.raw_set("log", lua.create_function(log)?)?;
        // SAFETY: as for the trampolines below: they push one number below
        // the arguments (one slot, checked) and yield them all.
        let lib_calls: [(&str, mlua::ffi::lua_CFunction); 13] = [
            ("acl_check_cmd", acl_check_trampoline),
            ("setresp", setresp_trampoline),
            ("struct_pack", struct_pack_trampoline),
            ("struct_unpack", struct_unpack_trampoline),
            ("struct_size", struct_size_trampoline),
            ("cmsgpack_pack", cmsgpack_pack_trampoline),
            ("cmsgpack_unpack", cmsgpack_unpack_trampoline),
            ("cmsgpack_unpack_one", cmsgpack_unpack_one_trampoline),
            ("cmsgpack_unpack_limit", cmsgpack_unpack_limit_trampoline),
            ("checked_sha1hex", sha1hex_trampoline),
            ("checked_log", log_trampoline),
            ("checked_set_repl", set_repl_trampoline),
            ("cjson_keep_buffer", keep_buffer_trampoline),
        ];
        for (name, f) in lib_calls {
            builtins.raw_set(name, unsafe { lua.create_c_function(f)? })?;
        }
        builtins.raw_set(
            "set_resp3",
            lua.create_function(|_, on: bool| {
                RESP3.with(|r| r.set(on));
                Ok(())
            })?,
        )?;
        builtins.raw_set(
            "caller_may_run",
            lua.create_function(|_, args: mlua::Variadic<mlua::String>| {
                let call: Vec<bytes::Bytes> = args
                    .iter()
                    .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
                    .collect();
                Ok(caller_may_run(&call))
            })?,
        )?;
        builtins.raw_set("version", crate::cmd::connection::REDIS_VERSION)?;
        builtins.raw_set(
            "version_num",
            version_num(crate::cmd::connection::REDIS_VERSION),
        )?;
        // SAFETY: the trampolines only push a boolean below the arguments
        // Lua passed (one stack slot, checked) and yield them all, which Lua
        // 5.1 allows from a C function called inside a coroutine; called
        // outside one, lua_yield raises a Lua error ("attempt to yield across
        // metamethod/C-call boundary"), which Lua catches.
        let (call, pcall, encode, decode) = unsafe {
            (
                lua.create_c_function(call_trampoline)?,
                lua.create_c_function(pcall_trampoline)?,
                lua.create_c_function(cjson_encode_trampoline)?,
                lua.create_c_function(cjson_decode_trampoline)?,
            )
        };
        builtins.raw_set("call", call)?;
        builtins.raw_set("pcall", pcall)?;
        {
            let cjson: Table = lua.globals().raw_get("cjson")?;
            cjson.raw_set("encode", encode)?;
            cjson.raw_set("decode", decode)?;
        }
        let (env, run, functions): (Table, Function, Table) = lua
            .load(include_str!("prelude.lua"))
            .set_name("=prelude")
            .call(builtins)?;
        let fenv: Table = functions.raw_get("env")?;
        let load_library: Function = functions.raw_get("load")?;
        let bind: Function = functions.raw_get("bind")?;
        (
            lua.create_registry_value(env)?,
            lua.create_registry_value(run)?,
            FunctionApi {
                env: lua.create_registry_value(fenv)?,
                load: lua.create_registry_value(load_library)?,
                bind: lua.create_registry_value(bind)?,
            },
        )
    };
    Ok(Vm {
        env,
        run,
        fn_api,
        libraries: RefCell::new(HashMap::new()),
        compiled: RefCell::new((HashMap::new(), GENERATION.load(Ordering::SeqCst))),
        lua,
    })
}

/// redis.log's writing, once prelude.lua checked the level (0 to 3) and
/// joined the message.
fn log(_: &Lua, (level, line): (i64, mlua::String)) -> mlua::Result<()> {
    let line = line.to_string_lossy();
    match level {
        0 | 1 => tracing::debug!("{line}"),
        2 => tracing::info!("{line}"),
        _ => tracing::warn!("{line}"),
    }
    Ok(())
}

/// REDIS_VERSION_NUM: 0x00MMmmpp.
fn version_num(version: &str) -> i64 {
    let mut parts = version.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (major << 16) | (minor << 8) | patch
}

/// redis.call: yields (false, command...) to the driver.
unsafe extern "C-unwind" fn call_trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    yield_call(state, false)
}

/// redis.pcall: yields (true, command...).
unsafe extern "C-unwind" fn pcall_trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    yield_call(state, true)
}

/// cjson.encode: yields (1, value), answered by prelude.lua's `run`.
unsafe extern "C-unwind" fn cjson_encode_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib(state, 1)
}

/// cjson.decode: yields (2, text).
unsafe extern "C-unwind" fn cjson_decode_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib(state, 2)
}

/// redis.acl_check_cmd: yields (3, arguments...), answered by prelude.lua's
/// `run`. A C function, so a failure names the script's line even in a
/// tail call.
unsafe extern "C-unwind" fn acl_check_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 3)
}

/// redis.setresp: yields (4, arguments...), as acl_check_cmd does.
unsafe extern "C-unwind" fn setresp_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 4)
}

/// struct.pack, struct.unpack, struct.size: yield (5|6|7, arguments...).
unsafe extern "C-unwind" fn struct_pack_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 5)
}

unsafe extern "C-unwind" fn struct_unpack_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 6)
}

unsafe extern "C-unwind" fn struct_size_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 7)
}

/// cmsgpack.pack, cmsgpack.unpack: yield (8|9, arguments...).
unsafe extern "C-unwind" fn cmsgpack_pack_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 8)
}

unsafe extern "C-unwind" fn cmsgpack_unpack_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 9)
}

/// cmsgpack.unpack_one, cmsgpack.unpack_limit: yield (10|11, arguments...).
unsafe extern "C-unwind" fn cmsgpack_unpack_one_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 10)
}

unsafe extern "C-unwind" fn cmsgpack_unpack_limit_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 11)
}

/// redis.sha1hex, redis.log, redis.set_repl: yield (12|13|14, arguments...)
/// so their errors name the script's line, as Redis's C functions' do.
unsafe extern "C-unwind" fn sha1hex_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 12)
}

unsafe extern "C-unwind" fn log_trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    yield_lib_all(state, 13)
}

unsafe extern "C-unwind" fn set_repl_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 14)
}

/// cjson.encode_keep_buffer: yields (15, arguments...).
unsafe extern "C-unwind" fn keep_buffer_trampoline(
    state: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    yield_lib_all(state, 15)
}

/// Yields (which, every argument) for a library function of prelude.lua.
unsafe fn yield_lib_all(state: *mut mlua::ffi::lua_State, which: i32) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY (for the block): `state` is the running coroutine Lua called
    // us in; one more slot is made sure of before pushing.
    unsafe {
        if ffi::lua_checkstack(state, 1) == 0 {
            return ffi::lua_yield(state, 0);
        }
        ffi::lua_pushnumber(state, f64::from(which));
        ffi::lua_insert(state, 1);
        ffi::lua_yield(state, ffi::lua_gettop(state))
    }
}

/// Yields (protected, the call's arguments) for redis.call/redis.pcall.
unsafe fn yield_call(state: *mut mlua::ffi::lua_State, protected: bool) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY (for the block): `state` is the running coroutine Lua called
    // us in; one more slot is made sure of before pushing.
    unsafe {
        if ffi::lua_checkstack(state, 1) == 0 {
            return ffi::lua_yield(state, ffi::lua_gettop(state));
        }
        ffi::lua_pushboolean(state, std::ffi::c_int::from(protected));
        ffi::lua_insert(state, 1);
        ffi::lua_yield(state, ffi::lua_gettop(state))
    }
}

/// Yields (which, first argument) for a library function of prelude.lua.
unsafe fn yield_lib(state: *mut mlua::ffi::lua_State, which: i32) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY (for the block): as in `yield_call`; the stack is cut to the
    // first argument (nil if none) before the marker goes below it.
    unsafe {
        if ffi::lua_checkstack(state, 2) == 0 {
            return ffi::lua_yield(state, 0);
        }
        ffi::lua_settop(state, 1);
        ffi::lua_pushnumber(state, f64::from(which));
        ffi::lua_insert(state, 1);
        ffi::lua_yield(state, 2)
    }
}

/// Compiles a chunk under the chunk name `source` with the globals `env`;
/// Lua's message when it does not compile.
pub(super) fn compile<'lua>(
    lua: &'lua Lua,
    code: &[u8],
    source: &str,
    env: Table<'lua>,
) -> Result<Function<'lua>, String> {
    lua.load(code)
        .set_name(source)
        .set_environment(env)
        .into_function()
        .map_err(|e| match &e {
            mlua::Error::SyntaxError { message, .. } => message.clone(),
            other => other.to_string(),
        })
}

thread_local! {
    /// Whether the script running on this thread asked for RESP3
    /// (`redis.setresp(3)`); every run starts with RESP2.
    static RESP3: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the script running on this thread speaks RESP3: its calls are
/// made and answered in it.
pub fn script_resp3() -> bool {
    RESP3.with(std::cell::Cell::get)
}

thread_local! {
    /// The ACL user of the client running the script on this thread
    /// (`None`: may run anything), for `redis.acl_check_cmd`.
    static CALLER: RefCell<Option<std::sync::Arc<crate::acl::User>>> = const { RefCell::new(None) };
}

/// Sets who runs the scripts of this thread from now on.
pub fn set_script_caller(user: Option<std::sync::Arc<crate::acl::User>>) {
    CALLER.with(|c| *c.borrow_mut() = user);
}

/// redis.acl_check_cmd's answer: whether the script's caller may run
/// `call`, or `None` for a command the server does not know.
fn caller_may_run(call: &[bytes::Bytes]) -> Option<bool> {
    let spec = crate::cmd::table::table().lookup(call.first()?)?;
    if !spec.subcommands.is_empty() && call.len() >= 2 && spec.stat_id(call) == spec.id {
        return None;
    }
    Some(CALLER.with(|c| {
        c.borrow().as_ref().is_none_or(|user| {
            user.unrestricted || user.check(&crate::cmd::acl::call_of(spec, call)).is_ok()
        })
    }))
}

/// A script run starts in RESP2.
pub(super) fn reset_script_resp() {
    RESP3.with(|r| r.set(false));
}
