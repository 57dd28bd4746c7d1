//! The Ingest service: one bidirectional `Connect` stream per agent.
//!
//! # Protocol as the collector enforces it
//!
//! 1. The first frame must be `Hello` (within [`HELLO_TIMEOUT`]); anything
//!    else is INVALID_ARGUMENT. The name must not be held by a live stream
//!    of another agent instance (ALREADY_EXISTS); the same instance
//!    reconnecting replaces its old stream. The reply is `Welcome` with the
//!    highest seq already stored for the instance.
//! 2. Each `Batch` defines new series (ids valid on this stream only),
//!    carries points and check results. A batch whose seq is not above the
//!    stored one is acknowledged but not re-applied. Points naming an
//!    undefined series id, non-finite values or values beyond f32, negative
//!    values of ratios, byte counts and counters, points stamped more than
//!    [`MAX_FUTURE_MS`] ahead or older than the history window are counted
//!    ([`crate::store::IngestCounters`]), skipped and logged; a batch seq
//!    no agent could have reached ends the stream (INVALID_ARGUMENT). Every
//!    batch is answered with a cumulative `Ack`.
//!    Every stored batch is told to the export hook
//!    ([`crate::export::tap`]): counters for `/metrics`, and the samples
//!    for remote_write when it is configured (never waiting).
//! 3. The stream ends when the agent closes it, when a newer stream of the
//!    same agent replaces it, or on shutdown; the node stays known and is
//!    marked disconnected.
//!
//! Each stream runs in its own task holding a permit of a semaphore sized
//! by `max-agents`; an error on one stream never touches another.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stacktop_proto::v1::ingest_server::Ingest;
use stacktop_proto::v1::{
    Ack, AgentFrame, Batch, CollectorFrame, Hello, Welcome, agent_frame, collector_frame,
};
use stacktop_proto::{Role, VERSION, now_unix_ms};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, instrument, warn};

use crate::export::tap::{Sample, Tap, TapBatch};
use crate::journal::{Entry, Journal, JournalError};
use crate::store::{
    Applied, Identity, MAX_CHECKS_PER_NODE, NodeHandle, Reported, ResolvedPoint, SeriesKey,
    Skipped, Store, StoreError,
};

/// How long a new stream may take to send its Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest accepted node name, in bytes (a DNS name's limit).
pub const MAX_NODE_NAME: usize = 253;

/// Most series one stream may define.
pub const MAX_SERIES_PER_STREAM: usize = 8_192;

/// Longest series name, in bytes.
pub const MAX_SERIES_NAME: usize = 200;

/// Most labels on one series.
pub const MAX_LABELS_PER_SERIES: usize = 32;

/// Longest label name or value, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;

/// Most points in one batch: a real agent sends about sixty.
pub const MAX_POINTS_PER_BATCH: usize = 100_000;

/// Batches one stream may send per second, sustained...
pub const MAX_BATCHES_PER_SECOND: u32 = 100;

/// ...and at once: an agent replaying its spool after an outage sends its
/// backlog as fast as the collector acknowledges it.
pub const BATCH_BURST: u32 = 20_000;

/// How many batches a stream may send: `per_second` sustained, `burst` at
/// once (config `max-batches-per-second`, `max-batch-burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRate {
    /// Sustained batches a second.
    pub per_second: u32,
    /// Batches at once.
    pub burst: u32,
}

impl Default for BatchRate {
    fn default() -> Self {
        Self {
            per_second: MAX_BATCHES_PER_SECOND,
            burst: BATCH_BURST,
        }
    }
}

/// A series definition the store can keep: a name, and labels within
/// bounds.
fn series_def_fits(def: &stacktop_proto::v1::SeriesDef) -> bool {
    let fits = |s: &str| s.len() <= MAX_LABEL_BYTES && !s.chars().any(char::is_control);
    !def.name.is_empty()
        && def.name.len() <= MAX_SERIES_NAME
        && !def.name.chars().any(char::is_control)
        && def.labels.len() <= MAX_LABELS_PER_SERIES
        && def
            .labels
            .iter()
            .all(|l| !l.key.is_empty() && fits(&l.key) && fits(&l.value))
}

