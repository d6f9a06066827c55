//! `POST /api/payment-webhook`: payment results from the payment processor.
//!
//! Order of checks: body size (413), signature over the raw bytes (401), then
//! the body (400), then the order service (404 / 400 / 409).
//!
//! Signature forms (see `crate::security::webhook`): a `webhook-signature`
//! header selects the Standard Webhooks form, whose `webhook-id` is signed;
//! otherwise `X-Signature` (plain or timestamped), whose `Webhook-Id`
//! header is not signed. Either way the event id only ever deduplicates a
//! repeat of the same delivery: the order service records the order and the
//! payment status each event id came with, and answers 409 to the same id
//! carrying another order or status, never 200 without applying it.

use axum::{Json, extract::State, http::HeaderMap};
use proto::order::v1 as pb;

use crate::{
    http::{
        AppState,
        error::{ApiError, listed},
        extract::RawBody,
        problems::Kind,
    },
    input::{BodyFailure, read_body},
    models::{EVENT_ID_MAX_CHARS, PaymentStatus, PaymentWebhook, WebhookAck},
    security::webhook::{EVENT_ID_HEADER, verify},
    upstream::{Services, Subject, rpc},
};

/// Apply a payment result to an order.
///
/// Signed in one of three forms (every configured secret is accepted, for
/// rotation; timestamps are refused more than WEBHOOK_TOLERANCE, 300 s by
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
        (status = 400, description = "Empty body, invalid JSON, a field of the wrong type, payment_status not paid/failed \
                                      (`MALFORMED_BODY`); the order is not pending (`NOT_PENDING`, `detail` mentions `pending`); \
                                      the order was canceled unpaid past the payment timeout, the payment must be refunded \
                                      (`ORDER_EXPIRED`); a paid order told failed (`PAYMENT_FINAL`); a malformed `Webhook-Id` \
                                      (`BAD_REQUEST`)"),
        (status = 401, description = "`Missing X-Signature header` / `Missing webhook-id header` / `Missing webhook-timestamp header` (`SIGNATURE_MISSING`) / `Invalid signature` (`SIGNATURE_INVALID`)"),
        (status = 404, description = "`Order with id {id} not found` (`ORDER_NOT_FOUND`)"),
        (status = 409, description = "The event id was already used for another delivery (another order or payment status); nothing was applied (`EVENT_ID_REUSED`)"),
        (status = 413, description = "Body over 64 KiB"),
    )
)]
pub async fn payment_webhook(
    State(state): State<AppState>,
    services: Services,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    let signed_id = verify(&state.verifier, &state.metrics, &headers, &body)?;

    // The webhook's contract answers schema problems with 400.
    let invalid =
        |detail: String| ApiError::MalformedBody(format!("Invalid webhook payload: {detail}"));
    let payload: PaymentWebhook = read_body(&body).map_err(|failure| match failure {
        BodyFailure::Unreadable(message) => invalid(message),
        BodyFailure::Invalid(violations) => invalid(listed(&violations)),
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
    let order = services
        .call(
            rpc::APPLY_PAYMENT,
            request,
            Subject::Order(payload.order_id),
        )
        .await
        .map_err(|error| match error {
            ApiError::Validation(violations) | ApiError::IdempotencyKeyReused(violations) => {
                invalid(listed(&violations))
            }
            ApiError::Refused {
                kind: Kind::EventIdReused,
                ref detail,
                ..
            } => {
                // Either the processor reused an id, or someone replayed a
                // captured delivery under another event's id: worth a look.
                tracing::warn!(
                    order_id = %payload.order_id,
                    signed_id,
                    %detail,
                    "payment webhook refused: event id reused"
                );
                error
            }
            other => other,
        })?;
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
