//! Snapshot tests of every screen, rendered with `TestBackend` from
//! hand-made fleets at a fixed `now`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::app::{Action, App, ConnState, History};
use stacktop::ui;
use stacktop_proto::v1::{
    CheckResult, FleetSnapshot, FleetUpdate, Label, NodeState, NodeSummary, TierState, fleet_update,
};
use stacktop_proto::{Health, Role};

/// 2026-01-01T00:00:00Z, the fixed "now" of every snapshot.
const NOW: i64 = 1_767_225_600_000;

fn summary(cpu: f64, mem: f64, load: f64, rx: f64, tx: f64, qps: Option<f64>) -> NodeSummary {
    NodeSummary {
        cpu_usage_ratio: Some(cpu),
        memory_used_ratio: Some(mem),
        memory_used_bytes: Some(mem * 8e9),
        memory_total_bytes: Some(8e9),
        load1: Some(load),
        load5: Some(load * 0.8),
        load15: Some(load * 0.6),
        network_receive_bytes_per_second: Some(rx),
        network_transmit_bytes_per_second: Some(tx),
        qps,
        uptime_seconds: Some(3.0 * 86_400.0 + 4.0 * 3_600.0),
        processes: Some(212.0),
        swap_used_bytes: Some(0.0),
        swap_total_bytes: Some(2e9),
        disk_read_bytes_per_second: Some(12_000.0),
        disk_written_bytes_per_second: Some(340_000.0),
    }
}

fn recent(seed: usize) -> Vec<f64> {
    (0..120)
        .map(|i| (((i * 7 + seed * 13) % 23) as f64) / 23.0)
        .collect()
}

fn node(name: &str, roles: &[Role], health: Health, s: Option<NodeSummary>) -> NodeState {
    NodeState {
        name: name.into(),
        instance_id: format!("{name}-1"),
        roles: roles.iter().map(|r| *r as i32).collect(),
        roles_detected: false,
        labels: vec![Label::new("dc", "ams1")],
        agent_version: "0.1.0".into(),
        interval_ms: 1_000,
        health: health as i32,
        connected: health != Health::Down,
        last_seen_ms: NOW - 2_000,
        cpu_recent: if s.is_some() {
            recent(name.len())
        } else {
            vec![]
        },
        summary: s,
        checks: vec![],
        latest: vec![],
        peer: "127.0.0.2:50412".into(),
        ..Default::default()
    }
}

fn check(name: &str, kind: &str, status: Health, latency: f64, message: &str) -> CheckResult {
    CheckResult {
        name: name.into(),
        kind: kind.into(),
        status: status as i32,
        latency_seconds: latency,
        message: message.into(),
        timestamp_ms: NOW - 1_000,
    }
}

fn tier(role: Role, healthy: u32, total: u32, health: Health) -> TierState {
    TierState {
        role: role as i32,
        healthy,
        total,
        spof: healthy < 2,
        health: health as i32,
    }
}

/// A stage-2 stack: one HAProxy, two web+app servers, a primary and a
/// replica (the replica down), and a box nobody gave a role.
fn fleet() -> FleetSnapshot {
    let mut lb = node(
        "lb1",
        &[Role::Lb],
        Health::Ok,
        Some(summary(0.08, 0.21, 0.12, 2.4e6, 2.3e6, Some(812.4))),
    );
    lb.roles_detected = true;
    let mut web1 = node(
        "web1",
        &[Role::Web, Role::App],
        Health::Warn,
        Some(summary(0.734, 0.612, 3.41, 1.2e6, 9.8e6, Some(406.1))),
    );
    web1.checks = vec![
        check("http:/health", "http", Health::Ok, 0.003, "200 OK in 3 ms"),
        check("tcp:8080", "tcp", Health::Ok, 0.0004, "connected"),
        check(
            "disk:/",
            "disk",
            Health::Warn,
            0.0,
            "91% used (warn at 90%)",
        ),
    ];
    web1.labels.push(Label::new("env", "prod"));
    let web2 = node(
        "web2",
        &[Role::Web, Role::App],
        Health::Ok,
        Some(summary(0.412, 0.48, 1.05, 1.1e6, 9.1e6, Some(406.3))),
    );
    let db1 = node(
        "db1-primary",
        &[Role::Db],
        Health::Ok,
        Some(summary(0.25, 0.81, 0.9, 5.2e5, 3.3e6, None)),
    );
    let mut db2 = node("db2-replica", &[Role::Db], Health::Down, None);
    db2.last_seen_ms = NOW - 47_000;
    let mut spare = node(
        "spare",
        &[],
        Health::Unknown,
        Some(NodeSummary {
            load1: Some(0.0),
            ..Default::default()
        }),
    );
    spare.cpu_recent = vec![];
    let mut nodes = vec![lb, web1, web2, db1, db2, spare];
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    FleetSnapshot {
        nodes,
        tiers: vec![
            tier(Role::Lb, 1, 1, Health::Ok),
            tier(Role::Web, 2, 2, Health::Warn),
            tier(Role::App, 2, 2, Health::Warn),
            tier(Role::Db, 1, 2, Health::Ok),
        ],
        site: Health::Warn as i32,
        timestamp_ms: NOW - 500,
        collector_version: "0.1.0".into(),
        ..Default::default()
    }
}

