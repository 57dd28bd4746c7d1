//! The `mysql` check (MySQL and MariaDB): health, role and replication of
//! one server, over one connection kept across runs (reconnected when a
//! run fails; a run that times out drops it).
//!
//! Each run: `SELECT 1` (its latency is the check's), `@@read_only` and
//! `@@max_connections`, `SHOW GLOBAL STATUS` for `Questions` and
//! `Threads_connected`, and `SHOW REPLICA STATUS` (falling back to `SHOW
//! SLAVE STATUS` for servers older than MariaDB 10.5 / MySQL 8.0.22).
//! Replica status columns are read by name under both vocabularies
//! (`Slave_IO_Running`/`Replica_IO_Running`, `Seconds_Behind_Master`/
//! `Seconds_Behind_Source`).
//!
//! Two checks come out of one probe:
//!
//! - `mysql`: crit when the server cannot be reached or queried (the
//!   driver's words: "connection refused", "Access denied for user..."),
//!   warn at 90% of max_connections, otherwise ok: "primary, 12 qps, 5/151
//!   connections" (no qps on the first run).
//! - `replication`, only on a replica (a server with replica status rows):
//!   crit when the IO or SQL thread is not running or the lag reaches
//!   `crit-lag`, warn from `warn-lag`, ok otherwise: "replica, lag 0 s,
//!   IO/SQL running". Once a server was seen as a replica, a failed run
//!   reports `replication` unknown rather than leaving the last result.
//!
//! Fact: `db_role` = `primary` or `replica`. Metrics: `mysql_up` (1/0),
//! `mysql_queries_per_second`, `mysql_connections`,
//! `mysql_max_connections`, and on a replica
//! `mysql_replication_lag_seconds` (absent while the lag is NULL),
//! `mysql_replica_io_running`, `mysql_replica_sql_running` (1/0).
//!
//! Credentials: over TCP one of `password-file` (first line; read at each
//! connect), `password-env` (an environment variable) or `password` is
//! required, and a table without one is refused at load. Over a `socket`
//! none is needed: MariaDB's `unix_socket` authentication logs the agent
//! in as the OS user it runs as (`user` must be that name), and
//! `--check` warns that this is what will happen.
//!
//! The user needs `PROCESS` and `REPLICATION CLIENT` (MariaDB: `SLAVE
//! MONITOR`, `REPLICA MONITOR` in newer versions).
//!
//! ```toml
//! [[checks]]
//! kind = "mysql"
//! address = "127.0.0.22:3306"         # or socket = "/run/mysqld/mysqld.sock"
//! user = "stacktop"                   # default
//! password-file = "/etc/stacktop/mysql-password"  # or password-env, or password
//! warn-lag = "10s"
//! crit-lag = "60s"
//! ```

// Without the `mysql` feature only the spec (and the pure judging) is
// built, so the probe's imports go unused.
#![cfg_attr(not(feature = "mysql"), allow(unused_imports))]

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[cfg(feature = "mysql")]
use mysql_async::prelude::Queryable;
#[cfg(feature = "mysql")]
use mysql_async::{Conn, OptsBuilder, Row, Value};
use serde::Deserialize;
use stacktop_proto::Health;
use stacktop_proto::metrics::{
    FACT_DB_ROLE, MYSQL_CONNECTIONS, MYSQL_MAX_CONNECTIONS, MYSQL_QUERIES,
    MYSQL_REPLICA_IO_RUNNING, MYSQL_REPLICA_SQL_RUNNING, MYSQL_REPLICATION_LAG, MYSQL_UP,
};
use tracing::debug;

use super::common::{ExtraCheck, Outcome, SpecError, SpecResult, human, io_words, parse_host_port};
use crate::observe::ObservedPoint;
use crate::sample::Rate;

/// Environment variable the default MySQL password is read from.
pub const DEFAULT_PASSWORD_ENV: &str = "STACKTOP_MYSQL_PASSWORD";

/// Monitoring user of the default MySQL check.
pub const DEFAULT_USER: &str = "stacktop";

