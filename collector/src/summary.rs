//! The numbers a dashboard row shows ([`NodeSummary`]), derived from a
//! node's latest values by metric name.
//!
//! Scalar metrics (CPU, memory, load, uptime, processes, swap) are read from
//! the series of that name carrying **no labels**; per-core CPU series carry
//! a `cpu` label and are ignored here. Summed metrics add the latest value of
//! every series of the name:
//!
//! - network receive/transmit: `node_network_{receive,transmit}_bytes_per_second`
//!   over every `device` except loopback (`lo` and names starting with `lo`);
//! - QPS: `http_requests_per_second` over all its label sets (see [`qps`]
//!   for which points count);
//! - disk: `node_disk_{read,written}_bytes_per_second` over all devices.
//!
//! A value the node never reported stays `None` (unknown), never 0; a sum
//! over no series is unknown too. Swap is read from `node_swap_used_bytes` /
//! `node_swap_total_bytes`, or from `node_memory_swap_used_bytes` /
//! `node_memory_swap_total_bytes` when those are what the agent sends.

use std::collections::BTreeMap;

use stacktop_proto::v1::NodeSummary;

use crate::series::Series;
use crate::store::SeriesKey;

/// Total CPU usage ratio (0..=1), without labels.
pub const CPU: &str = "node_cpu_usage_ratio";
/// How many CPU samples `cpu_recent` carries at most.
pub const CPU_RECENT: usize = 120;

/// Per-second request rates from access logs, by `source` and `class`.
pub const HTTP_REQUESTS: &str = "http_requests_per_second";

/// A log series whose newest point is older than this many intervals (plus
/// [`LOG_STALE_GRACE_MS`]) no longer counts towards QPS.
pub const LOG_STALE_INTERVALS: i64 = 3;

/// Extra allowance on top of [`LOG_STALE_INTERVALS`]: a log point describes
/// a second that ended 1 to 3 s before the batch carrying it was sent.
pub const LOG_STALE_GRACE_MS: i64 = 4_000;

/// Never call a log series stale sooner than this (10 s).
pub const LOG_STALE_MIN_MS: i64 = 10_000;

/// How old (ms) the newest point of a log series may be at most to count,
/// for an agent sending every `interval_ms`.
pub fn log_stale_after_ms(interval_ms: u32) -> i64 {
    (LOG_STALE_INTERVALS * i64::from(interval_ms) + LOG_STALE_GRACE_MS).max(LOG_STALE_MIN_MS)
}

/// The node's request rate from its access logs at `now_ms`: the sum of
/// the newest point of every `http_requests_per_second` series (all
/// sources, all classes) that is not stale.
///
/// - **One second, not a mix.** The agent reports a log second once it is
///   complete, with all five classes of a source (zeros included) in the
///   same batch, stamped with that second. The newest point of each series
///   of one source is therefore the same, latest complete second; sources
///   are independent files, so each contributes its own latest second.
/// - **Stale sources drop out.** A source whose newest point is older than
///   [`log_stale_after_ms`] (the file went away, the tailer is stuck) stops
///   counting instead of repeating its last rate forever. An idle site still
///   reports zeros every second, so staleness means "no longer known".
/// - `None` when no series is fresh: unknown, never 0.
pub fn qps(series: &BTreeMap<SeriesKey, Series>, now_ms: i64, interval_ms: u32) -> Option<f64> {
    sum_known(
        fresh_request_series(series, now_ms, interval_ms)
            .filter_map(|s| s.latest().map(|(_, v)| v)),
    )
}

/// Every `http_requests_per_second` series whose newest point is not stale.
fn fresh_request_series(
    series: &BTreeMap<SeriesKey, Series>,
    now_ms: i64,
    interval_ms: u32,
) -> impl Iterator<Item = &Series> {
    let oldest = now_ms - log_stale_after_ms(interval_ms);
    let start = SeriesKey {
        name: HTTP_REQUESTS.to_string(),
        labels: Vec::new(),
    };
    series
        .range(start..)
        .take_while(|(k, _)| k.name == HTTP_REQUESTS)
        .map(|(_, s)| s)
        .filter(move |s| s.latest().is_some_and(|(ts, _)| ts >= oldest))
}

/// The sum of `values`, or `None` when there are none: unknown, never 0.
fn sum_known(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values = values.peekable();
    values.peek()?;
    Some(values.sum())
}

/// Seconds the web-vs-LB traffic comparison averages over.
pub const TRAFFIC_WINDOW_SECONDS: usize = 10;

/// The node's log-derived request rate averaged over its last `seconds`
/// reported seconds, per fresh series (as [`qps`] decides freshness).
///
/// Comparing two tiers second by second is noisy: HAProxy stamps a request
/// when it accepted it, Nginx when it finished, so requests near a second's
/// edge land in different seconds on the two sides. Over ten seconds that
/// edge effect is a few percent at most.
pub fn qps_mean(
    series: &BTreeMap<SeriesKey, Series>,
    now_ms: i64,
    interval_ms: u32,
    seconds: usize,
) -> Option<f64> {
    sum_known(
        fresh_request_series(series, now_ms, interval_ms).filter_map(|s| {
            let (sum, n) = s
                .last_values(seconds)
                .fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        }),
    )
}

