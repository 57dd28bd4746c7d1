//! Metric names and label keys are spelt once, in `stacktop_proto::metrics`:
//! no `.rs` file of `agent/src` writes one as a string literal outside its
//! tests. A second spelling is how the agent and the collector drift apart
//! (`http_request_per_second` would be a series nobody reads).
//!
//! The names are read from the proto crate's source (`pub const X: &str =
//! "…";`), so a metric added there is covered here without a change.

use std::path::{Path, PathBuf};

/// Literals that equal a metric name but are something else, with why.
const NOT_METRICS: &[(&str, &str, &str)] = &[(
    "checks/haproxy.rs",
    "check_status",
    "a column of HAProxy's stats CSV",
)];

/// (metric names, label keys) defined in proto/src/metrics.rs.
fn proto_names() -> (Vec<String>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/src/metrics.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut names, mut labels) = (Vec::new(), Vec::new());
    let mut in_labels = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("pub mod label") {
            in_labels = true;
        } else if in_labels && line.starts_with('}') {
            in_labels = false;
        }
        let Some(value) = trimmed
            .strip_prefix("pub const ")
            .and_then(|rest| rest.split_once(": &str = \""))
            .and_then(|(_, value)| value.strip_suffix("\";"))
        else {
            continue;
        };
        if in_labels {
            labels.push(value.to_string());
        } else if value.contains('_') {
            names.push(value.to_string());
        }
    }
    (names, labels)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file before its `#[cfg(test)] mod tests`, without line
/// comments (docs may name metrics).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        // A comment line stays as an empty one, so line numbers hold.
        if !line.trim_start().starts_with("//") {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `(line, literal)` of every string literal equal to one of `names`.
/// With `as_label_key`, only literals in a `("key", value)` pair count:
/// label keys are common words.
fn literals(code: &str, names: &[String], as_label_key: bool) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        for name in names {
            let quoted = format!("\"{name}\"");
            let hit = if as_label_key {
                line.contains(&format!("({quoted},"))
            } else {
                line.contains(&quoted)
            };
            if hit {
                found.push((number + 1, name.clone()));
            }
        }
    }
    found
}

#[test]
fn metric_names_and_label_keys_come_from_the_proto_crate() {
    let (names, labels) = proto_names();
    // The parse of proto/src/metrics.rs found what it should.
    for name in [
        "node_cpu_usage_ratio",
        "http_requests_per_second",
        "mysql_up",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    assert!(labels.iter().any(|l| l == "source"), "{labels:?}");

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for path in sources(&src) {
        let relative = path.strip_prefix(&src).unwrap().display().to_string();
        let code = code(&std::fs::read_to_string(&path).unwrap());
        let found = literals(&code, &names, false)
            .into_iter()
            .chain(literals(&code, &labels, true));
        for (line, literal) in found {
            let excused = NOT_METRICS
                .iter()
                .any(|(file, name, _)| *file == relative && *name == literal);
            if !excused {
                offences.push(format!("src/{relative}:{line}: \"{literal}\""));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "use stacktop_proto::metrics' constants instead of:\n{}",
        offences.join("\n")
    );
}

#[test]
fn a_literal_metric_name_is_found() {
    let names = vec!["node_load1".to_string()];
    let labels = vec!["device".to_string()];
    let text = "//! Reports node_load1.\nfn f() {\n    intern(\"node_load1\", &[(\"device\", d)]);\n    let _ = \"device\";\n}\n#[cfg(test)]\nmod tests {\n    const X: &str = \"node_load1\";\n}\n";
    let code = code(text);
    assert_eq!(
        literals(&code, &names, false),
        [(3, "node_load1".to_string())]
    );
    assert_eq!(literals(&code, &labels, true), [(3, "device".to_string())]);
}
