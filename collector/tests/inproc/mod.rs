//! Helpers shared by the in-process export tests (export.rs,
//! prometheus.rs): an in-process collector on 127.0.0.1 ephemeral ports (gRPC and `/metrics`), a hand-written agent
//! that sends raw Ingest frames over real gRPC, a plain HTTP client, and
//! processes that are killed by their own handle when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stacktop_collector::{CancellationToken, Config, Listeners, serve_listeners};
use stacktop_proto::v1::ingest_client::IngestClient;
use stacktop_proto::v1::{
    AgentFrame, Batch, CollectorFrame, Hello, Label, Point, SeriesDef, agent_frame, collector_frame,
};
use stacktop_proto::{Role, now_unix_ms};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

/// Bound for "eventually": a hang fails the test instead of blocking CI.
pub const LIVENESS: Duration = Duration::from_secs(60);

/// A collector served in this process; stopped when dropped.
pub struct Collector {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), stacktop_collector::Error>>>,
}

impl Collector {
    /// Serves `config` with gRPC and `/metrics` on 127.0.0.1:0.
    pub async fn start(config: Config) -> Self {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, metrics_addr) = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_listeners(
            Listeners {
                grpc,
                metrics: Some(metrics),
            },
            config,
            shutdown.clone(),
        ));
        Self {
            grpc: grpc_addr,
            metrics: metrics_addr,
            shutdown,
            task: Some(task),
        }
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// `GET /metrics` in the Prometheus text format.
    pub fn scrape(&self) -> String {
        let (status, _, body) = http(self.metrics, "GET", "/metrics", &[]).expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Stops the collector and waits for it (remote_write writers flush
    /// within their grace).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIVENESS, task)
                .await
                .expect("collector did not stop")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The value of the sample `name{labels}` (labels exactly as written,
/// e.g. `node="web1",role="web"`) in a text exposition.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

/// One point as a test sends it: series name, labels, value.
pub type TestPoint<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// An agent speaking raw Ingest frames.
pub struct TestAgent {
    tx: mpsc::Sender<AgentFrame>,
    rx: Streaming<CollectorFrame>,
    pub seq: u64,
    defined: Vec<(String, Vec<(String, String)>)>,
}

impl TestAgent {
    /// Connects as `node` with `roles`, sending every `interval_ms`.
    pub async fn connect(
        collector: &Collector,
        node: &str,
        roles: &[Role],
        interval_ms: u32,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16);
        let hello = Hello {
            node: node.into(),
            instance_id: format!("{node}-test"),
            roles: roles.iter().map(|&r| r as i32).collect(),
            roles_detected: false,
            labels: vec![Label::new("dc", "lab")],
            agent_version: "test".into(),
            interval_ms,
            checks: Vec::new(),
        };
        tx.send(AgentFrame {
            frame: Some(agent_frame::Frame::Hello(hello)),
        })
        .await
        .unwrap();
        let mut client = IngestClient::new(collector.channel().await);
        let mut rx = client
            .connect(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        match next(&mut rx).await {
            Some(collector_frame::Frame::Welcome(_)) => {}
            other => panic!("expected Welcome, got {other:?}"),
        }
        Self {
            tx,
            rx,
            seq: 0,
            defined: Vec::new(),
        }
    }

    /// Sends one batch of `points` (series name, labels, value), all
    /// stamped `timestamp_ms`; waits for its Ack.
    pub async fn send(&mut self, timestamp_ms: i64, points: &[TestPoint<'_>]) {
        let mut series = Vec::new();
        let mut out = Vec::new();
        for &(name, labels, value) in points {
            let labels: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let key = (name.to_string(), labels);
            let id = match self.defined.iter().position(|d| *d == key) {
                Some(id) => id,
                None => {
                    series.push(SeriesDef {
                        id: self.defined.len() as u32,
                        name: key.0.clone(),
                        labels: key.1.iter().map(|(k, v)| Label::new(k, v)).collect(),
                    });
                    self.defined.push(key);
                    self.defined.len() - 1
                }
            };
            out.push(Point {
                series_id: id as u32,
                value,
                timestamp_ms,
            });
        }
        self.seq += 1;
        let batch = Batch {
            seq: self.seq,
            timestamp_ms,
            series,
            points: out,
            ..Default::default()
        };
        self.tx
            .send(AgentFrame {
                frame: Some(agent_frame::Frame::Batch(batch)),
            })
            .await
            .unwrap();
        match next(&mut self.rx).await {
            Some(collector_frame::Frame::Ack(ack)) => assert_eq!(ack.seq, self.seq),
            other => panic!("expected Ack, got {other:?}"),
        }
    }
}

async fn next(rx: &mut Streaming<CollectorFrame>) -> Option<collector_frame::Frame> {
    tokio::time::timeout(LIVENESS, rx.message())
        .await
        .expect("the collector answered nothing")
        .expect("the stream failed")
        .and_then(|m| m.frame)
}

/// Unix ms now.
pub fn now_ms() -> i64 {
    now_unix_ms()
}

/// One HTTP/1.0 request to 127.0.0.1; (status, content-type, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some((status, content_type, body.to_string()))
}

/// `s` percent-encoded for a URL query.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Polls `f` until it gives a value or `limit` passes (then panics,
/// saying what was awaited).
pub async fn within<T>(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
            return v;
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the server started
/// with it binds it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process this test started; killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self { child }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a test that needs the program at `path` may skip here: it
/// panics instead with `STACKTOP_LAB=require` (CI).
pub fn skip_without(what: &str, path: &str) -> bool {
    if Path::new(path).exists() {
        return false;
    }
    if std::env::var("STACKTOP_LAB").as_deref() == Ok("require") {
        panic!("{what} ({path}) is required (STACKTOP_LAB=require) but not installed");
    }
    eprintln!("skipped: {what} is not installed ({path}); `.ci/run` installs it");
    true
}
