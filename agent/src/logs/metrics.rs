//! Turning a complete [`SecondStats`] into named metric points for the sampler.
//!
//! Names follow the project's Prometheus-style convention (base units, no renaming needed on
//! export). Every point of a second carries that second's start as its timestamp, so the
//! collector files it under the log's clock, not under the moment it arrived.

use super::bucket::{CLASSES, SecondStats};

/// Requests in the second, labelled `source` and `class` (`2xx`, `3xx`, `4xx`, `5xx`,
/// `other`). The collector sums it over classes and sources into the node's QPS.
pub const HTTP_REQUESTS_PER_SECOND: &str = "http_requests_per_second";
/// Response bytes sent in the second, labelled `source`.
pub const HTTP_RESPONSE_BYTES_PER_SECOND: &str = "http_response_bytes_per_second";
/// Request latency quantiles in seconds, labelled `source` and `quantile` (`0.5`, `0.95`,
/// `0.99`); only for formats with a request time and seconds with requests.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Lines that could not be parsed (or were too long), labelled `source`.
pub const HTTP_LOG_MALFORMED_LINES_PER_SECOND: &str = "http_log_malformed_lines_per_second";
/// Lines that arrived after their second had already been reported, labelled `source`.
pub const HTTP_LOG_LATE_LINES_PER_SECOND: &str = "http_log_late_lines_per_second";

/// One value of one series at one time, borrowing its label values from the stats.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint<'a> {
    /// Metric name, one of the constants in this module.
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
    /// lines always (zeros are real rates), and three latency quantiles when known.
    pub fn metric_points(&self) -> Vec<MetricPoint<'_>> {
        let ts = self.unix.saturating_mul(1000);
        let src = &*self.source;
        let point = |name, labels, value| MetricPoint {
            name,
            labels,
            value,
            timestamp_ms: ts,
        };
        let mut v = Vec::with_capacity(11);
        for (class, n) in CLASSES.iter().zip(self.classes) {
            v.push(point(
                HTTP_REQUESTS_PER_SECOND,
                vec![("source", src), ("class", class)],
                n as f64,
            ));
        }
        v.push(point(
            HTTP_RESPONSE_BYTES_PER_SECOND,
            vec![("source", src)],
            self.bytes as f64,
        ));
        if let (Some(q), true) = (self.latency, self.requests() > 0) {
            for (quantile, value) in [("0.5", q.p50), ("0.95", q.p95), ("0.99", q.p99)] {
                v.push(point(
                    HTTP_REQUEST_DURATION_SECONDS,
                    vec![("source", src), ("quantile", quantile)],
                    value,
                ));
            }
        }
        v.push(point(
            HTTP_LOG_MALFORMED_LINES_PER_SECOND,
            vec![("source", src)],
            self.malformed as f64,
        ));
        v.push(point(
            HTTP_LOG_LATE_LINES_PER_SECOND,
            vec![("source", src)],
            self.late as f64,
        ));
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
        };
        let p = s.metric_points();
        assert_eq!(p.len(), 11);
        assert!(p.iter().all(|p| p.timestamp_ms == 10_000));
        assert_eq!(p[0].labels, [("source", "nginx"), ("class", "2xx")]);
        assert_eq!(p[3].value, 2.0);
        assert_eq!(p[7].name, HTTP_REQUEST_DURATION_SECONDS);
        assert_eq!(p[7].labels[1], ("quantile", "0.95"));
        let quiet = SecondStats {
            classes: [0; 5],
            ..s
        };
        assert_eq!(quiet.metric_points().len(), 8);
    }
}
