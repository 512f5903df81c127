//! The scaling decision as a pure function of forecast, replica state, policy, memory and `now`.
//!
//! One decision, in order:
//! 1. Forecast need: the largest p90 over `[now, now + lead time + one tick)`, in pods. Pods
//!    ordered now are Ready after the lead time; anything later can still be ordered next tick.
//! 2. Reactive floor: never fewer than the load observed now needs.
//! 3. A missing forecast or missing observed load never lowers replicas: the current count holds.
//! 4. Bounds `[min, max]`.
//! 5. Up at once, by at least `tolerance` of the current replicas. Down only when the target is
//!    more than `tolerance` below the current count, only to the highest target recommended
//!    within the stabilization window (a fresh memory counts the current count as recommended
//!    now), by at most `max_scale_down_fraction` of the current replicas per decision (at least
//!    one pod), and not within `scale_down_cooldown_secs` of the previous scale-down unless the
//!    step limit cut that one short.
//!
//! No IO, no clock: the same inputs and memory give the same decision.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use prescale_core::{Decision, Forecast, ReplicaState};
use serde::{Deserialize, Serialize};

use crate::Policy;

/// Longest part of a forecast's explanation quoted in a decision.
const EVENT_TEXT_MAX_CHARS: usize = 100;

/// One recommendation (the bounded target before stabilization) at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Recommendation {
    at: DateTime<Utc>,
    replicas: u32,
}

/// What [`decide`] remembers between decisions for one workload: the recent recommendations the
/// scale-down stabilization looks back on. Serializable, so a restart can keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionMemory {
    recommendations: VecDeque<Recommendation>,
    /// Whether any decision was recorded: a memory with nothing recent after earlier decisions
    /// means no higher target was asked for within the window, unlike a fresh memory.
    #[serde(default)]
    seen: bool,
    /// The last decision below the current count (for the cooldown).
    #[serde(default)]
    last_scale_down: Option<ScaleDown>,
}

/// A scale-down decision, as the cooldown needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ScaleDown {
    at: DateTime<Utc>,
    /// Whether the step limit cut it short: then the next decision continues it.
    cut_short: bool,
}

impl DecisionMemory {
    /// An empty memory: the first decision treats the current count as just recommended.
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest recommendation strictly after `cutoff`, if any.
    fn highest_after(&self, cutoff: DateTime<Utc>) -> Option<u32> {
        self.recommendations.iter().filter(|r| r.at > cutoff).map(|r| r.replicas).max()
    }

    /// Forgets recommendations at or before `cutoff` and records `replicas` at `at`.
    fn record(&mut self, cutoff: DateTime<Utc>, at: DateTime<Utc>, replicas: u32) {
        self.seen = true;
        self.recommendations.retain(|r| r.at > cutoff);
        match self.recommendations.back_mut() {
            // Repeated decisions at one instant keep the highest, so a retry cannot erase a need.
            Some(last) if last.at == at => last.replicas = last.replicas.max(replicas),
            _ => self.recommendations.push_back(Recommendation { at, replicas }),
        }
    }
}

/// A policy with the memory of one workload: [`decide`] for callers that keep one per workload.
#[derive(Debug, Clone)]
pub struct Provisioner {
    policy: Policy,
    memory: DecisionMemory,
}

impl Provisioner {
    /// A provisioner with an empty memory.
    pub fn new(policy: Policy) -> Self {
        Self { policy, memory: DecisionMemory::new() }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The memory as it stands (to persist it).
    pub fn memory(&self) -> &DecisionMemory {
        &self.memory
    }

    /// [`decide`] with this provisioner's policy and memory.
    pub fn decide(&mut self, forecast: Option<&Forecast>, state: &ReplicaState, now: DateTime<Utc>) -> Decision {
        decide(forecast, state, &self.policy, &mut self.memory, now)
    }
}

/// What the forecast asks for over the look-ahead window.
#[derive(Debug, Clone)]
struct ForecastNeed {
    replicas: u32,
    peak_rps: f64,
    peak_at: DateTime<Utc>,
    event: Option<String>,
}

/// Which constraint settled the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Forecast,
    ReactiveFloor,
    HoldMissingInput,
    MinReplicas,
    MaxReplicas,
    Stabilization { highest_recent: u32 },
    StepLimit,
    Tolerance,
    ScaleUpStep,
    ScaleDownCooldown { last: DateTime<Utc> },
}

