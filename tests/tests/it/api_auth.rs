//! Access control over real HTTP: with `API_KEYS` configured,
//! product writes need a key with the `products` right and order status
//! changes one with the `orders` right (`Authorization: Bearer <key>`): 401
//! without a key or with a wrong one, 403 for a key lacking the right,
//! accepted with a right one, and nothing changes when refused. Reads, order
//! creation and the signed webhook stay open; with `API_KEYS` unset (the
//! default) everything is open, so clients without keys keep working.

use reqwest::Method;
use serde_json::{Value, json};
use tests::gateway::{Platform, Reply, spawn_platform, spawn_platform_with};

const ADMIN_KEY: &str = "admin-key-4f1c0b9e2d7a";
const CATALOG_KEY: &str = "catalog-key-8e3d5a1f6b20";
const FULFILMENT_KEY: &str = "fulfilment-key-2a9c7e4b1d";
/// Well-formed, but configured nowhere.
const UNKNOWN_KEY: &str = "unknown-key-0000000000000";

async fn platform_with_keys() -> Platform {
    spawn_platform_with(|config| {
        config.api_keys = Some(format!(
            "admin={ADMIN_KEY}:products,orders; catalog={CATALOG_KEY}:products; \
             fulfilment={FULFILMENT_KEY}:orders"
        ));
    })
    .await
}

