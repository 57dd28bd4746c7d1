//! The detail screen's charts: CPU, memory and network over the zoom
//! window (`+`/`-`: 1 minute to 6 hours), from the history the client task
//! fetched (Fleet.History) while the screen is open; "loading…" or the
//! error until then. A network chart with nothing but zeros says "no
//! traffic" on a 1 kB axis rather than a `1 B` one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use super::style;
use crate::format;
use crate::history::{History, HistoryState};

/// The smallest top of the network chart's axis (1 kB/s), so an idle
/// interface does not get a `1 B` scale.
const MIN_NET_PEAK: f64 = 1_000.0;

/// What the charts show besides the data: the window, and whether updates
/// are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// How far back the charts reach.
    pub window: std::time::Duration,
    /// Updates are frozen (`f`).
    pub frozen: bool,
}

/// Draws the three charts side by side into `area` (nothing below 4 rows);
/// times are relative to `now_ms`.
pub fn render(frame: &mut Frame, history: &HistoryState, now_ms: i64, view: View, area: Rect) {
    if area.height < 4 {
        return;
    }
    let [cpu, mem, net] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);
    let history = match history {
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
    let window = view.window.as_secs();
    let span = chart_span(history, now_ms, window);
    let suffix = if view.frozen { " · frozen " } else { " " };
    let cpu_title = format!(" CPU % · {}{suffix}", window_text(window));
    let to_xy = |points: &[(i64, f64)], scale: f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|&(ts, v)| ((ts - now_ms) as f64 / 1000.0, v * scale))
            .collect()
    };
    let cpu_points = to_xy(&history.cpu, 100.0);
    let mem_points = to_xy(&history.memory, 100.0);
    let rx_points = to_xy(&history.receive, 1.0);
    let tx_points = to_xy(&history.transmit, 1.0);
    percent_chart(frame, &cpu_title, &cpu_points, Color::Cyan, span, cpu);
    percent_chart(frame, " Memory % ", &mem_points, Color::Magenta, span, mem);
    let peak = rx_points
        .iter()
        .chain(&tx_points)
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(MIN_NET_PEAK)
        * 1.1;
    let idle = rx_points.iter().chain(&tx_points).all(|p| p.1 == 0.0);
    let title = Line::from(vec![
        Span::raw(" Network "),
        Span::styled("rx", Style::new().fg(Color::Green)),
        Span::raw(" "),
        Span::styled("tx", Style::new().fg(Color::Yellow)),
        Span::raw(if idle { " B/s: no traffic " } else { " B/s " }),
    ]);
    if rx_points.is_empty() && tx_points.is_empty() {
        no_data(frame, Block::bordered().title(title), net, span);
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

/// Seconds of history the x axis spans: the whole `window` (seconds) once
/// there is that much data, less (but at least a minute) while a node is
/// new, so a fresh node's charts are not squeezed against the right edge.
fn chart_span(history: &History, now_ms: i64, window: u64) -> u64 {
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
    age.div_ceil(60).max(1).saturating_mul(60).min(window)
}

/// `15m`, `1h`, `6h`.
fn window_text(seconds: u64) -> String {
    if seconds >= 3_600 && seconds.is_multiple_of(3_600) {
        format!("{}h", seconds / 3_600)
    } else {
        format!("{}m", seconds / 60)
    }
}

fn time_axis(span: u64) -> Axis<'static> {
    Axis::default()
        .bounds([-(span as f64), 0.0])
        .labels([format!("-{}", window_text(span)), "now".to_string()])
        .style(style::muted())
}

fn no_data(frame: &mut Frame, block: Block, area: Rect, span: u64) {
    let text = format!("no data in the last {}", window_text(span));
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
        no_data(
            frame,
            Block::bordered().title(title.to_string()),
            area,
            span,
        );
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
        assert_eq!(chart_span(&h, now, 900), 60);
        h.cpu = vec![(now - 90_000, 0.1)];
        assert_eq!(chart_span(&h, now, 900), 120);
        h.memory = vec![(now - 3_600_000, 0.1)];
        assert_eq!(chart_span(&h, now, 900), 900);
        assert_eq!(chart_span(&h, now, 6 * 3_600), 3_600);
        assert_eq!(window_text(6 * 3_600), "6h");
        assert_eq!(window_text(300), "5m");
    }
}
