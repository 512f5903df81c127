//! The scenario's report: `report.json` (the fields below, exactly), the verdict and its checks,
//! `report.md` (the eight steps of the seed scenario with their measurements) and the
//! side-by-side table printed on the terminal.

use std::fmt::Write as _;

use serde::Serialize;

use super::timeline::Timeline;

/// Latency statistics of the surge's successful requests, ms; null when none succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Mean and maximum of a utilization (0..1) over the surge; null without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MeanMax {
    /// Mean.
    pub mean: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

/// What the LLM predictor used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LlmUsage {
    /// Predictor steps that asked the LLM (answered or fallen back).
    pub calls: u64,
    /// Steps answered by the fallback predictor.
    pub fallbacks: u64,
    /// Prompt tokens sent to the LLM.
    pub prompt_tokens: u64,
}

/// One row of a run's timeline: one 10-second window of scenario time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Window start, scenario seconds.
    pub t_s: f64,
    /// Requests sent in the window, per wall second.
    pub offered_rps: f64,
    /// The daemon's median forecast for this moment, per wall second (null without a daemon).
    pub predicted_rps: Option<f64>,
    /// The Deployment's `spec.replicas` at the window start.
    pub desired: u32,
    /// Ready pods at the window start.
    pub ready: u32,
    /// p95 latency of the window's successful requests, ms (null when none succeeded).
    pub p95_ms: Option<f64>,
    /// Requests of the window that failed (5xx, other statuses, timeouts, connection errors).
    pub errors: u64,
    /// Mean CPU utilization of the Ready pods (0..1) at the window start.
    pub cpu: Option<f64>,
}

/// One policy's run. Times are scenario seconds from the start; null = never happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// `prescale`, `hpa` or `prescale-floor`.
    pub policy: String,
    /// The daemon's configured predictor (`statistical+events`, `llm:<model>`); null for `hpa`.
    pub predictor: Option<String>,
    /// When the Prediction API accepted the announced event.
    pub trigger_s: Option<f64>,
    /// Start of the event and of the load's ramp.
    pub surge_start_s: f64,
    /// End of the event and start of the ramp down.
    pub surge_end_s: f64,
    /// First rise of the desired replicas above the baseline after the trigger.
    pub scale_up_started_s: Option<f64>,
    /// First time Ready replicas could serve the surge's peak at 100% of pod capacity.
    pub scale_up_ready_s: Option<f64>,
    /// `surge_start_s - scale_up_ready_s`; positive = ready before the surge.
    pub lead_s: Option<f64>,
    /// Desired replicas just before the trigger.
    pub baseline_replicas: u32,
    /// Most desired replicas.
    pub peak_replicas: u32,
    /// Desired replicas at the end.
    pub final_replicas: u32,
    /// First fall of the desired replicas after the surge ended.
    pub scale_down_started_s: Option<f64>,
    /// First time after the surge the desired replicas were back at the baseline.
    pub scale_down_done_s: Option<f64>,
    /// Latency of the surge's successful requests.
    pub surge_latency_ms: LatencyStats,
    /// Failed requests of the surge over its completed ones.
    pub surge_error_rate: f64,
    /// Requests sent in the run.
    pub requests: u64,
    /// Seconds whose 10-second window had p95 above the SLO or an error rate above 1%.
    pub slo_violation_s: f64,
    /// Desired replicas integrated over the run.
    pub replica_seconds: f64,
    /// CPU utilization of the Ready pods during the surge.
    pub cpu_utilization: MeanMax,
    /// Memory use relative to the request, Ready pods, during the surge.
    pub memory_utilization: MeanMax,
    /// LLM usage; null without the LLM predictor.
    pub llm: Option<LlmUsage>,
    /// One row per 10 scenario seconds.
    pub timeline: Vec<TimelineRow>,
}

/// One check of the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `<policy>: <what>`.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The measured value against the limit.
    pub detail: String,
}

/// Whether prescale did its job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every check passed.
    pub passed: bool,
    /// The checks of every prescale run (`prescale`, `prescale-floor`).
    pub checks: Vec<Check>,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// One per policy, in the order run.
    pub runs: Vec<RunReport>,
    /// The checks.
    pub verdict: Verdict,
}

