//! Which fleet node each HAProxy backend server is: decided here, once per
//! change, so every dashboard shows the same answer (the topology's LB ->
//! web edge names the node next to HAProxy's view of the server).
//!
//! The rule, first that applies (see `BackendMatch` in common.proto):
//!
//! 1. **Address**: the server's IP (its `address`, port ignored) is a known
//!    address of exactly one node. A node's known addresses are its
//!    `addresses` fact (IPs separated by commas or blanks, when its agent
//!    reports it) and the address its stream comes from. Loopback and
//!    unspecified addresses never match: `127.0.0.1` on the load balancer
//!    and `127.0.0.1` seen by the collector are different machines.
//! 2. **Name**: the server's name is a node's name.
//! 3. **Short name**: the two names agree up to their first dot (`web1`
//!    and `web1.example.com`), for exactly one node.
//!
//! A server that matches several nodes, or none, stays unmatched, and is
//! shown so: a guess would put one server's DOWN on another node.
//!
//! [`Index`] is built from every node when one appears, goes or changes
//! its name, facts or peer; [`apply`] fills the servers of an LB's sample
//! and reuses the previous answer while neither the sample nor the index
//! changed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use stacktop_proto::v1::{BackendMatch, BackendServer, Label};

use crate::fleet::eval::ServedBackends;

/// The fact an agent may report its node's addresses in.
pub const ADDRESSES_FACT: &str = "addresses";

/// A name or address, and the one node it points to (`None`: several).
type Unique = HashMap<String, Option<String>>;

/// The fleet's node names and addresses, for matching.
#[derive(Debug, Default)]
pub struct Index {
    /// Numbers the indexes: a sample matched against the same generation
    /// needs no new match.
    pub generation: u64,
    by_address: HashMap<IpAddr, Option<String>>,
    names: std::collections::HashSet<String>,
    by_short: Unique,
}

impl Index {
    /// The index of `nodes`: (name, facts, peer) of each.
    pub fn new<'a>(
        generation: u64,
        nodes: impl IntoIterator<Item = (&'a str, &'a [Label], &'a str)>,
    ) -> Self {
        let mut index = Index {
            generation,
            ..Default::default()
        };
        for (name, facts, peer) in nodes {
            index.names.insert(name.to_string());
            unique(&mut index.by_short, short(name).to_string(), name);
            let mut addresses: Vec<IpAddr> = facts
                .iter()
                .filter(|f| f.key == ADDRESSES_FACT)
                .flat_map(|f| f.value.split([',', ' ', '\t']))
                .filter_map(ip_of)
                .collect();
            addresses.extend(ip_of(peer));
            addresses.sort();
            addresses.dedup();
            for ip in addresses.into_iter().filter(matters) {
                unique(&mut index.by_address, ip, name);
            }
        }
        index
    }

    /// The node `server` is, and how that was told.
    pub fn node_of(&self, server: &BackendServer) -> Option<(&str, BackendMatch)> {
        if let Some(Some(node)) = ip_of(&server.address)
            .filter(matters)
            .and_then(|ip| self.by_address.get(&ip))
        {
            return Some((node, BackendMatch::Address));
        }
        if let Some(node) = self.names.get(&server.server) {
            return Some((node, BackendMatch::Name));
        }
        match self.by_short.get(short(&server.server)) {
            Some(Some(node)) => Some((node, BackendMatch::ShortName)),
            _ => None,
        }
    }
}

/// Records that `key` points to `name`, or to several nodes.
fn unique<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Option<String>>, key: K, name: &str) {
    map.entry(key)
        .and_modify(|n| {
            if n.as_deref() != Some(name) {
                *n = None;
            }
        })
        .or_insert_with(|| Some(name.to_string()));
}

/// The name up to its first dot.
fn short(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// An address that can tell one machine from another.
fn matters(ip: &IpAddr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified()
}

/// The IP of an address as HAProxy or a peer writes it: `10.0.0.1:80`,
/// `[fd00::1]:80`, `ipv4@10.0.0.1:80`, a bare IP. `None` for host names
/// and sockets.
fn ip_of(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix("ipv4@")
        .or_else(|| text.strip_prefix("ipv6@"))
        .unwrap_or(text);
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, _port) = text.rsplit_once(':')?;
    host.parse().ok()
}

