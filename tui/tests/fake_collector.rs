//! The dashboard's network paths against a collector that speaks the 0.2
//! contract exactly as written: a small Fleet service on 127.0.0.1 that
//! answers with fixed messages. It runs without the collector crate (and
//! so without the `embedded` feature), so these paths are tested however
//! the collector's evaluation is built.
//!
//! - `stacktop status` (the binary): exit codes by site health and
//!   `--fail-on`, and a down node's values as `null`;
//! - `client::watch_fleet` into a `Model`: a snapshot, then compact deltas;
//! - `client::poll_detail`: Fleet.Node (with traffic) and Fleet.History for
//!   the open detail screen.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Output;
use std::time::Duration;

use stacktop::event::Event;
use stacktop::model::{ConnState, Model, NodeKey, SourceId};
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::fleet_server::{Fleet, FleetServer};
use stacktop_proto::v1::{
    FleetDelta, FleetSnapshot, FleetTotals, FleetUpdate, HistoryRequest, HistoryResponse,
    NodeChange, NodeRequest, NodeState, NodeStatus, NodeSummary, SnapshotRequest, SourceTraffic,
    WatchRequest, fleet_update,
};
use stacktop_proto::{Health, Role};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Liveness bound for every wait; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// A Fleet service that answers every call with the same messages.
#[derive(Clone)]
struct Fake {
    snapshot: FleetSnapshot,
    /// What Watch sends after the snapshot; the stream then stays open.
    deltas: Vec<FleetDelta>,
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

    async fn alerts(
        &self,
        _: Request<stacktop_proto::v1::AlertsRequest>,
    ) -> Result<Response<stacktop_proto::v1::AlertsResponse>, Status> {
        Ok(Response::new(Default::default()))
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
            .add_service(FleetServer::new(fake))
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
    let fake = Fake {
        snapshot: fleet(Health::Ok, Health::Ok),
        deltas: vec![FleetDelta {
            changed: vec![down],
            totals: fleet(Health::Down, Health::Down).totals,
            generation: 2,
            ..Default::default()
        }],
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
        deltas: vec![],
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
    target_tx.send(Some(key.clone())).unwrap();
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
