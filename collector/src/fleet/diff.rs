//! The [`NodeChange`] between two served states of one node: the smallest
//! message that takes a reader holding the older state to the newer one,
//! by the rules in `stacktop_proto::delta` (which readers apply).
//!
//! A node that did not change produces nothing, so an idle fleet costs a
//! watcher nothing; a node that sent one batch costs its status (summary,
//! health, liveness) and one CPU sample, not its whole state.

use std::sync::Arc;

use stacktop_proto::v1::{BackendsUpdate, NodeChange};

use super::eval::NodeView;

/// What changed from `old` (`None`: readers do not know the node) to
/// `new`; `None` when nothing did.
pub fn change(old: Option<&NodeView>, new: &NodeView) -> Option<NodeChange> {
    let full = || NodeChange {
        name: new.identity.name.clone(),
        full: Some(new.state()),
        ..Default::default()
    };
    let Some(old) = old else {
        return Some(full());
    };
    if !Arc::ptr_eq(&old.identity, &new.identity) && old.identity != new.identity {
        return Some(full());
    }
    let mut changed = old.status != new.status;
    let mut c = NodeChange {
        name: new.identity.name.clone(),
        status: Some(new.status.clone()),
        ..Default::default()
    };

    let appended = new.cpu_seq.saturating_sub(old.cpu_seq) as usize;
    if new.cpu.is_empty() {
        c.cpu_reset = !old.cpu.is_empty();
    } else if old.cpu.is_empty() || new.cpu_seq < old.cpu_seq || appended > new.cpu.len() {
        c.cpu_reset = true;
        c.cpu_appended = new.cpu.to_vec();
    } else if appended > 0 {
        c.cpu_appended = new.cpu[new.cpu.len() - appended..].to_vec();
    }
    changed |= c.cpu_reset || !c.cpu_appended.is_empty();

    if !Arc::ptr_eq(&old.checks, &new.checks) {
        for check in new.checks.iter() {
            let same = old
                .checks
                .iter()
                .find(|o| o.result.name == check.result.name)
                .is_some_and(|o| {
                    o.same(check)
                        || (o.result == check.result
                            && o.stale == check.stale
                            && o.role == check.role)
                });
            if !same {
                c.checks.push(check.to_proto());
            }
        }
        c.checks_removed = old
            .checks
            .iter()
            .filter(|o| !new.checks.iter().any(|n| n.result.name == o.result.name))
            .map(|o| o.result.name.clone())
            .collect();
        changed |= !c.checks.is_empty() || !c.checks_removed.is_empty();
    }

    if !Arc::ptr_eq(&old.facts, &new.facts) && old.facts != new.facts {
        c.facts_changed = true;
        c.facts = new.facts.to_vec();
        changed = true;
    }
    if !old.backends.same(&new.backends) {
        let b = &new.backends;
        c.backends = Some(BackendsUpdate {
            servers: b.servers.to_vec(),
            stale: b.stale,
            timestamp_ms: b.timestamp_ms,
            error: b.error.to_string(),
            up: b.up,
        });
        changed = true;
    }
    changed.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::eval::{ServedBackends, ServedCheck};
    use crate::store::Identity;
    use stacktop_proto::delta;
    use stacktop_proto::v1::{CheckResult, Label, NodeStatus, NodeSummary};
    use stacktop_proto::{Health, Role};

    fn view() -> NodeView {
        let check = |name: &str| ServedCheck {
            result: Arc::new(CheckResult {
                name: name.into(),
                ..Default::default()
            }),
            role: Role::Unspecified,
            stale: false,
        };
        NodeView {
            identity: Arc::new(Identity {
                name: "web1".into(),
                ..Default::default()
            }),
            status: NodeStatus {
                health: Health::Ok as i32,
                summary: Some(NodeSummary {
                    cpu_usage_ratio: Some(0.2),
                    ..Default::default()
                }),
                ..Default::default()
            },
            cpu: Arc::from([0.1, 0.2]),
            cpu_seq: 2,
            checks: Arc::from([check("a"), check("b")]),
            facts: Arc::default(),
            backends: ServedBackends::default(),
            metrics: Arc::from([]),
        }
    }

    /// Applying the change to the old state must give the new one.
    fn round_trip(old: &NodeView, new: &NodeView) {
        let mut nodes = vec![old.state()];
        if let Some(c) = change(Some(old), new) {
            assert!(delta::apply_change(&mut nodes, c));
        }
        assert_eq!(nodes[0], new.state());
    }

    #[test]
    fn an_unchanged_node_is_nothing() {
        let v = view();
        assert_eq!(change(Some(&v), &v.clone()), None);
    }

    #[test]
    fn a_new_or_changed_identity_is_sent_whole() {
        let v = view();
        assert!(change(None, &v).unwrap().full.is_some());
        let mut other = v.clone();
        other.identity = Arc::new(Identity {
            roles: vec![Role::Lb],
            ..(*v.identity).clone()
        });
        assert!(change(Some(&v), &other).unwrap().full.is_some());
    }

    #[test]
    fn a_batch_costs_its_status_and_one_cpu_sample() {
        let old = view();
        let mut new = old.clone();
        new.cpu = Arc::from([0.1, 0.2, 0.3]);
        new.cpu_seq = 3;
        new.status.summary.as_mut().unwrap().cpu_usage_ratio = Some(0.3);
        let c = change(Some(&old), &new).unwrap();
        assert_eq!(c.cpu_appended, [0.3]);
        assert!(!c.cpu_reset);
        assert!(c.checks.is_empty() && c.checks_removed.is_empty());
        assert!(!c.facts_changed && c.backends.is_none());
        round_trip(&old, &new);
    }

    #[test]
    fn every_kind_of_change_round_trips() {
        let old = view();
        let mut new = old.clone();
        new.status.health = Health::Down as i32;
        new.cpu = Arc::from([]);
        let mut checks: Vec<ServedCheck> = old.checks.iter().skip(1).cloned().collect();
        checks[0].stale = true;
        checks.push(ServedCheck {
            result: Arc::new(CheckResult {
                name: "c".into(),
                ..Default::default()
            }),
            role: Role::Web,
            stale: false,
        });
        new.checks = checks.into();
        new.facts = Arc::new(vec![Label::new("db_role", "replica")]);
        new.backends.stale = true;
        new.backends.error = "down".into();
        round_trip(&old, &new);
        // Coming back: the sparkline starts over.
        let mut back = new.clone();
        back.cpu = Arc::from([0.9]);
        back.cpu_seq = 3;
        round_trip(&new, &back);
        // More new samples than the reader could append: a reset.
        let mut many = old.clone();
        many.cpu = (0..120).map(f64::from).collect();
        many.cpu_seq = 500;
        round_trip(&old, &many);
    }
}
