//! One REST request is one trace across the three services: the real
//! binaries export over OTLP to a receiver in this test, and the spans of one
//! `POST /api/orders` (sent with a known W3C `traceparent`) come from the
//! gateway, the order service and the catalog service, store spans included.

use std::{collections::BTreeSet, time::Duration};

use tests::{
    gateway::Api,
    otlp::OtlpReceiver,
    process::{ChildPlatform, PlatformEnv},
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn one_order_request_is_one_trace_with_spans_from_all_three_services() {
    let receiver = OtlpReceiver::start().await;
    let otel = |name: &str| vec![("OTEL_SERVICE_NAME", name.to_owned())];
    let platform = ChildPlatform::start(PlatformEnv {
        all: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            // Export within 100 ms instead of the default 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
        catalog: otel("catalog-service"),
        order: otel("order-service"),
        gateway: otel("gateway"),
        ..Default::default()
    })
    .await;
    let api = Api::new(platform.gateway_url());
    let product = api.create_product("Traced", "10.00", 5).await;
    let created = api
        .http
        .post(api.url("/api/orders"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({"customer_id": 7, "products": [{"product_id": product["id"], "quantity": 2}]}))
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

    platform.stop_cleanly().await;
}
