//! The system sampler: every interval it reads CPU, memory, load, disks and
//! network, turns them into points of interned series, and fans the batch
//! out to every uplink without ever waiting for one.
//!
//! # Layout
//!
//! - [`cpu`]: total and per-core usage (sysinfo).
//! - [`mem`]: memory and swap (sysinfo).
//! - [`host`]: load averages, uptime and the process count.
//! - [`disk`]: filesystem usage per mount (sysinfo) and I/O rates per block
//!   device (`/proc/diskstats`).
//! - [`net`]: receive/transmit rates per interface (`/proc/net/dev`).
//!
//! # Cost
//!
//! The agent's budget is a few MiB and ~0.2% of a core at 1 s, so each part
//! refreshes only what it reports, slow-changing lists (mounts, block
//! devices) and the process count are refreshed every tens of seconds, and
//! series ids are interned once and cached. Interface and I/O counters are
//! read from one procfs file each rather than through sysinfo, whose
//! network refresh opens about ten sysfs files per interface per call.
//!
//! Rates are computed from counters over the elapsed time between two
//! reads ([`Rate`]); a series with no previous read reports nothing rather
//! than a made-up zero.

pub mod cpu;
pub mod disk;
pub mod host;
pub mod mem;
pub mod net;

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use stacktop_proto::v1::{BackendServer, Batch, CheckResult, Label, Point};
use sysinfo::System;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::logs::SecondStats;
use crate::observe::{Observation, ObservedPoint};
use crate::series::SeriesTable;

/// Turns a monotonically increasing counter into a per-second rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    prev: Option<(u64, Instant)>,
}

impl Rate {
    /// Records `value` read at `now` and returns the rate since the previous
    /// read: `None` on the first read, when no time passed, or when the
    /// counter went backwards (a reset or a re-created device).
    pub fn update(&mut self, value: u64, now: Instant) -> Option<f64> {
        let prev = self.prev.replace((value, now));
        let (old, then) = prev?;
        let elapsed = now.checked_duration_since(then)?.as_secs_f64();
        if elapsed <= 0.0 || value < old {
            return None;
        }
        Some((value - old) as f64 / elapsed)
    }
}

/// Appends a point for `series_id` (timestamped by its batch).
pub(crate) fn push(out: &mut Vec<Point>, series_id: u32, value: f64) {
    out.push(Point {
        series_id,
        value,
        timestamp_ms: 0,
    });
}

/// Reads a whole file into `buf`, reusing its allocation.
pub(crate) fn read_into(path: &str, buf: &mut String) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_string(buf)?;
    Ok(())
}

/// Samples the whole system into points.
pub struct Sampler {
    sys: System,
    cpu: cpu::Cpu,
    mem: mem::Memory,
    host: host::Host,
    disk: disk::Disks,
    net: net::Network,
}

impl Sampler {
    /// A sampler that interns its series in `series`.
    pub fn new(series: SeriesTable) -> Result<Self, sysinfo::Error> {
        Ok(Self {
            sys: System::new()?,
            cpu: cpu::Cpu::new(series.clone()),
            mem: mem::Memory::new(&series),
            host: host::Host::new(&series),
            disk: disk::Disks::new(series.clone())?,
            net: net::Network::new(series),
        })
    }

    /// Reads everything once, appending points to `out`. `now` is the
    /// instant rates are computed against.
    pub fn sample(&mut self, now: Instant, out: &mut Vec<Point>) {
        self.cpu.sample(&mut self.sys, out);
        self.mem.sample(&mut self.sys, out);
        self.host.sample(now, out);
        self.disk.sample(now, out);
        self.net.sample(now, out);
    }
}

/// One uplink's input as the sampler sees it.
#[derive(Debug)]
pub struct Output {
    /// The collector URL, for logs.
    pub collector: String,
    /// Bounded: when full the uplink is not keeping up, and the batch is
    /// dropped for that uplink alone instead of stalling the sampler.
    pub tx: mpsc::Sender<Arc<Batch>>,
    /// Batches dropped because `tx` was full.
    pub dropped: u64,
}

