//! History memory, instrumented (BENCHMARKS.md table 3): fills the
//! collector's history ring buffers ([`stacktop_collector::series::Series`],
//! what the store keeps per series) the way ingest does, one point per
//! series per second for NODES x SERIES series over SECONDS, pruned to the
//! same window, and reports the process's resident memory growth per
//! stored point and per node-hour.
//!
//! It measures the history alone: the collector process also holds the
//! ingest journal's cache, the evaluated fleet and per-stream buffers,
//! which `bench/history-memory.sh` measures with them, through RSS.
//!
//! `cargo run --release -p stacktop-collector --example history_memory -- 1000 50 900`
//! (nodes, series per node, seconds of history; 900 s is the default 15 m).

use std::time::Instant;

use stacktop_collector::series::Series;

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: NODES SERIES SECONDS"))
        .collect();
    let (nodes, per_node, seconds) = match args[..] {
        [n, s, t] => (n, s, t),
        [] => (1_000, 50, 900),
        _ => panic!("usage: history_memory [NODES SERIES SECONDS]"),
    };
    let window_ms = seconds as i64 * 1_000;
    // The store's bound: four points per second over the window, at least 1,000.
    let max_points = (seconds * 4).max(1_000);
    let before = rss_kib();
    let mut all: Vec<Series> = (0..nodes * per_node).map(|_| Series::new()).collect();
    let empty = rss_kib();
    let start = Instant::now();
    let t0 = 1_795_608_000_000i64;
    // Second by second, every series gets its point: the order ingest sees,
    // so the buffers grow (and the allocator fragments) as in a collector.
    for s in 0..seconds {
        let ts = t0 + s as i64 * 1_000;
        for (i, series) in all.iter_mut().enumerate() {
            let value = ((s + i) % 97) as f64 * 0.5;
            series.push(ts, value, window_ms, max_points);
        }
    }
    let full = rss_kib();
    let points = (nodes * per_node * seconds) as f64;
    let per_point = (full - empty) as f64 * 1024.0 / points;
    println!(
        "{nodes} nodes x {per_node} series x {seconds} s = {points:.0} points in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    println!(
        "RSS: {:.1} MiB at start, {:.1} MiB with empty series, {:.1} MiB full",
        before as f64 / 1024.0,
        empty as f64 / 1024.0,
        full as f64 / 1024.0
    );
    println!(
        "per stored point: {per_point:.2} bytes (the ring stores 8); per series (empty): {:.0} bytes",
        (empty - before) as f64 * 1024.0 / (nodes * per_node) as f64
    );
    println!(
        "per node-hour at 1 s with {per_node} series: {:.2} MiB ({} points)",
        per_point * (per_node * 3_600) as f64 / 1_048_576.0,
        per_node * 3_600
    );
    // Keep the buffers alive until measured.
    std::hint::black_box(&mut all);
}
