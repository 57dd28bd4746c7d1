//! The stacktop.v1 contract shared by agents, collectors and dashboards.
//!
//! # Layout
//!
//! - [`v1`]: the generated prost messages and tonic clients/servers for the
//!   `stacktop.v1` package (`proto/stacktop/v1/*.proto` is the source of
//!   truth; field numbers are never reused).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
//! - [`metrics`]: every metric name as a constant, and the derivations all
//!   sides must agree on (loopback devices, the memory ratio, the role a
//!   check speaks for, HAProxy's status words).
//! - [`delta`]: what a fleet delta means: applying one to the nodes a
//!   reader holds, and folding two into one.
//! - [`transport`]: the one client builder (address rules, timeouts,
//!   keep-alive, message sizes) agents and dashboards dial collectors with.
//! - Small conversions that every side needs: role and health names as
//!   operators type and read them, and label helpers.

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// Generated code for the `stacktop.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("stacktop.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/stacktop_descriptor.bin"));

pub mod delta;
pub mod metrics;
pub mod transport;

pub use v1::{Health, Role};

/// Every role, in the order of the request path: user -> lb -> web -> app -> db.
pub const ROLES: [Role; 4] = [Role::Lb, Role::Web, Role::App, Role::Db];

impl Role {
    /// The lower-case name used in configs, on command lines and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Role::Unspecified => "unspecified",
            Role::Lb => "lb",
            Role::Web => "web",
            Role::App => "app",
            Role::Db => "db",
        }
    }

    /// The tier heading a dashboard shows for this role.
    pub fn tier_title(self) -> &'static str {
        match self {
            Role::Unspecified => "Unassigned",
            Role::Lb => "LB",
            Role::Web => "Web",
            Role::App => "App",
            Role::Db => "DB",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is not one of `lb`, `web`, `app`, `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}: expected one of lb, web, app, db",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lb" => Ok(Role::Lb),
            "web" => Ok(Role::Web),
            "app" => Ok(Role::App),
            "db" => Ok(Role::Db),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

impl Health {
    /// The lower-case name used in JSON and on screen:
    /// `ok | warn | crit | unknown | down`.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unspecified | Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Warn => "warn",
            Health::Crit => "crit",
            Health::Down => "down",
        }
    }

    /// Badness order used to take the worst of several statuses:
    /// ok < unknown < warn < crit < down.
    pub fn severity(self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Unspecified | Health::Unknown => 1,
            Health::Warn => 2,
            Health::Crit => 3,
            Health::Down => 4,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: Health) -> Health {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl v1::Label {
    /// A label from a key and a value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The value of label `key` in `labels`, if present.
pub fn label<'a>(labels: &'a [v1::Label], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|l| l.key == key)
        .map(|l| l.value.as_str())
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The stacktop release this crate belongs to, sent in Hello and Welcome.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in ROLES {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert_eq!(" WEB ".parse::<Role>(), Ok(Role::Web));
        let err = "cache".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("\"cache\""), "{err}");
    }

    #[test]
    fn worst_health_orders_down_above_crit_above_warn() {
        assert_eq!(Health::Ok.worst(Health::Warn), Health::Warn);
        assert_eq!(Health::Crit.worst(Health::Warn), Health::Crit);
        assert_eq!(Health::Crit.worst(Health::Down), Health::Down);
        assert_eq!(Health::Unknown.worst(Health::Ok), Health::Unknown);
    }

    #[test]
    fn descriptor_set_carries_the_package() {
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        assert!(text.contains("stacktop.v1"));
        assert!(text.contains("Connect"));
    }
}
