//! The embedded default: with no `--collector`, a collector and an agent
//! run inside the dashboard on 127.0.0.1, so `stacktop` alone shows the
//! machine it runs on.
//!
//! Only built with the `embedded` cargo feature (on by default). A build
//! without it carries neither crate, and so none of what they pull in (a
//! MySQL client, a DNS resolver, the system sampler): a small dashboard for
//! operators' workstations, which then needs `--collector`.
//!
//! Both run on the dashboard's [`TaskTracker`] and stop with its
//! [`CancellationToken`]. When either stops before that, the event loop
//! gets an [`Event::Failed`], so the screen says why rather than only the
//! log file.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stacktop_proto::transport::chain;

use crate::error::{Error, Result};
use crate::event::Event;

/// Binds the embedded collector on 127.0.0.1:0, starts it and an agent
/// reporting to it, and returns the collector's URL. Their failures are
/// sent to `events`.
pub async fn start(
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    events: &mpsc::Sender<Event>,
) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Bind)?;
    let addr = listener.local_addr().map_err(Error::Bind)?;
    let url = format!("http://{addr}");
    tracing::info!(%url, "starting the embedded collector and agent");
    let (token, tx) = (shutdown.clone(), events.clone());
    tracker.spawn(async move {
        let result = stacktop_collector::serve(listener, Default::default(), token.clone())
            .await
            .map_err(|e| chain(&e));
        report("collector", result, &token, &tx).await;
    });
    let config = stacktop_agent::Config {
        collectors: vec![url.clone()],
        ..Default::default()
    };
    let (token, tx) = (shutdown.clone(), events.clone());
    tracker.spawn(async move {
        let result = stacktop_agent::run(config, token.clone())
            .await
            .map_err(|e| chain(&e));
        report("agent", result, &token, &tx).await;
    });
    Ok(url)
}

/// Logs and reports `what` stopping, unless it stopped because it was
/// told to.
async fn report(
    what: &'static str,
    result: std::result::Result<(), String>,
    shutdown: &CancellationToken,
    events: &mpsc::Sender<Event>,
) {
    let error = match result {
        Ok(()) if shutdown.is_cancelled() => return,
        Ok(()) => "it ended by itself".to_string(),
        Err(err) => err,
    };
    tracing::error!(cause = %error, "embedded {what} stopped");
    // A closed channel means the loop is gone: nobody left to tell.
    let _ = events.send(Event::Failed { what, error }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_part_is_reported_to_the_loop() {
        let (tx, mut rx) = mpsc::channel(4);
        let token = CancellationToken::new();
        report("agent", Err("bad interval".into()), &token, &tx).await;
        match rx.try_recv().unwrap() {
            Event::Failed { what, error } => {
                assert_eq!(what, "agent");
                assert_eq!(error, "bad interval");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Stopping because it was told to is not a failure.
        token.cancel();
        report("agent", Ok(()), &token, &tx).await;
        assert!(rx.try_recv().is_err());
    }
}
