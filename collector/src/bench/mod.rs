//! `stacktop-collector bench`: a fleet load generator and measurement.
//!
//! N simulated agents ([`agent`]), each a real gRPC stream on its own
//! connection sending what a real agent sends every interval, and W
//! Fleet.Watch subscribers ([`watcher`]) against one collector. Reported
//! per watcher count: the samples per second the collector acknowledged,
//! its CPU (% of one core) and memory, the bytes it sent to watchers, and
//! the time from a sample's timestamp to its arrival at a subscriber
//! (p50/p99).
//!
//! The collector is by default a separate process started by the benchmark
//! ([`process`]), so its CPU and memory are its own; `--collector URL` with
//! `--collector-pid` measures one already running, and `--in-process` runs
//! it inside the benchmark (then CPU figures include the load generator).
//! Agents keep running across the watcher counts; each count gets its own
//! warm-up and measurement window.
//!
//! `--tls` makes a throw-away CA and collector certificate, serves TLS and
//! dials `https://`, so one run each way gives TLS's cost: the collector's
//! CPU while every connection is set up (the handshakes) and while it
//! ingests.

pub mod agent;
pub mod process;
pub mod watcher;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use stacktop_proto::now_unix_ms;
use stacktop_proto::transport::{ClientConfig, ClientTls, TransportError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use self::agent::Counters;
use self::process::{Spawned, TICKS_PER_SECOND, Usage};
use self::watcher::WatchCounters;
use crate::config::Config;

/// Which collector the benchmark loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Start `exe` (normally this very binary) as a child process.
    Spawn {
        /// The collector binary.
        exe: PathBuf,
        /// Where its log goes; `None`: nowhere.
        log: Option<PathBuf>,
    },
    /// A collector already running at `url`, process `pid` when known.
    Existing {
        /// Its address.
        url: String,
        /// Its process id, for CPU and memory.
        pid: Option<u32>,
    },
    /// A collector inside the benchmark process.
    InProcess,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Simulated agents.
    pub agents: usize,
    /// Agents sharing one connection (HTTP/2 streams on it): 1 is what real
    /// agents do; more takes the load generator's and the kernel's
    /// per-connection cost out of the picture.
    pub agents_per_connection: usize,
    /// Series per agent (at least the standard set of about 25-33).
    pub series: usize,
    /// Sampling interval of every agent.
    pub interval: Duration,
    /// Watcher counts to measure, one after the other.
    pub watchers: Vec<usize>,
    /// Of each watcher set, how many decode and measure latency (the rest
    /// only receive).
    pub measuring_watchers: usize,
    /// Warm-up before each measurement.
    pub warmup: Duration,
    /// Length of each measurement.
    pub duration: Duration,
    /// The collector.
    pub target: Target,
    /// Serve and dial TLS (a started or in-process collector only).
    pub tls: bool,
    /// Start the collector without its ingest journal (`--memory-only`);
    /// an in-process collector always runs so.
    pub memory_only: bool,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The collector process could not be started.
    #[error("starting the collector: {0}")]
    Spawn(#[source] std::io::Error),
    /// The in-process collector could not bind.
    #[error("binding the in-process collector: {0}")]
    Bind(#[source] std::io::Error),
    /// A connection could not be made.
    #[error(transparent)]
    Connect(#[from] TransportError),
    /// Nothing to measure.
    #[error("{0}")]
    Invalid(String),
}

/// One measured window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phase {
    /// Watch subscribers during the window.
    pub watchers: usize,
    /// Seconds measured.
    pub seconds: f64,
    /// Samples (points) acknowledged per second.
    pub samples_per_second: f64,
    /// Batches acknowledged per second.
    pub batches_per_second: f64,
    /// Batches sent but not (yet) acknowledged at the end: a growing
    /// number means the collector does not keep up.
    pub unacked_batches: u64,
    /// Collector CPU, percent of one core; `null` when not measurable.
    pub collector_cpu_percent: Option<f64>,
    /// Collector resident memory at the end, MiB.
    pub collector_rss_mib: Option<f64>,
    /// Collector peak resident memory so far, MiB.
    pub collector_peak_rss_mib: Option<f64>,
    /// The benchmark's own CPU, percent of one core.
    pub bench_cpu_percent: f64,
    /// Watch updates received per second, over all watchers.
    pub watch_updates_per_second: f64,
    /// Watch bytes received per second, over all watchers, MiB.
    pub watch_mib_per_second: f64,
    /// Node changes whose latency was measured.
    pub latency_samples: u64,
    /// Sample -> Watch latency, ms.
    pub latency_p50_ms: Option<u64>,
    /// Sample -> Watch latency, ms.
    pub latency_p99_ms: Option<u64>,
    /// Sample -> Watch latency, ms.
    pub latency_max_ms: Option<u64>,
    /// Streams that failed during the window (agents and watchers).
    pub errors: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Simulated agents.
    pub agents: usize,
    /// Agents per connection.
    pub agents_per_connection: usize,
    /// Series per agent.
    pub series_per_agent: usize,
    /// Interval, ms.
    pub interval_ms: u64,
    /// How the collector ran: `process`, `existing`, `in-process`.
    pub collector: &'static str,
    /// Whether the connections were TLS.
    pub tls: bool,
    /// Whether batches were journaled before they were acknowledged.
    pub durable: bool,
    /// Seconds to open every agent connection (TCP, plus the TLS
    /// handshake with `tls`), 64 at a time.
    pub connect_seconds: f64,
    /// Collector CPU seconds spent while they were opened; `null` when not
    /// measurable.
    pub connect_collector_cpu_seconds: Option<f64>,
    /// One entry per watcher count.
    pub phases: Vec<Phase>,
    /// Over the whole run (warm-ups included), batches the agents sent.
    pub batches_sent: u64,
    /// Over the whole run, batches the collector acknowledged (those in
    /// flight when the agents stopped are not).
    pub batches_acked: u64,
    /// Over the whole run, agent streams that failed, refused connections
    /// included: a phase's `errors` counts only its measured window, and a
    /// run is clean only if this is 0.
    pub agent_errors: u64,
}

impl Report {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{} agents x {} series every {} ms ({} per connection), collector {}{}\n",
            self.agents,
            self.series_per_agent,
            self.interval_ms,
            self.agents_per_connection,
            self.collector,
            match (self.tls, self.durable) {
                (true, true) => ", TLS, durable",
                (true, false) => ", TLS, memory only",
                (false, true) => ", plaintext, durable",
                (false, false) => ", plaintext, memory only",
            }
        );
        let _ = writeln!(
            out,
            "connections opened in {:.2} s, collector CPU {} s",
            self.connect_seconds,
            self.connect_collector_cpu_seconds
                .map_or_else(|| "-".to_string(), |s| format!("{s:.2}"))
        );
        let _ = writeln!(
            out,
            "{:>8} {:>12} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
            "WATCHERS",
            "SAMPLES/S",
            "COLL CPU",
            "RSS MiB",
            "PEAK MiB",
            "BENCH CPU",
            "WATCH MiB/S",
            "UNACKED",
            "P50 ms",
            "P99 ms",
            "ERRORS"
        );
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
        };
        let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        for p in &self.phases {
            let _ = writeln!(
                out,
                "{:>8} {:>12.0} {:>8}% {:>8} {:>9} {:>8.0}% {:>11.2} {:>9} {:>8} {:>8} {:>6}",
                p.watchers,
                p.samples_per_second,
                opt(p.collector_cpu_percent, 0),
                opt(p.collector_rss_mib, 0),
                opt(p.collector_peak_rss_mib, 0),
                p.bench_cpu_percent,
                p.watch_mib_per_second,
                p.unacked_batches,
                ms(p.latency_p50_ms),
                ms(p.latency_p99_ms),
                p.errors
            );
        }
        let _ = writeln!(
            out,
            "whole run: {} batches sent, {} acknowledged, {} agent stream errors",
            self.batches_sent, self.batches_acked, self.agent_errors
        );
        out
    }
}

