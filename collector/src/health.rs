//! Health rules: pure functions from what the collector knows to node, tier
//! and site health. Nothing here reads a clock; callers pass `now`.
//!
//! # Node
//!
//! - `down` when nothing arrived from the agent for more than
//!   [`SILENT_INTERVALS`] intervals (the interval the agent announced in
//!   Hello). This holds even while the agent's stream is still open, and it
//!   heals by itself as soon as frames arrive again. A node that was never
//!   heard from is `down`.
//! - otherwise the worst of its check statuses (`ok < unknown < warn < crit`);
//!   a check with an unspecified status counts as `unknown`;
//! - `ok` when it is alive and has no checks.
//!
//! # A node as one of its roles
//!
//! A check speaks for one role (nginx -> web, app/http -> app, mysql and
//! replication -> db, haproxy -> lb; see `stacktop_proto::metrics::check_role`)
//! or for the whole node (exposure, tcp, dns...). A node's health *as role
//! R* is the worst of its checks for R and its node-wide checks (a check for
//! a role the node does not have counts node-wide), or `down` when silent:
//! a web+app server whose nginx died is `crit` as web and still `ok` as app.
//!
//! # Staleness of a check
//!
//! A result is stale once [`STALE_CHECK_RUNS`] of the check's runs went by
//! without a new one (plus one node interval for the batch that carries it
//! and a second of slack), or when the node is down. A stale result counts
//! as `unknown`: it says nothing about now.
//!
//! # Tier (one per role, lb / web / app / db)
//!
//! A node counts as **healthy** when its health as the tier's role is `ok`,
//! `warn` or `unknown`: it is up and serving, perhaps degraded. `crit` and
//! `down` nodes are not healthy.
//! `spof` is `healthy < 2`. The tier's health is:
//!
//! - `down` when no node is healthy;
//! - `crit` when redundancy was lost: the tier has two or more nodes but only
//!   one is healthy (one more failure is an outage);
//! - otherwise the worst health among its healthy nodes, raised to `warn`
//!   when some of its nodes are not healthy.
//!
//! A tier that is a SPOF *by design* (one node, healthy) is not escalated:
//! `spof` says so, and an operator of a one-server stack should not stare at
//! a permanent warning.
//!
//! Nodes without roles form the "unassigned" group, which is not a tier and
//! never affects the site.
//!
//! # Site
//!
//! The path user -> lb -> web -> app -> db, over the tiers that have nodes:
//! the worst of their healths. So the site is `down` exactly when a tier on
//! the path has no healthy node, `crit` when a tier lost its redundancy,
//! `warn` when a tier is degraded. With no tiers at all it is `unknown`.

use stacktop_proto::{Health, ROLES, Role};

/// A node is down after this many intervals of silence.
pub const SILENT_INTERVALS: i64 = 3;

/// Interval assumed when a node announced none (it never does after
/// validation; this keeps the arithmetic safe).
pub const FALLBACK_INTERVAL_MS: u32 = 1_000;

/// A check result is stale after this many of its runs without a new one.
pub const STALE_CHECK_RUNS: i64 = 3;

/// A check's interval when the agent did not say (agents before 0.2).
pub const UNKNOWN_CHECK_INTERVAL_MS: i64 = 60_000;

/// Slack on top of every staleness window: a value reaches the collector in
/// the next batch, and clocks tick unevenly.
pub const STALE_SLACK_MS: i64 = 1_000;

fn interval_or_fallback(interval_ms: u32) -> i64 {
    i64::from(if interval_ms == 0 {
        FALLBACK_INTERVAL_MS
    } else {
        interval_ms
    })
}

/// The last instant (collector clock, Unix ms) at which a node last heard
/// from at `last_seen_ms` is still alive; it is down after it.
pub fn alive_until(last_seen_ms: i64, interval_ms: u32) -> i64 {
    last_seen_ms.saturating_add(SILENT_INTERVALS * interval_or_fallback(interval_ms))
}

