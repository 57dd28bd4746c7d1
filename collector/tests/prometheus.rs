//! The exports against the real receivers, from Debian's packages: a
//! collector on 127.0.0.1 fed by a test agent over gRPC, Prometheus
//! scraping its `/metrics` every second and receiving its remote_write,
//! and VictoriaMetrics receiving its remote_write. The test then asks
//! their HTTP APIs what arrived.
//!
//! Scraped and remote-written samples of the same series are told apart
//! by `job`: Prometheus adds `job="stacktop"` to what it scrapes, while
//! remote_write carries only the collector's labels, so `{job=""}` selects
//! those; and remote-written samples keep the agent's own timestamps,
//! which the test chose (whole seconds, in the past).
//!
//! Each server gets its own port and storage directory; every process is
//! killed by its own handle when the test ends. Without the server the
//! test is skipped, with a reason; with `STACKTOP_LAB=require` (CI) that
//! is a failure.

mod inproc;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use inproc::{Collector, LIVENESS, Proc, TestAgent, free_port, http, now_ms, query_escape};
use serde_json::Value;
use stacktop_collector::Config;
use stacktop_collector::export::remote_write::RemoteWriteConfig;
use stacktop_proto::Role;
use tokio::task::JoinHandle;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// The series the test agent sends, besides the load it checks.
const MOUNT: &str = "/var/lib/mysql";

/// A test agent that keeps sending until dropped: `node_load1` and a
/// filesystem series every 500 ms, stamped 30 s in the past (a time the
/// collector could not have made up) and remembered, so that each
/// remote-written sample can be matched exactly.
struct Feeder {
    task: JoinHandle<()>,
    sent: std::sync::Arc<std::sync::Mutex<Vec<(i64, f64)>>>,
}

