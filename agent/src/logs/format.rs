//! Access-log format definitions and the compiler for user-given Nginx `log_format` strings.
//!
//! A format is chosen by name in the config (`format = "nginx-combined"`):
//!
//! | name | the line |
//! |---|---|
//! | `nginx-combined` | `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` |
//! | `nginx-timed` | `nginx-combined` + ` $request_time`, optionally + ` $upstream_response_time` |
//! | `stacktop` | [`STACKTOP_LOG_FORMAT`], the cheapest line to parse, with latency |
//! | `haproxy-http` | HAProxy's default `option httplog` line, with or without a syslog prefix |
//! | anything containing `$` | an Nginx `log_format` string, compiled once by [`CustomFormat::compile`] |
//!
//! The built-in formats get hand-written parsers (see `parse.rs`); a format string becomes a
//! flat list of [`Step`]s (literal bytes to match, or a field to read) so that matching a line
//! is a simple loop with no regex and no allocation.

use thiserror::Error;

/// The `log_format` line to put in `nginx.conf` for the `stacktop` format.
///
/// Everything stacktop needs comes first, as plain numbers separated by single spaces, so the
/// parser reads four short tokens and never looks at the rest of the line: no date to
/// convert (`$msec` is already epoch seconds), no quoted string to scan. The remaining fields
/// are there for the humans who read the same log; `$upstream_response_time` goes last
/// because it can be a list with spaces (`0.001, 0.002 : 0.003`).
pub const STACKTOP_LOG_FORMAT: &str = "log_format stacktop '$msec $status $body_bytes_sent $request_time $remote_addr \"$request\" \"$http_referer\" \"$http_user_agent\" $upstream_response_time';";

/// The format names accepted besides format strings, for error messages and `--help`.
pub const FORMAT_NAMES: &[&str] = &["nginx-combined", "nginx-timed", "stacktop", "haproxy-http"];

/// Why a format name or format string was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The name is neither a built-in format nor a format string.
    #[error(
        "unknown log format {0:?}: expected one of nginx-combined, nginx-timed, stacktop, \
         haproxy-http, or an Nginx log_format string containing `$` variables"
    )]
    UnknownName(String),
    /// The format string has no time variable, so lines cannot be bucketed by second.
    #[error("log format {0:?} has no time variable: it needs $time_local, $time_iso8601 or $msec")]
    NoTime(String),
    /// The format string has no `$status`, so requests cannot be classified.
    #[error("log format {0:?} has no $status variable")]
    NoStatus(String),
    /// Two variables touch with no literal between them, so a line cannot be split.
    #[error(
        "log format {format:?}: variables ${first} and ${second} must be separated by literal text"
    )]
    Adjacent {
        /// The whole format string.
        format: String,
        /// The first variable.
        first: String,
        /// The variable directly after it.
        second: String,
    },
    /// A `$` with no variable name after it, or an unclosed `${`.
    #[error("log format {0:?} has a `$` without a variable name")]
    BadVariable(String),
}

/// A log format, resolved from its config name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Nginx's predefined `combined` format.
    NginxCombined,
    /// `combined` followed by `$request_time` and optionally `$upstream_response_time`.
    NginxTimed,
    /// stacktop's recommended format, [`STACKTOP_LOG_FORMAT`].
    Stacktop,
    /// HAProxy `option httplog`, optionally behind a BSD (RFC 3164) or RFC 5424 syslog header.
    HaproxyHttp,
    /// A user-given Nginx `log_format` string.
    Custom(CustomFormat),
}

impl Format {
    /// Resolves a config/CLI format name: a built-in name, or a format string if it
    /// contains `$`. Unknown names are an error listing the choices.
    pub fn parse(name: &str) -> Result<Self, FormatError> {
        Ok(match name.trim() {
            "nginx-combined" => Self::NginxCombined,
            "nginx-timed" => Self::NginxTimed,
            "stacktop" => Self::Stacktop,
            "haproxy-http" => Self::HaproxyHttp,
            s if s.contains('$') => Self::Custom(CustomFormat::compile(name)?),
            _ => return Err(FormatError::UnknownName(name.to_owned())),
        })
    }

    /// Whether lines in this format carry a request duration, so latency quantiles exist.
    pub fn has_latency(&self) -> bool {
        match self {
            Self::NginxCombined => false,
            Self::NginxTimed | Self::Stacktop | Self::HaproxyHttp => true,
            Self::Custom(c) => c.has_latency,
        }
    }

