//! The uplink against a real (tiny) tonic Ingest server on 127.0.0.1: the
//! handshake, series definitions, seq order, and resending after the
//! collector drops the stream. Only liveness has timeouts, and generous
//! ones; nothing asserts how fast anything is.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stacktop_agent::{CancellationToken, Config, Role};
use stacktop_proto::v1::agent_frame::Frame as AgentFrameKind;
use stacktop_proto::v1::collector_frame::Frame as CollectorFrameKind;
use stacktop_proto::v1::ingest_server::{Ingest, IngestServer};
use stacktop_proto::v1::{Ack, AgentFrame, Batch, CollectorFrame, Hello, Welcome};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// Batches a stream must carry before the server reacts.
const BATCHES_PER_STREAM: usize = 4;

/// The `resume_after_seq` the server answers the second stream with.
const RESUME_AFTER: u64 = 2;

/// A collector stand-in that records every frame, per stream, and plays a
/// script: stream 0 gets no acks and is dropped after a few batches;
/// later streams resume after [`RESUME_AFTER`] and are acknowledged.
/// The first `refuse` connects are refused with ALREADY_EXISTS.
#[derive(Clone, Default)]
struct Recorder {
    streams: Arc<Mutex<Vec<Vec<AgentFrame>>>>,
    refused: Arc<Mutex<u32>>,
    refuse: u32,
    /// When set, the first stream is told to resume after this seq, and
    /// later streams after 0.
    resume_first: Option<u64>,
    done: Arc<Notify>,
}

