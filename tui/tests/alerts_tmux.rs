//! An alert end to end, as an operator sees it: a real `stacktop-collector`
//! process (a config with `check-failed` firing at once, a temporary data
//! directory, an ephemeral port on 127.0.0.1), a real `stacktop-agent`
//! whose TCP check probes a closed loopback port, and the `stacktop`
//! dashboard in a tmux session. The test reads the screen with
//! `tmux capture-pane`: the alert is counted in the header and listed in
//! the alerts view soon after it fires; `a`, `A`, `y` acknowledge it, and
//! Fleet.Alerts then says who did.
//!
//! The two binaries are built with the same cargo (`cargo build -p
//! stacktop-collector -p stacktop-agent`, a no-op when they are fresh).
//! Without tmux the test skips with a printed reason, unless
//! `STACKTOP_LAB=require`, which makes that a failure. Every process is
//! started here and killed by its own guard when the test ends, pass or
//! fail; tmux runs on a private socket in the test's directory and only
//! that server is killed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use stacktop::client;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{Alert, AlertState};
use support::{Proc, Tmux, binaries, has_tmux, skip_without, start_collector_with};

/// Liveness bound of each wait; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);
/// The node the agent reports as.
const NODE: &str = "web9";

/// Starts the collector on 127.0.0.1:0 and returns it with its URL, read
/// from its "collector serving" log line.
fn start_collector(bin: &Path, dir: &Path) -> (Proc, String) {
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"check-failed\"\nfor = \"0s\"\n",
    )
    .unwrap();
    start_collector_with(bin, dir, Some(&config))
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_agent(bin: &Path, dir: &Path, collector: &str, port: u16) -> Proc {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"{NODE}\"\nroles = [\"web\"]\ncollectors = [\"{collector}\"]\n\
             interval = \"1s\"\n\n[[checks]]\nkind = \"tcp\"\nname = \"port\"\n\
             address = \"127.0.0.1:{port}\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    Proc::spawn(
        Command::new(bin.join("stacktop-agent"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// Asks Fleet.Alerts until `ok` picks an alert of the node, or panics.
async fn wait_for_alert(url: &str, what: &str, ok: impl Fn(&Alert) -> bool) -> Alert {
    let config = ClientConfig::new(url);
    let start = Instant::now();
    loop {
        if let Ok(response) = client::alerts(&config).await
            && let Some(alert) = response
                .alerts
                .into_iter()
                .find(|a| a.node == NODE && a.rule == "check-failed" && ok(a))
        {
            return alert;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_shows_in_the_dashboard_and_is_acknowledged_with_keys() {
    if !has_tmux() && skip_without("tmux") {
        return;
    }
    let bin = tokio::task::spawn_blocking(binaries).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&bin, dir.path());
    let _agent = start_agent(&bin, dir.path(), &url, closed_port());

    let stacktop = env!("CARGO_BIN_EXE_stacktop");
    let log = dir.path().join("stacktop.log");
    let log = log.to_string_lossy();
    let tmux = Tmux::start(
        &dir.path().join("tmux.sock"),
        120,
        30,
        &[
            "env",
            "USER=tester",
            stacktop,
            "--collector",
            &url,
            "--log-file",
            &log,
        ],
    );

    let fired = wait_for_alert(&url, "check-failed firing", |a| {
        a.state() == AlertState::Firing
    })
    .await;
    assert!(!fired.acknowledged);

    // The header counts it on the fleet screen...
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the firing alert in the header", |s| {
            s.lines().nth(1).is_some_and(|l| l.contains("✖ 1 firing"))
        });
        // ... and the alerts view lists it.
        tmux.press("a");
        let screen = tmux.wait_for("the alert in the alerts view", |s| {
            s.lines()
                .any(|l| l.contains("firing") && l.contains(NODE) && l.contains("check-failed"))
        });
        assert!(
            screen.contains("Alert "),
            "the selected alert's box:\n{screen}"
        );
        tmux.press("A");
        tmux.wait_for("the confirmation", |s| {
            s.contains("Confirm") && s.contains("Acknowledge alert") && s.contains("as tester@")
        });
        tmux.press("y");
        tmux.wait_for("the collector's answer in the footer", |s| {
            s.contains("acknowledged alert")
        });
        tmux
    })
    .await
    .unwrap();

    let acked = wait_for_alert(&url, "the alert acknowledged", |a| a.acknowledged).await;
    assert_eq!(acked.id, fired.id);
    assert!(
        acked.acknowledged_by.starts_with("tester@"),
        "{:?}",
        acked.acknowledged_by
    );
    // The view follows: the alert is marked acknowledged on screen too.
    tokio::task::spawn_blocking(move || {
        tmux.wait_for("the ack mark", |s| s.contains("acked by tester@"));
    })
    .await
    .unwrap();
}
