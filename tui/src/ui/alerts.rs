//! The alerts view: the collector's active alerts, one row each, firing
//! first, then pending, then recently resolved ([`crate::alerts::ordered`]),
//! alerts grouped under a root indented under it; and a box with the
//! selected alert in full.
//!
//! A row reads `› ✖ firing  3m12s  web2  check-failed  ack sil  tcp:5432
//! refused`: the severity as a symbol (`✖` critical, `▲` warning) and,
//! from [`WIDE`] columns on, a word; the state; how long it has been in it
//! (on the collector's clock); its node (or `web tier`); the rule; what
//! was done about it (acknowledged, silenced, in maintenance: in words
//! when there is room, `ack` `sil` `mnt` when not); the summary, cut with
//! `…` (the box below has it whole).
//!
//! With several collectors every collector's alerts are listed, each row
//! tagged with its collector's letter (`A`, `B`: the header says which is
//! which), its age on that collector's clock, and dimmed while that
//! collector is not connected.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use stacktop_proto::v1::{Alert, AlertState, Severity};

use super::{fleet, style};
use crate::alerts::{self, AlertRow};
use crate::app::App;
use crate::format::{self, fit_left, fit_right};

/// From this width on, severities are spelled out (`✖ critical`).
pub const WIDE: u16 = 120;
const STATE_W: usize = 8;
const AGE_W: usize = 6;
const MIN_TARGET_W: usize = 6;
const MAX_TARGET_W: usize = 24;
const MIN_RULE_W: usize = 6;
const MAX_RULE_W: usize = 28;
const MIN_SUMMARY_W: usize = 16;
/// The MARKS heading.
const MARKS_HEADING_W: usize = 5;
/// The short marks at their widest: `ack sil mnt`.
const SHORT_MARKS_W: usize = 11;

/// The colour of a severity (always next to its symbol).
pub fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => Style::new().fg(Color::Red),
        Severity::Warning => Style::new().fg(Color::Yellow),
        Severity::Unspecified => Style::new().fg(Color::Gray),
    }
}

/// The style of a state word: firing bold, pending plain, resolved green.
pub fn state_style(state: AlertState) -> Style {
    match state {
        AlertState::Firing => style::heading(),
        AlertState::Resolved => Style::new().fg(Color::Green),
        _ => Style::new(),
    }
}

/// The colour of one mark (`acked`, `silenced`, `maint`).
fn mark_style(mark: &str) -> Style {
    if mark.starts_with("ack") {
        Style::new().fg(Color::Green)
    } else if mark.starts_with("sil") {
        Style::new().fg(Color::Magenta)
    } else {
        Style::new().fg(Color::Cyan)
    }
}

/// The marks in their short form: `ack`, `sil`, `mnt`.
fn short_marks(alert: &Alert) -> Vec<&'static str> {
    let mut marks = Vec::new();
    if alert.acknowledged {
        marks.push("ack");
    }
    if alert.silenced {
        marks.push("sil");
    }
    if alert.in_maintenance {
        marks.push("mnt");
    }
    marks
}

/// Which columns the list has at a width, and how wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Two columns for the collector's letter (0 with one collector).
    pub source: usize,
    /// Two columns for `├ `/`└ ` before grouped alerts (0 when none is).
    pub tree: usize,
    /// The severity: the symbol, or the symbol and the word.
    pub severity: usize,
    /// The node or tier.
    pub target: usize,
    /// The rule.
    pub rule: usize,
    /// The marks (0: no alert has any).
    pub marks: usize,
    /// Marks in words (`acked by ann@ws`) rather than short (`ack`).
    pub long_marks: bool,
    /// What is left for the summary.
    pub summary: usize,
}

