//! Notification sinks: where the collector tells operators about alerts
//! through the tools they already use, even when no dashboard is open.
//!
//! Each `[[notify]]` table is one sink with its own filter (minimum
//! severity, labels), its own bounded queue and its own task, so a sink
//! that is down never slows ingest, the alert engine or the other sinks:
//! when its queue is full a notification is dropped and counted, and a
//! failed delivery is retried with backoff (none on a 4xx answer: the
//! request itself is wrong) and then counted as failed.
//!
//! Kinds:
//!
//! - `alertmanager`: Prometheus Alertmanager's v2 API, `POST
//!   {url}/api/v2/alerts` with `labels` (including `alertname`, `node`,
//!   `severity`), `annotations`, `startsAt`, `endsAt` and `generatorURL`.
//!   Firing alerts are posted again every `resend-interval` (1 minute) with
//!   `endsAt` three intervals ahead, as Alertmanager expects; a resolved
//!   alert is posted with `endsAt` at its resolution.
//! - `webhook`: the alert as JSON, `POST url`, signed with
//!   `X-Stacktop-Signature: sha256=<hex HMAC-SHA256 of the body>` when a
//!   `secret-file` is configured.
//! - `exec`: runs `command` with the alert as JSON on stdin, killed after
//!   `timeout`; a non-zero exit is a failed delivery.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::http::Uri;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stacktop_proto::v1::SinkStatus;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::rules::Severity;

/// Notifications a sink may have waiting by default.
pub const DEFAULT_QUEUE: usize = 256;

/// How long one delivery attempt may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Alertmanager: how often firing alerts are posted again by default.
pub const DEFAULT_RESEND: Duration = Duration::from_secs(60);

/// Webhook and exec: how often an unacknowledged firing alert is notified
/// again by default.
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);

/// Attempts per notification before it counts as failed.
const ATTEMPTS: u32 = 5;

/// A sink's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// Prometheus Alertmanager (v2 API).
    Alertmanager,
    /// A JSON POST.
    Webhook,
    /// A command with the alert on stdin.
    Exec,
}

impl SinkKind {
    /// As written in the config.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Alertmanager => "alertmanager",
            SinkKind::Webhook => "webhook",
            SinkKind::Exec => "exec",
        }
    }
}

/// One `[[notify]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotifyConfig {
    /// `alertmanager`, `webhook` or `exec`.
    pub kind: SinkKind,
    /// A name for logs and status (default: the kind, numbered if repeated).
    pub name: Option<String>,
    /// Alertmanager's base URL, or the webhook's URL (`http://`).
    pub url: Option<String>,
    /// Exec: the program and its arguments.
    pub command: Option<Vec<String>>,
    /// Webhook: a file whose content (trimmed) signs each request.
    pub secret_file: Option<PathBuf>,
    /// Only alerts at least this severe (default: all).
    pub severity: Option<Severity>,
    /// Only alerts carrying these labels.
    #[serde(rename = "match")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Bound on one delivery (default 10 s).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Alertmanager: re-post firing alerts this often (default 1m).
    /// Webhook/exec: notify an unacknowledged firing alert again this
    /// often (default 4h; `0s`: never).
    #[serde(default, with = "humantime_serde")]
    pub resend_interval: Option<Duration>,
    /// Notifications that may wait (default 256).
    pub queue: Option<usize>,
}

/// A sink that cannot work, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("notify {name:?}: key {key}: {reason}")]
pub struct SinkError {
    /// The sink's name.
    pub name: String,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// A checked sink configuration.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SinkKind,
    target: Target,
    /// Minimum severity.
    pub severity: Severity,
    /// Label filter.
    pub match_labels: BTreeMap<String, String>,
    timeout: Duration,
    /// See [`NotifyConfig::resend_interval`].
    pub resend_ms: i64,
    queue: usize,
}

#[derive(Debug, Clone)]
enum Target {
    Http { uri: Uri, secret: Option<Vec<u8>> },
    Exec { command: Vec<String> },
}