/// A token bucket of a [`BatchRate`].
#[derive(Debug)]
struct Bucket {
    rate: BatchRate,
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn new(rate: BatchRate) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.burst),
            at: std::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * f64::from(self.rate.per_second);
        self.tokens = (self.tokens + refill).min(f64::from(self.rate.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How far ahead of the collector's clock a point may be stamped: clocks
/// drift, but not by more.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1_000;

/// Whether a series of this name cannot hold a negative value (Prometheus'
/// unit conventions: a ratio, a byte count, a counter).
pub fn cannot_be_negative(name: &str) -> bool {
    name.ends_with("_ratio") || name.ends_with("_bytes") || name.ends_with("_total")
}

/// Frames queued towards one agent (Welcome and Acks).
const OUTBOUND_CAPACITY: usize = 16;

/// How long a stream ended for bad input waits to deliver its status.
const ERROR_DRAIN: Duration = Duration::from_secs(2);

/// The Ingest gRPC service.
#[derive(Debug, Clone)]
pub struct IngestService {
    store: Arc<Store>,
    /// Acked means durable: batches are journaled first (`None`: memory
    /// only, as the embedded collector runs).
    journal: Option<Journal>,
    /// One permit per open agent stream (`max-agents`).
    permits: Arc<Semaphore>,
    max_agents: usize,
    /// Ends every agent stream when cancelled.
    shutdown: CancellationToken,
    /// Tracks stream tasks so shutdown can wait for them.
    tracker: TaskTracker,
    /// Told about every stored batch (export counters, remote_write).
    tap: Arc<Tap>,
    /// Whether a stream needs a client certificate naming its node
    /// (`client-ca` is set).
    client_certs: bool,
    /// What each stream may send.
    rate: BatchRate,
}

impl IngestService {
    /// A service writing into `store`, accepting at most `max_agents`
    /// concurrent streams.
    pub fn new(
        store: Arc<Store>,
        max_agents: usize,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            store,
            journal: None,
            permits: Arc::new(Semaphore::new(max_agents)),
            max_agents,
            rate: BatchRate::default(),
            shutdown,
            tracker,
            tap: Arc::default(),
            client_certs: false,
        }
    }

    /// The same service, allowing each stream `rate` batches.
    pub fn with_batch_rate(mut self, rate: BatchRate) -> Self {
        self.rate = rate;
        self
    }

    /// The same service, requiring (or not) a client certificate whose
    /// name is the node's.
    pub fn with_client_certs(self, client_certs: bool) -> Self {
        Self {
            client_certs,
            ..self
        }
    }

    /// The same service, telling `tap` about every stored batch.
    pub fn with_tap(self, tap: Arc<Tap>) -> Self {
        Self { tap, ..self }
    }
}

impl IngestService {
    /// Journals every batch before acknowledging it.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }
}

type Outbound = mpsc::Sender<Result<CollectorFrame, Status>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type ConnectStream = ReceiverStream<Result<CollectorFrame, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentFrame>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // With client certificates required, the names this stream may
        // report under; checked against the Hello before anything is
        // attached or stored.
        let cert_names = if self.client_certs {
            Some(client_cert_names(&request)?)
        } else {
            None
        };
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this collector already serves its limit of {} agent streams; retry later",
                self.max_agents
            ))
        })?;
        let mut inbound = request.into_inner();
        let hello = tokio::select! {
            _ = self.shutdown.cancelled() => {
                return Err(Status::unavailable("collector is shutting down; reconnect later"));
            }
            hello = read_hello(&mut inbound) => hello?,
        };
        let identity = identity_from_hello(hello, peer)?;
        if let Some(names) = &cert_names {
            check_cert_name(names, &identity.name)?;
        }
        let identity_for_journal = identity.clone();
        let cancel = self.shutdown.child_token();
        let attached = self
            .store
            .attach(identity.clone(), cancel.clone(), now_unix_ms())
            .map_err(|err| match err {
                StoreError::NameTaken { .. } => Status::already_exists(err.to_string()),
                other => Status::internal(other.to_string()),
            })?;
        info!(
            node = %identity.name,
            instance = %identity.instance_id,
            peer = %identity.peer,
            resume_after_seq = attached.resume_after_seq,
            "agent connected"
        );
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let welcome = frame(collector_frame::Frame::Welcome(Welcome {
            resume_after_seq: attached.resume_after_seq,
            collector_version: VERSION.to_string(),
        }));
        // The channel is new and empty: this cannot fail.
        let _ = tx.try_send(Ok(welcome));
        let stream = AgentStream {
            node: Arc::new(identity.clone()),
            tap: self.tap.clone(),
            store: self.store.clone(),
            handle: attached.handle,
            instance_id: identity.instance_id,
            defs: Defs::default(),
            tx,
            cancel,
            shutdown: self.shutdown.clone(),
            _permit: permit,
            bucket: Bucket::new(self.rate),
            identity: Arc::new(identity_for_journal),
            journal: self.journal.clone(),
        };
        self.tracker.spawn(stream.run(inbound));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The names the client certificate of `request` speaks for
