//! The ingest journal: what the collector acknowledges, it has on disk.
//!
//! Every batch an agent stream stores is first appended here, and the
//! stream acknowledges it only once the write is committed: a collector
//! killed at any moment has every acknowledged batch, and the agent resends
//! the rest. Writes from all streams are grouped: one writer thread takes
//! whatever is waiting, writes it in one redb transaction and commits it
//! with one fsync, so 10,000 agents at 1 s cost tens of commits a second,
//! not 10,000.
//!
//! On start the journal is read back in arrival order and replayed into the
//! store ([`Store::replay`]): recent history, every known node (shown down
//! until it speaks again), its checks, and where each agent instance
//! resumes. Entries older than the history window are deleted as they age
//! out.
//!
//! An entry is self-contained: the batch as the collector accepted it (its
//! points valid, its series defined in the entry itself), with the node's
//! identity; encoded with prost, stored in redb (`ingest.redb`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use stacktop_proto::v1::{Batch, Label, Point, SeriesDef};
use stacktop_proto::{Role, now_unix_ms};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::store::{Identity, Reported, ResolvedPoint, SeriesKey, Store};

/// The file under the data directory.
pub const FILE: &str = "ingest.redb";

/// Entries waiting for the writer, at most; a stream waits for room.
const QUEUE: usize = 65_536;

/// Entries one transaction takes, at most.
const GROUP: usize = 8_192;

/// redb's page cache (read cache and write buffer), at most. redb's default
/// is 1 GiB, which a collector journaling 1,000 nodes fills within minutes
/// (BENCHMARKS.md section 3) although nothing in it is read twice: the
/// journal is read once, front to back, at start, and written at its tail.
/// What a cache buys is the tree's upper pages and one group commit's pages
/// until it lands: redb keeps half the cache for writes and writes the rest
/// of a larger transaction out early, so 64 MiB holds a 32 MiB group
/// (about 8,000 entries of 50 points, 4 KiB each as BENCHMARKS.md section
/// 7 measured: a full group) in memory.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How often aged-out entries are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Arrival-ordered entries: key = arrival ms << 12 | a counter.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

/// Forgotten nodes: their entries up to this time (Unix ms) are not
/// replayed.
const FORGOTTEN: TableDefinition<&str, i64> = TableDefinition::new("forgotten");

/// What the writer thread is asked to do.
enum Write {
    Append(Vec<u8>, i64),
    Forget(String, i64),
}

/// One journaled batch.
#[derive(Clone, PartialEq, Message)]
pub struct Entry {
    /// The node's name.
    #[prost(string, tag = "1")]
    pub node: String,
    /// The agent instance that sent it.
    #[prost(string, tag = "2")]
    pub instance_id: String,
    /// Its roles (as in Hello).
    #[prost(int32, repeated, tag = "3")]
    pub roles: Vec<i32>,
    /// Whether they were detected.
    #[prost(bool, tag = "4")]
    pub roles_detected: bool,
    /// Its labels.
    #[prost(message, repeated, tag = "5")]
    pub labels: Vec<Label>,
    /// The agent's version.
    #[prost(string, tag = "6")]
    pub agent_version: String,
    /// Its interval.
    #[prost(uint32, tag = "7")]
    pub interval_ms: u32,
    /// When the collector received it (Unix ms).
    #[prost(int64, tag = "8")]
    pub arrived_ms: i64,
    /// The batch as accepted: valid points only, every series they name
    /// defined here.
    #[prost(message, optional, tag = "9")]
    pub batch: Option<Batch>,
}

/// First byte of a Snappy-compressed entry. A prost-encoded `Entry` never
/// starts with it (field number 0 does not exist), so entries written
/// before compression still read.
const SNAPPY: u8 = 0;

