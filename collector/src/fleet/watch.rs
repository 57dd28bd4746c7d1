//! One `Fleet.Watch` stream: the published view as a snapshot, then every
//! published delta, as the bytes the views encoded once for all streams.
//!
//! The task follows the views' broadcast of deltas. Deltas are numbered by
//! generation; the stream sends them in order after its snapshot, about 4
//! a second (one per publication). If the task falls behind (the client
//! reads slowly and the broadcast's backlog overflows) or misses one, it
//! sends a fresh snapshot and goes on from there: a slow reader skips to
//! the newest state and never slows ingest or the other watchers. The
//! outgoing queue holds one message. A stream costs sending, never
//! encoding or evaluating: 100 streams share one encoding of each delta.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, instrument};

use super::view::Views;

/// Serves one Watch stream until the client goes away or shutdown.
/// Each item is an encoded `FleetUpdate`.
#[instrument(skip(views, tx, shutdown))]
pub async fn run(
    views: Arc<Views>,
    tx: mpsc::Sender<Result<Bytes, Status>>,
    shutdown: CancellationToken,
    peer: String,
) {
    let mut deltas = views.subscribe();
    // Published now, so the stream starts at least as new as every batch
    // acknowledged before the call.
    let view = super::publish(&views).await;
    let mut sent = view.generation;
    if !send(&tx, view.encoded_snapshot(), &shutdown).await {
        return;
    }
    drop(view);
    debug!("watcher started");
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            r = deltas.recv() => r,
        };
        let update = match received {
            Ok(d) if d.generation <= sent => continue,
            Ok(d) if d.generation == sent + 1 => {
                sent = d.generation;
                d.encoded.clone()
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {
                let view = views.published();
                debug!(
                    generation = view.generation,
                    "watcher fell behind; sending a snapshot"
                );
                sent = view.generation;
                view.encoded_snapshot()
            }
            Err(RecvError::Closed) => break,
        };
        if !send(&tx, update, &shutdown).await {
            break;
        }
    }
    debug!("watcher ended");
}

/// Sends one update; false when the client is gone or shutdown began.
async fn send(
    tx: &mpsc::Sender<Result<Bytes, Status>>,
    update: Bytes,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        r = tx.send(Ok(update)) => r.is_ok(),
    }
}