/// The replica target for now, with a one-line explanation.
///
/// `forecast` is the latest forecast (None when the predictor failed), `state` the workload as
/// observed now (its `observed_load` in requests per step of `policy.config().capacity.step_secs`;
/// `hpa_floor` is not read: the target is what the floor should become), `memory` this workload's
/// memory (updated), `now` the decision time. Pure apart from `memory`: no IO, no clock.
pub fn decide(
    forecast: Option<&Forecast>,
    state: &ReplicaState,
    policy: &Policy,
    memory: &mut DecisionMemory,
    now: DateTime<Utc>,
) -> Decision {
    let config = policy.config();
    let current = state.spec;
    let capacity_step = config.capacity.step_secs;

    let forecast_need = forecast.ok_or("no forecast").and_then(|f| forecast_need(f, policy, now));
    let observed_load = state.observed_load.filter(|load| load.is_finite() && *load >= 0.0);
    let reactive_need = observed_load.map(|load| policy.replicas_needed(load, capacity_step));

    // 1-3: what the inputs ask for.
    let mut wanted = 0;
    let mut bound = Bound::Forecast;
    if let Ok(need) = &forecast_need {
        wanted = need.replicas;
    }
    if let Some(reactive) = reactive_need.filter(|reactive| *reactive > wanted) {
        wanted = reactive;
        bound = Bound::ReactiveFloor;
    }
    let missing_input = forecast_need.is_err() || reactive_need.is_none();
    if missing_input && wanted <= current {
        wanted = current;
        bound = Bound::HoldMissingInput;
    }

    // 4: bounds.
    let bounded = wanted.clamp(config.min_replicas, config.max_replicas);
    if bounded > wanted {
        bound = Bound::MinReplicas;
    } else if bounded < wanted {
        bound = Bound::MaxReplicas;
    }

    // 5: stabilization and step limit.
    let cutoff = now - policy.scale_down_stabilization();
    let highest_recent = match memory.highest_after(cutoff) {
        Some(highest) => highest,
        // A zero window stabilizes nothing; neither does a window that saw no decision since
        // the last one (decisions at least a window apart): no higher target was asked for in it.
        None if config.scale_down_stabilization_secs == 0 || memory.seen => bounded,
        None => {
            // Nothing recent is no evidence that a lower target held: the current count counts
            // as recommended now, so scale-down waits one full window.
            memory.record(cutoff, now, current);
            current
        }
    };
    memory.record(cutoff, now, bounded);
    let mut target = bounded;
    // The tolerance is a hysteresis band around the current count (the HPA's tolerance, for
    // the same reason: a few percent is forecast noise, and churn costs more than a spare pod).
    // Up: at once, and by at least the tolerance, so the next small rise is already covered;
    // a missing pod costs latency, so no rise is ever held back. Down: only below the band.
    let band = config.tolerance * f64::from(current);
    if bounded > current {
        let one_band_up = (f64::from(current) + band).ceil() as u32;
        if one_band_up > bounded {
            target = one_band_up;
            bound = Bound::ScaleUpStep;
        }
    } else if bounded < current {
        let stabilized = current.min(highest_recent.max(bounded));
        if stabilized > bounded {
            bound = Bound::Stabilization { highest_recent };
        }
        target = stabilized;
        // The band applies to where stabilization lands, before the step limit: a step the
        // limit cut short is part of a larger scale-down, never noise.
        if stabilized < current && f64::from(current - stabilized) <= band {
            target = current;
            bound = Bound::Tolerance;
        } else if stabilized < current {
            let largest_step = ((f64::from(current) * config.max_scale_down_fraction).floor() as u32).max(1);
            let lowest_allowed = current - largest_step.min(current);
            if stabilized < lowest_allowed {
                target = lowest_allowed;
                bound = Bound::StepLimit;
            }
        }
    }
    // A cooldown between scale-downs: a forecast that falls off a peak minute by minute would
    // otherwise remove a few pods every tick; waiting gives one larger step. A scale-down the
    // step limit cut short is one step of a larger one and continues at the next decision.
    if target < current {
        let cooldown = policy.scale_down_cooldown();
        match memory.last_scale_down {
            Some(last) if !last.cut_short && now - last.at < cooldown && now > last.at => {
                target = current;
                bound = Bound::ScaleDownCooldown { last: last.at };
            }
            _ => memory.last_scale_down = Some(ScaleDown { at: now, cut_short: bound == Bound::StepLimit }),
        }
    }
    let clamped = target.clamp(config.min_replicas, config.max_replicas);
    if clamped < target {
        bound = Bound::MaxReplicas;
    } else if clamped > target {
        bound = Bound::MinReplicas;
    }

    let explanation = explain(&Explained {
        current,
        target: clamped,
        policy,
        forecast_need: &forecast_need,
        observed_load,
        reactive_need,
        bound,
    });
    Decision::new(now, current, clamped, explanation)
}

