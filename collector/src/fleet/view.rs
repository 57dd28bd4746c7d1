//! The evaluated fleet: every node's served state, its health as each of
//! its roles, the tiers, the site, the node counts and the web/LB traffic
//! cross-check, decided once per change and shared behind an `Arc` by every
//! reader (Snapshot, every Watch stream, and later alerts and `/metrics`).
//!
//! # How a view is built
//!
//! [`Views::refresh`] brings the view up to date at an instant:
//!
//! 1. **Copy what changed.** The store keeps a list of the nodes changed
//!    since the last refresh; only those are locked, and only to copy them
//!    ([`NodeCopy`]: a few dozen numbers that ingest kept ready).
//! 2. **Evaluate what may differ**: the nodes just copied, and the nodes
//!    whose predicted next change (a value or check going stale, silence
//!    turning into `down`) has come. Everything else keeps its state.
//! 3. **Diff and publish.** Each re-evaluated node is compared with what
//!    readers hold; the differences ([`NodeChange`]s, nothing for an
//!    unchanged node) and the totals make one [`FleetDelta`] with the next
//!    generation number, broadcast to every watcher, and the new view
//!    replaces the current one.
//!
//! Nodes are kept by their store entry's number, not their name, so a
//! refresh compares no strings; the name order is rebuilt only when a node
//! appears. A background task refreshes every [`BUILD_INTERVAL`]; Snapshot
//! and Fleet.Node refresh before they answer, so they are never older than
//! the batches acknowledged before the call. Refreshes are serialized by
//! one mutex (CPU work only, never held across an `.await`); the cost of a
//! refresh is the number of changed nodes, and one more watcher adds no
//! evaluation at all, only the sending.
//!
//! [`NodeChange`]: stacktop_proto::v1::NodeChange

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use stacktop_proto::v1::{
    Alert, FleetDelta, FleetSnapshot, FleetTotals, FleetUpdate, NodeChange, TierState, Traffic,
    fleet_update,
};
use stacktop_proto::{Health, Role, VERSION};
use tokio::sync::{broadcast, watch};

use self::matching::Index;
use super::copy::{NodeCopy, SourceSeconds};
use super::diff;
pub use super::eval::NodeView;
use super::eval::{self, CpuRing};
use super::summary::Freshness;
use super::traffic;
use crate::alerts::{Alerts, InMaintenance};
use crate::health;
use crate::store::{Identity, Store};

/// How often the background task brings the view up to date; also the
/// pace of Watch updates (4 per second while the fleet changes).
pub const BUILD_INTERVAL: Duration = Duration::from_millis(250);

/// A refresh taking longer than this is logged: watchers get updates late.
const SLOW_REFRESH: Duration = Duration::from_millis(100);

/// Deltas a watcher may fall behind by before it is sent a fresh snapshot
/// (16 seconds' worth; deltas are shared, so the backlog costs one copy).
pub const DELTA_BACKLOG: usize = 64;

pub mod matching;

/// The whole fleet, decided.
#[derive(Debug, Default)]
pub struct FleetView {
    /// Numbers the published evaluations: the delta leading to this view
    /// carries the same number.
    pub generation: u64,
    /// The store version this view covers.
    pub store_version: u64,
    /// Every node, by store entry number.
    by_id: Vec<Option<Arc<NodeView>>>,
    /// Entry numbers in name order.
    order: Arc<Vec<u32>>,
    /// Tiers, site, counts and traffic.
    pub totals: FleetTotals,
    /// The active alerts, as the alert engine last listed them.
    pub alerts: Arc<Vec<Alert>>,
    /// [`FleetView::snapshot`] as an encoded `FleetUpdate`, made once for
    /// every Watch stream that starts from this view.
    encoded_snapshot: OnceLock<Bytes>,
}

impl FleetView {
    /// The snapshot as an encoded `FleetUpdate`, made once per view.
    pub fn encoded_snapshot(&self) -> Bytes {
        self.encoded_snapshot
            .get_or_init(|| {
                FleetUpdate {
                    update: Some(fleet_update::Update::Snapshot(self.snapshot())),
                }
                .encode_to_vec()
                .into()
            })
            .clone()
    }

    /// Every node, sorted by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<NodeView>> {
        self.order
            .iter()
            .filter_map(|&id| self.by_id.get(id as usize)?.as_ref())
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True without nodes.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The named node.
    pub fn node(&self, name: &str) -> Option<&Arc<NodeView>> {
        let name_of = |id: &u32| {
            self.by_id
                .get(*id as usize)
                .and_then(Option::as_ref)
                .map_or("", |n| n.identity.name.as_str())
        };
        let at = self
            .order
            .binary_search_by(|id| name_of(id).cmp(name))
            .ok()?;
        self.by_id.get(self.order[at] as usize)?.as_ref()
    }

    /// The whole fleet as a snapshot (without series values).
    pub fn snapshot(&self) -> FleetSnapshot {
        FleetSnapshot {
            nodes: self.nodes().map(|n| n.state()).collect(),
            totals: Some(self.totals.clone()),
            generation: self.generation,
            alerts: self.alerts.to_vec(),
            ..Default::default()
        }
    }
}

