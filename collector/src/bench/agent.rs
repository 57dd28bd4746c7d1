//! A simulated agent: one real `Ingest.Connect` stream sending what a real
//! agent sends (system series, access-log rates for LB and web nodes,
//! check results) every interval, counting what the collector acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{
    AgentFrame, Batch, CheckResult, Hello, Label, Point, SeriesDef, agent_frame, collector_frame,
};
use stacktop_proto::{Health, Role, metrics, now_unix_ms};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// What every simulated agent adds to, shared.
#[derive(Debug, Default)]
pub struct Counters {
    /// Batches sent.
    pub batches_sent: AtomicU64,
    /// Batches the collector acknowledged.
    pub batches_acked: AtomicU64,
    /// Points in the acknowledged batches.
    pub samples_acked: AtomicU64,
    /// Streams that failed (refused, reset).
    pub errors: AtomicU64,
}

/// The roles of simulated node `i`: 2 % LB, half web+app, a fifth DB, the
/// rest app servers, like a fleet of the classic stack.
pub fn roles(i: usize) -> Vec<Role> {
    match i % 50 {
        0 => vec![Role::Lb],
        1..=25 => vec![Role::Web, Role::App],
        26..=35 => vec![Role::Db],
        _ => vec![Role::App],
    }
}

/// The series node `i` reports, `count` of them (at least the standard
/// set): names and labels as a real agent sends them.
pub fn series(i: usize, count: usize) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let roles = roles(i);
    let mut s: Vec<(&'static str, Vec<(&'static str, String)>)> = vec![
        (metrics::CPU_USAGE, vec![]),
        (metrics::LOAD1, vec![]),
        (metrics::LOAD5, vec![]),
        (metrics::LOAD15, vec![]),
        (metrics::UPTIME, vec![]),
        (metrics::PROCESSES, vec![]),
        (metrics::MEMORY_USED, vec![]),
        (metrics::MEMORY_AVAILABLE, vec![]),
        (metrics::MEMORY_TOTAL, vec![]),
        (metrics::SWAP_USED, vec![]),
        (metrics::SWAP_TOTAL, vec![]),
    ];
    for dev in ["eth0", "lo"] {
        s.push((metrics::NETWORK_RECEIVE, vec![("device", dev.into())]));
        s.push((metrics::NETWORK_TRANSMIT, vec![("device", dev.into())]));
    }
    for dev in ["sda", "sdb"] {
        s.push((metrics::DISK_READ, vec![("device", dev.into())]));
        s.push((metrics::DISK_WRITTEN, vec![("device", dev.into())]));
    }
    for mount in ["/", "/var"] {
        s.push((metrics::FILESYSTEM_USED, vec![("mount", mount.into())]));
        s.push((metrics::FILESYSTEM_SIZE, vec![("mount", mount.into())]));
    }
    if roles.contains(&Role::Lb) || roles.contains(&Role::Web) {
        let source = if roles.contains(&Role::Lb) {
            "haproxy"
        } else {
            "nginx"
        };
        for class in metrics::ALL_CLASSES {
            s.push((
                metrics::HTTP_REQUESTS,
                vec![("source", source.into()), ("class", class.into())],
            ));
        }
        for q in metrics::QUANTILES {
            s.push((
                metrics::HTTP_DURATION,
                vec![("source", source.into()), ("quantile", q.into())],
            ));
        }
    }
    let mut core = 0;
    while s.len() < count {
        s.push((metrics::CPU_USAGE, vec![("cpu", core.to_string())]));
        core += 1;
    }
    s
}

/// Who one simulated agent is and how it sends.
#[derive(Debug, Clone, Copy)]
pub struct Sim {
    /// Its number (its name is `node{i:05}`).
    pub i: usize,
    /// Series it reports.
    pub series: usize,
    /// Time between two batches.
    pub interval: Duration,
    /// Wait before the first batch (agents start spread over an interval).
    pub delay: Duration,
}

/// One simulated agent until `stop`: Hello, then one batch every interval.
pub async fn run(
    channel: Channel,
    client: ClientConfig,
    sim: Sim,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let Sim {
        i,
        series: series_count,
        interval,
        delay,
    } = sim;
    let (tx, rx) = mpsc::channel(16);
    let hello = Hello {
        node: format!("node{i:05}"),
        instance_id: format!("bench-{i}-{}", now_unix_ms()),
        roles: roles(i).into_iter().map(|r| r as i32).collect(),
        roles_detected: false,
        labels: vec![Label::new("bench", "1")],
        agent_version: stacktop_proto::VERSION.into(),
        interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
        checks: Vec::new(),
    };
    if tx
        .send(AgentFrame {
            frame: Some(agent_frame::Frame::Hello(hello)),
        })
        .await
        .is_err()
    {
        return;
    }
    let mut ingest = client.ingest(channel);
    let mut inbound = match ingest.connect(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let defs = series(i, series_count);
    let points_per_batch = defs.len() as u64;
    let is_log = |name: &str| name.starts_with("http_");
    let acks = {
        let counters = counters.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = 0u64;
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = inbound.message() => m,
                };
                match msg {
                    Ok(Some(frame)) => {
                        if let Some(collector_frame::Frame::Ack(ack)) = frame.frame
                            && ack.seq > acked
                        {
                            let n = ack.seq - acked;
                            acked = ack.seq;
                            counters.batches_acked.fetch_add(n, Ordering::Relaxed);
                            counters
                                .samples_acked
                                .fetch_add(n * points_per_batch, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        })
    };
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(delay) => {}
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        seq += 1;
        let now = now_unix_ms();
        let second = (now / 1_000 - 2) * 1_000;
        let wave = ((seq as f64 + i as f64) / 10.0).sin() * 0.5 + 0.5;
        let points = defs
            .iter()
            .enumerate()
            .map(|(id, (name, _))| Point {
                series_id: id as u32,
                value: match *name {
                    metrics::MEMORY_TOTAL => 8.0e9,
                    metrics::MEMORY_USED => 2.0e9 + wave * 4.0e9,
                    metrics::HTTP_REQUESTS => (10.0 * wave).round(),
                    _ => wave,
                },
                timestamp_ms: if is_log(name) { second } else { 0 },
            })
            .collect();
        let checks = if seq % 5 == (i as u64 % 5) || seq == 1 {
            ["tcp:db", "exposure", "process:app"]
                .iter()
                .map(|name| CheckResult {
                    name: (*name).into(),
                    kind: name.split(':').next().unwrap_or("tcp").into(),
                    status: Health::Ok as i32,
                    latency_seconds: 0.002,
                    message: "ok in 2 ms".into(),
                    timestamp_ms: now,
                    interval_ms: 5_000,
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        let batch = Batch {
            seq,
            timestamp_ms: now,
            series: if seq == 1 {
                defs.iter()
                    .enumerate()
                    .map(|(id, (name, labels))| SeriesDef {
                        id: id as u32,
                        name: (*name).into(),
                        labels: labels.iter().map(|(k, v)| Label::new(*k, v)).collect(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            points,
            checks,
            ..Default::default()
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => break,
            r = tx.send(AgentFrame { frame: Some(agent_frame::Frame::Batch(batch)) }) => r,
        };
        if sent.is_err() {
            break;
        }
        counters.batches_sent.fetch_add(1, Ordering::Relaxed);
    }
    acks.abort();
}
