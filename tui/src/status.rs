//! `stacktop status`: the fleet once, as a table for people or JSON for
//! scripts, with an exit code that says whether any node is down.
//!
//! The JSON key names ([`StatusReport`] and friends) are a stable interface:
//! scripts and tests rely on them. Add keys, never rename them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use stacktop_proto::Health;
use stacktop_proto::v1::{FleetSnapshot, NodeState};

use crate::app::tier_groups;
use crate::format;
use crate::view;

/// Exit code when no node is down.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one node is down.
pub const EXIT_NODE_DOWN: u8 = 1;
/// Exit code when the collector cannot be reached or answers with an error.
pub const EXIT_UNREACHABLE: u8 = 2;

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
    /// CPU usage, 0..1; `null` when unknown.
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
    /// Seconds since boot.
    pub uptime_seconds: Option<f64>,
    /// Latest check results.
    pub checks: Vec<CheckReport>,
    /// The node's HAProxy backend servers (LB nodes; empty otherwise).
    pub backends: Vec<BackendReport>,
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
    /// HAProxy's status word: `UP`, `DOWN`, `MAINT`, `DRAIN`, `NOLB`, ...
    pub status: String,
    /// A backup server (used only when no active one is UP).
    pub backup: bool,
    /// Current sessions; `null` when HAProxy gave none.
    pub current_sessions: Option<f64>,
    /// Requests per second; `null` when HAProxy gave none.
    pub request_rate: Option<f64>,
    /// Last health check result, e.g. `L7OK`, `L4CON`.
    pub check_status: String,
    /// Human text of the last health check (may be empty).
    pub check_description: String,
}

/// One check in [`NodeReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckReport {
    /// The check's name, e.g. `http:/health`.
    pub name: String,
    /// The kind of probe, e.g. `http`.
    pub kind: String,
    /// `ok | warn | crit | unknown`.
    pub status: &'static str,
    /// Human-readable outcome.
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

impl From<&NodeState> for NodeReport {
    fn from(node: &NodeState) -> Self {
        let s = node.summary.unwrap_or_default();
        Self {
            name: node.name.clone(),
            roles: node.roles().map(|r| r.name()).collect(),
            roles_detected: node.roles_detected,
            health: node.health().name(),
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
            uptime_seconds: s.uptime_seconds,
            checks: node
                .checks
                .iter()
                .map(|c| CheckReport {
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                    status: c.status().name(),
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
                    status: b.status.clone(),
                    backup: b.backup,
                    current_sessions: b.current_sessions,
                    request_rate: b.request_rate,
                    check_status: b.check_status.clone(),
                    check_description: b.check_description.clone(),
                })
                .collect(),
            facts: node
                .facts
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            db_role: view::db_role(node).map(str::to_string),
        }
    }
}

impl From<&FleetSnapshot> for StatusReport {
    fn from(fleet: &FleetSnapshot) -> Self {
        Self {
            nodes: fleet.nodes.iter().map(NodeReport::from).collect(),
            tiers: fleet
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
            site: fleet.site().name(),
            timestamp_ms: fleet.timestamp_ms,
            collector_version: fleet.collector_version.clone(),
            web_lb_request_ratio: fleet.web_lb_request_ratio,
            lb_requests_per_second: fleet.lb_requests_per_second,
            web_requests_per_second: fleet.web_requests_per_second,
        }
    }
}

/// The exit code for `fleet`: [`EXIT_NODE_DOWN`] when any node is down.
pub fn exit_code(fleet: &FleetSnapshot) -> u8 {
    if fleet.nodes.iter().any(|n| n.health() == Health::Down) {
        EXIT_NODE_DOWN
    } else {
        EXIT_OK
    }
}

/// `fleet` as pretty JSON ([`StatusReport`]), with a trailing newline.
pub fn to_json(fleet: &FleetSnapshot) -> String {
    let mut text = serde_json::to_string_pretty(&StatusReport::from(fleet))
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    text.push('\n');
    text
}

