//! Lua scripting for EVAL: one Lua 5.1 VM per shard thread (Redis embeds
//! Lua 5.1), the process-wide script cache (SHA-1 → body, what EVALSHA
//! and SCRIPT LOAD/EXISTS/FLUSH see from any shard), and the stepping of
//! one script run.
//!
//! A script runs as a Lua coroutine in the environment `prelude.lua`
//! builds. When it calls `redis.call`, the coroutine yields the command
//! ([`Step::Call`]); the caller runs it through the normal command path,
//! which may await other shards, and resumes the script with the reply.
//! So no command needs a synchronous form for scripts, and the script
//! itself never blocks an executor thread. Replies cross the boundary as
//! RESP2 would carry them ([`convert`]).
//!
//! Knows nothing of shards or clients; `cmd::eval` drives it.

mod convert;
pub mod functions;
mod lib_bit;
mod lib_cjson;
mod lib_cmsgpack;
mod lib_struct;

use crate::resp::Reply;
use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

// ------------------------------------------------------ a busy script --
//
// A script holds every shard, so other clients wait for it. Past
// `busy-reply-threshold` (`lua-time-limit`) it is "busy": commands from
// other connections answer BUSY, and SCRIPT KILL (from a connection of
// another thread) stops it unless it already wrote. The script's thread
// checks every 100,000 Lua instructions, from a count hook.

/// Unix ms the running script started at (0: none), its time limit, and
/// whether it wrote, was reported busy, was asked to stop.
static RUNNING_SINCE: AtomicU64 = AtomicU64::new(0);
static LIMIT_MS: AtomicU64 = AtomicU64::new(5000);
static WROTE: AtomicBool = AtomicBool::new(false);
static BUSY: AtomicBool = AtomicBool::new(false);
static KILL: AtomicBool = AtomicBool::new(false);

