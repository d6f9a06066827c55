//! The payment status machine: unpaid -> paid, unpaid -> failed, failed -> paid
//! (a retried payment succeeded); paid is final. Only a pending order takes a
//! payment update (checked by the caller, who knows the order status).

use std::{fmt, str::FromStr};

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

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

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
