//! Alerts: the collector decides, once, what is wrong, tells the operator
//! through the tools they already use, and remembers it across restarts.
//!
//! # How it runs
//!
//! The engine ([`Alerts`]) is evaluated by the fleet view every time the
//! view is published (4 times a second): each rule ([`rules`]) is matched
//! against the evaluated fleet, each (rule, labels) pair is one alert
//! moving through pending, firing and resolved ([`state`]), active alerts
//! about the tiers in front of a failed one are grouped under it
//! ([`groups`]), silences and maintenance windows hold alerts back, and the
//! sinks ([`notify`]) are handed what they must say. The active alerts go
//! out with the view (Snapshot, Watch, Fleet.Alerts); every change is kept
//! in a history.
//!
//! # What survives a restart
//!
//! With a data directory, alert states and start times, what each sink was
//! told, acknowledgements, silences, maintenance windows and the history
//! are written to an embedded store ([`persist`]): in batches as they
//! change, and at once for an operator's action. After a restart an alert
//! that was firing keeps firing, with its start time, until its node (or
//! tier) has reported again and shows the condition gone: a collector that
//! just started knows nothing, which is not the same as "all is well".

pub mod groups;
pub mod notify;
pub mod persist;
pub mod rules;
pub mod service;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stacktop_proto::v1::{Alert, AlertEvent, AlertsResponse, Label, Maintenance, Matcher, Silence};
use stacktop_proto::{Health, Role};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use self::notify::{Dependent, Job, NotifyConfig, Payload, Sink, SinkKind};
use self::persist::{Batch, Persist, PersistError};
use self::rules::{Condition, Rule, RuleConfig, Severity};
use self::state::{Ack, Phase, Record};
use crate::fleet::NodeView;
use crate::fleet::view::FleetView;

/// How long a firing alert about a tier in front of the DB waits before it
/// is notified, so that a failure deeper on the path that caused it is
/// found first and notified instead (DB alerts and alerts off the path have
/// no root to wait for and go at once).
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(3);

/// How long a resolved alert stays listed.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// How long after a start a restored alert may resolve without having seen
/// its node report again.
pub const RESTORE_GRACE: Duration = Duration::from_secs(60);

/// History entries kept.
pub const HISTORY_LIMIT: usize = 10_000;

/// Longest silence or maintenance window.
pub const MAX_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// The alerting part of the collector's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsConfig {
    /// `[[rules]]` tables (over the built-ins).
    pub rules: Vec<RuleConfig>,
    /// `[[notify]]` tables.
    pub notify: Vec<NotifyConfig>,
    /// Where alert state is kept; `None`: in memory only.
    pub data_dir: Option<PathBuf>,
    /// Wait before notifying a firing alert (default 5 s).
    pub group_wait: Option<Duration>,
}

/// Why alerting could not start, or an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// A rule is wrong.
    #[error(transparent)]
    Rule(#[from] rules::RuleError),
    /// A sink is wrong.
    #[error(transparent)]
    Sink(#[from] notify::SinkError),
    /// The store failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// No such alert, silence or window.
    #[error("{0}")]
    NotFound(String),
    /// The request does not make sense.
    #[error("{0}")]
    Invalid(String),
}

/// One change of an alert, as kept (and persisted) in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The alert.
    pub alert_id: String,
    /// Its rule.
    pub rule: String,
    /// Its node (empty for tier alerts).
    pub node: String,
    /// From.
    pub from: Phase,
    /// To.
    pub to: Phase,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Its summary then.
    pub summary: String,
    /// Its severity.
    pub severity: Severity,
}

/// A silence, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    /// Its id.
    pub id: String,
    /// `name = value` matchers.
    pub matchers: Vec<(String, String)>,
    /// Start (Unix ms).
    pub starts_ms: i64,
    /// End (0 with `until_resolved`).
    pub ends_ms: i64,
    /// Ends when every alert it matched resolved.
    pub until_resolved: bool,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Over.
    pub ended: bool,
}

/// A maintenance window, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceRecord {
    /// Its id.
    pub id: String,
    /// The node (empty for a tier).
    pub node: String,
    /// The tier's role name (empty for a node).
    pub tier: String,
    /// Start (Unix ms).
    pub starts_ms: i64,
    /// End (Unix ms).
    pub ends_ms: i64,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Over.
    pub ended: bool,
}

/// What an evaluation tells the fleet view.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The active alerts, as readers get them.
    pub alerts: Arc<Vec<Alert>>,
    /// They differ from the previous evaluation's.
    pub changed: bool,
}

/// Nodes and tiers in maintenance at an instant, with their end.
#[derive(Debug, Clone, Default)]
pub struct InMaintenance {
    /// By node name.
    pub nodes: HashMap<String, i64>,
    /// By tier role.
    pub tiers: HashMap<Role, i64>,
}

/// What the engine knows about an alert besides its record.
#[derive(Debug, Clone, Default)]
struct Extra {
    node: String,
    /// The node's roles (its alerts are held when one of its tiers is in
    /// maintenance).
    node_roles: Vec<Role>,
    tier: Option<Role>,
    /// The role on the request path it is about.
    role: Option<Role>,
    root: Option<String>,
    silence: Option<String>,
    held: bool,
    /// Loaded from the store, its condition not seen again since.
    restored: bool,
}

