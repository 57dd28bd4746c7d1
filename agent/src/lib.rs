//! stacktop-agent: samples this server and streams to one or more collectors.
//!
//! # Layout
//!
//! - [`config`]: the resolved [`Config`], the TOML file format and the value
//!   checks shared with the command line.
//! - [`sample`]: the system sampler (CPU, memory, load, disks, network) and
//!   its tick loop, which fans batches out to the uplinks.
//! - [`logs`]: access-log tailing and parsing for request rates; each
//!   configured log runs as its own task feeding the sampler.
//! - [`observe`]: the channel other inputs (logs' neighbours: checks) use
//!   to reach the next batch.
//! - [`checks`]: health checks (HTTP, TCP, TLS, process, DNS, exposure,
//!   Nginx, HAProxy, MySQL), each its own task on its own interval,
//!   reporting through [`observe`]; role defaults when none is configured.
//! - [`plan`]: which checks run: the `[[checks]]` tables and the role
//!   defaults beside or instead of them, and which defaults are not
//!   configured (they report `unknown` rather than probe a guess).
//! - [`detect`]: role detection from running processes when no role is
//!   configured.
//! - [`series`]: interning of (name, labels) into small series ids.
//! - [`uplink`]: one task per collector speaking `Ingest.Connect`, with
//!   reconnects ([`backoff`]) and an unacknowledged-batch [`queue`].
//!
//! - [`error`]: why [`run`] refuses to start ([`Error`]).
//!
//! [`run`] wires them together: one sampler task, one uplink task per
//! collector, each uplink fed by its own bounded channel so a slow or dead
//! collector never delays sampling or the other collectors.

#![deny(missing_docs)]

pub mod backoff;
pub mod checks;
pub mod config;
pub mod detect;
pub mod error;
pub mod logs;
pub mod observe;
pub mod plan;
pub mod queue;
pub mod sample;
pub mod series;
pub mod spool;
pub mod uplink;

use stacktop_proto::v1::{Hello, Label};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use config::{Config, DEFAULT_COLLECTOR, DEFAULT_INTERVAL};
pub use error::{Error, Result};
pub use stacktop_proto::Role;
pub use tokio_util::sync::CancellationToken;

/// Batches buffered between the sampler and each uplink. The uplink drains
/// its channel continuously into its own queue, so this only absorbs
/// scheduling hiccups.
const UPLINK_CHANNEL: usize = 16;

/// Completed log seconds buffered for the sampler: a few seconds' worth for
/// many sources. Sources wait (backpressure) when it is full.
const LOG_CHANNEL: usize = 256;

