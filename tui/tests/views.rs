//! Issue #12's acceptance fixture on every view: the topology (the default
//! screen), the nodes table, a node's detail and the alerts, at 80x24 and
//! 200x50, rendered with `TestBackend` at a fixed `now`.
//!
//! The fleet has a down LB (its last numbers must not show), a lagging
//! replica, a SPOF tier (the LBs: one healthy of two), web+app nodes (drawn
//! once, with both badges), a stale node (its request rate and one check
//! went stale while it stayed up) and a firing alert. Snapshots hold the
//! text; the colours that carry meaning are checked cell by cell, and the
//! monochrome theme is checked to keep every state apart without colour.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use stacktop::app::{Action, App, Screen, SortColumn};
use stacktop::config::Theme;
use stacktop::event::Event;
use stacktop::model::ConnState;
use stacktop::ui;
use stacktop_proto::v1::{
    Alert, AlertState, BackendMatch, BackendServer, CheckResult, FleetSnapshot, FleetTotals,
    FleetUpdate, Label, NodeState, NodeSummary, RoleHealth, Severity, TierState, Traffic,
    fleet_update,
};
use stacktop_proto::{Health, Role};

/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600_000;

fn summary(cpu: f64, mem: f64, qps: Option<f64>) -> NodeSummary {
    NodeSummary {
        cpu_usage_ratio: Some(cpu),
        memory_used_ratio: Some(mem),
        memory_used_bytes: Some(mem * 8e9),
        memory_total_bytes: Some(8e9),
        load1: Some(cpu * 4.0),
        network_receive_bytes_per_second: Some(1.5e6),
        network_transmit_bytes_per_second: Some(4.5e6),
        qps,
        timestamp_ms: NOW - 1_000,
        qps_timestamp_ms: qps.map_or(0, |_| NOW - 2_000),
        ..Default::default()
    }
}

fn node(name: &str, roles: &[Role], health: Health, s: Option<NodeSummary>) -> NodeState {
    NodeState {
        name: name.into(),
        roles: roles.iter().map(|r| *r as i32).collect(),
        labels: vec![Label::new("dc", "ams1")],
        agent_version: "0.1.0".into(),
        interval_ms: 1_000,
        health: health as i32,
        connected: health != Health::Down,
        last_seen_ms: NOW - 1_000,
        cpu_recent: if s.is_some() {
            (0..60).map(|i| (i % 10) as f64 / 10.0).collect()
        } else {
            vec![]
        },
        summary: s,
        ..Default::default()
    }
}

fn check(name: &str, kind: &str, status: Health, message: &str) -> CheckResult {
    CheckResult {
        name: name.into(),
        kind: kind.into(),
        status: status as i32,
        latency_seconds: 0.002,
        message: message.into(),
        timestamp_ms: NOW - 1_000,
        ..Default::default()
    }
}

fn server(name: &str, status: &str) -> BackendServer {
    BackendServer {
        backend: "web".into(),
        server: name.into(),
        status: status.into(),
        current_sessions: Some(3.0),
        request_rate: Some(120.0),
        check_status: if status == "UP" { "L7OK" } else { "L4CON" }.into(),
        // The collector matched it by name; HAProxy reaches it in plain
        // text (no `ssl` in its config).
        node: name.into(),
        matched_by: BackendMatch::Name as i32,
        ssl: Some(false),
        ..Default::default()
    }
}

fn tier(role: Role, healthy: u32, total: u32, health: Health) -> TierState {
    TierState {
        role: role as i32,
        healthy,
        total,
        spof: healthy < 2,
        health: health as i32,
        ..Default::default()
    }
}

