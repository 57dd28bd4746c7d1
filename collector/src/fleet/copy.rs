//! What the fleet view copies out of the store when a node changed: the
//! node's identity and liveness, the latest value of every series the
//! evaluation uses (by [`Slot`], kept up to date by ingest), the recent
//! seconds of each access-log source, new CPU samples, checks, facts and
//! backends. Copying is all
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
pub use crate::slot::{SlotValue, SourceSeconds};
use crate::store::{Backends, Identity, Node, SeriesKey, StoredCheck};

/// How many CPU samples the sparkline holds.
pub const CPU_POINTS: usize = stacktop_proto::delta::CPU_RECENT;

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
    /// The recent seconds of every access-log source, per class.
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
        let mut copy = Self {
            identity: node.identity.clone(),
            connected: false,
            last_seen_ms: 0,
            values: Vec::new(),
            sources: Vec::new(),
            cpu: Vec::new(),
            checks: Vec::new(),
            facts: node.facts.clone(),
            backends: node.backends.clone(),
        };
        copy.update(node, cpu_after_ms);
        copy
    }

    /// Copies `node` over this copy, reusing its buffers (a node is copied
    /// every time it reports, so this allocates nothing in the steady
    /// state).
    pub fn update(&mut self, node: &Node, cpu_after_ms: i64) {
        if !Arc::ptr_eq(&self.identity, &node.identity) {
            self.identity = node.identity.clone();
        }
        self.connected = node.connected();
        self.last_seen_ms = node.last_seen_ms;
        self.values.clear();
        self.values
            .extend(node.values.iter().filter(|v| v.updated_ms > 0).cloned());
        self.sources.clone_from(&node.sources);
        self.cpu.clear();
        if let Some(series) = node.cpu_series() {
            self.cpu.extend(series.points_after(cpu_after_ms));
            if self.cpu.len() > CPU_POINTS {
                self.cpu.drain(..self.cpu.len() - CPU_POINTS);
            }
        }
        self.checks.clear();
        self.checks.extend(node.checks.values().cloned());
        if !Arc::ptr_eq(&self.facts, &node.facts) {
            self.facts = node.facts.clone();
        }
        self.backends.clone_from(&node.backends);
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
    node.series()
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
