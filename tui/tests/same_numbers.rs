//! The dashboard and `stacktop status` show exactly the collector's
//! numbers, and derive none of their own: a real collector on 127.0.0.1,
//! a hand-written agent stream whose values exercise the rules that used to
//! be computed twice (loopback devices in the `lo0` and `lo:1` styles, a
//! log source that stopped reporting, swap), then the same node read three
//! ways: `Fleet.Snapshot`, the `stacktop status --json` binary, and the
//! dashboard's own Watch path rendered into a `TestBackend`.
//!
//! Also: `stacktop status` exits 1 when the site is crit with no node down,
//! and the detail poller's charts come from the same stream through
//! `Fleet.History` (requests summed over both logs, loopback left out, and
//! "no request time" for a log without latency).

#![cfg(feature = "embedded")]

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::app::{Action, App};
use stacktop::format;
use stacktop::model::SourceId;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{
    AgentFrame, Batch, CheckResult, FleetSnapshot, Hello, Label, NodeState, NodeSummary, Point,
    SeriesDef, SnapshotRequest, agent_frame,
};
use stacktop_proto::{Health, Role, metrics, now_unix_ms};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Liveness bound for every wait; never a performance assertion. The stale
/// log source needs 10 s to count as stale.
const PATIENCE: Duration = Duration::from_secs(30);

/// A collector on 127.0.0.1:0, stopped when dropped.
struct Collector {
    addr: SocketAddr,
    token: CancellationToken,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        tokio::spawn(stacktop_collector::serve(
            listener,
            Default::default(),
            token.clone(),
        ));
        Self { addr, token }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn snapshot(&self) -> FleetSnapshot {
        let client = ClientConfig::new(self.url());
        let channel = client.connect().await.unwrap();
        client
            .fleet(channel)
            .snapshot(SnapshotRequest::default())
            .await
            .unwrap()
            .into_inner()
    }

