//! The boxes under the detail screen's Node and Now boxes: Alerts (the
//! node's active alerts, when it has any), Checks, Backends (LB nodes) and
//! Traffic (nodes with access logs), and how a column of them shares the
//! room it gets.
//!
//! Each is a [`Panel`]: a title, heading lines that stay when rows are
//! cut, and rows, worst first where order matters, so a short screen keeps
//! what matters. What is stale says so: a stale check reads `? stale` with
//! its last status and age, stale backends read `?/N UP` with the reason,
//! and their status words lose their colours.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use stacktop_proto::Health;
use stacktop_proto::metrics::{self, ServerState, server_state};
use stacktop_proto::v1::{Alert, AlertState, BackendServer, CheckResult, NodeState, SourceTraffic};

use super::alerts::{severity_style, state_style};
use super::style;
use crate::alerts;
use crate::format;
use crate::view;

/// A bordered box of text lines: its title, heading lines that stay when
/// rows are cut, and its rows.
pub struct Panel {
    /// The title, without the surrounding spaces.
    pub title: String,
    /// Lines shown above the rows whatever the room.
    pub heading: Vec<Line<'static>>,
    /// The rows, most important first.
    pub rows: Vec<Line<'static>>,
}

impl Panel {
    /// Rows it needs to show everything.
    pub fn height(&self) -> u16 {
        (self.rows.len() + self.heading.len() + 2) as u16
    }
}

/// Panels stacked in `area`, each as tall as it needs while there is room;
/// the one that runs out of room shows what fits and says how much is cut,
/// and those after it are left out.
pub fn render_column(frame: &mut Frame, panels: &[&Panel], area: Rect) {
    let mut y = area.y;
    let bottom = area.y + area.height;
    for p in panels {
        let room = bottom.saturating_sub(y);
        // A panel that cannot show one row is left out.
        if room < 3 + p.heading.len() as u16 {
            break;
        }
        let height = p.height().min(room);
        let inner = height as usize - 2 - p.heading.len();
        let shown = p.rows.len().min(inner);
        let title = if shown < p.rows.len() {
            format!(" {}, {} of {} shown ", p.title, shown, p.rows.len())
        } else {
            format!(" {} ", p.title)
        };
        let mut lines: Vec<Line> = p.heading.clone();
        lines.extend(p.rows.iter().take(shown).cloned());
        let rect = Rect { y, height, ..area };
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(title)),
            rect,
        );
        y += height;
    }
}

/// A panel that could not be filled, with why.
pub fn unavailable(title: &str, why: &str, inner: usize) -> Panel {
    Panel {
        title: format!("{title} unavailable"),
        heading: Vec::new(),
        rows: vec![Line::styled(format::fit_left(why, inner), style::muted())],
    }
}

/// How long before the collector's `clock_ms` `then_ms` was, e.g. `12s`.
fn age(then_ms: i64, clock_ms: i64) -> Option<String> {
    (then_ms > 0).then(|| format::ago((clock_ms - then_ms) / 1000))
}

/// A node's active alerts in the order of the alerts view (firing first),
/// one line each: severity symbol, state, age on the collector's
/// `clock_ms`, rule, what was done about it, summary; `inner` columns wide.
pub fn alerts(list: &[Alert], clock_ms: i64, inner: usize) -> Panel {
    let rule_w = list
        .iter()
        .map(|a| a.rule.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 24);
    let rows = alerts::ordered(list)
        .into_iter()
        .map(|row| {
            let a = &list[row.index];
            let marks = alerts::marks(a);
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" [{}]", marks.join(", "))
            };
            let mut sev = severity_style(a.severity());
            if a.state() == AlertState::Firing {
                sev = sev.add_modifier(Modifier::BOLD);
            }
            let fixed = 2 + 9 + 7 + rule_w + 1;
            Line::from(vec![
                Span::styled(format!("{} ", alerts::severity_symbol(a.severity())), sev),
                Span::styled(
                    format!("{:<8} ", alerts::state_word(a.state())),
                    state_style(a.state()),
                ),
                Span::styled(format!("{:>6} ", alerts::age(a, clock_ms)), style::muted()),
                Span::raw(format!("{} ", format::fit_left(&a.rule, rule_w))),
                Span::raw(format::fit_left(
                    &format!("{}{marks}", a.summary),
                    inner.saturating_sub(fixed),
                )),
            ])
        })
        .collect();
    let firing = list
        .iter()
        .filter(|a| a.state() == AlertState::Firing)
        .count();
    let title = if firing > 0 {
        format!("Alerts {}, {firing} firing", list.len())
    } else {
        format!("Alerts {}", list.len())
    };
    Panel {
        title,
        heading: Vec::new(),
        rows,
    }
}

