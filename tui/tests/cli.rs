//! The command line's help texts and `stacktop status` against nothing.

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
