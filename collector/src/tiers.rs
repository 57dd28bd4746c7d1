//! Coarse history: every series rolled up into 10-second buckets kept 6
//! hours and 1-minute buckets kept 7 days, each bucket's min, max and
//! average, on disk (`history.redb` in the data directory).
//!
//! Full resolution lives in memory for `--history` ([`crate::series`]);
//! the tiers are computed *from* it: every [`ROLL_UP_EVERY`] the buckets
//! that gained points since the last roll-up are recomputed from the points
//! in memory and merged into their stored block. A bucket is merged by
//! count (the version that saw more points wins), so recomputing a bucket
//! whose oldest points already left memory never makes it worse, and after
//! a restart (memory rebuilt from the ingest journal) the first roll-up
//! simply redoes what the journal covers. One roll-up is one redb write
//! transaction: one fsync a minute, whatever the fleet's size.
//!
//! Blocks are keyed `(tier, block start, node, series)`, so the retention
//! sweep is one range delete per tier and a read is a point lookup per
//! block. A block holds up to 60 buckets as four [`crate::gorilla`] chunks
//! (min, max, average, count), so a steady series costs a few bits a bucket.
//!
//! Reads ([`Tiers::read`]) serve the part of a History window older than
//! what memory holds, from the finest tier that still covers its start.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::gorilla::{self, Chunk};
use crate::store::{SeriesKey, Store};

/// The file under the data directory.
pub const FILE: &str = "history.redb";

/// Number of coarse tiers.
pub const COUNT: usize = 2;

/// How often buckets are rolled up from memory to disk, at most: a third
/// of `--history` when that is shorter ([`roll_up_every`]), so every point
/// is rolled up before it leaves memory.
pub const ROLL_UP_EVERY: Duration = Duration::from_secs(60);

/// The roll-up period for a full-resolution window of `history`.
pub fn roll_up_every(history: Duration) -> Duration {
    (history / 3).clamp(Duration::from_secs(1), ROLL_UP_EVERY)
}

/// redb's page cache for this file: reads are a few blocks per History
/// request, writes one transaction a minute; redb's default (1 GiB) would
/// only hold pages nobody reads again.
const CACHE_BYTES: usize = 32 << 20;

/// One coarse tier.
#[derive(Debug, Clone, Copy)]
pub struct Tier {
    /// Its name in logs and docs.
    pub name: &'static str,
    /// Bucket width (ms).
    pub step_ms: i64,
    /// How long buckets are kept (ms).
    pub keep_ms: i64,
    /// Buckets per stored block.
    pub per_block: i64,
}

impl Tier {
    /// A stored block's width (ms).
    pub fn block_ms(&self) -> i64 {
        self.step_ms * self.per_block
    }
}

/// The tiers, finest first.
pub const TIERS: [Tier; COUNT] = [
    Tier {
        name: "10s",
        step_ms: 10_000,
        keep_ms: 6 * 3_600_000,
        per_block: 60,
    },
    Tier {
        name: "1m",
        step_ms: 60_000,
        keep_ms: 7 * 24 * 3_600_000,
        per_block: 60,
    },
];

/// `(tier, block start ms, node, series)` -> the block's encoded buckets.
const BLOCKS: TableDefinition<(u8, i64, &str, &str), &[u8]> = TableDefinition::new("blocks");

/// One bucket: the points of one series in `[start_ms, start_ms + step)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket start (Unix ms, a multiple of the step).
    pub start_ms: i64,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Mean of the values.
    pub avg: f32,
    /// How many points it summarizes.
    pub count: u32,
}

/// Buckets of `step_ms` over time-ordered `points`.
pub fn buckets(points: impl IntoIterator<Item = (i64, f64)>, step_ms: i64) -> Vec<Bucket> {
    let mut out: Vec<(Bucket, f64)> = Vec::new();
    for (ts, v) in points {
        let start_ms = ts.div_euclid(step_ms) * step_ms;
        match out.last_mut() {
            Some((b, sum)) if b.start_ms == start_ms => {
                b.min = b.min.min(v as f32);
                b.max = b.max.max(v as f32);
                b.count += 1;
                *sum += v;
            }
            _ => out.push((
                Bucket {
                    start_ms,
                    min: v as f32,
                    max: v as f32,
                    avg: 0.0,
                    count: 1,
                },
                v,
            )),
        }
    }
    out.into_iter()
        .map(|(mut b, sum)| {
            b.avg = (sum / f64::from(b.count)) as f32;
            b
        })
        .collect()
}

