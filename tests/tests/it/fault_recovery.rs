//! A fault in the middle of a stream of orders loses no order and moves no
//! stock twice: the three real binaries as child processes, a stream of
//! order creations, cancels and completions from several concurrent HTTP
//! clients through the gateway, and one fault in the middle of it:
//!
//! 1. catalog-service killed with SIGKILL, then restarted on the same database
//!    and address;
//! 2. order-service killed with SIGKILL, then restarted likewise;
//! 3. PostgreSQL (a private cluster of this test, never the shared server)
//!    stopped and started again, the services left running.
//!
//! After the stream, each test waits (bounded) until the order service's
//! reconciler has finished what the fault left in flight (no order in the
//! saga's `reserving` state, no undelivered outbox row), then checks, through
//! the public API:
//! - every order that was answered 201 is there, with the status its client
//!   last saw (either of two when the client's last change got no answer);
//! - stock is conserved exactly, per product: initial stock = current stock +
//!   units held by live (pending or completed) orders;
//!
//! and, in the databases, that the catalog's reservations agree with the
//! orders (held for pending, committed for completed, nothing else held).
//!
//! Each test takes 5-15 s (processes starting, the outage, the reconciler's
//! grace period); they use small pools and their own databases, so
//! they run in parallel with the rest of the suite.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tests::{
    chaos::Rng,
    database_name,
    gateway::{Api, Reply},
    pgcluster::PrivatePostgres,
    process::{ChildPlatform, PlatformEnv, env},
};
use tokio::{task::JoinHandle, time::Instant};
use uuid::Uuid;

/// Deadline of every catalog call made by the order service.
const CATALOG_TIMEOUT_MS: u64 = 1_000;
/// Must exceed two catalog deadlines (a saga's reserve, then release), or the
/// reconciler would race live sagas.
const RESERVING_GRACE_SECS: u64 = 3;
const _: () = assert!(RESERVING_GRACE_SECS * 1_000 > 2 * CATALOG_TIMEOUT_MS);

const PRODUCTS: usize = 3;
const INITIAL_STOCK: i64 = 80;
const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 40;
/// The fault strikes once the stream has done this many operations...
const OPS_BEFORE_FAULT: usize = 40;
/// ...and lasts until it has done this many more, or [`MAX_OUTAGE`] passed.
const OPS_DURING_OUTAGE: usize = 30;
const MAX_OUTAGE: Duration = Duration::from_secs(4);
/// How long PostgreSQL stays down: longer than the gateway's deadline
/// (`GRPC_TIMEOUT`, 5 s).
const POSTGRES_OUTAGE: Duration = Duration::from_secs(6);
/// Pacing between one client's operations, so the stream spans the fault.
const PACE: Duration = Duration::from_millis(15);
/// Upper bound on the whole stream.
const STREAM_LIMIT: Duration = Duration::from_secs(60);
/// Upper bound on the reconciler finishing after the stream.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn catalog_killed_mid_stream_and_restarted_loses_no_order_and_conserves_stock() {
    let mut run = Run::start(None).await;
    run.platform.catalog.kill9().await;
    run.stream.outage().await;
    // Orders created while the catalog was down were abandoned before their
    // answer (rejected); their releases wait in the outbox for the catalog.
    let left = InFlight::read(&run.platform.order_database).await;
    eprintln!("left for the reconciler at the restart: {left:?}");
    assert!(left.outbox > 0, "no saga was cut short: {left:?}");
    run.platform.catalog.restart().await;

    run.settle_and_check().await.stop_cleanly().await;
}

#[tokio::test]
async fn order_service_killed_mid_stream_and_restarted_reconciles_in_flight_orders() {
    let mut run = Run::start(None).await;
    // Strike while a saga is between its first and last step, if one is
    // seen within a few seconds (the stream keeps several in flight).
    InFlight::wait_for_reserving(&run.platform.order_database).await;
    run.platform.order.kill9().await;
    let left = InFlight::read(&run.platform.order_database).await;
    eprintln!("left in flight by the kill: {left:?}");
    run.stream.outage().await;
    run.platform.order.restart().await;

    run.settle_and_check().await.stop_cleanly().await;
}

