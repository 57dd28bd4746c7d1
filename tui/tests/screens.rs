//! Snapshot tests of every screen, rendered with `TestBackend` from
//! hand-made fleets at a fixed `now`: a snapshot with the collector's
//! totals (and alerts), as Fleet.Watch sends it, and Fleet.Node answers for
//! the detail screens; the alerts view, the header's alert counter, the
//! prompts before write calls and their answers in the footer.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::alerts;
use stacktop::app::{Action, App};
use stacktop::history::{History, Latency, Requests};
use stacktop::model::ConnState;
use stacktop::ui;
use stacktop_proto::v1::{
    Alert, AlertState, BackendServer, CheckResult, FleetSnapshot, FleetTotals, FleetUpdate, Label,
    NodeState, NodeSummary, Severity, SourceTraffic, TierState, Traffic, fleet_update,
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
        timestamp_ms: NOW - 2_000,
        qps_timestamp_ms: qps.map_or(0, |_| NOW - 3_000),
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

/// The latest second of one access log as the collector summarises it:
/// rates for 2xx..5xx and other (all in the total), and p50/p95/p99 in
/// seconds when the format has a request time.
fn log_second(source: &str, rates: [f64; 5], quantiles: Option<[f64; 3]>) -> SourceTraffic {
    let [p50, p95, p99] = quantiles.map_or([None; 3], |q| q.map(Some));
    SourceTraffic {
        source: source.into(),
        class_2xx: Some(rates[0]),
        class_3xx: Some(rates[1]),
        class_4xx: Some(rates[2]),
        class_5xx: Some(rates[3]),
        total: Some(rates.iter().sum()),
        p50_seconds: p50,
        p95_seconds: p95,
        p99_seconds: p99,
        timestamp_ms: NOW - 3_000,
        health_checks: None,
    }
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
    lb.backends_up = Some(3);
    lb.backends_timestamp_ms = NOW - 1_000;
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
    // Down: no current values, its last ones apart, its check stale.
    let mut db2 = node("db2-replica", &[Role::Db], Health::Down, None);
    db2.last_seen_ms = NOW - 47_000;
    db2.facts = vec![Label::new("db_role", "replica")];
    db2.last_summary = Some(NodeSummary {
        cpu_usage_ratio: Some(0.187),
        memory_used_ratio: Some(0.62),
        load1: Some(0.35),
        timestamp_ms: NOW - 47_000,
        ..Default::default()
    });
    let mut replication = check(
        "mysql:replication",
        "mysql",
        Health::Unknown,
        0.0,
        "SQL thread stopped: Error 1062 on table app.sessions",
    );
    replication.stale = true;
    replication.last_status = Health::Crit as i32;
    replication.timestamp_ms = NOW - 48_000;
    db2.checks = vec![replication];
    let mut db3 = node(
        "db3-replica",
        &[Role::Db],
        Health::Ok,
        Some(NodeSummary {
            replication_lag_seconds: Some(2.0),
            ..summary(0.12, 0.64, 0.4, 3.1e5, 1.2e5, None)
        }),
    );
    db3.facts = vec![Label::new("db_role", "replica")];
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
        totals: Some(FleetTotals {
            tiers: vec![
                tier(Role::Lb, 1, 1, Health::Ok),
                tier(Role::Web, 2, 2, Health::Warn),
                tier(Role::App, 2, 2, Health::Warn),
                tier(Role::Db, 2, 3, Health::Ok),
            ],
            site: Health::Warn as i32,
            timestamp_ms: NOW - 500,
            collector_version: "0.1.0".into(),
            traffic: Some(Traffic {
                web_lb_request_ratio: Some(1.0),
                lb_requests_per_second: Some(812.4),
                web_requests_per_second: Some(812.4),
                window_end_ms: NOW - 1_000,
                window_seconds: 10,
            }),
            nodes_total: 7,
            nodes_ok: 4,
            nodes_warn: 1,
            nodes_crit: 0,
            nodes_unknown: 1,
            nodes_down: 1,
            ..Default::default()
        }),
        generation: 1,
        ..Default::default()
    }
}

