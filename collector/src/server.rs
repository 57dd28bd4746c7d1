//! The collector's gRPC server: Ingest, Fleet, grpc.health.v1 and server
//! reflection on one listener, plus the background task that re-evaluates
//! health so that a silent agent is noticed without any incoming frame.
//!
//! Shutdown is one path: cancelling the token stops accepting connections,
//! ends every agent and watch stream (agents see their stream close and
//! reconnect elsewhere or later) and the health task; [`serve`] returns once
//! the server and every task it started have finished.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stacktop_proto::FILE_DESCRIPTOR_SET;
use stacktop_proto::now_unix_ms;
use stacktop_proto::v1::fleet_server::FleetServer;
use stacktop_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{self, Config};
use crate::fleet::FleetService;
use crate::ingest::IngestService;
use crate::store::Store;

/// Largest accepted gRPC message (one agent batch, one request).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How often health is re-evaluated without incoming frames.
pub const HEALTH_TICK: Duration = Duration::from_millis(250);

/// Binds `config.listen` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(listener, config, shutdown).await
}

/// Serves Ingest, Fleet, grpc.health.v1 and reflection on an already bound
/// listener until `shutdown` is cancelled. Taking a listener lets tests and
/// the embedded dashboard bind `127.0.0.1:0` and learn the port first.
///
/// Refuses a listener on a non-loopback address unless `config.insecure`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("listener has no address")?;
    config::check_listen(local, config.insecure)?;

    // Our own child token: if the server fails, our tasks stop too.
    let inner = shutdown.child_token();
    let _stop_tasks = inner.clone().drop_guard();
    let tracker = TaskTracker::new();
    let store = Arc::new(Store::new(config.history));

    tracker.spawn(reevaluate_health(store.clone(), inner.clone()));

    let ingest = IngestService::new(
        store.clone(),
        config.max_agents,
        inner.clone(),
        tracker.clone(),
    );
    let fleet = FleetService::new(store.clone(), inner.clone(), tracker.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IngestServer<IngestService>>().await;
    health.set_serving::<FleetServer<FleetService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    info!(listen = %local, history = ?config.history, max_agents = config.max_agents, "collector serving");
    let result = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            IngestServer::new(ingest)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            FleetServer::new(fleet)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                // A snapshot of a large fleet is big; dashboards raise their
                // own decoding limit to match.
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            inner.clone().cancelled_owned(),
        )
        .await;
    inner.cancel();
    tracker.close();
    tracker.wait().await;
    if let Err(err) = &result {
        warn!(cause = %err, "collector server failed");
    } else {
        info!("collector stopped");
    }
    result.context("collector gRPC server")
}

/// Re-evaluates every node's health each [`HEALTH_TICK`] until cancelled.
async fn reevaluate_health(store: Arc<Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HEALTH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                store.reevaluate(now_unix_ms());
            }
        }
    }
}
