//! Metric names have one spelling, in `stacktop_proto::metrics`: the
//! dashboard's sources name them only through those constants, never as
//! string literals that could drift from what the agent sends (unit-test
//! modules aside).

use std::path::Path;

/// Every `pub const NAME: &str = "value";` in the proto crate's
/// `metrics.rs` that looks like a metric name (label keys and fact names
/// are short words, not metric names).
fn metric_names() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/src/metrics.rs");
    let source = std::fs::read_to_string(&path).unwrap();
    let names: Vec<String> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter(|line| line.contains(": &str = \""))
        .filter_map(|line| line.split('"').nth(1))
        .filter(|value| value.contains('_') && value.len() > 10)
        .map(str::to_string)
        .collect();
    assert!(
        names.iter().any(|n| n == "node_cpu_usage_ratio"),
        "metric constants not found in {}: {names:?}",
        path.display()
    );
    names
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may spell JSON keys that happen to look alike.
            if let Some(at) = text.find("#[cfg(test)]\nmod tests") {
                text.truncate(at);
            }
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn no_metric_name_is_spelled_out_in_the_dashboard() {
    let names = metric_names();
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = Vec::new();
    for (path, text) in &files {
        for name in &names {
            if text.contains(&format!("\"{name}\"")) {
                found.push(format!("{path}: \"{name}\""));
            }
        }
    }
    assert!(
        found.is_empty(),
        "use stacktop_proto::metrics:\n{}",
        found.join("\n")
    );
}
