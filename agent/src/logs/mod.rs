//! Access-log QPS: tail web-server and load-balancer logs and turn them into per-second
//! request rates, by the timestamps written in the lines.
//!
//! # Layout
//!
//! - `format.rs`: the format names (`nginx-combined`, `nginx-timed`, `stacktop`,
//!   `haproxy-http`) and the compiler for user-given Nginx `log_format` strings;
//! - `time.rs`: timestamp parsing on bytes, with a one-minute cache;
//! - `parse.rs`: the hot path, one line of bytes to a [`Record`];
//! - `bucket.rs`: per-second aggregation with a grace for late lines ([`Aggregator`]);
//! - `tail.rs`: following a file through rotation ([`Tailer`]) and the synchronous
//!   [`SourceCore`] (tail + parse + aggregate);
//! - `metrics.rs`: [`SecondStats`] to named [`MetricPoint`]s (names from
//!   `stacktop_proto::metrics`);
//! - `check.rs`: the `check-logs` report ([`check_file`]);
//! - this file: the config ([`LogSourceConfig`]) and the async runner ([`LogSource`]).
//!
//! # Metrics, per source, per completed second
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `http_requests_per_second` | `source`, `class` = `2xx` `3xx` `4xx` `5xx` `other` | requests; summed into the node's QPS |
//! | `http_response_bytes_per_second` | `source` | response bytes sent |
//! | `http_request_duration_seconds` | `source`, `quantile` = `0.5` `0.95` `0.99` | latency, only when the format has a request time and the second has requests |
//! | `http_log_malformed_lines_per_second` | `source` | lines that did not parse or were longer than 16 KiB |
//! | `http_log_late_lines_per_second` | `source` | lines that arrived after their second was reported (dropped) |
//! | `http_health_check_requests_per_second` | `source` | requests for a `health-check-paths` path, only when some are configured |
//!
//! Each point is stamped with the start of its second (the log's clock). A second is sent
//! once the log's clock has passed it by the grace (default 2 s), or the wall clock by the
//! grace + 1 s; quiet seconds are sent as zeros (see `bucket.rs`).
//!
//! # Health checks
//!
//! A load balancer probes every web server (HAProxy's `option httpchk GET /health`), and the
//! probes land in the web servers' access logs. Counted as requests they would make the web
//! tier look busier than the traffic the load balancer forwarded (about 15% at 20 req/s).
//! With `health-check-paths = ["/health"]` a request whose path (the request line's target,
//! up to `?`) equals one of them is counted as `http_health_check_requests_per_second` only:
//! not in the request rates, the response bytes or the latency quantiles. The format must
//! carry the request line (every built-in one does; a format string needs `$request`).
//!
//! # Recommended Nginx format
//!
//! [`STACKTOP_LOG_FORMAT`]:
//!
//! ```text
//! log_format stacktop '$msec $status $body_bytes_sent $request_time $remote_addr "$request" "$http_referer" "$http_user_agent" $upstream_response_time';
//! access_log /var/log/nginx/access.log stacktop;
//! ```

mod bucket;
mod check;
mod format;
mod metrics;
mod parse;
mod tail;
mod time;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use bucket::{
    Aggregator, CLASSES, DEFAULT_GRACE, MAX_FUTURE, MAX_ZERO_FILL, Quantiles, SecondStats,
    WALL_SLACK, class_index,
};
pub use check::{CheckError, CheckReport, CheckSecond, check_file, check_reader};
pub use format::{
    CustomFormat, FORMAT_NAMES, Field, Format, FormatError, STACKTOP_LOG_FORMAT, Step,
};
pub use metrics::MetricPoint;
pub use parse::{HealthPaths, LineError, Parser, Record};
pub use tail::{
    DRAIN_POLLS, Line, LineSplitter, MAX_BYTES_PER_POLL, MAX_LINE, POLL_INTERVAL, PollOutcome,
    READ_CHUNK, SourceCore, Tailer,
};
pub use time::MinuteCache;

/// The longest grace accepted: beyond a minute the dashboard would lag too far behind.
pub const MAX_GRACE: Duration = Duration::from_secs(60);