impl Entry {
    /// The entry as stored: prost, then Snappy (an entry repeats the
    /// node's identity and its series' names, which compress about 3x;
    /// microseconds a batch).
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw = self.encode_to_vec();
        let mut out = Vec::with_capacity(1 + snap::raw::max_compress_len(raw.len()));
        out.push(SNAPPY);
        out.resize(1 + snap::raw::max_compress_len(raw.len()), 0);
        match snap::raw::Encoder::new().compress(&raw, &mut out[1..]) {
            Ok(n) => {
                out.truncate(1 + n);
                out
            }
            // Cannot happen with a buffer of max_compress_len; stored
            // plain, it still reads.
            Err(_) => raw,
        }
    }

    /// An entry as stored by [`Entry::to_bytes`] (or plain prost, as
    /// written before entries were compressed).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&SNAPPY, packed)) => {
                let raw = snap::raw::Decoder::new()
                    .decompress_vec(packed)
                    .map_err(|e| format!("snappy: {e}"))?;
                Self::decode(raw.as_slice()).map_err(|e| e.to_string())
            }
            _ => Self::decode(bytes).map_err(|e| e.to_string()),
        }
    }

    /// The entry for one accepted batch.
    pub fn new(
        identity: &Identity,
        seq: u64,
        points: &[ResolvedPoint<'_>],
        reported: &Reported,
        arrived_ms: i64,
    ) -> Self {
        let mut series: Vec<SeriesDef> = Vec::new();
        let mut ids: Vec<(&SeriesKey, u32)> = Vec::new();
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            let id = match ids
                .iter()
                .find(|(k, _)| std::ptr::eq(*k, p.key) || *k == p.key)
            {
                Some(&(_, id)) => id,
                None => {
                    let id = series.len() as u32;
                    series.push(SeriesDef {
                        id,
                        name: p.key.name.clone(),
                        labels: p.key.proto_labels(),
                    });
                    ids.push((p.key, id));
                    id
                }
            };
            out.push(Point {
                series_id: id,
                value: p.value,
                timestamp_ms: p.timestamp_ms,
            });
        }
        Self {
            node: identity.name.clone(),
            instance_id: identity.instance_id.clone(),
            roles: identity.roles.iter().map(|&r| r as i32).collect(),
            roles_detected: identity.roles_detected,
            labels: identity.labels.clone(),
            agent_version: identity.agent_version.clone(),
            interval_ms: identity.interval_ms,
            arrived_ms,
            batch: Some(Batch {
                seq,
                timestamp_ms: arrived_ms,
                series,
                points: out,
                checks: reported.checks.clone(),
                facts: reported.facts.clone(),
                backends: reported.backends.clone(),
                backends_error: reported.backends_error.clone().unwrap_or_default(),
            }),
        }
    }

    fn identity(&self) -> Identity {
        Identity {
            name: self.node.clone(),
            instance_id: self.instance_id.clone(),
            roles: self
                .roles
                .iter()
                .filter_map(|&r| Role::try_from(r).ok())
                .filter(|&r| r != Role::Unspecified)
                .collect(),
            roles_detected: self.roles_detected,
            labels: self.labels.clone(),
            agent_version: self.agent_version.clone(),
            interval_ms: self.interval_ms,
            peer: String::new(),
            // A restored node is down until it speaks, and its Hello then
            // announces its checks again.
            planned_checks: Vec::new(),
        }
    }
}

/// Why the journal failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The store could not be opened or written.
    #[error("ingest journal {path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The writer is gone (shutting down).
    #[error("the ingest journal is closed")]
    Closed,
}

type Done = oneshot::Sender<Result<(), JournalError>>;
type Job = (Write, Done);

/// The open journal: hands entries to its writer thread.
#[derive(Debug, Clone)]
pub struct Journal {
    tx: mpsc::Sender<Job>,
}

/// What [`Journal::open`] read back.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restored {
    /// Entries replayed.
    pub entries: u64,
    /// Entries skipped because they could not be decoded.
    pub damaged: u64,
    /// How long reading and replaying took.
    pub took: Duration,
}

impl Journal {
    /// Opens (creating) `dir/ingest.redb`, replays what it holds into
    /// `store`, and starts the writer thread. The thread ends when every
    /// [`Journal`] handle is dropped.
    pub fn open(dir: &Path, store: &Store) -> Result<(Self, Restored), JournalError> {
        let path = dir.join(FILE);
        let fail = |e: &dyn std::fmt::Display| JournalError::Store {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => fail(
                    &"in use by another process: is another collector running with this data \
                  directory? (give each its own --data-dir)",
                ),
                other => fail(&other),
            })?;
        let restored = replay(&db, store, store.window_ms()).map_err(|e| fail(&e))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let window_ms = store.window_ms();
        std::thread::Builder::new()
            .name("stacktop-journal".into())
            .spawn(move || write_loop(db, path, rx, window_ms))
            .map_err(|e| JournalError::Store {
                path: dir.join(FILE),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok((Self { tx }, restored))
    }

    /// Appends `entry` and waits until it is committed to disk.
    pub async fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        self.submit(Write::Append(entry.to_bytes(), entry.arrived_ms))
            .await
    }

    /// Records that node `name` was forgotten at `at_ms`: a restart does
    /// not bring it back from the entries before.
    pub async fn forget(&self, name: &str, at_ms: i64) -> Result<(), JournalError> {
        self.submit(Write::Forget(name.to_string(), at_ms)).await
    }

    async fn submit(&self, write: Write) -> Result<(), JournalError> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send((write, done))
            .await
            .map_err(|_| JournalError::Closed)?;
        committed.await.map_err(|_| JournalError::Closed)?
    }
}

