//! The `process` check and the process table scan role detection shares.
//!
//! A process matches a name when `/proc/PID/comm` equals it or the
//! basename of its argv\[0\] does (comm is cut to 15 bytes and some daemons
//! rename their threads; argv\[0\] catches `nginx: worker process` too).
//! Ok: "3 running (pids 812, 813, 814)"; crit: "not running".
//!
//! ```toml
//! [[checks]]
//! kind = "process"
//! process-name = "nginx"
//! ```

use std::fs;

use serde::Deserialize;
use stacktop_proto::Health;

use super::common::{Outcome, SpecError, SpecResult};

/// A process running, by name.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProcessSpec {
    /// Matched against `/proc/PID/comm` and the basename of argv\[0\].
    pub process_name: String,
}

impl ProcessSpec {
    /// The name of a check with no configured one: `process:NAME` (the
    /// form [`stacktop_proto::metrics::check_role`] reads the role from).
    pub fn default_name(&self) -> String {
        format!("process:{}", self.process_name)
    }
}

/// How many pids a message lists before "…".
const PIDS_SHOWN: usize = 5;

/// One process's names: comm and the basename of argv\[0\].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessNames {
    /// The pid.
    pub pid: u32,
    /// `/proc/PID/comm`, trimmed.
    pub comm: String,
    /// Basename of argv\[0\] up to the first blank or colon (`nginx:
    /// master process` names itself `nginx`).
    pub argv0: String,
}

impl ProcessNames {
    /// Whether either name equals `name`.
    pub fn is(&self, name: &str) -> bool {
        self.comm == name || self.argv0 == name
    }
}

/// The basename of argv\[0\] from a raw `/proc/PID/cmdline`.
pub fn argv0_name(cmdline: &[u8]) -> String {
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let word = first.split([' ', ':']).next().unwrap_or_default();
    word.rsplit('/').next().unwrap_or_default().to_string()
}

/// The PIDs listed in `/proc` right now (one numeric entry per process).
pub fn pids() -> std::io::Result<impl Iterator<Item = u32>> {
    Ok(fs::read_dir("/proc")?.filter_map(|entry| {
        entry
            .ok()?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
    }))
}

/// Every process visible in `/proc` (processes that vanish mid-scan are
/// skipped).
pub fn scan() -> std::io::Result<Vec<ProcessNames>> {
    let mut out = Vec::new();
    for pid in pids()? {
        let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let argv0 = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| argv0_name(&c))
            .unwrap_or_default();
        out.push(ProcessNames {
            pid,
            comm: comm.trim_end().to_string(),
            argv0,
        });
    }
    Ok(out)
}

/// A process check.
#[derive(Debug, Clone)]
pub struct ProcessProbe {
    name: String,
}

impl ProcessProbe {
    /// A check for processes named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
        }
    }

    /// Checks the spec and builds the probe.
    pub fn from_spec(spec: &ProcessSpec) -> SpecResult<Self> {
        let name = &spec.process_name;
        if name.trim().is_empty() || name.contains('/') {
            return Err(SpecError::new(
                "process-name",
                format!("process name {name:?} must be a program name such as \"nginx\""),
            ));
        }
        Ok(Self::new(name))
    }

    /// Runs the check once (reads /proc; no await).
    pub fn run(&self) -> Outcome {
        match scan() {
            Ok(procs) => judge(&self.name, &procs),
            Err(e) => Outcome::new(Health::Unknown, format!("cannot read /proc: {e}")),
        }
    }
}

/// Decides the outcome from a process list.
pub fn judge(name: &str, procs: &[ProcessNames]) -> Outcome {
    let mut pids: Vec<u32> = procs.iter().filter(|p| p.is(name)).map(|p| p.pid).collect();
    pids.sort_unstable();
    if pids.is_empty() {
        return Outcome::crit(format!("{name} not running"));
    }
    let mut shown: Vec<String> = pids.iter().take(PIDS_SHOWN).map(u32::to_string).collect();
    if pids.len() > PIDS_SHOWN {
        shown.push("…".into());
    }
    Outcome::ok(format!(
        "{} running (pid{} {})",
        pids.len(),
        if pids.len() == 1 { "" } else { "s" },
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, comm: &str, argv0: &str) -> ProcessNames {
        ProcessNames {
            pid,
            comm: comm.into(),
            argv0: argv0.into(),
        }
    }

    #[test]
    fn argv0_basenames() {
        assert_eq!(
            argv0_name(b"/usr/sbin/nginx\0-c\0/etc/nginx.conf\0"),
            "nginx"
        );
        assert_eq!(argv0_name(b"nginx: worker process\0\0"), "nginx");
        assert_eq!(argv0_name(b""), "");
    }

    #[test]
    fn judging() {
        let procs = [
            p(1, "systemd", "systemd"),
            p(9, "nginx", "nginx"),
            p(7, "worker", "nginx"),
        ];
        let out = judge("nginx", &procs);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Health::Ok, "2 running (pids 7, 9)")
        );
        assert_eq!(judge("haproxy", &procs).status, Health::Crit);
        assert_eq!(judge("systemd", &procs).message, "1 running (pid 1)");
    }

    #[test]
    fn the_scan_finds_this_process() {
        let me = std::process::id();
        assert!(scan().unwrap().iter().any(|p| p.pid == me));
    }
}
