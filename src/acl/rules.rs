//! ACL users and their rules, as values: parsing Redis's rule language
//! (`on`, `>pass`, `~keys`, `&channels`, `+cmd`, `-@cat`, `(selectors)`...),
//! describing a user back in that language (ACL LIST, ACL GETUSER, the
//! ACL file), and checking a call against a user. Pure data: no registry,
//! no clients, no I/O.

use bytes::Bytes;

use super::catalog::{catalog, category_bit, Catalog, CATEGORIES};
use super::facts;
use crate::util::glob::glob_match;

/// Why a rule was refused (Redis's texts, after "Error in ACL SETUSER
/// modifier '<rule>': ").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    Unknown,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern and what it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

/// What one selector allows: commands, keys, channels. A user has a root
/// selector and any number of `(...)` ones; a call passes if one allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// One bit per catalog id.
    allowed: Vec<u64>,
    /// Every command is allowed (cleared by any removal).
    all_commands: bool,
    /// Built from `+@all`: commands added later would be allowed too, so
    /// the description starts with `+@all` rather than `-@all`.
    future: bool,
    /// `+select|0`: first arguments allowed for an otherwise denied command.
    first_args: Vec<(usize, Vec<Bytes>)>,
    allkeys: bool,
    patterns: Vec<KeyPattern>,
    allchannels: bool,
    channels: Vec<Bytes>,
}

/// Why a call was refused, and at which argument (0: the command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key,
    Channel,
}

