//! One REST request is one trace across the three services: the real
//! binaries export over OTLP to a receiver in this test, and the spans of one
//! `POST /api/orders` (sent with a known W3C `traceparent`) come from the
//! gateway, the order service and the catalog service, store spans included.

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;
use tests::{fresh_database_url, otlp::OtlpReceiver, process::ChildService};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn one_order_request_is_one_trace_with_spans_from_all_three_services() {
    let receiver = OtlpReceiver::start().await;
    let otel = |name: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_SERVICE_NAME", name.to_owned()),
            // Export within 100 ms instead of the default 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ]
    };
    let mut catalog_env = otel("catalog-service");
    catalog_env.push(("DATABASE_URL", fresh_database_url("catalog")));
    let catalog = ChildService::start("catalog-service", &catalog_env).await;
    let mut order_env = otel("order-service");
    order_env.push(("DATABASE_URL", fresh_database_url("order")));
    order_env.push(("CATALOG_URL", catalog.url()));
    let order = ChildService::start("order-service", &order_env).await;
    let gateway = ChildService::start_gateway(catalog.url(), order.url(), &otel("gateway")).await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let product: serde_json::Value = http
        .post(format!("{}/api/products", gateway.url()))
        .json(&json!({"name": "Traced", "price": "10.00", "quantity": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = http
        .post(format!("{}/api/orders", gateway.url()))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(
            &json!({"customer_id": 7, "products": [{"product_id": product["id"], "quantity": 2}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let wanted: BTreeSet<&str> = ["gateway", "order-service", "catalog-service"].into();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<_> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == TRACE_ID)
            .collect();
        let services: BTreeSet<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
        let has_store_spans = spans
            .iter()
            .any(|s| s.service_name == "catalog-service" && s.name == "reserve")
            && spans
                .iter()
                .any(|s| s.service_name == "order-service" && s.name == "confirm_order");
        if services.is_superset(&wanted) && has_store_spans {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans of trace {TRACE_ID} so far: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every span of the trace hangs off another span of it, except the
    // gateway's root, whose parent is the caller's span from `traceparent`.
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let orphans: Vec<_> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .collect();
    assert!(
        orphans
            .iter()
            .all(|s| s.service_name == "gateway" && s.parent_span_id == "00f067aa0ba902b7"),
        "spans whose parent is not in the trace: {orphans:#?}"
    );

    assert!(gateway.terminate().await);
    assert!(order.terminate().await);
    assert!(catalog.terminate().await);
}
