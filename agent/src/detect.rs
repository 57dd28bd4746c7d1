//! Role detection: when no role is configured, the node's roles are read
//! from the processes it runs.
//!
//! | process (comm or argv\[0\] basename) | role |
//! |---|---|
//! | `haproxy` | `lb` |
//! | `nginx` | `web` |
//! | `mysqld`, `mariadbd` (and their `_safe` wrappers) | `db` |
//!
//! The mapping is [`stacktop_proto::metrics::role_of_process`], the same
//! rule that tells which role a `process` check speaks for.
//!
//! The `app` role has no single process to recognise, so it is never
//! detected. [`crate::run`] detects once at start, before the Hello is
//! built, and sends `roles_detected = true` with what it found (possibly
//! nothing). It then re-scans every [`REDETECT_EVERY`] in its own task
//! ([`watch`], off the sampling path) and logs a warning when the roles
//! changed. TODO: send the new roles once the uplink can re-send a Hello
//! without reconnecting; until then they take effect at the agent's next
//! restart, which the warning says.

use std::time::Duration;

use stacktop_proto::Role;
use stacktop_proto::metrics::role_of_process;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often [`watch`] re-scans the process table.
pub const REDETECT_EVERY: Duration = Duration::from_secs(60);

use crate::checks::process::{self, ProcessNames};

/// The roles revealed by a process list, in [`stacktop_proto::ROLES`]
/// order, without duplicates.
pub fn roles_from(procs: &[ProcessNames]) -> Vec<Role> {
    stacktop_proto::ROLES
        .into_iter()
        .filter(|&role| {
            procs
                .iter()
                .any(|p| role_of_process(&p.comm) == role || role_of_process(&p.argv0) == role)
        })
        .collect()
}

/// Scans `/proc` and returns the detected roles (empty when `/proc`
/// cannot be read).
pub fn detect() -> Vec<Role> {
    process::scan().map(|p| roles_from(&p)).unwrap_or_default()
}

/// Re-detects every [`REDETECT_EVERY`] until `shutdown`, warning when the
/// roles differ from `announced` (the ones the Hello carries).
pub async fn watch(announced: Vec<Role>, shutdown: CancellationToken) {
    let mut last = announced.clone();
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + REDETECT_EVERY, REDETECT_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // /proc walks block; keep them off the runtime's worker threads.
        let Ok(now) = tokio::task::spawn_blocking(detect).await else {
            continue;
        };
        if now != last {
            warn!(?announced, detected = ?now,
                "detected roles changed; restart the agent (or configure roles) to announce them");
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(comm: &str, argv0: &str) -> ProcessNames {
        ProcessNames {
            pid: 1,
            comm: comm.into(),
            argv0: argv0.into(),
        }
    }

    #[test]
    fn detects_by_comm_or_argv0() {
        assert_eq!(roles_from(&[p("bash", "bash")]), []);
        assert_eq!(
            roles_from(&[
                p("mariadbd", "mariadbd"),
                p("nginx", "nginx"),
                p("x", "haproxy")
            ]),
            [Role::Lb, Role::Web, Role::Db]
        );
        assert_eq!(
            roles_from(&[p("mysqld", "mysqld"), p("mariadbd", "")]),
            [Role::Db]
        );
    }

    #[test]
    fn detection_and_process_checks_agree_on_roles() {
        for name in [
            "haproxy",
            "nginx",
            "mysqld",
            "mariadbd",
            "mysqld_safe",
            "sshd",
        ] {
            let by_check =
                stacktop_proto::metrics::check_role("process", &format!("process:{name}"));
            let detected = roles_from(&[p(name, name)]);
            let expected: Vec<Role> = [by_check]
                .into_iter()
                .filter(|&r| r != Role::Unspecified)
                .collect();
            assert_eq!(detected, expected, "{name}");
        }
    }

    #[test]
    fn detection_reads_proc() {
        // Whatever runs here, detection must not fail or invent the app role.
        assert!(!detect().contains(&Role::App));
    }
}
