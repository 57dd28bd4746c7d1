//! What the tests that drive the real dashboard share: a private tmux
//! server to run it in and read its screen from, the skip-or-fail rule
//! for missing tools, and the workspace's other binaries built next to
//! `stacktop`. Each test file uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the screen may take to show what the collector already says;
/// a liveness bound, never a performance assertion.
pub const SCREEN_PATIENCE: Duration = Duration::from_secs(15);

/// A tmux server of our own (its socket in the test's directory) running
/// one session; `kill-server` on that socket when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    const SESSION: &str = "stacktop-test";

    /// `command` in a new detached session `width` x `height`.
    pub fn start(socket: &Path, width: u16, height: u16, command: &[&str]) -> Self {
        let tmux = Self {
            socket: socket.to_path_buf(),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", Self::SESSION])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg("--")
            .args(command)
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket);
        command
    }

    /// The visible screen, as text.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", Self::SESSION])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `key` (a tmux key name or a character).
    pub fn press(&self, key: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", Self::SESSION, key])
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {key}: {status}");
    }

    /// Waits until the screen satisfies `ok`, and returns it.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < SCREEN_PATIENCE,
                "{what}: not on screen within {SCREEN_PATIENCE:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the test may skip because `what` is missing; panics instead
/// under `STACKTOP_LAB=require`.
pub fn skip_without(what: &str) -> bool {
    let why = format!("{what} is not installed");
    if std::env::var("STACKTOP_LAB").as_deref() == Ok("require") {
        panic!("{why}, and STACKTOP_LAB=require");
    }
    eprintln!("skipping: {why} (set STACKTOP_LAB=require to make this a failure)");
    true
}

pub fn has_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the collector and agent binaries next to this package's
/// `stacktop` (same target directory and profile) and returns that
/// directory.
pub fn binaries() -> PathBuf {
    let stacktop = Path::new(env!("CARGO_BIN_EXE_stacktop"));
    let dir = stacktop.parent().expect("a target directory").to_path_buf();
    let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
    let target_dir = dir.parent().expect("a target directory");
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--bins"])
        .args(["-p", "stacktop-collector", "-p", "stacktop-agent"])
        .arg("--target-dir")
        .arg(target_dir);
    // What cargo set for this test, not for a build: some build scripts
    // watch these (ring: CARGO_MANIFEST_DIR), and a changed value would
    // rebuild them and everything above them on every run.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&key.as_ref())
        {
            build.env_remove(key.as_ref());
        }
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "{build:?}: {status}");
    dir
}
