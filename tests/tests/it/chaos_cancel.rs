//! Clients that go away mid-request, and gRPC deadlines that expire, never
//! leave a database transaction half-open and never strand or oversell stock.
//!
//! How: the three real binaries run as child processes, on fresh databases,
//! everything they write captured (their default `warn` level is enough:
//! sqlx logs PostgreSQL's notices, such as `there is already a transaction in
//! progress`, as warnings). The test seeds products through the gateway, then
//! for [`LOAD_SECONDS`] runs:
//!
//! - [`HTTP_CLIENTS`] HTTP clients against the gateway, over raw TCP
//!   ([`tests::chaos`]) so that each request stops exactly where the test
//!   says: complete, cut before sending, cut inside the body, cut after
//!   sending, or cut inside the answer; over every write and read endpoint
//!   (orders, status changes, payment webhooks, product edits and deletes,
//!   lists and reads);
//! - [`GRPC_CALLERS`] gRPC callers straight at both services, each call with
//!   a deadline of 1-50 ms or dropped by the caller after 0-50 ms.
//!
//! A cut HTTP request makes the gateway drop its gRPC call; a dropped or
//! expired gRPC call makes the service drop its handler, wherever it is:
//! mid-transaction, between the saga's steps, inside a catalog call. Product
//! edits never touch the quantity, so stock stays accountable.
//!
//! Once the load stops and the order service's reconciler has finished (no
//! order in the saga's `reserving` state, no undelivered outbox row, the
//! databases quiet), the test checks:
//!
//! - (a) no captured line says `transaction in progress` (checked after the
//!   processes stopped, so shutdown is covered too);
//! - (b) both services' `db_connections_returned_in_transaction_total` is 0
//!   (and exposed);
//! - (c) per product, exactly: initial stock = current stock + units of
//!   pending and completed orders;
//! - (d) the catalog's reservations agree with the orders: held for pending,
//!   committed for completed, released for canceled, lines equal to items;
//! - (e) no order is left `reserving`;
//! - (f) every order a client was told was created (HTTP 201, gRPC OK) exists
//!   with a visible status;
//!
//! and that the load really exercised every cut and every endpoint. All
//! failures are collected and reported together, after the processes stopped.
//!
//! About 25 s with the default 20 s of load (2 cores). `CHAOS_SECONDS`
//! shortens or lengthens the load, `CHAOS_SEED` repeats a run's random choices
//! (timing still differs), `CHAOS_OUTPUT_DUMP=<file>` writes the processes'
//! captured output there.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use proto::{
    catalog::v1::{
        GetProductRequest, ListProductsRequest, UpdateProductRequest,
        catalog_service_client::CatalogServiceClient,
    },
    order::v1::{
        ApplyPaymentRequest, CreateOrderItem, CreateOrderRequest, GetOrderRequest,
        ListOrdersRequest, OrderStatus, PaymentStatus, UpdateOrderStatusRequest,
        order_service_client::OrderServiceClient,
    },
};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tests::{
    chaos::{self, Cut, Outcome, Rng},
    gateway::{Api, WEBHOOK_SECRET, sign},
    process::{CapturedOutput, ChildPlatform, PlatformEnv, env, strip_ansi},
    select, select_value,
};
use tokio::time::Instant;
use tonic::transport::Channel;
use uuid::Uuid;

/// Concurrent HTTP clients against the gateway.
const HTTP_CLIENTS: usize = 200;
/// How long the load runs; `CHAOS_SECONDS` overrides it.
const LOAD_SECONDS: u64 = 20;
/// Concurrent gRPC callers straight at the services.
const GRPC_CALLERS: usize = 8;
/// Products that orders take stock from.
const ORDER_PRODUCTS: usize = 20;
/// Products no order uses: what DELETE may remove.
const SPARE_PRODUCTS: usize = 30;
/// Enough that the load rarely runs a product dry (it would be fine if it
/// did: refused orders move no stock).
const ORDER_PRODUCT_STOCK: i64 = 1_000;
const SPARE_PRODUCT_STOCK: i64 = 5;
/// Longest one request or call may take before the test calls it stuck.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// The reconciler runs every second with a 1 s grace: after this long past
/// the load, at least one pass has seen every order the load left behind.
const RECONCILER_PASS: Duration = Duration::from_secs(2);
/// Upper bound on the platform settling after the load.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// "A few": the least number of times each cut, endpoint and RPC must have
/// been exercised for the run to count.
const FEW: u64 = 5;
/// The guard metric: connections that went back to a pool inside an open
/// transaction (the services must expose it, reading 0 when none did).
const RETURNED_IN_TRANSACTION: &str = "db_connections_returned_in_transaction_total";
/// PostgreSQL's warning for `BEGIN` inside a transaction ("there is already a
/// transaction in progress") and for `COMMIT` / `ROLLBACK` outside one
/// ("there is no transaction in progress"): either way a transaction's
/// boundaries were lost, typically by a connection going back to its pool,
/// and then to another request, in the middle of one.
const HALF_OPEN_TRANSACTION_NOTICE: &str = "transaction in progress";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_going_away_and_expired_deadlines_leave_no_open_transaction_and_conserve_stock() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(chaos::seed_from_clock);
    let load = load_duration();
    eprintln!("chaos_cancel: CHAOS_SEED={seed}, load {load:?}");

    let output = CapturedOutput::new();
    let platform = start_platform(&output).await;
    let api = Api::new(platform.gateway_url());
    api.wait_ready(200).await;
    let catalogue = Catalogue::seed(&api).await;
    let warm_up_orders = catalogue.order_every_product_once(&api).await;
    let shared = Arc::new(Shared {
        catalogue,
        known_orders: Mutex::new(warm_up_orders.clone()),
    });

    let order_client = OrderServiceClient::connect(platform.order.url())
        .await
        .expect("order service reachable over gRPC");
    let catalog_client = CatalogServiceClient::connect(platform.catalog.url())
        .await
        .expect("catalog reachable over gRPC");

    // The load.
    let started = Instant::now();
    let load_ends = started + load;
    let mut rng = Rng::new(seed);
    let http_clients: Vec<_> = (0..HTTP_CLIENTS)
        .map(|index| {
            let client = HttpClient {
                index,
                shared: shared.clone(),
                gateway: platform.gateway.addr,
                rng: Rng::new(rng.next_u64()),
                last_keyed_order: None,
                keys_made: 0,
                tally: HttpTally::default(),
            };
            tokio::spawn(client.run(load_ends))
        })
        .collect();
    let grpc_callers: Vec<_> = (0..GRPC_CALLERS)
        .map(|index| {
            let caller = GrpcCaller {
                index,
                shared: shared.clone(),
                orders: order_client.clone(),
                catalog: catalog_client.clone(),
                rng: Rng::new(rng.next_u64()),
                tally: GrpcTally::default(),
            };
            tokio::spawn(caller.run(load_ends))
        })
        .collect();
    let mut http_tally = HttpTally::default();
    for client in http_clients {
        http_tally.merge(client.await.expect("HTTP client task"));
    }
    let mut grpc_tally = GrpcTally::default();
    for caller in grpc_callers {
        grpc_tally.merge(caller.await.expect("gRPC caller task"));
    }
    let load_ended = Instant::now();
    eprintln!("load ran {:?}", load_ended - started);
    http_tally.report();
    grpc_tally.report();

    let mut failures = Failures::default();
    check_exercised(&http_tally, &grpc_tally, &mut failures);

    match settle(&platform, load_ended).await {
        Ok(waited) => eprintln!("settled {waited:?} after the load"),
        Err(state) => failures.add("the platform settles after the load", state),
    }

    // (b), while the services still run.
    for (service, url) in &platform.metrics_urls()[1..] {
        match tests::metric_sample(&api.http, url, RETURNED_IN_TRANSACTION).await {
            None => failures.add(
                "(b) guard metric",
                format!("{service} does not expose {RETURNED_IN_TRANSACTION} at {url}"),
            ),
            Some(value) if value != 0.0 => failures.add(
                "(b) guard metric",
                format!(
                    "{service}: {RETURNED_IN_TRANSACTION} = {value}: connections went back to \
                     the pool inside an open transaction"
                ),
            ),
            Some(_) => {}
        }
    }

    // (c) to (f), on what the databases hold.
    let snapshot = Snapshot::read(&platform).await;
    snapshot.report();
    let mut confirmed: BTreeSet<String> = warm_up_orders.into_iter().collect();
    confirmed.extend(http_tally.confirmed_orders.iter().cloned());
    confirmed.extend(grpc_tally.confirmed_orders.iter().cloned());
    check_conservation(&shared.catalogue, &snapshot, &mut failures);
    check_reservations_agree(&snapshot, &mut failures);
    check_nothing_reserving(&snapshot, &mut failures);
    check_confirmed_orders_exist(&confirmed, &snapshot, &mut failures);

    // (a), once every process has said all it had to say.
    for (name, exited_cleanly) in platform.stop().await {
        if !exited_cleanly {
            failures.add(
                "clean shutdown",
                format!("{name} did not exit with 0 after SIGTERM"),
            );
        }
    }
    check_no_half_open_transaction_logged(&output, &mut failures);

    failures.assert_none();
}

