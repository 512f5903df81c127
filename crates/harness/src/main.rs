//! `prescale-harness`: prescale's harness commands (backtests on real traces, the seed
//! scenario, the embedded cluster on its own).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// prescale's harness: backtests and scenarios.
#[derive(Debug, Parser)]
#[command(name = "prescale-harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a trace through each scaling policy and score it (no cluster, no waiting).
    Backtest(prescale_harness::backtest::BacktestArgs),
    /// Run the seed scenario on the embedded cluster, once per policy, and compare them.
    Scenario(prescale_harness::scenario::ScenarioArgs),
    /// Run the embedded cluster alone with the sample shop-frontend Deployment.
    Cluster(ClusterArgs),
    /// Send a fixed open-loop request rate to one URL and print the latency summary.
    Load(prescale_harness::load::LoadArgs),
}

/// Options of `cluster`.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// API server port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "prescale-cluster.kubeconfig")]
    kubeconfig: PathBuf,
    /// Cluster-clock seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Pod startup delay, cluster-clock seconds.
    #[arg(long, default_value_t = 45)]
    startup_delay_seconds: u64,
    /// Replicas of the sample Deployment.
    #[arg(long, default_value_t = 2)]
    replicas: u32,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn main() -> anyhow::Result<ExitCode> {
    // One rustls crypto provider for the process (the LLM and kube clients need it); an earlier one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Backtest(args) => prescale_harness::backtest::run_cli(&args)?,
        Command::Scenario(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .init();
            let passed = runtime()?.block_on(prescale_harness::scenario::run_cli(&args))?;
            if !passed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Cluster(args) => {
            let options = prescale_cluster::RunOptions {
                port: args.port,
                kubeconfig: args.kubeconfig,
                time_scale: args.time_scale,
                startup_delay: Duration::from_secs(args.startup_delay_seconds),
                replicas: args.replicas,
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            runtime()?.block_on(prescale_cluster::run(options, |line| println!("{line}"), shutdown))?;
        }
        Command::Load(args) => {
            let (total, mean_lag, max_lag) = runtime()?.block_on(prescale_harness::load::run_cli(&args))?;
            print!("{}", prescale_harness::load::summary_text(&total, mean_lag, max_lag));
        }
    }
    Ok(ExitCode::SUCCESS)
}
