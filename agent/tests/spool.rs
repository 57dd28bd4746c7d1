//! The durable spool through the real path: an agent process with a
//! `spool-dir` samples while its collector is away, is killed with
//! SIGKILL, and is started again once the collector is up. Everything the
//! first process sampled reaches the collector, once, at its original
//! timestamps, under the same instance.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stacktop_collector::{CancellationToken, Config as CollectorConfig, serve};
use stacktop_proto::v1::HistoryRequest;
use stacktop_proto::v1::fleet_client::FleetClient;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");

/// An agent process, SIGKILLed and reaped when dropped.
struct Agent(Child);

impl Agent {
    fn start(config: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        Self(
            Command::new(BIN)
                .arg("--config")
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn cpu_points(url: &str) -> Option<Vec<i64>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = FleetClient::new(channel);
    let reply = client
        .history(HistoryRequest {
            node: "web1".into(),
            series: "node_cpu_usage_ratio".into(),
            labels: vec![],
            since_ms: 0,
        })
        .await
        .ok()?
        .into_inner();
    let mut ts: Vec<i64> = reply
        .series
        .into_iter()
        .filter(|s| s.labels.is_empty())
        .flat_map(|s| s.points)
        .map(|p| p.timestamp_ms)
        .collect();
    ts.sort_unstable();
    Some(ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_delivers_what_it_spooled_while_the_collector_was_away() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"web1\"\nroles = [\"web\"]\ncollectors = [\"http://127.0.0.1:{port}\"]\n\
             interval = \"200ms\"\nspool-dir = \"{}\"\nchecks = []\n",
            dir.path().join("spool").display()
        ),
    )
    .unwrap();

    // The collector is away: the first agent spools, then is killed.
    let mut first = Agent::start(&config, &dir.path().join("agent1.log"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = first.0.kill();
    let _ = first.0.wait();
    let killed_ms = stacktop_proto::now_unix_ms();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let collector = tokio::spawn(serve(
        listener,
        CollectorConfig::default(),
        shutdown.clone(),
    ));
    let _second = Agent::start(&config, &dir.path().join("agent2.log"));
    let url = format!("http://127.0.0.1:{port}");

    // Until the second agent's own points arrive after the first's.
    let start = Instant::now();
    let ts = loop {
        if let Some(ts) = cpu_points(&url).await
            && ts.last().is_some_and(|&t| t > killed_ms + 1_000)
        {
            break ts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never delivered: {}",
            std::fs::read_to_string(dir.path().join("agent2.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let before_kill: Vec<i64> = ts.iter().copied().filter(|&t| t < killed_ms).collect();
    // About 15 samples in 3 s at 200 ms (the first takes a moment).
    assert!(
        before_kill.len() >= 8,
        "only {} points from the first run: {ts:?}",
        before_kill.len()
    );
    let twice = ts.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(twice, 0, "points stored twice: {ts:?}");
    let widest = before_kill.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest <= 600,
        "a {widest} ms hole in the spooled run: {before_kill:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("agent2.log")).unwrap_or_default();
    assert!(log.contains("spooled="), "{log}");
    eprintln!(
        "agent killed after 3 s with its collector away: {} spooled points delivered after the restart, 0 lost, 0 duplicated",
        before_kill.len()
    );
    shutdown.cancel();
    let _ = collector.await;
}
