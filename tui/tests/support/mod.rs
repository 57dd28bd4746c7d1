//! What the tests that drive the real dashboard share: a private tmux
//! server to run it in and read its screen from, the skip-or-fail rule
//! for missing tools, the workspace's other binaries built next to
//! `stacktop`, and real collector and agent processes started from them
//! (each killed by its guard). Each test file uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the screen may take to show what the collector already says;
/// a liveness bound, never a performance assertion.
pub const SCREEN_PATIENCE: Duration = Duration::from_secs(20);
/// How long a process may take to say it is ready; a liveness bound.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A process a test started; killed (SIGKILL, by its own pid) and reaped
/// when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self { child }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a collector on 127.0.0.1:0 with its data (and log,
/// `collector.log`) in `dir`, and returns it with its URL, read from its
/// "collector serving" log line.
pub fn start_collector(bin: &Path, dir: &Path) -> (Proc, String) {
    start_collector_with(bin, dir, None)
}

/// [`start_collector`] with `--config config` when given.
pub fn start_collector_with(bin: &Path, dir: &Path, config: Option<&Path>) -> (Proc, String) {
    let mut command = Command::new(bin.join("stacktop-collector"));
    command.args(["--listen", "127.0.0.1:0"]);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut proc = Proc::spawn(
        command
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = proc.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = dir.join("collector.log");
    // Keeps reading (into the log file) so the collector never blocks on a
    // full pipe; ends when the collector does.
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(log).ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(file) = file.as_mut() {
                use std::io::Write as _;
                let _ = writeln!(file, "{line}");
            }
            if line.contains("collector serving")
                && let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("listen="))
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("the collector did not say where it listens; see its log"));
    (proc, format!("http://{addr}"))
}

/// An agent `name` with `role`, reporting every second to `collector`,
/// whose one check (TCP to the collector's port) passes.
pub fn start_agent(bin: &Path, dir: &Path, collector: &str, name: &str, role: &str) -> Proc {
    start_agent_to(bin, dir, &[collector], name, role)
}

/// An agent `name` with `role`, reporting every second to each of
/// `collectors`; its one check is a TCP connect to the last one's port.
pub fn start_agent_to(bin: &Path, dir: &Path, collectors: &[&str], name: &str, role: &str) -> Proc {
    let config = dir.join(format!("{name}.toml"));
    let last = collectors.last().expect("at least one collector");
    let port = last.rsplit(':').next().unwrap();
    let list = collectors
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\nroles = [\"{role}\"]\ncollectors = [{list}]\n\
             interval = \"1s\"\n\n[[checks]]\nkind = \"tcp\"\nname = \"collector\"\n\
             address = \"127.0.0.1:{port}\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Proc::spawn(
        Command::new(bin.join("stacktop-agent"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log),
    )
}

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

    /// Keeps the pane when its command exits, so a test can still ask how
    /// it left the terminal.
    pub fn keep_pane_on_exit(&self) {
        let status = self
            .command()
            .args([
                "set-window-option",
                "-t",
                Self::SESSION,
                "remain-on-exit",
                "on",
            ])
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux set-window-option failed: {status}");
    }

    /// A tmux format (`#{...}`) of the session's pane.
    pub fn format(&self, format: &str) -> String {
        let out = self
            .command()
            .args(["display-message", "-p", "-t", Self::SESSION, format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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
