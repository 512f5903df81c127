//! Forecast the FIFA World Cup 1998 web site's traffic around a group-stage match with the
//! LLM predictor, and print the forecast, its source, its explanation and the LLM's counters.
//!
//! ```text
//! cargo run -p prescale-harness --example llm_forecast -- \
//!     --llm-endpoint http://localhost:11434/v1 --llm-model qwen2.5:7b-instruct
//! cargo run -p prescale-harness --example llm_forecast -- \
//!     --llm-endpoint https://api.openai.com/v1 --llm-model gpt-4o-mini --llm-api-key-env OPENAI_API_KEY
//! cargo run -p prescale-harness --example llm_forecast          # no LLM: the fallback forecast
//! ```
//!
//! The trace (`data/traces/worldcup98-1998-04-30_06-26.per-minute.csv`) is summed into 5-minute
//! steps; the model is fitted and the per-kind uplift table learned on the history before the
//! forecast origin (by default one hour before the kick-off of `--match`), with the match
//! calendar as scheduled events. The event-free baseline produces the series, the LLM is asked
//! for a bounded multiplier per match, and code builds and validates the forecast. Without
//! `--llm-endpoint`, or when the endpoint is unreachable or its answer is rejected, the
//! event-aware statistical forecast is printed with its fallback label and reason, and the
//! example still exits 0. Because the trace continues past the origin, the observed traffic is
//! printed next to the forecast, with each forecast's error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use prescale_collector::{Aggregate, CsvHistory, EventCalendar};
use prescale_core::{Forecast, ScheduledEvent, SharedClock, SystemClock, TimeSeries};
use prescale_features::{UpliftConfig, uplift_table};
use prescale_predictor::llm::{LlmConfig, LlmPredictor, LlmStats};
use prescale_predictor::{FitConfig, PredictRequest, Predictor, fit};

/// Forecast World Cup 1998 traffic around a match with an LLM (any OpenAI-compatible endpoint).
#[derive(Debug, Parser)]
#[command(name = "llm_forecast")]
struct Args {
    /// OpenAI-compatible base URL, e.g. http://localhost:11434/v1 (Ollama) or https://api.openai.com/v1.
    /// Without it the fallback forecast is printed.
    #[arg(long, requires = "llm_model")]
    llm_endpoint: Option<String>,
    /// Model name sent to the endpoint; the forecast's source is `llm:<model>`.
    #[arg(long, requires = "llm_endpoint")]
    llm_model: Option<String>,
    /// Environment variable holding the API key (the key itself is never printed).
    #[arg(long, requires = "llm_endpoint", conflicts_with = "llm_api_key_file")]
    llm_api_key_env: Option<String>,
    /// File holding the API key (a mounted secret).
    #[arg(long, requires = "llm_endpoint")]
    llm_api_key_file: Option<PathBuf>,
    /// Time allowed for the whole LLM step (every attempt and wait); slow local models need more than 20 s.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    llm_deadline: std::time::Duration,
    /// The match to forecast around: any part of its name in the calendar (case-insensitive).
    #[arg(long = "match", default_value = "Romania v England")]
    match_name: String,
    /// Forecast origin, this long before the kick-off.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    before: std::time::Duration,
    /// How far ahead to forecast.
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    horizon: std::time::Duration,
    /// Forecast step (a multiple of the trace's 1-minute step).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    step: std::time::Duration,
    /// Then replay this many further ticks, one step apart, with the same predictor (and model),
    /// and report how many LLM calls they needed: the answer cache asks again only when the
    /// event set changes, an event is about to start, or traffic leaves the forecast's band.
    #[arg(long, default_value_t = 0)]
    ticks: usize,
    /// The trace (CSV `timestamp,requests`).
    #[arg(long, default_value_os_t = traces_dir().join("worldcup98-1998-04-30_06-26.per-minute.csv"))]
    trace: PathBuf,
    /// The event calendar (CSV `start,end,name,kind`).
    #[arg(long, default_value_os_t = traces_dir().join("worldcup98-1998-04-30_06-26.events.csv"))]
    events: PathBuf,
}

/// `data/traces` of this repository.
fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
}

