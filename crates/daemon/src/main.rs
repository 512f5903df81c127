//! `prescaled`: parses the command line and calls the daemon library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use prescale_core::{SharedClock, SystemClock};
use prescale_daemon::DaemonError;
use prescale_daemon::config::LlmSettings;
use prescale_daemon::logging::{self, LogFormat};
use prescale_daemon::offline::{self, OfflineRequest};

/// prescale's daemon: forecasts traffic, explains, and scales Kubernetes workloads ahead of it.
#[derive(Debug, Parser)]
#[command(name = "prescaled", version, about)]
struct Cli {
    /// Log format: human or json (level from RUST_LOG, default info).
    #[arg(long, global = true, env = "PRESCALE_LOG_FORMAT", default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run {
        /// Configuration file (.yaml, .yml or .toml); PRESCALE__... variables override it.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file; lists every problem with its key path, exits 1 on any.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// One-shot forecast from files, standing at --at (later history is not used).
    Forecast(ForecastArgs),
    /// Restore every HPA floor prescale raised (the step before uninstalling; stop the daemon first).
    Release {
        /// Configuration file (for the Kubernetes connection and the workloads' namespaces).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ForecastArgs {
    /// CSV history `timestamp,requests`.
    #[arg(long)]
    history: PathBuf,
    /// Event calendar (CSV or YAML).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Forecast origin, RFC 3339 (e.g. 1995-07-13T10:00:00Z).
    #[arg(long, value_parser = parse_time)]
    at: DateTime<Utc>,
    /// How far ahead, e.g. 60m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60m")]
    horizon: std::time::Duration,
    /// Requests per second one pod serves at 100 %; plans replicas when given.
    #[arg(long)]
    capacity_per_pod: Option<f64>,
    /// Utilization to plan for.
    #[arg(long, default_value_t = 0.7)]
    target_utilization: f64,
    /// Pod startup time, e.g. 3m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    startup: std::time::Duration,
    /// Fewest replicas to plan.
    #[arg(long, default_value_t = 1)]
    min: u32,
    /// Most replicas to plan.
    #[arg(long, default_value_t = 100)]
    max: u32,
    /// OpenAI-compatible endpoint for the LLM predictor (with --llm-model).
    #[arg(long, requires = "llm_model")]
    llm_endpoint: Option<String>,
    /// LLM model name.
    #[arg(long, requires = "llm_endpoint")]
    llm_model: Option<String>,
    /// Environment variable holding the LLM API key.
    #[arg(long, requires = "llm_endpoint")]
    llm_api_key_env: Option<String>,
    /// Print JSON (source, explanation, steps [{t, p50, p90}], planned_replicas).
    #[arg(long)]
    json: bool,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{s:?}: {e} (RFC 3339)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prescaled: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prescaled: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clock: SharedClock = Arc::new(SystemClock);
    match command {
        Command::Run { config } => {
            let config = prescale_daemon::config::load(&config)?;
            prescale_daemon::run(config, clock, prescale_daemon::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => match prescale_daemon::config::load(&file) {
            Ok(config) => {
                println!("{}: OK ({} workload(s))", file.display(), config.workloads.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(e @ (DaemonError::InvalidConfig { .. } | DaemonError::ConfigLoad { .. })) => {
                println!("{e}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        },
        Command::Forecast(args) => {
            let llm = match (args.llm_endpoint, args.llm_model) {
                (Some(endpoint), Some(model)) => Some(LlmSettings::new(
                    endpoint,
                    model,
                    args.llm_api_key_env.map(prescale_daemon::config::SecretSource::Env),
                )),
                _ => None,
            };
            let request = OfflineRequest {
                history: args.history,
                events: args.events,
                at: args.at,
                horizon: chrono::Duration::from_std(args.horizon).context("--horizon")?,
                capacity_per_pod: args.capacity_per_pod,
                target_utilization: args.target_utilization,
                startup: args.startup,
                min_replicas: args.min,
                max_replicas: args.max,
                llm,
            };
            let forecast = offline::forecast(&request, clock).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&forecast)?);
            } else {
                print!("{}", offline::render_text(&forecast));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Release { config } => {
            let config = prescale_daemon::config::load(&config)?;
            let restored = prescale_daemon::release(&config, clock).await?;
            if restored.is_empty() {
                println!("no raised HPA floor found");
            }
            for r in restored {
                println!("{}: HPA {} minReplicas {} -> {} (restored)", r.workload, r.hpa, r.from, r.to);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
