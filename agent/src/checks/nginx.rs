//! The `nginx` check: GET the stub_status page and report its counters.
//!
//! stub_status reads like
//!
//! ```text
//! Active connections: 2
//! server accepts handled requests
//!  112 112 340
//! Reading: 0 Writing: 1 Waiting: 1
//! ```
//!
//! Metrics: `nginx_connections_active`, `nginx_connections_reading`,
//! `nginx_connections_writing`, `nginx_connections_waiting` and
//! `nginx_requests_per_second` (the rate of the requests counter between
//! two runs; none on the first). The check is ok when the page answers and
//! parses ("2 active, 0.4 req/s"), crit otherwise (nginx down, or the URL
//! is not a stub_status page).
//!
//! ```toml
//! [[checks]]
//! kind = "nginx"
//! url = "http://127.0.0.11:8080/nginx_status"
//! ```

use std::time::Instant;

use serde::Deserialize;
use stacktop_proto::Health;
use stacktop_proto::metrics::{
    NGINX_ACTIVE, NGINX_READING, NGINX_REQUESTS, NGINX_WAITING, NGINX_WRITING,
};

use super::common::{Outcome, SpecResult};
use super::http;
use crate::observe::ObservedPoint;
use crate::sample::Rate;

/// Nginx stub_status.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NginxSpec {
    /// The stub_status URL.
    pub url: String,
}

/// The numbers of one stub_status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StubStatus {
    /// Open client connections, including idle ones.
    pub active: u64,
    /// Connections accepted since start.
    pub accepts: u64,
    /// Connections handled since start.
    pub handled: u64,
    /// Requests since start.
    pub requests: u64,
    /// Connections reading a request.
    pub reading: u64,
    /// Connections writing a response.
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
}

/// Parses a stub_status page; `None` when it does not look like one.
pub fn parse(text: &str) -> Option<StubStatus> {
    let mut s = StubStatus::default();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    s.active = lines
        .next()?
        .strip_prefix("Active connections:")?
        .trim()
        .parse()
        .ok()?;
    if !lines.next()?.starts_with("server accepts handled requests") {
        return None;
    }
    let mut counters = lines.next()?.split_whitespace().map(str::parse::<u64>);
    s.accepts = counters.next()?.ok()?;
    s.handled = counters.next()?.ok()?;
    s.requests = counters.next()?.ok()?;
    let mut words = lines.next()?.split_whitespace();
    while let (Some(key), Some(value)) = (words.next(), words.next()) {
        let value = value.parse().ok()?;
        match key {
            "Reading:" => s.reading = value,
            "Writing:" => s.writing = value,
            "Waiting:" => s.waiting = value,
            _ => {}
        }
    }
    Some(s)
}

/// An nginx stub_status check.
#[derive(Debug)]
pub struct NginxProbe {
    fetcher: http::Fetcher,
    requests: Rate,
}

impl NginxProbe {
    /// Checks the spec and builds the probe.
    pub fn from_spec(spec: &NginxSpec) -> SpecResult<Self> {
        Ok(Self {
            fetcher: http::Fetcher::new(&spec.url, "url", None)?,
            requests: Rate::default(),
        })
    }

    /// Runs the check once.
    pub async fn run(&mut self) -> Outcome {
        let fetcher = &self.fetcher;
        let response = match fetcher.get().await {
            Ok(r) => r,
            Err(e) => return Outcome::crit(e.to_string()),
        };
        if !response.status.is_success() {
            return Outcome::crit(format!(
                "HTTP {} from {} (is stub_status enabled there?)",
                response.status.as_u16(),
                fetcher.uri()
            ));
        }
        let Some(status) = parse(&String::from_utf8_lossy(&response.body)) else {
            return Outcome::crit(format!("{} is not a stub_status page", fetcher.uri()));
        };
        let rate = self.requests.update(status.requests, Instant::now());
        outcome(&status, rate)
    }
}

/// The outcome and metrics of one read.
pub fn outcome(s: &StubStatus, requests_per_second: Option<f64>) -> Outcome {
    let mut out = Outcome::new(
        Health::Ok,
        match requests_per_second {
            Some(rate) => format!("{} active, {rate:.1} req/s", s.active),
            None => format!("{} active", s.active),
        },
    );
    let gauge = |name: &str, v: u64| ObservedPoint::now(name, &[], v as f64);
    out.points = vec![
        gauge(NGINX_ACTIVE, s.active),
        gauge(NGINX_READING, s.reading),
        gauge(NGINX_WRITING, s.writing),
        gauge(NGINX_WAITING, s.waiting),
    ];
    if let Some(rate) = requests_per_second {
        out.points
            .push(ObservedPoint::now(NGINX_REQUESTS, &[], rate));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "Active connections: 2 \nserver accepts handled requests\n 112 112 340 \nReading: 0 Writing: 1 Waiting: 1 \n";

    #[test]
    fn parses_stub_status() {
        assert_eq!(
            parse(PAGE),
            Some(StubStatus {
                active: 2,
                accepts: 112,
                handled: 112,
                requests: 340,
                reading: 0,
                writing: 1,
                waiting: 1
            })
        );
    }

    #[test]
    fn refuses_other_pages() {
        assert_eq!(parse("<html>hello</html>"), None);
        assert_eq!(parse("Active connections: x\n"), None);
        assert_eq!(
            parse("Active connections: 1\nserver accepts handled requests\n 1 2\n"),
            None
        );
    }

    #[test]
    fn metrics_and_rate() {
        let s = parse(PAGE).unwrap();
        let first = outcome(&s, None);
        assert_eq!(first.message, "2 active");
        assert_eq!(first.points.len(), 4);
        let second = outcome(&s, Some(12.0));
        assert_eq!(second.message, "2 active, 12.0 req/s");
        assert_eq!(second.points[4].name, "nginx_requests_per_second");
    }
}
