//! The detail screen of one node: identity (with the DB role and
//! replication lag), the summary numbers, its checks, an LB's backend
//! servers, request rates by status class and latency per log source, and
//! charts of CPU, memory and network over the last minutes
//! (from Fleet.History, fetched by the client task while this screen is
//! open).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};
use stacktop_proto::v1::{BackendServer, CheckResult, NodeState};

use super::style;
use crate::app::{App, History, HistoryState};
use crate::client::HISTORY_WINDOW;
use crate::format;
use crate::view::{self, SourceTraffic};

/// Below this many rows the charts are left out rather than squeezed.
const MIN_CHART_ROWS: u16 = 6;
/// The Node and Now boxes shrink to this many rows at the least (health,
/// name, roles, DB role; CPU, load, memory, QPS).
const MIN_TOP_ROWS: u16 = 6;
/// From this width on, the boxes below Node and Now go in two columns.
const WIDE: u16 = 150;

/// Draws the detail screen of the node the app has open into `area`.
///
/// Top: the Node and Now boxes. Then, when the node has them, Checks,
/// Backends (LB nodes) and Traffic (nodes with access logs): stacked, or
/// in two balanced columns from [`WIDE`] columns on. The charts take what is left if
/// that is at least [`MIN_CHART_ROWS`]; otherwise the boxes take it all
/// and say in their titles how many rows they could not show.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(name) = app.detail_node() else {
        return;
    };
    let Some(node) = app.node(name) else {
        let text = format!("Node {name:?} is no longer known to the collector. Esc goes back.");
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let stale = !app.is_connected();
    let identity = identity_lines(app, node);
    let wide = area.width >= WIDE;
    let boxes = boxes(node, if wide { area.width / 2 } else { area.width });
    let want = |column: &[&InfoBox]| column.iter().map(|b| b.height()).sum::<u16>();
    let (mut left, mut right): (Vec<&InfoBox>, Vec<&InfoBox>) = (Vec::new(), Vec::new());
    for b in &boxes {
        // Wide: each box goes to the shorter column, in order.
        if wide && want(&right) < want(&left) {
            right.push(b);
        } else {
            left.push(b);
        }
    }
    // Too short for everything: the last boxes (least important) go
    // before the Node and Now boxes shrink below their minimum.
    while left.len() > 1 && MIN_TOP_ROWS + want(&left).max(want(&right)) > area.height {
        left.pop();
    }
    let need = want(&left).max(want(&right));

    // The Node and Now boxes give up their lower lines (down to
    // MIN_TOP_ROWS) before the boxes below lose rows.
    let full_top = identity.len().max(SUMMARY_LINES) as u16 + 2;
    let short = (full_top + need).saturating_sub(area.height);
    let top_height = full_top
        .saturating_sub(short)
        .max(MIN_TOP_ROWS)
        .min(area.height);
    let [top, rest] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(area);
    let [identity_area, summary] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    frame.render_widget(
        Paragraph::new(identity).block(titled("Node", stale)),
        identity_area,
    );
    render_summary(frame, node, summary, stale);

    let middle_height = if rest.height.saturating_sub(need) >= MIN_CHART_ROWS {
        need
    } else {
        rest.height
    };
    let [middle, charts] =
        Layout::vertical([Constraint::Length(middle_height), Constraint::Min(0)]).areas(rest);
    if right.is_empty() || left.is_empty() {
        let all: Vec<&InfoBox> = left.into_iter().chain(right).collect();
        render_column(frame, &all, middle);
    } else {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(middle);
        render_column(frame, &left, l);
        render_column(frame, &right, r);
    }
    render_charts(frame, app, charts);
}

/// A bordered box of text lines (Checks, Backends, Traffic): its title,
/// an optional column heading that stays when rows are cut, and its rows.
struct InfoBox {
    title: String,
    heading: Option<Line<'static>>,
    rows: Vec<Line<'static>>,
}

impl InfoBox {
    /// Rows it needs to show everything.
    fn height(&self) -> u16 {
        (self.rows.len() + usize::from(self.heading.is_some()) + 2) as u16
    }
}

/// Boxes stacked in `area`, each as tall as it needs while there is room;
/// the one that runs out of room shows what fits and says how much is cut,
/// and those after it are left out.
fn render_column(frame: &mut Frame, boxes: &[&InfoBox], area: Rect) {
    let mut y = area.y;
    let bottom = area.y + area.height;
    for b in boxes {
        let room = bottom.saturating_sub(y);
        // A box that cannot show one row is left out.
        if room < 3 + u16::from(b.heading.is_some()) {
            break;
        }
        let height = b.height().min(room);
        let inner = height as usize - 2 - usize::from(b.heading.is_some());
        let shown = b.rows.len().min(inner);
        let title = if shown < b.rows.len() {
            format!(" {}, {} of {} shown ", b.title, shown, b.rows.len())
        } else {
            format!(" {} ", b.title)
        };
        let mut lines: Vec<Line> = b.heading.iter().cloned().collect();
        lines.extend(b.rows.iter().take(shown).cloned());
        let rect = Rect { y, height, ..area };
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(title)),
            rect,
        );
        y += height;
    }
}

