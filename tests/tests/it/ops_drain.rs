//! The drain on SIGTERM, with the real binaries: a process told to stop turns
//! unready at once, keeps serving for `DRAIN_DELAY`, then stops accepting,
//! finishes what is in flight and exits 0, so that a balancer that polls
//! readiness loses no request.
//!
//! - Two gateway processes behind a tiny test balancer ([`Balancer`]: round
//!   robin over the gateways whose `/ready` it last saw 200, polled every
//!   100 ms, as a real balancer's health check does) under continuous load
//!   (reads and orders); one gateway gets SIGTERM with `DRAIN_DELAY=2s`:
//!   every request gets its normal answer, and the process exits 0 within
//!   delay + grace.
//! - A service with a drain delay: after SIGTERM it answers NOT_SERVING but
//!   still serves calls until the delay ends, then exits 0.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{
    catalog::{CatalogClient, create_product},
    gateway::{Api, Reply},
    process::{ChildPlatform, ChildService, PlatformEnv, env, serving},
};

/// How long a SIGTERMed gateway keeps serving while unready.
const DRAIN_DELAY: Duration = Duration::from_secs(2);
/// `SHUTDOWN_GRACE` of the processes here.
const GRACE: Duration = Duration::from_secs(5);

/// What the test balancer knows of one gateway.
struct Backend {
    api: Api,
    /// As the last `/ready` poll saw it.
    ready: AtomicBool,
    /// Requests the balancer sent it.
    sent: AtomicU64,
    /// When the poller first saw `/ready` answer 503 (a draining gateway
    /// that still answers), if it did.
    first_503: Mutex<Option<Instant>>,
}

/// A balancer as a client library: each request goes to the next gateway,
/// round robin, among those whose `/ready` was 200 at the last poll.
struct Balancer {
    backends: Vec<Arc<Backend>>,
    next: AtomicUsize,
}

