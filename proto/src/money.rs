//! Exact money on the wire: `common.v1.Money` (units + nanos, shaped like
//! `google.type.Money`) to and from `rust_decimal::Decimal`. No float is ever
//! involved, so 0.1 + 0.2 is 0.3 here.

use rust_decimal::Decimal;

use crate::common::v1::Money;

/// The platform's single currency unless configured otherwise.
pub const DEFAULT_CURRENCY: &str = "USD";

const NANOS_PER_UNIT: i128 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("nanos must be within -999999999..=999999999")]
    NanosOutOfRange,
    #[error("units and nanos must have the same sign")]
    MixedSigns,
    #[error("amount is too large")]
    Overflow,
}

/// Reads a wire amount exactly. The currency code is not checked here: the
/// platform has one currency, and callers that care compare it themselves.
pub fn to_decimal(money: &Money) -> Result<Decimal, MoneyError> {
    if !(-999_999_999..=999_999_999).contains(&money.nanos) {
        return Err(MoneyError::NanosOutOfRange);
    }
    if (money.units > 0 && money.nanos < 0) || (money.units < 0 && money.nanos > 0) {
        return Err(MoneyError::MixedSigns);
    }
    let total_nanos = i128::from(money.units) * NANOS_PER_UNIT + i128::from(money.nanos);
    let amount =
        Decimal::try_from_i128_with_scale(total_nanos, 9).map_err(|_| MoneyError::Overflow)?;
    Ok(amount.normalize())
}

/// Writes an amount to the wire. Amounts of this platform have at most two
/// fractional digits; anything beyond nine (a nano) is rounded half-even.
pub fn from_decimal(amount: Decimal, currency_code: &str) -> Result<Money, MoneyError> {
    let mut scaled = amount.round_dp(9);
    scaled.rescale(9);
    let total_nanos = scaled.mantissa();
    let units = i64::try_from(total_nanos / NANOS_PER_UNIT).map_err(|_| MoneyError::Overflow)?;
    // |remainder| < 1e9, so it always fits in i32.
    let nanos = (total_nanos % NANOS_PER_UNIT) as i32;
    Ok(Money {
        currency_code: currency_code.to_owned(),
        units,
        nanos,
    })
}

/// The contract's display form: exactly two fractional digits ("999.90").
pub fn format_2dp(amount: Decimal) -> String {
    let mut rounded = amount.round_dp(2);
    rounded.rescale(2);
    rounded.to_string()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn round_trips_typical_prices() {
        for s in [
            "0.01",
            "0.1",
            "1",
            "999.99",
            "99999999.99",
            "19.90",
            "-5.25",
        ] {
            let money = from_decimal(dec(s), "USD").unwrap();
            assert_eq!(to_decimal(&money).unwrap(), dec(s).normalize(), "{s}");
        }
    }

    #[test]
    fn splits_into_units_and_nanos() {
        let money = from_decimal(dec("999.99"), "USD").unwrap();
        assert_eq!((money.units, money.nanos), (999, 990_000_000));
        let negative = from_decimal(dec("-1.5"), "USD").unwrap();
        assert_eq!((negative.units, negative.nanos), (-1, -500_000_000));
    }

    #[test]
    fn refuses_malformed_wire_amounts() {
        let bad_nanos = Money {
            currency_code: "USD".into(),
            units: 1,
            nanos: 1_000_000_000,
        };
        assert_eq!(to_decimal(&bad_nanos), Err(MoneyError::NanosOutOfRange));
        let mixed = Money {
            currency_code: "USD".into(),
            units: 1,
            nanos: -1,
        };
        assert_eq!(to_decimal(&mixed), Err(MoneyError::MixedSigns));
    }

    #[test]
    fn refuses_amounts_beyond_i64_units() {
        assert_eq!(from_decimal(dec("1e19"), "USD"), Err(MoneyError::Overflow));
    }

    #[test]
    fn formats_with_two_digits() {
        assert_eq!(format_2dp(dec("19.9")), "19.90");
        assert_eq!(format_2dp(dec("19.9000")), "19.90");
        assert_eq!(format_2dp(dec("5")), "5.00");
    }
}
