//! The real stack, seen through the collector's API: `lab/up` stands up
//! HAProxy, three Nginx + app servers, a MariaDB primary and replica and a
//! DNS server on loopback addresses, with one real `stacktop-agent` per
//! server streaming to one real `stacktop-collector`. The test injects
//! traffic and faults with `lab/traffic` and `lab/fault` and checks what the
//! collector reports, then that `lab/down` leaves no process behind.
//!
//! It needs nginx, haproxy, mariadb and dnsmasq. With `STACKTOP_LAB=require`
//! (CI) `lab/up` installs them when missing (as root) and any failure to
//! stand the lab up fails the test. Otherwise the test runs when they are
//! installed and skips with a printed reason when they are not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::{
    Alert, AlertState, AlertsRequest, FleetSnapshot, HistoryRequest, NodeState, SnapshotRequest,
    Traffic,
};
use stacktop_proto::{Health, Role};

/// Liveness bound for every wait. Faults are expected to show within 10 s;
/// the observed delay is printed, and the bound only catches "never".
const PATIENCE: Duration = Duration::from_secs(45);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where `cargo test` put this workspace's binaries (the agent's too: the
/// whole workspace is built before any test runs).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_stacktop-collector"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Why the lab cannot run here, or `None` when it can.
fn missing_servers() -> Option<String> {
    let wanted = [
        ("nginx", &["/usr/sbin/nginx"][..]),
        ("haproxy", &["/usr/sbin/haproxy"][..]),
        ("mariadb", &["/usr/sbin/mariadbd", "/usr/sbin/mysqld"][..]),
        ("dnsmasq", &["/usr/sbin/dnsmasq"][..]),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, paths)| !paths.iter().any(|p| Path::new(p).exists()))
        .map(|(name, _)| *name)
        .collect();
    (!missing.is_empty()).then(|| format!("not installed: {}", missing.join(", ")))
}

/// A running lab; `lab/down` runs when it is dropped, even on a failed
/// assertion.
struct Lab {
    state: tempfile::TempDir,
    dir: PathBuf,
    collector: String,
    down: bool,
}

impl Lab {
    /// Starts the lab, its collector with `collector_config`.
    fn up(collector_config: &Path) -> Self {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(repo_root().join("lab/up"))
            .env("STACKTOP_LAB_COLLECTOR_CONFIG", collector_config)
            .env("STACKTOP_LAB_STATE", state.path().join("lab.state"))
            .env("STACKTOP_BIN_DIR", bin_dir())
            .output()
            .expect("run lab/up");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let state_text =
            std::fs::read_to_string(state.path().join("lab.state")).unwrap_or_default();
        let dir = state_text
            .lines()
            .find_map(|l| l.strip_prefix("LAB="))
            .map(PathBuf::from);
        let mut lab = Lab {
            state,
            dir: dir.clone().unwrap_or_default(),
            collector: String::new(),
            down: dir.is_none(),
        };
        assert!(
            out.status.success(),
            "lab/up failed ({}):\n{stderr}\n{stdout}",
            out.status
        );
        lab.collector = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("STACKTOP_COLLECTOR="))
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| panic!("lab/up's last line names no collector:\n{stdout}"))
            .to_string();
        lab
    }

    fn script(&self, name: &str, args: &[&str]) -> String {
        let out = Command::new(repo_root().join("lab").join(name))
            .args(args)
            .env("STACKTOP_LAB_STATE", self.state.path().join("lab.state"))
            .output()
            .unwrap_or_else(|e| panic!("run lab/{name}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "lab/{name} {args:?} failed:\n{text}");
        text
    }

    fn fault(&self, action: &str, arg: Option<&str>) {
        let mut args = vec![action];
        args.extend(arg);
        eprintln!("lab/fault {}", args.join(" "));
        self.script("fault", &args);
    }

    /// The PIDs the lab recorded for every process it started.
    fn recorded_pids(&self) -> Vec<(String, u32, String)> {
        let mut pids = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("run")) else {
            return pids;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = name.strip_suffix(".pid") else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut words = text.split_whitespace();
            if let (Some(pid), Some(start)) = (words.next(), words.next())
                && let Ok(pid) = pid.parse()
            {
                pids.push((name.to_string(), pid, start.to_string()));
            }
        }
        pids
    }

    fn down(&mut self) -> String {
        self.down = true;
        self.script("down", &[])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let _ = Command::new(repo_root().join("lab/down"))
                .env("STACKTOP_LAB_STATE", self.state.path().join("lab.state"))
                .status();
        }
    }
}

