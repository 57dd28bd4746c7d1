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
//!
//! With several collectors (see [`crate::model`]) the site is the worst
//! verdict of the connected ones, and `?` while none is connected or while
//! some node is known only to a collector that is not (their verdicts
//! leave it out: never `OK` on what nobody sees); the node counts are the
//! merged fleet's (`1 ?`: nodes only a disconnected collector reports);
//! the connection line has each collector's letter and state
//! (`A ● 10.0.0.5:7411  B ✖ 10.0.0.6:7411 retry 3s`), red only when none is
//! connected; the alert counter counts the connected collectors' alerts,
//! each alert once (the same alert has the same id at every collector),
//! and adds `? (B not connected)` for a collector whose alerts are not
//! known now (`alerts ? (B not connected)` rather than "no alerts").

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use stacktop_proto::Health;

use crate::app::App;
use crate::format;
use crate::model::{ConnState, SourceId};
use stacktop_proto::v1::FleetTotals;

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
    let version = if app.model.is_multi() {
        several_sites(app, &mut spans);
        ""
    } else {
        one_site(app, &mut spans)
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

/// The site and node counts of the one collector; returns its version.
fn one_site<'a>(app: &'a App, spans: &mut Vec<Span<'static>>) -> &'a str {
    match app.model.totals() {
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
    }
}

/// The connected collectors that sent a snapshot, with their totals.
fn live_totals(app: &App) -> Vec<(SourceId, &FleetTotals)> {
    app.model
        .sources()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.synced && s.connection == ConnState::Connected)
        .filter_map(|(i, s)| Some((SourceId(i as u16), s.totals.as_ref()?)))
        .collect()
}

/// The site and the merged fleet's node counts with several collectors
/// (see the module docs).
fn several_sites(app: &App, spans: &mut Vec<Span<'static>>) {
    let live = live_totals(app);
    let partial = app.model.is_partial();
    match live.iter().map(|(_, t)| t.site()).reduce(Health::worst) {
        Some(site) if !partial => spans.push(Span::styled(
            site.name().to_uppercase(),
            style::health(site).add_modifier(Modifier::BOLD),
        )),
        Some(_) => {
            spans.push(Span::styled("?", style::heading()));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(" partial ", style::stale_badge()));
        }
        None => {
            spans.push(Span::styled("?", style::heading()));
            if app.model.has_data() {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(" stale ", style::stale_badge()));
            }
            return;
        }
    }
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    for (key, node) in app.model.nodes() {
        match node.health() {
            _ if !app.is_live(key.source) => unknown += 1,
            Health::Down => down += 1,
            _ => up += 1,
        }
    }
    spans.push(Span::styled("  nodes ", style::muted()));
    spans.push(Span::raw(format!("{up} up")));
    spans.push(Span::styled(" · ", style::muted()));
    let down_style = if down > 0 {
        style::health(Health::Down)
    } else {
        Style::new()
    };
    spans.push(Span::styled(format!("{down} down"), down_style));
    if unknown > 0 {
        spans.push(Span::styled(" · ", style::muted()));
        spans.push(Span::styled(
            format!("{unknown} ?"),
            style::health(Health::Unknown),
        ));
    }
    spans.push(Span::styled(" · ", style::muted()));
    spans.push(Span::raw(format!("{} total", app.model.len())));
    let ratio = app
        .model
        .totals()
        .filter(|_| !partial)
        .and_then(|t| t.traffic.as_ref())
        .and_then(|t| t.web_lb_request_ratio);
    if let Some(ratio) = ratio.filter(|r| r.is_finite()) {
        spans.push(Span::styled("  web/LB traffic ", style::muted()));
        spans.push(Span::styled(format!("{ratio:.2}"), ratio_style(ratio)));
    }
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