fn load_duration() -> Duration {
    let seconds = std::env::var("CHAOS_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("CHAOS_SECONDS={s:?} is not a number of seconds"))
        })
        .unwrap_or(LOAD_SECONDS);
    Duration::from_secs(seconds)
}

// ---------------------------------------------------------------------------
// The platform: three child processes, their output captured together.

async fn start_platform(output: &CapturedOutput) -> ChildPlatform {
    ChildPlatform::start(PlatformEnv {
        catalog: env("DB_MAX_CONNECTIONS=6"),
        // The reconciler takes what the load leaves in flight within seconds,
        // not the default minutes.
        order: env(
            "DB_MAX_CONNECTIONS=6 RESERVING_GRACE=1s RECONCILE_INTERVAL=1s \
             GRPC_TIMEOUT=2000ms",
        ),
        output: Some(output),
        ..Default::default()
    })
    .await
}

// ---------------------------------------------------------------------------
// The products, seeded through the API.

struct Catalogue {
    /// Products that orders use.
    ordered: Vec<Uuid>,
    /// Products no order uses.
    spare: Vec<Uuid>,
    /// Both.
    all: Vec<Uuid>,
    initial_stock: BTreeMap<Uuid, i64>,
    /// As created (the load renames them; these stay recognisable).
    names: BTreeMap<Uuid, String>,
}

impl Catalogue {
    async fn seed(api: &Api) -> Self {
        let mut catalogue = Self {
            ordered: Vec::new(),
            spare: Vec::new(),
            all: Vec::new(),
            initial_stock: BTreeMap::new(),
            names: BTreeMap::new(),
        };
        for n in 0..ORDER_PRODUCTS + SPARE_PRODUCTS {
            let (name, stock) = if n < ORDER_PRODUCTS {
                (format!("Ordered product {n}"), ORDER_PRODUCT_STOCK)
            } else {
                (format!("Spare product {n}"), SPARE_PRODUCT_STOCK)
            };
            let body = json!({"name": name, "description": "chaos test", "price": "10.00", "quantity": stock});
            let product = api
                .post("/api/products", &body)
                .await
                .expect(201)
                .json
                .clone();
            assert_eq!(product["quantity"], stock, "{product}");
            let id: Uuid = product["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("no product id in {product}"));
            if n < ORDER_PRODUCTS {
                catalogue.ordered.push(id);
            } else {
                catalogue.spare.push(id);
            }
            catalogue.all.push(id);
            catalogue.initial_stock.insert(id, stock);
            catalogue.names.insert(id, name);
        }
        catalogue
    }

    /// One order of one unit per ordered product, before the load: from the
    /// first second on, a DELETE of any of them must be refused (a product
    /// that is part of an order cannot be deleted), so a DELETE the load
    /// sends can never take away stock the conservation check counts.
    /// Returns the orders' ids.
    async fn order_every_product_once(&self, api: &Api) -> Vec<String> {
        let mut ids = Vec::new();
        for product in &self.ordered {
            let order = api.create_order(1, &[(&product.to_string(), 1)]).await;
            order.expect(201);
            let id = order.json["id"].as_str();
            ids.push(
                id.unwrap_or_else(|| panic!("no order id in {}", order.json))
                    .to_owned(),
            );
        }
        ids
    }

    fn name(&self, product: &Uuid) -> &str {
        self.names.get(product).map_or("?", String::as_str)
    }
}

/// What every client of the load shares.
struct Shared {
    catalogue: Catalogue,
    /// Every order a client has read as created: what status changes,
    /// payments and reads aim at.
    known_orders: Mutex<Vec<String>>,
}

impl Shared {
    /// A known order, or now and then an unknown id (a 404 / NOT_FOUND is
    /// part of the load too).
    fn some_order(&self, rng: &mut Rng) -> String {
        let known = self.known_orders.lock().expect("known orders lock");
        if known.is_empty() || rng.chance(5) {
            Uuid::new_v4().to_string()
        } else {
            rng.pick(&known).clone()
        }
    }

