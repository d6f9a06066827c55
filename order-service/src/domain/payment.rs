//! The payment status machine: unpaid -> paid, unpaid -> failed, failed -> paid
//! (a retried payment succeeded); paid is final. Only a pending order takes a
//! payment update ([`accepts_payment`]).
//!
//! And what a payment event id already seen means ([`seen_event`]): the same
//! delivery again, or an id reused for another one.

use strum::{Display, EnumString, IntoStaticStr};
use uuid::Uuid;

use super::{CancelReason, OrderStatus};

/// Spelled in snake case (`unpaid`) in the database and in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 3] = [Self::Unpaid, Self::Paid, Self::Failed];

    /// The spelling stored in the database and used in error messages.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Longest payment event id accepted (the column allows the same).
pub const MAX_EVENT_ID_CHARS: usize = 255;

/// Whether `event_id` can name a payment event: 1 to [`MAX_EVENT_ID_CHARS`]
/// characters.
pub fn is_valid_event_id(event_id: &str) -> bool {
    (1..=MAX_EVENT_ID_CHARS).contains(&event_id.chars().count())
}

/// A payment update for an order that is not pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Order status is '{status}': only a pending order accepts a payment update")]
pub struct NotPending {
    pub status: OrderStatus,
}

/// Why an order takes no payment update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefused {
    #[error(transparent)]
    NotPending(#[from] NotPending),
    /// It was canceled because it stayed unpaid past the payment timeout:
    /// the processor has to refund what it took.
    #[error(
        "Order expired: it was canceled because it was not paid in time; the payment must be \
         refunded"
    )]
    Expired,
}

/// Only a pending order takes a payment update; the payment machine
/// ([`payment_transition`]) then decides what it does. A payment for an order
/// the payment timeout canceled is refused as such, so the processor knows to
/// refund rather than retry.
pub fn accepts_payment(
    status: OrderStatus,
    cancel_reason: Option<CancelReason>,
) -> Result<(), PaymentRefused> {
    match (status, cancel_reason) {
        (OrderStatus::Pending, _) => Ok(()),
        (OrderStatus::Canceled, Some(CancelReason::PaymentTimeout)) => Err(PaymentRefused::Expired),
        (status, _) => Err(NotPending { status }.into()),
    }
}

/// The payment move `from -> to` is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Cannot change payment status from '{from}' to '{to}'")]
pub struct InvalidPaymentTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

/// `Ok(true)`: a change to write; `Ok(false)`: already there, a successful no-op.
pub fn payment_transition(
    from: PaymentStatus,
    to: PaymentStatus,
) -> Result<bool, InvalidPaymentTransition> {
    use PaymentStatus::*;
    match (from, to) {
        (Unpaid, Unpaid) | (Paid, Paid) | (Failed, Failed) => Ok(false),
        (Unpaid, Paid) | (Unpaid, Failed) | (Failed, Paid) => Ok(true),
        // Paid is final; nothing goes back to unpaid.
        (Paid, Unpaid | Failed) | (Failed, Unpaid) => Err(InvalidPaymentTransition { from, to }),
    }
}

/// What a payment event id was recorded with: the order and the payment
/// status of the delivery that first carried it. `payment_status` is `None`
/// for events recorded before statuses were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedEvent {
    pub order_id: Uuid,
    pub payment_status: Option<PaymentStatus>,
}

/// An event id already recorded for another delivery (another order or
/// another payment status): the delivery is refused, not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Event id '{event_id}' was already used for another delivery (another order or payment \
     status); this delivery was not applied. Each payment event needs an id of its own"
)]
pub struct EventIdReused {
    pub event_id: String,
}

/// A delivery carrying an event id that is already recorded: `Ok` when it is
/// the same delivery again (same order, same status: a no-op), an error when
/// the id came with something else.
///
/// Why refuse rather than apply it as a new event: an id may not be covered
/// by the signature (the `Webhook-Id` header beside `X-Signature`), so a
/// captured delivery replayed under another event's id must not be able to
/// make that event a no-op; and a processor that reuses ids is broken in a way
/// someone should see. Refusing (non-2xx) tells the sender nothing was done,
/// so it retries or alerts, while applying it would quietly make the id mean
/// two different things, and a later repeat of either would be judged
/// against the wrong one.
pub fn seen_event(
    event_id: &str,
    recorded: RecordedEvent,
    order_id: Uuid,
    to: PaymentStatus,
) -> Result<(), EventIdReused> {
    // Events recorded before statuses were kept are judged by order alone,
    // as they always were; they age out with the retention.
    let same_status = recorded.payment_status.is_none_or(|status| status == to);
    if recorded.order_id == order_id && same_status {
        Ok(())
    } else {
        Err(EventIdReused {
            event_id: event_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    #[test]
    fn a_seen_event_is_a_repeat_only_with_the_same_order_and_status() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let recorded = RecordedEvent {
            order_id: a,
            payment_status: Some(Paid),
        };
        assert_eq!(seen_event("evt", recorded, a, Paid), Ok(()));
        for (order, status) in [(b, Paid), (a, Failed), (b, Failed)] {
            let refused = seen_event("evt", recorded, order, status).unwrap_err();
            assert_eq!(refused.event_id, "evt");
            assert!(
                refused
                    .to_string()
                    .contains("already used for another delivery")
            );
        }
        let legacy = RecordedEvent {
            order_id: a,
            payment_status: None,
        };
        assert_eq!(seen_event("evt", legacy, a, Failed), Ok(()));
        assert!(seen_event("evt", legacy, b, Paid).is_err());
    }

    #[test]
    fn every_pair_of_states_is_decided_as_specified() {
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                let expected = match (from, to) {
                    _ if from == to => Ok(false),
                    (Unpaid, Paid) | (Unpaid, Failed) | (Failed, Paid) => Ok(true),
                    _ => Err(InvalidPaymentTransition { from, to }),
                };
                assert_eq!(payment_transition(from, to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn paid_is_final() {
        assert!(payment_transition(Paid, Failed).is_err());
        assert!(payment_transition(Paid, Unpaid).is_err());
        assert_eq!(payment_transition(Paid, Paid), Ok(false));
    }

    #[test]
    fn only_pending_orders_take_payments() {
        for status in OrderStatus::ALL {
            for reason in [None, Some(CancelReason::Requested)] {
                let accepted = accepts_payment(status, reason);
                if status == OrderStatus::Pending {
                    assert_eq!(accepted, Ok(()));
                } else {
                    assert_eq!(accepted, Err(NotPending { status }.into()));
                }
            }
        }
        assert!(
            NotPending {
                status: OrderStatus::Canceled
            }
            .to_string()
            .contains("only a pending order")
        );
    }

    #[test]
    fn an_order_canceled_by_the_payment_timeout_refuses_payments_as_expired() {
        let refused = accepts_payment(OrderStatus::Canceled, Some(CancelReason::PaymentTimeout));
        assert_eq!(refused, Err(PaymentRefused::Expired));
        assert!(refused.unwrap_err().to_string().contains("refunded"));
    }

    #[test]
    fn event_ids_are_1_to_255_characters() {
        assert!(is_valid_event_id("e"));
        assert!(is_valid_event_id(&"é".repeat(255)));
        assert!(!is_valid_event_id(""));
        assert!(!is_valid_event_id(&"e".repeat(256)));
    }

    #[test]
    fn spellings_round_trip_and_unknown_values_are_errors() {
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        assert!("refunded".parse::<PaymentStatus>().is_err());
    }
}
