//! What a series feeds in the evaluated fleet, decided once when the
//! series is first stored, so that evaluating a node never compares metric
//! names or labels again: each value goes straight to its summary field,
//! request-rate source or latency quantile, or nowhere.

use std::sync::Arc;

use stacktop_proto::metrics::{self, label};

use crate::store::SeriesKey;

/// How many recent seconds of each access-log source a node keeps for the
/// traffic cross-check: its window plus the seconds still in flight.
pub const SOURCE_SECONDS: usize = 16;

/// The latest value of a series that has a slot, kept up to date by ingest
/// so that the fleet view copies it without walking the series.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotValue {
    /// What it feeds.
    pub slot: Slot,
    /// The series, when an alert rule reads it (rules match its labels).
    pub key: Option<Arc<SeriesKey>>,
    /// The sample's time (the agent's clock, Unix ms).
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
    /// When it arrived (the collector's clock, Unix ms): staleness is
    /// judged by this.
    pub updated_ms: i64,
}

/// The recent seconds of one access-log source, per status class, kept up
/// to date by ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSeconds {
    /// The `source` label.
    pub source: Arc<str>,
    /// `(second start, requests per class)`, oldest first, at most
    /// [`SOURCE_SECONDS`].
    pub seconds: Vec<(i64, [f64; 5])>,
    /// When its newest point arrived (collector clock).
    pub updated_ms: i64,
}

impl SourceSeconds {
    /// An empty source.
    pub fn new(source: Arc<str>) -> Self {
        Self {
            source,
            seconds: Vec::with_capacity(SOURCE_SECONDS),
            updated_ms: 0,
        }
    }

    /// Records that class `class` had `value` requests per second in the
    /// second starting at `ts` (a later report of the same second replaces
    /// the earlier one, as in the series).
    pub fn record(&mut self, class: u8, ts: i64, value: f64, now_ms: i64) {
        self.updated_ms = self.updated_ms.max(now_ms);
        let at = match self.seconds.binary_search_by_key(&ts, |s| s.0) {
            Ok(at) => at,
            Err(at) => {
                if at == 0 && self.seconds.len() >= SOURCE_SECONDS {
                    return; // older than everything kept
                }
                self.seconds.insert(at, (ts, [0.0; 5]));
                if self.seconds.len() > SOURCE_SECONDS {
                    self.seconds.remove(0);
                    at - 1
                } else {
                    at
                }
            }
        };
        if let Some(slot) = self.seconds[at].1.get_mut(usize::from(class)) {
            *slot = value;
        }
    }

    /// `(second start, requests in it)`, all classes summed, oldest first.
    pub fn totals(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.seconds.iter().map(|(ts, c)| (*ts, c.iter().sum()))
    }
}

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
    /// Not in the summary, but an alert rule reads it.
    Watched,
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
    fn a_source_keeps_its_newest_seconds_per_class() {
        let mut s = SourceSeconds::new("nginx".into());
        s.record(0, 2_000, 8.0, 5);
        s.record(3, 2_000, 1.0, 6);
        s.record(0, 1_000, 4.0, 7);
        // A second reported again replaces its class.
        s.record(0, 2_000, 9.0, 8);
        assert_eq!(
            s.totals().collect::<Vec<_>>(),
            [(1_000, 4.0), (2_000, 10.0)]
        );
        assert_eq!(s.updated_ms, 8);
        for i in 3..40 {
            s.record(0, i * 1_000, 1.0, 9);
        }
        assert_eq!(s.seconds.len(), SOURCE_SECONDS);
        assert_eq!(s.seconds[0].0, 24_000);
        // Older than everything kept: ignored.
        s.record(0, 1_000, 5.0, 10);
        assert_eq!(s.seconds[0].0, 24_000);
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
