//! What a status change asks of the catalog, and how often a failed delivery
//! is retried.

use std::time::Duration;

use strum::{Display, EnumString, IntoStaticStr};

/// The inventory call an outbox row stands for, spelled in snake case
/// (`release`) in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum InventoryAction {
    /// The order was canceled: give its stock back.
    Release,
    /// The order completed: its stock is sold for good.
    Commit,
}

impl InventoryAction {
    /// The spelling stored in the database.
    pub fn as_str(self) -> &'static str {
        self.into()
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
