//! Starting an order service for a test (a real catalog behind it), a TCP proxy
//! that cuts the catalog off on command, and small helpers around the order
//! client.
//!
//! Test configuration: the reconciler runs its pass at start (awaited before
//! the service is handed out) and then only when a test calls
//! [`order_service::Reconciler::reconcile_once`], so nothing happens behind a
//! test's back; stuck orders are taken at once (no grace period) and failed
//! outbox rows are due again at once (no backoff) unless a test says otherwise.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use proto::order::v1::{
    ApplyPaymentRequest, CreateOrderItem, CreateOrderRequest, GetOrderRequest, ListOrdersRequest,
    ListOrdersResponse, Order, OrderStatus, PaymentStatus, UpdateOrderStatusRequest,
    order_service_client::OrderServiceClient,
};
use rust_decimal::Decimal;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};
use tonic::{Status, transport::Channel};

use crate::{RunningService, TEST_POOL_SIZE, TestConfig, TestDatabase, any_port};

pub type OrderClient = OrderServiceClient<Channel>;

/// A running order service and a handle on its reconciler.
pub struct OrderHarness {
    pub service: RunningService,
    pub reconciler: order_service::Reconciler,
    /// The admin HTTP server: `/metrics`, `/health`, `/ready`.
    pub admin_addr: SocketAddr,
}

/// The test configuration (see the module header) on a fresh database, talking
/// to the catalog at `catalog_url`. Tests adjust fields before [`start_order`].
pub fn order_config(catalog_url: &str) -> TestConfig<order_service::Config> {
    let database = TestDatabase::fresh("order");
    let mut config = order_service::Config::for_database(database.url(), any_port());
    config.catalog_url = catalog_url.to_owned();
    config.service.db_max_connections = TEST_POOL_SIZE;
    config.service.shutdown_grace = Duration::from_secs(5);
    config.grpc_timeout = Duration::from_secs(2);
    config.grpc_connect_timeout = Duration::from_millis(500);
    // The balanced catalog channel notices a stopped or restarted catalog
    // within 100 ms.
    config.grpc_refresh_interval = Duration::from_millis(100);
    config.reconcile_interval = Duration::from_secs(3_600);
    config.reserving_grace = Duration::ZERO;
    config.outbox_retry_base = Duration::ZERO;
    TestConfig { config, database }
}

/// Starts an order service on a fresh database, in front of the catalog at
/// `catalog_url`.
pub async fn spawn_order(catalog_url: &str) -> RunningService {
    start_order(order_config(catalog_url)).await.service
}

/// Starts an order service with this configuration; returns once its
/// reconciler's start pass is over.
pub async fn start_order(config: TestConfig<order_service::Config>) -> OrderHarness {
    let database = config.held(&config.service.database_url);
    let app = order_service::Application::build(config.config).await;
    let app = app.expect("order service starts");
    let (reconciler, admin_addr) = (app.reconciler(), app.admin_addr());
    let service = RunningService::spawn(app.local_addr(), database, |stop| app.run_until(stop));
    reconciler.wait_for_first_pass().await;
    OrderHarness {
        service,
        reconciler,
        admin_addr,
    }
}

pub async fn order_client(service: &RunningService) -> OrderClient {
    OrderServiceClient::connect(service.url())
        .await
        .expect("order service reachable")
}

/// A direct connection to the order service's own database, for what the API
/// cannot show or arrange (hidden saga states, outbox rows, a crashed saga).
pub async fn orders_database(service: &RunningService) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&service.database_url)
        .await
        .expect("orders database reachable")
}