/// MySQL/MariaDB health, role and replication.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MysqlSpec {
    /// `host:port` (default `127.0.0.1:3306`).
    #[serde(default)]
    pub address: Option<String>,
    /// Unix socket path, used instead of `address`.
    #[serde(default)]
    pub socket: Option<String>,
    /// User (default `stacktop`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password in clear (prefer `password-file` or `password-env`).
    #[serde(default)]
    pub password: Option<String>,
    /// File whose first line is the password (read at each connect, so a
    /// rotated password is picked up).
    #[serde(default)]
    pub password_file: Option<String>,
    /// Environment variable holding the password. One of `password`,
    /// `password-file` and `password-env` is required over TCP; a
    /// `socket` check without any uses `STACKTOP_MYSQL_PASSWORD` when it is
    /// set, and no password (unix_socket authentication) otherwise.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Replication lag at which the replication check warns (default 10 s).
    #[serde(default, with = "humantime_serde")]
    pub warn_lag: Option<Duration>,
    /// Replication lag at which the replication check is crit (default 60 s).
    #[serde(default, with = "humantime_serde")]
    pub crit_lag: Option<Duration>,
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

/// Why a `mysql` table over TCP without a password is refused.
#[cfg(feature = "mysql")]
const NO_CREDENTIALS: &str = "a mysql check over TCP needs a password: set password-file \
     (recommended), password-env or password; only socket = \"/run/mysqld/mysqld.sock\" can \
     log in without one (MariaDB unix_socket authentication)";

impl MysqlSpec {
    /// What `--check` should warn about this spec's credentials, where
    /// the config is valid but the login may still fail: a socket check
    /// with no password (unix_socket authentication, which needs `user`
    /// to be the OS user the agent runs as), a `password-env` that is not
    /// set or a `password-file` that cannot be read here (the agent reads
    /// both at each connect, perhaps in another environment).
    pub fn credential_warning(&self) -> Option<String> {
        let user = self.user.as_deref().unwrap_or(DEFAULT_USER);
        match (&self.password, &self.password_file, &self.password_env) {
            (None, None, None) => {
                let socket = self.socket.as_deref()?;
                if std::env::var_os(DEFAULT_PASSWORD_ENV).is_some() {
                    return None;
                }
                Some(format!(
                    "no password: logs in as {user:?} through {socket} with unix_socket \
                     authentication, so the agent must run as the OS user {user:?} \
                     (MariaDB: CREATE USER '{user}'@'localhost' IDENTIFIED VIA unix_socket); \
                     {DEFAULT_PASSWORD_ENV} is used when it is set"
                ))
            }
            (_, Some(file), _) => std::fs::read_to_string(file).err().map(|e| {
                format!(
                    "password-file {file:?}: {} here (the agent reads it at each connect)",
                    io_words(&e)
                )
            }),
            (_, _, Some(var)) if std::env::var_os(var).is_none() => Some(format!(
                "password-env {var:?} is not set here (the agent reads it at each connect; \
                 under systemd put it in /etc/stacktop/agent.env)"
            )),
            _ => None,
        }
    }
}

/// Share of max_connections in use at which the `mysql` check warns.
pub const CONNECTIONS_WARN_RATIO: f64 = 0.9;

/// Where the password comes from.
#[cfg(feature = "mysql")]
#[derive(Debug, Clone)]
enum Password {
    Literal(String),
    File(String),
    Env(String),
}

/// What `SHOW REPLICA STATUS` said about a replica.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaState {
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// `Yes` or `No`.
    pub sql_running: String,
    /// Seconds behind the primary; `None` while NULL (a thread stopped).
    pub lag_seconds: Option<u64>,
    /// The last IO or SQL error, when there is one.
    pub last_error: Option<String>,
}

