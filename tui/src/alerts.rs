//! The alert list as every reader shows it, and `stacktop alerts`.
//!
//! # Layout
//!
//! - [`ordered`]: the order of the alerts view, the detail screen and the
//!   CLI alike: firing first, then pending, then recently resolved (worst
//!   severity, then the oldest first, within each), with alerts grouped
//!   under a root (the alert's `root`, or a root's `grouped` list) right
//!   under it, one level deep.
//! - Words and symbols: [`severity_symbol`] (`✖` critical, `▲` warning;
//!   a colour is never the only sign), [`severity_word`], [`state_word`],
//!   [`target`] (the node, or `web tier`), [`marks`] (acknowledged by
//!   whom, silenced, in maintenance).
//! - `stacktop alerts`: [`to_json`] (a stable interface: add keys, never
//!   rename them), [`to_table`] and [`exit_code`].
//!
//! Nothing here decides whether an alert fires: that is the collector's
//! answer, shown as it was sent.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use stacktop_proto::Role;
use stacktop_proto::v1::{Alert, AlertState, AlertsResponse, Severity};

use crate::format;
use crate::operator;

/// Exit code of `stacktop alerts` when nothing fires.
pub const EXIT_OK: u8 = 0;
/// Exit code of `stacktop alerts` when at least one alert fires.
pub const EXIT_FIRING: u8 = 1;
/// Exit code when the collector cannot be reached or answers with an error.
pub const EXIT_UNREACHABLE: u8 = 2;

/// One line of an alert list: which alert, and whether it sits under a
/// root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRow {
    /// Index into the slice given to [`ordered`].
    pub index: usize,
    /// Shown indented under the root above it.
    pub grouped: bool,
    /// The last one grouped under its root (drawn `└`, the others `├`).
    pub last: bool,
}

/// Firing first, then pending, resolved, anything else.
fn state_rank(state: AlertState) -> u8 {
    match state {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Resolved => 2,
        AlertState::Inactive | AlertState::Unspecified => 3,
    }
}

fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 0,
        Severity::Warning => 1,
        Severity::Unspecified => 2,
    }
}

/// The rows of `alerts` in the order every reader shows them (see the
/// module docs).
pub fn ordered(alerts: &[Alert]) -> Vec<AlertRow> {
    ordered_from(alerts, &[])
}

/// [`ordered`] for the alerts of several collectors listed together:
/// `sources[i]` is the collector of `alerts[i]` (missing: the first). An
/// alert is grouped only under a root from its own collector (the same
/// alert has the same id at every collector), and equal alerts go in
/// collector order.
pub fn ordered_from(alerts: &[Alert], sources: &[u16]) -> Vec<AlertRow> {
    let source = |i: usize| sources.get(i).copied().unwrap_or(0);
    let by_id: HashMap<(u16, &str), usize> = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| ((source(i), a.id.as_str()), i))
        .collect();
    // Who each alert is grouped under, if that alert is in the list.
    let mut parent: Vec<Option<usize>> = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            by_id
                .get(&(source(i), a.root.as_str()))
                .copied()
                .filter(|&p| p != i)
        })
        .collect();
    for (p, alert) in alerts.iter().enumerate() {
        for id in &alert.grouped {
            if let Some(&child) = by_id.get(&(source(p), id.as_str()))
                && child != p
                && parent[child].is_none()
            {
                parent[child] = Some(p);
            }
        }
    }
    // One level deep: an alert under a grouped alert stands alone.
    let parent: Vec<Option<usize>> = parent
        .iter()
        .map(|p| p.filter(|&p| parent[p].is_none()))
        .collect();
    let key = |&i: &usize| {
        let a = &alerts[i];
        (
            state_rank(a.state()),
            severity_rank(a.severity()),
            a.since_ms,
            a.id.clone(),
            source(i),
        )
    };
    let mut roots: Vec<usize> = (0..alerts.len()).filter(|&i| parent[i].is_none()).collect();
    roots.sort_by_key(key);
    let mut rows = Vec::with_capacity(alerts.len());
    for root in roots {
        rows.push(AlertRow {
            index: root,
            grouped: false,
            last: false,
        });
        let mut children: Vec<usize> = (0..alerts.len())
            .filter(|&i| parent[i] == Some(root))
            .collect();
        children.sort_by_key(key);
        let n = children.len();
        rows.extend(children.into_iter().enumerate().map(|(k, index)| AlertRow {
            index,
            grouped: true,
            last: k + 1 == n,
        }));
    }
    rows
}

