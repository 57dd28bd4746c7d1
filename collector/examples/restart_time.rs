//! Restart time with 15 minutes of history (BENCHMARKS.md section 7,
//! issue "Nothing lost", acceptance 6): how long the real collector takes,
//! started on a data directory holding NODES x SERIES series at one point a
//! second for SECONDS, until `Fleet.Snapshot` answers with every node
//! known; and how many bytes a sample takes on disk.
//!
//! 1. Fill: the data directory is written through the collector's own
//!    journal ([`Journal::append`]), one batch per node per second as an
//!    agent stream would journal it, a second's batches at once (so the
//!    writer groups them, as it does for 1,000 live agents). Values look
//!    like a fleet's: CPU ratios, load averages, byte rates, counters,
//!    constants, request rates and latencies, with check results every
//!    5th batch. Arrival times end when the fill starts, so every entry is
//!    at most SECONDS old then.
//! 2. Restart: the collector binary is started on that directory with
//!    `--history` just long enough that nothing written aged out while the
//!    fill ran (the fill's own duration plus a minute; printed), and
//!    `Fleet.Snapshot` is asked every 20 ms until it lists every node. The
//!    time from spawn to that answer is the restart time; the collector's
//!    own log says how many entries it replayed, which must be all of them.
//!
//! The file is in the page cache when the collector starts (as after a
//! crash and restart, not after a reboot).
//!
//! `cargo run --release -p stacktop-collector --example restart_time -- 1000 50 900`
//! (nodes, series per node, seconds; the default), or `bench/restart.sh`.
//! STACKTOP_COLLECTOR names the binary [default: target/release/stacktop-collector].

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use stacktop_collector::bench::agent::{roles, series};
use stacktop_collector::bench::process::usage;
use stacktop_collector::journal::{Entry, FILE, Journal};
use stacktop_collector::store::Store;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{Batch, CheckResult, Label, Point, SeriesDef, SnapshotRequest};
use stacktop_proto::{Health, metrics, now_unix_ms};

/// How long the collector may take before the run is called failed.
const PATIENCE: Duration = Duration::from_secs(1_800);

/// The collector process; killed (by its own PID) and reaped when dropped.
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator (xorshift64*): the same data every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated node's state from second to second, so that values move
/// the way real ones do: random walks, growing counters, constants.
struct NodeSim {
    rng: Rng,
    cpu: f64,
    mem_used: f64,
    fs_used: [f64; 2],
    rps: f64,
}

const MEM_TOTAL: f64 = 16.0 * 1024.0 * 1024.0 * 1024.0;
const FS_SIZE: [f64; 2] = [100.0e9, 500.0e9];

impl NodeSim {
    fn new(i: usize) -> Self {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        let cpu = 0.05 + rng.unit() * 0.4;
        let mem_used = (2.0 + rng.unit() * 8.0) * 1024.0 * 1024.0 * 1024.0;
        let fs_used = [FS_SIZE[0] * (0.2 + rng.unit() * 0.5), FS_SIZE[1] * 0.3];
        let rps = 20.0 + rng.unit() * 200.0;
        Self {
            rng,
            cpu,
            mem_used,
            fs_used,
            rps,
        }
    }

    /// Advances one second.
    fn step(&mut self) {
        let r = &mut self.rng;
        self.cpu = (self.cpu + (r.unit() - 0.5) * 0.1).clamp(0.01, 0.99);
        self.mem_used = (self.mem_used + ((r.unit() - 0.5) * 8.0e6 / 4096.0).round() * 4096.0)
            .clamp(1.0e9, MEM_TOTAL * 0.95);
        self.fs_used[0] += (r.unit() * 3.0).floor() * 4096.0;
        self.rps = (self.rps + (r.unit() - 0.5) * 10.0).clamp(1.0, 500.0);
    }

