//! Small, dependency-free helpers shared by several Cascade modules.
//!
//! Nothing in here may depend on server state, sockets or the config module:
//! these are pure functions over bytes so they can be reused anywhere (KEYS,
//! SCAN MATCH, PSUBSCRIBE, CONFIG GET, ACL key patterns...).

pub mod digest;
pub mod glob;
pub mod ldouble;
pub mod num;
pub mod strtod;

pub use glob::glob_match;
