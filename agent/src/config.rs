//! The agent's configuration: the resolved [`Config`] that [`crate::run`]
//! takes, the TOML file format ([`FileConfig`]) it is loaded from, and the
//! validation shared by the file and the command line.
//!
//! Every error names where the bad value came from: a file error carries the
//! file, line, column and field (`agent.toml:3:9: field "roles": ...`) so an
//! operator can jump straight to it; the same checks serve CLI values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use stacktop_proto::Role;
use stacktop_proto::transport::{ClientTls, TransportError};
use toml::Spanned;

use crate::checks::CheckSpec;
use crate::logs::LogSourceConfig;

/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The collector an agent streams to when none is configured anywhere (the
/// collector's documented default port, on this machine).
pub const DEFAULT_COLLECTOR: &str = "http://127.0.0.1:7411";

/// Shortest accepted interval: below this, sampling itself becomes the load.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Longest accepted interval: the collector marks a node down after three
/// silent intervals, so hours would make "down" meaningless.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// A resolved agent configuration (file values overridden by the CLI).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Node name; `None` means the host name.
    pub name: Option<String>,
    /// Configured roles; empty means "unassigned" (detection comes later).
    pub roles: Vec<Role>,
    /// Free-form labels sent in Hello.
    pub labels: BTreeMap<String, String>,
    /// Collector URLs, e.g. `http://127.0.0.1:7411`. The agent streams to each.
    pub collectors: Vec<String>,
    /// Sampling interval.
    pub interval: Duration,
    /// Access logs to turn into request rates (`[[logs]]` tables).
    pub logs: Vec<LogSourceConfig>,
    /// Health checks (`[[checks]]` tables). `None` means "none configured":
    /// the agent runs its role defaults ([`crate::checks::defaults_for_roles`]);
    /// `Some` (even empty) runs these, and the role defaults beside them
    /// only with `role_defaults` (see [`crate::plan`]).
    pub checks: Option<Vec<CheckSpec>>,
    /// `role-defaults`: whether the roles' default checks run. `None`
    /// (unset): yes without `[[checks]]`, no with them; `Some(true)`: also
    /// beside `[[checks]]`, except those the tables already cover;
    /// `Some(false)`: never.
    pub role_defaults: Option<bool>,
    /// Where batches wait until every collector acknowledged them; `None`:
    /// in memory (lost when the agent stops). The binary defaults to
    /// [`crate::spool::DEFAULT_DIR`] when it exists and is writable.
    pub spool_dir: Option<PathBuf>,
    /// Bound on the spool's size.
    pub spool_max_bytes: u64,
    /// Bound on the age of a spooled batch.
    pub spool_max_age: Duration,
    /// TLS files for `https://` collectors: `ca-file` (default: the web
    /// PKI roots), and `tls-cert`/`tls-key`, the client certificate a
    /// collector with `client-ca` wants (its name must be this node's).
    /// Read at each connect, so rotated files are used on the next one.
    pub tls: ClientTls,
    /// `token-file`: the agent token sent to every collector.
    pub token_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            roles: Vec::new(),
            labels: BTreeMap::new(),
            collectors: Vec::new(),
            interval: DEFAULT_INTERVAL,
            logs: Vec::new(),
            checks: None,
            role_defaults: None,
            spool_dir: None,
            spool_max_bytes: crate::spool::DEFAULT_MAX_BYTES,
            spool_max_age: crate::spool::DEFAULT_MAX_AGE,
            tls: ClientTls::default(),
            token_file: None,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the format.
    #[error("{}:{line}:{column}: {}{message}", path.display(), field_prefix(field))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// The key the error is about, when it can be told.
        field: Option<String>,
        /// The parser's description.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{}:{line}:{column}: field {field:?}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the bad value.
        line: usize,
        /// 1-based column of the bad value.
        column: usize,
        /// The key holding the bad value.
        field: &'static str,
        /// What is wrong with it, quoting the value.
        message: String,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    match field {
        Some(f) => format!("field {f:?}: "),
        None => String::new(),
    }
}

