//! The network side: listening sockets on every shard, the connection
//! loop ([`conn`]), the shard's epoll set that tells connections when
//! their socket has input (`ready`) and the reads it drives ([`input`]),
//! which the replication links use too.
//!
//! Every shard binds the same addresses (glommio sets SO_REUSEPORT), so the
//! kernel spreads new connections across shards and a connection stays on
//! the shard that accepted it. Depends on `cmd` (dispatch), `resp`
//! (codec) and `shard`. Below it, only the replication links (`repl`)
//! import anything from here: [`input`], to read their sockets.

pub mod conn;
pub mod input;
mod ready;

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

/// Proof that this process owns its listening addresses: one abstract Unix
/// socket per address, named after it, bound for the process's lifetime.
/// The kernel releases the names when the process exits, however it exits.
pub struct PortClaim {
    _names: Vec<std::os::fd::OwnedFd>,
}

/// Checks before the shards start that the port is free, so a second
/// server on the same port fails like Redis instead of silently sharing it
/// through SO_REUSEPORT. Returns the Redis-style error text on failure.
///
/// A TCP probe alone leaves a window: two servers started at the same
/// moment can both probe a free port and then both join the same
/// SO_REUSEPORT group. So each address is first claimed by name (see
/// [`PortClaim`]); of two Cascade servers racing for the same address,
/// exactly one gets the name. Servers of other kinds bind without
/// SO_REUSEPORT and conflict with ours in the kernel as usual.
pub fn claim_port(binds: &[BindAddr], port: u16) -> Result<PortClaim, String> {
    let mut names = Vec::new();
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
        let claimed = claim_name(&format!("cascade/tcp/{addr}"))
            .and_then(|name| std::net::TcpListener::bind(addr).map(|_| name));
        match claimed {
            Ok(name) => names.push(name),
            Err(_) if b.optional => continue,
            Err(e) => {
                return Err(format!(
                    "Warning: Could not create server TCP listening socket {}:{port}: bind: {}",
                    b.host,
                    io_error_text(&e)
                ))
            }
        }
    }
    Ok(PortClaim { _names: names })
}

/// Binds an abstract Unix socket called `name`: fails with `AddrInUse`
/// while another process holds the name.
fn claim_name(name: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // The leading NUL of sun_path (already zero) makes the name abstract.
    let bytes = name.as_bytes();
    let len = bytes.len().min(sun.sun_path.len() - 1);
    for (dst, &src) in sun.sun_path[1..=len].iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: socket(2) with constant arguments; the fd is checked below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket owned by nothing else; OwnedFd closes
    // it, on every path below.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let addr_len = std::mem::size_of::<libc::sa_family_t>() + 1 + len;
    // SAFETY: `sun` is a valid sockaddr_un and `addr_len` stays within it.
    let rc = unsafe {
        libc::bind(
            fd,
            &sun as *const libc::sockaddr_un as *const libc::sockaddr,
            addr_len as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(owned)
}

fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "Address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "Cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

/// Creates a listening socket the way every shard needs it: SO_REUSEPORT
/// so all shards share the port, IPV6_V6ONLY on IPv6 (so `* -::*` binds
/// both families, as Redis does), and `tcp-backlog` as the listen backlog.
/// Also returns the raw fd, for [`Node::listening`].
fn bind_listener(addr: SocketAddr, backlog: i32) -> std::io::Result<(TcpListener, i32)> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) with constant arguments; the fd is checked below.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fail = |fd: i32| {
        let e = std::io::Error::last_os_error();
        // SAFETY: `fd` is the socket created above and not yet shared.
        unsafe { libc::close(fd) };
        Err(e)
    };
    let one: libc::c_int = 1;
    let set = |level, opt| {
        // SAFETY: `fd` is our socket; the option value is a live c_int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SOL_SOCKET, libc::SO_REUSEADDR) != 0
        || set(libc::SOL_SOCKET, libc::SO_REUSEPORT) != 0
        || (addr.is_ipv6() && set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) != 0)
    {
        return fail(fd);
    }
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sin` is a valid sockaddr_in for the stated length.
            unsafe {
                libc::bind(
                    fd,
                    &sin as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sin6` is a valid sockaddr_in6 for the stated length.
            unsafe {
                libc::bind(
                    fd,
                    &sin6 as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    // SAFETY: listen(2) on our bound socket.
    if rc != 0 || unsafe { libc::listen(fd, backlog) } != 0 {
        return fail(fd);
    }
    // SAFETY: `fd` is a bound, listening socket that nothing else owns;
    // the TcpListener takes ownership and closes it.
    Ok((unsafe { TcpListener::from_raw_fd(fd) }, fd))
}

/// Binds this shard's listeners and spawns their accept loops. Returns how
/// many addresses were bound.
pub fn listen(
    node: &Arc<Node>,
    shard: &Rc<Shard>,
    binds: &[BindAddr],
    port: u16,
) -> Result<usize, String> {
    let backlog = node.config().tcp_backlog().min(i32::MAX as u32) as i32;
    let mut bound = 0;
    for b in binds {
        let addr = match socket_addr(&b.host, port) {
            Ok(a) => a,
            Err(_) if b.optional => continue,
            Err(e) => return Err(format!("{}:{port}: {e}", b.host)),
        };
        let (listener, fd) = match bind_listener(addr, backlog) {
            Ok(l) => l,
            Err(_) if b.optional => continue,
            Err(e) => return Err(format!("{}:{port}: bind: {e}", b.host)),
        };
        bound += 1;
        node.listening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fd);
        let node = node.clone();
        let shard = shard.clone();
        glommio::spawn_local(async move {
            // Start-up only: the other shards are binding their listeners.
            while !node.initialized.load(Ordering::SeqCst) {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        if node.shutting_down.load(Ordering::Relaxed) {
                            continue;
                        }
                        glommio::spawn_local(conn::serve(stream, node.clone(), shard.clone()))
                            .detach();
                    }
                    // The listener was shut down for the exit.
                    Err(_) if node.shutting_down.load(Ordering::Relaxed) => return,
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
