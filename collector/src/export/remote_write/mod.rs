//! remote_write: every sample the collector stores, forwarded to
//! Prometheus-compatible storage (Prometheus with its remote-write
//! receiver, VictoriaMetrics, Mimir, Thanos Receive) with the remote_write
//! 1.0 protocol. This is how a fleet outgrows one collector: many
//! collectors, one such store behind them.
//!
//! # Per destination (`[[remote-write]]` table)
//!
//! ```text
//! ingest --try_send--> hand-off (HANDOFF batches) --> writer task
//!                                                    |  Pending: <= `queue` samples, oldest dropped
//!                                                    |  a request: <= `batch` samples, or what waited BATCH_WAIT
//!                                                    v
//!                                        POST url (protobuf + snappy), one request in flight
//! ```
//!
//! - Ingest never waits: a full hand-off drops the batch for this
//!   destination ([`DropReason::Handoff`]); a full queue drops its oldest
//!   samples ([`DropReason::QueueFull`]).
//! - A 5xx, a 429, a timeout or a connection failure is retried with
//!   exponential backoff (from [`MIN_BACKOFF`] to [`MAX_BACKOFF`], or what
//!   `Retry-After` asks up to [`MAX_BACKOFF`]) for up to [`RETRY_FOR`];
//!   then the request is dropped ([`DropReason::RetriesExhausted`]).
//!   Meanwhile new samples queue, and the queue's bound applies.
//! - Any other 4xx means the receiver refused the data itself (a bad
//!   label, samples too old): sending it again cannot help, so it is
//!   dropped at once ([`DropReason::Rejected`]).
//! - A sample not newer than the last one sent of its series is left out
//!   ([`DropReason::OutOfOrder`]; see [`wire::Sequencer`]).
//! - On shutdown the writer gets [`SHUTDOWN_GRACE`] to send what it holds;
//!   the rest is counted as dropped ([`DropReason::Shutdown`]).
//!
//! Pending, sent, dropped (by reason) and failed attempts are kept in
//! [`WriteStats`] and exported on `/metrics`.

pub mod config;
pub mod queue;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use config::{RemoteWriteConfig, RemoteWriteError, RemoteWriteSpec};
use queue::Pending;

use super::tap::{Outlet, TapBatch};

/// Batches that may wait between ingest and a destination's writer.
pub const HANDOFF: usize = 1_024;

/// How long the oldest pending sample waits for a full batch before a
/// smaller request is sent.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);

/// First wait before retrying a failed request.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long one request is retried before its samples are dropped.
pub const RETRY_FOR: Duration = Duration::from_secs(5 * 60);

/// How long the newest timestamp sent of a series is remembered after it
/// stopped reporting (receivers refuse samples this old anyway).
pub const SEQUENCE_MEMORY: Duration = Duration::from_secs(3 * 3600);

/// How long a stopping writer may take to send what it holds.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why samples were not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The hand-off from ingest was full (the writer fell far behind).
    Handoff,
    /// The queue was full: the oldest samples made room.
    QueueFull,
    /// The receiver refused them (a 4xx other than 429).
    Rejected,
    /// The receiver failed for longer than [`RETRY_FOR`].
    RetriesExhausted,
    /// Not newer than the series' last sample sent (a late point, or the
    /// same time twice); see [`wire::Sequencer`].
    OutOfOrder,
    /// The collector stopped before they could be sent.
    Shutdown,
}

impl DropReason {
    /// Every reason, in the order [`WriteStats`] keeps them.
    pub const ALL: [DropReason; 6] = [
        DropReason::Handoff,
        DropReason::QueueFull,
        DropReason::Rejected,
        DropReason::RetriesExhausted,
        DropReason::OutOfOrder,
        DropReason::Shutdown,
    ];

    /// The `reason` label's value.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Handoff => "handoff_full",
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected => "rejected",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::OutOfOrder => "out_of_order",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// One destination's counters (relaxed atomics: read by `/metrics`,
/// written by ingest and the writer).
#[derive(Debug, Default)]
pub struct WriteStats {
    pending: AtomicU64,
    sent: AtomicU64,
    requests: AtomicU64,
    failed_attempts: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

impl WriteStats {
    /// Samples queued or in flight.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Samples the receiver accepted.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Requests the receiver accepted.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Attempts that failed (each retry of a request counts).
    pub fn failed_attempts(&self) -> u64 {
        self.failed_attempts.load(Ordering::Relaxed)
    }