/// Two LBs (lb1 down), three web+app servers (web2 stale: its request rate
/// and its stub_status check; web3 crit), a primary and a lagging replica.
fn stack() -> FleetSnapshot {
    let mut lb1 = node("lb1", &[Role::Lb], Health::Down, None);
    lb1.last_seen_ms = NOW - 20_000;
    lb1.last_summary = Some(NodeSummary {
        cpu_usage_ratio: Some(0.085),
        timestamp_ms: NOW - 20_000,
        ..Default::default()
    });
    lb1.backends = vec![server("web1", "UP"), server("web2", "UP")];
    lb1.backends_stale = true;
    let mut lb2 = node(
        "lb2",
        &[Role::Lb],
        Health::Ok,
        Some(summary(0.12, 0.2, Some(640.0))),
    );
    lb2.backends = vec![
        server("web1", "UP"),
        server("web2", "UP"),
        server("web3", "DOWN"),
    ];
    lb2.backends_up = Some(2);
    lb2.checks = vec![check("haproxy", "haproxy", Health::Ok, "2 of 3 UP")];
    let mut web1 = node(
        "web1",
        &[Role::Web, Role::App],
        Health::Ok,
        Some(summary(0.41, 0.5, Some(320.0))),
    );
    web1.checks = vec![check("nginx", "nginx", Health::Ok, "200 OK")];
    // Up, but its access log stopped: the rate is stale, as is one check.
    let mut web2 = node(
        "web2",
        &[Role::Web, Role::App],
        Health::Ok,
        Some(summary(0.38, 0.47, None)),
    );
    web2.last_summary = Some(NodeSummary {
        qps: Some(318.5),
        qps_timestamp_ms: NOW - 20_000,
        ..Default::default()
    });
    let mut stub = check("nginx:stub_status", "nginx", Health::Unknown, "active 12");
    stub.stale = true;
    stub.last_status = Health::Ok as i32;
    stub.timestamp_ms = NOW - 20_000;
    web2.checks = vec![stub, check("app:8080", "http", Health::Ok, "200 OK")];
    let mut web3 = node(
        "web3",
        &[Role::Web, Role::App],
        Health::Crit,
        Some(summary(0.02, 0.3, Some(0.0))),
    );
    web3.checks = vec![check("nginx", "nginx", Health::Crit, "connection refused")];
    web3.role_health = vec![
        RoleHealth {
            role: Role::Web as i32,
            health: Health::Crit as i32,
        },
        RoleHealth {
            role: Role::App as i32,
            health: Health::Ok as i32,
        },
    ];
    let mut db1 = node(
        "db1",
        &[Role::Db],
        Health::Ok,
        Some(summary(0.25, 0.8, None)),
    );
    db1.facts = vec![Label::new("db_role", "primary")];
    db1.checks = vec![check("mysql", "mysql", Health::Ok, "SELECT 1")];
    let mut db2 = node(
        "db2",
        &[Role::Db],
        Health::Warn,
        Some(NodeSummary {
            replication_lag_seconds: Some(42.0),
            ..summary(0.3, 0.7, None)
        }),
    );
    db2.facts = vec![Label::new("db_role", "replica")];
    db2.checks = vec![check(
        "mysql:replication",
        "mysql",
        Health::Warn,
        "42 s behind (warn at 30 s)",
    )];
    FleetSnapshot {
        nodes: vec![db1, db2, lb1, lb2, web1, web2, web3],
        totals: Some(FleetTotals {
            tiers: vec![
                tier(Role::Lb, 1, 2, Health::Warn),
                tier(Role::Web, 2, 3, Health::Warn),
                tier(Role::App, 3, 3, Health::Ok),
                tier(Role::Db, 2, 2, Health::Warn),
            ],
            site: Health::Warn as i32,
            timestamp_ms: NOW - 500,
            collector_version: "0.1.0".into(),
            traffic: Some(Traffic {
                web_lb_request_ratio: Some(1.0),
                lb_requests_per_second: Some(640.0),
                web_requests_per_second: Some(640.0),
                ..Default::default()
            }),
            nodes_total: 7,
            nodes_ok: 4,
            nodes_warn: 1,
            nodes_crit: 1,
            nodes_down: 1,
            alerts_firing: 1,
            alerts_critical: 1,
            alerts_unacknowledged: 1,
            ..Default::default()
        }),
        generation: 1,
        alerts: vec![Alert {
            id: "a1".into(),
            rule: "node-down".into(),
            node: "lb1".into(),
            severity: Severity::Critical as i32,
            state: AlertState::Firing as i32,
            since_ms: NOW - 15_000,
            started_ms: NOW - 20_000,
            summary: "lb1 is down: nothing received for 20s".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn app() -> App {
    let mut app = App::new("http://127.0.0.1:7411", NOW - 1_000);
    app.update(Action::connection(ConnState::Connected));
    app.update(Action::update(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(stack())),
    }));
    app.update(Action::Tick(NOW));
    app
}

fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    app.update(Action::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    terminal
}

/// Presses `code` as the event loop would.
fn press(app: &mut App, code: KeyCode) {
    let event = Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
    if let Some(action) = app.action_for(event) {
        app.update(action);
    }
}

fn text(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let b = terminal.backend().buffer();
    (0..b.area.height)
        .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect())
        .collect()
}

/// The (x, y) of the first cell where `needle` starts.
fn find(terminal: &Terminal<TestBackend>, needle: &str) -> (u16, u16) {
    for (y, line) in text(terminal).iter().enumerate() {
        if let Some(at) = line.find(needle) {
            return (line[..at].chars().count() as u16, y as u16);
        }
    }
    panic!("{needle:?} not on screen:\n{}", text(terminal).join("\n"));
}

#[test]
fn topology_80x24() {
    let mut app = app();
    assert_eq!(app.screen, Screen::Topology, "the default screen");
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn topology_200x50() {
    let mut app = app();
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn topology_colours_health_and_marks_the_spof() {
    let mut app = app();
    let t = render(&mut app, 80, 24);
    let b = t.backend().buffer();
    let (x, y) = find(&t, "▼ lb1 down");
    assert_eq!(b[(x, y)].fg, Color::Red);
    assert!(b[(x, y)].modifier.contains(Modifier::BOLD));
    let (x, y) = find(&t, "● lb2");
    assert_eq!(b[(x, y)].fg, Color::Green);
    let (x, y) = find(&t, "✖ web3");
    assert_eq!(b[(x, y)].fg, Color::Red);
    let (x, y) = find(&t, "SPOF: 1 of 2 LB nodes healthy");
    assert_eq!(b[(x, y)].bg, Color::Yellow);
    assert!(text(&t)[3].contains("640 req/s"), "{}", text(&t)[3]);
    // web+app nodes are drawn once, in one joint box.
    let screen = text(&t).join("\n");
    assert_eq!(
        screen.matches("web1").count(),
        3,
        "box, backends edge and plain-text hop:\n{screen}"
    );
    assert!(
        screen.contains("HAProxy: web1 ● UP · web2 ● UP · web3 ✖ DOWN"),
        "{screen}"
    );
    assert!(
        screen.contains("Web 2/3 healthy · App 3/3 healthy"),
        "{screen}"
    );
    assert!(screen.contains("replication: db2 ▲ lag 42s"), "{screen}");
    assert!(screen.contains("single writable primary"), "{screen}");
    // The DOWN server wholly in the crit colour; the plain-text hop under
    // the backends, in the warn colour.
    let (x, y) = find(&t, "web3 ✖ DOWN");
    assert_eq!(b[(x, y)].fg, Color::Red);
    assert_eq!(b[(x + 5, y)].fg, Color::Red);
    let (x, y) = find(&t, "⚠ plain-text hop: web1, web2, web3");
    assert_eq!(b[(x, y)].fg, Color::Yellow);
    assert_eq!(y, find(&t, "HAProxy:").1 + 1, "on the LB -> web edge");
}

/// One LB with `backends` in front of app9 and web2 (crit).
fn lb_app(backends: Vec<BackendServer>) -> App {
    let mut lb1 = node(
        "lb1",
        &[Role::Lb],
        Health::Ok,
        Some(summary(0.1, 0.2, None)),
    );
    lb1.backends_up = Some(backends.iter().filter(|s| s.status == "UP").count() as u32);
    lb1.backends = backends;
    let app9 = node(
        "app9",
        &[Role::Web],
        Health::Ok,
        Some(summary(0.1, 0.2, None)),
    );
    let web2 = node(
        "web2",
        &[Role::Web],
        Health::Crit,
        Some(summary(0.1, 0.2, None)),
    );
    let mut app = App::new("http://127.0.0.1:7411", NOW - 1_000);
    app.update(Action::connection(ConnState::Connected));
    app.update(Action::update(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
            nodes: vec![app9, lb1, web2],
            totals: Some(FleetTotals {
                tiers: vec![
                    tier(Role::Lb, 1, 1, Health::Ok),
                    tier(Role::Web, 1, 2, Health::Crit),
                ],
                timestamp_ms: NOW - 500,
                ..Default::default()
            }),
            generation: 1,
            ..Default::default()
        })),
    }));
    app.update(Action::Tick(NOW));
    app
}

