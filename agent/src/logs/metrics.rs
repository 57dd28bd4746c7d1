//! Turning a complete [`SecondStats`] into named metric points for the sampler.
//!
//! Names and label keys are `stacktop_proto::metrics`' constants, the spelling the collector
//! and the dashboard read them back by. Every point of a second carries that second's start
//! as its timestamp, so the collector files it under the log's clock, not under the moment it
//! arrived.

use stacktop_proto::metrics::{
    HTTP_DURATION, HTTP_HEALTH_CHECKS, HTTP_LOG_LATE, HTTP_LOG_MALFORMED, HTTP_REQUESTS,
    HTTP_RESPONSE_BYTES, QUANTILES, label,
};

use super::bucket::{CLASSES, SecondStats};

/// One value of one series at one time, borrowing its label values from the stats.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint<'a> {
    /// Metric name, one of `stacktop_proto::metrics`' constants.
    pub name: &'static str,
    /// Label pairs, in a fixed order (`source` first).
    pub labels: Vec<(&'static str, &'a str)>,
    /// The value.
    pub value: f64,
    /// Start of the second, in unix milliseconds.
    pub timestamp_ms: i64,
}

impl SecondStats {
    /// The points to send for this second: five class rates, bytes, malformed and late
    /// lines always (zeros are real rates), three latency quantiles when known, and the
    /// health-check rate for a source with health-check paths.
    pub fn metric_points(&self) -> Vec<MetricPoint<'_>> {
        let ts = self.unix.saturating_mul(1000);
        let src = &*self.source;
        let point = |name, labels, value| MetricPoint {
            name,
            labels,
            value,
            timestamp_ms: ts,
        };
        let mut v = Vec::with_capacity(12);
        for (class, n) in CLASSES.iter().zip(self.classes) {
            v.push(point(
                HTTP_REQUESTS,
                vec![(label::SOURCE, src), (label::CLASS, class)],
                n as f64,
            ));
        }
        v.push(point(
            HTTP_RESPONSE_BYTES,
            vec![(label::SOURCE, src)],
            self.bytes as f64,
        ));
        if let (Some(q), true) = (self.latency, self.requests() > 0) {
            for (quantile, value) in QUANTILES.iter().zip([q.p50, q.p95, q.p99]) {
                v.push(point(
                    HTTP_DURATION,
                    vec![(label::SOURCE, src), (label::QUANTILE, quantile)],
                    value,
                ));
            }
        }
        v.push(point(
            HTTP_LOG_MALFORMED,
            vec![(label::SOURCE, src)],
            self.malformed as f64,
        ));
        v.push(point(
            HTTP_LOG_LATE,
            vec![(label::SOURCE, src)],
            self.late as f64,
        ));
        if let Some(n) = self.health_checks {
            v.push(point(
                HTTP_HEALTH_CHECKS,
                vec![(label::SOURCE, src)],
                n as f64,
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::bucket::Quantiles;
    use super::*;

    #[test]
    fn points_for_a_second() {
        let s = SecondStats {
            source: "nginx".into(),
            unix: 10,
            classes: [5, 1, 0, 2, 0],
            bytes: 999,
            malformed: 3,
            late: 0,
            latency: Some(Quantiles {
                p50: 0.01,
                p95: 0.2,
                p99: 0.5,
            }),
            health_checks: None,
        };
        let p = s.metric_points();
        assert_eq!(p.len(), 11);
        assert!(p.iter().all(|p| p.timestamp_ms == 10_000));
        assert_eq!(p[0].labels, [("source", "nginx"), ("class", "2xx")]);
        assert_eq!(p[3].value, 2.0);
        assert_eq!(p[7].name, HTTP_DURATION);
        assert_eq!(p[7].labels[1], ("quantile", "0.95"));
        let quiet = SecondStats {
            classes: [0; 5],
            ..s
        };
        assert_eq!(quiet.metric_points().len(), 8);
    }

    #[test]
    fn health_checks_are_their_own_series() {
        let s = SecondStats {
            source: "nginx".into(),
            unix: 10,
            classes: [5, 0, 0, 0, 0],
            bytes: 1,
            malformed: 0,
            late: 0,
            latency: None,
            health_checks: Some(3),
        };
        let p = s.metric_points();
        let last = p.last().unwrap();
        assert_eq!(
            (
                last.name,
                last.labels.as_slice(),
                last.value,
                last.timestamp_ms
            ),
            (HTTP_HEALTH_CHECKS, &[("source", "nginx")][..], 3.0, 10_000)
        );
        // The request rates do not include them.
        let requests: f64 = p
            .iter()
            .filter(|p| p.name == HTTP_REQUESTS)
            .map(|p| p.value)
            .sum();
        assert_eq!(requests, 5.0);
    }
}
