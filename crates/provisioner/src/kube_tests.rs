//! Unit tests of [`KubeActuator`] against a kube `Client` over a scripted tower service: each
//! test lists the exact requests (method, path) it expects with canned answers, then checks
//! the bodies and query strings the actuator sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http_body_util::{BodyExt, Full};
use prescale_core::{Decision, ManualClock, WorkloadRef};
use serde_json::{Value, json};

use super::*;

/// One expected request and its answer.
struct Step {
    method: &'static str,
    path: String,
    status: u16,
    answer: Value,
}

/// A request the fake API server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

/// A fake API server answering a fixed script of requests in order.
#[derive(Clone, Default)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    mismatches: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn expect(self, method: &'static str, path: &str, status: u16, answer: Value) -> Self {
        self.steps.lock().unwrap().push_back(Step { method, path: path.to_string(), status, answer });
        self
    }

    fn client(&self) -> kube::Client {
        let script = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let script = script.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or("").to_string(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                script.seen.lock().unwrap().push(seen.clone());
                let step = script.steps.lock().unwrap().pop_front();
                let (status, answer) = match step {
                    Some(step) if step.method == seen.method && step.path == seen.path => (step.status, step.answer),
                    Some(step) => {
                        script
                            .mismatches
                            .lock()
                            .unwrap()
                            .push(format!("expected {} {}, got {} {}", step.method, step.path, seen.method, seen.path));
                        (500, status_body(500, "unexpected request"))
                    }
                    None => {
                        script.mismatches.lock().unwrap().push(format!("unexpected {} {}", seen.method, seen.path));
                        (500, status_body(500, "unexpected request"))
                    }
                };
                let response = http::Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, "default")
    }

    /// Every request seen, after checking the script ran to its end without surprises.
    fn finish(&self) -> Vec<Seen> {
        assert!(self.mismatches.lock().unwrap().is_empty(), "{:?}", self.mismatches.lock().unwrap());
        let left: Vec<String> = self.steps.lock().unwrap().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
        assert!(left.is_empty(), "requests expected but not sent: {left:?}");
        self.seen.lock().unwrap().clone()
    }
}

fn status_body(code: u16, message: &str) -> Value {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        _ => "InternalError",
    };
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

fn t0() -> DateTime<Utc> {
    "2026-03-01T13:45:00Z".parse().unwrap()
}

fn web() -> WorkloadRef {
    WorkloadRef::new("shop", "web")
}

fn actuator(script: &Script, mode: KubeMode) -> KubeActuator {
    KubeActuator::from_client(script.client(), mode, Arc::new(ManualClock::new(t0())))
}

const SCALE: &str = "/apis/apps/v1/namespaces/shop/deployments/web/scale";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers";
const HPA: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web-hpa";
const EVENTS: &str = "/api/v1/namespaces/shop/events";

fn scale(replicas: u32, rv: &str) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}})
}

fn hpa(min: u32, rv: &str, annotations: Value) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web-hpa", "namespace": "shop", "resourceVersion": rv, "annotations": annotations},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min, "maxReplicas": 20}})
}

fn hpa_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList", "metadata": {}, "items": items})
}

fn event_answer() -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.prescale.x", "namespace": "shop"},
        "involvedObject": {"kind": "Deployment", "name": "web"}})
}

fn raised(original: u32, raised: u32, expires: DateTime<Utc>) -> Value {
    json!({ANNOTATION_ORIGINAL_FLOOR: original.to_string(), ANNOTATION_RAISED_FLOOR: raised.to_string(),
        ANNOTATION_FLOOR_EXPIRES: expires.to_rfc3339()})
}

fn assert_event(seen: &Seen, reason: &str, needle: &str) {
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", EVENTS));
    assert_eq!(seen.body["reason"], reason, "{}", seen.body);
    assert_eq!(seen.body["involvedObject"]["kind"], "Deployment");
    assert_eq!(seen.body["involvedObject"]["name"], "web");
    let message = seen.body["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message}");
}

