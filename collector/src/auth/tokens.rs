//! Bearer tokens: one file per kind (one token per line, `#` comments and
//! blank lines ignored), checked in constant time by the [`Gate`]
//! interceptor in front of each service.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Why a tokens file cannot be used. Never quotes a token.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("{key} {path:?}: {cause}")]
    Read {
        /// The config key or flag (`agent-tokens-file`, …).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// A line is not a usable token.
    #[error("{key} {path:?}, line {line}: {reason}")]
    Bad {
        /// The config key or flag.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong with it (the token itself is not shown).
        reason: &'static str,
    },
    /// The file holds no token at all: the service would let no one in.
    #[error("{key} {path:?} holds no token (one a line; # starts a comment)")]
    Empty {
        /// The config key or flag.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// Result type of this module.
pub type Result<T, E = TokensError> = std::result::Result<T, E>;

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// One kind's tokens. `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Vec<Box<[u8]>>>);

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} redacted)", self.0.len())
    }
}

impl Tokens {
    /// Reads `path`; `key` names the setting in errors.
    pub fn load(key: &'static str, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|cause| TokensError::Read {
            key,
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(key, path, &text)
    }

    /// Parses a tokens file's text; `key` and `path` only name it in errors.
    pub fn parse(key: &'static str, path: &Path, text: &str) -> Result<Self> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason| TokensError::Bad {
                key,
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            if !line.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("a token is printable ASCII without spaces"));
            }
            if line.len() < MIN_TOKEN_LEN {
                return Err(bad("a token must be at least 16 characters"));
            }
            tokens.push(line.as_bytes().into());
        }
        if tokens.is_empty() {
            return Err(TokensError::Empty {
                key,
                path: path.to_path_buf(),
            });
        }
        Ok(Self(Arc::new(tokens)))
    }

    /// Whether `candidate` is one of these tokens. Every token is compared,
    /// each in constant time, so the time taken says nothing about how
    /// much of a token matched or which one.
    pub fn contains(&self, candidate: &[u8]) -> bool {
        let mut found = subtle::Choice::from(0);
        for token in self.0.iter() {
            found |= token.as_ref().ct_eq(candidate);
        }
        found.into()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where each kind's tokens are read from; `None` leaves that service
/// open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `agent-tokens-file`: tokens that may stream (Ingest).
    pub agent_tokens_file: Option<PathBuf>,
    /// `viewer-tokens-file`: tokens that may read the fleet (Fleet).
    pub viewer_tokens_file: Option<PathBuf>,
    /// `operator-tokens-file`: tokens that may read the fleet and
    /// acknowledge, silence and set maintenance (Fleet, Operator).
    pub operator_tokens_file: Option<PathBuf>,
}

/// The loaded tokens of every kind.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Agent tokens, if required.
    pub agent: Option<Tokens>,
    /// Viewer tokens, if required.
    pub viewer: Option<Tokens>,
    /// Operator tokens, if required.
    pub operator: Option<Tokens>,
}

impl AuthConfig {
    /// Reads every configured file.
    pub fn load(&self) -> Result<Credentials> {
        let load =
            |key, path: &Option<PathBuf>| path.as_deref().map(|p| Tokens::load(key, p)).transpose();
        Ok(Credentials {
            agent: load("agent-tokens-file", &self.agent_tokens_file)?,
            viewer: load("viewer-tokens-file", &self.viewer_tokens_file)?,
            operator: load("operator-tokens-file", &self.operator_tokens_file)?,
        })
    }
}

/// What a service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Ingest: an agent token.
    Agent,
    /// Fleet: a viewer or operator token.
    Viewer,
    /// Operator: an operator token.
    Operator,
}

impl Need {
    fn service(self) -> &'static str {
        match self {
            Need::Agent => "Ingest",
            Need::Viewer => "Fleet",
            Need::Operator => "Operator",
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Need::Agent => "an agent token",
            Need::Viewer => "a viewer or operator token",
            Need::Operator => "an operator token",
        }
    }
}

/// The interceptor in front of one service. Open when the service's own
/// tokens file is not configured; otherwise `UNAUTHENTICATED` without a
/// valid token and `PERMISSION_DENIED` for a valid token of another kind.
#[derive(Debug, Clone)]
pub struct Gate {
    need: Need,
    credentials: Credentials,
}

impl Gate {
    /// The gate for a service needing `need`.
    pub fn new(need: Need, credentials: Credentials) -> Self {
        Self { need, credentials }
    }

    /// Whether this gate lets anyone through.
    pub fn is_open(&self) -> bool {
        self.own().is_none()
    }

    fn own(&self) -> Option<&Tokens> {
        let c = &self.credentials;
        match self.need {
            Need::Agent => c.agent.as_ref(),
            Need::Viewer => c.viewer.as_ref(),
            Need::Operator => c.operator.as_ref(),
        }
    }

