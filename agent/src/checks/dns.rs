//! The `dns` check: the site's name resolves, through a given resolver, to
//! the expected addresses (the load balancer's).
//!
//! It asks `resolver` (ip:port, UDP with TCP fallback; never the system's
//! resolv.conf or hosts file) for the name's A records with hickory, and
//! builds a fresh resolver each run so no cache hides a change.
//!
//! Status: ok when the answers are exactly `expect` (in any order; any
//! answer when `expect` is empty): "www.stacktop.test -> 127.0.0.10";
//! crit when the name does not resolve ("NXDOMAIN", "no A record",
//! "timed out") or resolves elsewhere ("www.stacktop.test -> 10.9.9.9,
//! expected 127.0.0.10").
//!
//! ```toml
//! [[checks]]
//! kind = "dns"
//! query-name = "www.stacktop.test"
//! resolver = "127.0.0.30:5353"
//! expect = ["127.0.0.10"]
//! ```

// Without the `dns` feature only the spec (and the pure judging) is
// built, so the probe's imports go unused.
#![cfg_attr(not(feature = "dns"), allow(unused_imports))]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[cfg(feature = "dns")]
use hickory_resolver::Resolver;
#[cfg(feature = "dns")]
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
#[cfg(feature = "dns")]
use hickory_resolver::net::runtime::TokioRuntimeProvider;
#[cfg(feature = "dns")]
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Deserialize;

use super::common::{Outcome, SpecError, SpecResult};

/// An A record through a given resolver.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to resolve, e.g. `www.example.com`.
    pub query_name: String,
    /// The resolver as `ip:port` (UDP, falling back to TCP).
    pub resolver: String,
    /// The addresses the name must resolve to (all of them, nothing
    /// else); empty means "any answer".
    #[serde(default)]
    pub expect: Vec<String>,
}

impl DnsSpec {
    /// The name of a check with no configured one: `dns:QUERY-NAME`.
    pub fn default_name(&self) -> String {
        format!("dns:{}", self.query_name)
    }
}

/// A DNS A-record check (with the `dns` cargo feature, a default one).
#[cfg(feature = "dns")]
#[derive(Debug)]
pub struct DnsProbe {
    name: String,
    resolver: SocketAddr,
    expect: Vec<IpAddr>,
    timeout: Duration,
}

#[cfg(feature = "dns")]
impl DnsProbe {
    /// Checks the spec and builds the probe; `timeout` bounds one query.
    pub fn from_spec(spec: &DnsSpec, timeout: Duration) -> SpecResult<Self> {
        let resolver = spec.resolver.parse().map_err(|_| {
            SpecError::new(
                "resolver",
                format!(
                    "resolver {:?} is not ip:port, e.g. \"127.0.0.30:5353\"",
                    spec.resolver
                ),
            )
        })?;
        if spec.query_name.trim().is_empty() || spec.query_name.contains(char::is_whitespace) {
            return Err(SpecError::new(
                "query-name",
                format!("query name {:?} is not a DNS name", spec.query_name),
            ));
        }
        let expect = spec
            .expect
            .iter()
            .map(|ip| {
                ip.parse().map_err(|_| {
                    SpecError::new("expect", format!("expected address {ip:?} is not an IP"))
                })
            })
            .collect::<SpecResult<_>>()?;
        Ok(Self {
            name: spec.query_name.trim_end_matches('.').to_string(),
            resolver,
            expect,
            timeout,
        })
    }

    /// Runs the check once.
    pub async fn run(&self) -> Outcome {
        let server = self.resolver;
        let connection = |mut c: ConnectionConfig| {
            c.port = server.port();
            c
        };
        let ns = NameServerConfig::new(
            server.ip(),
            true,
            vec![
                connection(ConnectionConfig::udp()),
                connection(ConnectionConfig::tcp()),
            ],
        );
        let mut opts = ResolverOpts::default();
        opts.timeout = self.timeout;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let resolver = match Resolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        {
            Ok(r) => r,
            Err(e) => return Outcome::crit(format!("resolver setup: {e}")),
        };
        let fqdn = format!("{}.", self.name);
        match resolver.lookup(fqdn.as_str(), RecordType::A).await {
            Ok(lookup) => {
                let answers: Vec<IpAddr> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .collect();
                judge(&self.name, &answers, &self.expect)
            }
            Err(e) if e.is_nx_domain() => Outcome::crit(format!(
                "{} does not exist (NXDOMAIN at {server})",
                self.name
            )),
            Err(e) if e.is_no_records_found() => {
                Outcome::crit(format!("{} has no A record at {server}", self.name))
            }
            Err(e) => Outcome::crit(format!("{} via {server}: {e}", self.name)),
        }
    }
}

/// Decides the outcome from the answers.
pub fn judge(name: &str, answers: &[IpAddr], expect: &[IpAddr]) -> Outcome {
    let list = |ips: &[IpAddr]| {
        let mut v: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        v.sort();
        v.dedup();
        v.join(", ")
    };
    if answers.is_empty() {
        return Outcome::crit(format!("{name} has no A record"));
    }
    let got = list(answers);
    if expect.is_empty() || got == list(expect) {
        Outcome::ok(format!("{name} -> {got}"))
    } else {
        Outcome::crit(format!("{name} -> {got}, expected {}", list(expect)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Health;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn judging() {
        let ok = judge("www", &ips(&["127.0.0.10"]), &ips(&["127.0.0.10"]));
        assert_eq!(
            (ok.status, ok.message.as_str()),
            (Health::Ok, "www -> 127.0.0.10")
        );
        let order = judge(
            "www",
            &ips(&["10.0.0.2", "10.0.0.1"]),
            &ips(&["10.0.0.1", "10.0.0.2"]),
        );
        assert_eq!(order.status, Health::Ok);
        let elsewhere = judge("www", &ips(&["10.9.9.9"]), &ips(&["127.0.0.10"]));
        assert_eq!(elsewhere.status, Health::Crit);
        assert_eq!(elsewhere.message, "www -> 10.9.9.9, expected 127.0.0.10");
        assert_eq!(judge("www", &[], &[]).status, Health::Crit);
        assert_eq!(judge("www", &ips(&["1.2.3.4"]), &[]).status, Health::Ok);
    }
}
