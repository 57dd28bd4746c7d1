//! Colours and words shared by every region: health as a coloured word,
//! and the dimmed look of stale data.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use stacktop_proto::Health;

/// The style of a health word: ok green, warn yellow, crit red, unknown
/// gray, down red and bold.
pub fn health(h: Health) -> Style {
    match h {
        Health::Ok => Style::new().fg(Color::Green),
        Health::Warn => Style::new().fg(Color::Yellow),
        Health::Crit => Style::new().fg(Color::Red),
        Health::Unknown | Health::Unspecified => Style::new().fg(Color::Gray),
        Health::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// The symbol shown before a health word.
pub fn symbol(h: Health) -> &'static str {
    match h {
        Health::Ok => "●",
        Health::Warn => "▲",
        Health::Crit => "✖",
        Health::Unknown | Health::Unspecified => "?",
        Health::Down => "▼",
    }
}

/// `● ok`, `▼ down`, … coloured, padded to `width`.
pub fn health_span(h: Health, width: usize) -> Span<'static> {
    let text = format!("{} {}", symbol(h), h.name());
    Span::styled(format!("{text:<width$}"), health(h))
}

/// Headings and labels.
pub fn heading() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// Secondary text: labels of values, hints.
pub fn muted() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// The highlighted row.
pub fn selected() -> Style {
    Style::new()
        .bg(Color::DarkGray)
        .add_modifier(Modifier::BOLD)
}

/// Data that may be out of date (the collector is not connected).
pub fn stale() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

/// The ` stale ` badge: shown data is the last known, not the current.
pub fn stale_badge() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Gray)
        .add_modifier(Modifier::BOLD)
}

/// A weakness marker (SPOF): black on yellow, bold.
pub fn warning_badge() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

/// A role badge beside a node's name.
pub fn badge() -> Style {
    Style::new().fg(Color::Cyan)
}

/// The `maint` mark.
pub fn maint() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}
