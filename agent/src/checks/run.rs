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

use stacktop_proto::metrics::check_role;
use stacktop_proto::v1::CheckResult;
use stacktop_proto::{Health, Role};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::common::{Outcome, unix_ms};
#[cfg(feature = "dns")]
use super::dns;
#[cfg(feature = "mysql")]
use super::mysql;
#[cfg(feature = "tls")]
use super::tls;
use super::{exposure, haproxy, http, nginx, process, tcp};
use crate::observe::Observation;

/// One built probe of any kind.
#[derive(Debug)]
pub enum Probe {
    /// HTTP(S) GET (kinds `http` and `app`).
    Http(http::HttpProbe),
    /// TCP connect.
    Tcp(tcp::TcpProbe),
    /// TLS certificate expiry.
    #[cfg(feature = "tls")]
    Tls(tls::TlsProbe),
    /// A process running by name.
    Process(process::ProcessProbe),
    /// A DNS A record through a given resolver.
    #[cfg(feature = "dns")]
    Dns(dns::DnsProbe),
    /// Listening sockets against an allow-list.
    Exposure(exposure::ExposureProbe),
    /// Nginx stub_status.
    Nginx(nginx::NginxProbe),
    /// HAProxy stats.
    Haproxy(haproxy::HaproxyProbe),
    /// MySQL/MariaDB health and replication (boxed: it holds a connection).
    #[cfg(feature = "mysql")]
    Mysql(Box<mysql::MysqlProbe>),
    /// A role default whose endpoint is not configured: it probes nothing
    /// and reports `unknown` with this message (what to configure), so a
    /// guessed endpoint never turns a healthy node crit.
    NotConfigured(String),
}

impl Probe {
    /// Runs the probe once. The caller bounds the time.
    pub async fn run(&mut self) -> Outcome {
        match self {
            Probe::Http(p) => p.run().await,
            Probe::Tcp(p) => p.run().await,
            #[cfg(feature = "tls")]
            Probe::Tls(p) => p.run().await,
            // /proc walks block: keep them off the runtime's thread, which
            // the sampler shares.
            Probe::Process(p) => blocking(p.clone(), |p| p.run()).await,
            #[cfg(feature = "dns")]
            Probe::Dns(p) => p.run().await,
            Probe::Exposure(p) => blocking(p.clone(), |p| p.run()).await,
            Probe::Nginx(p) => p.run().await,
            Probe::Haproxy(p) => p.run().await,
            #[cfg(feature = "mysql")]
            Probe::Mysql(p) => p.run().await,
            Probe::NotConfigured(message) => Outcome::new(Health::Unknown, message.clone()),
        }
    }

    /// The outcome of a run that overran `timeout`: crit "timed out after
    /// 2 s", and for a probe with state (a pooled connection, a replica it
    /// knew about, backends it reports) what the timeout means for it.
    fn timed_out(&mut self, timeout: Duration) -> Outcome {
        let outcome = Outcome::timed_out(timeout);
        match self {
            #[cfg(feature = "mysql")]
            Probe::Mysql(p) => Outcome {
                extra: p.on_failure(&outcome.message),
                ..outcome
            },
            Probe::Haproxy(_) => haproxy::unread(outcome.message),
            _ => outcome,
        }
    }
}

/// Runs a blocking probe on tokio's blocking pool.
async fn blocking<P: Send + 'static>(probe: P, run: fn(&P) -> Outcome) -> Outcome {
    tokio::task::spawn_blocking(move || run(&probe))
        .await
        .unwrap_or_else(|e| Outcome::new(Health::Unknown, format!("probe failed: {e}")))
}