    /// Whether lines in this format carry the request line (`"GET /health HTTP/1.1"`), so
    /// load-balancer health checks can be told by their path.
    pub fn has_request_line(&self) -> bool {
        match self {
            Self::NginxCombined | Self::NginxTimed | Self::Stacktop | Self::HaproxyHttp => true,
            Self::Custom(c) => c.has_request,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A variable of a format string that the parser understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `$time_local`: `25/Nov/2026:12:00:01 +0530`.
    TimeLocal,
    /// `$time_iso8601`: `2026-11-25T12:00:01+05:30`.
    TimeIso8601,
    /// `$msec`: `1795608001.123`.
    Msec,
    /// `$status`: three digits.
    Status,
    /// `$body_bytes_sent`: bytes of the response body.
    BodyBytesSent,
    /// `$bytes_sent`: bytes of the whole response; used only if `$body_bytes_sent` is absent.
    BytesSent,
    /// `$request_time`: seconds with millisecond resolution.
    RequestTime,
    /// `$upstream_response_time`: `-`, a number, or a list (`0.001, 0.002 : 0.003`); skipped
    /// with care for its inner spaces.
    UpstreamResponseTime,
    /// `$request`: the request line, usually quoted.
    Request,
    /// Any other variable: skipped up to the next literal.
    Skip,
}

/// One step of a compiled format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Bytes that must appear exactly here.
    Literal(Vec<u8>),
    /// A variable to read (or skip).
    Field(Field),
}

/// A compiled Nginx `log_format` string: literals and fields in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFormat {
    /// The steps, in order; never two fields in a row.
    pub steps: Vec<Step>,
    /// Matching stops after this many steps, because nothing later is needed. This is what
    /// keeps a format string with a trailing user agent as cheap as the built-ins.
    pub needed_steps: usize,
    /// The steps to match when the request line is wanted too (health-check paths are
    /// configured): at least [`CustomFormat::needed_steps`], and up to the literal that ends
    /// `$request`.
    pub request_steps: usize,
    /// Whether `$request_time` is present.
    pub has_latency: bool,
    /// Whether `$request` is present.
    pub has_request: bool,
    /// Whether to take bytes from `$body_bytes_sent` (preferred) or `$bytes_sent`.
    pub bytes_field: Option<Field>,
}

impl CustomFormat {
    /// Compiles `format` once into steps. Fails if there is no time variable or no
    /// `$status`, or if two variables touch (`$a$b`), since such a line cannot be split.
    pub fn compile(format: &str) -> Result<Self, FormatError> {
        let mut steps: Vec<Step> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let b = format.as_bytes();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            // Nginx accepts both `$name` and `${name}`.
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                let end = b[i + 2..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or_else(|| FormatError::BadVariable(format.to_owned()))?;
                (&format[i + 2..i + 2 + end], i + 3 + end)
            } else {
                let len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&format[i + 1..i + 1 + len], i + 1 + len)
            };
            if name.is_empty() {
                return Err(FormatError::BadVariable(format.to_owned()));
            }
            if !lit.is_empty() {
                steps.push(Step::Literal(std::mem::take(&mut lit)));
            } else if let Some(Step::Field(_)) = steps.last() {
                return Err(FormatError::Adjacent {
                    format: format.to_owned(),
                    first: names.last().cloned().unwrap_or_default(),
                    second: name.to_owned(),
                });
            }
            steps.push(Step::Field(field_of(name)));
            names.push(name.to_owned());
            i = next;
        }
        if !lit.is_empty() {
            steps.push(Step::Literal(lit));
        }

        let has = |f: Field| steps.contains(&Step::Field(f));
        if !has(Field::TimeLocal) && !has(Field::TimeIso8601) && !has(Field::Msec) {
            return Err(FormatError::NoTime(format.to_owned()));
        }
        if !has(Field::Status) {
            return Err(FormatError::NoStatus(format.to_owned()));
        }
        let bytes_field = if has(Field::BodyBytesSent) {
            Some(Field::BodyBytesSent)
        } else if has(Field::BytesSent) {
            Some(Field::BytesSent)
        } else {
            None
        };
        let needed = |s: &Step| match s {
            Step::Field(
                Field::TimeLocal
                | Field::TimeIso8601
                | Field::Msec
                | Field::Status
                | Field::RequestTime,
            ) => true,
            Step::Field(f) => Some(*f) == bytes_field,
            Step::Literal(_) => false,
        };
        // Keep the literal that ends the last needed field: it is what delimits it.
        let last = steps.iter().rposition(needed).unwrap_or(0);
        let needed_steps = (last + 2).min(steps.len());
        let request_steps = steps
            .iter()
            .position(|s| *s == Step::Field(Field::Request))
            .map_or(needed_steps, |r| needed_steps.max((r + 2).min(steps.len())));
        Ok(Self {
            has_latency: has(Field::RequestTime),
            has_request: has(Field::Request),
            steps,
            needed_steps,
            request_steps,
            bytes_field,
        })
    }
}