/// The node's checks, worst first; ages against the collector's
/// `clock_ms`; `inner` columns wide.
pub fn checks(node: &NodeState, clock_ms: i64, inner: usize) -> Panel {
    let name_w = node
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(30);
    let mut checks: Vec<&CheckResult> = node.checks.iter().collect();
    checks.sort_by_key(|c| std::cmp::Reverse(c.status().severity()));
    let rows = checks
        .iter()
        .map(|c| {
            let (status, latency, message) = if c.stale {
                let ago = age(c.timestamp_ms, clock_ms)
                    .map(|a| format!(" {a} ago"))
                    .unwrap_or_default();
                (
                    Span::styled(format!("{:<9}", "? stale"), style::health(Health::Unknown)),
                    String::new(),
                    format!("last {}{ago}: {}", c.last_status().name(), c.message),
                )
            } else {
                (
                    style::health_span(c.status(), 9),
                    latency(c.latency_seconds),
                    c.message.clone(),
                )
            };
            Line::from(vec![
                status,
                Span::raw(format!(" {} ", format::fit_left(&c.name, name_w))),
                Span::styled(format!("{latency:>7} "), style::muted()),
                // status, name, latency, then the message in what is left.
                Span::raw(format::fit_left(
                    &message,
                    inner.saturating_sub(9 + name_w + 2 + 8),
                )),
            ])
        })
        .collect();
    let mut title = format!("Checks {}", node.checks.len());
    let failing = view::failing_checks(&node.checks).len();
    if failing > 0 {
        title.push_str(&format!(", {failing} failing"));
    }
    let stale = view::stale_checks(&node.checks).len();
    if stale > 0 {
        title.push_str(&format!(", {stale} stale"));
    }
    Panel {
        title,
        heading: Vec::new(),
        rows,
    }
}

