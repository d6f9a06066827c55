//! The spans follow the OpenTelemetry semantic conventions, as a collector
//! receives them from the real binaries: the gateway's request span is a
//! SERVER span named `{method} {route}` with the HTTP attributes, each call
//! to a service a CLIENT span named `package.Service/Method` with the RPC
//! attributes, each service's span for it a SERVER span of the same name, its
//! child, in the same trace; the stores' spans carry `db.system`. Over
//! OTLP/gRPC (the default) and OTLP/HTTP protobuf
//! (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`) alike.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tests::{
    gateway::Api,
    otlp::{OtlpReceiver, ReceivedSpan, Transport},
    process::{ChildPlatform, PlatformEnv},
};

const PRODUCT_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4701";
const ORDER_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4702";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The platform exporting to `endpoint` over `protocol`, within 100 ms.
async fn platform_exporting_to(endpoint: String, protocol: &str) -> ChildPlatform {
    let otel = |name: &str| vec![("OTEL_SERVICE_NAME", name.to_owned())];
    ChildPlatform::start(PlatformEnv {
        all: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
        catalog: otel("catalog-service"),
        order: otel("order-service"),
        gateway: otel("gateway"),
        ..Default::default()
    })
    .await
}

/// `GET /api/products/{id}` of a new product (not cached yet: the gateway
/// asks the catalog) under trace [`PRODUCT_TRACE`]; the product's id.
async fn get_a_product(api: &Api) -> String {
    let product = api.create_product("Conventional", "10.00", 5).await;
    let id = product["id"].as_str().expect("product id").to_owned();
    let got = api
        .http
        .get(api.url(&format!("/api/products/{id}")))
        .header(
            "traceparent",
            format!("00-{PRODUCT_TRACE}-{CALLER_SPAN}-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    id
}

/// Waits until `found` finds what it looks for among the received spans.
async fn wait_for<T>(
    receiver: &OtlpReceiver,
    what: &str,
    found: impl Fn(&[ReceivedSpan]) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spans = receiver.spans();
        if let Some(found) = found(&spans) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} among the spans received: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn find<'a>(
    spans: &'a [ReceivedSpan],
    trace: &str,
    service: &str,
    name: &str,
    kind: SpanKind,
) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| {
        s.trace_id == trace && s.service_name == service && s.name == name && s.kind == kind
    })
}

/// Whether the product GET's trace is all there: the gateway's SERVER span,
/// the catalog's SERVER span and a database span.
fn product_get_arrived(spans: &[ReceivedSpan]) -> bool {
    let server =
        |service, name| find(spans, PRODUCT_TRACE, service, name, SpanKind::Server).is_some();
    server("gateway", "GET /api/products/{id}")
        && server("catalog-service", "catalog.v1.CatalogService/GetProduct")
        && spans
            .iter()
            .any(|s| s.trace_id == PRODUCT_TRACE && s.str_attr("db.system") == Some("postgresql"))
}

/// The three spans of one call from `client` to `server`: the caller's
/// CLIENT span and the server's SERVER span, same name, same trace, the
/// server's the client's child; both with the RPC attributes.
fn assert_rpc(
    spans: &[ReceivedSpan],
    trace: &str,
    client: &str,
    server: &str,
    service: &str,
    method: &str,
) -> (ReceivedSpan, ReceivedSpan) {
    let name = format!("{service}/{method}");
    let calling = find(spans, trace, client, &name, SpanKind::Client)
        .unwrap_or_else(|| panic!("{client}'s CLIENT span {name}: {spans:#?}"));
    let serving = find(spans, trace, server, &name, SpanKind::Server)
        .unwrap_or_else(|| panic!("{server}'s SERVER span {name}: {spans:#?}"));
    for span in [calling, serving] {
        assert_eq!(span.str_attr("rpc.system"), Some("grpc"), "{span:#?}");
        assert_eq!(span.str_attr("rpc.service"), Some(service), "{span:#?}");
        assert_eq!(span.str_attr("rpc.method"), Some(method), "{span:#?}");
        assert_eq!(span.int_attr("rpc.grpc.status_code"), Some(0), "{span:#?}");
    }
    assert_eq!(
        calling.str_attr("server.address"),
        Some("127.0.0.1"),
        "{calling:#?}"
    );
    assert!(
        calling.int_attr("server.port").is_some_and(|p| p > 0),
        "{calling:#?}"
    );
    assert_eq!(
        serving.parent_span_id, calling.span_id,
        "the server's span is the client's child"
    );
    (calling.clone(), serving.clone())
}

