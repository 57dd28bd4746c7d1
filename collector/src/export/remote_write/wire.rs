//! The remote_write 1.0 request body: a `prometheus.WriteRequest`
//! (protobuf, messages compiled from `proto/remote_write.proto` by
//! build.rs) compressed as one snappy block (not the framed format), as
//! the specification requires.
//!
//! Samples of one series are grouped into one `TimeSeries`, in timestamp
//! order, and every label set is sorted by name with `__name__` among
//! them (receivers may insist on both).
//!
//! A destination never gets a sample of a series that is not newer than
//! the last one it was sent ([`Sequencer`]): the collector's history
//! accepts late points (a clock stepping back, a node name taken over),
//! but Prometheus answers a request holding one with 400 and appends none
//! of it, so one late point would cost a whole request of other nodes'
//! samples.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;
use std::sync::Arc;

use prost::Message;

use super::super::labels;
use super::super::tap::TapBatch;
use crate::store::SeriesKey;

/// The generated messages (package `prometheus`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod prompb {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

pub use prompb::{Label, Sample, TimeSeries, WriteRequest};

/// `Content-Type` of a remote_write 1.0 body.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Encoding` of a remote_write 1.0 body.
pub const CONTENT_ENCODING: &str = "snappy";
/// The `X-Prometheus-Remote-Write-Version` header's name.
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// Its value for 1.0 (the specification keeps the old number).
pub const VERSION: &str = "0.1.0";

/// Why a body could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not one valid snappy block.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// Not a `WriteRequest`.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// One request's worth of samples: slices of stored batches.
pub type Chunk = (Arc<TapBatch>, Range<usize>);

/// The newest timestamp sent to one destination, per node and series.
#[derive(Debug, Default)]
pub struct Sequencer {
    last: HashMap<String, HashMap<Arc<SeriesKey>, i64>>,
}

impl Sequencer {
    /// Keeps the samples of `node`'s series `key` (sorted by time, no
    /// time twice) that are newer than the last one sent, and remembers
    /// the newest; returns how many were left out.
    fn admit(&mut self, node: &str, key: &Arc<SeriesKey>, samples: &mut Vec<Sample>) -> usize {
        let Some(newest) = samples.last().map(|s| s.timestamp) else {
            return 0;
        };
        let series = match self.last.get_mut(node) {
            Some(series) => series,
            None => self.last.entry(node.to_string()).or_default(),
        };
        let before = samples.len();
        match series.entry(key.clone()) {
            Entry::Occupied(mut last) => {
                let after = *last.get();
                samples.retain(|s| s.timestamp > after);
                last.insert(after.max(newest));
            }
            Entry::Vacant(v) => {
                v.insert(newest);
            }
        }
        before - samples.len()
    }

    /// Forgets series whose newest sample sent is older than `ms` (they
    /// went away; a receiver would refuse anything that old anyway).
    pub fn forget_before(&mut self, ms: i64) {
        for series in self.last.values_mut() {
            series.retain(|_, &mut last| last >= ms);
        }
        self.last.retain(|_, series| !series.is_empty());
    }

    /// Series remembered.
    pub fn len(&self) -> usize {
        self.last.values().map(HashMap::len).sum()
    }

    /// True when no series is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// The `WriteRequest` carrying the samples of `chunks` that `sequencer`
/// admits, and how many it left out (not newer than what was sent).
pub fn write_request(chunks: &[Chunk], sequencer: &mut Sequencer) -> (WriteRequest, usize) {
    let mut by_series: HashMap<(&str, &SeriesKey), usize> = HashMap::new();
    let mut roles: HashMap<&str, String> = HashMap::new();
    let mut timeseries: Vec<TimeSeries> = Vec::new();
    let mut identities: Vec<(&str, &Arc<SeriesKey>)> = Vec::new();
    for (batch, range) in chunks {
        let node = batch.node.name.as_str();
        for sample in &batch.samples[range.clone()] {
            let at = *by_series.entry((node, &*sample.key)).or_insert_with(|| {
                let role = roles
                    .entry(node)
                    .or_insert_with(|| labels::roles_value(&batch.node.roles));
                timeseries.push(TimeSeries {
                    labels: series_labels(node, role, &sample.key),
                    samples: Vec::new(),
                });
                identities.push((node, &sample.key));
                timeseries.len() - 1
            });
            timeseries[at].samples.push(Sample {
                value: sample.value,
                timestamp: sample.timestamp_ms,
            });
        }
    }
    let mut left_out = 0;
    for (series, (node, key)) in timeseries.iter_mut().zip(identities) {
        series.samples.sort_by_key(|s| s.timestamp);
        let before = series.samples.len();
        series.samples.dedup_by_key(|s| s.timestamp);
        left_out += before - series.samples.len();
        left_out += sequencer.admit(node, key, &mut series.samples);
    }
    timeseries.retain(|s| !s.samples.is_empty());
    (WriteRequest { timeseries }, left_out)
}

/// The labels of one series as remote_write sends them: `__name__` and
/// [`labels::series_labels`], sorted by name.
fn series_labels(node: &str, role: &str, key: &SeriesKey) -> Vec<Label> {
    let mut out: Vec<Label> = labels::series_labels(node, role, key)
        .into_iter()
        .map(|(name, value)| Label { name, value })
        .collect();
    out.push(Label {
        name: labels::METRIC_NAME.into(),
        value: labels::metric_name(&key.name).into_owned(),
    });
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `request` as a remote_write body: protobuf, then one snappy block.
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    // Compressing a buffer in memory fails only when it is larger than
    // snappy's 4 GiB limit, which a request of at most `batch` samples
    // never is.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("a remote_write request within snappy's size limit")
}

/// Reads a remote_write body back (tests, and a receiver in the tests).
pub fn decode(body: &[u8]) -> Result<WriteRequest, WireError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tap::Sample as TapSample;
    use crate::store::Identity;
    use stacktop_proto::Role;
    use stacktop_proto::v1::Label as ProtoLabel;

