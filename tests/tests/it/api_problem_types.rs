//! Machine-readable errors over real HTTP, with the real services and
//! PostgreSQL behind the gateway: each problem a client can cause carries
//! its stable `code` and its `type` (`/problems/<slug>`, relative to the
//! gateway), `detail` stays worded exactly as the contract words it, the
//! type URI of every real answer resolves to that type's documentation,
//! `/problems` lists every code, and every 503 says when to retry.

use std::time::Duration;

use reqwest::{Method, Url, header};
use serde_json::{Value, json};
use tests::{
    catalog::spawn_catalog,
    gateway::{
        Api, Platform, Reply, WEBHOOK_SECRET, raw_post, sign, spawn_gateway, spawn_platform,
        spawn_platform_with, until_answered,
    },
    order::{OrderHarness, order_config, orders_database, start_order},
};

const MISSING: &str = "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11";
const ALSO_MISSING: &str = "0b8a4d4e-9c07-4c1e-8c39-2d0f6f0d7a55";

/// Every code the gateway documents (the table in `gateway::http::problems`).
const EVERY_CODE: [&str; 31] = [
    "VALIDATION_FAILED",
    "IDEMPOTENCY_KEY_REUSED",
    "MALFORMED_BODY",
    "BAD_REQUEST",
    "INSUFFICIENT_STOCK",
    "PRODUCT_REFERENCED",
    "INVALID_TRANSITION",
    "NOT_PENDING",
    "PAYMENT_FINAL",
    "ORDER_EXPIRED",
    "SIGNATURE_MISSING",
    "SIGNATURE_INVALID",
    "API_KEY_REQUIRED",
    "API_KEY_INVALID",
    "FORBIDDEN",
    "PRODUCT_NOT_FOUND",
    "ORDER_NOT_FOUND",
    "PRODUCTS_NOT_FOUND",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "REQUEST_TIMEOUT",
    "EVENT_ID_REUSED",
    "CONFLICT",
    "VERSION_MISMATCH",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "INTERNAL",
    "BACKEND_UNAVAILABLE",
    "OVERLOADED",
    "DRAINING",
    "BACKEND_TIMEOUT",
];

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// `INSUFFICIENT_STOCK` -> `/problems/insufficient-stock`.
fn type_of(code: &str) -> String {
    format!("/problems/{}", code.to_ascii_lowercase().replace('_', "-"))
}

/// Asserts a problem-details answer with `status`, `code` and the type of
/// that code; returns its `detail`.
#[track_caller]
fn typed(reply: &Reply, status: u16, code: &str) -> String {
    let detail = reply.problem(status);
    assert_eq!(reply.json["code"], code, "{}", reply.json);
    assert_eq!(reply.json["type"], type_of(code), "{}", reply.json);
    detail
}

/// The answer's `type`, resolved against the gateway as RFC 9457 has it,
/// answers 200 with that type's documentation: a page naming the code, and
/// as JSON the same code and status.
async fn assert_type_resolves(api: &Api, reply: &Reply) {
    let problem_type = reply.json["type"].as_str().expect("type is a string");
    let url = Url::parse(&api.base_url)
        .unwrap()
        .join(problem_type)
        .unwrap();
    assert!(url.as_str().starts_with(&api.base_url), "{url}");
    let page = api.fetch(url.as_str()).await;
    page.expect(200);
    assert!(page.content_type().starts_with("text/html"), "{url}");
    let html = String::from_utf8_lossy(&page.body);
    let code = reply.json["code"].as_str().unwrap();
    assert!(html.contains(code), "{url} does not name {code}");
    let sent = api
        .http
        .get(url.clone())
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let entry = Reply::read(sent).await;
    entry.expect(200);
    assert_eq!(entry.json["code"], code, "{url}");
    assert_eq!(entry.json["type"], problem_type, "{url}");
    assert_eq!(entry.json["status"], reply.json["status"], "{url}");
    assert!(entry.json["description"].as_str().unwrap().len() > 40);
}

/// A platform with one product of `stock` units; its id.
async fn with_product(p: &Platform, name: &str, stock: i64) -> String {
    id_of(&p.create_product(name, "999.99", stock).await)
}

/// A pending order of one unit of `product`; its id.
async fn with_order(p: &Platform, product: &str) -> String {
    let reply = p.create_order(1, &[(product, 1)]).await;
    reply.expect(201);
    id_of(&reply.json)
}

async fn set_status(p: &Platform, order_id: &str, status: &str) -> Reply {
    p.set_order_status(order_id, status).await
}