/// Checks every `[[notify]]` table (reading secret files).
pub fn resolve(configs: &[NotifyConfig]) -> Result<Vec<SinkSpec>, SinkError> {
    let mut specs: Vec<SinkSpec> = Vec::new();
    for c in configs {
        let name = c.name.clone().unwrap_or_else(|| {
            let n = specs.iter().filter(|s| s.kind == c.kind).count();
            if n == 0 {
                c.kind.name().to_string()
            } else {
                format!("{}-{}", c.kind.name(), n + 1)
            }
        });
        let bad = |key: &'static str, reason: String| SinkError {
            name: name.clone(),
            key,
            reason,
        };
        if specs.iter().any(|s| s.name == name) {
            return Err(bad("name", "two sinks have this name".into()));
        }
        let target = match c.kind {
            SinkKind::Alertmanager | SinkKind::Webhook => {
                if c.command.is_some() {
                    return Err(bad("command", "only exec sinks run a command".into()));
                }
                let url = c
                    .url
                    .as_deref()
                    .ok_or_else(|| bad("url", "this sink needs a url".into()))?;
                let mut uri: Uri = url
                    .parse()
                    .map_err(|e| bad("url", format!("{url:?} is not a URL: {e}")))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(bad(
                        "url",
                        format!(
                            "{url:?}: expected http://HOST:PORT/... (https needs TLS, not built yet)"
                        ),
                    ));
                }
                if c.kind == SinkKind::Alertmanager {
                    let base = url.trim_end_matches('/');
                    uri = format!("{base}/api/v2/alerts")
                        .parse()
                        .map_err(|e| bad("url", format!("{url:?} is not a base URL: {e}")))?;
                }
                let secret = match &c.secret_file {
                    Some(path) if c.kind == SinkKind::Webhook => {
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            bad(
                                "secret-file",
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        let secret = text.trim().as_bytes().to_vec();
                        if secret.is_empty() {
                            return Err(bad("secret-file", format!("{} is empty", path.display())));
                        }
                        Some(secret)
                    }
                    Some(_) => {
                        return Err(bad("secret-file", "only webhooks are signed".into()));
                    }
                    None => None,
                };
                Target::Http { uri, secret }
            }
            SinkKind::Exec => {
                if c.url.is_some() || c.secret_file.is_some() {
                    return Err(bad(
                        "url",
                        "an exec sink runs a command, it has no url".into(),
                    ));
                }
                let command = c
                    .command
                    .clone()
                    .filter(|c| !c.is_empty() && !c[0].is_empty())
                    .ok_or_else(|| {
                        bad(
                            "command",
                            "an exec sink needs command = [\"program\", ...]".into(),
                        )
                    })?;
                Target::Exec { command }
            }
        };
        let timeout = c.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(bad("timeout", "must be above 0".into()));
        }
        let resend = c.resend_interval.unwrap_or(match c.kind {
            SinkKind::Alertmanager => DEFAULT_RESEND,
            _ => DEFAULT_REPEAT,
        });
        if c.kind == SinkKind::Alertmanager && resend < Duration::from_secs(1) {
            return Err(bad(
                "resend-interval",
                "Alertmanager forgets alerts that are not posted again: at least 1s".into(),
            ));
        }
        let queue = c.queue.unwrap_or(DEFAULT_QUEUE);
        if queue == 0 {
            return Err(bad("queue", "must be at least 1".into()));
        }
        specs.push(SinkSpec {
            name,
            kind: c.kind,
            target,
            severity: c.severity.unwrap_or(Severity::Warning),
            match_labels: c.match_labels.clone().unwrap_or_default(),
            timeout,
            resend_ms: i64::try_from(resend.as_millis()).unwrap_or(i64::MAX),
            queue,
        });
    }
    Ok(specs)
}

/// What a notification says about one alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload {
    /// The alert's id.
    pub id: String,
    /// Its rule.
    pub rule: String,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// The node (empty for tier alerts).
    pub node: String,
    /// The summary.
    pub summary: String,
    /// Every label.
    pub labels: BTreeMap<String, String>,
    /// When it started holding, fired, resolved (Unix ms; 0: not yet).
    pub started_unix_ms: i64,
    /// When it fired.
    pub fired_unix_ms: i64,
    /// When it resolved.
    pub resolved_unix_ms: i64,
    /// The value that made it hold.
    pub value: Option<f64>,
    /// Who acknowledged it, if anyone.
    pub acknowledged_by: Option<String>,
    /// The alerts grouped under this one (a failed tier's consequences).
    pub dependents: Vec<Dependent>,
}

/// One alert grouped under the notified one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependent {
    /// Its id.
    pub id: String,
    /// Its rule.
    pub rule: String,
    /// Its node.
    pub node: String,
    /// Its summary.
    pub summary: String,
}

/// One notification for one sink.
#[derive(Debug, Clone)]
pub struct Job {
    /// The alert.
    pub payload: Payload,
}

/// A sink's counters.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<(String, i64)>,
}

