//! Per-second aggregation by the log's own clock.
//!
//! Lines are bucketed by the timestamp written in them, not by when the agent read them, so
//! a burst that the tailer reads late still lands in the seconds it happened in.
//!
//! # When a second is reported
//!
//! A second `s` is *complete*, and emitted exactly once as a [`SecondStats`], when either
//!
//! - the log's clock (the newest timestamp seen) has passed it by more than the grace:
//!   `max_seen - s > grace` (default [`DEFAULT_GRACE`], 2 s: Nginx writes a line when a
//!   request *ends* but stamps `$time_local` with that moment, while `$msec`/HAProxy stamp
//!   the start, and several workers write concurrently, so lines arrive slightly out of
//!   order), or
//! - the wall clock has passed it by grace + [`WALL_SLACK`], so a log that goes quiet still
//!   reports its last seconds.
//!
//! A line for a second that was already emitted is counted as `late` (reported in the next
//! emitted second) and otherwise dropped: a reported point is never revised.
//!
//! # Quiet seconds
//!
//! A complete second with no lines is emitted with zero requests: the rate really was 0, and
//! a gap would read as "unknown" on the dashboard. Zero seconds are only produced from the
//! aggregator's start (the tailer's start) onwards, and a jump of more than
//! [`MAX_ZERO_FILL`] seconds (a clock step, a file with old timestamps) is skipped rather
//! than filled. A line stamped more than [`MAX_FUTURE`] seconds ahead of the wall clock is
//! counted as malformed instead (see there). Malformed lines carry no trustworthy time, so they are counted in the next
//! second that is emitted.
//!
//! # Health checks
//!
//! A line the parser marked as a health check ([`Record::health_check`]) moves the log's clock
//! like any line but counts only in [`SecondStats::health_checks`]: not as a request, not in
//! the bytes, not in the latency quantiles. A load balancer probing every web server each
//! second would otherwise read as traffic the load balancer never forwarded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::parse::Record;

/// Default grace before a second is considered complete.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// Extra wall-clock wait on top of the grace before a quiet second is flushed, because the
/// writer's clock and ours are read at slightly different moments.
pub const WALL_SLACK: i64 = 1;

/// The longest run of empty seconds filled with zeros; longer gaps are skipped.
pub const MAX_ZERO_FILL: i64 = 300;

/// At most this many seconds are pending; beyond it the oldest is emitted early, so lines
/// with wildly spread timestamps cannot grow memory without bound.
pub const MAX_PENDING: usize = 64;

/// Lines stamped more than this many seconds ahead of the wall clock are counted as
/// malformed: believing them would move the log's clock into the future, complete every
/// real second early and turn all later lines into late ones.
pub const MAX_FUTURE: i64 = 300;

/// Largest recorded latency: 1 hour in microseconds; longer values are clamped.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Status classes, in the order of [`SecondStats::classes`]: the `class` label values every
/// side agrees on.
pub const CLASSES: [&str; 5] = stacktop_proto::metrics::ALL_CLASSES;

/// Index into [`CLASSES`] for a status code; 1xx, 0 and anything above 599 are "other".
#[inline]
pub fn class_index(status: u16) -> usize {
    match status {
        200..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        500..=599 => 3,
        _ => 4,
    }
}

/// Latency quantiles of one second, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// What one log source did in one complete second.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondStats {
    /// The source's name (the `source` label).
    pub source: Arc<str>,
    /// The second, in unix seconds, by the log's clock.
    pub unix: i64,
    /// Requests by status class, indexed like [`CLASSES`]: 2xx, 3xx, 4xx, 5xx, other.
    pub classes: [u64; 5],
    /// Response bytes sent in this second.
    pub bytes: u64,
    /// Malformed lines counted since the previous emitted second.
    pub malformed: u64,
    /// Lines that arrived after their second had been emitted, since the previous one.
    pub late: u64,
    /// Latency quantiles, when the format has a request time and some request had one.
    pub latency: Option<Quantiles>,
    /// Health-check requests in this second; `None` when the source has no health-check
    /// paths (then nothing is reported for them, rather than a zero that means nothing).
    pub health_checks: Option<u64>,
}

