//! The stack as the operator pictures it: user -> LB -> web -> app -> DB
//! primary -> replicas, for the topology screen.
//!
//! [`Topology::of`] lays the fleet out in boxes along the request path.
//! Every node is drawn once, in the box of its first role in path order; a
//! tier whose nodes all sit in an earlier box joins that box (a web+app
//! server makes one "Web + App" box, a node with every role one box with
//! every tier). The DB tier splits into the primary and the replicas when
//! the nodes' `db_role` facts say which is which.
//!
//! Along the boxes go the seed's named weaknesses, where the data shows
//! them: a tier the collector calls a SPOF, a single writable primary, a
//! node that runs every role, a node whose `exposure` check reports ports
//! beyond its allow-list; on the LB -> web edge, HAProxy's view of each
//! backend server with the node the collector matched it to, and the
//! servers HAProxy reaches in plain text. Everything here is a lookup over
//! what the collector sent: health, tier counts, SPOF, the backends UP
//! count and which node a server is are its verdicts; this module only
//! groups them.
//!
//! A layout borrows the model's nodes rather than copying them: it is
//! made for every frame of a fleet of thousands, in one pass over the
//! nodes per tier.

use stacktop_proto::v1::{BackendServer, NodeState, TierState};
use stacktop_proto::{Health, ROLES, Role};

use crate::model::{Model, NodeKey};
use crate::sort::health_under;
use crate::view;

/// A node drawn in a box: its key and its state in the model.
pub type Member<'a> = (&'a NodeKey, &'a NodeState);

/// What a box holds: one or more tiers (or the DB tier's primary or
/// replicas), and the nodes drawn in it.
#[derive(Debug, Clone, PartialEq)]
pub struct TierBox<'a> {
    /// The tiers the box stands for, in path order (empty: nodes without a
    /// role).
    pub tiers: Vec<Role>,
    /// Which part of the DB tier, when it is split.
    pub db_part: Option<DbPart>,
    /// The nodes drawn here, by name.
    pub nodes: Vec<Member<'a>>,
    /// Nodes of these tiers drawn in an earlier box (shared roles).
    pub shared: Vec<Member<'a>>,
    /// The weaknesses to mark on the box, in plain words.
    pub weaknesses: Vec<Weakness>,
}

/// The two halves of a replicated DB tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbPart {
    /// The writable primary (`db_role=primary`).
    Primary,
    /// The replicas (`db_role=replica`), and DB nodes that did not say.
    Replicas,
}

/// A weakness of the seed's stack, where the data shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weakness {
    /// The collector calls the tier a single point of failure.
    Spof {
        /// The tier.
        tier: Role,
        /// Healthy nodes of the tier.
        healthy: u32,
        /// Nodes of the tier.
        total: u32,
    },
    /// Exactly one node takes writes.
    SinglePrimary,
    /// A node runs every role: no separation of concerns.
    AllRoles(String),
    /// A node listens beyond its role's allow-list (the `exposure` check
    /// says so): the firewall the stack lacks.
    Exposed {
        /// The node.
        node: String,
        /// The check's message, e.g. `not allowed: 0.0.0.0:6379`.
        message: String,
    },
}

impl Weakness {
    /// The words on screen.
    pub fn text(&self) -> String {
        match self {
            Weakness::Spof { tier, total, .. } if *total <= 1 => {
                format!("SPOF: only one {} node", tier.tier_title())
            }
            Weakness::Spof {
                tier,
                healthy,
                total,
            } => format!(
                "SPOF: {healthy} of {total} {} nodes healthy",
                tier.tier_title()
            ),
            Weakness::SinglePrimary => "single writable primary".to_string(),
            Weakness::AllRoles(node) => format!("{node} runs every role"),
            Weakness::Exposed { node, message } => format!("{node} exposed: {message}"),
        }
    }
}

/// One replica on the primary -> replicas edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica<'a> {
    /// The node.
    pub key: &'a NodeKey,
    /// Its lag behind the primary; `None`: unknown (down, or not sent).
    pub lag_seconds: Option<f64>,
    /// Its health as a DB node.
    pub health: Health,
}

/// How HAProxy reaches its backend servers, as its agent read HAProxy's
/// config: the hop behind the load balancer the seed calls plain text.
/// Servers are named by their node when the collector matched one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HopTls {
    /// Servers reached without `ssl`.
    pub plain: Vec<String>,
    /// Servers reached with `ssl` but `verify none`.
    pub unverified: Vec<String>,
    /// Servers whose TLS is unknown, and the first reason given.
    pub unknown: Vec<String>,
    /// Why (the agent's words for the first unknown server).
    pub unknown_reason: String,
}

