//! Each service scales by replicas: two catalog-service processes on one
//! database behind one order-service. Both take reservations; one is killed
//! mid-run; no order that got a 201 is lost, new orders keep succeeding, and
//! stock is conserved exactly once the reconciler has finished.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tests::{
    TestDatabase,
    gateway::Api,
    process::{ChildPlatform, ChildService, PlatformEnv, env, free_addr},
};
use tokio::sync::Mutex;

async fn reservations_taken(api: &Api, admin: std::net::SocketAddr) -> f64 {
    tests::metric_sample(
        &api.http,
        &format!("http://{admin}/metrics"),
        "catalog_reservations_total{outcome=\"reserved\"}",
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test]
async fn two_catalog_replicas_share_the_load_and_losing_one_loses_no_order() {
    // Replica B first, on the catalog database; then the platform, whose
    // order service balances over A and B.
    let (catalog_db, order_db) = (TestDatabase::fresh("catalog"), TestDatabase::fresh("order"));
    let (addr_a, admin_b) = (free_addr(), free_addr());
    let mut catalog_b = ChildService::start(
        "catalog-service",
        &[
            ("DATABASE_URL", catalog_db.url()),
            ("ADMIN_ADDR", admin_b.to_string()),
            ("DB_MAX_CONNECTIONS", "4".to_owned()),
        ],
    )
    .await;
    let mut order_env = env(
        "GRPC_REFRESH_INTERVAL=100ms GRPC_TIMEOUT=1000ms RECONCILE_INTERVAL=1s \
         RESERVING_GRACE=3s OUTBOX_RETRY_BASE=100ms",
    );
    order_env.push((
        "CATALOG_URL",
        format!("http://{addr_a},{}", catalog_b.url()),
    ));
    let platform = ChildPlatform::start(PlatformEnv {
        databases: Some((catalog_db.url(), order_db.url())),
        catalog: vec![("LISTEN_ADDR", addr_a.to_string())],
        order: order_env,
        ..Default::default()
    })
    .await;
    let admin_a = platform.catalog_admin;
    let api = Api::new(platform.gateway_url());

    const INITIAL_STOCK: i64 = 10_000;
    let product = api.create_product("Widget", "1.00", INITIAL_STOCK).await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    // Order id -> quantity, for every 201.
    let accepted: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    let shared = (api.clone(), product_id.clone(), accepted.clone());
    let place = move |quantity: i64| {
        let (api, product_id, accepted) = shared.clone();
        async move {
            let reply = api.create_order(1, &[(&product_id, quantity)]).await;
            if reply.status == 201 {
                let id = reply.json["id"].as_str().unwrap().to_owned();
                accepted.lock().await.insert(id, quantity);
            }
            reply.status.as_u16()
        }
    };

    // Phase 1: both replicas take reservations.
    for _ in 0..40 {
        assert_eq!(place(1).await, 201);
    }
    let (taken_a, taken_b) = (
        reservations_taken(&api, admin_a).await,
        reservations_taken(&api, admin_b).await,
    );
    assert_eq!(taken_a + taken_b, 40.0);
    assert!(
        taken_a >= 5.0 && taken_b >= 5.0,
        "both replicas get traffic: {taken_a} / {taken_b}"
    );

    // Phase 2: a stream of orders; replica B is killed in the middle of it.
    let running = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (place, running) = (place.clone(), running.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while running.load(Ordering::Relaxed) {
                    statuses.push(place(2).await);
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    catalog_b.kill9().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for worker in workers {
        statuses.extend(worker.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "only successes or 'try again': {statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 201).count() > 10);

    // Phase 3: with B gone from the balancer, every new order succeeds on A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(place(1).await, 201);
    }

    // Every 201 is an order that exists, and stock is conserved exactly once
    // the reconciler has released what was in flight on B.
    let accepted = accepted.lock().await.clone();
    for id in accepted.keys() {
        let reply = api.get(&format!("/api/orders/{id}")).await;
        assert_eq!(reply.status, 200, "order {id} got a 201");
    }
    let held: i64 = accepted.values().sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stock = api.stock_of(&product_id).await;
        if stock + held == INITIAL_STOCK {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "stock {stock} + held {held} != {INITIAL_STOCK} after the reconciler's grace; \
                 orders by status: {:?}; reservations by state: {:?}",
                tally(&platform.order_database, "SELECT status, count(*), 0::bigint FROM orders GROUP BY status").await,
                tally(
                    &platform.catalog_database,
                    "SELECT r.state, count(*), COALESCE(sum(l.quantity), 0)::bigint FROM reservations r \
                     LEFT JOIN reservation_lines l ON l.reservation_id = r.id GROUP BY r.state"
                )
                .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    platform.stop_cleanly().await;
}

/// Rows of `(label, count, units)` from a diagnostic query, for failure messages.
async fn tally(database_url: &str, sql: &'static str) -> Vec<(String, i64, i64)> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query_as(sql)
        .fetch_all(&mut connection)
        .await
        .unwrap()
}
