//! How clients (the agent's uplinks, the dashboard, `stacktop status`)
//! reach a collector: one builder for the address rules, timeouts,
//! keep-alive and message sizes, so every client behaves the same and TLS
//! and tokens have one place to go.

use std::time::Duration;

use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use crate::v1::fleet_client::FleetClient;
use crate::v1::ingest_client::IngestClient;

/// The collector's default port.
pub const DEFAULT_PORT: u16 = 7411;

/// Default bound on dialling a collector (TCP and HTTP/2 set-up).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval of HTTP/2 pings that notice a collector that vanished
/// without closing the connection (a dead host, a dropped route).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// Default wait for a ping's answer before the connection counts as dead.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a client accepts from a collector. A fleet snapshot
/// grows with the fleet (about 1.5 KiB a node), so tonic's 4 MiB default
/// would cut a dashboard off at a few thousand nodes.
pub const MAX_RECEIVE_BYTES: usize = 256 * 1024 * 1024;
/// Largest message a client sends (an agent batch, a request); the
/// collector refuses more.
pub const MAX_SEND_BYTES: usize = 4 * 1024 * 1024;

/// Why a client could not reach a collector.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The address is not a collector URL this client can dial.
    #[error("collector address {url:?}: {reason}")]
    Address {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answered, or the connection could not be set up.
    #[error("cannot reach the collector at {url}: {reason}")]
    Unreachable {
        /// The address dialled.
        url: String,
        /// The cause chain, joined by ": ".
        reason: String,
    },
}

/// Checks a collector address and returns it without a trailing slash.
///
/// It must be `http://HOST:PORT` with nothing after the port. `https://`
/// is refused until the transport speaks TLS: an agent retrying a handshake
/// it can never complete helps nobody.
pub fn validate_url(url: &str) -> Result<String, TransportError> {
    let bad = |reason: String| TransportError::Address {
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| bad(format!("not a URL ({e}): expected http://HOST:PORT")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported yet; use http://HOST:PORT".into()
            ));
        }
        _ => {
            return Err(bad(format!(
                "must start with http://, e.g. http://127.0.0.1:{DEFAULT_PORT}"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host".into()));
    }
    if uri.port_u16().is_none() {
        return Err(bad(format!("has no port, e.g. http://HOST:{DEFAULT_PORT}")));
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(bad("must not have a path: expected http://HOST:PORT".into()));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// How to reach one collector. [`ClientConfig::new`] has the defaults
/// above; change a field before connecting to differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `http://HOST:PORT`, checked by [`validate_url`].
    pub url: String,
    /// Bound on dialling.
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive ping interval (pings also while idle).
    pub keepalive_interval: Duration,
    /// Wait for a ping's answer.
    pub keepalive_timeout: Duration,
    /// Largest message accepted from the collector.
    pub max_receive_bytes: usize,
    /// Largest message sent to the collector.
    pub max_send_bytes: usize,
}

impl ClientConfig {
    /// The defaults for `url` (checked when connecting).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: CONNECT_TIMEOUT,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            max_receive_bytes: MAX_RECEIVE_BYTES,
            max_send_bytes: MAX_SEND_BYTES,
        }
    }

    /// The same with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The tonic endpoint: the address checked, timeouts and keep-alive set.
    pub fn endpoint(&self) -> Result<Endpoint, TransportError> {
        let url = validate_url(&self.url)?;
        let endpoint = Endpoint::from_shared(url).map_err(|e| TransportError::Address {
            url: self.url.clone(),
            reason: chain(&e),
        })?;
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true))
    }

    /// Dials the collector, bounded by the connect timeout.
    pub async fn connect(&self) -> Result<Channel, TransportError> {
        let endpoint = self.endpoint()?;
        let unreachable = |reason: String| TransportError::Unreachable {
            url: self.url.clone(),
            reason,
        };
        match tokio::time::timeout(self.connect_timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(err)) => Err(unreachable(chain(&err))),
            Err(_) => Err(unreachable(format!(
                "no answer within {} ms",
                self.connect_timeout.as_millis()
            ))),
        }
    }

    /// A Fleet client on `channel` with this config's message limits.
    pub fn fleet(&self, channel: Channel) -> FleetClient<Channel> {
        FleetClient::new(channel)
            .max_decoding_message_size(self.max_receive_bytes)
            .max_encoding_message_size(self.max_send_bytes)
    }

    /// An Ingest client on `channel` with this config's message limits.
    pub fn ingest(&self, channel: Channel) -> IngestClient<Channel> {
        IngestClient::new(channel)
            .max_decoding_message_size(self.max_receive_bytes)
            .max_encoding_message_size(self.max_send_bytes)
    }
}

/// `err` with all its causes, joined by ": " (tonic's transport errors say
/// little at the top level: "transport error").
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    text
}

fn cause_of<'a>(
    err: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    err.and_then(std::error::Error::source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            validate_url("http://127.0.0.1:7411/").unwrap(),
            "http://127.0.0.1:7411"
        );
        for (url, why) in [
            ("https://h:1", "https is not supported"),
            ("ftp://h:1", "must start with http://"),
            ("http://h", "no port"),
            ("http://h:1/x", "must not have a path"),
            ("nonsense url", "not a URL"),
        ] {
            let err = validate_url(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_collector_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = ClientConfig::new(&url).connect().await.unwrap_err();
        assert!(matches!(err, TransportError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}
