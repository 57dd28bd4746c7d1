//! The `stacktop-collector` binary: parses the command line, reads the
//! optional config file, starts tracing and runs the collector until Ctrl-C
//! or SIGTERM. Everything else lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stacktop_collector::{CancellationToken, Config, FileConfig, bench};
use tracing::{error, info};

/// Collects agent streams, decides node, tier and site health, and serves
/// the fleet to stacktop dashboards over gRPC.
#[derive(Debug, Parser)]
#[command(
    name = "stacktop-collector",
    version,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address to listen on. Anything but loopback needs --tls-cert and
    /// --tls-key, or --insecure. [default: 127.0.0.1:7411]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// TOML config file (fields: listen, history, max-agents, insecure,
    /// data-dir, group-wait, metrics-listen, tls-cert, tls-key, client-ca,
    /// agent-tokens-file, viewer-tokens-file, operator-tokens-file,
    /// [[rules]], [[notify]], [[remote-write]]; see the README).
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

    /// Serve plain-text gRPC (and /metrics) on a non-loopback address.
    /// Anyone on the network can then read the fleet and report as any
    /// node.
    #[arg(long)]
    insecure: bool,

    /// Serve the fleet as a Prometheus target on http://ADDR/metrics, e.g.
    /// 127.0.0.1:7412. Anything but loopback needs --insecure.
    /// [default: not served]
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Where the ingest journal (what was acknowledged), the coarse history
    /// (10 s buckets for 6 h, 1 min for 7 days), alert states,
    /// acknowledgements, silences and maintenance windows are kept across
    /// restarts. [default: $STATE_DIRECTORY when
    /// run by systemd (/var/lib/stacktop), else
    /// $XDG_STATE_HOME/stacktop/collector, else
    /// ~/.local/state/stacktop/collector]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Keep nothing on disk: no ingest journal, alert state in memory.
    /// Batches are then acknowledged before they are durable and a crash
    /// loses them; for benchmarks (`bench --memory-only`) and throw-away
    /// collectors.
    #[arg(long, conflicts_with = "data_dir")]
    memory_only: bool,

    /// PEM certificate chain to serve TLS with (with --tls-key); reloaded
    /// on SIGHUP or when the file changes. [default: plain text]
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// PEM CA that agents' client certificates must chain to; an agent
    /// then needs one, and may report only under the name in it.
    /// [default: no client certificates]
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,

    /// Tokens (one a line) that may stream as agents. [default: Ingest
    /// open]
    #[arg(long, value_name = "FILE")]
    agent_tokens_file: Option<PathBuf>,

    /// Tokens (one a line) that may read the fleet. [default: Fleet open]
    #[arg(long, value_name = "FILE")]
    viewer_tokens_file: Option<PathBuf>,

    /// Tokens (one a line) that may read the fleet and acknowledge,
    /// silence and set maintenance. [default: Operator open]
    #[arg(long, value_name = "FILE")]
    operator_tokens_file: Option<PathBuf>,
}

/// The data directory when neither the command line nor the file names one.
fn default_data_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    // systemd's StateDirectory= may list several, separated by colons.
    if let Some(dirs) = env("STATE_DIRECTORY") {
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        if first.is_some() {
            return first;
        }
    }
    let state = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
    Some(state.join("stacktop").join("collector"))
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Load a collector with simulated agents and Watch subscribers and
    /// report samples/s, its CPU and memory, and sample -> Watch latency.
    ///
    /// By default it starts this binary as a separate collector process on
    /// 127.0.0.1 (so the figures are the collector's alone) and stops it at
    /// the end.
    Bench(BenchArgs),
    /// Make a CA (or reuse DIR/ca.pem and ca.key), a collector certificate
    /// and one client certificate per node, as PEM files in DIR.
    Certs(CertsArgs),
}

#[derive(Debug, clap::Args)]
struct CertsArgs {
    /// Directory the files are written to (created if missing).
    #[arg(long, value_name = "DIR", default_value = "certs")]
    out: PathBuf,

    /// A name (DNS name or IP address) agents and dashboards dial the
    /// collector by; repeat for several. [default: localhost, 127.0.0.1]
    #[arg(long = "collector-name", value_name = "NAME")]
    collector_names: Vec<String>,

    /// A node to make a client certificate for (its name as the agent
    /// reports it); repeat for several.
    #[arg(long = "node", value_name = "NAME")]
    nodes: Vec<String>,

    /// How long the certificates are valid (the CA ten times as long).
    /// [default: 365days]
    #[arg(long, value_name = "DURATION", default_value = "365days")]
    validity: humantime::Duration,
}

/// The hidden packaging helpers, `stacktop-collector completions SHELL` and
/// `stacktop-collector man DIR`. They are parsed apart from [`Args`] so that the
/// completions and man pages they write do not offer them.
#[derive(Debug, clap::Parser)]
#[command(name = "stacktop-collector", version)]
enum Packaging {
    /// Print the shell completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (this command's and each subcommand's) into DIR.
    Man {
        /// The directory to write `stacktop-collector.1` and the others into.
        dir: PathBuf,
    },
}

impl Packaging {
    /// The helper the command line asks for, if its first word names one.
    fn from_args() -> Option<Self> {
        let first = std::env::args_os().nth(1)?;
        matches!(first.to_str(), Some("completions" | "man")).then(<Self as clap::Parser>::parse)
    }