/// The start time (field 22 of /proc/PID/stat) of a live, non-zombie PID.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (fields.first() != Some(&"Z")).then(|| fields.get(19).map(|s| s.to_string()))?
}

async fn snapshot(url: &str) -> Option<FleetSnapshot> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    let reply = FleetClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .snapshot(SnapshotRequest {
            include_latest: true,
        })
        .await
        .ok()?;
    Some(reply.into_inner())
}

/// The collector's web/LB cross-check in `snap`.
fn traffic(snap: &FleetSnapshot) -> Traffic {
    snap.totals
        .as_ref()
        .and_then(|t| t.traffic)
        .unwrap_or_default()
}

/// `(healthy, total)` of the tier of `role`.
fn tier(snap: &FleetSnapshot, role: Role) -> Result<(u32, u32), String> {
    snap.totals
        .as_ref()
        .and_then(|t| t.tiers.iter().find(|t| t.role() == role))
        .map(|t| (t.healthy, t.total))
        .ok_or_else(|| format!("no {role} tier"))
}

/// Runs `lab/traffic SECONDS RPS` in the background.
fn traffic_for(
    lab: &Lab,
    seconds: u32,
    rps: &str,
) -> tokio::task::JoinHandle<std::process::Output> {
    let state = lab.state.path().join("lab.state");
    let rps = rps.to_string();
    tokio::task::spawn_blocking(move || {
        Command::new(repo_root().join("lab/traffic"))
            .args([seconds.to_string(), rps])
            .env("STACKTOP_LAB_STATE", state)
            .output()
            .expect("run lab/traffic")
    })
}

/// Waits until the collector's cross-check window lies wholly inside the
/// traffic that started at `start_ms`, then returns its ratio, checked to
/// be within 2 % of 1.00.
async fn ratio_during_traffic(url: &str, start_ms: i64, what: &str) {
    wait_for(url, what, |s| {
        let t = traffic(s);
        let window_start = t.window_end_ms - i64::from(t.window_seconds) * 1_000;
        if t.window_seconds < 10 || window_start < start_ms + 1_000 {
            return Err(format!("window not inside the traffic yet: {t:?}"));
        }
        let ratio = t.web_lb_request_ratio.ok_or(format!("no ratio: {t:?}"))?;
        if (ratio - 1.0).abs() > 0.02 {
            return Err(format!(
                "web/LB ratio {ratio:.3} is more than 2% from 1.00: {t:?}"
            ));
        }
        eprintln!("{what}: {t:?}");
        Ok(())
    })
    .await;
}

/// A webhook receiver on 127.0.0.1 keeping every notification with the
/// time it arrived.
struct Webhook {
    port: u16,
    received: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
}

impl Webhook {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::downgrade(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Some(body) = read_request(stream) else {
                    continue;
                };
                // Gone with the test.
                let Some(keep) = keep.upgrade() else { return };
                if let Ok(json) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push((Instant::now(), json));
                }
            }
        });
        Self { port, received }
    }

    fn since(&self, t: Instant) -> Vec<serde_json::Value> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn first_since(&self, t: Instant) -> Option<Duration> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .find(|(at, _)| *at >= t)
            .map(|(at, _)| *at - t)
    }
}

