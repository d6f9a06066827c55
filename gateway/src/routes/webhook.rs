//! `POST /api/payment-webhook`: payment results from the payment processor.
//!
//! Order of checks: body size (413), signature over the raw bytes (401), then
//! the body (400), then the order service (404 / 400 / 409).
//!
//! Signature forms (see `crate::signature`): a `webhook-signature` header
//! selects the Standard Webhooks form, whose `webhook-id` is signed;
//! otherwise `X-Signature` (original or timestamped), whose `Webhook-Id`
//! header is not signed. Either way the event id only ever deduplicates a
//! repeat of the same delivery: the order service records the order and the
//! payment status each event id came with, and answers 409 to the same id
//! carrying another order or status, never 200 without applying it.

use axum::{Json, extract::State, http::HeaderMap};
use proto::order::v1 as pb;

use super::AppState;
use crate::{
    error::{ApiError, Problem, Subject},
    extract::{BodyFailure, RawBody, read_body},
    grpc::{CallContext, rpc},
    models::{EVENT_ID_MAX_CHARS, PaymentStatus, PaymentWebhook, WebhookAck},
    signature::{SignatureError, StandardHeaders},
};

pub const SIGNATURE_HEADER: &str = "x-signature";
/// The event id: signed in the Standard Webhooks form, not with `X-Signature`.
pub const EVENT_ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// Apply a payment result to an order.
///
/// Signed in one of three forms (every configured secret is accepted, for
/// rotation; timestamps are refused more than WEBHOOK_TOLERANCE_SECS, 300 s by
/// default, from the gateway's clock):
/// - `X-Signature: hex(HMAC-SHA256(secret, raw body))`;
/// - `X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`, signing
///   `"<t>." + raw body`;
/// - Standard Webhooks: `webhook-id`, `webhook-timestamp` and
///   `webhook-signature: v1,<base64>[ v1,<base64>]`, signing
///   `"<id>.<timestamp>." + raw body` with the secret's bytes, or for a
///   `whsec_<base64>` secret the decoded key; the event id is signed.
///
/// An event id is remembered with the order and payment status it came
/// with: the same delivery again is a no-op (200); the same id with another
/// order or status is refused (409), never acknowledged without applying.
#[utoipa::path(
    post, path = "/api/payment-webhook", tag = "payments",
    request_body = PaymentWebhook,
    params(
        ("X-Signature" = Option<String>, Header, description = "`<hex>` or `t=<unix seconds>,v1=<hex>[,v1=<hex>]`; required unless the Standard Webhooks headers are sent"),
        ("Webhook-Id" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "The processor's event id (1 to 255 visible ASCII characters); an event delivered twice is applied once. Wins over `event_id` in the body. Signed in the Standard Webhooks form (where it is required), not with `X-Signature`."),
        ("Webhook-Timestamp" = Option<String>, Header, pattern = r"^[0-9]{1,12}$", description = "Standard Webhooks: unix seconds of the signature; required with `Webhook-Signature`"),
        ("Webhook-Signature" = Option<String>, Header, description = "Standard Webhooks: `v1,<base64 of HMAC-SHA256(key, \"<id>.<timestamp>.<body>\")>`, several space-separated, any valid one accepts; other versions are ignored. When present, `X-Signature` is ignored."),
    ),
    responses(
        (status = 200, description = "Applied, or the same status again, or the same event again (idempotent)", body = WebhookAck),
        (status = 400, description = "Empty body, invalid JSON, a field of the wrong type, payment_status not paid/failed; \
                                      the order is not pending (`detail` mentions `pending`); a paid order told failed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`Missing X-Signature header` / `Missing webhook-id header` / `Missing webhook-timestamp header` / `Invalid signature`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`Order with id {id} not found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event id was already used for another delivery (another order or payment status); nothing was applied", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn payment_webhook(
    State(state): State<AppState>,
    ctx: CallContext,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    let signed_id = verify(&state, &headers, &body)?;

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
                ApiError::Conflict(detail) => {
                    // Either the processor reused an id, or someone replayed a
                    // captured delivery under another event's id: worth a look.
                    tracing::warn!(
                        order_id = %payload.order_id,
                        signed_id,
                        %detail,
                        "payment webhook refused: event id reused"
                    );
                    ApiError::Conflict(detail)
                }
                other => other,
            },
        )?;
    let payment_status = PaymentStatus::from_wire(order.payment_status)
        .ok_or_else(|| ApiError::Internal("order service sent an unknown payment status".into()))?;
    tracing::info!(
        order_id = %payload.order_id,
        ?payment_status,
        signed_id,
        "payment webhook applied"
    );
    Ok(Json(WebhookAck {
        message: "Payment status updated successfully",
        order_id: payload.order_id,
        payment_status,
    }))
}

/// 401 unless the raw body carries a valid signature. `Ok(true)` when the
/// form signs the event id (Standard Webhooks), for the logs.
fn verify(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<bool, ApiError> {
    let now = chrono::Utc::now().timestamp();
    // The Standard Webhooks form is chosen by its signature header alone, so
    // that a delivery missing its id or timestamp is refused for it rather
    // than judged by X-Signature.
    let standard = headers.contains_key(STANDARD_SIGNATURE_HEADER);
    let result = if standard {
        single(headers, STANDARD_SIGNATURE_HEADER, "webhook-signature").and_then(|signature| {
            let headers = StandardHeaders {
                id: single(headers, EVENT_ID_HEADER, "webhook-id")?,
                timestamp: single(headers, STANDARD_TIMESTAMP_HEADER, "webhook-timestamp")?,
                signature,
            };
            state.verifier.verify_standard(headers, body, now)
        })
    } else {
        // Two X-Signature headers are refused as malformed (as they always were).
        single(headers, SIGNATURE_HEADER, "X-Signature")
            .map_err(|_| SignatureError::Malformed)
            .and_then(|header| state.verifier.verify(header, body, now))
    };
    result.map(|()| standard).map_err(|error| {
        tracing::warn!(reason = %error, "payment webhook refused");
        state.metrics.webhook_refused(error.label());
        match error {
            SignatureError::Missing => ApiError::Unauthorized("Missing X-Signature header".into()),
            SignatureError::MissingStandardHeader(name) => {
                ApiError::Unauthorized(format!("Missing {name} header"))
            }
            _ => ApiError::Unauthorized("Invalid signature".into()),
        }
    })
}

/// The value of a header that must be single: several are ambiguous, so
/// none is trusted.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &str,
    shown: &'static str,
) -> Result<Option<&'h [u8]>, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(SignatureError::Duplicate(shown));
    }
    Ok(first.map(|value| value.as_bytes()))
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
