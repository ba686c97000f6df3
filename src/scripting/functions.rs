//! Redis 7.0 functions: the process-wide registry of libraries (what
//! FUNCTION LOAD, DELETE, FLUSH and RESTORE change, what snapshots save and
//! loads replace) and, per VM, the callbacks a library registered.
//!
//! A library is its code alone (the `#!lua name=<lib>` line and the Lua
//! chunk): RDB files, DUMP payloads and the replication stream carry only
//! that, as in Redis. Loading runs the chunk in the loading thread's VM,
//! which checks it and tells its functions' names, flags and descriptions;
//! another shard thread runs the same code in its own VM the first time it
//! calls one of the library's functions ([`FunctionCall::start`]).
//!
//! Knows nothing of shards, clients or persistence: `cmd::function`
//! drives it, and the persistence layer hands it library codes.

use super::{vm, ScriptRun, Vm};
#[cfg(test)]
use super::{Resume, Step};
use bytes::Bytes;
use mlua::{Function, Table, Value};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Function flags, in the order Redis lists them.
pub const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];
/// The bit of the flag `name` (exactly as written), in [`FLAG_NAMES`] order.
pub fn flag_bit(name: &[u8]) -> Option<u8> {
    FLAG_NAMES
        .iter()
        .position(|f| f.as_bytes() == name)
        .map(|i| 1 << i)
}

pub const NO_WRITES: u8 = 1;
pub const ALLOW_OOM: u8 = 2;
pub const ALLOW_STALE: u8 = 4;

/// How long a library's code may run while it loads (Redis's 500 ms).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// One registered function.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: u8,
}

/// One library.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    /// The whole code, `#!` line included.
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
    /// Unique per load: a VM that ran another version runs this one anew.
    id: u64,
}

/// The libraries by name (case-sensitive) and their functions by lower-case
/// name (function names are case-insensitive).
#[derive(Default, Clone)]
struct Registry {
    libraries: BTreeMap<String, Arc<Library>>,
    functions: HashMap<String, (Arc<Library>, usize)>,
}

impl Registry {
    fn remove(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libraries.remove(name)?;
        for f in &lib.functions {
            self.functions.remove(&f.name.to_ascii_lowercase());
        }
        Some(lib)
    }

    /// Adds `lib`; Redis's error when one of its functions exists already.
    fn add(&mut self, lib: Arc<Library>) -> Result<(), String> {
        for f in &lib.functions {
            if self.functions.contains_key(&f.name.to_ascii_lowercase()) {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        for (i, f) in lib.functions.iter().enumerate() {
            self.functions
                .insert(f.name.to_ascii_lowercase(), (lib.clone(), i));
        }
        self.libraries.insert(lib.name.clone(), lib);
        Ok(())
    }
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(Registry::default()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// When the library being loaded on this thread runs out of time.
    static LOAD_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The load hook's check (prelude.lua): past the load's time limit?
pub(super) fn load_timed_out() -> bool {
    LOAD_DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() >= at))
}

/// Library names and function names: letters, digits and `_`, at least one.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

const BAD_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The `#!<engine> name=<lib>` line: the library's name, and where the
/// Lua chunk starts (at the line's `\n`, so line numbers count it).
fn parse_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some((parts, eol)) = super::first_line_words(code) else {
        return Err("ERR Invalid library metadata".into());
    };
    let engine = &parts[0][2..];
    let mut name: Option<&[u8]> = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(&part[5..]);
        } else {
            return Err(format!(
                "ERR Invalid metadata value given: {}",
                String::from_utf8_lossy(part)
            ));
        }
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_string())?;
    if !valid_name(name) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), eol))
}

/// Runs `code` in this thread's VM (under the load time limit) and records
/// the callbacks it registered there under the library version `id`; the
/// library it describes.
fn run_library(
    vm: &Vm,
    code: &Bytes,
    name: String,
    chunk_at: usize,
    id: u64,
) -> Result<Library, String> {
    let lua = &vm.lua;
    let env: Table = lua
        .registry_value(&vm.fn_api.env)
        .map_err(|e| format!("ERR {e}"))?;
    let chunk = super::compile(lua, &code[chunk_at..], "@user_function", env)
        .map_err(|text| format!("ERR Error compiling function: {text}"))?;
    let load: Function = lua
        .registry_value(&vm.fn_api.load)
        .map_err(|e| format!("ERR {e}"))?;
    LOAD_DEADLINE.with(|d| d.set(Some(Instant::now() + LOAD_TIMEOUT)));
    let ran: mlua::Result<(bool, Value)> = load.call(chunk);
    LOAD_DEADLINE.with(|d| d.set(None));
    let (ok, value) = ran.map_err(|e| format!("ERR {e}"))?;
    let registered = match value {
        Value::Table(t) if ok => t,
        Value::String(s) => {
            return Err(format!(
                "ERR Error registering functions: {}",
                s.to_string_lossy()
            ))
        }
        _ => return Err("ERR Error registering functions: ERR unknown error".into()),
    };
    let mut functions = Vec::new();
    let mut callbacks = HashMap::new();
    for entry in registered.sequence_values::<Table>() {
        let read = entry.and_then(|t| {
            let name: String = t.raw_get("name")?;
            let flags: u8 = t.raw_get("flags")?;
            let description: Option<mlua::String> = t.raw_get("description")?;
            let callback: Function = t.raw_get("callback")?;
            let info = FunctionInfo {
                name,
                description: description.map(|d| Bytes::copy_from_slice(d.as_bytes())),
                flags,
            };
            Ok((info, lua.create_registry_value(callback)?))
        });
        let (info, key) = read.map_err(|e| format!("ERR Error registering functions: ERR {e}"))?;
        callbacks.insert(info.name.to_ascii_lowercase(), key);
        functions.push(info);
    }
    if functions.is_empty() {
        return Err("ERR No functions registered".into());
    }
    {
        // Callbacks of libraries deleted since go with them (a library of
        // the same name is replaced right here).
        let registered = registry();
        let mut libraries = vm.libraries.borrow_mut();
        libraries.retain(|n, _| registered.libraries.contains_key(n));
        libraries.insert(name.clone(), (id, callbacks));
    }
    lua.expire_registry_values();
    Ok(Library {
        name,
        code: code.clone(),
        functions,
        id,
    })
}

