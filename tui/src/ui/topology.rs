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
//! the LB's agent sampled them (`?` while that sample is not current),
//! each named by the node the collector matched it to (`srv9→app9` when
//! the names differ, `(unmatched)` when no node is it), a DOWN server
//! wholly in the crit colour; under it, in plain words, the servers
//! HAProxy reaches without TLS (`⚠ plain-text hop: web1, web2`) or without
//! verifying their certificate, and `?` where its config could not tell.
//! The edge under the primary names each replica's lag.
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
use crate::topology::{DbPart, HopTls, TierBox, Topology};
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
    // The edge lines above each box.
    let edges: Vec<Vec<Line<'static>>> = (0..topo.boxes.len())
        .map(|i| edge_above(&topo, i, usize::from(area.width)))
        .collect();
    // A tall terminal gets a line per node with its numbers, when every
    // box fits that way.
    let listed: u16 = topo
        .boxes
        .iter()
        .map(|b| b.nodes.len().max(1) as u16 + 3 + u16::from(!b.shared.is_empty()))
        .sum();
    let list = wide && listed <= area.height;
    // Plain arrows go first when rows are short; edges with words stay.
    let boxes_min: u16 = topo.boxes.len() as u16 * 3;
    let word_edges = edges.iter().flatten().filter(|l| !is_plain(l)).count() as u16;
    let all_edges = edges.iter().flatten().count() as u16;
    let keep_plain = boxes_min + all_edges <= area.height;
    let keep_words = boxes_min + word_edges <= area.height;
    let edges_used = if keep_plain {
        all_edges
    } else if keep_words {
        word_edges
    } else {
        0
    };
    // Rows beyond each box's first go to the boxes in path order. Only
    // the lines that can be shown are made (one more tells that some
    // could not): a fleet of thousands costs what the screen holds.
    let mut spare = area.height.saturating_sub(boxes_min + edges_used);
    let mut y = area.y;
    let bottom = area.y + area.height;
    for (b, edge) in topo.boxes.iter().zip(edges) {
        for line in edge {
            let plain = is_plain(&line);
            if (plain && keep_plain) || (!plain && keep_words) {
                if y >= bottom {
                    break;
                }
                let line = if stale {
                    line.patch_style(style::stale())
                } else {
                    line
                };
                frame.render_widget(Paragraph::new(line), Rect::new(area.x, y, area.width, 1));
                y += 1;
            }
        }
        let cap = usize::from(spare) + 2;
        let lines = if list {
            node_rows(b, selected, cap)
        } else {
            node_lines(b, inner_width, wide, selected, cap)
        };
        let extra = (lines.len() as u16).saturating_sub(1).min(spare);
        spare -= extra;
        let content = 1 + extra;
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

/// A bare arrow between two boxes, the first edge line to give up when
/// rows are short.
fn is_plain(line: &Line) -> bool {
    line.width() <= 4
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
                .map(|(_, n)| health_under(n, Role::Db))
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
            Some(DbPart::Replicas) => "DB replicas",
            _ => tier.tier_title(),
        };
        spans.push(Span::styled(name, style::heading()));
        spans.push(Span::raw(" "));
        if b.db_part == Some(DbPart::Replicas) {
            let ok = b
                .nodes
                .iter()
                .filter(|(_, n)| health_under(n, Role::Db).severity() <= Health::Warn.severity())
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
            let mut known = b.nodes.iter().filter_map(|(_, n)| view::summary(n).qps);
            let first = known.next()?;
            Some(first + known.sum::<f64>())
        }
        _ => None,
    }
}

/// The lines above box `i`: users before the first, HAProxy's backends
/// (and the TLS of that hop) under an LB box, replication lag under the
/// primary, else an arrow.
/// Edges are cut at `width` (the servers or replicas past it are not
/// made).
fn edge_above(topo: &Topology, i: usize, width: usize) -> Vec<Line<'static>> {
    let arrow = Span::styled("  ▼ ", style::muted());
    let b = &topo.boxes[i];
    if b.tiers.is_empty() {
        return Vec::new();
    }
    if i == 0 {
        return vec![Line::from(vec![
            arrow,
            Span::styled("users", style::heading()),
        ])];
    }
    let above = &topo.boxes[i - 1];
    if above.tiers.contains(&Role::Lb) && !topo.backends.is_empty() {
        let mut lines = vec![backends_edge(topo, arrow, width)];
        lines.extend(hop_tls_edge(&topo.hop_tls));
        return lines;
    }
    if above.db_part == Some(DbPart::Primary) && b.db_part == Some(DbPart::Replicas) {
        return vec![replication_edge(topo, arrow, width)];
    }
    vec![Line::from(arrow)]
}

/// `▼ HAProxy: web1 ● UP · web3 ✖ DOWN · srv9→app9 ● UP · api (unmatched)
/// ● UP · sorry ● UP (backup)`: each server by the node the collector
/// matched it to, a DOWN one wholly in the crit colour.
fn backends_edge(topo: &Topology, arrow: Span<'static>, width: usize) -> Line<'static> {
    use stacktop_proto::metrics::{ServerState, server_state};
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
            if spans.iter().map(Span::width).sum::<usize>() >= width {
                break;
            }
            spans.push(Span::styled(" · ", style::muted()));
        }
        let h = if !current {
            Health::Unknown
        } else {
            match server_state(&server.status) {
                ServerState::Up => Health::Ok,
                ServerState::Down => Health::Crit,
                _ => Health::Warn,
            }
        };
        let name_style = if h == Health::Crit {
            style::health(h)
        } else {
            Style::default()
        };
        let name = match server.node.as_str() {
            "" => server.server.clone(),
            node if node == server.server => server.server.clone(),
            node => format!("{}→{node}", server.server),
        };
        spans.push(Span::styled(name, name_style));
        if server.node.is_empty() {
            spans.push(Span::styled(" (unmatched)", style::muted()));
        }
        spans.push(Span::raw(" "));
        let text = if *current {
            format!("{} {}", style::symbol(h), server.status)
        } else {
            style::symbol(h).to_string()
        };
        spans.push(Span::styled(text, style::health(h)));
        if server.backup {
            spans.push(Span::styled(" (backup)", style::muted()));
        }
    }
    Line::from(spans)
}

