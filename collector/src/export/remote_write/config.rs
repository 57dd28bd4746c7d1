//! A `[[remote-write]]` table and its checked form.
//!
//! ```toml
//! [[remote-write]]
//! url = "http://127.0.0.1:9090/api/v1/write"  # required
//! name = "prometheus"        # the `destination` label (default: the url)
//! timeout = "30s"            # one attempt (default 30s)
//! queue = 100000             # samples that may wait (default 100,000)
//! batch = 2000               # samples per request (default 2,000)
//! headers = { "X-Scope-OrgID" = "ops" }   # sent with every request
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::http::Uri;
use serde::Deserialize;

/// One attempt's bound by default (Prometheus' `remote_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Samples that may wait per destination by default: about 25 minutes of
/// a 60-node fleet at 1 s, or a minute and a half of 1,000 nodes.
pub const DEFAULT_QUEUE: usize = 100_000;

/// Samples per request by default (Prometheus' `max_samples_per_send`).
pub const DEFAULT_BATCH: usize = 2_000;

/// Longest accepted `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest accepted `batch` (a request stays a few MiB).
pub const MAX_BATCH: usize = 100_000;

/// Headers the protocol sets itself; a table may not override them.
const PROTOCOL_HEADERS: [&str; 7] = [
    "content-encoding",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "x-prometheus-remote-write-version",
];

/// One `[[remote-write]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's write endpoint, `http://HOST:PORT/PATH`.
    pub url: String,
    /// The `destination` label on `/metrics` and in logs (default: `url`).
    pub name: Option<String>,
    /// Bound on one attempt (default 30 s).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Samples that may wait (default 100,000); when full, the oldest are
    /// dropped.
    pub queue: Option<usize>,
    /// Most samples per request (default 2,000).
    pub batch: Option<usize>,
    /// Extra headers, e.g. a tenant (`X-Scope-OrgID`) or `Authorization`.
    pub headers: Option<BTreeMap<String, String>>,
}

impl RemoteWriteConfig {
    /// A destination at `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: None,
            timeout: None,
            queue: None,
            batch: None,
            headers: None,
        }
    }
}

/// A table that cannot work, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("remote-write {name:?}: key {key}: {reason}")]
pub struct RemoteWriteError {
    /// The destination's name (or url).
    pub name: String,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong, quoting the value.
    pub reason: String,
}

