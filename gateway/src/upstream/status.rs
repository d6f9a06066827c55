//! The one place where a gRPC status from a service becomes an HTTP answer.
//!
//! Business refusals are worded from the status's `ErrorInfo` (reason and
//! metadata) with the contract's key phrases, and typed by their reason
//! (each known reason is one [`Kind`] of problem, so clients match on its
//! `code` rather than on the words); field violations keep naming the field
//! as the client sent it; a service that is down or lost mid-call is 503,
//! one that misses its deadline 504; anything else is 500, logged with its
//! cause and answered generically.

use std::collections::HashMap;

use proto::errors::{self, Violation, meta, reason};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::http::{error::ApiError, problems::Kind};

/// What a handler was asking for, so a bare NOT_FOUND can be worded as the
/// contract words it ("Product with id {id} not found").
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Product(Uuid),
    Order(Uuid),
    None,
}

impl ApiError {
    /// Maps a gRPC status from a backend, in the one place that does so.
    pub fn from_grpc(status: Status, subject: Subject) -> Self {
        let info = errors::error_info(&status);
        let (reason, metadata) = match &info {
            Some((reason, metadata)) => (reason.as_str(), Some(metadata)),
            None => ("", None),
        };
        let get = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .map(String::as_str)
                .unwrap_or("?")
        };
        match status.code() {
            Code::NotFound => not_found(&status, reason, metadata, subject),
            Code::InvalidArgument => {
                let mut violations = errors::violations(&status);
                // The gateway checks the key's form before calling, so the
                // only violation the order service reports on the key is
                // its reuse with another body (no reason travels with a
                // field violation, hence judged by the field alone).
                let key_reused = !violations.is_empty()
                    && violations.iter().all(|v| v.field == "idempotency_key");
                for violation in &mut violations {
                    // Name each field as the client sent it: the key travels
                    // in a header, and an order's lines are `products` in
                    // the REST body (`items` on gRPC).
                    if violation.field == "idempotency_key" {
                        violation.field = "Idempotency-Key".into();
                    } else if let Some(rest) = violation.field.strip_prefix("items") {
                        violation.field = format!("products{rest}");
                    }
                }
                if violations.is_empty() {
                    violations.push(Violation::new("request", status.message()));
                }
                if key_reused {
                    Self::IdempotencyKeyReused(violations)
                } else {
                    Self::Validation(violations)
                }
            }
            Code::FailedPrecondition => match reason {
                reason::INSUFFICIENT_STOCK => Self::refused(
                    Kind::InsufficientStock,
                    format!(
                        "Insufficient stock for product '{}'. Available: {}, Requested: {}",
                        get(meta::PRODUCT_NAME),
                        get(meta::AVAILABLE),
                        get(meta::REQUESTED)
                    ),
                ),
                reason::PRODUCT_REFERENCED => Self::refused(
                    Kind::ProductReferenced,
                    "Cannot delete product that is referenced in existing orders",
                ),
                reason::INVALID_TRANSITION => Self::refused(
                    Kind::InvalidTransition,
                    format!(
                        "Cannot transition order status from '{}' to '{}'",
                        get(meta::FROM),
                        get(meta::TO)
                    ),
                ),
                reason::ORDER_NOT_PENDING => Self::refused(
                    Kind::NotPending,
                    format!(
                        "Payment status can only be updated for pending orders (order status is '{}')",
                        get(meta::STATUS)
                    ),
                ),
                // Paid is final: the only moves the payment machine refuses
                // are out of `paid` (and back to `unpaid`, which no webhook
                // can ask for).
                reason::INVALID_PAYMENT_TRANSITION => Self::refused(
                    Kind::PaymentFinal,
                    format!(
                        "Cannot change payment status from '{}' to '{}'",
                        get(meta::FROM),
                        get(meta::TO)
                    ),
                ),
                // Worded here, not taken from the service's message, so the
                // contract's words cannot drift with the service.
                reason::ORDER_EXPIRED => Self::refused(
                    Kind::OrderExpired,
                    "Order expired: it was canceled because it was not paid in time; the payment \
                     must be refunded",
                ),
                reason::VERSION_MISMATCH => Self::PreconditionFailed(format!(
                    "The product has changed since it was read (current version: {}); read it \
                     again and retry",
                    get(meta::CURRENT_VERSION)
                )),
                // The services word their refusals for clients; an unknown
                // reason still says what the service said.
                _ => Self::BadRequest(status.message().to_owned()),
            },
            Code::AlreadyExists | Code::Aborted => match reason {
                reason::EVENT_ID_REUSED => {
                    Self::refused(Kind::EventIdReused, status.message().to_owned())
                }
                _ => Self::Conflict(status.message().to_owned()),
            },
            Code::Unavailable | Code::ResourceExhausted => {
                tracing::warn!(code = ?status.code(), message = status.message(), "backend unavailable");
                backend_unavailable()
            }
            Code::DeadlineExceeded => Self::Timeout,
            // tonic reports its own client-side timeout as CANCELLED.
            Code::Cancelled if status.message().contains("Timeout expired") => Self::Timeout,
            // A connection lost mid-call (the service died, or the network
            // cut it) is reported by tonic itself, as UNKNOWN "transport
            // error" or as CANCELLED "connection closed", with the transport
            // error as its source. A status decoded from a service's answer
            // never has a source, so a real UNKNOWN from a service still
            // means 500.
            Code::Unknown | Code::Cancelled if std::error::Error::source(&status).is_some() => {
                tracing::warn!(
                    message = status.message(),
                    "connection to a backend lost mid-call"
                );
                backend_unavailable()
            }
            code => Self::Internal(format!("backend answered {code:?}: {}", status.message())),
        }
    }
}

/// 503 (with `Retry-After`, as every 503): the backend's own words stay in
/// the log, since they may name addresses.
fn backend_unavailable() -> ApiError {
    ApiError::Unavailable("A backend service is unavailable, please retry later".into())
}

/// A NOT_FOUND as the contract words it, typed by what was missing: the
/// products of an order (every id, also as `product_ids`), the product or
/// order the handler asked for, or else what the reason names.
fn not_found(
    status: &Status,
    reason: &str,
    metadata: Option<&HashMap<String, String>>,
    subject: Subject,
) -> ApiError {
    if reason == reason::PRODUCTS_NOT_FOUND {
        let listed = metadata.and_then(|m| m.get(meta::PRODUCT_IDS));
        let detail = listed
            .map(|ids| ids.split(',').collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let ids = listed
            .map(|ids| {
                ids.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return ApiError::Refused {
            kind: Kind::ProductsNotFound,
            detail: format!("Products not found: [{detail}]"),
            product_ids: Some(ids),
        };
    }
    let product = |id: &dyn std::fmt::Display| {
        ApiError::refused(
            Kind::ProductNotFound,
            format!("Product with id {id} not found"),
        )
    };
    let order = |id: &dyn std::fmt::Display| {
        ApiError::refused(Kind::OrderNotFound, format!("Order with id {id} not found"))
    };
    match subject {
        Subject::Product(id) => product(&id),
        Subject::Order(id) => order(&id),
        Subject::None => match (reason, metadata.and_then(|m| m.get(meta::ID))) {
            (reason::PRODUCT_NOT_FOUND, Some(id)) => product(id),
            (reason::ORDER_NOT_FOUND, Some(id)) => order(id),
            _ if status.message().contains("not found") => {
                ApiError::NotFound(status.message().to_owned())
            }
            _ => ApiError::NotFound("Resource not found".into()),
        },
    }
}

#[cfg(test)]
mod tests;
