//! Observations from the agent's inputs other than the system sampler:
//! access-log seconds, check results and the metrics checks read (MySQL,
//! HAProxy, Nginx), slow-changing facts and HAProxy backend servers (or
//! why they could not be read).
//!
//! Every input sends [`Observation`]s into one bounded channel that the
//! sampler drains at each tick, so everything an input learnt between two
//! ticks leaves in the next batch. A full channel makes the input wait
//! (`send().await`), which is the backpressure: inputs are slow-paced and
//! the sampler drains every tick, so it only fills if the agent stalls.

use stacktop_proto::v1::{BackendServer, CheckResult};

/// Observations buffered between inputs and the sampler.
pub const CHANNEL_CAPACITY: usize = 1024;

/// One point of a series named at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPoint {
    /// Prometheus-style metric name in base units.
    pub name: String,
    /// Label pairs; order does not matter.
    pub labels: Vec<(String, String)>,
    /// The value; non-finite values are dropped by the sampler.
    pub value: f64,
    /// When the value holds (Unix ms); 0 means "the batch's timestamp".
    pub timestamp_ms: i64,
}

impl ObservedPoint {
    /// A point stamped with the batch time.
    pub fn now(name: impl Into<String>, labels: &[(&str, &str)], value: f64) -> Self {
        Self {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            timestamp_ms: 0,
        }
    }
}

/// Something an input learnt.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Values of series (log rates, check metrics).
    Points(Vec<ObservedPoint>),
    /// The latest result of one check.
    Check(CheckResult),
    /// Facts set by one input, e.g. `db_role = replica`. Keys not named keep
    /// their value; an empty value removes the key.
    Facts(Vec<(String, String)>),
    /// A complete sample of an LB's backend servers.
    Backends(Vec<BackendServer>),
    /// The LB's backend servers could not be read (why): they are unknown,
    /// not unchanged, until a later [`Observation::Backends`].
    BackendsUnknown(String),
}
