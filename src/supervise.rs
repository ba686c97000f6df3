//! Telling a service manager how the server is doing (`supervised`), as
//! Redis does.
//!
//! - systemd (`supervised systemd`, or `auto` with `NOTIFY_SOCKET` set):
//!   `sd_notify` datagrams to the socket systemd names in `NOTIFY_SOCKET`:
//!   `STATUS=` lines while loading, `READY=1` once clients are served,
//!   `STOPPING=1` when a shutdown starts. This is what a `Type=notify`
//!   unit waits for, Debian's `redis-server.service` among them: without
//!   it systemd would kill the server when `TimeoutStartSec` runs out.
//! - upstart (`supervised upstart`, or `auto` with `UPSTART_JOB` set): the
//!   process stops itself once (SIGSTOP) at start, which upstart's
//!   `expect stop` takes as "started".
//!
//! A supervised server does not daemonize, whatever `daemonize` says.
//! Owns only the notification socket's address; knows nothing of the
//! server's state (callers say what to send).

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

/// What `supervised` asked for and the environment allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supervisor {
    None,
    Upstart,
    Systemd,
    /// Asked for, but the manager's variable is missing: the warning to log.
    Missing(&'static str),
}

impl Supervisor {
    /// Supervised servers stay in the foreground.
    pub fn keeps_foreground(self) -> bool {
        matches!(self, Supervisor::Upstart | Supervisor::Systemd)
    }
}

/// The systemd notification socket, once supervision by systemd is on.
static NOTIFY: OnceLock<SocketAddr> = OnceLock::new();

/// Decides supervision from the directive (`no`, `upstart`, `systemd`,
/// `auto`) and the environment. Logs nothing (the log may not be open
/// yet): [`announce`] does, once it is.
pub fn detect(mode: &str) -> Supervisor {
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    match mode.to_ascii_lowercase().as_str() {
        "upstart" if upstart => Supervisor::Upstart,
        "upstart" => {
            Supervisor::Missing("upstart supervision requested, but UPSTART_JOB not found!")
        }
        "systemd" if systemd => Supervisor::Systemd,
        "systemd" => Supervisor::Missing("systemd supervision error: NOTIFY_SOCKET not found!"),
        "auto" if upstart => Supervisor::Upstart,
        "auto" if systemd => Supervisor::Systemd,
        _ => Supervisor::None,
    }
}

/// Starts the supervision `detect` chose, with Redis's log lines; returns
/// whether the server is supervised. Upstart: stops the process here until
/// upstart continues it. Systemd: sends the first status; a missing or
/// unusable `NOTIFY_SOCKET` means not supervised.
pub fn announce(which: Supervisor) -> bool {
    match which {
        Supervisor::None => false,
        Supervisor::Missing(warning) => {
            tracing::warn!("{warning}");
            false
        }
        Supervisor::Upstart => {
            tracing::info!("supervised by upstart, will stop to signal readiness.");
            // SAFETY: raise(2) on our own process with a constant signal.
            unsafe { libc::raise(libc::SIGSTOP) };
            std::env::remove_var("UPSTART_JOB");
            true
        }
        Supervisor::Systemd => {
            let Some(addr) = notify_address() else {
                tracing::warn!("systemd supervision error: NOTIFY_SOCKET not found!");
                return false;
            };
            let _ = NOTIFY.set(addr);
            if let Err(e) = send("STATUS=Redis is loading...\n") {
                tracing::warn!("systemd supervision error: sd_notify: {e}");
                return false;
            }
            tracing::info!(
                "Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."
            );
            true
        }
    }
}

/// Sends `message` (`KEY=value` lines) to systemd; nothing unless the
/// server is supervised by systemd.
pub fn notify(message: &str) {
    if let Err(e) = send(message) {
        tracing::warn!("systemd supervision error: sd_notify: {e}");
    }
}

fn send(message: &str) -> std::io::Result<()> {
    let Some(addr) = NOTIFY.get() else {
        return Ok(());
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(message.as_bytes(), addr)?;
    Ok(())
}

/// `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
fn notify_address() -> Option<SocketAddr> {
    let raw = std::env::var("NOTIFY_SOCKET").ok()?;
    if raw.len() < 2 {
        return None;
    }
    if let Some(name) = raw.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name.as_bytes()).ok();
    }
    if !raw.starts_with('/') {
        return None;
    }
    SocketAddr::from_pathname(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_means_no_whatever_the_environment() {
        assert_eq!(detect("no"), Supervisor::None);
        assert!(!detect("no").keeps_foreground());
        assert!(!Supervisor::Missing("x").keeps_foreground());
    }
}
