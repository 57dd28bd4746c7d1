//! The collector's configuration: the resolved [`Config`] the library runs
//! with, and the optional TOML file ([`FileConfig`]) the binary reads.
//!
//! Precedence is: command line over file over the defaults named below. Every
//! file field is optional and unknown fields are refused, so a typo is an
//! error that names the file, the line and the field rather than a setting
//! that silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::alerts::AlertsConfig;
use crate::alerts::notify::{self, NotifyConfig};
use crate::alerts::rules::{self, RuleConfig};
use crate::auth::AuthConfig;
use crate::auth::tls::TlsFiles;
use crate::export::remote_write::{self, RemoteWriteConfig, RemoteWriteError};

/// The collector's documented default port.
pub const DEFAULT_PORT: u16 = 7411;

/// How long full-resolution history is kept by default.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(15 * 60);

/// How long a silent node is kept by default.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many agent streams may be open at once by default.
pub const DEFAULT_MAX_AGENTS: usize = 10_000;

/// Errors from loading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// What the OS said (shown in the message, so not a `source`).
        cause: std::io::Error,
    },
    /// The config file is not valid TOML or has a bad field. The TOML error
    /// carries the line, the column and the field.
    #[error("invalid config file {path}: {cause}")]
    Parse {
        /// The file named on the command line.
        path: PathBuf,
        /// The parser's message with line, column and the offending field
        /// (shown in the message, so not a `source`).
        cause: Box<toml::de::Error>,
    },
    /// A value parsed but is out of range.
    #[error("invalid setting {field} = {value}: {reason}")]
    Invalid {
        /// The kebab-case field name.
        field: &'static str,
        /// The offending value, quoted as given.
        value: String,
        /// What would be accepted.
        reason: &'static str,
    },
    /// Settings that only work together.
    #[error("{0}")]
    Combination(&'static str),
    /// A `[[rules]]` or `[[notify]]` table parsed but cannot work.
    #[error("invalid config file {path}, line {line}: {cause}")]
    Alerting {
        /// The file named on the command line.
        path: PathBuf,
        /// The line the table starts on (1-based).
        line: usize,
        /// What is wrong, naming the rule or sink and the key.
        cause: String,
    },
    /// The rules or sinks, however given, cannot work.
    #[error("alerting: {0}")]
    Rules(String),
    /// A `[[remote-write]]` table parsed but cannot work.
    #[error("invalid config file {path}, line {line}: {cause}")]
    RemoteWriteAt {
        /// The file named on the command line.
        path: PathBuf,
        /// The line the table starts on (1-based).
        line: usize,
        /// What is wrong, naming the destination and the key (shown in
        /// the message, so not a `source`).
        cause: RemoteWriteError,
    },
    /// The remote_write destinations, however given, cannot work.
    #[error(transparent)]
    RemoteWrite(#[from] RemoteWriteError),
    /// `/metrics` would be served in plain text beyond this machine.
    #[error(
        "refusing metrics-listen = {listen}: only loopback addresses may serve the fleet's \
         /metrics without TLS (anyone who reaches it reads every node's values). Pass --insecure \
         (or `insecure = true` in the config file) to serve it on this address anyway, or put a \
         TLS proxy in front of a loopback address"
    )]
    InsecureMetrics {
        /// The non-loopback address that was asked for.
        listen: SocketAddr,
    },
    /// DESIGN's rule: plain-text gRPC only on loopback unless told otherwise.
    #[error(
        "refusing to listen on {listen} without TLS: only loopback addresses may serve plain text \
         (anyone who reaches it could read the fleet and report as any node). Give --tls-cert and \
         --tls-key (`tls-cert`, `tls-key` in the config file; `stacktop-collector certs` makes \
         them), or pass --insecure (`insecure = true`) to serve plain text on this address anyway"
    )]
    Insecure {
        /// The non-loopback address that was asked for.
        listen: SocketAddr,
    },
}

