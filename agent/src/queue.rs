//! The per-collector queue of batches not yet acknowledged.
//!
//! Batches stay here from the moment the sampler hands them over until the
//! collector acknowledges them (cumulatively, by seq), so a reconnecting
//! uplink can resend what was lost. The queue is bounded: when it is full
//! the oldest batch is dropped and counted. The interface (`push`, `ack`,
//! `next_after`) is what a durable on-disk spool will also offer.

use std::collections::VecDeque;
use std::sync::Arc;

use stacktop_proto::v1::Batch;

/// Default capacity: 15 minutes of batches at a 1 s interval.
pub const DEFAULT_CAPACITY: usize = 900;

/// Unacknowledged batches in seq order.
#[derive(Debug)]
pub struct BatchQueue {
    items: VecDeque<Arc<Batch>>,
    capacity: usize,
    dropped: u64,
}

impl BatchQueue {
    /// An empty queue holding at most `capacity` batches (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            dropped: 0,
        }
    }

    /// Appends a batch (seqs must increase). Returns the seq of the batch
    /// that was dropped to make room, if the queue was full.
    pub fn push(&mut self, batch: Arc<Batch>) -> Option<u64> {
        debug_assert!(self.items.back().is_none_or(|b| b.seq < batch.seq));
        let dropped = if self.items.len() >= self.capacity {
            self.dropped += 1;
            self.items.pop_front().map(|b| b.seq)
        } else {
            None
        };
        self.items.push_back(batch);
        dropped
    }

    /// Forgets every batch with seq `<= seq` (a cumulative ack, or the
    /// collector's `resume_after_seq`).
    pub fn ack(&mut self, seq: u64) {
        while self.items.front().is_some_and(|b| b.seq <= seq) {
            self.items.pop_front();
        }
    }

    /// The first batch with seq `> seq`: the next to send on a stream that
    /// has sent everything up to `seq`.
    pub fn next_after(&self, seq: u64) -> Option<&Arc<Batch>> {
        let index = self.items.partition_point(|b| b.seq <= seq);
        self.items.get(index)
    }

    /// Batches held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when every batch has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Batches dropped because the queue was full, over its lifetime.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64) -> Arc<Batch> {
        Arc::new(Batch {
            seq,
            ..Batch::default()
        })
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let mut q = BatchQueue::new(2);
        assert_eq!(q.push(batch(1)), None);
        assert_eq!(q.push(batch(2)), None);
        assert_eq!(q.push(batch(3)), Some(1));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.next_after(0).unwrap().seq, 2);
    }

    #[test]
    fn ack_is_cumulative_and_next_after_skips_sent() {
        let mut q = BatchQueue::new(10);
        for seq in [1, 2, 3, 5, 8] {
            q.push(batch(seq));
        }
        q.ack(3);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next_after(0).unwrap().seq, 5);
        assert_eq!(q.next_after(5).unwrap().seq, 8);
        assert_eq!(q.next_after(6).unwrap().seq, 8);
        assert!(q.next_after(8).is_none());
        q.ack(100);
        assert!(q.is_empty());
    }
}