#[tokio::test]
async fn postgres_restarted_mid_stream_services_reconnect_and_ready_reflects_outage() {
    let mut postgres = PrivatePostgres::start().await;
    let on_private = |service: &str| format!("{}/{}", postgres.url(), database_name(service));
    let run = Run::start(Some((on_private("catalog"), on_private("order")))).await;
    let down = Instant::now();
    postgres.stop().await;
    // Both services down while PostgreSQL is (the gateway itself stays
    // ready: its /ready reports them).
    run.api.wait_backends("down").await;
    run.stream.outage().await;
    // The outage's length (not a synchronisation): past the gateway's
    // deadline, so requests begun during it cannot all wait it out.
    tokio::time::sleep_until(down + POSTGRES_OUTAGE).await;
    postgres.start_server().await;
    let back = Instant::now();
    run.api.wait_backends("up").await;
    eprintln!(
        "/ready was 200 again {:?} after PostgreSQL restarted",
        back.elapsed()
    );

    let mut platform = run.settle_and_check().await;
    // Nobody restarted a service: the very processes started first recovered.
    for service in [
        &mut platform.catalog,
        &mut platform.order,
        &mut platform.gateway,
    ] {
        assert!(service.is_running(), "{} exited", service.name);
    }
    platform.stop_cleanly().await;
}

/// One test's run: the platform, a client of its gateway, the products, and
/// the stream of orders, which has done [`OPS_BEFORE_FAULT`] operations when
/// [`Run::start`] returns: time for the fault.
struct Run {
    platform: ChildPlatform,
    api: Api,
    workload: Workload,
    stream: Stream,
}

impl Run {
    async fn start(databases: Option<(String, String)>) -> Self {
        let platform = start_platform(databases).await;
        let api = Api::new(platform.gateway_url());
        api.wait_ready(200).await;
        let workload = Workload::create(&api).await;
        let stream = Stream::start(&api, &workload);
        stream.wait_for_ops(OPS_BEFORE_FAULT).await;
        Self {
            platform,
            api,
            workload,
            stream,
        }
    }

    /// Lets the stream finish, then [`settle_and_check`]; the platform, for
    /// the test to stop.
    async fn settle_and_check(self) -> ChildPlatform {
        let logs = self.stream.finish().await;
        settle_and_check(&self.platform, &self.api, &self.workload, &logs).await;
        self.platform
    }
}

// ---------------------------------------------------------------------------
// The platform: three child processes; a restarted service comes back on the
// same database at the same address (which its clients keep dialling).

async fn start_platform(databases: Option<(String, String)>) -> ChildPlatform {
    let mut order = env("HEALTH_CHECK_INTERVAL=200ms GRPC_CONNECT_TIMEOUT=300ms \
         RECONCILE_INTERVAL=1s OUTBOX_RETRY_BASE=50ms");
    order.push(("GRPC_TIMEOUT", format!("{CATALOG_TIMEOUT_MS}ms")));
    order.push(("RESERVING_GRACE", format!("{RESERVING_GRACE_SECS}s")));
    ChildPlatform::start(PlatformEnv {
        databases,
        catalog: env("HEALTH_CHECK_INTERVAL=200ms"),
        order,
        // Longer than the slowest saga (two catalog deadlines and a few
        // statements), so a slow order is not cut off as 504.
        gateway: env("GRPC_TIMEOUT=5s GRPC_CONNECT_TIMEOUT=300ms"),
        ..Default::default()
    })
    .await
}

// ---------------------------------------------------------------------------
// The workload: products, then concurrent clients creating, canceling and
// completing orders.

struct Workload {
    /// Product id -> initial stock.
    initial: BTreeMap<String, i64>,
}

impl Workload {
    async fn create(api: &Api) -> Self {
        let mut initial = BTreeMap::new();
        for n in 0..PRODUCTS {
            let name = format!("Fault product {n}");
            let product = api.create_product(&name, "4.25", INITIAL_STOCK).await;
            let id = product["id"].as_str().expect("product id").to_owned();
            initial.insert(id, INITIAL_STOCK);
        }
        Self { initial }
    }
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientLog {
    /// Order id (answered 201) -> the statuses it may have now: one, or two
    /// when the client's last change got no definite answer.
    accepted: BTreeMap<String, BTreeSet<&'static str>>,
    /// Answers the contract does not allow here (e.g. a 500, a 404 for an
    /// accepted order, a transport error from the gateway, which never dies).
    /// Checked after the invariants.
    anomalies: Vec<String>,
    counts: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    created: usize,
    refused: usize,
    changed: usize,
    /// 503 / 504: the backend was down or slow; the outcome may be unknown.
    unavailable: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.created += other.created;
        self.refused += other.refused;
        self.changed += other.changed;
        self.unavailable += other.unavailable;
    }
}

