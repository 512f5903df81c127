//! `prescale-cluster`: runs the embedded cluster alone with the sample `shop-frontend`
//! Deployment and writes a kubeconfig pointing at it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prescale_cluster::{RunOptions, run};

/// Run an embedded Kubernetes-compatible cluster with a sample shop frontend.
#[derive(Debug, Parser)]
#[command(name = "prescale-cluster", version)]
struct Args {
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
    #[arg(long, default_value_t = 45.0)]
    startup_delay_seconds: f64,
    /// Replicas of the sample Deployment.
    #[arg(long, default_value_t = 2)]
    replicas: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    if !(args.startup_delay_seconds.is_finite() && args.startup_delay_seconds >= 0.0) {
        eprintln!("error: --startup-delay-seconds must be a non-negative number");
        return ExitCode::FAILURE;
    }
    let options = RunOptions {
        port: args.port,
        kubeconfig: args.kubeconfig,
        time_scale: args.time_scale,
        startup_delay: Duration::from_secs_f64(args.startup_delay_seconds),
        replicas: args.replicas,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match run(options, |line| println!("{line}"), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
