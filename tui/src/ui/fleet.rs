//! The nodes view: one row per node (or, grouped with `t`, every node
//! under each of its tiers with a heading per tier: LB, Web, App, DB,
//! Unassigned), sorted by any column (`s`/`S`, or Shift+the letter the
//! heading underlines: the heading marks the column `▼`, `▲` reversed) and filtered by a regular expression on name, role or
//! label (`/`: a line above the table says what is typed and how many
//! nodes pass).
//!
//! Columns adapt to the width: the "seen" column goes first, then the
//! network columns (at 80 columns ROLES and CHECKS win over them), then
//! ROLES, then load; the CPU sparkline only takes what is left; wide
//! terminals get a longer sparkline, wider names, a wider CHECKS column and
//! a "seen" column. Text that does not fit ends in `…`.
//!
//! The name cell carries what identifies a node within its tier: a DB
//! node's role (`db1 (primary)`) and an LB's backend servers UP as the
//! collector counted them (`lb1 2/3 UP`, red when some are not; `?/3 UP`
//! while their states are unknown); and `maint` while the node is in
//! maintenance (kept before the other note when room is short). A tier in
//! maintenance gets a ` MAINT ` badge on its heading, like ` SPOF `. The
//! CHECKS column says `3/3 ok` or names the worst failing check in its
//! colour.
//!
//! Grouped, a node's status under a tier is its health as that role when
//! the collector reported one (a web+app node whose nginx fails is still a
//! healthy app server). A down node shows `—` in every value column: the
//! collector serves no current value for it, and neither does this screen.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use stacktop_proto::v1::NodeState;
use stacktop_proto::{Health, Role};

use super::style;
use crate::app::{App, NodesView, SortColumn};
use crate::format::{self, fit_left, fit_right};
use crate::model::ConnState;
use crate::sort::health_under;
use crate::view;

const STATUS_W: usize = 9;
const PCT_W: usize = 6;
const LOAD_W: usize = 6;
const NET_W: usize = 9;
const QPS_W: usize = 6;
const SEEN_W: usize = 8;
const CHECKS_W: usize = 14;
const ROLES_W: usize = 8;
/// The most the CHECKS column grows to on a wide terminal.
const MAX_CHECKS_W: usize = 40;
const MIN_NAME_W: usize = 8;
const MIN_SPARK_W: usize = 8;
const MAX_SPARK_W: usize = 120;

/// Which columns fit, and how wide the flexible ones are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Width of the name column.
    pub name: usize,
    /// Whether the load column is shown.
    pub load: bool,
    /// Whether the rx/tx columns are shown.
    pub net: bool,
    /// Whether the "seen" column is shown.
    pub seen: bool,
    /// Whether the checks column is shown.
    pub checks: bool,
    /// Width of the checks column (it grows on wide terminals).
    pub checks_w: usize,
    /// Whether the roles column is shown.
    pub roles: bool,
    /// Width of the sparkline (0: not shown).
    pub spark: usize,
}

impl Columns {
    /// The columns for a list `width` wide whose longest name is
    /// `longest_name` characters.
    pub fn fit(width: usize, longest_name: usize) -> Self {
        let want_name = longest_name.clamp(MIN_NAME_W, 40);
        let mut cols = Columns {
            name: want_name.min(24),
            load: true,
            net: true,
            seen: width >= 140,
            checks: true,
            checks_w: CHECKS_W,
            roles: true,
            spark: 0,
        };
        // Drop columns until the fixed part fits with a minimal name.
        while cols.fixed() + MIN_NAME_W > width {
            if cols.seen {
                cols.seen = false;
            } else if cols.net {
                cols.net = false;
            } else if cols.roles {
                cols.roles = false;
            } else if cols.load {
                cols.load = false;
            } else if cols.checks {
                cols.checks = false;
            } else {
                break;
            }
        }
        let room = width.saturating_sub(cols.fixed());
        cols.name = cols.name.min(room).max(MIN_NAME_W.min(room));
        let left = room - cols.name;
        // The sparkline goes before any number column does.
        if left > MIN_SPARK_W && cols.net && cols.load {
            cols.spark = (left - 1).min(MAX_SPARK_W);
            // Very wide: let long names have more of it.
            let spare = left - 1 - cols.spark.min(left - 1);
            cols.name += spare.min(want_name.saturating_sub(cols.name));
            if cols.spark > 60 && want_name > cols.name {
                let give = (cols.spark - 60).min(want_name - cols.name);
                cols.name += give;
                cols.spark -= give;
            }
        } else {
            cols.name += left.min(want_name.saturating_sub(cols.name));
        }
        // Wider still: the checks column says more before the sparkline
        // grows past 60.
        if cols.checks && cols.spark > 60 {
            let give = (cols.spark - 60).min(MAX_CHECKS_W - cols.checks_w);
            cols.checks_w += give;
            cols.spark -= give;
        }
        cols
    }

