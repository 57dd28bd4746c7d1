//! The fleet as the collectors reported it, apart from what the screen
//! shows of it.
//!
//! The dashboard and `stacktop status` both read this, so it is the one
//! place a [`FleetUpdate`] is applied: a snapshot replaces a source's
//! nodes, a delta merges compact [`NodeChange`]s into them (the rules are
//! in [`Model::apply`]). Screen state (selection, scrolling, the open
//! screen) lives in [`crate::app`] and never here.
//!
//! # Several collectors
//!
//! Each collector (`--collector`, repeatable) is a [`Source`]; every
//! source's nodes are kept as it reported them, under a [`NodeKey`] (the
//! [`SourceId`] and the node's name). Readers see the *merged* fleet
//! ([`Model::nodes`]): one node per name, the report of one source (the
//! key says which), chosen by [`newer`]: a connected collector's report
//! beats a disconnected one's, then the newest (the node's `last_seen_ms`,
//! when the collector last heard its agent) wins; reports less than one
//! agent interval apart count as the same, and the collector listed first
//! keeps it (so two healthy collectors do not take turns).
//!
//! A node whose report comes from a collector that is not connected while
//! another one is has no current values: it is shown as [`unknown`]
//! (health unknown, every value `—`, its checks stale), never with the
//! down collector's last values as if live. With one collector, or when
//! none is connected, the whole screen is stale (the header says so) and
//! the last data is kept, dimmed.
//!
//! The alert lists of all sources are listed together ([`Model::alerts`]),
//! each alert with its source ([`Model::alert_source`]).
//!
//! # Layout
//!
//! - [`Model`]: every source's nodes under a [`NodeKey`], and the merged
//!   fleet; per source a [`Source`] with its
//!   connection ([`ConnState`]), its [`FleetTotals`] (alert counters
//!   included), its active alerts, the evaluation generation and when it
//!   last sent anything.
//! - [`Model::tier_groups`]: nodes by tier (LB, Web, App, DB, then
//!   Unassigned), for the fleet screen and the status table alike.
//! - [`Detail`]: what the open detail screen fetched for one node
//!   (`Fleet.Node` and `Fleet.History`).
//! - [`Model::failures`]: the embedded collector or agent stopped, and why.
//!
//! Nothing here computes health, totals or ratios: they are what the
//! collector decided, kept as it sent them.

use std::collections::{BTreeMap, HashMap};

use stacktop_proto::v1::{
    Alert, CheckResult, FleetDelta, FleetSnapshot, FleetTotals, FleetUpdate, NodeChange, NodeState,
    TierState, fleet_update,
};
use stacktop_proto::{Health, ROLES, Role};

use crate::history::{History, HistoryState};

/// The most CPU samples a node keeps for its sparkline (the contract's
/// bound on `cpu_recent`).
pub const CPU_RECENT_MAX: usize = 120;

/// Which collector something came from: an index into [`Model::sources`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u16);

impl SourceId {
    /// The first collector (the first `--collector`).
    pub const PRIMARY: SourceId = SourceId(0);

    /// The collector's one-letter label on screen: `A` for the first,
    /// `B` for the second, and so on (`?` past `Z`).
    pub fn label(self) -> char {
        u8::try_from(self.0)
            .ok()
            .filter(|i| *i < 26)
            .map_or('?', |i| char::from(b'A' + i))
    }
}

/// A node as the model knows it: which collector reported it, and its name
/// (unique per collector).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// The collector that reported the node.
    pub source: SourceId,
    /// The node's name.
    pub name: String,
}

impl NodeKey {
    /// The key of node `name` from `source`.
    pub fn new(source: SourceId, name: impl Into<String>) -> Self {
        Self {
            source,
            name: name.into(),
        }
    }
}

impl From<&str> for NodeKey {
    /// Node `name` of the [`SourceId::PRIMARY`] collector.
    fn from(name: &str) -> Self {
        Self::new(SourceId::PRIMARY, name)
    }
}

/// Where the dashboard stands with one collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Dialing, or waiting for the Watch stream to open.
    Connecting,
    /// The Watch stream is open.
    Connected,
    /// The last attempt failed; the next one starts at `retry_at_ms`.
    Disconnected {
        /// When the next attempt starts (Unix ms).
        retry_at_ms: i64,
        /// Why the last attempt failed, for the banner.
        error: String,
    },
}

/// One collector and what it last said about the fleet as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The collector's address.
    pub url: String,
    /// The connection to it.
    pub connection: ConnState,
    /// Its fleet-wide numbers (tiers, site, traffic, node counts) from the
    /// last snapshot or delta; `None` before the first, or when it sent
    /// none.
    pub totals: Option<FleetTotals>,
    /// Its active alerts (pending, firing, recently resolved) as it listed
    /// them: replaced whole by every snapshot, and by a delta that says
    /// they changed.
    pub alerts: Vec<Alert>,
    /// The evaluation the model shows (0: unknown).
    pub generation: u64,
    /// A snapshot has arrived, so deltas have something to apply to.
    pub synced: bool,
    /// When the last update arrived (the dashboard's clock, Unix ms; 0:
    /// never).
    pub last_update_ms: i64,
}

impl Source {
    fn new(url: String) -> Self {
        Self {
            url,
            connection: ConnState::Connecting,
            totals: None,
            alerts: Vec::new(),
            generation: 0,
            synced: false,
            last_update_ms: 0,
        }
    }
}

/// What the detail screen fetched for the node it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The node.
    pub key: NodeKey,
    /// Its latest `Fleet.Node` answer (with `traffic` and `latest`); `None`
    /// until one arrives.
    pub node: Option<NodeState>,
    /// Why the last `Fleet.Node` call failed, if it did.
    pub node_error: Option<String>,
    /// Its chart data.
    pub history: HistoryState,
}

/// Why an update could not be applied (whole or in part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The update names a collector the model does not have.
    #[error("update from unknown source {0:?}")]
    UnknownSource(SourceId),
    /// A delta arrived before any snapshot of its source; it was ignored.
    #[error("a delta arrived before any snapshot; ignored")]
    DeltaBeforeSnapshot,
    /// Changes named nodes that were never sent whole; they were skipped
    /// (the rest of the delta was applied).
    #[error("changes for nodes never sent whole were skipped: {}", .0.join(", "))]
    UnknownNodes(Vec<String>),
}

/// The node shown under one name: whose report, and, when that report
/// cannot be current (see the module docs), the [`unknown`] node to show
/// instead.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    key: NodeKey,
    unknown: Option<NodeState>,
}

