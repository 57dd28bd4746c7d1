//! The `tcp` check ([`TcpSpec`]): connect to `host:port` and close. Ok
//! with the connect time ("connected in 1 ms"), crit with the reason
//! ("connection refused"). Host names resolve through the system resolver
//! on each run.
//!
//! ```toml
//! [[checks]]
//! kind = "tcp"
//! address = "127.0.0.21:3306"
//! ```

use std::time::Instant;

use serde::Deserialize;
use tokio::net::TcpStream;

use super::common::{Outcome, SpecError, SpecResult, human, io_words, is_local, parse_host_port};

/// A TCP connect.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port`.
    pub address: String,
}

impl TcpSpec {
    /// The name of a check with no configured one: `tcp:PORT` for a port
    /// of this machine (a loopback address), `tcp:HOST:PORT` otherwise.
    pub fn default_name(&self) -> String {
        match parse_host_port(&self.address) {
            Ok((host, port)) if is_local(&host) => format!("tcp:{port}"),
            _ => format!("tcp:{}", self.address),
        }
    }
}

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

    /// Checks the spec and builds the probe.
    pub fn from_spec(spec: &TcpSpec) -> SpecResult<Self> {
        let (host, port) =
            parse_host_port(&spec.address).map_err(|m| SpecError::new("address", m))?;
        Ok(Self { host, port })
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
