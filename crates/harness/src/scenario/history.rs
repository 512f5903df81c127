//! The synthetic history the daemon is seeded with: 14 days of one-minute request counts with a
//! daily cycle and two past `marketing-campaign` events of about 4x, and the calendar that
//! names those events.
//!
//! The daily cycle peaks in the middle of the scenario's run, so the baseline the model learns
//! for the run is flat to within about 1% and equals the scenario's baseline rate. Noise is
//! deterministic (a seeded hash), so the same options give the same files.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use prescale_core::ScheduledEvent;

/// Event kind of the past campaigns and of the announced one.
pub const EVENT_KIND: &str = "marketing-campaign";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySpec {
    /// End of the history (exclusive, aligned to the step).
    pub end: DateTime<Utc>,
    /// Days of history.
    pub days: u32,
    /// Step of the rows, seconds.
    pub step_secs: u32,
    /// The rate the daily cycle reaches at its peak, in the daemon's requests per second.
    pub peak_rps: f64,
    /// When a daily peak falls (any day: only the time of day matters).
    pub peak_at: DateTime<Utc>,
    /// Depth of the daily cycle: the trough is `peak * (1 - 2 * depth / (1 + depth))`.
    pub depth: f64,
    /// Uplifts of the two past campaigns.
    pub uplifts: [f64; 2],
    /// Relative noise amplitude (uniform in `±noise`).
    pub noise: f64,
    /// Seed of the noise.
    pub seed: u64,
}

/// The generated files' contents.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticHistory {
    /// `timestamp,requests` CSV: requests per step, each row marking the start of its step.
    pub csv: String,
    /// The past events, as the calendar file lists them.
    pub past_events: Vec<ScheduledEvent>,
}

impl SyntheticHistory {
    /// The calendar file (YAML list under `events:`).
    pub fn calendar_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        #[derive(serde::Serialize)]
        struct Calendar<'a> {
            events: &'a [ScheduledEvent],
        }
        serde_yaml_ng::to_string(&Calendar { events: &self.past_events })
    }
}

/// A uniform number in `[-1, 1)` from `seed` and `i` (splitmix64).
fn unit_noise(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Weight of an event at `t`: 0 before its start, rising over one minute, 1 until its end,
/// falling over one minute after it (the shape of the scenario's own surge).
fn event_weight(t: DateTime<Utc>, event: &ScheduledEvent) -> f64 {
    let ramp = 60.0;
    let since_start = (t - event.start).num_milliseconds() as f64 / 1000.0;
    let since_end = (t - event.end).num_milliseconds() as f64 / 1000.0;
    if since_start < 0.0 {
        0.0
    } else if since_start < ramp {
        since_start / ramp
    } else if since_end < 0.0 {
        1.0
    } else if since_end < ramp {
        1.0 - since_end / ramp
    } else {
        0.0
    }
}

/// Generate the history and its calendar.
pub fn generate(spec: &HistorySpec) -> SyntheticHistory {
    let step = Duration::seconds(i64::from(spec.step_secs.max(1)));
    let steps = i64::from(spec.days) * 86_400 / step.num_seconds();
    let start = spec.end - step * steps as i32;
    // Two campaigns of an hour: ten days ago at the run's own time of day, four days ago two hours earlier.
    let day = Duration::days(1);
    let first = spec.peak_at - Duration::minutes(35) - day * 10;
    let second = spec.peak_at - Duration::minutes(35) - Duration::hours(2) - day * 4;
    let past_events: Vec<ScheduledEvent> = [(first, spec.uplifts[0], "winter"), (second, spec.uplifts[1], "clearance")]
        .iter()
        .map(|(at, uplift, label)| ScheduledEvent {
            id: format!("{label}-campaign"),
            name: format!("{} campaign", capitalize(label)),
            kind: EVENT_KIND.to_string(),
            start: *at,
            end: *at + Duration::hours(1),
            description: Some(format!("Past {label} campaign email; traffic rose about {uplift:.1}x.")),
            expected_multiplier: None,
        })
        .collect();
    let mut csv = String::with_capacity(steps as usize * 32);
    csv.push_str("timestamp,requests\n");
    let depth = spec.depth.clamp(0.0, 0.9);
    for i in 0..steps {
        let t = start + step * i as i32;
        // Mid-step, so the shape is the step's mean.
        let mid = t + step / 2;
        let phase = (mid - spec.peak_at).num_seconds() as f64 / 86_400.0 * std::f64::consts::TAU;
        let cycle = (1.0 + depth * phase.cos()) / (1.0 + depth);
        let uplift: f64 =
            spec.uplifts.iter().zip(&past_events).map(|(u, e)| 1.0 + event_weight(mid, e) * (u - 1.0)).product();
        let noise = 1.0 + spec.noise * unit_noise(spec.seed, i as u64);
        let per_step = spec.peak_rps * cycle * uplift * noise * f64::from(spec.step_secs);
        let _ = writeln!(csv, "{},{}", t.format("%Y-%m-%dT%H:%M:%SZ"), per_step.max(0.0).round());
    }
    SyntheticHistory { csv, past_events }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HistorySpec {
        let end: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        HistorySpec {
            end,
            days: 14,
            step_secs: 60,
            peak_rps: 100.0,
            peak_at: end + Duration::minutes(55),
            depth: 0.4,
            uplifts: [3.8, 4.2],
            noise: 0.05,
            seed: 7,
        }
    }

    fn rows(csv: &str) -> Vec<(DateTime<Utc>, f64)> {
        csv.lines()
            .skip(1)
            .map(|l| {
                let (t, v) = l.split_once(',').unwrap();
                (t.parse().unwrap(), v.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn fourteen_days_of_minutes_with_a_daily_cycle() {
        let s = spec();
        let h = generate(&s);
        let rows = rows(&h.csv);
        assert_eq!(rows.len(), 14 * 1440);
        assert_eq!(rows.last().unwrap().0, s.end - Duration::minutes(1));
        // Near the daily peak, one day before the run: about 100 rps, 6000 per minute.
        let near_peak = rows.iter().find(|(t, _)| *t == s.peak_at - Duration::days(1)).unwrap().1;
        assert!((5600.0..=6400.0).contains(&near_peak), "{near_peak}");
        // Twelve hours from the peak: the trough, 1 - 0.8 / 1.4 of the peak.
        let trough = rows.iter().find(|(t, _)| *t == s.peak_at - Duration::hours(12)).unwrap().1;
        assert!((2300.0..=2850.0).contains(&trough), "{trough}");
        assert_eq!(h.csv, generate(&s).csv, "deterministic");
    }

    #[test]
    fn past_campaigns_lift_traffic_about_fourfold() {
        let s = spec();
        let h = generate(&s);
        let rows = rows(&h.csv);
        assert_eq!(h.past_events.len(), 2);
        for (event, uplift) in h.past_events.iter().zip(s.uplifts) {
            assert_eq!(event.kind, EVENT_KIND);
            assert!(event.expected_multiplier.is_none());
            let inside = rows.iter().find(|(t, _)| *t == event.start + Duration::minutes(30)).unwrap().1;
            let day_before = rows.iter().find(|(t, _)| *t == event.start + Duration::minutes(30) - Duration::days(1));
            let ratio = inside / day_before.unwrap().1;
            assert!((ratio - uplift).abs() < 0.5, "{ratio} vs {uplift}");
        }
        let yaml = h.calendar_yaml().unwrap();
        assert!(yaml.contains("marketing-campaign") && yaml.starts_with("events:"), "{yaml}");
    }
}
