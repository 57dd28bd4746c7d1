//! How a stored series is named and labelled outside stacktop: the one
//! label set that `/metrics` and remote_write both give a node's series,
//! so a query written against one finds the same series in the other.
//!
//! A series `name{labels}` of node `n` with roles `web` and `app` becomes
//! `name{node="n", role="web,app", labels...}`:
//!
//! - `node` is the node's name; `role` its roles in request-path order
//!   (lb, web, app, db) joined by commas, left out when it has none;
//! - names and label keys are made valid for Prometheus (`[a-zA-Z_:]
//!   [a-zA-Z0-9_:]*` for names, no `:` in label keys): every other
//!   character becomes `_` (agents name their series so already; this
//!   guards against a hand-written agent);
//! - a series label that would clash with `node`, `role` or a reserved
//!   `__` key is renamed `exported_<key>`, as Prometheus does with
//!   `honor_labels: false`; a label that still clashes (two keys that
//!   sanitize alike) is dropped, since a series cannot carry a key twice.

use std::borrow::Cow;

use stacktop_proto::Role;

use crate::store::SeriesKey;

/// The label naming the node a series comes from.
pub const NODE: &str = "node";
/// The label listing the node's roles.
pub const ROLE: &str = "role";
/// The label of the metric name, in remote_write.
pub const METRIC_NAME: &str = "__name__";

/// Names the collector exports itself start with; `/metrics` leaves out
/// agent series with this prefix so that they can never clash with them.
pub const RESERVED_PREFIX: &str = "stacktop_";

/// `name` as a valid Prometheus metric name (borrowed when it already is).
pub fn metric_name(name: &str) -> Cow<'_, str> {
    sanitize(name, true)
}

/// `key` as a valid Prometheus label name (borrowed when it already is).
pub fn label_name(key: &str) -> Cow<'_, str> {
    sanitize(key, false)
}

fn sanitize(s: &str, colon_ok: bool) -> Cow<'_, str> {
    let ok = |i: usize, c: char| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colon_ok && c == ':')
            || (i > 0 && c.is_ascii_digit())
    };
    if !s.is_empty() && s.chars().enumerate().all(|(i, c)| ok(i, c)) {
        return Cow::Borrowed(s);
    }
    let mut out: String = s
        .chars()
        .enumerate()
        .map(|(i, c)| if ok(i, c) { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    Cow::Owned(out)
}

/// A node's roles as the `role` label's value, e.g. `web,app`; empty when
/// it has none.
pub fn roles_value(roles: &[Role]) -> String {
    let mut sorted: Vec<Role> = roles.to_vec();
    sorted.sort_by_key(|&r| r as i32);
    sorted.dedup();
    let names: Vec<&str> = sorted.iter().map(|r| r.name()).collect();
    names.join(",")
}

/// The labels of series `key` of node `node` (whose roles are already in
/// `role`, see [`roles_value`]), without the metric name: `node`, `role`
/// (when not empty), then the series' own labels; sorted by key and free
/// of duplicate keys.
pub fn series_labels(node: &str, role: &str, key: &SeriesKey) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::with_capacity(key.labels.len() + 2);
    labels.push((NODE.to_string(), node.to_string()));
    if !role.is_empty() {
        labels.push((ROLE.to_string(), role.to_string()));
    }
    for (k, v) in &key.labels {
        let name = label_name(k);
        let name = if name == NODE || name == ROLE || name.starts_with("__") {
            format!("exported_{}", name.trim_start_matches('_'))
        } else {
            name.into_owned()
        };
        if v.is_empty() || labels.iter().any(|(have, _)| *have == name) {
            // Prometheus treats an empty value as no label at all; a clash
            // after sanitizing cannot be carried.
            continue;
        }
        labels.push((name, v.clone()));
    }
    labels.sort();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Label;

    #[test]
    fn valid_names_are_borrowed_and_invalid_ones_fixed() {
        assert!(matches!(
            metric_name("node_cpu_usage_ratio"),
            Cow::Borrowed(_)
        ));
        assert_eq!(metric_name("job:rate5m"), "job:rate5m");
        assert_eq!(metric_name("9lives-x.y"), "_lives_x_y");
        assert_eq!(metric_name(""), "_");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(label_name("mount"), "mount");
    }

    #[test]
    fn roles_in_path_order() {
        assert_eq!(roles_value(&[Role::Db, Role::Web, Role::Web]), "web,db");
        assert_eq!(roles_value(&[]), "");
    }

    #[test]
    fn series_labels_rename_clashes_and_sort() {
        let key = SeriesKey::new(
            "x",
            &[
                Label::new("node", "other"),
                Label::new("mount", "/"),
                Label::new("__name__", "evil"),
                Label::new("empty", ""),
                Label::new("a-b", "1"),
                Label::new("a_b", "2"),
            ],
        );
        let got = series_labels("web1", "web,app", &key);
        let want: Vec<(String, String)> = [
            ("a_b", "1"),
            ("exported_name__", "evil"),
            ("exported_node", "other"),
            ("mount", "/"),
            ("node", "web1"),
            ("role", "web,app"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        let bare = series_labels("db1", "", &SeriesKey::new("y", &[]));
        assert_eq!(bare, [("node".to_string(), "db1".to_string())]);
    }
}