/// One access log to follow, as written in the agent's config:
///
/// ```toml
/// [[logs]]
/// path = "/var/log/nginx/access.log"
/// format = "nginx-combined"   # or nginx-timed, stacktop, haproxy-http, or a log_format string
/// source = "nginx"            # optional; default: the file stem ("access")
/// grace = "2s"                # optional
/// utc-offset = "+0100"        # optional; only for HAProxy's zone-less dates (default UTC)
/// health-check-paths = ["/health"]   # optional; counted apart from the traffic
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogSourceConfig {
    /// The log file. It may not exist yet; it is waited for.
    pub path: PathBuf,
    /// The format name or an Nginx `log_format` string (see [`Format::parse`]).
    pub format: String,
    /// The `source` label; default: the file stem.
    #[serde(default)]
    pub source: Option<String>,
    /// How long after a second the log's clock must have moved before the second is
    /// reported; default [`DEFAULT_GRACE`], at most [`MAX_GRACE`].
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
    /// The zone of timestamps that carry none (HAProxy's accept date is the balancer's local
    /// time), as `+hhmm`, `-hh:mm` or `Z`; default UTC.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Request paths that are health checks (`/health`): counted as
    /// `http_health_check_requests_per_second`, not as requests; default none.
    #[serde(default)]
    pub health_check_paths: Vec<String>,
}

/// A log source config that does not make sense; every variant quotes the bad value.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The format is not valid.
    #[error("log {path}: {source}")]
    Format {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with the format.
        source: FormatError,
    },
    /// The path is empty or names a directory.
    #[error("log path {0:?} is not a file path")]
    BadPath(PathBuf),
    /// No source name was given and none can be derived from the path.
    #[error("log {0:?}: give a `source` name, none can be derived from the path")]
    NoSource(PathBuf),
    /// The source name is empty or has characters unfit for a label value.
    #[error("log source name {0:?} must be non-empty printable text")]
    BadSource(String),
    /// The grace is too long.
    #[error("log grace {:?} is longer than the maximum of 60s", humantime::format_duration(*.0).to_string())]
    GraceTooLong(Duration),
    /// The offset is not a valid zone offset.
    #[error("log utc-offset {0:?} is not an offset like +0530, -07:00 or Z")]
    BadOffset(String),
    /// A health-check path is not a path.
    #[error(
        "health-check-paths entry {0:?} is not a request path such as \"/health\" (it starts \
         with `/`, without a query or blanks)"
    )]
    BadHealthCheckPath(String),
    /// Health-check paths for a format that does not log the request line.
    #[error("health-check-paths needs the request line, but log format {0:?} has no $request")]
    NoRequestLine(String),
    /// The file exists but cannot be opened.
    #[error("cannot open log {path}: {source}")]
    Io {
        /// The configured path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The key of the `[[logs]]` table the error is about, when it is one key's alone;
    /// `None` for errors reported for the whole table.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            Self::BadHealthCheckPath(_) | Self::NoRequestLine(_) => Some("health-check-paths"),
            _ => None,
        }
    }
}

/// A checked config: everything resolved.
#[derive(Debug, Clone)]
pub struct ValidLogSource {
    /// The log file.
    pub path: PathBuf,
    /// The parsed format.
    pub format: Format,
    /// The `source` label.
    pub source: String,
    /// The grace.
    pub grace: Duration,
    /// Seconds east of UTC for zone-less timestamps.
    pub utc_offset: i32,
    /// Request paths counted as health checks, not requests.
    pub health_check_paths: Vec<String>,
}