/// (`UNAUTHENTICATED` without one).
fn client_cert_names<T>(request: &Request<T>) -> Result<Vec<String>, Status> {
    let certs = request.peer_certs().unwrap_or_default();
    let leaf = certs.first().ok_or_else(|| {
        Status::unauthenticated(
            "this collector requires a client certificate (tls-cert, tls-key in the agent \
             config) signed by its client-ca; none was presented",
        )
    })?;
    Ok(crate::auth::tls::cert_names(leaf))
}

/// Refuses a Hello for a node its certificate is not for.
fn check_cert_name(names: &[String], node: &str) -> Result<(), Status> {
    if names.iter().any(|n| n == node) {
        return Ok(());
    }
    let shown = match names {
        [] => "no name".to_string(),
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    };
    warn!(node, certificate = %shown, "refused: a node reported under a name its certificate is not for");
    Err(Status::permission_denied(format!(
        "the client certificate is for {shown}, but the stream reports as {node:?}; a node may \
         only report under the name in its certificate"
    )))
}

fn frame(frame: collector_frame::Frame) -> CollectorFrame {
    CollectorFrame { frame: Some(frame) }
}

/// Waits for the first frame and insists that it is a Hello.
async fn read_hello(inbound: &mut Streaming<AgentFrame>) -> Result<Hello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "no Hello within {}s of opening the stream",
                HELLO_TIMEOUT.as_secs()
            ))
        })??;
    match first.and_then(|f| f.frame) {
        Some(agent_frame::Frame::Hello(hello)) => Ok(hello),
        Some(agent_frame::Frame::Batch(batch)) => Err(Status::invalid_argument(format!(
            "the first frame of a stream must be Hello, got Batch (seq {})",
            batch.seq
        ))),
        None => Err(Status::invalid_argument(
            "the first frame of a stream must be Hello, got an empty frame or end of stream",
        )),
    }
}

/// Checks a Hello and turns it into an [`Identity`].
/// Longest announced check name or kind kept; a check's results carry
/// names of at most this length too.
const MAX_PLANNED_NAME: usize = 200;

fn identity_from_hello(hello: Hello, peer: String) -> Result<Identity, Status> {
    let Hello {
        node,
        instance_id,
        roles,
        roles_detected,
        labels,
        agent_version,
        interval_ms,
        checks,
    } = hello;
    if node.is_empty() || node.len() > MAX_NODE_NAME || node.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "hello.node {node:?} must be 1..={MAX_NODE_NAME} bytes without control characters"
        )));
    }
    if instance_id.is_empty() {
        return Err(Status::invalid_argument(
            "hello.instance_id must not be empty (a random id drawn when the agent starts)",
        ));
    }
    if interval_ms == 0 {
        return Err(Status::invalid_argument(
            "hello.interval_ms must be above 0 (the agent's sampling interval)",
        ));
    }
    let mut roles: Vec<Role> = roles
        .into_iter()
        .filter_map(|r| Role::try_from(r).ok())
        .filter(|&r| r != Role::Unspecified)
        .collect();
    roles.sort_by_key(|&r| r as i32);
    roles.dedup();
    let mut planned_checks = checks;
    planned_checks.truncate(MAX_CHECKS_PER_NODE);
    for c in &mut planned_checks {
        c.name
            .truncate(c.name.floor_char_boundary(MAX_PLANNED_NAME));
        c.kind
            .truncate(c.kind.floor_char_boundary(MAX_PLANNED_NAME));
    }
    Ok(Identity {
        name: node,
        instance_id,
        roles,
        roles_detected,
        labels,
        agent_version,
        interval_ms,
        peer,
        planned_checks,
    })
}

