//! The key help, drawn over whatever screen is open. Any key closes it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::style;
use crate::app::App;

/// Every key the dashboard understands, with what it does.
pub const KEYS: &[(&str, &str)] = &[
    ("↑ / k", "select the row above"),
    ("↓ / j", "select the row below"),
    ("PgUp / PgDn", "move a page up or down"),
    ("Home / g", "first row"),
    ("End / G", "last row"),
    ("Enter", "details of the selected node"),
    ("Esc / Backspace", "back to the fleet"),
    ("a", "the alerts view (a again: back)"),
    ("A", "acknowledge the selected alert"),
    ("s", "silence the selected alert's node and rule"),
    ("m", "put the selected node in maintenance"),
    ("y / n", "confirm / cancel (Esc cancels too)"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
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
    lines.push(Line::styled(
        " Health is decided by the collector: ok, warn, crit, unknown, down.",
        style::muted(),
    ));
    lines.push(Line::styled(
        " Alerts: ✖ critical, ▲ warning; firing, then pending, then resolved.",
        style::muted(),
    ));
    lines.push(Line::styled(" Press any key to close.", style::muted()));
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
