//! `POST /api/payment-webhook`: payment results from the payment processor.
//!
//! Order of checks: body size (413), signature over the raw bytes (401), then
//! the body (400), then the order service (404 / 400).

use axum::{Json, extract::State, http::HeaderMap};
use proto::order::v1 as pb;

use super::AppState;
use crate::{
    error::{ApiError, Problem, Subject},
    extract::{BodyFailure, RawBody, read_body},
    grpc::{CallContext, rpc},
    models::{EVENT_ID_MAX_CHARS, PaymentStatus, PaymentWebhook, WebhookAck},
    signature::SignatureError,
};

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const EVENT_ID_HEADER: &str = "webhook-id";

/// Apply a payment result to an order.
///
/// Signed with `X-Signature: hex(HMAC-SHA256(secret, raw body))`, or with the
/// timestamped form `X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`, which
/// signs `"<t>." + raw body` and is refused more than 300 s from the
/// gateway's clock. Every configured secret is accepted (rotation).
#[utoipa::path(
    post, path = "/api/payment-webhook", tag = "payments",
    request_body = PaymentWebhook,
    params(
        ("X-Signature" = String, Header, description = "`<hex>` or `t=<unix seconds>,v1=<hex>[,v1=<hex>]`"),
        ("Webhook-Id" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "The processor's event id (1 to 255 visible ASCII characters); an event delivered twice is applied once. Wins over `event_id` in the body."),
    ),
    responses(
        (status = 200, description = "Applied, or the same status again (idempotent)", body = WebhookAck),
        (status = 400, description = "Empty body, invalid JSON, a field of the wrong type, payment_status not paid/failed; \
                                      the order is not pending (`detail` mentions `pending`); a paid order told failed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`Missing X-Signature header` / `Invalid signature`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`Order with id {id} not found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn payment_webhook(
    State(state): State<AppState>,
    ctx: CallContext,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    verify(&state, &headers, &body)?;

    let payload: PaymentWebhook = read_body(&body).map_err(|failure| {
        ApiError::BadRequest(match failure {
            BodyFailure::Unreadable(message) => format!("Invalid webhook payload: {message}"),
            BodyFailure::Invalid(violations) => {
                let listed: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.message))
                    .collect();
                format!("Invalid webhook payload: {}", listed.join("; "))
            }
        })
    })?;
    let event_id = match event_id_header(&headers)? {
        Some(id) => Some(id),
        None => payload.event_id.clone(),
    };

    let request = pb::ApplyPaymentRequest {
        order_id: payload.order_id.to_string(),
        payment_status: payload.payment_status.as_status().to_wire() as i32,
        event_id,
    };
    let mut client = state.backends.orders();
    let order = state
        .backends
        .call(
            rpc::APPLY_PAYMENT,
            client.apply_payment(state.backends.request(request, &ctx)),
        )
        .await
        .map_err(
            |status| match ApiError::from_grpc(status, Subject::Order(payload.order_id)) {
                // The webhook's contract answers schema problems with 400.
                ApiError::Validation(violations) => {
                    let listed: Vec<String> = violations
                        .iter()
                        .map(|v| format!("{}: {}", v.field, v.message))
                        .collect();
                    ApiError::BadRequest(format!("Invalid webhook payload: {}", listed.join("; ")))
                }
                other => other,
            },
        )?;
    let payment_status = PaymentStatus::from_wire(order.payment_status)
        .ok_or_else(|| ApiError::Internal("order service sent an unknown payment status".into()))?;
    tracing::info!(order_id = %payload.order_id, ?payment_status, "payment webhook applied");
    Ok(Json(WebhookAck {
        message: "Payment status updated successfully",
        order_id: payload.order_id,
        payment_status,
    }))
}

/// 401 unless the raw body carries a valid signature.
fn verify(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    let first = values.next();
    let result = if values.next().is_some() {
        // Two signature headers: ambiguous, so neither is trusted.
        Err(SignatureError::Malformed)
    } else {
        let now = chrono::Utc::now().timestamp();
        state
            .verifier
            .verify(first.map(|v| v.as_bytes()), body, now)
    };
    result.map_err(|error| {
        tracing::warn!(reason = %error, "payment webhook refused");
        state.metrics.webhook_refused(error.label());
        match error {
            SignatureError::Missing => ApiError::Unauthorized("Missing X-Signature header".into()),
            _ => ApiError::Unauthorized("Invalid signature".into()),
        }
    })
}

/// The `Webhook-Id` header, if sent: 1 to 255 visible ASCII characters.
fn event_id_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(EVENT_ID_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|id| {
            !id.is_empty()
                && id.len() <= EVENT_ID_MAX_CHARS
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(|id| Some(id.to_owned()))
        .ok_or_else(|| {
            ApiError::BadRequest("Webhook-Id must be 1 to 255 visible ASCII characters".into())
        })
}
