//! The in-memory fleet as reported: every node the collector has heard of,
//! its identity, liveness, latest values, latest check results and recent
//! history. Nothing here decides health or staleness: the fleet view
//! ([`crate::fleet::view`]) evaluates copies of what is stored here.
//!
//! # Layout and locking
//!
//! [`Store`] holds a `RwLock<BTreeMap<name, Arc<NodeEntry>>>`. The map lock
//! is taken for writing only when a node is first seen; ingest holds its
//! node's `Arc` and locks only that node's mutex per batch, so agents do not
//! contend with each other. The view builder reads each entry's change stamp
//! without locking and locks only the nodes that changed, long enough to
//! copy them (the parts that change rarely are behind `Arc`s, so a copy is
//! mostly reference counts). No lock is ever held across an `.await`.
//!
//! # Stream ownership
//!
//! Each node records which agent stream owns it (a generation number drawn
//! from a counter, the agent's instance id and a cancellation token). Writes
//! carry the generation; a write from a replaced stream is refused, so the
//! late frames of a replaced stream are never applied.
//!
//! # Change tracking
//!
//! Every change to a node takes the next value of a global version counter
//! *while holding the node's lock* and stamps the node's entry with it
//! (an atomic, readable without the lock), then publishes the version on a
//! `tokio::sync::watch` channel. The view builder remembers the version it
//! copied each node at and copies only nodes stamped later; the watch
//! channel only ever holds the newest version, so nothing that reads the
//! store can hold up ingest.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use stacktop_proto::Role;
use stacktop_proto::v1::{BackendServer, CheckResult, Label};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::health;
use crate::series::Series;
use crate::slot::{Slot, SlotValue, SourceSeconds};
use stacktop_proto::v1::PlannedCheck;

/// Most distinct series one node may hold; further series are dropped.
pub const MAX_SERIES_PER_NODE: usize = 4_096;

/// Highest batch seq accepted: 2^53, which an agent sending 10 batches a
/// second reaches in 28 million years.
pub const MAX_SEQ: u64 = 1 << 53;

/// Furthest a batch seq may run ahead of the stored one: 100 million
/// batches, 115 days at 10 a second (an agent whose other collector kept
/// acknowledging while this one was away).
pub const MAX_SEQ_JUMP: u64 = 100_000_000;

/// Most distinct check names one node may hold; further checks are dropped.
pub const MAX_CHECKS_PER_NODE: usize = 512;

/// Most facts one node may hold; a longer list is cut to this many.
pub const MAX_FACTS_PER_NODE: usize = 64;

/// Most backend servers one node may hold; a longer list is cut.
pub const MAX_BACKENDS_PER_NODE: usize = 1_024;

/// Errors from store operations.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// Another agent instance holds a live stream for this node name.
    // The holder's instance id is not in the message: whoever knows it can
    // take the stream over.
    #[error(
        "node name {node:?} is already in use by a live agent; \
         node names must be unique: give this agent another name"
    )]
    NameTaken {
        /// The contested node name.
        node: String,
    },
    /// A batch seq no honest agent could have reached from the stored one.
    #[error(
        "batch seq {seq} is not believable after {held} for node {node:?} \
         (more than {MAX_SEQ_JUMP} ahead, or above {MAX_SEQ}); the agent must start a new instance"
    )]
    SeqJump {
        /// The node.
        node: String,
        /// The seq sent.
        seq: u64,
        /// The highest seq stored.
        held: u64,
    },
    /// The stream was replaced by a newer stream of the same agent, or the
    /// node was taken over; its frames are no longer applied.
    #[error("stream for node {node:?} was replaced by a newer stream")]
    Replaced {
        /// The node whose stream was replaced.
        node: String,
    },
    /// No node of that name is known.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
}

/// What one batch had skipped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Series definitions refused (empty name, over the stream's limit).
    pub refused_defs: usize,
    /// Points naming an undefined series id.
    pub undefined: usize,
    /// NaN or infinite values.
    pub non_finite: usize,
    /// Values beyond what history keeps (f32).
    pub out_of_range: usize,
    /// Negative ratios, byte counts, counters.
    pub negative: usize,
    /// Points stamped too far in the future.
    pub future: usize,
    /// Points older than the history window.
    pub too_old: usize,
    /// Points overlapping a previous instance's data.
    pub overlapping: usize,
}

