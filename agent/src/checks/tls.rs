//! TLS: the rustls client configuration shared by `https` checks, and the
//! `tls` check ([`TlsSpec`]), which completes a verified handshake and
//! reports the days left on the server's (leaf) certificate.
//!
//! ```toml
//! [[checks]]
//! kind = "tls"
//! address = "127.0.0.10:443"
//! server-name = "www.example.com"   # default: the address's host
//! warn-days = 14                    # default 14
//! crit-days = 3                     # default 3
//! ca-file = "/etc/ssl/lab-ca.pem"   # default: the web PKI
//! ```
//!
//! Trust comes from the Mozilla roots (webpki-roots, compiled in so the
//! agent does not depend on the host's CA bundle) or, with `ca-file`, from
//! the PEM certificates in that file only (self-signed setups). The crypto
//! provider is ring.
//!
//! Status: ok with more than `warn-days` left, warn below, crit below
//! `crit-days`, expired, or when the handshake fails (an untrusted or
//! mismatched certificate is crit: clients will refuse it too). Message:
//! "certificate for www.example.com expires in 41 days (2027-01-05)".

// Without the `tls` feature only the spec (and the pure judging) is
// built, so the probe's imports go unused.
#![cfg_attr(not(feature = "tls"), allow(unused_imports))]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use stacktop_proto::Health;
use tokio::net::TcpStream;

use super::common::{Outcome, SpecError, SpecResult, io_words, parse_host_port, unix_ms};

/// A TLS handshake and the days left on the server's certificate.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port`.
    pub address: String,
    /// SNI and verification name (default: the address's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Warn when fewer days are left (default 14).
    #[serde(default)]
    pub warn_days: Option<u32>,
    /// Crit when fewer days are left (default 3).
    #[serde(default)]
    pub crit_days: Option<u32>,
    /// PEM file of CA certificates to trust instead of the web PKI.
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl TlsSpec {
    /// (warn, crit) days, with defaults.
    pub fn days(&self) -> (u32, u32) {
        (self.warn_days.unwrap_or(14), self.crit_days.unwrap_or(3))
    }

    /// The name of a check with no configured one: `tls:HOST` for port
    /// 443, `tls:HOST:PORT` otherwise (the host stays: a certificate is
    /// about a name).
    pub fn default_name(&self) -> String {
        let address = self.address.strip_suffix(":443").unwrap_or(&self.address);
        format!("tls:{address}")
    }
}

/// A rustls client config trusting `ca_file`'s certificates, or the web
/// PKI roots when `None`. Errors name `ca-file`, the only key that shapes
/// the TLS setup.
pub fn client_config(ca_file: Option<&str>) -> SpecResult<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let ca_err =
                |reason: String| SpecError::new("ca-file", format!("CA file {path:?}: {reason}"));
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SpecError::new("ca-file", format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS certificate expiry check.
#[cfg(feature = "tls")]
#[derive(Debug)]
pub struct TlsProbe {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    warn_days: u32,
    crit_days: u32,
}

#[cfg(feature = "tls")]
impl TlsProbe {
    /// Checks the spec and builds the probe (loading the CA file): any
    /// key that cannot be used is an error naming it.
    pub fn from_spec(spec: &TlsSpec) -> SpecResult<Self> {
        let (host, port) =
            parse_host_port(&spec.address).map_err(|m| SpecError::new("address", m))?;
        let (name, name_key) = match &spec.server_name {
            Some(name) => (name.clone(), "server-name"),
            None => (host.clone(), "address"),
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|e| {
            SpecError::new(name_key, format!("server name {name:?} is not valid: {e}"))
        })?;
        let (warn_days, crit_days) = spec.days();
        if crit_days > warn_days {
            return Err(SpecError::new(
                "crit-days",
                format!("crit-days {crit_days} must not exceed warn-days {warn_days}"),
            ));
        }
        Ok(Self {
            host,
            port,
            server_name,
            config: client_config(spec.ca_file.as_deref())?,
            warn_days,
            crit_days,
        })
    }

    /// Runs the check once.
    pub async fn run(&self) -> Outcome {
        let stream = match TcpStream::connect((self.host.as_str(), self.port)).await {
            Ok(s) => s,
            Err(e) => return Outcome::crit(io_words(&e)),
        };
        let tls = match tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), stream)
            .await
        {
            Ok(t) => t,
            Err(e) => return Outcome::crit(format!("TLS: {}", tls_words(&e))),
        };
        let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
            return Outcome::new(Health::Unknown, "the server sent no certificate");
        };
        let not_after = match not_after(leaf) {
            Ok(t) => t,
            Err(e) => return Outcome::new(Health::Unknown, e),
        };
        let now = unix_ms() / 1000;
        judge(
            &self.server_name.to_str(),
            not_after,
            now,
            self.warn_days,
            self.crit_days,
        )
    }
}

