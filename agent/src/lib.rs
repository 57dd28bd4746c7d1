//! stacktop-agent: samples this server and streams to one or more collectors.
//!
//! SKELETON: the public API below is the contract other crates (the `stacktop`
//! dashboard's embedded mode, integration tests) code against. Bodies are
//! filled in by the agent work.

pub mod logs;

use std::collections::BTreeMap;
use std::time::Duration;

pub use stacktop_proto::Role;
pub use tokio_util::sync::CancellationToken;

/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            roles: Vec::new(),
            labels: BTreeMap::new(),
            collectors: Vec::new(),
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// Runs the agent until `shutdown` is cancelled: sample every interval and
/// stream to every collector, reconnecting forever. Returns after a bounded
/// flush once `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    todo!("agent::run")
}
