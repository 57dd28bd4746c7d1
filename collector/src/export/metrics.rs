//! The `/metrics` exposition: the whole fleet as one Prometheus target.
//!
//! Everything is read from the one evaluated fleet ([`FleetView`]) and
//! the store, never re-decided here:
//!
//! - **Agent series**: the latest value of every series of every node that
//!   is not `down`, named as the agent named it, labelled as
//!   [`labels::series_labels`] says (`node`, `role`, the series' labels).
//!   A value is left out once it is stale by the fleet view's rule
//!   ([`Freshness`]), and all of a down node's values are: `/metrics`
//!   never shows a number that no longer describes now. No timestamps are
//!   given (Prometheus stamps the scrape); remote_write carries the
//!   agents' own times. Series whose name starts with `stacktop_` are left
//!   out (that prefix is the collector's).
//! - **Health** (`stacktop_node_*`, `stacktop_check_status`,
//!   `stacktop_tier_*`, `stacktop_site_health`, `stacktop_nodes`) and the
//!   active alerts (`stacktop_alerts`, like Prometheus' own `ALERTS`).
//! - **The collector itself**: agents connected, batches and points
//!   stored, series held, notifications per sink, remote_write per
//!   destination.
//!
//! Health is a number, the same everywhere: 0 ok, 1 warn, 2 crit,
//! 3 unknown, 4 down (checks use 0-3, as the agent's `check_status` does).
//!
//! The encoding is prometheus-client's: the Prometheus text format 0.0.4
//! by default, OpenMetrics 1.0 when the `Accept` header prefers it
//! (Prometheus does).

use std::borrow::Cow;
use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use stacktop_proto::v1::{Alert, AlertState, Severity, SinkStatus};
use stacktop_proto::{Health, Role, VERSION};

use super::labels::{self, NODE, ROLE};
use super::remote_write::{Destination, DropReason};
use super::tap::IngestStats;
use crate::fleet::copy::{self, LatestValue};
use crate::fleet::summary::Freshness;
use crate::fleet::{FleetView, NodeView};
use crate::health;
use crate::store::Store;

/// `Content-Type` of the OpenMetrics text format that is served.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The two text formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (the default).
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it ranks
    /// it at least as high as the plain text format (by `q`, default 1),
    /// else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut openmetrics = 0.0f32;
        let mut text = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// A label set as encoded.
type Labels = Vec<(String, String)>;

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Gauge(f64),
    Counter(u64),
}

/// One metric family: a name, its help, its type and its samples.
#[derive(Debug)]
struct Family {
    name: String,
    help: Cow<'static, str>,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

impl Family {
    fn new(name: impl Into<String>, help: impl Into<Cow<'static, str>>, kind: MetricType) -> Self {
        Self {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    fn gauge(&mut self, labels: Labels, value: f64) {
        self.samples.push((labels, Value::Gauge(value)));
    }

    fn counter(&mut self, labels: Labels, value: u64) {
        self.samples.push((labels, Value::Counter(value)));
    }
}

/// What the collector itself reports, besides the fleet.
#[derive(Debug)]
pub struct CollectorState<'a> {
    /// What ingest stored.
    pub ingest: &'a IngestStats,
    /// Every notification sink's counters.
    pub sinks: Vec<SinkStatus>,
    /// Every remote_write destination.
    pub destinations: &'a [Destination],
}

/// One scrape's worth of metrics, gathered, ready to encode.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// A label pair.
fn l(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_string(), value.into())
}

/// A health as exported: 0 ok, 1 warn, 2 crit, 3 unknown, 4 down.
pub fn health_value(health: Health) -> f64 {
    match health {
        Health::Ok => 0.0,
        Health::Warn => 1.0,
        Health::Crit => 2.0,
        Health::Unknown | Health::Unspecified => 3.0,
        Health::Down => 4.0,
    }
}

/// A severity as alert rules and Alertmanager spell it.
fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Unspecified => "none",
    }
}

const HEALTH_HELP: &str = "0 ok, 1 warn, 2 crit, 3 unknown, 4 down";

