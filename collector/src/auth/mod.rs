//! Who may do what on a collector.
//!
//! # Layout
//!
//! - [`tokens`]: bearer tokens read from files (agent, viewer, operator),
//!   compared in constant time, and the [`Gate`] interceptor each gRPC
//!   service is wrapped in: Ingest wants an agent token, Fleet a viewer or
//!   operator token, Operator an operator token. A service whose tokens
//!   file is not configured stays open.
//! - [`tls`]: the rustls listener (`tls-cert`, `tls-key`, `client-ca`),
//!   re-read on SIGHUP or when the files change, and the names a client
//!   certificate speaks for ([`tls::cert_names`]), which Ingest holds a
//!   node's Hello to.
//! - [`certs`]: `stacktop-collector certs`: a CA, a collector certificate
//!   and per-node client certificates, made with rcgen.
//!
//! Secrets never reach a log line or an error message: tokens are not
//! printed (their `Debug` is redacted), and refusals name the kind of
//! credential wanted, never the one sent.

pub mod certs;
pub mod tls;
pub mod tokens;

pub use tokens::{AuthConfig, Gate, Need, Tokens};
