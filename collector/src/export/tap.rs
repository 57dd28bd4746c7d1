//! The ingest hook: what every stored batch tells the exports.
//!
//! Ingest calls [`Tap::stored`] once per batch it stored. That counts the
//! batch and its points (two relaxed atomic adds, read by `/metrics`) and,
//! when remote_write is configured, hands the batch's samples to each
//! destination's queue with `try_send`: a full hand-off queue drops the
//! batch for that destination and counts it, so a slow or dead remote
//! store never holds up an agent. Building the samples costs one vector
//! and a reference count per point (series identities are shared `Arc`s),
//! and only when there is a destination.
//!
//! The samples are the batch's points that passed ingest's checks; the
//! few the store then leaves out (a node at its series limit, points from
//! before a name was taken over) go along too: the latter are older than
//! what was already sent, so remote_write's sequencer leaves them out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::remote_write::WriteStats;
use crate::store::{Identity, SeriesKey};

/// One stored point on its way to remote_write, with its original time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series (shared with the ingest stream that defined it).
    pub key: Arc<SeriesKey>,
    /// Unix ms, as the agent stamped it.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

/// The samples of one stored batch, with the node they belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct TapBatch {
    /// Who sent them (name and roles label every series).
    pub node: Arc<Identity>,
    /// The points, in the order the batch carried them.
    pub samples: Vec<Sample>,
}

/// Counters of what ingest stored, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    batches: AtomicU64,
    points: AtomicU64,
    series_limit: AtomicU64,
}

impl IngestStats {
    /// Batches stored since the collector started (duplicates not counted).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Points stored since the collector started.
    pub fn points(&self) -> u64 {
        self.points.load(Ordering::Relaxed)
    }

    /// Points dropped because their node was at its series limit.
    pub fn series_limit(&self) -> u64 {
        self.series_limit.load(Ordering::Relaxed)
    }
}

/// One remote_write destination's end of the hook.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// Hand-off to the destination's writer task (bounded; see the module
    /// docs for what happens when it is full).
    pub tx: mpsc::Sender<Arc<TapBatch>>,
    /// The destination's counters, where a refused hand-off is counted.
    pub stats: Arc<WriteStats>,
}

/// The hook ingest calls; shared by every agent stream.
#[derive(Debug, Default)]
pub struct Tap {
    stats: IngestStats,
    outlets: Vec<Outlet>,
}

impl Tap {
    /// A hook feeding `outlets` (none: it only counts).
    pub fn new(outlets: Vec<Outlet>) -> Self {
        Self {
            stats: IngestStats::default(),
            outlets,
        }
    }

    /// What ingest stored so far.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// Whether any destination wants the samples: ingest builds them only
    /// then.
    pub fn wants_samples(&self) -> bool {
        !self.outlets.is_empty()
    }

    /// Counts points dropped because their node holds as many series as
    /// it may.
    pub fn dropped_at_series_limit(&self, points: usize) {
        self.stats
            .series_limit
            .fetch_add(points as u64, Ordering::Relaxed);
    }

    /// Records one stored batch of `points` points and, when some
    /// destination wants them, hands over the samples that `samples` makes.
    /// Never waits.
    pub fn stored(&self, points: usize, samples: impl FnOnce() -> TapBatch) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .points
            .fetch_add(points as u64, Ordering::Relaxed);
        if self.outlets.is_empty() {
            return;
        }
        let batch = samples();
        if batch.samples.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        for outlet in &self.outlets {
            if outlet.tx.try_send(batch.clone()).is_err() {
                // Full: the writer is behind by a whole hand-off queue of
                // batches; closed: it stopped (shutdown). Either way these
                // samples will not be sent.
                outlet.stats.dropped_handoff(batch.samples.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> TapBatch {
        let key = Arc::new(SeriesKey::new("m", &[]));
        TapBatch {
            node: Arc::new(Identity::default()),
            samples: (0..n)
                .map(|i| Sample {
                    key: key.clone(),
                    timestamp_ms: i as i64,
                    value: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_always_and_builds_samples_only_for_a_destination() {
        let tap = Tap::new(Vec::new());
        tap.stored(3, || panic!("no destination: samples must not be built"));
        assert_eq!((tap.stats().batches(), tap.stats().points()), (1, 3));
        assert!(!tap.wants_samples());
    }

    #[test]
    fn a_full_handoff_drops_and_counts_without_waiting() {
        let (tx, mut rx) = mpsc::channel(1);
        let stats = Arc::new(WriteStats::default());
        let tap = Tap::new(vec![Outlet {
            tx,
            stats: stats.clone(),
        }]);
        tap.stored(2, || batch(2));
        tap.stored(5, || batch(5));
        assert_eq!(rx.try_recv().unwrap().samples.len(), 2);
        assert!(rx.try_recv().is_err());
        assert_eq!(
            stats.dropped(super::super::remote_write::DropReason::Handoff),
            5
        );
        drop(rx);
        tap.stored(1, || batch(1));
        assert_eq!(
            stats.dropped(super::super::remote_write::DropReason::Handoff),
            6
        );
        assert_eq!(tap.stats().batches(), 3);
    }
}
