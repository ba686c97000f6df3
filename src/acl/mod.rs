//! Access control lists (Redis 6/7 ACLs): the process-wide user registry,
//! the ACL log, and the ACL file.
//!
//! Users are immutable values ([`rules::User`]); a change builds a new one
//! and swaps it in under the registry's lock, and bumps a generation
//! number. A connection keeps an `Arc` of its user and the generation it
//! was read at, so its per-command check is one atomic load unless users
//! changed. This module knows the command table only through
//! [`catalog`]; it never touches connections or shards (killing the
//! clients of a deleted user is the command layer's job).

pub mod catalog;
pub mod facts;
pub mod rules;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;

pub use rules::{Call, Denied, User};

/// Every user, by name.
pub struct Registry {
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    /// Bumped by every change of users.
    generation: AtomicU64,
    /// The `default` user is off or has passwords: new connections start
    /// unauthenticated.
    default_needs_auth: AtomicBool,
    log: Mutex<VecDeque<LogEntry>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut users = BTreeMap::new();
        users.insert(
            Bytes::from_static(b"default"),
            Arc::new(User::default_user()),
        );
        Registry {
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            default_needs_auth: AtomicBool::new(false),
            log: Mutex::new(VecDeque::new()),
        }
    })
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a change: connections re-read their user.
    fn changed(&self, users: &BTreeMap<Bytes, Arc<User>>) {
        let default = users.get(&b"default"[..]);
        let needs = default.is_none_or(|u| !u.nopass || !u.enabled);
        self.default_needs_auth.store(needs, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get(b"default")
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    /// Whether a new connection must AUTH first (Redis's authRequired).
    pub fn default_needs_auth(&self) -> bool {
        self.default_needs_auth.load(Ordering::Relaxed)
    }

    /// Whether the default user takes any password (protected mode then
    /// refuses remote clients).
    pub fn default_is_nopass(&self) -> bool {
        self.default_user().nopass
    }

    /// The user a name/password pair opens, if any.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let user = self.get(name)?;
        (user.enabled && user.password_matches(password)).then_some(user)
    }

    /// ACL SETUSER: creates or changes a user, all rules or none. Returns
    /// the user before and after.
    pub fn set_user(
        &self,
        name: &[u8],
        rules: &[Bytes],
        allchannels: bool,
    ) -> Result<(Option<Arc<User>>, Arc<User>), String> {
        let mut users = self.write();
        let old = users.get(name).cloned();
        let mut user = match &old {
            Some(u) => (**u).clone(),
            None => User::new(name, allchannels),
        };
        user.apply_all(rules, allchannels)?;
        let user = Arc::new(user);
        users.insert(Bytes::copy_from_slice(name), user.clone());
        self.changed(&users);
        Ok((old, user))
    }

    /// ACL DELUSER: removes users (never `default`); returns the names
    /// that existed.
    pub fn delete(&self, names: &[Bytes]) -> Vec<Bytes> {
        let mut users = self.write();
        let gone: Vec<Bytes> = names
            .iter()
            .filter(|n| &n[..] != b"default" && users.remove(&n[..]).is_some())
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.changed(&users);
        }
        gone
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<(Bytes, Arc<User>)> {
        self.read()
            .iter()
            .map(|(n, u)| (n.clone(), u.clone()))
            .collect()
    }

    /// Replaces every user at once (ACL LOAD, start-up). A set without
    /// `default` gets a fresh one.
    pub fn replace_all(&self, mut new: BTreeMap<Bytes, Arc<User>>) {
        new.entry(Bytes::from_static(b"default"))
            .or_insert_with(|| Arc::new(User::default_user()));
        let mut users = self.write();
        *users = new;
        self.changed(&users);
    }

    /// `requirepass`: the default user's only password, or none (nopass).
    pub fn set_requirepass(&self, password: Option<&[u8]>) {
        let mut users = self.write();
        let mut user = users
            .get(&b"default"[..])
            .map_or_else(User::default_user, |u| (**u).clone());
        let _ = user.apply(b"resetpass", false);
        match password {
            Some(p) => {
                let mut rule = b">".to_vec();
                rule.extend_from_slice(p);
                let _ = user.apply(&rule, false);
            }
            None => {
                let _ = user.apply(b"nopass", false);
            }
        }
        users.insert(Bytes::from_static(b"default"), Arc::new(user));
        self.changed(&users);
    }
}