/// The last instant a value that arrived at `arrived_ms` from a node sending
/// every `interval_ms` is fresh: the node's liveness window.
pub fn value_fresh_until(arrived_ms: i64, interval_ms: u32) -> i64 {
    alive_until(arrived_ms, interval_ms)
}

/// The last instant a check result that arrived at `arrived_ms` is fresh,
/// for a check run every `check_interval_ms` (0: unknown) on a node sending
/// every `node_interval_ms`.
pub fn check_fresh_until(arrived_ms: i64, check_interval_ms: u32, node_interval_ms: u32) -> i64 {
    let check = if check_interval_ms == 0 {
        UNKNOWN_CHECK_INTERVAL_MS
    } else {
        i64::from(check_interval_ms)
    };
    arrived_ms
        .saturating_add(STALE_CHECK_RUNS * check)
        .saturating_add(interval_or_fallback(node_interval_ms))
        .saturating_add(STALE_SLACK_MS)
}

/// A node's health as `role`: worst over `checks` (each with the role it
/// speaks for and its status) that belong to `role` or to the whole node,
/// where a check for a role the node does not have (`node_roles`) counts
/// for the whole node; `down` when the node is silent.
pub fn role_health(
    role: Role,
    node_roles: &[Role],
    checks: impl IntoIterator<Item = (Role, Health)>,
    silent: bool,
) -> Health {
    if silent {
        return Health::Down;
    }
    checks
        .into_iter()
        .filter(|&(check_role, _)| {
            check_role == role
                || check_role == Role::Unspecified
                || !node_roles.contains(&check_role)
        })
        .map(|(_, status)| as_check_status(status))
        .fold(Health::Ok, Health::worst)
}

/// A check's status as it counts for health: unspecified is unknown; a
/// check never reports DOWN, so one that does counts as crit (a live node
/// is never shown as a silent one).
pub fn as_check_status(status: Health) -> Health {
    match status {
        Health::Unspecified => Health::Unknown,
        Health::Down => Health::Crit,
        other => other,
    }
}

/// True when the agent has been silent for more than [`SILENT_INTERVALS`]
/// intervals at `now_ms`, or was never heard from (`last_seen_ms == 0`).
pub fn is_silent(last_seen_ms: i64, interval_ms: u32, now_ms: i64) -> bool {
    if last_seen_ms <= 0 {
        return true;
    }
    let interval = if interval_ms == 0 {
        FALLBACK_INTERVAL_MS
    } else {
        interval_ms
    };
    now_ms.saturating_sub(last_seen_ms) > SILENT_INTERVALS * i64::from(interval)
}

/// A node's health from its check statuses and liveness.
pub fn node_health(
    checks: impl IntoIterator<Item = Health>,
    last_seen_ms: i64,
    interval_ms: u32,
    now_ms: i64,
) -> Health {
    if is_silent(last_seen_ms, interval_ms, now_ms) {
        return Health::Down;
    }
    checks
        .into_iter()
        .map(as_check_status)
        .fold(Health::Ok, Health::worst)
}

/// Whether a node of this health counts towards its tier's healthy nodes.
pub fn is_healthy(health: Health) -> bool {
    matches!(
        health,
        Health::Ok | Health::Warn | Health::Unknown | Health::Unspecified
    )
}

/// How one tier is doing, before it becomes a `TierState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// The role this tier groups.
    pub role: Role,
    /// Nodes counted as healthy (see the module docs).
    pub healthy: u32,
    /// All nodes with the role.
    pub total: u32,
    /// Fewer than two healthy nodes.
    pub spof: bool,
    /// The tier's health (see the module docs).
    pub health: Health,
}

/// The health of one tier from the healths of its nodes.
pub fn tier(role: Role, members: impl IntoIterator<Item = Health>) -> Tier {
    let mut healthy = 0u32;
    let mut total = 0u32;
    let mut worst_healthy = Health::Ok;
    for health in members {
        total += 1;
        if is_healthy(health) {
            healthy += 1;
            worst_healthy = worst_healthy.worst(health);
        }
    }
    let health = if healthy == 0 {
        Health::Down
    } else if total >= 2 && healthy == 1 {
        Health::Crit
    } else if healthy < total {
        worst_healthy.worst(Health::Warn)
    } else {
        worst_healthy
    };
    Tier {
        role,
        healthy,
        total,
        spof: healthy < 2,
        health,
    }
}

