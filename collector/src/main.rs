//! The `stacktop-collector` binary: parses the command line, reads the
//! optional config file, starts tracing and runs the collector until Ctrl-C
//! or SIGTERM. Everything else lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stacktop_collector::{CancellationToken, Config, FileConfig};
use tracing::{error, info};

/// Collects agent streams, decides node, tier and site health, and serves
/// the fleet to stacktop dashboards over gRPC.
#[derive(Debug, Parser)]
#[command(name = "stacktop-collector", version)]
struct Args {
    /// Address to listen on. Anything but loopback needs --insecure until TLS
    /// is supported. [default: 127.0.0.1:7411]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// TOML config file (fields: listen, history, max-agents, insecure).
    /// Command-line options override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// How long full-resolution history is kept, e.g. 15m or 1h.
    /// [default: 15m]
    #[arg(long, value_name = "DURATION")]
    history: Option<humantime::Duration>,

    /// Most agent streams served at once; more are refused and retry.
    /// [default: 10000]
    #[arg(long, value_name = "N")]
    max_agents: Option<usize>,

    /// Serve plain-text gRPC on a non-loopback address. Anyone on the
    /// network can then read the fleet and report as any node.
    #[arg(long)]
    insecure: bool,
}

/// Exit code for configuration and usage errors.
const EXIT_CONFIG: u8 = 2;

fn resolve(args: Args) -> anyhow::Result<Config> {
    let mut config = Config::default();
    if let Some(path) = &args.config {
        config.merge_file(FileConfig::load(path)?);
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(history) = args.history {
        config.history = history.into();
    }
    if let Some(max_agents) = args.max_agents {
        config.max_agents = max_agents;
    }
    config.insecure |= args.insecure;
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A failed log write (stderr a closed pipe) must not panic the task
        // that logged: the default reports it with eprintln!, which panics.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match resolve(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("stacktop-collector: {err:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(cause = %format!("{err:#}"), "collector failed");
            eprintln!("stacktop-collector: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
    let result = stacktop_collector::run(config, shutdown.clone()).await;
    signals.abort();
    Ok(result?)
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn wait_for_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    // Cancel first: if logging fails (stderr gone), shutdown still happens.
    shutdown.cancel();
    info!("shutting down");
    Ok(())
}
