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

use super::copy::LatestValue;
use crate::health;
use crate::store::SeriesKey;

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

/// Whether a metric is derived from access logs (and so describes a past
/// second rather than the sampling instant).
pub fn is_log_metric(name: &str) -> bool {
    name.starts_with("http_")
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
    /// The last instant the value is fresh.
    pub fn fresh_until(&self, v: &LatestValue) -> i64 {
        if is_log_metric(&v.key.name) {
            v.updated_ms
                .saturating_add(log_stale_after_ms(self.interval_ms))
        } else {
            health::value_fresh_until(v.updated_ms, self.interval_ms)
        }
    }

    /// Whether the value counts now.
    pub fn is_fresh(&self, v: &LatestValue) -> bool {
        self.alive && v.updated_ms > 0 && self.now_ms <= self.fresh_until(v)
    }
}

/// The values of series `name` (any labels) among `values`, which are
/// sorted by key.
fn named<'a>(
    values: &'a [LatestValue],
    name: &'a str,
) -> impl Iterator<Item = &'a LatestValue> + 'a {
    let start = values.partition_point(|v| v.key.name.as_str() < name);
    values[start..]
        .iter()
        .take_while(move |v| v.key.name == name)
}

/// The value of the unlabelled series `name`.
fn scalar<'a>(values: &'a [LatestValue], name: &'a str) -> Option<&'a LatestValue> {
    named(values, name).find(|v| v.key.labels.is_empty())
}

/// The sum of `values`, or `None` when there are none: unknown, never 0.
fn sum_known(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values = values.peekable();
    values.peek()?;
    Some(values.sum())
}

/// The node's request rate from its access logs: the sum of the newest
/// point of every `http_requests_per_second` series among `values`.
pub fn qps<'a>(values: impl IntoIterator<Item = &'a LatestValue>) -> Option<f64> {
    sum_known(
        values
            .into_iter()
            .filter(|v| v.key.name == metrics::HTTP_REQUESTS)
            .map(|v| v.value),
    )
}

/// The summary of a node from the values `counts` accepts (the fresh ones
/// for `summary`, all of them for `last_summary`); `values` sorted by key.
pub fn summarize(values: &[LatestValue], counts: impl Fn(&LatestValue) -> bool) -> NodeSummary {
    let counted: Vec<&LatestValue> = values.iter().filter(|v| counts(v)).collect();
    // `counted` keeps `values`' order, so the same lookups work on it.
    let find = |name: &str| -> Option<&LatestValue> {
        let start = counted.partition_point(|v| v.key.name.as_str() < name);
        counted[start..]
            .iter()
            .take_while(|v| v.key.name == name)
            .find(|v| v.key.labels.is_empty())
            .copied()
    };
    let value = |name: &str| find(name).map(|v| v.value);
    let sum = |name: &str, include: &dyn Fn(&SeriesKey) -> bool| -> Option<f64> {
        let start = counted.partition_point(|v| v.key.name.as_str() < name);
        sum_known(
            counted[start..]
                .iter()
                .take_while(|v| v.key.name == name)
                .filter(|v| include(&v.key))
                .map(|v| v.value),
        )
    };
    let all = |_: &SeriesKey| true;
    let not_loopback = |k: &SeriesKey| {
        !k.label(metrics::label::DEVICE)
            .is_some_and(metrics::is_loopback)
    };
    let memory_used = value(metrics::MEMORY_USED);
    let memory_total = value(metrics::MEMORY_TOTAL);
    // The sampling instant of the system values: the newest among them.
    let timestamp_ms = [
        metrics::CPU_USAGE,
        metrics::MEMORY_USED,
        metrics::LOAD1,
        metrics::UPTIME,
    ]
    .iter()
    .filter_map(|name| find(name).map(|v| v.timestamp_ms))
    .max()
    .unwrap_or(0);
    let requests = || {
        let start = counted.partition_point(|v| v.key.name.as_str() < metrics::HTTP_REQUESTS);
        counted[start..]
            .iter()
            .take_while(|v| v.key.name == metrics::HTTP_REQUESTS)
            .copied()
    };
    NodeSummary {
        cpu_usage_ratio: value(metrics::CPU_USAGE),
        memory_used_ratio: metrics::memory_used_ratio(memory_used, memory_total),
        memory_used_bytes: memory_used,
        memory_total_bytes: memory_total,
        load1: value(metrics::LOAD1),
        load5: value(metrics::LOAD5),
        load15: value(metrics::LOAD15),
        network_receive_bytes_per_second: sum(metrics::NETWORK_RECEIVE, &not_loopback),
        network_transmit_bytes_per_second: sum(metrics::NETWORK_TRANSMIT, &not_loopback),
        qps: qps(requests()),
        uptime_seconds: value(metrics::UPTIME),
        processes: value(metrics::PROCESSES),
        swap_used_bytes: value(metrics::SWAP_USED).or_else(|| value("node_memory_swap_used_bytes")),
        swap_total_bytes: value(metrics::SWAP_TOTAL)
            .or_else(|| value("node_memory_swap_total_bytes")),
        disk_read_bytes_per_second: sum(metrics::DISK_READ, &all),
        disk_written_bytes_per_second: sum(metrics::DISK_WRITTEN, &all),
        replication_lag_seconds: value(metrics::MYSQL_REPLICATION_LAG),
        timestamp_ms,
        qps_timestamp_ms: requests().map(|v| v.timestamp_ms).min().unwrap_or(0),
    }
}

/// The fresh value of the unlabelled series `name`, if any.
pub fn fresh_scalar(values: &[LatestValue], name: &str, fresh: &Freshness) -> Option<f64> {
    scalar(values, name)
        .filter(|v| fresh.is_fresh(v))
        .map(|v| v.value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use stacktop_proto::v1::Label;

    const T0: i64 = 1_700_000_000_000;

    /// Values pushed at `ts` that also arrived at `ts`.
    fn put(values: &mut Vec<LatestValue>, name: &str, labels: &[(&str, &str)], ts: i64, v: f64) {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        let key = Arc::new(SeriesKey::new(name, &labels));
        values.retain(|x| x.key != key);
        values.push(LatestValue {
            key,
            timestamp_ms: ts,
            value: v,
            updated_ms: ts,
        });
        values.sort_by(|a, b| a.key.cmp(&b.key));
    }

    fn alive(now_ms: i64, interval_ms: u32) -> Freshness {
        Freshness {
            now_ms,
            interval_ms,
            alive: true,
        }
    }

    fn fresh_summary(values: &[LatestValue], f: Freshness) -> NodeSummary {
        summarize(values, |v| f.is_fresh(v))
    }

    fn node_qps(values: &[LatestValue], now_ms: i64, interval_ms: u32) -> Option<f64> {
        let f = alive(now_ms, interval_ms);
        qps(values.iter().filter(|v| f.is_fresh(v)))
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

    fn log_second(m: &mut Vec<LatestValue>, source: &str, ts: i64, counts: [f64; 5]) {
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
        assert_eq!(fresh_summary(&m, down), NodeSummary::default());
        // Everything, for last_summary, with the newest sample time.
        let last = summarize(&m, |_| true);
        assert_eq!(last.cpu_usage_ratio, Some(0.5));
        assert_eq!(last.timestamp_ms, T0 + 5_000);
    }
}
