//! Tests of `build_features` on small synthetic series whose expected values are worked out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use chrono::Duration;
use common::{at, event};
use prescale_core::TimeSeries;
use prescale_features::{FeatureConfig, FeatureError, build_features, columns};
use proptest::prelude::*;

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(a.is_nan(), "{what}[{i}]: expected NaN, got {a}");
        } else {
            assert!((a - e).abs() < 1e-9, "{what}[{i}]: expected {e}, got {a}");
        }
    }
}

fn one_minute(values: Vec<Option<f64>>) -> TimeSeries {
    TimeSeries::new(at("2026-03-02T00:00:00Z"), Duration::minutes(1), values).unwrap()
}

#[test]
fn rolling_statistics_match_hand_computed_values_and_skip_missing_points() {
    let history =
        one_minute(vec![Some(1.0), Some(2.0), Some(4.0), None, Some(8.0), Some(16.0), None, None, None, Some(3.0)]);
    let window = Duration::minutes(4);
    // A 4-step window needs 2 present points.
    let config = FeatureConfig { rolling_windows: vec![window], min_window_coverage: 0.5 };
    let frame = build_features(&history, &[], &config).unwrap();
    let nan = f64::NAN;
    let mean = [nan, 1.5, 7.0 / 3.0, 7.0 / 3.0, 14.0 / 3.0, 28.0 / 3.0, 12.0, 12.0, nan, nan];
    let std = [
        nan,
        0.5f64.sqrt(),
        (7.0f64 / 3.0).sqrt(),
        (7.0f64 / 3.0).sqrt(),
        (28.0f64 / 3.0).sqrt(),
        (112.0f64 / 3.0).sqrt(),
        32.0f64.sqrt(),
        32.0f64.sqrt(),
        nan,
        nan,
    ];
    let max = [nan, 2.0, 4.0, 4.0, 8.0, 16.0, 16.0, 16.0, nan, nan];
    let trend = [
        nan,
        nan,
        nan,
        nan,
        nan,
        (28.0 / 3.0 - 1.5) / 4.0,
        (12.0 - 7.0 / 3.0) / 4.0,
        (12.0 - 7.0 / 3.0) / 4.0,
        nan,
        nan,
    ];
    assert_close(frame.column(&columns::rolling_mean(window)).unwrap(), &mean, "rolling_mean_4m");
    assert_close(frame.column(&columns::rolling_std(window)).unwrap(), &std, "rolling_std_4m");
    assert_close(frame.column(&columns::rolling_max(window)).unwrap(), &max, "rolling_max_4m");
    assert_close(frame.column(&columns::trend(window)).unwrap(), &trend, "trend_4m");
}

#[test]
fn full_coverage_requires_every_point_of_the_window() {
    let history = one_minute(vec![Some(1.0), Some(2.0), None, Some(4.0), Some(5.0), Some(6.0)]);
    let window = Duration::minutes(3);
    let config = FeatureConfig { rolling_windows: vec![window], min_window_coverage: 1.0 };
    let frame = build_features(&history, &[], &config).unwrap();
    let nan = f64::NAN;
    assert_close(frame.column(&columns::rolling_mean(window)).unwrap(), &[nan, nan, nan, nan, nan, 5.0], "mean");
}

#[test]
fn trend_of_a_line_is_its_slope() {
    let values: Vec<Option<f64>> = (0..200).map(|i| Some(10.0 + 0.25 * i as f64)).collect();
    let full_windows = FeatureConfig { min_window_coverage: 1.0, ..FeatureConfig::default() };
    let frame = build_features(&one_minute(values), &[], &full_windows).unwrap();
    let trend_15m = frame.column("trend_15m").unwrap();
    assert!(trend_15m[..29].iter().all(|x| x.is_nan()), "needs two full windows: {:?}", &trend_15m[..29]);
    assert!(trend_15m[29..].iter().all(|x| (x - 0.25).abs() < 1e-9));
    let trend_1h = frame.column("trend_1h").unwrap();
    assert!(trend_1h[119..].iter().all(|x| (x - 0.25).abs() < 1e-9));
}