/// The fleet as reported, by source and node name, and merged by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    sources: Vec<Source>,
    /// Every source's nodes as reported, by source then name.
    reported: BTreeMap<NodeKey, NodeState>,
    /// The merged fleet by name (the order every list shows), rebuilt by
    /// [`Model::merge`] after every change.
    merged: BTreeMap<String, Shown>,
    /// Every source's alerts in source order, and whose each one is.
    alerts: Vec<Alert>,
    alert_sources: Vec<SourceId>,
    detail: Option<Detail>,
    failures: Vec<String>,
}

impl Model {
    /// An empty model watching the collector at `url` (its
    /// [`SourceId::PRIMARY`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self::watching(vec![url.into()])
    }

    /// An empty model watching the collectors at `urls`, in that order
    /// ([`SourceId`] `i` is `urls[i]`); at least one.
    pub fn watching(urls: Vec<String>) -> Self {
        let mut sources: Vec<Source> = urls.into_iter().map(Source::new).collect();
        if sources.is_empty() {
            sources.push(Source::new(String::new()));
        }
        Self {
            sources,
            reported: BTreeMap::new(),
            merged: BTreeMap::new(),
            alerts: Vec::new(),
            alert_sources: Vec::new(),
            detail: None,
            failures: Vec::new(),
        }
    }

    /// A model holding one snapshot of the collector at `url`, as `stacktop
    /// status` reads it.
    pub fn from_snapshot(url: impl Into<String>, snapshot: FleetSnapshot) -> Self {
        let mut model = Self::new(url);
        model.apply_snapshot(SourceId::PRIMARY, snapshot, 0);
        model
    }

    /// Every collector, indexed by [`SourceId`].
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Collector `id`.
    pub fn source(&self, id: SourceId) -> Option<&Source> {
        self.sources.get(usize::from(id.0))
    }

    /// The first collector (there is always one).
    pub fn primary(&self) -> &Source {
        &self.sources[0]
    }

    /// Whether more than one collector is watched.
    pub fn is_multi(&self) -> bool {
        self.sources.len() > 1
    }

    /// Whether collector `source` is connected.
    pub fn is_live(&self, source: SourceId) -> bool {
        self.source(source)
            .is_some_and(|s| s.connection == ConnState::Connected)
    }

    /// Whether any collector is connected.
    pub fn any_live(&self) -> bool {
        self.sources
            .iter()
            .any(|s| s.connection == ConnState::Connected)
    }

    /// The collector whose fleet-wide numbers (tiers, traffic, version)
    /// the screens show: the first connected one that sent a snapshot,
    /// else the first collector (its last numbers, shown stale).
    pub fn shown_source(&self) -> SourceId {
        self.sources
            .iter()
            .position(|s| s.synced && s.connection == ConnState::Connected)
            .map_or(SourceId::PRIMARY, |i| SourceId(i as u16))
    }

    /// The fleet-wide numbers of the [`shown_source`](Self::shown_source).
    pub fn totals(&self) -> Option<&FleetTotals> {
        self.source(self.shown_source())?.totals.as_ref()
    }

    /// Whether some node is shown [`unknown`] because only a disconnected
    /// collector reports it: no connected collector's verdict covers the
    /// whole fleet then.
    pub fn is_partial(&self) -> bool {
        self.merged.values().any(|s| s.unknown.is_some())
    }

    /// Every collector's active alerts, as each listed them, in collector
    /// order (empty before the first snapshot: see [`Model::has_data`]).
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The collector that listed `alerts()[index]`.
    pub fn alert_source(&self, index: usize) -> SourceId {
        self.alert_sources
            .get(index)
            .copied()
            .unwrap_or(SourceId::PRIMARY)
    }

    /// The collectors that list an alert with id `id` (an alert's id is the
    /// hash of its rule and labels, the same at every collector).
    pub fn alert_owners(&self, id: &str) -> Vec<SourceId> {
        let mut owners: Vec<SourceId> = self
            .alerts
            .iter()
            .zip(&self.alert_sources)
            .filter(|(a, _)| a.id == id)
            .map(|(_, s)| *s)
            .collect();
        owners.dedup();
        owners
    }

    /// The active alerts about node `key`, from every collector, each
    /// alert once.
    pub fn node_alerts(&self, key: &NodeKey) -> Vec<&Alert> {
        let mut seen = std::collections::HashSet::new();
        self.alerts
            .iter()
            .filter(|a| a.node == key.name && seen.insert(a.id.as_str()))
            .collect()
    }

    /// The collector's view of tier `role` for the node `key`'s source.
    pub fn tier(&self, source: SourceId, role: Role) -> Option<&TierState> {
        self.source(source)?
            .totals
            .as_ref()?
            .tiers
            .iter()
            .find(|t| t.role() == role)
    }

    /// The view of tier `role` to show: the
    /// [`shown_source`](Self::shown_source)'s, and none while the merged
    /// fleet [`is_partial`](Self::is_partial) (a connected collector's
    /// count would leave out the nodes only a down one reports).
    pub fn shown_tier(&self, role: Role) -> Option<&TierState> {
        if self.is_partial() {
            return None;
        }
        self.tier(self.shown_source(), role)
    }

    /// Whether any snapshot has arrived.
    pub fn has_data(&self) -> bool {
        self.sources.iter().any(|s| s.synced)
    }

    /// The merged fleet by name: each node once, keyed by the source whose
    /// report is shown (see the module docs).
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeKey, &NodeState)> {
        self.merged.values().filter_map(|shown| {
            let node = match &shown.unknown {
                Some(node) => node,
                None => self.reported.get(&shown.key)?,
            };
            Some((&shown.key, node))
        })
    }

    /// How many nodes the merged fleet holds.
    pub fn len(&self) -> usize {
        self.merged.len()
    }

    /// Whether the merged fleet holds no node.
    pub fn is_empty(&self) -> bool {
        self.merged.is_empty()
    }

    /// Node `key.name` as the merged fleet shows it (whichever source's
    /// report that is: see [`Model::key_of`]).
    pub fn node(&self, key: &NodeKey) -> Option<&NodeState> {
        let shown = self.merged.get(&key.name)?;
        match &shown.unknown {
            Some(node) => Some(node),
            None => self.reported.get(&shown.key),
        }
    }

    /// The key node `name` is shown under: its name and the source whose
    /// report wins.
    pub fn key_of(&self, name: &str) -> Option<&NodeKey> {
        self.merged.get(name).map(|s| &s.key)
    }

    /// Every source's report of node `name`, in source order.
    pub fn reports(&self, name: &str) -> Vec<(SourceId, &NodeState)> {
        (0..self.sources.len())
            .filter_map(|i| {
                let source = SourceId(i as u16);
                let node = self.reported.get(&NodeKey::new(source, name))?;
                Some((source, node))
            })
            .collect()
    }

    /// The collector's clock for `source` as of the dashboard's `now_ms`:
    /// the time its last totals were evaluated plus what has passed here
    /// since they arrived. Ages of values (`now - timestamp_ms`) use it, so
    /// two machines' clocks never have to agree. `now_ms` itself while the
    /// collector has not said.
    pub fn clock_ms(&self, source: SourceId, now_ms: i64) -> i64 {
        match self.source(source) {
            Some(s) if s.last_update_ms > 0 => match &s.totals {
                Some(t) if t.timestamp_ms > 0 => {
                    t.timestamp_ms + (now_ms - s.last_update_ms).max(0)
                }
                _ => now_ms,
            },
            _ => now_ms,
        }
    }

    /// The tiers to show, in request-path order (LB, Web, App, DB), then
    /// Unassigned (`Role::Unspecified`) for nodes without roles; each with
    /// its nodes (a node with two roles appears under both). Empty tiers
    /// are left out.
    pub fn tier_groups(&self) -> Vec<(Role, Vec<&NodeKey>)> {
        let mut groups: HashMap<Role, Vec<&NodeKey>> = HashMap::new();
        for (key, node) in self.nodes() {
            let mut any = false;
            for role in node.roles().filter(|r| ROLES.contains(r)) {
                let group = groups.entry(role).or_default();
                if group.last() != Some(&key) {
                    group.push(key);
                }
                any = true;
            }
            if !any {
                groups.entry(Role::Unspecified).or_default().push(key);
            }
        }
        ROLES
            .iter()
            .chain([Role::Unspecified].iter())
            .filter_map(|role| groups.remove(role).map(|g| (*role, g)))
            .collect()
    }

    /// Records the connection state of `source`.
    pub fn set_connection(&mut self, source: SourceId, state: ConnState) {
        if let Some(s) = self.sources.get_mut(usize::from(source.0))
            && s.connection != state
        {
            s.connection = state;
            self.merge();
        }
    }

    /// Rebuilds the merged fleet from every source's reports (see the
    /// module docs), and the detail's key when its node now comes from
    /// another source.
    fn merge(&mut self) {
        let mut merged: BTreeMap<String, Shown> = BTreeMap::new();
        for (key, node) in &self.reported {
            let live = self.is_live(key.source);
            match merged.get_mut(&key.name) {
                Some(shown) => {
                    let best = &self.reported[&shown.key];
                    let best_live = self.is_live(shown.key.source);
                    if newer((node, live), (best, best_live)) {
                        shown.key = key.clone();
                    }
                }
                None => {
                    merged.insert(
                        key.name.clone(),
                        Shown {
                            key: key.clone(),
                            unknown: None,
                        },
                    );
                }
            }
        }
        // With one collector, or none connected, the header says the whole
        // screen is stale; otherwise a node only a down collector reports
        // must not look live among the others.
        let masking = self.is_multi() && self.any_live();
        for shown in merged.values_mut() {
            if masking && !self.is_live(shown.key.source) {
                // Its collector is down, so its last report does not
                // change: the unknown copy made before can stay.
                shown.unknown = match self.merged.get_mut(&shown.key.name) {
                    Some(old) if old.key == shown.key && old.unknown.is_some() => {
                        old.unknown.take()
                    }
                    _ => Some(unknown(&self.reported[&shown.key])),
                };
            }
        }
        self.merged = merged;
        if let Some(detail) = &mut self.detail
            && let Some(shown) = self.merged.get(&detail.key.name)
        {
            detail.key = shown.key.clone();
        }
    }

    /// Rebuilds the combined alert list from every source's.
    fn gather_alerts(&mut self) {
        self.alerts.clear();
        self.alert_sources.clear();
        for (i, s) in self.sources.iter().enumerate() {
            self.alerts.extend(s.alerts.iter().cloned());
            self.alert_sources
                .extend(std::iter::repeat_n(SourceId(i as u16), s.alerts.len()));
        }
    }

    /// Applies one update from `source`, received at `now_ms`.
    ///
    /// A snapshot replaces every node of the source and its totals. A delta
    /// removes the nodes it names in `removed`, then for each
    /// [`NodeChange`]:
    ///
    /// - `full`: the node is new or its identity changed; it replaces the
    ///   node whole;
    /// - otherwise `status` replaces health, connection, last seen, the
    ///   summaries, the per-role health and the maintenance flag (with its
    ///   end); `cpu_appended` is appended to
    ///   the sparkline (newest [`CPU_RECENT_MAX`] kept), or replaces it when
    ///   `cpu_reset`; `checks` are replaced by name (new ones inserted in
    ///   name order) and `checks_removed` dropped; facts are replaced when
    ///   `facts_changed`; `backends`, when set, replaces the servers and
    ///   their staleness, error, sample time and UP count.
    ///
    /// Totals are always sent whole and replace the old ones; the alert
    /// list is replaced whole when the delta says `alerts_changed`, and
    /// kept otherwise. A change for
    /// a node never sent whole cannot be applied: it is skipped and
    /// reported as [`ModelError::UnknownNodes`] after the rest is applied.
    pub fn apply(
        &mut self,
        source: SourceId,
        update: FleetUpdate,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        if self.source(source).is_none() {
            return Err(ModelError::UnknownSource(source));
        }
        match update.update {
            Some(fleet_update::Update::Snapshot(snapshot)) => {
                self.apply_snapshot(source, snapshot, now_ms);
                Ok(())
            }
            Some(fleet_update::Update::Delta(delta)) => self.apply_delta(source, delta, now_ms),
            None => Ok(()),
        }
    }

    fn source_mut(&mut self, source: SourceId) -> &mut Source {
        &mut self.sources[usize::from(source.0)]
    }

    fn apply_snapshot(&mut self, source: SourceId, snapshot: FleetSnapshot, now_ms: i64) {
        self.reported.retain(|key, _| key.source != source);
        for node in snapshot.nodes {
            self.reported
                .insert(NodeKey::new(source, node.name.clone()), node);
        }
        let s = self.source_mut(source);
        s.totals = snapshot.totals;
        s.alerts = snapshot.alerts;
        s.generation = snapshot.generation;
        s.synced = true;
        s.last_update_ms = now_ms;
        self.gather_alerts();
        self.merge();
    }

    fn apply_delta(
        &mut self,
        source: SourceId,
        delta: FleetDelta,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        if !self.source_mut(source).synced {
            return Err(ModelError::DeltaBeforeSnapshot);
        }
        for name in &delta.removed {
            self.reported.remove(&NodeKey::new(source, name.as_str()));
        }
        let mut unknown = Vec::new();
        for mut change in delta.changed {
            if let Some(full) = change.full.take() {
                let name = if change.name.is_empty() {
                    full.name.clone()
                } else {
                    change.name
                };
                self.reported.insert(NodeKey::new(source, name), full);
                continue;
            }
            let key = NodeKey::new(source, std::mem::take(&mut change.name));
            match self.reported.get_mut(&key) {
                Some(node) => merge(node, change),
                None => unknown.push(key.name),
            }
        }
        let s = self.source_mut(source);
        if delta.totals.is_some() {
            s.totals = delta.totals;
        }
        let alerts_changed = delta.alerts_changed;
        if alerts_changed {
            s.alerts = delta.alerts;
        }
        s.generation = delta.generation;
        s.last_update_ms = now_ms;
        if alerts_changed {
            self.gather_alerts();
        }
        self.merge();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ModelError::UnknownNodes(unknown))
        }
    }

    /// The open detail screen's data, if one is open.
    pub fn detail(&self) -> Option<&Detail> {
        self.detail.as_ref()
    }

    /// Starts collecting detail data for `key` (nothing fetched yet).
    pub fn open_detail(&mut self, key: NodeKey) {
        self.detail = Some(Detail {
            key,
            node: None,
            node_error: None,
            history: HistoryState::Loading,
        });
    }

    /// Forgets the detail data.
    pub fn close_detail(&mut self) {
        self.detail = None;
    }

    /// A `Fleet.Node` answer for `key` arrived (or failed); ignored unless
    /// `key` is the open detail. A failure keeps the last answer.
    pub fn node_arrived(&mut self, key: &NodeKey, result: Result<NodeState, String>) {
        let Some(detail) = self.detail.as_mut().filter(|d| &d.key == key) else {
            return;
        };
        match result {
            Ok(node) => {
                detail.node = Some(node);
                detail.node_error = None;
            }
            Err(err) => detail.node_error = Some(err),
        }
    }

    /// History for `key` arrived (or failed); ignored unless `key` is the
    /// open detail. A failed refresh keeps charts already drawn.
    pub fn history_arrived(&mut self, key: &NodeKey, result: Result<Box<History>, String>) {
        let Some(detail) = self.detail.as_mut().filter(|d| &d.key == key) else {
            return;
        };
        match result {
            Ok(history) => detail.history = HistoryState::Loaded(history),
            Err(_) if matches!(detail.history, HistoryState::Loaded(_)) => {}
            Err(err) => detail.history = HistoryState::Failed(err),
        }
    }

    /// Records that a part running in this process (the embedded collector
    /// or agent) stopped, with why.
    pub fn failed(&mut self, what: &str, error: &str) {
        self.failures
            .push(format!("the embedded {what} stopped: {error}"));
    }

    /// What stopped in this process, oldest first.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// Whether report `a` of a node should be shown rather than report `b`,
