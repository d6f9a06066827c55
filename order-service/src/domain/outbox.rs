//! What a status change asks of the catalog, and how often a failed delivery
//! is retried.

use std::{fmt, str::FromStr, time::Duration};

use super::UnknownValue;

/// The inventory call an outbox row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryAction {
    /// The order was canceled: give its stock back.
    Release,
    /// The order completed: its stock is sold for good.
    Commit,
}

impl InventoryAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Commit => "commit",
        }
    }
}

impl fmt::Display for InventoryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InventoryAction {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "release" => Ok(Self::Release),
            "commit" => Ok(Self::Commit),
            other => Err(UnknownValue {
                kind: "outbox action",
                value: other.to_owned(),
            }),
        }
    }
}

impl TryFrom<String> for InventoryAction {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// Longest wait between two delivery attempts of one outbox row.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Delay before the next attempt after `failed_attempts` failures (>= 1):
/// `base * 2^(failed_attempts - 1)`, capped at [`MAX_BACKOFF`]. Exponential, so
/// a catalog that is down for long is not hammered.
pub fn backoff(failed_attempts: u32, base: Duration) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(30);
    base.saturating_mul(1 << exponent).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(1, base), Duration::from_secs(1));
        assert_eq!(backoff(2, base), Duration::from_secs(2));
        assert_eq!(backoff(5, base), Duration::from_secs(16));
        assert_eq!(backoff(9, base), Duration::from_secs(256));
        assert_eq!(backoff(10, base), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, base), MAX_BACKOFF);
    }

    #[test]
    fn zero_base_retries_at_once() {
        assert_eq!(backoff(7, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn actions_round_trip() {
        for action in [InventoryAction::Release, InventoryAction::Commit] {
            assert_eq!(action.as_str().parse::<InventoryAction>(), Ok(action));
        }
        assert!("refund".parse::<InventoryAction>().is_err());
    }
}