impl Columns {
    /// The columns for `rows` of `list` in `width` columns (`several`:
    /// from several collectors, tagged).
    pub fn fit(width: usize, list: &[Alert], rows: &[AlertRow], several: bool) -> Self {
        let longest = |f: &dyn Fn(&Alert) -> usize| list.iter().map(f).max().unwrap_or(0);
        let tree = if rows.iter().any(|r| r.grouped) { 2 } else { 0 };
        let severity = if width >= usize::from(WIDE) {
            "✖ critical".chars().count()
        } else {
            3
        };
        let long_marks_w = longest(&|a| alerts::marks(a).join(", ").chars().count());
        let short_marks_w = longest(&|a| short_marks(a).join(" ").chars().count());
        let mut cols = Columns {
            source: if several { 2 } else { 0 },
            tree,
            severity,
            target: longest(&|a| alerts::target(a).chars().count())
                .clamp(MIN_TARGET_W, MAX_TARGET_W),
            rule: longest(&|a| a.rule.chars().count()).clamp(MIN_RULE_W, MAX_RULE_W),
            marks: if long_marks_w > 0 {
                long_marks_w.max(MARKS_HEADING_W)
            } else {
                0
            },
            long_marks: true,
            summary: 0,
        };
        let room = |c: &Columns| width.saturating_sub(c.fixed());
        if room(&cols) < MIN_SUMMARY_W && cols.marks > 0 {
            cols.long_marks = false;
            cols.marks = short_marks_w.clamp(MARKS_HEADING_W, SHORT_MARKS_W);
        }
        // Then the rule and node columns give way, down to their minimum.
        while room(&cols) < MIN_SUMMARY_W && (cols.rule > MIN_RULE_W || cols.target > MIN_TARGET_W)
        {
            if cols.rule >= cols.target && cols.rule > MIN_RULE_W {
                cols.rule -= 1;
            } else {
                cols.target -= 1;
            }
        }
        cols.summary = room(&cols);
        cols
    }

    /// Everything but the summary, separators included.
    fn fixed(&self) -> usize {
        let marks = if self.marks > 0 { self.marks + 1 } else { 0 };
        2 + self.source
            + self.tree
            + self.severity
            + 1
            + STATE_W
            + 1
            + AGE_W
            + 1
            + self.target
            + 1
            + self.rule
            + 1
            + marks
    }
}

/// Draws the alerts view into `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 0 {
        return;
    }
    if !app.model.has_data() {
        fleet::render_empty(frame, app, area);
        return;
    }
    let list = app.model.alerts();
    if list.is_empty() {
        let mut lines = vec![Line::styled(
            "No alerts: nothing pending, firing or recently resolved.",
            style::health(stacktop_proto::Health::Ok),
        )];
        if !app.is_connected() {
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "(as of the last update: the collector is not connected)",
                style::muted(),
            ));
        }
        fleet::render_message(frame, area, lines);
        return;
    }
    let pane = app.alert_pane_rows().min(area.height.saturating_sub(2));
    // The box follows the list right under its last row.
    let room = area.height.saturating_sub(1 + pane);
    let wanted = u16::try_from(app.alert_rows.len()).unwrap_or(u16::MAX);
    let [heading_area, list_area, pane_area, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(wanted.clamp(1, room.max(1))),
        Constraint::Length(pane),
        Constraint::Min(0),
    ])
    .areas(area);
    let several = app.model.is_multi();
    let cols = Columns::fit(area.width as usize, list, &app.alert_rows, several);
    frame.render_widget(Paragraph::new(heading(&cols)), heading_area);
    let rows = list_area.height as usize;
    // Trust the app's scroll, but never hide the selection.
    let sel = app.alert_selected;
    let offset = app
        .alert_scroll
        .min(sel)
        .max((sel + 1).saturating_sub(rows));
    let lines: Vec<Line> = app
        .alert_rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, row)| {
            let source = app.model.alert_source(row.index);
            let clock = app.model.clock_ms(source, app.now_ms);
            let tag = several.then(|| source.label());
            let line = alert_line(&list[row.index], row, &cols, tag, clock, i == sel);
            if !app.is_live(source) {
                line.patch_style(style::stale())
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list_area);
    if pane_area.height > 2
        && let Some(alert) = app.selected_alert()
    {
        let source = app.selected_alert_source();
        let clock = app.model.clock_ms(source, app.now_ms);
        let from = several.then(|| {
            let url = app.model.source(source).map_or("", |s| s.url.as_str());
            format!("collector {} {url}", source.label())
        });
        let stale = !app.is_live(source);
        render_pane(frame, alert, list, clock, stale, from, pane_area);
    }
}