/// The running clients and the count of operations they have done.
struct Stream {
    done: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<ClientLog>>,
}

impl Stream {
    fn start(api: &Api, workload: &Workload) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + STREAM_LIMIT;
        let products: Vec<String> = workload.initial.keys().cloned().collect();
        let clients = (0..CLIENTS)
            .map(|n| {
                let client = OrderClient {
                    api: api.clone(),
                    products: products.clone(),
                    rng: Rng::new(0x5eed_0000 + n as u64),
                    customer_id: 1_000 + n as i64,
                    log: ClientLog::default(),
                };
                tokio::spawn(client.run(done.clone(), deadline))
            })
            .collect();
        Self { done, clients }
    }

    fn ops(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until the stream has done `ops` operations (at most 30 s).
    async fn wait_for_ops(&self, ops: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ops() < ops {
            assert!(
                Instant::now() < deadline,
                "the stream did only {} of {ops} operations in 30 s",
                self.ops()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the stream run against the fault for [`OPS_DURING_OUTAGE`]
    /// operations or [`MAX_OUTAGE`], whichever comes first.
    async fn outage(&self) {
        let until = self.ops() + OPS_DURING_OUTAGE;
        let deadline = Instant::now() + MAX_OUTAGE;
        while self.ops() < until && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "stream: {} operations done at the end of the outage",
            self.ops()
        );
    }

    async fn finish(self) -> Vec<ClientLog> {
        let mut logs = Vec::new();
        for client in self.clients {
            logs.push(client.await.expect("client task"));
        }
        logs
    }
}

struct OrderClient {
    api: Api,
    products: Vec<String>,
    rng: Rng,
    customer_id: i64,
    log: ClientLog,
}

impl OrderClient {
    /// [`OPS_PER_CLIENT`] operations (fewer if `deadline` passes): 60 %
    /// creations, 30 % cancels, 10 % completions of its own pending orders.
    async fn run(mut self, done: Arc<AtomicUsize>, deadline: Instant) -> ClientLog {
        for _ in 0..OPS_PER_CLIENT {
            if Instant::now() > deadline {
                break;
            }
            let pending: Vec<String> = self
                .log
                .accepted
                .iter()
                .filter(|(_, statuses)| statuses.len() == 1 && statuses.contains("pending"))
                .map(|(id, _)| id.clone())
                .collect();
            let roll = self.rng.below(10);
            if roll < 6 || pending.is_empty() {
                self.create().await;
            } else {
                let id = &pending[self.rng.below(pending.len() as u64) as usize];
                let target = if roll < 9 { "canceled" } else { "completed" };
                self.change(id, target).await;
            }
            done.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(PACE).await;
        }
        self.log
    }

    async fn create(&mut self) {
        let lines = 1 + self.rng.below(2) as usize;
        let first = self.rng.below(PRODUCTS as u64) as usize;
        let products: Vec<Value> = (0..lines)
            .map(|k| {
                json!({
                    "product_id": self.products[(first + k) % PRODUCTS],
                    "quantity": 1 + self.rng.below(3),
                })
            })
            .collect();
        let body = json!({"customer_id": self.customer_id, "products": products});
        let answer = self
            .api
            .try_send(Method::POST, "/api/orders", Some(&body))
            .await;
        match answer.as_ref().map(answered) {
            Ok((201, order)) if order["status"] == "pending" => {
                let id = order["id"].as_str().expect("order id").to_owned();
                self.log.accepted.insert(id, BTreeSet::from(["pending"]));
                self.log.counts.created += 1;
            }
            Ok((400, problem))
                if problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("Insufficient stock")) =>
            {
                self.log.counts.refused += 1;
            }
            Ok((503 | 504, _)) => self.log.counts.unavailable += 1,
            _ => self
                .log
                .anomalies
                .push(format!("POST /api/orders {body}: {answer:?}")),
        }
    }

    async fn change(&mut self, id: &str, target: &'static str) {
        let path = format!("/api/orders/{id}/status");
        let body = json!({"status": target});
        let answer = self.api.try_send(Method::PUT, &path, Some(&body)).await;
        match answer.as_ref().map(answered) {
            Ok((200, order)) if order["status"] == target => {
                self.log
                    .accepted
                    .insert(id.to_owned(), BTreeSet::from([target]));
                self.log.counts.changed += 1;
            }
            Ok((503 | 504, _)) => {
                // Maybe applied, maybe not.
                self.log
                    .accepted
                    .insert(id.to_owned(), BTreeSet::from(["pending", target]));
                self.log.counts.unavailable += 1;
            }
            _ => {
                // Outside the contract, and the outcome is unknown as well.
                self.log
                    .accepted
                    .insert(id.to_owned(), BTreeSet::from(["pending", target]));
                self.log
                    .anomalies
                    .push(format!("PUT {path} {target}: {answer:?}"));
            }
        }
    }
}

/// An answer's status code and JSON body.
fn answered(reply: &Reply) -> (u16, &Value) {
    (reply.status.as_u16(), &reply.json)
}

// ---------------------------------------------------------------------------
// The checks.

/// What the order service has not finished: orders in the saga's `reserving`
/// state, outbox rows not yet delivered.
#[derive(Debug)]
struct InFlight {
    reserving: i64,
    outbox: i64,
}

impl InFlight {
    async fn read(orders_database: &str) -> Self {
        Self::try_read(orders_database)
            .await
            .unwrap_or_else(|e| panic!("orders database: {e}"))
    }

    async fn try_read(orders_database: &str) -> Result<Self, sqlx::Error> {
        let mut db = PgConnection::connect(orders_database).await?;
        let reserving: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'reserving'")
                .fetch_one(&mut db)
                .await?;
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&mut db)
            .await?;
        let _ = db.close().await;
        Ok(Self { reserving, outbox })
    }

    /// Polls (at most 5 s, one connection) until an order is `reserving`.
    async fn wait_for_reserving(orders_database: &str) {
        let mut db = PgConnection::connect(orders_database)
            .await
            .expect("orders database reachable");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let reserving: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM orders WHERE status = 'reserving')",
            )
            .fetch_one(&mut db)
            .await
            .expect("orders readable");
            if reserving {
                break;
            }
        }
        let _ = db.close().await;
    }
}

