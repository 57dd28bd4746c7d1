//! What the screens and `stacktop status` read out of one [`NodeState`]:
//! its DB role and replication lag, request rates by status class and
//! latency quantiles per log source, a one-word summary of its checks, and
//! how many of its HAProxy backend servers are UP.
//!
//! These are lookups and counts over what the collector sent, nothing more:
//! health is never decided here.

use std::collections::BTreeMap;

use stacktop_proto::Health;
use stacktop_proto::v1::{BackendServer, CheckResult, NodeState, SeriesValue};

/// The fact naming a DB node's role (`primary` or `replica`).
pub const DB_ROLE: &str = "db_role";
/// Seconds the replica is behind its primary.
pub const REPLICATION_LAG: &str = "mysql_replication_lag_seconds";
/// Request rates by `source` and `class`.
pub const HTTP_REQUESTS: &str = "http_requests_per_second";
/// Latency quantiles by `source` and `quantile`.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// The status classes shown, in order.
pub const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];
/// The latency quantiles shown, in order, as the agent labels them.
pub const QUANTILES: [&str; 3] = ["0.5", "0.95", "0.99"];

/// The value of fact `key`, if the node reported it.
pub fn fact<'a>(node: &'a NodeState, key: &str) -> Option<&'a str> {
    node.facts
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.as_str())
        .filter(|v| !v.is_empty())
}

/// The node's DB role (`primary`, `replica`) from its facts.
pub fn db_role(node: &NodeState) -> Option<&str> {
    fact(node, DB_ROLE)
}

fn label<'a>(value: &'a SeriesValue, key: &str) -> Option<&'a str> {
    value
        .labels
        .iter()
        .find(|l| l.key == key)
        .map(|l| l.value.as_str())
}

/// The replication lag in seconds, from the latest values.
pub fn replication_lag(node: &NodeState) -> Option<f64> {
    node.latest
        .iter()
        .filter(|v| v.name == REPLICATION_LAG)
        .max_by_key(|v| v.timestamp_ms)
        .map(|v| v.value)
        .filter(|v| v.is_finite())
}

/// One access-log source's latest second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceTraffic {
    /// The `source` label (the log's name in the agent's config).
    pub source: String,
    /// Requests per second for 2xx, 3xx, 4xx, 5xx ([`CLASSES`]).
    pub classes: [Option<f64>; 4],
    /// Every class together, including `other`.
    pub total: Option<f64>,
    /// p50, p95, p99 latency in seconds ([`QUANTILES`]).
    pub latency: [Option<f64>; 3],
}

/// Request rates and latency per log source, sorted by source.
pub fn traffic(node: &NodeState) -> Vec<SourceTraffic> {
    let mut by_source: BTreeMap<&str, SourceTraffic> = BTreeMap::new();
    for v in &node.latest {
        let is_rate = v.name == HTTP_REQUESTS;
        if !is_rate && v.name != HTTP_DURATION {
            continue;
        }
        let source = label(v, "source").unwrap_or("");
        let entry = by_source.entry(source).or_insert_with(|| SourceTraffic {
            source: source.to_string(),
            ..Default::default()
        });
        if is_rate {
            *entry.total.get_or_insert(0.0) += v.value;
            let class = label(v, "class").unwrap_or("");
            if let Some(i) = CLASSES.iter().position(|c| *c == class) {
                *entry.classes[i].get_or_insert(0.0) += v.value;
            }
        } else if let Some(i) = label(v, "quantile").and_then(quantile_index) {
            entry.latency[i] = Some(v.value);
        }
    }
    by_source.into_values().collect()
}

fn quantile_index(q: &str) -> Option<usize> {
    let q: f64 = q.parse().ok()?;
    QUANTILES
        .iter()
        .position(|w| w.parse::<f64>().is_ok_and(|w| (w - q).abs() < 1e-9))
}

/// The node's checks in one short phrase: `3/3 ok`, or the name of the
/// worst failing check (`+N` when more than one fails), with the worst
/// status. `None` when the node has no checks.
pub fn checks_summary(checks: &[CheckResult]) -> Option<(String, Health)> {
    if checks.is_empty() {
        return None;
    }
    let failing = failing_checks(checks);
    let ok = checks.len() - failing.len();
    match failing.first() {
        None => Some((format!("{ok}/{} ok", checks.len()), Health::Ok)),
        Some(worst) if failing.len() == 1 => Some((worst.name.clone(), worst.status())),
        Some(worst) => Some((
            format!("{} +{}", worst.name, failing.len() - 1),
            worst.status(),
        )),
    }
}

