//! The dashboard's network paths against a collector that speaks the 0.2
//! contract exactly as written: a small Fleet and Operator service on
//! 127.0.0.1 that answers with fixed messages and records the write calls
//! it gets. It runs without the collector crate (and so without the
//! `embedded` feature), so these paths are tested however the collector's
//! evaluation is built.
//!
//! - `stacktop status` (the binary): exit codes by site health and
//!   `--fail-on`, and a down node's values as `null`;
//! - `client::watch_fleet` into a `Model`: a snapshot, then compact deltas
//!   (alerts included);
//! - `client::poll_detail`: Fleet.Node (with traffic) and Fleet.History for
//!   the open detail screen;
//! - `stacktop alerts` (the binary): exit codes 0/1/2 and the JSON shape;
//! - `stacktop ack`, `silence`, `unsilence`, `maintenance`: the request
//!   fields that reach the Operator service, what they print, and exit
//!   codes 0 (done), 1 (refused), 2 (unreachable);
//! - `client::run_operator`, the dashboard's task for confirmed calls.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stacktop::client::Routed;
use stacktop::event::Event;
use stacktop::model::{ConnState, Model, NodeKey, SourceId};
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::fleet_server::{Fleet, FleetServer};
use stacktop_proto::v1::operator_server::{Operator, OperatorServer};
use stacktop_proto::v1::{
    AckRequest, Alert, AlertState, AlertsRequest, AlertsResponse, EndRequest, FleetDelta,
    FleetSnapshot, FleetTotals, FleetUpdate, HistoryRequest, HistoryResponse, Label, Maintenance,
    MaintenanceRequest, Matcher, NodeChange, NodeRequest, NodeState, NodeStatus, NodeSummary,
    Severity, Silence, SilenceRequest, SnapshotRequest, SourceTraffic, WatchRequest, fleet_update,
};
use stacktop_proto::{Health, Role};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Liveness bound for every wait; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// A Fleet and Operator service that answers every read with the same
/// messages and records every write call.
#[derive(Clone, Default)]
struct Fake {
    snapshot: FleetSnapshot,
    /// What Watch sends after the snapshot; the stream then stays open.
    deltas: Vec<FleetDelta>,
    /// What Fleet.Alerts answers (unless `alerts_error`).
    alerts: AlertsResponse,
    /// Fleet.Alerts fails with this code and message.
    alerts_error: Option<(tonic::Code, String)>,
    /// The write calls received, in order.
    calls: Arc<Mutex<Vec<Call>>>,
}

/// One write call the fake received.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Ack(AckRequest),
    Silence(SilenceRequest),
    Unsilence(EndRequest),
    StartMaintenance(MaintenanceRequest),
    EndMaintenance(EndRequest),
}

/// When the fake's silences and maintenance windows start (Unix ms).
const STARTS_MS: i64 = 1_767_225_600_000;

