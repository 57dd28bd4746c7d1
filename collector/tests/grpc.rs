//! The collector over real gRPC on 127.0.0.1: a hand-written test agent
//! sends raw Ingest frames; Fleet calls check what the collector made of
//! them. Timeouts only guard liveness; nothing asserts how long things take.

use std::net::SocketAddr;
use std::time::Duration;

use stacktop_collector::{CancellationToken, Config, serve};
use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::ingest_client::IngestClient;
use stacktop_proto::v1::{
    AgentFrame, Batch, CheckResult, CollectorFrame, FleetSnapshot, FleetTotals, FleetUpdate, Hello,
    HistoryRequest, Label, NodeChange, NodeState, NodeSummary, Point, SeriesDef, SnapshotRequest,
    WatchRequest, Welcome, agent_frame, collector_frame, fleet_update,
};
use stacktop_proto::{Health, Role, now_unix_ms};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

/// Generous bound for "eventually"; a hang fails instead of blocking CI.
const LIVENESS: Duration = Duration::from_secs(20);

struct Collector {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), stacktop_collector::Error>>,
}

async fn start_collector() -> Collector {
    start_collector_with(Config::default()).await
}

async fn start_collector_with(config: Config) -> Collector {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, config, shutdown.clone()));
    Collector {
        addr,
        shutdown,
        task,
    }
}

impl Collector {
    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn fleet(&self) -> FleetClient<Channel> {
        FleetClient::new(self.channel().await)
    }