/// What the builder keeps about one node between refreshes.
#[derive(Debug)]
struct Tracked {
    /// The entry's change stamp when it was last copied.
    copied_at: u64,
    copy: NodeCopy,
    cpu: CpuRing,
    /// Copied since it was last evaluated.
    dirty: bool,
    next_change_ms: i64,
    /// An LB or web node: its sources count in the cross-check.
    in_traffic: bool,
    /// Listed in the builder's `unpublished_ids`.
    unpublished: bool,
}

/// The builder's state: the nodes as last copied and evaluated.
#[derive(Debug, Default)]
struct Builder {
    /// By store entry number.
    tracked: Vec<Option<Tracked>>,
    /// The soonest predicted change over all nodes.
    next_change_ms: i64,
    /// Nodes whose latest view differs from the published one.
    unpublished_ids: Vec<u32>,
    /// Some node or tier was in maintenance at the last refresh.
    had_maintenance: bool,
    /// Forgotten nodes not yet dropped from the latest view, by entry.
    gone_ids: Vec<u32>,
    /// Forgotten nodes not yet told to Watch streams, by name.
    removed: Vec<String>,
    /// The latest view differs from the published one.
    unpublished: bool,
    /// Every node's names and addresses, for telling which node each
    /// HAProxy backend server is.
    index: Index,
    /// A node appeared or went, or changed its identity or facts, since
    /// `index` was built.
    index_dirty: bool,
}

/// A published delta, encoded once for every Watch stream.
#[derive(Debug)]
pub struct Published {
    /// The generation it leads to.
    pub generation: u64,
    /// `FleetUpdate { delta }`, protobuf-encoded.
    pub encoded: Bytes,
}

impl Published {
    /// The delta itself (for tests and tools; streams send the bytes).
    pub fn decode(&self) -> FleetDelta {
        match FleetUpdate::decode(self.encoded.clone()).map(|u| u.update) {
            Ok(Some(fleet_update::Update::Delta(d))) => d,
            _ => FleetDelta::default(),
        }
    }
}

/// The views, their builder, and the channels readers follow.
///
/// There are two views: the *latest*, which point reads (Snapshot,
/// Fleet.Node) bring up to date before they answer, and the *published*
/// one, which Watch streams follow. Only [`Views::publish`] (every
/// [`BUILD_INTERVAL`], and when a stream starts) moves the published view,
/// with one delta from the previous published view; so a client calling
/// Snapshot in a loop makes no extra deltas for everyone else.
#[derive(Debug)]
pub struct Views {
    store: Arc<Store>,
    /// Evaluated with every publication, when alerting runs.
    alerts: Option<Arc<Alerts>>,
    builder: Mutex<Builder>,
    /// The latest view (readers take an `Arc` and let go of the lock).
    latest: watch::Sender<Arc<FleetView>>,
    /// The published view: what Watch streams hold once they applied every
    /// delta.
    published: watch::Sender<Arc<FleetView>>,
    /// Every published delta, in generation order.
    deltas: broadcast::Sender<Arc<Published>>,
}

impl Views {
    /// Views of `store`, empty until the first refresh.
    pub fn new(store: Arc<Store>) -> Self {
        Self::with_alerts(store, None)
    }

    /// The alert engine the views evaluate, if any.
    pub fn alerts(&self) -> Option<&Arc<Alerts>> {
        self.alerts.as_ref()
    }

    /// Views of `store` that evaluate `alerts` with every publication.
    pub fn with_alerts(store: Arc<Store>, alerts: Option<Arc<Alerts>>) -> Self {
        let empty = Arc::new(FleetView {
            totals: totals(&[], Traffic::default(), &[], 0),
            ..Default::default()
        });
        Self {
            store,
            alerts,
            builder: Mutex::new(Builder::default()),
            latest: watch::channel(empty.clone()).0,
            published: watch::channel(empty).0,
            deltas: broadcast::channel(DELTA_BACKLOG).0,
        }
    }

    /// The latest view.
    pub fn current(&self) -> Arc<FleetView> {
        self.latest.borrow().clone()
    }

    /// The published view (what a Watch stream holds).
    pub fn published(&self) -> Arc<FleetView> {
        self.published.borrow().clone()
    }

