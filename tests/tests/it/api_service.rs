//! The gateway's service endpoints over real HTTP: `/health`, `/ready`, `/`,
//! `/openapi.json` (checked as an OpenAPI 3.1 document), `/docs` (Swagger UI
//! served entirely from the gateway), `/redoc` (its script too); request
//! ids; backends down; start-up refusal of an empty webhook secret; graceful
//! stop.

use std::collections::BTreeSet;

use reqwest::Url;
use serde_json::{Value, json};
use tests::{
    any_port,
    gateway::{
        Platform, Reply, http_client, raw_post, read_json_answer, spawn_gateway, spawn_platform,
    },
};

#[tokio::test]
async fn health_info_and_readiness() {
    let p = spawn_platform().await;
    let health = p.get("/health").await;
    health.expect(200);
    assert_eq!(health.json, json!({"status": "healthy"}));

    let info = p.get("/").await;
    info.expect(200);
    assert!(info.json["name"].is_string());
    assert!(info.json["version"].is_string());
    assert!(info.json["status"].is_string());

    let ready = p.get("/ready").await;
    ready.expect(200);
    assert_eq!(
        ready.json,
        json!({"status": "ready", "backends": {"catalog": "up", "order": "up"}})
    );

    // The order service goes away: still ready (it reports the service
    // down), its endpoints answer 503, while the catalog's still work and
    // liveness stays green.
    let Platform {
        catalog,
        order,
        gateway,
        api,
    } = p;
    order.stop().await.unwrap();
    let ready = api.get("/ready").await;
    ready.expect(200);
    assert_eq!(ready.json["backends"]["order"], "down", "{}", ready.json);
    let detail = api.get("/api/orders").await.problem(503);
    assert!(
        !detail.contains("127.0.0.1"),
        "no internal address leaks: {detail}"
    );
    api.get("/api/products").await.expect(200);
    api.get("/health").await.expect(200);

    // Then the catalog too: still ready, both down (see `routes::meta::ready`
    // for why even then).
    catalog.stop().await.unwrap();
    api.get("/api/products").await.problem(503);
    let ready = api.get("/ready").await;
    ready.expect(200);
    assert_eq!(
        ready.json["backends"],
        json!({"catalog": "down", "order": "down"})
    );

    // Graceful stop of the gateway itself.
    gateway.stop().await.unwrap();
    let stopped = api.try_send(reqwest::Method::GET, "/health", None).await;
    assert!(stopped.is_err(), "stopped: {stopped:?}");
}

#[tokio::test]
async fn a_stalled_service_is_504_at_the_deadline_never_a_hang() {
    // A "service" that accepts connections and never answers.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", stall.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stall.accept().await {
            held.push(socket);
        }
    });
    let gateway = spawn_gateway(&url, &url, |config| {
        config.grpc_timeout = std::time::Duration::from_millis(500);
        config.grpc_connect_timeout = std::time::Duration::from_millis(5_000);
        // One lazy channel: a balanced one would soon take the stalled
        // address out (it never answers health) and refuse at once (503).
        config.grpc_balance = false;
    })
    .await;
    let http = http_client();
    let base = format!("http://{}", gateway.addr);
    for path in [
        "/api/products".to_owned(),
        format!("/api/orders/{}", uuid::Uuid::new_v4()),
    ] {
        let started = std::time::Instant::now();
        let reply = Reply::read(http.get(format!("{base}{path}")).send().await.unwrap()).await;
        reply.problem(504);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    // `/ready` answers within the deadline too, and shows both down.
    let started = std::time::Instant::now();
    let reply = Reply::read(http.get(format!("{base}/ready")).send().await.unwrap()).await;
    reply.expect(200);
    assert_eq!(reply.json["backends"]["catalog"], "down");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    holder.abort();
}

