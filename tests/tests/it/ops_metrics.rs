//! Every process serves Prometheus series an operator needs: the real
//! binaries (one registry each) after a known amount of traffic, with the
//! figures that traffic must have produced.

use std::collections::BTreeMap;

use serde_json::json;
use tests::{
    fresh_database_url,
    process::{ChildService, free_addr},
};

/// `name{labels}` -> value, from the Prometheus / OpenMetrics text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the one series whose name and labels are all given (labels
/// in any order); `None` when absent.
fn value(series: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series.iter().find_map(|(key, value)| {
        let (key_name, rest) = key.split_once('{').unwrap_or((key, "}"));
        let matches = key_name == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then_some(*value)
    })
}

async fn scrape(http: &reqwest::Client, url: String) -> BTreeMap<String, f64> {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn each_process_exposes_its_red_business_and_pool_series() {
    let catalog_admin = free_addr();
    let catalog = ChildService::start(
        "catalog-service",
        &[
            ("DATABASE_URL", fresh_database_url("catalog")),
            ("ADMIN_ADDR", catalog_admin.to_string()),
        ],
    )
    .await;
    let order_admin = free_addr();
    let order = ChildService::start(
        "order-service",
        &[
            ("DATABASE_URL", fresh_database_url("order")),
            ("ADMIN_ADDR", order_admin.to_string()),
            ("CATALOG_URL", catalog.url()),
        ],
    )
    .await;
    let gateway = ChildService::start_gateway(catalog.url(), order.url(), &[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let api = |path: &str| format!("{}{path}", gateway.url());

    // Known traffic: 1 product, 2 orders taken, 1 refused for stock, 1 cancel.
    let product: serde_json::Value = http
        .post(api("/api/products"))
        .json(&json!({"name": "Lamp", "price": "25.50", "quantity": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_body = |quantity: i32| json!({"customer_id": 1, "products": [{"product_id": product["id"], "quantity": quantity}]});
    let mut order_ids = Vec::new();
    for _ in 0..2 {
        let response = http
            .post(api("/api/orders"))
            .json(&order_body(1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.unwrap();
        order_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let refused = http
        .post(api("/api/orders"))
        .json(&order_body(5))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let canceled = http
        .put(api(&format!("/api/orders/{}/status", order_ids[0])))
        .json(&json!({"status": "canceled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);

    let catalog_series = scrape(&http, format!("http://{catalog_admin}/metrics")).await;
    let reserve = "/catalog.v1.CatalogService/ReserveInventory";
    assert_eq!(
        value(
            &catalog_series,
            "grpc_server_requests_total",
            &[("rpc", reserve), ("code", "OK")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &catalog_series,
            "grpc_server_requests_total",
            &[("rpc", reserve), ("code", "FAILED_PRECONDITION")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &catalog_series,
            "grpc_server_request_duration_seconds_count",
            &[("rpc", reserve)]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &catalog_series,
            "catalog_reservations_total",
            &[("outcome", "reserved")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &catalog_series,
            "catalog_reservations_total",
            &[("outcome", "insufficient_stock")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&catalog_series, "catalog_units_reserved_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&catalog_series, "catalog_reservation_releases_total", &[]),
        Some(1.0)
    );
    let catalog_pool = value(&catalog_series, "db_pool_connections_idle", &[]).unwrap()
        + value(&catalog_series, "db_pool_connections_in_use", &[]).unwrap();
    assert!(
        catalog_pool >= 1.0,
        "the catalog holds at least one connection"
    );

    let order_series = scrape(&http, format!("http://{order_admin}/metrics")).await;
    let create = "/order.v1.OrderService/CreateOrder";
    assert_eq!(
        value(
            &order_series,
            "grpc_server_requests_total",
            &[("rpc", create), ("code", "OK")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &order_series,
            "order_creations_total",
            &[("outcome", "created")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &order_series,
            "order_creations_total",
            &[("outcome", "refused")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &order_series,
            "order_rejections_total",
            &[("reason", "insufficient_stock")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &order_series,
            "order_outbox_deliveries_total",
            &[("outcome", "delivered")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&order_series, "order_outbox_backlog", &[]), Some(0.0));
    assert_eq!(
        value(&order_series, "order_outbox_oldest_age_seconds", &[]),
        Some(0.0)
    );
    assert!(value(&order_series, "db_pool_connections_idle", &[]).is_some());
    assert!(value(&order_series, "db_pool_connections_in_use", &[]).is_some());

    let gateway_series = scrape(&http, api("/metrics")).await;
    let orders_route = [("method", "POST"), ("route", "/api/orders")];
    assert_eq!(
        value(
            &gateway_series,
            "http_server_requests_total",
            &[orders_route[0], orders_route[1], ("status", "201")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &gateway_series,
            "http_server_requests_total",
            &[orders_route[0], orders_route[1], ("status", "400")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &gateway_series,
            "http_server_request_duration_seconds_count",
            &orders_route
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &gateway_series,
            "grpc_client_requests_total",
            &[("rpc", "CreateOrder"), ("code", "OK")]
        ),
        Some(2.0)
    );
    let p99_bucket_sum: f64 = gateway_series
        .iter()
        .filter(|(k, _)| {
            k.starts_with("http_server_request_duration_seconds_bucket")
                && k.contains("le=\"+Inf\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(
        p99_bucket_sum >= 5.0,
        "every request landed in a latency bucket"
    );

    assert!(gateway.terminate().await);
    assert!(order.terminate().await);
    assert!(catalog.terminate().await);
}
