//! The outcome of a backtest: the same numbers as a terminal table and as JSON.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::score::PolicyScores;

/// A backtest's outcome. JSON: `trace`, `scored`, `settings`, `policies: [{name, ...scores}]`.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    /// The trace's name (its file).
    pub trace: String,
    /// The range that was scored.
    pub scored: ScoredRange,
    /// The settings in force, so that every number can be reproduced.
    pub settings: Settings,
    /// Per policy, its scores, in the order asked for.
    pub policies: Vec<PolicyScores>,
}

/// The part of the trace that was scored (after the warm-up).
#[derive(Debug, Clone, Serialize)]
pub struct ScoredRange {
    /// First scored step.
    pub from: DateTime<Utc>,
    /// End of the trace (exclusive).
    pub to: DateTime<Utc>,
    /// Scored steps.
    pub steps: usize,
    /// Scored calendar events (whole window inside the range); absent without a calendar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<usize>,
    /// Number of 5-minute buckets the accuracy scores could cover.
    pub accuracy_buckets: usize,
}

/// The simulation's settings as used (capacity resolved to requests per step).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Decision step, seconds.
    pub step_secs: u32,
    /// Requests per step one pod serves at 100% utilization.
    pub capacity_per_pod: f64,
    /// The median demand per step of the warm-up (what `--pods-at-median` sizes from).
    pub warmup_median: Option<f64>,
    /// Target utilization.
    pub target_utilization: f64,
    /// Pod startup time.
    pub startup: String,
    /// Lead on top of the startup for the predictive policies.
    pub safety_buffer: String,
    /// Replica bounds.
    pub min_replicas: u32,
    /// Replica bounds.
    pub max_replicas: u32,
    /// Warm-up (fitting only).
    pub warmup: String,
    /// Refit period.
    pub refit_every: String,
    /// Scale-down stabilization of the predictive policies.
    pub scale_down_stabilization: String,
    /// The LLM model, when `prescale` used one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_model: Option<String>,
}

impl BacktestReport {
    /// One line with the scored range and the settings that shape the numbers.
    fn header(&self) -> String {
        let s = &self.settings;
        format!(
            "{}: scored {} .. {} ({} steps of {} s); capacity {:.1} requests/step/pod; target {:.0}%; startup {}; \
             warm-up {}; refit every {}{}",
            self.trace,
            self.scored.from.format("%Y-%m-%d %H:%M"),
            self.scored.to.format("%Y-%m-%d %H:%M"),
            self.scored.steps,
            s.step_secs,
            s.capacity_per_pod,
            s.target_utilization * 100.0,
            s.startup,
            s.warmup,
            s.refit_every,
            self.scored.events.map_or(String::new(), |n| format!("; {n} events scored")),
        )
    }

    /// The event-capture cell of a policy: `share (captured/scored)`, `-` without.
    fn capture(&self, p: &PolicyScores) -> String {
        match (p.event_capture, p.events_captured, self.scored.events) {
            (Some(share), Some(n), Some(total)) => format!("{share:.2} ({n}/{total})"),
            _ => "-".to_string(),
        }
    }

    /// The report as a Markdown table under its header line (for BENCHMARKS.md).
    pub fn markdown(&self) -> String {
        let mut out = format!("{}\n\n", self.header());
        let with_events = self.scored.events.is_some();
        out.push_str(
            "| policy | underprovisioned min | unserved | replica-min | overprovision ratio | scale events | mae | rel_mae | smape |",
        );
        out.push_str(if with_events { " event capture |\n" } else { "\n" });
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        out.push_str(if with_events { "---:|\n" } else { "\n" });
        for p in &self.policies {
            let _ = write!(
                out,
                "| {} | {:.0} | {:.3}% | {:.0} | {} | {} | {} | {} | {} |",
                p.name,
                p.underprovisioned_minutes,
                p.unserved_fraction * 100.0,
                p.replica_minutes,
                opt(p.overprovision_ratio, 3),
                p.scale_events,
                opt(p.mae, 1),
                opt(p.rel_mae, 3),
                opt(p.smape, 3),
            );
            if with_events {
                let _ = write!(out, " {} |", self.capture(p));
            }
            out.push('\n');
        }
        out
    }

    /// The report as a fixed-width table with a header line.
    pub fn table(&self) -> String {
        let mut out = format!("{}\n", self.header());
        let with_events = self.scored.events.is_some();
        let _ = write!(
            out,
            "{:<15} {:>10} {:>9} {:>12} {:>10} {:>8} {:>10} {:>8} {:>7}",
            "policy", "under-min", "unserved", "replica-min", "over-ratio", "scale-ev", "mae", "rel_mae", "smape"
        );
        if with_events {
            let _ = write!(out, " {:>14}", "event-capture");
        }
        out.push('\n');
        for p in &self.policies {
            let _ = write!(
                out,
                "{:<15} {:>10.0} {:>8.3}% {:>12.0} {:>10} {:>8} {:>10} {:>8} {:>7}",
                p.name,
                p.underprovisioned_minutes,
                p.unserved_fraction * 100.0,
                p.replica_minutes,
                opt(p.overprovision_ratio, 3),
                p.scale_events,
                opt(p.mae, 1),
                opt(p.rel_mae, 3),
                opt(p.smape, 3),
            );
            if with_events {
                let _ = write!(out, " {:>14}", self.capture(p));
            }
            out.push('\n');
        }
        out
    }
}

/// A number with `decimals` decimals, `-` when absent.
fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}
