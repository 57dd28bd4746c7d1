//! The `haproxy` check: HAProxy's own view of its backends, read from the
//! stats socket (`show stat`) or the stats CSV page (`.../stats;csv`).
//!
//! Both give the same CSV, whose first line names the columns
//! (`# pxname,svname,qcur,...`). Columns are looked up by that name, never
//! by position, so versions that add or move columns still parse. Rows
//! whose `svname` is `FRONTEND` or `BACKEND` are aggregates: server rows
//! become [`BackendServer`]s (sent whole as [`Observation::Backends`]),
//! frontend rows give the request rate.
//!
//! Status: crit when a backend has no server UP; warn when an active
//! (non-backup) server is not UP, or when a backend runs on backup
//! servers only; ok otherwise. Backup servers that are down while actives
//! serve do not warn (that is what backups are for), but they are listed.
//! Messages: "3/3 UP", "web2 DOWN (L4CON), 2/3 UP", and with several
//! backends "be_web: 3/3 UP; be_api: api1 MAINT, 1/2 UP".
//!
//! A read that fails (socket refused or missing, HTTP error, not stats
//! CSV, timeout) is crit with the reason, and the backends become unknown
//! ([`Observation::BackendsUnknown`], the batch's `backends_error`) until a
//! later read succeeds: a dead HAProxy must not keep showing "3/3 UP".
//!
//! Metrics: `haproxy_backend_up{backend,server}` (1 when UP, else 0),
//! `haproxy_server_current_sessions{backend,server}`,
//! `haproxy_server_requests_per_second{backend,server}` (HAProxy's `rate`,
//! new sessions per second) and
//! `haproxy_frontend_requests_per_second{frontend}` (`req_rate`, HTTP
//! requests over the last second).
//!
//! Each server also carries its address (the stats `addr` column) and,
//! from HAProxy's config file ([`cfg`]; `config`, default
//! [`DEFAULT_CONFIG`]), whether HAProxy speaks TLS to it (`ssl`) and
//! verifies its certificate (`verify`). A config that cannot be read, or
//! does not list the server, leaves that unknown with the reason
//! (`ssl_unknown`): never "fine". The file is read at each run, as it is
//! on disk (an edit HAProxy has not reloaded yet is read already). What it
//! says does not change the check's status: plain text behind the LB is a
//! weakness of the stack's design, which the dashboard marks, not a fault.
//!
//! ```toml
//! [[checks]]
//! kind = "haproxy"
//! socket = "/run/haproxy/admin.sock"  # or url = "http://127.0.0.10:8404/stats;csv"
//! config = "/etc/haproxy/haproxy.cfg" # the default
//! ```
//!
//! [`Observation::Backends`]: crate::observe::Observation::Backends
//! [`Observation::BackendsUnknown`]: crate::observe::Observation::BackendsUnknown

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use stacktop_proto::Health;
use stacktop_proto::metrics::{
    HAPROXY_BACKEND_UP, HAPROXY_FRONTEND_REQUESTS, HAPROXY_SERVER_REQUESTS, HAPROXY_SERVER_SESSIONS,
};
use stacktop_proto::v1::BackendServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{Outcome, SpecError, SpecResult, io_words};

pub mod cfg;
use super::http;
use crate::observe::ObservedPoint;

/// Label keys of the HAProxy series. `stacktop_proto::metrics::label` has
/// none for them yet; until it does they are spelt here, once.
pub mod label {
    /// The backend (proxy) a server belongs to.
    pub const BACKEND: &str = "backend";
    /// A backend's server.
    pub const SERVER: &str = "server";
    /// A frontend.
    pub const FRONTEND: &str = "frontend";
}

/// HAProxy stats, from the stats socket or the CSV page: exactly one of
/// the two.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaproxySpec {
    /// Path of the stats socket (`show stat`).
    #[serde(default)]
    pub socket: Option<String>,
    /// URL of the stats CSV page (`.../stats;csv`).
    #[serde(default)]
    pub url: Option<String>,
    /// HAProxy's config file, read for each server's `ssl` and `verify`
    /// (default: [`DEFAULT_CONFIG`]).
    #[serde(default)]
    pub config: Option<String>,
}

/// The config file Debian's haproxy package runs with.
pub const DEFAULT_CONFIG: &str = "/etc/haproxy/haproxy.cfg";

