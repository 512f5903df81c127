//! Services: one loopback port per Service object that proxies HTTP to Ready pods.
//!
//! The proxy loop plays kube-proxy: every Service object gets a listener on
//! `127.0.0.1` (its port published as [`SERVICE_PORT_ANNOTATION`] and in
//! `status.loadBalancer.ingress`), and each request goes to one Ready,
//! non-terminating pod matching `spec.selector`, least-loaded or round robin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{LoadBalancing, SERVICE_PORT_ANNOTATION};
use crate::kubelet::{PodRegistry, PodRuntime};
use crate::resources;
use crate::store::Store;

type HttpClient = Client<HttpConnector, Body>;

/// What one Service's listener needs per request.
#[derive(Debug)]
struct ProxyState {
    namespace: String,
    name: String,
    selector: RwLock<Arc<Map<String, Value>>>,
    registry: Arc<PodRegistry>,
    client: HttpClient,
    balancing: LoadBalancing,
    next: AtomicUsize,
}

impl ProxyState {
    fn choose(&self, endpoints: &[Arc<PodRuntime>]) -> Option<Arc<PodRuntime>> {
        if endpoints.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len();
        let rotated = endpoints.iter().cycle().skip(start).take(endpoints.len());
        match self.balancing {
            LoadBalancing::RoundRobin => endpoints.get(start).cloned(),
            LoadBalancing::LeastLoaded => rotated.min_by_key(|p| p.server.model.in_flight()).cloned(),
        }
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, mut request: Request) -> Response {
    let selector = state.selector.read().unwrap_or_else(|p| p.into_inner()).clone();
    let endpoints = state.registry.endpoints(&state.namespace, &selector);
    let Some(pod) = state.choose(&endpoints) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("service {}/{} has no ready endpoints\n", state.namespace, state.name),
        )
            .into_response();
    };
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{}{path}", pod.server.addr).parse::<Uri>() else {
        return (StatusCode::BAD_REQUEST, "unparsable request target\n").into_response();
    };
    *request.uri_mut() = uri;
    request.headers_mut().remove(header::HOST);
    match state.client.request(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream pod {} failed: {e}\n", pod.name)).into_response(),
    }
}

#[derive(Debug)]
struct RunningProxy {
    namespace: String,
    name: String,
    addr: SocketAddr,
    state: Arc<ProxyState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The Service proxies of the cluster.
#[derive(Debug)]
pub(crate) struct Proxies {
    store: Arc<Store>,
    registry: Arc<PodRegistry>,
    balancing: LoadBalancing,
    client: HttpClient,
    running: Mutex<HashMap<String, RunningProxy>>,
}

fn selector_of(service: &Value) -> Map<String, Value> {
    service.pointer("/spec/selector").and_then(Value::as_object).cloned().unwrap_or_default()
}

impl Proxies {
    /// Proxies for the Services in `store`, to the pods in `registry`.
    pub fn new(store: Arc<Store>, registry: Arc<PodRegistry>, balancing: LoadBalancing) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self { store, registry, balancing, client, running: Mutex::new(HashMap::new()) }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningProxy>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The listening address of Service `namespace/name`, once its proxy runs.
    pub fn address(&self, namespace: &str, name: &str) -> Option<SocketAddr> {
        self.running().values().find(|p| p.namespace == namespace && p.name == name).map(|p| p.addr)
    }

    /// Reconcile on every store change until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.store.subscribe();
        loop {
            self.reconcile().await;
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        let stopped: Vec<RunningProxy> = self.running().drain().map(|(_, p)| p).collect();
        for p in stopped {
            p.stop.send_replace(true);
            p.task.abort();
        }
    }

    /// Start proxies for new Services, follow selector changes, stop removed ones.
    pub async fn reconcile(&self) {
        let services = self.store.list_all(resources::services(), None);
        let mut seen = Vec::new();
        for svc in &services {
            let uid = svc.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
            seen.push(uid.clone());
            let existing = self.running().get(&uid).map(|p| p.state.clone());
            match existing {
                Some(state) => {
                    let selector = selector_of(svc);
                    let mut current = state.selector.write().unwrap_or_else(|p| p.into_inner());
                    if **current != selector {
                        *current = Arc::new(selector);
                    }
                }
                None => {
                    if let Err(e) = self.start(svc, &uid).await {
                        tracing::warn!(error = %e, "service proxy failed to start");
                    }
                }
            }
        }
        let gone: Vec<RunningProxy> = {
            let mut running = self.running();
            let keys: Vec<String> = running.keys().filter(|k| !seen.contains(k)).cloned().collect();
            keys.into_iter().filter_map(|k| running.remove(&k)).collect()
        };
        for p in gone {
            p.stop.send_replace(true);
            p.task.abort();
        }
    }

    async fn start(&self, svc: &Value, uid: &str) -> Result<(), String> {
        let namespace = svc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let wanted: u16 = svc
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SERVICE_PORT_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", wanted))
            .await
            .map_err(|e| format!("service {namespace}/{name}: could not bind 127.0.0.1:{wanted}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(ProxyState {
            namespace: namespace.clone(),
            name: name.clone(),
            selector: RwLock::new(Arc::new(selector_of(svc))),
            registry: self.registry.clone(),
            client: self.client.clone(),
            balancing: self.balancing,
            next: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let (stop, mut stopped) = watch::channel(false);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "service proxy stopped with an error");
            }
        });
        self.running().insert(
            uid.to_string(),
            RunningProxy { namespace: namespace.clone(), name: name.clone(), addr, state, stop, task },
        );
        let port = addr.port();
        self.store
            .mutate(resources::services(), &namespace, &name, |o| {
                o["metadata"]["annotations"][SERVICE_PORT_ANNOTATION] = json!(port.to_string());
                if o.pointer("/spec/clusterIP").and_then(Value::as_str).is_none_or(str::is_empty) {
                    o["spec"]["clusterIP"] = json!("127.0.0.1");
                }
                o["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": port, "protocol": "TCP"}]}]}});
                Ok(())
            })
            .map_err(|e| e.message)?;
        Ok(())
    }
}
