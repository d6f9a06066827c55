//! The catalog's one error type. Variants say what went wrong in the domain;
//! the one `From<CatalogError> for Status` below is the only place that
//! decides what a caller sees. The unexpected is logged with its cause and
//! answered with a generic message.

use proto::errors::{self, Violation, meta, reason};
use tonic::{Code, Status};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("product {0} not found")]
    ProductNotFound(Uuid),
    #[error("products not found: {0:?}")]
    ProductsNotFound(Vec<Uuid>),
    #[error("insufficient stock for product {product_id}")]
    InsufficientStock {
        product_id: Uuid,
        product_name: String,
        available: i32,
        requested: i64,
    },
    #[error("product {0} is referenced by reservations")]
    ProductReferenced(Uuid),
    #[error("reservation {0} not found")]
    ReservationNotFound(Uuid),
    #[error("reservation {0} was released")]
    ReservationReleased(Uuid),
    #[error("reservation {0} is committed")]
    ReservationCommitted(Uuid),
    #[error("reservation {0} exists with other items")]
    ReservationMismatch(Uuid),
    /// The caller went away before its queued reservation was decided: left
    /// out, nothing taken (nobody hears this answer).
    #[error("the caller went away before the reservation was decided")]
    Abandoned,
    /// The database cannot be reached (or is shutting down): worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CatalogError {
    pub fn invalid(violation: Violation) -> Self {
        Self::Invalid(vec![violation])
    }
}

impl From<sqlx::Error> for CatalogError {
    fn from(error: sqlx::Error) -> Self {
        // One classifier for both services: callers tell retryable from broken.
        if platform::db::is_unavailable(&error) {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<CatalogError> for Status {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(violations) => errors::invalid_argument(&violations),
            CatalogError::ProductNotFound(id) => errors::with_info(
                Code::NotFound,
                format!("Product with id {id} not found"),
                reason::PRODUCT_NOT_FOUND,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::ProductsNotFound(ids) => {
                let listed: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                errors::with_info(
                    Code::NotFound,
                    format!("Products not found: [{}]", listed.join(", ")),
                    reason::PRODUCTS_NOT_FOUND,
                    [(meta::PRODUCT_IDS, listed.join(","))],
                )
            }
            CatalogError::InsufficientStock {
                product_id,
                product_name,
                available,
                requested,
            } => errors::with_info(
                Code::FailedPrecondition,
                format!(
                    "Insufficient stock for product '{product_name}'. Available: {available}, Requested: {requested}"
                ),
                reason::INSUFFICIENT_STOCK,
                [
                    (meta::PRODUCT_ID, product_id.to_string()),
                    (meta::PRODUCT_NAME, product_name),
                    (meta::AVAILABLE, available.to_string()),
                    (meta::REQUESTED, requested.to_string()),
                ],
            ),
            CatalogError::ProductReferenced(id) => errors::with_info(
                Code::FailedPrecondition,
                "Cannot delete product that is referenced in existing orders",
                reason::PRODUCT_REFERENCED,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::ReservationNotFound(id) => errors::with_info(
                Code::NotFound,
                format!("Reservation {id} not found"),
                reason::RESERVATION_NOT_FOUND,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::ReservationReleased(id) => errors::with_info(
                Code::FailedPrecondition,
                format!("Reservation {id} was released and cannot take or keep stock"),
                reason::RESERVATION_RELEASED,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::ReservationCommitted(id) => errors::with_info(
                Code::FailedPrecondition,
                format!("Reservation {id} is committed and cannot be released"),
                reason::RESERVATION_COMMITTED,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::ReservationMismatch(id) => errors::with_info(
                Code::AlreadyExists,
                format!("Reservation {id} already exists with different items"),
                reason::RESERVATION_MISMATCH,
                [(meta::ID, id.to_string())],
            ),
            CatalogError::Abandoned => {
                Status::cancelled("the caller went away before the reservation was decided")
            }
            CatalogError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Status::unavailable("database unavailable, try again")
            }
            CatalogError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internals_never_reach_the_caller() {
        let status = Status::from(CatalogError::Internal(
            "relation \"products\" does not exist".into(),
        ));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status = Status::from(CatalogError::Unavailable(
            "connection refused 10.0.0.5:5432".into(),
        ));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.5"));
    }

    #[test]
    fn a_database_out_of_reach_or_capacity_is_unavailable_like_in_the_order_service() {
        for error in [
            sqlx::Error::WorkerCrashed,
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            let status = Status::from(CatalogError::from(error));
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        let status = Status::from(CatalogError::from(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn insufficient_stock_carries_its_figures() {
        let status = Status::from(CatalogError::InsufficientStock {
            product_id: Uuid::nil(),
            product_name: "Laptop".into(),
            available: 2,
            requested: 3,
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            "Insufficient stock for product 'Laptop'. Available: 2, Requested: 3"
        );
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::INSUFFICIENT_STOCK);
        assert_eq!(metadata[meta::PRODUCT_NAME], "Laptop");
        assert_eq!(metadata[meta::AVAILABLE], "2");
        assert_eq!(metadata[meta::REQUESTED], "3");
    }
}