impl Skipped {
    /// Anything skipped at all.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Everything ingest skipped since the collector started, by reason.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// See [`Skipped`]'s fields.
    pub refused_defs: AtomicU64,
    /// See [`Skipped::undefined`].
    pub undefined: AtomicU64,
    /// See [`Skipped::non_finite`].
    pub non_finite: AtomicU64,
    /// See [`Skipped::out_of_range`].
    pub out_of_range: AtomicU64,
    /// See [`Skipped::negative`].
    pub negative: AtomicU64,
    /// See [`Skipped::future`].
    pub future: AtomicU64,
    /// See [`Skipped::too_old`].
    pub too_old: AtomicU64,
    /// See [`Skipped::overlapping`].
    pub overlapping: AtomicU64,
    /// Batches refused whole (too many points, too many a second); their
    /// stream ended.
    pub refused_batches: AtomicU64,
}

impl IngestCounters {
    /// The counts so far.
    pub fn get(&self) -> Skipped {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed) as usize;
        Skipped {
            refused_defs: n(&self.refused_defs),
            undefined: n(&self.undefined),
            non_finite: n(&self.non_finite),
            out_of_range: n(&self.out_of_range),
            negative: n(&self.negative),
            future: n(&self.future),
            too_old: n(&self.too_old),
            overlapping: n(&self.overlapping),
        }
    }
}

/// Result type of this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A series' identity within a node: metric name plus labels sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// Metric name, e.g. `node_cpu_usage_ratio`.
    pub name: String,
    /// `(key, value)` pairs sorted by key, then value.
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    /// A key from a name and labels in any order.
    pub fn new(name: impl Into<String>, labels: &[Label]) -> Self {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        Self {
            name: name.into(),
            labels,
        }
    }

    /// The value of label `key`, if the series carries it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The labels as proto labels.
    pub fn proto_labels(&self) -> Vec<Label> {
        self.labels.iter().map(|(k, v)| Label::new(k, v)).collect()
    }
}

/// Who a node is, as announced in Hello.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Unique node name.
    pub name: String,
    /// Random id of the agent process.
    pub instance_id: String,
    /// Roles in the stack (no `Unspecified`).
    pub roles: Vec<Role>,
    /// True when roles were detected rather than configured.
    pub roles_detected: bool,
    /// Free-form node labels.
    pub labels: Vec<Label>,
    /// The agent's version.
    pub agent_version: String,
    /// Sampling interval in ms (never 0 after validation).
    pub interval_ms: u32,
    /// Address the agent connected from.
    pub peer: String,
    /// The checks the agent announced it runs (at most
    /// [`MAX_CHECKS_PER_NODE`]).
    pub planned_checks: Vec<PlannedCheck>,
}

/// The stream that currently feeds a node.
#[derive(Debug)]
struct Owner {
    generation: u64,
    cancel: CancellationToken,
}

/// The latest result of one check, as it arrived.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    /// The result as the agent sent it.
    pub result: Arc<CheckResult>,
    /// Collector clock (Unix ms) when it arrived.
    pub arrived_ms: i64,
}

/// An LB node's HAProxy backend servers as last reported.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// The last complete sample, replaced whole by a batch that carries one.
    pub servers: Arc<Vec<BackendServer>>,
    /// Collector clock (Unix ms) when that sample arrived; 0: never.
    pub arrived_ms: i64,
    /// Why the agent could not read them since that sample (its stats read
    /// failed); `None` once a later sample arrives.
    pub error: Option<Arc<str>>,
}

/// Everything the collector knows about one node.
#[derive(Debug)]
pub struct Node {
    /// Identity from the latest Hello (shared with the view's copies).
    pub identity: Arc<Identity>,
    /// The open stream feeding this node, if any.
    owner: Option<Owner>,
    /// Collector clock (Unix ms) when the last frame arrived; 0: never.
    pub last_seen_ms: i64,
    /// Highest batch seq stored for `identity.instance_id`.
    pub last_seq: u64,
    /// Points at or before this time (Unix ms) from the current instance
    /// are dropped: they overlap the previous instance's data.
    pub takeover_ms: i64,
    /// Removed from the store (forgotten): readers drop it.
    pub forgotten: bool,
    /// Every series, in the order they first arrived: an index into this
    /// vector never changes, so a stream resolves each of its series ids
    /// once and stores points by index.
    series: Vec<Series>,
    /// The series' identities, by the same index.
    keys: Vec<Arc<SeriesKey>>,
    /// Index of each series by identity (sorted).
    index: BTreeMap<Arc<SeriesKey>, u32>,
    /// Latest result per check name.
    pub checks: BTreeMap<String, StoredCheck>,
    /// Latest slow-changing state (e.g. `db_role`), replaced whole by a
    /// batch that carries any.
    pub facts: Arc<Vec<Label>>,
    /// Latest HAProxy backend servers (LB nodes).
    pub backends: Backends,
    /// The latest value of every series that has a slot, kept here as it
    /// arrives so that the fleet view copies a few dozen numbers instead of
    /// walking every series.
    pub values: Vec<SlotValue>,
    /// The recent seconds of every access-log source, per class.
    pub sources: Vec<SourceSeconds>,
    /// The total-CPU series, for the sparkline.
    cpu_index: Option<u32>,
}

