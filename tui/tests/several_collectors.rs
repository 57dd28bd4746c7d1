//! The dashboard watching two collectors as one fleet
//! (`stacktop --collector A --collector B`).
//!
//! The snapshot tests draw a fixture fleet into a `TestBackend`: both
//! collectors connected, then A down while B stays: the header has each
//! collector's state, the site is `?` while a node only A reported is
//! unknown, that node's row is `—`, the others stay live from B, and the
//! detail lists which collectors report the node and when each last heard
//! it.
//!
//! The end-to-end test runs it for real: two `stacktop-collector`
//! processes (127.0.0.1:0, a temporary data directory each), agents
//! (web1 and web2 report to both, solo to A only), and the `stacktop`
//! binary in a tmux session of its own (`tests/support`). Both collectors
//! show connected and every node is listed once; then A is killed (by its
//! pid): its header state goes to disconnected, web1 and web2 keep live
//! values from B, solo shows `—`, and web1's detail names both collectors.
//! Every process is killed by its guard when the test ends, pass or fail.
//! Without tmux the test skips with a printed reason, unless
//! `STACKTOP_LAB=require`.

mod support;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::app::{Action, App};
use stacktop::model::{ConnState, SourceId};
use stacktop::ui;
use stacktop_proto::v1::{
    Alert, AlertState, CheckResult, FleetSnapshot, FleetTotals, FleetUpdate, NodeState,
    NodeSummary, Severity, TierState, fleet_update,
};
use stacktop_proto::{Health, Role};

use support::{Tmux, binaries, has_tmux, skip_without, start_agent_to, start_collector};

const NOW: i64 = 1_767_225_600_000;
const A: SourceId = SourceId(0);
const B: SourceId = SourceId(1);

/// `name` as collector-reported, last heard `ago_ms` before [`NOW`].
fn node(name: &str, role: Role, cpu: f64, ago_ms: i64) -> NodeState {
    NodeState {
        name: name.into(),
        roles: vec![role as i32],
        health: Health::Ok as i32,
        connected: true,
        interval_ms: 1_000,
        last_seen_ms: NOW - ago_ms,
        agent_version: "0.1.0".into(),
        summary: Some(NodeSummary {
            cpu_usage_ratio: Some(cpu),
            memory_used_ratio: Some(0.5),
            load1: Some(0.4),
            qps: Some(100.0),
            timestamp_ms: NOW - ago_ms,
            qps_timestamp_ms: NOW - ago_ms,
            ..Default::default()
        }),
        checks: vec![CheckResult {
            name: "tcp".into(),
            status: Health::Ok as i32,
            timestamp_ms: NOW - ago_ms,
            ..Default::default()
        }],
        cpu_recent: vec![cpu; 10],
        ..Default::default()
    }
}

fn snapshot(nodes: Vec<NodeState>, alerts: Vec<Alert>) -> Box<FleetUpdate> {
    let tier = |role: Role, total| TierState {
        role: role as i32,
        healthy: total,
        total,
        health: Health::Ok as i32,
        ..Default::default()
    };
    Box::new(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
            nodes,
            totals: Some(FleetTotals {
                site: Health::Ok as i32,
                nodes_total: 3,
                timestamp_ms: NOW,
                tiers: vec![tier(Role::Web, 2), tier(Role::App, 1)],
                ..Default::default()
            }),
            alerts,
            generation: 1,
            ..Default::default()
        })),
    })
}

/// A (lists web1, web2, solo and an alert on solo) and B (web1, web2: its
/// web1 heard later), both connected, on the nodes view.
fn two_collectors() -> App {
    let mut app = App::watching(
        vec!["http://10.0.0.5:7411".into(), "http://10.0.0.6:7411".into()],
        NOW,
    );
    for source in [A, B] {
        app.update(Action::Connection {
            source,
            state: ConnState::Connected,
        });
    }
    let alert = Alert {
        id: "c0ffee".into(),
        rule: "high-cpu".into(),
        node: "solo".into(),
        severity: Severity::Warning as i32,
        state: AlertState::Firing as i32,
        since_ms: NOW - 60_000,
        summary: "solo CPU 97% for 1m".into(),
        ..Default::default()
    };
    app.update(Action::Update {
        source: A,
        update: snapshot(
            vec![
                node("solo", Role::App, 0.97, 1_000),
                node("web1", Role::Web, 0.11, 9_000),
                node("web2", Role::Web, 0.22, 1_000),
            ],
            vec![alert],
        ),
    });
    app.update(Action::Update {
        source: B,
        update: snapshot(
            vec![
                node("web1", Role::Web, 0.33, 1_000),
                node("web2", Role::Web, 0.44, 1_200),
            ],
            vec![],
        ),
    });
    app.update(Action::View(2));
    app
}

fn a_down(app: &mut App) {
    app.update(Action::Connection {
        source: A,
        state: ConnState::Disconnected {
            retry_at_ms: NOW + 3_000,
            error: "cannot reach collector at http://10.0.0.5:7411: connection refused".into(),
        },
    });
}

fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    app.update(Action::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    terminal
}

fn lines(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect()
        })
        .collect()
}

fn row<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("no row for {name}: {lines:#?}"))
}

