//! The Fleet service: what dashboards and scripts see.
//!
//! - `Snapshot`: every node (sorted by name), the tiers that have nodes (in
//!   lb, web, app, db order) and the site, with health evaluated at the
//!   moment of the call.
//! - `Watch`: a snapshot, then [`FleetDelta`]s. Each watcher is one task
//!   that waits on the store's `watch` channel (which only ever holds the
//!   newest fleet version), then sends one delta with every node stamped
//!   after the version it last sent, plus tiers and site in full. It sends
//!   at most one update per [`MIN_UPDATE_GAP`] (4 per second): changes that
//!   arrive in between are folded into the next delta. The outgoing queue
//!   holds one message, so a slow reader makes only its own task wait; when
//!   it catches up it skips straight to the newest state. Ingest never waits
//!   for a watcher.
//! - `History`: the points of one node's series matching a name and labels.
//!
//! Snapshots and every delta also carry the LB-vs-web traffic check
//! ([`Traffic`]): the LB tier's request rate against the web tier's, both
//! from access logs, so traffic that is lost or bypasses the LB shows.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use stacktop_proto::v1::fleet_server::Fleet;
use stacktop_proto::v1::{
    FleetDelta, FleetSnapshot, FleetUpdate, HistoryRequest, HistoryResponse, NodeRequest,
    NodeState, SeriesHistory, SeriesValue, SnapshotRequest, TierState, TimedValue, WatchRequest,
    fleet_update,
};
use stacktop_proto::{Health, Role, VERSION, now_unix_ms};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use crate::health;
use crate::store::{Node, SeriesKey, Store, StoreError};
use crate::summary;

/// Shortest gap between two updates of one Watch stream (4 per second).
pub const MIN_UPDATE_GAP: Duration = Duration::from_millis(250);

/// Most Watch streams served at once; each costs a task and a cursor.
pub const MAX_WATCHERS: usize = 1_024;

/// The full state of one node at `now_ms`.
pub fn node_state(node: &Node, now_ms: i64) -> NodeState {
    let id = &node.identity;
    NodeState {
        name: id.name.clone(),
        instance_id: id.instance_id.clone(),
        roles: id.roles.iter().map(|&r| r as i32).collect(),
        roles_detected: id.roles_detected,
        labels: id.labels.clone(),
        agent_version: id.agent_version.clone(),
        interval_ms: id.interval_ms,
        health: node.health_at(now_ms) as i32,
        connected: node.connected(),
        last_seen_ms: node.last_seen_ms,
        summary: Some(summary::summarize(
            &node.series,
            now_ms,
            node.identity.interval_ms,
        )),
        cpu_recent: summary::cpu_recent(&node.series),
        checks: node.checks.values().cloned().collect(),
        latest: node
            .series
            .iter()
            .filter_map(|(key, series)| {
                let (timestamp_ms, value) = series.latest()?;
                Some(SeriesValue {
                    name: key.name.clone(),
                    labels: key.proto_labels(),
                    value,
                    timestamp_ms,
                })
            })
            .collect(),
        peer: id.peer.clone(),
        facts: node.facts.clone(),
        backends: node.backends.clone(),
        ..Default::default()
    }
}

/// The LB tier's and the web tier's request rates and their ratio.
///
/// Each tier's rate is the sum of the log-derived QPS ([`summary::qps`]) of
/// its nodes that are not down; a node with unknown QPS adds nothing, and a
/// tier none of whose nodes knows its QPS is unknown. The ratio is web / LB
/// when both are known and the LB's rate is above 0: near 1 when every
/// request the LB logs reaches a logged web server, below when requests are
/// lost, above when traffic reaches the web tier around the LB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Traffic {
    /// Requests per second over the LB tier.
    pub lb: Option<f64>,
    /// Requests per second over the web tier.
    pub web: Option<f64>,
}