/// The boxes this node has, in the order they matter when room is short.
fn boxes(node: &NodeState, width: u16) -> Vec<InfoBox> {
    let inner = width.saturating_sub(2) as usize;
    let mut boxes = Vec::new();
    if !node.checks.is_empty() {
        boxes.push(checks_box(node, inner));
    }
    if !node.backends.is_empty() {
        boxes.push(backends_box(node, inner));
    }
    let traffic = view::traffic(node);
    if !traffic.is_empty() {
        boxes.push(traffic_box(&traffic, inner));
    }
    boxes
}

fn field(label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<11}"), style::muted()),
        Span::raw(value.into()),
    ])
}

fn titled(title: &str, stale: bool) -> Block<'static> {
    let title = if stale {
        format!(" {title} (stale) ")
    } else {
        format!(" {title} ")
    };
    Block::bordered().title(title)
}

/// Lines of the Node box; a DB node gets its role (and lag) too.
fn identity_lines(app: &App, node: &NodeState) -> Vec<Line<'static>> {
    let health = node.health();
    let names: Vec<&str> = node.roles().map(|r| r.name()).collect();
    let roles = match (names.is_empty(), node.roles_detected) {
        (true, true) => "none detected (unassigned)".to_string(),
        (true, false) => "none (unassigned)".to_string(),
        (false, true) => format!("{} (detected)", names.join(", ")),
        (false, false) => names.join(", "),
    };
    let labels = if node.labels.is_empty() {
        format::UNKNOWN.to_string()
    } else {
        node.labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let agent = if node.agent_version.is_empty() {
        format::UNKNOWN.to_string()
    } else {
        node.agent_version.clone()
    };
    let interval = if node.interval_ms > 0 {
        format!(
            "{agent}, every {}",
            humantime::format_duration(std::time::Duration::from_millis(u64::from(
                node.interval_ms
            )))
        )
    } else {
        agent
    };
    let link = if node.connected {
        "stream open"
    } else {
        "no stream"
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<11}", "health"), style::muted()),
            style::health_span(health, 0),
        ]),
        field("name", node.name.clone()),
        field("roles", roles),
        field("labels", labels),
        field("agent", interval),
        field(
            "last seen",
            format!("{} ({link})", format::seen(node.last_seen_ms, app.now_ms)),
        ),
        field(
            "peer",
            if node.peer.is_empty() {
                format::UNKNOWN.to_string()
            } else {
                node.peer.clone()
            },
        ),
        field(
            "uptime",
            format::uptime(node.summary.as_ref().and_then(|s| s.uptime_seconds)),
        ),
    ];
    let lag = view::replication_lag(node);
    if let Some(role) = view::db_role(node) {
        let text = match lag {
            Some(lag) => format!("{role}, lag {}", lag_text(lag)),
            None => role.to_string(),
        };
        lines.insert(3, field("db role", text));
    } else if let Some(lag) = lag {
        lines.insert(3, field("repl. lag", lag_text(lag)));
    }
    lines
}

fn lag_text(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else {
        format::uptime(Some(seconds))
    }
}

/// Lines of the Now box.
const SUMMARY_LINES: usize = 8;

fn render_summary(frame: &mut Frame, node: &NodeState, area: Rect, stale: bool) {
    let s = node.summary.unwrap_or_default();
    let of = |used: Option<f64>, total: Option<f64>| match (used, total) {
        (None, None) => String::new(),
        _ => format!(" ({} of {})", format::bytes(used), format::bytes(total)),
    };
    // An in/out pair of byte rates, e.g. "1.2 MB/s / 300 kB/s".
    let rates = |a: Option<f64>, b: Option<f64>| {
        format!("{} / {}", format::byte_rate(a), format::byte_rate(b))
    };
    let lines = vec![
        field("cpu", format::percent(s.cpu_usage_ratio)),
        field(
            "load",
            format!(
                "{} {} {}",
                format::load(s.load1),
                format::load(s.load5),
                format::load(s.load15)
            ),
        ),
        field(
            "memory",
            format!(
                "{}{}",
                format::percent(s.memory_used_ratio),
                of(s.memory_used_bytes, s.memory_total_bytes)
            ),
        ),
        field("qps", format::rate(s.qps)),
        field(
            "net rx/tx",
            rates(
                s.network_receive_bytes_per_second,
                s.network_transmit_bytes_per_second,
            ),
        ),
        field(
            "disk r/w",
            rates(
                s.disk_read_bytes_per_second,
                s.disk_written_bytes_per_second,
            ),
        ),
        field(
            "swap",
            match (s.swap_used_bytes, s.swap_total_bytes) {
                (None, None) => format::UNKNOWN.to_string(),
                (used, total) => format!("{} of {}", format::bytes(used), format::bytes(total)),
            },
        ),
        field(
            "processes",
            s.processes
                .map(|p| format!("{p:.0}"))
                .unwrap_or_else(|| format::UNKNOWN.to_string()),
        ),
    ];
    frame.render_widget(Paragraph::new(lines).block(titled("Now", stale)), area);
}

