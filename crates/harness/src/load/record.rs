//! Recording outcomes: HDR latency histograms per window of scenario time and per phase.
//!
//! A request belongs to the window and phase of its *intended* send time, and its latency
//! is measured from that intended time, so a late send counts against the latency instead
//! of hiding it (no coordinated omission). Latency histograms hold successful (2xx)
//! responses; every other outcome is an error, counted by kind.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::LoadError;

/// Lowest latency the histograms track, microseconds.
const LOW_US: u64 = 1;
/// Highest latency the histograms track, microseconds (longer values are clamped).
const HIGH_US: u64 = 120_000_000;
/// Significant figures of the histograms.
const SIGFIG: u8 = 3;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx response, read to its end.
    Success,
    /// A response with another status.
    Status(u16),
    /// No complete response within the timeout.
    Timeout,
    /// The connection failed or broke.
    Connection,
}

/// A new empty latency histogram in microseconds.
pub(crate) fn new_histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(LOW_US, HIGH_US, SIGFIG).map_err(|e| LoadError::Histogram(e.to_string()))
}

/// Latency statistics of successful requests, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencySummary {
    /// Successful requests measured.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl LatencySummary {
    /// The summary of a microsecond histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Counts and latencies of a set of requests (a window, a phase, the whole run).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Requests sent (offered).
    pub sent: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered with another status (5xx, 4xx).
    pub status_errors: u64,
    /// Requests without a complete response within the timeout.
    pub timeouts: u64,
    /// Requests whose connection failed.
    pub connection_errors: u64,
    /// Latency of the 2xx responses, microseconds.
    pub latency: Histogram<u64>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Result<Self, LoadError> {
        Ok(Self { sent: 0, ok: 0, status_errors: 0, timeouts: 0, connection_errors: 0, latency: new_histogram()? })
    }

    /// Requests that ended in an error of any kind.
    pub fn errors(&self) -> u64 {
        self.status_errors + self.timeouts + self.connection_errors
    }

    /// Requests that ended (successfully or not).
    pub fn completed(&self) -> u64 {
        self.ok + self.errors()
    }

    /// Errors over completed requests (0 when none completed).
    pub fn error_rate(&self) -> f64 {
        let done = self.completed();
        if done == 0 { 0.0 } else { self.errors() as f64 / done as f64 }
    }

    /// The latency summary.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.latency)
    }

    /// Add another tally to this one.
    pub fn merge(&mut self, other: &Tally) -> Result<(), LoadError> {
        self.sent += other.sent;
        self.ok += other.ok;
        self.status_errors += other.status_errors;
        self.timeouts += other.timeouts;
        self.connection_errors += other.connection_errors;
        self.latency.add(&other.latency).map_err(|e| LoadError::Histogram(e.to_string()))
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Success => {
                self.ok += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(HIGH_US).clamp(LOW_US, HIGH_US);
                self.latency.saturating_record(us);
            }
            Outcome::Status(_) => self.status_errors += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Connection => self.connection_errors += 1,
        }
    }
}

/// One window of scenario time with what was sent in it.
#[derive(Debug, Clone)]
pub struct WindowTally {
    /// Window start, scenario seconds.
    pub start_s: f64,
    /// The requests whose intended send time falls in the window.
    pub tally: Tally,
}

#[derive(Debug)]
struct Inner {
    windows: BTreeMap<u64, Tally>,
    phases: BTreeMap<String, Tally>,
    total: Tally,
    in_flight: u64,
    max_send_lag: Duration,
    total_send_lag: Duration,
}