#[test]
fn missing_points_stay_nan_in_value_lags_and_empty_windows() {
    let mut values: Vec<Option<f64>> = (0..3 * 1440).map(|i| Some(50.0 + (i % 7) as f64)).collect();
    for v in &mut values[100..200] {
        *v = None;
    }
    let frame = build_features(&one_minute(values), &[], &FeatureConfig::default()).unwrap();
    let value = frame.column(columns::VALUE).unwrap();
    assert!(value[100..200].iter().all(|x| x.is_nan()));
    assert_eq!(value[99], 50.0 + (99 % 7) as f64);
    let lag_1 = frame.column(columns::LAG_1_STEP).unwrap();
    assert!(lag_1[101..201].iter().all(|x| x.is_nan()));
    assert!(lag_1[0].is_nan(), "nothing before the first point");
    let lag_day = frame.column(columns::LAG_1_DAY).unwrap();
    assert!(lag_day[1440 + 100..1440 + 200].iter().all(|x| x.is_nan()));
    assert!(lag_day[..1440].iter().all(|x| x.is_nan()));
    assert!(frame.column(columns::LAG_1_WEEK).unwrap().iter().all(|x| x.is_nan()), "history is shorter than a week");
    // A 15-minute window deep inside the gap has no point at all: undefined, not zero.
    let mean_15m = frame.column("rolling_mean_15m").unwrap();
    let max_15m = frame.column("rolling_max_15m").unwrap();
    assert!(mean_15m[120..200].iter().all(|x| x.is_nan()));
    assert!(max_15m[120..200].iter().all(|x| x.is_nan()));
    let series_columns =
        frame.iter().filter(|(name, _)| ["value", "lag_", "rolling_", "trend_"].iter().any(|p| name.starts_with(p)));
    for (name, column) in series_columns {
        assert!(column[150] != 0.0, "{name} turns the gap into zero");
    }
}

#[test]
fn calendar_columns_encode_utc_minute_of_day_and_weekday() {
    // 1998-06-10 was a Wednesday.
    let history = TimeSeries::from_values(at("1998-06-10T23:58:30Z"), Duration::seconds(30), vec![1.0; 6]).unwrap();
    let frame =
        build_features(&history, &[], &FeatureConfig { rolling_windows: vec![], ..Default::default() }).unwrap();
    let minute = frame.column(columns::MINUTE_OF_DAY).unwrap();
    assert_close(minute, &[1438.5, 1439.0, 1439.5, 0.0, 0.5, 1.0], "minute_of_day");
    assert_close(frame.column(columns::DAY_OF_WEEK).unwrap(), &[2.0, 2.0, 2.0, 3.0, 3.0, 3.0], "day_of_week");
    let tau = std::f64::consts::TAU;
    let sin: Vec<f64> = minute.iter().map(|m| (tau * m / 1440.0).sin()).collect();
    let cos: Vec<f64> = minute.iter().map(|m| (tau * m / 1440.0).cos()).collect();
    assert_close(frame.column(columns::MINUTE_OF_DAY_SIN).unwrap(), &sin, "minute_of_day_sin");
    assert_close(frame.column(columns::MINUTE_OF_DAY_COS).unwrap(), &cos, "minute_of_day_cos");
    assert!((frame.column(columns::DAY_OF_WEEK_SIN).unwrap()[3] - (tau * 3.0 / 7.0).sin()).abs() < 1e-12);
    assert!((frame.column(columns::DAY_OF_WEEK_COS).unwrap()[0] - (tau * 2.0 / 7.0).cos()).abs() < 1e-12);
    assert_eq!(frame.timestamps()[3], at("1998-06-11T00:00:00Z"));
}

#[test]
fn event_columns_flag_active_steps_and_count_minutes() {
    let history = one_minute(vec![Some(1.0); 180]);
    let events = vec![
        event("a", "campaign", at("2026-03-02T01:00:00Z"), at("2026-03-02T01:30:00Z")),
        // Starts in the middle of the 01:20 step, so that step is active.
        event("b", "launch", at("2026-03-02T01:20:30Z"), at("2026-03-02T02:00:00Z")),
        // After the history: only visible as an upcoming event.
        event("c", "campaign", at("2026-03-02T05:00:00Z"), at("2026-03-02T06:00:00Z")),
    ];
    let frame = build_features(&history, &events, &FeatureConfig::default()).unwrap();
    let names = frame.names();
    let tail: Vec<&str> = names[names.len() - 6..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "event_active",
            "event_minutes_since_start",
            "event_active:campaign",
            "event_minutes_until:campaign",
            "event_active:launch",
            "event_minutes_until:launch"
        ]
    );

    let active = frame.column(columns::EVENT_ACTIVE).unwrap();
    let active_steps: Vec<usize> = (0..180).filter(|&i| active[i] == 1.0).collect();
    assert_eq!(active_steps, (60..120).collect::<Vec<_>>());
    assert!(active.iter().all(|&x| x == 0.0 || x == 1.0));
    let campaign = frame.column(&columns::event_active_of_kind("campaign")).unwrap();
    assert_eq!((0..180).filter(|&i| campaign[i] == 1.0).collect::<Vec<_>>(), (60..90).collect::<Vec<_>>());
    let launch = frame.column(&columns::event_active_of_kind("launch")).unwrap();
    assert_eq!((0..180).filter(|&i| launch[i] == 1.0).collect::<Vec<_>>(), (80..120).collect::<Vec<_>>());

    let since = frame.column(columns::EVENT_MINUTES_SINCE_START).unwrap();
    assert!(since[59].is_nan() && since[120].is_nan());
    assert_eq!([since[60], since[79], since[80], since[81], since[100], since[119]], [0.0, 19.0, 0.0, 0.5, 19.5, 38.5]);

    let until_campaign = frame.column(&columns::event_minutes_until("campaign")).unwrap();
    assert_eq!(
        [until_campaign[0], until_campaign[60], until_campaign[61], until_campaign[179]],
        [60.0, 0.0, 239.0, 121.0]
    );
    let until_launch = frame.column(&columns::event_minutes_until("launch")).unwrap();
    assert_eq!([until_launch[0], until_launch[80]], [80.5, 0.5]);
    assert!(until_launch[81..].iter().all(|x| x.is_nan()), "no launch after the one that started");
}