    /// Every delta published from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.deltas.subscribe()
    }

    /// A receiver that sees each newly published view (only ever the
    /// newest).
    pub fn watch(&self) -> watch::Receiver<Arc<FleetView>> {
        self.published.subscribe()
    }

    /// Brings the latest view up to date at `now_ms` (see the module docs)
    /// and returns it, without publishing. Cheap when nothing changed.
    pub fn refresh(&self, now_ms: i64) -> Arc<FleetView> {
        self.update(now_ms, false)
    }

    /// Brings the view up to date at `now_ms` and publishes it: one delta
    /// from the previous published view (none when nothing a reader sees
    /// changed). Returns the published view.
    pub fn publish(&self, now_ms: i64) -> Arc<FleetView> {
        self.update(now_ms, true)
    }

    fn update(&self, now_ms: i64, publish: bool) -> Arc<FleetView> {
        let mut builder = self.builder.lock().unwrap_or_else(PoisonError::into_inner);
        let builder = &mut *builder;
        let version = self.store.version();
        let previous = self.current();
        let stale = version != previous.store_version || now_ms >= builder.next_change_ms;
        if !(stale || publish && builder.unpublished) {
            return if publish { self.published() } else { previous };
        }
        let started = Instant::now();
        let mut by_id = previous.by_id.clone();
        let mut order = previous.order.clone();
        let mut totals_now = previous.totals.clone();
        let maintenance = self
            .alerts
            .as_ref()
            .map(|a| a.in_maintenance(now_ms))
            .unwrap_or_default();
        // A window that starts or ends re-decides the nodes it covers.
        let maintenance_moved = !maintenance.nodes.is_empty()
            || !maintenance.tiers.is_empty()
            || builder.had_maintenance;
        builder.had_maintenance = !maintenance.nodes.is_empty() || !maintenance.tiers.is_empty();
        let stale = stale || maintenance_moved;
        if stale {
            let appeared = self.copy_changed(builder);
            // The node index changes rarely; the LBs' servers are matched
            // again only when it does (or their sample does).
            let rematch = builder.index_dirty;
            if rematch {
                builder.index_dirty = false;
                let nodes = builder.tracked.iter().flatten().map(|t| {
                    let id = &t.copy.identity;
                    (id.name.as_str(), t.copy.facts.as_slice(), id.peer.as_str())
                });
                builder.index = Index::new(builder.index.generation + 1, nodes);
            }
            if by_id.len() < builder.tracked.len() {
                by_id.resize(builder.tracked.len(), None);
            }
            for id in builder.gone_ids.drain(..) {
                by_id[id as usize] = None;
            }
            let mut next_change_ms = i64::MAX;
            for (id, t) in builder.tracked.iter_mut().enumerate() {
                let Some(t) = t else { continue };
                let until = maintenance_until(&maintenance, &t.copy.identity);
                let moved = by_id[id]
                    .as_deref()
                    .is_some_and(|n| n.status.in_maintenance != until.is_some());
                let matched = rematch && !t.copy.backends.servers.is_empty();
                if t.dirty || moved || matched || now_ms >= t.next_change_ms {
                    let old = by_id[id].as_deref();
                    let (mut view, next) = eval::evaluate_in(&t.copy, &t.cpu, old, until, now_ms);
                    matching::apply(&mut view.backends, old.map(|o| &o.backends), &builder.index);
                    if view.health() == Health::Down {
                        t.cpu.clear();
                    }
                    t.dirty = false;
                    t.next_change_ms = next;
                    if diff::change(old, &view).is_some() {
                        by_id[id] = Some(Arc::new(view));
                        if !t.unpublished {
                            t.unpublished = true;
                            builder.unpublished_ids.push(id as u32);
                        }
                    }
                }
                next_change_ms = next_change_ms.min(t.next_change_ms);
            }
            builder.next_change_ms = next_change_ms;
            if appeared {
                let mut ids: Vec<u32> = (0..by_id.len() as u32)
                    .filter(|&id| by_id[id as usize].is_some())
                    .collect();
                ids.sort_by(|a, b| {
                    let name = |id: &u32| {
                        by_id[*id as usize]
                            .as_ref()
                            .map(|n| n.identity.name.as_str())
                    };
                    name(a).cmp(&name(b))
                });
                order = Arc::new(ids);
            }
            let traffic = cross_check(&builder.tracked, now_ms);
            let tiers_in_maintenance: Vec<Role> = maintenance.tiers.keys().copied().collect();
            totals_now = totals(&by_id, traffic, &tiers_in_maintenance, now_ms);
            builder.unpublished |=
                !builder.unpublished_ids.is_empty() || !same_totals(&totals_now, &previous.totals);
        }
        let took = started.elapsed();
        if took > SLOW_REFRESH {
            tracing::warn!(
                nodes = order.len(),
                changed = builder.unpublished_ids.len(),
                took_ms = took.as_millis() as u64,
                "fleet view refresh is slow"
            );
        }
        let mut view = FleetView {
            generation: previous.generation,
            store_version: version,
            by_id,
            order,
            totals: totals_now,
            alerts: previous.alerts.clone(),
            encoded_snapshot: OnceLock::new(),
        };
        // Alerts are decided with every publication, from the view being
        // published; point reads carry the latest decision.
        if publish && let Some(alerts) = &self.alerts {
            let outcome = alerts.evaluate(&view, now_ms);
            view.alerts = outcome.alerts;
        }
        count_alerts(&mut view.totals, &view.alerts);
        if !publish {
            let view = Arc::new(view);
            self.latest.send_replace(view.clone());
            return view;
        }

        // Publish: every node that changed since the published view, and
        // the totals.
        let published = self.published();
        let mut changed: Vec<NodeChange> = Vec::new();
        for id in builder.unpublished_ids.drain(..) {
            if let Some(Some(t)) = builder.tracked.get_mut(id as usize) {
                t.unpublished = false;
            }
            let old = published.by_id.get(id as usize).and_then(Option::as_deref);
            if let Some(new) = view.by_id.get(id as usize).and_then(Option::as_deref)
                && let Some(change) = diff::change(old, new)
            {
                changed.push(change);
            }
        }
        builder.unpublished = false;
        let alerts_changed = view.alerts != published.alerts;
        let removed = std::mem::take(&mut builder.removed);
        if changed.is_empty()
            && removed.is_empty()
            && !alerts_changed
            && same_totals(&view.totals, &published.totals)
        {
            let view = Arc::new(view);
            self.latest.send_replace(view.clone());
            return published;
        }
        // Changes in name order: readers apply them to sorted lists.
        changed.sort_by(|a, b| a.name.cmp(&b.name));
        view.generation = published.generation + 1;
        let view = Arc::new(view);
        self.latest.send_replace(view.clone());
        // The view first: a watcher that sees the delta and then asks for
        // the published view (to resync) must find at least this generation.
        self.published.send_replace(view.clone());
        let update = FleetUpdate {
            update: Some(fleet_update::Update::Delta(FleetDelta {
                changed,
                removed,
                totals: Some(view.totals.clone()),
                generation: view.generation,
                alerts_changed,
                alerts: if alerts_changed {
                    view.alerts.to_vec()
                } else {
                    Vec::new()
                },
                ..Default::default()
            })),
        };
        let published = Published {
            generation: view.generation,
            encoded: update.encode_to_vec().into(),
        };
        // No receiver is fine: nobody is watching.
        let _ = self.deltas.send(Arc::new(published));
        view
    }

    /// Copies every node changed since the last refresh; true when a node
    /// appeared.
    fn copy_changed(&self, builder: &mut Builder) -> bool {
        let mut appeared = false;
        for entry in self.store.take_changed() {
            entry.unqueue();
            let id = entry.id() as usize;
            if builder.tracked.len() <= id {
                builder.tracked.resize_with(id + 1, || None);
            }
            if entry.lock().forgotten {
                if let Some(t) = builder.tracked[id].take() {
                    builder.removed.push(t.copy.identity.name.clone());
                    builder.gone_ids.push(id as u32);
                    builder.unpublished = true;
                    builder.index_dirty = true;
                    appeared = true;
                }
                continue;
            }
            match &mut builder.tracked[id] {
                Some(t) if entry.changed_at() <= t.copied_at => {}
                Some(t) => {
                    let node = entry.lock();
                    t.copied_at = entry.changed_at();
                    let (identity, facts) = (t.copy.identity.clone(), t.copy.facts.clone());
                    t.copy.update(&node, t.cpu.last_ms());
                    drop(node);
                    // Name, peer or facts (addresses) changed: the index too.
                    if !Arc::ptr_eq(&identity, &t.copy.identity)
                        || !Arc::ptr_eq(&facts, &t.copy.facts)
                    {
                        builder.index_dirty = true;
                    }
                    t.cpu.extend(&t.copy.cpu);
                    t.in_traffic = in_traffic(&t.copy);
                    t.dirty = true;
                }
                slot @ None => {
                    let node = entry.lock();
                    let copied_at = entry.changed_at();
                    let copy = NodeCopy::of(&node, 0);
                    drop(node);
                    let mut cpu = CpuRing::default();
                    cpu.extend(&copy.cpu);
                    *slot = Some(Tracked {
                        in_traffic: in_traffic(&copy),
                        copied_at,
                        copy,
                        cpu,
                        dirty: true,
                        next_change_ms: i64::MIN,
                        unpublished: false,
                    });
                    builder.index_dirty = true;
                    appeared = true;
                }
            }
        }
        appeared
    }
}

