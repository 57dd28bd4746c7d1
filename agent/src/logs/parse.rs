//! The hot path: turning one access-log line (bytes) into a [`Record`].
//!
//! Rules that keep it fast: work on `&[u8]` (lines are not validated as UTF-8 — user agents
//! and paths carry arbitrary bytes), allocate nothing per line, use no regex, and read only
//! what is needed. For `nginx-combined` that is: find `[`, parse the time through the
//! [`MinuteCache`], find the closing quote of the request (honouring `\"`), read status and
//! bytes, and stop — the referer and user agent are never scanned. `nginx-timed` finds its
//! `$request_time` from the *end* of the line (after the last quote), again without walking
//! the user agent.
//!
//! A line that does not fit its format yields a [`LineError`] (counted as malformed by the
//! caller), never a panic: every index is bounds-checked through `get`.
//!
//! # Health checks
//!
//! With health-check paths configured ([`Parser::with_health_check_paths`]), the parser also
//! finds the request line and marks a [`Record`] whose path (the request target up to `?`)
//! equals one of them: the load balancer's own `GET /health`, which the aggregator counts
//! apart from the traffic. Without paths, none of that runs: the request line is not looked
//! at (for `stacktop` and `haproxy-http` it is not even found), so the usual parse costs the
//! same as before. A line whose request line cannot be found is an ordinary request, not a
//! malformed line: the paths only decide what to count apart.

use std::ops::Range;

use memchr::{memchr, memchr2, memrchr};
use thiserror::Error;

use super::format::{CustomFormat, Field, Format, Step};
use super::time::{MinuteCache, msec};

/// What the aggregator needs from one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The request's time in unix seconds, from the line itself (the log's clock).
    pub unix: i64,
    /// HTTP status; 0 when the line says there was none (HAProxy's `-1`).
    pub status: u16,
    /// Bytes sent to the client (`-` counts as 0).
    pub bytes: u64,
    /// Total request duration in microseconds, when the format has one and the request was
    /// not aborted.
    pub latency_us: Option<u64>,
    /// The request's path is one of the configured health-check paths: a load balancer's (or
    /// a monitor's) probe rather than traffic. Always false without configured paths.
    pub health_check: bool,
}

/// Why a line was counted as malformed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineError {
    /// The line is empty (or only a carriage return).
    #[error("empty line")]
    Empty,
    /// The line ends before all required fields were read.
    #[error("line is truncated or a field is missing")]
    Truncated,
    /// The bytes do not match the format (a literal or separator is wrong).
    #[error("line does not match the format")]
    Mismatch,
    /// The timestamp is not a valid date and time.
    #[error("bad timestamp")]
    BadTime,
    /// The status is not a three-digit number.
    #[error("bad status code")]
    BadStatus,
    /// A byte count or duration is not a number.
    #[error("bad number")]
    BadNumber,
    /// The line is longer than the tailer's limit and was skipped unread.
    #[error("line too long")]
    TooLong,
}

/// Shorthand for a parse result.
pub type LineResult<T> = std::result::Result<T, LineError>;

/// The request paths that are health checks, compared as bytes with a request's path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthPaths {
    /// Each path, e.g. `/health`; a handful at most, so a linear scan is the fastest match.
    paths: Vec<Box<[u8]>>,
}

impl HealthPaths {
    /// The paths to match (`/health`, `/haproxy-check`...).
    pub fn new<S: AsRef<str>>(paths: &[S]) -> Self {
        Self {
            paths: paths.iter().map(|p| p.as_ref().as_bytes().into()).collect(),
        }
    }

    /// Whether no path is configured (then nothing is a health check).
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether the request line (`GET /health?x=1 HTTP/1.1`) asks for one of the paths: its
    /// target up to `?` (the path of an absolute-form target, `http://host/health`) equals
    /// one exactly.
    #[inline]
    pub fn matches(&self, request: &[u8]) -> bool {
        // The method is a few letters: a plain loop beats a memchr call here.
        let Some(sp) = request.iter().take(16).position(|&b| b == b' ') else {
            return false;
        };
        let mut target = &request[sp + 1..];
        if target.first() != Some(&b'/') {
            // Absolute form (rare): skip the scheme and the authority.
            let Some(rest) = target
                .strip_prefix(b"http://".as_slice())
                .or_else(|| target.strip_prefix(b"https://".as_slice()))
            else {
                return false;
            };
            target = memchr2(b'/', b' ', rest).map_or(&[][..], |k| &rest[k..]);
        }
        // A path matches when the target starts with it and the path ends there: no need to
        // find the target's end first.
        self.paths.iter().any(|p| {
            target.starts_with(p) && matches!(target.get(p.len()), None | Some(b' ' | b'?'))
        })
    }
}