/// A series defined on a stream: its identity and, once the store has
/// seen it, where the node keeps it (so later points skip the lookup).
struct StreamSeries {
    /// Shared, so that a sample handed to remote_write costs a reference
    /// count rather than a copy of the name and labels.
    key: Arc<SeriesKey>,
    index: Cell<Option<u32>>,
}

/// The series defined on one stream, by id. Agents number their series
/// 0, 1, 2...: ids below [`MAX_SERIES_PER_STREAM`] live in a vector (a
/// point costs an index, not a hash), others in a map.
#[derive(Default)]
struct Defs {
    dense: Vec<Option<StreamSeries>>,
    sparse: HashMap<u32, StreamSeries>,
    len: usize,
}

impl Defs {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, id: u32) -> Option<&StreamSeries> {
        match self.dense.get(id as usize) {
            Some(slot) => slot.as_ref(),
            None => self.sparse.get(&id),
        }
    }

    fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: u32, series: StreamSeries) {
        let replaced = if (id as usize) < MAX_SERIES_PER_STREAM {
            let at = id as usize;
            if self.dense.len() <= at {
                self.dense.resize_with(at + 1, || None);
            }
            self.dense[at].replace(series).is_some()
        } else {
            self.sparse.insert(id, series).is_some()
        };
        if !replaced {
            self.len += 1;
        }
    }
}

/// One agent's stream, owned by its task.
struct AgentStream {
    /// Who the stream speaks for, as its Hello said (labels samples for
    /// remote_write).
    node: Arc<Identity>,
    /// Told about every stored batch.
    tap: Arc<Tap>,
    store: Arc<Store>,
    handle: NodeHandle,
    instance_id: String,
    /// Series ids defined on this stream.
    defs: Defs,
    tx: Outbound,
    /// Cancelled when a newer stream of the same agent takes over, or on
    /// shutdown.
    cancel: CancellationToken,
    /// The collector's shutdown token (the parent of `cancel`), to tell a
    /// shutdown from a replacement.
    shutdown: CancellationToken,
    /// Held for the stream's lifetime (`max-agents`).
    _permit: OwnedSemaphorePermit,
    /// Batches this stream may still send now.
    bucket: Bucket,
    /// Who sends (what the journal records with each batch).
    identity: Arc<Identity>,
    /// Where batches go before they are acknowledged; `None`: memory only.
    journal: Option<Journal>,
}

impl std::fmt::Debug for AgentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStream")
            .field("node", &self.handle.name())
            .field("instance", &self.instance_id)
            .finish()
    }
}

