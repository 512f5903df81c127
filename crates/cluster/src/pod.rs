//! A pod's HTTP server: an e-commerce frontend with a bounded capacity.
//!
//! Capacity model: `workers` requests are served at once ("cores"), each takes
//! `service_time` (a sleep, so the host's CPU is not the bottleneck); further
//! requests wait in a queue of `queue_capacity`, and beyond it get 503 at once.
//! Capacity is therefore `workers / service_time` requests per second, latency rises
//! as the queue fills, and errors appear when it overflows.
//!
//! CPU utilization is busy workers / workers, averaged over a window of the cluster
//! clock; memory is a base plus a share per in-flight request. `/metrics` serves
//! Prometheus text: `http_requests_total{code}`, `http_request_duration_seconds`,
//! `http_requests_in_flight`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Capacity and resource model of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodConfig {
    /// Requests served at once (the pod's "cores"); also its CPU request.
    pub workers: u32,
    /// Time to serve one request, in real (wall) time: request service is never time-scaled.
    pub service_time: Duration,
    /// Requests that may wait for a worker; more get 503.
    pub queue_capacity: u32,
    /// Memory in use with no request in flight, in bytes.
    pub base_memory_bytes: u64,
    /// Memory added per in-flight request, in bytes.
    pub memory_per_request_bytes: u64,
    /// Window over which CPU utilization is averaged, in cluster-clock time.
    pub cpu_window: Duration,
}

impl Default for PodConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            service_time: Duration::from_millis(20),
            queue_capacity: 64,
            base_memory_bytes: 64 * 1024 * 1024,
            memory_per_request_bytes: 2 * 1024 * 1024,
            cpu_window: Duration::from_secs(15),
        }
    }
}

impl PodConfig {
    /// Requests per second one pod serves at full utilization.
    pub fn capacity_rps(&self) -> f64 {
        let secs = self.service_time.as_secs_f64();
        if secs > 0.0 { f64::from(self.workers) / secs } else { f64::INFINITY }
    }

    /// Check the values; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("pod.workers must be at least 1".to_string());
        }
        if self.cpu_window.is_zero() {
            return Err("pod.cpu_window must be longer than zero".to_string());
        }
        Ok(())
    }
}

/// Buckets of the CPU window.
const BUCKETS: u64 = 16;

/// Busy worker-seconds over a sliding window, in buckets of wall time.
#[derive(Debug)]
struct BusyTracker {
    origin: Instant,
    bucket: Duration,
    /// Busy worker-seconds per bucket; the back is bucket `last_index`.
    buckets: VecDeque<f64>,
    last_index: u64,
    busy: u32,
    last: Instant,
}

impl BusyTracker {
    fn new(now: Instant, window: Duration) -> Self {
        let bucket = (window / BUCKETS as u32).max(Duration::from_micros(100));
        Self { origin: now, bucket, buckets: VecDeque::from([0.0]), last_index: 0, busy: 0, last: now }
    }

    fn index_of(&self, t: Instant) -> u64 {
        (t.duration_since(self.origin).as_nanos() / self.bucket.as_nanos().max(1)) as u64
    }

    fn start_of(&self, index: u64) -> Instant {
        self.origin + self.bucket.saturating_mul(index.min(u64::from(u32::MAX)) as u32)
    }

    fn roll_to(&mut self, index: u64) {
        if index <= self.last_index {
            return;
        }
        if index - self.last_index > BUCKETS {
            self.buckets.clear();
            self.buckets.push_back(0.0);
        } else {
            for _ in self.last_index..index {
                self.buckets.push_back(0.0);
            }
        }
        self.last_index = index;
        // `BUCKETS` complete buckets plus the current, partial one.
        while self.buckets.len() as u64 > BUCKETS + 1 {
            self.buckets.pop_front();
        }
    }

    /// Account busy time up to `now`.
    fn advance(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let mut t = self.last;
        if self.busy > 0 {
            // Time older than the window does not matter.
            let horizon = self.bucket * (BUCKETS as u32 + 2);
            if now.duration_since(t) > horizon {
                t = now - horizon;
            }
            while t < now {
                let index = self.index_of(t);
                self.roll_to(index);
                let end = self.start_of(index + 1).min(now);
                if let Some(b) = self.buckets.back_mut() {
                    *b += f64::from(self.busy) * end.duration_since(t).as_secs_f64();
                }
                t = if end > t { end } else { now };
            }
        }
        let index = self.index_of(now);
        self.roll_to(index);
        self.last = now;
    }

    fn change(&mut self, now: Instant, delta: i32) {
        self.advance(now);
        self.busy = self.busy.saturating_add_signed(delta);
    }

