//! The `stacktop` binary: parse the command line, send logs to a file, and
//! run the dashboard or `stacktop status`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use stacktop::cli::{Cli, Command, StatusArgs};
use stacktop::model::Model;
use stacktop::status;
use stacktop_proto::transport::ClientConfig;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Status(args)) => status_command(args).await,
        None => match dashboard(cli.collector, cli.log_file).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("stacktop: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn dashboard(collector: Option<String>, log_file: Option<PathBuf>) -> anyhow::Result<()> {
    let path = log_file.unwrap_or_else(default_log_path);
    init_file_logging(&path).with_context(|| format!("opening log file {}", path.display()))?;
    let shutdown = CancellationToken::new();
    stacktop::run(stacktop::Options { collector }, shutdown).await?;
    Ok(())
}

async fn status_command(args: StatusArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A failed write to a closed stderr must not panic (the default
        // reports it with eprintln!).
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let config = ClientConfig::new(&args.collector);
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
