//! One alert's life: inactive -> pending -> firing -> resolved, driven by
//! whether its condition holds at each evaluation.
//!
//! - The condition starts to hold: **pending** (or firing at once when the
//!   rule's `for` is 0).
//! - It holds for `for`: **firing**. It stops before that: **inactive**
//!   (a blip; recorded in the history, never notified).
//! - Firing, it stops holding: it keeps firing for `keep-firing-for`, and
//!   resolves only if it did not hold again meanwhile, so a flapping check
//!   is one alert, not many.
//! - **Resolved**, it starts to hold again: pending again, same id.
//!
//! Pure: the time is passed in, so tests drive it with any clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stacktop_proto::v1::AlertState;

use super::rules::Severity;

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Holding, for less than `for`.
    Pending,
    /// Fired.
    Firing,
    /// Fired, then stopped holding.
    Resolved,
    /// Stopped holding before it fired.
    Inactive,
}

impl Phase {
    /// As the contract has it.
    pub fn proto(self) -> AlertState {
        match self {
            Phase::Pending => AlertState::Pending,
            Phase::Firing => AlertState::Firing,
            Phase::Resolved => AlertState::Resolved,
            Phase::Inactive => AlertState::Inactive,
        }
    }
}

/// Who acknowledged an alert, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Why.
    pub comment: String,
}

/// What one sink was last told about an alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    /// When the firing notification was handed to the sink (0: never).
    pub firing_ms: i64,
    /// When it was last (re)sent.
    pub last_ms: i64,
    /// The resolution was handed to the sink.
    pub resolved: bool,
}

/// One alert, as the engine keeps (and persists) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable id of rule + labels.
    pub id: String,
    /// The rule's name.
    pub rule: String,
    /// The labels that tell this alert from others of the rule (`node`,
    /// `check`, `mount`, `tier`...).
    pub key: BTreeMap<String, String>,
    /// Severity.
    pub severity: Severity,
    /// Where it is.
    pub phase: Phase,
    /// When the current episode started holding (pending start).
    pub started_ms: i64,
    /// When it fired (0: not in this episode).
    pub fired_ms: i64,
    /// When it resolved (0: not resolved).
    pub resolved_ms: i64,
    /// When the condition last held.
    pub last_true_ms: i64,
    /// The value that made it hold.
    pub value: Option<f64>,
    /// The filled-in summary.
    pub summary: String,
    /// The acknowledgement of this episode.
    pub ack: Option<Ack>,
    /// Per sink name, what it was told.
    pub notified: BTreeMap<String, Notified>,
}

/// A state change, for the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// From (`Inactive` for a new alert).
    pub from: Phase,
    /// To.
    pub to: Phase,
}

impl Record {
    /// A new alert whose condition starts to hold at `now_ms`.
    pub fn new(
        id: String,
        rule: String,
        key: BTreeMap<String, String>,
        severity: Severity,
    ) -> Self {
        Self {
            id,
            rule,
            key,
            severity,
            phase: Phase::Inactive,
            started_ms: 0,
            fired_ms: 0,
            resolved_ms: 0,
            last_true_ms: 0,
            value: None,
            summary: String::new(),
            ack: None,
            notified: BTreeMap::new(),
        }
    }

    /// When the alert entered its current phase.
    pub fn since_ms(&self) -> i64 {
        match self.phase {
            Phase::Pending => self.started_ms,
            Phase::Firing => self.fired_ms,
            Phase::Resolved => self.resolved_ms,
            Phase::Inactive => self.last_true_ms,
        }
    }

    /// Pending or firing.
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Pending | Phase::Firing)
    }

    /// Moves the alert on at `now_ms` given whether its condition `holds`,
    /// for a rule with `for_ms` and `keep_ms`; returns the change, if any.
    pub fn step(
        &mut self,
        holds: bool,
        now_ms: i64,
        for_ms: i64,
        keep_ms: i64,
    ) -> Option<Transition> {
        let from = self.phase;
        if holds {
            self.last_true_ms = now_ms;
        }
        let to = match (from, holds) {
            (Phase::Inactive | Phase::Resolved, true) => {
                // A new episode: the acknowledgement and what was notified
                // belong to the previous one.
                self.started_ms = now_ms;
                self.fired_ms = 0;
                self.resolved_ms = 0;
                self.ack = None;
                self.notified.clear();
                if for_ms <= 0 {
                    self.fired_ms = now_ms;
                    Phase::Firing
                } else {
                    Phase::Pending
                }
            }
            (Phase::Pending, true) if now_ms - self.started_ms >= for_ms => {
                self.fired_ms = now_ms;
                Phase::Firing
            }
            (Phase::Pending, false) => Phase::Inactive,
            (Phase::Firing, false) if now_ms - self.last_true_ms >= keep_ms => {
                self.resolved_ms = now_ms;
                Phase::Resolved
            }
            (phase, _) => phase,
        };
        self.phase = to;
        (to != from).then_some(Transition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    /// Drives an alert with the paused tokio clock: `holds(second)` says
    /// whether the condition holds at each second; returns every phase
    /// change with its second.
    async fn run(
        seconds: i64,
        for_s: i64,
        keep_s: i64,
        holds: impl Fn(i64) -> bool,
    ) -> Vec<(i64, Phase)> {
        let start = tokio::time::Instant::now();
        let mut alert = Record::new("id".into(), "r".into(), BTreeMap::new(), Severity::Critical);
        let mut changes = Vec::new();
        for s in 0..seconds {
            let now = T0 + (tokio::time::Instant::now() - start).as_millis() as i64;
            if let Some(t) = alert.step(holds(s), now, for_s * 1_000, keep_s * 1_000) {
                changes.push((s, t.to));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        changes
    }

    #[tokio::test(start_paused = true)]
    async fn pending_then_firing_after_for_then_resolved_after_recovery() {
        let changes = run(30, 5, 0, |s| (3..15).contains(&s)).await;
        assert_eq!(
            changes,
            [
                (3, Phase::Pending),
                (8, Phase::Firing),
                (15, Phase::Resolved)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_blip_shorter_than_for_never_fires() {
        let changes = run(20, 5, 0, |s| (3..6).contains(&s)).await;
        assert_eq!(changes, [(3, Phase::Pending), (6, Phase::Inactive)]);
    }

    #[tokio::test(start_paused = true)]
    async fn flapping_inside_keep_firing_for_is_one_alert() {
        // Holds long enough to fire, then only every other second until
        // 20 s, with a 10 s keep-firing-for.
        let changes = run(60, 2, 10, |s| s < 6 || (s < 20 && s % 2 == 0)).await;
        assert_eq!(
            changes,
            [
                (0, Phase::Pending),
                (2, Phase::Firing),
                (28, Phase::Resolved)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn for_zero_fires_at_once_and_a_new_episode_forgets_the_ack() {
        let start = tokio::time::Instant::now();
        let now = || T0 + (tokio::time::Instant::now() - start).as_millis() as i64;
        let mut a = Record::new("id".into(), "r".into(), BTreeMap::new(), Severity::Warning);
        assert_eq!(a.step(true, now(), 0, 0).unwrap().to, Phase::Firing);
        a.ack = Some(Ack {
            by: "me".into(),
            at_ms: now(),
            comment: String::new(),
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.step(false, now(), 0, 0).unwrap().to, Phase::Resolved);
        assert!(a.ack.is_some(), "kept with the episode it acknowledged");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.step(true, now(), 0, 0).unwrap().to, Phase::Firing);
        assert_eq!(a.ack, None);
        assert_eq!(a.started_ms, T0 + 2_000);
    }
}
