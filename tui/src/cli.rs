//! The command line, as clap derive structs. Doc comments are the help
//! text; `tests/cli.rs` snapshots it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use stacktop_proto::Role;
use stacktop_proto::transport::{ClientConfig, ClientTls, Token, TransportError};
use stacktop_proto::v1::Matcher;

use crate::operator::{self, OperatorCall, Target, Until};
use crate::status::FailOn;

/// The collector address `stacktop status` (and every other subcommand)
/// asks when given none.
pub const DEFAULT_STATUS_COLLECTOR: &str = "http://127.0.0.1:7411";

/// How to prove who we are to a collector and whom to trust: the same
/// flags for the dashboard and every subcommand (before or after the
/// subcommand's name).
#[derive(Debug, Clone, Default, Args)]
pub struct Credentials {
    /// PEM CA to verify an https:// collector against [default: the web
    /// PKI roots]
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,

    /// File holding the bearer token to send (a viewer token reads the
    /// fleet; ack, silence and maintenance need an operator token)
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// PEM client certificate, for a collector that wants one from
    /// dashboards too (with --tls-key)
    #[arg(long, value_name = "FILE", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Credentials {
    /// The client config for `url` with these files (the token is read
    /// now; the TLS files at each dial).
    pub fn client(&self, url: impl Into<String>) -> Result<ClientConfig, TransportError> {
        let token = self
            .token_file
            .as_deref()
            .map(|path| Token::from_file("--token-file", path))
            .transpose()?;
        Ok(ClientConfig::new(url)
            .with_tls(ClientTls {
                ca_file: self.ca_file.clone(),
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
            })
            .with_token(token))
    }
}

/// stacktop: your web stack (load balancer, web, app, database) by tier, live.
///
/// Without --collector, stacktop starts a collector and an agent inside
/// itself and shows this machine (unless built without the `embedded`
/// feature: then --collector is required).
#[derive(Debug, Parser)]
#[command(name = "stacktop", version)]
pub struct Cli {
    /// Collector to watch, e.g. http://10.0.0.5:7411; repeat it to watch
    /// several as one fleet (merged by node name: the newest report of a
    /// node wins, and a node only a disconnected collector reports is shown
    /// unknown) [default: an embedded collector and agent watching this
    /// machine]
    #[arg(long = "collector", value_name = "URL")]
    pub collectors: Vec<String>,

    /// Where logs go (never the terminal being drawn on) [default:
    /// $XDG_STATE_HOME/stacktop.log, else /tmp/stacktop-$USER.log]
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// TLS and token files, for the dashboard (every collector it watches)
    /// and every subcommand.
    #[command(flatten)]
    pub credentials: Credentials,

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
    /// Print the alerts (firing, pending, recently resolved), silences and
    /// maintenance windows, and exit: 0 if nothing fires, 1 if an alert
    /// fires, 2 if the collector cannot be reached or answers with an error
    Alerts(AlertsArgs),
    /// Acknowledge an alert: no more repeat notifications for it
    ///
    /// Prints what was done. Exit code: 0 done, 1 the collector refused
    /// (e.g. no such alert; its message goes to stderr), 2 it cannot be
    /// reached. A collector with
    /// operator-tokens-file needs --token-file with an operator token; the
    /// call says who you are as $USER@hostname.
    Ack(AckArgs),
    /// Silence the alerts matching every --match, for a while or until they
    /// resolve: they are not notified
    ///
    /// Prints the new silence's id (for `stacktop unsilence`). Exit code: 0
    /// done, 1 the collector refused (its message goes to stderr), 2 it
    /// cannot be reached. A collector with operator-tokens-file needs
    /// --token-file with an operator token.
    Silence(SilenceArgs),
    /// End a silence now
    ///
    /// Exit code: 0 done, 1 the collector refused (e.g. no such silence),
    /// 2 it cannot be reached.
    Unsilence(UnsilenceArgs),
    /// Forget a node that no longer exists: it leaves the fleet, with its
    /// history and alerts, and a collector restart does not bring it back
    /// (it is new again if it ever reports)
    ///
    /// Refused while the node's agent is connected. Exit code: 0 done, 1
    /// the collector refused (its message goes to stderr), 2 it cannot be
    /// reached.
    Forget(ForgetArgs),
    /// Put a node or a tier in maintenance for a while (its alerts are held,
    /// not notified), or end a maintenance window
    ///
    /// `stacktop maintenance web2 --for 30m`, `stacktop maintenance --tier
    /// web --for 1h`, `stacktop maintenance --end ID`. Prints the window's
    /// id. Exit code: 0 done, 1 the collector refused (e.g. no such node;
    /// its message goes to stderr), 2 it cannot be reached. A collector
    /// with operator-tokens-file needs --token-file with an operator token.
    Maintenance(MaintenanceArgs),
}

