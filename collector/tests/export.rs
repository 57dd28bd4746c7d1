//! The exports over the real path, with no server but ours: a collector
//! on 127.0.0.1 fed by a test agent over gRPC, `/metrics` read over HTTP,
//! remote_write received by a small HTTP server in this test that decodes
//! what it gets (snappy, then protobuf) and answers as the test says, and
//! gRPC reflection v1alpha asked by tonic's reflection client.
//! (Real Prometheus and VictoriaMetrics are in `prometheus.rs`.)

mod inproc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use inproc::{Collector, LIVENESS, TestAgent, http, now_ms, sample, within};
use stacktop_collector::Config;
use stacktop_collector::export::remote_write::RemoteWriteConfig;
use stacktop_collector::export::remote_write::wire::{self, WriteRequest};
use stacktop_proto::Role;

const LOAD: &str = "node_load1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serves_the_fleet_and_drops_a_silent_node() {
    let c = Collector::start(Config::default()).await;
    let mut agent = TestAgent::connect(&c, "web1", &[Role::Web, Role::App], 300).await;
    agent
        .send(
            now_ms(),
            &[
                (LOAD, &[], 0.75),
                ("node_filesystem_used_bytes", &[("mount", "/")], 1e9),
            ],
        )
        .await;
    let text = c.scrape();
    assert_eq!(
        sample(&text, LOAD, r#"node="web1",role="web,app""#),
        Some(0.75),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "node_filesystem_used_bytes",
            r#"mount="/",node="web1",role="web,app""#
        ),
        Some(1e9)
    );
    assert_eq!(
        sample(&text, "stacktop_node_up", r#"node="web1",role="web,app""#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "stacktop_collector_batches_total", ""),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "stacktop_collector_points_total", ""),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "stacktop_collector_agents_connected", ""),
        Some(1.0)
    );
    // A point ingest refuses is counted by reason, and never served.
    agent.send(now_ms(), &[(LOAD, &[], f64::NAN)]).await;
    let text = c.scrape();
    assert_eq!(
        sample(
            &text,
            "stacktop_collector_dropped_points_total",
            r#"reason="non_finite""#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, LOAD, r#"node="web1",role="web,app""#),
        Some(0.75)
    );

    // The agent falls silent: after 3 intervals (0.9 s) the node is down
    // and none of its values is served any more.
    let text = within(LIVENESS, "web1 down on /metrics", async || {
        let text = c.scrape();
        (sample(&text, "stacktop_node_up", r#"node="web1",role="web,app""#) == Some(0.0))
            .then_some(text)
    })
    .await;
    assert_eq!(
        sample(&text, LOAD, r#"node="web1",role="web,app""#),
        None,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "stacktop_node_health",
            r#"node="web1",role="web,app""#
        ),
        Some(4.0)
    );
    drop(agent);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_negotiates_openmetrics_and_refuses_other_requests() {
    let c = Collector::start(Config::default()).await;
    let (status, content_type, body) = http(c.metrics, "GET", "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!body.contains("# EOF"));

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, content_type, body) =
        http(c.metrics, "GET", "/metrics", &[("Accept", accept)]).unwrap();
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _, _) = http(c.metrics, "GET", "/", &[]).unwrap();
    assert_eq!(status, 404);
    let (status, _, _) = http(c.metrics, "GET", "/metricsx", &[]).unwrap();
    assert_eq!(status, 404);
    let (status, _, body) = http(c.metrics, "POST", "/metrics", &[]).unwrap();
    assert_eq!(status, 405, "{body}");
    c.stop().await;
}

#[test]
fn metrics_on_a_public_address_needs_insecure() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stacktop-collector"))
        .args(["--metrics-listen", "0.0.0.0:7412"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics-listen")
            && stderr.contains("0.0.0.0:7412")
            && stderr.contains("--insecure"),
        "{stderr}"
    );
}

/// A remote_write receiver: decodes every request and answers with the
/// status `answer` gives for the request's number (0, 1, ...).
struct Receiver {
    url: String,
    requests: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<WriteRequest>>>,
}

impl Receiver {
    async fn start(answer: fn(usize) -> u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (n, got) = (requests.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (n, got) = (n.clone(), got.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (n, got) = (n.clone(), got.clone());
                    async move {
                        let status =
                            receive(request, answer(n.fetch_add(1, Ordering::SeqCst)), &got).await;
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            url,
            requests,
            accepted,
        }
    }

    /// Every sample accepted: (name, labels without the name) -> [(ts, value)].
    fn samples(&self) -> BTreeMap<(String, String), Vec<(i64, f64)>> {
        let mut out: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
        for request in self.accepted.lock().unwrap().iter() {
            for series in &request.timeseries {
                let name = series
                    .labels
                    .iter()
                    .find(|l| l.name == "__name__")
                    .map(|l| l.value.clone())
                    .unwrap_or_default();
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .filter(|l| l.name != "__name__")
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                out.entry((name, labels.join(",")))
                    .or_default()
                    .extend(series.samples.iter().map(|s| (s.timestamp, s.value)));
            }
        }
        out
    }
}

/// Checks the protocol's headers, decodes the body; keeps it when
/// answering 2xx. Returns the status to answer.
async fn receive(request: Request<Incoming>, status: u16, got: &Mutex<Vec<WriteRequest>>) -> u16 {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let protocol_ok = header("content-encoding") == "snappy"
        && header("content-type") == "application/x-protobuf"
        && header("x-prometheus-remote-write-version") == "0.1.0"
        && header("x-scope-orgid") == "ops";
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let Ok(decoded) = wire::decode(&body) else {
        return 422;
    };
    if !protocol_ok {
        return 415;
    }
    if (200..300).contains(&status) {
        got.lock().unwrap().push(decoded);
    }
    status
}

fn destination(name: &str, url: &str) -> RemoteWriteConfig {
    RemoteWriteConfig {
        name: Some(name.into()),
        batch: Some(50),
        headers: Some(BTreeMap::from([("X-Scope-OrgID".into(), "ops".into())])),
        ..RemoteWriteConfig::new(url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_retries_5xx_gives_up_on_4xx_and_keeps_timestamps() {
    // Two 503s, a 429, then success; and a receiver that refuses all.
    let flaky = Receiver::start(|n| match n {
        0 | 1 => 503,
        2 => 429,
        _ => 204,
    })
    .await;
    let refusing = Receiver::start(|_| 400).await;
    let config = Config {
        remote_write: vec![
            destination("flaky", &flaky.url),
            destination("refusing", &refusing.url),
        ],
        ..Config::default()
    };
    let c = Collector::start(config).await;
    let mut agent = TestAgent::connect(&c, "db1", &[Role::Db], 30_000).await;
    let start = now_ms() - 60_000;
    let mut sent = Vec::new();
    for i in 0..20i64 {
        let ts = start + i * 1_000;
        let value = i as f64 * 0.5;
        agent
            .send(ts, &[(LOAD, &[], value), ("mysql_up", &[], 1.0)])
            .await;
        sent.push((ts, value));
    }
    let key = (LOAD.to_string(), "node=db1,role=db".to_string());
    let got = within(LIVENESS, "every sample at the flaky receiver", async || {
        let samples = flaky.samples();
        (samples.get(&key).map(Vec::len) == Some(sent.len())).then_some(samples)
    })
    .await;
    // Each sample once, with the agent's own timestamp and value.
    assert_eq!(got[&key], sent);
    assert_eq!(got[&("mysql_up".to_string(), key.1.clone())].len(), 20);

    let text = within(LIVENESS, "the refused samples counted", async || {
        let text = c.scrape();
        (sample(
            &text,
            "stacktop_remote_write_dropped_samples_total",
            r#"destination="refusing",reason="rejected""#,
        ) == Some(40.0))
        .then_some(text)
    })
    .await;
    let stat = |name: &str, dest: &str| {
        sample(&text, name, &format!("destination=\"{dest}\"")).unwrap_or(-1.0)
    };
    assert_eq!(
        stat("stacktop_remote_write_sent_samples_total", "flaky"),
        40.0
    );
    assert_eq!(
        stat("stacktop_remote_write_failed_attempts_total", "flaky"),
        3.0
    );
    assert_eq!(stat("stacktop_remote_write_pending_samples", "flaky"), 0.0);
    // A 4xx is not retried: one request per batch sent, no failed attempts.
    assert_eq!(
        stat("stacktop_remote_write_failed_attempts_total", "refusing"),
        0.0
    );
    assert_eq!(
        stat("stacktop_remote_write_sent_samples_total", "refusing"),
        0.0
    );
    assert!(refusing.requests.load(Ordering::SeqCst) >= 1);
    assert!(refusing.requests.load(Ordering::SeqCst) <= 20);
    drop(agent);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_sends_what_is_held_when_the_collector_stops() {
    let receiver = Receiver::start(|_| 200).await;
    let config = Config {
        remote_write: vec![RemoteWriteConfig {
            // Larger than anything sent: only the batch wait or the stop
            // sends it.
            batch: Some(10_000),
            ..destination("r", &receiver.url)
        }],
        ..Config::default()
    };
    let c = Collector::start(config).await;
    let mut agent = TestAgent::connect(&c, "app1", &[Role::App], 30_000).await;
    agent.send(now_ms(), &[(LOAD, &[], 2.5)]).await;
    drop(agent);
    c.stop().await;
    let got = receiver.samples();
    assert_eq!(
        got[&(LOAD.to_string(), "node=app1,role=app".to_string())].len(),
        1,
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_answers_like_v1() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let c = Collector::start(Config::default()).await;
    let mut client = ServerReflectionClient::new(c.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "stacktop.v1.Fleet".into(),
            )),
        },
    ];
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let mut services = Vec::new();
    let mut files = 0;
    while let Some(answer) = tokio::time::timeout(LIVENESS, answers.message())
        .await
        .unwrap()
        .unwrap()
    {
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                services = list.service.into_iter().map(|s| s.name).collect();
            }
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                files += f.file_descriptor_proto.len()
            }
            other => panic!("unexpected answer {other:?}"),
        }
        if !services.is_empty() && files > 0 {
            break;
        }
    }
    for wanted in [
        "stacktop.v1.Ingest",
        "stacktop.v1.Fleet",
        "stacktop.v1.Operator",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == wanted),
            "{wanted} not in {services:?}"
        );
    }
    assert!(files > 0, "no descriptor for stacktop.v1.Fleet");
    c.stop().await;
}

#[test]
fn a_bad_remote_write_table_is_reported_at_its_line() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid_configs/remote_write_https.toml");
    let err = stacktop_collector::FileConfig::load(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("remote_write_https.toml"), "{err}");
    assert!(
        err.contains("line 6"),
        "the second [[remote-write]] table: {err}"
    );
    assert!(
        err.contains("https://mimir.example/api/v1/push") && err.contains("url"),
        "{err}"
    );
}