/// Runs the benchmark until every watcher count was measured, or `stop`.
pub async fn run(config: BenchConfig, stop: CancellationToken) -> Result<Report, BenchError> {
    if config.agents == 0 || config.watchers.is_empty() || config.duration.is_zero() {
        return Err(BenchError::Invalid(
            "need at least one agent, one watcher count and a duration".into(),
        ));
    }
    let stop = stop.child_token();
    let _stop_all = stop.clone().drop_guard();
    let tls = match (config.tls, &config.target) {
        (false, _) => None,
        (true, Target::Existing { .. }) => {
            return Err(BenchError::Invalid(
                "--tls makes its own certificates: it needs a collector the benchmark starts, not --collector".into(),
            ));
        }
        (true, _) => Some(BenchTls::make()?),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut spawned = None;
    let (url, pid, kind) = match &config.target {
        Target::Spawn { exe, log } => {
            let s = Spawned::start(
                exe,
                config.agents + 100,
                log.as_deref(),
                tls.as_ref().map(|t| t.dir.as_path()),
                config.memory_only,
            )
            .await
            .map_err(BenchError::Spawn)?;
            let url = format!("{scheme}://{}", s.addr);
            let pid = s.pid();
            spawned = Some(s);
            (url, pid, "process")
        }
        Target::Existing { url, pid } => (url.clone(), *pid, "existing"),
        Target::InProcess => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(BenchError::Bind)?;
            let addr = listener.local_addr().map_err(BenchError::Bind)?;
            let collector = Config {
                listen: addr,
                max_agents: config.agents + 100,
                tls_cert: tls.as_ref().map(|t| t.dir.join("collector.pem")),
                tls_key: tls.as_ref().map(|t| t.dir.join("collector.key")),
                ..Config::default()
            };
            tokio::spawn(crate::serve(listener, collector, stop.clone()));
            (
                format!("{scheme}://{addr}"),
                Some(std::process::id()),
                "in-process",
            )
        }
    };
    let client = ClientConfig::new(&url)
        .with_connect_timeout(Duration::from_secs(10))
        .with_tls(ClientTls {
            ca_file: tls.as_ref().map(|t| t.dir.join("ca.pem")),
            ..ClientTls::default()
        });
    let result = measure(&config, &client, pid, &stop).await;
    stop.cancel();
    if let Some(s) = spawned {
        s.stop().await;
    }
    result.map(|(connect, phases, totals)| Report {
        agents: config.agents,
        agents_per_connection: config.agents_per_connection.max(1),
        series_per_agent: agent::series(1, config.series).len(),
        interval_ms: config.interval.as_millis() as u64,
        collector: kind,
        tls: tls.is_some(),
        durable: matches!(config.target, Target::Spawn { .. }) && !config.memory_only,
        connect_seconds: connect.seconds,
        connect_collector_cpu_seconds: connect.collector_cpu_seconds,
        phases,
        batches_sent: totals.batches_sent.load(Ordering::Relaxed),
        batches_acked: totals.batches_acked.load(Ordering::Relaxed),
        agent_errors: totals.errors.load(Ordering::Relaxed),
    })
}