/// One parsed stats CSV.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Every server row, in HAProxy's order.
    pub servers: Vec<BackendServer>,
    /// (frontend, HTTP requests per second) for each frontend that has a
    /// `req_rate`.
    pub frontends: Vec<(String, f64)>,
}

/// Why a stats CSV could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// No `# pxname,svname,...` header line.
    #[error("no \"# pxname,svname,...\" header: not HAProxy stats CSV")]
    NoHeader,
    /// The header lacks a column the check needs.
    #[error("the stats CSV has no {0:?} column")]
    MissingColumn(&'static str),
}

/// Parses HAProxy's stats CSV by column name.
pub fn parse(text: &str) -> std::result::Result<Stats, ParseError> {
    let mut lines = text.lines();
    let header = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("# "))
        .ok_or(ParseError::NoHeader)?;
    let columns: HashMap<&str, usize> = header
        .split(',')
        .enumerate()
        .map(|(i, name)| (name.trim(), i))
        .collect();
    let col = |name: &'static str| columns.get(name).copied();
    let need = |name: &'static str| col(name).ok_or(ParseError::MissingColumn(name));
    let (px, sv, status) = (need("pxname")?, need("svname")?, need("status")?);
    let (scur, rate, req_rate, bck) = (col("scur"), col("rate"), col("req_rate"), col("bck"));
    let check_status = col("check_status").or_else(|| col("chkstatus"));
    let check_desc = col("check_desc");
    let addr = col("addr");

    let mut stats = Stats::default();
    for line in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).map_or("", |s| s.trim());
        let num = |i: Option<usize>| get(i).parse::<f64>().ok();
        match get(Some(sv)) {
            "FRONTEND" => {
                if let Some(r) = num(req_rate) {
                    stats.frontends.push((get(Some(px)).to_string(), r));
                }
            }
            "BACKEND" | "" => {}
            server => stats.servers.push(BackendServer {
                backend: get(Some(px)).to_string(),
                server: server.to_string(),
                status: get(Some(status)).to_string(),
                backup: num(bck).is_some_and(|b| b > 0.0),
                current_sessions: num(scur),
                request_rate: num(rate),
                check_status: get(check_status).to_string(),
                check_description: get(check_desc).to_string(),
                address: get(addr).to_string(),
                ..Default::default()
            }),
        }
    }
    Ok(stats)
}

/// Whether HAProxy sends traffic to a server in this status: `UP` (also
/// `UP 1/2`, going down but still in) or `no check` (no health check).
pub fn is_up(status: &str) -> bool {
    status.starts_with("UP") || status == "no check"
}

