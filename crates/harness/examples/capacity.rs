//! Measure the embedded cluster's serving capacity: the open-loop request rate at which p95
//! latency doubles, for one pod (addressed directly and through its Service) and for ten pods
//! behind a Service, and the Service's own overhead at low load.
//!
//! ```text
//! cargo run --release -p prescale-harness --example capacity
//! cargo run --release -p prescale-harness --example capacity -- --seconds 8 --pods 1,10
//! ```
//!
//! Each rate step sends a constant open-loop rate for `--seconds` (real time, real HTTP on
//! loopback) and reports p50, p95 and the error rate; the reference p95 is the one at the
//! lowest step. Pods use the default capacity model (2 workers, 20 ms per request: 100
//! requests/s per pod at 100%). Run it on a quiet machine: the load generator, the Service
//! proxy and every pod share its cores.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use prescale_cluster::{Cluster, ClusterConfig, DeploymentSpec};
use prescale_core::SystemClock;
use prescale_harness::load::{LatencySummary, LoadConfig, LoadGenerator, RateSchedule};
use tokio::sync::watch;

/// Sweep open-loop rates against the embedded cluster's pods and Services.
#[derive(Debug, Parser)]
#[command(name = "capacity")]
struct Args {
    /// Seconds of load per rate step.
    #[arg(long, default_value_t = 6.0)]
    seconds: f64,
    /// Pod counts to measure behind a Service, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    pods: Vec<u32>,
    /// Rate steps as fractions of the nominal capacity, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5,0.6,0.7,0.8,0.9,1.0,1.1")]
    fractions: Vec<f64>,
}

/// One rate step's result.
struct Step {
    rps: f64,
    latency: LatencySummary,
    error_rate: f64,
}

async fn measure(url: &str, rps: f64, seconds: f64) -> anyhow::Result<Step> {
    let schedule = RateSchedule::constant("sweep", rps, seconds)?;
    let generator = LoadGenerator::new(LoadConfig::new(url), schedule)?;
    let (_stop, stopped) = watch::channel(false);
    generator.run(tokio::time::Instant::now(), stopped).await?;
    let total = generator.recorder().total();
    Ok(Step { rps, latency: total.summary(), error_rate: total.error_rate() })
}

/// Sweep the rates against `url`; print each step and where p95 first doubled.
async fn sweep(label: &str, url: &str, nominal_rps: f64, args: &Args) -> anyhow::Result<Vec<Step>> {
    println!("\n{label}: nominal capacity {nominal_rps:.0} requests/s");
    println!("{:>9} {:>9} {:>9} {:>9} {:>8}", "rate", "p50 ms", "p95 ms", "p99 ms", "errors");
    let mut steps = Vec::new();
    for fraction in &args.fractions {
        let step = measure(url, nominal_rps * fraction, args.seconds).await?;
        println!(
            "{:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>7.2}%",
            step.rps,
            step.latency.p50,
            step.latency.p95,
            step.latency.p99,
            step.error_rate * 100.0
        );
        steps.push(step);
    }
    let reference = steps.first().map_or(0.0, |s| s.latency.p95);
    match steps.iter().find(|s| s.latency.p95 >= 2.0 * reference || s.error_rate > 0.01) {
        Some(s) => println!(
            "{label}: p95 doubled (from {reference:.1} ms) at {:.0} requests/s = {:.0}% of nominal",
            s.rps,
            100.0 * s.rps / nominal_rps
        ),
        None => println!("{label}: p95 did not double up to {:.0} requests/s", steps.last().map_or(0.0, |s| s.rps)),
    }
    Ok(steps)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = ClusterConfig::new(Arc::new(SystemClock));
    config.api_port = 0;
    config.startup_delay = Duration::ZERO;
    config.startup_jitter = Duration::ZERO;
    let per_pod = config.pod.capacity_rps();
    let cluster = Cluster::start(config).await.context("starting the cluster")?;
    let mut low_load = Vec::new();
    for (i, pods) in args.pods.iter().copied().enumerate() {
        let name = format!("capacity-{i}");
        cluster.create_deployment(&DeploymentSpec::new("default", &name, pods)).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while cluster.pods("default", &name)?.iter().filter(|p| p.ready).count() < pods as usize {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{pods} pods did not turn Ready in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let service = cluster.service_url("default", &name).await?;
        let nominal = per_pod * f64::from(pods);
        if pods == 1 {
            let port = cluster.pods("default", &name)?[0].port;
            let direct = sweep("1 pod, direct", &format!("http://127.0.0.1:{port}/"), nominal, &args).await?;
            low_load.push(("1 pod, direct".to_string(), direct[0].latency));
        }
        let label = format!("{pods} pod(s) through the Service");
        let via = sweep(&label, &service, nominal, &args).await?;
        low_load.push((label, via[0].latency));
    }
    println!("\nlow-load latency (the first rate step):");
    for (label, l) in &low_load {
        println!("  {label:<32} p50 {:.2} ms, p95 {:.2} ms", l.p50, l.p95);
    }
    cluster.shutdown().await;
    Ok(())
}