fn checks_box(node: &NodeState, inner: usize) -> InfoBox {
    let name_w = node
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(30);
    // Worst first, so the rows that matter survive a short screen.
    let mut checks: Vec<&CheckResult> = node.checks.iter().collect();
    checks.sort_by_key(|c| std::cmp::Reverse(view::severity(c.status())));
    let rows = checks
        .iter()
        .map(|c| {
            Line::from(vec![
                style::health_span(c.status(), 9),
                Span::raw(format!(" {} ", format::fit_left(&c.name, name_w))),
                Span::styled(
                    format!("{:>7} ", latency(c.latency_seconds)),
                    style::muted(),
                ),
                // status, name, latency, then the message in what is left.
                Span::raw(format::fit_left(
                    &c.message,
                    inner.saturating_sub(9 + name_w + 2 + 8),
                )),
            ])
        })
        .collect();
    let failing = view::failing_checks(&node.checks).len();
    let title = if failing > 0 {
        format!("Checks {}, {failing} failing", node.checks.len())
    } else {
        format!("Checks {}", node.checks.len())
    };
    InfoBox {
        title,
        heading: None,
        rows,
    }
}

fn backends_box(node: &NodeState, inner: usize) -> InfoBox {
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
    let heading = format!(
        "{} {} {} {:<6} {:>6} {:>7} {}",
        format::fit_left("BACKEND", backend_w),
        format::fit_left("SERVER", server_w),
        format::fit_left("STATUS", STATUS_W),
        "",
        "SESS",
        "REQ/S",
        "LAST CHECK",
    );
    let rows = node
        .backends
        .iter()
        .map(|b| {
            let check = if b.check_description.is_empty() {
                b.check_status.clone()
            } else {
                format!("{} {}", b.check_status, b.check_description)
            };
            Line::from(vec![
                Span::raw(format!(
                    "{} {} ",
                    format::fit_left(&b.backend, backend_w),
                    format::fit_left(&b.server, server_w)
                )),
                Span::styled(
                    format::fit_left(&b.status, STATUS_W),
                    server_style(&b.status),
                ),
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
    let (up, total) = view::backends_up(&node.backends).unwrap_or((0, 0));
    InfoBox {
        title: format!("Backends {up}/{total} UP"),
        heading: Some(Line::styled(heading, style::muted())),
        rows,
    }
}

/// UP green, DOWN red, MAINT/DRAIN/NOLB yellow, anything else gray.
fn server_style(status: &str) -> Style {
    match view::server_state(status) {
        view::ServerState::Up => Style::new().fg(Color::Green),
        view::ServerState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        view::ServerState::Out => Style::new().fg(Color::Yellow),
        view::ServerState::Other => Style::new().fg(Color::Gray),
    }
}

fn traffic_box(traffic: &[SourceTraffic], inner: usize) -> InfoBox {
    const NUM_W: usize = 7;
    let numbers = (view::CLASSES.len() + 1 + view::QUANTILES.len()) * (NUM_W + 1);
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
    for h in view::CLASSES.iter().chain(["total"].iter()) {
        heading.push_str(&format!(" {h:>NUM_W$}"));
    }
    for q in ["p50", "p95", "p99"] {
        heading.push_str(&format!(" {q:>NUM_W$}"));
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
            for (i, v) in t.classes.iter().enumerate() {
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
            for q in t.latency {
                spans.push(Span::raw(format!(" {:>NUM_W$}", quantile(q))));
            }
            Line::from(spans)
        })
        .collect();
    InfoBox {
        title: "Traffic req/s by status, latency".to_string(),
        heading: Some(Line::styled(heading, style::muted())),
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

fn render_charts(frame: &mut Frame, app: &App, area: Rect) {
    if area.height < 4 {
        return;
    }
    let [cpu, mem, net] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);
    let history = match &app.history {
        HistoryState::Loaded(history) => history,
        other => {
            let text = match other {
                HistoryState::Failed(err) => format!("history unavailable: {err}"),
                _ => "loading…".to_string(),
            };
            for (title, area) in [(" CPU % ", cpu), (" Memory % ", mem), (" Network ", net)] {
                frame.render_widget(
                    Paragraph::new(Line::styled(text.clone(), style::muted()))
                        .wrap(ratatui::widgets::Wrap { trim: true })
                        .block(Block::bordered().title(title)),
                    area,
                );
            }
            return;
        }
    };
    let span = chart_span(history, app.now_ms);
    let to_xy = |points: &[(i64, f64)], scale: f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|&(ts, v)| ((ts - app.now_ms) as f64 / 1000.0, v * scale))
            .collect()
    };
    let cpu_points = to_xy(&history.cpu, 100.0);
    let mem_points = to_xy(&history.memory, 100.0);
    let rx_points = to_xy(&history.receive, 1.0);
    let tx_points = to_xy(&history.transmit, 1.0);
    percent_chart(frame, " CPU % ", &cpu_points, Color::Cyan, span, cpu);
    percent_chart(frame, " Memory % ", &mem_points, Color::Magenta, span, mem);
    let peak = rx_points
        .iter()
        .chain(&tx_points)
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let title = Line::from(vec![
        Span::raw(" Network "),
        Span::styled("rx", Style::new().fg(Color::Green)),
        Span::raw(" "),
        Span::styled("tx", Style::new().fg(Color::Yellow)),
        Span::raw(" B/s "),
    ]);
    if rx_points.is_empty() && tx_points.is_empty() {
        no_data(frame, Block::bordered().title(title), net);
        return;
    }
    let datasets = vec![
        line_dataset(&rx_points, Color::Green),
        line_dataset(&tx_points, Color::Yellow),
    ];
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(time_axis(span))
        .y_axis(
            Axis::default()
                .bounds([0.0, peak])
                .labels(["0".to_string(), format::bytes(Some(peak))]),
        );
    frame.render_widget(chart, net);
}

fn line_dataset(points: &[(f64, f64)], color: Color) -> Dataset<'_> {
    Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(points)
}

/// Seconds of history the x axis spans: the whole window once there is
/// that much data, less (but at least a minute) while a node is new, so a
/// fresh node's charts are not squeezed against the right edge.
fn chart_span(history: &History, now_ms: i64) -> u64 {
    let oldest = [
        &history.cpu,
        &history.memory,
        &history.receive,
        &history.transmit,
    ]
    .iter()
    .filter_map(|points| points.first().map(|p| p.0))
    .min()
    .unwrap_or(now_ms);
    let age = ((now_ms - oldest).max(0) / 1000) as u64;
    // Round up to whole minutes so the label reads well.
    age.div_ceil(60)
        .max(1)
        .saturating_mul(60)
        .min(HISTORY_WINDOW.as_secs())
}

fn time_axis(span: u64) -> Axis<'static> {
    Axis::default()
        .bounds([-(span as f64), 0.0])
        .labels([format!("-{}m", span / 60), "now".to_string()])
        .style(style::muted())
}

fn no_data(frame: &mut Frame, block: Block, area: Rect) {
    let text = format!(
        "no data in the last {} minutes",
        HISTORY_WINDOW.as_secs() / 60
    );
    frame.render_widget(
        Paragraph::new(Line::styled(text, style::muted()))
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(block),
        area,
    );
}

fn percent_chart(
    frame: &mut Frame,
    title: &str,
    points: &[(f64, f64)],
    color: Color,
    span: u64,
    area: Rect,
) {
    if points.is_empty() {
        no_data(frame, Block::bordered().title(title.to_string()), area);
        return;
    }
    let chart = Chart::new(vec![line_dataset(points, color)])
        .block(Block::bordered().title(title.to_string()))
        .x_axis(time_axis(span))
        .y_axis(
            Axis::default()
                .bounds([0.0, 100.0])
                .labels(["0", "50", "100"])
                .style(style::muted()),
        );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_gets_a_short_time_axis() {
        let now = 1_000_000;
        let mut h = History::default();
        assert_eq!(chart_span(&h, now), 60);
        h.cpu = vec![(now - 90_000, 0.1)];
        assert_eq!(chart_span(&h, now), 120);
        h.memory = vec![(now - 3_600_000, 0.1)];
        assert_eq!(chart_span(&h, now), HISTORY_WINDOW.as_secs());
    }
}