/// What the other inputs hand the sampler between two ticks.
#[derive(Debug)]
pub struct Inputs {
    /// Completed seconds of every access log.
    pub seconds: mpsc::Receiver<SecondStats>,
    /// Check results, facts, backends and check metrics.
    pub observations: mpsc::Receiver<Observation>,
}

/// The non-system part of the next batch, gathered from [`Inputs`].
#[derive(Debug, Default)]
struct Extras {
    checks: Vec<CheckResult>,
    /// Every fact known so far; batches carry them whole (a few labels), so
    /// a collector that restarts learns them from the next batch.
    facts: BTreeMap<String, String>,
    /// The latest backend sample since the last batch, or (exclusively)
    /// why the latest read failed: whichever came last wins.
    backends: Vec<BackendServer>,
    backends_error: String,
}

impl Extras {
    /// Moves everything waiting in `inputs` into `points` and `self`. The
    /// channels are bounded, so this is too.
    fn drain(&mut self, inputs: &mut Inputs, series: &SeriesTable, points: &mut Vec<Point>) {
        while let Ok(second) = inputs.seconds.try_recv() {
            for p in second.metric_points() {
                let id = series.intern(p.name, &p.labels);
                points.push(Point {
                    series_id: id,
                    value: p.value,
                    timestamp_ms: p.timestamp_ms,
                });
            }
        }
        while let Ok(observation) = inputs.observations.try_recv() {
            match observation {
                Observation::Points(observed) => {
                    for p in observed {
                        push_observed(series, points, p);
                    }
                }
                Observation::Check(check) => {
                    // Two results of one check in one tick: the newer wins.
                    self.checks.retain(|c| c.name != check.name);
                    self.checks.push(check);
                }
                Observation::Facts(facts) => {
                    for (key, value) in facts {
                        if value.is_empty() {
                            self.facts.remove(&key);
                        } else {
                            self.facts.insert(key, value);
                        }
                    }
                }
                Observation::Backends(backends) => {
                    self.backends = backends;
                    self.backends_error.clear();
                }
                Observation::BackendsUnknown(reason) => {
                    self.backends.clear();
                    self.backends_error = reason;
                }
            }
        }
    }

    /// Fills the batch's extra fields, leaving the facts for the next one.
    fn fill(&mut self, batch: &mut Batch) {
        batch.checks = std::mem::take(&mut self.checks);
        batch.backends = std::mem::take(&mut self.backends);
        batch.backends_error = std::mem::take(&mut self.backends_error);
        batch.facts = self.facts.iter().map(|(k, v)| Label::new(k, v)).collect();
    }
}

fn push_observed(series: &SeriesTable, points: &mut Vec<Point>, p: ObservedPoint) {
    if !p.value.is_finite() {
        return;
    }
    let labels: Vec<(&str, &str)> = p
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    points.push(Point {
        series_id: series.intern(&p.name, &labels),
        value: p.value,
        timestamp_ms: p.timestamp_ms,
    });
}

/// Where batches are kept before the uplinks get them, and the seq a
/// previous run stopped at.
#[derive(Debug, Default)]
pub struct Spooling {
    /// The durable spool; `None`: memory only.
    pub spool: Option<crate::spool::Spool>,
    /// Batches are numbered from this seq + 1.
    pub after_seq: u64,
}

/// How far (ms) a sample's wall-clock time may be from its tick's place on
/// the grid and still be stamped with the grid's time.
const GRID_TOLERANCE_MS: i64 = 25;

/// Stamps samples on a regular grid: the wall-clock time of the ticker's
/// deadline rather than of the moment the task ran, when the two are within
/// [`GRID_TOLERANCE_MS`]. The collector compresses timestamps by their
/// delta of delta: on the grid that is 1 bit a point, with the scheduler's
/// few ms of jitter 6 (Prometheus aligns scrape times for the same reason,
/// its `scrape.timestamp-tolerance`). A clock step or a stall beyond the
/// tolerance re-anchors the grid at the real time, so no stamp is ever off
/// by more than the tolerance.
#[derive(Debug, Default)]
struct Grid {
    /// A deadline and the wall-clock ms it was stamped with.
    anchor: Option<(std::time::Instant, i64)>,
}