fn in_traffic(copy: &NodeCopy) -> bool {
    let roles = &copy.identity.roles;
    roles.contains(&Role::Lb) || roles.contains(&Role::Web)
}

/// The web/LB cross-check over every live LB and web node's fresh
/// access-log sources at `now_ms`.
fn cross_check(tracked: &[Option<Tracked>], now_ms: i64) -> Traffic {
    let (mut lb, mut web): (Vec<&SourceSeconds>, Vec<&SourceSeconds>) = (Vec::new(), Vec::new());
    for t in tracked.iter().flatten().filter(|t| t.in_traffic) {
        if !eval::is_alive(&t.copy, now_ms) {
            continue;
        }
        let fresh = Freshness {
            now_ms,
            interval_ms: t.copy.identity.interval_ms,
            alive: true,
        };
        let roles = &t.copy.identity.roles;
        for source in t
            .copy
            .sources
            .iter()
            .filter(|s| fresh.is_fresh(true, s.updated_ms))
        {
            if roles.contains(&Role::Lb) {
                lb.push(source);
            }
            if roles.contains(&Role::Web) {
                web.push(source);
            }
        }
    }
    traffic::cross_check(&lb, &web)
}

/// Whether two totals say the same, apart from when they were evaluated.
fn same_totals(a: &FleetTotals, b: &FleetTotals) -> bool {
    a.tiers == b.tiers
        && a.site == b.site
        && a.traffic == b.traffic
        && (
            a.nodes_total,
            a.nodes_ok,
            a.nodes_warn,
            a.nodes_crit,
            a.nodes_unknown,
            a.nodes_down,
        ) == (
            b.nodes_total,
            b.nodes_ok,
            b.nodes_warn,
            b.nodes_crit,
            b.nodes_unknown,
            b.nodes_down,
        )
}

