//! `check_file` on a real file: the library side of `stacktop-agent check-logs`.

use std::io::Write;

use stacktop_agent::logs::check_file;

#[test]
fn checks_a_haproxy_file_with_syslog_prefixes() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let lines = [
        r#"<134>Nov 25 12:00:00 lb1 haproxy[1234]: 127.0.0.1:39622 [25/Nov/2026:12:00:00.120] http-in web/web1 0/0/1/2/3 200 1234 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
        r#"<134>Nov 25 12:00:00 lb1 haproxy[1234]: [::1]:39623 [25/Nov/2026:12:00:00.999] http-in web/web2 0/0/1/2/3 503 0 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1""#,
        r#"<134>Nov 25 12:00:01 lb1 haproxy[1234]: Proxy http-in started."#,
        r#"127.0.0.1:39624 [25/Nov/2026:12:00:01.001] http-in web/web1 0/0/1/2/3 404 10 - - ---- 1/1/0/0/0 0/0 "GET /\xff HTTP/1.1""#,
    ];
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
    let report = check_file("haproxy-http", f.path()).unwrap();
    assert_eq!(
        report.to_json(),
        r#"{"lines":4,"malformed":1,"seconds":[{"unix":1795608000,"requests":2,"2xx":1,"3xx":0,"4xx":0,"5xx":1},{"unix":1795608001,"requests":1,"2xx":0,"3xx":0,"4xx":1,"5xx":0}]}"#
    );
    assert!(report.render_text().contains("line 3:"));
}

#[test]
fn unknown_format_names_the_choices() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let err = check_file("combined", f.path()).unwrap_err().to_string();
    assert!(
        err.contains("\"combined\"") && err.contains("nginx-combined"),
        "{err}"
    );
}
