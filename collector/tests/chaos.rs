//! Chaos, through the real path: five agent processes with durable spools
//! stream to a collector process with a data directory, through a TCP
//! proxy this test controls. While they stream, the collector is SIGKILLed
//! and restarted five times at random moments, one agent is SIGKILLed and
//! restarted, and the network is cut for 10 s, over 60 s at 10 batches a
//! second. What was sent is what the agents say they spooled (their
//! `stacktop_agent::spool=debug` log: a batch is logged once it would
//! survive the agent); afterwards every one of those batches is in
//! `Fleet.History` exactly once, at its original timestamp (each batch
//! carries one `node_memory_used_bytes` point stamped with the batch), and
//! nothing else is. The test prints `N sent, N stored, 0 lost, 0
//! duplicated`.
//!
//! `STACKTOP_CHAOS_INTERVAL` (default 100ms) and `STACKTOP_CHAOS_SECONDS`
//! (default 60) change the rate and length; `STACKTOP_CHAOS_SEED` repeats
//! a run's random moments.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Collector, Proc, bin, channel, series_points, within};
use stacktop_proto::now_unix_ms;
use stacktop_proto::v1::SnapshotRequest;
use stacktop_proto::v1::fleet_client::FleetClient;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const AGENTS: usize = 5;

/// A TCP proxy on 127.0.0.1 whose cable can be pulled: cutting drops every
/// connection through it and refuses new ones until it is mended.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    epoch: Arc<std::sync::Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (c, e, s) = (cut.clone(), epoch.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the cable is out
                }
                let token = e.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            epoch,
            stop,
        }
    }

    fn pull(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut epoch = self.epoch.lock().unwrap();
        epoch.cancel();
        *epoch = CancellationToken::new();
    }

    fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.epoch.lock().unwrap().cancel();
    }
}

fn start_agent(dir: &std::path::Path, name: &str, collector: &str, interval: &str) -> Proc {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\nroles = [\"app\"]\ncollectors = [\"{collector}\"]\n\
             interval = \"{interval}\"\nspool-dir = \"{}\"\nchecks = []\n",
            dir.join(format!("{name}-spool")).display()
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    Proc::spawn(
        std::process::Command::new(bin("stacktop-agent"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info,stacktop_agent::spool=debug")
            .stdout(std::process::Stdio::null())
            .stderr(log),
    )
}

/// The timestamps of the batches agent `name` spooled, from its log
/// (every run of it: the log is appended to).
fn spooled(dir: &std::path::Path, name: &str) -> Vec<i64> {
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
    let mut ts: Vec<i64> = log
        .lines()
        .filter(|l| l.contains(" spooled "))
        .filter_map(|l| {
            let (_, rest) = l.split_once("timestamp_ms=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    ts.sort_unstable();
    ts
}

/// A small deterministic generator (the seed is printed, so a failing run
/// can be repeated).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_lose_nothing_through_collector_kills_an_agent_kill_and_a_cut_network() {
    let interval: Duration = std::env::var("STACKTOP_CHAOS_INTERVAL")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(Duration::from_millis(100));
    let seconds: u64 = std::env::var("STACKTOP_CHAOS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
        .max(30);
    let seed = std::env::var("STACKTOP_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| now_unix_ms() as u64);
    let mut rng = Lcg(seed);
    eprintln!("chaos: interval {interval:?}, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path(), "");
    let proxy = Proxy::start(collector.port).await;
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let url = collector.url();
    let every = humantime::format_duration(interval).to_string();
    let names: Vec<String> = (1..=AGENTS).map(|i| format!("app{i}")).collect();
    let mut agents: Vec<Option<Proc>> = names
        .iter()
        .map(|n| Some(start_agent(dir.path(), n, &via_proxy, &every)))
        .collect();
    within(
        Duration::from_secs(30),
        "every agent reporting",
        async || {
            let mut client = FleetClient::new(channel(&url).await?);
            let snap = client.snapshot(SnapshotRequest::default()).await.ok()?;
            (snap.into_inner().nodes.len() == AGENTS).then_some(())
        },
    )
    .await;

    // The script, in seconds from now: five collector kills at random
    // moments (one in each fifth of the run), one agent down for 2 s at a
    // quarter of the run, the network cut for 10 s from 40 % of it.
    let fifth = seconds / 5;
    let mut kills: Vec<u64> = (0..5)
        .map(|i| 1 + i * fifth + rng.below(fifth - 1))
        .collect();
    kills.sort_unstable();
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_secs(s);
    let victim = rng.below(AGENTS as u64) as usize;
    let mut events: Vec<(u64, &str)> = kills.iter().map(|&k| (k, "kill collector")).collect();
    events.extend([
        (seconds / 4, "kill agent"),
        (seconds / 4 + 2, "restart agent"),
        (seconds * 2 / 5, "cut network"),
        (seconds * 2 / 5 + 10, "mend network"),
        (seconds, "end"),
    ]);
    events.sort();
    for (second, what) in events {
        tokio::time::sleep_until(at(second).into()).await;
        match what {
            "kill collector" => {
                collector.kill();
                collector.restart();
            }
            "kill agent" => {
                agents[victim] = None; // SIGKILL
            }
            "restart agent" => {
                agents[victim] = Some(start_agent(dir.path(), &names[victim], &via_proxy, &every));
            }
            "cut network" => proxy.pull(),
            "mend network" => proxy.mend(),
            _ => {}
        }
        eprintln!("chaos: {second:>2} s {what}");
    }
    let end_ms = now_unix_ms();

    // Every batch spooled before the end reaches the collector, once, at
    // its own timestamp; nothing else does.
    let (mut sent_total, mut stored_total) = (0, 0);
    for name in &names {
        let sent: Vec<i64> = spooled(dir.path(), name)
            .into_iter()
            .filter(|&t| t <= end_ms)
            .collect();
        assert!(!sent.is_empty(), "{name} logged no spooled batch");
        let last = *sent.last().unwrap();
        let stored = within(Duration::from_secs(60), "the agent caught up", async || {
            let ts = series_points(&url, name, "node_memory_used_bytes").await?;
            ts.last().is_some_and(|&t| t >= last).then_some(ts)
        })
        .await;
        let stored: Vec<i64> = stored.into_iter().filter(|&t| t <= end_ms).collect();
        let twice = stored.windows(2).filter(|w| w[0] == w[1]).count();
        let lost: Vec<i64> = sent
            .iter()
            .filter(|t| stored.binary_search(t).is_err())
            .copied()
            .collect();
        let invented: Vec<i64> = stored
            .iter()
            .filter(|t| sent.binary_search(t).is_err())
            .copied()
            .collect();
        eprintln!(
            "chaos: {name}: {} sent, {} stored, {} lost, {twice} duplicated",
            sent.len(),
            stored.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "{name}: {} of {} sent batches are not stored: {:?}\n{}",
            lost.len(),
            sent.len(),
            &lost[..lost.len().min(20)],
            collector.log()
        );
        assert_eq!(twice, 0, "{name}: {twice} points stored twice");
        assert!(
            invented.is_empty(),
            "{name}: stored points no agent logged sending: {invented:?}"
        );
        sent_total += sent.len();
        stored_total += stored.len();
    }
    eprintln!(
        "chaos: {AGENTS} agents every {interval:?} for {seconds} s, collector SIGKILLed {} times, \
         one agent SIGKILLed, network cut 10 s: {sent_total} sent, {stored_total} stored, \
         0 lost, 0 duplicated",
        kills.len()
    );
}
