//! Fleet.Watch subscribers for the benchmark: *measuring* ones decode every
//! update and record, for each node change, the time from the sample's
//! timestamp to its arrival; *passive* ones only receive the bytes (a
//! subscriber costs the collector the same either way, and decoding a
//! 10,000-node fleet a hundred times over would measure the benchmark's
//! own CPU instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes};
use hdrhistogram::Histogram;
use stacktop_proto::now_unix_ms;
use stacktop_proto::transport::ClientConfig;
use stacktop_proto::v1::{WatchRequest, fleet_update};
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

/// Shared counters of every watcher.
#[derive(Debug, Default)]
pub struct WatchCounters {
    /// Updates received.
    pub updates: AtomicU64,
    /// Bytes received (encoded messages).
    pub bytes: AtomicU64,
    /// Streams that failed.
    pub errors: AtomicU64,
}

/// A measuring watcher until `stop`; latencies recorded once `record_from_ms`
/// (Unix ms) has passed, into the returned histogram (milliseconds).
pub async fn measure(
    channel: Channel,
    client: ClientConfig,
    counters: Arc<WatchCounters>,
    record_from_ms: i64,
    stop: CancellationToken,
) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000, 3).expect("valid bounds");
    let mut fleet = client.fleet(channel);
    let mut stream = match fleet.watch(WatchRequest {}).await {
        Ok(r) => r.into_inner(),
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return histogram;
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = stream.message() => m,
        };
        let update = match msg {
            Ok(Some(u)) => u,
            Ok(None) => break,
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let now = now_unix_ms();
        counters.updates.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(
            prost::Message::encoded_len(&update) as u64,
            Ordering::Relaxed,
        );
        if now < record_from_ms {
            continue;
        }
        if let Some(fleet_update::Update::Delta(delta)) = update.update {
            for change in delta.changed {
                let summary = match (&change.full, &change.status) {
                    (Some(full), _) => full.summary,
                    (None, Some(status)) => status.summary,
                    _ => None,
                };
                if let Some(ts) = summary.map(|s| s.timestamp_ms).filter(|&ts| ts > 0) {
                    histogram.saturating_record((now - ts).max(1) as u64);
                }
            }
        }
    }
    histogram
}

/// Decodes nothing: hands the message bytes on as they came.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        let len = buf.remaining();
        Ok(Some(buf.copy_to_bytes(len)))
    }
}

impl Codec for RawCodec {
    type Encode = WatchRequest;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<WatchRequest>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(Default::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// A passive watcher until `stop`: receives every update, decodes none.
pub async fn passive(
    channel: Channel,
    client: ClientConfig,
    counters: Arc<WatchCounters>,
    stop: CancellationToken,
) {
    let mut grpc =
        tonic::client::Grpc::new(channel).max_decoding_message_size(client.max_receive_bytes);
    if grpc.ready().await.is_err() {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let path = PathAndQuery::from_static("/stacktop.v1.Fleet/Watch");
    let mut stream = match grpc
        .server_streaming(tonic::Request::new(WatchRequest {}), path, RawCodec)
        .await
    {
        Ok(r) => r.into_inner(),
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = stream.message() => m,
        };
        match msg {
            Ok(Some(bytes)) => {
                counters.updates.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Ok(None) => break,
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
}