impl Traffic {
    /// Adds one node with `roles`, `health` and request rate `qps`.
    pub fn add(&mut self, roles: &[Role], health: Health, qps: Option<f64>) {
        let (Some(qps), false) = (qps, health == Health::Down) else {
            return;
        };
        if roles.contains(&Role::Lb) {
            *self.lb.get_or_insert(0.0) += qps;
        }
        if roles.contains(&Role::Web) {
            *self.web.get_or_insert(0.0) += qps;
        }
    }

    /// web / LB, when both are known and the LB's rate is above 0.
    pub fn ratio(&self) -> Option<f64> {
        match (self.web, self.lb) {
            (Some(web), Some(lb)) if lb > 0.0 => Some(web / lb),
            _ => None,
        }
    }
}

/// Tiers and site from every node's roles and health at `now_ms`.
fn tiers_and_site(roles_health: &[(Vec<Role>, Health)]) -> (Vec<TierState>, Health) {
    let tiers = health::tiers(roles_health.iter().map(|(r, h)| (r.as_slice(), *h)));
    let site = health::site(&tiers);
    let tiers = tiers
        .into_iter()
        .map(|t| TierState {
            role: t.role as i32,
            healthy: t.healthy,
            total: t.total,
            spof: t.spof,
            health: t.health as i32,
        })
        .collect();
    (tiers, site)
}

/// The whole fleet at `now_ms`.
pub fn snapshot(store: &Store, now_ms: i64) -> FleetSnapshot {
    let mut nodes = Vec::new();
    let mut roles_health = Vec::new();
    let mut traffic = Traffic::default();
    store.for_each_node(|n| {
        let state = node_state(n, now_ms);
        let qps = summary::qps_mean(
            &n.series,
            now_ms,
            n.identity.interval_ms,
            summary::TRAFFIC_WINDOW_SECONDS,
        );
        traffic.add(&n.identity.roles, state.health(), qps);
        roles_health.push((n.identity.roles.clone(), state.health()));
        nodes.push(state);
    });
    let (tiers, site) = tiers_and_site(&roles_health);
    FleetSnapshot {
        nodes,
        tiers,
        site: site as i32,
        timestamp_ms: now_ms,
        collector_version: VERSION.to_string(),
        web_lb_request_ratio: traffic.ratio(),
        lb_requests_per_second: traffic.lb,
        web_requests_per_second: traffic.web,
        ..Default::default()
    }
}

/// What one watcher last sent: the version it covered and the node names.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    /// Nodes stamped at or before this version were sent.
    pub version: u64,
    /// Names the watcher knows about.
    pub names: BTreeSet<String>,
}

impl Cursor {
    /// A cursor positioned at `snapshot`, taken when the store was at
    /// `version` (read *before* the snapshot, so nothing is missed).
    pub fn after_snapshot(version: u64, snapshot: &FleetSnapshot) -> Self {
        Self {
            version,
            names: snapshot.nodes.iter().map(|n| n.name.clone()).collect(),
        }
    }
}

/// The changes since `cursor`, advancing it; `None` when no node changed.
///
/// The version is read before the nodes are scanned: a node changed during
/// the scan is either included now or stamped later than the new cursor,
/// and sent again next time (harmless), never lost.
pub fn delta(store: &Store, cursor: &mut Cursor, now_ms: i64) -> Option<FleetDelta> {
    let version = store.version();
    let mut upserted = Vec::new();
    let mut names = BTreeSet::new();
    let mut roles_health = Vec::new();
    let mut traffic = Traffic::default();
    store.for_each_node(|n| {
        let health = n.health_at(now_ms);
        let roles = &n.identity.roles;
        if roles.contains(&Role::Lb) || roles.contains(&Role::Web) {
            let qps = summary::qps_mean(
                &n.series,
                now_ms,
                n.identity.interval_ms,
                summary::TRAFFIC_WINDOW_SECONDS,
            );
            traffic.add(roles, health, qps);
        }
        roles_health.push((roles.clone(), health));
        names.insert(n.identity.name.clone());
        if n.changed_at > cursor.version || !cursor.names.contains(&n.identity.name) {
            upserted.push(node_state(n, now_ms));
        }
    });
    let removed: Vec<String> = cursor.names.difference(&names).cloned().collect();
    cursor.version = version;
    cursor.names = names;
    if upserted.is_empty() && removed.is_empty() {
        return None;
    }
    let (tiers, site) = tiers_and_site(&roles_health);
    Some(FleetDelta {
        upserted,
        removed,
        tiers,
        site: site as i32,
        timestamp_ms: now_ms,
        web_lb_request_ratio: traffic.ratio(),
        lb_requests_per_second: traffic.lb,
        web_requests_per_second: traffic.web,
        ..Default::default()
    })
}