/// Parses lines of one format. Holds the minute cache, so keep one per source.
#[derive(Debug, Clone)]
pub struct Parser {
    /// The format lines are expected in.
    format: Format,
    /// Last minute seen → epoch; makes date conversion nearly free.
    cache: MinuteCache,
    /// Offset east of UTC, in seconds, for timestamps without a zone (HAProxy).
    utc_offset: i32,
    /// Paths whose requests are marked [`Record::health_check`]; empty: none, and the request
    /// line is not read.
    health: HealthPaths,
}

impl Parser {
    /// Creates a parser for `format`; zone-less timestamps are read as UTC.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            cache: MinuteCache::new(),
            utc_offset: 0,
            health: HealthPaths::default(),
        }
    }

    /// Marks requests for these paths as health checks ([`Record::health_check`]). The
    /// format must have the request line ([`Format::has_request_line`]); config validation
    /// refuses paths for one that has not (without it nothing would ever be marked).
    pub fn with_health_check_paths<S: AsRef<str>>(mut self, paths: &[S]) -> Self {
        self.health = HealthPaths::new(paths);
        self
    }

    /// Sets the offset (seconds east of UTC) used for timestamps that carry no zone:
    /// HAProxy's accept date is the balancer's local time.
    pub fn with_utc_offset(mut self, seconds_east: i32) -> Self {
        self.utc_offset = seconds_east;
        self
    }

    /// The format this parser reads.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Parses one line (without its newline; a trailing `\r` is ignored).
    #[inline]
    pub fn parse(&mut self, line: &[u8]) -> LineResult<Record> {
        let line = match line.last() {
            Some(b'\r') => &line[..line.len() - 1],
            Some(_) => line,
            None => return Err(LineError::Empty),
        };
        if !self.health.is_empty() {
            return self.parse_marking(line);
        }
        // The usual case, kept as small as it was so it still inlines into the caller's
        // loop: the request line is never looked for.
        match &self.format {
            Format::NginxCombined => combined(&mut self.cache, line).map(|(r, ..)| r),
            Format::NginxTimed => timed(&mut self.cache, line).map(|(r, _)| r),
            Format::Stacktop => stacktop(line).map(|(r, _)| r),
            Format::HaproxyHttp => haproxy(&mut self.cache, line, self.utc_offset),
            Format::Custom(f) => custom(&mut self.cache, f, line, false).map(|(r, _)| r),
        }
    }

    /// [`Parser::parse`] with health-check paths: also finds the request line and marks the
    /// record when its path is one of them. Out of line, so it does not weigh on the usual
    /// case.
    #[inline(never)]
    fn parse_marking(&mut self, line: &[u8]) -> LineResult<Record> {
        let (mut record, request) = match &self.format {
            Format::NginxCombined => combined(&mut self.cache, line).map(|(r, _, q)| (r, Some(q))),
            Format::NginxTimed => timed(&mut self.cache, line).map(|(r, q)| (r, Some(q))),
            Format::Stacktop => stacktop(line).map(|(r, end)| (r, stacktop_request(line, end))),
            Format::HaproxyHttp => {
                haproxy(&mut self.cache, line, self.utc_offset).map(|r| (r, last_quoted(line)))
            }
            Format::Custom(f) => custom(&mut self.cache, f, line, true),
        }?;
        record.health_check = request
            .and_then(|r| line.get(r))
            .is_some_and(|r| self.health.matches(r));
        Ok(record)
    }
}

/// Checks that `l[i] == want`: `Truncated` past the end, `Mismatch` otherwise.
#[inline(always)]
fn expect(l: &[u8], i: usize, want: u8) -> LineResult<()> {
    match l.get(i) {
        Some(&c) if c == want => Ok(()),
        Some(_) => Err(LineError::Mismatch),
        None => Err(LineError::Truncated),
    }
}

/// Index of the quote that closes a quoted string whose content starts at `i`.
/// A backslash escapes the next byte, so `\"` and `\\` inside are skipped correctly.
#[inline(always)]
fn quoted_end(l: &[u8], mut i: usize) -> LineResult<usize> {
    loop {
        let rest = l.get(i..).ok_or(LineError::Truncated)?;
        let k = memchr2(b'"', b'\\', rest).ok_or(LineError::Truncated)?;
        if rest[k] == b'"' {
            return Ok(i + k);
        }
        i += k + 2;
    }
}

/// Reads exactly three digits at `i` as a status code.
#[inline(always)]
fn status3(l: &[u8], i: usize) -> LineResult<u16> {
    let s = l.get(i..i + 3).ok_or(LineError::Truncated)?;
    let (a, b, c) = (
        s[0].wrapping_sub(b'0'),
        s[1].wrapping_sub(b'0'),
        s[2].wrapping_sub(b'0'),
    );
    if a > 9 || b > 9 || c > 9 {
        return Err(LineError::BadStatus);
    }
    // A fourth digit means this is not a status at all.
    if l.get(i + 3).is_some_and(u8::is_ascii_digit) {
        return Err(LineError::BadStatus);
    }
    Ok(u16::from(a) * 100 + u16::from(b) * 10 + u16::from(c))
}

