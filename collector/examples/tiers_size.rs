//! What the coarse history takes on disk (BENCHMARKS.md section 3): opens a
//! stopped collector's `history.redb` and counts, per tier, the blocks,
//! the buckets in them and the bytes of their keys and values, against the
//! file's size.
//!
//! `cargo run --release -p stacktop-collector --example tiers_size -- DATA_DIR`

use stacktop_collector::tiers::{self, TIERS};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: tiers_size DATA_DIR (a stopped collector's --data-dir)");
    let stats = tiers::Tiers::open(std::path::Path::new(&dir))
        .and_then(|t| t.stats())
        .unwrap_or_else(|e| panic!("{e}"));
    let file =
        std::fs::metadata(std::path::Path::new(&dir).join(tiers::FILE)).map_or(0, |m| m.len());
    println!("{}: {file} bytes", tiers::FILE);
    for (tier, s) in TIERS.iter().zip(stats) {
        println!(
            "tier {}: {} blocks, {} buckets, {} bytes of keys and values: {:.2} bytes a bucket",
            tier.name,
            s.blocks,
            s.buckets,
            s.bytes,
            s.bytes as f64 / s.buckets.max(1) as f64
        );
    }
}