/// Options of `stacktop alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,

    /// Print JSON for scripts instead of a table: {"alerts": [{"id", "rule",
    /// "node", "severity", "state", "since_unix_ms", "summary", "labels",
    /// "acknowledged", "silenced", "root"}]}
    #[arg(long)]
    pub json: bool,
}

/// Options of `stacktop ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The alert's id (see `stacktop alerts`)
    #[arg(value_name = "ALERT_ID")]
    pub alert_id: String,

    /// Why, or what is being done about it
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,
}

/// Options of `stacktop silence`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("how_long").required(true).args(["duration", "until_resolved"])))]
pub struct SilenceArgs {
    /// Silence alerts whose label NAME is VALUE (`node` and `rule` work
    /// too); repeat it to match on several, e.g. --match node=web2 --match
    /// rule=check-failed
    #[arg(long = "match", value_name = "NAME=VALUE", required = true, value_parser = operator::parse_matcher)]
    pub matchers: Vec<Matcher>,

    /// For how long, e.g. 30s, 10m, 1h, 2d
    #[arg(long = "for", value_name = "DURATION", value_parser = operator::parse_duration)]
    pub duration: Option<Duration>,

    /// Until every alert it matches resolved (at least one must match now)
    #[arg(long)]
    pub until_resolved: bool,

    /// Why
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,
}

/// Options of `stacktop forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The node's name
    #[arg(value_name = "NODE")]
    pub node: String,

    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,
}

impl ForgetArgs {
    /// The call these options ask for, made as `by`.
    pub fn call(&self, by: &str) -> OperatorCall {
        OperatorCall::Forget {
            node: self.node.clone(),
            by: by.to_string(),
        }
    }
}

/// Options of `stacktop unsilence`.
#[derive(Debug, Args)]
pub struct UnsilenceArgs {
    /// The silence's id (`stacktop silence` printed it; `stacktop alerts`
    /// lists them)
    #[arg(value_name = "ID")]
    pub id: String,

    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,
}

/// Options of `stacktop maintenance`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["node", "tier", "end"])))]
pub struct MaintenanceArgs {
    /// The node to put in maintenance
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    /// A whole tier instead of one node: lb, web, app or db
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    pub tier: Option<Role>,

    /// For how long, e.g. 30m, 2h, 1d (required with NODE or --tier)
    #[arg(
        long = "for",
        value_name = "DURATION",
        value_parser = operator::parse_duration,
        required_unless_present = "end",
        conflicts_with = "end"
    )]
    pub duration: Option<Duration>,

    /// End maintenance window ID now instead (`stacktop maintenance`
    /// printed it; `stacktop alerts` lists them)
    #[arg(long, value_name = "ID")]
    pub end: Option<String>,

    /// Why
    #[arg(long, value_name = "TEXT", conflicts_with = "end")]
    pub comment: Option<String>,

    /// Collector to ask
    #[arg(long, value_name = "URL", default_value = DEFAULT_STATUS_COLLECTOR)]
    pub collector: String,
}

fn parse_role(text: &str) -> Result<Role, stacktop_proto::UnknownRole> {
    text.parse()
}

impl AckArgs {
    /// The call these options ask for, made as `by`.
    pub fn call(&self, by: &str) -> OperatorCall {
        OperatorCall::Ack {
            alert_id: self.alert_id.clone(),
            comment: self.comment.clone().unwrap_or_default(),
            by: by.to_string(),
        }
    }
}

impl SilenceArgs {
    /// The call these options ask for, made as `by`.
    pub fn call(&self, by: &str) -> OperatorCall {
        OperatorCall::Silence {
            matchers: self.matchers.clone(),
            until: self.duration.map_or(Until::Resolved, Until::For),
            comment: self.comment.clone().unwrap_or_default(),
            by: by.to_string(),
        }
    }
}

impl UnsilenceArgs {
    /// The call these options ask for, made as `by`.
    pub fn call(&self, by: &str) -> OperatorCall {
        OperatorCall::Unsilence {
            id: self.id.clone(),
            by: by.to_string(),
        }
    }
}