impl Balancer {
    /// Starts polling every gateway's `/ready` every 100 ms (a poll that
    /// fails or takes over 500 ms counts as not ready, as a real health check
    /// with a timeout would).
    fn start(urls: &[String]) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let backends: Vec<Arc<Backend>> = urls
            .iter()
            .map(|url| {
                Arc::new(Backend {
                    api: Api::new(url.clone()),
                    ready: AtomicBool::new(true),
                    sent: AtomicU64::new(0),
                    first_503: Mutex::new(None),
                })
            })
            .collect();
        let balancer = Arc::new(Self {
            backends,
            next: AtomicUsize::new(0),
        });
        let polled = balancer.clone();
        let poller = tokio::spawn(async move {
            let probe = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            loop {
                for backend in &polled.backends {
                    let answer = probe.get(backend.api.url("/ready")).send().await;
                    let status = answer.as_ref().map(reqwest::Response::status).ok();
                    if status == Some(StatusCode::SERVICE_UNAVAILABLE) {
                        backend
                            .first_503
                            .lock()
                            .unwrap()
                            .get_or_insert_with(Instant::now);
                    }
                    backend
                        .ready
                        .store(status == Some(StatusCode::OK), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (balancer, poller)
    }

    /// The next ready gateway, round robin; `None` when none is ready.
    fn pick(&self) -> Option<&Arc<Backend>> {
        let count = self.backends.len();
        for _ in 0..count {
            let index = self.next.fetch_add(1, Ordering::Relaxed) % count;
            let backend = &self.backends[index];
            if backend.ready.load(Ordering::SeqCst) {
                return Some(backend);
            }
        }
        None
    }

    /// Sends one request through the balancer (waits while no gateway is
    /// ready: a balancer with no backend would answer 503 itself, which is
    /// not the gateways' doing and cannot happen here, one gateway staying).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let backend = loop {
            match self.pick() {
                Some(backend) => break backend,
                None => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        backend.sent.fetch_add(1, Ordering::Relaxed);
        backend
            .api
            .try_send(method.clone(), path, body)
            .await
            .map_err(|error| format!("{method} {path} via {}: {error}", backend.api.base_url))
    }
}

/// One client of the load: reads a product, lists products, places an
/// order, over and over until `stop`; every answer must be the normal one.
async fn client(
    balancer: Arc<Balancer>,
    product_id: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let order = json!({"customer_id": 7, "products": [{"product_id": product_id, "quantity": 1}]});
    let product_path = format!("/api/products/{product_id}");
    while !stop.load(Ordering::SeqCst) {
        let requests: [(Method, &str, Option<&Value>, u16); 3] = [
            (Method::GET, &product_path, None, 200),
            (Method::GET, "/api/products?page=1&page_size=5", None, 200),
            (Method::POST, "/api/orders", Some(&order), 201),
        ];
        for (method, path, body, expected) in requests {
            match balancer.send(method.clone(), path, body).await {
                Ok(reply) if reply.status.as_u16() == expected => {}
                Ok(reply) => failures.push(format!(
                    "{method} {path}: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                )),
                Err(error) => failures.push(error),
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_behind_a_balancer_loses_no_request() {
    let drain = [
        ("DRAIN_DELAY", "2s".to_owned()),
        ("SHUTDOWN_GRACE", format!("{}s", GRACE.as_secs())),
        // Generous: slow is not failed on a loaded 2-core machine.
        ("GRPC_TIMEOUT", "20s".to_owned()),
    ];
    let platform = ChildPlatform::start(PlatformEnv {
        gateway: drain.to_vec(),
        ..Default::default()
    })
    .await;
    let second =
        ChildService::start_gateway(platform.catalog.url(), platform.order.url(), &drain).await;
    let urls = [platform.gateway_url(), second.url()];
    let first = Api::new(urls[0].clone());
    first.wait_backends("up").await;
    Api::new(urls[1].clone()).wait_backends("up").await;
    let product = first.create_product("Lamp", "25.00", 1_000_000).await;
    let product_id = product["id"].as_str().unwrap().to_owned();

    let (balancer, poller) = Balancer::start(&urls);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(client(
                balancer.clone(),
                product_id.clone(),
                stop.clone(),
                done.clone(),
            ))
        })
        .collect();

    // Load on both, then SIGTERM to the first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        balancer.backends[0].sent.load(Ordering::Relaxed) > 0
            && balancer.backends[1].sent.load(Ordering::Relaxed) > 0,
        "the load reaches both gateways"
    );
    let ChildPlatform {
        gateway: drained, ..
    } = platform;
    let sigterm = Instant::now();
    drained.sigterm();
    let before = done.load(Ordering::Relaxed);
    let exited_cleanly = tokio::time::timeout(Duration::from_secs(30), drained.wait_for_exit())
        .await
        .expect("the gateway exits");
    let took = sigterm.elapsed();
    // Load goes on a while through the one left.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    poller.abort();
    let answered = done.load(Ordering::Relaxed);
    eprintln!(
        "requests: {answered} answered ({} after SIGTERM); sent to the drained gateway {}, \
         to the other {}; exit {took:?} after SIGTERM",
        answered - before,
        balancer.backends[0].sent.load(Ordering::Relaxed),
        balancer.backends[1].sent.load(Ordering::Relaxed),
    );

    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(exited_cleanly, "the SIGTERMed gateway exits with 0");
    assert!(
        took >= DRAIN_DELAY,
        "it served on for the drain delay, exited after {took:?}"
    );
    assert!(
        took < DRAIN_DELAY + GRACE,
        "it exits within delay + grace; took {took:?}"
    );
    // It turned unready at once, and answered (503) while draining.
    let first_503 = balancer.backends[0]
        .first_503
        .lock()
        .unwrap()
        .expect("the draining gateway's /ready answered 503");
    assert!(
        first_503.duration_since(sigterm) < DRAIN_DELAY,
        "/ready 503 only {:?} after SIGTERM",
        first_503.duration_since(sigterm)
    );
    assert!(answered > before, "the load went on after SIGTERM");

    assert!(second.terminate().await, "the other gateway exits 0");
}

/// A catalog with a drain delay: NOT_SERVING at once on SIGTERM, calls still
/// answered during the delay (its admin `/ready` 503 meanwhile), then it
/// stops accepting and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_reports_not_serving_and_serves_on_for_its_drain_delay() {
    let database = tests::TestDatabase::fresh("catalog");
    let admin = tests::process::free_addr();
    let mut settings = env("DB_MAX_CONNECTIONS=2 SHUTDOWN_GRACE=5s DRAIN_DELAY=3s");
    settings.push(("DATABASE_URL", database.url()));
    settings.push(("ADMIN_ADDR", admin.to_string()));
    let mut catalog = ChildService::start("catalog-service", &settings).await;
    catalog
        .wait_until_serving("catalog.v1.CatalogService")
        .await;
    let mut client = CatalogClient::connect(catalog.url()).await.unwrap();
    let product = create_product(&mut client, "Lamp", "25.00", 3).await;
    let http = tests::gateway::http_client();

    let sigterm = Instant::now();
    catalog.sigterm();
    let deadline = sigterm + Duration::from_secs(2);
    while serving(catalog.addr, "").await {
        assert!(Instant::now() < deadline, "still SERVING 2 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!serving(catalog.addr, "catalog.v1.CatalogService").await);
    let ready = http
        .get(format!("http://{admin}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Still within the delay: a new connection and a call are served.
    assert!(sigterm.elapsed() < Duration::from_secs(3));
    let mut fresh = CatalogClient::connect(catalog.url()).await.unwrap();
    let read = fresh
        .get_product(proto::catalog::v1::GetProductRequest {
            id: product.id.clone(),
        })
        .await
        .expect("served during the drain delay")
        .into_inner();
    assert_eq!(read.id, product.id);

    assert!(catalog.wait_for_exit().await, "exit status 0");
    let took = sigterm.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(3 + 5),
        "exited {took:?} after SIGTERM"
    );
}
