//! The nodes view's order: its columns ([`SortColumn`]), the Shift+letter
//! key of each ([`SortColumn::key`], underlined in the column heading) and
//! how two nodes compare by one of them ([`compare`]).
//!
//! Values are the ones the table shows (the collector's current summary,
//! none for a down node), so a node sorts where its row says it should; a
//! value the table shows as `—` sorts after every known one, in either
//! direction, and ties go by name.

use std::cmp::Ordering;

use stacktop_proto::v1::NodeState;
use stacktop_proto::{Health, Role};

use crate::view;

/// A column of the nodes view, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    /// Health, worst first.
    Status,
    /// Name.
    #[default]
    Name,
    /// Roles (in path order).
    Roles,
    /// CPU usage.
    Cpu,
    /// Memory usage.
    Mem,
    /// Load (1 min).
    Load,
    /// Network received.
    NetRx,
    /// Network sent.
    NetTx,
    /// Requests per second.
    Qps,
    /// The checks' summary (worst status first).
    Checks,
    /// Last seen (longest silent first).
    Seen,
}

impl SortColumn {
    /// Every column, in the order `s` cycles through them.
    pub const ALL: [SortColumn; 11] = [
        SortColumn::Status,
        SortColumn::Name,
        SortColumn::Roles,
        SortColumn::Cpu,
        SortColumn::Mem,
        SortColumn::Load,
        SortColumn::NetRx,
        SortColumn::NetTx,
        SortColumn::Qps,
        SortColumn::Checks,
        SortColumn::Seen,
    ];

    /// The column's heading.
    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Status => "STATUS",
            SortColumn::Name => "NAME",
            SortColumn::Roles => "ROLES",
            SortColumn::Cpu => "CPU",
            SortColumn::Mem => "MEM",
            SortColumn::Load => "LOAD",
            SortColumn::NetRx => "NET RX",
            SortColumn::NetTx => "NET TX",
            SortColumn::Qps => "QPS",
            SortColumn::Checks => "CHECKS",
            SortColumn::Seen => "SEEN",
        }
    }

    /// The uppercase letter that sorts by this column (Shift+letter in the
    /// nodes view). Each is a letter of the column's title, so the heading
    /// can underline it, and none is `S` (reverse) or `G` (last row).
    pub fn key(self) -> char {
        match self {
            SortColumn::Status => 'U',
            SortColumn::Name => 'N',
            SortColumn::Roles => 'R',
            SortColumn::Cpu => 'C',
            SortColumn::Mem => 'M',
            SortColumn::Load => 'L',
            SortColumn::NetRx => 'X',
            SortColumn::NetTx => 'T',
            SortColumn::Qps => 'Q',
            SortColumn::Checks => 'H',
            SortColumn::Seen => 'E',
        }
    }

    /// The column whose [`key`](Self::key) is `c`, if any.
    pub fn for_key(c: char) -> Option<Self> {
        Self::ALL.into_iter().find(|col| col.key() == c)
    }

    /// Where [`key`](Self::key) sits in [`title`](Self::title), for the
    /// heading's underline: the last occurrence (`NET TX`'s T is the one of
    /// `TX`).
    pub fn key_at(self) -> usize {
        self.title().rfind(self.key()).unwrap_or(0)
    }

    /// The column after this one (`s`), the first after the last.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// How node `a` compares with node `b` by `column` (`reverse`: the other