impl MaintenanceArgs {
    /// The call these options ask for, made as `by`.
    pub fn call(&self, by: &str) -> OperatorCall {
        if let Some(id) = &self.end {
            return OperatorCall::EndMaintenance {
                id: id.clone(),
                by: by.to_string(),
            };
        }
        let target = match (&self.node, self.tier) {
            (_, Some(role)) => Target::Tier(role),
            (node, None) => Target::Node(node.clone().unwrap_or_default()),
        };
        OperatorCall::StartMaintenance {
            target,
            duration: self.duration.unwrap_or(operator::DEFAULT_MAINTENANCE),
            comment: self.comment.clone().unwrap_or_default(),
            by: by.to_string(),
        }
    }
}

impl Command {
    /// The write call of `ack`, `silence`, `unsilence` and `maintenance`,
    /// made as `by`, and the collector to send it to; `None` for the
    /// others.
    pub fn operator_call(&self, by: &str) -> Option<(OperatorCall, &str)> {
        match self {
            Command::Ack(a) => Some((a.call(by), &a.collector)),
            Command::Silence(a) => Some((a.call(by), &a.collector)),
            Command::Unsilence(a) => Some((a.call(by), &a.collector)),
            Command::Maintenance(a) => Some((a.call(by), &a.collector)),
            Command::Forget(a) => Some((a.call(by), &a.collector)),
            Command::Status(_) | Command::Alerts(_) => None,
        }
    }

    /// The subcommand's name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status(_) => "status",
            Command::Alerts(_) => "alerts",
            Command::Ack(_) => "ack",
            Command::Silence(_) => "silence",
            Command::Unsilence(_) => "unsilence",
            Command::Maintenance(_) => "maintenance",
            Command::Forget(_) => "forget",
        }
    }
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

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let mut all = vec!["stacktop"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|cli| cli.command.unwrap())
    }

    #[test]
    fn silence_needs_a_duration_or_until_resolved_and_a_matcher() {
        let cmd = parse(&["silence", "--match", "node=web2", "--for", "1h"]).unwrap();
        let (call, url) = cmd.operator_call("ann@ws").unwrap();
        assert_eq!(url, DEFAULT_STATUS_COLLECTOR);
        let r = call.silence_request().unwrap();
        assert_eq!((r.duration_ms, r.until_resolved), (3_600_000, false));
        assert!(parse(&["silence", "--match", "node=web2"]).is_err());
        assert!(parse(&["silence", "--for", "1h"]).is_err());
        assert!(
            parse(&[
                "silence",
                "--match",
                "node=web2",
                "--for",
                "1h",
                "--until-resolved"
            ])
            .is_err()
        );
        let err = parse(&["silence", "--match", "web2", "--for", "1h"]).unwrap_err();
        assert!(err.to_string().contains("expected NAME=VALUE"), "{err}");
        let err = parse(&["silence", "--match", "node=a", "--for", "soon"]).unwrap_err();
        assert!(err.to_string().contains("\"soon\""), "{err}");
    }

    #[test]
    fn maintenance_takes_a_node_a_tier_or_an_end() {
        let cmd = parse(&["maintenance", "web2", "--for", "30m"]).unwrap();
        let (call, _) = cmd.operator_call("ann@ws").unwrap();
        assert_eq!(call.maintenance_request().unwrap().node, "web2");
        let cmd = parse(&["maintenance", "--tier", "web", "--for", "1h"]).unwrap();
        let (call, _) = cmd.operator_call("ann@ws").unwrap();
        assert_eq!(call.maintenance_request().unwrap().tier(), Role::Web);
        let cmd = parse(&["maintenance", "--end", "m1"]).unwrap();
        let (call, _) = cmd.operator_call("ann@ws").unwrap();
        assert_eq!(call.end_request().unwrap().id, "m1");
        assert!(
            parse(&["maintenance", "web2"]).is_err(),
            "--for is required"
        );
        assert!(parse(&["maintenance", "--for", "1h"]).is_err(), "what?");
        assert!(parse(&["maintenance", "web2", "--tier", "web", "--for", "1h"]).is_err());
        assert!(parse(&["maintenance", "--end", "m1", "--for", "1h"]).is_err());
        let err = parse(&["maintenance", "--tier", "cache", "--for", "1h"]).unwrap_err();
        assert!(err.to_string().contains("\"cache\""), "{err}");
    }
}
