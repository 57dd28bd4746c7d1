//! The `[[checks]]` tables of the agent's TOML file, their validation and
//! the checks a node gets by role when it configures none.
//!
//! Every table has a `kind` and the common keys `name` (default derived
//! from the target, e.g. `http:127.0.0.11:9000/health`), `interval`
//! (default 5 s; 15 s for `exposure`) and `timeout` (default 2 s, or half
//! the interval when that is shorter; must be below the interval):
//!
//! ```toml
//! [[checks]]
//! kind = "http"                 # also "app": the same check, reported as kind app
//! url = "https://127.0.0.11:8443/health"
//! expect-status = "200-399"     # default; or 200, or "200,204"
//! body-contains = "ok"
//! warn-latency = "500ms"
//! ca-file = "/etc/ssl/lab-ca.pem"
//!
//! [[checks]]
//! kind = "tcp"
//! address = "127.0.0.21:3306"
//!
//! [[checks]]
//! kind = "tls"
//! address = "127.0.0.10:443"
//! server-name = "www.example.com"   # default: the address's host
//! warn-days = 14                    # default 14
//! crit-days = 3                     # default 3
//!
//! [[checks]]
//! kind = "process"
//! process-name = "nginx"
//!
//! [[checks]]
//! kind = "dns"
//! query-name = "www.stacktop.test"
//! resolver = "127.0.0.30:5353"
//! expect = ["127.0.0.10"]
//!
//! [[checks]]
//! kind = "exposure"
//! allow = [22, 80, "10.0.0.5:8080"]   # default: by role, see checks::exposure
//!
//! [[checks]]
//! kind = "nginx"
//! url = "http://127.0.0.11:8080/nginx_status"
//!
//! [[checks]]
//! kind = "haproxy"
//! socket = "/run/haproxy/admin.sock"  # or url = "http://127.0.0.10:8404/stats;csv"
//!
//! [[checks]]
//! kind = "mysql"
//! address = "127.0.0.22:3306"         # or socket = "/run/mysqld/mysqld.sock"
//! user = "stacktop"                   # default
//! password-env = "STACKTOP_MYSQL_PASSWORD"   # default; or password-file, or password
//! warn-lag = "10s"
//! crit-lag = "60s"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use stacktop_proto::Role;

use super::{BuildError, Check, Probe};

/// Time between two runs of a check when `interval` is not set.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Time between two exposure scans when `interval` is not set: listeners
/// change rarely and a scan reads every process's fd table when something
/// is not allowed.
pub const DEFAULT_EXPOSURE_INTERVAL: Duration = Duration::from_secs(15);

/// Bound on one run when `timeout` is not set (or half the interval, when
/// that is shorter).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Shortest accepted check interval.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Environment variable the default MySQL password is read from.
pub const DEFAULT_MYSQL_PASSWORD_ENV: &str = "STACKTOP_MYSQL_PASSWORD";

/// Monitoring user of the default MySQL check.
pub const DEFAULT_MYSQL_USER: &str = "stacktop";

macro_rules! spec_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct $name {
            /// The check's name, unique on the node (default: derived from
            /// the kind and target).
            #[serde(default)]
            pub name: Option<String>,
            /// Time between two runs (humantime, e.g. `"5s"`).
            #[serde(default, with = "humantime_serde")]
            pub interval: Option<Duration>,
            /// Bound on one run (humantime); must be below the interval.
            #[serde(default, with = "humantime_serde")]
            pub timeout: Option<Duration>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }
    };
}

spec_struct! {
    /// An HTTP(S) GET (kinds `http` and `app`).
    HttpSpec {
        /// `http://` or `https://` URL.
        url: String,
        /// Accepted statuses: `200`, `"200-399"` (default) or `"200,204"`.
        #[serde(default)]
        expect_status: Option<StatusSpec>,
        /// A substring the body must contain.
        #[serde(default)]
        body_contains: Option<String>,
        /// Warn when the response takes at least this long.
        #[serde(default, with = "humantime_serde")]
        warn_latency: Option<Duration>,
        /// PEM file of CA certificates to trust instead of the web PKI
        /// (for self-signed certificates).
        #[serde(default)]
        ca_file: Option<String>,
    }
}

