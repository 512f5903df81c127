//! The Kubernetes HorizontalPodAutoscaler v2 algorithm with its default behavior, as a value.
//!
//! This is the reactive baseline prescale is compared with, and what the embedded cluster's
//! HPA controller runs. It follows the upstream controller (`pkg/controller/podautoscaler`):
//!
//! 1. `current` outside `[min, max]` is moved to the nearest bound at once, metrics or not.
//! 2. Otherwise, with a utilization: `ratio = utilization / target`; inside the tolerance
//!    (`|ratio - 1| <= tolerance`) the proposal is `current`, else `ceil(current * ratio)`.
//!    Without a utilization nothing changes (upstream skips the sync when metrics fail).
//! 3. Stabilization: the proposal is recorded; scale-up uses the minimum of the proposals in the
//!    scale-up window (0 s by default: none), scale-down the maximum of the proposals in the
//!    scale-down window (300 s), and the result lies between those two and `current`.
//! 4. Rate limits, counted from the replicas at the start of each policy period (replicas added
//!    in the period are subtracted, replicas removed are added back): scale-up to at most
//!    `max(ceil(start * 2), start + 4)` per period (policies Percent 100 and Pods 4, selectPolicy
//!    Max); scale-down by at most 100% per period, which in effect only the floor limits.
//! 5. The result lies in `[min, max]`.
//!
//! One deviation: upstream treats a workload scaled to zero as "autoscaling disabled"; here a
//! workload at zero has no served load to measure, so only the floor applies (it rises to `min`).

use chrono::{DateTime, Duration, Utc};

use crate::ProvisionerError;

/// Pods added per scale-up period by the default `Pods` policy.
const SCALE_UP_PODS_PER_PERIOD: u32 = 4;
/// Growth per scale-up period by the default `Percent` policy (100% = doubling).
const SCALE_UP_PERCENT_PER_PERIOD: f64 = 100.0;
/// Shrink per scale-down period by the default `Percent` policy (100% = down to the floor at once).
const SCALE_DOWN_PERCENT_PER_PERIOD: f64 = 100.0;
/// Absorbs float noise so that e.g. 4 pods at exactly twice the target ask for 8, not 9.
const CEIL_EPSILON: f64 = 1e-9;

/// HPA v2 spec for one target; defaults are Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaSpec {
    /// `spec.minReplicas`, the floor (raised live in hpa-floor mode).
    pub min_replicas: u32,
    /// `spec.maxReplicas`, the ceiling.
    pub max_replicas: u32,
    /// Target mean utilization of the pods' requests, 0.7 = 70%.
    pub target_utilization: f64,
    /// Ratio band around 1 inside which nothing changes (controller flag, default 0.1).
    pub tolerance: f64,
    /// Scale-down stabilization window (default 300 s).
    pub scale_down_stabilization: Duration,
    /// Period of the rate-limiting policies (default 15 s, for scale-up and scale-down alike).
    pub scale_up_period: Duration,
    /// How often the controller runs [`HpaAlgorithm::sync`] (default 15 s); the algorithm itself
    /// only needs the `now` it is given.
    pub sync_period: Duration,
}

impl Default for HpaSpec {
    fn default() -> Self {
        Self {
            min_replicas: 1,
            max_replicas: 10,
            target_utilization: 0.7,
            tolerance: 0.1,
            scale_down_stabilization: Duration::seconds(300),
            scale_up_period: Duration::seconds(15),
            sync_period: Duration::seconds(15),
        }
    }
}