/// `✖` critical, `▲` warning, `?` unspecified.
pub fn severity_symbol(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "✖",
        Severity::Warning => "▲",
        Severity::Unspecified => "?",
    }
}

/// `critical`, `warning` (`unknown` when unspecified), as JSON says it.
pub fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Unspecified => "unknown",
    }
}

/// `crit`, `warn`: the short form for narrow columns.
pub fn severity_short(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "crit",
        Severity::Warning => "warn",
        Severity::Unspecified => "?",
    }
}

/// `pending`, `firing`, `resolved` (`inactive`, `unknown`).
pub fn state_word(state: AlertState) -> &'static str {
    match state {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
        AlertState::Inactive => "inactive",
        AlertState::Unspecified => "unknown",
    }
}

/// What the alert is about: its node, else `web tier`, else `site`.
pub fn target(alert: &Alert) -> String {
    if !alert.node.is_empty() {
        alert.node.clone()
    } else if alert.tier() != Role::Unspecified {
        format!("{} tier", alert.tier())
    } else {
        "site".to_string()
    }
}

/// What was done about it: `acked by ann@ws`, `silenced`, `maint`.
pub fn marks(alert: &Alert) -> Vec<String> {
    let mut marks = Vec::new();
    if alert.acknowledged {
        if alert.acknowledged_by.is_empty() {
            marks.push("acked".to_string());
        } else {
            marks.push(format!("acked by {}", alert.acknowledged_by));
        }
    }
    if alert.silenced {
        marks.push("silenced".to_string());
    }
    if alert.in_maintenance {
        marks.push("maint".to_string());
    }
    marks
}

/// How long it has been in its state at `now_ms`, e.g. `3m12s`.
pub fn age(alert: &Alert, now_ms: i64) -> String {
    if alert.since_ms <= 0 {
        return format::UNKNOWN.to_string();
    }
    format::elapsed((now_ms - alert.since_ms) / 1000)
}

/// Whether any alert fires.
pub fn any_firing(alerts: &[Alert]) -> bool {
    alerts.iter().any(|a| a.state() == AlertState::Firing)
}

/// `stacktop alerts --json`: `{"alerts": [...]}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertsReport {
    /// Every alert, in the order of [`ordered`].
    pub alerts: Vec<AlertReport>,
}

/// One alert in [`AlertsReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertReport {
    /// Stable for the rule and its labels.
    pub id: String,
    /// The rule's name.
    pub rule: String,
    /// The node it is about; empty for a tier or site alert.
    pub node: String,
    /// `critical | warning`.
    pub severity: &'static str,
    /// `pending | firing | resolved`.
    pub state: &'static str,
    /// When it entered its state (Unix ms).
    pub since_unix_ms: i64,
    /// The rule's summary, filled in.
    pub summary: String,
    /// Its labels, name -> value.
    pub labels: BTreeMap<String, String>,
    /// Someone acknowledged it.
    pub acknowledged: bool,
    /// A silence matches it.
    pub silenced: bool,
    /// The id of the alert it is grouped under; `null` for a root or a
    /// lone alert.
    pub root: Option<String>,
}

impl From<&Alert> for AlertReport {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id.clone(),
            rule: a.rule.clone(),
            node: a.node.clone(),
            severity: severity_word(a.severity()),
            state: state_word(a.state()),
            since_unix_ms: a.since_ms,
            summary: a.summary.clone(),
            labels: a
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            acknowledged: a.acknowledged,
            silenced: a.silenced,
            root: Some(a.root.clone()).filter(|r| !r.is_empty()),
        }
    }
}