/// CreateOrder with `(product id, quantity)` lines.
pub async fn create_order(
    client: &mut OrderClient,
    customer_id: i64,
    items: &[(&str, i32)],
    idempotency_key: Option<&str>,
) -> Result<Order, Status> {
    client
        .create_order(CreateOrderRequest {
            customer_id,
            items: items
                .iter()
                .map(|&(product_id, quantity)| CreateOrderItem {
                    product_id: product_id.to_owned(),
                    quantity,
                })
                .collect(),
            idempotency_key: idempotency_key.map(str::to_owned),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub async fn get_order(client: &mut OrderClient, id: &str) -> Result<Order, Status> {
    let id = id.to_owned();
    Ok(client.get_order(GetOrderRequest { id }).await?.into_inner())
}

/// UpdateOrderStatus.
pub async fn set_status(
    client: &mut OrderClient,
    id: &str,
    to: OrderStatus,
) -> Result<Order, Status> {
    let (id, status) = (id.to_owned(), to as i32);
    let request = UpdateOrderStatusRequest { id, status };
    Ok(client.update_order_status(request).await?.into_inner())
}

/// ApplyPayment.
pub async fn pay(
    client: &mut OrderClient,
    order_id: &str,
    payment_status: PaymentStatus,
    event_id: Option<&str>,
) -> Result<Order, Status> {
    let request = ApplyPaymentRequest {
        order_id: order_id.to_owned(),
        payment_status: payment_status as i32,
        event_id: event_id.map(str::to_owned),
    };
    Ok(client.apply_payment(request).await?.into_inner())
}

/// ListOrders filters; `Default` lists everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub customer_id: Option<i64>,
}

pub async fn list_orders(
    client: &mut OrderClient,
    page: u32,
    page_size: u32,
    filter: OrderFilter,
) -> Result<ListOrdersResponse, Status> {
    client
        .list_orders(ListOrdersRequest {
            page,
            page_size,
            status: filter.status.map(|s| s as i32),
            payment_status: filter.payment_status.map(|s| s as i32),
            customer_id: filter.customer_id,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The ids of a page of orders, in the order given.
pub fn ids(response: &ListOrdersResponse) -> Vec<String> {
    response
        .orders
        .iter()
        .map(|order| order.id.clone())
        .collect()
}

/// An exact amount from the wire.
pub fn amount(money: Option<&proto::common::v1::Money>) -> Decimal {
    proto::money::to_decimal(money.expect("amount present")).expect("valid amount")
}

/// A decimal literal.
pub fn dec(literal: &str) -> Decimal {
    Decimal::from_str(literal).expect("decimal literal")
}

/// The stored (possibly internal) status of an order, read from its database.
pub async fn stored_status(db: &mut sqlx::PgConnection, order_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1::uuid")
        .bind(order_id)
        .fetch_optional(db)
        .await
        .expect("orders readable")
}

/// How many orders the database holds in this stored status.
pub async fn count_in_status(db: &mut sqlx::PgConnection, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = $1")
        .bind(status)
        .fetch_one(db)
        .await
        .expect("orders readable")
}

/// Undelivered outbox rows: `(reservation id, action, attempts)`.
pub async fn outbox_rows(db: &mut sqlx::PgConnection) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT reservation_id::text, action, attempts FROM outbox ORDER BY id")
        .fetch_all(db)
        .await
        .expect("outbox readable")
}

/// What the [`CatalogProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Up,
    /// Cuts every connection and closes new ones at once: the catalog is gone.
    Down,
    /// Requests still reach the catalog (and take effect), answers are held
    /// back: from the caller's side, every call times out.
    Stall,
}

/// A TCP proxy in front of the catalog, on a port of its own that stays the
/// same while the test switches the catalog "off" and "on" with
/// [`CatalogProxy::set`]. Dropping it stops it.
pub struct CatalogProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    task: JoinHandle<()>,
}

impl CatalogProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind(any_port()).await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watcher) = watch::channel(ProxyMode::Up);
        let task = tokio::spawn(accept_loop(listener, target, watcher));
        Self { addr, mode, task }
    }

    /// What the order service is configured with instead of the catalog's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for CatalogProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<ProxyMode>) {
    while let Ok((inbound, _)) = listener.accept().await {
        if *mode.borrow() == ProxyMode::Down {
            // Dropped unread: the peer sees the connection reset at once.
            drop(inbound);
            continue;
        }
        tokio::spawn(forward(inbound, target, mode.clone()));
    }
}

