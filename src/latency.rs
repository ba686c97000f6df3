//! The latency monitor (`latency-monitor-threshold`, LATENCY LATEST,
//! HISTORY, GRAPH, DOCTOR, RESET): per event class (`command`,
//! `fast-command`, `expire-cycle`, `eviction-cycle`, `aof-fsync-always`),
//! the samples at or over the threshold, one per second (the worst of
//! that second), the last 160 of them, and the worst ever.
//!
//! LATENCY DOCTOR gives Redis's report and advice, except the advice on
//! transparent huge pages: that one is about fork's copy-on-write, and
//! Cascade never forks (its allocator may well use huge pages).
//!
//! Process-wide: the shards and the AOF writer add samples from their own
//! threads. A sample is taken only past the threshold, so the lock is
//! taken only then; the threshold itself is an atomic read on every
//! command. Depends on std only (the report reads a few figures its
//! caller passes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Samples kept per event (Redis's LATENCY_TS_LEN).
const SERIES_LEN: usize = 160;

/// `latency-monitor-threshold` in milliseconds (0: monitoring off).
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(0);

static EVENTS: Mutex<Vec<(String, Series)>> = Mutex::new(Vec::new());

pub fn set_threshold_ms(ms: u64) {
    THRESHOLD_MS.store(ms, Ordering::Relaxed);
}

pub fn threshold_ms() -> u64 {
    THRESHOLD_MS.load(Ordering::Relaxed)
}

/// One sample: the second it was taken in and the worst latency (ms) of
/// that second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub time: u64,
    pub latency: u64,
}