/// `old` and `new` buckets (each sorted by start) as one sorted list; for
/// a start in both, the one that summarizes more points (ties: `new`).
pub fn merge(old: Vec<Bucket>, new: &[Bucket]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut old = old.into_iter().peekable();
    for &b in new {
        while let Some(o) = old.next_if(|o| o.start_ms < b.start_ms) {
            out.push(o);
        }
        match old.next_if(|o| o.start_ms == b.start_ms) {
            Some(o) if o.count > b.count => out.push(o),
            _ => out.push(b),
        }
    }
    out.extend(old);
    out
}

/// A block's bytes: four length-prefixed chunks (min, max, avg, count).
pub fn encode_block(buckets: &[Bucket]) -> Vec<u8> {
    let columns: [fn(&Bucket) -> f32; 4] = [|b| b.min, |b| b.max, |b| b.avg, |b| b.count as f32];
    let mut out = Vec::new();
    for column in columns {
        let chunk = gorilla::encode(buckets.iter().map(|b| (b.start_ms, column(b))));
        chunk.write_to(&mut out);
    }
    out
}

/// The buckets in a block's bytes; `None` when they are damaged.
pub fn decode_block(bytes: &[u8]) -> Option<Vec<Bucket>> {
    let mut rest = bytes;
    let mut columns: Vec<Chunk> = Vec::with_capacity(4);
    for _ in 0..4 {
        let (chunk, tail) = Chunk::read_from(rest)?;
        columns.push(chunk);
        rest = tail;
    }
    let n = columns[0].len();
    if columns.iter().any(|c| c.len() != n) {
        return None;
    }
    let mut iters: Vec<_> = columns.iter().map(Chunk::iter).collect();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut next = || {
            iters
                .iter_mut()
                .map(|i| i.next())
                .collect::<Option<Vec<_>>>()
        };
        let row = next()?;
        out.push(Bucket {
            start_ms: row[0].0,
            min: row[0].1,
            max: row[1].1,
            avg: row[2].1,
            count: row[3].1 as u32,
        });
    }
    Some(out)
}

/// How a series is named in a block key: its metric name and labels,
/// unambiguous (label values are quoted and escaped).
pub fn key_text(key: &SeriesKey) -> String {
    let mut out = key.name.clone();
    out.push('{');
    for (i, (k, v)) in key.labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{k}={v:?}"));
    }
    out.push('}');
    out
}

/// Why the tiers could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("history tiers {path}: {source}")]
pub struct TiersError {
    path: PathBuf,
    #[source]
    source: redb::Error,
}

/// The coarse tiers on disk.
#[derive(Debug, Clone)]
pub struct Tiers {
    db: Arc<Database>,
    path: PathBuf,
}

/// What one tier holds on disk ([`Tiers::stats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TierStats {
    /// Stored blocks.
    pub blocks: usize,
    /// Buckets in them.
    pub buckets: usize,
    /// Bytes of their keys and values.
    pub bytes: usize,
}

/// What one roll-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RolledUp {
    /// Blocks written.
    pub blocks: usize,
    /// Blocks whose stored bytes were damaged and rewritten from memory.
    pub damaged: usize,
}

