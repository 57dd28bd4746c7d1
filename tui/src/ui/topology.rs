//! The topology screen (the default one): the stack top to bottom along
//! the request path, one box per tier ([`crate::topology`]), edges between
//! them.
//!
//! A box's top border says its tiers with healthy/total as the collector
//! counted them and the tier's requests per second (LB and web from the
//! collector's traffic totals, others from their nodes' access logs), with
//! a SPOF marker in plain words at its right; its bottom border names the
//! other weaknesses (single writable primary, a node running every role, a
//! node exposed beyond its allow-list). Inside, one cell per node:
//! health symbol and name in the health's colour, role badges when the
//! node has several roles, and from [`WIDE`] columns on its CPU (`—` when
//! unknown: a down or stale node's last value is never shown as now).
//!
//! The edge under the LB box is HAProxy's view of its backend servers, as
//! the LB's agent sampled them (`?` while that sample is not current); the
//! edge under the primary names each replica's lag.
//!
//! Rows are shared out so that every box gets one line of nodes first;
//! then the boxes, in path order, get as many more as they need. A box
//! with more nodes than lines says how many it could not show. A terminal
//! wide and tall enough for a line per node gets that, with each node's
//! memory, request rate and checks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use stacktop_proto::v1::NodeState;
use stacktop_proto::{Health, Role};

use super::{fleet, style};
use crate::app::App;
use crate::format;
use crate::model::NodeKey;
use crate::sort::health_under;
use crate::topology::{DbPart, TierBox, Topology};
use crate::view;

/// From this width on, node cells carry the node's CPU.
pub const WIDE: u16 = 120;
/// The longest name a cell shows before cutting it with `…`.
const MAX_CELL_NAME: usize = 24;

/// Draws the topology into `area`.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 0 {
        return;
    }
    if !app.model.has_data() {
        fleet::render_empty(frame, app, area);
        return;
    }
    if app.model.is_empty() {
        let text = "No nodes have reported to this collector yet.";
        fleet::render_message(frame, area, vec![Line::styled(text, style::muted())]);
        return;
    }
    let topo = Topology::of(&app.model);
    let selected = app.topo_selected.as_ref();
    let inner_width = area.width.saturating_sub(2) as usize;
    let wide = area.width >= WIDE;
    let stale = !app.is_connected();
    // Every box's node lines, and the edge line above it.
    type Section<'a> = (
        Option<Line<'static>>,
        &'a TierBox,
        Vec<(Line<'static>, usize)>,
    );
    let mut sections: Vec<Section> = Vec::new();
    // A tall terminal gets a line per node with its numbers, when every
    // box fits that way.
    let listed: u16 = topo
        .boxes
        .iter()
        .map(|b| b.nodes.len().max(1) as u16 + 3 + u16::from(!b.shared.is_empty()))
        .sum();
    let list = wide && listed <= area.height;
    for (i, b) in topo.boxes.iter().enumerate() {
        let edge = edge_above(&topo, i);
        let lines = if list {
            node_rows(app, b, selected)
        } else {
            node_lines(app, b, inner_width, wide, selected)
        };
        sections.push((edge, b, lines));
    }
    // Plain arrows go first when rows are short; edges with words stay.
    let boxes_min: u16 = sections.len() as u16 * 3;
    let word_edges = sections
        .iter()
        .filter(|(e, _, _)| e.as_ref().is_some_and(|l| l.width() > 4))
        .count() as u16;
    let all_edges = sections.iter().filter(|(e, _, _)| e.is_some()).count() as u16;
    let keep_plain = boxes_min + all_edges <= area.height;
    let keep_words = boxes_min + word_edges <= area.height;
    let edges_used = if keep_plain {
        all_edges
    } else if keep_words {
        word_edges
    } else {
        0
    };
    let mut spare = area.height.saturating_sub(boxes_min + edges_used);
    let mut rows: Vec<u16> = Vec::new();
    for (_, _, lines) in &sections {
        let extra = (lines.len() as u16).saturating_sub(1).min(spare);
        spare -= extra;
        rows.push(1 + extra);
    }
    let mut y = area.y;
    let bottom = area.y + area.height;
    for ((edge, b, lines), content) in sections.into_iter().zip(rows) {
        if let Some(edge) = edge {
            let plain = edge.width() <= 4;
            if (plain && keep_plain) || (!plain && keep_words) {
                if y >= bottom {
                    break;
                }
                let line = if stale {
                    edge.patch_style(style::stale())
                } else {
                    edge
                };
                frame.render_widget(Paragraph::new(line), Rect::new(area.x, y, area.width, 1));
                y += 1;
            }
        }
        if y + 3 > bottom {
            break;
        }
        let height = content + 2;
        let shown = fit_lines(lines, content as usize, b);
        let mut block = Block::bordered()
            .border_style(box_style(app, b))
            .title(box_title(app, b));
        if let Some(spof) = b
            .weaknesses
            .iter()
            .find(|w| matches!(w, crate::topology::Weakness::Spof { .. }))
        {
            block = block.title(
                Line::from(Span::styled(
                    format!(" ⚠ {} ", spof.text()),
                    style::warning_badge(),
                ))
                .right_aligned(),
            );
        }
        let others: Vec<String> = b
            .weaknesses
            .iter()
            .filter(|w| !matches!(w, crate::topology::Weakness::Spof { .. }))
            .map(|w| w.text())
            .collect();
        if !others.is_empty() {
            let text = format::fit_left(
                &format!(" ⚠ {} ", others.join(" · ")),
                inner_width.saturating_sub(2),
            );
            block = block.title_bottom(Line::styled(
                text.trim_end().to_string() + " ",
                style::health(Health::Warn),
            ));
        }
        let mut paragraph = Paragraph::new(shown).block(block);
        if stale {
            paragraph = paragraph.style(style::stale());
        }
        frame.render_widget(paragraph, Rect::new(area.x, y, area.width, height));
        y += height;
    }
}

