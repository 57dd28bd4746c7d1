//! What the screens and `stacktop status` read out of one [`NodeState`]:
//! its DB role, its replication lag, the values to show as current, a
//! one-phrase summary of its checks, and its HAProxy backends UP.
//!
//! These are lookups over what the collector sent, nothing more: health,
//! staleness, the UP count and every ratio are decided by the collector,
//! and a value it did not send is shown as unknown, never re-derived here.

use stacktop_proto::v1::{CheckResult, NodeState, NodeSummary};
use stacktop_proto::{Health, metrics};

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
    fact(node, metrics::FACT_DB_ROLE)
}

/// The values to show as the node's current ones: the collector's fresh
/// summary, and none at all for a down node (whatever was sent, a silent
/// node has no current values).
pub fn summary(node: &NodeState) -> NodeSummary {
    if node.health() == Health::Down {
        NodeSummary::default()
    } else {
        node.summary.unwrap_or_default()
    }
}

/// The replica's lag behind its primary, as the collector summarised it.
pub fn replication_lag(node: &NodeState) -> Option<f64> {
    summary(node)
        .replication_lag_seconds
        .filter(|v| v.is_finite())
}

/// The node's checks in one short phrase: `3/3 ok`, or the name of the
/// worst failing check (`+N` when more than one fails), with the worst
/// status; `N stale` when nothing fails but some results are stale (a
/// stale check is not ok). `None` when the node has no checks.
pub fn checks_summary(checks: &[CheckResult]) -> Option<(String, Health)> {
    if checks.is_empty() {
        return None;
    }
    let failing = failing_checks(checks);
    let stale = checks.iter().filter(|c| c.stale).count();
    let ok = checks.len() - failing.len() - stale;
    match failing.first() {
        None if stale > 0 => Some((format!("{stale} stale"), Health::Unknown)),
        None => Some((format!("{ok}/{} ok", checks.len()), Health::Ok)),
        Some(worst) if failing.len() == 1 => Some((worst.name.clone(), worst.status())),
        Some(worst) => Some((
            format!("{} +{}", worst.name, failing.len() - 1),
            worst.status(),
        )),
    }
}

/// The fresh checks that are not ok, worst first (stale ones are listed
/// apart: they say nothing about now).
pub fn failing_checks(checks: &[CheckResult]) -> Vec<&CheckResult> {
    let mut failing: Vec<&CheckResult> = checks
        .iter()
        .filter(|c| !c.stale && c.status() != Health::Ok)
        .collect();
    failing.sort_by_key(|c| std::cmp::Reverse(c.status().severity()));
    failing
}

/// The checks whose results are stale.
pub fn stale_checks(checks: &[CheckResult]) -> Vec<&CheckResult> {
    checks.iter().filter(|c| c.stale).collect()
}

/// An LB's backend servers as the collector counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    /// Servers UP; `None` while their states are unknown (stale).
    pub up: Option<u32>,
    /// Servers in the last sample.
    pub total: usize,
    /// The sample is the last known one, not the current state.
    pub stale: bool,
}

impl Backends {
    /// `3/4 UP`, or `?/4 UP` while unknown.
    pub fn text(&self) -> String {
        match self.up {
            Some(up) => format!("{up}/{} UP", self.total),
            None => format!("?/{} UP", self.total),
        }
    }

    /// Whether every server is UP (only when known).
    pub fn all_up(&self) -> bool {
        self.up.is_some_and(|up| up as usize == self.total)
    }

    /// Whether no server is UP (only when known).
    pub fn none_up(&self) -> bool {
        self.up == Some(0)
    }
}

/// The node's backend servers, `None` without any. A down node's, or
/// stale ones, have no UP count: never the last one as if current.
pub fn backends(node: &NodeState) -> Option<Backends> {
    if node.backends.is_empty() {
        return None;
    }
    let stale = node.backends_stale || node.health() == Health::Down;
    Some(Backends {
        up: if stale { None } else { node.backends_up },
        total: node.backends.len(),
        stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::BackendServer;

    fn check(name: &str, h: Health) -> CheckResult {
        CheckResult {
            name: name.into(),
            status: h as i32,
            ..Default::default()
        }
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
    fn stale_checks_are_never_ok() {
        let mut stale = check("mysql", Health::Unknown);
        stale.stale = true;
        stale.last_status = Health::Ok as i32;
        let checks = vec![check("tcp", Health::Ok), stale];
        assert_eq!(
            checks_summary(&checks),
            Some(("1 stale".into(), Health::Unknown))
        );
        assert!(failing_checks(&checks).is_empty());
        assert_eq!(stale_checks(&checks).len(), 1);
        let mut failing = checks.clone();
        failing.push(check("disk", Health::Warn));
        assert_eq!(
            checks_summary(&failing),
            Some(("disk".into(), Health::Warn))
        );
    }

    #[test]
    fn backends_up_is_the_collectors_and_unknown_while_stale() {
        let mut node = NodeState {
            health: Health::Ok as i32,
            backends: vec![BackendServer::default(); 3],
            backends_up: Some(3),
            ..Default::default()
        };
        let b = backends(&node).unwrap();
        assert_eq!(b.text(), "3/3 UP");
        assert!(b.all_up());
        node.backends_stale = true;
        node.backends_up = None;
        assert_eq!(backends(&node).unwrap().text(), "?/3 UP");
        // A down node's last sample is not current either.
        node.backends_stale = false;
        node.backends_up = Some(3);
        node.health = Health::Down as i32;
        let b = backends(&node).unwrap();
        assert_eq!(b.text(), "?/3 UP");
        assert!(b.stale && !b.all_up());
        node.backends.clear();
        assert_eq!(backends(&node), None);
    }

    #[test]
    fn a_down_nodes_values_are_all_unknown() {
        let mut node = NodeState {
            health: Health::Down as i32,
            summary: Some(NodeSummary {
                cpu_usage_ratio: Some(0.5),
                replication_lag_seconds: Some(3.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(summary(&node), NodeSummary::default());
        assert_eq!(replication_lag(&node), None);
        node.health = Health::Ok as i32;
        assert_eq!(summary(&node).cpu_usage_ratio, Some(0.5));
        assert_eq!(replication_lag(&node), Some(3.0));
    }
}
