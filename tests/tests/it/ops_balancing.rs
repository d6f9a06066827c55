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

use serde_json::{Value, json};
use tests::{
    fresh_database_url,
    process::{ChildService, free_addr},
};
use tokio::sync::Mutex;

async fn reservations_taken(http: &reqwest::Client, admin: std::net::SocketAddr) -> f64 {
    tests::metric_sample(
        http,
        &format!("http://{admin}/metrics"),
        "catalog_reservations_total{outcome=\"reserved\"}",
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test]
async fn two_catalog_replicas_share_the_load_and_losing_one_loses_no_order() {
    let catalog_db = fresh_database_url("catalog");
    let order_db = fresh_database_url("order");
    let (admin_a, admin_b) = (free_addr(), free_addr());
    let catalog_a = ChildService::start(
        "catalog-service",
        &[
            ("DATABASE_URL", catalog_db.clone()),
            ("ADMIN_ADDR", admin_a.to_string()),
        ],
    )
    .await;
    let catalog_b = ChildService::start(
        "catalog-service",
        &[
            ("DATABASE_URL", catalog_db.clone()),
            ("ADMIN_ADDR", admin_b.to_string()),
        ],
    )
    .await;
    let order = ChildService::start(
        "order-service",
        &[
            ("DATABASE_URL", fresh_database_url("order")),
            (
                "CATALOG_URL",
                format!("{},{}", catalog_a.url(), catalog_b.url()),
            ),
            ("CATALOG_REFRESH_MS", "100".to_owned()),
            ("CATALOG_TIMEOUT_MS", "1000".to_owned()),
            ("RECONCILE_INTERVAL_SECS", "1".to_owned()),
            ("RESERVING_GRACE_SECS", "3".to_owned()),
            ("OUTBOX_RETRY_BASE_MS", "100".to_owned()),
        ],
    )
    .await;
    let gateway = ChildService::start_gateway(catalog_a.url(), order.url(), &[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = gateway.url();

    const INITIAL_STOCK: i64 = 10_000;
    let product: Value = http
        .post(format!("{base}/api/products"))
        .json(&json!({"name": "Widget", "price": "1.00", "quantity": INITIAL_STOCK}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product_id = product["id"].as_str().unwrap().to_owned();
    // Order id -> quantity, for every 201.
    let accepted: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    let place = {
        let (http, base, product_id, accepted) = (
            http.clone(),
            base.clone(),
            product_id.clone(),
            accepted.clone(),
        );
        move |quantity: i64| {
            let (http, base, product_id, accepted) = (
                http.clone(),
                base.clone(),
                product_id.clone(),
                accepted.clone(),
            );
            async move {
                let response = http
                    .post(format!("{base}/api/orders"))
                    .json(&json!({"customer_id": 1, "products": [{"product_id": product_id, "quantity": quantity}]}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                if status == 201 {
                    let body: Value = response.json().await.unwrap();
                    accepted
                        .lock()
                        .await
                        .insert(body["id"].as_str().unwrap().to_owned(), quantity);
                }
                status
            }
        }
    };

    // Phase 1: both replicas take reservations.
    for _ in 0..40 {
        assert_eq!(place(1).await, 201);
    }
    let (taken_a, taken_b) = (
        reservations_taken(&http, admin_a).await,
        reservations_taken(&http, admin_b).await,
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
        let response = http
            .get(format!("{base}/api/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "order {id} got a 201");
    }
    let held: i64 = accepted.values().sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let product: Value = http
            .get(format!("{base}/api/products/{product_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stock = product["quantity"].as_i64().unwrap();
        if stock + held == INITIAL_STOCK {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "stock {stock} + held {held} != {INITIAL_STOCK} after the reconciler's grace; \
                 orders by status: {:?}; reservations by state: {:?}",
                tally(&order_db, "SELECT status, count(*), 0::bigint FROM orders GROUP BY status").await,
                tally(
                    &catalog_db,
                    "SELECT r.state, count(*), COALESCE(sum(l.quantity), 0)::bigint FROM reservations r \
                     LEFT JOIN reservation_lines l ON l.reservation_id = r.id GROUP BY r.state"
                )
                .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(gateway.terminate().await);
    assert!(order.terminate().await);
    assert!(catalog_a.terminate().await);
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
