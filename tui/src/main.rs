//! The `stacktop` binary: parse the command line, send logs to a file, and
//! run the dashboard, `stacktop status`, `stacktop alerts`, or one of the
//! write commands (`ack`, `silence`, `unsilence`, `maintenance`), or the
//! hidden packaging helpers (`completions SHELL`, `man DIR`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use stacktop::cli::{AlertsArgs, Cli, Command, Credentials, StatusArgs};
use stacktop::model::Model;
use stacktop::operator::OperatorCall;
use stacktop::{alerts, operator, status};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(helper) = Packaging::from_args() {
        return helper.run();
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Status(args)) => status_command(args, &cli.credentials).await,
        Some(Command::Alerts(args)) => alerts_command(args, &cli.credentials).await,
        Some(command) => {
            let identity = operator::identity();
            let name = command.name();
            match command.operator_call(&identity) {
                Some((call, url)) => operator_command(name, call, url, &cli.credentials).await,
                None => unreachable!("every other subcommand makes an operator call"),
            }
        }
        None => match dashboard(cli.collectors, cli.log_file, cli.credentials).await {
            Ok(code) => code,
            Err(err) => {
                eprintln!("stacktop: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The hidden packaging helpers, `stacktop completions SHELL` and
/// `stacktop man DIR`. They are parsed apart from [`Cli`] so that the
/// completions and man pages they write do not offer them.
#[derive(Debug, clap::Parser)]
#[command(name = "stacktop", version)]
enum Packaging {
    /// Print the shell completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (this command's and each subcommand's) into DIR.
    Man {
        /// The directory to write `stacktop.1` and the others into.
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
                clap_complete::generate(shell, &mut cmd, "stacktop", &mut std::io::stdout());
            }
            Packaging::Man { dir } => {
                if let Err(err) = clap_mangen::generate_to(cmd, &dir) {
                    eprintln!("stacktop: writing man pages to {}: {err}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        ExitCode::SUCCESS
    }
}

/// Runs the dashboard; SIGTERM and SIGHUP end it like `q` does (the
/// terminal restored), with the shell's status for the signal (128 + its
/// number), and Ctrl-C with 130.
async fn dashboard(
    collectors: Vec<String>,
    log_file: Option<PathBuf>,
    credentials: Credentials,
) -> anyhow::Result<ExitCode> {
    let path = log_file.unwrap_or_else(default_log_path);
    init_file_logging(&path).with_context(|| format!("opening log file {}", path.display()))?;
    let config = match stacktop::config::default_path() {
        Some(path) => stacktop::config::DashboardConfig::load(&path)?,
        None => Default::default(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let shutdown = CancellationToken::new();
    let signal = tokio::spawn(stop_on_signal(shutdown.clone()));
    let exit = stacktop::run(
        stacktop::Options {
            collectors,
            credentials,
            theme: config.theme(no_color),
        },
        shutdown.clone(),
    )
    .await;
    // The dashboard ended by itself: the signal task has nothing to wait for.
    shutdown.cancel();
    let signal = signal.await.ok().flatten();
    Ok(match exit? {
        stacktop::Exit::Quit => ExitCode::SUCCESS,
        stacktop::Exit::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
        stacktop::Exit::Shutdown => signal.map_or(ExitCode::SUCCESS, |n| ExitCode::from(128 + n)),
    })
}

/// Exit status after Ctrl-C, as a shell reports SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// Cancels `shutdown` on SIGTERM or SIGHUP and returns the signal's number;
/// `None` when `shutdown` fired first (or the handlers could not be set).
async fn stop_on_signal(shutdown: CancellationToken) -> Option<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(term), Ok(hup)) => (term, hup),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(cause = %err, "cannot listen for SIGTERM/SIGHUP");
            return None;
        }
    };
    let number = tokio::select! {
        _ = shutdown.cancelled() => return None,
        _ = term.recv() => 15,
        _ = hup.recv() => 1,
    };
    tracing::info!(signal = number, "stopping on a signal");
    shutdown.cancel();
    Some(number)
}

/// Logs of the one-shot subcommands go to stderr, warnings and up.
fn init_stderr_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A failed write to a closed stderr must not panic (the default
        // reports it with eprintln!).
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}

async fn alerts_command(args: AlertsArgs, credentials: &Credentials) -> ExitCode {
    init_stderr_logging();
    let config = match credentials.client(&args.collector) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("stacktop alerts: {err}");
            return ExitCode::from(alerts::EXIT_UNREACHABLE);
        }
    };
    let response = match stacktop::client::alerts(&config).await {
        Ok(response) => response,
        Err(err) => {
            eprintln!("stacktop alerts: {err}");
            return ExitCode::from(alerts::EXIT_UNREACHABLE);
        }
    };
    if args.json {
        print!("{}", alerts::to_json(&response.alerts));
    } else {
        print!(
            "{}",
            alerts::to_table(&response, stacktop_proto::now_unix_ms())
        );
    }
    ExitCode::from(alerts::exit_code(&response.alerts))
}

/// Exit code of a write command the collector refused.
const EXIT_REFUSED: u8 = 1;

async fn operator_command(
    name: &str,
    call: OperatorCall,
    url: &str,
    credentials: &Credentials,
) -> ExitCode {
    init_stderr_logging();
    let config = match credentials.client(url) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("stacktop {name}: {err}");
            return ExitCode::from(status::EXIT_UNREACHABLE);
        }
    };
    match stacktop::client::operate(&config, &call).await {
        Ok(outcome) => {
            println!("{}", outcome.text());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("stacktop {name}: {} failed: {err}", call.describe());
            let unreachable = err.is_unreachable()
                || matches!(&err, stacktop::Error::Rpc { code, .. }
                    if *code == tonic::Code::DeadlineExceeded);
            ExitCode::from(if unreachable {
                status::EXIT_UNREACHABLE
            } else {
                EXIT_REFUSED
            })
        }
    }
}

async fn status_command(args: StatusArgs, credentials: &Credentials) -> ExitCode {
    init_stderr_logging();
    let config = match credentials.client(&args.collector) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("stacktop status: {err}");
            return ExitCode::from(status::EXIT_UNREACHABLE);
        }
    };
    let fleet = match stacktop::client::snapshot(&config).await {
        Ok(snapshot) => Model::from_snapshot(&args.collector, snapshot),
        Err(err) => {
            eprintln!("stacktop status: {err}");
            return ExitCode::from(status::EXIT_UNREACHABLE);
        }
    };
    if args.json {
        print!("{}", status::to_json(&fleet));
    } else {
        print!(
            "{}",
            status::to_table(&fleet, stacktop_proto::now_unix_ms())
        );
    }
    ExitCode::from(status::exit_code(&fleet, args.fail_on))
}

/// `$XDG_STATE_HOME/stacktop.log`, else `/tmp/stacktop-$USER.log`.
fn default_log_path() -> PathBuf {
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("stacktop.log"),
        None => {
            let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
            std::env::temp_dir().join(format!("stacktop-{user}.log"))
        }
    }
}

fn init_file_logging(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .log_internal_errors(false)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    Ok(())
}
