//! The bottom line: the keys that matter on the current screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::app::{App, Screen};

/// Draws the key hints for the current screen into `area` (one line).
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let keys: &[(&str, &str)] = match app.screen {
        Screen::Fleet => &[
            ("↑↓/jk", "move"),
            ("PgUp/PgDn", "page"),
            ("Enter", "details"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Detail(_) => &[("Esc", "back"), ("?", "help"), ("q", "quit")],
    };
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(format!(" {key} "), style::heading()));
        spans.push(Span::styled(format!("{what} "), style::muted()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