/// The summary of a node from its series at `now_ms`, for an agent sending
/// every `interval_ms` (which decides when log rates are stale).
pub fn summarize(
    series: &BTreeMap<SeriesKey, Series>,
    now_ms: i64,
    interval_ms: u32,
) -> NodeSummary {
    let scalar = |name: &str| -> Option<f64> {
        let key = SeriesKey {
            name: name.to_string(),
            labels: Vec::new(),
        };
        series.get(&key)?.latest().map(|(_, v)| v)
    };
    let sum = |name: &str, include: &dyn Fn(&SeriesKey) -> bool| -> Option<f64> {
        sum_known(
            series
                .iter()
                .filter(|(k, _)| k.name == name && include(k))
                .filter_map(|(_, s)| s.latest().map(|(_, v)| v)),
        )
    };
    let all = |_: &SeriesKey| true;
    let not_loopback = |k: &SeriesKey| !k.label("device").is_some_and(|d| d.starts_with("lo"));

    let memory_used = scalar("node_memory_used_bytes");
    let memory_total = scalar("node_memory_total_bytes");
    let memory_used_ratio = match (memory_used, memory_total) {
        (Some(used), Some(total)) if total > 0.0 => Some(used / total),
        _ => None,
    };
    NodeSummary {
        cpu_usage_ratio: scalar(CPU),
        memory_used_ratio,
        memory_used_bytes: memory_used,
        memory_total_bytes: memory_total,
        load1: scalar("node_load1"),
        load5: scalar("node_load5"),
        load15: scalar("node_load15"),
        network_receive_bytes_per_second: sum(
            "node_network_receive_bytes_per_second",
            &not_loopback,
        ),
        network_transmit_bytes_per_second: sum(
            "node_network_transmit_bytes_per_second",
            &not_loopback,
        ),
        qps: qps(series, now_ms, interval_ms),
        uptime_seconds: scalar("node_uptime_seconds"),
        processes: scalar("node_processes"),
        swap_used_bytes: scalar("node_swap_used_bytes")
            .or_else(|| scalar("node_memory_swap_used_bytes")),
        swap_total_bytes: scalar("node_swap_total_bytes")
            .or_else(|| scalar("node_memory_swap_total_bytes")),
        disk_read_bytes_per_second: sum("node_disk_read_bytes_per_second", &all),
        disk_written_bytes_per_second: sum("node_disk_written_bytes_per_second", &all),
        ..Default::default()
    }
}