/// The type an agent series is exported with: gauge (agents send rates,
/// ratios, amounts and quantiles), or unknown for a name OpenMetrics keeps
/// for the samples of another type.
fn agent_series_type(name: &str) -> MetricType {
    const OTHER_TYPES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_created", "_info"];
    if OTHER_TYPES.iter().any(|s| name.ends_with(s)) {
        MetricType::Unknown
    } else {
        MetricType::Gauge
    }
}

impl Exposition {
    /// Gathers the fleet as `view` decided it at `now_ms` (the instant the
    /// view was brought up to date), every live node's fresh series values
    /// from `store`, and the collector's own state.
    pub fn gather(view: &FleetView, store: &Store, own: &CollectorState<'_>, now_ms: i64) -> Self {
        let mut out = Exposition::default();
        out.fleet(view, store, now_ms);
        out.own(view, store, own);
        out
    }

    fn fleet(&mut self, view: &FleetView, store: &Store, now_ms: i64) {
        let mut up = Family::new(
            "stacktop_node_up",
            "1 while the node's agent reports (not down), else 0",
            MetricType::Gauge,
        );
        let mut health = Family::new(
            "stacktop_node_health",
            format!("The node's health, the worst of its checks: {HEALTH_HELP}"),
            MetricType::Gauge,
        );
        let mut info = Family::new(
            "stacktop_node_info",
            "1 for every known node, with its agent version and its labels as label_<key>",
            MetricType::Gauge,
        );
        let mut last_seen = Family::new(
            "stacktop_node_last_seen_timestamp_seconds",
            "When the collector last heard from the node (Unix seconds)",
            MetricType::Gauge,
        );
        let mut checks = Family::new(
            "stacktop_check_status",
            "Each check's status on each live node: 0 ok, 1 warn, 2 crit, 3 unknown (also a stale result)",
            MetricType::Gauge,
        );
        let mut series: BTreeMap<String, Family> = BTreeMap::new();
        // Series the store holds and their history's footprint, counted
        // while each node is locked anyway.
        let mut held = Held::default();

        for node in view.nodes() {
            let id = &node.identity;
            let role = labels::roles_value(&id.roles);
            let base = node_labels(&id.name, &role);
            let alive = node.health() != Health::Down;
            up.gauge(base.clone(), if alive { 1.0 } else { 0.0 });
            health.gauge(base.clone(), health_value(node.health()));
            info.gauge(info_labels(node, &base), 1.0);
            if node.status.last_seen_ms > 0 {
                last_seen.gauge(base.clone(), node.status.last_seen_ms as f64 / 1_000.0);
            }
            if !alive {
                // Nothing a down node said describes now.
                if let Ok(h) = store.with_node(&id.name, Held::of) {
                    held.add(h);
                }
                continue;
            }
            for check in node.checks.iter() {
                let mut set = base.clone();
                set.push(l("check", check.result.name.clone()));
                set.push(l("kind", check.result.kind.clone()));
                set.sort();
                checks.gauge(set, health_value(health::as_check_status(check.status())));
            }
            let Ok((count, latest)) =
                store.with_node(&id.name, |n| (Held::of(n), copy::latest_values(n)))
            else {
                continue;
            };
            held.add(count);
            let fresh = Freshness {
                now_ms,
                interval_ms: id.interval_ms,
                alive,
            };
            for (name, set, value) in node_series(&id.name, &role, &latest, &fresh) {
                series
                    .entry(name)
                    .or_insert_with_key(|name| {
                        Family::new(
                            name.clone(),
                            format!(
                                "stacktop agent series {name}: the latest value of every live node"
                            ),
                            agent_series_type(name),
                        )
                    })
                    .gauge(set, value);
            }
        }
        self.families.extend([up, health, info, last_seen, checks]);
        self.families.extend(series.into_values());
        self.series_held(held);
        self.totals(view);
    }

