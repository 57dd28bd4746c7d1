//! `stacktop status`: the fleet once, as a table for people or JSON for
//! scripts, with an exit code that says whether the stack is fit: 1 when a
//! node is down or the site is crit or down (the level is chosen with
//! `--fail-on`, [`FailOn`]), 2 when the collector cannot be asked.
//!
//! It reads the same [`Model`] as the dashboard, built from one
//! Fleet.Snapshot, and shows the collector's numbers only: node counts,
//! tiers, site and traffic from its totals, values from its summaries
//! (`null` when it has none, as for a down node), stale checks and
//! backends marked stale.
//!
//! The JSON key names ([`StatusReport`] and friends) are a stable interface:
//! scripts and tests rely on them. Add keys, never rename them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use stacktop_proto::metrics::{ServerState, server_state};
use stacktop_proto::v1::{FleetTotals, NodeState};
use stacktop_proto::{Health, Role};

use crate::format;
use crate::model::{Model, SourceId};
use crate::view;

/// Exit code when nothing is as bad as `--fail-on` says.
pub const EXIT_OK: u8 = 0;
/// Exit code when a node is down, or the site is as bad as `--fail-on`
/// says (crit or down by default).
pub const EXIT_NODE_DOWN: u8 = 1;
/// Exit code when the collector cannot be reached or answers with an error.
pub const EXIT_UNREACHABLE: u8 = 2;

/// When `stacktop status` exits 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A node is down, or the site is down.
    Down,
    /// A node is down, or the site is crit or down.
    #[default]
    Crit,
    /// A node is down, or the site is warn, crit or down.
    Warn,
    /// Never (still 2 when the collector cannot be asked).
    Never,
}

impl FailOn {
    /// The least site health that fails; `None`: nothing fails.
    fn threshold(self) -> Option<Health> {
        match self {
            FailOn::Down => Some(Health::Down),
            FailOn::Crit => Some(Health::Crit),
            FailOn::Warn => Some(Health::Warn),
            FailOn::Never => None,
        }
    }
}

/// The whole fleet, as `stacktop status --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    /// Every node, sorted by name.
    pub nodes: Vec<NodeReport>,
    /// One entry per role that has nodes, as the collector reported them.
    pub tiers: Vec<TierReport>,
    /// Site health: `ok | warn | crit | unknown | down`.
    pub site: &'static str,
    /// Collector clock at the snapshot (Unix ms).
    pub timestamp_ms: i64,
    /// The collector's version.
    pub collector_version: String,
    /// The web tier's request rate over the LB tier's; `null` while either
    /// is unknown or the LB's is 0.
    pub web_lb_request_ratio: Option<f64>,
    /// Requests per second over the LB tier (access logs); `null` when
    /// unknown.
    pub lb_requests_per_second: Option<f64>,
    /// Requests per second over the web tier (access logs); `null` when
    /// unknown.
    pub web_requests_per_second: Option<f64>,
    /// End of the traffic window compared (Unix ms, exclusive); `null`
    /// when unknown.
    pub traffic_window_end_unix_ms: Option<i64>,
    /// Length of the traffic window in seconds; `null` when unknown.
    pub traffic_window_seconds: Option<u32>,
    /// Nodes the collector knows; `null` when it sent no totals.
    pub nodes_total: Option<u32>,
    /// Nodes whose health is ok.
    pub nodes_ok: Option<u32>,
    /// Nodes whose health is warn.
    pub nodes_warn: Option<u32>,
    /// Nodes whose health is crit.
    pub nodes_crit: Option<u32>,
    /// Nodes whose health is unknown.
    pub nodes_unknown: Option<u32>,
    /// Nodes that are down.
    pub nodes_down: Option<u32>,
}

