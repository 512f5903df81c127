//! The `backtest` subcommand's arguments and what it does with them.

use std::path::PathBuf;

use chrono::Duration;
use prescale_predictor::llm::LlmConfig;

use super::config::{BacktestConfig, Capacity, PolicyKind, parse_duration};
use super::{Trace, run};
use crate::HarnessError;

/// Replay a trace through each scaling policy and score it.
#[derive(Debug, Clone, clap::Args)]
pub struct BacktestArgs {
    /// Trace CSV with header `timestamp,requests` (any step).
    #[arg(long)]
    pub trace: PathBuf,
    /// Event calendar (CSV `start,end,name,kind` or YAML).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Decision step; a coarser trace step wins.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub step: Duration,
    /// Requests per step one pod serves at 100% utilization.
    #[arg(long, conflicts_with = "pods_at_median")]
    pub capacity_per_pod: Option<f64>,
    /// Size pods so that the warm-up's median demand needs this many at the target utilization
    /// [default: 4].
    #[arg(long)]
    pub pods_at_median: Option<u32>,
    /// Utilization the policies plan for; also the HPA's target.
    #[arg(long, default_value_t = 0.7)]
    pub target_utilization: f64,
    /// Time from ordering a pod until it is Ready.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub startup: Duration,
    /// Lead on top of the startup time for the predictive policies.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub safety_buffer: Duration,
    /// Fewest replicas.
    #[arg(long, default_value_t = 1)]
    pub min: u32,
    /// Most replicas.
    #[arg(long, default_value_t = 1000)]
    pub max: u32,
    /// Time from the trace's start used only for fitting (`m`, `h`, `d`, sums like `40d2h30m`).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub warmup: Duration,
    /// How often models are refitted, in trace time.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub refit_every: Duration,
    /// Scale-down stabilization window of the predictive policies.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub scale_down_stabilization: Duration,
    /// Policies to replay, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "prescale,hpa,profile,holt-winters,seasonal-naive,oracle")]
    pub policies: Vec<PolicyKind>,
    /// OpenAI-compatible endpoint for prescale's LLM predictor (e.g. http://localhost:11434/v1).
    #[arg(long, requires = "llm_model")]
    pub llm_endpoint: Option<String>,
    /// Model name for the LLM predictor.
    #[arg(long, requires = "llm_endpoint")]
    pub llm_model: Option<String>,
    /// Environment variable holding the LLM API key.
    #[arg(long, requires = "llm_endpoint")]
    pub llm_api_key_env: Option<String>,
    /// How to print the scores: a fixed-width `table`, or a `markdown` table (as in BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write the scores as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write each policy's Ready pods per step as CSV to this file.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
}

/// How the scores are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A fixed-width table for the terminal.
    Table,
    /// A Markdown table with its header line.
    Markdown,
}

impl BacktestArgs {
    /// The backtest configuration these arguments describe.
    pub fn config(&self) -> BacktestConfig {
        let capacity = match (self.capacity_per_pod, self.pods_at_median) {
            (Some(per_pod), _) => Capacity::PerPod(per_pod),
            (None, pods) => Capacity::PodsAtMedian(pods.unwrap_or(4)),
        };
        let llm = self.llm_endpoint.as_ref().map(|endpoint| {
            let mut llm = LlmConfig::new(endpoint.clone(), self.llm_model.clone().unwrap_or_default());
            llm.api_key_env = self.llm_api_key_env.clone();
            llm.tick = self.step.to_std().unwrap_or(std::time::Duration::from_secs(60));
            llm
        });
        BacktestConfig {
            step: self.step,
            capacity,
            target_utilization: self.target_utilization,
            startup: self.startup,
            safety_buffer: self.safety_buffer,
            min_replicas: self.min,
            max_replicas: self.max,
            warmup: self.warmup,
            refit_every: self.refit_every,
            scale_down_stabilization: self.scale_down_stabilization,
            policies: self.policies.clone(),
            llm,
        }
    }
}

/// Run the backtest the arguments describe: print the table, write the JSON and timeline if asked.
pub fn run_cli(args: &BacktestArgs) -> Result<(), HarnessError> {
    let config = args.config();
    config.validate()?;
    let trace = Trace::load(&args.trace, args.events.as_deref(), config.step)?;
    let report = run(&trace, &config)?;
    match args.format {
        Format::Table => print!("{}", report.table()),
        Format::Markdown => print!("{}", report.markdown()),
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| HarnessError::Write { path: path.clone(), source: std::io::Error::other(e) })?;
        write(path, json + "\n")?;
    }
    if let Some(path) = &args.timeline {
        write(path, timeline_csv(&trace, &report))?;
    }
    Ok(())
}

fn write(path: &PathBuf, text: String) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(|source| HarnessError::Write { path: path.clone(), source })
}

/// `timestamp,demand,<policy>...`: demand and each policy's time-weighted Ready pods per scored step.
fn timeline_csv(trace: &Trace, report: &super::BacktestReport) -> String {
    let mut out = String::from("timestamp,demand");
    for p in &report.policies {
        out.push(',');
        out.push_str(&p.name);
    }
    out.push('\n');
    let first = trace.demand.len() - report.scored.steps;
    for k in 0..report.scored.steps {
        let i = first + k;
        out.push_str(&trace.demand.timestamp(i).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        out.push(',');
        if let Some(d) = trace.demand.values()[i] {
            out.push_str(&d.to_string());
        }
        for p in &report.policies {
            out.push_str(&format!(",{}", p.ready.get(k).map_or(String::new(), |r| format!("{r:.2}"))));
        }
        out.push('\n');
    }
    out
}