spec_struct! {
    /// A TCP connect.
    TcpSpec {
        /// `host:port`.
        address: String,
    }
}

spec_struct! {
    /// A TLS handshake and the days left on the server's certificate.
    TlsSpec {
        /// `host:port`.
        address: String,
        /// SNI and verification name (default: the address's host).
        #[serde(default)]
        server_name: Option<String>,
        /// Warn when fewer days are left (default 14).
        #[serde(default)]
        warn_days: Option<u32>,
        /// Crit when fewer days are left (default 3).
        #[serde(default)]
        crit_days: Option<u32>,
        /// PEM file of CA certificates to trust instead of the web PKI.
        #[serde(default)]
        ca_file: Option<String>,
    }
}

spec_struct! {
    /// A process running, by name.
    ProcessSpec {
        /// Matched against `/proc/PID/comm` and the basename of argv\[0\].
        process_name: String,
    }
}

spec_struct! {
    /// An A record through a given resolver.
    DnsSpec {
        /// The name to resolve, e.g. `www.example.com`.
        query_name: String,
        /// The resolver as `ip:port` (UDP, falling back to TCP).
        resolver: String,
        /// The addresses the name must resolve to (all of them, nothing
        /// else); empty means "any answer".
        #[serde(default)]
        expect: Vec<String>,
    }
}

spec_struct! {
    /// The node's listening sockets against an allow-list.
    ExposureSpec {
        /// Allowed listeners: a port (any address) or `"addr:port"`. When
        /// absent, the roles' defaults (see [`super::exposure`]).
        #[serde(default)]
        allow: Option<Vec<AllowEntry>>,
    }
}

spec_struct! {
    /// Nginx stub_status.
    NginxSpec {
        /// The stub_status URL.
        url: String,
    }
}

spec_struct! {
    /// HAProxy stats, from the stats socket or the CSV page.
    HaproxySpec {
        /// Path of the stats socket (`show stat`).
        #[serde(default)]
        socket: Option<String>,
        /// URL of the stats CSV page (`.../stats;csv`).
        #[serde(default)]
        url: Option<String>,
    }
}

spec_struct! {
    /// MySQL/MariaDB health, role and replication.
    MysqlSpec {
        /// `host:port` (default `127.0.0.1:3306`).
        #[serde(default)]
        address: Option<String>,
        /// Unix socket path, used instead of `address`.
        #[serde(default)]
        socket: Option<String>,
        /// User (default `stacktop`).
        #[serde(default)]
        user: Option<String>,
        /// Password in clear (prefer `password-file` or `password-env`).
        #[serde(default)]
        password: Option<String>,
        /// File whose first line is the password.
        #[serde(default)]
        password_file: Option<String>,
        /// Environment variable holding the password (default
        /// `STACKTOP_MYSQL_PASSWORD` when no password is configured).
        #[serde(default)]
        password_env: Option<String>,
        /// Replication lag at which the replication check warns (default 10 s).
        #[serde(default, with = "humantime_serde")]
        warn_lag: Option<Duration>,
        /// Replication lag at which the replication check is crit (default 60 s).
        #[serde(default, with = "humantime_serde")]
        crit_lag: Option<Duration>,
    }
}

/// Accepted HTTP statuses as written in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// One status code.
    Code(u16),
    /// `"200-399"`, `"200,204"` or a mix.
    Text(String),
}

/// One allowed listener as written in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AllowEntry {
    /// A port, on any address.
    Port(u16),
    /// `"port"` or `"addr:port"` (`"[v6]:port"` for IPv6).
    Text(String),
}

