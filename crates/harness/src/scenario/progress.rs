//! Live progress on the terminal (indicatif): one bar per policy run over scenario minutes,
//! with the phase, desired/ready replicas, offered rate, p95 and errors of the last window.
//! Hidden when stderr is not a terminal or when progress is switched off.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the bar shows at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Status<'a> {
    /// Scenario seconds.
    pub t_s: f64,
    /// Load phase.
    pub phase: &'a str,
    /// Desired replicas.
    pub desired: u32,
    /// Ready replicas.
    pub ready: u32,
    /// Offered rate of the last full window, per wall second.
    pub rps: f64,
    /// p95 of the last full window, ms.
    pub p95_ms: Option<f64>,
    /// Errors so far.
    pub errors: u64,
}

/// One policy's progress bar.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `policy` over `end_s` scenario seconds; hidden unless `visible`.
    pub fn new(visible: bool, policy: &str, end_s: f64) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some((end_s / 60.0).ceil() as u64),
            if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        let style = ProgressStyle::with_template("{prefix:>15} [{bar:24}] min {pos:>3}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(policy.to_string());
        bar.set_message("setting up");
        Self { bar }
    }

    /// Say what is being set up.
    pub fn note(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }

    /// Show `status`.
    pub fn update(&self, s: &Status<'_>) {
        self.bar.set_position((s.t_s.max(0.0) / 60.0) as u64);
        let p95 = s.p95_ms.map_or_else(|| "-".to_string(), |p| format!("{p:.0} ms"));
        self.bar.set_message(format!(
            "{:<9} replicas {:>2}/{:<2} {:>4.0} rps  p95 {:>7}  errors {}",
            s.phase, s.desired, s.ready, s.rps, p95, s.errors
        ));
    }

    /// Leave the bar with a closing line.
    pub fn finish(&self, message: &str) {
        self.bar.finish_with_message(message.to_string());
    }
}
