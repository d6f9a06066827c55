//! The gateway's product read cache (`gateway::product_cache`), with the real
//! services and PostgreSQL: reads are served from memory while the catalog's
//! change feed is live, every kind of committed change reaches it (through
//! the gateway, straight to the catalog over gRPC, an operator's SQL), a
//! client reads its own writes, no stale answer survives concurrent orders,
//! and a broken feed means no cache at all.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::{
    catalog::{catalog_client, catalog_database, release, reserve, spawn_catalog},
    gateway::{Platform, http_client, spawn_gateway, spawn_platform_with},
    order::{CatalogProxy, ProxyMode, spawn_order},
};

/// Long enough that only the change feed can explain a fresh read.
fn long_ttl(config: &mut gateway::Config) {
    config.product_cache_ttl = std::time::Duration::from_millis(600_000);
}

async fn new_product(p: &Platform, quantity: i64) -> String {
    let reply = p
        .post(
            "/api/products",
            &json!({"name": "Cached", "price": "2.50", "quantity": quantity}),
        )
        .await;
    reply.expect(201);
    reply.json["id"].as_str().unwrap().to_owned()
}

async fn stock(p: &Platform, id: &str) -> i64 {
    let reply = p.get(&format!("/api/products/{id}")).await;
    reply.expect(200);
    reply.json["quantity"].as_i64().unwrap()
}

/// `product_cache_lookups_total{result="..."}` and `product_cache_live`.
async fn cache_series(p: &Platform) -> (u64, u64, u64, u64) {
    let url = p.gateway.metrics_url();
    let mut values = [0; 4];
    let series = [
        "product_cache_lookups_total{result=\"hit\"}",
        "product_cache_lookups_total{result=\"miss\"}",
        "product_cache_lookups_total{result=\"bypass\"}",
        "product_cache_live",
    ];
    for (value, series) in values.iter_mut().zip(series) {
        *value = tests::metric_sample(&p.http, &url, series)
            .await
            .unwrap_or_else(|| panic!("no {series} in /metrics")) as u64;
    }
    (values[0], values[1], values[2], values[3])
}

/// An operator's fix straight in the catalog's database, behind every
/// service's back.
async fn set_stock_in_sql(p: &Platform, id: &str, quantity: i32) {
    let mut db = catalog_database(&p.catalog).await;
    sqlx::query("UPDATE products SET quantity = $2 WHERE id = $1::uuid")
        .bind(id)
        .bind(quantity)
        .execute(&mut db)
        .await
        .unwrap();
}