#[tonic::async_trait]
impl Ingest for Recorder {
    type ConnectStream = ReceiverStream<Result<CollectorFrame, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentFrame>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        {
            let mut refused = self.refused.lock().unwrap();
            if *refused < self.refuse {
                *refused += 1;
                return Err(Status::already_exists("node \"test-node\" is connected"));
            }
        }
        let mut inbound = request.into_inner();
        let index = {
            let mut streams = self.streams.lock().unwrap();
            streams.push(Vec::new());
            streams.len() - 1
        };
        let (tx, rx) = mpsc::channel(64);
        let streams = Arc::clone(&self.streams);
        let done = Arc::clone(&self.done);
        let resume_first = self.resume_first;
        tokio::spawn(async move {
            let record = |frame: AgentFrame| streams.lock().unwrap()[index].push(frame);
            match inbound.message().await {
                Ok(Some(hello)) => record(hello),
                _ => return,
            }
            let resume_after_seq = match (resume_first, index) {
                (Some(first), 0) => first,
                (Some(_), _) => 0,
                (None, 0) => 0,
                (None, _) => RESUME_AFTER,
            };
            let welcome = CollectorFrame {
                frame: Some(CollectorFrameKind::Welcome(Welcome {
                    resume_after_seq,
                    collector_version: "test".into(),
                })),
            };
            if tx.send(Ok(welcome)).await.is_err() {
                return;
            }
            let mut batches = 0;
            while let Ok(Some(frame)) = inbound.message().await {
                let seq = match &frame.frame {
                    Some(AgentFrameKind::Batch(batch)) => Some(batch.seq),
                    _ => None,
                };
                record(frame);
                let Some(seq) = seq else { continue };
                batches += 1;
                if index == 0 {
                    if batches == BATCHES_PER_STREAM {
                        // Drop the stream without acking anything.
                        return;
                    }
                    continue;
                }
                let ack = CollectorFrame {
                    frame: Some(CollectorFrameKind::Ack(Ack { seq })),
                };
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
                if batches == BATCHES_PER_STREAM {
                    done.notify_one();
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Serves `recorder` on an ephemeral 127.0.0.1 port until `stop`.
async fn start_collector(recorder: Recorder, stop: CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IngestServer::new(recorder))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned()),
    );
    format!("http://{addr}")
}

fn config(collector: String) -> Config {
    Config {
        name: Some("test-node".into()),
        roles: vec![Role::Web, Role::Db],
        labels: [("dc".to_string(), "test".to_string())].into(),
        collectors: vec![collector],
        interval: Duration::from_millis(100),
        // No checks: this test is about the stream, not the probes.
        checks: Some(Vec::new()),
        ..Config::default()
    }
}

/// Runs an agent against `recorder` until the recorder says it is done,
/// then shuts both down and returns the recorded streams.
async fn run_agent_against(recorder: Recorder) -> Vec<Vec<AgentFrame>> {
    let stop_server = CancellationToken::new();
    let url = start_collector(recorder.clone(), stop_server.clone()).await;
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(stacktop_agent::run(config(url), shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(60), recorder.done.notified())
        .await
        .expect("the agent never completed the script");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("the agent did not stop after shutdown")
        .unwrap()
        .unwrap();
    stop_server.cancel();
    recorder.streams.lock().unwrap().clone()
}

fn hello(stream: &[AgentFrame]) -> &Hello {
    match &stream.first().expect("an empty stream").frame {
        Some(AgentFrameKind::Hello(hello)) => hello,
        other => panic!("first frame is not Hello: {other:?}"),
    }
}

fn batches(stream: &[AgentFrame]) -> Vec<&Batch> {
    stream[1..]
        .iter()
        .map(|frame| match &frame.frame {
            Some(AgentFrameKind::Batch(batch)) => batch,
            other => panic!("a frame after Hello is not a Batch: {other:?}"),
        })
        .collect()
}

/// Every point's series is defined on this stream, by an earlier batch or
/// the same one, and no series is defined twice.
fn assert_defs_precede_points(stream: &[AgentFrame]) {
    let mut defined = HashSet::new();
    for batch in batches(stream) {
        for def in &batch.series {
            assert!(defined.insert(def.id), "series {} defined twice", def.id);
        }
        for point in &batch.points {
            assert!(
                defined.contains(&point.series_id),
                "batch {} uses series {} before defining it",
                batch.seq,
                point.series_id
            );
        }
    }
}

fn assert_seqs_increase(stream: &[AgentFrame]) {
    let seqs: Vec<u64> = batches(stream).iter().map(|b| b.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs not increasing: {seqs:?}"
    );
}

#[tokio::test]
async fn uplink_speaks_the_protocol_and_resends_after_a_dropped_stream() {
    let recorder = Recorder::default();
    let streams = run_agent_against(recorder).await;
    assert!(
        streams.len() >= 2,
        "expected a reconnect, got {} streams",
        streams.len()
    );

    let first = hello(&streams[0]);
    assert_eq!(first.node, "test-node");
    assert_eq!(first.roles, vec![Role::Web as i32, Role::Db as i32]);
    assert_eq!(first.interval_ms, 100);
    assert_eq!(first.agent_version, stacktop_proto::VERSION);
    assert_eq!(stacktop_proto::label(&first.labels, "dc"), Some("test"));
    assert!(!first.instance_id.is_empty());
    for stream in &streams {
        // One instance id for the whole process, across reconnects.
        assert_eq!(hello(stream).instance_id, first.instance_id);
        assert_defs_precede_points(stream);
        assert_seqs_increase(stream);
    }

    let dropped = batches(&streams[0]);
    assert_eq!(dropped[0].seq, 1, "seqs start at 1");
    assert!(dropped.len() >= BATCHES_PER_STREAM);

    // Nothing was acked on stream 0, and Welcome said the collector holds
    // everything up to RESUME_AFTER: the resend starts right after it.
    let resent = batches(&streams[1]);
    assert_eq!(resent[0].seq, RESUME_AFTER + 1);
    // The new stream defines its series again.
    assert!(
        !resent[0].series.is_empty(),
        "series not redefined on the new stream"
    );
    let names: HashSet<&str> = resent
        .iter()
        .flat_map(|b| b.series.iter().map(|d| d.name.as_str()))
        .collect();
    assert!(names.contains("node_memory_used_bytes"), "{names:?}");
}

#[tokio::test]
async fn refused_agent_keeps_retrying_until_accepted() {
    let recorder = Recorder {
        refuse: 2,
        ..Recorder::default()
    };
    let streams = run_agent_against(recorder.clone()).await;
    assert_eq!(*recorder.refused.lock().unwrap(), 2);
    assert!(streams.len() >= 2);
}

#[tokio::test]
async fn a_resume_point_the_agent_never_reached_makes_it_a_new_instance() {
    // Someone streamed under this agent's instance id up to seq 2^40: the
    // agent must not carry on (every batch would be a "duplicate").
    let recorder = Recorder {
        resume_first: Some(1 << 40),
        ..Recorder::default()
    };
    let streams = run_agent_against(recorder).await;
    assert!(streams.len() >= 2, "no second stream: {streams:?}");
    let first = hello(&streams[0]).instance_id.clone();
    let last = streams.last().unwrap();
    assert_ne!(hello(last).instance_id, first, "the same instance id again");
    assert_eq!(
        batches(&streams[0]).len(),
        0,
        "nothing sent on the poisoned stream"
    );
    assert!(batches(last).len() >= BATCHES_PER_STREAM);
}