impl Node {
    fn new(identity: Identity) -> Self {
        Self {
            identity: Arc::new(identity),
            owner: None,
            last_seen_ms: 0,
            last_seq: 0,
            takeover_ms: 0,
            forgotten: false,
            series: Vec::new(),
            keys: Vec::new(),
            index: BTreeMap::new(),
            checks: BTreeMap::new(),
            facts: Arc::default(),
            backends: Backends::default(),
            values: Vec::new(),
            sources: Vec::new(),
            cpu_index: None,
        }
    }

    /// Every series with its identity, sorted by identity.
    pub fn series(&self) -> impl Iterator<Item = (&Arc<SeriesKey>, &Series)> {
        self.index
            .iter()
            .map(|(key, &i)| (key, &self.series[i as usize]))
    }

    /// Every series with its identity, in arrival order, mutable: for the
    /// tiers' roll-up bookkeeping ([`crate::tiers`]), not for points.
    pub fn series_mut(&mut self) -> impl Iterator<Item = (&Arc<SeriesKey>, &mut Series)> {
        self.keys.iter().zip(self.series.iter_mut())
    }

    /// The series `key`, if the node has it.
    pub fn series_of(&self, key: &SeriesKey) -> Option<&Series> {
        let i = *self.index.get(key)?;
        self.series.get(i as usize)
    }

    /// The total-CPU series, if the node reports one.
    pub fn cpu_series(&self) -> Option<&Series> {
        self.series.get(self.cpu_index? as usize)
    }

    /// Points of full-resolution history the node's series hold, and the
    /// heap bytes holding them (the compressed chunks).
    pub fn history_footprint(&self) -> (usize, usize) {
        self.series
            .iter()
            .fold((0, 0), |(p, b), s| (p + s.len(), b + s.heap_bytes()))
    }

    /// How many series the node has.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// True while an agent stream is open for this node.
    pub fn connected(&self) -> bool {
        self.owner.is_some()
    }
}

/// One node in the store: its change stamp, readable without the lock,
/// and the node itself.
#[derive(Debug)]
pub struct NodeEntry {
    /// Small number of the entry, unique in this store, for readers that
    /// keep per-node state in a vector.
    id: u32,
    /// Global version at the node's last change (see the module docs).
    changed: AtomicU64,
    /// Whether the entry is in the store's list of changed nodes.
    queued: AtomicBool,
    /// The node; locked briefly per batch and per copy.
    node: Mutex<Node>,
}

impl NodeEntry {
    /// The entry's number.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Takes the entry off the changed list's books: a later change queues
    /// it again. Call before copying it.
    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }

    /// The global version at this node's last change.
    pub fn changed_at(&self) -> u64 {
        self.changed.load(Ordering::Acquire)
    }

    /// Locks the node. Keep the guard short and never across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Node> {
        lock(&self.node)
    }
}

/// A point resolved against the stream's series definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPoint<'a> {
    /// The series the point belongs to.
    pub key: &'a SeriesKey,
    /// Unix ms of the value.
    pub timestamp_ms: i64,
    /// The (finite) value.
    pub value: f64,
}

/// What a batch reports besides points: check results and node state.
///
/// Empty `facts` or `backends` mean "unchanged" (the contract sends each
/// whole when it has news), so they never clear what the node holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reported {
    /// Check results, each replacing the latest result of its name.
    pub checks: Vec<CheckResult>,
    /// The node's facts, whole; empty: unchanged.
    pub facts: Vec<Label>,
    /// The node's backend servers, whole; empty: no new sample.
    pub backends: Vec<BackendServer>,
    /// Why the LB's stats could not be read, when that happened since the
    /// last sample: the backends are unknown until the next sample.
    pub backends_error: Option<String>,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored; the cumulative ack is `seq`.
    Stored {
        /// Highest stored seq (the batch's).
        seq: u64,
        /// Points dropped because the node hit [`MAX_SERIES_PER_NODE`].
        dropped_points: usize,
        /// Points dropped because they are not later than a takeover of
        /// the node by this instance ([`Node::takeover_ms`]).
        overlapping_points: usize,
    },
    /// Already held: not re-applied; the cumulative ack is `seq`.
    Duplicate {
        /// Highest stored seq (at least the batch's).
        seq: u64,
    },
}

/// A stream's hold on a node, returned by [`Store::attach`].
#[derive(Debug, Clone)]
pub struct NodeHandle {
    name: String,
    generation: u64,
    node: Arc<NodeEntry>,
}

