//! Persistence: the RDB format ([`rdb`]), how stored values map to it
//! ([`values`]) and writing/loading dump files ([`dump`]).
//!
//! The codec takes sinks and sources and never opens files itself; `dump`
//! is the only code here that touches the filesystem. Depends on
//! `keyspace` (values) and `shard` (reaching every shard's data), never on
//! `cmd` or `net`.

pub mod dump;
pub mod rdb;
pub mod values;