/// An LB whose servers the collector matched by address (another name),
/// by name, and not at all, reached over verified TLS, plain text and an
/// unknown: the edge names the node each server is, marks the unmatched
/// one, the plain-text hop and what is unknown.
#[test]
fn topology_names_each_backends_node_and_what_tls_is_unknown() {
    let mut by_address = server("srv-a", "UP");
    by_address.node = "app9".into();
    by_address.matched_by = BackendMatch::Address as i32;
    by_address.ssl = Some(true);
    by_address.ssl_verify = Some(true);
    let web2 = server("web2", "DOWN");
    let mut unmatched = server("api", "UP");
    unmatched.node.clear();
    unmatched.matched_by = BackendMatch::Unspecified as i32;
    unmatched.ssl = None;
    unmatched.ssl_unknown = "not in /etc/haproxy/haproxy.cfg".into();
    let mut app = lb_app(vec![by_address.clone(), web2, unmatched]);
    let t = render(&mut app, 100, 16);
    let screen = text(&t).join("\n");
    assert!(
        screen.contains("HAProxy: srv-a→app9 ● UP · web2 ✖ DOWN · api (unmatched) ● UP"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "⚠ plain-text hop: web2 · ? TLS api unknown (not in /etc/haproxy/haproxy.cfg)"
        ),
        "{screen}"
    );
    let b = t.backend().buffer();
    let (x, y) = find(&t, "(unmatched)");
    assert_eq!(b[(x, y)].fg, Color::DarkGray);
    let (x, y) = find(&t, "web2 ✖ DOWN");
    assert_eq!(b[(x, y)].fg, Color::Red);
    let (x, y) = find(&t, "⚠ plain-text hop");
    assert_eq!(b[(x, y)].fg, Color::Yellow);

    // Every server behind verified TLS: no marker. An unreadable config:
    // unknown, with the reason, never "fine".
    let mut app = lb_app(vec![by_address.clone()]);
    let screen = text(&render(&mut app, 100, 16)).join("\n");
    assert!(
        !screen.contains("TLS") && !screen.contains("plain"),
        "{screen}"
    );
    let mut unread = by_address;
    unread.ssl = None;
    unread.ssl_verify = None;
    unread.ssl_unknown = "/etc/haproxy/haproxy.cfg: permission denied".into();
    let mut app = lb_app(vec![unread]);
    let screen = text(&render(&mut app, 100, 16)).join("\n");
    assert!(
        screen
            .contains("? TLS behind the LB unknown (/etc/haproxy/haproxy.cfg: permission denied)"),
        "{screen}"
    );
}