impl NodeHandle {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The result of a successful Hello.
#[derive(Debug)]
pub struct Attached {
    /// The stream's hold on its node.
    pub handle: NodeHandle,
    /// Highest seq already stored for this instance (0: none).
    pub resume_after_seq: u64,
}

/// The fleet in memory. See the module docs for locking and versioning.
#[derive(Debug)]
pub struct Store {
    /// Nodes by name; write-locked only to add a node.
    nodes: RwLock<BTreeMap<String, Arc<NodeEntry>>>,
    /// Global change counter; taken while holding the changed node's lock.
    version: AtomicU64,
    /// Nodes changed since the fleet view last took this list: so that it
    /// copies them without scanning the whole fleet.
    changed_list: Mutex<Vec<Arc<NodeEntry>>>,
    /// Source of entry numbers.
    next_id: AtomicU32,
    /// Publishes the newest version to watchers (never blocks).
    changed: watch::Sender<u64>,
    /// Source of stream generations.
    generations: AtomicU64,
    /// History window in ms.
    window_ms: i64,
    /// Hard cap on points per series.
    max_points: usize,
    /// Metric names alert rules read: their latest values are kept ready
    /// for the fleet view like the summary's.
    watched: Vec<String>,
    /// What ingest skipped, by reason.
    skipped: IngestCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a node lock must not take the whole fleet down;
    // the data is plain values, so keep going with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// An empty store keeping `history` of full-resolution points, that
    /// keeps the latest values of the metrics named in `watched` ready for
    /// alert rules.
    pub fn watching(history: Duration, watched: Vec<String>) -> Self {
        Self {
            watched,
            ..Self::new(history)
        }
    }

    /// An empty store keeping `history` of full-resolution points.
    pub fn new(history: Duration) -> Self {
        let window_ms = i64::try_from(history.as_millis()).unwrap_or(i64::MAX / 2);
        // Four points per second on average over the window, at least 1,000:
        // ample for a 1 s agent, a bound for a misbehaving one.
        let max_points = usize::try_from(window_ms / 250)
            .unwrap_or(usize::MAX)
            .max(1_000);
        Self {
            nodes: RwLock::new(BTreeMap::new()),
            version: AtomicU64::new(0),
            changed_list: Mutex::new(Vec::new()),
            next_id: AtomicU32::new(0),
            changed: watch::channel(0).0,
            generations: AtomicU64::new(0),
            window_ms,
            skipped: IngestCounters::default(),
            max_points,
            watched: Vec::new(),
        }
    }

    /// A receiver that sees the newest fleet version whenever it changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The current fleet version.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Stamps `entry` as changed. Call with its node locked (so a copy
    /// taken under the lock sees the stamp with the data); then, after
    /// unlocking, call [`Store::publish`].
    fn touch(&self, entry: &Arc<NodeEntry>) -> u64 {
        let v = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        entry.changed.store(v, Ordering::Release);
        if !entry.queued.swap(true, Ordering::AcqRel) {
            lock(&self.changed_list).push(entry.clone());
        }
        v
    }

    /// The nodes changed since the last call (each once). Call
    /// [`NodeEntry::unqueue`] on each before copying it.
    pub fn take_changed(&self) -> Vec<Arc<NodeEntry>> {
        std::mem::take(&mut *lock(&self.changed_list))
    }

    /// How many nodes the store holds.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn publish(&self, version: u64) {
        self.changed.send_if_modified(|current| {
            if version > *current {
                *current = version;
                true
            } else {
                false
            }
        });
    }

