//! Hostile input against a real collector process (`max-agents = 1000`,
//! `max-batches-per-second = 10`, `max-batch-burst = 200`, a data
//! directory, 127.0.0.1): three honest `stacktop-agent` processes
//! report while a hostile client sends every bad input the collector
//! guards against, among them a 100 MB message, 1,000,000 series
//! definitions and 2,000 concurrent streams. Each is answered the way the
//! collector means to (a gRPC status ending that stream, or an Ack with the
//! bad part counted and skipped); the collector's peak memory stays under
//! [`MEMORY_BOUND_MIB`]; and a watchdog polling `Fleet.Snapshot` the whole
//! time never sees an honest node other than connected and `ok`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Collector, Proc, Target, channel, start_agent, within};
use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::ingest_client::IngestClient;
use stacktop_proto::v1::{
    AgentFrame, Batch, CollectorFrame, Health, Hello, Label, Point, SeriesDef, SnapshotRequest,
    agent_frame, collector_frame,
};
use stacktop_proto::{Role, now_unix_ms};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

/// The collector's peak resident memory (VmHWM) may not pass this, with
/// everything below thrown at it.
const MEMORY_BOUND_MIB: u64 = 256;

const HONEST: [(&str, &str); 3] = [("web1", "web"), ("web2", "web"), ("db1", "db")];

/// One hostile stream.
struct Stream {
    tx: mpsc::Sender<AgentFrame>,
    rx: Streaming<CollectorFrame>,
}

fn hello(node: &str) -> Hello {
    Hello {
        node: node.into(),
        instance_id: format!("hostile-{node}"),
        roles: vec![Role::App as i32],
        roles_detected: false,
        labels: vec![],
        agent_version: "hostile".into(),
        interval_ms: 60_000,
        checks: Vec::new(),
    }
}

fn frame(f: agent_frame::Frame) -> AgentFrame {
    AgentFrame { frame: Some(f) }
}

fn batch(seq: u64, series: Vec<SeriesDef>, points: Vec<Point>) -> Batch {
    Batch {
        seq,
        timestamp_ms: now_unix_ms(),
        series,
        points,
        ..Batch::default()
    }
}

fn def(id: u32, name: &str, labels: Vec<Label>) -> SeriesDef {
    SeriesDef {
        id,
        name: name.into(),
        labels,
    }
}

fn point(series_id: u32, value: f64, timestamp_ms: i64) -> Point {
    Point {
        series_id,
        value,
        timestamp_ms,
    }
}

/// Opens a stream whose first frame is `first`: the Welcome, or the
/// status it was refused with.
async fn open(channel: &Channel, first: agent_frame::Frame) -> Result<Stream, Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(frame(first)).await.unwrap();
    let mut client = IngestClient::new(channel.clone()).max_encoding_message_size(usize::MAX);
    let mut rx = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    match rx.message().await? {
        Some(CollectorFrame {
            frame: Some(collector_frame::Frame::Welcome(_)),
        }) => Ok(Stream { tx, rx }),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

impl Stream {
    /// Sends `batch` and waits for its answer: the acked seq, or the status
    /// that ended the stream.
    async fn send(&mut self, batch: Batch) -> Result<u64, Status> {
        let seq = batch.seq;
        if self
            .tx
            .send(frame(agent_frame::Frame::Batch(batch)))
            .await
            .is_err()
        {
            return Err(Status::cancelled("the stream is gone"));
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.rx.message()).await {
                Err(_) => panic!("no answer to batch {seq} within 30 s"),
                Ok(Err(status)) => return Err(status),
                Ok(Ok(None)) => return Err(Status::cancelled("stream ended without a status")),
                Ok(Ok(Some(CollectorFrame {
                    frame: Some(collector_frame::Frame::Ack(ack)),
                }))) if ack.seq >= seq => return Ok(ack.seq),
                Ok(Ok(Some(_))) => {}
            }
        }
    }
}

/// The collector's VmHWM, MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024
}

/// `GET /metrics` from the collector's metrics listener.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body
}

/// What the collector said to one bad input.
struct Answer {
    case: &'static str,
    answer: String,
}

