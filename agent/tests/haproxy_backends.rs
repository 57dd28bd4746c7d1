//! A dead HAProxy's backends are unknown, not unchanged: through the whole
//! agent (the haproxy check on a real Unix stats socket, the sampler, the
//! uplink) to a recording Ingest server on 127.0.0.1. While the socket
//! answers, batches carry the backend sample; once it is gone, the next
//! batch carries `backends_error` and no backends; when it answers again,
//! backends come back and the error is cleared. Every check result
//! carries its role and interval.

use std::path::Path;
use std::time::Duration;

use stacktop_agent::checks::haproxy::HaproxySpec;
use stacktop_agent::checks::{CheckSpec, Common, Spec};
use stacktop_agent::{CancellationToken, Config, Role};
use stacktop_proto::v1::agent_frame::Frame as AgentFrameKind;
use stacktop_proto::v1::collector_frame::Frame as CollectorFrameKind;
use stacktop_proto::v1::ingest_server::{Ingest, IngestServer};
use stacktop_proto::v1::{Ack, AgentFrame, Batch, CollectorFrame, Welcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

const SHOW_STAT: &str = include_str!("fixtures/haproxy_show_stat.csv");

/// Liveness bound on each wait; not a performance claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// Answers `show stat` on `path` with the fixture until aborted.
fn stats_socket(path: &Path) -> JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut command = [0u8; 10];
                if stream.read_exact(&mut command).await.is_ok() {
                    let _ = stream.write_all(SHOW_STAT.as_bytes()).await;
                }
            });
        }
    })
}

/// An Ingest server that welcomes, acks everything and hands each batch
/// to the test.
#[derive(Clone)]
struct Recorder(mpsc::Sender<Batch>);

#[tonic::async_trait]
impl Ingest for Recorder {
    type ConnectStream = ReceiverStream<Result<CollectorFrame, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentFrame>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let batches = self.0.clone();
        tokio::spawn(async move {
            let frame = |frame| CollectorFrame { frame: Some(frame) };
            let welcome = Welcome {
                resume_after_seq: 0,
                collector_version: "test".into(),
            };
            if tx
                .send(Ok(frame(CollectorFrameKind::Welcome(welcome))))
                .await
                .is_err()
            {
                return;
            }
            while let Ok(Some(AgentFrame { frame: Some(kind) })) = inbound.message().await {
                if let AgentFrameKind::Batch(batch) = kind {
                    let ack = frame(CollectorFrameKind::Ack(Ack { seq: batch.seq }));
                    if batches.send(batch).await.is_err() || tx.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The next batch for which `want` holds.
async fn next_batch(
    batches: &mut mpsc::Receiver<Batch>,
    what: &str,
    want: impl Fn(&Batch) -> bool,
) -> Batch {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let batch = batches.recv().await.expect("the agent stopped sending");
            if want(&batch) {
                return batch;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no batch with {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_haproxys_backends_are_unknown_until_it_answers_again() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let stats = stats_socket(&socket);

    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (batches_tx, mut batches) = mpsc::channel(256);
    let server = tonic::transport::Server::builder()
        .add_service(IngestServer::new(Recorder(batches_tx)))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            token.clone().cancelled_owned(),
        );
    tokio::spawn(server);

    let check = CheckSpec::Haproxy(Spec {
        common: Common {
            interval: Some(Duration::from_millis(200)),
            timeout: Some(Duration::from_millis(150)),
            ..Common::default()
        },
        settings: HaproxySpec {
            socket: Some(socket.display().to_string()),
            ..HaproxySpec::default()
        },
    });
    let config = Config {
        name: Some("lb1".into()),
        roles: vec![Role::Lb],
        collectors: vec![url],
        interval: Duration::from_millis(100),
        checks: Some(vec![check]),
        ..Config::default()
    };
    let agent = tokio::spawn(stacktop_agent::run(config, token.clone()));

    let batch = next_batch(&mut batches, "backends", |b| !b.backends.is_empty()).await;
    assert_eq!(batch.backends.len(), 3);
    assert_eq!(batch.backends_error, "");
    let result = next_batch(&mut batches, "the haproxy result", |b| !b.checks.is_empty()).await;
    let result = &result.checks[0];
    assert_eq!(result.name, "haproxy");
    assert_eq!((result.role, result.interval_ms), (Role::Lb as i32, 200));

    // HAProxy dies: its socket is gone.
    stats.abort();
    let _ = stats.await;
    std::fs::remove_file(&socket).unwrap();
    let batch = next_batch(&mut batches, "backends_error", |b| {
        !b.backends_error.is_empty()
    })
    .await;
    assert!(batch.backends.is_empty(), "{batch:?}");
    assert_eq!(
        batch.backends_error,
        format!("stats socket {}: not found", socket.display())
    );

    // HAProxy is back.
    let _stats = stats_socket(&socket);
    let batch = next_batch(&mut batches, "backends again", |b| !b.backends.is_empty()).await;
    assert_eq!(
        (batch.backends.len(), batch.backends_error.as_str()),
        (3, "")
    );

    token.cancel();
    tokio::time::timeout(PATIENCE, agent)
        .await
        .expect("the agent stops on shutdown")
        .unwrap()
        .unwrap();
}
