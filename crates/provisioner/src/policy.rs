//! The scaling policy's settings: pod capacity, bounds, lead time and scale-down guards.
//!
//! Units: load is counted in requests per forecast step (a step of `step_secs` seconds), as
//! `Forecast::points` and `ReplicaState::observed_load` carry it. [`PodCapacity`] says how many
//! requests one pod serves per step at 100% utilization and which step length that count is for,
//! so a forecast on another step length is converted, never misread.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::ProvisionerError;

/// Absorbs float noise so that a load of exactly N pods' worth asks for N pods, not N + 1.
const CEIL_EPSILON: f64 = 1e-9;

/// Pods needed to serve `load_per_step` when one pod serves `capacity_per_pod` per step at 100%
/// and pods should run at `target_utilization` (0.7 = 70%): `ceil(load / (capacity * target))`.
///
/// `load_per_step` and `capacity_per_pod` must be in the same unit (requests per the same step).
/// A load that is zero, negative or not a number needs 0 pods. A capacity or target that is not a
/// positive number means no pod can serve anything: any positive load then needs `u32::MAX`
/// (bounds applied by the caller cut it), so a bad setting never under-provisions silently.
pub fn replicas_for(load_per_step: f64, capacity_per_pod: f64, target_utilization: f64) -> u32 {
    if !(load_per_step.is_finite() && load_per_step > 0.0) {
        return 0;
    }
    let per_pod = capacity_per_pod * target_utilization;
    if !(capacity_per_pod > 0.0 && target_utilization > 0.0 && per_pod.is_finite() && per_pod > 0.0) {
        return u32::MAX;
    }
    // `as` saturates at u32::MAX for absurd loads.
    (load_per_step / per_pod - CEIL_EPSILON).ceil().max(0.0) as u32
}

/// What one pod serves at 100% utilization, in requests per step of `step_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PodCapacity {
    /// Requests one pod serves per step at 100% utilization.
    pub requests_per_step: f64,
    /// The step length, in seconds, that `requests_per_step` counts over (the forecast step).
    pub step_secs: u32,
}

impl PodCapacity {
    /// `requests_per_step` requests per step of `step_secs` seconds at 100% utilization.
    pub fn per_step(requests_per_step: f64, step_secs: u32) -> Self {
        Self { requests_per_step, step_secs }
    }

    /// A capacity of `requests_per_second` at 100% utilization, counted per step of `step_secs`.
    pub fn from_requests_per_second(requests_per_second: f64, step_secs: u32) -> Self {
        Self { requests_per_step: requests_per_second * f64::from(step_secs), step_secs }
    }

    /// The same capacity in requests per second.
    pub fn requests_per_second(&self) -> f64 {
        if self.step_secs == 0 {
            return 0.0;
        }
        self.requests_per_step / f64::from(self.step_secs)
    }

    /// The same capacity counted per step of `step_secs` seconds (to read another grid's loads).
    pub fn requests_per_step_of(&self, step_secs: u32) -> f64 {
        self.requests_per_second() * f64::from(step_secs)
    }
}

/// The policy's settings as plain data (what a config file holds); [`PolicyConfig::build`] checks
/// them and returns a [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Never fewer replicas than this.
    pub min_replicas: u32,
    /// Never more replicas than this, whatever the forecast says.
    pub max_replicas: u32,
    /// What one pod serves at 100% utilization.
    pub capacity: PodCapacity,
    /// Utilization to plan for, 0.7 = 70%; the rest is headroom.
    #[serde(default = "default_target_utilization")]
    pub target_utilization: f64,
    /// Seconds from a scale-up until the new pods are Ready (learned per workload).
    #[serde(default = "default_pod_startup_secs")]
    pub pod_startup_secs: u32,
    /// Extra seconds of lead on top of the startup time.
    #[serde(default = "default_safety_buffer_secs")]
    pub safety_buffer_secs: u32,
    /// Seconds between two decisions.
    #[serde(default = "default_tick_secs")]
    pub tick_secs: u32,
    /// Seconds a lower target must hold before replicas go down.
    #[serde(default = "default_scale_down_stabilization_secs")]
    pub scale_down_stabilization_secs: u32,
    /// Largest share of the current replicas removed by one decision, in (0, 1].
    #[serde(default = "default_max_scale_down_fraction")]
    pub max_scale_down_fraction: f64,
    /// A target within this fraction of the current replicas changes nothing, in [0, 1):
    /// the Kubernetes HPA's tolerance (0.1), for the same reason (no churn on noise).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Seconds after a scale-down before the next one: a forecast falling off a peak then
    /// gives one larger step instead of a few pods every tick.
    #[serde(default = "default_scale_down_cooldown_secs")]
    pub scale_down_cooldown_secs: u32,
}