    /// The value of series `name` with `labels` at `second` (uptime).
    fn value(&mut self, name: &str, labels: &[(&str, String)], second: u64) -> f64 {
        let label = |k: &str| {
            labels
                .iter()
                .find(|(key, _)| *key == k)
                .map_or("", |(_, v)| v.as_str())
        };
        // Whole percents of a core, as the kernel's jiffies give them.
        let ratio = |x: f64| (x * 100.0).round() / 100.0;
        let noise = self.rng.unit();
        match name {
            metrics::CPU_USAGE if label("cpu").is_empty() => ratio(self.cpu),
            metrics::CPU_USAGE => ratio((self.cpu + (noise - 0.5) * 0.2).clamp(0.0, 1.0)),
            metrics::LOAD1 => ratio(self.cpu * 4.0 + noise * 0.3),
            metrics::LOAD5 => ratio(self.cpu * 4.0),
            metrics::LOAD15 => ratio(self.cpu * 3.8),
            metrics::UPTIME => 1_000_000.0 + second as f64,
            metrics::PROCESSES => 180.0 + (noise * 4.0).floor(),
            metrics::MEMORY_USED => self.mem_used,
            metrics::MEMORY_AVAILABLE => MEM_TOTAL - self.mem_used,
            metrics::MEMORY_TOTAL => MEM_TOTAL,
            metrics::SWAP_USED => 0.0,
            metrics::SWAP_TOTAL => 2.0 * 1024.0 * 1024.0 * 1024.0,
            metrics::NETWORK_RECEIVE | metrics::NETWORK_TRANSMIT if label("device") == "lo" => {
                (noise * 2_000.0).round()
            }
            metrics::NETWORK_RECEIVE => (self.rps * 1_200.0 * (0.8 + noise * 0.4)).round(),
            metrics::NETWORK_TRANSMIT => (self.rps * 15_000.0 * (0.8 + noise * 0.4)).round(),
            // Mostly idle disks with bursts, in 4 KiB blocks.
            metrics::DISK_READ | metrics::DISK_WRITTEN if noise < 0.7 => 0.0,
            metrics::DISK_READ | metrics::DISK_WRITTEN => (noise * 64.0).floor() * 4096.0,
            metrics::FILESYSTEM_USED if label("mount") == "/" => self.fs_used[0],
            metrics::FILESYSTEM_USED => self.fs_used[1],
            metrics::FILESYSTEM_SIZE if label("mount") == "/" => FS_SIZE[0],
            metrics::FILESYSTEM_SIZE => FS_SIZE[1],
            metrics::HTTP_REQUESTS => {
                let share = match label("class") {
                    "2xx" => 0.93,
                    "3xx" => 0.04,
                    "4xx" => 0.025,
                    "5xx" if noise < 0.9 => 0.0,
                    "5xx" => 0.005,
                    _ => 0.0,
                };
                (self.rps * share * (0.9 + noise * 0.2)).round()
            }
            metrics::HTTP_DURATION => {
                let base = match label("quantile") {
                    "0.5" => 0.012,
                    "0.95" => 0.08,
                    _ => 0.25,
                };
                (base * (0.8 + noise * 0.4) * 1000.0).round() / 1000.0
            }
            _ => noise,
        }
    }
}

