//! Each service binary as operators run it: it creates and migrates its
//! missing database and starts again on the existing one; on SIGTERM it stops
//! taking connections, lets an in-flight call finish and exits 0; the order
//! service starts and reports SERVING while the catalog is down (its channel
//! connects lazily) and answers CreateOrder UNAVAILABLE meanwhile; `--probe`
//! and `--migrate-only` work as the deployment manifests use them.

use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

use proto::{
    catalog::v1::GetProductRequest,
    order::v1::{ListOrdersRequest, order_service_client::OrderServiceClient},
};
use sqlx::{Connection, PgConnection};
use tests::{
    TestDatabase,
    catalog::{CatalogClient, create_product, reserve},
    order::create_order,
    process::{CapturedOutput, ChildService, env, free_addr, run_to_exit},
};
use tonic::Code;

/// The catalog binary on `database`, SERVING; a long drain (SIGTERM lets an
/// in-flight call finish within it).
async fn catalog_binary(database: &TestDatabase) -> (ChildService, CatalogClient) {
    let mut settings = env("DB_MAX_CONNECTIONS=2 SHUTDOWN_GRACE=20s");
    settings.push(("DATABASE_URL", database.url()));
    let mut catalog = ChildService::start("catalog-service", &settings).await;
    catalog
        .wait_until_serving("catalog.v1.CatalogService")
        .await;
    let client = CatalogClient::connect(catalog.url())
        .await
        .expect("catalog reachable");
    (catalog, client)
}

/// The order service's environment: `database`, a catalog that is down
/// (nothing listens at its address).
fn order_binary_env(database: &TestDatabase, listen: std::net::SocketAddr) -> Vec<(&str, String)> {
    let mut settings = env("DB_MAX_CONNECTIONS=2 GRPC_TIMEOUT=1s ADMIN_ADDR=127.0.0.1:0");
    settings.extend([
        ("DATABASE_URL", database.url()),
        ("LISTEN_ADDR", listen.to_string()),
        ("CATALOG_URL", format!("http://{}", free_addr())),
    ]);
    settings
}

/// `order-service <args>` with `env`, run to its exit; whether it exited 0.
async fn order_service_run(args: &[&str], env: &[(&str, String)]) -> bool {
    let output = CapturedOutput::new();
    let limit = Duration::from_secs(30);
    let status = run_to_exit("order-service", args, env, &output, limit).await;
    status.success()
}

#[tokio::test]
async fn the_catalog_creates_its_missing_database_and_starts_again_on_it() {
    let database = TestDatabase::fresh("catalog");
    assert!(!database.exists().await, "precondition: no database");

    let (first, mut client) = catalog_binary(&database).await;
    let product = create_product(&mut client, "Lamp", "25.00", 3).await;
    assert!(database.exists().await, "the service created it");
    assert!(first.terminate().await, "the first run exits 0");

    let (second, mut client) = catalog_binary(&database).await;
    let kept = client
        .get_product(GetProductRequest {
            id: product.id.clone(),
        })
        .await
        .expect("the product survived the restart")
        .into_inner();
    assert_eq!(kept, product);
    assert!(second.terminate().await, "the second run exits 0");
}

