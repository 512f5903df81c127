//! Event columns, computed in plain Rust: a sweep over sorted event starts per kind costs
//! O(steps + events), which a polars as-of join per kind would not beat on this size.

use std::collections::BTreeMap;

use prescale_core::{ScheduledEvent, TimeSeries};

use crate::columns;
use crate::input::{offset_ms, overlapping_steps};

const MS_PER_MINUTE: f64 = 60_000.0;

/// `event_active`, `event_minutes_since_start`, then per kind (sorted by name)
/// `event_active:<kind>` and `event_minutes_until:<kind>`.
pub(crate) fn event_columns(history: &TimeSeries, events: &[ScheduledEvent]) -> Vec<(String, Vec<f64>)> {
    let n = history.len();
    let step_ms = i64::from(history.step_secs()) * 1000;
    let step_start_ms = |i: usize| i as i64 * step_ms;

    let mut any_active = vec![0.0; n];
    let mut since_start = vec![f64::NAN; n];
    let mut by_kind: BTreeMap<&str, (Vec<f64>, Vec<i64>)> = BTreeMap::new();

    for event in events {
        let from_ms = offset_ms(history, event.start);
        let to_ms = offset_ms(history, event.end);
        let (kind_active, starts) = by_kind.entry(event.kind.as_str()).or_insert_with(|| (vec![0.0; n], Vec::new()));
        starts.push(from_ms);
        let (lo, hi) = overlapping_steps(from_ms, to_ms, step_ms);
        let lo = lo.clamp(0, n as i64) as usize;
        let hi = hi.clamp(0, n as i64) as usize;
        for i in lo..hi {
            any_active[i] = 1.0;
            kind_active[i] = 1.0;
            let minutes = (step_start_ms(i) - from_ms).max(0) as f64 / MS_PER_MINUTE;
            // The most recently started event wins when several overlap.
            if since_start[i].is_nan() || minutes < since_start[i] {
                since_start[i] = minutes;
            }
        }
    }

    let mut out = vec![
        (columns::EVENT_ACTIVE.to_string(), any_active),
        (columns::EVENT_MINUTES_SINCE_START.to_string(), since_start),
    ];
    for (kind, (kind_active, mut starts)) in by_kind {
        starts.sort_unstable();
        let mut until = Vec::with_capacity(n);
        let mut next = 0;
        for i in 0..n {
            let t = step_start_ms(i);
            while next < starts.len() && starts[next] < t {
                next += 1;
            }
            until.push(starts.get(next).map_or(f64::NAN, |&s| (s - t) as f64 / MS_PER_MINUTE));
        }
        out.push((columns::event_active_of_kind(kind), kind_active));
        out.push((columns::event_minutes_until(kind), until));
    }
    out
}
