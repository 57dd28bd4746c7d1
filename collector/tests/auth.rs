//! The auth matrix over real gRPC on 127.0.0.1: a collector with TLS,
//! client certificates (`client-ca`) and agent/viewer/operator tokens, and
//! clients that should not get in. Certificates are made here with rcgen.
//!
//! Every refused party reports under a node name of its own, so "nothing
//! it sent was stored" is checked by asking the fleet for that name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{CertificateParams, Issuer, KeyPair};
use stacktop_collector::auth::certs::{DEFAULT_VALIDITY, ca_params, leaf_params};
use stacktop_collector::{CancellationToken, Config, serve};
use stacktop_proto::transport::{ClientConfig, ClientTls, Token};
use stacktop_proto::v1::{
    AckRequest, AgentFrame, Batch, Hello, NodeRequest, Point, SeriesDef, SnapshotRequest,
    WatchRequest, agent_frame, collector_frame,
};
use stacktop_proto::{Role, now_unix_ms};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const AGENT: &str = "agent-token-aaaaaaaaaaaaaaaa";
const VIEWER: &str = "viewer-token-vvvvvvvvvvvvvvvv";
const OPERATOR: &str = "operator-token-oooooooooooooo";
const WRONG: &str = "wrong-token-xxxxxxxxxxxxxxxxx";

/// Bound on anything that should happen promptly.
const LIVENESS: Duration = Duration::from_secs(20);

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `NAME.pem` and `NAME.key`, a leaf for `names` signed by
    /// `issuer`; `expired` makes one that ended last year.
    fn leaf(
        &self,
        file: &str,
        names: &[&str],
        client: bool,
        expired: bool,
        issuer: &Issuer<'_, KeyPair>,
    ) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params: CertificateParams = leaf_params(&names, client, DEFAULT_VALIDITY).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        self.write(&format!("{file}.pem"), &cert.pem());
        self.write(&format!("{file}.key"), &key.serialize_pem());
    }
}

fn issuer(site: &Site, file: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(DEFAULT_VALIDITY);
    let cert = params.self_signed(&key).unwrap();
    site.write(&format!("{file}.pem"), &cert.pem());
    Issuer::new(params, key)
}

/// The CA, the collector's certificate, and client certificates for the
/// good node, every refused one, an expired one and one from an unknown CA.
fn make_site() -> Site {
    let site = Site {
        dir: tempfile::tempdir().unwrap(),
    };
    let ca = issuer(&site, "ca");
    let other = issuer(&site, "other-ca");
    site.leaf("collector", &["localhost", "127.0.0.1"], false, false, &ca);
    for node in ["web1", "notoken1", "badtoken1", "viewer1"] {
        site.leaf(node, &[node], true, false, &ca);
    }
    site.leaf("old1", &["old1"], true, true, &ca);
    site.leaf("rogue1", &["rogue1"], true, false, &other);
    site.write("agent-tokens", &format!("# agents\n{AGENT}\n"));
    site.write("viewer-tokens", &format!("{VIEWER}\n"));
    site.write("operator-tokens", &format!("{OPERATOR}\n"));
    site
}

fn start(site: &Site) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        tls_cert: Some(site.path("collector.pem")),
        tls_key: Some(site.path("collector.key")),
        client_ca: Some(site.path("ca.pem")),
        ..Config::default()
    };
    config.auth.agent_tokens_file = Some(site.path("agent-tokens"));
    config.auth.viewer_tokens_file = Some(site.path("viewer-tokens"));
    config.auth.operator_tokens_file = Some(site.path("operator-tokens"));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        serve(listener, config, stop).await.unwrap();
    });
    (addr, shutdown, task)
}

