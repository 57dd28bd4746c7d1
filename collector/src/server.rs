//! The collector's gRPC server: Ingest, Fleet, grpc.health.v1 and server
//! reflection (v1, and v1alpha for clients such as Python's
//! grpcio-reflection) on one listener, plus the background task that keeps
//! the evaluated fleet up to date, so that a silent agent is noticed
//! without any incoming frame. Beside it, when configured, the `/metrics`
//! HTTP listener and the remote_write writers ([`crate::export`]).
//!
//! Shutdown is one path: cancelling the token stops accepting connections,
//! ends every agent and watch stream (agents see their stream close and
//! reconnect elsewhere or later) and the view task; [`serve`] returns once
//! the server and every task it started have finished.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stacktop_proto::FILE_DESCRIPTOR_SET;
use stacktop_proto::v1::fleet_server::FleetServer;
use stacktop_proto::v1::ingest_server::IngestServer;
use stacktop_proto::v1::operator_server::OperatorServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

use crate::alerts::service::OperatorService;
use crate::alerts::{self, Alerts, AlertsError};
use crate::auth::tls::{self, Acceptor, TlsError};
use crate::auth::tokens::TokensError;
use crate::auth::{Gate, Need};
use crate::config::{self, Config, ConfigError};
use crate::export::Exports;
use crate::fleet::routes::FleetRoutes;
use crate::fleet::{self, FleetService, Views};
use crate::ingest::IngestService;
use crate::journal::{Journal, JournalError};
use crate::store::Store;
use crate::tiers::{Tiers, TiersError};

/// Largest accepted gRPC message (one agent batch, one request).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How often alert changes are written to the store (an operator's action
/// is written at once).
pub const ALERT_FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// Why the collector could not serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Alerting could not start (its store, a rule, a sink).
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    /// A tokens file cannot be used.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The ingest journal could not be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The coarse history could not be opened.
    #[error(transparent)]
    Tiers(#[from] TiersError),
    /// The `/metrics` address could not be bound.
    #[error("cannot serve /metrics on {addr}: {source}")]
    BindMetrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The listener has no local address (it is not a TCP socket).
    #[error("the listener has no address: {0}")]
    ListenerAddress(#[source] std::io::Error),
    /// The reflection service could not be built from the descriptors.
    #[error("building the reflection service: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("collector gRPC server: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// The sockets a collector serves on.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC: Ingest, Fleet, Operator, health, reflection.
    pub grpc: TcpListener,
    /// HTTP `/metrics`, when served.
    pub metrics: Option<TcpListener>,
}

/// Binds `config.listen` (and `config.metrics_listen`) and serves until
/// `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    config.validate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    serve(listener, config, shutdown).await
}

/// Serves Ingest, Fleet, grpc.health.v1 and reflection on an already bound
/// listener until `shutdown` is cancelled (and `/metrics` on
/// `config.metrics_listen`, bound here, when set). Taking a listener lets
/// tests and the embedded dashboard bind `127.0.0.1:0` and learn the port
/// first.
///
/// Refuses a listener on a non-loopback address unless `config.insecure`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = match config.metrics_listen {
        Some(addr) => {
            config::check_metrics_listen(addr, config.insecure)?;
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::BindMetrics { addr, source })?,
            )
        }
        None => None,
    };
    serve_listeners(
        Listeners {
            grpc: listener,
            metrics,
        },
        config,
        shutdown,
    )
    .await
}