/// The function running (FCALL): its name and the command that called it,
/// for FUNCTION STATS; `None` while an EVAL script runs.
fn running_function() -> MutexGuard<'static, Option<(String, Vec<Bytes>)>> {
    static RUNNING: Mutex<Option<(String, Vec<Bytes>)>> = Mutex::new(None);
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A script starts running (under its hold: one at a time): an EVAL
/// script, or the function `function` called by that command.
pub fn script_started(limit_ms: u64, function: Option<(String, Vec<Bytes>)>) {
    *running_function() = function;
    LIMIT_MS.store(limit_ms, Ordering::SeqCst);
    WROTE.store(false, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
    KILL.store(false, Ordering::SeqCst);
    RUNNING_SINCE.store(crate::node::unix_ms().max(1), Ordering::SeqCst);
}

/// The running script ended.
pub fn script_ended() {
    RUNNING_SINCE.store(0, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
    KILL.store(false, Ordering::SeqCst);
    *running_function() = None;
}

/// The running script ran a write command: SCRIPT KILL may not stop it.
pub fn script_wrote() {
    WROTE.store(true, Ordering::SeqCst);
}

/// Whether a script runs past its time limit (other commands get BUSY).
pub fn busy() -> bool {
    BUSY.load(Ordering::Relaxed)
}

/// What other clients' commands get while a script is busy.
pub fn busy_error() -> &'static str {
    if running_function().is_some() {
        BUSY_FUNCTION
    } else {
        BUSY_EVAL
    }
}

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// What runs, for FUNCTION STATS.
pub enum Running {
    Nothing,
    /// An EVAL script.
    Script,
    /// A function: its name, the calling command, how long it has run (ms).
    Function(String, Vec<Bytes>, u64),
}

/// What runs now (FUNCTION STATS).
pub fn running() -> Running {
    let since = RUNNING_SINCE.load(Ordering::SeqCst);
    if since == 0 {
        return Running::Nothing;
    }
    match running_function().as_ref() {
        Some((name, cmd)) => Running::Function(
            name.clone(),
            cmd.clone(),
            crate::node::unix_ms().saturating_sub(since),
        ),
        None => Running::Script,
    }
}

/// Why SCRIPT KILL or FUNCTION KILL cannot stop the running script.
pub enum KillRefused {
    NotBusy,
    Unkillable,
    /// SCRIPT KILL of a function, FUNCTION KILL of an EVAL script: the
    /// BUSY error naming the right command.
    OtherKind(&'static str),
}

/// SCRIPT KILL (`function` false) or FUNCTION KILL: asks the busy script
/// to stop.
pub fn request_kill(function: bool) -> Result<(), KillRefused> {
    if !busy() {
        return Err(KillRefused::NotBusy);
    }
    let is_function = running_function().is_some();
    if is_function != function {
        return Err(KillRefused::OtherKind(busy_error()));
    }
    if WROTE.load(Ordering::SeqCst) {
        return Err(KillRefused::Unkillable);
    }
    KILL.store(true, Ordering::SeqCst);
    Ok(())
}

/// SHUTDOWN: a busy script stops even if it wrote.
pub fn abort_for_shutdown() {
    if busy() {
        KILL.store(true, Ordering::SeqCst);
    }
}

/// The count hook's check, on the script's thread: true when the script
/// must stop.
fn check_running() -> bool {
    let since = RUNNING_SINCE.load(Ordering::Relaxed);
    if since == 0 {
        return false;
    }
    let elapsed = crate::node::unix_ms().saturating_sub(since);
    if !BUSY.load(Ordering::Relaxed) && elapsed >= LIMIT_MS.load(Ordering::Relaxed) {
        BUSY.store(true, Ordering::SeqCst);
        tracing::warn!(
            "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the SCRIPT KILL command."
        );
    }
    KILL.load(Ordering::SeqCst)
}

/// Scripts by SHA-1 (lower-case hex), shared by every shard.
fn cache() -> &'static Mutex<HashMap<String, Bytes>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Bumped by SCRIPT FLUSH: each VM drops its compiled functions.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The SHA-1 of `body` in lower-case hex (redis.sha1hex, script names).
pub fn sha1_hex(body: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(body);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The flags of a script's `#!lua flags=<flag>,...` line (Redis 7.0) and
/// where its Lua code starts (at the line's `\n`, so line numbers count
/// it); `None` for a script without such a line. Redis's errors for a bad
/// line.
pub fn shebang(body: &[u8]) -> Result<Option<(u8, usize)>, String> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let parts = memchr::memchr(b'\n', body)
        .and_then(|eol| Some((crate::config::split_args(&body[..eol])?, eol)));
    let Some((parts, eol)) = parts.filter(|(p, _)| !p.is_empty()) else {
        return Err("ERR Invalid script shebang".into());
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            lossy(&parts[0])
        ));
    }
    let mut flags = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {}", lossy(part)));
        };
        if list.is_empty() {
            continue;
        }
        for flag in list.split(|c| *c == b',') {
            flags |= functions::flag_bit(flag)
                .ok_or_else(|| format!("ERR Unexpected flag in script shebang: {}", lossy(flag)))?;
        }
    }
    Ok(Some((flags, eol)))
}

/// The body cached under `sha` (any case).
pub fn cached(sha: &[u8]) -> Option<Bytes> {
    let key = String::from_utf8_lossy(sha).to_ascii_lowercase();
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned()
}

/// Scripts in the cache and the bytes of their bodies (INFO memory).
pub fn cache_stats() -> (usize, usize) {
    let cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    let bytes = cache.iter().map(|(sha, body)| sha.len() + body.len()).sum();
    (cache.len(), bytes)
}

