//! Events into the dashboard's single loop, and the tasks that produce the
//! local ones (keys, resizes, the clock tick).
//!
//! Network events ([`Event::Update`], [`Event::Connection`],
//! [`Event::Node`], [`Event::History`], [`Event::Operator`]) come from
//! [`crate::client`], and
//! [`Event::Failed`] from the embedded collector and agent, over the same
//! bounded channel, so the loop has one place to wait.
//!
//! The payloads are the model's types ([`crate::model`],
//! [`crate::history`]); this module knows nothing of the app that turns
//! events into actions, so the two never import each other both ways.

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEvent, MouseEvent, MouseEventKind};
use futures_util::StreamExt;
use stacktop_proto::v1::{FleetUpdate, NodeState};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::history::History;
use crate::model::{ConnState, NodeKey, SourceId};

/// How often the clock moves on by itself, for "3s ago" texts and the
/// retry countdown. Nothing else redraws an idle screen.
pub const TICK: Duration = Duration::from_secs(1);

/// Something the event loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// A mouse click or wheel turn (moves are not forwarded).
    Mouse(MouseEvent),
    /// The terminal was resized to (columns, rows).
    Resize(u16, u16),
    /// The clock, in Unix ms.
    Tick(i64),
    /// A snapshot or delta from a collector's Watch stream.
    Update {
        /// The collector.
        source: SourceId,
        /// What it sent.
        update: Box<FleetUpdate>,
    },
    /// The connection to a collector changed.
    Connection {
        /// The collector.
        source: SourceId,
        /// Where the connection stands now.
        state: ConnState,
    },
    /// A node in full (Fleet.Node), for its detail screen (or why it could
    /// not be fetched).
    Node {
        /// The node.
        node: NodeKey,
        /// Its state, or the error as text.
        result: Result<Box<NodeState>, String>,
    },
    /// History for a node's detail charts (or why it could not be fetched).
    History {
        /// The node.
        node: NodeKey,
        /// The data, or the error as text.
        result: Result<Box<History>, String>,
    },
    /// A write call the user confirmed (ack, silence, maintenance) came
    /// back.
    Operator {
        /// What was done, or why it failed (the collector's message).
        result: Result<String, String>,
    },
    /// A part running inside this process (the embedded collector or
    /// agent) stopped.
    Failed {
        /// Which part: `collector` or `agent`.
        what: &'static str,
        /// Why, as text.
        error: String,
    },
}

/// Forwards key presses and resizes from the terminal until `shutdown`
/// fires or the loop is gone.
pub async fn forward_terminal(tx: mpsc::Sender<Event>, shutdown: CancellationToken) {
    let mut events = EventStream::new();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = events.next() => next,
        };
        let event = match next {
            Some(Ok(TermEvent::Key(key))) => Event::Key(key),
            Some(Ok(TermEvent::Resize(w, h))) => Event::Resize(w, h),
            // Moves and drags would wake the loop for nothing.
            Some(Ok(TermEvent::Mouse(m)))
                if matches!(
                    m.kind,
                    MouseEventKind::Down(_) | MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
                ) =>
            {
                Event::Mouse(m)
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                tracing::error!(cause = %err, "reading the terminal failed");
                return;
            }
            None => return,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// Sends the time every [`TICK`] until `shutdown` fires. A full queue drops
/// the tick: the next one carries a newer time anyway.
pub async fn tick(tx: mpsc::Sender<Event>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        match tx.try_send(Event::Tick(stacktop_proto::now_unix_ms())) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
