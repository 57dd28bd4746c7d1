//! The check plan: every check one agent runs, resolved from its
//! `[[checks]]` tables, its `role-defaults` key and its roles (configured
//! or detected), with where each comes from and which role defaults are
//! not configured. [`crate::run`] builds the plan into running checks and
//! `stacktop-agent --check` prints it ([`Planned::describe`]), so what the
//! check lists is what the agent runs.
//!
//! # Which checks run
//!
//! - No `[[checks]]`: the roles' defaults
//!   ([`crate::checks::defaults_for_roles`]).
//! - `[[checks]]`: exactly those tables, unless `role-defaults = true`,
//!   which adds every role default the tables do not already cover. A
//!   default is covered by a table with its name, of its kind (`nginx`,
//!   `haproxy`, `mysql`, `app`, `exposure`: the kinds a node has one of by
//!   default; an `http` table speaking for the app tier covers `app`) or,
//!   for `process`, looking for the same process.
//! - `role-defaults = false`: no role default, even without `[[checks]]`.
//!
//! # Role defaults that are not configured
//!
//! Some role defaults probe an endpoint stacktop can only guess. Probing a
//! guess on a machine that merely runs nginx would report crit, and one
//! crit node is a `down` tier and a `down` site on the newcomer's first
//! screen. So such a default runs only when its endpoint is known, and
//! otherwise reports `unknown` with a message saying what to configure
//! (decided once, when the agent starts):
//!
//! | default | probes when | otherwise reports unknown |
//! |---|---|---|
//! | `nginx` | never by itself: no stub_status page exists until one is configured | `not configured: set url … in a [[checks]] kind = "nginx" table …` |
//! | `app` | never by itself: only the operator knows the app's health URL | `not configured: set url … in a [[checks]] kind = "app" table …` |
//! | `haproxy` | the stats socket of Debian's haproxy.cfg, `/run/haproxy/admin.sock`, accepts the agent's connection | `not configured: stats socket /run/haproxy/admin.sock: permission denied; …` |
//! | `mysql` | `STACKTOP_MYSQL_PASSWORD` is set (the default user's credentials) | `not configured: STACKTOP_MYSQL_PASSWORD is not set; …` |
//! | `process`, `exposure` | always: they need no endpoint | |
//!
//! A not-configured check keeps its name, kind, role and interval. The
//! collector counts an `unknown` node as healthy in its tier
//! (`collector/src/health.rs`), so the tier and the site say `unknown`,
//! never `down`, because of it.

use std::path::Path;

use stacktop_proto::Role;

use crate::checks::{self, BuildError, Check, CheckSpec, Probe, SpecError, exposure, mysql};
use crate::config::Config;

/// The stats socket of Debian's packaged haproxy.cfg, which the `lb`
/// role's default `haproxy` check reads.
pub const HAPROXY_SOCKET: &str = "/run/haproxy/admin.sock";

/// Where a planned check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `[[checks]]` table of the config.
    Table,
    /// The default of a role ([`Role::Unspecified`]: of every node, i.e.
    /// `exposure`).
    RoleDefault(Role),
}

/// One check of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Its spec (for a not-configured default: the conventional endpoint,
    /// which is only shown as an example).
    pub spec: CheckSpec,
    /// Where it comes from.
    pub origin: Origin,
    /// For a role default whose endpoint is not configured: the message it
    /// reports as `unknown` instead of probing.
    pub not_configured: Option<String>,
}

/// What the plan needs to know about this machine: whether the guessed
/// endpoints of the role defaults are there. Read once by
/// [`Machine::read`]; tests make their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `STACKTOP_MYSQL_PASSWORD` is set.
    pub mysql_password: bool,
    /// Whether [`HAPROXY_SOCKET`] accepts a connection: `Err` says why not
    /// ("not found", "permission denied").
    pub haproxy_socket: Result<(), String>,
}