/// Why a batch was not stored.
#[derive(Debug)]
enum Refused {
    Store(StoreError),
    Journal(JournalError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Why a stream ended, for the log.
enum End {
    ClosedByAgent,
    Cancelled,
    AgentGone,
    Inbound(Status),
    Error(Status),
}

impl AgentStream {
    #[instrument(name = "agent", skip_all, fields(node = %self.handle.name(), instance = %self.instance_id))]
    async fn run(mut self, mut inbound: Streaming<AgentFrame>) {
        let end = loop {
            let message = tokio::select! {
                _ = self.cancel.cancelled() => break End::Cancelled,
                m = inbound.message() => m,
            };
            let batch = match message {
                Ok(Some(AgentFrame {
                    frame: Some(agent_frame::Frame::Batch(batch)),
                })) => batch,
                Ok(Some(AgentFrame {
                    frame: Some(agent_frame::Frame::Hello(_)),
                })) => {
                    break End::Error(Status::invalid_argument(
                        "Hello may only be the first frame of a stream; open a new stream instead",
                    ));
                }
                Ok(Some(AgentFrame { frame: None })) => {
                    break End::Error(Status::invalid_argument("empty AgentFrame"));
                }
                Ok(None) => break End::ClosedByAgent,
                // A decode error (e.g. a frame over the size limit) or a
                // reset by the agent; tell the agent in case it still listens.
                Err(status) => break End::Inbound(status),
            };
            if batch.points.len() > MAX_POINTS_PER_BATCH {
                self.store.count_refused_batch();
                break End::Error(Status::invalid_argument(format!(
                    "batch {} has {} points; at most {MAX_POINTS_PER_BATCH}",
                    batch.seq,
                    batch.points.len()
                )));
            }
            if !self.bucket.take() {
                self.store.count_refused_batch();
                break End::Error(Status::resource_exhausted(format!(
                    "more than {} batches a second (after a burst of {}); slow down and \
                     reconnect",
                    self.bucket.rate.per_second, self.bucket.rate.burst
                )));
            }
            let ack = match self.apply(batch).await {
                Ok(seq) => seq,
                Err(Refused::Store(StoreError::Replaced { .. })) => break End::Cancelled,
                Err(Refused::Store(err @ StoreError::SeqJump { .. })) => {
                    break End::Error(Status::invalid_argument(err.to_string()));
                }
                Err(Refused::Store(other)) => {
                    break End::Error(Status::internal(other.to_string()));
                }
                Err(Refused::Journal(err)) => {
                    break End::Error(Status::unavailable(format!(
                        "the batch could not be stored durably ({err}); it is not acknowledged: \
                         resend it later"
                    )));
                }
            };
            let ack = frame(collector_frame::Frame::Ack(Ack { seq: ack }));
            let sent = tokio::select! {
                _ = self.cancel.cancelled() => break End::Cancelled,
                r = self.tx.send(Ok(ack)) => r,
            };
            if sent.is_err() {
                break End::AgentGone;
            }
        };
        match end {
            End::ClosedByAgent => info!("agent closed its stream"),
            End::Cancelled if self.shutdown.is_cancelled() => {
                info!("collector shutting down");
                let _ = self.tx.try_send(Err(Status::unavailable(
                    "collector is shutting down; reconnect later",
                )));
            }
            End::Cancelled => {
                info!("stream replaced by a newer stream of the same agent");
                let _ = self.tx.try_send(Err(Status::aborted(
                    "this stream was replaced by a newer stream of the same agent instance",
                )));
            }
            End::AgentGone => info!("agent went away"),
            End::Inbound(status) => {
                info!(%status, "stream failed");
                let _ = self.tx.try_send(Err(status));
            }
            End::Error(status) => {
                warn!(%status, "ending stream on bad input");
                // Waits (bounded) for room: a full queue of acks must not
                // swallow the one message that says why.
                let _ = tokio::time::timeout(ERROR_DRAIN, self.tx.send(Err(status))).await;
                // Keeps reading (and dropping) what the agent still sends
                // until it has seen the status and stopped: dropping a
                // request stream that is still arriving resets it, and an
                // agent in mid-send then sees a broken pipe instead of why.
                let _ = tokio::time::timeout(ERROR_DRAIN, async {
                    while let Ok(Some(_)) = inbound.message().await {}
                })
                .await;
            }
        }
        self.store.detach(&self.handle);
    }

    /// Resolves and stores one batch; returns the seq to acknowledge.
    async fn apply(&mut self, batch: Batch) -> Result<u64, Refused> {
        let Batch {
            seq,
            timestamp_ms,
            series,
            points,
            checks,
            facts,
            backends,
            backends_error,
        } = batch;
        let now = now_unix_ms();
        let batch_ts = if timestamp_ms > 0 { timestamp_ms } else { now };
        let mut refused_defs = 0usize;
        for def in series {
            if self.defs.len() >= MAX_SERIES_PER_STREAM && !self.defs.contains(def.id) {
                refused_defs += 1;
                continue;
            }
            if !series_def_fits(&def) {
                refused_defs += 1;
                continue;
            }
            // A redefinition starts over: its hint points at the old series.
            self.defs.insert(
                def.id,
                StreamSeries {
                    key: Arc::new(SeriesKey::new(def.name, &def.labels)),
                    index: Cell::new(None),
                },
            );
        }
        let mut skipped = Skipped {
            refused_defs,
            ..Skipped::default()
        };
        let newest = now + MAX_FUTURE_MS;
        let oldest = now - self.store.window_ms();
        let mut resolved = Vec::with_capacity(points.len());
        // Series ids, not their cells: a `&Cell` may not be held across the
        // journal's await.
        let mut hint_ids = Vec::with_capacity(points.len());
        // The series of `resolved`, only when remote_write wants samples.
        let tapped = self.tap.wants_samples();
        let mut keys: Vec<&Arc<SeriesKey>> = Vec::new();
        for p in &points {
            let Some(def) = self.defs.get(p.series_id) else {
                skipped.undefined += 1;
                continue;
            };
            let timestamp_ms = if p.timestamp_ms > 0 {
                p.timestamp_ms
            } else {
                batch_ts
            };
            // Each rule keeps one bad value from harming the series: a
            // point from the far future would become its latest for good.
            let counter = if !p.value.is_finite() {
                &mut skipped.non_finite
            } else if p.value.abs() > f64::from(f32::MAX) {
                // History keeps f32: this would be served as infinity.
                &mut skipped.out_of_range
            } else if p.value < 0.0 && cannot_be_negative(&def.key.name) {
                &mut skipped.negative
            } else if timestamp_ms > newest {
                &mut skipped.future
            } else if timestamp_ms < oldest {
                &mut skipped.too_old
            } else {
                resolved.push(ResolvedPoint {
                    key: &def.key,
                    timestamp_ms,
                    value: p.value,
                });
                hint_ids.push(p.series_id);
                if tapped {
                    keys.push(&def.key);
                }
                continue;
            };
            *counter += 1;
        }
        if skipped.any() {
            self.store.count_skipped(&skipped);
            warn!(
                seq,
                refused_defs = skipped.refused_defs,
                undefined = skipped.undefined,
                non_finite = skipped.non_finite,
                out_of_range = skipped.out_of_range,
                negative = skipped.negative,
                future = skipped.future,
                too_old = skipped.too_old,
                "skipped parts of a batch"
            );
        }
        let reported = Reported {
            checks,
            facts: facts.into_iter().filter(|f| !f.key.is_empty()).collect(),
            backends,
            backends_error: (!backends_error.is_empty()).then_some(backends_error),
        };
        // Acked means durable: a new batch is on disk before it is applied
        // and acknowledged.
        if let Some(journal) = &self.journal
            && self.store.is_new(&self.handle, seq)?
        {
            let entry = Entry::new(&self.identity, seq, &resolved, &reported, now);
            journal.append(&entry).await.map_err(Refused::Journal)?;
        }
        let hints: Vec<&Cell<Option<u32>>> = hint_ids
            .iter()
            .filter_map(|&id| self.defs.get(id).map(|d| &d.index))
            .collect();
        match self
            .store
            .apply_hinted(&self.handle, seq, &resolved, &hints, reported, now)?
        {
            Applied::Stored {
                seq,
                dropped_points,
                overlapping_points,
            } => {
                if dropped_points > 0 {
                    self.tap.dropped_at_series_limit(dropped_points);
                    warn!(seq, dropped_points, "node is at its series limit");
                }
                if overlapping_points > 0 {
                    self.store.count_skipped(&Skipped {
                        overlapping: overlapping_points,
                        ..Skipped::default()
                    });
                    warn!(
                        seq,
                        overlapping_points,
                        "dropped points from before this agent took the name over \
                         (they overlap the previous agent's)"
                    );
                }
                let stored = resolved
                    .len()
                    .saturating_sub(dropped_points + overlapping_points);
                self.tap.stored(stored, || TapBatch {
                    node: self.node.clone(),
                    samples: resolved
                        .iter()
                        .zip(&keys)
                        .map(|(p, &key)| Sample {
                            key: key.clone(),
                            timestamp_ms: p.timestamp_ms,
                            value: p.value,
                        })
                        .collect(),
                });
                Ok(seq)
            }
            Applied::Duplicate { seq: held } => {
                debug!(seq, held, "duplicate batch acknowledged, not re-applied");
                Ok(held)
            }
        }
    }
}

/// Batch handling without a network, for fuzzers (`fuzz/`, cargo-fuzz)
/// and the property tests: one agent stream into a fresh store.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;
    use prost::Message;

    /// A stream of node `web1` attached to `store`, as a Hello would make
    /// it; every batch is told to a remote_write destination that is gone
    /// (the hook still builds every sample).
    pub(super) fn stream(store: &Arc<Store>) -> AgentStream {
        let hello = Hello {
            node: "web1".into(),
            instance_id: "i-1".into(),
            roles: vec![Role::Web as i32],
            interval_ms: 1_000,
            checks: Vec::new(),
            ..Hello::default()
        };
        let identity = identity_from_hello(hello.clone(), "fuzz".into()).expect("a valid Hello");
        let attached = store
            .attach(identity.clone(), CancellationToken::new(), now_unix_ms())
            .expect("a fresh store");
        let (tx, _rx) = mpsc::channel(1);
        let (outlet, _) = mpsc::channel(1);
        let tap = Tap::new(vec![crate::export::tap::Outlet {
            tx: outlet,
            stats: Arc::default(),
        }]);
        AgentStream {
            node: Arc::new(identity.clone()),
            tap: Arc::new(tap),
            store: store.clone(),
            handle: attached.handle,
            instance_id: identity.instance_id.clone(),
            defs: Defs::default(),
            tx,
            cancel: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            _permit: Arc::new(Semaphore::new(1))
                .try_acquire_owned()
                .expect("a fresh semaphore"),
            bucket: Bucket::new(BatchRate::default()),
            identity: Arc::new(identity),
            journal: None,
        }
    }

    /// Applies `batch` on `stream`, as a received frame would be.
    pub(super) fn apply(stream: &mut AgentStream, batch: Batch) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let _ = rt.block_on(stream.apply(batch));
    }

