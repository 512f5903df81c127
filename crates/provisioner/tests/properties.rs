//! Property tests of `decide`: bounds, stabilization, monotonicity in the forecast, and that a
//! missing forecast never lowers replicas. Memories are built by running random histories first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use chrono::{DateTime, Duration, Utc};
use prescale_core::{Decision, Forecast, ForecastPoint, ForecastSource, ReplicaState, ScaleDirection};
use prescale_provisioner::{DecisionMemory, PodCapacity, Policy, PolicyConfig, decide};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    // 2026-03-01T00:00:00Z
    DateTime::UNIX_EPOCH + Duration::days(20_513)
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        (0u32..5, 1u32..60, 1.0f64..200.0, prop::sample::select(vec![15u32, 60, 300]), 0.3f64..=1.0),
        (0u32..400, 0u32..120, 15u32..120, 0u32..600, 0.1f64..=1.0),
    )
        .prop_filter_map(
            "every generated policy is valid",
            |((min, span, rps, step, target), (startup, buffer, tick, stabilization, fraction))| {
                let mut config = PolicyConfig::new(PodCapacity::from_requests_per_second(rps, step), min, min + span);
                config.target_utilization = target;
                config.pod_startup_secs = startup;
                config.safety_buffer_secs = buffer;
                config.tick_secs = tick;
                config.scale_down_stabilization_secs = stabilization;
                config.max_scale_down_fraction = fraction;
                config.build().ok()
            },
        )
}

/// A forecast shape: offset of its start before `now`, step, and p90 in requests per second.
#[derive(Debug, Clone)]
struct Shape {
    starts_before_now_secs: i64,
    step_secs: u32,
    p90_rps: Vec<f64>,
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    (0i64..600, prop::sample::select(vec![30u32, 60, 300]), prop::collection::vec(0.0f64..5000.0, 1..40))
        .prop_map(|(starts_before_now_secs, step_secs, p90_rps)| Shape { starts_before_now_secs, step_secs, p90_rps })
}

fn forecast(shape: &Shape, now: DateTime<Utc>, scale: f64) -> Forecast {
    let step = f64::from(shape.step_secs);
    Forecast {
        start: now - Duration::seconds(shape.starts_before_now_secs),
        step_secs: shape.step_secs,
        points: shape
            .p90_rps
            .iter()
            .map(|rps| ForecastPoint { p50: rps * step * scale * 0.8, p90: rps * step * scale })
            .collect(),
        baseline: vec![],
        source: ForecastSource::Statistical,
        explanation: "weekday pattern".to_string(),
    }
}

/// One earlier decision: seconds since the previous one, forecast, current replicas, observed rps.
type Step = (i64, Option<Shape>, u32, Option<f64>);

fn arb_step() -> impl Strategy<Value = Step> {
    (1i64..200, prop::option::weighted(0.8, arb_shape()), 0u32..80, prop::option::weighted(0.8, 0.0f64..5000.0))
}

fn state(policy: &Policy, spec: u32, observed_rps: Option<f64>) -> ReplicaState {
    let step = f64::from(policy.config().capacity.step_secs);
    ReplicaState { spec, ready: spec, hpa_floor: None, observed_load: observed_rps.map(|rps| rps * step) }
}

