//! The `scenario` subcommand's arguments and what it prints.

use std::path::PathBuf;
use std::time::Duration;

use prescale_cluster::PodConfig;

use super::ScenarioError;
use super::run::{LlmOptions, Policy, ScenarioOptions, default_pod, run};
use super::timeline::TimelineKind;

/// Run the seed scenario once per policy on the embedded cluster and compare them.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioArgs {
    /// Policies to run, comma-separated, each on a fresh cluster.
    #[arg(long, value_delimiter = ',', default_value = "prescale,hpa")]
    pub policies: Vec<Policy>,
    /// Scenario seconds per wall second (request rates are not scaled) [default: 60, or 1
    /// with --prometheus].
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Timeline [default: default, or short with --prometheus].
    #[arg(long, value_enum)]
    pub timeline: Option<TimelineKind>,
    /// Baseline load, requests per second.
    #[arg(long, default_value_t = 100.0)]
    pub baseline_rps: f64,
    /// Surge load as a multiple of the baseline.
    #[arg(long, default_value_t = 4.0)]
    pub surge_multiplier: f64,
    /// SLO on the surge's p95 latency, ms.
    #[arg(long, default_value_t = 250.0)]
    pub slo_p95_ms: f64,
    /// Where report.json, report.md and report.svg go.
    #[arg(long, default_value = "target/prescale-report")]
    pub report_dir: PathBuf,
    /// Requests a pod serves at once.
    #[arg(long, default_value_t = 3)]
    pub pod_workers: u32,
    /// Time a pod takes per request, ms (real time).
    #[arg(long, default_value_t = 50)]
    pub pod_service_time_ms: u64,
    /// Requests that may wait in a pod's queue; more get 503.
    #[arg(long, default_value_t = 64)]
    pub pod_queue: u32,
    /// Pod startup delay, scenario seconds.
    #[arg(long, default_value_t = 45.0)]
    pub startup_delay_s: f64,
    /// Pod startup jitter (±), scenario seconds.
    #[arg(long, default_value_t = 5.0)]
    pub startup_jitter_s: f64,
    /// OpenAI-compatible endpoint for the daemon's LLM predictor (e.g. http://localhost:11434/v1).
    #[arg(long, requires = "llm_model")]
    pub llm_endpoint: Option<String>,
    /// Model name at --llm-endpoint.
    #[arg(long, requires = "llm_endpoint")]
    pub llm_model: Option<String>,
    /// Environment variable holding the endpoint's API key.
    #[arg(long, requires = "llm_endpoint")]
    pub llm_api_key_env: Option<String>,
    /// Have the daemon read metrics from a real Prometheus scraping the pods (real time).
    #[arg(long)]
    pub prometheus: bool,
    /// The prometheus binary [default: prometheus on PATH, else /usr/bin/prometheus].
    #[arg(long, requires = "prometheus")]
    pub prometheus_binary: Option<PathBuf>,
    /// No live progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

fn seconds(option: &'static str, value: f64) -> Result<Duration, ScenarioError> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ScenarioError::InvalidOption { option, problem: format!("must be a non-negative number, got {value}") })
    }
}

impl ScenarioArgs {
    /// The options these arguments stand for.
    pub fn options(&self) -> Result<ScenarioOptions, ScenarioError> {
        let mut o = ScenarioOptions::new(self.report_dir.clone());
        o.policies = self.policies.clone();
        o.time_scale = self.time_scale.unwrap_or(if self.prometheus { 1.0 } else { 60.0 });
        o.timeline = self.timeline.unwrap_or(if self.prometheus { TimelineKind::Short } else { TimelineKind::Default });
        o.baseline_rps = self.baseline_rps;
        o.surge_multiplier = self.surge_multiplier;
        o.slo_p95_ms = self.slo_p95_ms;
        o.pod = PodConfig {
            workers: self.pod_workers,
            service_time: Duration::from_millis(self.pod_service_time_ms),
            queue_capacity: self.pod_queue,
            ..default_pod()
        };
        o.startup_delay = seconds("--startup-delay-s", self.startup_delay_s)?;
        o.startup_jitter = seconds("--startup-jitter-s", self.startup_jitter_s)?;
        o.llm = match (&self.llm_endpoint, &self.llm_model) {
            (Some(endpoint), Some(model)) => Some(LlmOptions {
                endpoint: endpoint.clone(),
                model: model.clone(),
                api_key_env: self.llm_api_key_env.clone(),
            }),
            _ => None,
        };
        if self.prometheus {
            let binary = super::prometheus::find_binary(self.prometheus_binary.as_deref()).ok_or_else(|| {
                ScenarioError::InvalidOption {
                    option: "--prometheus",
                    problem: match &self.prometheus_binary {
                        Some(p) => format!("{} is not a file", p.display()),
                        None => {
                            "no prometheus binary on PATH or at /usr/bin/prometheus (apt-get install prometheus)".into()
                        }
                    },
                }
            })?;
            o.prometheus = Some(binary);
        }
        o.progress = !self.no_progress;
        o.validate()?;
        Ok(o)
    }
}

/// Run the scenario, print the side-by-side table and the verdict; `Ok(false)` when a check
/// failed (the binary then exits non-zero).
pub async fn run_cli(args: &ScenarioArgs) -> Result<bool, ScenarioError> {
    let options = args.options()?;
    let timeline = super::Timeline::of(options.timeline);
    let wall_per_run = timeline.end_s / options.time_scale;
    eprintln!(
        "prescale seed scenario: policies {}; {} timeline ({:.0} scenario minutes, about {:.0} s of wall time per policy at time scale {}); predictor {}",
        options.policies.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
        match options.timeline {
            TimelineKind::Default => "default",
            TimelineKind::Short => "short",
        },
        timeline.end_s / 60.0,
        wall_per_run,
        options.time_scale,
        options.predictor_label(),
    );
    if options.llm.is_some() && options.time_scale > 10.0 {
        eprintln!(
            "note: at time scale {} every second the LLM takes to answer is {} scenario seconds of the daemon's \
             tick; --time-scale 10 or lower keeps its latency closer to real",
            options.time_scale, options.time_scale
        );
    }
    let outcome = run(&options).await?;
    println!("{}", outcome.table);
    for check in &outcome.report.verdict.checks {
        println!("[{}] {}: {}", if check.passed { "pass" } else { "FAIL" }, check.name, check.detail);
    }
    for (run, notes) in outcome.report.runs.iter().zip(&outcome.notes) {
        for p in &notes.problems {
            eprintln!("{}: {p}", run.policy);
        }
        for (t_s, e) in &notes.daemon_errors {
            eprintln!("{}: the daemon reported at {t_s:.0} s: {e}", run.policy);
        }
    }
    println!(
        "verdict: {}; report in {}",
        if outcome.report.verdict.passed { "passed" } else { "FAILED" },
        outcome.report_dir.join("report.md").display()
    );
    Ok(outcome.report.verdict.passed)
}
