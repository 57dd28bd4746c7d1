//! Themes: dark (the colours the regions pick), light, and monochrome.
//!
//! The regions draw with the dark theme's colours; [`apply`] then maps
//! every cell of the finished frame to the theme in [`App`]. That keeps the
//! regions free of theme parameters and makes sure nothing (a banner, a
//! badge) escapes the mapping. The theme itself is chosen in
//! [`crate::config`]. Monochrome drops every colour: states stay
//! apart by their symbols (`● ▲ ✖ ? ▼`), bold for down, reverse video
//! where a background marked something (the selection, badges, banners),
//! dim for stale data. `NO_COLOR` (<https://no-color.org>) chooses it.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use crate::config::Theme;

/// Maps every cell of `buf` from the dark theme to `theme`.
pub fn apply(buf: &mut Buffer, theme: Theme) {
    match theme {
        Theme::Dark => {}
        Theme::Light => {
            for cell in buf.content.iter_mut() {
                cell.fg = light(cell.fg);
                cell.bg = light_bg(cell.bg);
            }
        }
        Theme::Mono => {
            for cell in buf.content.iter_mut() {
                if cell.bg != Color::Reset {
                    cell.modifier.insert(Modifier::REVERSED);
                }
                cell.fg = Color::Reset;
                cell.bg = Color::Reset;
            }
        }
    }
}

/// A dark-theme foreground as it reads on a light background.
fn light(c: Color) -> Color {
    match c {
        Color::Yellow => Color::Indexed(130),
        Color::Green => Color::Indexed(28),
        Color::Cyan => Color::Blue,
        Color::Gray => Color::Indexed(240),
        Color::DarkGray => Color::Indexed(244),
        Color::White => Color::Black,
        other => other,
    }
}

/// A dark-theme background on a light terminal.
fn light_bg(c: Color) -> Color {
    match c {
        Color::DarkGray => Color::Indexed(252),
        Color::Gray => Color::Indexed(250),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn mono_drops_colours_and_keeps_marks() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        buf[(0, 0)].set_style(Style::new().fg(Color::Red));
        buf[(1, 0)].set_style(Style::new().bg(Color::DarkGray));
        apply(&mut buf, Theme::Mono);
        assert_eq!(buf[(0, 0)].fg, Color::Reset);
        assert!(buf[(1, 0)].modifier.contains(Modifier::REVERSED));
        assert_eq!(buf[(1, 0)].bg, Color::Reset);
    }
}