/// Reads an unsigned integer at `i` (`-` means 0); returns it and the index after it.
#[inline(always)]
fn uint(l: &[u8], mut i: usize) -> LineResult<(u64, usize)> {
    match l.get(i) {
        None => return Err(LineError::Truncated),
        Some(b'-') => return Ok((0, i + 1)),
        Some(c) if !c.is_ascii_digit() => return Err(LineError::BadNumber),
        Some(_) => {}
    }
    let start = i;
    let mut v: u64 = 0;
    while let Some(&c) = l.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // 20 digits would overflow; no response is that large.
        if i - start >= 19 {
            return Err(LineError::BadNumber);
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    Ok((v, i))
}

/// Reads a duration in seconds (`0.123`, `12`, or `-` for none) at `i` as microseconds.
#[inline(always)]
fn seconds_us(l: &[u8], i: usize) -> LineResult<(Option<u64>, usize)> {
    if l.get(i) == Some(&b'-') {
        return Ok((None, i + 1));
    }
    let (whole, mut j) = uint(l, i)?;
    let mut us = whole.saturating_mul(1_000_000);
    if l.get(j) == Some(&b'.') {
        j += 1;
        let mut scale = 100_000;
        while let Some(&c) = l.get(j) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // `whole` may already have saturated (a 19-digit duration).
            us = us.saturating_add(u64::from(d) * scale);
            scale /= 10;
            j += 1;
        }
    }
    Ok((Some(us), j))
}

/// The field after a number must end the line or be followed by a space.
#[inline(always)]
fn end_of_token(l: &[u8], i: usize) -> LineResult<()> {
    match l.get(i) {
        None | Some(b' ') => Ok(()),
        Some(_) => Err(LineError::BadNumber),
    }
}

/// `nginx-combined`; also returns the index just after `$body_bytes_sent` and where the
/// request line is (found on the way, so it costs nothing).
#[inline(always)]
fn combined(cache: &mut MinuteCache, l: &[u8]) -> LineResult<(Record, usize, Range<usize>)> {
    let lb = memchr(b'[', l).ok_or(LineError::Truncated)?;
    let t = l.get(lb + 1..lb + 27).ok_or(LineError::Truncated)?;
    let unix = cache.clf(t).ok_or(LineError::BadTime)?;
    let mut i = lb + 27;
    expect(l, i, b']')?;
    expect(l, i + 1, b' ')?;
    expect(l, i + 2, b'"')?;
    let request_end = quoted_end(l, i + 3)?;
    let request = i + 3..request_end;
    i = request_end + 1;
    expect(l, i, b' ')?;
    let status = status3(l, i + 1)?;
    expect(l, i + 4, b' ')?;
    let (bytes, j) = uint(l, i + 5)?;
    end_of_token(l, j)?;
    let rec = Record {
        unix,
        status,
        bytes,
        latency_us: None,
        health_check: false,
    };
    Ok((rec, j, request))
}

/// `nginx-timed`: combined, then ` $request_time` after the user agent's closing quote,
/// optionally followed by ` $upstream_response_time` (ignored: it may be a list).
#[inline]
fn timed(cache: &mut MinuteCache, l: &[u8]) -> LineResult<(Record, Range<usize>)> {
    let (mut rec, after_bytes, request) = combined(cache, l)?;
    // The last quote on the line closes the user agent: nothing after it is quoted.
    let q = memrchr(b'"', l).ok_or(LineError::Truncated)?;
    if q <= after_bytes {
        return Err(LineError::Truncated);
    }
    expect(l, q + 1, b' ')?;
    let (lat, j) = seconds_us(l, q + 2)?;
    end_of_token(l, j)?;
    rec.latency_us = lat;
    Ok((rec, request))
}

/// `stacktop`: `$msec $status $body_bytes_sent $request_time ...` — four tokens, then stop.
/// Also returns the index after the fourth, where [`stacktop_request`] goes on.
#[inline]
fn stacktop(l: &[u8]) -> LineResult<(Record, usize)> {
    let (unix, mut i) = msec(l).ok_or(LineError::BadTime)?;
    expect(l, i, b' ')?;
    let status = status3(l, i + 1)?;
    i += 4;
    expect(l, i, b' ')?;
    let (bytes, j) = uint(l, i + 1)?;
    expect(l, j, b' ')?;
    let (latency_us, k) = seconds_us(l, j + 1)?;
    end_of_token(l, k)?;
    let rec = Record {
        unix,
        status,
        bytes,
        latency_us,
        health_check: false,
    };
    Ok((rec, k))
}

