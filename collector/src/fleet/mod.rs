//! The Fleet service: what dashboards and scripts see, all of it read from
//! one evaluated fleet ([`view`]).
//!
//! - `Snapshot`: every node (sorted by name) and the totals, from a view
//!   brought up to date for the call.
//! - `Watch`: a snapshot, then deltas as the fleet changes, 4 a second
//!   ([`watch`]).
//! - `Node`: one node in full, with its latest values and its request rates
//!   per access-log source (the detail screen).
//! - `History`: the points of one node's series matching a name and labels,
//!   read from the store.
//!
//! # Layout
//!
//! - [`copy`]: what is copied out of the store (the only work under a
//!   node's lock).
//! - [`summary`], [`traffic`], [`eval`]: deciding one node, and the web/LB
//!   cross-check.
//! - [`diff`]: the change between two states of a node.
//! - [`view`]: the shared view, its builder and the delta broadcast.
//! - [`watch`]: one Watch stream; [`routes`] serves it with updates encoded
//!   once for every stream.

pub mod copy;
pub mod diff;
pub mod eval;
pub mod routes;
pub mod summary;
pub mod traffic;
pub mod view;
pub mod watch;

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use stacktop_proto::now_unix_ms;
use stacktop_proto::v1::fleet_server::Fleet;
use stacktop_proto::v1::{
    FleetSnapshot, FleetUpdate, HistoryRequest, HistoryResponse, NodeRequest, NodeState,
    SeriesHistory, SnapshotRequest, TimedValue, WatchRequest,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::store::{SeriesKey, Store, StoreError};
use crate::tiers::Tiers;
pub use view::{BUILD_INTERVAL, FleetView, NodeView, Published, Views};

/// Most Watch streams served at once; each costs a task and a backlog.
pub const MAX_WATCHERS: usize = 1_024;

/// Points of `node`'s series named `series` carrying all `labels`, since
/// `since_ms`, oldest first. The full-resolution points held in memory
/// (`--history`) come as they are; when `since_ms` reaches further back and
/// `tiers` are kept, the older part comes from the finest coarse tier that
/// covers it, one averaged point per bucket (with its min, max and width).
/// `since_ms == 0` means the oldest point held in memory.
pub fn history(
    store: &Store,
    tiers: Option<&Tiers>,
    request: &HistoryRequest,
    now_ms: i64,
) -> Result<Vec<SeriesHistory>, StoreError> {
    let wanted = SeriesKey::new(request.series.clone(), &request.labels);
    let held: Vec<(SeriesKey, Vec<TimedValue>)> = store.with_node(&request.node, |n| {
        n.series()
            .filter(|(key, _)| {
                key.name == wanted.name && wanted.labels.iter().all(|l| key.labels.contains(l))
            })
            .map(|(key, series)| {
                let points = series
                    .points_since(request.since_ms)
                    .map(|(timestamp_ms, value)| TimedValue {
                        timestamp_ms,
                        value,
                        ..TimedValue::default()
                    })
                    .collect();
                (SeriesKey::clone(key), points)
            })
            .collect()
    })?;
    Ok(held
        .into_iter()
        .map(|(key, points)| {
            let oldest = points.first().map_or(now_ms, |p| p.timestamp_ms);
            let mut older = match tiers {
                Some(tiers) if request.since_ms > 0 && request.since_ms < oldest => {
                    coarse(tiers, &request.node, &key, request.since_ms..oldest, now_ms)
                }
                _ => Vec::new(),
            };
            older.extend(points);
            SeriesHistory {
                name: key.name.clone(),
                labels: key.proto_labels(),
                points: older,
            }
        })
        .collect())
}

/// The buckets of `range` from `tiers`, as points; those reaching into
/// `range.end` (where full resolution takes over) are left out. A failed
/// read is logged and served as no older points.
fn coarse(
    tiers: &Tiers,
    node: &str,
    key: &SeriesKey,
    range: std::ops::Range<i64>,
    now_ms: i64,
) -> Vec<TimedValue> {
    let end = range.end;
    match tiers.read(node, key, range, now_ms) {
        Ok((step_ms, buckets)) => buckets
            .into_iter()
            .filter(|b| b.start_ms + step_ms <= end)
            .map(|b| TimedValue {
                timestamp_ms: b.start_ms,
                value: f64::from(b.avg),
                min: Some(f64::from(b.min)),
                max: Some(f64::from(b.max)),
                step_ms,
            })
            .collect(),
        Err(err) => {
            tracing::warn!(node, series = %key.name, cause = %err, "cannot read the coarse history");
            Vec::new()
        }
    }
}

/// One node in full: its state from `view`, and from `store` the latest
/// value of every series and its request rates per access-log source
/// (fresh sources only, by the view's rules at `now_ms`).
pub fn node_detail(view: &FleetView, store: &Store, name: &str, now_ms: i64) -> Option<NodeState> {
    let node = view.node(name)?;
    let mut state = node.state();
    let latest = store.with_node(name, copy::latest_values).ok()?;
    let fresh = summary::Freshness {
        now_ms,
        interval_ms: state.interval_ms,
        alive: state.health() != stacktop_proto::Health::Down,
    };
    state.traffic = traffic::source_traffic(
        latest
            .iter()
            .filter(|v| fresh.is_fresh(v.slot.is_log(), v.updated_ms)),
    );
    state.latest = latest.iter().map(copy::LatestValue::to_proto).collect();
    Some(state)
}

/// The whole fleet from `view`, with every node's latest series values
/// from `store` when `include_latest`.
pub fn snapshot(view: &FleetView, store: &Store, include_latest: bool) -> FleetSnapshot {
    let mut snap = view.snapshot();
    if include_latest {
        for node in &mut snap.nodes {
            if let Ok(latest) = store.with_node(&node.name, copy::latest_values) {
                node.latest = latest.iter().map(copy::LatestValue::to_proto).collect();
            }
        }
    }
    snap
}

/// Publishes `views` every [`BUILD_INTERVAL`] until cancelled, so that
/// watchers get changes and silence turns into `down` without any incoming
/// frame.
pub async fn keep_fresh(views: Arc<Views>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(BUILD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                publish(&views).await;
            }
        }
    }
}