impl SecondStats {
    /// All requests in this second, every class included.
    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// One pending second.
#[derive(Debug)]
struct Bucket {
    /// Requests by class.
    classes: [u64; 5],
    /// Bytes sent.
    bytes: u64,
    /// Health-check requests, counted apart.
    health_checks: u64,
    /// Latencies in microseconds; created on the first line with a latency.
    hist: Option<Histogram<u32>>,
}

impl Bucket {
    /// A second with no line yet.
    fn empty() -> Self {
        Self {
            classes: [0; 5],
            bytes: 0,
            health_checks: 0,
            hist: None,
        }
    }
}

/// Accumulates [`Record`]s of one source into complete seconds.
#[derive(Debug)]
pub struct Aggregator {
    /// The `source` label copied into every [`SecondStats`].
    source: Arc<str>,
    /// Grace in whole seconds.
    grace: i64,
    /// No zero seconds are invented before this second (the tailer's start).
    start: i64,
    /// Seconds with lines that are not complete yet.
    pending: BTreeMap<i64, Bucket>,
    /// The newest timestamp seen in any line: the log's clock.
    max_seen: Option<i64>,
    /// The last second emitted; lines at or before it are late.
    emitted_through: Option<i64>,
    /// Malformed lines not yet reported.
    malformed: u64,
    /// Late lines not yet reported.
    late: u64,
    /// The wall clock as last told; `None` until then (then no line is "in the future").
    wall: Option<i64>,
    /// Histograms of emitted seconds, reset and kept for reuse so steady state allocates
    /// nothing.
    spare: Vec<Histogram<u32>>,
    /// Whether the source has health-check paths, so seconds report their count.
    health_checks: bool,
}

impl Aggregator {
    /// Creates an aggregator for `source` that fills quiet seconds with zeros from `start`
    /// (unix seconds) on.
    pub fn new(source: impl Into<Arc<str>>, grace: Duration, start: i64) -> Self {
        Self {
            source: source.into(),
            grace: grace.as_secs() as i64,
            start,
            pending: BTreeMap::new(),
            max_seen: None,
            emitted_through: None,
            malformed: 0,
            late: 0,
            wall: None,
            spare: Vec::new(),
            health_checks: false,
        }
    }

    /// Reports [`SecondStats::health_checks`] for every second (zeros included): for a source
    /// with health-check paths.
    pub fn with_health_checks(mut self, counted: bool) -> Self {
        self.health_checks = counted;
        self
    }

    /// Lines counted as late so far and not yet reported.
    pub fn pending_late(&self) -> u64 {
        self.late
    }

    /// Tells the aggregator the wall clock (unix seconds), so lines from the far future can
    /// be refused; [`Aggregator::flush`] does this too.
    pub fn set_wall_clock(&mut self, now: i64) {
        self.wall = Some(now);
    }

