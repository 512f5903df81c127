//! The scenario's timeline: when the event is announced, when the surge starts and ends, when
//! the run ends, and the load schedule that follows it.
//!
//! Times are scenario seconds from the start of the run (second 0 is when the baseline load
//! is recorded from). The `default` timeline is the seed scenario of GUIDE section 4: announce
//! at minute 5, surge from minute 20 to minute 80, end at minute 110. The `short` one (for the
//! real-time Prometheus mode) announces at minute 1, surges from minute 4 to 9, ends at 14;
//! its stabilization windows and daemon tick shrink with it, so scale-down fits in the run.

use serde::Serialize;

use crate::load::{LoadError, RateSchedule, Segment};

/// Which timeline a run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TimelineKind {
    /// Announce at minute 5, surge from minute 20 to 80, end at minute 110.
    Default,
    /// Announce at minute 1, surge from minute 4 to 9, end at minute 14.
    Short,
}

/// Phase names of the load schedule, in order.
pub const PHASES: [&str; 6] = ["baseline", "announced", "ramp-up", "surge", "ramp-down", "recovery"];

/// The phases whose requests make up "the surge": the event window `[surge_start, surge_end)`.
pub const SURGE_PHASES: [&str; 2] = ["ramp-up", "surge"];

/// When things happen in a run, in scenario seconds, and the settings that scale with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Which one.
    pub kind: TimelineKind,
    /// When the harness announces the event through the Prediction API.
    pub announce_s: f64,
    /// Start of the event and of the load's ramp up.
    pub surge_start_s: f64,
    /// End of the event and start of the ramp down.
    pub surge_end_s: f64,
    /// End of the run.
    pub end_s: f64,
    /// Length of each ramp (up from, and down to, the baseline).
    pub ramp_s: f64,
    /// The daemon's tick interval.
    pub daemon_tick_s: u64,
    /// Scale-down stabilization window of the daemon and of the HPA.
    pub stabilization_s: u64,
    /// The daemon's time between two scale-downs (its default of 2 min, shortened with the
    /// window on the short timeline: two ticks).
    pub scale_down_cooldown_s: u64,
    /// Replicas must be back at the baseline this long after the surge ends (the check's limit).
    pub scale_down_limit_s: f64,
}

impl Timeline {
    /// The timeline of `kind`.
    pub fn of(kind: TimelineKind) -> Self {
        match kind {
            TimelineKind::Default => Self {
                kind,
                announce_s: 5.0 * 60.0,
                surge_start_s: 20.0 * 60.0,
                surge_end_s: 80.0 * 60.0,
                end_s: 110.0 * 60.0,
                ramp_s: 60.0,
                daemon_tick_s: 30,
                stabilization_s: 300,
                scale_down_cooldown_s: 120,
                scale_down_limit_s: 15.0 * 60.0,
            },
            TimelineKind::Short => Self {
                kind,
                announce_s: 60.0,
                surge_start_s: 4.0 * 60.0,
                surge_end_s: 9.0 * 60.0,
                end_s: 14.0 * 60.0,
                ramp_s: 60.0,
                daemon_tick_s: 15,
                stabilization_s: 60,
                scale_down_cooldown_s: 30,
                scale_down_limit_s: 5.0 * 60.0,
            },
        }
    }

    /// The offered load: `baseline_rps` until the surge, a ramp to `baseline_rps * multiplier`
    /// over [`Timeline::ramp_s`], the surge, a ramp back, and the baseline to the end. Rates are
    /// requests per wall-clock second.
    pub fn schedule(&self, baseline_rps: f64, multiplier: f64) -> Result<RateSchedule, LoadError> {
        let surge_rps = baseline_rps * multiplier;
        let up_end = self.surge_start_s + self.ramp_s;
        let down_end = self.surge_end_s + self.ramp_s;
        let segment = |phase: &str, start_s: f64, end_s: f64, from_rps: f64, to_rps: f64| Segment {
            phase: phase.to_string(),
            start_s,
            end_s,
            from_rps,
            to_rps,
        };
        RateSchedule::new(vec![
            segment(PHASES[0], 0.0, self.announce_s, baseline_rps, baseline_rps),
            segment(PHASES[1], self.announce_s, self.surge_start_s, baseline_rps, baseline_rps),
            segment(PHASES[2], self.surge_start_s, up_end, baseline_rps, surge_rps),
            segment(PHASES[3], up_end, self.surge_end_s, surge_rps, surge_rps),
            segment(PHASES[4], self.surge_end_s, down_end, surge_rps, baseline_rps),
            segment(PHASES[5], down_end, self.end_s, baseline_rps, baseline_rps),
        ])
    }

    /// The phase at `t_s`.
    pub fn phase_at(&self, t_s: f64) -> &'static str {
        if t_s < self.announce_s {
            PHASES[0]
        } else if t_s < self.surge_start_s {
            PHASES[1]
        } else if t_s < self.surge_start_s + self.ramp_s {
            PHASES[2]
        } else if t_s < self.surge_end_s {
            PHASES[3]
        } else if t_s < self.surge_end_s + self.ramp_s {
            PHASES[4]
        } else {
            PHASES[5]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timeline_follows_the_seed_scenario() {
        let t = Timeline::of(TimelineKind::Default);
        let s = t.schedule(100.0, 4.0).unwrap();
        assert_eq!(s.end_s(), 6600.0);
        assert_eq!(s.rate_at(299.0), 100.0);
        assert_eq!(s.rate_at(1199.0), 100.0);
        assert!((s.rate_at(1230.0) - 250.0).abs() < 1e-9, "half way up the ramp");
        assert_eq!(s.rate_at(1260.0), 400.0);
        assert_eq!(s.rate_at(4799.0), 400.0);
        assert_eq!(s.rate_at(4900.0), 100.0);
        assert_eq!(s.phases(), PHASES.to_vec());
        for (t_s, phase) in [(0.0, "baseline"), (300.0, "announced"), (1200.0, "ramp-up"), (4860.0, "recovery")] {
            assert_eq!(t.phase_at(t_s), phase);
            assert_eq!(s.phase_at(t_s), Some(phase));
        }
    }

    #[test]
    fn short_timeline_fits_scale_down_in_the_run() {
        let t = Timeline::of(TimelineKind::Short);
        assert_eq!((t.announce_s, t.surge_start_s, t.surge_end_s, t.end_s), (60.0, 240.0, 540.0, 840.0));
        assert!(t.surge_end_s + t.scale_down_limit_s <= t.end_s);
        assert!(t.schedule(10.0, 4.0).is_ok());
    }
}
