//! `[[checks]]` in the agent's TOML: every kind parses, and mistakes are
//! reported with file, line and the key at fault.

use std::path::Path;
use std::time::Duration;

use stacktop_agent::Role;
use stacktop_agent::checks::{CheckSpec, build_all, defaults_for_roles};
use stacktop_agent::config::parse_str;

fn err(text: &str) -> String {
    parse_str(Path::new("agent.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn no_checks_table_means_role_defaults() {
    let config = parse_str(Path::new("agent.toml"), "roles = [\"db\"]\n").unwrap();
    assert_eq!(config.checks, None);
    let kinds: Vec<&str> = defaults_for_roles(&config.roles)
        .iter()
        .map(CheckSpec::kind)
        .collect();
    assert_eq!(kinds, ["mysql", "exposure"]);
}

#[test]
fn checks_parse_with_their_common_keys() {
    let config = parse_str(
        Path::new("agent.toml"),
        r#"
roles = ["web", "app"]

[[checks]]
kind = "nginx"
url = "http://127.0.0.11:8080/nginx_status"
interval = "2s"

[[checks]]
kind = "app"
name = "app-health"
url = "http://127.0.0.11:9000/health"
timeout = "1s"
"#,
    )
    .unwrap();
    let checks = config.checks.unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].name(), "nginx");
    assert_eq!(checks[0].interval(), Duration::from_secs(2));
    assert_eq!(checks[0].timeout(), Duration::from_secs(1));
    assert_eq!(checks[1].name(), "app-health");
    assert_eq!(checks[1].kind(), "app");
}

#[test]
fn an_unknown_kind_is_refused_at_its_kind() {
    let e = err("name = \"a\"\n\n[[checks]]\nkind = \"ping\"\naddress = \"a:1\"\n");
    assert!(e.starts_with("agent.toml:4:1: field \"kind\": "), "{e}");
    assert!(e.contains("unknown variant `ping`"), "{e}");
}

#[test]
fn an_unknown_key_is_refused_at_its_line() {
    let e = err(
        "[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\n\n[[checks]]\nkind = \"tcp\"\nadress = \"b:1\"\n",
    );
    assert!(e.starts_with("agent.toml:7:1: field \"adress\": "), "{e}");
    assert!(e.contains("unknown field `adress`"), "{e}");
}

#[test]
fn a_missing_key_points_at_the_header_and_a_wrong_type_at_its_key() {
    let e = err("roles = []\n[[checks]]\nkind = \"tcp\"\n");
    assert!(e.starts_with("agent.toml:2:1: "), "{e}");
    assert!(e.contains("missing field `address`"), "{e}");
    let e = err("[[checks]]\nkind = \"tls\"\naddress = \"a:443\"\nwarn-days = \"soon\"\n");
    assert!(
        e.starts_with("agent.toml:4:1: field \"warn-days\": "),
        "{e}"
    );
}

#[test]
fn a_bad_address_names_its_line_and_key() {
    let e = err("[[checks]]\nkind = \"tcp\"\n  address = \"localhost\"\n");
    assert_eq!(
        e,
        "agent.toml:3:3: field \"address\": address \"localhost\" is not host:port, e.g. \"127.0.0.1:3306\""
    );
    let e = err(
        "[[checks]]\nkind = \"dns\"\nquery-name = \"www.stacktop.test\"\nresolver = \"127.0.0.30\"\n",
    );
    assert!(e.starts_with("agent.toml:4:1: field \"resolver\": "), "{e}");
}

#[test]
fn a_timeout_not_below_the_interval_is_refused() {
    let e =
        err("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\ninterval = \"1s\"\ntimeout = \"2s\"\n");
    assert!(e.starts_with("agent.toml:5:1: field \"timeout\": "), "{e}");
    let e = err("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\ninterval = \"soon\"\n");
    assert!(e.starts_with("agent.toml:4:"), "{e}");
}

#[test]
fn duplicate_names_are_refused() {
    let e = err(
        "[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\n[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\n",
    );
    assert!(e.starts_with("agent.toml:4:"), "{e}");
    assert!(e.contains("used twice"), "{e}");
}

#[test]
fn a_name_used_twice_names_both_tables() {
    // Two app servers' health pages on one port get one default name.
    let e = err(
        "roles = [\"app\"]\n\n[[checks]]\nkind = \"app\"\nurl = \"http://127.0.0.1:8080/health\"\n\n[[checks]]\nkind = \"app\"\nurl = \"http://127.0.0.1:8080/ready\"\n",
    );
    assert_eq!(
        e,
        "agent.toml:7:1: field \"name\": check name \"app:8080\" is used twice: by the [[checks]] table at line 3 and by this one at line 7 (named by default); set name = \"…\" in one of them"
    );
    // A configured name points at its key.
    let e = err(
        "[[checks]]\nkind = \"tcp\"\nname = \"db\"\naddress = \"127.0.0.1:3306\"\n[[checks]]\nkind = \"mysql\"\nname = \"db\"\npassword-env = \"P\"\n",
    );
    assert!(e.starts_with("agent.toml:7:1: field \"name\": check name \"db\" is used twice: by the [[checks]] table at line 1 and by this one at line 5 (named)"), "{e}");
}

