//! `stacktop-agent --check` with `[[checks]]`: the resolved checks are
//! listed, and a bad table exits 2 naming file, line and key.

use std::io::Write;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");

fn check(text: &str) -> (Option<i32>, String, String, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(file.path())
        .arg("--check")
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
    let (_, stdout, _, _) = check("name = \"x\"\n");
    assert!(stdout.contains("checks: the roles' defaults"), "{stdout}");
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
            "  role: lb (by kind)",
            "check: app:127.0.0.1:8080/health (app, every 5s, timeout 2s)",
            "  role: web (configured)",
            "check: tcp:127.0.0.21:3306 (tcp, every 5s, timeout 2s)",
            "  role: node-wide (by kind)",
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
