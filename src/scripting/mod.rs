//! Lua scripting for EVAL and functions: the process-wide script cache
//! (SHA-1 → body, what EVALSHA and SCRIPT LOAD/EXISTS/FLUSH see from any
//! shard), a script's `#!lua` flags, and the stepping of one script run.
//! Each shard thread has its own Lua 5.1 VM ([`vm`]); the running
//! script's busy state is in [`busy`], function libraries in
//! [`functions`].
//!
//! A script runs as a Lua coroutine in the environment `prelude.lua`
//! builds. When it calls `redis.call`, the coroutine yields the command
//! ([`Step::Call`]); the caller runs it through the normal command path,
//! which may await other shards, and resumes the script with the reply.
//! So no command needs a synchronous form for scripts, and the script
//! itself never blocks an executor thread. Replies cross the boundary in
//! the protocol the script chose ([`convert`]).
//!
//! Knows nothing of shards or clients; `cmd::eval` and `cmd::function`
//! drive it.

mod busy;
mod convert;
pub mod functions;
mod lib_bit;
mod lib_cjson;
mod lib_cmsgpack;
mod lib_struct;
mod vm;

pub use busy::{
    abort_for_shutdown, busy, busy_error, request_kill, running, script_ended, script_started,
    script_wrote, KillRefused, Running, BUSY_EVAL, BUSY_FUNCTION,
};
pub use vm::{script_resp3, set_script_caller};

use crate::resp::Reply;
use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, RegistryKey, Table, Value};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use vm::{compile, vm, Vm};

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

/// The words of a `#!` line (split and unquoted as Redis splits it) and
/// where the line ends; `None` without a `\n` or words, or with unbalanced
/// quotes. Scripts' and libraries' first lines.
fn first_line_words(code: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let eol = memchr::memchr(b'\n', code)?;
    let words = crate::config::split_args(&code[..eol])?;
    (!words.is_empty()).then_some((words, eol))
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
    let Some((parts, eol)) = first_line_words(body) else {
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
            vm::reset_script_resp();
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
            // Redis 7.0's pcall gives redis.call's error as its text.
            Step::Done(r) => assert_eq!(r, Reply::Bulk(bytes::Bytes::from_static(b"ERR nope"))),
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
