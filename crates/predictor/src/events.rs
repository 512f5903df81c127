//! The event-aware predictor (`statistical+events`): an event-free baseline times the
//! uplift of every scheduled event in the horizon.
//!
//! Each event's multiplier `m` comes from the learned uplift of its kind (the median of
//! past events of that kind, with their median lead and lag), or, when the kind has no
//! history, from the operator's `expected_multiplier`. An event of an unseen kind without
//! one gets no uplift, and the explanation says so. The weight of an event ramps linearly
//! from 0 to 1 over its lead before the start, is 1 during `[start, end)` and ramps back to
//! 0 over its lag after the end; each step is multiplied by `prod_e (1 + w_e(t) (m_e - 1))`
//! evaluated at the step's midpoint, where overlapping events of one kind count once (the
//! largest factor among them): two matches at once do not square a match's uplift.
//!
//! With a fitted [`crate::Model`] ([`crate::Model::event_aware`]), a kind seen in at least
//! three measured windows also has a learned shape, its multiplier per eighth of the window
//! (traffic at a match peaks after the final whistle, not evenly), and a learned spread, the
//! 90th percentile of actual over forecast inside its past windows: events of one kind
//! differ, and the baseline's p90 (fitted outside event windows) does not know by how much.
//! Inside an event's influence the p90 is the p50 times the wider of the two spreads.

use std::collections::BTreeMap;
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

/// Segments an event window is cut into for its kind's learned shape.
pub(crate) const SHAPE_SEGMENTS: usize = 8;

/// Learned shapes per event kind: the multiplier in each of [`SHAPE_SEGMENTS`] equal parts of
/// the window relative to the window's mean (mean 1).
pub(crate) type Shapes = BTreeMap<String, Vec<f64>>;

/// Learned spreads per event kind: the 90th percentile of actual over forecast inside the
/// kind's past windows (at least 1).
pub(crate) type Spreads = BTreeMap<String, f64>;

