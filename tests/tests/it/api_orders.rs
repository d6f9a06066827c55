//! `/api/orders` over real HTTP, with the real services and PostgreSQL behind
//! the gateway: every endpoint and error row of deploy/docs/api.md,
//! idempotent creation, and no oversell under concurrency.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use tests::gateway::{Platform, Reply, spawn_platform};

const MISSING: &str = "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11";
const ALSO_MISSING: &str = "0b8a4d4e-9c07-4c1e-8c39-2d0f6f0d7a55";

fn id_of(value: &Value) -> &str {
    value["id"].as_str().expect("id is a string")
}

async fn set_status(p: &Platform, order_id: &str, status: &str) -> Reply {
    p.set_order_status(order_id, status).await
}

#[tokio::test]
async fn create_takes_stock_and_totals_exactly() {
    let p = spawn_platform().await;
    let laptop = p.create_product("Laptop", "999.99", 10).await;
    let pen = p.create_product("Pen", "0.10", 100).await;

    let reply = p
        .create_order(12345, &[(id_of(&laptop), 2), (id_of(&pen), 3)])
        .await;
    reply.expect(201);
    let order = &reply.json;
    let order_id = id_of(order);
    assert_eq!(
        uuid::Uuid::parse_str(order_id).unwrap().to_string(),
        order_id
    );
    assert_eq!(order["customer_id"], 12345);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "unpaid");
    assert_eq!(order["total_price"], "2000.28");
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(order["updated_at"].as_str().unwrap().ends_with('Z'));
    let items = order["order_items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let line = |product: &Value| {
        items
            .iter()
            .find(|item| item["product_id"] == product["id"])
            .cloned()
            .unwrap()
    };
    assert_eq!(line(&laptop)["quantity"], 2);
    assert_eq!(line(&laptop)["price_at_purchase"], "999.99");
    assert!(line(&laptop)["id"].is_i64());
    assert_eq!(line(&pen)["quantity"], 3);
    assert_eq!(line(&pen)["price_at_purchase"], "0.10");

    assert_eq!(p.stock_of(id_of(&laptop)).await, 8);
    assert_eq!(p.stock_of(id_of(&pen)).await, 97);

    // A later price change never alters the order.
    p.put(
        &format!("/api/products/{}", id_of(&laptop)),
        &json!({"price": "1.00"}),
    )
    .await
    .expect(200);
    let fetched = p.get(&format!("/api/orders/{order_id}")).await;
    fetched.expect(200);
    assert_eq!(fetched.json, *order);
}

#[tokio::test]
async fn create_refuses_invalid_orders_with_422() {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 10).await;
    let id = id_of(&product);
    let cases = [
        (
            json!({"customer_id": 0, "products": [{"product_id": id, "quantity": 1}]}),
            "customer_id",
        ),
        (
            json!({"customer_id": -5, "products": [{"product_id": id, "quantity": 1}]}),
            "customer_id",
        ),
        (
            json!({"products": [{"product_id": id, "quantity": 1}]}),
            "customer_id",
        ),
        (
            json!({"customer_id": "7", "products": [{"product_id": id, "quantity": 1}]}),
            "customer_id",
        ),
        (json!({"customer_id": 1, "products": []}), "products"),
        (json!({"customer_id": 1}), "products"),
        (
            json!({"customer_id": 1, "products": [{"product_id": id, "quantity": 0}]}),
            "products[0].quantity",
        ),
        (
            json!({"customer_id": 1, "products": [{"product_id": id, "quantity": -1}]}),
            "products[0].quantity",
        ),
        (
            json!({"customer_id": 1, "products": [{"product_id": "nope", "quantity": 1}]}),
            "products[0].product_id",
        ),
        (
            json!({"customer_id": 1, "products": [{"product_id": id, "quantity": 1}, {"quantity": 1}]}),
            "products[1].product_id",
        ),
    ];
    for (body, field) in cases {
        let reply = p.post("/api/orders", &body).await;
        assert_eq!(reply.violated_fields(), vec![field.to_owned()], "{body}");
    }
    assert_eq!(p.stock_of(id).await, 10);
    assert_eq!(p.get("/api/orders").await.json["total"], 0);
}

#[tokio::test]
async fn missing_products_are_404_naming_every_id_and_move_no_stock() {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 10).await;
    let reply = p
        .create_order(1, &[(id_of(&product), 1), (MISSING, 1), (ALSO_MISSING, 2)])
        .await;
    let detail = reply.problem(404);
    assert!(detail.starts_with("Products not found: ["), "{detail}");
    assert!(
        detail.contains(MISSING) && detail.contains(ALSO_MISSING),
        "{detail}"
    );
    assert!(!detail.contains(id_of(&product)), "{detail}");
    assert_eq!(p.stock_of(id_of(&product)).await, 10);
    assert_eq!(p.get("/api/orders").await.json["total"], 0);
}

