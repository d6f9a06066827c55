//! Pieces every endpoint shares: how bodies and query strings are read, money
//! on the wire, pagination, and the service endpoints' small bodies.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ObjectBuilder, OneOfBuilder, Type},
    },
};

use crate::{
    json::{Fields, Violations},
    money,
};

/// A request body type: read from a JSON object, recording every violation.
/// `None` means at least one violation was recorded.
pub trait FromBody: Sized {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self>;
}

/// A query-string type: read from decoded `key=value` pairs.
pub trait FromQuery: Sized {
    fn read(query: &QueryPairs, errors: &mut Violations) -> Option<Self>;
}

/// Decoded query pairs in order. Unknown keys are ignored (as the original
/// service did); a known key given twice is refused rather than guessed.
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The value of `name`, if given once.
    pub fn get(&self, errors: &mut Violations, name: &str) -> Option<Option<&str>> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            errors.push(name, "given more than once");
            return None;
        }
        Some(first)
    }

    /// An integer parameter in `min..=max`, `default` when absent.
    pub fn integer(
        &self,
        errors: &mut Violations,
        name: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let text = self.get(errors, name)?;
        let Some(text) = text else {
            return Some(default);
        };
        match money::parse_integer(text) {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            Ok(_) | Err(money::IntegerError::OutOfRange) if max == i64::MAX => {
                errors.push(name, format!("must be an integer >= {min}"));
                None
            }
            Ok(_) | Err(money::IntegerError::OutOfRange) => {
                errors.push(name, format!("must be an integer between {min} and {max}"));
                None
            }
            Err(money::IntegerError::NotAnInteger) => {
                errors.push(name, "must be an integer");
                None
            }
        }
    }

    /// A boolean parameter; the words the original service (pydantic) took.
    pub fn boolean(&self, errors: &mut Violations, name: &str) -> Option<Option<bool>> {
        let text = self.get(errors, name)?;
        let Some(text) = text else { return Some(None) };
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Some(Some(true)),
            "false" | "0" | "no" | "n" | "off" | "f" => Some(Some(false)),
            _ => {
                errors.push(name, "must be a boolean (true or false)");
                None
            }
        }
    }

    /// One of `allowed`, exactly as spelled there.
    pub fn one_of<'v>(
        &self,
        errors: &mut Violations,
        name: &str,
        allowed: &[&'v str],
    ) -> Option<Option<&'v str>> {
        let text = self.get(errors, name)?;
        let Some(text) = text else { return Some(None) };
        match allowed.iter().copied().find(|word| *word == text) {
            Some(word) => Some(Some(word)),
            None => {
                errors.push(name, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }
}

/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page the contract allows, and `ceil(total / page_size)`: the
/// platform's one paging rule.
pub use proto::paging::{MAX_PAGE_SIZE, total_pages};

/// `page` and `page_size`, read and checked.
pub fn read_paging(query: &QueryPairs, errors: &mut Violations) -> Option<(u32, u32)> {
    // The page is bounded too, so page * page_size cannot overflow an offset.
    let page = query.integer(errors, "page", 1, 1, i64::from(i32::MAX));
    let page_size = query.integer(
        errors,
        "page_size",
        i64::from(DEFAULT_PAGE_SIZE),
        1,
        i64::from(MAX_PAGE_SIZE),
    );
    Some((u32::try_from(page?).ok()?, u32::try_from(page_size?).ok()?))
}

/// The documented form of money sent as a string: > 0, at most 8 integer
/// digits, at most two fractional digits that are not trailing zeros.
/// (The gateway also reads exponents, `"1e2"`; the document keeps to the
/// plain form.)
pub const MONEY_STRING_PATTERN: &str =
    r"^([1-9][0-9]{0,7}(\.[0-9]{1,2}0*)?|0\.(0[1-9]|[1-9][0-9]?)0*)$";

/// Money as requests may send it: a JSON number or a string holding one
/// (`999.99` or `"999.99"`), read exactly, never through a binary float.
/// Greater than 0, at most two fractional digits, at most 99999999.99.
/// Only documents the wire format; handlers receive a `Decimal`.
pub struct MoneyInput;

impl PartialSchema for MoneyInput {
    fn schema() -> RefOr<Schema> {
        let description = "An exact decimal amount, > 0, at most two fractional digits \
                           (trailing zeros do not count), at most 99999999.99; sent as a \
                           JSON number or a string. Read exactly: never through a binary float.";
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(0))
                    .maximum(Some(99_999_999.99))
                    // Whole cents; validators may check this in binary
                    // floating point, the gateway never does.
                    .multiple_of(Some(0.01))
                    .description(Some("As a JSON number (its digits are read exactly).")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    // > 0, at most 8 integer digits, at most two fractional
                    // digits that are not trailing zeros.
                    .pattern(Some(MONEY_STRING_PATTERN))
                    .description(Some("As a string holding a decimal number."))
                    .examples([serde_json::json!("999.99")]),
            )
            .description(Some(description))
            .into()
    }
}