/// How bad a status is, for ordering: crit > warn > unknown > ok.
pub fn severity(h: Health) -> u8 {
    match h {
        Health::Ok => 0,
        Health::Unknown | Health::Unspecified => 1,
        Health::Warn => 2,
        Health::Crit => 3,
        Health::Down => 4,
    }
}

/// The checks that are not ok, worst first.
pub fn failing_checks(checks: &[CheckResult]) -> Vec<&CheckResult> {
    let mut failing: Vec<&CheckResult> =
        checks.iter().filter(|c| c.status() != Health::Ok).collect();
    failing.sort_by_key(|c| std::cmp::Reverse(severity(c.status())));
    failing
}

/// What a backend server's HAProxy status word means for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// UP (including "UP 1/3" while going down).
    Up,
    /// DOWN (including "DOWN 1/2" while coming up) or no check.
    Down,
    /// MAINT, DRAIN, NOLB: taken out on purpose.
    Out,
    /// Anything else.
    Other,
}

/// Classifies HAProxy's status word.
pub fn server_state(status: &str) -> ServerState {
    let word = status
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match word.as_str() {
        "UP" | "OPEN" => ServerState::Up,
        "DOWN" => ServerState::Down,
        "DRAIN" | "NOLB" => ServerState::Out,
        w if w.starts_with("MAINT") => ServerState::Out,
        _ => ServerState::Other,
    }
}

/// `(up, total)` over the node's backend servers; `None` without any.
pub fn backends_up(backends: &[BackendServer]) -> Option<(usize, usize)> {
    if backends.is_empty() {
        return None;
    }
    let up = backends
        .iter()
        .filter(|b| server_state(&b.status) == ServerState::Up)
        .count();
    Some((up, backends.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Label;

    fn value(name: &str, labels: &[(&str, &str)], v: f64) -> SeriesValue {
        SeriesValue {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            value: v,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn traffic_groups_classes_and_quantiles_by_source() {
        let node = NodeState {
            latest: vec![
                value(
                    HTTP_REQUESTS,
                    &[("source", "nginx"), ("class", "2xx")],
                    90.0,
                ),
                value(HTTP_REQUESTS, &[("source", "nginx"), ("class", "5xx")], 2.0),
                value(
                    HTTP_REQUESTS,
                    &[("source", "nginx"), ("class", "other")],
                    1.0,
                ),
                value(
                    HTTP_DURATION,
                    &[("source", "nginx"), ("quantile", "0.95")],
                    0.2,
                ),
                value(HTTP_REQUESTS, &[("source", "api"), ("class", "2xx")], 5.0),
                value("node_load1", &[], 1.0),
            ],
            ..Default::default()
        };
        let t = traffic(&node);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].source, "api");
        let nginx = &t[1];
        assert_eq!(nginx.classes, [Some(90.0), None, None, Some(2.0)]);
        assert_eq!(nginx.total, Some(93.0));
        assert_eq!(nginx.latency, [None, Some(0.2), None]);
    }

    #[test]
    fn checks_summarise_to_a_count_or_the_worst_failure() {
        let check = |name: &str, h: Health| CheckResult {
            name: name.into(),
            status: h as i32,
            ..Default::default()
        };
        assert_eq!(checks_summary(&[]), None);
        let mut checks = vec![check("a", Health::Ok), check("b", Health::Ok)];
        assert_eq!(checks_summary(&checks), Some(("2/2 ok".into(), Health::Ok)));
        checks.push(check("disk", Health::Warn));
        assert_eq!(checks_summary(&checks), Some(("disk".into(), Health::Warn)));
        checks.push(check("mysql", Health::Crit));
        assert_eq!(
            checks_summary(&checks),
            Some(("mysql +1".into(), Health::Crit))
        );
    }

    #[test]
    fn haproxy_status_words_are_classified() {
        assert_eq!(server_state("UP"), ServerState::Up);
        assert_eq!(server_state("UP 1/3"), ServerState::Up);
        assert_eq!(server_state("DOWN"), ServerState::Down);
        assert_eq!(server_state("DOWN 1/2"), ServerState::Down);
        assert_eq!(server_state("MAINT"), ServerState::Out);
        assert_eq!(server_state("MAINT (via web/web1)"), ServerState::Out);
        assert_eq!(server_state("DRAIN"), ServerState::Out);
        assert_eq!(server_state("NOLB"), ServerState::Out);
        assert_eq!(server_state("no check"), ServerState::Other);
    }
}
