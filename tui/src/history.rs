//! Chart data of the detail screen: what `Fleet.History` answered for one
//! node, turned into `(timestamp_ms, value)` points.
//!
//! The turning is lookup and arithmetic only, with the shared rules of
//! [`stacktop_proto::metrics`] (which devices are loopback, what the memory
//! ratio is): the dashboard keeps no rule of its own for either. Sums are
//! taken per timestamp (the agent stamps every series of a sample, and
//! every class of a log second, alike); a timestamp missing from every
//! series stays missing, so the time the node was down is a gap, never a
//! 0. The network task ([`crate::client`]) fetches, the model
//! ([`crate::model`]) keeps the result, and the detail screen draws it.

use std::collections::BTreeMap;
use std::ops::Range;
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
pub const SERIES: [&str; 9] = [
    metrics::CPU_USAGE,
    metrics::MEMORY_USED,
    metrics::MEMORY_TOTAL,
    metrics::NETWORK_RECEIVE,
    metrics::NETWORK_TRANSMIT,
    metrics::DISK_READ,
    metrics::DISK_WRITTEN,
    metrics::HTTP_REQUESTS,
    metrics::HTTP_DURATION,
];

/// A step between two points this many times longer than the usual step
/// around it is a gap (the node was down, or its agent stopped), drawn as
/// a break in the line.
const GAP_FACTOR: i64 = 3;
/// How many steps on each side of a step tell the usual step there.
const GAP_CONTEXT: usize = 4;

/// `(timestamp_ms, value)` pairs, oldest first.
pub type Points = Vec<(i64, f64)>;

/// Chart data for the detail screen: `(timestamp_ms, value)` pairs, oldest
/// first, as fetched with Fleet.History.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Total CPU usage ratio (0..1).
    pub cpu: Points,
    /// Memory used / total (0..1).
    pub memory: Points,
    /// Received bytes per second, summed over non-loopback devices.
    pub receive: Points,
    /// Transmitted bytes per second, summed over non-loopback devices.
    pub transmit: Points,
    /// Disk bytes read per second, summed over the node's block devices
    /// (the agent reports whole devices, never partitions, so nothing is
    /// counted twice).
    pub disk_read: Points,
    /// Disk bytes written per second, summed like [`History::disk_read`].
    pub disk_written: Points,
    /// How many block devices the disk lines sum.
    pub disk_devices: usize,
    /// Request rates by status class, summed over access-log sources.
    pub requests: Requests,
    /// Latency quantiles, the slowest source's at each time.
    pub latency: Latency,
}

/// Requests per second by status class, summed over the node's access-log
/// sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requests {
    /// How many access-log sources reported request rates (0: the node has
    /// no access log the collector knows of).
    pub sources: usize,
    /// One line per class of [`metrics::CLASSES`] (2xx, 3xx, 4xx, 5xx), in
    /// that order; `other` is not drawn.
    pub by_class: [Points; 4],
}

/// Request latency quantiles (seconds) from the access logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// How many access-log sources reported latency (0: none did).
    pub sources: usize,
    /// p50, p95 and p99 ([`metrics::QUANTILES`]), at each time the highest
    /// over the sources: a quantile of two logs together cannot be made
    /// from theirs, and the slower one is what the operator must see.
    pub quantiles: [Points; 3],
}

/// Why a request chart has nothing to draw, in the operator's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRequests {
    /// The node reports no request rates at all.
    NoAccessLog,
    /// Requests were logged in the window, yet no latency: the log format
    /// carries no request time.
    NoRequestTime,
    /// The access log is there, but nothing in the window (rates stayed 0
    /// or were not reported, so no latency either): the chart draws what
    /// there is, or says "no requests".
    Idle,
}

impl NoRequests {
    /// What the chart says instead of a line.
    pub fn text(self) -> &'static str {
        match self {
            NoRequests::NoAccessLog => "no access log configured",
            NoRequests::NoRequestTime => "log format has no request time",
            NoRequests::Idle => "no requests",
        }
    }
}

/// The detail screen's charts: waiting, drawn, or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryState {
    /// Nothing has arrived yet for this node.
    Loading,
    /// The latest fetched history.
    Loaded(Box<History>),
    /// The first fetch failed; the message says why.
    Failed(String),
}

