//! Role detection: when no role is configured, the node's roles are read
//! from the processes it runs.
//!
//! | process (comm or argv\[0\] basename) | role |
//! |---|---|
//! | `haproxy` | `lb` |
//! | `nginx` | `web` |
//! | `mysqld`, `mariadbd` | `db` |
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
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often [`watch`] re-scans the process table.
pub const REDETECT_EVERY: Duration = Duration::from_secs(60);

use crate::checks::process::{self, ProcessNames};

/// The process names that reveal each role.
pub const SIGNATURES: &[(&str, Role)] = &[
    ("haproxy", Role::Lb),
    ("nginx", Role::Web),
    ("mysqld", Role::Db),
    ("mariadbd", Role::Db),
];

/// The roles revealed by a process list, in [`stacktop_proto::ROLES`]
/// order, without duplicates.
pub fn roles_from(procs: &[ProcessNames]) -> Vec<Role> {
    stacktop_proto::ROLES
        .into_iter()
        .filter(|&role| {
            SIGNATURES
                .iter()
                .any(|&(name, r)| r == role && procs.iter().any(|p| p.is(name)))
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
    fn detection_reads_proc() {
        // Whatever runs here, detection must not fail or invent the app role.
        assert!(!detect().contains(&Role::App));
    }
}
