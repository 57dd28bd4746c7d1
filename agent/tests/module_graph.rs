//! The modules of `agent/src/checks/` import one way: `mod.rs` (the
//! tagged spec, role defaults) -> `run.rs` (the runner) -> one module per
//! kind -> `common.rs` (the leaf). A cycle would tie a kind's probe to the
//! runner or the spec, which is what the one-file-per-kind layout is for.
//!
//! This reads the `.rs` files, extracts each module's `super::…` and
//! `crate::checks::…` paths (in `use` declarations and in code), and
//! checks that the graph has no cycle. `mod.rs` counts as depending on
//! every module it declares, so a child that reaches back into `mod.rs`
//! (even for one re-exported item) closes a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The module a file defines: its stem, `mod` for `mod.rs`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Node name of `checks/mod.rs`.
const PARENT: &str = "mod";

/// The source with line comments (and doc comments) removed, so a path
/// written in prose is not an import.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// Splits a file into its main part and its `#[cfg(test)] mod tests`
/// part, where `super::` means the file's own module.
fn split_tests(text: &str) -> (&str, &str) {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            return text.split_at(offset);
        }
        offset += line.len();
    }
    (text, "")
}

/// The first identifier (or `*`) of each path after `prefix`: one for
/// `prefix::a::b`, several for `prefix::{a::X, b, Y}`.
fn heads_after(text: &str, prefix: &str) -> Vec<String> {
    let mut heads = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        // Only where a path starts: `crate::checks::x` must not match
        // inside `other_crate::checks::x`, nor `super::` the second half
        // of `super::super::`.
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let after = &text[at + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if let Some(head) = head_of(&inner[start..i]) {
                            heads.push(head);
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else if let Some(head) = head_of(after) {
            heads.push(head);
        }
    }
    heads
}

/// The leading identifier (or `*`) of a path.
fn head_of(path: &str) -> Option<String> {
    let path = path.trim_start();
    if path.starts_with('*') {
        return Some("*".into());
    }
    let head: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!head.is_empty()).then_some(head)
}

/// The modules of the checks directory one file depends on. `siblings`
/// are the module names of the directory (without `mod`).
fn deps(module: &str, text: &str, siblings: &BTreeSet<String>) -> BTreeSet<String> {
    let text = strip_comments(text);
    let mut heads = heads_after(&text, "crate::checks::");
    if module == PARENT {
        // The parent owns its children (`pub mod x;`): it depends on all.
        for line in text.lines() {
            let line = line.trim();
            let decl = line.strip_prefix("pub ").unwrap_or(line);
            if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                heads.push(name.trim().to_string());
            }
        }
    } else {
        let (main, tests) = split_tests(&text);
        // In the file, `super::` is the checks module; `super::super::`
        // leaves it (the crate root).
        heads.extend(
            heads_after(main, "super::")
                .into_iter()
                .filter(|h| h != "super"),
        );
        // In its `mod tests`, `super::` is the file itself.
        heads.extend(heads_after(tests, "super::super::"));
    }
    heads
        .into_iter()
        .map(|head| {
            if siblings.contains(&head) {
                head
            } else {
                // `*`, `self` or an item of mod.rs (its own or re-exported).
                PARENT.to_string()
            }
        })
        .filter(|dep| dep != module)
        .collect()
}

/// The dependency graph of a set of (module, source) files.
fn graph(files: &[(String, String)]) -> Graph {
    let siblings: BTreeSet<String> = files
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| name != PARENT)
        .collect();
    files
        .iter()
        .map(|(name, text)| (name.clone(), deps(name, text, &siblings)))
        .collect()
}

/// A cycle of `graph`, as the modules along it (first repeated last).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

fn checks_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/checks");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_checks_module_graph_is_acyclic() {
    let graph = graph(&checks_sources());
    // The extraction sees the imports it should (so an empty graph cannot
    // pass for an acyclic one).
    for (from, to) in [
        (PARENT, "run"),
        ("run", "http"),
        ("http", "common"),
        ("haproxy", "http"),
        ("http", "tls"),
        ("exposure", "process"),
    ] {
        assert!(
            graph[from].contains(to),
            "{from} -> {to} not found: {graph:?}"
        );
    }
    assert!(graph["common"].is_empty(), "common is the leaf: {graph:?}");
    // No kind reaches back to the spec or the runner.
    for (module, deps) in &graph {
        if module != PARENT && module != "run" {
            assert!(
                !deps.contains(PARENT) && !deps.contains("run"),
                "{module} imports {deps:?}"
            );
        }
    }
    assert_eq!(find_cycle(&graph), None, "{graph:?}");
}

#[test]
fn a_cycle_is_found() {
    let file = |name: &str, text: &str| (name.to_string(), text.to_string());
    let parent = file(PARENT, "pub mod a;\npub mod b;\npub mod leaf;\n");
    let leaf = file("leaf", "pub struct Outcome;\n");
    // Two siblings that import each other, one through a group.
    let a = file(
        "a",
        "use super::leaf::Outcome;\nuse super::{b::Thing, leaf};\n",
    );
    let b = file("b", "use super::a;\n// use super::leaf (prose)\n");
    let cycle = find_cycle(&graph(&[parent.clone(), leaf.clone(), a, b])).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"a".into()) && cycle.contains(&"b".into()));

    // A kind that takes an item from mod.rs closes a cycle through it, in
    // a `use` or in code.
    for text in [
        "use super::Outcome;\n",
        "fn f() -> super::Outcome { todo!() }\n",
        "use crate::checks::{leaf, Outcome};\n",
        "use super::*;\n",
    ] {
        let a = file("a", text);
        let b = file("b", "use super::leaf::Outcome;\n");
        let cycle = find_cycle(&graph(&[parent.clone(), leaf.clone(), a, b]));
        assert!(cycle.is_some_and(|c| c.contains(&PARENT.into())), "{text}");
    }

    // What is not a dependency: prose, the tests' own `super::*`, leaving
    // the checks module.
    let a = file(
        "a",
        "//! See [`super::b`].\nuse super::super::config;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    let b = file("b", "use super::leaf::Outcome;\n");
    assert_eq!(find_cycle(&graph(&[parent, leaf, a, b])), None);
}
