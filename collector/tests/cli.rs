//! The binary's refusals: a non-loopback listen address without --insecure,
//! and a bad config file, both exit 2 with a message that says why.
//! Neither test binds a socket: the binary refuses before it listens.

use std::process::{Command, Output};

fn collector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stacktop-collector"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("running stacktop-collector")
}

#[test]
fn non_loopback_without_tls_is_refused() {
    let out = collector(&["--listen", "0.0.0.0:7411"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0.0.0.0:7411"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn bad_config_file_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(&path, "history = \"5m\"\nmax_agent = 5\n").unwrap();
    let out = collector(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("collector.toml"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("max_agent"), "{stderr}");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = collector(&["--config", "/nonexistent/stacktop-collector.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/stacktop-collector.toml"),
        "{stderr}"
    );
}

#[test]
fn help_shows_defaults() {
    let out = collector(&["--help"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "127.0.0.1:7411",
        "--history",
        "15m",
        "--max-agents",
        "--insecure",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}
