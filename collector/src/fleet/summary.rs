//! The numbers a dashboard row shows ([`NodeSummary`]), derived from a
//! node's latest values by metric name, and the freshness rule that decides
//! which values still count.
//!
//! # Freshness
//!
//! A value is judged by when it *arrived* (the collector's clock), not by
//! the agent's timestamp, so an agent whose clock is off is not made stale
//! (or fresh) by it. A system value is fresh within the node's liveness
//! window (3 intervals, see [`crate::health`]); a log-derived value within
//! [`log_stale_after_ms`] (a log second is reported once complete, 1 to 3 s
//! late). Nothing of a down node is fresh. A stale value is unknown: it
//! leaves the summary and only shows in `last_summary`, with its time.
//!
//! # Derivations
//!
//! Scalar metrics (CPU, memory, load, uptime, processes, swap, replication
//! lag) are read from the series of that name carrying **no labels**;
//! per-core CPU series carry a `cpu` label and are ignored here. Summed
//! metrics add the latest value of every series of the name:
//!
//! - network receive/transmit over every `device` except loopback
//!   ([`metrics::is_loopback`]);
//! - QPS: `http_requests_per_second` over all its label sets: the agent
//!   reports a log second once it is complete, with all classes of a source
//!   (zeros included) in the same batch, so the newest point of each series
//!   of one source is the same, latest complete second;
//! - disk over all devices.
//!
//! A value never reported stays `None` (unknown), never 0; a sum over no
//! series is unknown too. Swap is read from `node_swap_*_bytes`, or from
//! `node_memory_swap_*_bytes` when those are what the agent sends.

use stacktop_proto::metrics;
use stacktop_proto::v1::NodeSummary;

use super::copy::SlotValue;
use crate::health;
use crate::slot::Slot;

/// A log series whose newest point is older than this many intervals (plus
/// [`LOG_STALE_GRACE_MS`]) no longer counts.
pub const LOG_STALE_INTERVALS: i64 = 3;

/// Extra allowance on top of [`LOG_STALE_INTERVALS`]: a log point describes
/// a second that ended 1 to 3 s before the batch carrying it was sent.
pub const LOG_STALE_GRACE_MS: i64 = 4_000;

/// Never call a log series stale sooner than this (10 s).
pub const LOG_STALE_MIN_MS: i64 = 10_000;

/// How long (ms) after its last point arrived a log series still counts,
/// for an agent sending every `interval_ms`.
pub fn log_stale_after_ms(interval_ms: u32) -> i64 {
    (LOG_STALE_INTERVALS * i64::from(interval_ms) + LOG_STALE_GRACE_MS).max(LOG_STALE_MIN_MS)
}

/// Which values of one node count at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The instant (collector clock, Unix ms).
    pub now_ms: i64,
    /// The node's interval.
    pub interval_ms: u32,
    /// False when the node is down: nothing of it is fresh.
    pub alive: bool,
}

impl Freshness {
    /// The last instant a value that arrived at `updated_ms` is fresh; log
    /// values (`is_log`) get the log window.
    pub fn fresh_until(&self, is_log: bool, updated_ms: i64) -> i64 {
        if is_log {
            updated_ms.saturating_add(log_stale_after_ms(self.interval_ms))
        } else {
            health::value_fresh_until(updated_ms, self.interval_ms)
        }
    }

    /// Whether a value that arrived at `updated_ms` counts now.
    pub fn is_fresh(&self, is_log: bool, updated_ms: i64) -> bool {
        self.alive && updated_ms > 0 && self.now_ms <= self.fresh_until(is_log, updated_ms)
    }

    /// Whether `v` counts now.
    pub fn counts(&self, v: &SlotValue) -> bool {
        self.is_fresh(v.slot.is_log(), v.updated_ms)
    }
}

/// A summary being added up.
#[derive(Debug, Default)]
struct Sum {
    s: NodeSummary,
    swap_used_legacy: Option<f64>,
    swap_total_legacy: Option<f64>,
    qps_ms: Option<i64>,
}

impl Sum {
    fn add(&mut self, v: &SlotValue) {
        let s = &mut self.s;
        let value = Some(v.value);
        let system = |s: &mut NodeSummary| s.timestamp_ms = s.timestamp_ms.max(v.timestamp_ms);
        match &v.slot {
            Slot::Cpu => {
                s.cpu_usage_ratio = value;
                system(s);
            }
            Slot::MemoryUsed => {
                s.memory_used_bytes = value;
                system(s);
            }
            Slot::MemoryTotal => s.memory_total_bytes = value,
            Slot::Load1 => {
                s.load1 = value;
                system(s);
            }
            Slot::Load5 => s.load5 = value,
            Slot::Load15 => s.load15 = value,
            Slot::Uptime => {
                s.uptime_seconds = value;
                system(s);
            }
            Slot::Processes => s.processes = value,
            Slot::SwapUsed => s.swap_used_bytes = value,
            Slot::SwapTotal => s.swap_total_bytes = value,
            Slot::SwapUsedLegacy => self.swap_used_legacy = value,
            Slot::SwapTotalLegacy => self.swap_total_legacy = value,
            Slot::ReplicationLag => s.replication_lag_seconds = value,
            Slot::NetworkReceive => add(&mut s.network_receive_bytes_per_second, v.value),
            Slot::NetworkTransmit => add(&mut s.network_transmit_bytes_per_second, v.value),
            Slot::DiskRead => add(&mut s.disk_read_bytes_per_second, v.value),
            Slot::DiskWritten => add(&mut s.disk_written_bytes_per_second, v.value),
            Slot::Requests { .. } => {
                add(&mut s.qps, v.value);
                self.qps_ms = Some(
                    self.qps_ms
                        .map_or(v.timestamp_ms, |t| t.min(v.timestamp_ms)),
                );
            }
            Slot::Duration { .. } | Slot::HealthChecks { .. } | Slot::Watched | Slot::Other => {}
        }
    }

