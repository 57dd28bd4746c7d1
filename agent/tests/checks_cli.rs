//! `stacktop-agent --check` with `[[checks]]`: the resolved checks are
//! listed, and a bad table exits 2 naming file, line and key.

use std::io::Write;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");

fn check(text: &str) -> (Option<i32>, String, String, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    // Without the default MySQL password, whatever the caller's shell has.
    let output = Command::new(BIN)
        .arg("--config")
        .arg(file.path())
        .arg("--check")
        .env_remove("STACKTOP_MYSQL_PASSWORD")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        file.path().display().to_string(),
    )
}

#[test]
fn check_lists_the_configured_checks() {
    let (code, stdout, stderr, _) = check(
        "name = \"lb1\"\n[[checks]]\nkind = \"haproxy\"\nsocket = \"/run/haproxy/admin.sock\"\ninterval = \"2s\"\n\n[[checks]]\nkind = \"dns\"\nquery-name = \"www.stacktop.test\"\nresolver = \"127.0.0.30:5353\"\nexpect = [\"127.0.0.10\"]\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("check: haproxy (haproxy, every 2s, timeout 1s)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("check: dns:www.stacktop.test (dns, every 5s, timeout 2s)\n"),
        "{stdout}"
    );
    let (_, stdout, _, _) = check("name = \"x\"\nroles = [\"db\"]\n");
    assert!(
        stdout.contains("checks: 2, the roles' defaults (no [[checks]])\n"),
        "{stdout}"
    );
}

#[test]
fn check_shows_each_checks_role() {
    let (code, stdout, stderr, _) = check(
        "[[checks]]\nkind = \"haproxy\"\nsocket = \"/run/haproxy/admin.sock\"\n\n[[checks]]\nkind = \"app\"\nurl = \"http://127.0.0.1:8080/health\"\nrole = \"web\"\n\n[[checks]]\nkind = \"tcp\"\naddress = \"127.0.0.21:3306\"\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("check: "))
        .collect();
    assert_eq!(
        lines,
        [
            "check: haproxy (haproxy, every 5s, timeout 2s)",
            "  target: stats socket /run/haproxy/admin.sock",
            "  role: lb (by kind)",
            "  from: [[checks]]",
            "check: app:8080 (app, every 5s, timeout 2s)",
            "  target: http://127.0.0.1:8080/health",
            "  role: web (configured)",
            "  from: [[checks]]",
            "check: tcp:3306 (tcp, every 5s, timeout 2s)",
            "  target: tcp 127.0.0.21:3306",
            "  role: node-wide (by kind)",
            "  from: [[checks]]",
        ]
    );
}

#[test]
fn a_bad_check_exits_2_naming_file_line_and_key() {
    let (code, _, stderr, path) =
        check("name = \"db1\"\n\n[[checks]]\nkind = \"mysql\"\naddress = \"127.0.0.21\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {path}:5:1: field \"address\": ")),
        "{stderr}"
    );
}

#[test]
fn a_check_that_cannot_be_built_fails_check_and_start_alike() {
    let text = "name = \"web1\"\n\n[[checks]]\nkind = \"http\"\nurl = \"https://127.0.0.1:8443/health\"\nca-file = \"/nonexistent/stacktop/ca.pem\"\n";
    let (code, _, stderr, path) = check(text);
    assert_eq!(code, Some(2), "{stderr}");
    let want =
        format!("error: {path}:6:1: field \"ca-file\": CA file \"/nonexistent/stacktop/ca.pem\": ");
    assert!(stderr.starts_with(&want), "{stderr}");

    // Starting the agent with the same file stops at the same place,
    // before it runs anything.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(file.path())
        .args(["--collector", "http://127.0.0.1:9"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent started with a check it cannot build");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let want = format!(
        "error: {}:6:1: field \"ca-file\": CA file \"/nonexistent/stacktop/ca.pem\": ",
        file.path().display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");
}

#[test]
fn check_shows_a_logs_health_check_paths() {
    let (code, stdout, stderr, _) = check(
        "[[logs]]\npath = \"/var/log/nginx/access.log\"\nformat = \"nginx-combined\"\nhealth-check-paths = [\"/health\", \"/ping\"]\n\n[[logs]]\npath = \"/var/log/haproxy.log\"\nformat = \"haproxy-http\"\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "log: /var/log/nginx/access.log (nginx-combined, health checks: /health, /ping)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("log: /var/log/haproxy.log (haproxy-http)\n"),
        "{stdout}"
    );
    // A format without the request line cannot tell health checks apart.
    let (code, _, stderr, path) = check(
        "[[logs]]\npath = \"/x.log\"\nformat = '$msec $status $body_bytes_sent'\nhealth-check-paths = [\"/health\"]\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:4:1: field \"health-check-paths\": "
        )),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_directory_where_a_log_should_be() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr, _) = check(&format!(
        "name = \"web1\"\n[[logs]]\npath = \"{}\"\nformat = \"nginx-combined\"\nsource = \"nginx\"\n",
        dir.path().display()
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&dir.path().display().to_string()) && stderr.contains("directory"),
        "{stderr}"
    );
}

#[test]
fn check_accepts_a_log_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr, _) = check(&format!(
        "name = \"web1\"\n[[logs]]\npath = \"{}/access.log\"\nformat = \"nginx-combined\"\n",
        dir.path().display()
    ));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