    fn totals(&mut self, view: &FleetView) {
        let t = &view.totals;
        let mut nodes = Family::new("stacktop_nodes", "Known nodes by health", MetricType::Gauge);
        for (name, n) in [
            ("ok", t.nodes_ok),
            ("warn", t.nodes_warn),
            ("crit", t.nodes_crit),
            ("unknown", t.nodes_unknown),
            ("down", t.nodes_down),
        ] {
            nodes.gauge(vec![l("health", name)], f64::from(n));
        }
        let tier_family =
            |name: &str, help: &'static str| Family::new(name, help, MetricType::Gauge);
        let mut total = tier_family("stacktop_tier_nodes", "Nodes with the tier's role");
        let mut healthy = tier_family(
            "stacktop_tier_healthy_nodes",
            "Nodes of the tier whose health as its role is ok, warn or unknown",
        );
        let mut spof = tier_family(
            "stacktop_tier_spof",
            "1 when the tier has fewer than two healthy nodes: one failure takes it down",
        );
        let mut health = Family::new(
            "stacktop_tier_health",
            format!("The tier's health: {HEALTH_HELP}"),
            MetricType::Gauge,
        );
        let mut maintenance = tier_family(
            "stacktop_tier_in_maintenance",
            "1 while the tier is in maintenance (its alerts are held)",
        );
        for tier in &t.tiers {
            let set = vec![l("tier", tier.role().name())];
            total.gauge(set.clone(), f64::from(tier.total));
            healthy.gauge(set.clone(), f64::from(tier.healthy));
            spof.gauge(set.clone(), f64::from(u8::from(tier.spof)));
            health.gauge(set.clone(), health_value(tier.health()));
            maintenance.gauge(set, f64::from(u8::from(tier.in_maintenance)));
        }
        let mut site = Family::new(
            "stacktop_site_health",
            format!(
                "The request path user -> lb -> web -> app -> db, the worst of its tiers: {HEALTH_HELP}"
            ),
            MetricType::Gauge,
        );
        site.gauge(Vec::new(), health_value(t.site()));

        let alerts = alerts_family(&view.alerts);
        self.families.extend([
            nodes,
            total,
            healthy,
            spof,
            health,
            maintenance,
            site,
            alerts,
        ]);
    }