/// What Fleet.Node answers for `name`: its state in the fleet plus its
/// request rates per access-log source.
fn node_answer(name: &str) -> NodeState {
    let mut node = fleet().nodes.into_iter().find(|n| n.name == name).unwrap();
    node.traffic = match name {
        "lb1" => vec![log_second(
            "haproxy",
            [790.1, 12.0, 9.3, 1.0, 0.0],
            Some([0.004, 0.021, 0.120]),
        )],
        "web1" => vec![log_second(
            "nginx",
            [380.2, 6.0, 18.4, 1.5, 0.0],
            Some([0.003, 0.018, 0.095]),
        )],
        _ => vec![],
    };
    node
}

fn snapshot(fleet: FleetSnapshot) -> Action {
    Action::update(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(fleet)),
    })
}

/// The app on the nodes view grouped by tier (the screens here predate
/// the topology view; tests/views.rs has that one and the flat table).
fn app_of(fleet: FleetSnapshot) -> App {
    let mut app = App::new("http://127.0.0.1:7411", NOW - 1_000);
    app.update(Action::connection(ConnState::Connected));
    app.update(snapshot(fleet));
    app.update(Action::Tick(NOW));
    app.update(Action::View(2));
    app.update(Action::ToggleGroups);
    app
}

fn app() -> App {
    app_of(fleet())
}

fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    app.update(Action::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    terminal
}

/// 121 points 5 s apart over the last 10 minutes, of `f(i)`.
fn series(f: &dyn Fn(f64) -> f64) -> Vec<(i64, f64)> {
    (0..=120)
        .map(|i| (NOW - 600_000 + i * 5_000, f(i as f64)))
        .collect()
}

/// Ten minutes of a web node with an access log that has request times:
/// every chart has data (two disks, one log).
fn history() -> History {
    History {
        cpu: series(&|i| 0.4 + 0.3 * (i / 10.0).sin()),
        memory: series(&|i| 0.55 + i / 2_000.0),
        receive: series(&|i| 1.0e6 + 2.0e5 * (i / 7.0).cos()),
        transmit: series(&|i| 8.0e6 + 1.5e6 * (i / 9.0).sin()),
        disk_read: series(&|i| 2.0e4 + 1.5e4 * (i / 6.0).sin().abs()),
        disk_written: series(&|i| 3.0e5 + 1.0e5 * (i / 8.0).cos()),
        disk_devices: 2,
        requests: Requests {
            sources: 1,
            by_class: [
                series(&|i| 380.0 + 40.0 * (i / 12.0).sin()),
                series(&|i| 150.0 + 20.0 * (i / 15.0).cos()),
                series(&|i| 18.0 + 10.0 * (i / 5.0).cos()),
                // A burst of 5xx half way.
                series(&|i| {
                    if (55.0..65.0).contains(&i) {
                        120.0
                    } else {
                        1.5
                    }
                }),
            ],
        },
        latency: Latency {
            sources: 1,
            quantiles: [
                series(&|i| 0.010 + 0.002 * (i / 9.0).sin()),
                series(&|i| 0.040 + 0.005 * (i / 9.0).sin()),
                series(&|i| {
                    if (55.0..65.0).contains(&i) {
                        0.150
                    } else {
                        0.095
                    }
                }),
            ],
        },
    }
}

/// [`history`] of a node without an access log: no request series at all.
fn history_without_log() -> History {
    History {
        requests: Requests::default(),
        latency: Latency::default(),
        ..history()
    }
}

