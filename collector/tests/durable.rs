//! Acked means durable, through the real path: a `stacktop-collector`
//! process with a data directory, three real agents at 1 s, and the
//! collector SIGKILLed and restarted three times while they stream.
//!
//! Before the journal, only the seconds after the last restart survived and
//! a restarted collector said `nodes: []`. Now: right after each restart the
//! nodes are known (from disk, before any agent reconnects), and at the end
//! every agent's CPU series has one point per second over the whole run,
//! none missing and none twice.

mod common;

use std::time::Duration;

use common::{Collector, Proc, channel, cpu_points, start_agent, within};
use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::{HistoryRequest, SnapshotRequest, TimedValue};

const NODES: [&str; 3] = ["web1", "app1", "db1"];

async fn node_names(url: &str) -> Option<Vec<String>> {
    let mut client = FleetClient::new(channel(url).await?);
    let snap = client.snapshot(SnapshotRequest::default()).await.ok()?;
    Some(
        snap.into_inner()
            .nodes
            .into_iter()
            .map(|n| n.name)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_three_times_the_collector_keeps_every_acknowledged_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path(), "");
    let url = collector.url();
    // Each agent checks something that answers: the collector's own port.
    let target = format!("127.0.0.1:{}", collector.port);
    let _agents: Vec<Proc> = NODES
        .iter()
        .map(|n| start_agent(dir.path(), n, "app", &url, &target))
        .collect();
    within(Duration::from_secs(30), "three nodes", async || {
        (node_names(&url).await?.len() == 3).then_some(())
    })
    .await;

    for round in 1..=3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        collector.kill();
        collector.restart();
        // Known from disk at once, not `nodes: []` until agents return.
        let names = within(Duration::from_secs(20), "the collector back", async || {
            node_names(&url).await
        })
        .await;
        assert_eq!(
            names.len(),
            3,
            "round {round}: {names:?}\n{}",
            collector.log()
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut total = 0;
    for node in NODES {
        let ts = cpu_points(&url, node).await.unwrap();
        assert!(ts.len() >= 15, "{node}: only {} points", ts.len());
        let twice = ts.windows(2).filter(|w| w[0] == w[1]).count();
        assert_eq!(twice, 0, "{node}: points stored twice");
        // One point a second: the widest gap is one interval (plus the
        // sampler's jitter), never the seconds around a kill.
        let widest = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            widest <= 1_600,
            "{node}: a {widest} ms hole in {ts:?}\n{}",
            collector.log()
        );
        total += ts.len();
    }
    eprintln!(
        "3 agents, collector SIGKILLed 3 times: {total} CPU points stored, \
         one a second, 0 lost, 0 duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_node_stays_forgotten_and_an_expected_one_is_listed_before_it_reports() {
    use stacktop_proto::v1::ForgetRequest;
    use stacktop_proto::v1::operator_client::OperatorClient;

    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path(), "expected-nodes = [\"db9\"]\n");
    let url = collector.url();
    let target = format!("127.0.0.1:{}", collector.port);
    let agent = start_agent(dir.path(), "old1", "app", &url, &target);
    within(Duration::from_secs(30), "old1 and db9 listed", async || {
        let names = node_names(&url).await?;
        (names.contains(&"old1".to_string()) && names.contains(&"db9".to_string())).then_some(())
    })
    .await;
    let mut operator = OperatorClient::new(channel(&url).await.unwrap());
    let forget = |node: &str| ForgetRequest {
        node: node.into(),
        by: "test".into(),
    };
    // Not while its agent is connected: it would come straight back.
    let err = operator.forget(forget("old1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    drop(agent); // SIGKILL: the server is gone for good
    within(Duration::from_secs(30), "old1 disconnected", async || {
        operator.forget(forget("old1")).await.ok()
    })
    .await;
    assert!(
        !node_names(&url)
            .await
            .unwrap()
            .contains(&"old1".to_string())
    );
    let err = operator.forget(forget("nosuch")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // A restart replays the journal, but not the forgotten node.
    collector.kill();
    collector.restart();
    let names = within(Duration::from_secs(20), "the collector back", async || {
        node_names(&url).await
    })
    .await;
    assert_eq!(names, ["db9"], "{}", collector.log());
}

/// `node`'s CPU history since `since_ms` as `(timestamp, step)` pairs.
async fn cpu_history(url: &str, node: &str, since_ms: i64) -> Option<Vec<TimedValue>> {
    let mut client = FleetClient::new(channel(url).await?);
    let reply = client
        .history(HistoryRequest {
            node: node.into(),
            series: "node_cpu_usage_ratio".into(),
            labels: vec![],
            since_ms,
        })
        .await
        .ok()?
        .into_inner();
    reply
        .series
        .into_iter()
        .find(|s| s.labels.is_empty())
        .map(|s| s.points)
}

/// Checks that `points` are coarse buckets, then full resolution: buckets
/// on 10 s boundaries with min <= avg <= max, all before the first raw
/// point. Returns how many buckets.
fn coarse_then_raw(points: &[TimedValue], log: &str) -> usize {
    let buckets = points.iter().take_while(|p| p.step_ms > 0).count();
    let (coarse, raw) = points.split_at(buckets);
    assert!(!raw.is_empty(), "no full-resolution points\n{log}");
    assert!(raw.iter().all(|p| p.step_ms == 0 && p.min.is_none()));
    for b in coarse {
        assert_eq!(b.step_ms, 10_000, "{b:?}");
        assert_eq!(b.timestamp_ms % 10_000, 0, "{b:?}");
        let (min, max) = (b.min.unwrap(), b.max.unwrap());
        assert!(min <= b.value && b.value <= max, "{b:?}");
        assert!(
            b.timestamp_ms + b.step_ms <= raw[0].timestamp_ms,
            "{b:?} overlaps"
        );
    }
    assert!(
        coarse
            .windows(2)
            .all(|w| w[1].timestamp_ms == w[0].timestamp_ms + 10_000),
        "a hole in the buckets: {coarse:?}"
    );
    buckets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_memory_comes_from_the_coarse_tiers_and_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // 9 s at full resolution: rolled up every 3 s, so the tiers are
    // exercised in seconds instead of the default 15 minutes.
    let mut collector = Collector::start(dir.path(), "history = \"9s\"\n");
    let url = collector.url();
    let target = format!("127.0.0.1:{}", collector.port);
    let _agent = start_agent(dir.path(), "web1", "web", &url, &target);
    let started = stacktop_proto::now_unix_ms();
    // Long enough for two whole 10 s buckets to have left memory.
    let before = within(
        Duration::from_secs(90),
        "two buckets older than memory",
        async || {
            let points = cpu_history(&url, "web1", started - 60_000).await?;
            (points.iter().filter(|p| p.step_ms > 0).count() >= 2).then_some(points)
        },
    )
    .await;
    let buckets = coarse_then_raw(&before, &collector.log());
    // `since_ms = 0` is what memory holds, as before the tiers.
    let recent = cpu_history(&url, "web1", 0).await.unwrap();
    assert!(recent.iter().all(|p| p.step_ms == 0));
    assert!(
        recent.len() <= 12,
        "9 s of history held {} points",
        recent.len()
    );

    collector.kill();
    collector.restart();
    let after = within(Duration::from_secs(20), "the collector back", async || {
        cpu_history(&url, "web1", started - 60_000).await
    })
    .await;
    let buckets_after = after.iter().take_while(|p| p.step_ms > 0).count();
    assert!(
        buckets_after >= buckets,
        "{buckets} buckets before SIGKILL, {buckets_after} after\n{}",
        collector.log()
    );
    // The buckets that were complete before the kill are the same after it.
    for b in &before[..buckets.saturating_sub(1)] {
        assert!(
            after.iter().any(|a| a == b),
            "{b:?} changed across the restart\n{after:?}"
        );
    }
}
