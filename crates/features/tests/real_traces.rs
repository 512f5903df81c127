//! Tests on the real NASA 1995 and World Cup 1998 traces in `data/traces`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use common::{load_events, load_per_minute_trace};
use prescale_features::{FeatureConfig, UpliftConfig, build_features, columns, measure_event_uplifts, uplift_table};

#[test]
fn explore() {
    for (trace, cal) in [
        ("worldcup98-1998-04-30_06-26.per-minute.csv", "worldcup98-1998-04-30_06-26.events.csv"),
        ("nasa-http-1995-07.per-minute.csv", "nasa-http-1995-07.events.csv"),
    ] {
        let h = load_per_minute_trace(trace);
        let ev = load_events(cal);
        let t = std::time::Instant::now();
        let m = measure_event_uplifts(&h, &ev, &UpliftConfig::default()).unwrap();
        println!("{:?}", t.elapsed());
        for e in &m {
            println!(
                "{} {} {:?}",
                e.event_id,
                e.kind,
                e.outcome.as_ref().map(|o| (format!("{:.2}", o.uplift), o.lead_steps, o.lag_steps))
            );
        }
        let table = uplift_table(&h, &ev, &UpliftConfig::default()).unwrap();
        for (k, v) in &table.kinds {
            println!(
                "{k}: n={} median {:.2} lead {} lag {}",
                v.observations.len(),
                v.median_uplift,
                v.lead_steps,
                v.lag_steps
            );
        }
        let t = std::time::Instant::now();
        let f = build_features(&h, &ev, &FeatureConfig::default()).unwrap();
        println!("features {:?} {}", t.elapsed(), f.len());
        let _ = columns::VALUE;
    }
}
