//! What happened to an order, as internal services hear it through
//! `WatchOrderEvents`, and why a canceled order was canceled.
//!
//! An event is recorded for every change of a visible order: its creation
//! (the saga confirmed it), a payment result, completion, cancelation (with
//! its [`CancelReason`]). A repeated request that changes nothing records
//! nothing.

use strum::{Display, EnumString, IntoStaticStr};

use super::{OrderStatus, PaymentStatus};

/// Why an order was canceled. Spelled in snake case (`payment_timeout`) in
/// the database and in the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum CancelReason {
    /// A client asked for it (UpdateOrderStatus).
    Requested,
    /// It stayed pending and unpaid past the payment timeout.
    PaymentTimeout,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The kind of a change. Spelled in snake case in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum OrderEventKind {
    /// The order became visible: its stock is taken, it is pending.
    Created,
    Paid,
    PaymentFailed,
    Completed,
    Canceled,
}

impl OrderEventKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The event of a status change to `to`; `None` for the saga's internal
    /// states, which are never announced.
    pub fn of_status(to: OrderStatus) -> Option<Self> {
        match to {
            OrderStatus::Pending => Some(Self::Created),
            OrderStatus::Completed => Some(Self::Completed),
            OrderStatus::Canceled => Some(Self::Canceled),
            OrderStatus::Reserving | OrderStatus::Rejected => None,
        }
    }

    /// The event of a payment status change to `to` (nothing changes to
    /// unpaid).
    pub fn of_payment(to: PaymentStatus) -> Option<Self> {
        match to {
            PaymentStatus::Paid => Some(Self::Paid),
            PaymentStatus::Failed => Some(Self::PaymentFailed),
            PaymentStatus::Unpaid => None,
        }
    }
}

/// Whether an order in these states expires once it is older than the
/// payment timeout: pending and not paid (unpaid, or its payment failed).
/// Completed orders keep their stock whether paid or not, as the original
/// contract allows.
pub fn expires(status: OrderStatus, payment_status: PaymentStatus) -> bool {
    status == OrderStatus::Pending && payment_status != PaymentStatus::Paid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_orders_not_paid_expire() {
        for status in OrderStatus::ALL {
            for payment in PaymentStatus::ALL {
                let expected = status == OrderStatus::Pending
                    && matches!(payment, PaymentStatus::Unpaid | PaymentStatus::Failed);
                assert_eq!(expires(status, payment), expected, "{status} {payment}");
            }
        }
    }

    #[test]
    fn every_visible_status_and_payment_result_has_an_event() {
        assert_eq!(
            OrderEventKind::of_status(OrderStatus::Pending),
            Some(OrderEventKind::Created)
        );
        assert_eq!(OrderEventKind::of_status(OrderStatus::Reserving), None);
        assert_eq!(OrderEventKind::of_status(OrderStatus::Rejected), None);
        assert_eq!(
            OrderEventKind::of_payment(PaymentStatus::Failed),
            Some(OrderEventKind::PaymentFailed)
        );
        assert_eq!(OrderEventKind::of_payment(PaymentStatus::Unpaid), None);
        assert_eq!(
            "payment_timeout".parse::<CancelReason>(),
            Ok(CancelReason::PaymentTimeout)
        );
    }
}
