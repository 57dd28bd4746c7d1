//! What one refresh of the fleet view costs: a store of N nodes with 50
//! series each (the bench subcommand's simulated agents), a quarter of
//! them changed since the last refresh (one 250 ms build at 1 s intervals).
//!
//! `cargo bench -p stacktop-collector --bench view -- --warm-up-time 1 --measurement-time 5`

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stacktop_collector::bench::agent;
use stacktop_collector::fleet::Views;
use stacktop_collector::store::{Identity, NodeHandle, Reported, ResolvedPoint, SeriesKey, Store};
use stacktop_proto::v1::{CheckResult, Label};
use stacktop_proto::{Health, now_unix_ms};
use tokio_util::sync::CancellationToken;

struct Fleet {
    store: Arc<Store>,
    views: Views,
    handles: Vec<NodeHandle>,
    keys: Vec<Vec<SeriesKey>>,
    seq: std::cell::Cell<u64>,
}

fn fleet(nodes: usize) -> Fleet {
    let store = Arc::new(Store::new(Duration::from_secs(900)));
    let views = Views::new(store.clone());
    let now = now_unix_ms();
    let mut handles = Vec::new();
    let mut keys = Vec::new();
    for i in 0..nodes {
        let identity = Identity {
            name: format!("node{i:05}"),
            instance_id: format!("i{i}"),
            roles: agent::roles(i),
            interval_ms: 1_000,
            ..Identity::default()
        };
        handles.push(
            store
                .attach(identity, CancellationToken::new(), now)
                .unwrap()
                .handle,
        );
        keys.push(
            agent::series(i, 50)
                .into_iter()
                .map(|(name, labels)| {
                    let labels: Vec<Label> =
                        labels.iter().map(|(k, v)| Label::new(*k, v)).collect();
                    SeriesKey::new(name, &labels)
                })
                .collect(),
        );
    }
    let f = Fleet {
        store,
        views,
        handles,
        keys,
        seq: Default::default(),
    };
    for _ in 0..30 {
        f.batch_all(1);
    }
    f.views.refresh(now_unix_ms());
    f
}

impl Fleet {
    /// One batch for every `step`-th node.
    fn batch_all(&self, step: usize) {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let now = now_unix_ms();
        let offset = seq as usize % step;
        for (i, h) in self.handles.iter().enumerate().skip(offset).step_by(step) {
            let points: Vec<ResolvedPoint<'_>> = self.keys[i]
                .iter()
                .map(|key| ResolvedPoint {
                    key,
                    timestamp_ms: now,
                    value: (seq % 100) as f64 / 100.0,
                })
                .collect();
            let checks = if seq.is_multiple_of(5) {
                vec![CheckResult {
                    name: "tcp:db".into(),
                    kind: "tcp".into(),
                    status: Health::Ok as i32,
                    interval_ms: 5_000,
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let reported = Reported {
                checks,
                ..Default::default()
            };
            self.store.apply(h, seq, &points, reported, now).unwrap();
        }
    }
}

fn refresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("view_refresh_quarter_changed");
    group.sample_size(20);
    for nodes in [1_000, 10_000] {
        let f = fleet(nodes);
        group.bench_with_input(BenchmarkId::from_parameter(nodes), &nodes, |b, _| {
            b.iter_batched(
                || f.batch_all(4),
                |()| f.views.refresh(now_unix_ms()),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, refresh);
criterion_main!(benches);