    fn own(&mut self, view: &FleetView, store: &Store, own: &CollectorState<'_>) {
        let mut info = Family::new(
            "stacktop_collector_info",
            "1, with the collector's version",
            MetricType::Gauge,
        );
        info.gauge(vec![l("version", VERSION)], 1.0);
        let mut agents = Family::new(
            "stacktop_collector_agents_connected",
            "Nodes whose agent has a stream open to this collector",
            MetricType::Gauge,
        );
        let connected = view.nodes().filter(|n| n.status.connected).count();
        agents.gauge(Vec::new(), connected as f64);
        let mut batches = Family::new(
            "stacktop_collector_batches",
            "Agent batches stored (a resent batch is not counted again)",
            MetricType::Counter,
        );
        batches.counter(Vec::new(), own.ingest.batches());
        let mut points = Family::new(
            "stacktop_collector_points",
            "Points stored from agent batches",
            MetricType::Counter,
        );
        points.counter(Vec::new(), own.ingest.points());
        let mut dropped_points = Family::new(
            "stacktop_collector_dropped_points",
            "Points ingest did not store, by reason: undefined (no such series id), non_finite, \
             out_of_range (beyond f32), negative (a ratio, byte count or counter), future, \
             too_old (before the history window), overlapping (a taken-over name's past), \
             series_limit (the node holds its most series)",
            MetricType::Counter,
        );
        let skipped = store.skipped();
        for (reason, n) in [
            ("undefined", skipped.undefined as u64),
            ("non_finite", skipped.non_finite as u64),
            ("out_of_range", skipped.out_of_range as u64),
            ("negative", skipped.negative as u64),
            ("future", skipped.future as u64),
            ("too_old", skipped.too_old as u64),
            ("overlapping", skipped.overlapping as u64),
            ("series_limit", own.ingest.series_limit()),
        ] {
            dropped_points.counter(vec![l("reason", reason)], n);
        }
        let mut refused_defs = Family::new(
            "stacktop_collector_refused_series_definitions",
            "Series definitions refused (a bad name or labels, over a stream's limit)",
            MetricType::Counter,
        );
        refused_defs.counter(Vec::new(), skipped.refused_defs as u64);
        let mut refused_batches = Family::new(
            "stacktop_collector_refused_batches",
            "Batches refused whole (too many points, too many a second); their stream ended",
            MetricType::Counter,
        );
        refused_batches.counter(Vec::new(), store.refused_batches());

        let counter = |name: &str, help: &'static str| Family::new(name, help, MetricType::Counter);
        let mut sent = counter(
            "stacktop_notifications_sent",
            "Notifications delivered, per sink",
        );
        let mut failed = counter(
            "stacktop_notifications_failed",
            "Notifications that could not be delivered after their retries, per sink",
        );
        let mut dropped = counter(
            "stacktop_notifications_dropped",
            "Notifications dropped because the sink's queue was full",
        );
        let mut queued = Family::new(
            "stacktop_notifications_queued",
            "Notifications waiting in the sink's queue",
            MetricType::Gauge,
        );
        for sink in &own.sinks {
            let set = vec![l("kind", sink.kind.clone()), l("sink", sink.name.clone())];
            sent.counter(set.clone(), sink.sent);
            failed.counter(set.clone(), sink.failed);
            dropped.counter(set.clone(), sink.dropped);
            queued.gauge(set, f64::from(sink.queued));
        }

        let mut pending = Family::new(
            "stacktop_remote_write_pending_samples",
            "Samples queued or in flight to the remote_write destination",
            MetricType::Gauge,
        );
        let mut rw_sent = counter(
            "stacktop_remote_write_sent_samples",
            "Samples the remote_write destination accepted",
        );
        let mut requests = counter(
            "stacktop_remote_write_requests",
            "Requests the remote_write destination accepted",
        );
        let mut attempts = counter(
            "stacktop_remote_write_failed_attempts",
            "Attempts that failed and were retried or given up (5xx, 429, timeouts, connection errors)",
        );
        let mut rw_dropped = counter(
            "stacktop_remote_write_dropped_samples",
            "Samples not sent, by reason: handoff_full, queue_full (the oldest make room), \
             rejected (a 4xx), retries_exhausted, shutdown",
        );
        for d in own.destinations {
            let set = vec![l("destination", d.name.clone())];
            pending.gauge(set.clone(), d.stats.pending() as f64);
            rw_sent.counter(set.clone(), d.stats.sent());
            requests.counter(set.clone(), d.stats.requests());
            attempts.counter(set.clone(), d.stats.failed_attempts());
            for reason in DropReason::ALL {
                let mut set = set.clone();
                set.push(l("reason", reason.name()));
                rw_dropped.counter(set, d.stats.dropped(reason));
            }
        }
        self.families.extend([
            info,
            agents,
            batches,
            points,
            dropped_points,
            refused_defs,
            refused_batches,
            sent,
            failed,
            dropped,
            queued,
            pending,
            rw_sent,
            requests,
            attempts,
            rw_dropped,
        ]);
    }

    /// Adds the number of series the store holds and their history's size.
    fn series_held(&mut self, held: Held) {
        for (name, help, value) in [
            (
                "stacktop_collector_series",
                "Series the collector holds in memory, over every known node",
                held.series,
            ),
            (
                "stacktop_collector_history_points",
                "Points of full-resolution history held in memory",
                held.points,
            ),
            (
                "stacktop_collector_history_bytes",
                "Heap bytes of the compressed full-resolution history (points / bytes = bytes per sample)",
                held.bytes,
            ),
        ] {
            let mut family = Family::new(name, help, MetricType::Gauge);
            family.gauge(Vec::new(), value as f64);
            self.families.push(family);
        }
    }

    /// The exposition in `format`.
    pub fn encode(self, format: Format) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Encoded(self)));
        let mut out = String::new();
        // Writing into a String cannot fail; our collector never returns
        // an error of its own.
        let result = match format {
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        };
        debug_assert!(result.is_ok(), "encoding into a String failed");
        out
    }
}

/// `stacktop_alerts`: 1 for every pending or firing alert.
fn alerts_family(active: &[Alert]) -> Family {
    let mut alerts = Family::new(
        "stacktop_alerts",
        "1 for every pending or firing alert (like Prometheus' ALERTS)",
        MetricType::Gauge,
    );
    for alert in active {
        let state = match alert.state() {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            _ => continue,
        };
        let mut set = vec![
            l("alertname", alert.rule.clone()),
            l("severity", severity_name(alert.severity())),
            l("state", state),
        ];
        if !alert.node.is_empty() {
            set.push(l(NODE, alert.node.clone()));
        }
        if alert.tier() != Role::Unspecified {
            set.push(l("tier", alert.tier().name()));
        }
        set.sort();
        alerts.gauge(set, 1.0);
    }
    alerts
}