/// Runs `history` into a fresh memory; returns the memory, the last time, and the decisions.
fn run(policy: &Policy, history: &[Step]) -> (DecisionMemory, DateTime<Utc>, Vec<Decision>) {
    let mut memory = DecisionMemory::new();
    let mut now = t0();
    let mut decisions = Vec::new();
    for (dt, shape, spec, observed) in history {
        now += Duration::seconds(*dt);
        let f = shape.as_ref().map(|s| forecast(s, now, 1.0));
        decisions.push(decide(f.as_ref(), &state(policy, *spec, *observed), policy, &mut memory, now));
    }
    (memory, now, decisions)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn target_is_always_within_min_and_max(policy in arb_policy(), history in prop::collection::vec(arb_step(), 1..30)) {
        let (_, _, decisions) = run(&policy, &history);
        let config = policy.config();
        for d in decisions {
            prop_assert!(d.target >= config.min_replicas && d.target <= config.max_replicas, "{d:?} outside [{}, {}]", config.min_replicas, config.max_replicas);
        }
    }

    #[test]
    fn no_scale_down_inside_the_window_after_a_scale_up(
        policy in arb_policy(),
        start in 0u32..80,
        steps in prop::collection::vec((1i64..120, prop::option::weighted(0.8, arb_shape()), prop::option::weighted(0.8, 0.0f64..5000.0)), 1..40),
    ) {
        // Decisions are applied: each one's target is the next one's current count.
        let mut memory = DecisionMemory::new();
        let mut now = t0();
        let mut current = start;
        let mut last_up: Option<DateTime<Utc>> = None;
        let window = policy.scale_down_stabilization();
        for (dt, shape, observed) in steps {
            now += Duration::seconds(dt);
            let f = shape.as_ref().map(|s| forecast(s, now, 1.0));
            let d = decide(f.as_ref(), &state(&policy, current, observed), &policy, &mut memory, now);
            if let (ScaleDirection::Down, Some(up)) = (d.direction, last_up) {
                prop_assert!(now - up >= window, "scaled down {} s after a scale-up, window {} s: {}", (now - up).num_seconds(), window.num_seconds(), d.explanation);
            }
            if d.direction == ScaleDirection::Up {
                last_up = Some(now);
            }
            current = d.target;
        }
    }

    #[test]
    fn more_forecast_never_means_fewer_replicas(
        policy in arb_policy(),
        history in prop::collection::vec(arb_step(), 0..20),
        shape in arb_shape(),
        spec in 0u32..80,
        observed in prop::option::weighted(0.8, 0.0f64..5000.0),
        dt in 1i64..200,
        factor in 1.0f64..10.0,
    ) {
        let (memory, last, _) = run(&policy, &history);
        let now = last + Duration::seconds(dt);
        let state = state(&policy, spec, observed);
        let base = decide(Some(&forecast(&shape, now, 1.0)), &state, &policy, &mut memory.clone(), now);
        let raised = decide(Some(&forecast(&shape, now, factor)), &state, &policy, &mut memory.clone(), now);
        prop_assert!(raised.target >= base.target, "p90 x{factor}: {} < {}\n{}\n{}", raised.target, base.target, raised.explanation, base.explanation);
    }

    #[test]
    fn missing_forecast_never_lowers_replicas(
        policy in arb_policy(),
        history in prop::collection::vec(arb_step(), 0..20),
        spec in 0u32..80,
        observed in prop::option::weighted(0.8, 0.0f64..5000.0),
        dt in 1i64..200,
    ) {
        let (mut memory, last, _) = run(&policy, &history);
        let now = last + Duration::seconds(dt);
        let d = decide(None, &state(&policy, spec, observed), &policy, &mut memory, now);
        // Only max_replicas may cut a count that is already above it.
        prop_assert!(d.target >= spec.min(policy.config().max_replicas), "{d:?}");
        prop_assert!(d.explanation.contains("no forecast"), "{}", d.explanation);
    }

    #[test]
    fn missing_observed_load_never_lowers_replicas(
        policy in arb_policy(),
        history in prop::collection::vec(arb_step(), 0..20),
        shape in arb_shape(),
        spec in 0u32..80,
        dt in 1i64..200,
    ) {
        let (mut memory, last, _) = run(&policy, &history);
        let now = last + Duration::seconds(dt);
        let d = decide(Some(&forecast(&shape, now, 1.0)), &state(&policy, spec, None), &policy, &mut memory, now);
        prop_assert!(d.target >= spec.min(policy.config().max_replicas), "{d:?}");
    }

    #[test]
    fn same_inputs_same_decision(policy in arb_policy(), history in prop::collection::vec(arb_step(), 1..20), step in arb_step()) {
        let (memory, last, _) = run(&policy, &history);
        let (dt, shape, spec, observed) = step;
        let now = last + Duration::seconds(dt);
        let f = shape.as_ref().map(|s| forecast(s, now, 1.0));
        let (mut a, mut b) = (memory.clone(), memory);
        let first = decide(f.as_ref(), &state(&policy, spec, observed), &policy, &mut a, now);
        let second = decide(f.as_ref(), &state(&policy, spec, observed), &policy, &mut b, now);
        prop_assert_eq!(first, second);
        prop_assert_eq!(a, b);
    }
}
