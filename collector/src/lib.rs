//! stacktop-collector: ingests agent streams, decides health, serves the fleet.
//!
//! SKELETON: the public API below is the contract other crates (the `stacktop`
//! dashboard's embedded mode, integration tests) code against. Bodies are
//! filled in by the collector work.

use std::net::SocketAddr;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// The collector's documented default port.
pub const DEFAULT_PORT: u16 = 7411;

/// A resolved collector configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:7411`).
    pub listen: SocketAddr,
    /// How long full-resolution history is kept (default 15 minutes).
    pub history: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            history: Duration::from_secs(15 * 60),
        }
    }
}

/// Serves Ingest, Fleet, grpc.health.v1 and reflection on an already bound
/// listener until `shutdown` is cancelled. Taking a listener lets tests and
/// the embedded dashboard bind `127.0.0.1:0` and learn the port first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (listener, config, shutdown);
    todo!("collector::serve")
}
