//! Alerts end to end, through the real path: a `stacktop-collector`
//! process with a config file and a data directory, a real `stacktop-agent`
//! whose TCP check the test breaks and mends (by closing and reopening the
//! port it probes), and real receivers: Prometheus Alertmanager from
//! Debian's package, a webhook server that checks the signature, a command
//! that keeps its stdin.
//!
//! Everything listens on 127.0.0.1; every process is started here and
//! killed by its own handle when the test ends, pass or fail.

mod common;

use common::{
    Collector, Proc, Target, channel, fleet_alerts, free_port, node_reported, start_agent, within,
};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stacktop_proto::v1::operator_client::OperatorClient;
use stacktop_proto::v1::{AckRequest, Alert, AlertState};

fn find<'a>(alerts: &'a [Alert], rule: &str, node: &str) -> Option<&'a Alert> {
    alerts.iter().find(|a| a.rule == rule && a.node == node)
}

/// A plain HTTP/1.0 exchange (Alertmanager's API, on loopback).
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Whether a test that needs `what` may skip here.
fn skip_without(what: &str, path: &str) -> bool {
    if Path::new(path).exists() {
        return false;
    }
    if std::env::var("STACKTOP_LAB").as_deref() == Ok("require") {
        panic!("{what} ({path}) is required (STACKTOP_LAB=require) but not installed");
    }
    eprintln!("skipped: {what} is not installed ({path}); `.ci/run` installs it");
    true
}

/// A running Alertmanager with its own storage, on 127.0.0.1.
struct Alertmanager {
    _proc: Proc,
    port: u16,
}

impl Alertmanager {
    const BIN: &str = "/usr/bin/prometheus-alertmanager";

    async fn start(dir: &Path) -> Self {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let storage = dir.join("alertmanager");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let proc = Proc::spawn(
            Command::new(Self::BIN)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", storage.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // No gossip: nothing but this port is opened.
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log),
        );
        within(Duration::from_secs(30), "alertmanager ready", async || {
            (http(port, "GET", "/-/ready")?.0 == 200).then_some(())
        })
        .await;
        Self { _proc: proc, port }
    }

    /// Its active alerts.
    fn alerts(&self) -> Vec<serde_json::Value> {
        let Some((200, body)) = http(self.port, "GET", "/api/v2/alerts") else {
            return Vec::new();
        };
        serde_json::from_str(&body).unwrap_or_default()
    }
}

