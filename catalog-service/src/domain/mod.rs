//! The catalog's rules as plain types and functions: no I/O, no wire or
//! database types, so every rule is unit-tested on its own and the edges
//! (the gRPC service, the SQL store) only translate.
//!
//! - [`product`]: what a valid product, product change and stock level are.
//! - [`reservation`]: how a reservation request is normalised and judged
//!   against current stock (all or nothing), and how a repeated request is
//!   recognised.
//! - [`Violation`] and [`Refusal`]: how a rule says no, with the facts the
//!   caller needs; the service's error type maps them to the wire.

pub mod product;
pub mod reservation;

use uuid::Uuid;

/// One field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field as the caller named it, e.g. `items[2].quantity`.
    pub field: String,
    /// What is wrong with it, e.g. `must be greater than 0`.
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self { field, message }
    }
}

/// Why the catalog's rules refuse a request: the request itself, or the state
/// it meets, says no. Never a fault; its message is what the caller reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Fields that break their rules, every one of them.
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("Product with id {0} not found")]
    ProductNotFound(Uuid),
    /// Every product of a reservation that does not exist, in request order.
    #[error("Products not found: [{}]", listed(.0, ", "))]
    ProductsNotFound(Vec<Uuid>),
    /// The first line (in product id order) that lacks stock.
    #[error(
        "Insufficient stock for product '{product_name}'. Available: {available}, Requested: {requested}"
    )]
    InsufficientStock {
        product_id: Uuid,
        product_name: String,
        available: i32,
        requested: i64,
    },
    /// A product some reservation names cannot be deleted.
    #[error("Cannot delete product that is referenced in existing orders")]
    ProductReferenced(Uuid),
    /// A conditional write (an expected version) met a product that has
    /// changed since its author read it; nothing was written.
    #[error("Product {id} has changed: its version is {current}, not {expected}")]
    VersionMismatch {
        id: Uuid,
        expected: i64,
        current: i64,
    },
    #[error("Reservation {0} not found")]
    ReservationNotFound(Uuid),
    /// Released (or tombstoned by a release that came first): it never takes
    /// or keeps stock again.
    #[error("Reservation {0} was released and cannot take or keep stock")]
    ReservationReleased(Uuid),
    #[error("Reservation {0} is committed and cannot be released")]
    ReservationCommitted(Uuid),
    /// The id is taken by a reservation of other items.
    #[error("Reservation {0} already exists with different items")]
    ReservationMismatch(Uuid),
}

impl Refusal {
    pub fn invalid(violation: Violation) -> Self {
        Self::Invalid(vec![violation])
    }
}

/// Ids as text, joined by `separator`.
pub fn listed(ids: &[Uuid], separator: &str) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}