/// Result type of this module.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A resolved collector configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:7411`).
    pub listen: SocketAddr,
    /// How long full-resolution history is kept (default 15 minutes).
    pub history: Duration,
    /// How many agent streams may be open at once (default 10,000); further
    /// agents are refused with RESOURCE_EXHAUSTED and retry later.
    pub max_agents: usize,
    /// Batches a stream may send (default 100 a second, 20,000 at once);
    /// beyond, the stream ends with RESOURCE_EXHAUSTED.
    pub batch_rate: crate::ingest::BatchRate,
    /// Serve plain-text gRPC on a non-loopback address (default false).
    pub insecure: bool,
    /// Alert rules, notification sinks and where alert state is kept
    /// (default: the built-in rules, no sink, in memory).
    pub alerts: AlertsConfig,
    /// A node silent this long is forgotten (default 7 days).
    pub forget_after: Duration,
    /// Nodes that should exist: listed (`down`) before they ever report,
    /// and never forgotten for silence.
    pub expected_nodes: Vec<String>,
    /// Where `/metrics` is served over HTTP (default: nowhere). The same
    /// loopback-or-`insecure` rule as `listen` applies.
    pub metrics_listen: Option<SocketAddr>,
    /// `[[remote-write]]` destinations every stored sample is forwarded to
    /// (default: none).
    pub remote_write: Vec<RemoteWriteConfig>,
    /// PEM certificate chain served on `listen` (with `tls_key`); without
    /// it the listener speaks plain text.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to; with it an agent
    /// must present one and may report only under its name.
    pub client_ca: Option<PathBuf>,
    /// The tokens files (default: none, every service open).
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            history: DEFAULT_HISTORY,
            max_agents: DEFAULT_MAX_AGENTS,
            batch_rate: crate::ingest::BatchRate::default(),
            insecure: false,
            alerts: AlertsConfig::default(),
            metrics_listen: None,
            remote_write: Vec::new(),
            forget_after: DEFAULT_FORGET_AFTER,
            expected_nodes: Vec::new(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            auth: AuthConfig::default(),
        }
    }
}

impl Config {
    /// Checks ranges and the loopback-or-`insecure` rule for `listen`.
    pub fn validate(&self) -> Result<()> {
        if self.history < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                field: "history",
                value: humantime::format_duration(self.history).to_string(),
                reason: "must be at least 1s",
            });
        }
        if self.max_agents == 0 {
            return Err(ConfigError::Invalid {
                field: "max-agents",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        if self.batch_rate.per_second == 0 || self.batch_rate.burst == 0 {
            return Err(ConfigError::Invalid {
                field: "max-batches-per-second / max-batch-burst",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        if self.forget_after < Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                field: "forget-after",
                value: humantime::format_duration(self.forget_after).to_string(),
                reason: "must be at least 1m",
            });
        }
        if let Some(bad) = self
            .expected_nodes
            .iter()
            .find(|n| n.is_empty() || n.len() > 253 || n.chars().any(char::is_control))
        {
            return Err(ConfigError::Invalid {
                field: "expected-nodes",
                value: format!("{bad:?}"),
                reason: "a node name is 1 to 253 bytes without control characters",
            });
        }
        if let Err(err) = rules::resolve(&self.alerts.rules) {
            return Err(ConfigError::Rules(err.to_string()));
        }
        if let Err(err) = notify::resolve(&self.alerts.notify) {
            return Err(ConfigError::Rules(err.to_string()));
        }
        remote_write::config::resolve(&self.remote_write)?;
        if let Some(metrics) = self.metrics_listen {
            check_metrics_listen(metrics, self.insecure)?;
        }
        self.check_tls()?;
        check_listen(self.listen, self.insecure || self.tls_cert.is_some())
    }

    /// Checks that the TLS settings go together.
    pub fn check_tls(&self) -> Result<()> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::Combination(
                    "tls-cert is set but tls-key is not; both are needed",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Combination(
                    "tls-key is set but tls-cert is not; both are needed",
                ));
            }
            _ => {}
        }
        if self.client_ca.is_some() && self.tls_cert.is_none() {
            return Err(ConfigError::Combination(
                "client-ca needs TLS: set tls-cert and tls-key too",
            ));
        }
        Ok(())
    }

    /// The listener's TLS files, when TLS is configured.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.client_ca.clone(),
        })
    }

    /// Applies the fields set in `file` over `self`.
    pub fn merge_file(&mut self, file: FileConfig) {
        let FileConfig {
            listen,
            history,
            max_agents,
            max_batches_per_second,
            max_batch_burst,
            insecure,
            data_dir,
            group_wait,
            forget_after,
            expected_nodes,
            rules,
            notify,
            metrics_listen,
            remote_write,
            tls_cert,
            tls_key,
            client_ca,
            agent_tokens_file,
            viewer_tokens_file,
            operator_tokens_file,
        } = file;
        if let Some(listen) = listen {
            self.listen = listen;
        }
        if let Some(history) = history {
            self.history = history;
        }
        if let Some(max_agents) = max_agents {
            self.max_agents = max_agents;
        }
        if let Some(n) = max_batches_per_second {
            self.batch_rate.per_second = n;
        }
        if let Some(n) = max_batch_burst {
            self.batch_rate.burst = n;
        }
        if let Some(insecure) = insecure {
            self.insecure = insecure;
        }
        if let Some(dir) = data_dir {
            self.alerts.data_dir = Some(dir);
        }
        if let Some(after) = forget_after {
            self.forget_after = after;
        }
        if let Some(nodes) = expected_nodes {
            self.expected_nodes = nodes;
        }
        if let Some(wait) = group_wait {
            self.alerts.group_wait = Some(wait);
        }
        if !rules.is_empty() {
            self.alerts.rules = rules.into_iter().map(Spanned::into_inner).collect();
        }
        if !notify.is_empty() {
            self.alerts.notify = notify.into_iter().map(Spanned::into_inner).collect();
        }
        if let Some(metrics) = metrics_listen {
            self.metrics_listen = Some(metrics);
        }
        if !remote_write.is_empty() {
            self.remote_write = remote_write.into_iter().map(Spanned::into_inner).collect();
        }
        let set = |to: &mut Option<PathBuf>, from: Option<PathBuf>| {
            if from.is_some() {
                *to = from;
            }
        };
        set(&mut self.tls_cert, tls_cert);
        set(&mut self.tls_key, tls_key);
        set(&mut self.client_ca, client_ca);
        set(&mut self.auth.agent_tokens_file, agent_tokens_file);
        set(&mut self.auth.viewer_tokens_file, viewer_tokens_file);
        set(&mut self.auth.operator_tokens_file, operator_tokens_file);
    }
}