#[test]
fn topology_in_monochrome_keeps_states_apart() {
    let mut app = app();
    app.theme = Theme::Mono;
    let t = render(&mut app, 80, 24);
    let b = t.backend().buffer();
    assert!(
        b.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour at all"
    );
    // The states still differ by symbol, and the SPOF badge by reverse.
    for mark in ["▼ lb1", "● lb2", "✖ web3", "▲ db2"] {
        find(&t, mark);
    }
    let (x, y) = find(&t, "SPOF");
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn nodes_80x24() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn nodes_200x50() {
    let mut app = app();
    press(&mut app, KeyCode::Tab);
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn nodes_never_show_a_down_or_stale_value_as_current() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    let t = render(&mut app, 200, 50);
    let lines = text(&t);
    let lb1 = lines.iter().find(|l| l.contains(" lb1 ")).unwrap();
    assert!(!lb1.contains("8.5%"), "{lb1}");
    assert!(!lb1.contains("ok"), "{lb1}");
    assert!(lb1.matches('—').count() >= 6, "{lb1}");
    // web2's request rate went stale: a dash, not its last 318.5.
    let web2 = lines.iter().find(|l| l.contains(" web2 ")).unwrap();
    assert!(!web2.contains("318") && web2.contains("1 stale"), "{web2}");
    // A just-reporting 0 is a real 0.0, unlike a stale one.
    let web3 = lines.iter().find(|l| l.contains(" web3 ")).unwrap();
    assert!(web3.contains("0.0"), "{web3}");
    // One row per node, with both roles.
    assert_eq!(lines.iter().filter(|l| l.contains(" web1 ")).count(), 1);
    assert!(lines.iter().any(|l| l.contains("web+app")));
}

#[test]
fn nodes_sort_by_every_column_and_say_so() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    // s: Name -> Roles -> Cpu.
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.nodes_view.sort, SortColumn::Cpu);
    let t = render(&mut app, 120, 24);
    let lines = text(&t);
    assert!(lines[2].contains("CPU▼"), "{}", lines[2]);
    let order: Vec<&str> = app.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(order, ["web1", "web2", "db2", "db1", "lb2", "web3", "lb1"]);
    press(&mut app, KeyCode::Char('S'));
    let order: Vec<&str> = app.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(order, ["web3", "lb2", "db1", "db2", "web2", "web1", "lb1"]);
    let t = render(&mut app, 120, 24);
    assert!(text(&t)[2].contains("CPU▲"));
    // Every column is reachable and comes back round.
    for _ in 0..SortColumn::ALL.len() {
        press(&mut app, KeyCode::Char('s'));
    }
    assert_eq!(app.nodes_view.sort, SortColumn::Cpu);
}

