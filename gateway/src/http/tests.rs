//! Router-level tests that need no backend: the services' URLs point at a
//! closed port, so anything that reaches a service answers 503, and anything
//! refused before that proves it never got there.

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use clap::Parser;
use serde_json::Value;
use tower::ServiceExt;

use crate::{Config, config::WriteAccess, metrics::Metrics, security::signature, upstream};

const SECRET: &str = "test-secret";

/// A loopback URL where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

async fn app() -> Router {
    app_with(platform::drain::Draining::never(), Metrics::new()).await
}

/// The router with the given drain flag and metrics (kept by the caller to
/// read what the admin port would serve).
async fn app_with(draining: platform::drain::Draining, metrics: Metrics) -> Router {
    let mut config = Config::parse_from(["gateway", "--dev"]);
    config.catalog_url = closed_port_url();
    config.order_url = closed_port_url();
    config.webhook_secret = Some(SECRET.into());
    config.grpc_timeout = std::time::Duration::from_millis(2_000);
    let state = super::AppState {
        draining,
        products: upstream::product_cache::ProductCache::new(
            0,
            std::time::Duration::from_secs(1),
            metrics.clone(),
        ),
        backends: upstream::Backends::connect(&config, metrics.clone())
            .await
            .unwrap(),
        metrics,
        verifier: signature::Verifier::new(
            config.webhook_secrets().unwrap(),
            false,
            config.webhook_tolerance(),
        ),
        currency: "USD".into(),
        write_access: WriteAccess::Open,
    };
    super::router(state, super::Limits::new(&config))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// GETs `uri` and checks the answer is problem details with `status`.
async fn get_problem(uri: &str, status: StatusCode) -> Value {
    expect_problem(get(uri), status).await
}

async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app().await.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn json_request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

/// Sends and checks the answer is problem details with `status`.
async fn expect_problem(request: Request<Body>, status: StatusCode) -> Value {
    let (got, headers, body) = send(request).await;
    assert_eq!(got, status, "body: {}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["detail"].is_string());
    assert!(problem["title"].is_string());
    assert!(problem["type"].is_string());
    problem
}

#[tokio::test]
async fn health_is_healthy_without_backends() {
    let (status, _, body) = send(get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        serde_json::json!({"status": "healthy"})
    );
}

#[tokio::test]
async fn info_names_the_api() {
    let (status, _, body) = send(get("/")).await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["name"].is_string() && info["status"].is_string());
}

/// The services being down does not make the gateway unready (that would
/// cascade to every replica): `/ready` is 200 and says which are down, fast.
#[tokio::test]
async fn ready_stays_200_and_reports_the_services_down() {
    let started = std::time::Instant::now();
    let (status, _, body) = send(get("/ready")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        serde_json::json!({"status": "ready", "backends": {"catalog": "down", "order": "down"}})
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// Once draining, `/ready` is 503 `DRAINING` (with `Retry-After`), while
/// everything else is served as before.
#[tokio::test]
async fn ready_is_503_draining_once_the_drain_starts() {
    let drain = platform::drain::Drain::new(std::time::Duration::ZERO);
    let app = app_with(drain.flag(), Metrics::new()).await;
    let response = app.clone().oneshot(get("/ready")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drain.after(async {}, async {}).await;
    let response = app.clone().oneshot(get("/ready")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::RETRY_AFTER],
        super::error::RETRY_AFTER_SECS
    );
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "DRAINING");
    let response = app.oneshot(get("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_service_that_is_down_is_503_not_500() {
    let problem = get_problem("/api/products", StatusCode::SERVICE_UNAVAILABLE).await;
    // The connection error (with its address) stays in the log.
    assert!(!problem["detail"].as_str().unwrap().contains("127.0.0.1"));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    get_problem("/nope", StatusCode::NOT_FOUND).await;
    let (status, headers, _) =
        send(Request::patch("/api/products").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let (_, headers, _) = send(
        Request::get("/health")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, _) = send(get("/health")).await;
    let made = headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
}

#[tokio::test]
async fn malformed_bodies_are_refused_before_any_backend_call() {
    // With the backends down, reaching them would be 503: these never do.
    let cases: Vec<(&str, &str, Body, StatusCode)> = vec![
        (
            "POST",
            "/api/products",
            Body::from("{\"name\": "),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/products",
            Body::empty(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/products",
            Body::from("[]"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/products",
            Body::from(r#"{"name":"a","price":"0.001","quantity":1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            "/api/products/00000000-0000-0000-0000-000000000000",
            Body::from(r#"{"name":null}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/products/not-a-uuid",
            Body::empty(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/products?page=0",
            Body::empty(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/orders?status=shipped",
            Body::empty(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/orders",
            Body::from(r#"{"customer_id":1,"products":[]}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, uri, body, status) in cases {
        let request = json_request(method, uri, body);
        expect_problem(request, status).await;
    }
}

#[tokio::test]
async fn validation_problems_name_every_field() {
    let body = r#"{"name":"","price":-1,"quantity":1.5,"description":7}"#;
    let problem = expect_problem(
        json_request("POST", "/api/products", body),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["name", "description", "price", "quantity"]);
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let request = Request::post("/api/products")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"name":"a","price":1,"quantity":1}"#))
        .unwrap();
    expect_problem(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let big = vec![b' '; 2 * 1024 * 1024];
    expect_problem(
        json_request("POST", "/api/products", big),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let over_webhook_limit = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let signature = signature::sign(SECRET.as_bytes(), over_webhook_limit.as_bytes());
    let request = Request::post("/api/payment-webhook")
        .header("x-signature", signature)
        .body(Body::from(over_webhook_limit))
        .unwrap();
    expect_problem(request, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn webhook_refusals_before_the_order_service() {
    let body = r#"{"order_id":"00000000-0000-0000-0000-000000000000","payment_status":"paid"}"#;
    let problem = expect_problem(
        Request::post("/api/payment-webhook")
            .body(Body::from(body))
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(problem["detail"], "Missing X-Signature header");
    let (_, headers, _) = send(
        Request::post("/api/payment-webhook")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    let problem = expect_problem(
        Request::post("/api/payment-webhook")
            .header("x-signature", "00".repeat(32))
            .body(Body::from(body))
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(problem["detail"], "Invalid signature");
    // Signed, but not a payment result: 400.
    for bad in [
        "",
        "{",
        r#"{"order_id":"x","payment_status":"paid"}"#,
        r#"{"order_id":"00000000-0000-0000-0000-000000000000","payment_status":"refunded"}"#,
    ] {
        let request = Request::post("/api/payment-webhook")
            .header(
                "x-signature",
                signature::sign(SECRET.as_bytes(), bad.as_bytes()),
            )
            .body(Body::from(bad))
            .unwrap();
        expect_problem(request, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn openapi_and_docs_are_served() {
    let (status, _, body) = send(get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let (status, _, _) = send(get("/docs/")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = send(get("/redoc")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8(body).unwrap().contains("/openapi.json"));
}

/// `/redoc` works offline: the page names no URL outside the gateway, its
/// policy forbids loading any, and its script is the bundle, from the binary.
#[tokio::test]
async fn redoc_references_no_external_url_and_its_script_is_served() {
    let (status, headers, body) = send(get("/redoc")).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body).unwrap();
    for scheme in ["http://", "https://", "//"] {
        assert!(!page.contains(scheme), "{scheme} in:\n{page}");
    }
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("http"), "{csp}");

    // The exact URL the page asks for (with its `?v=`).
    let src = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a script");
    assert!(src.starts_with("/redoc/redoc.standalone.js?v="), "{src}");
    let (status, headers, body) = send(get(src)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let cache = headers[header::CACHE_CONTROL].to_str().unwrap();
    assert!(cache.contains("max-age=31536000"), "{cache}");
    assert!(body.len() > 1_000_000, "{} bytes", body.len());
    let text = String::from_utf8_lossy(&body[..200]);
    assert!(text.contains("redoc.standalone.js.LICENSE.txt"), "{text}");

    // An asset, not an operation: the document does not list it.
    let (_, _, body) = send(get("/openapi.json")).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/redoc"));
    assert!(paths.keys().all(|p| !p.starts_with("/redoc/")), "{paths:?}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_refusals_by_reason() {
    let metrics = Metrics::new();
    let app = app_with(platform::drain::Draining::never(), metrics.clone()).await;
    for request in [
        get("/api/products/not-a-uuid"),
        get("/nope/123"),
        Request::post("/api/payment-webhook")
            .body(Body::from("{}"))
            .unwrap(),
        get("/api/products"),
    ] {
        app.clone().oneshot(request).await.unwrap();
    }
    // What the admin port serves (`platform::metrics::admin_router`).
    let response = metrics.render();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for expected in [
        r#"http_server_requests_total{method="GET",route="/api/products/{id}",status="422"} 1"#,
        r#"http_server_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"webhook_refusals_total{reason="missing"} 1"#,
        r#"grpc_client_requests_total{rpc="ListProducts",code="UNAVAILABLE"} 1"#,
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
    // Raw paths never become labels.
    assert!(!text.contains("not-a-uuid") && !text.contains("/nope/123"));
    // The public port no longer serves them.
    let response = app.oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Every 503 says when to retry, and says which kind of 503 it is.
#[tokio::test]
async fn every_503_has_retry_after_and_its_code() {
    for uri in ["/api/products", "/api/orders"] {
        let (status, headers, body) = send(get(uri)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(
            headers[header::RETRY_AFTER],
            super::error::RETRY_AFTER_SECS,
            "{uri}"
        );
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "BACKEND_UNAVAILABLE", "{uri}");
        assert_eq!(problem["type"], "/problems/backend-unavailable", "{uri}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_have_their_types() {
    let problem = get_problem("/nope", StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "NOT_FOUND");
    assert_eq!(problem["type"], "/problems/not-found");
    assert_eq!(problem["detail"], "Not found");
    let problem = expect_problem(
        Request::patch("/api/products").body(Body::empty()).unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert_eq!(problem["code"], "METHOD_NOT_ALLOWED");
}

/// `/problems` lists every type, as HTML by default and as JSON when
/// asked; each type's page is served at its `type` URI.
#[tokio::test]
async fn problem_types_are_documented_where_they_point() {
    let (status, headers, body) = send(get("/problems")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(body).unwrap();
    for kind in super::problems::Kind::all() {
        assert!(html.contains(kind.code()), "{}", kind.code());
        assert!(html.contains(&kind.type_uri()), "{}", kind.code());
    }
    assert!(!html.contains("http://") && !html.contains("https://"));

    let json_request = |uri: &str| {
        Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, body) = send(json_request("/problems")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::VARY], "accept");
    let listed: Value = serde_json::from_slice(&body).unwrap();
    let types = listed["types"].as_array().unwrap();
    assert_eq!(types.len(), super::problems::Kind::all().len());

    for entry in types {
        let uri = entry["type"].as_str().unwrap();
        let (status, _, body) = send(json_request(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), *entry);
        let (status, _, body) = send(get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(entry["code"].as_str().unwrap()), "{uri}");
    }

    let problem = get_problem("/problems/no-such-type", StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "NOT_FOUND");
    assert_eq!(problem["detail"], "No problem type 'no-such-type'");
}