/// [`serve`] on already bound listeners (`config.metrics_listen` is not
/// read: `listeners.metrics` says whether and where `/metrics` is served).
pub async fn serve_listeners(
    listeners: Listeners,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let Listeners {
        grpc: listener,
        metrics,
    } = listeners;
    let local = listener.local_addr().map_err(Error::ListenerAddress)?;
    config.check_tls()?;
    config::check_listen(local, config.insecure || config.tls_cert.is_some())?;
    // Credentials and certificates are read before anything starts, so a
    // bad file stops the collector with a message naming it.
    let credentials = config.auth.load()?;
    let tls = config.tls_files().map(Acceptor::new).transpose()?;
    if let Some(metrics) = &metrics {
        let addr = metrics.local_addr().map_err(Error::ListenerAddress)?;
        config::check_metrics_listen(addr, config.insecure)?;
    }

    // Our own child token: if the server fails, our tasks stop too.
    let inner = shutdown.child_token();
    let _stop_tasks = inner.clone().drop_guard();
    let tracker = TaskTracker::new();
    let alerts = Arc::new(Alerts::start(
        &config.alerts,
        stacktop_proto::now_unix_ms(),
        inner.clone(),
        &tracker,
    )?);
    let store = Arc::new(Store::watching(config.history, alerts.watched_metrics()));
    let journal = match &config.alerts.data_dir {
        Some(dir) => {
            let (journal, restored) = Journal::open(dir, &store)?;
            info!(
                entries = restored.entries,
                damaged = restored.damaged,
                nodes = store.entries().len(),
                took_ms = restored.took.as_millis() as u64,
                "restored the recent history from the journal"
            );
            Some(journal)
        }
        None => None,
    };
    let tiers = match &config.alerts.data_dir {
        Some(dir) => {
            let tiers = Tiers::open(dir)?;
            info!(
                disk_bytes = tiers.disk_bytes(),
                "coarse history (10 s for 6 h, 1 min for 7 days) in {}",
                dir.join(crate::tiers::FILE).display()
            );
            tracker.spawn(crate::tiers::keep_rolling_up(
                tiers.clone(),
                store.clone(),
                crate::tiers::roll_up_every(config.history),
                inner.clone(),
            ));
            Some(tiers)
        }
        None => None,
    };
    for name in &config.expected_nodes {
        store.expect(name);
    }
    let views = Arc::new(Views::with_alerts(store.clone(), Some(alerts.clone())));
    let exports =
        Exports::start(&config.remote_write, &inner, &tracker).map_err(ConfigError::from)?;
    if let Some(metrics) = metrics {
        exports.serve_metrics(
            metrics,
            views.clone(),
            store.clone(),
            inner.clone(),
            &tracker,
        );
    }

    tracker.spawn(fleet::keep_fresh(views.clone(), inner.clone()));
    tracker.spawn(keep_forgetting(
        store.clone(),
        journal.clone(),
        config.forget_after,
        config.expected_nodes.clone(),
        inner.clone(),
    ));
    tracker.spawn(alerts::keep_flushing(
        alerts.clone(),
        ALERT_FLUSH_INTERVAL,
        inner.clone(),
    ));

    let mut ingest = IngestService::new(
        store.clone(),
        config.max_agents,
        inner.clone(),
        tracker.clone(),
    )
    .with_tap(exports.tap.clone())
    .with_batch_rate(config.batch_rate)
    .with_client_certs(config.client_ca.is_some());
    if let Some(journal) = journal.clone() {
        ingest = ingest.with_journal(journal);
    }
    let fleet =
        FleetService::new(store.clone(), views, inner.clone(), tracker.clone()).with_tiers(tiers);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IngestServer<IngestService>>().await;
    health.set_serving::<FleetServer<FleetService>>().await;
    health
        .set_serving::<OperatorServer<OperatorService>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(Error::Reflection)?;
    // Older clients (Python's grpcio-reflection, older grpcurl) ask v1alpha.
    let reflection_v1alpha = reflection().build_v1alpha().map_err(Error::Reflection)?;

    let gate = |need| Gate::new(need, credentials.clone());
    for (need, service) in [
        (Need::Agent, "Ingest"),
        (Need::Viewer, "Fleet"),
        (Need::Operator, "Operator"),
    ] {
        if gate(need).is_open() && !local.ip().is_loopback() {
            warn!(
                service,
                "no tokens file for this service: anyone who reaches the listener may call it"
            );
        }
    }
    info!(
        listen = %local,
        tls = tls.is_some(),
        client_certs = config.client_ca.is_some(),
        history = ?config.history,
        max_agents = config.max_agents,
        data_dir = ?config.alerts.data_dir,
        sinks = config.alerts.notify.len(),
        remote_write = config.remote_write.len(),
        "collector serving"
    );
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(
            IngestServer::new(ingest)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            gate(Need::Agent),
        ))
        .add_service(InterceptedService::new(
            FleetRoutes::new(
                fleet.clone(),
                FleetServer::new(fleet)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    // A snapshot of a large fleet is big; dashboards raise
                    // their own decoding limit to match.
                    .max_encoding_message_size(usize::MAX),
            ),
            gate(Need::Viewer),
        ))
        .add_service(InterceptedService::new(
            OperatorServer::new(OperatorService::new(alerts, store.clone()).with_journal(journal))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            gate(Need::Operator),
        ));
    let result = match tls {
        Some(acceptor) => {
            tracker.spawn(tls::keep_reloading(acceptor.clone(), inner.clone()));
            let incoming = acceptor.incoming(listener, inner.clone(), &tracker);
            router
                .serve_with_incoming_shutdown(incoming, inner.clone().cancelled_owned())
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(listener),
                    inner.clone().cancelled_owned(),
                )
                .await
        }
    };
    inner.cancel();
    tracker.close();
    tracker.wait().await;
    match result {
        Ok(()) => {
            info!("collector stopped");
            Ok(())
        }
        Err(err) => {
            warn!(cause = %err, "collector server failed");
            Err(Error::Serve(err))
        }
    }
}

/// How often nodes silent for `forget-after` are looked for.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Forgets nodes silent for `after` (not the expected ones) until
/// `shutdown`: so 2,000 junk streams do not leave 2,000 `down` nodes for
/// good.
async fn keep_forgetting(
    store: Arc<Store>,
    journal: Option<Journal>,
    after: Duration,
    expected: Vec<String>,
    shutdown: CancellationToken,
) {
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tick = tokio::time::interval(FORGET_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = stacktop_proto::now_unix_ms();
        for name in store.silent_since(now - after_ms) {
            if expected.contains(&name) {
                continue;
            }
            if let Some(journal) = &journal
                && let Err(err) = journal.forget(&name, now).await
            {
                warn!(node = %name, cause = %err, "cannot record a forgotten node; keeping it");
                continue;
            }
            let _ = store.forget(&name);
            info!(node = %name, silent_for = ?after, "forgot a silent node");
        }
    }
}