/// A throw-away CA and collector certificate for 127.0.0.1, in a
/// directory removed when dropped.
struct BenchTls {
    dir: PathBuf,
}

impl BenchTls {
    fn make() -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!("stacktop-bench-tls-{}", std::process::id()));
        let request = crate::auth::certs::CertsRequest {
            dir: dir.clone(),
            collector_names: vec!["127.0.0.1".into()],
            nodes: Vec::new(),
            validity: Duration::from_secs(24 * 3600),
        };
        let tls = Self { dir };
        crate::auth::certs::make(&request).map_err(|e| {
            BenchError::Invalid(format!("making the benchmark's certificates: {e}"))
        })?;
        Ok(tls)
    }
}

impl Drop for BenchTls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long opening the agents' connections took.
struct Connect {
    seconds: f64,
    collector_cpu_seconds: Option<f64>,
}

/// Connects `n` channels, a few at a time.
async fn channels(client: &ClientConfig, n: usize) -> Result<Vec<Channel>, BenchError> {
    let mut out = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    for i in 0..n {
        let client = client.clone();
        pending.spawn(async move { (i, client.connect().await) });
        if pending.len() >= 64 || i + 1 == n {
            while let Some(done) = pending.join_next().await {
                let (i, channel) = done.map_err(|e| BenchError::Invalid(e.to_string()))?;
                out.push((i, channel?));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

async fn measure(
    config: &BenchConfig,
    client: &ClientConfig,
    pid: Option<u32>,
    stop: &CancellationToken,
) -> Result<(Connect, Vec<Phase>, Arc<Counters>), BenchError> {
    let counters = Arc::new(Counters::default());
    let per = config.agents_per_connection.max(1);
    let before = (Instant::now(), pid.and_then(|pid| process::usage(pid).ok()));
    let connections = channels(client, config.agents.div_ceil(per)).await?;
    let after = pid.and_then(|pid| process::usage(pid).ok());
    let connect = Connect {
        seconds: before.0.elapsed().as_secs_f64(),
        collector_cpu_seconds: before
            .1
            .zip(after)
            .map(|(a, b)| b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / TICKS_PER_SECOND),
    };
    let mut tasks = JoinSet::new();
    for i in 0..config.agents {
        let channel = connections[i / per].clone();
        let delay = config.interval.mul_f64(i as f64 / config.agents as f64);
        let sim = agent::Sim {
            i,
            series: config.series,
            interval: config.interval,
            delay,
        };
        tasks.spawn(agent::run(
            channel,
            client.clone(),
            sim,
            counters.clone(),
            stop.clone(),
        ));
    }
    let mut phases = Vec::new();
    for &watchers in &config.watchers {
        let phase_stop = stop.child_token();
        let watch_counters = Arc::new(WatchCounters::default());
        let record_from = now_unix_ms() + config.warmup.as_millis() as i64;
        let mut measuring = JoinSet::new();
        for (i, channel) in channels(client, watchers).await?.into_iter().enumerate() {
            if i < config.measuring_watchers.max(1) {
                measuring.spawn(watcher::measure(
                    channel,
                    client.clone(),
                    watch_counters.clone(),
                    record_from,
                    phase_stop.clone(),
                ));
            } else {
                tasks.spawn(watcher::passive(
                    channel,
                    client.clone(),
                    watch_counters.clone(),
                    phase_stop.clone(),
                ));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(config.warmup) => {}
        }
        let start = Snapshot::take(&counters, &watch_counters, pid);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(config.duration) => {}
        }
        let end = Snapshot::take(&counters, &watch_counters, pid);
        phase_stop.cancel();
        let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000, 3).expect("valid bounds");
        while let Some(h) = measuring.join_next().await {
            if let Ok(h) = h {
                let _ = latency.add(h);
            }
        }
        phases.push(phase(watchers, &start, &end, &latency));
    }
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    Ok((connect, phases, counters))
}

/// Counters and process usage at one instant.
struct Snapshot {
    at: Instant,
    samples: u64,
    batches_acked: u64,
    batches_sent: u64,
    errors: u64,
    updates: u64,
    bytes: u64,
    collector: Option<Usage>,
    bench: Option<Usage>,
}

impl Snapshot {
    fn take(agents: &Counters, watchers: &WatchCounters, pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            samples: agents.samples_acked.load(Ordering::Relaxed),
            batches_acked: agents.batches_acked.load(Ordering::Relaxed),
            batches_sent: agents.batches_sent.load(Ordering::Relaxed),
            errors: agents.errors.load(Ordering::Relaxed) + watchers.errors.load(Ordering::Relaxed),
            updates: watchers.updates.load(Ordering::Relaxed),
            bytes: watchers.bytes.load(Ordering::Relaxed),
            collector: pid.and_then(|pid| process::usage(pid).ok()),
            bench: process::usage(std::process::id()).ok(),
        }
    }
}

fn phase(watchers: usize, a: &Snapshot, b: &Snapshot, latency: &Histogram<u64>) -> Phase {
    let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
    let per_second = |x: u64, y: u64| y.saturating_sub(x) as f64 / seconds;
    let cpu = |a: &Option<Usage>, b: &Option<Usage>| match (a, b) {
        (Some(a), Some(b)) => Some(
            b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / TICKS_PER_SECOND / seconds * 100.0,
        ),
        _ => None,
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let quantile = |q: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(q));
    Phase {
        watchers,
        seconds,
        samples_per_second: per_second(a.samples, b.samples),
        batches_per_second: per_second(a.batches_acked, b.batches_acked),
        unacked_batches: b.batches_sent.saturating_sub(b.batches_acked),
        collector_cpu_percent: cpu(&a.collector, &b.collector),
        collector_rss_mib: b.collector.map(|u| mib(u.rss_kib)),
        collector_peak_rss_mib: b.collector.map(|u| mib(u.peak_rss_kib)),
        bench_cpu_percent: cpu(&a.bench, &b.bench).unwrap_or(0.0),
        watch_updates_per_second: per_second(a.updates, b.updates),
        watch_mib_per_second: per_second(a.bytes, b.bytes) / 1024.0 / 1024.0,
        latency_samples: latency.len(),
        latency_p50_ms: quantile(0.5),
        latency_p99_ms: quantile(0.99),
        latency_max_ms: (!latency.is_empty()).then(|| latency.max()),
        errors: b.errors.saturating_sub(a.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_nodes_look_like_real_ones() {
        let web = agent::series(1, 40);
        assert_eq!(
            agent::roles(1),
            [stacktop_proto::Role::Web, stacktop_proto::Role::App]
        );
        assert!(web.len() >= 40);
        assert!(
            web.iter()
                .any(|(n, _)| *n == stacktop_proto::metrics::HTTP_REQUESTS)
        );
        let db = agent::series(30, 10);
        assert!(db.iter().all(|(n, _)| !n.starts_with("http_")));
        assert_eq!(agent::series(30, 60).len(), 60);
    }

    /// A short real run in-process: every count measured, nothing fails,
    /// and updates reach the watchers with a measured latency.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_fleet_in_process() {
        let config = BenchConfig {
            agents: 20,
            agents_per_connection: 3,
            series: 40,
            interval: Duration::from_millis(200),
            watchers: vec![1, 3],
            measuring_watchers: 1,
            warmup: Duration::from_millis(800),
            duration: Duration::from_secs(1),
            target: Target::InProcess,
            tls: false,
            memory_only: true,
        };
        let report = run(config, CancellationToken::new()).await.unwrap();
        assert_eq!(report.phases.len(), 2);
        for p in &report.phases {
            assert_eq!(p.errors, 0, "{p:?}");
            assert!(p.samples_per_second > 0.0, "{p:?}");
            assert!(p.watch_updates_per_second > 0.0, "{p:?}");
            assert!(p.latency_samples > 0, "{p:?}");
        }
        assert_eq!(report.agent_errors, 0, "{report:?}");
        assert!(report.batches_acked > 0 && report.batches_acked <= report.batches_sent);
        assert!(report.to_table().contains("WATCHERS"));
    }
}
