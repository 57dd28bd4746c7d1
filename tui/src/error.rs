//! The dashboard library's errors. Each names the collector address or the
//! value it is about, because an operator reads them.

use std::io;

use stacktop_proto::transport::TransportError;

/// Why talking to a collector or running the dashboard failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The collector address is not one a client can dial, or nothing
    /// answered there (the shared client builder's error).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The collector went away (gRPC `UNAVAILABLE`).
    #[error("cannot reach collector at {url}: {reason}")]
    Unreachable {
        /// The address dialled.
        url: String,
        /// The transport error, flattened to text with its causes.
        reason: String,
    },
    /// The collector answered with an error.
    #[error("collector at {url} answered {code:?}: {message}")]
    Rpc {
        /// The address.
        url: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The terminal could not be set up or drawn on.
    #[error("terminal: {0}")]
    Terminal(#[source] io::Error),
    /// No `--collector` was given, and this build has no embedded collector
    /// and agent to start instead.
    #[error(
        "no --collector given, and this stacktop was built without the embedded collector \
         and agent (cargo feature `embedded`): pass --collector http://HOST:PORT"
    )]
    NoCollector,
    /// The embedded collector could not bind its loopback port.
    #[error("embedded collector: cannot bind 127.0.0.1:0: {0}")]
    Bind(#[source] io::Error),
}

impl Error {
    /// Whether this error means the collector could not be reached at all
    /// (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Transport(_) => true,
            Error::Rpc { code, .. } => *code == tonic::Code::Unavailable,
            _ => false,
        }
    }

    pub(crate) fn rpc(url: &str, status: tonic::Status) -> Self {
        if status.code() == tonic::Code::Unavailable {
            Error::Unreachable {
                url: url.to_string(),
                reason: status.message().to_string(),
            }
        } else {
            Error::Rpc {
                url: url.to_string(),
                code: status.code(),
                message: status.message().to_string(),
            }
        }
    }
}

/// Results of the dashboard library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
