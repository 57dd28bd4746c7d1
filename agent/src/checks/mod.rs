//! Health checks: probes of the services on this node (and of what they
//! depend on), each run in its own task on its own interval, each result a
//! [`CheckResult`] with a status, a latency and a short human message, sent
//! through the agent's observation channel ([`crate::observe`]) together
//! with the metrics, facts and HAProxy backends the probe read.
//!
//! [`CheckResult`]: stacktop_proto::v1::CheckResult
//!
//! # Layout
//!
//! - This module: the `[[checks]]` tables ([`CheckSpec`], tagged by
//!   `kind`), the keys every kind shares ([`Common`]), building specs into
//!   runnable checks ([`CheckSpec::build`], [`build_all`]), reading the
//!   tables with their file positions ([`parse_tables`]) and the role
//!   defaults ([`defaults_for_roles`]).
//! - One module per kind, each holding its keys (`XSpec`), their
//!   validation and its probe (`XProbe::from_spec`): [`http`] (also
//!   `app`), [`tcp`], [`tls`], [`process`], [`dns`], [`exposure`],
//!   [`nginx`], [`haproxy`], [`mysql`].
//! - [`common`]: the leaf every kind uses ([`Outcome`], [`SpecError`],
//!   message helpers).
//! - [`run`]: the runner ([`Check`], [`Probe`], [`spawn_all`]).
//!
//! Imports go one way: this module -> [`run`] -> kinds -> [`common`] (and
//! `nginx`/`haproxy` -> `http` -> `tls`, `exposure` -> `process`). No kind
//! imports this module or the runner; `agent/tests/module_graph.rs` keeps
//! it so.
//!
//! # Common keys
//!
//! Every table has a `kind` and the common keys `name`, `interval`
//! (default 5 s; 15 s for `exposure`), `timeout` (default 2 s, or half
//! the interval when that is shorter; must be below the interval) and
//! `role`. Each kind's own keys are documented in its module.
//!
//! `name` is what the dashboard, alerts and `/metrics` call the check, and
//! must be unique on the node (a name used twice is refused, naming both
//! tables). Without it the name is short and derived from the target, so
//! a node's checks stay apart even when cut to a table cell: `nginx`,
//! `haproxy`, `mysql` and `exposure` for those kinds, `app:8080` (the app
//! server's port), `http:/healthz` (the path; `http:9000/health` with a
//! port other than the scheme's), `tcp:3306`, `tls:example.com`,
//! `process:nginx`, `dns:www.example.com`. A host other than loopback is
//! kept (`app:10.0.0.7:8080`, `tcp:db1:3306`).
//!
//! `role` (`lb`, `web`, `app` or `db`) is the tier the check speaks for:
//! the collector counts its result towards that role's tier health only.
//! Without it the role comes from the kind
//! ([`stacktop_proto::metrics::check_role`]: nginx -> web, haproxy -> lb,
//! mysql -> db, app and http -> app, process by the process it looks for;
//! everything else is node-wide). Results a probe adds (the MySQL probe's
//! `replication`) take the role of their own kind.
//!
//! # Building is part of loading
//!
//! A spec is built into its probe when the config is loaded (so a CA file
//! that does not load is refused with its file, line and key, by `--check`
//! and at start alike) and again when the agent starts. A spec that does
//! not build is an error, never a probe that reports the failure later.
//!
//! # Role defaults
//!
//! When the config has no `[[checks]]` at all (or sets `role-defaults =
//! true` beside them), the checks come from the node's roles (configured
//! or detected), see [`defaults_for_roles`]:
//!
//! | role | checks |
//! |---|---|
//! | `lb` | `haproxy` on the stats socket `/run/haproxy/admin.sock`, `process` haproxy |
//! | `web` | `nginx` stub_status (e.g. `http://127.0.0.1/nginx_status`), `process` nginx |
//! | `app` | `app` (HTTP; e.g. `http://127.0.0.1:8080/health`) |
//! | `db` | `mysql` at `127.0.0.1:3306`, user `stacktop`, password from `STACKTOP_MYSQL_PASSWORD` |
//! | any | `exposure` with the roles' allow-list (see [`exposure`]) |
//!
//! Those whose endpoint is a guess (the nginx and app URLs always; the
//! stats socket and the MySQL password when they are not there) report
//! `unknown` "not configured" instead of probing: [`crate::plan`] decides
//! which checks run and how.
//!
//! When `[[checks]]` is given without `role-defaults = true`, exactly
//! those checks run and no default is added (not even `exposure`): the
//! operator's list is the whole list.
//!
//! # Cargo features
//!
//! `mysql`, `dns` and `tls` (all on by default) build the probes of those
//! kinds and their clients (mysql_async, hickory-resolver, x509-parser).
//! A build without one still reads such a table and refuses it by name;
//! without `mysql` a `db` node gets no default check.

