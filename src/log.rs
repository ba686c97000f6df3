//! Log output in Redis's line format, so tools that read Redis logs read
//! ours: `<pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <level> <text>`.
//!
//! Built as a small `tracing` subscriber: the code logs with `tracing`'s
//! macros (`info!` is Redis's notice `*`, `warn!`/`error!` its warning `#`,
//! `debug!` its verbose `-`, `trace!` its debug `.`). Owns the log
//! destination (stdout or `logfile`) and the level; knows nothing else.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

pub use crate::config::LogLevel;

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::TRACE => LogLevel::Debug,
        Level::DEBUG => LogLevel::Verbose,
        Level::INFO => LogLevel::Notice,
        _ => LogLevel::Warning,
    }
}

fn mark(level: LogLevel) -> char {
    match level {
        LogLevel::Debug => '.',
        LogLevel::Verbose => '-',
        LogLevel::Notice => '*',
        LogLevel::Warning => '#',
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Notice as u8);
/// Redis's role letter: `M` master, `S` replica, `C` before the server runs.
static ROLE: AtomicU8 = AtomicU8::new(b'C');
static SINK: Mutex<Option<Box<dyn Write + Send>>> = Mutex::new(None);

pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn set_role(role: u8) {
    ROLE.store(role, Ordering::Relaxed);
}

/// Sends log lines to `logfile` (appending), or to stdout when it is empty.
pub fn set_destination(logfile: &str) -> std::io::Result<()> {
    let sink: Box<dyn Write + Send> = if logfile.is_empty() {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logfile)?,
        )
    };
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    Ok(())
}

/// Drops log output entirely (daemonized with no logfile, as Redis does).
pub fn discard() {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(std::io::sink()));
}

/// Installs the subscriber for the whole process. Idempotent.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(RedisFormat);
}

/// Formats the current local time as Redis does: `25 Nov 2026 15:19:41.123`.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live values owned by this frame;
    // localtime_r is the thread-safe variant.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

/// One line in Redis's format, newline included.
fn format_line(level: LogLevel, text: &str) -> String {
    format!(
        "{}:{} {} {} {}\n",
        std::process::id(),
        ROLE.load(Ordering::Relaxed) as char,
        timestamp(),
        mark(level),
        text
    )
}

/// Writes one line in Redis's format, bypassing levels (used for the
/// startup banner and for messages written before `tracing` is set up).
pub fn write_line(level: LogLevel, text: &str) {
    let line = format_line(level, text);
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(w) => {
            let _ = w.write_all(line.as_bytes());
            let _ = w.flush();
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Like [`write_line`], for the crash report: never waits for the sink
/// (the panicking thread may be the one holding it), writing to stderr
/// instead when it is busy.
pub fn write_line_on_crash(level: LogLevel, text: &str) {
    let line = format_line(level, text);
    let sink = match SINK.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    match sink {
        Some(mut guard) if guard.is_some() => {
            if let Some(w) = guard.as_mut() {
                let _ = w.write_all(line.as_bytes());
                let _ = w.flush();
            }
        }
        _ => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

struct RedisFormat;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for RedisFormat {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Only our own events: dependencies log through other facades.
        metadata.target().starts_with("cascade")
            && level_of(metadata.level()) as u8 >= LEVEL.load(Ordering::Relaxed)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        write_line(level_of(event.metadata().level()), &msg.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_redis_shape() {
        let t = timestamp();
        // "25 Nov 2026 15:19:41.123"
        let parts: Vec<&str> = t.split(' ').collect();
        assert_eq!(parts.len(), 4, "{t}");
        assert_eq!(parts[0].len(), 2);
        assert_eq!(parts[1].len(), 3);
        assert_eq!(parts[2].len(), 4);
        assert_eq!(parts[3].len(), 12);
    }

    #[test]
    fn levels_map_to_redis_marks() {
        assert!((LogLevel::Debug as u8) < (LogLevel::Warning as u8));
        assert_eq!(mark(level_of(&Level::WARN)), '#');
        assert_eq!(mark(level_of(&Level::INFO)), '*');
        assert_eq!(mark(level_of(&Level::TRACE)), '.');
    }
}