    /// Average busy workers over the window ending `now`.
    fn average_busy(&mut self, now: Instant) -> f64 {
        self.advance(now);
        // Buckets missing from the deque (dropped after a long idle spell) were idle, so the
        // window always spans `BUCKETS` buckets plus the partial one, or all time since start.
        let sum: f64 = self.buckets.iter().sum();
        let full = BUCKETS as f64 * self.bucket.as_secs_f64();
        let partial = now.duration_since(self.start_of(self.last_index)).as_secs_f64();
        let covered = (full + partial).min(now.duration_since(self.origin).as_secs_f64());
        if covered <= 1e-6 { f64::from(self.busy) } else { sum / covered }
    }
}

/// Prometheus metrics of one pod.
#[derive(Debug)]
struct PodMetricsRegistry {
    registry: Registry,
    requests: Family<Vec<(String, String)>, Counter>,
    duration: Histogram,
    in_flight: Gauge,
}

impl PodMetricsRegistry {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Vec<(String, String)>, Counter>::default();
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0];
        let duration = Histogram::new(buckets);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests served, by status code", requests.clone());
        registry.register("http_request_duration_seconds", "Time from arrival to response", duration.clone());
        registry.register("http_requests_in_flight", "Requests queued or being served", in_flight.clone());
        Self { registry, requests, duration, in_flight }
    }
}

/// The capacity model shared by a pod's handlers, its metrics and the Service.
#[derive(Debug)]
pub(crate) struct CapacityModel {
    config: PodConfig,
    workers: Semaphore,
    in_flight: AtomicU32,
    served: AtomicU64,
    rejected: AtomicU64,
    busy: Mutex<BusyTracker>,
    metrics: PodMetricsRegistry,
}

/// Releases an admitted request's slot on drop (also when the client goes away).
struct Slot<'a>(&'a CapacityModel);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.in_flight.dec();
    }
}

/// Marks a worker busy while alive.
struct Busy<'a>(&'a CapacityModel);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.tracker().change(Instant::now(), -1);
    }
}

impl CapacityModel {
    /// A model averaging CPU over `cpu_window_wall` of real time.
    pub fn new(config: PodConfig, cpu_window_wall: Duration) -> Self {
        let workers = Semaphore::new(config.workers as usize);
        let busy = Mutex::new(BusyTracker::new(Instant::now(), cpu_window_wall));
        Self {
            config,
            workers,
            in_flight: AtomicU32::new(0),
            served: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            busy,
            metrics: PodMetricsRegistry::new(),
        }
    }

    fn tracker(&self) -> MutexGuard<'_, BusyTracker> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests queued or in service now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Requests answered 2xx so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Requests turned away with 503 so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// CPU utilization: busy workers / workers averaged over the window (0..=1).
    pub fn cpu_utilization(&self) -> f64 {
        let busy = self.tracker().average_busy(Instant::now());
        (busy / f64::from(self.config.workers.max(1))).clamp(0.0, 1.0)
    }

    /// CPU in use, in cores.
    pub fn cpu_cores(&self) -> f64 {
        self.cpu_utilization() * f64::from(self.config.workers)
    }

    /// Memory in use, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.config.base_memory_bytes + self.config.memory_per_request_bytes * u64::from(self.in_flight())
    }

    fn admit(&self) -> Option<Slot<'_>> {
        let limit = self.config.workers + self.config.queue_capacity;
        let previous = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self);
        self.metrics.in_flight.inc();
        if previous >= limit { None } else { Some(slot) }
    }

    fn observe(&self, status: StatusCode, elapsed: Duration) {
        self.metrics.requests.get_or_create(&vec![("code".to_string(), status.as_u16().to_string())]).inc();
        self.metrics.duration.observe(elapsed.as_secs_f64());
        if status.is_success() {
            self.served.fetch_add(1, Ordering::Relaxed);
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of this pod's metrics.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.metrics.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Queue, serve (sleep `service_time` on a worker), then answer.
async fn capacity_layer(State(model): State<Arc<CapacityModel>>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let Some(slot) = model.admit() else {
        model.observe(StatusCode::SERVICE_UNAVAILABLE, arrived.elapsed());
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "overloaded: queue full\n")
            .into_response();
    };
    let Ok(permit) = model.workers.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    model.tracker().change(Instant::now(), 1);
    let busy = Busy(&model);
    tokio::time::sleep(model.config.service_time).await;
    let response = next.run(request).await;
    drop(busy);
    drop(permit);
    drop(slot);
    model.observe(response.status(), arrived.elapsed());
    response
}

const PRODUCTS: &[(&str, u32)] = &[
    ("Trail running shoes", 8900),
    ("Rain jacket", 12900),
    ("Insulated bottle", 2400),
    ("Headlamp", 3900),
    ("Merino socks", 1900),
];

async fn index() -> Response {
    let items: String = PRODUCTS
        .iter()
        .enumerate()
        .map(|(i, (name, cents))| {
            format!("<li><a href=\"/products/{i}\">{name}</a> {}.{:02}</li>", cents / 100, cents % 100)
        })
        .collect();
    let body =
        format!("<!doctype html><title>shop</title><h1>Spring sale</h1><ul>{items}</ul><a href=\"/cart\">cart</a>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn product(Path(id): Path<String>) -> Response {
    match id.parse::<usize>().ok().and_then(|i| PRODUCTS.get(i).map(|p| (i, p))) {
        Some((i, (name, cents))) => axum::Json(json!({"id": i, "name": name, "price_cents": cents})).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no product {id:?}\n")).into_response(),
    }
}

async fn cart() -> Response {
    axum::Json(json!({"items": [{"product": 0, "quantity": 1}], "total_cents": PRODUCTS[0].1})).into_response()
}

async fn metrics(State(model): State<Arc<CapacityModel>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], model.render_metrics()).into_response()
}