#[tokio::test]
async fn direct_patches_the_scale_subresource_with_a_precondition_and_records_an_event() {
    let script = Script::default()
        .expect("GET", SCALE, 200, scale(2, "10"))
        .expect("PATCH", SCALE, 200, scale(5, "11"))
        .expect("PATCH", DEPLOYMENT, 403, status_body(403, "forbidden"))
        .expect("POST", EVENTS, 201, event_answer());
    let actuator = actuator(&script, KubeMode::Direct);
    let decision = Decision::new(t0(), 2, 5, "surge of the spring campaign at 14:00");
    let outcome = actuator.apply(&web(), &decision).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::Scaled { from: 2, to: 5 });
    let seen = script.finish();
    let patch = &seen[1];
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert!(patch.query.contains("fieldManager=prescale"), "{}", patch.query);
    assert_eq!(patch.body, json!({"metadata": {"resourceVersion": "10"}, "spec": {"replicas": 5}}));
    let annotation = seen[2].body["metadata"]["annotations"][ANNOTATION_LAST_DECISION].as_str().unwrap();
    let last: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(
        (last["current"].clone(), last["target"].clone(), last["direction"].clone()),
        (json!(2), json!(5), json!("up"))
    );
    assert_event(&seen[3], REASON_SCALE_UP, "from 2 to 5: surge of the spring campaign");

    // Once denied, the annotation is not tried again; a scale-down is announced as such.
    let script = Script::default()
        .expect("GET", SCALE, 200, scale(5, "12"))
        .expect("PATCH", SCALE, 200, scale(3, "13"))
        .expect("POST", EVENTS, 201, event_answer());
    let again = KubeActuator { client: script.client(), ..actuator };
    let outcome = again.apply(&web(), &Decision::new(t0(), 5, 3, "surge over")).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::Scaled { from: 5, to: 3 });
    assert_event(&script.finish()[2], REASON_SCALE_DOWN, "from 5 to 3");
}

#[tokio::test]
async fn direct_retries_a_conflict_from_a_fresh_read() {
    let script = Script::default()
        .expect("GET", SCALE, 200, scale(2, "10"))
        .expect("PATCH", SCALE, 409, status_body(409, "the object has been modified"))
        .expect("GET", SCALE, 200, scale(3, "11"))
        .expect("PATCH", SCALE, 200, scale(6, "12"))
        .expect("PATCH", DEPLOYMENT, 200, deployment())
        .expect("POST", EVENTS, 201, event_answer());
    let outcome = actuator(&script, KubeMode::Direct).apply(&web(), &Decision::new(t0(), 2, 6, "surge")).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::Scaled { from: 3, to: 6 }, "from the value read after the conflict");
    let seen = script.finish();
    assert_eq!(seen[3].body["metadata"]["resourceVersion"], "11", "the retry carries the fresh version");
    assert_event(&seen[5], REASON_SCALE_UP, "from 3 to 6");
}

#[tokio::test]
async fn direct_at_target_writes_nothing() {
    let script = Script::default().expect("GET", SCALE, 200, scale(4, "10"));
    let outcome = actuator(&script, KubeMode::Direct).apply(&web(), &Decision::new(t0(), 4, 4, "hold")).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::AlreadyAtTarget);
    assert_eq!(script.finish().len(), 1);
}

#[tokio::test]
async fn hpa_floor_raises_min_replicas_and_records_the_user_floor_and_expiry() {
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(2, "7", json!({}))]))
        .expect("PATCH", HPA, 200, hpa(8, "8", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    let hold = t0() + Duration::minutes(80);
    let decision = Decision::new(t0(), 2, 8, "launch at 14:00");
    let outcome = actuator(&script, KubeMode::HpaFloor).apply_until(&web(), &decision, hold).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::FloorSet { from: 2, to: 8 });
    let seen = script.finish();
    let patch = &seen[1];
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert!(patch.query.contains("fieldManager=prescale"));
    assert_eq!(patch.body["spec"], json!({"minReplicas": 8}));
    assert_eq!(patch.body["metadata"]["resourceVersion"], "7");
    let annotations = &patch.body["metadata"]["annotations"];
    assert_eq!(annotations[ANNOTATION_ORIGINAL_FLOOR], "2");
    assert_eq!(annotations[ANNOTATION_RAISED_FLOOR], "8");
    assert_eq!(annotations[ANNOTATION_FLOOR_EXPIRES], hold.to_rfc3339());
    assert!(annotations[ANNOTATION_LAST_DECISION].as_str().unwrap().contains("launch at 14:00"));
    assert_event(&seen[2], REASON_SCALE_UP, "minReplicas from 2 to 8: launch at 14:00");
    assert!(
        !seen.iter().any(|s| s.method == "POST" && s.path.contains("horizontalpodautoscalers")),
        "never creates an HPA"
    );
}

#[tokio::test]
async fn hpa_floor_retries_a_conflict_and_keeps_the_user_floor() {
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(2, "7", json!({}))]))
        .expect("PATCH", HPA, 409, status_body(409, "modified"))
        // Meanwhile the user raised their own floor to 3.
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(3, "9", json!({}))]))
        .expect("PATCH", HPA, 200, hpa(8, "10", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    let decision = Decision::new(t0(), 3, 8, "launch");
    let outcome =
        actuator(&script, KubeMode::HpaFloor).apply_until(&web(), &decision, t0() + Duration::hours(1)).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::FloorSet { from: 3, to: 8 });
    let seen = script.finish();
    assert_eq!(seen[3].body["metadata"]["resourceVersion"], "9");
    assert_eq!(seen[3].body["metadata"]["annotations"][ANNOTATION_ORIGINAL_FLOOR], "3");
}