/// The fleet along the request path, box by box.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology<'a> {
    /// The boxes in path order; nodes without a role last.
    pub boxes: Vec<TierBox<'a>>,
    /// HAProxy's view of its backend servers (each server once, from the
    /// LB nodes whose sample is current, else from their last samples),
    /// with whether that sample is current. Each carries the node the
    /// collector matched it to (`node`, empty: none).
    pub backends: Vec<(&'a BackendServer, bool)>,
    /// TLS on the hop from the LB to those servers.
    pub hop_tls: HopTls,
    /// The replicas and their lag, for the DB edge.
    pub replicas: Vec<Replica<'a>>,
}

impl<'a> Topology<'a> {
    /// Lays out the merged fleet's nodes (every collector's, each once).
    pub fn of(model: &'a Model) -> Self {
        let nodes: Vec<Member<'a>> = model.nodes().collect();
        // Each node's first role along the path: the box it is drawn in.
        let first: Vec<Option<usize>> = nodes
            .iter()
            .map(|(_, n)| ROLES.iter().position(|r| has_role(n, *r)))
            .collect();
        let mut boxes: Vec<TierBox<'a>> = Vec::new();
        for (ri, role) in ROLES.into_iter().enumerate() {
            let mut own = Vec::new();
            let mut shared = Vec::new();
            // The first roles of the shared nodes.
            let mut shared_from = Vec::new();
            for (m, f) in nodes.iter().zip(&first) {
                match *f {
                    Some(f) if f == ri => own.push(*m),
                    Some(f) if f < ri && has_role(m.1, role) => {
                        shared.push(*m);
                        if !shared_from.contains(&f) {
                            shared_from.push(f);
                        }
                    }
                    _ => {}
                }
            }
            if own.is_empty() && shared.is_empty() {
                continue;
            }
            if own.is_empty()
                && let Some(last) = boxes.last_mut()
                && shared_from
                    .iter()
                    .all(|f| last.tiers.first() == Some(&ROLES[*f]))
            {
                // Every node of this tier is already drawn in the box
                // above: the tier joins it.
                last.tiers.push(role);
                continue;
            }
            if role == Role::Db {
                boxes.extend(db_boxes(own, shared));
            } else {
                boxes.push(TierBox {
                    tiers: vec![role],
                    db_part: None,
                    nodes: own,
                    shared,
                    weaknesses: Vec::new(),
                });
            }
        }
        let unassigned: Vec<Member<'a>> = nodes
            .iter()
            .zip(&first)
            .filter(|(_, f)| f.is_none())
            .map(|(m, _)| *m)
            .collect();
        if !unassigned.is_empty() {
            boxes.push(TierBox {
                tiers: Vec::new(),
                db_part: None,
                nodes: unassigned,
                shared: Vec::new(),
                weaknesses: Vec::new(),
            });
        }
        for b in &mut boxes {
            b.weaknesses = weaknesses(model, b);
        }
        let backends = backends(&nodes);
        let hop_tls = hop_tls(&backends);
        let replicas = nodes
            .iter()
            .filter(|(_, n)| has_role(n, Role::Db) && view::db_role(n) == Some("replica"))
            .map(|(k, n)| Replica {
                key: k,
                lag_seconds: view::replication_lag(n),
                health: health_under(n, Role::Db),
            })
            .collect();
        Topology {
            boxes,
            backends,
            hop_tls,
            replicas,
        }
    }

    /// Every node drawn, box by box: the order the selection moves in.
    pub fn order(&self) -> impl Iterator<Item = &'a NodeKey> + '_ {
        self.boxes
            .iter()
            .flat_map(|b| b.nodes.iter().map(|(k, _)| *k))
    }
}

fn has_role(node: &NodeState, role: Role) -> bool {
    node.roles().any(|r| r == role)
}