#[test]
fn nodes_filter_by_regex_on_name_role_or_label() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('/'));
    for c in "^db".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let names: Vec<&str> = app.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2"]);
    let t = render(&mut app, 80, 24);
    assert!(
        text(&t)[2].contains("/ ^db  2 of 7 nodes"),
        "{}",
        text(&t)[2]
    );
    // A role.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    for c in "lb".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let names: Vec<&str> = app.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["lb1", "lb2"]);
    // Not a regular expression: said, and nothing hidden.
    press(&mut app, KeyCode::Char('('));
    let t = render(&mut app, 80, 24);
    assert!(
        text(&t)[2].contains("not a regular expression"),
        "{}",
        text(&t)[2]
    );
    assert_eq!(app.entries.len(), 7);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn nodes_grouped_by_tier() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('t'));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn nodes_columns_widen_and_cut_with_an_ellipsis() {
    let mut snapshot = stack();
    snapshot.nodes[0].name = "db1-primary-in-the-basement-rack-7".into();
    let mut app = App::new("http://127.0.0.1:7411", NOW);
    app.update(Action::connection(ConnState::Connected));
    app.update(Action::update(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(snapshot)),
    }));
    press(&mut app, KeyCode::Char('2'));
    let narrow = text(&render(&mut app, 80, 24)).join("\n");
    assert!(narrow.contains("db1-primary-in-…"), "{narrow}");
    let wide = text(&render(&mut app, 250, 24)).join("\n");
    assert!(
        wide.contains("db1-primary-in-the-basement-rack-7"),
        "{wide}"
    );
    assert!(wide.contains("NET RX") && wide.contains("SEEN"), "{wide}");
}

#[test]
fn detail_of_a_stale_node_80x24() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    while app.selected_entry().unwrap().name != "web2" {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.screen, Screen::Detail(_)));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn detail_of_the_down_lb_200x50() {
    let mut app = app();
    // Topology: the first node drawn is lb1; 3 shows its detail.
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.detail_node().map(|k| k.name.as_str()), Some("lb1"));
    let t = render(&mut app, 200, 50);
    let screen = text(&t).join("\n");
    assert!(screen.contains("last 8.5%"), "{screen}");
    insta::assert_snapshot!(t.backend());
    // Esc goes back where it came from.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Topology);
}

#[test]
fn alerts_80x24() {
    let mut app = app();
    press(&mut app, KeyCode::Char('4'));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn alerts_200x50() {
    let mut app = app();
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Alerts);
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn help_lists_keys_and_a_legend() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    let t = render(&mut app, 200, 50);
    let screen = text(&t).join("\n");
    for key in [
        "Tab / Shift-Tab",
        "1 2 3 4",
        "s, S, Shift+A-Z",
        "/",
        "▼ down",
        "⚠ SPOF",
        "—",
    ] {
        assert!(screen.contains(key), "{key}: {screen}");
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn the_header_says_site_unknown_while_disconnected() {
    let mut app = app();
    app.update(Action::connection(ConnState::Disconnected {
        retry_at_ms: NOW + 5_000,
        error: "connection refused".into(),
    }));
    let t = render(&mut app, 80, 24);
    let top = &text(&t)[0];
    assert!(top.contains("site ?") && top.contains("stale"), "{top}");
    assert!(!top.contains("WARN"), "{top}");
    let before = App::new("http://127.0.0.1:7411", NOW);
    let t = render(&mut before.clone(), 80, 24);
    assert!(text(&t)[0].contains("site ?"), "{}", text(&t)[0]);
}

#[test]
fn ctrl_c_interrupts_and_q_quits() {
    let mut app = app();
    let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let action = app.action_for(ctrl_c).unwrap();
    app.update(action);
    assert_eq!(app.exit(), Some(stacktop::Exit::Interrupted));
    let mut app = self::app();
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.exit(), Some(stacktop::Exit::Quit));
}