/// The engine's state.
#[derive(Debug)]
struct Engine {
    rules: Vec<Rule>,
    alerts: BTreeMap<String, Record>,
    extra: HashMap<String, Extra>,
    history: VecDeque<(u64, EventRecord)>,
    next_seq: u64,
    silences: Vec<SilenceRecord>,
    maintenance: Vec<MaintenanceRecord>,
    /// Samples of windowed metric rules, by alert id.
    windows: HashMap<String, VecDeque<(i64, f64)>>,
    /// When this engine started (restored alerts wait for evidence).
    started_ms: i64,
    group_wait_ms: i64,
    output: Arc<Vec<Alert>>,
    dirty: Dirty,
}

#[derive(Debug, Default)]
struct Dirty {
    alerts: BTreeSet<String>,
    removed: BTreeSet<String>,
    history: Vec<(u64, EventRecord)>,
    silences: BTreeSet<String>,
    maintenance: BTreeSet<String>,
}

/// The alert engine, its sinks and its store.
#[derive(Debug)]
pub struct Alerts {
    engine: Mutex<Engine>,
    sinks: Vec<Sink>,
    persist: Option<Persist>,
    /// Held across taking and writing a batch, so batches land in order.
    flushing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stable id of an alert: rule and labels.
pub fn alert_id(rule: &str, key: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    for (k, v) in key {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

fn new_id(prefix: &str, now_ms: i64, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(now_ms.to_le_bytes());
    h.update(salt.as_bytes());
    h.update(rand_bytes());
    format!("{prefix}-{}", &hex::encode(h.finalize())[..10])
}

fn rand_bytes() -> [u8; 8] {
    // Uniqueness, not secrecy: the process id and a counter do.
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    (u64::from(std::process::id()) << 32 | N.fetch_add(1, Ordering::Relaxed)).to_le_bytes()
}

/// One instance of a rule's condition holding.
struct Hit {
    key: BTreeMap<String, String>,
    node: String,
    node_roles: Vec<Role>,
    tier: Option<Role>,
    role: Option<Role>,
    value: Option<f64>,
    vars: BTreeMap<&'static str, String>,
}

impl Alerts {
    /// Checks the configuration, opens the store (loading what it holds)
    /// and starts the sinks on `tracker`.
    pub fn start(
        config: &AlertsConfig,
        now_ms: i64,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Self, AlertsError> {
        let rules = rules::resolve(&config.rules)?;
        let specs = notify::resolve(&config.notify)?;
        let persist = config.data_dir.as_deref().map(Persist::open).transpose()?;
        let mut engine = Engine {
            rules,
            alerts: BTreeMap::new(),
            extra: HashMap::new(),
            history: VecDeque::new(),
            next_seq: 1,
            silences: Vec::new(),
            maintenance: Vec::new(),
            windows: HashMap::new(),
            started_ms: now_ms,
            group_wait_ms: i64::try_from(
                config.group_wait.unwrap_or(DEFAULT_GROUP_WAIT).as_millis(),
            )
            .unwrap_or(i64::MAX),
            output: Arc::default(),
            dirty: Dirty::default(),
        };
        if let Some(p) = &persist {
            let loaded = p.load(HISTORY_LIMIT)?;
            for record in loaded.alerts {
                engine.extra.insert(
                    record.id.clone(),
                    Extra {
                        node: record.key.get("node").cloned().unwrap_or_default(),
                        tier: record.key.get("tier").and_then(|t| t.parse().ok()),
                        restored: true,
                        ..Default::default()
                    },
                );
                engine.alerts.insert(record.id.clone(), record);
            }
            engine.next_seq = loaded.history.last().map_or(1, |(s, _)| s + 1);
            engine.history = loaded.history.into_iter().collect();
            engine.silences = loaded.silences;
            engine.maintenance = loaded.maintenance;
        }
        let sinks = specs
            .into_iter()
            .map(|spec| Sink::start(spec, shutdown.clone(), tracker))
            .collect();
        Ok(Self {
            engine: Mutex::new(engine),
            sinks,
            persist,
            flushing: Mutex::new(()),
        })
    }

    /// The metric names the rules read.
    pub fn watched_metrics(&self) -> Vec<String> {
        rules::watched_metrics(&lock(&self.engine).rules)
    }

    /// The nodes and tiers in maintenance at `now_ms`.
    pub fn in_maintenance(&self, now_ms: i64) -> InMaintenance {
        lock(&self.engine).maintenance_at(now_ms)
    }

    /// Evaluates every rule against `view` at `now_ms`: moves alerts on,
    /// groups them, applies silences and maintenance, hands the sinks their
    /// notifications. Returns the active alerts.
    pub fn evaluate(&self, view: &FleetView, now_ms: i64) -> Outcome {
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        e.expire(now_ms);
        let maintenance = e.maintenance_at(now_ms);
        let rules = e.rules.clone();
        for rule in &rules {
            let hits = e.hits(rule, view, now_ms);
            let mut held_ids = BTreeSet::new();
            for hit in hits {
                let id = alert_id(&rule.name, &hit.key);
                held_ids.insert(id.clone());
                let record = e.alerts.entry(id.clone()).or_insert_with(|| {
                    Record::new(
                        id.clone(),
                        rule.name.clone(),
                        hit.key.clone(),
                        rule.severity,
                    )
                });
                record.severity = rule.severity;
                record.value = hit.value;
                record.summary = fill(&rule.summary, &rule.name, &hit.vars);
                let extra = e.extra.entry(id.clone()).or_default();
                extra.node = hit.node;
                extra.node_roles = hit.node_roles;
                extra.tier = hit.tier;
                extra.role = hit.role;
                extra.restored = false;
            }
            let ids: Vec<String> = e
                .alerts
                .values()
                .filter(|r| r.rule == rule.name)
                .map(|r| r.id.clone())
                .collect();
            for id in ids {
                let holds = held_ids.contains(&id);
                let evidence = holds || e.has_evidence(&id, view, now_ms);
                let Some(record) = e.alerts.get_mut(&id) else {
                    continue;
                };
                if !holds && !evidence {
                    continue;
                }
                if let Some(extra) = e.extra.get_mut(&id) {
                    extra.restored = false;
                }
                if let Some(t) = record.step(holds, now_ms, rule.for_ms, rule.keep_firing_for_ms) {
                    let event = EventRecord {
                        alert_id: id.clone(),
                        rule: record.rule.clone(),
                        node: record.key.get("node").cloned().unwrap_or_default(),
                        from: t.from,
                        to: t.to,
                        at_ms: now_ms,
                        summary: record.summary.clone(),
                        severity: record.severity,
                    };
                    e.record_event(event);
                    e.dirty.alerts.insert(id.clone());
                }
            }
        }
        // Forget what is over: blips at once, resolutions after a while.
        let retention = i64::try_from(RESOLVED_RETENTION.as_millis()).unwrap_or(i64::MAX);
        let gone: Vec<String> = e
            .alerts
            .values()
            .filter(|r| {
                r.phase == Phase::Inactive
                    || (r.phase == Phase::Resolved && now_ms - r.resolved_ms > retention)
            })
            .map(|r| r.id.clone())
            .collect();
        for id in gone {
            e.alerts.remove(&id);
            e.extra.remove(&id);
            e.windows.remove(&id);
            e.dirty.alerts.remove(&id);
            e.dirty.removed.insert(id);
        }
        e.group();
        e.apply_silences_and_maintenance(&maintenance);
        self.notify(e, now_ms);
        let alerts = Arc::new(e.list());
        let changed = alerts != e.output;
        if changed {
            e.output = alerts.clone();
        }
        Outcome {
            alerts: e.output.clone(),
            changed,
        }
    }

    /// Hands each sink what it must say now.
    fn notify(&self, e: &mut Engine, now_ms: i64) {
        if self.sinks.is_empty() {
            return;
        }
        let ids: Vec<String> = e.alerts.keys().cloned().collect();
        for id in ids {
            let extra = e.extra.get(&id).cloned().unwrap_or_default();
            let Some(record) = e.alerts.get(&id) else {
                continue;
            };
            let quiet = extra.held || extra.silence.is_some() || extra.root.is_some();
            let firing = record.phase == Phase::Firing && !quiet;
            let resolved = record.phase == Phase::Resolved;
            if !firing && !resolved {
                continue;
            }
            // Only an alert in front of the DB can still find a root
            // deeper on the path: it waits for one; others go at once.
            let could_be_grouped = extra.role.is_some_and(|r| {
                groups::depth(r) > 0 && groups::depth(r) < groups::depth(Role::Db)
            });
            if firing && could_be_grouped && now_ms - record.fired_ms < e.group_wait_ms {
                continue;
            }
            let labels = e.labels(record, &extra);
            let mut sends = Vec::new();
            for (i, sink) in self.sinks.iter().enumerate() {
                if !sink.wants(record.severity, &labels) {
                    continue;
                }
                let told = record
                    .notified
                    .get(&sink.spec.name)
                    .cloned()
                    .unwrap_or_default();
                let send = if firing {
                    told.firing_ms == 0
                        || (sink.spec.kind == SinkKind::Alertmanager
                            && now_ms - told.last_ms >= sink.spec.resend_ms)
                        || (sink.spec.kind != SinkKind::Alertmanager
                            && sink.spec.resend_ms > 0
                            && record.ack.is_none()
                            && now_ms - told.last_ms >= sink.spec.resend_ms)
                } else {
                    told.firing_ms > 0 && !told.resolved
                };
                if send {
                    sends.push(i);
                }
            }
            if sends.is_empty() {
                continue;
            }
            let payload = e.payload(record, &extra, labels);
            let record = e.alerts.get_mut(&id).expect("listed above");
            for i in sends {
                let sink = &self.sinks[i];
                if sink.send(Job {
                    payload: payload.clone(),
                }) {
                    let told = record.notified.entry(sink.spec.name.clone()).or_default();
                    if firing {
                        if told.firing_ms == 0 {
                            told.firing_ms = now_ms;
                        }
                        told.last_ms = now_ms;
                    } else {
                        told.resolved = true;
                    }
                }
            }
            e.dirty.alerts.insert(id);
        }
    }

    /// Everything Fleet.Alerts answers.
    pub fn response(&self, history_limit: Option<usize>, now_ms: i64) -> AlertsResponse {
        let engine = lock(&self.engine);
        AlertsResponse {
            alerts: engine.output.to_vec(),
            history: history_limit
                .map(|n| {
                    engine
                        .history
                        .iter()
                        .rev()
                        .take(n)
                        .map(|(_, ev)| AlertEvent {
                            alert_id: ev.alert_id.clone(),
                            rule: ev.rule.clone(),
                            node: ev.node.clone(),
                            from: ev.from.proto() as i32,
                            to: ev.to.proto() as i32,
                            at_ms: ev.at_ms,
                            summary: ev.summary.clone(),
                            severity: ev.severity.proto() as i32,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            silences: engine
                .silences
                .iter()
                .filter(|s| !s.ended)
                .map(silence_proto)
                .collect(),
            maintenance: engine
                .maintenance
                .iter()
                .filter(|m| !m.ended && m.ends_ms > now_ms)
                .map(maintenance_proto)
                .collect(),
            sinks: self.sinks.iter().map(Sink::status).collect(),
        }
    }

    /// Acknowledges alert `id`.
    pub fn ack(
        &self,
        id: &str,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Alert, AlertsError> {
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        let record = e
            .alerts
            .get_mut(id)
            .ok_or_else(|| AlertsError::NotFound(format!("no alert with id {id:?}")))?;
        if !record.is_active() {
            return Err(AlertsError::Invalid(format!(
                "alert {id:?} is {}: only a pending or firing alert can be acknowledged",
                phase_name(record.phase)
            )));
        }
        record.ack = Some(Ack {
            by: by.to_string(),
            at_ms: now_ms,
            comment: comment.to_string(),
        });
        e.dirty.alerts.insert(id.to_string());
        let extra = e.extra.get(id).cloned().unwrap_or_default();
        let record = &e.alerts[id];
        let alert = e.to_proto(record, &extra);
        // The listed alerts change now, not at the next evaluation.
        let list = Arc::new(e.list());
        e.output = list;
        Ok(alert)
    }

    /// Silences alerts matching `matchers`.
    pub fn silence(
        &self,
        matchers: &[(String, String)],
        duration: Option<Duration>,
        until_resolved: bool,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Silence, AlertsError> {
        if matchers.is_empty() || matchers.iter().any(|(n, v)| n.is_empty() || v.is_empty()) {
            return Err(AlertsError::Invalid(
                "a silence needs at least one matcher such as node=web2".into(),
            ));
        }
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        let ends_ms = match (duration, until_resolved) {
            (Some(_), true) | (None, false) => {
                return Err(AlertsError::Invalid(
                    "give a duration or until-resolved, not both".into(),
                ));
            }
            (Some(d), false) => {
                if d.is_zero() || d > MAX_WINDOW {
                    return Err(AlertsError::Invalid(
                        "the duration must be above 0 and at most a year".into(),
                    ));
                }
                now_ms + d.as_millis() as i64
            }
            (None, true) => {
                let matched = e.alerts.values().any(|r| {
                    r.is_active() && {
                        let extra = e.extra.get(&r.id).cloned().unwrap_or_default();
                        matches(matchers, &e.labels(r, &extra))
                    }
                });
                if !matched {
                    return Err(AlertsError::Invalid(
                        "no active alert matches: a silence until resolved needs one".into(),
                    ));
                }
                0
            }
        };
        let record = SilenceRecord {
            id: new_id("silence", now_ms, by),
            matchers: matchers.to_vec(),
            starts_ms: now_ms,
            ends_ms,
            until_resolved,
            created_by: by.into(),
            comment: comment.into(),
            ended: false,
        };
        // The listed alerts show it from the next evaluation on.
        e.dirty.silences.insert(record.id.clone());
        e.silences.push(record.clone());
        Ok(silence_proto(&record))
    }

    /// Ends silence `id` now.
    pub fn unsilence(&self, id: &str, now_ms: i64) -> Result<Silence, AlertsError> {
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        let s = e
            .silences
            .iter_mut()
            .find(|s| s.id == id && !s.ended)
            .ok_or_else(|| AlertsError::NotFound(format!("no active silence with id {id:?}")))?;
        s.ended = true;
        s.ends_ms = now_ms;
        let s = s.clone();
        e.dirty.silences.insert(s.id.clone());
        Ok(silence_proto(&s))
    }

    /// Puts node `node` or tier `tier` in maintenance.
    pub fn start_maintenance(
        &self,
        node: &str,
        tier: Option<Role>,
        duration: Duration,
        by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Maintenance, AlertsError> {
        if node.is_empty() == tier.is_none() {
            return Err(AlertsError::Invalid(
                "name one node or one tier for maintenance".into(),
            ));
        }
        if duration.is_zero() || duration > MAX_WINDOW {
            return Err(AlertsError::Invalid(
                "the duration must be above 0 and at most a year".into(),
            ));
        }
        let mut engine = lock(&self.engine);
        let record = MaintenanceRecord {
            id: new_id("maintenance", now_ms, node),
            node: node.into(),
            tier: tier.map(|t| t.name().to_string()).unwrap_or_default(),
            starts_ms: now_ms,
            ends_ms: now_ms + duration.as_millis() as i64,
            created_by: by.into(),
            comment: comment.into(),
            ended: false,
        };
        engine.dirty.maintenance.insert(record.id.clone());
        engine.maintenance.push(record.clone());
        Ok(maintenance_proto(&record))
    }

    /// Ends maintenance window `id` now.
    pub fn end_maintenance(&self, id: &str, now_ms: i64) -> Result<Maintenance, AlertsError> {
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        let m = e
            .maintenance
            .iter_mut()
            .find(|m| m.id == id && !m.ended)
            .ok_or_else(|| {
                AlertsError::NotFound(format!("no maintenance window with id {id:?}"))
            })?;
        m.ended = true;
        m.ends_ms = now_ms;
        let m = m.clone();
        e.dirty.maintenance.insert(m.id.clone());
        Ok(maintenance_proto(&m))
    }

    /// Writes what changed to the store (a no-op without one). Blocking:
    /// call it off the async workers.
    pub fn flush(&self) -> Result<(), AlertsError> {
        let Some(persist) = &self.persist else {
            // Nothing to keep: forget what changed.
            lock(&self.engine).dirty = Dirty::default();
            return Ok(());
        };
        let _order = lock(&self.flushing);
        let batch = lock(&self.engine).take_batch();
        persist.write(&batch).map_err(AlertsError::from)
    }
}

/// Writes the alert store every `interval` until `shutdown` (and once more
/// then).
pub async fn keep_flushing(alerts: Arc<Alerts>, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let a = alerts.clone();
        match tokio::task::spawn_blocking(move || a.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(cause = %err, "writing the alert store failed; retrying"),
            Err(err) => warn!(cause = %err, "the alert store writer panicked"),
        }
        if last {
            return;
        }
    }
}

impl Engine {
    /// The nodes and tiers in maintenance at `now_ms`, with their end.
    fn maintenance_at(&self, now_ms: i64) -> InMaintenance {
        let mut m = InMaintenance::default();
        for w in self
            .maintenance
            .iter()
            .filter(|w| !w.ended && w.starts_ms <= now_ms && now_ms < w.ends_ms)
        {
            if !w.node.is_empty() {
                let end = m.nodes.entry(w.node.clone()).or_insert(0);
                *end = (*end).max(w.ends_ms);
            }
            if let Ok(role) = w.tier.parse::<Role>() {
                let end = m.tiers.entry(role).or_insert(0);
                *end = (*end).max(w.ends_ms);
            }
        }
        m
    }

    /// Ends silences and maintenance windows whose time is up.
    fn expire(&mut self, now_ms: i64) {
        for s in &mut self.silences {
            if !s.ended && !s.until_resolved && s.ends_ms <= now_ms {
                s.ended = true;
                self.dirty.silences.insert(s.id.clone());
            }
        }
        for m in &mut self.maintenance {
            if !m.ended && m.ends_ms <= now_ms {
                m.ended = true;
                self.dirty.maintenance.insert(m.id.clone());
            }
        }
    }

    fn record_event(&mut self, event: EventRecord) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.dirty.history.push((seq, event.clone()));
        self.history.push_back((seq, event));
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }

    /// Whether a restored alert's node (or tier) has been seen since this
    /// engine started, or the grace is over: only then may it resolve.
    fn has_evidence(&self, id: &str, view: &FleetView, now_ms: i64) -> bool {
        let Some(extra) = self.extra.get(id) else {
            return true;
        };
        if !extra.restored {
            return true;
        }
        if now_ms - self.started_ms > RESTORE_GRACE.as_millis() as i64 {
            return true;
        }
        if !extra.node.is_empty() {
            return view
                .node(&extra.node)
                .is_some_and(|n| n.status.last_seen_ms > self.started_ms);
        }
        if let Some(tier) = extra.tier {
            return view.nodes().any(|n| {
                n.identity.roles.contains(&tier) && n.status.last_seen_ms > self.started_ms
            });
        }
        false
    }

    /// Every instance of `rule`'s condition holding in `view`.
    fn hits(&mut self, rule: &Rule, view: &FleetView, now_ms: i64) -> Vec<Hit> {
        let mut hits = Vec::new();
        let node_ok = |n: &NodeView| {
            rule.role.is_none_or(|r| n.identity.roles.contains(&r))
                && rule.match_labels.iter().all(|(k, v)| {
                    n.identity
                        .labels
                        .iter()
                        .any(|l| &l.key == k && &l.value == v)
                })
        };
        match &rule.condition {
            Condition::NodeDown => {
                for n in view.nodes().filter(|n| node_ok(n)) {
                    if n.health() == Health::Down && n.status.last_seen_ms > 0 {
                        let silent = (now_ms - n.status.last_seen_ms) / 1_000;
                        hits.push(Hit {
                            key: BTreeMap::from([("node".into(), n.identity.name.clone())]),
                            node: n.identity.name.clone(),
                            node_roles: n.identity.roles.clone(),
                            tier: None,
                            role: deepest(&n.identity.roles),
                            value: Some(silent as f64),
                            vars: BTreeMap::from([
                                ("node", n.identity.name.clone()),
                                ("value", silent.to_string()),
                            ]),
                        });
                    }
                }
            }
            Condition::Check {
                name,
                kind,
                at_least,
            } => {
                for n in view.nodes().filter(|n| node_ok(n)) {
                    for c in n.checks.iter() {
                        let status = c.status();
                        if c.stale
                            || status.severity() < at_least.severity()
                            || name
                                .as_deref()
                                .is_some_and(|p| !rules::glob(p, &c.result.name))
                            || kind.as_deref().is_some_and(|k| k != c.result.kind)
                        {
                            continue;
                        }
                        // A node-wide check (exposure, a process) speaks
                        // for the node's deepest role.
                        let role = Some(c.role)
                            .filter(|r| *r != Role::Unspecified && n.identity.roles.contains(r))
                            .or_else(|| deepest(&n.identity.roles));
                        hits.push(Hit {
                            key: BTreeMap::from([
                                ("node".into(), n.identity.name.clone()),
                                ("check".into(), c.result.name.clone()),
                            ]),
                            node: n.identity.name.clone(),
                            node_roles: n.identity.roles.clone(),
                            tier: None,
                            role,
                            value: None,
                            vars: BTreeMap::from([
                                ("node", n.identity.name.clone()),
                                ("check", c.result.name.clone()),
                                ("kind", c.result.kind.clone()),
                                ("status", status.name().to_string()),
                                ("message", c.result.message.clone()),
                            ]),
                        });
                    }
                }
            }
            Condition::Tier {
                min_healthy,
                at_least_one,
            } => {
                for t in &view.totals.tiers {
                    let role = t.role();
                    if rule.role.is_some_and(|r| r != role)
                        || t.total == 0
                        || t.healthy >= *min_healthy
                        || (*at_least_one && t.healthy == 0)
                    {
                        continue;
                    }
                    hits.push(Hit {
                        key: BTreeMap::from([("tier".into(), role.name().to_string())]),
                        node: String::new(),
                        node_roles: Vec::new(),
                        tier: Some(role),
                        role: Some(role),
                        value: Some(f64::from(t.healthy)),
                        vars: BTreeMap::from([
                            ("tier", role.tier_title().to_string()),
                            ("healthy", t.healthy.to_string()),
                            ("total", t.total.to_string()),
                            ("value", t.healthy.to_string()),
                        ]),
                    });
                }
            }
            Condition::Metric {
                metric,
                divided_by,
                above,
                below,
                window_ms,
            } => {
                for n in view.nodes().filter(|n| node_ok(n)) {
                    for v in n.metrics.iter().filter(|v| &v.key.name == metric) {
                        if !rule.match_labels.iter().all(|(k, val)| {
                            v.key.label(k) == Some(val.as_str())
                                || n.identity
                                    .labels
                                    .iter()
                                    .any(|l| &l.key == k && &l.value == val)
                        }) {
                            continue;
                        }
                        let value = match divided_by {
                            None => v.value,
                            Some(d) => {
                                let Some(total) = n
                                    .metrics
                                    .iter()
                                    .find(|t| &t.key.name == d && t.key.labels == v.key.labels)
                                else {
                                    continue;
                                };
                                if total.value <= 0.0 {
                                    continue;
                                }
                                v.value / total.value
                            }
                        };
                        let mut key =
                            BTreeMap::from([("node".to_string(), n.identity.name.clone())]);
                        for (k, val) in &v.key.labels {
                            key.insert(k.clone(), val.clone());
                        }
                        let id = alert_id(&rule.name, &key);
                        let value = if *window_ms > 0 {
                            let samples = self.windows.entry(id).or_default();
                            samples.push_back((now_ms, value));
                            while samples
                                .front()
                                .is_some_and(|(t, _)| now_ms - t > *window_ms)
                            {
                                samples.pop_front();
                            }
                            samples.iter().map(|(_, v)| v).sum::<f64>() / samples.len() as f64
                        } else {
                            value
                        };
                        let holds =
                            above.is_some_and(|a| value > a) || below.is_some_and(|b| value < b);
                        if !holds {
                            continue;
                        }
                        let ratio = divided_by.is_some();
                        let shown = |x: f64| {
                            if ratio {
                                format!("{:.0} %", x * 100.0)
                            } else if x.fract() == 0.0 {
                                format!("{x:.0}")
                            } else {
                                format!("{x:.2}")
                            }
                        };
                        let mut vars = BTreeMap::from([
                            ("node", n.identity.name.clone()),
                            ("value", shown(value)),
                            ("threshold", above.or(*below).map(shown).unwrap_or_default()),
                        ]);
                        if let Some(m) = v.key.label("mount") {
                            vars.insert("mount", m.to_string());
                        }
                        if let Some(d) = v.key.label("device") {
                            vars.insert("device", d.to_string());
                        }
                        hits.push(Hit {
                            key,
                            node: n.identity.name.clone(),
                            node_roles: n.identity.roles.clone(),
                            tier: None,
                            role: None,
                            value: Some(value),
                            vars,
                        });
                    }
                }
            }
        }
        hits
    }

    /// Groups the active alerts (see [`groups`]).
    fn group(&mut self) {
        let members: Vec<groups::Member> = self
            .alerts
            .values()
            .filter(|r| r.is_active())
            .map(|r| groups::Member {
                id: r.id.clone(),
                role: self.extra.get(&r.id).and_then(|x| x.role),
                critical: r.severity == Severity::Critical,
                started_ms: r.started_ms,
                about_tier: self.extra.get(&r.id).is_some_and(|x| x.tier.is_some()),
            })
            .collect();
        let roots = groups::roots(&members);
        for extra in self.extra.values_mut() {
            extra.root = None;
        }
        for (m, root) in members.iter().zip(roots) {
            if let Some(x) = self.extra.get_mut(&m.id) {
                x.root = root;
            }
        }
    }

    fn apply_silences_and_maintenance(&mut self, maintenance: &InMaintenance) {
        let ids: Vec<String> = self.alerts.keys().cloned().collect();
        let mut matched_any: BTreeSet<String> = BTreeSet::new();
        for id in ids {
            let record = &self.alerts[&id];
            let mut extra = self.extra.get(&id).cloned().unwrap_or_default();
            let labels = self.labels(record, &extra);
            extra.silence = self
                .silences
                .iter()
                .find(|s| !s.ended && matches(&s.matchers, &labels))
                .map(|s| s.id.clone());
            if record.is_active() {
                for s in self
                    .silences
                    .iter()
                    .filter(|s| !s.ended && matches(&s.matchers, &labels))
                {
                    matched_any.insert(s.id.clone());
                }
            }
            extra.held = (!extra.node.is_empty() && maintenance.nodes.contains_key(&extra.node))
                || extra
                    .tier
                    .is_some_and(|t| maintenance.tiers.contains_key(&t))
                || extra
                    .node_roles
                    .iter()
                    .any(|r| maintenance.tiers.contains_key(r));
            self.extra.insert(id, extra);
        }
        // A silence until resolved ends when nothing it matches is active.
        for s in &mut self.silences {
            if !s.ended && s.until_resolved && !matched_any.contains(&s.id) {
                s.ended = true;
                self.dirty.silences.insert(s.id.clone());
            }
        }
    }

    /// Every label of an alert: alertname, severity, node, tier, its key
    /// labels and the rule's.
    fn labels(&self, r: &Record, extra: &Extra) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        if let Some(rule) = self.rules.iter().find(|x| x.name == r.rule) {
            labels.extend(rule.labels.clone());
        }
        labels.extend(r.key.clone());
        labels.insert("alertname".into(), r.rule.clone());
        labels.insert("rule".into(), r.rule.clone());
        labels.insert("severity".into(), r.severity.name().into());
        if !extra.node.is_empty() {
            labels.insert("node".into(), extra.node.clone());
        }
        if let Some(role) = extra.role.or(extra.tier) {
            labels.insert("role".into(), role.name().into());
        }
        labels
    }

    fn payload(&self, r: &Record, extra: &Extra, labels: BTreeMap<String, String>) -> Payload {
        let dependents = self
            .alerts
            .values()
            .filter(|d| {
                self.extra.get(&d.id).and_then(|x| x.root.as_deref()) == Some(r.id.as_str())
            })
            .map(|d| Dependent {
                id: d.id.clone(),
                rule: d.rule.clone(),
                node: d.key.get("node").cloned().unwrap_or_default(),
                summary: d.summary.clone(),
            })
            .collect();
        Payload {
            id: r.id.clone(),
            rule: r.rule.clone(),
            status: if r.phase == Phase::Resolved {
                "resolved"
            } else {
                "firing"
            },
            severity: r.severity.name(),
            node: extra.node.clone(),
            summary: r.summary.clone(),
            labels,
            started_unix_ms: r.started_ms,
            fired_unix_ms: r.fired_ms,
            resolved_unix_ms: r.resolved_ms,
            value: r.value,
            acknowledged_by: r.ack.as_ref().map(|a| a.by.clone()),
            dependents,
        }
    }

    fn to_proto(&self, r: &Record, extra: &Extra) -> Alert {
        let labels = self.labels(r, extra);
        let grouped = self
            .alerts
            .values()
            .filter(|d| {
                self.extra.get(&d.id).and_then(|x| x.root.as_deref()) == Some(r.id.as_str())
            })
            .map(|d| d.id.clone())
            .collect();
        Alert {
            id: r.id.clone(),
            rule: r.rule.clone(),
            node: extra.node.clone(),
            tier: extra.tier.map_or(0, |t| t as i32),
            severity: r.severity.proto() as i32,
            state: r.phase.proto() as i32,
            since_ms: r.since_ms(),
            started_ms: r.started_ms,
            fired_ms: r.fired_ms,
            resolved_ms: r.resolved_ms,
            summary: r.summary.clone(),
            labels: labels.into_iter().map(|(k, v)| Label::new(k, v)).collect(),
            value: r.value,
            acknowledged: r.ack.is_some(),
            acknowledged_by: r.ack.as_ref().map(|a| a.by.clone()).unwrap_or_default(),
            acknowledged_ms: r.ack.as_ref().map_or(0, |a| a.at_ms),
            ack_comment: r
                .ack
                .as_ref()
                .map(|a| a.comment.clone())
                .unwrap_or_default(),
            silenced: extra.silence.is_some(),
            silence_id: extra.silence.clone().unwrap_or_default(),
            in_maintenance: extra.held,
            root: extra.root.clone().unwrap_or_default(),
            grouped,
            notifications: r.notified.values().filter(|n| n.firing_ms > 0).count() as u32
                + r.notified.values().filter(|n| n.resolved).count() as u32,
        }
    }

    /// The listed alerts: firing first, then pending, then resolved; by
    /// severity, then oldest first.
    fn list(&self) -> Vec<Alert> {
        let mut list: Vec<Alert> = self
            .alerts
            .values()
            .filter(|r| r.phase != Phase::Inactive)
            .map(|r| self.to_proto(r, &self.extra.get(&r.id).cloned().unwrap_or_default()))
            .collect();
        let rank = |a: &Alert| match a.state() {
            stacktop_proto::v1::AlertState::Firing => 0,
            stacktop_proto::v1::AlertState::Pending => 1,
            _ => 2,
        };
        list.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.severity.cmp(&a.severity))
                .then(a.since_ms.cmp(&b.since_ms))
                .then(a.id.cmp(&b.id))
        });
        list
    }

    fn take_batch(&mut self) -> Batch {
        let dirty = std::mem::take(&mut self.dirty);
        let history_before = (self.next_seq > HISTORY_LIMIT as u64 && !dirty.history.is_empty())
            .then(|| self.next_seq - HISTORY_LIMIT as u64);
        Batch {
            alerts: dirty
                .alerts
                .iter()
                .filter_map(|id| self.alerts.get(id).cloned())
                .collect(),
            removed: dirty.removed.into_iter().collect(),
            history: dirty.history,
            history_before,
            silences: dirty
                .silences
                .iter()
                .filter_map(|id| self.silences.iter().find(|s| &s.id == id).cloned())
                .collect(),
            maintenance: dirty
                .maintenance
                .iter()
                .filter_map(|id| self.maintenance.iter().find(|m| &m.id == id).cloned())
                .collect(),
        }
    }
}

/// The deepest role on the request path among `roles`.
fn deepest(roles: &[Role]) -> Option<Role> {
    roles
        .iter()
        .copied()
        .max_by_key(|r| groups::depth(*r))
        .filter(|r| groups::depth(*r) > 0)
}

fn matches(matchers: &[(String, String)], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "pending",
        Phase::Firing => "firing",
        Phase::Resolved => "resolved",
        Phase::Inactive => "inactive",
    }
}

/// Fills `{name}` placeholders of `template`.
fn fill(template: &str, rule: &str, vars: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match (name, vars.get(name)) {
                    ("rule", _) => out.push_str(rule),
                    (_, Some(v)) => out.push_str(v),
                    _ => {}
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn silence_proto(s: &SilenceRecord) -> Silence {
    Silence {
        id: s.id.clone(),
        matchers: s
            .matchers
            .iter()
            .map(|(name, value)| Matcher {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        starts_ms: s.starts_ms,
        ends_ms: s.ends_ms,
        until_resolved: s.until_resolved,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        ended: s.ended,
    }
}

fn maintenance_proto(m: &MaintenanceRecord) -> Maintenance {
    Maintenance {
        id: m.id.clone(),
        node: m.node.clone(),
        tier: m.tier.parse::<Role>().map_or(0, |r| r as i32),
        starts_ms: m.starts_ms,
        ends_ms: m.ends_ms,
        created_by: m.created_by.clone(),
        comment: m.comment.clone(),
        ended: m.ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_rule_and_labels() {
        let key = BTreeMap::from([("node".to_string(), "web1".to_string())]);
        assert_eq!(alert_id("node-down", &key), alert_id("node-down", &key));
        assert_ne!(alert_id("node-down", &key), alert_id("check-failed", &key));
        assert_eq!(alert_id("node-down", &key).len(), 16);
    }

    #[test]
    fn summaries_fill_their_placeholders() {
        let vars = BTreeMap::from([("node", "db1".to_string()), ("check", "mysql".to_string())]);
        assert_eq!(
            fill(
                "{node}: {check} via {rule}, {unknown}{",
                "check-failed",
                &vars
            ),
            "db1: mysql via check-failed, {"
        );
    }
}