/// The limits the checks hold runs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckLimits {
    /// Least lead, scenario seconds.
    pub min_lead_s: f64,
    /// Highest surge p95, ms.
    pub slo_p95_ms: f64,
    /// Highest surge error rate.
    pub max_error_rate: f64,
    /// Longest time from the surge's end to replicas back at the baseline.
    pub scale_down_limit_s: f64,
}

/// Policies whose runs the verdict checks: the ones prescale acts in.
pub fn is_checked(policy: &str) -> bool {
    policy.starts_with("prescale")
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |v| format!("{v:.0} s"))
}

/// The default checks of one run.
pub fn checks(run: &RunReport, limits: &CheckLimits) -> Vec<Check> {
    let name = |what: &str| format!("{}: {what}", run.policy);
    let lead = Check {
        name: name(&format!("lead_s >= {:.0}", limits.min_lead_s)),
        passed: run.lead_s.is_some_and(|l| l >= limits.min_lead_s),
        detail: match (run.lead_s, run.scale_up_ready_s) {
            (Some(l), Some(r)) => format!("lead {l:.0} s: ready at {r:.0} s, surge at {:.0} s", run.surge_start_s),
            _ => "Ready replicas never reached what the surge's peak needs".to_string(),
        },
    };
    let p95 = run.surge_latency_ms.p95;
    let latency = Check {
        name: name(&format!("surge p95 <= {:.0} ms", limits.slo_p95_ms)),
        passed: p95.is_some_and(|p| p <= limits.slo_p95_ms),
        detail: format!("surge p95 {}", ms(p95)),
    };
    let errors = Check {
        name: name(&format!("surge error rate <= {:.0}%", limits.max_error_rate * 100.0)),
        passed: run.surge_error_rate <= limits.max_error_rate,
        detail: format!("{:.2}% of the surge's requests failed", run.surge_error_rate * 100.0),
    };
    let back = run.scale_down_done_s.map(|d| d - run.surge_end_s);
    let scale_down = Check {
        name: name(&format!("back to baseline within {:.0} min", limits.scale_down_limit_s / 60.0)),
        passed: back.is_some_and(|b| b <= limits.scale_down_limit_s),
        detail: match back {
            Some(b) => format!("{} replicas again {b:.0} s after the surge ended", run.baseline_replicas),
            None => format!("never back to {} replicas", run.baseline_replicas),
        },
    };
    vec![lead, latency, errors, scale_down]
}

/// The verdict over every checked run.
pub fn verdict(runs: &[RunReport], limits: &CheckLimits) -> Verdict {
    let checks: Vec<Check> = runs.iter().filter(|r| is_checked(&r.policy)).flat_map(|r| checks(r, limits)).collect();
    Verdict { passed: checks.iter().all(|c| c.passed), checks }
}

/// What the markdown report says besides the JSON fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunNotes {
    /// Mean CPU and memory utilization of the Ready pods before the trigger.
    pub baseline_cpu: Option<f64>,
    /// Mean memory utilization before the trigger.
    pub baseline_memory: Option<f64>,
    /// Ready replicas just before the trigger.
    pub baseline_ready: u32,
    /// The HPA's own floor, when there is an HPA.
    pub original_floor: Option<u32>,
    /// When prescale first raised the HPA's floor, and to how much at most.
    pub floor_raised: Option<(f64, u32)>,
    /// When the raised floor was back at the original.
    pub floor_restored_s: Option<f64>,
    /// Replicas the surge's peak needs at 100% of pod capacity.
    pub needed_replicas: u32,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
    /// Largest delay of a request behind its schedule (the generator keeping up).
    pub max_send_lag_ms: f64,
    /// Problems seen during the run (a failed announcement, late samples, a lagging load).
    pub problems: Vec<String>,
    /// Errors the daemon reported for the workload, each the first time it was seen, with the
    /// scenario second it was seen at.
    pub daemon_errors: Vec<(f64, String)>,
}

/// The scenario's settings, for the report's header.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// Timeline.
    pub timeline: Timeline,
    /// Scenario seconds per wall second.
    pub time_scale: f64,
    /// Baseline load, requests per wall second.
    pub baseline_rps: f64,
    /// Surge multiplier.
    pub surge_multiplier: f64,
    /// One pod: workers, service time (ms), capacity (rps), queue.
    pub pod: (u32, f64, f64, u32),
    /// Pod startup delay and jitter, scenario seconds.
    pub startup: (f64, f64),
    /// Where the daemon read metrics from.
    pub metrics_source: String,
    /// Limits of the checks.
    pub limits: CheckLimits,
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.0}%", v * 100.0))
}