/// Brings the latest view up to date now, off the async workers (a
/// refresh of a large fleet is CPU work).
pub async fn refresh(views: &Arc<Views>) -> Arc<FleetView> {
    off_workers(views, |views, now| views.refresh(now)).await
}

/// Brings the view up to date and publishes it, off the async workers.
pub async fn publish(views: &Arc<Views>) -> Arc<FleetView> {
    off_workers(views, |views, now| views.publish(now)).await
}

async fn off_workers(views: &Arc<Views>, f: fn(&Views, i64) -> Arc<FleetView>) -> Arc<FleetView> {
    let views = views.clone();
    match tokio::task::spawn_blocking(move || f(&views, now_unix_ms())).await {
        Ok(view) => view,
        // Only a panic in the builder gets here; re-raise it.
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// The Fleet gRPC service.
#[derive(Debug, Clone)]
pub struct FleetService {
    store: Arc<Store>,
    views: Arc<Views>,
    /// Ends every Watch stream when cancelled.
    shutdown: CancellationToken,
    /// Tracks the per-watcher tasks so shutdown can wait for them.
    tracker: TaskTracker,
    /// One permit per open Watch stream ([`MAX_WATCHERS`]).
    watchers: Arc<Semaphore>,
    /// The coarse history, when the collector keeps a data directory.
    tiers: Option<Tiers>,
}

impl FleetService {
    /// A service reading `store` through `views`; watchers stop when
    /// `shutdown` is cancelled.
    pub fn new(
        store: Arc<Store>,
        views: Arc<Views>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            store,
            views,
            shutdown,
            tracker,
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
            tiers: None,
        }
    }

    /// Serves History windows older than memory holds from `tiers`.
    pub fn with_tiers(mut self, tiers: Option<Tiers>) -> Self {
        self.tiers = tiers;
        self
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<FleetUpdate, Status>> + Send>>;

/// A Watch stream's updates, encoded.
pub type EncodedStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl FleetService {
    /// Starts one Watch stream (see [`watch`]) for a client at `peer`.
    pub fn start_watch(
        &self,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<Response<EncodedStream>, Status> {
        let peer = peer.map(|a| a.to_string()).unwrap_or_default();
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this collector already serves its limit of {MAX_WATCHERS} Watch streams"
            ))
        })?;
        // One message in flight: a slow reader holds up only its own task.
        let (tx, rx) = mpsc::channel(1);
        let views = self.views.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            watch::run(views, tx, shutdown, peer).await;
            drop(permit);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tonic::async_trait]
impl Fleet for FleetService {
    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<FleetSnapshot>, Status> {
        let include_latest = request.into_inner().include_latest;
        let view = refresh(&self.views).await;
        Ok(Response::new(snapshot(&view, &self.store, include_latest)))
    }

    type WatchStream = WatchStream;

    /// Served by [`routes::FleetRoutes`] with pre-encoded updates; this
    /// decoding path only serves a bare `FleetServer`.
    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use tokio_stream::StreamExt as _;
        let encoded = self.start_watch(request.remote_addr())?.into_inner();
        let decoded = encoded.map(|item| {
            item.and_then(|bytes| {
                FleetUpdate::decode(bytes)
                    .map_err(|e| Status::internal(format!("decoding an update: {e}")))
            })
        });
        Ok(Response::new(Box::pin(decoded)))
    }

    async fn node(&self, request: Request<NodeRequest>) -> Result<Response<NodeState>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("node: `name` must not be empty"));
        }
        let view = refresh(&self.views).await;
        node_detail(&view, &self.store, &name, now_unix_ms())
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!("no node named {name:?} is known to this collector"))
            })
    }

    async fn alerts(
        &self,
        request: Request<stacktop_proto::v1::AlertsRequest>,
    ) -> Result<Response<stacktop_proto::v1::AlertsResponse>, Status> {
        let request = request.into_inner();
        let limit = request
            .include_history
            .then(|| match request.history_limit {
                0 => 100,
                n => (n as usize).min(crate::alerts::HISTORY_LIMIT),
            });
        let response = match self.views.alerts() {
            Some(alerts) => alerts.response(limit, stacktop_proto::now_unix_ms()),
            None => Default::default(),
        };
        Ok(Response::new(response))
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
        let now_ms = stacktop_proto::now_unix_ms();
        let (store, tiers) = (self.store.clone(), self.tiers.clone());
        // Coarse history is read from disk: off the async workers.
        let read =
            tokio::task::spawn_blocking(move || history(&store, tiers.as_ref(), &request, now_ms))
                .await
                .map_err(|e| Status::internal(format!("history: {e}")))?;
        match read {
            Ok(series) => Ok(Response::new(HistoryResponse { series })),
            Err(StoreError::UnknownNode(node)) => Err(Status::not_found(format!(
                "no node named {node:?} is known to this collector"
            ))),
            Err(other) => Err(Status::internal(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{Identity, NodeHandle, Reported, ResolvedPoint};
    use stacktop_proto::metrics;
    use stacktop_proto::v1::{BackendServer, Label, fleet_update};
    use stacktop_proto::{Health, Role};

    const NOW: i64 = 1_700_000_000_000;

    fn add(store: &Store, name: &str, roles: Vec<Role>, now: i64) -> NodeHandle {
        let identity = Identity {
            name: name.into(),
            instance_id: format!("{name}-i"),
            roles,
            interval_ms: 1_000,
            ..Identity::default()
        };
        store
            .attach(identity, CancellationToken::new(), now)
            .unwrap()
            .handle
    }

    #[test]
    fn history_filters_by_labels_and_time() {
        let store = Store::new(Duration::from_secs(60));
        let h = add(&store, "n", vec![], NOW);
        let eth0 = SeriesKey::new(metrics::NETWORK_RECEIVE, &[Label::new("device", "eth0")]);
        let lo = SeriesKey::new(metrics::NETWORK_RECEIVE, &[Label::new("device", "lo")]);
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
            series: metrics::NETWORK_RECEIVE.into(),
            labels: vec![],
            since_ms: 0,
        };
        assert_eq!(history(&store, None, &request, NOW).unwrap().len(), 2);
        request.labels = vec![Label::new("device", "eth0")];
        request.since_ms = NOW + 3_000;
        let got = history(&store, None, &request, NOW).unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<f64> = got[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [3.0, 4.0]);
        request.node = "nope".into();
        assert!(history(&store, None, &request, NOW).is_err());
    }

    #[test]
    fn facts_and_backends_replace_whole_and_reach_deltas() {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = Views::new(store.clone());
        let h = add(&store, "lb1", vec![Role::Lb], NOW);
        views.publish(NOW);
        let mut deltas = views.subscribe();
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
        views.publish(NOW);
        let d = deltas.try_recv().unwrap().decode();
        assert_eq!(d.changed[0].facts.len(), 2);
        assert_eq!(d.changed[0].backends.as_ref().unwrap().servers.len(), 2);

        // Empty lists mean "unchanged".
        store.apply(&h, 2, &[], Reported::default(), NOW).unwrap();
        let view = views.publish(NOW);
        let node = view.node("lb1").unwrap().state();
        assert_eq!(node.facts.len(), 2);
        assert_eq!(node.backends.len(), 2);

        // Non-empty lists replace whole (no merging by key).
        let next = Reported {
            facts: vec![Label::new("db_role", "replica")],
            backends: vec![server("web2", "DOWN")],
            ..Default::default()
        };
        store.apply(&h, 3, &[], next, NOW).unwrap();
        let view = views.publish(NOW);
        let node = view.node("lb1").unwrap().state();
        assert_eq!(node.facts, [Label::new("db_role", "replica")]);
        assert_eq!(node.backends, [server("web2", "DOWN")]);
        assert_eq!(view.snapshot().nodes[0].backends.len(), 1);
    }

    #[test]
    fn node_detail_has_latest_values_and_traffic_per_source() {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = Views::new(store.clone());
        let now = now_unix_ms();
        let h = add(&store, "web1", vec![Role::Web], now);
        let ok = SeriesKey::new(
            metrics::HTTP_REQUESTS,
            &[Label::new("source", "nginx"), Label::new("class", "2xx")],
        );
        let p = ResolvedPoint {
            key: &ok,
            timestamp_ms: now - 2_000,
            value: 40.0,
        };
        store.apply(&h, 1, &[p], Reported::default(), now).unwrap();
        let load = SeriesKey::new(metrics::LOAD1, &[]);
        let p = ResolvedPoint {
            key: &load,
            timestamp_ms: now,
            value: 1.5,
        };
        store.apply(&h, 2, &[p], Reported::default(), now).unwrap();
        let view = views.publish(now);
        let detail = node_detail(&view, &store, "web1", now).unwrap();
        assert_eq!(detail.latest.len(), 2);
        assert_eq!(detail.traffic.len(), 1);
        assert_eq!(detail.traffic[0].class_2xx, Some(40.0));
        assert_eq!(detail.summary.unwrap().qps, Some(40.0));
        assert!(node_detail(&view, &store, "nope", now).is_none());
        // Snapshots carry series values only on request.
        assert!(snapshot(&view, &store, false).nodes[0].latest.is_empty());
        let latest = &snapshot(&view, &store, true).nodes[0].latest;
        assert_eq!(latest.len(), 2);
        let load = latest.iter().find(|v| v.name == metrics::LOAD1).unwrap();
        assert_eq!(load.value, 1.5);
    }

    fn decode(update: Result<Bytes, Status>) -> fleet_update::Update {
        FleetUpdate::decode(update.unwrap())
            .unwrap()
            .update
            .unwrap()
    }

    /// Many changes, and point reads refreshing the view after each: the
    /// stream still gets one update per publication (4 a second), not one
    /// per refresh.
    #[tokio::test(start_paused = true)]
    async fn a_watcher_gets_about_four_updates_a_second_however_often_the_view_is_read() {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = Arc::new(Views::new(store.clone()));
        let now = now_unix_ms();
        let h = add(&store, "a", vec![Role::Web], now);
        let shutdown = CancellationToken::new();
        let publisher = tokio::spawn(keep_fresh(views.clone(), shutdown.clone()));
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(watch::run(
            views.clone(),
            tx,
            shutdown.clone(),
            "test".into(),
        ));
        let first = rx.recv().await.unwrap();
        assert!(matches!(decode(first), fleet_update::Update::Snapshot(_)));
        let mut deltas = 0;
        // 100 changes over one (virtual) second, each read at once.
        for seq in 1..=100 {
            // Each batch moves the node's last-seen time: a real change.
            store
                .apply(&h, seq, &[], Reported::default(), now + seq as i64)
                .unwrap();
            views.refresh(now + seq as i64);
            tokio::time::sleep(Duration::from_millis(10)).await;
            while let Ok(update) = rx.try_recv() {
                assert!(matches!(decode(update), fleet_update::Update::Delta(_)));
                deltas += 1;
            }
        }
        tokio::time::sleep(BUILD_INTERVAL * 2).await;
        while rx.try_recv().is_ok() {
            deltas += 1;
        }
        assert!((2..=7).contains(&deltas), "{deltas} deltas");
        shutdown.cancel();
        task.await.unwrap();
        publisher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_falls_behind_gets_a_fresh_snapshot() {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = Arc::new(Views::new(store.clone()));
        let now = now_unix_ms();
        let h = add(&store, "a", vec![Role::Web], now);
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(watch::run(
            views.clone(),
            tx,
            shutdown.clone(),
            "test".into(),
        ));
        rx.recv().await.unwrap().unwrap();
        // The reader stops reading: one delta fills its queue, the watcher
        // blocks sending the next, and many more are published than the
        // backlog holds.
        for seq in 1..=(view::DELTA_BACKLOG as u64 * 3) {
            store
                .apply(&h, seq, &[], Reported::default(), now + seq as i64)
                .unwrap();
            views.publish(now + seq as i64);
            tokio::task::yield_now().await;
        }
        let newest = views.published().generation;
        // It catches up with a snapshot of the newest state (after the
        // updates that were already queued).
        let caught_up = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match decode(rx.recv().await.unwrap()) {
                    fleet_update::Update::Snapshot(s) => return s,
                    _ => continue,
                }
            }
        })
        .await
        .expect("no snapshot after falling behind");
        assert_eq!(caught_up.generation, newest);
        assert_eq!(caught_up.nodes[0].health(), Health::Ok);
        shutdown.cancel();
        task.await.unwrap();
    }
}