fn app() -> App {
    let mut app = App::new("http://127.0.0.1:7411", NOW - 1_000);
    app.update(Action::Connection(ConnState::Connected));
    app.update(Action::Update(Box::new(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(fleet())),
    })));
    app.update(Action::Tick(NOW));
    app
}

fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    app.update(Action::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    terminal
}

fn history() -> History {
    let series = |f: &dyn Fn(f64) -> f64| -> Vec<(i64, f64)> {
        (0..=120)
            .map(|i| (NOW - 600_000 + i * 5_000, f(i as f64)))
            .collect()
    };
    History {
        cpu: series(&|i| 0.4 + 0.3 * (i / 10.0).sin()),
        memory: series(&|i| 0.55 + i / 2_000.0),
        receive: series(&|i| 1.0e6 + 2.0e5 * (i / 7.0).cos()),
        transmit: series(&|i| 8.0e6 + 1.5e6 * (i / 9.0).sin()),
    }
}

fn open(app: &mut App, name: &str) {
    app.update(Action::Home);
    while app.selected_entry().unwrap().name != name {
        app.update(Action::Down);
    }
    app.update(Action::Open);
}

#[test]
fn fleet_80x24() {
    let mut app = app();
    app.update(Action::Down);
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn fleet_200x50() {
    let mut app = app();
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn fleet_scrolls_when_longer_than_the_screen() {
    let mut app = app();
    app.update(Action::End);
    insta::assert_snapshot!(render(&mut app, 80, 10).backend());
}

#[test]
fn detail_loading() {
    let mut app = app();
    open(&mut app, "web1");
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn detail_with_history() {
    let mut app = app();
    open(&mut app, "web1");
    app.update(Action::History {
        node: "web1".into(),
        result: Ok(history()),
    });
    insta::assert_snapshot!(render(&mut app, 120, 35).backend());
}

#[test]
fn detail_of_a_down_node_with_unknown_values() {
    let mut app = app();
    open(&mut app, "db2-replica");
    app.update(Action::History {
        node: "db2-replica".into(),
        result: Ok(History::default()),
    });
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(Action::ShowHelp);
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn disconnected_keeps_last_data_marked_stale() {
    let mut app = app();
    app.update(Action::Connection(ConnState::Disconnected {
        retry_at_ms: NOW + 15_000,
        error: "cannot reach collector at http://127.0.0.1:7411: connection refused".into(),
    }));
    app.update(Action::Tick(NOW + 12_000));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn disconnected_before_the_first_snapshot() {
    let mut app = App::new("http://10.0.0.5:7411", NOW);
    app.update(Action::Connection(ConnState::Disconnected {
        retry_at_ms: NOW + 2_000,
        error: "cannot reach collector at http://10.0.0.5:7411: tcp connect error: Connection refused (os error 111)".into(),
    }));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn connecting_before_the_first_snapshot() {
    let mut app = App::new("http://10.0.0.5:7411", NOW);
    insta::assert_snapshot!(render(&mut app, 80, 12).backend());
}

#[test]
fn health_words_carry_their_colours() {
    use ratatui::style::{Color, Modifier};
    let mut app = app();
    let terminal = render(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();
    let row_of = |name: &str| {
        (0..buffer.area.height)
            .find(|&y| {
                let line: String = (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect();
                line.contains(name)
            })
            .unwrap()
    };
    // Column 2 is the status symbol (after the selection marker).
    let down = &buffer[(2, row_of("db2-replica"))];
    assert_eq!(down.fg, Color::Red);
    assert!(down.modifier.contains(Modifier::BOLD));
    assert_eq!(buffer[(2, row_of("web2"))].fg, Color::Green);
    assert_eq!(buffer[(2, row_of("web1"))].fg, Color::Yellow);
    assert_eq!(buffer[(2, row_of("spare"))].fg, Color::Gray);
    // A down node's last known numbers are dimmed.
    assert!(
        buffer[(20, row_of("db2-replica"))]
            .modifier
            .contains(Modifier::DIM)
    );
}