impl ReplicaState {
    /// Reads the state from one replica status row, columns by name.
    pub fn from_row(row: &HashMap<String, Option<String>>) -> Self {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| row.get(*n).cloned().flatten())
                .filter(|v| !v.is_empty())
        };
        Self {
            io_running: get(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default(),
            sql_running: get(&["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or_default(),
            lag_seconds: get(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                .and_then(|v| v.parse().ok()),
            last_error: get(&["Last_IO_Error"]).or_else(|| get(&["Last_SQL_Error"])),
        }
    }

    fn io_ok(&self) -> bool {
        self.io_running == "Yes"
    }

    fn sql_ok(&self) -> bool {
        self.sql_running == "Yes"
    }
}

/// The replication check's status and message.
pub fn replication_outcome(
    state: &ReplicaState,
    warn: Duration,
    crit: Duration,
) -> (Health, String) {
    if !state.io_ok() || !state.sql_ok() {
        let show = |v: &str| {
            if v.is_empty() {
                "unknown".to_string()
            } else {
                v.to_string()
            }
        };
        let mut message = format!(
            "replica, IO thread {}, SQL thread {}",
            show(&state.io_running),
            show(&state.sql_running)
        );
        if let Some(err) = &state.last_error {
            message.push_str(": ");
            message.push_str(err);
        }
        return (Health::Crit, message);
    }
    let Some(lag) = state.lag_seconds else {
        return (
            Health::Unknown,
            "replica, IO/SQL running, lag unknown (NULL)".into(),
        );
    };
    let message = format!("replica, lag {lag} s, IO/SQL running");
    if lag >= crit.as_secs() {
        (
            Health::Crit,
            format!("{message} (crit at {} s)", crit.as_secs()),
        )
    } else if lag >= warn.as_secs() {
        (
            Health::Warn,
            format!("{message} (warn at {} s)", warn.as_secs()),
        )
    } else {
        (Health::Ok, message)
    }
}

/// A MySQL/MariaDB check (with the `mysql` cargo feature, a default one).
#[cfg(feature = "mysql")]
#[derive(Debug)]
pub struct MysqlProbe {
    host: String,
    port: u16,
    socket: Option<String>,
    user: String,
    password: Password,
    warn_lag: Duration,
    crit_lag: Duration,
    replication_name: String,
    /// The pooled connection; taken out during a run, so a run that is
    /// cancelled (timeout, shutdown) drops it and the next one reconnects.
    conn: Option<Conn>,
    /// Whether `SHOW REPLICA STATUS` is understood (else `SHOW SLAVE STATUS`).
    replica_syntax: bool,
    questions: Rate,
    was_replica: bool,
}

#[cfg(feature = "mysql")]
impl MysqlProbe {
    /// Checks the spec and builds the probe (it connects on its first
    /// run); `name` is the `mysql` check's name (the replication check is
    /// `replication`, or `NAME:replication` for a custom name).
    pub fn from_spec(spec: &MysqlSpec, name: &str) -> SpecResult<Self> {
        let (host, port) = match spec.address.as_deref() {
            Some(address) => parse_host_port(address).map_err(|m| SpecError::new("address", m))?,
            None => ("127.0.0.1".to_string(), 3306),
        };
        let password = match (&spec.password, &spec.password_file, &spec.password_env) {
            (Some(p), None, None) if p.is_empty() && spec.socket.is_none() => {
                return Err(SpecError::new("password", NO_CREDENTIALS));
            }
            (Some(p), None, None) => Password::Literal(p.clone()),
            (None, Some(f), None) => Password::File(f.clone()),
            (None, None, Some(e)) => Password::Env(e.clone()),
            // Only a socket can log in without a password (MariaDB's
            // unix_socket authentication); over TCP a missing password
            // would only show up later as "Access denied" on every run.
            (None, None, None) if spec.socket.is_some() => {
                Password::Env(DEFAULT_PASSWORD_ENV.into())
            }
            (None, None, None) => return Err(SpecError::new("password", NO_CREDENTIALS)),
            _ => {
                return Err(SpecError::new(
                    "password",
                    "set at most one of password, password-file and password-env",
                ));
            }
        };
        let (warn_lag, crit_lag) = spec.lags();
        if warn_lag > crit_lag {
            return Err(SpecError::new(
                "warn-lag",
                format!(
                    "warn-lag {} must not exceed crit-lag {}",
                    humantime::format_duration(warn_lag),
                    humantime::format_duration(crit_lag)
                ),
            ));
        }
        Ok(Self {
            host,
            port,
            socket: spec.socket.clone(),
            user: spec.user.clone().unwrap_or_else(|| DEFAULT_USER.into()),
            password,
            warn_lag,
            crit_lag,
            replication_name: if name == "mysql" {
                "replication".into()
            } else {
                format!("{name}:replication")
            },
            conn: None,
            replica_syntax: true,
            questions: Rate::default(),
            was_replica: false,
        })
    }

    /// The password and, when it is missing, a note for error messages.
    fn password(&self) -> std::result::Result<(Option<String>, Option<String>), String> {
        match &self.password {
            Password::Literal(p) => Ok((Some(p.clone()), None)),
            Password::File(path) => std::fs::read_to_string(path)
                .map(|text| (Some(text.lines().next().unwrap_or("").to_string()), None))
                .map_err(|e| format!("password file {path:?}: {}", io_words(&e))),
            Password::Env(var) => Ok(match std::env::var(var) {
                Ok(p) => (Some(p), None),
                Err(_) => (None, Some(format!("no password: {var} is not set"))),
            }),
        }
    }

    async fn connect(&self) -> std::result::Result<Conn, String> {
        let (password, note) = self.password()?;
        let mut opts = OptsBuilder::default()
            .user(Some(self.user.clone()))
            .pass(password)
            .prefer_socket(false)
            .stmt_cache_size(0);
        opts = match &self.socket {
            Some(path) => opts.socket(Some(path.clone())),
            None => opts.ip_or_hostname(self.host.clone()).tcp_port(self.port),
        };
        Conn::new(opts).await.map_err(|e| {
            let words = error_words(&e);
            // The missing password only matters when the server says so.
            match note {
                Some(note) if words.contains("Access denied") => format!("{words} ({note})"),
                _ => words,
            }
        })
    }

    /// Runs the checks once.
    pub async fn run(&mut self) -> Outcome {
        // A pooled connection that fails may just be stale (a server
        // restart, wait_timeout): retry once on a fresh one, so the
        // result describes the server now ("connection refused"), not the
        // old socket ("connection closed early").
        let pooled = self.conn.take();
        if let Some(conn) = pooled {
            match self.query(conn).await {
                Ok((conn, out)) => {
                    self.conn = Some(conn);
                    return out;
                }
                Err(e) => debug!(cause = %e, "pooled MySQL connection failed; reconnecting"),
            }
        }
        let conn = match self.connect().await {
            Ok(c) => c,
            Err(e) => return self.failed(e),
        };
        match self.query(conn).await {
            Ok((conn, out)) => {
                self.conn = Some(conn);
                out
            }
            Err(e) => self.failed(e),
        }
    }

    /// The outcome of a run that could not talk to the server.
    fn failed(&mut self, message: String) -> Outcome {
        let mut out = Outcome::crit(message.clone());
        out.points.push(ObservedPoint::now(MYSQL_UP, &[], 0.0));
        out.extra = self.on_failure(&message);
        out
    }

    /// The replication result when the server could not be asked (only
    /// for a server seen as a replica before).
    pub fn on_failure(&mut self, reason: &str) -> Vec<ExtraCheck> {
        self.conn = None;
        if !self.was_replica {
            return Vec::new();
        }
        vec![ExtraCheck {
            name: self.replication_name.clone(),
            kind: "replication",
            status: Health::Unknown,
            message: format!("cannot ask the server: {reason}"),
        }]
    }

    async fn query(&mut self, mut conn: Conn) -> std::result::Result<(Conn, Outcome), String> {
        let err = |e: mysql_async::Error| error_words(&e);
        let started = Instant::now();
        let one: Option<i64> = conn.query_first("SELECT 1").await.map_err(err)?;
        if one != Some(1) {
            return Err(format!("SELECT 1 returned {one:?}"));
        }
        let select_took = started.elapsed();
        let (read_only, max_connections): (i64, u64) = conn
            .query_first("SELECT @@read_only, @@max_connections")
            .await
            .map_err(err)?
            .unwrap_or((0, 0));
        let status: Vec<(String, String)> = conn
            .query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Threads_connected')")
            .await
            .map_err(err)?;
        let status: HashMap<String, u64> = status
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        let replica = self.replica_status(&mut conn).await.map_err(err)?;

        let qps = status
            .get("Questions")
            .and_then(|&q| self.questions.update(q, Instant::now()));
        let connections = status.get("Threads_connected").copied();
        let mut out = summarize(
            read_only != 0,
            qps,
            connections,
            max_connections,
            replica.as_ref(),
            (self.warn_lag, self.crit_lag),
            &self.replication_name,
        );
        if replica.is_none() && self.was_replica {
            out.extra.push(ExtraCheck {
                name: self.replication_name.clone(),
                kind: "replication",
                status: Health::Unknown,
                message: "no longer a replica (no replica status)".into(),
            });
        }
        self.was_replica |= replica.is_some();
        out.message = format!("{} ({} SELECT 1)", out.message, human(select_took));
        Ok((conn, out))
    }

    /// The first replica status row as column -> text, or `None` on a
    /// server that is not a replica.
    async fn replica_status(
        &mut self,
        conn: &mut Conn,
    ) -> std::result::Result<Option<ReplicaState>, mysql_async::Error> {
        let rows: Vec<Row> = if self.replica_syntax {
            match conn.query("SHOW REPLICA STATUS").await {
                Ok(rows) => rows,
                Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
                    // Syntax error: an older server that only knows SLAVE.
                    self.replica_syntax = false;
                    conn.query("SHOW SLAVE STATUS").await?
                }
                Err(e) => return Err(e),
            }
        } else {
            conn.query("SHOW SLAVE STATUS").await?
        };
        Ok(rows
            .first()
            .map(|row| ReplicaState::from_row(&row_map(row))))
    }
}

/// One row as column name -> text (NULL as `None`).
#[cfg(feature = "mysql")]
fn row_map(row: &Row) -> HashMap<String, Option<String>> {
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let value = match row.as_ref(i) {
                None | Some(Value::NULL) => None,
                Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                Some(Value::Int(v)) => Some(v.to_string()),
                Some(Value::UInt(v)) => Some(v.to_string()),
                Some(other) => Some(format!("{other:?}")),
            };
            (col.name_str().into_owned(), value)
        })
        .collect()
}