/// One node in [`StatusReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Role names: `lb`, `web`, `app`, `db`; empty when unassigned.
    pub roles: Vec<&'static str>,
    /// Whether the roles were detected rather than configured.
    pub roles_detected: bool,
    /// Health as the collector decided it.
    pub health: &'static str,
    /// Health per role (`{"web": "crit", "app": "ok"}`): what tier health
    /// counts.
    pub role_health: BTreeMap<&'static str, &'static str>,
    /// Whether the agent's stream is open right now.
    pub connected: bool,
    /// Last time anything arrived from the agent (Unix ms; 0: never).
    pub last_seen_unix_ms: i64,
    /// Agent version.
    pub agent_version: String,
    /// Sampling interval of the agent (ms).
    pub interval_ms: u32,
    /// Address the agent connected from.
    pub peer: String,
    /// The node's labels.
    pub labels: BTreeMap<String, String>,
    /// When the values below were sampled (Unix ms); `null` when unknown.
    pub summary_unix_ms: Option<i64>,
    /// CPU usage, 0..1; `null` when unknown or stale (a down node's).
    pub cpu_usage_ratio: Option<f64>,
    /// Memory used, 0..1; `null` when unknown.
    pub memory_used_ratio: Option<f64>,
    /// Memory used in bytes.
    pub memory_used_bytes: Option<f64>,
    /// Memory installed in bytes.
    pub memory_total_bytes: Option<f64>,
    /// 1-minute load average.
    pub load1: Option<f64>,
    /// 5-minute load average.
    pub load5: Option<f64>,
    /// 15-minute load average.
    pub load15: Option<f64>,
    /// Received bytes per second over non-loopback devices.
    pub network_receive_bytes_per_second: Option<f64>,
    /// Transmitted bytes per second over non-loopback devices.
    pub network_transmit_bytes_per_second: Option<f64>,
    /// Requests per second from the access logs.
    pub qps: Option<f64>,
    /// The log second `qps` describes (Unix ms of its start); `null` when
    /// unknown.
    pub qps_unix_ms: Option<i64>,
    /// Seconds since boot.
    pub uptime_seconds: Option<f64>,
    /// Swap in use, bytes.
    pub swap_used_bytes: Option<f64>,
    /// Swap configured, bytes.
    pub swap_total_bytes: Option<f64>,
    /// Disk reads over all devices, bytes per second.
    pub disk_read_bytes_per_second: Option<f64>,
    /// Disk writes over all devices, bytes per second.
    pub disk_written_bytes_per_second: Option<f64>,
    /// A replica's lag behind its primary, in seconds.
    pub replication_lag_seconds: Option<f64>,
    /// Latest check results.
    pub checks: Vec<CheckReport>,
    /// The node's HAProxy backend servers (LB nodes; empty otherwise).
    pub backends: Vec<BackendReport>,
    /// The backends are the last known sample; their states are unknown.
    pub backends_stale: bool,
    /// Backend servers UP; `null` while stale or without any.
    pub backends_up: Option<u32>,
    /// Why the backends are unknown, when the agent said; `null` otherwise.
    pub backends_error: Option<String>,
    /// When the backends were sampled (Unix ms); `null` when never.
    pub backends_unix_ms: Option<i64>,
    /// Slow-changing state the agent reported, e.g. `db_role`.
    pub facts: BTreeMap<String, String>,
    /// `primary | replica` for a DB node that reported it; `null` otherwise.
    pub db_role: Option<String>,
}

/// One HAProxy backend server in [`NodeReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackendReport {
    /// The backend (HAProxy `pxname`).
    pub backend: String,
    /// The server within it (HAProxy `svname`).
    pub server: String,
    /// HAProxy's status word: `UP`, `DOWN`, `MAINT`, `DRAIN`, `NOLB`, ...;
    /// `null` while the backends are stale.
    pub status: Option<String>,
    /// The status word of the last sample, stale or not.
    pub last_status: String,
    /// A backup server (used only when no active one is UP).
    pub backup: bool,
    /// Current sessions; `null` when HAProxy gave none or stale.
    pub current_sessions: Option<f64>,
    /// Requests per second; `null` when HAProxy gave none or stale.
    pub request_rate: Option<f64>,
    /// Last health check result, e.g. `L7OK`, `L4CON`; `null` when stale.
    pub check_status: Option<String>,
    /// Human text of the last health check (may be empty); `null` when
    /// stale.
    pub check_description: Option<String>,
}

