//! Metric names and the small derivations every side must agree on.
//!
//! The agent names its series with these constants, the collector reads
//! them back by the same constants, and the dashboard asks `Fleet.History`
//! for them: one spelling, one place. Names are Prometheus style in base
//! units, so an export needs no renaming.
//!
//! The derivations here (which network device is loopback, the memory
//! ratio, which role a check speaks for, what HAProxy's status words mean)
//! are the only copies of those rules: the collector applies them when it
//! evaluates the fleet; nothing else re-derives them.

use crate::Role;
use crate::v1::BackendServer;

/// Total CPU usage ratio (0..=1); per core with the `cpu` label.
pub const CPU_USAGE: &str = "node_cpu_usage_ratio";
/// Load averages.
pub const LOAD1: &str = "node_load1";
/// 5-minute load average.
pub const LOAD5: &str = "node_load5";
/// 15-minute load average.
pub const LOAD15: &str = "node_load15";
/// Seconds since boot.
pub const UPTIME: &str = "node_uptime_seconds";
/// Number of processes.
pub const PROCESSES: &str = "node_processes";
/// Memory in use, bytes.
pub const MEMORY_USED: &str = "node_memory_used_bytes";
/// Memory available to new work, bytes.
pub const MEMORY_AVAILABLE: &str = "node_memory_available_bytes";
/// Installed memory, bytes.
pub const MEMORY_TOTAL: &str = "node_memory_total_bytes";
/// Swap in use, bytes.
pub const SWAP_USED: &str = "node_swap_used_bytes";
/// Swap configured, bytes.
pub const SWAP_TOTAL: &str = "node_swap_total_bytes";
/// Bytes used per filesystem (`mount`).
pub const FILESYSTEM_USED: &str = "node_filesystem_used_bytes";
/// Size per filesystem (`mount`).
pub const FILESYSTEM_SIZE: &str = "node_filesystem_size_bytes";
/// Disk reads per device (`device`), bytes per second.
pub const DISK_READ: &str = "node_disk_read_bytes_per_second";
/// Disk writes per device (`device`), bytes per second.
pub const DISK_WRITTEN: &str = "node_disk_written_bytes_per_second";
/// Received bytes per second per interface (`device`).
pub const NETWORK_RECEIVE: &str = "node_network_receive_bytes_per_second";
/// Transmitted bytes per second per interface (`device`).
pub const NETWORK_TRANSMIT: &str = "node_network_transmit_bytes_per_second";

/// Requests per second from an access log, by `source` and `class`.
pub const HTTP_REQUESTS: &str = "http_requests_per_second";
/// Requests per second an access log shows that were load-balancer health
/// checks (by `source`); not part of [`HTTP_REQUESTS`].
pub const HTTP_HEALTH_CHECKS: &str = "http_health_check_requests_per_second";
/// Response bytes per second, by `source`.
pub const HTTP_RESPONSE_BYTES: &str = "http_response_bytes_per_second";
/// Request latency quantiles, by `source` and `quantile`.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Malformed access-log lines per second, by `source`.
pub const HTTP_LOG_MALFORMED: &str = "http_log_malformed_lines_per_second";
/// Access-log lines that arrived too late to count, per second, by `source`.
pub const HTTP_LOG_LATE: &str = "http_log_late_lines_per_second";

/// Nginx stub_status: open connections.
pub const NGINX_ACTIVE: &str = "nginx_connections_active";
/// Nginx stub_status: connections reading a request.
pub const NGINX_READING: &str = "nginx_connections_reading";
/// Nginx stub_status: connections writing a response.
pub const NGINX_WRITING: &str = "nginx_connections_writing";
/// Nginx stub_status: idle keep-alive connections.
pub const NGINX_WAITING: &str = "nginx_connections_waiting";
/// Nginx stub_status: requests per second.
pub const NGINX_REQUESTS: &str = "nginx_requests_per_second";

/// HAProxy: 1 when a backend server is UP (`backend`, `server`).
pub const HAPROXY_BACKEND_UP: &str = "haproxy_backend_up";
/// HAProxy: a server's current sessions.
pub const HAPROXY_SERVER_SESSIONS: &str = "haproxy_server_current_sessions";
/// HAProxy: a server's requests per second.
pub const HAPROXY_SERVER_REQUESTS: &str = "haproxy_server_requests_per_second";
/// HAProxy: a frontend's requests per second (`frontend`).
pub const HAPROXY_FRONTEND_REQUESTS: &str = "haproxy_frontend_requests_per_second";