/// The state after the stream, as the API and the databases show it.
#[derive(Debug)]
struct Observed {
    /// Orders in the saga's `reserving` state (hidden from the API).
    reserving: i64,
    /// Outbox rows not yet delivered.
    outbox: i64,
    /// Product id -> stock.
    stock: BTreeMap<String, i64>,
    /// Every visible order, by id.
    orders: BTreeMap<String, Value>,
}

impl Observed {
    async fn read(platform: &ChildPlatform, api: &Api) -> Result<Self, String> {
        let InFlight { reserving, outbox } = InFlight::try_read(&platform.order_database)
            .await
            .map_err(|e| format!("orders database: {e}"))?;
        let stock = api
            .try_all_pages("/api/products")
            .await?
            .into_iter()
            .map(|p| {
                let id = p["id"].as_str().expect("product id").to_owned();
                (id, p["quantity"].as_i64().expect("quantity"))
            })
            .collect();
        let orders = api
            .try_all_pages("/api/orders")
            .await?
            .into_iter()
            .map(|o| (o["id"].as_str().expect("order id").to_owned(), o))
            .collect();
        Ok(Self {
            reserving,
            outbox,
            stock,
            orders,
        })
    }

    /// The reconciler has nothing left to do.
    fn settled(&self) -> bool {
        self.reserving == 0 && self.outbox == 0
    }

    /// Product id -> units held by live (pending or completed) orders.
    fn held(&self) -> BTreeMap<String, i64> {
        let mut held = BTreeMap::new();
        for order in self.orders.values() {
            if order["status"] == "pending" || order["status"] == "completed" {
                for item in order["order_items"].as_array().expect("order_items") {
                    let product = item["product_id"].as_str().expect("product id").to_owned();
                    *held.entry(product).or_insert(0) += item["quantity"].as_i64().expect("qty");
                }
            }
        }
        held
    }

