//! The error vocabulary shared by the services (who write it into a
//! `tonic::Status` as rich details) and the gateway (who reads it back to build
//! the REST contract's messages). Reasons are stable identifiers: clients may
//! match on them, so they never change meaning.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every error this platform raises.
pub const DOMAIN: &str = "ecommerce.platform";

/// `ErrorInfo.reason` values.
pub mod reason {
    pub const PRODUCT_NOT_FOUND: &str = "PRODUCT_NOT_FOUND";
    /// Metadata: `product_ids`, comma-separated, every missing id.
    pub const PRODUCTS_NOT_FOUND: &str = "PRODUCTS_NOT_FOUND";
    /// Metadata: `product_id`, `product_name`, `available`, `requested`.
    pub const INSUFFICIENT_STOCK: &str = "INSUFFICIENT_STOCK";
    pub const PRODUCT_REFERENCED: &str = "PRODUCT_REFERENCED";
    pub const RESERVATION_NOT_FOUND: &str = "RESERVATION_NOT_FOUND";
    pub const RESERVATION_RELEASED: &str = "RESERVATION_RELEASED";
    pub const RESERVATION_COMMITTED: &str = "RESERVATION_COMMITTED";
    pub const RESERVATION_MISMATCH: &str = "RESERVATION_MISMATCH";
    pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
    /// Metadata: `from`, `to`.
    pub const INVALID_TRANSITION: &str = "INVALID_TRANSITION";
    /// Metadata: `status` (the order's current status).
    pub const ORDER_NOT_PENDING: &str = "ORDER_NOT_PENDING";
    /// Metadata: `from`, `to`.
    pub const INVALID_PAYMENT_TRANSITION: &str = "INVALID_PAYMENT_TRANSITION";
    /// ALREADY_EXISTS: a payment event id already recorded for another order
    /// or another payment status; the delivery was not applied.
    pub const EVENT_ID_REUSED: &str = "EVENT_ID_REUSED";
    /// FAILED_PRECONDITION: a payment for an order that was canceled because
    /// it stayed unpaid past the payment timeout; the processor refunds.
    /// Metadata: `status` (`canceled`), `cancel_reason` (`payment_timeout`).
    pub const ORDER_EXPIRED: &str = "ORDER_EXPIRED";
    /// FAILED_PRECONDITION: a conditional product write (`expected_version`)
    /// whose version is no longer the product's. Metadata: `current_version`.
    pub const VERSION_MISMATCH: &str = "VERSION_MISMATCH";
}

/// `ErrorInfo.metadata` keys.
pub mod meta {
    pub const ID: &str = "id";
    pub const PRODUCT_IDS: &str = "product_ids";
    pub const PRODUCT_ID: &str = "product_id";
    pub const PRODUCT_NAME: &str = "product_name";
    pub const AVAILABLE: &str = "available";
    pub const REQUESTED: &str = "requested";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const STATUS: &str = "status";
    pub const CANCEL_REASON: &str = "cancel_reason";
    pub const CURRENT_VERSION: &str = "current_version";
}

/// A status carrying an `ErrorInfo` with this platform's domain.
pub fn with_info<'a>(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: impl IntoIterator<Item = (&'a str, String)>,
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, DOMAIN, metadata),
    )
}

/// One field that failed validation: the field's name as the caller spelled
/// it, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `INVALID_ARGUMENT` with a `BadRequest` listing every violation.
pub fn invalid_argument(violations: &[Violation]) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_bad_request(
        violations
            .iter()
            .map(|v| FieldViolation::new(v.field.clone(), v.message.clone()))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// The `ErrorInfo` of a status, if it carries one: `(reason, metadata)`.
pub fn error_info(status: &Status) -> Option<(String, HashMap<String, String>)> {
    status
        .get_details_error_info()
        .map(|info| (info.reason, info.metadata))
}

/// The field violations of an `INVALID_ARGUMENT` status (empty when it has none).
pub fn violations(status: &Status) -> Vec<Violation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| Violation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_survives_the_round_trip() {
        let status = with_info(
            Code::FailedPrecondition,
            "no stock",
            reason::INSUFFICIENT_STOCK,
            [(meta::AVAILABLE, "3".to_owned())],
        );
        let (reason, metadata) = error_info(&status).unwrap();
        assert_eq!(reason, reason::INSUFFICIENT_STOCK);
        assert_eq!(metadata[meta::AVAILABLE], "3");
    }

    #[test]
    fn violations_survive_the_round_trip() {
        let status = invalid_argument(&[Violation::new("name", "must not be empty")]);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: must not be empty");
        assert_eq!(
            violations(&status),
            vec![Violation::new("name", "must not be empty")]
        );
    }
}