/// `alerts` as pretty JSON ([`AlertsReport`]), with a trailing newline.
pub fn to_json(alerts: &[Alert]) -> String {
    let report = AlertsReport {
        alerts: ordered(alerts)
            .iter()
            .map(|r| AlertReport::from(&alerts[r.index]))
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report)
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    text.push('\n');
    text
}

/// The answer of Fleet.Alerts as a table for people, ages at `now_ms`;
/// then the silences and maintenance windows that have not ended, with
/// their ids (for `stacktop unsilence` and `maintenance --end`).
pub fn to_table(response: &AlertsResponse, now_ms: i64) -> String {
    let mut out = String::new();
    let alerts = &response.alerts;
    let rows = ordered(alerts);
    if rows.is_empty() {
        out.push_str("no alerts\n");
    } else {
        let width = |f: &dyn Fn(&Alert) -> usize, min: usize| {
            alerts.iter().map(f).max().unwrap_or(0).clamp(min, 40)
        };
        let target_w = width(&|a| target(a).chars().count(), 4);
        let rule_w = width(&|a| a.rule.chars().count(), 4);
        // Grouped alerts are indented by two under their root.
        let sev_w = if rows.iter().any(|r| r.grouped) { 8 } else { 6 };
        let _ = writeln!(
            out,
            "  {:<sev_w$} {:<8} {:>6}  {:<target_w$}  {:<rule_w$}  SUMMARY",
            "SEV", "STATE", "AGE", "NODE", "RULE"
        );
        for row in rows {
            let a = &alerts[row.index];
            let tree = match (row.grouped, row.last) {
                (false, _) => "",
                (true, false) => "├ ",
                (true, true) => "└ ",
            };
            let marks = marks(a);
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("  [{}]", marks.join(", "))
            };
            let sev = format!(
                "{}{} {}",
                tree,
                severity_symbol(a.severity()),
                severity_short(a.severity())
            );
            let _ = writeln!(
                out,
                "  {:<sev_w$} {:<8} {:>6}  {:<target_w$}  {:<rule_w$}  {}{marks}",
                sev,
                state_word(a.state()),
                age(a, now_ms),
                format::fit_left(&target(a), target_w),
                format::fit_left(&a.rule, rule_w),
                a.summary,
            );
        }
    }
    for s in &response.silences {
        let until = if s.until_resolved {
            "until the alerts resolve".to_string()
        } else {
            format!("ends in {}", format::elapsed((s.ends_ms - now_ms) / 1000))
        };
        let _ = writeln!(
            out,
            "silence {}: {} {until} (by {})",
            s.id,
            operator::matchers_text(&s.matchers),
            or_unknown(&s.created_by)
        );
    }
    for m in &response.maintenance {
        let what = if m.node.is_empty() {
            format!("{} tier", m.tier())
        } else {
            format!("node {}", m.node)
        };
        let _ = writeln!(
            out,
            "maintenance {}: {what} ends in {} (by {})",
            m.id,
            format::elapsed((m.ends_ms - now_ms) / 1000),
            or_unknown(&m.created_by)
        );
    }
    out
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { format::UNKNOWN } else { s }
}