/// Points of `node`'s series named `series` carrying all `labels`, since
/// `since_ms` (0: everything held), oldest first.
pub fn history(store: &Store, request: &HistoryRequest) -> Result<Vec<SeriesHistory>, StoreError> {
    let wanted = SeriesKey::new(request.series.clone(), &request.labels);
    store.with_node(&request.node, |n| {
        n.series
            .iter()
            .filter(|(key, _)| {
                key.name == wanted.name && wanted.labels.iter().all(|l| key.labels.contains(l))
            })
            .map(|(key, series)| SeriesHistory {
                name: key.name.clone(),
                labels: key.proto_labels(),
                points: series
                    .points_since(request.since_ms)
                    .map(|(timestamp_ms, value)| TimedValue {
                        timestamp_ms,
                        value,
                    })
                    .collect(),
            })
            .collect()
    })
}

/// The Fleet gRPC service.
#[derive(Debug, Clone)]
pub struct FleetService {
    store: Arc<Store>,
    /// Ends every Watch stream when cancelled.
    shutdown: CancellationToken,
    /// Tracks the per-watcher tasks so shutdown can wait for them.
    tracker: TaskTracker,
    /// One permit per open Watch stream ([`MAX_WATCHERS`]).
    watchers: Arc<Semaphore>,
}

impl FleetService {
    /// A service reading `store`; watchers stop when `shutdown` is cancelled.
    pub fn new(store: Arc<Store>, shutdown: CancellationToken, tracker: TaskTracker) -> Self {
        Self {
            store,
            shutdown,
            tracker,
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<FleetUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Fleet for FleetService {
    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<FleetSnapshot>, Status> {
        Ok(Response::new(snapshot(&self.store, now_unix_ms())))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this collector already serves its limit of {MAX_WATCHERS} Watch streams"
            ))
        })?;
        // One message in flight: a slow reader holds up only its own task.
        let (tx, rx) = mpsc::channel(1);
        let store = self.store.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            run_watcher(store, tx, shutdown, peer).await;
            drop(permit);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn node(&self, request: Request<NodeRequest>) -> Result<Response<NodeState>, Status> {
        let name = request.into_inner().name;
        self.store
            .with_node(&name, |n| node_state(n, now_unix_ms()))
            .map(Response::new)
            .map_err(|_| {
                Status::not_found(format!("no node named {name:?} is known to this collector"))
            })
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let request = request.into_inner();
        if request.node.is_empty() {
            return Err(Status::invalid_argument(
                "history: `node` must not be empty",
            ));
        }
        if request.series.is_empty() {
            return Err(Status::invalid_argument(
                "history: `series` (a metric name, e.g. node_cpu_usage_ratio) must not be empty",
            ));
        }
        match history(&self.store, &request) {
            Ok(series) => Ok(Response::new(HistoryResponse { series })),
            Err(StoreError::UnknownNode(node)) => Err(Status::not_found(format!(
                "no node named {node:?} is known to this collector"
            ))),
            Err(other) => Err(Status::internal(other.to_string())),
        }
    }
}

