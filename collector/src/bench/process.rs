//! The collector under test as a process: started as a child of the
//! benchmark (so it is measured alone), and read from `/proc` for CPU time
//! and memory.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// Kernel clock ticks per second for `/proc/PID/stat` times (USER_HZ,
/// 100 on every Linux this runs on).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time and memory of a process at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
pub fn usage(pid: u32) -> io::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        // utime and stime are fields 14 and 15 of the whole line.
        cpu_ticks: field(11) + field(12),
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

/// A collector process started for the benchmark; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its own data directory, removed when it stops: a benchmark must not
    /// touch (or be refused by) the operator's collector state.
    data_dir: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

impl Spawned {
    /// Starts `exe --listen 127.0.0.1:PORT --max-agents N` with its log
    /// going to `log` (or nowhere), serving TLS with `collector.pem` and
    /// `collector.key` from `tls` when given, and waits until it accepts
    /// connections.
    pub async fn start(
        exe: &Path,
        max_agents: usize,
        log: Option<&Path>,
        tls: Option<&Path>,
        memory_only: bool,
    ) -> io::Result<Self> {
        let addr = free_port()?;
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        };
        let data_dir = std::env::temp_dir().join(format!(
            "stacktop-bench-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let mut command = Command::new(exe);
        if memory_only {
            command.arg("--memory-only");
        } else {
            command.arg("--data-dir").arg(&data_dir);
        }
        if let Some(dir) = tls {
            command
                .arg("--tls-cert")
                .arg(dir.join("collector.pem"))
                .arg("--tls-key")
                .arg(dir.join("collector.key"));
        }
        let child = command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--max-agents")
            .arg(max_agents.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()?;
        let mut spawned = Self {
            child,
            addr,
            data_dir,
        };
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = spawned.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the collector exited at start ({status})"
                )));
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err(io::Error::other(format!(
                    "the collector did not listen on {addr} within 15 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(spawned)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops it: SIGKILL to its own PID (it is ours), then reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}
