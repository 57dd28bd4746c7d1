//! Checks against real sockets and the real /proc, without the lab: a tiny
//! HTTP server on 127.0.0.1:0, a bound and a closed port, this test's own
//! process, and a loopback listener the exposure check must not flag.

use std::time::Duration;

use stacktop_agent::checks::exposure::{ExposureProbe, default_allow};
use stacktop_agent::checks::http::HttpProbe;
use stacktop_agent::checks::http::HttpSpec;
use stacktop_agent::checks::process::ProcessProbe;
use stacktop_agent::checks::tcp::TcpProbe;
use stacktop_agent::checks::{Check, Probe, build_all, spawn_all};
use stacktop_agent::observe::Observation;
use stacktop_agent::{CancellationToken, Role};
use stacktop_proto::Health;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Serves every connection one canned HTTP response: `/health` answers
/// `status` with `body`, anything else 404.
async fn http_server(status: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let (status, body) = if request.starts_with("GET /health ") {
                    (status, body)
                } else {
                    ("404 Not Found", "no")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/health")
}

fn http_probe(url: String) -> HttpProbe {
    HttpProbe::from_spec(&HttpSpec {
        url,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn http_ok_and_failing_status() {
    let ok = http_probe(http_server("200 OK", "ok").await).run().await;
    assert_eq!(ok.status, Health::Ok, "{}", ok.message);
    assert!(ok.message.starts_with("200 OK in "), "{}", ok.message);

    let failing = http_probe(http_server("503 Service Unavailable", "db: down").await)
        .run()
        .await;
    assert_eq!(failing.status, Health::Crit);
    assert_eq!(failing.message, "HTTP 503 (expected 200-399): db: down");

    let body = HttpProbe::from_spec(&HttpSpec {
        url: http_server("200 OK", "degraded").await,
        body_contains: Some("ok".into()),
        ..Default::default()
    })
    .unwrap()
    .run()
    .await;
    assert_eq!(body.status, Health::Crit);
}

/// A port nothing listens on: bind, note the port, close.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn http_and_tcp_to_a_closed_port_say_connection_refused() {
    let addr = closed_port();
    let http = http_probe(format!("http://{addr}/health")).run().await;
    assert_eq!(
        (http.status, http.message.as_str()),
        (Health::Crit, "connection refused")
    );
    let tcp = TcpProbe::new(addr).run().await;
    assert_eq!(
        (tcp.status, tcp.message.as_str()),
        (Health::Crit, "connection refused")
    );
}

#[tokio::test]
async fn tcp_to_a_listener_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let out = TcpProbe::new(listener.local_addr().unwrap()).run().await;
    assert_eq!(out.status, Health::Ok, "{}", out.message);
    assert!(out.message.starts_with("connected in "), "{}", out.message);
}

#[test]
fn process_finds_this_test_and_not_a_made_up_name() {
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    let out = ProcessProbe::new(me.trim_end()).run();
    assert_eq!(out.status, Health::Ok, "{}", out.message);
    assert!(out.message.contains(&std::process::id().to_string()) || out.message.contains('…'));
    let none = ProcessProbe::new("no-such-daemon-xyz").run();
    assert_eq!(
        (none.status, none.message.as_str()),
        (Health::Crit, "no-such-daemon-xyz not running")
    );
}

#[test]
fn exposure_does_not_flag_a_loopback_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = ExposureProbe::new(default_allow(&[])).run();
    assert!(
        !out.message.contains(&format!(":{port} ")),
        "loopback port {port} flagged: {}",
        out.message
    );
    assert_ne!(out.status, Health::Crit, "{}", out.message);
}

#[tokio::test]
async fn checks_run_on_their_interval_and_stop_on_shutdown() {
    let url = http_server("200 OK", "ok").await;
    let check = Check {
        name: "app".into(),
        kind: "app",
        role: Role::App,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(50),
        probe: Probe::Http(http_probe(url)),
    };
    // A spec-built check goes through the same path (at the shortest
    // interval a spec may have).
    let spec: stacktop_agent::checks::CheckSpec = toml::from_str(
        "kind = \"process\"\nprocess-name = \"no-such-daemon-xyz\"\ninterval = \"200ms\"\n",
    )
    .unwrap();
    let mut checks = build_all(&[spec], &[Role::Web]).unwrap();
    checks.push(check);

    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    spawn_all(checks, &tx, &shutdown, &tracker);
    drop(tx);
    tracker.close();

    let mut seen = Vec::new();
    // Enough results for two runs of each, whatever order they finish in.
    while seen.len() < 8 {
        let Some(Observation::Check(result)) =
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
        else {
            continue;
        };
        seen.push(result);
    }
    let app: Vec<_> = seen.iter().filter(|r| r.name == "app").collect();
    let process: Vec<_> = seen
        .iter()
        .filter(|r| r.name == "process:no-such-daemon-xyz")
        .collect();
    assert!(app.len() >= 2 && process.len() >= 2, "{seen:?}");
    assert!(
        app.iter()
            .all(|r| r.status == Health::Ok as i32 && r.kind == "app")
    );
    assert!(process.iter().all(|r| r.status == Health::Crit as i32));
    assert!(seen.iter().all(|r| r.timestamp_ms > 0));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), tracker.wait())
        .await
        .expect("checks stop on shutdown");
}