/// Logs how long each case took, so a slow one shows.
fn took(case: &str, since: std::time::Instant) {
    eprintln!("hostile: {case}: {:.1?}", since.elapsed());
}

fn expect_status(case: &'static str, got: Result<u64, Status>, code: Code) -> Answer {
    let status = got.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    Answer {
        case,
        answer: format!("{:?}: {}", status.code(), status.message()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_answered_and_honest_agents_stay_ok() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = common::free_port();
    let collector = Collector::start(
        dir.path(),
        &format!(
            "max-agents = 1000\nmax-batches-per-second = 10\nmax-batch-burst = 200\n\
             metrics-listen = \"127.0.0.1:{metrics_port}\"\n"
        ),
    );
    let url = collector.url();
    let pid = collector.pid().expect("the collector runs");
    let target = Target::new();
    let _agents: Vec<Proc> = HONEST
        .iter()
        .map(|(name, role)| start_agent(dir.path(), name, role, &url, &target.address()))
        .collect();
    let honest_ok = |snap: &stacktop_proto::v1::FleetSnapshot| {
        HONEST.iter().all(|(name, _)| {
            snap.nodes
                .iter()
                .any(|n| n.name == *name && n.connected && n.health() == Health::Ok)
        })
    };
    within(Duration::from_secs(30), "the honest nodes ok", async || {
        let mut fleet = FleetClient::new(channel(&url).await?);
        let snap = fleet.snapshot(SnapshotRequest::default()).await.ok()?;
        honest_ok(&snap.into_inner()).then_some(())
    })
    .await;

    // The watchdog: every 250 ms until the end, the honest nodes must be
    // connected and ok.
    let done = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let watchdog = tokio::spawn({
        let (url, done, polls) = (url.clone(), done.clone(), polls.clone());
        async move {
            let mut fleet = FleetClient::new(channel(&url).await.expect("a channel"));
            let mut bad = Vec::new();
            while !done.load(Ordering::SeqCst) {
                match fleet.snapshot(SnapshotRequest::default()).await {
                    Ok(snap) if honest_ok(snap.get_ref()) => {}
                    Ok(snap) => bad.push(format!(
                        "{:?}",
                        snap.into_inner()
                            .nodes
                            .iter()
                            .filter(|n| HONEST.iter().any(|(h, _)| *h == n.name))
                            .map(|n| (n.name.clone(), n.connected, n.health()))
                            .collect::<Vec<_>>()
                    )),
                    Err(status) => bad.push(format!("Snapshot failed: {status:?}")),
                }
                polls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            bad
        }
    });

    let ch = channel(&url).await.expect("a channel");
    let mut answers = Vec::new();

    // A 100 MB message: refused from its length prefix, before it is read.
    let t = std::time::Instant::now();
    let mut s = open(&ch, agent_frame::Frame::Hello(hello("huge")))
        .await
        .unwrap();
    let huge = def(
        1,
        "node_load1",
        vec![Label::new("junk", "x".repeat(100 << 20))],
    );
    answers.push(expect_status(
        "a 100 MB message",
        s.send(batch(1, vec![huge], vec![])).await,
        Code::OutOfRange,
    ));

    took("100 MB", t);
    let t = std::time::Instant::now();
    // 1,000,000 series definitions, 50,000 a batch: the stream keeps its
    // first 8,192 series; every other definition is refused and counted,
    // and each batch is still acknowledged.
    let mut s = open(&ch, agent_frame::Frame::Hello(hello("defs")))
        .await
        .unwrap();
    for b in 0..20u32 {
        let defs = (0..50_000u32)
            .map(|i| {
                let id = b * 50_000 + i + 1;
                def(id, "junk_series", vec![Label::new("i", id.to_string())])
            })
            .collect();
        assert_eq!(
            s.send(batch(u64::from(b) + 1, defs, vec![]))
                .await
                .map_err(|e| e.code()),
            Ok(u64::from(b) + 1)
        );
    }
    answers.push(Answer {
        case: "1,000,000 series definitions",
        answer: "each batch acked; definitions beyond 8,192 refused and counted".into(),
    });

    took("1M definitions", t);
    let t = std::time::Instant::now();
    // 2,000 concurrent streams against max-agents 1000 (3 held by the
    // honest agents): 997 get in, the rest are told why.
    let channels: Vec<Channel> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(channel(&url).await.expect("a channel"));
        }
        v
    };
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..2_000usize {
        let ch = channels[i % channels.len()].clone();
        opening.spawn(async move {
            open(&ch, agent_frame::Frame::Hello(hello(&format!("flood{i}")))).await
        });
    }
    let (mut admitted, mut refused) = (Vec::new(), 0);
    while let Some(r) = opening.join_next().await {
        match r.unwrap() {
            Ok(s) => admitted.push(s),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                refused += 1;
            }
        }
    }
    // The two streams above are still open and hold permits too.
    assert_eq!(admitted.len() + refused, 2_000);
    assert!(
        (990..=997).contains(&admitted.len()),
        "{} admitted",
        admitted.len()
    );
    answers.push(Answer {
        case: "2,000 concurrent streams",
        answer: format!(
            "{} admitted, {refused} ResourceExhausted (max-agents 1000)",
            admitted.len()
        ),
    });
    drop(admitted);
    drop(s);

    took("2,000 streams", t);
    let t = std::time::Instant::now();
    // A node name taken over while its agent is live.
    let status = open(&ch, agent_frame::Frame::Hello(hello("web1")))
        .await
        .err()
        .expect("a live name was taken over");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(
        !status.message().contains("hostile-web1"),
        "instance ids are not echoed"
    );
    answers.push(Answer {
        case: "a live node's name",
        answer: format!("{:?}", status.code()),
    });

    // A batch before any Hello.
    let status = open(&ch, agent_frame::Frame::Batch(batch(1, vec![], vec![])))
        .await
        .err()
        .expect("a stream without Hello was accepted");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    answers.push(Answer {
        case: "no Hello",
        answer: format!("{:?}", status.code()),
    });

    // Values and timestamps that cannot be kept honestly, and an unknown
    // series id: acked, skipped, counted.
    let mut s = open(&ch, agent_frame::Frame::Hello(hello("values")))
        .await
        .unwrap();
    let now = now_unix_ms();
    let defs = vec![
        def(1, "node_cpu_usage_ratio", vec![]),
        def(2, "node_load1", vec![]),
    ];
    let points = vec![
        point(1, f64::NAN, 0),
        point(1, f64::INFINITY, 0),
        point(2, 1e308, 0),
        point(1, -0.5, 0),
        point(2, 1.0, now + 10 * 365 * 24 * 3_600_000),
        point(77, 1.0, 0),
        point(2, 0.5, 0),
    ];
    assert_eq!(
        s.send(batch(1, defs, points)).await.map_err(|e| e.code()),
        Ok(1)
    );
    // A seq going backwards is acknowledged, not re-applied.
    assert_eq!(
        s.send(batch(1, vec![], vec![point(2, 9.0, 0)]))
            .await
            .map_err(|e| e.code()),
        Ok(1)
    );
    answers.push(Answer {
        case: "NaN, inf, 1e308, a negative ratio, +10 years, an unknown id, an old seq",
        answer: "acked; each point skipped and counted".into(),
    });
    // A seq no agent could have reached.
    answers.push(expect_status(
        "seq 2^64-1",
        s.send(batch(u64::MAX, vec![], vec![])).await,
        Code::InvalidArgument,
    ));

    // More than 100,000 points in one batch.
    let mut s = open(&ch, agent_frame::Frame::Hello(hello("points")))
        .await
        .unwrap();
    let many = (0..100_001).map(|_| point(1, 1.0, 0)).collect();
    answers.push(expect_status(
        "100,001 points in a batch",
        s.send(batch(1, vec![def(1, "node_load1", vec![])], many))
            .await,
        Code::InvalidArgument,
    ));

    // A flood of batches beyond the per-node rate, sent without waiting
    // for acks: the burst allowance passes, then the stream is ended.
    // Each batch is the size of a real one (20 points): a flood of tiny
    // frames is stopped earlier, below.
    let own = channel(&url).await.expect("a channel");
    let s = open(&own, agent_frame::Frame::Hello(hello("rate")))
        .await
        .unwrap();
    let Stream { tx, mut rx } = s;
    let sender = tokio::spawn(async move {
        let start = now_unix_ms() - 60_000;
        for seq in 1..=2_000u64 {
            let defs = if seq == 1 {
                vec![def(1, "node_load1", vec![])]
            } else {
                vec![]
            };
            let points = (0..20).map(|i| point(1, 1.0, start + i)).collect();
            let f = frame(agent_frame::Frame::Batch(batch(seq, defs, points)));
            if tx.send(f).await.is_err() {
                break;
            }
        }
    });
    let flood = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.message()).await {
            Err(_) => panic!("no answer to the flood within 30 s"),
            Ok(Err(status)) => break Err(status),
            Ok(Ok(None)) => break Err(Status::cancelled("ended without a status")),
            Ok(Ok(Some(_))) => {}
        }
    };
    drop(rx);
    sender.abort();
    if let Err(status) = &flood
        && status.code() != Code::ResourceExhausted
    {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let log = collector.log();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        panic!(
            "flood: {status:?}\ncollector log (newest first):\n{}",
            tail.join("\n")
        );
    }
    answers.push(expect_status(
        "2,000 batches at once (max-batches-per-second 10, burst 200)",
        flood,
        Code::ResourceExhausted,
    ));

    took("the rest and the flood", t);

    // Tiny frames as fast as they go: HTTP/2 itself (h2's budget for
    // small DATA frames waiting to be read) closes that connection with
    // GOAWAY ENHANCE_YOUR_CALM; nothing else shares it.
    let own = channel(&url).await.expect("a channel");
    let Stream { tx, mut rx } = open(&own, agent_frame::Frame::Hello(hello("tiny")))
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        for seq in 1..=100_000u64 {
            let f = frame(agent_frame::Frame::Batch(batch(seq, vec![], vec![])));
            if tx.send(f).await.is_err() {
                break;
            }
        }
    });
    let tiny = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.message()).await {
            Err(_) => panic!("no answer to the tiny frames within 60 s"),
            Ok(Err(status)) => break status,
            Ok(Ok(None)) => panic!("the tiny-frame stream ended without an error"),
            Ok(Ok(Some(_))) => {}
        }
    };
    sender.abort();
    answers.push(Answer {
        case: "100,000 tiny frames at once",
        answer: format!("the connection closed: {}", tiny.message()),
    });
    // Names and labels beyond the limits.
    let status = open(&ch, agent_frame::Frame::Hello(hello(&"n".repeat(300))))
        .await
        .err()
        .expect("a 300-byte node name was accepted");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    answers.push(Answer {
        case: "a 300-byte node name",
        answer: format!("{:?}", status.code()),
    });

    // Let the watchdog see the aftermath too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.store(true, Ordering::SeqCst);
    let bad = watchdog.await.unwrap();
    let peak = peak_rss_mib(pid);

    // What the collector counted.
    let metrics = scrape(metrics_port);
    let counted = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let refused_defs = counted("stacktop_collector_refused_series_definitions_total");
    assert!(
        refused_defs >= (1_000_000 - 8_192) as f64,
        "refused definitions counted: {refused_defs}"
    );
    assert!(counted("stacktop_collector_dropped_points_total") >= 6.0);
    assert!(counted("stacktop_collector_refused_batches_total") >= 2.0);

    for a in &answers {
        eprintln!("hostile: {:<75} -> {}", a.case, a.answer);
    }
    eprintln!(
        "hostile: {} cases answered; collector peak RSS {peak} MiB (bound {MEMORY_BOUND_MIB} MiB); \
         honest nodes ok in {} of {} polls",
        answers.len(),
        polls.load(Ordering::Relaxed) - bad.len(),
        polls.load(Ordering::Relaxed)
    );
    assert!(
        bad.is_empty(),
        "an honest node was not ok:\n{}",
        bad.join("\n")
    );
    assert!(
        peak < MEMORY_BOUND_MIB,
        "the collector's peak RSS {peak} MiB passed {MEMORY_BOUND_MIB} MiB"
    );
}