/// Sessions of `database` waiting for a lock.
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
    // A running catalog, a product, and a row lock that will hold the next
    // reservation of that product inside the service.
    let database = TestDatabase::fresh("catalog");
    let (mut catalog, mut client) = catalog_binary(&database).await;
    let product = create_product(&mut client, "Lamp", "25.00", 5).await;
    let mut blocker = PgConnection::connect(&database.url()).await.unwrap();
    let mut monitor = PgConnection::connect(&database.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT id FROM products WHERE id = $1::uuid FOR UPDATE")
        .bind(&product.id)
        .execute(&mut blocker)
        .await
        .unwrap();
    let in_flight = tokio::spawn({
        let (mut client, product_id) = (client.clone(), product.id.clone());
        async move {
            let reservation = uuid::Uuid::new_v4().to_string();
            reserve(&mut client, &reservation, &[(&product_id, 2)]).await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock_waiters(&mut monitor, database.name()).await == 0 {
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

    // SIGTERM while the call waits: the process stays for it, but takes no
    // new connection.
    catalog.sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        catalog.is_running(),
        "the service waits for its in-flight call"
    );
    assert!(!in_flight.is_finished());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&catalog.addr, Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    // The call completes normally, then the process exits 0.
    let reserved = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight call finishes")
        .unwrap()
        .expect("the in-flight call succeeds");
    assert_eq!(reserved.lines.len(), 1);
    assert_eq!(reserved.lines[0].quantity, 2);
    assert!(catalog.wait_for_exit().await, "exit status 0");
    let stock: i32 = sqlx::query_scalar("SELECT quantity FROM products WHERE id = $1::uuid")
        .bind(&product.id)
        .fetch_one(&mut monitor)
        .await
        .unwrap();
    assert_eq!(stock, 3);
}

#[tokio::test]
async fn the_order_service_serves_without_the_catalog_and_exits_zero_on_sigterm() {
    let database = TestDatabase::fresh("order");
    assert!(!database.exists().await, "precondition: no database");
    let addr = free_addr();
    let settings = order_binary_env(&database, addr);
    let mut order = ChildService::start("order-service", &settings).await;

    order.wait_until_serving("order.v1.OrderService").await;

    assert!(database.exists().await, "the service created it");
    assert!(
        order_service_run(&["--probe"], &settings).await,
        "--probe sees SERVING"
    );
    let mut client = OrderServiceClient::connect(order.url()).await.unwrap();
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
    let product = uuid::Uuid::new_v4().to_string();
    let refused = create_order(&mut client, 1, &[(&product, 1)], None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    assert!(order.terminate().await, "exit status 0");
    assert!(
        !order_service_run(&["--probe"], &settings).await,
        "--probe fails once it is gone"
    );
}

#[tokio::test]
async fn migrate_only_creates_and_migrates_the_database_then_exits() {
    let database = TestDatabase::fresh("order");

    let settings = order_binary_env(&database, free_addr());
    assert!(order_service_run(&["--migrate-only"], &settings).await);

    let mut db = PgConnection::connect(&database.url())
        .await
        .expect("database created");
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
            "order_event_sequencer",
            "order_events",
            "order_items",
            "orders",
            "outbox",
            "payment_events"
        ]
    );
}

#[tokio::test]
async fn a_setting_under_its_old_name_is_still_read_and_the_new_name_is_named() {
    let database = TestDatabase::fresh("order");
    let run = |extra: &'static str| {
        let mut settings = order_binary_env(&database, free_addr());
        settings.retain(|(name, _)| *name != "GRPC_TIMEOUT");
        settings.extend(env(extra));
        async move {
            let output = CapturedOutput::new();
            let limit = Duration::from_secs(30);
            let status = run_to_exit(
                "order-service",
                &["--migrate-only"],
                &settings,
                &output,
                limit,
            )
            .await;
            (status.success(), tests::process::strip_ansi(&output.text()))
        }
    };
    // Read (a bad value under the old name is refused as the new setting).
    let (ok, log) = run("CATALOG_TIMEOUT_MS=soon SHUTDOWN_GRACE_SECS=5").await;
    assert!(!ok, "{log}");
    assert!(log.contains("--grpc-timeout"), "{log}");
    // A good one works, and the start says which name to use.
    let (ok, log) = run("CATALOG_TIMEOUT_MS=1500 SHUTDOWN_GRACE_SECS=5").await;
    assert!(ok, "{log}");
    assert!(
        log.contains("CATALOG_TIMEOUT_MS is an old name, read as GRPC_TIMEOUT=1500ms"),
        "{log}"
    );
    assert!(log.contains("read as SHUTDOWN_GRACE=5s"), "{log}");
}