    /// Width of everything but the name and the sparkline.
    fn fixed(&self) -> usize {
        // marker + status + separators
        let mut w = 2 + STATUS_W + 1 + (PCT_W + 1) * 2 + QPS_W + 1;
        if self.load {
            w += LOAD_W + 1;
        }
        if self.net {
            w += (NET_W + 1) * 2;
        }
        if self.seen {
            w += SEEN_W + 1;
        }
        if self.checks {
            w += self.checks_w + 1;
        }
        if self.roles {
            w += ROLES_W + 1;
        }
        w
    }
}

/// Draws the node list into `area` (column heading, then one line per tier
/// heading and per node, scrolled to keep the selection visible).
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 0 {
        return;
    }
    if !app.model.has_data() {
        render_empty(frame, app, area);
        return;
    }
    if app.model.is_empty() {
        let text = if app.model.is_multi() {
            "No nodes have reported to these collectors yet."
        } else {
            "No nodes have reported to this collector yet."
        };
        render_message(frame, area, vec![Line::styled(text, style::muted())]);
        return;
    }
    let longest = app
        .model
        .nodes()
        .map(|(_, n)| {
            let (name, notes) = name_cell(n);
            name.chars().count()
                + notes
                    .iter()
                    .map(|(t, _)| 1 + t.chars().count())
                    .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let cols = Columns::fit(area.width as usize, longest);
    let stale = !app.is_connected();
    let area = if app.filter_rows() > 0 {
        let line = Rect { height: 1, ..area };
        frame.render_widget(Paragraph::new(filter_line(app)), line);
        Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        }
    } else {
        area
    };
    let rows = area.height.saturating_sub(1) as usize;
    let sel_line = app.entry_line(app.selected);
    // Trust the app's scroll, but never hide the selection.
    let offset = app
        .scroll
        .min(sel_line)
        .max((sel_line + 1).saturating_sub(rows));
    // Only the lines on screen are built: a long fleet costs its visible
    // rows, not all of them.
    let mut visible = vec![column_heading(&cols, &app.nodes_view)];
    let mut line_no = 0;
    for (i, entry) in app.entries.iter().enumerate() {
        if line_no >= offset + rows {
            break;
        }
        if app.is_first_in_tier(i) {
            if line_no >= offset {
                visible.push(tier_heading(app, entry.tier));
            }
            line_no += 1;
            if line_no >= offset + rows {
                break;
            }
        }
        if line_no >= offset
            && let Some(node) = app.node(&entry.key())
        {
            let now = app.model.clock_ms(entry.source, app.now_ms);
            let tier = app.nodes_view.grouped.then_some(entry.tier);
            let mut line = node_line(node, tier, &cols, now, i == app.selected);
            // Several collectors: a node whose collector is down is dimmed
            // too (its values are `—` already: see crate::model).
            if stale || !app.is_live(entry.source) {
                line = line.patch_style(style::stale());
            }
            visible.push(line);
        }
        line_no += 1;
    }
    frame.render_widget(Paragraph::new(visible), area);
}

