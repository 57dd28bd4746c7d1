//! End to end over real gRPC on 127.0.0.1: one collector, three agents with
//! different names and roles, and the `stacktop status` binary against them.
//!
//! Agents run in-process (the same library the `stacktop-agent` binary
//! runs), each with its own cancellation token, so "stopping an agent" is
//! exactly its shutdown path and nothing outlives the test. They come
//! through the dashboard's optional `embedded` dependencies, so this test
//! only exists with that feature (a `--no-default-features` build carries
//! no agent or collector, not even for tests).

#![cfg(feature = "embedded")]

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{FleetSnapshot, NodeState, SnapshotRequest};
use stacktop_proto::{Health, Role};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Short interval so "down after 3 intervals" happens quickly.
const INTERVAL: Duration = Duration::from_millis(300);
/// Liveness bound for every wait; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(20);

/// A collector task on a fixed listener; cancelled when dropped.
struct Collector {
    addr: SocketAddr,
    token: CancellationToken,
    task: Option<JoinHandle<Result<(), stacktop_collector::Error>>>,
}

impl Collector {
    async fn start(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let config = stacktop_collector::Config {
            listen: addr,
            ..Default::default()
        };
        let task = tokio::spawn(stacktop_collector::serve(listener, config, token.clone()));
        Self {
            addr,
            token,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("collector stops on shutdown")
                .unwrap()
                .unwrap();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// An in-process agent; cancelled when dropped.
struct Agent {
    token: CancellationToken,
    task: Option<JoinHandle<Result<(), stacktop_agent::Error>>>,
}

impl Agent {
    fn start(collector: &str, name: &str, roles: &[Role]) -> Self {
        let token = CancellationToken::new();
        let config = stacktop_agent::Config {
            name: Some(name.to_string()),
            roles: roles.to_vec(),
            collectors: vec![collector.to_string()],
            interval: INTERVAL,
            // No checks: the role defaults probe Nginx, HAProxy and MariaDB,
            // which this machine need not run; this test is about liveness.
            checks: Some(Vec::new()),
            ..Default::default()
        };
        let task = tokio::spawn(stacktop_agent::run(config, token.clone()));
        Self {
            token,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("agent stops on shutdown")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn snapshot(url: &str) -> Option<FleetSnapshot> {
    let config = ClientConfig::new(url).with_connect_timeout(Duration::from_secs(1));
    let channel = config.connect().await.ok()?;
    let reply = config
        .fleet(channel)
        .snapshot(SnapshotRequest::default())
        .await
        .ok()?;
    Some(reply.into_inner())
}

/// Polls the collector until `ready` holds for its snapshot, or panics with
/// the last snapshot seen after `PATIENCE`.
async fn wait_for(url: &str, what: &str, ready: impl Fn(&FleetSnapshot) -> bool) -> FleetSnapshot {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = None;
    loop {
        if let Some(snap) = snapshot(url).await {
            if ready(&snap) {
                return snap;
            }
            last = Some(snap);
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last snapshot: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node<'a>(snap: &'a FleetSnapshot, name: &str) -> Option<&'a NodeState> {
    snap.nodes.iter().find(|n| n.name == name)
}

fn health_of(snap: &FleetSnapshot, name: &str) -> Option<Health> {
    node(snap, name).map(|n| n.health())
}

/// Has a live CPU and memory reading in range: sampled, not made up.
fn has_live_values(n: &NodeState) -> bool {
    let Some(s) = &n.summary else { return false };
    matches!(s.cpu_usage_ratio, Some(c) if (0.0..=1.0).contains(&c))
        && matches!(s.memory_used_ratio, Some(m) if m > 0.0 && m <= 1.0)
}

async fn status(url: &str, json: bool) -> Output {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktop"));
        cmd.args(["status", "--collector", &url]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().expect("run stacktop status")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_go_down_come_back_and_survive_a_collector_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = Collector::start(listener).await;
    let url = collector.url();

    let lb = Agent::start(&url, "lb1", &[Role::Lb]);
    let web = Agent::start(&url, "web1", &[Role::Web, Role::App]);
    let db = Agent::start(&url, "db1", &[Role::Db]);

    // All three appear, in their tiers, with real readings.
    let snap = wait_for(&url, "3 nodes with CPU and memory", |s| {
        s.nodes.len() == 3
            && s.nodes.iter().all(has_live_values)
            && s.nodes.iter().all(|n| n.health() == Health::Ok)
    })
    .await;
    assert_eq!(
        node(&snap, "lb1").unwrap().roles().collect::<Vec<_>>(),
        [Role::Lb]
    );
    assert_eq!(
        node(&snap, "web1").unwrap().roles().collect::<Vec<_>>(),
        [Role::Web, Role::App]
    );
    assert_eq!(
        node(&snap, "db1").unwrap().roles().collect::<Vec<_>>(),
        [Role::Db]
    );
    let tiers = &snap.totals.as_ref().expect("snapshot carries totals").tiers;
    for role in [Role::Lb, Role::Web, Role::App, Role::Db] {
        let tier = tiers
            .iter()
            .find(|t| t.role() == role)
            .unwrap_or_else(|| panic!("tier {role} missing: {tiers:#?}"));
        assert_eq!((tier.healthy, tier.total), (1, 1), "tier {role}");
        assert!(tier.spof, "a one-node tier is a SPOF");
    }

    // `stacktop status --json` sees the same fleet and exits 0.
    let out = status(&url, true).await;
    assert!(out.status.success(), "status --json: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = json["nodes"].as_array().expect("nodes array");
    assert_eq!(nodes.len(), 3, "{json:#}");
    for n in nodes {
        assert_eq!(n["health"], "ok", "{n:#}");
        let cpu = n["cpu_usage_ratio"].as_f64().expect("cpu known");
        assert!((0.0..=1.0).contains(&cpu), "{n:#}");
        assert!(n["memory_used_ratio"].as_f64().expect("memory known") > 0.0);
        assert!(n["last_seen_unix_ms"].as_i64().unwrap() > 0);
    }

    // Stopping one agent marks it down; the others stay ok.
    db.stop().await;
    wait_for(&url, "db1 down", |s| {
        health_of(s, "db1") == Some(Health::Down)
            && health_of(s, "lb1") == Some(Health::Ok)
            && health_of(s, "web1") == Some(Health::Ok)
    })
    .await;
    let out = status(&url, false).await;
    assert!(
        !out.status.success(),
        "status must fail while a node is down"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("db1"));
    let out = status(&url, true).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let db1 = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "db1")
        .expect("db1 still listed while down");
    assert_eq!(db1["health"], "down");
    // A down node has no current values: null, never its last ones.
    assert!(db1["cpu_usage_ratio"].is_null(), "{db1:#}");
    assert!(db1["memory_used_ratio"].is_null(), "{db1:#}");
    assert_eq!(json["nodes_down"], 1, "{json:#}");

    // Restarting it brings it back.
    let db = Agent::start(&url, "db1", &[Role::Db]);
    wait_for(&url, "db1 back up", |s| {
        health_of(s, "db1") == Some(Health::Ok)
    })
    .await;

    // A collector restart on the same port is survived by the agents, which
    // were not restarted: all three report to the new collector.
    let addr = collector.addr;
    collector.stop().await;
    let listener = bind_again(addr).await;
    let collector = Collector::start(listener).await;
    wait_for(&url, "3 nodes back after collector restart", |s| {
        s.nodes.len() == 3
            && s.nodes.iter().all(has_live_values)
            && s.nodes.iter().all(|n| n.health() == Health::Ok)
    })
    .await;
    let out = status(&url, false).await;
    assert!(out.status.success(), "status after restart: {out:?}");

    lb.stop().await;
    web.stop().await;
    db.stop().await;
    collector.stop().await;
}

/// The dashboard's own path: Fleet.Watch through `client::watch_fleet`
/// into a `Model`, snapshot then compact deltas, follows agents coming up
/// and going down with the collector's numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_model_follows_the_watch_stream() {
    use stacktop::event::Event;
    use stacktop::model::{Model, SourceId};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = Collector::start(listener).await;
    let url = collector.url();
    let web = Agent::start(&url, "web1", &[Role::Web]);
    let db = Agent::start(&url, "db1", &[Role::Db]);

    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let token = CancellationToken::new();
    let watch = tokio::spawn(stacktop::client::watch_fleet(
        SourceId::PRIMARY,
        ClientConfig::new(&url),
        tx,
        token.clone(),
    ));
    let mut model = Model::new(&url);
    let mut follow = async |what: &str, ready: &dyn Fn(&Model) -> bool| {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !ready(&model) {
            let event = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}: {model:#?}"))
                .expect("the watch task runs");
            match event {
                Event::Update { source, update } => {
                    model
                        .apply(source, *update, stacktop_proto::now_unix_ms())
                        .unwrap_or_else(|e| panic!("{e}: {model:#?}"));
                }
                Event::Connection { source, state } => model.set_connection(source, state),
                _ => {}
            }
        }
    };
    let node = |m: &Model, name: &str| m.node(&name.into()).cloned();
    follow("both nodes ok with CPU readings", &|m: &Model| {
        m.totals().is_some_and(|t| t.nodes_ok == 2)
            && ["web1", "db1"].iter().all(|n| {
                node(m, n).is_some_and(|n| has_live_values(&n) && !n.cpu_recent.is_empty())
            })
    })
    .await;

    db.stop().await;
    follow("db1 down", &|m: &Model| {
        m.totals().is_some_and(|t| t.nodes_down == 1)
            && node(m, "db1").is_some_and(|n| n.health() == Health::Down)
    })
    .await;
    let db1 = node(&model, "db1").unwrap();
    let summary = db1.summary.unwrap_or_default();
    assert_eq!(summary.cpu_usage_ratio, None, "{db1:#?}");
    assert!(db1.cpu_recent.is_empty(), "{db1:#?}");
    assert!(db1.checks.iter().all(|c| c.stale), "{db1:#?}");
    assert!(node(&model, "web1").is_some_and(|n| n.health() == Health::Ok));

    token.cancel();
    watch.await.unwrap();
    web.stop().await;
    collector.stop().await;
}

/// The port was just released by the old collector; retry briefly in case the
/// kernel has not let go of it yet.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}
