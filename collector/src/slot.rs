//! What a series feeds in the evaluated fleet, decided once when the
//! series is first stored, so that evaluating a node never compares metric
//! names or labels again: each value goes straight to its summary field,
//! request-rate source or latency quantile, or nowhere.

use std::sync::Arc;

use stacktop_proto::metrics::{self, label};

use crate::store::SeriesKey;

/// Where a series' values go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Not used by the summary (per-core CPU, filesystems, MySQL, ...).
    Other,
    /// Total CPU usage ratio.
    Cpu,
    /// Memory in use.
    MemoryUsed,
    /// Installed memory.
    MemoryTotal,
    /// 1-minute load.
    Load1,
    /// 5-minute load.
    Load5,
    /// 15-minute load.
    Load15,
    /// Seconds since boot.
    Uptime,
    /// Number of processes.
    Processes,
    /// Swap in use.
    SwapUsed,
    /// Swap configured.
    SwapTotal,
    /// Swap in use, under the older `node_memory_swap_used_bytes` name.
    SwapUsedLegacy,
    /// Swap configured, under the older name.
    SwapTotalLegacy,
    /// Received bytes per second on a non-loopback device.
    NetworkReceive,
    /// Transmitted bytes per second on a non-loopback device.
    NetworkTransmit,
    /// Disk reads per second on a device.
    DiskRead,
    /// Disk writes per second on a device.
    DiskWritten,
    /// A replica's lag.
    ReplicationLag,
    /// Requests per second of one status class of one access-log source.
    Requests {
        /// The `source` label.
        source: Arc<str>,
        /// Index in `metrics::ALL_CLASSES` (4: `other` and anything else).
        class: u8,
    },
    /// A latency quantile of one access-log source.
    Duration {
        /// The `source` label.
        source: Arc<str>,
        /// Index in `metrics::QUANTILES`.
        quantile: u8,
    },
    /// LB health checks per second seen in one access-log source.
    HealthChecks {
        /// The `source` label.
        source: Arc<str>,
    },
}

impl Slot {
    /// The slot of the series `key`.
    pub fn of(key: &SeriesKey) -> Slot {
        let unlabelled = key.labels.is_empty();
        let source = || Arc::<str>::from(key.label(label::SOURCE).unwrap_or(""));
        let device_not_loopback = || !key.label(label::DEVICE).is_some_and(metrics::is_loopback);
        match key.name.as_str() {
            metrics::CPU_USAGE if unlabelled => Slot::Cpu,
            metrics::MEMORY_USED if unlabelled => Slot::MemoryUsed,
            metrics::MEMORY_TOTAL if unlabelled => Slot::MemoryTotal,
            metrics::LOAD1 if unlabelled => Slot::Load1,
            metrics::LOAD5 if unlabelled => Slot::Load5,
            metrics::LOAD15 if unlabelled => Slot::Load15,
            metrics::UPTIME if unlabelled => Slot::Uptime,
            metrics::PROCESSES if unlabelled => Slot::Processes,
            metrics::SWAP_USED if unlabelled => Slot::SwapUsed,
            metrics::SWAP_TOTAL if unlabelled => Slot::SwapTotal,
            "node_memory_swap_used_bytes" if unlabelled => Slot::SwapUsedLegacy,
            "node_memory_swap_total_bytes" if unlabelled => Slot::SwapTotalLegacy,
            metrics::MYSQL_REPLICATION_LAG if unlabelled => Slot::ReplicationLag,
            metrics::NETWORK_RECEIVE if device_not_loopback() => Slot::NetworkReceive,
            metrics::NETWORK_TRANSMIT if device_not_loopback() => Slot::NetworkTransmit,
            metrics::DISK_READ => Slot::DiskRead,
            metrics::DISK_WRITTEN => Slot::DiskWritten,
            metrics::HTTP_REQUESTS => {
                let class = key.label(label::CLASS).unwrap_or("");
                let class = metrics::ALL_CLASSES
                    .iter()
                    .position(|c| *c == class)
                    .unwrap_or(metrics::ALL_CLASSES.len() - 1);
                Slot::Requests {
                    source: source(),
                    class: class as u8,
                }
            }
            metrics::HTTP_DURATION => {
                let quantile = key
                    .label(label::QUANTILE)
                    .and_then(|q| q.parse::<f64>().ok())
                    .and_then(|q| {
                        metrics::QUANTILES
                            .iter()
                            .position(|w| w.parse::<f64>().is_ok_and(|w| (w - q).abs() < 1e-9))
                    });
                match quantile {
                    Some(quantile) => Slot::Duration {
                        source: source(),
                        quantile: quantile as u8,
                    },
                    None => Slot::Other,
                }
            }
            metrics::HTTP_HEALTH_CHECKS => Slot::HealthChecks { source: source() },
            _ => Slot::Other,
        }
    }

    /// Whether the values come from access logs (and describe a past second
    /// rather than the sampling instant).
    pub fn is_log(&self) -> bool {
        matches!(
            self,
            Slot::Requests { .. } | Slot::Duration { .. } | Slot::HealthChecks { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Label;

    fn slot(name: &str, labels: &[(&str, &str)]) -> Slot {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        Slot::of(&SeriesKey::new(name, &labels))
    }

    #[test]
    fn series_find_their_slots() {
        assert_eq!(slot(metrics::CPU_USAGE, &[]), Slot::Cpu);
        assert_eq!(slot(metrics::CPU_USAGE, &[("cpu", "0")]), Slot::Other);
        assert_eq!(
            slot(metrics::NETWORK_RECEIVE, &[("device", "eth0")]),
            Slot::NetworkReceive
        );
        for lo in ["lo", "lo0", "lo:1"] {
            assert_eq!(
                slot(metrics::NETWORK_RECEIVE, &[("device", lo)]),
                Slot::Other
            );
        }
        assert_eq!(
            slot(
                metrics::HTTP_REQUESTS,
                &[("source", "nginx"), ("class", "5xx")]
            ),
            Slot::Requests {
                source: "nginx".into(),
                class: 3
            }
        );
        assert_eq!(
            slot(
                metrics::HTTP_DURATION,
                &[("source", "a"), ("quantile", "0.95")]
            ),
            Slot::Duration {
                source: "a".into(),
                quantile: 1
            }
        );
        assert!(slot(metrics::HTTP_HEALTH_CHECKS, &[("source", "a")]).is_log());
        assert_eq!(slot("mysql_up", &[]), Slot::Other);
    }
}
