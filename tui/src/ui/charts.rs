//! The detail screen's charts: CPU, memory and network over the last
//! minutes, from the history the client task fetched (Fleet.History) while
//! the screen is open; "loading…" or the error until then.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use super::style;
use crate::format;
use crate::history::{HISTORY_WINDOW, History, HistoryState};

/// Draws the three charts side by side into `area` (nothing below 4 rows);
/// times are relative to `now_ms`.
pub fn render(frame: &mut Frame, history: &HistoryState, now_ms: i64, area: Rect) {
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
    let span = chart_span(history, now_ms);
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
