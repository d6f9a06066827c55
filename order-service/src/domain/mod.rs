//! The order rules as plain types and functions: no I/O, so every rule is
//! unit-tested without a database or a network.
//!
//! - [`status`]: the order status machine (public and internal saga states).
//! - [`payment`]: the payment status machine.
//! - [`order`]: an order as read back, the exact total, list filters and paging.
//! - [`new_order`]: validation and normalisation of a CreateOrder request, and
//!   the request hash that idempotency keys are checked against.
//! - [`outbox`]: what a status change asks of the catalog, and retry backoff.

pub mod new_order;
pub mod order;
pub mod outbox;
pub mod payment;
pub mod status;

#[cfg(test)]
mod proptests;

pub use new_order::{NewOrder, NewOrderItem};
pub use order::{ListFilter, Order, OrderItem, PageRequest, ReservedLine};
pub use outbox::InventoryAction;
pub use payment::PaymentStatus;
pub use status::{OrderStatus, StatusChange};

/// A stored value that is not one of an enum's known spellings: the database
/// holds something this version does not understand. Never defaulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}