#[tokio::test]
async fn hpa_floor_back_at_the_user_floor_restores_it_and_removes_the_annotations() {
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(8, "7", raised(2, 8, t0() + Duration::minutes(30)))]))
        .expect("PATCH", HPA, 200, hpa(2, "8", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    let decision = Decision::new(t0(), 8, 1, "surge over");
    let outcome =
        actuator(&script, KubeMode::HpaFloor).apply_until(&web(), &decision, t0() + Duration::hours(1)).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::FloorSet { from: 8, to: 2 }, "never below the user's floor");
    let seen = script.finish();
    let annotations = &seen[1].body["metadata"]["annotations"];
    assert_eq!(seen[1].body["spec"], json!({"minReplicas": 2}));
    for key in [ANNOTATION_ORIGINAL_FLOOR, ANNOTATION_RAISED_FLOOR, ANNOTATION_FLOOR_EXPIRES] {
        assert_eq!(annotations[key], Value::Null, "{key} removed");
        assert!(annotations.as_object().unwrap().contains_key(key), "{key} removed by an explicit null");
    }
    assert_event(&seen[2], REASON_SCALE_DOWN, "from 8 to 2");
}

#[tokio::test]
async fn hpa_floor_without_an_hpa_is_rejected_and_writes_nothing() {
    let script = Script::default().expect("GET", HPAS, 200, hpa_list(vec![]));
    let err = actuator(&script, KubeMode::HpaFloor).apply(&web(), &Decision::new(t0(), 2, 8, "x")).await.unwrap_err();
    assert!(matches!(&err, ProvisionerError::Rejected { message, .. } if message.contains("never creates")), "{err}");
    assert_eq!(script.finish().len(), 1);
}

#[tokio::test]
async fn an_unexpired_floor_is_kept_and_an_expired_one_restored() {
    let future = t0() + Duration::minutes(5);
    let script = Script::default().expect("GET", HPAS, 200, hpa_list(vec![hpa(8, "7", raised(2, 8, future))]));
    assert!(!actuator(&script, KubeMode::HpaFloor).restore_expired(&web(), t0()).await.unwrap());
    assert_eq!(script.finish().len(), 1, "nothing written before the expiry");

    let past = t0() - Duration::minutes(1);
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(8, "7", raised(2, 8, past))]))
        .expect("PATCH", HPA, 200, hpa(2, "8", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    assert!(actuator(&script, KubeMode::HpaFloor).restore_expired(&web(), t0()).await.unwrap());
    let seen = script.finish();
    assert_eq!(seen[1].body["spec"], json!({"minReplicas": 2}));
    assert_eq!(seen[1].body["metadata"]["resourceVersion"], "7");
    assert_event(&seen[2], REASON_SCALE_DOWN, "expired");

    // A workload that left hpa-floor mode gets its floor back before the expiry.
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(8, "7", raised(2, 8, future))]))
        .expect("PATCH", HPA, 200, hpa(2, "8", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    assert!(actuator(&script, KubeMode::Direct).restore_expired(&web(), t0()).await.unwrap());
    script.finish();
}

#[tokio::test]
async fn release_restores_every_raised_floor_in_a_namespace() {
    let other = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api-hpa", "namespace": "shop", "resourceVersion": "3"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 1, "maxReplicas": 5}});
    let script = Script::default()
        .expect("GET", HPAS, 200, hpa_list(vec![hpa(8, "7", raised(2, 8, t0() + Duration::hours(2))), other]))
        .expect("PATCH", HPA, 200, hpa(2, "8", json!({})))
        .expect("POST", EVENTS, 201, event_answer());
    let restored = actuator(&script, KubeMode::ForecastOnly).release("shop").await.unwrap();
    assert_eq!(restored, vec![RestoredFloor { workload: web(), hpa: "web-hpa".into(), from: 8, to: 2 }]);
    script.finish();
}

#[tokio::test]
async fn forecast_only_sends_no_write_request() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 3, "selector": {}, "template": {}},
        "status": {"readyReplicas": 2}});
    let script = Script::default().expect("GET", DEPLOYMENT, 200, deployment).expect(
        "GET",
        HPAS,
        200,
        hpa_list(vec![hpa(2, "7", json!({}))]),
    );
    let actuator = actuator(&script, KubeMode::ForecastOnly);
    let state = actuator.current(&web()).await.unwrap();
    assert_eq!((state.spec, state.ready, state.hpa_floor), (3, 2, Some(2)));
    let outcome = actuator.apply(&web(), &Decision::new(t0(), 3, 9, "surge")).await.unwrap();
    assert_eq!(outcome, ActuationOutcome::Recorded);
    assert!(script.finish().iter().all(|s| s.method == "GET"));
}
