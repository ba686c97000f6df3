//! The commands as ACLs see them: one id per command and per subcommand
//! (the statistics ids of [`crate::cmd::table`], so `+config|get` and
//! `cmdstat_config|get` name the same thing), each with its full name, its
//! categories and what it does to its keys. Built once from the command
//! table; read-only afterwards.

use std::ops::Range;
use std::sync::OnceLock;

use super::facts;

/// Redis's ACL categories, in Redis's order (ACL CAT, and the order in
/// which a user's rules are described).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (without `@`), case-insensitively.
pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// Every command and subcommand, by id.
pub struct Catalog {
    /// `get`, `config|get`.
    pub names: Vec<String>,
    /// Category bits ([`CATEGORIES`] order).
    pub categories: Vec<u32>,
    /// A subcommand's container.
    pub parent: Vec<Option<usize>>,
    /// A container's subcommand ids (empty otherwise).
    pub subcommands: Vec<Range<usize>>,
    /// [`facts::READ`] / [`facts::WRITE`] of its keys.
    pub key_access: Vec<u8>,
    /// Ids of the top-level commands, in table order, for walks that visit
    /// each container before its subcommands.
    pub top: Range<usize>,
}

impl Catalog {
    fn build() -> Catalog {
        let table = crate::cmd::table::table();
        let top = table.commands.len();
        let total = top
            + table
                .commands
                .iter()
                .map(|c| c.subcommands.len())
                .sum::<usize>();
        let mut catalog = Catalog {
            names: vec![String::new(); total],
            categories: vec![0; total],
            parent: vec![None; total],
            subcommands: vec![0..0; total],
            key_access: vec![0; total],
            top: 0..top,
        };
        for c in &table.commands {
            let bits = match facts::CONTAINER_CATEGORIES.binary_search_by(|(n, _)| (*n).cmp(c.name))
            {
                Ok(i) => bits_of(facts::CONTAINER_CATEGORIES[i].1),
                Err(_) => bits_of(&c.acl_categories()),
            };
            catalog.names[c.id] = c.name.to_string();
            catalog.categories[c.id] = bits;
            catalog.key_access[c.id] = access_of(c.name);
            let subs = c.first_sub_id..c.first_sub_id + c.subcommands.len();
            catalog.subcommands[c.id] = subs.clone();
            for (id, (sub, _)) in subs.zip(c.subcommands) {
                let full = format!("{}|{sub}", c.name);
                // A subcommand Redis 7.0 does not have takes its
                // container's categories.
                let bits = facts::SUBCOMMAND_CATEGORIES
                    .binary_search_by(|(n, _)| (*n).cmp(full.as_str()))
                    .map(|i| bits_of(facts::SUBCOMMAND_CATEGORIES[i].1))
                    .unwrap_or(bits);
                catalog.key_access[id] = access_of(&full);
                catalog.names[id] = full;
                catalog.categories[id] = bits;
                catalog.parent[id] = Some(c.id);
            }
        }
        catalog
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id of `name` or `container|sub`, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let table = crate::cmd::table::table();
        match name.iter().position(|&b| b == b'|') {
            None => table.lookup(name).map(|c| c.id),
            Some(bar) => {
                let c = table.lookup(&name[..bar])?;
                let sub = &name[bar + 1..];
                c.subcommand_index(sub).map(|i| c.first_sub_id + i)
            }
        }
    }

    /// Ids in the order Redis walks its command table: each command, then
    /// its subcommands.
    pub fn walk(&self) -> impl Iterator<Item = usize> + '_ {
        self.top
            .clone()
            .flat_map(move |id| std::iter::once(id).chain(self.subcommands[id].clone()))
    }
}

fn bits_of(categories: &[&str]) -> u32 {
    categories
        .iter()
        .filter_map(|cat| category_bit(cat.trim_start_matches('@').as_bytes()))
        .fold(0, |a, b| a | b)
}

fn access_of(name: &str) -> u8 {
    facts::KEY_ACCESS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map_or(facts::READ | facts::WRITE, |i| facts::KEY_ACCESS[i].1)
}

/// The process-wide catalog.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_have_their_own_ids_and_categories() {
        let c = catalog();
        let get = c.lookup(b"CONFIG|get").unwrap();
        assert_eq!(c.names[get], "config|get");
        assert_eq!(c.parent[get], Some(c.lookup(b"config").unwrap()));
        assert_ne!(c.categories[get] & category_bit(b"admin").unwrap(), 0);
        assert!(c.lookup(b"config|nosuch").is_none());
        assert!(c.lookup(b"get|x").is_none());
        let set = c.lookup(b"set").unwrap();
        assert_eq!(c.key_access[set], facts::READ | facts::WRITE);
        assert_eq!(c.key_access[c.lookup(b"del").unwrap()], facts::WRITE);
        assert_eq!(c.key_access[c.lookup(b"exists").unwrap()], 0);
        assert_eq!(c.walk().count(), c.len());
    }
}
