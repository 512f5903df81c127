//! The Kubernetes-compatible HTTP API: discovery, CRUD, patch, watch, subresources,
//! server-side Tables for kubectl, and `metrics.k8s.io` computed from the pods.
//!
//! Every request that fails, including paths the server does not serve, answers
//! with a `v1 Status` body and the matching HTTP code; nothing hangs.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::mirror_events_v1;
use crate::kubelet::{NODE_NAME, PodRegistry, delete_pod};
use crate::patch::{self, PatchKind};
use crate::resources::{self, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::store::{Part, Store, WatchKind};
use crate::table::{self, IncludeObject};

/// Default watch length when the client gives no `timeoutSeconds` (Kubernetes picks 30-60 min).
const DEFAULT_WATCH_SECONDS: u64 = 1800;

/// Shared state of the API server.
#[derive(Debug)]
pub(crate) struct ApiState {
    /// The objects.
    pub store: Arc<Store>,
    /// Running pods, for metrics.
    pub registry: Arc<PodRegistry>,
    /// `host:port` the server is reachable on.
    pub server_address: String,
    /// CPU averaging window in cluster-clock seconds, as `metrics.k8s.io` reports it.
    pub metrics_window_seconds: u64,
    /// Requests that hit no route (method and path), for diagnostics.
    pub unknown: Mutex<Vec<String>>,
    /// Turns true when the cluster stops; open watches end then.
    pub stopping: watch::Receiver<bool>,
}

/// The API router.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

type Query = HashMap<String, String>;

fn parse_query(raw: Option<&str>) -> Query {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

/// A request after routing.
struct Request<'a> {
    method: &'a Method,
    query: &'a Query,
    accept: &'a str,
    content_type: &'a str,
    body: &'a Bytes,
}

async fn handle(
    State(state): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = parse_query(uri.query());
    let header_str = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let accept = header_str(header::ACCEPT);
    let content_type = header_str(header::CONTENT_TYPE);
    tracing::debug!(method = %method, uri = %uri, accept = %accept, content_type = %content_type, "api request");
    let req = Request { method: &method, query: &query, accept: &accept, content_type: &content_type, body: &body };
    match dispatch(&state, uri.path(), &req) {
        Ok(response) => response,
        Err(e) => {
            if e.code == 404 && e.details.is_none() {
                tracing::debug!(method = %method, path = %uri, "no route");
                state.unknown.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{method} {uri}"));
            }
            error_response(&e)
        }
    }
}

fn dispatch(state: &Arc<ApiState>, path: &str, req: &Request<'_>) -> Result<Response, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |v: Option<Value>| -> Result<Response, ApiError> {
        if req.method != Method::GET {
            return Err(ApiError::method_not_allowed(req.method.as_str(), path));
        }
        v.map(|v| json_response(StatusCode::OK, &v)).ok_or_else(|| ApiError::no_route(path))
    };
    match segments.as_slice() {
        ["version"] => get_only(Some(version())),
        ["healthz" | "livez" | "readyz", ..] => {
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok").into_response())
        }
        ["api"] => get_only(Some(resources::api_versions(&state.server_address))),
        ["apis"] => get_only(Some(resources::group_list())),
        ["api", "v1"] => get_only(resources::resource_list("", "v1")),
        ["apis", group] => get_only(resources::group(group)),
        ["apis", group, version] => get_only(resources::resource_list(group, version)),
        ["api", "v1", rest @ ..] => resource_request(state, "", "v1", rest, path, req),
        ["apis", group, version, rest @ ..] => resource_request(state, group, version, rest, path, req),
        _ => Err(ApiError::no_route(path)),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "gitVersion": "v1.35.0-prescale",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn resource_request(
    state: &Arc<ApiState>,
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let namespaced_plural = |p: &str| resources::find(group, version, p).is_some_and(|r| r.namespaced);
    let (namespace, plural, tail): (Option<&str>, &str, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_plural(plural) => (Some(*ns), *plural, tail),
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Err(ApiError::no_route(path)),
    };
    let res = resources::find(group, version, plural).ok_or_else(|| ApiError::no_route(path))?;
    if tail.len() > 2 {
        return Err(ApiError::no_route(path));
    }
    let name = tail.first().copied();
    let sub = tail.get(1).copied();
    if res.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::no_route(path));
    }
    if !res.namespaced && namespace.is_some() {
        return Err(ApiError::no_route(path));
    }
    if !res.stored {
        return metrics_request(state, res, namespace, name, sub, path, req);
    }
    let ns = namespace.unwrap_or("");
    let method = req.method;
    match (name, sub) {
        (None, None) => match *method {
            Method::GET if is_true(req.query.get("watch")) => watch(state, res, namespace, req.query),
            Method::GET => list(state, res, namespace, req),
            Method::POST if res.namespaced && namespace.is_none() => Err(ApiError::method_not_allowed("POST", path)),
            Method::POST => create(state, res, ns, req),
            Method::DELETE => delete_collection(state, res, namespace, req),
            _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
        },
        (Some(name), None) => match *method {
            Method::GET => get(state, res, ns, name, req),
            Method::PUT => update(state, res, ns, name, Part::Main, req),
            Method::PATCH => patch_object(state, res, ns, name, Part::Main, req),
            Method::DELETE => delete(state, res, ns, name, req),
            _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
        },
        (Some(name), Some("status")) if res.status => match *method {
            Method::GET => get(state, res, ns, name, req),
            Method::PUT => update(state, res, ns, name, Part::Status, req),
            Method::PATCH => patch_object(state, res, ns, name, Part::Status, req),
            _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
        },
        (Some(name), Some("scale")) if res.scale => match *method {
            Method::GET => Ok(json_response(StatusCode::OK, &scale_of(&state.store.get(res, ns, name)?))),
            Method::PUT | Method::PATCH => update_scale(state, res, ns, name, req),
            _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
        },
        _ => Err(ApiError::no_route(path)),
    }
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    Ok((labels, fields))
}