/// The journal entry of node `i`'s batch number `seq`.
fn entry(
    i: usize,
    defs: &[(&'static str, Vec<(&'static str, String)>)],
    sim: &mut NodeSim,
    seq: u64,
    arrived_ms: i64,
) -> Entry {
    sim.step();
    // The agent samples a moment before the collector receives the batch.
    let sampled_ms = arrived_ms - 40 - (i as i64 % 200);
    let points = defs
        .iter()
        .enumerate()
        .map(|(id, (name, labels))| Point {
            series_id: id as u32,
            value: sim.value(name, labels, seq),
            timestamp_ms: sampled_ms,
        })
        .collect();
    let checks = if seq % 5 == i as u64 % 5 {
        ["tcp:db", "exposure", "process:app"]
            .iter()
            .map(|name| CheckResult {
                name: (*name).into(),
                kind: name.split(':').next().unwrap_or("tcp").into(),
                status: Health::Ok as i32,
                latency_seconds: 0.002,
                message: "ok in 2 ms".into(),
                timestamp_ms: sampled_ms,
                interval_ms: 5_000,
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    Entry {
        node: format!("node{i:05}"),
        instance_id: format!("restart-{i}"),
        roles: roles(i).into_iter().map(|r| r as i32).collect(),
        roles_detected: false,
        labels: vec![Label::new("bench", "1")],
        agent_version: stacktop_proto::VERSION.into(),
        interval_ms: 1_000,
        arrived_ms,
        batch: Some(Batch {
            seq,
            timestamp_ms: arrived_ms,
            // A journal entry defines every series it names (journal.rs).
            series: defs
                .iter()
                .enumerate()
                .map(|(id, (name, labels))| SeriesDef {
                    id: id as u32,
                    name: (*name).into(),
                    labels: labels.iter().map(|(k, v)| Label::new(*k, v)).collect(),
                })
                .collect(),
            points,
            checks,
            ..Default::default()
        }),
    }
}

/// Writes `seconds` of batches for `nodes` nodes into `dir`'s journal,
/// arrival times ending now. Returns the samples written.
async fn fill(dir: &Path, nodes: usize, per_node: usize, seconds: u64) -> u64 {
    // A window longer than the data: the writer must not prune while filling.
    let store = Store::new(Duration::from_secs(seconds + 86_400));
    let (journal, _) = Journal::open(dir, &store).expect("a fresh journal");
    let defs: Vec<_> = (0..nodes).map(|i| series(i, per_node)).collect();
    let mut sims: Vec<NodeSim> = (0..nodes).map(NodeSim::new).collect();
    let t0 = now_unix_ms() - seconds as i64 * 1_000;
    let mut samples = 0u64;
    for s in 0..seconds {
        // Agents' batches arrive spread over the second.
        let entries: Vec<Entry> = (0..nodes)
            .map(|i| {
                let arrived = t0 + s as i64 * 1_000 + (i * 1_000 / nodes) as i64;
                entry(i, &defs[i], &mut sims[i], s + 1, arrived)
            })
            .collect();
        samples += entries
            .iter()
            .map(|e| e.batch.as_ref().map_or(0, |b| b.points.len() as u64))
            .sum::<u64>();
        for result in join_all(entries.iter().map(|e| journal.append(e))).await {
            result.expect("journal append");
        }
        if s % 60 == 59 {
            eprintln!("  filled {} of {seconds} s", s + 1);
        }
    }
    drop(journal);
    samples
}

/// Waits until the journal's writer thread has closed the file (redb
/// refuses a second open while it is open).
fn wait_closed(path: &Path) {
    loop {
        match redb::Database::open(path) {
            // Opened, so closed by the writer; dropped again at once.
            Ok(_) => return,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("reopening {}: {e}", path.display()),
        }
    }
}

/// Bytes of the files under `dir`: (length, allocated on disk).
fn dir_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).expect("the data directory") {
        let entry = entry.expect("a directory entry");
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            let (len, blocks) = dir_size(&entry.path());
            total.0 += len;
            total.1 += blocks;
        } else {
            total.0 += meta.len();
            total.1 += meta.blocks() * 512;
        }
    }
    total
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: NODES SERIES SECONDS"))
        .collect();
    let (nodes, per_node, seconds) = match args[..] {
        [n, s, t] => (n as usize, s as usize, t),
        [] => (1_000, 50, 900),
        _ => panic!("usage: restart_time [NODES SERIES SECONDS]"),
    };
    let exe = std::env::var_os("STACKTOP_COLLECTOR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/stacktop-collector"),
        PathBuf::from,
    );
    assert!(
        exe.is_file(),
        "{} missing: cargo build --release -p stacktop-collector",
        exe.display()
    );
    let work = tempfile::Builder::new()
        .prefix("stacktop-restart-")
        .tempdir()
        .expect("a temporary directory");
    let data = work.path().join("data");

    println!(
        "# restart_time: {nodes} nodes x {per_node} series, {seconds} s at 1 s, collector {}",
        exe.display()
    );
    let started = Instant::now();
    let samples = fill(&data, nodes, per_node, seconds).await;
    wait_closed(&data.join(FILE));
    let fill_s = started.elapsed().as_secs_f64();
    let (len, allocated) = dir_size(&data);
    println!(
        "fill: {} entries, {samples} samples in {fill_s:.1} s ({:.0} samples/s through Journal::append)",
        nodes as u64 * seconds,
        samples as f64 / fill_s
    );
    println!(
        "on disk: {:.1} MiB ({:.1} MiB allocated), {:.1} bytes per sample ({:.1} allocated)",
        mib(len),
        mib(allocated),
        len as f64 / samples as f64,
        allocated as f64 / samples as f64
    );

    // Long enough that the oldest entry (SECONDS old when the fill began)
    // is still inside the window when the collector reads it.
    let history = seconds + started.elapsed().as_secs() + 60;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let log_path = work.path().join("collector.log");
    let log = std::fs::File::create(&log_path).expect("the collector's log");
    let spawned = Instant::now();
    let mut collector = Collector(
        Command::new(&exe)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--history")
            .arg(format!("{history}s"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the collector"),
    );
    let pid = collector.0.id();
    let client = ClientConfig::new(format!("http://127.0.0.1:{port}"))
        .with_connect_timeout(Duration::from_millis(200));
    let mut first_answer = None;
    let known = loop {
        if let Some(status) = collector.0.try_wait().expect("the collector's status") {
            panic!(
                "the collector exited ({status}); its log: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        assert!(
            spawned.elapsed() < PATIENCE,
            "no full snapshot within {PATIENCE:?}"
        );
        if let Ok(channel) = client.connect().await
            && let Ok(snapshot) = client
                .fleet(channel)
                .snapshot(SnapshotRequest::default())
                .await
        {
            let known = snapshot.into_inner().nodes.len();
            first_answer.get_or_insert((spawned.elapsed(), known));
            if known >= nodes {
                break known;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let restart = spawned.elapsed();
    let mem = usage(pid).expect("the collector's /proc entries");
    let replayed = replay_line(&log_path);
    drop(collector);

    let (first_at, first_known) = first_answer.expect("an answer");
    println!("collector started with --history {history}s (the fill took {fill_s:.0} s)");
    println!("journal replay (its log): {replayed}");
    println!(
        "first Snapshot answer after {:.2} s ({first_known} nodes)",
        first_at.as_secs_f64()
    );
    println!(
        "restart time: {:.2} s from spawn to a Snapshot with all {known} nodes",
        restart.as_secs_f64()
    );
    println!(
        "collector memory then: RSS {:.0} MiB (peak {:.0} MiB), {:.1} bytes per sample",
        mem.rss_kib as f64 / 1024.0,
        mem.peak_rss_kib as f64 / 1024.0,
        mem.rss_kib as f64 * 1024.0 / samples as f64
    );
    let expected = nodes as u64 * seconds;
    assert!(
        replayed.contains(&format!("entries={expected} ")),
        "the collector did not replay all {expected} entries: {replayed}"
    );
}

/// The collector's "restored the recent history" log line, without its
/// timestamp.
fn replay_line(log: &Path) -> String {
    let file = std::fs::File::open(log).expect("the collector's log");
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("restored the recent history"))
        .map(|l| {
            l.split_once("entries=")
                .map_or(l.clone(), |(_, rest)| format!("entries={rest}"))
        })
        .unwrap_or_else(|| "no replay line in its log".into())
}
