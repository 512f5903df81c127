//! What past events of each kind did to traffic: built by `features`, read by `predictor`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One past event's observed effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftObservation {
    /// The event's id.
    pub event_id: String,
    /// The event's scheduled start.
    pub date: DateTime<Utc>,
    /// Mean traffic in the event window divided by the baseline of the same clock window.
    pub uplift: f64,
    /// Steps before the scheduled start at which traffic began to rise (0 = at the start).
    pub lead_steps: u32,
    /// Steps after the scheduled end at which traffic was back at the baseline.
    pub lag_steps: u32,
}

/// Summary of the uplifts seen for one event kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindUplift {
    /// Every past event of the kind that could be measured, oldest first.
    pub observations: Vec<UpliftObservation>,
    /// Median of the observed uplifts.
    pub median_uplift: f64,
    /// Median lead of the rise, in steps.
    pub lead_steps: u32,
    /// Median lag of the return to baseline, in steps.
    pub lag_steps: u32,
}

impl KindUplift {
    /// Summarize observations (medians); `None` when there are none.
    pub fn from_observations(mut observations: Vec<UpliftObservation>) -> Option<Self> {
        if observations.is_empty() {
            return None;
        }
        observations.sort_by_key(|o| o.date);
        let median_uplift = median(observations.iter().map(|o| o.uplift).collect());
        let lead_steps = median(observations.iter().map(|o| f64::from(o.lead_steps)).collect()).round() as u32;
        let lag_steps = median(observations.iter().map(|o| f64::from(o.lag_steps)).collect()).round() as u32;
        Some(Self { observations, median_uplift, lead_steps, lag_steps })
    }
}

/// Per event kind, the observed uplifts of past events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpliftTable {
    /// Step of the series the uplifts were measured on, in seconds.
    pub step_secs: u32,
    /// Per kind, its summary.
    pub kinds: BTreeMap<String, KindUplift>,
}

impl UpliftTable {
    /// The summary for `kind`, if any past event of that kind was measured.
    pub fn get(&self, kind: &str) -> Option<&KindUplift> {
        self.kinds.get(kind)
    }
}

/// Median of a non-empty list (0 for an empty one).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(uplift: f64, day: u32) -> UpliftObservation {
        UpliftObservation {
            event_id: format!("e{day}"),
            date: format!("2026-01-{day:02}T12:00:00Z").parse().unwrap(),
            uplift,
            lead_steps: day,
            lag_steps: 2 * day,
        }
    }

    #[test]
    fn summary_uses_medians_and_sorts_by_date() {
        let k = KindUplift::from_observations(vec![obs(4.0, 3), obs(2.0, 1), obs(3.0, 2)]).unwrap();
        assert_eq!(k.median_uplift, 3.0);
        assert_eq!(k.lead_steps, 2);
        assert_eq!(k.lag_steps, 4);
        assert_eq!(k.observations[0].event_id, "e1");
        assert!(KindUplift::from_observations(vec![]).is_none());
    }
}
