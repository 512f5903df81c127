//! Cache of validated answers, so the LLM is asked only when something changed.
//!
//! Keyed by (endpoint, model, prompt version, canonical event set, coarse feature bucket).
//! A cached answer goes stale when an event is about to start (it was asked before the
//! re-ask point) or when observed traffic during an event leaves the band around the
//! forecast built from it. Time here is the forecast origin of the request, so
//! backtests behave like live runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use prescale_core::{ScheduledEvent, TimeSeries};

use super::answer::Answer;

/// Most cached answers kept; the oldest is dropped first.
const CAPACITY: usize = 64;
/// Observed steps compared with the forecast when checking the traffic band.
const BAND_STEPS: usize = 3;
/// Forecast steps remembered for the band check.
const REMEMBERED_STEPS: usize = 512;

/// What identifies a reusable answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CacheKey {
    pub endpoint: String,
    pub model: String,
    pub prompt_version: &'static str,
    /// One canonical line per event, sorted.
    pub events: Vec<String>,
    /// Coarse traffic regime: log2 of recent traffic against the same hours a week (or a day)
    /// before, rounded and clamped to -3..=3; `None` without that history.
    pub bucket: Option<i32>,
}

/// A cached answer and what is needed to decide when it goes stale.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    pub answer: Answer,
    /// Forecast origin of the request that asked.
    pub asked_at: DateTime<Utc>,
    /// Adjusted p50 of steps that lie inside an event, by step start (latest forecast wins).
    pub in_event_forecast: BTreeMap<DateTime<Utc>, f64>,
}

impl CacheEntry {
    pub fn new(answer: Answer, asked_at: DateTime<Utc>) -> Self {
        Self { answer, asked_at, in_event_forecast: BTreeMap::new() }
    }

    /// Remember the forecast of in-event steps, for the traffic band check.
    pub fn remember(&mut self, steps: impl IntoIterator<Item = (DateTime<Utc>, f64)>) {
        self.in_event_forecast.extend(steps);
        while self.in_event_forecast.len() > REMEMBERED_STEPS {
            self.in_event_forecast.pop_first();
        }
    }

    /// Why this answer must not be reused at `at`, if it must not.
    pub fn staleness(
        &self,
        events: &[&ScheduledEvent],
        history: &TimeSeries,
        at: DateTime<Utc>,
        reask_before: Duration,
        band: (f64, f64),
    ) -> Option<String> {
        for e in events {
            let reask_at = e.start - reask_before;
            if self.asked_at < reask_at && at >= reask_at {
                return Some(format!("event {} starts within {} min", e.id, reask_before.num_minutes()));
            }
        }
        let observed: Vec<(f64, f64)> = self
            .in_event_forecast
            .range(..at)
            .rev()
            .filter_map(|(t, forecast)| history.value_at(*t).map(|obs| (obs, *forecast)))
            .take(BAND_STEPS)
            .collect();
        let (obs, forecast) = observed.iter().fold((0.0, 0.0), |(o, f), (a, b)| (o + a, f + b));
        if !observed.is_empty() && forecast > 0.0 {
            let ratio = obs / forecast;
            if ratio < band.0 || ratio > band.1 {
                return Some(format!("observed traffic is {ratio:.2}x the adjusted forecast during the event"));
            }
        }
        None
    }
}

/// The cached answers.
#[derive(Debug, Default)]
pub(crate) struct AnswerCache {
    entries: BTreeMap<CacheKey, CacheEntry>,
}

impl AnswerCache {
    pub fn get(&self, key: &CacheKey) -> Option<&CacheEntry> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &CacheKey) -> Option<&mut CacheEntry> {
        self.entries.get_mut(key)
    }

    pub fn insert(&mut self, key: CacheKey, entry: CacheEntry) {
        self.entries.insert(key, entry);
        while self.entries.len() > CAPACITY {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.asked_at).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    pub fn remove(&mut self, key: &CacheKey) {
        self.entries.remove(key);
    }
}