#[test]
fn both_connected_each_node_once_from_the_newest_report() {
    let mut app = two_collectors();
    let t = render(&mut app, 80, 24);
    let lines = lines(&t);
    assert!(lines[0].contains("site OK"), "{}", lines[0]);
    assert!(lines[1].contains("A ● 10.0.0.5:7411  B ● 10.0.0.6:7411"));
    for name in ["solo", "web1", "web2"] {
        let rows = lines
            .iter()
            .filter(|l| l.split_whitespace().any(|w| w == name))
            .count();
        assert_eq!(rows, 1, "{name} once: {lines:#?}");
    }
    // web1: B heard it 8 s after A did; web2: within a second, A's.
    assert!(row(&lines, "web1").contains("33.0%"));
    assert!(row(&lines, "web2").contains("22.0%"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn a_down_loses_nothing_live_and_shows_what_only_it_knew_as_unknown() {
    let mut app = two_collectors();
    a_down(&mut app);
    let t = render(&mut app, 80, 24);
    let lines = lines(&t);
    // Never OK on what nobody sees: solo is known only to A.
    assert!(
        lines[0].contains("site ?") && lines[0].contains("partial"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("2 up · 0 down · 1 ? · 3 total"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("A ✖ 10.0.0.5:7411 retry 3s  B ● 10.0.0.6:7411"));
    assert!(
        lines[1].contains("alerts ? (A not connected)"),
        "A's alerts are not known now: {}",
        lines[1]
    );
    let solo = row(&lines, "solo");
    assert!(solo.contains("? unknown") && !solo.contains('%'), "{solo}");
    assert!(solo.contains('—'), "{solo}");
    // web2 was A's report; B's is shown now, live.
    assert!(row(&lines, "web1").contains("33.0%"));
    assert!(row(&lines, "web2").contains("44.0%"));
    assert!(row(&lines, "web2").contains("● ok"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn the_detail_names_every_collector_of_the_node_and_when_it_heard_it() {
    let mut app = two_collectors();
    a_down(&mut app);
    app.update(Action::End); // web2
    app.update(Action::Open);
    let t = render(&mut app, 80, 24);
    let text = lines(&t).join("\n");
    assert!(text.contains("collectors A ✖ heard 1s ago"), "{text}");
    assert!(text.contains("B ● heard 1s ago (shown)"), "{text}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn the_alerts_view_tags_each_alert_with_its_collector() {
    let mut app = two_collectors();
    app.update(Action::View(4));
    let t = render(&mut app, 80, 24);
    let lines = lines(&t);
    let alert = row(&lines, "solo");
    assert!(alert.starts_with("› A "), "{alert}");
    insta::assert_snapshot!(t.backend());
}

/// The first line of `screen` that has `node` as a word.
fn row_of<'a>(screen: &'a str, node: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == node))
}

/// How many lines of `screen` have `node` as a word.
fn rows_of(screen: &str, node: &str) -> usize {
    screen
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == node))
        .count()
}

/// Whether `node`'s row on the nodes view shows a live CPU value.
fn live(screen: &str, node: &str) -> bool {
    row_of(screen, node).is_some_and(|r| r.contains('%') && r.contains("● ok"))
}

#[test]
fn one_collector_killed_the_other_keeps_its_nodes_live() {
    if !has_tmux() && skip_without("tmux") {
        return;
    }
    let bin = binaries();
    let dir = tempfile::tempdir().unwrap();
    let [dir_a, dir_b, agents] = ["a", "b", "agents"].map(|d| {
        let path = dir.path().join(d);
        std::fs::create_dir_all(&path).unwrap();
        path
    });
    let (collector_a, url_a) = start_collector(&bin, &dir_a);
    let (_collector_b, url_b) = start_collector(&bin, &dir_b);
    let both = [url_a.as_str(), url_b.as_str()];
    let _web1 = start_agent_to(&bin, &agents, &both, "web1", "web");
    let _web2 = start_agent_to(&bin, &agents, &both, "web2", "web");
    let _solo = start_agent_to(&bin, &agents, &[&url_a], "solo", "app");
    let log = dir.path().join("stacktop.log");
    let command = [
        env!("CARGO_BIN_EXE_stacktop"),
        "--collector",
        url_a.as_str(),
        "--collector",
        url_b.as_str(),
        "--log-file",
        log.to_str().unwrap(),
    ];
    let tmux = Tmux::start(&dir.path().join("tmux.sock"), 120, 30, &command);
    tmux.press("2");
    let screen = tmux.wait_for("both collectors connected, three live nodes", |s| {
        s.contains("A ●")
            && s.contains("B ●")
            && ["web1", "web2", "solo"].iter().all(|n| live(s, n))
    });
    for name in ["web1", "web2", "solo"] {
        assert_eq!(rows_of(&screen, name), 1, "{name} listed once:\n{screen}");
    }

    // Kill A (its guard sends SIGKILL to its pid and reaps it).
    drop(collector_a);
    let screen = tmux.wait_for("A disconnected, solo unknown, the web nodes live", |s| {
        s.contains("A ✖")
            && s.contains("B ●")
            && row_of(s, "solo").is_some_and(|r| r.contains('—') && !r.contains('%'))
            && live(s, "web1")
            && live(s, "web2")
    });
    assert!(!screen.contains("site OK"), "{screen}");
    assert!(screen.contains("site ?"), "{screen}");
    assert!(
        row_of(&screen, "solo").is_some_and(|r| r.contains("? unknown")),
        "{screen}"
    );
    // Still live a moment later: the values come from B now.
    let screen = tmux.wait_for("the web nodes still live from B", |s| {
        live(s, "web1") && live(s, "web2") && s.contains("A ✖")
    });
    assert_eq!(rows_of(&screen, "web1"), 1, "{screen}");

    // web1's detail says who reports it: B, shown, and A, not connected.
    tmux.press("/");
    for key in ["w", "e", "b", "1"] {
        tmux.press(key);
    }
    tmux.press("Enter");
    tmux.press("Enter");
    tmux.wait_for("web1's detail with both collectors", |s| {
        s.contains("collectors") && s.contains("collectors A ✖ heard") && s.contains("(shown)")
    });
    tmux.press("q");
}
