//! The load generator against a real collector process, at CI scale (issue
//! #11, acceptance 3): 1,000 simulated agents, each its own gRPC stream on
//! its own connection, sending a real agent's ~50 series every second for
//! 30 s, and one Fleet.Watch subscriber.
//!
//! Both sides are this package's own binary as `cargo test` built it
//! (`CARGO_BIN_EXE_stacktop-collector`): the collector on an ephemeral
//! 127.0.0.1 port with a temporary data directory, then
//! `stacktop-collector bench --collector URL` against it, so the load
//! generator is measured exactly as an operator runs it.
//!
//! What it asserts is correctness at scale, not speed: no agent stream
//! fails or is refused over the whole run, batches are acknowledged, and
//! afterwards the collector's fleet holds all 1,000 nodes. The throughput
//! and latency it prints come from unoptimised debug binaries sharing the
//! machine with the test runner, so they are reported, not judged; the
//! figures that are judged are BENCHMARKS.md's, from release builds.
//!
//! Both processes are killed by their own handles (never by name) when the
//! test ends, however it ends.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::SnapshotRequest;

const EXE: &str = env!("CARGO_BIN_EXE_stacktop-collector");
const AGENTS: usize = 1_000;
/// Agents run through the warm-up and the measured window: 30 s in all.
const WARMUP: &str = "5s";
const MEASURED: &str = "25s";
/// Generous bound on the whole bench run; a hang fails instead of blocking CI.
const BENCH_LIMIT: Duration = Duration::from_secs(120);

/// A process this test started; killed (SIGKILL, by its own PID) and
/// reaped when dropped, so a failing assertion leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_thousand_agents_for_thirty_seconds_without_an_error() {
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut collector = Proc(
        Command::new(EXE)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data.path())
            .arg("--max-agents")
            .arg((AGENTS + 100).to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the collector"),
    );
    let until = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            collector.0.try_wait().unwrap().is_none(),
            "the collector exited at start"
        );
        assert!(Instant::now() < until, "the collector never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let url = format!("http://{addr}");
    let mut bench = Proc(
        Command::new(EXE)
            .args(["bench", "--agents", &AGENTS.to_string()])
            .args(["--warmup", WARMUP, "--duration", MEASURED, "--json"])
            .args(["--collector", &url])
            .arg("--collector-pid")
            .arg(collector.0.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the load generator"),
    );
    let mut stdout = bench.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + BENCH_LIMIT;
    let status = loop {
        if let Some(status) = bench.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the load generator ran past {BENCH_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "bench failed ({status}): {out}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let phase = &report["phases"][0];
    eprintln!(
        "{AGENTS} agents: {} batches sent, {} acknowledged, {:.0} samples/s acked in the \
         measured window, collector CPU {:.0}% RSS {:.0} MiB, sample->Watch p50 {} ms p99 {} ms \
         (debug build), errors {}",
        report["batches_sent"],
        report["batches_acked"],
        phase["samples_per_second"].as_f64().unwrap_or(0.0),
        phase["collector_cpu_percent"].as_f64().unwrap_or(0.0),
        phase["collector_rss_mib"].as_f64().unwrap_or(0.0),
        phase["latency_p50_ms"],
        phase["latency_p99_ms"],
        report["agent_errors"],
    );
    assert_eq!(report["agent_errors"], 0, "{out}");
    assert_eq!(phase["errors"], 0, "{out}");
    let sent = report["batches_sent"].as_u64().unwrap();
    let acked = report["batches_acked"].as_u64().unwrap();
    // Every agent sent and was heard; what was in flight when the agents
    // stopped is the only thing not acknowledged.
    assert!(sent >= AGENTS as u64 && acked >= AGENTS as u64, "{out}");
    assert!(acked <= sent, "{out}");

    // The collector, still running, knows every node.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names = runtime.block_on(async {
        let client = ClientConfig::new(&url);
        let channel = client.connect().await.unwrap();
        let snapshot = client
            .fleet(channel)
            .snapshot(SnapshotRequest::default())
            .await
            .unwrap()
            .into_inner();
        snapshot
            .nodes
            .into_iter()
            .map(|n| n.name)
            .collect::<Vec<_>>()
    });
    assert_eq!(names.len(), AGENTS, "nodes in the fleet");
    for i in 0..AGENTS {
        let name = format!("node{i:05}");
        assert!(names.binary_search(&name).is_ok(), "{name} missing");
    }
    assert!(
        collector.0.try_wait().unwrap().is_none(),
        "the collector died"
    );
    eprintln!("load test took {:.1} s", started.elapsed().as_secs_f64());
}
