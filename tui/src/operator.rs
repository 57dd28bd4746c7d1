//! Operator write calls: what the dashboard's keys and the `ack`,
//! `silence`, `unsilence` and `maintenance` commands ask a collector to
//! do, through its `Operator` gRPC service.
//!
//! # Layout
//!
//! - [`OperatorCall`]: one write call, fully decided (who asks included),
//!   with [`OperatorCall::confirmation`], the sentence a prompt shows
//!   before it is sent, and its conversions into the contract's request
//!   messages.
//! - [`Outcome`]: what the collector answered, and [`Outcome::text`], the
//!   line the CLI prints and the dashboard's footer shows.
//! - [`parse_duration`] and [`parse_matcher`]: the values operators type
//!   (`30s`, `10m`, `1h`, `2d`; `node=web2`), with errors that quote them.
//! - [`identity`]: who is asking, `$USER@hostname`. Until authentication
//!   lands (issue #10) this is what the client says, nothing more.
//!
//! The calls themselves go over the network in [`crate::client`]; this
//! module does no I/O but reading the user and host names in
//! [`identity`].

use std::fmt;
use std::time::Duration;

use stacktop_proto::Role;
use stacktop_proto::v1::{
    AckRequest, Alert, EndRequest, Maintenance, MaintenanceRequest, Matcher, Silence,
    SilenceRequest,
};

/// How long a silence made from the dashboard lasts unless told otherwise.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(3_600);
/// How long a maintenance window started from the dashboard lasts unless
/// told otherwise.
pub const DEFAULT_MAINTENANCE: Duration = Duration::from_secs(30 * 60);

/// A value an operator typed that cannot be used, quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not a duration such as `30s`, `10m`, `1h`, `2d`.
    #[error("invalid duration {0:?}: expected a number and a unit, e.g. 30s, 10m, 1h, 2d")]
    Duration(String),
    /// A duration of zero.
    #[error("invalid duration {0:?}: it must be longer than 0")]
    ZeroDuration(String),
    /// Not `NAME=VALUE` with both sides non-empty.
    #[error("invalid matcher {0:?}: expected NAME=VALUE, e.g. node=web2 or rule=check-failed")]
    Matcher(String),
}

/// A duration as operators type it: `30s`, `10m`, `1h`, `2d`, or several
/// (`1h30m`). Zero is refused: a silence or a maintenance window that ends
/// as it starts is a mistake.
pub fn parse_duration(text: &str) -> Result<Duration, InputError> {
    let trimmed = text.trim();
    let duration =
        humantime::parse_duration(trimmed).map_err(|_| InputError::Duration(text.to_string()))?;
    if duration.is_zero() {
        return Err(InputError::ZeroDuration(text.to_string()));
    }
    Ok(duration)
}

/// `name=value` as an equality matcher on an alert's labels (`node` and
/// `rule` work too).
pub fn parse_matcher(text: &str) -> Result<Matcher, InputError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => Ok(Matcher {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
        }),
        _ => Err(InputError::Matcher(text.to_string())),
    }
}

/// A duration the way the screens and the CLI print it: `30m`, `1h`,
/// `1h 30m`.
pub fn duration_text(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs().max(1))).to_string()
}

/// Who is asking: `$USER@hostname`. Without `$USER` (or `$LOGNAME`), the
/// name of this process's user in `/etc/passwd`; `unknown` for a part that
/// cannot be found.
pub fn identity() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(user_of_this_process)
        .unwrap_or_else(|| "unknown".to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{host}")
}

/// The user this process runs as, by the owner of `/proc/self` and
/// `/etc/passwd` (Linux; `None` elsewhere or when not listed).
fn user_of_this_process() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_name(&passwd, uid)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The name of user `uid` in `/etc/passwd` text.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// What a maintenance window is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One node, by name.
    Node(String),
    /// Every node of a tier.
    Tier(Role),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(name) => write!(f, "node {name}"),
            Target::Tier(role) => write!(f, "the {role} tier"),
        }
    }
}

/// How long a silence lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// For this long from now.
    For(Duration),
    /// Until every alert it matched resolved.
    Resolved,
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::For(d) => write!(f, "for {}", duration_text(*d)),
            Until::Resolved => f.write_str("until the alerts resolve"),
        }
    }
}

/// One write call to a collector's Operator service, with everything it
/// sends decided.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorCall {
    /// Operator.Ack.
    Ack {
        /// The alert's id.
        alert_id: String,
        /// Why, or what is being done (may be empty).
        comment: String,
        /// Who acknowledges.
        by: String,
    },
    /// Operator.Silence.
    Silence {
        /// Alerts matching all of these are silenced.
        matchers: Vec<Matcher>,
        /// For how long.
        until: Until,
        /// Why (may be empty).
        comment: String,
        /// Who silences.
        by: String,
    },
    /// Operator.Unsilence.
    Unsilence {
        /// The silence's id.
        id: String,
        /// Who ends it.
        by: String,
    },
    /// Operator.StartMaintenance.
    StartMaintenance {
        /// The node or tier.
        target: Target,
        /// For how long.
        duration: Duration,
        /// Why (may be empty).
        comment: String,
        /// Who starts it.
        by: String,
    },
    /// Operator.EndMaintenance.
    EndMaintenance {
        /// The maintenance window's id.
        id: String,
        /// Who ends it.
        by: String,
    },
    /// Operator.Forget.
    Forget {
        /// The node.
        node: String,
        /// Who forgets it.
        by: String,
    },
}