impl Fake {
    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl Operator for Fake {
    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<Alert>, Status> {
        let r = request.into_inner();
        self.record(Call::Ack(r.clone()));
        let mut alert = self
            .alerts
            .alerts
            .iter()
            .find(|a| a.id == r.alert_id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no alert {:?}", r.alert_id)))?;
        alert.acknowledged = true;
        alert.acknowledged_by = r.by;
        alert.ack_comment = r.comment;
        Ok(Response::new(alert))
    }

    async fn silence(&self, request: Request<SilenceRequest>) -> Result<Response<Silence>, Status> {
        let r = request.into_inner();
        self.record(Call::Silence(r.clone()));
        if r.matchers.is_empty() {
            return Err(Status::invalid_argument("a silence needs a matcher"));
        }
        Ok(Response::new(Silence {
            id: "s-1".into(),
            matchers: r.matchers,
            starts_ms: STARTS_MS,
            ends_ms: if r.until_resolved {
                0
            } else {
                STARTS_MS + r.duration_ms
            },
            until_resolved: r.until_resolved,
            created_by: r.by,
            comment: r.comment,
            ended: false,
        }))
    }

    async fn unsilence(&self, request: Request<EndRequest>) -> Result<Response<Silence>, Status> {
        let r = request.into_inner();
        self.record(Call::Unsilence(r.clone()));
        if r.id != "s-1" {
            return Err(Status::not_found(format!("no silence {:?}", r.id)));
        }
        Ok(Response::new(Silence {
            id: r.id,
            ended: true,
            ..Default::default()
        }))
    }

    async fn start_maintenance(
        &self,
        request: Request<MaintenanceRequest>,
    ) -> Result<Response<Maintenance>, Status> {
        let r = request.into_inner();
        self.record(Call::StartMaintenance(r.clone()));
        let known = r.tier != 0 || self.snapshot.nodes.iter().any(|n| n.name == r.node);
        if !known {
            return Err(Status::not_found(format!("no node {:?}", r.node)));
        }
        Ok(Response::new(Maintenance {
            id: "m-1".into(),
            node: r.node,
            tier: r.tier,
            starts_ms: STARTS_MS,
            ends_ms: STARTS_MS + r.duration_ms,
            created_by: r.by,
            comment: r.comment,
            ended: false,
        }))
    }

    async fn forget(
        &self,
        request: Request<stacktop_proto::v1::ForgetRequest>,
    ) -> Result<Response<stacktop_proto::v1::ForgetResponse>, Status> {
        let r = request.into_inner();
        if r.node != "web1" {
            return Err(Status::not_found(format!("no node named {:?}", r.node)));
        }
        Ok(Response::new(stacktop_proto::v1::ForgetResponse {
            node: r.node,
        }))
    }

    async fn end_maintenance(
        &self,
        request: Request<EndRequest>,
    ) -> Result<Response<Maintenance>, Status> {
        let r = request.into_inner();
        self.record(Call::EndMaintenance(r.clone()));
        if r.id != "m-1" {
            return Err(Status::not_found(format!("no maintenance {:?}", r.id)));
        }
        Ok(Response::new(Maintenance {
            id: r.id,
            node: "web1".into(),
            ended: true,
            ..Default::default()
        }))
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<FleetUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Fleet for Fake {
    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<FleetSnapshot>, Status> {
        Ok(Response::new(self.snapshot.clone()))
    }

    type WatchStream = UpdateStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<UpdateStream>, Status> {
        use tokio_stream::StreamExt as _;
        let first = fleet_update::Update::Snapshot(self.snapshot.clone());
        let updates = std::iter::once(first)
            .chain(self.deltas.iter().cloned().map(fleet_update::Update::Delta))
            .map(|u| Ok(FleetUpdate { update: Some(u) }))
            .collect::<Vec<_>>();
        let stream = tokio_stream::iter(updates).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn alerts(&self, _: Request<AlertsRequest>) -> Result<Response<AlertsResponse>, Status> {
        match &self.alerts_error {
            Some((code, message)) => Err(Status::new(*code, message.clone())),
            None => Ok(Response::new(self.alerts.clone())),
        }
    }

    async fn history(
        &self,
        _: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        Err(Status::unavailable("no history here"))
    }

    async fn node(&self, request: Request<NodeRequest>) -> Result<Response<NodeState>, Status> {
        let name = request.into_inner().name;
        let mut node = self
            .snapshot
            .nodes
            .iter()
            .find(|n| n.name == name)
            .cloned()
            .ok_or_else(|| Status::not_found(name))?;
        node.traffic = vec![SourceTraffic {
            source: "nginx".into(),
            class_2xx: Some(40.0),
            total: Some(40.0),
            ..Default::default()
        }];
        Ok(Response::new(node))
    }
}

/// The fake on 127.0.0.1:0 until `token` fires.
async fn serve(fake: Fake, token: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let shutdown = token.clone().cancelled_owned();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(FleetServer::new(fake.clone()))
            .add_service(OperatorServer::new(fake))
            .serve_with_incoming_shutdown(incoming, shutdown),
    );
    addr
}

fn node(name: &str, role: Role, health: Health, cpu: Option<f64>) -> NodeState {
    NodeState {
        name: name.into(),
        roles: vec![role as i32],
        health: health as i32,
        connected: health != Health::Down,
        last_seen_ms: 9_000,
        summary: Some(NodeSummary {
            cpu_usage_ratio: cpu,
            timestamp_ms: cpu.map_or(0, |_| 9_000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// web1 ok and db1 `db`, with the collector's totals for `site`.
fn fleet(site: Health, db: Health) -> FleetSnapshot {
    let down = u32::from(db == Health::Down);
    FleetSnapshot {
        nodes: vec![
            node("db1", Role::Db, db, (db != Health::Down).then_some(0.2)),
            node("web1", Role::Web, Health::Ok, Some(0.5)),
        ],
        totals: Some(FleetTotals {
            site: site as i32,
            timestamp_ms: 10_000,
            collector_version: "0.2.0".into(),
            nodes_total: 2,
            nodes_ok: 2 - down,
            nodes_down: down,
            ..Default::default()
        }),
        generation: 1,
        ..Default::default()
    }
}

async fn status(addr: SocketAddr, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktop"));
    cmd.args(["status", "--collector", &format!("http://{addr}")])
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn status_exits_by_the_sites_health_and_fail_on() {
    let token = CancellationToken::new();
    let cases = [
        (Health::Ok, Health::Ok, &[][..], 0),
        (Health::Warn, Health::Ok, &[][..], 0),
        (Health::Crit, Health::Ok, &[][..], 1),
        (Health::Crit, Health::Ok, &["--fail-on", "down"][..], 0),
        (Health::Warn, Health::Ok, &["--fail-on", "warn"][..], 1),
        (Health::Down, Health::Down, &["--fail-on", "never"][..], 0),
        (Health::Ok, Health::Down, &["--fail-on", "down"][..], 1),
    ];
    for (site, db, args, code) in cases {
        let fake = Fake {
            snapshot: fleet(site, db),
            deltas: vec![],
            ..Default::default()
        };
        let addr = serve(fake, &token).await;
        let out = status(addr, args).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "site {site}, db1 {db}, {args:?}: {out:?}"
        );
    }
    token.cancel();
}

#[tokio::test]
async fn status_json_shows_a_down_nodes_values_as_null() {
    let token = CancellationToken::new();
    let mut snapshot = fleet(Health::Down, Health::Down);
    // Whatever a collector sent: a down node has no current values.
    snapshot.nodes[0].summary = Some(NodeSummary {
        cpu_usage_ratio: Some(0.9),
        ..Default::default()
    });
    let addr = serve(
        Fake {
            snapshot,
            deltas: vec![],
            ..Default::default()
        },
        &token,
    )
    .await;
    let out = status(addr, &["--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["nodes_down"], 1, "{json:#}");
    assert_eq!(json["collector_version"], "0.2.0");
    let db1 = &json["nodes"][0];
    assert_eq!(db1["health"], "down");
    assert!(db1["cpu_usage_ratio"].is_null(), "{db1:#}");
    assert_eq!(json["nodes"][1]["cpu_usage_ratio"], 0.5);
    assert_eq!(json["nodes"][1]["summary_unix_ms"], 9_000);
    token.cancel();
}

/// Applies events from the loop's channel to `model` until `ready`.
async fn follow(
    rx: &mut mpsc::Receiver<Event>,
    model: &mut Model,
    mut seen: impl FnMut(&Event),
    ready: impl Fn(&Model) -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !ready(model) {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out: {model:#?}"))
            .expect("the task runs");
        seen(&event);
        match event {
            Event::Update { source, update } => model.apply(source, *update, 1).unwrap(),
            Event::Connection { source, state } => model.set_connection(source, state),
            Event::Node { node, result } => model.node_arrived(&node, result.map(|n| *n)),
            Event::History { node, result } => model.history_arrived(&node, result),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_watch_task_feeds_snapshot_and_deltas_into_the_model() {
    let token = CancellationToken::new();
    // db1 goes down: a status-only change, its CPU history reset.
    let down = NodeChange {
        name: "db1".into(),
        status: Some(NodeStatus {
            health: Health::Down as i32,
            connected: false,
            last_seen_ms: 9_000,
            summary: Some(NodeSummary::default()),
            last_summary: Some(NodeSummary {
                cpu_usage_ratio: Some(0.2),
                timestamp_ms: 9_000,
                ..Default::default()
            }),
            role_health: vec![],
            ..Default::default()
        }),
        cpu_reset: true,
        ..Default::default()
    };
    // The snapshot has db1's check pending; the delta has it firing.
    let mut snapshot = fleet(Health::Ok, Health::Ok);
    snapshot.alerts = vec![alert("a1", "db1", AlertState::Pending)];
    let fake = Fake {
        snapshot,
        deltas: vec![FleetDelta {
            changed: vec![down],
            totals: fleet(Health::Down, Health::Down).totals,
            generation: 2,
            alerts_changed: true,
            alerts: vec![alert("a1", "db1", AlertState::Firing)],
            ..Default::default()
        }],
        ..Default::default()
    };
    let addr = serve(fake, &token).await;
    let (tx, mut rx) = mpsc::channel(16);
    let config = ClientConfig::new(format!("http://{addr}"));
    let watch = tokio::spawn(stacktop::client::watch_fleet(
        SourceId::PRIMARY,
        config.clone(),
        tx,
        token.clone(),
    ));
    let mut model = Model::new(&config.url);
    follow(&mut rx, &mut model, |_| {}, |m| m.primary().generation == 2).await;
    assert_eq!(model.primary().connection, ConnState::Connected);
    let db1 = model.node(&NodeKey::from("db1")).unwrap();
    assert_eq!(db1.health(), Health::Down);
    assert_eq!(db1.summary.unwrap().cpu_usage_ratio, None);
    assert_eq!(db1.last_summary.unwrap().cpu_usage_ratio, Some(0.2));
    let totals = model.totals().unwrap();
    assert_eq!((totals.site(), totals.nodes_down), (Health::Down, 1));
    assert_eq!(model.alerts().len(), 1);
    assert_eq!(model.alerts()[0].state(), AlertState::Firing);
    assert_eq!(
        model
            .node(&"web1".into())
            .unwrap()
            .summary
            .unwrap()
            .cpu_usage_ratio,
        Some(0.5)
    );
    token.cancel();
    watch.await.unwrap();
}

#[tokio::test]
async fn the_detail_poller_asks_for_the_open_node_and_its_history() {
    let token = CancellationToken::new();
    let fake = Fake {
        snapshot: fleet(Health::Ok, Health::Ok),
        ..Default::default()
    };
    let addr = serve(fake, &token).await;
    let (tx, mut rx) = mpsc::channel(16);
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let config = ClientConfig::new(format!("http://{addr}"));
    let poller = tokio::spawn(stacktop::client::poll_detail(
        vec![config.clone()],
        target_rx,
        tx,
        token.clone(),
    ));
    let mut model = Model::from_snapshot(&config.url, fleet(Health::Ok, Health::Ok));
    let key = NodeKey::from("web1");
    model.open_detail(key.clone());
    target_tx
        .send(Some((key.clone(), stacktop::history::HISTORY_WINDOW)))
        .unwrap();
    let mut history_failed = false;
    follow(
        &mut rx,
        &mut model,
        |e| history_failed |= matches!(e, Event::History { result: Err(_), .. }),
        |m| {
            m.detail()
                .and_then(|d| d.node.as_ref())
                .is_some_and(|n| !n.traffic.is_empty())
        },
    )
    .await;
    let detail = model.detail().unwrap();
    assert_eq!(detail.node.as_ref().unwrap().traffic[0].total, Some(40.0));
    // The history call fails here; the first failure shows as such.
    follow(
        &mut rx,
        &mut model,
        |e| history_failed |= matches!(e, Event::History { result: Err(_), .. }),
        |m| {
            matches!(
                m.detail().map(|d| &d.history),
                Some(stacktop::history::HistoryState::Failed(_))
            )
        },
    )
    .await;
    assert!(history_failed);
    token.cancel();
    poller.await.unwrap();
}

fn alert(id: &str, node: &str, state: AlertState) -> Alert {
    Alert {
        id: id.into(),
        rule: "check-failed".into(),
        node: node.into(),
        severity: Severity::Critical as i32,
        state: state as i32,
        since_ms: 9_000,
        summary: format!("tcp:5432 on {node}: connection refused"),
        labels: vec![Label::new("check", "tcp:5432"), Label::new("node", node)],
        ..Default::default()
    }
}

/// Runs the `stacktop` binary with `args` (as user `tester`) off the
/// runtime's threads.
async fn stacktop(args: Vec<String>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktop"));
    cmd.args(args).env("USER", "tester");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// `stacktop <args> --collector http://addr`.
async fn against(addr: SocketAddr, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--collector".to_string(), format!("http://{addr}")]);
    stacktop(all).await
}

/// A URL where nothing listens.
fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fake with web1 and db1, and these alerts.
fn with_alerts(alerts: Vec<Alert>) -> Fake {
    Fake {
        snapshot: fleet(Health::Ok, Health::Ok),
        alerts: AlertsResponse {
            alerts,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn alerts_exits_0_when_nothing_fires_1_when_something_does_2_when_unreachable() {
    let token = CancellationToken::new();
    let quiet = vec![
        alert("p1", "web1", AlertState::Pending),
        alert("r1", "db1", AlertState::Resolved),
    ];
    let addr = serve(with_alerts(quiet.clone()), &token).await;
    let out = against(addr, &["alerts", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut firing = quiet;
    firing.push(alert("f1", "web1", AlertState::Firing));
    let addr = serve(with_alerts(firing), &token).await;
    let out = against(addr, &["alerts"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].contains("firing"), "firing first: {table}");
    assert!(lines[1].contains("tcp:5432 on web1"), "{table}");
    // Nothing listening: 2, naming the address, nothing on stdout.
    let url = nowhere();
    let out = stacktop(vec!["alerts".into(), "--collector".into(), url.clone()]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains(&url), "{out:?}");
    assert!(out.stdout.is_empty());
    // A collector that answers with an error (one without alerts yet): 2.
    let broken = Fake {
        alerts_error: Some((
            tonic::Code::Unimplemented,
            "alerts are not evaluated yet".into(),
        )),
        ..Default::default()
    };
    let addr = serve(broken, &token).await;
    let out = against(addr, &["alerts", "--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("alerts are not evaluated yet"));
    token.cancel();
}

#[tokio::test]
async fn alerts_json_has_the_documented_shape() {
    let token = CancellationToken::new();
    let mut root = alert("a1", "db1", AlertState::Firing);
    root.grouped = vec!["a2".into()];
    root.acknowledged = true;
    root.acknowledged_by = "ann@ws1".into();
    let mut grouped = alert("a2", "web1", AlertState::Firing);
    grouped.root = "a1".into();
    grouped.severity = Severity::Warning as i32;
    grouped.silenced = true;
    let addr = serve(with_alerts(vec![grouped, root]), &token).await;
    let out = against(addr, &["alerts", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 1, "{json:#}");
    assert_eq!(
        json["alerts"][0],
        serde_json::json!({
            "id": "a1",
            "rule": "check-failed",
            "node": "db1",
            "severity": "critical",
            "state": "firing",
            "since_unix_ms": 9_000,
            "summary": "tcp:5432 on db1: connection refused",
            "labels": {"check": "tcp:5432", "node": "db1"},
            "acknowledged": true,
            "silenced": false,
            "root": null,
        })
    );
    let second = &json["alerts"][1];
    assert_eq!(second["id"], "a2");
    assert_eq!(second["root"], "a1");
    assert_eq!(second["severity"], "warning");
    assert_eq!(second["silenced"], true);
    token.cancel();
}

#[tokio::test]
async fn ack_sends_the_id_comment_and_who() {
    let token = CancellationToken::new();
    let fake = with_alerts(vec![alert("a1", "web1", AlertState::Firing)]);
    let addr = serve(fake.clone(), &token).await;
    let out = against(addr, &["ack", "a1", "--comment", "on it"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let Call::Ack(request) = &fake.calls()[0] else {
        panic!("{:?}", fake.calls());
    };
    assert_eq!(request.alert_id, "a1");
    assert_eq!(request.comment, "on it");
    assert!(request.by.starts_with("tester@"), "{request:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("acknowledged alert a1 (check-failed on web1) by tester@"),
        "{stdout}"
    );
    // An id the collector does not know: 1, with its message.
    let out = against(addr, &["ack", "nope"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no alert \"nope\""), "{stderr}");
    assert!(stderr.contains("NotFound"), "{stderr}");
    // Nobody there: 2.
    let out = stacktop(vec![
        "ack".into(),
        "a1".into(),
        "--collector".into(),
        nowhere(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    token.cancel();
}

#[tokio::test]
async fn silence_sends_its_matchers_and_duration() {
    let token = CancellationToken::new();
    let fake = with_alerts(vec![]);
    let addr = serve(fake.clone(), &token).await;
    let out = against(
        addr,
        &[
            "silence",
            "--match",
            "node=web2",
            "--match",
            "rule=check-failed",
            "--for",
            "1h",
            "--comment",
            "deploy",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "silence s-1: node=web2, rule=check-failed for 1h (until 2026-01-01T01:00:00Z)\n"
    );
    let out = against(
        addr,
        &["silence", "--match", "node=web2", "--until-resolved"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("until the alerts resolve"));
    let out = against(addr, &["unsilence", "s-1"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "ended silence s-1\n");
    let out = against(addr, &["unsilence", "s-9"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let calls = fake.calls();
    let matcher = |name: &str, value: &str| Matcher {
        name: name.into(),
        value: value.into(),
    };
    let Call::Silence(first) = &calls[0] else {
        panic!("{calls:?}");
    };
    assert_eq!(
        first.matchers,
        [matcher("node", "web2"), matcher("rule", "check-failed")]
    );
    assert_eq!(
        (first.duration_ms, first.until_resolved),
        (3_600_000, false)
    );
    assert_eq!(first.comment, "deploy");
    assert!(first.by.starts_with("tester@"));
    let Call::Silence(second) = &calls[1] else {
        panic!("{calls:?}");
    };
    assert_eq!((second.duration_ms, second.until_resolved), (0, true));
    assert_eq!(
        calls[2],
        Call::Unsilence(EndRequest {
            id: "s-1".into(),
            by: first.by.clone(),
        })
    );
    // A bad matcher never reaches the collector.
    let out = against(addr, &["silence", "--match", "web2", "--for", "1h"]).await;
    assert_eq!(out.status.code(), Some(2), "clap's usage error: {out:?}");
    assert!(
        text(&out.stderr).contains("invalid matcher \"web2\""),
        "{out:?}"
    );
    assert_eq!(fake.calls().len(), 4);
    token.cancel();
}

#[tokio::test]
async fn maintenance_of_a_node_or_a_tier_and_its_end() {
    let token = CancellationToken::new();
    let fake = with_alerts(vec![]);
    let addr = serve(fake.clone(), &token).await;
    let out = against(
        addr,
        &["maintenance", "web1", "--for", "30m", "--comment", "kernel"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "maintenance m-1: node web1 for 30m (until 2026-01-01T00:30:00Z)\n"
    );
    let out = against(addr, &["maintenance", "--tier", "web", "--for", "2h"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).starts_with("maintenance m-1: the web tier for 2h"));
    let out = against(addr, &["maintenance", "--end", "m-1"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "ended maintenance m-1 of node web1\n");
    let out = against(addr, &["maintenance", "ghost", "--for", "30m"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("no node \"ghost\""), "{out:?}");
    let calls = fake.calls();
    let Call::StartMaintenance(node) = &calls[0] else {
        panic!("{calls:?}");
    };
    assert_eq!(
        (node.node.as_str(), node.tier, node.duration_ms),
        ("web1", 0, 1_800_000)
    );
    assert_eq!(node.comment, "kernel");
    assert!(node.by.starts_with("tester@"));
    let Call::StartMaintenance(tier) = &calls[1] else {
        panic!("{calls:?}");
    };
    assert_eq!(
        (tier.node.as_str(), tier.tier(), tier.duration_ms),
        ("", Role::Web, 7_200_000)
    );
    assert!(matches!(&calls[2], Call::EndMaintenance(e) if e.id == "m-1"));
    let out = stacktop(vec![
        "maintenance".into(),
        "web1".into(),
        "--for".into(),
        "30m".into(),
        "--collector".into(),
        nowhere(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    token.cancel();
}

#[tokio::test]
async fn the_operator_task_makes_confirmed_calls_and_reports_back() {
    use stacktop::operator::OperatorCall;
    let token = CancellationToken::new();
    let fake = with_alerts(vec![alert("a1", "web1", AlertState::Firing)]);
    let addr = serve(fake.clone(), &token).await;
    let (calls_tx, calls_rx) = mpsc::channel(4);
    let (tx, mut rx) = mpsc::channel(4);
    let task = tokio::spawn(stacktop::client::run_operator(
        vec![ClientConfig::new(format!("http://{addr}"))],
        calls_rx,
        tx,
        token.clone(),
    ));
    let ack = |id: &str| Routed {
        call: OperatorCall::Ack {
            alert_id: id.into(),
            comment: String::new(),
            by: "ann@ws1".into(),
        },
        to: vec![SourceId::PRIMARY],
    };
    calls_tx.send(ack("a1")).await.unwrap();
    calls_tx.send(ack("gone")).await.unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap() {
            Some(Event::Operator { result }) => results.push(result),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        results[0],
        Ok("acknowledged alert a1 (check-failed on web1) by ann@ws1".to_string())
    );
    let err = results[1].clone().unwrap_err();
    assert!(err.starts_with("acknowledge alert gone failed:"), "{err}");
    assert!(err.contains("no alert \"gone\""), "{err}");
    assert_eq!(fake.calls().len(), 2);
    token.cancel();
    task.await.unwrap();
}

/// With two collectors, a call goes only to the ones it names, and the
/// answer says which collector said what.
#[tokio::test]
async fn the_operator_task_sends_each_call_to_the_collectors_it_names() {
    use stacktop::operator::OperatorCall;
    let token = CancellationToken::new();
    let fake_a = with_alerts(vec![alert("a1", "web1", AlertState::Firing)]);
    let fake_b = with_alerts(vec![alert("a1", "web1", AlertState::Firing)]);
    let addr_a = serve(fake_a.clone(), &token).await;
    let addr_b = serve(fake_b.clone(), &token).await;
    let (calls_tx, calls_rx) = mpsc::channel(4);
    let (tx, mut rx) = mpsc::channel(4);
    let task = tokio::spawn(stacktop::client::run_operator(
        vec![
            ClientConfig::new(format!("http://{addr_a}")),
            ClientConfig::new(format!("http://{addr_b}")),
        ],
        calls_rx,
        tx,
        token.clone(),
    ));
    let ack = |to: Vec<SourceId>| Routed {
        call: OperatorCall::Ack {
            alert_id: "a1".into(),
            comment: String::new(),
            by: "ann@ws1".into(),
        },
        to,
    };
    calls_tx.send(ack(vec![SourceId(1)])).await.unwrap();
    calls_tx
        .send(ack(vec![SourceId(0), SourceId(1)]))
        .await
        .unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap() {
            Some(Event::Operator { result }) => results.push(result.unwrap()),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        results[0].starts_with("B: acknowledged alert a1"),
        "{}",
        results[0]
    );
    assert!(
        results[1].starts_with("A: acknowledged alert a1"),
        "{}",
        results[1]
    );
    assert!(
        results[1].contains(" · B: acknowledged alert a1"),
        "{}",
        results[1]
    );
    assert_eq!((fake_a.calls().len(), fake_b.calls().len()), (1, 2));
    token.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn forget_names_the_node_and_says_when_it_is_unknown() {
    let token = CancellationToken::new();
    let fake = with_alerts(vec![]);
    let addr = serve(fake.clone(), &token).await;
    let out = against(addr, &["forget", "web1"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "forgot node web1");
    let out = against(addr, &["forget", "nosuch"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("no node named"), "{out:?}");
    token.cancel();
}
