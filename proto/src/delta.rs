//! What a [`FleetDelta`] means, in code: how a reader applies one to the
//! nodes it holds ([`apply_change`]), and how two consecutive deltas fold
//! into one ([`merge_deltas`]) so that a writer can skip an update without
//! losing anything.
//!
//! The rules (fleet.proto says the same in words):
//!
//! - `removed` names are applied first, then `changed`.
//! - A change with `full` replaces the node's whole state.
//! - Otherwise `status` replaces the fast-changing fields; `cpu_appended`
//!   is appended to `cpu_recent` (or replaces it with `cpu_reset`), which
//!   keeps the newest [`CPU_RECENT`] values; `checks` replace results of
//!   the same name and `checks_removed` drop some; facts are replaced when
//!   `facts_changed`; backends when `backends` is set.

use std::collections::BTreeMap;

use crate::v1::{FleetDelta, NodeChange, NodeState, NodeStatus};

/// How many CPU samples `cpu_recent` holds at most.
pub const CPU_RECENT: usize = 120;

/// The fast-changing part of `state`.
pub fn status_of(state: &NodeState) -> NodeStatus {
    NodeStatus {
        health: state.health,
        connected: state.connected,
        last_seen_ms: state.last_seen_ms,
        summary: state.summary,
        last_summary: state.last_summary,
        role_health: state.role_health.clone(),
        in_maintenance: state.in_maintenance,
        maintenance_until_ms: state.maintenance_until_ms,
    }
}

fn set_status(state: &mut NodeState, status: NodeStatus) {
    state.health = status.health;
    state.connected = status.connected;
    state.last_seen_ms = status.last_seen_ms;
    state.summary = status.summary;
    state.last_summary = status.last_summary;
    state.role_health = status.role_health;
    state.in_maintenance = status.in_maintenance;
    state.maintenance_until_ms = status.maintenance_until_ms;
}

/// Keeps the newest [`CPU_RECENT`] values.
fn trim_cpu(values: &mut Vec<f64>) {
    if values.len() > CPU_RECENT {
        values.drain(..values.len() - CPU_RECENT);
    }
}

/// Applies a partial change (no `full`) to `state`.
fn apply_partial(state: &mut NodeState, change: NodeChange) {
    if let Some(status) = change.status {
        set_status(state, status);
    }
    if change.cpu_reset {
        state.cpu_recent = change.cpu_appended;
    } else {
        state.cpu_recent.extend(change.cpu_appended);
    }
    trim_cpu(&mut state.cpu_recent);
    if !change.checks_removed.is_empty() {
        state
            .checks
            .retain(|c| !change.checks_removed.contains(&c.name));
    }
    for check in change.checks {
        match state.checks.iter_mut().find(|c| c.name == check.name) {
            Some(slot) => *slot = check,
            None => {
                let at = state.checks.partition_point(|c| c.name < check.name);
                state.checks.insert(at, check);
            }
        }
    }
    if change.facts_changed {
        state.facts = change.facts;
    }
    if let Some(b) = change.backends {
        state.backends = b.servers;
        state.backends_stale = b.stale;
        state.backends_timestamp_ms = b.timestamp_ms;
        state.backends_error = b.error;
        state.backends_up = b.up;
    }
}

/// Applies `change` to the node it names in `nodes` (kept sorted by name).
/// A partial change for a node the reader does not hold is ignored (it
/// cannot happen on a consistent stream) and reported as `false`.
pub fn apply_change(nodes: &mut Vec<NodeState>, mut change: NodeChange) -> bool {
    let at = nodes.binary_search_by(|n| n.name.as_str().cmp(&change.name));
    match (change.full.take(), at) {
        (Some(full), Ok(i)) => nodes[i] = full,
        (Some(full), Err(i)) => nodes.insert(i, full),
        (None, Ok(i)) => apply_partial(&mut nodes[i], change),
        (None, Err(_)) => return false,
    }
    true
}