/// `fleet` as a table for people, grouped by tier like the dashboard, with
/// "last seen" relative to `now_ms`. A DB node's role (primary/replica)
/// shows in the ROLE column; an LB's backend servers that are not UP, and
/// every check that is not ok, are listed on indented lines under the node.
pub fn to_table(fleet: &FleetSnapshot, now_ms: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "site {}  ({} nodes, collector {})",
        fleet.site().name().to_uppercase(),
        fleet.nodes.len(),
        if fleet.collector_version.is_empty() {
            format::UNKNOWN
        } else {
            &fleet.collector_version
        }
    );
    if let Some(line) = traffic_line(fleet) {
        let _ = writeln!(out, "{line}");
    }
    let name_width = fleet
        .nodes
        .iter()
        .map(|n| n.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let _ = writeln!(
        out,
        "{:<10} {:<name_width$} {:<7} {:<7} {:>6} {:>6} {:>6} {:>7} {:>9}",
        "TIER", "NAME", "ROLE", "HEALTH", "CPU", "MEM", "LOAD", "QPS", "SEEN"
    );
    // A node with several roles is listed under each; its notes once.
    let mut noted = vec![false; fleet.nodes.len()];
    for (tier, nodes) in tier_groups(fleet) {
        let title = match fleet.tiers.iter().find(|t| t.role() == tier) {
            Some(t) if t.spof => format!("{} SPOF", tier.tier_title()),
            _ => tier.tier_title().to_string(),
        };
        for i in nodes {
            let node = &fleet.nodes[i];
            let s = node.summary.unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<10} {:<name_width$} {:<7} {:<7} {:>6} {:>6} {:>6} {:>7} {:>9}",
                title,
                format::fit_left(&node.name, name_width).trim_end(),
                format::fit_left(view::db_role(node).unwrap_or(""), 7).trim_end(),
                node.health().name(),
                format::percent(s.cpu_usage_ratio),
                format::percent(s.memory_used_ratio),
                format::load(s.load1),
                format::rate(s.qps),
                format::seen(node.last_seen_ms, now_ms),
            );
            if std::mem::replace(&mut noted[i], true) {
                continue;
            }
            for line in node_notes(node) {
                let _ = writeln!(out, "{:<10} {line}", "");
            }
        }
    }
    out
}

/// The web/LB traffic line of the table, when anything about it is known.
fn traffic_line(fleet: &FleetSnapshot) -> Option<String> {
    if fleet.lb_requests_per_second.is_none() && fleet.web_requests_per_second.is_none() {
        return None;
    }
    let ratio = fleet
        .web_lb_request_ratio
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| format::UNKNOWN.to_string());
    Some(format!(
        "traffic  LB {} req/s  web {} req/s  web/LB {ratio}",
        format::rate(fleet.lb_requests_per_second),
        format::rate(fleet.web_requests_per_second),
    ))
}

/// Indented lines under a node: replication lag, backends not UP, checks
/// that are not ok.
fn node_notes(node: &NodeState) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(lag) = view::replication_lag(node) {
        notes.push(format!("  replication lag {lag:.0} s"));
    }
    if let Some((up, total)) = view::backends_up(&node.backends) {
        let mut line = format!("  backends {up}/{total} UP");
        for b in node
            .backends
            .iter()
            .filter(|b| view::server_state(&b.status) != view::ServerState::Up)
        {
            let backup = if b.backup { " (backup)" } else { "" };
            let _ = write!(line, ", {}/{}{backup} {}", b.backend, b.server, b.status);
        }
        notes.push(line);
    }
    let failing = view::failing_checks(&node.checks);
    let name_w = failing
        .iter()
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
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Role;
    use stacktop_proto::v1::{BackendServer, CheckResult, Label, NodeSummary, TierState};

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
            tiers: vec![TierState {
                role: Role::Db as i32,
                healthy: 0,
                total: 1,
                spof: true,
                health: Health::Down as i32,
            }],
            site: Health::Down as i32,
            timestamp_ms: 10_000,
            collector_version: "0.1.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn json_keeps_its_key_names_and_nulls_unknowns() {
        let json: serde_json::Value = serde_json::from_str(&to_json(&fleet())).unwrap();
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
        f.web_lb_request_ratio = Some(0.98);
        f.lb_requests_per_second = Some(100.0);
        f.web_requests_per_second = Some(98.0);
        f.nodes[1].backends = vec![BackendServer {
            backend: "web".into(),
            server: "web3".into(),
            status: "DOWN".into(),
            backup: true,
            current_sessions: Some(0.0),
            request_rate: None,
            check_status: "L4CON".into(),
            check_description: String::new(),
        }];
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
    fn a_down_node_makes_exit_code_one() {
        let mut f = fleet();
        assert_eq!(exit_code(&f), EXIT_NODE_DOWN);
        f.nodes.remove(0);
        assert_eq!(exit_code(&f), EXIT_OK);
    }

    #[test]
    fn table_lists_nodes_by_tier() {
        let table = to_table(&fleet(), 10_000);
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[0].starts_with("site DOWN"), "{table}");
        assert!(lines[2].starts_with("Web"), "{table}");
        assert!(lines[3].starts_with("DB SPOF"), "{table}");
        assert!(lines[3].contains("9s ago"), "{table}");
        assert!(lines[3].contains(" replica "), "{table}");
        assert!(
            lines[4].contains("crit    mysql:replication  SQL thread stopped"),
            "{table}"
        );
    }
}