    async fn wait_for(&self, what: &str, ready: impl Fn(&FleetSnapshot) -> bool) -> FleetSnapshot {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let snap = self.snapshot().await;
            if ready(&snap) {
                return snap;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {snap:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The series the test agent defines, in id order.
const SERIES: &[(&str, &[(&str, &str)])] = &[
    (metrics::CPU_USAGE, &[]),
    (metrics::MEMORY_USED, &[]),
    (metrics::MEMORY_TOTAL, &[]),
    (metrics::SWAP_USED, &[]),
    (metrics::SWAP_TOTAL, &[]),
    (metrics::NETWORK_RECEIVE, &[("device", "eth0")]),
    (metrics::NETWORK_RECEIVE, &[("device", "lo")]),
    (metrics::NETWORK_RECEIVE, &[("device", "lo0")]),
    (metrics::NETWORK_RECEIVE, &[("device", "lo:1")]),
    (metrics::NETWORK_TRANSMIT, &[("device", "eth0")]),
    (metrics::NETWORK_TRANSMIT, &[("device", "lo0")]),
    (
        metrics::HTTP_REQUESTS,
        &[("source", "nginx"), ("class", "2xx")],
    ),
    (
        metrics::HTTP_REQUESTS,
        &[("source", "nginx"), ("class", "5xx")],
    ),
    // A second access log that reports once and then stops.
    (
        metrics::HTTP_REQUESTS,
        &[("source", "old"), ("class", "2xx")],
    ),
];

/// The values every batch carries, by series id; the `old` source only in
/// the first batch.
const VALUES: &[f64] = &[
    0.4213, 3.0e9, 8.0e9, 1.5e9, 4.0e9, 1_234.5, 9.0e6, 8.0e6, 7.0e6, 4_321.0, 6.0e6, 37.0, 3.0,
    500.0,
];

fn check(name: &str, kind: &str, status: Health) -> CheckResult {
    CheckResult {
        name: name.into(),
        kind: kind.into(),
        status: status as i32,
        message: format!("{name} {status}"),
        timestamp_ms: now_unix_ms(),
        interval_ms: 1_000,
        ..Default::default()
    }
}

/// Streams batches for `node` every 200 ms until `stop`: constant system
/// values, one nginx log second per batch, `checks` with every batch.
fn agent(
    collector: &Collector,
    node: &str,
    roles: &[Role],
    checks: Vec<CheckResult>,
    stop: CancellationToken,
) {
    let client = ClientConfig::new(collector.url());
    let hello = Hello {
        node: node.into(),
        instance_id: format!("{node}-test"),
        roles: roles.iter().map(|&r| r as i32).collect(),
        agent_version: "test".into(),
        interval_ms: 1_000,
        ..Default::default()
    };
    tokio::spawn(async move {
        let (tx, rx) = mpsc::channel(16);
        tx.send(AgentFrame {
            frame: Some(agent_frame::Frame::Hello(hello)),
        })
        .await
        .unwrap();
        let channel = client.connect().await.unwrap();
        let mut inbound = client
            .ingest(channel)
            .connect(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
        let mut seq = 0u64;
        while !stop.is_cancelled() {
            seq += 1;
            let now = now_unix_ms();
            let second = (now / 1_000 - 2) * 1_000;
            let points = VALUES
                .iter()
                .enumerate()
                .filter(|&(id, _)| seq == 1 || id < VALUES.len() - 1)
                .map(|(id, &value)| Point {
                    series_id: id as u32,
                    value,
                    timestamp_ms: if SERIES[id].0 == metrics::HTTP_REQUESTS {
                        second
                    } else {
                        0
                    },
                })
                .collect();
            let series = if seq == 1 {
                SERIES
                    .iter()
                    .enumerate()
                    .map(|(id, (name, labels))| SeriesDef {
                        id: id as u32,
                        name: (*name).into(),
                        labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let batch = Batch {
                seq,
                timestamp_ms: now,
                series,
                points,
                checks: checks
                    .iter()
                    .map(|c| CheckResult {
                        timestamp_ms: now,
                        ..c.clone()
                    })
                    .collect(),
                ..Default::default()
            };
            let frame = AgentFrame {
                frame: Some(agent_frame::Frame::Batch(batch)),
            };
            if tx.send(frame).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn status(url: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktop"));
    cmd.args(["status", "--collector", url]).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run stacktop status"))
        .await
        .unwrap()
}

fn web1(snap: &FleetSnapshot) -> Option<&NodeState> {
    snap.nodes.iter().find(|n| n.name == "web1")
}

/// The numbers compared, from a summary.
fn shown(s: &NodeSummary) -> [Option<f64>; 7] {
    [
        s.cpu_usage_ratio,
        s.memory_used_ratio,
        s.network_receive_bytes_per_second,
        s.network_transmit_bytes_per_second,
        s.qps,
        s.swap_used_bytes,
        s.swap_total_bytes,
    ]
}

fn screen_text(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    let width = buffer.area.width as usize;
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_status_show_exactly_the_collectors_numbers() {
    let collector = Collector::start().await;
    let url = collector.url();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    agent(
        &collector,
        "web1",
        &[Role::Web],
        vec![check("nginx", "nginx", Health::Ok)],
        stop.clone(),
    );

    // The `old` source counts at first, then goes stale and drops out.
    collector
        .wait_for("both log sources counted", |s| {
            web1(s).and_then(|n| n.summary?.qps) == Some(540.0)
        })
        .await;
    let snap = collector
        .wait_for("the old log source stale", |s| {
            web1(s).and_then(|n| n.summary?.qps) == Some(40.0)
        })
        .await;
    let truth = web1(&snap).unwrap().summary.unwrap();
    // The collector's rules: loopback in every style left out, swap as sent.
    assert_eq!(truth.network_receive_bytes_per_second, Some(1_234.5));
    assert_eq!(truth.network_transmit_bytes_per_second, Some(4_321.0));
    assert_eq!(truth.memory_used_ratio, Some(0.375));
    assert_eq!(truth.swap_used_bytes, Some(1.5e9));
    assert_eq!(truth.swap_total_bytes, Some(4.0e9));

    // `stacktop status --json`: the same numbers, key by key.
    let out = status(&url, &["--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = &json["nodes"][0];
    assert_eq!(node["name"], "web1");
    let keys = [
        "cpu_usage_ratio",
        "memory_used_ratio",
        "network_receive_bytes_per_second",
        "network_transmit_bytes_per_second",
        "qps",
        "swap_used_bytes",
        "swap_total_bytes",
    ];
    for (key, value) in keys.iter().zip(shown(&truth)) {
        assert_eq!(node[key].as_f64(), value, "status --json {key}: {node:#}");
    }
    // The table too.
    let out = status(&url, &[]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().find(|l| l.contains("web1")).unwrap();
    for text in [
        format::percent(truth.cpu_usage_ratio),
        format::percent(truth.memory_used_ratio),
        format::rate(truth.qps),
    ] {
        assert!(row.contains(&text), "{text:?} not in {row:?}");
    }

    // The dashboard's own path: Watch into the app, rendered.
    let (tx, mut rx) = mpsc::channel(64);
    let token = CancellationToken::new();
    let _watching = token.clone().drop_guard();
    tokio::spawn(stacktop::client::watch_fleet(
        SourceId::PRIMARY,
        ClientConfig::new(&url),
        tx,
        token.clone(),
    ));
    let mut app = App::new(&url, now_unix_ms());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let model_summary = app
            .node(&"web1".into())
            .and_then(|n| n.summary)
            .map(|s| shown(&s));
        if model_summary == Some(shown(&truth)) {
            break;
        }
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the dashboard never showed {truth:?}: {app:#?}"))
            .expect("watching");
        if let Some(action) = app.action_for(event) {
            app.update(action);
        }
    }
    app.update(Action::Tick(now_unix_ms()));
    app.update(Action::Resize {
        width: 200,
        height: 50,
    });
    // The nodes view: the table with every number (the topology, the
    // default screen, shows fewer).
    app.update(Action::View(2));
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    terminal
        .draw(|frame| stacktop::ui::draw(frame, &app))
        .unwrap();
    let lines = screen_text(&terminal);
    let row = lines
        .iter()
        .find(|l| l.contains("web1"))
        .unwrap_or_else(|| panic!("no web1 row: {lines:#?}"));
    for text in [
        format::percent(truth.cpu_usage_ratio),
        format::percent(truth.memory_used_ratio),
        format::byte_rate(truth.network_receive_bytes_per_second),
        format::byte_rate(truth.network_transmit_bytes_per_second),
        format::rate(truth.qps),
    ] {
        assert!(row.contains(&text), "{text:?} not in {row:?}");
    }
    // The detail's Now box: the swap, as the collector says.
    app.update(Action::Open);
    terminal
        .draw(|frame| stacktop::ui::draw(frame, &app))
        .unwrap();
    let swap = format!(
        "{} of {}",
        format::bytes(truth.swap_used_bytes),
        format::bytes(truth.swap_total_bytes)
    );
    let lines = screen_text(&terminal);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("swap") && l.contains(&swap)),
        "{swap:?} not on the detail screen: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fails_on_a_crit_site_with_no_node_down() {
    let collector = Collector::start().await;
    let url = collector.url();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    // Two web servers, one whose nginx fails: the web tier lost its
    // redundancy (crit), and no node is down.
    agent(
        &collector,
        "web1",
        &[Role::Web],
        vec![check("nginx", "nginx", Health::Crit)],
        stop.clone(),
    );
    agent(
        &collector,
        "web2",
        &[Role::Web],
        vec![check("nginx", "nginx", Health::Ok)],
        stop.clone(),
    );
    let snap = collector
        .wait_for("a crit site", |s| {
            s.totals
                .as_ref()
                .is_some_and(|t| t.site() == Health::Crit && t.nodes_total == 2)
        })
        .await;
    assert_eq!(snap.totals.unwrap().nodes_down, 0);
    let out = status(&url, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = status(&url, &["--fail-on", "down"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_charts_read_the_collectors_history() {
    use stacktop::event::Event;
    use stacktop::history::NoRequests;
    use stacktop::model::NodeKey;

    let collector = Collector::start().await;
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    agent(&collector, "web1", &[Role::Web], Vec::new(), stop.clone());
    collector
        .wait_for("web1 reporting", |s| {
            web1(s).is_some_and(|n| n.summary.is_some())
        })
        .await;

    // The dashboard's own poller, as the open detail screen runs it.
    let (tx, mut rx) = mpsc::channel(16);
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let poller = tokio::spawn(stacktop::client::poll_detail(
        vec![ClientConfig::new(collector.url())],
        target_rx,
        tx,
        stop.clone(),
    ));
    target_tx
        .send(Some((
            NodeKey::from("web1"),
            stacktop::history::HISTORY_WINDOW,
        )))
        .unwrap();
    let history = tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await.expect("the poller runs") {
                Event::History {
                    result: Ok(history),
                    ..
                } if !history.requests.by_class[0].is_empty() => return history,
                _ => {}
            }
        }
    })
    .await
    .expect("history with request rates");
    stop.cancel();
    poller.await.unwrap();

    // Two logs: nginx (37 2xx, 3 5xx per second) and `old` (500 2xx, its
    // first second only), summed per second.
    assert_eq!(history.requests.sources, 2);
    let ok: Vec<f64> = history.requests.by_class[0].iter().map(|p| p.1).collect();
    assert!(ok.iter().all(|&v| v == 37.0 || v == 537.0), "{ok:?}");
    assert!(history.requests.by_class[3].iter().all(|p| p.1 == 3.0));
    assert!(history.requests.by_class[1].is_empty(), "3xx never sent");
    // Requests logged, no latency series: the format has no request time.
    assert_eq!(history.latency_missing(), Some(NoRequests::NoRequestTime));
    // eth0 only: lo, lo0 and lo:1 are loopback.
    assert!(!history.receive.is_empty());
    assert!(history.receive.iter().all(|p| p.1 == 1_234.5));
    // The collector keeps samples as f32.
    assert!(history.cpu.iter().all(|p| (p.1 - 0.4213).abs() < 1e-6));
    assert!(history.disk_read.is_empty() && history.disk_devices == 0);
}