fn chrono_duration(d: std::time::Duration, flag: &str) -> anyhow::Result<Duration> {
    let d = Duration::from_std(d).with_context(|| format!("{flag} is too long"))?;
    if d <= Duration::zero() {
        bail!("{flag} must be positive");
    }
    Ok(d)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One rustls crypto provider for the process (the LLM client needs it); an earlier one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let step = chrono_duration(args.step, "--step")?;
    let before = chrono::Duration::from_std(args.before).context("--before is too long")?;
    let horizon = chrono_duration(args.horizon, "--horizon")?;
    let horizon_steps = (horizon.num_seconds() / step.num_seconds()).max(1) as usize;

    let csv = CsvHistory::from_path(&args.trace).with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = csv.series("requests", step, Aggregate::Sum).context("summing the trace into forecast steps")?;
    let calendar =
        EventCalendar::from_path(&args.events).with_context(|| format!("reading {}", args.events.display()))?;
    let events = calendar.all().to_vec();
    let wanted = args.match_name.to_lowercase();
    let Some(game) = events.iter().find(|e| e.kind.starts_with("match") && e.name.to_lowercase().contains(&wanted))
    else {
        let names: Vec<&str> = events.iter().filter(|e| e.kind.starts_with("match")).map(|e| e.name.as_str()).collect();
        bail!("no match named like {:?} in {}; matches: {}", args.match_name, args.events.display(), names.join(", "));
    };
    let at = game.start - before;
    let at = at - Duration::seconds(at.timestamp().rem_euclid(step.num_seconds()));
    if at <= trace.start() + Duration::days(8) || at + horizon > trace.end() {
        bail!("the origin {at} needs 8 days of trace before it and the horizon inside the trace");
    }

    // Fit on what was known at the origin: the history before it, and the whole calendar
    // (announced in advance). The uplift table measures only the matches already played.
    let history = trace.before(at);
    let fitting = Instant::now();
    let table = uplift_table(&history, &events, &UpliftConfig::default()).context("learning event uplifts")?;
    let fitted = Arc::new(fit(&history, &events, &table, &FitConfig::default()).context("fitting the baseline")?);
    // The model's table is the measured one re-calibrated against its own baseline, with the
    // learned shapes and spreads: what the daemon and the backtests use.
    let event_aware: Arc<dyn Predictor> = Arc::new(fitted.event_aware());
    let table = fitted.uplift().clone();
    let model: Arc<dyn Predictor> = fitted;
    let fit_secs = fitting.elapsed().as_secs_f64();

    println!("World Cup 1998 web site, requests per {} min", step.num_minutes());
    println!("match:    {} ({}), kick-off {}, window until {}", game.name, game.kind, game.start, game.end);
    println!("origin:   {at}, horizon {} steps ({} h)", horizon_steps, horizon.num_minutes() as f64 / 60.0);
    match table.get(&game.kind) {
        Some(k) => println!(
            "learned:  {} past {} events, median uplift x{:.2} (fitted in {fit_secs:.1} s)",
            k.observations.len(),
            game.kind,
            k.median_uplift
        ),
        None => println!("learned:  no past {} event measured yet (fitted in {fit_secs:.1} s)", game.kind),
    }

    let request = PredictRequest { history, events: events.clone(), uplift: table, at, horizon_steps };
    let statistical = event_aware.predict(&request).await.context("event-aware forecast")?;

    let (forecast, llm, llm_secs) = match (&args.llm_endpoint, &args.llm_model) {
        (Some(endpoint), Some(model_name)) => {
            let mut config = LlmConfig::new(endpoint.clone(), model_name.clone());
            config.api_key_env = args.llm_api_key_env.clone();
            config.api_key_file = args.llm_api_key_file.clone();
            config.max_deadline = args.llm_deadline;
            config.tick = args.llm_deadline * 3;
            config.request_timeout = args.llm_deadline;
            let clock: SharedClock = Arc::new(SystemClock);
            let predictor = LlmPredictor::new(config, model, event_aware.clone(), clock)
                .context("building the LLM predictor (check --llm-endpoint, --llm-model and the API key)")?;
            let asking = Instant::now();
            let forecast = predictor.predict(&request).await.context("LLM predictor")?;
            let secs = asking.elapsed().as_secs_f64();
            (forecast, Some(predictor), secs)
        }
        _ => {
            let mut forecast = statistical.clone();
            forecast.source = forecast.source.fallback("no --llm-endpoint given");
            (forecast, None, 0.0)
        }
    };

    print_table(&forecast, &statistical, &trace, &events);
    println!();
    println!("source:      {}", forecast.source);
    println!("explanation: {}", forecast.explanation);
    if forecast.source.is_fallback() {
        println!("The LLM was not used; this is the event-aware statistical forecast (see the reason above).");
    }
    println!();
    print_errors(&forecast, &statistical, &trace);
    if let Some(predictor) = &llm {
        println!();
        print_stats(&predictor.stats(), llm_secs, predictor.structured_output().label());
        if args.ticks > 0 {
            println!();
            replay(predictor, &request, &trace, step, args.ticks).await?;
        }
    }
    Ok(())
}

