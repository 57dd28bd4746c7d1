//! The durable spool: every batch stays on disk until every configured
//! collector has acknowledged it, so neither an agent restart (or a
//! `kill -9`) nor a collector away for a while loses data.
//!
//! One redb file (`spool.redb`) under `spool-dir` holds the agent's
//! identity (its instance id and last seq, so a restarted agent is resumed
//! by the collector rather than refused or duplicated), the batches, and
//! one acknowledgement cursor per collector: a batch is deleted once every
//! cursor has passed it, so a collector that is away never holds back or
//! loses another's data. The spool is bounded by `spool-max-bytes`: when
//! full, the oldest batches go first, counted exactly and logged.
//!
//! A batch names its series by the agent's ids, which a new process
//! numbers afresh; so each entry carries the definitions of the series it
//! uses, and a restored batch is renumbered into the new process's table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use stacktop_proto::v1::{Batch, SeriesDef};
use tracing::{debug, warn};

use crate::series::SeriesTable;

/// The file under `spool-dir`.
pub const FILE: &str = "spool.redb";

/// The default bound on the spool's size.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The default bound on the age of a spooled batch (its sampling time
/// before the newest batch's): a day, longer than any outage worth
/// replaying second by second.
pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The directory used when it exists and is writable and none is set.
pub const DEFAULT_DIR: &str = "/var/lib/stacktop-agent";

const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");

/// One spooled batch with the definitions of the series it uses.
#[derive(Clone, PartialEq, Message)]
struct Entry {
    #[prost(message, optional, tag = "1")]
    batch: Option<Batch>,
    #[prost(message, repeated, tag = "2")]
    defs: Vec<SeriesDef>,
}

/// Why the spool could not be used.
#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {message}")]
pub struct SpoolError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// What a previous run left.
#[derive(Debug, Default)]
pub struct Restored {
    /// The instance id to keep using.
    pub instance_id: Option<String>,
    /// The last seq handed out.
    pub last_seq: u64,
    /// Every spooled batch, renumbered into this process's series table,
    /// oldest first.
    pub batches: Vec<Arc<Batch>>,
    /// Each collector's acknowledged seq.
    pub cursors: HashMap<String, u64>,
}

/// The open spool; cheap to clone.
#[derive(Debug, Clone)]
pub struct Spool {
    inner: Arc<Mutex<Inner>>,
}

/// What the spool knows of a batch without reading it.
#[derive(Debug, Clone, Copy)]
struct Held {
    size: u64,
    timestamp_ms: i64,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    /// Batches sampled longer ago than this (before the newest) go.
    max_age_ms: i64,
    /// Size and timestamp of each spooled batch, by seq.
    sizes: BTreeMap<u64, Held>,
    bytes: u64,
    cursors: HashMap<String, u64>,
    /// The newest seq each collector's live stream was handed (in memory:
    /// a batch every collector was already sent is on its way, and
    /// evicting it loses nothing).
    sent: HashMap<String, u64>,
    /// Batches dropped because the spool was full, since start.
    dropped: u64,
}