fn label<'a>(alert: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    alert["labels"][name].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_gets_the_alert_and_its_resolution_across_a_sigkill() {
    if skip_without("prometheus-alertmanager", Alertmanager::BIN) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(dir.path()).await;
    // The command line and config of the issue, as written there.
    let mut collector = Collector::start(
        dir.path(),
        &format!(
            "[[notify]]\nkind = \"alertmanager\"  \nurl = \"http://127.0.0.1:{}\"\n\n\
             [[rules]]\nname = \"check-failed\"  \nfor = \"2s\"\n",
            am.port
        ),
    );
    let mut target = Target::new();
    let _agent = start_agent(dir.path(), "db1", "db", &collector.url(), &target.address());
    let url = collector.url();
    within(
        Duration::from_secs(30),
        "db1 reports its check",
        async || node_reported(&url, "db1").await,
    )
    .await;

    // The fault; `for` is 2 s: Alertmanager must have it within 2 + 5 s.
    target.break_it();
    let fault = Instant::now();
    let posted = within(
        Duration::from_secs(7),
        "the alert in Alertmanager",
        async || {
            am.alerts()
                .into_iter()
                .find(|a| label(a, "alertname") == Some("check-failed"))
        },
    )
    .await;
    let to_alertmanager = fault.elapsed();
    assert_eq!(label(&posted, "node"), Some("db1"), "{posted}");
    assert_eq!(label(&posted, "severity"), Some("critical"), "{posted}");
    assert_eq!(label(&posted, "check"), Some("port"), "{posted}");
    assert_eq!(label(&posted, "role"), Some("db"), "{posted}");
    assert!(
        posted["generatorURL"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{posted}"
    );
    let starts_at = posted["startsAt"].as_str().unwrap().to_string();

    // An operator acknowledges it.
    let alerts = fleet_alerts(&url).await.unwrap();
    let before = find(&alerts, "check-failed", "db1").unwrap().clone();
    assert_eq!(before.state(), AlertState::Firing);
    let mut operator = OperatorClient::new(channel(&url).await.unwrap());
    let acked = operator
        .ack(AckRequest {
            alert_id: before.id.clone(),
            comment: "replacing the disk".into(),
            by: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(acked.acknowledged);

    // A crash while it fires, and a restart on the same data.
    tokio::time::sleep(Duration::from_millis(600)).await;
    collector.kill();
    collector.restart();
    let after = within(
        Duration::from_secs(20),
        "the alert after the restart",
        async || find(&fleet_alerts(&url).await?, "check-failed", "db1").cloned(),
    )
    .await;
    assert_eq!(after.state(), AlertState::Firing, "{after:?}");
    assert_eq!(after.id, before.id);
    assert_eq!(after.started_ms, before.started_ms, "same start");
    assert_eq!(after.fired_ms, before.fired_ms, "same firing time");
    assert!(after.acknowledged, "the ack held: {after:?}");
    assert_eq!(after.acknowledged_by, "alice");
    assert_eq!(after.ack_comment, "replacing the disk");
    // Still failing: the node reports again and the alert stays, with the
    // same start in Alertmanager (no second start).
    within(Duration::from_secs(20), "db1 reports again", async || {
        node_reported(&url, "db1").await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let firing: Vec<_> = am
        .alerts()
        .into_iter()
        .filter(|a| label(a, "alertname") == Some("check-failed"))
        .collect();
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["startsAt"].as_str(), Some(starts_at.as_str()));
    let again = find(&fleet_alerts(&url).await.unwrap(), "check-failed", "db1")
        .cloned()
        .unwrap();
    assert_eq!(again.state(), AlertState::Firing);
    assert_eq!(again.fired_ms, before.fired_ms);

    // The repair reaches Alertmanager as a resolution.
    target.mend();
    let mended = Instant::now();
    within(
        Duration::from_secs(30),
        "the resolution in Alertmanager",
        async || {
            am.alerts()
                .iter()
                .all(|a| label(a, "alertname") != Some("check-failed"))
                .then_some(())
        },
    )
    .await;
    let resolution = mended.elapsed();
    let resolved = find(&fleet_alerts(&url).await.unwrap(), "check-failed", "db1")
        .cloned()
        .unwrap();
    assert_eq!(resolved.state(), AlertState::Resolved);
    let log = collector.log();
    assert!(!log.contains("notification failed"), "{log}");
    eprintln!(
        "alertmanager: fault -> alert in Alertmanager {:.1} s (for = 2 s); \
         repair -> resolved there {:.1} s (keep-firing-for = 10 s)",
        to_alertmanager.as_secs_f64(),
        resolution.as_secs_f64()
    );
}

/// One HTTP request as the webhook server received it.
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

/// A webhook receiver on 127.0.0.1: every request goes to the channel and
/// is answered 200.
fn webhook_server() -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = BTreeMap::new();
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let length = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx
                .send(Received {
                    headers,
                    body,
                    at: Instant::now(),
                })
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

/// The next notification about rule `rule` the webhook received, within
/// `limit` (the one-node web tier's `tier-down` comes too).
fn next_hook(rx: &mpsc::Receiver<Received>, rule: &str, limit: Duration) -> Received {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {rule} webhook notification within {limit:?}: {e}"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        if body["rule"] == rule {
            return r;
        }
    }
}

/// The JSON documents the exec sink's command wrote, oldest first.
fn exec_outputs(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_exec_gets_the_alert_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_port, hooks) = webhook_server();
    let secret = "s3cret-for-the-test";
    std::fs::write(dir.path().join("secret"), format!("{secret}\n")).unwrap();
    let exec_dir = dir.path().join("exec");
    std::fs::create_dir(&exec_dir).unwrap();
    // Each run writes its stdin to a file named by the time it started.
    let collector = Collector::start(
        dir.path(),
        &format!(
            "[[rules]]\nname = \"check-failed\"\nfor = \"1s\"\nkeep-firing-for = \"2s\"\n\n\
             [[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
             secret-file = \"{}\"\n\n\
             [[notify]]\nkind = \"exec\"\ncommand = [\"sh\", \"-c\", \
             \"cat > \\\"$0/$(date +%s%N).json\\\"\", \"{}\"]\ntimeout = \"5s\"\n",
            dir.path().join("secret").display(),
            exec_dir.display()
        ),
    );
    let mut target = Target::new();
    let _agent = start_agent(
        dir.path(),
        "web1",
        "web",
        &collector.url(),
        &target.address(),
    );
    let url = collector.url();
    within(
        Duration::from_secs(30),
        "web1 reports its check",
        async || node_reported(&url, "web1").await,
    )
    .await;

    target.break_it();
    let fault = Instant::now();
    let hook = next_hook(&hooks, "check-failed", Duration::from_secs(20));
    let to_webhook = hook.at - fault;
    let expected = format!(
        "sha256={}",
        hex::encode({
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&hook.body);
            mac.finalize().into_bytes()
        })
    );
    assert_eq!(
        hook.headers.get("x-stacktop-signature"),
        Some(&expected),
        "signed with the trimmed secret"
    );
    assert_eq!(
        hook.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let firing: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(firing["status"], "firing", "{firing}");
    assert_eq!(firing["rule"], "check-failed");
    assert_eq!(firing["node"], "web1");
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["labels"]["check"], "port");
    assert!(
        firing["summary"].as_str().unwrap().contains("web1"),
        "{firing}"
    );

    let from_exec = within(Duration::from_secs(20), "the exec sink's run", async || {
        exec_outputs(&exec_dir)
            .into_iter()
            .find(|v| v["rule"] == "check-failed")
    })
    .await;
    let to_exec = fault.elapsed();
    assert_eq!(from_exec, firing, "the command got the alert on stdin");

    target.mend();
    let resolved = next_hook(&hooks, "check-failed", Duration::from_secs(30));
    let resolved: serde_json::Value = serde_json::from_slice(&resolved.body).unwrap();
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["id"], firing["id"]);
    assert!(resolved["resolved_unix_ms"].as_i64().unwrap() > 0);
    within(
        Duration::from_secs(20),
        "the exec sink's resolution",
        async || {
            exec_outputs(&exec_dir)
                .into_iter()
                .find(|v| v["rule"] == "check-failed" && v["status"] == "resolved")
        },
    )
    .await;
    eprintln!(
        "web alert, for = 1 s, group-wait 3 s: fault -> webhook {:.1} s, fault -> exec done {:.1} s",
        to_webhook.as_secs_f64(),
        to_exec.as_secs_f64()
    );
}