impl Tiers {
    /// Opens (creating) `dir/history.redb`.
    pub fn open(dir: &Path) -> Result<Self, TiersError> {
        let path = dir.join(FILE);
        let fail = |source: redb::Error| TiersError {
            path: path.clone(),
            source,
        };
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| fail(e.into()))?;
        let tx = db.begin_write().map_err(|e| fail(e.into()))?;
        tx.open_table(BLOCKS).map_err(|e| fail(e.into()))?;
        tx.commit().map_err(|e| fail(e.into()))?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// Rolls up every series of `store` (the buckets that gained points
    /// since the last roll-up), then deletes blocks past their tier's
    /// retention at `now_ms`. Blocking: call it off the async runtime.
    pub fn roll_up(&self, store: &Store, now_ms: i64) -> Result<RolledUp, TiersError> {
        let fail = |source: redb::Error| TiersError {
            path: self.path.clone(),
            source,
        };
        let mut pending: Vec<(u8, Arc<str>, String, Vec<Bucket>)> = Vec::new();
        let entries: Vec<_> = store
            .entries()
            .iter()
            .map(|(name, entry)| (Arc::<str>::from(name.as_str()), entry.clone()))
            .collect();
        for (name, entry) in entries {
            let mut node = entry.lock();
            if node.forgotten {
                continue;
            }
            for (key, series) in node.series_mut() {
                for (t, tier) in TIERS.iter().enumerate() {
                    let from = series.rolled_up_ms[t];
                    let new = buckets(series.points_since(from), tier.step_ms);
                    let Some(last) = new.last() else { continue };
                    // The newest bucket may still grow: redo it next time.
                    series.rolled_up_ms[t] = last.start_ms;
                    pending.push((t as u8, name.clone(), key_text(key), new));
                }
            }
        }
        let mut done = RolledUp::default();
        let tx = self.db.begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = tx.open_table(BLOCKS).map_err(|e| fail(e.into()))?;
            for (t, node, series, new) in &pending {
                let tier = TIERS[usize::from(*t)];
                for part in new.chunk_by(|a, b| {
                    a.start_ms.div_euclid(tier.block_ms()) == b.start_ms.div_euclid(tier.block_ms())
                }) {
                    let block = part[0].start_ms.div_euclid(tier.block_ms()) * tier.block_ms();
                    let key = (*t, block, &**node, series.as_str());
                    let old = match table.get(key).map_err(|e| fail(e.into()))? {
                        Some(bytes) => decode_block(bytes.value()).unwrap_or_else(|| {
                            done.damaged += 1;
                            Vec::new()
                        }),
                        None => Vec::new(),
                    };
                    let merged = merge(old, part);
                    table
                        .insert(key, encode_block(&merged).as_slice())
                        .map_err(|e| fail(e.into()))?;
                    done.blocks += 1;
                }
            }
            for (t, tier) in TIERS.iter().enumerate() {
                let cutoff = (now_ms - tier.keep_ms).div_euclid(tier.block_ms()) * tier.block_ms();
                table
                    .retain_in(
                        (t as u8, i64::MIN, "", "")..(t as u8, cutoff, "", ""),
                        |_, _| false,
                    )
                    .map_err(|e| fail(e.into()))?;
            }
        }
        tx.commit().map_err(|e| fail(e.into()))?;
        Ok(done)
    }

    /// The buckets of `node`'s series `key` with starts in `range`, from
    /// the finest tier that still holds `range.start` at `now_ms` (the
    /// coarsest when none does); `(step_ms, buckets)`.
    pub fn read(
        &self,
        node: &str,
        key: &SeriesKey,
        range: Range<i64>,
        now_ms: i64,
    ) -> Result<(i64, Vec<Bucket>), TiersError> {
        let fail = |source: redb::Error| TiersError {
            path: self.path.clone(),
            source,
        };
        let t = TIERS
            .iter()
            .position(|tier| range.start >= now_ms - tier.keep_ms)
            .unwrap_or(COUNT - 1);
        let tier = TIERS[t];
        let start = range.start.max(now_ms - tier.keep_ms);
        let series = key_text(key);
        let tx = self.db.begin_read().map_err(|e| fail(e.into()))?;
        let table = tx.open_table(BLOCKS).map_err(|e| fail(e.into()))?;
        let mut out = Vec::new();
        let mut block = start.div_euclid(tier.block_ms()) * tier.block_ms();
        while block < range.end {
            if let Some(bytes) = table
                .get((t as u8, block, node, series.as_str()))
                .map_err(|e| fail(e.into()))?
                && let Some(buckets) = decode_block(bytes.value())
            {
                out.extend(buckets.into_iter().filter(|b| {
                    b.start_ms >= start.div_euclid(tier.step_ms) * tier.step_ms
                        && b.start_ms < range.end
                }));
            }
            block += tier.block_ms();
        }
        Ok((tier.step_ms, out))
    }

    /// Per tier: blocks, buckets and bytes of keys and values stored (a
    /// full scan: for measurements, not for serving).
    pub fn stats(&self) -> Result<[TierStats; COUNT], TiersError> {
        let fail = |source: redb::Error| TiersError {
            path: self.path.clone(),
            source,
        };
        let tx = self.db.begin_read().map_err(|e| fail(e.into()))?;
        let table = tx.open_table(BLOCKS).map_err(|e| fail(e.into()))?;
        let mut out = [TierStats::default(); COUNT];
        for row in table.iter().map_err(|e| fail(e.into()))? {
            let (key, value) = row.map_err(|e| fail(e.into()))?;
            let (t, _, node, series) = key.value();
            let Some(s) = out.get_mut(usize::from(t)) else {
                continue;
            };
            s.blocks += 1;
            s.buckets += decode_block(value.value()).map_or(0, |b| b.len());
            s.bytes += 1 + 8 + node.len() + series.len() + value.value().len();
        }
        Ok(out)
    }

    /// The file's size on disk, bytes.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

