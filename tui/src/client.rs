//! The dashboard's network side: the Fleet.Watch task with reconnects, the
//! Fleet.History poller for the detail screen, and a one-shot snapshot for
//! `stacktop status`.
//!
//! Both tasks only talk to the event loop through its bounded channel; a
//! send blocks while the loop is busy (backpressure), and a closed channel
//! means the loop is gone, so the task ends.

use std::collections::BTreeMap;
use std::time::Duration;

use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::{
    FleetSnapshot, HistoryRequest, HistoryResponse, SeriesHistory, SnapshotRequest, WatchRequest,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::app::{ConnState, History};
use crate::error::{Error, Result, chain};
use crate::event::Event;

/// How long dialling a collector may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First wait after a failed or lost connection; doubles up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the open detail screen refreshes its charts.
pub const HISTORY_REFRESH: Duration = Duration::from_secs(3);
/// How far back the detail charts reach.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Deadline of one unary call (Snapshot, History).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest Fleet message accepted from a collector.
const MAX_FLEET_MESSAGE: usize = 256 * 1024 * 1024;

/// Dials `url` and returns a Fleet client.
pub async fn connect(url: &str) -> Result<FleetClient<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|source| Error::InvalidUrl {
            url: url.to_string(),
            source,
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|err| Error::Unreachable {
        url: url.to_string(),
        reason: chain(&err),
    })?;
    // A snapshot grows with the fleet (about 3 KiB a node); tonic's default
    // 4 MiB limit would cut the dashboard off at roughly 1,400 nodes.
    Ok(FleetClient::new(channel).max_decoding_message_size(MAX_FLEET_MESSAGE))
}

/// Fetches the whole fleet once (Fleet.Snapshot).
pub async fn snapshot(url: &str) -> Result<FleetSnapshot> {
    let mut client = connect(url).await?;
    let mut request = tonic::Request::new(SnapshotRequest::default());
    request.set_timeout(CALL_TIMEOUT);
    client
        .snapshot(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| Error::rpc(url, status))
}