    /// Decodes `data` as length-delimited `AgentFrame`s and applies every
    /// batch among them to a fresh store, then evaluates the fleet once.
    pub fn frames(data: &[u8]) {
        let store = Arc::new(Store::new(Duration::from_secs(60)));
        let views = crate::fleet::Views::new(store.clone());
        let mut s = stream(&store);
        let mut buf = data;
        while !buf.is_empty() {
            let Ok(frame) = AgentFrame::decode_length_delimited(&mut buf) else {
                break;
            };
            if let Some(agent_frame::Frame::Batch(batch)) = frame.frame {
                apply(&mut s, batch);
            }
        }
        let _ = views.publish(now_unix_ms()).snapshot();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            node: "web1".into(),
            instance_id: "i-1".into(),
            roles: vec![
                Role::Web as i32,
                99,
                Role::Unspecified as i32,
                Role::Web as i32,
            ],
            interval_ms: 1_000,
            checks: Vec::new(),
            ..Hello::default()
        }
    }

    #[test]
    fn hello_roles_are_cleaned() {
        let id = identity_from_hello(hello(), "peer".into()).unwrap();
        assert_eq!(id.roles, [Role::Web]);
        assert_eq!(id.peer, "peer");
    }

    #[test]
    fn bad_hellos_get_clear_errors() {
        let mut h = hello();
        h.node = String::new();
        let err = identity_from_hello(h, String::new()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("hello.node"));

        let mut h = hello();
        h.interval_ms = 0;
        let err = identity_from_hello(h, String::new()).unwrap_err();
        assert!(err.message().contains("interval_ms"));

        let mut h = hello();
        h.instance_id = String::new();
        let err = identity_from_hello(h, String::new()).unwrap_err();
        assert!(err.message().contains("instance_id"));
    }

    /// Hostile batches, generated: whatever an agent sends, applying it
    /// never panics, the fleet view built after it never does either, and
    /// nothing non-finite or beyond f32 becomes a latest value.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        use prost::Message;
        use stacktop_proto::v1::{CheckResult, Label, Point, SeriesDef};

        use crate::ingest::fuzzing::stream;

        /// The cargo-fuzz target's seeds (`fuzz/corpus/ingest_frames`)
        /// hold real batches, and run here too.
        #[test]
        fn the_cargo_fuzz_seeds_hold_batches_and_run() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/corpus/ingest_frames");
            let mut batches = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                let mut buf = data.as_slice();
                while let Ok(frame) = AgentFrame::decode_length_delimited(&mut buf) {
                    batches +=
                        usize::from(matches!(frame.frame, Some(agent_frame::Frame::Batch(_))));
                }
                crate::ingest::fuzzing::frames(&data);
            }
            assert!(batches >= 4, "{batches} batches in {}", dir.display());
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("node_cpu_usage_ratio".to_string()),
                Just("node_memory_used_bytes".to_string()),
                Just("http_requests_per_second".to_string()),
                Just(String::new()),
                "\\PC{0,40}",
                Just("x".repeat(300)),
            ]
        }

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(1e308),
                Just(-0.5),
                0.0..1.0f64,
                any::<f64>(),
            ]
        }

        fn timestamp() -> impl Strategy<Value = i64> {
            let now = now_unix_ms();
            prop_oneof![
                Just(0i64),
                (now - 60_000)..(now + 60_000),
                any::<i64>(),
                Just(i64::MAX),
                Just(i64::MIN),
            ]
        }

        fn batch() -> impl Strategy<Value = Batch> {
            let def = (
                prop_oneof![0u32..16, any::<u32>()],
                text(),
                prop_oneof![
                    proptest::collection::vec((text(), text()), 0..4),
                    proptest::collection::vec(
                        (Just("k".to_string()), Just("v".to_string())),
                        33..40
                    ),
                ],
            )
                .prop_map(|(id, name, labels)| SeriesDef {
                    id,
                    name,
                    labels: labels
                        .into_iter()
                        .map(|(key, value)| Label { key, value })
                        .collect(),
                });
            let point = (prop_oneof![0u32..16, any::<u32>()], value(), timestamp()).prop_map(
                |(series_id, value, timestamp_ms)| Point {
                    series_id,
                    value,
                    timestamp_ms,
                },
            );
            let check = (text(), text(), any::<i32>(), any::<u32>()).prop_map(
                |(name, kind, status, interval_ms)| CheckResult {
                    name,
                    kind,
                    status,
                    interval_ms,
                    ..Default::default()
                },
            );
            (
                prop_oneof![1u64..100, any::<u64>()],
                timestamp(),
                proptest::collection::vec(def, 0..12),
                proptest::collection::vec(point, 0..64),
                proptest::collection::vec(check, 0..4),
            )
                .prop_map(|(seq, timestamp_ms, series, points, checks)| Batch {
                    seq,
                    timestamp_ms,
                    series,
                    points,
                    checks,
                    ..Default::default()
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            #[test]
            fn hostile_batches_never_panic_and_never_become_latest(
                batches in proptest::collection::vec(batch(), 1..6),
            ) {
                let store = Arc::new(Store::new(Duration::from_secs(60)));
                let views = crate::fleet::Views::new(store.clone());
                let mut s = stream(&store);
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                for b in batches {
                    let _ = rt.block_on(s.apply(b));
                }
                let view = views.publish(now_unix_ms());
                let snapshot = view.snapshot();
                for n in &snapshot.nodes {
                    for v in &n.latest {
                        prop_assert!(v.value.is_finite() && v.value.abs() <= f64::from(f32::MAX), "{v:?}");
                    }
                    if let Some(summary) = &n.summary {
                        prop_assert!(summary.cpu_usage_ratio.is_none_or(|c| (0.0..=1.0).contains(&c)), "{summary:?}");
                    }
                }
            }

            #[test]
            fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let store = Arc::new(Store::new(Duration::from_secs(60)));
                let mut s = stream(&store);
                if let Ok(AgentFrame { frame: Some(agent_frame::Frame::Batch(b)) }) = AgentFrame::decode(bytes.as_slice()) {
                    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    let _ = rt.block_on(s.apply(b));
                }
            }
        }
    }
}
