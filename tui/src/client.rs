//! The dashboard's network side: the Fleet.Watch task with reconnects, the
//! detail poller (Fleet.Node every second, Fleet.History every few
//! seconds, while a detail screen is open, at the collector whose report
//! of the node is shown), the operator task (the write calls the
//! dashboard's keys confirmed, one at a time, each at the collectors it
//! names: [`Routed`]), and one-shot calls
//! for the CLI: a snapshot for `stacktop status`, Fleet.Alerts for
//! `stacktop alerts`, an Operator call for `ack`, `silence` and
//! `maintenance`.
//!
//! Every connection is dialled through [`ClientConfig`], the one client
//! builder of `stacktop-proto` (address rules, timeouts, keep-alive,
//! message sizes, TLS and the bearer token), like the agent's uplinks.
//!
//! The tasks only talk to the event loop through its bounded channel; a
//! send blocks while the loop is busy (backpressure), and a closed channel
//! means the loop is gone, so the task ends.

use std::time::Duration;

use stacktop_proto::transport::{Authed, ClientConfig};
use stacktop_proto::v1::fleet_client::FleetClient;
use stacktop_proto::v1::{
    AlertsRequest, AlertsResponse, FleetSnapshot, HistoryRequest, NodeRequest, NodeState,
    SnapshotRequest, WatchRequest,
};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::history::{History, Responses, SERIES};
use crate::model::{ConnState, NodeKey, SourceId};
use crate::operator::{OperatorCall, Outcome};

/// First wait after a failed or lost connection; doubles up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the open detail screen asks for its node (Fleet.Node).
pub const NODE_REFRESH: Duration = Duration::from_secs(1);
/// How often the open detail screen refreshes its charts at the shorter
/// zooms; see [`history_refresh`].
pub const HISTORY_REFRESH: Duration = Duration::from_secs(3);
/// A chart is refreshed at least every this much of its window (a 6 h
/// chart every 72 s): about one braille dot of a wide chart, so a longer
/// window costs the collector no more than it shows.
const REFRESH_SHARE: u32 = 300;

/// How often the charts over `window` are fetched again: every
/// [`HISTORY_REFRESH`], or every 1/[`REFRESH_SHARE`] of the window when that
/// is longer (1 h: 12 s, 6 h: 72 s).
pub fn history_refresh(window: Duration) -> Duration {
    (window / REFRESH_SHARE).max(HISTORY_REFRESH)
}
/// Deadline of one unary call (Snapshot, Node, History, Alerts, Operator).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Dials the collector `config` names and returns a Fleet client with its
/// message limits.
pub async fn connect(config: &ClientConfig) -> Result<FleetClient<Authed>> {
    let channel = config.connect().await?;
    Ok(config.fleet(channel))
}

/// Fetches the whole fleet once (Fleet.Snapshot).
pub async fn snapshot(config: &ClientConfig) -> Result<FleetSnapshot> {
    let mut client = connect(config).await?;
    let mut request = tonic::Request::new(SnapshotRequest::default());
    request.set_timeout(CALL_TIMEOUT);
    client
        .snapshot(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| Error::rpc(&config.url, status))
}

/// Fetches the alerts, silences and maintenance windows once
/// (Fleet.Alerts).
pub async fn alerts(config: &ClientConfig) -> Result<AlertsResponse> {
    let mut client = connect(config).await?;
    let mut request = tonic::Request::new(AlertsRequest::default());
    request.set_timeout(CALL_TIMEOUT);
    client
        .alerts(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| Error::rpc(&config.url, status))
}

/// Makes one write call on the collector's Operator service (same address
/// as Fleet) and returns what it answered.
pub async fn operate(config: &ClientConfig, call: &OperatorCall) -> Result<Outcome> {
    let channel = config.connect().await?;
    let mut client = config.operator(channel);
    let url = config.url.as_str();
    fn timed<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(CALL_TIMEOUT);
        request
    }
    let answer = match call {
        OperatorCall::Ack { .. } => client
            .ack(timed(call.ack_request().unwrap_or_default()))
            .await
            .map(|r| Outcome::Acked(r.into_inner())),
        OperatorCall::Silence { .. } => client
            .silence(timed(call.silence_request().unwrap_or_default()))
            .await
            .map(|r| Outcome::Silenced(r.into_inner())),
        OperatorCall::Unsilence { .. } => client
            .unsilence(timed(call.end_request().unwrap_or_default()))
            .await
            .map(|r| Outcome::Unsilenced(r.into_inner())),
        OperatorCall::StartMaintenance { .. } => client
            .start_maintenance(timed(call.maintenance_request().unwrap_or_default()))
            .await
            .map(|r| Outcome::Maintenance(r.into_inner())),
        OperatorCall::EndMaintenance { .. } => client
            .end_maintenance(timed(call.end_request().unwrap_or_default()))
            .await
            .map(|r| Outcome::MaintenanceEnded(r.into_inner())),
        OperatorCall::Forget { node, by } => client
            .forget(timed(stacktop_proto::v1::ForgetRequest {
                node: node.clone(),
                by: by.clone(),
            }))
            .await
            .map(|r| Outcome::Forgotten(r.into_inner().node)),
    };
    answer.map_err(|status| Error::rpc(url, status))
}

