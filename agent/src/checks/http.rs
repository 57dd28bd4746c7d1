//! HTTP(S) checks (kinds `http` and `app`): their `[[checks]]` keys
//! ([`HttpSpec`]), and the small HTTP/1.1 client the `nginx` and `haproxy`
//! checks share ([`Fetcher`]).
//!
//! ```toml
//! [[checks]]
//! kind = "http"                 # also "app": the same check, reported as kind app
//! url = "https://127.0.0.11:8443/health"
//! expect-status = "200-399"     # default; or 200, or "200,204"
//! body-contains = "ok"
//! warn-latency = "500ms"
//! ca-file = "/etc/ssl/lab-ca.pem"
//! ```
//!
//! The client is hyper's connection-level HTTP/1.1 (already in the agent
//! through tonic) over a tokio TCP stream, wrapped in rustls for `https`:
//! one connection per request with `Connection: close`, the body capped at
//! [`MAX_BODY`]. A check every few seconds does not need a pool, and this
//! keeps the agent free of a full HTTP client stack.
//!
//! Statuses: ok when the status is accepted (`expect-status`, default
//! 200-399) and the body contains `body-contains`; warn when it is slower
//! than `warn-latency`; crit otherwise. Messages: "200 OK in 3 ms",
//! "HTTP 503 (expected 200-399): db: connection refused", "connection
//! refused".

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Deserialize;
use stacktop_proto::Health;
use tokio::net::TcpStream;

use super::common::{Outcome, SpecError, SpecResult, human, io_words, is_local};
use super::tls;

/// An HTTP(S) GET (kinds `http` and `app`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Accepted statuses: `200`, `"200-399"` (default) or `"200,204"`.
    #[serde(default)]
    pub expect_status: Option<StatusSpec>,
    /// A substring the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Warn when the response takes at least this long.
    #[serde(default, with = "humantime_serde")]
    pub warn_latency: Option<Duration>,
    /// PEM file of CA certificates to trust instead of the web PKI
    /// (for self-signed certificates).
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl HttpSpec {
    /// The name a check of `kind` (`http` or `app`) gets when none is
    /// configured: short enough to read whole in the dashboard, and what
    /// tells two checks of one node apart. An `app` check is named by the
    /// port its app server listens on (`app:8080`); an `http` check by its
    /// path (`http:/healthz`), with the port when it is not the scheme's
    /// (`http:9000/health`). A host other than this machine's loopback is
    /// kept in front (`app:10.0.0.7:8080`, `http:www.example.com`).
    pub fn default_name(&self, kind: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("http", &self.url));
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let path = path.split(['?', '#']).next().unwrap_or("");
        let (host, port) = split_authority(authority);
        let scheme_port = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        let port = port.unwrap_or(scheme_port);
        let host = (!is_local(host)).then_some(host);
        if kind == "app" {
            return match host {
                Some(host) => format!("{kind}:{host}:{port}"),
                None => format!("{kind}:{port}"),
            };
        }
        let mut target = host.unwrap_or("").to_string();
        if port != scheme_port {
            if !target.is_empty() {
                target.push(':');
            }
            target.push_str(&port.to_string());
        }
        if target.is_empty() || (!path.is_empty() && path != "/") {
            target.push_str(if path.is_empty() { "/" } else { path });
        }
        format!("{kind}:{target}")
    }
}

/// Host and port of a URL's authority (`host`, `host:port`, `[v6]:port`),
/// without user info.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').unwrap_or((v6, ""));
        return (host, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        None => (authority, None),
    }
}

/// Accepted HTTP statuses as written in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// One status code.
    Code(u16),
    /// `"200-399"`, `"200,204"` or a mix.
    Text(String),
}

/// Largest response body read; the rest is ignored (stub_status and the
/// HAProxy CSV of a few hundred servers fit easily).
pub const MAX_BODY: usize = 1 << 20;

/// Checks a check URL: `http://` or `https://` with a host.
pub fn parse_url(url: &str) -> std::result::Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("URL {url:?} is not valid ({e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("URL {url:?} must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("URL {url:?} has no host"));
    }
    Ok(uri)
}

/// A set of accepted HTTP statuses, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl Default for StatusSet {
    fn default() -> Self {
        Self {
            ranges: vec![(200, 399)],
            text: "200-399".into(),
        }
    }
}