/// each with whether its collector is connected: a connected collector's
/// beats a disconnected one's; then the one heard from later, by more than
/// one agent interval (1 s when not said) — closer than that they are the
/// same report, and `b` (the collector listed first) keeps it.
pub fn newer((a, a_live): (&NodeState, bool), (b, b_live): (&NodeState, bool)) -> bool {
    if a_live != b_live {
        return a_live;
    }
    let interval = i64::from(a.interval_ms.max(b.interval_ms).max(1_000));
    a.last_seen_ms > b.last_seen_ms.saturating_add(interval)
}

/// What is shown of `node` while the only collectors that report it are
/// down and others are not: its identity, last contact and maintenance,
/// and nothing that could pass for current — health unknown, no current
/// values (the last ones kept as such, with their time, for the detail),
/// checks stale, backends' UP count unknown, no CPU trend.
pub fn unknown(node: &NodeState) -> NodeState {
    let mut n = node.clone();
    // A down node's current values were none already; its last ones stay.
    let current = n.summary.take();
    if n.health() != Health::Down && current.is_some() {
        n.last_summary = current;
    }
    n.health = Health::Unknown as i32;
    n.connected = false;
    n.role_health.clear();
    n.cpu_recent.clear();
    for check in &mut n.checks {
        if !check.stale {
            check.last_status = check.status;
            check.status = Health::Unknown as i32;
            check.stale = true;
        }
    }
    n.backends_stale = true;
    n.backends_up = None;
    n
}

