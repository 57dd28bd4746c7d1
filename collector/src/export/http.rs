//! The `/metrics` HTTP listener: a small hyper 1 server beside gRPC.
//!
//! It answers `GET /metrics` and nothing else: other paths
//! get 404, other methods 405 with `Allow`. It is kept small on purpose:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (a semaphore; one
//!   more waits in the kernel's accept queue rather than costing a task);
//! - a client has [`REQUEST_TIMEOUT`] to send a request's headers (also
//!   the longest an idle keep-alive connection is kept), and a connection
//!   lives at most [`CONNECTION_LIFETIME`] before it is closed gracefully;
//! - HTTP/1.1 only, small header limits, no request bodies read;
//! - the exposition is built off the async workers (it is CPU work
//!   proportional to the fleet), at most [`MAX_RENDERS`] at a time.
//!
//! Shutdown follows the collector's token: the listener stops accepting,
//! every connection finishes the response it is writing and closes, and
//! the tasks are tracked by the collector's `TaskTracker`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::metrics::{CollectorState, Exposition, Format};
use super::remote_write::Destination;
use super::tap::Tap;
use crate::fleet::{self, Views};
use crate::store::Store;

/// The one path served.
pub const PATH: &str = "/metrics";

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a request's headers, and how long
/// an idle connection is kept.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection may live; then it is closed after the response
/// in progress.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Largest request head accepted (hyper's buffer; at least 8 KiB).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Expositions built at once: each is CPU work proportional to the fleet,
/// and two scrapers (a Prometheus HA pair) are the usual most.
pub const MAX_RENDERS: usize = 2;

/// What `/metrics` reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The evaluated fleet (brought up to date for each scrape).
    pub views: Arc<Views>,
    /// Every node's series.
    pub store: Arc<Store>,
    /// Ingest's counters.
    pub tap: Arc<Tap>,
    /// The remote_write destinations.
    pub destinations: Vec<Destination>,
    /// One permit per exposition being built ([`MAX_RENDERS`]).
    pub renders: Arc<Semaphore>,
}

impl Sources {
    /// The exposition now, in `format`.
    pub async fn render(&self, format: Format) -> String {
        // Never closed: the semaphore lives as long as the sources.
        let _permit = self.renders.acquire().await;
        // Point reads bring the view up to date first, like Snapshot, so a
        // scrape is never older than the batches acknowledged before it.
        let view = fleet::refresh(&self.views).await;
        let sources = self.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            let now = stacktop_proto::now_unix_ms();
            let sinks = sources
                .views
                .alerts()
                .map(|a| a.response(None, now).sinks)
                .unwrap_or_default();
            let own = CollectorState {
                ingest: sources.tap.stats(),
                sinks,
                destinations: &sources.destinations,
            };
            Exposition::gather(&view, &sources.store, &own, now).encode(format)
        })
        .await;
        match rendered {
            Ok(text) => text,
            // Only a panic while gathering gets here; re-raise it.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
}

/// Serves `/metrics` on `listener` until `shutdown` is cancelled; every
/// task it starts is on `tracker`.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let local = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    info!(listen = %local, path = PATH, "serving Prometheus metrics");
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    warn!(cause = %err, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let sources = sources.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            connection(stream, peer, sources, shutdown).await;
            drop(permit);
        });
    }
    debug!("metrics listener stopped");
}

/// Serves one connection until the client closes it, it times out or
/// lives too long, or shutdown.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    sources: Sources,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request| {
        let sources = sources.clone();
        async move { Ok::<_, Infallible>(respond(request, &sources).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(64)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    let ended = tokio::select! {
        result = conn.as_mut() => Some(result),
        _ = shutdown.cancelled() => None,
        _ = lifetime => None,
    };
    let result = if let Some(result) = ended {
        result
    } else {
        // Let the response in progress finish, then close; give up after
        // REQUEST_TIMEOUT.
        conn.as_mut().graceful_shutdown();
        tokio::time::timeout(REQUEST_TIMEOUT, conn)
            .await
            .unwrap_or(Ok(()))
    };
    if let Err(err) = result {
        debug!(%peer, cause = %err, "metrics connection ended with an error");
    }
}

/// The answer to one request.
async fn respond(request: Request<Incoming>, sources: &Sources) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: stacktop serves /metrics only\n",
        );
    }
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET /metrics\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET"));
        return response;
    }
    let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let text = sources.render(format).await;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