/// The `check:` blocks of `--check`'s output, each as its lines.
fn blocks(stdout: &str) -> Vec<Vec<&str>> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("check: ") {
            blocks.push(vec![line]);
        } else if line.starts_with("  ")
            && let Some(block) = blocks.last_mut()
        {
            block.push(line);
        }
    }
    blocks
}

#[test]
fn check_lists_every_role_default_with_its_target_or_what_to_configure() {
    let (code, stdout, stderr, _) = check("roles = [\"web\", \"db\"]\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("checks: 4, the roles' defaults (no [[checks]])\n"),
        "{stdout}"
    );
    let blocks = blocks(&stdout);
    let heads: Vec<&str> = blocks.iter().map(|b| b[0]).collect();
    assert_eq!(
        heads,
        [
            "check: nginx (nginx, every 5s, timeout 2s)",
            "check: process:nginx (process, every 5s, timeout 2s)",
            "check: mysql (mysql, every 5s, timeout 2s)",
            "check: exposure (exposure, every 15s, timeout 2s)",
        ]
    );
    // Guessed endpoints are not probed: they say what to set.
    assert!(
        blocks[0][1].starts_with(
            "  target: not configured: add [[checks]] kind = \"nginx\" with url = your stub_status page (e.g. \"http://127.0.0.1/nginx_status\") and role-defaults = true;"
        ),
        "{stdout}"
    );
    assert!(blocks[0][1].ends_with("(reports unknown)"), "{stdout}");
    assert_eq!(blocks[0][3], "  from: default of role web");
    assert_eq!(blocks[1][1], "  target: process nginx");
    assert!(
        blocks[2][1].starts_with("  target: not configured: STACKTOP_MYSQL_PASSWORD is not set"),
        "{stdout}"
    );
    assert_eq!(
        blocks[3][1],
        "  target: listening sockets beyond loopback; allowed: 22, 80, 443, 3306"
    );
    assert_eq!(blocks[3][3], "  from: default of every node");
    assert!(
        stdout.contains("2 not configured: they report unknown until their endpoint is set"),
        "{stdout}"
    );
}

#[test]
fn check_probes_the_default_mysql_once_its_password_is_set() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"roles = [\"db\"]\n").unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(file.path())
        .arg("--check")
        .env("STACKTOP_MYSQL_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "check: mysql (mysql, every 5s, timeout 2s)\n  target: mysql 127.0.0.1:3306 as stacktop, password from $STACKTOP_MYSQL_PASSWORD\n"
        ),
        "{stdout}"
    );
}

#[test]
fn role_defaults_true_keeps_the_defaults_beside_the_tables() {
    let (code, stdout, stderr, _) = check(
        "roles = [\"web\"]\nrole-defaults = true\n\n[[checks]]\nkind = \"nginx\"\nurl = \"http://127.0.0.1:8080/nginx_status\"\n\n[[checks]]\nkind = \"http\"\nurl = \"http://127.0.0.1/healthz\"\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("checks: 4, [[checks]] and the roles' defaults (role-defaults = true)\n"),
        "{stdout}"
    );
    let got: Vec<(String, &str)> = blocks(&stdout)
        .iter()
        .map(|b| (b[0].to_string(), *b.last().unwrap()))
        .collect();
    let want = [
        (
            "check: nginx (nginx, every 5s, timeout 2s)",
            "  from: [[checks]]",
        ),
        (
            "check: http:/healthz (http, every 5s, timeout 2s)",
            "  from: [[checks]]",
        ),
        (
            "check: process:nginx (process, every 5s, timeout 2s)",
            "  from: default of role web",
        ),
        (
            "check: exposure (exposure, every 15s, timeout 2s)",
            "  from: default of every node",
        ),
    ];
    let want: Vec<(String, &str)> = want.iter().map(|(h, f)| (h.to_string(), *f)).collect();
    assert_eq!(got, want, "{stdout}");
    assert!(!stdout.contains("not configured"), "{stdout}");

    // Without the key the tables are the whole list, and --check says how
    // to get the defaults back.
    let (_, stdout, _, _) = check(
        "roles = [\"web\"]\n[[checks]]\nkind = \"http\"\nurl = \"http://127.0.0.1/healthz\"\n",
    );
    assert!(
        stdout.contains(
            "checks: 1, [[checks]] only (role-defaults = true would add the roles' defaults)\n"
        ),
        "{stdout}"
    );
}

#[test]
fn check_warns_about_a_mysql_login_without_a_password() {
    let (code, stdout, stderr, _) = check(
        "[[checks]]\nkind = \"mysql\"\nsocket = \"/run/mysqld/mysqld.sock\"\nuser = \"stacktop-agent\"\n\n[[checks]]\nkind = \"mysql\"\nname = \"replica\"\naddress = \"127.0.0.22:3306\"\npassword-env = \"STACKTOP_TEST_UNSET_PASSWORD\"\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("  target: mysql socket /run/mysqld/mysqld.sock as stacktop-agent, no password (unix_socket; $STACKTOP_MYSQL_PASSWORD when set)\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: check \"mysql\": no password: logs in as \"stacktop-agent\" through /run/mysqld/mysqld.sock with unix_socket authentication"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: check \"replica\": password-env \"STACKTOP_TEST_UNSET_PASSWORD\" is not set here"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_mysql_check_without_credentials() {
    let (code, _, stderr, path) =
        check("name = \"db1\"\n\n[[checks]]\nkind = \"mysql\"\naddress = \"127.0.0.21:3306\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:3:1: field \"password\": a mysql check over TCP needs a password"
        )),
        "{stderr}"
    );
}
