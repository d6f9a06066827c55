//! A table of malformed requests (wrong types, nulls, huge numbers, NaN,
//! duplicated keys, wrong content types, truncated JSON, bodies past the
//! 64 KiB limit, bad UUIDs, unknown enum values, too many order lines, pages
//! past the depth bound, ...). Each must get a 4xx in the error format
//! (problem details), none a 5xx, and none may change stored state.

use reqwest::Method;
use serde_json::Value;
use tests::gateway::{Platform, spawn_platform};

/// One malformed request and the status it must get.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
) -> Case {
    Case {
        what,
        method,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: body.into(),
        status,
    }
}

fn with_type(mut case: Case, content_type: Option<&'static str>) -> Case {
    case.content_type = content_type;
    case
}

/// A product and an order to aim updates at, so that a request that wrongly
/// got through would show up as a changed snapshot.
async fn seeded() -> (Platform, String, String) {
    let p = spawn_platform().await;
    let product = p.create_product("Laptop", "999.99", 10).await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    let order = p.create_order(1, &[(&product_id, 2)]).await;
    order.expect(201);
    let order_id = order.json["id"].as_str().unwrap().to_owned();
    (p, product_id, order_id)
}

fn cases(product_id: &str, order_id: &str) -> Vec<Case> {
    let product = format!("/api/products/{product_id}");
    let status = format!("/api/orders/{order_id}/status");
    let line = |rest: &str| {
        format!(r#"{{"customer_id":1,"products":[{{"product_id":"{product_id}",{rest}}}]}}"#)
    };
    let five_mb_name = format!(
        r#"{{"name":"{}","price":"1.00","quantity":1}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let five_mb_garbage = vec![b'x'; 5 * 1024 * 1024];
    // One byte past the default body limit (64 KiB), as valid JSON.
    let mut just_over = br#"{"name":"x","price":"1.00","quantity":1}"#.to_vec();
    just_over.resize(64 * 1024 + 1, b' ');
    // One line past the default MAX_ORDER_LINES (100); lines count as sent.
    let too_many_lines = format!(
        r#"{{"customer_id":1,"products":[{}]}}"#,
        vec![format!(r#"{{"product_id":"{product_id}","quantity":1}}"#); 101].join(",")
    );
    // Far past serde_json's recursion limit (128), within the 64 KiB body limit.
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    use Method as M;
    vec![
        // Wrong types.
        case(
            "name is a number",
            M::POST,
            "/api/products",
            r#"{"name":123,"price":"1.00","quantity":1}"#,
            422,
        ),
        case(
            "name is an object",
            M::PUT,
            &product,
            r#"{"name":{"first":"x"}}"#,
            422,
        ),
        case(
            "price is a boolean",
            M::PUT,
            &product,
            r#"{"price":true}"#,
            422,
        ),
        case(
            "price is an array",
            M::POST,
            "/api/products",
            r#"{"name":"a","price":[1],"quantity":1}"#,
            422,
        ),
        case(
            "quantity is a string",
            M::PUT,
            &product,
            r#"{"quantity":"5"}"#,
            422,
        ),
        case(
            "quantity is fractional",
            M::PUT,
            &product,
            r#"{"quantity":1.5}"#,
            422,
        ),
        case(
            "customer_id is a string",
            M::POST,
            "/api/orders",
            line(r#""quantity":1"#).replace(r#""customer_id":1"#, r#""customer_id":"1""#),
            422,
        ),
        case(
            "products is an object",
            M::POST,
            "/api/orders",
            r#"{"customer_id":1,"products":{"a":1}}"#,
            422,
        ),
        case(
            "products holds numbers",
            M::POST,
            "/api/orders",
            r#"{"customer_id":1,"products":[1,2]}"#,
            422,
        ),
        case(
            "status is a number",
            M::PUT,
            &status,
            r#"{"status":2}"#,
            422,
        ),
        // Nulls.
        case("name null", M::PUT, &product, r#"{"name":null}"#, 422),
        case("price null", M::PUT, &product, r#"{"price":null}"#, 422),
        case(
            "quantity null",
            M::PUT,
            &product,
            r#"{"quantity":null}"#,
            422,
        ),
        case(
            "products null",
            M::POST,
            "/api/orders",
            r#"{"customer_id":1,"products":null}"#,
            422,
        ),
        case("status null", M::PUT, &status, r#"{"status":null}"#, 422),
        case("body null", M::POST, "/api/products", "null", 422),
        // Huge numbers.
        case(
            "quantity 1e400",
            M::PUT,
            &product,
            r#"{"quantity":1e400}"#,
            422,
        ),
        case(
            "quantity beyond i32",
            M::PUT,
            &product,
            r#"{"quantity":2147483648}"#,
            422,
        ),
        case(
            "quantity beyond i64",
            M::PUT,
            &product,
            r#"{"quantity":99999999999999999999999}"#,
            422,
        ),
        case("price 1e400", M::PUT, &product, r#"{"price":1e400}"#, 422),
        case(
            "price over the maximum",
            M::PUT,
            &product,
            r#"{"price":"100000000"}"#,
            422,
        ),
        case(
            "price sub-cent beyond f64",
            M::PUT,
            &product,
            r#"{"price":19.999999999999999}"#,
            422,
        ),
        case("price 1e-400", M::PUT, &product, r#"{"price":1e-400}"#, 422),
        case(
            "customer_id beyond i64",
            M::POST,
            "/api/orders",
            line(r#""quantity":1"#)
                .replace(r#""customer_id":1"#, r#""customer_id":9223372036854775808"#),
            422,
        ),
        case(
            "line quantity beyond i32",
            M::POST,
            "/api/orders",
            line(r#""quantity":2147483648"#),
            422,
        ),
        // NaN and friends.
        case(
            "price NaN literal",
            M::PUT,
            &product,
            r#"{"price":NaN}"#,
            422,
        ),
        case(
            "price Infinity literal",
            M::PUT,
            &product,
            r#"{"price":Infinity}"#,
            422,
        ),
        case("price \"NaN\"", M::PUT, &product, r#"{"price":"NaN"}"#, 422),
        case(
            "price \"-Infinity\"",
            M::PUT,
            &product,
            r#"{"price":"-Infinity"}"#,
            422,
        ),
        case(
            "price \"1e400\"",
            M::PUT,
            &product,
            r#"{"price":"1e400"}"#,
            422,
        ),
        // Duplicated keys.
        case(
            "duplicated name",
            M::PUT,
            &product,
            r#"{"name":"a","name":"b"}"#,
            422,
        ),
        case(
            "duplicated key in a line",
            M::POST,
            "/api/orders",
            line(r#""quantity":1,"quantity":2"#),
            422,
        ),
        case(
            "duplicated status",
            M::PUT,
            &status,
            r#"{"status":"completed","status":"canceled"}"#,
            422,
        ),
        // Wrong content types.
        with_type(
            case("text/plain", M::PUT, &product, r#"{"name":"x"}"#, 415),
            Some("text/plain"),
        ),
        with_type(
            case(
                "form-encoded",
                M::POST,
                "/api/products",
                "name=x&price=1&quantity=1",
                415,
            ),
            Some("application/x-www-form-urlencoded"),
        ),
        with_type(
            case(
                "multipart",
                M::PUT,
                &status,
                r#"{"status":"completed"}"#,
                415,
            ),
            Some("multipart/form-data; boundary=x"),
        ),
        // Truncated, empty and broken JSON.
        case(
            "truncated object",
            M::POST,
            "/api/products",
            r#"{"name":"a","price":"#,
            422,
        ),
        case("truncated string", M::PUT, &product, r#"{"name":"ab"#, 422),
        case(
            "trailing garbage",
            M::PUT,
            &product,
            r#"{"name":"b"} x"#,
            422,
        ),
        case("empty body", M::PUT, &product, "", 422),
        with_type(
            case(
                "empty body, no content type",
                M::POST,
                "/api/orders",
                "",
                422,
            ),
            None,
        ),
        case("array instead of object", M::PUT, &status, "[]", 422),
        case("nested 30000 deep", M::PUT, &product, deep.clone(), 422),
        case(
            "nested 30000 deep in a field",
            M::POST,
            "/api/orders",
            format!(r#"{{"customer_id":1,"products":{deep}}}"#),
            422,
        ),
        case(
            "byte order mark",
            M::PUT,
            &product,
            "\u{feff}{\"name\":\"x\"}",
            422,
        ),
        case(
            "invalid UTF-8",
            M::PUT,
            &product,
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            422,
        ),
        case(
            "NUL character in a name",
            M::PUT,
            &product,
            r#"{"name":"a\u0000b"}"#,
            422,
        ),
        case(
            "lone surrogate",
            M::PUT,
            &product,
            r#"{"name":"\ud800"}"#,
            422,
        ),
        // Five megabytes.
        case("5 MB product", M::POST, "/api/products", five_mb_name, 413),
        case("5 MB garbage", M::PUT, &product, five_mb_garbage, 413),
        case("64 KiB + 1 byte", M::POST, "/api/products", just_over, 413),
        // Resource bounds.
        case(
            "101 order lines",
            M::POST,
            "/api/orders",
            too_many_lines,
            422,
        ),
        case(
            "products page past the depth bound",
            M::GET,
            "/api/products?page=102&page_size=100",
            "",
            422,
        ),
        case(
            "orders page past the depth bound",
            M::GET,
            "/api/orders?page=10002&page_size=1",
            "",
            422,
        ),
        // Bad UUIDs.
        case(
            "bad product UUID",
            M::GET,
            "/api/products/not-a-uuid",
            "",
            422,
        ),
        case(
            "bad product UUID on update",
            M::PUT,
            "/api/products/1234",
            r#"{"name":"x"}"#,
            422,
        ),
        case(
            "bad product UUID on delete",
            M::DELETE,
            "/api/products/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
            "",
            422,
        ),
        case(
            "bad order UUID",
            M::PUT,
            "/api/orders/123/status",
            r#"{"status":"completed"}"#,
            422,
        ),
        case(
            "bad UUID in a line",
            M::POST,
            "/api/orders",
            r#"{"customer_id":1,"products":[{"product_id":"abc","quantity":1}]}"#,
            422,
        ),
        // Unknown enum values.
        case(
            "status shipped",
            M::PUT,
            &status,
            r#"{"status":"shipped"}"#,
            422,
        ),
        case(
            "status in capitals",
            M::PUT,
            &status,
            r#"{"status":"COMPLETED"}"#,
            422,
        ),
        case(
            "status filter",
            M::GET,
            "/api/orders?status=shipped",
            "",
            422,
        ),
        case(
            "payment_status filter",
            M::GET,
            "/api/orders?payment_status=refunded",
            "",
            422,
        ),
        // Bad query strings.
        case("page 1e400", M::GET, "/api/products?page=1e400", "", 422),
        case(
            "page_size negative",
            M::GET,
            "/api/products?page_size=-20",
            "",
            422,
        ),
        case(
            "repeated page",
            M::GET,
            "/api/products?page=1&page=2",
            "",
            422,
        ),
        case(
            "in_stock not a boolean",
            M::GET,
            "/api/products?in_stock=perhaps",
            "",
            422,
        ),
        // Neither route nor method.
        case("unknown path", M::GET, "/api/nothing", "", 404),
        case(
            "unsupported method",
            M::PATCH,
            &product,
            r#"{"name":"x"}"#,
            405,
        ),
        // Unsigned webhook.
        case(
            "unsigned webhook",
            M::POST,
            "/api/payment-webhook",
            format!(r#"{{"order_id":"{order_id}","payment_status":"paid"}}"#),
            401,
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_get_4xx_problems_and_change_nothing() {
    let (p, product_id, order_id) = seeded().await;
    let before = p.snapshot().await;
    let table = cases(&product_id, &order_id);
    assert!(table.len() >= 30, "the table has {} rows", table.len());

    let mut failures = Vec::new();
    for case in table {
        let reply = p
            .send_raw(
                case.method.clone(),
                &case.path,
                case.content_type,
                case.body,
            )
            .await;
        let status = reply.status.as_u16();
        let is_problem = reply.content_type().starts_with("application/problem+json")
            && reply.json["status"] == status
            && reply.json["detail"].is_string();
        if status != case.status || !is_problem {
            failures.push(format!(
                "{} {} ({}): got {status}, want {} as problem details; body {}",
                case.method,
                case.path.chars().take(60).collect::<String>(),
                case.what,
                case.status,
                String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        if status == 422 && reply.json["errors"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!("{}: a 422 without errors[]", case.what));
        }
        assert!(status < 500, "{}: a 5xx ({status})", case.what);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let after = p.snapshot().await;
    assert_eq!(before, after, "stored state changed");
    assert_eq!(p.stock_of(&product_id).await, 8);
    let order: Value = p.get(&format!("/api/orders/{order_id}")).await.json;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "unpaid");
}
