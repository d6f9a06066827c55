//! The one place where a gRPC status from a service becomes an HTTP answer.
//!
//! Business refusals are worded from the status's `ErrorInfo` (reason and
//! metadata) with the contract's key phrases; field violations keep naming
//! the field as the client sent it; a service that is down or lost mid-call
//! is 503, one that misses its deadline 504; anything else is 500, logged
//! with its cause and answered generically.

use std::collections::HashMap;

use proto::errors::{self, Violation, meta, reason};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::http::error::ApiError;

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
            Code::NotFound => Self::NotFound(not_found_detail(&status, reason, metadata, subject)),
            Code::InvalidArgument => {
                let mut violations = errors::violations(&status);
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
                Self::Validation(violations)
            }
            Code::FailedPrecondition => Self::BadRequest(match reason {
                reason::INSUFFICIENT_STOCK => format!(
                    "Insufficient stock for product '{}'. Available: {}, Requested: {}",
                    get(meta::PRODUCT_NAME),
                    get(meta::AVAILABLE),
                    get(meta::REQUESTED)
                ),
                reason::PRODUCT_REFERENCED => {
                    "Cannot delete product that is referenced in existing orders".into()
                }
                reason::INVALID_TRANSITION => format!(
                    "Cannot transition order status from '{}' to '{}'",
                    get(meta::FROM),
                    get(meta::TO)
                ),
                reason::ORDER_NOT_PENDING => format!(
                    "Payment status can only be updated for pending orders (order status is '{}')",
                    get(meta::STATUS)
                ),
                reason::INVALID_PAYMENT_TRANSITION => format!(
                    "Cannot change payment status from '{}' to '{}'",
                    get(meta::FROM),
                    get(meta::TO)
                ),
                // The services word their refusals for clients; an unknown
                // reason still says what the service said.
                _ => status.message().to_owned(),
            }),
            Code::AlreadyExists | Code::Aborted => Self::Conflict(status.message().to_owned()),
            Code::Unavailable | Code::ResourceExhausted => {
                tracing::warn!(code = ?status.code(), message = status.message(), "backend unavailable");
                Self::Unavailable("A backend service is unavailable, please retry later".into())
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
                Self::Unavailable("A backend service is unavailable, please retry later".into())
            }
            code => Self::Internal(format!("backend answered {code:?}: {}", status.message())),
        }
    }
}

fn not_found_detail(
    status: &Status,
    reason: &str,
    metadata: Option<&HashMap<String, String>>,
    subject: Subject,
) -> String {
    if reason == reason::PRODUCTS_NOT_FOUND {
        let ids = metadata
            .and_then(|m| m.get(meta::PRODUCT_IDS))
            .map(|ids| ids.split(',').collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        return format!("Products not found: [{ids}]");
    }
    match subject {
        Subject::Product(id) => format!("Product with id {id} not found"),
        Subject::Order(id) => format!("Order with id {id} not found"),
        Subject::None => match (reason, metadata.and_then(|m| m.get(meta::ID))) {
            (reason::PRODUCT_NOT_FOUND, Some(id)) => format!("Product with id {id} not found"),
            (reason::ORDER_NOT_FOUND, Some(id)) => format!("Order with id {id} not found"),
            _ if status.message().contains("not found") => status.message().to_owned(),
            _ => "Resource not found".into(),
        },
    }
}

#[cfg(test)]
mod tests;
