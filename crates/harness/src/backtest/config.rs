//! What a backtest runs: the policies, the simulated cluster and the schedule of the models.

use chrono::Duration;
use prescale_predictor::llm::LlmConfig;

use crate::HarnessError;

/// A scaling policy the backtest can replay a trace through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// The full product: statistical baseline, events, learned uplifts (and the LLM when
    /// configured) through `provisioner::decide`.
    Prescale,
    /// The Kubernetes HPA v2 algorithm on the utilization of served load.
    Hpa,
    /// The reference: a 7-day same-time mean rescaled by the last hour, times 1.3.
    Profile,
    /// The seasonal exponential-smoothing baseline alone, without events.
    HoltWinters,
    /// Daily seasonal naive alone, without events.
    SeasonalNaive,
    /// Perfect foresight: exactly the pods each step needs at the target utilization.
    Oracle,
}

impl PolicyKind {
    /// Every policy, in the default order.
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::Prescale,
        PolicyKind::Hpa,
        PolicyKind::Profile,
        PolicyKind::HoltWinters,
        PolicyKind::SeasonalNaive,
        PolicyKind::Oracle,
    ];

    /// The policy's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Prescale => "prescale",
            PolicyKind::Hpa => "hpa",
            PolicyKind::Profile => "profile",
            PolicyKind::HoltWinters => "holt-winters",
            PolicyKind::SeasonalNaive => "seasonal-naive",
            PolicyKind::Oracle => "oracle",
        }
    }

    /// Whether the policy fits a model on the warm-up (and so needs two days of it).
    pub fn fits_a_model(self) -> bool {
        matches!(self, PolicyKind::Prescale | PolicyKind::HoltWinters)
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = HarnessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL.into_iter().find(|p| p.name() == s.trim()).ok_or_else(|| HarnessError::InvalidOption {
            option: "--policies",
            problem: format!(
                "unknown policy {s:?}; known: {}",
                PolicyKind::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

/// How much one pod serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    /// Requests per decision step one pod serves at 100% utilization.
    PerPod(f64),
    /// The capacity at which the median demand of the warm-up needs this many pods at the
    /// target utilization (the warm-up is what an operator sizing pods would have seen).
    PodsAtMedian(u32),
}

/// Everything a backtest needs besides the trace. [`Default`] holds the documented defaults.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Decision step; a coarser trace step wins.
    pub step: Duration,
    /// Pod capacity.
    pub capacity: Capacity,
    /// Utilization the policies plan for (0.7 = 70%); also the HPA's target.
    pub target_utilization: f64,
    /// Time from ordering a pod until it is Ready.
    pub startup: Duration,
    /// Lead on top of the startup time for the predictive policies.
    pub safety_buffer: Duration,
    /// Fewest replicas any policy runs.
    pub min_replicas: u32,
    /// Most replicas any policy runs.
    pub max_replicas: u32,
    /// Time from the trace's start used only for fitting; scoring starts after it.
    pub warmup: Duration,
    /// How often models are refitted (trace time), each time from data before the refit.
    pub refit_every: Duration,
    /// Scale-down stabilization window of the predictive policies.
    pub scale_down_stabilization: Duration,
    /// The policies to replay, in report order.
    pub policies: Vec<PolicyKind>,
    /// The LLM for `prescale`, when configured.
    pub llm: Option<LlmConfig>,
}

impl Default for BacktestConfig {
    /// 1-minute steps, 4 pods at the median, 70% target, 3 min startup, 30 s buffer, 1-1000
    /// replicas, 7 days of warm-up, refits every 6 h, 5 min stabilization, all six policies.
    fn default() -> Self {
        Self {
            step: Duration::minutes(1),
            capacity: Capacity::PodsAtMedian(4),
            target_utilization: 0.7,
            startup: Duration::minutes(3),
            safety_buffer: Duration::seconds(30),
            min_replicas: 1,
            max_replicas: 1000,
            warmup: Duration::days(7),
            refit_every: Duration::hours(6),
            scale_down_stabilization: Duration::minutes(5),
            policies: PolicyKind::ALL.to_vec(),
            llm: None,
        }
    }
}

impl BacktestConfig {
    /// Checks every setting, naming the first that cannot work.
    pub fn validate(&self) -> Result<(), HarnessError> {
        let bad = |option, problem: String| Err(HarnessError::InvalidOption { option, problem });
        if self.step <= Duration::zero() || Duration::days(1).num_seconds() % self.step.num_seconds().max(1) != 0 {
            return bad("--step", format!("must be positive and divide a day, got {} s", self.step.num_seconds()));
        }
        match self.capacity {
            Capacity::PerPod(c) if !(c.is_finite() && c > 0.0) => {
                return bad("--capacity-per-pod", format!("must be a positive number, got {c}"));
            }
            Capacity::PodsAtMedian(0) => return bad("--pods-at-median", "must be at least 1, got 0".into()),
            _ => {}
        }
        let u = self.target_utilization;
        if !(u.is_finite() && u > 0.0 && u <= 1.0) {
            return bad("--target-utilization", format!("must be in (0, 1], got {u}"));
        }
        for (option, d) in [("--startup", self.startup), ("--safety-buffer", self.safety_buffer)] {
            if d < Duration::zero() {
                return bad(option, format!("must not be negative, got {} s", d.num_seconds()));
            }
        }
        if self.max_replicas == 0 || self.min_replicas > self.max_replicas {
            return bad(
                "--min/--max",
                format!("need 0 <= min <= max and max >= 1, got {}..{}", self.min_replicas, self.max_replicas),
            );
        }
        if self.warmup < Duration::zero() {
            return bad("--warmup", format!("must not be negative, got {} s", self.warmup.num_seconds()));
        }
        if self.policies.iter().any(|p| p.fits_a_model()) && self.warmup < Duration::days(2) {
            return bad(
                "--warmup",
                format!("prescale and holt-winters fit on at least 2 days; got {}", show(self.warmup)),
            );
        }
        if self.refit_every <= Duration::zero() {
            return bad("--refit-every", "must be positive".into());
        }
        if self.scale_down_stabilization < Duration::zero() {
            return bad("--scale-down-stabilization", "must not be negative".into());
        }
        if self.policies.is_empty() {
            return bad("--policies", "name at least one policy".into());
        }
        Ok(())
    }
}

/// Parse a duration written as `90s`, `3m`, `6h`, `7d` or a sum such as `40d2h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let std = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 90s, 3m, 6h, 7d or 40d2h30m ({e})"))?;
    Duration::from_std(std).map_err(|_| format!("{text:?} is too long"))
}

/// A duration for humans: `3m`, `7d`, `40d2h30m`.
pub fn show(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = if secs < 0 { "-".to_string() } else { String::new() };
    let mut rest = secs.abs();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_sums() {
        assert_eq!(parse_duration("3m").unwrap(), Duration::minutes(3));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("6h").unwrap(), Duration::hours(6));
        assert_eq!(parse_duration("40d2h30m").unwrap(), Duration::days(40) + Duration::minutes(150));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert_eq!(show(Duration::days(40) + Duration::minutes(150)), "40d2h30m");
        assert_eq!(show(Duration::seconds(90)), "1m30s");
    }

    #[test]
    fn policies_parse_by_name() {
        assert_eq!("holt-winters".parse::<PolicyKind>().unwrap(), PolicyKind::HoltWinters);
        let err = "magic".parse::<PolicyKind>().unwrap_err().to_string();
        assert!(err.contains("--policies") && err.contains("seasonal-naive"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_option() {
        let cases = [
            (BacktestConfig { target_utilization: 1.5, ..Default::default() }, "--target-utilization"),
            (BacktestConfig { warmup: Duration::hours(12), ..Default::default() }, "--warmup"),
            (BacktestConfig { capacity: Capacity::PodsAtMedian(0), ..Default::default() }, "--pods-at-median"),
            (BacktestConfig { min_replicas: 5, max_replicas: 2, ..Default::default() }, "--min/--max"),
            (BacktestConfig { step: Duration::seconds(7), ..Default::default() }, "--step"),
            (BacktestConfig { policies: vec![], ..Default::default() }, "--policies"),
        ];
        for (config, option) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(option), "{err} should name {option}");
        }
        // A short warm-up is fine for policies that fit nothing.
        let reactive = BacktestConfig {
            warmup: Duration::hours(12),
            policies: vec![PolicyKind::Hpa, PolicyKind::Oracle],
            ..Default::default()
        };
        reactive.validate().unwrap();
    }
}
