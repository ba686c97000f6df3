//! Per-command latency histograms for `INFO latencystats`
//! (`latency-tracking yes`, Redis 7's default).
//!
//! Each shard records the commands its connections ran, like Redis: the
//! duration in nanoseconds in an HDR histogram of range 1 ns..1 s with 2
//! significant digits (values outside are clamped), printed in
//! microseconds. Redis measures in whole microseconds (so a fast command
//! shows 0.001 or 1.003); we record the nanoseconds we measured. A histogram is allocated on a command's first call (about
//! 24 KB); INFO merges the shards' histograms.
//!
//! Owns only the histograms; knows nothing of commands beyond their ids.

use hdrhistogram::Histogram;

const LOWEST_NS: u64 = 1;
const HIGHEST_NS: u64 = 1_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 2;

#[derive(Default, Clone)]
pub struct CommandLatency {
    /// Indexed by command id.
    by_command: Vec<Option<Box<Histogram<u64>>>>,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

impl CommandLatency {
    /// Records one call of command `id` that took `ns` nanoseconds.
    pub fn record(&mut self, id: usize, ns: u64) {
        if self.by_command.len() <= id {
            self.by_command.resize_with(id + 1, || None);
        }
        let h = self.by_command[id].get_or_insert_with(|| Box::new(new_histogram()));
        let ns = ns.clamp(LOWEST_NS, HIGHEST_NS);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = h.record(ns);
    }

    /// Adds another shard's histograms into these.
    pub fn merge(&mut self, other: &CommandLatency) {
        if self.by_command.len() < other.by_command.len() {
            self.by_command.resize_with(other.by_command.len(), || None);
        }
        for (mine, theirs) in self.by_command.iter_mut().zip(&other.by_command) {
            if let Some(theirs) = theirs {
                let h = mine.get_or_insert_with(|| Box::new(new_histogram()));
                // Same bounds on both sides: adding cannot fail.
                let _ = h.add(theirs.as_ref());
            }
        }
    }

    /// Commands with at least one recorded call, in id order, with the
    /// microseconds at each of `percentiles` (0..=100).
    pub fn percentiles(&self, percentiles: &[f64]) -> Vec<(usize, Vec<f64>)> {
        self.by_command
            .iter()
            .enumerate()
            .filter_map(|(id, h)| {
                let h = h.as_ref().filter(|h| !h.is_empty())?;
                let values = percentiles
                    .iter()
                    .map(|p| h.value_at_percentile(*p) as f64 / 1000.0)
                    .collect();
                Some((id, values))
            })
            .collect()
    }

    /// LATENCY HISTOGRAM of command `id`: its calls, and for each
    /// power-of-two bucket from 1024 ns (in microseconds) the calls up to
    /// it, buckets that add none left out.
    pub fn cumulative(&self, id: usize) -> Option<(u64, Vec<(u64, u64)>)> {
        let h = self
            .by_command
            .get(id)?
            .as_ref()
            .filter(|h| !h.is_empty())?;
        let (mut total, mut buckets) = (0, Vec::new());
        for v in h.iter_log(1024, 2.0) {
            let before = total;
            total += v.count_since_last_iteration();
            if total > before {
                buckets.push((h.highest_equivalent(v.value_iterated_to()) / 1000, total));
            }
        }
        Some((h.len(), buckets))
    }

    pub fn clear(&mut self) {
        self.by_command.clear();
    }
}

/// A percentile as Redis names it: `%f` with trailing zeros (and a
/// trailing point) removed, so `50`, `99`, `99.9`.
pub fn percentile_name(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_merge_across_shards() {
        let mut a = CommandLatency::default();
        let mut b = CommandLatency::default();
        for _ in 0..98 {
            a.record(3, 10_000);
        }
        b.record(3, 1_000_000);
        b.record(3, 1_000_000);
        b.record(7, 0);
        a.merge(&b);
        let p = a.percentiles(&[50.0, 99.0, 100.0]);
        assert_eq!(p.len(), 2);
        let (id, v) = &p[0];
        assert_eq!(*id, 3);
        // 2 significant digits: within 1% of the recorded value.
        assert!((v[0] - 10.0).abs() <= 0.1, "{v:?}");
        assert!((v[1] - 1000.0).abs() <= 10.0, "{v:?}");
        assert!((v[2] - 1000.0).abs() <= 10.0, "{v:?}");
        // A 0 ns call is clamped to the lowest value, 1 ns.
        assert_eq!(p[1], (7, vec![0.001, 0.001, 0.001]));
    }

    #[test]
    fn huge_durations_are_clamped() {
        let mut a = CommandLatency::default();
        a.record(0, u64::MAX);
        let v = a.percentiles(&[50.0])[0].1[0];
        assert!((v - 1_000_000.0).abs() <= 10_000.0, "{v}");
    }

    #[test]
    fn names_like_redis() {
        assert_eq!(percentile_name(50.0), "50");
        assert_eq!(percentile_name(99.9), "99.9");
        assert_eq!(percentile_name(99.99), "99.99");
        assert_eq!(percentile_name(0.0), "0");
    }
}
