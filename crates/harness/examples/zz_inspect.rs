//! Scratch: inspect a fitted model (temporary).
#![allow(clippy::unwrap_used, missing_docs)]
use chrono::{DateTime, Duration, Utc};
use prescale_features::{UpliftConfig, uplift_table};
use prescale_harness::backtest::Trace;
use prescale_predictor::{FitConfig, fit};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events = (args[2] != "-").then(|| std::path::PathBuf::from(&args[2]));
    let trace = Trace::load(std::path::Path::new(&args[1]), events.as_deref(), Duration::minutes(1)).unwrap();
    let at: DateTime<Utc> = args[3].parse().unwrap();
    let history = trace.demand.before(at);
    let evs = trace.events.clone().unwrap_or_default();
    let table = uplift_table(&history, &evs, &UpliftConfig::default()).unwrap();
    let model = fit(&history, &evs, &table, &FitConfig::default()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&model.to_json().unwrap()).unwrap();
    println!("params {}", json["params"]);
    let p90: Vec<f64> = serde_json::from_value(json["p90_ratio"].clone()).unwrap();
    println!("p90_ratio {:?}", p90.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>());
    println!("backtest {}", json["backtest"]);
    for (kind, k) in &table.kinds {
        let cal = model.uplift().get(kind).unwrap();
        println!("kind {kind}: raw median {:.2} lead {} lag {} | calibrated median {:.2}", k.median_uplift, k.lead_steps, k.lag_steps, cal.median_uplift);
        for (o, c) in k.observations.iter().zip(&cal.observations) {
            println!("   {} {} raw {:.2} cal {:.2} lead {} lag {}", o.date, o.event_id, o.uplift, c.uplift, o.lead_steps, o.lag_steps);
        }
    }
}