/// Empties the cache (SCRIPT FLUSH).
pub fn flush() {
    cache().lock().unwrap_or_else(|e| e.into_inner()).clear();
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// One shard thread's Lua VM.
struct Vm {
    lua: Lua,
    /// The scripts' global environment (see prelude.lua).
    env: RegistryKey,
    /// prelude.lua's `run(co, ...)`.
    run: RegistryKey,
    /// prelude.lua's function environment, library loader and FCALL binder.
    fn_api: FunctionApi,
    /// Libraries run in this VM: name → (library id, callbacks by
    /// lower-case function name).
    libraries: RefCell<HashMap<String, (u64, Callbacks)>>,
    /// Compiled scripts of this VM by SHA-1, for [`GENERATION`] `.1`.
    compiled: RefCell<(HashMap<String, RegistryKey>, u64)>,
}

/// A library's callbacks in one VM, by lower-case function name.
type Callbacks = HashMap<String, RegistryKey>;

/// Registry keys of what prelude.lua gives functions.
struct FunctionApi {
    env: RegistryKey,
    load: RegistryKey,
    bind: RegistryKey,
}

thread_local! {
    static VM: RefCell<Option<Rc<Vm>>> = const { RefCell::new(None) };
}

fn vm() -> Result<Rc<Vm>, String> {
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
            lua.create_function(|_, ()| Ok(check_running()))?,
        )?;
        builtins.raw_set(
            "load_timed_out",
            lua.create_function(|_, ()| Ok(functions::load_timed_out()))?,
        )?;
        builtins.raw_set("log", lua.create_function(log)?)?;
        // SAFETY: as for the trampolines below: they push one number below
        // the arguments (one slot, checked) and yield them all.
        let lib_calls: [(&str, mlua::ffi::lua_CFunction); 5] = [
            ("acl_check_cmd", acl_check_trampoline),
            ("setresp", setresp_trampoline),
            ("struct_pack", struct_pack_trampoline),
            ("struct_unpack", struct_unpack_trampoline),
            ("struct_size", struct_size_trampoline),
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
            "command_known",
            lua.create_function(|_, name: mlua::String| {
                Ok(crate::cmd::table::table().lookup(name.as_bytes()).is_some())
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

/// redis.log(level, message...).
fn log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    let mut it = args.into_iter();
    let level = match it.next() {
        Some(Value::Number(n)) => n as i64,
        Some(Value::Integer(n)) => n,
        _ => {
            return Err(mlua::Error::RuntimeError(
                "First argument must be a number (log level).".into(),
            ))
        }
    };
    let text: Vec<String> = it
        .map(|v| match v {
            Value::String(s) => s.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    let line = text.join(" ");
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
fn compile<'lua>(
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

/// Compiles `body` (named by `sha`) in this thread's VM, caching it; the
/// error reply Redis gives for a script that does not compile.
fn compiled<'a>(vm: &'a Vm, sha: &str, body: &[u8]) -> Result<Function<'a>, String> {
    let generation = GENERATION.load(Ordering::SeqCst);
    let mut cache = vm.compiled.borrow_mut();
    if cache.1 != generation {
        cache.0.clear();
        cache.1 = generation;
    }
    if let Some(key) = cache.0.get(sha) {
        return vm.lua.registry_value(key).map_err(|e| e.to_string());
    }
    let env: Table = vm.lua.registry_value(&vm.env).map_err(|e| e.to_string())?;
    let code = match shebang(body)? {
        Some((_, chunk_at)) => &body[chunk_at..],
        None => body,
    };
    let f = compile(&vm.lua, code, "@user_script", env)
        .map_err(|text| format!("ERR Error compiling script (new function): {text}"))?;
    let key = vm
        .lua
        .create_registry_value(f.clone())
        .map_err(|e| e.to_string())?;
    cache.0.insert(sha.to_string(), key);
    Ok(f)
}

/// Compiles `body` and adds it to the cache (EVAL, SCRIPT LOAD); its
/// SHA-1, or the compile error.
pub fn load(body: &Bytes) -> Result<String, String> {
    let sha = sha1_hex(body);
    let vm = vm()?;
    compiled(&vm, &sha, body)?;
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sha.clone(), body.clone());
    Ok(sha)
}

/// A Lua array of `items` (KEYS, ARGV, a function's keys and args).
fn string_table<'lua>(lua: &'lua Lua, items: &[Bytes]) -> mlua::Result<Table<'lua>> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
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

/// Where a script run stopped.
#[derive(Debug)]
pub enum Step {
    /// It called this command (redis.call or redis.pcall).
    Call(Vec<Bytes>),
    /// It called a command with arguments that are not strings or numbers.
    BadCall(&'static str),
    /// It returned: the reply.
    Done(Reply),
    /// It failed: the error text, with Redis's "script: <sha>, on
    /// @user_script:<line>." when the line is known.
    Failed(String),
}

/// What a suspended script gets back from its call.
pub enum Resume {
    Start,
    Reply(Reply),
}

/// One run of a script (its coroutine).
pub struct ScriptRun {
    vm: Rc<Vm>,
    co: RegistryKey,
    /// What errors name: the script's SHA-1 or the function's name.
    name: String,
    /// Where its code comes from: `@user_script` or `@user_function`.
    source: &'static str,
    /// The call being answered: (made through a coroutine-based pcall,
    /// made with redis.pcall).
    pending: std::cell::Cell<(bool, bool)>,
}

impl ScriptRun {
    /// Prepares a run of the cached-or-given script with KEYS and ARGV.
    pub fn start(
        sha: &str,
        body: &Bytes,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> Result<ScriptRun, String> {
        let vm = vm()?;
        let co = {
            let f = compiled(&vm, sha, body)?;
            let lua = &vm.lua;
            let globals = lua.globals();
            let setup = || -> mlua::Result<RegistryKey> {
                globals.raw_set("KEYS", string_table(lua, keys)?)?;
                globals.raw_set("ARGV", string_table(lua, argv)?)?;
                let co = lua.create_thread(f)?;
                lua.create_registry_value(co)
            };
            setup().map_err(|e| format!("ERR {e}"))?
        };
        Ok(ScriptRun {
            vm,
            co,
            name: sha.to_string(),
            source: "@user_script",
            pending: std::cell::Cell::new((false, false)),
        })
    }

    /// Runs the script until its next call, its end or its failure.
    pub fn resume(&self, input: Resume) -> Step {
        match self.step(input) {
            Ok(step) => step,
            Err(e) => Step::Failed(format!("ERR {e}")),
        }
    }

    fn step(&self, input: Resume) -> mlua::Result<Step> {
        let lua = &self.vm.lua;
        let run: Function = lua.registry_value(&self.vm.run)?;
        let co: mlua::Thread = lua.registry_value(&self.co)?;
        let mut args = vec![Value::Thread(co)];
        if let Resume::Start = input {
            RESP3.with(|r| r.set(false));
        }
        if let Resume::Reply(reply) = input {
            let (nested, protected) = self.pending.get();
            // redis.pcall gets an error as its value; redis.call raises it.
            let ok = protected || !matches!(reply, Reply::Error(_));
            args.push(Value::Boolean(true));
            args.push(Value::Boolean(nested));
            args.push(Value::Boolean(ok));
            args.push(convert::reply_to_lua(lua, &reply, script_resp3())?);
        }
        let out: MultiValue = run.call(MultiValue::from_vec(args))?;
        let mut out = out.into_vec().into_iter();
        let what = match out.next() {
            Some(Value::String(s)) => s.to_str().unwrap_or("").to_string(),
            _ => String::new(),
        };
        Ok(match what.as_str() {
            "done" => Step::Done(convert::lua_to_reply(
                out.next().unwrap_or(Value::Nil),
                script_resp3(),
            )),
            "error" => {
                let msg = match out.next() {
                    Some(Value::String(s)) => s.to_string_lossy().into_owned(),
                    _ => "ERR unknown error".into(),
                };
                // Newlines would break the error line, as Redis replaces them.
                let msg = msg.replace(['\r', '\n'], " ");
                match out.next() {
                    Some(Value::Number(line)) => Step::Failed(format!(
                        "{msg} script: {}, on {}:{}.",
                        self.name, self.source, line as i64
                    )),
                    Some(Value::Integer(line)) => Step::Failed(format!(
                        "{msg} script: {}, on {}:{line}.",
                        self.name, self.source
                    )),
                    _ => Step::Failed(msg),
                }
            }
            _ => {
                // 'call', nested, protected, and the command's arguments.
                let flag = |v: Option<Value>| matches!(v, Some(Value::Boolean(true)));
                let nested = flag(out.next());
                let protected = flag(out.next());
                self.pending.set((nested, protected));
                let mut call = Vec::new();
                for v in out {
                    match v {
                        Value::String(s) => call.push(Bytes::copy_from_slice(s.as_bytes())),
                        Value::Number(_) | Value::Integer(_) => match lua.coerce_string(v)? {
                            Some(s) => call.push(Bytes::copy_from_slice(s.as_bytes())),
                            None => return Ok(Step::BadCall(BAD_ARGS)),
                        },
                        _ => return Ok(Step::BadCall(BAD_ARGS)),
                    }
                }
                if call.is_empty() {
                    return Ok(Step::BadCall(
                        "ERR Please specify at least one argument for this redis lib call",
                    ));
                }
                Step::Call(call)
            }
        })
    }
}

const BAD_ARGS: &str = "ERR Lua redis lib command arguments must be strings or integers";

#[cfg(test)]
mod tests {
    use super::*;

    fn run_to_end(body: &str, replies: &[Reply]) -> Step {
        let body = Bytes::from(body.to_string());
        let sha = load(&body).unwrap();
        let run = ScriptRun::start(&sha, &body, &[Bytes::from_static(b"k")], &[]).unwrap();
        let mut input = Resume::Start;
        let mut replies = replies.iter();
        loop {
            match run.resume(input) {
                Step::Call(_) => {
                    input = Resume::Reply(replies.next().cloned().unwrap_or(Reply::Nil))
                }
                other => return other,
            }
        }
    }

    #[test]
    fn scripts_return_values_as_redis_converts_them() {
        let done = |body: &str| match run_to_end(body, &[]) {
            Step::Done(r) => r,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(done("return 3.99"), Reply::Int(3));
        assert_eq!(done("return true"), Reply::Int(1));
        assert_eq!(done("return false"), Reply::Nil);
        assert_eq!(
            done("return KEYS[1]"),
            Reply::Bulk(Bytes::from_static(b"k"))
        );
        assert_eq!(
            done("return {1, 'a', {2}, nil, 5}"),
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Bulk(Bytes::from_static(b"a")),
                Reply::Array(vec![Reply::Int(2)]),
            ])
        );
        assert_eq!(
            done("return redis.status_reply('FINE')"),
            Reply::Simple(Bytes::from_static(b"FINE"))
        );
        assert_eq!(done("return bit.band(7, 3)"), Reply::Int(3));
    }

    #[test]
    fn calls_yield_and_errors_name_the_line() {
        match run_to_end(
            "local v = redis.call('get', KEYS[1])\nreturn v",
            &[Reply::Int(5)],
        ) {
            Step::Done(r) => assert_eq!(r, Reply::Int(5)),
            other => panic!("{other:?}"),
        }
        match run_to_end(
            "\nlocal v = redis.call('incr', 'x')\nreturn v",
            &[Reply::error("ERR not an integer")],
        ) {
            Step::Failed(text) => {
                assert!(text.starts_with("ERR not an integer script: "), "{text}")
            }
            other => panic!("{other:?}"),
        }
        match run_to_end(
            "local ok, e = pcall(redis.call, 'x')\nreturn e",
            &[Reply::error("ERR nope")],
        ) {
            Step::Done(r) => assert_eq!(r, Reply::error("ERR nope")),
            other => panic!("{other:?}"),
        }
        match run_to_end("return x", &[]) {
            Step::Failed(text) => assert!(
                text.contains("Script attempted to access nonexistent global variable 'x'")
                    && text.ends_with("on @user_script:1."),
                "{text}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