/// [`EXIT_FIRING`] when an alert fires, else [`EXIT_OK`].
pub fn exit_code(alerts: &[Alert]) -> u8 {
    if any_firing(alerts) {
        EXIT_FIRING
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Label;

    fn alert(id: &str, state: AlertState, severity: Severity, since: i64) -> Alert {
        Alert {
            id: id.into(),
            rule: "check-failed".into(),
            node: "web1".into(),
            state: state as i32,
            severity: severity as i32,
            since_ms: since,
            ..Default::default()
        }
    }

    fn ids(alerts: &[Alert]) -> Vec<(String, bool)> {
        ordered(alerts)
            .iter()
            .map(|r| (alerts[r.index].id.clone(), r.grouped))
            .collect()
    }

    #[test]
    fn firing_first_then_pending_then_resolved() {
        let alerts = vec![
            alert("resolved", AlertState::Resolved, Severity::Critical, 1),
            alert("pending", AlertState::Pending, Severity::Critical, 1),
            alert("warn", AlertState::Firing, Severity::Warning, 1),
            alert("crit-new", AlertState::Firing, Severity::Critical, 5),
            alert("crit-old", AlertState::Firing, Severity::Critical, 2),
        ];
        let order: Vec<String> = ids(&alerts).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            order,
            ["crit-old", "crit-new", "warn", "pending", "resolved"]
        );
    }

    #[test]
    fn grouped_alerts_sit_under_their_root() {
        let mut root = alert("lb", AlertState::Firing, Severity::Critical, 9);
        root.grouped = vec!["web2".into()];
        let mut web1 = alert("web1", AlertState::Firing, Severity::Critical, 1);
        web1.root = "lb".into();
        let web2 = alert("web2", AlertState::Firing, Severity::Warning, 1);
        let lone = alert("lone", AlertState::Firing, Severity::Critical, 5);
        // A root that is not in the list: its alert stands alone.
        let mut orphan = alert("orphan", AlertState::Pending, Severity::Warning, 1);
        orphan.root = "gone".into();
        let alerts = vec![web1, web2, lone, root, orphan];
        assert_eq!(
            ids(&alerts),
            [
                ("lone".to_string(), false),
                ("lb".to_string(), false),
                ("web1".to_string(), true),
                ("web2".to_string(), true),
                ("orphan".to_string(), false),
            ]
        );
        let rows = ordered(&alerts);
        assert!(!rows[2].last && rows[3].last);
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let mut a = alert("a1", AlertState::Firing, Severity::Critical, 1_000);
        a.labels = vec![Label::new("check", "tcp:5432")];
        a.summary = "tcp:5432 refused".into();
        a.acknowledged = true;
        let mut b = alert("b1", AlertState::Pending, Severity::Warning, 2_000);
        b.root = "a1".into();
        b.node = String::new();
        b.tier = Role::Web as i32;
        let json: serde_json::Value = serde_json::from_str(&to_json(&[b, a])).unwrap();
        let first = json["alerts"][0].as_object().unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "acknowledged",
                "id",
                "labels",
                "node",
                "root",
                "rule",
                "severity",
                "silenced",
                "since_unix_ms",
                "state",
                "summary"
            ]
        );
        assert_eq!(first["severity"], "critical");
        assert_eq!(first["state"], "firing");
        assert_eq!(first["labels"]["check"], "tcp:5432");
        assert!(first["root"].is_null());
        let second = &json["alerts"][1];
        assert_eq!(second["root"], "a1");
        assert_eq!(second["state"], "pending");
        assert_eq!(second["severity"], "warning");
        assert_eq!(second["node"], "");
    }

    #[test]
    fn exit_code_is_one_only_when_something_fires() {
        let pending = alert("p", AlertState::Pending, Severity::Critical, 1);
        let resolved = alert("r", AlertState::Resolved, Severity::Critical, 1);
        assert_eq!(exit_code(&[]), EXIT_OK);
        assert_eq!(exit_code(&[pending.clone(), resolved]), EXIT_OK);
        let firing = alert("f", AlertState::Firing, Severity::Warning, 1);
        assert_eq!(exit_code(&[pending, firing]), EXIT_FIRING);
    }

    #[test]
    fn the_table_marks_what_was_done_and_lists_silences() {
        let mut a = alert("a1", AlertState::Firing, Severity::Critical, 1_000);
        a.acknowledged = true;
        a.acknowledged_by = "ann@ws".into();
        a.silenced = true;
        a.summary = "tcp:5432 refused".into();
        let response = AlertsResponse {
            alerts: vec![a],
            silences: vec![stacktop_proto::v1::Silence {
                id: "s1".into(),
                matchers: vec![operator::parse_matcher("node=web1").unwrap()],
                ends_ms: 3_601_000,
                created_by: "ann@ws".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let table = to_table(&response, 193_000);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[1],
            "  ✖ crit firing    3m12s  web1  check-failed  tcp:5432 refused  [acked by ann@ws, silenced]",
            "{table}"
        );
        assert_eq!(
            lines[2], "silence s1: node=web1 ends in 56m48s (by ann@ws)",
            "{table}"
        );
        assert_eq!(to_table(&AlertsResponse::default(), 0), "no alerts\n");
    }
}
