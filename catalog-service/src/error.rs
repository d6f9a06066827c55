//! The catalog's one error type: a refusal of the rules ([`Refusal`]), or a
//! fault (the database out of reach, a broken invariant, a caller gone).
//! `From<CatalogError> for Status` below is the only place that decides what
//! a caller sees: a refusal with its code, reason and figures; the unexpected
//! is logged with its cause and answered with a generic message.

use platform::group_commit::{Abandoned, Stopped};
use proto::errors::{self, meta, reason};
use tonic::{Code, Status};

use crate::domain::{Refusal, Violation, listed};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Refused(#[from] Refusal),
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
        Refusal::invalid(violation).into()
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

impl From<Stopped> for CatalogError {
    fn from(_: Stopped) -> Self {
        Self::Unavailable("the reservation worker has stopped".into())
    }
}

impl From<Abandoned> for CatalogError {
    fn from(_: Abandoned) -> Self {
        Self::Abandoned
    }
}

impl From<Violation> for errors::Violation {
    fn from(violation: Violation) -> Self {
        Self::new(violation.field, violation.message)
    }
}

impl From<errors::Violation> for Violation {
    fn from(violation: errors::Violation) -> Self {
        Self::new(violation.field, violation.message)
    }
}

impl From<CatalogError> for Status {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Refused(refusal) => refused(refusal),
            CatalogError::Abandoned => Status::cancelled(error.to_string()),
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

/// A refusal on the wire: its code, its message, and an `ErrorInfo` with its
/// reason and the figures a caller acts on (every violation, for a request
/// that breaks field rules).
fn refused(refusal: Refusal) -> Status {
    use Refusal::*;
    let refusal = match refusal {
        Invalid(violations) => {
            let violations: Vec<errors::Violation> =
                violations.into_iter().map(Into::into).collect();
            return errors::invalid_argument(&violations);
        }
        other => other,
    };
    let (code, reason) = match &refusal {
        ProductNotFound(_) => (Code::NotFound, reason::PRODUCT_NOT_FOUND),
        ProductsNotFound(_) => (Code::NotFound, reason::PRODUCTS_NOT_FOUND),
        InsufficientStock { .. } => (Code::FailedPrecondition, reason::INSUFFICIENT_STOCK),
        ProductReferenced(_) => (Code::FailedPrecondition, reason::PRODUCT_REFERENCED),
        ReservationNotFound(_) => (Code::NotFound, reason::RESERVATION_NOT_FOUND),
        ReservationReleased(_) => (Code::FailedPrecondition, reason::RESERVATION_RELEASED),
        ReservationCommitted(_) => (Code::FailedPrecondition, reason::RESERVATION_COMMITTED),
        ReservationMismatch(_) => (Code::AlreadyExists, reason::RESERVATION_MISMATCH),
        VersionMismatch { .. } => (Code::FailedPrecondition, reason::VERSION_MISMATCH),
        Invalid(_) => unreachable!("answered above"),
    };
    let message = refusal.to_string();
    let metadata = match refusal {
        ProductsNotFound(ids) => vec![(meta::PRODUCT_IDS, listed(&ids, ","))],
        InsufficientStock {
            product_id,
            product_name,
            available,
            requested,
        } => vec![
            (meta::PRODUCT_ID, product_id.to_string()),
            (meta::PRODUCT_NAME, product_name),
            (meta::AVAILABLE, available.to_string()),
            (meta::REQUESTED, requested.to_string()),
        ],
        ProductNotFound(id)
        | ProductReferenced(id)
        | ReservationNotFound(id)
        | ReservationReleased(id)
        | ReservationCommitted(id)
        | ReservationMismatch(id) => vec![(meta::ID, id.to_string())],
        VersionMismatch { id, current, .. } => vec![
            (meta::ID, id.to_string()),
            (meta::CURRENT_VERSION, current.to_string()),
        ],
        Invalid(_) => Vec::new(),
    };
    errors::with_info(code, message, reason, metadata)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

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
        let status = Status::from(CatalogError::from(Refusal::InsufficientStock {
            product_id: Uuid::nil(),
            product_name: "Laptop".into(),
            available: 2,
            requested: 3,
        }));
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

    #[test]
    fn missing_products_are_listed_in_the_message_and_the_metadata() {
        let ids = [Uuid::from_u128(1), Uuid::from_u128(2)];
        let status = Status::from(CatalogError::from(Refusal::ProductsNotFound(ids.to_vec())));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            format!("Products not found: [{}, {}]", ids[0], ids[1])
        );
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::PRODUCTS_NOT_FOUND);
        assert_eq!(
            metadata[meta::PRODUCT_IDS],
            format!("{},{}", ids[0], ids[1])
        );
    }

    #[test]
    fn a_version_mismatch_names_the_current_version() {
        let id = Uuid::from_u128(7);
        let status = Status::from(CatalogError::from(Refusal::VersionMismatch {
            id,
            expected: 3,
            current: 5,
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            format!("Product {id} has changed: its version is 5, not 3")
        );
        let (reason, metadata) = errors::error_info(&status).unwrap();
        assert_eq!(reason, reason::VERSION_MISMATCH);
        assert_eq!(metadata[meta::CURRENT_VERSION], "5");
        assert_eq!(metadata[meta::ID], id.to_string());
    }

    #[test]
    fn a_caller_gone_is_cancelled() {
        let status = Status::from(CatalogError::from(Abandoned));
        assert_eq!(status.code(), Code::Cancelled);
        assert_eq!(
            status.message(),
            "the caller went away before the reservation was decided"
        );
    }
}
