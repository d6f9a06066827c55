//! The order status machine.
//!
//! ```text
//! reserving -> pending | rejected      (the CreateOrder saga and the reconciler)
//! pending   -> completed | canceled    (UpdateOrderStatus)
//! completed, canceled, rejected        terminal
//! ```
//! `reserving` and `rejected` are internal: the API never shows them.

use strum::{Display, EnumString, IntoStaticStr};

use super::InventoryAction;

/// Spelled in snake case (`pending`) in the database and in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    Reserving,
    Pending,
    Completed,
    Canceled,
    Rejected,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        Self::Reserving,
        Self::Pending,
        Self::Completed,
        Self::Canceled,
        Self::Rejected,
    ];

    /// The states the API shows; the others are saga bookkeeping.
    pub const VISIBLE: [OrderStatus; 3] = [Self::Pending, Self::Completed, Self::Canceled];

    /// The spelling stored in the database and used in error messages.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_visible(self) -> bool {
        match self {
            Self::Pending | Self::Completed | Self::Canceled => true,
            Self::Reserving | Self::Rejected => false,
        }
    }
}

/// What moving from one status to another means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// Already there: a successful no-op (a repeated request is harmless).
    Unchanged,
    /// A real change, and the inventory call it implies (if any), which goes
    /// into the outbox in the same transaction.
    Changed(Option<InventoryAction>),
}

/// The move `from -> to` is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Cannot transition order status from '{from}' to '{to}'")]
pub struct InvalidTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

/// The status machine, in one place. Every pair of states is decided here and
/// covered by the tests below.
pub fn transition(from: OrderStatus, to: OrderStatus) -> Result<StatusChange, InvalidTransition> {
    use OrderStatus::*;
    match (from, to) {
        // Repeating a visible status is harmless. The internal states are
        // never requested twice: whoever sees them again lost a race.
        (Pending, Pending) | (Completed, Completed) | (Canceled, Canceled) => {
            Ok(StatusChange::Unchanged)
        }
        // The saga: stock taken, or refused / released.
        (Reserving, Pending) | (Reserving, Rejected) => Ok(StatusChange::Changed(None)),
        (Pending, Completed) => Ok(StatusChange::Changed(Some(InventoryAction::Commit))),
        (Pending, Canceled) => Ok(StatusChange::Changed(Some(InventoryAction::Release))),
        (Reserving, Reserving | Completed | Canceled)
        | (Pending, Reserving | Rejected)
        | (Completed, _)
        | (Canceled, _)
        | (Rejected, _) => Err(InvalidTransition { from, to }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn every_pair_of_states_is_decided_as_specified() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let expected = match (from, to) {
                    (Pending, Pending) | (Completed, Completed) | (Canceled, Canceled) => {
                        Some(StatusChange::Unchanged)
                    }
                    (Reserving, Pending) | (Reserving, Rejected) => {
                        Some(StatusChange::Changed(None))
                    }
                    (Pending, Completed) => {
                        Some(StatusChange::Changed(Some(InventoryAction::Commit)))
                    }
                    (Pending, Canceled) => {
                        Some(StatusChange::Changed(Some(InventoryAction::Release)))
                    }
                    _ => None,
                };
                match expected {
                    Some(change) => assert_eq!(transition(from, to), Ok(change), "{from} -> {to}"),
                    None => assert_eq!(
                        transition(from, to),
                        Err(InvalidTransition { from, to }),
                        "{from} -> {to}"
                    ),
                }
            }
        }
    }

    #[test]
    fn terminal_states_go_nowhere_else() {
        for from in [Completed, Canceled, Rejected] {
            for to in OrderStatus::ALL.into_iter().filter(|to| *to != from) {
                assert!(transition(from, to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn refusal_message_is_the_contracts() {
        let error = transition(Completed, Canceled).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Cannot transition order status from 'completed' to 'canceled'"
        );
    }

    #[test]
    fn spellings_round_trip_and_unknown_values_are_errors() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
        }
        assert!("PENDING".parse::<OrderStatus>().is_err());
        assert!("".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn only_public_states_are_visible() {
        let visible: Vec<_> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.is_visible())
            .collect();
        assert_eq!(visible, OrderStatus::VISIBLE.to_vec());
    }
}
