//! The durable spool through the real path: an agent process with a
//! `spool-dir` samples while its collector is away, is killed with
//! SIGKILL, and is started again once the collector is up. Everything the
//! first process sampled reaches the collector, once, at its original
//! timestamps, under the same instance. And a spool too small for the
//! outage: the oldest batches go, and the agent's own count of them
//! (`stacktop_agent_spool_dropped_batches_total`) is exact.

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
                .env("RUST_LOG", "info,stacktop_agent::spool=debug")
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
    Some(
        points(url, "node_cpu_usage_ratio")
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect(),
    )
}

/// (timestamp, value) of web1's unlabelled `series`, oldest first.
async fn points(url: &str, series: &str) -> Option<Vec<(i64, f64)>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = FleetClient::new(channel);
    let reply = client
        .history(HistoryRequest {
            node: "web1".into(),
            series: series.into(),
            labels: vec![],
            since_ms: 0,
        })
        .await
        .ok()?
        .into_inner();
    let mut ts: Vec<(i64, f64)> = reply
        .series
        .into_iter()
        .filter(|s| s.labels.is_empty())
        .flat_map(|s| s.points)
        .map(|p| (p.timestamp_ms, p.value))
        .collect();
    ts.sort_by_key(|p| p.0);
    Some(ts)
}

/// The timestamps of the batches the agent logged as spooled.
fn spooled(log: &Path) -> Vec<i64> {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains(" spooled "))
        .filter_map(|l| {
            let (_, rest) = l.split_once("timestamp_ms=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_the_oldest_and_counts_them_exactly() {
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
             interval = \"100ms\"\nspool-dir = \"{}\"\nspool-max-bytes = 65536\nchecks = []\n",
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let _agent = Agent::start(&config, &log);

    // The collector stays away until the spool has been full for a while.
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("dropped the oldest batches")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the spool never filled: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back_ms = stacktop_proto::now_unix_ms();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let collector = tokio::spawn(serve(
        listener,
        CollectorConfig::default(),
        shutdown.clone(),
    ));
    let url = format!("http://127.0.0.1:{port}");

    // Every batch carries node_memory_used_bytes at its own timestamp.
    // Wait until the agent is live again (it reconnects after its
    // backoff, so the outage lasts until then), and count up to there.
    let start = Instant::now();
    let stored = loop {
        if let Some(ts) = points(&url, "node_memory_used_bytes").await
            && ts
                .last()
                .is_some_and(|&(t, _)| t > stacktop_proto::now_unix_ms() - 1_000)
        {
            break ts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never delivered: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A second more, so that the batches after the last drop (which carry
    // the final count) are in too.
    drop(stored);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = points(&url, "node_memory_used_bytes").await.unwrap();
    let cutoff = stored.last().unwrap().0;
    let sent: Vec<i64> = spooled(&log).into_iter().filter(|&t| t <= cutoff).collect();
    let stored: Vec<i64> = stored.iter().map(|&(t, _)| t).collect();
    let dropped: Vec<i64> = sent
        .iter()
        .copied()
        .filter(|t| stored.binary_search(t).is_err())
        .collect();
    assert!(!dropped.is_empty(), "nothing was dropped");
    assert!(
        stored.iter().all(|t| sent.contains(t)),
        "stored what was never spooled"
    );
    let newest_dropped = *dropped.last().unwrap();
    let Some(&oldest_stored) = stored.first() else {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = logged
            .lines()
            .filter(|l| !l.contains(" spooled ") && !l.contains("dropped the oldest"))
            .collect();
        panic!(
            "nothing stored; sent {} from {}; log:\n{}",
            sent.len(),
            sent[0],
            tail.join("\n")
        );
    };
    assert!(
        newest_dropped < oldest_stored,
        "the dropped are not the oldest: dropped up to {newest_dropped}, stored from {oldest_stored}"
    );
    // The agent's own count, as the collector received it.
    let count = points(&url, "stacktop_agent_spool_dropped_batches_total")
        .await
        .and_then(|p| p.last().map(|&(_, v)| v))
        .expect("the dropped count is reported");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let totals: Vec<&str> = logged
        .lines()
        .filter(|l| {
            l.contains("dropped the oldest") || l.contains("keeping up") || l.contains("connected")
        })
        .collect();
    assert_eq!(
        count,
        dropped.len() as f64,
        "reported dropped count; {} dropped from {} sent, first sent {}, last dropped {:?}, stored from {:?}...; last spool log lines:\n{}",
        dropped.len(),
        sent.len(),
        sent[0],
        &dropped[dropped.len().saturating_sub(3)..],
        &stored[..stored.len().min(3)],
        totals[totals.len().saturating_sub(6)..].join("\n")
    );
    eprintln!(
        "spool of 64 KiB, collector away {:.1} s at 10 batches/s: {} sampled, {} dropped (the \
         oldest), {} delivered; the agent reports {count} dropped",
        (back_ms - sent[0]) as f64 / 1000.0,
        sent.len(),
        dropped.len(),
        stored.len()
    );
    shutdown.cancel();
    let _ = collector.await;
}