/// Rolls `store` up into `tiers` every `every`, and once more at
/// `shutdown`.
pub async fn keep_rolling_up(
    tiers: Tiers,
    store: Arc<Store>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let (tiers2, store2) = (tiers.clone(), store.clone());
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            tiers2.roll_up(&store2, stacktop_proto::now_unix_ms())
        })
        .await;
        match &result {
            Ok(Ok(done)) => debug!(
                blocks = done.blocks,
                took_ms = started.elapsed().as_millis() as u64,
                "rolled the history up"
            ),
            Ok(Err(err)) => warn!(cause = %err, "cannot roll the history up; retrying"),
            Err(err) => warn!(cause = %err, "the history roll-up failed"),
        }
        if let Ok(Ok(done)) = &result
            && done.damaged > 0
        {
            warn!(
                blocks = done.damaged,
                "history blocks on disk were damaged and rewritten from memory"
            );
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancellationToken;

    const T0: i64 = 1_795_608_000_000;

    fn bucket(start_ms: i64, count: u32, avg: f32) -> Bucket {
        Bucket {
            start_ms,
            min: avg - 1.0,
            max: avg + 1.0,
            avg,
            count,
        }
    }

    #[test]
    fn buckets_summarize_min_max_avg_count() {
        let points = [
            (T0, 1.0),
            (T0 + 5_000, 3.0),
            (T0 + 9_999, 2.0),
            (T0 + 10_000, 7.0),
        ];
        let got = buckets(points, 10_000);
        assert_eq!(
            got,
            [
                Bucket {
                    start_ms: T0,
                    min: 1.0,
                    max: 3.0,
                    avg: 2.0,
                    count: 3
                },
                Bucket {
                    start_ms: T0 + 10_000,
                    min: 7.0,
                    max: 7.0,
                    avg: 7.0,
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn merge_keeps_the_fuller_bucket() {
        let old = vec![bucket(0, 10, 1.0), bucket(10, 10, 2.0), bucket(20, 3, 3.0)];
        let new = [bucket(10, 4, 9.0), bucket(20, 3, 4.0), bucket(30, 1, 5.0)];
        let got = merge(old, &new);
        assert_eq!(
            got,
            [
                bucket(0, 10, 1.0),
                bucket(10, 10, 2.0),
                bucket(20, 3, 4.0),
                bucket(30, 1, 5.0)
            ]
        );
    }

    #[test]
    fn blocks_round_trip_and_damage_is_seen() {
        let bs: Vec<_> = (0..60)
            .map(|i| bucket(T0 + i * 10_000, 10, i as f32))
            .collect();
        let bytes = encode_block(&bs);
        assert_eq!(decode_block(&bytes).unwrap(), bs);
        assert!(decode_block(&bytes[..bytes.len() / 2]).is_none());
        assert!(decode_block(&[]).is_none());
        // A steady series is small: 60 buckets (16 bytes each raw) in
        // about 2.5 bytes each, most of it the four chunk headers.
        let steady: Vec<_> = (0..60).map(|i| bucket(T0 + i * 10_000, 10, 0.5)).collect();
        assert!(
            encode_block(&steady).len() < 200,
            "{}",
            encode_block(&steady).len()
        );
    }

    /// A store with 60 s of full resolution fed one CPU point a second over
    /// `seconds` (value = the second), rolled up into `tiers` every 20 s.
    fn feed(tiers: &Tiers, seconds: Range<i64>) -> (Store, SeriesKey) {
        use crate::store::{Identity, Reported, ResolvedPoint};
        let store = Store::new(Duration::from_secs(60));
        let identity = Identity {
            name: "n".into(),
            instance_id: "i".into(),
            interval_ms: 1_000,
            ..Identity::default()
        };
        let h = store
            .attach(identity, CancellationToken::new(), T0)
            .unwrap()
            .handle;
        let key = SeriesKey::new(stacktop_proto::metrics::CPU_USAGE, &[]);
        for i in seconds {
            let ts = T0 + i * 1_000;
            let p = [ResolvedPoint {
                key: &key,
                timestamp_ms: ts,
                value: i as f64,
            }];
            store
                .apply(&h, i as u64 + 1, &p, Reported::default(), ts)
                .unwrap();
            if i % 20 == 19 {
                tiers.roll_up(&store, ts).unwrap();
            }
        }
        (store, key)
    }

    #[test]
    fn rolled_up_buckets_outlive_memory_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = Tiers::open(dir.path()).unwrap();
        let (store, key) = feed(&tiers, 0..600);
        let now = T0 + 600_000;
        // Memory holds the last minute; the tiers the ten before it.
        let oldest = store
            .with_node("n", |n| n.series_of(&key).unwrap().oldest_ms())
            .unwrap()
            .unwrap();
        assert_eq!(oldest, T0 + 539_000);
        let (step, got) = tiers.read("n", &key, T0..now, now).unwrap();
        assert_eq!(step, 10_000);
        assert_eq!(got.len(), 60);
        for (i, b) in got.iter().enumerate() {
            let first = i as f32 * 10.0;
            assert_eq!(b.start_ms, T0 + i as i64 * 10_000);
            assert_eq!(
                (b.min, b.max, b.avg, b.count),
                (first, first + 9.0, first + 4.5, 10)
            );
        }
        // Far back, only the minute tier covers the start.
        let (step, minutes) = tiers
            .read("n", &key, now - 3 * 86_400_000..now, now)
            .unwrap();
        assert_eq!(step, 60_000);
        assert_eq!(minutes.len(), 10);
        assert_eq!(minutes[0].count, 60);
        // Reopened (a restarted collector), the file serves the same.
        drop(tiers);
        let tiers = Tiers::open(dir.path()).unwrap();
        let (_, again) = tiers.read("n", &key, T0..now, now).unwrap();
        assert_eq!(again, got);
    }

    #[test]
    fn rolling_up_partial_memory_never_makes_a_bucket_worse() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = Tiers::open(dir.path()).unwrap();
        let (_store, key) = feed(&tiers, 0..120);
        let now = T0 + 120_000;
        let (_, before) = tiers.read("n", &key, T0..now, now).unwrap();
        assert_eq!(before[0].count, 10);
        // A restarted collector whose memory holds only seconds 5..9 of the
        // first bucket rolls up: the fuller stored bucket stays.
        let (restarted, _) = feed(&tiers, 5..10);
        tiers.roll_up(&restarted, now).unwrap();
        let (_, after) = tiers.read("n", &key, T0..now, now).unwrap();
        assert_eq!(after, before);
    }

    #[test]
    fn retention_deletes_old_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = Tiers::open(dir.path()).unwrap();
        let (store, key) = feed(&tiers, 0..120);
        let later = T0 + TIERS[0].keep_ms + 2 * TIERS[0].block_ms();
        tiers.roll_up(&store, later).unwrap();
        let (_, ten) = tiers
            .read("n", &key, T0..T0 + 120_000, T0 + 120_000)
            .unwrap();
        assert!(ten.is_empty(), "the 10 s tier is past its 6 h");
        let (step, minutes) = tiers.read("n", &key, T0..T0 + 120_000, later).unwrap();
        assert_eq!((step, minutes.len()), (60_000, 2));
    }

    #[test]
    fn key_text_is_unambiguous() {
        let a = SeriesKey {
            name: "m".into(),
            labels: vec![("a".into(), "1,b=\"2\"".into())],
        };
        let b = SeriesKey {
            name: "m".into(),
            labels: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        };
        assert_ne!(key_text(&a), key_text(&b));
    }
}