impl Selector {
    fn new(allchannels: bool) -> Selector {
        Selector {
            allowed: vec![0; catalog().len().div_ceil(64)],
            all_commands: false,
            future: false,
            first_args: Vec::new(),
            allkeys: false,
            patterns: Vec::new(),
            allchannels,
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Allows or denies a command; a container takes its subcommands along.
    fn change(&mut self, cat: &Catalog, id: usize, on: bool) {
        self.set_bit(id, on);
        self.first_args.retain(|(i, _)| *i != id);
        for sub in cat.subcommands[id].clone() {
            self.set_bit(sub, on);
        }
    }

    fn change_category(&mut self, cat: &Catalog, bit: u32, on: bool) {
        for id in cat.walk() {
            if cat.categories[id] & bit != 0 {
                self.change(cat, id, on);
            }
        }
    }

    fn set_all(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.all_commands = on;
        self.future = on;
        self.first_args.clear();
    }

    /// Applies one rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let cat = catalog();
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.patterns.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeysAfterAll);
            }
            let (mut read, mut write) = (op[0] == b'~', op[0] == b'~');
            let mut at = 1;
            if op[0] == b'%' {
                loop {
                    match op.get(at).map(u8::to_ascii_uppercase) {
                        Some(b'R') if !read => read = true,
                        Some(b'W') if !write => write = true,
                        Some(b'~') if read || write => {
                            at += 1;
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                    at += 1;
                }
            }
            let pattern = &op[at..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
                Some(p) => {
                    p.read |= read;
                    p.write |= write;
                }
                None => self.patterns.push(KeyPattern {
                    pattern: Bytes::copy_from_slice(pattern),
                    read,
                    write,
                }),
            }
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(Bytes::copy_from_slice(pattern));
            }
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let bit = category_bit(&op[2..]).ok_or(RuleError::Unknown)?;
            self.change_category(cat, bit, op[0] == b'+');
        } else if op[0] == b'+' {
            let name = &op[1..];
            match name.iter().rposition(|&b| b == b'|') {
                None => {
                    let id = cat.lookup(name).ok_or(RuleError::Unknown)?;
                    self.change(cat, id, true);
                }
                Some(bar) => {
                    let id = cat.lookup(&name[..bar]).ok_or(RuleError::Unknown)?;
                    if cat.parent[id].is_some() {
                        return Err(RuleError::SubcommandFirstArg);
                    }
                    let first = &name[bar + 1..];
                    if first.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !cat.subcommands[id].is_empty() {
                        let sub = cat.lookup(name).ok_or(RuleError::Unknown)?;
                        self.change(cat, sub, true);
                    } else {
                        tracing::warn!("Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})", String::from_utf8_lossy(name));
                        match self.first_args.iter_mut().find(|(i, _)| *i == id) {
                            Some((_, args)) => {
                                if !args.iter().any(|a| a.eq_ignore_ascii_case(first)) {
                                    args.push(Bytes::copy_from_slice(first));
                                }
                            }
                            None => self
                                .first_args
                                .push((id, vec![Bytes::copy_from_slice(first)])),
                        }
                    }
                }
            }
        } else if op[0] == b'-' {
            let id = cat.lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(cat, id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Whether this selector allows everything: the fast path of checks.
    fn unrestricted(&self) -> bool {
        self.all_commands && self.allkeys && self.allchannels
    }

    /// The command rules that rebuild this selector's bitmap (Redis's
    /// ACLDescribeSelectorCommandRules): `+@all` or `-@all`, then the
    /// categories that fit best, then single commands, then first
    /// arguments.
    pub fn describe_commands(&self) -> String {
        let cat = catalog();
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new(false);
        fake.set_all(!additive);
        // Categories by best fit: among those with more commands in
        // common with the selector than not, the one with the fewest
        // differences (then the most in common), until none is left. A
        // copy with the applied categories taken away keeps the count.
        let mut temp = self.clone();
        loop {
            let mut best: Option<(usize, usize, usize)> = None;
            for i in 0..CATEGORIES.len() {
                let bit = 1 << i;
                let (mut on, mut off) = (0, 0);
                for id in cat.walk() {
                    if cat.categories[id] & bit != 0 {
                        if temp.bit(id) {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                let better = best.is_none_or(|(_, d, s)| diff < d || (diff == d && same > s));
                if same > diff && better {
                    best = Some((i, diff, same));
                }
            }
            let Some((i, _, _)) = best else { break };
            let bit = 1 << i;
            fake.change_category(cat, bit, additive);
            temp.change_category(cat, bit, !additive);
            rules.push(if additive { '+' } else { '-' });
            rules.push('@');
            rules.push_str(CATEGORIES[i]);
            rules.push(' ');
        }
        // Each command's difference, then its allowed first arguments.
        for id in cat.walk() {
            let want = self.bit(id);
            if want != fake.bit(id) {
                rules.push(if want { '+' } else { '-' });
                rules.push_str(&cat.names[id]);
                rules.push(' ');
                fake.change(cat, id, want);
            }
            for (_, args) in self.first_args.iter().filter(|(i, _)| *i == id) {
                for a in args {
                    rules.push('+');
                    rules.push_str(&cat.names[id]);
                    rules.push('|');
                    rules.push_str(&String::from_utf8_lossy(a));
                    rules.push(' ');
                }
            }
        }
        rules.pop();
        rules
    }

    /// The key patterns as GETUSER shows them (`~*`, `%R~a ~b`).
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let parts: Vec<String> = self.patterns.iter().map(pattern_text).collect();
        parts.join(" ")
    }

    /// The channel patterns as GETUSER shows them (`&*`, `&a &b`).
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let parts: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }

    /// The selector as ACL LIST shows it.
    fn describe(&self) -> String {
        let mut out = String::new();
        if self.allkeys {
            out.push_str("~* ");
        } else {
            for p in &self.patterns {
                out.push_str(&pattern_text(p));
                out.push(' ');
            }
        }
        if self.allchannels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }

    /// Checks a call (Redis's ACLSelectorCheckCmd): its command, then
    /// each key, then each channel. On refusal, which argument.
    fn check(&self, call: &Call) -> Result<(), (Denied, usize)> {
        if !self.all_commands && !call.no_auth && !self.bit(call.id) {
            let first_at = if catalog().parent[call.id].is_some() {
                2
            } else {
                1
            };
            let allowed = self
                .first_args
                .iter()
                .find(|(i, _)| *i == call.id)
                .zip(call.args.get(first_at))
                .is_some_and(|((_, list), arg)| list.iter().any(|a| a.eq_ignore_ascii_case(arg)));
            if !allowed {
                return Err((Denied::Command, 0));
            }
        }
        if !self.allkeys {
            for &(pos, access) in &call.keys {
                let key = &call.args[pos];
                let ok = self.patterns.iter().any(|p| {
                    (p.read || access & facts::READ == 0)
                        && (p.write || access & facts::WRITE == 0)
                        && glob_match(&p.pattern, key, false)
                });
                if !ok {
                    return Err((Denied::Key, pos));
                }
            }
        }
        if !self.allchannels {
            for &(pos, is_pattern) in &call.channels {
                let channel = &call.args[pos];
                let ok = self.channels.iter().any(|p| {
                    if is_pattern {
                        p == channel
                    } else {
                        glob_match(p, channel, false)
                    }
                });
                if !ok {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }
}

fn pattern_text(p: &KeyPattern) -> String {
    let prefix = match (p.read, p.write) {
        (true, true) => "~",
        (true, false) => "%R~",
        _ => "%W~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
}

/// Redis refuses spaces and NULs in names and patterns.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

/// A call as checks see it: its catalog id, arguments, and which of them
/// are keys (with what is done to each) or channels (and whether as a
/// PSUBSCRIBE pattern).
pub struct Call<'a> {
    pub id: usize,
    pub args: &'a [Bytes],
    pub no_auth: bool,
    pub keys: Vec<(usize, u8)>,
    pub channels: Vec<(usize, bool)>,
}

/// Payload sanitizing for RESTORE: the user's flag, if set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sanitize {
    Unset,
    Yes,
    Skip,
}

/// An ACL user. Users are values: a change builds a new one and the
/// registry swaps it in, so a check never sees half a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Bytes,
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize: Sanitize,
    /// Lower-case hex SHA-256 of each password.
    pub passwords: Vec<String>,
    /// The root selector first.
    pub selectors: Vec<Selector>,
    /// Some selector allows every command, key and channel.
    pub unrestricted: bool,
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no passwords, nothing
    /// allowed; channels per `acl-pubsub-default`.
    pub fn new(name: &[u8], allchannels: bool) -> User {
        User {
            name: Bytes::copy_from_slice(name),
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selectors: vec![Selector::new(allchannels)],
            unrestricted: false,
        }
    }

    /// The `default` user of a fresh server: on, nopass, everything.
    pub fn default_user() -> User {
        let mut u = User::new(b"default", false);
        for rule in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(rule.as_bytes(), false);
        }
        u
    }

    /// Applies one rule (Redis's ACLSetUser). `allchannels` is
    /// `acl-pubsub-default`, which `reset` goes back to.
    pub fn apply(&mut self, op: &[u8], allchannels: bool) -> Result<(), RuleError> {
        let result = self.apply_inner(op, allchannels);
        self.unrestricted = self.selectors.iter().any(Selector::unrestricted);
        result
    }

    fn apply_inner(&mut self, op: &[u8], allchannels: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Sanitize::Skip;
        } else if is("sanitize-payload") {
            self.sanitize = Sanitize::Yes;
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                valid_hash(&op[1..])?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                valid_hash(&op[1..])?
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut selector = Selector::new(false);
            for rule in split_args(&op[1..op.len() - 1]).ok_or(RuleError::Syntax)? {
                selector.apply(&rule)?;
            }
            self.selectors.push(selector);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            self.selectors.truncate(1);
            let root = &mut self.selectors[0];
            root.apply(b"resetkeys")?;
            root.apply(b"resetchannels")?;
            if allchannels {
                root.apply(b"allchannels")?;
            }
            root.apply(b"-@all")?;
            self.enabled = false;
            self.sanitize = Sanitize::Yes;
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Applies several rules, all or nothing (ACL SETUSER): the error names
    /// the rule that failed.
    pub fn apply_all(&mut self, rules: &[Bytes], allchannels: bool) -> Result<(), String> {
        let merged = merge_selectors(rules).map_err(|at| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(&rules[at])
            )
        })?;
        let mut staged = self.clone();
        for rule in &merged {
            staged.apply(rule, allchannels).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(rule),
                    e.text()
                )
            })?;
        }
        *self = staged;
        Ok(())
    }

    /// Whether `password` opens this user.
    pub fn password_matches(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        let mut found = false;
        for p in &self.passwords {
            found |= constant_time_eq(p.as_bytes(), hash.as_bytes());
        }
        found
    }

    /// The flags Redis lists for this user.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Sanitize::Skip => flags.push("skip-sanitize-payload"),
            Sanitize::Yes => flags.push("sanitize-payload"),
            Sanitize::Unset => {}
        }
        flags
    }

    /// The user in the rule language, without its name (ACL LIST, the
    /// ACL file, CONFIG REWRITE).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for f in self.flags() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.selectors[0].describe());
        for s in &self.selectors[1..] {
            out.push_str(" (");
            out.push_str(&s.describe());
            out.push(')');
        }
        out
    }

    /// Checks a call against every selector (Redis's
    /// ACLCheckAllUserCommandPerm): allowed if one allows it; otherwise
    /// the most telling refusal (a key or channel over the command, the
    /// last argument over earlier ones).
    pub fn check(&self, call: &Call) -> Result<(), (Denied, usize)> {
        if self.unrestricted {
            return Ok(());
        }
        let mut worst = (Denied::Command, 0);
        for s in &self.selectors {
            match s.check(call) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if e.0 > worst.0 || (e.0 == worst.0 && e.1 > worst.1) {
                        worst = e;
                    }
                }
            }
        }
        Err(worst)
    }

    /// Whether every channel this user could use, `new` can use too.
    pub fn channels_kept_by(&self, new: &User) -> bool {
        if new.selectors.iter().any(|s| s.allchannels) {
            return true;
        }
        self.selectors.iter().all(|s| {
            !s.allchannels
                && s.channels
                    .iter()
                    .all(|c| new.selectors.iter().any(|n| n.channels.contains(c)))
        })
    }
}