/// Sets up users at start: `requirepass`, then the config file's `user`
/// lines or the ACL file (not both, as in Redis). The error is logged
/// before Redis exits.
pub fn load_at_startup(config: &crate::config::Config) -> Result<(), String> {
    let registry = registry();
    registry.set_requirepass(config.requirepass().as_deref());
    let allchannels = pubsub_default_all(config);
    let aclfile = config.get("aclfile").unwrap_or_default();
    let lines = config.users();
    if !aclfile.is_empty() && !lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !lines.is_empty() {
        let mut users: BTreeMap<Bytes, Arc<User>> = registry
            .users()
            .into_iter()
            .filter(|(n, _)| &n[..] == b"default")
            .collect();
        for line in lines {
            let name = &line[0];
            if rules::has_spaces(name) {
                return Err("Spaces not allowed in ACL usernames".into());
            }
            let rules: Vec<Bytes> = line[1..]
                .iter()
                .map(|r| Bytes::copy_from_slice(r))
                .collect();
            let mut user = if &name[..] == b"default" {
                let mut u = User::default_user();
                let _ = u.apply(b"reset", allchannels);
                u
            } else {
                User::new(name, allchannels)
            };
            let merged = rules::merge_selectors(&rules)
                .map_err(|_| "Unmatched parenthesis in acl selector".to_string())?;
            for rule in &merged {
                user.apply(rule, allchannels).map_err(|e| {
                    format!(
                        "Error loading ACL rule '{}' for the user named '{}': {}",
                        String::from_utf8_lossy(rule),
                        String::from_utf8_lossy(name),
                        e.text()
                    )
                })?;
            }
            if !user.enabled {
                tracing::info!("The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.", String::from_utf8_lossy(name));
            }
            users.insert(Bytes::copy_from_slice(name), Arc::new(user));
        }
        registry.replace_all(users);
    }
    if !aclfile.is_empty() {
        let users = load_file(&aclfile, allchannels)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        registry.replace_all(users);
    }
    Ok(())
}

/// `acl-pubsub-default allchannels`: new users may use every channel.
pub fn pubsub_default_all(config: &crate::config::Config) -> bool {
    config
        .get("acl-pubsub-default")
        .is_some_and(|v| v == "allchannels")
}

/// Reads an ACL file (Redis's ACLLoadFromFile): every line `user <name>
/// <rules...>` or blank. All errors are collected; any error loads nothing.
pub fn load_file(path: &str, allchannels: bool) -> Result<BTreeMap<Bytes, Arc<User>>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            crate::config::strerror(&e)
        )
    })?;
    let mut users: BTreeMap<Bytes, Arc<User>> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() < 2 || words[0] != b"user" {
            errors.push_str(&format!(
                "{path}:{linenum} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = words[1];
        if rules::has_spaces(name) {
            errors.push_str(&format!(
                "'{path}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let rules: Vec<Bytes> = words[2..]
            .iter()
            .map(|w| Bytes::copy_from_slice(w))
            .collect();
        let Ok(merged) = rules::merge_selectors(&rules) else {
            errors.push_str(&format!(
                "{path}:{linenum}: Unmatched parenthesis in selector definition."
            ));
            continue;
        };
        let mut user = User::new(name, allchannels);
        let mut syntax_error = false;
        for rule in &merged {
            if let Err(e) = user.apply(trim(rule), allchannels) {
                if e == rules::RuleError::Unknown {
                    errors.push_str(&format!(
                        "{path}:{linenum}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(rule),
                        e.text()
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{path}:{linenum}: {}. ", e.text()));
                    syntax_error = true;
                }
            }
        }
        users.insert(Bytes::copy_from_slice(name), Arc::new(user));
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Writes every user to `path` (ACL SAVE): a temporary file, fsynced,
/// renamed over the old one.
pub fn save_file(path: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for (name, user) in registry().users() {
        text.push_str("user ");
        text.push_str(&String::from_utf8_lossy(&name));
        text.push(' ');
        text.push_str(&user.describe());
        text.push('\n');
    }
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::node::unix_ms()
    );
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let dir = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Why an ACL log entry was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the refused call came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// One ACL LOG entry; alike refusals within a minute are counted in one.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Reason,
    pub context: Context,
    pub object: Bytes,
    pub username: Bytes,
    /// Unix ms of the last refusal counted here.
    pub updated_ms: u64,
    /// CLIENT LIST line of the last client refused.
    pub client_info: String,
}

/// Alike entries are merged within this many ms.
const LOG_GROUPING_MS: u64 = 60_000;

impl Registry {
    /// Records a refusal (Redis's addACLLogEntry), keeping at most
    /// `max_len` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn log(
        &self,
        reason: Reason,
        context: Context,
        object: Bytes,
        username: Bytes,
        client_info: String,
        max_len: usize,
    ) {
        let now = crate::node::unix_ms();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let alike = log.iter().take(10).position(|e| {
            e.reason == reason
                && e.context == context
                && now.abs_diff(e.updated_ms) <= LOG_GROUPING_MS
                && e.object == object
                && e.username == username
        });
        if let Some(at) = alike {
            let mut e = log.remove(at).expect("position is in range");
            e.count += 1;
            e.updated_ms = now;
            e.client_info = client_info;
            log.push_front(e);
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            updated_ms: now,
            client_info,
        });
        log.truncate(max_len);
    }

    /// The newest `count` entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().take(count).cloned().collect()
    }

    pub fn reset_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// `acllog-max-len` lowered at run time.
    pub fn trim_log(&self, max_len: usize) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .truncate(max_len);
    }
}