/// The weakness on the hop behind the LB, in plain words: `⚠ plain-text
/// hop: web1, web2 · unverified TLS: web3`, and what is not known (`?
/// TLS unknown: web4: /etc/haproxy/haproxy.cfg: permission denied`).
/// Nothing when every server is reached over verified TLS.
fn hop_tls_edge(tls: &HopTls) -> Option<Line<'static>> {
    let mut spans = vec![Span::raw("    ")];
    let mut said = false;
    let mut say = |spans: &mut Vec<Span<'static>>, text: String, s: Style| {
        if said {
            spans.push(Span::styled(" · ", style::muted()));
        }
        said = true;
        spans.push(Span::styled(text, s));
    };
    let warn = style::health(Health::Warn);
    if !tls.plain.is_empty() {
        let text = format!("⚠ plain-text hop: {}", tls.plain.join(", "));
        say(&mut spans, text, warn);
    }
    if !tls.unverified.is_empty() {
        let text = format!("⚠ unverified TLS: {}", tls.unverified.join(", "));
        say(&mut spans, text, warn);
    }
    if !tls.unknown.is_empty() {
        let who = if tls.plain.is_empty() && tls.unverified.is_empty() {
            "behind the LB".to_string()
        } else {
            tls.unknown.join(", ")
        };
        let why = if tls.unknown_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", tls.unknown_reason)
        };
        let text = format!("{} TLS {who} unknown{why}", style::symbol(Health::Unknown));
        say(&mut spans, text, style::muted());
    }
    said.then(|| Line::from(spans))
}

/// `▼ replication: db2 lag 42s · db3 lag ?`.
fn replication_edge(topo: &Topology, arrow: Span<'static>, width: usize) -> Line<'static> {
    let mut spans = vec![arrow, Span::styled("replication", style::heading())];
    spans.push(Span::raw(": "));
    for (i, r) in topo.replicas.iter().enumerate() {
        if i > 0 {
            if spans.iter().map(Span::width).sum::<usize>() >= width {
                break;
            }
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
/// an earlier box; each line with how many nodes it shows. At most `cap`
/// lines: the nodes after those are not drawn, so their cells are not
/// made.
fn node_lines(
    b: &TierBox,
    width: usize,
    wide: bool,
    selected: Option<&NodeKey>,
    cap: usize,
) -> Vec<(Line<'static>, usize)> {
    let tier = b.tiers.first().copied().unwrap_or(Role::Unspecified);
    let mut lines = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    let mut count = 0;
    for (key, node) in &b.nodes {
        let cell = node_cell(node, tier, wide, selected == Some(*key));
        let w: usize = cell.iter().map(Span::width).sum();
        if used > 0 && used + 1 + w > width {
            lines.push((Line::from(std::mem::take(&mut current)), count));
            used = 0;
            count = 0;
            if lines.len() >= cap {
                return lines;
            }
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
    if !b.shared.is_empty() && lines.len() < cap {
        let text = format!(" also: {} (drawn above)", shared_names(b));
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

fn shared_names(b: &TierBox) -> String {
    let names: Vec<&str> = b.shared.iter().map(|(k, _)| k.name.as_str()).collect();
    names.join(", ")
}

/// One line per node: its cell, then its memory, request rate and checks
/// (the numbers `—` when unknown); then the nodes shared with an earlier
/// box. At most `cap` lines.
fn node_rows(b: &TierBox, selected: Option<&NodeKey>, cap: usize) -> Vec<(Line<'static>, usize)> {
    let tier = b.tiers.first().copied().unwrap_or(Role::Unspecified);
    let mut lines: Vec<(Line<'static>, usize)> = Vec::new();
    for (key, node) in b.nodes.iter().take(cap) {
        let mut spans = node_cell(node, tier, true, selected == Some(*key));
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
    if !b.shared.is_empty() && lines.len() < cap {
        let text = format!(" also: {} (drawn above)", shared_names(b));
        lines.push((Line::styled(text, style::muted()), 0));
    }
    if lines.is_empty() {
        lines.push((Line::styled(" no node", style::muted()), 0));
    }
    lines
}

/// One node's cell: ` ● web1 web+app 73% ` (selected: reversed).
fn node_cell(node: &NodeState, tier: Role, wide: bool, selected: bool) -> Vec<Span<'static>> {
    use std::fmt::Write;
    let h = health_under(node, tier);
    let mut text = String::with_capacity(node.name.len() + 12);
    let _ = write!(text, " {} ", style::symbol(h));
    if node.name.chars().count() <= MAX_CELL_NAME {
        text.push_str(&node.name);
    } else {
        text.push_str(&format::fit_left(&node.name, MAX_CELL_NAME));
    }
    let base = if selected {
        style::health(h).add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        style::health(h)
    };
    if h == Health::Down {
        text.push_str(" down");
    }
    let mut spans = Vec::with_capacity(5);
    spans.push(Span::styled(text, base));
    if node.roles.len() > 1 {
        let mut badge = String::new();
        for r in node.roles().filter(|r| *r != Role::Unspecified) {
            badge.push(if badge.is_empty() { ' ' } else { '+' });
            badge.push_str(r.name());
        }
        if badge.contains('+') {
            spans.push(Span::styled(badge, style::badge()));
        }
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
