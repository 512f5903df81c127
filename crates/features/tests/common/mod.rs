//! Shared test helpers: a small reader for the trace CSVs in `data/traces`, and synthetic series.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use prescale_core::{ScheduledEvent, TimeSeries};

/// Path of a file in the repository's `data/traces`.
pub fn trace_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces").join(name)
}

/// A `timestamp,requests` trace on a 1-minute grid; absent rows become missing points.
pub fn load_per_minute_trace(name: &str) -> TimeSeries {
    let mut reader = csv::Reader::from_path(trace_path(name)).unwrap();
    let rows: Vec<(DateTime<Utc>, f64)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[1].parse().unwrap())
        })
        .collect();
    let start = rows[0].0;
    let last = (rows[rows.len() - 1].0 - start).num_minutes() as usize;
    let mut values = vec![None; last + 1];
    for (t, v) in rows {
        values[(t - start).num_minutes() as usize] = Some(v);
    }
    TimeSeries::new(start, Duration::minutes(1), values).unwrap()
}

/// A `start,end,name,kind` event calendar, with ids derived from name and start.
pub fn load_events(name: &str) -> Vec<ScheduledEvent> {
    let mut reader = csv::Reader::from_path(trace_path(name)).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let start: DateTime<Utc> = r[0].parse().unwrap();
            ScheduledEvent {
                id: ScheduledEvent::derive_id(&r[2], start),
                name: r[2].to_string(),
                kind: r[3].to_string(),
                start,
                end: r[1].parse().unwrap(),
                description: None,
                expected_multiplier: None,
            }
        })
        .collect()
}

/// An event of `kind` over `[start, end)`.
pub fn event(id: &str, kind: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> ScheduledEvent {
    ScheduledEvent {
        id: id.into(),
        name: id.into(),
        kind: kind.into(),
        start,
        end,
        description: None,
        expected_multiplier: None,
    }
}

/// Parse an RFC 3339 UTC time.
pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Deterministic noise in `[-1, 1]` for step `i` (a hash, so every run sees the same series).
pub fn noise(i: usize) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 2001) as f64 / 1000.0 - 1.0
}

/// A 1-minute series of `days` days from `start` with a daily cycle (100 ± 50), weekends at
/// half level and ±`noise_share` noise.
pub fn daily_cycle(start: DateTime<Utc>, days: usize, noise_share: f64) -> Vec<f64> {
    use chrono::{Datelike, Weekday};
    (0..days * 1440)
        .map(|i| {
            let t = start + Duration::minutes(i as i64);
            let minute = (t - t.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc()).num_minutes() as f64;
            let level = 100.0 + 50.0 * (std::f64::consts::TAU * minute / 1440.0).sin();
            let weekend = if matches!(t.weekday(), Weekday::Sat | Weekday::Sun) { 0.5 } else { 1.0 };
            level * weekend * (1.0 + noise_share * noise(i))
        })
        .collect()
}