pub mod common;
pub mod dns;
pub mod exposure;
pub mod haproxy;
pub mod http;
pub mod mysql;
pub mod nginx;
pub mod process;
pub mod run;
pub mod tcp;
pub mod tls;

use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use stacktop_proto::Role;
use stacktop_proto::metrics::{check_role, role_of_process};

pub use common::{ExtraCheck, Outcome, SpecError, human, io_words};
pub use run::{Check, Probe, spawn_all};

/// Time between two runs of a check when `interval` is not set (see
/// [`exposure::DEFAULT_INTERVAL`] for the exception).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Bound on one run when `timeout` is not set (or half the interval, when
/// that is shorter).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Shortest accepted check interval.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// The keys every `[[checks]]` table may have, whatever its kind.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Common {
    /// The check's name, unique on the node (default: derived from the
    /// kind and target).
    #[serde(default)]
    pub name: Option<String>,
    /// Time between two runs (humantime, e.g. `"5s"`).
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Bound on one run (humantime); must be below the interval.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// The role the check speaks for: `lb`, `web`, `app` or `db` (default:
    /// by kind, see the module docs).
    #[serde(default)]
    pub role: Option<String>,
}

impl Common {
    /// The keys of [`Common`] as written in a table: taken out of a table
    /// before the rest goes to the kind's own spec.
    pub const KEYS: [&'static str; 4] = ["name", "interval", "timeout", "role"];
}

/// One kind's table: the common keys and the kind's own (`K`, e.g.
/// [`http::HttpSpec`]). It deserializes from one flat table: the
/// [`Common::KEYS`] go to `common`, every other key to `settings`, and
/// both refuse keys they do not know.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spec<K> {
    /// Name, interval, timeout.
    pub common: Common,
    /// The kind's own keys.
    pub settings: K,
}

impl<K> Spec<K> {
    /// A spec with `settings` and every common key at its default.
    pub fn new(settings: K) -> Self {
        Self {
            common: Common::default(),
            settings,
        }
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Spec<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde's `flatten` cannot be combined with `deny_unknown_fields`,
        // so the table is split by hand: a misspelt key is still refused,
        // by the kind's spec.
        let mut settings = toml::Table::deserialize(deserializer)?;
        let mut common = toml::Table::new();
        for key in Common::KEYS {
            if let Some(value) = settings.remove(key) {
                common.insert(key.to_string(), value);
            }
        }
        let error = |e: toml::de::Error| D::Error::custom(e.message().trim());
        Ok(Self {
            common: Common::deserialize(toml::Value::Table(common)).map_err(error)?,
            settings: K::deserialize(toml::Value::Table(settings)).map_err(error)?,
        })
    }
}

/// The error for a kind whose probe this build left out (its cargo
/// feature was off): the config is still read, and refused by name.
#[cfg(not(all(feature = "mysql", feature = "dns", feature = "tls")))]
fn not_built(kind: &str) -> SpecError {
    SpecError::new(
        "kind",
        format!("this agent was built without the {kind:?} check (cargo feature `{kind}`)"),
    )
}

