//! Access log -> agent -> real gRPC -> collector history, end to end.
//!
//! The test writes an Nginx access log in real time for 10 seconds, a known
//! number of requests (of known status classes) stamped with each second,
//! while an in-process agent tails it and streams to an in-process collector
//! on 127.0.0.1. The collector's history must then hold exactly those counts
//! for exactly those seconds: the log's clock, not the agent's read time.
//!
//! A second test does the same with the load balancer's health checks
//! mixed in: with `health-check-paths` they reach the collector as their
//! own rate and not as requests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stacktop_agent::logs::LogSourceConfig;
use stacktop_proto::v1::HistoryRequest;
use stacktop_proto::v1::fleet_client::FleetClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Seconds written.
const SECONDS: i64 = 10;
/// Liveness bound for waiting on the collector; not a performance claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// Requests written in the `i`-th second, per class: varied so a shifted
/// or merged second cannot pass.
fn plan(i: i64) -> [(u16, u64); 3] {
    [
        (200, 5 + 3 * i as u64),
        (404, (i % 3) as u64),
        (503, (i % 2) as u64),
    ]
}

fn class_of(status: u16) -> &'static str {
    match status / 100 {
        2 => "2xx",
        4 => "4xx",
        5 => "5xx",
        _ => unreachable!(),
    }
}

fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An Nginx `combined` line stamped with `unix` (rendered in +0200 so the
/// zone is honoured, not assumed).
fn line(unix: i64, status: u16, n: u64) -> String {
    line_for(
        unix,
        status,
        n,
        &format!("GET /item/{n}?q=\\\"x\\\" HTTP/1.1"),
        "Mozilla/5.0 (X11; Linux x86_64)",
    )
}

/// An Nginx `combined` line for `request` (the request line as logged).
fn line_for(unix: i64, status: u16, n: u64, request: &str, agent: &str) -> String {
    let local = unix + 2 * 3600;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "10.0.0.{} - - [{:02}/{}/{}:{:02}:{:02}:{:02} +0200] \"{request}\" {status} {} \"-\" \"{agent}\"\n",
        n % 250,
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        100 + n
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes the plan in real time: second `start + i` gets `plan(i)`, spread
/// over a few writes inside that second. Returns the expected counts per
/// (unix second, class).
async fn write_log(path: PathBuf, start: i64) -> BTreeMap<(i64, &'static str), u64> {
    let mut expected = BTreeMap::new();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for i in 0..SECONDS {
        let second = start + i;
        // Wait for the second to begin on the wall clock.
        let wait = second as f64 + 0.05 - unix_now_f64();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let mut lines = Vec::new();
        for (status, count) in plan(i) {
            *expected.entry((second, class_of(status))).or_insert(0) += count;
            for n in 0..count {
                lines.push(line(second, status, n));
            }
        }
        // Three writes per second, the last one half-way through.
        for chunk in lines.chunks(lines.len().div_ceil(3).max(1)) {
            file.write_all(chunk.concat().as_bytes()).unwrap();
            file.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        for class in ["2xx", "4xx", "5xx"] {
            expected.entry((second, class)).or_insert(0);
        }
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_history_holds_exactly_the_requests_written_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    std::fs::write(&path, b"").unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let token = CancellationToken::new();
    let _cancel_on_exit = token.clone().drop_guard();
    let collector = tokio::spawn(stacktop_collector::serve(
        listener,
        stacktop_collector::Config {
            listen: addr,
            ..Default::default()
        },
        token.clone(),
    ));
    let config = stacktop_agent::Config {
        name: Some("web1".into()),
        roles: vec![stacktop_agent::Role::Web],
        collectors: vec![url.clone()],
        interval: Duration::from_millis(500),
        logs: vec![LogSourceConfig {
            path: path.clone(),
            format: "nginx-combined".into(),
            source: Some("nginx".into()),
            grace: Some(Duration::from_secs(1)),
            utc_offset: None,
            health_check_paths: Vec::new(),
        }],
        ..Default::default()
    };
    let agent = tokio::spawn(stacktop_agent::run(config, token.clone()));

    // Start on the next whole second, leaving the agent time to open the file.
    let start = unix_now_f64().ceil() as i64 + 1;
    let expected = write_log(path, start).await;

    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut fleet = FleetClient::new(channel);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let got = loop {
        let got = history(&mut fleet, start).await;
        let last = (start + SECONDS - 1, "2xx");
        if got.contains_key(&last) || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let got: BTreeMap<_, _> = got
        .into_iter()
        .filter(|((second, _), _)| (start..start + SECONDS).contains(second))
        .collect();
    assert_eq!(
        got, expected,
        "per-second counts in the collector's history"
    );

    token.cancel();
    agent.await.unwrap().unwrap();
    collector.await.unwrap().unwrap();
}

/// Health-check seconds written.
const HEALTH_SECONDS: i64 = 5;

/// Writes, in real time from `start`, second `i` with `4 + i` requests for
/// pages and `2 + i % 2` HAProxy health checks (one with a query string).
/// Returns (requests, health checks) per second.
async fn write_with_health_checks(path: PathBuf, start: i64) -> BTreeMap<i64, (u64, u64)> {
    let mut expected = BTreeMap::new();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for i in 0..HEALTH_SECONDS {
        let second = start + i;
        let wait = second as f64 + 0.05 - unix_now_f64();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let (requests, checks) = (4 + i as u64, 2 + (i % 2) as u64);
        let mut text = String::new();
        for n in 0..requests.max(checks) {
            if n < requests {
                text.push_str(&line(second, 200, n));
            }
            if n < checks {
                let target = if n == 0 {
                    "/health?from=lb1"
                } else {
                    "/health"
                };
                text.push_str(&line_for(
                    second,
                    200,
                    n,
                    &format!("GET {target} HTTP/1.0"),
                    "-",
                ));
            }
        }
        file.write_all(text.as_bytes()).unwrap();
        file.flush().unwrap();
        expected.insert(second, (requests, checks));
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_reach_the_collector_as_their_own_rate_not_as_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    std::fs::write(&path, b"").unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let token = CancellationToken::new();
    let _cancel_on_exit = token.clone().drop_guard();
    let collector = tokio::spawn(stacktop_collector::serve(
        listener,
        stacktop_collector::Config {
            listen: addr,
            ..Default::default()
        },
        token.clone(),
    ));
    // The paths as an operator writes them, through the config file (no
    // checks: this test is about the log).
    let config = stacktop_agent::config::parse_str(
        std::path::Path::new("agent.toml"),
        &format!(
            "name = \"web1\"\nroles = [\"web\"]\ncollectors = [{url:?}]\ninterval = \"500ms\"\nchecks = []\n\n[[logs]]\npath = {:?}\nformat = \"nginx-combined\"\nsource = \"nginx\"\ngrace = \"1s\"\nhealth-check-paths = [\"/health\"]\n",
            path.display().to_string()
        ),
    )
    .unwrap();
    assert_eq!(config.checks, Some(Vec::new()));
    let agent = tokio::spawn(stacktop_agent::run(config, token.clone()));

    let start = unix_now_f64().ceil() as i64 + 1;
    let expected = write_with_health_checks(path, start).await;

    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut fleet = FleetClient::new(channel);
    let last = start + HEALTH_SECONDS - 1;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (requests, checks) = loop {
        let requests = per_second(&mut fleet, "http_requests_per_second", start).await;
        let checks = per_second(&mut fleet, "http_health_check_requests_per_second", start).await;
        let done = requests.contains_key(&last) && checks.contains_key(&last);
        if done || tokio::time::Instant::now() > deadline {
            break (requests, checks);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let got: BTreeMap<i64, (u64, u64)> = (start..=last)
        .map(|s| {
            let get = |m: &BTreeMap<i64, f64>| m.get(&s).copied().unwrap_or(-1.0) as u64;
            (s, (get(&requests), get(&checks)))
        })
        .collect();
    assert_eq!(got, expected, "(requests, health checks) per second");

    token.cancel();
    agent.await.unwrap().unwrap();
    collector.await.unwrap().unwrap();
}

/// `series{source="nginx"}` of web1 as unix second -> value, summed over
/// its other labels (the status classes).
async fn per_second(
    fleet: &mut FleetClient<tonic::transport::Channel>,
    series: &str,
    since: i64,
) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    let Ok(reply) = fleet
        .history(HistoryRequest {
            node: "web1".into(),
            series: series.into(),
            labels: vec![stacktop_proto::v1::Label::new("source", "nginx")],
            since_ms: since * 1000,
        })
        .await
    else {
        return out;
    };
    for series in reply.into_inner().series {
        for p in series.points {
            *out.entry(p.timestamp_ms / 1000).or_insert(0.0) += p.value;
        }
    }
    out
}

/// The node's request-rate history as (unix second, class) -> requests.
async fn history(
    fleet: &mut FleetClient<tonic::transport::Channel>,
    since: i64,
) -> BTreeMap<(i64, &'static str), u64> {
    let mut out = BTreeMap::new();
    let Ok(reply) = fleet
        .history(HistoryRequest {
            node: "web1".into(),
            series: "http_requests_per_second".into(),
            labels: vec![stacktop_proto::v1::Label::new("source", "nginx")],
            since_ms: since * 1000,
        })
        .await
    else {
        return out;
    };
    for series in reply.into_inner().series {
        let class = match stacktop_proto::label(&series.labels, "class") {
            Some("2xx") => "2xx",
            Some("4xx") => "4xx",
            Some("5xx") => "5xx",
            _ => continue,
        };
        for p in series.points {
            assert_eq!(
                p.timestamp_ms % 1000,
                0,
                "a second starts on a whole second"
            );
            assert_eq!(p.value.fract(), 0.0, "a one-second count is whole: {p:?}");
            out.insert((p.timestamp_ms / 1000, class), p.value as u64);
        }
    }
    out
}
