//! The detail screen of one node: identity (with the DB role and
//! replication lag), the current values (and the last known ones where a
//! value went stale), its active alerts, its checks, an LB's backend
//! servers, request rates by status class and latency per log source, and
//! charts ([`charts`]: CPU, memory, network, disk I/O, requests by status
//! class, latency) over the zoom window. A node in maintenance says so,
//! with the time left.
//!
//! The panels come first: they say what is wrong. The charts take the
//! rows left below them, as many as fit; `c` steps on to the charts alone
//! (the Node and Now boxes at their least, the panels hidden), a page at a
//! time when the terminal cannot hold all six, then back to the panels. A
//! line under the charts says which page is shown, or that the charts are
//! hidden and how to see them: they never vanish without a word.
//!
//! The node's state comes from the Watch stream like the fleet screen's;
//! its traffic comes from `Fleet.Node` and its charts from
//! `Fleet.History`, both fetched by the client task while this screen is
//! open. Ages are measured on the collector's clock
//! ([`crate::model::Model::clock_ms`]).
//!
//! With several collectors the Node box ends with one line per collector
//! that reports the node: its letter, its connection (`●` connected, `◌`
//! connecting, `✖` not), when it last heard the node's agent (on its own
//! clock), and which report is the one shown (see [`crate::model`]); the
//! boxes say `(stale)` while the shown report's collector is not
//! connected.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use stacktop_proto::v1::{Alert, NodeState, NodeSummary};

use super::panels::{self, Panel};
use super::{charts, style};
use crate::app::App;
use crate::format;
use crate::model::{ConnState, Detail};
use crate::view;

/// The Node and Now boxes shrink to this many rows at the least (health,
/// name, roles, DB role; CPU, load, memory, QPS).
const MIN_TOP_ROWS: u16 = 6;
/// From this width on, the boxes below Node and Now go in two columns.
const WIDE: u16 = 150;