#[test]
fn bad_input_is_named() {
    let cfg = FeatureConfig::default();
    assert_eq!(build_features(&one_minute(vec![]), &[], &cfg), Err(FeatureError::EmptyHistory));

    let err = build_features(&one_minute(vec![Some(1.0), Some(f64::NAN)]), &[], &cfg).unwrap_err();
    assert!(matches!(err, FeatureError::NonFiniteValue { index: 1, .. }), "{err}");

    let odd_step = TimeSeries::from_values(at("2026-03-02T00:00:00Z"), Duration::seconds(7), vec![1.0]).unwrap();
    assert_eq!(build_features(&odd_step, &[], &cfg), Err(FeatureError::StepDoesNotDivideDay { step_secs: 7 }));

    let ninety_seconds =
        FeatureConfig { rolling_windows: vec![Duration::minutes(15), Duration::seconds(90)], ..cfg.clone() };
    let err = build_features(&one_minute(vec![Some(1.0)]), &[], &ninety_seconds).unwrap_err();
    assert!(matches!(&err, FeatureError::InvalidConfig { field, .. } if field == "rolling_windows[1]"), "{err}");

    let twice = FeatureConfig { rolling_windows: vec![Duration::hours(1), Duration::minutes(60)], ..cfg.clone() };
    assert!(matches!(
        build_features(&one_minute(vec![Some(1.0)]), &[], &twice),
        Err(FeatureError::InvalidConfig { .. })
    ));

    let no_coverage = FeatureConfig { min_window_coverage: 0.0, ..cfg.clone() };
    assert!(matches!(
        build_features(&one_minute(vec![Some(1.0)]), &[], &no_coverage),
        Err(FeatureError::InvalidConfig { .. })
    ));

    let backwards = event("late", "launch", at("2026-03-02T02:00:00Z"), at("2026-03-02T01:00:00Z"));
    let ok = event("fine", "launch", at("2026-03-02T01:00:00Z"), at("2026-03-02T02:00:00Z"));
    let err = build_features(&one_minute(vec![Some(1.0)]), &[ok, backwards], &cfg).unwrap_err();
    match &err {
        FeatureError::InvalidEvent { index, id, problems } => {
            assert_eq!((*index, id.as_str()), (1, "late"));
            assert!(problems.contains("end"), "{problems}");
        }
        other => panic!("expected InvalidEvent, got {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// On a 5-minute grid (288 steps a day), every lag column is the value column shifted.
    #[test]
    fn lags_are_the_shifted_values(values in proptest::collection::vec(proptest::option::weighted(0.8, 0.0f64..1e6), 1..2600)) {
        let history = TimeSeries::new(at("2026-03-02T00:00:00Z"), Duration::minutes(5), values.clone()).unwrap();
        let frame = build_features(&history, &[], &FeatureConfig::default()).unwrap();
        prop_assert_eq!(frame.len(), values.len());
        let same = |a: f64, b: Option<f64>| match b { Some(b) => a == b, None => a.is_nan() };
        let value = frame.column(columns::VALUE).unwrap();
        for (shift, name) in [(0usize, columns::VALUE), (1, columns::LAG_1_STEP), (288, columns::LAG_1_DAY), (2016, columns::LAG_1_WEEK)] {
            let column = frame.column(name).unwrap();
            for (i, &actual) in column.iter().enumerate().take(values.len()) {
                let expected = i.checked_sub(shift).and_then(|j| values[j]);
                prop_assert!(same(actual, expected), "{}[{}] = {} but expected {:?}", name, i, actual, expected);
            }
        }
        prop_assert!(value.iter().zip(&values).all(|(a, b)| same(*a, *b)));
    }
}