#[tokio::test]
async fn insufficient_stock_is_400_and_all_or_nothing() {
    let p = spawn_platform().await;
    let plenty = p.create_product("Pen", "0.10", 100).await;
    let scarce = p.create_product("Laptop", "999.99", 2).await;
    let lines = [(id_of(&plenty), 5), (id_of(&scarce), 3)];
    let reply = p.create_order(1, &lines).await;
    assert_eq!(
        reply.problem(400),
        "Insufficient stock for product 'Laptop'. Available: 2, Requested: 3"
    );
    assert_eq!(
        p.stock_of(id_of(&plenty)).await,
        100,
        "no stock moved anywhere"
    );
    assert_eq!(p.stock_of(id_of(&scarce)).await, 2);
    assert_eq!(p.get("/api/orders").await.json["total"], 0);
}

#[tokio::test]
async fn get_answers_404_and_422() {
    let p = spawn_platform().await;
    let detail = p.get(&format!("/api/orders/{MISSING}")).await.problem(404);
    assert_eq!(detail, format!("Order with id {MISSING} not found"));
    assert_eq!(p.get("/api/orders/xyz").await.violated_fields(), vec!["id"]);
}

#[tokio::test]
async fn list_pages_and_filters() {
    let p = spawn_platform().await;
    let product = p.create_product("Pen", "1.25", 100).await;
    let mut ids = Vec::new();
    for customer in 1..=5 {
        let reply = p.create_order(customer, &[(id_of(&product), 1)]).await;
        reply.expect(201);
        ids.push(id_of(&reply.json).to_owned());
    }
    set_status(&p, &ids[0], "completed").await.expect(200);
    set_status(&p, &ids[1], "canceled").await.expect(200);
    p.signed_webhook(&json!({"order_id": ids[2], "payment_status": "paid"}))
        .await
        .expect(200);

    let all = p.get("/api/orders").await;
    all.expect(200);
    assert_eq!(all.json["total"], 5);
    assert_eq!(all.json["total_pages"], 1);
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(all.item_ids(), newest_first);
    assert!(all.json["items"][0]["order_items"].is_array());

    let page = p.get("/api/orders?page=2&page_size=2").await;
    assert_eq!(page.json["page"], 2);
    assert_eq!(page.json["total_pages"], 3);
    assert_eq!(page.item_ids(), vec![ids[2].as_str(), ids[1].as_str()]);

    let pending = p.get("/api/orders?status=pending").await;
    assert_eq!(pending.json["total"], 3);
    let completed = p.get("/api/orders?status=completed").await;
    assert_eq!(completed.json["total"], 1);
    assert_eq!(completed.json["items"][0]["id"], ids[0].as_str());
    let paid = p.get("/api/orders?payment_status=paid").await;
    assert_eq!(paid.json["total"], 1);
    assert_eq!(paid.json["items"][0]["id"], ids[2].as_str());
    let both = p
        .get("/api/orders?status=pending&payment_status=unpaid")
        .await;
    assert_eq!(both.json["total"], 2);
    let customer = p.get("/api/orders?customer_id=4").await;
    assert_eq!(customer.json["total"], 1);

    let refused = [
        ("status=shipped", "status"),
        ("payment_status=refunded", "payment_status"),
        ("page=0", "page"),
        ("page_size=500", "page_size"),
        ("customer_id=0", "customer_id"),
    ];
    p.assert_queries_refused("/api/orders", &refused).await;
}

#[tokio::test]
async fn status_machine_over_http() {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 10).await;
    let pid = id_of(&product);

    // pending -> completed keeps the stock taken; completed is final.
    let a = p.create_order(1, &[(pid, 2)]).await.json;
    let done = set_status(&p, id_of(&a), "completed").await;
    done.expect(200);
    assert_eq!(done.json["status"], "completed");
    assert_eq!(p.stock_of(pid).await, 8);
    // The same status again: 200, no change.
    let again = set_status(&p, id_of(&a), "completed").await;
    again.expect(200);
    assert_eq!(again.json["status"], "completed");
    assert_eq!(
        set_status(&p, id_of(&a), "pending").await.problem(400),
        "Cannot transition order status from 'completed' to 'pending'"
    );
    assert_eq!(
        set_status(&p, id_of(&a), "canceled").await.problem(400),
        "Cannot transition order status from 'completed' to 'canceled'"
    );
    assert_eq!(p.stock_of(pid).await, 8);

    // pending -> canceled restores stock exactly once.
    let b = p.create_order(2, &[(pid, 3)]).await.json;
    assert_eq!(p.stock_of(pid).await, 5);
    let canceled = set_status(&p, id_of(&b), "canceled").await;
    canceled.expect(200);
    assert_eq!(canceled.json["status"], "canceled");
    assert_eq!(p.stock_of(pid).await, 8);
    set_status(&p, id_of(&b), "canceled").await.expect(200);
    assert_eq!(
        p.stock_of(pid).await,
        8,
        "a repeated cancel restores nothing more"
    );
    assert_eq!(
        set_status(&p, id_of(&b), "completed").await.problem(400),
        "Cannot transition order status from 'canceled' to 'completed'"
    );

    // Schema and lookup errors.
    let reply = set_status(&p, id_of(&b), "shipped").await;
    assert_eq!(reply.violated_fields(), vec!["status"]);
    let reply = p
        .put(&format!("/api/orders/{}/status", id_of(&b)), &json!({}))
        .await;
    assert_eq!(reply.violated_fields(), vec!["status"]);
    let detail = set_status(&p, MISSING, "completed").await.problem(404);
    assert_eq!(detail, format!("Order with id {MISSING} not found"));
    assert_eq!(
        set_status(&p, "123", "completed").await.violated_fields(),
        vec!["id"]
    );
}