/// One `[[checks]]` table, by its `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckSpec {
    /// HTTP(S) GET.
    Http(Spec<http::HttpSpec>),
    /// The app server's health endpoint: an HTTP check reported as `app`.
    App(Spec<http::HttpSpec>),
    /// TCP connect.
    Tcp(Spec<tcp::TcpSpec>),
    /// TLS certificate days to expiry.
    Tls(Spec<tls::TlsSpec>),
    /// Process running.
    Process(Spec<process::ProcessSpec>),
    /// DNS A record.
    Dns(Spec<dns::DnsSpec>),
    /// Listening sockets against an allow-list.
    Exposure(Spec<exposure::ExposureSpec>),
    /// Nginx stub_status.
    Nginx(Spec<nginx::NginxSpec>),
    /// HAProxy stats.
    Haproxy(Spec<haproxy::HaproxySpec>),
    /// MySQL/MariaDB.
    Mysql(Spec<mysql::MysqlSpec>),
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

    /// The common keys.
    pub fn common(&self) -> &Common {
        match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => &s.common,
            CheckSpec::Tcp(s) => &s.common,
            CheckSpec::Tls(s) => &s.common,
            CheckSpec::Process(s) => &s.common,
            CheckSpec::Dns(s) => &s.common,
            CheckSpec::Exposure(s) => &s.common,
            CheckSpec::Nginx(s) => &s.common,
            CheckSpec::Haproxy(s) => &s.common,
            CheckSpec::Mysql(s) => &s.common,
        }
    }

    /// The check's name: configured, or derived from kind and target.
    pub fn name(&self) -> String {
        if let Some(name) = &self.common().name {
            return name.clone();
        }
        match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => s.settings.default_name(self.kind()),
            CheckSpec::Tcp(s) => s.settings.default_name(),
            CheckSpec::Tls(s) => s.settings.default_name(),
            CheckSpec::Process(s) => s.settings.default_name(),
            CheckSpec::Dns(s) => s.settings.default_name(),
            CheckSpec::Exposure(_)
            | CheckSpec::Nginx(_)
            | CheckSpec::Haproxy(_)
            | CheckSpec::Mysql(_) => self.kind().to_string(),
        }
    }

    /// The role the check speaks for: the configured `role`, else the
    /// one its kind (and name) implies; [`Role::Unspecified`] means
    /// node-wide. An error when the configured role is not a role.
    pub fn role(&self) -> Result<Role, SpecError> {
        match &self.common().role {
            Some(role) => role
                .parse()
                .map_err(|e: stacktop_proto::UnknownRole| SpecError::new("role", e.to_string())),
            // A process check speaks for its process's role whatever it
            // is named (the kind mapping reads the role from the default
            // name `process:NAME`).
            None => Ok(match self {
                CheckSpec::Process(s) => role_of_process(&s.settings.process_name),
                _ => check_role(self.kind(), &self.name()),
            }),
        }
    }

    /// Time between two runs.
    pub fn interval(&self) -> Duration {
        let default = match self {
            CheckSpec::Exposure(_) => exposure::DEFAULT_INTERVAL,
            _ => DEFAULT_CHECK_INTERVAL,
        };
        self.common().interval.unwrap_or(default)
    }

    /// Bound on one run.
    pub fn timeout(&self) -> Duration {
        self.common()
            .timeout
            .unwrap_or_else(|| DEFAULT_CHECK_TIMEOUT.min(self.interval() / 2))
    }

    /// Checks the common keys: the interval's range, the timeout below it,
    /// a printable name (the role is checked by [`CheckSpec::role`]).
    fn check_common(&self) -> Result<(), SpecError> {
        let interval = self.interval();
        if interval < MIN_CHECK_INTERVAL || interval > crate::config::MAX_INTERVAL {
            return Err(SpecError::new(
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
            return Err(SpecError::new(
                "timeout",
                format!(
                    "timeout {} must be above zero and below the interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            ));
        }
        if let Some(name) = &self.common().name
            && (name.trim().is_empty() || name.chars().any(char::is_control))
        {
            return Err(SpecError::new(
                "name",
                format!("check name {name:?} must be non-empty text"),
            ));
        }
        Ok(())
    }

    /// Checks every key and builds the runnable check (reading what the
    /// probe needs from the file system, such as a CA file). `roles` fill
    /// in role defaults (the exposure allow-list). The error names the
    /// first key that cannot be used.
    pub fn build(&self, roles: &[Role]) -> Result<Check, SpecError> {
        self.check_common()?;
        let role = self.role()?;
        let name = self.name();
        let timeout = self.timeout();
        let probe = match self {
            CheckSpec::Http(s) | CheckSpec::App(s) => {
                Probe::Http(http::HttpProbe::from_spec(&s.settings)?)
            }
            CheckSpec::Tcp(s) => Probe::Tcp(tcp::TcpProbe::from_spec(&s.settings)?),
            #[cfg(feature = "tls")]
            CheckSpec::Tls(s) => Probe::Tls(tls::TlsProbe::from_spec(&s.settings)?),
            #[cfg(not(feature = "tls"))]
            CheckSpec::Tls(_) => return Err(not_built("tls")),
            CheckSpec::Process(s) => Probe::Process(process::ProcessProbe::from_spec(&s.settings)?),
            #[cfg(feature = "dns")]
            CheckSpec::Dns(s) => Probe::Dns(dns::DnsProbe::from_spec(&s.settings, timeout)?),
            #[cfg(not(feature = "dns"))]
            CheckSpec::Dns(_) => return Err(not_built("dns")),
            CheckSpec::Exposure(s) => {
                Probe::Exposure(exposure::ExposureProbe::from_spec(&s.settings, roles)?)
            }
            CheckSpec::Nginx(s) => Probe::Nginx(nginx::NginxProbe::from_spec(&s.settings)?),
            CheckSpec::Haproxy(s) => Probe::Haproxy(haproxy::HaproxyProbe::from_spec(&s.settings)?),
            #[cfg(feature = "mysql")]
            CheckSpec::Mysql(s) => {
                Probe::Mysql(Box::new(mysql::MysqlProbe::from_spec(&s.settings, &name)?))
            }
            #[cfg(not(feature = "mysql"))]
            CheckSpec::Mysql(_) => return Err(not_built("mysql")),
        };
        Ok(Check {
            name,
            kind: self.kind(),
            role,
            interval: self.interval(),
            timeout,
            probe,
        })
    }

    /// Checks every key by building the check once (without roles) and
    /// dropping it.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.build(&[]).map(drop)
    }
}

/// A check that could not be built when the agent started: which one, and
/// the key at fault. (From a config file this is caught at load, with the
/// file position; at start it means the file system changed since, or a
/// role default could not be built.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("check {name:?} ({kind}): {error}")]
pub struct BuildError {
    /// The check's name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// The key at fault and why.
    pub error: SpecError,
}

/// Builds every spec into a [`Check`], or says which one cannot be built.
pub fn build_all(specs: &[CheckSpec], roles: &[Role]) -> Result<Vec<Check>, BuildError> {
    specs
        .iter()
        .map(|spec| {
            spec.build(roles).map_err(|error| BuildError {
                name: spec.name(),
                kind: spec.kind(),
                error,
            })
        })
        .collect()
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

/// Decodes, validates and builds the `[[checks]]` tables of a config
/// file (building with `roles` and discarding the result: what matters at
/// load is that every check can be built).
///
/// The tables arrive as plain TOML tables because serde's internally
/// tagged enums buffer their input and lose toml's positions; this finds
/// each table's block in `text` (the n-th `[[checks]]` header) and points
/// errors at the key they are about: an unknown or bad key, `kind` for an
/// unknown kind, the header when a key is missing.
pub fn parse_tables(
    text: &str,
    tables: Vec<toml::Table>,
    roles: &[Role],
) -> std::result::Result<Vec<CheckSpec>, TableError> {
    let blocks = table_blocks(text);
    let mut specs: Vec<CheckSpec> = Vec::with_capacity(tables.len());
    // Each check's name and the offset of its table, to name both tables
    // of a name used twice.
    let mut names: Vec<(String, usize)> = Vec::with_capacity(tables.len());
    for (i, table) in tables.into_iter().enumerate() {
        let block = blocks.get(i).cloned().unwrap_or(0..0);
        let fail = |field: Option<String>, message: String| {
            let offset = field
                .as_deref()
                .and_then(|key| crate::config::key_offset(text, &block, key))
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
        spec.build(roles)
            .map_err(|e| fail(Some(e.field.to_string()), e.message))?;
        let name = spec.name();
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
            let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
            let how = if spec.common().name.is_some() {
                "named"
            } else {
                "named by default"
            };
            return Err(fail(
                Some("name".into()),
                format!(
                    "check name {name:?} is used twice: by the [[checks]] table at line {} \
                     and by this one at line {} ({how}); set name = \"…\" in one of them",
                    line(*first),
                    line(block.start),
                ),
            ));
        }
        names.push((name, block.start));
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

/// The checks a node runs when its config has no `[[checks]]`: see the
/// table in this module's docs. Always includes `exposure`.
pub fn defaults_for_roles(roles: &[Role]) -> Vec<CheckSpec> {
    let mut specs = Vec::new();
    for role in roles {
        match role {
            Role::Lb => {
                specs.push(CheckSpec::Haproxy(Spec::new(haproxy::HaproxySpec {
                    socket: Some("/run/haproxy/admin.sock".into()),
                    ..Default::default()
                })));
                specs.push(CheckSpec::Process(Spec::new(process::ProcessSpec {
                    process_name: "haproxy".into(),
                })));
            }
            Role::Web => {
                specs.push(CheckSpec::Nginx(Spec::new(nginx::NginxSpec {
                    url: "http://127.0.0.1/nginx_status".into(),
                })));
                specs.push(CheckSpec::Process(Spec::new(process::ProcessSpec {
                    process_name: "nginx".into(),
                })));
            }
            Role::App => specs.push(CheckSpec::App(Spec::new(http::HttpSpec {
                url: "http://127.0.0.1:8080/health".into(),
                ..Default::default()
            }))),
            #[cfg(feature = "mysql")]
            Role::Db => specs.push(CheckSpec::Mysql(Spec::new(mysql::MysqlSpec {
                password_env: Some(mysql::DEFAULT_PASSWORD_ENV.into()),
                ..Default::default()
            }))),
            // Built without the MySQL client: nothing to probe the database with.
            #[cfg(not(feature = "mysql"))]
            Role::Db => {}
            Role::Unspecified => {}
        }
    }
    specs.push(CheckSpec::Exposure(Spec::new(
        exposure::ExposureSpec::default(),
    )));
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
                "http:9000/health",
                "app:9000",
                "tcp:3306",
                "tls:example.com",
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
    fn default_names_are_short_and_tell_targets_apart() {
        let name = |table: &str| parse(&format!("[[checks]]\n{table}")).unwrap()[0].name();
        for (table, want) in [
            (
                "kind = \"app\"\nurl = \"http://127.0.0.1:8080/health\"",
                "app:8080",
            ),
            (
                "kind = \"app\"\nurl = \"https://localhost/health\"",
                "app:443",
            ),
            (
                "kind = \"app\"\nurl = \"http://10.0.0.7:8080/health\"",
                "app:10.0.0.7:8080",
            ),
            (
                "kind = \"http\"\nurl = \"http://127.0.0.1/healthz?full=1\"",
                "http:/healthz",
            ),
            (
                "kind = \"http\"\nurl = \"http://127.0.0.11:9000/health\"",
                "http:9000/health",
            ),
            ("kind = \"http\"\nurl = \"http://[::1]:9000/\"", "http:9000"),
            (
                "kind = \"http\"\nurl = \"https://www.example.com/\"",
                "http:www.example.com",
            ),
            ("kind = \"http\"\nurl = \"http://127.0.0.1\"", "http:/"),
            ("kind = \"tcp\"\naddress = \"127.0.0.21:3306\"", "tcp:3306"),
            (
                "kind = \"tcp\"\naddress = \"db1.internal:3306\"",
                "tcp:db1.internal:3306",
            ),
            (
                "kind = \"tls\"\naddress = \"example.com:8443\"",
                "tls:example.com:8443",
            ),
            (
                "kind = \"process\"\nprocess-name = \"php-fpm\"",
                "process:php-fpm",
            ),
            (
                "kind = \"nginx\"\nurl = \"http://127.0.0.1/nginx_status\"",
                "nginx",
            ),
            (
                "kind = \"tcp\"\naddress = \"127.0.0.1:1\"\nname = \"queue\"",
                "queue",
            ),
        ] {
            assert_eq!(name(table), want, "{table}");
        }
    }

    #[test]
    fn a_process_check_speaks_for_its_process_whatever_its_name() {
        let spec =
            &parse("[[checks]]\nkind = \"process\"\nname = \"db-up\"\nprocess-name = \"mariadbd\"")
                .unwrap()[0];
        assert_eq!(spec.role().unwrap(), Role::Db);
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
            check("[[checks]]\nkind = \"mysql\"\npassword-env = \"X\"\nwarn-lag = \"2m\""),
            "warn-lag"
        );
    }

    #[test]
    fn every_common_key_reaches_common() {
        // A key missing from Common::KEYS would go to the kind's spec,
        // which refuses it.
        let c = &parse(
            "[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\nname = \"n\"\ninterval = \"3s\"\ntimeout = \"1s\"\nrole = \"db\"",
        )
        .unwrap()[0];
        assert_eq!(
            c.common(),
            &Common {
                name: Some("n".into()),
                interval: Some(Duration::from_secs(3)),
                timeout: Some(Duration::from_secs(1)),
                role: Some("db".into()),
            }
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
        // Each default speaks for the role that brought it (exposure for
        // the whole node).
        let roles = |role: Role| -> Vec<Role> {
            defaults_for_roles(&[role])
                .iter()
                .map(|s| s.role().unwrap())
                .collect()
        };
        assert_eq!(roles(Role::Lb), [Role::Lb, Role::Lb, Role::Unspecified]);
        assert_eq!(roles(Role::Web), [Role::Web, Role::Web, Role::Unspecified]);
        assert_eq!(roles(Role::App), [Role::App, Role::Unspecified]);
        assert_eq!(roles(Role::Db), [Role::Db, Role::Unspecified]);
    }
}
