//! The order rules as plain types and functions: no I/O, no wire types and no
//! storage, so every rule is unit-tested without a database or a network.
//!
//! - [`status`]: the order status machine (public and internal saga states).
//! - [`payment`]: the payment status machine, which orders take a payment,
//!   and what a payment event id seen before means.
//! - [`order`]: an order as read back, the exact total and list filters.
//! - [`new_order`]: validation and normalisation of a CreateOrder request, and
//!   the request hash that idempotency keys are checked against.
//! - [`refusal`]: why the catalog took no stock for an order, kept with the
//!   order so that a repeated request is refused the same way.
//! - [`outbox`]: what a status change asks of the catalog, and retry backoff.
//! - [`event`]: the changes internal services hear of, why an order was
//!   canceled, and which orders expire unpaid.

pub mod event;
pub mod new_order;
pub mod order;
pub mod outbox;
pub mod payment;
pub mod refusal;
pub mod status;

#[cfg(test)]
mod proptests;

pub use event::{CancelReason, OrderEventKind};
pub use new_order::{NewOrder, NewOrderItem};
pub use order::{ListFilter, Order, OrderItem, ReservedLine};
pub use outbox::InventoryAction;
pub use payment::PaymentStatus;
pub use refusal::{Refusal, RefusalKind, RefusalReason};
pub use status::{OrderStatus, StatusChange};

/// One field of a request that breaks a rule: the field as the caller spelled
/// it (`items[1].quantity`), and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