/// One `[[checks]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckSpec {
    /// HTTP(S) GET.
    Http(HttpSpec),
    /// The app server's health endpoint: an HTTP check reported as `app`.
    App(HttpSpec),
    /// TCP connect.
    Tcp(TcpSpec),
    /// TLS certificate days to expiry.
    Tls(TlsSpec),
    /// Process running.
    Process(ProcessSpec),
    /// DNS A record.
    Dns(DnsSpec),
    /// Listening sockets against an allow-list.
    Exposure(ExposureSpec),
    /// Nginx stub_status.
    Nginx(NginxSpec),
    /// HAProxy stats.
    Haproxy(HaproxySpec),
    /// MySQL/MariaDB.
    Mysql(MysqlSpec),
}

/// A spec value that is not acceptable: the key and the reason (quoting
/// the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The offending key, e.g. `address`.
    pub field: &'static str,
    /// What is wrong, quoting the value.
    pub message: String,
}

fn bad(field: &'static str, message: String) -> SpecError {
    SpecError { field, message }
}

macro_rules! common {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            CheckSpec::Http($s) | CheckSpec::App($s) => $e,
            CheckSpec::Tcp($s) => $e,
            CheckSpec::Tls($s) => $e,
            CheckSpec::Process($s) => $e,
            CheckSpec::Dns($s) => $e,
            CheckSpec::Exposure($s) => $e,
            CheckSpec::Nginx($s) => $e,
            CheckSpec::Haproxy($s) => $e,
            CheckSpec::Mysql($s) => $e,
        }
    };
}