    fn remember_order(&self, id: &str) {
        self.known_orders
            .lock()
            .expect("known orders lock")
            .push(id.to_owned());
    }

    /// 1-3 lines on distinct ordered products, 1-3 units each.
    fn order_lines(&self, rng: &mut Rng) -> Vec<(Uuid, u64)> {
        let ordered = &self.catalogue.ordered;
        let count = rng.range(1, 3) as usize;
        let first = rng.below(ordered.len() as u64) as usize;
        let step = 1 + rng.below(ordered.len() as u64 - 1) as usize;
        let mut products: Vec<Uuid> = (0..count)
            .map(|k| ordered[(first + k * step) % ordered.len()])
            .collect();
        products.dedup();
        products
            .into_iter()
            .map(|product| (product, rng.range(1, 3)))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The HTTP clients.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Endpoint {
    CreateOrder,
    SetOrderStatus,
    PaymentWebhook,
    UpdateProduct,
    DeleteProduct,
    ListProducts,
    ListOrders,
    GetProduct,
    GetOrder,
}

impl Endpoint {
    /// Writes first: they are what a cut can leave half done.
    const WEIGHTED: [(Endpoint, u64); 9] = [
        (Endpoint::CreateOrder, 30),
        (Endpoint::SetOrderStatus, 14),
        (Endpoint::PaymentWebhook, 10),
        (Endpoint::UpdateProduct, 8),
        (Endpoint::DeleteProduct, 5),
        (Endpoint::ListProducts, 8),
        (Endpoint::ListOrders, 8),
        (Endpoint::GetProduct, 9),
        (Endpoint::GetOrder, 8),
    ];

    fn route(self) -> &'static str {
        match self {
            Endpoint::CreateOrder => "POST /api/orders",
            Endpoint::SetOrderStatus => "PUT /api/orders/{id}/status",
            Endpoint::PaymentWebhook => "POST /api/payment-webhook",
            Endpoint::UpdateProduct => "PUT /api/products/{id}",
            Endpoint::DeleteProduct => "DELETE /api/products/{id}",
            Endpoint::ListProducts => "GET /api/products",
            Endpoint::ListOrders => "GET /api/orders",
            Endpoint::GetProduct => "GET /api/products/{id}",
            Endpoint::GetOrder => "GET /api/orders/{id}",
        }
    }
}

/// Complete requests are the most common (they create the orders the cuts
/// then change); each cut gets its share.
fn cut_weights() -> [(Cut, u64); 5] {
    Cut::ALL.map(|cut| (cut, if cut == Cut::Complete { 40 } else { 15 }))
}

/// A request about to be sent, with what its answer must be checked for.
struct Planned {
    endpoint: Endpoint,
    request: chaos::Request,
    /// A DELETE of a product that orders use: must never succeed.
    deletes_ordered_product: bool,
}

struct HttpClient {
    index: usize,
    shared: Arc<Shared>,
    gateway: SocketAddr,
    rng: Rng,
    /// The last order sent with an Idempotency-Key: a client whose request
    /// was cut retries it, same key and same body.
    last_keyed_order: Option<(String, Vec<u8>)>,
    keys_made: u64,
    tally: HttpTally,
}

impl HttpClient {
    async fn run(mut self, until: Instant) -> HttpTally {
        while Instant::now() < until {
            let planned = self.plan();
            let cut = self.rng.weighted(&cut_weights());
            let exchange = chaos::exchange(self.gateway, &planned.request, cut, &mut self.rng);
            match tokio::time::timeout(REQUEST_LIMIT, exchange).await {
                Ok(outcome) => self.record(&planned, cut, outcome),
                Err(_) => {
                    *self
                        .tally
                        .attempts
                        .entry((planned.endpoint, cut))
                        .or_default() += 1;
                    self.tally.stuck.push(format!(
                        "{} {} ({cut:?}): no end after {REQUEST_LIMIT:?}",
                        planned.request.method, planned.request.path
                    ));
                }
            }
            // A little think time, so 200 clients load the machine without
            // starving the servers of CPU.
            tokio::time::sleep(Duration::from_millis(self.rng.below(20))).await;
        }
        self.tally
    }

    fn plan(&mut self) -> Planned {
        let endpoint = self.rng.weighted(&Endpoint::WEIGHTED);
        let shared = self.shared.clone();
        let rng = &mut self.rng;
        let mut deletes_ordered_product = false;
        let request = match endpoint {
            Endpoint::CreateOrder => {
                let (key, body) = self.order_body();
                let request = chaos::Request::post("/api/orders", body);
                match key {
                    Some(key) => request.header("Idempotency-Key", &key),
                    None => request,
                }
            }
            Endpoint::SetOrderStatus => {
                let id = shared.some_order(rng);
                let status = if rng.chance(50) {
                    "completed"
                } else {
                    "canceled"
                };
                chaos::Request::put(
                    format!("/api/orders/{id}/status"),
                    to_bytes(&json!({"status": status})),
                )
            }
            Endpoint::PaymentWebhook => {
                let id = shared.some_order(rng);
                let payment = if rng.chance(70) { "paid" } else { "failed" };
                let body = to_bytes(&json!({"order_id": id, "payment_status": payment}));
                let signature = sign(WEBHOOK_SECRET, &body);
                chaos::Request::post("/api/payment-webhook", body).header("X-Signature", &signature)
            }
            Endpoint::UpdateProduct => {
                let id = rng.pick(&shared.catalogue.all);
                chaos::Request::put(format!("/api/products/{id}"), product_edit(rng))
            }
            Endpoint::DeleteProduct => {
                deletes_ordered_product = rng.chance(20);
                let id = if deletes_ordered_product {
                    rng.pick(&shared.catalogue.ordered)
                } else {
                    rng.pick(&shared.catalogue.spare)
                };
                chaos::Request::delete(format!("/api/products/{id}"))
            }
            Endpoint::ListProducts => chaos::Request::get(format!(
                "/api/products?page={}&page_size=20",
                rng.range(1, 3)
            )),
            Endpoint::ListOrders => {
                chaos::Request::get(format!("/api/orders?page={}&page_size=20", rng.range(1, 5)))
            }
            Endpoint::GetProduct => {
                let id = rng.pick(&shared.catalogue.all);
                chaos::Request::get(format!("/api/products/{id}"))
            }
            Endpoint::GetOrder => {
                let id = shared.some_order(rng);
                chaos::Request::get(format!("/api/orders/{id}"))
            }
        };
        Planned {
            endpoint,
            request,
            deletes_ordered_product,
        }
    }

