//! Exports to the Prometheus world: `/metrics` for scraping and
//! remote_write for pushing, so operators feed Prometheus, Grafana,
//! VictoriaMetrics, Mimir or Thanos without an exporter zoo, and fleets
//! larger than one collector scale through them.
//!
//! # Layout
//!
//! - [`labels`]: the one naming rule both paths share (`node`, `role`,
//!   the series' labels; valid names; clashes renamed).
//! - [`metrics`]: what `/metrics` says, gathered from the evaluated fleet,
//!   the store and the collector's counters, encoded by prometheus-client
//!   (Prometheus text 0.0.4, or OpenMetrics when asked).
//! - [`http`]: the small hyper server that answers `GET /metrics`.
//! - [`tap`]: the hook ingest calls for every stored batch (counters, and
//!   the samples for remote_write, never waiting).
//! - [`remote_write`]: `[[remote-write]]` destinations: bounded queues,
//!   batching, retries, protobuf + snappy.
//!
//! [`Exports::start`] starts what the configuration asks for on the
//! collector's `TaskTracker`; everything stops with its token.

pub mod http;
pub mod labels;
pub mod metrics;
pub mod remote_write;
pub mod tap;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fleet::Views;
use crate::store::Store;
use remote_write::{Destination, RemoteWriteConfig, RemoteWriteError};
use tap::Tap;

/// The exports of one collector, started.
#[derive(Debug)]
pub struct Exports {
    /// The hook ingest calls for every stored batch.
    pub tap: Arc<Tap>,
    /// The remote_write destinations, for `/metrics`.
    pub destinations: Vec<Destination>,
}

impl Exports {
    /// Starts a writer task per `[[remote-write]]` table on `tracker`.
    pub fn start(
        remote_write: &[RemoteWriteConfig],
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Self, RemoteWriteError> {
        let specs = remote_write::config::resolve(remote_write)?;
        let (outlets, destinations) = remote_write::start(specs, shutdown, tracker);
        Ok(Self {
            tap: Arc::new(Tap::new(outlets)),
            destinations,
        })
    }

    /// Serves `/metrics` on `listener` (a task on `tracker`).
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
        views: Arc<Views>,
        store: Arc<Store>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let sources = http::Sources {
            views,
            store,
            tap: self.tap.clone(),
            destinations: self.destinations.clone(),
            renders: Arc::new(tokio::sync::Semaphore::new(http::MAX_RENDERS)),
        };
        tracker.spawn(http::serve(listener, sources, shutdown, tracker.clone()));
    }
}
