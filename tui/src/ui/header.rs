//! The two header lines: title, site health (`site ?` before the first
//! snapshot, `site ? stale` while the collector is not connected: its last
//! verdict is not the site's state now), node counts, the web/LB
//! traffic ratio (flagged when off by more than 10%) and collector
//! version, all as the collector's totals say; then the connection line,
//! which turns into a red banner when the collector is not connected or
//! the embedded collector or agent stopped, with the alert counter at its
//! right end on every screen.
//!
//! The counter is the collector's totals (`✖ 2 ▲ 1 firing (1 unacked) · 1
//! pending`: critical and warning firing alerts by symbol, never by colour
//! alone), `✔ no alerts` only when a connected collector said so, and
//! `alerts ?` before the first snapshot and while disconnected.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use stacktop_proto::Health;

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
    spans.push(Span::styled("  site ", style::muted()));
    let version = match app.model.totals() {
        // Only a connected collector's verdict is the site's state now.
        Some(totals) if app.is_connected() => {
            let site = totals.site();
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
        Some(_) => {
            spans.push(Span::styled("?", style::heading()));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(" stale ", style::stale_badge()));
            ""
        }
        None => {
            spans.push(Span::styled("?", style::heading()));
            ""
        }
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

/// The alert counter's spans (see the module docs).
pub fn alert_counter(app: &App) -> Vec<Span<'static>> {
    let totals = app.model.totals().filter(|_| app.is_connected());
    let Some(t) = totals else {
        return vec![Span::styled("alerts ?", style::muted())];
    };
    if t.alerts_firing == 0 && t.alerts_pending == 0 {
        return vec![Span::styled("✔ no alerts", style::health(Health::Ok))];
    }
    let mut spans = Vec::new();
    if t.alerts_firing > 0 {
        let bold = Modifier::BOLD;
        if t.alerts_critical > 0 {
            let text = format!("✖ {}", t.alerts_critical);
            spans.push(Span::styled(
                text,
                style::health(Health::Crit).add_modifier(bold),
            ));
            spans.push(Span::raw(" "));
        }
        if t.alerts_warning > 0 {
            let text = format!("▲ {}", t.alerts_warning);
            spans.push(Span::styled(
                text,
                style::health(Health::Warn).add_modifier(bold),
            ));
            spans.push(Span::raw(" "));
        }
        // Firing alerts of no known severity are only counted.
        let known = t.alerts_critical + t.alerts_warning;
        if known < t.alerts_firing {
            spans.push(Span::raw(format!("{} ", t.alerts_firing - known)));
        }
        spans.push(Span::raw("firing"));
        if t.alerts_unacknowledged > 0 {
            spans.push(Span::styled(
                format!(" ({} unacked)", t.alerts_unacknowledged),
                style::heading(),
            ));
        }
    }
    if t.alerts_pending > 0 {
        let sep = if spans.is_empty() { "" } else { " · " };
        spans.push(Span::styled(
            format!("{sep}◌ {} pending", t.alerts_pending),
            style::muted(),
        ));
    }
    spans
}

fn render_connection(frame: &mut Frame, app: &App, area: Rect) {
    let counter = Line::from(alert_counter(app));
    let counter_width = (counter.width() as u16).min(area.width);
    let [left, gap, right] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(counter_width),
    ])
    .areas(area);
    let mut text = connection_text(app);
    let room = left.width as usize;
    // The age of the last update is the first thing to go, then the
    // address in a banner (the age of the data there says more).
    if text.chars().count() > room
        && let Some(at) = text.find(" · updated")
    {
        text.truncate(at);
    }
    if text.chars().count() + 1 > room && !app.is_connected() {
        text = text.replace(&format!(" · {}", app.model.primary().url), "");
    }
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
    if app.is_connected() && !failed {
        let line = Line::styled(format::fit_left(&text, room), style);
        frame.render_widget(Paragraph::new(line), left);
        frame.render_widget(Paragraph::new(counter), right);
    } else {
        // A full-width bar: impossible to miss; the counter is in it.
        let line = Line::styled(format::fit_left(&format!(" {text}"), room), style);
        frame.render_widget(Paragraph::new(line), left);
        frame.render_widget(Paragraph::new(Line::styled(" ", style)), gap);
        frame.render_widget(Paragraph::new(counter.patch_style(style)), right);
    }
}
