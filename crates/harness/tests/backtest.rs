//! The backtest decides honestly: perturbing the demand from step `k` on leaves every decision
//! of every policy up to step `k`'s start unchanged (the oracle, perfect foresight by
//! definition, aside), while later decisions do see the change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use chrono::{DateTime, Duration, Utc};
use prescale_core::{ScheduledEvent, TimeSeries};
use prescale_harness::backtest::{BacktestConfig, PolicyKind, TimedTarget, Trace, run};

/// Monday 2026-01-05 00:00 UTC.
fn start() -> DateTime<Utc> {
    "2026-01-05T00:00:00Z".parse().unwrap()
}

/// Three days of 1-minute demand: a daily cycle with deterministic noise, tripled by a
/// `promo` event every day 14:00-15:00 (two in the warm-up, one scored).
fn trace() -> Trace {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut noise = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as f64 / f64::from(1u32 << 31) - 0.5
    };
    let minutes = 3 * 1440;
    let values: Vec<Option<f64>> = (0..minutes)
        .map(|m| {
            let day_fraction = f64::from(m % 1440) / 1440.0;
            let base = 200.0 + 150.0 * (std::f64::consts::TAU * (day_fraction - 0.25)).sin();
            let promo = if (840..900).contains(&(m % 1440)) { 3.0 } else { 1.0 };
            // One gap, so that missing points are part of the replay.
            (m != 2 * 1440 + 500).then(|| (base * promo * (1.0 + 0.2 * noise())).round())
        })
        .collect();
    let demand = TimeSeries::new(start(), Duration::minutes(1), values).unwrap();
    let events = (0..3)
        .map(|day| {
            let from = start() + Duration::days(day) + Duration::hours(14);
            ScheduledEvent {
                id: format!("promo-{day}"),
                name: format!("promo day {day}"),
                kind: "promo".into(),
                start: from,
                end: from + Duration::hours(1),
                description: None,
                expected_multiplier: None,
            }
        })
        .collect();
    Trace { name: "synthetic".into(), demand, events: Some(events) }
}

/// Every policy's decisions (every sync for the HPA), by policy name.
fn decisions(trace: &Trace, config: &BacktestConfig) -> Vec<(String, Vec<TimedTarget>)> {
    let report = run(trace, config).unwrap();
    report.policies.into_iter().map(|p| (p.name, p.decisions)).collect()
}

#[test]
fn perturbing_the_future_changes_no_decision_up_to_now() {
    let trace = trace();
    let config = BacktestConfig { warmup: Duration::days(2), ..BacktestConfig::default() };
    let original = decisions(&trace, &config);
    let first = 2 * 1440;
    // Mid-bucket, exactly at a refit (6 h into the scored day), and 3 minutes before the event.
    for k in [first + 123, first + 360, first + 837] {
        let cut = trace.demand.timestamp(k);
        let mut perturbed = trace.clone();
        for (i, v) in perturbed.demand.values_mut().iter_mut().enumerate().skip(k) {
            *v = if i % 97 == 0 { None } else { v.map(|x| x * 2.5 + (i % 7) as f64 * 13.0) };
        }
        let changed = decisions(&perturbed, &config);
        for ((name, before), (same_name, after)) in original.iter().zip(&changed) {
            assert_eq!(name, same_name);
            if name == PolicyKind::Oracle.name() {
                continue;
            }
            let up_to = |d: &[TimedTarget]| d.iter().filter(|d| d.at <= cut).copied().collect::<Vec<_>>();
            let (a, b) = (up_to(before), up_to(after));
            assert!(!a.is_empty(), "{name}: no decision up to {cut}");
            assert_eq!(a, b, "{name}: a decision up to {cut} changed when only the demand from {cut} on did");
            assert_ne!(before, after, "{name}: the perturbation after {cut} changed nothing at all");
        }
    }
}
