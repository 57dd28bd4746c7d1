//! One series' recent history: Gorilla-compressed chunks of points.
//!
//! # Why this layout
//!
//! A point used to be 8 bytes in a ring buffer (a `u32` ms offset and an
//! `f32`); 1,000 nodes x 50 series x 15 minutes at 1 s held 360 MB. Now the
//! points live in [`crate::gorilla`] chunks of [`CHUNK_POINTS`]: an agent's
//! regular timestamps cost 1-6 bits and an unchanged value 1 bit, so a
//! typical node's series average about 1-2 bytes a point (BENCHMARKS.md
//! section 3 has the measured figure). `f32` keeps 7 significant digits,
//! plenty for a chart; the exact latest value is kept beside as an `f64`.
//!
//! The newest point is held decoded (`pending`): a repeated report of the
//! same second (log-derived rates are re-sent as late lines arrive) then
//! replaces it without touching the stream. A point older than that is
//! appended when it still sorts last among the encoded ones, and otherwise
//! (rare) its chunk is decoded, the point put in place and the chunk
//! re-encoded.
//!
//! Pruning is relative to the series' newest point (so an agent whose clock
//! is off by more than the window does not lose everything) and drops whole
//! chunks; readers never see a point older than the window, so a series
//! holds its window plus at most one chunk. A hard cap on the points held
//! (`max_points`, plus one chunk) bounds a misbehaving agent.

use std::collections::VecDeque;

use crate::gorilla::{self, Chunk};
use crate::slot::Slot;

/// Points per compressed chunk: 4 minutes at 1 s. Larger chunks spread the
/// per-chunk header (~40 bytes) thinner but keep more than the window.
pub const CHUNK_POINTS: usize = 240;

/// The recent points of one series plus its exact latest value.
#[derive(Debug, Clone)]
pub struct Series {
    /// Compressed points, oldest first; only the last chunk grows.
    chunks: VecDeque<Chunk>,
    /// The newest point, not yet encoded; `None` only while empty.
    pending: Option<(i64, f32)>,
    /// Points held (encoded plus `pending`).
    len: usize,
    /// Points before this time (Unix ms) are out of the window: held until
    /// their chunk goes, never read.
    cutoff_ms: i64,
    /// The newest point's exact value and time.
    latest: Option<(i64, f64)>,
    /// The collector's clock (Unix ms) when a point last arrived: staleness
    /// is judged by it, so an agent whose clock is off does not make its
    /// values look old (or young).
    updated_ms: i64,
    /// What the evaluated fleet uses the series for, decided once.
    pub slot: Slot,
    /// Where its latest value is kept among the node's slot values (see
    /// `store::Node::values`), when it has a slot.
    pub value_index: Option<u16>,
    /// Per coarse tier ([`crate::tiers`]): buckets before this time (Unix
    /// ms) are written to disk and complete.
    pub rolled_up_ms: [i64; crate::tiers::COUNT],
}

impl Default for Series {
    fn default() -> Self {
        Self::new()
    }
}

impl Series {
    /// An empty series.
    pub fn new() -> Self {
        Self {
            chunks: VecDeque::new(),
            pending: None,
            len: 0,
            cutoff_ms: i64::MIN,
            latest: None,
            updated_ms: 0,
            slot: Slot::Other,
            value_index: None,
            rolled_up_ms: [i64::MIN; crate::tiers::COUNT],
        }
    }

    /// An empty series feeding `slot`.
    pub fn with_slot(slot: Slot) -> Self {
        Self {
            slot,
            ..Self::new()
        }
    }

    /// When (collector clock, Unix ms) a point last arrived; 0: never.
    pub fn updated_ms(&self) -> i64 {
        self.updated_ms
    }

    /// Records that a point arrived at `now_ms` (collector clock).
    pub fn touch(&mut self, now_ms: i64) {
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    /// The newest point as `(timestamp_ms, value)`.
    pub fn latest(&self) -> Option<(i64, f64)> {
        self.latest
    }

    /// Number of points held (the window, plus up to one chunk older).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no point is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes this series holds on the heap for its points.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(Chunk::heap_bytes).sum::<usize>()
    }