impl HpaSpec {
    /// Checks every field, naming the first one that cannot work.
    pub fn validate(&self) -> Result<(), ProvisionerError> {
        let invalid = |field, reason: String| Err(ProvisionerError::InvalidConfig { section: "hpa", field, reason });
        if self.max_replicas == 0 {
            return invalid("max_replicas", "must be at least 1, got 0".to_string());
        }
        if self.min_replicas > self.max_replicas {
            return invalid(
                "min_replicas",
                format!("must not exceed max_replicas {}, got {}", self.max_replicas, self.min_replicas),
            );
        }
        if !(self.target_utilization.is_finite() && self.target_utilization > 0.0) {
            return invalid(
                "target_utilization",
                format!("must be a positive number, got {}", self.target_utilization),
            );
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return invalid("tolerance", format!("must be a non-negative number, got {}", self.tolerance));
        }
        for (field, value) in [
            ("scale_down_stabilization", self.scale_down_stabilization),
            ("scale_up_period", self.scale_up_period),
            ("sync_period", self.sync_period),
        ] {
            if value < Duration::zero() {
                return invalid(field, format!("must not be negative, got {} s", value.num_seconds()));
            }
        }
        if self.scale_up_period == Duration::zero() || self.sync_period == Duration::zero() {
            let field = if self.sync_period == Duration::zero() { "sync_period" } else { "scale_up_period" };
            return invalid(field, "must be longer than zero".to_string());
        }
        Ok(())
    }
}

/// A replica change at a point in time, for the rate limits.
#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at: DateTime<Utc>,
    replicas: u32,
}