async fn create_with_key(p: &Platform, key: &str, body: &Value) -> Reply {
    let response = p
        .http
        .request(Method::POST, p.url("/api/orders"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn idempotency_key_replays_the_original_answer() {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 10).await;
    let body =
        json!({"customer_id": 7, "products": [{"product_id": id_of(&product), "quantity": 2}]});

    let first = create_with_key(&p, "order-7-attempt", &body).await;
    first.expect(201);
    let replay = create_with_key(&p, "order-7-attempt", &body).await;
    replay.expect(201);
    assert_eq!(
        replay.json, first.json,
        "the replay answers the original body"
    );
    assert_eq!(p.stock_of(id_of(&product)).await, 8, "stock taken once");
    assert_eq!(p.get("/api/orders").await.json["total"], 1);

    // Concurrent retries with one key make one order.
    let key_body =
        json!({"customer_id": 8, "products": [{"product_id": id_of(&product), "quantity": 1}]});
    let replies = join_all((0..5).map(|_| create_with_key(&p, "burst-key", &key_body))).await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            r.expect(201);
            id_of(&r.json).to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(p.stock_of(id_of(&product)).await, 7);

    // Same key, different body: 422 with a clear message.
    let other =
        json!({"customer_id": 7, "products": [{"product_id": id_of(&product), "quantity": 3}]});
    let reply = create_with_key(&p, "order-7-attempt", &other).await;
    assert_eq!(reply.violated_fields(), vec!["Idempotency-Key"]);
    assert_eq!(p.stock_of(id_of(&product)).await, 7);

    // A malformed key is refused before anything happens.
    let too_long = "k".repeat(256);
    let reply = create_with_key(&p, &too_long, &body).await;
    assert_eq!(reply.violated_fields(), vec!["Idempotency-Key"]);
}

#[tokio::test]
async fn forty_concurrent_orders_for_stock_ten_sell_exactly_ten() {
    let p = spawn_platform().await;
    let product = p.create_product("Hot item", "5.00", 10).await;
    let pid = id_of(&product).to_owned();
    let replies = join_all((0..40).map(|i| {
        let p = &p;
        let pid = pid.clone();
        async move { p.create_order(1000 + i, &[(&pid, 1)]).await }
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != 201).collect();
    assert_eq!(created, 10, "exactly min(N, S) orders succeed");
    for reply in refused {
        let detail = reply.problem(400);
        assert!(
            detail.starts_with("Insufficient stock for product 'Hot item'"),
            "{detail}"
        );
    }
    assert_eq!(p.stock_of(&pid).await, 0);
    let orders = p.get("/api/orders?page_size=100").await;
    assert_eq!(orders.json["total"], 10);
}

/// Held units come back on cancel, so stock may not be set so high that they
/// would no longer fit in a 32-bit quantity: refused (422, naming the most it
/// may be), while the most that fits is accepted and a cancel then brings
/// every held unit back, exactly to the limit.
#[tokio::test]
async fn stock_cannot_be_set_past_the_room_its_held_units_need() {
    let p = spawn_platform().await;
    let product = p.create_product("Crate", "3.00", 10).await;
    let product_id = id_of(&product).to_owned();
    let order = p.create_order(7, &[(&product_id, 5)]).await;
    order.expect(201);
    let path = format!("/api/products/{product_id}");

    let refused = p.put(&path, &json!({"quantity": 2_147_483_647_i64})).await;

    let detail = refused.problem(422);
    assert_eq!(refused.violated_fields(), ["quantity"], "{detail}");
    assert!(
        refused.json["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2147483642"),
        "{}",
        refused.json
    );
    assert_eq!(p.stock_of(&product_id).await, 5, "nothing changed");

    p.put(&path, &json!({"quantity": 2_147_483_642_i64}))
        .await
        .expect(200);
    set_status(&p, id_of(&order.json), "canceled")
        .await
        .expect(200);
    assert_eq!(p.stock_of(&product_id).await, 2_147_483_647);
    // Nothing held any more: the top is reachable, and not beyond.
    p.put(&path, &json!({"quantity": 2_147_483_647_i64}))
        .await
        .expect(200);
}