    /// Samples dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    fn drop_samples(&self, reason: DropReason, n: usize) {
        if n > 0 {
            self.dropped[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Counts a batch the hand-off refused.
    pub fn dropped_handoff(&self, n: usize) {
        self.drop_samples(DropReason::Handoff, n);
    }
}

/// A running destination, as `/metrics` sees it.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Its name (the `destination` label).
    pub name: String,
    /// Its counters.
    pub stats: Arc<WriteStats>,
}

/// Starts one writer task per spec on `tracker`; returns the outlets the
/// ingest hook feeds and the destinations `/metrics` reports.
pub fn start(
    specs: Vec<RemoteWriteSpec>,
    shutdown: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> (Vec<Outlet>, Vec<Destination>) {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1)
        .build_http();
    let mut outlets = Vec::new();
    let mut destinations = Vec::new();
    for spec in specs {
        let stats = Arc::new(WriteStats::default());
        let (tx, rx) = mpsc::channel(HANDOFF);
        info!(destination = %spec.name, url = %spec.uri, "remote_write enabled");
        destinations.push(Destination {
            name: spec.name.clone(),
            stats: stats.clone(),
        });
        outlets.push(Outlet {
            tx,
            stats: stats.clone(),
        });
        let writer = Writer {
            pending: Pending::new(spec.queue),
            sequencer: wire::Sequencer::default(),
            pruned: Instant::now(),
            spec: Arc::new(spec),
            client: client.clone(),
            stats,
        };
        tracker.spawn(writer.run(rx, shutdown.clone()));
    }
    (outlets, destinations)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What became of one request.
#[derive(Debug)]
enum Outcome {
    Sent,
    Rejected(String),
    GaveUp(String),
}

/// One destination's writer task.
struct Writer {
    spec: Arc<RemoteWriteSpec>,
    client: HttpClient,
    stats: Arc<WriteStats>,
    pending: Pending,
    /// The newest time sent per series.
    sequencer: wire::Sequencer,
    /// When the sequencer last forgot old series.
    pruned: Instant,
}

type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Arc<TapBatch>>, shutdown: CancellationToken) {
        // The one request in flight and how many samples it carries.
        let mut in_flight: Option<(usize, InFlight)> = None;
        // When the oldest pending sample arrived.
        let mut waiting_since: Option<Instant> = None;
        loop {
            if in_flight.is_none()
                && !self.pending.is_empty()
                && let Some(since) = waiting_since
                && (self.pending.len() >= self.spec.batch || since.elapsed() >= BATCH_WAIT)
            {
                in_flight = self.next_request();
                waiting_since = (!self.pending.is_empty()).then(Instant::now);
            }
            self.publish_pending(&in_flight);
            let deadline = waiting_since.map(|since| since + BATCH_WAIT);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = rx.recv() => match batch {
                    Some(batch) => {
                        let dropped = self.pending.push(batch);
                        self.stats.drop_samples(DropReason::QueueFull, dropped);
                        waiting_since.get_or_insert_with(Instant::now);
                    }
                    // Every sender is gone: the collector is stopping.
                    None => break,
                },
                outcome = async { in_flight.as_mut().map(|(_, f)| f.as_mut()).expect("guarded").await },
                    if in_flight.is_some() =>
                {
                    let (n, _) = in_flight.take().expect("guarded");
                    self.settle(n, outcome);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if in_flight.is_none() && deadline.is_some() => {}
            }
        }
        self.stop(rx, in_flight).await;
    }

    /// Takes the next request's samples off the queue and starts sending
    /// them; `None` when none of them is left to send.
    fn next_request(&mut self) -> Option<(usize, InFlight)> {
        let chunks = self.pending.take(self.spec.batch);
        let n: usize = chunks.iter().map(|(_, r)| r.len()).sum();
        if self.pruned.elapsed() >= SEQUENCE_MEMORY / 10 {
            self.pruned = Instant::now();
            let memory = i64::try_from(SEQUENCE_MEMORY.as_millis()).unwrap_or(i64::MAX);
            self.sequencer
                .forget_before(stacktop_proto::now_unix_ms().saturating_sub(memory));
        }
        let (request, left_out) = wire::write_request(&chunks, &mut self.sequencer);
        self.stats.drop_samples(DropReason::OutOfOrder, left_out);
        let n = n - left_out;
        if n == 0 {
            return None;
        }
        let body = Bytes::from(wire::encode(&request));
        let send = send(
            self.client.clone(),
            self.spec.clone(),
            self.stats.clone(),
            body,
        );
        Some((n, Box::pin(send)))
    }