    /// A new order body, or (sometimes) the replay of the last keyed one.
    fn order_body(&mut self) -> (Option<String>, Vec<u8>) {
        let keyed = self.rng.chance(25);
        if keyed
            && self.rng.chance(50)
            && let Some((key, body)) = &self.last_keyed_order
        {
            return (Some(key.clone()), body.clone());
        }
        let products: Vec<Value> = self
            .shared
            .order_lines(&mut self.rng)
            .into_iter()
            .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
            .collect();
        let body = to_bytes(&json!({"customer_id": 1 + self.index, "products": products}));
        if !keyed {
            return (None, body);
        }
        self.keys_made += 1;
        let key = format!("chaos-http-{}-{}", self.index, self.keys_made);
        self.last_keyed_order = Some((key.clone(), body.clone()));
        (Some(key), body)
    }

    fn record(&mut self, planned: &Planned, cut: Cut, outcome: Outcome) {
        let endpoint = planned.endpoint;
        let tally = &mut self.tally;
        if let Outcome::ConnectFailed(why) = &outcome {
            tally.connect_failures += 1;
            tally.sample(format!("connect: {why}"));
            return;
        }
        *tally.attempts.entry((endpoint, cut)).or_default() += 1;
        let request = &planned.request;
        match outcome {
            Outcome::ConnectFailed(_) => unreachable!("handled above"),
            Outcome::WentAway => *tally.as_planned.entry(cut).or_default() += 1,
            Outcome::ServerClosed(why) => {
                *tally.server_closed.entry(cut).or_default() += 1;
                if cut == Cut::Complete {
                    tally.sample(format!(
                        "{} {}: no whole answer: {why}",
                        request.method, request.path
                    ));
                }
            }
            Outcome::Answered(response) => {
                *tally.as_planned.entry(cut).or_default() += 1;
                *tally
                    .statuses
                    .entry((endpoint, response.status))
                    .or_default() += 1;
                if endpoint == Endpoint::CreateOrder && response.status == 201 {
                    match response.json()["id"].as_str() {
                        Some(id) => {
                            tally.confirmed_orders.push(id.to_owned());
                            self.shared.remember_order(id);
                        }
                        None => tally.violations.push(format!(
                            "POST /api/orders answered 201 without an order id: {}",
                            response.body_text()
                        )),
                    }
                }
                if planned.deletes_ordered_product && !matches!(response.status, 400 | 503 | 504) {
                    tally.violations.push(format!(
                        "DELETE {} of a product that orders use answered {} (must be 400): {}",
                        request.path,
                        response.status,
                        response.body_text()
                    ));
                }
                // 503 and 504 are the contract's answers for a backend that
                // is down or late (counted in the statuses); others are worth
                // a look.
                if response.status >= 500 && !matches!(response.status, 503 | 504) {
                    tally.sample(format!(
                        "{} {} answered {}: {}",
                        request.method,
                        request.path,
                        response.status,
                        response.body_text()
                    ));
                }
            }
        }
    }
}

/// A partial update of name, price and/or description: never the quantity,
/// so that stock only moves through orders.
fn product_edit(rng: &mut Rng) -> Vec<u8> {
    let mut edit = serde_json::Map::new();
    loop {
        if rng.chance(50) {
            edit.insert(
                "name".into(),
                json!(format!("Renamed product {}", rng.below(1_000_000))),
            );
        }
        if rng.chance(50) {
            edit.insert("price".into(), json!(random_price(rng)));
        }
        if rng.chance(30) {
            edit.insert(
                "description".into(),
                json!(format!("edited {}", rng.below(1_000_000))),
            );
        }
        if !edit.is_empty() {
            return to_bytes(&Value::Object(edit));
        }
    }
}

/// "1.00" to "500.99".
fn random_price(rng: &mut Rng) -> String {
    format!("{}.{:02}", rng.range(1, 500), rng.below(100))
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serialises")
}

/// What the HTTP clients did and saw.
#[derive(Default)]
struct HttpTally {
    /// Requests that got a connection, per endpoint and cut.
    attempts: BTreeMap<(Endpoint, Cut), u64>,
    /// Exchanges that went as planned: the client cut where it meant to, or
    /// (complete ones) read the whole answer.
    as_planned: BTreeMap<Cut, u64>,
    /// Exchanges the server ended first.
    server_closed: BTreeMap<Cut, u64>,
    connect_failures: u64,
    /// Statuses of the answers read whole.
    statuses: BTreeMap<(Endpoint, u16), u64>,
    /// Orders whose 201 a client read whole.
    confirmed_orders: Vec<String>,
    /// Requests that had no end within [`REQUEST_LIMIT`].
    stuck: Vec<String>,
    /// Answers the contract rules out.
    violations: Vec<String>,
    /// A few answers 5xx other than 503 and 504, and broken exchanges, for
    /// the report.
    samples: Vec<String>,
}

impl HttpTally {
    const SAMPLES: usize = 20;

    fn sample(&mut self, line: String) {
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(line);
        }
    }

    fn merge(&mut self, other: HttpTally) {
        merge_counts(&mut self.attempts, other.attempts);
        merge_counts(&mut self.as_planned, other.as_planned);
        merge_counts(&mut self.server_closed, other.server_closed);
        merge_counts(&mut self.statuses, other.statuses);
        self.connect_failures += other.connect_failures;
        self.confirmed_orders.extend(other.confirmed_orders);
        self.stuck.extend(other.stuck);
        self.violations.extend(other.violations);
        for line in other.samples {
            self.sample(line);
        }
    }

    fn by_endpoint(&self) -> BTreeMap<Endpoint, u64> {
        let mut counts = BTreeMap::new();
        for ((endpoint, _), n) in &self.attempts {
            *counts.entry(*endpoint).or_default() += n;
        }
        counts
    }