fn heading(cols: &Columns) -> Line<'static> {
    let mut text = format!(
        "  {}{}{} {} {} {} {}",
        if cols.source > 0 { "@ " } else { "" },
        " ".repeat(cols.tree),
        fit_left("SEV", cols.severity),
        fit_left("STATE", STATE_W),
        fit_right("AGE", AGE_W),
        fit_left("NODE", cols.target),
        fit_left("RULE", cols.rule),
    );
    if cols.marks > 0 {
        text.push_str(&format!(" {}", fit_left("MARKS", cols.marks)));
    }
    text.push_str(&format!(" {}", fit_left("SUMMARY", cols.summary)));
    Line::styled(text, style::muted().add_modifier(Modifier::BOLD))
}

/// One alert's row, after its collector's letter `tag` when several are
/// listed; ages against that collector's `clock`.
fn alert_line(
    alert: &Alert,
    row: &AlertRow,
    cols: &Columns,
    tag: Option<char>,
    clock: i64,
    selected: bool,
) -> Line<'static> {
    let severity = alert.severity();
    let state = alert.state();
    let firing = state == AlertState::Firing;
    let mut spans = vec![Span::raw(if selected { "› " } else { "  " })];
    if let Some(tag) = tag {
        spans.push(Span::styled(format!("{tag} "), style::heading()));
    }
    if cols.tree > 0 {
        let tree = match (row.grouped, row.last) {
            (false, _) => "  ",
            (true, false) => "├ ",
            (true, true) => "└ ",
        };
        spans.push(Span::styled(tree, style::muted()));
    }
    let word = if cols.severity > 3 {
        format!(
            "{} {}",
            alerts::severity_symbol(severity),
            alerts::severity_word(severity)
        )
    } else {
        alerts::severity_symbol(severity).to_string()
    };
    let mut sev_style = severity_style(severity);
    if firing {
        sev_style = sev_style.add_modifier(Modifier::BOLD);
    }
    spans.push(Span::styled(fit_left(&word, cols.severity), sev_style));
    spans.push(Span::raw(" "));
    spans.push(Span::styled(
        fit_left(alerts::state_word(state), STATE_W),
        state_style(state),
    ));
    spans.push(Span::raw(format!(
        " {} {} {}",
        fit_right(&alerts::age(alert, clock), AGE_W),
        fit_left(&alerts::target(alert), cols.target),
        fit_left(&alert.rule, cols.rule),
    )));
    if cols.marks > 0 {
        spans.push(Span::raw(" "));
        let marks: Vec<String> = if cols.long_marks {
            alerts::marks(alert)
        } else {
            short_marks(alert).into_iter().map(String::from).collect()
        };
        let mut used = 0;
        for (i, mark) in marks.iter().enumerate() {
            let sep = if i == 0 {
                ""
            } else if cols.long_marks {
                ", "
            } else {
                " "
            };
            let room = cols.marks.saturating_sub(used + sep.len());
            if room == 0 {
                break;
            }
            let text = format!("{sep}{}", format::fit_left(mark, room).trim_end());
            used += text.chars().count();
            spans.push(Span::styled(text, mark_style(mark)));
        }
        spans.push(Span::raw(" ".repeat(cols.marks.saturating_sub(used))));
    }
    spans.push(Span::raw(format!(
        " {}",
        fit_left(&alert.summary, cols.summary)
    )));
    if state == AlertState::Resolved {
        // Over: still listed, but nothing on it is urgent.
        for span in spans.iter_mut().skip(1) {
            if span.style.fg != Some(Color::Green) {
                span.style = span.style.add_modifier(Modifier::DIM);
            }
        }
    }
    let line = Line::from(spans);
    if selected {
        line.patch_style(style::selected())
    } else {
        line
    }
}