    fn finish(self) -> NodeSummary {
        let mut s = self.s;
        s.memory_used_ratio = metrics::memory_used_ratio(s.memory_used_bytes, s.memory_total_bytes);
        s.swap_used_bytes = s.swap_used_bytes.or(self.swap_used_legacy);
        s.swap_total_bytes = s.swap_total_bytes.or(self.swap_total_legacy);
        s.qps_timestamp_ms = self.qps_ms.unwrap_or(0);
        s
    }
}

/// Adds to a sum that is unknown until its first value: a sum over no
/// series is unknown, never 0.
fn add(sum: &mut Option<f64>, value: f64) {
    *sum.get_or_insert(0.0) += value;
}

/// The summary of a node's values in one pass: `(fresh, all)`, the first
/// from the values that count now (the summary readers get), the second
/// from every value (what was last known, for `last_summary`).
pub fn summarize<'a>(
    values: impl IntoIterator<Item = &'a SlotValue>,
    fresh: &Freshness,
) -> (NodeSummary, NodeSummary) {
    let (mut now, mut all) = (Sum::default(), Sum::default());
    for v in values {
        all.add(v);
        if fresh.counts(v) {
            now.add(v);
        }
    }
    (now.finish(), all.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SeriesKey;
    use stacktop_proto::v1::Label;

    const T0: i64 = 1_700_000_000_000;

    /// A value sampled at `ts` that also arrived at `ts`, replacing the
    /// series' previous one; series without a slot are not copied.
    fn put(
        values: &mut Vec<(SeriesKey, SlotValue)>,
        name: &str,
        labels: &[(&str, &str)],
        ts: i64,
        v: f64,
    ) {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        let key = SeriesKey::new(name, &labels);
        values.retain(|(k, _)| *k != key);
        let slot = Slot::of(&key);
        if slot != Slot::Other {
            values.push((
                key,
                SlotValue {
                    slot,
                    key: None,
                    timestamp_ms: ts,
                    value: v,
                    updated_ms: ts,
                },
            ));
        }
    }

    fn alive(now_ms: i64, interval_ms: u32) -> Freshness {
        Freshness {
            now_ms,
            interval_ms,
            alive: true,
        }
    }

    fn fresh_summary(values: &[(SeriesKey, SlotValue)], f: Freshness) -> NodeSummary {
        summarize(values.iter().map(|(_, v)| v), &f).0
    }

    fn node_qps(values: &[(SeriesKey, SlotValue)], now_ms: i64, interval_ms: u32) -> Option<f64> {
        fresh_summary(values, alive(now_ms, interval_ms)).qps
    }

    #[test]
    fn nothing_reported_means_everything_unknown() {
        assert_eq!(fresh_summary(&[], alive(T0, 1_000)), NodeSummary::default());
    }

    #[test]
    fn derives_from_latest_values() {
        let mut m = Vec::new();
        put(&mut m, metrics::CPU_USAGE, &[], T0, 0.25);
        put(&mut m, metrics::CPU_USAGE, &[("cpu", "0")], T0, 0.9);
        put(&mut m, "node_memory_used_bytes", &[], T0, 1.0e9);
        put(&mut m, "node_memory_total_bytes", &[], T0, 4.0e9);
        put(&mut m, "node_load1", &[], T0, 1.5);
        let rx = "node_network_receive_bytes_per_second";
        put(&mut m, rx, &[("device", "eth0")], T0, 100.0);
        put(&mut m, rx, &[("device", "eth1")], T0, 50.0);
        put(&mut m, rx, &[("device", "lo")], T0, 1.0e6);
        put(&mut m, rx, &[("device", "lo0")], T0, 1.0e6);
        let http = "http_requests_per_second";
        put(&mut m, http, &[("source", "a"), ("class", "2xx")], T0, 10.0);
        put(&mut m, http, &[("source", "a"), ("class", "5xx")], T0, 2.0);
        let read = "node_disk_read_bytes_per_second";
        put(&mut m, read, &[("device", "sda")], T0, 7.0);
        put(&mut m, "node_swap_total_bytes", &[], T0, 0.0);
        let s = fresh_summary(&m, alive(T0 + 1_000, 1_000));
        assert_eq!(s.cpu_usage_ratio, Some(0.25));
        assert_eq!(s.memory_used_ratio, Some(0.25));
        assert_eq!(s.memory_total_bytes, Some(4.0e9));
        assert_eq!(s.load1, Some(1.5));
        assert_eq!(s.load5, None);
        assert_eq!(s.network_receive_bytes_per_second, Some(150.0));
        assert_eq!(s.network_transmit_bytes_per_second, None);
        assert_eq!(s.qps, Some(12.0));
        assert_eq!(s.disk_read_bytes_per_second, Some(7.0));
        assert_eq!(s.disk_written_bytes_per_second, None);
        // A reported zero is a value, not unknown.
        assert_eq!(s.swap_total_bytes, Some(0.0));
        assert_eq!(s.swap_used_bytes, None);
        assert_eq!(s.uptime_seconds, None);
        assert_eq!(s.timestamp_ms, T0);
    }

    fn log_second(m: &mut Vec<(SeriesKey, SlotValue)>, source: &str, ts: i64, counts: [f64; 5]) {
        for (class, v) in metrics::ALL_CLASSES.iter().zip(counts) {
            put(
                m,
                metrics::HTTP_REQUESTS,
                &[("source", source), ("class", class)],
                ts,
                v,
            );
        }
    }

    #[test]
    fn qps_sums_the_latest_second_of_every_source() {
        let mut m = Vec::new();
        log_second(&mut m, "nginx", T0, [90.0, 5.0, 4.0, 1.0, 0.0]);
        log_second(&mut m, "nginx", T0 + 1_000, [80.0, 5.0, 4.0, 1.0, 0.0]);
        log_second(&mut m, "api", T0 + 1_000, [10.0, 0.0, 0.0, 0.0, 0.0]);
        // Points describe a second 1-3 s back: still fresh.
        assert_eq!(node_qps(&m, T0 + 4_000, 1_000), Some(100.0));
        // A source that reports zeros is known and idle, not unknown.
        log_second(&mut m, "api", T0 + 2_000, [0.0; 5]);
        log_second(&mut m, "nginx", T0 + 2_000, [0.0; 5]);
        assert_eq!(node_qps(&m, T0 + 4_000, 1_000), Some(0.0));
        // Other metrics never count.
        put(
            &mut m,
            "http_request_duration_seconds",
            &[("quantile", "0.5")],
            T0,
            9.0,
        );
        assert_eq!(node_qps(&m, T0 + 4_000, 1_000), Some(0.0));
    }

    #[test]
    fn a_source_that_stops_reporting_drops_out_of_qps() {
        let mut m = Vec::new();
        log_second(&mut m, "old", T0, [50.0, 0.0, 0.0, 0.0, 0.0]);
        log_second(&mut m, "live", T0 + 20_000, [7.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(log_stale_after_ms(1_000), LOG_STALE_MIN_MS);
        assert_eq!(node_qps(&m, T0 + 10_000, 1_000), Some(57.0));
        assert_eq!(node_qps(&m, T0 + 10_001, 1_000), Some(7.0));
        // Nothing fresh at all: unknown.
        assert_eq!(node_qps(&m, T0 + 40_000, 1_000), None);
        // A slow agent (10 s interval) gets 3 intervals + grace.
        assert_eq!(log_stale_after_ms(10_000), 34_000);
        assert_eq!(node_qps(&m, T0 + 34_000, 10_000), Some(57.0));
    }

    #[test]
    fn memory_ratio_needs_a_positive_total() {
        let mut m = Vec::new();
        put(&mut m, "node_memory_used_bytes", &[], T0, 1.0);
        assert_eq!(fresh_summary(&m, alive(T0, 1_000)).memory_used_ratio, None);
        put(&mut m, "node_memory_total_bytes", &[], T0, 0.0);
        assert_eq!(fresh_summary(&m, alive(T0, 1_000)).memory_used_ratio, None);
    }

    #[test]
    fn stale_values_leave_the_summary_and_a_down_node_has_none() {
        let mut m = Vec::new();
        put(&mut m, metrics::CPU_USAGE, &[], T0, 0.5);
        put(&mut m, metrics::LOAD1, &[], T0 + 5_000, 1.0);
        // 1 s interval: the CPU value arrived 6 s ago, the load 1 s ago.
        let s = fresh_summary(&m, alive(T0 + 6_000, 1_000));
        assert_eq!(s.cpu_usage_ratio, None);
        assert_eq!(s.load1, Some(1.0));
        let down = Freshness {
            alive: false,
            ..alive(T0 + 5_000, 1_000)
        };
        let (now, last) = summarize(m.iter().map(|(_, v)| v), &down);
        assert_eq!(now, NodeSummary::default());
        // Everything, for last_summary, with the newest sample time.
        assert_eq!(last.cpu_usage_ratio, Some(0.5));
        assert_eq!(last.timestamp_ms, T0 + 5_000);
    }
}
