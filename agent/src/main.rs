//! The `stacktop-agent` binary: parse the command line, start tracing, load
//! the config file, let the command line override it, and run the agent
//! until Ctrl-C or SIGTERM. Exits with 2 on any configuration error.
//!
//! The library's errors are typed ([`stacktop_agent::Error`]); this binary
//! only adds context (`anyhow`) and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use stacktop_agent::config::{self, Config};
use stacktop_agent::plan::Planned;
use stacktop_agent::{CancellationToken, Role};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// stacktop's per-server agent: samples this server (CPU, memory, load,
/// disks, network) every interval and streams to one or more collectors.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Collector to stream to, as https://HOST:PORT (or http:// on
    /// loopback); repeat for several.
    /// [default: http://127.0.0.1:7411]
    #[arg(long = "collector", value_name = "URL", value_parser = config::validate_collector)]
    collectors: Vec<String>,

    /// Node name, unique in the fleet. [default: the host name]
    #[arg(long, value_parser = config::validate_name)]
    name: Option<String>,

    /// Role of this server: lb, web, app or db; repeat for several.
    /// [default: none]
    #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
    roles: Vec<Role>,

    /// Sampling interval, e.g. 1s or 500ms (100ms to 1h). [default: 1s]
    #[arg(long, value_parser = config::parse_interval)]
    interval: Option<Duration>,

    /// TOML config file; command-line values override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// File holding the agent token sent to every collector (`token-file`
    /// in the config file). [default: none]
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Label sent with this node, as key=value; repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = config::parse_label)]
    labels: Vec<(String, String)>,

    /// Check the configuration, print it resolved (with every check the
    /// agent would run, its target, and which role defaults are not
    /// configured), and exit (0 if valid; warnings go to stderr).
    #[arg(long)]
    check: bool,

    /// Log filter for stderr, e.g. info or stacktop_agent=debug; RUST_LOG
    /// is used when this is not given. [default: info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Parse a whole access log once and print its per-second request
    /// counts and malformed lines: check that a format is understood
    /// before deploying it. Exits 1 when any line is malformed.
    CheckLogs {
        /// nginx-combined, nginx-timed, stacktop, haproxy-http, or an Nginx
        /// log_format string such as '$remote_addr [$time_local] "$request" $status'.
        #[arg(long, value_name = "FMT")]
        format: String,
        /// The access log to read.
        file: PathBuf,
        /// Print JSON: {"lines", "malformed", "seconds": [{"unix", "requests", "2xx", ...}]}.
        #[arg(long)]
        json: bool,
    },
}

/// The hidden packaging helpers, `stacktop-agent completions SHELL` and
/// `stacktop-agent man DIR`. They are parsed apart from [`Cli`] so that the
/// completions and man pages they write do not offer them.
#[derive(Debug, clap::Parser)]
#[command(name = "stacktop-agent", version)]
enum Packaging {
    /// Print the shell completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (this command's and each subcommand's) into DIR.
    Man {
        /// The directory to write `stacktop-agent.1` and the others into.
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
        let mut cmd = <Cli as clap::CommandFactory>::command();
        match self {
            Packaging::Completions { shell } => {
                clap_complete::generate(shell, &mut cmd, "stacktop-agent", &mut std::io::stdout());
            }
            Packaging::Man { dir } => {
                if let Err(err) = clap_mangen::generate_to(cmd, &dir) {
                    eprintln!("error: writing man pages to {}: {err}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        ExitCode::SUCCESS
    }
}

/// Runs `check-logs`: 0 when every line parsed, 1 when some did not, 2 when
/// the format or the file is unusable.
fn check_logs(format: &str, file: &std::path::Path, json: bool) -> ExitCode {
    match stacktop_agent::logs::check_file(format, file) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.render_text());
            }
            if report.malformed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: stacktop_proto::UnknownRole| e.to_string())
}

impl Cli {
    /// The file's config (if any) with every given command-line value on top.
    fn resolve(self) -> Result<Config, config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => config::load_file(path)?,
            None => Config::default(),
        };
        let Self {
            name,
            roles,
            collectors,
            interval,
            labels,
            token_file,
            ..
        } = self;
        if token_file.is_some() {
            config.token_file = token_file;
        }
        if let Some(name) = name {
            config.name = Some(name);
        }
        if !roles.is_empty() {
            config.roles = roles;
        }
        if !collectors.is_empty() {
            config.collectors = collectors;
        }
        if let Some(interval) = interval {
            config.interval = interval;
        }
        config.labels.extend(labels);
        if config.spool_dir.is_none() {
            config.spool_dir = default_spool_dir();
        }
        Ok(config)
    }
}

/// [`stacktop_agent::spool::DEFAULT_DIR`] when it exists and this process
/// may write there (a packaged agent's state directory), else none: the
/// spool stays in memory.
fn default_spool_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(stacktop_agent::spool::DEFAULT_DIR);
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    std::fs::File::create(&probe).ok()?;
    let _ = std::fs::remove_file(&probe);
    Some(dir.to_path_buf())
}

