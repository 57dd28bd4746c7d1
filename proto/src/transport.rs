//! How clients (the agent's uplinks, the dashboard, `stacktop status`)
//! reach a collector: one builder for the address rules, timeouts,
//! keep-alive, message sizes, TLS and the bearer token, so every client
//! behaves the same.
//!
//! TLS files (`ca-file`, `tls-cert`, `tls-key`) are read each time a
//! connection is dialled, so a certificate rotated on disk is used from the
//! next reconnect on. The token is read once, when the config is built
//! ([`Token::from_file`]), and sent as `authorization: Bearer …` on every
//! call by the [`Bearer`] interceptor; it is never printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::codegen::http::Uri;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::v1::fleet_client::FleetClient;
use crate::v1::ingest_client::IngestClient;
use crate::v1::operator_client::OperatorClient;

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
    /// A TLS file (`ca-file`, `tls-cert`, `tls-key`) or the token file
    /// could not be used.
    #[error("{key} {path:?}: {reason}")]
    File {
        /// The config key or flag naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        reason: String,
    },
    /// TLS settings that cannot work together.
    #[error("collector {url}: {reason}")]
    Tls {
        /// The collector address.
        url: String,
        /// What is wrong.
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
/// It must be `http://HOST:PORT` or `https://HOST:PORT` with nothing after
/// the port.
pub fn validate_url(url: &str) -> Result<String, TransportError> {
    let bad = |reason: String| TransportError::Address {
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| bad(format!("not a URL ({e}): expected https://HOST:PORT")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(bad(format!(
                "must start with https:// or http://, e.g. https://collector.example:{DEFAULT_PORT}"
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
        return Err(bad(
            "must not have a path: expected https://HOST:PORT".into()
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A bearer token, read from a file. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The first non-empty line of `path`, trimmed. `key` names the setting
    /// in errors (`token-file`); the content is never quoted.
    pub fn from_file(key: &'static str, path: &Path) -> Result<Self, TransportError> {
        let err = |reason: String| TransportError::File {
            key,
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let token = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| err("holds no token (expected one line)".into()))?;
        Self::new(token).map_err(err)
    }

    /// A token from its text: printable ASCII without spaces, as an HTTP
    /// header value needs. The error does not quote it.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Self(token.into()))
    }
}

/// Adds `authorization: Bearer TOKEN` to every call (nothing without a
/// token). The header is marked sensitive, so tonic and hyper never print
/// it.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Bearer {
    /// The interceptor for `token`.
    pub fn new(token: Option<&Token>) -> Self {
        Self(token.and_then(|t| {
            let mut value = MetadataValue::try_from(format!("Bearer {}", t.0)).ok()?;
            value.set_sensitive(true);
            Some(value)
        }))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that sends the client's token with every call.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The client side of TLS: whom to trust and what to present. Paths, read
/// at each dial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA certificates to verify the collector against; without it,
    /// the web PKI roots (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) to present, for collectors with
    /// `client-ca`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// Whether anything is set (then the URL must be `https://`).
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// tonic's TLS config, the files read now.
    pub fn load(&self) -> Result<ClientTlsConfig, TransportError> {
        let read = |key: &'static str, path: &Path| {
            std::fs::read(path).map_err(|e| TransportError::File {
                key,
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        };
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_file {
            Some(path) => {
                let pem = read("ca-file", path)?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(TransportError::File {
                        key: "ca-file",
                        path: path.clone(),
                        reason: "no PEM certificate in it".into(),
                    });
                }
                tls.ca_certificate(Certificate::from_pem(pem))
            }
            None => tls.with_webpki_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let cert = read("tls-cert", cert)?;
                let key = read("tls-key", key)?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            (Some(path), None) | (None, Some(path)) => {
                return Err(TransportError::File {
                    key: if self.cert.is_some() {
                        "tls-cert"
                    } else {
                        "tls-key"
                    },
                    path: path.clone(),
                    reason: "tls-cert and tls-key go together; only one is set".into(),
                });
            }
        }
        Ok(tls)
    }
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
    /// TLS files (used with `https://` URLs).
    pub tls: ClientTls,
    /// The bearer token sent with every call, if any.
    pub token: Option<Token>,
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
            tls: ClientTls::default(),
            token: None,
        }
    }

    /// The same with these TLS files.
    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// The same with this token.
    pub fn with_token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self
    }

    /// The same with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The tonic endpoint: the address checked, timeouts and keep-alive set.
    pub fn endpoint(&self) -> Result<Endpoint, TransportError> {
        let url = validate_url(&self.url)?;
        let https = url.starts_with("https://");
        let endpoint = Endpoint::from_shared(url).map_err(|e| TransportError::Address {
            url: self.url.clone(),
            reason: chain(&e),
        })?;
        let endpoint = if https {
            endpoint
                .tls_config(self.tls.load()?)
                .map_err(|e| TransportError::Tls {
                    url: self.url.clone(),
                    reason: chain(&e),
                })?
        } else if self.tls.is_set() {
            return Err(TransportError::Tls {
                url: self.url.clone(),
                reason: "ca-file, tls-cert and tls-key need an https:// collector URL".into(),
            });
        } else {
            endpoint
        };
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

    /// `channel` sending this config's token.
    pub fn authed(&self, channel: Channel) -> Authed {
        InterceptedService::new(channel, Bearer::new(self.token.as_ref()))
    }

    /// A Fleet client on `channel` with this config's message limits and
    /// token.
    pub fn fleet(&self, channel: Channel) -> FleetClient<Authed> {
        FleetClient::new(self.authed(channel))
            .max_decoding_message_size(self.max_receive_bytes)
            .max_encoding_message_size(self.max_send_bytes)
    }

    /// An Ingest client on `channel` with this config's message limits and
    /// token.
    pub fn ingest(&self, channel: Channel) -> IngestClient<Authed> {
        IngestClient::new(self.authed(channel))
            .max_decoding_message_size(self.max_receive_bytes)
            .max_encoding_message_size(self.max_send_bytes)
    }

    /// An Operator client on `channel` with this config's message limits
    /// and token.
    pub fn operator(&self, channel: Channel) -> OperatorClient<Authed> {
        OperatorClient::new(self.authed(channel))
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
            ("ftp://h:1", "must start with https:// or http://"),
            ("http://h", "no port"),
            ("http://h:1/x", "must not have a path"),
            ("nonsense url", "not a URL"),
        ] {
            let err = validate_url(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn https_is_accepted_and_tls_files_need_it() {
        assert_eq!(validate_url("https://h:1/").unwrap(), "https://h:1");
        let tls = ClientTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..ClientTls::default()
        };
        let err = ClientConfig::new("http://127.0.0.1:1")
            .with_tls(tls.clone())
            .endpoint()
            .unwrap_err()
            .to_string();
        assert!(err.contains("need an https://"), "{err}");
        let err = ClientConfig::new("https://127.0.0.1:1")
            .with_tls(tls)
            .endpoint()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ca-file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn tokens_are_read_from_files_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("stacktop-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "\n  s3cret-value  \n").unwrap();
        let token = Token::from_file("token-file", &path).unwrap();
        assert_eq!(token, Token::new("s3cret-value").unwrap());
        assert!(!format!("{token:?}").contains("s3cret"));
        let config = ClientConfig::new("http://h:1").with_token(Some(token.clone()));
        assert!(!format!("{config:?}").contains("s3cret"));
        let mut bearer = Bearer::new(Some(&token));
        assert!(!format!("{bearer:?}").contains("s3cret"));
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret-value"
        );
        std::fs::write(&path, "two words\n").unwrap();
        let err = Token::from_file("token-file", &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("token-file") && !err.contains("two words"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