/// What the screen says before the first snapshot: connecting, or why the
/// collector cannot be reached.
pub fn render_empty(frame: &mut Frame, app: &App, area: Rect) {
    if app.model.is_multi() {
        let mut lines = vec![Line::raw("Waiting for a first snapshot from a collector:")];
        lines.push(Line::raw(""));
        for (i, source) in app.model.sources().iter().enumerate() {
            let label = crate::model::SourceId(i as u16).label();
            let (text, style) = match &source.connection {
                ConnState::Disconnected { error, .. } => (
                    format!("{label} {}: {error}", source.url),
                    style::health(Health::Down),
                ),
                _ => (format!("{label} {}: connecting…", source.url), Style::new()),
            };
            lines.push(Line::styled(text, style));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw("stacktop keeps retrying by itself; q quits."));
        render_message(frame, area, lines);
        return;
    }
    let url = &app.model.primary().url;
    let lines = match app.connection() {
        ConnState::Disconnected { error, .. } => vec![
            Line::styled(
                format!("Cannot reach the collector at {url}."),
                style::health(Health::Down),
            ),
            Line::raw(""),
            Line::styled(error.clone(), style::muted()),
            Line::raw(""),
            Line::raw("stacktop keeps retrying by itself; q quits."),
        ],
        _ => vec![Line::raw(format!("Connecting to {url}…"))],
    };
    render_message(frame, area, lines);
}

/// `lines` centred in `area`.
pub fn render_message(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>) {
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let area = Rect {
        y: area.y + top,
        height: area.height - top,
        ..area
    };
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The column heading; the sorted column carries `▼` (`▲` reversed), and
/// each sortable title underlines its Shift+letter key
/// ([`SortColumn::key`]).
fn column_heading(cols: &Columns, view: &NodesView) -> Line<'static> {
    let base = style::muted().add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled("  ", base)];
    let mut add = |column: SortColumn, width: usize, right: bool, sep: &str| {
        if !sep.is_empty() {
            spans.push(Span::styled(sep.to_string(), base));
        }
        spans.extend(heading_cell(column, width, right, view, base));
    };
    add(SortColumn::Status, STATUS_W, false, "");
    add(SortColumn::Name, cols.name, false, " ");
    if cols.roles {
        add(SortColumn::Roles, ROLES_W, false, " ");
    }
    add(SortColumn::Cpu, PCT_W, true, " ");
    add(SortColumn::Mem, PCT_W, true, " ");
    if cols.load {
        add(SortColumn::Load, LOAD_W, true, " ");
    }
    if cols.net {
        add(SortColumn::NetRx, NET_W, true, " ");
        add(SortColumn::NetTx, NET_W, true, " ");
    }
    add(SortColumn::Qps, QPS_W, true, " ");
    if cols.checks {
        add(SortColumn::Checks, cols.checks_w, false, " ");
    }
    if cols.seen {
        add(SortColumn::Seen, SEEN_W, true, " ");
    }
    if cols.spark > 0 {
        spans.push(Span::styled(
            format!("  {}", fit_left("TREND", cols.spark)),
            base,
        ));
    }
    Line::from(spans)
}

/// One column's title fitted to `width` (`right`: aligned right), with the
/// sort mark when sorted by it and its key letter underlined when the
/// title is shown whole.
fn heading_cell(
    column: SortColumn,
    width: usize,
    right: bool,
    view: &NodesView,
    base: Style,
) -> Vec<Span<'static>> {
    let mut title = column.title().to_string();
    if column == view.sort {
        title.push_str(if view.reverse { "▲" } else { "▼" });
    }
    let cell = if right {
        fit_right(&title, width)
    } else {
        fit_left(&title, width)
    };
    let len = title.chars().count();
    if len > width {
        return vec![Span::styled(cell, base)];
    }
    // Titles are ASCII up to the mark, so char and byte offsets agree
    // before the key letter.
    let at = if right { width - len } else { 0 } + column.key_at();
    let chars: Vec<char> = cell.chars().collect();
    let before: String = chars[..at].iter().collect();
    let after: String = chars[at + 1..].iter().collect();
    vec![
        Span::styled(before, base),
        Span::styled(
            chars[at].to_string(),
            base.add_modifier(Modifier::UNDERLINED),
        ),
        Span::styled(after, base),
    ]
}