/// The innermost cause of a TLS error, e.g. "invalid peer certificate:
/// UnknownIssuer".
pub fn tls_words(err: &std::io::Error) -> String {
    match err.get_ref() {
        Some(inner) => inner.to_string(),
        None => io_words(err),
    }
}

/// The certificate's notAfter as Unix seconds.
#[cfg(feature = "tls")]
pub fn not_after(der: &[u8]) -> std::result::Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot parse the server certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// Decides the outcome from the expiry time and now (Unix seconds).
pub fn judge(name: &str, not_after: i64, now: i64, warn_days: u32, crit_days: u32) -> Outcome {
    let date = civil_date(not_after);
    let left = not_after - now;
    if left <= 0 {
        return Outcome::crit(format!("certificate for {name} expired on {date}"));
    }
    let days = left / 86_400;
    let message = format!("certificate for {name} expires in {days} days ({date})");
    if days < i64::from(crit_days) {
        Outcome::crit(message)
    } else if days < i64::from(warn_days) {
        Outcome::new(Health::Warn, message)
    } else {
        Outcome::ok(message)
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time (days-from-civil inverse, Hinnant).
fn civil_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(1_798_761_600), "2027-01-01");
    }

    #[test]
    fn days_left() {
        let now = 1_000_000_000;
        let day = 86_400;
        assert_eq!(judge("x", now + 40 * day, now, 14, 3).status, Health::Ok);
        assert_eq!(judge("x", now + 10 * day, now, 14, 3).status, Health::Warn);
        assert_eq!(judge("x", now + 2 * day, now, 14, 3).status, Health::Crit);
        let expired = judge("x", now - day, now, 14, 3);
        assert_eq!(expired.status, Health::Crit);
        assert!(expired.message.contains("expired"), "{}", expired.message);
        assert_eq!(
            judge("www.example.com", now + 40 * day + 5, now, 14, 3).message,
            "certificate for www.example.com expires in 40 days (2001-10-19)"
        );
    }

    #[test]
    fn a_missing_ca_file_is_a_build_error() {
        let err = client_config(Some("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn bad_keys_are_named() {
        let build = |spec: TlsSpec| TlsProbe::from_spec(&spec).unwrap_err().field;
        let spec = |address: &str| TlsSpec {
            address: address.into(),
            ..Default::default()
        };
        assert_eq!(build(spec("example.com")), "address");
        assert_eq!(
            build(TlsSpec {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..spec("example.com:443")
            }),
            "ca-file"
        );
        assert_eq!(
            build(TlsSpec {
                warn_days: Some(2),
                ..spec("example.com:443")
            }),
            "crit-days"
        );
        assert_eq!(
            build(TlsSpec {
                server_name: Some("not a name".into()),
                ..spec("example.com:443")
            }),
            "server-name"
        );
        assert!(TlsProbe::from_spec(&spec("example.com:443")).is_ok());
    }
}