/// `node=web2, rule=check-failed`.
pub fn matchers_text(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(|m| format!("{}={}", m.name, m.value))
        .collect::<Vec<_>>()
        .join(", ")
}

impl OperatorCall {
    /// What it does, in a few words, e.g. `acknowledge alert 7f3a`.
    pub fn describe(&self) -> String {
        match self {
            OperatorCall::Ack { alert_id, .. } => format!("acknowledge alert {alert_id}"),
            OperatorCall::Silence {
                matchers, until, ..
            } => format!("silence {} {until}", matchers_text(matchers)),
            OperatorCall::Unsilence { id, .. } => format!("end silence {id}"),
            OperatorCall::StartMaintenance {
                target, duration, ..
            } => format!("maintenance of {target} for {}", duration_text(*duration)),
            OperatorCall::EndMaintenance { id, .. } => format!("end maintenance {id}"),
            OperatorCall::Forget { node, .. } => format!("forget node {node}"),
        }
    }

    /// Exactly what will be done, as a confirmation prompt says it.
    pub fn confirmation(&self) -> String {
        let by = |by: &str| {
            if by.is_empty() {
                String::new()
            } else {
                format!(" as {by}")
            }
        };
        match self {
            OperatorCall::Ack {
                alert_id, by: who, ..
            } => format!(
                "Acknowledge alert {alert_id}{}: no more repeat notifications for it.",
                by(who)
            ),
            OperatorCall::Silence {
                matchers,
                until,
                by: who,
                ..
            } => format!(
                "Silence every alert matching {} {until}{}: they are not notified.",
                matchers_text(matchers),
                by(who)
            ),
            OperatorCall::Unsilence { id, by: who } => {
                format!("End silence {id} now{}.", by(who))
            }
            OperatorCall::StartMaintenance {
                target,
                duration,
                by: who,
                ..
            } => format!(
                "Put {target} in maintenance for {}{}: its alerts are held (not notified).",
                duration_text(*duration),
                by(who)
            ),
            OperatorCall::EndMaintenance { id, by: who } => {
                format!("End maintenance {id} now{}.", by(who))
            }
            OperatorCall::Forget { node, by: who } => format!(
                "Forget {node}{}: it leaves the fleet with its history until it reports again.",
                by(who)
            ),
        }
    }

    /// The Operator.Ack request, if this is an ack.
    pub fn ack_request(&self) -> Option<AckRequest> {
        match self {
            OperatorCall::Ack {
                alert_id,
                comment,
                by,
            } => Some(AckRequest {
                alert_id: alert_id.clone(),
                comment: comment.clone(),
                by: by.clone(),
            }),
            _ => None,
        }
    }

    /// The Operator.Silence request, if this is a silence.
    pub fn silence_request(&self) -> Option<SilenceRequest> {
        match self {
            OperatorCall::Silence {
                matchers,
                until,
                comment,
                by,
            } => Some(SilenceRequest {
                matchers: matchers.clone(),
                duration_ms: match until {
                    Until::For(d) => millis(*d),
                    Until::Resolved => 0,
                },
                until_resolved: *until == Until::Resolved,
                comment: comment.clone(),
                by: by.clone(),
            }),
            _ => None,
        }
    }

    /// The Operator.StartMaintenance request, if this starts maintenance.
    pub fn maintenance_request(&self) -> Option<MaintenanceRequest> {
        match self {
            OperatorCall::StartMaintenance {
                target,
                duration,
                comment,
                by,
            } => {
                let (node, tier) = match target {
                    Target::Node(name) => (name.clone(), Role::Unspecified),
                    Target::Tier(role) => (String::new(), *role),
                };
                Some(MaintenanceRequest {
                    node,
                    tier: tier as i32,
                    duration_ms: millis(*duration),
                    comment: comment.clone(),
                    by: by.clone(),
                })
            }
            _ => None,
        }
    }