async fn wait_until_live(p: &Platform, live: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (.., is_live) = cache_series(p).await;
        if (is_live == 1) == live {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "product cache never became live = {live}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the gateway until the product's stock is `expected`; returns how
/// long that took. Fails after 2 s (the TTL is 10 minutes: only the change
/// feed can make the read fresh).
async fn until_stock(p: &Platform, id: &str, expected: i64) -> Duration {
    let started = Instant::now();
    loop {
        let seen = stock(p, id).await;
        if seen == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the gateway still answers stock {seen}, expected {expected}, after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn repeated_reads_are_served_from_the_cache_with_the_same_body() {
    let p = spawn_platform_with(long_ttl).await;
    wait_until_live(&p, true).await;
    let id = new_product(&p, 5).await;
    let first = p.get(&format!("/api/products/{id}")).await;
    first.expect(200);
    assert_eq!(first.content_type(), "application/json");
    let (hits_before, misses_before, ..) = cache_series(&p).await;
    for _ in 0..10 {
        let again = p.get(&format!("/api/products/{id}")).await;
        again.expect(200);
        assert_eq!(again.json, first.json);
        assert_eq!(again.content_type(), "application/json");
    }
    let (hits, misses, bypasses, live) = cache_series(&p).await;
    assert_eq!(hits - hits_before, 10, "every repeated read is a hit");
    assert_eq!(misses, misses_before);
    assert_eq!(bypasses, 0);
    assert_eq!(live, 1);
    // A missing product is never cached: still 404 after it was asked for.
    let missing = uuid::Uuid::new_v4();
    for _ in 0..2 {
        p.get(&format!("/api/products/{missing}"))
            .await
            .problem(404);
    }
}

#[tokio::test]
async fn changes_made_behind_the_gateways_back_reach_the_cache() {
    let p = spawn_platform_with(long_ttl).await;
    wait_until_live(&p, true).await;
    let id = new_product(&p, 10).await;
    assert_eq!(stock(&p, &id).await, 10);
    assert_eq!(stock(&p, &id).await, 10, "now cached");
    let mut catalog = catalog_client(&p.catalog).await;

    // Stock taken straight over gRPC (another service, another gateway).
    let reservation = uuid::Uuid::new_v4().to_string();
    reserve(&mut catalog, &reservation, &[(id.as_str(), 3)])
        .await
        .unwrap();
    let took = until_stock(&p, &id, 7).await;
    // Given back.
    assert!(release(&mut catalog, &reservation).await.unwrap());
    until_stock(&p, &id, 10).await;
    // An operator's fix in SQL.
    let mut db = catalog_database(&p.catalog).await;
    sqlx::query("UPDATE products SET quantity = 42, name = 'Renamed' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&mut db)
        .await
        .unwrap();
    until_stock(&p, &id, 42).await;
    let reply = p.get(&format!("/api/products/{id}")).await;
    assert_eq!(reply.json["name"], "Renamed");
    // Deleted over gRPC: 404, not the cached copy. (A product that was
    // reserved cannot be deleted: a fresh one.)
    let id = new_product(&p, 1).await;
    stock(&p, &id).await;
    stock(&p, &id).await;
    catalog
        .delete_product(proto::catalog::v1::DeleteProductRequest {
            id: id.clone(),
            expected_version: None,
        })
        .await
        .unwrap();
    let started = Instant::now();
    while p.get(&format!("/api/products/{id}")).await.status.as_u16() != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "deleted product still served"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("a reservation made over gRPC was visible through the gateway after {took:?}");
}

#[tokio::test]
async fn a_client_reads_its_own_writes_through_the_gateway() {
    let p = spawn_platform_with(long_ttl).await;
    wait_until_live(&p, true).await;
    let id = new_product(&p, 100).await;
    for round in 0..20_i64 {
        // Cached before each write; read right after it, with no waiting.
        assert_eq!(stock(&p, &id).await, 100 - round);
        let order = p
            .post(
                "/api/orders",
                &json!({"customer_id": 1, "products": [{"product_id": id, "quantity": 1}]}),
            )
            .await;
        order.expect(201);
        assert_eq!(stock(&p, &id).await, 100 - round - 1, "round {round}");
    }
    let price = |body: &Value| body["price"].as_str().unwrap().to_owned();
    assert_eq!(
        price(&p.get(&format!("/api/products/{id}")).await.json),
        "2.50"
    );
    p.put(&format!("/api/products/{id}"), &json!({"price": "3.75"}))
        .await
        .expect(200);
    assert_eq!(
        price(&p.get(&format!("/api/products/{id}")).await.json),
        "3.75"
    );
    p.delete(&format!("/api/products/{id}")).await.problem(400);
    let other = new_product(&p, 1).await;
    stock(&p, &other).await;
    p.delete(&format!("/api/products/{other}"))
        .await
        .expect(204);
    p.get(&format!("/api/products/{other}")).await.problem(404);
}

/// Readers hammer a product while 40 orders race for its 10 units: once the
/// orders have answered, the very next read shows 0, and still does a moment
/// later, i.e. no answer fetched before a change was stored after it. (The
/// interleaving that would store one is rare end to end; the guard itself is
/// pinned down deterministically by the unit tests in `product_cache`.)
#[tokio::test]
async fn no_stale_stock_survives_concurrent_orders_and_reads() {
    let p = spawn_platform_with(long_ttl).await;
    wait_until_live(&p, true).await;
    for round in 0..3 {
        let id = new_product(&p, 10).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (http, url, stop) = (
                    http_client(),
                    p.url(&format!("/api/products/{id}")),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let mut reads = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let reply = http.get(&url).send().await.unwrap();
                        assert_eq!(reply.status(), 200);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let orders: Vec<_> = (0..40)
            .map(|_| {
                let (http, url, id) = (http_client(), p.url("/api/orders"), id.clone());
                tokio::spawn(async move {
                    http.post(&url)
                        .json(&json!({"customer_id": 7, "products": [{"product_id": id, "quantity": 1}]}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut created = 0;
        for order in orders {
            if order.await.unwrap() == 201 {
                created += 1;
            }
        }
        assert_eq!(created, 10, "round {round}");
        // Through another connection than the order's, right away.
        let seen = stock(&p, &id).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut reads = 0;
        for reader in readers {
            reads += reader.await.unwrap();
        }
        assert_eq!(
            seen, 0,
            "round {round}: stale stock after {reads} concurrent reads"
        );
        // And it stays so (a late fill would show here).
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(stock(&p, &id).await, 0, "round {round}");
    }
}

/// The feed comes through a proxy the test can cut: while it is cut the
/// cache is off (no stale answer, the outage shows as 503 like any read),
/// and once the catalog is back the cache is live again, emptied.
#[tokio::test]
async fn without_a_live_feed_the_cache_is_not_used() {
    let catalog = spawn_catalog().await;
    let proxy = CatalogProxy::start(catalog.addr).await;
    let order = spawn_order(&catalog.url()).await;
    let gateway = spawn_gateway(&proxy.url(), &order.url(), long_ttl).await;
    let p = Platform::new(catalog, order, gateway);
    wait_until_live(&p, true).await;
    let id = new_product(&p, 10).await;
    assert_eq!(stock(&p, &id).await, 10);
    assert_eq!(stock(&p, &id).await, 10);

    proxy.set(ProxyMode::Down);
    wait_until_live(&p, false).await;
    let reply = p.get(&format!("/api/products/{id}")).await;
    assert_eq!(
        reply.status.as_u16(),
        503,
        "served from a cache nobody vouches for: {}",
        reply.json
    );
    // Changed while the gateway could not hear of it.
    set_stock_in_sql(&p, &id, 3).await;
    let (.., bypass_before, _) = cache_series(&p).await;

    proxy.set(ProxyMode::Up);
    wait_until_live(&p, true).await;
    assert_eq!(
        stock(&p, &id).await,
        3,
        "the cache was emptied when the feed came back"
    );
    let (.., bypasses, _) = cache_series(&p).await;
    assert!(
        bypass_before >= 1,
        "the read during the outage bypassed the cache"
    );
    assert_eq!(bypasses, bypass_before);
}

#[tokio::test]
async fn a_capacity_of_zero_turns_the_cache_off() {
    let p = spawn_platform_with(|config| config.product_cache_capacity = 0).await;
    let id = new_product(&p, 4).await;
    for _ in 0..3 {
        assert_eq!(stock(&p, &id).await, 4);
    }
    let (hits, misses, bypasses, live) = cache_series(&p).await;
    assert_eq!((hits, misses, bypasses, live), (0, 0, 3, 0));
    set_stock_in_sql(&p, &id, 9).await;
    assert_eq!(stock(&p, &id).await, 9, "read straight from the catalog");
}
