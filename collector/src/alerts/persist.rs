//! What the alert engine keeps across restarts and SIGKILL, in redb (an
//! embedded, transactional store; one file, `alerts.redb`, under the
//! collector's `--data-dir`): every alert's state and start times, what
//! each sink was told, acknowledgements, silences, maintenance windows and
//! the history of state changes.
//!
//! Records are JSON (serde) under string or sequence keys: few, small, and
//! readable with any redb tool. Writes are batched: the engine marks what
//! changed and a flush writes it in one durable transaction; operator
//! actions (ack, silence, maintenance) are flushed before they are
//! answered, so an acknowledged ack survives a SIGKILL.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

use super::state::Record;
use super::{EventRecord, MaintenanceRecord, SilenceRecord};

const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const SILENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("silences");
const MAINTENANCE: TableDefinition<&str, &[u8]> = TableDefinition::new("maintenance");

/// The file under the data directory.
pub const FILE: &str = "alerts.redb";

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// redb refused.
    #[error("alert store {path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// A record could not be read back.
    #[error("alert store {path}: a {table} record is damaged: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Which table.
        table: &'static str,
        /// Why.
        message: String,
    },
}

/// Everything the store held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Alerts by id.
    pub alerts: Vec<Record>,
    /// The newest history entries, oldest first, with their sequence.
    pub history: Vec<(u64, EventRecord)>,
    /// Silences.
    pub silences: Vec<SilenceRecord>,
    /// Maintenance windows.
    pub maintenance: Vec<MaintenanceRecord>,
}

/// What one flush writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Alerts to write (whole).
    pub alerts: Vec<Record>,
    /// Alerts to delete.
    pub removed: Vec<String>,
    /// History entries to append.
    pub history: Vec<(u64, EventRecord)>,
    /// Drop history entries below this sequence.
    pub history_before: Option<u64>,
    /// Silences to write.
    pub silences: Vec<SilenceRecord>,
    /// Maintenance windows to write.
    pub maintenance: Vec<MaintenanceRecord>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.removed.is_empty()
            && self.history.is_empty()
            && self.history_before.is_none()
            && self.silences.is_empty()
            && self.maintenance.is_empty()
    }
}

/// The open store.
#[derive(Debug)]
pub struct Persist {
    db: Database,
    path: PathBuf,
}

impl Persist {
    /// Opens (creating) `dir/alerts.redb`.
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        std::fs::create_dir_all(dir).map_err(|source| PersistError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE);
        let db = Database::create(&path).map_err(|e| PersistError::Store {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self { db, path })
    }

    fn err(&self, e: impl std::fmt::Display) -> PersistError {
        PersistError::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        table: &'static str,
        bytes: &[u8],
    ) -> Result<T, PersistError> {
        serde_json::from_slice(bytes).map_err(|e| PersistError::Record {
            path: self.path.clone(),
            table,
            message: e.to_string(),
        })
    }

    /// Every record of a table keyed by string (none when it does not
    /// exist yet).
    fn read_all<T: DeserializeOwned>(
        &self,
        tx: &redb::ReadTransaction,
        def: TableDefinition<&str, &[u8]>,
        name: &'static str,
    ) -> Result<Vec<T>, PersistError> {
        let table = match tx.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(self.decode(name, v.value())?);
        }
        Ok(out)
    }

    /// Reads everything back (history: the newest `history_limit`).
    pub fn load(&self, history_limit: usize) -> Result<Loaded, PersistError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let mut loaded = Loaded {
            alerts: self.read_all(&tx, ALERTS, "alerts")?,
            silences: self.read_all(&tx, SILENCES, "silences")?,
            maintenance: self.read_all(&tx, MAINTENANCE, "maintenance")?,
            history: Vec::new(),
        };
        match tx.open_table(HISTORY) {
            Ok(table) => {
                let rows = table
                    .iter()
                    .map_err(|e| self.err(e))?
                    .rev()
                    .take(history_limit);
                for row in rows {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    loaded
                        .history
                        .push((k.value(), self.decode("history", v.value())?));
                }
                loaded.history.reverse();
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.err(e)),
        }
        Ok(loaded)
    }

    /// Writes `batch` in one durable transaction.
    pub fn write(&self, batch: &Batch) -> Result<(), PersistError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut alerts = tx.open_table(ALERTS).map_err(|e| self.err(e))?;
            for a in &batch.alerts {
                alerts
                    .insert(a.id.as_str(), to_json(a).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            for id in &batch.removed {
                alerts.remove(id.as_str()).map_err(|e| self.err(e))?;
            }
            let mut history = tx.open_table(HISTORY).map_err(|e| self.err(e))?;
            for (seq, event) in &batch.history {
                history
                    .insert(*seq, to_json(event).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            if let Some(before) = batch.history_before {
                history
                    .retain_in(..before, |_, _| false)
                    .map_err(|e| self.err(e))?;
            }
            let mut silences = tx.open_table(SILENCES).map_err(|e| self.err(e))?;
            for s in &batch.silences {
                silences
                    .insert(s.id.as_str(), to_json(s).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut maintenance = tx.open_table(MAINTENANCE).map_err(|e| self.err(e))?;
            for m in &batch.maintenance {
                maintenance
                    .insert(m.id.as_str(), to_json(m).as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

/// Serializes `value` (the records are plain data; this cannot fail).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