    /// Adds a point, then drops points older than `window_ms` before the
    /// newest one and trims what is held to about `max_points`.
    pub fn push(&mut self, ts_ms: i64, value: f64, window_ms: i64, max_points: usize) {
        if self.latest.is_none_or(|(latest_ts, _)| ts_ms >= latest_ts) {
            self.latest = Some((ts_ms, value));
        }
        let value = value as f32;
        match self.pending {
            None => {
                self.pending = Some((ts_ms, value));
                self.len += 1;
            }
            Some((newest, newest_value)) if ts_ms > newest => {
                self.append(newest, newest_value);
                self.pending = Some((ts_ms, value));
                self.len += 1;
            }
            Some((newest, _)) if ts_ms == newest => self.pending = Some((ts_ms, value)),
            Some((newest, _)) => {
                // Older than the window: it would be pruned at once.
                if ts_ms >= newest.saturating_sub(window_ms) {
                    self.insert(ts_ms, value);
                }
            }
        }
        self.prune(window_ms, max_points);
    }

    /// Encodes a point later than every encoded one.
    fn append(&mut self, ts_ms: i64, value: f32) {
        if self.chunks.back().is_none_or(|c| c.len() >= CHUNK_POINTS) {
            if let Some(full) = self.chunks.back_mut() {
                full.shrink();
            }
            self.chunks.push_back(Chunk::default());
        }
        if let Some(open) = self.chunks.back_mut() {
            open.push(ts_ms, value);
        }
    }

    /// Puts a point older than the newest one in place (replacing a point
    /// at the same time).
    fn insert(&mut self, ts_ms: i64, value: f32) {
        if self.chunks.back().is_none_or(|c| ts_ms > c.last_ms()) {
            self.append(ts_ms, value);
            self.len += 1;
            return;
        }
        let at = self
            .chunks
            .partition_point(|c| c.first_ms() <= ts_ms)
            .saturating_sub(1);
        let mut points: Vec<(i64, f32)> = self.chunks[at].iter().collect();
        match points.binary_search_by_key(&ts_ms, |&(t, _)| t) {
            Ok(i) => points[i].1 = value,
            Err(i) => {
                points.insert(i, (ts_ms, value));
                self.len += 1;
            }
        }
        let mut chunk = gorilla::encode(points);
        if at + 1 < self.chunks.len() {
            chunk.shrink();
        }
        self.chunks[at] = chunk;
    }

    /// Drops the chunks wholly older than `window_ms` before the newest
    /// point, and the oldest chunks while more than `max_points` would
    /// remain without them.
    pub fn prune(&mut self, window_ms: i64, max_points: usize) {
        let Some((newest, _)) = self.pending else {
            return;
        };
        self.cutoff_ms = self.cutoff_ms.max(newest.saturating_sub(window_ms));
        while let Some(oldest) = self.chunks.front() {
            let aged = oldest.last_ms() < self.cutoff_ms;
            let over = self.len - oldest.len() >= max_points.max(1);
            if !(aged || over) {
                break;
            }
            if !aged {
                // Dropped for room: readers must not see a gap's edge as
                // the window's start.
                self.cutoff_ms = self.cutoff_ms.max(oldest.last_ms() + 1);
            }
            self.len -= oldest.len();
            self.chunks.pop_front();
        }
    }

    /// Points with `timestamp >= since_ms` in the window, oldest first, as
    /// `(timestamp_ms, value)`.
    pub fn points_since(&self, since_ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let since = since_ms.max(self.cutoff_ms);
        let start = self.chunks.partition_point(|c| c.last_ms() < since);
        self.chunks
            .range(start..)
            .flat_map(Chunk::iter)
            .chain(self.pending)
            .skip_while(move |&(t, _)| t < since)
            .map(|(t, v)| (t, f64::from(v)))
    }

    /// Points with `timestamp > after_ms` in the window, oldest first.
    pub fn points_after(&self, after_ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.points_since(after_ms.saturating_add(1))
    }