/// Thread-safe recorder shared by the dispatcher and the request tasks.
#[derive(Debug)]
pub struct Recorder {
    window_s: f64,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder with windows of `window_s` scenario seconds.
    pub fn new(window_s: f64) -> Result<Self, LoadError> {
        if !(window_s.is_finite() && window_s > 0.0) {
            return Err(LoadError::Config(format!("window must be a positive number of seconds, got {window_s}")));
        }
        Ok(Self {
            window_s,
            inner: Mutex::new(Inner {
                windows: BTreeMap::new(),
                phases: BTreeMap::new(),
                total: Tally::new()?,
                in_flight: 0,
                max_send_lag: Duration::ZERO,
                total_send_lag: Duration::ZERO,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn window_of(&self, t_s: f64) -> u64 {
        (t_s.max(0.0) / self.window_s).floor() as u64
    }

    /// Width of the windows, scenario seconds.
    pub fn window_s(&self) -> f64 {
        self.window_s
    }

    /// A request intended at `t_s` scenario seconds in `phase` is being sent `lag` late.
    pub fn sent(&self, t_s: f64, phase: &str, lag: Duration) -> Result<(), LoadError> {
        let w = self.window_of(t_s);
        let mut inner = self.lock();
        if let std::collections::btree_map::Entry::Vacant(e) = inner.windows.entry(w) {
            e.insert(Tally::new()?);
        }
        if !inner.phases.contains_key(phase) {
            inner.phases.insert(phase.to_string(), Tally::new()?);
        }
        if let Some(t) = inner.windows.get_mut(&w) {
            t.sent += 1;
        }
        if let Some(t) = inner.phases.get_mut(phase) {
            t.sent += 1;
        }
        inner.total.sent += 1;
        inner.in_flight += 1;
        inner.max_send_lag = inner.max_send_lag.max(lag);
        inner.total_send_lag += lag;
        Ok(())
    }

    /// The request intended at `t_s` in `phase` ended with `outcome` after `latency`
    /// (measured from its intended send time).
    pub fn completed(&self, t_s: f64, phase: &str, outcome: Outcome, latency: Duration) {
        let w = self.window_of(t_s);
        let mut inner = self.lock();
        if let Some(t) = inner.windows.get_mut(&w) {
            t.record(outcome, latency);
        }
        if let Some(t) = inner.phases.get_mut(phase) {
            t.record(outcome, latency);
        }
        inner.total.record(outcome, latency);
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }

    /// Requests sent and not ended yet.
    pub fn in_flight(&self) -> u64 {
        self.lock().in_flight
    }

    /// The longest a request was sent after its intended time.
    pub fn max_send_lag(&self) -> Duration {
        self.lock().max_send_lag
    }

    /// The mean delay of a request behind its intended time (the timer's granularity and the
    /// dispatcher's own latency; it counts in every latency measured).
    pub fn mean_send_lag(&self) -> Duration {
        let inner = self.lock();
        match u32::try_from(inner.total.sent) {
            Ok(n) if n > 0 => inner.total_send_lag / n,
            _ => Duration::ZERO,
        }
    }

    /// The window holding scenario second `t_s`, if anything was sent in it.
    pub fn window(&self, t_s: f64) -> Option<WindowTally> {
        let w = self.window_of(t_s);
        self.lock().windows.get(&w).map(|t| WindowTally { start_s: w as f64 * self.window_s, tally: t.clone() })
    }

    /// Every window with traffic, in order.
    pub fn windows(&self) -> Vec<WindowTally> {
        self.lock()
            .windows
            .iter()
            .map(|(w, t)| WindowTally { start_s: *w as f64 * self.window_s, tally: t.clone() })
            .collect()
    }

    /// Every phase with traffic, by name.
    pub fn phases(&self) -> BTreeMap<String, Tally> {
        self.lock().phases.clone()
    }

    /// The whole run so far.
    pub fn total(&self) -> Tally {
        self.lock().total.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_phases_and_totals_count_by_intended_time() {
        let r = Recorder::new(10.0).unwrap();
        r.sent(3.0, "baseline", Duration::ZERO).unwrap();
        r.sent(12.0, "surge", Duration::from_millis(4)).unwrap();
        r.sent(13.0, "surge", Duration::ZERO).unwrap();
        assert_eq!(r.in_flight(), 3);
        r.completed(3.0, "baseline", Outcome::Success, Duration::from_millis(20));
        r.completed(12.0, "surge", Outcome::Timeout, Duration::from_secs(2));
        r.completed(13.0, "surge", Outcome::Status(503), Duration::from_millis(1));
        assert_eq!(r.in_flight(), 0);
        assert_eq!(r.max_send_lag(), Duration::from_millis(4));
        assert_eq!(r.mean_send_lag(), Duration::from_millis(4) / 3);
        let windows = r.windows();
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[1].start_s, 10.0);
        assert_eq!(windows[1].tally.errors(), 2);
        assert_eq!(windows[1].tally.timeouts, 1);
        assert_eq!(windows[0].tally.ok, 1);
        let p50 = windows[0].tally.summary().p50;
        assert!((p50 - 20.0).abs() < 0.1, "{p50}");
        let phases = r.phases();
        assert_eq!(phases["surge"].error_rate(), 1.0);
        assert_eq!(r.total().sent, 3);
        let mut merged = phases["baseline"].clone();
        merged.merge(&phases["surge"]).unwrap();
        assert_eq!(merged.completed(), 3);
        assert!((merged.error_rate() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_zero_window_is_rejected() {
        assert!(Recorder::new(0.0).is_err());
    }
}