    /// The Operator.Unsilence or Operator.EndMaintenance request, if this
    /// ends something.
    pub fn end_request(&self) -> Option<EndRequest> {
        match self {
            OperatorCall::Unsilence { id, by } | OperatorCall::EndMaintenance { id, by } => {
                Some(EndRequest {
                    id: id.clone(),
                    by: by.clone(),
                })
            }
            _ => None,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What the collector answered to an [`OperatorCall`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The acknowledged alert.
    Acked(Alert),
    /// The new silence.
    Silenced(Silence),
    /// The silence that ended.
    Unsilenced(Silence),
    /// The new maintenance window.
    Maintenance(Maintenance),
    /// The maintenance window that ended.
    MaintenanceEnded(Maintenance),
    /// The node that was forgotten.
    Forgotten(String),
}

impl Outcome {
    /// One line saying what was done, with the ids, e.g. `silence s-12:
    /// node=web2 for 1h (until 2026-01-01T01:00:00Z)`.
    pub fn text(&self) -> String {
        match self {
            Outcome::Acked(alert) => {
                let by = if alert.acknowledged_by.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", alert.acknowledged_by)
                };
                let on = if alert.node.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", alert.node)
                };
                format!("acknowledged alert {} ({}{on}){by}", alert.id, alert.rule)
            }
            Outcome::Silenced(s) => {
                let how_long = if s.until_resolved {
                    "until the alerts resolve".to_string()
                } else {
                    until_text(s.starts_ms, s.ends_ms)
                };
                format!(
                    "silence {}: {} {how_long}",
                    s.id,
                    matchers_text(&s.matchers)
                )
            }
            Outcome::Unsilenced(s) => format!("ended silence {}", s.id),
            Outcome::Maintenance(m) => format!(
                "maintenance {}: {} {}",
                m.id,
                maintenance_target(m),
                until_text(m.starts_ms, m.ends_ms)
            ),
            Outcome::MaintenanceEnded(m) => {
                format!("ended maintenance {} of {}", m.id, maintenance_target(m))
            }
            Outcome::Forgotten(node) => format!("forgot node {node}"),
        }
    }
}

/// `node web2`, `the web tier`.
fn maintenance_target(m: &Maintenance) -> String {
    if m.node.is_empty() {
        Target::Tier(m.tier()).to_string()
    } else {
        Target::Node(m.node.clone()).to_string()
    }
}

/// `for 1h (until 2026-01-01T01:00:00Z)` from Unix ms bounds; what is
/// known of it when one is 0.
fn until_text(starts_ms: i64, ends_ms: i64) -> String {
    let end = u64::try_from(ends_ms).ok().filter(|e| *e > 0).map(|e| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(e))
    });
    match end {
        Some(end) if ends_ms > starts_ms && starts_ms > 0 => {
            let length = Duration::from_millis((ends_ms - starts_ms) as u64);
            format!("for {} (until {end})", duration_text(length))
        }
        Some(end) => format!("until {end}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_type_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 1h30m "), Ok(Duration::from_secs(5_400)));
        let err = parse_duration("1x").unwrap_err();
        assert!(err.to_string().contains("\"1x\""), "{err}");
        assert!(parse_duration("").is_err());
        assert_eq!(
            parse_duration("0s"),
            Err(InputError::ZeroDuration("0s".into()))
        );
        assert_eq!(duration_text(Duration::from_secs(5_400)), "1h 30m");
    }

    #[test]
    fn the_user_comes_from_passwd_without_user() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("ann"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert!(identity().contains('@'));
    }

    #[test]
    fn matchers_are_name_equals_value() {
        let m = parse_matcher("node=web2").unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str()), ("node", "web2"));
        let m = parse_matcher("summary=a=b").unwrap();
        assert_eq!(m.value, "a=b");
        for bad in ["node", "=web2", "node=", ""] {
            let err = parse_matcher(bad).unwrap_err();
            assert!(err.to_string().contains("NAME=VALUE"), "{err}");
        }
    }

    #[test]
    fn requests_carry_every_field() {
        let silence = OperatorCall::Silence {
            matchers: vec![parse_matcher("node=web2").unwrap()],
            until: Until::Resolved,
            comment: "deploy".into(),
            by: "ann@ws".into(),
        };
        let r = silence.silence_request().unwrap();
        assert!(r.until_resolved);
        assert_eq!(r.duration_ms, 0);
        assert_eq!((r.comment.as_str(), r.by.as_str()), ("deploy", "ann@ws"));
        assert!(silence.ack_request().is_none());
        let maint = OperatorCall::StartMaintenance {
            target: Target::Tier(Role::Web),
            duration: DEFAULT_MAINTENANCE,
            comment: String::new(),
            by: "ann@ws".into(),
        };
        let r = maint.maintenance_request().unwrap();
        assert_eq!((r.node.as_str(), r.tier()), ("", Role::Web));
        assert_eq!(r.duration_ms, 1_800_000);
        assert_eq!(
            maint.confirmation(),
            "Put the web tier in maintenance for 30m as ann@ws: its alerts are held (not notified)."
        );
    }

    #[test]
    fn outcomes_say_what_was_done_with_ids() {
        let s = Silence {
            id: "s1".into(),
            matchers: vec![parse_matcher("rule=check-failed").unwrap()],
            starts_ms: 1_767_225_600_000,
            ends_ms: 1_767_225_600_000 + 3_600_000,
            ..Default::default()
        };
        assert_eq!(
            Outcome::Silenced(s).text(),
            "silence s1: rule=check-failed for 1h (until 2026-01-01T01:00:00Z)"
        );
        let m = Maintenance {
            id: "m1".into(),
            node: "web2".into(),
            ..Default::default()
        };
        assert_eq!(
            Outcome::MaintenanceEnded(m).text(),
            "ended maintenance m1 of node web2"
        );
    }
}
