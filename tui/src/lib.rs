//! stacktop: the terminal dashboard of the web stack, by tier, live.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap derive).
//! - [`model`]: the fleet as reported (nodes by collector and name,
//!   merged by name when several collectors are watched; totals,
//!   connections, the detail screen's data); the only place collector
//!   updates are applied.
//! - [`history`]: the detail charts' data, from Fleet.History answers.
//! - [`app`]: the screen state and its only mutator, `App::update(Action)`.
//! - [`event`]: the loop's events, and the key/resize/tick tasks.
//! - [`client`]: the network tasks (Fleet.Watch with reconnects, the
//!   detail poller with Fleet.Node and Fleet.History, the operator task
//!   for confirmed write calls) and the CLI's one-shot calls.
//! - [`config`]: the dashboard's config file (the colour theme).
//! - [`operator`]: write calls (ack, silence, maintenance), their
//!   confirmation texts, durations and matchers as operators type them.
//! - [`alerts`]: the alert list's order and words, and `stacktop alerts`.
//! - `embedded` (with the default `embedded` feature): the in-process
//!   collector and agent of the embedded default.
//! - [`ui`]: pure rendering, one file per screen region.
//! - [`sort`]: the nodes view's columns and order.
//! - [`status`]: `stacktop status`, the fleet once as a table or JSON.
//! - [`topology`]: the fleet along the request path, box by box, with the
//!   stack's weaknesses where the data shows them (the topology screen).
//! - [`format`]: human-readable numbers.
//! - [`view`]: what the screens read out of one node (DB role, lag, the
//!   values to show, a checks summary, backends UP).
//! - [`error`]: typed errors.
//!
//! The modules depend on each other in one direction (`tests/module_graph.rs`
//! keeps it so): `model` and `history` know no other module of the crate,
//! `event` carries their types, `app` turns events into actions, `ui`
//! reads `app`.
//!
//! [`run`] wires them: the collectors (given, each with its own Watch
//! task, or embedded: collector + agent in-process on 127.0.0.1), the
//! tasks feeding one bounded channel, and one
//! loop that updates the app and draws only when something happened. A
//! confirmed write call ([`Action::Send`]) goes from the loop to the
//! operator task over a small bounded queue; the draw loop never waits for
//! the collector.
//! Everything stops through one [`CancellationToken`] and a [`TaskTracker`].

#![deny(missing_docs)]

pub mod alerts;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
pub mod event;
pub mod format;
pub mod history;
pub mod model;
pub mod operator;
pub mod sort;
pub mod status;
pub mod topology;
pub mod ui;
pub mod view;

use std::time::Duration;

use stacktop_proto::transport::{ClientConfig, validate_url};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use app::{Action, App};
pub use error::{Error, Result};
pub use event::Event;
use model::{NodeKey, SourceId};

/// Capacity of the event channel into the loop. Network tasks wait when it
/// is full; ticks are dropped.
pub const EVENT_QUEUE: usize = 256;
/// Write calls waiting for the operator task. One at a time is what a
/// person confirms; more are refused with a notice.
const OPERATOR_QUEUE: usize = 4;
/// The shortest time between two frames after a key, click or resize (at
/// most 10 a second).
const MIN_FRAME: Duration = Duration::from_millis(100);
/// The shortest time between two frames that only new data or the clock
/// asked for. The collector sends up to 4 updates a second; drawing them
/// together at most twice a second keeps sample -> screen under a second
/// (250 ms of coalescing there, at most 500 ms here) at less than half the
/// frames, and a key never waits for it.
const DATA_FRAME: Duration = Duration::from_millis(500);
/// How long shutdown waits for the background tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Options of the interactive dashboard.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Collector URLs, merged by node name (see [`model`]); none runs an
    /// embedded collector and agent.
    pub collectors: Vec<String>,
    /// TLS and token files for every collector (unused by the embedded
    /// one).
    pub credentials: cli::Credentials,
    /// How the screen is coloured.
    pub theme: config::Theme,
}

/// How the dashboard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The user quit (`q`).
    Quit,
    /// The user pressed Ctrl-C (a shell expects status 130).
    Interrupted,
    /// `shutdown` fired (a signal, or the caller stopped it).
    Shutdown,
}

/// Runs the dashboard until the user quits or `shutdown` fires, then stops
/// every task it started and restores the terminal.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<Exit> {
    let tracker = TaskTracker::new();
    let result = dashboard(options, &tracker, &shutdown).await;
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

