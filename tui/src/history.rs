//! Chart data of the detail screen: what `Fleet.History` answered for one
//! node, turned into `(timestamp_ms, value)` points.
//!
//! The turning is lookup and arithmetic only, with the shared rules of
//! [`stacktop_proto::metrics`] (which devices are loopback, what the memory
//! ratio is): the dashboard keeps no rule of its own for either. The
//! network task ([`crate::client`]) fetches, the model ([`crate::model`])
//! keeps the result, and the detail screen draws it.

use std::collections::BTreeMap;
use std::time::Duration;

use stacktop_proto::metrics;
use stacktop_proto::v1::{HistoryResponse, SeriesHistory};

/// How far back the detail charts reach, by zoom level (`+` in, `-` out):
/// 1 minute to 6 hours. The collector holds full resolution for at least
/// 15 minutes and coarser points for longer, so the longer windows show
/// what it kept.
pub const ZOOMS: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(6 * 60 * 60),
];
/// The zoom level a detail screen opens with (15 minutes).
pub const DEFAULT_ZOOM: usize = 2;
/// How far back the detail charts reach when first opened.
pub const HISTORY_WINDOW: Duration = ZOOMS[DEFAULT_ZOOM];

/// The series the detail charts ask `Fleet.History` for, in the order
/// [`History::from_responses`] takes the answers.
pub const SERIES: [&str; 5] = [
    metrics::CPU_USAGE,
    metrics::MEMORY_USED,
    metrics::MEMORY_TOTAL,
    metrics::NETWORK_RECEIVE,
    metrics::NETWORK_TRANSMIT,
];

/// Chart data for the detail screen: `(timestamp_ms, value)` pairs, oldest
/// first, as fetched with Fleet.History.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Total CPU usage ratio (0..1).
    pub cpu: Vec<(i64, f64)>,
    /// Memory used / total (0..1).
    pub memory: Vec<(i64, f64)>,
    /// Received bytes per second, summed over non-loopback devices.
    pub receive: Vec<(i64, f64)>,
    /// Transmitted bytes per second, summed over non-loopback devices.
    pub transmit: Vec<(i64, f64)>,
}

/// The detail screen's charts: waiting, drawn, or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryState {
    /// Nothing has arrived yet for this node.
    Loading,
    /// The latest fetched history.
    Loaded(History),
    /// The first fetch failed; the message says why.
    Failed(String),
}

impl History {
    /// Turns the History answers for [`SERIES`] into chart data: the
    /// unlabelled CPU series (per-core series carry a `cpu` label), memory
    /// used over total ([`metrics::memory_used_ratio`]), and network rates
    /// summed over every device that is not loopback
    /// ([`metrics::is_loopback`]).
    pub fn from_responses(
        cpu: &HistoryResponse,
        memory_used: &HistoryResponse,
        memory_total: &HistoryResponse,
        receive: &HistoryResponse,
        transmit: &HistoryResponse,
    ) -> Self {
        Self {
            cpu: unlabelled(cpu),
            memory: ratio(&unlabelled(memory_used), &unlabelled(memory_total)),
            receive: sum_devices(receive),
            transmit: sum_devices(transmit),
        }
    }
}

fn points(series: &SeriesHistory) -> Vec<(i64, f64)> {
    series
        .points
        .iter()
        .map(|p| (p.timestamp_ms, p.value))
        .collect()
}

fn unlabelled(response: &HistoryResponse) -> Vec<(i64, f64)> {
    response
        .series
        .iter()
        .find(|s| s.labels.is_empty())
        .map(points)
        .unwrap_or_default()
}

/// The memory ratio at each `used` point, against the latest total at or
/// before it (or the first one).
fn ratio(used: &[(i64, f64)], total: &[(i64, f64)]) -> Vec<(i64, f64)> {
    used.iter()
        .filter_map(|&(ts, value)| {
            let t = total
                .iter()
                .rev()
                .find(|(tt, _)| *tt <= ts)
                .or(total.first())?;
            metrics::memory_used_ratio(Some(value), Some(t.1)).map(|r| (ts, r))
        })
        .collect()
}

fn sum_devices(response: &HistoryResponse) -> Vec<(i64, f64)> {
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for series in &response.series {
        let device = stacktop_proto::label(&series.labels, metrics::label::DEVICE).unwrap_or("");
        if metrics::is_loopback(device) {
            continue;
        }
        for p in &series.points {
            *sums.entry(p.timestamp_ms).or_default() += p.value;
        }
    }
    sums.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::{Label, TimedValue};

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesHistory {
        SeriesHistory {
            name: String::new(),
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            points: points
                .iter()
                .map(|&(timestamp_ms, value)| TimedValue {
                    timestamp_ms,
                    value,
                    ..TimedValue::default()
                })
                .collect(),
        }
    }

    fn response(series: Vec<SeriesHistory>) -> HistoryResponse {
        HistoryResponse { series }
    }

    #[test]
    fn history_picks_total_cpu_sums_devices_and_divides_memory() {
        let cpu = response(vec![
            series(&[("cpu", "0")], &[(1, 0.9)]),
            series(&[], &[(1, 0.25), (2, 0.5)]),
        ]);
        let used = response(vec![series(&[], &[(1, 2.0), (2, 4.0)])]);
        let total = response(vec![series(&[], &[(1, 8.0)])]);
        let rx = response(vec![
            series(&[("device", "lo")], &[(1, 1000.0)]),
            series(&[("device", "eth0")], &[(1, 10.0), (2, 20.0)]),
            series(&[("device", "eth1")], &[(1, 1.0)]),
        ]);
        let h = History::from_responses(&cpu, &used, &total, &rx, &response(vec![]));
        assert_eq!(h.cpu, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.memory, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.receive, [(1, 11.0), (2, 20.0)]);
        assert!(h.transmit.is_empty());
    }

    #[test]
    fn bsd_loopback_and_a_zero_total_follow_the_shared_rules() {
        let rx = response(vec![
            series(&[("device", "lo0")], &[(1, 1000.0)]),
            series(&[("device", "lo:1")], &[(1, 500.0)]),
            series(&[("device", "em0")], &[(1, 10.0)]),
        ]);
        let used = response(vec![series(&[], &[(1, 2.0)])]);
        let zero = response(vec![series(&[], &[(1, 0.0)])]);
        let empty = response(vec![]);
        let h = History::from_responses(&empty, &used, &zero, &rx, &empty);
        assert_eq!(h.receive, [(1, 10.0)]);
        assert!(h.memory.is_empty(), "no ratio over a zero total");
    }
}
