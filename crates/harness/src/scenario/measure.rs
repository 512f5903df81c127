//! From what a run recorded (replica and resource samples, the load's windows and phases, the
//! daemon's forecasts) to the measurements of the report. Pure functions, no IO.
//!
//! Definitions (all times in scenario seconds from the start of the run):
//! - `scale_up_started_s`: first moment at or after the trigger (or the surge start, without
//!   a trigger) when the desired replicas exceed the baseline.
//! - `scale_up_ready_s`: first moment when Ready replicas reach the replicas needed to serve
//!   the surge's peak offered load at 100% of pod capacity.
//! - `lead_s = surge_start_s - scale_up_ready_s`: positive means ready before the surge.
//! - `baseline_replicas`: desired replicas just before the trigger (or the surge start).
//! - `scale_down_started_s`: first moment after the surge ends when the desired replicas fall
//!   below what they were when it ended; `scale_down_done_s`: first moment after the surge
//!   ends when they are back at (or below) the baseline.
//! - `slo_violation_s`: seconds of the run whose 10-second window had a p95 above the SLO or
//!   an error rate above 1%.

use crate::load::{Tally, WindowTally};

use super::report::{LatencyStats, MeanMax, RunReport, TimelineRow};
use super::timeline::{SURGE_PHASES, Timeline};

/// Error rate above which a window violates the SLO.
pub const SLO_ERROR_RATE: f64 = 0.01;

/// The cluster as seen at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Scenario seconds.
    pub t_s: f64,
    /// The Deployment's `spec.replicas`.
    pub desired: u32,
    /// Pods Ready and in the Service.
    pub ready: u32,
    /// The HPA's `spec.minReplicas`, when there is an HPA.
    pub hpa_floor: Option<u32>,
    /// Mean CPU utilization of the Ready pods (0..1), when any is Ready.
    pub cpu: Option<f64>,
    /// Mean memory use of the Ready pods relative to their request (0..1), when any is Ready.
    pub memory: Option<f64>,
}

/// One forecast read from the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSnapshot {
    /// When it was read, scenario seconds.
    pub t_s: f64,
    /// Step length, scenario seconds.
    pub step_s: f64,
    /// Per step: its start (scenario seconds) and median, in requests per wall second.
    pub steps: Vec<(f64, f64)>,
}

impl ForecastSnapshot {
    /// The median for the step containing `t_s`, if the forecast covers it.
    pub fn at(&self, t_s: f64) -> Option<f64> {
        self.steps.iter().find(|(start, _)| t_s >= *start && t_s < start + self.step_s).map(|(_, p50)| *p50)
    }
}

/// Everything one policy's run recorded.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Policy name.
    pub policy: String,
    /// Predictor label, when a daemon ran.
    pub predictor: Option<String>,
    /// When the event was accepted by the Prediction API.
    pub trigger_s: Option<f64>,
    /// Cluster samples, in time order.
    pub samples: Vec<Sample>,
    /// The load's 10-second windows.
    pub windows: Vec<WindowTally>,
    /// The load's tallies per phase.
    pub phases: std::collections::BTreeMap<String, Tally>,
    /// The load's total.
    pub total: Tally,
    /// Forecasts read from the daemon, in time order.
    pub forecasts: Vec<ForecastSnapshot>,
    /// LLM usage, when the LLM predictor ran.
    pub llm: Option<super::report::LlmUsage>,
}

/// How a run is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureSettings {
    /// Scenario seconds per wall second.
    pub time_scale: f64,
    /// One pod's capacity at 100%, requests per wall second.
    pub capacity_rps: f64,
    /// The surge's peak offered load, requests per wall second.
    pub peak_rps: f64,
    /// The SLO on p95 latency, ms.
    pub slo_p95_ms: f64,
}

