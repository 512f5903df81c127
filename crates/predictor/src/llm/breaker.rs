//! A circuit breaker for the LLM endpoint.
//!
//! Opened at once by errors that retrying cannot fix (401, 403, 404, insufficient
//! quota) and by a run of consecutive failures; after the cool-down one probe request
//! is let through (half-open), whose outcome closes or reopens it. Time comes in as an
//! argument (read from the predictor's `Clock`), so the breaker is a pure state machine.

use chrono::{DateTime, Duration, Utc};

/// Breaker state.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: DateTime<Utc>, reason: String },
    HalfOpen { probe_started: DateTime<Utc> },
}

/// Whether a call may go out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Permit {
    /// Normal operation.
    Allowed,
    /// The one trial call after a cool-down.
    Probe,
    /// The breaker is open (with the reason it opened, and until when).
    Denied { until: DateTime<Utc>, reason: String },
}

/// Counts failures and decides whether the endpoint may be called.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    state: State,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { state: State::Closed { consecutive_failures: 0 }, threshold: threshold.max(1), cooldown }
    }

    /// Ask to call the endpoint at `now`.
    pub fn permit(&mut self, now: DateTime<Utc>) -> Permit {
        match &self.state {
            State::Closed { .. } => Permit::Allowed,
            State::Open { until, reason } => {
                if now >= *until {
                    self.state = State::HalfOpen { probe_started: now };
                    Permit::Probe
                } else {
                    Permit::Denied { until: *until, reason: reason.clone() }
                }
            }
            // A probe whose outcome never came back (its caller was cancelled) is replaced after a cool-down.
            State::HalfOpen { probe_started } if now >= *probe_started + self.cooldown => {
                self.state = State::HalfOpen { probe_started: now };
                Permit::Probe
            }
            State::HalfOpen { probe_started } => {
                Permit::Denied { until: *probe_started + self.cooldown, reason: "a probe request is in flight".into() }
            }
        }
    }

    /// The call succeeded: close.
    pub fn record_success(&mut self) {
        self.state = State::Closed { consecutive_failures: 0 };
    }

    /// The call failed at `now`. A `fatal` failure (or a failed probe) opens the breaker at
    /// once; otherwise it opens after `threshold` consecutive failures. Returns whether it opened.
    pub fn record_failure(&mut self, now: DateTime<Utc>, fatal: bool, reason: &str) -> bool {
        let failures = match self.state {
            State::Closed { consecutive_failures } => consecutive_failures + 1,
            State::HalfOpen { .. } | State::Open { .. } => self.threshold,
        };
        if fatal || failures >= self.threshold {
            self.state = State::Open { until: now + self.cooldown, reason: reason.to_string() };
            true
        } else {
            self.state = State::Closed { consecutive_failures: failures };
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::{Clock, ManualClock};

    fn t0() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let clock = ManualClock::new(t0());
        let mut b = Breaker::new(3, Duration::minutes(5));
        assert!(!b.record_failure(clock.now(), false, "timeout"));
        b.record_success();
        assert!(!b.record_failure(clock.now(), false, "timeout"));
        assert!(!b.record_failure(clock.now(), false, "timeout"));
        assert!(b.record_failure(clock.now(), false, "timeout"));
        assert!(matches!(b.permit(clock.now()), Permit::Denied { .. }));
        clock.advance(Duration::minutes(5));
        assert_eq!(b.permit(clock.now()), Permit::Probe);
        // Only one probe at a time.
        assert!(matches!(b.permit(clock.now()), Permit::Denied { .. }));
        assert!(b.record_failure(clock.now(), false, "timeout"));
        clock.advance(Duration::minutes(5));
        assert_eq!(b.permit(clock.now()), Permit::Probe);
        b.record_success();
        assert_eq!(b.permit(clock.now()), Permit::Allowed);
    }

    #[test]
    fn fatal_failure_opens_at_once() {
        let mut b = Breaker::new(3, Duration::minutes(5));
        assert!(b.record_failure(t0(), true, "HTTP 401"));
        match b.permit(t0() + Duration::minutes(1)) {
            Permit::Denied { until, reason } => {
                assert_eq!(until, t0() + Duration::minutes(5));
                assert_eq!(reason, "HTTP 401");
            }
            other => panic!("expected denied, got {other:?}"),
        }
    }
}