/// Applies a whole delta to `nodes` (sorted by name): removals, then
/// changes. Returns how many changes named a node the reader did not hold.
pub fn apply_delta(nodes: &mut Vec<NodeState>, delta: FleetDelta) -> usize {
    if !delta.removed.is_empty() {
        nodes.retain(|n| !delta.removed.contains(&n.name));
    }
    delta
        .changed
        .into_iter()
        .filter(|c| !apply_change(nodes, c.clone()))
        .count()
}

/// One change equivalent to `older` followed by `newer` (same node).
pub fn merge_change(older: NodeChange, newer: NodeChange) -> NodeChange {
    if newer.full.is_some() {
        return newer;
    }
    if let Some(mut full) = older.full {
        apply_partial(&mut full, newer);
        return NodeChange {
            name: older.name,
            full: Some(full),
            ..Default::default()
        };
    }
    let (cpu_appended, cpu_reset) = if newer.cpu_reset {
        (newer.cpu_appended, true)
    } else {
        let mut cpu = older.cpu_appended;
        cpu.extend(newer.cpu_appended);
        trim_cpu(&mut cpu);
        (cpu, older.cpu_reset)
    };
    let mut checks: BTreeMap<String, _> = older
        .checks
        .into_iter()
        .filter(|c| !newer.checks_removed.contains(&c.name))
        .map(|c| (c.name.clone(), c))
        .collect();
    let mut checks_removed: Vec<String> = older
        .checks_removed
        .into_iter()
        .filter(|name| !newer.checks.iter().any(|c| &c.name == name))
        .collect();
    for name in newer.checks_removed {
        if !checks_removed.contains(&name) {
            checks_removed.push(name);
        }
    }
    for check in newer.checks {
        checks.insert(check.name.clone(), check);
    }
    let (facts_changed, facts) = if newer.facts_changed {
        (true, newer.facts)
    } else {
        (older.facts_changed, older.facts)
    };
    NodeChange {
        name: newer.name,
        full: None,
        status: newer.status.or(older.status),
        cpu_appended,
        cpu_reset,
        checks: checks.into_values().collect(),
        checks_removed,
        facts_changed,
        facts,
        backends: newer.backends.or(older.backends),
    }
}

