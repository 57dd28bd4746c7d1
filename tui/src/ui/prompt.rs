//! The question asked before a write call, drawn over the screen: how
//! long (a duration typed over the default, or until the alerts resolve),
//! then exactly what will be done, as whom, and `y` / `n`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::style;
use crate::app::{App, Asked, Prompt};
use crate::operator::{self, Until};

/// The widest the box gets.
const MAX_WIDTH: u16 = 76;

/// Draws the open prompt, if any, centred in `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(prompt) = &app.prompt else {
        return;
    };
    let width = area.width.min(MAX_WIDTH);
    let inner = width.saturating_sub(4) as usize;
    let (title, lines) = match prompt {
        Prompt::Duration {
            asked,
            input,
            until_resolved,
            error,
        } => duration_lines(asked, input, *until_resolved, error.as_deref(), inner),
        Prompt::Confirm { call, context, to } => {
            let mut lines: Vec<Line> = context
                .iter()
                .flat_map(|c| wrap(c, inner))
                .map(|l| Line::styled(l, style::muted()))
                .collect();
            lines.extend(wrap(&call.confirmation(), inner).into_iter().map(Line::raw));
            // With several collectors, say which ones the call goes to.
            if app.model.is_multi() {
                let names: Vec<String> = to
                    .iter()
                    .map(|s| {
                        let url = app.model.source(*s).map_or("", |c| c.url.as_str());
                        format!("{} {url}", s.label())
                    })
                    .collect();
                let text = format!("at collector {}", names.join(", "));
                lines.extend(
                    wrap(&text, inner)
                        .into_iter()
                        .map(|l| Line::styled(l, style::muted())),
                );
            }
            lines.push(Line::raw(""));
            lines.push(keys(&[("y", "yes, do it"), ("n / Esc", "no")]));
            (" Confirm ", lines)
        }
    };
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| {
            let mut spans = vec![Span::raw(" ")];
            spans.extend(l.spans);
            Line::from(spans).style(l.style)
        })
        .collect();
    let height = (lines.len() as u16 + 2).min(area.height);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(title)
                .border_style(Style::new().fg(Color::Yellow)),
        ),
        popup,
    );
}

fn duration_lines(
    asked: &Asked,
    input: &str,
    until_resolved: bool,
    error: Option<&str>,
    inner: usize,
) -> (&'static str, Vec<Line<'static>>) {
    let (title, what) = match asked {
        Asked::Silence { matchers } => (
            " Silence ",
            format!(
                "Silence every alert matching {}",
                operator::matchers_text(matchers)
            ),
        ),
        Asked::Maintenance { target } => (" Maintenance ", format!("Put {target} in maintenance")),
    };
    let mut lines: Vec<Line> = wrap(&what, inner).into_iter().map(Line::raw).collect();
    lines.push(Line::raw(""));
    let field = if until_resolved {
        Span::styled(
            Until::Resolved.to_string(),
            style::heading().fg(Color::Cyan),
        )
    } else {
        Span::styled(
            format!("{input}_"),
            Style::new()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    };
    let label = if until_resolved { "" } else { "for " };
    lines.push(Line::from(vec![Span::styled(label, style::muted()), field]));
    if let Some(error) = error {
        lines.extend(
            wrap(error, inner)
                .into_iter()
                .map(|l| Line::styled(l, Style::new().fg(Color::Red))),
        );
    }
    lines.push(Line::raw(""));
    let mut hints = vec![("Enter", "next")];
    if matches!(asked, Asked::Silence { .. }) {
        hints.push(("Tab", "until resolved"));
    }
    hints.push(("Esc", "cancel"));
    lines.push(keys(&hints));
    lines.push(Line::styled("e.g. 30s, 10m, 1h, 2d", style::muted()));
    (title, lines)
}

fn keys(keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (key, what)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key.to_string(), style::heading()));
        spans.push(Span::styled(format!(": {what}"), style::muted()));
    }
    Line::from(spans)
}

/// `text` in lines of at most `width` characters, broken between words
/// (a word longer than a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        let word_len = word.chars().count();
        if word_len > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
            }
            let mut rest: Vec<char> = word.chars().collect();
            while rest.len() > width {
                let tail = rest.split_off(width);
                lines.push(rest.into_iter().collect());
                rest = tail;
            }
            line.extend(rest);
            continue;
        }
        if len > 0 && len + 1 + word_len > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_between_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("a abcdefg b", 3), ["a", "abc", "def", "g b"]);
    }
}
