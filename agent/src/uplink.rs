//! The uplink: one task per collector that keeps an `Ingest.Connect`
//! stream open and delivers every batch at least once.
//!
//! # Protocol, as the agent speaks it
//!
//! 1. Connect through the shared client transport
//!    ([`stacktop_proto::transport::ClientConfig`]: connect timeout,
//!    HTTP/2 keep-alive, message sizes), open the stream and send `Hello`
//!    first.
//! 2. Wait for `Welcome`; forget queued batches with `seq <=
//!    resume_after_seq` (the collector already holds them).
//! 3. Send queued batches in seq order, then new ones as they come. Each
//!    stream starts with no series defined, so a batch carries the
//!    `SeriesDef` of every id it is the first on this stream to use —
//!    including resent batches after a reconnect.
//! 4. Cumulative `Ack`s drop batches from the queue.
//!
//! Any failure ends the session; the task waits (exponential backoff with
//! jitter) and starts over. It never gives up: an absent or refusing
//! collector is logged and retried, and batches keep queueing (bounded) in
//! the meantime. On shutdown a connected uplink gets [`DRAIN_TIMEOUT`] to
//! send what it holds and collect the acks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stacktop_proto::transport::{ClientConfig, ClientTls, Token, TransportError};
use stacktop_proto::v1::agent_frame::Frame as AgentFrameKind;
use stacktop_proto::v1::collector_frame::Frame as CollectorFrameKind;
use stacktop_proto::v1::{AgentFrame, Batch, Hello, Welcome};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, instrument, warn};

use crate::backoff::Backoff;
use crate::queue::BatchQueue;
use crate::series::SeriesTable;
use crate::spool::Spool;

/// Limit on opening the stream and receiving `Welcome`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connected uplink may keep flushing after shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Frames buffered between the uplink and the gRPC stream; small, so
/// "sent" means close to "on the wire".
const OUTBOUND_FRAMES: usize = 16;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The address is refused, or the connection could not be
    /// established in time (the message names the collector).
    #[error(transparent)]
    Connect(#[from] TransportError),
    /// A step took too long.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The collector answered with an error status (e.g. `ALREADY_EXISTS`
    /// when another agent instance holds this node name).
    #[error("collector said {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The collector broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The collector closed the stream.
    #[error("the collector closed the stream")]
    Closed,
}

/// Results of one uplink session.
pub type Result<T> = std::result::Result<T, UplinkError>;

/// How a session that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
enum SessionEnd {
    /// Shutdown was requested (and the drain, if any, is over).
    Shutdown,
}

/// One collector's uplink. Build with [`Uplink::new`], then [`Uplink::run`].
#[derive(Debug)]
pub struct Uplink {
    url: String,
    /// How to dial the collector: the one client builder every client of
    /// a collector uses.
    transport: ClientConfig,
    hello: Hello,
    series: SeriesTable,
    /// Batches from the sampler. Bounded; the sampler never waits on it,
    /// so this task must keep draining it, connected or not.
    input: mpsc::Receiver<Arc<Batch>>,
    /// Set once the sampler has hung up (shutdown).
    input_closed: bool,
    queue: BatchQueue,
    /// The newest seq the sampler handed over (0: none yet).
    newest_seq: u64,
    /// Told about acknowledgements, when the agent spools.
    spool: Option<Spool>,
    backoff: Backoff,
    shutdown: CancellationToken,
}