/// The Fleet.History answers for [`SERIES`], in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Responses {
    /// [`metrics::CPU_USAGE`].
    pub cpu: HistoryResponse,
    /// [`metrics::MEMORY_USED`].
    pub memory_used: HistoryResponse,
    /// [`metrics::MEMORY_TOTAL`].
    pub memory_total: HistoryResponse,
    /// [`metrics::NETWORK_RECEIVE`].
    pub receive: HistoryResponse,
    /// [`metrics::NETWORK_TRANSMIT`].
    pub transmit: HistoryResponse,
    /// [`metrics::DISK_READ`].
    pub disk_read: HistoryResponse,
    /// [`metrics::DISK_WRITTEN`].
    pub disk_written: HistoryResponse,
    /// [`metrics::HTTP_REQUESTS`].
    pub requests: HistoryResponse,
    /// [`metrics::HTTP_DURATION`].
    pub duration: HistoryResponse,
}

impl History {
    /// Turns the History answers for [`SERIES`] into chart data: the
    /// unlabelled CPU series (per-core series carry a `cpu` label), memory
    /// used over total ([`metrics::memory_used_ratio`]), network rates
    /// summed over every device that is not loopback
    /// ([`metrics::is_loopback`]), disk rates summed over devices, request
    /// rates per class summed over sources, and the slowest source's
    /// latency quantiles.
    pub fn from_responses(r: &Responses) -> Self {
        let sources = |response: &HistoryResponse| {
            let mut names: Vec<&str> = response
                .series
                .iter()
                .filter_map(|s| stacktop_proto::label(&s.labels, metrics::label::SOURCE))
                .collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        };
        let mut devices: Vec<&str> = r
            .disk_read
            .series
            .iter()
            .chain(&r.disk_written.series)
            .filter_map(|s| stacktop_proto::label(&s.labels, metrics::label::DEVICE))
            .collect();
        devices.sort_unstable();
        devices.dedup();
        Self {
            cpu: unlabelled(&r.cpu),
            memory: ratio(&unlabelled(&r.memory_used), &unlabelled(&r.memory_total)),
            receive: sum_devices(&r.receive),
            transmit: sum_devices(&r.transmit),
            disk_read: sum_where(&r.disk_read, |_| true),
            disk_written: sum_where(&r.disk_written, |_| true),
            disk_devices: devices.len(),
            requests: Requests {
                sources: sources(&r.requests),
                by_class: metrics::CLASSES
                    .map(|class| sum_where(&r.requests, |s| has(s, metrics::label::CLASS, class))),
            },
            latency: Latency {
                sources: sources(&r.duration),
                quantiles: metrics::QUANTILES
                    .map(|q| max_where(&r.duration, |s| has(s, metrics::label::QUANTILE, q))),
            },
        }
    }

    /// Why the requests chart has nothing to draw, if so.
    pub fn requests_missing(&self) -> Option<NoRequests> {
        if self.requests.sources == 0 {
            Some(NoRequests::NoAccessLog)
        } else if self
            .requests
            .by_class
            .iter()
            .all(|points| points.is_empty())
        {
            Some(NoRequests::Idle)
        } else {
            None
        }
    }

    /// Why the latency chart has nothing to draw, if so.
    pub fn latency_missing(&self) -> Option<NoRequests> {
        if self
            .latency
            .quantiles
            .iter()
            .any(|points| !points.is_empty())
        {
            return None;
        }
        if self.requests.sources == 0 {
            return Some(NoRequests::NoAccessLog);
        }
        let logged = self
            .requests
            .by_class
            .iter()
            .flatten()
            .any(|&(_, rate)| rate > 0.0);
        // The agent reports latency for every second that had requests
        // when the format has a request time.
        if logged && self.latency.sources == 0 {
            Some(NoRequests::NoRequestTime)
        } else {
            Some(NoRequests::Idle)
        }
    }

    /// The oldest timestamp of any chart's data.
    pub fn oldest(&self) -> Option<i64> {
        [
            &self.cpu,
            &self.memory,
            &self.receive,
            &self.transmit,
            &self.disk_read,
            &self.disk_written,
        ]
        .into_iter()
        .chain(&self.requests.by_class)
        .chain(&self.latency.quantiles)
        .filter_map(|points| points.first().map(|p| p.0))
        .min()
    }
}