/// way round), each with the tier its row sits under (its health is its
/// health as that role). Unknown values go last either way; ties go by
/// name.
pub fn compare(
    column: SortColumn,
    reverse: bool,
    (a, tier_a): (&NodeState, Role),
    (b, tier_b): (&NodeState, Role),
) -> Ordering {
    let flip = |o: Ordering| if reverse { o.reverse() } else { o };
    let by_name = a.name.cmp(&b.name);
    let numbers = |f: &dyn Fn(&NodeState) -> Option<f64>| {
        // Largest first reads like top: the busiest node on top.
        match (
            f(a).filter(|v| v.is_finite()),
            f(b).filter(|v| v.is_finite()),
        ) {
            (Some(x), Some(y)) => flip(y.total_cmp(&x)).then(by_name),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => by_name,
        }
    };
    match column {
        SortColumn::Name => flip(by_name),
        SortColumn::Status => {
            let s = |n: &NodeState, t: Role| health_under(n, t).severity();
            flip(s(b, tier_b).cmp(&s(a, tier_a))).then(by_name)
        }
        SortColumn::Roles => {
            let r = |n: &NodeState| n.roles.clone();
            flip(r(a).cmp(&r(b))).then(by_name)
        }
        SortColumn::Cpu => numbers(&|n| view::summary(n).cpu_usage_ratio),
        SortColumn::Mem => numbers(&|n| view::summary(n).memory_used_ratio),
        SortColumn::Load => numbers(&|n| view::summary(n).load1),
        SortColumn::NetRx => numbers(&|n| view::summary(n).network_receive_bytes_per_second),
        SortColumn::NetTx => numbers(&|n| view::summary(n).network_transmit_bytes_per_second),
        SortColumn::Qps => numbers(&|n| view::summary(n).qps),
        SortColumn::Checks => {
            let worst = |n: &NodeState| {
                if n.health() == Health::Down {
                    return None;
                }
                view::checks_summary(&n.checks).map(|(_, h)| h.severity())
            };
            match (worst(a), worst(b)) {
                (Some(x), Some(y)) => flip(y.cmp(&x)).then(by_name),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => by_name,
            }
        }
        SortColumn::Seen => {
            // Longest silent first; never seen last.
            let seen = |n: &NodeState| (n.last_seen_ms > 0).then_some(n.last_seen_ms);
            match (seen(a), seen(b)) {
                (Some(x), Some(y)) => flip(x.cmp(&y)).then(by_name),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => by_name,
            }
        }
    }
}

/// The node's health under `tier`: its health as that role when the
/// collector reported one, else its own (always `down` when it is down).
pub fn health_under(node: &NodeState, tier: Role) -> Health {
    let health = node.health();
    if health == Health::Down {
        return health;
    }
    node.role_health
        .iter()
        .find(|r| r.role() == tier)
        .map_or(health, |r| r.health())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::NodeSummary;

    fn node(name: &str, cpu: Option<f64>, health: Health) -> NodeState {
        NodeState {
            name: name.into(),
            health: health as i32,
            summary: Some(NodeSummary {
                cpu_usage_ratio: cpu,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sorted(column: SortColumn, reverse: bool, nodes: &[NodeState]) -> Vec<&str> {
        let mut v: Vec<&NodeState> = nodes.iter().collect();
        v.sort_by(|a, b| compare(column, reverse, (a, Role::Web), (b, Role::Web)));
        v.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn numbers_sort_busiest_first_and_unknown_last_both_ways() {
        let nodes = [
            node("a", Some(0.2), Health::Ok),
            node("b", Some(0.9), Health::Ok),
            node("down", Some(0.99), Health::Down),
            node("c", None, Health::Ok),
        ];
        assert_eq!(
            sorted(SortColumn::Cpu, false, &nodes),
            ["b", "a", "c", "down"]
        );
        assert_eq!(
            sorted(SortColumn::Cpu, true, &nodes),
            ["a", "b", "c", "down"]
        );
    }

    #[test]
    fn status_sorts_worst_first() {
        let nodes = [
            node("a", None, Health::Ok),
            node("b", None, Health::Down),
            node("c", None, Health::Warn),
        ];
        assert_eq!(sorted(SortColumn::Status, false, &nodes), ["b", "c", "a"]);
        assert_eq!(sorted(SortColumn::Name, true, &nodes), ["c", "b", "a"]);
        assert_eq!(SortColumn::Seen.next(), SortColumn::Status);
    }

    #[test]
    fn every_column_has_its_own_letter_from_its_title() {
        let mut seen = std::collections::HashSet::new();
        for col in SortColumn::ALL {
            let key = col.key();
            assert!(seen.insert(key), "{key} is taken twice");
            // S reverses, G goes to the last row.
            assert!(!"SG".contains(key), "{key} is bound already");
            assert_eq!(col.title()[col.key_at()..].chars().next(), Some(key));
            assert_eq!(SortColumn::for_key(key), Some(col));
        }
        assert_eq!(SortColumn::NetTx.key_at(), "NET ".len());
        assert_eq!(SortColumn::for_key('S'), None);
        assert_eq!(SortColumn::for_key('n'), None);
    }
}