    /// A snapshot with every node's latest values.
    async fn snapshot(&self) -> FleetSnapshot {
        self.fleet()
            .await
            .snapshot(SnapshotRequest {
                include_latest: true,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn node(&self, name: &str) -> NodeState {
        let snap = self.snapshot().await;
        snap.nodes
            .into_iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("node {name} missing from snapshot"))
    }

    /// Polls snapshots until `pred` holds for node `name`.
    async fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&NodeState) -> bool) {
        let wait = async {
            loop {
                let snap = self.snapshot().await;
                if snap.nodes.iter().any(|n| n.name == name && pred(n)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(LIVENESS, wait)
            .await
            .unwrap_or_else(|_| panic!("node {name} never became {what}"));
    }
}

/// A raw Ingest stream.
struct TestAgent {
    tx: mpsc::Sender<AgentFrame>,
    rx: Streaming<CollectorFrame>,
    welcome: Welcome,
}

/// A Hello. Tests that are not about silence use a long interval so that a
/// slow machine never turns their node DOWN mid-test.
fn hello(node: &str, instance: &str, interval_ms: u32) -> Hello {
    Hello {
        node: node.into(),
        instance_id: instance.into(),
        roles: vec![Role::Web as i32],
        roles_detected: false,
        labels: vec![Label::new("dc", "lab")],
        agent_version: "test".into(),
        interval_ms,
        checks: Vec::new(),
    }
}

/// Opens a stream whose first frame is `first`; on success expects Welcome.
async fn open(collector: &Collector, first: agent_frame::Frame) -> Result<TestAgent, Status> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(AgentFrame { frame: Some(first) }).await.unwrap();
    let mut client = IngestClient::new(collector.channel().await);
    let mut rx = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    let welcome = match next(&mut rx).await? {
        Some(collector_frame::Frame::Welcome(w)) => w,
        other => panic!("expected Welcome, got {other:?}"),
    };
    Ok(TestAgent { tx, rx, welcome })
}

async fn connect(collector: &Collector, hello: Hello) -> Result<TestAgent, Status> {
    open(collector, agent_frame::Frame::Hello(hello)).await
}

/// The fleet-wide numbers of a snapshot or delta.
fn totals(totals: &Option<FleetTotals>) -> &FleetTotals {
    totals.as_ref().expect("no totals")
}

/// The summary a node change carries, whole or partial.
fn change_summary(change: &NodeChange) -> Option<NodeSummary> {
    match (&change.full, &change.status) {
        (Some(full), _) => full.summary,
        (None, Some(status)) => status.summary,
        (None, None) => None,
    }
}

async fn next(
    rx: &mut Streaming<CollectorFrame>,
) -> Result<Option<collector_frame::Frame>, Status> {
    let msg = tokio::time::timeout(LIVENESS, rx.message())
        .await
        .expect("collector answered nothing")?;
    Ok(msg.and_then(|m| m.frame))
}

impl TestAgent {
    /// Sends a batch and returns the seq of the Ack that answers it.
    async fn send(&mut self, batch: Batch) -> u64 {
        self.tx
            .send(AgentFrame {
                frame: Some(agent_frame::Frame::Batch(batch)),
            })
            .await
            .unwrap();
        match next(&mut self.rx).await.unwrap() {
            Some(collector_frame::Frame::Ack(ack)) => ack.seq,
            other => panic!("expected Ack, got {other:?}"),
        }
    }
}

fn def(id: u32, name: &str, labels: &[(&str, &str)]) -> SeriesDef {
    SeriesDef {
        id,
        name: name.into(),
        labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
    }
}

fn point(series_id: u32, value: f64) -> Point {
    Point {
        series_id,
        value,
        timestamp_ms: 0,
    }
}

fn batch(seq: u64, series: Vec<SeriesDef>, points: Vec<Point>) -> Batch {
    Batch {
        seq,
        timestamp_ms: now_unix_ms() + seq as i64,
        series,
        points,
        checks: vec![],
        ..Default::default()
    }
}

fn cpu_batch(seq: u64, value: f64) -> Batch {
    let defs = if seq == 1 {
        vec![def(1, "node_cpu_usage_ratio", &[])]
    } else {
        vec![]
    };
    batch(seq, defs, vec![point(1, value)])
}

#[tokio::test]
async fn agent_data_reaches_snapshot_and_history() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    assert_eq!(agent.welcome.resume_after_seq, 0);
    assert_eq!(agent.welcome.collector_version, stacktop_proto::VERSION);

    let first = Batch {
        checks: vec![CheckResult {
            name: "http:/health".into(),
            kind: "http".into(),
            status: Health::Ok as i32,
            latency_seconds: 0.003,
            message: "200 OK".into(),
            timestamp_ms: now_unix_ms(),
            ..Default::default()
        }],
        ..batch(
            1,
            vec![
                def(1, "node_cpu_usage_ratio", &[]),
                def(2, "node_cpu_usage_ratio", &[("cpu", "0")]),
                def(3, "node_memory_used_bytes", &[]),
                def(4, "node_memory_total_bytes", &[]),
                def(
                    5,
                    "node_network_receive_bytes_per_second",
                    &[("device", "eth0")],
                ),
                def(
                    6,
                    "node_network_receive_bytes_per_second",
                    &[("device", "lo")],
                ),
                def(
                    7,
                    "http_requests_per_second",
                    &[("source", "nginx"), ("class", "2xx")],
                ),
                def(
                    8,
                    "http_requests_per_second",
                    &[("source", "nginx"), ("class", "5xx")],
                ),
            ],
            vec![
                point(1, 0.10),
                point(2, 0.90),
                point(3, 2.0e9),
                point(4, 8.0e9),
                point(5, 1_000.0),
                point(6, 99_999.0),
                point(7, 40.0),
                point(8, 2.0),
            ],
        )
    };
    assert_eq!(agent.send(first).await, 1);
    assert_eq!(agent.send(cpu_batch(2, 0.20)).await, 2);
    // Undefined series ids and non-finite values are skipped; the rest of
    // the batch is stored and acknowledged.
    let messy = batch(
        3,
        vec![],
        vec![point(1, 0.30), point(42, 1.0), point(3, f64::NAN)],
    );
    assert_eq!(agent.send(messy).await, 3);
    // A duplicate is acknowledged (cumulatively) but not re-applied.
    assert_eq!(agent.send(cpu_batch(2, 0.99)).await, 3);

    let snap = c.snapshot().await;
    assert_eq!(
        totals(&snap.totals).collector_version,
        stacktop_proto::VERSION
    );
    let node = &snap.nodes[0];
    assert_eq!(node.name, "web1");
    assert_eq!(node.instance_id, "", "readers are not told instance ids");
    assert!(node.connected);
    assert_eq!(node.health(), Health::Ok);
    assert_eq!(node.roles().collect::<Vec<_>>(), [Role::Web]);
    assert_eq!(node.agent_version, "test");
    assert!(node.peer.starts_with("127.0.0.1:"), "{}", node.peer);
    let s = node.summary.unwrap();
    assert_eq!(s.cpu_usage_ratio, Some(0.30));
    assert_eq!(s.memory_used_ratio, Some(0.25));
    assert_eq!(s.network_receive_bytes_per_second, Some(1_000.0));
    assert_eq!(s.qps, Some(42.0));
    assert_eq!(s.load1, None);
    assert_eq!(node.cpu_recent.len(), 3);
    assert_eq!(node.latest.len(), 8);
    assert_eq!(node.checks.len(), 1);
    let t = totals(&snap.totals);
    assert_eq!(t.tiers.len(), 1);
    assert_eq!(t.tiers[0].role(), Role::Web);
    assert_eq!((t.tiers[0].healthy, t.tiers[0].total), (1, 1));
    assert!(t.tiers[0].spof);
    assert_eq!(t.site(), Health::Ok);

    let mut fleet = c.fleet().await;
    let history = fleet
        .history(HistoryRequest {
            node: "web1".into(),
            series: "node_cpu_usage_ratio".into(),
            labels: vec![],
            since_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.series.len(), 2);
    let total = history.series.iter().find(|s| s.labels.is_empty()).unwrap();
    let values: Vec<f32> = total.points.iter().map(|p| p.value as f32).collect();
    assert_eq!(values, [0.10, 0.20, 0.30]);
    let per_core = fleet
        .history(HistoryRequest {
            node: "web1".into(),
            series: "node_cpu_usage_ratio".into(),
            labels: vec![Label::new("cpu", "0")],
            since_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(per_core.series.len(), 1);

    let err = fleet
        .history(HistoryRequest {
            node: "nope".into(),
            series: "node_cpu_usage_ratio".into(),
            labels: vec![],
            since_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"), "{}", err.message());
    c.shutdown.cancel();
}

#[tokio::test]
async fn a_live_name_is_refused_to_another_instance() {
    let c = start_collector().await;
    let mut first = connect(&c, hello("db1", "first", 30_000)).await.unwrap();
    assert_eq!(first.send(cpu_batch(1, 0.5)).await, 1);

    let err = connect(&c, hello("db1", "second", 30_000))
        .await
        .err()
        .expect("second instance accepted");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("db1"), "{}", err.message());
    assert!(
        !err.message().contains("first"),
        "the holder's instance id would let the refused agent take over: {}",
        err.message()
    );

    // The first agent is untouched and keeps going.
    assert_eq!(first.send(cpu_batch(2, 0.6)).await, 2);
    let node = c.node("db1").await;
    assert_eq!(node.instance_id, "");
    assert!(node.connected);
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.6));
    c.shutdown.cancel();
}

#[tokio::test]
async fn same_instance_reconnect_replaces_the_stream_and_resumes() {
    let c = start_collector().await;
    let mut old = connect(&c, hello("app1", "i-7", 30_000)).await.unwrap();
    for seq in 1..=3 {
        assert_eq!(old.send(cpu_batch(seq, 0.1)).await, seq);
    }
    let mut new = connect(&c, hello("app1", "i-7", 30_000)).await.unwrap();
    assert_eq!(new.welcome.resume_after_seq, 3);

    // The old stream is ended by the collector, saying why.
    let ended = tokio::time::timeout(LIVENESS, async {
        loop {
            match old.rx.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("old stream never ended");
    let status = ended.expect("old stream ended without a status");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().contains("replaced"), "{status:?}");
    // Its late frames are not applied.
    let _ = old
        .tx
        .send(AgentFrame {
            frame: Some(agent_frame::Frame::Batch(cpu_batch(4, 0.99))),
        })
        .await;

    // Series ids are per stream: the new stream defines them again.
    let redefined = batch(
        4,
        vec![def(1, "node_cpu_usage_ratio", &[])],
        vec![point(1, 0.4)],
    );
    assert_eq!(new.send(redefined).await, 4);
    let node = c.node("app1").await;
    assert!(node.connected);
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.4));
    assert_eq!(node.cpu_recent.len(), 4);
    c.shutdown.cancel();
}

#[tokio::test]
async fn a_silent_agent_goes_down_and_comes_back() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("lb1", "i-1", 100)).await.unwrap();
    assert_eq!(agent.send(cpu_batch(1, 0.1)).await, 1);
    // Silent for more than 3 x 100 ms while the stream stays open.
    c.wait_for("lb1", "down", |n| n.health() == Health::Down)
        .await;
    let node = c.node("lb1").await;
    assert!(node.connected, "the stream is still open");
    let snap = c.snapshot().await;
    assert_eq!(totals(&snap.totals).site(), Health::Down);
    assert_eq!(totals(&snap.totals).tiers[0].healthy, 0);

    // Speaking again brings it back by itself.
    let mut seq = 2;
    let back = tokio::time::timeout(LIVENESS, async {
        loop {
            agent.send(cpu_batch(seq, 0.2)).await;
            seq += 1;
            if c.node("lb1").await.health() == Health::Ok {
                return;
            }
        }
    })
    .await;
    assert!(back.is_ok(), "node never came back");
    c.shutdown.cancel();
}

async fn next_update(watch: &mut Streaming<FleetUpdate>) -> fleet_update::Update {
    tokio::time::timeout(LIVENESS, watch.message())
        .await
        .expect("no fleet update")
        .unwrap()
        .expect("watch ended")
        .update
        .unwrap()
}

#[tokio::test]
async fn watch_sends_a_snapshot_then_deltas() {
    let c = start_collector().await;
    let mut before = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    assert_eq!(before.send(cpu_batch(1, 0.1)).await, 1);

    let mut watch = c
        .fleet()
        .await
        .watch(WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    match next_update(&mut watch).await {
        fleet_update::Update::Snapshot(s) => {
            assert_eq!(s.nodes.len(), 1);
            assert_eq!(s.nodes[0].name, "web1");
        }
        other => panic!("expected a snapshot first, got {other:?}"),
    }

    let mut other = connect(&c, hello("web2", "i-2", 30_000)).await.unwrap();
    for seq in 1..=5 {
        other.send(cpu_batch(seq, seq as f64 / 10.0)).await;
    }
    // Deltas name web2 (in full) and carry tiers and site; eventually the
    // newest value arrives (intermediate ones may be skipped).
    let found = tokio::time::timeout(LIVENESS, async {
        loop {
            match next_update(&mut watch).await {
                fleet_update::Update::Delta(d) => {
                    assert!(!totals(&d.totals).tiers.is_empty());
                    assert!(d.changed.iter().all(|n| n.name != "web1"));
                    if let Some(n) = d.changed.iter().find(|n| n.name == "web2")
                        && change_summary(n).unwrap().cpu_usage_ratio == Some(0.5)
                    {
                        assert_eq!(totals(&d.totals).tiers[0].total, 2);
                        return;
                    }
                }
                other => panic!("expected deltas after the snapshot, got {other:?}"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "web2 never showed up in a delta");
    c.shutdown.cancel();
}

#[tokio::test]
async fn a_garbage_first_frame_is_refused_and_harms_no_one() {
    let c = start_collector().await;
    let mut good = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    assert_eq!(good.send(cpu_batch(1, 0.1)).await, 1);

    let err = open(&c, agent_frame::Frame::Batch(cpu_batch(1, 0.9)))
        .await
        .err()
        .expect("a Batch before Hello was accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("Hello"), "{}", err.message());

    let mut bad_hello = hello("", "i-2", 30_000);
    bad_hello.node.clear();
    let err = connect(&c, bad_hello)
        .await
        .err()
        .expect("empty name accepted");
    assert_eq!(err.code(), Code::InvalidArgument);

    assert_eq!(good.send(cpu_batch(2, 0.2)).await, 2);
    let snap = c.snapshot().await;
    assert_eq!(snap.nodes.len(), 1);
    assert_eq!(snap.nodes[0].summary.unwrap().cpu_usage_ratio, Some(0.2));
    c.shutdown.cancel();
}

#[tokio::test]
async fn shutdown_ends_agent_and_watch_streams() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    assert_eq!(agent.send(cpu_batch(1, 0.1)).await, 1);
    let mut watch = c
        .fleet()
        .await
        .watch(WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    next_update(&mut watch).await;

    c.shutdown.cancel();
    let agent_end = tokio::time::timeout(LIVENESS, async {
        loop {
            match agent.rx.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("agent stream stayed open after shutdown");
    // Agents are told to come back later.
    let status = agent_end.expect("agent stream ended without a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let ended = tokio::time::timeout(LIVENESS, async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "watch stayed open after shutdown");
    let result = tokio::time::timeout(LIVENESS, c.task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap();
    result.unwrap();
}

#[tokio::test]
async fn grpc_health_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let c = start_collector().await;
    let mut health = HealthClient::new(c.channel().await);
    for service in ["stacktop.v1.Ingest", "stacktop.v1.Fleet"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    c.shutdown.cancel();
}

#[tokio::test]
async fn agents_beyond_max_agents_are_refused_until_one_leaves() {
    let c = start_collector_with(Config {
        max_agents: 1,
        ..Config::default()
    })
    .await;
    let first = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    let err = connect(&c, hello("web2", "i-2", 30_000))
        .await
        .err()
        .expect("second agent accepted over the limit");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains('1'), "{}", err.message());

    // When the first agent leaves, its permit comes back.
    drop(first);
    let again = tokio::time::timeout(LIVENESS, async {
        loop {
            match connect(&c, hello("web2", "i-2", 30_000)).await {
                Ok(agent) => return agent,
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(again.is_ok(), "the permit never came back");
    c.shutdown.cancel();
}

#[tokio::test]
async fn an_oversized_frame_ends_only_its_own_stream() {
    let c = start_collector().await;
    let mut good = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    let mut bad = connect(&c, hello("web2", "i-2", 30_000)).await.unwrap();
    let huge = def(1, "node_cpu_usage_ratio", &[("junk", &"x".repeat(5 << 20))]);
    bad.tx
        .send(AgentFrame {
            frame: Some(agent_frame::Frame::Batch(batch(1, vec![huge], vec![]))),
        })
        .await
        .unwrap();
    let err = loop {
        match next(&mut bad.rx).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    assert_eq!(good.send(cpu_batch(1, 0.1)).await, 1);
    c.wait_for("web2", "disconnected", |n| !n.connected).await;
    assert!(c.node("web1").await.connected);
    c.shutdown.cancel();
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let c = start_collector().await;
    let mut client = ServerReflectionClient::new(c.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "stacktop.v1.Ingest",
        "stacktop.v1.Fleet",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in {names:?}"
        );
    }
    c.shutdown.cancel();
}

/// One point at an explicit time.
fn point_at(series_id: u32, value: f64, timestamp_ms: i64) -> Point {
    Point {
        series_id,
        value,
        timestamp_ms,
    }
}

impl Collector {
    /// `(timestamp, value)` of every stored point of `series` on `node`.
    async fn history(&self, node: &str, series: &str) -> Vec<(i64, f64)> {
        self.fleet()
            .await
            .history(HistoryRequest {
                node: node.into(),
                series: series.into(),
                labels: vec![],
                since_ms: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .series
            .into_iter()
            .flat_map(|s| s.points)
            .map(|p| (p.timestamp_ms, p.value))
            .collect()
    }
}

#[tokio::test]
async fn a_point_from_the_far_future_is_skipped_and_later_points_still_land() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    let now = now_unix_ms();
    let ten_years = 10 * 365 * 24 * 3600 * 1000;
    let defs = vec![def(1, "node_cpu_usage_ratio", &[])];
    agent
        .send(batch(1, defs, vec![point_at(1, 0.875, now + ten_years)]))
        .await;
    agent
        .send(batch(2, vec![], vec![point_at(1, 0.25, now + 1)]))
        .await;
    agent
        .send(batch(3, vec![], vec![point_at(1, 0.375, now + 2)]))
        .await;
    let node = c.node("web1").await;
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.375));
    let history = c.history("web1", "node_cpu_usage_ratio").await;
    assert_eq!(history, [(now + 1, 0.25), (now + 2, 0.375)]);
    c.shutdown.cancel();
}

#[tokio::test]
async fn values_that_cannot_be_kept_honestly_are_skipped() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    let now = now_unix_ms();
    let defs = vec![
        def(1, "node_cpu_usage_ratio", &[]),
        def(2, "node_memory_used_bytes", &[]),
    ];
    agent
        .send(batch(
            1,
            defs,
            vec![point_at(1, 0.5, now), point_at(2, 1e9, now)],
        ))
        .await;
    // Beyond f32 (history would serve infinity), a negative ratio, a
    // negative byte count: each skipped.
    agent
        .send(batch(
            2,
            vec![],
            vec![
                point_at(2, 1e308, now + 1),
                point_at(1, -0.5, now + 2),
                point_at(2, -1.0, now + 3),
            ],
        ))
        .await;
    let node = c.node("web1").await;
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.5));
    assert_eq!(
        c.history("web1", "node_cpu_usage_ratio").await,
        [(now, 0.5)]
    );
    assert_eq!(
        c.history("web1", "node_memory_used_bytes").await,
        [(now, 1e9)]
    );
    c.shutdown.cancel();
}

#[tokio::test]
async fn an_unbelievable_seq_ends_the_stream_and_the_agent_resumes_where_it_was() {
    let c = start_collector().await;
    let mut agent = connect(&c, hello("db1", "i-1", 30_000)).await.unwrap();
    for seq in 1..=3 {
        assert_eq!(agent.send(cpu_batch(seq, 0.1)).await, seq);
    }
    // Whoever learned the instance id sends seq 2^64-1 on its stream.
    let mut intruder = connect(&c, hello("db1", "i-1", 30_000)).await.unwrap();
    intruder
        .tx
        .send(AgentFrame {
            frame: Some(agent_frame::Frame::Batch(cpu_batch(u64::MAX, 0.99))),
        })
        .await
        .unwrap();
    let err = next(&mut intruder.rx)
        .await
        .expect_err("an impossible seq accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("seq"), "{}", err.message());
    // The real agent reconnects and is told to resume after 3, not 2^64-1.
    let mut again = connect(&c, hello("db1", "i-1", 30_000)).await.unwrap();
    assert_eq!(again.welcome.resume_after_seq, 3);
    // Series ids belong to a stream: the new one defines its own.
    let mut fourth = cpu_batch(1, 0.25);
    fourth.seq = 4;
    assert_eq!(again.send(fourth).await, 4);
    let node = c.node("db1").await;
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.25));
    c.shutdown.cancel();
}

#[tokio::test]
async fn a_new_agent_taking_a_name_over_does_not_mix_its_backlog_in() {
    let c = start_collector().await;
    let now = now_unix_ms();
    let mut first = connect(&c, hello("app1", "first", 100)).await.unwrap();
    let defs = vec![def(1, "node_cpu_usage_ratio", &[])];
    first
        .send(batch(
            1,
            defs.clone(),
            (0..5)
                .map(|s| point_at(1, 0.125, now + s * 1_000))
                .collect(),
        ))
        .await;
    // The first agent dies; a second one with the same name, refused while
    // the first was alive, now takes over and sends its backlog.
    drop(first);
    c.wait_for("app1", "down", |n| n.health() == Health::Down)
        .await;
    let mut second = connect(&c, hello("app1", "second", 100)).await.unwrap();
    second
        .send(batch(
            1,
            defs,
            (0..7)
                .map(|s| point_at(1, 0.875, now + s * 1_000 + 500))
                .collect(),
        ))
        .await;
    let history = c.history("app1", "node_cpu_usage_ratio").await;
    let firsts: Vec<_> = (0..5).map(|s| (now + s * 1_000, 0.125)).collect();
    let seconds: Vec<_> = (4..7).map(|s| (now + s * 1_000 + 500, 0.875)).collect();
    assert_eq!(
        history,
        [firsts, seconds].concat(),
        "one process's points per second"
    );
    c.shutdown.cancel();
}

#[tokio::test]
async fn a_batch_beyond_the_limits_ends_only_its_stream() {
    let c = start_collector().await;
    let mut honest = connect(&c, hello("web1", "i-1", 30_000)).await.unwrap();
    assert_eq!(honest.send(cpu_batch(1, 0.5)).await, 1);

    let mut hostile = connect(&c, hello("junk", "i-2", 30_000)).await.unwrap();
    // A label a kilobyte long: the definition is refused, its points with it.
    let long = "x".repeat(1024);
    let defs = vec![
        def(1, "node_cpu_usage_ratio", &[("cpu", long.as_str())]),
        def(2, "node_load1", &[]),
    ];
    assert_eq!(
        hostile
            .send(batch(1, defs, vec![point(1, 0.5), point(2, 1.0)]))
            .await,
        1
    );
    let junk = c.node("junk").await;
    assert_eq!(
        junk.summary.and_then(|s| s.cpu_usage_ratio),
        None,
        "the refused series stored nothing"
    );
    // 100,001 points in one batch.
    let many = (0..100_001).map(|_| point(2, 1.0)).collect();
    hostile
        .tx
        .send(AgentFrame {
            frame: Some(agent_frame::Frame::Batch(batch(2, vec![], many))),
        })
        .await
        .unwrap();
    let err = next(&mut hostile.rx).await.expect_err("accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("100001 points"), "{}", err.message());

    // The honest agent never noticed.
    assert_eq!(honest.send(cpu_batch(2, 0.25)).await, 2);
    let node = c.node("web1").await;
    assert_eq!(node.summary.unwrap().cpu_usage_ratio, Some(0.25));
    c.shutdown.cancel();
}
