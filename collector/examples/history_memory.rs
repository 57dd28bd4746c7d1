//! History memory, instrumented (BENCHMARKS.md table 3): fills the
//! collector's compressed series ([`stacktop_collector::series::Series`],
//! what the store keeps per series) the way ingest does, one point per
//! series per second for NODES x SERIES series over SECONDS, pruned to the
//! same window, and reports the bytes the series hold per stored point
//! (counted, and as the process's resident memory growth) and per
//! node-hour.
//!
//! Compression depends on the values, so they are shaped like an agent's
//! (`shape`): CPU ratios with noise at full precision, memory in 4 KiB
//! pages drifting, byte rates as noisy integers, load averages, constants
//! (totals, check statuses), small request rates and latency quantiles;
//! timestamps sit on the second (agents stamp samples on their tick grid),
//! with an occasional sample off it.
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

/// xorshift64: reproducible noise without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Uniform in [0, 1).
fn unit(rng: &mut u64) -> f64 {
    (next(rng) >> 11) as f64 / (1u64 << 53) as f64
}

/// Series `i`'s next value, shaped like one of an agent's series (see the
/// module docs), and whether its timestamp is sampled (jittered) rather
/// than a log second.
fn shape(i: usize, last: &mut f64, rng: &mut u64) -> (bool, f64) {
    match i % 10 {
        // CPU ratios: a slow walk plus noise, every digit significant.
        0 | 1 => {
            *last = (*last + (unit(rng) - 0.5) * 0.02).clamp(0.0, 0.9);
            (true, *last + unit(rng) * 0.05)
        }
        // Memory used: whole pages, drifting.
        2 => {
            *last += ((next(rng) % 9) as f64 - 4.0) * 4_096.0;
            (true, 2.0e9 + *last)
        }
        // Network and disk bytes per second: noisy integers.
        3 | 4 => (true, (unit(rng) * 80_000.0).round()),
        // Load average: two decimals.
        5 => {
            *last = (*last + (unit(rng) - 0.5) * 0.1).clamp(0.0, 8.0);
            (true, (*last * 100.0).round() / 100.0)
        }
        // Totals, check statuses, up flags: constant.
        6 | 7 => (true, if i % 20 < 10 { 8.3e9 } else { 0.0 }),
        // Requests per second from a log: small integers on the second.
        8 => (false, (next(rng) % 20) as f64),
        // Latency quantiles from a log: ms precision, on the second.
        _ => (false, (next(rng) % 300) as f64 / 1_000.0),
    }
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
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut state: Vec<f64> = vec![0.0; all.len()];
    for s in 0..seconds {
        let second = t0 + s as i64 * 1_000;
        for (i, series) in all.iter_mut().enumerate() {
            let (jittered, value) = shape(i, &mut state[i], &mut rng);
            // The agent stamps samples on its tick grid (see its
            // `sample::Grid`); one in 500 is off it (a stall, a clock step).
            let ts = if jittered && next(&mut rng).is_multiple_of(500) {
                second + 3 + (next(&mut rng) % 30) as i64
            } else {
                second
            };
            series.push(ts, value, window_ms, max_points);
        }
    }
    let full = rss_kib();
    let held: usize = all.iter().map(Series::len).sum();
    let bytes: usize = all.iter().map(Series::heap_bytes).sum();
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
        "counted: {held} points held in {:.1} MiB of chunks: {:.2} bytes per point \
         (uncompressed: 8)",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / held as f64
    );
    println!(
        "per stored point (RSS): {per_point:.2} bytes; per series (empty): {:.0} bytes",
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