impl ToSchema for MoneyInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("MoneyInput")
    }
}

/// Money as responses write it: a string with exactly two decimals.
pub struct MoneyOutput;

impl PartialSchema for MoneyOutput {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^-?[0-9]+\.[0-9]{2}$"))
            .description(Some(
                "An exact decimal amount written with exactly two fractional digits.",
            ))
            .examples([serde_json::json!("999.99")])
            .into()
    }
}

impl ToSchema for MoneyOutput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Money")
    }
}

/// The contract's money text: `"999.90"`.
pub fn money_text(amount: Decimal) -> String {
    proto::money::format_2dp(amount)
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    pub status: &'static str,
}

/// `GET /ready` when both services answer SERVING.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each service's health status, e.g. `{"catalog": "SERVING", "order": "SERVING"}`.
    pub services: std::collections::BTreeMap<&'static str, String>,
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInfo {
    #[schema(example = "E-commerce API")]
    pub name: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    #[schema(example = "running")]
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> QueryPairs {
        QueryPairs(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn paging_defaults_and_bounds() {
        let mut errors = Violations::default();
        assert_eq!(read_paging(&pairs(&[]), &mut errors), Some((1, 20)));
        assert_eq!(
            read_paging(&pairs(&[("page", "3"), ("page_size", "100")]), &mut errors),
            Some((3, 100))
        );
        assert!(errors.is_empty());
        for bad in [
            [("page", "0"), ("page_size", "10")],
            [("page", "1"), ("page_size", "0")],
            [("page", "1"), ("page_size", "101")],
            [("page", "abc"), ("page_size", "10")],
            [("page", "-1"), ("page_size", "10")],
            [("page", "1"), ("page_size", "1.5")],
            [("page", "99999999999999999999"), ("page_size", "10")],
        ] {
            let mut errors = Violations::default();
            assert_eq!(read_paging(&pairs(&bad), &mut errors), None, "{bad:?}");
            assert!(!errors.is_empty());
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let mut errors = Violations::default();
        assert_eq!(
            read_paging(&pairs(&[("page", "1"), ("page", "2")]), &mut errors),
            None
        );
        assert_eq!(errors.into_vec()[0].field, "page");
    }

    #[test]
    fn booleans() {
        let mut errors = Violations::default();
        let q = pairs(&[("a", "true"), ("b", "False"), ("c", "1"), ("d", "maybe")]);
        assert_eq!(q.boolean(&mut errors, "a"), Some(Some(true)));
        assert_eq!(q.boolean(&mut errors, "b"), Some(Some(false)));
        assert_eq!(q.boolean(&mut errors, "c"), Some(Some(true)));
        assert_eq!(q.boolean(&mut errors, "missing"), Some(None));
        assert!(errors.is_empty());
        assert_eq!(q.boolean(&mut errors, "d"), None);
    }

    proptest::proptest! {
        #[test]
        fn every_documented_money_string_is_accepted(
            text in proptest::string::string_regex(
                MONEY_STRING_PATTERN.trim_start_matches('^').trim_end_matches('$'),
            ).unwrap(),
        ) {
            proptest::prop_assert!(money::parse_price(&text).is_ok(), "{}", text);
        }
    }
}
