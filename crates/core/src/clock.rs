//! The one source of time and waiting.
//!
//! Everything that reads the time or waits does it through a [`Clock`], so the
//! harness can compress an hour of scenario into a minute ([`ScaledClock`]) and
//! tests can step time by hand ([`ManualClock`]). `decide()` never reads a
//! clock at all: its time comes in as an argument.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A boxed future returned by [`Clock::sleep`].
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Reads the current time and waits.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time on this clock.
    fn now(&self) -> DateTime<Utc>;
    /// Wait until `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> SleepFuture<'_>;
    /// Seconds of this clock per wall-clock second (1 for real time).
    fn scale(&self) -> f64 {
        1.0
    }
}

/// A clock shared across tasks.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time; waits on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        let d = duration.to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(d))
    }
}

/// Scenario time running `scale` times faster than tokio's clock, from `origin`.
///
/// Built on `tokio::time::Instant`, so it also runs on paused tokio time in tests.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: tokio::time::Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock that reads `origin` now and runs `scale` times faster than real time.
    /// A scale that is not a positive finite number is taken as 1.
    pub fn new(origin: DateTime<Utc>, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        Self { origin, started: tokio::time::Instant::now(), scale }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let wall = self.started.elapsed().as_secs_f64() * self.scale;
        self.origin + Duration::microseconds((wall * 1e6) as i64)
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        let wall = duration.to_std().unwrap_or_default().div_f64(self.scale);
        Box::pin(tokio::time::sleep(wall))
    }

    fn scale(&self) -> f64 {
        self.scale
    }
}

/// A clock moved only by hand or by sleeping: `sleep(d)` advances it by `d` at once.
///
/// For simulations that run as fast as they compute, and for unit tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock that reads `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Move the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += d;
    }

    /// Set the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_compresses_time() {
        let origin: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(origin, 60.0);
        let wall = tokio::time::Instant::now();
        clock.sleep(Duration::minutes(10)).await;
        assert_eq!(wall.elapsed(), std::time::Duration::from_secs(10));
        let elapsed = clock.now() - origin;
        assert!((elapsed - Duration::minutes(10)).num_milliseconds().abs() < 100, "{elapsed}");
    }

    #[tokio::test]
    async fn manual_clock_advances_on_sleep() {
        let origin: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(origin);
        clock.sleep(Duration::hours(1)).await;
        clock.advance(Duration::minutes(1));
        assert_eq!(clock.now(), origin + Duration::minutes(61));
    }
}