/// `lines` cut to `rows`, the last one saying how many nodes did not fit.
fn fit_lines(
    mut lines: Vec<(Line<'static>, usize)>,
    rows: usize,
    b: &TierBox,
) -> Vec<Line<'static>> {
    if lines.len() <= rows {
        return lines.into_iter().map(|(l, _)| l).collect();
    }
    lines.truncate(rows.saturating_sub(1));
    let shown: usize = lines.iter().map(|(_, n)| n).sum();
    let hidden = b.nodes.len().saturating_sub(shown);
    let mut lines: Vec<Line<'static>> = lines.into_iter().map(|(l, _)| l).collect();
    lines.push(Line::styled(
        format!(" … {hidden} more: the nodes view (2) lists every node"),
        style::muted(),
    ));
    lines
}

/// The box's border colour: its worst tier's health.
fn box_style(app: &App, b: &TierBox) -> Style {
    let worst = b
        .tiers
        .iter()
        .filter_map(|r| app.tier(*r))
        .map(|t| t.health())
        .max_by_key(|h| h.severity());
    match (b.db_part, worst) {
        // The replicas' half has no tier verdict of its own: its nodes'.
        (Some(DbPart::Replicas), _) | (_, None) => {
            let worst = b
                .nodes
                .iter()
                .filter_map(|k| app.node(k))
                .map(|n| health_under(n, Role::Db))
                .max_by_key(|h| h.severity())
                .unwrap_or(Health::Unknown);
            style::health(worst)
        }
        (_, Some(h)) => style::health(h),
    }
}

