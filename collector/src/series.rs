//! One series' recent history: a compact, time-ordered ring buffer.
//!
//! # Why this layout
//!
//! A point is 8 bytes: a `u32` millisecond offset from the series' base time
//! plus an `f32` value (a `(i64, f64)` pair would be 16). At the target of
//! 10,000 nodes x 40 series x 900 points (15 minutes at 1 s) that is about
//! 2.9 GB instead of 5.8 GB; a realistic 1,000-node fleet needs about 290 MB.
//! `f32` keeps 7 significant digits, plenty for ratios, rates and byte
//! counts shown on a chart; the exact latest value is kept separately as an
//! `f64`. The offset covers 49 days; the base is moved when a point would
//! not fit (rare, O(n)).
//!
//! Points are kept sorted by time. Log-derived rates may carry an earlier
//! timestamp than the newest point, so an out-of-order point is inserted in
//! place; a point at an existing timestamp replaces it. Pruning is relative
//! to the series' newest point (so an agent whose clock is off by more than
//! the window does not lose everything), and the buffer also has a hard cap
//! on its length, so a misbehaving agent cannot grow it without bound.

use std::collections::VecDeque;

use crate::slot::Slot;

/// The recent points of one series plus its exact latest value.
#[derive(Debug, Clone)]
pub struct Series {
    /// Unix ms that point offsets are relative to.
    base_ms: i64,
    /// `(offset from base_ms in ms, value)`, oldest first.
    points: VecDeque<(u32, f32)>,
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
            base_ms: 0,
            points: VecDeque::new(),
            latest: None,
            updated_ms: 0,
            slot: Slot::Other,
            value_index: None,
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

    /// Number of points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no point is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Adds a point, then drops points older than `window_ms` before the
    /// newest one and trims the buffer to `max_points`.
    pub fn push(&mut self, ts_ms: i64, value: f64, window_ms: i64, max_points: usize) {
        if self.latest.is_none_or(|(latest_ts, _)| ts_ms >= latest_ts) {
            self.latest = Some((ts_ms, value));
        }
        if self.points.is_empty() {
            self.base_ms = ts_ms;
        }
        let offset = match self.offset(ts_ms) {
            Some(offset) => offset,
            None => {
                self.rebase(ts_ms);
                self.offset(ts_ms).unwrap_or(0)
            }
        };
        let value = value as f32;
        match self.points.back() {
            Some(&(last, _)) if offset > last => self.points.push_back((offset, value)),
            None => self.points.push_back((offset, value)),
            Some(_) => match self.points.binary_search_by_key(&offset, |&(o, _)| o) {
                Ok(i) => self.points[i].1 = value,
                Err(i) => self.points.insert(i, (offset, value)),
            },
        }
        self.prune(window_ms, max_points);
    }

    /// Drops points older than `window_ms` before the newest point, and the
    /// oldest points beyond `max_points`.
    pub fn prune(&mut self, window_ms: i64, max_points: usize) {
        let Some(&(newest, _)) = self.points.back() else {
            return;
        };
        let cutoff = self.base_ms + i64::from(newest) - window_ms;
        while let Some(&(oldest, _)) = self.points.front() {
            if self.base_ms + i64::from(oldest) < cutoff || self.points.len() > max_points {
                self.points.pop_front();
            } else {
                break;
            }
        }
    }

    /// Points with `timestamp >= since_ms`, oldest first, as
    /// `(timestamp_ms, value)`.
    pub fn points_since(&self, since_ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let start = self
            .points
            .partition_point(|&(o, _)| self.base_ms + i64::from(o) < since_ms);
        self.points
            .range(start..)
            .map(|&(o, v)| (self.base_ms + i64::from(o), f64::from(v)))
    }

    /// Points with `timestamp > after_ms`, oldest first.
    pub fn points_after(&self, after_ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let start = self
            .points
            .partition_point(|&(o, _)| self.base_ms + i64::from(o) <= after_ms);
        self.points
            .range(start..)
            .map(|&(o, v)| (self.base_ms + i64::from(o), f64::from(v)))
    }

