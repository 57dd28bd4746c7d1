//! The command line's help texts, `stacktop status` against nothing, and
//! the write commands' input checks (before any collector is asked).

use assert_cmd::Command;

fn stacktop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stacktop"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = stacktop().args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help() {
    insta::assert_snapshot!(stdout_of(&["--help"]));
}

#[test]
fn status_help() {
    insta::assert_snapshot!(stdout_of(&["status", "--help"]));
}

#[test]
fn alerts_help() {
    insta::assert_snapshot!(stdout_of(&["alerts", "--help"]));
}

#[test]
fn ack_help() {
    insta::assert_snapshot!(stdout_of(&["ack", "--help"]));
}

#[test]
fn silence_help() {
    insta::assert_snapshot!(stdout_of(&["silence", "--help"]));
}

#[test]
fn unsilence_help() {
    insta::assert_snapshot!(stdout_of(&["unsilence", "--help"]));
}

#[test]
fn maintenance_help() {
    insta::assert_snapshot!(stdout_of(&["maintenance", "--help"]));
}

/// stderr of `stacktop args`, which must fail with clap's usage code 2.
fn refused(args: &[&str]) -> String {
    let out = stacktop().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_durations_matchers_and_tiers_are_quoted() {
    let err = refused(&["silence", "--match", "node=web2", "--for", "1 fortnight"]);
    assert!(err.contains("invalid duration \"1 fortnight\""), "{err}");
    assert!(err.contains("30s, 10m, 1h, 2d"), "{err}");
    let err = refused(&["silence", "--match", "node", "--for", "1h"]);
    assert!(err.contains("invalid matcher \"node\""), "{err}");
    let err = refused(&["silence", "--match", "node=web2"]);
    assert!(err.contains("--for"), "{err}");
    let err = refused(&["maintenance", "web2", "--for", "0s"]);
    assert!(err.contains("longer than 0"), "{err}");
    let err = refused(&["maintenance", "--tier", "cache", "--for", "1h"]);
    assert!(err.contains("unknown role \"cache\""), "{err}");
    let err = refused(&["maintenance", "web2"]);
    assert!(err.contains("--for"), "{err}");
}

#[test]
fn status_exits_2_naming_an_unreachable_collector() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = stacktop()
        .args(["status", "--json", "--collector", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// `stacktop` with `args`, logging into a temporary directory.
fn dashboard(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stacktop.log");
    stacktop()
        .args(args)
        .arg("--log-file")
        .arg(&log)
        .output()
        .unwrap()
}

#[test]
fn a_bad_collector_address_is_refused_before_the_screen() {
    let out = dashboard(&["--collector", "ftp://nowhere"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"ftp://nowhere\""), "{stderr}");
    assert!(stderr.contains("http://"), "{stderr}");
}

#[cfg(not(feature = "embedded"))]
#[test]
fn without_the_embedded_feature_a_collector_is_required() {
    let out = dashboard(&[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no --collector given"), "{stderr}");
    assert!(stderr.contains("embedded"), "{stderr}");
}