/// Refuses a non-loopback `listen` address unless `insecure` is set.
pub fn check_listen(listen: SocketAddr, insecure: bool) -> Result<()> {
    if listen.ip().is_loopback() || insecure {
        Ok(())
    } else {
        Err(ConfigError::Insecure { listen })
    }
}

/// Refuses a non-loopback `/metrics` address unless `insecure` is set.
pub fn check_metrics_listen(listen: SocketAddr, insecure: bool) -> Result<()> {
    if listen.ip().is_loopback() || insecure {
        Ok(())
    } else {
        Err(ConfigError::InsecureMetrics { listen })
    }
}

/// The TOML config file. Every field is optional; absent fields keep the
/// default (or the command-line value, which wins over the file).
///
/// ```toml
/// listen = "127.0.0.1:7411"
/// history = "15m"
/// max-agents = 10000
/// insecure = false
/// data-dir = "/var/lib/stacktop"
/// group-wait = "5s"
/// metrics-listen = "127.0.0.1:7412"
/// tls-cert = "/etc/stacktop/collector.pem"
/// tls-key = "/etc/stacktop/collector.key"
/// client-ca = "/etc/stacktop/ca.pem"
/// agent-tokens-file = "/etc/stacktop/agent-tokens"
/// viewer-tokens-file = "/etc/stacktop/viewer-tokens"
/// operator-tokens-file = "/etc/stacktop/operator-tokens"
///
/// [[rules]]
/// name = "check-failed"
/// for = "2s"
///
/// [[notify]]
/// kind = "alertmanager"
/// url = "http://127.0.0.1:9093"
///
/// [[remote-write]]
/// url = "http://127.0.0.1:9090/api/v1/write"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// Full-resolution history window, e.g. "15m".
    #[serde(default, with = "humantime_serde")]
    pub history: Option<Duration>,
    /// Cap on concurrent agent streams.
    pub max_agents: Option<usize>,
    /// Batches a stream may send a second, sustained.
    pub max_batches_per_second: Option<u32>,
    /// Batches a stream may send at once (a spool replayed after an
    /// outage).
    pub max_batch_burst: Option<u32>,
    /// Serve plain text on a non-loopback address.
    pub insecure: Option<bool>,
    /// Where alert state (and later history) is kept.
    pub data_dir: Option<PathBuf>,
    /// How long a firing alert waits for the alerts it causes before it is
    /// notified.
    #[serde(default, with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    /// Forget a node silent this long, e.g. "7d".
    #[serde(default, with = "humantime_serde")]
    pub forget_after: Option<Duration>,
    /// Nodes that should exist, by name.
    pub expected_nodes: Option<Vec<String>>,
    /// `[[rules]]`: new alert rules, or built-ins overridden by name.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleConfig>>,
    /// `[[notify]]`: where alerts are sent.
    #[serde(default)]
    pub notify: Vec<Spanned<NotifyConfig>>,
    /// Where `/metrics` is served, e.g. "127.0.0.1:7412".
    pub metrics_listen: Option<SocketAddr>,
    /// `[[remote-write]]`: where every stored sample is forwarded.
    #[serde(default)]
    pub remote_write: Vec<Spanned<RemoteWriteConfig>>,
    /// PEM certificate chain for the listener.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls-cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Agent tokens, one a line.
    pub agent_tokens_file: Option<PathBuf>,
    /// Viewer tokens, one a line.
    pub viewer_tokens_file: Option<PathBuf>,
    /// Operator tokens, one a line.
    pub operator_tokens_file: Option<PathBuf>,
}