/// One check in [`NodeReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckReport {
    /// The check's name, e.g. `http:/health`.
    pub name: String,
    /// The kind of probe, e.g. `http`.
    pub kind: String,
    /// `ok | warn | crit | unknown` (`unknown` when stale).
    pub status: &'static str,
    /// No fresh result: the node is down or the check stopped reporting.
    pub stale: bool,
    /// What the last result said when stale; `null` otherwise.
    pub last_status: Option<&'static str>,
    /// The role the check speaks for (`lb | web | app | db`); `null` for
    /// node-wide checks.
    pub role: Option<&'static str>,
    /// Human-readable outcome (of the last result when stale).
    pub message: String,
    /// How long the probe took.
    pub latency_seconds: f64,
    /// When the probe finished (Unix ms).
    pub timestamp_ms: i64,
}

/// One tier in [`StatusReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TierReport {
    /// `lb | web | app | db`.
    pub role: &'static str,
    /// Healthy nodes in the tier.
    pub healthy: u32,
    /// All nodes in the tier.
    pub total: u32,
    /// Fewer than two healthy nodes.
    pub spof: bool,
    /// The tier's health.
    pub health: &'static str,
}

/// A Unix ms timestamp, `None` for 0 (unknown).
fn known_ms(ms: i64) -> Option<i64> {
    (ms > 0).then_some(ms)
}

impl From<&NodeState> for NodeReport {
    fn from(node: &NodeState) -> Self {
        let s = view::summary(node);
        let backends = view::backends(node);
        let stale_backends = backends.is_some_and(|b| b.stale) || node.backends_stale;
        let fresh = |v: Option<f64>| if stale_backends { None } else { v };
        let fresh_text = |v: &str| (!stale_backends).then(|| v.to_string());
        Self {
            name: node.name.clone(),
            roles: node.roles().map(|r| r.name()).collect(),
            roles_detected: node.roles_detected,
            health: node.health().name(),
            role_health: node
                .role_health
                .iter()
                .map(|r| (r.role().name(), r.health().name()))
                .collect(),
            connected: node.connected,
            last_seen_unix_ms: node.last_seen_ms,
            agent_version: node.agent_version.clone(),
            interval_ms: node.interval_ms,
            peer: node.peer.clone(),
            labels: node
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            summary_unix_ms: known_ms(s.timestamp_ms),
            cpu_usage_ratio: s.cpu_usage_ratio,
            memory_used_ratio: s.memory_used_ratio,
            memory_used_bytes: s.memory_used_bytes,
            memory_total_bytes: s.memory_total_bytes,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            network_receive_bytes_per_second: s.network_receive_bytes_per_second,
            network_transmit_bytes_per_second: s.network_transmit_bytes_per_second,
            qps: s.qps,
            qps_unix_ms: known_ms(s.qps_timestamp_ms),
            uptime_seconds: s.uptime_seconds,
            swap_used_bytes: s.swap_used_bytes,
            swap_total_bytes: s.swap_total_bytes,
            disk_read_bytes_per_second: s.disk_read_bytes_per_second,
            disk_written_bytes_per_second: s.disk_written_bytes_per_second,
            replication_lag_seconds: view::replication_lag(node),
            checks: node
                .checks
                .iter()
                .map(|c| CheckReport {
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                    status: c.status().name(),
                    stale: c.stale,
                    last_status: c.stale.then(|| c.last_status().name()),
                    role: Some(c.role())
                        .filter(|r| *r != Role::Unspecified)
                        .map(Role::name),
                    message: c.message.clone(),
                    latency_seconds: c.latency_seconds,
                    timestamp_ms: c.timestamp_ms,
                })
                .collect(),
            backends: node
                .backends
                .iter()
                .map(|b| BackendReport {
                    backend: b.backend.clone(),
                    server: b.server.clone(),
                    status: fresh_text(&b.status),
                    last_status: b.status.clone(),
                    backup: b.backup,
                    current_sessions: fresh(b.current_sessions),
                    request_rate: fresh(b.request_rate),
                    check_status: fresh_text(&b.check_status),
                    check_description: fresh_text(&b.check_description),
                })
                .collect(),
            backends_stale: stale_backends,
            backends_up: backends.and_then(|b| b.up),
            backends_error: Some(node.backends_error.clone()).filter(|e| !e.is_empty()),
            backends_unix_ms: known_ms(node.backends_timestamp_ms),
            facts: node
                .facts
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            db_role: view::db_role(node).map(str::to_string),
        }
    }
}

