//! Criterion benchmark of the backtest simulator: a 28-day 1-minute trace through all six
//! policies (LLM excluded), the target being under 10 s on 2 cores.
//!
//! Two real traces: NASA July 1995 (27.4 days, its event calendar) and the last 28 days of
//! the World Cup 1998 trace (1998-05-30 .. 06-26, the match calendar). Each runs with the
//! defaults (7 days of warm-up, refits every 6 h), and each policy alone as well, so that a
//! regression points at its policy. Run with `cargo bench --workspace --bench backtest`.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::Duration;
use criterion::{Criterion, criterion_group, criterion_main};
use prescale_harness::backtest::{BacktestConfig, PolicyKind, Trace, run};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces").join(name)
}

/// The traces the benchmark replays, by name.
fn traces() -> Vec<(&'static str, Trace)> {
    let step = Duration::minutes(1);
    let nasa =
        Trace::load(&data("nasa-http-1995-07.per-minute.csv"), Some(&data("nasa-http-1995-07.events.csv")), step)
            .unwrap_or_else(|e| panic!("NASA trace: {e}"));
    let mut worldcup = Trace::load(
        &data("worldcup98-1998-04-30_06-26.per-minute.csv"),
        Some(&data("worldcup98-1998-04-30_06-26.events.csv")),
        step,
    )
    .unwrap_or_else(|e| panic!("World Cup trace: {e}"));
    let end = worldcup.demand.end();
    worldcup.demand = worldcup.demand.window(end - Duration::days(28), end);
    vec![("nasa-1995-07-27.4d", nasa), ("worldcup-1998-28d", worldcup)]
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("backtest");
    // One iteration takes seconds: the fewest samples criterion allows.
    group.sample_size(10);
    group.measurement_time(StdDuration::from_secs(30));
    group.warm_up_time(StdDuration::from_secs(1));
    for (name, trace) in traces() {
        let all = BacktestConfig::default();
        group.bench_function(format!("{name}/all-six"), |b| {
            b.iter(|| black_box(run(&trace, &all).unwrap_or_else(|e| panic!("{name}: {e}"))))
        });
        for kind in PolicyKind::ALL {
            // The oracle is always replayed too (it is every ratio's denominator).
            let one = BacktestConfig { policies: vec![kind], ..BacktestConfig::default() };
            group.bench_function(format!("{name}/{kind}"), |b| {
                b.iter(|| black_box(run(&trace, &one).unwrap_or_else(|e| panic!("{name} {kind}: {e}"))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, simulator);
criterion_main!(benches);