impl FileConfig {
    /// Parses TOML text; `path` is only used in error messages.
    /// Rules and sinks are checked here too, so that a table that cannot
    /// work is reported with its line.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: Self = toml::from_str(text).map_err(|cause| ConfigError::Parse {
            path: path.to_path_buf(),
            cause: Box::new(cause),
        })?;
        let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        let alerting = |line: usize, cause: String| ConfigError::Alerting {
            path: path.to_path_buf(),
            line,
            cause,
        };
        for rule in &file.rules {
            rules::resolve(std::slice::from_ref(rule.get_ref()))
                .map_err(|e| alerting(line(rule.span().start), e.to_string()))?;
        }
        for sink in &file.notify {
            notify::resolve(std::slice::from_ref(sink.get_ref()))
                .map_err(|e| alerting(line(sink.span().start), e.to_string()))?;
        }
        // What only the whole set can get wrong (one name twice) is
        // reported at the last table of that name.
        let all: Vec<RuleConfig> = file.rules.iter().map(|r| r.get_ref().clone()).collect();
        rules::resolve(&all).map_err(|e| {
            let at = file.rules.iter().rev().find(|r| r.get_ref().name == e.rule);
            alerting(at.map_or(1, |r| line(r.span().start)), e.to_string())
        })?;
        let all: Vec<NotifyConfig> = file.notify.iter().map(|r| r.get_ref().clone()).collect();
        notify::resolve(&all).map_err(|e| {
            let at = file
                .notify
                .iter()
                .rev()
                .find(|s| s.get_ref().name.as_deref() == Some(&e.name));
            alerting(at.map_or(1, |s| line(s.span().start)), e.to_string())
        })?;
        let remote_write_at = |line: usize, cause: RemoteWriteError| ConfigError::RemoteWriteAt {
            path: path.to_path_buf(),
            line,
            cause,
        };
        for table in &file.remote_write {
            remote_write::config::resolve(std::slice::from_ref(table.get_ref()))
                .map_err(|e| remote_write_at(line(table.span().start), e))?;
        }
        let all: Vec<RemoteWriteConfig> = file
            .remote_write
            .iter()
            .map(|t| t.get_ref().clone())
            .collect();
        remote_write::config::resolve(&all).map_err(|e| {
            let at = file.remote_write.iter().rev().find(|t| {
                let t = t.get_ref();
                t.name.as_deref().unwrap_or(&t.url) == e.name
            });
            remote_write_at(at.map_or(1, |t| line(t.span().start)), e)
        })?;
        Ok(file)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let config = Config::default();
        assert_eq!(config.listen.port(), DEFAULT_PORT);
        assert_eq!(config.history, DEFAULT_HISTORY);
        config.validate().unwrap();
    }

    #[test]
    fn file_fields_are_kebab_case_and_override_defaults() {
        let file = FileConfig::parse(
            "listen = \"127.0.0.1:9000\"\nhistory = \"5m\"\nmax-agents = 3\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let mut config = Config::default();
        config.merge_file(file);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.history, Duration::from_secs(300));
        assert_eq!(config.max_agents, 3);
    }

    #[test]
    fn unknown_field_error_names_file_line_and_field() {
        let err = FileConfig::parse("history = \"5m\"\nmax_agents = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("max_agents"), "{err}");
    }

    #[test]
    fn bad_duration_is_an_error() {
        let err = FileConfig::parse("history = \"soon\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("history"), "{err}");
    }

    #[test]
    fn non_loopback_needs_insecure() {
        let mut config = Config {
            listen: "0.0.0.0:7411".parse().unwrap(),
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:7411") && err.contains("--insecure"),
            "{err}"
        );
        config.insecure = true;
        config.validate().unwrap();
        config.listen = "[::1]:7411".parse().unwrap();
        config.insecure = false;
        config.validate().unwrap();
    }

    #[test]
    fn tls_allows_any_address_and_its_keys_go_together() {
        let file = FileConfig::parse(
            "listen = \"0.0.0.0:7411\"\ntls-cert = \"c.pem\"\ntls-key = \"c.key\"\n\
             client-ca = \"ca.pem\"\nagent-tokens-file = \"a\"\nviewer-tokens-file = \"v\"\n\
             operator-tokens-file = \"o\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let mut config = Config::default();
        config.merge_file(file);
        config.validate().unwrap();
        assert_eq!(config.tls_files().unwrap().client_ca, Some("ca.pem".into()));
        assert_eq!(config.auth.operator_tokens_file, Some("o".into()));
        config.tls_key = None;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls-key"), "{err}");
        let config = Config {
            listen: "10.0.0.1:7411".parse().unwrap(),
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("--tls-cert") && err.contains("--insecure"),
            "{err}"
        );
        assert!(!err.contains("not implemented"), "{err}");
    }

    #[test]
    fn zero_max_agents_is_refused() {
        let config = Config {
            max_agents: 0,
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max-agents")
        );
    }
}