/// The HPA v2 algorithm with its recommendation history.
#[derive(Debug, Clone)]
pub struct HpaAlgorithm {
    spec: HpaSpec,
    /// Unstabilized proposals, newest last, kept for the stabilization window.
    recommendations: Vec<ScaleEvent>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl HpaAlgorithm {
    /// An algorithm with an empty history.
    ///
    /// A spec that [`HpaSpec::validate`] rejects is made workable rather than refused: a floor above
    /// the ceiling is lowered to it, a negative tolerance counts as 0, and a target utilization
    /// that is not a positive number makes every utilization read as missing (no scaling).
    pub fn new(spec: HpaSpec) -> Self {
        let mut spec = spec;
        spec.min_replicas = spec.min_replicas.min(spec.max_replicas);
        if !(spec.tolerance.is_finite() && spec.tolerance >= 0.0) {
            spec.tolerance = 0.0;
        }
        Self { spec, recommendations: Vec::new(), scale_up_events: Vec::new(), scale_down_events: Vec::new() }
    }

    /// An algorithm for a spec that passes [`HpaSpec::validate`].
    pub fn try_new(spec: HpaSpec) -> Result<Self, ProvisionerError> {
        spec.validate()?;
        Ok(Self::new(spec))
    }

    /// The spec in force.
    pub fn spec(&self) -> &HpaSpec {
        &self.spec
    }

    /// Raises or restores the floor live (hpa-floor mode). Like the API server, which refuses
    /// `minReplicas > maxReplicas`, the floor never exceeds the ceiling: a larger value is capped.
    pub fn set_min_replicas(&mut self, min: u32) {
        self.spec.min_replicas = min.min(self.spec.max_replicas);
    }

    /// One sync at `now`: `current` = current spec replicas, `utilization` = mean utilization of
    /// SERVED load over ready pods (1.0 = 100%), None when metrics are missing (then: no scale change,
    /// except clamping into [min, max]). Returns the new desired replica count.
    pub fn sync(&mut self, now: DateTime<Utc>, current: u32, utilization: Option<f64>) -> u32 {
        let HpaSpec { min_replicas: min, max_replicas: max, .. } = self.spec;
        let desired = if current > max {
            max
        } else if current < min || current == 0 {
            // At zero there is no served load to measure; only the floor applies.
            min
        } else {
            match self.proposal(current, utilization) {
                None => current,
                Some(proposal) => {
                    let stabilized = self.stabilize(now, current, proposal);
                    self.rate_limit(now, current, stabilized)
                }
            }
        };
        self.record_scale_event(now, current, desired);
        desired
    }

    /// `ceil(current * utilization / target)`, or `current` inside the tolerance; None without a
    /// usable utilization.
    fn proposal(&self, current: u32, utilization: Option<f64>) -> Option<u32> {
        let utilization = utilization.filter(|u| u.is_finite() && *u >= 0.0)?;
        let target = self.spec.target_utilization;
        if !(target.is_finite() && target > 0.0) {
            return None;
        }
        let ratio = utilization / target;
        if (ratio - 1.0).abs() <= self.spec.tolerance {
            return Some(current);
        }
        // `as` saturates: an absurd utilization asks for u32::MAX, which the limits then cut.
        Some((f64::from(current) * ratio - CEIL_EPSILON).ceil().max(0.0) as u32)
    }

    /// Records `proposal` and bounds it by the recent proposals (upstream
    /// `stabilizeRecommendationWithBehaviors` with a 0 s scale-up window).
    fn stabilize(&mut self, now: DateTime<Utc>, current: u32, proposal: u32) -> u32 {
        let down_cutoff = now - self.spec.scale_down_stabilization;
        // Proposals strictly after the cutoff count, as upstream (`timestamp.After(cutoff)`).
        self.recommendations.retain(|r| r.at > down_cutoff);
        let highest_recent = self.recommendations.iter().map(|r| r.replicas).fold(proposal, u32::max);
        self.recommendations.push(ScaleEvent { at: now, replicas: proposal });
        // Scale-up window 0 s: the lower bound is the proposal itself.
        current.max(proposal).min(highest_recent)
    }

    /// Applies the default scale-up and scale-down policies and the `[min, max]` bounds.
    fn rate_limit(&self, now: DateTime<Utc>, current: u32, desired: u32) -> u32 {
        let HpaSpec { min_replicas: min, max_replicas: max, .. } = self.spec;
        let period_start = self.replicas_at_period_start(now, current);
        if desired > current {
            let by_percent = (f64::from(period_start) * (1.0 + SCALE_UP_PERCENT_PER_PERIOD / 100.0)).ceil() as u32;
            let by_pods = period_start.saturating_add(SCALE_UP_PODS_PER_PERIOD);
            // selectPolicy Max; never below current while earlier scale-ups still count.
            let scale_up_limit = by_percent.max(by_pods).max(current);
            desired.min(scale_up_limit).min(max)
        } else if desired < current {
            let scale_down_limit =
                ((f64::from(period_start) * (1.0 - SCALE_DOWN_PERCENT_PER_PERIOD / 100.0)) as u32).min(current);
            desired.max(scale_down_limit).max(min)
        } else {
            desired
        }
    }

    /// Replicas at the start of the policy period ending at `now`, as upstream counts them.
    fn replicas_at_period_start(&self, now: DateTime<Utc>, current: u32) -> u32 {
        let cutoff = now - self.spec.scale_up_period;
        let in_period = |events: &[ScaleEvent]| -> u32 {
            events.iter().filter(|e| e.at > cutoff).fold(0u32, |sum, e| sum.saturating_add(e.replicas))
        };
        current.saturating_sub(in_period(&self.scale_up_events)).saturating_add(in_period(&self.scale_down_events))
    }

    /// Remembers a change for the rate limits, dropping events older than the policy period.
    fn record_scale_event(&mut self, now: DateTime<Utc>, from: u32, to: u32) {
        let cutoff = now - self.spec.scale_up_period;
        self.scale_up_events.retain(|e| e.at > cutoff);
        self.scale_down_events.retain(|e| e.at > cutoff);
        if to > from {
            self.scale_up_events.push(ScaleEvent { at: now, replicas: to - from });
        } else if to < from {
            self.scale_down_events.push(ScaleEvent { at: now, replicas: from - to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(secs)
    }

    fn hpa() -> HpaAlgorithm {
        HpaAlgorithm::new(HpaSpec { max_replicas: 50, ..HpaSpec::default() })
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let spec = HpaSpec::default();
        assert_eq!((spec.min_replicas, spec.max_replicas), (1, 10));
        assert_eq!(spec.target_utilization, 0.7);
        assert_eq!(spec.tolerance, 0.1);
        assert_eq!(spec.scale_down_stabilization, Duration::seconds(300));
        assert_eq!(spec.scale_up_period, Duration::seconds(15));
        assert_eq!(spec.sync_period, Duration::seconds(15));
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn four_pods_at_double_the_target_become_eight() {
        // 140% / 70% = 2.0 -> ceil(4 * 2) = 8; the limit max(4 * 2, 4 + 4) = 8 allows it.
        assert_eq!(hpa().sync(t0(), 4, Some(1.4)), 8);
    }

    #[test]
    fn scale_up_is_limited_to_the_larger_of_doubling_and_four_pods() {
        // 2 pods at 350% want ceil(2 * 5) = 10; limit max(2 * 2, 2 + 4) = 6.
        assert_eq!(hpa().sync(t0(), 2, Some(3.5)), 6);
        // 10 pods at 350% want 50; doubling (20) beats +4 (14).
        assert_eq!(hpa().sync(t0(), 10, Some(3.5)), 20);
        // 1 pod at 700% wants 10; +4 pods (5) beats doubling (2).
        assert_eq!(hpa().sync(t0(), 1, Some(7.0)), 5);
    }

    #[test]
    fn scale_up_limit_counts_the_whole_period() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 2, Some(3.5)), 6);
        // 5 s later, still inside the 15 s period that started at 2 replicas: no further growth.
        assert_eq!(hpa.sync(at(5), 6, Some(3.5)), 6);
        // At 15 s the first event is no longer strictly inside the period: 6 may double to 12.
        assert_eq!(hpa.sync(at(15), 6, Some(3.5)), 12);
    }

    #[test]
    fn inside_tolerance_nothing_changes() {
        let mut hpa = hpa();
        // 0.76 / 0.7 = 1.086, inside 0.1: stays 4 although ceil(4 * 1.086) = 5.
        assert_eq!(hpa.sync(at(0), 4, Some(0.76)), 4);
        // 0.64 / 0.7 = 0.914, inside 0.1.
        assert_eq!(hpa.sync(at(15), 4, Some(0.64)), 4);
        // 0.78 / 0.7 = 1.114, outside: ceil(4.457) = 5.
        assert_eq!(hpa.sync(at(30), 4, Some(0.78)), 5);
    }

    #[test]
    fn scale_down_waits_for_the_highest_proposal_of_the_last_300_s() {
        let mut hpa = hpa();
        // 10 pods at exactly the target: proposal 10 at t = 0.
        assert_eq!(hpa.sync(at(0), 10, Some(0.7)), 10);
        // Load drops to a fifth: proposal 2, but 10 was proposed 15 s ago.
        assert_eq!(hpa.sync(at(15), 10, Some(0.14)), 10);
        assert_eq!(hpa.sync(at(285), 10, Some(0.14)), 10);
        // At 300 s the proposal of t = 0 is no longer strictly inside the window.
        assert_eq!(hpa.sync(at(300), 10, Some(0.14)), 2);
    }

    #[test]
    fn stabilization_keeps_the_highest_recent_proposal_not_the_latest() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 10, Some(0.7)), 10); // proposal 10
        assert_eq!(hpa.sync(at(100), 10, Some(0.42)), 10); // proposal 6, held by 10
        assert_eq!(hpa.sync(at(200), 10, Some(0.14)), 10); // proposal 2, held by 10
        // At 300 s the 10 expired; the highest recent proposal is 6 (t = 100).
        assert_eq!(hpa.sync(at(300), 10, Some(0.14)), 6);
        // At 400 s the 6 expired as well. The 6 pods now carry 2 pods' worth of load at target.
        assert_eq!(hpa.sync(at(400), 6, Some(0.7 * 2.0 / 6.0)), 2);
    }

    #[test]
    fn stabilized_value_never_exceeds_current() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 10, Some(1.4)), 20); // proposal 20 recorded
        // Someone set the workload to 8 by hand; low load: the window's 20 must not push it up.
        assert_eq!(hpa.sync(at(30), 8, Some(0.14)), 8);
    }

    #[test]
    fn missing_metrics_change_nothing_but_the_bounds() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 7, None), 7);
        assert_eq!(hpa.sync(at(15), 7, Some(f64::NAN)), 7);
        assert_eq!(hpa.sync(at(30), 70, None), 50);
        hpa.set_min_replicas(9);
        assert_eq!(hpa.sync(at(45), 7, None), 9);
    }

    #[test]
    fn raised_floor_applies_at_once_and_restoring_it_lets_the_count_fall_later() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 2, Some(0.7)), 2);
        hpa.set_min_replicas(12);
        // Below the floor: straight to it, no rate limit (upstream does the same).
        assert_eq!(hpa.sync(at(15), 2, Some(0.7)), 12);
        hpa.set_min_replicas(1);
        // 12 pods carrying 2 pods' load: proposal 2; the window holds only proposals of 2.
        assert_eq!(hpa.sync(at(30), 12, Some(0.7 * 2.0 / 12.0)), 2);
    }

    #[test]
    fn floor_is_capped_at_the_ceiling() {
        let mut hpa = HpaAlgorithm::new(HpaSpec::default());
        hpa.set_min_replicas(40);
        assert_eq!(hpa.spec().min_replicas, 10);
        assert_eq!(hpa.sync(t0(), 3, None), 10);
    }

    #[test]
    fn results_stay_within_bounds() {
        let mut hpa = HpaAlgorithm::new(HpaSpec { min_replicas: 3, max_replicas: 6, ..HpaSpec::default() });
        assert_eq!(hpa.sync(at(0), 4, Some(7.0)), 6);
        assert_eq!(hpa.sync(at(1000), 6, Some(0.0)), 3);
        assert_eq!(hpa.sync(at(2000), 3, Some(0.0)), 3);
    }

    #[test]
    fn zero_replicas_rise_to_the_floor() {
        let mut hpa = hpa();
        assert_eq!(hpa.sync(t0(), 0, None), 1);
        assert_eq!(hpa.sync(t0(), 0, Some(2.0)), 1);
        let mut scale_to_zero = HpaAlgorithm::new(HpaSpec { min_replicas: 0, ..HpaSpec::default() });
        assert_eq!(scale_to_zero.sync(t0(), 0, Some(2.0)), 0);
    }

    #[test]
    fn fresh_history_lets_idle_pods_fall_to_the_floor_at_once() {
        // Upstream starts with an empty history too: nothing higher was proposed, nothing holds.
        let mut hpa = hpa();
        assert_eq!(hpa.sync(at(0), 5, Some(0.0)), 1);
        assert_eq!(hpa.sync(at(15), 1, Some(0.0)), 1);
    }

    #[test]
    fn scale_up_right_after_scale_down_counts_from_the_period_start() {
        let mut hpa = hpa();
        // 10 -> 2 (no history, so nothing holds it).
        assert_eq!(hpa.sync(at(0), 10, Some(0.14)), 2);
        // 5 s later a surge at 2 pods: the period started at 10 pods (8 removed), so the limit is
        // max(20, 14) = 20; the proposal ceil(2 * 7 / 0.7) = 20 fits.
        assert_eq!(hpa.sync(at(5), 2, Some(7.0)), 20);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let spec = HpaSpec { min_replicas: 5, max_replicas: 2, ..HpaSpec::default() };
        let err = spec.validate().unwrap_err();
        assert!(err.to_string().contains("hpa.min_replicas"), "{err}");
        let spec = HpaSpec { target_utilization: 0.0, ..HpaSpec::default() };
        assert!(spec.validate().unwrap_err().to_string().contains("hpa.target_utilization"));
        assert!(HpaAlgorithm::try_new(HpaSpec { max_replicas: 0, ..HpaSpec::default() }).is_err());
    }

    #[test]
    fn bad_target_reads_as_missing_metrics() {
        let mut hpa = HpaAlgorithm::new(HpaSpec { target_utilization: f64::NAN, ..HpaSpec::default() });
        assert_eq!(hpa.sync(t0(), 4, Some(3.0)), 4);
    }
}
