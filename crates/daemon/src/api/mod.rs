//! The Prediction API: JSON over HTTP with axum, paths under `/v1`, described at `/openapi.json`.
//!
//! Reads are open; requests that change state or may cost money (`POST /v1/predict` can call
//! the LLM) need the bearer token. Bodies are limited in size, and bad input gets a 4xx JSON
//! error `{"error", "field", "problem"}`.

mod auth;
mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use prescale_core::{Decision, FieldError, Forecast, ScheduledEvent, WorkloadRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use auth::{BearerToken, read_secret};
pub use error::ApiError;

use crate::state::{DaemonState, EventChangeError, Planner, WorkloadEntry};

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
#[derive(Clone)]
struct Api {
    state: Arc<DaemonState>,
    planner: Arc<dyn Planner>,
    token: BearerToken,
}

/// The API's router. `max_body_bytes` bounds every request body.
pub fn router(state: Arc<DaemonState>, planner: Arc<dyn Planner>, token: BearerToken, max_body_bytes: usize) -> Router {
    let api = Api { state, planner, token };
    Router::new()
        .route("/v1/workloads", get(list_workloads))
        .route("/v1/workloads/{namespace}/{name}/forecast", get(forecast))
        .route("/v1/workloads/{namespace}/{name}/events", get(list_events).post(add_event))
        .route("/v1/workloads/{namespace}/{name}/events/{id}", delete(delete_event))
        .route("/v1/predict", post(predict))
        .route("/v1/decisions", get(decisions))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such path; see /openapi.json") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}

impl Api {
    fn entry(&self, namespace: &str, name: &str) -> Result<&Arc<WorkloadEntry>, ApiError> {
        self.state
            .workload(&WorkloadRef::new(namespace, name))
            .ok_or_else(|| ApiError::unknown_workload(namespace, name))
    }
}

/// The body, or a JSON error for one that is too large or unreadable.
fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    bytes.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "request body too large")
        } else {
            ApiError::new(status, format!("cannot read request body: {rejection}"))
        }
    })
}

/// One step of a forecast as the API shows it.
#[derive(Debug, Serialize)]
struct StepView {
    t: chrono::DateTime<chrono::Utc>,
    p50: f64,
    p90: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<f64>,
}

/// A forecast with its plan, as the API shows it.
#[derive(Debug, Serialize)]
struct ForecastView {
    workload: WorkloadRef,
    source: String,
    explanation: String,
    step_secs: u32,
    steps: Vec<StepView>,
    planned_replicas: u32,
    decision: Decision,
}

fn forecast_view(workload: &WorkloadRef, forecast: &Forecast, decision: &Decision) -> ForecastView {
    let steps = forecast
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| StepView {
            t: forecast.timestamp(i),
            p50: p.p50,
            p90: p.p90,
            baseline: forecast.baseline.get(i).copied(),
        })
        .collect();
    ForecastView {
        workload: workload.clone(),
        source: forecast.source.to_string(),
        explanation: forecast.explanation.clone(),
        step_secs: forecast.step_secs,
        steps,
        planned_replicas: decision.target,
        decision: decision.clone(),
    }
}

async fn list_workloads(State(api): State<Api>) -> Json<serde_json::Value> {
    let workloads: Vec<_> = api
        .state
        .workloads()
        .map(|entry| {
            let status = entry.status();
            let c = &entry.config;
            json!({
                "namespace": c.workload.namespace,
                "name": c.workload.name,
                "mode": c.mode,
                "predictor": c.predictor,
                "min_replicas": c.min_replicas,
                "max_replicas": c.max_replicas,
                "current_replicas": status.replicas.map(|r| r.spec),
                "ready_replicas": status.replicas.map(|r| r.ready),
                "hpa_floor": status.replicas.and_then(|r| r.hpa_floor),
                "planned_replicas": status.decision.as_ref().map(|d| d.target),
                "last_decision": status.decision,
                "explanation": status.decision.as_ref().map(|d| d.explanation.clone()),
                "forecast_source": status.forecast.as_ref().map(|f| f.source.to_string()),
                "resources": status.resources,
                "last_error": status.last_error,
                "updated_at": status.updated_at,
            })
        })
        .collect();
    Json(json!({ "workloads": workloads }))
}