/// A running sink: its spec, its queue and its counters.
#[derive(Debug)]
pub struct Sink {
    /// What it is.
    pub spec: SinkSpec,
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl Sink {
    /// Starts the sink's task on `tracker`, stopping with `shutdown`.
    pub fn start(spec: SinkSpec, shutdown: CancellationToken, tracker: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::channel(spec.queue);
        let counters = Arc::new(Counters::default());
        tracker.spawn(deliver(spec.clone(), rx, counters.clone(), shutdown));
        Self { spec, tx, counters }
    }

    /// Whether an alert with `severity` and `labels` is for this sink.
    pub fn wants(&self, severity: Severity, labels: &BTreeMap<String, String>) -> bool {
        severity >= self.spec.severity
            && self
                .spec
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Queues a notification; false (and counted as dropped) when the
    /// queue is full or the sink stopped.
    pub fn send(&self, job: Job) -> bool {
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Its status for Fleet.Alerts.
    pub fn status(&self) -> SinkStatus {
        let (last_error, last_error_ms) = self
            .counters
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        SinkStatus {
            name: self.spec.name.clone(),
            kind: self.spec.kind.name().into(),
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            queued: (self.tx.max_capacity() - self.tx.capacity()) as u32,
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            last_error,
            last_error_ms,
        }
    }
}

/// Why one delivery failed; `retry` is false when trying again cannot help.
#[derive(Debug)]
struct Failure {
    reason: String,
    retry: bool,
}

/// The sink's task: takes queued notifications (an Alertmanager sink posts
/// everything queued in one request) and delivers them with retries.
async fn deliver(
    spec: SinkSpec,
    mut rx: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = shutdown.cancelled() => return,
            job = rx.recv() => match job { Some(job) => job, None => return },
        };
        let mut jobs = vec![job];
        if spec.kind == SinkKind::Alertmanager {
            while let Ok(more) = rx.try_recv() {
                jobs.push(more);
            }
        }
        let n = jobs.len() as u64;
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(spec.timeout, once(&spec, &jobs)) => r.unwrap_or_else(|_| Err(Failure {
                    reason: format!("no answer within {} s", spec.timeout.as_secs_f64()),
                    retry: true,
                })),
            };
            match result {
                Ok(()) => break Ok(()),
                Err(f) if f.retry && attempt < ATTEMPTS => {
                    debug!(sink = %spec.name, attempt, reason = %f.reason, "delivery failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                Err(f) => break Err(f),
            }
        };
        match outcome {
            Ok(()) => {
                counters.sent.fetch_add(n, Ordering::Relaxed);
            }
            Err(f) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                warn!(sink = %spec.name, kind = spec.kind.name(), reason = %f.reason, notifications = n, "notification failed");
                if let Ok(mut last) = counters.last_error.lock() {
                    *last = (f.reason, stacktop_proto::now_unix_ms());
                }
            }
        }
    }
}

/// One delivery attempt of `jobs` (one, except for Alertmanager).
async fn once(spec: &SinkSpec, jobs: &[Job]) -> Result<(), Failure> {
    match (&spec.target, spec.kind) {
        (Target::Http { uri, .. }, SinkKind::Alertmanager) => {
            let alerts: Vec<serde_json::Value> = jobs
                .iter()
                .map(|j| alertmanager_alert(&j.payload, spec.resend_ms))
                .collect();
            let body = serde_json::to_vec(&alerts).map_err(|e| Failure {
                reason: e.to_string(),
                retry: false,
            })?;
            post(uri, body, None).await
        }
        (Target::Http { uri, secret }, _) => {
            let body = serde_json::to_vec(&jobs[0].payload).map_err(|e| Failure {
                reason: e.to_string(),
                retry: false,
            })?;
            post(uri, body, secret.as_deref()).await
        }
        (Target::Exec { command }, _) => {
            let body = serde_json::to_vec(&jobs[0].payload).map_err(|e| Failure {
                reason: e.to_string(),
                retry: false,
            })?;
            run(command, &body).await
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs JSON `body` to `uri`, signed with `secret` when given.
async fn post(uri: &Uri, body: Vec<u8>, secret: Option<&[u8]>) -> Result<(), Failure> {
    let fail = |reason: String| Failure {
        reason,
        retry: true,
    };
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| fail(format!("connect to {host}:{port}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(format!("HTTP: {e}")))?;
    let conn = tokio::spawn(conn);
    let mut request = Request::post(
        uri.path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str),
    )
    .header(
        hyper::header::HOST,
        uri.authority().map_or_else(String::new, |a| a.to_string()),
    )
    .header(hyper::header::CONTENT_TYPE, "application/json")
    .header(
        hyper::header::USER_AGENT,
        concat!("stacktop-collector/", env!("CARGO_PKG_VERSION")),
    )
    .header(hyper::header::CONNECTION, "close");
    if let Some(secret) = secret {
        request = request.header("X-Stacktop-Signature", signature(secret, &body));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure {
            reason: e.to_string(),
            retry: false,
        })?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(format!("HTTP: {e}")))?;
        let status = response.status();
        let text = Limited::new(response.into_body(), 4_096)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure {
                reason: format!("{status}: {text}"),
                // A 4xx other than 429 means the request is wrong: sending
                // it again will not help.
                retry: status.is_server_error() || status.as_u16() == 429,
            })
        }
    }
    .await;
    conn.abort();
    result
}

