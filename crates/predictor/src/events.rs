//! The event-aware predictor (`statistical+events`): an event-free baseline times the
//! uplift of every scheduled event in the horizon.
//!
//! Each event's multiplier `m` comes from the learned uplift of its kind (the median of
//! past events of that kind, with their median lead and lag), or, when the kind has no
//! history, from the operator's `expected_multiplier`. An event of an unseen kind without
//! one gets no uplift, and the explanation says so. The weight of an event ramps linearly
//! from 0 to 1 over its lead before the start, is 1 during `[start, end)` and ramps back to
//! 0 over its lag after the end; each step is multiplied by `prod_e (1 + w_e(t) (m_e - 1))`
//! evaluated at the step's midpoint.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource, KindUplift, ScheduledEvent, UpliftTable};

use crate::grid::MaskWindow;
use crate::{PredictError, PredictRequest, Predictor};

/// The weight of an event at `t`: 0 outside `[start - lead, end + lag)`, rising linearly
/// over the lead, 1 during `[start, end)`, falling linearly over the lag.
pub fn ramp_weight(t: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>, lead: Duration, lag: Duration) -> f64 {
    if t >= start && t < end {
        1.0
    } else if t < start {
        let before = (start - t).num_milliseconds() as f64;
        let lead = lead.num_milliseconds() as f64;
        if before < lead { 1.0 - before / lead } else { 0.0 }
    } else {
        let after = (t - end).num_milliseconds() as f64;
        let lag = lag.num_milliseconds() as f64;
        if after < lag { 1.0 - after / lag } else { 0.0 }
    }
}

/// Where an event's multiplier comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Basis {
    /// The learned uplift of the kind, from this many past events.
    Learned(usize),
    /// The operator's expected multiplier (the kind has no history).
    Declared,
    /// Neither: no uplift.
    Unknown,
}

/// How one scheduled event moves the forecast.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effect {
    pub name: String,
    pub kind: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// 1 when the event gets no uplift.
    pub multiplier: f64,
    pub lead: Duration,
    pub lag: Duration,
    pub basis: Basis,
}

impl Effect {
    /// Resolve `event` against the uplift tables, first match wins (`step_secs` is the
    /// history step, used when a table does not state its own).
    pub fn resolve(event: &ScheduledEvent, tables: &[&UpliftTable], step_secs: u32) -> Self {
        let learned = tables.iter().find_map(|table| {
            let kind = table.get(&event.kind).filter(|k| usable(k))?;
            let unit = i64::from(if table.step_secs > 0 { table.step_secs } else { step_secs });
            Some((kind, unit))
        });
        let (multiplier, lead, lag, basis) = match (learned, event.expected_multiplier) {
            (Some((kind, unit)), _) => (
                kind.median_uplift,
                Duration::seconds(unit * i64::from(kind.lead_steps)),
                Duration::seconds(unit * i64::from(kind.lag_steps)),
                Basis::Learned(kind.observations.len()),
            ),
            (None, Some(m)) if m.is_finite() && m > 0.0 => (m, Duration::zero(), Duration::zero(), Basis::Declared),
            _ => (1.0, Duration::zero(), Duration::zero(), Basis::Unknown),
        };
        Self {
            name: event.name.clone(),
            kind: event.kind.clone(),
            start: event.start,
            end: event.end,
            multiplier,
            lead,
            lag,
            basis,
        }
    }

    /// Whether the event's influence `[start - lead, end + lag)` overlaps `[from, to)`.
    pub fn touches(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.start - self.lead < to && self.end + self.lag > from
    }

    /// The factor this event applies at `t`.
    pub fn factor(&self, t: DateTime<Utc>) -> f64 {
        1.0 + ramp_weight(t, self.start, self.end, self.lead, self.lag) * (self.multiplier - 1.0)
    }