/// MySQL: 1 when `SELECT 1` works.
pub const MYSQL_UP: &str = "mysql_up";
/// MySQL: queries per second.
pub const MYSQL_QUERIES: &str = "mysql_queries_per_second";
/// MySQL: open connections.
pub const MYSQL_CONNECTIONS: &str = "mysql_connections";
/// MySQL: `max_connections`.
pub const MYSQL_MAX_CONNECTIONS: &str = "mysql_max_connections";
/// MySQL replica: seconds behind the primary.
pub const MYSQL_REPLICATION_LAG: &str = "mysql_replication_lag_seconds";
/// MySQL replica: 1 while the IO thread runs.
pub const MYSQL_REPLICA_IO_RUNNING: &str = "mysql_replica_io_running";
/// MySQL replica: 1 while the SQL thread runs.
pub const MYSQL_REPLICA_SQL_RUNNING: &str = "mysql_replica_sql_running";

/// A check's status as a number (`check`): 0 ok, 1 warn, 2 crit, 3 unknown.
pub const CHECK_STATUS: &str = "check_status";

/// Batches the agent's spool dropped (full, or older than its age bound),
/// oldest first, since the agent started.
pub const AGENT_SPOOL_DROPPED: &str = "stacktop_agent_spool_dropped_batches_total";

/// Label keys.
pub mod label {
    /// Access-log source of an HTTP series.
    pub const SOURCE: &str = "source";
    /// Status class of a request rate: [`super::CLASSES`] or `other`.
    pub const CLASS: &str = "class";
    /// Latency quantile: [`super::QUANTILES`].
    pub const QUANTILE: &str = "quantile";
    /// Network or disk device.
    pub const DEVICE: &str = "device";
    /// Filesystem mount point.
    pub const MOUNT: &str = "mount";
    /// CPU core of a per-core series.
    pub const CPU: &str = "cpu";
}

/// The request status classes shown, in order (plus `other` in the data).
pub const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];
/// Every status class an access-log source reports, `other` last.
pub const ALL_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "other"];
/// The latency quantiles the agent reports, as their label values.
pub const QUANTILES: [&str; 3] = ["0.5", "0.95", "0.99"];

/// The fact naming a DB node's role (`primary` or `replica`).
pub const FACT_DB_ROLE: &str = "db_role";

/// Whether a network device is loopback: `lo`, its aliases (`lo:1`) and the
/// BSD-style `lo0`. Loopback traffic is the host talking to itself, so it
/// never counts towards a node's network rates.
pub fn is_loopback(device: &str) -> bool {
    match device.strip_prefix("lo") {
        Some("") => true,
        Some(rest) => rest.starts_with(':') || rest.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Memory used over installed, when both are known and the total is
/// positive: unknown rather than a made-up ratio.
pub fn memory_used_ratio(used: Option<f64>, total: Option<f64>) -> Option<f64> {
    match (used, total) {
        (Some(used), Some(total)) if total > 0.0 && used.is_finite() && total.is_finite() => {
            Some(used / total)
        }
        _ => None,
    }
}

/// The role a process name serves: haproxy -> lb, nginx -> web,
/// mysqld/mariadbd -> db (the same names role detection looks for).
pub fn role_of_process(process: &str) -> Role {
    match process {
        "haproxy" => Role::Lb,
        "nginx" => Role::Web,
        "mysqld" | "mariadbd" | "mysqld_safe" | "mariadbd-safe" => Role::Db,
        _ => Role::Unspecified,
    }
}

/// The role a check speaks for, by its kind (and, for `process`, the
/// process it looks for, from a name such as `process:nginx`):
/// nginx -> web, haproxy -> lb, mysql and replication -> db, app and http
/// -> app. Everything else (exposure, tcp, tls, dns, ...) is node-wide:
/// [`Role::Unspecified`].
pub fn check_role(kind: &str, name: &str) -> Role {
    match kind {
        "nginx" => Role::Web,
        "haproxy" => Role::Lb,
        "mysql" | "replication" => Role::Db,
        "app" | "http" => Role::App,
        "process" => name
            .strip_prefix("process:")
            .map_or(Role::Unspecified, role_of_process),
        _ => Role::Unspecified,
    }
}

/// What HAProxy's status word for a server means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// UP (including "UP 1/3" while going down).
    Up,
    /// DOWN (including "DOWN 1/2" while coming up).
    Down,
    /// MAINT, DRAIN, NOLB: taken out on purpose.
    Out,
    /// Anything else ("no check", an unknown word).
    Other,
}

/// Classifies HAProxy's status word.
pub fn server_state(status: &str) -> ServerState {
    let word = status.split_whitespace().next().unwrap_or("");
    if word.eq_ignore_ascii_case("UP") || word.eq_ignore_ascii_case("OPEN") {
        ServerState::Up
    } else if word.eq_ignore_ascii_case("DOWN") {
        ServerState::Down
    } else if word.eq_ignore_ascii_case("DRAIN")
        || word.eq_ignore_ascii_case("NOLB")
        || word
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("MAINT"))
    {
        ServerState::Out
    } else {
        ServerState::Other
    }
}