/// The forecast's ask over `[now, now + look-ahead)`, or why the forecast cannot be used.
fn forecast_need(forecast: &Forecast, policy: &Policy, now: DateTime<Utc>) -> Result<ForecastNeed, &'static str> {
    if forecast.step_secs == 0 {
        return Err("forecast has a zero step");
    }
    let step = forecast.step();
    let horizon_end = now + policy.look_ahead();
    let mut peak: Option<(f64, DateTime<Utc>)> = None;
    for (i, point) in forecast.points.iter().enumerate() {
        let start = forecast.timestamp(i);
        if start >= horizon_end || start + step <= now {
            continue;
        }
        if !(point.p90.is_finite() && point.p90 >= 0.0) {
            return Err("forecast has an invalid p90");
        }
        if peak.is_none_or(|(p90, _)| point.p90 > p90) {
            peak = Some((point.p90, start));
        }
    }
    let (peak_p90, peak_at) = peak.ok_or("forecast does not cover the next lead time")?;
    Ok(ForecastNeed {
        replicas: policy.replicas_needed(peak_p90, forecast.step_secs),
        peak_rps: peak_p90 / f64::from(forecast.step_secs),
        peak_at,
        event: event_text(&forecast.explanation),
    })
}

/// The first clause of a forecast's explanation (up to `;`, `. ` or a line end), on one line.
fn event_text(explanation: &str) -> Option<String> {
    let end = [explanation.find(';'), explanation.find(". "), explanation.find('\n')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(explanation.len());
    let clause: String =
        explanation[..end].chars().map(|c| if c.is_control() { ' ' } else { c }).take(EVENT_TEXT_MAX_CHARS).collect();
    let clause = clause.trim().trim_end_matches('.').trim();
    (!clause.is_empty()).then(|| clause.to_string())
}

/// Everything the explanation line is made of.
struct Explained<'a> {
    current: u32,
    target: u32,
    policy: &'a Policy,
    forecast_need: &'a Result<ForecastNeed, &'static str>,
    observed_load: Option<f64>,
    reactive_need: Option<u32>,
    bound: Bound,
}

/// A rate for humans: whole numbers from 10 up, one decimal below.
fn rate(value: f64) -> String {
    if value >= 10.0 { format!("{value:.0}") } else { format!("{value:.1}").replace(".0", "") }
}