/// Runs the agent until `shutdown` is cancelled: sample every interval and
/// stream to every collector, reconnecting forever. Returns after a bounded
/// flush once `shutdown` fires.
///
/// With no collector configured it streams to [`DEFAULT_COLLECTOR`]. Errors
/// only for an unusable configuration (a collector URL that cannot be
/// dialled, a zero interval, a check that cannot be built) or when the
/// system cannot be sampled at all; an unreachable collector is never an
/// error.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    if config.interval.is_zero() {
        return Err(Error::ZeroInterval);
    }
    let collectors = if config.collectors.is_empty() {
        vec![DEFAULT_COLLECTOR.to_string()]
    } else {
        config
            .collectors
            .iter()
            .map(|url| config::validate_collector(url).map_err(|error| Error::Collector { error }))
            .collect::<Result<_>>()?
    };
    // No configured role: detect them from the running processes, once,
    // before the Hello (built once per process) is made.
    let (roles, roles_detected) = if config.roles.is_empty() {
        (detect::detect(), true)
    } else {
        (config.roles.clone(), false)
    };
    let token = config
        .token_file
        .as_deref()
        .map(|path| stacktop_proto::transport::Token::from_file("token-file", path))
        .transpose()
        .map_err(|error| Error::Collector { error })?;
    let mut hello = hello(&config, &roles, roles_detected)?;
    let series = series::SeriesTable::new();
    // The spool gives back what a previous run had not delivered, and the
    // identity it was delivering it under.
    let (spool, restored) = match &config.spool_dir {
        Some(dir) => {
            let (spool, restored) = spool::Spool::open(
                dir,
                config.spool_max_bytes,
                config.spool_max_age,
                &collectors,
                &series,
            )?;
            match &restored.instance_id {
                Some(id) => hello.instance_id = id.clone(),
                None => spool.set_instance_id(&hello.instance_id)?,
            }
            (Some(spool), restored)
        }
        None => (None, spool::Restored::default()),
    };
    info!(node = %hello.node, instance_id = %hello.instance_id, ?collectors,
        interval = ?config.interval, spooled = restored.batches.len(),
        resumes_after_seq = restored.last_seq, "agent starting");

    let sampler = sample::Sampler::new(series.clone()).map_err(|error| Error::Sampler { error })?;
    // Everything that can fail is set up before the first task is spawned,
    // so an error never leaves tasks running behind a returned `run`.
    let sources = config
        .logs
        .iter()
        .map(|log| {
            logs::LogSource::new(log).map_err(|error| Error::Log {
                path: log.path.clone(),
                error,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // The tables and (without them, or with `role-defaults = true`) the
    // roles' defaults; a default whose endpoint is a guess reports
    // unknown "not configured" instead of probing it.
    let planned = plan::plan(&config, &roles);
    for check in planned.iter().filter(|p| p.not_configured.is_some()) {
        info!(check = %check.spec.name(), "{}", check.not_configured.as_deref().unwrap_or_default());
    }
    let checks = plan::build(&planned, &roles).map_err(|error| Error::Check { error })?;
    hello.checks = checks
        .iter()
        .map(|c| stacktop_proto::v1::PlannedCheck {
            name: c.name.clone(),
            kind: c.kind.to_string(),
            interval_ms: u32::try_from(c.interval.as_millis()).unwrap_or(u32::MAX),
            role: c.role as i32,
        })
        .collect();
    // Enough to hold unacknowledged batches for 15 minutes at any interval.
    let queue_capacity =
        usize::try_from((15 * 60 * 1000 / config.interval.as_millis().max(1)).clamp(16, 100_000))
            .unwrap_or(queue::DEFAULT_CAPACITY);

    let tracker = TaskTracker::new();
    let mut outputs = Vec::with_capacity(collectors.len());
    for url in collectors {
        let (tx, rx) = mpsc::channel(UPLINK_CHANNEL);
        let mut uplink = uplink::Uplink::new(
            url.clone(),
            hello.clone(),
            series.clone(),
            rx,
            queue_capacity,
            shutdown.clone(),
        )
        .with_credentials(config.tls.clone(), token.clone());
        if let Some(spool) = &spool {
            let acked = restored.cursors.get(&url).copied().unwrap_or(0);
            let pending = restored.batches.iter().filter(|b| b.seq > acked).cloned();
            uplink = uplink.with_spool(spool.clone(), pending);
        }
        tracker.spawn(uplink.run());
        outputs.push(sample::Output {
            collector: url,
            tx,
            dropped: 0,
        });
    }
    let (seconds_tx, seconds) = mpsc::channel(LOG_CHANNEL);
    for source in sources {
        tracker.spawn(source.run(seconds_tx.clone(), shutdown.clone()));
    }
    drop(seconds_tx);
    // Inputs other than logs (checks) send through clones of this sender;
    // the sampler drains it every tick.
    let (observations_tx, observations) = mpsc::channel(observe::CHANNEL_CAPACITY);
    info!(checks = ?checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ?roles, roles_detected, "checks starting");
    checks::spawn_all(checks, &observations_tx, &shutdown, &tracker);
    if roles_detected {
        tracker.spawn(detect::watch(roles.clone(), shutdown.clone()));
    }
    drop(observations_tx);
    let inputs = sample::Inputs {
        seconds,
        observations,
    };
    tracker.spawn(sample::run(
        sampler,
        series.clone(),
        config.interval,
        inputs,
        sample::Spooling {
            spool,
            after_seq: restored.last_seq,
        },
        outputs,
        shutdown.clone(),
    ));
    tracker.close();
    tracker.wait().await;
    info!("agent stopped");
    Ok(())
}

/// The Hello every uplink sends: the node's identity, with an instance id
/// drawn once per call (so once per agent process) and shared by every
/// collector and reconnect, which is how a collector tells a reconnect from
/// a second agent claiming the same name.
fn hello(config: &Config, roles: &[Role], roles_detected: bool) -> Result<Hello> {
    let node = match &config.name {
        Some(name) => name.clone(),
        None => hostname::get()
            .map_err(|error| Error::HostName { error })?
            .to_string_lossy()
            .into_owned(),
    };
    Ok(Hello {
        node,
        instance_id: uplink::new_instance_id(),
        roles: roles.iter().map(|&r| r as i32).collect(),
        roles_detected,
        labels: config
            .labels
            .iter()
            .map(|(k, v)| Label::new(k, v))
            .collect(),
        agent_version: stacktop_proto::VERSION.to_string(),
        interval_ms: u32::try_from(config.interval.as_millis()).unwrap_or(u32::MAX),
        checks: Vec::new(),
    })
}