#[tokio::test]
async fn insufficient_stock() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 2).await;
    let reply = p.create_order(1, &[(&laptop, 3)]).await;
    assert_eq!(
        typed(&reply, 400, "INSUFFICIENT_STOCK"),
        "Insufficient stock for product 'Laptop'. Available: 2, Requested: 3"
    );
    assert_eq!(reply.json["title"], "Bad Request");
    assert!(reply.json.get("product_ids").is_none(), "{}", reply.json);
    assert_type_resolves(&p, &reply).await;
    assert_eq!(p.stock_of(&laptop).await, 2);
}

#[tokio::test]
async fn products_not_found_lists_every_missing_id() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let reply = p
        .create_order(1, &[(&laptop, 1), (MISSING, 1), (ALSO_MISSING, 2)])
        .await;
    let detail = typed(&reply, 404, "PRODUCTS_NOT_FOUND");
    let mut ids: Vec<&str> = reply.json["product_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no product_ids in {}", reply.json))
        .iter()
        .map(|id| id.as_str().expect("an id is a string"))
        .collect();
    // `detail` names the same ids, in the same order.
    assert_eq!(detail, format!("Products not found: [{}]", ids.join(", ")));
    ids.sort_unstable();
    let mut expected = [MISSING, ALSO_MISSING];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_type_resolves(&p, &reply).await;
    assert_eq!(p.stock_of(&laptop).await, 10);
}

#[tokio::test]
async fn product_order_and_route_not_found() {
    let p = spawn_platform().await;
    let reply = p.get(&format!("/api/products/{MISSING}")).await;
    assert_eq!(
        typed(&reply, 404, "PRODUCT_NOT_FOUND"),
        format!("Product with id {MISSING} not found")
    );
    assert_type_resolves(&p, &reply).await;

    let reply = p.get(&format!("/api/orders/{MISSING}")).await;
    assert_eq!(
        typed(&reply, 404, "ORDER_NOT_FOUND"),
        format!("Order with id {MISSING} not found")
    );
    assert_type_resolves(&p, &reply).await;

    let reply = p.get("/api/nothing-here").await;
    assert_eq!(typed(&reply, 404, "NOT_FOUND"), "Not found");
    assert_type_resolves(&p, &reply).await;

    let reply = p.get("/problems/no-such-type").await;
    assert_eq!(
        typed(&reply, 404, "NOT_FOUND"),
        "No problem type 'no-such-type'"
    );
}

#[tokio::test]
async fn invalid_transition() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let order = with_order(&p, &laptop).await;
    set_status(&p, &order, "completed").await.expect(200);
    let reply = set_status(&p, &order, "pending").await;
    assert_eq!(
        typed(&reply, 400, "INVALID_TRANSITION"),
        "Cannot transition order status from 'completed' to 'pending'"
    );
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn not_pending() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let order = with_order(&p, &laptop).await;
    set_status(&p, &order, "canceled").await.expect(200);
    let reply = p
        .signed_webhook(&json!({"order_id": order, "payment_status": "paid"}))
        .await;
    assert_eq!(
        typed(&reply, 400, "NOT_PENDING"),
        "Payment status can only be updated for pending orders (order status is 'canceled')"
    );
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn payment_final() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let order = with_order(&p, &laptop).await;
    p.signed_webhook(&json!({"order_id": order, "payment_status": "paid"}))
        .await
        .expect(200);
    let reply = p
        .signed_webhook(&json!({"order_id": order, "payment_status": "failed"}))
        .await;
    assert_eq!(
        typed(&reply, 400, "PAYMENT_FINAL"),
        "Cannot change payment status from 'paid' to 'failed'"
    );
    assert_type_resolves(&p, &reply).await;
}