    fn answered(&self, endpoint: Endpoint) -> u64 {
        self.statuses
            .iter()
            .filter(|((e, _), _)| *e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }

    fn report(&self) {
        let total: u64 = self.attempts.values().sum();
        eprintln!(
            "HTTP: {total} requests, {} connect failures, {} stuck, {} orders read as created",
            self.connect_failures,
            self.stuck.len(),
            self.confirmed_orders.len()
        );
        for cut in Cut::ALL {
            let attempts: u64 = self
                .attempts
                .iter()
                .filter(|((_, c), _)| *c == cut)
                .map(|(_, n)| n)
                .sum();
            eprintln!(
                "  {cut:?}: {attempts} sent, {} as planned, {} ended by the server first",
                self.as_planned.get(&cut).unwrap_or(&0),
                self.server_closed.get(&cut).unwrap_or(&0)
            );
        }
        for (endpoint, attempts) in self.by_endpoint() {
            eprintln!(
                "  {}: {attempts} sent; answers read whole: {}",
                endpoint.route(),
                counts_of(&self.statuses, endpoint)
            );
        }
        for line in &self.samples {
            eprintln!("  sample: {line}");
        }
    }
}

/// `"<second>×<n> ..."` for the counts whose key starts with `first`.
fn counts_of<A: PartialEq, B: std::fmt::Display>(
    counts: &BTreeMap<(A, B), u64>,
    first: A,
) -> String {
    let matching = counts.iter().filter(|((a, _), _)| *a == first);
    let shown: Vec<String> = matching.map(|((_, b), n)| format!("{b}×{n}")).collect();
    shown.join(" ")
}

fn merge_counts<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
    for (key, n) in from {
        *into.entry(key).or_default() += n;
    }
}

// ---------------------------------------------------------------------------
// The gRPC callers.

type OrderClient = OrderServiceClient<Channel>;
type CatalogClient = CatalogServiceClient<Channel>;

/// Never ReserveInventory, ReleaseInventory or CommitInventory: those would
/// move stock outside orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Rpc {
    CreateOrder,
    UpdateOrderStatus,
    ApplyPayment,
    ListOrders,
    GetOrder,
    ListProducts,
    GetProduct,
    UpdateProduct,
}

impl Rpc {
    const ALL: [Rpc; 8] = [
        Rpc::CreateOrder,
        Rpc::UpdateOrderStatus,
        Rpc::ApplyPayment,
        Rpc::ListOrders,
        Rpc::GetOrder,
        Rpc::ListProducts,
        Rpc::GetProduct,
        Rpc::UpdateProduct,
    ];
}

/// How a caller stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum GiveUp {
    /// A gRPC deadline (`grpc-timeout`) the server sees too.
    Deadline,
    /// The caller drops the call (the stream is reset): the server learns
    /// nothing but that.
    Drop,
}

/// One prepared call.
enum GrpcCall {
    CreateOrder(CreateOrderRequest),
    UpdateOrderStatus(UpdateOrderStatusRequest),
    ApplyPayment(ApplyPaymentRequest),
    ListOrders(ListOrdersRequest),
    GetOrder(GetOrderRequest),
    ListProducts(ListProductsRequest),
    GetProduct(GetProductRequest),
    UpdateProduct(UpdateProductRequest),
}

struct GrpcCaller {
    index: usize,
    shared: Arc<Shared>,
    orders: OrderClient,
    catalog: CatalogClient,
    rng: Rng,
    tally: GrpcTally,
}

impl GrpcCaller {
    async fn run(mut self, until: Instant) -> GrpcTally {
        while Instant::now() < until {
            let rpc = *self.rng.pick(&Rpc::ALL);
            let call = self.plan(rpc);
            let give_up = if self.rng.chance(50) {
                GiveUp::Deadline
            } else {
                GiveUp::Drop
            };
            let after = Duration::from_millis(match give_up {
                GiveUp::Deadline => self.rng.range(1, 50),
                GiveUp::Drop => self.rng.range(0, 50),
            });
            *self.tally.attempts.entry((rpc, give_up)).or_default() += 1;
            let (deadline, wait) = match give_up {
                GiveUp::Deadline => (Some(after), REQUEST_LIMIT),
                GiveUp::Drop => (None, after),
            };
            let sent = send(call, &mut self.orders, &mut self.catalog, deadline);
            let outcome = match tokio::time::timeout(wait, sent).await {
                Ok(Ok(created)) => {
                    if let Some(id) = created {
                        self.shared.remember_order(&id);
                        self.tally.confirmed_orders.push(id);
                    }
                    "OK".to_owned()
                }
                Ok(Err(status)) => format!("{:?}", status.code()),
                Err(_) if give_up == GiveUp::Drop => "dropped by the caller".to_owned(),
                Err(_) => {
                    self.tally.stuck.push(format!(
                        "{rpc:?} with a {after:?} deadline: no end after {REQUEST_LIMIT:?}"
                    ));
                    "stuck".to_owned()
                }
            };
            *self.tally.outcomes.entry((rpc, outcome)).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(self.rng.range(1, 5))).await;
        }
        self.tally
    }

    fn plan(&mut self, rpc: Rpc) -> GrpcCall {
        let rng = &mut self.rng;
        let shared = &self.shared;
        match rpc {
            Rpc::CreateOrder => GrpcCall::CreateOrder(CreateOrderRequest {
                customer_id: 10_000 + self.index as i64,
                items: shared
                    .order_lines(rng)
                    .into_iter()
                    .map(|(product, quantity)| CreateOrderItem {
                        product_id: product.to_string(),
                        quantity: quantity as i32,
                    })
                    .collect(),
                idempotency_key: rng
                    .chance(25)
                    .then(|| format!("chaos-grpc-{}-{}", self.index, rng.next_u64())),
            }),
            Rpc::UpdateOrderStatus => {
                let id = shared.some_order(rng);
                let to = rng.weighted(&[(OrderStatus::Completed, 50), (OrderStatus::Canceled, 50)]);
                let status = to as i32;
                GrpcCall::UpdateOrderStatus(UpdateOrderStatusRequest { id, status })
            }
            Rpc::ApplyPayment => {
                let payment =
                    rng.weighted(&[(PaymentStatus::Paid, 70), (PaymentStatus::Failed, 30)]);
                GrpcCall::ApplyPayment(ApplyPaymentRequest {
                    order_id: shared.some_order(rng),
                    payment_status: payment as i32,
                    event_id: rng.chance(50).then(|| Uuid::new_v4().to_string()),
                })
            }
            Rpc::ListOrders => GrpcCall::ListOrders(ListOrdersRequest {
                page: rng.range(1, 5) as u32,
                page_size: 20,
                status: None,
                payment_status: None,
                customer_id: None,
            }),
            Rpc::GetOrder => GrpcCall::GetOrder(GetOrderRequest {
                id: shared.some_order(rng),
            }),
            Rpc::ListProducts => GrpcCall::ListProducts(ListProductsRequest {
                page: rng.range(1, 3) as u32,
                page_size: 20,
                in_stock: None,
            }),
            Rpc::GetProduct => GrpcCall::GetProduct(GetProductRequest {
                id: rng.pick(&shared.catalogue.all).to_string(),
            }),
            Rpc::UpdateProduct => {
                // Name and/or price, never the quantity.
                let rename = rng.chance(60);
                let reprice = !rename || rng.chance(50);
                GrpcCall::UpdateProduct(UpdateProductRequest {
                    id: rng.pick(&shared.catalogue.all).to_string(),
                    name: rename.then(|| format!("Renamed over gRPC {}", rng.below(1_000_000))),
                    description: None,
                    price: reprice.then(|| tests::catalog::money(&random_price(rng))),
                    quantity: None,
                    clear_description: false,
                    expected_version: None,
                })
            }
        }
    }
}

