//! Reconnect delays: exponential from [`Backoff::BASE`] doubling to
//! [`Backoff::CAP`], with jitter so a fleet whose collector restarts does
//! not reconnect in lock-step.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is drawn uniformly
/// from the upper half of the current step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::BASE, Self::CAP)
    }
}

impl Backoff {
    /// First step.
    pub const BASE: Duration = Duration::from_millis(250);
    /// Largest step.
    pub const CAP: Duration = Duration::from_secs(30);

    /// A backoff from `base` doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            step: base,
        }
    }

    /// The next delay to wait; each call doubles the step up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.cap);
        let half = step / 2;
        let jitter = rand::random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    /// Back to the first step, after a successful session.
    pub fn reset(&mut self) {
        self.step = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_reset() {
        let mut backoff = Backoff::default();
        let first = backoff.next_delay();
        assert!(
            first >= Backoff::BASE / 2 && first <= Backoff::BASE,
            "{first:?}"
        );
        let mut last = Duration::ZERO;
        for _ in 0..40 {
            last = backoff.next_delay();
            assert!(last <= Backoff::CAP, "{last:?}");
        }
        assert!(last >= Backoff::CAP / 2, "{last:?}");
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::BASE);
    }
}