/// The outcome, facts and metrics of one successful run.
pub fn summarize(
    read_only: bool,
    qps: Option<f64>,
    connections: Option<u64>,
    max_connections: u64,
    replica: Option<&ReplicaState>,
    (warn_lag, crit_lag): (Duration, Duration),
    replication_name: &str,
) -> Outcome {
    let role = if replica.is_some() {
        "replica"
    } else {
        "primary"
    };
    let mut parts = vec![role.to_string()];
    if read_only && replica.is_none() {
        parts[0].push_str(" (read-only)");
    }
    if let Some(qps) = qps {
        parts.push(format!("{qps:.0} qps"));
    }
    let mut status = Health::Ok;
    if let Some(c) = connections {
        parts.push(format!("{c}/{max_connections} connections"));
        if max_connections > 0 && c as f64 >= CONNECTIONS_WARN_RATIO * max_connections as f64 {
            status = Health::Warn;
        }
    }
    let mut out = Outcome::new(status, parts.join(", "));
    out.facts.push((FACT_DB_ROLE.into(), role.into()));
    let p = |name: &str, v: f64| ObservedPoint::now(name, &[], v);
    out.points.push(p(MYSQL_UP, 1.0));
    if let Some(qps) = qps {
        out.points.push(p(MYSQL_QUERIES, qps));
    }
    if let Some(c) = connections {
        out.points.push(p(MYSQL_CONNECTIONS, c as f64));
    }
    out.points
        .push(p(MYSQL_MAX_CONNECTIONS, max_connections as f64));
    if let Some(state) = replica {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        out.points
            .push(p(MYSQL_REPLICA_IO_RUNNING, flag(state.io_ok())));
        out.points
            .push(p(MYSQL_REPLICA_SQL_RUNNING, flag(state.sql_ok())));
        if let Some(lag) = state.lag_seconds {
            out.points.push(p(MYSQL_REPLICATION_LAG, lag as f64));
        }
        let (status, message) = replication_outcome(state, warn_lag, crit_lag);
        out.extra.push(ExtraCheck {
            name: replication_name.to_string(),
            kind: "replication",
            status,
            message,
        });
    }
    out
}

