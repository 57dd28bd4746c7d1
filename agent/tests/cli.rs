//! The `stacktop-agent` binary as an operator meets it: config fixtures,
//! bad command-line values, and an agent that outlives its collector.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn valid_configs_pass_the_check() {
    // The example config the package installs as /etc/stacktop/agent.toml.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/agent.toml");
    for file in fixtures("valid_configs").into_iter().chain([example]) {
        Command::new(BIN)
            .arg("--check")
            .arg("--config")
            .arg(&file)
            .assert()
            .success();
    }
}

/// (fixture, line, field) each invalid fixture must be reported with.
const INVALID: [(&str, u32, &str); 8] = [
    ("bad_address.toml", 2, "collectors"),
    ("bad_interval.toml", 3, "interval"),
    ("bad_interval_type.toml", 1, "interval"),
    ("bad_role.toml", 3, "roles"),
    ("duplicate_check_name.toml", 8, "name"),
    ("mysql_without_password.toml", 4, "password"),
    ("not_toml.toml", 1, "name"),
    ("unknown_key.toml", 3, "collector"),
];

#[test]
fn invalid_configs_exit_2_naming_file_line_and_field() {
    let files = fixtures("invalid_configs");
    assert_eq!(
        files.len(),
        INVALID.len(),
        "every fixture has an expectation"
    );
    for (name, line, field) in INVALID {
        let file = files.iter().find(|f| f.ends_with(name)).unwrap();
        let output = Command::new(BIN)
            .arg("--config")
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        let at = format!("error: {}:{line}:", file.display());
        assert!(stderr.starts_with(&at), "{name}: want {at:?} in {stderr:?}");
        assert!(
            stderr.contains(&format!("field \"{field}\"")),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn bad_role_message_quotes_the_value() {
    let file = fixtures("invalid_configs")
        .into_iter()
        .find(|f| f.ends_with("bad_role.toml"))
        .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}:3:17: field \"roles\": unknown role \"cache\": expected one of lb, web, app, db",
            file.display()
        )
    );
}

#[test]
fn missing_config_file_exits_2() {
    Command::new(BIN)
        .args(["--config", "/nonexistent/stacktop/agent.toml"])
        .assert()
        .code(2);
}

#[test]
fn bad_cli_values_exit_2() {
    for args in [
        &["--role", "cache"][..],
        &["--collector", "127.0.0.1:7411"],
        &["--collector", "http://127.0.0.1"],
        &["--interval", "0s"],
        &["--interval", "forever"],
        &["--label", "novalue"],
        &["--name", ""],
        &["--log-level", "=="],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn cli_overrides_the_file() {
    let file = fixtures("valid_configs")
        .into_iter()
        .find(|f| f.ends_with("full.toml"))
        .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .args([
            "--check", "--name", "web-9", "--role", "lb", "--label", "dc=ams1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("name: web-9"), "{stdout}");
    assert!(stdout.contains("roles: lb\n"), "{stdout}");
    assert!(stdout.contains("label: dc=ams1"), "{stdout}");
    assert!(stdout.contains("label: rack=r12"), "{stdout}");
    assert!(stdout.contains("interval: 500ms"), "{stdout}");
}

#[test]
fn help_mentions_the_default_collector() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("http://127.0.0.1:7411"), "{stdout}");
}

/// Kills the child on drop, so a failed assertion never leaks an agent.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A 127.0.0.1 port that was just free: bound, then closed.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn agent_keeps_retrying_an_unreachable_collector_and_stops_on_sigterm() {
    let port = closed_port();
    let child = Command::new(BIN)
        .args(["--collector", &format!("http://127.0.0.1:{port}")])
        .args([
            "--name",
            "lonely",
            "--interval",
            "200ms",
            "--log-level",
            "info",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut agent = KillOnDrop(child);

    // Long enough for several connection attempts (250 ms, 500 ms, 1 s...).
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent exited while its collector was away"
    );

    // SIGTERM by pid: the agent must shut down cleanly and promptly.
    let pid = agent.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "agent ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    agent
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    let retries = stderr.matches("will retry").count();
    assert!(
        retries >= 2,
        "expected repeated retries, got {retries}:\n{stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
}
