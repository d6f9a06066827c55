//! The real `catalog-service` binary as a child process: it creates its
//! database when missing, starts again on the existing one, and on SIGTERM
//! lets an in-flight call finish before it exits 0. Issue 2, acceptance 8.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use proto::catalog::v1::{
    CreateProductRequest, Product, ReservationItem, ReserveInventoryRequest,
    catalog_service_client::CatalogServiceClient,
};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// Generous: the first start creates the database and migrates it.
const READY_WITHIN: Duration = Duration::from_secs(30);
const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES.into())
}

/// A database name no one uses yet (`.ci/run` drops leftovers of `t_*`).
fn fresh_database() -> (String, String) {
    let name = format!("t_catalog_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_server_url());
    (name, url)
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", postgres_server_url()))
        .await
        .expect("PostgreSQL reachable")
}

async fn database_exists(name: &str) -> bool {
    let mut admin = admin_connection().await;
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

async fn drop_database(name: &str) {
    let mut admin = admin_connection().await;
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut admin)
        .await;
}

/// A loopback port that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap()
}

/// The binary under test, running; killed if the test fails before it exits.
struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServiceProcess {
    fn start(database_url: &str) -> Self {
        let addr = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_catalog-service"))
            .env("DATABASE_URL", database_url)
            .env("LISTEN_ADDR", addr.to_string())
            // Tests run in parallel: no fixed admin port.
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("DB_MAX_CONNECTIONS", "2")
            .env("SHUTDOWN_GRACE_SECS", "20")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("catalog-service binary starts");
        Self { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Polls the gRPC health service until both the overall and the catalog
    /// service report SERVING; fails if the process exits or time runs out.
    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("catalog-service exited before it was ready: {status}");
            }
            if self.serving("").await && self.serving("catalog.v1.CatalogService").await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "catalog-service not SERVING within {READY_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self, service: &str) -> bool {
        let endpoint = tonic::transport::Endpoint::from_shared(self.url())
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2));
        let Ok(channel) = endpoint.connect().await else {
            return false;
        };
        let mut health = HealthClient::new(channel);
        health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
    }

    async fn client(&self) -> CatalogServiceClient<tonic::transport::Channel> {
        CatalogServiceClient::connect(self.url())
            .await
            .expect("catalog reachable")
    }

    fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(EXIT_WITHIN, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("catalog-service still running after {EXIT_WITHIN:?}"))
            .unwrap()
    }

    /// SIGTERM, then the exit status.
    async fn stop(mut self) -> ExitStatus {
        self.terminate();
        self.exit_status().await
    }
}

async fn create_product(
    client: &mut CatalogServiceClient<tonic::transport::Channel>,
    quantity: i32,
) -> Product {
    client
        .create_product(CreateProductRequest {
            name: "Lamp".into(),
            description: None,
            price: Some(proto::common::v1::Money {
                currency_code: "USD".into(),
                units: 25,
                nanos: 0,
            }),
            quantity,
        })
        .await
        .expect("product created")
        .into_inner()
}

#[tokio::test]
async fn the_service_creates_its_missing_database_and_starts_again_on_it() {
    let (name, url) = fresh_database();
    assert!(!database_exists(&name).await, "precondition: no database");

    let mut first = ServiceProcess::start(&url);
    first.wait_until_serving().await;
    let product = create_product(&mut first.client().await, 3).await;
    let first_exit = first.stop().await;

    assert!(database_exists(&name).await, "the service created it");
    assert!(first_exit.success(), "first run exits 0, got {first_exit}");

    let mut second = ServiceProcess::start(&url);
    second.wait_until_serving().await;
    let kept = second
        .client()
        .await
        .get_product(proto::catalog::v1::GetProductRequest {
            id: product.id.clone(),
        })
        .await
        .expect("the product survived the restart")
        .into_inner();
    let second_exit = second.stop().await;

    assert_eq!(kept, product);
    assert!(
        second_exit.success(),
        "second run exits 0, got {second_exit}"
    );
    drop_database(&name).await;
}

/// Number of sessions in `database` waiting for a lock.
async fn lock_waiters(monitor: &mut PgConnection, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
    )
    .bind(database)
    .fetch_one(monitor)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_in_flight_call_lets_it_finish_then_exits_zero() {
    // Arrange: a running service, a product, and a row lock that will hold the
    // next reservation of that product inside the service.
    let (name, url) = fresh_database();
    let mut service = ServiceProcess::start(&url);
    service.wait_until_serving().await;
    let mut client = service.client().await;
    let product = create_product(&mut client, 5).await;
    let product_id = uuid::Uuid::parse_str(&product.id).unwrap();
    let mut blocker = PgConnection::connect(&url).await.unwrap();
    let mut monitor = PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
        .bind(product_id)
        .execute(&mut blocker)
        .await
        .unwrap();

    let in_flight = tokio::spawn(async move {
        client
            .reserve_inventory(ReserveInventoryRequest {
                reservation_id: uuid::Uuid::new_v4().to_string(),
                items: vec![ReservationItem {
                    product_id: product_id.to_string(),
                    quantity: 2,
                }],
            })
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock_waiters(&mut monitor, &name).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the reservation never reached the lock"
        );
        assert!(
            !in_flight.is_finished(),
            "the reservation did not wait for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: SIGTERM while the call waits.
    service.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "the service waits for its in-flight call"
    );
    assert!(!in_flight.is_finished());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&service.addr, Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    // Assert: the call completes normally, then the process exits 0.
    let reserved = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight call finishes")
        .unwrap()
        .expect("the in-flight call succeeds")
        .into_inner();
    let exit = service.exit_status().await;
    assert_eq!(reserved.lines.len(), 1);
    assert_eq!(reserved.lines[0].quantity, 2);
    assert!(exit.success(), "exit status 0, got {exit}");
    let stock: i32 = sqlx::query_scalar("SELECT quantity FROM products WHERE id = $1")
        .bind(product_id)
        .fetch_one(&mut monitor)
        .await
        .unwrap();
    assert_eq!(stock, 3);

    drop(blocker);
    drop(monitor);
    drop_database(&name).await;
}