impl Machine {
    /// Reads the environment, and connects to the HAProxy stats socket
    /// (and closes it unused) when `roles` include `lb`.
    pub fn read(roles: &[Role]) -> Self {
        let haproxy_socket = if roles.contains(&Role::Lb) {
            socket_usable(Path::new(HAPROXY_SOCKET))
        } else {
            Err("not read".into())
        };
        Self {
            mysql_password: std::env::var_os(mysql::DEFAULT_PASSWORD_ENV).is_some(),
            haproxy_socket,
        }
    }
}

/// Whether a Unix socket accepts this process's connection (connect
/// needs write permission on it, which is what a stats read needs too).
pub fn socket_usable(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect(path)
            .map(drop)
            .map_err(|e| checks::io_words(&e))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Err("no Unix sockets here".into())
    }
}

/// The plan of `config` on a node with `roles`, reading this machine.
pub fn plan(config: &Config, roles: &[Role]) -> Vec<Planned> {
    plan_on(config, roles, &Machine::read(roles))
}

/// The plan of `config` on a node with `roles` on `machine` (see the
/// module docs).
pub fn plan_on(config: &Config, roles: &[Role], machine: &Machine) -> Vec<Planned> {
    let tables = config.checks.as_deref().unwrap_or_default();
    let mut planned: Vec<Planned> = tables
        .iter()
        .map(|spec| Planned {
            spec: spec.clone(),
            origin: Origin::Table,
            not_configured: None,
        })
        .collect();
    if config.role_defaults.unwrap_or(config.checks.is_none()) {
        for spec in checks::defaults_for_roles(roles) {
            if tables.iter().any(|table| covers(table, &spec)) {
                continue;
            }
            let role = spec.role().unwrap_or(Role::Unspecified);
            planned.push(Planned {
                not_configured: not_configured(&spec, machine),
                origin: Origin::RoleDefault(role),
                spec,
            });
        }
    }
    planned
}

/// Whether the configured `table` stands in for the role default `default`.
fn covers(table: &CheckSpec, default: &CheckSpec) -> bool {
    if table.name() == default.name() {
        return true;
    }
    match (table, default) {
        (CheckSpec::Process(t), CheckSpec::Process(d)) => {
            t.settings.process_name == d.settings.process_name
        }
        (CheckSpec::Process(_), _) => false,
        // An `http` check of the app tier is the app's health check too.
        (CheckSpec::Http(_), CheckSpec::App(_)) => table.role().is_ok_and(|r| r == Role::App),
        _ => table.kind() == default.kind(),
    }
}

/// Where a role default's README help is.
const SEE: &str = "see README \"Role defaults\"";

/// Why the role default `spec` cannot probe on `machine`, or `None` when it
/// can (see the module docs' table).
fn not_configured(spec: &CheckSpec, machine: &Machine) -> Option<String> {
    match spec {
        CheckSpec::Nginx(s) => Some(format!(
            "not configured: add [[checks]] kind = \"nginx\" with url = your stub_status \
             page (e.g. {:?}) and role-defaults = true; {SEE}",
            s.settings.url
        )),
        CheckSpec::App(s) => Some(format!(
            "not configured: add [[checks]] kind = \"app\" with url = your app's health \
             page (e.g. {:?}) and role-defaults = true; {SEE}",
            s.settings.url
        )),
        CheckSpec::Haproxy(_) => machine.haproxy_socket.as_ref().err().map(|why| {
            // Debian's socket is mode 660, group haproxy.
            let fix = if why == "permission denied" {
                "run the agent in group haproxy (SupplementaryGroups=haproxy), or add"
            } else {
                "add"
            };
            format!(
                "not configured: stats socket {HAPROXY_SOCKET}: {why}; {fix} [[checks]] \
                 kind = \"haproxy\" with socket or url and role-defaults = true; {SEE}"
            )
        }),
        CheckSpec::Mysql(_) if !machine.mysql_password => Some(format!(
            "not configured: {} is not set (the password of MySQL user {:?}); set it, or \
             add [[checks]] kind = \"mysql\" with your credentials and role-defaults = true; \
             {SEE}",
            mysql::DEFAULT_PASSWORD_ENV,
            mysql::DEFAULT_USER
        )),
        _ => None,
    }
}