    fn batch(
        node: &str,
        roles: Vec<Role>,
        points: &[(&Arc<SeriesKey>, i64, f64)],
    ) -> Arc<TapBatch> {
        Arc::new(TapBatch {
            node: Arc::new(Identity {
                name: node.into(),
                roles,
                ..Identity::default()
            }),
            samples: points
                .iter()
                .map(|&(key, timestamp_ms, value)| TapSample {
                    key: key.clone(),
                    timestamp_ms,
                    value,
                })
                .collect(),
        })
    }

    fn label_pairs(series: &TimeSeries) -> Vec<(&str, &str)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn a_request_round_trips_through_snappy_and_protobuf() {
        let load = Arc::new(SeriesKey::new("node_load1", &[]));
        let fs = Arc::new(SeriesKey::new(
            "node_filesystem_used_bytes",
            &[ProtoLabel::new("mount", "/var \"log\"")],
        ));
        let web = batch(
            "web1",
            vec![Role::Web, Role::App],
            &[(&load, 2_000, 0.5), (&fs, 2_000, 1e9), (&load, 1_000, 0.25)],
        );
        let db = batch("db1", vec![Role::Db], &[(&load, 1_500, 3.0)]);
        let mut sequencer = Sequencer::default();
        let (request, left_out) = write_request(&[(web.clone(), 0..3), (db, 0..1)], &mut sequencer);
        assert_eq!(left_out, 0);
        let body = encode(&request);
        // A snappy block, not protobuf as it is.
        assert_ne!(body, request.encode_to_vec());
        let back = decode(&body).unwrap();
        assert_eq!(back, request);

        assert_eq!(back.timeseries.len(), 3);
        let web_load = &back.timeseries[0];
        assert_eq!(
            label_pairs(web_load),
            [
                ("__name__", "node_load1"),
                ("node", "web1"),
                ("role", "web,app")
            ]
        );
        // Original timestamps, put in order.
        let samples: Vec<(i64, f64)> = web_load
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value))
            .collect();
        assert_eq!(samples, [(1_000, 0.25), (2_000, 0.5)]);
        assert_eq!(
            label_pairs(&back.timeseries[1]),
            [
                ("__name__", "node_filesystem_used_bytes"),
                ("mount", "/var \"log\""),
                ("node", "web1"),
                ("role", "web,app")
            ]
        );
        assert_eq!(
            label_pairs(&back.timeseries[2]),
            [("__name__", "node_load1"), ("node", "db1"), ("role", "db")]
        );

        // A part of a batch sends only that part.
        let (part, _) = write_request(&[(web, 1..2)], &mut Sequencer::default());
        assert_eq!(part.timeseries.len(), 1);
        assert_eq!(part.timeseries[0].samples[0].value, 1e9);
    }

    #[test]
    fn a_series_never_goes_back_in_time() {
        let load = Arc::new(SeriesKey::new("node_load1", &[]));
        let mut sequencer = Sequencer::default();
        let first = batch("web1", vec![], &[(&load, 2_000, 1.0), (&load, 2_000, 9.0)]);
        let (request, left_out) = write_request(&[(first, 0..2)], &mut sequencer);
        // The same time twice: the first value is kept.
        assert_eq!(left_out, 1);
        assert_eq!(
            request.timeseries[0].samples,
            [Sample {
                value: 1.0,
                timestamp: 2_000
            }]
        );

        let late = batch(
            "web1",
            vec![],
            &[
                (&load, 1_000, 2.0),
                (&load, 2_000, 3.0),
                (&load, 3_000, 4.0),
            ],
        );
        let (request, left_out) = write_request(&[(late, 0..3)], &mut sequencer);
        assert_eq!(left_out, 2);
        assert_eq!(
            request.timeseries[0].samples,
            [Sample {
                value: 4.0,
                timestamp: 3_000
            }]
        );

        // Another node's series of the same name is its own.
        let other = batch("web2", vec![], &[(&load, 1_000, 5.0)]);
        let (request, left_out) = write_request(&[(other, 0..1)], &mut sequencer);
        assert_eq!((left_out, request.timeseries.len()), (0, 1));

        // Nothing left: no empty series in the request.
        let stale = batch("web1", vec![], &[(&load, 500, 6.0)]);
        let (request, left_out) = write_request(&[(stale, 0..1)], &mut sequencer);
        assert_eq!((left_out, request.timeseries.len()), (1, 0));

        assert_eq!(sequencer.len(), 2);
        sequencer.forget_before(2_000);
        assert_eq!(sequencer.len(), 1);
        sequencer.forget_before(10_000);
        assert!(sequencer.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode(b"not snappy"), Err(WireError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(&[0xff, 0xff, 0xff])
            .unwrap();
        assert!(matches!(decode(&not_proto), Err(WireError::Protobuf(_))));
    }
}