/// One line: the change, the event, the numbers, and the constraint that settled it.
fn explain(e: &Explained<'_>) -> String {
    let config = e.policy.config();
    let head = if e.target == e.current {
        format!("hold {}", e.current)
    } else {
        format!("scale {} -> {}", e.current, e.target)
    };
    let per_pod =
        format!("{} rps/pod at {:.0}%", rate(config.capacity.requests_per_second()), config.target_utilization * 100.0);
    let mut parts = Vec::new();
    match e.forecast_need {
        Ok(need) => {
            if let Some(event) = &need.event {
                parts.push(event.clone());
            }
            parts.push(format!(
                "forecast p90 {} rps at {} needs {} ({per_pod}, pods need {} s to be Ready)",
                rate(need.peak_rps),
                need.peak_at.format("%H:%M UTC"),
                need.replicas,
                e.policy.lead_time().num_seconds()
            ));
        }
        Err(why) => parts.push((*why).to_string()),
    }
    match (e.observed_load, e.reactive_need) {
        (Some(load), Some(need)) => {
            let observed_rps = load / f64::from(config.capacity.step_secs);
            let with_capacity = if e.forecast_need.is_ok() { String::new() } else { format!(" ({per_pod})") };
            parts.push(format!("observed {} rps needs {need}{with_capacity}", rate(observed_rps)));
        }
        _ => parts.push("no observed load".to_string()),
    }
    let bound = match e.bound {
        Bound::Forecast => "forecast".to_string(),
        Bound::ReactiveFloor => "reactive floor".to_string(),
        Bound::HoldMissingInput => "missing input, current capacity held".to_string(),
        Bound::MinReplicas => format!("min replicas {}", config.min_replicas),
        Bound::MaxReplicas => format!("max replicas {}", config.max_replicas),
        Bound::Stabilization { highest_recent } => format!(
            "stabilization ({highest_recent} recommended within the last {} s)",
            config.scale_down_stabilization_secs
        ),
        Bound::StepLimit => {
            format!("step limit (at most {:.0}% down per step)", config.max_scale_down_fraction * 100.0)
        }
        Bound::Tolerance => format!("tolerance (within {:.0}% of {})", config.tolerance * 100.0, e.current),
        Bound::ScaleUpStep => format!("scale-up step (at least {:.0}% up)", config.tolerance * 100.0),
        Bound::ScaleDownCooldown { last } => format!(
            "scale-down cooldown (last scale-down at {}, {} s between two)",
            last.format("%H:%M:%S"),
            config.scale_down_cooldown_secs
        ),
    };
    format!("{head}: {}; bound: {bound}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prescale_core::{ForecastPoint, ForecastSource, ScaleDirection};

    use super::*;
    use crate::{PodCapacity, PolicyConfig};

    /// 55 rps per pod, 70% target: 38.5 rps usable per pod. Lead 150 s, tick 60 s: look-ahead 210 s.
    fn policy() -> Policy {
        let mut config = PolicyConfig::new(PodCapacity::from_requests_per_second(55.0, 60), 2, 40);
        config.pod_startup_secs = 120;
        config.safety_buffer_secs = 30;
        config.tick_secs = 60;
        config.build().unwrap()
    }

    fn t0() -> DateTime<Utc> {
        "2026-03-01T13:45:00Z".parse().unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(secs)
    }

    /// A one-minute forecast from `t0` with `rps_per_minute[i]` requests per second in minute i.
    fn forecast(rps_per_minute: &[f64]) -> Forecast {
        Forecast {
            start: t0(),
            step_secs: 60,
            points: rps_per_minute.iter().map(|rps| ForecastPoint { p50: rps * 60.0 * 0.8, p90: rps * 60.0 }).collect(),
            baseline: vec![],
            source: ForecastSource::StatisticalEvents,
            explanation: "'spring-campaign' starts 14:00; uplift x3 learned from 4 past campaigns".to_string(),
        }
    }

    fn state(spec: u32, observed_rps: Option<f64>) -> ReplicaState {
        ReplicaState { spec, ready: spec, hpa_floor: None, observed_load: observed_rps.map(|rps| rps * 60.0) }
    }

    /// 20 minutes at `base` rps with `surge` rps from minute `from` on.
    fn surge_at(from: usize, base: f64, surge: f64) -> Forecast {
        forecast(&(0..20).map(|m| if m >= from { surge } else { base }).collect::<Vec<_>>())
    }

    #[test]
    fn surge_inside_the_lead_time_is_covered_now() {
        // Surge from minute 3 (180 s): inside [now, now + 210 s). 610 rps / 38.5 = 15.8 -> 16.
        let decision = decide(
            Some(&surge_at(3, 100.0, 610.0)),
            &state(4, Some(100.0)),
            &policy(),
            &mut DecisionMemory::new(),
            t0(),
        );
        assert_eq!(decision.target, 16);
        assert_eq!(decision.direction, ScaleDirection::Up);
    }

    #[test]
    fn surge_beyond_lead_time_plus_tick_is_not_yet_covered() {
        // Minute 4 starts at 240 s >= 210 s: the next tick can still order it in time.
        let decision = decide(
            Some(&surge_at(4, 100.0, 610.0)),
            &state(4, Some(100.0)),
            &policy(),
            &mut DecisionMemory::new(),
            t0(),
        );
        // 100 rps / 38.5 = 2.6 -> 3 < 4: a fresh memory holds 4 (no scale-down without history).
        assert_eq!(decision.target, 4);
        // One tick later the surge is 180 s ahead: covered.
        let mut memory = DecisionMemory::new();
        let later = decide(Some(&surge_at(4, 100.0, 610.0)), &state(4, Some(100.0)), &policy(), &mut memory, at(60));
        assert_eq!(later.target, 16);
    }

    #[test]
    fn surge_starting_exactly_at_the_lead_time_edge() {
        // Look-ahead is 210 s. A 30 s grid puts step 6 at 180 s and step 7 at 210 s.
        let mut f = forecast(&[0.0; 0]);
        f.step_secs = 30;
        f.points =
            (0..20).map(|i| ForecastPoint { p50: 0.0, p90: if i >= 7 { 610.0 * 30.0 } else { 50.0 * 30.0 } }).collect();
        let decision = decide(Some(&f), &state(2, Some(50.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 2, "step starting at now + 210 s is the next tick's job: {}", decision.explanation);
        for step in f.points.iter_mut().skip(6).take(1) {
            step.p90 = 610.0 * 30.0;
        }
        let decision = decide(Some(&f), &state(2, Some(50.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 16);
    }

    #[test]
    fn explanation_names_event_numbers_and_bound() {
        let decision = decide(
            Some(&surge_at(3, 100.0, 610.0)),
            &state(4, Some(100.0)),
            &policy(),
            &mut DecisionMemory::new(),
            t0(),
        );
        assert_eq!(
            decision.explanation,
            "scale 4 -> 16: 'spring-campaign' starts 14:00; forecast p90 610 rps at 13:48 UTC needs 16 \
             (55 rps/pod at 70%, pods need 150 s to be Ready); observed 100 rps needs 3; bound: forecast"
        );
        assert!(!decision.explanation.contains('\n'));
    }

    #[test]
    fn max_replicas_bounds_a_huge_forecast() {
        let decision = decide(
            Some(&surge_at(0, 10_000.0, 10_000.0)),
            &state(4, Some(100.0)),
            &policy(),
            &mut DecisionMemory::new(),
            t0(),
        );
        assert_eq!(decision.target, 40);
        assert!(decision.explanation.ends_with("bound: max replicas 40"), "{}", decision.explanation);
    }

    #[test]
    fn reactive_floor_beats_a_low_forecast() {
        // Forecast says 100 rps, but 700 rps arrive now: 700 / 38.5 = 18.2 -> 19.
        let decision = decide(
            Some(&surge_at(0, 100.0, 100.0)),
            &state(4, Some(700.0)),
            &policy(),
            &mut DecisionMemory::new(),
            t0(),
        );
        assert_eq!(decision.target, 19);
        assert!(decision.explanation.ends_with("bound: reactive floor"), "{}", decision.explanation);
    }

    #[test]
    fn min_replicas_bounds_an_idle_forecast() {
        let decision =
            decide(Some(&surge_at(0, 0.0, 0.0)), &state(1, Some(0.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 2);
        assert!(decision.explanation.ends_with("bound: min replicas 2"), "{}", decision.explanation);
    }

    #[test]
    fn missing_forecast_holds_and_says_so() {
        let decision = decide(None, &state(12, Some(100.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 12);
        assert_eq!(decision.direction, ScaleDirection::Hold);
        assert!(
            decision.explanation.starts_with("hold 12: no forecast; observed 100 rps needs 3 (55 rps/pod at 70%); bound: missing input, current capacity held"),
            "{}",
            decision.explanation
        );
        // ... but the reactive floor can still raise it.
        let decision = decide(None, &state(4, Some(700.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 19);
    }

    #[test]
    fn missing_observed_load_holds_but_the_forecast_can_raise() {
        let low = decide(Some(&surge_at(0, 10.0, 10.0)), &state(12, None), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(low.target, 12);
        assert!(
            low.explanation.contains("no observed load; bound: missing input, current capacity held"),
            "{}",
            low.explanation
        );
        let high =
            decide(Some(&surge_at(0, 610.0, 610.0)), &state(4, None), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(high.target, 16);
    }

    #[test]
    fn stale_or_broken_forecast_counts_as_missing() {
        let stale = surge_at(0, 10.0, 10.0);
        let decision = decide(Some(&stale), &state(12, Some(10.0)), &policy(), &mut DecisionMemory::new(), at(3600));
        assert_eq!(decision.target, 12);
        assert!(
            decision.explanation.contains("forecast does not cover the next lead time"),
            "{}",
            decision.explanation
        );
        let mut broken = surge_at(0, 10.0, 10.0);
        broken.points[1].p90 = f64::NAN;
        let decision = decide(Some(&broken), &state(12, Some(10.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 12);
        assert!(decision.explanation.contains("invalid p90"), "{}", decision.explanation);
    }

    #[test]
    fn scale_down_waits_for_the_window_then_steps_by_half() {
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let surge = surge_at(0, 610.0, 610.0);
        let quiet =
            Forecast { start: t0(), points: vec![ForecastPoint { p50: 2000.0, p90: 2400.0 }; 60], ..surge.clone() };
        // t = 0: surge, 16 pods.
        assert_eq!(decide(Some(&surge), &state(16, Some(610.0)), &policy, &mut memory, at(0)).target, 16);
        // From 60 s on the forecast says 40 rps (2 pods); the 16 of t = 0 holds until 300 s.
        for t in (60..=240).step_by(60) {
            let d = decide(Some(&quiet), &state(16, Some(40.0)), &policy, &mut memory, at(t));
            assert_eq!(d.target, 16, "at {t} s: {}", d.explanation);
            assert!(d.explanation.contains("bound: stabilization (16 recommended within the last 300 s)"));
        }
        // At 300 s the 16 left the window: down, but by at most half: 16 -> 8.
        let d = decide(Some(&quiet), &state(16, Some(40.0)), &policy, &mut memory, at(300));
        assert_eq!(d.target, 8, "{}", d.explanation);
        assert!(d.explanation.ends_with("bound: step limit (at most 50% down per step)"), "{}", d.explanation);
        // The step limit cut 16 -> 2 short: the scale-down continues at once, 8 -> 4 -> 2.
        let d = decide(Some(&quiet), &state(8, Some(40.0)), &policy, &mut memory, at(360));
        assert_eq!(d.target, 4, "{}", d.explanation);
        let d = decide(Some(&quiet), &state(4, Some(40.0)), &policy, &mut memory, at(420));
        assert_eq!((d.target, d.direction), (2, ScaleDirection::Down), "{}", d.explanation);
    }

    #[test]
    fn small_scale_downs_wait_the_cooldown() {
        // A forecast falling by 2 pods a minute from 20: stabilization follows it 300 s behind.
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let needs = |pods: u32| surge_at(0, f64::from(pods) * 38.5 - 1.0, f64::from(pods) * 38.5 - 1.0);
        let mut current = 20;
        let mut targets = Vec::new();
        for minute in 0..9 {
            let wanted = 20 - 2 * minute.min(8);
            let d = decide(
                Some(&needs(wanted)),
                &state(current, Some(40.0)),
                &policy,
                &mut memory,
                at(60 * i64::from(minute)),
            );
            targets.push(d.target);
            if minute == 7 {
                assert!(
                    d.explanation
                        .ends_with("bound: scale-down cooldown (last scale-down at 13:51:00, 120 s between two)"),
                    "{}",
                    d.explanation
                );
            }
            current = d.target;
        }
        // 300 s: 18 is within 10% of 20; 360 s: down to 16; 420 s: the cooldown holds 16; 480 s: 12.
        assert_eq!(targets, [20, 20, 20, 20, 20, 20, 16, 16, 12]);
    }

    #[test]
    fn a_scale_down_retried_at_the_same_instant_is_not_held() {
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let quiet = surge_at(0, 40.0, 40.0);
        decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(0));
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(300)).target, 5);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(300)).target, 5);
    }

    #[test]
    fn fresh_memory_does_not_scale_down_before_a_window_of_evidence() {
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let quiet = surge_at(0, 40.0, 40.0);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(0)).target, 10);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(240)).target, 10);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(300)).target, 5);
    }

    #[test]
    fn decisions_a_window_apart_still_scale_down() {
        // Decisions every 300 s with a 300 s window (5-minute data): the previous decision is
        // never inside the window, which must not read as a fresh memory every time.
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let quiet = surge_at(0, 40.0, 40.0);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(0)).target, 10);
        assert_eq!(decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(300)).target, 5);
        assert_eq!(decide(Some(&quiet), &state(5, Some(40.0)), &policy, &mut memory, at(600)).target, 3);
    }

    #[test]
    fn the_tolerance_is_a_band_up_at_least_by_it_down_only_below_it() {
        let policy = policy();
        // 38.5 usable rps per pod: 780 rps needs 21 pods. From 20 that is one pod, less than 10%
        // of 20 (2 pods): the step is at least the band, to 22.
        let small_up =
            decide(Some(&surge_at(0, 780.0, 780.0)), &state(20, None), &policy, &mut DecisionMemory::new(), t0());
        assert_eq!(small_up.target, 22, "{}", small_up.explanation);
        assert!(small_up.explanation.ends_with("bound: scale-up step (at least 10% up)"), "{}", small_up.explanation);
        // A rise larger than the band goes to exactly what the forecast needs.
        let up = decide(Some(&surge_at(0, 780.0, 780.0)), &state(15, None), &policy, &mut DecisionMemory::new(), t0());
        assert_eq!(up.target, 21, "{}", up.explanation);
        // 500 rps needs 13: down by 1 of 14 (7%) is inside the band, down by 3 of 16 is not.
        let quiet = surge_at(0, 500.0, 500.0);
        let mut memory = DecisionMemory::new();
        decide(Some(&quiet), &state(14, Some(500.0)), &policy, &mut memory, at(0));
        let held = decide(Some(&quiet), &state(14, Some(500.0)), &policy, &mut memory, at(300));
        assert_eq!(held.target, 14, "{}", held.explanation);
        assert!(held.explanation.ends_with("bound: tolerance (within 10% of 14)"), "{}", held.explanation);
        let down = decide(Some(&quiet), &state(16, Some(500.0)), &policy, &mut memory, at(600));
        assert_eq!(down.target, 13, "{}", down.explanation);
    }

    #[test]
    fn zero_window_and_cooldown_scale_down_at_once_within_the_step_limit() {
        let mut config = *policy().config();
        config.scale_down_stabilization_secs = 0;
        config.scale_down_cooldown_secs = 0;
        let policy = config.build().unwrap();
        let mut memory = DecisionMemory::new();
        let quiet = surge_at(0, 40.0, 40.0);
        let d = decide(Some(&quiet), &state(10, Some(40.0)), &policy, &mut memory, at(0));
        assert_eq!(d.target, 5, "{}", d.explanation);
        assert_eq!(decide(Some(&quiet), &state(5, Some(40.0)), &policy, &mut memory, at(60)).target, 3);
    }

    #[test]
    fn scale_up_is_immediate_even_inside_a_window() {
        let policy = policy();
        let mut memory = DecisionMemory::new();
        let quiet = surge_at(0, 40.0, 40.0);
        assert_eq!(decide(Some(&quiet), &state(4, Some(40.0)), &policy, &mut memory, at(0)).target, 4);
        let surge = surge_at(0, 610.0, 610.0);
        assert_eq!(decide(Some(&surge), &state(4, Some(40.0)), &policy, &mut memory, at(1)).target, 16);
    }

    #[test]
    fn provisioner_keeps_memory_between_decisions() {
        let mut provisioner = Provisioner::new(policy());
        provisioner.decide(Some(&surge_at(0, 610.0, 610.0)), &state(16, Some(610.0)), at(0));
        let quiet = surge_at(0, 40.0, 40.0);
        assert_eq!(provisioner.decide(Some(&quiet), &state(16, Some(40.0)), at(120)).target, 16);
        assert_eq!(provisioner.memory().highest_after(at(-1)), Some(16));
    }

    #[test]
    fn event_text_takes_the_first_clause_on_one_line() {
        assert_eq!(event_text("'launch' at 09:00; x2").as_deref(), Some("'launch' at 09:00"));
        assert_eq!(event_text("match 21:00. Next sentence").as_deref(), Some("match 21:00"));
        assert_eq!(event_text("a\nb").as_deref(), Some("a"));
        assert_eq!(event_text("  ").as_deref(), None);
        assert_eq!(event_text(&"x".repeat(500)).map(|s| s.len()), Some(EVENT_TEXT_MAX_CHARS));
    }

    #[test]
    fn forecast_on_another_step_is_read_in_its_own_unit() {
        // 5-minute steps: 610 rps = 183000 per step; capacity 55 rps = 16500 per 5 minutes.
        let f = Forecast {
            step_secs: 300,
            points: vec![ForecastPoint { p50: 0.0, p90: 610.0 * 300.0 }; 4],
            ..forecast(&[])
        };
        let decision = decide(Some(&f), &state(4, Some(100.0)), &policy(), &mut DecisionMemory::new(), t0());
        assert_eq!(decision.target, 16);
        assert!(decision.explanation.contains("forecast p90 610 rps"), "{}", decision.explanation);
    }
}
