//! Fit the statistical model on each real trace and print its backtest `rel_mae` (the last
//! 7 days, parameters fitted on the data before them) next to persistence and the rescaled
//! 7-day profile. Run with `cargo run --release -p prescale-predictor --example backtest`.

#[path = "../tests/common/traces.rs"]
mod traces;

use std::time::Instant;

use prescale_core::UpliftTable;
use prescale_predictor::{FitConfig, fit};

fn main() {
    let traces = [
        ("NASA", "nasa-http-1995-07.per-minute.csv", Some("nasa-http-1995-07.events.csv")),
        ("World Cup", "worldcup98-1998-04-30_06-26.per-minute.csv", Some("worldcup98-1998-04-30_06-26.events.csv")),
        ("AWS ELB", "nab-aws-elb-request-count-8c0756.per-5min.csv", None),
    ];
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  params",
        "trace", "model", "+events", "persist", "profile", "targets", "fit ms", "eval ms"
    );
    for (name, series_file, events_file) in traces {
        let history = traces::load_series(series_file);
        let events = events_file.map(traces::load_events).unwrap_or_default();
        let uplift = if events.is_empty() {
            UpliftTable::default()
        } else {
            traces::rough_uplift(&history, &events, history.end())
        };
        let started = Instant::now();
        let model = fit(&history, &events, &uplift, &FitConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fit_ms = started.elapsed().as_secs_f64() * 1e3;
        let Some(b) = model.backtest() else {
            println!("{name}: history too short for a backtest");
            continue;
        };
        let started = Instant::now();
        let again = model.evaluate(&history, &events, b.from, b.to).unwrap_or_else(|e| panic!("{name}: {e}"));
        let eval_ms = started.elapsed().as_secs_f64() * 1e3;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{name:<10} {:>8.3} {:>8} {:>8} {:>8} {:>8} {fit_ms:>9.0} {eval_ms:>9.0}  {:?} (refit: {:?}, full-params rel_mae {})",
            b.rel_mae,
            opt(b.events_rel_mae),
            opt(b.persistence_rel_mae),
            opt(b.profile_rel_mae),
            b.targets,
            b.params,
            model.params(),
            opt(again.map(|a| a.rel_mae)),
        );
    }
}
