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
//! - QPS: `http_requests_per_second` over all its label sets;
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

/// The summary of a node from its series.
pub fn summarize(series: &BTreeMap<SeriesKey, Series>) -> NodeSummary {
    let scalar = |name: &str| -> Option<f64> {
        let key = SeriesKey {
            name: name.to_string(),
            labels: Vec::new(),
        };
        series.get(&key)?.latest().map(|(_, v)| v)
    };
    let sum = |name: &str, include: &dyn Fn(&SeriesKey) -> bool| -> Option<f64> {
        let mut values = series
            .iter()
            .filter(|(k, _)| k.name == name && include(k))
            .filter_map(|(_, s)| s.latest().map(|(_, v)| v))
            .peekable();
        values.peek()?;
        Some(values.sum())
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
        qps: sum("http_requests_per_second", &all),
        uptime_seconds: scalar("node_uptime_seconds"),
        processes: scalar("node_processes"),
        swap_used_bytes: scalar("node_swap_used_bytes")
            .or_else(|| scalar("node_memory_swap_used_bytes")),
        swap_total_bytes: scalar("node_swap_total_bytes")
            .or_else(|| scalar("node_memory_swap_total_bytes")),
        disk_read_bytes_per_second: sum("node_disk_read_bytes_per_second", &all),
        disk_written_bytes_per_second: sum("node_disk_written_bytes_per_second", &all),
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
        assert_eq!(summarize(&BTreeMap::new()), NodeSummary::default());
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
        let s = summarize(&m);
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

    #[test]
    fn memory_ratio_needs_a_positive_total() {
        let mut m = BTreeMap::new();
        put(&mut m, "node_memory_used_bytes", &[], 1.0);
        assert_eq!(summarize(&m).memory_used_ratio, None);
        put(&mut m, "node_memory_total_bytes", &[], 0.0);
        assert_eq!(summarize(&m).memory_used_ratio, None);
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