/// Draws the detail screen of the node the app has open into `area`.
///
/// Top: the Node and Now boxes. Then, when the node has them, Checks,
/// Backends (LB nodes) and Traffic (nodes with access logs): stacked, or
/// in two balanced columns from [`WIDE`] columns on. The charts take what
/// is left if at least one fits ([`charts::grid`]); otherwise the boxes
/// take it all and say in their titles how many rows they could not show.
/// Past the first press of `c`, a page of charts alone instead.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(key) = app.detail_node() else {
        return;
    };
    let Some(node) = app.node(key) else {
        let text = format!(
            "Node {:?} is no longer known to the collector. Esc goes back.",
            key.name
        );
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let detail = app.model.detail().filter(|d| &d.key == key);
    let clock = app.model.clock_ms(key.source, app.now_ms);
    let stale = !app.is_live(key.source);
    let mut identity = identity_lines(node, clock);
    if app.model.is_multi() {
        identity.extend(source_lines(app, key));
    }
    // The charts alone: how many fit under the Node and Now boxes at their
    // least, above the hint line, and so how many pages `c` steps through.
    let alone = charts::capacity(Rect {
        height: area.height.saturating_sub(MIN_TOP_ROWS + 1),
        ..area
    });
    let pages = charts::KINDS.len().div_ceil(alone.max(1)) * usize::from(alone > 0);
    let step = app.chart_step % (pages + 1);
    if step > 0 {
        let [top, rest, hint] = Layout::vertical([
            Constraint::Length(MIN_TOP_ROWS),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        top_boxes(frame, node, identity, clock, stale, top);
        let page = &charts::KINDS[(step - 1) * alone..(step * alone).min(charts::KINDS.len())];
        charts::render(
            frame,
            app.history(),
            app.chart_now_ms(),
            chart_view(app),
            page,
            rest,
        );
        let next = if step == pages {
            "back to the panels"
        } else {
            "next charts"
        };
        hint_line(
            frame,
            format!(" charts {step}/{pages}, panels hidden · c: {next}"),
            hint,
        );
        return;
    }
    let wide = area.width >= WIDE;
    let node_alerts: Vec<Alert> = app.model.node_alerts(key).into_iter().cloned().collect();
    let panels = panels(
        node,
        &node_alerts,
        detail,
        clock,
        if wide { area.width / 2 } else { area.width },
    );
    // J/K (or the wheel) scroll every panel's rows; the title says how far.
    let mut panels = panels;
    for p in &mut panels {
        let skip = usize::from(app.panel_scroll).min(p.rows.len().saturating_sub(1));
        if skip > 0 {
            p.rows.drain(..skip);
            p.title.push_str(&format!(" ↓{skip}"));
        }
    }
    let want = |column: &[&Panel]| column.iter().map(|b| b.height()).sum::<u16>();
    let (mut left, mut right): (Vec<&Panel>, Vec<&Panel>) = (Vec::new(), Vec::new());
    for b in &panels {
        // Wide: each box goes to the shorter column, in order.
        if wide && want(&right) < want(&left) {
            right.push(b);
        } else {
            left.push(b);
        }
    }
    // Too short for everything: the last boxes (least important) go
    // before the Node and Now boxes shrink below their minimum.
    while left.len() > 1 && MIN_TOP_ROWS + want(&left).max(want(&right)) > area.height {
        left.pop();
    }
    let need = want(&left).max(want(&right));

    // The Node and Now boxes give up their lower lines (down to
    // MIN_TOP_ROWS) before the boxes below lose rows.
    let full_top = identity.len().max(SUMMARY_LINES) as u16 + 2;
    let short = (full_top + need).saturating_sub(area.height);
    let top_height = full_top
        .saturating_sub(short)
        .max(MIN_TOP_ROWS)
        .min(area.height);
    let [top, rest] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(area);
    top_boxes(frame, node, identity, clock, stale, top);

    // The rows under the panels: every chart, some of them above a line
    // saying so, or only that line.
    let room = Rect {
        height: rest.height.saturating_sub(need),
        ..rest
    };
    let shown = if charts::capacity(room) == charts::KINDS.len() {
        charts::KINDS.len()
    } else {
        charts::capacity(Rect {
            height: room.height.saturating_sub(1),
            ..room
        })
    };
    let middle_height = if shown > 0 {
        need
    } else {
        rest.height.saturating_sub(1)
    };
    let [middle, chart_area] =
        Layout::vertical([Constraint::Length(middle_height), Constraint::Min(0)]).areas(rest);
    if right.is_empty() || left.is_empty() {
        let all: Vec<&Panel> = left.into_iter().chain(right).collect();
        panels::render_column(frame, &all, middle);
    } else {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(middle);
        panels::render_column(frame, &left, l);
        panels::render_column(frame, &right, r);
    }
    let more = if pages > 0 {
        " · c: charts instead of the panels"
    } else {
        ""
    };
    let kinds = &charts::KINDS[..shown];
    if shown == charts::KINDS.len() {
        charts::render(
            frame,
            app.history(),
            app.chart_now_ms(),
            chart_view(app),
            kinds,
            chart_area,
        );
    } else if shown > 0 {
        let [grid, hint] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(chart_area);
        charts::render(
            frame,
            app.history(),
            app.chart_now_ms(),
            chart_view(app),
            kinds,
            grid,
        );
        let total = charts::KINDS.len();
        hint_line(frame, format!(" {shown} of {total} charts{more}"), hint);
    } else if chart_area.height > 0 {
        hint_line(
            frame,
            format!(" charts hidden: enlarge the terminal{more}"),
            chart_area,
        );
    }
}

/// The window and frozen state the charts are drawn with.
fn chart_view(app: &App) -> charts::View {
    charts::View {
        window: app.chart_window(),
        frozen: app.frozen,
    }
}

/// One muted line of explanation under (or instead of) the charts.
fn hint_line(frame: &mut Frame, text: String, area: Rect) {
    frame.render_widget(Paragraph::new(Line::styled(text, style::muted())), area);
}

/// The Node and Now boxes side by side in `area`; each shows the lines
/// that fit.
fn top_boxes(
    frame: &mut Frame,
    node: &NodeState,
    identity: Vec<Line<'static>>,
    clock: i64,
    stale: bool,
    area: Rect,
) {
    let [identity_area, summary] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    frame.render_widget(
        Paragraph::new(identity).block(titled("Node", stale)),
        identity_area,
    );
    frame.render_widget(
        Paragraph::new(summary_lines(node, clock)).block(titled("Now", stale)),
        summary,
    );
}

/// One line per collector that reports the node `key` (see the module
/// docs).
fn source_lines(app: &App, key: &crate::model::NodeKey) -> Vec<Line<'static>> {
    app.model
        .reports(&key.name)
        .into_iter()
        .enumerate()
        .map(|(i, (source, node))| {
            let clock = app.model.clock_ms(source, app.now_ms);
            let state = match app.model.source(source).map(|s| &s.connection) {
                Some(ConnState::Connected) => "●",
                Some(ConnState::Connecting) => "◌",
                _ => "✖",
            };
            let shown = if source == key.source { " (shown)" } else { "" };
            let text = format!(
                "{} {state} heard {}{shown}",
                source.label(),
                format::seen(node.last_seen_ms, clock)
            );
            field(if i == 0 { "collectors" } else { "" }, text)
        })
        .collect()
}

/// The panels this node has, in the order they matter when room is short.
/// Traffic comes from the detail's `Fleet.Node` answer; when that call
/// fails before any answer, the panel says why.
fn panels(
    node: &NodeState,
    node_alerts: &[Alert],
    detail: Option<&Detail>,
    clock: i64,
    width: u16,
) -> Vec<Panel> {
    let inner = width.saturating_sub(2) as usize;
    let mut panels = Vec::new();
    if !node_alerts.is_empty() {
        panels.push(panels::alerts(node_alerts, clock, inner));
    }
    if !node.checks.is_empty() {
        panels.push(panels::checks(node, clock, inner));
    }
    if !node.backends.is_empty() {
        panels.push(panels::backends(node, clock, inner));
    }
    match detail {
        Some(Detail {
            node: Some(full), ..
        }) if !full.traffic.is_empty() => panels.push(panels::traffic(&full.traffic, inner)),
        Some(Detail {
            node: None,
            node_error: Some(error),
            ..
        }) => panels.push(panels::unavailable("Traffic", error, inner)),
        _ => {}
    }
    panels
}

fn field(label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<11}"), style::muted()),
        Span::raw(value.into()),
    ])
}

