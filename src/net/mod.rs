//! The network side: listening sockets on every shard and the connection
//! loop ([`conn`]).
//!
//! Every shard binds the same addresses (glommio sets SO_REUSEPORT), so the
//! kernel spreads new connections across shards and a connection stays on
//! the shard that accepted it. Depends on `cmd` (dispatch), `resp`
//! (codec) and `shard`; nothing below it imports this module.

pub mod conn;

use crate::node::Node;
use crate::shard::Shard;
use glommio::net::TcpListener;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One `bind` entry: the address, and whether failing to bind it is
/// tolerated (Redis's `-` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAddr {
    pub host: String,
    pub optional: bool,
}

/// Parses `bind` entries (`* -::*`, `127.0.0.1 -::1`) like Redis: `*` is
/// every IPv4 address, `::*` every IPv6 one.
pub fn parse_bind(entries: &[String]) -> Vec<BindAddr> {
    entries
        .iter()
        .map(|e| {
            let (optional, host) = match e.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, e.as_str()),
            };
            let host = match host {
                "*" => "0.0.0.0",
                "::*" => "::",
                h => h,
            };
            BindAddr {
                host: host.to_string(),
                optional,
            }
        })
        .collect()
}

pub fn socket_addr(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))
}

/// Checks before the shards start that the port is free, so a second
/// server on the same port fails like Redis instead of silently sharing it
/// through SO_REUSEPORT. Returns the Redis-style error text on failure.
pub fn probe_port(binds: &[BindAddr], port: u16) -> Result<(), String> {
    for b in binds {
        let addr = match socket_addr(&b.host, port) {
            Ok(a) => a,
            Err(e) if b.optional => {
                tracing::debug!("Skipping bind {}: {e}", b.host);
                continue;
            }
            Err(e) => {
                return Err(format!(
                    "Warning: Could not create server TCP listening socket {}:{port}: {e}",
                    b.host
                ))
            }
        };
        if let Err(e) = std::net::TcpListener::bind(addr) {
            if b.optional {
                continue;
            }
            return Err(format!(
                "Warning: Could not create server TCP listening socket {}:{port}: bind: {}",
                b.host,
                io_error_text(&e)
            ));
        }
    }
    Ok(())
}

fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "Address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "Cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

/// Binds this shard's listeners and spawns their accept loops. Returns how
/// many addresses were bound.
pub fn listen(
    node: &Arc<Node>,
    shard: &Rc<Shard>,
    binds: &[BindAddr],
    port: u16,
) -> Result<usize, String> {
    let mut bound = 0;
    for b in binds {
        let addr = match socket_addr(&b.host, port) {
            Ok(a) => a,
            Err(_) if b.optional => continue,
            Err(e) => return Err(format!("{}:{port}: {e}", b.host)),
        };
        let listener = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(_) if b.optional => continue,
            Err(e) => return Err(format!("{}:{port}: bind: {e}", b.host)),
        };
        bound += 1;
        let node = node.clone();
        let shard = shard.clone();
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        if node.shutting_down.load(Ordering::Relaxed) {
                            continue;
                        }
                        glommio::spawn_local(conn::serve(stream, node.clone(), shard.clone()))
                            .detach();
                    }
                    Err(e) => {
                        tracing::warn!("Accepting client connection: {e}");
                        // Out of descriptors and the like: back off briefly
                        // instead of spinning.
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_entries_like_redis() {
        let b = parse_bind(&["*".into(), "-::*".into()]);
        assert_eq!(
            b[0],
            BindAddr {
                host: "0.0.0.0".into(),
                optional: false
            }
        );
        assert_eq!(
            b[1],
            BindAddr {
                host: "::".into(),
                optional: true
            }
        );
        let b = parse_bind(&["127.0.0.1".into(), "-::1".into()]);
        assert_eq!(b[1].host, "::1");
    }
}
