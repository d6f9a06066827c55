//! `POST /api/payment-webhook` over real HTTP: both signature forms, secret
//! rotation, every refusal (401), body problems (400), size (413), the order
//! service's answers (404, 400), and event ids.

use serde_json::{Value, json};
use tests::gateway::{
    Platform, WEBHOOK_SECRET, now_unix, sign, sign_timestamped, spawn_platform, spawn_platform_with,
};

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// A platform with one pending order; returns the order id.
async fn with_order(p: &Platform) -> String {
    let product = p.create_product("Laptop", "999.99", 10).await;
    let reply = p.create_order(1, &[(&id_of(&product), 1)]).await;
    reply.expect(201);
    id_of(&reply.json)
}

fn payment(order_id: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"order_id": order_id, "payment_status": status})).unwrap()
}

async fn payment_status_of(p: &Platform, order_id: &str) -> Value {
    p.get(&format!("/api/orders/{order_id}")).await.json["payment_status"].clone()
}

#[tokio::test]
async fn the_original_signature_form_applies_the_payment() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let body = payment(&order_id, "paid");
    let reply = p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
    reply.expect(200);
    assert_eq!(
        reply.json,
        json!({"message": "Payment status updated successfully", "order_id": order_id, "payment_status": "paid"})
    );
    assert_eq!(payment_status_of(&p, &order_id).await, "paid");
    // The same status again: 200, unchanged (idempotent).
    let again = p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
    again.expect(200);
    assert_eq!(again.json["payment_status"], "paid");
}

#[tokio::test]
async fn the_timestamped_form_is_accepted_and_expires() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let body = payment(&order_id, "failed");

    let expired = sign_timestamped(WEBHOOK_SECRET, now_unix() - 301, &body);
    assert_eq!(
        p.webhook(&body, Some(&expired)).await.problem(401),
        "Invalid signature"
    );
    let future = sign_timestamped(WEBHOOK_SECRET, now_unix() + 301, &body);
    assert_eq!(
        p.webhook(&body, Some(&future)).await.problem(401),
        "Invalid signature"
    );
    assert_eq!(payment_status_of(&p, &order_id).await, "unpaid");

    let fresh = sign_timestamped(WEBHOOK_SECRET, now_unix(), &body);
    let reply = p.webhook(&body, Some(&fresh)).await;
    reply.expect(200);
    assert_eq!(reply.json["payment_status"], "failed");

    // Several v1 entries (the sender mid-rotation): any valid one suffices.
    let paid = payment(&order_id, "paid");
    let t = now_unix();
    let good = sign_timestamped(WEBHOOK_SECRET, t, &paid);
    let stale = sign_timestamped("an-old-secret", t, &paid);
    let header = format!("{stale},v1={}", good.split("v1=").nth(1).unwrap());
    let reply = p.webhook(&paid, Some(&header)).await;
    reply.expect(200);
    assert_eq!(
        reply.json["payment_status"], "paid",
        "failed -> paid is allowed"
    );
}

#[tokio::test]
async fn every_rotated_secret_is_accepted() {
    let p = spawn_platform_with(|config| {
        config.webhook_secret = Some("old-secret, new-secret".into());
    })
    .await;
    let first = with_order(&p).await;
    let second = with_order(&p).await;
    let body = payment(&first, "paid");
    p.webhook(&body, Some(&sign("old-secret", &body)))
        .await
        .expect(200);
    let body = payment(&second, "paid");
    p.webhook(
        &body,
        Some(&sign_timestamped("new-secret", now_unix(), &body)),
    )
    .await
    .expect(200);
    let body = payment(&second, "failed");
    assert_eq!(
        p.webhook(&body, Some(&sign("another-secret", &body)))
            .await
            .problem(401),
        "Invalid signature"
    );
}

#[tokio::test]
async fn require_timestamp_refuses_the_original_form() {
    let p = spawn_platform_with(|config| config.webhook_require_timestamp = true).await;
    let order_id = with_order(&p).await;
    let body = payment(&order_id, "paid");
    assert_eq!(
        p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body)))
            .await
            .problem(401),
        "Invalid signature"
    );
    p.webhook(
        &body,
        Some(&sign_timestamped(WEBHOOK_SECRET, now_unix(), &body)),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn every_bad_signature_is_refused_with_401() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let body = payment(&order_id, "paid");
    let good = sign(WEBHOOK_SECRET, &body);

    assert_eq!(
        p.webhook(&body, None).await.problem(401),
        "Missing X-Signature header"
    );
    assert_eq!(
        p.webhook(&body, Some("")).await.problem(401),
        "Missing X-Signature header"
    );

    let other_body = payment(&order_id, "failed");
    let cases = [
        ("short", good[..16].to_owned()),
        ("odd length", good[..63].to_owned()),
        ("non-hex", format!("{}zz", &good[..62])),
        ("wrong length", format!("{good}abcd")),
        ("valid hex, not a MAC", "0".repeat(64)),
        (
            "valid signature over another body",
            sign(WEBHOOK_SECRET, &other_body),
        ),
        ("t= without v1", format!("t={}", now_unix())),
        ("v1 without t", format!("v1={good}")),
    ];
    for (what, header) in cases {
        let reply = p.webhook(&body, Some(&header)).await;
        assert_eq!(reply.problem(401), "Invalid signature", "{what}");
    }
    assert_eq!(
        payment_status_of(&p, &order_id).await,
        "unpaid",
        "nothing applied"
    );
}

