//! The time to draw one frame of the topology and the nodes views for a
//! 1,000-node fleet into a `TestBackend` (issue #12: under 2 ms), at
//! 200x50 and at 80x24. The fleet is a realistic mix: 20 LBs with backend
//! servers, 600 web+app servers, 300 app servers and 80 DB nodes (one
//! primary), some down, checks on every node, 120 CPU samples each.
//!
//! `cargo bench -p stacktop --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use stacktop::app::{Action, App};
use stacktop::model::ConnState;
use stacktop::ui;
use stacktop_proto::v1::{
    BackendServer, CheckResult, FleetSnapshot, FleetTotals, FleetUpdate, Label, NodeState,
    NodeSummary, TierState, fleet_update,
};
use stacktop_proto::{Health, Role};

const NOW: i64 = 1_767_225_600_000;

fn node(i: usize) -> NodeState {
    let (name, roles): (String, Vec<Role>) = match i {
        0..20 => (format!("lb{i:02}"), vec![Role::Lb]),
        20..620 => (format!("web{i:04}"), vec![Role::Web, Role::App]),
        620..920 => (format!("app{i:04}"), vec![Role::App]),
        _ => (format!("db{i:04}"), vec![Role::Db]),
    };
    let health = match i % 50 {
        0 => Health::Down,
        7 => Health::Crit,
        13 => Health::Warn,
        _ => Health::Ok,
    };
    let mut facts = Vec::new();
    if roles == [Role::Db] {
        let role = if i == 920 { "primary" } else { "replica" };
        facts.push(Label::new("db_role", role));
    }
    NodeState {
        name,
        roles: roles.iter().map(|r| *r as i32).collect(),
        labels: vec![Label::new(
            "dc",
            if i.is_multiple_of(2) { "ams1" } else { "fra1" },
        )],
        health: health as i32,
        connected: health != Health::Down,
        last_seen_ms: NOW - 1_000,
        summary: (health != Health::Down).then(|| NodeSummary {
            cpu_usage_ratio: Some((i % 97) as f64 / 100.0),
            memory_used_ratio: Some((i % 89) as f64 / 100.0),
            load1: Some((i % 7) as f64),
            network_receive_bytes_per_second: Some(i as f64 * 1e3),
            network_transmit_bytes_per_second: Some(i as f64 * 3e3),
            qps: Some((i % 400) as f64),
            replication_lag_seconds: (i > 920).then_some((i % 40) as f64),
            ..Default::default()
        }),
        cpu_recent: (0..120).map(|k| ((k + i) % 10) as f64 / 10.0).collect(),
        checks: vec![
            CheckResult {
                name: "tcp".into(),
                status: Health::Ok as i32,
                ..Default::default()
            },
            CheckResult {
                name: "disk:/".into(),
                status: if health == Health::Warn {
                    Health::Warn
                } else {
                    Health::Ok
                } as i32,
                ..Default::default()
            },
        ],
        facts,
        backends: if i < 20 {
            (0..8)
                .map(|k| BackendServer {
                    backend: "web".into(),
                    server: format!("web{:04}", 20 + k),
                    status: "UP".into(),
                    ..Default::default()
                })
                .collect()
        } else {
            vec![]
        },
        backends_up: (i < 20).then_some(8),
        ..Default::default()
    }
}

fn app() -> App {
    let tier = |role: Role, total: u32| TierState {
        role: role as i32,
        healthy: total - total / 50,
        total,
        health: Health::Warn as i32,
        ..Default::default()
    };
    let snapshot = FleetSnapshot {
        nodes: (0..1_000).map(node).collect(),
        totals: Some(FleetTotals {
            tiers: vec![
                tier(Role::Lb, 20),
                tier(Role::Web, 600),
                tier(Role::App, 900),
                tier(Role::Db, 80),
            ],
            site: Health::Warn as i32,
            timestamp_ms: NOW,
            nodes_total: 1_000,
            ..Default::default()
        }),
        generation: 1,
        ..Default::default()
    };
    let mut app = App::new("http://127.0.0.1:7411", NOW);
    app.update(Action::connection(ConnState::Connected));
    app.update(Action::update(FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(snapshot)),
    }));
    app
}

fn frames(c: &mut Criterion) {
    for (width, height) in [(200, 50), (80, 24)] {
        for (view, n) in [("topology", 1), ("nodes", 2)] {
            let mut app = app();
            app.update(Action::View(n));
            app.update(Action::Resize { width, height });
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            c.bench_function(&format!("{view} 1000 nodes {width}x{height}"), |b| {
                b.iter(|| {
                    terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
                });
            });
        }
    }
}

criterion_group!(benches, frames);
criterion_main!(benches);
