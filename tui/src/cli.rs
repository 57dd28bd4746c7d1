//! The command line, as clap derive structs. Doc comments are the help
//! text; `tests/cli.rs` snapshots it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::status::FailOn;

/// The collector address `stacktop status` asks when given none.
pub const DEFAULT_STATUS_COLLECTOR: &str = "http://127.0.0.1:7411";

/// stacktop: your web stack (load balancer, web, app, database) by tier, live.
///
/// Without --collector, stacktop starts a collector and an agent inside
/// itself and shows this machine (unless built without the `embedded`
/// feature: then --collector is required).
#[derive(Debug, Parser)]
#[command(name = "stacktop", version)]
pub struct Cli {
    /// Collector to watch, e.g. http://10.0.0.5:7411 [default: an embedded
    /// collector and agent watching this machine]
    #[arg(long, value_name = "URL")]
    pub collector: Option<String>,

    /// Where logs go (never the terminal being drawn on) [default:
    /// $XDG_STATE_HOME/stacktop.log, else /tmp/stacktop-$USER.log]
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// What to do instead of the dashboard.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the fleet once and exit: 0 if all is well, 1 if a node is down
    /// or the site is crit or down (see --fail-on), 2 if the collector
    /// cannot be reached or answers with an error
    Status(StatusArgs),
}

/// Options of `stacktop status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,

    /// Print JSON for scripts instead of a table
    #[arg(long)]
    pub json: bool,

    /// When to exit 1: `down` (a node or the site is down), `crit` (also
    /// when the site is crit), `warn` (also when it is warn), `never`
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = FailOn::Crit)]
    pub fail_on: FailOn,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
