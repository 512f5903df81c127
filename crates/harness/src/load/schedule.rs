//! The offered load over scenario time: named phases of linear rate segments.

use serde::Serialize;

use super::LoadError;

/// One piece of a schedule: the rate moves linearly from `from_rps` to `to_rps` over
/// `[start_s, end_s)` scenario seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// The phase this segment belongs to (`baseline`, `ramp-up`, `surge`, ...); several
    /// segments may share a phase.
    pub phase: String,
    /// Start, in scenario seconds from the start of the run.
    pub start_s: f64,
    /// End (exclusive), in scenario seconds.
    pub end_s: f64,
    /// Requests per wall-clock second at the start.
    pub from_rps: f64,
    /// Requests per wall-clock second at the end.
    pub to_rps: f64,
}

/// A schedule of request rates: contiguous segments from scenario second 0 to its end.
///
/// Rates are requests per wall-clock second: compressing scenario time does not compress
/// the request rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateSchedule {
    segments: Vec<Segment>,
}

impl RateSchedule {
    /// A schedule of `segments`, which must start at 0, follow each other without gaps and
    /// have finite, non-negative rates.
    pub fn new(segments: Vec<Segment>) -> Result<Self, LoadError> {
        let bad = |problem: String| Err(LoadError::Schedule(problem));
        if segments.is_empty() {
            return bad("a schedule needs at least one segment".into());
        }
        let mut at = 0.0;
        for (i, s) in segments.iter().enumerate() {
            if !(s.from_rps.is_finite() && s.to_rps.is_finite() && s.from_rps >= 0.0 && s.to_rps >= 0.0) {
                return bad(format!("segment {i} ({}): rates must be finite and >= 0", s.phase));
            }
            if (s.start_s - at).abs() > 1e-9 {
                return bad(format!("segment {i} ({}) starts at {} s, expected {at} s", s.phase, s.start_s));
            }
            if !(s.end_s.is_finite() && s.end_s > s.start_s) {
                return bad(format!("segment {i} ({}) ends at {} s, not after its start", s.phase, s.end_s));
            }
            if s.phase.is_empty() {
                return bad(format!("segment {i} has no phase name"));
            }
            at = s.end_s;
        }
        Ok(Self { segments })
    }

    /// One phase `phase` of `rps` for `duration_s` scenario seconds.
    pub fn constant(phase: &str, rps: f64, duration_s: f64) -> Result<Self, LoadError> {
        Self::new(vec![Segment { phase: phase.into(), start_s: 0.0, end_s: duration_s, from_rps: rps, to_rps: rps }])
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The end of the last segment, in scenario seconds.
    pub fn end_s(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.end_s)
    }

    fn segment_at(&self, t_s: f64) -> Option<&Segment> {
        self.segments.iter().find(|s| t_s >= s.start_s && t_s < s.end_s)
    }

    /// The offered rate at `t_s` scenario seconds (0 outside the schedule).
    pub fn rate_at(&self, t_s: f64) -> f64 {
        match self.segment_at(t_s) {
            Some(s) => {
                let f = (t_s - s.start_s) / (s.end_s - s.start_s);
                s.from_rps + (s.to_rps - s.from_rps) * f
            }
            None => 0.0,
        }
    }

    /// The phase at `t_s` scenario seconds.
    pub fn phase_at(&self, t_s: f64) -> Option<&str> {
        self.segment_at(t_s).map(|s| s.phase.as_str())
    }

    /// The phase names in order of first appearance.
    pub fn phases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.segments {
            if !out.contains(&s.phase) {
                out.push(s.phase.clone());
            }
        }
        out
    }

    /// The highest rate anywhere in the schedule.
    pub fn peak_rps(&self) -> f64 {
        self.segments.iter().map(|s| s.from_rps.max(s.to_rps)).fold(0.0, f64::max)
    }

    /// Requests the schedule offers between `from_s` and `to_s` scenario seconds when
    /// `time_scale` scenario seconds pass per wall second (the rate integrated over wall time).
    pub fn expected_requests(&self, from_s: f64, to_s: f64, time_scale: f64) -> f64 {
        let mut total = 0.0;
        for s in &self.segments {
            let a = from_s.max(s.start_s);
            let b = to_s.min(s.end_s);
            if b > a {
                total += (self.rate_at(a) + self.rate_at(b - 1e-9)) / 2.0 * (b - a) / time_scale;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(phase: &str, start_s: f64, end_s: f64, from_rps: f64, to_rps: f64) -> Segment {
        Segment { phase: phase.into(), start_s, end_s, from_rps, to_rps }
    }

    #[test]
    fn rates_interpolate_within_segments_and_phases_are_named() {
        let s = RateSchedule::new(vec![
            seg("baseline", 0.0, 100.0, 10.0, 10.0),
            seg("ramp-up", 100.0, 160.0, 10.0, 40.0),
            seg("surge", 160.0, 300.0, 40.0, 40.0),
        ])
        .unwrap();
        assert_eq!(s.rate_at(50.0), 10.0);
        assert!((s.rate_at(130.0) - 25.0).abs() < 1e-9);
        assert_eq!(s.rate_at(299.0), 40.0);
        assert_eq!(s.rate_at(300.0), 0.0);
        assert_eq!(s.phase_at(130.0), Some("ramp-up"));
        assert_eq!(s.phases(), vec!["baseline", "ramp-up", "surge"]);
        assert_eq!(s.peak_rps(), 40.0);
        // 100 s at 10/s + 60 s averaging 25/s + 140 s at 40/s, at time scale 1.
        assert!((s.expected_requests(0.0, 300.0, 1.0) - (1000.0 + 1500.0 + 5600.0)).abs() < 1e-3);
        // At time scale 10 the same scenario span takes a tenth of the wall time.
        assert!((s.expected_requests(0.0, 100.0, 10.0) - 100.0).abs() < 1e-3);
    }

    #[test]
    fn gaps_negative_rates_and_empty_schedules_are_rejected() {
        assert!(RateSchedule::new(vec![]).is_err());
        assert!(RateSchedule::new(vec![seg("a", 0.0, 10.0, 1.0, 1.0), seg("b", 11.0, 20.0, 1.0, 1.0)]).is_err());
        assert!(RateSchedule::new(vec![seg("a", 0.0, 10.0, -1.0, 1.0)]).is_err());
        assert!(RateSchedule::new(vec![seg("a", 5.0, 10.0, 1.0, 1.0)]).is_err());
        assert!(RateSchedule::new(vec![seg("a", 0.0, 0.0, 1.0, 1.0)]).is_err());
        assert!(RateSchedule::new(vec![seg("a", 0.0, 10.0, f64::NAN, 1.0)]).is_err());
    }
}