/// Builds the plan into runnable checks: a not-configured default into a
/// check that reports its message as `unknown`, every other spec with
/// [`CheckSpec::build`] (`roles` fill in the exposure allow-list).
pub fn build(plan: &[Planned], roles: &[Role]) -> Result<Vec<Check>, BuildError> {
    plan.iter()
        .map(|planned| {
            let spec = &planned.spec;
            let failed = |error: SpecError| BuildError {
                name: spec.name(),
                kind: spec.kind(),
                error,
            };
            match &planned.not_configured {
                Some(message) => Ok(Check {
                    name: spec.name(),
                    kind: spec.kind(),
                    role: spec.role().map_err(failed)?,
                    interval: spec.interval(),
                    timeout: spec.timeout(),
                    probe: Probe::NotConfigured(message.clone()),
                }),
                None => spec.build(roles).map_err(failed),
            }
        })
        .collect()
}

/// What a spec probes, in words: the URL, socket, address or process.
/// `roles` give the exposure check's default allow-list.
pub fn target(spec: &CheckSpec, roles: &[Role]) -> String {
    match spec {
        CheckSpec::Http(s) | CheckSpec::App(s) => s.settings.url.clone(),
        CheckSpec::Nginx(s) => s.settings.url.clone(),
        CheckSpec::Tcp(s) => format!("tcp {}", s.settings.address),
        CheckSpec::Tls(s) => match &s.settings.server_name {
            Some(name) => format!("tls {} (as {name})", s.settings.address),
            None => format!("tls {}", s.settings.address),
        },
        CheckSpec::Process(s) => format!("process {}", s.settings.process_name),
        CheckSpec::Dns(s) => format!("dns {} via {}", s.settings.query_name, s.settings.resolver),
        CheckSpec::Exposure(s) => {
            let allowed: Vec<String> = match &s.settings.allow {
                Some(entries) => entries
                    .iter()
                    .map(|e| match e {
                        exposure::AllowEntry::Port(p) => p.to_string(),
                        exposure::AllowEntry::Text(t) => t.clone(),
                    })
                    .collect(),
                None => exposure::default_allow(roles)
                    .iter()
                    .map(|a| a.port.to_string())
                    .collect(),
            };
            format!(
                "listening sockets beyond loopback; allowed: {}",
                allowed.join(", ")
            )
        }
        CheckSpec::Haproxy(s) => match (&s.settings.socket, &s.settings.url) {
            (Some(socket), _) => format!("stats socket {socket}"),
            (None, Some(url)) => url.clone(),
            (None, None) => "(no socket or url)".into(),
        },
        CheckSpec::Mysql(s) => {
            let m = &s.settings;
            let at = match (&m.socket, &m.address) {
                (Some(socket), _) => format!("socket {socket}"),
                (None, Some(address)) => address.clone(),
                (None, None) => "127.0.0.1:3306".into(),
            };
            let password = match (&m.password, &m.password_file, &m.password_env) {
                (Some(_), _, _) => "password in the config".to_string(),
                (_, Some(file), _) => format!("password from {file}"),
                (_, _, Some(var)) => format!("password from ${var}"),
                (None, None, None) => format!(
                    "no password (unix_socket; ${} when set)",
                    mysql::DEFAULT_PASSWORD_ENV
                ),
            };
            format!(
                "mysql {at} as {}, {password}",
                m.user.as_deref().unwrap_or(mysql::DEFAULT_USER)
            )
        }
    }
}

