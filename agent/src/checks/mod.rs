//! Health checks: probes of the services on this node (and of what they
//! depend on), each run in its own task on its own interval, each result a
//! [`CheckResult`] with a status, a latency and a short human message, sent
//! through the agent's observation channel ([`crate::observe`]) together
//! with the metrics, facts and HAProxy backends the probe read.
//!
//! # Layout
//!
//! - [`spec`]: the `[[checks]]` TOML tables ([`CheckSpec`]), their
//!   validation and the role defaults ([`defaults_for_roles`]).
//! - One module per kind: [`http`] (also `app`), [`tcp`], [`tls`],
//!   [`process`], [`dns`], [`exposure`], [`nginx`], [`haproxy`], [`mysql`].
//! - This module: [`Check`] (a built probe with its schedule), [`Outcome`]
//!   (what one run learnt) and [`spawn_all`], the runner.
//!
//! # Role defaults
//!
//! When the config has no `[[checks]]` at all, the checks come from the
//! node's roles (configured or detected), see [`defaults_for_roles`]:
//!
//! | role | checks |
//! |---|---|
//! | `lb` | `haproxy` on the stats socket `/run/haproxy/admin.sock`, `process` haproxy |
//! | `web` | `nginx` stub_status at `http://127.0.0.1/nginx_status`, `process` nginx |
//! | `app` | `app` (HTTP) at `http://127.0.0.1:8080/health` |
//! | `db` | `mysql` at `127.0.0.1:3306`, user `stacktop`, password from `STACKTOP_MYSQL_PASSWORD` |
//! | any | `exposure` with the roles' allow-list (see [`exposure`]) |
//!
//! When `[[checks]]` is given, exactly those checks run and no default is
//! added (not even `exposure`): the operator's list is the whole list.
//!
//! # Running
//!
//! Each check waits `interval` between runs (the first run starts at once),
//! bounds each run with `timeout` (a run that overruns reports crit "timed
//! out after 2 s"), and stops when the shutdown token fires or the channel
//! closes. A check never reports nothing: a probe that cannot even start
//! (bad CA file, unreadable /proc) reports crit or unknown with the reason.

pub mod dns;
pub mod exposure;
pub mod haproxy;
pub mod http;
pub mod mysql;
pub mod nginx;
pub mod process;
pub mod spec;
pub mod tcp;
pub mod tls;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stacktop_proto::Health;
use stacktop_proto::v1::{BackendServer, CheckResult};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::observe::{Observation, ObservedPoint};

pub use spec::{CheckSpec, defaults_for_roles};

/// Why a check could not be built from its spec (a CA file that does not
/// load, a URL that is not HTTP...). Spec validation catches most of these
/// at config load; this covers what needs the file system.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A CA file could not be read or holds no certificate.
    #[error("CA file {path:?}: {reason}")]
    CaFile {
        /// The configured path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS configuration was refused by rustls.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A URL or status list that validation should have refused.
    #[error("{0}")]
    Spec(String),
}

/// Results of building checks.
pub type Result<T> = std::result::Result<T, BuildError>;

/// What one run of a probe learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The check's status.
    pub status: Health,
    /// Short human text, e.g. "200 OK in 3 ms".
    pub message: String,
    /// Metrics read by the probe.
    pub points: Vec<ObservedPoint>,
    /// Facts learnt, e.g. `db_role = replica`.
    pub facts: Vec<(String, String)>,
    /// A complete sample of HAProxy backend servers, when the probe read one.
    pub backends: Option<Vec<BackendServer>>,
    /// Further checks the same probe decided: the MySQL probe's
    /// `replication` check.
    pub extra: Vec<ExtraCheck>,
}

/// A second check result produced by a probe alongside its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraCheck {
    /// The full check name, e.g. `replication`.
    pub name: String,
    /// The kind reported, e.g. `replication`.
    pub kind: &'static str,
    /// Its status.
    pub status: Health,
    /// Its message.
    pub message: String,
}

impl Outcome {
    /// An outcome with only a status and a message.
    pub fn new(status: Health, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            points: Vec::new(),
            facts: Vec::new(),
            backends: None,
            extra: Vec::new(),
        }
    }

    /// An ok outcome.
    pub fn ok(message: impl Into<String>) -> Self {
        Self::new(Health::Ok, message)
    }

    /// A crit outcome.
    pub fn crit(message: impl Into<String>) -> Self {
        Self::new(Health::Crit, message)
    }
}

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
            Probe::Mysql(p) => p.on_failure(&format!("timed out after {}", human(timeout))),
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
                    Outcome::crit(format!("timed out after {}", human(self.timeout))),
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

/// Builds every spec into a [`Check`]. A spec that cannot be built (a CA
/// file that vanished since the config was checked) becomes a check that
/// reports crit with the reason every interval, so it is never silent.
pub fn build_all(specs: &[CheckSpec], roles: &[stacktop_proto::Role]) -> Vec<Check> {
    specs
        .iter()
        .map(|spec| build_or_report(spec, roles))
        .collect()
}

fn build_or_report(spec: &CheckSpec, roles: &[stacktop_proto::Role]) -> Check {
    match spec.build(roles) {
        Ok(check) => check,
        Err(err) => Check {
            name: spec.name(),
            kind: spec.kind(),
            interval: spec.interval(),
            timeout: spec.timeout(),
            probe: Probe::Process(process::ProcessProbe::broken(err.to_string())),
        },
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

/// Current Unix time in milliseconds.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration the way messages show it: "3 ms", "1.2 s", "2 s".
pub fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        "<1 ms".to_string()
    } else if ms < 1000.0 {
        format!("{} ms", ms.round())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Turns an I/O error into the short words an operator expects
/// ("connection refused", "no route to host"...).
pub fn io_words(err: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match err.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        TimedOut => "timed out".into(),
        NotFound => "not found".into(),
        PermissionDenied => "permission denied".into(),
        HostUnreachable => "no route to host".into(),
        NetworkUnreachable => "network unreachable".into(),
        UnexpectedEof => "connection closed early".into(),
        AddrNotAvailable => "address not available".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_micros(300)), "<1 ms");
        assert_eq!(human(Duration::from_millis(3)), "3 ms");
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
    }

    #[tokio::test]
    async fn a_timeout_reports_crit() {
        // A listener that never answers: the connect succeeds (backlog),
        // the HTTP response never comes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", silent.local_addr().unwrap());
        let spec = spec::HttpSpec {
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