/// A write call the dashboard confirmed, and the collectors to make it at.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The call.
    pub call: OperatorCall,
    /// The collectors, by [`SourceId`].
    pub to: Vec<SourceId>,
}

/// Makes the write calls the dashboard confirmed, one at a time, each at
/// the collectors it names (`sources` by [`SourceId`]), and reports each
/// result as an [`Event::Operator`]: what was done, or the collector's
/// error message; with several collectors, each answer after its
/// collector's letter, and a failure if any failed. Ends when `shutdown`
/// fires, `calls` closes or the loop is gone.
pub async fn run_operator(
    sources: Vec<ClientConfig>,
    mut calls: mpsc::Receiver<Routed>,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let Routed { call, to } = tokio::select! {
            _ = shutdown.cancelled() => return,
            call = calls.recv() => match call {
                Some(call) => call,
                None => return,
            },
        };
        let several = sources.len() > 1;
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for source in to {
            let Some(config) = sources.get(usize::from(source.0)) else {
                continue;
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = operate(config, &call) => result,
            };
            let at = if several {
                format!("{}: ", source.label())
            } else {
                String::new()
            };
            match result {
                Ok(outcome) => {
                    tracing::info!(call = %call.describe(), url = %config.url, "operator call done");
                    done.push(format!("{at}{}", outcome.text()));
                }
                Err(err) => {
                    tracing::warn!(cause = %err, call = %call.describe(), "operator call failed");
                    failed.push(format!("{at}{err}"));
                }
            }
        }
        let result = if failed.is_empty() {
            Ok(done.join(" · "))
        } else {
            let mut text = format!("{} failed: {}", call.describe(), failed.join(" · "));
            if !done.is_empty() {
                text.push_str(&format!(" (done at {})", done.join(" · ")));
            }
            Err(text)
        };
        if tx.send(Event::Operator { result }).await.is_err() {
            return;
        }
    }
}

