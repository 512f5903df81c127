//! The object store behind the API server: versioned JSON objects and a watch log.
//!
//! Objects are kept as JSON (`serde_json::Value`) so every verb (merge, strategic,
//! JSON patch, apply) works on any resource alike; writes are validated by decoding
//! into the k8s-openapi type, so what the store holds is what kube-rs can read.
//! One global `resourceVersion` counter orders every write; the watch log keeps the
//! last writes so a watch can resume from a resourceVersion, and a watch from a
//! version older than the log answers 410 Expired as Kubernetes does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use prescale_core::SharedClock;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::resources::{self, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// How many writes the watch log keeps.
const LOG_CAPACITY: usize = 20_000;

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl WatchKind {
    /// The `type` field of a WatchEvent.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Added => "ADDED",
            WatchKind::Modified => "MODIFIED",
            WatchKind::Deleted => "DELETED",
        }
    }
}

/// One write, as a watch sees it.
#[derive(Debug, Clone)]
pub(crate) struct WatchEvent {
    /// Event type.
    pub kind: WatchKind,
    /// The object after the write (before removal for deletes), with its new resourceVersion.
    pub object: Arc<Value>,
}

#[derive(Debug)]
struct LogEntry {
    rv: u64,
    key: &'static str,
    namespace: String,
    event: WatchEvent,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: everything but `status` when the resource has a status subresource.
    Main,
    /// The `/status` subresource: only `status`.
    Status,
    /// Controllers of this cluster: everything.
    All,
}

type ObjectKey = (String, String);

#[derive(Debug)]
struct Inner {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<ObjectKey, Value>>,
    log: VecDeque<LogEntry>,
    /// Writes with a resourceVersion at or below this are gone from the log.
    floor: u64,
    rng: u64,
}

/// Versioned objects of every stored resource, with change notification.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    clock: SharedClock,
}

/// Characters Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// splitmix64: a small, well-mixed generator for names and uids (not for security).
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// RFC 3339 with whole seconds, as `metav1.Time` serializes.
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn check_typed<T: DeserializeOwned>(obj: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(obj.clone()).map(|_| ()).map_err(|e| e.to_string())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Check an object as the API server would before storing it.
fn validate(res: &ResourceDef, obj: &Value) -> Result<(), String> {
    let name = meta_str(obj, "name").unwrap_or("");
    if !valid_name(name) {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    use k8s_openapi::api;
    match res.key {
        "apps/deployments" => {
            check_typed::<api::apps::v1::Deployment>(obj)?;
            validate_deployment(obj)
        }
        "/pods" => check_typed::<api::core::v1::Pod>(obj),
        "/services" => check_typed::<api::core::v1::Service>(obj),
        "/events" => check_typed::<api::core::v1::Event>(obj),
        "events.k8s.io/events" => check_typed::<api::events::v1::Event>(obj),
        "/configmaps" => check_typed::<api::core::v1::ConfigMap>(obj),
        "/namespaces" => check_typed::<api::core::v1::Namespace>(obj),
        "/nodes" => check_typed::<api::core::v1::Node>(obj),
        "coordination.k8s.io/leases" => check_typed::<api::coordination::v1::Lease>(obj),
        "autoscaling/horizontalpodautoscalers" => {
            check_typed::<api::autoscaling::v2::HorizontalPodAutoscaler>(obj)?;
            validate_hpa(obj)
        }
        _ => Ok(()),
    }
}

fn validate_deployment(obj: &Value) -> Result<(), String> {
    let spec = obj.get("spec").ok_or("spec: Required value")?;
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64)
        && r < 0
    {
        return Err(format!("spec.replicas: Invalid value: {r}: must be greater than or equal to 0"));
    }
    let selector = spec.get("selector").ok_or("spec.selector: Required value")?;
    let selector = LabelSelector::from_object(selector).map_err(|e| format!("spec.selector: {e}"))?;
    if selector.is_empty() {
        return Err("spec.selector: Invalid value: empty selector is invalid for deployment".to_string());
    }
    let template = spec.get("template").ok_or("spec.template: Required value")?;
    if !selector.matches(template) {
        return Err(
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".to_string()
        );
    }
    Ok(())
}

fn validate_hpa(obj: &Value) -> Result<(), String> {
    let max = obj.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    let min = obj.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1);
    if min < 1 {
        return Err(format!("spec.minReplicas: Invalid value: {min}: must be greater than or equal to 1"));
    }
    if max < min {
        return Err(format!("spec.maxReplicas: Invalid value: {max}: must be greater than or equal to `minReplicas`"));
    }
    Ok(())
}