    fn settle(&self, n: usize, outcome: Outcome) {
        match outcome {
            Outcome::Sent => {
                self.stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Rejected(why) => {
                warn!(destination = %self.spec.name, samples = n, cause = %why,
                    "remote_write: the receiver refused a request; its samples are dropped");
                self.stats.drop_samples(DropReason::Rejected, n);
            }
            Outcome::GaveUp(why) => {
                warn!(destination = %self.spec.name, samples = n, cause = %why,
                    retried_for = ?RETRY_FOR, "remote_write: giving up on a request; its samples are dropped");
                self.stats.drop_samples(DropReason::RetriesExhausted, n);
            }
        }
    }

    fn publish_pending(&self, in_flight: &Option<(usize, InFlight)>) {
        let n = self.pending.len() + in_flight.as_ref().map_or(0, |(n, _)| *n);
        self.stats.pending.store(n as u64, Ordering::Relaxed);
    }

    /// Sends what is held within [`SHUTDOWN_GRACE`]; counts the rest.
    async fn stop(
        mut self,
        mut rx: mpsc::Receiver<Arc<TapBatch>>,
        mut in_flight: Option<(usize, InFlight)>,
    ) {
        rx.close();
        while let Ok(batch) = rx.try_recv() {
            let dropped = self.pending.push(batch);
            self.stats.drop_samples(DropReason::QueueFull, dropped);
        }
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        loop {
            if in_flight.is_none() {
                if self.pending.is_empty() {
                    break;
                }
                in_flight = self.next_request();
            }
            self.publish_pending(&in_flight);
            let Some((n, request)) = in_flight.as_mut() else {
                // Everything taken was left out; look at the rest.
                continue;
            };
            tokio::select! {
                outcome = request => {
                    let n = *n;
                    in_flight = None;
                    self.settle(n, outcome);
                }
                _ = &mut grace => break,
            }
        }
        let left = self.pending.clear() + in_flight.map_or(0, |(n, _)| n);
        if left > 0 {
            warn!(destination = %self.spec.name, samples = left,
                "remote_write: stopping with samples unsent");
        }
        self.stats.drop_samples(DropReason::Shutdown, left);
        self.stats.pending.store(0, Ordering::Relaxed);
        debug!(destination = %self.spec.name, "remote_write writer stopped");
    }
}

/// Sends one body, retrying what may succeed later (see the module docs).
async fn send(
    client: HttpClient,
    spec: Arc<RemoteWriteSpec>,
    stats: Arc<WriteStats>,
    body: Bytes,
) -> Outcome {
    let started = Instant::now();
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u32;
    loop {
        let failure = match attempt(&client, &spec, body.clone()).await {
            Ok(()) => {
                if failures > 0 {
                    info!(destination = %spec.name, failures, "remote_write: the receiver is back");
                }
                return Outcome::Sent;
            }
            Err(Attempt::Refused(why)) => return Outcome::Rejected(why),
            Err(Attempt::Retry { why, after }) => {
                stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                if failures == 1 {
                    warn!(destination = %spec.name, cause = %why, "remote_write failed; retrying");
                } else {
                    debug!(destination = %spec.name, cause = %why, failures, "remote_write failed again");
                }
                (why, after)
            }
        };
        let (why, after) = failure;
        let wait = after.unwrap_or(backoff).clamp(MIN_BACKOFF, MAX_BACKOFF);
        if started.elapsed() + wait > RETRY_FOR {
            return Outcome::GaveUp(why);
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Attempt {
    /// Sending the same again cannot succeed.
    Refused(String),
    /// It may succeed later; `after` is what the receiver asked for.
    Retry {
        why: String,
        after: Option<Duration>,
    },
}

async fn attempt(client: &HttpClient, spec: &RemoteWriteSpec, body: Bytes) -> Result<(), Attempt> {
    let mut request = Request::post(spec.uri.clone())
        .header(CONTENT_ENCODING, wire::CONTENT_ENCODING)
        .header(CONTENT_TYPE, wire::CONTENT_TYPE)
        .header(wire::VERSION_HEADER, wire::VERSION)
        .header(
            USER_AGENT,
            concat!("stacktop-collector/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &spec.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| Attempt::Refused(format!("building the request: {e}")))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| Attempt::Retry {
            why: format!("POST {}: {e}", spec.uri),
            after: None,
        })?;
        let status = response.status();
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read (a bounded part of) the body either way, so the connection
        // can be reused and a refusal says why.
        let text = Limited::new(response.into_body(), 1_024)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(Attempt::Retry {
                why: format!("{status}: {text}"),
                after,
            })
        } else {
            Err(Attempt::Refused(format!("{status}: {text}")))
        }
    };
    match tokio::time::timeout(spec.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Attempt::Retry {
            why: format!("no answer within {:?}", spec.timeout),
            after: None,
        }),
    }
}