/// One delta equivalent to `older` followed by `newer`.
pub fn merge_deltas(older: FleetDelta, newer: FleetDelta) -> FleetDelta {
    let mut changed: BTreeMap<String, NodeChange> = older
        .changed
        .into_iter()
        .filter(|c| !newer.removed.contains(&c.name))
        .map(|c| (c.name.clone(), c))
        .collect();
    for change in newer.changed {
        let merged = match changed.remove(&change.name) {
            Some(old) => merge_change(old, change),
            None => change,
        };
        changed.insert(merged.name.clone(), merged);
    }
    let mut removed = older.removed;
    for name in newer.removed {
        if !removed.contains(&name) {
            removed.push(name);
        }
    }
    let (alerts_changed, alerts) = if newer.alerts_changed {
        (true, newer.alerts)
    } else {
        (older.alerts_changed, older.alerts)
    };
    FleetDelta {
        removed,
        changed: changed.into_values().collect(),
        totals: newer.totals.or(older.totals),
        generation: newer.generation,
        alerts_changed,
        alerts,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Health;
    use crate::v1::{BackendServer, BackendsUpdate, CheckResult, Label, NodeSummary};

    fn node(name: &str) -> NodeState {
        NodeState {
            name: name.into(),
            health: Health::Ok as i32,
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

    fn status(health: Health, cpu: f64) -> NodeStatus {
        NodeStatus {
            health: health as i32,
            summary: Some(NodeSummary {
                cpu_usage_ratio: Some(cpu),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn partial(name: &str) -> NodeChange {
        NodeChange {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn partial_changes_update_what_they_carry() {
        let mut nodes = vec![node("a"), node("b")];
        let mut c = partial("b");
        c.status = Some(status(Health::Crit, 0.9));
        c.cpu_appended = vec![0.3];
        c.checks = vec![check("b", Health::Crit), check("c", Health::Warn)];
        c.checks_removed = vec!["a".into()];
        c.facts_changed = true;
        c.facts = vec![Label::new("db_role", "replica")];
        c.backends = Some(BackendsUpdate {
            servers: vec![BackendServer::default()],
            stale: true,
            ..Default::default()
        });
        assert!(apply_change(&mut nodes, c));
        let b = &nodes[1];
        assert_eq!(b.health(), Health::Crit);
        assert_eq!(b.summary.unwrap().cpu_usage_ratio, Some(0.9));
        assert_eq!(b.cpu_recent, [0.1, 0.2, 0.3]);
        let checks: Vec<_> = b
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.status()))
            .collect();
        assert_eq!(checks, [("b", Health::Crit), ("c", Health::Warn)]);
        assert_eq!(b.facts.len(), 1);
        assert!(b.backends_stale);
        // Untouched: the other node, and facts when not flagged.
        assert_eq!(nodes[0], node("a"));
        let mut c = partial("b");
        c.cpu_reset = true;
        assert!(apply_change(&mut nodes, c));
        assert!(nodes[1].cpu_recent.is_empty());
        assert_eq!(nodes[1].facts.len(), 1);
        // A partial change for an unknown node is refused.
        assert!(!apply_change(&mut nodes, partial("zz")));
    }

    #[test]
    fn cpu_keeps_the_newest_values() {
        let mut nodes = vec![node("a")];
        let mut c = partial("a");
        c.cpu_appended = (0..200).map(f64::from).collect();
        apply_change(&mut nodes, c);
        assert_eq!(nodes[0].cpu_recent.len(), CPU_RECENT);
        assert_eq!(nodes[0].cpu_recent[0], 80.0);
    }

    /// Applying a merge must equal applying both, for any mix of changes.
    #[test]
    fn merging_equals_applying_both() {
        let start = vec![node("a"), node("b")];
        let mut d1 = FleetDelta {
            generation: 1,
            ..Default::default()
        };
        let mut c = partial("a");
        c.status = Some(status(Health::Warn, 0.5));
        c.cpu_appended = vec![0.5];
        c.checks = vec![check("x", Health::Warn)];
        c.checks_removed = vec!["c".into()];
        d1.changed.push(c);
        let mut new = node("n");
        new.cpu_recent = vec![0.7];
        d1.changed.push(NodeChange {
            name: "n".into(),
            full: Some(new),
            ..Default::default()
        });
        d1.removed.push("b".into());

        let mut d2 = FleetDelta {
            generation: 2,
            ..Default::default()
        };
        let mut c = partial("a");
        c.status = Some(status(Health::Ok, 0.6));
        c.cpu_appended = vec![0.6];
        c.checks = vec![check("c", Health::Crit)];
        c.checks_removed = vec!["x".into()];
        c.facts_changed = true;
        d2.changed.push(c);
        let mut c = partial("n");
        c.cpu_appended = vec![0.8];
        d2.changed.push(c);
        d2.changed.push(NodeChange {
            name: "b".into(),
            full: Some(node("b")),
            ..Default::default()
        });

        let mut both = start.clone();
        assert_eq!(apply_delta(&mut both, d1.clone()), 0);
        assert_eq!(apply_delta(&mut both, d2.clone()), 0);
        let merged = merge_deltas(d1, d2);
        assert_eq!(merged.generation, 2);
        let mut once = start;
        assert_eq!(apply_delta(&mut once, merged), 0);
        assert_eq!(once, both);
        assert_eq!(once[0].cpu_recent, [0.1, 0.2, 0.5, 0.6]);
        assert_eq!(once[2].cpu_recent, [0.7, 0.8]);
    }
}
