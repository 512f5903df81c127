//! The `load` subcommand: a fixed open-loop rate against one URL for a while, then the
//! latency summary (what the cross-check against `oha -q RATE` compares).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{LoadConfig, LoadError, LoadGenerator, RateSchedule, Tally};

/// Send a constant open-loop rate to a URL and print the latency summary.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The URL every request GETs (http only).
    #[arg(long)]
    pub url: String,
    /// Requests per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// How long to send (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// A request without a complete response after this long is a timeout error.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration {text:?}: {e} (examples: 30s, 2m)"))
}

/// Run the load and return its total with the mean and largest delay behind schedule;
/// [`summary_text`] formats them.
pub async fn run_cli(args: &LoadArgs) -> Result<(Tally, Duration, Duration), LoadError> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(LoadError::Config(format!("--rate must be a positive number, got {}", args.rate)));
    }
    let schedule = RateSchedule::constant("fixed", args.rate, args.duration.as_secs_f64())?;
    let generator =
        LoadGenerator::new(LoadConfig { timeout: args.timeout, ..LoadConfig::new(args.url.clone()) }, schedule)?;
    let (_stop, stopped) = watch::channel(false);
    generator.run(Instant::now(), stopped).await?;
    let recorder = generator.recorder();
    Ok((recorder.total(), recorder.mean_send_lag(), recorder.max_send_lag()))
}

/// One line per figure, in milliseconds.
pub fn summary_text(total: &Tally, mean_send_lag: Duration, max_send_lag: Duration) -> String {
    let s = total.summary();
    format!(
        "requests {}  ok {}  errors {} (status {}, timeouts {}, connection {})\n\
         latency ms: mean {:.2}  p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}\n\
         behind schedule ms: mean {:.3}  max {:.2}\n",
        total.sent,
        total.ok,
        total.errors(),
        total.status_errors,
        total.timeouts,
        total.connection_errors,
        s.mean,
        s.p50,
        s.p95,
        s.p99,
        s.max,
        mean_send_lag.as_secs_f64() * 1000.0,
        max_send_lag.as_secs_f64() * 1000.0
    )
}