/// Results of configuration loading.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// The agent's TOML file. Every field is optional; absent fields fall back
/// to the defaults or to the command line.
///
/// ```toml
/// name = "web-1"
/// roles = ["web", "app"]
/// collectors = ["https://collector.example:7411"]
/// ca-file = "/etc/stacktop/ca.pem"
/// tls-cert = "/etc/stacktop/web-1.pem"
/// tls-key = "/etc/stacktop/web-1.key"
/// token-file = "/etc/stacktop/agent-token"
/// interval = "1s"
/// role-defaults = true    # the roles' default checks beside [[checks]]
/// [labels]
/// dc = "fra1"
/// [[logs]]
/// path = "/var/log/nginx/access.log"
/// format = "nginx-combined"
/// [[checks]]
/// kind = "http"
/// name = "health"
/// url = "http://127.0.0.1:9000/health"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    /// Node name (default: the host name).
    pub name: Option<Spanned<String>>,
    /// Roles: `lb`, `web`, `app`, `db`.
    pub roles: Option<Vec<Spanned<String>>>,
    /// Free-form labels sent in Hello.
    pub labels: Option<BTreeMap<String, String>>,
    /// Collector URLs (`https://HOST:PORT`, or `http://` on loopback).
    pub collectors: Option<Vec<Spanned<String>>>,
    /// PEM CA the collectors' certificates are verified against.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate presented to collectors.
    pub tls_cert: Option<Spanned<PathBuf>>,
    /// PEM private key of `tls-cert`.
    pub tls_key: Option<Spanned<PathBuf>>,
    /// File holding the agent token.
    pub token_file: Option<PathBuf>,
    /// Sampling interval as a humantime string, e.g. `"1s"` or `"500ms"`.
    pub interval: Option<Spanned<String>>,
    /// Access logs to tail for request rates.
    pub logs: Option<Vec<Spanned<LogSourceConfig>>>,
    /// Where batches wait for every collector's acknowledgement.
    pub spool_dir: Option<Spanned<PathBuf>>,
    /// Bound on the spool, in bytes.
    pub spool_max_bytes: Option<Spanned<u64>>,
    /// Bound on a spooled batch's age, e.g. `"24h"`.
    pub spool_max_age: Option<Spanned<String>>,
    /// Health checks; see [`crate::checks`] and its kind modules for every
    /// kind's keys. (Read as plain tables and decoded by
    /// [`crate::checks::parse_tables`], which can then say on which line of
    /// which table a key is wrong.)
    pub checks: Option<Vec<toml::Table>>,
    /// Whether the roles' default checks run beside `[[checks]]` (default:
    /// only when there is no `[[checks]]`).
    pub role_defaults: Option<bool>,
}

/// Loads and validates a config file, returning a [`Config`] holding only
/// what the file sets (unset fields keep [`Config::default`] values).
pub fn load_file(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(path, &text)
}

/// Parses and validates config text; `path` is only used in error messages.
pub fn parse_str(path: &Path, text: &str) -> Result<Config> {
    let file: FileConfig = toml::from_str(text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let (line, column) = line_col(text, span.start);
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            column,
            field: field_at(text, &span),
            message: err.message().trim().to_string(),
        }
    })?;
    let invalid = |field: &'static str, span: Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            field,
            message,
        }
    };

    let mut config = Config::default();
    if let Some(name) = file.name {
        let span = name.span();
        config.name = Some(validate_name(name.get_ref()).map_err(|m| invalid("name", span, m))?);
    }
    for role in file.roles.unwrap_or_default() {
        let span = role.span();
        let role: Role = role
            .get_ref()
            .parse()
            .map_err(|e: stacktop_proto::UnknownRole| invalid("roles", span, e.to_string()))?;
        if !config.roles.contains(&role) {
            config.roles.push(role);
        }
    }
    config.labels = file.labels.unwrap_or_default();
    for url in file.collectors.unwrap_or_default() {
        let span = url.span();
        let url = validate_collector(url.get_ref())
            .map_err(|e| invalid("collectors", span, e.to_string()))?;
        config.collectors.push(url);
    }
    if let Some(dir) = file.spool_dir {
        config.spool_dir = Some(dir.into_inner());
    }
    match (file.tls_cert, file.tls_key) {
        (Some(cert), Some(key)) => {
            config.tls.cert = Some(cert.into_inner());
            config.tls.key = Some(key.into_inner());
        }
        (None, None) => {}
        (Some(cert), None) => {
            return Err(invalid(
                "tls-cert",
                cert.span(),
                "tls-cert needs tls-key (the certificate's private key)".into(),
            ));
        }
        (None, Some(key)) => {
            return Err(invalid(
                "tls-key",
                key.span(),
                "tls-key needs tls-cert (the client certificate)".into(),
            ));
        }
    }
    config.tls.ca_file = file.ca_file;
    config.token_file = file.token_file;
    if let Some(max) = file.spool_max_bytes {
        let span = max.span();
        let max = max.into_inner();
        if max < 64 * 1024 {
            return Err(invalid(
                "spool-max-bytes",
                span,
                format!("{max} is too small: at least 65536 (64 KiB)"),
            ));
        }
        config.spool_max_bytes = max;
    }
    if let Some(age) = file.spool_max_age {
        let span = age.span();
        let age = humantime::parse_duration(age.get_ref().trim())
            .map_err(|e| invalid("spool-max-age", span.clone(), e.to_string()))?;
        if age < Duration::from_secs(60) {
            return Err(invalid(
                "spool-max-age",
                span,
                format!(
                    "{} is too short: at least 1m",
                    humantime::format_duration(age)
                ),
            ));
        }
        config.spool_max_age = age;
    }
    if let Some(interval) = file.interval {
        let span = interval.span();
        config.interval =
            parse_interval(interval.get_ref()).map_err(|m| invalid("interval", span, m))?;
    }
    for log in file.logs.unwrap_or_default() {
        let span = log.span();
        let log = log.into_inner();
        // An error about one key points at it; others at the table.
        log.validate().map_err(|e| match e.key() {
            Some(key) => {
                let block = table_block(text, span.start);
                let at = key_offset(text, &block, key).map_or(span.clone(), |o| o..o);
                invalid(key, at, e.to_string())
            }
            None => invalid("logs", span.clone(), e.to_string()),
        })?;
        // Two tailers on one file would count every request twice.
        if config.logs.iter().any(|l| l.path == log.path) {
            return Err(invalid(
                "logs",
                span,
                format!("log {:?} is listed twice", log.path),
            ));
        }
        config.logs.push(log);
    }
    if let Some(tables) = file.checks {
        // Each check is also built here (and the result dropped), so one
        // that cannot be built (a CA file that does not load) is refused
        // at load with its position, by `--check` and at start alike.
        let specs = crate::checks::parse_tables(text, tables, &config.roles).map_err(|e| {
            let (line, column) = line_col(text, e.offset);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                field: e.field,
                message: e.message,
            }
        })?;
        config.checks = Some(specs);
    }
    config.role_defaults = file.role_defaults;
    Ok(config)
}