fn titled(title: &str, stale: bool) -> Block<'static> {
    let title = if stale {
        format!(" {title} (stale) ")
    } else {
        format!(" {title} ")
    };
    Block::bordered().title(title)
}

/// Lines of the Node box; a DB node gets its role (and lag) too. Ages
/// against the collector's `clock` ms.
fn identity_lines(node: &NodeState, clock: i64) -> Vec<Line<'static>> {
    let health = node.health();
    let mut names: Vec<String> = node.roles().map(|r| r.name().to_string()).collect();
    // Per-role health, when a role's differs from the node's.
    if node.role_health.iter().any(|r| r.health() != health) {
        for (name, role) in names.iter_mut().zip(node.roles()) {
            if let Some(h) = node.role_health.iter().find(|r| r.role() == role) {
                name.push_str(&format!(" {}", h.health().name()));
            }
        }
    }
    let roles = match (names.is_empty(), node.roles_detected) {
        (true, true) => "none detected (unassigned)".to_string(),
        (true, false) => "none (unassigned)".to_string(),
        (false, true) => format!("{} (detected)", names.join(", ")),
        (false, false) => names.join(", "),
    };
    let labels = if node.labels.is_empty() {
        format::UNKNOWN.to_string()
    } else {
        node.labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let agent = if node.agent_version.is_empty() {
        format::UNKNOWN.to_string()
    } else {
        node.agent_version.clone()
    };
    let interval = if node.interval_ms > 0 {
        format!(
            "{agent}, every {}",
            humantime::format_duration(std::time::Duration::from_millis(u64::from(
                node.interval_ms
            )))
        )
    } else {
        agent
    };
    let link = if node.connected {
        "stream open"
    } else {
        "no stream"
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<11}", "health"), style::muted()),
            style::health_span(health, 0),
        ]),
        field("name", node.name.clone()),
        field("roles", roles),
        field("labels", labels),
        field("agent", interval),
        field(
            "last seen",
            format!("{} ({link})", format::seen(node.last_seen_ms, clock)),
        ),
        field(
            "peer",
            if node.peer.is_empty() {
                format::UNKNOWN.to_string()
            } else {
                node.peer.clone()
            },
        ),
        field("uptime", format::uptime(view::summary(node).uptime_seconds)),
    ];
    let lag = view::replication_lag(node);
    if let Some(role) = view::db_role(node) {
        let text = match lag {
            Some(lag) => format!("{role}, lag {}", lag_text(lag)),
            None => role.to_string(),
        };
        lines.insert(3, field("db role", text));
    } else if let Some(lag) = lag {
        lines.insert(3, field("repl. lag", lag_text(lag)));
    }
    if node.in_maintenance {
        let left = if node.maintenance_until_ms > 0 {
            format!(
                ", {} left",
                format::elapsed((node.maintenance_until_ms - clock) / 1000)
            )
        } else {
            String::new()
        };
        lines.insert(
            1,
            Line::from(vec![
                Span::styled(format!("{:<11}", "maint"), style::muted()),
                Span::styled(
                    format!("in maintenance{left}"),
                    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
            ]),
        );
    }
    lines
}

