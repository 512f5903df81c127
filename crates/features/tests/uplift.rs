//! Tests of the uplift measurement on synthetic series with a known event effect.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{at, daily_cycle, event};
use prescale_core::TimeSeries;
use prescale_features::{FeatureError, SkipReason, UpliftConfig, measure_event_uplifts, uplift_table};

/// Monday 2026-03-02 00:00 UTC.
fn monday() -> DateTime<Utc> {
    at("2026-03-02T00:00:00Z")
}

/// Multiply the steps of `[from, to)` by `factor`.
fn surge(values: &mut [f64], start: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>, factor: f64) {
    let lo = (from - start).num_minutes() as usize;
    let hi = (to - start).num_minutes() as usize;
    for v in &mut values[lo..hi] {
        *v *= factor;
    }
}

fn series(values: Vec<f64>) -> TimeSeries {
    TimeSeries::from_values(monday(), Duration::minutes(1), values).unwrap()
}

#[test]
fn a_known_4x_event_measures_4x_with_its_lead_and_lag() {
    let mut values = daily_cycle(monday(), 21, 0.04);
    // Thursday 12:00-13:00; traffic is 4x from 10 minutes before to 20 minutes after.
    surge(&mut values, monday(), at("2026-03-12T11:50:00Z"), at("2026-03-12T13:20:00Z"), 4.0);
    let events = [event("promo", "campaign", at("2026-03-12T12:00:00Z"), at("2026-03-12T13:00:00Z"))];
    let table = uplift_table(&series(values), &events, &UpliftConfig::default()).unwrap();
    assert_eq!(table.step_secs, 60);
    let kind = table.get("campaign").unwrap();
    let obs = &kind.observations[0];
    assert!((obs.uplift - 4.0).abs() < 0.1, "uplift {}", obs.uplift);
    assert_eq!((obs.lead_steps, obs.lag_steps), (10, 20));
    assert_eq!((kind.lead_steps, kind.lag_steps), (10, 20));
    assert_eq!(obs.date, events[0].start);
}

#[test]
fn a_weekend_event_is_compared_with_weekend_days() {
    // Weekends run at half the weekday level: against weekdays this event would look like 2x.
    let mut values = daily_cycle(monday(), 21, 0.04);
    surge(&mut values, monday(), at("2026-03-14T18:00:00Z"), at("2026-03-14T19:00:00Z"), 4.0);
    let events = [event("sat", "match", at("2026-03-14T18:00:00Z"), at("2026-03-14T19:00:00Z"))];
    let table = uplift_table(&series(values), &events, &UpliftConfig::default()).unwrap();
    let obs = &table.get("match").unwrap().observations[0];
    assert!((obs.uplift - 4.0).abs() < 0.1, "uplift {}", obs.uplift);
    assert_eq!((obs.lead_steps, obs.lag_steps), (0, 0));
}

#[test]
fn days_with_an_event_in_the_same_window_are_not_a_baseline() {
    let mut values = daily_cycle(monday(), 21, 0.0);
    // The same 4x surge on Wednesday and Thursday at 12:00-13:00.
    for day in ["2026-03-11", "2026-03-12"] {
        surge(&mut values, monday(), at(&format!("{day}T12:00:00Z")), at(&format!("{day}T13:00:00Z")), 4.0);
    }
    let events = [
        event("wed", "campaign", at("2026-03-11T12:00:00Z"), at("2026-03-11T13:00:00Z")),
        event("thu", "campaign", at("2026-03-12T12:00:00Z"), at("2026-03-12T13:00:00Z")),
    ];
    // With a single baseline day, the nearest one (the other event's day) would give 1x.
    let one_day = UpliftConfig { baseline_days: 1, min_baseline_days: 1, ..UpliftConfig::default() };
    let table = uplift_table(&series(values), &events, &one_day).unwrap();
    let kind = table.get("campaign").unwrap();
    assert_eq!(kind.observations.len(), 2);
    for obs in &kind.observations {
        assert!((obs.uplift - 4.0).abs() < 1e-9, "{}: uplift {}", obs.event_id, obs.uplift);
    }
    assert!((kind.median_uplift - 4.0).abs() < 1e-9);
}

#[test]
fn an_event_that_lowers_traffic_has_no_lead_or_lag() {
    let mut values = daily_cycle(monday(), 21, 0.0);
    surge(&mut values, monday(), at("2026-03-12T02:00:00Z"), at("2026-03-12T04:00:00Z"), 0.5);
    let events = [event("outage", "maintenance", at("2026-03-12T02:00:00Z"), at("2026-03-12T04:00:00Z"))];
    let table = uplift_table(&series(values), &events, &UpliftConfig::default()).unwrap();
    let obs = &table.get("maintenance").unwrap().observations[0];
    assert!((obs.uplift - 0.5).abs() < 1e-9, "uplift {}", obs.uplift);
    assert_eq!((obs.lead_steps, obs.lag_steps), (0, 0));
}