/// The LBs' backend servers: the current samples when any LB has one (a
/// down LB's last sample says nothing HAProxy sees now), else the last
/// ones, marked so; a server several LBs see, once.
fn backends<'a>(nodes: &[Member<'a>]) -> Vec<(&'a BackendServer, bool)> {
    let samples: Vec<(&'a NodeState, bool)> = nodes
        .iter()
        .filter(|(_, n)| has_role(n, Role::Lb) && !n.backends.is_empty())
        .map(|(_, n)| (*n, view::backends(n).is_some_and(|b| !b.stale)))
        .collect();
    let any_current = samples.iter().any(|(_, current)| *current);
    let mut backends: Vec<(&'a BackendServer, bool)> = Vec::new();
    for (n, current) in samples {
        if any_current && !current {
            continue;
        }
        for s in &n.backends {
            if !backends
                .iter()
                .any(|(b, _)| b.backend == s.backend && b.server == s.server)
            {
                backends.push((s, current));
            }
        }
    }
    backends
}

/// The server's name on screen: the node the collector matched it to,
/// else HAProxy's name for it.
pub fn server_label(server: &BackendServer) -> &str {
    if server.node.is_empty() {
        &server.server
    } else {
        &server.node
    }
}

/// Which servers HAProxy reaches in plain text, unverified, or unknown.
fn hop_tls(backends: &[(&BackendServer, bool)]) -> HopTls {
    let mut tls = HopTls::default();
    for (s, _) in backends {
        let label = server_label(s).to_string();
        match (s.ssl, s.ssl_verify) {
            (Some(false), _) => tls.plain.push(label),
            (Some(true), Some(false)) => tls.unverified.push(label),
            (Some(true), _) => {}
            (None, _) => {
                if tls.unknown.is_empty() {
                    tls.unknown_reason = s.ssl_unknown.clone();
                }
                tls.unknown.push(label);
            }
        }
    }
    tls
}

/// The DB box, or the primary's and the replicas' when the facts say
/// which node is which.
fn db_boxes<'a>(own: Vec<Member<'a>>, shared: Vec<Member<'a>>) -> Vec<TierBox<'a>> {
    let is_primary = |(_, n): &Member<'a>| view::db_role(n) == Some("primary");
    let all = || own.iter().chain(shared.iter());
    if !all().any(is_primary) || all().all(is_primary) {
        return vec![TierBox {
            tiers: vec![Role::Db],
            db_part: None,
            nodes: own,
            shared,
            weaknesses: Vec::new(),
        }];
    }
    let split = |members: &[Member<'a>], primary: bool| -> Vec<Member<'a>> {
        members
            .iter()
            .filter(|m| is_primary(m) == primary)
            .copied()
            .collect()
    };
    vec![
        TierBox {
            tiers: vec![Role::Db],
            db_part: Some(DbPart::Primary),
            nodes: split(&own, true),
            shared: split(&shared, true),
            weaknesses: Vec::new(),
        },
        TierBox {
            tiers: vec![Role::Db],
            db_part: Some(DbPart::Replicas),
            nodes: split(&own, false),
            shared: split(&shared, false),
            weaknesses: Vec::new(),
        },
    ]
}

/// The weaknesses to mark on box `b`.
fn weaknesses(model: &Model, b: &TierBox) -> Vec<Weakness> {
    let mut out = Vec::new();
    // The replicas' box carries no SPOF mark of its own: the DB tier's is
    // on the primary's.
    if b.db_part != Some(DbPart::Replicas) {
        for tier in &b.tiers {
            if let Some(TierState {
                spof: true,
                healthy,
                total,
                ..
            }) = model.shown_tier(*tier)
            {
                out.push(Weakness::Spof {
                    tier: *tier,
                    healthy: *healthy,
                    total: *total,
                });
            }
        }
    }
    if b.db_part == Some(DbPart::Primary) && b.nodes.len() + b.shared.len() == 1 {
        out.push(Weakness::SinglePrimary);
    }
    for (_, node) in &b.nodes {
        if ROLES.iter().all(|r| has_role(node, *r)) {
            out.push(Weakness::AllRoles(node.name.clone()));
        }
        // A down node's checks are not current: no verdict from them.
        if node.health() == Health::Down {
            continue;
        }
        for check in &node.checks {
            if check.kind == "exposure" && !check.stale && check.status() == Health::Warn {
                out.push(Weakness::Exposed {
                    node: node.name.clone(),
                    message: check.message.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::{
        CheckResult, FleetSnapshot, FleetTotals, Label, NodeSummary, TierState,
    };

    fn node(name: &str, roles: &[Role]) -> NodeState {
        NodeState {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            health: Health::Ok as i32,
            ..Default::default()
        }
    }

    fn model(nodes: Vec<NodeState>, tiers: Vec<TierState>) -> Model {
        Model::from_snapshot(
            "http://test",
            FleetSnapshot {
                nodes,
                totals: Some(FleetTotals {
                    tiers,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    fn names<'a>(members: &[Member<'a>]) -> Vec<&'a str> {
        members.iter().map(|(k, _)| k.name.as_str()).collect()
    }

    #[test]
    fn a_web_and_app_server_is_drawn_once_in_a_joint_box() {
        let m = model(
            vec![
                node("lb1", &[Role::Lb]),
                node("web1", &[Role::Web, Role::App]),
                node("web2", &[Role::Web, Role::App]),
            ],
            vec![],
        );
        let t = Topology::of(&m);
        assert_eq!(t.boxes.len(), 2);
        assert_eq!(t.boxes[1].tiers, vec![Role::Web, Role::App]);
        assert_eq!(names(&t.boxes[1].nodes), ["web1", "web2"]);
        assert_eq!(t.order().count(), 3);
    }

    #[test]
    fn a_partly_shared_tier_keeps_its_box_and_names_the_shared_nodes() {
        let m = model(
            vec![
                node("web1", &[Role::Web, Role::App]),
                node("app1", &[Role::App]),
            ],
            vec![],
        );
        let t = Topology::of(&m);
        assert_eq!(t.boxes.len(), 2);
        assert_eq!(names(&t.boxes[1].nodes), ["app1"]);
        assert_eq!(names(&t.boxes[1].shared), ["web1"]);
    }

    #[test]
    fn the_db_tier_splits_into_primary_and_replicas_with_their_lag() {
        let mut primary = node("db1", &[Role::Db]);
        primary.facts = vec![Label::new("db_role", "primary")];
        let mut replica = node("db2", &[Role::Db]);
        replica.facts = vec![Label::new("db_role", "replica")];
        replica.summary = Some(NodeSummary {
            replication_lag_seconds: Some(42.0),
            ..Default::default()
        });
        let m = model(
            vec![primary, replica],
            vec![TierState {
                role: Role::Db as i32,
                healthy: 2,
                total: 2,
                ..Default::default()
            }],
        );
        let t = Topology::of(&m);
        assert_eq!(t.boxes.len(), 2);
        assert_eq!(t.boxes[0].db_part, Some(DbPart::Primary));
        assert_eq!(t.boxes[0].weaknesses, vec![Weakness::SinglePrimary]);
        assert_eq!(names(&t.boxes[1].nodes), ["db2"]);
        assert_eq!(t.replicas[0].lag_seconds, Some(42.0));
    }

    #[test]
    fn the_hop_behind_the_lb_says_which_servers_lack_tls_by_their_node() {
        use stacktop_proto::v1::BackendServer;
        let server =
            |name: &str, node: &str, ssl: Option<bool>, verify: Option<bool>| BackendServer {
                backend: "be_web".into(),
                server: name.into(),
                node: node.into(),
                status: "UP".into(),
                ssl,
                ssl_verify: verify,
                ssl_unknown: if ssl.is_none() {
                    "not in haproxy.cfg".into()
                } else {
                    String::new()
                },
                ..Default::default()
            };
        let mut lb1 = node("lb1", &[Role::Lb]);
        lb1.backends = vec![
            server("srv1", "web1", Some(false), None),
            server("web2", "web2", Some(true), Some(false)),
            server("web3", "web3", Some(true), Some(true)),
            server("api", "", None, None),
        ];
        // A second LB with the same servers: each is listed once.
        let mut lb2 = node("lb2", &[Role::Lb]);
        lb2.backends = lb1.backends.clone();
        let m = model(vec![lb1, lb2, node("web1", &[Role::Web])], vec![]);
        let t = Topology::of(&m);
        assert_eq!(t.backends.len(), 4);
        assert_eq!(
            t.hop_tls,
            HopTls {
                plain: vec!["web1".into()],
                unverified: vec!["web2".into()],
                unknown: vec!["api".into()],
                unknown_reason: "not in haproxy.cfg".into(),
            }
        );
    }

    #[test]
    fn weaknesses_come_from_the_collectors_verdicts_and_checks() {
        let mut all = node("box", &[Role::Lb, Role::Web, Role::App, Role::Db]);
        all.checks = vec![CheckResult {
            name: "exposure".into(),
            kind: "exposure".into(),
            status: Health::Warn as i32,
            message: "not allowed: 0.0.0.0:6379".into(),
            ..Default::default()
        }];
        let m = model(
            vec![all],
            vec![TierState {
                role: Role::Lb as i32,
                healthy: 1,
                total: 1,
                spof: true,
                ..Default::default()
            }],
        );
        let t = Topology::of(&m);
        assert_eq!(t.boxes.len(), 1);
        assert_eq!(t.boxes[0].tiers.len(), 4);
        let words: Vec<String> = t.boxes[0].weaknesses.iter().map(Weakness::text).collect();
        assert_eq!(
            words,
            [
                "SPOF: only one LB node",
                "box runs every role",
                "box exposed: not allowed: 0.0.0.0:6379",
            ]
        );
    }
}