    /// The nodes by name, read-locked: hold the guard briefly (it blocks
    /// only the arrival of new nodes).
    pub fn entries(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<NodeEntry>>> {
        self.nodes.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the named node, locked.
    pub fn with_node<T>(&self, name: &str, f: impl FnOnce(&Node) -> T) -> Result<T> {
        let entry = self.entries().get(name).cloned();
        let entry = entry.ok_or_else(|| StoreError::UnknownNode(name.to_string()))?;
        Ok(f(&entry.lock()))
    }

    /// Registers a stream for the node named in `identity`.
    ///
    /// - A live stream of a *different* instance holds the name: refused
    ///   with [`StoreError::NameTaken`], unless that stream has been silent
    ///   for more than 3 intervals (the node is down; a half-dead connection
    ///   must not lock a restarted agent out until TCP gives up).
    /// - The same instance reconnecting replaces its old stream: the old
    ///   stream's token is cancelled and its writes are refused from now on.
    /// - A new instance taking over a name starts from seq 0 and drops the
    ///   previous instance's check results; series history is kept.
    pub fn attach(
        &self,
        identity: Identity,
        cancel: CancellationToken,
        now_ms: i64,
    ) -> Result<Attached> {
        let name = identity.name.clone();
        let node = {
            let existing = self.entries().get(&name).cloned();
            match existing {
                Some(node) => node,
                None => {
                    let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
                    nodes
                        .entry(name.clone())
                        .or_insert_with(|| {
                            Arc::new(NodeEntry {
                                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                                changed: AtomicU64::new(0),
                                queued: AtomicBool::new(false),
                                node: Mutex::new(Node::new(identity.clone())),
                            })
                        })
                        .clone()
                }
            }
        };
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let (version, resume_after_seq) = {
            let mut n = node.lock();
            let same_instance = n.identity.instance_id == identity.instance_id;
            if n.owner.is_some()
                && !same_instance
                && !health::is_silent(n.last_seen_ms, n.identity.interval_ms, now_ms)
            {
                return Err(StoreError::NameTaken { node: name });
            }
            if let Some(old) = n.owner.take() {
                old.cancel.cancel();
            }
            if !same_instance {
                n.last_seq = 0;
                n.checks.clear();
                // What the new instance sends from before this moment
                // overlaps the previous one's data (a refused duplicate's
                // backlog): it is kept out of the series.
                n.takeover_ms = n
                    .series
                    .iter()
                    .filter_map(|s| s.latest().map(|(ts, _)| ts))
                    .max()
                    .unwrap_or(0);
            }
            if *n.identity != identity {
                n.identity = Arc::new(identity);
            }
            n.owner = Some(Owner { generation, cancel });
            n.last_seen_ms = now_ms;
            let resume = n.last_seq;
            (self.touch(&node), resume)
        };
        self.publish(version);
        Ok(Attached {
            handle: NodeHandle {
                name,
                generation,
                node,
            },
            resume_after_seq,
        })
    }

    /// Applies one batch to a locked node (its owner already checked).
    fn apply_locked(
        &self,
        n: &mut Node,
        seq: u64,
        points: &[ResolvedPoint<'_>],
        hints: &[&Cell<Option<u32>>],
        reported: Reported,
        now_ms: i64,
    ) -> Applied {
        if seq <= n.last_seq {
            Applied::Duplicate { seq: n.last_seq }
        } else {
            let (dropped_points, overlapping_points) = self.store_points(n, points, hints, now_ms);
            let Reported {
                checks,
                mut facts,
                mut backends,
                backends_error,
            } = reported;
            for check in checks {
                if n.checks.len() < MAX_CHECKS_PER_NODE || n.checks.contains_key(&check.name) {
                    let stored = StoredCheck {
                        result: Arc::new(check),
                        arrived_ms: now_ms,
                    };
                    n.checks.insert(stored.result.name.clone(), stored);
                }
            }
            if !facts.is_empty() {
                facts.truncate(MAX_FACTS_PER_NODE);
                n.facts = Arc::new(facts);
            }
            if !backends.is_empty() {
                backends.truncate(MAX_BACKENDS_PER_NODE);
                n.backends = Backends {
                    servers: Arc::new(backends),
                    arrived_ms: now_ms,
                    error: None,
                };
            } else if let Some(error) = backends_error {
                n.backends.error = Some(error.into());
            }
            n.last_seq = seq;
            Applied::Stored {
                seq,
                dropped_points,
                overlapping_points,
            }
        }
    }

    /// Replays one journaled batch of `identity` at start, before any agent
    /// connects: the node is known (and down until it speaks), its series
    /// and checks are as they were, and its instance resumes after `seq`.
    pub fn replay(
        &self,
        identity: &Identity,
        seq: u64,
        points: &[ResolvedPoint<'_>],
        reported: Reported,
        arrived_ms: i64,
    ) {
        let node = {
            let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
            nodes
                .entry(identity.name.clone())
                .or_insert_with(|| {
                    Arc::new(NodeEntry {
                        id: self.next_id.fetch_add(1, Ordering::Relaxed),
                        changed: AtomicU64::new(0),
                        queued: AtomicBool::new(false),
                        node: Mutex::new(Node::new(identity.clone())),
                    })
                })
                .clone()
        };
        let version = {
            let mut n = node.lock();
            if n.identity.instance_id != identity.instance_id {
                // A takeover, as when it happened.
                n.last_seq = 0;
                n.checks.clear();
                n.takeover_ms = n
                    .series
                    .iter()
                    .filter_map(|s| s.latest().map(|(ts, _)| ts))
                    .max()
                    .unwrap_or(0);
            }
            if *n.identity != *identity {
                n.identity = Arc::new(identity.clone());
            }
            let _ = self.apply_locked(&mut n, seq, points, &[], reported, arrived_ms);
            n.last_seen_ms = arrived_ms;
            self.touch(&node)
        };
        self.publish(version);
    }

    /// Forgets node `name`: it leaves the fleet (its stream, if any, is
    /// ended); a later Hello makes it new again.
    pub fn forget(&self, name: &str) -> Result<()> {
        let entry = self
            .nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| StoreError::UnknownNode(name.to_string()))?;
        let version = {
            let mut n = entry.lock();
            if let Some(owner) = n.owner.take() {
                owner.cancel.cancel();
            }
            n.forgotten = true;
            self.touch(&entry)
        };
        self.publish(version);
        Ok(())
    }

    /// The nodes without a stream that have been silent since before
    /// `silent_since_ms` (never seen counts as silent since 0).
    pub fn silent_since(&self, silent_since_ms: i64) -> Vec<String> {
        self.entries()
            .iter()
            .filter(|(_, e)| {
                let n = e.lock();
                n.owner.is_none() && n.last_seen_ms < silent_since_ms
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Declares a node that should exist: known (and `down`) before it
    /// ever connects. Nothing changes for a node already known.
    pub fn expect(&self, name: &str) {
        let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
        if nodes.contains_key(name) {
            return;
        }
        let entry = Arc::new(NodeEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            changed: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            node: Mutex::new(Node::new(Identity {
                name: name.to_string(),
                ..Identity::default()
            })),
        });
        nodes.insert(name.to_string(), entry.clone());
        drop(nodes);
        let version = self.touch(&entry);
        self.publish(version);
    }

    /// Whether batch `seq` from the stream holding `handle` would be stored
    /// (not a duplicate); refuses a seq no agent could have reached.
    pub fn is_new(&self, handle: &NodeHandle, seq: u64) -> Result<bool> {
        let n = handle.node.lock();
        if n.owner.as_ref().map(|o| o.generation) != Some(handle.generation) {
            return Err(StoreError::Replaced {
                node: handle.name.clone(),
            });
        }
        if seq > MAX_SEQ || (n.last_seq > 0 && seq - n.last_seq.min(seq) > MAX_SEQ_JUMP) {
            return Err(StoreError::SeqJump {
                node: handle.name.clone(),
                seq,
                held: n.last_seq,
            });
        }
        Ok(seq > n.last_seq)
    }

    /// Stores one batch from the stream holding `handle`.
    ///
    /// Every frame counts as a sign of life. A batch whose `seq` is not
    /// above the highest stored one is a duplicate: acknowledged, not
    /// re-applied.
    pub fn apply(
        &self,
        handle: &NodeHandle,
        seq: u64,
        points: &[ResolvedPoint<'_>],
        reported: Reported,
        now_ms: i64,
    ) -> Result<Applied> {
        self.apply_hinted(handle, seq, points, &[], reported, now_ms)
    }

    /// [`Store::apply`] for a stream that remembers where its series are:
    /// `hints[i]` (when present) is the node's index of `points[i]`'s series,
    /// filled in here the first time and trusted afterwards. A stream
    /// writes to one node only and a node never drops or reorders a series,
    /// so an index once found stays right.
    pub fn apply_hinted(
        &self,
        handle: &NodeHandle,
        seq: u64,
        points: &[ResolvedPoint<'_>],
        hints: &[&Cell<Option<u32>>],
        reported: Reported,
        now_ms: i64,
    ) -> Result<Applied> {
        let (version, applied) = {
            let mut n = handle.node.lock();
            if n.owner.as_ref().map(|o| o.generation) != Some(handle.generation) {
                return Err(StoreError::Replaced {
                    node: handle.name.clone(),
                });
            }
            if seq > MAX_SEQ || (n.last_seq > 0 && seq - n.last_seq.min(seq) > MAX_SEQ_JUMP) {
                return Err(StoreError::SeqJump {
                    node: handle.name.clone(),
                    seq,
                    held: n.last_seq,
                });
            }
            n.last_seen_ms = now_ms;
            let applied = self.apply_locked(&mut n, seq, points, hints, reported, now_ms);
            (self.touch(&handle.node), applied)
        };
        self.publish(version);
        Ok(applied)
    }

    fn store_points(
        &self,
        n: &mut Node,
        points: &[ResolvedPoint<'_>],
        hints: &[&Cell<Option<u32>>],
        now_ms: i64,
    ) -> (usize, usize) {
        let mut dropped = 0;
        let mut overlapping = 0;
        let takeover_ms = n.takeover_ms;
        let Node {
            series: all,
            keys,
            index,
            values,
            sources,
            cpu_index,
            ..
        } = n;
        for (at, p) in points.iter().enumerate() {
            if p.timestamp_ms <= takeover_ms {
                overlapping += 1;
                continue;
            }
            let hint = hints.get(at);
            let known = hint
                .and_then(|h| h.get())
                .filter(|&i| (i as usize) < all.len())
                .or_else(|| index.get(p.key).copied());
            let i = match known {
                Some(i) => i,
                None if all.len() >= MAX_SERIES_PER_NODE => {
                    dropped += 1;
                    continue;
                }
                None => {
                    let key = Arc::new(p.key.clone());
                    let watched = self.watched.contains(&key.name);
                    let slot = match Slot::of(&key) {
                        Slot::Other if watched => Slot::Watched,
                        slot => slot,
                    };
                    let mut series = Series::with_slot(slot);
                    if series.slot != Slot::Other {
                        series.value_index = u16::try_from(values.len()).ok();
                        values.push(SlotValue {
                            slot: series.slot.clone(),
                            key: watched.then(|| key.clone()),
                            timestamp_ms: 0,
                            value: 0.0,
                            updated_ms: 0,
                        });
                    }
                    let i = all.len() as u32;
                    if series.slot == Slot::Cpu {
                        *cpu_index = Some(i);
                    }
                    all.push(series);
                    keys.push(key.clone());
                    index.insert(key, i);
                    i
                }
            };
            if let Some(h) = hint {
                h.set(Some(i));
            }
            debug_assert_eq!(*keys[i as usize], *p.key, "a stale series hint");
            let series = &mut all[i as usize];
            series.push(p.timestamp_ms, p.value, self.window_ms, self.max_points);
            series.touch(now_ms);
            if let (Some(v), Some((ts, value))) = (series.value_index, series.latest())
                && let Some(v) = values.get_mut(usize::from(v))
            {
                v.timestamp_ms = ts;
                v.value = value;
                v.updated_ms = now_ms;
            }
            if let Slot::Requests { source, class } = &series.slot {
                let at = match sources.iter().position(|s| s.source == *source) {
                    Some(at) => at,
                    None => {
                        sources.push(SourceSeconds::new(source.clone()));
                        sources.len() - 1
                    }
                };
                sources[at].record(*class, p.timestamp_ms, p.value, now_ms);
            }
        }
        (dropped, overlapping)
    }

    /// Ends the stream holding `handle`: the node stays known, disconnected.
    /// Does nothing if the stream was already replaced.
    pub fn detach(&self, handle: &NodeHandle) {
        let version = {
            let mut n = handle.node.lock();
            if n.owner.as_ref().map(|o| o.generation) != Some(handle.generation) {
                return;
            }
            n.owner = None;
            self.touch(&handle.node)
        };
        self.publish(version);
    }

    /// History window in ms.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Adds one batch's skipped parts to the collector's counters.
    pub fn count_skipped(&self, s: &Skipped) {
        let c = &self.skipped;
        let add = |counter: &AtomicU64, n: usize| {
            if n > 0 {
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        };
        add(&c.refused_defs, s.refused_defs);
        add(&c.undefined, s.undefined);
        add(&c.non_finite, s.non_finite);
        add(&c.out_of_range, s.out_of_range);
        add(&c.negative, s.negative);
        add(&c.future, s.future);
        add(&c.too_old, s.too_old);
        add(&c.overlapping, s.overlapping);
    }

    /// Everything ingest skipped since start, by reason.
    pub fn skipped(&self) -> Skipped {
        self.skipped.get()
    }

    /// Counts a batch refused whole (too many points, too many a second).
    pub fn count_refused_batch(&self) {
        self.skipped.refused_batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Batches refused whole since start.
    pub fn refused_batches(&self) -> u64 {
        self.skipped.refused_batches.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn identity(name: &str, instance: &str) -> Identity {
        Identity {
            name: name.into(),
            instance_id: instance.into(),
            roles: vec![Role::Web],
            interval_ms: 1_000,
            ..Identity::default()
        }
    }

    fn cpu() -> SeriesKey {
        SeriesKey::new("node_cpu_usage_ratio", &[])
    }

    fn point(key: &SeriesKey, ts: i64, value: f64) -> ResolvedPoint<'_> {
        ResolvedPoint {
            key,
            timestamp_ms: ts,
            value,
        }
    }

    #[test]
    fn series_keys_ignore_label_order() {
        let a = SeriesKey::new("m", &[Label::new("b", "2"), Label::new("a", "1")]);
        let b = SeriesKey::new("m", &[Label::new("a", "1"), Label::new("b", "2")]);
        assert_eq!(a, b);
        assert_eq!(a.label("b"), Some("2"));
    }

    #[test]
    fn second_instance_is_refused_while_first_is_live() {
        let store = Store::new(Duration::from_secs(60));
        let first = store
            .attach(identity("web1", "a"), CancellationToken::new(), NOW)
            .unwrap();
        let err = store
            .attach(identity("web1", "b"), CancellationToken::new(), NOW + 10)
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::NameTaken {
                node: "web1".into()
            }
        );
        // The first stream still writes.
        let key = cpu();
        store
            .apply(
                &first.handle,
                1,
                &[point(&key, NOW, 0.5)],
                Reported::default(),
                NOW + 20,
            )
            .unwrap();
        // Once the holder is silent for > 3 intervals, the name can be taken.
        let second = store
            .attach(identity("web1", "b"), CancellationToken::new(), NOW + 5_000)
            .unwrap();
        assert_eq!(second.resume_after_seq, 0);
        assert!(matches!(
            store.apply(&first.handle, 2, &[], Reported::default(), NOW + 5_001),
            Err(StoreError::Replaced { .. })
        ));
    }

    #[test]
    fn same_instance_replaces_its_stream_and_resumes() {
        let store = Store::new(Duration::from_secs(60));
        let old_cancel = CancellationToken::new();
        let first = store
            .attach(identity("db1", "a"), old_cancel.clone(), NOW)
            .unwrap();
        let key = cpu();
        for seq in 1..=3 {
            store
                .apply(
                    &first.handle,
                    seq,
                    &[point(&key, NOW, 0.1)],
                    Reported::default(),
                    NOW,
                )
                .unwrap();
        }
        let second = store
            .attach(identity("db1", "a"), CancellationToken::new(), NOW + 1)
            .unwrap();
        assert_eq!(second.resume_after_seq, 3);
        assert!(old_cancel.is_cancelled());
        // Late frames of the old stream are refused...
        assert!(
            store
                .apply(&first.handle, 4, &[], Reported::default(), NOW)
                .is_err()
        );
        // ...and its end does not disconnect the node.
        store.detach(&first.handle);
        assert!(store.with_node("db1", Node::connected).unwrap());
        // Duplicates are acknowledged, not re-applied.
        assert_eq!(
            store
                .apply(&second.handle, 2, &[], Reported::default(), NOW)
                .unwrap(),
            Applied::Duplicate { seq: 3 }
        );
        store.detach(&second.handle);
        assert!(!store.with_node("db1", Node::connected).unwrap());
    }

    #[test]
    fn history_is_pruned_by_age() {
        let store = Store::new(Duration::from_secs(10));
        let h = store
            .attach(identity("n", "a"), CancellationToken::new(), NOW)
            .unwrap()
            .handle;
        let key = cpu();
        for i in 0..30 {
            let ts = NOW + i * 1_000;
            store
                .apply(
                    &h,
                    i as u64 + 1,
                    &[point(&key, ts, 0.5)],
                    Reported::default(),
                    ts,
                )
                .unwrap();
        }
        let held = store
            .with_node("n", |n| n.series_of(&key).unwrap().points_since(0).count())
            .unwrap();
        assert_eq!(held, 11);
    }

    #[test]
    fn changes_stamp_the_entry_and_publish_the_version() {
        let store = Store::new(Duration::from_secs(60));
        let mut rx = store.subscribe();
        let h = store
            .attach(identity("n", "a"), CancellationToken::new(), NOW)
            .unwrap()
            .handle;
        assert!(rx.has_changed().unwrap());
        let seen = *rx.borrow_and_update();
        let entry = store.entries().get("n").cloned().unwrap();
        assert_eq!(entry.changed_at(), seen);
        store.apply(&h, 1, &[], Reported::default(), NOW).unwrap();
        assert!(rx.has_changed().unwrap());
        assert!(entry.changed_at() > seen);
        assert_eq!(entry.changed_at(), store.version());
    }

    #[test]
    fn a_failed_stats_read_marks_backends_until_the_next_sample() {
        let store = Store::new(Duration::from_secs(60));
        let h = store
            .attach(identity("lb", "a"), CancellationToken::new(), NOW)
            .unwrap()
            .handle;
        let sample = Reported {
            backends: vec![BackendServer {
                server: "web1".into(),
                status: "UP".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        store.apply(&h, 1, &[], sample.clone(), NOW).unwrap();
        let failed = Reported {
            backends_error: Some("connection refused".into()),
            ..Default::default()
        };
        store.apply(&h, 2, &[], failed, NOW + 1).unwrap();
        let (servers, error) = store
            .with_node("lb", |n| {
                (n.backends.servers.len(), n.backends.error.clone())
            })
            .unwrap();
        assert_eq!(servers, 1, "the last sample is kept, marked");
        assert_eq!(error.as_deref(), Some("connection refused"));
        store.apply(&h, 3, &[], sample, NOW + 2).unwrap();
        let error = store.with_node("lb", |n| n.backends.error.clone()).unwrap();
        assert_eq!(error, None);
    }

    #[test]
    fn unknown_node_is_an_error() {
        let store = Store::new(Duration::from_secs(60));
        assert_eq!(
            store.with_node("nope", |_| ()).unwrap_err(),
            StoreError::UnknownNode("nope".into())
        );
    }
}
