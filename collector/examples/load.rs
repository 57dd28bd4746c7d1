//! A rough load check, not a benchmark: starts a collector on 127.0.0.1:0
//! and N simulated agents (raw Ingest frames, 40 series each, one batch per
//! second) in the same process, then reports Snapshot size and the
//! process's CPU time. Clients share the process, so the CPU figure is an
//! upper bound for the collector alone.
//!
//! `cargo run --release -p stacktop-collector --example load -- 2000 10`
//! (agents, seconds).

use std::time::{Duration, Instant};

use prost::Message;
use stacktop_collector::{CancellationToken, Config, serve};
use stacktop_proto::now_unix_ms;
use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::ingest_client::IngestClient;
use stacktop_proto::v1::{
    AgentFrame, Batch, Hello, Label, Point, SeriesDef, SnapshotRequest, agent_frame,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

const SERIES: u32 = 40;
const CHANNELS: usize = 16;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn agent(channel: Channel, i: usize, seconds: u64) {
    let (tx, rx) = mpsc::channel(4);
    let hello = Hello {
        node: format!("node{i:05}"),
        instance_id: format!("load-{i}"),
        roles: vec![(i % 4 + 1) as i32],
        interval_ms: 1_000,
        ..Hello::default()
    };
    tx.send(AgentFrame {
        frame: Some(agent_frame::Frame::Hello(hello)),
    })
    .await
    .unwrap();
    let mut rx = IngestClient::new(channel)
        .connect(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = rx.message().await {} });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for seq in 1..=seconds {
        tick.tick().await;
        let series = if seq == 1 {
            (0..SERIES)
                .map(|id| SeriesDef {
                    id,
                    name: if id == 0 {
                        "node_cpu_usage_ratio".into()
                    } else {
                        "node_network_receive_bytes_per_second".into()
                    },
                    labels: if id == 0 {
                        vec![]
                    } else {
                        vec![Label::new("device", format!("eth{id}"))]
                    },
                })
                .collect()
        } else {
            vec![]
        };
        let points = (0..SERIES)
            .map(|id| Point {
                series_id: id,
                value: (seq as f64 + id as f64) / 100.0,
                timestamp_ms: 0,
            })
            .collect();
        let batch = Batch {
            seq,
            timestamp_ms: now_unix_ms(),
            series,
            points,
            checks: vec![],
            ..Default::default()
        };
        if tx
            .send(AgentFrame {
                frame: Some(agent_frame::Frame::Batch(batch)),
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let agents: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, Config::default(), shutdown.clone()));
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(Endpoint::from_shared(url.clone())?.connect().await?);
    }
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let tasks: Vec<_> = (0..agents)
        .map(|i| tokio::spawn(agent(channels[i % CHANNELS].clone(), i, seconds)))
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut fleet = FleetClient::new(channels[0].clone()).max_decoding_message_size(usize::MAX);
    let t = Instant::now();
    let snap = fleet
        .snapshot(SnapshotRequest::default())
        .await?
        .into_inner();
    println!(
        "{agents} agents x {SERIES} series for {seconds}s: {:.2} cores (process, clients included); \
         snapshot of {} nodes = {:.1} MiB in {:?}",
        cpu / elapsed,
        snap.nodes.len(),
        snap.encoded_len() as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}