/// Merges a compact change into the node it is about (see [`Model::apply`]).
fn merge(node: &mut NodeState, change: NodeChange) {
    if let Some(status) = change.status {
        node.health = status.health;
        node.connected = status.connected;
        node.last_seen_ms = status.last_seen_ms;
        node.summary = status.summary;
        node.last_summary = status.last_summary;
        node.role_health = status.role_health;
        node.in_maintenance = status.in_maintenance;
        node.maintenance_until_ms = status.maintenance_until_ms;
    }
    if change.cpu_reset {
        node.cpu_recent = change.cpu_appended;
    } else {
        node.cpu_recent.extend(change.cpu_appended);
    }
    let excess = node.cpu_recent.len().saturating_sub(CPU_RECENT_MAX);
    node.cpu_recent.drain(..excess);
    if !change.checks_removed.is_empty() {
        node.checks
            .retain(|c| !change.checks_removed.contains(&c.name));
    }
    for check in change.checks {
        upsert_check(&mut node.checks, check);
    }
    if change.facts_changed {
        node.facts = change.facts;
    }
    if let Some(b) = change.backends {
        node.backends = b.servers;
        node.backends_stale = b.stale;
        node.backends_timestamp_ms = b.timestamp_ms;
        node.backends_error = b.error;
        node.backends_up = b.up;
    }
}