/// A check ready to run: its name, kind, role, schedule and probe.
#[derive(Debug)]
pub struct Check {
    /// Unique per node, e.g. `http:9000/health` or `mysql`.
    pub name: String,
    /// The kind reported in results, e.g. `http`.
    pub kind: &'static str,
    /// The role its results speak for ([`Role::Unspecified`]: the whole
    /// node), sent with every result so the collector counts it towards
    /// that tier only.
    pub role: Role,
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
        let outcome = match tokio::time::timeout(self.timeout, self.probe.run()).await {
            Ok(outcome) => outcome,
            Err(_) => self.probe.timed_out(self.timeout),
        };
        self.observations(outcome, started.elapsed().as_secs_f64(), unix_ms())
    }

    /// What one run's `outcome` sends: its metrics, facts and backends (or
    /// why they are unknown),
    /// then its result and those of the extra checks, each with the
    /// check's interval and the role it speaks for (the check's own for
    /// its result; an extra's by its kind, so `replication` is db).
    pub fn observations(&self, outcome: Outcome, latency: f64, now: i64) -> Vec<Observation> {
        let interval_ms = u32::try_from(self.interval.as_millis()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(4 + outcome.extra.len());
        if !outcome.points.is_empty() {
            out.push(Observation::Points(outcome.points));
        }
        if !outcome.facts.is_empty() {
            out.push(Observation::Facts(outcome.facts));
        }
        if let Some(backends) = outcome.backends {
            out.push(Observation::Backends(backends));
        }
        if let Some(reason) = outcome.backends_error {
            out.push(Observation::BackendsUnknown(reason));
        }
        out.push(Observation::Check(CheckResult {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            status: outcome.status as i32,
            latency_seconds: latency,
            message: outcome.message,
            timestamp_ms: now,
            role: self.role as i32,
            interval_ms,
            ..Default::default()
        }));
        for extra in outcome.extra {
            out.push(Observation::Check(CheckResult {
                role: check_role(extra.kind, &extra.name) as i32,
                name: extra.name,
                kind: extra.kind.to_string(),
                status: extra.status as i32,
                latency_seconds: latency,
                message: extra.message,
                timestamp_ms: now,
                interval_ms,
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
    use super::super::common::ExtraCheck;
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
            role: Role::App,
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
        assert_eq!((result.role, result.interval_ms), (Role::App as i32, 5_000));
    }

    #[tokio::test]
    async fn a_stats_read_that_times_out_makes_the_backends_unknown() {
        // A stats socket that accepts and never answers.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let spec = haproxy::HaproxySpec {
            socket: Some(path.display().to_string()),
            ..Default::default()
        };
        let mut check = Check {
            name: "haproxy".into(),
            kind: "haproxy",
            role: Role::Lb,
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(100),
            probe: Probe::Haproxy(haproxy::HaproxyProbe::from_spec(&spec).unwrap()),
        };
        let obs = check.run_once().await;
        assert!(
            obs.contains(&Observation::BackendsUnknown(
                "timed out after 100 ms".into()
            )),
            "{obs:?}"
        );
        assert!(!obs.iter().any(|o| matches!(o, Observation::Backends(_))));
    }

    #[test]
    fn every_result_carries_its_role_and_interval() {
        let check = Check {
            name: "db".into(),
            kind: "mysql",
            role: Role::Web,
            interval: Duration::from_millis(2_500),
            timeout: Duration::from_secs(1),
            probe: Probe::Tcp(tcp::TcpProbe::new(([127, 0, 0, 1], 3306).into())),
        };
        let mut outcome = Outcome::ok("primary");
        outcome.extra.push(ExtraCheck {
            name: "db:replication".into(),
            kind: "replication",
            status: Health::Warn,
            message: "replica, lag 12 s".into(),
        });
        let results: Vec<CheckResult> = check
            .observations(outcome, 0.01, 1_000)
            .into_iter()
            .filter_map(|o| match o {
                Observation::Check(r) => Some(r),
                _ => None,
            })
            .collect();
        let got: Vec<(&str, i32, u32)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.role, r.interval_ms))
            .collect();
        // The check's own role as configured; the extra by its kind.
        assert_eq!(
            got,
            [
                ("db", Role::Web as i32, 2_500),
                ("db:replication", Role::Db as i32, 2_500)
            ]
        );
    }
}