    /// Decides on the `authorization` header's value (if any).
    pub fn check(&self, authorization: Option<&[u8]>) -> std::result::Result<(), Status> {
        if self.is_open() {
            return Ok(());
        }
        let service = self.need.service();
        let wanted = self.need.wanted();
        let Some(header) = authorization else {
            return Err(Status::unauthenticated(format!(
                "{service} needs {wanted} (authorization: Bearer …); none was sent"
            )));
        };
        let Some(token) = header.strip_prefix(b"Bearer ") else {
            return Err(Status::unauthenticated(format!(
                "{service} needs {wanted} as `authorization: Bearer TOKEN`; the header has another form"
            )));
        };
        let c = &self.credentials;
        let has = |t: &Option<Tokens>| t.as_ref().is_some_and(|t| t.contains(token));
        // Every kind is compared, whatever matches, so timing does not say
        // which kind a token is.
        let (agent, viewer, operator) = (has(&c.agent), has(&c.viewer), has(&c.operator));
        let allowed = match self.need {
            Need::Agent => agent,
            Need::Viewer => viewer || operator,
            Need::Operator => operator,
        };
        if allowed {
            return Ok(());
        }
        let kind = if operator {
            Some("an operator token")
        } else if viewer {
            Some("a viewer token")
        } else if agent {
            Some("an agent token")
        } else {
            None
        };
        Err(match kind {
            Some(kind) => Status::permission_denied(format!(
                "{kind} may not call {service}; it needs {wanted}"
            )),
            None => Status::unauthenticated(format!(
                "the token sent is not valid for {service} on this collector; it needs {wanted}"
            )),
        })
    }
}

impl Interceptor for Gate {
    fn call(&mut self, request: Request<()>) -> std::result::Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        self.check(header)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    const AGENT: &str = "agent-token-0123456789";
    const VIEWER: &str = "viewer-token-0123456789";
    const OPERATOR: &str = "operator-token-0123456789";

    fn tokens(t: &str) -> Option<Tokens> {
        Some(Tokens::parse("k", Path::new("f"), t).unwrap())
    }

    fn all() -> Credentials {
        Credentials {
            agent: tokens(AGENT),
            viewer: tokens(VIEWER),
            operator: tokens(OPERATOR),
        }
    }

    fn code(need: Need, creds: Credentials, header: Option<&str>) -> Option<Code> {
        Gate::new(need, creds)
            .check(header.map(str::as_bytes))
            .err()
            .map(|s| s.code())
    }

    #[test]
    fn the_matrix() {
        let bearer = |t: &str| format!("Bearer {t}");
        use Need::*;
        for (need, header, want) in [
            (Agent, None, Some(Code::Unauthenticated)),
            (
                Agent,
                Some("Bearer wrong-token-0123456789".into()),
                Some(Code::Unauthenticated),
            ),
            (Agent, Some(AGENT.to_string()), Some(Code::Unauthenticated)),
            (Agent, Some(bearer(AGENT)), None),
            (Agent, Some(bearer(VIEWER)), Some(Code::PermissionDenied)),
            (Viewer, Some(bearer(VIEWER)), None),
            (Viewer, Some(bearer(OPERATOR)), None),
            (Viewer, Some(bearer(AGENT)), Some(Code::PermissionDenied)),
            (Operator, Some(bearer(OPERATOR)), None),
            (Operator, Some(bearer(VIEWER)), Some(Code::PermissionDenied)),
            (Operator, None, Some(Code::Unauthenticated)),
        ] {
            assert_eq!(
                code(need, all(), header.as_deref()),
                want,
                "{need:?} {header:?}"
            );
        }
    }

    #[test]
    fn a_service_without_its_file_is_open() {
        let creds = Credentials {
            agent: tokens(AGENT),
            ..Credentials::default()
        };
        assert_eq!(code(Need::Viewer, creds.clone(), None), None);
        assert_eq!(code(Need::Operator, creds.clone(), None), None);
        assert_eq!(code(Need::Agent, creds, None), Some(Code::Unauthenticated));
    }

    #[test]
    fn refusals_never_quote_the_token() {
        let status = Gate::new(Need::Operator, all())
            .check(Some(format!("Bearer {VIEWER}").as_bytes()))
            .unwrap_err();
        assert!(!status.message().contains(VIEWER), "{}", status.message());
        let status = Gate::new(Need::Operator, all())
            .check(Some(b"Bearer not-a-real-token-at-all"))
            .unwrap_err();
        assert!(
            !status.message().contains("not-a-real"),
            "{}",
            status.message()
        );
        assert!(!format!("{:?}", all()).contains(AGENT));
    }

    #[test]
    fn files_are_checked_without_quoting_them() {
        let text = "# agents\n\nshort\n";
        let err = Tokens::parse("agent-tokens-file", Path::new("a.txt"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("agent-tokens-file") && err.contains("line 3"),
            "{err}"
        );
        assert!(!err.contains("short"), "{err}");
        let err = Tokens::parse("viewer-tokens-file", Path::new("v.txt"), "# none\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no token"), "{err}");
        let t = Tokens::parse("k", Path::new("f"), &format!("{AGENT}\n{VIEWER}\n")).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.contains(VIEWER.as_bytes()));
        assert!(!t.contains(&VIEWER.as_bytes()[..10]));
    }
}