/// Watches the fleet at `url` forever: reports [`ConnState`] changes and
/// every update as events, and reconnects with backoff when the collector
/// goes away. Ends when `shutdown` fires or the event loop is gone.
pub async fn watch_fleet(url: String, tx: mpsc::Sender<Event>, shutdown: CancellationToken) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if tx
            .send(Event::Connection(ConnState::Connecting))
            .await
            .is_err()
        {
            return;
        }
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = watch_once(&url, &tx, &mut backoff) => outcome,
        };
        let error = match outcome {
            Ok(()) if tx.is_closed() => return,
            Ok(()) => "the collector closed the stream".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(%url, %error, retry_in = ?backoff, "fleet watch lost");
        let retry_at_ms = stacktop_proto::now_unix_ms() + backoff.as_millis() as i64;
        let state = ConnState::Disconnected { retry_at_ms, error };
        if tx.send(Event::Connection(state)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One Watch stream, from dialling to its end. Resets `backoff` once the
/// stream is open.
async fn watch_once(url: &str, tx: &mpsc::Sender<Event>, backoff: &mut Duration) -> Result<()> {
    let mut client = connect(url).await?;
    let mut stream = client
        .watch(WatchRequest {})
        .await
        .map_err(|status| Error::rpc(url, status))?
        .into_inner();
    tracing::info!(%url, "watching the fleet");
    *backoff = INITIAL_BACKOFF;
    if tx
        .send(Event::Connection(ConnState::Connected))
        .await
        .is_err()
    {
        return Ok(());
    }
    while let Some(update) = stream
        .message()
        .await
        .map_err(|status| Error::rpc(url, status))?
    {
        if tx.send(Event::Update(Box::new(update))).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Fetches chart history for the node named in `node` (the open detail
/// screen) every [`HISTORY_REFRESH`], and right away when it changes; idle
/// while it is `None`. Ends when `shutdown` fires or the loop is gone.
pub async fn poll_history(
    url: String,
    mut node: watch::Receiver<Option<String>>,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut client: Option<FleetClient<Channel>> = None;
    loop {
        let current = node.borrow_and_update().clone();
        if let Some(name) = current {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = fetch_history(&url, &mut client, &name) => result,
            };
            if let Err(err) = &result {
                tracing::debug!(cause = %err, node = %name, "history fetch failed");
                client = None;
            }
            let event = Event::History {
                node: name,
                result: result.map_err(|e| e.to_string()),
            };
            if tx.send(event).await.is_err() {
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = node.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(HISTORY_REFRESH) => {}
            }
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = node.changed() => if changed.is_err() { return },
            }
        }
    }
}

async fn fetch_history(
    url: &str,
    client: &mut Option<FleetClient<Channel>>,
    node: &str,
) -> Result<History> {
    let client = match client {
        Some(c) => c.clone(),
        None => client.insert(connect(url).await?).clone(),
    };
    let since_ms = stacktop_proto::now_unix_ms() - HISTORY_WINDOW.as_millis() as i64;
    let fetch = |series: &'static str| {
        let mut client = client.clone();
        let mut request = tonic::Request::new(HistoryRequest {
            node: node.to_string(),
            series: series.to_string(),
            labels: Vec::new(),
            since_ms,
        });
        request.set_timeout(CALL_TIMEOUT);
        async move {
            client
                .history(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| Error::rpc(url, status))
        }
    };
    let (cpu, used, total, rx, tx) = tokio::try_join!(
        fetch("node_cpu_usage_ratio"),
        fetch("node_memory_used_bytes"),
        fetch("node_memory_total_bytes"),
        fetch("node_network_receive_bytes_per_second"),
        fetch("node_network_transmit_bytes_per_second"),
    )?;
    Ok(history_from(&cpu, &used, &total, &rx, &tx))
}

/// Turns the raw History responses into chart data: the unlabelled CPU
/// series (per-core series carry a `cpu` label), memory used / total, and
/// network rates summed over every device except loopback.
pub fn history_from(
    cpu: &HistoryResponse,
    memory_used: &HistoryResponse,
    memory_total: &HistoryResponse,
    receive: &HistoryResponse,
    transmit: &HistoryResponse,
) -> History {
    History {
        cpu: unlabelled(cpu),
        memory: ratio(&unlabelled(memory_used), &unlabelled(memory_total)),
        receive: sum_devices(receive),
        transmit: sum_devices(transmit),
    }
}

fn points(series: &SeriesHistory) -> Vec<(i64, f64)> {
    series
        .points
        .iter()
        .map(|p| (p.timestamp_ms, p.value))
        .collect()
}

fn unlabelled(response: &HistoryResponse) -> Vec<(i64, f64)> {
    response
        .series
        .iter()
        .find(|s| s.labels.is_empty())
        .map(points)
        .unwrap_or_default()
}

/// `used / total` at each `used` point, against the latest total at or
/// before it (or the first one).
fn ratio(used: &[(i64, f64)], total: &[(i64, f64)]) -> Vec<(i64, f64)> {
    used.iter()
        .filter_map(|&(ts, value)| {
            let t = total
                .iter()
                .rev()
                .find(|(tt, _)| *tt <= ts)
                .or(total.first())?;
            (t.1 > 0.0).then(|| (ts, value / t.1))
        })
        .collect()
}

fn sum_devices(response: &HistoryResponse) -> Vec<(i64, f64)> {
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for series in &response.series {
        let device = stacktop_proto::label(&series.labels, "device").unwrap_or("");
        if device == "lo" || device.starts_with("lo:") {
            continue;
        }
        for p in &series.points {
            *sums.entry(p.timestamp_ms).or_default() += p.value;
        }
    }
    sums.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::{Label, TimedValue};

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesHistory {
        SeriesHistory {
            name: String::new(),
            labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
            points: points
                .iter()
                .map(|&(timestamp_ms, value)| TimedValue {
                    timestamp_ms,
                    value,
                })
                .collect(),
        }
    }

    fn response(series: Vec<SeriesHistory>) -> HistoryResponse {
        HistoryResponse { series }
    }

    #[test]
    fn history_picks_total_cpu_sums_devices_and_divides_memory() {
        let cpu = response(vec![
            series(&[("cpu", "0")], &[(1, 0.9)]),
            series(&[], &[(1, 0.25), (2, 0.5)]),
        ]);
        let used = response(vec![series(&[], &[(1, 2.0), (2, 4.0)])]);
        let total = response(vec![series(&[], &[(1, 8.0)])]);
        let rx = response(vec![
            series(&[("device", "lo")], &[(1, 1000.0)]),
            series(&[("device", "eth0")], &[(1, 10.0), (2, 20.0)]),
            series(&[("device", "eth1")], &[(1, 1.0)]),
        ]);
        let h = history_from(&cpu, &used, &total, &rx, &response(vec![]));
        assert_eq!(h.cpu, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.memory, [(1, 0.25), (2, 0.5)]);
        assert_eq!(h.receive, [(1, 11.0), (2, 20.0)]);
        assert!(h.transmit.is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_collector_is_named_in_the_error() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = snapshot(&url).await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}
