//! The forecasts behind the predictive policies, each made at a step from the demand before it.
//!
//! - [`ProfileReference`]: the `profile` reference, computed here from its definition.
//! - [`PredictorForecaster`]: a [`Predictor`] from the predictor crate (seasonal naive, the
//!   fitted baseline, the event-aware model, the LLM), refitted on a schedule.
//!
//! A forecast at step `i` sees only a copy of the demand before step `i`, so no forecaster can
//! look ahead whatever it does inside. The statistical models work on 5-minute buckets and
//! read only complete ones: their forecast for a given time does not change until the next
//! bucket completes, so one forecast per bucket serves every step inside it (the numbers are
//! the same as asking at each step, at a fifth of the cost).

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource, ManualClock, ScheduledEvent, TimeSeries, UpliftTable};
use prescale_features::{UpliftConfig, uplift_table};
use prescale_predictor::llm::{LlmConfig, LlmPredictor};
use prescale_predictor::{FitConfig, PredictError, PredictRequest, Predictor, SeasonalNaive, fit};

use crate::HarnessError;

/// Days of history handed to a statistical predictor: its profile looks back 28 days and its
/// level warms up on 2 more; older points change nothing.
const HISTORY_DAYS: i64 = 35;
/// The statistical models' bucket (they sum finer steps into it).
const MODEL_BUCKET_SECS: i64 = 300;
/// Days the `profile` reference averages.
const PROFILE_DAYS: usize = 7;
/// The `profile` reference's fixed headroom.
const PROFILE_HEADROOM: f64 = 1.3;

/// The demand grid the forecasters read, with what they are asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemandView<'a> {
    /// The whole trace; forecasters copy only the part before their origin.
    pub demand: &'a TimeSeries,
    /// Steps every forecast covers from its origin.
    pub horizon_steps: usize,
}

impl DemandView<'_> {
    fn step_secs(&self) -> i64 {
        i64::from(self.demand.step_secs())
    }

    /// Steps per model bucket: a forecast made at the first step of a bucket serves the bucket.
    fn steps_per_bucket(&self) -> usize {
        let step = self.step_secs();
        if MODEL_BUCKET_SECS % step == 0 { (MODEL_BUCKET_SECS / step) as usize } else { 1 }
    }

    /// The demand before step `i`, from a bucket-aligned point at most [`HISTORY_DAYS`] back.
    fn history_before(&self, i: usize) -> TimeSeries {
        let window = (HISTORY_DAYS * 86_400 / self.step_secs()) as usize;
        let per = self.steps_per_bucket();
        let from = i.saturating_sub(window) / per * per;
        let end = i.min(self.demand.len());
        self.demand.window(self.demand.timestamp(from.min(end)), self.demand.timestamp(end))
    }
}

/// Something that forecasts demand from a step's start, using only the demand before it.
pub(crate) trait Forecaster {
    /// The forecast for step `i` over at least the view's horizon, or `None` when it failed.
    async fn forecast(&mut self, i: usize) -> Option<Arc<Forecast>>;

    /// Forecasts that failed (the step then holds its capacity or follows the reactive floor).
    fn failures(&self) -> u64;

    /// Refits that failed (the previous model kept answering).
    fn refit_failures(&self) -> u64 {
        0
    }
}

/// The `profile` reference: per step, the mean of the same time of day over the last 7 days,
/// times `(mean of the last hour + 1) / (mean of the same hour over the last 7 days + 1)`;
/// `p90 = 1.3 x p50` drives sizing. Missing points are skipped, never read as zero.
pub(crate) struct ProfileReference<'a> {
    view: DemandView<'a>,
    steps_per_day: usize,
    hour_steps: usize,
    failures: u64,
}

impl<'a> ProfileReference<'a> {
    pub fn new(view: DemandView<'a>) -> Self {
        let step = view.step_secs();
        Self { view, steps_per_day: (86_400 / step) as usize, hour_steps: ((3600 / step) as usize).max(1), failures: 0 }
    }

    /// Mean of the present values at `index - d * day` for d = 1..=7 (all before the origin).
    fn same_time(&self, values: &[Option<f64>], index: usize, visible: usize) -> Option<f64> {
        mean(
            (1..=PROFILE_DAYS)
                .filter_map(|d| index.checked_sub(d * self.steps_per_day))
                .filter(|&j| j < visible)
                .filter_map(|j| values[j]),
        )
    }

    /// The reference's p50 for steps `i..i + horizon`, from the demand before `i`.
    pub fn p50(&self, i: usize, horizon: usize) -> Option<Vec<f64>> {
        let values = self.view.demand.values();
        let visible = i.min(values.len());
        let hour = visible.saturating_sub(self.hour_steps)..visible;
        let last_hour = mean(values[hour.clone()].iter().flatten().copied())?;
        let same_hour = mean(hour.flat_map(|j| {
            (1..=PROFILE_DAYS).filter_map(move |d| j.checked_sub(d * self.steps_per_day)).filter_map(|k| values[k])
        }))
        .unwrap_or(last_hour);
        let level = (last_hour + 1.0) / (same_hour + 1.0);
        Some((i..i + horizon).map(|j| self.same_time(values, j, visible).map_or(last_hour, |p| p * level)).collect())
    }
}