impl Uplink {
    /// An uplink to `url` announcing itself with `hello`, fed by `input`.
    pub fn new(
        url: String,
        hello: Hello,
        series: SeriesTable,
        input: mpsc::Receiver<Arc<Batch>>,
        queue_capacity: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            transport: ClientConfig::new(url.clone()),
            url,
            hello,
            series,
            input,
            input_closed: false,
            queue: BatchQueue::new(queue_capacity),
            newest_seq: 0,
            spool: None,
            backoff: Backoff::default(),
            shutdown,
        }
    }

    /// The same uplink dialling with these TLS files (read at each
    /// connect) and sending this token.
    pub fn with_credentials(mut self, tls: ClientTls, token: Option<Token>) -> Self {
        self.transport = self.transport.with_tls(tls).with_token(token);
        self
    }

    /// Acknowledgements also go to `spool`, and `pending` (what a previous
    /// run spooled and this collector has not acknowledged) is sent first.
    pub fn with_spool(mut self, spool: Spool, pending: impl Iterator<Item = Arc<Batch>>) -> Self {
        for batch in pending {
            self.newest_seq = self.newest_seq.max(batch.seq);
            enqueue(&mut self.queue, batch);
        }
        self.spool = Some(spool);
        self
    }

    /// The collector holds everything up to `seq`.
    fn acked(&mut self, seq: u64) {
        self.queue.ack(seq);
        if let Some(spool) = &self.spool {
            spool.acked(&self.url, seq);
        }
    }

    /// Connects, streams and reconnects until shutdown.
    #[instrument(skip(self), fields(collector = %self.url))]
    pub async fn run(mut self) {
        let mut failures = 0u64;
        loop {
            match self.session().await {
                Ok(SessionEnd::Shutdown) => break,
                Err(err) => {
                    failures += 1;
                    let delay = self.backoff.next_delay();
                    warn!(cause = %ErrorChain(&err), failures, retry_in = ?delay, queued = self.queue.len(),
                        "collector session ended; will retry");
                    if self.intake_during(sleep(delay)).await.is_none() {
                        break;
                    }
                }
            }
        }
        debug!(
            unacked = self.queue.len(),
            dropped = self.queue.dropped(),
            "uplink stopped"
        );
    }

    /// The seq to send after: `last_sent`, or just below the oldest batch
    /// the spool still holds.
    fn send_after(&self, last_sent: u64) -> u64 {
        match self.spool.as_ref().and_then(Spool::oldest_seq) {
            Some(oldest) => last_sent.max(oldest - 1),
            None => last_sent,
        }
    }

    /// Awaits `fut` while moving sampler batches into the queue, so the
    /// sampler's channel never fills while connecting or backing off.
    /// `None` when shutdown fired first.
    async fn intake_during<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                out = &mut fut => return Some(out),
                batch = self.input.recv(), if !self.input_closed => match batch {
                    Some(batch) => {
                        self.newest_seq = self.newest_seq.max(batch.seq);
                        enqueue(&mut self.queue, batch)
                    }
                    None => self.input_closed = true,
                },
            }
        }
    }

    /// One connection: handshake, then stream until failure or shutdown.
    async fn session(&mut self) -> Result<SessionEnd> {
        // `connect` bounds itself by the transport's connect timeout.
        let transport = self.transport.clone();
        let Some(connected) = self.intake_during(transport.connect()).await else {
            return Ok(SessionEnd::Shutdown);
        };
        let channel = connected?;

        let (frames, outbound) = mpsc::channel::<AgentFrame>(OUTBOUND_FRAMES);
        frames
            .try_send(AgentFrame {
                frame: Some(AgentFrameKind::Hello(self.hello.clone())),
            })
            .expect("a fresh channel has room for Hello");
        let mut client = self.transport.ingest(channel);
        let handshake = async {
            let mut inbound = client
                .connect(ReceiverStream::new(outbound))
                .await?
                .into_inner();
            match inbound.message().await? {
                Some(frame) => match frame.frame {
                    Some(CollectorFrameKind::Welcome(welcome)) => Ok((inbound, welcome)),
                    _ => Err(UplinkError::Protocol("first frame was not Welcome")),
                },
                None => Err(UplinkError::Closed),
            }
        };
        let Some(handshake) = self
            .intake_during(timeout(HANDSHAKE_TIMEOUT, handshake))
            .await
        else {
            return Ok(SessionEnd::Shutdown);
        };
        let (mut inbound, welcome) =
            handshake.map_err(|_| UplinkError::Timeout("waiting for Welcome"))??;
        let Welcome {
            resume_after_seq,
            collector_version,
        } = welcome;
        if resume_after_seq > self.newest_seq {
            // The collector holds more of this instance than it ever sent:
            // someone else streamed under its id. Carrying on would have
            // every batch acknowledged as a duplicate and dropped, silently.
            // Start over as a new instance instead, loudly.
            let fresh = new_instance_id();
            error!(
                resume_after_seq,
                newest_seq = self.newest_seq,
                old_instance = %self.hello.instance_id,
                new_instance = %fresh,
                "the collector says this agent already sent batches it never sent \
                 (another process used its instance id); reconnecting as a new instance"
            );
            self.hello.instance_id = fresh;
            return Err(UplinkError::Protocol(
                "the collector resumes after a seq this agent never sent",
            ));
        }
        info!(resume_after_seq, %collector_version, queued = self.queue.len(), "connected");
        self.backoff.reset();
        self.acked(resume_after_seq);

        // Per stream: the last seq sent and which series ids are defined.
        let mut last_sent = resume_after_seq;
        let mut defined: Vec<bool> = Vec::new();
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_some() && self.input_closed && self.queue.is_empty() {
                debug!("everything acknowledged");
                return Ok(SessionEnd::Shutdown);
            }
            // What the spool dropped (full, too old) is not sent from
            // memory either: the dropped count stays the truth.
            let after = self.send_after(last_sent);
            let has_unsent = self.queue.next_after(after).is_some();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled(), if drain_until.is_none() => {
                    drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                }
                () = sleep_until(drain_until.unwrap_or_else(Instant::now)), if drain_until.is_some() => {
                    warn!(unacked = self.queue.len(), "shutdown: gave up waiting for acks");
                    return Ok(SessionEnd::Shutdown);
                }
                frame = inbound.message() => match frame?.and_then(|f| f.frame) {
                    Some(CollectorFrameKind::Ack(ack)) => self.acked(ack.seq),
                    Some(CollectorFrameKind::Welcome(_)) => {
                        return Err(UplinkError::Protocol("second Welcome on one stream"));
                    }
                    None => return Err(UplinkError::Closed),
                },
                batch = self.input.recv(), if !self.input_closed => match batch {
                    Some(batch) => {
                        self.newest_seq = self.newest_seq.max(batch.seq);
                        enqueue(&mut self.queue, batch)
                    }
                    None => self.input_closed = true,
                },
                permit = frames.reserve(), if has_unsent => {
                    let permit = permit.map_err(|_| UplinkError::Closed)?;
                    let batch = self.queue.next_after(after).expect("checked above");
                    last_sent = batch.seq;
                    permit.send(batch_frame(&self.series, batch, &mut defined));
                    if let Some(spool) = &self.spool {
                        spool.sent(&self.url, last_sent);
                    }
                }
            }
        }
    }
}

