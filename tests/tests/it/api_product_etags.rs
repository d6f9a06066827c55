//! Optimistic concurrency for products through the gateway (issue 15), with
//! the real services and PostgreSQL: one product's answers carry its
//! version as a strong `ETag`, which changes after an edit and after an
//! order takes stock; `PUT` / `DELETE` honour `If-Match` (current or `*`:
//! done; stale: 412 `VERSION_MISMATCH` and nothing changes; weak tags never
//! match; malformed: 400); `GET` honours `If-None-Match` (304, no body), from
//! the product cache too; and without these headers the answers are what
//! they were, plus the `ETag`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tests::{
    catalog::{catalog_client, reserve},
    gateway::{Platform, Reply, spawn_platform, spawn_platform_with},
};

/// Sends `method path` with the given headers and optional JSON body.
async fn send(
    p: &Platform,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut request = p.http.request(method, p.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Reply::read(request.send().await.expect("gateway reachable")).await
}

/// The `ETag` of an answer (fails when there is none).
#[track_caller]
fn etag(reply: &Reply) -> String {
    reply
        .headers
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag on {} {:?}", reply.status, reply.headers))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn new_product(p: &Platform, quantity: i64) -> (String, String) {
    let created = p
        .post(
            "/api/products",
            &json!({"name": "Tagged", "price": "4.00", "quantity": quantity}),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    (id, etag(&created))
}

async fn get(p: &Platform, id: &str, headers: &[(&str, &str)]) -> Reply {
    send(
        p,
        Method::GET,
        &format!("/api/products/{id}"),
        headers,
        None,
    )
    .await
}

async fn put(p: &Platform, id: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let path = format!("/api/products/{id}");
    send(p, Method::PUT, &path, headers, Some(&body)).await
}

/// Asserts a 412 problem with code `VERSION_MISMATCH`.
#[track_caller]
fn assert_version_mismatch(reply: &Reply) {
    reply.problem(412);
    assert_eq!(reply.json["code"], "VERSION_MISMATCH", "{}", reply.json);
}

/// Asserts a 304: the ETag, and no body at all.
#[track_caller]
fn assert_not_modified(reply: &Reply, tag: &str) {
    reply.expect(304);
    assert_eq!(etag(reply), tag);
    assert!(reply.body.is_empty(), "304 with a body: {:?}", reply.body);
}

#[tokio::test]
async fn the_etag_is_the_version_and_changes_after_an_edit_and_an_order() {
    let p = spawn_platform().await;
    let (id, created) = new_product(&p, 10).await;
    assert_eq!(created, "\"1\"", "strong, quoted");

    let read = get(&p, &id, &[]).await;
    read.expect(200);
    assert_eq!(etag(&read), created);

    let edited = put(&p, &id, &[], json!({"name": "Retagged"})).await;
    edited.expect(200);
    assert_eq!(etag(&edited), "\"2\"");
    assert_eq!(etag(&get(&p, &id, &[]).await), "\"2\"");

    // An order takes stock: the product changed, so does its tag.
    p.create_order(1, &[(id.as_str(), 3)]).await.expect(201);
    let after_order = get(&p, &id, &[]).await;
    after_order.expect(200);
    assert_eq!(after_order.json["quantity"], 7);
    assert_eq!(etag(&after_order), "\"3\"");
}

#[tokio::test]
async fn if_match_writes_only_over_the_version_it_names() {
    let p = spawn_platform().await;
    let (id, v1) = new_product(&p, 10).await;

    // Current: done, with the new tag.
    let updated = put(&p, &id, &[("If-Match", &v1)], json!({"price": "5.00"})).await;
    updated.expect(200);
    let v2 = etag(&updated);
    assert_eq!(v2, "\"2\"");

    // Stale: refused, and the product is as it was.
    let before = get(&p, &id, &[]).await;
    let stale = put(&p, &id, &[("If-Match", &v1)], json!({"price": "1.00"})).await;
    assert_version_mismatch(&stale);
    let after = get(&p, &id, &[]).await;
    assert_eq!(
        after.body, before.body,
        "a refused write changed the product"
    );
    assert_eq!(etag(&after), v2);

    // Weak tags never match If-Match, even of the current version.
    let weak = format!("W/{v2}");
    assert_version_mismatch(&put(&p, &id, &[("If-Match", &weak)], json!({"quantity": 1})).await);
    // A list matches when any tag is current.
    let listed = format!("\"7\", {v1}, {v2}");
    let from_list = put(&p, &id, &[("If-Match", &listed)], json!({"quantity": 8})).await;
    from_list.expect(200);
    assert_eq!(etag(&from_list), "\"3\"");
    // `*`: any current product.
    let any = put(&p, &id, &[("If-Match", "*")], json!({"quantity": 9})).await;
    any.expect(200);
    assert_eq!(any.json["quantity"], 9);
    assert_eq!(etag(&any), "\"4\"");

    // Malformed: 400, nothing changed.
    for malformed in ["4", "\"4", "*, \"4\""] {
        let refused = put(&p, &id, &[("If-Match", malformed)], json!({"quantity": 0})).await;
        let detail = refused.problem(400);
        assert!(detail.contains("If-Match"), "{detail}");
    }
    assert_eq!(etag(&get(&p, &id, &[]).await), "\"4\"");

    // A product that does not exist is 404, condition or not.
    let missing = uuid::Uuid::new_v4();
    put(
        &p,
        &missing.to_string(),
        &[("If-Match", "\"1\"")],
        json!({}),
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn if_match_refuses_a_write_after_an_order_took_stock() {
    let p = spawn_platform().await;
    let (id, read_before_order) = new_product(&p, 10).await;
    p.create_order(1, &[(id.as_str(), 4)]).await.expect(201);
    // Setting the stock from a read made before the order would erase it.
    let stale = put(
        &p,
        &id,
        &[("If-Match", &read_before_order)],
        json!({"quantity": 10}),
    )
    .await;
    assert_version_mismatch(&stale);
    assert_eq!(p.stock_of(&id).await, 6);
}

#[tokio::test]
async fn delete_honours_if_match() {
    let p = spawn_platform().await;
    let (id, v1) = new_product(&p, 1).await;
    let edited = put(&p, &id, &[], json!({"name": "Edited"})).await;
    let v2 = etag(&edited);
    let path = format!("/api/products/{id}");
    let stale = send(&p, Method::DELETE, &path, &[("If-Match", &v1)], None).await;
    assert_version_mismatch(&stale);
    get(&p, &id, &[]).await.expect(200);
    let deleted = send(&p, Method::DELETE, &path, &[("If-Match", &v2)], None).await;
    deleted.expect(204);
    get(&p, &id, &[]).await.problem(404);
}

#[tokio::test]
async fn if_none_match_answers_304_while_the_tag_is_current() {
    let p = spawn_platform().await;
    let (id, v1) = new_product(&p, 10).await;

    assert_not_modified(&get(&p, &id, &[("If-None-Match", &v1)]).await, &v1);
    assert_not_modified(&get(&p, &id, &[("If-None-Match", "*")]).await, &v1);
    // Weak comparison: W/"1" matches "1"; so does any tag of a list.
    let weak = format!("W/{v1}");
    assert_not_modified(&get(&p, &id, &[("If-None-Match", &weak)]).await, &v1);
    let listed = format!("\"9\", {v1}");
    assert_not_modified(&get(&p, &id, &[("If-None-Match", &listed)]).await, &v1);

    // Changed since: the whole answer, with the new tag.
    put(&p, &id, &[], json!({"quantity": 11})).await.expect(200);
    let fresh = get(&p, &id, &[("If-None-Match", &v1)]).await;
    fresh.expect(200);
    assert_eq!(fresh.json["quantity"], 11);
    assert_eq!(etag(&fresh), "\"2\"");

    get(&p, &id, &[("If-None-Match", "nope")])
        .await
        .problem(400);
    // A product that does not exist is 404 whatever the condition.
    let missing = uuid::Uuid::new_v4().to_string();
    get(&p, &missing, &[("If-None-Match", "*")])
        .await
        .problem(404);
}

#[tokio::test]
async fn without_conditions_the_answers_are_as_before_plus_the_etag() {
    let p = spawn_platform().await;
    let created = p
        .post(
            "/api/products",
            &json!({"name": "Plain", "description": null, "price": 3, "quantity": 2}),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let read = get(&p, &id, &[]).await;
    read.expect(200);
    assert_eq!(read.content_type(), "application/json");
    // The body is the product, field for field, and nothing else (no
    // version in it: the version is the header's).
    let keys: Vec<&str> = read
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "description",
            "id",
            "name",
            "price",
            "quantity",
            "updated_at"
        ]
    );
    assert_eq!(read.json["price"], "3.00");
    assert_eq!(read.body, created.body, "the same product, the same bytes");
    let updated = put(&p, &id, &[], json!({})).await;
    updated.expect(200);
    assert_eq!(updated.body, read.body, "an empty update changes nothing");
    assert_eq!(etag(&updated), etag(&read));
}

/// Long enough that only the change feed can explain a fresh read.
fn long_ttl(config: &mut gateway::Config) {
    config.product_cache_ttl = std::time::Duration::from_millis(600_000);
}

/// `product_cache_lookups_total{result="hit"}` and `product_cache_live`.
async fn cache_hits_and_live(p: &Platform) -> (f64, f64) {
    let url = p.gateway.metrics_url();
    let hits = "product_cache_lookups_total{result=\"hit\"}";
    let hits = tests::metric_sample(&p.http, &url, hits)
        .await
        .unwrap_or(0.0);
    let live = tests::metric_sample(&p.http, &url, "product_cache_live").await;
    (hits, live.expect("product_cache_live in /metrics"))
}

#[tokio::test]
async fn if_none_match_is_answered_from_the_product_cache() {
    let p = spawn_platform_with(long_ttl).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache_hits_and_live(&p).await.1 != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the product cache never went live"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (id, v1) = new_product(&p, 10).await;
    // The first read fills the cache; the next ones are hits.
    let first = get(&p, &id, &[]).await;
    first.expect(200);
    let (hits_before, _) = cache_hits_and_live(&p).await;
    let cached = get(&p, &id, &[]).await;
    assert_eq!(
        (cached.body.as_slice(), etag(&cached)),
        (first.body.as_slice(), v1.clone())
    );
    assert_not_modified(&get(&p, &id, &[("If-None-Match", &v1)]).await, &v1);
    let (hits, _) = cache_hits_and_live(&p).await;
    assert_eq!(
        hits - hits_before,
        2.0,
        "both reads were served from memory"
    );

    // Stock taken behind the gateway's back (straight over gRPC): the feed
    // drops the entry, and the old tag no longer matches.
    let mut catalog = catalog_client(&p.catalog).await;
    let reservation = uuid::Uuid::new_v4().to_string();
    reserve(&mut catalog, &reservation, &[(id.as_str(), 2)])
        .await
        .unwrap();
    let started = Instant::now();
    let fresh = loop {
        let reply = get(&p, &id, &[("If-None-Match", &v1)]).await;
        if reply.status == 200 {
            break reply;
        }
        assert_not_modified(&reply, &v1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still 304 for a stale tag after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(fresh.json["quantity"], 8);
    let v2 = etag(&fresh);
    assert_eq!(v2, "\"2\"");
    // Cached again, with its new version.
    let (hits_before, _) = cache_hits_and_live(&p).await;
    assert_not_modified(&get(&p, &id, &[("If-None-Match", &v2)]).await, &v2);
    let (hits, _) = cache_hits_and_live(&p).await;
    assert_eq!(hits - hits_before, 1.0, "the 304 came from memory");
}