impl Spool {
    /// Opens (creating) `dir/spool.redb` for `collectors` and reads back
    /// what it holds, renumbering the series into `series`.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        max_age: std::time::Duration,
        collectors: &[String],
        series: &SeriesTable,
    ) -> Result<(Self, Restored), SpoolError> {
        let path = dir.join(FILE);
        let fail = |m: String| SpoolError {
            path: path.clone(),
            message: m,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => fail(
                "in use by another process: is another agent running with this spool-dir?".into(),
            ),
            other => fail(other.to_string()),
        })?;
        let mut restored = Restored::default();
        let mut sizes = BTreeMap::new();
        {
            let tx = db.begin_read().map_err(|e| fail(e.to_string()))?;
            if let Ok(meta) = tx.open_table(META) {
                if let Some(v) = meta.get("instance_id").map_err(|e| fail(e.to_string()))? {
                    restored.instance_id = String::from_utf8(v.value().to_vec()).ok();
                }
                if let Some(v) = meta.get("last_seq").map_err(|e| fail(e.to_string()))? {
                    restored.last_seq = v.value().try_into().map(u64::from_be_bytes).unwrap_or(0);
                }
            }
            if let Ok(cursors) = tx.open_table(CURSORS) {
                for row in cursors.iter().map_err(|e| fail(e.to_string()))? {
                    let (k, v) = row.map_err(|e| fail(e.to_string()))?;
                    restored.cursors.insert(k.value().to_string(), v.value());
                }
            }
            if let Ok(batches) = tx.open_table(BATCHES) {
                for row in batches.iter().map_err(|e| fail(e.to_string()))? {
                    let (seq, bytes) = row.map_err(|e| fail(e.to_string()))?;
                    let size = bytes.value().len() as u64;
                    match Entry::decode(bytes.value()) {
                        Ok(entry) => {
                            let timestamp_ms = entry.batch.as_ref().map_or(0, |b| b.timestamp_ms);
                            sizes.insert(seq.value(), Held { size, timestamp_ms });
                            if let Some(batch) = renumber(entry, series) {
                                restored.last_seq = restored.last_seq.max(batch.seq);
                                restored.batches.push(Arc::new(batch));
                            }
                        }
                        Err(err) => {
                            sizes.insert(
                                seq.value(),
                                Held {
                                    size,
                                    timestamp_ms: 0,
                                },
                            );
                            warn!(seq = seq.value(), cause = %err, "skipping a damaged spooled batch")
                        }
                    }
                }
            }
        }
        // Only the configured collectors count: one removed from the config
        // must not hold batches forever.
        let cursors: HashMap<String, u64> = collectors
            .iter()
            .map(|c| (c.clone(), restored.cursors.get(c).copied().unwrap_or(0)))
            .collect();
        let bytes = sizes.values().map(|h: &Held| h.size).sum();
        let spool = Self {
            inner: Arc::new(Mutex::new(Inner {
                db,
                path,
                max_bytes,
                max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
                sizes,
                bytes,
                sent: cursors.clone(),
                cursors,
                dropped: 0,
            })),
        };
        Ok((spool, restored))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the instance id this agent uses.
    pub fn set_instance_id(&self, id: &str) -> Result<(), SpoolError> {
        let inner = self.lock();
        inner.write(|tx| {
            tx.open_table(META)?.insert("instance_id", id.as_bytes())?;
            Ok(())
        })
    }

    /// Spools `batch` (durably) with the definitions of its series; when
    /// the spool is over its bound, drops the oldest batches.
    pub fn append(&self, batch: &Batch, series: &SeriesTable) -> Result<(), SpoolError> {
        let mut defs: Vec<SeriesDef> = Vec::new();
        for p in &batch.points {
            if !defs.iter().any(|d| d.id == p.series_id)
                && let Some(def) = series.def(p.series_id)
            {
                defs.push(def);
            }
        }
        let bytes = Entry {
            batch: Some(batch.clone()),
            defs,
        }
        .encode_to_vec();
        let size = bytes.len() as u64;
        let mut inner = self.lock();
        let mut evict = Vec::new();
        let mut left = inner.bytes + size;
        let oldest_kept = batch.timestamp_ms.saturating_sub(inner.max_age_ms);
        let mut too_old = 0;
        for (&seq, held) in &inner.sizes {
            let old = held.timestamp_ms < oldest_kept;
            if left <= inner.max_bytes && !old {
                break;
            }
            too_old += usize::from(old);
            evict.push(seq);
            left -= held.size;
        }
        let seq = batch.seq;
        inner.write(|tx| {
            let mut t = tx.open_table(BATCHES)?;
            t.insert(seq, bytes.as_slice())?;
            for s in &evict {
                t.remove(s)?;
            }
            tx.open_table(META)?
                .insert("last_seq", seq.to_be_bytes().as_slice())?;
            Ok(())
        })?;
        for s in &evict {
            if let Some(held) = inner.sizes.remove(s) {
                inner.bytes -= held.size;
            }
        }
        inner.sizes.insert(
            seq,
            Held {
                size,
                timestamp_ms: batch.timestamp_ms,
            },
        );
        inner.bytes += size;
        // The record of what this agent sent (`stacktop_agent::spool=debug`):
        // from here on the batch survives the agent, so a test can check
        // that exactly these reach the collector.
        debug!(
            seq,
            timestamp_ms = batch.timestamp_ms,
            points = batch.points.len(),
            "spooled"
        );
        // Only what some collector was not sent yet is lost.
        let everyone_sent = inner.sent.values().copied().min().unwrap_or(0);
        let lost = evict.iter().filter(|&&s| s > everyone_sent).count();
        if lost > 0 {
            inner.dropped += lost as u64;
            warn!(
                dropped = lost,
                too_old,
                dropped_total = inner.dropped,
                oldest_kept = inner.sizes.keys().next().copied().unwrap_or(seq),
                max_bytes = inner.max_bytes,
                max_age_s = inner.max_age_ms / 1000,
                "spool full or too old: dropped the oldest batches"
            );
        }
        Ok(())
    }

    /// Records that `collector`'s stream was handed `seq` (not yet
    /// acknowledged).
    pub fn sent(&self, collector: &str, seq: u64) {
        if let Some(sent) = self.lock().sent.get_mut(collector) {
            *sent = (*sent).max(seq);
        }
    }

    /// `collector` acknowledged everything up to `seq`: moves its cursor
    /// and deletes what every collector has.
    pub fn acked(&self, collector: &str, seq: u64) {
        let mut inner = self.lock();
        let Some(cursor) = inner.cursors.get_mut(collector) else {
            return;
        };
        if seq <= *cursor {
            return;
        }
        *cursor = seq;
        let everyone = inner.cursors.values().copied().min().unwrap_or(seq);
        let gone: Vec<u64> = inner.sizes.range(..=everyone).map(|(&s, _)| s).collect();
        let result = inner.write(|tx| {
            tx.open_table(CURSORS)?.insert(collector, seq)?;
            let mut t = tx.open_table(BATCHES)?;
            for s in &gone {
                t.remove(s)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                for s in gone {
                    if let Some(Held { size, .. }) = inner.sizes.remove(&s) {
                        inner.bytes -= size;
                    }
                }
            }
            Err(err) => warn!(cause = %err, "cannot record an acknowledgement in the spool"),
        }
    }

    /// The oldest batch held, if any.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.lock().sizes.keys().next().copied()
    }

    /// Batches dropped (the spool full, or them too old) before every
    /// collector was sent them, since start.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Batches held.
    pub fn len(&self) -> usize {
        self.lock().sizes.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seqs held, oldest first.
    pub fn seqs(&self) -> Vec<u64> {
        self.lock().sizes.keys().copied().collect()
    }
}