/// Watches the fleet at collector `source` forever: reports [`ConnState`]
/// changes and every update as events, and reconnects with backoff when the
/// collector goes away. Ends when `shutdown` fires or the event loop is gone.
pub async fn watch_fleet(
    source: SourceId,
    config: ClientConfig,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut backoff = INITIAL_BACKOFF;
    let connection = |state| Event::Connection { source, state };
    loop {
        if tx.send(connection(ConnState::Connecting)).await.is_err() {
            return;
        }
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = watch_once(source, &config, &tx, &mut backoff) => outcome,
        };
        let error = match outcome {
            Ok(()) if tx.is_closed() => return,
            Ok(()) => "the collector closed the stream".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(url = %config.url, %error, retry_in = ?backoff, "fleet watch lost");
        let retry_at_ms = stacktop_proto::now_unix_ms() + backoff.as_millis() as i64;
        let state = ConnState::Disconnected { retry_at_ms, error };
        if tx.send(connection(state)).await.is_err() {
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
async fn watch_once(
    source: SourceId,
    config: &ClientConfig,
    tx: &mpsc::Sender<Event>,
    backoff: &mut Duration,
) -> Result<()> {
    let url = &config.url;
    let mut client = connect(config).await?;
    let mut stream = client
        .watch(WatchRequest {})
        .await
        .map_err(|status| Error::rpc(url, status))?
        .into_inner();
    tracing::info!(%url, "watching the fleet");
    *backoff = INITIAL_BACKOFF;
    let connected = Event::Connection {
        source,
        state: ConnState::Connected,
    };
    if tx.send(connected).await.is_err() {
        return Ok(());
    }
    while let Some(update) = stream
        .message()
        .await
        .map_err(|status| Error::rpc(url, status))?
    {
        let event = Event::Update {
            source,
            update: Box::new(update),
        };
        if tx.send(event).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Feeds the open detail screen: for the node named in `target` (`None`:
/// no detail open, idle), its full state from Fleet.Node every
/// [`NODE_REFRESH`] and its chart history over the target's window every
/// [`history_refresh`] of it, both right away when the target (node or window)
/// changes. `sources` are the collectors by
/// [`SourceId`]. Ends when `shutdown` fires or the loop is gone.
pub async fn poll_detail(
    sources: Vec<ClientConfig>,
    mut target: watch::Receiver<Option<(NodeKey, Duration)>>,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let current = target.borrow_and_update().clone();
        let Some((key, window, config)) = current.and_then(|(key, window)| {
            let config = sources.get(usize::from(key.source.0))?.clone();
            Some((key, window, config))
        }) else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = target.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let mut poller = Poller {
            config,
            client: None,
        };
        let mut node_tick = tokio::time::interval(NODE_REFRESH);
        node_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut history_tick = tokio::time::interval(history_refresh(window));
        history_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = target.changed() => {
                    if changed.is_err() { return }
                    break;
                }
                _ = node_tick.tick() => {
                    let result = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        result = poller.node(&key.name) => result,
                    };
                    Event::Node {
                        node: key.clone(),
                        result: result.map(Box::new).map_err(|e| e.to_string()),
                    }
                }
                _ = history_tick.tick() => {
                    let result = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        result = poller.history(&key.name, window) => result,
                    };
                    Event::History {
                        node: key.clone(),
                        result: result.map(Box::new).map_err(|e| e.to_string()),
                    }
                }
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// One collector's client for the detail calls, dialled on first use and
/// dropped after a failure so the next call dials again.
struct Poller {
    config: ClientConfig,
    client: Option<FleetClient<Authed>>,
}

impl Poller {
    async fn client(&mut self) -> Result<FleetClient<Authed>> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = connect(&self.config).await?;
        Ok(self.client.insert(client).clone())
    }

    /// Fleet.Node for `name`.
    async fn node(&mut self, name: &str) -> Result<NodeState> {
        let mut client = self.client().await?;
        let mut request = tonic::Request::new(NodeRequest {
            name: name.to_string(),
        });
        request.set_timeout(CALL_TIMEOUT);
        let result = client
            .node(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::rpc(&self.config.url, status));
        self.forget_on_failure(result, name, "node")
    }

    /// The chart series of `name` over the last `window`.
    async fn history(&mut self, name: &str, window: Duration) -> Result<History> {
        let client = self.client().await?;
        let url = self.config.url.as_str();
        let since_ms = stacktop_proto::now_unix_ms() - window.as_millis() as i64;
        let fetch = |series: &'static str| {
            let mut client = client.clone();
            let mut request = tonic::Request::new(HistoryRequest {
                node: name.to_string(),
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
        let [cpu, used, total, rx, tx, read, written, requests, duration] = SERIES;
        let result = tokio::try_join!(
            fetch(cpu),
            fetch(used),
            fetch(total),
            fetch(rx),
            fetch(tx),
            fetch(read),
            fetch(written),
            fetch(requests),
            fetch(duration),
        )
        .map(
            |(
                cpu,
                memory_used,
                memory_total,
                receive,
                transmit,
                disk_read,
                disk_written,
                requests,
                duration,
            )| {
                History::from_responses(&Responses {
                    cpu,
                    memory_used,
                    memory_total,
                    receive,
                    transmit,
                    disk_read,
                    disk_written,
                    requests,
                    duration,
                })
            },
        );
        self.forget_on_failure(result, name, "history")
    }

    fn forget_on_failure<T>(&mut self, result: Result<T>, node: &str, call: &str) -> Result<T> {
        if let Err(err) = &result {
            tracing::debug!(cause = %err, %node, call, "detail fetch failed");
            self.client = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_collector_is_named_in_the_error() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = snapshot(&ClientConfig::new(&url)).await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }

    #[test]
    fn longer_windows_are_refreshed_less_often() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(history_refresh(minutes(1)), HISTORY_REFRESH);
        assert_eq!(history_refresh(minutes(15)), HISTORY_REFRESH);
        assert_eq!(history_refresh(minutes(60)), Duration::from_secs(12));
        assert_eq!(history_refresh(minutes(360)), Duration::from_secs(72));
    }
}
