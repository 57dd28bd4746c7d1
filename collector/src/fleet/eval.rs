//! Deciding one node's served state from its copy, at one instant: which
//! values are still fresh, what its summary says, which checks are stale,
//! its health overall and as each of its roles, whether its backends are
//! known, and when any of that will next change by itself.
//!
//! Pure: the same copy at the same instant gives the same state. The view
//! builder calls it when a node changed or when the instant it predicted
//! (the second value [`evaluate`] returns) has come. The result
//! ([`NodeView`]) is kept in parts that are shared from one evaluation to
//! the next while they do not change (identity, checks, facts, backends),
//! so re-deciding a node costs numbers, not copies of its strings.

use std::collections::VecDeque;

use std::sync::Arc;

use stacktop_proto::v1::{BackendServer, CheckResult, Label, NodeState, NodeStatus, RoleHealth};
use stacktop_proto::{Health, Role, metrics};

use super::copy::{CPU_POINTS, NodeCopy};
use super::summary::{self, Freshness};
use crate::health;
use crate::store::{Identity, SeriesKey};

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

/// A check result as served: the result the agent sent, the role it
/// speaks for and whether it is stale. Shared, not copied: a node whose
/// checks did not change keeps the same list.
#[derive(Debug, Clone)]
pub struct ServedCheck {
    /// The result as it arrived.
    pub result: Arc<CheckResult>,
    /// The role it speaks for (see [`check_role`]).
    pub role: Role,
    /// No fresh result: it counts as unknown.
    pub stale: bool,
}

impl ServedCheck {
    /// Whether two served checks are the same result in the same state.
    pub fn same(&self, other: &ServedCheck) -> bool {
        Arc::ptr_eq(&self.result, &other.result)
            && self.stale == other.stale
            && self.role == other.role
    }

    /// Its status as it counts now: `unknown` while stale.
    pub fn status(&self) -> Health {
        if self.stale {
            Health::Unknown
        } else {
            self.result.status()
        }
    }

    /// As readers get it.
    pub fn to_proto(&self) -> CheckResult {
        let mut c = (*self.result).clone();
        c.role = self.role as i32;
        c.stale = self.stale;
        if self.stale {
            c.last_status = c.status;
            c.status = Health::Unknown as i32;
        } else {
            c.last_status = 0;
        }
        c
    }
}

/// An LB's backends as served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServedBackends {
    /// The last sample (empty: none), each server with the node it is once
    /// the view matched them (see `view::matching`).
    pub servers: Arc<Vec<BackendServer>>,
    /// The sample as the agent sent it, before matching: while it and
    /// the index stay the same, so does the match.
    pub sample: Arc<Vec<BackendServer>>,
    /// The generation of the node index `servers` were matched against.
    pub index_generation: u64,
    /// Their states are not known any more.
    pub stale: bool,
    /// When the sample arrived (0: never).
    pub timestamp_ms: i64,
    /// Why they are unknown (empty when they are not, or nobody said).
    pub error: Arc<str>,
    /// UP servers, while known.
    pub up: Option<u32>,
}

impl ServedBackends {
    /// Whether readers hold the same thing.
    pub fn same(&self, other: &ServedBackends) -> bool {
        (Arc::ptr_eq(&self.servers, &other.servers) || self.servers == other.servers)
            && self.stale == other.stale
            && self.timestamp_ms == other.timestamp_ms
            && self.error == other.error
            && self.up == other.up
    }
}

/// One node as readers get it, in parts that are shared between
/// evaluations while they do not change.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Who it is (from its Hello).
    pub identity: Arc<Identity>,
    /// Health, liveness, summary, health per role.
    pub status: NodeStatus,
    /// The CPU sparkline (empty for a down node).
    pub cpu: Arc<[f64]>,
    /// Number of the newest sample in `cpu`.
    pub cpu_seq: u64,
    /// Every check, sorted by name.
    pub checks: Arc<[ServedCheck]>,
    /// Slow-changing state.
    pub facts: Arc<Vec<Label>>,
    /// HAProxy backends.
    pub backends: ServedBackends,
    /// The fresh values of the metrics alert rules read.
    pub metrics: Arc<[MetricValue]>,
}

/// The fresh value of a metric an alert rule reads.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// Its latest value.
    pub value: f64,
}

impl NodeView {
    /// The node's health.
    pub fn health(&self) -> Health {
        self.status.health()
    }