/// ` Web 2/2 · App 2/2 healthy · 812 req/s `.
fn box_title(app: &App, b: &TierBox) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    if b.tiers.is_empty() {
        let n = b.nodes.len();
        spans.push(Span::styled("Unassigned", style::heading()));
        spans.push(Span::styled(
            format!(" {n} node{} without a role ", if n == 1 { "" } else { "s" }),
            style::muted(),
        ));
        return Line::from(spans);
    }
    for (i, tier) in b.tiers.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", style::muted()));
        }
        // The primary's box carries the DB tier's counts; the replicas'
        // box counts its own nodes.
        let name = match b.db_part {
            Some(DbPart::Replicas) => "DB replicas".to_string(),
            _ => tier.tier_title().to_string(),
        };
        spans.push(Span::styled(name, style::heading()));
        spans.push(Span::raw(" "));
        if b.db_part == Some(DbPart::Replicas) {
            let ok = b
                .nodes
                .iter()
                .filter_map(|k| app.node(k))
                .filter(|n| health_under(n, Role::Db).severity() <= Health::Warn.severity())
                .count();
            let h = if ok == 0 { Health::Down } else { Health::Ok };
            spans.push(Span::styled(
                format!("{ok}/{} up", b.nodes.len()),
                style::health(h),
            ));
        } else if let Some(t) = app.tier(*tier) {
            spans.push(Span::styled(
                format!("{}/{} healthy", t.healthy, t.total),
                style::health(t.health()),
            ));
            if t.in_maintenance {
                spans.push(Span::styled(" maint", style::maint()));
            }
            if b.db_part == Some(DbPart::Primary) {
                spans.push(Span::styled(" · primary", style::heading()));
            }
        } else {
            spans.push(Span::styled("?", style::muted()));
        }
    }
    if let Some(qps) = box_qps(app, b) {
        spans.push(Span::styled(" · ", style::muted()));
        spans.push(Span::raw(format!("{} req/s", format::rate(Some(qps)))));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// The box's requests per second: the collector's LB or web traffic
/// total, else the sum of its nodes' access-log rates when any is known.
fn box_qps(app: &App, b: &TierBox) -> Option<f64> {
    let traffic = app.model.totals().and_then(|t| t.traffic.as_ref());
    match b.tiers.first() {
        Some(Role::Lb) => traffic.and_then(|t| t.lb_requests_per_second),
        Some(Role::Web) => traffic.and_then(|t| t.web_requests_per_second),
        Some(_) if b.db_part.is_none() => {
            let known: Vec<f64> = b
                .nodes
                .iter()
                .filter_map(|k| app.node(k))
                .filter_map(|n| view::summary(n).qps)
                .collect();
            (!known.is_empty()).then(|| known.iter().sum())
        }
        _ => None,
    }
}

/// The line above box `i`: users before the first, HAProxy's backends
/// under an LB box, replication lag under the primary, else an arrow.
fn edge_above(topo: &Topology, i: usize) -> Option<Line<'static>> {
    let arrow = Span::styled("  ▼ ", style::muted());
    let b = &topo.boxes[i];
    if b.tiers.is_empty() {
        return None;
    }
    if i == 0 {
        return Some(Line::from(vec![
            arrow,
            Span::styled("users", style::heading()),
        ]));
    }
    let above = &topo.boxes[i - 1];
    if above.tiers.contains(&Role::Lb) && !topo.backends.is_empty() {
        return Some(backends_edge(topo, arrow));
    }
    if above.db_part == Some(DbPart::Primary) && b.db_part == Some(DbPart::Replicas) {
        return Some(replication_edge(topo, arrow));
    }
    Some(Line::from(arrow))
}

/// `▼ HAProxy: web1 UP · web3 DOWN · sorry UP (backup)`.
fn backends_edge(topo: &Topology, arrow: Span<'static>) -> Line<'static> {
    let current = topo.backends.iter().all(|(_, c)| *c);
    let mut spans = vec![arrow, Span::styled("HAProxy", style::heading())];
    if !current {
        spans.push(Span::styled(
            " (last sample, states unknown)",
            style::muted(),
        ));
    }
    spans.push(Span::raw(": "));
    for (i, (server, current)) in topo.backends.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", style::muted()));
        }
        spans.push(Span::raw(format!("{} ", server.server)));
        let state = stacktop_proto::metrics::server_state(&server.status);
        let (word, h) = if !current {
            (String::new(), Health::Unknown)
        } else {
            let h = match state {
                stacktop_proto::metrics::ServerState::Up => Health::Ok,
                stacktop_proto::metrics::ServerState::Down => Health::Crit,
                _ => Health::Warn,
            };
            (server.status.clone(), h)
        };
        let text = format!("{} {word}", style::symbol(h));
        spans.push(Span::styled(text.trim_end().to_string(), style::health(h)));
        if server.backup {
            spans.push(Span::styled(" (backup)", style::muted()));
        }
    }
    Line::from(spans)
}

/// `▼ replication: db2 lag 42s · db3 lag ?`.
fn replication_edge(topo: &Topology, arrow: Span<'static>) -> Line<'static> {
    let mut spans = vec![arrow, Span::styled("replication", style::heading())];
    spans.push(Span::raw(": "));
    for (i, r) in topo.replicas.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", style::muted()));
        }
        spans.push(Span::raw(format!("{} ", r.key.name)));
        let text = match r.lag_seconds {
            Some(lag) => format!("lag {}", format::elapsed(lag.round() as i64)),
            None => format!("lag {}", format::UNKNOWN),
        };
        let h = if r.lag_seconds.is_none() {
            Health::Unknown
        } else {
            r.health
        };
        spans.push(Span::styled(
            format!("{} {text}", style::symbol(h)),
            style::health(h),
        ));
    }
    if topo.replicas.is_empty() {
        spans.push(Span::styled("no replica reported", style::muted()));
    }
    Line::from(spans)
}