/// Starts the tasks on `tracker` and runs the loop in the terminal.
async fn dashboard(
    options: Options,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Exit> {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let mut urls = Vec::new();
    let mut configs = Vec::new();
    for url in &options.collectors {
        let url = validate_url(url)?;
        configs.push(options.credentials.client(url.clone())?);
        urls.push(url);
    }
    if urls.is_empty() {
        let url = start_embedded(tracker, shutdown, &tx).await?;
        configs.push(ClientConfig::new(url.clone()));
        urls.push(url);
    }
    let (detail_tx, detail_rx) = watch::channel(None);
    for (i, config) in configs.iter().enumerate() {
        tracker.spawn(client::watch_fleet(
            SourceId(i as u16),
            config.clone(),
            tx.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(client::poll_detail(
        configs.clone(),
        detail_rx,
        tx.clone(),
        shutdown.clone(),
    ));
    let (operator_tx, operator_rx) = mpsc::channel(OPERATOR_QUEUE);
    tracker.spawn(client::run_operator(
        configs,
        operator_rx,
        tx.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(event::forward_terminal(tx.clone(), shutdown.clone()));
    tracker.spawn(event::tick(tx, shutdown.clone()));

    let mut app =
        App::watching(urls, stacktop_proto::now_unix_ms()).with_identity(operator::identity());
    app.theme = options.theme;
    // try_init installs a panic hook that restores the terminal too; the
    // hook added here first turns the mouse reporting off again.
    let mut terminal = ratatui::try_init().map_err(Error::Terminal)?;
    let restore_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        restore_hook(info);
    }));
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)
        .map_err(Error::Terminal)?;
    let loop_ends = Outputs {
        detail: detail_tx,
        operator: operator_tx,
    };
    let result = event_loop(&mut terminal, app, rx, loop_ends, shutdown).await;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    result
}

/// The embedded collector and agent, started on `tracker`; their failures
/// go to `events`.
#[cfg(feature = "embedded")]
async fn start_embedded(
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    events: &mpsc::Sender<Event>,
) -> Result<String> {
    embedded::start(tracker, shutdown, events).await
}

/// Without the `embedded` feature there is nothing to start: a collector
/// must be given.
#[cfg(not(feature = "embedded"))]
async fn start_embedded(
    _tracker: &TaskTracker,
    _shutdown: &CancellationToken,
    _events: &mpsc::Sender<Event>,
) -> Result<String> {
    Err(Error::NoCollector)
}

/// Applies `action` to `app`; a confirmed write call goes on to the
/// operator task without waiting (a full queue is said on screen instead).
fn apply(app: &mut App, action: Action, operator: &mpsc::Sender<client::Routed>) {
    let call = match &action {
        Action::Send { call, to } => Some(client::Routed {
            call: call.clone(),
            to: to.clone(),
        }),
        _ => None,
    };
    app.update(action);
    if let Some(call) = call
        && let Err(err) = operator.try_send(call)
    {
        let why = match err {
            mpsc::error::TrySendError::Full(routed) => {
                format!(
                    "{}: earlier calls are still under way",
                    routed.call.describe()
                )
            }
            mpsc::error::TrySendError::Closed(routed) => {
                format!("{}: the operator task stopped", routed.call.describe())
            }
        };
        app.update(Action::OperatorDone(Err(why)));
    }
}

/// Whether `event` is the user's (a key, click or resize, or the answer
/// to a write call they confirmed): drawn within [`MIN_FRAME`], where
/// data and the clock wait for [`DATA_FRAME`].
fn is_input(event: &Event) -> bool {
    matches!(
        event,
        Event::Key(_) | Event::Mouse(_) | Event::Resize(..) | Event::Operator { .. }
    )
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where the loop sends what the app asks for.
struct Outputs {
    /// The node the detail poller should fetch and its charts' window
    /// (`None`: no detail open).
    detail: watch::Sender<Option<(NodeKey, Duration)>>,
    /// Write calls the user confirmed, to the operator task.
    operator: mpsc::Sender<client::Routed>,
}

/// The loop: wait for an event, turn it into an action, update, draw.
/// Pending events are drained before drawing so a burst costs one frame;
/// nothing is drawn unless an action changed the app (events that mean
/// nothing, such as an unbound key, cost no frame). A key, click or resize
/// is drawn within [`MIN_FRAME`] of the last frame; new data and the clock
/// wait for [`DATA_FRAME`], gathering every update of that time into one
/// frame.
async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    mut rx: mpsc::Receiver<Event>,
    outputs: Outputs,
    shutdown: &CancellationToken,
) -> Result<Exit> {
    let Outputs { detail, operator } = outputs;
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize {
            width: size.width,
            height: size.height,
        });
    }
    let mut last_frame: Option<tokio::time::Instant> = None;
    // What the next frame waits for since the last one, while one is due.
    let mut due: Option<Duration> = Some(Duration::ZERO);
    loop {
        let draw_at = due.and_then(|gap| last_frame.map(|at| at + gap));
        if due.is_some() && draw_at.is_none_or(|at| at <= tokio::time::Instant::now()) {
            terminal
                .draw(|frame| ui::draw(frame, &app))
                .map_err(Error::Terminal)?;
            last_frame = Some(tokio::time::Instant::now());
            due = None;
        }
        let event = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Exit::Shutdown),
            // The frame's time came with no event: draw it.
            _ = sleep_until(draw_at) => continue,
            event = rx.recv() => event,
        };
        let Some(event) = event else {
            return Ok(Exit::Shutdown);
        };
        let mut next = Some(event);
        while let Some(event) = next {
            let gap = if is_input(&event) {
                MIN_FRAME
            } else {
                DATA_FRAME
            };
            if let Some(action) = app.action_for(event) {
                apply(&mut app, action, &operator);
                due = Some(due.map_or(gap, |due| due.min(gap)));
            }
            next = rx.try_recv().ok();
        }
        if let Some(exit) = app.exit() {
            return Ok(exit);
        }
        let want = app
            .detail_node()
            .cloned()
            .map(|key| (key, app.chart_window()));
        detail.send_if_modified(|current| {
            let changed = *current != want;
            if changed {
                current.clone_from(&want);
            }
            changed
        });
    }
}