/// Tiers, site and node counts from every node's served state.
/// Until when a node is in maintenance: its own window or one of its
/// tiers', whichever ends last.
fn maintenance_until(maintenance: &InMaintenance, identity: &Identity) -> Option<i64> {
    let node = maintenance.nodes.get(&identity.name).copied();
    let tiers = identity
        .roles
        .iter()
        .filter_map(|role| maintenance.tiers.get(role).copied());
    node.into_iter().chain(tiers).max()
}

/// Fills the totals' alert counters from the alert list.
fn count_alerts(totals: &mut FleetTotals, alerts: &[Alert]) {
    use stacktop_proto::v1::{AlertState, Severity};
    totals.alerts_firing = 0;
    totals.alerts_pending = 0;
    totals.alerts_critical = 0;
    totals.alerts_warning = 0;
    totals.alerts_unacknowledged = 0;
    for alert in alerts {
        match alert.state() {
            AlertState::Pending => totals.alerts_pending += 1,
            AlertState::Firing => {
                totals.alerts_firing += 1;
                match alert.severity() {
                    Severity::Critical => totals.alerts_critical += 1,
                    Severity::Warning => totals.alerts_warning += 1,
                    Severity::Unspecified => {}
                }
                if !alert.acknowledged {
                    totals.alerts_unacknowledged += 1;
                }
            }
            _ => {}
        }
    }
}