async fn forecast(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let entry = api.entry(&namespace, &name)?;
    let status = entry.status();
    match (&status.forecast, &status.decision) {
        (Some(f), Some(d)) => Ok(Json(forecast_view(&entry.config.workload, f, d)).into_response()),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            match status.last_error {
                Some(e) => format!("no forecast for {namespace}/{name} yet: {e}"),
                None => format!("no forecast for {namespace}/{name} yet: the first tick has not finished"),
            },
        )),
    }
}

/// The body of `POST /v1/predict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    namespace: String,
    name: String,
    #[serde(default)]
    events: Vec<ScheduledEvent>,
}

async fn predict(
    State(api): State<Api>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    api.token.check(&headers)?;
    let bytes = body(bytes)?;
    let request: PredictBody = error::parse_json(&bytes)?;
    let entry = api.entry(&request.namespace, &request.name)?;
    let mut problems = Vec::new();
    for (i, event) in request.events.iter().enumerate() {
        if let Err(errors) = event.validate() {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| FieldError { field: format!("events[{i}].{}", e.field), problem: e.problem }),
            );
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let workload = entry.config.workload.clone();
    let plan = api
        .planner
        .plan(&workload, request.events)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot forecast {workload}: {e}")))?;
    Ok(Json(forecast_view(&workload, &plan.forecast, &plan.decision)).into_response())
}

async fn list_events(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = api.entry(&namespace, &name)?;
    let mut events = Vec::new();
    for (origin, list) in [("file", entry.file_events()), ("api", entry.api_events().await)] {
        for event in list {
            let mut value = serde_json::to_value(&event).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("origin".into(), origin.into());
            }
            events.push(value);
        }
    }
    Ok(Json(json!({ "workload": entry.config.workload, "events": events })))
}

async fn add_event(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    api.token.check(&headers)?;
    let entry = api.entry(&namespace, &name)?;
    let bytes = body(bytes)?;
    let event: ScheduledEvent = error::parse_json(&bytes)?;
    event.validate().map_err(ApiError::invalid)?;
    let id = event.id.clone();
    match api.state.add_event(entry, event.clone()).await {
        Ok(()) => {
            tracing::info!(workload = %entry.config.workload, event = %id, "event scheduled");
            let location = format!("/v1/workloads/{namespace}/{name}/events/{id}");
            Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(event)).into_response())
        }
        Err(EventChangeError::Duplicate { from_file }) => {
            let problem = if from_file {
                "an event with this id is defined in a calendar file"
            } else {
                "an event with this id exists already; delete it first"
            };
            let mut e = ApiError::invalid(vec![FieldError { field: "id".into(), problem: problem.into() }]);
            e = e.with_status(StatusCode::CONFLICT);
            Err(e)
        }
        Err(EventChangeError::Store(e)) => {
            tracing::error!(error = %e, "event store failed");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the event was not stored: {e}")))
        }
        Err(EventChangeError::NotFound { .. }) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unexpected")),
    }
}

async fn delete_event(
    State(api): State<Api>,
    Path((namespace, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.token.check(&headers)?;
    let entry = api.entry(&namespace, &name)?;
    match api.state.remove_event(entry, &id).await {
        Ok(_) => {
            tracing::info!(workload = %entry.config.workload, event = %id, "event deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(EventChangeError::NotFound { in_file: true }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("event {id:?} is defined in a calendar file; remove it there"),
        )),
        Err(EventChangeError::NotFound { in_file: false }) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("no event {id:?} for {namespace}/{name}")))
        }
        Err(EventChangeError::Store(e)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the event was not deleted: {e}")))
        }
        Err(EventChangeError::Duplicate { .. }) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unexpected")),
    }
}

/// Query of `GET /v1/decisions`.
#[derive(Debug, Deserialize)]
struct DecisionsQuery {
    limit: Option<usize>,
}

async fn decisions(
    State(api): State<Api>,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(Some("limit".into()), e.body_text()))?;
    let all = api.state.decisions();
    let limit = query.limit.unwrap_or(all.len());
    let newest: Vec<_> = all.into_iter().rev().take(limit).collect();
    Ok(Json(json!({ "decisions": newest })))
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        api.state.metrics().encode(),
    )
}

async fn readyz(State(api): State<Api>) -> Response {
    if api.state.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not ready: the first fit and tick have not finished")
            .into_response()
    }
}