/// A row of the side-by-side table: its label and how a run's cell reads.
type Row<'a> = (&'static str, Box<dyn Fn(&RunReport) -> String + 'a>);

/// The side-by-side table of the runs (plain text, fixed width).
pub fn table(runs: &[RunReport], verdict: &Verdict) -> String {
    let rows: Vec<Row<'_>> = vec![
        ("predictor", Box::new(|r| r.predictor.clone().unwrap_or_else(|| "-".into()))),
        ("trigger (s)", Box::new(|r| opt_s(r.trigger_s))),
        ("scale-up started (s)", Box::new(|r| opt_s(r.scale_up_started_s))),
        ("scale-up ready (s)", Box::new(|r| opt_s(r.scale_up_ready_s))),
        ("lead before surge (s)", Box::new(|r| opt_s(r.lead_s))),
        (
            "replicas base/peak/final",
            Box::new(|r| format!("{}/{}/{}", r.baseline_replicas, r.peak_replicas, r.final_replicas)),
        ),
        ("surge latency mean (ms)", Box::new(|r| opt_s(r.surge_latency_ms.mean))),
        ("surge latency p95 (ms)", Box::new(|r| opt_s(r.surge_latency_ms.p95))),
        ("surge latency p99 (ms)", Box::new(|r| opt_s(r.surge_latency_ms.p99))),
        ("surge error rate", Box::new(|r| format!("{:.2}%", r.surge_error_rate * 100.0))),
        ("SLO violation (s)", Box::new(|r| format!("{:.0}", r.slo_violation_s))),
        ("requests", Box::new(|r| r.requests.to_string())),
        ("replica-seconds", Box::new(|r| format!("{:.0}", r.replica_seconds))),
        ("surge CPU mean/max", Box::new(|r| format!("{}/{}", pct(r.cpu_utilization.mean), pct(r.cpu_utilization.max)))),
        (
            "surge memory mean/max",
            Box::new(|r| format!("{}/{}", pct(r.memory_utilization.mean), pct(r.memory_utilization.max))),
        ),
        ("scale-down started (s)", Box::new(|r| opt_s(r.scale_down_started_s))),
        ("back to baseline (s)", Box::new(|r| opt_s(r.scale_down_done_s))),
        (
            "checks",
            Box::new(|r| {
                if !is_checked(&r.policy) {
                    return "-".to_string();
                }
                let prefix = format!("{}: ", r.policy);
                let mine: Vec<&Check> = verdict.checks.iter().filter(|c| c.name.starts_with(&prefix)).collect();
                let passed = mine.iter().filter(|c| c.passed).count();
                format!("{passed}/{} passed", mine.len())
            }),
        ),
    ];
    let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let cells: Vec<Vec<String>> = runs.iter().map(|r| rows.iter().map(|(_, f)| f(r)).collect()).collect();
    let widths: Vec<usize> = runs
        .iter()
        .zip(&cells)
        .map(|(r, c)| c.iter().map(String::len).chain([r.policy.len()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_width$}", "");
    for (r, w) in runs.iter().zip(&widths) {
        let _ = write!(out, "  {:>w$}", r.policy);
    }
    out.push('\n');
    for (i, (label, _)) in rows.iter().enumerate() {
        let _ = write!(out, "{label:label_width$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", c[i]);
        }
        out.push('\n');
    }
    out
}