/// A client of the collector at `addr`: https with the site's CA, unless
/// `plain`; `cert` names a `NAME.pem`/`NAME.key` pair; `token` is sent.
fn client(
    site: &Site,
    addr: SocketAddr,
    plain: bool,
    cert: Option<&str>,
    token: Option<&str>,
) -> ClientConfig {
    let key = |ext: &str| cert.map(|c| site.path(&format!("{c}.{ext}")));
    let (url, tls) = if plain {
        (format!("http://{addr}"), ClientTls::default())
    } else {
        (
            format!("https://{addr}"),
            ClientTls {
                ca_file: Some(site.path("ca.pem")),
                cert: key("pem"),
                key: key("key"),
            },
        )
    };
    ClientConfig::new(url)
        .with_connect_timeout(Duration::from_secs(5))
        .with_tls(tls)
        .with_token(token.map(|t| Token::new(t).unwrap()))
}

/// How a call ended: `Ok` or the refusal's code (a failed handshake or
/// connection counts as `Unavailable`).
type Outcome = Result<(), Code>;

fn hello(node: &str) -> AgentFrame {
    AgentFrame {
        frame: Some(agent_frame::Frame::Hello(Hello {
            node: node.into(),
            instance_id: format!("{node}-instance"),
            roles: vec![Role::Db as i32],
            roles_detected: false,
            labels: vec![],
            agent_version: "test".into(),
            interval_ms: 1000,
            checks: Vec::new(),
        })),
    }
}