/// An order the payment timeout canceled refuses a late payment: 400
/// `ORDER_EXPIRED`, worded for a refund.
#[tokio::test]
async fn order_expired() {
    let timeout = Duration::from_secs(30 * 60);
    let catalog = spawn_catalog().await;
    let mut config = order_config(&catalog.url());
    config.pending_payment_timeout = Some(timeout);
    let OrderHarness {
        service,
        reconciler,
        ..
    } = start_order(config).await;
    let gateway = spawn_gateway(&catalog.url(), &service.url(), |_| {}).await;
    let p = Platform::new(catalog, service, gateway);
    let lamp = with_product(&p, "Lamp", 10).await;
    let order = with_order(&p, &lamp).await;

    // Made older than the timeout (a clock the test controls), then expired
    // by a reconciler pass.
    let mut db = orders_database(&p.order).await;
    sqlx::query("UPDATE orders SET created_at = created_at - $2 WHERE id = $1::uuid")
        .bind(&order)
        .bind(timeout + Duration::from_secs(60))
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(reconciler.reconcile_once().await.unwrap().expired, 1);

    let reply = p
        .signed_webhook(&json!({"order_id": order, "payment_status": "paid"}))
        .await;
    assert_eq!(
        typed(&reply, 400, "ORDER_EXPIRED"),
        "Order expired: it was canceled because it was not paid in time; the payment must be \
         refunded"
    );
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn validation_failed() {
    let p = spawn_platform().await;
    let reply = p
        .post(
            "/api/products",
            &json!({"name": "Laptop", "price": 0, "quantity": -1}),
        )
        .await;
    let detail = typed(&reply, 422, "VALIDATION_FAILED");
    let mut fields = reply.violated_fields();
    fields.sort();
    assert_eq!(fields, vec!["price", "quantity"]);
    let listed: Vec<String> = reply.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["field"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(detail, format!("Validation failed: {}", listed.join("; ")));
    assert_type_resolves(&p, &reply).await;

    // A path id that is not a UUID: the same type.
    let reply = p.get("/api/orders/xyz").await;
    typed(&reply, 422, "VALIDATION_FAILED");
    assert_eq!(reply.violated_fields(), vec!["id"]);
}

#[tokio::test]
async fn idempotency_key_reused() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let create = |quantity: i64| {
        let body =
            json!({"customer_id": 7, "products": [{"product_id": laptop, "quantity": quantity}]});
        let request = p
            .http
            .request(Method::POST, p.url("/api/orders"))
            .header("Idempotency-Key", "order-7")
            .json(&body);
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    create(2).await.expect(201);
    let reply = create(3).await;
    let detail = typed(&reply, 422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(reply.violated_fields(), vec!["Idempotency-Key"]);
    assert_eq!(
        detail,
        format!(
            "Validation failed: Idempotency-Key: {}",
            reply.json["errors"][0]["message"].as_str().unwrap()
        )
    );
    assert_type_resolves(&p, &reply).await;
    assert_eq!(p.stock_of(&laptop).await, 8);
}

#[tokio::test]
async fn product_referenced() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    with_order(&p, &laptop).await;
    let reply = p.delete(&format!("/api/products/{laptop}")).await;
    assert_eq!(
        typed(&reply, 400, "PRODUCT_REFERENCED"),
        "Cannot delete product that is referenced in existing orders"
    );
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn event_id_reused() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let first = with_order(&p, &laptop).await;
    let second = with_order(&p, &laptop).await;
    p.signed_webhook(&json!({"order_id": first, "payment_status": "paid", "event_id": "evt-1"}))
        .await
        .expect(200);
    let reply = p
        .signed_webhook(&json!({"order_id": second, "payment_status": "paid", "event_id": "evt-1"}))
        .await;
    let detail = typed(&reply, 409, "EVENT_ID_REUSED");
    assert!(
        detail.contains("already used for another delivery"),
        "{detail}"
    );
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn signature_missing_and_invalid() {
    let p = spawn_platform().await;
    let laptop = with_product(&p, "Laptop", 10).await;
    let order = with_order(&p, &laptop).await;
    let body = serde_json::to_vec(&json!({"order_id": order, "payment_status": "paid"})).unwrap();

    let reply = p.webhook(&body, None).await;
    assert_eq!(
        typed(&reply, 401, "SIGNATURE_MISSING"),
        "Missing X-Signature header"
    );
    assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
    assert_type_resolves(&p, &reply).await;

    let reply = p.webhook(&body, Some(&"0".repeat(64))).await;
    assert_eq!(typed(&reply, 401, "SIGNATURE_INVALID"), "Invalid signature");
    assert_type_resolves(&p, &reply).await;

    // Signed, but not a payload: the webhook's 400.
    let reply = p
        .webhook(b"not json", Some(&sign(WEBHOOK_SECRET, b"not json")))
        .await;
    let detail = typed(&reply, 400, "MALFORMED_BODY");
    assert!(detail.starts_with("Invalid webhook payload: "), "{detail}");
    assert_type_resolves(&p, &reply).await;
}

#[tokio::test]
async fn api_key_required_invalid_and_forbidden() {
    const ADMIN: &str = "admin-key-4f1c0b9e2d7a";
    const FULFILMENT: &str = "fulfilment-key-2a9c7e4b1d";
    let p = spawn_platform_with(|config| {
        config.api_keys = Some(format!(
            "admin={ADMIN}:products,orders; fulfilment={FULFILMENT}:orders"
        ));
    })
    .await;
    let create = |key: Option<&str>| {
        let mut request = p
            .http
            .post(p.url("/api/products"))
            .json(&json!({"name": "Laptop", "price": "1.00", "quantity": 1}));
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let reply = create(None).await;
    assert_eq!(
        typed(&reply, 401, "API_KEY_REQUIRED"),
        "Missing API key: send `Authorization: Bearer <key>`"
    );
    assert_type_resolves(&p, &reply).await;
    let reply = create(Some("unknown-key-0000000000000")).await;
    assert_eq!(typed(&reply, 401, "API_KEY_INVALID"), "Invalid API key");
    assert_type_resolves(&p, &reply).await;
    let reply = create(Some(FULFILMENT)).await;
    assert_eq!(
        typed(&reply, 403, "FORBIDDEN"),
        "This API key does not have the 'products' right"
    );
    assert_type_resolves(&p, &reply).await;
    create(Some(ADMIN)).await.expect(201);
}

#[tokio::test]
async fn refusals_before_any_backend_call() {
    let p = spawn_platform().await;
    let reply = p
        .send_raw(
            Method::POST,
            "/api/products",
            Some("application/json"),
            vec![b' '; 65 * 1024],
        )
        .await;
    assert_eq!(
        typed(&reply, 413, "PAYLOAD_TOO_LARGE"),
        "Request body too large"
    );
    assert_type_resolves(&p, &reply).await;

    let reply = p
        .send_raw(Method::POST, "/api/products", Some("text/plain"), "{}")
        .await;
    assert_eq!(
        typed(&reply, 415, "UNSUPPORTED_MEDIA_TYPE"),
        "Content-Type must be application/json"
    );
    assert_type_resolves(&p, &reply).await;

    let reply = p.send(Method::PATCH, "/api/products", None).await;
    assert_eq!(
        typed(&reply, 405, "METHOD_NOT_ALLOWED"),
        "Method not allowed for this path"
    );
    assert_type_resolves(&p, &reply).await;
}

/// A service that is down: 503 `BACKEND_UNAVAILABLE` with `Retry-After` on
/// its endpoints, while `/ready` stays 200 and shows it down; the
/// documentation still answers.
#[tokio::test]
async fn backend_unavailable_says_when_to_retry() {
    let Platform {
        catalog: _catalog,
        order,
        gateway: _gateway,
        api,
    } = spawn_platform().await;
    order.stop().await.unwrap();

    let reply = api.get("/api/orders").await;
    assert_eq!(
        typed(&reply, 503, "BACKEND_UNAVAILABLE"),
        "A backend service is unavailable, please retry later"
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert_type_resolves(&api, &reply).await;

    let reply = api.get("/ready").await;
    reply.expect(200);
    assert_eq!(reply.json["backends"]["order"], "down", "{}", reply.json);
}

/// Shed at the concurrency limit: 503 `OVERLOADED` with `Retry-After`.
#[tokio::test]
async fn overloaded_says_when_to_retry() {
    let p = spawn_platform_with(|config| {
        config.max_concurrent_requests = 1;
        config.request_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    // A request whose body never comes holds the one permit.
    let held = raw_post(
        p.gateway.addr,
        "/api/orders",
        "Content-Length: 1000",
        b"{\"customer_id\":",
    )
    .await;
    let reply = until_answered(503, 200, "never shed", || p.get("/api/products")).await;
    assert_eq!(
        typed(&reply, 503, "OVERLOADED"),
        "The gateway is serving as many requests as it may; retry shortly"
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    // The documentation is shed too while the permit is held: read it after.
    drop(held);
    until_answered(200, 503, "the permit never came back", || {
        p.get("/api/products")
    })
    .await;
    assert_type_resolves(&p, &reply).await;
}

/// `/problems` lists every code (HTML, and JSON when asked), each entry's
/// `type` answers its own documentation, and the page fetches nothing.
#[tokio::test]
async fn the_problems_page_lists_every_code() {
    let p = spawn_platform().await;
    let page = p.get("/problems").await;
    page.expect(200);
    assert!(page.content_type().starts_with("text/html"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    for code in EVERY_CODE {
        assert!(html.contains(code), "{code} not on the page");
        assert!(
            html.contains(&type_of(code)),
            "{code}'s type not on the page"
        );
    }
    assert!(!html.contains("<script"), "a plain page");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing external"
    );

    let sent = p
        .http
        .get(p.url("/problems"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let listed = Reply::read(sent).await;
    listed.expect(200);
    assert!(listed.content_type().starts_with("application/json"));
    let types = listed.json["types"].as_array().expect("types[]");
    let codes: Vec<&str> = types
        .iter()
        .map(|entry| entry["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, EVERY_CODE);
    for entry in types {
        let code = entry["code"].as_str().unwrap();
        assert_eq!(entry["type"], type_of(code));
        let page = p.get(entry["type"].as_str().unwrap()).await;
        page.expect(200);
        assert!(String::from_utf8_lossy(&page.body).contains(code), "{code}");
    }

    // The OpenAPI document names every code, and the two routes.
    let doc = p.get("/openapi.json").await.json;
    let documented: Vec<&str> =
        doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .expect("code is an enum")
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
    assert_eq!(documented, EVERY_CODE);
    assert!(doc["paths"]["/problems"]["get"].is_object());
    assert!(doc["paths"]["/problems/{slug}"]["get"].is_object());
}