fn replay(db: &Database, store: &Store, window_ms: i64) -> Result<Restored, redb::Error> {
    let started = Instant::now();
    let mut restored = Restored::default();
    let tx = db.begin_read()?;
    let table = match tx.open_table(ENTRIES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(restored),
        Err(e) => return Err(e.into()),
    };
    let mut forgotten = std::collections::HashMap::new();
    match tx.open_table(FORGOTTEN) {
        Ok(t) => {
            for row in t.iter()? {
                let (name, at) = row?;
                forgotten.insert(name.value().to_string(), at.value());
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let since = key(now_unix_ms() - window_ms, 0);
    for row in table.range(since..)? {
        let (_, bytes) = row?;
        let entry = match Entry::from_bytes(bytes.value()) {
            Ok(e) => e,
            Err(err) => {
                restored.damaged += 1;
                warn!(cause = %err, "skipping a damaged journal entry");
                continue;
            }
        };
        let Some(batch) = &entry.batch else {
            restored.damaged += 1;
            continue;
        };
        if forgotten
            .get(&entry.node)
            .is_some_and(|&at| entry.arrived_ms <= at)
        {
            continue;
        }
        let keys: Vec<SeriesKey> = batch
            .series
            .iter()
            .map(|d| SeriesKey::new(d.name.clone(), &d.labels))
            .collect();
        let points: Vec<ResolvedPoint<'_>> = batch
            .points
            .iter()
            .filter_map(|p| {
                Some(ResolvedPoint {
                    key: keys.get(p.series_id as usize)?,
                    timestamp_ms: p.timestamp_ms,
                    value: p.value,
                })
            })
            .collect();
        let reported = Reported {
            checks: batch.checks.clone(),
            facts: batch.facts.clone(),
            backends: batch.backends.clone(),
            backends_error: (!batch.backends_error.is_empty())
                .then(|| batch.backends_error.clone()),
        };
        store.replay(
            &entry.identity(),
            batch.seq,
            &points,
            reported,
            entry.arrived_ms,
        );
        restored.entries += 1;
    }
    restored.took = started.elapsed();
    Ok(restored)
}

/// The key of an entry that arrived at `ms`: arrival order, 4,096 entries
/// per millisecond before the next millisecond's keys are borrowed.
fn key(ms: i64, counter: u64) -> u64 {
    ((ms.max(0) as u64) << 12) + counter
}

fn write_loop(db: Database, path: PathBuf, mut rx: mpsc::Receiver<Job>, window_ms: i64) {
    let db = Arc::new(db);
    let mut last_key = last_key(&db).unwrap_or(0);
    let mut pruned = Instant::now();
    let mut group = Vec::with_capacity(GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let result = write_group(&db, &group, &mut last_key).map_err(|e| JournalError::Store {
            path: path.clone(),
            message: e.to_string(),
        });
        if let Err(err) = &result {
            warn!(cause = %err, entries = group.len(), "journal write failed; the batches are not acknowledged");
        }
        for (_, done) in group.drain(..) {
            let _ = done.send(result.clone());
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            let cutoff = key(now_unix_ms() - window_ms, 0);
            if let Err(err) = prune(&db, cutoff) {
                warn!(cause = %err, "pruning the journal failed; retrying later");
            }
        }
    }
    info!("ingest journal closed");
}

/// The newest key written, so that keys keep growing across restarts.
fn last_key(db: &Database) -> Result<u64, redb::Error> {
    let tx = db.begin_read()?;
    match tx.open_table(ENTRIES) {
        Ok(table) => Ok(table.last()?.map_or(0, |(k, _)| k.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn write_group(db: &Database, group: &[Job], last_key: &mut u64) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(ENTRIES)?;
        let mut forgotten = tx.open_table(FORGOTTEN)?;
        for (write, _) in group {
            match write {
                Write::Append(bytes, arrived_ms) => {
                    // Keys only grow, whatever the clock does.
                    let k = key(*arrived_ms, 0).max(*last_key + 1);
                    table.insert(k, bytes.as_slice())?;
                    *last_key = k;
                }
                Write::Forget(name, at_ms) => {
                    forgotten.insert(name.as_str(), *at_ms)?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

fn prune(db: &Database, cutoff: u64) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(ENTRIES)?;
        table.retain_in(..cutoff, |_, _| false)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            node: "web1".into(),
            instance_id: "i-1".into(),
            agent_version: "0.1.0".into(),
            interval_ms: 1_000,
            arrived_ms: 1_795_608_000_000,
            batch: Some(Batch {
                seq: 7,
                series: (0..25)
                    .map(|i| SeriesDef {
                        id: i,
                        name: format!("node_network_receive_bytes_per_second_{i}"),
                        labels: vec![Label::new("device", "eth0")],
                    })
                    .collect(),
                points: (0..25)
                    .map(|i| Point {
                        series_id: i,
                        timestamp_ms: 1_795_608_000_000,
                        value: f64::from(i) * 1.5,
                    })
                    .collect(),
                ..Batch::default()
            }),
            ..Entry::default()
        }
    }

    #[test]
    fn entries_are_compressed_and_read_back() {
        let e = entry();
        let bytes = e.to_bytes();
        assert_eq!(bytes[0], SNAPPY);
        assert!(
            bytes.len() * 2 < e.encode_to_vec().len(),
            "{} vs {}",
            bytes.len(),
            e.encode_to_vec().len()
        );
        assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
    }

    #[test]
    fn plain_entries_from_before_still_read_and_damage_is_an_error() {
        let e = entry();
        assert_eq!(Entry::from_bytes(&e.encode_to_vec()).unwrap(), e);
        let mut bytes = e.to_bytes();
        bytes.truncate(bytes.len() / 2);
        assert!(Entry::from_bytes(&bytes).is_err());
    }
}