/// One Watch stream: a snapshot, then coalesced deltas until the client
/// goes away or the collector shuts down.
#[instrument(skip(store, tx, shutdown))]
async fn run_watcher(
    store: Arc<Store>,
    tx: mpsc::Sender<Result<FleetUpdate, Status>>,
    shutdown: CancellationToken,
    peer: String,
) {
    let mut changed = store.subscribe();
    changed.borrow_and_update();
    let version = store.version();
    let first = snapshot(&store, now_unix_ms());
    let mut cursor = Cursor::after_snapshot(version, &first);
    let update = FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(first)),
    };
    if !send(&tx, update, &shutdown).await {
        return;
    }
    debug!("watcher started");
    let mut last_sent = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            r = changed.changed() => if r.is_err() { break },
        }
        // Coalesce: whatever else changes before the gap is over goes into
        // this same delta.
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            _ = tokio::time::sleep_until(last_sent + MIN_UPDATE_GAP) => {}
        }
        changed.borrow_and_update();
        let Some(delta) = delta(&store, &mut cursor, now_unix_ms()) else {
            continue;
        };
        let update = FleetUpdate {
            update: Some(fleet_update::Update::Delta(delta)),
        };
        if !send(&tx, update, &shutdown).await {
            break;
        }
        last_sent = tokio::time::Instant::now();
    }
    debug!("watcher ended");
}

