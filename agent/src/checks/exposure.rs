//! The `exposure` check: what this node listens on, compared with what it
//! should (the seed's stack has no firewall, so a stray listener is
//! reachable by anyone who can route to the node).
//!
//! It reads the TCP listeners (state `0A`) from `/proc/net/tcp` and
//! `/proc/net/tcp6`, ignores those bound to a loopback address (127.0.0.0/8,
//! `::1`, `::ffff:127.x`), and compares the rest with the allow-list. Only
//! when something is not allowed does it walk `/proc/*/fd` to name the
//! owning process (by socket inode), which keeps the common case cheap;
//! and what the walk found (or did not) is remembered by inode, so a
//! listener that stays (the usual case: a service someone forgot) is walked
//! for once, not on every run. A socket's inode is not reused while the socket exists, and
//! the memory holds only the inodes of the current run's offenders.
//! Sockets owned by other users' processes are named only when the agent
//! may read their fds (as root it can).
//!
//! Default allow-list, by role (the union over the node's roles):
//!
//! | role | ports |
//! |---|---|
//! | any | 22 (ssh) |
//! | `lb` | 80, 443 |
//! | `web` | 80, 443 |
//! | `app` | 8080 |
//! | `db` | 3306 |
//!
//! An entry is a port (allowed on any address) or `"addr:port"` (only on
//! that address; a wildcard listener `0.0.0.0:port` does not match it).
//! A configured `allow` replaces the defaults.
//!
//! Status: warn naming each listener beyond the list ("not allowed:
//! 0.0.0.0:6379 (redis-server pid 812)"), ok otherwise ("12 listening
//! sockets, all allowed or loopback"); unknown when /proc/net cannot be
//! read.
//!
//! ```toml
//! [[checks]]
//! kind = "exposure"
//! allow = [22, 80, "10.0.0.5:8080"]   # default: by role, as above
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use stacktop_proto::{Health, Role};

use super::common::{Outcome, SpecError, SpecResult};
use super::process;

/// Time between two scans when `interval` is not set: listeners change
/// rarely, and a scan reads every process's fd table when something is
/// not allowed.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// The node's listening sockets against an allow-list.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExposureSpec {
    /// Allowed listeners: a port (any address) or `"addr:port"`. When
    /// absent, the roles' defaults (see the table above).
    #[serde(default)]
    pub allow: Option<Vec<AllowEntry>>,
}

/// One allowed listener as written in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AllowEntry {
    /// A port, on any address.
    Port(u16),
    /// `"port"` or `"addr:port"` (`"[v6]:port"` for IPv6).
    Text(String),
}

/// Ports allowed on every node.
pub const ALWAYS_ALLOWED: &[u16] = &[22];

/// The default allowed ports of one role.
pub fn role_ports(role: Role) -> &'static [u16] {
    match role {
        Role::Lb | Role::Web => &[80, 443],
        Role::App => &[8080],
        Role::Db => &[3306],
        Role::Unspecified => &[],
    }
}

/// One allow-list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allow {
    /// The address, or `None` for any.
    pub addr: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

impl Allow {
    /// Parses a config entry: a port, `"port"`, `"addr:port"` or
    /// `"[v6]:port"`.
    pub fn parse(entry: &AllowEntry) -> std::result::Result<Self, String> {
        match entry {
            AllowEntry::Port(port) => Ok(Self {
                addr: None,
                port: *port,
            }),
            AllowEntry::Text(text) => {
                if let Ok(port) = text.trim().parse::<u16>() {
                    return Ok(Self { addr: None, port });
                }
                let addr: SocketAddr = text.trim().parse().map_err(|_| {
                    format!("allowed listener {text:?} is not a port or addr:port, e.g. 22 or \"10.0.0.5:8080\"")
                })?;
                Ok(Self {
                    addr: Some(addr.ip()),
                    port: addr.port(),
                })
            }
        }
    }

    /// Whether this entry allows a listener on `addr`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        self.port == addr.port() && self.addr.is_none_or(|a| a == addr.ip())
    }
}

/// One listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Bound address and port.
    pub addr: SocketAddr,
    /// The socket's inode, to find its process.
    pub inode: u64,
}

