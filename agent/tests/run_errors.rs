//! `stacktop_agent::run` refuses an unusable configuration with a typed
//! [`stacktop_agent::Error`] whose message names what is wrong, and it
//! does so before starting anything: it returns without being shut down.

use std::time::Duration;

use stacktop_agent::checks::tls::TlsSpec;
use stacktop_agent::checks::{CheckSpec, Spec};
use stacktop_agent::logs::LogSourceConfig;
use stacktop_agent::{CancellationToken, Config, Error, Role};

/// Runs the agent with `config` and a token nobody cancels: only an error
/// can end it.
async fn refused(config: Config) -> Error {
    let never = CancellationToken::new();
    tokio::time::timeout(Duration::from_secs(20), stacktop_agent::run(config, never))
        .await
        .expect("run returns at once with an error")
        .expect_err("the configuration is refused")
}

fn config() -> Config {
    Config {
        name: Some("web1".into()),
        roles: vec![Role::Web],
        // Nothing listens there; nothing should try.
        collectors: vec!["http://127.0.0.1:9".into()],
        checks: Some(Vec::new()),
        ..Config::default()
    }
}

#[tokio::test]
async fn a_zero_interval_is_refused() {
    let err = refused(Config {
        interval: Duration::ZERO,
        ..config()
    })
    .await;
    assert!(matches!(err, Error::ZeroInterval), "{err:?}");
    assert!(err.is_config());
}

#[tokio::test]
async fn a_collector_address_is_refused_quoting_it() {
    let err = refused(Config {
        collectors: vec!["ftp://10.0.0.5:7411".into()],
        ..config()
    })
    .await;
    assert!(matches!(err, Error::Collector { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "collector address \"ftp://10.0.0.5:7411\": must start with https:// or http://"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_check_that_cannot_be_built_is_refused_naming_check_and_key() {
    let err = refused(Config {
        checks: Some(vec![CheckSpec::Tls(Spec::new(TlsSpec {
            address: "127.0.0.1:443".into(),
            ca_file: Some("/nonexistent/stacktop/ca.pem".into()),
            ..TlsSpec::default()
        }))]),
        ..config()
    })
    .await;
    let Error::Check { error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (error.name.as_str(), error.error.field),
        ("tls:127.0.0.1", "ca-file")
    );
    assert!(
        err.to_string().starts_with(
            "check \"tls:127.0.0.1\" (tls): field \"ca-file\": CA file \"/nonexistent/stacktop/ca.pem\": "
        ),
        "{err}"
    );
    assert!(err.is_config());
}

#[tokio::test]
async fn a_log_with_an_unknown_format_is_refused_naming_the_log() {
    let err = refused(Config {
        logs: vec![LogSourceConfig {
            path: "/var/log/nginx/access.log".into(),
            format: "apache".into(),
            source: None,
            grace: None,
            utc_offset: None,
            health_check_paths: Vec::new(),
        }],
        ..config()
    })
    .await;
    assert!(matches!(err, Error::Log { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot follow access log /var/log/nginx/access.log: ")
            && text.contains("\"apache\""),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreadable_log_costs_that_log_not_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let config = Config {
        logs: vec![LogSourceConfig {
            // A directory where the log should be: it cannot be read.
            path: dir.path().to_path_buf(),
            format: "nginx-combined".into(),
            source: Some("nginx".into()),
            grace: None,
            utc_offset: None,
            health_check_paths: Vec::new(),
        }],
        ..config()
    };
    let run = tokio::spawn(stacktop_agent::run(config, shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!run.is_finished(), "the agent stopped: {:?}", run.await);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .expect("a clean stop");
}