/// The runs of `timestamps` (oldest first) with no gap inside: a step is a
/// gap when it is more than [`GAP_FACTOR`] times the usual step on both of
/// its sides (the median of up to [`GAP_CONTEXT`] steps before it, and of
/// as many after). Judging each side by itself keeps the change from
/// coarse to full-resolution points (10 s, then 1 s) from reading as a
/// gap, while a point or two between two outages does not hide them.
pub fn runs(timestamps: &[i64]) -> Vec<Range<usize>> {
    let steps: Vec<i64> = timestamps.windows(2).map(|w| w[1] - w[0]).collect();
    let median = |around: &[i64]| -> Option<i64> {
        let mut v = around.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let mut runs = Vec::new();
    let mut start = 0;
    for (i, &step) in steps.iter().enumerate() {
        let before = median(&steps[i.saturating_sub(GAP_CONTEXT)..i]);
        let after =
            median(&steps[(i + 1).min(steps.len())..(i + 1 + GAP_CONTEXT).min(steps.len())]);
        let usual = match (before, after) {
            (Some(b), Some(a)) => b.max(a),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => continue,
        };
        if step > usual.max(1) * GAP_FACTOR {
            runs.push(start..i + 1);
            start = i + 1;
        }
    }
    if !timestamps.is_empty() {
        runs.push(start..timestamps.len());
    }
    runs
}

fn has(series: &SeriesHistory, key: &str, value: &str) -> bool {
    stacktop_proto::label(&series.labels, key) == Some(value)
}

fn points(series: &SeriesHistory) -> Points {
    series
        .points
        .iter()
        .map(|p| (p.timestamp_ms, p.value))
        .collect()
}

fn unlabelled(response: &HistoryResponse) -> Points {
    response
        .series
        .iter()
        .find(|s| s.labels.is_empty())
        .map(points)
        .unwrap_or_default()
}

/// The memory ratio at each `used` point, against the latest total at or
/// before it (or the first one).
fn ratio(used: &[(i64, f64)], total: &[(i64, f64)]) -> Points {
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

fn sum_devices(response: &HistoryResponse) -> Points {
    sum_where(response, |series| {
        let device = stacktop_proto::label(&series.labels, metrics::label::DEVICE).unwrap_or("");
        !metrics::is_loopback(device)
    })
}

/// Per timestamp, the sum over the series `keep` accepts.
fn sum_where(response: &HistoryResponse, keep: impl Fn(&SeriesHistory) -> bool) -> Points {
    combine(response, keep, |a, b| a + b)
}

/// Per timestamp, the highest value over the series `keep` accepts.
fn max_where(response: &HistoryResponse, keep: impl Fn(&SeriesHistory) -> bool) -> Points {
    combine(response, keep, f64::max)
}

fn combine(
    response: &HistoryResponse,
    keep: impl Fn(&SeriesHistory) -> bool,
    join: impl Fn(f64, f64) -> f64,
) -> Points {
    let mut at: BTreeMap<i64, f64> = BTreeMap::new();
    for series in response.series.iter().filter(|s| keep(s)) {
        for p in &series.points {
            at.entry(p.timestamp_ms)
                .and_modify(|v| *v = join(*v, p.value))
                .or_insert(p.value);
        }
    }
    at.into_iter().collect()
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
        let r = Responses {
            cpu: response(vec![
                series(&[("cpu", "0")], &[(1, 0.9)]),
                series(&[], &[(1, 0.25), (2, 0.5)]),
            ]),
            memory_used: response(vec![series(&[], &[(1, 2.0), (2, 4.0)])]),
            memory_total: response(vec![series(&[], &[(1, 8.0)])]),
            receive: response(vec![
                series(&[("device", "lo")], &[(1, 1000.0)]),
                series(&[("device", "eth0")], &[(1, 10.0), (2, 20.0)]),
                series(&[("device", "eth1")], &[(1, 1.0)]),
            ]),
            disk_read: response(vec![
                series(&[("device", "sda")], &[(1, 100.0), (2, 200.0)]),
                series(&[("device", "nvme0n1")], &[(2, 5.0)]),
            ]),
            disk_written: response(vec![series(&[("device", "sda")], &[(1, 7.0)])]),
            ..Default::default()
        };
        let h = History::from_responses(&r);
        assert_eq!(h.cpu, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.memory, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.receive, [(1, 11.0), (2, 20.0)]);
        assert!(h.transmit.is_empty());
        assert_eq!(h.disk_read, [(1, 100.0), (2, 205.0)]);
        assert_eq!(h.disk_written, [(1, 7.0)]);
        assert_eq!(h.disk_devices, 2);
    }

    #[test]
    fn bsd_loopback_and_a_zero_total_follow_the_shared_rules() {
        let r = Responses {
            receive: response(vec![
                series(&[("device", "lo0")], &[(1, 1000.0)]),
                series(&[("device", "lo:1")], &[(1, 500.0)]),
                series(&[("device", "em0")], &[(1, 10.0)]),
            ]),
            memory_used: response(vec![series(&[], &[(1, 2.0)])]),
            memory_total: response(vec![series(&[], &[(1, 0.0)])]),
            ..Default::default()
        };
        let h = History::from_responses(&r);
        assert_eq!(h.receive, [(1, 10.0)]);
        assert!(h.memory.is_empty(), "no ratio over a zero total");
    }

    #[test]
    fn requests_sum_sources_per_class_and_latency_takes_the_slowest() {
        let r = Responses {
            requests: response(vec![
                series(
                    &[("source", "nginx"), ("class", "2xx")],
                    &[(1, 10.0), (2, 12.0)],
                ),
                series(&[("source", "app"), ("class", "2xx")], &[(1, 5.0)]),
                series(
                    &[("source", "nginx"), ("class", "5xx")],
                    &[(1, 0.0), (2, 1.0)],
                ),
                series(&[("source", "nginx"), ("class", "other")], &[(1, 99.0)]),
            ]),
            duration: response(vec![
                series(&[("source", "nginx"), ("quantile", "0.5")], &[(1, 0.002)]),
                series(&[("source", "app"), ("quantile", "0.5")], &[(1, 0.010)]),
                series(&[("source", "nginx"), ("quantile", "0.99")], &[(1, 0.3)]),
            ]),
            ..Default::default()
        };
        let h = History::from_responses(&r);
        assert_eq!(h.requests.sources, 2);
        assert_eq!(h.requests.by_class[0], [(1, 15.0), (2, 12.0)]);
        assert!(h.requests.by_class[1].is_empty(), "3xx never reported");
        assert_eq!(h.requests.by_class[3], [(1, 0.0), (2, 1.0)]);
        assert_eq!(h.latency.sources, 2);
        assert_eq!(h.latency.quantiles[0], [(1, 0.010)]);
        assert!(h.latency.quantiles[1].is_empty());
        assert_eq!(h.latency.quantiles[2], [(1, 0.3)]);
        assert_eq!(h.requests_missing(), None);
        assert_eq!(h.latency_missing(), None);
    }

    #[test]
    fn missing_request_data_is_told_apart() {
        let none = History::default();
        assert_eq!(none.requests_missing(), Some(NoRequests::NoAccessLog));
        assert_eq!(none.latency_missing(), Some(NoRequests::NoAccessLog));
        let untimed = History::from_responses(&Responses {
            requests: response(vec![series(
                &[("source", "nginx"), ("class", "2xx")],
                &[(1, 3.0)],
            )]),
            ..Default::default()
        });
        assert_eq!(untimed.requests_missing(), None);
        assert_eq!(untimed.latency_missing(), Some(NoRequests::NoRequestTime));
        let quiet = History::from_responses(&Responses {
            requests: response(vec![series(
                &[("source", "nginx"), ("class", "2xx")],
                &[(1, 0.0)],
            )]),
            ..Default::default()
        });
        assert_eq!(quiet.latency_missing(), Some(NoRequests::Idle));
        // Down for the whole window: the series are known, the points not.
        let down = History::from_responses(&Responses {
            requests: response(vec![series(&[("source", "nginx"), ("class", "2xx")], &[])]),
            ..Default::default()
        });
        assert_eq!(down.requests_missing(), Some(NoRequests::Idle));
    }

    #[test]
    fn gaps_split_runs_but_a_coarser_tier_does_not() {
        let ts = |v: &[i64]| v.to_vec();
        assert_eq!(runs(&[]), Vec::<Range<usize>>::new());
        assert_eq!(runs(&[5]), vec![0..1]);
        // 1 s steps, 30 s down, 1 s steps.
        assert_eq!(
            runs(&ts(&[0, 1, 2, 3, 33, 34, 35])),
            [0..4, 4..7],
            "an outage"
        );
        // 10 s points, then 1 s points: no gap at the change.
        assert_eq!(runs(&ts(&[0, 10, 20, 30, 40, 41, 42, 43, 44])), vec![0..9]);
        // Two outages with one point between them.
        assert_eq!(
            runs(&ts(&[0, 1, 2, 3, 30, 60, 61, 62, 63])),
            [0..4, 4..5, 5..9]
        );
        // A coarse tier with an outage in it.
        assert_eq!(runs(&ts(&[0, 10, 20, 300, 310, 320])), [0..3, 3..6]);
    }
}