impl StatusSet {
    /// Parses `200`, `"200-399"` or `"200,204,300-399"`.
    pub fn parse(spec: &StatusSpec) -> std::result::Result<Self, String> {
        let text = match spec {
            StatusSpec::Code(code) => code.to_string(),
            StatusSpec::Text(text) => text.clone(),
        };
        let err =
            || format!("expected status {text:?} is not like 200, \"200-399\" or \"200,204\"");
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: u16 = lo.trim().parse().map_err(|_| err())?;
            let hi: u16 = hi.trim().parse().map_err(|_| err())?;
            if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
                return Err(err());
            }
            ranges.push((lo, hi));
        }
        Ok(Self { ranges, text })
    }

    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// Why a request failed, in an operator's words.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Name resolution or connect failed.
    #[error("{0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
}

/// A response: status and (capped) body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: hyper::StatusCode,
    /// The body, at most [`MAX_BODY`] bytes.
    pub body: Bytes,
}

/// A GET client for one URL.
#[derive(Debug, Clone)]
pub struct Fetcher {
    uri: Uri,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Fetcher {
    /// A client for `url`, refused (as a bad `url_key`) unless it is
    /// `http://` or `https://` with a host; `ca_file` replaces the web PKI
    /// roots for `https` (errors name `ca-file`).
    pub fn new(url: &str, url_key: &'static str, ca_file: Option<&str>) -> SpecResult<Self> {
        let uri = parse_url(url).map_err(|m| SpecError::new(url_key, m))?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(tls::client_config(ca_file)?),
            _ => None,
        };
        Ok(Self { uri, tls })
    }