/// Fills the node of every server of `served` (an LB's evaluated
/// backends, whose `servers` are the agent's sample as stored), reusing
/// `previous`'s answer when it matched the same sample against the same
/// index.
pub fn apply(served: &mut ServedBackends, previous: Option<&ServedBackends>, index: &Index) {
    let sample = served.servers.clone();
    served.sample = sample.clone();
    served.index_generation = index.generation;
    if sample.is_empty() {
        return;
    }
    if let Some(p) = previous
        && Arc::ptr_eq(&p.sample, &sample)
        && p.index_generation == index.generation
    {
        served.servers = p.servers.clone();
        return;
    }
    let matched = sample
        .iter()
        .map(|s| {
            let mut s = s.clone();
            match index.node_of(&s) {
                Some((node, how)) => {
                    s.node = node.to_string();
                    s.matched_by = how as i32;
                }
                None => {
                    s.node.clear();
                    s.matched_by = BackendMatch::Unspecified as i32;
                }
            }
            s
        })
        .collect();
    served.servers = Arc::new(matched);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, address: &str) -> BackendServer {
        BackendServer {
            backend: "be_web".into(),
            server: name.into(),
            address: address.into(),
            ..Default::default()
        }
    }

    fn index(nodes: &[(&str, &str, &str)]) -> Index {
        let facts: Vec<Vec<Label>> = nodes
            .iter()
            .map(|(_, addresses, _)| {
                if addresses.is_empty() {
                    Vec::new()
                } else {
                    vec![Label::new(ADDRESSES_FACT, *addresses)]
                }
            })
            .collect();
        Index::new(
            1,
            nodes
                .iter()
                .zip(&facts)
                .map(|((name, _, peer), facts)| (*name, facts.as_slice(), *peer)),
        )
    }

    fn matched(index: &Index, s: &BackendServer) -> Option<(String, BackendMatch)> {
        index.node_of(s).map(|(n, how)| (n.to_string(), how))
    }

    #[test]
    fn the_address_wins_over_the_name() {
        let i = index(&[
            ("lb1", "", "10.0.0.2:40000"),
            ("app-a", "10.0.0.11, 192.168.1.11", "10.0.0.11:51000"),
            ("web1", "", "10.0.0.12:51000"),
        ]);
        // Named web1 in HAProxy, but at app-a's address: it is app-a.
        let s = server("web1", "10.0.0.11:80");
        assert_eq!(
            matched(&i, &s),
            Some(("app-a".into(), BackendMatch::Address))
        );
        // An address from the fact alone.
        let s = server("x", "192.168.1.11:80");
        assert_eq!(
            matched(&i, &s),
            Some(("app-a".into(), BackendMatch::Address))
        );
        // The stream's address alone, IPv6 and HAProxy's prefix too.
        assert_eq!(
            matched(&i, &server("y", "ipv4@10.0.0.12:8080")),
            Some(("web1".into(), BackendMatch::Address))
        );
        let v6 = index(&[("web6", "fd00::6", "")]);
        assert_eq!(
            matched(&v6, &server("z", "[fd00::6]:80")),
            Some(("web6".into(), BackendMatch::Address))
        );
    }

    #[test]
    fn names_match_exactly_or_up_to_the_first_dot() {
        let i = index(&[("web1", "", ""), ("web2.example.com", "", "")]);
        assert_eq!(
            matched(&i, &server("web1", "")),
            Some(("web1".into(), BackendMatch::Name))
        );
        assert_eq!(
            matched(&i, &server("web2", "web2.lan:80")),
            Some(("web2.example.com".into(), BackendMatch::ShortName))
        );
        assert_eq!(
            matched(&i, &server("web1.example.com", "")),
            Some(("web1".into(), BackendMatch::ShortName))
        );
        // A prefix that is not a whole label says nothing.
        assert_eq!(matched(&i, &server("web", "")), None);
        assert_eq!(matched(&i, &server("web10", "")), None);
    }

    #[test]
    fn ambiguous_and_loopback_addresses_do_not_match() {
        let i = index(&[
            // Two agents behind one NAT address.
            ("a", "", "10.0.0.1:1000"),
            ("b", "", "10.0.0.1:2000"),
            // Agents on the collector's host, and one that says 127.0.0.11.
            ("c", "127.0.0.11", "127.0.0.1:3000"),
            ("web1.x", "", ""),
            ("web1.y", "", ""),
        ]);
        assert_eq!(matched(&i, &server("s1", "10.0.0.1:80")), None);
        assert_eq!(matched(&i, &server("s2", "127.0.0.11:80")), None);
        assert_eq!(matched(&i, &server("s3", "127.0.0.1:80")), None);
        // Two nodes named web1.<something>: which one is unknown.
        assert_eq!(matched(&i, &server("web1", "")), None);
        // An unmatched address still lets the name decide.
        assert_eq!(
            matched(&i, &server("c", "10.9.9.9:80")),
            Some(("c".into(), BackendMatch::Name))
        );
    }

    #[test]
    fn apply_fills_every_server_and_reuses_an_unchanged_answer() {
        let i = index(&[("web1", "", ""), ("web2", "", "")]);
        let sample = Arc::new(vec![server("web1", ""), server("gone", "")]);
        let mut served = ServedBackends {
            servers: sample.clone(),
            ..Default::default()
        };
        apply(&mut served, None, &i);
        let nodes: Vec<(&str, BackendMatch)> = served
            .servers
            .iter()
            .map(|s| (s.node.as_str(), s.matched_by()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("web1", BackendMatch::Name),
                ("", BackendMatch::Unspecified)
            ]
        );
        assert!(Arc::ptr_eq(&served.sample, &sample));

        // Same sample, same index: the same list, not a new one.
        let mut again = ServedBackends {
            servers: sample.clone(),
            ..Default::default()
        };
        apply(&mut again, Some(&served), &i);
        assert!(Arc::ptr_eq(&again.servers, &served.servers));

        // A node named gone appears: a new index matches it.
        let i2 = Index::new(2, [("gone", &[][..], "")]);
        let mut third = ServedBackends {
            servers: sample,
            ..Default::default()
        };
        apply(&mut third, Some(&served), &i2);
        assert_eq!(third.servers[1].node, "gone");
        assert_eq!(third.servers[0].node, "", "web1 is no longer in the fleet");
    }
}
