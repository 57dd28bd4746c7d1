//! Chaos, through the real path: five agent processes with durable spools
//! stream to a collector process with a data directory, through a TCP
//! proxy this test controls. While they stream, the collector is SIGKILLed
//! and restarted five times at random moments, one agent is SIGKILLed and
//! restarted, and the network is cut for 10 s. Afterwards every agent's
//! CPU series in `Fleet.History` has one point per interval over the whole
//! run (none missing, except while the killed agent was not running and so
//! sent nothing) and none twice, at the original timestamps.
//!
//! CI runs it at a 1 s interval for about 45 s (a missing batch is then a
//! 2 s hole, which no scheduling delay on a busy machine looks like);
//! `STACKTOP_CHAOS_INTERVAL=100ms` runs it at the 10 batches a
//! second, by hand, where one late tick looks like a lost batch and the
//! check only catches three lost in a row. `STACKTOP_CHAOS_SEED` repeats a
//! run's random moments.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Collector, Proc, bin, channel, cpu_points, within};
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
            .stdout(std::process::Stdio::null())
            .stderr(log),
    )
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
        .unwrap_or(Duration::from_secs(1));
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
    // moments, one agent down from 8 to 10 s, the network cut from 13 to
    // 23 s; the run ends at 40 s.
    let mut kills: Vec<u64> = (0..5).map(|i| 2 + i * 7 + rng.below(5)).collect();
    kills.sort_unstable();
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_secs(s);
    let victim = rng.below(AGENTS as u64) as usize;
    let mut events: Vec<(u64, &str)> = kills.iter().map(|&k| (k, "kill collector")).collect();
    events.extend([
        (8, "kill agent"),
        (10, "restart agent"),
        (13, "cut network"),
        (23, "mend network"),
        (40, "end"),
    ]);
    events.sort();
    let (mut agent_down_ms, mut agent_up_ms) = (0, 0);
    for (second, what) in events {
        tokio::time::sleep_until(at(second).into()).await;
        match what {
            "kill collector" => {
                collector.kill();
                collector.restart();
            }
            "kill agent" => {
                agents[victim] = None; // SIGKILL
                agent_down_ms = now_unix_ms();
            }
            "restart agent" => {
                agents[victim] = Some(start_agent(dir.path(), &names[victim], &via_proxy, &every));
                agent_up_ms = now_unix_ms();
            }
            "cut network" => proxy.pull(),
            "mend network" => proxy.mend(),
            _ => {}
        }
        eprintln!("chaos: {second:>2} s {what}");
    }
    let end_ms = now_unix_ms();

    // Everything sampled before the end reaches the collector. At 1 s a
    // lost batch is a 2 s hole, and a late tick on a busy machine is not;
    // below that, one late tick (sampled late, the next on time after it)
    // looks like a lost batch, so the check only catches 3 lost in a row.
    let every_ms = i64::try_from(interval.as_millis()).unwrap();
    let slack = if every_ms >= 1_000 {
        every_ms * 16 / 10
    } else {
        every_ms * 35 / 10
    };
    let mut stored = 0;
    for (i, name) in names.iter().enumerate() {
        let ts = within(Duration::from_secs(60), "the agent caught up", async || {
            let ts = cpu_points(&url, name).await?;
            ts.last().is_some_and(|&t| t >= end_ms).then_some(ts)
        })
        .await;
        let twice = ts.windows(2).filter(|w| w[0] == w[1]).count();
        assert_eq!(twice, 0, "{name}: {twice} points stored twice");
        for w in ts.windows(2) {
            let gap = w[1] - w[0];
            // The killed agent sampled nothing while it was not running.
            let down = i == victim && w[0] <= agent_up_ms && w[1] >= agent_down_ms;
            assert!(
                gap <= slack || down,
                "{name}: a {gap} ms hole after {} (agent down {agent_down_ms}..{agent_up_ms})\n{}",
                w[0],
                collector.log()
            );
        }
        stored += ts.len();
    }
    eprintln!(
        "chaos: {AGENTS} agents every {interval:?}, collector SIGKILLed {} times, one agent \
         SIGKILLed, network cut 10 s: {stored} points stored, 0 lost, 0 duplicated",
        kills.len()
    );
}