/// Checks and runs `code` as a new library (not yet registered). `exists`
/// says whether a library of that name is registered (refused unless
/// `replace`), checked before the code runs, as Redis does.
fn build(code: &Bytes, replace: bool, registered: &Registry) -> Result<Library, String> {
    let (name, chunk_at) = parse_metadata(code)?;
    if !replace && registered.libraries.contains_key(&name) {
        return Err(format!("ERR Library '{name}' already exists"));
    }
    let vm = vm()?;
    run_library(
        &vm,
        code,
        name,
        chunk_at,
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
    )
}

/// FUNCTION LOAD [REPLACE]: the library's name, or Redis's error.
pub fn load(code: &Bytes, replace: bool) -> Result<String, String> {
    let current = registry().clone();
    let lib = Arc::new(build(code, replace, &current)?);
    let mut reg = registry();
    let mut next = reg.clone();
    next.remove(&lib.name);
    next.add(lib.clone())?;
    *reg = next;
    Ok(lib.name.clone())
}

/// FUNCTION DELETE: false when there is no such library.
pub fn delete(name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name);
    registry().remove(&name).is_some()
}

/// FUNCTION FLUSH.
pub fn flush() {
    *registry() = Registry::default();
}

/// Every library, in name order (what snapshots save, LIST shows).
pub fn libraries() -> Vec<Arc<Library>> {
    registry().libraries.values().cloned().collect()
}

/// The codes of every library, in name order.
pub fn codes() -> Vec<Bytes> {
    registry()
        .libraries
        .values()
        .map(|l| l.code.clone())
        .collect()
}

/// (libraries, functions) registered.
pub fn counts() -> (usize, usize) {
    let reg = registry();
    (reg.libraries.len(), reg.functions.len())
}

/// Bytes the registry holds: codes, names and descriptions (INFO's
/// `used_memory_functions`).
pub fn memory() -> usize {
    let reg = registry();
    reg.libraries
        .values()
        .map(|l| {
            std::mem::size_of::<Library>()
                + l.name.len()
                + l.code.len()
                + l.functions
                    .iter()
                    .map(|f| {
                        std::mem::size_of::<FunctionInfo>()
                            + 2 * f.name.len()
                            + f.description.as_ref().map_or(0, |d| d.len())
                    })
                    .sum::<usize>()
        })
        .sum()
}

/// What FUNCTION RESTORE does with libraries that exist already.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// FUNCTION RESTORE, and loads of RDB files (`Flush`): all the libraries
/// of `codes` or none of them, the current ones untouched on an error.
pub fn restore(codes: &[Bytes], policy: RestorePolicy) -> Result<(), String> {
    let mut fresh = Registry::default();
    for code in codes {
        let lib = build(code, false, &fresh)?;
        fresh.add(Arc::new(lib))?;
    }
    let mut reg = registry();
    let next = match policy {
        RestorePolicy::Flush => fresh,
        RestorePolicy::Append | RestorePolicy::Replace => {
            let mut next = reg.clone();
            for lib in fresh.libraries.values() {
                if next.libraries.contains_key(&lib.name) {
                    if policy == RestorePolicy::Append {
                        return Err(format!("ERR Library {} already exists", lib.name));
                    }
                    next.remove(&lib.name);
                }
            }
            for lib in fresh.libraries.into_values() {
                next.add(lib)?;
            }
            next
        }
    };
    *reg = next;
    Ok(())
}

/// The libraries of a loaded RDB file replace (`Flush`), join (`Append`)
/// or override (`Replace`) the registered ones; logs Redis's line when
/// one cannot be loaded.
pub fn install_loaded(codes: &[Bytes], policy: RestorePolicy) -> Result<(), String> {
    restore(codes, policy).map_err(|e| {
        tracing::warn!("Failed loading library, {e}");
        e
    })
}

