//! Rendering: pure functions from [`App`] to a frame.
//!
//! # Layout
//!
//! One file per screen region, each with a `render(frame, &App, area)`:
//! [`header`] (title, site, counts, connection line, alert counter),
//! [`fleet`] (nodes by tier), [`detail`] (one node: its [`panels`] and
//! [`charts`]), [`alerts`] (the alert list and the selected alert),
//! [`help`] (the key overlay), [`prompt`] (the question before a write
//! call) and [`footer`] (key hints, or what became of a write call).
//! [`draw`] splits the frame between them; [`style`] holds the shared
//! colours, and [`theme`] maps the finished frame to the chosen theme.
//!
//! Nothing here reads a clock, does I/O or receives from a channel: every
//! input is in [`App`], so snapshots are deterministic.

pub mod alerts;
pub mod charts;
pub mod detail;
pub mod fleet;
pub mod footer;
pub mod header;
pub mod help;
pub mod panels;
pub mod prompt;
pub mod style;
pub mod theme;
pub mod topology;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};

use crate::app::{App, Screen};

/// Header lines above every screen.
pub const HEADER_ROWS: u16 = crate::app::HEADER_ROWS;

/// Draws the whole dashboard for `app`.
pub fn draw(frame: &mut Frame, app: &App) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(HEADER_ROWS),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::render(frame, app, top);
    match app.screen {
        Screen::Topology => topology::render(frame, app, body),
        Screen::Fleet => fleet::render(frame, app, body),
        Screen::Detail(_) => detail::render(frame, app, body),
        Screen::Alerts => alerts::render(frame, app, body),
    }
    footer::render(frame, app, bottom);
    if app.help {
        help::render(frame, app, frame.area());
    }
    prompt::render(frame, app, frame.area());
    theme::apply(frame.buffer_mut(), app.theme);
}
