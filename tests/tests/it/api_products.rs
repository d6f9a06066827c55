//! `/api/products` over real HTTP, with the real services and PostgreSQL
//! behind the gateway: every endpoint and every error row of
//! deploy/docs/api.md.

use serde_json::{Value, json};
use tests::gateway::{Platform, Reply, spawn_platform};

const MISSING: &str = "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11";

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono_like(s))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z`, checked by shape.
fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':'
}

async fn product(p: &Platform, body: Value) -> Value {
    let reply = p.post("/api/products", &body).await;
    reply.expect(201);
    reply.json
}

#[tokio::test]
async fn create_returns_the_product_in_the_contracts_format() {
    let p = spawn_platform().await;
    let created = product(
        &p,
        json!({"name": "Laptop", "description": "14-inch", "price": 999.99, "quantity": 50}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(id).unwrap().to_string(),
        id,
        "canonical lowercase"
    );
    assert_eq!(created["name"], "Laptop");
    assert_eq!(created["description"], "14-inch");
    assert_eq!(created["price"], "999.99");
    assert_eq!(created["quantity"], 50);
    assert!(is_rfc3339_utc(&created["created_at"]), "{created}");
    assert!(is_rfc3339_utc(&created["updated_at"]), "{created}");

    // Money as a string, with two decimals in the answer whatever the input.
    let p2 = product(&p, json!({"name": "Pen", "price": "19.9", "quantity": 0})).await;
    assert_eq!(p2["price"], "19.90");
    assert_eq!(p2["description"], Value::Null);
    let p3 = product(
        &p,
        json!({"name": "Box", "price": 10, "quantity": 1, "description": null}),
    )
    .await;
    assert_eq!(p3["price"], "10.00");
    assert_eq!(p3["description"], Value::Null);
    // Read exactly: 0.1 stays one tenth.
    let p4 = product(&p, json!({"name": "Gum", "price": 0.1, "quantity": 1})).await;
    assert_eq!(p4["price"], "0.10");
    // The upper bound and a 255-character (multi-byte) name are accepted.
    let long_name = "é".repeat(255);
    let p5 = product(
        &p,
        json!({"name": long_name, "price": "99999999.99", "quantity": 2147483647}),
    )
    .await;
    assert_eq!(p5["price"], "99999999.99");
    assert_eq!(p5["name"].as_str().unwrap().chars().count(), 255);

    let fetched = p.get(&format!("/api/products/{id}")).await;
    fetched.expect(200);
    assert_eq!(fetched.json, created);
}

#[tokio::test]
async fn create_refuses_what_the_schema_refuses() {
    let p = spawn_platform().await;
    let cases = [
        (json!({"price": "1.00", "quantity": 1}), "name"),
        (json!({"name": "", "price": "1.00", "quantity": 1}), "name"),
        (
            json!({"name": "x".repeat(256), "price": "1.00", "quantity": 1}),
            "name",
        ),
        (json!({"name": 5, "price": "1.00", "quantity": 1}), "name"),
        (json!({"name": "a", "quantity": 1}), "price"),
        (json!({"name": "a", "price": 0, "quantity": 1}), "price"),
        (
            json!({"name": "a", "price": "-1.00", "quantity": 1}),
            "price",
        ),
        (
            json!({"name": "a", "price": "1.001", "quantity": 1}),
            "price",
        ),
        (
            json!({"name": "a", "price": "100000000.00", "quantity": 1}),
            "price",
        ),
        (json!({"name": "a", "price": "abc", "quantity": 1}), "price"),
        (json!({"name": "a", "price": "1.00"}), "quantity"),
        (
            json!({"name": "a", "price": "1.00", "quantity": -1}),
            "quantity",
        ),
        (
            json!({"name": "a", "price": "1.00", "quantity": 2147483648_i64}),
            "quantity",
        ),
        (
            json!({"name": "a", "price": "1.00", "quantity": 1.5}),
            "quantity",
        ),
        (
            json!({"name": "a", "price": "1.00", "quantity": "1"}),
            "quantity",
        ),
        (
            json!({"name": "a", "price": "1.00", "quantity": 1, "description": 3}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let reply = p.post("/api/products", &body).await;
        let fields = reply.violated_fields();
        assert_eq!(fields, vec![field.to_owned()], "{body}");
        assert!(
            reply.json["detail"].as_str().unwrap().contains(field),
            "{}",
            reply.json
        );
    }
    // Every violation at once, each naming its field.
    let reply = p
        .post(
            "/api/products",
            &json!({"name": "", "price": -1, "quantity": -1}),
        )
        .await;
    assert_eq!(reply.violated_fields(), vec!["name", "price", "quantity"]);
    // Nothing was stored.
    let list = p.get("/api/products").await;
    assert_eq!(list.json["total"], 0);
}

#[tokio::test]
async fn list_pages_newest_first_without_overlap() {
    let p = spawn_platform().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let quantity = if i % 2 == 0 { 0 } else { i };
        created.push(p.create_product(&format!("P{i}"), "1.50", quantity).await);
    }
    let newest_first: Vec<&str> = created
        .iter()
        .rev()
        .map(|v| v["id"].as_str().unwrap())
        .collect();

    // Defaults: page 1, page_size 20.
    let all = p.get("/api/products").await;
    all.expect(200);
    assert_eq!(all.json["total"], 7);
    assert_eq!(all.json["page"], 1);
    assert_eq!(all.json["page_size"], 20);
    assert_eq!(all.json["total_pages"], 1);
    assert_eq!(all.item_ids(), newest_first);

    // Pages of 3: 3 + 3 + 1, no overlap, same order.
    let mut paged = Vec::new();
    for page in 1..=3 {
        let reply = p
            .get(&format!("/api/products?page={page}&page_size=3"))
            .await;
        reply.expect(200);
        assert_eq!(reply.json["total"], 7);
        assert_eq!(reply.json["total_pages"], 3);
        assert_eq!(reply.json["page"], page);
        assert_eq!(reply.json["page_size"], 3);
        for item in reply.json["items"].as_array().unwrap() {
            paged.push(item["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(paged, newest_first);

    // Past the end: 200, empty, true total.
    let past = p.get("/api/products?page=9&page_size=3").await;
    past.expect(200);
    assert_eq!(past.json["items"], json!([]));
    assert_eq!(past.json["total"], 7);

    // in_stock filters.
    let in_stock = p.get("/api/products?in_stock=true").await;
    assert_eq!(in_stock.json["total"], 3);
    assert!(quantities(&in_stock).iter().all(|q| *q > 0));
    let out = p.get("/api/products?in_stock=false&page_size=100").await;
    assert_eq!(out.json["total"], 4);
    assert!(quantities(&out).iter().all(|q| *q == 0));
}

#[tokio::test]
async fn an_empty_catalog_has_zero_pages() {
    let p = spawn_platform().await;
    let reply = p.get("/api/products").await;
    reply.expect(200);
    assert_eq!(
        reply.json,
        json!({"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 0})
    );
}

#[tokio::test]
async fn list_refuses_bad_query_parameters() {
    let p = spawn_platform().await;
    let refused = [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=1.5", "page_size"),
        ("in_stock=maybe", "in_stock"),
        ("in_stock=", "in_stock"),
    ];
    p.assert_queries_refused("/api/products", &refused).await;
    // Bounds themselves are fine.
    p.get("/api/products?page=1&page_size=1").await.expect(200);
    p.get("/api/products?page_size=100").await.expect(200);
}

#[tokio::test]
async fn get_answers_404_and_422() {
    let p = spawn_platform().await;
    let detail = p
        .get(&format!("/api/products/{MISSING}"))
        .await
        .problem(404);
    assert_eq!(detail, format!("Product with id {MISSING} not found"));
    let reply = p.get("/api/products/not-a-uuid").await;
    assert_eq!(reply.violated_fields(), vec!["id"]);
    let reply = p.get("/api/products/12345").await;
    assert_eq!(reply.violated_fields(), vec!["id"]);
}

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let p = spawn_platform().await;
    let original = product(
        &p,
        json!({"name": "Laptop", "description": "old", "price": "999.99", "quantity": 5}),
    )
    .await;
    let id = original["id"].as_str().unwrap();
    let path = format!("/api/products/{id}");

    // {} changes nothing.
    let same = p.put(&path, &json!({})).await;
    same.expect(200);
    assert_eq!(same.json, original);

    // One field at a time; the others stay.
    let priced = p.put(&path, &json!({"price": 899})).await;
    priced.expect(200);
    assert_eq!(priced.json["price"], "899.00");
    assert_eq!(priced.json["name"], "Laptop");
    assert_eq!(priced.json["description"], "old");
    assert_eq!(priced.json["quantity"], 5);
    assert_eq!(priced.json["created_at"], original["created_at"]);

    let renamed = p
        .put(
            &path,
            &json!({"name": "Notebook", "quantity": 7, "description": "new"}),
        )
        .await;
    renamed.expect(200);
    assert_eq!(renamed.json["name"], "Notebook");
    assert_eq!(renamed.json["quantity"], 7);
    assert_eq!(renamed.json["description"], "new");
    assert_eq!(renamed.json["price"], "899.00");

    // null clears the description.
    let cleared = p.put(&path, &json!({"description": null})).await;
    cleared.expect(200);
    assert_eq!(cleared.json["description"], Value::Null);
    assert_eq!(cleared.json["name"], "Notebook");

    // Unknown fields (e.g. a whole object sent back) are ignored.
    let mut whole = cleared.json.clone();
    whole["quantity"] = json!(9);
    let resent = p.put(&path, &whole).await;
    resent.expect(200);
    assert_eq!(resent.json["quantity"], 9);

    // The stored product is what the last answer said.
    let fetched = p.get(&path).await;
    assert_eq!(fetched.json, resent.json);
}

#[tokio::test]
async fn update_refuses_nulls_and_bad_values() {
    let p = spawn_platform().await;
    let original = p.create_product("Laptop", "999.99", 5).await;
    let path = format!("/api/products/{}", original["id"].as_str().unwrap());
    for (body, field) in [
        (json!({"name": null}), "name"),
        (json!({"price": null}), "price"),
        (json!({"quantity": null}), "quantity"),
        (json!({"name": ""}), "name"),
        (json!({"price": "0.005"}), "price"),
        (json!({"price": 0}), "price"),
        (json!({"quantity": -5}), "quantity"),
        (json!({"quantity": 99999999999_i64}), "quantity"),
    ] {
        let reply = p.put(&path, &body).await;
        assert_eq!(reply.violated_fields(), vec![field.to_owned()], "{body}");
    }
    assert_eq!(p.get(&path).await.json, original, "nothing changed");

    let detail = p
        .put(&format!("/api/products/{MISSING}"), &json!({"name": "x"}))
        .await
        .problem(404);
    assert_eq!(detail, format!("Product with id {MISSING} not found"));
    let reply = p.put("/api/products/nope", &json!({"name": "x"})).await;
    assert_eq!(reply.violated_fields(), vec!["id"]);
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let p = spawn_platform().await;
    let created = p.create_product("Laptop", "999.99", 5).await;
    let path = format!("/api/products/{}", created["id"].as_str().unwrap());
    let reply = p.delete(&path).await;
    reply.expect(204);
    assert!(reply.body.is_empty(), "204 has an empty body");
    p.get(&path).await.problem(404);
    let detail = p.delete(&path).await.problem(404);
    assert!(detail.contains("not found"), "{detail}");
    let reply = p.delete("/api/products/not-a-uuid").await;
    assert_eq!(reply.violated_fields(), vec!["id"]);
}

#[tokio::test]
async fn a_product_in_an_order_cannot_be_deleted() {
    let p = spawn_platform().await;
    let created = p.create_product("Laptop", "999.99", 5).await;
    let id = created["id"].as_str().unwrap();
    p.create_order(1, &[(id, 1)]).await.expect(201);
    let detail = p.delete(&format!("/api/products/{id}")).await.problem(400);
    assert_eq!(
        detail,
        "Cannot delete product that is referenced in existing orders"
    );
    p.get(&format!("/api/products/{id}")).await.expect(200);
}

/// The quantities of a page of products.
fn quantities(page: &Reply) -> Vec<i64> {
    let items = page.json["items"].as_array().expect("items");
    items
        .iter()
        .map(|v| v["quantity"].as_i64().unwrap())
        .collect()
}