impl Forecaster for ProfileReference<'_> {
    async fn forecast(&mut self, i: usize) -> Option<Arc<Forecast>> {
        let Some(p50) = self.p50(i, self.view.horizon_steps) else {
            self.failures += 1;
            return None;
        };
        let demand = self.view.demand;
        Some(Arc::new(Forecast {
            start: demand.timestamp(i),
            step_secs: demand.step_secs(),
            points: p50.iter().map(|&p| ForecastPoint { p50: p, p90: p * PROFILE_HEADROOM }).collect(),
            baseline: Vec::new(),
            source: ForecastSource::Statistical,
            explanation: "profile reference: 7-day same-time mean rescaled by the last hour, x1.3".into(),
        }))
    }

    fn failures(&self) -> u64 {
        self.failures
    }
}

/// Mean of the values, `None` when there are none.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// A predictor whose implementation is replaced at each refit, so that a wrapper built once
/// (the LLM predictor, with its cache and circuit breaker) always sees the latest model.
struct Swappable {
    source: ForecastSource,
    current: RwLock<Arc<dyn Predictor>>,
}

impl Swappable {
    fn new(predictor: Arc<dyn Predictor>) -> Self {
        Self { source: predictor.source(), current: RwLock::new(predictor) }
    }

    fn replace(&self, predictor: Arc<dyn Predictor>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = predictor;
    }
}

#[async_trait]
impl Predictor for Swappable {
    fn source(&self) -> ForecastSource {
        self.source.clone()
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        current.predict(request).await
    }
}

/// What a [`PredictorForecaster`] fits, and how it answers.
enum Kind {
    /// Daily seasonal naive, no events, nothing to fit.
    SeasonalNaive,
    /// The seasonal exponential-smoothing baseline, no events.
    HoltWinters,
    /// Baseline + events + uplift learning, optionally through the LLM.
    Prescale {
        /// The calendar (announced in advance, so known at every step).
        events: Vec<ScheduledEvent>,
        /// The LLM predictor, when configured.
        llm: Option<Box<LlmParts>>,
    },
}

/// The LLM predictor and the swappable parts it was built on.
struct LlmParts {
    predictor: LlmPredictor,
    baseline: Arc<Swappable>,
    fallback: Arc<Swappable>,
    clock: ManualClock,
}

/// A predictor-crate forecaster, refitted every `refit_every` of trace time from the demand
/// before the refit, asked once per model bucket.
pub(crate) struct PredictorForecaster<'a> {
    view: DemandView<'a>,
    kind: Kind,
    /// What answers when no LLM is configured: seasonal naive, the model, or the event-aware model.
    predictor: Arc<dyn Predictor>,
    uplift: UpliftTable,
    refit_every: Duration,
    next_refit: DateTime<Utc>,
    /// The last forecast, keyed by the bucket it was made in and the fit it came from.
    cache: Option<(usize, u64, Arc<Forecast>)>,
    fits: u64,
    failures: u64,
    refit_failures: u64,
}

impl<'a> PredictorForecaster<'a> {
    /// Daily seasonal naive: what a tool that repeats yesterday does.
    pub fn seasonal_naive(view: DemandView<'a>) -> Self {
        Self::with(view, Kind::SeasonalNaive, Duration::zero())
    }

    /// The baseline alone, first fitted on the demand before step `first`.
    pub fn holt_winters(view: DemandView<'a>, first: usize, refit_every: Duration) -> Result<Self, HarnessError> {
        let mut me = Self::with(view, Kind::HoltWinters, refit_every);
        me.refit(first).map_err(|source| fit_error("holt-winters", view, first, source))?;
        Ok(me)
    }

    /// The full product, first fitted on the demand before step `first`; with `llm`, the LLM
    /// predictor adjusts the baseline and the event-aware model is its fallback.
    pub fn prescale(
        view: DemandView<'a>,
        events: Vec<ScheduledEvent>,
        first: usize,
        refit_every: Duration,
        llm: Option<LlmConfig>,
    ) -> Result<Self, HarnessError> {
        let mut me = Self::with(view, Kind::Prescale { events, llm: None }, refit_every);
        let model = me.refit(first).map_err(|source| fit_error("prescale", view, first, source))?;
        if let (Some(config), Some(model)) = (llm, model) {
            let baseline = Arc::new(Swappable::new(model));
            let fallback = Arc::new(Swappable::new(me.predictor.clone()));
            let clock = ManualClock::new(view.demand.timestamp(first));
            let predictor = LlmPredictor::new(config, baseline.clone(), fallback.clone(), Arc::new(clock.clone()))
                .map_err(HarnessError::Llm)?;
            if let Kind::Prescale { llm, .. } = &mut me.kind {
                *llm = Some(Box::new(LlmParts { predictor, baseline, fallback, clock }));
            }
        }
        Ok(me)
    }