/// The segment of `[start, end)` that `t` falls in, `None` outside.
pub(crate) fn segment_of(t: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<usize> {
    let length = (end - start).num_milliseconds();
    let into = (t - start).num_milliseconds();
    (t >= start && t < end && length > 0)
        .then(|| usize::try_from(into * SHAPE_SEGMENTS as i64 / length).unwrap_or(0).min(SHAPE_SEGMENTS - 1))
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
    /// The kind's learned shape over the window (mean 1), when known.
    pub shape: Option<Vec<f64>>,
    /// The kind's learned spread in its windows (p90 over p50), when known.
    pub spread: Option<f64>,
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
            shape: None,
            spread: None,
        }
    }

    /// The same effect with its kind's shape and spread, when the multiplier was learned (a
    /// declared multiplier is flat, and nothing says how far it may be off).
    pub fn shaped(mut self, shapes: &Shapes, spreads: &Spreads) -> Self {
        if matches!(self.basis, Basis::Learned(_)) {
            self.shape = shapes.get(&self.kind).filter(|s| s.len() == SHAPE_SEGMENTS).cloned();
            self.spread = spreads.get(&self.kind).copied().filter(|s| s.is_finite() && *s >= 1.0);
        }
        self
    }

    /// The event's weight at `t` (0 outside its influence, 1 inside its window).
    pub fn weight(&self, t: DateTime<Utc>) -> f64 {
        ramp_weight(t, self.start, self.end, self.lead, self.lag)
    }

    /// `multiplier` at `t`: shaped inside the window; before it the first segment's, after
    /// it the last one's (the ramps fade those).
    fn shaped_at(&self, multiplier: f64, t: DateTime<Utc>) -> f64 {
        let Some(shape) = &self.shape else { return multiplier };
        let segment =
            if t < self.start { 0 } else { segment_of(t, self.start, self.end).unwrap_or(SHAPE_SEGMENTS - 1) };
        multiplier * shape[segment]
    }

    /// Whether the event's influence `[start - lead, end + lag)` overlaps `[from, to)`.
    pub fn touches(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.start - self.lead < to && self.end + self.lag > from
    }

    /// The factor this event applies at `t`.
    pub fn factor(&self, t: DateTime<Utc>) -> f64 {
        1.0 + self.weight(t) * (self.shaped_at(self.multiplier, t) - 1.0)
    }

    /// The event in a few words for a headline: `'name' starts 14:00 UTC (x3.00)`.
    pub fn headline(&self, origin: DateTime<Utc>) -> String {
        let when = if self.start > origin {
            format!("starts {}", self.start.format("%H:%M UTC"))
        } else {
            format!("runs until {}", self.end.format("%H:%M UTC"))
        };
        match self.basis {
            Basis::Unknown => format!("'{}' {when} (no uplift known)", self.name),
            _ => format!("'{}' {when} (x{:.2})", self.name, self.multiplier),
        }
    }

    /// One clause of an explanation.
    pub fn describe(&self) -> String {
        let head = format!("event '{}' (kind `{}`)", self.name, self.kind);
        match self.basis {
            Basis::Learned(n) => format!(
                "{head}: x{:.2} learned from {n} past event{}{}{}, ramping up over {} min before the start and down over {} min after the end",
                self.multiplier,
                if n == 1 { "" } else { "s" },
                self.spread.map_or(String::new(), |s| format!(", p90 x{s:.2} of it in its windows")),
                self.shape.as_ref().map_or(String::new(), |shape| format!(
                    " (shaped: x{:.2} in the first eighth of the window, x{:.2} in the last)",
                    self.multiplier * shape[0],
                    self.multiplier * shape[SHAPE_SEGMENTS - 1]
                )),
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

/// The factors of `effects` at `t` combined: events of one kind that overlap count once,
/// with the largest factor among them (two matches at once draw one audience, and a kind's
/// uplift is learned as "an event of this kind is on"); different kinds multiply.
pub(crate) fn combined_factor(effects: &[Effect], t: DateTime<Utc>) -> f64 {
    let mut by_kind: Vec<(&str, f64)> = Vec::new();
    for effect in effects {
        let factor = effect.factor(t);
        match by_kind.iter_mut().find(|(kind, _)| *kind == effect.kind) {
            Some((_, largest)) => *largest = largest.max(factor),
            None => by_kind.push((&effect.kind, factor)),
        }
    }
    by_kind.iter().map(|(_, f)| f).product()
}

/// The p90 over p50 at `t`: the baseline's `base_spread`, or inside an event's influence the
/// kind's own spread when wider (what its past windows showed, errors of the baseline and of
/// the multiplier together), phased in by the event's weight. The widest wins.
pub(crate) fn spread_at(effects: &[Effect], t: DateTime<Utc>, base_spread: f64) -> f64 {
    let base = base_spread.max(1.0);
    effects
        .iter()
        .filter_map(|e| {
            let weight = e.weight(t);
            let spread = e.spread?.max(base);
            (weight > 0.0).then(|| base.powf(1.0 - weight) * spread.powf(weight))
        })
        .fold(base, f64::max)
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
    shapes: Shapes,
    spreads: Spreads,
}

impl EventAware {
    /// Wrap an event-free `baseline`; `uplift` is used for kinds the request's table lacks.
    /// Multipliers are flat over each window and the p90 is the baseline's;
    /// [`crate::Model::event_aware`] adds the shapes and spreads the model learned.
    pub fn new(baseline: Arc<dyn Predictor>, uplift: UpliftTable) -> Self {
        Self { baseline, uplift, shapes: Shapes::new(), spreads: Spreads::new() }
    }

    /// The same predictor with learned shapes per kind (see [`crate::Model::event_shapes`]).
    pub fn with_shapes(mut self, shapes: BTreeMap<String, Vec<f64>>) -> Self {
        self.shapes = shapes;
        self
    }

    /// The same predictor with learned spreads per kind (see [`crate::Model::event_spreads`]).
    pub fn with_spreads(mut self, spreads: BTreeMap<String, f64>) -> Self {
        self.spreads = spreads;
        self
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
            .map(|e| Effect::resolve(e, &tables, request.history.step_secs()).shaped(&self.shapes, &self.spreads))
            .filter(|e| e.touches(from, to))
            .collect();
        let half_step = base.step() / 2;
        let points = base
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mid = base.timestamp(i) + half_step;
                let factor = combined_factor(&effects, mid);
                let p50 = p.p50 * factor;
                let p90 = if p.p50 > 0.0 { p50 * spread_at(&effects, mid, p.p90 / p.p50) } else { p.p90 * factor };
                ForecastPoint { p50, p90: p90.max(p50) }
            })
            .collect();
        // The first clause is the headline a scaling decision quotes: the events when there are any.
        let explanation = if effects.is_empty() {
            format!("{}; no scheduled event in the horizon", base.explanation)
        } else {
            let headline = effects.iter().map(|e| e.headline(base.start)).collect::<Vec<_>>().join(", ");
            let details = effects.iter().map(Effect::describe).collect::<Vec<_>>().join("; ");
            format!("{headline}; {details}; {}", base.explanation)
        };
        let baseline =
            if base.baseline.is_empty() { base.points.iter().map(|p| p.p50).collect() } else { base.baseline };
        Ok(Forecast {
            start: base.start,
            step_secs: base.step_secs,
            points,
            baseline,
            source: ForecastSource::StatisticalEvents,
            explanation,
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
    fn factors_of_overlapping_kinds_multiply_and_one_kind_counts_once() {
        let tbl = table("launch", 3.0, 0, 0, 60);
        let a = Effect::resolve(&event("launch", None), &[&tbl], 60);
        let b = Effect::resolve(&event("other", Some(2.0)), &[&tbl], 60);
        let c = Effect::resolve(&event("other", Some(1.5)), &[&tbl], 60);
        let at = t("2026-01-01T12:10:00Z");
        assert!((combined_factor(&[a.clone(), b.clone()], at) - 6.0).abs() < 1e-12);
        // Two `other` events at once: the larger factor, once.
        assert!((combined_factor(&[a, b, c], at) - 6.0).abs() < 1e-12);
    }

    #[test]
    fn mask_windows_widen_by_lead_lag_and_margins() {
        let tbl = table("launch", 3.0, 60, 0, 60);
        let w = mask_windows(&[event("launch", None)], &[&tbl], 60, Duration::minutes(30), Duration::minutes(15));
        assert_eq!(w, vec![(t("2026-01-01T11:00:00Z"), t("2026-01-01T13:15:00Z"))]);
    }
}
