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
use stacktop_proto::v1::SnapshotRequest;
use stacktop_proto::v1::fleet_client::FleetClient;

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