/// Displays an error with its sources (`transport error: tcp connect error:
/// Connection refused`), which tonic keeps out of its top-level message.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// Queues a batch, logging when a full queue loses its oldest. During a
/// long outage that happens every tick, so only the 1st, 2nd, 4th, 8th...
/// drop is logged, each with the running total.
/// A random instance id: one per agent process (and a new one when the
/// old one was taken).
pub fn new_instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn enqueue(queue: &mut BatchQueue, batch: Arc<Batch>) {
    if let Some(seq) = queue.push(batch)
        && queue.dropped().is_power_of_two()
    {
        warn!(
            seq,
            dropped = queue.dropped(),
            "unacknowledged queue full; dropped the oldest batch"
        );
    }
}

/// The frame carrying `batch` on a stream where `defined[id]` marks the
/// series already defined; defines (and marks) the ones it is first to use.
pub fn batch_frame(series: &SeriesTable, batch: &Batch, defined: &mut Vec<bool>) -> AgentFrame {
    let mut defs = Vec::new();
    for point in &batch.points {
        let index = point.series_id as usize;
        if defined.len() <= index {
            defined.resize(index + 1, false);
        }
        if !defined[index] {
            defined[index] = true;
            if let Some(def) = series.def(point.series_id) {
                defs.push(def);
            }
        }
    }
    let mut batch = batch.clone();
    batch.series = defs;
    AgentFrame {
        frame: Some(AgentFrameKind::Batch(batch)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::transport::{MAX_RECEIVE_BYTES, MAX_SEND_BYTES};
    use stacktop_proto::v1::Point;

    fn uplink(url: &str) -> Uplink {
        let (_tx, rx) = mpsc::channel(1);
        Uplink::new(
            url.into(),
            Hello::default(),
            SeriesTable::new(),
            rx,
            16,
            CancellationToken::new(),
        )
    }

    #[test]
    fn the_uplink_dials_with_the_shared_client_defaults() {
        let transport = &uplink("http://127.0.0.1:7411").transport;
        assert_eq!(transport, &ClientConfig::new("http://127.0.0.1:7411"));
        assert_eq!(transport.max_send_bytes, MAX_SEND_BYTES);
        assert_eq!(transport.max_receive_bytes, MAX_RECEIVE_BYTES);
    }

    #[tokio::test]
    async fn an_unreachable_collector_ends_the_session_naming_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = uplink(&url).session().await.unwrap_err();
        assert!(
            matches!(
                err,
                UplinkError::Connect(TransportError::Unreachable { .. })
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach the collector at {url}: ")),
            "{err}"
        );
    }

    fn points(ids: &[u32]) -> Batch {
        Batch {
            seq: 1,
            points: ids
                .iter()
                .map(|&series_id| Point {
                    series_id,
                    value: 1.0,
                    timestamp_ms: 0,
                })
                .collect(),
            ..Batch::default()
        }
    }

    fn defs_of(frame: AgentFrame) -> Vec<u32> {
        match frame.frame {
            Some(AgentFrameKind::Batch(b)) => b.series.iter().map(|d| d.id).collect(),
            other => panic!("not a batch: {other:?}"),
        }
    }

    #[test]
    fn series_are_defined_once_per_stream() {
        let series = SeriesTable::new();
        let a = series.intern("a", &[]);
        let b = series.intern("b", &[]);
        let mut defined = Vec::new();
        assert_eq!(
            defs_of(batch_frame(&series, &points(&[a]), &mut defined)),
            [a]
        );
        assert_eq!(
            defs_of(batch_frame(&series, &points(&[a, b]), &mut defined)),
            [b]
        );
        assert!(defs_of(batch_frame(&series, &points(&[a, b]), &mut defined)).is_empty());
        // A new stream starts with nothing defined.
        let mut defined = Vec::new();
        assert_eq!(
            defs_of(batch_frame(&series, &points(&[b, a]), &mut defined)),
            [b, a]
        );
    }
}
