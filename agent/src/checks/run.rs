//! The runner: a built [`Check`] (name, kind, schedule and [`Probe`]) and
//! the loop that runs it every interval, bounded by its timeout, sending
//! what each run learnt as [`Observation`]s.
//!
//! Each check waits `interval` between the starts of two runs (the first
//! starts at once), bounds each run with `timeout` (a run that overruns
//! reports crit "timed out after 2 s"), and stops when the shutdown token
//! fires or the channel closes.
//!
//! This module knows every kind's probe but not the specs: building a
//! [`Check`] from a `[[checks]]` table is [`super::CheckSpec::build`]'s job.

use std::time::{Duration, Instant};

use stacktop_proto::Health;
use stacktop_proto::v1::CheckResult;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::common::{ExtraCheck, Outcome, timed_out_words, unix_ms};
use super::{dns, exposure, haproxy, http, mysql, nginx, process, tcp, tls};
use crate::observe::Observation;

/// One built probe of any kind.
#[derive(Debug)]
pub enum Probe {
    /// HTTP(S) GET (kinds `http` and `app`).
    Http(http::HttpProbe),
    /// TCP connect.
    Tcp(tcp::TcpProbe),
    /// TLS certificate expiry.
    Tls(tls::TlsProbe),
    /// A process running by name.
    Process(process::ProcessProbe),
    /// A DNS A record through a given resolver.
    Dns(dns::DnsProbe),
    /// Listening sockets against an allow-list.
    Exposure(exposure::ExposureProbe),
    /// Nginx stub_status.
    Nginx(nginx::NginxProbe),
    /// HAProxy stats.
    Haproxy(haproxy::HaproxyProbe),
    /// MySQL/MariaDB health and replication (boxed: it holds a connection).
    Mysql(Box<mysql::MysqlProbe>),
}

impl Probe {
    /// Runs the probe once. The caller bounds the time.
    pub async fn run(&mut self) -> Outcome {
        match self {
            Probe::Http(p) => p.run().await,
            Probe::Tcp(p) => p.run().await,
            Probe::Tls(p) => p.run().await,
            // /proc walks block: keep them off the runtime's thread, which
            // the sampler shares.
            Probe::Process(p) => blocking(p.clone(), |p| p.run()).await,
            Probe::Dns(p) => p.run().await,
            Probe::Exposure(p) => blocking(p.clone(), |p| p.run()).await,
            Probe::Nginx(p) => p.run().await,
            Probe::Haproxy(p) => p.run().await,
            Probe::Mysql(p) => p.run().await,
        }
    }

    /// Called when a run timed out: lets a probe with state (a pooled
    /// connection, a replica it knew about) say what the timeout means for
    /// its other checks.
    fn on_timeout(&mut self, timeout: Duration) -> Vec<ExtraCheck> {
        match self {
            Probe::Mysql(p) => p.on_failure(&timed_out_words(timeout)),
            _ => Vec::new(),
        }
    }
}

/// Runs a blocking probe on tokio's blocking pool.
async fn blocking<P: Send + 'static>(probe: P, run: fn(&P) -> Outcome) -> Outcome {
    tokio::task::spawn_blocking(move || run(&probe))
        .await
        .unwrap_or_else(|e| Outcome::new(Health::Unknown, format!("probe failed: {e}")))
}

/// A check ready to run: its name, kind, schedule and probe.
#[derive(Debug)]
pub struct Check {
    /// Unique per node, e.g. `http:127.0.0.11:9000/health`.
    pub name: String,
    /// The kind reported in results, e.g. `http`.
    pub kind: &'static str,
    /// Time between the starts of two runs.
    pub interval: Duration,
    /// Bound on one run; always below `interval`.
    pub timeout: Duration,
    /// The probe.
    pub probe: Probe,
}

impl Check {
    /// Runs once with the timeout and returns what to send.
    pub async fn run_once(&mut self) -> Vec<Observation> {
        let started = Instant::now();
        let (outcome, extra_on_timeout) =
            match tokio::time::timeout(self.timeout, self.probe.run()).await {
                Ok(outcome) => (outcome, Vec::new()),
                Err(_) => (
                    Outcome::timed_out(self.timeout),
                    self.probe.on_timeout(self.timeout),
                ),
            };
        let latency = started.elapsed().as_secs_f64();
        let now = unix_ms();
        let mut out = Vec::with_capacity(4);
        if !outcome.points.is_empty() {
            out.push(Observation::Points(outcome.points));
        }
        if !outcome.facts.is_empty() {
            out.push(Observation::Facts(outcome.facts));
        }
        if let Some(backends) = outcome.backends {
            out.push(Observation::Backends(backends));
        }
        out.push(Observation::Check(CheckResult {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            status: outcome.status as i32,
            latency_seconds: latency,
            message: outcome.message,
            timestamp_ms: now,
            ..Default::default()
        }));
        for extra in outcome.extra.into_iter().chain(extra_on_timeout) {
            out.push(Observation::Check(CheckResult {
                name: extra.name,
                kind: extra.kind.to_string(),
                status: extra.status as i32,
                latency_seconds: latency,
                message: extra.message,
                timestamp_ms: now,
                ..Default::default()
            }));
        }
        out
    }

    /// Runs every `interval` until `shutdown` fires or `out` closes.
    pub async fn run(mut self, out: mpsc::Sender<Observation>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let observations = tokio::select! {
                () = shutdown.cancelled() => break,
                obs = self.run_once() => obs,
            };
            for observation in observations {
                if let Observation::Check(result) = &observation {
                    debug!(check = %result.name, status = ?Health::try_from(result.status).unwrap_or_default(),
                        latency_ms = (result.latency_seconds * 1000.0).round(), message = %result.message, "check result");
                }
                if out.send(observation).await.is_err() {
                    debug!(check = %self.name, "observation channel closed; check stops");
                    return;
                }
            }
        }
        debug!(check = %self.name, "check stopped");
    }
}

/// Spawns one task per check on `tracker`, each sending into `out` until
/// `shutdown` fires.
pub fn spawn_all(
    checks: Vec<Check>,
    out: &mpsc::Sender<Observation>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    for check in checks {
        tracker.spawn(check.run(out.clone(), shutdown.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_reports_crit() {
        // A listener that never answers: the connect succeeds (backlog),
        // the HTTP response never comes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", silent.local_addr().unwrap());
        let spec = http::HttpSpec {
            url,
            ..Default::default()
        };
        let mut check = Check {
            name: "slow".into(),
            kind: "http",
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(100),
            probe: Probe::Http(http::HttpProbe::from_spec(&spec).unwrap()),
        };
        let obs = check.run_once().await;
        let Some(Observation::Check(result)) = obs.last() else {
            panic!("{obs:?}")
        };
        assert_eq!(result.status, Health::Crit as i32);
        assert_eq!(result.message, "timed out after 100 ms");
        assert!(result.latency_seconds >= 0.1);
    }
}