/// Redis's password hash: lower-case hex SHA-256.
pub fn hash_password(password: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(password);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn valid_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64
        || !h
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// Compares without an early exit, so timing does not reveal a password.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Joins a selector given over several arguments (`(~a` `+get)`) into one;
/// on an unclosed `(`, the index of the argument that opened it.
pub fn merge_selectors(rules: &[Bytes]) -> Result<Vec<Bytes>, usize> {
    let mut out = Vec::with_capacity(rules.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, r) in rules.iter().enumerate() {
        match &mut open {
            None if r.first() == Some(&b'(') && r.last() != Some(&b')') => {
                open = Some((i, r.to_vec()));
            }
            None => out.push(r.clone()),
            Some((_, acc)) => {
                acc.push(b' ');
                acc.extend_from_slice(r);
                if r.last() == Some(&b')') {
                    out.push(Bytes::from(std::mem::take(acc)));
                    open = None;
                }
            }
        }
    }
    match open {
        Some((at, _)) => Err(at),
        None => Ok(out),
    }
}

/// Splits a selector's inside on spaces, honouring quotes (Redis's
/// sdssplitargs); `None` on unbalanced quotes.
fn split_args(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::config::split_args(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new(b"u", false);
        let rules: Vec<Bytes> = rules.iter().map(|r| Bytes::from(r.to_string())).collect();
        u.apply_all(&rules, false).unwrap();
        u
    }

    #[test]
    fn describes_like_redis() {
        // Outputs read off redis-server 7.0 for the same rules.
        // Single commands come in table order (Redis's is its hash order).
        let alice = user(&[
            "on",
            ">pw",
            "~foo*",
            "&chan*",
            "+get",
            "+set",
            "+config|get",
            "-@dangerous",
        ])
        .describe();
        let head = "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~foo* resetchannels &chan* -@all ";
        assert!(alice.starts_with(head), "{alice}");
        let mut rest: Vec<&str> = alice[head.len()..].split(' ').collect();
        rest.sort();
        assert_eq!(rest, ["+get", "+set"]);
        assert_eq!(
            user(&["+@all", "-get", "+get", "-@string", "+incr"]).describe(),
            "off resetchannels +@all -@string +incr"
        );
        assert_eq!(
            user(&["reset"]).describe(),
            "off sanitize-payload resetchannels -@all"
        );
        assert_eq!(User::default_user().describe(), "on nopass ~* &* +@all");
        assert_eq!(
            user(&[
                "on",
                "nopass",
                "%R~r*",
                "%W~w*",
                "%RW~x*",
                "allchannels",
                "(~s*",
                "+get)"
            ])
            .describe(),
            "on nopass %R~r* %W~w* ~x* &* -@all (~s* resetchannels -@all +get)"
        );
    }

    #[test]
    fn rule_errors_are_redis_s() {
        let mut u = User::new(b"u", false);
        let err = |u: &mut User, r: &[&str]| {
            let rules: Vec<Bytes> = r.iter().map(|x| Bytes::from(x.to_string())).collect();
            u.apply_all(&rules, false).unwrap_err()
        };
        assert_eq!(
            err(&mut u, &["badrule"]),
            "Error in ACL SETUSER modifier 'badrule': Syntax error"
        );
        assert_eq!(
            err(&mut u, &["+nosuch"]),
            "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        assert_eq!(
            err(&mut u, &["(~x"]),
            "Unmatched parenthesis in acl selector starting at '(~x'."
        );
        assert!(err(&mut u, &["~*", "~a"])
            .ends_with("Try 'resetkeys' to start with an empty list of patterns"));
        assert!(err(&mut u, &["+config|get|x"])
            .ends_with("Allowing first-arg of a subcommand is not supported"));
        assert!(err(&mut u, &["#abc"]).ends_with("only lowercase hexadecimal characters"));
        assert!(err(&mut u, &["<nope"]).ends_with("does not exist"));
        // Nothing of a refused SETUSER is applied.
        assert_eq!(u, User::new(b"u", false));
    }

    #[test]
    fn checks_commands_keys_and_channels() {
        let cat = catalog();
        let u = user(&[
            "+get",
            "+config|get",
            "+select|0",
            "~foo*",
            "%R~ro*",
            "&news.*",
        ]);
        let call =
            |name: &str, args: &[&str], keys: Vec<(usize, u8)>, channels: Vec<(usize, bool)>| {
                let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
                let id = cat.lookup(name.as_bytes()).unwrap();
                let call = Call {
                    id,
                    args: &args,
                    no_auth: false,
                    keys,
                    channels,
                };
                u.check(&call)
            };
        assert_eq!(call("get", &["get", "foo1"], vec![(1, 1)], vec![]), Ok(()));
        assert_eq!(
            call("get", &["get", "bar"], vec![(1, 1)], vec![]),
            Err((Denied::Key, 1))
        );
        assert_eq!(call("get", &["get", "ro1"], vec![(1, 1)], vec![]), Ok(()));
        assert_eq!(
            call("set", &["set", "foo", "v"], vec![(1, 2)], vec![]),
            Err((Denied::Command, 0))
        );
        assert_eq!(
            call("config|get", &["config", "get", "x"], vec![], vec![]),
            Ok(())
        );
        assert_eq!(
            call("config|set", &["config", "set", "x", "y"], vec![], vec![]),
            Err((Denied::Command, 0))
        );
        assert_eq!(call("select", &["select", "0"], vec![], vec![]), Ok(()));
        assert_eq!(
            call("select", &["select", "1"], vec![], vec![]),
            Err((Denied::Command, 0))
        );
        let u2 = user(&["+publish", "+psubscribe", "&news.*"]);
        let args: Vec<Bytes> = ["publish", "news.a"]
            .iter()
            .map(|a| Bytes::from(a.to_string()))
            .collect();
        let id = cat.lookup(b"publish").unwrap();
        assert!(u2
            .check(&Call {
                id,
                args: &args,
                no_auth: false,
                keys: vec![],
                channels: vec![(1, false)]
            })
            .is_ok());
        let args: Vec<Bytes> = ["psubscribe", "news.a"]
            .iter()
            .map(|a| Bytes::from(a.to_string()))
            .collect();
        let id = cat.lookup(b"psubscribe").unwrap();
        // A PSUBSCRIBE pattern must equal an ACL pattern.
        assert_eq!(
            u2.check(&Call {
                id,
                args: &args,
                no_auth: false,
                keys: vec![],
                channels: vec![(1, true)]
            }),
            Err((Denied::Channel, 1))
        );
    }

    #[test]
    fn passwords_hash_like_redis() {
        assert_eq!(
            hash_password(b"pw"),
            "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
        );
        let u = user(&[">pw"]);
        assert!(u.password_matches(b"pw"));
        assert!(!u.password_matches(b"px"));
    }
}