/// The request line of a `stacktop` line, read on from `k` (after `$request_time`):
/// ` $remote_addr "$request"`.
fn stacktop_request(l: &[u8], k: usize) -> Option<Range<usize>> {
    let addr = k.checked_add(1)?;
    let quote = addr + memchr(b' ', l.get(addr..)?)? + 1;
    if l.get(quote) != Some(&b'"') {
        return None;
    }
    let end = quoted_end(l, quote + 1).ok()?;
    Some(quote + 1..end)
}

/// The last quoted field of a line, when the line ends with it: HAProxy's `"$request"`
/// (HAProxy writes a `"` inside it as `#22`, so the quote before the last one opens it).
fn last_quoted(l: &[u8]) -> Option<Range<usize>> {
    let end = l.len().checked_sub(1).filter(|&e| l[e] == b'"')?;
    let start = memrchr(b'"', &l[..end])? + 1;
    Some(start..end)
}

/// HAProxy `option httplog`:
/// `[syslog header] client:port [25/Nov/2026:12:00:01.123] frontend backend/server
/// TR/Tw/Tc/Tr/Ta status bytes ...`.
///
/// The accept date is found as the first `[` followed by `dd/`, which skips a BSD syslog
/// tag like `haproxy[1234]:` and RFC 5424 structured data without parsing either header.
fn haproxy(cache: &mut MinuteCache, l: &[u8], offset: i32) -> LineResult<Record> {
    let mut from = 0;
    let date = loop {
        let p = from + memchr(b'[', &l[from..]).ok_or(LineError::Truncated)?;
        if l.get(p + 3) == Some(&b'/') && l.get(p + 7) == Some(&b'/') {
            break p + 1;
        }
        from = p + 1;
    };
    // `dd/Mon/yyyy:hh:mm:ss` is 20 bytes; HAProxy 1.9+ adds `.mmm`.
    let close = match (l.get(date + 20), l.get(date + 24)) {
        (Some(b']'), _) => date + 20,
        (_, Some(b']')) => date + 24,
        (None, _) => return Err(LineError::Truncated),
        _ => return Err(LineError::BadTime),
    };
    let unix = cache
        .clf_no_zone(&l[date..close], offset)
        .ok_or(LineError::BadTime)?;
    expect(l, close + 1, b' ')?;
    let mut i = close + 2;
    // Skip the frontend and backend/server names.
    for _ in 0..2 {
        i += memchr(b' ', l.get(i..).ok_or(LineError::Truncated)?).ok_or(LineError::Truncated)?;
        i += 1;
    }
    let rest = l.get(i..).ok_or(LineError::Truncated)?;
    let tlen = memchr(b' ', rest).ok_or(LineError::Truncated)?;
    let timers = &rest[..tlen];
    // Five timers (TR/Tw/Tc/Tr/Ta, or Tq/Tw/Tc/Tr/Tt before 1.9): a TCP log line has three.
    if timers.iter().filter(|&&c| c == b'/').count() != 4 {
        return Err(LineError::Mismatch);
    }
    let slash = memrchr(b'/', timers).ok_or(LineError::Mismatch)?;
    let total = &timers[slash + 1..];
    // `+` marks a logasap total; `-1` an aborted request, which has no meaningful duration.
    let total = total.strip_prefix(b"+").unwrap_or(total);
    let latency_us = if total == b"-1" {
        None
    } else {
        let (ms, end) = uint(total, 0)?;
        if end != total.len() {
            return Err(LineError::BadNumber);
        }
        Some(ms.saturating_mul(1000))
    };
    i += tlen + 1;
    let status = if l.get(i..i + 2) == Some(b"-1") {
        i += 2;
        0
    } else {
        let s = status3(l, i)?;
        i += 3;
        s
    };
    expect(l, i, b' ')?;
    i += 1;
    if l.get(i) == Some(&b'+') {
        i += 1;
    }
    let (bytes, j) = uint(l, i)?;
    end_of_token(l, j)?;
    Ok(Record {
        unix,
        status,
        bytes,
        latency_us,
        health_check: false,
    })
}