    /// One clause of an explanation.
    pub fn describe(&self) -> String {
        let head = format!("event '{}' (kind `{}`)", self.name, self.kind);
        match self.basis {
            Basis::Learned(n) => format!(
                "{head}: x{:.2} learned from {n} past event{}, ramping up over {} min before the start and down over {} min after the end",
                self.multiplier,
                if n == 1 { "" } else { "s" },
                self.lead.num_minutes(),
                self.lag.num_minutes()
            ),
            Basis::Declared => {
                format!("{head}: x{:.2} from its expected multiplier (no history for the kind)", self.multiplier)
            }
            Basis::Unknown => format!("{head} has no history and no expected multiplier: no uplift applied"),
        }
    }
}

/// A learned kind is usable when it has observations and a finite positive median.
fn usable(kind: &KindUplift) -> bool {
    !kind.observations.is_empty() && kind.median_uplift.is_finite() && kind.median_uplift > 0.0
}

/// The product of the factors of `effects` at `t`.
pub(crate) fn combined_factor(effects: &[Effect], t: DateTime<Utc>) -> f64 {
    effects.iter().map(|e| e.factor(t)).product()
}

/// The windows to leave out of a baseline: each event widened by its kind's learned lead
/// and lag, and at least by the given margins.
pub(crate) fn mask_windows(
    events: &[ScheduledEvent],
    tables: &[&UpliftTable],
    step_secs: u32,
    before: Duration,
    after: Duration,
) -> Vec<MaskWindow> {
    events
        .iter()
        .map(|event| {
            let effect = Effect::resolve(event, tables, step_secs);
            (event.start - effect.lead.max(before), event.end + effect.lag.max(after))
        })
        .collect()
}

/// The event-aware predictor: `baseline` times the uplift of each event in the horizon.
///
/// Uplifts are looked up in the request's table first, then in the table given here
/// (typically the one stored in a fitted [`crate::Model`]).
pub struct EventAware {
    baseline: Arc<dyn Predictor>,
    uplift: UpliftTable,
}

impl EventAware {
    /// Wrap an event-free `baseline`; `uplift` is used for kinds the request's table lacks.
    pub fn new(baseline: Arc<dyn Predictor>, uplift: UpliftTable) -> Self {
        Self { baseline, uplift }
    }
}

