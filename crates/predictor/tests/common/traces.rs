//! Readers for the real traces in `data/traces` (CSV `timestamp,requests` and
//! `start,end,name,kind`), and a rough uplift estimate for tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use prescale_core::{KindUplift, ScheduledEvent, TimeSeries, UpliftObservation, UpliftTable};

/// `data/traces` of the workspace.
pub fn trace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
}

/// A trace as a regular series; absent rows become missing points. The step comes from
/// the file name (`per-minute` or `per-5min`).
pub fn load_series(file: &str) -> TimeSeries {
    let step = if file.contains("per-5min") { Duration::minutes(5) } else { Duration::minutes(1) };
    let mut reader = csv::Reader::from_path(trace_dir().join(file)).unwrap();
    let rows: Vec<(DateTime<Utc>, f64)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[1].parse().unwrap())
        })
        .collect();
    let start = rows[0].0;
    let last = rows.last().unwrap().0;
    let n = ((last - start).num_seconds() / step.num_seconds()) as usize + 1;
    let mut values = vec![None; n];
    for (t, v) in rows {
        values[((t - start).num_seconds() / step.num_seconds()) as usize] = Some(v);
    }
    TimeSeries::new(start, step, values).unwrap()
}

/// An event calendar.
pub fn load_events(file: &str) -> Vec<ScheduledEvent> {
    let mut reader = csv::Reader::from_path(trace_dir().join(file)).unwrap();
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

/// A rough uplift table for tests (the project's real one comes from `prescale-features`):
/// per event that ended before `before`, the mean of its window over the median of the same
/// window on up to 4 earlier days without any event near it; no lead or lag.
pub fn rough_uplift(history: &TimeSeries, events: &[ScheduledEvent], before: DateTime<Utc>) -> UpliftTable {
    let mean = |from: DateTime<Utc>, to: DateTime<Utc>| history.window(from, to).mean();
    let clear = |from: DateTime<Utc>, to: DateTime<Utc>| {
        events.iter().all(|e| e.end + Duration::hours(1) <= from || e.start - Duration::hours(1) >= to)
    };
    let mut per_kind: std::collections::BTreeMap<String, Vec<UpliftObservation>> = Default::default();
    for e in events.iter().filter(|e| e.end <= before) {
        let Some(during) = mean(e.start, e.end) else { continue };
        let mut base: Vec<f64> = (1..=14)
            .map(|d| (e.start - Duration::days(d), e.end - Duration::days(d)))
            .filter(|(f, t)| clear(*f, *t))
            .filter_map(|(f, t)| mean(f, t))
            .take(4)
            .collect();
        if base.len() < 2 {
            continue;
        }
        base.sort_by(f64::total_cmp);
        let median = base[base.len() / 2];
        if median > 0.0 {
            per_kind.entry(e.kind.clone()).or_default().push(UpliftObservation {
                event_id: e.id.clone(),
                date: e.start,
                uplift: during / median,
                lead_steps: 0,
                lag_steps: 0,
            });
        }
    }
    let kinds = per_kind.into_iter().filter_map(|(k, obs)| Some((k, KindUplift::from_observations(obs)?))).collect();
    UpliftTable { step_secs: history.step_secs(), kinds }
}