    /// The last `n` points as `(timestamp_ms, value)`, oldest first.
    pub fn last_points(&self, n: usize) -> impl Iterator<Item = (i64, f64)> + '_ {
        let skip = self.points.len().saturating_sub(n);
        self.points
            .range(skip..)
            .map(|&(o, v)| (self.base_ms + i64::from(o), f64::from(v)))
    }

    /// The last `n` values, oldest first.
    pub fn last_values(&self, n: usize) -> impl Iterator<Item = f64> + '_ {
        let skip = self.points.len().saturating_sub(n);
        self.points.range(skip..).map(|&(_, v)| f64::from(v))
    }

    fn offset(&self, ts_ms: i64) -> Option<u32> {
        u32::try_from(ts_ms.checked_sub(self.base_ms)?).ok()
    }

    /// Moves the base so that both the held points and `ts_ms` fit. When
    /// they cannot all fit (more than 49 days apart), the older side goes.
    fn rebase(&mut self, ts_ms: i64) {
        let old: Vec<(i64, f32)> = self
            .points
            .drain(..)
            .map(|(o, v)| (self.base_ms + i64::from(o), v))
            .collect();
        let oldest = old.first().map_or(ts_ms, |&(t, _)| t.min(ts_ms));
        let newest = old.last().map_or(ts_ms, |&(t, _)| t.max(ts_ms));
        self.base_ms = newest.saturating_sub(i64::from(u32::MAX)).max(oldest);
        self.points.extend(
            old.into_iter()
                .filter_map(|(t, v)| Some((u32::try_from(t - self.base_ms).ok()?, v))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const WINDOW: i64 = 15 * 60 * 1000;

    #[test]
    fn points_are_compact() {
        assert_eq!(std::mem::size_of::<(u32, f32)>(), 8);
    }

    #[test]
    fn prunes_by_age_relative_to_newest() {
        let mut s = Series::new();
        for i in 0..2_000 {
            s.push(T0 + i * 1_000, i as f64, WINDOW, usize::MAX);
        }
        // 15 minutes at 1 s: the newest point and the 900 seconds before it.
        assert_eq!(s.len(), 901);
        let first = s.points_since(0).next().unwrap();
        assert_eq!(first.0, T0 + 1_999_000 - WINDOW);
        assert_eq!(s.latest(), Some((T0 + 1_999_000, 1_999.0)));
    }

    #[test]
    fn caps_length() {
        let mut s = Series::new();
        for i in 0..100 {
            s.push(T0 + i, 1.0, WINDOW, 10);
        }
        assert_eq!(s.len(), 10);
        assert_eq!(s.points_since(0).next().unwrap().0, T0 + 90);
    }

    #[test]
    fn out_of_order_points_are_inserted_in_place_and_latest_stays_newest() {
        let mut s = Series::new();
        s.push(T0 + 2_000, 2.0, WINDOW, 100);
        s.push(T0, 0.0, WINDOW, 100); // earlier than base: rebase
        s.push(T0 + 1_000, 1.0, WINDOW, 100);
        s.push(T0 + 1_000, 1.5, WINDOW, 100); // same second: replaced
        let pts: Vec<_> = s.points_since(0).collect();
        assert_eq!(pts, [(T0, 0.0), (T0 + 1_000, 1.5), (T0 + 2_000, 2.0)]);
        assert_eq!(s.latest(), Some((T0 + 2_000, 2.0)));
        let since: Vec<_> = s.points_since(T0 + 1_000).map(|p| p.0).collect();
        assert_eq!(since, [T0 + 1_000, T0 + 2_000]);
        let last: Vec<_> = s.last_values(2).collect();
        assert_eq!(last, [1.5, 2.0]);
    }

    #[test]
    fn far_apart_points_keep_the_newer_side() {
        let mut s = Series::new();
        s.push(T0, 1.0, i64::MAX / 4, 100);
        let far = T0 + 60 * 24 * 3_600_000; // 60 days later
        s.push(far, 2.0, i64::MAX / 4, 100);
        let pts: Vec<_> = s.points_since(0).collect();
        assert_eq!(pts, [(far, 2.0)]);
    }
}
