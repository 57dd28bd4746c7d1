//! `stacktop-collector certs`: a small CA for one site, made with rcgen.
//!
//! Writes into one directory: `ca.pem`/`ca.key` (made once, reused when
//! present, so nodes can be added later), `collector.pem`/`collector.key`
//! for the listener (its names: the given ones, or `localhost` and
//! `127.0.0.1`), and `NODE.pem`/`NODE.key` per node, a client certificate
//! whose SAN DNS name and CN are the node's name: with `client-ca`, that
//! node may report under that name only. Keys are written mode 0600.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Default validity of the certificates made.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused (e.g. a name that is not a valid DNS name).
    #[error("making the certificate for {name:?}: {cause}")]
    Generate {
        /// The certificate's name.
        name: String,
        /// What rcgen said.
        cause: rcgen::Error,
    },
    /// A file could not be read or written.
    #[error("{path:?}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// A node name that would make a bad file name.
    #[error("node name {0:?}: must be a host name (letters, digits, '-', '.', '_')")]
    BadName(String),
}

/// Result type of this module.
pub type Result<T, E = CertsError> = std::result::Result<T, E>;

/// What to make.
#[derive(Debug, Clone)]
pub struct CertsRequest {
    /// The directory written to (created if missing).
    pub dir: PathBuf,
    /// The collector certificate's names (DNS names or IP addresses).
    pub collector_names: Vec<String>,
    /// One client certificate per node name.
    pub nodes: Vec<String>,
    /// How long the certificates are valid from now.
    pub validity: Duration,
}

/// The files written.
#[derive(Debug, Default)]
pub struct Written {
    /// Every file, in the order written.
    pub files: Vec<PathBuf>,
    /// Whether an existing CA was used.
    pub reused_ca: bool,
}

fn gen_err(name: &str) -> impl FnOnce(rcgen::Error) -> CertsError + '_ {
    move |cause| CertsError::Generate {
        name: name.to_string(),
        cause,
    }
}

/// Validity from a minute ago (clock skew) for `validity`.
fn window(params: &mut CertificateParams, validity: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(Duration::from_secs(60));
    params.not_after = epoch + now + validity;
}

/// Parameters of a leaf certificate for `names` (the first is the CN).
pub fn leaf_params(
    names: &[String],
    client: bool,
    validity: Duration,
) -> Result<CertificateParams> {
    let first = names.first().cloned().unwrap_or_default();
    let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err(&first))?;
    params.distinguished_name.push(DnType::CommonName, first);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    window(&mut params, validity);
    Ok(params)
}

/// Parameters of the CA certificate.
pub fn ca_params(validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "stacktop CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    window(&mut params, validity);
    params
}

fn write(path: PathBuf, text: &str, secret: bool, written: &mut Written) -> Result<()> {
    let io = |cause| CertsError::Io {
        path: path.clone(),
        cause,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)?;
    written.files.push(path);
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|cause| CertsError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Makes (or reuses) the CA and writes the collector and node
/// certificates.
pub fn make(request: &CertsRequest) -> Result<Written> {
    for node in &request.nodes {
        if !valid_node_name(node) {
            return Err(CertsError::BadName(node.clone()));
        }
    }
    let dir = &request.dir;
    std::fs::create_dir_all(dir).map_err(|cause| CertsError::Io {
        path: dir.clone(),
        cause,
    })?;
    let mut written = Written::default();
    let (ca_pem, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let issuer = if ca_pem.exists() && ca_key_path.exists() {
        let key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(gen_err("ca.key"))?;
        written.reused_ca = true;
        Issuer::from_ca_cert_pem(&read(&ca_pem)?, key).map_err(gen_err("ca.pem"))?
    } else {
        let key = KeyPair::generate().map_err(gen_err("stacktop CA"))?;
        let params = ca_params(request.validity * 10);
        let cert = params.self_signed(&key).map_err(gen_err("stacktop CA"))?;
        write(ca_pem, &cert.pem(), false, &mut written)?;
        write(ca_key_path, &key.serialize_pem(), true, &mut written)?;
        Issuer::new(params, key)
    };
    let mut leaf = |file: &str, names: &[String], client: bool| -> Result<()> {
        let key = KeyPair::generate().map_err(gen_err(file))?;
        let cert = leaf_params(names, client, request.validity)?
            .signed_by(&key, &issuer)
            .map_err(gen_err(file))?;
        write(
            dir.join(format!("{file}.pem")),
            &cert.pem(),
            false,
            &mut written,
        )?;
        write(
            dir.join(format!("{file}.key")),
            &key.serialize_pem(),
            true,
            &mut written,
        )
    };
    let collector_names = if request.collector_names.is_empty() {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    } else {
        request.collector_names.clone()
    };
    leaf("collector", &collector_names, false)?;
    for node in &request.nodes {
        leaf(node, std::slice::from_ref(node), true)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tls::{TlsFiles, cert_names};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn a_site_is_made_and_the_ca_reused() {
        let dir = tempfile::tempdir().unwrap();
        let request = CertsRequest {
            dir: dir.path().to_path_buf(),
            collector_names: Vec::new(),
            nodes: vec!["web1".into(), "db1".into()],
            validity: DEFAULT_VALIDITY,
        };
        let first = make(&request).unwrap();
        assert!(!first.reused_ca);
        assert_eq!(first.files.len(), 8);
        let cert = CertificateDer::from_pem_file(dir.path().join("web1.pem")).unwrap();
        assert_eq!(cert_names(&cert), ["web1"]);
        // The collector's files make a server config that asks for client
        // certificates from this CA.
        TlsFiles {
            cert: dir.path().join("collector.pem"),
            key: dir.path().join("collector.key"),
            client_ca: Some(dir.path().join("ca.pem")),
        }
        .load()
        .unwrap();
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let again = make(&CertsRequest {
            nodes: vec!["web3".into()],
            ..request
        })
        .unwrap();
        assert!(again.reused_ca);
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("web3.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_node_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = make(&CertsRequest {
            dir: dir.path().to_path_buf(),
            collector_names: Vec::new(),
            nodes: vec!["../etc/x".into()],
            validity: DEFAULT_VALIDITY,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("../etc/x"), "{err}");
    }
}
