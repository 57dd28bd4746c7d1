//! Request rates from access logs, per node and across tiers.
//!
//! # The web/LB cross-check
//!
//! Every request the LB logs should reach a web server that logs it too, so
//! over the same seconds the web tier's count should equal the LB tier's:
//! a ratio below 1 means requests are lost, above 1 that traffic reaches the
//! web tier around the LB. The check compares **the same complete seconds
//! on both sides**: the window ends at the newest second every fresh source
//! has reported and spans [`WINDOW_SECONDS`] (fewer while a source is new).
//! Comparing each side's own latest seconds instead would make the ratio
//! swing at low traffic (one request on the wrong side of a boundary is 10 %
//! at 1 req/s). HAProxy stamps a request when it accepted it and Nginx when
//! it finished, so a request can still straddle the window's edges; with
//! millisecond latencies that is a fraction of a percent. LB health checks
//! that reach the web servers' logs are not in `http_requests_per_second`
//! (the agent counts them apart, see `health-check-paths`), so an honest
//! stack reads 1.00 at 1 req/s as at 1,000.
//!
//! # Per node
//!
//! [`source_traffic`] turns a node's fresh latest values into one row per
//! access-log source for the detail screen: rates by class, total,
//! latency quantiles and recognised health checks.

use std::collections::BTreeMap;

use stacktop_proto::v1::{SourceTraffic, Traffic};

use super::copy::{LatestValue, SourceSeconds};
use crate::slot::Slot;

/// Seconds the web/LB cross-check compares.
pub const WINDOW_SECONDS: u32 = 10;

/// The web/LB cross-check over the LB tier's and the web tier's fresh
/// sources (see the module docs).
pub fn cross_check(lb: &[&SourceSeconds], web: &[&SourceSeconds]) -> Traffic {
    let all = || lb.iter().chain(web);
    let Some(newest_common) = all().filter_map(|s| s.seconds.last()).map(|s| s.0).min() else {
        return Traffic::default();
    };
    let end = newest_common + 1_000;
    let oldest_common = all()
        .filter_map(|s| s.seconds.first())
        .map(|s| s.0)
        .max()
        .unwrap_or(newest_common);
    let start = (end - i64::from(WINDOW_SECONDS) * 1_000).max(oldest_common);
    let seconds = ((end - start) / 1_000).max(0);
    if seconds == 0 {
        return Traffic::default();
    }
    let rate = |side: &[&SourceSeconds]| -> Option<f64> {
        let sum: f64 = side
            .iter()
            .flat_map(|s| s.totals())
            .filter(|(ts, _)| (start..end).contains(ts))
            .map(|(_, v)| v)
            .sum();
        (!side.is_empty()).then_some(sum / seconds as f64)
    };
    let lb_rate = rate(lb);
    let web_rate = rate(web);
    Traffic {
        web_lb_request_ratio: match (web_rate, lb_rate) {
            (Some(web), Some(lb)) if lb > 0.0 => Some(web / lb),
            _ => None,
        },
        lb_requests_per_second: lb_rate,
        web_requests_per_second: web_rate,
        window_end_ms: end,
        window_seconds: u32::try_from(seconds).unwrap_or(WINDOW_SECONDS),
    }
}