/// The selected alert in full, in a box at the bottom.
fn render_pane(
    frame: &mut Frame,
    alert: &Alert,
    list: &[Alert],
    clock: i64,
    stale: bool,
    from: Option<String>,
    area: Rect,
) {
    let inner = area.width.saturating_sub(2) as usize;
    let severity = alert.severity();
    let state = alert.state();
    let mut first = vec![
        Span::styled(
            format!(
                "{} {}",
                alerts::severity_symbol(severity),
                alerts::severity_word(severity)
            ),
            severity_style(severity).add_modifier(Modifier::BOLD),
        ),
        Span::raw(" · "),
        Span::styled(alerts::state_word(state), state_style(state)),
        Span::raw(format!(" for {}", alerts::age(alert, clock))),
        Span::styled(" · rule ", style::muted()),
        Span::raw(alert.rule.clone()),
        Span::styled(" · ", style::muted()),
        Span::raw(alerts::target(alert)),
    ];
    if let Some(value) = alert.value.filter(|v| v.is_finite()) {
        first.push(Span::styled(" · value ", style::muted()));
        first.push(Span::raw(format!("{value}")));
    }
    let summary = if alert.summary.is_empty() {
        format::UNKNOWN.to_string()
    } else {
        alert.summary.clone()
    };
    let mut done = Vec::new();
    if alert.acknowledged {
        let by = if alert.acknowledged_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", alert.acknowledged_by)
        };
        let when = if alert.acknowledged_ms > 0 {
            format!(
                " {} ago",
                format::elapsed((clock - alert.acknowledged_ms) / 1000)
            )
        } else {
            String::new()
        };
        let comment = if alert.ack_comment.is_empty() {
            String::new()
        } else {
            format!(": {}", alert.ack_comment)
        };
        done.push(format!("acknowledged{by}{when}{comment}"));
    } else if state == AlertState::Firing {
        done.push("not acknowledged".to_string());
    }
    if alert.silenced {
        if alert.silence_id.is_empty() {
            done.push("silenced".to_string());
        } else {
            done.push(format!("silenced ({})", alert.silence_id));
        }
    }
    if alert.in_maintenance {
        done.push("held: in maintenance".to_string());
    }
    if alert.notifications > 0 {
        done.push(format!("notified {}×", alert.notifications));
    }
    let mut relations = Vec::new();
    if !alert.root.is_empty() {
        let root = list
            .iter()
            .find(|a| a.id == alert.root)
            .map_or(alert.root.clone(), |r| {
                format!("{} {}", alerts::target(r), r.rule)
            });
        relations.push(format!("grouped under {root}"));
    }
    if !alert.grouped.is_empty() {
        relations.push(format!("{} grouped under it", alert.grouped.len()));
    }
    let labels = alert
        .labels
        .iter()
        .map(|l| format!("{}={}", l.key, l.value))
        .collect::<Vec<_>>()
        .join(" ");
    if !labels.is_empty() {
        relations.push(labels);
    }
    if let Some(from) = from {
        relations.insert(0, from);
    }
    let mut lines = vec![
        Line::from(first),
        Line::raw(fit_left(&summary, inner)),
        Line::styled(fit_left(&done.join(" · "), inner), style::heading()),
        Line::styled(fit_left(&relations.join(" · "), inner), style::muted()),
    ];
    if stale {
        lines = lines
            .into_iter()
            .map(|l| l.patch_style(style::stale()))
            .collect();
    }
    let title = if stale {
        format!(" Alert {} (stale) ", alert.id)
    } else {
        format!(" Alert {} ", alert.id)
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}