impl Inner {
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), SpoolError> {
        let fail = |e: redb::Error| SpoolError {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let tx = self.db.begin_write().map_err(|e| fail(e.into()))?;
        f(&tx).map_err(fail)?;
        tx.commit().map_err(|e| fail(e.into()))
    }
}

/// `entry`'s batch with its series ids taken from `series` (interning the
/// definitions it carries); `None` without a batch.
fn renumber(entry: Entry, series: &SeriesTable) -> Option<Batch> {
    let mut batch = entry.batch?;
    let ids: HashMap<u32, u32> = entry
        .defs
        .iter()
        .map(|d| {
            let labels: Vec<(&str, &str)> = d
                .labels
                .iter()
                .map(|l| (l.key.as_str(), l.value.as_str()))
                .collect();
            (d.id, series.intern(&d.name, &labels))
        })
        .collect();
    batch.points.retain_mut(|p| match ids.get(&p.series_id) {
        Some(&id) => {
            p.series_id = id;
            true
        }
        None => false,
    });
    batch.series.clear();
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::Point;

    fn batch(series: &SeriesTable, seq: u64) -> Batch {
        let id = series.intern("node_load1", &[]);
        Batch {
            seq,
            timestamp_ms: 1_700_000_000_000 + seq as i64 * 1_000,
            points: vec![Point {
                series_id: id,
                value: seq as f64,
                timestamp_ms: 1_700_000_000_000 + seq as i64 * 1_000,
            }],
            ..Default::default()
        }
    }

    fn collectors() -> Vec<String> {
        vec!["http://a:7411".into(), "http://b:7411".into()]
    }

    #[test]
    fn a_restart_gets_the_identity_and_every_unacknowledged_batch_back() {
        let dir = tempfile::tempdir().unwrap();
        let series = SeriesTable::new();
        // A series this process numbered first, so ids differ next time.
        series.intern("node_cpu_usage_ratio", &[]);
        {
            let (spool, restored) = Spool::open(
                dir.path(),
                DEFAULT_MAX_BYTES,
                DEFAULT_MAX_AGE,
                &collectors(),
                &series,
            )
            .unwrap();
            assert!(restored.instance_id.is_none() && restored.batches.is_empty());
            spool.set_instance_id("abc").unwrap();
            for seq in 1..=5 {
                spool.append(&batch(&series, seq), &series).unwrap();
            }
            spool.acked("http://a:7411", 5);
            spool.acked("http://b:7411", 2);
            assert_eq!(spool.seqs(), [3, 4, 5], "b still needs 3..5");
        }
        let fresh = SeriesTable::new();
        let (_, restored) = Spool::open(
            dir.path(),
            DEFAULT_MAX_BYTES,
            DEFAULT_MAX_AGE,
            &collectors(),
            &fresh,
        )
        .unwrap();
        assert_eq!(restored.instance_id.as_deref(), Some("abc"));
        assert_eq!(restored.last_seq, 5);
        assert_eq!(restored.cursors["http://b:7411"], 2);
        let seqs: Vec<u64> = restored.batches.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        // Renumbered into the new table, whose first series is node_load1.
        let p = &restored.batches[0].points[0];
        assert_eq!(fresh.def(p.series_id).unwrap().name, "node_load1");
        assert_eq!(p.value, 3.0);
    }

    #[test]
    fn full_means_the_oldest_go_first_counted_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let series = SeriesTable::new();
        let first = batch(&series, 1);
        let one = Entry {
            defs: vec![series.def(first.points[0].series_id).unwrap()],
            batch: Some(first),
        }
        .encode_to_vec()
        .len() as u64;
        // Room for ten batches.
        let (spool, _) = Spool::open(
            dir.path(),
            one * 10,
            DEFAULT_MAX_AGE,
            &collectors(),
            &series,
        )
        .unwrap();
        for seq in 1..=25 {
            spool.append(&batch(&series, seq), &series).unwrap();
        }
        assert_eq!(spool.dropped(), 15);
        assert_eq!(spool.seqs(), (16..=25).collect::<Vec<_>>());
    }

    #[test]
    fn batches_older_than_the_age_bound_go_first_counted() {
        let dir = tempfile::tempdir().unwrap();
        let series = SeriesTable::new();
        // Batches are a second apart: 5 s keeps the newest six.
        let max_age = std::time::Duration::from_secs(5);
        let (spool, _) = Spool::open(
            dir.path(),
            DEFAULT_MAX_BYTES,
            max_age,
            &collectors(),
            &series,
        )
        .unwrap();
        for seq in 1..=20 {
            spool.append(&batch(&series, seq), &series).unwrap();
        }
        assert_eq!(spool.seqs(), (15..=20).collect::<Vec<_>>());
        assert_eq!(spool.dropped(), 14);
    }
}
