//! `POST /api/payment-webhook` over real HTTP: the three signature forms
//! (original and timestamped `X-Signature`, Standard Webhooks), secret
//! rotation, every refusal (401), body problems (400), size (413), the order
//! service's answers (404, 400), and event ids: a repeat is applied once, an
//! id reused for another delivery is refused (409), never acknowledged and
//! dropped.

use serde_json::{Value, json};
use tests::gateway::{
    Platform, Reply, WEBHOOK_SECRET, now_unix, sign, sign_timestamped, spawn_platform,
    spawn_platform_with,
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

/// An order to pay, and a webhook body paying it with `status`.
async fn with_payment(p: &Platform, status: &str) -> (String, Vec<u8>) {
    let order_id = with_order(p).await;
    let body = payment(&order_id, status);
    (order_id, body)
}

async fn payment_status_of(p: &Platform, order_id: &str) -> Value {
    p.get(&format!("/api/orders/{order_id}")).await.json["payment_status"].clone()
}

#[tokio::test]
async fn the_original_signature_form_applies_the_payment() {
    let p = spawn_platform().await;
    let (order_id, body) = with_payment(&p, "paid").await;
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
    let (order_id, body) = with_payment(&p, "failed").await;

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
    let (_, body) = with_payment(&p, "paid").await;
    assert_eq!(
        p.webhook(&body, Some(&sign(WEBHOOK_SECRET, &body)))
            .await
            .problem(401),
        "Invalid signature"
    );
    let timestamped = sign_timestamped(WEBHOOK_SECRET, now_unix(), &body);
    p.webhook(&body, Some(&timestamped)).await.expect(200);
}

#[tokio::test]
async fn every_bad_signature_is_refused_with_401() {
    let p = spawn_platform().await;
    let (order_id, body) = with_payment(&p, "paid").await;
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
    let mut cases: Vec<(&str, String)> = [("short", 16), ("odd length", 63)]
        .map(|(what, kept)| (what, good[..kept].to_owned()))
        .into();
    cases.extend([
        ("non-hex", format!("{}zz", &good[..62])),
        ("wrong length", format!("{good}abcd")),
        ("valid hex, not a MAC", "0".repeat(64)),
        (
            "valid signature over another body",
            sign(WEBHOOK_SECRET, &other_body),
        ),
        ("t= without v1", format!("t={}", now_unix())),
        ("v1 without t", format!("v1={good}")),
    ]);
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

// ---- Event ids that cannot be forged ------------------------------------------

/// Extra request headers: (name, value), in order.
type Headers = Vec<(&'static str, String)>;

/// Posts `body` with these extra headers (added, never replacing: a name
/// given twice is sent twice).
async fn deliver(p: &Platform, body: &[u8], headers: &[(&str, String)]) -> Reply {
    let mut request = p
        .http
        .post(p.url("/api/payment-webhook"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    Reply::read(request.send().await.expect("gateway reachable")).await
}

/// A delivery with this `X-Signature` and `Webhook-Id`.
async fn deliver_as(p: &Platform, body: &[u8], signature: String, event_id: &str) -> Reply {
    let headers = [
        ("X-Signature", signature),
        ("Webhook-Id", event_id.to_owned()),
    ];
    deliver(p, body, &headers).await
}

/// HMAC-SHA256, computed here with the `hmac` crate, apart from the gateway.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Base64, standard alphabet, padded: written here so that the test does not
/// share the gateway's code (checked against the specification's example in
/// `the_test_signer_matches_the_standard_webhooks_example`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `v1,<base64 of HMAC(key, "<id>.<timestamp>.<body>")>`.
fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("v1,{}", base64(&hmac_sha256(key, &message)))
}

/// The three Standard Webhooks headers of a delivery signed with `key` now.
fn standard(key: &[u8], id: &str, body: &[u8]) -> Headers {
    standard_at(key, id, now_unix(), body)
}

fn standard_at(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Headers {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            standard_signature(key, id, timestamp, body),
        ),
    ]
}

/// A key for `whsec_` secrets, and that secret.
const WHSEC_KEY: &[u8] = b"\x8b\x01\xfe-a-key-of-32-random-bytes-\x00\x7f";

fn whsec_secret() -> String {
    format!("whsec_{}", base64(WHSEC_KEY))
}

#[test]
fn the_test_signer_matches_the_standard_webhooks_example() {
    // The example of the Standard Webhooks specification: secret
    // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw (the key is its base64 part).
    let key = [
        0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4, 0x3c, 0x3f, 0x08,
        0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0,
    ];
    assert_eq!(base64(&key), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_eq!(
        standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[tokio::test]
async fn a_replayed_delivery_under_another_events_id_never_drops_that_event() {
    let p = spawn_platform().await;
    let a = with_order(&p).await;
    let b = with_order(&p).await;

    // The processor's genuine delivery for A (original form, no event id);
    // an attacker captures it and replays it under the id of B's next event.
    let for_a = payment(&a, "paid");
    let captured = sign(WEBHOOK_SECRET, &for_a);
    deliver(&p, &for_a, &[("X-Signature", captured.clone())])
        .await
        .expect(200);
    let replay = deliver_as(&p, &for_a, captured, "evt_b_paid").await;
    // A is paid already: the replay changes nothing there.
    replay.expect(200);
    assert_eq!(payment_status_of(&p, &a).await, "paid");

    // B's genuine event then comes with that id: refused with 409 (nothing
    // applied, and the processor is told so), never "200, unpaid".
    let for_b = payment(&b, "paid");
    let genuine = deliver_as(&p, &for_b, sign(WEBHOOK_SECRET, &for_b), "evt_b_paid").await;
    let detail = genuine.problem(409);
    assert!(
        detail.contains("already used for another delivery"),
        "{detail}"
    );
    assert_eq!(payment_status_of(&p, &b).await, "unpaid");
    // Sent again under an id of its own (or signed with Standard Webhooks),
    // it is applied.
    let fresh = deliver_as(&p, &for_b, sign(WEBHOOK_SECRET, &for_b), "evt_b_paid_2").await;
    fresh.expect(200);
    assert_eq!(fresh.json["payment_status"], "paid");

    // The same with the timestamped form, and with a captured delivery for
    // the same order but another status: B2 failed, replayed under the id of
    // B2's later "paid" event.
    let b2 = with_order(&p).await;
    let failed = payment(&b2, "failed");
    let captured = sign_timestamped(WEBHOOK_SECRET, now_unix(), &failed);
    deliver_as(&p, &failed, captured.clone(), "evt_b2_failed")
        .await
        .expect(200);
    deliver_as(&p, &failed, captured, "evt_b2_paid")
        .await
        .expect(200);
    let paid = payment(&b2, "paid");
    let genuine = deliver_as(
        &p,
        &paid,
        sign_timestamped(WEBHOOK_SECRET, now_unix(), &paid),
        "evt_b2_paid",
    )
    .await;
    genuine.problem(409);
    assert_eq!(payment_status_of(&p, &b2).await, "failed");

    // An id in the body (signed with the body) reused for another order is
    // refused the same way.
    let c = with_order(&p).await;
    let reply = p
        .signed_webhook(
            &json!({"order_id": c, "payment_status": "paid", "event_id": "evt_b_paid_2"}),
        )
        .await;
    reply.problem(409);
    assert_eq!(payment_status_of(&p, &c).await, "unpaid");
}

#[tokio::test]
async fn standard_webhooks_deliveries_are_accepted() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;

    // One signature, the configured secret used as raw bytes.
    let failed = payment(&order_id, "failed");
    let reply = deliver(
        &p,
        &failed,
        &standard(WEBHOOK_SECRET.as_bytes(), "msg_1", &failed),
    )
    .await;
    reply.expect(200);
    assert_eq!(
        reply.json,
        json!({"message": "Payment status updated successfully", "order_id": order_id, "payment_status": "failed"})
    );

    // Several signatures, one valid: another version, a wrong key, then ours.
    let paid = payment(&order_id, "paid");
    let mut headers = standard(WEBHOOK_SECRET.as_bytes(), "msg_2", &paid);
    let t: i64 = headers[1].1.parse().unwrap();
    headers[2].1 = format!(
        "v1a,c2lnbmVkIHdpdGggZWQyNTUxOQ== {} {}",
        standard_signature(b"a-key-we-do-not-have", "msg_2", t, &paid),
        headers[2].1
    );
    let reply = deliver(&p, &paid, &headers).await;
    reply.expect(200);
    assert_eq!(reply.json["payment_status"], "paid");
    // X-Signature is not looked at when webhook-signature is present.
    let other = with_order(&p).await;
    let body = payment(&other, "paid");
    let mut headers = standard(WEBHOOK_SECRET.as_bytes(), "msg_3", &body);
    headers.push(("X-Signature", "not a signature".into()));
    deliver(&p, &body, &headers).await.expect(200);
}

#[tokio::test]
async fn standard_webhooks_take_whsec_secrets_and_rotation() {
    let p = spawn_platform_with(|config| {
        config.webhook_secret = Some(format!("{}, {WEBHOOK_SECRET}", whsec_secret()));
    })
    .await;
    let first = with_order(&p).await;
    let second = with_order(&p).await;

    // whsec_<base64>: the key is the decoded bytes...
    let body = payment(&first, "paid");
    deliver(&p, &body, &standard(WHSEC_KEY, "msg_whsec", &body))
        .await
        .expect(200);
    // ...not the text of the secret.
    let body = payment(&second, "paid");
    let with_text = standard(whsec_secret().as_bytes(), "msg_text", &body);
    assert_eq!(
        deliver(&p, &body, &with_text).await.problem(401),
        "Invalid signature"
    );
    // The other configured secret (rotation) works too.
    deliver(
        &p,
        &body,
        &standard(WEBHOOK_SECRET.as_bytes(), "msg_rotated", &body),
    )
    .await
    .expect(200);
    // The X-Signature forms keep using every secret as written.
    let third = with_order(&p).await;
    let body = payment(&third, "paid");
    deliver(&p, &body, &[("X-Signature", sign(&whsec_secret(), &body))])
        .await
        .expect(200);
}

#[tokio::test]
async fn standard_webhooks_refusals_are_401() {
    let p = spawn_platform().await;
    let (order_id, body) = with_payment(&p, "paid").await;
    let key = WEBHOOK_SECRET.as_bytes();
    let good = standard(key, "msg_1", &body);
    let without =
        |name: &str| -> Headers { good.iter().filter(|(n, _)| *n != name).cloned().collect() };
    let replaced = |name: &str, value: &str| -> Headers {
        good.iter()
            .map(|(n, v)| {
                (
                    *n,
                    if *n == name {
                        value.to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    };

    let cases: Vec<(&str, Headers, &str)> = vec![
        (
            "no webhook-id",
            without("webhook-id"),
            "Missing webhook-id header",
        ),
        (
            "no webhook-timestamp",
            without("webhook-timestamp"),
            "Missing webhook-timestamp header",
        ),
        (
            "an empty webhook-signature",
            replaced("webhook-signature", ""),
            "Missing webhook-signature header",
        ),
        (
            "wrong key",
            standard(b"another-secret", "msg_1", &body),
            "Invalid signature",
        ),
        (
            "stale timestamp",
            standard_at(key, "msg_1", now_unix() - 301, &body),
            "Invalid signature",
        ),
        (
            "future timestamp",
            standard_at(key, "msg_1", now_unix() + 301, &body),
            "Invalid signature",
        ),
        (
            "tampered id (signed for msg_1)",
            replaced("webhook-id", "msg_2"),
            "Invalid signature",
        ),
        (
            "tampered timestamp",
            replaced(
                "webhook-timestamp",
                &(good[1].1.parse::<i64>().unwrap() - 1).to_string(),
            ),
            "Invalid signature",
        ),
        (
            "over another body",
            standard(key, "msg_1", &payment(&order_id, "failed")),
            "Invalid signature",
        ),
        (
            "no v1 signature",
            replaced("webhook-signature", "v1a,c2lnbmF0dXJl"),
            "Invalid signature",
        ),
        (
            "not base64",
            replaced("webhook-signature", "v1,not*base64"),
            "Invalid signature",
        ),
        (
            "a timestamp that is not unix seconds",
            replaced("webhook-timestamp", "2026-01-01T00:00:00Z"),
            "Invalid signature",
        ),
        (
            "two webhook-signature headers",
            [good.clone(), vec![good[2].clone()]].concat(),
            "Invalid signature",
        ),
        (
            "two webhook-id headers",
            [good.clone(), vec![("webhook-id", "msg_9".to_owned())]].concat(),
            "Invalid signature",
        ),
        (
            "a valid X-Signature does not rescue a bad webhook-signature",
            [
                replaced("webhook-signature", "v1,AAAA"),
                vec![("X-Signature", sign(WEBHOOK_SECRET, &body))],
            ]
            .concat(),
            "Invalid signature",
        ),
    ];
    for (what, headers, expected) in cases {
        let reply = deliver(&p, &body, &headers).await;
        assert_eq!(reply.problem(401), expected, "{what}");
    }
    assert_eq!(
        payment_status_of(&p, &order_id).await,
        "unpaid",
        "nothing applied"
    );
    deliver(&p, &body, &good).await.expect(200);
}

#[tokio::test]
async fn the_same_event_delivered_twice_is_applied_once() {
    let p = spawn_platform().await;
    let order_id = with_order(&p).await;
    let key = WEBHOOK_SECRET.as_bytes();

    // msg_failed, delivered twice exactly as sent: 200 both times.
    let failed = payment(&order_id, "failed");
    let first_delivery = standard(key, "msg_failed", &failed);
    for _ in 0..2 {
        let reply = deliver(&p, &failed, &first_delivery).await;
        reply.expect(200);
        assert_eq!(reply.json["payment_status"], "failed");
    }
    // msg_paid is applied...
    let paid = payment(&order_id, "paid");
    deliver(&p, &paid, &standard(key, "msg_paid", &paid))
        .await
        .expect(200);
    // ...and msg_failed retried later (re-signed, as processors do) is still
    // the same event: 200, nothing applied (applying it would be refused,
    // paid is final).
    let retry = deliver(&p, &failed, &standard(key, "msg_failed", &failed)).await;
    retry.expect(200);
    assert_eq!(retry.json["payment_status"], "paid");
    assert_eq!(payment_status_of(&p, &order_id).await, "paid");
    // A new event with that status is judged by the rules.
    deliver(&p, &failed, &standard(key, "msg_failed_again", &failed))
        .await
        .problem(400);
}