impl Store {
    /// An empty store reading time from `clock`; `seed` drives generated names and uids.
    pub fn new(clock: SharedClock, seed: u64) -> Self {
        let inner = Inner { rv: 1, objects: HashMap::new(), log: VecDeque::new(), floor: 0, rng: seed };
        let (changed, _) = watch::channel(1);
        Self { inner: Mutex::new(inner), changed, clock }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The clock the store stamps objects with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Now on the cluster clock, as a `metav1.Time` string.
    pub fn now_string(&self) -> String {
        format_time(self.clock.now())
    }

    /// A receiver that changes on every write.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The current resourceVersion of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// A random suffix of `len` characters from Kubernetes' name alphabet.
    pub fn random_suffix(&self, len: usize) -> String {
        let mut inner = self.lock();
        (0..len)
            .map(|_| NAME_ALPHABET[(next_random(&mut inner.rng) % NAME_ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    /// A random number in `[0, 1)`.
    pub fn random_unit(&self) -> f64 {
        (next_random(&mut self.lock().rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uid(inner: &mut Inner) -> String {
        let a = next_random(&mut inner.rng);
        let b = next_random(&mut inner.rng);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn record(&self, inner: &mut Inner, key: &'static str, namespace: &str, kind: WatchKind, object: Value) {
        let rv = inner.rv;
        inner.log.push_back(LogEntry {
            rv,
            key,
            namespace: namespace.to_string(),
            event: WatchEvent { kind, object: Arc::new(object) },
        });
        while inner.log.len() > LOG_CAPACITY {
            if let Some(old) = inner.log.pop_front() {
                inner.floor = old.rv;
            }
        }
        self.changed.send_replace(rv);
    }

    /// One object.
    pub fn get(&self, res: &'static ResourceDef, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let inner = self.lock();
        inner
            .objects
            .get(res.key)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Objects of a resource in `namespace` (all namespaces when `None`) matching the
    /// selectors, in namespace/name order, with the store's resourceVersion.
    pub fn list(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .get(res.key)
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                    .filter(|(_, obj)| labels.matches(obj) && fields.matches(obj))
                    .map(|(_, obj)| obj.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// All objects of a resource in a namespace, unfiltered.
    pub fn list_all(&self, res: &'static ResourceDef, namespace: Option<&str>) -> Vec<Value> {
        self.list(res, namespace, &LabelSelector::default(), &FieldSelector::default()).0
    }

    /// Create an object; fills in name (from generateName), uid, resourceVersion,
    /// creationTimestamp and generation.
    pub fn create(&self, res: &'static ResourceDef, namespace: &str, mut obj: Value) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!("the body of a {} create must be a JSON object", res.kind)));
        }
        let mut inner = self.lock();
        if res.namespaced {
            let body_ns = meta_str(&obj, "namespace").unwrap_or("");
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({namespace})"
                )));
            }
            let ns_exists = inner
                .objects
                .get(resources::namespaces().key)
                .is_some_and(|m| m.contains_key(&(String::new(), namespace.to_string())));
            if !ns_exists {
                return Err(ApiError::not_found(resources::namespaces(), namespace));
            }
        }
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                let prefix = meta_str(&obj, "generateName").unwrap_or("").to_string();
                if prefix.is_empty() {
                    return Err(ApiError::invalid(
                        res,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
                let suffix: String = (0..5)
                    .map(|_| NAME_ALPHABET[(next_random(&mut inner.rng) % NAME_ALPHABET.len() as u64) as usize] as char)
                    .collect();
                format!("{prefix}{suffix}")
            }
        };
        let key = (if res.namespaced { namespace.to_string() } else { String::new() }, name.clone());
        if inner.objects.get(res.key).is_some_and(|m| m.contains_key(&key)) {
            return Err(ApiError::already_exists(res, &name));
        }
        let uid = Self::uid(&mut inner);
        let rv = inner.rv + 1;
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        if res.namespaced {
            meta["namespace"] = json!(namespace);
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(self.now_string());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("managedFields");
        }
        if res.status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        validate(res, &obj).map_err(|e| ApiError::invalid(res, &name, e))?;
        inner.rv = rv;
        inner.objects.entry(res.key).or_default().insert(key, obj.clone());
        self.record(&mut inner, res.key, namespace, WatchKind::Added, obj.clone());
        Ok(obj)
    }

    /// Create an object with a status (system objects: nodes, namespaces, pods' first status).
    pub fn create_with_status(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        let status = obj.get("status").cloned();
        let created = self.create(res, namespace, obj)?;
        match status {
            Some(status) => {
                let name = meta_str(&created, "name").unwrap_or("").to_string();
                self.mutate(res, namespace, &name, |o| {
                    o["status"] = status;
                    Ok(())
                })
            }
            None => Ok(created),
        }
    }

    /// Replace an object. A non-empty `metadata.resourceVersion` in `new` must match
    /// the stored one (409 otherwise). Writes that change nothing keep the version.
    pub fn update(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        new: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let old = Self::stored(&inner, res, namespace, name)?;
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(res, name));
        }
        self.commit(&mut inner, res, namespace, name, old, new, part)
    }

    /// Read-modify-write an object under the store's lock (for patches and controllers).
    /// A `metadata.resourceVersion` that `change` alters acts as a precondition.
    pub fn modify(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        part: Part,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let old = Self::stored(&inner, res, namespace, name)?;
        let mut new = old.clone();
        change(&mut new)?;
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(res, name));
        }
        self.commit(&mut inner, res, namespace, name, old, new, part)
    }

    /// [`Store::modify`] with controller rights (every field may change).
    pub fn mutate(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        self.modify(res, namespace, name, Part::All, change)
    }

    fn stored(inner: &Inner, res: &'static ResourceDef, namespace: &str, name: &str) -> Result<Value, ApiError> {
        inner
            .objects
            .get(res.key)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        old: Value,
        body: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(format!("the body of a {} update must be a JSON object", res.kind)));
        }
        if let Some(body_name) = meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut new = match part {
            Part::Status => {
                let mut n = old.clone();
                n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
                n
            }
            Part::Main | Part::All => {
                let mut n = body;
                if part == Part::Main && res.status {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            if let Some(o) = n.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                n
            }
        };
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind);
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        // System-owned metadata survives every update.
        for field in ["name", "namespace", "uid", "creationTimestamp", "generation"] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if part != Part::All {
            for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                match old["metadata"].get(field) {
                    Some(v) => new["metadata"][field] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
        }
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new.get("spec") != old.get("spec") {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        if new == old {
            return Ok(old);
        }
        validate(res, &new).map_err(|e| ApiError::invalid(res, name, e))?;
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.entry(res.key).or_default().insert((namespace.to_string(), name.to_string()), new.clone());
        self.record(inner, res.key, namespace, WatchKind::Modified, new.clone());
        Ok(new)
    }

    /// Remove an object now. `precondition_rv`/`precondition_uid` must match when given.
    pub fn delete(
        &self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
        precondition_rv: Option<&str>,
        precondition_uid: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let old = Self::stored(&inner, res, namespace, name)?;
        if precondition_rv.is_some_and(|rv| Some(rv) != meta_str(&old, "resourceVersion"))
            || precondition_uid.is_some_and(|uid| Some(uid) != meta_str(&old, "uid"))
        {
            return Err(ApiError::conflict(res, name));
        }
        let removed = Self::remove(self, &mut inner, res, namespace, name);
        if res.key == resources::namespaces().key {
            // Deleting a namespace deletes everything in it.
            let keys: Vec<&'static str> = inner.objects.keys().copied().collect();
            for key in keys {
                let names: Vec<String> = inner
                    .objects
                    .get(key)
                    .map(|m| m.keys().filter(|(ns, _)| ns == name).map(|(_, n)| n.clone()).collect())
                    .unwrap_or_default();
                if let Some(r) = resources::by_key(key) {
                    for n in names {
                        Self::remove(self, &mut inner, r, name, &n);
                    }
                }
            }
        }
        removed.ok_or_else(|| ApiError::not_found(res, name))
    }

    fn remove(&self, inner: &mut Inner, res: &'static ResourceDef, namespace: &str, name: &str) -> Option<Value> {
        let mut obj = inner.objects.get_mut(res.key)?.remove(&(namespace.to_string(), name.to_string()))?;
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.record(inner, res.key, namespace, WatchKind::Deleted, obj.clone());
        Some(obj)
    }

    /// Writes to `res` (in `namespace`, or everywhere) after resourceVersion `since`,
    /// with their versions; 410 Expired when the log no longer reaches back that far.
    pub fn events_since(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
        since: u64,
    ) -> Result<(Vec<(u64, WatchEvent)>, u64), ApiError> {
        let inner = self.lock();
        if since < inner.floor {
            return Err(ApiError::expired(since));
        }
        // The log is ordered by rv: skip the prefix at or below `since`.
        let start = inner.log.partition_point(|e| e.rv <= since);
        let events = inner
            .log
            .range(start..)
            .filter(|e| e.key == res.key && namespace.is_none_or(|ns| ns == e.namespace))
            .map(|e| (e.rv, e.event.clone()))
            .collect();
        Ok((events, inner.rv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::ManualClock;

    fn store() -> Store {
        let clock: SharedClock = Arc::new(ManualClock::new("2026-03-01T12:00:00Z".parse().unwrap()));
        let s = Store::new(clock, 7);
        s.create(resources::namespaces(), "", json!({"metadata": {"name": "default"}})).unwrap();
        s
    }

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name}, "data": {"k": "v"}})
    }

    #[test]
    fn create_fills_metadata_and_rejects_duplicates() {
        let s = store();
        let obj = s.create(resources::by_key("/configmaps").unwrap(), "default", cm("a")).unwrap();
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(obj["metadata"]["creationTimestamp"], "2026-03-01T12:00:00Z");
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
        let err = s.create(resources::by_key("/configmaps").unwrap(), "default", cm("a")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        let err = s.create(resources::by_key("/configmaps").unwrap(), "nowhere", cm("b")).unwrap_err();
        assert_eq!(err.code, 404);
        let err = s.create(resources::by_key("/configmaps").unwrap(), "default", cm("Bad_Name")).unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn stale_resource_version_conflicts_and_noop_keeps_version() {
        let s = store();
        let res = resources::by_key("/configmaps").unwrap();
        let a = s.create(res, "default", cm("a")).unwrap();
        let mut b = a.clone();
        b["data"]["k"] = json!("w");
        let b = s.update(res, "default", "a", b, Part::Main).unwrap();
        assert_ne!(a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]);
        let mut stale = a.clone();
        stale["data"]["k"] = json!("x");
        assert_eq!(s.update(res, "default", "a", stale, Part::Main).unwrap_err().code, 409);
        let same = s.update(res, "default", "a", b.clone(), Part::Main).unwrap();
        assert_eq!(same["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]);
    }

    #[test]
    fn status_and_main_parts_are_kept_apart() {
        let s = store();
        let res = resources::deployments();
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 9}});
        let d = s.create(res, "default", d).unwrap();
        assert!(d.get("status").is_none(), "status is dropped on create");
        assert_eq!(d["metadata"]["generation"], 1);
        let mut body = d.clone();
        body["spec"]["replicas"] = json!(3);
        body["status"] = json!({"replicas": 5});
        let d = s.update(res, "default", "web", body, Part::Main).unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        assert!(d.get("status").is_none());
        assert_eq!(d["metadata"]["generation"], 2);
        let mut body = d.clone();
        body["spec"]["replicas"] = json!(8);
        body["status"] = json!({"replicas": 3});
        let d = s.update(res, "default", "web", body, Part::Status).unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["status"]["replicas"], 3);
        assert_eq!(d["metadata"]["generation"], 2);
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let s = store();
        let d = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c"}]}}}});
        let err = s.create(resources::deployments(), "default", d).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("selector"), "{}", err.message);
    }

    #[test]
    fn watch_log_replays_from_a_version_and_expires() {
        let s = store();
        let res = resources::by_key("/configmaps").unwrap();
        let rv0 = s.resource_version();
        s.create(res, "default", cm("a")).unwrap();
        s.mutate(res, "default", "a", |o| {
            o["data"]["k"] = json!("z");
            Ok(())
        })
        .unwrap();
        s.delete(res, "default", "a", None, None).unwrap();
        let (events, now) = s.events_since(res, Some("default"), rv0).unwrap();
        let kinds: Vec<WatchKind> = events.iter().map(|(_, e)| e.kind).collect();
        assert_eq!(kinds, vec![WatchKind::Added, WatchKind::Modified, WatchKind::Deleted]);
        assert_eq!(events.last().unwrap().0, now);
        let (none, _) = s.events_since(res, Some("default"), now).unwrap();
        assert!(none.is_empty());
        for i in 0..LOG_CAPACITY + 5 {
            s.create(res, "default", cm(&format!("c{i}"))).unwrap();
        }
        assert_eq!(s.events_since(res, None, rv0).unwrap_err().code, 410);
    }
}