/// One proxied connection; ends (dropping both sockets) when the mode turns
/// to `Down` or either side closes.
async fn forward(inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<ProxyMode>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_catalog, mut to_catalog) = outbound.into_split();
    let mut answers_mode = mode.clone();
    let requests = async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_catalog).await;
    };
    let answers = async move {
        let mut buffer = vec![0_u8; 16 * 1024];
        loop {
            let read = match from_catalog.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            // Hold the answer while stalled; drop it if the catalog goes down.
            // (Copied out at once: a held borrow would block `set`.)
            let now = match answers_mode.wait_for(|m| *m != ProxyMode::Stall).await {
                Ok(now) => *now,
                Err(_) => return,
            };
            if now == ProxyMode::Down || to_client.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
        _ = mode.wait_for(|m| *m == ProxyMode::Down) => {}
    }
}

/// A catalog, a [`CatalogProxy`] in front of it (so a test can cut the
/// catalog off), an order service behind the proxy, and clients of both.
pub struct World {
    pub catalog: RunningService,
    pub proxy: CatalogProxy,
    pub orders: OrderHarness,
    pub catalog_client: crate::catalog::CatalogClient,
    pub client: OrderClient,
}

/// A [`World`] whose order service configuration `adjust` changes first.
pub async fn world_with(adjust: impl FnOnce(&mut order_service::Config)) -> World {
    let catalog = crate::catalog::spawn_catalog().await;
    let proxy = CatalogProxy::start(catalog.addr).await;
    let mut config = order_config(&proxy.url());
    adjust(&mut config.config);
    let orders = start_order(config).await;
    World {
        catalog_client: crate::catalog::catalog_client(&catalog).await,
        client: order_client(&orders.service).await,
        catalog,
        proxy,
        orders,
    }
}

/// A [`World`] with the test configuration.
pub async fn world() -> World {
    world_with(|_| {}).await
}

impl World {
    /// Creates a product at the catalog; its id.
    pub async fn product(&mut self, name: &str, price: &str, quantity: i32) -> String {
        let client = &mut self.catalog_client;
        crate::catalog::create_product(client, name, price, quantity)
            .await
            .id
    }

    /// The product's stock at the catalog.
    pub async fn stock(&mut self, product_id: &str) -> i32 {
        crate::catalog::stock_of(&mut self.catalog_client, product_id).await
    }

    /// An order of `quantity` units of `product_id` for `customer`, which
    /// must be created.
    pub async fn order(&mut self, customer: i64, product_id: &str, quantity: i32) -> Order {
        let lines = [(product_id, quantity)];
        let created = create_order(&mut self.client, customer, &lines, None).await;
        created.expect("order created")
    }

    /// ApplyPayment.
    pub async fn pay(
        &mut self,
        order_id: &str,
        status: PaymentStatus,
        event_id: Option<&str>,
    ) -> Result<Order, Status> {
        pay(&mut self.client, order_id, status, event_id).await
    }

    /// UpdateOrderStatus.
    pub async fn set_status(
        &mut self,
        order_id: &str,
        status: OrderStatus,
    ) -> Result<Order, Status> {
        set_status(&mut self.client, order_id, status).await
    }

    /// GetOrder.
    pub async fn get(&mut self, order_id: &str) -> Result<Order, Status> {
        get_order(&mut self.client, order_id).await
    }

    /// A connection to the order service's database.
    pub async fn orders_db(&self) -> sqlx::PgConnection {
        orders_database(&self.orders.service).await
    }

    /// One reconciler pass, which must succeed.
    pub async fn reconcile(&self) -> order_service::ReconcileReport {
        self.orders
            .reconciler
            .reconcile_once()
            .await
            .expect("a reconciler pass")
    }
}