    /// The whole state readers get (without `latest` and `traffic`).
    pub fn state(&self) -> NodeState {
        let id = &self.identity;
        let status = self.status.clone();
        NodeState {
            name: id.name.clone(),
            // Not told to readers: it would let them take the stream over.
            instance_id: String::new(),
            roles: id.roles.iter().map(|&r| r as i32).collect(),
            roles_detected: id.roles_detected,
            labels: id.labels.clone(),
            agent_version: id.agent_version.clone(),
            interval_ms: id.interval_ms,
            health: status.health,
            connected: status.connected,
            last_seen_ms: status.last_seen_ms,
            summary: status.summary,
            cpu_recent: self.cpu.to_vec(),
            checks: self.checks.iter().map(ServedCheck::to_proto).collect(),
            latest: Vec::new(),
            peer: id.peer.clone(),
            facts: self.facts.to_vec(),
            backends: self.backends.servers.to_vec(),
            role_health: status.role_health,
            last_summary: status.last_summary,
            backends_stale: self.backends.stale,
            backends_timestamp_ms: self.backends.timestamp_ms,
            backends_error: self.backends.error.to_string(),
            backends_up: self.backends.up,
            traffic: Vec::new(),
            in_maintenance: status.in_maintenance,
            maintenance_until_ms: status.maintenance_until_ms,
        }
    }
}

/// The role a result speaks for: as the agent said, else by kind.
pub fn check_role(result: &CheckResult) -> Role {
    match Role::try_from(result.role) {
        Ok(role) if role != Role::Unspecified => role,
        _ => metrics::check_role(&result.kind, &result.name),
    }
}

/// Whether the node is alive at `now_ms`.
pub fn is_alive(copy: &NodeCopy, now_ms: i64) -> bool {
    copy.last_seen_ms > 0
        && now_ms <= health::alive_until(copy.last_seen_ms, copy.identity.interval_ms)
}

/// Decides `copy` at `now_ms`; `cpu` holds its sparkline samples and
/// `previous` what readers hold (whose unchanged parts are reused).
/// Returns the view and when it next changes by itself (a value or check
/// going stale, the node going down; `i64::MAX`: never).
pub fn evaluate(
    copy: &NodeCopy,
    cpu: &CpuRing,
    previous: Option<&NodeView>,
    now_ms: i64,
) -> (NodeView, i64) {
    evaluate_in(copy, cpu, previous, None, now_ms)
}