impl LogSourceConfig {
    /// For `--check`: whether the log can be read now. A log that does not
    /// exist yet is fine (it is followed once it appears); a directory in
    /// its place or a file the agent may not read is not.
    pub fn readable(&self) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: self.path.clone(),
            source,
        };
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
            Ok(m) if m.is_dir() => Err(io(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory, not a log file",
            ))),
            Ok(_) => std::fs::File::open(&self.path).map(drop).map_err(io),
        }
    }

    /// Checks every field and resolves defaults, or names the bad value.
    pub fn validate(&self) -> Result<ValidLogSource, ConfigError> {
        if self.path.as_os_str().is_empty() || self.path.file_name().is_none() {
            return Err(ConfigError::BadPath(self.path.clone()));
        }
        let format = Format::parse(&self.format).map_err(|source| ConfigError::Format {
            path: self.path.clone(),
            source,
        })?;
        let source = match &self.source {
            Some(s) => s.clone(),
            None => self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .ok_or_else(|| ConfigError::NoSource(self.path.clone()))?,
        };
        if source.trim().is_empty() || source.chars().any(char::is_control) {
            return Err(ConfigError::BadSource(source));
        }
        let grace = self.grace.unwrap_or(DEFAULT_GRACE);
        if grace > MAX_GRACE {
            return Err(ConfigError::GraceTooLong(grace));
        }
        let utc_offset = match &self.utc_offset {
            None => 0,
            Some(s) => {
                time::parse_offset_text(s).ok_or_else(|| ConfigError::BadOffset(s.clone()))?
            }
        };
        for path in &self.health_check_paths {
            if !path.starts_with('/')
                || path.contains(['?', '#'])
                || path.contains(char::is_whitespace)
            {
                return Err(ConfigError::BadHealthCheckPath(path.clone()));
            }
        }
        if !self.health_check_paths.is_empty() && !format.has_request_line() {
            return Err(ConfigError::NoRequestLine(self.format.clone()));
        }
        Ok(ValidLogSource {
            path: self.path.clone(),
            format,
            source,
            grace,
            utc_offset,
            health_check_paths: self.health_check_paths.clone(),
        })
    }
}

/// The wall clock in unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One running log source: a [`SourceCore`] driven every [`POLL_INTERVAL`].
#[derive(Debug)]
pub struct LogSource {
    /// The source label, for log messages.
    name: Arc<str>,
    /// The synchronous core; moved into a blocking task for each poll.
    core: SourceCore,
}

impl LogSource {
    /// Validates `config` and starts following its file (from its end, if it exists).
    pub fn new(config: &LogSourceConfig) -> Result<Self, ConfigError> {
        let v = config.validate()?;
        Self::from_valid(v, unix_now())
    }

    /// Builds a source from a validated config; quiet seconds are zero-filled from `start`.
    ///
    /// A log that cannot be opened now (permissions, a directory in its
    /// place) costs that log, not the agent: it is reported and retried on
    /// every poll, and read from its start once it can be.
    pub fn from_valid(v: ValidLogSource, start: i64) -> Result<Self, ConfigError> {
        let tailer = match Tailer::new(&v.path) {
            Ok(tailer) => tailer,
            Err(source) => {
                warn!(
                    source = %v.source,
                    cause = %ConfigError::Io { path: v.path.clone(), source },
                    "cannot open log now; retrying"
                );
                Tailer::from_start(&v.path)
            }
        };
        let name: Arc<str> = v.source.into();
        let parser = Parser::new(v.format)
            .with_utc_offset(v.utc_offset)
            .with_health_check_paths(&v.health_check_paths);
        let agg = Aggregator::new(name.clone(), v.grace, start)
            .with_health_checks(!v.health_check_paths.is_empty());
        Ok(Self {
            name,
            core: SourceCore::new(tailer, parser, agg),
        })
    }

