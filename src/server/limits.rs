//! The open-files limit, raised at start-up so `maxclients` clients fit,
//! as Redis's adjustOpenFilesLimit does: the soft RLIMIT_NOFILE is raised
//! to `maxclients` + 32 (descriptors for listeners, files, the replication
//! link...) when the hard limit allows; otherwise as far as it goes, and
//! `maxclients` is lowered to what fits, with Redis's log lines.
//!
//! Owns nothing but that one call; touches no shard.

use crate::log::{self, LogLevel};

/// Descriptors kept for everything that is not a client.
const RESERVED_FDS: u64 = 32;

/// What [`adjust`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenFiles {
    /// The limit already allowed `maxclients`, or was raised to.
    Enough,
    /// `maxclients` must come down to this.
    ReduceMaxclients(u64),
    /// Not even the reserved descriptors fit: the server cannot start.
    TooLow { limit: u64, needed: u64 },
}

/// Reads (soft, hard) RLIMIT_NOFILE; `None` if the call fails.
fn nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other effect.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    Some((lim.rlim_cur, lim.rlim_max))
}

fn set_nofile(soft: u64, hard: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; failure is reported by rc.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// The decision for a soft limit `current`, where raising it to `n`
/// succeeds only up to `best` (the most the process may set).
fn decide(maxclients: u64, current: u64, best: u64) -> (u64, OpenFiles) {
    let wanted = maxclients.saturating_add(RESERVED_FDS);
    if current >= wanted {
        return (current, OpenFiles::Enough);
    }
    let got = best.min(wanted).max(current);
    if got >= wanted {
        (got, OpenFiles::Enough)
    } else if got <= RESERVED_FDS {
        (
            got,
            OpenFiles::TooLow {
                limit: got,
                needed: RESERVED_FDS + 1,
            },
        )
    } else {
        (got, OpenFiles::ReduceMaxclients(got - RESERVED_FDS))
    }
}

/// Raises the open-files limit for `maxclients` and logs what happened;
/// returns what the caller must do about `maxclients`.
pub fn adjust(maxclients: u64) -> OpenFiles {
    let Some((soft, hard)) = nofile_limit() else {
        let reduced = 1024 - RESERVED_FDS;
        log::write_line(
            LogLevel::Warning,
            &format!(
                "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
                std::io::Error::last_os_error()
            ),
        );
        return if maxclients > reduced {
            OpenFiles::ReduceMaxclients(reduced)
        } else {
            OpenFiles::Enough
        };
    };
    let wanted = maxclients.saturating_add(RESERVED_FDS);
    if soft >= wanted {
        return OpenFiles::Enough;
    }
    // Above the hard limit only a privileged process may go; try that
    // first (raising both), then settle for the hard limit.
    let best = if set_nofile(wanted, wanted.max(hard)) {
        wanted
    } else if set_nofile(wanted.min(hard), hard) {
        wanted.min(hard)
    } else {
        soft
    };
    let os_error = std::io::Error::last_os_error();
    let (got, outcome) = decide(maxclients, soft, best);
    match &outcome {
        OpenFiles::Enough => log::write_line(
            LogLevel::Notice,
            &format!("Increased maximum number of open files to {got} (it was originally set to {soft})."),
        ),
        OpenFiles::ReduceMaxclients(n) => {
            log::write_line(
                LogLevel::Warning,
                &format!("You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors."),
            );
            log::write_line(
                LogLevel::Warning,
                &format!("Server can't set maximum open files to {wanted} because of OS error: {os_error}."),
            );
            log::write_line(
                LogLevel::Warning,
                &format!("Current maximum open files is {got}. maxclients has been reduced to {n} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."),
            );
        }
        OpenFiles::TooLow { limit, needed } => log::write_line(
            LogLevel::Warning,
            &format!("Your current 'ulimit -n' of {limit} is not enough for the server to start. Please increase your open file limit to at least {needed}. Exiting."),
        ),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_redis() {
        // Enough already.
        assert_eq!(decide(10_000, 20_000, 20_000), (20_000, OpenFiles::Enough));
        // Raised all the way.
        assert_eq!(decide(10_000, 1024, 10_032), (10_032, OpenFiles::Enough));
        // Raised to the hard limit only: maxclients comes down.
        assert_eq!(
            decide(10_000, 1024, 4096),
            (4096, OpenFiles::ReduceMaxclients(4064))
        );
        // Nothing could be raised.
        assert_eq!(
            decide(10_000, 1024, 1024),
            (1024, OpenFiles::ReduceMaxclients(992))
        );
        assert_eq!(
            decide(10_000, 20, 20),
            (
                20,
                OpenFiles::TooLow {
                    limit: 20,
                    needed: 33
                }
            )
        );
    }
}
