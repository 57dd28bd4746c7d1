//! What the collector's process tests share: processes started here and
//! killed by their own handle (never by name), a collector binary with its
//! config and data directory, real agents, and polling helpers.
//!
//! Each test file uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::{Alert, AlertsRequest, HistoryRequest, SnapshotRequest};
use tonic::transport::{Channel, Endpoint};

/// A process this test started; killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self { child }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where cargo put this workspace's binaries.
pub fn bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_stacktop-collector"))
        .parent()
        .unwrap()
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run the workspace's tests (cargo test --workspace)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The port an agent's TCP check probes: open is ok, closed is crit.
pub struct Target {
    pub port: u16,
    listener: Option<TcpListener>,
}

impl Target {
    pub fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self {
            port: listener.local_addr().unwrap().port(),
            listener: Some(listener),
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The fault: nothing listens any more.
    pub fn break_it(&mut self) {
        self.listener = None;
    }

    /// The repair.
    pub fn mend(&mut self) {
        self.listener = Some(TcpListener::bind(self.address()).unwrap());
    }
}

pub struct Collector {
    proc: Option<Proc>,
    pub port: u16,
    config: PathBuf,
    pub data: PathBuf,
    log: PathBuf,
}

impl Collector {
    pub fn start(dir: &Path, config: &str) -> Self {
        let config_path = dir.join("collector.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut c = Self {
            proc: None,
            port: free_port(),
            config: config_path,
            data: dir.join("data"),
            log: dir.join("collector.log"),
        };
        c.restart();
        c
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts (again) with the same listen address, config and data dir.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.proc = Some(Proc::spawn(
            Command::new(bin("stacktop-collector"))
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--config")
                .arg(&self.config)
                .arg("--data-dir")
                .arg(&self.data)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log),
        ));
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }
}

pub fn start_agent(dir: &Path, name: &str, role: &str, collector: &str, check: &str) -> Proc {
    let config = dir.join(format!("agent-{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\nroles = [\"{role}\"]\ncollectors = [\"{collector}\"]\n\
             interval = \"1s\"\n\n[[checks]]\nkind = \"tcp\"\nname = \"port\"\n\
             address = \"{check}\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("agent-{name}.log"))).unwrap();
    Proc::spawn(
        Command::new(bin("stacktop-agent"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// Polls `f` every 100 ms until it gives a value or `limit` passes.
pub async fn within<T>(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn channel(url: &str) -> Option<Channel> {
    Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()
}

pub async fn fleet_alerts(url: &str) -> Option<Vec<Alert>> {
    let mut client = FleetClient::new(channel(url).await?);
    let r = client.alerts(AlertsRequest::default()).await.ok()?;
    Some(r.into_inner().alerts)
}

pub async fn node_reported(url: &str, name: &str) -> Option<()> {
    let mut client = FleetClient::new(channel(url).await?);
    let snap = client.snapshot(SnapshotRequest::default()).await.ok()?;
    snap.into_inner()
        .nodes
        .iter()
        // A real result, not the "no result yet" of an announced check.
        .any(|n| {
            n.name == name
                && n.checks
                    .iter()
                    .any(|c| c.name == "port" && c.timestamp_ms > 0)
        })
        .then_some(())
}

/// The timestamps of every stored point of `node`'s total CPU series (not
/// the per-CPU ones), oldest first.
pub async fn cpu_points(url: &str, node: &str) -> Option<Vec<i64>> {
    series_points(url, node, "node_cpu_usage_ratio").await
}

/// The timestamps of `node`'s unlabelled `series` in `Fleet.History`,
/// sorted (duplicates kept, so a test can count them).
pub async fn series_points(url: &str, node: &str, series: &str) -> Option<Vec<i64>> {
    let mut client = FleetClient::new(channel(url).await?);
    let reply = client
        .history(HistoryRequest {
            node: node.into(),
            series: series.into(),
            labels: vec![],
            since_ms: 0,
        })
        .await
        .ok()?
        .into_inner();
    let mut ts: Vec<i64> = reply
        .series
        .into_iter()
        .filter(|s| s.labels.is_empty())
        .flat_map(|s| s.points)
        .map(|p| p.timestamp_ms)
        .collect();
    ts.sort_unstable();
    Some(ts)
}