fn totals(
    nodes: &[Option<Arc<NodeView>>],
    traffic: Traffic,
    in_maintenance: &[Role],
    now_ms: i64,
) -> FleetTotals {
    let mut t = FleetTotals {
        timestamp_ms: now_ms,
        collector_version: VERSION.to_string(),
        traffic: Some(traffic),
        ..Default::default()
    };
    for node in nodes.iter().flatten() {
        t.nodes_total += 1;
        match node.health() {
            Health::Ok => t.nodes_ok += 1,
            Health::Warn => t.nodes_warn += 1,
            Health::Crit => t.nodes_crit += 1,
            Health::Down => t.nodes_down += 1,
            Health::Unknown | Health::Unspecified => t.nodes_unknown += 1,
        }
    }
    let tiers = health::tiers_by_role(
        nodes
            .iter()
            .flatten()
            .flat_map(|n| n.status.role_health.iter().map(|r| (r.role(), r.health()))),
    );
    t.site = health::site(&tiers) as i32;
    t.tiers = tiers
        .into_iter()
        .map(|tier| TierState {
            role: tier.role as i32,
            healthy: tier.healthy,
            total: tier.total,
            spof: tier.spof,
            health: tier.health as i32,
            in_maintenance: in_maintenance.contains(&tier.role),
        })
        .collect();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Identity, NodeHandle, Reported, ResolvedPoint, SeriesKey};
    use stacktop_proto::delta;
    use stacktop_proto::metrics;
    use stacktop_proto::v1::{BackendServer, CheckResult, Label};
    use tokio_util::sync::CancellationToken;

    const NOW: i64 = 1_700_000_000_000;

    fn setup() -> (Arc<Store>, Views) {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = Views::new(store.clone());
        (store, views)
    }

    fn add(store: &Store, name: &str, roles: Vec<Role>) -> NodeHandle {
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

    fn check(name: &str, kind: &str, status: Health) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: kind.into(),
            status: status as i32,
            interval_ms: 1_000,
            ..Default::default()
        }
    }

    fn tier(view: &FleetView, role: Role) -> (u32, u32, bool) {
        let t = view.totals.tiers.iter().find(|t| t.role() == role).unwrap();
        (t.healthy, t.total, t.spof)
    }

    #[test]
    fn snapshot_sorts_nodes_and_lists_tiers_in_role_order() {
        let (store, views) = setup();
        add(&store, "web2", vec![Role::Web]);
        add(&store, "db1", vec![Role::Db]);
        add(&store, "web1", vec![Role::Web]);
        add(&store, "misc", vec![]);
        let snap = views.publish(NOW + 10).snapshot();
        let names: Vec<_> = snap.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["db1", "misc", "web1", "web2"]);
        let totals = snap.totals.unwrap();
        let tiers: Vec<_> = totals
            .tiers
            .iter()
            .map(|t| (t.role(), t.healthy, t.spof))
            .collect();
        assert_eq!(tiers, [(Role::Web, 2, false), (Role::Db, 1, true)]);
        assert_eq!(totals.site(), Health::Ok);
        assert_eq!((totals.nodes_total, totals.nodes_ok), (4, 4));
        // Silence: everything is down three intervals later.
        let snap = views.publish(NOW + 3_001).snapshot();
        assert!(snap.nodes.iter().all(|n| n.health() == Health::Down));
        let totals = snap.totals.unwrap();
        assert_eq!(totals.site(), Health::Down);
        assert_eq!(totals.nodes_down, 4);
    }

    #[test]
    fn silence_is_noticed_without_any_frame() {
        let (store, views) = setup();
        add(&store, "n", vec![Role::Web]);
        let mut deltas = views.subscribe();
        let first = views.publish(NOW);
        assert_eq!(first.generation, 1);
        // Nothing changes before the liveness window ends.
        let same = views.publish(NOW + 1_000);
        assert!(Arc::ptr_eq(&first, &same));
        let down = views.publish(NOW + 3_001);
        assert_eq!(down.generation, 2);
        assert_eq!(down.node("n").unwrap().health(), Health::Down);
        let d1 = deltas.try_recv().unwrap().decode();
        let d2 = deltas.try_recv().unwrap().decode();
        assert_eq!((d1.generation, d2.generation), (1, 2));
        assert_eq!(
            d2.changed[0].status.as_ref().unwrap().health(),
            Health::Down
        );
    }

    #[test]
    fn deltas_carry_only_changed_nodes_and_apply_to_the_snapshot() {
        let (store, views) = setup();
        let a = add(&store, "a", vec![Role::Web]);
        add(&store, "b", vec![Role::Web]);
        let first = views.publish(NOW);
        let mut reader = first.snapshot().nodes;
        let mut deltas = views.subscribe();
        assert_eq!(views.publish(NOW).generation, first.generation);
        assert!(deltas.try_recv().is_err(), "nothing changed, nothing sent");

        // Several batches of one node between two refreshes: one change
        // with the newest state.
        let key = SeriesKey::new(metrics::CPU_USAGE, &[]);
        for seq in 1..=5 {
            let p = ResolvedPoint {
                key: &key,
                timestamp_ms: NOW + seq as i64,
                value: seq as f64 / 10.0,
            };
            store
                .apply(&a, seq, &[p], Reported::default(), NOW + 10)
                .unwrap();
        }
        let view = views.publish(NOW + 20);
        let d = deltas.try_recv().unwrap().decode();
        assert_eq!(d.changed.len(), 1);
        let change = &d.changed[0];
        assert_eq!(change.name, "a");
        assert_eq!(
            change
                .status
                .as_ref()
                .unwrap()
                .summary
                .unwrap()
                .cpu_usage_ratio,
            Some(0.5)
        );
        assert_eq!(change.cpu_appended.len(), 5);
        assert_eq!(d.totals.as_ref().unwrap().tiers.len(), 1);
        delta::apply_delta(&mut reader, d.clone());
        assert_eq!(reader, view.snapshot().nodes);

        // A new node appears whole in the next delta.
        add(&store, "c", vec![]);
        views.publish(NOW + 30);
        let d = deltas.try_recv().unwrap().decode();
        assert_eq!(d.changed.len(), 1);
        assert!(d.changed[0].full.is_some());
    }

    #[test]
    fn the_app_tier_stays_healthy_when_only_a_dual_role_nodes_nginx_fails() {
        let (store, views) = setup();
        for (i, name) in ["web1", "web2", "web3"].iter().enumerate() {
            let h = add(&store, name, vec![Role::Web, Role::App]);
            let nginx = if i == 0 { Health::Crit } else { Health::Ok };
            let reported = Reported {
                checks: vec![
                    check("nginx", "nginx", nginx),
                    check("app:health", "app", Health::Ok),
                ],
                ..Default::default()
            };
            store.apply(&h, 1, &[], reported, NOW).unwrap();
        }
        let view = views.publish(NOW + 10);
        assert_eq!(tier(&view, Role::Web), (2, 3, false));
        assert_eq!(tier(&view, Role::App), (3, 3, false));
        assert_eq!(view.node("web1").unwrap().health(), Health::Crit);
    }

    #[test]
    fn a_dead_haproxys_backends_are_unknown() {
        let (store, views) = setup();
        let lb = add(&store, "lb1", vec![Role::Lb]);
        let server = |name: &str| BackendServer {
            backend: "web".into(),
            server: name.into(),
            status: "UP".into(),
            ..Default::default()
        };
        let sample = Reported {
            checks: vec![check("haproxy", "haproxy", Health::Ok)],
            backends: vec![server("web1"), server("web2"), server("web3")],
            ..Default::default()
        };
        store.apply(&lb, 1, &[], sample, NOW).unwrap();
        let view = views.publish(NOW + 10);
        let state = view.node("lb1").unwrap().state();
        assert_eq!(state.backends_up, Some(3));
        assert!(!state.backends_stale);

        let failed = Reported {
            checks: vec![check("haproxy", "haproxy", Health::Crit)],
            backends_error: Some("haproxy.sock: connection refused".into()),
            ..Default::default()
        };
        let mut deltas = views.subscribe();
        store.apply(&lb, 2, &[], failed, NOW + 1_000).unwrap();
        let view = views.publish(NOW + 1_010);
        let state = view.node("lb1").unwrap().state();
        assert!(state.backends_stale);
        assert_eq!(state.backends_up, None);
        assert_eq!(state.backends_error, "haproxy.sock: connection refused");
        let d = deltas.try_recv().unwrap().decode();
        let b = d.changed[0].backends.as_ref().unwrap();
        assert!(b.stale && b.up.is_none());
    }

    #[test]
    fn backend_servers_are_matched_to_nodes_as_the_fleet_changes() {
        use stacktop_proto::v1::BackendMatch;
        let (store, views) = setup();
        let lb = add(&store, "lb1", vec![Role::Lb]);
        add(&store, "web1", vec![Role::Web]);
        let server = |name: &str, address: &str, status: &str| BackendServer {
            backend: "be_web".into(),
            server: name.into(),
            address: address.into(),
            status: status.into(),
            ..Default::default()
        };
        let sample = Reported {
            checks: vec![check("haproxy", "haproxy", Health::Warn)],
            backends: vec![
                server("web1", "127.0.0.11:8080", "UP"),
                server("web2", "127.0.0.12:8080", "DOWN"),
                server("api", "10.0.0.5:80", "UP"),
            ],
            ..Default::default()
        };
        store.apply(&lb, 1, &[], sample, NOW).unwrap();
        let nodes = |view: &FleetView| -> Vec<(String, BackendMatch)> {
            view.node("lb1")
                .unwrap()
                .state()
                .backends
                .iter()
                .map(|s| (s.node.clone(), s.matched_by()))
                .collect()
        };
        let view = views.publish(NOW + 10);
        let unmatched = || (String::new(), BackendMatch::Unspecified);
        assert_eq!(
            nodes(&view),
            [
                ("web1".into(), BackendMatch::Name),
                unmatched(),
                unmatched()
            ]
        );

        // web2 joins, and a node whose stream comes from the api server's
        // address: the LB's unchanged sample is matched again.
        let mut deltas = views.subscribe();
        add(&store, "web2", vec![Role::Web]);
        let identity = Identity {
            name: "app9".into(),
            instance_id: "app9-i".into(),
            roles: vec![Role::App],
            interval_ms: 1_000,
            peer: "10.0.0.5:41000".into(),
            ..Identity::default()
        };
        store
            .attach(identity, CancellationToken::new(), NOW + 15)
            .unwrap();
        let view = views.publish(NOW + 20);
        let expected = [
            ("web1".to_string(), BackendMatch::Name),
            ("web2".to_string(), BackendMatch::Name),
            ("app9".to_string(), BackendMatch::Address),
        ];
        assert_eq!(nodes(&view), expected);
        // Watchers are told, and what they hold says the same.
        let d = deltas.try_recv().unwrap().decode();
        let change = d.changed.iter().find(|c| c.name == "lb1").unwrap();
        let told: Vec<(String, BackendMatch)> = change
            .backends
            .as_ref()
            .unwrap()
            .servers
            .iter()
            .map(|s| (s.node.clone(), s.matched_by()))
            .collect();
        assert_eq!(told, expected);

        // The same sample again: nothing about the backends is re-sent.
        let again = Reported {
            checks: vec![check("haproxy", "haproxy", Health::Warn)],
            ..Default::default()
        };
        store.apply(&lb, 2, &[], again, NOW + 1_000).unwrap();
        views.publish(NOW + 1_010);
        if let Ok(d) = deltas.try_recv() {
            let d = d.decode();
            assert!(
                d.changed.iter().all(|c| c.backends.is_none()),
                "{:?}",
                d.changed
            );
        }
    }

    #[test]
    fn traffic_compares_the_web_tier_with_the_lb_tier() {
        let (store, views) = setup();
        let lb = add(&store, "lb1", vec![Role::Lb]);
        let web1 = add(&store, "web1", vec![Role::Web, Role::App]);
        let web2 = add(&store, "web2", vec![Role::Web]);
        add(&store, "db1", vec![Role::Db]);
        let traffic = |view: &FleetView| view.totals.traffic.unwrap();
        let t = traffic(&views.publish(NOW));
        assert_eq!(t.web_lb_request_ratio, None);
        assert_eq!(t.lb_requests_per_second, None);

        let rate = |source: &str, class: &str| {
            SeriesKey::new(
                metrics::HTTP_REQUESTS,
                &[Label::new("source", source), Label::new("class", class)],
            )
        };
        let point = |key, ts, value| ResolvedPoint {
            key,
            timestamp_ms: ts,
            value,
        };
        let (ok, err) = (rate("haproxy", "2xx"), rate("haproxy", "5xx"));
        let points = [point(&ok, NOW - 2_000, 95.0), point(&err, NOW - 2_000, 5.0)];
        store
            .apply(&lb, 1, &points, Reported::default(), NOW)
            .unwrap();
        let t = traffic(&views.publish(NOW));
        assert_eq!(t.lb_requests_per_second, Some(100.0));
        assert_eq!(t.web_requests_per_second, None);
        assert_eq!(t.web_lb_request_ratio, None);

        let nginx = rate("nginx", "2xx");
        store
            .apply(
                &web1,
                1,
                &[point(&nginx, NOW - 2_000, 48.0)],
                Reported::default(),
                NOW,
            )
            .unwrap();
        store
            .apply(
                &web2,
                1,
                &[point(&nginx, NOW - 2_000, 50.0)],
                Reported::default(),
                NOW,
            )
            .unwrap();
        let t = traffic(&views.publish(NOW));
        assert_eq!(t.web_requests_per_second, Some(98.0));
        assert_eq!(t.web_lb_request_ratio, Some(0.98));

        // A down web node's last rate no longer counts (web2 stays alive).
        store
            .apply(&web2, 2, &[], Reported::default(), NOW + 3_500)
            .unwrap();
        let t = traffic(&views.publish(NOW + 3_500));
        assert_eq!(t.web_requests_per_second, Some(50.0));
    }

    /// Alert rules evaluated by the views, second by second, with the
    /// built-in rules and no sink.
    mod alerting {
        use super::*;
        use crate::alerts::AlertsConfig;
        use stacktop_proto::v1::{AlertState, Severity};
        use tokio_util::task::TaskTracker;

        fn engine(store: &Arc<Store>) -> (Arc<Alerts>, Views) {
            let alerts = Arc::new(
                Alerts::start(
                    &AlertsConfig::default(),
                    NOW,
                    CancellationToken::new(),
                    &TaskTracker::new(),
                )
                .unwrap(),
            );
            let views = Views::with_alerts(store.clone(), Some(alerts.clone()));
            (alerts, views)
        }

        fn report(store: &Store, node: &NodeHandle, seq: u64, checks: Vec<CheckResult>, t: i64) {
            let reported = Reported {
                checks,
                ..Default::default()
            };
            store.apply(node, seq, &[], reported, t).unwrap();
        }

        fn firing(view: &FleetView) -> Vec<&Alert> {
            view.alerts
                .iter()
                .filter(|a| a.state() == AlertState::Firing)
                .collect()
        }

        #[test]
        fn a_dead_primary_is_one_root_with_the_apps_under_it() {
            let store = Arc::new(Store::new(Duration::from_secs(60)));
            let (_alerts, views) = engine(&store);
            let db1 = add(&store, "db1", vec![Role::Db]);
            let apps = [
                add(&store, "app1", vec![Role::App]),
                add(&store, "app2", vec![Role::App]),
            ];
            let mut view = views.publish(NOW);
            for s in 0..20u64 {
                let t = NOW + s as i64 * 1_000;
                report(
                    &store,
                    &db1,
                    s + 1,
                    vec![check("mysql", "mysql", Health::Crit)],
                    t,
                );
                // The apps notice two seconds later.
                let app = if s >= 2 { Health::Crit } else { Health::Ok };
                for a in &apps {
                    report(&store, a, s + 1, vec![check("app:health", "app", app)], t);
                }
                view = views.publish(t + 10);
            }
            let firing = firing(&view);
            let roots: Vec<_> = firing.iter().filter(|a| a.root.is_empty()).collect();
            assert_eq!(roots.len(), 1, "one root: {firing:#?}");
            let root = roots[0];
            assert!(
                root.node == "db1" || root.tier() == Role::Db,
                "the root is the DB's: {root:?}"
            );
            for app in ["app1", "app2"] {
                let a = firing
                    .iter()
                    .find(|a| a.node == app && a.rule == "check-failed")
                    .unwrap_or_else(|| panic!("{app}'s check alert: {firing:#?}"));
                assert_eq!(a.root, root.id, "{app} grouped under the root");
                assert!(root.grouped.contains(&a.id));
            }
            assert_eq!(view.totals.alerts_firing as usize, firing.len());
            assert_eq!(view.totals.alerts_critical as usize, firing.len());
        }

        #[test]
        fn maintenance_holds_a_node_but_tier_spof_still_warns() {
            let store = Arc::new(Store::new(Duration::from_secs(60)));
            let (alerts, views) = engine(&store);
            let webs = [
                add(&store, "web1", vec![Role::Web]),
                add(&store, "web2", vec![Role::Web]),
            ];
            let window = alerts
                .start_maintenance("web2", None, Duration::from_secs(600), "test", "", NOW)
                .unwrap();
            let mut view = views.publish(NOW);
            for s in 0..40u64 {
                let t = NOW + s as i64 * 1_000;
                report(
                    &store,
                    &webs[0],
                    s + 1,
                    vec![check("nginx", "nginx", Health::Ok)],
                    t,
                );
                // web2 is being worked on: its nginx is stopped.
                report(
                    &store,
                    &webs[1],
                    s + 1,
                    vec![check("nginx", "nginx", Health::Crit)],
                    t,
                );
                view = views.publish(t + 10);
            }
            let web2 = view.node("web2").unwrap().state();
            assert!(web2.in_maintenance, "shown in maintenance");
            assert_eq!(web2.maintenance_until_ms, window.ends_ms);
            let held = view
                .alerts
                .iter()
                .find(|a| a.node == "web2" && a.rule == "check-failed")
                .expect("web2's check alert, held");
            assert!(held.in_maintenance, "{held:?}");
            let spof = view
                .alerts
                .iter()
                .find(|a| a.rule == "tier-spof" && a.tier() == Role::Web)
                .expect("the web tier is down to one node");
            assert_eq!(spof.state(), AlertState::Firing);
            assert_eq!(spof.severity(), Severity::Warning);
            assert!(
                !spof.in_maintenance,
                "the rest of the tier is alone: {spof:?}"
            );

            // The window ends: web2's alert is no longer held.
            alerts.end_maintenance(&window.id, NOW + 40_000).unwrap();
            report(
                &store,
                &webs[1],
                99,
                vec![check("nginx", "nginx", Health::Crit)],
                NOW + 40_000,
            );
            report(
                &store,
                &webs[0],
                99,
                vec![check("nginx", "nginx", Health::Ok)],
                NOW + 40_000,
            );
            let view = views.publish(NOW + 40_010);
            let web2 = view.node("web2").unwrap().state();
            assert!(!web2.in_maintenance);
            let alert = view
                .alerts
                .iter()
                .find(|a| a.node == "web2" && a.rule == "check-failed")
                .unwrap();
            assert!(!alert.in_maintenance);
        }
    }
}