/// An LB's backend servers; while their states are unknown, a line says
/// why and the status words are not coloured as if current.
pub fn backends(node: &NodeState, clock_ms: i64, inner: usize) -> Panel {
    let width = |f: &dyn Fn(&BackendServer) -> usize, min: usize| {
        node.backends
            .iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .clamp(min, 16)
    };
    let backend_w = width(&|b| b.backend.chars().count(), 7);
    let server_w = width(&|b| b.server.chars().count(), 6);
    const STATUS_W: usize = 8;
    let fixed = backend_w + 1 + server_w + 1 + STATUS_W + 1 + 6 + 1 + 6 + 1 + 7 + 1;
    let check_w = inner.saturating_sub(fixed).max(6);
    let summary = view::backends(node);
    let stale = summary.is_some_and(|b| b.stale);
    let mut heading = Vec::new();
    if stale {
        let why = if !node.backends_error.is_empty() {
            node.backends_error.clone()
        } else if node.health() == Health::Down {
            "the node is down".to_string()
        } else {
            "the last sample is too old".to_string()
        };
        heading.push(Line::styled(
            format::fit_left(&format!("states unknown: {why}"), inner),
            style::health(Health::Warn),
        ));
    }
    heading.push(Line::styled(
        format!(
            "{} {} {} {:<6} {:>6} {:>7} {}",
            format::fit_left("BACKEND", backend_w),
            format::fit_left("SERVER", server_w),
            format::fit_left(if stale { "LAST" } else { "STATUS" }, STATUS_W),
            "",
            "SESS",
            "REQ/S",
            "LAST CHECK",
        ),
        style::muted(),
    ));
    let rows = node
        .backends
        .iter()
        .map(|b| {
            let check = if b.check_description.is_empty() {
                b.check_status.clone()
            } else {
                format!("{} {}", b.check_status, b.check_description)
            };
            let status_style = if stale {
                style::muted()
            } else {
                server_style(&b.status)
            };
            Line::from(vec![
                Span::raw(format!(
                    "{} {} ",
                    format::fit_left(&b.backend, backend_w),
                    format::fit_left(&b.server, server_w)
                )),
                Span::styled(format::fit_left(&b.status, STATUS_W), status_style),
                Span::styled(
                    format!(" {:<6}", if b.backup { "backup" } else { "" }),
                    style::muted(),
                ),
                Span::raw(format!(
                    " {:>6} {:>7} ",
                    b.current_sessions
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| format::UNKNOWN.to_string()),
                    format::rate(b.request_rate),
                )),
                Span::styled(format::fit_left(&check, check_w), style::muted()),
            ])
        })
        .collect();
    let mut title = format!("Backends {}", summary.map(|b| b.text()).unwrap_or_default());
    if stale && let Some(age) = age(node.backends_timestamp_ms, clock_ms) {
        title.push_str(&format!(", last sample {age} ago"));
    }
    Panel {
        title,
        heading,
        rows,
    }
}

/// UP green, DOWN red, MAINT/DRAIN/NOLB yellow, anything else gray.
fn server_style(status: &str) -> Style {
    match server_state(status) {
        ServerState::Up => Style::new().fg(Color::Green),
        ServerState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ServerState::Out => Style::new().fg(Color::Yellow),
        ServerState::Other => Style::new().fg(Color::Gray),
    }
}

/// Request rates by status class and latency per access-log source, as the
/// collector summarised the latest complete second (Fleet.Node); a column
/// of LB health checks per second when any source reports them.
pub fn traffic(traffic: &[SourceTraffic], inner: usize) -> Panel {
    const NUM_W: usize = 7;
    let health_checks = traffic.iter().any(|t| t.health_checks.is_some());
    let columns = metrics::CLASSES.len() + 1 + 3 + usize::from(health_checks);
    let numbers = columns * (NUM_W + 1);
    let longest = traffic
        .iter()
        .map(|t| t.source.chars().count())
        .max()
        .unwrap_or(0);
    let source_w = longest
        .clamp(6, 24)
        .min(inner.saturating_sub(numbers))
        .max(4);
    let mut heading = format::fit_left("SOURCE", source_w);
    for h in metrics::CLASSES.iter().chain(["total"].iter()) {
        heading.push_str(&format!(" {h:>NUM_W$}"));
    }
    for q in ["p50", "p95", "p99"] {
        heading.push_str(&format!(" {q:>NUM_W$}"));
    }
    if health_checks {
        heading.push_str(&format!(" {:>NUM_W$}", "LB chk"));
    }
    let rows = traffic
        .iter()
        .map(|t| {
            let mut spans = vec![Span::raw(format::fit_left(
                if t.source.is_empty() {
                    "(none)"
                } else {
                    &t.source
                },
                source_w,
            ))];
            let classes = [t.class_2xx, t.class_3xx, t.class_4xx, t.class_5xx];
            for (i, v) in classes.iter().enumerate() {
                let text = format!(" {:>NUM_W$}", format::rate(*v));
                // Server errors stand out once there are any.
                let style = if i == 3 && v.is_some_and(|v| v > 0.0) {
                    Style::new().fg(Color::Red)
                } else {
                    Style::new()
                };
                spans.push(Span::styled(text, style));
            }
            spans.push(Span::styled(
                format!(" {:>NUM_W$}", format::rate(t.total)),
                style::heading(),
            ));
            for q in [t.p50_seconds, t.p95_seconds, t.p99_seconds] {
                spans.push(Span::raw(format!(" {:>NUM_W$}", quantile(q))));
            }
            if health_checks {
                spans.push(Span::styled(
                    format!(" {:>NUM_W$}", format::rate(t.health_checks)),
                    style::muted(),
                ));
            }
            Line::from(spans)
        })
        .collect();
    Panel {
        title: "Traffic req/s by status, latency".to_string(),
        heading: vec![Line::styled(heading, style::muted())],
        rows,
    }
}