#[tokio::test]
async fn unreadable_payloads_are_400_after_the_signature() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{not json".to_vec(),
        b"[]".to_vec(),
        serde_json::to_vec(&json!({"order_id": 5, "payment_status": "paid"})).unwrap(),
        serde_json::to_vec(&json!({"order_id": "not-a-uuid", "payment_status": "paid"})).unwrap(),
        serde_json::to_vec(&json!({"order_id": order_id, "payment_status": true})).unwrap(),
        serde_json::to_vec(&json!({"order_id": order_id, "payment_status": "refunded"})).unwrap(),
        serde_json::to_vec(&json!({"order_id": order_id, "payment_status": "unpaid"})).unwrap(),
        serde_json::to_vec(&json!({"order_id": order_id})).unwrap(),
        format!(r#"{{"order_id":"{order_id}","payment_status":"paid","payment_status":"failed"}}"#)
            .into_bytes(),
    ];
    for body in bodies {
        let reply = p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body))).await;
        reply.problem(400);
    }
    assert_eq!(payment_status_of(&p, &order_id).await, "unpaid");
    // Without a valid signature the same bodies are 401, not 400: the
    // signature is checked first.
    assert_eq!(
        p.webhook(b"", None).await.problem(401),
        "Missing X-Signature header"
    );
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let padding = "x".repeat(65 * 1024);
    let body = serde_json::to_vec(
        &json!({"order_id": order_id, "payment_status": "paid", "pad": padding}),
    )
    .unwrap();
    p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body)))
        .await
        .problem(413);
    assert_eq!(payment_status_of(&p, &order_id).await, "unpaid");
}

#[tokio::test]
async fn the_order_services_refusals() {
    let p = spawn_platform().await;
    // Unknown order: 404.
    let missing = "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11";
    let body = payment(missing, "paid");
    let detail = p
        .webhook(&body, Some(&sign(WEBHOOK_SECRET, &body)))
        .await
        .problem(404);
    assert!(detail.contains("not found"), "{detail}");

    // A paid order told failed: 400.
    let paid = with_order(&p).await;
    p.signed_webhook(&json!({"order_id": paid, "payment_status": "paid"}))
        .await
        .expect(200);
    let reply = p
        .signed_webhook(&json!({"order_id": paid, "payment_status": "failed"}))
        .await;
    reply.problem(400);
    assert_eq!(payment_status_of(&p, &paid).await, "paid");

    // An order that is not pending: 400 mentioning `pending`.
    let canceled = with_order(&p).await;
    p.put(
        &format!("/api/orders/{canceled}/status"),
        &json!({"status": "canceled"}),
    )
    .await
    .expect(200);
    let detail = p
        .signed_webhook(&json!({"order_id": canceled, "payment_status": "paid"}))
        .await
        .problem(400);
    assert!(detail.contains("pending"), "{detail}");
}

#[tokio::test]
async fn event_ids_make_redelivery_harmless() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;

    // Event A (failed) from the header, then event B (paid) from the body.
    let failed = payment(&order_id, "failed");
    let send_with_header = |body: Vec<u8>, event: &'static str| {
        let p = &p;
        async move {
            let response = p
                .http
                .post(p.url("/api/payment-webhook"))
                .header("X-Signature", sign(WEBHOOK_SECRET, &body))
                .header("Webhook-Id", event)
                .body(body)
                .send()
                .await
                .unwrap();
            tests::gateway::Reply::read(response).await
        }
    };
    send_with_header(failed.clone(), "evt_A").await.expect(200);
    let paid_with_event =
        json!({"order_id": order_id, "payment_status": "paid", "event_id": "evt_B"});
    p.signed_webhook(&paid_with_event).await.expect(200);
    assert_eq!(payment_status_of(&p, &order_id).await, "paid");

    // Event A delivered again: a no-op that answers the order as it is.
    let replay = send_with_header(failed, "evt_A").await;
    replay.expect(200);
    assert_eq!(replay.json["payment_status"], "paid");
    assert_eq!(payment_status_of(&p, &order_id).await, "paid");
}