fn lag_text(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else {
        format::uptime(Some(seconds))
    }
}

/// Lines of the Now box.
const SUMMARY_LINES: usize = 8;

/// The Now box: the collector's current values, `—` where it has none;
/// where it has a last known one instead (`last_summary`), that too, with
/// its age on the collector's `clock`, never as if current.
fn summary_lines(node: &NodeState, clock: i64) -> Vec<Line<'static>> {
    let s = view::summary(node);
    let last = node.last_summary.unwrap_or_default();
    let ago = |ts: i64| (ts > 0).then(|| format::ago((clock - ts) / 1000));
    let (system_age, qps_age) = (ago(last.timestamp_ms), ago(last.qps_timestamp_ms));
    // "—", and "(last 8.5%, 20s ago)" when the value went stale.
    let or_last = |text: String,
                   now: Option<f64>,
                   then: Option<f64>,
                   age: &Option<String>,
                   show: fn(Option<f64>) -> String| {
        match (now, then, age) {
            (None, Some(_), Some(age)) => format!("{text} (last {}, {age} ago)", show(then)),
            _ => text,
        }
    };
    let of = |used: Option<f64>, total: Option<f64>| match (used, total) {
        (None, None) => String::new(),
        _ => format!(" ({} of {})", format::bytes(used), format::bytes(total)),
    };
    // An in/out pair of byte rates, e.g. "1.2 MB/s / 300 kB/s".
    let rates = |a: Option<f64>, b: Option<f64>| {
        format!("{} / {}", format::byte_rate(a), format::byte_rate(b))
    };
    let NodeSummary {
        cpu_usage_ratio: cpu,
        memory_used_ratio: memory,
        load1,
        qps,
        ..
    } = s;
    vec![
        field(
            "cpu",
            or_last(
                format::percent(cpu),
                cpu,
                last.cpu_usage_ratio,
                &system_age,
                format::percent,
            ),
        ),
        field(
            "load",
            or_last(
                format!(
                    "{} {} {}",
                    format::load(load1),
                    format::load(s.load5),
                    format::load(s.load15)
                ),
                load1,
                last.load1,
                &system_age,
                format::load,
            ),
        ),
        field(
            "memory",
            or_last(
                format!(
                    "{}{}",
                    format::percent(memory),
                    of(s.memory_used_bytes, s.memory_total_bytes)
                ),
                memory,
                last.memory_used_ratio,
                &system_age,
                format::percent,
            ),
        ),
        field(
            "qps",
            or_last(format::rate(qps), qps, last.qps, &qps_age, format::rate),
        ),
        field(
            "net rx/tx",
            rates(
                s.network_receive_bytes_per_second,
                s.network_transmit_bytes_per_second,
            ),
        ),
        field(
            "disk r/w",
            rates(
                s.disk_read_bytes_per_second,
                s.disk_written_bytes_per_second,
            ),
        ),
        field(
            "swap",
            match (s.swap_used_bytes, s.swap_total_bytes) {
                (None, None) => format::UNKNOWN.to_string(),
                (used, total) => format!("{} of {}", format::bytes(used), format::bytes(total)),
            },
        ),
        field(
            "processes",
            s.processes
                .map(|p| format!("{p:.0}"))
                .unwrap_or_else(|| format::UNKNOWN.to_string()),
        ),
    ]
}
