//! The lab with every lock on, as an operator meets it: `lab/up --tls`
//! stands the real stack up (HAProxy, three nginx + app servers, MariaDB
//! primary and replica) with a collector that speaks TLS, wants a client
//! certificate from every agent and a token on every call. The six agents
//! report with their own certificates and the agent token; the dashboard
//! (in tmux) reads the fleet with the viewer token; `stacktop ack` is
//! refused with the viewer token and works with the operator token. Then
//! every certificate is rotated on disk (a new CA, new collector and agent
//! certificates) and the collector restarted: the same agent processes,
//! never restarted, come back with their new certificates, and the
//! dashboard with the new CA.
//!
//! Needs the lab's Debian packages and tmux: without them the test skips
//! with a printed reason, unless `STACKTOP_LAB=require` (CI), which makes
//! that a failure. `lab/down` runs when the test ends, pass or fail, and
//! stops exactly what `lab/up` started; tmux runs on a private socket.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Tmux, binaries, has_tmux, skip_without};

/// Liveness bound of each wait on the collector; never a performance
/// assertion.
const PATIENCE: Duration = Duration::from_secs(45);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The lab's servers this machine lacks, if any.
fn missing_servers() -> Vec<&'static str> {
    [
        ("nginx", &["/usr/sbin/nginx"][..]),
        ("haproxy", &["/usr/sbin/haproxy"][..]),
        ("mariadb", &["/usr/sbin/mariadbd", "/usr/sbin/mysqld"][..]),
        ("dnsmasq", &["/usr/sbin/dnsmasq"][..]),
        ("python3", &["/usr/bin/python3"][..]),
    ]
    .iter()
    .filter(|(_, paths)| !paths.iter().any(|p| Path::new(p).exists()))
    .map(|(name, _)| *name)
    .collect()
}

/// A running `lab/up --tls`; `lab/down` when dropped.
struct Lab {
    state: PathBuf,
    /// `KEY=VALUE` lines `lab/up` printed: `STACKTOP_COLLECTOR`,
    /// `STACKTOP_CA_FILE`, `STACKTOP_VIEWER_TOKEN_FILE`,
    /// `STACKTOP_OPERATOR_TOKEN_FILE`.
    printed: HashMap<String, String>,
}