fn default_target_utilization() -> f64 {
    0.7
}
fn default_pod_startup_secs() -> u32 {
    120
}
fn default_safety_buffer_secs() -> u32 {
    30
}
fn default_tick_secs() -> u32 {
    60
}
fn default_scale_down_stabilization_secs() -> u32 {
    300
}
fn default_max_scale_down_fraction() -> f64 {
    0.5
}
fn default_tolerance() -> f64 {
    0.1
}
fn default_scale_down_cooldown_secs() -> u32 {
    120
}

impl PolicyConfig {
    /// A config with the given capacity and bounds and the defaults for the rest: 70% target
    /// utilization, 120 s pod startup, 30 s safety buffer, 60 s tick, 300 s scale-down
    /// stabilization, at most half the replicas removed per decision, a 10% tolerance, 120 s
    /// between two scale-downs.
    pub fn new(capacity: PodCapacity, min_replicas: u32, max_replicas: u32) -> Self {
        Self {
            min_replicas,
            max_replicas,
            capacity,
            target_utilization: default_target_utilization(),
            pod_startup_secs: default_pod_startup_secs(),
            safety_buffer_secs: default_safety_buffer_secs(),
            tick_secs: default_tick_secs(),
            scale_down_stabilization_secs: default_scale_down_stabilization_secs(),
            max_scale_down_fraction: default_max_scale_down_fraction(),
            tolerance: default_tolerance(),
            scale_down_cooldown_secs: default_scale_down_cooldown_secs(),
        }
    }

    /// Checks every field and returns the policy, or names the first field that cannot work.
    pub fn build(self) -> Result<Policy, ProvisionerError> {
        let invalid = |field, reason: String| Err(ProvisionerError::InvalidConfig { section: "policy", field, reason });
        if self.max_replicas == 0 {
            return invalid("max_replicas", "must be at least 1, got 0".to_string());
        }
        if self.min_replicas > self.max_replicas {
            return invalid(
                "min_replicas",
                format!("must not exceed max_replicas {}, got {}", self.max_replicas, self.min_replicas),
            );
        }
        if self.capacity.step_secs == 0 {
            return invalid("capacity.step_secs", "must be at least 1 second, got 0".to_string());
        }
        let per_step = self.capacity.requests_per_step;
        if !(per_step.is_finite() && per_step > 0.0) {
            return invalid("capacity.requests_per_step", format!("must be a positive number, got {per_step}"));
        }
        let target = self.target_utilization;
        if !(target.is_finite() && target > 0.0 && target <= 1.0) {
            return invalid("target_utilization", format!("must be in (0, 1], got {target}"));
        }
        if self.tick_secs == 0 {
            return invalid("tick_secs", "must be at least 1 second, got 0".to_string());
        }
        let fraction = self.max_scale_down_fraction;
        if !(fraction.is_finite() && fraction > 0.0 && fraction <= 1.0) {
            return invalid("max_scale_down_fraction", format!("must be in (0, 1], got {fraction}"));
        }
        let tolerance = self.tolerance;
        if !(tolerance.is_finite() && (0.0..1.0).contains(&tolerance)) {
            return invalid("tolerance", format!("must be in [0, 1), got {tolerance}"));
        }
        Ok(Policy { config: self })
    }
}

/// A checked scaling policy: every field of its [`PolicyConfig`] is usable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    config: PolicyConfig,
}

impl Policy {
    /// The settings in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Pod startup time plus the safety buffer: how long before a surge its pods must be ordered.
    pub fn lead_time(&self) -> Duration {
        Duration::seconds(i64::from(self.config.pod_startup_secs) + i64::from(self.config.safety_buffer_secs))
    }

    /// Time between two decisions.
    pub fn tick(&self) -> Duration {
        Duration::seconds(i64::from(self.config.tick_secs))
    }

    /// How far ahead a decision looks: lead time plus one tick, since the next decision's pods
    /// are Ready only one tick after this one's.
    pub fn look_ahead(&self) -> Duration {
        self.lead_time() + self.tick()
    }

    /// How long a lower target must hold before replicas go down.
    pub fn scale_down_stabilization(&self) -> Duration {
        Duration::seconds(i64::from(self.config.scale_down_stabilization_secs))
    }

    /// How long after a scale-down the next one waits.
    pub fn scale_down_cooldown(&self) -> Duration {
        Duration::seconds(i64::from(self.config.scale_down_cooldown_secs))
    }

