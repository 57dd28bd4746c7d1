//! The collector's TLS listener: rustls with `tls-cert`/`tls-key`, and
//! client certificates verified against `client-ca` when set.
//!
//! Connections are accepted here and handed to tonic already decrypted
//! (as `tokio_rustls` streams, so `Request::peer_certs` works). The rustls
//! config sits behind a lock that [`keep_reloading`] swaps on SIGHUP or
//! when a file's modification time changes: new connections use the new
//! certificate, open streams keep theirs. A reload that fails is logged and
//! the old config kept.
//!
//! A handshake that fails (a plain-text client, an unknown CA, an expired
//! certificate) closes that connection and is logged at debug; it costs
//! one task for at most [`HANDSHAKE_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Bound on a client's TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the certificate files' modification times are looked at.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Handshaken connections waiting for tonic to take them.
const ACCEPTED_QUEUE: usize = 64;

/// Why the TLS setup cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds nothing usable.
    #[error("{key} {path:?}: {reason}")]
    File {
        /// The config key or flag (`tls-cert`, `tls-key`, `client-ca`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that is not the
    /// certificate's).
    #[error("TLS setup with tls-cert {cert:?} and tls-key {key:?}: {reason}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// Result type of this module.
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

/// The server's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (`tls-cert`).
    pub cert: PathBuf,
    /// PEM private key (`tls-key`).
    pub key: PathBuf,
    /// PEM CA certificates client certificates must chain to
    /// (`client-ca`); without it no client certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

fn file_err(key: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        key,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(key, path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| file_err(key, path, e))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Reads the files and builds the rustls config (HTTP/2 only).
    ///
    /// With `client-ca`, a client certificate is optional at the handshake
    /// (dashboards may come with a token alone) but one that is presented
    /// must chain to the CA and be valid now; Ingest then insists on one.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs("tls-cert", &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| file_err("tls-key", &self.key, e))?;
        let setup = |e: rustls::Error| TlsError::Config {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: e.to_string(),
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(setup)?;
        let builder = match &self.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs("client-ca", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| file_err("client-ca", path, e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| file_err("client-ca", path, e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(setup)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    fn modified(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The current rustls config, swapped on reload.
#[derive(Debug, Clone)]
pub struct Acceptor {
    files: TlsFiles,
    /// Read by every accepted connection, written by a reload; held only
    /// to clone or replace the `Arc`.
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl Acceptor {
    /// Loads `files` (an error here stops the collector from starting).
    pub fn new(files: TlsFiles) -> Result<Self> {
        let config = files.load()?;
        Ok(Self {
            files,
            current: Arc::new(RwLock::new(config)),
        })
    }

    /// Re-reads the files; on error the old config stays.
    pub fn reload(&self) -> Result<()> {
        let config = self.files.load()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Accepts on `listener` until `shutdown`, handshakes each connection
    /// in its own task (bounded by [`HANDSHAKE_TIMEOUT`]) and yields the
    /// ones that completed, for `serve_with_incoming_shutdown`.
    pub fn incoming(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
        let this = self.clone();
        let handshakes = tracker.clone();
        tracker.spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            // EMFILE and the like: wait rather than spin.
                            warn!(cause = %err, "accepting a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = this.acceptor();
                let tx = tx.clone();
                let shutdown = shutdown.clone();
                handshakes.spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let stream = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = handshake => r,
                    };
                    match stream {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(err)) => debug!(%peer, cause = %err, "TLS handshake refused"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// Re-reads the TLS files on SIGHUP, or when one's modification time
/// changes, until `shutdown`.
pub async fn keep_reloading(acceptor: Acceptor, shutdown: CancellationToken) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => Some(hup),
        Err(err) => {
            warn!(cause = %err, "cannot watch SIGHUP; certificates reload on file change only");
            None
        }
    };
    let mut seen = acceptor.files.modified();
    let mut poll = tokio::time::interval(RELOAD_POLL);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(hup) => hup.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hangup => "SIGHUP",
            _ = poll.tick() => {
                let now = acceptor.files.modified();
                if now == seen {
                    continue;
                }
                seen = now;
                "a file changed"
            }
        };
        match acceptor.reload() {
            Ok(()) => info!(reason = why, cert = ?acceptor.files.cert, "TLS certificates reloaded"),
            Err(err) => {
                warn!(reason = why, cause = %err, "TLS reload failed; keeping the old certificates")
            }
        }
    }
}

/// The names a client certificate speaks for: its SAN DNS names, or its
/// subject CN when it has none.
pub fn cert_names(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_string),
        );
    }
    names
}
