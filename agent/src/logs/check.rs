//! `check-logs`: parse a whole file once and report what the agent would see.
//!
//! Operators run it before deploying a format (`stacktop-agent check-logs --format FMT FILE
//! [--json]`). Unlike the live path there is no grace and nothing is late: every line is
//! counted in its own second, and only seconds with lines are listed, in time order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use super::format::{Format, FormatError};
use super::parse::{LineError, Parser};
use super::tail::{Line, LineSplitter, MAX_LINE, READ_CHUNK};

/// How many malformed lines are kept as examples for the text report.
const EXAMPLES: usize = 5;

/// Why a check could not run.
#[derive(Debug, Error)]
pub enum CheckError {
    /// The format name or string is not valid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Requests of one second in a checked file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSecond {
    /// The second, in unix seconds.
    pub unix: i64,
    /// All parsed requests in the second (including statuses outside 2xx–5xx).
    pub requests: u64,
    /// Requests with a 2xx status.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// Requests with a 3xx status.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// Requests with a 4xx status.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// Requests with a 5xx status.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// The result of checking a file; serializes to the documented JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Lines read, malformed ones included.
    pub lines: u64,
    /// Lines that did not parse (or were too long).
    pub malformed: u64,
    /// Seconds that have requests, in time order.
    pub seconds: Vec<CheckSecond>,
    /// The first few malformed lines, as (1-based line number, reason); text report only.
    #[serde(skip)]
    pub examples: Vec<(u64, LineError)>,
}

impl CheckReport {
    /// The report as the JSON document `check-logs --json` prints.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The report for humans: totals, first malformed lines, then one row per second.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let ok = self.lines - self.malformed;
        let _ = writeln!(
            s,
            "{} lines: {} parsed, {} malformed, {} seconds",
            self.lines,
            ok,
            self.malformed,
            self.seconds.len()
        );
        for (line, why) in &self.examples {
            let _ = writeln!(s, "  line {line}: {why}");
        }
        if self.malformed > self.examples.len() as u64 {
            let _ = writeln!(
                s,
                "  ... and {} more malformed lines",
                self.malformed - self.examples.len() as u64
            );
        }
        if !self.seconds.is_empty() {
            let _ = writeln!(
                s,
                "{:>12} {:>9} {:>8} {:>8} {:>8} {:>8}",
                "unix", "requests", "2xx", "3xx", "4xx", "5xx"
            );
        }
        for x in &self.seconds {
            let _ = writeln!(
                s,
                "{:>12} {:>9} {:>8} {:>8} {:>8} {:>8}",
                x.unix, x.requests, x.c2xx, x.c3xx, x.c4xx, x.c5xx
            );
        }
        s
    }
}

/// Checks the file at `path` against the format named `format` (a built-in name or an
/// Nginx `log_format` string). Zone-less HAProxy dates are read as UTC.
pub fn check_file(format: &str, path: &Path) -> Result<CheckReport, CheckError> {
    let parser = Parser::new(Format::parse(format)?);
    let file = File::open(path).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })?;
    check_reader(parser, file).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Checks everything `reader` yields with `parser`, in bounded memory (one read buffer and
/// one map entry per second).
pub fn check_reader(mut parser: Parser, mut reader: impl Read) -> io::Result<CheckReport> {
    let mut per_second: BTreeMap<i64, CheckSecond> = BTreeMap::new();
    let mut report = CheckReport {
        lines: 0,
        malformed: 0,
        seconds: Vec::new(),
        examples: Vec::new(),
    };
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut buf = vec![0; READ_CHUNK];
    let mut sink = |line: Line<'_>| {
        report.lines += 1;
        let result = match line {
            Line::Complete(l) => parser.parse(l),
            Line::TooLong => Err(LineError::TooLong),
        };
        match result {
            Ok(r) => {
                let s = per_second.entry(r.unix).or_insert(CheckSecond {
                    unix: r.unix,
                    requests: 0,
                    c2xx: 0,
                    c3xx: 0,
                    c4xx: 0,
                    c5xx: 0,
                });
                s.requests += 1;
                match r.status {
                    200..=299 => s.c2xx += 1,
                    300..=399 => s.c3xx += 1,
                    400..=499 => s.c4xx += 1,
                    500..=599 => s.c5xx += 1,
                    _ => {}
                }
            }
            Err(e) => {
                report.malformed += 1;
                if report.examples.len() < EXAMPLES {
                    report.examples.push((report.lines, e));
                }
            }
        }
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        splitter.feed(&buf[..n], &mut sink);
    }
    splitter.finish(&mut sink);
    report.seconds = per_second.into_values().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_json_shape() {
        let log = "\
1.1.1.1 - - [25/Nov/2026:12:00:01 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"-\"
1.1.1.1 - - [25/Nov/2026:12:00:01 +0000] \"GET / HTTP/1.1\" 503 5 \"-\" \"-\"
garbage
1.1.1.1 - - [25/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 301 5 \"-\" \"-\"
1.1.1.1 - - [25/Nov/2026:12:00:01 +0000] \"GET / HTTP/1.1\" 101 5 \"-\" \"-\"";
        let r = check_reader(Parser::new(Format::NginxCombined), log.as_bytes()).unwrap();
        assert_eq!((r.lines, r.malformed), (5, 1));
        assert_eq!(r.examples, [(3, LineError::Truncated)]);
        assert_eq!(
            r.to_json(),
            r#"{"lines":5,"malformed":1,"seconds":[{"unix":1795608000,"requests":1,"2xx":0,"3xx":1,"4xx":0,"5xx":0},{"unix":1795608001,"requests":3,"2xx":1,"3xx":0,"4xx":0,"5xx":1}]}"#
        );
        let text = r.render_text();
        assert!(
            text.starts_with("5 lines: 4 parsed, 1 malformed, 2 seconds\n"),
            "{text}"
        );
        assert!(text.contains("line 3: line is truncated"), "{text}");
    }

    #[test]
    fn bad_format_and_missing_file() {
        assert!(matches!(
            check_file("nope", Path::new("/dev/null")),
            Err(CheckError::Format(_))
        ));
        let e = check_file("nginx-combined", Path::new("/nonexistent/x.log")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.log"), "{e}");
    }
}
