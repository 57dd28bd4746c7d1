//! TLS: the rustls client configuration shared by `https` checks, and the
//! `tls` check, which completes a verified handshake and reports the days
//! left on the server's (leaf) certificate.
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

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use stacktop_proto::Health;
use tokio::net::TcpStream;

use super::spec::{TlsSpec, parse_host_port};
use super::{BuildError, Outcome, io_words};

/// A rustls client config trusting `ca_file`'s certificates, or the web
/// PKI roots when `None`.
pub fn client_config(
    ca_file: Option<&str>,
) -> std::result::Result<Arc<rustls::ClientConfig>, BuildError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let ca_err = |reason: String| BuildError::CaFile {
                path: path.to_string(),
                reason,
            };
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
    .map_err(|e| BuildError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS certificate expiry check.
#[derive(Debug)]
pub struct TlsProbe {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    warn_days: u32,
    crit_days: u32,
}

impl TlsProbe {
    /// Builds the probe from a validated spec (loads the CA file).
    pub fn from_spec(spec: &TlsSpec) -> std::result::Result<Self, BuildError> {
        let (host, port) = parse_host_port(&spec.address).map_err(BuildError::Spec)?;
        let name = spec.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| BuildError::Tls(format!("server name {name:?}: {e}")))?;
        let (warn_days, crit_days) = spec.days();
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
            Err(e) => return Outcome::crit(format!("TLS: {}", super::http::tls_words(&e))),
        };
        let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
            return Outcome::new(Health::Unknown, "the server sent no certificate");
        };
        let not_after = match not_after(leaf) {
            Ok(t) => t,
            Err(e) => return Outcome::new(Health::Unknown, e),
        };
        let now = super::unix_ms() / 1000;
        judge(
            &self.server_name.to_str(),
            not_after,
            now,
            self.warn_days,
            self.crit_days,
        )
    }
}

/// The certificate's notAfter as Unix seconds.
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
}