/// Replaces the check of the same name, or inserts it before the first
/// check whose name sorts after it (a list in name order stays so).
fn upsert_check(checks: &mut Vec<CheckResult>, check: CheckResult) {
    if let Some(old) = checks.iter_mut().find(|c| c.name == check.name) {
        *old = check;
    } else {
        let at = checks
            .iter()
            .position(|c| c.name > check.name)
            .unwrap_or(checks.len());
        checks.insert(at, check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Health;
    use stacktop_proto::v1::{
        AlertState, BackendServer, BackendsUpdate, Label, NodeStatus, NodeSummary, RoleHealth,
    };

    fn node(name: &str, roles: &[Role]) -> NodeState {
        NodeState {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            health: Health::Ok as i32,
            connected: true,
            cpu_recent: vec![0.1, 0.2],
            checks: vec![check("a", Health::Ok), check("c", Health::Ok)],
            ..Default::default()
        }
    }

    fn check(name: &str, status: Health) -> CheckResult {
        CheckResult {
            name: name.into(),
            status: status as i32,
            ..Default::default()
        }
    }

    fn totals(site: Health, down: u32) -> FleetTotals {
        FleetTotals {
            site: site as i32,
            nodes_down: down,
            timestamp_ms: 5_000,
            tiers: vec![TierState {
                role: Role::Web as i32,
                healthy: 1,
                total: 1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn snapshot(nodes: Vec<NodeState>) -> FleetUpdate {
        FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes,
                totals: Some(totals(Health::Ok, 0)),
                generation: 7,
                ..Default::default()
            })),
        }
    }

    fn delta(changed: Vec<NodeChange>, removed: &[&str]) -> FleetUpdate {
        FleetUpdate {
            update: Some(fleet_update::Update::Delta(FleetDelta {
                changed,
                removed: removed.iter().map(|s| s.to_string()).collect(),
                totals: Some(totals(Health::Crit, 1)),
                generation: 8,
                ..Default::default()
            })),
        }
    }

    fn model() -> Model {
        let mut m = Model::new("http://test");
        m.apply(
            SourceId::PRIMARY,
            snapshot(vec![node("web1", &[Role::Web]), node("lb1", &[Role::Lb])]),
            1_000,
        )
        .unwrap();
        m
    }

    fn get<'a>(m: &'a Model, name: &str) -> &'a NodeState {
        m.node(&name.into()).unwrap()
    }

    #[test]
    fn a_snapshot_replaces_the_source_and_keeps_its_totals() {
        let m = model();
        let names: Vec<_> = m.nodes().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["lb1", "web1"]);
        let s = m.primary();
        assert!(s.synced);
        assert_eq!(s.generation, 7);
        assert_eq!(s.last_update_ms, 1_000);
        assert_eq!(m.totals().unwrap().site(), Health::Ok);
        let mut m = m;
        m.apply(SourceId::PRIMARY, snapshot(vec![node("solo", &[])]), 2_000)
            .unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_delta_before_any_snapshot_is_refused() {
        let mut m = Model::new("http://test");
        let err = m
            .apply(SourceId::PRIMARY, delta(vec![], &[]), 1)
            .unwrap_err();
        assert_eq!(err, ModelError::DeltaBeforeSnapshot);
        assert!(m.totals().is_none());
        let err = m.apply(SourceId(3), snapshot(vec![]), 1).unwrap_err();
        assert_eq!(err, ModelError::UnknownSource(SourceId(3)));
    }

    #[test]
    fn full_changes_add_or_replace_and_removed_nodes_go() {
        let mut m = model();
        let mut lb = node("lb1", &[Role::Lb, Role::Web]);
        lb.agent_version = "0.2.0".into();
        let changes = vec![
            NodeChange {
                name: "app1".into(),
                full: Some(node("app1", &[Role::App])),
                ..Default::default()
            },
            NodeChange {
                name: "lb1".into(),
                full: Some(lb),
                ..Default::default()
            },
        ];
        m.apply(SourceId::PRIMARY, delta(changes, &["web1"]), 2_000)
            .unwrap();
        let names: Vec<_> = m.nodes().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["app1", "lb1"]);
        assert_eq!(get(&m, "lb1").agent_version, "0.2.0");
        // Totals are replaced whole, with the generation.
        let s = m.primary();
        assert_eq!(s.totals.as_ref().unwrap().site(), Health::Crit);
        assert_eq!(s.totals.as_ref().unwrap().nodes_down, 1);
        assert_eq!((s.generation, s.last_update_ms), (8, 2_000));
    }

    #[test]
    fn status_changes_replace_the_fast_state_only() {
        let mut m = model();
        let change = NodeChange {
            name: "web1".into(),
            status: Some(NodeStatus {
                health: Health::Down as i32,
                connected: false,
                last_seen_ms: 900,
                summary: Some(NodeSummary::default()),
                last_summary: Some(NodeSummary {
                    cpu_usage_ratio: Some(0.5),
                    timestamp_ms: 900,
                    ..Default::default()
                }),
                role_health: vec![RoleHealth {
                    role: Role::Web as i32,
                    health: Health::Down as i32,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![change], &[]), 2_000)
            .unwrap();
        let web = get(&m, "web1");
        assert_eq!(web.health(), Health::Down);
        assert!(!web.connected);
        assert_eq!(web.last_seen_ms, 900);
        assert_eq!(web.summary.unwrap().cpu_usage_ratio, None);
        assert_eq!(web.last_summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert_eq!(web.role_health[0].health(), Health::Down);
        // Identity, checks and sparkline untouched.
        assert_eq!(web.roles().collect::<Vec<_>>(), [Role::Web]);
        assert_eq!(web.checks.len(), 2);
        assert_eq!(web.cpu_recent, [0.1, 0.2]);
    }

    #[test]
    fn cpu_samples_append_up_to_the_bound_or_start_over() {
        let mut m = model();
        let append = |values: Vec<f64>, reset: bool| NodeChange {
            name: "web1".into(),
            cpu_appended: values,
            cpu_reset: reset,
            ..Default::default()
        };
        m.apply(
            SourceId::PRIMARY,
            delta(vec![append(vec![0.3], false)], &[]),
            1,
        )
        .unwrap();
        assert_eq!(get(&m, "web1").cpu_recent, [0.1, 0.2, 0.3]);
        // 3 + 119 samples: the two oldest go.
        let many: Vec<f64> = (1..CPU_RECENT_MAX).map(|i| i as f64).collect();
        m.apply(SourceId::PRIMARY, delta(vec![append(many, false)], &[]), 2)
            .unwrap();
        let cpu = &get(&m, "web1").cpu_recent;
        assert_eq!(cpu.len(), CPU_RECENT_MAX);
        assert_eq!(cpu[..2], [0.3, 1.0], "the oldest samples go first");
        assert_eq!(cpu[CPU_RECENT_MAX - 1], (CPU_RECENT_MAX - 1) as f64);
        m.apply(SourceId::PRIMARY, delta(vec![append(vec![], true)], &[]), 3)
            .unwrap();
        assert!(get(&m, "web1").cpu_recent.is_empty());
        m.apply(
            SourceId::PRIMARY,
            delta(vec![append(vec![0.9], true)], &[]),
            4,
        )
        .unwrap();
        assert_eq!(get(&m, "web1").cpu_recent, [0.9]);
    }

    #[test]
    fn checks_change_by_name_and_removed_ones_go() {
        let mut m = model();
        let mut stale = check("c", Health::Unknown);
        stale.stale = true;
        stale.last_status = Health::Crit as i32;
        let change = NodeChange {
            name: "web1".into(),
            checks: vec![stale, check("b", Health::Warn)],
            checks_removed: vec!["a".into()],
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![change], &[]), 1)
            .unwrap();
        let checks = &get(&m, "web1").checks;
        let names: Vec<_> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(checks[1].stale);
        assert_eq!(checks[1].status(), Health::Unknown);
        assert_eq!(checks[1].last_status(), Health::Crit);
    }

    #[test]
    fn facts_change_only_when_flagged() {
        let mut m = model();
        let change = |flag: bool, facts: Vec<Label>| NodeChange {
            name: "web1".into(),
            facts_changed: flag,
            facts,
            ..Default::default()
        };
        let primary = vec![Label::new("db_role", "primary")];
        m.apply(
            SourceId::PRIMARY,
            delta(vec![change(true, primary)], &[]),
            1,
        )
        .unwrap();
        m.apply(
            SourceId::PRIMARY,
            delta(vec![change(false, vec![])], &[]),
            2,
        )
        .unwrap();
        assert_eq!(get(&m, "web1").facts.len(), 1);
        m.apply(SourceId::PRIMARY, delta(vec![change(true, vec![])], &[]), 3)
            .unwrap();
        assert!(get(&m, "web1").facts.is_empty());
    }

    #[test]
    fn backends_go_stale_with_their_error_and_no_up_count() {
        let mut m = model();
        let server = |status: &str| BackendServer {
            backend: "web".into(),
            server: "web1".into(),
            status: status.into(),
            ..Default::default()
        };
        let fresh = NodeChange {
            name: "lb1".into(),
            backends: Some(BackendsUpdate {
                servers: vec![server("UP"), server("UP")],
                stale: false,
                timestamp_ms: 100,
                error: String::new(),
                up: Some(2),
            }),
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![fresh], &[]), 1)
            .unwrap();
        assert_eq!(get(&m, "lb1").backends_up, Some(2));
        // A change without `backends` leaves them alone.
        let quiet = NodeChange {
            name: "lb1".into(),
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![quiet], &[]), 2)
            .unwrap();
        assert_eq!(get(&m, "lb1").backends.len(), 2);
        let stale = NodeChange {
            name: "lb1".into(),
            backends: Some(BackendsUpdate {
                servers: vec![server("UP"), server("UP")],
                stale: true,
                timestamp_ms: 100,
                error: "connect /run/haproxy.sock: no such file".into(),
                up: None,
            }),
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![stale], &[]), 3)
            .unwrap();
        let lb = get(&m, "lb1");
        assert!(lb.backends_stale);
        assert_eq!(lb.backends_up, None);
        assert_eq!(lb.backends_timestamp_ms, 100);
        assert!(lb.backends_error.contains("no such file"));
        assert_eq!(lb.backends.len(), 2, "the last sample stays, marked stale");
    }

    #[test]
    fn changes_for_unknown_nodes_are_skipped_and_reported() {
        let mut m = model();
        let changes = vec![
            NodeChange {
                name: "ghost".into(),
                cpu_appended: vec![0.5],
                ..Default::default()
            },
            NodeChange {
                name: "web1".into(),
                cpu_appended: vec![0.5],
                ..Default::default()
            },
        ];
        let err = m
            .apply(SourceId::PRIMARY, delta(changes, &[]), 1)
            .unwrap_err();
        assert_eq!(err, ModelError::UnknownNodes(vec!["ghost".into()]));
        assert_eq!(get(&m, "web1").cpu_recent, [0.1, 0.2, 0.5]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.totals().unwrap().site(), Health::Crit);
    }

    #[test]
    fn nodes_group_by_tier_in_request_path_order() {
        let mut m = Model::new("http://test");
        m.apply(
            SourceId::PRIMARY,
            snapshot(vec![
                node("box", &[]),
                node("db1", &[Role::Db]),
                node("web1", &[Role::App, Role::Web, Role::App]),
                node("lb1", &[Role::Lb]),
            ]),
            1,
        )
        .unwrap();
        let groups: Vec<(Role, Vec<&str>)> = m
            .tier_groups()
            .into_iter()
            .map(|(r, keys)| (r, keys.iter().map(|k| k.name.as_str()).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                (Role::Lb, vec!["lb1"]),
                (Role::Web, vec!["web1"]),
                (Role::App, vec!["web1"]),
                (Role::Db, vec!["db1"]),
                (Role::Unspecified, vec!["box"]),
            ]
        );
    }

    #[test]
    fn the_collector_clock_moves_on_with_the_dashboards() {
        let m = model();
        // Totals evaluated at 5_000 arrived at 1_000 here; 3 s later the
        // collector's clock reads 8_000.
        assert_eq!(m.clock_ms(SourceId::PRIMARY, 4_000), 8_000);
        assert_eq!(Model::new("x").clock_ms(SourceId::PRIMARY, 42), 42);
    }

    fn alert(id: &str, node: &str, state: AlertState) -> Alert {
        Alert {
            id: id.into(),
            rule: "check-failed".into(),
            node: node.into(),
            state: state as i32,
            ..Default::default()
        }
    }

    fn with_alerts(update: FleetUpdate, alerts: Option<Vec<Alert>>) -> FleetUpdate {
        let update = match update.update {
            Some(fleet_update::Update::Snapshot(mut s)) => {
                s.alerts = alerts.unwrap_or_default();
                fleet_update::Update::Snapshot(s)
            }
            Some(fleet_update::Update::Delta(mut d)) => {
                d.alerts_changed = alerts.is_some();
                d.alerts = alerts.unwrap_or_default();
                fleet_update::Update::Delta(d)
            }
            None => unreachable!(),
        };
        FleetUpdate {
            update: Some(update),
        }
    }

    fn alert_ids(m: &Model) -> Vec<&str> {
        m.alerts().iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn alerts_come_whole_with_snapshots_and_changed_deltas() {
        let mut m = Model::new("http://test");
        assert!(m.alerts().is_empty());
        let firing = alert("a1", "web1", AlertState::Firing);
        let pending = alert("a2", "lb1", AlertState::Pending);
        let first = with_alerts(
            snapshot(vec![node("web1", &[Role::Web]), node("lb1", &[Role::Lb])]),
            Some(vec![firing.clone(), pending.clone()]),
        );
        m.apply(SourceId::PRIMARY, first, 1).unwrap();
        assert_eq!(alert_ids(&m), ["a1", "a2"]);
        let web1 = m.node_alerts(&"web1".into());
        assert_eq!(web1.len(), 1);
        assert_eq!(web1[0].id, "a1");
        // A delta that does not say the alerts changed keeps them.
        m.apply(SourceId::PRIMARY, with_alerts(delta(vec![], &[]), None), 2)
            .unwrap();
        assert_eq!(alert_ids(&m), ["a1", "a2"]);
        // One that does replaces the list whole.
        let mut acked = firing.clone();
        acked.acknowledged = true;
        acked.acknowledged_by = "ann@ws".into();
        m.apply(
            SourceId::PRIMARY,
            with_alerts(delta(vec![], &[]), Some(vec![acked])),
            3,
        )
        .unwrap();
        assert_eq!(alert_ids(&m), ["a1"]);
        assert!(m.alerts()[0].acknowledged);
        // ... down to nothing.
        m.apply(
            SourceId::PRIMARY,
            with_alerts(delta(vec![], &[]), Some(vec![])),
            4,
        )
        .unwrap();
        assert!(m.alerts().is_empty());
        // A fresh snapshot replaces them too.
        m.apply(
            SourceId::PRIMARY,
            with_alerts(snapshot(vec![]), Some(vec![pending])),
            5,
        )
        .unwrap();
        assert_eq!(alert_ids(&m), ["a2"]);
    }

    #[test]
    fn alert_counters_and_maintenance_flags_are_kept() {
        let mut m = model();
        let mut t = totals(Health::Crit, 0);
        t.alerts_firing = 2;
        t.alerts_pending = 1;
        t.alerts_critical = 1;
        t.alerts_warning = 1;
        t.alerts_unacknowledged = 1;
        t.tiers = vec![TierState {
            role: Role::Web as i32,
            in_maintenance: true,
            ..Default::default()
        }];
        let status = NodeStatus {
            health: Health::Ok as i32,
            in_maintenance: true,
            maintenance_until_ms: 99_000,
            ..Default::default()
        };
        let update = FleetUpdate {
            update: Some(fleet_update::Update::Delta(FleetDelta {
                changed: vec![NodeChange {
                    name: "web1".into(),
                    status: Some(status),
                    ..Default::default()
                }],
                totals: Some(t),
                generation: 9,
                ..Default::default()
            })),
        };
        m.apply(SourceId::PRIMARY, update, 2).unwrap();
        let totals = m.totals().unwrap();
        assert_eq!(
            (
                totals.alerts_firing,
                totals.alerts_pending,
                totals.alerts_critical,
                totals.alerts_warning,
                totals.alerts_unacknowledged
            ),
            (2, 1, 1, 1, 1)
        );
        assert!(m.tier(SourceId::PRIMARY, Role::Web).unwrap().in_maintenance);
        let web1 = get(&m, "web1");
        assert!(web1.in_maintenance);
        assert_eq!(web1.maintenance_until_ms, 99_000);
        // The next status without the flag ends it.
        let change = NodeChange {
            name: "web1".into(),
            status: Some(NodeStatus::default()),
            ..Default::default()
        };
        m.apply(SourceId::PRIMARY, delta(vec![change], &[]), 3)
            .unwrap();
        assert!(!get(&m, "web1").in_maintenance);
    }

    /// `name` as reported with `cpu` and last heard at `seen_ms`, every
    /// second.
    fn heard(name: &str, seen_ms: i64, cpu: f64) -> NodeState {
        let mut n = node(name, &[Role::Web]);
        n.last_seen_ms = seen_ms;
        n.interval_ms = 1_000;
        n.summary = Some(NodeSummary {
            cpu_usage_ratio: Some(cpu),
            timestamp_ms: seen_ms,
            ..Default::default()
        });
        n
    }

    const A: SourceId = SourceId(0);
    const B: SourceId = SourceId(1);

    /// Two collectors, both connected, with these snapshots.
    fn two(a: Vec<NodeState>, b: Vec<NodeState>) -> Model {
        let mut m = Model::watching(vec!["http://a".into(), "http://b".into()]);
        m.set_connection(A, ConnState::Connected);
        m.set_connection(B, ConnState::Connected);
        m.apply(A, snapshot(a), 1).unwrap();
        m.apply(B, snapshot(b), 1).unwrap();
        m
    }

    fn cpu(m: &Model, name: &str) -> Option<f64> {
        m.node(&name.into())
            .and_then(|n| n.summary)
            .and_then(|s| s.cpu_usage_ratio)
    }

    #[test]
    fn the_newest_report_of_a_node_wins_and_each_name_is_listed_once() {
        // web1: B heard it 5 s after A did; web2: 0.5 s apart, the same
        // report (A, listed first, keeps it); lb1 only at A, db1 only at B.
        let m = two(
            vec![
                heard("web1", 10_000, 0.1),
                heard("web2", 10_000, 0.2),
                heard("lb1", 10_000, 0.3),
            ],
            vec![
                heard("web1", 15_000, 0.9),
                heard("web2", 10_500, 0.8),
                heard("db1", 10_000, 0.4),
            ],
        );
        let shown: Vec<(&str, SourceId)> = m
            .nodes()
            .map(|(k, _)| (k.name.as_str(), k.source))
            .collect();
        assert_eq!(shown, [("db1", B), ("lb1", A), ("web1", B), ("web2", A)]);
        assert_eq!(m.len(), 4);
        assert_eq!(cpu(&m, "web1"), Some(0.9));
        assert_eq!(cpu(&m, "web2"), Some(0.2));
        assert_eq!(m.key_of("web1"), Some(&NodeKey::new(B, "web1")));
        // Both sources, with when each last heard it.
        let reports: Vec<(SourceId, i64)> = m
            .reports("web1")
            .into_iter()
            .map(|(s, n)| (s, n.last_seen_ms))
            .collect();
        assert_eq!(reports, [(A, 10_000), (B, 15_000)]);
        assert_eq!(m.reports("lb1").len(), 1);
        assert!(!m.is_partial());
        // The tiers shown are the first connected collector's.
        assert_eq!(m.shown_source(), A);
        // A newer report at A takes web1 back.
        let change = NodeChange {
            name: "web1".into(),
            full: Some(heard("web1", 30_000, 0.5)),
            ..Default::default()
        };
        let mut m = m;
        m.apply(A, delta(vec![change], &[]), 2).unwrap();
        assert_eq!(m.key_of("web1"), Some(&NodeKey::new(A, "web1")));
        assert_eq!(cpu(&m, "web1"), Some(0.5));
    }

    #[test]
    fn newer_prefers_a_connected_collector_then_the_later_report() {
        let early = heard("n", 10_000, 0.0);
        let late = heard("n", 20_000, 0.0);
        assert!(newer((&late, true), (&early, true)));
        assert!(!newer((&early, true), (&late, true)));
        // A down collector's newer report loses to a live one's older one.
        assert!(!newer((&late, false), (&early, true)));
        assert!(newer((&early, true), (&late, false)));
        // Within one interval: the same report, the first keeps it.
        let close = heard("n", 10_900, 0.0);
        assert!(!newer((&close, true), (&early, true)));
    }

    #[test]
    fn a_node_only_a_down_collector_reports_is_unknown_never_its_last_values() {
        let mut lb = heard("lb1", 10_000, 0.3);
        lb.checks = vec![check("haproxy", Health::Ok)];
        lb.backends = vec![BackendServer::default()];
        lb.backends_up = Some(1);
        let mut m = two(
            vec![heard("web1", 20_000, 0.1), lb],
            vec![heard("web1", 10_000, 0.9)],
        );
        assert_eq!(m.shown_source(), A);
        assert!(!m.is_partial());
        assert!(m.shown_tier(Role::Web).is_some());
        assert_eq!(m.key_of("web1"), Some(&NodeKey::new(A, "web1")));
        m.set_connection(
            A,
            ConnState::Disconnected {
                retry_at_ms: 0,
                error: "gone".into(),
            },
        );
        // web1: B is live, so its (older) report is shown, live.
        assert_eq!(m.key_of("web1"), Some(&NodeKey::new(B, "web1")));
        assert_eq!(cpu(&m, "web1"), Some(0.9));
        assert_eq!(m.node(&"web1".into()).unwrap().health(), Health::Ok);
        // lb1: only A knew it. Unknown, no current value, checks stale.
        let lb = m.node(&"lb1".into()).unwrap();
        assert_eq!(m.key_of("lb1"), Some(&NodeKey::new(A, "lb1")));
        assert_eq!(lb.health(), Health::Unknown);
        assert_eq!(cpu(&m, "lb1"), None);
        assert_eq!(
            lb.last_summary.unwrap().cpu_usage_ratio,
            Some(0.3),
            "kept as the last known value, with its time"
        );
        assert!(
            lb.checks
                .iter()
                .all(|c| c.stale && c.status() == Health::Unknown)
        );
        assert_eq!(lb.checks[0].last_status(), Health::Ok);
        assert_eq!(lb.backends_up, None);
        assert!(lb.cpu_recent.is_empty());
        // What A reported is kept as it was, for when it comes back.
        assert_eq!(m.reports("lb1")[0].1.health(), Health::Ok);
        // No connected verdict covers lb1: no tier to show, the fleet is
        // partial; the shown totals are B's.
        assert!(m.is_partial());
        assert!(m.shown_tier(Role::Web).is_none());
        assert_eq!(m.shown_source(), B);
        // A back: lb1 is live again.
        m.set_connection(A, ConnState::Connected);
        assert_eq!(cpu(&m, "lb1"), Some(0.3));
        assert!(!m.is_partial());
    }

    #[test]
    fn with_one_collector_or_none_connected_the_last_data_is_kept() {
        let gone = ConnState::Disconnected {
            retry_at_ms: 0,
            error: "gone".into(),
        };
        let mut one = Model::new("http://a");
        one.apply(A, snapshot(vec![heard("web1", 1, 0.5)]), 1)
            .unwrap();
        one.set_connection(A, gone.clone());
        assert_eq!(cpu(&one, "web1"), Some(0.5), "the header says stale");
        let mut m = two(vec![heard("web1", 1, 0.5)], vec![]);
        m.set_connection(A, gone.clone());
        m.set_connection(B, gone);
        assert_eq!(cpu(&m, "web1"), Some(0.5));
        assert!(!m.is_partial());
    }

    #[test]
    fn every_collectors_alerts_are_listed_with_their_collector() {
        let mut m = two(vec![], vec![]);
        let same = alert("x1", "web1", AlertState::Firing);
        m.apply(
            A,
            with_alerts(snapshot(vec![]), Some(vec![same.clone()])),
            1,
        )
        .unwrap();
        m.apply(
            B,
            with_alerts(
                snapshot(vec![]),
                Some(vec![alert("y1", "db1", AlertState::Pending), same]),
            ),
            1,
        )
        .unwrap();
        assert_eq!(alert_ids(&m), ["x1", "y1", "x1"]);
        let sources: Vec<SourceId> = (0..3).map(|i| m.alert_source(i)).collect();
        assert_eq!(sources, [A, B, B]);
        // The same alert (same id) at both: an ack goes to both.
        assert_eq!(m.alert_owners("x1"), [A, B]);
        assert_eq!(m.alert_owners("y1"), [B]);
        // The node's alerts, each once.
        assert_eq!(m.node_alerts(&"web1".into()).len(), 1);
        // A delta from A that changes its alerts leaves B's alone.
        m.apply(A, with_alerts(delta(vec![], &[]), Some(vec![])), 2)
            .unwrap();
        assert_eq!(alert_ids(&m), ["y1", "x1"]);
        assert_eq!(m.alert_owners("x1"), [B]);
    }

    #[test]
    fn the_open_detail_follows_its_node_to_the_collector_shown() {
        let mut m = two(
            vec![heard("web1", 20_000, 0.1)],
            vec![heard("web1", 1, 0.9)],
        );
        m.open_detail(NodeKey::new(A, "web1"));
        m.set_connection(
            A,
            ConnState::Disconnected {
                retry_at_ms: 0,
                error: "gone".into(),
            },
        );
        assert_eq!(m.detail().unwrap().key, NodeKey::new(B, "web1"));
    }

    #[test]
    fn detail_data_is_kept_only_for_the_open_node() {
        let mut m = model();
        m.node_arrived(&"lb1".into(), Ok(node("lb1", &[])));
        assert!(m.detail().is_none());
        m.open_detail("lb1".into());
        m.node_arrived(&"web1".into(), Ok(node("web1", &[])));
        assert!(m.detail().unwrap().node.is_none());
        m.node_arrived(&"lb1".into(), Ok(node("lb1", &[])));
        m.node_arrived(&"lb1".into(), Err("boom".into()));
        let d = m.detail().unwrap();
        assert_eq!(d.node.as_ref().unwrap().name, "lb1");
        assert_eq!(d.node_error.as_deref(), Some("boom"));
        m.close_detail();
        assert!(m.detail().is_none());
    }
}