    /// Polls the file until `shutdown` fires, sending every completed second to `out`.
    /// Returns when shut down or when `out` is closed (the sampler is gone). Read errors are
    /// logged and retried on the next poll: a log can come back.
    pub async fn run(self, out: mpsc::Sender<SecondStats>, shutdown: CancellationToken) {
        let name = self.name;
        let mut core = Some(self.core);
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            loop {
                let Some(mut c) = core.take() else { return };
                // File reads are blocking; a poll is bounded (MAX_BYTES_PER_POLL), so it runs
                // on the blocking pool and never stalls the runtime.
                let joined = tokio::task::spawn_blocking(move || {
                    let mut done = Vec::new();
                    let res = c.poll(unix_now(), &mut |s| done.push(s));
                    (c, done, res)
                })
                .await;
                let (c, done, res) = match joined {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(source = %name, cause = %e, "log poll task failed; source stopped");
                        return;
                    }
                };
                core = Some(c);
                for s in done {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        sent = out.send(s) => if sent.is_err() { return },
                    }
                }
                match res {
                    Ok(o) => {
                        if last_error.take().is_some() {
                            debug!(source = %name, "log readable again");
                        }
                        if !o.more {
                            break;
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        // Say it once, not four times a second.
                        if last_error.as_deref() != Some(&msg) {
                            warn!(source = %name, cause = %msg, "cannot read log");
                        }
                        last_error = Some(msg);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> Result<LogSourceConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn config_defaults_and_validation() {
        let c = cfg("path = \"/var/log/nginx/access.log\"\nformat = \"nginx-combined\"").unwrap();
        let v = c.validate().unwrap();
        assert_eq!(v.source, "access");
        assert_eq!(v.grace, DEFAULT_GRACE);
        assert_eq!(v.utc_offset, 0);

        let c = cfg("path = \"/x.log\"\nformat = \"haproxy-http\"\nsource = \"lb\"\ngrace = \"5s\"\nutc-offset = \"+01:00\"").unwrap();
        let v = c.validate().unwrap();
        assert_eq!(
            (v.source.as_str(), v.grace, v.utc_offset),
            ("lb", Duration::from_secs(5), 3600)
        );

        assert!(cfg("path = \"/x.log\"\nformat = \"stacktop\"\nfoo = 1").is_err());
        let bad = |t: &str| cfg(t).unwrap().validate().unwrap_err().to_string();
        assert!(bad("path = \"/x.log\"\nformat = \"apache\"").contains("\"apache\""));
        assert!(bad("path = \"/x.log\"\nformat = \"stacktop\"\ngrace = \"5m\"").contains("5m"));
        assert!(
            bad("path = \"/x.log\"\nformat = \"stacktop\"\nutc-offset = \"CET\"")
                .contains("\"CET\"")
        );
        assert!(bad("path = \"\"\nformat = \"stacktop\"").contains("\"\""));
        assert!(bad("path = \"/x.log\"\nformat = \"stacktop\"\nsource = \" \"").contains("\" \""));
    }

    #[test]
    fn health_check_paths_need_paths_and_a_request_line() {
        let c = cfg("path = \"/x.log\"\nformat = \"haproxy-http\"\nhealth-check-paths = [\"/health\", \"/ping\"]").unwrap();
        assert_eq!(
            c.validate().unwrap().health_check_paths,
            ["/health", "/ping"]
        );
        let c = cfg("path = \"/x.log\"\nformat = \"stacktop\"").unwrap();
        assert!(c.validate().unwrap().health_check_paths.is_empty());
        let bad = |t: &str| cfg(t).unwrap().validate().unwrap_err();
        for path in ["health", "/health?full=1", "/a b", ""] {
            let e = bad(&format!(
                "path = \"/x.log\"\nformat = \"stacktop\"\nhealth-check-paths = [{path:?}]"
            ));
            assert_eq!(e.key(), Some("health-check-paths"), "{path}");
            assert!(e.to_string().contains(&format!("{path:?}")), "{e}");
        }
        let e = bad(
            "path = \"/x.log\"\nformat = '$msec $status $body_bytes_sent'\nhealth-check-paths = [\"/health\"]",
        );
        assert_eq!(
            e.to_string(),
            "health-check-paths needs the request line, but log format \"$msec $status $body_bytes_sent\" has no $request"
        );
        assert_eq!(e.key(), Some("health-check-paths"));
        // Without paths the same format is fine.
        assert!(
            cfg("path = \"/x.log\"\nformat = '$msec $status $body_bytes_sent'")
                .unwrap()
                .validate()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn runner_sends_seconds_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let v = LogSourceConfig {
            path: path.clone(),
            format: "stacktop".into(),
            source: None,
            grace: Some(Duration::ZERO),
            utc_offset: None,
            health_check_paths: Vec::new(),
        }
        .validate()
        .unwrap();
        // Start far in the future so no wall-clock zero seconds are produced.
        let src = LogSource::from_valid(v, i64::MAX / 2).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let token = CancellationToken::new();
        let task = tokio::spawn(src.run(tx, token.clone()));
        std::fs::write(
            &path,
            "100.5 200 1 0.1 x\n101.0 500 1 0.1 x\n103.0 200 1 0.1 x\n",
        )
        .unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(
            (&*first.source, first.unix, first.requests()),
            ("access", 100, 1)
        );
        let second = rx.recv().await.unwrap();
        assert_eq!((second.unix, second.classes[3]), (101, 1));
        token.cancel();
        task.await.unwrap();
    }
}
