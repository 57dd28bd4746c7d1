//! The detail screen of one node: identity, the summary numbers, its
//! checks, and charts of CPU, memory and network over the last minutes
//! (from Fleet.History, fetched by the client task while this screen is
//! open).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};
use stacktop_proto::v1::NodeState;

use super::style;
use crate::app::{App, History, HistoryState};
use crate::client::HISTORY_WINDOW;
use crate::format;

/// Draws the detail screen of the node the app has open into `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(name) = app.detail_node() else {
        return;
    };
    let Some(node) = app.node(name) else {
        let text = format!("Node {name:?} is no longer known to the collector. Esc goes back.");
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let checks = node.checks.len().min(6) as u16;
    let checks_height = if checks > 0 { checks + 2 } else { 0 };
    let [top, checks_area, charts] = Layout::vertical([
        Constraint::Length(10),
        Constraint::Length(checks_height),
        Constraint::Min(0),
    ])
    .areas(area);
    let [identity, summary] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let stale = !app.is_connected();
    render_identity(frame, app, node, identity, stale);
    render_summary(frame, node, summary, stale);
    if checks > 0 {
        render_checks(frame, node, checks_area);
    }
    render_charts(frame, app, charts);
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

fn render_identity(frame: &mut Frame, app: &App, node: &NodeState, area: Rect, stale: bool) {
    let health = node.health();
    let mut roles: Vec<&str> = node.roles().map(|r| r.name()).collect();
    if roles.is_empty() {
        roles.push("none (unassigned)");
    }
    let mut roles = roles.join(", ");
    if node.roles_detected {
        roles.push_str(" (detected)");
    }
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
    let lines = vec![
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
    frame.render_widget(Paragraph::new(lines).block(titled("Node", stale)), area);
}

fn render_summary(frame: &mut Frame, node: &NodeState, area: Rect, stale: bool) {
    let s = node.summary.unwrap_or_default();
    let of = |used: Option<f64>, total: Option<f64>| match (used, total) {
        (None, None) => String::new(),
        _ => format!(" ({} of {})", format::bytes(used), format::bytes(total)),
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
        field(
            "swap",
            match (s.swap_used_bytes, s.swap_total_bytes) {
                (None, None) => format::UNKNOWN.to_string(),
                (used, total) => format!("{} of {}", format::bytes(used), format::bytes(total)),
            },
        ),
        field(
            "net rx/tx",
            format!(
                "{} / {}",
                format::byte_rate(s.network_receive_bytes_per_second),
                format::byte_rate(s.network_transmit_bytes_per_second)
            ),
        ),
        field(
            "disk r/w",
            format!(
                "{} / {}",
                format::byte_rate(s.disk_read_bytes_per_second),
                format::byte_rate(s.disk_written_bytes_per_second)
            ),
        ),
        field("qps", format::rate(s.qps)),
        field(
            "processes",
            s.processes
                .map(|p| format!("{p:.0}"))
                .unwrap_or_else(|| format::UNKNOWN.to_string()),
        ),
    ];
    frame.render_widget(Paragraph::new(lines).block(titled("Now", stale)), area);
}

fn render_checks(frame: &mut Frame, node: &NodeState, area: Rect) {
    let name_w = node
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(30);
    let lines: Vec<Line> = node
        .checks
        .iter()
        .map(|c| {
            Line::from(vec![
                style::health_span(c.status(), 8),
                Span::raw(format!(" {} ", format::fit_left(&c.name, name_w))),
                Span::styled(
                    format!("{:>7} ", latency(c.latency_seconds)),
                    style::muted(),
                ),
                Span::raw(c.message.clone()),
            ])
        })
        .collect();
    let title = format!(" Checks ({}) ", node.checks.len());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
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
