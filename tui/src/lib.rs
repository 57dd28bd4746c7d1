//! stacktop: the terminal dashboard of the web stack, by tier, live.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap derive).
//! - [`app`]: the state and its only mutator, `App::update(Action)`.
//! - [`event`]: the loop's events, and the key/resize/tick tasks.
//! - [`client`]: the network tasks (Fleet.Watch with reconnects,
//!   Fleet.History for the detail charts, a one-shot snapshot).
//! - [`ui`]: pure rendering, one file per screen region.
//! - [`status`]: `stacktop status`, the fleet once as a table or JSON.
//! - [`format`]: human-readable numbers.
//! - [`view`]: what the screens read out of one node (DB role, lag,
//!   traffic by class, a checks summary, backends UP).
//! - [`error`]: typed errors.
//!
//! [`run`] wires them: a collector (given, or embedded: collector + agent
//! in-process on 127.0.0.1), the tasks feeding one bounded channel, and one
//! loop that updates the app and draws only when something happened.
//! Everything stops through one [`CancellationToken`] and a [`TaskTracker`].

#![deny(missing_docs)]

pub mod app;
pub mod cli;
pub mod client;
pub mod error;
pub mod event;
pub mod format;
pub mod status;
pub mod ui;
pub mod view;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use app::{Action, App};
pub use error::{Error, Result};
pub use event::Event;

/// Capacity of the event channel into the loop. Network tasks wait when it
/// is full; ticks are dropped.
pub const EVENT_QUEUE: usize = 256;
/// How long shutdown waits for the background tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Options of the interactive dashboard.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Collector URL; `None` runs an embedded collector and agent.
    pub collector: Option<String>,
}

/// Runs the dashboard until the user quits or `shutdown` fires, then stops
/// every task it started and restores the terminal.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<()> {
    let tracker = TaskTracker::new();
    let url = match options.collector {
        Some(url) => url,
        None => start_embedded(&tracker, &shutdown).await?,
    };
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let (detail_tx, detail_rx) = watch::channel(None);
    tracker.spawn(client::watch_fleet(
        url.clone(),
        tx.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(client::poll_history(
        url.clone(),
        detail_rx,
        tx.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(event::forward_terminal(tx.clone(), shutdown.clone()));
    tracker.spawn(event::tick(tx, shutdown.clone()));

    let app = App::new(url, stacktop_proto::now_unix_ms());
    let result = match ratatui::try_init() {
        Ok(mut terminal) => {
            let result = event_loop(&mut terminal, app, rx, detail_tx, &shutdown).await;
            ratatui::restore();
            result
        }
        Err(err) => Err(Error::Terminal(err)),
    };
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop in time");
    }
    result
}

/// Binds the embedded collector on 127.0.0.1:0, starts it and an agent
/// reporting to it, and returns the collector's URL.
async fn start_embedded(tracker: &TaskTracker, shutdown: &CancellationToken) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Bind)?;
    let addr = listener.local_addr().map_err(Error::Bind)?;
    let url = format!("http://{addr}");
    tracing::info!(%url, "starting the embedded collector and agent");
    let token = shutdown.clone();
    tracker.spawn(async move {
        if let Err(err) = stacktop_collector::serve(listener, Default::default(), token).await {
            tracing::error!(cause = %err, "embedded collector stopped");
        }
    });
    let config = stacktop_agent::Config {
        collectors: vec![url.clone()],
        ..Default::default()
    };
    let token = shutdown.clone();
    tracker.spawn(async move {
        if let Err(err) = stacktop_agent::run(config, token).await {
            tracing::error!(cause = %err, "embedded agent stopped");
        }
    });
    Ok(url)
}

/// The loop: wait for an event, turn it into an action, update, draw.
/// Pending events are drained before drawing so a burst costs one frame.
async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    mut rx: mpsc::Receiver<Event>,
    detail: watch::Sender<Option<String>>,
    shutdown: &CancellationToken,
) -> Result<()> {
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize {
            width: size.width,
            height: size.height,
        });
    }
    loop {
        terminal
            .draw(|frame| ui::draw(frame, &app))
            .map_err(Error::Terminal)?;
        let event = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            event = rx.recv() => event,
        };
        let Some(event) = event else { return Ok(()) };
        let mut next = Some(event);
        while let Some(event) = next {
            if let Some(action) = app.action_for(event) {
                app.update(action);
            }
            next = rx.try_recv().ok();
        }
        if app.should_quit {
            return Ok(());
        }
        let want = app.detail_node().map(str::to_string);
        detail.send_if_modified(|current| {
            let changed = *current != want;
            if changed {
                current.clone_from(&want);
            }
            changed
        });
    }
}
