//! The real `order-service` binary as a child process: it creates and migrates
//! its missing database, starts and reports SERVING while the catalog is down
//! (the catalog channel connects lazily), answers CreateOrder with UNAVAILABLE
//! meanwhile, and exits 0 on SIGTERM. `--probe` and `--migrate-only` work as
//! the deployment manifests use them.

use std::{
    net::{SocketAddr, TcpListener},
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use proto::order::v1::{
    CreateOrderItem, CreateOrderRequest, ListOrdersRequest,
    order_service_client::OrderServiceClient,
};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const BINARY: &str = env!("CARGO_BIN_EXE_order-service");
/// Generous: the first start creates the database and migrates it.
const READY_WITHIN: Duration = Duration::from_secs(30);
const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database name no one uses yet (`.ci/run` drops leftovers of `t_*`).
fn fresh_database() -> (String, String) {
    let name = format!("t_order_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_server_url());
    (name, url)
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", postgres_server_url()))
        .await
        .expect("PostgreSQL reachable")
}

async fn database_exists(name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin_connection().await)
        .await
        .unwrap()
}

async fn drop_database(name: &str) {
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut admin_connection().await)
        .await;
}

/// A loopback port that was free a moment ago (nothing listens on it).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap()
}

fn command(database_url: &str, listen_addr: SocketAddr) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", listen_addr.to_string())
        // Tests run in parallel: no fixed admin port.
        .env("ADMIN_ADDR", "127.0.0.1:0")
        // Nothing listens there: the catalog is down.
        .env("CATALOG_URL", format!("http://{}", free_port()))
        .env("CATALOG_TIMEOUT_MS", "1000")
        .env("DB_MAX_CONNECTIONS", "2")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn serving(addr: SocketAddr, service: &str) -> bool {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

async fn wait_until_serving(child: &mut Child, addr: SocketAddr) {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("order-service exited before it was ready: {status}");
        }
        if serving(addr, "").await && serving(addr, "order.v1.OrderService").await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not SERVING within {READY_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe(addr: SocketAddr) -> bool {
    Command::new(BINARY)
        .arg("--probe")
        .env("LISTEN_ADDR", addr.to_string())
        .stdin(Stdio::null())
        .status()
        .await
        .expect("probe runs")
        .success()
}

async fn terminate_and_wait(child: &mut Child) -> ExitStatus {
    let pid = child.id().expect("still running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGTERM delivered");
    tokio::time::timeout(EXIT_WITHIN, child.wait())
        .await
        .unwrap_or_else(|_| panic!("order-service still running after {EXIT_WITHIN:?}"))
        .unwrap()
}

#[tokio::test]
async fn the_binary_serves_without_the_catalog_and_exits_zero_on_sigterm() {
    let (name, url) = fresh_database();
    assert!(!database_exists(&name).await, "precondition: no database");
    let addr = free_port();
    let mut child = command(&url, addr).spawn().expect("binary starts");

    wait_until_serving(&mut child, addr).await;

    assert!(database_exists(&name).await, "the service created it");
    assert!(probe(addr).await, "--probe sees SERVING");
    let mut client = OrderServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let listed = client
        .list_orders(ListOrdersRequest {
            page: 1,
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("reads work without the catalog")
        .into_inner();
    assert_eq!(listed.total, 0);
    let refused = client
        .create_order(CreateOrderRequest {
            customer_id: 1,
            items: vec![CreateOrderItem {
                product_id: uuid::Uuid::new_v4().to_string(),
                quantity: 1,
            }],
            idempotency_key: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    let exit = terminate_and_wait(&mut child).await;

    assert!(exit.success(), "exit status 0, got {exit}");
    assert!(!probe(addr).await, "--probe fails once it is gone");
    drop_database(&name).await;
}

#[tokio::test]
async fn migrate_only_creates_and_migrates_the_database_then_exits() {
    let (name, url) = fresh_database();

    let status = command(&url, free_port())
        .arg("--migrate-only")
        .status()
        .await
        .expect("binary runs");

    assert!(status.success(), "{status}");
    let mut db = PgConnection::connect(&url).await.expect("database created");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "idempotency_keys",
            "order_items",
            "orders",
            "outbox",
            "payment_events"
        ]
    );
    drop(db);
    drop_database(&name).await;
}
