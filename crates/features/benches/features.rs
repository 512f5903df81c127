//! Benchmarks: features and the uplift table for 28 days of 1-minute history (40,320 points)
//! with 60 events of three kinds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use prescale_core::{ScheduledEvent, TimeSeries};
use prescale_features::{FeatureConfig, UpliftConfig, build_features, uplift_table};

const DAYS: usize = 28;
const EVENTS: usize = 60;

fn start() -> DateTime<Utc> {
    "2026-02-02T00:00:00Z".parse().unwrap_or_default()
}

/// A daily cycle with a few missing stretches, plus 60 events that raise traffic 3x.
fn workload() -> (TimeSeries, Vec<ScheduledEvent>) {
    let n = DAYS * 1440;
    let mut values: Vec<Option<f64>> = (0..n)
        .map(|i| {
            let minute = (i % 1440) as f64;
            let jitter = ((i * 7919) % 101) as f64 / 100.0 - 0.5;
            Some(200.0 + 120.0 * (std::f64::consts::TAU * (minute - 360.0) / 1440.0).sin() + 10.0 * jitter)
        })
        .collect();
    for gap in 0..10 {
        let from = 1000 + gap * 3900;
        values[from..from + 30].fill(None);
    }
    let kinds = ["campaign", "match", "launch"];
    let events: Vec<ScheduledEvent> = (0..EVENTS)
        .map(|k| {
            // Spread over the 28 days at varying clock times, 90 minutes each.
            let begin = start() + Duration::minutes((k * (n - 600) / EVENTS + 300 + (k % 5) * 37) as i64);
            let end = begin + Duration::minutes(90);
            let lo = (begin - start()).num_minutes() as usize;
            for v in values[lo - 10..lo + 100].iter_mut().flatten() {
                *v *= 3.0;
            }
            ScheduledEvent {
                id: format!("event-{k}"),
                name: format!("Event {k}"),
                kind: kinds[k % kinds.len()].to_string(),
                start: begin,
                end,
                description: None,
                expected_multiplier: None,
            }
        })
        .collect();
    let history = TimeSeries::new(start(), Duration::minutes(1), values).unwrap_or_else(|e| panic!("{e}"));
    (history, events)
}

fn bench(c: &mut Criterion) {
    let (history, events) = workload();
    let features = FeatureConfig::default();
    let uplift = UpliftConfig::default();
    c.bench_function("build_features 28d x 1min, 60 events", |b| {
        b.iter(|| build_features(black_box(&history), black_box(&events), &features))
    });
    c.bench_function("uplift_table 28d x 1min, 60 events", |b| {
        b.iter(|| uplift_table(black_box(&history), black_box(&events), &uplift))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