/// A latency quantile in ms (0 is a value: faster than the log's
/// resolution), `—` when unknown.
fn quantile(seconds: Option<f64>) -> String {
    match seconds.filter(|s| s.is_finite() && *s >= 0.0) {
        None => format::UNKNOWN.to_string(),
        Some(s) if s >= 10.0 => format!("{s:.0} s"),
        Some(s) if s >= 0.0095 || s == 0.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) => format!("{:.1} ms", s * 1000.0),
    }
}

fn latency(seconds: f64) -> String {
    if seconds <= 0.0 || !seconds.is_finite() {
        String::new()
    } else if seconds < 0.001 {
        format!("{:.1} ms", seconds * 1000.0)
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn traffic_shows_the_collectors_numbers_per_source() {
        let t = vec![
            SourceTraffic {
                source: "api".into(),
                class_2xx: Some(5.0),
                total: Some(5.0),
                ..Default::default()
            },
            SourceTraffic {
                source: "nginx".into(),
                class_2xx: Some(90.0),
                class_5xx: Some(2.0),
                total: Some(93.0),
                p95_seconds: Some(0.2),
                ..Default::default()
            },
        ];
        let p = traffic(&t, 78);
        let rows = text(&p.rows);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].starts_with("api "), "{rows:?}");
        // Classes, total and quantiles as sent: nothing summed here.
        let nginx: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(
            nginx,
            [
                "nginx", "90.0", "—", "—", "2.0", "93.0", "—", "200", "ms", "—"
            ]
        );
        assert!(!text(&p.heading)[0].contains("LB chk"));
        let mut with_checks = t.clone();
        with_checks[1].health_checks = Some(0.5);
        let p = traffic(&with_checks, 78);
        assert!(text(&p.heading)[0].ends_with("LB chk"), "{:?}", p.heading);
        assert!(text(&p.rows)[1].trim_end().ends_with("0.5"));
    }

    #[test]
    fn stale_checks_say_so_with_their_last_status() {
        let node = NodeState {
            checks: vec![CheckResult {
                name: "mysql".into(),
                status: Health::Unknown as i32,
                last_status: Health::Crit as i32,
                stale: true,
                message: "SQL thread stopped".into(),
                timestamp_ms: 10_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let p = checks(&node, 57_000, 78);
        assert_eq!(p.title, "Checks 1, 1 stale");
        let row = text(&p.rows).remove(0);
        assert!(row.starts_with("? stale   mysql"), "{row}");
        assert!(
            row.contains("last crit 47s ago: SQL thread stopped"),
            "{row}"
        );
    }

    #[test]
    fn stale_backends_are_unknown_with_the_reason() {
        let node = NodeState {
            health: Health::Ok as i32,
            backends: vec![BackendServer {
                backend: "web".into(),
                server: "web1".into(),
                status: "UP".into(),
                ..Default::default()
            }],
            backends_stale: true,
            backends_error: "haproxy stats: connection refused".into(),
            backends_timestamp_ms: 40_000,
            ..Default::default()
        };
        let p = backends(&node, 52_000, 78);
        assert_eq!(p.title, "Backends ?/1 UP, last sample 12s ago");
        let heading = text(&p.heading);
        assert!(
            heading[0].contains("states unknown: haproxy stats: connection refused"),
            "{heading:?}"
        );
        assert!(heading[1].contains("LAST"), "{heading:?}");
        assert_eq!(p.rows[0].spans[1].style, style::muted(), "UP not green");
    }
}