impl From<&Model> for StatusReport {
    fn from(model: &Model) -> Self {
        let no_totals = FleetTotals::default();
        let has_totals = model.totals().is_some();
        let totals = model.totals().unwrap_or(&no_totals);
        let traffic = totals.traffic.unwrap_or_default();
        let count = |n: u32| has_totals.then_some(n);
        Self {
            nodes: model.nodes().map(|(_, n)| NodeReport::from(n)).collect(),
            tiers: totals
                .tiers
                .iter()
                .map(|t| TierReport {
                    role: t.role().name(),
                    healthy: t.healthy,
                    total: t.total,
                    spof: t.spof,
                    health: t.health().name(),
                })
                .collect(),
            site: totals.site().name(),
            timestamp_ms: totals.timestamp_ms,
            collector_version: totals.collector_version.clone(),
            web_lb_request_ratio: traffic.web_lb_request_ratio,
            lb_requests_per_second: traffic.lb_requests_per_second,
            web_requests_per_second: traffic.web_requests_per_second,
            traffic_window_end_unix_ms: known_ms(traffic.window_end_ms),
            traffic_window_seconds: Some(traffic.window_seconds).filter(|s| *s > 0),
            nodes_total: count(totals.nodes_total),
            nodes_ok: count(totals.nodes_ok),
            nodes_warn: count(totals.nodes_warn),
            nodes_crit: count(totals.nodes_crit),
            nodes_unknown: count(totals.nodes_unknown),
            nodes_down: count(totals.nodes_down),
        }
    }
}

/// The exit code for `model` at level `fail_on`: [`EXIT_NODE_DOWN`] when
/// any node is down or the site's health is at least the level's,
/// [`EXIT_OK`] otherwise (always with [`FailOn::Never`]).
pub fn exit_code(model: &Model, fail_on: FailOn) -> u8 {
    let Some(threshold) = fail_on.threshold() else {
        return EXIT_OK;
    };
    let totals = model.totals();
    let node_down = totals.is_some_and(|t| t.nodes_down > 0)
        || model.nodes().any(|(_, n)| n.health() == Health::Down);
    let site = totals.map_or(Health::Unknown, FleetTotals::site);
    if node_down || site.severity() >= threshold.severity() {
        EXIT_NODE_DOWN
    } else {
        EXIT_OK
    }
}

/// `model` as pretty JSON ([`StatusReport`]), with a trailing newline.
pub fn to_json(model: &Model) -> String {
    let mut text = serde_json::to_string_pretty(&StatusReport::from(model))
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    text.push('\n');
    text
}