/// Sends with the given `Authorization` value (`None`: no header).
async fn send(
    p: &Platform,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = p.http.request(method, p.url(path));
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Reply::read(request.send().await.expect("gateway reachable")).await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A protected operation, its body, and the key that is allowed it but
/// lacks the other right.
struct Protected {
    method: Method,
    path: String,
    body: Option<Value>,
    /// A key with every right but this operation's.
    lacking: &'static str,
    /// A key with just this operation's right.
    allowed: &'static str,
    /// The status a successful call answers.
    success: u16,
}

fn product_body() -> Value {
    json!({"name": "Laptop", "price": "999.99", "quantity": 10})
}

/// Creates a product with `key` (which must hold the `products` right);
/// returns its id.
async fn create_product_with(p: &Platform, key: &str) -> String {
    let product = send(
        p,
        Method::POST,
        "/api/products",
        Some(&bearer(key)),
        Some(&product_body()),
    )
    .await;
    product.expect(201);
    product.json["id"].as_str().unwrap().to_owned()
}

/// Creates a product and a pending order for it with the admin key.
async fn seed(p: &Platform) -> (String, String) {
    let product_id = create_product_with(p, ADMIN_KEY).await;
    // Order creation is open: no key.
    let order = p.create_order(7, &[(&product_id, 2)]).await;
    order.expect(201);
    (product_id, order.json["id"].as_str().unwrap().to_owned())
}

fn protected(product_id: &str, order_id: &str) -> Vec<Protected> {
    // A write of the catalog (the `products` right) or of the orders.
    let catalog = |method, path: String, body, success| Protected {
        method,
        path,
        body,
        lacking: FULFILMENT_KEY,
        allowed: CATALOG_KEY,
        success,
    };
    let completed = Some(json!({"status": "completed"}));
    let products = "/api/products".to_owned();
    vec![
        catalog(Method::POST, products, Some(product_body()), 201),
        catalog(
            Method::PUT,
            format!("/api/products/{product_id}"),
            Some(json!({"price": "899.00"})),
            200,
        ),
        Protected {
            method: Method::PUT,
            path: format!("/api/orders/{order_id}/status"),
            body: completed,
            lacking: CATALOG_KEY,
            allowed: FULFILMENT_KEY,
            success: 200,
        },
        // Last: it deletes a product (one without orders, made for it).
        catalog(Method::DELETE, "/api/products/{spare}".into(), None, 204),
    ]
}

#[tokio::test]
async fn each_protected_route_refuses_no_key_a_wrong_key_and_a_key_lacking_its_right() {
    let p = platform_with_keys().await;
    let (product_id, order_id) = seed(&p).await;
    let spare_id = create_product_with(&p, ADMIN_KEY).await;
    let before = p.snapshot().await;

    for op in protected(&product_id, &order_id) {
        let path = op.path.replace("{spare}", &spare_id);
        let what = format!("{} {path}", op.method);
        let call = |authorization: Option<String>| {
            let (method, path, body) = (op.method.clone(), path.clone(), op.body.clone());
            let p = &p;
            async move { send(p, method, &path, authorization.as_deref(), body.as_ref()).await }
        };

        // No key: 401 with a Bearer challenge.
        let reply = call(None).await;
        let detail = reply.problem(401);
        assert!(detail.contains("Missing API key"), "{what}: {detail}");
        let challenge = reply.headers[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");

        // A wrong key, a key of another scheme, a malformed header: 401.
        for authorization in [
            bearer(UNKNOWN_KEY),
            bearer(&ADMIN_KEY[..ADMIN_KEY.len() - 1]),
            bearer(&ADMIN_KEY.to_uppercase()),
            format!("Basic {ADMIN_KEY}"),
            ADMIN_KEY.to_owned(),
            "Bearer".to_owned(),
        ] {
            let reply = call(Some(authorization.clone())).await;
            let detail = reply.problem(401);
            assert_eq!(detail, "Invalid API key", "{what} with {authorization:?}");
            let challenge = reply.headers[reqwest::header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap();
            assert!(
                challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
                "{what}: {challenge}"
            );
            // The presented key is never echoed back.
            let body = String::from_utf8_lossy(&reply.body);
            assert!(!body.contains(UNKNOWN_KEY) && !body.contains(&ADMIN_KEY[..10]));
        }

        // A valid key without this operation's right: 403.
        let reply = call(Some(bearer(op.lacking))).await;
        let detail = reply.problem(403);
        assert!(detail.contains("right"), "{what}: {detail}");
        let challenge = reply.headers[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(
            challenge.contains("insufficient_scope"),
            "{what}: {challenge}"
        );
    }

    // Nothing that was refused changed anything.
    assert_eq!(p.snapshot().await, before);
}

#[tokio::test]
async fn each_protected_route_accepts_a_key_with_its_right() {
    let p = platform_with_keys().await;
    let (product_id, order_id) = seed(&p).await;
    let spare_id = create_product_with(&p, CATALOG_KEY).await;

    for op in protected(&product_id, &order_id) {
        let path = op.path.replace("{spare}", &spare_id);
        let reply = send(
            &p,
            op.method.clone(),
            &path,
            Some(&bearer(op.allowed)),
            op.body.as_ref(),
        )
        .await;
        reply.expect(op.success);
    }
    // The writes took effect.
    assert_eq!(
        p.get(&format!("/api/products/{product_id}")).await.json["price"],
        "899.00"
    );
    assert_eq!(
        p.get(&format!("/api/orders/{order_id}")).await.json["status"],
        "completed"
    );
    p.get(&format!("/api/products/{spare_id}"))
        .await
        .problem(404);

    // A key with both rights does both.
    let order = p.create_order(8, &[(&product_id, 1)]).await;
    order.expect(201);
    let order_id = order.json["id"].as_str().unwrap();
    send(
        &p,
        Method::PUT,
        &format!("/api/orders/{order_id}/status"),
        Some(&bearer(ADMIN_KEY)),
        Some(&json!({"status": "canceled"})),
    )
    .await
    .expect(200);
    send(
        &p,
        Method::PUT,
        &format!("/api/products/{product_id}"),
        Some(&format!("bearer  {ADMIN_KEY}")),
        Some(&json!({"quantity": 3})),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn unprotected_routes_need_no_key_and_ignore_one() {
    let p = platform_with_keys().await;
    let (product_id, order_id) = seed(&p).await;
    for authorization in [None, Some(bearer(UNKNOWN_KEY)), Some("Basic x".to_owned())] {
        let auth = authorization.as_deref();
        for path in [
            "/api/products".to_owned(),
            format!("/api/products/{product_id}"),
            "/api/orders".to_owned(),
            format!("/api/orders/{order_id}"),
            "/health".to_owned(),
            "/ready".to_owned(),
            "/".to_owned(),
            "/openapi.json".to_owned(),
        ] {
            send(&p, Method::GET, &path, auth, None).await.expect(200);
        }
        let order = send(
            &p,
            Method::POST,
            "/api/orders",
            auth,
            Some(
                &json!({"customer_id": 9, "products": [{"product_id": product_id, "quantity": 1}]}),
            ),
        )
        .await;
        order.expect(201);
    }
    // The webhook has its own signature and needs no key.
    let ack = p
        .signed_webhook(&json!({"order_id": order_id, "payment_status": "paid"}))
        .await;
    ack.expect(200);
    assert_eq!(ack.json["payment_status"], "paid");
    // Unknown paths and methods answer as before (404 / 405), not 401.
    send(&p, Method::GET, "/api/nope", None, None)
        .await
        .problem(404);
    send(&p, Method::PATCH, "/api/products", None, None)
        .await
        .problem(405);
}

#[tokio::test]
async fn access_is_checked_before_the_body_is_read() {
    let p = platform_with_keys().await;
    // A malformed body without a key is 401, not 422: nothing about the
    // operation is revealed to an anonymous client.
    let reply = p
        .send_raw(
            Method::POST,
            "/api/products",
            Some("application/json"),
            "{not json",
        )
        .await;
    reply.problem(401);
    // With a right key, the same body is the usual 422.
    let reply = p
        .http
        .post(p.url("/api/products"))
        .header(reqwest::header::AUTHORIZATION, bearer(CATALOG_KEY))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    Reply::read(reply).await.problem(422);
}

#[tokio::test]
async fn off_by_default_every_operation_is_open() {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 5).await;
    let product_id = product["id"].as_str().unwrap();
    p.put(
        &format!("/api/products/{product_id}"),
        &json!({"quantity": 4}),
    )
    .await
    .expect(200);
    let order = p.create_order(1, &[(product_id, 1)]).await;
    order.expect(201);
    p.put(
        &format!("/api/orders/{}/status", order.json["id"].as_str().unwrap()),
        &json!({"status": "canceled"}),
    )
    .await
    .expect(200);
    // Even a bogus Authorization header is ignored when access control is off.
    let spare = p.create_product("Spare", "1.00", 0).await;
    send(
        &p,
        Method::DELETE,
        &format!("/api/products/{}", spare["id"].as_str().unwrap()),
        Some("Bearer whatever"),
        None,
    )
    .await
    .expect(204);
}

#[tokio::test]
async fn a_malformed_api_keys_setting_refuses_to_start_without_echoing_it() {
    for raw in [
        "",
        "admin=short:products",
        "admin=a-long-enough-secret-key:everything",
        "a-long-enough-secret-key",
    ] {
        let mut config = gateway::Config::for_services(
            "http://127.0.0.1:1",
            "http://127.0.0.1:1",
            tests::any_port(),
        );
        config.api_keys = Some(raw.to_owned());
        let error = match gateway::Application::build(config).await {
            Ok(_) => panic!("{raw:?} was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("API_KEYS"), "{error}");
        assert!(
            !error.contains("a-long-enough-secret-key") && !error.contains("short"),
            "{error}"
        );
    }
}