#[async_trait]
impl Predictor for EventAware {
    fn source(&self) -> ForecastSource {
        ForecastSource::StatisticalEvents
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        let base = self.baseline.predict(request).await?;
        let tables = [&request.uplift, &self.uplift];
        let (from, to) = (base.start, base.end());
        let effects: Vec<Effect> = request
            .events
            .iter()
            .map(|e| Effect::resolve(e, &tables, request.history.step_secs()))
            .filter(|e| e.touches(from, to))
            .collect();
        let half_step = base.step() / 2;
        let points = base
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let factor = combined_factor(&effects, base.timestamp(i) + half_step);
                ForecastPoint { p50: p.p50 * factor, p90: p.p90 * factor }
            })
            .collect();
        let events = if effects.is_empty() {
            "no scheduled event in the horizon".to_string()
        } else {
            effects.iter().map(Effect::describe).collect::<Vec<_>>().join("; ")
        };
        let baseline =
            if base.baseline.is_empty() { base.points.iter().map(|p| p.p50).collect() } else { base.baseline };
        Ok(Forecast {
            start: base.start,
            step_secs: base.step_secs,
            points,
            baseline,
            source: ForecastSource::StatisticalEvents,
            explanation: format!("{}; {events}", base.explanation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::UpliftObservation;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn event(kind: &str, expected: Option<f64>) -> ScheduledEvent {
        ScheduledEvent {
            id: "e".into(),
            name: "STS-70 Discovery launch".into(),
            kind: kind.into(),
            start: t("2026-01-01T12:00:00Z"),
            end: t("2026-01-01T13:00:00Z"),
            description: None,
            expected_multiplier: expected,
        }
    }

    fn table(kind: &str, uplift: f64, lead: u32, lag: u32, step_secs: u32) -> UpliftTable {
        let obs = UpliftObservation {
            event_id: "old".into(),
            date: t("2025-12-01T12:00:00Z"),
            uplift,
            lead_steps: lead,
            lag_steps: lag,
        };
        let mut table = UpliftTable { step_secs, ..Default::default() };
        table.kinds.insert(kind.into(), KindUplift::from_observations(vec![obs]).unwrap());
        table
    }

    #[test]
    fn ramp_rises_over_the_lead_and_falls_over_the_lag() {
        let (s, e) = (t("2026-01-01T12:00:00Z"), t("2026-01-01T13:00:00Z"));
        let w = |x: &str| ramp_weight(t(x), s, e, Duration::minutes(20), Duration::minutes(40));
        assert_eq!(w("2026-01-01T11:30:00Z"), 0.0);
        assert_eq!(w("2026-01-01T11:40:00Z"), 0.0);
        assert!((w("2026-01-01T11:50:00Z") - 0.5).abs() < 1e-12);
        assert_eq!(w("2026-01-01T12:00:00Z"), 1.0);
        assert_eq!(w("2026-01-01T12:59:59Z"), 1.0);
        assert!((w("2026-01-01T13:10:00Z") - 0.75).abs() < 1e-12);
        assert_eq!(w("2026-01-01T13:40:00Z"), 0.0);
        assert_eq!(ramp_weight(t("2026-01-01T11:59:00Z"), s, e, Duration::zero(), Duration::zero()), 0.0);
        assert_eq!(ramp_weight(t("2026-01-01T13:00:00Z"), s, e, Duration::zero(), Duration::zero()), 0.0);
    }

    #[test]
    fn learned_uplift_wins_over_the_expected_multiplier() {
        let tbl = table("launch", 3.0, 2, 4, 300);
        let e = Effect::resolve(&event("launch", Some(9.0)), &[&tbl], 60);
        assert_eq!(e.multiplier, 3.0);
        assert_eq!(e.lead, Duration::minutes(10), "lead steps are in the table's step");
        assert_eq!(e.lag, Duration::minutes(20));
        assert_eq!(e.basis, Basis::Learned(1));
        assert!(e.describe().contains("x3.00 learned from 1 past event,"), "{}", e.describe());
    }

    #[test]
    fn expected_multiplier_applies_when_the_kind_has_no_history() {
        let tbl = table("landing", 3.0, 0, 0, 60);
        let e = Effect::resolve(&event("launch", Some(2.5)), &[&tbl], 60);
        assert_eq!((e.multiplier, e.basis.clone()), (2.5, Basis::Declared));
        assert!((e.factor(t("2026-01-01T12:30:00Z")) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn unseen_kind_without_expectation_gets_no_uplift_and_says_so() {
        let e = Effect::resolve(&event("launch", None), &[&UpliftTable::default()], 60);
        assert_eq!(e.multiplier, 1.0);
        assert_eq!(
            e.describe(),
            "event 'STS-70 Discovery launch' (kind `launch`) has no history and no expected multiplier: no uplift applied"
        );
    }

    #[test]
    fn first_table_wins_and_table_step_defaults_to_the_history_step() {
        let newer = table("launch", 2.0, 1, 0, 0);
        let older = table("launch", 5.0, 1, 0, 300);
        let e = Effect::resolve(&event("launch", None), &[&newer, &older], 60);
        assert_eq!(e.multiplier, 2.0);
        assert_eq!(e.lead, Duration::minutes(1));
    }

    #[test]
    fn factors_of_overlapping_events_multiply() {
        let tbl = table("launch", 3.0, 0, 0, 60);
        let a = Effect::resolve(&event("launch", None), &[&tbl], 60);
        let b = Effect::resolve(&event("other", Some(2.0)), &[&tbl], 60);
        assert!((combined_factor(&[a, b], t("2026-01-01T12:10:00Z")) - 6.0).abs() < 1e-12);
    }

    #[test]
    fn mask_windows_widen_by_lead_lag_and_margins() {
        let tbl = table("launch", 3.0, 60, 0, 60);
        let w = mask_windows(&[event("launch", None)], &[&tbl], 60, Duration::minutes(30), Duration::minutes(15));
        assert_eq!(w, vec![(t("2026-01-01T11:00:00Z"), t("2026-01-01T13:15:00Z"))]);
    }
}