impl Planned {
    /// The lines `--check` prints for this check: its name, kind and
    /// schedule, then its target (or why it is not configured), the role
    /// it speaks for, and where it comes from.
    pub fn describe(&self, roles: &[Role]) -> Vec<String> {
        let spec = &self.spec;
        let mut lines = vec![format!(
            "check: {} ({}, every {}, timeout {})",
            spec.name(),
            spec.kind(),
            humantime::format_duration(spec.interval()),
            humantime::format_duration(spec.timeout())
        )];
        lines.push(match &self.not_configured {
            Some(why) => format!("  target: {why} (reports unknown)"),
            None => format!("  target: {}", target(spec, roles)),
        });
        // Loading checked the role, so the error is never printed.
        let role = match spec.role() {
            Ok(Role::Unspecified) => "node-wide".to_string(),
            Ok(role) => role.to_string(),
            Err(err) => err.to_string(),
        };
        let source = if spec.common().role.is_some() {
            "configured"
        } else {
            "by kind"
        };
        lines.push(format!("  role: {role} ({source})"));
        lines.push(match self.origin {
            Origin::Table => "  from: [[checks]]".to_string(),
            Origin::RoleDefault(Role::Unspecified) => "  from: default of every node".to_string(),
            Origin::RoleDefault(role) => format!("  from: default of role {role}"),
        });
        lines
    }