/// Tiers for every role that has at least one node, in [`ROLES`] order.
/// `nodes` yields each node's roles and health; nodes without roles are
/// ignored (they are the unassigned group).
pub fn tiers<'a>(nodes: impl IntoIterator<Item = (&'a [Role], Health)> + Clone) -> Vec<Tier> {
    tiers_by_role(
        nodes
            .into_iter()
            .flat_map(|(roles, health)| roles.iter().map(move |&role| (role, health))),
    )
}

/// Tiers from `(role, health as that role)` pairs, one per node and role,
/// for every role that has at least one member, in [`ROLES`] order.
pub fn tiers_by_role(members: impl IntoIterator<Item = (Role, Health)>) -> Vec<Tier> {
    let mut by_role: [Vec<Health>; 4] = Default::default();
    for (role, health) in members {
        if let Some(i) = ROLES.iter().position(|&r| r == role) {
            by_role[i].push(health);
        }
    }
    ROLES
        .iter()
        .zip(by_role)
        .filter(|(_, members)| !members.is_empty())
        .map(|(&role, members)| tier(role, members))
        .collect()
}

/// The site's health from its tiers (see the module docs).
pub fn site(tiers: &[Tier]) -> Health {
    tiers
        .iter()
        .map(|t| t.health)
        .reduce(Health::worst)
        .unwrap_or(Health::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn alive_node_without_checks_is_ok() {
        assert_eq!(node_health([], NOW - 500, 1_000, NOW), Health::Ok);
    }

    #[test]
    fn node_is_worst_of_its_checks() {
        let checks = [Health::Ok, Health::Warn, Health::Unknown];
        assert_eq!(node_health(checks, NOW, 1_000, NOW), Health::Warn);
        let checks = [Health::Ok, Health::Crit, Health::Warn];
        assert_eq!(node_health(checks, NOW, 1_000, NOW), Health::Crit);
        assert_eq!(
            node_health([Health::Unspecified], NOW, 1_000, NOW),
            Health::Unknown
        );
    }

    #[test]
    fn node_goes_down_after_three_silent_intervals_and_comes_back() {
        let seen = NOW;
        // Exactly three intervals of silence is still alive...
        assert_eq!(node_health([], seen, 1_000, seen + 3_000), Health::Ok);
        // ...one millisecond more is down, whatever the checks said.
        assert_eq!(
            node_health([Health::Ok], seen, 1_000, seen + 3_001),
            Health::Down
        );
        // The interval comes from Hello: a 10 s agent gets 30 s.
        assert_eq!(node_health([], seen, 10_000, seen + 29_000), Health::Ok);
        assert_eq!(node_health([], seen, 10_000, seen + 30_001), Health::Down);
        // A frame arriving later heals it by itself.
        let later = seen + 60_000;
        assert_eq!(node_health([], later, 1_000, later + 10), Health::Ok);
    }

    #[test]
    fn never_seen_node_is_down() {
        assert_eq!(node_health([], 0, 1_000, NOW), Health::Down);
    }

    #[test]
    fn healthy_counts_ok_warn_unknown() {
        assert!(is_healthy(Health::Ok));
        assert!(is_healthy(Health::Warn));
        assert!(is_healthy(Health::Unknown));
        assert!(!is_healthy(Health::Crit));
        assert!(!is_healthy(Health::Down));
    }

    #[test]
    fn tier_rules() {
        let t = tier(Role::Web, [Health::Ok, Health::Ok, Health::Ok]);
        assert_eq!(
            (t.healthy, t.total, t.spof, t.health),
            (3, 3, false, Health::Ok)
        );

        let t = tier(Role::Web, [Health::Ok, Health::Warn]);
        assert_eq!((t.healthy, t.spof, t.health), (2, false, Health::Warn));

        let t = tier(Role::Web, [Health::Ok, Health::Ok, Health::Down]);
        assert_eq!(
            (t.healthy, t.total, t.spof, t.health),
            (2, 3, false, Health::Warn)
        );

        // Redundancy lost.
        let t = tier(Role::Web, [Health::Ok, Health::Crit]);
        assert_eq!((t.healthy, t.spof, t.health), (1, true, Health::Crit));

        // SPOF by design: flagged, not escalated.
        let t = tier(Role::Lb, [Health::Ok]);
        assert_eq!(
            (t.healthy, t.total, t.spof, t.health),
            (1, 1, true, Health::Ok)
        );

        let t = tier(Role::Db, [Health::Down, Health::Crit]);
        assert_eq!((t.healthy, t.spof, t.health), (0, true, Health::Down));
    }

    #[test]
    fn tiers_follow_role_order_and_skip_unassigned() {
        let web_app = [Role::Web, Role::App];
        let db = [Role::Db];
        let none: [Role; 0] = [];
        let nodes = [
            (&db[..], Health::Ok),
            (&web_app[..], Health::Ok),
            (&none[..], Health::Down),
        ];
        let tiers = tiers(nodes.iter().copied());
        let roles: Vec<Role> = tiers.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::Web, Role::App, Role::Db]);
        assert_eq!(site(&tiers), Health::Ok);
    }

    #[test]
    fn site_is_down_when_a_tier_has_no_healthy_node() {
        let lb = [Role::Lb];
        let web = [Role::Web];
        let nodes = [
            (&lb[..], Health::Ok),
            (&web[..], Health::Down),
            (&web[..], Health::Crit),
        ];
        let tiers = tiers(nodes.iter().copied());
        assert_eq!(site(&tiers), Health::Down);
    }

    #[test]
    fn a_node_is_judged_as_each_role_by_that_roles_checks() {
        let roles = [Role::Web, Role::App];
        let checks = [
            (Role::Web, Health::Crit),
            (Role::App, Health::Ok),
            (Role::Unspecified, Health::Warn),
        ];
        assert_eq!(role_health(Role::Web, &roles, checks, false), Health::Crit);
        assert_eq!(role_health(Role::App, &roles, checks, false), Health::Warn);
        assert_eq!(role_health(Role::App, &roles, checks, true), Health::Down);
        // A check for a role the node does not have counts node-wide.
        let db_check = [(Role::Db, Health::Crit)];
        assert_eq!(
            role_health(Role::Web, &roles, db_check, false),
            Health::Crit
        );
        // The App tier stays healthy when only web1's nginx fails.
        let tiers = tiers_by_role([
            (Role::Web, Health::Crit),
            (Role::App, Health::Ok),
            (Role::Web, Health::Ok),
            (Role::App, Health::Ok),
        ]);
        assert_eq!((tiers[0].role, tiers[0].healthy), (Role::Web, 1));
        assert_eq!(
            (tiers[1].role, tiers[1].healthy, tiers[1].spof),
            (Role::App, 2, false)
        );
    }

    #[test]
    fn checks_go_stale_after_three_runs() {
        // 2 s checks on a 1 s node: 3 runs + one batch + slack.
        assert_eq!(check_fresh_until(NOW, 2_000, 1_000), NOW + 8_000);
        assert_eq!(
            check_fresh_until(NOW, 0, 1_000),
            NOW + 3 * UNKNOWN_CHECK_INTERVAL_MS + 2_000
        );
        assert_eq!(alive_until(NOW, 1_000), NOW + 3_000);
        assert!(!is_silent(NOW, 1_000, alive_until(NOW, 1_000)));
        assert!(is_silent(NOW, 1_000, alive_until(NOW, 1_000) + 1));
    }

    #[test]
    fn site_degrades_with_its_worst_tier() {
        let web = [Role::Web];
        let db = [Role::Db];
        let nodes = [
            (&web[..], Health::Ok),
            (&web[..], Health::Ok),
            (&web[..], Health::Down),
            (&db[..], Health::Ok),
        ];
        assert_eq!(site(&tiers(nodes.iter().copied())), Health::Warn);
        assert_eq!(site(&[]), Health::Unknown);
    }
}