fn main() -> ExitCode {
    if let Some(helper) = Packaging::from_args() {
        return helper.run();
    }
    let mut cli = Cli::parse();
    if let Some(Command::CheckLogs { format, file, json }) = cli.command.take() {
        return check_logs(&format, &file, json);
    }
    let filter = match &cli.log_level {
        Some(level) => EnvFilter::try_new(level),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: --log-level: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // With stderr gone (a closed pipe), tracing would report the failed
        // write with `eprintln!`, which panics and kills the logging task:
        // an agent must outlive its log reader.
        .log_internal_errors(false)
        .init();
    let check = cli.check;
    let config = match cli.resolve() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if check {
        // The roles the agent would run with: configured, else detected.
        let roles = if config.roles.is_empty() {
            stacktop_agent::detect::detect()
        } else {
            config.roles.clone()
        };
        let planned = stacktop_agent::plan::plan(&config, &roles);
        print_config(&config, &roles, &planned);
        for planned in &planned {
            if let Some(warning) = planned.warning() {
                eprintln!("warning: {warning}");
            }
        }
        // What would only fail later, at run time, fails the check now.
        let unreadable: Vec<String> = config
            .logs
            .iter()
            .filter_map(|log| log.readable().err().map(|e| e.to_string()))
            .collect();
        if !unreadable.is_empty() {
            for e in &unreadable {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
        return ExitCode::SUCCESS;
    }

    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            eprintln!("error: {err:#}");
            let config_error = err
                .downcast_ref::<stacktop_agent::Error>()
                .is_some_and(stacktop_agent::Error::is_config);
            if config_error {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs the agent until a signal, on one thread: plenty for a sampler and
/// a few streams, and it keeps the agent's footprint small.
fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        // The library's message is whole (it names the check, the log or
        // the address); adding context here would only repeat it.
        stacktop_agent::run(config, shutdown).await?;
        Ok(())
    })
}

/// Prints the resolved configuration for `--check`, with `planned`, the
/// checks the agent would run on a node with `roles` (detected ones when
/// none is configured, as the agent would).
fn print_config(config: &Config, roles: &[Role], planned: &[Planned]) {
    let collectors = if config.collectors.is_empty() {
        vec![stacktop_agent::DEFAULT_COLLECTOR.to_string()]
    } else {
        config.collectors.clone()
    };
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    println!(
        "name: {}",
        config.name.as_deref().unwrap_or("(the host name)")
    );
    if !config.roles.is_empty() {
        println!("roles: {}", names.join(", "));
    } else if roles.is_empty() {
        println!("roles: none detected (set roles = [...] to give this node its tiers)");
    } else {
        println!(
            "roles: {} (detected from running processes; roles = [...] fixes them)",
            names.join(", ")
        );
    }
    println!("collectors: {}", collectors.join(", "));
    println!("interval: {}", humantime::format_duration(config.interval));
    match &config.spool_dir {
        Some(dir) => println!(
            "spool: {} (at most {} bytes)",
            dir.display(),
            config.spool_max_bytes
        ),
        None => println!("spool: memory (lost when the agent stops)"),
    }
    for (key, value) in &config.labels {
        println!("label: {key}={value}");
    }
    for log in &config.logs {
        if log.health_check_paths.is_empty() {
            println!("log: {} ({})", log.path.display(), log.format);
        } else {
            println!(
                "log: {} ({}, health checks: {})",
                log.path.display(),
                log.format,
                log.health_check_paths.join(", ")
            );
        }
    }
    let how = match (&config.checks, config.role_defaults) {
        (_, Some(false)) => "no role defaults (role-defaults = false)",
        (None, _) => "the roles' defaults (no [[checks]])",
        (Some(_), Some(true)) => "[[checks]] and the roles' defaults (role-defaults = true)",
        (Some(_), None) => "[[checks]] only (role-defaults = true would add the roles' defaults)",
    };
    println!("checks: {}, {how}", planned.len());
    for check in planned {
        for line in check.describe(roles) {
            println!("{line}");
        }
    }
    let not_configured = planned
        .iter()
        .filter(|p| p.not_configured.is_some())
        .count();
    if not_configured > 0 {
        println!(
            "{not_configured} not configured: they report unknown until their endpoint is set \
             (see README \"Role defaults\")"
        );
    }
}

/// Cancels `shutdown` on Ctrl-C or (on Unix) SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(err) => {
                error!(cause = %err, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        let what = tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = term.recv() => "terminated",
        };
        // Cancel before logging, so nothing can stand between the signal
        // and the shutdown.
        shutdown.cancel();
        info!("{what}; shutting down");
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        info!("interrupted; shutting down");
    }
}
