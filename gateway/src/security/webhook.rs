//! A payment webhook delivery's signature, read from its headers and checked
//! over the raw body before anything else looks at it.
//!
//! A `webhook-signature` header selects the Standard Webhooks form, whose
//! `webhook-id` is signed; otherwise `X-Signature` (plain or timestamped),
//! whose `Webhook-Id` header is not signed. A header that must be single and
//! comes twice is ambiguous, so it is refused. Every refusal is a 401,
//! logged and counted by reason (`webhook_refusals_total`).

use axum::http::HeaderMap;

use super::signature::{SignatureError, StandardHeaders, Verifier};
use crate::{http::error::ApiError, metrics::Metrics};

pub const SIGNATURE_HEADER: &str = "x-signature";
/// The event id: signed in the Standard Webhooks form, not with `X-Signature`.
pub const EVENT_ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// 401 unless the raw body carries a valid signature. `Ok(true)` when the
/// form signs the event id (Standard Webhooks), for the logs.
pub fn verify(
    verifier: &Verifier,
    metrics: &Metrics,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<bool, ApiError> {
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
            verifier.verify_standard(headers, body, now)
        })
    } else {
        // Two X-Signature headers are refused as malformed.
        single(headers, SIGNATURE_HEADER, "X-Signature")
            .map_err(|_| SignatureError::Malformed)
            .and_then(|header| verifier.verify(header, body, now))
    };
    result.map(|()| standard).map_err(|error| {
        tracing::warn!(reason = %error, "payment webhook refused");
        metrics.webhook_refused(error.label());
        match error {
            SignatureError::Missing => {
                ApiError::SignatureMissing("Missing X-Signature header".into())
            }
            SignatureError::MissingStandardHeader(name) => {
                ApiError::SignatureMissing(format!("Missing {name} header"))
            }
            _ => ApiError::SignatureInvalid("Invalid signature".into()),
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
