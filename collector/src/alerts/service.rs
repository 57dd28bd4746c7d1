//! The `Operator` gRPC service: the write calls (acknowledge, silence,
//! maintenance), kept apart from `Fleet` so that access to them can be
//! restricted on its own.
//!
//! Every call is written to the alert store before it is answered: an
//! operator who was told "acknowledged" is never told otherwise by a
//! restart.

use std::sync::Arc;
use std::time::Duration;

use stacktop_proto::v1::operator_server::Operator;
use stacktop_proto::v1::{
    AckRequest, Alert, EndRequest, ForgetRequest, ForgetResponse, Maintenance, MaintenanceRequest,
    Silence, SilenceRequest,
};
use stacktop_proto::{Role, now_unix_ms};
use tonic::{Request, Response, Status};
use tracing::info;

use super::{Alerts, AlertsError};
use crate::journal::Journal;
use crate::store::{Store, StoreError};

/// Longest comment or `by` accepted, in bytes.
const MAX_TEXT: usize = 1024;

/// Most matchers in one silence.
const MAX_MATCHERS: usize = 32;

/// The Operator service over the collector's alert engine.
#[derive(Debug, Clone)]
pub struct OperatorService {
    alerts: Arc<Alerts>,
    /// To refuse maintenance for a node nobody knows (a typo would
    /// otherwise hold nothing, silently).
    store: Arc<Store>,
    /// Where a forgotten node is recorded, so a restart does not replay it.
    journal: Option<Journal>,
}

impl OperatorService {
    /// Serves `alerts` for the nodes of `store`.
    pub fn new(alerts: Arc<Alerts>, store: Arc<Store>) -> Self {
        Self {
            alerts,
            store,
            journal: None,
        }
    }

    /// Records forgotten nodes in `journal`.
    pub fn with_journal(mut self, journal: Option<Journal>) -> Self {
        self.journal = journal;
        self
    }

    /// Writes the store before answering; a failure is the caller's error
    /// (the change stays in memory and is written by the next flush).
    async fn flush(&self) -> Result<(), Status> {
        let alerts = self.alerts.clone();
        match tokio::task::spawn_blocking(move || alerts.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Status::unavailable(format!(
                "the change is made but could not be stored yet ({err}); it will be retried"
            ))),
            Err(err) => Err(Status::internal(format!("the store writer failed: {err}"))),
        }
    }
}

fn status(err: AlertsError) -> Status {
    match err {
        AlertsError::NotFound(m) => Status::not_found(m),
        AlertsError::Invalid(m) => Status::invalid_argument(m),
        other => Status::internal(other.to_string()),
    }
}

fn text<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.len() > MAX_TEXT {
        return Err(Status::invalid_argument(format!(
            "`{field}` is {} bytes; at most {MAX_TEXT}",
            value.len()
        )));
    }
    Ok(value)
}

fn by(value: &str) -> Result<&str, Status> {
    let value = text("by", value)?;
    Ok(if value.is_empty() { "unknown" } else { value })
}

fn duration(field: &str, ms: i64) -> Result<Duration, Status> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "`{field}` must be above 0 (milliseconds); got {ms}"
            ))
        })
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<Alert>, Status> {
        let r = request.into_inner();
        let by = by(&r.by)?;
        let comment = text("comment", &r.comment)?;
        let alert = self
            .alerts
            .ack(&r.alert_id, by, comment, now_unix_ms())
            .map_err(status)?;
        info!(alert = %r.alert_id, by, "alert acknowledged");
        self.flush().await?;
        Ok(Response::new(alert))
    }

    async fn silence(&self, request: Request<SilenceRequest>) -> Result<Response<Silence>, Status> {
        let r = request.into_inner();
        if r.matchers.len() > MAX_MATCHERS {
            return Err(Status::invalid_argument(format!(
                "{} matchers; at most {MAX_MATCHERS}",
                r.matchers.len()
            )));
        }
        let mut matchers = Vec::with_capacity(r.matchers.len());
        for m in &r.matchers {
            matchers.push((
                text("matcher name", &m.name)?.to_string(),
                text("matcher value", &m.value)?.to_string(),
            ));
        }
        let length = if r.until_resolved && r.duration_ms == 0 {
            None
        } else {
            Some(duration("duration_ms", r.duration_ms)?)
        };
        let by = by(&r.by)?;
        let silence = self
            .alerts
            .silence(
                &matchers,
                length,
                r.until_resolved,
                by,
                text("comment", &r.comment)?,
                now_unix_ms(),
            )
            .map_err(status)?;
        info!(silence = %silence.id, by, "silence created");
        self.flush().await?;
        Ok(Response::new(silence))
    }

    async fn unsilence(&self, request: Request<EndRequest>) -> Result<Response<Silence>, Status> {
        let r = request.into_inner();
        let silence = self
            .alerts
            .unsilence(&r.id, now_unix_ms())
            .map_err(status)?;
        info!(silence = %r.id, by = by(&r.by)?, "silence ended");
        self.flush().await?;
        Ok(Response::new(silence))
    }

    async fn start_maintenance(
        &self,
        request: Request<MaintenanceRequest>,
    ) -> Result<Response<Maintenance>, Status> {
        let r = request.into_inner();
        let tier = match Role::try_from(r.tier) {
            Ok(Role::Unspecified) => None,
            Ok(role) => Some(role),
            Err(_) => return Err(Status::invalid_argument(format!("unknown tier {}", r.tier))),
        };
        let node = text("node", &r.node)?;
        if !node.is_empty() && self.store.with_node(node, |_| ()).is_err() {
            return Err(Status::not_found(format!(
                "no node named {node:?} has ever reported to this collector; check the name"
            )));
        }
        let by = by(&r.by)?;
        let window = self
            .alerts
            .start_maintenance(
                node,
                tier,
                duration("duration_ms", r.duration_ms)?,
                by,
                text("comment", &r.comment)?,
                now_unix_ms(),
            )
            .map_err(status)?;
        info!(window = %window.id, node, tier = ?tier, by, "maintenance started");
        self.flush().await?;
        Ok(Response::new(window))
    }

    async fn forget(
        &self,
        request: Request<ForgetRequest>,
    ) -> Result<Response<ForgetResponse>, Status> {
        let r = request.into_inner();
        let node = text("node", &r.node)?;
        let connected = self
            .store
            .with_node(node, |n| n.connected())
            .map_err(|_| Status::not_found(format!("no node named {node:?} is known")))?;
        if connected {
            return Err(Status::failed_precondition(format!(
                "{node} is connected: stop its agent first, or it comes straight back"
            )));
        }
        // Recorded first: forgotten in memory but not on disk would come
        // back with the next restart.
        if let Some(journal) = &self.journal {
            journal
                .forget(node, now_unix_ms())
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        match self.store.forget(node) {
            Ok(()) | Err(StoreError::UnknownNode(_)) => {}
            Err(e) => return Err(Status::internal(e.to_string())),
        }
        info!(node, by = by(&r.by)?, "node forgotten");
        Ok(Response::new(ForgetResponse {
            node: node.to_string(),
        }))
    }

    async fn end_maintenance(
        &self,
        request: Request<EndRequest>,
    ) -> Result<Response<Maintenance>, Status> {
        let r = request.into_inner();
        let window = self
            .alerts
            .end_maintenance(&r.id, now_unix_ms())
            .map_err(status)?;
        info!(window = %r.id, by = by(&r.by)?, "maintenance ended");
        self.flush().await?;
        Ok(Response::new(window))
    }
}
