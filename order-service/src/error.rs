//! The service's one error type, and its mapping to `tonic::Status` in one
//! place (the stock refusals' in [`refusal`]). Domain refusals carry the
//! platform's reasons and metadata (`proto::errors`); the unexpected is logged
//! with its cause and answered with a generic message, so no SQL text or
//! address ever reaches a caller.

pub mod refusal;

use proto::errors::{self, Violation, meta, reason};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::domain::{
    self, CancelReason, OrderStatus, Refusal,
    payment::{EventIdReused, InvalidPaymentTransition, NotPending, PaymentRefused},
    status::InvalidTransition,
};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid request")]
    InvalidArgument(Vec<Violation>),

    #[error("idempotency key already used with a different request")]
    IdempotencyKeyMismatch,

    #[error("Order with id {0} not found")]
    NotFound(Uuid),

    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),

    #[error(transparent)]
    NotPending(#[from] NotPending),

    /// A payment for an order the payment timeout canceled.
    #[error(transparent)]
    Expired(PaymentRefused),

    /// WatchOrderEvents asked to resume from a sequence the log cannot
    /// continue: pruned by the retention, or never given.
    #[error("{0}")]
    EventsOutOfRange(String),

    #[error(transparent)]
    InvalidPaymentTransition(#[from] InvalidPaymentTransition),

    #[error(transparent)]
    EventIdReused(#[from] EventIdReused),

    /// The catalog definitely took no stock; replayed from the order for an
    /// idempotent retry.
    #[error("refused: {}", .0.message)]
    Refused(Refusal),

    /// The catalog could not be reached or did not answer in time; nothing
    /// stays reserved (the saga released, or the reconciler will).
    #[error("the catalog service is unavailable")]
    CatalogUnavailable,

    /// Another request with the same idempotency key has not finished yet.
    #[error("a request with this idempotency key is still in progress")]
    InProgress,

    #[error("the order database is unavailable")]
    DatabaseUnavailable(#[source] sqlx::Error),

    #[error("unexpected error")]
    Internal(#[source] anyhow::Error),
}

impl OrderError {
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// A request that breaks the domain's rules, field by field.
    pub fn invalid(fields: Vec<domain::Violation>) -> Self {
        Self::InvalidArgument(
            fields
                .into_iter()
                .map(|field| Violation::new(field.field, field.message))
                .collect(),
        )
    }
}

impl From<PaymentRefused> for OrderError {
    fn from(refused: PaymentRefused) -> Self {
        match refused {
            PaymentRefused::NotPending(not_pending) => Self::NotPending(not_pending),
            PaymentRefused::Expired => Self::Expired(refused),
        }
    }
}

impl From<platform::group_commit::Stopped> for OrderError {
    fn from(stopped: platform::group_commit::Stopped) -> Self {
        Self::internal(stopped)
    }
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        // One classifier for both services: callers tell retryable from broken.
        if platform::db::is_unavailable(&error) {
            return Self::DatabaseUnavailable(error);
        }
        // Validation runs first, so these are a last line of defence; mapped by
        // constraint name (migrations/order), never by message text.
        let constraint = match &error {
            sqlx::Error::Database(db) => db.constraint(),
            _ => None,
        };
        let violation = match constraint {
            Some("orders_customer_id_positive") => {
                Some(Violation::new("customer_id", "must be greater than 0"))
            }
            Some("order_items_quantity_positive") => Some(Violation::new(
                "items",
                "every quantity must be greater than 0",
            )),
            Some("idempotency_keys_key_length") => Some(Violation::new(
                "idempotency_key",
                "must be 1 to 255 characters",
            )),
            _ => None,
        };
        match violation {
            Some(violation) => Self::InvalidArgument(vec![violation]),
            None => Self::Internal(error.into()),
        }
    }
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        // The domain refusals' messages are their `Display` (one wording).
        let message = error.to_string();
        match error {
            OrderError::InvalidArgument(violations) => errors::invalid_argument(&violations),
            OrderError::IdempotencyKeyMismatch => errors::invalid_argument(&[Violation::new(
                "idempotency_key",
                "was already used with a different request; use a new key for a new order",
            )]),
            OrderError::NotFound(id) => errors::with_info(
                Code::NotFound,
                message,
                reason::ORDER_NOT_FOUND,
                [(meta::ID, id.to_string())],
            ),
            OrderError::InvalidTransition(error) => {
                refused_move(message, reason::INVALID_TRANSITION, error.from, error.to)
            }
            OrderError::NotPending(error) => errors::with_info(
                Code::FailedPrecondition,
                message,
                reason::ORDER_NOT_PENDING,
                [(meta::STATUS, error.status.to_string())],
            ),
            OrderError::Expired(_) => errors::with_info(
                Code::FailedPrecondition,
                message,
                reason::ORDER_EXPIRED,
                [
                    (meta::STATUS, OrderStatus::Canceled.to_string()),
                    (
                        meta::CANCEL_REASON,
                        CancelReason::PaymentTimeout.to_string(),
                    ),
                ],
            ),
            OrderError::EventsOutOfRange(_) => Status::out_of_range(message),
            OrderError::InvalidPaymentTransition(error) => refused_move(
                message,
                reason::INVALID_PAYMENT_TRANSITION,
                error.from,
                error.to,
            ),
            // A definite refusal with its own reason; the gateway answers
            // ALREADY_EXISTS with 409 and this message.
            OrderError::EventIdReused(_) => errors::with_info(
                Code::AlreadyExists,
                message,
                reason::EVENT_ID_REUSED,
                std::iter::empty(),
            ),
            OrderError::Refused(refusal) => refusal::to_status(&refusal),
            OrderError::CatalogUnavailable => Status::unavailable(
                "the catalog service is unavailable; no stock was taken, retry later",
            ),
            OrderError::InProgress => Status::unavailable(
                "a request with this idempotency key is still in progress; retry later",
            ),
            OrderError::DatabaseUnavailable(source) => {
                tracing::warn!(error = %source, "order database unavailable");
                Status::unavailable("the order database is unavailable; retry later")
            }
            OrderError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "unexpected error");
                Status::internal("internal error")
            }
        }
    }
}