/// The box's node cells wrapped to `width`, then the nodes it shares with
/// an earlier box; each line with how many nodes it shows.
fn node_lines(
    app: &App,
    b: &TierBox,
    width: usize,
    wide: bool,
    selected: Option<&NodeKey>,
) -> Vec<(Line<'static>, usize)> {
    let tier = b.tiers.first().copied().unwrap_or(Role::Unspecified);
    let mut lines = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    let mut count = 0;
    for key in &b.nodes {
        let Some(node) = app.node(key) else { continue };
        let cell = node_cell(node, tier, wide, selected == Some(key));
        let w: usize = cell.iter().map(Span::width).sum();
        if used > 0 && used + 1 + w > width {
            lines.push((Line::from(std::mem::take(&mut current)), count));
            used = 0;
            count = 0;
        }
        if used > 0 {
            current.push(Span::raw(" "));
            used += 1;
        }
        used += w;
        count += 1;
        current.extend(cell);
    }
    if !current.is_empty() {
        lines.push((Line::from(current), count));
    }
    if !b.shared.is_empty() {
        let names: Vec<&str> = b.shared.iter().map(|k| k.name.as_str()).collect();
        let text = format!(" also: {} (drawn above)", names.join(", "));
        lines.push((
            Line::styled(format::fit_left(&text, width), style::muted()),
            0,
        ));
    }
    if lines.is_empty() {
        lines.push((Line::styled(" no node", style::muted()), 0));
    }
    lines
}

/// One line per node: its cell, then its memory, request rate and checks
/// (the numbers `—` when unknown); then the nodes shared with an earlier
/// box.
fn node_rows(app: &App, b: &TierBox, selected: Option<&NodeKey>) -> Vec<(Line<'static>, usize)> {
    let tier = b.tiers.first().copied().unwrap_or(Role::Unspecified);
    let mut lines: Vec<(Line<'static>, usize)> = Vec::new();
    for key in &b.nodes {
        let Some(node) = app.node(key) else { continue };
        let mut spans = node_cell(node, tier, true, selected == Some(key));
        let s = view::summary(node);
        spans.push(Span::styled(
            format!(
                " mem {}  {} req/s  ",
                format::percent(s.memory_used_ratio),
                format::rate(s.qps)
            ),
            style::muted(),
        ));
        let checks = (node.health() != Health::Down)
            .then(|| view::checks_summary(&node.checks))
            .flatten();
        spans.push(match checks {
            Some((text, h)) => Span::styled(format!("checks {text}"), style::health(h)),
            None => Span::styled(format!("checks {}", format::UNKNOWN), style::muted()),
        });
        lines.push((Line::from(spans), 1));
    }
    if !b.shared.is_empty() {
        let names: Vec<&str> = b.shared.iter().map(|k| k.name.as_str()).collect();
        let text = format!(" also: {} (drawn above)", names.join(", "));
        lines.push((Line::styled(text, style::muted()), 0));
    }
    if lines.is_empty() {
        lines.push((Line::styled(" no node", style::muted()), 0));
    }
    lines
}

/// One node's cell: ` ● web1 web+app 73% ` (selected: reversed).
fn node_cell(node: &NodeState, tier: Role, wide: bool, selected: bool) -> Vec<Span<'static>> {
    let h = health_under(node, tier);
    let mut text = format!(
        "{} {}",
        style::symbol(h),
        format::fit_left(&node.name, node.name.chars().count().min(MAX_CELL_NAME))
    );
    let roles: Vec<&str> = node
        .roles()
        .filter(|r| *r != Role::Unspecified)
        .map(|r| r.name())
        .collect();
    let mut spans = Vec::new();
    let base = if selected {
        style::health(h).add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        style::health(h)
    };
    if h == Health::Down {
        text.push_str(" down");
    }
    spans.push(Span::styled(format!(" {text}"), base));
    if roles.len() > 1 {
        spans.push(Span::styled(
            format!(" {}", roles.join("+")),
            style::badge(),
        ));
    }
    if let Some(b) = view::backends(node) {
        spans.push(Span::styled(format!(" {}", b.text()), style::muted()));
    }
    if wide {
        let cpu = format::percent(view::summary(node).cpu_usage_ratio);
        spans.push(Span::styled(format!(" cpu {cpu}"), style::muted()));
    }
    spans.push(Span::raw(" "));
    spans
}