/// Sends the call with an optional deadline; `Some(order id)` for a created
/// order.
async fn send(
    call: GrpcCall,
    orders: &mut OrderClient,
    catalog: &mut CatalogClient,
    deadline: Option<Duration>,
) -> Result<Option<String>, tonic::Status> {
    /// The message as a request with the deadline, if any.
    fn r<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        request
    }
    let answered = match call {
        GrpcCall::CreateOrder(m) => {
            let created = orders.create_order(r(m, deadline)).await?;
            return Ok(Some(created.into_inner().id));
        }
        GrpcCall::UpdateOrderStatus(m) => {
            orders.update_order_status(r(m, deadline)).await.map(drop)
        }
        GrpcCall::ApplyPayment(m) => orders.apply_payment(r(m, deadline)).await.map(drop),
        GrpcCall::ListOrders(m) => orders.list_orders(r(m, deadline)).await.map(drop),
        GrpcCall::GetOrder(m) => orders.get_order(r(m, deadline)).await.map(drop),
        GrpcCall::ListProducts(m) => catalog.list_products(r(m, deadline)).await.map(drop),
        GrpcCall::GetProduct(m) => catalog.get_product(r(m, deadline)).await.map(drop),
        GrpcCall::UpdateProduct(m) => catalog.update_product(r(m, deadline)).await.map(drop),
    };
    answered.map(|()| None)
}

/// What the gRPC callers did and saw.
#[derive(Default)]
struct GrpcTally {
    attempts: BTreeMap<(Rpc, GiveUp), u64>,
    /// Per RPC: "OK", a status code, "dropped by the caller", "stuck".
    outcomes: BTreeMap<(Rpc, String), u64>,
    /// Orders CreateOrder answered OK.
    confirmed_orders: Vec<String>,
    stuck: Vec<String>,
}

impl GrpcTally {
    fn merge(&mut self, other: GrpcTally) {
        merge_counts(&mut self.attempts, other.attempts);
        merge_counts(&mut self.outcomes, other.outcomes);
        self.confirmed_orders.extend(other.confirmed_orders);
        self.stuck.extend(other.stuck);
    }

    fn report(&self) {
        let total: u64 = self.attempts.values().sum();
        eprintln!(
            "gRPC: {total} calls, {} stuck, {} orders answered as created",
            self.stuck.len(),
            self.confirmed_orders.len()
        );
        for rpc in Rpc::ALL {
            let count = |give_up| self.attempts.get(&(rpc, give_up)).unwrap_or(&0);
            eprintln!(
                "  {rpc:?}: {} with a deadline, {} dropped early; {}",
                count(GiveUp::Deadline),
                count(GiveUp::Drop),
                counts_of(&self.outcomes, rpc)
            );
        }
    }
}