    /// Per product: (initial, current, held) where initial != current + held.
    fn conservation_errors(&self, workload: &Workload) -> Vec<String> {
        let held = self.held();
        workload
            .initial
            .iter()
            .filter_map(|(id, initial)| {
                let current = self.stock.get(id).copied().unwrap_or(i64::MIN);
                let held = held.get(id).copied().unwrap_or(0);
                (*initial != current + held).then(|| {
                    format!("product {id}: initial {initial} != current {current} + held by live orders {held}")
                })
            })
            .collect()
    }
}

/// Waits until the reconciler has finished (bounded), then asserts every
/// accepted order is there as its client last saw it, stock conservation
/// exactly, that the catalog's reservations agree with the orders, that no
/// answer was outside the contract, and that the fault was felt (some
/// request met the outage).
async fn settle_and_check(
    platform: &ChildPlatform,
    api: &Api,
    workload: &Workload,
    logs: &[ClientLog],
) {
    let mut counts = Counts::default();
    let mut accepted = BTreeMap::new();
    let mut anomalies = Vec::new();
    for log in logs {
        counts.add(log.counts);
        accepted.extend(log.accepted.iter().map(|(k, v)| (k.clone(), v.clone())));
        anomalies.extend(log.anomalies.iter().cloned());
    }
    eprintln!(
        "stream: {counts:?}, {} orders accepted, {} answers outside the contract",
        accepted.len(),
        anomalies.len()
    );
    assert!(counts.created > 0, "no order was created: {counts:?}");

    let started = Instant::now();
    let deadline = started + SETTLE_LIMIT;
    let observed = loop {
        let observed = Observed::read(platform, api).await;
        match &observed {
            Ok(state) if state.settled() && state.conservation_errors(workload).is_empty() => {
                break observed.expect("checked");
            }
            _ if Instant::now() >= deadline => {
                // Assert on what was seen last, with the reason in the message.
                let state = observed
                    .unwrap_or_else(|e| panic!("state unreadable after {SETTLE_LIMIT:?}: {e}"));
                assert!(
                    state.settled(),
                    "the reconciler did not finish in {SETTLE_LIMIT:?}: {} orders reserving, {} outbox rows",
                    state.reserving,
                    state.outbox
                );
                break state;
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    eprintln!("reconciled {:?} after the stream", started.elapsed());

    let errors = observed.conservation_errors(workload);
    assert!(errors.is_empty(), "stock not conserved: {errors:#?}");

    for (id, statuses) in &accepted {
        let listed = observed
            .orders
            .get(id)
            .unwrap_or_else(|| panic!("accepted order {id} is not listed"));
        let reply = api.get(&format!("/api/orders/{id}")).await;
        let order = &reply.json;
        assert_eq!(reply.status, 200, "accepted order {id}: {order}");
        assert_eq!(&order["status"], &listed["status"], "{id}");
        let now = order["status"].as_str().expect("status");
        assert!(
            statuses.contains(now),
            "order {id} is {now}; its client last saw {statuses:?}"
        );
    }

    check_reservations_agree(platform, &observed).await;
    // Last, so that a failure here comes with the invariants above verified.
    assert!(
        anomalies.is_empty(),
        "answers outside the contract (a backend down is 503 or 504, never 500): {anomalies:#?}"
    );
    assert!(
        counts.unavailable > 0,
        "no request met the outage: {counts:?}"
    );
}

/// The catalog's view: a held reservation for each pending order, a
/// committed one for each completed order, and no other reservation holding
/// stock.
async fn check_reservations_agree(platform: &ChildPlatform, observed: &Observed) {
    let mut catalog_db = PgConnection::connect(&platform.catalog_database)
        .await
        .expect("catalog database reachable");
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, state FROM reservations WHERE state IN ('held', 'committed')")
            .fetch_all(&mut catalog_db)
            .await
            .expect("reservations readable");
    let _ = catalog_db.close().await;
    let holding: BTreeMap<String, String> = rows
        .into_iter()
        .map(|(id, state)| (id.to_string(), state))
        .collect();
    let expected: BTreeMap<String, String> = observed
        .orders
        .iter()
        .filter_map(|(id, order)| match order["status"].as_str() {
            Some("pending") => Some((id.clone(), "held".to_owned())),
            Some("completed") => Some((id.clone(), "committed".to_owned())),
            _ => None,
        })
        .collect();
    assert_eq!(
        holding, expected,
        "catalog reservations holding stock vs live orders"
    );
}