/// Skips a `$upstream_response_time` value: `-`, `0.001`, or a list joined by `, ` and ` : `.
fn skip_upstream(l: &[u8], mut i: usize) -> usize {
    let token = |i: usize| {
        l[i.min(l.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'.' || **c == b'-')
            .count()
    };
    i += token(i);
    loop {
        let sep = if l.get(i..i + 2) == Some(b", ") {
            2
        } else if l.get(i..i + 3) == Some(b" : ") {
            3
        } else {
            return i;
        };
        let n = token(i + sep);
        if n == 0 {
            return i;
        }
        i += sep + n;
    }
}

/// Where a skipped field ends: at the closing quote when the next literal opens with `"`
/// (so quoted values may contain the literal), else at the next occurrence of the literal,
/// else at the end of the line.
#[inline]
fn skip_until(l: &[u8], i: usize, next: Option<&[u8]>) -> LineResult<usize> {
    let Some(lit) = next else {
        return Ok(l.len());
    };
    if lit[0] == b'"' {
        return quoted_end(l, i);
    }
    let mut from = i;
    loop {
        let rest = l.get(from..).ok_or(LineError::Truncated)?;
        let k = memchr(lit[0], rest).ok_or(LineError::Truncated)?;
        if rest[k..].starts_with(lit) {
            return Ok(from + k);
        }
        if rest.len() - k < lit.len() {
            return Err(LineError::Truncated);
        }
        from += k + 1;
    }
}

/// A compiled format string: walk the steps up to the last needed one (up to `$request`'s
/// end too when `want_request`), returning where the request line is when it was read.
fn custom(
    cache: &mut MinuteCache,
    f: &CustomFormat,
    l: &[u8],
    want_request: bool,
) -> LineResult<(Record, Option<Range<usize>>)> {
    let mut unix = None;
    let mut status = None;
    let mut bytes = 0;
    let mut latency_us = None;
    let mut request = None;
    let mut i = 0;
    let needed = if want_request {
        f.request_steps
    } else {
        f.needed_steps
    };
    let steps = &f.steps[..needed];
    for (k, step) in steps.iter().enumerate() {
        let field = match step {
            Step::Literal(lit) => {
                let rest = l.get(i..).ok_or(LineError::Truncated)?;
                if !rest.starts_with(lit) {
                    return Err(if lit.starts_with(rest) {
                        LineError::Truncated
                    } else {
                        LineError::Mismatch
                    });
                }
                i += lit.len();
                continue;
            }
            Step::Field(field) => *field,
        };
        match field {
            Field::TimeLocal => {
                let t = l.get(i..i + 26).ok_or(LineError::Truncated)?;
                unix = Some(cache.clf(t).ok_or(LineError::BadTime)?);
                i += 26;
            }
            Field::TimeIso8601 => {
                let (t, n) = cache
                    .iso8601(l.get(i..).ok_or(LineError::Truncated)?)
                    .ok_or(LineError::BadTime)?;
                unix = Some(t);
                i += n;
            }
            Field::Msec => {
                let (t, n) =
                    msec(l.get(i..).ok_or(LineError::Truncated)?).ok_or(LineError::BadTime)?;
                unix = Some(t);
                i += n;
            }
            Field::Status => {
                status = Some(status3(l, i)?);
                i += 3;
            }
            Field::BodyBytesSent | Field::BytesSent => {
                let (v, j) = uint(l, i)?;
                if Some(field) == f.bytes_field {
                    bytes = v;
                }
                i = j;
            }
            Field::RequestTime => {
                let (v, j) = seconds_us(l, i)?;
                latency_us = v;
                i = j;
            }
            Field::UpstreamResponseTime => i = skip_upstream(l, i),
            Field::Request | Field::Skip => {
                let next = match steps.get(k + 1) {
                    Some(Step::Literal(lit)) => Some(lit.as_slice()),
                    _ => None,
                };
                let start = i;
                i = skip_until(l, i, next)?;
                if field == Field::Request {
                    request = Some(start..i);
                }
            }
        }
    }
    let rec = Record {
        unix: unix.ok_or(LineError::Truncated)?,
        status: status.ok_or(LineError::Truncated)?,
        bytes,
        latency_us,
        health_check: false,
    };
    Ok((rec, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25T12:00:01Z.
    const T: i64 = 1_795_608_001;

    fn p(format: &str) -> Parser {
        Parser::new(Format::parse(format).unwrap())
    }

    fn rec(unix: i64, status: u16, bytes: u64, latency_us: Option<u64>) -> Record {
        Record {
            unix,
            status,
            bytes,
            latency_us,
            health_check: false,
        }
    }

    const COMBINED: &str = r#"203.0.113.7 - - [25/Nov/2026:12:00:01 +0000] "GET /index.html HTTP/1.1" 200 612 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0""#;

    /// Found by the `log_line` fuzz target: a 19-digit duration with a
    /// fraction overflowed (a panic in debug builds, a wrong latency in
    /// release ones); it saturates.
    #[test]
    fn a_huge_duration_saturates() {
        let l = b"1795608001.123 200 612 7777777777777777777.777";
        assert_eq!(p("stacktop").parse(l), Ok(rec(T, 200, 612, Some(u64::MAX))));
    }

    #[test]
    fn combined_real_lines() {
        let mut p = p("nginx-combined");
        assert_eq!(p.parse(COMBINED.as_bytes()), Ok(rec(T, 200, 612, None)));
        // IPv6, a user, a zone east of UTC, `-` bytes, CRLF.
        let l = b"2001:db8::1 - alice [25/Nov/2026:17:30:01 +0530] \"POST /api HTTP/2.0\" 204 - \"-\" \"curl/8.5\"\r";
        assert_eq!(p.parse(l), Ok(rec(T, 204, 0, None)));
        // West of UTC.
        let l = b"::1 - - [25/Nov/2026:05:00:02 -0700] \"GET / HTTP/1.1\" 404 153 \"-\" \"-\"";
        assert_eq!(p.parse(l), Ok(rec(T + 1, 404, 153, None)));
    }

    #[test]
    fn combined_escaped_quotes_and_binary() {
        let mut p = p("nginx-combined");
        let l = br#"10.0.0.1 - - [25/Nov/2026:12:00:01 +0000] "GET /search?q=\"x\" 200 1\\" 503 10 "-" "ua""#;
        assert_eq!(p.parse(l), Ok(rec(T, 503, 10, None)));
        // Nginx's own escaping (\x22) and raw non-UTF-8 bytes in path and agent.
        let mut l = b"10.0.0.1 - - [25/Nov/2026:12:00:01 +0000] \"GET /\xff\xfe\\x22 HTTP/1.1\" 301 0 \"-\" \"\xc3\x28\"".to_vec();
        assert_eq!(p.parse(&l), Ok(rec(T, 301, 0, None)));
        // A garbage request line (a TLS handshake sent to port 80) still parses.
        l = b"10.0.0.1 - - [25/Nov/2026:12:00:01 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\""
            .to_vec();
        assert_eq!(p.parse(&l), Ok(rec(T, 400, 157, None)));
    }

    #[test]
    fn combined_malformed() {
        let mut p = p("nginx-combined");
        let full = COMBINED.as_bytes();
        assert_eq!(p.parse(b""), Err(LineError::Empty));
        assert_eq!(p.parse(b"hello world"), Err(LineError::Truncated));
        // Truncated at every point before the bytes field is an error, never a panic.
        let bytes_end = COMBINED.find(" \"https").unwrap();
        for cut in 1..bytes_end - 3 {
            assert!(p.parse(&full[..cut]).is_err(), "cut at {cut}");
        }
        let bad_time = COMBINED.replace("12:00:01", "12:0x:01");
        assert_eq!(p.parse(bad_time.as_bytes()), Err(LineError::BadTime));
        let bad_status = COMBINED.replace(" 200 ", " 2x0 ");
        assert_eq!(p.parse(bad_status.as_bytes()), Err(LineError::BadStatus));
        let long_status = COMBINED.replace(" 200 ", " 2000 ");
        assert_eq!(p.parse(long_status.as_bytes()), Err(LineError::BadStatus));
        let bad_bytes = COMBINED.replace(" 612 ", " 6a2 ");
        assert_eq!(p.parse(bad_bytes.as_bytes()), Err(LineError::BadNumber));
        let unclosed = br#"1.2.3.4 - - [25/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1 200 5"#;
        assert_eq!(p.parse(unclosed), Err(LineError::Truncated));
    }

    #[test]
    fn timed_lines() {
        let mut p = p("nginx-timed");
        let l = format!("{COMBINED} 0.123");
        assert_eq!(p.parse(l.as_bytes()), Ok(rec(T, 200, 612, Some(123_000))));
        let l = format!("{COMBINED} 1.5 0.001, 0.002 : 0.004");
        assert_eq!(p.parse(l.as_bytes()), Ok(rec(T, 200, 612, Some(1_500_000))));
        let l = format!("{COMBINED} 0.000 -");
        assert_eq!(p.parse(l.as_bytes()), Ok(rec(T, 200, 612, Some(0))));
        // A user agent with an escaped quote does not confuse the search from the end.
        let l = br#"::1 - - [25/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "evil \"ua\"" 0.010 0.009"#;
        assert_eq!(p.parse(l), Ok(rec(T, 200, 5, Some(10_000))));
        // Combined without the time is malformed in this format.
        assert_eq!(p.parse(COMBINED.as_bytes()), Err(LineError::Truncated));
        let l = format!("{COMBINED} abc");
        assert_eq!(p.parse(l.as_bytes()), Err(LineError::BadNumber));
    }

    #[test]
    fn stacktop_lines() {
        let mut p = p("stacktop");
        let l = br#"1795608001.123 200 612 0.004 2001:db8::7 "GET / HTTP/1.1" "-" "curl/8" 0.003"#;
        assert_eq!(p.parse(l), Ok(rec(T, 200, 612, Some(4_000))));
        let l =
            br#"1795608002.999 502 0 30.001 10.0.0.1 "GET /x HTTP/1.1" "-" "\xff" 0.001, 30.000"#;
        assert_eq!(p.parse(l), Ok(rec(T + 1, 502, 0, Some(30_001_000))));
        assert_eq!(p.parse(b"1795608001.123 200"), Err(LineError::Truncated));
        assert_eq!(p.parse(b"x 200 1 0.1"), Err(LineError::BadTime));
        assert_eq!(
            p.parse(b"1795608001.123 2000 1 0.1"),
            Err(LineError::BadStatus)
        );
    }

    const HAPROXY: &str = r#"127.0.0.1:39622 [25/Nov/2026:12:00:01.123] http-in web/web1 0/0/1/2/3 200 1234 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#;

    #[test]
    fn haproxy_plain_and_syslog() {
        let mut p = p("haproxy-http");
        let want = Ok(rec(T, 200, 1234, Some(3_000)));
        assert_eq!(p.parse(HAPROXY.as_bytes()), want);
        let bsd = format!("<134>Nov 25 12:00:01 lb1 haproxy[1234]: {HAPROXY}");
        assert_eq!(p.parse(bsd.as_bytes()), want);
        let rfc5424 =
            format!("<134>1 2026-11-25T12:00:01.123+00:00 lb1 haproxy 1234 - - {HAPROXY}");
        assert_eq!(p.parse(rfc5424.as_bytes()), want);
        let sd = format!("<134>1 2026-11-25T12:00:01Z lb1 haproxy 1234 - [x@1 a=\"b\"] {HAPROXY}");
        assert_eq!(p.parse(sd.as_bytes()), want);
    }

    #[test]
    fn haproxy_variants() {
        let mut p = p("haproxy-http");
        // IPv6 client, SSL frontend, no server, aborted (-1 timers and status), logasap bytes.
        let l = br#"2001:db8::1:51000 [25/Nov/2026:12:00:01.999] https-in~ web/<NOSRV> -1/-1/-1/-1/-1 -1 +0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>""#;
        assert_eq!(p.parse(l), Ok(rec(T, 0, 0, None)));
        let l = br#"10.0.0.9:1 [25/Nov/2026:12:00:02.000] http-in web/web2 10/0/0/100/+2110 503 212 - - sC-- 3/3/1/1/0 0/0 "GET /\xff HTTP/1.1""#;
        assert_eq!(p.parse(l), Ok(rec(T + 1, 503, 212, Some(2_110_000))));
        // Pre-1.9 date without milliseconds.
        let l = br#"10.0.0.9:1 [25/Nov/2026:12:00:01] http-in web/web2 1/0/0/1/2 200 1 - - ---- 0/0/0/0/0 0/0 "GET / HTTP/1.0""#;
        assert_eq!(p.parse(l), Ok(rec(T, 200, 1, Some(2_000))));
        // Local time one hour east of UTC.
        let mut east = Parser::new(Format::HaproxyHttp).with_utc_offset(3600);
        let l = HAPROXY.replace("12:00:01", "13:00:01");
        assert_eq!(east.parse(l.as_bytes()).map(|r| r.unix), Ok(T));
    }

    #[test]
    fn haproxy_malformed() {
        let mut p = p("haproxy-http");
        // A TCP-mode line has three timers and no status.
        let tcp = b"10.0.0.1:5 [25/Nov/2026:12:00:01.000] fe be/s1 0/0/5007 212 -- 0/0/0/0/3 0/0";
        assert_eq!(p.parse(tcp), Err(LineError::Mismatch));
        let start = b"<134>Nov 25 12:00:01 lb1 haproxy[1234]: Proxy web started.";
        assert_eq!(p.parse(start), Err(LineError::Truncated));
        for cut in 1..HAPROXY.find(" 1234").unwrap() {
            assert!(p.parse(&HAPROXY.as_bytes()[..cut]).is_err(), "cut at {cut}");
        }
        let bad = HAPROXY.replace("Nov/2026:12", "Nov/2026:25");
        assert_eq!(p.parse(bad.as_bytes()), Err(LineError::BadTime));
    }

    #[test]
    fn custom_format_strings() {
        let combined_fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
        let mut p1 = p(combined_fmt);
        assert_eq!(p1.parse(COMBINED.as_bytes()), Ok(rec(T, 200, 612, None)));
        let l =
            br#"10.0.0.1 - - [25/Nov/2026:12:00:01 +0000] "GET /a\"b HTTP/1.1" 503 10 "-" "ua""#;
        assert_eq!(p1.parse(l), Ok(rec(T, 503, 10, None)));
        assert_eq!(
            p1.parse(&COMBINED.as_bytes()[..60]),
            Err(LineError::Truncated)
        );

        let mut p2 = p(
            "$time_iso8601 $remote_addr $status $bytes_sent $upstream_response_time rt=$request_time \"$http_user_agent\"",
        );
        let l =
            b"2026-11-25T17:30:01+05:30 2001:db8::2 200 900 0.001, 0.002 : 0.003 rt=0.250 \"x\"";
        assert_eq!(p2.parse(l), Ok(rec(T, 200, 900, Some(250_000))));
        let l = b"2026-11-25T12:00:01Z ::1 404 12 - rt=0.001 \"x\"";
        assert_eq!(p2.parse(l), Ok(rec(T, 404, 12, Some(1_000))));
        assert_eq!(
            p2.parse(b"2026-11-25T12:00:01Z ::1 404 12 - rt=x"),
            Err(LineError::BadNumber)
        );

        let mut p3 = p("$msec|$status|$body_bytes_sent|$host");
        assert_eq!(
            p3.parse(b"1795608001.5|301|7|example.com"),
            Ok(rec(T, 301, 7, None))
        );
        assert_eq!(p3.parse(b"1795608001.5;301;7"), Err(LineError::Mismatch));
    }

    #[test]
    fn health_paths_match_the_path_exactly() {
        let h = HealthPaths::new(&["/health", "/ping"]);
        for yes in [
            &b"GET /health HTTP/1.1"[..],
            b"HEAD /health?full=1 HTTP/1.0",
            b"OPTIONS /ping HTTP/1.1",
            b"GET http://10.0.0.11/health HTTP/1.1",
            b"GET /health",
        ] {
            assert!(h.matches(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b"GET /healthz HTTP/1.1"[..],
            b"GET /health/ HTTP/1.1",
            b"GET /api/health HTTP/1.1",
            b"GET / HTTP/1.1",
            b"/health",
            b"\\x16\\x03\\x01",
            b"",
        ] {
            assert!(!h.matches(no), "{}", String::from_utf8_lossy(no));
        }
        assert!(!HealthPaths::default().matches(b"GET /health HTTP/1.1"));
    }

    /// (health check?, status) of `lines` parsed by `format` with `/health` as the path.
    fn marks(format: &str, lines: &[&str]) -> Vec<(bool, u16)> {
        let mut p = p(format).with_health_check_paths(&["/health"]);
        lines
            .iter()
            .map(|l| {
                let r = p.parse(l.as_bytes()).unwrap();
                (r.health_check, r.status)
            })
            .collect()
    }

    #[test]
    fn every_format_with_a_request_line_marks_health_checks() {
        let health = COMBINED.replace("GET /index.html", "GET /health");
        assert_eq!(
            marks("nginx-combined", &[COMBINED, &health]),
            [(false, 200), (true, 200)]
        );
        assert_eq!(
            marks(
                "nginx-timed",
                &[
                    &format!("{COMBINED} 0.001"),
                    &format!("{health} 0.001 0.001")
                ]
            ),
            [(false, 200), (true, 200)]
        );
        assert_eq!(
            marks(
                "stacktop",
                &[
                    r#"1795608001.123 200 2 0.001 10.0.0.10 "GET /health HTTP/1.1" "-" "-" 0.001"#,
                    r#"1795608001.123 200 2 0.001 10.0.0.10 "GET /healthy HTTP/1.1" "-" "-" 0.001"#,
                    // No request line: an ordinary request, not a malformed line.
                    "1795608001.123 503 2 0.001",
                ]
            ),
            [(true, 200), (false, 200), (false, 503)]
        );
        assert_eq!(
            marks(
                "haproxy-http",
                &[
                    &HAPROXY.replace("GET / ", "GET /health "),
                    HAPROXY,
                    // A captured header before the request line is not it.
                    &HAPROXY.replace(" \"GET / ", " {/health} \"GET /x "),
                ]
            ),
            [(true, 200), (false, 200), (false, 200)]
        );
        // A format string with `$request` after everything else it needs, and one with it
        // in the middle.
        assert_eq!(
            marks(
                r#"$msec $status $body_bytes_sent "$request" "$http_user_agent""#,
                &[
                    r#"1795608001.5 200 7 "GET /health HTTP/1.1" "HAProxy""#,
                    r#"1795608001.5 200 7 "GET /index.html HTTP/1.1" "curl""#,
                ]
            ),
            [(true, 200), (false, 200)]
        );
        assert_eq!(
            marks(
                r#"$remote_addr [$time_local] "$request" $status $body_bytes_sent"#,
                &[r#"10.0.0.10 [25/Nov/2026:12:00:01 +0000] "GET /health?x HTTP/1.1" 200 2"#]
            ),
            [(true, 200)]
        );
    }

    #[test]
    fn without_paths_nothing_is_a_health_check() {
        let mut p = p("nginx-combined");
        let health = COMBINED.replace("GET /index.html", "GET /health");
        assert_eq!(p.parse(health.as_bytes()), Ok(rec(T, 200, 612, None)));
        // A line the marking path reads further than the plain one is no less valid.
        let mut p = p_with("stacktop");
        assert!(
            p.parse(b"1795608001.123 200 2 0.001 10.0.0.10 \"GET /health")
                .is_ok()
        );
    }

    fn p_with(format: &str) -> Parser {
        p(format).with_health_check_paths(&["/health"])
    }
}
