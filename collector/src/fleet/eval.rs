//! Deciding one node's served state from its copy, at one instant: which
//! values are still fresh, what its summary says, which checks are stale,
//! its health overall and as each of its roles, whether its backends are
//! known, and when any of that will next change by itself.
//!
//! Pure: the same copy at the same instant gives the same state. The view
//! builder calls it when a node changed or when the instant it predicted
//! ([`Evaluated::next_change_ms`]) has come.

use std::collections::VecDeque;

use stacktop_proto::v1::{CheckResult, NodeState, RoleHealth};
use stacktop_proto::{Health, Role, metrics};

use super::copy::{CPU_POINTS, NodeCopy};
use super::summary::{self, Freshness};
use super::traffic::{self, SourceSeconds};
use crate::health;

/// Interval the haproxy check is assumed to run at when the agent did not
/// say (older agents): the agent's default.
const DEFAULT_HAPROXY_CHECK_MS: u32 = 5_000;

/// A node's recent total-CPU samples for its sparkline, numbered so that a
/// delta can say which are new.
#[derive(Debug, Clone, Default)]
pub struct CpuRing {
    values: VecDeque<(i64, f64)>,
    /// How many samples were ever added: the number of the newest.
    seq: u64,
    /// Time of the newest sample ever added, kept across [`CpuRing::clear`]
    /// so that samples from before an outage are not added back.
    newest_ms: i64,
}

impl CpuRing {
    /// Time of the newest sample ever added (0: none), to copy only newer
    /// ones.
    pub fn last_ms(&self) -> i64 {
        self.newest_ms
    }

    /// Adds the samples newer than the newest held.
    pub fn extend(&mut self, points: &[(i64, f64)]) {
        for &(ts, value) in points {
            if ts > self.newest_ms {
                self.values.push_back((ts, value));
                self.seq += 1;
                self.newest_ms = ts;
            }
        }
        while self.values.len() > CPU_POINTS {
            self.values.pop_front();
        }
    }

    /// Forgets every sample (the node went down: its sparkline starts over
    /// when it comes back). Numbering goes on.
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// The number of the newest sample.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The samples, oldest first.
    pub fn values(&self) -> Vec<f64> {
        self.values.iter().map(|p| p.1).collect()
    }
}

/// One node, decided.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// What readers get (without `latest` and `traffic`).
    pub state: NodeState,
    /// The number of the newest CPU sample in `state.cpu_recent`.
    pub cpu_seq: u64,
    /// When something of this state changes by itself (a value or check
    /// going stale, the node going down); `i64::MAX`: never.
    pub next_change_ms: i64,
    /// The node's fresh access-log sources, for the web/LB cross-check.
    pub sources: Vec<SourceSeconds>,
}

/// The role a result speaks for: as the agent said, else by kind.
pub fn check_role(result: &CheckResult) -> Role {
    match Role::try_from(result.role) {
        Ok(role) if role != Role::Unspecified => role,
        _ => metrics::check_role(&result.kind, &result.name),
    }
}

