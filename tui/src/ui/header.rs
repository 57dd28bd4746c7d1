//! The two header lines: title, site health, node counts, the web/LB
//! traffic ratio (flagged when off by more than 10%) and collector
//! version; then the connection line, which turns into a red banner when
//! the collector is not connected.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::app::{App, ConnState, node_counts};
use crate::format;

/// Draws the header into `area` (two lines).
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let [first, second] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    render_title(frame, app, first);
    render_connection(frame, app, second);
}

fn render_title(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(
        "stacktop",
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )];
    let version = match &app.fleet {
        Some(fleet) => {
            let site = fleet.site();
            spans.push(Span::styled("  site ", style::muted()));
            spans.push(Span::styled(
                site.name().to_uppercase(),
                style::health(site).add_modifier(Modifier::BOLD),
            ));
            let (up, down, total) = node_counts(fleet);
            spans.push(Span::styled("  nodes ", style::muted()));
            spans.push(Span::raw(format!("{up} up")));
            spans.push(Span::styled(" · ", style::muted()));
            let down_style = if down > 0 {
                style::health(stacktop_proto::Health::Down)
            } else {
                Style::new()
            };
            spans.push(Span::styled(format!("{down} down"), down_style));
            spans.push(Span::styled(" · ", style::muted()));
            spans.push(Span::raw(format!("{total} total")));
            if let Some(ratio) = fleet.web_lb_request_ratio.filter(|r| r.is_finite()) {
                spans.push(Span::styled("  web/LB traffic ", style::muted()));
                spans.push(Span::styled(format!("{ratio:.2}"), ratio_style(ratio)));
            }
            fleet.collector_version.as_str()
        }
        None => "",
    };
    let left = Line::from(spans);
    let mut right = if version.is_empty() {
        String::new()
    } else {
        format!("collector {version}")
    };
    // The version is the first thing to go on a narrow terminal.
    if left.width() + 2 + right.chars().count() > area.width as usize {
        right.clear();
    }
    let [left_area, right_area] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(right.chars().count() as u16),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(
        Paragraph::new(Span::styled(right, style::muted())),
        right_area,
    );
}

/// How far the web tier's request rate may stray from the LB's (10%)
/// before the header flags the ratio.
pub const RATIO_TOLERANCE: f64 = 0.10;

/// The web/LB ratio's style: plain near 1, yellow and bold when off by
/// more than [`RATIO_TOLERANCE`] (requests lost, or bypassing the LB).
fn ratio_style(ratio: f64) -> Style {
    if (ratio - 1.0).abs() > RATIO_TOLERANCE {
        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    }
}

/// The connection line: what the dashboard is connected to, or a banner
/// saying it is not.
pub fn connection_text(app: &App) -> String {
    let url = &app.collector_url;
    match &app.connection {
        ConnState::Connected => {
            let mut text = format!("● connected to {url}");
            if app.last_update_ms > 0 {
                text.push_str(&format!(
                    " · updated {}",
                    format::seen(app.last_update_ms, app.now_ms)
                ));
            }
            text
        }
        ConnState::Connecting if app.fleet.is_some() => {
            format!(
                "◌ reconnecting to {url}… · stale: data {} old",
                stale_age(app)
            )
        }
        ConnState::Connecting => format!("◌ connecting to {url}…"),
        ConnState::Disconnected { retry_at_ms, .. } => {
            let secs = ((retry_at_ms - app.now_ms).max(0) + 999) / 1000;
            let retry = if secs > 0 {
                format!("retrying in {secs}s")
            } else {
                "retrying now".to_string()
            };
            let mut text = format!("✖ disconnected, {retry} · {url}");
            if app.fleet.is_some() {
                text.push_str(&format!(" · stale: data {} old", stale_age(app)));
            }
            text
        }
    }
}

fn stale_age(app: &App) -> String {
    format::ago((app.now_ms - app.last_update_ms) / 1000)
}

fn render_connection(frame: &mut Frame, app: &App, area: Rect) {
    let text = connection_text(app);
    let style = match app.connection {
        ConnState::Connected => style::muted(),
        ConnState::Connecting => Style::new().fg(Color::Yellow),
        ConnState::Disconnected { .. } => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
    };
    let line = if app.is_connected() {
        Line::styled(text, style)
    } else {
        // A full-width bar: impossible to miss.
        let width = area.width as usize;
        Line::styled(format::fit_left(&format!(" {text}"), width), style)
    };
    frame.render_widget(Paragraph::new(line), area);
}