/// One line per event with every field that could change the answer.
pub(crate) fn canonical_events(events: &[&ScheduledEvent]) -> Vec<String> {
    let mut lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{}",
                e.id,
                e.kind,
                e.start.to_rfc3339(),
                e.end.to_rfc3339(),
                e.name,
                e.expected_multiplier,
                e.description.as_deref().unwrap_or("")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The coarse traffic regime at `at` (see [`CacheKey::bucket`]).
pub(crate) fn feature_bucket(history: &TimeSeries, at: DateTime<Utc>) -> Option<i32> {
    let window = Duration::hours(2);
    let mean = |from: DateTime<Utc>| history.window(from, from + window).mean().filter(|m| m.is_finite() && *m > 0.0);
    let recent = mean(at - window)?;
    let reference = mean(at - window - Duration::days(7)).or_else(|| mean(at - window - Duration::days(1)))?;
    Some((recent / reference).log2().round().clamp(-3.0, 3.0) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn answer() -> Answer {
        Answer {
            adjustments: BTreeMap::new(),
            drift: 1.0,
            confidence: 1.0,
            advisory_replicas: None,
            rationale: String::new(),
        }
    }

    fn event(start: &str) -> ScheduledEvent {
        ScheduledEvent {
            id: "spring".into(),
            name: "Spring".into(),
            kind: "campaign".into(),
            start: t(start),
            end: t(start) + Duration::hours(1),
            description: None,
            expected_multiplier: None,
        }
    }

    #[test]
    fn an_answer_asked_early_goes_stale_when_the_event_is_about_to_start() {
        let e = event("2026-03-01T14:00:00Z");
        let history = TimeSeries::from_values(t("2026-03-01T12:00:00Z"), Duration::minutes(5), vec![]).unwrap();
        let early = CacheEntry::new(answer(), t("2026-03-01T13:00:00Z"));
        let band = (0.8, 1.25);
        let q = Duration::minutes(15);
        assert_eq!(early.staleness(&[&e], &history, t("2026-03-01T13:40:00Z"), q, band), None);
        assert!(
            early
                .staleness(&[&e], &history, t("2026-03-01T13:45:00Z"), q, band)
                .unwrap()
                .contains("starts within 15 min")
        );
        let late = CacheEntry::new(answer(), t("2026-03-01T13:50:00Z"));
        assert_eq!(late.staleness(&[&e], &history, t("2026-03-01T14:10:00Z"), q, band), None);
    }

    #[test]
    fn traffic_outside_the_band_during_an_event_makes_it_stale() {
        let e = event("2026-03-01T14:00:00Z");
        let start = t("2026-03-01T14:00:00Z");
        let step = Duration::minutes(5);
        let mut entry = CacheEntry::new(answer(), t("2026-03-01T13:50:00Z"));
        entry.remember((0..6).map(|i| (start + step * i, 300.0)));
        let within = TimeSeries::from_values(start, step, vec![290.0, 310.0, 280.0]).unwrap();
        let above = TimeSeries::from_values(start, step, vec![390.0, 410.0, 400.0]).unwrap();
        let at = start + step * 3;
        let q = Duration::minutes(15);
        assert_eq!(entry.staleness(&[&e], &within, at, q, (0.8, 1.25)), None);
        assert!(entry.staleness(&[&e], &above, at, q, (0.8, 1.25)).unwrap().contains("1.33x"));
    }

    #[test]
    fn canonical_events_ignore_order_and_see_changes() {
        let a = event("2026-03-01T14:00:00Z");
        let mut b = event("2026-03-02T14:00:00Z");
        b.id = "other".into();
        assert_eq!(canonical_events(&[&a, &b]), canonical_events(&[&b, &a]));
        let mut moved = a.clone();
        moved.start += Duration::minutes(30);
        assert_ne!(canonical_events(&[&a]), canonical_events(&[&moved]));
    }

    #[test]
    fn bucket_compares_with_last_week() {
        let step = Duration::hours(1);
        let at = t("2026-03-08T12:00:00Z");
        let start = at - Duration::days(8);
        let values: Vec<f64> = (0..8 * 24).map(|i| if i >= 8 * 24 - 2 { 400.0 } else { 100.0 }).collect();
        let history = TimeSeries::from_values(start, step, values).unwrap();
        assert_eq!(feature_bucket(&history, at), Some(2));
        assert_eq!(feature_bucket(&history.window(at - Duration::hours(3), at), at), None);
    }
}