impl Grid {
    fn stamp(&mut self, deadline: std::time::Instant, now_ms: i64) -> i64 {
        if let Some((at, at_ms)) = self.anchor {
            let since = deadline.saturating_duration_since(at).as_millis();
            let on_grid = at_ms.saturating_add(i64::try_from(since).unwrap_or(i64::MAX));
            if deadline >= at && (now_ms - on_grid).abs() <= GRID_TOLERANCE_MS {
                return on_grid;
            }
        }
        self.anchor = Some((deadline, now_ms));
        now_ms
    }
}

/// Samples every `interval` until `shutdown`, numbering batches after
/// `spooling.after_seq` (from 1 on a first run), spooling each, and
/// offering each to every output. Dropping the outputs on return tells the
/// uplinks no more batches will come.
pub async fn run(
    mut sampler: Sampler,
    series: SeriesTable,
    interval: Duration,
    mut inputs: Inputs,
    spooling: Spooling,
    mut outputs: Vec<Output>,
    shutdown: CancellationToken,
) {
    let mut extras = Extras::default();
    let mut ticker = tokio::time::interval(interval);
    // After a stall (suspended VM, overloaded host) resume the rhythm
    // instead of firing a burst of back-to-back samples.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq = spooling.after_seq;
    let mut capacity = 64;
    let dropped_series = spooling
        .spool
        .as_ref()
        .map(|_| series.intern(stacktop_proto::metrics::AGENT_SPOOL_DROPPED, &[]));
    let mut grid = Grid::default();
    loop {
        let deadline = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            deadline = ticker.tick() => deadline,
        };
        let now = Instant::now();
        let mut points = Vec::with_capacity(capacity);
        sampler.sample(now, &mut points);
        extras.drain(&mut inputs, &series, &mut points);
        if let (Some(spool), Some(id)) = (&spooling.spool, dropped_series) {
            push(&mut points, id, spool.dropped() as f64);
        }
        capacity = points.len().max(capacity);
        seq += 1;
        let mut batch = Batch {
            seq,
            timestamp_ms: grid.stamp(deadline.into_std(), stacktop_proto::now_unix_ms()),
            points,
            ..Default::default()
        };
        extras.fill(&mut batch);
        if let Some(spool) = &spooling.spool
            && let Err(err) = spool.append(&batch, &series)
        {
            // Still sent: a collector may ack it; only a restart before
            // that would lose it.
            warn!(seq, cause = %err, "cannot spool a batch; it is kept in memory only");
        }
        let batch = Arc::new(batch);
        for out in &mut outputs {
            match out.tx.try_send(Arc::clone(&batch)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    out.dropped += 1;
                    // Logged at the 1st, 2nd, 4th... drop so a stuck uplink
                    // cannot flood the log.
                    if !out.dropped.is_power_of_two() {
                        continue;
                    }
                    warn!(collector = %out.collector, seq, dropped = out.dropped,
                        "uplink is not keeping up; batch dropped for this collector");
                }
                // The uplink has stopped (shutdown); nothing to deliver to.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
    debug!(last_seq = seq, "sampler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_stamped_on_the_grid_within_the_tolerance() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let base = 1_795_608_000_000;
        let mut grid = Grid::default();
        // The first tick anchors the grid at the real time.
        assert_eq!(grid.stamp(at(0), base + 7), base + 7);
        // Jitter within the tolerance: on the grid.
        assert_eq!(grid.stamp(at(1), base + 1_012), base + 1_007);
        assert_eq!(grid.stamp(at(2), base + 1_990), base + 2_007);
        // A clock step (or a stall) beyond it: the real time, re-anchored.
        assert_eq!(grid.stamp(at(3), base + 3_500), base + 3_500);
        assert_eq!(grid.stamp(at(4), base + 4_503), base + 4_500);
        assert_eq!(
            grid.stamp(at(5), base + 5_500 - GRID_TOLERANCE_MS),
            base + 5_500
        );
    }

    #[test]
    fn first_read_has_no_rate() {
        let mut rate = Rate::default();
        assert_eq!(rate.update(100, Instant::now()), None);
    }

    #[test]
    fn rate_uses_the_elapsed_time() {
        let t0 = Instant::now();
        let mut rate = Rate::default();
        rate.update(1_000, t0);
        assert_eq!(
            rate.update(3_000, t0 + Duration::from_secs(2)),
            Some(1_000.0)
        );
        assert_eq!(
            rate.update(3_500, t0 + Duration::from_millis(2_500)),
            Some(1_000.0)
        );
    }

    #[test]
    fn counter_reset_and_zero_elapsed_give_no_rate() {
        let t0 = Instant::now();
        let mut rate = Rate::default();
        rate.update(1_000, t0);
        assert_eq!(rate.update(10, t0 + Duration::from_secs(1)), None);
        assert_eq!(rate.update(20, t0 + Duration::from_secs(1)), None);
        assert_eq!(rate.update(30, t0 + Duration::from_secs(2)), Some(10.0));
    }

    /// Runs `observations` through one tick's drain and fill.
    fn tick(extras: &mut Extras, observations: Vec<Observation>) -> Batch {
        let (tx, rx) = mpsc::channel(16);
        let (_seconds_tx, seconds) = mpsc::channel(1);
        for o in observations {
            tx.try_send(o).unwrap();
        }
        let mut inputs = Inputs {
            seconds,
            observations: rx,
        };
        let mut batch = Batch::default();
        extras.drain(&mut inputs, &SeriesTable::new(), &mut batch.points);
        extras.fill(&mut batch);
        batch
    }

    #[test]
    fn a_failed_backend_read_is_sent_until_a_sample_replaces_it() {
        let server = |name: &str| BackendServer {
            backend: "be_web".into(),
            server: name.into(),
            status: "UP".into(),
            ..Default::default()
        };
        let mut extras = Extras::default();
        let batch = tick(
            &mut extras,
            vec![Observation::Backends(vec![server("web1")])],
        );
        assert_eq!(
            (batch.backends.len(), batch.backends_error.as_str()),
            (1, "")
        );
        // No read this tick: no news, and no error either.
        let batch = tick(&mut extras, Vec::new());
        assert_eq!(
            (batch.backends.len(), batch.backends_error.as_str()),
            (0, "")
        );
        // A failed read: the batch says why, with no backends.
        let batch = tick(
            &mut extras,
            vec![
                Observation::Backends(vec![server("web1")]),
                Observation::BackendsUnknown("connection refused".into()),
            ],
        );
        assert!(batch.backends.is_empty());
        assert_eq!(batch.backends_error, "connection refused");
        // A later good read in the same tick clears it.
        let batch = tick(
            &mut extras,
            vec![
                Observation::BackendsUnknown("connection refused".into()),
                Observation::Backends(vec![server("web1"), server("web2")]),
            ],
        );
        assert_eq!(
            (batch.backends.len(), batch.backends_error.as_str()),
            (2, "")
        );
    }

    #[test]
    fn sampler_reports_the_documented_names() {
        let series = SeriesTable::new();
        let mut sampler = Sampler::new(series.clone()).unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        sampler.sample(t0, &mut out);
        out.clear();
        std::thread::sleep(Duration::from_millis(250));
        sampler.sample(t0 + Duration::from_millis(250), &mut out);
        let names: Vec<String> = out
            .iter()
            .map(|p| series.def(p.series_id).unwrap().name)
            .collect();
        if cfg!(target_os = "linux") {
            for name in [
                "node_cpu_usage_ratio",
                "node_memory_used_bytes",
                "node_memory_total_bytes",
                "node_load1",
                "node_uptime_seconds",
                "node_processes",
                "node_network_receive_bytes_per_second",
            ] {
                assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
            }
        }
        for p in &out {
            assert!(p.value.is_finite() && p.value >= 0.0, "{p:?}");
        }
    }
}