/// [`evaluate`] for a node under maintenance until `maintenance_until_ms`
/// (its own, or its tier's), when it is.
pub fn evaluate_in(
    copy: &NodeCopy,
    cpu: &CpuRing,
    previous: Option<&NodeView>,
    maintenance_until_ms: Option<i64>,
    now_ms: i64,
) -> (NodeView, i64) {
    let id = &copy.identity;
    let interval = id.interval_ms;
    let alive = is_alive(copy, now_ms);
    let mut next = if alive {
        health::alive_until(copy.last_seen_ms, interval).saturating_add(1)
    } else {
        i64::MAX
    };
    let mut soonest = |until: i64| next = next.min(until.saturating_add(1));
    if let Some(until) = maintenance_until_ms {
        soonest(until);
    }

    let fresh = Freshness {
        now_ms,
        interval_ms: interval,
        alive,
    };
    for v in &copy.values {
        if fresh.counts(v) {
            soonest(fresh.fresh_until(v.slot.is_log(), v.updated_ms));
        }
    }
    let (summary, last) = summary::summarize(&copy.values, &fresh);
    let last_summary = (last != summary).then_some(last);

    let mut checks = Vec::with_capacity(copy.checks.len());
    for stored in &copy.checks {
        let until =
            health::check_fresh_until(stored.arrived_ms, stored.result.interval_ms, interval);
        let stale = !(alive && now_ms <= until);
        if !stale {
            soonest(until);
        }
        checks.push(ServedCheck {
            role: check_role(&stored.result),
            result: stored.result.clone(),
            stale,
        });
    }
    // Announced in Hello, no result yet: unknown, so that neither the node
    // nor the site is `ok` before its checks have spoken. Until a result
    // arrives the node's interval-based liveness is all that is known.
    for planned in &id.planned_checks {
        if copy.checks.iter().any(|c| c.result.name == planned.name) {
            continue;
        }
        let result = CheckResult {
            name: planned.name.clone(),
            kind: planned.kind.clone(),
            status: Health::Unknown as i32,
            message: "no result yet: the agent has not reported this check since it started".into(),
            role: planned.role,
            interval_ms: planned.interval_ms,
            ..CheckResult::default()
        };
        checks.push(ServedCheck {
            role: check_role(&result),
            result: Arc::new(result),
            stale: !alive,
        });
    }
    let checks: Arc<[ServedCheck]> = match previous {
        Some(p)
            if p.checks.len() == checks.len()
                && p.checks.iter().zip(&checks).all(|(a, b)| a.same(b)) =>
        {
            p.checks.clone()
        }
        _ => checks.into(),
    };
    let statuses = || checks.iter().map(|c| (c.role, c.status()));
    let node_health = if alive {
        statuses()
            .map(|(_, s)| s)
            .fold(Health::Ok, |a, b| a.worst(health::as_check_status(b)))
    } else {
        Health::Down
    };
    let role_health = id
        .roles
        .iter()
        .map(|&role| RoleHealth {
            role: role as i32,
            health: health::role_health(role, &id.roles, statuses(), !alive) as i32,
        })
        .collect();

    let b = &copy.backends;
    let mut backends = ServedBackends {
        servers: b.servers.clone(),
        timestamp_ms: b.arrived_ms,
        ..Default::default()
    };
    if !b.servers.is_empty() {
        let check_ms = copy
            .checks
            .iter()
            .filter(|c| c.result.kind == "haproxy" && c.result.interval_ms > 0)
            .map(|c| c.result.interval_ms)
            .max()
            .unwrap_or(DEFAULT_HAPROXY_CHECK_MS);
        let until = health::check_fresh_until(b.arrived_ms, check_ms, interval);
        if let Some(error) = &b.error {
            backends.stale = true;
            backends.error = error.clone();
        } else if !alive {
            backends.stale = true;
            backends.error = "the node is down".into();
        } else if now_ms > until {
            backends.stale = true;
            backends.error = format!(
                "no HAProxy sample for {} s",
                (now_ms - b.arrived_ms) / 1_000
            )
            .into();
        } else {
            soonest(until);
            backends.up = metrics::backends_up(&b.servers);
        }
    }

    let cpu_values: Arc<[f64]> = match previous {
        Some(p) if alive && p.cpu_seq == cpu.seq() && !p.cpu.is_empty() => p.cpu.clone(),
        _ if alive => cpu.values().into(),
        _ => Arc::from([]),
    };
    let view = NodeView {
        identity: id.clone(),
        status: NodeStatus {
            health: node_health as i32,
            connected: copy.connected,
            last_seen_ms: copy.last_seen_ms,
            summary: Some(summary),
            last_summary,
            role_health,
            in_maintenance: maintenance_until_ms.is_some(),
            maintenance_until_ms: maintenance_until_ms.unwrap_or(0),
        },
        cpu: cpu_values,
        cpu_seq: cpu.seq(),
        checks,
        facts: copy.facts.clone(),
        backends,
        metrics: copy
            .values
            .iter()
            .filter(|v| fresh.counts(v))
            .filter_map(|v| {
                Some(MetricValue {
                    key: v.key.clone()?,
                    value: v.value,
                })
            })
            .collect(),
    };
    (view, next)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::copy::SlotValue;
    use crate::slot::Slot;
    use crate::store::Identity as Id;
    use crate::store::{Backends, StoredCheck};
    use stacktop_proto::v1::BackendServer;

    const NOW: i64 = 1_700_000_000_000;

    fn copy(roles: &[Role]) -> NodeCopy {
        NodeCopy {
            identity: Arc::new(Id {
                name: "n".into(),
                instance_id: "i".into(),
                roles: roles.to_vec(),
                interval_ms: 1_000,
                ..Id::default()
            }),
            connected: true,
            last_seen_ms: NOW,
            values: Vec::new(),
            sources: Vec::new(),
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

    fn role_health(e: &NodeView, role: Role) -> Health {
        e.status
            .role_health
            .iter()
            .find(|r| r.role() == role)
            .map(|r| r.health())
            .unwrap()
    }

    #[test]
    fn announced_checks_are_unknown_until_they_report() {
        let mut c = copy(&[Role::Web]);
        let planned = |name: &str, kind: &str| stacktop_proto::v1::PlannedCheck {
            name: name.into(),
            kind: kind.into(),
            interval_ms: 2_000,
            role: Role::Unspecified as i32,
        };
        let mut id = (*c.identity).clone();
        id.planned_checks = vec![planned("nginx", "nginx"), planned("exposure", "exposure")];
        c.identity = Arc::new(id);
        // Just connected, nothing reported: not `ok`.
        let (e, _) = evaluate(&c, &CpuRing::default(), None, NOW);
        assert_eq!(e.health(), Health::Unknown);
        assert_eq!(role_health(&e, Role::Web), Health::Unknown);
        let state = e.state();
        assert_eq!(state.checks.len(), 2);
        assert!(state.checks[0].message.contains("no result yet"));
        // One reported: the other still holds the node at unknown.
        c.checks = vec![check("nginx", "nginx", Health::Ok, 2_000)];
        let (e, _) = evaluate(&c, &CpuRing::default(), None, NOW);
        assert_eq!(e.health(), Health::Unknown);
        assert_eq!(e.state().checks.len(), 2);
        c.checks
            .push(check("exposure", "exposure", Health::Ok, 15_000));
        let (e, _) = evaluate(&c, &CpuRing::default(), None, NOW);
        assert_eq!(e.health(), Health::Ok);
    }

    #[test]
    fn a_dual_role_node_is_judged_per_role() {
        let mut c = copy(&[Role::Web, Role::App]);
        c.checks = vec![
            check("nginx", "nginx", Health::Crit, 2_000),
            check("app:x", "app", Health::Ok, 2_000),
            check("exposure", "exposure", Health::Ok, 15_000),
        ];
        let (e, _) = evaluate(&c, &CpuRing::default(), None, NOW);
        assert_eq!(e.health(), Health::Crit);
        assert_eq!(role_health(&e, Role::Web), Health::Crit);
        assert_eq!(role_health(&e, Role::App), Health::Ok);
        // Served checks say which role they speak for.
        let state = e.state();
        assert_eq!(state.checks[0].role(), Role::Web);
        assert_eq!(state.checks[2].role(), Role::Unspecified);
    }

    #[test]
    fn a_down_node_serves_nothing_as_current() {
        let mut c = copy(&[Role::Lb]);
        c.values = vec![SlotValue {
            slot: Slot::Cpu,
            key: None,
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
        let (live, next) = evaluate(&c, &cpu, None, NOW + 500);
        let state = live.state();
        assert_eq!(state.summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert_eq!(state.last_summary, None);
        assert_eq!(state.backends_up, Some(1));
        assert_eq!(state.cpu_recent, [0.5]);
        // The first thing to change by itself: the node going down.
        assert_eq!(next, NOW + 3_001);

        let (down, next) = evaluate(&c, &cpu, Some(&live), NOW + 3_001);
        assert_eq!(role_health(&down, Role::Lb), Health::Down);
        let down = down.state();
        assert_eq!(down.health(), Health::Down);
        assert_eq!(down.summary.unwrap().cpu_usage_ratio, None);
        assert_eq!(down.last_summary.unwrap().cpu_usage_ratio, Some(0.5));
        assert!(down.checks[0].stale);
        assert_eq!(down.checks[0].status(), Health::Unknown);
        assert_eq!(down.checks[0].last_status(), Health::Ok);
        assert!(down.backends_stale);
        assert_eq!(down.backends_up, None);
        assert!(down.cpu_recent.is_empty());
        assert_eq!(next, i64::MAX);
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
        let e = evaluate(&c, &CpuRing::default(), None, NOW).0.state();
        assert!(e.backends_stale);
        assert_eq!(e.backends_error, "connection refused");
        assert_eq!(e.backends_up, None);
        assert_eq!(e.backends.len(), 1, "the last sample is kept");
    }

    #[test]
    fn a_check_that_stops_reporting_goes_stale() {
        let mut c = copy(&[Role::Db]);
        c.checks = vec![check("mysql", "mysql", Health::Ok, 2_000)];
        // Keep the node alive: it keeps sending batches.
        c.last_seen_ms = NOW + 20_000;
        let (fresh, _) = evaluate(&c, &CpuRing::default(), None, NOW + 8_000);
        assert!(!fresh.checks[0].stale);
        // Unchanged checks are shared, not copied.
        let (again, _) = evaluate(&c, &CpuRing::default(), Some(&fresh), NOW + 8_000);
        assert!(Arc::ptr_eq(&fresh.checks, &again.checks));
        let (stale, _) = evaluate(&c, &CpuRing::default(), Some(&fresh), NOW + 8_001);
        assert!(stale.checks[0].stale);
        assert_eq!(stale.health(), Health::Unknown);
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