    /// A warning `--check` prints about this check, when its config is
    /// valid but it may still fail: a mysql check's credentials (see
    /// [`mysql::MysqlSpec::credential_warning`]).
    pub fn warning(&self) -> Option<String> {
        match (&self.spec, &self.not_configured) {
            (CheckSpec::Mysql(s), None) => s
                .settings
                .credential_warning()
                .map(|w| format!("check {:?}: {w}", self.spec.name())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine without the default socket or password.
    fn bare() -> Machine {
        Machine {
            mysql_password: false,
            haproxy_socket: Err("not found".into()),
        }
    }

    fn names(plan: &[Planned]) -> Vec<(String, bool)> {
        plan.iter()
            .map(|p| (p.spec.name(), p.not_configured.is_some()))
            .collect()
    }

    fn config(text: &str) -> Config {
        crate::config::parse_str(Path::new("agent.toml"), text).unwrap()
    }

    #[test]
    fn guessed_endpoints_are_not_configured() {
        let roles = [Role::Lb, Role::Web, Role::App, Role::Db];
        let plan = plan_on(&Config::default(), &roles, &bare());
        let got = names(&plan);
        let want = [
            ("haproxy", true),
            ("process:haproxy", false),
            ("nginx", true),
            ("process:nginx", false),
            ("app:8080", true),
            ("mysql", true),
            ("exposure", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        assert_eq!(got, want);
        assert_eq!(
            plan[0].not_configured.as_deref().unwrap(),
            "not configured: stats socket /run/haproxy/admin.sock: not found; add [[checks]] \
             kind = \"haproxy\" with socket or url and role-defaults = true; see README \
             \"Role defaults\""
        );
        let denied = Machine {
            haproxy_socket: Err("permission denied".into()),
            ..bare()
        };
        let plan_denied = plan_on(&Config::default(), &[Role::Lb], &denied);
        let message = plan_denied[0].not_configured.as_deref().unwrap();
        assert!(
            message.contains("permission denied; run the agent in group haproxy"),
            "{message}"
        );
        let message = plan[2].not_configured.as_deref().unwrap();
        assert!(
            message.starts_with("not configured: add [[checks]] kind = \"nginx\" with url = "),
            "{message}"
        );
        // With the socket there and the password set, both probe.
        let ready = Machine {
            mysql_password: true,
            haproxy_socket: Ok(()),
        };
        let plan = plan_on(&Config::default(), &roles, &ready);
        let unconfigured: Vec<String> = plan
            .iter()
            .filter(|p| p.not_configured.is_some())
            .map(|p| p.spec.name())
            .collect();
        assert_eq!(unconfigured, ["nginx", "app:8080"]);
    }

    #[tokio::test]
    async fn a_not_configured_check_reports_unknown_and_keeps_its_role() {
        let plan = plan_on(&Config::default(), &[Role::Db], &bare());
        let mut checks = build(&plan, &[Role::Db]).unwrap();
        let mysql = &mut checks[0];
        assert_eq!((mysql.name.as_str(), mysql.role), ("mysql", Role::Db));
        let obs = mysql.run_once().await;
        let Some(crate::observe::Observation::Check(result)) = obs.last() else {
            panic!("{obs:?}")
        };
        assert_eq!(result.status, stacktop_proto::Health::Unknown as i32);
        assert!(
            result
                .message
                .starts_with("not configured: STACKTOP_MYSQL_PASSWORD is not set"),
            "{}",
            result.message
        );
        assert_eq!(result.role, Role::Db as i32);
    }

    #[test]
    fn tables_replace_the_defaults_unless_role_defaults_is_set() {
        let tables = "[[checks]]\nkind = \"nginx\"\nurl = \"http://127.0.0.1:8080/status\"\n";
        let plan = plan_on(&config(tables), &[Role::Web], &bare());
        assert_eq!(names(&plan), [("nginx".to_string(), false)]);

        let kept = plan_on(
            &config(&format!("role-defaults = true\n{tables}")),
            &[Role::Web],
            &bare(),
        );
        // The table stands in for the nginx default; the others stay.
        assert_eq!(
            names(&kept),
            [
                ("nginx".to_string(), false),
                ("process:nginx".to_string(), false),
                ("exposure".to_string(), false)
            ]
        );
        assert_eq!(kept[0].origin, Origin::Table);
        assert_eq!(kept[1].origin, Origin::RoleDefault(Role::Web));
        assert_eq!(kept[2].origin, Origin::RoleDefault(Role::Unspecified));

        // A process table for nginx stands in for the default one, and
        // role-defaults = false runs nothing at all.
        let text = "role-defaults = true\n[[checks]]\nkind = \"process\"\nname = \"nginx-up\"\nprocess-name = \"nginx\"\n";
        let plan = plan_on(&config(text), &[Role::Web], &bare());
        let got: Vec<String> = plan.iter().map(|p| p.spec.name()).collect();
        assert_eq!(got, ["nginx-up", "nginx", "exposure"]);
        assert!(plan_on(&config("role-defaults = false\n"), &[Role::Web], &bare()).is_empty());

        // An http check of the app tier stands in for the app default; one
        // configured for another tier does not.
        let text = "role-defaults = true\n[[checks]]\nkind = \"http\"\nurl = \"http://127.0.0.1:9000/health\"\n";
        let plan = plan_on(&config(text), &[Role::App], &bare());
        let got: Vec<String> = plan.iter().map(|p| p.spec.name()).collect();
        assert_eq!(got, ["http:9000/health", "exposure"]);
        let plan = plan_on(
            &config(&format!("{text}role = \"web\"\n")),
            &[Role::App],
            &bare(),
        );
        let got: Vec<String> = plan.iter().map(|p| p.spec.name()).collect();
        assert_eq!(got, ["http:9000/health", "app:8080", "exposure"]);
    }

    #[test]
    fn describe_names_target_role_and_origin() {
        let plan = plan_on(&Config::default(), &[Role::Web], &bare());
        let lines: Vec<String> = plan
            .iter()
            .skip(1)
            .flat_map(|p| p.describe(&[Role::Web]))
            .collect();
        assert_eq!(
            lines,
            [
                "check: process:nginx (process, every 5s, timeout 2s)",
                "  target: process nginx",
                "  role: web (by kind)",
                "  from: default of role web",
                "check: exposure (exposure, every 15s, timeout 2s)",
                "  target: listening sockets beyond loopback; allowed: 22, 80, 443",
                "  role: node-wide (by kind)",
                "  from: default of every node",
            ]
        );
        assert!(
            plan[0].describe(&[Role::Web])[1]
                .starts_with("  target: not configured: add [[checks]]"),
        );
    }

    #[test]
    fn a_socket_that_refuses_is_not_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        assert_eq!(socket_usable(&path), Err("not found".into()));
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(socket_usable(&path), Ok(()));
    }
}