/// Runs `command` with `input` on stdin.
async fn run(command: &[String], input: &[u8]) -> Result<(), Failure> {
    let fail = |reason: String| Failure {
        reason,
        retry: true,
    };
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure {
            reason: format!("cannot run {:?}: {e}", command[0]),
            retry: false,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .await
            .map_err(|e| fail(format!("writing to {:?}: {e}", command[0])))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(format!("waiting for {:?}: {e}", command[0])))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(fail(format!(
            "{:?} exited with {}: {}",
            command[0],
            out.status,
            stderr.trim().chars().take(200).collect::<String>()
        )))
    }
}

/// RFC 3339 with milliseconds, UTC.
fn rfc3339(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(unix_ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// One alert as Alertmanager's v2 API takes it.
fn alertmanager_alert(p: &Payload, resend_ms: i64) -> serde_json::Value {
    let ends = if p.status == "resolved" {
        p.resolved_unix_ms
    } else {
        // Alive until three resends from now: posted again before that.
        stacktop_proto::now_unix_ms() + 3 * resend_ms
    };
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), p.summary.clone());
    if !p.dependents.is_empty() {
        let list: Vec<String> = p
            .dependents
            .iter()
            .map(|d| format!("{} ({})", d.summary, d.rule))
            .collect();
        annotations.insert("dependents".to_string(), list.join("; "));
    }
    if let Some(by) = &p.acknowledged_by {
        annotations.insert("acknowledged_by".to_string(), by.clone());
    }
    serde_json::json!({
        "labels": p.labels,
        "annotations": annotations,
        "startsAt": rfc3339(if p.fired_unix_ms > 0 { p.fired_unix_ms } else { p.started_unix_ms }),
        "endsAt": rfc3339(ends),
        "generatorURL": format!("http://stacktop.invalid/alerts/{}", p.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Vec<SinkSpec>, SinkError> {
        #[derive(Deserialize)]
        struct File {
            notify: Vec<NotifyConfig>,
        }
        resolve(&toml::from_str::<File>(text).unwrap().notify)
    }

    #[test]
    fn sinks_are_checked() {
        let specs = config(
            "[[notify]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\n\n[[notify]]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\nseverity = \"critical\"\n",
        )
        .unwrap();
        assert_eq!(specs[0].name, "alertmanager");
        assert_eq!(specs[0].resend_ms, 60_000);
        assert_eq!(specs[1].severity, Severity::Critical);
        let err = config("[[notify]]\nkind = \"webhook\"\n").unwrap_err();
        assert_eq!(err.key, "url");
        let err = config("[[notify]]\nkind = \"webhook\"\nurl = \"https://x/y\"\n").unwrap_err();
        assert_eq!(err.key, "url");
        let err = config("[[notify]]\nkind = \"exec\"\ncommand = []\n").unwrap_err();
        assert_eq!(err.key, "command");
        let err = config(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://h:1/\"\nsecret-file = \"/nonexistent/secret\"\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "secret-file");
        assert!(err.reason.contains("/nonexistent/secret"), "{err}");
    }

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn alertmanager_gets_labels_times_and_the_dependents() {
        let p = Payload {
            id: "abc".into(),
            rule: "check-failed".into(),
            status: "resolved",
            severity: "critical",
            node: "db1".into(),
            summary: "db1: mysql is crit".into(),
            labels: BTreeMap::from([("alertname".into(), "check-failed".into())]),
            started_unix_ms: 1_000,
            fired_unix_ms: 2_000,
            resolved_unix_ms: 3_000,
            value: None,
            acknowledged_by: None,
            dependents: vec![Dependent {
                id: "d".into(),
                rule: "check-failed".into(),
                node: "web1".into(),
                summary: "web1: app is crit".into(),
            }],
        };
        let a = alertmanager_alert(&p, 60_000);
        assert_eq!(a["labels"]["alertname"], "check-failed");
        assert_eq!(a["startsAt"], "1970-01-01T00:00:02.000Z");
        assert_eq!(a["endsAt"], "1970-01-01T00:00:03.000Z");
        assert!(
            a["annotations"]["dependents"]
                .as_str()
                .unwrap()
                .contains("web1")
        );
    }
}
