//! Snapshot tests of every screen, rendered with `TestBackend` from
//! hand-made fleets at a fixed `now`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::app::{Action, App, ConnState, History};
use stacktop::ui;
use stacktop_proto::v1::{
    BackendServer, CheckResult, FleetSnapshot, FleetUpdate, Label, NodeState, NodeSummary,
    SeriesValue, TierState, fleet_update,
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
        ..Default::default()
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
        ..Default::default()
    }
}

fn latest(name: &str, labels: &[(&str, &str)], value: f64) -> SeriesValue {
    SeriesValue {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
        value,
        timestamp_ms: NOW - 2_000,
    }
}

/// The latest second of one access log: rates for 2xx..5xx and other, and
/// p50/p95/p99 in seconds when the format has a request time.
fn log_second(source: &str, rates: [f64; 5], quantiles: Option<[f64; 3]>) -> Vec<SeriesValue> {
    let mut out: Vec<SeriesValue> = ["2xx", "3xx", "4xx", "5xx", "other"]
        .iter()
        .zip(rates)
        .map(|(class, v)| {
            latest(
                "http_requests_per_second",
                &[("source", source), ("class", class)],
                v,
            )
        })
        .collect();
    for (q, v) in ["0.5", "0.95", "0.99"]
        .iter()
        .zip(quantiles.into_iter().flatten())
    {
        out.push(latest(
            "http_request_duration_seconds",
            &[("source", source), ("quantile", q)],
            v,
        ));
    }
    out
}

fn server(
    name: &str,
    status: &str,
    backup: bool,
    sessions: f64,
    rate: f64,
    check: &str,
) -> BackendServer {
    BackendServer {
        backend: "web".into(),
        server: name.into(),
        status: status.into(),
        backup,
        current_sessions: Some(sessions),
        request_rate: Some(rate),
        check_status: check.into(),
        check_description: if check == "L4CON" {
            "Connection refused".into()
        } else {
            String::new()
        },
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
    lb.backends = vec![
        server("web1", "UP", false, 12.0, 406.2, "L7OK"),
        server("web2", "UP", false, 11.0, 406.2, "L7OK"),
        server("web3", "DOWN", false, 0.0, 0.0, "L4CON"),
        server("sorry", "UP", true, 0.0, 0.0, "L7OK"),
    ];
    lb.checks = vec![
        check(
            "haproxy:web",
            "haproxy",
            Health::Warn,
            0.0012,
            "1 of 3 active servers not UP: web3 DOWN (L4CON)",
        ),
        check("tcp:80", "tcp", Health::Ok, 0.0003, "connected"),
        check("dns:www", "dns", Health::Ok, 0.0021, "www -> 127.0.0.10"),
    ];
    lb.latest = log_second(
        "haproxy",
        [790.1, 12.0, 9.3, 1.0, 0.0],
        Some([0.004, 0.021, 0.120]),
    );
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
    web1.latest = log_second(
        "nginx",
        [380.2, 6.0, 18.4, 1.5, 0.0],
        Some([0.003, 0.018, 0.095]),
    );
    let web2 = node(
        "web2",
        &[Role::Web, Role::App],
        Health::Ok,
        Some(summary(0.412, 0.48, 1.05, 1.1e6, 9.1e6, Some(406.3))),
    );
    let mut db1 = node(
        "db1-primary",
        &[Role::Db],
        Health::Ok,
        Some(summary(0.25, 0.81, 0.9, 5.2e5, 3.3e6, None)),
    );
    db1.facts = vec![Label::new("db_role", "primary")];
    db1.checks = vec![check(
        "mysql",
        "mysql",
        Health::Ok,
        0.0008,
        "SELECT 1 in 0.8 ms",
    )];
    let mut db2 = node("db2-replica", &[Role::Db], Health::Down, None);
    db2.last_seen_ms = NOW - 47_000;
    db2.facts = vec![Label::new("db_role", "replica")];
    db2.checks = vec![check(
        "mysql:replication",
        "mysql",
        Health::Crit,
        0.0,
        "SQL thread stopped: Error 1062 on table app.sessions",
    )];
    let mut db3 = node(
        "db3-replica",
        &[Role::Db],
        Health::Ok,
        Some(summary(0.12, 0.64, 0.4, 3.1e5, 1.2e5, None)),
    );
    db3.facts = vec![Label::new("db_role", "replica")];
    db3.latest = vec![latest("mysql_replication_lag_seconds", &[], 2.0)];
    db3.checks = vec![
        check("mysql", "mysql", Health::Ok, 0.0009, "SELECT 1 in 0.9 ms"),
        check(
            "mysql:replication",
            "mysql",
            Health::Ok,
            0.0011,
            "IO and SQL threads running, 2 s behind",
        ),
    ];
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
    let mut nodes = vec![lb, web1, web2, db1, db2, db3, spare];
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    FleetSnapshot {
        nodes,
        tiers: vec![
            tier(Role::Lb, 1, 1, Health::Ok),
            tier(Role::Web, 2, 2, Health::Warn),
            tier(Role::App, 2, 2, Health::Warn),
            tier(Role::Db, 2, 3, Health::Ok),
        ],
        site: Health::Warn as i32,
        timestamp_ms: NOW - 500,
        collector_version: "0.1.0".into(),
        web_lb_request_ratio: Some(1.0),
        lb_requests_per_second: Some(812.4),
        web_requests_per_second: Some(812.4),
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
fn detail_of_an_lb_80x24() {
    let mut app = app();
    open(&mut app, "lb1");
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn detail_of_an_lb_200x50() {
    let mut app = app();
    open(&mut app, "lb1");
    app.update(Action::History {
        node: "lb1".into(),
        result: Ok(history()),
    });
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn detail_of_a_replica_with_lag() {
    let mut app = app();
    open(&mut app, "db3-replica");
    app.update(Action::History {
        node: "db3-replica".into(),
        result: Ok(history()),
    });
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn fleet_flags_traffic_that_does_not_add_up() {
    use ratatui::style::Color;
    let mut fleet = fleet();
    fleet.web_lb_request_ratio = Some(0.74);
    let mut app = App::new("http://127.0.0.1:7411", NOW);
    app.update(Action::Connection(ConnState::Connected));
    app.update(Action::Update(Box::new(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(fleet)),
    })));
    let terminal = render(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();
    let top: String = (0..80).map(|x| buffer[(x, 0)].symbol()).collect();
    let at = top.find("0.74").expect("ratio in the header");
    let x = top[..at].chars().count() as u16;
    assert_eq!(buffer[(x, 0)].fg, Color::Yellow);
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
