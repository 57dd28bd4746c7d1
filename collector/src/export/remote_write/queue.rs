//! A destination's pending samples: stored batches waiting to be sent,
//! bounded by a number of samples. When a new batch would go over the
//! bound, the *oldest* samples make room (a remote store that was away
//! gets the most recent data first, and a monitoring system cares more
//! about now than about an hour ago); the caller counts them as dropped.
//!
//! Batches are kept whole (shared with every destination) and cut only
//! by ranges, so queueing a batch costs a reference count, not a copy.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use super::super::tap::TapBatch;

/// Samples waiting for one destination.
#[derive(Debug)]
pub struct Pending {
    /// Batches with the range of their samples still pending.
    batches: VecDeque<(Arc<TapBatch>, Range<usize>)>,
    /// Samples pending over all batches.
    len: usize,
    /// The bound on `len`.
    cap: usize,
}

impl Pending {
    /// An empty queue holding at most `cap` samples (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            batches: VecDeque::new(),
            len: 0,
            cap: cap.max(1),
        }
    }

    /// Samples pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues every sample of `batch`; returns how many of the oldest
    /// samples were dropped to stay within the bound.
    pub fn push(&mut self, batch: Arc<TapBatch>) -> usize {
        let n = batch.samples.len();
        if n == 0 {
            return 0;
        }
        self.batches.push_back((batch, 0..n));
        self.len += n;
        let mut dropped = 0;
        while self.len > self.cap {
            let excess = self.len - self.cap;
            let Some((_, range)) = self.batches.front_mut() else {
                break;
            };
            let cut = excess.min(range.len());
            range.start += cut;
            self.len -= cut;
            dropped += cut;
            if range.start >= range.end {
                self.batches.pop_front();
            }
        }
        dropped
    }

    /// Takes up to `max` of the oldest samples, in order.
    pub fn take(&mut self, max: usize) -> Vec<(Arc<TapBatch>, Range<usize>)> {
        let mut out = Vec::new();
        let mut left = max;
        while left > 0 {
            let Some((batch, range)) = self.batches.front_mut() else {
                break;
            };
            let n = left.min(range.len());
            out.push((batch.clone(), range.start..range.start + n));
            range.start += n;
            left -= n;
            self.len -= n;
            if range.start >= range.end {
                self.batches.pop_front();
            }
        }
        out
    }

    /// Empties the queue; returns how many samples it held.
    pub fn clear(&mut self) -> usize {
        self.batches.clear();
        std::mem::take(&mut self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tap::Sample;
    use crate::store::{Identity, SeriesKey};

    /// A batch of `n` samples whose timestamps start at `first`.
    fn batch(first: i64, n: usize) -> Arc<TapBatch> {
        let key = Arc::new(SeriesKey::new("m", &[]));
        Arc::new(TapBatch {
            node: Arc::new(Identity::default()),
            samples: (0..n as i64)
                .map(|i| Sample {
                    key: key.clone(),
                    timestamp_ms: first + i,
                    value: 0.0,
                })
                .collect(),
        })
    }

    fn stamps(chunks: &[(Arc<TapBatch>, Range<usize>)]) -> Vec<i64> {
        chunks
            .iter()
            .flat_map(|(b, r)| b.samples[r.clone()].iter().map(|s| s.timestamp_ms))
            .collect()
    }

    #[test]
    fn the_oldest_samples_make_room() {
        let mut q = Pending::new(5);
        assert_eq!(q.push(batch(0, 3)), 0);
        assert_eq!(q.push(batch(10, 3)), 1);
        assert_eq!(q.len(), 5);
        // A batch larger than the whole queue keeps only its newest part.
        assert_eq!(q.push(batch(20, 7)), 7);
        assert_eq!(stamps(&q.take(100)), [22, 23, 24, 25, 26]);
        assert!(q.is_empty());
    }

    #[test]
    fn take_cuts_batches_and_keeps_order() {
        let mut q = Pending::new(100);
        q.push(batch(0, 3));
        q.push(batch(10, 2));
        assert_eq!(stamps(&q.take(2)), [0, 1]);
        assert_eq!(stamps(&q.take(2)), [2, 10]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.push(batch(20, 0)), 0);
        assert_eq!(q.clear(), 1);
        assert!(q.take(5).is_empty());
    }
}