#[tokio::test]
async fn a_request_that_never_finishes_its_body_is_408() {
    let p = tests::gateway::spawn_platform_with(|config| {
        config.request_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let addr = p.gateway.addr;
    let mut socket = raw_post(addr, "/api/products", "Content-Length: 100", b"{\"name\":").await;
    let limit = std::time::Duration::from_secs(10);
    let started = std::time::Instant::now();
    let text = read_json_answer(&mut socket, limit).await;
    assert!(started.elapsed() < limit, "no answer within 10 s");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert_eq!(p.get("/api/products").await.json["total"], 0);
}

#[tokio::test]
async fn balanced_channels_serve_and_answer_503_once_a_service_is_gone() {
    let p = tests::gateway::spawn_platform_with(|config| {
        config.grpc_balance = true;
        config.grpc_refresh_interval = std::time::Duration::from_millis(200);
    })
    .await;
    p.get("/ready").await.expect(200);
    let product = p.create_product("Laptop", "999.99", 5).await;
    let order = p
        .create_order(1, &[(product["id"].as_str().unwrap(), 2)])
        .await;
    order.expect(201);
    assert_eq!(p.stock_of(product["id"].as_str().unwrap()).await, 3);

    let Platform {
        catalog: _catalog,
        order,
        gateway: _gateway,
        api,
    } = p;
    order.stop().await.unwrap();
    // The resolver notices within a refresh; from then on, refused at once.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let started = std::time::Instant::now();
    api.get("/api/orders").await.problem(503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let ready = api.get("/ready").await;
    ready.expect(200);
    assert_eq!(ready.json["backends"]["order"], "down", "{}", ready.json);
    api.get("/api/products").await.expect(200);
}

/// One service down takes only what needs it off, never the gateway: with
/// the order service stopped, `/ready` stays 200 and reports it down,
/// product reads (from the catalog, and from the cache) still answer 200,
/// and `POST /api/orders` is refused at once (well under the gRPC deadline)
/// with 503 `BACKEND_UNAVAILABLE` and `Retry-After`.
#[tokio::test]
async fn one_backend_down_leaves_the_gateway_ready_and_fails_only_its_routes_fast() {
    let p = tests::gateway::spawn_platform_with(|config| {
        // A long deadline: "fast" must not be "at the deadline".
        config.grpc_timeout = std::time::Duration::from_millis(10_000);
    })
    .await;
    let product = p.create_product("Lamp", "25.00", 10).await;
    let id = product["id"].as_str().unwrap().to_owned();
    p.create_order(1, &[(&id, 1)]).await.expect(201);
    // Read twice: the second read is the cache's (once its feed is live).
    p.get(&format!("/api/products/{id}")).await.expect(200);
    p.get(&format!("/api/products/{id}")).await.expect(200);

    let Platform {
        catalog: _catalog,
        order,
        gateway: _gateway,
        api,
    } = p;
    order.stop().await.unwrap();

    let ready = api.get("/ready").await;
    ready.expect(200);
    assert_eq!(
        ready.json,
        json!({"status": "ready", "backends": {"catalog": "up", "order": "down"}})
    );
    for _ in 0..3 {
        let reply = api.get(&format!("/api/products/{id}")).await;
        reply.expect(200);
        assert_eq!(reply.json["id"], id.as_str());
    }
    api.get("/api/products").await.expect(200);

    // Several attempts: on a loaded machine one could catch the balancer
    // between two passes; each must be fast and the same answer.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let reply = api.create_order(1, &[(&id, 1)]).await;
        let took = started.elapsed();
        reply.problem(503);
        assert_eq!(reply.json["code"], "BACKEND_UNAVAILABLE", "{}", reply.json);
        assert_eq!(reply.headers[reqwest::header::RETRY_AFTER], "1");
        assert!(
            took < std::time::Duration::from_secs(2),
            "POST /api/orders took {took:?}, against a 10 s deadline"
        );
    }
    // Still ready after all that.
    api.get("/ready").await.expect(200);
}

#[tokio::test]
async fn request_ids_are_returned() {
    let p = spawn_platform().await;
    let response = p
        .http
        .get(p.url("/api/products"))
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id-42");
    let response = p
        .http
        .get(p.url("/api/products/not-a-uuid"))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
}

#[tokio::test]
async fn an_empty_webhook_secret_stops_the_gateway_at_start() {
    for secret in ["", " ", "good,,other"] {
        let mut config =
            gateway::Config::for_services("http://127.0.0.1:1", "http://127.0.0.1:2", any_port());
        config.webhook_secret = Some(secret.into());
        let error = match gateway::Application::build(config).await {
            Ok(_) => panic!("started with WEBHOOK_SECRET={secret:?}"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("WEBHOOK_SECRET"), "{error}");
    }
}

/// Every `src="..."` / `href="..."` value in an HTML page.
fn referenced_assets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').expect("closing quote");
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

/// Absolute URLs in `text` that do not point at the gateway itself.
fn external_urls(text: &str, base: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        let mut rest = text;
        while let Some(start) = rest.find(scheme) {
            let candidate: String = rest[start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'`)<>".contains(*c))
                .collect();
            if !candidate.starts_with(base) {
                found.push(candidate);
            }
            rest = &rest[start + scheme.len()..];
        }
    }
    found
}

#[tokio::test]
async fn docs_work_offline_from_the_gateway_alone() {
    let p = spawn_platform().await;
    let response = p.http.get(p.url("/docs")).send().await.unwrap();
    let page_url = response.url().clone();
    let page = Reply::read(response).await;
    page.expect(200);
    assert!(page.content_type().starts_with("text/html"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert_eq!(external_urls(&html, &p.base_url), Vec::<String>::new());

    let assets = referenced_assets(&html);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    let mut fetched = BTreeSet::new();
    for asset in &assets {
        let url: Url = page_url.join(asset).unwrap();
        assert!(
            url.as_str().starts_with(&p.base_url),
            "{asset} is not served by the gateway"
        );
        let reply = Reply::read(p.http.get(url.clone()).send().await.unwrap()).await;
        assert_eq!(reply.status, 200, "{url}");
        assert!(!reply.body.is_empty(), "{url}");
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        // Stylesheets may pull fonts or images: those must be local too.
        if asset.ends_with(".css") {
            assert!(!text.contains("@import url(http"), "{url}");
            for external in external_urls(&text, &p.base_url) {
                assert!(
                    !text.contains(&format!("url({external}"))
                        && !text.contains(&format!("url(\"{external}")),
                    "{url} loads {external}"
                );
            }
        }
        // The initializer decides what the page loads at run time: only the
        // gateway's own document, and no online validator.
        if asset.contains("initializer") {
            assert!(text.contains("/openapi.json"), "{text}");
            assert_eq!(
                external_urls(&text, &p.base_url),
                Vec::<String>::new(),
                "{text}"
            );
            assert!(
                text.contains("\"validatorUrl\": \"none\"") || text.contains("validatorUrl"),
                "{text}"
            );
        }
        fetched.insert(url.to_string());
    }
    assert!(
        fetched.iter().any(|u| u.contains("initializer")),
        "{fetched:?}"
    );

    // ReDoc: a page reading the same document, its script (vendored in
    // gateway/assets/redoc) served by the gateway too.
    let redoc = p.get("/redoc").await;
    redoc.expect(200);
    let html = String::from_utf8(redoc.body.clone()).unwrap();
    assert!(html.contains("/openapi.json"), "{html}");
    assert_eq!(external_urls(&html, &p.base_url), Vec::<String>::new());
    let scripts: Vec<String> = referenced_assets(&html)
        .into_iter()
        .filter(|a| a.contains(".js"))
        .collect();
    assert_eq!(scripts.len(), 1, "{scripts:?}");
    let script = p.get(&scripts[0]).await;
    script.expect(200);
    assert!(script.content_type().starts_with("text/javascript"));
    assert!(script.body.len() > 1_000_000, "{} bytes", script.body.len());
}

/// Resolves a local `#/a/b` JSON pointer in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` anywhere in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    out.push(inner.as_str().expect("$ref is a string").to_owned());
                } else {
                    refs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|inner| refs(inner, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_json_is_a_valid_openapi_3_document_of_the_whole_contract() {
    let p = spawn_platform().await;
    let reply = p.get("/openapi.json").await;
    reply.expect(200);
    let text = String::from_utf8(reply.body.clone()).unwrap();

    // A typed parse of the whole document as OpenAPI 3.1.
    let spec = oas3::from_json(&text).expect("parses as OpenAPI 3.1");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    let doc = reply.json.clone();

    // Every $ref points at something that exists.
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for reference in &all_refs {
        assert!(
            resolve(&doc, reference).is_some(),
            "dangling $ref {reference}"
        );
    }

    // Every endpoint of the contract, with its success and error responses.
    let contract: &[(&str, &str, &[&str])] = &[
        (
            "/api/products",
            "post",
            &["201", "422", "413", "415", "503", "504", "500"],
        ),
        ("/api/products", "get", &["200", "422", "503", "504"]),
        ("/api/products/{id}", "get", &["200", "404", "422"]),
        (
            "/api/products/{id}",
            "put",
            &["200", "404", "422", "413", "415"],
        ),
        (
            "/api/products/{id}",
            "delete",
            &["204", "400", "404", "422"],
        ),
        (
            "/api/orders",
            "post",
            &["201", "400", "404", "422", "413", "415", "503", "504"],
        ),
        ("/api/orders", "get", &["200", "422"]),
        ("/api/orders/{id}", "get", &["200", "404", "422"]),
        (
            "/api/orders/{id}/status",
            "put",
            &["200", "400", "404", "422"],
        ),
        (
            "/api/payment-webhook",
            "post",
            &["200", "400", "401", "404", "413", "503"],
        ),
        ("/health", "get", &["200"]),
        ("/ready", "get", &["200", "503"]),
        ("/", "get", &["200"]),
        ("/redoc", "get", &["200"]),
        ("/openapi.json", "get", &["200"]),
        ("/docs", "get", &["200"]),
    ];
    let mut operation_ids = BTreeSet::new();
    for (path, method, codes) in contract {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let responses = operation["responses"].as_object().unwrap();
        for code in *codes {
            assert!(
                responses.contains_key(*code),
                "{method} {path} lacks {code}"
            );
        }
        // Error responses use the problem schema.
        for (code, response) in responses {
            if code.starts_with('4') || code.starts_with('5') {
                let response = match response.get("$ref") {
                    Some(r) => resolve(&doc, r.as_str().unwrap()).unwrap(),
                    None => response,
                };
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {code}"
                );
            }
        }
        if let Some(id) = operation["operationId"].as_str() {
            assert!(
                operation_ids.insert(id.to_owned()),
                "duplicate operationId {id}"
            );
        }
    }
    // Request bodies are documented from the handlers' types.
    for (path, method, schema) in [
        ("/api/products", "post", "ProductCreate"),
        ("/api/products/{id}", "put", "ProductUpdate"),
        ("/api/orders", "post", "OrderCreate"),
        ("/api/orders/{id}/status", "put", "OrderStatusUpdate"),
        ("/api/payment-webhook", "post", "PaymentWebhook"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{method} {path}"
        );
    }
    // Query parameters, the idempotency and signature headers.
    let params = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        params("/api/products", "get"),
        vec!["page", "page_size", "in_stock"]
    );
    for name in ["page", "page_size", "status", "payment_status"] {
        assert!(
            params("/api/orders", "get").contains(&name.to_owned()),
            "{name}"
        );
    }
    assert!(params("/api/orders", "post").contains(&"Idempotency-Key".to_owned()));
    assert!(params("/api/payment-webhook", "post").contains(&"X-Signature".to_owned()));
    // Money is documented as exact text in responses.
    assert_eq!(doc["components"]["schemas"]["Money"]["type"], "string");
}