#[test]
fn events_without_enough_data_are_skipped_with_a_reason() {
    let mut values: Vec<Option<f64>> = daily_cycle(monday(), 21, 0.04).into_iter().map(Some).collect();
    // Tuesday 2026-03-10 10:00-11:00 is mostly missing.
    let gap_from = (at("2026-03-10T10:00:00Z") - monday()).num_minutes() as usize;
    for v in &mut values[gap_from..gap_from + 45] {
        *v = None;
    }
    let history = TimeSeries::new(monday(), Duration::minutes(1), values).unwrap();
    let events = [
        event("gap", "campaign", at("2026-03-10T10:00:00Z"), at("2026-03-10T11:00:00Z")),
        event("running", "campaign", at("2026-03-22T23:30:00Z"), at("2026-03-23T00:30:00Z")),
        event("before", "campaign", at("2026-02-20T10:00:00Z"), at("2026-02-20T11:00:00Z")),
        event("measured", "campaign", at("2026-03-11T10:00:00Z"), at("2026-03-11T11:00:00Z")),
    ];
    let measured = measure_event_uplifts(&history, &events, &UpliftConfig::default()).unwrap();
    let outcomes: Vec<_> = measured.iter().map(|m| (m.event_id.as_str(), m.outcome.as_ref().err().cloned())).collect();
    assert_eq!(
        outcomes,
        [
            ("gap", Some(SkipReason::TooFewPoints { present: 15, needed: 30 })),
            ("running", Some(SkipReason::NotEnded)),
            ("before", Some(SkipReason::TooFewPoints { present: 0, needed: 30 })),
            ("measured", None),
        ]
    );
    let table = uplift_table(&history, &events, &UpliftConfig::default()).unwrap();
    assert_eq!(table.get("campaign").unwrap().observations.len(), 1);
}

#[test]
fn too_few_comparable_days_skips_the_event() {
    // Monday and Tuesday only: a Tuesday event has one comparable day, two are needed.
    let history = series(daily_cycle(monday(), 2, 0.0));
    let events = [event("tue", "campaign", at("2026-03-03T12:00:00Z"), at("2026-03-03T13:00:00Z"))];
    let measured = measure_event_uplifts(&history, &events, &UpliftConfig::default()).unwrap();
    assert_eq!(measured[0].outcome, Err(SkipReason::TooFewBaselineDays { found: 1, needed: 2 }));
    let table = uplift_table(&history, &events, &UpliftConfig::default()).unwrap();
    assert!(table.kinds.is_empty());
}

#[test]
fn a_zero_baseline_is_skipped() {
    let mut values = vec![0.0; 7 * 1440];
    surge(&mut values, monday(), at("2026-03-04T12:00:00Z"), at("2026-03-04T13:00:00Z"), 0.0);
    values[(at("2026-03-04T12:10:00Z") - monday()).num_minutes() as usize] = 5.0;
    let events = [event("wed", "campaign", at("2026-03-04T12:00:00Z"), at("2026-03-04T13:00:00Z"))];
    let measured = measure_event_uplifts(&series(values), &events, &UpliftConfig::default()).unwrap();
    assert_eq!(measured[0].outcome, Err(SkipReason::ZeroBaseline));
}

#[test]
fn bad_uplift_config_is_named() {
    let history = series(daily_cycle(monday(), 2, 0.0));
    let cases = [
        ("min_baseline_days", UpliftConfig { min_baseline_days: 5, ..UpliftConfig::default() }),
        ("smoothing_steps", UpliftConfig { smoothing_steps: 4, ..UpliftConfig::default() }),
        ("onset_fraction", UpliftConfig { onset_fraction: 1.5, ..UpliftConfig::default() }),
        ("max_lag", UpliftConfig { max_lag: Duration::minutes(-5), ..UpliftConfig::default() }),
    ];
    for (expected, config) in cases {
        match uplift_table(&history, &[], &config) {
            Err(FeatureError::InvalidConfig { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn an_elevated_gap_between_two_events_is_split_between_lag_and_lead() {
    let mut values = daily_cycle(monday(), 21, 0.04);
    // Two matches on Thursday, 12:00-13:00 and 14:00-15:00; traffic stays 4x in the hour
    // between them. Each event may claim only its half of that hour (30 steps).
    surge(&mut values, monday(), at("2026-03-12T12:00:00Z"), at("2026-03-12T15:00:00Z"), 4.0);
    let events = [
        event("first", "match", at("2026-03-12T12:00:00Z"), at("2026-03-12T13:00:00Z")),
        event("second", "match", at("2026-03-12T14:00:00Z"), at("2026-03-12T15:00:00Z")),
    ];
    let measured = measure_event_uplifts(&series(values), &events, &UpliftConfig::default()).unwrap();
    let first = measured[0].outcome.as_ref().unwrap();
    let second = measured[1].outcome.as_ref().unwrap();
    assert_eq!((first.lead_steps, first.lag_steps), (0, 30));
    assert_eq!((second.lead_steps, second.lag_steps), (30, 0));
}

#[test]
fn an_overlapping_event_leaves_no_lead_on_its_side() {
    let mut values = daily_cycle(monday(), 21, 0.04);
    surge(&mut values, monday(), at("2026-03-12T11:00:00Z"), at("2026-03-12T13:20:00Z"), 4.0);
    let events = [
        event("long", "parade", at("2026-03-12T11:00:00Z"), at("2026-03-12T12:30:00Z")),
        event("inside", "match", at("2026-03-12T12:00:00Z"), at("2026-03-12T13:00:00Z")),
    ];
    let measured = measure_event_uplifts(&series(values), &events, &UpliftConfig::default()).unwrap();
    let inside = measured[1].outcome.as_ref().unwrap();
    assert_eq!((inside.lead_steps, inside.lag_steps), (0, 20), "the parade covers the match's lead");
}
