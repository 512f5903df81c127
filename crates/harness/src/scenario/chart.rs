//! `report.svg`: one column per policy with three charts over scenario minutes: offered and
//! predicted load, desired and Ready replicas (with what the surge's peak needs), and p95
//! latency (with the SLO). Axes are shared across policies so the columns compare at a glance.

use plotters::prelude::*;

use super::report::RunReport;

/// Width of one policy's column, pixels.
const COLUMN_W: u32 = 560;
/// Height of one chart, pixels.
const CHART_H: u32 = 230;

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing the chart: {e}")
}

/// A series' points, skipping the rows where `value` is null.
fn points(run: &RunReport, value: impl Fn(&super::report::TimelineRow) -> Option<f64>) -> Vec<(f64, f64)> {
    run.timeline.iter().filter_map(|r| value(r).map(|v| (r.t_s / 60.0, v))).collect()
}

/// Draw the runs into an SVG document. `needed` is the replicas the peak needs at 100%.
pub fn svg(runs: &[RunReport], needed: u32, slo_p95_ms: f64) -> Result<String, String> {
    let mut out = String::new();
    {
        let columns = runs.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut out, (COLUMN_W * columns, CHART_H * 3 + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (title, body) = root.split_vertically(40);
        title
            .draw_text(
                "prescale seed scenario: load, replicas and p95 latency per policy",
                &TextStyle::from(("sans-serif", 20).into_font()).color(&BLACK),
                (10, 10),
            )
            .map_err(err)?;
        let end_min =
            runs.iter().filter_map(|r| r.timeline.last()).map(|r| r.t_s / 60.0 + 1.0 / 6.0).fold(1.0, f64::max);
        let max_rps = runs
            .iter()
            .flat_map(|r| r.timeline.iter())
            .map(|r| r.offered_rps.max(r.predicted_rps.unwrap_or(0.0)))
            .fold(1.0, f64::max)
            * 1.1;
        let max_replicas =
            runs.iter().flat_map(|r| r.timeline.iter()).map(|r| r.desired.max(r.ready)).max().unwrap_or(1).max(needed)
                as f64
                * 1.15;
        let max_p95 = runs
            .iter()
            .flat_map(|r| r.timeline.iter())
            .filter_map(|r| r.p95_ms)
            .fold(slo_p95_ms * 1.5, f64::max)
            .min(slo_p95_ms * 8.0);
        let cells = body.split_evenly((3, columns as usize));
        for (col, run) in runs.iter().enumerate() {
            let at = |row: usize| &cells[row * columns as usize + col];
            let surge = |chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<_, _>>, top: f64| {
                let band = [(run.surge_start_s / 60.0, 0.0), (run.surge_end_s / 60.0, top)];
                chart
                    .draw_series(std::iter::once(Rectangle::new(band, RGBColor(255, 236, 200).filled())))
                    .map(|_| ())
                    .map_err(err)
            };

            let mut load = ChartBuilder::on(at(0))
                .caption(format!("{}: requests/s", run.policy), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..end_min, 0.0..max_rps)
                .map_err(err)?;
            load.configure_mesh()
                .x_desc("scenario minute")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .light_line_style(WHITE)
                .draw()
                .map_err(err)?;
            surge(&mut load, max_rps)?;
            load.draw_series(LineSeries::new(points(run, |r| Some(r.offered_rps)), BLUE.stroke_width(2)))
                .map_err(err)?
                .label("offered")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
            let predicted = points(run, |r| r.predicted_rps);
            if !predicted.is_empty() {
                load.draw_series(LineSeries::new(predicted, RGBColor(230, 120, 0).stroke_width(2)))
                    .map_err(err)?
                    .label("predicted (p50)")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(230, 120, 0)));
            }
            load.configure_series_labels()
                .position(SeriesLabelPosition::MiddleRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()
                .map_err(err)?;

            let mut replicas = ChartBuilder::on(at(1))
                .caption(format!("{}: replicas", run.policy), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..end_min, 0.0..max_replicas)
                .map_err(err)?;
            replicas
                .configure_mesh()
                .x_desc("scenario minute")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .light_line_style(WHITE)
                .draw()
                .map_err(err)?;
            surge(&mut replicas, max_replicas)?;
            replicas
                .draw_series(LineSeries::new(
                    vec![(0.0, f64::from(needed)), (end_min, f64::from(needed))],
                    BLACK.mix(0.4),
                ))
                .map_err(err)?
                .label("needed at peak (100%)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
            replicas
                .draw_series(LineSeries::new(points(run, |r| Some(f64::from(r.desired))), RED.stroke_width(2)))
                .map_err(err)?
                .label("desired")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
            replicas
                .draw_series(LineSeries::new(
                    points(run, |r| Some(f64::from(r.ready))),
                    RGBColor(0, 150, 60).stroke_width(2),
                ))
                .map_err(err)?
                .label("ready")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(0, 150, 60)));
            replicas
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()
                .map_err(err)?;

            let mut latency = ChartBuilder::on(at(2))
                .caption(format!("{}: p95 latency (ms)", run.policy), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..end_min, 0.0..max_p95)
                .map_err(err)?;
            latency
                .configure_mesh()
                .x_desc("scenario minute")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .light_line_style(WHITE)
                .draw()
                .map_err(err)?;
            surge(&mut latency, max_p95)?;
            latency
                .draw_series(LineSeries::new(vec![(0.0, slo_p95_ms), (end_min, slo_p95_ms)], BLACK.mix(0.4)))
                .map_err(err)?
                .label("SLO")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
            latency
                .draw_series(LineSeries::new(
                    points(run, |r| r.p95_ms.map(|p| p.min(max_p95))),
                    MAGENTA.stroke_width(2),
                ))
                .map_err(err)?
                .label("p95")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], MAGENTA));
            latency
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::report::{LatencyStats, MeanMax, TimelineRow};

    #[test]
    fn draws_one_column_per_policy() {
        let timeline: Vec<TimelineRow> = (0..60)
            .map(|k| TimelineRow {
                t_s: f64::from(k) * 10.0,
                offered_rps: if k > 20 { 400.0 } else { 100.0 },
                predicted_rps: Some(100.0),
                desired: 3,
                ready: 3,
                p95_ms: Some(50.0),
                errors: 0,
                cpu: Some(0.5),
            })
            .collect();
        let run = |policy: &str| RunReport {
            policy: policy.into(),
            predictor: None,
            trigger_s: None,
            surge_start_s: 200.0,
            surge_end_s: 400.0,
            scale_up_started_s: None,
            scale_up_ready_s: None,
            lead_s: None,
            baseline_replicas: 3,
            peak_replicas: 3,
            final_replicas: 3,
            scale_down_started_s: None,
            scale_down_done_s: None,
            surge_latency_ms: LatencyStats::default(),
            surge_error_rate: 0.0,
            requests: 0,
            slo_violation_s: 0.0,
            replica_seconds: 0.0,
            cpu_utilization: MeanMax::default(),
            memory_utilization: MeanMax::default(),
            llm: None,
            timeline: Vec::clone(&timeline),
        };
        let svg = svg(&[run("prescale"), run("hpa")], 7, 250.0).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("prescale: replicas") && svg.contains("hpa: p95 latency (ms)"));
        assert!(svg.contains("predicted (p50)"));
    }
}