/// The run proves nothing unless every cut, endpoint and RPC was exercised
/// and orders were created; and nothing may have been stuck or have broken
/// the contract outright.
fn check_exercised(http: &HttpTally, grpc: &GrpcTally, failures: &mut Failures) {
    for cut in Cut::ALL {
        let done = http.as_planned.get(&cut).copied().unwrap_or(0);
        if done < FEW {
            failures.add(
                "the load exercised every cut",
                format!("{cut:?} went as planned only {done} times (at least {FEW} needed)"),
            );
        }
    }
    for (endpoint, _) in Endpoint::WEIGHTED {
        let answered = http.answered(endpoint);
        let cut: u64 = Cut::ALL[1..]
            .iter()
            .map(|cut| http.attempts.get(&(endpoint, *cut)).copied().unwrap_or(0))
            .sum();
        if answered < FEW || cut < FEW {
            failures.add(
                "the load exercised every endpoint",
                format!(
                    "{}: {answered} answers read whole, {cut} requests cut (at least {FEW} of each needed)",
                    endpoint.route()
                ),
            );
        }
    }
    for rpc in Rpc::ALL {
        for give_up in [GiveUp::Deadline, GiveUp::Drop] {
            let calls = grpc.attempts.get(&(rpc, give_up)).copied().unwrap_or(0);
            if calls < FEW {
                failures.add(
                    "the load exercised every RPC",
                    format!("{rpc:?} ({give_up:?}): {calls} calls (at least {FEW} needed)"),
                );
            }
        }
    }
    if http.confirmed_orders.is_empty() {
        failures.add(
            "the load created orders",
            "no HTTP client read a 201 for POST /api/orders".to_owned(),
        );
    }
    if http.connect_failures > 0 {
        eprintln!(
            "note: {} connections to the gateway failed",
            http.connect_failures
        );
    }
    let stuck: Vec<&String> = http.stuck.iter().chain(&grpc.stuck).collect();
    failures.add_if_any(
        "no request is stuck",
        "requests or calls had no end".to_owned(),
        &stuck,
        10,
    );
    if !http.violations.is_empty() {
        failures.add(
            "answers within the contract",
            format!(
                "{} answers: {}",
                http.violations.len(),
                first(&http.violations, 10)
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Settling, and what the databases hold.

/// Waits until at least one reconciler pass ran after the load, then until
/// the order service has nothing in flight (no order `reserving`, no outbox
/// row) and both databases stay unchanged for a second: requests the clients
/// abandoned may still be running when the load stops. `Err` describes the
/// state after [`SETTLE_LIMIT`].
async fn settle(platform: &ChildPlatform, load_ended: Instant) -> Result<Duration, String> {
    tokio::time::sleep_until(load_ended + RECONCILER_PASS).await;
    let mut orders_db = connect(&platform.order_database).await;
    let mut catalog_db = connect(&platform.catalog_database).await;
    let limit = load_ended + SETTLE_LIMIT;
    let mut previous = String::new();
    let mut unchanged_polls = 0;
    loop {
        let db = &mut orders_db;
        let reserving: i64 =
            select_value(db, "SELECT count(*) FROM orders WHERE status = 'reserving'").await;
        let outbox: i64 = select_value(db, "SELECT count(*) FROM outbox").await;
        let by_status = "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status";
        let orders: Vec<(String, i64)> = select(db, by_status).await;
        let db = &mut catalog_db;
        let by_state = "SELECT state, count(*) FROM reservations GROUP BY state ORDER BY state";
        let reservations: Vec<(String, i64)> = select(db, by_state).await;
        let stock: Option<i64> =
            select_value(db, "SELECT sum(quantity)::bigint FROM products").await;
        let state = format!(
            "{reserving} orders reserving, {outbox} outbox rows; orders {orders:?}, \
             reservations {reservations:?}, total stock {stock:?}"
        );
        if reserving == 0 && outbox == 0 && state == previous {
            unchanged_polls += 1;
            if unchanged_polls == 2 {
                let _ = orders_db.close().await;
                let _ = catalog_db.close().await;
                return Ok(load_ended.elapsed());
            }
        } else {
            unchanged_polls = 0;
        }
        if Instant::now() >= limit {
            return Err(format!(
                "not settled {SETTLE_LIMIT:?} after the load: {state}"
            ));
        }
        previous = state;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn connect(database_url: &str) -> PgConnection {
    PgConnection::connect(database_url)
        .await
        .unwrap_or_else(|e| panic!("database {database_url} reachable: {e}"))
}

/// Units per product.
type Lines = BTreeMap<Uuid, i64>;

/// Both databases, read after the platform settled.
struct Snapshot {
    /// Order id -> stored status (internal ones included).
    orders: BTreeMap<Uuid, String>,
    order_items: BTreeMap<Uuid, Lines>,
    /// Product id -> current stock.
    stock: BTreeMap<Uuid, i64>,
    /// Reservation id (= order id) -> state.
    reservations: BTreeMap<Uuid, String>,
    reservation_lines: BTreeMap<Uuid, Lines>,
}

impl Snapshot {
    async fn read(platform: &ChildPlatform) -> Self {
        let mut orders_db = connect(&platform.order_database).await;
        let db = &mut orders_db;
        let orders: Vec<(Uuid, String)> = select(db, "SELECT id, status FROM orders").await;
        let items_sql = "SELECT order_id, product_id, quantity::bigint FROM order_items";
        let items: Vec<(Uuid, Uuid, i64)> = select(db, items_sql).await;
        let _ = orders_db.close().await;
        let mut catalog_db = connect(&platform.catalog_database).await;
        let db = &mut catalog_db;
        let stock: Vec<(Uuid, i64)> = select(db, "SELECT id, quantity::bigint FROM products").await;
        let reservations: Vec<(Uuid, String)> =
            select(db, "SELECT id, state FROM reservations").await;
        let lines_sql =
            "SELECT reservation_id, product_id, quantity::bigint FROM reservation_lines";
        let lines: Vec<(Uuid, Uuid, i64)> = select(db, lines_sql).await;
        let _ = catalog_db.close().await;
        Self {
            orders: orders.into_iter().collect(),
            order_items: group_lines(items),
            stock: stock.into_iter().collect(),
            reservations: reservations.into_iter().collect(),
            reservation_lines: group_lines(lines),
        }
    }

    /// Orders in the given statuses.
    fn orders_in(&self, statuses: &[&str]) -> BTreeSet<Uuid> {
        self.orders
            .iter()
            .filter(|(_, status)| statuses.contains(&status.as_str()))
            .map(|(id, _)| *id)
            .collect()
    }

    fn reservations_in(&self, state: &str) -> BTreeSet<Uuid> {
        self.reservations
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(id, _)| *id)
            .collect()
    }

    fn report(&self) {
        eprintln!(
            "orders by status: {:?}; reservations by state: {:?}",
            count_values(&self.orders),
            count_values(&self.reservations)
        );
    }
}

/// (owner, product, units) rows -> owner -> product -> units, summed.
fn group_lines(rows: Vec<(Uuid, Uuid, i64)>) -> BTreeMap<Uuid, Lines> {
    let mut grouped: BTreeMap<Uuid, Lines> = BTreeMap::new();
    for (owner, product, units) in rows {
        *grouped
            .entry(owner)
            .or_default()
            .entry(product)
            .or_default() += units;
    }
    grouped
}

fn count_values(map: &BTreeMap<Uuid, String>) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for value in map.values() {
        *counts.entry(value.as_str()).or_default() += 1;
    }
    counts
}

// ---------------------------------------------------------------------------
// The checks.

/// (c) Per ordered product: initial stock = current stock + units of pending
/// and completed orders. Less than that is stock stranded (taken by no live
/// order); more is stock oversold (or given back twice).
fn check_conservation(catalogue: &Catalogue, snapshot: &Snapshot, failures: &mut Failures) {
    let live = snapshot.orders_in(&["pending", "completed"]);
    let units_in = |owners: &BTreeMap<Uuid, Lines>, keep: &dyn Fn(&Uuid) -> bool| {
        let mut units = Lines::new();
        for (owner, lines) in owners {
            if keep(owner) {
                for (product, n) in lines {
                    *units.entry(*product).or_default() += n;
                }
            }
        }
        units
    };
    let live_units = units_in(&snapshot.order_items, &|id| live.contains(id));
    // The catalog's own account, to tell which side lost track.
    let reserved_units = units_in(&snapshot.reservation_lines, &|id| {
        matches!(
            snapshot.reservations.get(id).map(String::as_str),
            Some("held" | "committed")
        )
    });
    for product in &catalogue.ordered {
        let initial = catalogue.initial_stock[product];
        let name = catalogue.name(product);
        let Some(&current) = snapshot.stock.get(product) else {
            failures.add(
                "(c) stock conserved",
                format!("product {product} ({name}) is gone, although orders use it"),
            );
            continue;
        };
        let in_orders = live_units.get(product).copied().unwrap_or(0);
        let missing = initial - current - in_orders;
        if missing != 0 {
            let what = if missing > 0 {
                format!("{missing} units stranded (taken by no pending or completed order)")
            } else {
                format!("{} units oversold or given back twice", -missing)
            };
            failures.add(
                "(c) stock conserved",
                format!(
                    "product {product} ({name}): initial {initial} != current {current} + \
                     {in_orders} in pending/completed orders: {what}; the catalog's held and \
                     committed reservations hold {}",
                    reserved_units.get(product).copied().unwrap_or(0)
                ),
            );
        }
    }
}

/// (d) Held reservations are exactly the pending orders, committed ones the
/// completed orders; canceled orders' reservations are released; a live
/// order's reservation lines equal its items.
fn check_reservations_agree(snapshot: &Snapshot, failures: &mut Failures) {
    let order_status = |id: &Uuid| {
        snapshot
            .orders
            .get(id)
            .map_or("no such order".to_owned(), |s| format!("order {s}"))
    };
    let reservation_state = |id: &Uuid| {
        snapshot
            .reservations
            .get(id)
            .map_or("no reservation".to_owned(), |s| format!("reservation {s}"))
    };
    // Ids of `these` that are not in `those`, each with what `describe` says.
    let missing =
        |these: &BTreeSet<Uuid>, those: &BTreeSet<Uuid>, describe: &dyn Fn(&Uuid) -> String| {
            let ids = these.difference(those);
            ids.map(|id| format!("{id} ({})", describe(id)))
                .collect::<Vec<String>>()
        };
    for (state, status) in [("held", "pending"), ("committed", "completed")] {
        let reservations = snapshot.reservations_in(state);
        let orders = snapshot.orders_in(&[status]);
        for (what, extra) in [
            (
                format!("reservations {state} whose order is not {status}"),
                missing(&reservations, &orders, &order_status),
            ),
            (
                format!("orders {status} whose reservation is not {state}"),
                missing(&orders, &reservations, &reservation_state),
            ),
        ] {
            failures.add_if_any("(d) reservations agree with orders", what, &extra, 10);
        }
    }
    let not_released: Vec<String> = snapshot
        .orders_in(&["canceled"])
        .iter()
        .filter(|id| snapshot.reservations.get(*id).map(String::as_str) != Some("released"))
        .map(|id| format!("{id} ({})", reservation_state(id)))
        .collect();
    failures.add_if_any(
        "(d) reservations agree with orders",
        "canceled orders whose reservation is not released".to_owned(),
        &not_released,
        10,
    );
    let empty = Lines::new();
    let differing: Vec<String> = snapshot
        .orders_in(&["pending", "completed"])
        .iter()
        .filter(|id| {
            matches!(
                snapshot.reservations.get(*id).map(String::as_str),
                Some("held" | "committed")
            )
        })
        .filter_map(|id| {
            let items = snapshot.order_items.get(id).unwrap_or(&empty);
            let lines = snapshot.reservation_lines.get(id).unwrap_or(&empty);
            (items != lines)
                .then(|| format!("{id}: order items {items:?}, reservation lines {lines:?}"))
        })
        .collect();
    failures.add_if_any(
        "(d) reservations agree with orders",
        "live orders whose reservation lines differ from their items".to_owned(),
        &differing,
        5,
    );
}

/// (e) The reconciler took every order the load left in the saga.
fn check_nothing_reserving(snapshot: &Snapshot, failures: &mut Failures) {
    let reserving: Vec<Uuid> = snapshot.orders_in(&["reserving"]).into_iter().collect();
    failures.add_if_any(
        "(e) no order left reserving",
        "orders still reserving".to_owned(),
        &reserving,
        10,
    );
}

/// (f) An order a client was told exists, exists, visibly.
fn check_confirmed_orders_exist(
    confirmed: &BTreeSet<String>,
    snapshot: &Snapshot,
    failures: &mut Failures,
) {
    let lost: Vec<String> = confirmed
        .iter()
        .filter_map(|id| {
            let status = id
                .parse::<Uuid>()
                .ok()
                .and_then(|uuid| snapshot.orders.get(&uuid));
            match status.map(String::as_str) {
                Some("pending" | "completed" | "canceled") => None,
                Some(hidden) => Some(format!("{id} (stored as {hidden})")),
                None => Some(format!("{id} (not in the orders database)")),
            }
        })
        .collect();
    if !lost.is_empty() {
        failures.add(
            "(f) created orders exist",
            format!(
                "{} of {} orders answered as created are not visible: {}",
                lost.len(),
                confirmed.len(),
                first(&lost, 10)
            ),
        );
    }
}

/// (a) No process logged PostgreSQL's notice of a half-open transaction.
fn check_no_half_open_transaction_logged(output: &CapturedOutput, failures: &mut Failures) {
    // Human-readable lines are coloured: searched without the escapes.
    let text = strip_ansi(&output.text());
    if let Ok(path) = std::env::var("CHAOS_OUTPUT_DUMP") {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let offending: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(HALF_OPEN_TRANSACTION_NOTICE))
        .collect();
    eprintln!("captured output: {} lines", text.lines().count());
    if !offending.is_empty() {
        failures.add(
            "(a) no half-open transaction logged",
            format!(
                "{} lines say {HALF_OPEN_TRANSACTION_NOTICE:?}, e.g.:\n    {}",
                offending.len(),
                offending
                    .iter()
                    .take(10)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ),
        );
    }
}

/// The first `n` items, and how many more.
fn first<T: std::fmt::Display>(items: &[T], n: usize) -> String {
    let shown: Vec<String> = items.iter().take(n).map(ToString::to_string).collect();
    let more = items.len().saturating_sub(n);
    if more > 0 {
        format!("{} (and {more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Every failed property, reported together at the end.
#[derive(Default)]
struct Failures(Vec<(String, String)>);

impl Failures {
    fn add(&mut self, property: &str, detail: String) {
        self.0.push((property.to_owned(), detail));
    }

    /// When there are `items`: a failure of `property`, "<how many> <what>:
    /// <the first `shown`>".
    fn add_if_any<T: std::fmt::Display>(
        &mut self,
        property: &str,
        what: String,
        items: &[T],
        shown: usize,
    ) {
        if !items.is_empty() {
            let detail = format!("{} {what}: {}", items.len(), first(items, shown));
            self.add(property, detail);
        }
    }

    fn assert_none(self) {
        if self.0.is_empty() {
            return;
        }
        let report: Vec<String> = self
            .0
            .iter()
            .map(|(property, detail)| format!("- {property}: {detail}"))
            .collect();
        panic!(
            "{} failures after the chaos load:\n{}",
            self.0.len(),
            report.join("\n")
        );
    }
}