/// Checks a node name: non-empty, no surrounding blanks or control characters.
pub fn validate_name(name: &str) -> std::result::Result<String, String> {
    if name.trim().is_empty() {
        return Err("node name must not be empty".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "node name {name:?} must not contain blanks at the ends or control characters"
        ));
    }
    Ok(name.to_string())
}

/// Checks a collector URL: `http://HOST:PORT` (an optional trailing `/` is
/// accepted). Returns the URL as the uplink will dial it. The rules are
/// the client transport's ([`stacktop_proto::transport::validate_url`]),
/// so what the config accepts is exactly what the uplink can dial.
pub fn validate_collector(url: &str) -> std::result::Result<String, TransportError> {
    stacktop_proto::transport::validate_url(url)
}

/// Parses a humantime interval such as `1s` or `500ms` and checks it lies in
/// [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    let interval = humantime::parse_duration(text.trim())
        .map_err(|e| format!("interval {text:?} is not a duration ({e}), e.g. \"1s\""))?;
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(format!(
            "interval {text:?} is out of range: expected between {} and {}",
            humantime::format_duration(MIN_INTERVAL),
            humantime::format_duration(MAX_INTERVAL)
        ));
    }
    Ok(interval)
}

/// Parses a `key=value` label.
pub fn parse_label(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("label {text:?} is not key=value")),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The text of the table whose header starts at `start`: up to the next table header (toml
/// spans an array-of-tables element by its header only).
fn table_block(text: &str, start: usize) -> Range<usize> {
    let start = start.min(text.len());
    let body = text[start..]
        .find('\n')
        .map_or(text.len(), |i| start + i + 1);
    let mut end = body;
    for line in text[body..].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            break;
        }
        end += line.len();
    }
    start..end
}