    /// The URL fetched.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// GETs the URL once. The caller bounds the time.
    pub async fn get(&self) -> std::result::Result<Response, FetchError> {
        let host = self.uri.host().unwrap_or_default();
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self
            .uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let stream = TcpStream::connect((bare_host, port))
            .await
            .map_err(|e| FetchError::Connect(io_words(&e)))?;
        stream.set_nodelay(true).ok();
        match &self.tls {
            None => self.exchange(stream).await,
            Some(config) => {
                let name = ServerName::try_from(bare_host.to_string())
                    .map_err(|e| FetchError::Tls(format!("bad server name {host:?}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| FetchError::Tls(tls::tls_words(&e)))?;
                self.exchange(tls).await
            }
        }
    }

    async fn exchange<S>(&self, stream: S) -> std::result::Result<Response, FetchError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let http = |e: hyper::Error| FetchError::Http(e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        // The connection future drives the socket; it ends with the request
        // (Connection: close) or when this function's future is dropped.
        let conn = tokio::spawn(conn);
        let authority = self
            .uri
            .authority()
            .map_or_else(String::new, |a| a.to_string());
        let path = self
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let request = Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, "stacktop-agent")
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let result = async {
            let response = sender.send_request(request).await.map_err(http)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| FetchError::Http(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(Response { status, body })
        }
        .await;
        conn.abort();
        result
    }
}

/// An HTTP(S) check.
#[derive(Debug)]
pub struct HttpProbe {
    fetcher: Fetcher,
    expect: StatusSet,
    body_contains: Option<String>,
    warn_latency: Option<Duration>,
}

impl HttpProbe {
    /// Checks the spec and builds the probe (loading the CA file): any
    /// key that cannot be used is an error naming it.
    pub fn from_spec(spec: &HttpSpec) -> SpecResult<Self> {
        Ok(Self {
            fetcher: Fetcher::new(&spec.url, "url", spec.ca_file.as_deref())?,
            expect: match &spec.expect_status {
                Some(s) => StatusSet::parse(s).map_err(|m| SpecError::new("expect-status", m))?,
                None => StatusSet::default(),
            },
            body_contains: spec.body_contains.clone(),
            warn_latency: spec.warn_latency,
        })
    }

    /// Runs the check once.
    pub async fn run(&self) -> Outcome {
        let started = Instant::now();
        let response = match self.fetcher.get().await {
            Ok(r) => r,
            Err(e) => return Outcome::crit(e.to_string()),
        };
        let took = started.elapsed();
        judge(
            &response,
            took,
            &self.expect,
            self.body_contains.as_deref(),
            self.warn_latency,
        )
    }
}

/// Decides an HTTP check's outcome from its response.
pub fn judge(
    response: &Response,
    took: Duration,
    expect: &StatusSet,
    body_contains: Option<&str>,
    warn_latency: Option<Duration>,
) -> Outcome {
    let status = response.status;
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    if !expect.contains(code) {
        let snippet = body_snippet(&response.body);
        let mut message = format!("HTTP {code} (expected {})", expect.text);
        if !snippet.is_empty() {
            message.push_str(": ");
            message.push_str(&snippet);
        }
        return Outcome::crit(message);
    }
    if let Some(needle) = body_contains
        && memchr::memmem::find(&response.body, needle.as_bytes()).is_none()
    {
        return Outcome::crit(format!("HTTP {code} but the body lacks {needle:?}"));
    }
    let message = format!("{code} {reason} in {}", human(took))
        .replace("  ", " ")
        .trim()
        .to_string();
    match warn_latency {
        Some(limit) if took >= limit => Outcome::new(
            Health::Warn,
            format!("{message} (slow: warn at {})", human(limit)),
        ),
        _ => Outcome::ok(message),
    }
}

/// The first line of a body, shortened, for error messages.
fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(code: u16, body: &str) -> Response {
        Response {
            status: hyper::StatusCode::from_u16(code).unwrap(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn status_sets() {
        let set = StatusSet::parse(&StatusSpec::Text("200, 204,300-399".into())).unwrap();
        assert!(set.contains(204) && set.contains(301) && !set.contains(201));
        assert!(
            StatusSet::parse(&StatusSpec::Code(200))
                .unwrap()
                .contains(200)
        );
        assert!(StatusSet::parse(&StatusSpec::Text("2xx".into())).is_err());
        assert!(StatusSet::parse(&StatusSpec::Text("399-200".into())).is_err());
        assert!(StatusSet::default().contains(302));
    }

    #[test]
    fn judging() {
        let ms = Duration::from_millis(3);
        let ok = judge(&response(200, "ok"), ms, &StatusSet::default(), None, None);
        assert_eq!(
            (ok.status, ok.message.as_str()),
            (Health::Ok, "200 OK in 3 ms")
        );
        let bad = judge(
            &response(503, "db: connection refused\n"),
            ms,
            &StatusSet::default(),
            None,
            None,
        );
        assert_eq!(bad.status, Health::Crit);
        assert_eq!(
            bad.message,
            "HTTP 503 (expected 200-399): db: connection refused"
        );
        let body = judge(
            &response(200, "nope"),
            ms,
            &StatusSet::default(),
            Some("ok"),
            None,
        );
        assert_eq!(body.status, Health::Crit);
        let slow = judge(
            &response(200, "ok"),
            Duration::from_millis(900),
            &StatusSet::default(),
            None,
            Some(Duration::from_millis(500)),
        );
        assert_eq!(slow.status, Health::Warn);
        assert_eq!(slow.message, "200 OK in 900 ms (slow: warn at 500 ms)");
    }

    #[test]
    fn building_names_the_bad_key() {
        let field = |spec: HttpSpec| HttpProbe::from_spec(&spec).unwrap_err().field;
        let url = |url: &str| HttpSpec {
            url: url.into(),
            ..Default::default()
        };
        assert_eq!(field(url("127.0.0.1:80/health")), "url");
        assert_eq!(
            field(HttpSpec {
                expect_status: Some(StatusSpec::Text("2xx".into())),
                ..url("http://127.0.0.1/health")
            }),
            "expect-status"
        );
        let https = HttpSpec {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..url("https://127.0.0.1/health")
        };
        assert_eq!(field(https.clone()), "ca-file");
        // Plain HTTP never reads the CA file.
        assert!(
            HttpProbe::from_spec(&HttpSpec {
                url: "http://127.0.0.1/health".into(),
                ..https
            })
            .is_ok()
        );
    }

    #[test]
    fn urls() {
        assert!(parse_url("http://127.0.0.1:8080/health").is_ok());
        assert!(parse_url("https://example.com").is_ok());
        assert!(parse_url("127.0.0.1:80").is_err());
        assert!(parse_url("ftp://x/").is_err());
    }
}
