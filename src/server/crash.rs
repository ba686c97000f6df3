//! What happens when the server hits a bug: a panic anywhere (a shard's
//! executor, the snapshot encoder, a replication thread) is fatal for the
//! whole process.
//!
//! Why not contain it: every shard owns a slice of the keyspace and the
//! others wait on it (cross-shard calls, holds, the snapshot cut). A shard
//! thread that unwound would leave its clients hanging, its peers waiting
//! forever and SIGTERM unanswered (the shutdown runs on shard 0). A panic
//! may also leave a half-applied write behind. Redis does the same on an
//! assertion: it logs a bug report and dies, and a supervisor restarts it
//! from its RDB/AOF.
//!
//! Owns only the panic hook; reads the log sink through `log`.

use crate::log::{self, LogLevel};

/// Installs the hook: logs the report in Redis's log format (with the
/// thread, the location and a backtrace), removes the pidfile of a
/// daemonized server as Redis does, then aborts (core dump where enabled).
pub fn install_panic_hook(pidfile: Option<String>) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed").to_string();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-text panic payload)".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".to_string());
        let backtrace = std::backtrace::Backtrace::force_capture();
        let lines = [
            "------------------------------------------------".to_string(),
            "!!! Software Failure. Press left mouse button to continue".to_string(),
            format!("Guru Meditation: {message} #{location}"),
            "=== CASCADE BUG REPORT START: Cut & paste starting from here ===".to_string(),
            format!("Panic in thread '{thread}': {message}"),
            "------ STACK TRACE ------".to_string(),
        ];
        for line in &lines {
            log::write_line_on_crash(LogLevel::Warning, line);
        }
        for line in backtrace.to_string().lines() {
            log::write_line_on_crash(LogLevel::Warning, line);
        }
        log::write_line_on_crash(
            LogLevel::Warning,
            "=== CASCADE BUG REPORT END. Make sure to include from START to END. ===",
        );
        if let Some(path) = &pidfile {
            let _ = std::fs::remove_file(path);
        }
        std::process::abort();
    }));
}
