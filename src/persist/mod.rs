//! Persistence: the RDB format ([`rdb`]), how stored values map to it
//! ([`values`]), the fork-less snapshot of the node as an RDB stream
//! ([`snapshot`]), the fan-out of that stream to several readers
//! ([`fanout`]), writing/loading dump files ([`dump`]), parsing an RDB
//! while it arrives ([`chunks`]), the append-only file ([`aof`]) and the
//! temp files an exit must not leave behind ([`temp`]).
//!
//! The codec takes sinks and sources and never opens files itself; `dump`
//! and `aof` are the only code here that touches the filesystem. Depends on
//! `keyspace` (values) and `shard` (reaching every shard's data), never on
//! `cmd` or `net`.

pub mod aof;
pub mod chunks;
pub mod dump;
pub mod fanout;
pub mod rdb;
pub mod snapshot;
pub mod temp;
pub mod values;
