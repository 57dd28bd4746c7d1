//! The two header lines: title, site health, node counts, the web/LB
//! traffic ratio (flagged when off by more than 10%) and collector
//! version, all as the collector's totals say; then the connection line,
//! which turns into a red banner when the collector is not connected or
//! the embedded collector or agent stopped.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::app::App;
use crate::format;
use crate::model::ConnState;

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
    let version = match app.model.totals() {
        Some(totals) => {
            let site = totals.site();
            spans.push(Span::styled("  site ", style::muted()));
            spans.push(Span::styled(
                site.name().to_uppercase(),
                style::health(site).add_modifier(Modifier::BOLD),
            ));
            // Nodes that are not down are up, whatever their checks say.
            let (down, total) = (totals.nodes_down, totals.nodes_total);
            let up = total.saturating_sub(down);
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
            let ratio = totals.traffic.as_ref().and_then(|t| t.web_lb_request_ratio);
            if let Some(ratio) = ratio.filter(|r| r.is_finite()) {
                spans.push(Span::styled("  web/LB traffic ", style::muted()));
                spans.push(Span::styled(format!("{ratio:.2}"), ratio_style(ratio)));
            }
            totals.collector_version.as_str()
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
    let source = app.model.primary();
    let url = &source.url;
    let text = match &source.connection {
        ConnState::Connected => {
            let mut text = format!("● connected to {url}");
            if source.last_update_ms > 0 {
                text.push_str(&format!(
                    " · updated {}",
                    format::seen(source.last_update_ms, app.now_ms)
                ));
            }
            text
        }
        ConnState::Connecting if app.model.has_data() => {
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
            if app.model.has_data() {
                text.push_str(&format!(" · stale: data {} old", stale_age(app)));
            }
            text
        }
    };
    // What stopped inside this process explains everything after it.
    match app.model.failures().last() {
        Some(failure) => format!("✖ {failure} · {text}"),
        None => text,
    }
}

fn stale_age(app: &App) -> String {
    format::ago((app.now_ms - app.model.primary().last_update_ms) / 1000)
}

fn render_connection(frame: &mut Frame, app: &App, area: Rect) {
    let text = connection_text(app);
    let banner = Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    let failed = !app.model.failures().is_empty();
    let style = match app.connection() {
        _ if failed => banner,
        ConnState::Connected => style::muted(),
        ConnState::Connecting => Style::new().fg(Color::Yellow),
        ConnState::Disconnected { .. } => banner,
    };
    let line = if app.is_connected() && !failed {
        Line::styled(text, style)
    } else {
        // A full-width bar: impossible to miss.
        let width = area.width as usize;
        Line::styled(format::fit_left(&format!(" {text}"), width), style)
    };
    frame.render_widget(Paragraph::new(line), area);
}