    /// Runs the helper: 0 on success, 1 when the man pages cannot be
    /// written.
    fn run(self) -> ExitCode {
        let mut cmd = <Args as clap::CommandFactory>::command();
        match self {
            Packaging::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut cmd,
                    "stacktop-collector",
                    &mut std::io::stdout(),
                );
            }
            Packaging::Man { dir } => {
                if let Err(err) = clap_mangen::generate_to(cmd, &dir) {
                    eprintln!(
                        "stacktop-collector: writing man pages to {}: {err}",
                        dir.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        ExitCode::SUCCESS
    }
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Simulated agents, each on its own connection. [default: 1000]
    #[arg(long, value_name = "N", default_value_t = 1000)]
    agents: usize,

    /// Agents sharing one connection. 1 (the default) is what real agents
    /// do; more leaves out the load generator's and the kernel's cost per
    /// connection, to see what the collector itself can take.
    #[arg(long, value_name = "N", default_value_t = 1)]
    agents_per_connection: usize,

    /// Series per agent (the standard set of 25-33 is always sent).
    /// [default: 50]
    #[arg(long, value_name = "N", default_value_t = 50)]
    series: usize,

    /// Every agent's sampling interval. [default: 1s]
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    interval: humantime::Duration,

    /// Watch subscriber counts to measure in turn, e.g. 1,10,100.
    /// [default: 1]
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1")]
    watchers: Vec<usize>,

    /// Of each set of subscribers, how many decode updates and measure
    /// latency; the others only receive the bytes. [default: 2]
    #[arg(long, value_name = "N", default_value_t = 2)]
    measuring_watchers: usize,

    /// Warm-up before each measurement. [default: 10s]
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    warmup: humantime::Duration,

    /// Length of each measurement. [default: 30s]
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    duration: humantime::Duration,

    /// Load a collector that is already running instead of starting one.
    #[arg(long, value_name = "URL", conflicts_with = "in_process")]
    collector: Option<String>,

    /// With --collector: its process id, to report its CPU and memory.
    #[arg(long, value_name = "PID", requires = "collector")]
    collector_pid: Option<u32>,

    /// Run the collector inside the benchmark process (its CPU figures then
    /// include the load generator's).
    #[arg(long)]
    in_process: bool,

    /// Serve and dial TLS with a throw-away CA (not with --collector): run
    /// once with and once without to see what TLS costs.
    #[arg(long)]
    tls: bool,

    /// Start the collector with --memory-only (no ingest journal): run once
    /// with and once without to see what durability costs.
    #[arg(long)]
    memory_only: bool,

    /// Where the started collector's log goes. [default: nowhere]
    #[arg(long, value_name = "PATH")]
    collector_log: Option<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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
    if let Some(metrics) = args.metrics_listen {
        config.metrics_listen = Some(metrics);
    }
    if let Some(dir) = args.data_dir {
        config.alerts.data_dir = Some(dir);
    }
    let set = |to: &mut Option<PathBuf>, from: Option<PathBuf>| {
        if from.is_some() {
            *to = from;
        }
    };
    set(&mut config.tls_cert, args.tls_cert);
    set(&mut config.tls_key, args.tls_key);
    set(&mut config.client_ca, args.client_ca);
    set(&mut config.auth.agent_tokens_file, args.agent_tokens_file);
    set(&mut config.auth.viewer_tokens_file, args.viewer_tokens_file);
    set(
        &mut config.auth.operator_tokens_file,
        args.operator_tokens_file,
    );
    if args.memory_only {
        config.alerts.data_dir = None;
    } else if config.alerts.data_dir.is_none() {
        config.alerts.data_dir = default_data_dir();
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    if let Some(helper) = Packaging::from_args() {
        return helper.run();
    }
    let mut args = Args::parse();
    match args.command.take() {
        Some(Command::Bench(bench_args)) => return bench(bench_args),
        Some(Command::Certs(certs_args)) => return certs(certs_args),
        None => {}
    }
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

fn certs(args: CertsArgs) -> ExitCode {
    let request = stacktop_collector::auth::certs::CertsRequest {
        dir: args.out,
        collector_names: args.collector_names,
        nodes: args.nodes,
        validity: args.validity.into(),
    };
    match stacktop_collector::auth::certs::make(&request) {
        Ok(written) => {
            if written.reused_ca {
                println!("using the CA in {}", request.dir.display());
            }
            for file in written.files {
                println!("wrote {}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("stacktop-collector certs: {err}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn bench(args: BenchArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let target = if args.in_process {
        bench::Target::InProcess
    } else if let Some(url) = args.collector {
        bench::Target::Existing {
            url,
            pid: args.collector_pid,
        }
    } else {
        match std::env::current_exe() {
            Ok(exe) => bench::Target::Spawn {
                exe,
                log: args.collector_log,
            },
            Err(err) => {
                eprintln!("stacktop-collector bench: cannot find this binary to start it: {err}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    };
    let config = bench::BenchConfig {
        agents: args.agents,
        agents_per_connection: args.agents_per_connection,
        series: args.series,
        interval: args.interval.into(),
        watchers: args.watchers,
        measuring_watchers: args.measuring_watchers,
        warmup: args.warmup.into(),
        duration: args.duration.into(),
        target,
        tls: args.tls,
        memory_only: args.memory_only,
    };
    let stop = CancellationToken::new();
    let signals = tokio::spawn(wait_for_signal(stop.clone()));
    eprintln!(
        "bench: {} agents x {} series every {:?}, watchers {:?}, {:?} warm-up + {:?} each",
        config.agents,
        config.series,
        config.interval,
        config.watchers,
        config.warmup,
        config.duration
    );
    let result = bench::run(config, stop).await;
    signals.abort();
    match result {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_else(|e| e.to_string())
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.to_table());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("stacktop-collector bench: {err}");
            ExitCode::FAILURE
        }
    }
}