impl Feeder {
    async fn start(collector: &Collector, node: &str, roles: &[Role]) -> Self {
        let mut agent = TestAgent::connect(collector, node, roles, 1_000).await;
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = sent.clone();
        let task = tokio::spawn(async move {
            // Stamps keep 30 s behind the clock, on whole half seconds.
            let first = (now_ms() / 1_000 - 30) * 1_000;
            for i in 0i64.. {
                let ts = first + i * 500;
                let value = 1.0 + (i % 8) as f64 * 0.125;
                agent
                    .send(
                        ts,
                        &[
                            ("node_load1", &[], value),
                            ("node_filesystem_used_bytes", &[("mount", MOUNT)], 4e9),
                        ],
                    )
                    .await;
                log.lock().unwrap().push((ts, value));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self { task, sent }
    }

    fn sent(&self) -> Vec<(i64, f64)> {
        self.sent.lock().unwrap().clone()
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// GET `path` from a server on 127.0.0.1:`port`, as JSON.
fn get_json(port: u16, path: &str) -> Option<Value> {
    let (status, _, body) = http(([127, 0, 0, 1], port).into(), "GET", path, &[])?;
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// The result of a Prometheus API instant query.
fn query(port: u16, promql: &str) -> Vec<Value> {
    let path = format!("/api/v1/query?query={}", query_escape(promql));
    get_json(port, &path)
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

/// A sample's `[seconds, "value"]` pair as (ms, value).
fn pair(v: &Value) -> (i64, f64) {
    let ts = (v[0].as_f64().unwrap() * 1_000.0).round() as i64;
    let value = v[1].as_str().unwrap().parse().unwrap();
    (ts, value)
}

/// A running Prometheus with its own storage, scraping `target` each
/// second and accepting remote_write.
struct Prometheus {
    _proc: Proc,
    port: u16,
}

impl Prometheus {
    async fn start(dir: &Path, port: u16, target: std::net::SocketAddr) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: stacktop\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let storage = dir.join("prometheus-data");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let proc = Proc::spawn(
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", storage.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .stdout(Stdio::null())
                .stderr(log),
        );
        inproc::within(LIVENESS, "prometheus ready", async || {
            let (status, _, _) = http(([127, 0, 0, 1], port).into(), "GET", "/-/ready", &[])?;
            (status == 200).then_some(())
        })
        .await;
        Self { _proc: proc, port }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_metrics_and_receives_remote_write() {
    if inproc::skip_without("prometheus", PROMETHEUS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = Collector::start(Config {
        remote_write: vec![RemoteWriteConfig {
            name: Some("prometheus".into()),
            ..RemoteWriteConfig::new(format!("http://127.0.0.1:{port}/api/v1/write"))
        }],
        ..Config::default()
    })
    .await;
    let prometheus = Prometheus::start(dir.path(), port, c.metrics).await;
    let feeder = Feeder::start(&c, "db1", &[Role::Db]).await;
    let instance = c.metrics.to_string();

    // Scraped: the agent's value with node, role and Prometheus' own job
    // and instance.
    let scraped = inproc::within(LIVENESS, "the scraped load in Prometheus", async || {
        let result = query(prometheus.port, r#"node_load1{node="db1",job="stacktop"}"#);
        result.into_iter().next()
    })
    .await;
    let metric = &scraped["metric"];
    assert_eq!(metric["role"], "db", "{scraped}");
    assert_eq!(metric["instance"], instance.as_str(), "{scraped}");
    let (_, value) = pair(&scraped["value"]);
    assert!(
        feeder.sent().iter().any(|&(_, v)| v == value),
        "scraped {value}, sent {:?}",
        feeder.sent()
    );
    let fs = query(
        prometheus.port,
        &format!(r#"node_filesystem_used_bytes{{node="db1",mount="{MOUNT}",job="stacktop"}}"#),
    );
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!(pair(&fs[0]["value"]).1, 4e9);
    // Health and the collector's own numbers come the same way.
    let up = query(prometheus.port, r#"stacktop_node_up{node="db1",role="db"}"#);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(pair(&up[0]["value"]).1, 1.0);

    // Remote-written: no job label, and every sample at the very time the
    // agent stamped it, with the value it sent.
    let raw = inproc::within(LIVENESS, "ten remote-written samples", async || {
        let result = query(prometheus.port, r#"node_load1{node="db1",job=""}[5m]"#);
        let series = result.into_iter().next()?;
        let values = series["values"].as_array()?.clone();
        (values.len() >= 10).then_some((series["metric"].clone(), values))
    })
    .await;
    let (metric, values) = raw;
    assert_eq!(metric["role"], "db", "{metric}");
    assert!(metric.get("instance").is_none(), "{metric}");
    let sent = feeder.sent();
    for v in &values {
        let (ts, value) = pair(v);
        assert!(
            sent.contains(&(ts, value)),
            "Prometheus holds ({ts}, {value}), which the agent never sent: {sent:?}"
        );
    }
    assert_eq!(values.len(), {
        let mut stamps: Vec<i64> = values.iter().map(|v| pair(v).0).collect();
        stamps.dedup();
        stamps.len()
    });

    // The collector says what it sent, and Prometheus scraped that too.
    let sent_total = inproc::within(LIVENESS, "remote_write counted on /metrics", async || {
        let result = query(
            prometheus.port,
            r#"stacktop_remote_write_sent_samples_total{destination="prometheus"}"#,
        );
        let n = pair(&result.first()?["value"]).1;
        (n >= 20.0).then_some(n)
    })
    .await;
    eprintln!(
        "remote_write sent {sent_total} samples; Prometheus holds {} of node_load1",
        values.len()
    );

    // The text format (0.0.4) parses with Prometheus' own tool.
    if Path::new(PROMTOOL).exists() {
        check_with_promtool(&c.scrape());
    }
    drop(feeder);
    c.stop().await;
}

/// `promtool check metrics` reads the exposition: a parse error fails
/// the test (lint advice about names is printed, not failed on).
fn check_with_promtool(text: &str) {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("promtool check metrics: {:?} {said}", out.status.code());
    assert!(!said.contains("error while linting"), "{said}");
    assert!(!said.contains("text format parsing error"), "{said}");
}

/// A running VictoriaMetrics with its own storage.
struct VictoriaMetrics {
    _proc: Proc,
    port: u16,
}

impl VictoriaMetrics {
    async fn start(dir: &Path, port: u16) -> Self {
        let storage = dir.join("vm-data");
        let log = std::fs::File::create(dir.join("victoria-metrics.log")).unwrap();
        let proc = Proc::spawn(
            Command::new(VICTORIA_METRICS)
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-storageDataPath={}", storage.display()))
                .arg("-retentionPeriod=1d")
                .stdout(Stdio::null())
                .stderr(log),
        );
        inproc::within(LIVENESS, "victoria-metrics ready", async || {
            let (status, _, _) = http(([127, 0, 0, 1], port).into(), "GET", "/health", &[])?;
            (status == 200).then_some(())
        })
        .await;
        Self { _proc: proc, port }
    }

    /// Every raw sample of the series matching `selector`, by series:
    /// (labels, [(ms, value)]).
    fn export(&self, selector: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
        let addr = ([127, 0, 0, 1], self.port).into();
        // Data becomes searchable after a flush; ask for one.
        let _ = http(addr, "GET", "/internal/force_flush", &[]);
        let path = format!("/api/v1/export?match[]={}", query_escape(selector));
        let Some((200, _, body)) = http(addr, "GET", &path, &[]) else {
            return Vec::new();
        };
        body.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|series| {
                let stamps = series["timestamps"].as_array().cloned().unwrap_or_default();
                let values = series["values"].as_array().cloned().unwrap_or_default();
                let samples = stamps
                    .iter()
                    .zip(&values)
                    .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
                    .collect();
                (series["metric"].clone(), samples)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_receives_remote_write() {
    if inproc::skip_without("victoria-metrics", VICTORIA_METRICS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vm = VictoriaMetrics::start(dir.path(), free_port()).await;
    let c = Collector::start(Config {
        remote_write: vec![RemoteWriteConfig {
            name: Some("vm".into()),
            ..RemoteWriteConfig::new(format!("http://127.0.0.1:{}/api/v1/write", vm.port))
        }],
        ..Config::default()
    })
    .await;
    let feeder = Feeder::start(&c, "web1", &[Role::Web, Role::App]).await;

    let (metric, samples) =
        inproc::within(LIVENESS, "ten samples in VictoriaMetrics", async || {
            let series = vm.export(r#"node_load1{node="web1"}"#).into_iter().next()?;
            (series.1.len() >= 10).then_some(series)
        })
        .await;
    assert_eq!(metric["__name__"], "node_load1", "{metric}");
    assert_eq!(metric["role"], "web,app", "{metric}");
    let sent = feeder.sent();
    for sample in &samples {
        assert!(
            sent.contains(sample),
            "VictoriaMetrics holds {sample:?}, which the agent never sent: {sent:?}"
        );
    }
    let fs = vm.export(&format!(r#"node_filesystem_used_bytes{{mount="{MOUNT}"}}"#));
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!(fs[0].0["node"], "web1");
    assert!(fs[0].1.iter().all(|&(_, v)| v == 4e9));

    let text = c.scrape();
    let sent_total = inproc::sample(
        &text,
        "stacktop_remote_write_sent_samples_total",
        r#"destination="vm""#,
    )
    .unwrap();
    assert!(sent_total >= 20.0, "{text}");
    drop(feeder);
    c.stop().await;
}