/// `model` as a table for people, grouped by tier like the dashboard, with
/// "last seen" relative to the collector's clock at the snapshot (or
/// `now_ms` when it sent none). Every node is listed once, under its first
/// tier; the ROLE column names all its roles (a DB node's primary/replica
/// too); an LB's backend servers that are not UP (or that they
/// are unknown), and every check that is not ok, are listed on indented
/// lines under the node.
pub fn to_table(model: &Model, now_ms: i64) -> String {
    let mut out = String::new();
    let totals = model.totals();
    let now_ms = totals
        .map(|t| t.timestamp_ms)
        .filter(|t| *t > 0)
        .unwrap_or(now_ms);
    let version = totals
        .map(|t| t.collector_version.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or(format::UNKNOWN);
    let counts = match totals {
        Some(t) if t.nodes_down > 0 => format!("{} nodes, {} down", t.nodes_total, t.nodes_down),
        Some(t) => format!("{} nodes", t.nodes_total),
        None => format!("{} nodes", model.len()),
    };
    let site = totals.map_or(Health::Unknown, FleetTotals::site);
    let _ = writeln!(
        out,
        "site {}  ({counts}, collector {version})",
        site.name().to_uppercase(),
    );
    if let Some(line) = totals.and_then(traffic_line) {
        let _ = writeln!(out, "{line}");
    }
    let name_width = model
        .nodes()
        .map(|(_, n)| n.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let role_width = model
        .nodes()
        .map(|(_, n)| roles_text(n).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 24);
    let _ = writeln!(
        out,
        "{:<10} {:<name_width$} {:<role_width$} {:<7} {:>6} {:>6} {:>6} {:>7} {:>9}",
        "TIER", "NAME", "ROLE", "HEALTH", "CPU", "MEM", "LOAD", "QPS", "SEEN"
    );
    // A node with several roles is listed once, under its first tier in
    // request-path order, with every role in the ROLE column.
    let mut listed = std::collections::HashSet::new();
    for (tier, keys) in model.tier_groups() {
        let title = match model.tier(SourceId::PRIMARY, tier) {
            Some(t) if t.spof => format!("{} SPOF", tier.tier_title()),
            _ => tier.tier_title().to_string(),
        };
        for key in keys {
            let Some(node) = model.node(key) else {
                continue;
            };
            if !listed.insert(key) {
                continue;
            }
            let s = view::summary(node);
            let _ = writeln!(
                out,
                "{:<10} {:<name_width$} {:<role_width$} {:<7} {:>6} {:>6} {:>6} {:>7} {:>9}",
                title,
                format::fit_left(&node.name, name_width).trim_end(),
                format::fit_left(&roles_text(node), role_width).trim_end(),
                node.health().name(),
                format::percent(s.cpu_usage_ratio),
                format::percent(s.memory_used_ratio),
                format::load(s.load1),
                format::rate(s.qps),
                format::seen(node.last_seen_ms, now_ms),
            );
            for line in node_notes(node) {
                let _ = writeln!(out, "{:<10} {line}", "");
            }
        }
    }
    out
}

/// The ROLE cell: every role of the node (`web,app`), a DB node's role
/// after `db` (`db:replica`), `-` without any.
pub fn roles_text(node: &NodeState) -> String {
    let roles: Vec<String> = node
        .roles()
        .filter(|r| *r != Role::Unspecified)
        .map(|r| match (r, view::db_role(node)) {
            (Role::Db, Some(db)) => format!("db:{db}"),
            _ => r.name().to_string(),
        })
        .collect();
    if roles.is_empty() {
        "-".to_string()
    } else {
        roles.join(",")
    }
}

/// The web/LB traffic line of the table, when anything about it is known.
fn traffic_line(totals: &FleetTotals) -> Option<String> {
    let t = totals.traffic.as_ref()?;
    if t.lb_requests_per_second.is_none() && t.web_requests_per_second.is_none() {
        return None;
    }
    let ratio = t
        .web_lb_request_ratio
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| format::UNKNOWN.to_string());
    Some(format!(
        "traffic  LB {} req/s  web {} req/s  web/LB {ratio}",
        format::rate(t.lb_requests_per_second),
        format::rate(t.web_requests_per_second),
    ))
}

/// Indented lines under a node: replication lag, backends not UP (or
/// unknown), checks that are not ok, stale checks.
fn node_notes(node: &NodeState) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(lag) = view::replication_lag(node) {
        notes.push(format!("  replication lag {lag:.0} s"));
    }
    if let Some(b) = view::backends(node) {
        let mut line = format!("  backends {}", b.text());
        if b.stale {
            let why = if node.backends_error.is_empty() {
                "last sample"
            } else {
                node.backends_error.as_str()
            };
            let _ = write!(line, ", states unknown ({why})");
        } else {
            for b in node
                .backends
                .iter()
                .filter(|b| server_state(&b.status) != ServerState::Up)
            {
                let backup = if b.backup { " (backup)" } else { "" };
                let _ = write!(line, ", {}/{}{backup} {}", b.backend, b.server, b.status);
            }
        }
        notes.push(line);
    }
    let failing = view::failing_checks(&node.checks);
    let stale = view::stale_checks(&node.checks);
    let name_w = failing
        .iter()
        .chain(&stale)
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for c in failing {
        notes.push(format!(
            "  {:<7} {:<name_w$}  {}",
            c.status().name(),
            c.name,
            c.message
        ));
    }
    for c in stale {
        notes.push(format!(
            "  {:<7} {:<name_w$}  last {}: {}",
            "stale",
            c.name,
            c.last_status().name(),
            c.message
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Role;
    use stacktop_proto::v1::{
        BackendServer, CheckResult, FleetSnapshot, Label, NodeSummary, RoleHealth, TierState,
        Traffic,
    };

    fn fleet() -> FleetSnapshot {
        FleetSnapshot {
            nodes: vec![
                NodeState {
                    name: "db1".into(),
                    roles: vec![Role::Db as i32],
                    health: Health::Down as i32,
                    last_seen_ms: 1_000,
                    facts: vec![Label::new("db_role", "replica")],
                    checks: vec![CheckResult {
                        name: "mysql:replication".into(),
                        kind: "mysql".into(),
                        status: Health::Crit as i32,
                        message: "SQL thread stopped".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                NodeState {
                    name: "web1".into(),
                    roles: vec![Role::Web as i32],
                    health: Health::Ok as i32,
                    connected: true,
                    last_seen_ms: 9_000,
                    summary: Some(NodeSummary {
                        cpu_usage_ratio: Some(0.5),
                        qps: Some(12.0),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            totals: Some(FleetTotals {
                tiers: vec![TierState {
                    role: Role::Db as i32,
                    healthy: 0,
                    total: 1,
                    spof: true,
                    health: Health::Down as i32,
                    ..Default::default()
                }],
                site: Health::Down as i32,
                timestamp_ms: 10_000,
                collector_version: "0.1.0".into(),
                nodes_total: 2,
                nodes_ok: 1,
                nodes_down: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn model(snapshot: FleetSnapshot) -> Model {
        Model::from_snapshot("http://test", snapshot)
    }

    fn totals(f: &mut FleetSnapshot) -> &mut FleetTotals {
        f.totals.as_mut().unwrap()
    }

    #[test]
    fn json_keeps_its_key_names_and_nulls_unknowns() {
        let json: serde_json::Value = serde_json::from_str(&to_json(&model(fleet()))).unwrap();
        assert_eq!(json["site"], "down");
        let db = &json["nodes"][0];
        assert_eq!(db["name"], "db1");
        assert_eq!(db["roles"][0], "db");
        assert_eq!(db["health"], "down");
        assert!(db["cpu_usage_ratio"].is_null());
        assert_eq!(db["connected"], false);
        assert_eq!(db["last_seen_unix_ms"], 1_000);
        assert_eq!(json["nodes"][1]["cpu_usage_ratio"], 0.5);
        assert_eq!(json["tiers"][0]["role"], "db");
        assert_eq!(json["tiers"][0]["spof"], true);
        assert!(json["web_lb_request_ratio"].is_null());
        assert!(json["lb_requests_per_second"].is_null());
        assert!(json["web_requests_per_second"].is_null());
        assert_eq!(db["db_role"], "replica");
        assert_eq!(db["facts"]["db_role"], "replica");
        assert_eq!(db["backends"], serde_json::json!([]));
        let web = &json["nodes"][1];
        assert!(web["db_role"].is_null());
        assert_eq!(web["facts"], serde_json::json!({}));
    }

    #[test]
    fn json_carries_backends_and_the_traffic_ratio() {
        let mut f = fleet();
        totals(&mut f).traffic = Some(Traffic {
            web_lb_request_ratio: Some(0.98),
            lb_requests_per_second: Some(100.0),
            web_requests_per_second: Some(98.0),
            ..Default::default()
        });
        f.nodes[1].backends = vec![BackendServer {
            backend: "web".into(),
            server: "web3".into(),
            status: "DOWN".into(),
            backup: true,
            current_sessions: Some(0.0),
            request_rate: None,
            check_status: "L4CON".into(),
            check_description: String::new(),
            ..Default::default()
        }];
        f.nodes[1].backends_up = Some(0);
        let f = model(f);
        let json: serde_json::Value = serde_json::from_str(&to_json(&f)).unwrap();
        assert_eq!(json["web_lb_request_ratio"], 0.98);
        assert_eq!(json["lb_requests_per_second"], 100.0);
        let b = &json["nodes"][1]["backends"][0];
        assert_eq!(b["backend"], "web");
        assert_eq!(b["server"], "web3");
        assert_eq!(b["status"], "DOWN");
        assert_eq!(b["backup"], true);
        assert_eq!(b["current_sessions"], 0.0);
        assert!(b["request_rate"].is_null());
        assert_eq!(b["check_status"], "L4CON");
        let table = to_table(&f, 10_000);
        assert!(table.contains("web/LB 0.98"), "{table}");
        assert!(
            table.contains("backends 0/1 UP, web/web3 (backup) DOWN"),
            "{table}"
        );
    }

    #[test]
    fn json_adds_role_health_ages_staleness_and_totals() {
        let mut f = fleet();
        {
            let t = totals(&mut f);
            t.traffic = Some(Traffic {
                window_end_ms: 9_000,
                window_seconds: 10,
                ..Default::default()
            });
        }
        let web = &mut f.nodes[1];
        web.roles.push(Role::App as i32);
        web.role_health = vec![
            RoleHealth {
                role: Role::Web as i32,
                health: Health::Crit as i32,
            },
            RoleHealth {
                role: Role::App as i32,
                health: Health::Ok as i32,
            },
        ];
        if let Some(s) = web.summary.as_mut() {
            s.timestamp_ms = 8_500;
            s.qps_timestamp_ms = 8_000;
        }
        web.checks = vec![CheckResult {
            name: "nginx".into(),
            kind: "nginx".into(),
            role: Role::Web as i32,
            status: Health::Unknown as i32,
            stale: true,
            last_status: Health::Crit as i32,
            ..Default::default()
        }];
        web.backends = vec![BackendServer {
            backend: "web".into(),
            server: "web1".into(),
            status: "UP".into(),
            current_sessions: Some(3.0),
            check_status: "L7OK".into(),
            ..Default::default()
        }];
        web.backends_stale = true;
        web.backends_error = "stats socket: connection refused".into();
        web.backends_timestamp_ms = 4_000;
        let json: serde_json::Value = serde_json::from_str(&to_json(&model(f))).unwrap();
        assert_eq!(json["nodes_total"], 2);
        assert_eq!(json["nodes_ok"], 1);
        assert_eq!(json["nodes_down"], 1);
        assert_eq!(json["nodes_crit"], 0);
        assert_eq!(json["traffic_window_end_unix_ms"], 9_000);
        assert_eq!(json["traffic_window_seconds"], 10);
        let db = &json["nodes"][0];
        assert!(db["summary_unix_ms"].is_null());
        assert_eq!(db["role_health"], serde_json::json!({}));
        assert_eq!(db["checks"][0]["stale"], false);
        assert!(db["checks"][0]["role"].is_null());
        let web = &json["nodes"][1];
        assert_eq!(
            web["role_health"],
            serde_json::json!({"web": "crit", "app": "ok"})
        );
        assert_eq!(web["summary_unix_ms"], 8_500);
        assert_eq!(web["qps_unix_ms"], 8_000);
        let check = &web["checks"][0];
        assert_eq!(check["status"], "unknown");
        assert_eq!(check["stale"], true);
        assert_eq!(check["last_status"], "crit");
        assert_eq!(check["role"], "web");
        assert_eq!(web["backends_stale"], true);
        assert!(web["backends_up"].is_null());
        assert_eq!(web["backends_error"], "stats socket: connection refused");
        assert_eq!(web["backends_unix_ms"], 4_000);
        let b = &web["backends"][0];
        assert!(b["status"].is_null(), "a stale state is not current: {b}");
        assert_eq!(b["last_status"], "UP");
        assert!(b["current_sessions"].is_null());
        assert!(b["check_status"].is_null());
    }

    #[test]
    fn a_down_nodes_values_are_null_whatever_was_sent() {
        let mut f = fleet();
        f.nodes[0].summary = Some(NodeSummary {
            cpu_usage_ratio: Some(0.3),
            ..Default::default()
        });
        let json: serde_json::Value = serde_json::from_str(&to_json(&model(f))).unwrap();
        assert!(json["nodes"][0]["cpu_usage_ratio"].is_null());
    }

    #[test]
    fn a_down_node_makes_exit_code_one() {
        let mut f = fleet();
        assert_eq!(
            exit_code(&model(f.clone()), FailOn::default()),
            EXIT_NODE_DOWN
        );
        f.nodes.remove(0);
        // Without db1 the collector has no DB tier and nothing down.
        let t = totals(&mut f);
        t.tiers.clear();
        t.site = Health::Ok as i32;
        t.nodes_down = 0;
        t.nodes_total = 1;
        assert_eq!(exit_code(&model(f), FailOn::default()), EXIT_OK);
    }

    /// A fleet of one healthy node whose site the collector judged `site`.
    fn site(site: Health) -> Model {
        let mut f = fleet();
        f.nodes.remove(0);
        let t = totals(&mut f);
        t.site = site as i32;
        t.nodes_down = 0;
        model(f)
    }

    #[test]
    fn the_site_crit_or_down_makes_exit_code_one() {
        assert_eq!(exit_code(&site(Health::Ok), FailOn::Crit), EXIT_OK);
        assert_eq!(exit_code(&site(Health::Warn), FailOn::Crit), EXIT_OK);
        assert_eq!(exit_code(&site(Health::Unknown), FailOn::Crit), EXIT_OK);
        assert_eq!(exit_code(&site(Health::Crit), FailOn::Crit), EXIT_NODE_DOWN);
        assert_eq!(exit_code(&site(Health::Down), FailOn::Crit), EXIT_NODE_DOWN);
    }

    #[test]
    fn fail_on_chooses_the_level() {
        assert_eq!(exit_code(&site(Health::Crit), FailOn::Down), EXIT_OK);
        assert_eq!(exit_code(&site(Health::Down), FailOn::Down), EXIT_NODE_DOWN);
        assert_eq!(exit_code(&site(Health::Warn), FailOn::Warn), EXIT_NODE_DOWN);
        assert_eq!(exit_code(&site(Health::Ok), FailOn::Warn), EXIT_OK);
        assert_eq!(exit_code(&site(Health::Down), FailOn::Never), EXIT_OK);
        // A down node fails every level but `never`, whatever the site.
        let mut f = fleet();
        totals(&mut f).site = Health::Ok as i32;
        let down = model(f);
        assert_eq!(exit_code(&down, FailOn::Down), EXIT_NODE_DOWN);
        assert_eq!(exit_code(&down, FailOn::Never), EXIT_OK);
    }

    #[test]
    fn table_lists_nodes_by_tier() {
        let table = to_table(&model(fleet()), 10_000);
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[0].starts_with("site DOWN"), "{table}");
        assert!(lines[2].starts_with("Web"), "{table}");
        assert!(lines[3].starts_with("DB SPOF"), "{table}");
        assert!(lines[3].contains("9s ago"), "{table}");
        assert!(lines[3].contains(" db:replica "), "{table}");
        assert!(
            lines[4].contains("crit    mysql:replication  SQL thread stopped"),
            "{table}"
        );
    }

    #[test]
    fn table_lists_a_dual_role_node_once_with_both_roles() {
        let mut f = fleet();
        f.nodes[1].roles = vec![Role::Web as i32, Role::App as i32];
        let table = to_table(&model(f), 10_000);
        let rows: Vec<_> = table.lines().filter(|l| l.contains("web1")).collect();
        assert_eq!(rows.len(), 1, "{table}");
        assert!(rows[0].starts_with("Web"), "{table}");
        assert!(rows[0].contains(" web,app "), "{table}");
    }

    #[test]
    fn table_says_stale_things_are_stale() {
        let mut f = fleet();
        let web = &mut f.nodes[1];
        web.backends = vec![BackendServer::default(); 3];
        web.backends_stale = true;
        web.backends_error = "no stats".into();
        web.checks = vec![CheckResult {
            name: "nginx".into(),
            status: Health::Unknown as i32,
            stale: true,
            last_status: Health::Ok as i32,
            message: "running".into(),
            ..Default::default()
        }];
        let table = to_table(&model(f), 10_000);
        assert!(
            table.contains("backends ?/3 UP, states unknown (no stats)"),
            "{table}"
        );
        assert!(table.contains("stale   nginx  last ok: running"), "{table}");
        assert!(
            table.contains("(2 nodes, 1 down, collector 0.1.0)"),
            "{table}"
        );
    }
}
