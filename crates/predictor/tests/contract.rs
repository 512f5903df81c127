//! The shared contract suite (`contract::check_all`) run against every statistical
//! predictor of this crate, and the fitting invariants of [`prescale_predictor::fit`]:
//! fitting sees only the past, and the model survives a JSON round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

#[path = "common/traces.rs"]
mod traces;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{Forecast, ForecastSource, UpliftTable};
use prescale_predictor::contract::{check, check_all, sample_requests};
use prescale_predictor::{
    EventAware, Fallback, FitConfig, Model, PredictError, PredictRequest, Predictor, SCHEMA_VERSION, SeasonalNaive, fit,
};

/// A fake predictor that always fails, to drive the fallback combinator.
struct FailingFake;

#[async_trait]
impl Predictor for FailingFake {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, _request: &PredictRequest) -> Result<Forecast, PredictError> {
        Err(PredictError::InvalidRequest("the fake always fails".into()))
    }
}

/// A model fitted on the history of a sample request, before its origin.
fn model_for(request: &PredictRequest) -> Arc<Model> {
    let config = FitConfig { fit_time: Some(request.at), ..FitConfig::default() };
    Arc::new(fit(&request.history, &request.events, &request.uplift, &config).unwrap())
}

#[tokio::test]
async fn seasonal_naive_keeps_the_contract() {
    check_all(&SeasonalNaive::daily()).await.unwrap();
    check_all(&SeasonalNaive::weekly()).await.unwrap();
}

#[tokio::test]
async fn fitted_model_event_aware_and_fallback_keep_the_contract() {
    for (name, request) in sample_requests().unwrap() {
        let model = model_for(&request);
        check(model.as_ref(), &request).await.unwrap_or_else(|v| panic!("model on '{name}': {v}"));
        let events = EventAware::new(model.clone(), request.uplift.clone());
        let forecast = check(&events, &request).await.unwrap_or_else(|v| panic!("event-aware on '{name}': {v}"));
        assert_eq!(forecast.source, ForecastSource::StatisticalEvents);
        let fallback = Fallback::new(Arc::new(FailingFake), model.clone(), StdDuration::from_secs(5));
        let forecast = check(&fallback, &request).await.unwrap_or_else(|v| panic!("fallback on '{name}': {v}"));
        assert!(forecast.source.is_fallback(), "a failed preferred predictor is labelled: {}", forecast.source);
    }
}

fn nasa_with_fit_time() -> (prescale_core::TimeSeries, Vec<prescale_core::ScheduledEvent>, DateTime<Utc>) {
    let history = traces::load_series("nasa-http-1995-07.per-minute.csv");
    let events = traces::load_events("nasa-http-1995-07.events.csv");
    let fit_time: DateTime<Utc> = "1995-07-20T00:00:00Z".parse().unwrap();
    (history, events, fit_time)
}

#[test]
fn changing_data_after_the_fit_time_does_not_change_the_model() {
    let (history, events, fit_time) = nasa_with_fit_time();
    let uplift = traces::rough_uplift(&history, &events, fit_time);
    let config = FitConfig { fit_time: Some(fit_time), ..FitConfig::default() };
    let model = fit(&history, &events, &uplift, &config).unwrap();

    let mut future_changed = history.clone();
    let first_future = future_changed.index_at(fit_time).unwrap();
    for (i, v) in future_changed.values_mut().iter_mut().enumerate().skip(first_future) {
        // Traffic after the fit time multiplied by ten, with gaps: nothing of it may leak in.
        *v = if i % 7 == 0 { None } else { v.map(|x| x * 10.0 + 3.0) };
    }
    let again = fit(&future_changed, &events, &uplift, &config).unwrap();
    assert_eq!(model, again, "a model fitted at {fit_time} must not depend on data after it");
    assert_eq!(model.fit_range().1, fit_time);

    // And the perturbation is big enough to matter when it is visible.
    let later = FitConfig { fit_time: Some(fit_time + Duration::days(3)), ..FitConfig::default() };
    let seen = fit(&future_changed, &events, &uplift, &later).unwrap();
    let unseen = fit(&history, &events, &uplift, &later).unwrap();
    assert_ne!(seen, unseen, "the test's perturbation must change a model that sees it");
}

/// JSON equality, with numbers equal to 1e-12 relative (a float may come back one ULP off).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn model_round_trips_through_json_with_its_schema_version() {
    let (history, events, fit_time) = nasa_with_fit_time();
    let config = FitConfig { fit_time: Some(fit_time), ..FitConfig::default() };
    let model = fit(&history, &events, &UpliftTable::default(), &config).unwrap();
    let json = model.to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], serde_json::json!(SCHEMA_VERSION));
    let reloaded: serde_json::Value =
        serde_json::from_str(&Model::from_json(&json).unwrap().to_json().unwrap()).unwrap();
    assert!(same_json(&value, &reloaded), "the reloaded model differs from the saved one");
    let b = model.backtest().expect("10+ days of history are enough for the 7-day backtest");
    assert!(b.rel_mae.is_finite() && b.rel_mae > 0.0);
    assert_eq!(b.to, fit_time);
}