/// Maps a variable name to the field the parser reads for it.
fn field_of(name: &str) -> Field {
    match name {
        "time_local" => Field::TimeLocal,
        "time_iso8601" => Field::TimeIso8601,
        "msec" => Field::Msec,
        "status" => Field::Status,
        "body_bytes_sent" => Field::BodyBytesSent,
        "bytes_sent" => Field::BytesSent,
        "request_time" => Field::RequestTime,
        "upstream_response_time" => Field::UpstreamResponseTime,
        "request" => Field::Request,
        _ => Field::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(Format::parse("nginx-combined"), Ok(Format::NginxCombined));
        assert_eq!(Format::parse("nginx-timed"), Ok(Format::NginxTimed));
        assert_eq!(Format::parse("stacktop"), Ok(Format::Stacktop));
        assert_eq!(Format::parse("haproxy-http"), Ok(Format::HaproxyHttp));
        let err = Format::parse("apache").unwrap_err().to_string();
        assert!(
            err.contains("\"apache\"") && err.contains("nginx-combined"),
            "{err}"
        );
    }

    #[test]
    fn compiles_combined_string() {
        let f = CustomFormat::compile(
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#,
        )
        .unwrap();
        assert_eq!(f.steps[0], Step::Field(Field::Skip));
        assert_eq!(f.steps[1], Step::Literal(b" - ".to_vec()));
        assert_eq!(f.steps[4], Step::Field(Field::TimeLocal));
        assert!(!f.has_latency);
        assert_eq!(f.bytes_field, Some(Field::BodyBytesSent));
        // Stops after `$body_bytes_sent` and the ` "` that ends it.
        assert_eq!(f.steps[f.needed_steps - 1], Step::Literal(b" \"".to_vec()));
        // `$request` comes before it, so wanting the request line costs no extra step.
        assert!(f.has_request);
        assert_eq!(f.request_steps, f.needed_steps);
    }

    #[test]
    fn a_trailing_request_extends_the_steps_only_when_wanted() {
        let f = CustomFormat::compile(
            r#"$msec $status $body_bytes_sent "$request" "$http_user_agent""#,
        )
        .unwrap();
        assert_eq!(f.steps[f.needed_steps - 1], Step::Literal(b" \"".to_vec()));
        assert_eq!(f.steps[f.request_steps - 2], Step::Field(Field::Request));
        assert_eq!(
            f.steps[f.request_steps - 1],
            Step::Literal(b"\" \"".to_vec())
        );
        let f = CustomFormat::compile("$msec $status").unwrap();
        assert!(!f.has_request);
        assert_eq!(f.request_steps, f.needed_steps);
        assert!(!Format::Custom(f).has_request_line());
        assert!(Format::HaproxyHttp.has_request_line());
    }

    #[test]
    fn braces_and_errors() {
        let f = CustomFormat::compile("${msec}|${status}").unwrap();
        assert_eq!(f.steps.len(), 3);
        assert!(matches!(
            CustomFormat::compile("$status $remote_addr"),
            Err(FormatError::NoTime(_))
        ));
        assert!(matches!(
            CustomFormat::compile("$msec $remote_addr"),
            Err(FormatError::NoStatus(_))
        ));
        assert!(matches!(
            CustomFormat::compile("$msec$status"),
            Err(FormatError::Adjacent { .. })
        ));
        assert!(matches!(
            CustomFormat::compile("$msec $status $"),
            Err(FormatError::BadVariable(_))
        ));
    }
}