/// Parses `/proc/net/tcp` or `/proc/net/tcp6` text into its listeners.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != "0A" {
                return None;
            }
            let inode = fields.nth(5)?.parse().ok()?;
            let (ip, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = parse_hex_ip(ip)?;
            Some(Listener {
                addr: SocketAddr::new(ip, port),
                inode,
            })
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address as a native-endian
/// integer in hex.
fn parse_hex_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Whether an address is only reachable from this machine.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The exposure check.
#[derive(Debug, Clone)]
pub struct ExposureProbe {
    allow: Vec<Allow>,
    /// Owners ("name pid N") of the offending sockets of the last run, by
    /// inode; `None`: a walk did not find it (a process in another PID
    /// namespace, or one the agent may not read), which another walk would
    /// not change while the socket lives. Shared by the clones each run is
    /// handed to (runs go to the blocking pool), and held only while a run
    /// reads or replaces it.
    owners: Arc<Mutex<HashMap<u64, Option<String>>>>,
}

impl ExposureProbe {
    /// Checks the spec and builds the probe: the spec's allow-list, or
    /// the roles' defaults.
    pub fn from_spec(spec: &ExposureSpec, roles: &[Role]) -> SpecResult<Self> {
        let allow = match &spec.allow {
            Some(entries) => entries
                .iter()
                .map(|e| Allow::parse(e).map_err(|m| SpecError::new("allow", m)))
                .collect::<SpecResult<_>>()?,
            None => default_allow(roles),
        };
        Ok(Self::new(allow))
    }

    /// A probe with an explicit allow-list.
    pub fn new(allow: Vec<Allow>) -> Self {
        Self {
            allow,
            owners: Arc::default(),
        }
    }

    /// Runs the check once (reads /proc; no await).
    pub fn run(&self) -> Outcome {
        let mut listeners = Vec::new();
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            match fs::read_to_string(path) {
                Ok(text) => listeners.extend(parse_proc_net_tcp(&text)),
                // No IPv6 in this kernel: nothing listens there.
                Err(e) if path.ends_with('6') && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Outcome::new(Health::Unknown, format!("cannot read {path}: {e}")),
            }
        }
        let offending = self.not_allowed(&listeners);
        let owners = self.owners_of(&offending);
        judge(listeners.len(), &offending, &owners)
    }

    /// The owners of `offending`: remembered ones from the last run, the
    /// rest looked for by one walk of `/proc/*/fd`. What is remembered
    /// (found or not) becomes exactly this run's offenders (closed sockets
    /// are forgotten).
    fn owners_of(&self, offending: &[Listener]) -> HashMap<u64, String> {
        let mut known =
            std::mem::take(&mut *self.owners.lock().unwrap_or_else(PoisonError::into_inner));
        known.retain(|inode, _| offending.iter().any(|l| l.inode == *inode));
        let missing: BTreeSet<u64> = offending
            .iter()
            .map(|l| l.inode)
            .filter(|inode| !known.contains_key(inode))
            .collect();
        if !missing.is_empty() {
            let mut found = owners(&missing);
            known.extend(missing.iter().map(|inode| (*inode, found.remove(inode))));
        }
        let named = known
            .iter()
            .filter_map(|(inode, owner)| Some((*inode, owner.clone()?)))
            .collect();
        *self.owners.lock().unwrap_or_else(PoisonError::into_inner) = known;
        named
    }

    /// Listeners on a non-loopback address that no entry allows, one per
    /// address (SO_REUSEPORT groups show several sockets).
    pub fn not_allowed(&self, listeners: &[Listener]) -> Vec<Listener> {
        let mut seen = BTreeSet::new();
        listeners
            .iter()
            .filter(|l| !is_loopback(l.addr.ip()))
            .filter(|l| !self.allow.iter().any(|a| a.allows(&l.addr)))
            .filter(|l| seen.insert(l.addr))
            .copied()
            .collect()
    }
}

/// The default allow-list for `roles`.
pub fn default_allow(roles: &[Role]) -> Vec<Allow> {
    let mut ports: BTreeSet<u16> = ALWAYS_ALLOWED.iter().copied().collect();
    for &role in roles {
        ports.extend(role_ports(role));
    }
    ports
        .into_iter()
        .map(|port| Allow { addr: None, port })
        .collect()
}

/// Decides the outcome; `owners` maps inodes to "name pid N".
pub fn judge(total: usize, offending: &[Listener], owners: &HashMap<u64, String>) -> Outcome {
    if offending.is_empty() {
        return Outcome::ok(format!(
            "{total} listening socket{}, all allowed or loopback",
            if total == 1 { "" } else { "s" }
        ));
    }
    let items: Vec<String> = offending
        .iter()
        .map(|l| match owners.get(&l.inode) {
            Some(owner) => format!("{} ({owner})", l.addr),
            None => format!("{} (process unknown)", l.addr),
        })
        .collect();
    Outcome::new(Health::Warn, format!("not allowed: {}", items.join(", ")))
}