/// Offset of the line `key = ...` inside `block` (a table's text), to point an error at the
/// key it is about.
pub(crate) fn key_offset(text: &str, block: &Range<usize>, key: &str) -> Option<usize> {
    let body = text.get(block.clone())?;
    let mut offset = block.start;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let bare = trimmed.strip_prefix(key).or_else(|| {
            trimmed
                .strip_prefix('"')
                .and_then(|t| t.strip_prefix(key))
                .and_then(|t| t.strip_prefix('"'))
        });
        if bare.is_some_and(|rest| rest.trim_start().starts_with('=')) {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// The key an error span points into: the text before `=` on the span's
/// line, or the span itself when it covers a bare key (`unknown field`).
fn field_at(text: &str, span: &Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[line_start..line_end];
    let key = match line.split_once('=') {
        Some((key, _)) => key,
        None => text.get(span.clone())?,
    };
    let key = key.trim().trim_matches(['"', '\'', '[', ']']).trim();
    (!key.is_empty() && !key.contains(char::is_whitespace)).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        parse_str(Path::new("agent.toml"), text)
    }

    #[test]
    fn full_file_parses() {
        let config = parse(
            "name = \"web-1\"\nroles = [\"web\", \"app\"]\ncollectors = [\"http://127.0.0.1:7411\", \"http://[::1]:9/\"]\ninterval = \"500ms\"\n[labels]\ndc = \"fra1\"\n",
        )
        .unwrap();
        assert_eq!(config.name.as_deref(), Some("web-1"));
        assert_eq!(config.roles, vec![Role::Web, Role::App]);
        assert_eq!(
            config.collectors,
            vec!["http://127.0.0.1:7411", "http://[::1]:9"]
        );
        assert_eq!(config.interval, Duration::from_millis(500));
        assert_eq!(config.labels["dc"], "fra1");
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn bad_role_names_line_column_and_field() {
        let err = parse("name = \"a\"\n\nroles = [\"web\", \"cache\"]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "agent.toml:3:17: field \"roles\": unknown role \"cache\": expected one of lb, web, app, db"
        );
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("name = \"a\"\ncolector = \"http://x:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("agent.toml:2:1: field \"colector\": "),
            "{err}"
        );
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse("\ninterval = 5\n").unwrap_err().to_string();
        assert!(
            err.starts_with("agent.toml:2:12: field \"interval\": "),
            "{err}"
        );
    }

    #[test]
    fn bad_collector_and_interval_are_refused() {
        let err = parse("collectors = [\"127.0.0.1:7411\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("agent.toml:1:15: field \"collectors\""),
            "{err}"
        );
        for bad in [
            "ftp://h:1",
            "http://h",
            "http://:1",
            "https://h",
            "http://h:1/x",
        ] {
            assert!(validate_collector(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_collector("https://h:1/").unwrap(), "https://h:1");
        // The message quotes the address, whichever rule refused it.
        let err = parse("collectors = [\"http://10.0.0.5\"]")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "agent.toml:1:15: field \"collectors\": collector address \"http://10.0.0.5\": has no port, e.g. http://HOST:7411"
        );
        for bad in ["0s", "10ms", "2h", "soon"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        let err = parse("interval = \"0s\"").unwrap_err().to_string();
        assert!(
            err.starts_with("agent.toml:1:12: field \"interval\": "),
            "{err}"
        );
    }

    #[test]
    fn logs_parse_and_bad_ones_name_their_line() {
        let config =
            parse("[[logs]]\npath = \"/var/log/nginx/access.log\"\nformat = \"nginx-combined\"\n")
                .unwrap();
        assert_eq!(config.logs.len(), 1);
        assert_eq!(config.logs[0].format, "nginx-combined");

        let err = parse("name = \"a\"\n[[logs]]\npath = \"/x.log\"\nformat = \"apache\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("agent.toml:2:1: field \"logs\": "), "{err}");
        assert!(err.contains("apache"), "{err}");

        let err = parse("[[logs]]\npath = \"/x.log\"\nformat = \"nginx-combined\"\nfromat = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fromat"), "{err}");

        let twice = "[[logs]]\npath = \"/x.log\"\nformat = \"nginx-combined\"\n";
        let err = parse(&format!("{twice}{twice}")).unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn health_check_paths_are_refused_at_their_key() {
        let config = parse("[[logs]]\npath = \"/x.log\"\nformat = \"stacktop\"\nhealth-check-paths = [\"/health\"]\n")
            .unwrap();
        assert_eq!(config.logs[0].health_check_paths, ["/health"]);
        let err = parse(
            "[[logs]]\npath = \"/x.log\"\nformat = '$msec $status'\n  health-check-paths = [\"/health\"]\n[[logs]]\npath = \"/y.log\"\nformat = \"stacktop\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "agent.toml:4:3: field \"health-check-paths\": health-check-paths needs the request line, but log format \"$msec $status\" has no $request"
        );
        let err = parse("[[logs]]\npath = \"/x.log\"\nformat = \"stacktop\"\nhealth-check-paths = [\"health\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "agent.toml:4:1: field \"health-check-paths\": health-check-paths entry \"health\" "
            ),
            "{err}"
        );
    }

    #[test]
    fn labels_parse_as_key_value() {
        assert_eq!(parse_label("dc=fra1"), Ok(("dc".into(), "fra1".into())));
        assert!(parse_label("dc").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn tls_and_token_files_are_read() {
        let config = parse(
            "collectors = [\"https://collector.example:7411\"]\nca-file = \"ca.pem\"\n\
             tls-cert = \"web1.pem\"\ntls-key = \"web1.key\"\ntoken-file = \"agent-token\"\n",
        )
        .unwrap();
        assert_eq!(config.collectors, ["https://collector.example:7411"]);
        assert_eq!(config.tls.ca_file, Some("ca.pem".into()));
        assert_eq!(config.tls.cert, Some("web1.pem".into()));
        assert_eq!(config.tls.key, Some("web1.key".into()));
        assert_eq!(config.token_file, Some("agent-token".into()));
        let err = parse("tls-cert = \"web1.pem\"\n").unwrap_err().to_string();
        assert!(err.contains("tls-cert") && err.contains("tls-key"), "{err}");
    }
}