    /// The oldest point's time in the window, if any.
    pub fn oldest_ms(&self) -> Option<i64> {
        self.points_since(i64::MIN).next().map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const WINDOW: i64 = 15 * 60 * 1000;

    fn all(s: &Series) -> Vec<(i64, f64)> {
        s.points_since(i64::MIN).collect()
    }

    #[test]
    fn prunes_by_age_relative_to_newest() {
        let mut s = Series::new();
        for i in 0..2_000 {
            s.push(T0 + i * 1_000, i as f64, WINDOW, usize::MAX);
        }
        // 15 minutes at 1 s: the newest point and the 900 seconds before it
        // are read; at most one chunk more is held.
        let pts = all(&s);
        assert_eq!(pts.len(), 901);
        assert_eq!(pts[0], (T0 + 1_999_000 - WINDOW, (1_999 - 900) as f64));
        assert!(
            s.len() >= 901 && s.len() <= 901 + CHUNK_POINTS,
            "{}",
            s.len()
        );
        assert_eq!(s.latest(), Some((T0 + 1_999_000, 1_999.0)));
        assert_eq!(s.oldest_ms(), Some(T0 + 1_999_000 - WINDOW));
    }

    #[test]
    fn caps_what_is_held() {
        let mut s = Series::new();
        for i in 0..10_000 {
            s.push(T0 + i, 1.0, WINDOW, 10);
        }
        assert!(s.len() <= 10 + CHUNK_POINTS, "{}", s.len());
        let pts = all(&s);
        assert_eq!(pts.last().unwrap().0, T0 + 9_999);
        // What is read is contiguous: no hole at the window's start.
        assert!(pts.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    }

    #[test]
    fn out_of_order_points_are_inserted_in_place_and_latest_stays_newest() {
        let mut s = Series::new();
        s.push(T0 + 2_000, 2.0, WINDOW, 1_000);
        s.push(T0, 0.0, WINDOW, 1_000);
        s.push(T0 + 1_000, 1.0, WINDOW, 1_000);
        s.push(T0 + 1_000, 1.5, WINDOW, 1_000); // same second: replaced
        s.push(T0 + 2_000, 2.5, WINDOW, 1_000); // the newest, replaced
        assert_eq!(all(&s), [(T0, 0.0), (T0 + 1_000, 1.5), (T0 + 2_000, 2.5)]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.latest(), Some((T0 + 2_000, 2.5)));
        let since: Vec<_> = s.points_since(T0 + 1_000).map(|p| p.0).collect();
        assert_eq!(since, [T0 + 1_000, T0 + 2_000]);
        let after: Vec<_> = s.points_after(T0 + 1_000).map(|p| p.0).collect();
        assert_eq!(after, [T0 + 2_000]);
    }

    #[test]
    fn late_points_land_in_closed_chunks() {
        let mut s = Series::new();
        for i in (0..1_000).step_by(2) {
            s.push(T0 + i * 1_000, i as f64, WINDOW, 10_000);
        }
        for i in (1..1_000).step_by(2) {
            s.push(T0 + i * 1_000, i as f64, WINDOW, 10_000);
        }
        let pts = all(&s);
        assert_eq!(pts.len(), 901);
        assert!(
            pts.iter()
                .all(|&(t, v)| v == ((t - T0) / 1_000) as f64 && t >= T0 + 98_000)
        );
    }

    #[test]
    fn points_older_than_the_window_are_not_taken() {
        let mut s = Series::new();
        s.push(T0 + WINDOW * 2, 2.0, WINDOW, 1_000);
        s.push(T0, 1.0, WINDOW, 1_000);
        assert_eq!(all(&s), [(T0 + WINDOW * 2, 2.0)]);
    }

    #[test]
    fn a_jump_far_ahead_keeps_the_newer_side() {
        let mut s = Series::new();
        s.push(T0, 1.0, WINDOW, 1_000);
        s.push(T0 + 1_000, 1.0, WINDOW, 1_000);
        let far = T0 + 60 * 24 * 3_600_000; // 60 days later
        s.push(far, 2.0, WINDOW, 1_000);
        s.push(far + 1_000, 3.0, WINDOW, 1_000);
        assert_eq!(all(&s), [(far, 2.0), (far + 1_000, 3.0)]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_regular_series_is_compact() {
        let mut s = Series::new();
        for i in 0..900 {
            // An agent's jitter of a few ms, a value that moves slowly.
            let ts = T0 + i * 1_000 + (i * 37) % 9;
            s.push(ts, 1.0e9 + (i / 10) as f64 * 4_096.0, WINDOW, 4_000);
        }
        let per_point = s.heap_bytes() as f64 / s.len() as f64;
        assert!(per_point < 2.0, "{per_point} bytes a point");
    }
}
