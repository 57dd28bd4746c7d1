//! The crate's modules depend on each other in one direction only: no
//! `event` <-> `app` import cycle, and no cycle at all between the files of
//! `src/`. A cycle is how "the model" and "the screen" grow back into one
//! lump, so this reads the sources and fails on the first one.
//!
//! Each file under `src/` is a module (`ui/fleet.rs` is `ui::fleet`,
//! `ui/mod.rs` is `ui`). A dependency is any `crate::…` path (in a `use`
//! or inline, braces expanded) or `super::…` path, resolved to the longest
//! module it names; comments and the `#[cfg(test)]` module at the bottom
//! of a file are not read (tests may reach anywhere). `lib.rs`, the crate
//! root that declares every module, is not a node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir` as (module path, source), `prefix` first.
fn modules(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            modules(&path, &join(prefix, &stem), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = match stem.as_str() {
                "mod" => prefix.to_string(),
                "lib" | "main" if prefix.is_empty() => continue,
                _ => join(prefix, &stem),
            };
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}::{name}")
    }
}

/// The source without comments and without the unit-test module.
fn production_code(source: &str) -> String {
    let cut = source
        .find("#[cfg(test)]\nmod tests")
        .unwrap_or(source.len());
    source[..cut]
        .lines()
        .map(|line| match line.find("//") {
            // Not inside a string such as "http://": good enough for our
            // sources, where `//` in code only appears in URLs in strings.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths `code` names after `crate::` or `super::`, relative to
/// module `me`, with `{a, b::c}` groups expanded.
fn referenced_paths(me: &str, code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent(me))] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let preceded = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[at + anchor.len()..];
            if preceded {
                continue;
            }
            let mut out = Vec::new();
            expand(rest, base.clone(), &mut out);
            paths.extend(out);
        }
    }
    paths
}

fn parent(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module.split("::").map(str::to_string).collect();
    parts.pop();
    parts
}

/// Reads one path (`a::b::{c, d::e}`) at the start of `text` onto `base`.
fn expand(text: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&group[start..i], base.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&group[start..i], base.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() || ident == "self" {
        out.push(base);
        return;
    }
    let mut path = base;
    path.push(ident.clone());
    match text[ident.len()..].strip_prefix("::") {
        Some(more) => expand(more, path, out),
        None => out.push(path),
    }
}

/// The longest prefix of `path` that is a module of `known`.
fn resolve(path: &[String], known: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains(m))
}

/// The dependency graph of `files` (module path, source).
fn graph(files: &[(String, String)]) -> Graph {
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files
        .iter()
        .map(|(me, source)| {
            let deps = referenced_paths(me, &production_code(source))
                .iter()
                .filter_map(|p| resolve(p, &known))
                .filter(|dep| dep != me)
                .collect();
            (me.clone(), deps)
        })
        .collect()
}

/// A cycle in `graph` as the modules on it (first repeated last), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn tui_graph() -> Graph {
    let mut files = Vec::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut files,
    );
    graph(&files)
}

#[test]
fn app_and_event_do_not_import_each_other() {
    let g = tui_graph();
    let deps = |m: &str| g.get(m).unwrap_or_else(|| panic!("no module {m}: {g:#?}"));
    assert!(deps("app").contains("event"), "app reads events: {g:#?}");
    assert!(!deps("event").contains("app"), "event imports app: {g:#?}");
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = tui_graph();
    assert!(g.len() > 10, "too few modules found: {g:#?}");
    if let Some(cycle) = find_cycle(&g) {
        panic!("import cycle: {}\n{g:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_model_knows_nothing_of_the_screen() {
    let g = tui_graph();
    let model = &g["model"];
    for screen in ["app", "event", "ui", "client", "status"] {
        assert!(!model.contains(screen), "model imports {screen}: {model:?}");
    }
}

/// The checker itself: it must see a cycle where there is one, or the
/// tests above could never fail.
#[test]
fn the_checker_finds_cycles_through_groups_and_super() {
    let files = vec![
        (
            "app".to_string(),
            "use crate::{event::Event, model::{Model, NodeKey}};".to_string(),
        ),
        (
            "event".to_string(),
            "// use crate::ui;\nuse crate::app::ConnState;".to_string(),
        ),
        (
            "model".to_string(),
            "fn f() -> crate::Result<()> {}".to_string(),
        ),
        ("ui".to_string(), String::new()),
        ("ui::fleet".to_string(), "use super::style;".to_string()),
        (
            "ui::style".to_string(),
            "let x = \"http://a\"; #[cfg(test)]\nmod tests { use crate::ui::fleet; }".to_string(),
        ),
    ];
    let g = graph(&files);
    assert_eq!(
        g["app"],
        BTreeSet::from(["event".to_string(), "model".to_string()])
    );
    assert_eq!(g["event"], BTreeSet::from(["app".to_string()]));
    assert!(g["model"].is_empty(), "crate::Result is no module");
    assert_eq!(g["ui::fleet"], BTreeSet::from(["ui::style".to_string()]));
    assert!(g["ui::style"].is_empty(), "test modules are not read");
    let cycle = find_cycle(&g).expect("app -> event -> app");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"app".to_string()) && cycle.contains(&"event".to_string()));

    let acyclic: Graph = g
        .into_iter()
        .map(|(m, deps)| {
            let deps = if m == "event" { BTreeSet::new() } else { deps };
            (m, deps)
        })
        .collect();
    assert_eq!(find_cycle(&acyclic), None);
}
