//! The [`NodeChange`] between two served states of one node: the smallest
//! message that takes a reader holding the older state to the newer one,
//! by the rules in `stacktop_proto::delta` (which readers apply).
//!
//! A node that did not change produces nothing, so an idle fleet costs a
//! watcher nothing; a node that sent one batch costs its status (summary,
//! health, liveness) and one CPU sample, not its whole state.

use stacktop_proto::delta;
use stacktop_proto::v1::{BackendsUpdate, NodeChange, NodeState};

/// A served state with the number of its newest CPU sample.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The state readers hold.
    pub state: &'a NodeState,
    /// Number of the newest sample in `state.cpu_recent`.
    pub cpu_seq: u64,
}

/// Whether two states describe the same node as announced (Hello): a
/// difference means readers get the whole state.
fn same_identity(a: &NodeState, b: &NodeState) -> bool {
    a.name == b.name
        && a.instance_id == b.instance_id
        && a.roles == b.roles
        && a.roles_detected == b.roles_detected
        && a.labels == b.labels
        && a.agent_version == b.agent_version
        && a.interval_ms == b.interval_ms
        && a.peer == b.peer
}

/// What changed from `old` (`None`: readers do not know the node) to
/// `new`; `None` when nothing did.
pub fn change(old: Option<Served<'_>>, new: Served<'_>) -> Option<NodeChange> {
    let full = || NodeChange {
        name: new.state.name.clone(),
        full: Some(new.state.clone()),
        ..Default::default()
    };
    let Some(old) = old else {
        return Some(full());
    };
    if !same_identity(old.state, new.state) {
        return Some(full());
    }
    let (o, n) = (old.state, new.state);
    let mut c = NodeChange {
        name: n.name.clone(),
        ..Default::default()
    };
    let mut changed = false;

    let status = delta::status_of(n);
    if status != delta::status_of(o) {
        changed = true;
    }
    c.status = Some(status);

    let appended = new.cpu_seq.saturating_sub(old.cpu_seq);
    if n.cpu_recent.is_empty() {
        if !o.cpu_recent.is_empty() {
            c.cpu_reset = true;
        }
    } else if o.cpu_recent.is_empty()
        || new.cpu_seq < old.cpu_seq
        || appended as usize > n.cpu_recent.len()
    {
        c.cpu_reset = true;
        c.cpu_appended = n.cpu_recent.clone();
    } else if appended > 0 {
        c.cpu_appended = n.cpu_recent[n.cpu_recent.len() - appended as usize..].to_vec();
    }
    changed |= c.cpu_reset || !c.cpu_appended.is_empty();

    for check in &n.checks {
        if o.checks.iter().find(|x| x.name == check.name) != Some(check) {
            c.checks.push(check.clone());
        }
    }
    c.checks_removed = o
        .checks
        .iter()
        .filter(|x| !n.checks.iter().any(|y| y.name == x.name))
        .map(|x| x.name.clone())
        .collect();
    changed |= !c.checks.is_empty() || !c.checks_removed.is_empty();

    if n.facts != o.facts {
        c.facts_changed = true;
        c.facts = n.facts.clone();
        changed = true;
    }
    if n.backends != o.backends
        || n.backends_stale != o.backends_stale
        || n.backends_timestamp_ms != o.backends_timestamp_ms
        || n.backends_error != o.backends_error
        || n.backends_up != o.backends_up
    {
        c.backends = Some(BackendsUpdate {
            servers: n.backends.clone(),
            stale: n.backends_stale,
            timestamp_ms: n.backends_timestamp_ms,
            error: n.backends_error.clone(),
            up: n.backends_up,
        });
        changed = true;
    }
    changed.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Health;
    use stacktop_proto::v1::{CheckResult, Label, NodeSummary};

    fn state() -> NodeState {
        NodeState {
            name: "web1".into(),
            health: Health::Ok as i32,
            cpu_recent: vec![0.1, 0.2],
            summary: Some(NodeSummary {
                cpu_usage_ratio: Some(0.2),
                ..Default::default()
            }),
            checks: vec![
                CheckResult {
                    name: "a".into(),
                    ..Default::default()
                },
                CheckResult {
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn served(state: &NodeState, cpu_seq: u64) -> Served<'_> {
        Served { state, cpu_seq }
    }

    /// Applying the change to the old state must give the new one.
    fn round_trip(old: &NodeState, old_seq: u64, new: &NodeState, new_seq: u64) {
        let mut nodes = vec![old.clone()];
        if let Some(c) = change(Some(served(old, old_seq)), served(new, new_seq)) {
            assert!(delta::apply_change(&mut nodes, c));
        }
        assert_eq!(&nodes[0], new);
    }

    #[test]
    fn an_unchanged_node_is_nothing() {
        let s = state();
        assert_eq!(change(Some(served(&s, 2)), served(&s, 2)), None);
    }

    #[test]
    fn a_new_or_renamed_node_is_sent_whole() {
        let s = state();
        assert!(change(None, served(&s, 2)).unwrap().full.is_some());
        let mut other = s.clone();
        other.roles = vec![1];
        assert!(
            change(Some(served(&s, 2)), served(&other, 2))
                .unwrap()
                .full
                .is_some()
        );
    }

    #[test]
    fn a_batch_costs_its_status_and_one_cpu_sample() {
        let old = state();
        let mut new = old.clone();
        new.cpu_recent.push(0.3);
        new.summary.as_mut().unwrap().cpu_usage_ratio = Some(0.3);
        let c = change(Some(served(&old, 2)), served(&new, 3)).unwrap();
        assert_eq!(c.cpu_appended, [0.3]);
        assert!(!c.cpu_reset);
        assert!(c.checks.is_empty() && c.checks_removed.is_empty());
        assert!(!c.facts_changed && c.backends.is_none());
        round_trip(&old, 2, &new, 3);
    }

    #[test]
    fn every_kind_of_change_round_trips() {
        let old = state();
        let mut new = old.clone();
        new.health = Health::Down as i32;
        new.cpu_recent.clear();
        new.checks.remove(0);
        new.checks[0].stale = true;
        new.checks.push(CheckResult {
            name: "c".into(),
            ..Default::default()
        });
        new.facts = vec![Label::new("db_role", "replica")];
        new.backends_stale = true;
        new.backends_error = "down".into();
        round_trip(&old, 2, &new, 2);
        // Coming back: the sparkline starts over.
        let mut back = new.clone();
        back.cpu_recent = vec![0.9];
        round_trip(&new, 2, &back, 3);
        // More new samples than the reader could append: a reset.
        let mut many = old.clone();
        many.cpu_recent = (0..120).map(f64::from).collect();
        round_trip(&old, 2, &many, 500);
    }
}