/// Sends one update; false when the client is gone or shutdown began.
async fn send(
    tx: &mpsc::Sender<Result<FleetUpdate, Status>>,
    update: FleetUpdate,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        r = tx.send(Ok(update)) => r.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Identity, Reported, ResolvedPoint};
    use stacktop_proto::v1::{BackendServer, Label};

    const NOW: i64 = 1_700_000_000_000;

    fn add(store: &Store, name: &str, roles: Vec<Role>) -> crate::store::NodeHandle {
        let identity = Identity {
            name: name.into(),
            instance_id: format!("{name}-i"),
            roles,
            interval_ms: 1_000,
            ..Identity::default()
        };
        store
            .attach(identity, CancellationToken::new(), NOW)
            .unwrap()
            .handle
    }

    #[test]
    fn snapshot_sorts_nodes_and_lists_tiers_in_role_order() {
        let store = Store::new(Duration::from_secs(60));
        add(&store, "web2", vec![Role::Web]);
        add(&store, "db1", vec![Role::Db]);
        add(&store, "web1", vec![Role::Web]);
        add(&store, "misc", vec![]);
        let snap = snapshot(&store, NOW + 10);
        let names: Vec<_> = snap.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["db1", "misc", "web1", "web2"]);
        let tiers: Vec<_> = snap
            .tiers
            .iter()
            .map(|t| (t.role(), t.healthy, t.spof))
            .collect();
        assert_eq!(tiers, [(Role::Web, 2, false), (Role::Db, 1, true)]);
        assert_eq!(snap.site(), Health::Ok);
        // Silence: everything is down three intervals later.
        let snap = snapshot(&store, NOW + 3_001);
        assert!(snap.nodes.iter().all(|n| n.health() == Health::Down));
        assert_eq!(snap.site(), Health::Down);
    }

    #[test]
    fn deltas_carry_only_changed_nodes_and_coalesce() {
        let store = Store::new(Duration::from_secs(60));
        let a = add(&store, "a", vec![Role::Web]);
        add(&store, "b", vec![Role::Web]);
        let version = store.version();
        let snap = snapshot(&store, NOW);
        let mut cursor = Cursor::after_snapshot(version, &snap);
        assert!(delta(&store, &mut cursor, NOW).is_none());

        // Several changes to one node between two deltas: one upsert with the
        // newest state.
        let key = SeriesKey::new(summary::CPU, &[]);
        for seq in 1..=5 {
            let p = ResolvedPoint {
                key: &key,
                timestamp_ms: NOW + seq as i64,
                value: seq as f64 / 10.0,
            };
            store
                .apply(&a, seq, &[p], Reported::default(), NOW)
                .unwrap();
        }
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(d.upserted.len(), 1);
        assert_eq!(d.upserted[0].name, "a");
        assert_eq!(d.upserted[0].summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert_eq!(d.tiers.len(), 1);
        assert!(delta(&store, &mut cursor, NOW).is_none());

        // A new node appears in the next delta.
        add(&store, "c", vec![]);
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(
            d.upserted.iter().map(|n| &n.name).collect::<Vec<_>>(),
            ["c"]
        );
    }

    #[test]
    fn history_filters_by_labels_and_time() {
        let store = Store::new(Duration::from_secs(60));
        let h = add(&store, "n", vec![]);
        let eth0 = SeriesKey::new(
            "node_network_receive_bytes_per_second",
            &[Label::new("device", "eth0")],
        );
        let lo = SeriesKey::new(
            "node_network_receive_bytes_per_second",
            &[Label::new("device", "lo")],
        );
        for i in 0..5i64 {
            let points = [
                ResolvedPoint {
                    key: &eth0,
                    timestamp_ms: NOW + i * 1_000,
                    value: i as f64,
                },
                ResolvedPoint {
                    key: &lo,
                    timestamp_ms: NOW + i * 1_000,
                    value: 0.0,
                },
            ];
            store
                .apply(&h, i as u64 + 1, &points, Reported::default(), NOW)
                .unwrap();
        }
        let mut request = HistoryRequest {
            node: "n".into(),
            series: "node_network_receive_bytes_per_second".into(),
            labels: vec![],
            since_ms: 0,
        };
        assert_eq!(history(&store, &request).unwrap().len(), 2);
        request.labels = vec![Label::new("device", "eth0")];
        request.since_ms = NOW + 3_000;
        let got = history(&store, &request).unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<f64> = got[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [3.0, 4.0]);
        request.node = "nope".into();
        assert!(history(&store, &request).is_err());
    }

    fn rate_point(key: &SeriesKey, ts: i64, value: f64) -> ResolvedPoint<'_> {
        ResolvedPoint {
            key,
            timestamp_ms: ts,
            value,
        }
    }

    #[test]
    fn facts_and_backends_replace_whole_and_reach_deltas() {
        let store = Store::new(Duration::from_secs(60));
        let h = add(&store, "lb1", vec![Role::Lb]);
        let version = store.version();
        let mut cursor = Cursor::after_snapshot(version, &snapshot(&store, NOW));
        let server = |name: &str, status: &str| BackendServer {
            backend: "web".into(),
            server: name.into(),
            status: status.into(),
            ..Default::default()
        };
        let first = Reported {
            facts: vec![Label::new("db_role", "primary"), Label::new("x", "1")],
            backends: vec![server("web1", "UP"), server("web2", "UP")],
            ..Default::default()
        };
        store.apply(&h, 1, &[], first, NOW).unwrap();
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(d.upserted[0].facts.len(), 2);
        assert_eq!(d.upserted[0].backends.len(), 2);

        // Empty lists mean "unchanged".
        store.apply(&h, 2, &[], Reported::default(), NOW).unwrap();
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(d.upserted[0].facts.len(), 2);
        assert_eq!(d.upserted[0].backends.len(), 2);

        // Non-empty lists replace whole (no merging by key).
        let next = Reported {
            facts: vec![Label::new("db_role", "replica")],
            backends: vec![server("web2", "DOWN")],
            ..Default::default()
        };
        store.apply(&h, 3, &[], next, NOW).unwrap();
        let d = delta(&store, &mut cursor, NOW).unwrap();
        let node = &d.upserted[0];
        assert_eq!(node.facts, [Label::new("db_role", "replica")]);
        assert_eq!(node.backends, [server("web2", "DOWN")]);
        assert_eq!(snapshot(&store, NOW).nodes[0].backends.len(), 1);
    }

    #[test]
    fn traffic_compares_the_web_tier_with_the_lb_tier() {
        let store = Store::new(Duration::from_secs(60));
        let lb = add(&store, "lb1", vec![Role::Lb]);
        let web1 = add(&store, "web1", vec![Role::Web, Role::App]);
        let web2 = add(&store, "web2", vec![Role::Web]);
        add(&store, "db1", vec![Role::Db]);
        let version = store.version();
        let snap = snapshot(&store, NOW);
        assert_eq!(snap.web_lb_request_ratio, None);
        assert_eq!(snap.lb_requests_per_second, None);
        let mut cursor = Cursor::after_snapshot(version, &snap);

        let rate = |source: &str, class: &str| {
            SeriesKey::new(
                summary::HTTP_REQUESTS,
                &[Label::new("source", source), Label::new("class", class)],
            )
        };
        let (ok, err) = (rate("haproxy", "2xx"), rate("haproxy", "5xx"));
        let points = [
            rate_point(&ok, NOW - 2_000, 95.0),
            rate_point(&err, NOW - 2_000, 5.0),
        ];
        store
            .apply(&lb, 1, &points, Reported::default(), NOW)
            .unwrap();
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(d.lb_requests_per_second, Some(100.0));
        assert_eq!(d.web_requests_per_second, None);
        assert_eq!(d.web_lb_request_ratio, None);

        let nginx = rate("nginx", "2xx");
        let w1 = [rate_point(&nginx, NOW - 2_000, 48.0)];
        let w2 = [rate_point(&nginx, NOW - 2_000, 50.0)];
        store
            .apply(&web1, 1, &w1, Reported::default(), NOW)
            .unwrap();
        store
            .apply(&web2, 1, &w2, Reported::default(), NOW)
            .unwrap();
        // Every delta carries the traffic check, whichever node changed.
        let d = delta(&store, &mut cursor, NOW).unwrap();
        assert_eq!(d.web_requests_per_second, Some(98.0));
        assert_eq!(d.web_lb_request_ratio, Some(0.98));
        let snap = snapshot(&store, NOW);
        assert_eq!(snap.web_lb_request_ratio, Some(0.98));
        assert_eq!(snap.lb_requests_per_second, Some(100.0));

        // A down web node's last rate no longer counts (web2 stays fresh).
        store
            .apply(&web2, 2, &[], Reported::default(), NOW + 3_500)
            .unwrap();
        let snap = snapshot(&store, NOW + 3_500);
        assert_eq!(snap.web_requests_per_second, Some(50.0));

        // The comparison averages the last seconds, so one second's edge
        // effect does not swing it: (95 + 0) / 2 + (5 + 0) / 2.
        let zero = [rate_point(&ok, NOW, 0.0), rate_point(&err, NOW, 0.0)];
        store
            .apply(&lb, 2, &zero, Reported::default(), NOW)
            .unwrap();
        let snap = snapshot(&store, NOW + 1_000);
        assert_eq!(snap.lb_requests_per_second, Some(50.0));

        // An LB rate of 0: no ratio, but both rates are known.
        let idle = Store::new(Duration::from_secs(60));
        let lb = add(&idle, "lb1", vec![Role::Lb]);
        let web = add(&idle, "web1", vec![Role::Web]);
        idle.apply(&lb, 1, &zero, Reported::default(), NOW).unwrap();
        idle.apply(
            &web,
            1,
            &[rate_point(&nginx, NOW, 0.0)],
            Reported::default(),
            NOW,
        )
        .unwrap();
        let snap = snapshot(&idle, NOW + 1_000);
        assert_eq!(snap.lb_requests_per_second, Some(0.0));
        assert_eq!(snap.web_requests_per_second, Some(0.0));
        assert_eq!(snap.web_lb_request_ratio, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_folds_many_changes_into_at_most_four_updates_a_second() {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let h = add(&store, "a", vec![Role::Web]);
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_watcher(
            store.clone(),
            tx,
            shutdown.clone(),
            "test".into(),
        ));
        let first = rx.recv().await.unwrap().unwrap();
        assert!(matches!(
            first.update,
            Some(fleet_update::Update::Snapshot(_))
        ));
        let mut deltas = 0;
        // 100 changes over one (virtual) second.
        for seq in 1..=100 {
            store.apply(&h, seq, &[], Reported::default(), NOW).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            while let Ok(update) = rx.try_recv() {
                assert!(matches!(
                    update.unwrap().update,
                    Some(fleet_update::Update::Delta(_))
                ));
                deltas += 1;
            }
        }
        tokio::time::sleep(MIN_UPDATE_GAP * 2).await;
        while rx.try_recv().is_ok() {
            deltas += 1;
        }
        assert!((2..=6).contains(&deltas), "{deltas} deltas");
        shutdown.cancel();
        task.await.unwrap();
    }
}
