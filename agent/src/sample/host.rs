//! Whole-host numbers: load averages, uptime and the process count.
//!
//! The process count is the number of numeric entries in `/proc`, read
//! every [`PROCESS_COUNT_EVERY`] rather than every tick: a full process
//! scan is the most expensive thing a sampler can do, and the count moves
//! slowly. The last count is reported every tick so it never goes stale.

use std::time::{Duration, Instant};

use stacktop_proto::metrics;
use stacktop_proto::v1::Point;
use sysinfo::System;

use super::push;
use crate::series::SeriesTable;

/// How often `/proc` is listed to count processes.
pub const PROCESS_COUNT_EVERY: Duration = Duration::from_secs(10);

/// The host part of the sampler.
#[derive(Debug)]
pub struct Host {
    load1: u32,
    load5: u32,
    load15: u32,
    uptime: u32,
    processes: u32,
    process_count: Option<u64>,
    counted_at: Option<Instant>,
}

impl Host {
    /// A host sampler interning into `series`.
    pub fn new(series: &SeriesTable) -> Self {
        Self {
            load1: series.intern(metrics::LOAD1, &[]),
            load5: series.intern(metrics::LOAD5, &[]),
            load15: series.intern(metrics::LOAD15, &[]),
            uptime: series.intern(metrics::UPTIME, &[]),
            processes: series.intern(metrics::PROCESSES, &[]),
            process_count: None,
            counted_at: None,
        }
    }

    /// Appends load, uptime and process-count points.
    pub fn sample(&mut self, now: Instant, out: &mut Vec<Point>) {
        if let Ok(load) = System::load_average() {
            push(out, self.load1, load.one);
            push(out, self.load5, load.five);
            push(out, self.load15, load.fifteen);
        }
        if let Ok(uptime) = System::uptime()
            && uptime > 0
        {
            push(out, self.uptime, uptime as f64);
        }
        let due = self
            .counted_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PROCESS_COUNT_EVERY);
        if due {
            self.counted_at = Some(now);
            self.process_count = count_processes();
        }
        if let Some(count) = self.process_count {
            push(out, self.processes, count as f64);
        }
    }
}

/// Counts the numeric directory names in `/proc`, one per process.
fn count_processes() -> Option<u64> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let count = dir
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .count();
    (count > 0).then_some(count as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn counts_at_least_this_process() {
        assert!(super::count_processes().unwrap() >= 1);
    }
}