fn list_body(res: &ResourceDef, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn list(
    state: &ApiState,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(req.query)?;
    let (items, rv) = state.store.list(res, namespace, &labels, &fields);
    if table::wants_table(req.accept) {
        let include = IncludeObject::parse(req.query.get("includeObject").map(String::as_str));
        return Ok(json_response(StatusCode::OK, &table::table(res, &items, state.store.clock().now(), include, rv)));
    }
    Ok(json_response(StatusCode::OK, &list_body(res, items, rv)))
}

fn get(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let obj = state.store.get(res, ns, name)?;
    if table::wants_table(req.accept) {
        let include = IncludeObject::parse(req.query.get("includeObject").map(String::as_str));
        let rv = state.store.resource_version();
        return Ok(json_response(StatusCode::OK, &table::table(res, &[obj], state.store.clock().now(), include, rv)));
    }
    Ok(json_response(StatusCode::OK, &obj))
}

fn parse_json_body(req: &Request<'_>) -> Result<Value, ApiError> {
    let media = req.content_type.split(';').next().unwrap_or("").trim();
    if media.contains("yaml") {
        return serde_yaml_ng::from_slice(req.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")));
    }
    if !media.is_empty() && media != "application/json" && !media.ends_with("+json") {
        return Err(ApiError::unsupported_media_type(req.content_type));
    }
    serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// After a write to an `events.k8s.io` Event, keep its core mirror in step.
fn after_write(state: &ApiState, res: &ResourceDef, ns: &str, obj: &Value) {
    if res.key == "events.k8s.io/events" {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        mirror_events_v1(&state.store, ns, Some(obj), name);
    }
}

fn create(state: &ApiState, res: &'static ResourceDef, ns: &str, req: &Request<'_>) -> Result<Response, ApiError> {
    let body = parse_json_body(req)?;
    if is_dry_run(req.query) {
        return Ok(json_response(StatusCode::CREATED, &body));
    }
    let created = state.store.create(res, ns, body)?;
    after_write(state, res, ns, &created);
    Ok(json_response(StatusCode::CREATED, &created))
}

fn is_dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

fn update(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    part: Part,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let body = parse_json_body(req)?;
    if is_dry_run(req.query) {
        return Ok(json_response(StatusCode::OK, &body));
    }
    let updated = state.store.update(res, ns, name, body, part)?;
    after_write(state, res, ns, &updated);
    Ok(json_response(StatusCode::OK, &updated))
}

fn patch_kind(req: &Request<'_>) -> Result<(PatchKind, Value), ApiError> {
    let kind = PatchKind::from_content_type(req.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(req.content_type))?;
    let body = patch::parse_body(kind, req.body).map_err(ApiError::bad_request)?;
    Ok((kind, body))
}

fn patch_object(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    part: Part,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let (kind, body) = patch_kind(req)?;
    if kind == PatchKind::Apply && part == Part::Main && state.store.get(res, ns, name).is_err() {
        // Server-side apply creates what does not exist yet.
        let mut obj = body;
        obj["metadata"]["name"] = json!(name);
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let created = state.store.create(res, ns, obj)?;
        after_write(state, res, ns, &created);
        return Ok(json_response(StatusCode::CREATED, &created));
    }
    let patched = state
        .store
        .modify(res, ns, name, part, |o| patch::apply(kind, o, &body).map_err(|e| ApiError::invalid(res, name, e)))?;
    after_write(state, res, ns, &patched);
    Ok(json_response(StatusCode::OK, &patched))
}

/// `DeleteOptions` from the body, overridden by query parameters.
struct DeleteOptions {
    grace_seconds: Option<i64>,
    precondition_rv: Option<String>,
    precondition_uid: Option<String>,
}

fn delete_options(req: &Request<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(req.body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let grace_seconds = req
        .query
        .get("gracePeriodSeconds")
        .and_then(|v| v.parse().ok())
        .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
    let text = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_string);
    Ok(DeleteOptions {
        grace_seconds,
        precondition_rv: text("/preconditions/resourceVersion"),
        precondition_uid: text("/preconditions/uid"),
    })
}

fn delete_one(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let rv = opts.precondition_rv.as_deref();
    let uid = opts.precondition_uid.as_deref();
    if res.key == resources::pods().key {
        return delete_pod(&state.store, ns, name, opts.grace_seconds, rv, uid);
    }
    let deleted = state.store.delete(res, ns, name, rv, uid)?;
    if res.key == "events.k8s.io/events" {
        mirror_events_v1(&state.store, ns, None, name);
    }
    Ok(deleted)
}

fn delete(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let opts = delete_options(req)?;
    let deleted = delete_one(state, res, ns, name, &opts)?;
    if deleted.pointer("/metadata/deletionTimestamp").is_some() && res.key == resources::pods().key {
        return Ok(json_response(StatusCode::OK, &deleted));
    }
    let uid = deleted.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
    if res.key == resources::deployments().key || res.key == resources::namespaces().key {
        // Kubernetes answers these with the object; the rest with a success Status.
        return Ok(json_response(StatusCode::OK, &deleted));
    }
    Ok(json_response(StatusCode::OK, &status::success(res, name, uid)))
}

fn delete_collection(
    state: &ApiState,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(req.query)?;
    let opts = delete_options(req)?;
    let (items, _) = state.store.list(res, namespace, &labels, &fields);
    let mut deleted = Vec::new();
    for item in items {
        let ns = item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        match delete_one(state, res, ns, name, &opts) {
            Ok(obj) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(StatusCode::OK, &list_body(res, deleted, state.store.resource_version())))
}

/// The `autoscaling/v1 Scale` view of a Deployment.
fn scale_of(d: &Value) -> Value {
    let selector = d
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_object(s).ok())
        .map(|s| s.render())
        .unwrap_or_default();
    let meta = |f: &str| d.pointer(&format!("/metadata/{f}")).cloned().unwrap_or(Value::Null);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": d.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": d.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn update_scale(
    state: &ApiState,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    let current = scale_of(&state.store.get(res, ns, name)?);
    let wanted = if *req.method == Method::PATCH {
        let (kind, body) = patch_kind(req)?;
        let mut scale = current.clone();
        patch::apply(kind, &mut scale, &body).map_err(|e| ApiError::invalid(res, name, e))?;
        scale
    } else {
        parse_json_body(req)?
    };
    let replicas = wanted.pointer("/spec/replicas").and_then(Value::as_i64).ok_or_else(|| {
        ApiError::invalid(res, name, "spec.replicas: Required value: a Scale must give spec.replicas")
    })?;
    if replicas < 0 {
        return Err(ApiError::invalid(res, name, format!("spec.replicas: Invalid value: {replicas}: must be >= 0")));
    }
    let precondition = wanted.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|rv| !rv.is_empty());
    let updated = state.store.modify(res, ns, name, Part::Main, |o| {
        if let Some(rv) = precondition {
            o["metadata"]["resourceVersion"] = json!(rv);
        }
        o["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated)))
}

struct WatchState {
    store: Arc<Store>,
    res: &'static ResourceDef,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    last: u64,
    changes: watch::Receiver<u64>,
    deadline: Instant,
    bookmarks: bool,
    pending: VecDeque<Bytes>,
    done: bool,
    stopping: watch::Receiver<bool>,
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(res: &ResourceDef, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line("BOOKMARK", &json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata}))
}

fn watch(
    state: &ApiState,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(query)?;
    let timeout = query.get("timeoutSeconds").and_then(|v| v.parse::<u64>().ok()).unwrap_or(DEFAULT_WATCH_SECONDS);
    let changes = state.store.subscribe();
    let requested = query.get("resourceVersion").map(String::as_str).unwrap_or("");
    let send_initial = is_true(query.get("sendInitialEvents"));
    let bookmarks = is_true(query.get("allowWatchBookmarks"));
    let mut pending = VecDeque::new();
    let last = if requested.is_empty() || requested == "0" || send_initial {
        // Start with the current state as ADDED events, then follow.
        let (items, rv) = state.store.list(res, namespace, &labels, &fields);
        for item in &items {
            pending.push_back(event_line(WatchKind::Added.as_str(), item));
        }
        if send_initial {
            pending.push_back(bookmark(res, rv, true));
        }
        rv
    } else {
        requested
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {requested:?}: expected a number")))?
    };
    let st = WatchState {
        store: state.store.clone(),
        res,
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        last,
        changes,
        deadline: Instant::now() + std::time::Duration::from_secs(timeout),
        bookmarks,
        pending,
        done: false,
        stopping: state.stopping.clone(),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(chunk), st));
            }
            if st.done {
                return None;
            }
            match st.store.events_since(st.res, st.namespace.as_deref(), st.last) {
                Err(e) => {
                    st.pending.push_back(event_line("ERROR", &e.to_status()));
                    st.done = true;
                    continue;
                }
                Ok((events, now)) => {
                    st.last = now;
                    let mut chunk = Vec::new();
                    for (_, event) in events {
                        if st.labels.matches(&event.object) && st.fields.matches(&event.object) {
                            chunk.extend_from_slice(&event_line(event.kind.as_str(), &event.object));
                        }
                    }
                    if !chunk.is_empty() {
                        return Some((Ok(Bytes::from(chunk)), st));
                    }
                }
            }
            tokio::select! {
                r = st.changes.changed() => if r.is_err() { st.done = true },
                _ = st.stopping.wait_for(|s| *s) => st.done = true,
                _ = tokio::time::sleep_until(st.deadline) => {
                    if st.bookmarks {
                        st.pending.push_back(bookmark(st.res, st.last, false));
                    }
                    st.done = true;
                }
            }
        }
    });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// `metrics.k8s.io`: PodMetrics and NodeMetrics computed from the running pods.
fn metrics_request(
    state: &ApiState,
    res: &'static ResourceDef,
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
    path: &str,
    req: &Request<'_>,
) -> Result<Response, ApiError> {
    if *req.method != Method::GET || sub.is_some() {
        return Err(ApiError::method_not_allowed(req.method.as_str(), path));
    }
    if is_true(req.query.get("watch")) {
        return Err(ApiError::method_not_allowed("WATCH", path));
    }
    let (labels, fields) = selectors(req.query)?;
    let items =
        if res.kind == "PodMetrics" { pod_metrics(state, namespace, &labels, &fields) } else { node_metrics(state) };
    let rv = state.store.resource_version();
    match name {
        Some(name) => {
            let item = items
                .into_iter()
                .find(|m| m.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| ApiError::not_found(res, name))?;
            if table::wants_table(req.accept) {
                let t = table::table(res, &[item], state.store.clock().now(), IncludeObject::Metadata, rv);
                return Ok(json_response(StatusCode::OK, &t));
            }
            Ok(json_response(StatusCode::OK, &item))
        }
        None => {
            if table::wants_table(req.accept) {
                let t = table::table(res, &items, state.store.clock().now(), IncludeObject::Metadata, rv);
                return Ok(json_response(StatusCode::OK, &t));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": format!("{}List", res.kind),
                    "apiVersion": res.api_version(),
                    "metadata": {},
                    "items": items,
                }),
            ))
        }
    }
}

