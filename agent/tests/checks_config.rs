//! `[[checks]]` in the agent's TOML: every kind parses, and mistakes are
//! reported with file, line and the key at fault.

use std::path::Path;
use std::time::Duration;

use stacktop_agent::checks::{CheckSpec, defaults_for_roles};
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