/// `report.md`: settings, the eight steps per run, the side-by-side table, the verdict.
pub fn markdown(report: &ScenarioReport, notes: &[RunNotes], settings: &ReportSettings) -> String {
    let t = &settings.timeline;
    let mut md = String::new();
    let _ = writeln!(md, "# prescale seed scenario\n");
    let _ = writeln!(
        md,
        "Verdict: **{}** ({} of {} checks passed).\n",
        if report.verdict.passed { "passed" } else { "FAILED" },
        report.verdict.checks.iter().filter(|c| c.passed).count(),
        report.verdict.checks.len()
    );
    let _ = writeln!(md, "## Settings\n");
    let (workers, service_ms, capacity, queue) = settings.pod;
    let _ = writeln!(
        md,
        "- Timeline `{:?}`: event announced at {:.0} s, surge from {:.0} s to {:.0} s (ramps of {:.0} s), end at {:.0} s; \
         times are scenario seconds at time scale {} (scenario seconds per wall second).",
        t.kind, t.announce_s, t.surge_start_s, t.surge_end_s, t.ramp_s, t.end_s, settings.time_scale
    );
    let _ = writeln!(
        md,
        "- Load: {:.0} requests per wall second at baseline, x{} in the surge (request rates are not time-scaled); \
         open loop, latency from each request's intended send time.",
        settings.baseline_rps, settings.surge_multiplier
    );
    let _ = writeln!(
        md,
        "- Pods: {workers} workers x {service_ms:.0} ms per request = {capacity:.0} requests/s at 100%, queue {queue}; \
         startup {:.0} s +- {:.0} s.",
        settings.startup.0, settings.startup.1
    );
    let _ = writeln!(md, "- Daemon metrics source: {}.", settings.metrics_source);
    let _ = writeln!(
        md,
        "- SLO: p95 <= {:.0} ms and errors <= {:.0}% per 10-second window.\n",
        settings.limits.slo_p95_ms,
        settings.limits.max_error_rate * 100.0
    );
    let _ = writeln!(md, "## Side by side\n\n```text\n{}```\n", table(&report.runs, &report.verdict));
    for (run, note) in report.runs.iter().zip(notes) {
        let _ = writeln!(md, "## Policy `{}`\n", run.policy);
        let predictor = run.predictor.as_deref().unwrap_or("none (no daemon)");
        let _ = writeln!(
            md,
            "1. **Setup**: `shop-frontend` Deployment on a fresh embedded cluster; predictor: {predictor}."
        );
        let _ = writeln!(
            md,
            "2. **Baseline**: {} replicas desired, {} Ready; CPU {} and memory {} of request.",
            run.baseline_replicas,
            note.baseline_ready,
            pct(note.baseline_cpu),
            pct(note.baseline_memory)
        );
        let _ = writeln!(
            md,
            "3. **Trigger**: {}",
            match run.trigger_s {
                Some(s) => format!("event `spring-campaign` accepted by the Prediction API at {s:.0} s."),
                None => "no daemon: the announcement reaches nobody.".to_string(),
            }
        );
        let ready = run.scale_up_ready_s.map(|r| match run.trigger_s {
            Some(tr) => format!("{r:.0} s ({:.0} s after the trigger)", r - tr),
            None => format!("{r:.0} s"),
        });
        let _ = writeln!(
            md,
            "4. **Proactive scaling**: scale-up started at {}; {} Ready replicas (the peak's need at 100%) at {}; lead {}.",
            secs(run.scale_up_started_s),
            note.needed_replicas,
            ready.unwrap_or_else(|| "never".into()),
            run.lead_s.map_or_else(|| "-".into(), |l| format!("{l:.0} s"))
        );
        let _ = writeln!(
            md,
            "5. **Surge**: {:.0} -> {:.0} requests/s from {:.0} s; peak {} replicas.",
            settings.baseline_rps,
            settings.baseline_rps * settings.surge_multiplier,
            run.surge_start_s,
            run.peak_replicas
        );
        let _ = writeln!(
            md,
            "6. **Monitor** (surge): latency mean {}, p50 {}, p95 {}, p99 {}; errors {:.2}%; SLO violated {:.0} s; \
             CPU mean {} max {}; memory mean {} max {}.",
            ms(run.surge_latency_ms.mean),
            ms(run.surge_latency_ms.p50),
            ms(run.surge_latency_ms.p95),
            ms(run.surge_latency_ms.p99),
            run.surge_error_rate * 100.0,
            run.slo_violation_s,
            pct(run.cpu_utilization.mean),
            pct(run.cpu_utilization.max),
            pct(run.memory_utilization.mean),
            pct(run.memory_utilization.max)
        );
        let _ = writeln!(md, "7. **End of surge** at {:.0} s.", run.surge_end_s);
        let rel = |v: Option<f64>| {
            v.map_or_else(|| "never".into(), |v| format!("{v:.0} s ({:+.0} s after the end)", v - run.surge_end_s))
        };
        let _ = writeln!(
            md,
            "8. **Scale-down**: started {}; back to {} replicas {}; {} at the end.",
            rel(run.scale_down_started_s),
            run.baseline_replicas,
            rel(run.scale_down_done_s),
            run.final_replicas
        );
        if let Some(original) = note.original_floor {
            let floor = match note.floor_raised {
                Some((at, to)) => {
                    format!("raised at {at:.0} s (up to {to}); back at {original} at {}", secs(note.floor_restored_s))
                }
                None => "never raised".to_string(),
            };
            let _ = writeln!(md, "\nHPA floor: the user's `minReplicas` is {original}; {floor}.");
        }
        if let Some(llm) = &run.llm {
            let _ = writeln!(
                md,
                "\nLLM: {} calls, {} fallbacks, {} prompt tokens.",
                llm.calls, llm.fallbacks, llm.prompt_tokens
            );
        }
        let _ = writeln!(
            md,
            "\nRun took {:.0} s of wall time; requests left at most {:.1} ms behind schedule.",
            note.wall_s, note.max_send_lag_ms
        );
        for p in &note.problems {
            let _ = writeln!(md, "- problem: {p}");
        }
        for (t_s, e) in &note.daemon_errors {
            let _ = writeln!(md, "- the daemon reported at {t_s:.0} s: {e}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Checks\n");
    for c in &report.verdict.checks {
        let _ = writeln!(md, "- [{}] {}: {}", if c.passed { "x" } else { " " }, c.name, c.detail);
    }
    let _ = writeln!(md, "\nCharts: `report.svg`. Every number: `report.json`.");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &str, lead: Option<f64>, p95: f64, errors: f64, done: Option<f64>) -> RunReport {
        RunReport {
            policy: policy.into(),
            predictor: None,
            trigger_s: Some(300.0),
            surge_start_s: 1200.0,
            surge_end_s: 4800.0,
            scale_up_started_s: Some(1080.0),
            scale_up_ready_s: lead.map(|l| 1200.0 - l),
            lead_s: lead,
            baseline_replicas: 3,
            peak_replicas: 11,
            final_replicas: 3,
            scale_down_started_s: Some(5100.0),
            scale_down_done_s: done,
            surge_latency_ms: LatencyStats { mean: Some(60.0), p50: Some(55.0), p95: Some(p95), p99: Some(p95 * 1.2) },
            surge_error_rate: errors,
            requests: 1000,
            slo_violation_s: 0.0,
            replica_seconds: 1.0,
            cpu_utilization: MeanMax::default(),
            memory_utilization: MeanMax::default(),
            llm: None,
            timeline: vec![],
        }
    }

    fn limits() -> CheckLimits {
        CheckLimits { min_lead_s: 60.0, slo_p95_ms: 250.0, max_error_rate: 0.01, scale_down_limit_s: 900.0 }
    }

    #[test]
    fn every_default_check_can_fail() {
        let good = run("prescale", Some(75.0), 90.0, 0.0, Some(5400.0));
        assert!(checks(&good, &limits()).iter().all(|c| c.passed));
        let bad = run("prescale", Some(30.0), 900.0, 0.2, Some(6000.0));
        let c = checks(&bad, &limits());
        assert!(c.iter().all(|c| !c.passed), "{c:?}");
        let never = run("prescale", None, 90.0, 0.0, None);
        let c = checks(&never, &limits());
        assert!(!c[0].passed && c[0].detail.contains("never"));
        assert!(!c[3].passed && c[3].detail.contains("never"));
    }

    #[test]
    fn the_verdict_checks_prescale_runs_only() {
        let runs = vec![
            run("prescale", Some(75.0), 90.0, 0.0, Some(5400.0)),
            run("hpa", None, 1500.0, 0.3, Some(5000.0)),
            run("prescale-floor", Some(70.0), 95.0, 0.0, Some(5500.0)),
        ];
        let v = verdict(&runs, &limits());
        assert!(v.passed);
        assert_eq!(v.checks.len(), 8);
        assert!(v.checks.iter().all(|c| !c.name.starts_with("hpa")));
        let text = table(&runs, &v);
        assert!(text.lines().next().unwrap().contains("prescale-floor"));
        assert!(text.contains("4/4 passed"));
        let json = serde_json::to_value(ScenarioReport { runs, verdict: v }).unwrap();
        assert_eq!(json["verdict"]["passed"], true);
        assert_eq!(json["runs"][1]["policy"], "hpa");
    }
}
