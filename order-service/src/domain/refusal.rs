//! Why the catalog took no stock for an order: a definite refusal, after which
//! nothing is reserved. The saga keeps it with the rejected order, so that a
//! repeated request (same idempotency key) is refused again the same way.
//!
//! The refusals the catalog gives a reservation have names here
//! ([`RefusalReason`]); any other is kept whole ([`RefusalReason::Other`]), so
//! nothing the first caller was told is lost on a replay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Violation;

/// A definite refusal: why, and the refusal in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// As the refusing service wrote it for clients; passed on unchanged.
    pub message: String,
}

/// The kind of a refusal, whatever its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Something the request names does not exist.
    NotFound,
    /// The request is well formed, but the current state does not allow it.
    Precondition,
    /// The request itself is invalid.
    Invalid,
    /// The request conflicts with something that already exists.
    Conflict,
}

/// Why stock was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Products the catalog does not know, in the order it listed them.
    ProductsNotFound { product_ids: Vec<Uuid> },
    /// Not enough stock of one product.
    InsufficientStock {
        product_id: Uuid,
        product_name: String,
        available: i64,
        requested: i64,
    },
    /// The reservation (id = the order's id) was released before it was
    /// made: a reserve that arrived after the saga had given it up.
    ReservationReleased { reservation_id: Uuid },
    /// The reservation already exists with other items.
    ReservationMismatch { reservation_id: Uuid },
    /// The catalog found the request invalid, field by field.
    InvalidRequest { violations: Vec<Violation> },
    /// A refusal without a name here, kept whole: its kind, its reason and
    /// attributes if it had them, and its field errors.
    Other {
        kind: RefusalKind,
        reason: Option<String>,
        attributes: BTreeMap<String, String>,
        violations: Vec<Violation>,
    },
}

impl RefusalReason {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Self::ProductsNotFound { .. } => RefusalKind::NotFound,
            Self::InsufficientStock { .. } | Self::ReservationReleased { .. } => {
                RefusalKind::Precondition
            }
            Self::ReservationMismatch { .. } => RefusalKind::Conflict,
            Self::InvalidRequest { .. } => RefusalKind::Invalid,
            Self::Other { kind, .. } => *kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_kind() {
        let id = Uuid::nil();
        let cases = [
            (
                RefusalReason::ProductsNotFound {
                    product_ids: vec![id],
                },
                RefusalKind::NotFound,
            ),
            (
                RefusalReason::InsufficientStock {
                    product_id: id,
                    product_name: "Laptop".into(),
                    available: 1,
                    requested: 2,
                },
                RefusalKind::Precondition,
            ),
            (
                RefusalReason::ReservationReleased { reservation_id: id },
                RefusalKind::Precondition,
            ),
            (
                RefusalReason::ReservationMismatch { reservation_id: id },
                RefusalKind::Conflict,
            ),
            (
                RefusalReason::InvalidRequest {
                    violations: vec![Violation::new("items", "must not be empty")],
                },
                RefusalKind::Invalid,
            ),
            (
                RefusalReason::Other {
                    kind: RefusalKind::Conflict,
                    reason: None,
                    attributes: BTreeMap::new(),
                    violations: Vec::new(),
                },
                RefusalKind::Conflict,
            ),
        ];
        for (reason, kind) in cases {
            assert_eq!(reason.kind(), kind, "{reason:?}");
        }
    }
}