/// How many of `servers` are UP; `None` without any.
pub fn backends_up(servers: &[BackendServer]) -> Option<u32> {
    if servers.is_empty() {
        return None;
    }
    let up = servers
        .iter()
        .filter(|s| server_state(&s.status) == ServerState::Up)
        .count();
    Some(u32::try_from(up).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_lo_its_aliases_and_lo0() {
        for dev in ["lo", "lo:0", "lo:backup", "lo0", "lo12"] {
            assert!(is_loopback(dev), "{dev}");
        }
        for dev in ["eth0", "lowpan0", "local", "wlo1", "l", ""] {
            assert!(!is_loopback(dev), "{dev}");
        }
    }

    #[test]
    fn memory_ratio_needs_both_and_a_positive_total() {
        assert_eq!(memory_used_ratio(Some(1.0), Some(4.0)), Some(0.25));
        assert_eq!(memory_used_ratio(Some(1.0), None), None);
        assert_eq!(memory_used_ratio(None, Some(4.0)), None);
        assert_eq!(memory_used_ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(memory_used_ratio(Some(f64::NAN), Some(4.0)), None);
    }

    #[test]
    fn checks_speak_for_their_roles() {
        assert_eq!(check_role("nginx", "nginx"), Role::Web);
        assert_eq!(check_role("app", "app:x"), Role::App);
        assert_eq!(check_role("http", "http:x"), Role::App);
        assert_eq!(check_role("mysql", "mysql"), Role::Db);
        assert_eq!(check_role("replication", "replication"), Role::Db);
        assert_eq!(check_role("haproxy", "haproxy"), Role::Lb);
        assert_eq!(check_role("process", "process:nginx"), Role::Web);
        assert_eq!(check_role("process", "process:mariadbd"), Role::Db);
        assert_eq!(check_role("process", "process:sshd"), Role::Unspecified);
        assert_eq!(check_role("exposure", "exposure"), Role::Unspecified);
        assert_eq!(check_role("tcp", "tcp:a:1"), Role::Unspecified);
    }

    #[test]
    fn haproxy_status_words_are_classified() {
        assert_eq!(server_state("UP"), ServerState::Up);
        assert_eq!(server_state("UP 1/3"), ServerState::Up);
        assert_eq!(server_state("DOWN"), ServerState::Down);
        assert_eq!(server_state("DOWN 1/2"), ServerState::Down);
        assert_eq!(server_state("MAINT"), ServerState::Out);
        assert_eq!(server_state("MAINT (via web/web1)"), ServerState::Out);
        assert_eq!(server_state("DRAIN"), ServerState::Out);
        assert_eq!(server_state("NOLB"), ServerState::Out);
        assert_eq!(server_state("no check"), ServerState::Other);
        let server = |status: &str| BackendServer {
            status: status.into(),
            ..Default::default()
        };
        assert_eq!(backends_up(&[]), None);
        assert_eq!(
            backends_up(&[server("UP"), server("DOWN"), server("UP 2/3")]),
            Some(2)
        );
    }
}