/// The pod's routes: shop pages behind the capacity model, `/metrics` and `/healthz` outside it.
fn router(model: Arc<CapacityModel>) -> Router {
    let shop = Router::new()
        .route("/", get(index))
        .route("/products/{id}", get(product))
        .route("/cart", get(cart).post(cart))
        .route_layer(middleware::from_fn_with_state(model.clone(), capacity_layer));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(model)
        .merge(shop)
}

/// A running pod server.
#[derive(Debug)]
pub(crate) struct PodServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its capacity model.
    pub model: Arc<CapacityModel>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl PodServer {
    /// Bind `127.0.0.1:0` and serve.
    pub async fn start(config: PodConfig, cpu_window_wall: Duration) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let model = Arc::new(CapacityModel::new(config, cpu_window_wall));
        let (stop, mut stopped) = watch::channel(false);
        let app = router(model.clone());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "pod server stopped with an error");
            }
        });
        Ok(Self { addr, model, stop, task: Mutex::new(Some(task)) })
    }

    /// Stop accepting; requests in flight finish. Resolves when they have.
    pub async fn drain(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Stop at once, dropping requests in flight.
    pub fn abort(&self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn busy_tracker_averages_over_the_window() {
        let t0 = Instant::now();
        let mut tracker = BusyTracker::new(t0, Duration::from_secs(16));
        tracker.change(t0, 2);
        assert!((tracker.average_busy(t0 + Duration::from_secs(4)) - 2.0).abs() < 1e-9);
        tracker.change(t0 + Duration::from_secs(8), -2);
        let avg = tracker.average_busy(t0 + Duration::from_secs(16));
        assert!((avg - 1.0).abs() < 0.01, "{avg}");
        // Long after, the window holds only idle time.
        let avg = tracker.average_busy(t0 + Duration::from_secs(100));
        assert!(avg.abs() < 1e-9, "{avg}");
        tracker.change(t0 + Duration::from_secs(100), 1);
        // Four busy seconds after a long idle spell: a quarter of the window.
        let avg = tracker.average_busy(t0 + Duration::from_secs(104));
        assert!((avg - 0.25).abs() < 0.01, "{avg}");
        let avg = tracker.average_busy(t0 + Duration::from_secs(116));
        assert!((avg - 1.0).abs() < 0.01, "{avg}");
    }

    #[test]
    fn capacity_is_workers_over_service_time() {
        let c = PodConfig { workers: 4, service_time: Duration::from_millis(50), ..PodConfig::default() };
        assert!((c.capacity_rps() - 80.0).abs() < 1e-9);
        assert!(PodConfig { workers: 0, ..PodConfig::default() }.validate().unwrap_err().contains("workers"));
    }

    #[tokio::test]
    async fn queue_overflow_answers_503_and_metrics_count_codes() {
        let config = PodConfig {
            workers: 1,
            service_time: Duration::from_millis(100),
            queue_capacity: 1,
            ..PodConfig::default()
        };
        let server = PodServer::start(config, Duration::from_secs(1)).await.unwrap();
        let url = format!("http://{}/products/1", server.addr);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move { raw_get(&url).await }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes.sort();
        assert_eq!(codes, vec![200, 200, 503, 503]);
        let text = server.model.render_metrics();
        assert!(text.contains("http_requests_total{code=\"200\"} 2"), "{text}");
        assert!(text.contains("http_requests_total{code=\"503\"} 2"), "{text}");
        assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains("http_requests_in_flight 0"), "{text}");
        server.drain().await;
    }

    /// A minimal HTTP/1.1 GET returning the status code (keeps unit tests free of a client crate).
    async fn raw_get(url: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream
            .write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf);
        text.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
