//! One `Fleet.Watch` stream: a snapshot of the current view, then every
//! published delta, folded so that the client gets at most one update per
//! [`MIN_UPDATE_GAP`].
//!
//! The gap is a little shorter than the view's [`BUILD_INTERVAL`] on
//! purpose: deltas arrive every build, and a stream held to exactly the
//! same period would lock onto a phase behind the builds (every small delay
//! in sending carried into the next update, up to a whole interval of
//! latency). With a shorter gap a late update is followed by an early one.
//!
//! The task follows the views' broadcast of deltas. Deltas are numbered by
//! generation; the stream applies them in order on top of its snapshot.
//! If the task falls behind (the client reads slowly and the broadcast's
//! backlog overflows) or misses one, it sends a fresh snapshot and goes on
//! from there: a slow reader skips to the newest state and never slows
//! ingest or the other watchers. The outgoing queue holds one message.

use std::sync::Arc;

use stacktop_proto::delta::merge_deltas;
use stacktop_proto::v1::{FleetDelta, FleetUpdate, fleet_update};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, instrument};

use std::time::Duration;

use super::view::{FleetView, Views};

/// Shortest time between two updates of one stream: at most 5 a second,
/// and in practice one per view build (4 a second) while the fleet changes.
pub const MIN_UPDATE_GAP: Duration = Duration::from_millis(200);

/// Where a stream stands against the deltas it receives.
enum Next {
    /// The next delta, in order.
    Delta(Box<FleetDelta>),
    /// Already covered by what was sent.
    Skip,
    /// Something was missed: send a fresh snapshot.
    Resync,
    /// The collector is going away.
    Closed,
}

fn next(received: Result<Arc<FleetDelta>, RecvError>, sent: &mut u64) -> Next {
    match received {
        Ok(d) if d.generation <= *sent => Next::Skip,
        Ok(d) if d.generation == *sent + 1 => {
            *sent = d.generation;
            Next::Delta(Box::new((*d).clone()))
        }
        Ok(_) | Err(RecvError::Lagged(_)) => Next::Resync,
        Err(RecvError::Closed) => Next::Closed,
    }
}

fn snapshot(view: &FleetView) -> FleetUpdate {
    FleetUpdate {
        update: Some(fleet_update::Update::Snapshot(view.snapshot())),
    }
}

/// Serves one Watch stream until the client goes away or shutdown.
#[instrument(skip(views, tx, shutdown))]
pub async fn run(
    views: Arc<Views>,
    tx: mpsc::Sender<Result<FleetUpdate, Status>>,
    shutdown: CancellationToken,
    peer: String,
) {
    let mut deltas = views.subscribe();
    // Brought up to date, so the stream starts at least as new as every
    // batch acknowledged before the call.
    let view = super::refresh(&views).await;
    let mut sent = view.generation;
    if !send(&tx, snapshot(&view), &shutdown).await {
        return;
    }
    drop(view);
    debug!("watcher started");
    let mut last_sent = tokio::time::Instant::now();
    'stream: loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            r = deltas.recv() => r,
        };
        let mut pending = match next(first, &mut sent) {
            Next::Delta(d) => Some(*d),
            Next::Skip => continue,
            Next::Closed => break,
            Next::Resync => None,
        };
        // Fold whatever else arrives before the gap is over.
        while pending.is_some() {
            let more = tokio::select! {
                _ = shutdown.cancelled() => break 'stream,
                _ = tokio::time::sleep_until(last_sent + MIN_UPDATE_GAP) => break,
                r = deltas.recv() => r,
            };
            match next(more, &mut sent) {
                Next::Delta(d) => pending = pending.map(|p| merge_deltas(p, *d)),
                Next::Skip => {}
                Next::Closed => break 'stream,
                Next::Resync => pending = None,
            }
        }
        let update = match pending {
            Some(delta) => FleetUpdate {
                update: Some(fleet_update::Update::Delta(delta)),
            },
            None => {
                let view = views.current();
                debug!(
                    generation = view.generation,
                    "watcher fell behind; sending a snapshot"
                );
                sent = view.generation;
                snapshot(&view)
            }
        };
        if !send(&tx, update, &shutdown).await {
            break;
        }
        last_sent = tokio::time::Instant::now();
    }
    debug!("watcher ended");
}

/// Sends one update; false when the client is gone or shutdown began.
async fn send(
    tx: &mpsc::Sender<Result<FleetUpdate, Status>>,
    update: FleetUpdate,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        r = tx.send(Ok(update)) => r.is_ok(),
    }
}