    /// Adds one parsed line.
    pub fn record(&mut self, r: &Record) {
        if self
            .wall
            .is_some_and(|w| r.unix > w.saturating_add(MAX_FUTURE))
        {
            self.malformed += 1;
            return;
        }
        if self.emitted_through.is_some_and(|e| r.unix <= e) {
            self.late += 1;
            return;
        }
        self.max_seen = Some(self.max_seen.map_or(r.unix, |m| m.max(r.unix)));
        let b = self.pending.entry(r.unix).or_insert_with(Bucket::empty);
        if r.health_check {
            b.health_checks += 1;
            return;
        }
        b.classes[class_index(r.status)] += 1;
        b.bytes = b.bytes.saturating_add(r.bytes);
        if let Some(us) = r.latency_us {
            let spare = &mut self.spare;
            b.hist
                .get_or_insert_with(|| spare.pop().unwrap_or_else(new_histogram))
                .saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// Counts one malformed line.
    pub fn malformed(&mut self) {
        self.malformed += 1;
    }

    /// Emits every second that is complete by the log's clock or by `now` (wall clock, unix
    /// seconds), in time order, zero seconds included.
    pub fn flush(&mut self, now: i64, out: &mut impl FnMut(SecondStats)) {
        self.wall = Some(now);
        let by_log = self.max_seen.map_or(i64::MIN, |m| m - self.grace - 1);
        let by_wall = now - self.grace - WALL_SLACK - 1;
        let mut limit = by_log.max(by_wall);
        while self.pending.len() > MAX_PENDING {
            let oldest = *self.pending.keys().next().expect("pending is not empty");
            limit = limit.max(oldest);
            self.emit_through(oldest, out);
        }
        self.emit_through(limit, out);
    }

    /// Emits all seconds up to and including `limit`.
    fn emit_through(&mut self, limit: i64, out: &mut impl FnMut(SecondStats)) {
        loop {
            let next_pending = self.pending.keys().next().copied().filter(|&s| s <= limit);
            // The next second to emit: right after the last emitted one when zero-filling,
            // else the next second that has lines.
            let next_zero = Some(
                self.emitted_through
                    .map_or(self.start, |e| self.start.max(e + 1)),
            )
            .filter(|&z| z <= limit);
            let s = match (next_pending, next_zero) {
                (Some(p), Some(z)) if z < p && p - z <= MAX_ZERO_FILL => z,
                (Some(p), _) => p,
                (None, Some(z)) => {
                    // A long silence: skip to the last second of it instead of filling it.
                    if limit - z > MAX_ZERO_FILL {
                        limit - MAX_ZERO_FILL
                    } else {
                        z
                    }
                }
                (None, None) => return,
            };
            let bucket = self.pending.remove(&s).unwrap_or_else(Bucket::empty);
            let stats = self.complete(s, bucket);
            self.emitted_through = Some(s);
            out(stats);
        }
    }

    /// Turns a bucket into its report, recycling the histogram.
    fn complete(&mut self, unix: i64, b: Bucket) -> SecondStats {
        let latency = b.hist.map(|mut h| {
            let q = |h: &Histogram<u32>, p: f64| h.value_at_quantile(p) as f64 / 1e6;
            let out = Quantiles {
                p50: q(&h, 0.5),
                p95: q(&h, 0.95),
                p99: q(&h, 0.99),
            };
            h.reset();
            self.spare.push(h);
            out
        });
        SecondStats {
            source: self.source.clone(),
            unix,
            classes: b.classes,
            bytes: b.bytes,
            malformed: std::mem::take(&mut self.malformed),
            late: std::mem::take(&mut self.late),
            latency,
            health_checks: self.health_checks.then_some(b.health_checks),
        }
    }
}

/// A histogram for one second's latencies: 1 µs to 1 h at 2 significant digits (1% error),
/// about 11 KiB with `u32` counts.
fn new_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(unix: i64, status: u16, latency_ms: Option<u64>) -> Record {
        Record {
            unix,
            status,
            bytes: 100,
            latency_us: latency_ms.map(|m| m * 1000),
            health_check: false,
        }
    }

    fn collect(a: &mut Aggregator, now: i64) -> Vec<SecondStats> {
        let mut v = Vec::new();
        a.flush(now, &mut |s| v.push(s));
        v
    }

    #[test]
    fn seconds_complete_after_grace_by_log_clock() {
        let mut a = Aggregator::new("web", DEFAULT_GRACE, 100);
        for (t, s) in [(100, 200), (100, 404), (101, 500), (101, 301), (102, 200)] {
            a.record(&r(t, s, None));
        }
        // Log clock at 102: nothing is 2 s behind it yet.
        assert!(collect(&mut a, 100).is_empty());
        a.record(&r(103, 200, None));
        let out = collect(&mut a, 100);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].unix, out[0].classes), (100, [1, 0, 1, 0, 0]));
        assert_eq!(out[0].bytes, 200);
        assert_eq!(out[0].latency, None);
        a.record(&r(105, 100, None));
        let out = collect(&mut a, 100);
        assert_eq!(out.iter().map(|s| s.unix).collect::<Vec<_>>(), [101, 102]);
        assert_eq!(out[0].classes, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn late_lines_are_counted_and_dropped() {
        let mut a = Aggregator::new("web", DEFAULT_GRACE, 100);
        a.record(&r(100, 200, None));
        a.record(&r(104, 200, None));
        assert_eq!(collect(&mut a, 100).len(), 2); // 100 and 101
        a.record(&r(100, 200, None));
        a.record(&r(101, 200, None));
        a.record(&r(102, 200, None)); // still pending: not late
        a.malformed();
        assert_eq!(a.pending_late(), 2);
        a.record(&r(106, 200, None));
        let out = collect(&mut a, 100);
        assert_eq!(out[0].unix, 102);
        assert_eq!(
            (out[0].requests(), out[0].late, out[0].malformed),
            (1, 2, 1)
        );
        assert_eq!(out[1].late, 0);
    }

    #[test]
    fn wall_clock_flushes_a_quiet_log_with_zero_seconds() {
        let mut a = Aggregator::new("web", DEFAULT_GRACE, 100);
        a.record(&r(100, 200, None));
        assert!(collect(&mut a, 103).is_empty());
        let out = collect(&mut a, 106);
        assert_eq!(
            out.iter().map(|s| s.unix).collect::<Vec<_>>(),
            [100, 101, 102]
        );
        assert_eq!(
            out.iter().map(|s| s.requests()).collect::<Vec<_>>(),
            [1, 0, 0]
        );
    }

    #[test]
    fn no_zero_seconds_before_start_or_across_long_gaps() {
        let mut a = Aggregator::new("web", DEFAULT_GRACE, 1_000);
        // Old lines (a file read from its start) are reported, gaps between them are not filled.
        a.record(&r(10, 200, None));
        a.record(&r(20, 200, None));
        let out = collect(&mut a, 1_004);
        let secs: Vec<i64> = out.iter().map(|s| s.unix).collect();
        assert_eq!(&secs[..3], [10, 20, 1_000]);
        assert_eq!(secs.len(), 3);
        // A long silence is skipped, not filled with 300+ zeros.
        let out = collect(&mut a, 10_000);
        assert!(out.len() as i64 <= MAX_ZERO_FILL + 1, "{}", out.len());
        assert_eq!(out.last().unwrap().unix, 10_000 - 4);
    }

    #[test]
    fn latency_quantiles() {
        let mut a = Aggregator::new("web", Duration::ZERO, 50);
        for ms in 1..=100 {
            a.record(&r(50, 200, Some(ms)));
        }
        a.record(&r(50, 200, None)); // counted, no latency
        a.record(&r(52, 200, Some(5)));
        let out = collect(&mut a, 50);
        assert_eq!(out[0].requests(), 101);
        let q = out[0].latency.unwrap();
        assert!((q.p50 - 0.050).abs() < 0.001, "{q:?}");
        assert!((q.p95 - 0.095).abs() < 0.001, "{q:?}");
        assert!((q.p99 - 0.099).abs() < 0.001, "{q:?}");
        // The zero second between has no latency.
        assert_eq!(out[1].latency, None);
    }

    #[test]
    fn health_checks_are_counted_apart_from_requests() {
        let check = |unix: i64| Record {
            health_check: true,
            bytes: 5_000,
            ..r(unix, 200, Some(900))
        };
        let mut a = Aggregator::new("web", Duration::ZERO, 50).with_health_checks(true);
        a.record(&r(50, 200, Some(10)));
        a.record(&check(50));
        a.record(&check(50));
        // A second with only health checks still moves the log's clock.
        a.record(&check(52));
        let out = collect(&mut a, 50);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            (out[0].requests(), out[0].bytes, out[0].health_checks),
            (1, 100, Some(2))
        );
        // The 900 ms health checks are not in the quantiles.
        assert!((out[0].latency.unwrap().p99 - 0.010).abs() < 0.001);
        assert_eq!((out[1].requests(), out[1].health_checks), (0, Some(0)));
        // Without health-check paths nothing is reported for them.
        let mut a = Aggregator::new("web", Duration::ZERO, 50);
        a.record(&r(50, 200, None));
        assert_eq!(collect(&mut a, 60)[0].health_checks, None);
    }

    #[test]
    fn far_future_lines_do_not_move_the_clock() {
        let mut a = Aggregator::new("web", DEFAULT_GRACE, 100);
        a.set_wall_clock(100);
        a.record(&r(100, 200, None));
        a.record(&r(100 + MAX_FUTURE + 1, 200, None));
        a.record(&r(101, 200, None));
        assert!(collect(&mut a, 100).is_empty());
        a.record(&r(103, 200, None));
        let out = collect(&mut a, 100);
        assert_eq!(
            (out[0].unix, out[0].requests(), out[0].malformed),
            (100, 1, 1)
        );
    }
}