/// The samples of one event: a ring of [`SERIES_LEN`], oldest first from
/// `next`.
#[derive(Clone, Debug)]
pub struct Series {
    samples: [Sample; SERIES_LEN],
    next: usize,
    /// The worst latency ever sampled.
    pub max: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            samples: [Sample::default(); SERIES_LEN],
            next: 0,
            max: 0,
        }
    }

    fn add(&mut self, now: u64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = (self.next + SERIES_LEN - 1) % SERIES_LEN;
        if self.samples[prev].time == now {
            let p = &mut self.samples[prev];
            p.latency = p.latency.max(latency);
            return;
        }
        self.samples[self.next] = Sample { time: now, latency };
        self.next = (self.next + 1) % SERIES_LEN;
    }

    /// The samples taken, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        (0..SERIES_LEN)
            .map(|j| self.samples[(self.next + j) % SERIES_LEN])
            .filter(|s| s.time != 0)
            .collect()
    }

    /// The most recent sample.
    pub fn latest(&self) -> Sample {
        self.samples[(self.next + SERIES_LEN - 1) % SERIES_LEN]
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Records `elapsed` for `event` if monitoring is on and it reached the
/// threshold (Redis's latencyAddSampleIfNeeded).
pub fn sample_if_needed(event: &str, elapsed: std::time::Duration) {
    let threshold = threshold_ms();
    let ms = elapsed.as_millis() as u64;
    if threshold == 0 || ms < threshold {
        return;
    }
    add_sample(event, ms, unix_secs());
}

fn add_sample(event: &str, ms: u64, now: u64) {
    let mut events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    match events.iter_mut().find(|(e, _)| e == event) {
        Some((_, s)) => s.add(now, ms),
        None => {
            let mut s = Series::new();
            s.add(now, ms);
            events.push((event.to_string(), s));
        }
    }
}

/// Every event with its series, in the order they were first seen.
pub fn events() -> Vec<(String, Series)> {
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// One event's series (names compare case-sensitively, as Redis's dict).
pub fn event(name: &[u8]) -> Option<(String, Series)> {
    events().into_iter().find(|(e, _)| e.as_bytes() == name)
}

/// LATENCY RESET: forgets one event (case-insensitively) or, with `None`,
/// all; returns how many were dropped.
pub fn reset(name: Option<&[u8]>) -> usize {
    let mut events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    let before = events.len();
    events.retain(|(e, _)| name.is_some_and(|n| !e.as_bytes().eq_ignore_ascii_case(n)));
    before - events.len()
}

/// What LATENCY DOCTOR says of one event (Redis's latencyStats).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub samples: u64,
    pub avg: u64,
    pub mad: u64,
    /// Seconds since the oldest sample (at least 1).
    pub period: u64,
}

pub fn analyze(series: &Series, now: u64) -> Stats {
    let samples = series.samples();
    if samples.is_empty() {
        return Stats::default();
    }
    let n = samples.len() as u64;
    let avg = samples.iter().map(|s| s.latency).sum::<u64>() / n;
    let oldest = samples.iter().map(|s| s.time).min().unwrap_or(now);
    let mad = samples.iter().map(|s| s.latency.abs_diff(avg)).sum::<u64>() / n;
    Stats {
        samples: n,
        avg,
        mad,
        period: now.saturating_sub(oldest).max(1),
    }
}

/// What the report's advice depends on besides the events.
pub struct Setup {
    pub slowlog_slower_than_us: i64,
    pub appendfsync_always: bool,
    pub hz: i64,
}

/// LATENCY DOCTOR's report, in Redis's words.
pub fn report(setup: &Setup) -> String {
    let events = events();
    let threshold = threshold_ms();
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let now = unix_secs();
    let mut out = String::new();
    let mut advise = Advice::default();
    for (i, (event, series)) in events.iter().enumerate() {
        if i == 0 {
            out.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let st = analyze(series, now);
        out.push_str(&format!(
            "{}. {event}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            i + 1,
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            series.max
        ));
        advise.for_event(event, setup, threshold);
        out.push('\n');
    }
    if events.is_empty() && advise.count == 0 {
        out.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if advise.count == 0 {
        out.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        out.push_str("\nI have a few advices for you:\n\n");
        advise.write(&mut out, setup, threshold);
    }
    out
}

/// Which pieces of advice the events call for.
#[derive(Default)]
struct Advice {
    count: u32,
    slowlog_enabled: bool,
    slowlog_tuning: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    disk_contention: bool,
    data_writeback: bool,
    local_disk: bool,
    ssd: bool,
    relax_fsync_policy: bool,
    hz: bool,
    large_objects: bool,
    mass_eviction: bool,
}

impl Advice {
    fn for_event(&mut self, event: &str, setup: &Setup, threshold: u64) {
        match event {
            "command" => {
                if setup.slowlog_slower_than_us < 0 {
                    self.slowlog_enabled = true;
                    self.count += 1;
                } else if setup.slowlog_slower_than_us / 1000 > threshold as i64 {
                    self.slowlog_tuning = true;
                    self.count += 1;
                }
                self.slowlog_inspect = true;
                self.large_objects = true;
                self.count += 2;
            }
            "fast-command" => {
                self.scheduler = true;
                self.count += 1;
            }
            "aof-fsync-always" => {
                self.relax_fsync_policy = true;
                self.count += 1;
            }
            "aof-write-alone" => {
                self.local_disk = true;
                self.data_writeback = true;
                self.ssd = true;
                self.count += 3;
            }
            "aof-fstat" | "rdb-unlink-temp-file" => {
                self.disk_contention = true;
                self.local_disk = true;
                self.count += 2;
            }
            "expire-cycle" => {
                self.hz = true;
                self.large_objects = true;
                self.count += 2;
            }
            "eviction-del" => {
                self.large_objects = true;
                self.count += 1;
            }
            "eviction-cycle" => {
                self.mass_eviction = true;
                self.count += 1;
            }
            _ => {}
        }
    }

    fn write(&self, out: &mut String, setup: &Setup, threshold: u64) {
        if self.slowlog_enabled {
            out.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
        }
        if self.slowlog_tuning {
            out.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
        }
        if self.slowlog_inspect {
            out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if self.scheduler {
            out.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if self.local_disk {
            out.push_str("- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote disks provided by platform-as-a-service providers are known to be slow.\n");
        }
        if self.ssd {
            out.push_str("- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a good option. However Redis should perform reasonably with high load using normal disks. Use this advice as a last resort.\n");
        }
        if self.data_writeback {
            out.push_str("- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to data=ordered, however this mode of operation provides less guarantees, and sometimes it can happen that after a hard crash the AOF file will have a half-written command at the end and will require to be repaired before Redis restarts.\n");
        }
        if self.disk_contention {
            out.push_str("- Try to lower the disk contention. This is often caused by other disk intensive processes running in the same computer (including other Redis instances).\n");
        }
        if self.relax_fsync_policy && setup.appendfsync_always {
            out.push_str("- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n");
        }
        if self.hz && setup.hz < 100 {
            out.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
        }
        if self.large_objects {
            out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if self.mass_eviction {
            out.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
        }
    }
}

/// LATENCY GRAPH: the event's samples as an ASCII sparkline, 80 columns,
/// 4 rows, labelled with how long ago each was taken.
pub fn graph(event: &str, series: &Series) -> String {
    let now = unix_secs();
    let samples = series.samples();
    let (min, max) = samples
        .iter()
        .fold(None, |acc: Option<(u64, u64)>, s| match acc {
            None => Some((s.latency, s.latency)),
            Some((lo, hi)) => Some((lo.min(s.latency), hi.max(s.latency))),
        })
        .unwrap_or((0, 0));
    let points: Vec<(f64, String)> = samples
        .iter()
        .map(|s| {
            let ago = now.saturating_sub(s.time);
            let label = if ago < 60 {
                format!("{ago}s")
            } else if ago < 3600 {
                format!("{}m", ago / 60)
            } else if ago < 86400 {
                format!("{}h", ago / 3600)
            } else {
                format!("{}d", ago / 86400)
            };
            (s.latency as f64, label)
        })
        .collect();
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        series.max
    );
    out.push_str(&"-".repeat(80));
    out.push('\n');
    sparkline(&mut out, &points, 80, 4);
    out
}

/// Renders samples as a filled ASCII sparkline of `rows` rows, `columns`
/// samples per block, with each sample's label written downwards under
/// it (the rendering Redis's LATENCY GRAPH uses).
fn sparkline(out: &mut String, points: &[(f64, String)], columns: usize, rows: usize) {
    const FILL: [u8; 3] = *b"_o#";
    let (min, max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (v, _)| {
            (lo.min(*v), hi.max(*v))
        });
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = (FILL.len() * rows) as i64;
    let labelled = points.iter().any(|(_, l)| !l.is_empty());
    for (block, chunk) in points.chunks(columns).enumerate() {
        if block > 0 {
            out.push('\n');
        }
        let mut row = 0;
        loop {
            let mut line = vec![b' '; chunk.len()];
            let mut more = false;
            for (j, (value, label)) in chunk.iter().enumerate() {
                let step = (((value - min) * steps as f64) / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    more = true;
                    let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                    if (0..FILL.len() as i64).contains(&idx) {
                        line[j] = FILL[idx as usize];
                    } else if idx >= FILL.len() as i64 {
                        line[j] = b'|';
                    }
                } else {
                    // One blank row between the graph and the labels.
                    if labelled && row - rows < 1 {
                        more = true;
                        break;
                    }
                    let at = row - rows - 1;
                    if let Some(&c) = label.as_bytes().get(at) {
                        more = true;
                        line[j] = c;
                    }
                }
            }
            if !more {
                break;
            }
            row += 1;
            out.push_str(&String::from_utf8_lossy(&line));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_the_worst() {
        let mut s = Series::new();
        s.add(100, 5);
        s.add(100, 9);
        s.add(100, 3);
        s.add(101, 4);
        assert_eq!(
            s.samples(),
            vec![
                Sample {
                    time: 100,
                    latency: 9
                },
                Sample {
                    time: 101,
                    latency: 4
                }
            ]
        );
        assert_eq!(s.max, 9);
        assert_eq!(s.latest().latency, 4);
        for t in 0..200 {
            s.add(1000 + t, 1);
        }
        assert_eq!(s.samples().len(), SERIES_LEN);
        assert_eq!(s.samples()[0].time, 1040);
        assert_eq!(s.max, 9);
    }

    #[test]
    fn doctor_statistics_are_redis_s() {
        let mut s = Series::new();
        s.add(100, 50);
        s.add(102, 20);
        let st = analyze(&s, 102);
        assert_eq!(
            st,
            Stats {
                samples: 2,
                avg: 35,
                mad: 15,
                period: 2
            }
        );
    }

    #[test]
    fn sparkline_matches_redis_s_rendering() {
        // Redis 7.0 drew this for samples of 50 and 20 ms taken 2 s and
        // 0 s ago.
        let mut out = String::new();
        sparkline(&mut out, &[(50.0, "2s".into()), (20.0, "0s".into())], 80, 4);
        assert_eq!(out, "# \n| \n| \n|_\n  \n20\nss\n");
    }
}
