//! Why [`crate::run`] refuses to start: the agent library's error type.
//!
//! Every variant is a configuration or environment problem found before
//! anything runs (an unreachable collector is never an error: the uplink
//! retries forever). Each message is whole on its own, cause included, so
//! an embedding program can show it with `{}` (the dashboard logs it as
//! the reason its embedded agent stopped); the typed cause stays in the
//! variant for a caller that wants to tell them apart.

use std::path::PathBuf;

use stacktop_proto::transport::TransportError;

use crate::checks::BuildError;
use crate::logs;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sampling interval is zero.
    #[error("the sampling interval must be greater than zero")]
    ZeroInterval,
    /// A configured collector address cannot be dialled.
    #[error("{error}")]
    Collector {
        /// What is wrong with the address (it quotes it).
        error: TransportError,
    },
    /// No node name is configured and the host name cannot be read.
    #[error("cannot read the host name ({error}); set a node name")]
    HostName {
        /// What the OS said.
        error: std::io::Error,
    },
    /// The system statistics the sampler reads are not available.
    #[error("cannot read system statistics: {error}")]
    Sampler {
        /// What sysinfo said.
        error: sysinfo::Error,
    },
    /// The spool cannot be opened or written.
    #[error(transparent)]
    Spool {
        /// What went wrong, naming the file.
        #[from]
        error: crate::spool::SpoolError,
    },
    /// An access log cannot be followed.
    #[error("cannot follow access log {}: {error}", path.display())]
    Log {
        /// The configured path.
        path: PathBuf,
        /// Why.
        error: logs::ConfigError,
    },
    /// A check cannot be built (its file changed since the config was
    /// loaded, or a role default does not build).
    #[error("{error}")]
    Check {
        /// Which check, which key, and why.
        error: BuildError,
    },
}

impl Error {
    /// Whether the error is in the configuration (rather than in the
    /// machine the agent runs on): the binary exits 2 for those, as for
    /// any other configuration error.
    pub fn is_config(&self) -> bool {
        match self {
            Error::ZeroInterval | Error::Collector { .. } | Error::Check { .. } => true,
            Error::Log { error, .. } => !matches!(error, logs::ConfigError::Io { .. }),
            Error::HostName { .. } | Error::Sampler { .. } | Error::Spool { .. } => false,
        }
    }
}

/// Results of starting the agent.
pub type Result<T> = std::result::Result<T, Error>;