/// Decides `copy` at `now_ms`; `cpu` holds its sparkline samples.
pub fn evaluate(copy: &NodeCopy, cpu: &CpuRing, now_ms: i64) -> Evaluated {
    let id = &copy.identity;
    let interval = id.interval_ms;
    let alive_until = health::alive_until(copy.last_seen_ms, interval);
    let alive = copy.last_seen_ms > 0 && now_ms <= alive_until;
    let mut next = if alive {
        alive_until.saturating_add(1)
    } else {
        i64::MAX
    };
    let mut soonest = |until: i64| next = next.min(until.saturating_add(1));

    let fresh = Freshness {
        now_ms,
        interval_ms: interval,
        alive,
    };
    for v in &copy.latest {
        if fresh.is_fresh(v) {
            soonest(fresh.fresh_until(v));
        }
    }
    let summary = summary::summarize(&copy.latest, |v| fresh.is_fresh(v));
    let last = summary::summarize(&copy.latest, |_| true);
    let last_summary = (last != summary).then_some(last);

    let mut checks = Vec::with_capacity(copy.checks.len());
    for stored in &copy.checks {
        let mut served = (*stored.result).clone();
        served.role = check_role(&stored.result) as i32;
        let until = health::check_fresh_until(stored.arrived_ms, served.interval_ms, interval);
        if alive && now_ms <= until {
            soonest(until);
            served.stale = false;
            served.last_status = 0;
        } else {
            served.stale = true;
            served.last_status = served.status;
            served.status = Health::Unknown as i32;
        }
        checks.push(served);
    }
    let statuses = || {
        checks.iter().map(|c| {
            (
                Role::try_from(c.role).unwrap_or(Role::Unspecified),
                c.status(),
            )
        })
    };
    let node_health = health::node_health(
        statuses().map(|(_, s)| s),
        copy.last_seen_ms,
        interval,
        now_ms,
    );
    let role_health = id
        .roles
        .iter()
        .map(|&role| RoleHealth {
            role: role as i32,
            health: health::role_health(role, &id.roles, statuses(), !alive) as i32,
        })
        .collect();

    let backends = &copy.backends;
    let (mut backends_stale, mut backends_error) = (false, String::new());
    if !backends.servers.is_empty() {
        let check_ms = copy
            .checks
            .iter()
            .filter(|c| c.result.kind == "haproxy" && c.result.interval_ms > 0)
            .map(|c| c.result.interval_ms)
            .max()
            .unwrap_or(DEFAULT_HAPROXY_CHECK_MS);
        let until = health::check_fresh_until(backends.arrived_ms, check_ms, interval);
        if let Some(error) = &backends.error {
            backends_stale = true;
            backends_error = error.to_string();
        } else if !alive {
            backends_stale = true;
            backends_error = "the node is down".into();
        } else if now_ms > until {
            backends_stale = true;
            backends_error = format!(
                "no HAProxy sample for {} s",
                (now_ms - backends.arrived_ms) / 1_000
            );
        } else {
            soonest(until);
        }
    }
    let backends_up = if backends_stale {
        None
    } else {
        metrics::backends_up(&backends.servers)
    };

    let sources = if alive && (id.roles.contains(&Role::Lb) || id.roles.contains(&Role::Web)) {
        let stale_after = summary::log_stale_after_ms(interval);
        traffic::source_seconds(&copy.requests, |s| {
            s.updated_ms > 0 && now_ms - s.updated_ms <= stale_after
        })
    } else {
        Vec::new()
    };

    let state = NodeState {
        name: id.name.clone(),
        instance_id: id.instance_id.clone(),
        roles: id.roles.iter().map(|&r| r as i32).collect(),
        roles_detected: id.roles_detected,
        labels: id.labels.clone(),
        agent_version: id.agent_version.clone(),
        interval_ms: interval,
        health: node_health as i32,
        connected: copy.connected,
        last_seen_ms: copy.last_seen_ms,
        summary: Some(summary),
        cpu_recent: if alive { cpu.values() } else { Vec::new() },
        checks,
        latest: Vec::new(),
        peer: id.peer.clone(),
        facts: copy.facts.to_vec(),
        backends: backends.servers.to_vec(),
        role_health,
        last_summary,
        backends_stale,
        backends_timestamp_ms: backends.arrived_ms,
        backends_error,
        backends_up,
        traffic: Vec::new(),
    };
    Evaluated {
        state,
        cpu_seq: cpu.seq(),
        next_change_ms: next,
        sources,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::copy::LatestValue;
    use crate::store::{Backends, Identity, SeriesKey, StoredCheck};
    use stacktop_proto::v1::BackendServer;

    const NOW: i64 = 1_700_000_000_000;

    fn copy(roles: &[Role]) -> NodeCopy {
        NodeCopy {
            identity: Arc::new(Identity {
                name: "n".into(),
                instance_id: "i".into(),
                roles: roles.to_vec(),
                interval_ms: 1_000,
                ..Identity::default()
            }),
            connected: true,
            last_seen_ms: NOW,
            latest: Vec::new(),
            requests: Vec::new(),
            cpu: Vec::new(),
            checks: Vec::new(),
            facts: Arc::default(),
            backends: Backends::default(),
        }
    }

    fn check(name: &str, kind: &str, status: Health, interval_ms: u32) -> StoredCheck {
        StoredCheck {
            result: Arc::new(CheckResult {
                name: name.into(),
                kind: kind.into(),
                status: status as i32,
                interval_ms,
                ..Default::default()
            }),
            arrived_ms: NOW,
        }
    }

    fn role_health(e: &Evaluated, role: Role) -> Health {
        e.state
            .role_health
            .iter()
            .find(|r| r.role() == role)
            .map(|r| r.health())
            .unwrap()
    }

    #[test]
    fn a_dual_role_node_is_judged_per_role() {
        let mut c = copy(&[Role::Web, Role::App]);
        c.checks = vec![
            check("nginx", "nginx", Health::Crit, 2_000),
            check("app:x", "app", Health::Ok, 2_000),
            check("exposure", "exposure", Health::Ok, 15_000),
        ];
        let e = evaluate(&c, &CpuRing::default(), NOW);
        assert_eq!(e.state.health(), Health::Crit);
        assert_eq!(role_health(&e, Role::Web), Health::Crit);
        assert_eq!(role_health(&e, Role::App), Health::Ok);
        // Served checks say which role they speak for.
        assert_eq!(e.state.checks[0].role(), Role::Web);
        assert_eq!(e.state.checks[2].role(), Role::Unspecified);
    }

    #[test]
    fn a_down_node_serves_nothing_as_current() {
        let mut c = copy(&[Role::Lb]);
        c.latest = vec![LatestValue {
            key: Arc::new(SeriesKey::new(metrics::CPU_USAGE, &[])),
            timestamp_ms: NOW,
            value: 0.5,
            updated_ms: NOW,
        }];
        c.checks = vec![check("haproxy", "haproxy", Health::Ok, 2_000)];
        c.backends = Backends {
            servers: Arc::new(vec![BackendServer {
                status: "UP".into(),
                ..Default::default()
            }]),
            arrived_ms: NOW,
            error: None,
        };
        let mut cpu = CpuRing::default();
        cpu.extend(&[(NOW, 0.5)]);
        let live = evaluate(&c, &cpu, NOW + 500);
        assert_eq!(live.state.summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert_eq!(live.state.last_summary, None);
        assert_eq!(live.state.backends_up, Some(1));
        assert_eq!(live.state.cpu_recent, [0.5]);
        // The first thing to change by itself: the node going down.
        assert_eq!(live.next_change_ms, NOW + 3_001);

        let down = evaluate(&c, &cpu, NOW + 3_001);
        assert_eq!(down.state.health(), Health::Down);
        assert_eq!(down.state.summary.unwrap().cpu_usage_ratio, None);
        assert_eq!(down.state.last_summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert!(down.state.checks[0].stale);
        assert_eq!(down.state.checks[0].status(), Health::Unknown);
        assert_eq!(down.state.checks[0].last_status(), Health::Ok);
        assert!(down.state.backends_stale);
        assert_eq!(down.state.backends_up, None);
        assert!(down.state.cpu_recent.is_empty());
        assert_eq!(role_health(&down, Role::Lb), Health::Down);
        assert_eq!(down.next_change_ms, i64::MAX);
    }

    #[test]
    fn a_failed_stats_read_makes_backends_unknown_at_once() {
        let mut c = copy(&[Role::Lb]);
        c.backends = Backends {
            servers: Arc::new(vec![BackendServer {
                status: "UP".into(),
                ..Default::default()
            }]),
            arrived_ms: NOW,
            error: Some("connection refused".into()),
        };
        let e = evaluate(&c, &CpuRing::default(), NOW);
        assert!(e.state.backends_stale);
        assert_eq!(e.state.backends_error, "connection refused");
        assert_eq!(e.state.backends_up, None);
        assert_eq!(e.state.backends.len(), 1, "the last sample is kept");
    }

    #[test]
    fn a_check_that_stops_reporting_goes_stale() {
        let mut c = copy(&[Role::Db]);
        c.checks = vec![check("mysql", "mysql", Health::Ok, 2_000)];
        // Keep the node alive: it keeps sending batches.
        c.last_seen_ms = NOW + 20_000;
        let fresh = evaluate(&c, &CpuRing::default(), NOW + 8_000);
        assert!(!fresh.state.checks[0].stale);
        let stale = evaluate(&c, &CpuRing::default(), NOW + 8_001);
        assert!(stale.state.checks[0].stale);
        assert_eq!(stale.state.health(), Health::Unknown);
        assert_eq!(role_health(&stale, Role::Db), Health::Unknown);
    }

    #[test]
    fn the_sparkline_keeps_the_newest_samples_and_numbers_them() {
        let mut cpu = CpuRing::default();
        let points: Vec<(i64, f64)> = (0..200)
            .map(|i| (NOW + i * 1_000, i as f64 / 1000.0))
            .collect();
        cpu.extend(&points);
        let values = cpu.values();
        assert_eq!(values.len(), CPU_POINTS);
        assert!((values[0] - 0.080).abs() < 1e-6);
        assert!((values[119] - 0.199).abs() < 1e-6);
        assert_eq!(cpu.seq(), 200);
        // Old samples are not added twice.
        cpu.extend(&points[190..]);
        assert_eq!(cpu.seq(), 200);
        cpu.clear();
        assert!(cpu.values().is_empty());
        // Samples from before the outage do not come back.
        cpu.extend(&points[150..]);
        assert!(cpu.values().is_empty());
        cpu.extend(&[(NOW + 300_000, 0.5)]);
        assert_eq!(cpu.values(), [0.5]);
        assert_eq!(cpu.seq(), 201);
    }
}