/// One row per access-log source from a node's `fresh` latest values.
pub fn source_traffic<'a>(fresh: impl IntoIterator<Item = &'a LatestValue>) -> Vec<SourceTraffic> {
    let mut by_source: BTreeMap<&'a str, SourceTraffic> = BTreeMap::new();
    for v in fresh {
        let source = match &v.slot {
            Slot::Requests { source, .. }
            | Slot::Duration { source, .. }
            | Slot::HealthChecks { source } => &**source,
            _ => continue,
        };
        let row = by_source.entry(source).or_insert_with(|| SourceTraffic {
            source: source.to_string(),
            ..Default::default()
        });
        match &v.slot {
            Slot::Requests { class, .. } => {
                row.timestamp_ms = row.timestamp_ms.max(v.timestamp_ms);
                *row.total.get_or_insert(0.0) += v.value;
                let slot = match class {
                    0 => &mut row.class_2xx,
                    1 => &mut row.class_3xx,
                    2 => &mut row.class_4xx,
                    3 => &mut row.class_5xx,
                    _ => continue,
                };
                *slot.get_or_insert(0.0) += v.value;
            }
            Slot::Duration { quantile, .. } => {
                let slot = match quantile {
                    0 => &mut row.p50_seconds,
                    1 => &mut row.p95_seconds,
                    _ => &mut row.p99_seconds,
                };
                *slot = Some(v.value);
            }
            _ => *row.health_checks.get_or_insert(0.0) += v.value,
        }
    }
    by_source.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::SeriesKey;
    use stacktop_proto::metrics;
    use stacktop_proto::v1::Label;

    const NOW: i64 = 1_700_000_000_000;

    fn source(name: &str, seconds: &[(i64, f64)]) -> SourceSeconds {
        SourceSeconds {
            source: name.into(),
            seconds: seconds
                .iter()
                .map(|&(ts, n)| (ts, [n, 0.0, 0.0, 0.0, 0.0]))
                .collect(),
            updated_ms: NOW,
        }
    }

    fn check(lb: &[SourceSeconds], web: &[SourceSeconds]) -> Traffic {
        let lb: Vec<&SourceSeconds> = lb.iter().collect();
        let web: Vec<&SourceSeconds> = web.iter().collect();
        cross_check(&lb, &web)
    }

    #[test]
    fn the_check_compares_the_same_seconds_on_both_sides() {
        // The LB has reported one second more than the web servers: that
        // second is not compared yet.
        let lb = [source(
            "haproxy",
            &[(NOW - 3_000, 10.0), (NOW - 2_000, 12.0), (NOW - 1_000, 9.0)],
        )];
        let web = [
            source("nginx", &[(NOW - 3_000, 6.0), (NOW - 2_000, 6.0)]),
            source("nginx", &[(NOW - 3_000, 4.0), (NOW - 2_000, 6.0)]),
        ];
        let t = check(&lb, &web);
        assert_eq!(t.window_end_ms, NOW - 1_000);
        assert_eq!(t.window_seconds, 2);
        assert_eq!(t.lb_requests_per_second, Some(11.0));
        assert_eq!(t.web_requests_per_second, Some(11.0));
        assert_eq!(t.web_lb_request_ratio, Some(1.0));
    }

    #[test]
    fn one_request_a_second_reads_one() {
        // 1 req/s for 30 s, each side reporting with its own lag.
        let seconds = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..to).map(|s| (NOW + s * 1_000, 1.0)).collect()
        };
        let lb = [source("haproxy", &seconds(0, 30))];
        let web = [
            source("nginx", &seconds(0, 28)),
            source("other", &seconds(5, 29)),
        ];
        // Two web sources that each see every other request would be 1.0
        // too; here both logs see all of them: web is 2 per second.
        let t = check(&lb, &web);
        assert_eq!(t.window_seconds, WINDOW_SECONDS);
        assert_eq!(t.window_end_ms, NOW + 28_000);
        assert_eq!(t.web_lb_request_ratio, Some(2.0));
        let t = check(&lb, &web[..1]);
        assert_eq!(t.web_lb_request_ratio, Some(1.0));
        assert_eq!(t.lb_requests_per_second, Some(1.0));
    }

    #[test]
    fn a_side_without_sources_is_unknown_and_an_idle_lb_gives_no_ratio() {
        let lb = [source("haproxy", &[(NOW - 2_000, 100.0)])];
        let t = check(&lb, &[]);
        assert_eq!(t.lb_requests_per_second, Some(100.0));
        assert_eq!(t.web_requests_per_second, None);
        assert_eq!(t.web_lb_request_ratio, None);
        let idle = [source("haproxy", &[(NOW, 0.0)])];
        let web = [source("nginx", &[(NOW, 0.0)])];
        let t = check(&idle, &web);
        assert_eq!(t.lb_requests_per_second, Some(0.0));
        assert_eq!(t.web_requests_per_second, Some(0.0));
        assert_eq!(t.web_lb_request_ratio, None);
        assert_eq!(check(&[], &[]), Traffic::default());
    }

    fn value(name: &str, labels: &[(&str, &str)], v: f64) -> LatestValue {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        let key = Arc::new(SeriesKey::new(name, &labels));
        LatestValue {
            slot: Slot::of(&key),
            key,
            timestamp_ms: NOW,
            value: v,
            updated_ms: NOW,
        }
    }

    #[test]
    fn sources_group_classes_quantiles_and_health_checks() {
        let values = [
            value(
                metrics::HTTP_REQUESTS,
                &[("source", "nginx"), ("class", "2xx")],
                90.0,
            ),
            value(
                metrics::HTTP_REQUESTS,
                &[("source", "nginx"), ("class", "5xx")],
                2.0,
            ),
            value(
                metrics::HTTP_REQUESTS,
                &[("source", "nginx"), ("class", "other")],
                1.0,
            ),
            value(
                metrics::HTTP_DURATION,
                &[("source", "nginx"), ("quantile", "0.95")],
                0.2,
            ),
            value(metrics::HTTP_HEALTH_CHECKS, &[("source", "nginx")], 3.0),
            value(
                metrics::HTTP_REQUESTS,
                &[("source", "api"), ("class", "2xx")],
                5.0,
            ),
            value("node_load1", &[], 1.0),
        ];
        let t = source_traffic(&values);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].source, "api");
        let nginx = &t[1];
        assert_eq!(
            (nginx.class_2xx, nginx.class_3xx, nginx.class_5xx),
            (Some(90.0), None, Some(2.0))
        );
        assert_eq!(nginx.total, Some(93.0));
        assert_eq!(nginx.p95_seconds, Some(0.2));
        assert_eq!(nginx.p50_seconds, None);
        assert_eq!(nginx.health_checks, Some(3.0));
    }
}