/// The outcome (status, message, metrics, backends) of one stats read.
pub fn outcome(stats: Stats) -> Outcome {
    let mut order: Vec<&str> = Vec::new();
    for s in &stats.servers {
        if !order.contains(&s.backend.as_str()) {
            order.push(&s.backend);
        }
    }
    let mut worst = Health::Ok;
    let mut parts = Vec::new();
    for backend in &order {
        let servers: Vec<&BackendServer> = stats
            .servers
            .iter()
            .filter(|s| s.backend == *backend)
            .collect();
        let (actives, backups): (Vec<&BackendServer>, Vec<&BackendServer>) =
            servers.iter().copied().partition(|s| !s.backup);
        let actives_up = actives.iter().filter(|s| is_up(&s.status)).count();
        let backups_up = backups.iter().filter(|s| is_up(&s.status)).count();
        let mut words: Vec<String> = actives
            .iter()
            .filter(|s| !is_up(&s.status))
            .map(|s| describe(s))
            .collect();
        let health = if actives_up + backups_up == 0 {
            Health::Crit
        } else if actives_up < actives.len() {
            Health::Warn
        } else {
            Health::Ok
        };
        let mut summary = format!("{actives_up}/{} UP", actives.len());
        if !backups.is_empty() {
            if actives_up == 0 && backups_up > 0 {
                summary.push_str(", on backup");
            }
            summary.push_str(&format!(", backup {backups_up}/{} UP", backups.len()));
            words.extend(
                backups
                    .iter()
                    .filter(|s| !is_up(&s.status))
                    .map(|s| format!("backup {}", describe(s))),
            );
        }
        words.push(summary);
        worst = worse(worst, health);
        parts.push((backend.to_string(), words.join(", ")));
    }
    let message = match parts.len() {
        0 => "no backend servers".to_string(),
        1 => parts.remove(0).1,
        _ => parts
            .iter()
            .map(|(b, text)| format!("{b}: {text}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    let mut out = Outcome::new(worst, message);
    for s in &stats.servers {
        let labels = [
            (label::BACKEND, s.backend.as_str()),
            (label::SERVER, s.server.as_str()),
        ];
        let up = if is_up(&s.status) { 1.0 } else { 0.0 };
        out.points
            .push(ObservedPoint::now(HAPROXY_BACKEND_UP, &labels, up));
        if let Some(v) = s.current_sessions {
            out.points
                .push(ObservedPoint::now(HAPROXY_SERVER_SESSIONS, &labels, v));
        }
        if let Some(v) = s.request_rate {
            out.points
                .push(ObservedPoint::now(HAPROXY_SERVER_REQUESTS, &labels, v));
        }
    }
    for (frontend, rate) in &stats.frontends {
        out.points.push(ObservedPoint::now(
            HAPROXY_FRONTEND_REQUESTS,
            &[(label::FRONTEND, frontend)],
            *rate,
        ));
    }
    out.backends = Some(stats.servers);
    out
}

/// "web2 DOWN (L4CON)".
fn describe(s: &BackendServer) -> String {
    if s.check_status.is_empty() {
        format!("{} {}", s.server, s.status)
    } else {
        format!("{} {} ({})", s.server, s.status, s.check_status)
    }
}

fn worse(a: Health, b: Health) -> Health {
    let rank = |h: Health| match h {
        Health::Ok | Health::Unspecified => 0,
        Health::Unknown => 1,
        Health::Warn => 2,
        Health::Crit | Health::Down => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Where the stats come from.
#[derive(Debug)]
enum Source {
    Socket(PathBuf),
    Page(http::Fetcher),
}

/// An HAProxy stats check.
#[derive(Debug)]
pub struct HaproxyProbe {
    source: Source,
    /// HAProxy's config file, for the servers' TLS.
    config: PathBuf,
}

impl HaproxyProbe {
    /// Checks the spec (exactly one of `socket` and `url`) and builds the
    /// probe.
    pub fn from_spec(spec: &HaproxySpec) -> SpecResult<Self> {
        let source = match (&spec.socket, &spec.url) {
            (Some(path), None) => Source::Socket(PathBuf::from(path)),
            (None, Some(url)) => Source::Page(http::Fetcher::new(url, "url", None)?),
            (Some(_), Some(_)) | (None, None) => {
                return Err(SpecError::new(
                    "socket",
                    "set exactly one of socket (the stats socket path) or url (the stats CSV page)",
                ));
            }
        };
        let config = PathBuf::from(spec.config.as_deref().unwrap_or(DEFAULT_CONFIG));
        Ok(Self { source, config })
    }

    /// Runs the check once.
    pub async fn run(&self) -> Outcome {
        match self
            .read()
            .await
            .and_then(|text| parse(&text).map_err(|e| e.to_string()))
        {
            Ok(mut stats) => {
                let servers = tokio::fs::read_to_string(&self.config)
                    .await
                    .map(|text| cfg::parse(&text))
                    .map_err(|e| format!("{}: {}", self.config.display(), io_words(&e)));
                add_tls(&mut stats.servers, &servers, &self.config);
                outcome(stats)
            }
            Err(reason) => unread(reason),
        }
    }

    /// The stats CSV, or why it could not be read.
    async fn read(&self) -> Result<String, String> {
        match &self.source {
            Source::Socket(path) => show_stat(path)
                .await
                .map_err(|e| format!("stats socket {}: {}", path.display(), io_words(&e))),
            Source::Page(fetcher) => match fetcher.get().await {
                Ok(r) if r.status.is_success() => Ok(String::from_utf8_lossy(&r.body).into_owned()),
                Ok(r) => Err(format!("HTTP {} from {}", r.status.as_u16(), fetcher.uri())),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// Fills each server's TLS (and its address when the stats had none) from
/// the config's servers, or says why it is unknown: the config could not
/// be read (`servers` is the reason), or does not list the server.
pub fn add_tls(
    stats: &mut [BackendServer],
    servers: &Result<cfg::Servers, String>,
    path: &std::path::Path,
) {
    for s in stats {
        let conf = match servers {
            Ok(servers) => servers.get(&(s.backend.clone(), s.server.clone())),
            Err(reason) => {
                s.ssl_unknown = reason.clone();
                continue;
            }
        };
        match conf {
            Some(conf) => {
                s.ssl = Some(conf.ssl);
                s.ssl_verify = conf.ssl.then_some(conf.verify);
                if s.address.is_empty() {
                    s.address = conf.address.clone();
                }
            }
            None => s.ssl_unknown = format!("not in {}", path.display()),
        }
    }
}

/// The outcome of a run that could not read the stats (socket refused,
/// HTTP error, not stats CSV, timeout): crit with `reason`, and the
/// backends unknown for the same reason. Without that, the collector would
/// keep showing the last sample ("3/3 UP") next to a dead HAProxy.
pub fn unread(reason: String) -> Outcome {
    let mut out = Outcome::crit(reason.clone());
    out.backends_error = Some(reason);
    out
}

/// Sends `show stat` on the stats socket and reads the answer to EOF.
async fn show_stat(path: &std::path::Path) -> std::io::Result<String> {
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    stream.write_all(b"show stat\n").await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_UP: &str = include_str!("../../tests/fixtures/haproxy_show_stat.csv");
    const WEB2_DOWN: &str = include_str!("../../tests/fixtures/haproxy_show_stat_web2_down.csv");
    const PAGE_WEB2_DOWN: &str =
        include_str!("../../tests/fixtures/haproxy_stats_page_web2_down.csv");

    #[test]
    fn real_show_stat_all_up() {
        let stats = parse(ALL_UP).unwrap();
        let names: Vec<&str> = stats.servers.iter().map(|s| s.server.as_str()).collect();
        assert_eq!(names, ["web1", "web2", "web3"]);
        assert_eq!(stats.servers[0].address, "127.0.0.11:8080");
        assert!(stats.servers.iter().all(|s| s.backend == "be_web"
            && s.status == "UP"
            && s.check_status == "L7OK"
            && !s.backup
            && s.current_sessions.is_some()));
        assert_eq!(stats.frontends.len(), 2, "{:?}", stats.frontends);
        let out = outcome(stats);
        assert_eq!((out.status, out.message.as_str()), (Health::Ok, "3/3 UP"));
        assert_eq!(out.backends.as_ref().map(Vec::len), Some(3));
        assert!(out.points.iter().any(|p| p.name == "haproxy_backend_up"
            && p.labels.contains(&("server".into(), "web3".into()))
            && p.value == 1.0));
        assert!(
            out.points
                .iter()
                .any(|p| p.name == "haproxy_frontend_requests_per_second")
        );
    }

    #[test]
    fn real_show_stat_one_down() {
        for text in [WEB2_DOWN, PAGE_WEB2_DOWN] {
            let out = outcome(parse(text).unwrap());
            assert_eq!(out.status, Health::Warn);
            assert_eq!(out.message, "web2 DOWN (L4CON), 2/3 UP");
            let web2 = &out.backends.as_ref().unwrap()[1];
            assert_eq!(web2.check_description, "Layer4 connection problem");
        }
    }

    fn csv(rows: &[&str]) -> String {
        let mut text = "# svname,status,pxname,bck,check_status\n".to_string();
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        text
    }

    #[test]
    fn columns_are_found_by_name() {
        let stats = parse(&csv(&["a,UP,be,0,L7OK", "BACKEND,UP,be,0,"])).unwrap();
        assert_eq!(stats.servers.len(), 1);
        assert_eq!(stats.servers[0].server, "a");
        assert_eq!(stats.servers[0].backend, "be");
        assert_eq!(stats.servers[0].current_sessions, None);
    }

    #[test]
    fn backups_and_crit() {
        // A backup that is down while the active serves: ok, but listed.
        let out = outcome(parse(&csv(&["a,UP,be,0,L7OK", "b,DOWN,be,1,L4CON"])).unwrap());
        assert_eq!(out.status, Health::Ok);
        assert_eq!(out.message, "backup b DOWN (L4CON), 1/1 UP, backup 0/1 UP");
        assert!(out.backends.unwrap()[1].backup);
        // Only the backup serves: warn.
        let out = outcome(parse(&csv(&["a,DOWN,be,0,L4CON", "b,UP,be,1,L7OK"])).unwrap());
        assert_eq!(out.status, Health::Warn);
        assert_eq!(
            out.message,
            "a DOWN (L4CON), 0/1 UP, on backup, backup 1/1 UP"
        );
        // Nothing serves: crit, and several backends are named.
        let out = outcome(
            parse(&csv(&[
                "a,DOWN,be,0,L4CON",
                "x,MAINT,api,0,",
                "y,UP 1/2,api,0,L7OK",
            ]))
            .unwrap(),
        );
        assert_eq!(out.status, Health::Crit);
        assert_eq!(
            out.message,
            "be: a DOWN (L4CON), 0/1 UP; api: x MAINT, 1/2 UP"
        );
    }

    #[tokio::test]
    async fn a_failed_read_makes_the_backends_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let probe = HaproxyProbe::from_spec(&HaproxySpec {
            socket: Some(path.display().to_string()),
            ..Default::default()
        })
        .unwrap();
        let out = probe.run().await;
        let reason = format!("stats socket {}: not found", path.display());
        assert_eq!(
            (out.status, out.message.as_str()),
            (Health::Crit, reason.as_str())
        );
        assert_eq!(out.backends, None);
        assert_eq!(out.backends_error, Some(reason));
        // Something that answers, but not with stats CSV.
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut command = [0u8; 10];
                let _ = stream.read_exact(&mut command).await;
                let _ = stream.write_all(b"Unknown command.\n").await;
            }
        });
        let out = probe.run().await;
        assert_eq!(
            out.backends_error.as_deref(),
            Some("no \"# pxname,svname,...\" header: not HAProxy stats CSV")
        );
        // A good read carries the sample and no error.
        let out = outcome(parse(ALL_UP).unwrap());
        assert_eq!(out.backends_error, None);
    }

    /// A stats socket answering `show stat` with `csv` until the test ends.
    fn answer_show_stat(path: &std::path::Path, csv: &'static str) {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut command = [0u8; 10];
                let _ = stream.read_exact(&mut command).await;
                let _ = stream.write_all(csv.as_bytes()).await;
            }
        });
    }

    #[tokio::test]
    async fn the_servers_tls_comes_from_the_config_or_is_unknown_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("admin.sock");
        answer_show_stat(&socket, ALL_UP);
        let config = dir.path().join("haproxy.cfg");
        let probe = |config: &std::path::Path| {
            HaproxyProbe::from_spec(&HaproxySpec {
                socket: Some(socket.display().to_string()),
                config: Some(config.display().to_string()),
                ..Default::default()
            })
            .unwrap()
        };
        let tls = |out: &Outcome| -> Vec<(Option<bool>, Option<bool>, String)> {
            out.backends
                .as_ref()
                .unwrap()
                .iter()
                .map(|s| (s.ssl, s.ssl_verify, s.ssl_unknown.clone()))
                .collect()
        };

        // No config file: unknown, and why; the check itself is unchanged.
        let out = probe(&config).run().await;
        assert_eq!((out.status, out.message.as_str()), (Health::Ok, "3/3 UP"));
        let missing = format!("{}: not found", config.display());
        assert_eq!(tls(&out), vec![(None, None, missing); 3]);

        // The lab's config: three plain-text servers.
        std::fs::write(
            &config,
            include_str!("../../tests/fixtures/haproxy_lab.cfg"),
        )
        .unwrap();
        let out = probe(&config).run().await;
        assert_eq!(tls(&out), vec![(Some(false), None, String::new()); 3]);

        // web1 behind TLS, unverified; web3 not in the file.
        std::fs::write(
            &config,
            "backend be_web\n  server web1 127.0.0.11:8443 ssl verify none\n  server web2 127.0.0.12:8080\n",
        )
        .unwrap();
        let out = probe(&config).run().await;
        let not_listed = format!("not in {}", config.display());
        assert_eq!(
            tls(&out),
            [
                (Some(true), Some(false), String::new()),
                (Some(false), None, String::new()),
                (None, None, not_listed),
            ]
        );
    }

    #[test]
    fn the_address_comes_from_the_config_when_the_stats_have_none() {
        let mut stats = parse(&csv(&["web1,UP,be,0,L7OK"])).unwrap();
        let servers = cfg::parse("backend be\n server web1 10.0.0.11:80 ssl\n");
        add_tls(&mut stats.servers, &Ok(servers), std::path::Path::new("x"));
        let s = &stats.servers[0];
        assert_eq!(s.address, "10.0.0.11:80");
        assert_eq!((s.ssl, s.ssl_verify), (Some(true), Some(true)));
    }

    #[test]
    fn not_csv() {
        assert_eq!(parse("Unknown command\n"), Err(ParseError::NoHeader));
        assert_eq!(
            parse("# pxname,svname\n"),
            Err(ParseError::MissingColumn("status"))
        );
    }
}
