//! The leaf of the checks: the types and helpers every kind shares, and
//! nothing that knows about a particular kind, the tagged spec or the
//! runner.
//!
//! Kind modules import from here (and from each other, without cycles);
//! this module imports no other module of `checks`, which is what keeps
//! the module graph acyclic (`agent/tests/module_graph.rs` checks it).
//!
//! - [`SpecError`]: a key of a `[[checks]]` table that is not acceptable,
//!   from validation or from building the probe (a CA file that does not
//!   load): the key and why.
//! - [`Outcome`] and [`ExtraCheck`]: what one run of a probe learnt.
//! - Helpers for messages and addresses: [`human`], [`io_words`],
//!   [`parse_host_port`], [`is_local`], [`unix_ms`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stacktop_proto::Health;
use stacktop_proto::v1::BackendServer;

use crate::observe::ObservedPoint;

/// A key of a check's table whose value cannot be used: which key, and
/// why (quoting the value). Validation and building both report this, so
/// a check that cannot be built is refused at load with its position,
/// never turned into a probe that fails at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field:?}: {message}")]
pub struct SpecError {
    /// The offending key as written in the table, e.g. `ca-file`.
    pub field: &'static str,
    /// What is wrong, quoting the value.
    pub message: String,
}

impl SpecError {
    /// An error about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Results of validating or building a check.
pub type SpecResult<T> = std::result::Result<T, SpecError>;

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
    /// Why the probe that reads HAProxy backends could not read them this
    /// time: they are unknown until a later sample (as the batch's
    /// `backends`/`backends_error` pair says).
    pub backends_error: Option<String>,
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
            backends_error: None,
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

    /// What a run that overran its timeout reports: crit "timed out after
    /// 2 s".
    pub fn timed_out(timeout: Duration) -> Self {
        Self::crit(format!("timed out after {}", human(timeout)))
    }
}

/// Current Unix time in milliseconds.
pub fn unix_ms() -> i64 {
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

/// Whether `host` is this machine (a loopback address or `localhost`): a
/// check of one's own node needs no host in its name.
pub fn is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