/// The function `name` (any case): its library and description.
pub fn find(name: &[u8]) -> Option<(Arc<Library>, FunctionInfo)> {
    let key = String::from_utf8_lossy(name).to_ascii_lowercase();
    let reg = registry();
    let (lib, i) = reg.functions.get(&key)?;
    Some((lib.clone(), lib.functions[*i].clone()))
}

/// One FCALL's run of a function.
pub struct FunctionCall;

impl FunctionCall {
    /// Prepares the run of `function` of `lib` with its keys and args, in
    /// this thread's VM (running the library's code there first if this
    /// VM has not run this version of it).
    pub fn start(
        lib: &Arc<Library>,
        function: &FunctionInfo,
        keys: &[Bytes],
        args: &[Bytes],
    ) -> Result<ScriptRun, String> {
        let vm = vm()?;
        let current = vm
            .libraries
            .borrow()
            .get(&lib.name)
            .is_some_and(|(id, _)| *id == lib.id);
        if !current {
            let (name, chunk_at) = parse_metadata(&lib.code)?;
            run_library(&vm, &lib.code, name, chunk_at, lib.id)?;
        }
        let co = {
            let lua = &vm.lua;
            let libs = vm.libraries.borrow();
            let callback = libs
                .get(&lib.name)
                .and_then(|(_, cbs)| cbs.get(&function.name.to_ascii_lowercase()))
                .ok_or_else(|| "ERR Function not found".to_string())?;
            let setup = || -> mlua::Result<mlua::RegistryKey> {
                let callback: Function = lua.registry_value(callback)?;
                let bind: Function = lua.registry_value(&vm.fn_api.bind)?;
                let body: Function = bind.call((
                    callback,
                    super::string_table(lua, keys)?,
                    super::string_table(lua, args)?,
                ))?;
                lua.create_registry_value(lua.create_thread(body)?)
            };
            setup().map_err(|e| format!("ERR {e}"))?
        };
        Ok(ScriptRun {
            vm: vm.clone(),
            co,
            name: function.name.clone(),
            source: "@user_function",
            pending: Cell::new((false, false)),
        })
    }
}

/// Drives a run to its end, answering every call with OK (tests).
#[cfg(test)]
fn run_to_end(run: &ScriptRun) -> Step {
    let mut input = Resume::Start;
    loop {
        match run.resume(input) {
            Step::Call(_) => input = Resume::Reply(crate::resp::Reply::Ok),
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_parsed_as_redis_does() {
        let err = |code: &str| parse_metadata(code.as_bytes()).unwrap_err();
        assert_eq!(err("return 1"), "ERR Missing library metadata");
        assert_eq!(err("#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err("#! name=x\n"), "ERR Engine '' not found");
        assert_eq!(err("#!js name=x\n"), "ERR Engine 'js' not found");
        assert_eq!(err("#!lua\n"), "ERR Library name was not given");
        assert_eq!(
            err("#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            err("#!lua name=a foo=bar\n"),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(err("#!lua name=a-b\n"), BAD_NAME);
        assert_eq!(err("#!lua name=\n"), BAD_NAME);
        assert_eq!(
            parse_metadata(b"#!LUA name=\"lib_1\"\nx").unwrap(),
            ("lib_1".to_string(), 18)
        );
    }

    #[test]
    fn a_library_runs_in_a_vm_that_did_not_load_it() {
        let code = Bytes::from_static(
            b"#!lua name=unit_lib\nlocal n = 41\nredis.register_function{function_name='Unit_F', callback=function(keys, args) return n + #keys + #args end, flags={'no-writes'}, description='d'}\n",
        );
        assert_eq!(load(&code, true).unwrap(), "unit_lib");
        let (lib, f) = find(b"UNIT_f").unwrap();
        assert_eq!(f.flags, NO_WRITES);
        assert_eq!(f.description.as_deref(), Some(&b"d"[..]));
        // Another thread has its own VM: it runs the library's code first.
        let got = std::thread::spawn(move || {
            let run = FunctionCall::start(&lib, &f, &[Bytes::from_static(b"k")], &[]).unwrap();
            match run_to_end(&run) {
                Step::Done(r) => r,
                other => panic!("{other:?}"),
            }
        })
        .join()
        .unwrap();
        assert_eq!(got, crate::resp::Reply::Int(42));
        assert!(delete(b"unit_lib"));
        assert!(find(b"unit_f").is_none());
        // This VM drops the deleted library's callbacks when it runs
        // another library.
        let other = Bytes::from_static(
            b"#!lua name=unit_other\nredis.register_function('unit_g', function() return 1 end)",
        );
        assert_eq!(load(&other, true).unwrap(), "unit_other");
        let vm = vm().unwrap();
        assert!(!vm.libraries.borrow().contains_key("unit_lib"));
        assert!(vm.libraries.borrow().contains_key("unit_other"));
        assert!(delete(b"unit_other"));
    }
}