/// The last [`CPU_RECENT`] total CPU values, oldest first.
pub fn cpu_recent(series: &BTreeMap<SeriesKey, Series>) -> Vec<f64> {
    let key = SeriesKey {
        name: CPU.to_string(),
        labels: Vec::new(),
    };
    series
        .get(&key)
        .map(|s| s.last_values(CPU_RECENT).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Label;

    const T0: i64 = 1_700_000_000_000;

    fn put(map: &mut BTreeMap<SeriesKey, Series>, name: &str, labels: &[(&str, &str)], v: f64) {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        map.entry(SeriesKey::new(name, &labels))
            .or_default()
            .push(T0, v, 60_000, 1_000);
    }

    #[test]
    fn nothing_reported_means_everything_unknown() {
        assert_eq!(
            summarize(&BTreeMap::new(), T0, 1_000),
            NodeSummary::default()
        );
        assert!(cpu_recent(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn derives_from_latest_values() {
        let mut m = BTreeMap::new();
        put(&mut m, CPU, &[], 0.25);
        put(&mut m, CPU, &[("cpu", "0")], 0.9);
        put(&mut m, "node_memory_used_bytes", &[], 1.0e9);
        put(&mut m, "node_memory_total_bytes", &[], 4.0e9);
        put(&mut m, "node_load1", &[], 1.5);
        put(
            &mut m,
            "node_network_receive_bytes_per_second",
            &[("device", "eth0")],
            100.0,
        );
        put(
            &mut m,
            "node_network_receive_bytes_per_second",
            &[("device", "eth1")],
            50.0,
        );
        put(
            &mut m,
            "node_network_receive_bytes_per_second",
            &[("device", "lo")],
            1.0e6,
        );
        put(
            &mut m,
            "node_network_receive_bytes_per_second",
            &[("device", "lo0")],
            1.0e6,
        );
        put(
            &mut m,
            "http_requests_per_second",
            &[("source", "a"), ("class", "2xx")],
            10.0,
        );
        put(
            &mut m,
            "http_requests_per_second",
            &[("source", "a"), ("class", "5xx")],
            2.0,
        );
        put(
            &mut m,
            "node_disk_read_bytes_per_second",
            &[("device", "sda")],
            7.0,
        );
        put(&mut m, "node_swap_total_bytes", &[], 0.0);
        let s = summarize(&m, T0 + 1_000, 1_000);
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
    }

    fn log_second(m: &mut BTreeMap<SeriesKey, Series>, source: &str, ts: i64, counts: [f64; 5]) {
        for (class, v) in ["2xx", "3xx", "4xx", "5xx", "other"].iter().zip(counts) {
            let labels = [Label::new("source", source), Label::new("class", *class)];
            m.entry(SeriesKey::new(HTTP_REQUESTS, &labels))
                .or_default()
                .push(ts, v, 60_000, 1_000);
        }
    }

    #[test]
    fn qps_sums_the_latest_second_of_every_source() {
        let mut m = BTreeMap::new();
        log_second(&mut m, "nginx", T0, [90.0, 5.0, 4.0, 1.0, 0.0]);
        log_second(&mut m, "nginx", T0 + 1_000, [80.0, 5.0, 4.0, 1.0, 0.0]);
        log_second(&mut m, "api", T0 + 1_000, [10.0, 0.0, 0.0, 0.0, 0.0]);
        // Points describe a second 1-3 s back: still fresh.
        assert_eq!(qps(&m, T0 + 4_000, 1_000), Some(100.0));
        // A source that reports zeros is known and idle, not unknown.
        log_second(&mut m, "api", T0 + 2_000, [0.0; 5]);
        log_second(&mut m, "nginx", T0 + 2_000, [0.0; 5]);
        assert_eq!(qps(&m, T0 + 4_000, 1_000), Some(0.0));
        // Other metrics never count.
        put(
            &mut m,
            "http_request_duration_seconds",
            &[("quantile", "0.5")],
            9.0,
        );
        assert_eq!(qps(&m, T0 + 4_000, 1_000), Some(0.0));
    }

    #[test]
    fn qps_mean_averages_each_source_over_its_last_seconds() {
        let mut m = BTreeMap::new();
        for (i, n) in [10.0, 30.0, 20.0].into_iter().enumerate() {
            log_second(
                &mut m,
                "nginx",
                T0 + 1_000 * i as i64,
                [n, 0.0, 0.0, 0.0, 0.0],
            );
        }
        log_second(&mut m, "api", T0 + 2_000, [4.0, 1.0, 0.0, 0.0, 0.0]);
        // nginx: (10 + 30 + 20) / 3; api: one second of 5.
        assert_eq!(qps_mean(&m, T0 + 3_000, 1_000, 10), Some(25.0));
        // Only the last two seconds of nginx: (30 + 20) / 2.
        assert_eq!(qps_mean(&m, T0 + 3_000, 1_000, 2), Some(30.0));
        // Stale sources drop out here too.
        assert_eq!(qps_mean(&m, T0 + 60_000, 1_000, 10), None);
    }

    #[test]
    fn a_source_that_stops_reporting_drops_out_of_qps() {
        let mut m = BTreeMap::new();
        log_second(&mut m, "old", T0, [50.0, 0.0, 0.0, 0.0, 0.0]);
        log_second(&mut m, "live", T0 + 20_000, [7.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(log_stale_after_ms(1_000), LOG_STALE_MIN_MS);
        assert_eq!(qps(&m, T0 + 10_000, 1_000), Some(57.0));
        assert_eq!(qps(&m, T0 + 10_001, 1_000), Some(7.0));
        // Nothing fresh at all: unknown.
        assert_eq!(qps(&m, T0 + 40_000, 1_000), None);
        // A slow agent (10 s interval) gets 3 intervals + grace.
        assert_eq!(log_stale_after_ms(10_000), 34_000);
        assert_eq!(qps(&m, T0 + 34_000, 10_000), Some(57.0));
    }

    #[test]
    fn memory_ratio_needs_a_positive_total() {
        let mut m = BTreeMap::new();
        put(&mut m, "node_memory_used_bytes", &[], 1.0);
        assert_eq!(summarize(&m, T0, 1_000).memory_used_ratio, None);
        put(&mut m, "node_memory_total_bytes", &[], 0.0);
        assert_eq!(summarize(&m, T0, 1_000).memory_used_ratio, None);
    }

    #[test]
    fn cpu_recent_keeps_the_newest_120_oldest_first() {
        let mut m = BTreeMap::new();
        let mut s = Series::new();
        for i in 0..200 {
            s.push(T0 + i * 1_000, i as f64 / 1000.0, 3_600_000, 10_000);
        }
        m.insert(SeriesKey::new(CPU, &[]), s);
        let recent = cpu_recent(&m);
        assert_eq!(recent.len(), CPU_RECENT);
        assert!((recent[0] - 0.080).abs() < 1e-6);
        assert!((recent[119] - 0.199).abs() < 1e-6);
    }
}
