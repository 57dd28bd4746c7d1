//! A newcomer's first run: the real `stacktop-agent` binary with roles but
//! no `[[checks]]` (and no `STACKTOP_MYSQL_PASSWORD`), streaming to a real
//! collector on 127.0.0.1. The role defaults whose endpoints are only
//! guesses (the app's health URL, the MySQL password) report `unknown`
//! "not configured" rather than probe the guess and fail, so the site the
//! collector decides is not `down` because of them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stacktop_proto::Health;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{FleetSnapshot, SnapshotRequest};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");
/// Liveness bound for every wait; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// The agent process, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn snapshot(url: &str) -> Option<FleetSnapshot> {
    let config = ClientConfig::new(url).with_connect_timeout(Duration::from_secs(1));
    let channel = config.connect().await.ok()?;
    let reply = config
        .fleet(channel)
        .snapshot(SnapshotRequest::default())
        .await
        .ok()?;
    Some(reply.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_role_defaults_report_unknown_and_the_site_is_not_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    let config = stacktop_collector::Config {
        listen: addr,
        ..Default::default()
    };
    tokio::spawn(stacktop_collector::serve(listener, config, stop.clone()));

    // The app role has no app-health URL configured and the db role no
    // MySQL password: before, both defaults probed guesses and failed.
    let _agent = Agent(
        Command::new(BIN)
            .args([
                "--collector",
                &url,
                "--name",
                "first-run",
                "--interval",
                "200ms",
            ])
            .args(["--role", "db", "--role", "app"])
            .env_remove("STACKTOP_MYSQL_PASSWORD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let snap = loop {
        if let Some(snap) = snapshot(&url).await {
            let reported = snap.nodes.iter().any(|n| {
                n.name == "first-run"
                    && ["mysql", "app:8080"]
                        .iter()
                        // A real result, not the collector's "no result
                        // yet" for a check the Hello announced.
                        .all(|c| n.checks.iter().any(|r| r.name == *c && r.timestamp_ms > 0))
            });
            if reported {
                break snap;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent's checks never arrived: {snap:#?}"
            );
        }
        assert!(tokio::time::Instant::now() < deadline, "no collector");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let node = snap.nodes.iter().find(|n| n.name == "first-run").unwrap();
    for name in ["mysql", "app:8080"] {
        let check = node.checks.iter().find(|c| c.name == name).unwrap();
        assert_eq!(check.status, Health::Unknown as i32, "{check:?}");
        assert!(
            check.message.starts_with("not configured: "),
            "{name}: {}",
            check.message
        );
        assert!(check.message.contains("README"), "{}", check.message);
    }
    // Unknown is not unhealthy: each tier keeps its node, and the site is
    // not down (unknown, or warn if this machine has stray open ports).
    assert_ne!(snap.site, Health::Down as i32, "{snap:#?}");
    assert_ne!(snap.site, Health::Crit as i32, "{snap:#?}");
    for tier in &snap.tiers {
        assert_eq!(tier.healthy, tier.total, "{tier:?}");
    }
}
