//! Forecasts: per-step p50/p90, the source that produced them, and why.
//!
//! Sources are a closed set, written as labels: `statistical`,
//! `statistical+events`, `llm:<model>`, and any of them followed by
//! ` (fallback: <reason>)` when it answered because another failed.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Which predictor produced a forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForecastSource {
    /// The event-free statistical baseline.
    Statistical,
    /// The baseline times learned (or declared) event uplifts.
    StatisticalEvents,
    /// The baseline adjusted by an LLM's bounded event multipliers.
    Llm {
        /// The model name as configured.
        model: String,
    },
    /// `source` answered because the preferred predictor failed for `reason`.
    Fallback {
        /// The predictor that answered.
        source: Box<ForecastSource>,
        /// Why the preferred predictor did not.
        reason: String,
    },
}

impl ForecastSource {
    /// This source labelled as the fallback for `reason`.
    pub fn fallback(self, reason: impl Into<String>) -> Self {
        // A fallback of a fallback keeps the answering source and the first reason chain readable.
        ForecastSource::Fallback { source: Box::new(self), reason: reason.into() }
    }

    /// Whether this forecast came from a fallback path.
    pub fn is_fallback(&self) -> bool {
        matches!(self, ForecastSource::Fallback { .. })
    }
}

impl std::fmt::Display for ForecastSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForecastSource::Statistical => f.write_str("statistical"),
            ForecastSource::StatisticalEvents => f.write_str("statistical+events"),
            ForecastSource::Llm { model } => write!(f, "llm:{model}"),
            ForecastSource::Fallback { source, reason } => write!(f, "{source} (fallback: {reason})"),
        }
    }
}

impl std::str::FromStr for ForecastSource {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(open) = s.find(" (fallback: ") {
            let inner: ForecastSource = s[..open].parse()?;
            let rest = &s[open + " (fallback: ".len()..];
            let reason = rest.strip_suffix(')').ok_or_else(|| CoreError::UnknownSource(s.to_string()))?;
            return Ok(inner.fallback(reason));
        }
        match s {
            "statistical" => Ok(ForecastSource::Statistical),
            "statistical+events" => Ok(ForecastSource::StatisticalEvents),
            _ => match s.strip_prefix("llm:") {
                Some(model) if !model.is_empty() => Ok(ForecastSource::Llm { model: model.to_string() }),
                _ => Err(CoreError::UnknownSource(s.to_string())),
            },
        }
    }
}

impl Serialize for ForecastSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ForecastSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One forecast step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// Median forecast, in the series' unit per step.
    pub p50: f64,
    /// 90th percentile forecast; never below `p50`.
    pub p90: f64,
}

/// A forecast on a regular grid starting at `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Start of the first forecast step.
    pub start: DateTime<Utc>,
    /// Step length in seconds.
    pub step_secs: u32,
    /// One point per step.
    pub points: Vec<ForecastPoint>,
    /// The event-free baseline per step, when the producer knows it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<f64>,
    /// Which predictor produced it.
    pub source: ForecastSource,
    /// Human-readable reason for the shape of the forecast.
    pub explanation: String,
}

impl Forecast {
    /// Step length.
    pub fn step(&self) -> Duration {
        Duration::seconds(i64::from(self.step_secs))
    }

    /// Start time of step `i`.
    pub fn timestamp(&self, i: usize) -> DateTime<Utc> {
        self.start + Duration::seconds(i64::from(self.step_secs) * i as i64)
    }

    /// End of the forecast horizon (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.timestamp(self.points.len())
    }

    /// The point covering `t`, if inside the horizon.
    pub fn point_at(&self, t: DateTime<Utc>) -> Option<ForecastPoint> {
        let secs = (t - self.start).num_seconds();
        if secs < 0 {
            return None;
        }
        self.points.get((secs / i64::from(self.step_secs)) as usize).copied()
    }

    /// The largest p90 among steps overlapping `[from, to)`, if any.
    pub fn max_p90_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
        let step = i64::from(self.step_secs);
        self.points
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let s = self.start + Duration::seconds(step * *i as i64);
                s < to && s + Duration::seconds(step) > from
            })
            .map(|(_, p)| p.p90)
            .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_labels_round_trip() {
        for label in
            ["statistical", "statistical+events", "llm:qwen2.5:7b", "statistical+events (fallback: llm timeout)"]
        {
            let s: ForecastSource = label.parse().unwrap();
            assert_eq!(s.to_string(), label);
        }
        assert!("magic".parse::<ForecastSource>().is_err());
        assert!("llm:".parse::<ForecastSource>().is_err());
    }

    #[test]
    fn fallback_label_names_source_and_reason() {
        let s = ForecastSource::StatisticalEvents.fallback("llm timeout");
        assert_eq!(s.to_string(), "statistical+events (fallback: llm timeout)");
        assert!(s.is_fallback());
    }

    #[test]
    fn max_p90_between_covers_overlapping_steps() {
        let f = Forecast {
            start: "2026-01-01T00:00:00Z".parse().unwrap(),
            step_secs: 60,
            points: vec![
                ForecastPoint { p50: 1.0, p90: 1.0 },
                ForecastPoint { p50: 5.0, p90: 9.0 },
                ForecastPoint { p50: 2.0, p90: 3.0 },
            ],
            baseline: vec![],
            source: ForecastSource::Statistical,
            explanation: String::new(),
        };
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(f.max_p90_between(t("2026-01-01T00:00:30Z"), t("2026-01-01T00:01:00Z")), Some(1.0));
        assert_eq!(f.max_p90_between(t("2026-01-01T00:00:30Z"), t("2026-01-01T00:01:01Z")), Some(9.0));
        assert_eq!(f.max_p90_between(t("2026-01-01T01:00:00Z"), t("2026-01-01T02:00:00Z")), None);
    }
}