fn cpu_quantity(cores: f64) -> String {
    format!("{}n", (cores * 1e9).round().max(0.0) as u64)
}

fn memory_quantity(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

fn pod_metrics(
    state: &ApiState,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Vec<Value> {
    let now = state.store.now_string();
    let window = format!("{}s", state.metrics_window_seconds);
    let (pods, _) = state.store.list(resources::pods(), namespace, labels, fields);
    pods.iter()
        .filter_map(|pod| {
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str)?;
            let runtime = state.registry.get(uid)?;
            let model = &runtime.server.model;
            let container = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("app");
            Some(json!({
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": runtime.name,
                    "namespace": runtime.namespace,
                    "creationTimestamp": now,
                    "labels": pod.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                },
                "timestamp": now,
                "window": window,
                "containers": [{
                    "name": container,
                    "usage": {"cpu": cpu_quantity(model.cpu_cores()), "memory": memory_quantity(model.memory_bytes())},
                }],
            }))
        })
        .collect()
}

fn node_metrics(state: &ApiState) -> Vec<Value> {
    let now = state.store.now_string();
    let pods = state.registry.all();
    let cpu: f64 = pods.iter().map(|p| p.server.model.cpu_cores()).sum();
    let memory: u64 = pods.iter().map(|p| p.server.model.memory_bytes()).sum();
    vec![json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": NODE_NAME, "creationTimestamp": now},
        "timestamp": now,
        "window": format!("{}s", state.metrics_window_seconds),
        "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)},
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_carries_replicas_and_selector() {
        let d = json!({"metadata": {"name": "shop", "namespace": "default", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=shop");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        let typed: k8s_openapi::api::autoscaling::v1::Scale = serde_json::from_value(s).unwrap();
        assert_eq!(typed.spec.unwrap().replicas, Some(3));
    }

    #[test]
    fn quantities_use_metrics_server_units() {
        assert_eq!(cpu_quantity(0.5), "500000000n");
        assert_eq!(memory_quantity(64 * 1024 * 1024), "65536Ki");
    }
}
