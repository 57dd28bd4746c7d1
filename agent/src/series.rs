//! Series interning: every distinct (name, labels) pair the agent reports
//! gets a small `u32` id for the life of the process, so a steady-state
//! batch carries numbers rather than strings.
//!
//! The sampler interns (once per series, then caches the id); every uplink
//! looks definitions up by id when a stream needs them. The table only
//! grows, and ids are dense from 1, so lookup is an index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use stacktop_proto::v1::{Label, SeriesDef};

/// The shared series table. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SeriesTable {
    /// Written by the sampler only when a new series appears; read by
    /// uplinks when a stream first uses an id. Both are short and never
    /// held across `.await`.
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `defs[id - 1]` is the definition of `id`.
    defs: Vec<SeriesDef>,
    /// Prost's `Label` is not `Hash`, so the key holds plain pairs.
    by_key: HashMap<(String, Vec<(String, String)>), u32>,
}

impl SeriesTable {
    /// A new, empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name{labels}`, defining it if new. Labels are sorted by
    /// key so the same set in another order is the same series.
    pub fn intern(&self, name: &str, labels: &[(&str, &str)]) -> u32 {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        let key = (name.to_string(), labels);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = inner.by_key.get(&key) {
            return id;
        }
        let id = u32::try_from(inner.defs.len() + 1).expect("fewer than 4 billion series");
        inner.defs.push(SeriesDef {
            id,
            name: key.0.clone(),
            labels: key.1.iter().map(|(k, v)| Label::new(k, v)).collect(),
        });
        inner.by_key.insert(key, id);
        id
    }

    /// The definition of `id`, if it was interned.
    pub fn def(&self, id: u32) -> Option<SeriesDef> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        inner.defs.get(index).cloned()
    }

    /// How many series have been interned.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .defs
            .len()
    }

    /// True when nothing has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_series_same_id_and_ids_are_dense() {
        let table = SeriesTable::new();
        let a = table.intern("node_load1", &[]);
        let b = table.intern("node_cpu_usage_ratio", &[("cpu", "0")]);
        let c = table.intern("node_cpu_usage_ratio", &[("cpu", "1")]);
        assert_eq!((a, b, c), (1, 2, 3));
        assert_eq!(table.intern("node_cpu_usage_ratio", &[("cpu", "0")]), b);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn label_order_does_not_matter() {
        let table = SeriesTable::new();
        let a = table.intern("x", &[("a", "1"), ("b", "2")]);
        assert_eq!(table.intern("x", &[("b", "2"), ("a", "1")]), a);
    }

    #[test]
    fn defs_are_found_by_id() {
        let table = SeriesTable::new();
        let id = table.intern("node_filesystem_used_bytes", &[("mount", "/")]);
        let def = table.def(id).unwrap();
        assert_eq!(def.id, id);
        assert_eq!(def.name, "node_filesystem_used_bytes");
        assert_eq!(def.labels, vec![Label::new("mount", "/")]);
        assert!(table.def(0).is_none());
        assert!(table.def(id + 1).is_none());
    }
}