impl CheckSpec {
    /// The kind as configured and reported.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
            CheckSpec::App(_) => "app",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Tls(_) => "tls",
            CheckSpec::Process(_) => "process",
            CheckSpec::Dns(_) => "dns",
            CheckSpec::Exposure(_) => "exposure",
            CheckSpec::Nginx(_) => "nginx",
            CheckSpec::Haproxy(_) => "haproxy",
            CheckSpec::Mysql(_) => "mysql",
        }
    }

    /// The check's name: configured, or derived from kind and target.
    pub fn name(&self) -> String {
        if let Some(name) = common!(self, s => s.name.clone()) {
            return name;
        }
        match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => {
                let target = s
                    .url
                    .split_once("://")
                    .map_or(s.url.as_str(), |(_, rest)| rest);
                format!("{}:{target}", self.kind())
            }
            CheckSpec::Tcp(s) => format!("tcp:{}", s.address),
            CheckSpec::Tls(s) => format!("tls:{}", s.address),
            CheckSpec::Process(s) => format!("process:{}", s.process_name),
            CheckSpec::Dns(s) => format!("dns:{}", s.query_name),
            CheckSpec::Exposure(_) => "exposure".into(),
            CheckSpec::Nginx(_) => "nginx".into(),
            CheckSpec::Haproxy(_) => "haproxy".into(),
            CheckSpec::Mysql(_) => "mysql".into(),
        }
    }

    /// Time between two runs.
    pub fn interval(&self) -> Duration {
        let default = match self {
            CheckSpec::Exposure(_) => DEFAULT_EXPOSURE_INTERVAL,
            _ => DEFAULT_CHECK_INTERVAL,
        };
        common!(self, s => s.interval).unwrap_or(default)
    }

    /// Bound on one run.
    pub fn timeout(&self) -> Duration {
        common!(self, s => s.timeout)
            .unwrap_or_else(|| DEFAULT_CHECK_TIMEOUT.min(self.interval() / 2))
    }

    /// Checks every value, returning the first bad key and why.
    pub fn validate(&self) -> std::result::Result<(), SpecError> {
        let interval = self.interval();
        if interval < MIN_CHECK_INTERVAL || interval > crate::config::MAX_INTERVAL {
            return Err(bad(
                "interval",
                format!(
                    "interval {} is out of range: expected between {} and {}",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_CHECK_INTERVAL),
                    humantime::format_duration(crate::config::MAX_INTERVAL)
                ),
            ));
        }
        let timeout = self.timeout();
        if timeout.is_zero() || timeout >= interval {
            return Err(bad(
                "timeout",
                format!(
                    "timeout {} must be above zero and below the interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            ));
        }
        if let Some(name) = common!(self, s => s.name.as_deref())
            && (name.trim().is_empty() || name.chars().any(char::is_control))
        {
            return Err(bad(
                "name",
                format!("check name {name:?} must be non-empty text"),
            ));
        }
        match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => {
                super::http::parse_url(&s.url).map_err(|m| bad("url", m))?;
                if let Some(status) = &s.expect_status {
                    super::http::StatusSet::parse(status).map_err(|m| bad("expect-status", m))?;
                }
            }
            CheckSpec::Tcp(s) => {
                parse_host_port(&s.address).map_err(|m| bad("address", m))?;
            }
            CheckSpec::Tls(s) => {
                parse_host_port(&s.address).map_err(|m| bad("address", m))?;
                let (warn, crit) = s.days();
                if crit > warn {
                    return Err(bad(
                        "crit-days",
                        format!("crit-days {crit} must not exceed warn-days {warn}"),
                    ));
                }
            }
            CheckSpec::Process(s) => {
                if s.process_name.trim().is_empty() || s.process_name.contains('/') {
                    return Err(bad(
                        "process-name",
                        format!(
                            "process name {:?} must be a program name such as \"nginx\"",
                            s.process_name
                        ),
                    ));
                }
            }
            CheckSpec::Dns(s) => {
                s.resolver.parse::<SocketAddr>().map_err(|_| {
                    bad(
                        "resolver",
                        format!(
                            "resolver {:?} is not ip:port, e.g. \"127.0.0.30:5353\"",
                            s.resolver
                        ),
                    )
                })?;
                if s.query_name.trim().is_empty() || s.query_name.contains(char::is_whitespace) {
                    return Err(bad(
                        "query-name",
                        format!("query name {:?} is not a DNS name", s.query_name),
                    ));
                }
                for ip in &s.expect {
                    ip.parse::<IpAddr>().map_err(|_| {
                        bad("expect", format!("expected address {ip:?} is not an IP"))
                    })?;
                }
            }
            CheckSpec::Exposure(s) => {
                for entry in s.allow.iter().flatten() {
                    super::exposure::Allow::parse(entry).map_err(|m| bad("allow", m))?;
                }
            }
            CheckSpec::Nginx(s) => {
                super::http::parse_url(&s.url).map_err(|m| bad("url", m))?;
            }
            CheckSpec::Haproxy(s) => match (&s.socket, &s.url) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(bad(
                        "socket",
                        "set exactly one of socket (the stats socket path) or url (the stats CSV page)"
                            .into(),
                    ));
                }
                (None, Some(url)) => {
                    super::http::parse_url(url).map_err(|m| bad("url", m))?;
                }
                (Some(_), None) => {}
            },
            CheckSpec::Mysql(s) => {
                if let Some(address) = &s.address {
                    parse_host_port(address).map_err(|m| bad("address", m))?;
                }
                let set = [&s.password, &s.password_file, &s.password_env]
                    .iter()
                    .filter(|p| p.is_some())
                    .count();
                if set > 1 {
                    return Err(bad(
                        "password",
                        "set at most one of password, password-file and password-env".into(),
                    ));
                }
                let (warn, crit) = s.lags();
                if warn > crit {
                    return Err(bad(
                        "warn-lag",
                        format!(
                            "warn-lag {} must not exceed crit-lag {}",
                            humantime::format_duration(warn),
                            humantime::format_duration(crit)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Builds the runnable check. `roles` fill in role defaults (the
    /// exposure allow-list).
    pub fn build(&self, roles: &[Role]) -> std::result::Result<Check, BuildError> {
        let timeout = self.timeout();
        let probe = match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => {
                Probe::Http(super::http::HttpProbe::from_spec(s)?)
            }
            CheckSpec::Tcp(s) => Probe::Tcp(super::tcp::TcpProbe::from_spec(s)),
            CheckSpec::Tls(s) => Probe::Tls(super::tls::TlsProbe::from_spec(s)?),
            CheckSpec::Process(s) => {
                Probe::Process(super::process::ProcessProbe::new(&s.process_name))
            }
            CheckSpec::Dns(s) => Probe::Dns(super::dns::DnsProbe::from_spec(s, timeout)),
            CheckSpec::Exposure(s) => {
                Probe::Exposure(super::exposure::ExposureProbe::from_spec(s, roles))
            }
            CheckSpec::Nginx(s) => Probe::Nginx(super::nginx::NginxProbe::from_spec(s)),
            CheckSpec::Haproxy(s) => Probe::Haproxy(super::haproxy::HaproxyProbe::from_spec(s)),
            CheckSpec::Mysql(s) => Probe::Mysql(Box::new(super::mysql::MysqlProbe::from_spec(
                s,
                &self.name(),
            ))),
        };
        Ok(Check {
            name: self.name(),
            kind: self.kind(),
            interval: self.interval(),
            timeout,
            probe,
        })
    }
}

impl TlsSpec {
    /// (warn, crit) days, with defaults.
    pub fn days(&self) -> (u32, u32) {
        (self.warn_days.unwrap_or(14), self.crit_days.unwrap_or(3))
    }
}

impl MysqlSpec {
    /// (warn, crit) replication lag, with defaults.
    pub fn lags(&self) -> (Duration, Duration) {
        (
            self.warn_lag.unwrap_or(Duration::from_secs(10)),
            self.crit_lag.unwrap_or(Duration::from_secs(60)),
        )
    }
}

/// A `[[checks]]` table that could not be decoded or validated: where
/// (a byte offset in the file text), which key when it can be told, and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// Byte offset of the offending key (or of the table's header).
    pub offset: usize,
    /// The key at fault, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Decodes and validates the `[[checks]]` tables of a config file.
///
/// The tables arrive as plain TOML tables because serde's internally
/// tagged enums buffer their input and lose toml's positions; this finds
/// each table's block in `text` (the n-th `[[checks]]` header) and points
/// errors at the key they are about: an unknown or bad key, `kind` for an
/// unknown kind, the header when a key is missing.
pub fn parse_tables(
    text: &str,
    tables: Vec<toml::Table>,
) -> std::result::Result<Vec<CheckSpec>, TableError> {
    let blocks = table_blocks(text);
    let mut specs: Vec<CheckSpec> = Vec::with_capacity(tables.len());
    for (i, table) in tables.into_iter().enumerate() {
        let block = blocks.get(i).cloned().unwrap_or(0..0);
        let fail = |field: Option<String>, message: String| {
            let offset = field
                .as_deref()
                .and_then(|key| key_offset(text, &block, key))
                .unwrap_or(block.start);
            TableError {
                offset,
                field,
                message,
            }
        };
        let spec: CheckSpec =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let message = e.message().trim().replace('\n', " ");
                    let field = between(&message, "unknown field `", "`")
                        .or_else(|| {
                            message
                                .contains("unknown variant")
                                .then(|| "kind".to_string())
                        })
                        .or_else(|| {
                            // "invalid type: integer `5`, expected a string":
                            // the key whose value is the one quoted.
                            let value = between(&message, "`", "`")
                                .or_else(|| between(&message, "\"", "\""))?;
                            table
                                .iter()
                                .find(|(_, v)| {
                                    v.as_str() == Some(value.as_str()) || v.to_string() == value
                                })
                                .map(|(k, _)| k.clone())
                        });
                    fail(field, message)
                })?;
        spec.validate()
            .map_err(|e| fail(Some(e.field.to_string()), e.message))?;
        let name = spec.name();
        if specs.iter().any(|s| s.name() == name) {
            return Err(fail(
                Some("name".into()),
                format!("check name {name:?} is used twice; give one of them another name"),
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The text between the first `open` and the next `close`.
fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(text[start..start + len].to_string())
}

/// Byte ranges of each `[[checks]]` block, from its header to the next
/// table header.
fn table_blocks(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut blocks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut offset = 0;
    let mut open: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if let Some(start) = open.take() {
                blocks.push(start..offset);
            }
            if trimmed.starts_with("[[checks]]") {
                open = Some(offset + (line.len() - trimmed.len()));
            }
        }
        offset += line.len();
    }
    if let Some(start) = open {
        blocks.push(start..text.len());
    }
    blocks
}

/// Offset of `key =` inside `block`.
fn key_offset(text: &str, block: &std::ops::Range<usize>, key: &str) -> Option<usize> {
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

/// Splits `host:port` (`[v6]:port` for IPv6) and checks the port.
pub fn parse_host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let err = || format!("address {text:?} is not host:port, e.g. \"127.0.0.1:3306\"");
    let (host, port) = text.rsplit_once(':').ok_or_else(err)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(err());
    }
    let port: u16 = port.parse().map_err(|_| err())?;
    if port == 0 {
        return Err(err());
    }
    Ok((host.to_string(), port))
}

/// The checks a node runs when its config has no `[[checks]]`: see the
/// table in [`super`]. Always includes `exposure`.
pub fn defaults_for_roles(roles: &[Role]) -> Vec<CheckSpec> {
    let mut specs = Vec::new();
    for role in roles {
        match role {
            Role::Lb => {
                specs.push(CheckSpec::Haproxy(HaproxySpec {
                    socket: Some("/run/haproxy/admin.sock".into()),
                    ..Default::default()
                }));
                specs.push(CheckSpec::Process(ProcessSpec {
                    process_name: "haproxy".into(),
                    ..Default::default()
                }));
            }
            Role::Web => {
                specs.push(CheckSpec::Nginx(NginxSpec {
                    url: "http://127.0.0.1/nginx_status".into(),
                    ..Default::default()
                }));
                specs.push(CheckSpec::Process(ProcessSpec {
                    process_name: "nginx".into(),
                    ..Default::default()
                }));
            }
            Role::App => specs.push(CheckSpec::App(HttpSpec {
                url: "http://127.0.0.1:8080/health".into(),
                ..Default::default()
            })),
            Role::Db => specs.push(CheckSpec::Mysql(MysqlSpec::default())),
            Role::Unspecified => {}
        }
    }
    specs.push(CheckSpec::Exposure(ExposureSpec::default()));
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        checks: Vec<CheckSpec>,
    }

    fn parse(text: &str) -> Result<Vec<CheckSpec>, String> {
        toml::from_str::<File>(text)
            .map(|f| f.checks)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_parses() {
        let checks = parse(
            r#"
[[checks]]
kind = "http"
url = "http://127.0.0.11:9000/health"
expect-status = 200
interval = "2s"
timeout = "1s"
[[checks]]
kind = "app"
url = "http://127.0.0.1:9000/health"
expect-status = "200-299,304"
[[checks]]
kind = "tcp"
address = "127.0.0.21:3306"
[[checks]]
kind = "tls"
address = "example.com:443"
warn-days = 20
[[checks]]
kind = "process"
process-name = "nginx"
[[checks]]
kind = "dns"
query-name = "www.stacktop.test"
resolver = "127.0.0.30:5353"
expect = ["127.0.0.10"]
[[checks]]
kind = "exposure"
allow = [22, "127.0.0.1:8080", "[::]:443"]
[[checks]]
kind = "nginx"
url = "http://127.0.0.11:8080/nginx_status"
[[checks]]
kind = "haproxy"
socket = "/tmp/haproxy.sock"
[[checks]]
kind = "mysql"
address = "127.0.0.22:3306"
password-env = "X"
warn-lag = "5s"
"#,
        )
        .unwrap();
        assert_eq!(checks.len(), 10);
        for c in &checks {
            c.validate().unwrap_or_else(|e| panic!("{c:?}: {e:?}"));
        }
        let names: Vec<String> = checks.iter().map(CheckSpec::name).collect();
        assert_eq!(
            names,
            [
                "http:127.0.0.11:9000/health",
                "app:127.0.0.1:9000/health",
                "tcp:127.0.0.21:3306",
                "tls:example.com:443",
                "process:nginx",
                "dns:www.stacktop.test",
                "exposure",
                "nginx",
                "haproxy",
                "mysql"
            ]
        );
        assert_eq!(checks[0].interval(), Duration::from_secs(2));
        assert_eq!(checks[0].timeout(), Duration::from_secs(1));
        assert_eq!(checks[2].interval(), DEFAULT_CHECK_INTERVAL);
        assert_eq!(checks[2].timeout(), DEFAULT_CHECK_TIMEOUT);
    }

    #[test]
    fn unknown_field_and_kind_are_refused() {
        let err =
            parse("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\nurl = \"x\"\n").unwrap_err();
        assert!(err.contains("unknown field `url`"), "{err}");
        let err = parse("[[checks]]\nkind = \"ping\"\n").unwrap_err();
        assert!(err.contains("unknown variant `ping`"), "{err}");
        let err = parse("[[checks]]\nkind = \"tcp\"\n").unwrap_err();
        assert!(err.contains("missing field `address`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let check = |text: &str| parse(text).unwrap()[0].validate().unwrap_err().field;
        assert_eq!(
            check("[[checks]]\nkind = \"tcp\"\naddress = \"nope\""),
            "address"
        );
        assert_eq!(
            check(
                "[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\ninterval = \"1s\"\ntimeout = \"1s\""
            ),
            "timeout"
        );
        assert_eq!(
            check("[[checks]]\nkind = \"dns\"\nquery-name = \"x\"\nresolver = \"127.0.0.1\""),
            "resolver"
        );
        assert_eq!(check("[[checks]]\nkind = \"haproxy\""), "socket");
        assert_eq!(
            check("[[checks]]\nkind = \"http\"\nurl = \"ftp://x/\""),
            "url"
        );
        assert_eq!(
            check("[[checks]]\nkind = \"mysql\"\nwarn-lag = \"2m\""),
            "warn-lag"
        );
    }

    #[test]
    fn timeout_defaults_below_a_short_interval() {
        let c =
            &parse("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\ninterval = \"1s\"").unwrap()[0];
        assert_eq!(c.timeout(), Duration::from_millis(500));
        c.validate().unwrap();
    }

    #[test]
    fn role_defaults() {
        let kinds = |roles: &[Role]| -> Vec<&str> {
            defaults_for_roles(roles)
                .iter()
                .map(CheckSpec::kind)
                .collect()
        };
        assert_eq!(kinds(&[]), ["exposure"]);
        assert_eq!(kinds(&[Role::Lb]), ["haproxy", "process", "exposure"]);
        assert_eq!(
            kinds(&[Role::Web, Role::App]),
            ["nginx", "process", "app", "exposure"]
        );
        assert_eq!(kinds(&[Role::Db]), ["mysql", "exposure"]);
        for spec in defaults_for_roles(&[Role::Lb, Role::Web, Role::App, Role::Db]) {
            spec.validate().unwrap();
        }
    }

    #[test]
    fn host_port() {
        assert_eq!(parse_host_port("h:1"), Ok(("h".into(), 1)));
        assert_eq!(parse_host_port("[::1]:22"), Ok(("::1".into(), 22)));
        assert!(parse_host_port("h").is_err());
        assert!(parse_host_port(":1").is_err());
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_host_port("h:x").is_err());
    }
}