/// The gateway's SERVER span of the product GET, and what hangs under it.
fn assert_product_get(spans: &[ReceivedSpan], id: &str, gateway_port: u16) {
    let request = find(
        spans,
        PRODUCT_TRACE,
        "gateway",
        "GET /api/products/{id}",
        SpanKind::Server,
    )
    .unwrap_or_else(|| panic!("the gateway's SERVER span: {spans:#?}"));
    assert_eq!(request.parent_span_id, CALLER_SPAN, "continues traceparent");
    assert_eq!(request.str_attr("http.request.method"), Some("GET"));
    assert_eq!(request.str_attr("http.route"), Some("/api/products/{id}"));
    assert_eq!(
        request.str_attr("url.path"),
        Some(format!("/api/products/{id}").as_str())
    );
    assert_eq!(request.str_attr("url.scheme"), Some("http"));
    assert_eq!(request.int_attr("http.response.status_code"), Some(200));
    assert_eq!(request.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(
        request.int_attr("server.port"),
        Some(i64::from(gateway_port))
    );
    assert_eq!(request.attributes.get("error.type"), None, "{request:#?}");

    let (calling, _) = assert_rpc(
        spans,
        PRODUCT_TRACE,
        "gateway",
        "catalog-service",
        "catalog.v1.CatalogService",
        "GetProduct",
    );
    assert_eq!(calling.parent_span_id, request.span_id);

    let database = spans
        .iter()
        .find(|s| {
            s.trace_id == PRODUCT_TRACE
                && s.service_name == "catalog-service"
                && s.str_attr("db.system") == Some("postgresql")
        })
        .unwrap_or_else(|| panic!("a catalog database span: {spans:#?}"));
    assert_eq!(database.kind, SpanKind::Client, "{database:#?}");
    assert!(
        database
            .str_attr("db.namespace")
            .is_some_and(|name| !name.is_empty()),
        "{database:#?}"
    );
}

/// The ids of `span`'s ancestors among `spans`, nearest first.
fn ancestors<'a>(spans: &'a [ReceivedSpan], mut span: &'a ReceivedSpan) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(parent) = spans.iter().find(|s| s.span_id == span.parent_span_id) {
        ids.push(parent.span_id.clone());
        span = parent;
    }
    ids
}

fn gateway_port(platform: &ChildPlatform) -> u16 {
    platform
        .gateway_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .expect("the gateway URL ends with its port")
}

#[tokio::test]
async fn spans_follow_the_semantic_conventions_across_the_three_services() {
    let receiver = OtlpReceiver::start().await;
    let platform = platform_exporting_to(receiver.endpoint(), "grpc").await;
    let api = Api::new(platform.gateway_url());
    let id = get_a_product(&api).await;
    let product = api.create_product("Ordered", "4.00", 5).await;
    let created = api
        .http
        .post(api.url("/api/orders"))
        .header("traceparent", format!("00-{ORDER_TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({"customer_id": 7, "products": [{"product_id": product["id"], "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Everything of both traces: the catalog's answer to the order's
    // reservation is the last hop.
    let spans = wait_for(&receiver, "complete traces", |spans| {
        let done = find(
            spans,
            ORDER_TRACE,
            "catalog-service",
            "catalog.v1.CatalogService/ReserveInventory",
            SpanKind::Server,
        )
        .is_some()
            && product_get_arrived(spans)
            && find(
                spans,
                ORDER_TRACE,
                "gateway",
                "POST /api/orders",
                SpanKind::Server,
            )
            .is_some();
        done.then(|| spans.to_vec())
    })
    .await;
    assert!(spans.iter().all(|s| s.transport == Transport::Grpc));
    assert_product_get(&spans, &id, gateway_port(&platform));

    // gateway -> order -> catalog: each hop a CLIENT span and its SERVER child.
    let request = find(
        &spans,
        ORDER_TRACE,
        "gateway",
        "POST /api/orders",
        SpanKind::Server,
    )
    .expect("checked");
    assert_eq!(request.str_attr("http.route"), Some("/api/orders"));
    assert_eq!(request.int_attr("http.response.status_code"), Some(201));
    let (to_order, order) = assert_rpc(
        &spans,
        ORDER_TRACE,
        "gateway",
        "order-service",
        "order.v1.OrderService",
        "CreateOrder",
    );
    assert_eq!(to_order.parent_span_id, request.span_id);
    let (to_catalog, _) = assert_rpc(
        &spans,
        ORDER_TRACE,
        "order-service",
        "catalog-service",
        "catalog.v1.CatalogService",
        "ReserveInventory",
    );
    // The order service's call is made while serving CreateOrder: under its
    // SERVER span (through the saga's own spans), in its trace.
    assert!(
        ancestors(&spans, &to_catalog).contains(&order.span_id),
        "ReserveInventory's CLIENT span is not under CreateOrder's SERVER span: {spans:#?}"
    );

    platform.stop_cleanly().await;
}

#[tokio::test]
async fn spans_go_over_otlp_http_protobuf_when_asked() {
    let receiver = OtlpReceiver::start().await;
    let platform = platform_exporting_to(receiver.http_endpoint(), "http/protobuf").await;
    let api = Api::new(platform.gateway_url());
    let id = get_a_product(&api).await;

    let spans = wait_for(&receiver, "the product GET's spans", |spans| {
        product_get_arrived(spans).then(|| spans.to_vec())
    })
    .await;
    assert!(
        spans.iter().all(|s| s.transport == Transport::HttpProtobuf),
        "every span came over OTLP/HTTP"
    );
    assert_product_get(&spans, &id, gateway_port(&platform));

    platform.stop_cleanly().await;
}

#[tokio::test]
async fn an_unsupported_otlp_protocol_stops_the_start_naming_the_setting() {
    for (binary, variable) in [
        ("gateway", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ("catalog-service", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ] {
        let output = tests::process::CapturedOutput::new();
        let env = [
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4318".to_owned(),
            ),
            (variable, "http/json".to_owned()),
        ];
        let status =
            tests::process::run_to_exit(binary, &[], &env, &output, Duration::from_secs(30)).await;
        let text = tests::process::strip_ansi(&output.text());
        assert!(!status.success(), "{binary} started: {text}");
        assert!(text.contains(variable), "{binary}: {text}");
        assert!(
            text.contains("`grpc` or `http/protobuf`"),
            "{binary}: {text}"
        );
    }
}
