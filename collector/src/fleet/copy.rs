//! What the fleet view copies out of the store when a node changed: the
//! node's identity and liveness, the latest value of every series the
//! evaluation uses (by [`Slot`]), the recent seconds of each access-log
//! source, new CPU samples, checks, facts and backends. Copying is all
//! that happens under the node's lock; everything that is decided
//! (staleness, health, summaries) is decided on the copy, so readers never
//! hold up ingest.
//!
//! The parts that change rarely are shared (`Arc`), so a copy is mostly
//! reference counts and a few dozen numbers. Readers that want *every*
//! series (Fleet.Node, Snapshot with `include_latest`) read them from the
//! store with [`latest_values`].

use std::sync::Arc;

use stacktop_proto::v1::{Label, SeriesValue};

use crate::slot::Slot;
use crate::store::{Backends, Identity, Node, SeriesKey, StoredCheck};

/// How many recent points of each request-rate series a copy keeps: enough
/// for the traffic cross-check's window plus the seconds still in flight.
pub const REQUEST_POINTS: usize = 16;

/// How many CPU samples the sparkline holds.
pub const CPU_POINTS: usize = stacktop_proto::delta::CPU_RECENT;

/// The latest value of a series the evaluation uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotValue {
    /// What it feeds.
    pub slot: Slot,
    /// The sample's time (the agent's clock, Unix ms).
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
    /// When it arrived (the collector's clock, Unix ms): staleness is
    /// judged by this.
    pub updated_ms: i64,
}

/// The recent complete seconds of one access-log source, all status
/// classes summed.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSeconds {
    /// The `source` label.
    pub source: Arc<str>,
    /// `(second start, requests in it)`, oldest first.
    pub seconds: Vec<(i64, f64)>,
    /// When its newest point arrived (collector clock).
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
    /// The latest value of every series with a slot.
    pub values: Vec<SlotValue>,
    /// The recent seconds of every access-log source.
    pub sources: Vec<SourceSeconds>,
    /// Total-CPU samples newer than the copier asked for, oldest first (at
    /// most [`CPU_POINTS`]).
    pub cpu: Vec<(i64, f64)>,
    /// The latest result of every check, sorted by name.
    pub checks: Vec<StoredCheck>,
    /// Slow-changing state.
    pub facts: Arc<Vec<Label>>,
    /// HAProxy backends, if any.
    pub backends: Backends,
}

impl NodeCopy {
    /// Copies `node`, with the CPU samples after `cpu_after_ms`.
    pub fn of(node: &Node, cpu_after_ms: i64) -> Self {
        let mut values = Vec::with_capacity(24);
        let mut sources: Vec<SourceSeconds> = Vec::new();
        let mut cpu = Vec::new();
        for series in node.series.values() {
            if series.slot == Slot::Other {
                continue;
            }
            let Some((timestamp_ms, value)) = series.latest() else {
                continue;
            };
            values.push(SlotValue {
                slot: series.slot.clone(),
                timestamp_ms,
                value,
                updated_ms: series.updated_ms(),
            });
            match &series.slot {
                Slot::Cpu => {
                    cpu = series.points_after(cpu_after_ms).collect();
                    if cpu.len() > CPU_POINTS {
                        cpu.drain(..cpu.len() - CPU_POINTS);
                    }
                }
                Slot::Requests { source, .. } => {
                    let at = match sources.iter().position(|s| s.source == *source) {
                        Some(at) => at,
                        None => {
                            sources.push(SourceSeconds {
                                source: source.clone(),
                                seconds: Vec::with_capacity(REQUEST_POINTS),
                                updated_ms: 0,
                            });
                            sources.len() - 1
                        }
                    };
                    let s = &mut sources[at];
                    s.updated_ms = s.updated_ms.max(series.updated_ms());
                    for (ts, v) in series.last_points(REQUEST_POINTS) {
                        match s.seconds.binary_search_by_key(&ts, |p| p.0) {
                            Ok(i) => s.seconds[i].1 += v,
                            Err(i) => s.seconds.insert(i, (ts, v)),
                        }
                    }
                }
                _ => {}
            }
        }
        Self {
            identity: node.identity.clone(),
            connected: node.connected(),
            last_seen_ms: node.last_seen_ms,
            values,
            sources,
            cpu,
            checks: node.checks.values().cloned().collect(),
            facts: node.facts.clone(),
            backends: node.backends.clone(),
        }
    }
}

/// The latest value of one series, with its identity.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestValue {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// What the series feeds.
    pub slot: Slot,
    /// The sample's time (agent clock).
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
    /// When it arrived (collector clock).
    pub updated_ms: i64,
}

impl LatestValue {
    /// As sent to readers.
    pub fn to_proto(&self) -> SeriesValue {
        SeriesValue {
            name: self.key.name.clone(),
            labels: self.key.proto_labels(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// The latest value of every series of `node`, sorted by key.
pub fn latest_values(node: &Node) -> Vec<LatestValue> {
    node.series
        .iter()
        .filter_map(|(key, series)| {
            let (timestamp_ms, value) = series.latest()?;
            Some(LatestValue {
                key: key.clone(),
                slot: series.slot.clone(),
                timestamp_ms,
                value,
                updated_ms: series.updated_ms(),
            })
        })
        .collect()
}
