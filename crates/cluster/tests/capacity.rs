//! The pods' capacity model over real HTTP: below capacity latency stays near the service time
//! and nothing is rejected; past capacity the queue fills, p95 latency rises and 503s appear.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use std::time::Duration;

use common::{http_client, open_loop, start_with, wait_until};
use prescale_cluster::{DeploymentSpec, PodConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_latency_rises_and_503s_appear_below_it_they_do_not() {
    // One pod of 2 workers x 20 ms: 100 requests/s at 100%, a queue of 32.
    let pod =
        PodConfig { workers: 2, service_time: Duration::from_millis(20), queue_capacity: 32, ..PodConfig::default() };
    let cluster = start_with(|c| {
        c.pod = pod.clone();
        c.startup_delay = Duration::ZERO;
        c.startup_jitter = Duration::ZERO;
    })
    .await;
    cluster.create_deployment(&DeploymentSpec::new("default", "shop", 1)).await.unwrap();
    wait_until("the pod is Ready", Duration::from_secs(30), || async {
        cluster.pods("default", "shop").unwrap().iter().any(|p| p.ready)
    })
    .await;
    let port = cluster.pods("default", "shop").unwrap()[0].port;
    let url = format!("http://127.0.0.1:{port}/products/7");
    let client = http_client();

    let below = open_loop(&client, &url, 0.4 * pod.capacity_rps(), Duration::from_secs(3)).await;
    let past = open_loop(&client, &url, 2.5 * pod.capacity_rps(), Duration::from_secs(3)).await;
    let (p95_below, p95_past) = (below.quantile(0.95), past.quantile(0.95));
    let ok_past = past.count(200);

    assert_eq!(below.count(503), 0, "no request is rejected at 40% of capacity");
    assert_eq!(below.failures, 0);
    assert!(p95_below < 0.2, "p95 at 40% of capacity stays near the 20 ms service time: {p95_below:.3} s");
    assert!(past.count(503) > 0, "at 250% of capacity the queue overflows into 503s ({ok_past} answered 200)");
    assert!(
        p95_past > 4.0 * p95_below,
        "past capacity the queue makes p95 rise: {p95_past:.3} s against {p95_below:.3} s below it"
    );
    // Served throughput is bounded by the capacity (with room for a loaded machine).
    let served_rps = ok_past as f64 / 3.0;
    assert!(served_rps < 1.3 * pod.capacity_rps(), "served {served_rps:.0} requests/s past a capacity of 100");
    cluster.shutdown().await;
}
