//! The `tcp` check: connect to `host:port` and close. Ok with the connect
//! time ("connected in 1 ms"), crit with the reason ("connection
//! refused"). Host names resolve through the system resolver on each run.

use std::time::Instant;

use tokio::net::TcpStream;

use super::spec::{TcpSpec, parse_host_port};
use super::{Outcome, human, io_words};

/// A TCP connect check.
#[derive(Debug)]
pub struct TcpProbe {
    host: String,
    port: u16,
}

impl TcpProbe {
    /// A probe of one socket address.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// Builds the probe from a validated spec.
    pub fn from_spec(spec: &TcpSpec) -> Self {
        let (host, port) = parse_host_port(&spec.address).unwrap_or_default();
        Self { host, port }
    }

    /// Runs the check once.
    pub async fn run(&self) -> Outcome {
        let started = Instant::now();
        match TcpStream::connect((self.host.as_str(), self.port)).await {
            Ok(_) => Outcome::ok(format!("connected in {}", human(started.elapsed()))),
            Err(e) => Outcome::crit(io_words(&e)),
        }
    }
}