/// Maps socket inodes to their owning process ("name pid N") by reading
/// `/proc/*/fd` links; stops as soon as every inode is found.
pub fn owners(inodes: &BTreeSet<u64>) -> HashMap<u64, String> {
    let mut found = HashMap::new();
    let Ok(pids) = process::pids() else {
        return found;
    };
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|l| l.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                found.insert(inode, format!("{} pid {pid}", comm.trim_end()));
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0500000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_ipv4_listeners_only() {
        let l = parse_proc_net_tcp(TCP);
        let addrs: Vec<String> = l.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:8080", "0.0.0.0:22", "10.0.0.5:8080"]);
        assert_eq!(l[2].inode, 1003);
    }

    #[test]
    fn parses_ipv6_listeners() {
        let l = parse_proc_net_tcp(TCP6);
        let addrs: Vec<String> = l.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(addrs, ["[::1]:3306", "[::]:443", "[::ffff:127.0.0.1]:80"]);
        assert!(is_loopback(l[0].addr.ip()) && is_loopback(l[2].addr.ip()));
        assert!(!is_loopback(l[1].addr.ip()));
    }

    #[test]
    fn allow_lists() {
        let mut all = parse_proc_net_tcp(TCP);
        all.extend(parse_proc_net_tcp(TCP6));
        // Web defaults: 22, 80, 443. 10.0.0.5:8080 is beyond them.
        let probe = ExposureProbe::new(default_allow(&[Role::Web]));
        let bad = probe.not_allowed(&all);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].addr.to_string(), "10.0.0.5:8080");
        let owners = HashMap::from([(1003, "python3 pid 42".to_string())]);
        let out = judge(all.len(), &bad, &owners);
        assert_eq!(out.status, Health::Warn);
        assert_eq!(out.message, "not allowed: 10.0.0.5:8080 (python3 pid 42)");
        // An addr:port entry allows exactly that address.
        let entry = Allow::parse(&AllowEntry::Text("10.0.0.5:8080".into())).unwrap();
        let mut allow = default_allow(&[Role::Web]);
        allow.push(entry);
        assert!(ExposureProbe::new(allow).not_allowed(&all).is_empty());
        assert!(!entry.allows(&"0.0.0.0:8080".parse().unwrap()));
        // No roles: only 22; [::]:443 is flagged too.
        assert_eq!(
            ExposureProbe::new(default_allow(&[]))
                .not_allowed(&all)
                .len(),
            2
        );
        assert_eq!(
            judge(6, &[], &HashMap::new()).message,
            "6 listening sockets, all allowed or loopback"
        );
    }

    /// Owners are remembered by inode while the listener stays, and
    /// forgotten once it is gone. (Inodes this high name no socket, so a
    /// walk could never have found the remembered owner.)
    #[test]
    fn owners_are_remembered_while_the_listener_stays() {
        let probe = ExposureProbe::new(default_allow(&[]));
        let stray = Listener {
            addr: "10.0.0.5:6379".parse().unwrap(),
            inode: u64::MAX - 1,
        };
        probe
            .owners
            .lock()
            .unwrap()
            .insert(stray.inode, Some("redis-server pid 812".into()));
        let owners = probe.owners_of(&[stray]);
        assert_eq!(owners[&stray.inode], "redis-server pid 812");
        assert_eq!(probe.owners_of(&[stray]), owners);
        // One no walk can name: looked for once, then remembered as unknown.
        let hidden = Listener {
            addr: "10.0.0.5:2024".parse().unwrap(),
            inode: u64::MAX - 2,
        };
        let named = probe.owners_of(&[stray, hidden]);
        assert!(!named.contains_key(&hidden.inode));
        assert_eq!(probe.owners.lock().unwrap()[&hidden.inode], None);
        assert_eq!(probe.owners_of(&[stray, hidden]), owners);
        // Gone from the offenders: forgotten.
        assert!(probe.owners_of(&[]).is_empty());
        assert!(probe.owners.lock().unwrap().is_empty());
    }

    #[test]
    fn allow_entries() {
        assert!(Allow::parse(&AllowEntry::Text("22".into())).is_ok());
        assert!(Allow::parse(&AllowEntry::Text("[::]:443".into())).is_ok());
        assert!(Allow::parse(&AllowEntry::Text("ssh".into())).is_err());
    }
}