/// Reads one HTTP request's body and answers 200.
fn read_request(mut stream: std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::{BufRead, Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    Some(body)
}

trait LabelStartsWith {
    fn label_starts_with(&self, name: &str, prefix: &str) -> bool;
}

impl LabelStartsWith for Alert {
    /// The app checks are named after their URL: `app:…`.
    fn label_starts_with(&self, name: &str, prefix: &str) -> bool {
        self.labels
            .iter()
            .any(|l| l.key == name && l.value.starts_with(prefix))
    }
}

/// Polls Fleet.Alerts until `check` gives a value; panics with its last
/// complaint after [`PATIENCE`].
async fn within_alerts<T>(
    url: &str,
    what: &str,
    check: impl Fn(&[Alert]) -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < PATIENCE {
        if let Some(alerts) = fleet_alerts(url).await {
            match check(&alerts) {
                Ok(v) => {
                    eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
                    return v;
                }
                Err(why) => last = why,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {PATIENCE:?} waiting for {what}: {last}");
}

async fn fleet_alerts(url: &str) -> Option<Vec<Alert>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    let reply = FleetClient::new(channel)
        .alerts(AlertsRequest::default())
        .await
        .ok()?;
    Some(reply.into_inner().alerts)
}

/// Polls until `check` returns `Ok` for a snapshot; panics with its last
/// complaint after [`PATIENCE`]. Prints how long it took.
async fn wait_for(url: &str, what: &str, check: impl Fn(&FleetSnapshot) -> Result<(), String>) {
    let start = Instant::now();
    let mut last = String::from("no snapshot yet");
    while start.elapsed() < PATIENCE {
        if let Some(snap) = snapshot(url).await {
            match check(&snap) {
                Ok(()) => {
                    eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
                    return;
                }
                Err(why) => last = why,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {PATIENCE:?} waiting for {what}: {last}");
}

fn node<'a>(snap: &'a FleetSnapshot, name: &str) -> Result<&'a NodeState, String> {
    snap.nodes
        .iter()
        .find(|n| n.name == name)
        .ok_or_else(|| format!("no node {name}"))
}

fn fact<'a>(n: &'a NodeState, key: &str) -> Option<&'a str> {
    stacktop_proto::label(&n.facts, key)
}

/// The status of `n`'s checks of `kind` (all of them must agree).
fn check_status(n: &NodeState, kind: &str) -> Result<Health, String> {
    let checks: Vec<_> = n.checks.iter().filter(|c| c.kind == kind).collect();
    let first = checks
        .first()
        .ok_or_else(|| format!("{} has no {kind} check: {:?}", n.name, n.checks))?;
    Ok(first.status())
}

fn expect_check(snap: &FleetSnapshot, name: &str, kind: &str, want: Health) -> Result<(), String> {
    let n = node(snap, name)?;
    let got = check_status(n, kind)?;
    if got == want {
        Ok(())
    } else {
        let msgs: Vec<_> = n
            .checks
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| format!("{}: {} {}", c.name, c.status().name(), c.message))
            .collect();
        Err(format!("{name} {kind} is {got}, want {want}: {msgs:?}"))
    }
}

fn all_ok(snap: &FleetSnapshot) -> Result<(), String> {
    if snap.nodes.len() != 6 {
        let names: Vec<_> = snap.nodes.iter().map(|n| &n.name).collect();
        return Err(format!("want 6 nodes, have {names:?}"));
    }
    for n in &snap.nodes {
        if n.checks.is_empty() {
            return Err(format!("{} has no checks yet", n.name));
        }
        for c in &n.checks {
            if c.status() != Health::Ok {
                return Err(format!(
                    "{} check {} is {}: {}",
                    n.name,
                    c.name,
                    c.status().name(),
                    c.message
                ));
            }
        }
        if n.health() != Health::Ok {
            return Err(format!("{} is {}", n.name, n.health().name()));
        }
    }
    Ok(())
}

fn backend_status(snap: &FleetSnapshot, server: &str) -> Result<String, String> {
    let lb = node(snap, "lb1")?;
    lb.backends
        .iter()
        .find(|b| b.server == server)
        .map(|b| b.status.clone())
        .ok_or_else(|| format!("lb1 reports no backend server {server}: {:?}", lb.backends))
}

/// Requests per (source) node over [since, until) from the collector's
/// history of `http_requests_per_second`, all classes.
async fn requests(url: &str, node: &str, since_ms: i64, until_ms: i64) -> f64 {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = FleetClient::new(channel)
        .history(HistoryRequest {
            node: node.to_string(),
            series: "http_requests_per_second".into(),
            labels: vec![],
            since_ms,
        })
        .await
        .unwrap()
        .into_inner();
    reply
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| p.timestamp_ms < until_ms)
        .map(|p| p.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_stack_through_the_collector() {
    let required = std::env::var("STACKTOP_LAB").is_ok_and(|v| v == "require");
    if !required && let Some(why) = missing_servers() {
        eprintln!("skipping the lab test: {why} (set STACKTOP_LAB=require to make this a failure)");
        return;
    }
    if !Path::new("/usr/bin/python3").exists() && !required {
        eprintln!("skipping the lab test: python3 is missing");
        return;
    }

    // Every notification the collector sends reaches this webhook.
    let hooks = Webhook::start();
    let config_dir = tempfile::tempdir().unwrap();
    let collector_config = config_dir.path().join("collector.toml");
    std::fs::write(
        &collector_config,
        format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
            hooks.port
        ),
    )
    .unwrap();
    let mut lab = Lab::up(&collector_config);
    let url = lab.collector.clone();
    eprintln!("lab at {} with collector {url}", lab.dir.display());

    // Six servers in their tiers, every check ok.
    wait_for(&url, "6 nodes, all checks ok", all_ok).await;
    let snap = snapshot(&url).await.unwrap();
    let roles = |name: &str| -> Vec<Role> { node(&snap, name).unwrap().roles().collect() };
    assert_eq!(roles("lb1"), [Role::Lb]);
    for web in ["web1", "web2", "web3"] {
        assert_eq!(roles(web), [Role::Web, Role::App], "{web}");
    }
    assert_eq!(roles("db1"), [Role::Db]);
    assert_eq!(roles("db2"), [Role::Db]);
    wait_for(&url, "db roles and HAProxy's 3 backends UP", |s| {
        let db1 = node(s, "db1")?;
        let db2 = node(s, "db2")?;
        if fact(db1, "db_role") != Some("primary") || fact(db2, "db_role") != Some("replica") {
            return Err(format!(
                "db roles: db1 {:?}, db2 {:?}",
                fact(db1, "db_role"),
                fact(db2, "db_role")
            ));
        }
        if !db2
            .latest
            .iter()
            .any(|v| v.name == "mysql_replication_lag_seconds")
        {
            return Err("db2 reports no replication lag".into());
        }
        for web in ["web1", "web2", "web3"] {
            let status = backend_status(s, web)?;
            if !status.starts_with("UP") {
                return Err(format!("{web} is {status}"));
            }
        }
        expect_check(s, "lb1", "dns", Health::Ok)
    })
    .await;
    // The collector says which node each server is (by name: the lab's
    // addresses are loopback ones, which tell no machine apart), and the
    // agent read lab/up's haproxy.cfg: every hop behind the LB is plain
    // text.
    let snap = snapshot(&url).await.expect("a snapshot");
    let lb1 = node(&snap, "lb1").unwrap();
    assert_eq!(lb1.backends.len(), 3, "{:?}", lb1.backends);
    for b in &lb1.backends {
        let n = b.server.trim_start_matches("web");
        assert_eq!(
            (b.node.as_str(), b.matched_by(), b.address.as_str()),
            (
                b.server.as_str(),
                stacktop_proto::v1::BackendMatch::Name,
                format!("127.0.0.1{n}:8080").as_str()
            ),
            "{b:?}"
        );
        assert_eq!((b.ssl, b.ssl_verify), (Some(false), None), "{b:?}");
    }

    // Traffic through the LB: every web node serves some, and the web tier's
    // logged requests add up to the LB's within 10%.
    let start_ms = stacktop_proto::now_unix_ms();
    let load = traffic_for(&lab, 12, "100");
    wait_for(&url, "QPS on every web node", |s| {
        for web in ["web1", "web2", "web3"] {
            let qps = node(s, web)?.summary.as_ref().and_then(|x| x.qps);
            if !qps.is_some_and(|q| q > 0.0) {
                return Err(format!("{web} qps {qps:?}"));
            }
        }
        Ok(())
    })
    .await;
    let out = load.await.unwrap();
    assert!(out.status.success(), "lab/traffic: {out:?}");
    let end_ms = stacktop_proto::now_unix_ms();
    // Let the last seconds pass the agents' grace and reach the collector.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let lb = requests(&url, "lb1", start_ms - 1000, end_ms + 2000).await;
    let mut web = 0.0;
    for name in ["web1", "web2", "web3"] {
        let n = requests(&url, name, start_ms - 1000, end_ms + 2000).await;
        assert!(n > 0.0, "{name} logged no requests");
        web += n;
    }
    eprintln!("requests during traffic: lb {lb}, web tier {web}");
    assert!(lb >= 1000.0, "the LB logged {lb} requests of ~1200 sent");
    assert!(
        (web - lb).abs() <= 0.10 * lb,
        "web tier {web} vs LB {lb}: more than 10% apart"
    );
    let snap = snapshot(&url).await.unwrap();
    eprintln!("collector's web/LB cross-check now: {:?}", traffic(&snap));

    // The cross-check reads 1.00 on this honest stack at 200 req/s and at
    // 0.5 req/s alike: HAProxy's own health checks (every second, to each
    // web server, logged by nginx) are not web traffic.
    let start_ms = stacktop_proto::now_unix_ms();
    let busy = traffic_for(&lab, 16, "200");
    ratio_during_traffic(&url, start_ms, "web/LB ratio at 200 req/s").await;
    let out = busy.await.unwrap();
    assert!(out.status.success(), "lab/traffic: {out:?}");
    let start_ms = stacktop_proto::now_unix_ms();
    let quiet = traffic_for(&lab, 30, "0.5");
    ratio_during_traffic(&url, start_ms, "web/LB ratio at 0.5 req/s").await;
    let out = quiet.await.unwrap();
    assert!(out.status.success(), "lab/traffic: {out:?}");

    // Fault: one nginx dies.
    lab.fault("kill-web", Some("2"));
    wait_for(
        &url,
        "web2 DOWN at HAProxy, LB warn, web2's web check crit",
        |s| {
            let status = backend_status(s, "web2")?;
            if !status.starts_with("DOWN") {
                return Err(format!("HAProxy says web2 is {status}"));
            }
            expect_check(s, "lb1", "haproxy", Health::Warn)?;
            expect_check(s, "web2", "nginx", Health::Crit)
        },
    )
    .await;
    // web2 still runs its app server: the App tier is whole, the Web tier
    // lost one.
    let snap = snapshot(&url).await.unwrap();
    assert_eq!(tier(&snap, Role::Web), Ok((2, 3)), "{:?}", snap.totals);
    assert_eq!(tier(&snap, Role::App), Ok((3, 3)), "{:?}", snap.totals);
    lab.fault("start-web", Some("2"));
    wait_for(&url, "all ok after start-web 2", all_ok).await;

    // Fault: replication stops.
    lab.fault("stop-replication", None);
    wait_for(&url, "replication crit on db2", |s| {
        let db2 = node(s, "db2")?;
        let replication = db2
            .checks
            .iter()
            .find(|c| c.name.contains("replication"))
            .ok_or_else(|| format!("db2 has no replication check: {:?}", db2.checks))?;
        if replication.status() == Health::Crit {
            Ok(())
        } else {
            Err(format!("replication is {}", replication.status().name()))
        }
    })
    .await;
    lab.fault("start-replication", None);
    wait_for(&url, "all ok after start-replication", all_ok).await;

    // Fault: HAProxy dies. Its backends are unknown (not its last "3/3
    // UP") within one check interval.
    lab.fault("kill-lb", None);
    wait_for(&url, "lb1's backends unknown", |s| {
        let lb = node(s, "lb1")?;
        if !lb.backends_stale || lb.backends_up.is_some() {
            return Err(format!(
                "backends stale {} up {:?}",
                lb.backends_stale, lb.backends_up
            ));
        }
        expect_check(s, "lb1", "haproxy", Health::Crit)
    })
    .await;
    lab.fault("start-lb", None);
    wait_for(&url, "all ok after start-lb", |s| {
        all_ok(s)?;
        match node(s, "lb1")?.backends_up {
            Some(3) => Ok(()),
            other => Err(format!("lb1 backends up {other:?}")),
        }
    })
    .await;

    // Fault: the primary dies; the apps' health checks fail with it.
    let fault_at = Instant::now();
    lab.fault("kill-primary", None);
    wait_for(&url, "db1 crit and the app checks failing", |s| {
        expect_check(s, "db1", "mysql", Health::Crit)?;
        for web in ["web1", "web2", "web3"] {
            let n = node(s, web)?;
            let app = n
                .checks
                .iter()
                .find(|c| c.kind == "app" || c.name.contains("health"))
                .ok_or_else(|| format!("{web} has no app health check: {:?}", n.checks))?;
            if app.status() != Health::Crit {
                return Err(format!("{web} app check is {}", app.status().name()));
            }
        }
        Ok(())
    })
    .await;
    // One page, not five: the primary's alert is the root, the apps' (and
    // the tiers' in front) are grouped under it, and the webhook is told
    // once, naming them.
    let root = within_alerts(&url, "one DB root with the app checks under it", |alerts| {
        let root = alerts
            .iter()
            .find(|a| a.node == "db1" && a.rule == "check-failed")
            .ok_or("no check-failed alert for db1")?;
        if root.state() != AlertState::Firing || !root.root.is_empty() {
            return Err(format!("db1's alert is not a firing root: {root:?}"));
        }
        for web in ["web1", "web2", "web3"] {
            let app = alerts
                .iter()
                .find(|a| {
                    a.node == web && a.rule == "check-failed" && a.label_starts_with("check", "app")
                })
                .ok_or(format!("no check-failed alert for {web}'s app check"))?;
            if app.state() != AlertState::Firing || app.root != root.id {
                return Err(format!(
                    "{web}'s app alert is not firing under the root: {app:?}"
                ));
            }
        }
        let loose: Vec<_> = alerts
            .iter()
            .filter(|a| {
                a.state() == AlertState::Firing
                    && a.root.is_empty()
                    && a.id != root.id
                    && a.started_ms >= root.started_ms
            })
            .map(|a| format!("{} {} {}", a.rule, a.node, a.summary))
            .collect();
        if !loose.is_empty() {
            return Err(format!("firing alerts not grouped under db1's: {loose:?}"));
        }
        Ok(root.clone())
    })
    .await;
    // Long enough for everything in front to have fired and been held.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pages: Vec<serde_json::Value> = hooks
        .since(fault_at)
        .into_iter()
        .filter(|n| n["status"] == "firing")
        .collect();
    let summaries: Vec<String> = pages
        .iter()
        .map(|p| format!("{} {} {}", p["rule"], p["node"], p["summary"]))
        .collect();
    assert_eq!(
        pages.len(),
        1,
        "one notification, not several: {summaries:?}"
    );
    assert_eq!(pages[0]["id"], root.id.as_str(), "{summaries:?}");
    let dependents: Vec<&str> = pages[0]["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["node"].as_str())
        .collect();
    for web in ["web1", "web2", "web3"] {
        assert!(dependents.contains(&web), "{web} not named: {}", pages[0]);
    }
    eprintln!(
        "kill-primary: {} alerts grouped under {} ({}), one webhook notification {:.1} s after the fault",
        root.grouped.len(),
        root.id,
        root.summary,
        hooks.first_since(fault_at).unwrap().as_secs_f64()
    );
    lab.fault("start-primary", None);
    wait_for(&url, "all ok after start-primary", all_ok).await;

    // Down: nothing the lab started is left.
    let pids = lab.recorded_pids();
    assert!(pids.len() >= 10, "recorded pids: {pids:?}");
    let said = lab.down();
    let mut alive = BTreeMap::new();
    for (name, pid, start) in pids {
        if start_time(pid).as_deref() == Some(start.as_str()) {
            alive.insert(name, pid);
        }
    }
    assert!(
        alive.is_empty(),
        "still running after lab/down: {alive:?}\n{said}"
    );
    assert!(!lab.dir.exists(), "lab/down left {}", lab.dir.display());
}
