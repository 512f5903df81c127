//! Fit a model on the NASA July 1995 web server trace and print a 60-minute forecast with its
//! explanation, then the model's own `rel_mae` over the last 7 days of the history next to two
//! simple references: persistence (the mean of the last hour) and the 7-day same-time profile
//! rescaled by the current level.
//!
//! ```text
//! cargo run -p prescale-harness --example forecast
//! cargo run -p prescale-harness --example forecast -- --at 1995-07-13T10:00:00Z
//! ```
//!
//! Everything runs on what was known at the origin `--at`: the history before it and the
//! calendar (announced in advance). The uplift table is measured from the events already past.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use prescale_collector::{CsvHistory, EventCalendar};
use prescale_features::{UpliftConfig, uplift_table};
use prescale_predictor::{FitConfig, PredictRequest, Predictor, fit};

/// Fit prescale's statistical model on a trace and forecast the next hour.
#[derive(Debug, Parser)]
#[command(name = "forecast")]
struct Args {
    /// The trace (CSV `timestamp,requests`).
    #[arg(long, default_value_os_t = traces_dir().join("nasa-http-1995-07.per-minute.csv"))]
    trace: PathBuf,
    /// The event calendar (CSV `start,end,name,kind`).
    #[arg(long, default_value_os_t = traces_dir().join("nasa-http-1995-07.events.csv"))]
    events: PathBuf,
    /// Forecast origin (RFC 3339); by default the end of the trace.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// Minutes to forecast.
    #[arg(long, default_value_t = 60)]
    horizon_minutes: usize,
}

/// `data/traces` of this repository.
fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let csv = CsvHistory::from_path(&args.trace).with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = csv.series("requests", Duration::minutes(1), prescale_collector::Aggregate::Sum)?;
    let events = EventCalendar::from_path(&args.events)
        .with_context(|| format!("reading {}", args.events.display()))?
        .all()
        .to_vec();
    let at = args.at.unwrap_or_else(|| trace.end());
    if at <= trace.start() + Duration::days(8) {
        bail!("--at {at} needs at least 8 days of trace before it (the trace starts {})", trace.start());
    }
    let history = trace.before(at);

    let started = Instant::now();
    let table = uplift_table(&history, &events, &UpliftConfig::default()).context("measuring event uplifts")?;
    let model = Arc::new(fit(&history, &events, &table, &FitConfig::default()).context("fitting the model")?);
    let fit_secs = started.elapsed().as_secs_f64();
    // The model's calibrated uplift table, shapes and spreads, as the daemon uses them.
    let predictor = model.event_aware();
    let request =
        PredictRequest { history, events, uplift: model.uplift().clone(), at, horizon_steps: args.horizon_minutes };
    let forecast = predictor.predict(&request).await.context("forecasting")?;

    println!("{}: fitted on {} .. {at} in {fit_secs:.1} s", args.trace.display(), trace.start());
    println!("{:<17} {:>9} {:>9} {:>9}", "time (UTC)", "baseline", "p50", "p90");
    for (i, point) in forecast.points.iter().enumerate() {
        let baseline = forecast.baseline.get(i).map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "{:<17} {baseline:>9} {:>9.1} {:>9.1}",
            forecast.timestamp(i).format("%Y-%m-%d %H:%M"),
            point.p50,
            point.p90
        );
    }
    println!("source:      {}", forecast.source);
    println!("explanation: {}", forecast.explanation);
    println!();
    match model.backtest() {
        Some(b) => {
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            println!("rel_mae over {} .. {} ({} targets, 30 min ahead, 5-min aggregates):", b.from, b.to, b.targets);
            println!("  model (seasonal baseline):      {:.3}", b.rel_mae);
            println!("  model with events:              {}", show(b.events_rel_mae));
            println!("  persistence (last hour's mean): {}", show(b.persistence_rel_mae));
            println!("  7-day profile, rescaled:        {}", show(b.profile_rel_mae));
        }
        None => println!("the history is too short for the model's 7-day backtest"),
    }
    Ok(())
}