    /// Replicas needed for `load_per_step` requests per step of `step_secs` seconds, unbounded.
    pub fn replicas_needed(&self, load_per_step: f64, step_secs: u32) -> u32 {
        replicas_for(
            load_per_step,
            self.config.capacity.requests_per_step_of(step_secs),
            self.config.target_utilization,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_for_divides_by_usable_capacity_and_rounds_up() {
        // 610 / (55 * 0.7 = 38.5) = 15.8 -> 16.
        assert_eq!(replicas_for(610.0, 55.0, 0.7), 16);
        // Exactly 2 pods' worth at target needs 2, not 3, despite 100 * 0.7 = 70.00000000000001.
        assert_eq!(replicas_for(140.0, 100.0, 0.7), 2);
        assert_eq!(replicas_for(140.1, 100.0, 0.7), 3);
        assert_eq!(replicas_for(0.0, 100.0, 0.7), 0);
        assert_eq!(replicas_for(-5.0, 100.0, 0.7), 0);
        assert_eq!(replicas_for(f64::NAN, 100.0, 0.7), 0);
        assert_eq!(replicas_for(1.0, 0.0, 0.7), u32::MAX);
        assert_eq!(replicas_for(1.0, 100.0, f64::NAN), u32::MAX);
        assert_eq!(replicas_for(1e300, 1.0, 1.0), u32::MAX);
    }

    #[test]
    fn capacity_converts_between_steps_and_seconds() {
        let capacity = PodCapacity::from_requests_per_second(55.0, 60);
        assert_eq!(capacity.requests_per_step, 3300.0);
        assert_eq!(capacity.requests_per_second(), 55.0);
        assert_eq!(capacity.requests_per_step_of(300), 16_500.0);
        assert_eq!(PodCapacity::per_step(600.0, 300).requests_per_second(), 2.0);
    }

    #[test]
    fn replicas_needed_reads_loads_on_any_step() {
        let policy = PolicyConfig::new(PodCapacity::from_requests_per_second(10.0, 60), 1, 100).build().unwrap();
        // 70 rps is 4200 per minute or 21000 per 5 minutes: 10 pods either way.
        assert_eq!(policy.replicas_needed(4200.0, 60), 10);
        assert_eq!(policy.replicas_needed(21_000.0, 300), 10);
    }

    #[test]
    fn lead_time_and_look_ahead() {
        let policy = PolicyConfig::new(PodCapacity::per_step(100.0, 60), 1, 10).build().unwrap();
        assert_eq!(policy.lead_time(), Duration::seconds(150));
        assert_eq!(policy.look_ahead(), Duration::seconds(210));
    }

    #[test]
    fn build_names_the_bad_field() {
        let capacity = PodCapacity::per_step(100.0, 60);
        let cases = [
            (PolicyConfig::new(capacity, 5, 2), "policy.min_replicas"),
            (PolicyConfig::new(capacity, 0, 0), "policy.max_replicas"),
            (PolicyConfig::new(PodCapacity::per_step(0.0, 60), 1, 2), "policy.capacity.requests_per_step"),
            (PolicyConfig::new(PodCapacity::per_step(10.0, 0), 1, 2), "policy.capacity.step_secs"),
            (
                PolicyConfig { target_utilization: 1.5, ..PolicyConfig::new(capacity, 1, 2) },
                "policy.target_utilization",
            ),
            (PolicyConfig { tick_secs: 0, ..PolicyConfig::new(capacity, 1, 2) }, "policy.tick_secs"),
            (
                PolicyConfig { max_scale_down_fraction: 0.0, ..PolicyConfig::new(capacity, 1, 2) },
                "policy.max_scale_down_fraction",
            ),
            (PolicyConfig { tolerance: 1.0, ..PolicyConfig::new(capacity, 1, 2) }, "policy.tolerance"),
            (PolicyConfig { tolerance: f64::NAN, ..PolicyConfig::new(capacity, 1, 2) }, "policy.tolerance"),
        ];
        for (config, field) in cases {
            let err = config.build().unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let json =
            r#"{"min_replicas": 2, "max_replicas": 20, "capacity": {"requests_per_step": 3300, "step_secs": 60}}"#;
        let config: PolicyConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, PolicyConfig::new(PodCapacity::per_step(3300.0, 60), 2, 20));
        assert!(serde_json::from_str::<PolicyConfig>(r#"{"min_replicas": 2, "max_replicas": 20, "capacity": {"requests_per_step": 1, "step_secs": 60}, "mystery": 1}"#).is_err());
    }
}