/// Replicas needed to serve `peak_rps` at 100% of `capacity_rps` per pod.
pub fn replicas_needed(peak_rps: f64, capacity_rps: f64) -> u32 {
    if capacity_rps <= 0.0 || !peak_rps.is_finite() {
        return u32::MAX;
    }
    // A hair of tolerance so 400 / 40 is 10, not 11.
    (peak_rps / capacity_rps - 1e-9).ceil().max(1.0) as u32
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The last sample at or before `t_s` (the first one when none is).
fn sample_at(samples: &[Sample], t_s: f64) -> Option<&Sample> {
    let i = samples.partition_point(|s| s.t_s <= t_s);
    if i == 0 { samples.first() } else { samples.get(i - 1) }
}

fn latency_stats(tally: &Tally) -> LatencyStats {
    let s = tally.summary();
    let some = |v: f64| (s.count > 0).then(|| round1(v));
    LatencyStats { mean: some(s.mean), p50: some(s.p50), p95: some(s.p95), p99: some(s.p99) }
}

/// The requests of the surge's phases together.
fn surge_tally(phases: &std::collections::BTreeMap<String, Tally>) -> Option<Tally> {
    let mut surge = Tally::new().ok()?;
    for phase in SURGE_PHASES {
        if let Some(t) = phases.get(phase) {
            surge.merge(t).ok()?;
        }
    }
    Some(surge)
}

fn mean_max(values: impl Iterator<Item = f64>) -> MeanMax {
    let (mut n, mut sum, mut max) = (0usize, 0.0, f64::NEG_INFINITY);
    for v in values {
        n += 1;
        sum += v;
        max = max.max(v);
    }
    if n == 0 {
        MeanMax { mean: None, max: None }
    } else {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        MeanMax { mean: Some(r(sum / n as f64)), max: Some(r(max)) }
    }
}

/// Whether a window violates the SLO.
pub fn window_violates(tally: &Tally, slo_p95_ms: f64) -> bool {
    let p95_bad = tally.ok > 0 && tally.summary().p95 > slo_p95_ms;
    p95_bad || tally.error_rate() > SLO_ERROR_RATE
}

/// Measure one run.
pub fn measure(record: &RunRecord, timeline: &Timeline, settings: &MeasureSettings) -> RunReport {
    let samples = &record.samples;
    let needed = replicas_needed(settings.peak_rps, settings.capacity_rps);
    let reference_s = record.trigger_s.unwrap_or(timeline.surge_start_s).min(timeline.surge_start_s);
    // Just before the trigger: what the policy ran the baseline with.
    let baseline_replicas = sample_at(samples, reference_s - 1e-6).map_or(0, |s| s.desired);
    let scale_up_started_s =
        samples.iter().find(|s| s.t_s >= reference_s && s.desired > baseline_replicas).map(|s| round1(s.t_s));
    let scale_up_ready_s = samples.iter().find(|s| s.ready >= needed).map(|s| round1(s.t_s));
    let lead_s = scale_up_ready_s.map(|r| round1(timeline.surge_start_s - r));
    let peak_replicas = samples.iter().map(|s| s.desired).max().unwrap_or(0);
    let final_replicas = samples.last().map_or(0, |s| s.desired);
    let at_end = sample_at(samples, timeline.surge_end_s).map_or(0, |s| s.desired);
    let after_end = || samples.iter().filter(|s| s.t_s >= timeline.surge_end_s);
    let scale_down_started_s = after_end().find(|s| s.desired < at_end).map(|s| round1(s.t_s));
    let scale_down_done_s = after_end().find(|s| s.desired <= baseline_replicas).map(|s| round1(s.t_s));

    let surge = surge_tally(&record.phases);
    let window_s = 10.0;
    let slo_violation_s =
        record.windows.iter().filter(|w| window_violates(&w.tally, settings.slo_p95_ms)).count() as f64 * window_s;

    // Replica-seconds: desired replicas integrated over the run.
    let mut replica_seconds = 0.0;
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let from = a.t_s.max(0.0);
        let to = b.t_s.min(timeline.end_s);
        if to > from {
            replica_seconds += f64::from(a.desired) * (to - from);
        }
    }
    if let Some(last) = samples.last()
        && last.t_s < timeline.end_s
    {
        replica_seconds += f64::from(last.desired) * (timeline.end_s - last.t_s.max(0.0));
    }

    let in_surge = |s: &&Sample| s.t_s >= timeline.surge_start_s && s.t_s < timeline.surge_end_s;
    let cpu_utilization = mean_max(samples.iter().filter(in_surge).filter_map(|s| s.cpu));
    let memory_utilization = mean_max(samples.iter().filter(in_surge).filter_map(|s| s.memory));

    let rows = (timeline.end_s / window_s).ceil() as usize;
    let wall_window = window_s / settings.time_scale;
    let mut timeline_rows = Vec::with_capacity(rows);
    for k in 0..rows {
        let t_s = k as f64 * window_s;
        let window = record.windows.iter().find(|w| (w.start_s - t_s).abs() < 1e-6);
        let sample = sample_at(samples, t_s);
        let predicted = record
            .forecasts
            .iter()
            .rev()
            .find(|f| f.t_s <= t_s)
            .or_else(|| record.forecasts.first().filter(|f| f.t_s <= t_s + window_s))
            .and_then(|f| f.at(t_s));
        timeline_rows.push(TimelineRow {
            t_s,
            offered_rps: window.map_or(0.0, |w| round1(w.tally.sent as f64 / wall_window)),
            predicted_rps: predicted.map(round1),
            desired: sample.map_or(0, |s| s.desired),
            ready: sample.map_or(0, |s| s.ready),
            p95_ms: window.filter(|w| w.tally.ok > 0).map(|w| round1(w.tally.summary().p95)),
            errors: window.map_or(0, |w| w.tally.errors()),
            cpu: sample.and_then(|s| s.cpu).map(|c| (c * 1000.0).round() / 1000.0),
        });
    }

    RunReport {
        policy: record.policy.clone(),
        predictor: record.predictor.clone(),
        trigger_s: record.trigger_s.map(round1),
        surge_start_s: timeline.surge_start_s,
        surge_end_s: timeline.surge_end_s,
        scale_up_started_s,
        scale_up_ready_s,
        lead_s,
        baseline_replicas,
        peak_replicas,
        final_replicas,
        scale_down_started_s,
        scale_down_done_s,
        surge_latency_ms: surge.as_ref().map(latency_stats).unwrap_or_default(),
        surge_error_rate: surge.as_ref().map_or(0.0, |s| (s.error_rate() * 1e5).round() / 1e5),
        requests: record.total.sent,
        slo_violation_s,
        replica_seconds: replica_seconds.round(),
        cpu_utilization,
        memory_utilization,
        llm: record.llm,
        timeline: timeline_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Outcome;
    use crate::load::Recorder;
    use crate::scenario::timeline::TimelineKind;
    use std::time::Duration;

    fn sample(t_s: f64, desired: u32, ready: u32) -> Sample {
        Sample { t_s, desired, ready, hpa_floor: None, cpu: Some(0.5), memory: Some(0.3) }
    }

    fn record(samples: Vec<Sample>, recorder: &Recorder, trigger_s: Option<f64>) -> RunRecord {
        RunRecord {
            policy: "prescale".into(),
            predictor: Some("statistical+events".into()),
            trigger_s,
            samples,
            windows: recorder.windows(),
            phases: recorder.phases(),
            total: recorder.total(),
            forecasts: vec![ForecastSnapshot { t_s: 0.0, step_s: 60.0, steps: vec![(0.0, 100.0), (60.0, 110.0)] }],
            llm: None,
        }
    }

    fn settings() -> MeasureSettings {
        MeasureSettings { time_scale: 60.0, capacity_rps: 60.0, peak_rps: 400.0, slo_p95_ms: 250.0 }
    }

    #[test]
    fn replicas_needed_rounds_up_at_full_capacity() {
        assert_eq!(replicas_needed(400.0, 60.0), 7);
        assert_eq!(replicas_needed(400.0, 40.0), 10);
        assert_eq!(replicas_needed(0.0, 40.0), 1);
    }

    #[test]
    fn scale_up_lead_and_scale_down_follow_the_definitions() {
        let t = Timeline::of(TimelineKind::Default);
        let samples = vec![
            sample(0.0, 3, 3),
            sample(290.0, 3, 3),
            sample(1080.0, 11, 3),
            sample(1120.0, 11, 6),
            sample(1130.0, 11, 7),
            sample(1150.0, 11, 11),
            sample(4800.0, 11, 11),
            sample(5100.0, 8, 8),
            sample(5400.0, 3, 3),
            sample(6590.0, 3, 3),
        ];
        let recorder = Recorder::new(10.0).unwrap();
        let r = measure(&record(samples, &recorder, Some(300.2)), &t, &settings());
        assert_eq!(r.baseline_replicas, 3);
        assert_eq!(r.trigger_s, Some(300.2));
        assert_eq!(r.scale_up_started_s, Some(1080.0));
        assert_eq!(r.scale_up_ready_s, Some(1130.0), "7 pods serve 400 rps at 60 rps each");
        assert_eq!(r.lead_s, Some(70.0));
        assert_eq!((r.peak_replicas, r.final_replicas), (11, 3));
        assert_eq!(r.scale_down_started_s, Some(5100.0));
        assert_eq!(r.scale_down_done_s, Some(5400.0));
        // 3 pods until 1080 s, 11 until 5100 s, 8 until 5400 s, then 3 to the end.
        let expected = 3.0 * 1080.0 + 11.0 * (5100.0 - 1080.0) + 8.0 * 300.0 + 3.0 * (6600.0 - 5400.0);
        assert_eq!(r.replica_seconds, expected);
        assert_eq!(r.timeline.len(), 660);
        assert_eq!(r.timeline[0].predicted_rps, Some(100.0));
        assert_eq!(r.timeline[6].predicted_rps, Some(110.0));
        assert_eq!(r.timeline[11].predicted_rps, Some(110.0));
        assert_eq!(r.timeline[12].predicted_rps, None, "beyond the forecast");
        assert_eq!((r.timeline[112].desired, r.timeline[112].ready), (11, 6));
    }

    #[test]
    fn moments_that_never_happened_are_null() {
        let t = Timeline::of(TimelineKind::Default);
        let samples = vec![sample(0.0, 3, 3), sample(6590.0, 3, 3)];
        let recorder = Recorder::new(10.0).unwrap();
        let r = measure(&record(samples, &recorder, None), &t, &settings());
        assert_eq!(r.trigger_s, None);
        assert_eq!(r.scale_up_started_s, None);
        assert_eq!(r.scale_up_ready_s, None);
        assert_eq!(r.lead_s, None);
        assert_eq!(r.scale_down_started_s, None);
        assert_eq!(r.surge_latency_ms.p95, None, "no request was answered in the surge");
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["lead_s"].is_null() && json["scale_up_ready_s"].is_null());
    }

    #[test]
    fn slo_violations_count_windows_with_slow_p95_or_errors() {
        let t = Timeline::of(TimelineKind::Default);
        let recorder = Recorder::new(10.0).unwrap();
        // Window 0: fast. Window 1: slow. Window 2: 1 error in 50.
        for i in 0..100 {
            let (t_s, outcome, ms) = match i {
                0..=49 => (1.0, Outcome::Success, 20),
                50..=59 => (11.0, Outcome::Success, 400),
                60..=98 => (21.0, Outcome::Success, 20),
                _ => (21.0, Outcome::Status(503), 1),
            };
            recorder.sent(t_s, "surge", Duration::ZERO).unwrap();
            recorder.completed(t_s, "surge", outcome, Duration::from_millis(ms));
        }
        let r = measure(&record(vec![sample(0.0, 3, 3)], &recorder, None), &t, &settings());
        assert_eq!(r.slo_violation_s, 20.0);
        assert_eq!(r.requests, 100);
        assert!((r.surge_error_rate - 0.01).abs() < 1e-9);
        assert_eq!(r.timeline[2].errors, 1);
        assert!((r.timeline[1].p95_ms.unwrap() - 400.0).abs() < 1.0, "{:?}", r.timeline[1].p95_ms);
        // 50 requests in 10 scenario seconds at 60x: 300 per wall second.
        assert_eq!(r.timeline[0].offered_rps, 300.0);
    }
}
