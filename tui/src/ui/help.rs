//! The key help, drawn over whatever screen is open: every key, then a
//! legend of the symbols and colours. Any key closes it. On a terminal too
//! short for all of it, the box shows what fits (keys first).

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::style;
use crate::app::App;

/// Every key the dashboard understands, with what it does.
pub const KEYS: &[(&str, &str)] = &[
    ("Tab / Shift-Tab", "next / previous view"),
    ("1 2 3 4", "topology, nodes, detail, alerts"),
    (
        "↑↓ / jk",
        "select the row (topology: the node) above / below",
    ),
    ("←→ / hl", "topology: previous / next node"),
    ("PgUp / PgDn", "move a page up or down"),
    ("Home g / End G", "first / last row"),
    ("Enter", "details of the selected node"),
    ("Esc / Backspace", "back (nodes: clear the filter first)"),
    (
        "s, S, Shift+A-Z",
        "nodes: sort by next column / reverse / underlined key",
    ),
    ("/", "nodes: filter by name, role or label (regex)"),
    ("t", "nodes: group by tier on / off"),
    (
        "+ / -   c",
        "detail: charts over less / more time; charts alone",
    ),
    ("f", "detail: freeze / resume the charts and panels"),
    ("J K / wheel", "detail: scroll the checks and backends"),
    ("a", "the alerts view (a again: back)"),
    ("A", "acknowledge the selected alert"),
    ("s", "alerts: silence the selected alert's node and rule"),
    ("m", "put the selected node in maintenance"),
    ("y / n", "confirm / cancel (Esc cancels too)"),
    ("mouse", "click selects a row, the wheel scrolls"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
];

/// What the symbols and colours mean.
pub const LEGEND: &[(&str, &str)] = &[
    ("● ok", "green: every check passes"),
    ("▲ warn", "yellow: a check warns"),
    ("✖ crit", "red: a check fails"),
    ("? unknown", "gray: no fresh result (not yet, or stale)"),
    ("▼ down", "bold red: the agent is silent"),
    ("—", "no current value (down, stale or never sent)"),
    ("⚠ SPOF", "fewer than two healthy nodes in the tier"),
    ("stale", "dimmed: last known data, collector not connected"),
];

/// Draws the help box centred in `area`.
pub fn render(frame: &mut Frame, _app: &App, area: Rect) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<16}"), style::heading()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.extend(LEGEND.iter().map(|(mark, what)| {
        Line::from(vec![
            Span::styled(format!(" {mark:<16}"), legend_style(mark)),
            Span::styled(*what, style::muted()),
        ])
    }));
    lines.push(Line::styled(
        " Health is decided by the collector. Any key closes this.",
        style::muted(),
    ));
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3;
    let height = lines.len() as u16 + 2;
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        popup,
    );
}

/// A legend entry drawn the way the screen draws it.
fn legend_style(mark: &str) -> ratatui::style::Style {
    use stacktop_proto::Health;
    match mark.split_whitespace().last() {
        Some("ok") => style::health(Health::Ok),
        Some("warn") => style::health(Health::Warn),
        Some("crit") => style::health(Health::Crit),
        Some("unknown") => style::health(Health::Unknown),
        Some("down") => style::health(Health::Down),
        Some("SPOF") => style::warning_badge(),
        Some("stale") => style::stale(),
        _ => style::heading(),
    }
}