/// FAILED_PRECONDITION for a move a state machine does not allow.
fn refused_move(message: String, reason: &str, from: impl ToString, to: impl ToString) -> Status {
    errors::with_info(
        Code::FailedPrecondition,
        message,
        reason,
        [(meta::FROM, from.to_string()), (meta::TO, to.to_string())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PaymentStatus;

    #[test]
    fn not_found_names_the_order() {
        let id = Uuid::nil();
        let status = Status::from(OrderError::NotFound(id));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), format!("Order with id {id} not found"));
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::ORDER_NOT_FOUND);
        assert_eq!(metadata[meta::ID], id.to_string());
    }

    #[test]
    fn invalid_transition_carries_from_and_to() {
        let status = Status::from(OrderError::from(InvalidTransition {
            from: OrderStatus::Completed,
            to: OrderStatus::Canceled,
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            "Cannot transition order status from 'completed' to 'canceled'"
        );
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::INVALID_TRANSITION);
        assert_eq!(
            (metadata[meta::FROM].as_str(), metadata[meta::TO].as_str()),
            ("completed", "canceled")
        );
    }

    #[test]
    fn not_pending_mentions_pending() {
        let status = Status::from(OrderError::from(NotPending {
            status: OrderStatus::Canceled,
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("pending"));
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::ORDER_NOT_PENDING);
        assert_eq!(metadata[meta::STATUS], "canceled");
    }

    #[test]
    fn a_payment_for_an_expired_order_says_so() {
        let status = Status::from(OrderError::from(PaymentRefused::Expired));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("expired"), "{}", status.message());
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::ORDER_EXPIRED);
        assert_eq!(metadata[meta::CANCEL_REASON], "payment_timeout");
    }

    #[test]
    fn invalid_payment_transition_has_its_reason() {
        let status = Status::from(OrderError::from(InvalidPaymentTransition {
            from: PaymentStatus::Paid,
            to: PaymentStatus::Failed,
        }));
        let (reason, _) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::INVALID_PAYMENT_TRANSITION);
    }

    #[test]
    fn a_reused_event_id_is_already_exists() {
        let status = Status::from(OrderError::from(EventIdReused {
            event_id: "evt".into(),
        }));
        assert_eq!(status.code(), Code::AlreadyExists);
        assert!(status.message().contains("'evt' was already used"));
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::EVENT_ID_REUSED);
        assert!(metadata.is_empty());
    }

    #[test]
    fn a_key_mismatch_is_a_field_violation() {
        let status = Status::from(OrderError::IdempotencyKeyMismatch);
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = errors::violations(&status);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "idempotency_key");
    }

    #[test]
    fn the_unexpected_is_answered_generically() {
        let status = Status::from(OrderError::internal(anyhow::anyhow!(
            "relation \"orders\" does not exist at 10.0.0.3"
        )));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let error = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            Status::from(OrderError::from(error)).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(OrderError::from(sqlx::Error::PoolTimedOut)).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(OrderError::from(sqlx::Error::WorkerCrashed)).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(OrderError::from(sqlx::Error::RowNotFound)).code(),
            Code::Internal
        );
    }
}