/// The filter line: what is typed (with a cursor while typing), how many
/// nodes pass, or why the text is not a regular expression.
fn filter_line(app: &App) -> Line<'static> {
    let view = &app.nodes_view;
    let cursor = if view.editing { "▏" } else { "" };
    let mut spans = vec![
        Span::styled(" / ", style::heading()),
        Span::raw(format!("{}{cursor}", view.filter)),
    ];
    match &view.filter_error {
        Some(err) => spans.push(Span::styled(
            format!("  not a regular expression: {err}"),
            style::health(Health::Crit),
        )),
        None => {
            let shown: std::collections::HashSet<_> = app.entries.iter().map(|e| e.key()).collect();
            spans.push(Span::styled(
                format!(
                    "  {} of {} nodes (name, role or label=value)",
                    shown.len(),
                    app.model.len()
                ),
                style::muted(),
            ));
        }
    }
    let hint = if view.editing {
        "  Enter keep · Esc clear"
    } else {
        "  Esc clear"
    };
    spans.push(Span::styled(hint, style::muted()));
    Line::from(spans)
}

fn tier_heading(app: &App, tier: Role) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{} ", tier.tier_title()),
        style::heading(),
    )];
    if tier == Role::Unspecified {
        let n = app.entries.iter().filter(|e| e.tier == tier).count();
        let noun = if n == 1 { "node" } else { "nodes" };
        spans.push(Span::styled(
            format!("{n} {noun} without a role"),
            style::muted(),
        ));
    } else if let Some(state) = app.tier(tier) {
        spans.push(Span::styled(
            format!("{}/{} healthy", state.healthy, state.total),
            style::health(state.health()),
        ));
        if state.spof {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                " SPOF ",
                Style::new()
                    .fg(ratatui::style::Color::Black)
                    .bg(ratatui::style::Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        if state.in_maintenance {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                " MAINT ",
                Style::new()
                    .fg(ratatui::style::Color::Black)
                    .bg(ratatui::style::Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ));
        }
    }
    Line::from(spans)
}

/// One node's row; `tier`: the tier heading it sits under (grouped), its
/// status then being its health as that role; `now_ms` is the collector's
/// clock (for SEEN).
fn node_line(
    node: &NodeState,
    tier: Option<Role>,
    cols: &Columns,
    now_ms: i64,
    selected: bool,
) -> Line<'static> {
    let s = view::summary(node);
    let down = node.health() == Health::Down;
    let marker = if selected { "› " } else { "  " };
    let mut spans = vec![
        Span::raw(marker),
        style::health_span(
            tier.map_or(node.health(), |t| health_under(node, t)),
            STATUS_W,
        ),
        Span::raw(" "),
    ];
    spans.extend(name_spans(node, cols.name));
    if cols.roles {
        let roles: Vec<&str> = node
            .roles()
            .filter(|r| *r != Role::Unspecified)
            .map(|r| r.name())
            .collect();
        let text = if roles.is_empty() {
            "-".to_string()
        } else {
            roles.join("+")
        };
        spans.push(Span::styled(
            format!(" {}", fit_left(&text, ROLES_W)),
            style::badge(),
        ));
    }
    spans.push(Span::raw(format!(
        " {} {}",
        fit_right(&format::percent(s.cpu_usage_ratio), PCT_W),
        fit_right(&format::percent(s.memory_used_ratio), PCT_W),
    )));
    let mut rest = String::new();
    if cols.load {
        rest.push_str(&format!(" {}", fit_right(&format::load(s.load1), LOAD_W)));
    }
    if cols.net {
        rest.push_str(&format!(
            " {} {}",
            fit_right(
                &format::byte_rate(s.network_receive_bytes_per_second),
                NET_W
            ),
            fit_right(
                &format::byte_rate(s.network_transmit_bytes_per_second),
                NET_W
            ),
        ));
    }
    rest.push_str(&format!(" {}", fit_right(&format::rate(s.qps), QPS_W)));
    if cols.checks {
        spans.push(Span::raw(std::mem::take(&mut rest)));
        spans.push(Span::raw(" "));
        // A down node's check results are not current: no verdict at all.
        let summary = if down {
            None
        } else {
            view::checks_summary(&node.checks)
        };
        spans.push(match summary {
            Some((text, status)) => {
                Span::styled(fit_left(&text, cols.checks_w), style::health(status))
            }
            None => Span::styled(fit_left(format::UNKNOWN, cols.checks_w), style::muted()),
        });
    }
    if cols.seen {
        let seen = if node.last_seen_ms > 0 {
            format::ago((now_ms - node.last_seen_ms) / 1000)
        } else {
            "never".to_string()
        };
        rest.push_str(&format!(" {}", fit_right(&seen, SEEN_W)));
    }
    spans.push(Span::raw(rest));
    // A silent node has no recent CPU either.
    if cols.spark > 0 && !down {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            format::sparkline(&node.cpu_recent, cols.spark),
            Style::new().fg(ratatui::style::Color::Cyan),
        ));
    }
    if down {
        // Nothing on a silent node's row is about now: its name and notes
        // are dimmed, its colours dropped.
        for span in spans.iter_mut().skip(2) {
            span.style.fg = None;
            span.style = span.style.add_modifier(Modifier::DIM);
        }
    }
    let line = Line::from(spans);
    if selected {
        line.patch_style(style::selected())
    } else {
        line
    }
}