impl Lab {
    fn up(dir: &Path, bin: &Path, collector_config: &Path) -> Self {
        let state = dir.join("lab.state");
        let out = Command::new(repo_root().join("lab/up"))
            .arg("--tls")
            .env("STACKTOP_LAB_STATE", &state)
            .env("STACKTOP_BIN_DIR", bin)
            .env("STACKTOP_LAB_COLLECTOR_CONFIG", collector_config)
            .stdin(Stdio::null())
            .output()
            .expect("run lab/up");
        // From here on lab/down must run, whatever happens next.
        let mut lab = Self {
            state,
            printed: HashMap::new(),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "lab/up --tls failed ({}):\n{}\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        lab.printed = stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.starts_with("STACKTOP_"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lab
    }

    fn get(&self, key: &str) -> &str {
        self.printed
            .get(key)
            .unwrap_or_else(|| panic!("lab/up printed no {key}: {:?}", self.printed))
    }

    /// The lab's directory, as the state file records it.
    fn dir(&self) -> PathBuf {
        let state = std::fs::read_to_string(&self.state).unwrap();
        let dir = state.lines().find_map(|l| l.strip_prefix("LAB="));
        PathBuf::from(dir.expect("LAB= in the lab's state file"))
    }

    /// PID and start time of each agent, as `lab/up` recorded them.
    fn agent_pids(&self) -> Vec<String> {
        let mut pids: Vec<String> = std::fs::read_dir(self.dir().join("run"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("agent-")
            })
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        pids.sort();
        pids
    }

    fn fault(&self, action: &str, arg: &str) {
        let out = Command::new(repo_root().join("lab/fault"))
            .arg(action)
            .args((!arg.is_empty()).then_some(arg))
            .env("STACKTOP_LAB_STATE", &self.state)
            .output()
            .expect("run lab/fault");
        assert!(
            out.status.success(),
            "lab/fault {action} {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = Command::new(repo_root().join("lab/down"))
            .env("STACKTOP_LAB_STATE", &self.state)
            .output();
        if let Ok(out) = out
            && !out.status.success()
        {
            eprintln!("lab/down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Runs `stacktop ARGS --collector URL --ca-file CA [--token-file TOKEN]`.
fn stacktop(lab: &Lab, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stacktop"));
    command
        .args(args)
        .args(["--collector", lab.get("STACKTOP_COLLECTOR")])
        .args(["--ca-file", lab.get("STACKTOP_CA_FILE")]);
    if let Some(token) = token {
        command.args(["--token-file", token]);
    }
    command.stdin(Stdio::null()).output().expect("run stacktop")
}

/// The names of the connected nodes whose health is `ok`, by `stacktop
/// status --json` with the viewer token and `ca`; `None` while the
/// collector cannot be reached.
fn ok_nodes(lab: &Lab, ca: &str, viewer: &str) -> Option<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_stacktop"))
        .args(["status", "--json", "--fail-on", "never"])
        .args(["--collector", lab.get("STACKTOP_COLLECTOR")])
        .args(["--ca-file", ca, "--token-file", viewer])
        .stdin(Stdio::null())
        .output()
        .expect("run stacktop status");
    if !out.status.success() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let mut names: Vec<String> = json["nodes"]
        .as_array()?
        .iter()
        .filter(|n| n["connected"] == true && n["health"] == "ok")
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// The alerts as `stacktop alerts --json` gives them (exit 0: none
/// firing, 1: some firing; anything else is a failure).
fn alerts(lab: &Lab, token: &str) -> Vec<serde_json::Value> {
    let out = stacktop(lab, Some(token), &["alerts", "--json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "stacktop alerts: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("alerts JSON");
    json["alerts"].as_array().cloned().unwrap_or_default()
}

/// Polls `stacktop alerts --json` until `pick` finds an alert.
fn wait_for_alert(
    lab: &Lab,
    token: &str,
    what: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(alert) = alerts(lab, token).into_iter().find(&pick) {
            return alert;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_lab_over_mtls_with_viewer_and_operator_tokens() {
    let missing = missing_servers();
    if !missing.is_empty() && skip_without(&missing.join(", ")) {
        return;
    }
    if !has_tmux() && skip_without("tmux") {
        return;
    }
    let bin = binaries();
    let dir = tempfile::tempdir().unwrap();
    // check-failed fires at once, so there is an alert to acknowledge as
    // soon as a check fails.
    let collector_config = dir.path().join("collector.toml");
    std::fs::write(
        &collector_config,
        "[[rules]]\nname = \"check-failed\"\nfor = \"0s\"\n",
    )
    .unwrap();
    let lab = Lab::up(dir.path(), &bin, &collector_config);
    let url = lab.get("STACKTOP_COLLECTOR").to_string();
    assert!(url.starts_with("https://"), "{url}");
    let viewer = lab.get("STACKTOP_VIEWER_TOKEN_FILE").to_string();
    let operator = lab.get("STACKTOP_OPERATOR_TOKEN_FILE").to_string();

    // The dashboard, with the viewer token: all six agents' nodes (each
    // admitted with its own client certificate) on screen.
    let log = dir.path().join("stacktop.log");
    let tmux = Tmux::start(
        &dir.path().join("tmux.sock"),
        120,
        32,
        &[
            env!("CARGO_BIN_EXE_stacktop"),
            "--collector",
            &url,
            "--ca-file",
            lab.get("STACKTOP_CA_FILE"),
            "--token-file",
            &viewer,
            "--log-file",
            &log.to_string_lossy(),
        ],
    );
    let start = Instant::now();
    let nodes = ["lb1", "web1", "web2", "web3", "db1", "db2"];
    loop {
        let screen = tmux.screen();
        if nodes.iter().all(|n| screen.contains(n)) {
            eprintln!(
                "the dashboard shows the 6 nodes after {:.1?}:\n{screen}",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the dashboard (viewer token) does not show the lab's 6 nodes:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Without a token the same collector says who is missing what.
    let refused = stacktop(&lab, None, &["status"]);
    assert_eq!(refused.status.code(), Some(2), "status without a token");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A failing check raises an alert; the viewer sees it.
    lab.fault("kill-app", "2");
    let firing = |a: &serde_json::Value| {
        a["node"] == "web2" && a["rule"] == "check-failed" && a["state"] == "firing"
    };
    let alert = wait_for_alert(&lab, &viewer, "web2's check-failed firing", firing);
    let id = alert["id"].as_str().expect("an alert id").to_string();
    assert_eq!(alert["acknowledged"], false);

    // The viewer token may not acknowledge it...
    let out = stacktop(&lab, Some(&viewer), &["ack", &id, "--comment", "viewer"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ack with a viewer token: {stderr}"
    );
    assert!(
        stderr.contains("PermissionDenied") && stderr.contains("operator token"),
        "{stderr}"
    );
    let after = alerts(&lab, &viewer);
    let same = after.iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(same["acknowledged"], false, "refused ack changed the alert");

    // ... the operator token may.
    let out = stacktop(&lab, Some(&operator), &["ack", &id, "--comment", "op"]);
    assert!(
        out.status.success(),
        "ack with the operator token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_alert(&lab, &viewer, "the alert acknowledged", |a| {
        a["id"] == id.as_str() && a["acknowledged"] == true
    });
    eprintln!(
        "lab over mTLS: 6 agents with client certificates, dashboard with the viewer token, \
         ack refused for the viewer token and accepted for the operator token"
    );

    lab.fault("start-app", "2");

    // Rotation: the collector goes away, every certificate is replaced on
    // disk by one from a new CA, the collector comes back. The agents are
    // the same processes throughout.
    let agents_before = lab.agent_pids();
    let auth = lab.dir().join("auth");
    let old_ca = dir.path().join("old-ca.pem");
    std::fs::copy(auth.join("ca.pem"), &old_ca).unwrap();
    lab.fault("kill-collector", "");
    std::fs::remove_file(auth.join("ca.pem")).unwrap();
    std::fs::remove_file(auth.join("ca.key")).unwrap();
    let out = Command::new(bin.join("stacktop-collector"))
        .arg("certs")
        .arg("--out")
        .arg(&auth)
        .args([
            "--collector-name",
            "127.0.0.1",
            "--collector-name",
            "localhost",
        ])
        .args(nodes.iter().flat_map(|n| ["--node", n]))
        .output()
        .expect("run stacktop-collector certs");
    assert!(
        out.status.success(),
        "certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        std::fs::read(auth.join("ca.pem")).unwrap(),
        std::fs::read(&old_ca).unwrap(),
        "a new CA"
    );
    lab.fault("start-collector", "");
    let ca = lab.get("STACKTOP_CA_FILE");
    let start = Instant::now();
    loop {
        let ok = ok_nodes(&lab, ca, &viewer);
        if ok.as_deref().is_some_and(|ok| ok.len() == nodes.len()) {
            eprintln!(
                "certificates rotated: the 6 agents back with their new certificates after {:.1?}",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "after the rotation the agents did not come back: ok and connected: {ok:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(lab.agent_pids(), agents_before, "no agent was restarted");
    assert_eq!(
        ok_nodes(&lab, &old_ca.to_string_lossy(), &viewer),
        None,
        "the collector no longer has a certificate from the old CA"
    );
    // The dashboard, not restarted either, reconnects with the new CA.
    tmux.wait_for("the dashboard reconnected", |s| {
        nodes.iter().all(|n| s.contains(n)) && !s.contains("disconnected")
    });

    tmux.press("q");
}
