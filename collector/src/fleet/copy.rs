//! What the fleet view copies out of the store when a node changed: the
//! node's identity, liveness, the latest value of every series, the recent
//! seconds of its request rates, new CPU samples, checks, facts and
//! backends. Copying is all that happens under the node's lock; everything
//! that is decided (staleness, health, summaries) is decided on the copy,
//! so readers never hold up ingest.
//!
//! The parts that change rarely are shared (`Arc`), so a copy is mostly
//! reference counts and a few dozen numbers.

use std::sync::Arc;

use stacktop_proto::metrics;

use crate::store::{Backends, Identity, Node, SeriesKey, StoredCheck};

/// How many recent points of each request-rate series a copy keeps: enough
/// for the traffic cross-check's window plus the seconds still in flight.
pub const REQUEST_POINTS: usize = 16;

/// How many CPU samples the sparkline holds.
pub const CPU_POINTS: usize = stacktop_proto::delta::CPU_RECENT;

/// The latest value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestValue {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// The sample's time (the agent's clock, Unix ms).
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
    /// When it arrived (the collector's clock, Unix ms): staleness is
    /// judged by this.
    pub updated_ms: i64,
}

/// The recent points of one request-rate series.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentPoints {
    /// The series (`http_requests_per_second{source, class}`).
    pub key: Arc<SeriesKey>,
    /// `(timestamp_ms, value)`, oldest first, at most [`REQUEST_POINTS`].
    pub points: Vec<(i64, f64)>,
    /// When its last point arrived (collector clock).
    pub updated_ms: i64,
}

/// One node as copied out of the store.
#[derive(Debug, Clone)]
pub struct NodeCopy {
    /// Identity from the latest Hello.
    pub identity: Arc<Identity>,
    /// An agent stream is open.
    pub connected: bool,
    /// Collector clock when the last frame arrived; 0: never.
    pub last_seen_ms: i64,
    /// The latest value of every series, sorted by key.
    pub latest: Vec<LatestValue>,
    /// The recent seconds of every request-rate series.
    pub requests: Vec<RecentPoints>,
    /// Total-CPU samples newer than the copier asked for, oldest first (at
    /// most [`CPU_POINTS`]).
    pub cpu: Vec<(i64, f64)>,
    /// The latest result of every check, sorted by name.
    pub checks: Vec<StoredCheck>,
    /// Slow-changing state.
    pub facts: Arc<Vec<stacktop_proto::v1::Label>>,
    /// HAProxy backends, if any.
    pub backends: Backends,
}

impl NodeCopy {
    /// Copies `node`, with the CPU samples after `cpu_after_ms`.
    pub fn of(node: &Node, cpu_after_ms: i64) -> Self {
        let mut latest = Vec::with_capacity(node.series.len());
        let mut requests = Vec::new();
        let mut cpu = Vec::new();
        for (key, series) in &node.series {
            let Some((timestamp_ms, value)) = series.latest() else {
                continue;
            };
            latest.push(LatestValue {
                key: key.clone(),
                timestamp_ms,
                value,
                updated_ms: series.updated_ms(),
            });
            if key.name == metrics::HTTP_REQUESTS {
                requests.push(RecentPoints {
                    key: key.clone(),
                    points: series.last_points(REQUEST_POINTS).collect(),
                    updated_ms: series.updated_ms(),
                });
            } else if key.name == metrics::CPU_USAGE && key.labels.is_empty() {
                cpu = series.points_after(cpu_after_ms).collect();
                if cpu.len() > CPU_POINTS {
                    cpu.drain(..cpu.len() - CPU_POINTS);
                }
            }
        }
        Self {
            identity: node.identity.clone(),
            connected: node.connected(),
            last_seen_ms: node.last_seen_ms,
            latest,
            requests,
            cpu,
            checks: node.checks.values().cloned().collect(),
            facts: node.facts.clone(),
            backends: node.backends.clone(),
        }
    }
}