/// `node` and `role` (when the node has roles).
fn node_labels(node: &str, role: &str) -> Labels {
    let mut set = vec![l(NODE, node)];
    if !role.is_empty() {
        set.push(l(ROLE, role));
    }
    set
}

fn info_labels(node: &NodeView, base: &Labels) -> Labels {
    let mut set = base.clone();
    set.push(l("agent_version", node.identity.agent_version.clone()));
    for label in &node.identity.labels {
        if label.value.is_empty() {
            continue;
        }
        let key = format!("label_{}", labels::label_name(&label.key));
        if !set.iter().any(|(k, _)| *k == key) {
            set.push((key, label.value.clone()));
        }
    }
    set.sort();
    set
}

/// The fresh series of one node: (metric name, labels, value), free of
/// duplicates (two series that name alike once made valid keep the
/// first).
fn node_series(
    node: &str,
    role: &str,
    latest: &[LatestValue],
    fresh: &Freshness,
) -> Vec<(String, Labels, f64)> {
    let mut out: Vec<(String, Labels, f64)> = latest
        .iter()
        .filter(|v| fresh.is_fresh(v.slot.is_log(), v.updated_ms))
        .filter(|v| !v.key.name.starts_with(labels::RESERVED_PREFIX))
        .map(|v| {
            (
                labels::metric_name(&v.key.name).into_owned(),
                labels::series_labels(node, role, &v.key),
                v.value,
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

/// The gathered families as prometheus-client's collector, so that its
/// encoders write them.
#[derive(Debug)]
struct Encoded(Exposition);

impl Collector for Encoded {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0.families {
            if family.samples.is_empty() {
                continue;
            }
            let mut metric =
                encoder.encode_descriptor(&family.name, &family.help, None, family.kind)?;
            for (set, value) in &family.samples {
                let sample = metric.encode_family(set)?;
                match *value {
                    // An untyped sample is written like a gauge's.
                    Value::Gauge(v) => ConstGauge::new(v).encode(sample)?,
                    Value::Counter(v) => ConstCounter::new(v).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

/// What the store holds, summed over nodes for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    series: usize,
    points: usize,
    bytes: usize,
}

impl Held {
    fn of(n: &crate::store::Node) -> Self {
        let (points, bytes) = n.history_footprint();
        Self {
            series: n.series_count(),
            points,
            bytes,
        }
    }

    fn add(&mut self, other: Self) {
        self.series += other.series;
        self.points += other.points;
        self.bytes += other.bytes;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use stacktop_proto::metrics as names;
    use stacktop_proto::v1::{CheckResult, Label};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::export::remote_write::WriteStats;
    use crate::fleet::Views;
    use crate::store::{Identity, NodeHandle, Reported, ResolvedPoint, SeriesKey};

    const NOW: i64 = 1_700_000_000_000;

    fn add(store: &Store, name: &str, roles: Vec<Role>, labels: Vec<Label>, at: i64) -> NodeHandle {
        let identity = Identity {
            name: name.into(),
            instance_id: format!("{name}-i"),
            roles,
            labels,
            agent_version: "0.1.0".into(),
            interval_ms: 1_000,
            ..Identity::default()
        };
        store
            .attach(identity, CancellationToken::new(), at)
            .unwrap()
            .handle
    }

    fn point(key: &SeriesKey, at: i64, value: f64) -> ResolvedPoint<'_> {
        ResolvedPoint {
            key,
            timestamp_ms: at,
            value,
        }
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

    /// A fleet at NOW: web1 (web+app, live, one stale value), db1 (down:
    /// silent for 10 s), both with values and checks.
    fn fleet() -> (Arc<Store>, Arc<FleetView>) {
        let store = Arc::new(Store::new(Duration::from_secs(600)));
        let views = Views::new(store.clone());
        let load = SeriesKey::new(names::LOAD1, &[]);
        let mem = SeriesKey::new(names::MEMORY_USED, &[]);
        let fs = SeriesKey::new(
            names::FILESYSTEM_USED,
            &[Label::new("mount", "/srv/\"q\"\\x\ny")],
        );
        let reserved = SeriesKey::new("stacktop_node_up", &[]);
        let clash = SeriesKey::new("weird-name", &[Label::new("node", "spoof")]);

        let web = add(
            &store,
            "web1",
            vec![Role::App, Role::Web],
            vec![Label::new("dc", "lab")],
            NOW - 10_000,
        );
        // Load arrived 10 s ago and never again: stale by now.
        store
            .apply(
                &web,
                1,
                &[point(&load, NOW - 10_000, 0.5)],
                Reported::default(),
                NOW - 10_000,
            )
            .unwrap();
        let fresh = [
            point(&mem, NOW - 100, 1024.0),
            point(&fs, NOW - 100, 2e9),
            point(&reserved, NOW - 100, 7.0),
            point(&clash, NOW - 100, 3.0),
        ];
        let checks = Reported {
            checks: vec![
                check("nginx", "nginx", Health::Ok),
                check("disk", "disk", Health::Crit),
            ],
            ..Default::default()
        };
        store.apply(&web, 2, &fresh, checks, NOW - 100).unwrap();

        let db = add(&store, "db1", vec![Role::Db], vec![], NOW - 10_000);
        let checks = Reported {
            checks: vec![check("mysql", "mysql", Health::Ok)],
            ..Default::default()
        };
        store
            .apply(
                &db,
                1,
                &[point(&load, NOW - 10_000, 4.0)],
                checks,
                NOW - 10_000,
            )
            .unwrap();
        let view = views.publish(NOW);
        (store, view)
    }

    fn render(format: Format) -> String {
        let (store, view) = fleet();
        let ingest = IngestStats::default();
        let stats = Arc::new(WriteStats::default());
        stats.dropped_handoff(3);
        let destinations = [Destination {
            name: "prom".into(),
            stats,
        }];
        let own = CollectorState {
            ingest: &ingest,
            sinks: vec![SinkStatus {
                name: "am".into(),
                kind: "alertmanager".into(),
                sent: 4,
                failed: 1,
                ..Default::default()
            }],
            destinations: &destinations,
        };
        Exposition::gather(&view, &store, &own, NOW).encode(format)
    }

    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .collect()
    }

    #[test]
    fn live_nodes_export_their_fresh_series_with_node_role_and_labels() {
        let text = render(Format::Text);
        assert_eq!(
            lines_of(&text, names::MEMORY_USED),
            [r#"node_memory_used_bytes{node="web1",role="web,app"} 1024.0"#]
        );
        // Label values escaped as the format wants: \" \\ \n.
        assert_eq!(
            lines_of(&text, names::FILESYSTEM_USED),
            [
                r#"node_filesystem_used_bytes{mount="/srv/\"q\"\\x\ny",node="web1",role="web,app"} 2000000000.0"#
            ]
        );
        // An invalid name fixed, a clashing label renamed.
        assert_eq!(
            lines_of(&text, "weird_name"),
            [r#"weird_name{exported_node="spoof",node="web1",role="web,app"} 3.0"#]
        );
        assert!(
            text.contains("# TYPE node_memory_used_bytes gauge\n"),
            "{text}"
        );
        assert!(text.contains("# HELP node_memory_used_bytes "), "{text}");
    }

    #[test]
    fn stale_values_and_down_nodes_are_left_out() {
        let text = render(Format::Text);
        // web1's load is 10 s old (3 intervals is the limit); db1 is down.
        assert!(lines_of(&text, names::LOAD1).is_empty(), "{text}");
        let db1_series = text.lines().any(|l| {
            !l.starts_with("stacktop_") && !l.starts_with('#') && l.contains("node=\"db1\"")
        });
        assert!(!db1_series, "{text}");
        assert_eq!(
            lines_of(&text, "stacktop_node_up"),
            [
                r#"stacktop_node_up{node="db1",role="db"} 0.0"#,
                r#"stacktop_node_up{node="web1",role="web,app"} 1.0"#,
            ]
        );
        assert_eq!(
            lines_of(&text, "stacktop_node_health"),
            [
                r#"stacktop_node_health{node="db1",role="db"} 4.0"#,
                r#"stacktop_node_health{node="web1",role="web,app"} 2.0"#,
            ]
        );
        // A down node's checks say nothing about now either.
        assert_eq!(
            lines_of(&text, "stacktop_check_status"),
            [
                r#"stacktop_check_status{check="disk",kind="disk",node="web1",role="web,app"} 2.0"#,
                r#"stacktop_check_status{check="nginx",kind="nginx",node="web1",role="web,app"} 0.0"#,
            ]
        );
        // An agent series may not pose as the collector's own.
        assert_eq!(lines_of(&text, "stacktop_node_up").len(), 2);
        assert!(!text.contains("} 7.0"), "{text}");
    }

    #[test]
    fn fleet_totals_tiers_site_and_the_collector() {
        let text = render(Format::Text);
        for line in [
            r#"stacktop_node_info{agent_version="0.1.0",label_dc="lab",node="web1",role="web,app"} 1.0"#,
            r#"stacktop_nodes{health="crit"} 1.0"#,
            r#"stacktop_nodes{health="down"} 1.0"#,
            r#"stacktop_tier_nodes{tier="db"} 1.0"#,
            r#"stacktop_tier_healthy_nodes{tier="db"} 0.0"#,
            r#"stacktop_tier_spof{tier="web"} 1.0"#,
            r#"stacktop_tier_health{tier="db"} 4.0"#,
            "stacktop_site_health 4.0",
            "stacktop_collector_series 6.0",
            "stacktop_collector_agents_connected 2.0",
            r#"stacktop_notifications_sent_total{kind="alertmanager",sink="am"} 4"#,
            r#"stacktop_notifications_failed_total{kind="alertmanager",sink="am"} 1"#,
            r#"stacktop_remote_write_dropped_samples_total{destination="prom",reason="handoff_full"} 3"#,
            r#"stacktop_remote_write_pending_samples{destination="prom"} 0.0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let last_seen = lines_of(&text, "stacktop_node_last_seen_timestamp_seconds");
        assert!(
            last_seen[1].ends_with(&format!(" {}.9", (NOW - 100) / 1_000)),
            "{last_seen:?}"
        );
    }

    #[test]
    fn openmetrics_when_asked_text_otherwise() {
        let text = render(Format::Text);
        let om = render(Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(!text.contains("# EOF"));
        // Counters: OpenMetrics names the family, 0.0.4 the sample.
        assert!(om.contains("# TYPE stacktop_collector_batches counter\n"));
        assert!(text.contains("# TYPE stacktop_collector_batches_total counter\n"));
        assert!(om.contains("stacktop_collector_batches_total 0\n"));
        assert!(text.contains("stacktop_collector_batches_total 0\n"));
        // The same samples either way.
        let samples = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(samples(&text), samples(&om));
    }

    #[test]
    fn accept_header_negotiation() {
        // What Prometheus 2.x sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;q=0.9, application/openmetrics-text; q=0.5"
            )),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(Format::OpenMetrics.content_type(), OPENMETRICS_CONTENT_TYPE);
        assert!(Format::Text.content_type().contains("version=0.0.4"));
    }

    #[test]
    fn alerts_like_prometheus_alerts() {
        use stacktop_proto::v1::Severity;
        let alert = |rule: &str, node: &str, tier: Role, state: AlertState| Alert {
            rule: rule.into(),
            node: node.into(),
            tier: tier as i32,
            severity: Severity::Critical as i32,
            state: state as i32,
            ..Default::default()
        };
        let family = alerts_family(&[
            alert("node-down", "db1", Role::Unspecified, AlertState::Firing),
            alert("tier-spof", "", Role::Web, AlertState::Pending),
            alert(
                "check-failed",
                "web1",
                Role::Unspecified,
                AlertState::Resolved,
            ),
        ]);
        let text = Exposition {
            families: vec![family],
        }
        .encode(Format::Text);
        assert_eq!(
            lines_of(&text, "stacktop_alerts"),
            [
                r#"stacktop_alerts{alertname="node-down",node="db1",severity="critical",state="firing"} 1.0"#,
                r#"stacktop_alerts{alertname="tier-spof",severity="critical",state="pending",tier="web"} 1.0"#,
            ]
        );
    }
}