fn batch() -> AgentFrame {
    AgentFrame {
        frame: Some(agent_frame::Frame::Batch(Batch {
            seq: 1,
            timestamp_ms: now_unix_ms(),
            series: vec![SeriesDef {
                id: 0,
                name: "cpu.usage_ratio".into(),
                ..Default::default()
            }],
            points: vec![Point {
                series_id: 0,
                value: 0.5,
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

/// Streams as `node`: Hello and one batch; `Ok` once the collector said
/// Welcome. The message of a refusal is returned too.
async fn report(config: &ClientConfig, node: &str) -> (Outcome, String) {
    let channel = match config.connect().await {
        Ok(channel) => channel,
        Err(err) => return (Err(Code::Unavailable), err.to_string()),
    };
    let (tx, rx) = mpsc::channel(4);
    tx.send(hello(node)).await.unwrap();
    tx.send(batch()).await.unwrap();
    let mut ingest = config.ingest(channel);
    let call = ingest.connect(ReceiverStream::new(rx));
    let answer = match tokio::time::timeout(LIVENESS, call).await {
        Ok(answer) => answer,
        Err(_) => panic!("{node}: no answer from the collector"),
    };
    let mut inbound = match answer {
        Ok(response) => response.into_inner(),
        Err(status) => return (Err(status.code()), status.message().to_string()),
    };
    match inbound.message().await {
        Ok(Some(frame)) => match frame.frame {
            Some(collector_frame::Frame::Welcome(_)) => {
                // Keep the stream open until the batch is acknowledged.
                let _ = tokio::time::timeout(LIVENESS, inbound.message()).await;
                drop(tx);
                (Ok(()), String::new())
            }
            other => panic!("{node}: expected Welcome, got {other:?}"),
        },
        Ok(None) => (Err(Code::Unavailable), "stream closed".into()),
        Err(status) => (Err(status.code()), status.message().to_string()),
    }
}

async fn snapshot(config: &ClientConfig) -> Result<Vec<String>, Code> {
    let channel = config.connect().await.map_err(|_| Code::Unavailable)?;
    let snapshot = config
        .fleet(channel)
        .snapshot(SnapshotRequest::default())
        .await
        .map_err(|s| s.code())?
        .into_inner();
    Ok(snapshot.nodes.into_iter().map(|n| n.name).collect())
}

async fn watch(config: &ClientConfig) -> Outcome {
    let channel = config.connect().await.map_err(|_| Code::Unavailable)?;
    let mut stream = config
        .fleet(channel)
        .watch(WatchRequest::default())
        .await
        .map_err(|s| s.code())?
        .into_inner();
    stream.message().await.map_err(|s| s.code())?;
    Ok(())
}

async fn ack(config: &ClientConfig) -> Outcome {
    let channel = config.connect().await.map_err(|_| Code::Unavailable)?;
    config
        .operator(channel)
        .ack(AckRequest {
            alert_id: "no-such-alert".into(),
            comment: String::new(),
            by: "test".into(),
        })
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_right_credentials_get_in() {
    let site = make_site();
    let (addr, shutdown, task) = start(&site);
    let viewer = client(&site, addr, false, None, Some(VIEWER));

    // The positive controls: each credential does what it is for.
    let (good, why) = report(
        &client(&site, addr, false, Some("web1"), Some(AGENT)),
        "web1",
    )
    .await;
    assert_eq!(
        good,
        Ok(()),
        "web1 with its certificate and an agent token: {why}"
    );
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = snapshot(&viewer).await.unwrap();
        if seen.iter().any(|n| n == "web1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.iter().any(|n| n == "web1"), "{seen:?}");
    assert_eq!(watch(&viewer).await, Ok(()));
    // An unknown alert is NOT_FOUND: the operator got past the gate.
    let operator = client(&site, addr, false, None, Some(OPERATOR));
    assert_eq!(ack(&operator).await, Err(Code::NotFound));
    assert!(snapshot(&operator).await.is_ok(), "operators may read");

    // The matrix: (what is tried, the node it reports as, the outcome, the
    // codes accepted as the right refusal).
    let mut cases: Vec<(&str, Option<&str>, Outcome, Vec<Code>)> = Vec::new();
    // A refused handshake has no gRPC status: the client sees the connection
    // fail or be cut (tonic: UNAVAILABLE, CANCELLED, UNKNOWN, or INTERNAL for a
    // broken HTTP/2 preface).
    let refused_handshake = vec![
        Code::Unavailable,
        Code::Cancelled,
        Code::Unknown,
        Code::Internal,
    ];

    let (o, _) = report(
        &client(&site, addr, false, Some("notoken1"), None),
        "notoken1",
    )
    .await;
    cases.push((
        "Ingest without a token",
        Some("notoken1"),
        o,
        vec![Code::Unauthenticated],
    ));

    let (o, _) = report(
        &client(&site, addr, false, Some("badtoken1"), Some(WRONG)),
        "badtoken1",
    )
    .await;
    cases.push((
        "Ingest with a wrong token",
        Some("badtoken1"),
        o,
        vec![Code::Unauthenticated],
    ));

    let (o, _) = report(
        &client(&site, addr, false, Some("viewer1"), Some(VIEWER)),
        "viewer1",
    )
    .await;
    cases.push((
        "Ingest with a viewer token",
        Some("viewer1"),
        o,
        vec![Code::PermissionDenied],
    ));

    let (o, _) = report(&client(&site, addr, false, None, Some(AGENT)), "nocert1").await;
    cases.push((
        "Ingest with an agent token, no client certificate",
        Some("nocert1"),
        o,
        vec![Code::Unauthenticated],
    ));

    let (o, why) = report(
        &client(&site, addr, false, Some("web1"), Some(AGENT)),
        "web2",
    )
    .await;
    assert!(
        why.contains("\"web1\"") && why.contains("\"web2\""),
        "the refusal names both: {why}"
    );
    cases.push((
        "a certificate for web1 reporting as web2",
        Some("web2"),
        o,
        vec![Code::PermissionDenied],
    ));

    let (o, _) = report(
        &client(&site, addr, false, Some("rogue1"), Some(AGENT)),
        "rogue1",
    )
    .await;
    cases.push((
        "a client certificate from an unknown CA",
        Some("rogue1"),
        o,
        refused_handshake.clone(),
    ));

    let (o, _) = report(
        &client(&site, addr, false, Some("old1"), Some(AGENT)),
        "old1",
    )
    .await;
    cases.push((
        "an expired client certificate",
        Some("old1"),
        o,
        refused_handshake.clone(),
    ));

    let (o, _) = report(&client(&site, addr, true, None, Some(AGENT)), "plain1").await;
    cases.push((
        "a plain-text agent against the TLS collector",
        Some("plain1"),
        o,
        refused_handshake.clone(),
    ));

    let o = snapshot(&client(&site, addr, true, None, Some(VIEWER)))
        .await
        .map(|_| ());
    cases.push((
        "a plain-text dashboard against the TLS collector",
        None,
        o,
        refused_handshake.clone(),
    ));

    let o = snapshot(&client(&site, addr, false, None, None))
        .await
        .map(|_| ());
    cases.push((
        "Fleet.Snapshot without a token",
        None,
        o,
        vec![Code::Unauthenticated],
    ));

    let o = snapshot(&client(&site, addr, false, None, Some(WRONG)))
        .await
        .map(|_| ());
    cases.push((
        "Fleet.Snapshot with a wrong token",
        None,
        o,
        vec![Code::Unauthenticated],
    ));

    let o = watch(&client(&site, addr, false, None, Some(AGENT))).await;
    cases.push((
        "an agent token calling Fleet.Watch",
        None,
        o,
        vec![Code::PermissionDenied],
    ));

    let o = ack(&viewer).await;
    cases.push((
        "a viewer token calling Operator.Ack",
        None,
        o,
        vec![Code::PermissionDenied],
    ));

    let o = ack(&client(&site, addr, false, None, None)).await;
    cases.push((
        "Operator.Ack without a token",
        None,
        o,
        vec![Code::Unauthenticated],
    ));

    let o = ack(&client(&site, addr, false, None, Some(AGENT))).await;
    cases.push((
        "an agent token calling Operator.Ack",
        None,
        o,
        vec![Code::PermissionDenied],
    ));

    let mut refused = 0;
    for (what, _, outcome, codes) in &cases {
        match outcome {
            Err(code) if codes.contains(code) => refused += 1,
            other => panic!("{what}: {other:?}, expected one of {codes:?}"),
        }
    }
    println!("{} cases tried, {refused} refused", cases.len());
    assert_eq!(refused, cases.len());

    // Nothing a refused party sent is in the fleet, or has a history.
    let nodes = snapshot(&viewer).await.unwrap();
    assert_eq!(nodes, ["web1"], "only web1 may be known");
    let channel = viewer.connect().await.unwrap();
    let mut fleet = viewer.fleet(channel);
    for (what, node, _, _) in &cases {
        if let Some(node) = node {
            let code = fleet
                .node(NodeRequest {
                    name: node.to_string(),
                })
                .await
                .map(|_| ())
                .unwrap_err()
                .code();
            assert_eq!(code, Code::NotFound, "{what}: {node} must be unknown");
        }
    }
    shutdown.cancel();
    tokio::time::timeout(LIVENESS, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections() {
    let site = make_site();
    let (addr, shutdown, task) = start(&site);
    let viewer = client(&site, addr, false, None, Some(VIEWER));
    let channel = viewer.connect().await.unwrap();
    let mut old = viewer.fleet(channel);
    old.snapshot(SnapshotRequest::default()).await.unwrap();

    // A new CA and a collector certificate from it, written over the old
    // files: new connections trust only the new CA, the old one keeps
    // working.
    let new_ca = issuer(&site, "new-ca");
    let fresh = Site {
        dir: tempfile::tempdir().unwrap(),
    };
    fresh.leaf(
        "collector",
        &["localhost", "127.0.0.1"],
        false,
        false,
        &new_ca,
    );
    std::fs::copy(fresh.path("collector.pem"), site.path("collector.pem")).unwrap();
    std::fs::copy(fresh.path("collector.key"), site.path("collector.key")).unwrap();
    let with_new_ca = |ca: &Path| {
        let mut config = viewer.clone();
        config.tls.ca_file = Some(ca.to_path_buf());
        config
    };
    let trusting_new = with_new_ca(&site.path("new-ca.pem"));
    let mut picked_up = false;
    for _ in 0..100 {
        if snapshot(&trusting_new).await.is_ok() {
            picked_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the rotated certificate was never served");
    assert!(
        snapshot(&with_new_ca(&site.path("ca.pem"))).await.is_err(),
        "the old certificate is no longer served"
    );
    old.snapshot(SnapshotRequest::default())
        .await
        .expect("a connection made before the rotation keeps working");
    shutdown.cancel();
    tokio::time::timeout(LIVENESS, task).await.unwrap().unwrap();
}
