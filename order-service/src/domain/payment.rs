//! The payment status machine: unpaid -> paid, unpaid -> failed, failed -> paid
//! (a retried payment succeeded); paid is final. Only a pending order takes a
//! payment update (checked by the caller, who knows the order status).
//!
//! And what a payment event id already seen means ([`seen_event`]): the same
//! delivery again, or an id reused for another one.

use std::{fmt, str::FromStr};

use uuid::Uuid;

use super::UnknownValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 3] = [Self::Unpaid, Self::Paid, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "payment status",
                value: s.to_owned(),
            })
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
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
    fn spellings_round_trip_and_unknown_values_are_errors() {
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        assert!("refunded".parse::<PaymentStatus>().is_err());
    }
}