/// Forecast at each of the next `ticks` steps after the request's origin, and report the calls.
async fn replay(
    predictor: &LlmPredictor,
    first: &PredictRequest,
    trace: &TimeSeries,
    step: Duration,
    ticks: usize,
) -> anyhow::Result<()> {
    println!("replay of {ticks} further tick(s), one every {} min:", step.num_minutes());
    let calls = |p: &LlmPredictor| p.stats().calls.values().sum::<u64>();
    let before = calls(predictor);
    let started = Instant::now();
    for n in 1..=ticks {
        let at = first.at + step * n as i32;
        if at + step * first.horizon_steps as i32 > trace.end() {
            println!("  the trace ends: stopped after {} tick(s)", n - 1);
            break;
        }
        let request = PredictRequest { history: trace.before(at), at, ..first.clone() };
        let made = calls(predictor);
        let forecast = predictor.predict(&request).await.context("LLM predictor")?;
        let asked = calls(predictor) - made;
        if asked > 0 || forecast.source.is_fallback() {
            println!("  {} {} call(s): {}", at.format("%Y-%m-%d %H:%M"), asked, forecast.source);
        }
    }
    let stats = predictor.stats();
    println!(
        "  {} call(s) in {ticks} tick(s) ({:.1} s); forecasts: {}",
        calls(predictor) - before,
        started.elapsed().as_secs_f64(),
        stats.forecasts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    );
    println!("  tokens so far: {} prompt, {} completion", stats.prompt_tokens, stats.completion_tokens);
    Ok(())
}

/// Names of the events active at `t`, shortened to the teams.
fn active(events: &[ScheduledEvent], t: DateTime<Utc>) -> String {
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e.is_active(t))
        .map(|e| e.name.split(" (").next().unwrap_or(e.name.as_str()))
        .collect();
    names.join(", ")
}

fn print_table(forecast: &Forecast, statistical: &Forecast, trace: &TimeSeries, events: &[ScheduledEvent]) {
    println!();
    println!(
        "{:<17} {:>9} {:>9} {:>9} {:>9} {:>11}  event",
        "time (UTC)", "observed", "baseline", "p50", "p90", "stat+events"
    );
    for (i, point) in forecast.points.iter().enumerate() {
        let t = forecast.timestamp(i);
        let observed = trace.value_at(t).map_or("-".to_string(), |v| format!("{v:.0}"));
        let baseline = forecast.baseline.get(i).map_or("-".to_string(), |v| format!("{v:.0}"));
        let stat = statistical.points.get(i).map_or("-".to_string(), |p| format!("{:.0}", p.p50));
        println!(
            "{:<17} {observed:>9} {baseline:>9} {:>9.0} {:>9.0} {stat:>11}  {}",
            t.format("%Y-%m-%d %H:%M"),
            point.p50,
            point.p90,
            active(events, t)
        );
    }
}

/// Mean absolute error of a forecast's p50 against the trace, relative to the observed mean.
fn rel_mae(forecast: &Forecast, trace: &TimeSeries) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = forecast
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| trace.value_at(forecast.timestamp(i)).map(|o| (o, p.p50)))
        .collect();
    let observed: f64 = pairs.iter().map(|(o, _)| o).sum();
    let error: f64 = pairs.iter().map(|(o, f)| (o - f).abs()).sum();
    (observed > 0.0).then(|| error / observed)
}

fn print_errors(forecast: &Forecast, statistical: &Forecast, trace: &TimeSeries) {
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!("error against the observed traffic (relative MAE of p50 over the horizon):");
    println!("  this forecast:      {}", show(rel_mae(forecast, trace)));
    println!("  statistical+events: {}", show(rel_mae(statistical, trace)));
}

fn print_stats(stats: &LlmStats, secs: f64, rung: &str) {
    let list = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        }
    };
    println!("LLM stats:");
    println!("  step time:          {secs:.2} s (structured output: {rung})");
    println!("  calls:              {}", list(&stats.calls));
    println!("  forecasts:          {}", list(&stats.forecasts));
    println!("  fallbacks:          {}", list(&stats.fallbacks));
    println!("  validation failures: {}", list(&stats.validation_failures));
    println!("  tokens:             {} prompt, {} completion", stats.prompt_tokens, stats.completion_tokens);
    let mean = if stats.latency.count > 0 { stats.latency.sum_secs / stats.latency.count as f64 } else { 0.0 };
    println!("  call latency:       {} calls, mean {mean:.2} s", stats.latency.count);
    println!("  breaker opened:     {} time(s)", stats.breaker_opened);
}
