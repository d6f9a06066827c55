//! Products: validated values (newtypes whose constructors enforce the
//! contract's rules), what a product is, how stock and the units pending
//! orders hold must relate, and when a write conditioned on a version may
//! proceed ([`version`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::Violation;

pub const NAME_MAX_CHARS: usize = 255;
/// Keeps one request from storing megabytes of text.
pub const DESCRIPTION_MAX_CHARS: usize = 10_000;

/// 99999999.99, the largest price NUMERIC(10, 2) holds.
pub fn price_max() -> Decimal {
    Decimal::new(9_999_999_999, 2)
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub price: Decimal,
    pub quantity: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Counts the row's changes (1 when created); the database bumps it on
    /// every change, stock included, so it tells two states of a product
    /// apart. See [`version`].
    pub version: i64,
}

/// 1..=255 characters, no NUL (PostgreSQL text cannot hold one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(field: &str, name: String) -> Result<Self, Violation> {
        text(field, name, 1, NAME_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 10,000 characters, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(field: &str, text: String) -> Result<Self, Violation> {
        self::text(field, text, 0, DESCRIPTION_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` if it is `min..=max` characters long (counted as characters, not
/// bytes) and holds no NUL, which PostgreSQL text cannot store.
fn text(field: &str, value: String, min: usize, max: usize) -> Result<String, Violation> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        let bounds = match min {
            0 => format!("at most {max}"),
            _ => format!("{min} to {max}"),
        };
        return Err(Violation::new(
            field,
            format!("must be {bounds} characters long"),
        ));
    }
    if value.contains('\0') {
        return Err(Violation::new(field, "must not contain NUL characters"));
    }
    Ok(value)
}

/// > 0, at most two fractional digits, at most 99999999.99.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(Decimal);

impl Price {
    pub fn parse(field: &str, amount: Decimal) -> Result<Self, Violation> {
        if amount <= Decimal::ZERO {
            return Err(Violation::new(field, "must be greater than 0"));
        }
        if amount.normalize().scale() > 2 {
            return Err(Violation::new(field, "must have at most 2 decimal places"));
        }
        if amount > price_max() {
            return Err(Violation::new(field, "must be at most 99999999.99"));
        }
        Ok(Self(amount.round_dp(2)))
    }

    pub fn amount(self) -> Decimal {
        self.0
    }
}

/// Units in stock: >= 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock(i32);

impl Stock {
    pub fn parse(field: &str, quantity: i32) -> Result<Self, Violation> {
        if quantity < 0 {
            return Err(Violation::new(field, "must be greater than or equal to 0"));
        }
        Ok(Self(quantity))
    }

    pub fn units(self) -> i32 {
        self.0
    }
}

/// How stock and the units pending orders hold must relate.
pub mod stock {
    use crate::domain::Violation;

    /// Stock plus every held unit may not exceed this: a held unit comes back
    /// to stock when its order is canceled, and stock is a 32-bit quantity.
    pub const MAX_WITH_HELD: i64 = i32::MAX as i64;

    /// Whether a product may be set to `quantity` while `held` of its units
    /// are held by pending orders.
    pub fn room_for_held(quantity: i32, held: i64) -> Result<(), Violation> {
        if i64::from(quantity) + held <= MAX_WITH_HELD {
            return Ok(());
        }
        Err(Violation::new(
            "quantity",
            format!(
                "with the {held} units held by pending orders (which come back on cancel), \
                 quantity may be at most {}",
                (MAX_WITH_HELD - held).max(0)
            ),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stock_plus_held_units_must_fit_in_32_bits() {
            assert!(room_for_held(i32::MAX, 0).is_ok());
            assert!(room_for_held(i32::MAX - 5, 5).is_ok());
            let refused = room_for_held(i32::MAX - 4, 5).unwrap_err();
            assert_eq!(refused.field, "quantity");
            assert!(
                refused.message.contains("at most 2147483642"),
                "{}",
                refused.message
            );
            assert!(room_for_held(0, 0).is_ok());
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    pub name: ProductName,
    pub description: Option<Description>,
    pub price: Price,
    pub quantity: Stock,
}

/// A partial update: `None` leaves a field as it is; `description:
/// Some(None)` clears the description.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Option<Description>>,
    pub price: Option<Price>,
    pub quantity: Option<Stock>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.quantity.is_none()
    }
}

/// Optimistic concurrency: a write that names the version its author read
/// is refused once the product has moved on.
pub mod version {
    use uuid::Uuid;

    use crate::domain::Refusal;

    /// Whether a write conditioned on `expected` (none: unconditional) may
    /// change product `id`, whose version is `current`. The caller must hold
    /// the product's row lock until the write is done, so that the version
    /// it checked is still the one it writes over.
    pub fn check(id: Uuid, expected: Option<i64>, current: i64) -> Result<(), Refusal> {
        match expected {
            Some(expected) if expected != current => Err(Refusal::VersionMismatch {
                id,
                expected,
                current,
            }),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_a_named_other_version_is_refused() {
            let id = Uuid::nil();
            assert_eq!(check(id, None, 7), Ok(()));
            assert_eq!(check(id, Some(7), 7), Ok(()));
            assert_eq!(
                check(id, Some(6), 7),
                Err(Refusal::VersionMismatch {
                    id,
                    expected: 6,
                    current: 7
                })
            );
            // Versions start at 1: 0 (or anything negative) never matches.
            assert!(check(id, Some(0), 1).is_err());
        }
    }
}

/// Which products a list shows, by stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockFilter {
    All,
    InStock,
    OutOfStock,
}

impl From<Option<bool>> for StockFilter {
    fn from(in_stock: Option<bool>) -> Self {
        match in_stock {
            None => Self::All,
            Some(true) => Self::InStock,
            Some(false) => Self::OutOfStock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Price::parse` of a decimal written out.
    fn price(amount: &str) -> Result<Price, Violation> {
        Price::parse("price", amount.parse().expect("a decimal"))
    }

    #[test]
    fn name_length_is_counted_in_characters() {
        assert!(ProductName::parse("name", "é".repeat(255)).is_ok());
        assert!(ProductName::parse("name", "é".repeat(256)).is_err());
        assert!(ProductName::parse("name", String::new()).is_err());
        assert!(ProductName::parse("name", "a\0b".into()).is_err());
    }

    #[test]
    fn text_limits_are_named_in_the_refusal() {
        let long = ProductName::parse("name", "a".repeat(256)).unwrap_err();
        assert_eq!(long.message, "must be 1 to 255 characters long");
        let long = Description::parse("description", "a".repeat(10_001)).unwrap_err();
        assert_eq!(long.message, "must be at most 10000 characters long");
        assert!(Description::parse("description", String::new()).is_ok());
        let nul = Description::parse("description", "\0".into()).unwrap_err();
        assert_eq!(nul.message, "must not contain NUL characters");
    }

    #[test]
    fn price_rules() {
        assert!(price("0.01").is_ok());
        assert!(price("99999999.99").is_ok());
        assert!(
            price("10.500").is_ok(),
            "trailing zeros are not extra precision"
        );
        for refused in ["0", "-1", "0.001", "100000000.00"] {
            assert!(price(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn stock_is_never_negative() {
        assert!(Stock::parse("quantity", 0).is_ok());
        assert!(Stock::parse("quantity", -1).is_err());
    }

    #[test]
    fn empty_patch_is_recognised() {
        assert!(ProductPatch::default().is_empty());
        let clear = ProductPatch {
            description: Some(None),
            ..Default::default()
        };
        assert!(!clear.is_empty());
    }
}
