//! The bottom line: the keys that matter on the current screen, or, for a
//! while after a write call, what became of it (`✔ acknowledged alert …`,
//! `✖ … failed: <the collector's message>`, `… sending`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::app::{App, NoticeKind, Screen};
use crate::format;

/// The key hints of each screen.
pub fn keys(screen: &Screen) -> &'static [(&'static str, &'static str)] {
    match screen {
        Screen::Topology => &[
            ("Tab/1-4", "views"),
            ("←→/hl", "move"),
            ("Enter", "details"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Fleet => &[
            ("Tab/1-4", "views"),
            ("s/S", "sort"),
            ("/", "filter"),
            ("t", "tiers"),
            ("Enter", "details"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Detail(_) => &[
            ("Esc", "back"),
            ("+/-", "zoom"),
            ("f", "freeze"),
            ("c", "charts"),
            ("J/K", "scroll"),
            ("m", "maint"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Alerts => &[
            ("↑↓/jk", "move"),
            ("A", "ack"),
            ("s", "silence"),
            ("m", "maint"),
            ("Enter", "node"),
            ("Esc", "back"),
            ("?", "help"),
            ("q", "quit"),
        ],
    }
}

/// Draws the notice or the key hints for the current screen into `area`
/// (one line).
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    if let Some(notice) = app.visible_notice() {
        let (symbol, style) = match notice.kind {
            NoticeKind::Pending => ("…", Style::new().fg(Color::Yellow)),
            NoticeKind::Ok => ("✔", Style::new().fg(Color::Green)),
            NoticeKind::Error => (
                "✖",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
        };
        let text = format!(" {symbol} {}", notice.text);
        let line = Line::styled(format::fit_left(&text, area.width as usize), style);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut spans = Vec::new();
    for (key, what) in keys(&app.screen) {
        spans.push(Span::styled(format!(" {key} "), style::heading()));
        spans.push(Span::styled(format!("{what} "), style::muted()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