/// The driver's error in an operator's words.
#[cfg(feature = "mysql")]
fn error_words(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Io(mysql_async::IoError::Io(e)) => io_words(e),
        mysql_async::Error::Server(e) => e.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> HashMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    const LAGS: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(60));

    #[test]
    fn replica_rows_in_both_vocabularies() {
        let old = ReplicaState::from_row(&row(&[
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Master", Some("0")),
            ("Last_IO_Error", Some("")),
        ]));
        let new = ReplicaState::from_row(&row(&[
            ("Replica_IO_Running", Some("Yes")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Source", Some("0")),
        ]));
        assert_eq!(old, new);
        assert_eq!(old.last_error, None);
        let (status, message) = replication_outcome(&old, LAGS.0, LAGS.1);
        assert_eq!(
            (status, message.as_str()),
            (Health::Ok, "replica, lag 0 s, IO/SQL running")
        );
    }

    #[test]
    fn stopped_and_lagging_replicas() {
        let stopped = ReplicaState::from_row(&row(&[
            ("Slave_IO_Running", Some("No")),
            ("Slave_SQL_Running", Some("No")),
            ("Seconds_Behind_Master", None),
        ]));
        assert_eq!(stopped.lag_seconds, None);
        let (status, message) = replication_outcome(&stopped, LAGS.0, LAGS.1);
        assert_eq!(status, Health::Crit);
        assert_eq!(message, "replica, IO thread No, SQL thread No");
        let broken = ReplicaState::from_row(&row(&[
            ("Slave_IO_Running", Some("Connecting")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Last_IO_Error", Some("error connecting to master")),
        ]));
        let (_, message) = replication_outcome(&broken, LAGS.0, LAGS.1);
        assert_eq!(
            message,
            "replica, IO thread Connecting, SQL thread Yes: error connecting to master"
        );
        let lag = |s: &str| {
            let state = ReplicaState::from_row(&row(&[
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some("Yes")),
                ("Seconds_Behind_Master", Some(s)),
            ]));
            replication_outcome(&state, LAGS.0, LAGS.1).0
        };
        assert_eq!(lag("9"), Health::Ok);
        assert_eq!(lag("10"), Health::Warn);
        assert_eq!(lag("60"), Health::Crit);
    }

    #[test]
    fn summaries() {
        let primary = summarize(false, Some(12.4), Some(5), 151, None, LAGS, "replication");
        assert_eq!(primary.message, "primary, 12 qps, 5/151 connections");
        assert_eq!(
            primary.facts,
            [("db_role".to_string(), "primary".to_string())]
        );
        assert!(primary.extra.is_empty());
        let state = ReplicaState {
            io_running: "Yes".into(),
            sql_running: "Yes".into(),
            lag_seconds: None,
            last_error: None,
        };
        let replica = summarize(
            true,
            None,
            Some(140),
            151,
            Some(&state),
            LAGS,
            "replication",
        );
        assert_eq!(replica.status, Health::Warn);
        assert_eq!(replica.message, "replica, 140/151 connections");
        assert_eq!(replica.extra[0].status, Health::Unknown);
        assert!(
            !replica
                .points
                .iter()
                .any(|p| p.name == "mysql_replication_lag_seconds")
        );
        assert!(
            replica
                .points
                .iter()
                .any(|p| p.name == "mysql_replica_io_running")
        );
    }
}
