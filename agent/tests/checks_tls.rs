//! TLS and HTTPS checks against a real rustls server on 127.0.0.1:0, with
//! a test CA (fixtures/tls: ca.pem signed leaf.pem for localhost and
//! 127.0.0.1, valid until 2035).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use stacktop_agent::checks::http::{HttpProbe, HttpSpec};
use stacktop_agent::checks::tls::{TlsProbe, TlsSpec};
use stacktop_proto::Health;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// An HTTPS server answering `200 OK` / `ok` to every request.
async fn tls_server() -> std::net::SocketAddr {
    let certs = CertificateDer::pem_file_iter(format!("{DIR}/leaf.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{DIR}/leaf.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn ca() -> Option<String> {
    Some(format!("{DIR}/ca.pem"))
}

#[tokio::test]
async fn tls_days_left_with_a_ca_file() {
    let addr = tls_server().await;
    let probe = TlsProbe::from_spec(&TlsSpec {
        address: addr.to_string(),
        server_name: Some("localhost".into()),
        ca_file: ca(),
        ..Default::default()
    })
    .unwrap();
    let out = probe.run().await;
    assert_eq!(out.status, Health::Ok, "{}", out.message);
    assert!(
        out.message
            .starts_with("certificate for localhost expires in ")
            && out.message.ends_with("(2035-02-11)"),
        "{}",
        out.message
    );
    // Thresholds beyond the certificate's life turn it crit.
    let crit = TlsProbe::from_spec(&TlsSpec {
        address: addr.to_string(),
        server_name: Some("localhost".into()),
        ca_file: ca(),
        warn_days: Some(100_000),
        crit_days: Some(90_000),
    })
    .unwrap()
    .run()
    .await;
    assert_eq!(crit.status, Health::Crit, "{}", crit.message);
}

#[tokio::test]
async fn an_untrusted_certificate_is_crit() {
    let addr = tls_server().await;
    let out = TlsProbe::from_spec(&TlsSpec {
        address: addr.to_string(),
        server_name: Some("localhost".into()),
        ..Default::default()
    })
    .unwrap()
    .run()
    .await;
    assert_eq!(out.status, Health::Crit);
    assert!(out.message.starts_with("TLS: "), "{}", out.message);
    assert!(out.message.contains("UnknownIssuer"), "{}", out.message);
}

#[tokio::test]
async fn https_with_a_ca_file_and_an_ip_name() {
    let addr = tls_server().await;
    let out = HttpProbe::from_spec(&HttpSpec {
        url: format!("https://{addr}/health"),
        ca_file: ca(),
        body_contains: Some("ok".into()),
        ..Default::default()
    })
    .unwrap()
    .run()
    .await;
    assert_eq!(out.status, Health::Ok, "{}", out.message);
    assert!(out.message.starts_with("200 OK in "), "{}", out.message);
}