/// `host:port` of a collector URL, for the connection line.
fn address(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// The connection line with several collectors: each one's letter, state
/// and (with `addresses`) address, e.g. `A ● 10.0.0.5:7411  B ✖
/// 10.0.0.6:7411 retry 3s`.
pub fn collectors_text(app: &App, addresses: bool) -> String {
    let parts: Vec<String> = app
        .model
        .sources()
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let label = SourceId(i as u16).label();
            let at = if addresses {
                format!(" {}", address(&source.url))
            } else {
                String::new()
            };
            match &source.connection {
                ConnState::Connected => format!("{label} ●{at}"),
                ConnState::Connecting if source.synced => format!("{label} ◌{at} reconnecting"),
                ConnState::Connecting => format!("{label} ◌{at} connecting"),
                ConnState::Disconnected { retry_at_ms, .. } => {
                    let secs = ((retry_at_ms - app.now_ms).max(0) + 999) / 1000;
                    format!("{label} ✖{at} retry {secs}s")
                }
            }
        })
        .collect();
    parts.join("  ")
}

/// The connection line: what the dashboard is connected to, or a banner
/// saying it is not.
pub fn connection_text(app: &App) -> String {
    if app.model.is_multi() {
        return collectors_text(app, true);
    }
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

/// The alert counters of the connected collectors, each alert once;
/// `None` while none is connected.
fn live_alert_counts(app: &App) -> Option<FleetTotals> {
    if live_totals(app).is_empty() {
        return None;
    }
    let mut t = FleetTotals::default();
    let mut seen = std::collections::HashSet::new();
    for (i, alert) in app.model.alerts().iter().enumerate() {
        if !app.is_live(app.model.alert_source(i)) || !seen.insert(alert.id.as_str()) {
            continue;
        }
        match alert.state() {
            stacktop_proto::v1::AlertState::Firing => {
                t.alerts_firing += 1;
                match alert.severity() {
                    stacktop_proto::v1::Severity::Critical => t.alerts_critical += 1,
                    stacktop_proto::v1::Severity::Warning => t.alerts_warning += 1,
                    stacktop_proto::v1::Severity::Unspecified => {}
                }
                if !alert.acknowledged {
                    t.alerts_unacknowledged += 1;
                }
            }
            stacktop_proto::v1::AlertState::Pending => t.alerts_pending += 1,
            _ => {}
        }
    }
    Some(t)
}

/// The alert counter's spans (see the module docs).
pub fn alert_counter(app: &App) -> Vec<Span<'static>> {
    if app.model.is_multi() {
        let Some(t) = live_alert_counts(app) else {
            return vec![Span::styled("alerts ?", style::muted())];
        };
        // The alerts of a collector that is not connected are not known
        // now: never "no alerts" then.
        let unknown: Vec<String> = (0..app.model.sources().len())
            .map(|i| SourceId(i as u16))
            .filter(|s| !app.is_live(*s))
            .map(|s| s.label().to_string())
            .collect();
        if unknown.is_empty() {
            return counter_spans(&t);
        }
        let why = format!("({} not connected)", unknown.join(", "));
        if t.alerts_firing == 0 && t.alerts_pending == 0 {
            return vec![Span::styled(format!("alerts ? {why}"), style::muted())];
        }
        let mut spans = counter_spans(&t);
        spans.push(Span::styled(format!(" · ? {why}"), style::muted()));
        return spans;
    }
    let totals = app.model.totals().filter(|_| app.is_connected());
    let Some(t) = totals else {
        return vec![Span::styled("alerts ?", style::muted())];
    };
    counter_spans(t)
}

/// The counter for these totals' alert counts.
fn counter_spans(t: &FleetTotals) -> Vec<Span<'static>> {
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
    // Several collectors: the addresses go first, the states stay.
    if app.model.is_multi() && text.chars().count() + 1 > room {
        text = collectors_text(app, false);
    }
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
    let partly = app.model.is_multi()
        && app.is_connected()
        && app
            .model
            .sources()
            .iter()
            .any(|s| s.connection != ConnState::Connected);
    let style = match app.connection() {
        _ if failed => banner,
        _ if partly => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        _ if app.model.is_multi() && app.is_connected() => style::muted(),
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