/// A checked destination.
#[derive(Debug, Clone)]
pub struct RemoteWriteSpec {
    /// Its name.
    pub name: String,
    /// Where requests go.
    pub uri: Uri,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Bound on waiting samples.
    pub queue: usize,
    /// Most samples per request.
    pub batch: usize,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Checks every table (names must differ).
pub fn resolve(configs: &[RemoteWriteConfig]) -> Result<Vec<RemoteWriteSpec>, RemoteWriteError> {
    let mut specs: Vec<RemoteWriteSpec> = Vec::with_capacity(configs.len());
    for c in configs {
        let spec = resolve_one(c)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(RemoteWriteError {
                name: spec.name,
                key: "name",
                reason: "two [[remote-write]] tables have this name (or url); give each a `name`"
                    .into(),
            });
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn resolve_one(c: &RemoteWriteConfig) -> Result<RemoteWriteSpec, RemoteWriteError> {
    let name = c.name.clone().unwrap_or_else(|| c.url.clone());
    let bad = |key: &'static str, reason: String| RemoteWriteError {
        name: name.clone(),
        key,
        reason,
    };
    if name.is_empty() {
        return Err(bad("name", "must not be empty".into()));
    }
    let uri: Uri = c
        .url
        .parse()
        .map_err(|e| bad("url", format!("{:?} is not a URL: {e}", c.url)))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(bad(
            "url",
            format!(
                "{:?}: expected http://HOST:PORT/PATH, e.g. http://127.0.0.1:9090/api/v1/write \
                 (https needs TLS, not built yet)",
                c.url
            ),
        ));
    }
    let timeout = c.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(bad(
            "timeout",
            format!(
                "{} must be above 0 and at most {}",
                humantime::format_duration(timeout),
                humantime::format_duration(MAX_TIMEOUT)
            ),
        ));
    }
    let batch = c.batch.unwrap_or(DEFAULT_BATCH);
    if batch == 0 || batch > MAX_BATCH {
        return Err(bad(
            "batch",
            format!("{batch} must be 1..={MAX_BATCH} samples"),
        ));
    }
    let queue = c.queue.unwrap_or(DEFAULT_QUEUE.max(batch));
    if queue < batch {
        return Err(bad(
            "queue",
            format!("{queue} must hold at least one batch ({batch} samples)"),
        ));
    }
    let mut headers = Vec::new();
    for (key, value) in c.headers.iter().flatten() {
        let header = HeaderName::try_from(key.as_str())
            .map_err(|e| bad("headers", format!("{key:?} is not a header name: {e}")))?;
        if PROTOCOL_HEADERS.contains(&header.as_str()) {
            return Err(bad(
                "headers",
                format!("{key:?} is set by the remote_write protocol itself"),
            ));
        }
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| bad("headers", format!("the value of {key:?} is not valid: {e}")))?;
        headers.push((header, value));
    }
    Ok(RemoteWriteSpec {
        name,
        uri,
        timeout,
        queue,
        batch,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<RemoteWriteConfig> {
        #[derive(Deserialize)]
        struct File {
            #[serde(rename = "remote-write")]
            remote_write: Vec<RemoteWriteConfig>,
        }
        toml::from_str::<File>(text).unwrap().remote_write
    }

    #[test]
    fn defaults_and_every_key() {
        let specs = resolve(&parse(
            "[[remote-write]]\nurl = \"http://127.0.0.1:9090/api/v1/write\"\n\
             [[remote-write]]\nurl = \"http://vm:8428/api/v1/write\"\nname = \"vm\"\n\
             timeout = \"5s\"\nqueue = 10\nbatch = 5\nheaders = { \"X-Scope-OrgID\" = \"ops\" }\n",
        ))
        .unwrap();
        assert_eq!(specs[0].name, "http://127.0.0.1:9090/api/v1/write");
        assert_eq!(
            (specs[0].timeout, specs[0].queue, specs[0].batch),
            (DEFAULT_TIMEOUT, DEFAULT_QUEUE, DEFAULT_BATCH)
        );
        let vm = &specs[1];
        assert_eq!((vm.name.as_str(), vm.queue, vm.batch), ("vm", 10, 5));
        assert_eq!(vm.timeout, Duration::from_secs(5));
        assert_eq!(vm.headers[0].0.as_str(), "x-scope-orgid");
        assert_eq!(vm.uri.path(), "/api/v1/write");
    }

    #[test]
    fn a_large_batch_raises_the_default_queue() {
        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.batch = Some(MAX_BATCH);
        assert_eq!(resolve(&[c]).unwrap()[0].queue, MAX_BATCH);
    }

    #[test]
    fn bad_tables_name_the_key_and_the_value() {
        let err = |c: RemoteWriteConfig| resolve(&[c]).unwrap_err();
        let e = err(RemoteWriteConfig::new("https://h/w"));
        assert_eq!(e.key, "url");
        assert!(e.to_string().contains("https://h/w"), "{e}");
        assert_eq!(err(RemoteWriteConfig::new("not a url")).key, "url");

        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.batch = Some(0);
        assert_eq!(err(c).key, "batch");
        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.queue = Some(10);
        c.batch = Some(20);
        assert!(err(c).to_string().contains("at least one batch"));
        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.timeout = Some(Duration::ZERO);
        assert_eq!(err(c).key, "timeout");
        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.headers = Some(BTreeMap::from([("Content-Type".into(), "x".into())]));
        assert!(err(c).to_string().contains("protocol"));
        let mut c = RemoteWriteConfig::new("http://h:1/w");
        c.headers = Some(BTreeMap::from([("bad header".into(), "x".into())]));
        assert_eq!(err(c).key, "headers");

        let same = RemoteWriteConfig::new("http://h:1/w");
        let e = resolve(&[same.clone(), same]).unwrap_err();
        assert_eq!(e.key, "name");
    }

    #[test]
    fn unknown_keys_are_refused() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            #[serde(rename = "remote-write")]
            remote_write: Vec<RemoteWriteConfig>,
        }
        let err =
            toml::from_str::<File>("[[remote-write]]\nurl = \"http://h/w\"\nbatch_size = 3\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("batch_size") && err.contains("line 3"),
            "{err}"
        );
    }
}