/// The node's name and what follows it in the name cell, each with its
/// style: the DB role, or an LB's backend servers UP out of all; then
/// `maint` while the node is in maintenance.
fn name_cell(node: &NodeState) -> (&str, Vec<(String, Style)>) {
    let note = if let Some(role) = view::db_role(node) {
        Some((format!("({role})"), style::muted()))
    } else {
        view::backends(node).map(|b| {
            let style = if b.stale {
                style::health(Health::Unknown)
            } else if b.all_up() {
                style::muted()
            } else if b.none_up() {
                style::health(Health::Crit)
            } else {
                style::health(Health::Warn)
            };
            (b.text(), style)
        })
    };
    let mut notes: Vec<(String, Style)> = note.into_iter().collect();
    if node.in_maintenance {
        notes.push(("maint".to_string(), maint_style()));
    }
    (&node.name, notes)
}

/// The `maint` mark's style.
fn maint_style() -> Style {
    Style::new()
        .fg(ratatui::style::Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

/// The name cell, `width` characters: the name (never cut for a note),
/// then the notes that fit; `maint` is the last to go.
fn name_spans(node: &NodeState, width: usize) -> Vec<Span<'static>> {
    let (name, mut notes) = name_cell(node);
    let name_len = name.chars().count();
    let len = |notes: &[(String, Style)]| {
        notes
            .iter()
            .map(|(t, _)| 1 + t.chars().count())
            .sum::<usize>()
    };
    while !notes.is_empty() && name_len + len(&notes) > width {
        let last_is_maint = notes.len() > 1 && notes[notes.len() - 1].0 == "maint";
        notes.remove(if last_is_maint { 0 } else { notes.len() - 1 });
    }
    if notes.is_empty() {
        return vec![Span::raw(fit_left(name, width))];
    }
    let pad = width - name_len - len(&notes);
    let mut spans = vec![Span::raw(name.to_string())];
    for (text, style) in notes {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(text, style));
    }
    spans.push(Span::raw(" ".repeat(pad)));
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_goes_first_when_narrow() {
        // At 80 columns the checks win over the network rates.
        let c = Columns::fit(80, 10);
        assert!(c.checks && c.load && !c.net && !c.seen, "{c:?}");
        assert!(c.fixed() + c.name + c.spark < 80 || c.spark == 0, "{c:?}");
        let narrow = Columns::fit(60, 10);
        assert_eq!(narrow.spark, 0);
        assert!(!narrow.net);
        let wide = Columns::fit(200, 10);
        assert!(wide.seen && wide.spark > 40, "{wide:?}");
    }
}