#[test]
fn a_mysql_check_over_tcp_needs_a_password() {
    let e = err(
        "name = \"db1\"\n\n[[checks]]\nkind = \"mysql\"\naddress = \"127.0.0.1:3306\"\nuser = \"stacktop\"\n",
    );
    assert!(
        e.starts_with("agent.toml:3:1: field \"password\": a mysql check over TCP needs a password: set password-file (recommended), password-env or password"),
        "{e}"
    );
    let e = err("[[checks]]\nkind = \"mysql\"\npassword = \"\"\n");
    assert!(e.starts_with("agent.toml:3:1: field \"password\": "), "{e}");
    // Any source of a password will do, and a socket needs none
    // (unix_socket authentication).
    for ok in [
        "password-file = \"/etc/stacktop/mysql-password\"",
        "password-env = \"DB_PASSWORD\"",
        "password = \"s3cret\"",
        "socket = \"/run/mysqld/mysqld.sock\"",
    ] {
        parse_str(
            Path::new("agent.toml"),
            &format!("[[checks]]\nkind = \"mysql\"\n{ok}\n"),
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn role_defaults_is_a_boolean_at_the_top_level() {
    let config = parse_str(
        Path::new("agent.toml"),
        "role-defaults = true\n[[checks]]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    assert_eq!(config.role_defaults, Some(true));
    assert_eq!(
        parse_str(Path::new("agent.toml"), "")
            .unwrap()
            .role_defaults,
        None
    );
    let e = err("name = \"a\"\nrole-defaults = \"yes\"\n");
    assert!(
        e.starts_with("agent.toml:2:17: field \"role-defaults\": "),
        "{e}"
    );
    // Inside a check table it is an unknown key of that check.
    let e = err("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\nrole-defaults = true\n");
    assert!(
        e.starts_with("agent.toml:4:1: field \"role-defaults\": "),
        "{e}"
    );
}

#[test]
fn a_check_is_built_at_load_and_a_failure_names_its_key() {
    let e = err(
        "[[checks]]\nkind = \"tls\"\naddress = \"127.0.0.1:443\"\n  ca-file = \"/nonexistent/ca.pem\"\n",
    );
    assert!(
        e.starts_with("agent.toml:4:3: field \"ca-file\": CA file \"/nonexistent/ca.pem\": "),
        "{e}"
    );
    // An empty CA file is no better.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let e = err(&format!(
        "[[checks]]\nkind = \"app\"\nurl = \"https://127.0.0.1:8443/health\"\nca-file = {:?}\n",
        empty.path().display().to_string()
    ));
    assert!(e.starts_with("agent.toml:4:1: field \"ca-file\": "), "{e}");
    assert!(e.contains("no PEM certificate"), "{e}");
}

#[test]
fn role_defaults_build_for_every_role() {
    let roles = [Role::Lb, Role::Web, Role::App, Role::Db];
    let checks = build_all(&defaults_for_roles(&roles), &roles).unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "haproxy",
            "process:haproxy",
            "nginx",
            "process:nginx",
            "app:8080",
            "mysql",
            "exposure"
        ]
    );
}

#[test]
fn a_check_that_cannot_be_built_at_start_is_named() {
    // Built at load, but the CA file vanished before the start.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem"),
        &ca,
    )
    .unwrap();
    let config = parse_str(
        Path::new("agent.toml"),
        &format!(
            "[[checks]]\nkind = \"tls\"\nname = \"site\"\naddress = \"127.0.0.1:443\"\nca-file = {:?}\n",
            ca.display().to_string()
        ),
    )
    .unwrap();
    std::fs::remove_file(&ca).unwrap();
    let err = build_all(config.checks.as_deref().unwrap(), &[]).unwrap_err();
    assert_eq!((err.name.as_str(), err.kind), ("site", "tls"));
    assert_eq!(err.error.field, "ca-file");
    assert!(
        err.to_string()
            .starts_with("check \"site\" (tls): field \"ca-file\": CA file "),
        "{err}"
    );
}

#[test]
fn a_check_speaks_for_its_configured_role_or_its_kinds() {
    let config = parse_str(
        Path::new("agent.toml"),
        r#"
[[checks]]
kind = "http"
url = "http://127.0.0.11:8080/"
role = "web"

[[checks]]
kind = "nginx"
url = "http://127.0.0.11:8080/nginx_status"

[[checks]]
kind = "process"
process-name = "mariadbd"

[[checks]]
kind = "tcp"
address = "127.0.0.21:3306"
"#,
    )
    .unwrap();
    let roles: Vec<Role> = config
        .checks
        .unwrap()
        .iter()
        .map(|c| c.role().unwrap())
        .collect();
    assert_eq!(roles, [Role::Web, Role::Web, Role::Db, Role::Unspecified]);
    let built = build_all(
        &parse_str(
            Path::new("agent.toml"),
            "[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\nrole = \"DB\"\n",
        )
        .unwrap()
        .checks
        .unwrap(),
        &[],
    )
    .unwrap();
    assert_eq!(built[0].role, Role::Db);
}

#[test]
fn a_check_role_that_is_not_a_role_is_refused_at_its_key() {
    let e = err("[[checks]]\nkind = \"tcp\"\naddress = \"a:1\"\nrole = \"cache\"\n");
    assert_eq!(
        e,
        "agent.toml:4:1: field \"role\": unknown role \"cache\": expected one of lb, web, app, db"
    );
}