fn open(app: &mut App, name: &str) {
    app.update(Action::Home);
    while app.selected_entry().unwrap().name != name {
        app.update(Action::Down);
    }
    app.update(Action::Open);
    // The detail poller asks Fleet.Node right away.
    app.update(Action::Node {
        node: name.into(),
        result: Ok(Box::new(node_answer(name))),
    });
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
        result: Ok(Box::new(history())),
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
        result: Ok(Box::new(history())),
    });
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn detail_of_a_replica_with_lag() {
    let mut app = app();
    open(&mut app, "db3-replica");
    app.update(Action::History {
        node: "db3-replica".into(),
        result: Ok(Box::new(history_without_log())),
    });
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn fleet_flags_traffic_that_does_not_add_up() {
    use ratatui::style::Color;
    let mut fleet = fleet();
    let traffic = fleet.totals.as_mut().unwrap().traffic.as_mut().unwrap();
    traffic.web_lb_request_ratio = Some(0.74);
    let mut app = App::new("http://127.0.0.1:7411", NOW);
    app.update(Action::connection(ConnState::Connected));
    app.update(snapshot(fleet));
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
        result: Ok(Box::default()),
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
    app.update(Action::connection(ConnState::Disconnected {
        retry_at_ms: NOW + 15_000,
        error: "cannot reach collector at http://127.0.0.1:7411: connection refused".into(),
    }));
    app.update(Action::Tick(NOW + 12_000));
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn disconnected_before_the_first_snapshot() {
    let mut app = App::new("http://10.0.0.5:7411", NOW);
    app.update(Action::connection(ConnState::Disconnected {
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

/// The text of row `y`.
fn row(terminal: &Terminal<TestBackend>, y: u16) -> String {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect()
}

/// The first row containing `text`.
fn row_with(terminal: &Terminal<TestBackend>, text: &str) -> u16 {
    let height = terminal.backend().buffer().area.height;
    (0..height)
        .find(|&y| row(terminal, y).contains(text))
        .unwrap_or_else(|| panic!("no row with {text:?}: {:?}", terminal.backend()))
}

#[test]
fn a_down_node_shows_dashes_whatever_was_sent() {
    use ratatui::style::Color;
    // A collector that still sent a silent node's last numbers and an ok
    // check: the row must not show them as current.
    let mut fleet = fleet();
    let db2 = fleet
        .nodes
        .iter_mut()
        .find(|n| n.name == "db2-replica")
        .unwrap();
    db2.summary = Some(summary(0.5, 0.5, 1.0, 1e6, 1e6, Some(3.0)));
    db2.checks = vec![check("mysql", "mysql", Health::Ok, 0.001, "SELECT 1")];
    let mut app = app_of(fleet);
    let terminal = render(&mut app, 200, 50);
    let y = row_with(&terminal, "db2-replica");
    let text = row(&terminal, y);
    let cells: Vec<&str> = text.split_whitespace().collect();
    // status, symbol, name, DB role, ROLES, then CPU MEM LOAD RX TX QPS
    // CHECKS, SEEN.
    assert_eq!(
        &cells[5..],
        ["—", "—", "—", "—", "—", "—", "—", "47s"],
        "{text}"
    );
    assert!(!text.contains("ok"), "{text}");
    let buffer = terminal.backend().buffer();
    assert!(
        (12..200).all(|x| buffer[(x, y)].fg != Color::Green),
        "nothing green on a down row: {text}"
    );
}

#[test]
fn detail_of_an_lb_with_stale_backends() {
    let mut fleet = fleet();
    let lb = fleet.nodes.iter_mut().find(|n| n.name == "lb1").unwrap();
    lb.backends_stale = true;
    lb.backends_up = None;
    lb.backends_error = "haproxy stats socket /run/haproxy/admin.sock: connection refused".into();
    lb.backends_timestamp_ms = NOW - 14_000;
    let mut app = app_of(fleet);
    let terminal = render(&mut app, 80, 24);
    let y = row_with(&terminal, "lb1");
    assert!(
        row(&terminal, y).contains("lb1 ?/4 UP"),
        "never the last 3/4"
    );
    open(&mut app, "lb1");
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn a_failed_embedded_agent_is_on_screen() {
    use ratatui::style::Color;
    let mut app = app();
    app.update(Action::Failed {
        what: "agent",
        error: "the sampling interval must be greater than zero".into(),
    });
    let terminal = render(&mut app, 120, 24);
    let line = row(&terminal, 1);
    assert!(
        line.contains(
            "the embedded agent stopped: the sampling interval must be greater than zero"
        ),
        "{line}"
    );
    assert_eq!(terminal.backend().buffer()[(2, 1)].bg, Color::Red);
}

#[test]
fn a_node_is_shown_under_each_tier_with_its_health_there() {
    use stacktop_proto::v1::RoleHealth;
    // web1's nginx failed: crit as a web server, still ok as an app server.
    let mut fleet = fleet();
    let web1 = fleet.nodes.iter_mut().find(|n| n.name == "web1").unwrap();
    web1.health = Health::Crit as i32;
    web1.role_health = vec![
        RoleHealth {
            role: Role::Web as i32,
            health: Health::Crit as i32,
        },
        RoleHealth {
            role: Role::App as i32,
            health: Health::Ok as i32,
        },
    ];
    let mut app = app_of(fleet);
    let terminal = render(&mut app, 80, 24);
    let web = row_with(&terminal, "Web ");
    let app_tier = row_with(&terminal, "App ");
    assert!(row(&terminal, web + 1).contains("✖ crit    web1"));
    assert!(row(&terminal, app_tier + 1).contains("● ok      web1"));
    open(&mut app, "web1");
    let terminal = render(&mut app, 80, 24);
    let roles = row(&terminal, row_with(&terminal, "roles"));
    assert!(roles.contains("web crit, app ok"), "{roles}");
}

#[test]
fn a_failed_node_call_says_why_instead_of_traffic() {
    let mut app = app();
    app.update(Action::Home);
    app.update(Action::Open);
    app.update(Action::Node {
        node: "lb1".into(),
        result: Err("collector at http://127.0.0.1:7411 answered Unimplemented".into()),
    });
    let terminal = render(&mut app, 80, 30);
    let y = row_with(&terminal, "Traffic unavailable");
    assert!(row(&terminal, y + 1).contains("answered Unimplemented"));
}

// The alerts view, the header's alert counter and maintenance marks.

fn label(key: &str, value: &str) -> Label {
    Label::new(key, value)
}

fn alert(
    id: &str,
    rule: &str,
    node: &str,
    severity: Severity,
    state: AlertState,
    ago_ms: i64,
    summary: &str,
) -> Alert {
    Alert {
        id: id.into(),
        rule: rule.into(),
        node: node.into(),
        severity: severity as i32,
        state: state as i32,
        since_ms: NOW - ago_ms,
        started_ms: NOW - ago_ms - 30_000,
        summary: summary.into(),
        labels: vec![
            label("alertname", rule),
            label("severity", alerts::severity_word(severity)),
        ],
        ..Default::default()
    }
}

/// Every kind of alert the view must tell apart: a root with an alert
/// grouped under it (the root acknowledged), a silenced one, a tier alert,
/// one held by maintenance, a pending and a resolved one.
fn alert_list() -> Vec<Alert> {
    let mut down = alert(
        "a1",
        "node-down",
        "db2-replica",
        Severity::Critical,
        AlertState::Firing,
        192_000,
        "db2-replica is down: nothing received for 47s",
    );
    down.grouped = vec!["a2".into()];
    down.acknowledged = true;
    down.acknowledged_by = "ann@ws1".into();
    down.acknowledged_ms = NOW - 60_000;
    down.ack_comment = "rebuilding the replica".into();
    down.notifications = 1;
    let mut replication = alert(
        "a2",
        "check-failed",
        "db2-replica",
        Severity::Critical,
        AlertState::Firing,
        180_000,
        "mysql:replication on db2-replica: SQL thread stopped: Error 1062 on table app.sessions",
    );
    replication.root = "a1".into();
    replication.labels.push(label("check", "mysql:replication"));
    let mut disk = alert(
        "a3",
        "check-failed",
        "web1",
        Severity::Warning,
        AlertState::Firing,
        725_000,
        "disk:/ on web1: 91% used (warn at 90%)",
    );
    disk.silenced = true;
    disk.silence_id = "s-7".into();
    disk.labels.push(label("check", "disk:/"));
    let mut spof = alert(
        "a4",
        "tier-spof",
        "",
        Severity::Warning,
        AlertState::Firing,
        7_500_000,
        "LB tier: 1 of 1 nodes healthy, one failure takes the site down",
    );
    spof.tier = Role::Lb as i32;
    let mut held = alert(
        "a5",
        "check-failed",
        "spare",
        Severity::Warning,
        AlertState::Firing,
        30_000,
        "tcp:22 on spare: connection refused",
    );
    held.in_maintenance = true;
    let mut cpu = alert(
        "a6",
        "high-cpu",
        "web2",
        Severity::Warning,
        AlertState::Pending,
        40_000,
        "web2 CPU 91% for 40s (fires after 2m)",
    );
    cpu.value = Some(0.91);
    let mut resolved = alert(
        "a7",
        "check-failed",
        "lb1",
        Severity::Critical,
        AlertState::Resolved,
        95_000,
        "haproxy:web on lb1: 1 of 3 active servers not UP",
    );
    resolved.notifications = 2;
    // The collector's order is not the view's: the view sorts.
    vec![resolved, cpu, held, spof, disk, replication, down]
}

/// The stage-2 fleet with those alerts, `spare` in maintenance, and the
/// collector's alert counters.
fn alert_fleet() -> FleetSnapshot {
    let mut fleet = fleet();
    fleet.alerts = alert_list();
    let spare = fleet.nodes.iter_mut().find(|n| n.name == "spare").unwrap();
    spare.in_maintenance = true;
    spare.maintenance_until_ms = NOW + 25 * 60_000;
    let t = fleet.totals.as_mut().unwrap();
    t.alerts_firing = 5;
    t.alerts_pending = 1;
    t.alerts_critical = 2;
    t.alerts_warning = 3;
    t.alerts_unacknowledged = 4;
    fleet
}

fn alerts_app() -> App {
    let mut app = app_of(alert_fleet()).with_identity("ann@ws1");
    app.update(Action::ShowAlerts);
    app
}

/// Selects the alerts-view row of alert `id`.
fn select_alert(app: &mut App, id: &str) {
    app.update(Action::Home);
    while app.selected_alert().unwrap().id != id {
        app.update(Action::Down);
    }
}

#[test]
fn alerts_80x24() {
    let mut app = alerts_app();
    select_alert(&mut app, "a2");
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn alerts_200x50() {
    let mut app = alerts_app();
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn alerts_short_terminal_scrolls_without_the_box() {
    let mut app = alerts_app();
    app.update(Action::Resize {
        width: 80,
        height: 10,
    });
    app.update(Action::End);
    insta::assert_snapshot!(render(&mut app, 80, 10).backend());
}

#[test]
fn alerts_none_and_before_data() {
    let mut app = app_of(fleet());
    app.update(Action::ShowAlerts);
    let terminal = render(&mut app, 80, 24);
    row_with(
        &terminal,
        "No alerts: nothing pending, firing or recently resolved.",
    );
    let mut waiting = App::new("http://10.0.0.5:7411", NOW);
    waiting.update(Action::ShowAlerts);
    let terminal = render(&mut waiting, 80, 24);
    row_with(&terminal, "Connecting to http://10.0.0.5:7411…");
    assert!(!row(&terminal, 1).contains("no alerts"));
}

#[test]
fn fleet_with_alerts_and_maintenance_80x24() {
    let mut fleet = alert_fleet();
    let lb = fleet.totals.as_mut().unwrap();
    lb.tiers[0].in_maintenance = true;
    let mut app = app_of(fleet);
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn fleet_with_alerts_and_maintenance_200x50() {
    let mut app = app_of(alert_fleet());
    insta::assert_snapshot!(render(&mut app, 200, 50).backend());
}

#[test]
fn the_alert_counter_is_unknown_until_a_connected_collector_says() {
    use ratatui::style::Color;
    let counter = |app: &mut App| {
        let terminal = render(app, 80, 24);
        row(&terminal, 1)
    };
    // Before any data: never "no alerts".
    let mut app = App::new("http://10.0.0.5:7411", NOW);
    assert!(
        counter(&mut app).ends_with("alerts ?"),
        "{}",
        counter(&mut app)
    );
    // Connected, nothing active.
    let mut app = app_of(fleet());
    assert!(counter(&mut app).ends_with("✔ no alerts"));
    // Firing: symbols and counts, the critical count in red.
    let mut app = app_of(alert_fleet());
    let line = counter(&mut app);
    assert!(
        line.ends_with("✖ 2 ▲ 3 firing (4 unacked) · ◌ 1 pending"),
        "{line}"
    );
    let x = line.chars().position(|c| c == '✖').unwrap() as u16;
    let terminal = render(&mut app, 80, 24);
    assert_eq!(terminal.backend().buffer()[(x, 1)].fg, Color::Red);
    // Only pending.
    let mut fleet = alert_fleet();
    let t = fleet.totals.as_mut().unwrap();
    (t.alerts_firing, t.alerts_critical, t.alerts_warning) = (0, 0, 0);
    t.alerts_unacknowledged = 0;
    let mut app = app_of(fleet);
    assert!(counter(&mut app).ends_with("◌ 1 pending"));
    // Disconnected: the last counts are not current.
    let mut app = app_of(alert_fleet());
    app.update(Action::connection(ConnState::Disconnected {
        retry_at_ms: NOW + 5_000,
        error: "connection refused".into(),
    }));
    let line = counter(&mut app);
    assert!(line.ends_with("alerts ?"), "{line}");
    assert!(line.contains("stale: data"), "{line}");
}

#[test]
fn detail_of_a_node_with_alerts() {
    let mut app = app_of(alert_fleet());
    open(&mut app, "db2-replica");
    app.update(Action::History {
        node: "db2-replica".into(),
        result: Ok(Box::default()),
    });
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn detail_of_a_node_in_maintenance() {
    let mut app = app_of(alert_fleet());
    open(&mut app, "spare");
    let terminal = render(&mut app, 80, 24);
    let line = row(&terminal, row_with(&terminal, "maint"));
    assert!(line.contains("in maintenance, 24m59s left"), "{line}");
    let alerts = row_with(&terminal, "Alerts 1, 1 firing");
    let line = row(&terminal, alerts + 1);
    assert!(line.contains("tcp:22 on spare"), "{line}");
    assert!(line.contains("[maint]"), "{line}");
}

#[test]
fn ack_prompt() {
    let mut app = alerts_app();
    select_alert(&mut app, "a3");
    app.update(Action::Acknowledge);
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn silence_prompt_asks_how_long() {
    let mut app = alerts_app();
    select_alert(&mut app, "a2");
    app.update(Action::Silence);
    insta::assert_snapshot!(render(&mut app, 80, 24).backend());
}

#[test]
fn a_refused_call_says_why_in_the_footer() {
    use ratatui::style::Color;
    let mut app = alerts_app();
    app.update(Action::OperatorDone(Err(
        "acknowledge alert a9 failed: collector at http://127.0.0.1:7411 answered NotFound: no alert \"a9\"".into(),
    )));
    let terminal = render(&mut app, 120, 24);
    let line = row(&terminal, 23);
    assert!(line.starts_with(" ✖ acknowledge alert a9 failed"), "{line}");
    assert!(
        line.contains("answered NotFound: no alert \"a9\""),
        "{line}"
    );
    assert_eq!(terminal.backend().buffer()[(1, 23)].fg, Color::Red);
    // Gone after a while: the keys are back.
    app.update(Action::Tick(NOW + 20_000));
    let terminal = render(&mut app, 120, 24);
    assert!(row(&terminal, 23).contains("A ack"));
}

// The detail charts: what each draws from the history, and what it says
// when there is nothing to draw.

/// The inside of the box whose title starts with `title`: (x, y, width,
/// height) without the border.
fn chart_box(terminal: &Terminal<TestBackend>, title: &str) -> (u16, u16, u16, u16) {
    let buffer = terminal.backend().buffer();
    let y = row_with(terminal, title);
    let text = row(terminal, y);
    let at = text.find(title).unwrap();
    let left = text[..at].chars().count() as u16 - 1;
    assert_eq!(buffer[(left, y)].symbol(), "┌", "{title} is a box title");
    let right = (left + 1..buffer.area.width)
        .find(|&x| buffer[(x, y)].symbol() == "┐")
        .unwrap();
    let bottom = (y + 1..buffer.area.height)
        .find(|&b| buffer[(left, b)].symbol() == "└")
        .unwrap();
    (left + 1, y + 1, right - left - 1, bottom - y - 1)
}

/// The non-blank braille cells inside the box titled `title`, with their
/// colour: the chart's drawn points.
fn dots(terminal: &Terminal<TestBackend>, title: &str) -> Vec<(u16, u16, ratatui::style::Color)> {
    let buffer = terminal.backend().buffer();
    let (x0, y0, w, h) = chart_box(terminal, title);
    let mut out = Vec::new();
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let cell = &buffer[(x, y)];
            let c = cell.symbol().chars().next().unwrap_or(' ');
            if ('\u{2801}'..='\u{28FF}').contains(&c) {
                out.push((x, y, cell.fg));
            }
        }
    }
    out
}

/// The text inside the box titled `title`.
fn box_text(terminal: &Terminal<TestBackend>, title: &str) -> String {
    let (x0, y0, w, h) = chart_box(terminal, title);
    let buffer = terminal.backend().buffer();
    (y0..y0 + h)
        .map(|y| {
            (x0..x0 + w)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn detail_with(name: &str, history: History) -> App {
    let mut app = app();
    open(&mut app, name);
    app.update(Action::History {
        node: name.into(),
        result: Ok(Box::new(history)),
    });
    app
}

#[test]
fn disk_requests_and_latency_charts_draw_the_history() {
    use ratatui::style::Color;
    let mut app = detail_with("web1", history());
    let terminal = render(&mut app, 200, 50);
    for title in [
        " CPU %",
        " Memory %",
        " Network",
        " Disk",
        " Requests",
        " Latency",
    ] {
        assert!(
            !dots(&terminal, title).is_empty(),
            "{title} draws its lines"
        );
    }
    let colours = |title| {
        let mut c: Vec<Color> = dots(&terminal, title).into_iter().map(|d| d.2).collect();
        c.sort_by_key(|c| format!("{c:?}"));
        c.dedup();
        c
    };
    // 2xx green, 3xx cyan, 4xx yellow, the 5xx burst red.
    assert_eq!(
        colours(" Requests"),
        [Color::Cyan, Color::Green, Color::Red, Color::Yellow]
    );
    // p50 cyan, p95 yellow, p99 magenta.
    assert_eq!(
        colours(" Latency"),
        [Color::Cyan, Color::Magenta, Color::Yellow]
    );
    assert_eq!(colours(" Disk"), [Color::Green, Color::Yellow]);
    // Units on the axes: the top labels fit the data (the 5xx burst of
    // 120 req/s under the 2xx peak, p99's 150 ms burst).
    let requests = box_text(&terminal, " Requests");
    assert!(requests.starts_with("462 req/s│"), "{requests}");
    let latency = box_text(&terminal, " Latency");
    assert!(latency.starts_with("165 ms│"), "{latency}");
    let disk = box_text(&terminal, " Disk");
    assert!(disk.starts_with("440 kB/s│"), "{disk}");
    assert!(row(&terminal, row_with(&terminal, " Disk")).contains("sum of 2 devices"));
}

#[test]
fn a_node_without_an_access_log_says_so_instead_of_zeros() {
    let mut app = detail_with("db3-replica", history_without_log());
    let terminal = render(&mut app, 200, 50);
    for title in [" Requests", " Latency"] {
        assert!(dots(&terminal, title).is_empty(), "{title}: no line");
        let text = box_text(&terminal, title);
        assert!(text.contains("no access log configured"), "{text}");
        assert!(!text.contains('0'), "no axis, no zeros: {text}");
    }
    assert!(!dots(&terminal, " CPU %").is_empty());
}

#[test]
fn a_log_without_request_times_says_so() {
    let untimed = History {
        latency: Latency::default(),
        ..history()
    };
    let mut app = detail_with("web1", untimed);
    let terminal = render(&mut app, 200, 50);
    assert!(!dots(&terminal, " Requests").is_empty());
    let text = box_text(&terminal, " Latency");
    assert!(text.contains("log format has no request time"), "{text}");
    assert!(dots(&terminal, " Latency").is_empty());
}

#[test]
fn the_time_a_node_was_down_is_a_gap_not_a_zero() {
    // CPU at 50 % for ten minutes, with nothing from -6m40s to -3m20s.
    let mut down = history();
    down.cpu = series(&|_| 0.5);
    down.cpu
        .retain(|&(ts, _)| !(NOW - 400_000..NOW - 200_000).contains(&ts));
    let mut app = detail_with("web1", down);
    let terminal = render(&mut app, 200, 50);
    let cpu = dots(&terminal, " CPU %");
    let mut columns: Vec<u16> = cpu.iter().map(|d| d.0).collect();
    columns.dedup();
    // The longest stretch of columns without a dot: about a third of the
    // plot, where the node sent nothing.
    let widest = columns.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    let (_, _, width, _) = chart_box(&terminal, " CPU %");
    assert!(widest > width / 5, "a gap of {widest} columns in {width}");
    // Every dot is on the 50 % line: nothing was drawn down to 0.
    let mut rows: Vec<u16> = cpu.iter().map(|d| d.1).collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), 1, "one flat line, rows {rows:?}");
}

#[test]
fn detail_charts_page_at_80x24() {
    let mut app = detail_with("web1", history());
    let terminal = render(&mut app, 80, 24);
    let hint = row(&terminal, row_with(&terminal, "charts hidden"));
    assert!(hint.contains("c: charts instead of the panels"), "{hint}");
    app.update(Action::NextCharts);
    insta::assert_snapshot!(
        "detail_charts_page_1_80x24",
        render(&mut app, 80, 24).backend()
    );
    app.update(Action::NextCharts);
    insta::assert_snapshot!(
        "detail_charts_page_2_80x24",
        render(&mut app, 80, 24).backend()
    );
    // After the last page, the panels again.
    app.update(Action::NextCharts);
    let terminal = render(&mut app, 80, 24);
    row_with(&terminal, "Checks 3, 1 failing");
    row_with(&terminal, "charts hidden");
}