    fn with(view: DemandView<'a>, kind: Kind, refit_every: Duration) -> Self {
        Self {
            view,
            kind,
            predictor: Arc::new(SeasonalNaive::daily()),
            uplift: UpliftTable::default(),
            refit_every,
            next_refit: DateTime::<Utc>::MAX_UTC,
            cache: None,
            fits: 0,
            failures: 0,
            refit_failures: 0,
        }
    }

    /// Fit on the demand before step `i` (all of it: the uplift table measures every past event)
    /// and schedule the next refit. Returns the fitted baseline, `None` for seasonal naive.
    fn refit(&mut self, i: usize) -> Result<Option<Arc<dyn Predictor>>, PredictError> {
        let at = self.view.demand.timestamp(i);
        self.next_refit = at + self.refit_every;
        let history = self.view.demand.before(at);
        let (model, predictor): (Arc<dyn Predictor>, Arc<dyn Predictor>) = match &self.kind {
            Kind::SeasonalNaive => return Ok(None),
            Kind::HoltWinters => {
                let model: Arc<dyn Predictor> =
                    Arc::new(fit(&history, &[], &UpliftTable::default(), &replay_fit_config())?);
                (model.clone(), model)
            }
            Kind::Prescale { events, .. } => {
                let measured = uplift_table(&history, events, &UpliftConfig::default())
                    .map_err(|e| PredictError::InvalidRequest(format!("uplift table: {e}")))?;
                let fitted = Arc::new(fit(&history, events, &measured, &replay_fit_config())?);
                // The model's table (the uplifts re-measured against its own baseline) and shapes.
                self.uplift = fitted.uplift().clone();
                let event_aware: Arc<dyn Predictor> = Arc::new(fitted.event_aware());
                let model: Arc<dyn Predictor> = fitted;
                (model, event_aware)
            }
        };
        if let Kind::Prescale { llm: Some(parts), .. } = &self.kind {
            parts.baseline.replace(model.clone());
            parts.fallback.replace(predictor.clone());
        }
        self.predictor = predictor;
        self.fits += 1;
        Ok(Some(model))
    }
}

/// How the replay fits: the defaults, without the model's own backtest (nothing here reads
/// it, and it would double the cost of every refit).
fn replay_fit_config() -> FitConfig {
    FitConfig { self_backtest: false, ..FitConfig::default() }
}

/// The error of a first fit, naming the policy and the time.
fn fit_error(policy: &'static str, view: DemandView<'_>, i: usize, source: PredictError) -> HarnessError {
    HarnessError::Fit { policy, at: view.demand.timestamp(i).to_rfc3339(), source }
}

impl Forecaster for PredictorForecaster<'_> {
    async fn forecast(&mut self, i: usize) -> Option<Arc<Forecast>> {
        let at = self.view.demand.timestamp(i);
        if at >= self.next_refit && self.refit(i).is_err() {
            // The previous model keeps answering; the next refit is already scheduled.
            self.refit_failures += 1;
        }
        let bucket = i / self.view.steps_per_bucket();
        let llm = match &self.kind {
            Kind::Prescale { llm: Some(parts), .. } => Some(parts),
            _ => None,
        };
        if let Some((cached_bucket, fit, forecast)) = &self.cache
            && *cached_bucket == bucket
            && *fit == self.fits
            && forecast.end() >= at + Duration::seconds(self.view.step_secs() * self.view.horizon_steps as i64)
        {
            return Some(forecast.clone());
        }
        let events = match &self.kind {
            Kind::Prescale { events, .. } => events.clone(),
            _ => Vec::new(),
        };
        let request = PredictRequest {
            history: self.view.history_before(i),
            events,
            uplift: self.uplift.clone(),
            at,
            horizon_steps: self.view.horizon_steps + self.view.steps_per_bucket(),
        };
        let answer = match llm {
            Some(parts) => {
                parts.clock.set(at);
                parts.predictor.predict(&request).await
            }
            None => self.predictor.predict(&request).await,
        };
        match answer {
            Ok(forecast) => {
                let forecast = Arc::new(forecast);
                self.cache = Some((bucket, self.fits, forecast.clone()));
                Some(forecast)
            }
            Err(_) => {
                self.failures += 1;
                None
            }
        }
    }

    fn failures(&self) -> u64 {
        self.failures
    }

    fn refit_failures(&self) -> u64 {
        self.refit_failures
    }
}
